//! Sequence stage: orders a package's behaviour events the way its code would run, into the
//! token sequence the detector reads.
//!
//! Order (DESIGN.md): **install time** (`setup.py`, `.pth` files, npm install scripts and the
//! files they run), then **import time** (Python `__init__.py` files, npm `main`/`exports`),
//! then **the rest** (every other file, then functions nothing called), each file in source
//! order. A call that reaches a function of the package descends into it once, depth first,
//! across modules where the import resolves; importing a module of the package runs its top
//! level there, once. See [`cap`] for what a length cap keeps.

mod cap;
mod resolve;
mod units;

use std::collections::HashSet;
use std::fmt;

use serde::Serialize;

use crate::rich::{self, Qualifier};
use crate::{Event, Feature, PackageFacts, Step};
use resolve::Resolver;

pub use cap::{cap, DEFAULT_MAX_TOKENS, HEAD, WINDOW};
pub use units::{telling, units, Unit, DEFAULT_MAX_UNITS};

/// When code runs, relative to installing the package.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Phase {
    Install,
    Import,
    Run,
}

impl Phase {
    pub const ALL: [Phase; 3] = [Phase::Install, Phase::Import, Phase::Run];

    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Install => "install",
            Phase::Import => "import",
            Phase::Run => "run",
        }
    }
}

/// One token of a behaviour sequence.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Token {
    /// Marks the start of a phase.
    Phase(Phase),
    Feature(Feature),
    /// A feature refined by what it touches or where its data goes (a [`rich::RICH`] token).
    Qualified(Feature, Qualifier),
    /// Marks tokens dropped by the length cap.
    Gap,
}

impl Token {
    /// The token's text, as written in JSON and read by the tokenizer.
    pub fn as_str(self) -> &'static str {
        match self {
            Token::Phase(Phase::Install) => "[INSTALL]",
            Token::Phase(Phase::Import) => "[IMPORT]",
            Token::Phase(Phase::Run) => "[RUN]",
            Token::Feature(f) => f.id(),
            Token::Qualified(f, q) => rich::lookup(f, q).map_or(f.id(), |r| r.id),
            Token::Gap => "[GAP]",
        }
    }

    /// The token of an event: its rich token where it has one, else its feature.
    pub fn of(event: &Event) -> Token {
        match event.qualifier {
            Some(q) if rich::lookup(event.feature, q).is_some() => {
                Token::Qualified(event.feature, q)
            }
            _ => Token::Feature(event.feature),
        }
    }

    /// The feature of a feature token, qualified or not.
    pub fn feature(self) -> Option<Feature> {
        match self {
            Token::Feature(f) | Token::Qualified(f, _) => Some(f),
            _ => None,
        }
    }

    /// The token without its qualifier: what the twenty-feature vocabulary reads.
    pub fn base(self) -> Token {
        match self {
            Token::Qualified(f, _) => Token::Feature(f),
            t => t,
        }
    }

    /// Parses a token's text.
    pub fn parse(s: &str) -> Option<Token> {
        Some(match s {
            "[INSTALL]" => Token::Phase(Phase::Install),
            "[IMPORT]" => Token::Phase(Phase::Import),
            "[RUN]" => Token::Phase(Phase::Run),
            "[GAP]" => Token::Gap,
            other => match Feature::from_id(other) {
                Some(f) => Token::Feature(f),
                None => {
                    let r = rich::from_id(other)?;
                    Token::Qualified(r.feature, r.qualifier)
                }
            },
        })
    }
}

impl fmt::Display for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Token {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// An event placed in the run order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Placed {
    pub phase: Phase,
    #[serde(flatten)]
    pub event: Event,
}

/// A package's behaviour: every event in run order, and the token sequence built from them
/// (phase markers, repeats collapsed, capped).
#[derive(Debug, Clone, Default)]
pub struct Sequence {
    pub events: Vec<Placed>,
    pub tokens: Vec<Token>,
    /// Number of tokens before the cap (after collapsing repeats).
    pub uncapped_len: usize,
}

impl Sequence {
    /// Whether any behaviour was seen at all.
    pub fn is_empty(&self) -> bool {
        self.events.is_empty()
    }

    /// The tokens as text.
    pub fn token_strs(&self) -> Vec<&'static str> {
        self.tokens.iter().map(|t| t.as_str()).collect()
    }
}

/// Appends `token`, collapsing runs of one feature: a loop over forty files reads as one
/// behaviour. A run keeps the first qualifier seen in it, so the tokens with qualifiers
/// dropped are exactly the twenty-feature sequence (a network trained on that vocabulary
/// reads a rich sequence as it read the plain one).
pub fn push_collapsed(raw: &mut Vec<Token>, token: Token) {
    match raw.last_mut() {
        Some(last) if last.base() == token.base() => {
            if matches!(*last, Token::Feature(_)) {
                *last = token;
            }
        }
        _ => raw.push(token),
    }
}

/// Bound on the steps one walk may take, so that a package built to explode the walk (many
/// mutually importing modules) cannot take unbounded time; every step is still visited at
/// most once per function or module, so real packages stay far below it.
const MAX_WALK_STEPS: usize = 2_000_000;

/// Orders `facts` into a sequence of at most `max_tokens` tokens.
pub fn build(facts: &PackageFacts, max_tokens: usize) -> Sequence {
    let events = order(facts);
    let mut raw: Vec<Token> = Vec::with_capacity(events.len() + 3);
    let mut phase = None;
    for placed in &events {
        if phase != Some(placed.phase) {
            phase = Some(placed.phase);
            raw.push(Token::Phase(placed.phase));
        }
        push_collapsed(&mut raw, Token::of(&placed.event));
    }
    let uncapped_len = raw.len();
    Sequence {
        events,
        tokens: cap(&raw, max_tokens),
        uncapped_len,
    }
}

/// Every event of the package in run order (see the module docs).
pub fn order(facts: &PackageFacts) -> Vec<Placed> {
    let mut walk = Walk {
        facts,
        resolver: Resolver::new(facts),
        files_done: HashSet::new(),
        functions_done: HashSet::new(),
        out: Vec::new(),
        phase: Phase::Install,
        steps_left: MAX_WALK_STEPS,
    };

    // Install time.
    for event in &facts.archive_events {
        walk.emit(event);
    }
    if let Some(setup) = walk.resolver.file_index("setup.py") {
        walk.run_file(setup);
    }
    for (i, file) in facts.files.iter().enumerate() {
        if file.path.ends_with(".pth") {
            walk.run_file(i);
        }
    }
    for hook in &facts.hooks {
        walk.run_steps(None, &hook.steps);
        for script in &hook.runs {
            if let Some(i) = walk.resolver.file_index(script) {
                walk.run_file(i);
            }
        }
    }

    // Import time.
    walk.phase = Phase::Import;
    let mut inits: Vec<usize> = (0..facts.files.len())
        .filter(|&i| {
            let p = &facts.files[i].path;
            p == "__init__.py" || p.ends_with("/__init__.py")
        })
        .collect();
    inits.sort_by_key(|&i| (facts.files[i].path.matches('/').count(), i));
    for i in inits {
        walk.run_file(i);
    }
    for entry in &facts.entries {
        if let Some(i) = walk.resolver.file_index(entry) {
            walk.run_file(i);
        }
    }

    // The rest: each file's top level, then the functions nothing reached.
    walk.phase = Phase::Run;
    for (i, file) in facts.files.iter().enumerate() {
        walk.run_file(i);
        for f in 0..file.functions.len() {
            walk.run_function(i, f);
        }
    }
    walk.out
}

struct Walk<'a> {
    facts: &'a PackageFacts,
    resolver: Resolver<'a>,
    files_done: HashSet<usize>,
    functions_done: HashSet<(usize, usize)>,
    out: Vec<Placed>,
    phase: Phase,
    steps_left: usize,
}

/// A list of steps being walked: the file they belong to (for resolving) and the position.
struct Frame<'a> {
    file: Option<usize>,
    steps: &'a [Step],
    next: usize,
}

impl<'a> Walk<'a> {
    fn emit(&mut self, event: &Event) {
        self.out.push(Placed {
            phase: self.phase,
            event: event.clone(),
        });
    }

    /// Runs a file's top level, once.
    fn run_file(&mut self, file: usize) {
        if self.files_done.insert(file) {
            let steps = &self.facts.files[file].top_level;
            self.run_steps(Some(file), steps);
        }
    }

    /// Runs a function's body, once.
    fn run_function(&mut self, file: usize, function: usize) {
        if self.functions_done.insert((file, function)) {
            let steps = &self.facts.files[file].functions[function].steps;
            self.run_steps(Some(file), steps);
        }
    }

    /// Walks `steps` depth first with an explicit stack, so that deep call chains in a
    /// package cannot overflow ours.
    fn run_steps(&mut self, file: Option<usize>, steps: &'a [Step]) {
        let mut stack = vec![Frame {
            file,
            steps,
            next: 0,
        }];
        while let Some(frame) = stack.last_mut() {
            let Some(step) = frame.steps.get(frame.next) else {
                stack.pop();
                continue;
            };
            frame.next += 1;
            if self.steps_left == 0 {
                return;
            }
            self.steps_left -= 1;
            let here = frame.file;
            match step {
                Step::Event(event) => self.emit(event),
                Step::Import(module) => {
                    let Some(from) = here else { continue };
                    if let Some(target) = self.resolver.module(from, module) {
                        if self.files_done.insert(target) {
                            stack.push(Frame {
                                file: Some(target),
                                steps: &self.facts.files[target].top_level,
                                next: 0,
                            });
                        }
                    }
                }
                Step::Call(call) => {
                    let Some(from) = here else { continue };
                    if let Some((target, function)) = self.resolver.call(from, call) {
                        if self.functions_done.insert((target, function)) {
                            stack.push(Frame {
                                file: Some(target),
                                steps: &self.facts.files[target].functions[function].steps,
                                next: 0,
                            });
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests;
