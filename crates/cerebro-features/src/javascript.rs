//! JavaScript's mapping onto the unified feature set, read with tree-sitter.
//!
//! One file is parsed once and walked twice over its top level: a short *scan* of the
//! program's statements finds the named functions (`function f`, `const f = () => …`, class
//! methods, `exports.f = …`, `module.exports = {…}`, ESM exports) so that calls to them can be
//! recorded before they are seen; then a *walk* follows the code in execution order and emits
//! [`Step`]s. Anonymous functions and arrows are walked inline where they appear, callbacks
//! after the call that receives them (that is when they run).
//!
//! Names are followed through a binding table filled as the walk meets declarations:
//! `const cp = require('child_process')`, destructuring, ESM imports, dynamic `import()`,
//! aliases (`const e = cp.exec`), `promisify`/`bind`, compiler interop helpers,
//! `module.require`, `process.mainModule.require`, `createRequire`, global objects
//! (`globalThis.eval`). Scopes are modelled per function (not per block): a parameter or local
//! hides an outer name, which matters in minified code where `b` means something else in every
//! function; the last value assigned to a name wins.
//!
//! The walk never recurses on the syntax tree (an explicit task stack does), and the few
//! helpers that do (name resolution, constant folding) stop at a small depth, so hostile
//! nesting cannot overflow a thread's stack.

mod literals;
mod scan;
mod tables;

use std::borrow::Cow;
use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::sync::OnceLock;

use tree_sitter::{Node, Parser, TreeCursor};

use super::{strings, CallRef, Event, Feature, FileFacts, Function, Language, ModuleRef, Step};
use literals::{clip, decode, is_binary, is_ident_byte, string_body};
use tables::Kind;

/// Files larger than this are not parsed (and a package whose install- or import-time code is
/// one of them cannot be judged). Real packages do ship such files: `typescript`'s main,
/// `lib/typescript.js`, is 10.9 MB (4.9.5; the whole package, four such files, scans in 16 s
/// on the project's machine); the time budget of [`crate::parse`] bounds a hostile one.
pub const MAX_PARSE_BYTES: usize = 15 * 1024 * 1024;

/// Most nested function scopes kept apart.
const MAX_SCOPES: usize = 256;
/// How deep name resolution and constant folding follow nested expressions.
const MAX_RESOLVE_DEPTH: u32 = 48;
/// Longest dotted member path kept for a resolved name.
const MAX_PATH_LEN: usize = 200;
/// Escapes of printable ASCII in one literal from which it counts as obfuscated (`O1`).
const ESCAPES_PER_STRING: u32 = 16;
/// Escapes of printable ASCII across a file from which it counts as obfuscated (`O1`).
const ESCAPES_PER_FILE: u32 = 64;
/// Octal literals (`0o…`) in one file from which its constants count as hidden (`O1`):
/// obfuscators of the js-confuser kind write every number as octal and hex arithmetic
/// (`(0o201452-66337)`), dozens per file; hand-written code uses a few for file modes (the
/// most in a benign npm package of the dataset: 25).
const OCTAL_LITERALS_PER_FILE: usize = 32;
/// Numbered lookups of one array concatenated in a row (`_t[3]+_t[17]+…`) from which text is
/// being assembled from a string table (`O1`); the longest such run in a benign npm package
/// of the dataset is 6.
const STRING_TABLE_RUN: usize = 8;
/// Elements of an array literal from which it is a data table (the Public Suffix List in `psl`
/// lists `ngrok.io` among 9,000 domains): its strings are not destinations (`D3`, `D4`).
const DATA_TABLE_ELEMENTS: usize = 100;
/// JSFuck-style atoms (`![]`, `+[]`, `x+[]`, `[]["…"]`) from which a file counts as obfuscated.
const JSFUCK_ATOMS: u32 = 10;
/// Most characters of a literal or of source text copied into an event.
const CLIP: usize = 240;

thread_local! {
    /// One parser per thread: creating one allocates, and scans run on a rayon pool.
    static PARSER: RefCell<Option<Parser>> = RefCell::new(new_parser());
}

fn new_parser() -> Option<Parser> {
    let mut parser = Parser::new();
    parser
        .set_language(&tree_sitter_javascript::LANGUAGE.into())
        .ok()?;
    Some(parser)
}

/// Extracts the behaviour steps of one JavaScript source file (`.js`, `.mjs`, `.cjs`).
///
/// Never panics and never fails: a file too large to parse, binary content, or a file the
/// parser gives up on yields one `E4` event; syntax errors are read around.
pub fn extract(path: &str, source: &str) -> FileFacts {
    let mut facts = FileFacts {
        path: path.to_owned(),
        language: Language::JavaScript,
        top_level: Vec::new(),
        functions: Vec::new(),
    };
    if source.len() > MAX_PARSE_BYTES {
        facts.top_level.push(Step::Event(Event::new(
            Feature::E4,
            path,
            1,
            format!("file too large to parse ({} bytes)", source.len()),
            clip(source, CLIP),
        )));
        return facts;
    }
    if is_binary(source) {
        facts.top_level.push(Step::Event(Event::new(
            Feature::E4,
            path,
            1,
            "binary content, not parsed",
            "",
        )));
        return facts;
    }
    let tree = PARSER.with(|cell| match cell.try_borrow_mut() {
        Ok(mut slot) => parse(slot.as_mut()?, source),
        Err(_) => parse(&mut new_parser()?, source),
    });
    let Some(tree) = tree else {
        facts.top_level.push(Step::Event(Event::new(
            Feature::E4,
            path,
            1,
            format!("{} ({} bytes)", super::GAVE_UP, source.len()),
            clip(source, CLIP),
        )));
        return facts;
    };
    let root = tree.root_node();
    let mut extractor = Extractor::new(path, source, root);
    extractor.run(root, &mut facts);
    facts
}

/// Parses `source` within the shared time budget ([`crate::parse`]): one crafted file must
/// not stall a scan.
fn parse(parser: &mut Parser, source: &str) -> Option<tree_sitter::Tree> {
    crate::parse::parse_within(parser, source, crate::parse::budget(source.len()))
}

/// The grammar's node kind names by kind id, looked up once: `Node::kind` measures and
/// validates the C string on every call, and the walk asks for a kind at every node.
fn kind_names() -> &'static [&'static str] {
    static NAMES: OnceLock<Vec<&'static str>> = OnceLock::new();
    NAMES.get_or_init(|| {
        let language: tree_sitter::Language = tree_sitter_javascript::LANGUAGE.into();
        (0..language.node_kind_count())
            .map(|id| {
                u16::try_from(id)
                    .ok()
                    .and_then(|id| language.node_kind_for_id(id))
                    .unwrap_or("")
            })
            .collect()
    })
}

/// A node's kind name, from [`kind_names`].
trait Kinded {
    fn k(&self) -> &'static str;
}

impl Kinded for Node<'_> {
    fn k(&self) -> &'static str {
        kind_names()
            .get(usize::from(self.kind_id()))
            .copied()
            .unwrap_or("")
    }
}

/// Field ids of the grammar, looked up once: by id is much faster than by name.
struct Fields {
    name: u16,
    value: u16,
    body: u16,
    parameters: u16,
    parameter: u16,
    function: u16,
    arguments: u16,
    object: u16,
    property: u16,
    index: u16,
    constructor: u16,
    left: u16,
    right: u16,
    operator: u16,
    argument: u16,
    key: u16,
    source: u16,
    declaration: u16,
    alias: u16,
    consequence: u16,
    alternative: u16,
}

fn fields() -> &'static Fields {
    static FIELDS: OnceLock<Fields> = OnceLock::new();
    FIELDS.get_or_init(|| {
        let language: tree_sitter::Language = tree_sitter_javascript::LANGUAGE.into();
        let id = |name: &str| language.field_id_for_name(name).map_or(0, |f| f.get());
        Fields {
            name: id("name"),
            value: id("value"),
            body: id("body"),
            parameters: id("parameters"),
            parameter: id("parameter"),
            function: id("function"),
            arguments: id("arguments"),
            object: id("object"),
            property: id("property"),
            index: id("index"),
            constructor: id("constructor"),
            left: id("left"),
            right: id("right"),
            operator: id("operator"),
            argument: id("argument"),
            key: id("key"),
            source: id("source"),
            declaration: id("declaration"),
            alias: id("alias"),
            consequence: id("consequence"),
            alternative: id("alternative"),
        }
    })
}

/// What a name or expression stands for.
#[derive(Debug, Clone, PartialEq)]
enum Target {
    /// A global (`process`, `eval`, `Buffer`…) and a member path under it (`env.HOME`).
    Global { name: &'static str, path: String },
    /// A package or built-in module (`child_process`, `node:` stripped, subpath as members)
    /// and a member path under it.
    Module { name: String, path: String },
    /// A relative module of the package (`./utils`) and a member path under it.
    Rel { spec: String, path: String },
    /// A named function of this file, by its name in [`FileFacts::functions`].
    LocalFn(String),
    /// A class of this file.
    LocalClass(String),
    /// `exports` / `module.exports` of this file.
    Exports,
    /// `this` inside a method of a class of this file, or of the exported object.
    This,
    /// A literal string (`const m = 'child_process'`).
    Str(String),
}

impl Target {
    fn display(&self) -> String {
        let (root, path) = match self {
            Target::Global { name, path } => (*name, path.as_str()),
            Target::Module { name, path } => (name.as_str(), path.as_str()),
            Target::Rel { spec, path } => (spec.as_str(), path.as_str()),
            Target::LocalFn(f) | Target::LocalClass(f) => (f.as_str(), ""),
            Target::Exports => ("module.exports", ""),
            Target::This => ("this", ""),
            Target::Str(s) => (s.as_str(), ""),
        };
        if path.is_empty() {
            root.to_owned()
        } else {
            format!("{root}.{path}")
        }
    }

    fn global(name: &'static str) -> Target {
        Target::Global {
            name,
            path: String::new(),
        }
    }
}

/// What `this` means in the function being walked.
#[derive(Debug, Clone, PartialEq)]
enum ThisIs {
    Nothing,
    Class(String),
    Exports,
}

/// How a module was named, for the event's detail.
#[derive(Debug, Clone, Copy)]
enum Form {
    Require,
    Import,
    Dynamic,
}

impl Form {
    fn detail(self, spec: &str) -> String {
        match self {
            Form::Require => format!("require('{spec}')"),
            Form::Import => format!("import '{spec}'"),
            Form::Dynamic => format!("import('{spec}')"),
        }
    }
}

/// Work of the walk; the stack of these replaces recursion.
#[derive(Clone, Copy)]
enum Task<'a> {
    /// Walk a node.
    Visit(Node<'a>),
    /// Walk the object of a member chain already judged as a whole (no access feature again).
    Object(Node<'a>),
    /// A call's own events, after its callee and arguments.
    FinishCall(Node<'a>),
    /// A `new` expression's own events, after its arguments.
    FinishNew(Node<'a>),
    /// An identifier passed as an argument: if it names a function of this file, it is a
    /// callback that runs.
    CallbackArg(Node<'a>),
    /// The end of a function's body: its scope closes (if it opened one).
    PopScope(bool),
}

/// A named function found by the scan.
struct Def<'a> {
    name: String,
    line: u32,
    body: Body<'a>,
    this: ThisIs,
}

enum Body<'a> {
    /// A function, method or arrow node to walk.
    Code(Node<'a>),
    /// An export of a local name (`module.exports = main`), resolved after the top level.
    Alias(&'a str),
    /// A forwarding call (re-exports, a default class export).
    Call(CallRef),
}

/// Method names that change how a call is read, whatever the receiver.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Method {
    /// `f.call(this, …)`: a call of `f`.
    Call,
    /// `f.apply(this, args)`: a call of `f`.
    Apply,
    /// `x.toString('base64')`: encoding.
    ToString,
    /// `module._compile(source)`: running source text.
    Compile,
    /// `x.constructor.constructor(source)`: the `Function` constructor reached sideways.
    Constructor,
    Other,
}

impl Method {
    fn of(name: &str) -> Method {
        match name {
            "call" => Method::Call,
            "apply" => Method::Apply,
            "toString" => Method::ToString,
            "_compile" => Method::Compile,
            "constructor" => Method::Constructor,
            _ => Method::Other,
        }
    }
}

/// Kinds of `O1` evidence; each is reported once per file.
#[derive(Clone, Copy)]
enum Obfuscation {
    HexNames = 1,
    Escapes = 2,
    JsFuck = 4,
    Packer = 8,
    NumberSoup = 16,
    StringTable = 32,
}

struct Extractor<'a> {
    path: &'a str,
    src: &'a str,
    cursor: TreeCursor<'a>,
    /// What names stand for, one map per function being walked (the first is the file's);
    /// `None` is a name declared with a value that resolves to nothing known, which hides
    /// what an outer scope or a global of the same name means.
    scopes: Vec<HashMap<&'a str, Option<Target>>>,
    /// Names bound to something whose mere use is a feature (`const {env} = process`).
    access_names: HashSet<&'a str>,
    fn_names: HashSet<String>,
    this: ThisIs,
    obfuscation: u8,
    jsfuck: u32,
    escapes: u32,
    steps: Vec<Step>,
    stack: Vec<Task<'a>>,
}

impl<'a> Extractor<'a> {
    fn new(path: &'a str, src: &'a str, root: Node<'a>) -> Extractor<'a> {
        Extractor {
            path,
            src,
            cursor: root.walk(),
            scopes: vec![HashMap::new()],
            access_names: HashSet::new(),
            fn_names: HashSet::new(),
            this: ThisIs::Nothing,
            obfuscation: 0,
            jsfuck: 0,
            escapes: 0,
            steps: Vec::new(),
            stack: Vec::new(),
        }
    }

    fn run(&mut self, root: Node<'a>, facts: &mut FileFacts) {
        let mut items = Vec::new();
        let mut defs = Vec::new();
        for statement in self.named_children(root) {
            self.top_statement(statement, &mut items, &mut defs);
        }

        self.raw_text_obfuscation();
        for node in items {
            self.stack.push(Task::Visit(node));
            self.drain();
        }
        facts.top_level = std::mem::take(&mut self.steps);

        let mut index: HashMap<String, usize> = HashMap::new();
        for def in defs {
            let (name, steps) = match def.body {
                Body::Code(node) => {
                    self.this = def.this;
                    self.push_function(node);
                    self.drain();
                    (def.name, std::mem::take(&mut self.steps))
                }
                Body::Call(call) => (def.name, vec![Step::Call(call)]),
                Body::Alias(local) => match self.alias_call(&def.name, local, def.line) {
                    Some(found) => found,
                    None => continue,
                },
            };
            match index.get(&name) {
                Some(&i) => facts.functions[i].steps.extend(steps),
                None => {
                    index.insert(name.clone(), facts.functions.len());
                    facts.functions.push(Function {
                        name,
                        line: def.line,
                        steps,
                    });
                }
            }
        }
    }

    /// The forwarding function of an exported local name, or `None` when the name is not a
    /// function of the package (or already has the exported name).
    fn alias_call(&self, name: &str, local: &str, line: u32) -> Option<(String, Vec<Step>)> {
        let (name, module, function) = match self.lookup(local)? {
            Target::LocalFn(f) if f != name => (name.to_owned(), None, f),
            Target::LocalClass(c) => (
                format!("{name}.constructor"),
                None,
                format!("{c}.constructor"),
            ),
            Target::Rel { spec, path } if !path.contains('*') => {
                (name.to_owned(), Some(spec), rel_function(&path, false))
            }
            _ => return None,
        };
        if module.is_none() && name == function {
            return None;
        }
        let call = CallRef {
            module: module.map(|spec| ModuleRef { spec, level: 0 }),
            function,
            line,
        };
        Some((name, vec![Step::Call(call)]))
    }

    // ----- the walk -----

    /// Walks a function's parameters (their defaults) and body in a scope of its own.
    fn push_function(&mut self, node: Node<'a>) {
        let f = fields();
        // Past a depth no real code reaches, nested functions share the deepest scope, which
        // bounds the cost of every name lookup on hostile nesting.
        let scoped = self.scopes.len() < MAX_SCOPES;
        if scoped {
            self.scopes.push(HashMap::new());
        }
        self.stack.push(Task::PopScope(scoped));
        if let Some(body) = node.child_by_field_id(f.body) {
            self.stack.push(Task::Visit(body));
        }
        let parameters = node
            .child_by_field_id(f.parameters)
            .or_else(|| node.child_by_field_id(f.parameter));
        if let Some(parameters) = parameters {
            self.declare_parameters(parameters);
            self.stack.push(Task::Visit(parameters));
        }
        if let Some(body) = node.child_by_field_id(f.body) {
            self.hoist(body);
        }
    }

    /// Binds the modules a function body declares at its own level before walking it, so that
    /// a nested function declared above `const cp = require('child_process')` (and walked
    /// where it is declared) still sees `cp`.
    fn hoist(&mut self, body: Node<'a>) {
        let f = fields();
        if body.k() != "statement_block" {
            return;
        }
        for statement in self.named_children(body) {
            if !matches!(
                statement.k(),
                "lexical_declaration" | "variable_declaration"
            ) {
                continue;
            }
            for declarator in self.named_children(statement) {
                let name = declarator.child_by_field_id(f.name);
                let value = declarator.child_by_field_id(f.value);
                if let (Some(name), Some(value)) = (name, value) {
                    if name.k() == "identifier" {
                        if let Some(target) = self.resolve(value, 0) {
                            self.bind_target(self.text(name), target);
                        }
                    }
                }
            }
        }
    }

    fn drain(&mut self) {
        while let Some(task) = self.stack.pop() {
            match task {
                Task::Visit(node) => self.visit(node, false),
                Task::Object(node) => self.visit(node, true),
                Task::FinishCall(node) => self.finish_call(node),
                Task::FinishNew(node) => self.finish_new(node),
                Task::PopScope(scoped) => {
                    if scoped && self.scopes.len() > 1 {
                        self.scopes.pop();
                    }
                }
                Task::CallbackArg(node) => {
                    if let Some(Target::LocalFn(function)) = self.resolve(node, 0) {
                        self.steps.push(Step::Call(CallRef {
                            module: None,
                            function,
                            line: line(node),
                        }));
                    }
                }
            }
        }
    }

    fn visit(&mut self, node: Node<'a>, in_chain: bool) {
        match node.k() {
            "identifier" => {
                if !in_chain && !self.access_names.is_empty() {
                    self.access(node);
                }
            }
            "comment"
            | "hash_bang_line"
            | "html_comment"
            | "regex"
            | "number"
            | "true"
            | "false"
            | "null"
            | "undefined"
            | "this"
            | "super"
            | "property_identifier"
            | "private_property_identifier"
            | "shorthand_property_identifier"
            | "shorthand_property_identifier_pattern"
            | "statement_identifier"
            | "empty_statement"
            | "break_statement"
            | "continue_statement"
            | "debugger_statement"
            | "jsx_text"
            | "meta_property"
            | "import" => {}
            "parenthesized_expression" if in_chain && node.named_child_count() == 1 => {
                // `(process.env).X`: the chain was judged as a whole.
                if let Some(inner) = first_named(node) {
                    self.stack.push(Task::Object(inner));
                }
            }
            "string" => self.visit_string(node),
            "template_string" => self.visit_template(node),
            "call_expression" => self.visit_call(node),
            "new_expression" => self.visit_new(node),
            "member_expression" | "subscript_expression" => self.visit_member(node, in_chain),
            "variable_declarator" => self.visit_declarator(node),
            "assignment_expression" => self.visit_assignment(node),
            "import_statement" => self.visit_import(node),
            "export_statement" => {
                if let Some(source) = node.child_by_field_id(fields().source) {
                    if let Some(spec) = self.const_string(source, 0).map(Cow::into_owned) {
                        self.import_module(&spec, Form::Import, node);
                    }
                }
                self.push_children(node);
            }
            "function_declaration" | "generator_function_declaration" | "class_declaration" => {
                // A nested declaration: its name is a local of unknown meaning.
                if let Some(name) = node.child_by_field_id(fields().name) {
                    self.declare(self.text(name));
                }
                if node.k() == "class_declaration" {
                    self.push_children(node);
                } else {
                    self.push_function(node);
                }
            }
            "function_expression"
            | "arrow_function"
            | "generator_function"
            | "method_definition" => self.push_function(node),
            "pair" => {
                self.check_shell_option(node);
                self.push_children(node);
            }
            "binary_expression" => {
                let f = fields();
                if node.child_by_field_id(f.operator).map(|o| self.text(o)) == Some("+") {
                    for side in [f.left, f.right] {
                        if node.child_by_field_id(side).is_some_and(is_empty_array) {
                            self.jsfuck_atom(node);
                        }
                    }
                }
                self.push_children(node);
            }
            "unary_expression" => {
                let f = fields();
                let operator = node.child_by_field_id(f.operator).map(|o| self.text(o));
                let argument = node.child_by_field_id(f.argument);
                if matches!(operator, Some("!" | "+")) && argument.is_some_and(is_empty_array) {
                    self.jsfuck_atom(node);
                }
                self.push_children(node);
            }
            _ => self.push_children(node),
        }
    }

    /// Pushes the named children of `node` so that they are walked in source order.
    fn push_children(&mut self, node: Node<'a>) {
        let start = self.stack.len();
        self.cursor.reset(node);
        if self.cursor.goto_first_child() {
            loop {
                let child = self.cursor.node();
                if child.is_named() && !child.is_extra() {
                    self.stack.push(Task::Visit(child));
                }
                if !self.cursor.goto_next_sibling() {
                    break;
                }
            }
        }
        self.stack[start..].reverse();
    }

    fn named_children(&mut self, node: Node<'a>) -> Vec<Node<'a>> {
        let mut out = Vec::new();
        self.cursor.reset(node);
        if self.cursor.goto_first_child() {
            loop {
                let child = self.cursor.node();
                if child.is_named() && !child.is_extra() {
                    out.push(child);
                }
                if !self.cursor.goto_next_sibling() {
                    break;
                }
            }
        }
        out
    }

    fn visit_member(&mut self, node: Node<'a>, in_chain: bool) {
        let f = fields();
        if !in_chain {
            self.access(node);
        }
        if node.k() == "subscript_expression" {
            if let Some(index) = node.child_by_field_id(f.index) {
                self.stack.push(Task::Visit(index));
            }
            if node.child_by_field_id(f.object).is_some_and(is_empty_array) {
                self.jsfuck_atom(node);
            }
        }
        if let Some(object) = node.child_by_field_id(f.object) {
            self.stack.push(Task::Object(object));
        }
    }

    /// Fires the feature of *reading* what `node` names (`process.env`), if any.
    fn access(&mut self, node: Node<'a>) {
        if let Some(target) = self.resolve(node, 0) {
            if let Some((feature, detail)) = access_feature(&target) {
                self.emit(feature, detail, node);
            }
        }
    }

    fn visit_call(&mut self, node: Node<'a>) {
        let f = fields();
        let Some(callee_raw) = node.child_by_field_id(f.function) else {
            self.push_children(node);
            return;
        };
        let callee = unwrap(callee_raw);
        let args = node.child_by_field_id(f.arguments);

        // An immediately invoked function runs its body right after its arguments.
        let mut immediate = is_function(callee).then_some(callee);
        if immediate.is_none() && callee.k() == "member_expression" {
            let property = callee.child_by_field_id(f.property).map(|p| self.text(p));
            if matches!(property, Some("call" | "apply")) {
                immediate = callee
                    .child_by_field_id(f.object)
                    .map(unwrap)
                    .filter(|o| is_function(*o));
            }
        }

        let start = self.stack.len();
        if immediate.is_none() {
            self.push_callee_parts(callee);
        }
        self.push_arguments(args, false);
        match immediate {
            Some(function) => self.stack.push(Task::Visit(function)),
            None => self.stack.push(Task::FinishCall(node)),
        }
        self.push_arguments(args, true);
        self.stack[start..].reverse();
    }

    fn visit_new(&mut self, node: Node<'a>) {
        let f = fields();
        let Some(constructor) = node.child_by_field_id(f.constructor).map(unwrap) else {
            self.push_children(node);
            return;
        };
        let args = node.child_by_field_id(f.arguments);
        let start = self.stack.len();
        if is_function(constructor) {
            self.push_arguments(args, false);
            self.stack.push(Task::Visit(constructor));
        } else {
            self.push_callee_parts(constructor);
            self.push_arguments(args, false);
            self.stack.push(Task::FinishNew(node));
        }
        self.push_arguments(args, true);
        self.stack[start..].reverse();
    }

    /// Pushes (in order, not yet reversed) what evaluating a callee runs before the call.
    fn push_callee_parts(&mut self, callee: Node<'a>) {
        let f = fields();
        match callee.k() {
            "member_expression" | "subscript_expression" => {
                if let Some(object) = callee.child_by_field_id(f.object) {
                    self.stack.push(Task::Visit(object));
                }
                if let Some(index) = callee.child_by_field_id(f.index) {
                    self.stack.push(Task::Visit(index));
                }
            }
            "identifier" | "import" | "super" | "this" => {}
            _ => self.stack.push(Task::Visit(callee)),
        }
    }

    /// Pushes (in order, not yet reversed) the arguments that are evaluated before a call
    /// (`callbacks == false`) or the callbacks that run after it (`callbacks == true`).
    fn push_arguments(&mut self, args: Option<Node<'a>>, callbacks: bool) {
        let Some(args) = args else {
            return;
        };
        if args.k() != "arguments" {
            // A tagged template.
            if !callbacks {
                self.stack.push(Task::Visit(args));
            }
            return;
        }
        self.cursor.reset(args);
        if !self.cursor.goto_first_child() {
            return;
        }
        loop {
            let arg = self.cursor.node();
            if arg.is_named() && !arg.is_extra() {
                let function = is_function(arg);
                if callbacks && function {
                    self.stack.push(Task::Visit(arg));
                } else if callbacks && arg.k() == "identifier" {
                    self.stack.push(Task::CallbackArg(arg));
                } else if !callbacks && !function {
                    self.stack.push(Task::Visit(arg));
                }
            }
            if !self.cursor.goto_next_sibling() {
                break;
            }
        }
    }

    fn finish_call(&mut self, node: Node<'a>) {
        let f = fields();
        let Some(callee) = node.child_by_field_id(f.function).map(unwrap) else {
            return;
        };
        let args = node.child_by_field_id(f.arguments);
        if callee.k() == "import" {
            self.import_call(node, args, Form::Dynamic);
            return;
        }
        let method = match callee.k() {
            "member_expression" => callee
                .child_by_field_id(f.property)
                .map_or(Method::Other, |p| Method::of(self.text(p))),
            "subscript_expression" => callee
                .child_by_field_id(f.index)
                .and_then(|i| self.const_string(i, 0))
                .map_or(Method::Other, |p| Method::of(&p)),
            _ => Method::Other,
        };

        // `f.call(this, …)` and `f.apply(this, […])` call `f`; their own first argument is the
        // receiver, so argument positions shift.
        let mut target_node = callee;
        let mut shift = Some(0);
        if callee.k() == "member_expression" {
            match method {
                Method::Call => shift = Some(1),
                Method::Apply => shift = None,
                _ => {}
            }
            if shift != Some(0) {
                if let Some(object) = callee.child_by_field_id(f.object) {
                    target_node = unwrap(object);
                }
            }
        }
        if let Some(target) = self.resolve(target_node, 0) {
            self.call_target(node, target, args, shift, false);
        }

        // Rules on the method name alone, whatever the receiver.
        match method {
            Method::ToString => {
                let encoding = args.and_then(|a| self.arg_string(a, 0));
                if let Some(encoding) = encoding.filter(|e| tables::is_text_encoding(e)) {
                    self.emit(Feature::E2, format!(".toString('{encoding}')"), node);
                }
            }
            Method::Compile => self.emit(Feature::P4, "module._compile", node),
            Method::Constructor => {
                let object = callee.child_by_field_id(f.object).map(unwrap);
                let nested = object.is_some_and(|o| {
                    is_function(o)
                        || matches!(o.k(), "member_expression" | "subscript_expression")
                            && self.member_property(o).as_deref() == Some("constructor")
                });
                if nested {
                    self.emit(Feature::P4, "constructor.constructor", node);
                }
            }
            _ => {}
        }
    }

    fn finish_new(&mut self, node: Node<'a>) {
        let f = fields();
        let Some(constructor) = node.child_by_field_id(f.constructor).map(unwrap) else {
            return;
        };
        let args = node.child_by_field_id(f.arguments);
        if let Some(target) = self.resolve(constructor, 0) {
            self.call_target(node, target, args, Some(0), true);
        }
    }

    /// The events and steps of calling (or constructing, `new`) what `target` names.
    /// `shift` is where the call's own arguments start in `args` (`None`: unknown, `apply`).
    fn call_target(
        &mut self,
        node: Node<'a>,
        target: Target,
        args: Option<Node<'a>>,
        shift: Option<usize>,
        new: bool,
    ) {
        let arg = |i: usize| -> Option<Node<'a>> { nth_arg(args?, shift? + i) };
        match target {
            ref t if is_require(t) && !new && shift == Some(0) => {
                self.import_call(node, args, Form::Require);
            }
            Target::Global { name, ref path } => {
                let feature = match (name, path.as_str()) {
                    ("eval", "") => {
                        if arg(0).is_some_and(|a| is_packer(a, self.src)) {
                            self.obfuscated(
                                Obfuscation::Packer,
                                "eval(function(p,a,c,k,e,…) packer",
                                node,
                            );
                        }
                        Some(Feature::P4)
                    }
                    ("Function", "") => {
                        let idiom = args.and_then(|a| self.all_arg_strings(a)).is_some_and(|s| {
                            let s: Vec<&str> = s.iter().map(|x| x.as_ref()).collect();
                            tables::is_function_idiom(&s)
                        });
                        (!idiom).then_some(Feature::P4)
                    }
                    ("setTimeout" | "setInterval" | "setImmediate", "") => arg(0)
                        .is_some_and(|a| self.is_stringy(a, 0))
                        .then_some(Feature::P4),
                    ("fetch", "") => Some(Feature::D2),
                    ("atob" | "btoa" | "unescape", "") => Some(Feature::E2),
                    ("String", "fromCharCode" | "fromCodePoint") => Some(Feature::E2),
                    ("Buffer", "from" | "") => arg(1)
                        .and_then(|a| self.const_string(a, 0))
                        .is_some_and(|e| tables::is_text_encoding(&e))
                        .then_some(Feature::E2),
                    // Node's internal process-spawning bindings, or one named at run time.
                    ("process", "binding" | "_linkedBinding") => arg(0)
                        .and_then(|a| self.const_string(a, 0))
                        .is_none_or(|b| matches!(b.as_ref(), "spawn_sync" | "process_wrap"))
                        .then_some(Feature::P2),
                    ("navigator", "sendBeacon") => Some(Feature::D2),
                    ("$" | "jQuery", "ajax" | "get" | "post" | "getJSON" | "getScript") => {
                        Some(Feature::D2)
                    }
                    ("WebSocket" | "XMLHttpRequest" | "EventSource", "") => Some(Feature::D2),
                    ("JSON", "stringify") => {
                        // Serialising the whole `process` object carries its environment.
                        let whole = arg(0).and_then(|a| self.resolve(a, 0));
                        if whole == Some(Target::global("process")) {
                            self.emit(Feature::R5, "JSON.stringify(process)", node);
                        }
                        None
                    }
                    _ => None,
                };
                if let Some(feature) = feature {
                    self.emit(feature, target.display(), node);
                }
            }
            Target::Module { ref name, ref path } => {
                let kind = tables::module_kind(name);
                if let Some(feature) = kind.and_then(|k| tables::call_feature(k, path)) {
                    self.emit(feature, target.display(), node);
                }
                if new && kind == Some(Kind::Workers) && self.has_true_option(args, "eval") {
                    self.emit(Feature::P4, "new Worker(…, { eval: true })", node);
                }
            }
            Target::Rel { spec, path } if !path.contains('*') => {
                self.steps.push(Step::Call(CallRef {
                    module: Some(ModuleRef { spec, level: 0 }),
                    function: rel_function(&path, new),
                    line: line(node),
                }));
            }
            Target::LocalFn(function) => self.steps.push(Step::Call(CallRef {
                module: None,
                function,
                line: line(node),
            })),
            Target::LocalClass(class) if new => self.steps.push(Step::Call(CallRef {
                module: None,
                function: format!("{class}.constructor"),
                line: line(node),
            })),
            _ => {}
        }
    }

    /// `require(x)` / `import(x)`: the module's import feature, or running a relative module,
    /// or `P4` when the name is computed at run time.
    fn import_call(&mut self, node: Node<'a>, args: Option<Node<'a>>, form: Form) {
        let Some(first) = args.and_then(|a| nth_arg(a, 0)) else {
            return;
        };
        match self.const_string(first, 0).map(Cow::into_owned) {
            Some(spec) => self.import_module(&spec, form, node),
            None => {
                let detail = match form {
                    Form::Dynamic => "import of a computed name",
                    _ => "require of a computed name",
                };
                self.emit(Feature::P4, detail, node);
            }
        }
    }

    fn import_module(&mut self, spec: &str, form: Form, node: Node<'a>) {
        let bare = spec.strip_prefix("node:").unwrap_or(spec);
        if is_relative(bare) {
            self.steps.push(Step::Import(ModuleRef {
                spec: bare.to_owned(),
                level: 0,
            }));
            return;
        }
        let (package, _) = split_package(bare);
        if let Some(feature) = tables::module_kind(package).and_then(tables::import_feature) {
            self.emit(feature, form.detail(spec), node);
        }
    }

    fn visit_declarator(&mut self, node: Node<'a>) {
        let f = fields();
        let name = node.child_by_field_id(f.name);
        let value = node.child_by_field_id(f.value);
        if let Some(name) = name {
            match (name.k(), value) {
                ("identifier", Some(value)) => self.bind(self.text(name), value, true),
                ("identifier", None) => self.declare(self.text(name)),
                ("object_pattern", Some(value)) => {
                    if let Some(target) = self.resolve(value, 0) {
                        self.destructure(name, &target, 0);
                    }
                }
                _ => {}
            }
        }
        if let Some(name) = name.filter(|n| n.k() != "identifier") {
            self.stack.push(Task::Visit(name));
        }
        if let Some(value) = value {
            self.stack.push(Task::Visit(value));
        }
    }

    fn visit_assignment(&mut self, node: Node<'a>) {
        let f = fields();
        let left = node.child_by_field_id(f.left);
        let right = node.child_by_field_id(f.right);
        if let (Some(left), Some(right)) = (left, right) {
            if left.k() == "identifier" {
                self.bind(self.text(left), right, false);
            }
        }
        if let Some(right) = right {
            self.stack.push(Task::Visit(right));
        }
        if let Some(left) = left.filter(|l| l.k() != "identifier") {
            self.stack.push(Task::Visit(left));
        }
    }

    /// Records what `name` stands for after `name = value`.
    /// A declaration binds in the current function's scope; an assignment rebinds the name
    /// where it was declared (or in the file's scope), so the last value written wins.
    fn bind(&mut self, name: &'a str, value: Node<'a>, declaration: bool) {
        let target = self.resolve(value, 0).or_else(|| {
            self.const_string(value, 0)
                .filter(|s| s.len() <= 256)
                .map(|s| Target::Str(s.into_owned()))
        });
        if declaration {
            match target {
                Some(target) => self.bind_target(name, target),
                None => self.declare(name),
            }
            return;
        }
        if let Some(target) = &target {
            if access_feature(target).is_some() {
                self.access_names.insert(name);
            }
        }
        let owner = self
            .scopes
            .iter()
            .rposition(|scope| scope.contains_key(name));
        match (owner, target) {
            (Some(i), target) => {
                self.scopes[i].insert(name, target);
            }
            (None, Some(target)) => {
                self.scopes[0].insert(name, Some(target));
            }
            (None, None) => {}
        }
    }

    fn bind_target(&mut self, name: &'a str, target: Target) {
        if access_feature(&target).is_some() {
            self.access_names.insert(name);
        }
        if let Some(scope) = self.scopes.last_mut() {
            scope.insert(name, Some(target));
        }
    }

    /// A binding of the file's scope, from the scan of the top level.
    fn file_bind(&mut self, name: &'a str, target: Target) {
        self.scopes[0].insert(name, Some(target));
    }

    /// Declares `name` in the current scope with an unknown value.
    fn declare(&mut self, name: &'a str) {
        if let Some(scope) = self.scopes.last_mut() {
            scope.insert(name, None);
        }
    }

    /// Declares a function's parameters in its (new, current) scope. Parameters named like a
    /// global keep the global's meaning: wrappers pass the real one in (`function(require,
    /// module, exports)`, `(function($){…})(jQuery)`, `(function(global){…})(this)`), and an
    /// injected `fetch` still fetches.
    fn declare_parameters(&mut self, parameters: Node<'a>) {
        let f = fields();
        let src = self.src;
        let text = |node: Node<'a>| src.get(node.byte_range()).unwrap_or("");
        let collect = |node: Node<'a>, names: &mut Vec<&'a str>| match node.k() {
            "identifier" | "shorthand_property_identifier_pattern" => names.push(text(node)),
            "assignment_pattern" | "object_assignment_pattern" => {
                if let Some(left) = node.child_by_field_id(f.left) {
                    if matches!(
                        left.k(),
                        "identifier" | "shorthand_property_identifier_pattern"
                    ) {
                        names.push(text(left));
                    }
                }
            }
            "rest_pattern" => {
                if let Some(inner) = first_named(node).filter(|n| n.k() == "identifier") {
                    names.push(text(inner));
                }
            }
            "pair_pattern" => {
                if let Some(value) = node.child_by_field_id(f.value) {
                    if value.k() == "identifier" {
                        names.push(text(value));
                    }
                }
            }
            _ => {}
        };
        let mut names: Vec<&'a str> = Vec::new();
        if parameters.k() == "identifier" {
            collect(parameters, &mut names);
        } else {
            for parameter in self.named_children(parameters) {
                if parameter.k() == "object_pattern" {
                    for part in self.named_children(parameter) {
                        collect(part, &mut names);
                    }
                } else {
                    collect(parameter, &mut names);
                }
            }
        }
        for name in names {
            if name != "exports" && tables::global(name).is_none() {
                self.declare(name);
            }
        }
    }

    /// `const {exec, spawn: sp, env} = …`: binds each name and fires what reading it shows.
    fn destructure(&mut self, pattern: Node<'a>, target: &Target, depth: u32) {
        let f = fields();
        if depth > 8 {
            return;
        }
        for part in self.named_children(pattern) {
            match part.k() {
                "shorthand_property_identifier_pattern" => {
                    let name = self.text(part);
                    self.bind_member(name, target, name, part);
                }
                "object_assignment_pattern" => {
                    if let Some(left) = part.child_by_field_id(f.left) {
                        if left.k() == "shorthand_property_identifier_pattern" {
                            let name = self.text(left);
                            self.bind_member(name, target, name, part);
                        }
                    }
                }
                "pair_pattern" => {
                    let key = part
                        .child_by_field_id(f.key)
                        .and_then(|k| self.property_name(k));
                    let value = part.child_by_field_id(f.value);
                    let (Some(key), Some(mut value)) = (key, value) else {
                        continue;
                    };
                    if value.k() == "assignment_pattern" {
                        match value.child_by_field_id(f.left) {
                            Some(left) => value = left,
                            None => continue,
                        }
                    }
                    match value.k() {
                        "identifier" => {
                            let name = self.text(value);
                            self.bind_member(name, target, &key, part);
                        }
                        "object_pattern" => {
                            if let Some(inner) = self.member(target.clone(), &key) {
                                self.destructure(value, &inner, depth + 1);
                            }
                        }
                        _ => {}
                    }
                }
                "rest_pattern" => {
                    if let Some(inner) = first_named(part).filter(|n| n.k() == "identifier") {
                        self.bind_target(self.text(inner), target.clone());
                    }
                }
                _ => {}
            }
        }
    }

    fn bind_member(&mut self, name: &'a str, target: &Target, key: &str, node: Node<'a>) {
        if let Some(member) = self.member(target.clone(), key) {
            if let Some((feature, detail)) = access_feature(&member) {
                self.emit(feature, detail, node);
            }
            self.bind_target(name, member);
        }
    }

    fn visit_import(&mut self, node: Node<'a>) {
        let f = fields();
        let Some(spec) = node
            .child_by_field_id(f.source)
            .and_then(|s| self.const_string(s, 0))
            .map(Cow::into_owned)
        else {
            return;
        };
        let module = module_target(&spec);
        for clause in self.named_children(node) {
            if clause.k() != "import_clause" {
                continue;
            }
            for part in self.named_children(clause) {
                match part.k() {
                    "identifier" => {
                        let default = match &module {
                            Target::Rel { spec, .. } => Target::Rel {
                                spec: spec.clone(),
                                path: "default".to_owned(),
                            },
                            other => other.clone(),
                        };
                        self.bind_target(self.text(part), default);
                    }
                    "namespace_import" => {
                        if let Some(name) = first_named(part) {
                            self.bind_target(self.text(name), module.clone());
                        }
                    }
                    "named_imports" => {
                        for specifier in self.named_children(part) {
                            let Some(imported) = specifier.child_by_field_id(f.name) else {
                                continue;
                            };
                            let local = specifier.child_by_field_id(f.alias).unwrap_or(imported);
                            let Some(key) = self.property_name(imported) else {
                                continue;
                            };
                            if let Some(member) = self.member(module.clone(), &key) {
                                self.bind_target(self.text(local), member);
                            }
                        }
                    }
                    _ => {}
                }
            }
        }
        self.import_module(&spec, Form::Import, node);
    }

    fn visit_string(&mut self, node: Node<'a>) {
        let raw = self.text(node);
        let (value, escapes) = decode(string_body(raw));
        self.count_escapes(escapes, node);
        let in_table = node
            .parent()
            .is_some_and(|p| p.kind() == "array" && p.named_child_count() >= DATA_TABLE_ELEMENTS);
        if in_table {
            for feature in strings::classify(&value) {
                if !matches!(feature, Feature::D3 | Feature::D4) {
                    self.emit(feature, clip(&value, CLIP), node);
                }
            }
        } else {
            self.classify(&value, node);
        }
    }

    fn visit_template(&mut self, node: Node<'a>) {
        let mut text = String::new();
        let mut escapes = 0;
        let start = self.stack.len();
        let mut cursor = node.walk();
        if cursor.goto_first_child() {
            loop {
                let part = cursor.node();
                match part.k() {
                    "string_fragment" => text.push_str(self.text(part)),
                    "escape_sequence" => {
                        let (value, n) = decode(self.text(part));
                        text.push_str(&value);
                        escapes += n;
                    }
                    "template_substitution" => {
                        // A placeholder keeps `https://${host}/x` reading as an address.
                        text.push('x');
                        self.stack.push(Task::Visit(part));
                    }
                    _ => {}
                }
                if !cursor.goto_next_sibling() {
                    break;
                }
            }
        }
        self.stack[start..].reverse();
        self.count_escapes(escapes, node);
        self.classify(&text, node);
    }

    fn classify(&mut self, value: &str, node: Node<'a>) {
        for feature in strings::classify(value) {
            self.emit(feature, clip(value, CLIP), node);
        }
    }

    fn count_escapes(&mut self, escapes: u32, node: Node<'a>) {
        if escapes == 0 {
            return;
        }
        self.escapes = self.escapes.saturating_add(escapes);
        if escapes >= ESCAPES_PER_STRING || self.escapes >= ESCAPES_PER_FILE {
            self.obfuscated(
                Obfuscation::Escapes,
                "text hidden in escape sequences",
                node,
            );
        }
    }

    fn jsfuck_atom(&mut self, node: Node<'a>) {
        self.jsfuck += 1;
        if self.jsfuck >= JSFUCK_ATOMS {
            self.obfuscated(Obfuscation::JsFuck, "JSFuck-style expressions", node);
        }
    }

    /// `{ shell: true }` or `{ shell: '/bin/sh' }`: a command runs through a shell.
    fn check_shell_option(&mut self, pair: Node<'a>) {
        let f = fields();
        let key = pair
            .child_by_field_id(f.key)
            .and_then(|k| self.property_name(k));
        if key.as_deref() != Some("shell") {
            return;
        }
        let Some(value) = pair.child_by_field_id(f.value) else {
            return;
        };
        let fires = match value.k() {
            "true" => true,
            "string" | "template_string" => self
                .const_string(value, 0)
                .is_some_and(|s| !s.is_empty() && s != "false"),
            _ => false,
        };
        if fires {
            let detail = format!("shell: {}", clip(self.text(value), 60));
            self.emit(Feature::P3, detail, pair);
        }
    }

    /// Whether some object literal among `args` has `key: true`.
    fn has_true_option(&self, args: Option<Node<'a>>, key: &str) -> bool {
        let f = fields();
        let Some(args) = args else {
            return false;
        };
        let mut cursor = args.walk();
        let objects: Vec<Node<'a>> = args
            .named_children(&mut cursor)
            .filter(|a| a.k() == "object")
            .collect();
        objects.into_iter().any(|object| {
            let mut cursor = object.walk();
            let found = object.named_children(&mut cursor).any(|pair| {
                pair.k() == "pair"
                    && pair
                        .child_by_field_id(f.key)
                        .and_then(|k| self.property_name(k))
                        .as_deref()
                        == Some(key)
                    && pair
                        .child_by_field_id(f.value)
                        .is_some_and(|v| v.k() == "true")
            });
            found
        })
    }

    /// File-level `O1` evidence, found with byte scans of the raw text rather than per node:
    /// each kind is reported once, at its first occurrence.
    fn raw_text_obfuscation(&mut self) {
        if let Some((at, name)) = hex_names(self.src) {
            self.file_level_o1(
                Obfuscation::HexNames,
                at,
                "obfuscator-style _0x names",
                name,
            );
        }
        if let Some(at) = octal_soup(self.src) {
            let excerpt = clip(&self.src[at..], 40);
            self.file_level_o1(
                Obfuscation::NumberSoup,
                at,
                "constants hidden in octal arithmetic",
                excerpt,
            );
        }
        if let Some((at, end)) = string_table(self.src) {
            let excerpt = clip(&self.src[at..end], CLIP);
            self.file_level_o1(
                Obfuscation::StringTable,
                at,
                "text assembled from a string table",
                excerpt,
            );
        }
    }

    fn file_level_o1(&mut self, kind: Obfuscation, offset: usize, detail: &str, excerpt: &str) {
        let line = self.src[..offset].bytes().filter(|&b| b == b'\n').count() + 1;
        let line = u32::try_from(line).unwrap_or(u32::MAX);
        self.obfuscation |= kind as u8;
        self.steps.push(Step::Event(Event::new(
            Feature::O1,
            self.path,
            line,
            detail,
            excerpt,
        )));
    }

    fn obfuscated(&mut self, kind: Obfuscation, detail: &str, node: Node<'a>) {
        if self.obfuscation & kind as u8 == 0 {
            self.obfuscation |= kind as u8;
            self.emit(Feature::O1, detail, node);
        }
    }

    fn emit(&mut self, feature: Feature, detail: impl Into<String>, node: Node<'a>) {
        let excerpt = clip(self.text(node), CLIP);
        self.steps.push(Step::Event(Event::new(
            feature,
            self.path,
            line(node),
            detail,
            excerpt,
        )));
    }

    // ----- names -----

    fn lookup(&self, name: &str) -> Option<Target> {
        for scope in self.scopes.iter().rev() {
            if let Some(found) = scope.get(name) {
                return found.clone();
            }
        }
        if name == "exports" {
            return Some(Target::Exports);
        }
        tables::global(name).map(Target::global)
    }

    /// What the expression `node` names, if anything known.
    fn resolve(&self, node: Node<'a>, depth: u32) -> Option<Target> {
        let f = fields();
        if depth > MAX_RESOLVE_DEPTH {
            return None;
        }
        match node.k() {
            "identifier" => self.lookup(self.text(node)),
            "this" => (self.this != ThisIs::Nothing).then_some(Target::This),
            "member_expression" => {
                let base = self.resolve(node.child_by_field_id(f.object)?, depth + 1)?;
                let property = node.child_by_field_id(f.property)?;
                self.member(base, self.text(property))
            }
            "subscript_expression" => {
                let base = self.resolve(node.child_by_field_id(f.object)?, depth + 1)?;
                let key = node
                    .child_by_field_id(f.index)
                    .and_then(|i| self.const_string(i, 0));
                self.member(base, key.as_deref().unwrap_or("*"))
            }
            "parenthesized_expression" | "sequence_expression" => {
                self.resolve(last_named(node)?, depth + 1)
            }
            "await_expression" => self.resolve(first_named(node)?, depth + 1),
            "call_expression" => self.resolve_call(node, depth + 1),
            "binary_expression" => {
                let operator = node.child_by_field_id(f.operator).map(|o| self.text(o));
                if !matches!(operator, Some("||" | "??")) {
                    return None;
                }
                self.resolve(node.child_by_field_id(f.left)?, depth + 1)
                    .or_else(|| self.resolve(node.child_by_field_id(f.right)?, depth + 1))
            }
            "ternary_expression" => self
                .resolve(node.child_by_field_id(f.consequence)?, depth + 1)
                .or_else(|| self.resolve(node.child_by_field_id(f.alternative)?, depth + 1)),
            "assignment_expression" => self.resolve(node.child_by_field_id(f.right)?, depth + 1),
            _ => None,
        }
    }

    /// The value of a call, when it is a module or a function known by name: `require('x')`,
    /// `import('x')`, `promisify(f)`, `f.bind(…)`, `createRequire(…)`, `eval('require')`.
    fn resolve_call(&self, call: Node<'a>, depth: u32) -> Option<Target> {
        let f = fields();
        let callee = unwrap(call.child_by_field_id(f.function)?);
        let args = call.child_by_field_id(f.arguments);
        if callee.k() == "import" {
            return Some(module_target(&self.first_arg_string(args?)?));
        }
        if callee.k() == "member_expression"
            && self.member_property(callee).as_deref() == Some("bind")
        {
            return self.resolve(unwrap(callee.child_by_field_id(f.object)?), depth + 1);
        }
        // Module interop helpers of TypeScript, Babel and esbuild return their argument's
        // module: `__importDefault(require('axios'))`.
        let helper = match callee.k() {
            "identifier" => Some(self.text(callee)),
            "member_expression" => callee.child_by_field_id(f.property).map(|p| self.text(p)),
            _ => None,
        };
        if helper.is_some_and(is_interop_helper) {
            return self.resolve(nth_arg(args?, 0)?, depth + 1);
        }
        let target = self.resolve(callee, depth + 1)?;
        if is_require(&target) {
            return Some(module_target(&self.first_arg_string(args?)?));
        }
        match &target {
            Target::Module { name, path } if name == "util" && path == "promisify" => {
                self.resolve(nth_arg(args?, 0)?, depth + 1)
            }
            Target::Module { name, path }
                if name == "module"
                    && (path == "createRequire" || path.ends_with(".createRequire")) =>
            {
                Some(Target::global("require"))
            }
            Target::Global { name: "eval", path } if path.is_empty() => {
                let text = self.first_arg_string(args?)?;
                (text.trim() == "require").then(|| Target::global("require"))
            }
            _ => None,
        }
    }

    /// `base.prop`, normalised: global objects drop out (`window.fetch` is `fetch`),
    /// `module.require` and `process.mainModule.require` are `require`, members of this
    /// file's exports, classes and `this` are its functions.
    fn member(&self, base: Target, prop: &str) -> Option<Target> {
        let join = |path: &str| -> Option<String> {
            if path.len() + prop.len() >= MAX_PATH_LEN {
                None
            } else if path.is_empty() {
                Some(prop.to_owned())
            } else {
                Some(format!("{path}.{prop}"))
            }
        };
        Some(match base {
            Target::Global { name, path } if path.is_empty() => match name {
                g if tables::is_global_object(g) => match tables::global(prop) {
                    Some(global) => Target::global(global),
                    None => Target::Global {
                        name,
                        path: join("")?,
                    },
                },
                "module" if prop == "exports" => Target::Exports,
                "module" if prop == "require" => Target::global("require"),
                "process" if prop == "mainModule" => Target::global("module"),
                "require" if prop == "main" => Target::global("module"),
                _ => Target::Global {
                    name,
                    path: join("")?,
                },
            },
            Target::Global { name, path } => Target::Global {
                name,
                path: join(&path)?,
            },
            Target::Module { name, path } => {
                if path.is_empty() && prop == "default" {
                    Target::Module { name, path }
                } else if path.is_empty() && name == "buffer" && prop == "Buffer" {
                    Target::global("Buffer")
                } else if path.is_empty()
                    && name == "timers"
                    && matches!(prop, "setTimeout" | "setInterval" | "setImmediate")
                {
                    Target::global(tables::global(prop)?)
                } else {
                    Target::Module {
                        path: join(&path)?,
                        name,
                    }
                }
            }
            Target::Rel { spec, path } => Target::Rel {
                path: join(&path)?,
                spec,
            },
            Target::Exports => self.local_function(prop.to_owned())?,
            Target::This => match &self.this {
                ThisIs::Class(class) => self.local_function(format!("{class}.{prop}"))?,
                ThisIs::Exports => self.local_function(prop.to_owned())?,
                ThisIs::Nothing => return None,
            },
            Target::LocalClass(class) => self.local_function(format!("{class}.{prop}"))?,
            Target::LocalFn(_) | Target::Str(_) => return None,
        })
    }

    fn local_function(&self, name: String) -> Option<Target> {
        self.fn_names
            .contains(&name)
            .then_some(Target::LocalFn(name))
    }

    /// The property a member or subscript expression reads, when known.
    fn member_property(&self, node: Node<'a>) -> Option<Cow<'_, str>> {
        let f = fields();
        match node.k() {
            "member_expression" => node
                .child_by_field_id(f.property)
                .map(|p| Cow::Borrowed(self.text(p))),
            "subscript_expression" => self.const_string(node.child_by_field_id(f.index)?, 0),
            _ => None,
        }
    }

    /// The name a property key, import or export specifier stands for.
    fn property_name(&self, node: Node<'a>) -> Option<String> {
        match node.k() {
            "property_identifier"
            | "identifier"
            | "private_property_identifier"
            | "number"
            | "default" => Some(self.text(node).to_owned()),
            "string" => Some(decode(string_body(self.text(node))).0.into_owned()),
            _ => None,
        }
    }

    // ----- constants -----

    /// The text of a constant string expression: literals, templates without substitutions,
    /// `+` concatenations of those, and names bound to literals.
    fn const_string(&self, node: Node<'a>, depth: u32) -> Option<Cow<'_, str>> {
        if depth > MAX_RESOLVE_DEPTH {
            return None;
        }
        let f = fields();
        match node.k() {
            "string" => Some(decode(string_body(self.text(node))).0),
            "template_string" => {
                let mut text = String::new();
                let mut cursor = node.walk();
                for part in node.named_children(&mut cursor) {
                    match part.k() {
                        "string_fragment" => text.push_str(self.text(part)),
                        "escape_sequence" => text.push_str(&decode(self.text(part)).0),
                        "template_substitution" => return None,
                        _ => {}
                    }
                }
                Some(Cow::Owned(text))
            }
            "binary_expression" => {
                let operator = node.child_by_field_id(f.operator).map(|o| self.text(o));
                if operator != Some("+") {
                    return None;
                }
                let left = self.const_string(node.child_by_field_id(f.left)?, depth + 1)?;
                let right = self.const_string(node.child_by_field_id(f.right)?, depth + 1)?;
                if left.len() + right.len() > 1 << 16 {
                    return None;
                }
                Some(Cow::Owned(format!("{left}{right}")))
            }
            "parenthesized_expression" => self.const_string(last_named(node)?, depth + 1),
            "identifier" => match self.lookup(self.text(node)) {
                Some(Target::Str(s)) => Some(Cow::Owned(s)),
                _ => None,
            },
            _ => None,
        }
    }

    /// Whether an expression builds a string from literal code text (`setTimeout('…')`).
    fn is_stringy(&self, node: Node<'a>, depth: u32) -> bool {
        let f = fields();
        match node.k() {
            "string" | "template_string" => true,
            "identifier" => matches!(self.lookup(self.text(node)), Some(Target::Str(_))),
            "parenthesized_expression" if depth < 16 => {
                last_named(node).is_some_and(|n| self.is_stringy(n, depth + 1))
            }
            "binary_expression" if depth < 16 => {
                node.child_by_field_id(f.operator).map(|o| self.text(o)) == Some("+")
                    && [f.left, f.right].iter().any(|&side| {
                        node.child_by_field_id(side)
                            .is_some_and(|n| self.is_stringy(n, depth + 1))
                    })
            }
            _ => false,
        }
    }

    fn first_arg_string(&self, args: Node<'a>) -> Option<String> {
        self.arg_string(args, 0)
    }

    fn arg_string(&self, args: Node<'a>, i: usize) -> Option<String> {
        self.const_string(nth_arg(args, i)?, 0).map(Cow::into_owned)
    }

    /// All arguments as constant strings, or `None` if any is not one.
    fn all_arg_strings(&self, args: Node<'a>) -> Option<Vec<Cow<'_, str>>> {
        if args.k() != "arguments" {
            return None;
        }
        let mut cursor = args.walk();
        let nodes: Vec<Node<'a>> = args
            .named_children(&mut cursor)
            .filter(|n| !n.is_extra())
            .take(8)
            .collect();
        nodes.into_iter().map(|n| self.const_string(n, 0)).collect()
    }

    fn text(&self, node: Node<'a>) -> &'a str {
        self.src.get(node.byte_range()).unwrap_or("")
    }
}

/// What reading `target` shows, with the detail to report.
fn access_feature(target: &Target) -> Option<(Feature, &'static str)> {
    match target {
        // `NODE_ENV` is read by nearly every bundle and says nothing sensitive.
        Target::Global {
            name: "process",
            path,
        } if (path == "env" || path.starts_with("env.")) && path != "env.NODE_ENV" => {
            Some((Feature::R5, "process.env"))
        }
        Target::Global {
            name: "document",
            path,
        } if path == "cookie" => Some((Feature::R5, "document.cookie")),
        _ => None,
    }
}

/// `require` itself, under any of its names.
fn is_require(target: &Target) -> bool {
    match target {
        Target::Global {
            name: "require",
            path,
        } => path.is_empty(),
        Target::Global {
            name: "module",
            path,
        } => path == "_load" || path == "constructor._load",
        Target::Module { name, path } => {
            name == "module" && (path == "_load" || path == "Module._load")
        }
        _ => false,
    }
}

/// Whether `name` is a compiler's module interop helper, which returns (a wrapper of) the
/// module it is given.
fn is_interop_helper(name: &str) -> bool {
    matches!(
        name,
        "__importDefault"
            | "__importStar"
            | "__toESM"
            | "__toCommonJS"
            | "_interopRequireDefault"
            | "_interopRequireWildcard"
            | "_interop_require_default"
            | "_interop_require_wildcard"
    )
}

/// What `require(spec)` / `import … from spec` binds.
fn module_target(spec: &str) -> Target {
    let bare = spec.strip_prefix("node:").unwrap_or(spec);
    if is_relative(bare) {
        return Target::Rel {
            spec: bare.to_owned(),
            path: String::new(),
        };
    }
    let (package, sub) = split_package(bare);
    if package == "process" && sub.is_empty() {
        return Target::global("process");
    }
    Target::Module {
        name: package.to_owned(),
        path: sub.trim_matches('/').replace('/', "."),
    }
}

/// A package name and its subpath: `fs/promises` → (`fs`, `promises`), `@a/b/c` → (`@a/b`, `c`).
fn split_package(spec: &str) -> (&str, &str) {
    let first = spec.find('/');
    let end = if spec.starts_with('@') {
        first.and_then(|i| spec[i + 1..].find('/').map(|j| i + 1 + j))
    } else {
        first
    };
    match end {
        Some(i) => (&spec[..i], &spec[i + 1..]),
        None => (spec, ""),
    }
}

/// Whether a specifier names a file of the package rather than a package.
fn is_relative(spec: &str) -> bool {
    spec.starts_with("./")
        || spec.starts_with("../")
        || spec.starts_with('/')
        || spec == "."
        || spec == ".."
}

/// The function a call through a relative module's binding reaches.
fn rel_function(path: &str, new: bool) -> String {
    let base = match path {
        "" | "default" => "default",
        _ => path.strip_prefix("default.").unwrap_or(path),
    };
    if new {
        format!("{base}.constructor")
    } else {
        base.to_owned()
    }
}

fn is_function_kind(kind: &str) -> bool {
    matches!(
        kind,
        "function_expression" | "arrow_function" | "generator_function" | "function"
    )
}

fn is_function(node: Node) -> bool {
    is_function_kind(node.k())
}

fn is_empty_array(node: Node) -> bool {
    node.k() == "array" && node.named_child_count() == 0
}

/// `eval(function(p,a,c,k,e,…){…}(…, '…'.split('|'), …))`: Dean Edwards' packer and its
/// renamed variants: a decoder function of five or more parameters called at once, fed a word
/// list split on `|` (or with the packer's one-letter parameters).
fn is_packer(node: Node, src: &str) -> bool {
    let node = unwrap(node);
    if node.k() != "call_expression" {
        return false;
    }
    let Some(function) = node.child_by_field_id(fields().function).map(unwrap) else {
        return false;
    };
    if !is_function(function) {
        return false;
    }
    let Some(parameters) = function.child_by_field_id(fields().parameters) else {
        return false;
    };
    let names: Vec<Node> = {
        let mut cursor = parameters.walk();
        parameters.named_children(&mut cursor).take(8).collect()
    };
    if names.len() < 5 {
        return false;
    }
    let one_letter = names.iter().all(|n| n.byte_range().len() == 1);
    let split = node
        .child_by_field_id(fields().arguments)
        .and_then(|a| src.get(a.byte_range()))
        .is_some_and(|text| text.contains("split('|')") || text.contains("split(\"|\")"));
    one_letter || split
}

/// Strips parentheses and the comma operator: `(0, eval)` is `eval`.
fn unwrap(mut node: Node) -> Node {
    for _ in 0..32 {
        match node.k() {
            "parenthesized_expression" | "sequence_expression" => match last_named(node) {
                Some(inner) => node = inner,
                None => break,
            },
            _ => break,
        }
    }
    node
}

fn first_named(node: Node) -> Option<Node> {
    (0..node.named_child_count())
        .filter_map(|i| node.named_child(i))
        .find(|n| !n.is_extra())
}

fn last_named(node: Node) -> Option<Node> {
    (0..node.named_child_count())
        .rev()
        .filter_map(|i| node.named_child(i))
        .find(|n| !n.is_extra())
}

/// The `i`th argument of an `arguments` node, comments skipped.
fn nth_arg(args: Node, i: usize) -> Option<Node> {
    if args.k() != "arguments" {
        return None;
    }
    let mut cursor = args.walk();
    let found = args
        .named_children(&mut cursor)
        .filter(|n| !n.is_extra())
        .nth(i);
    found
}

/// Whether `node` has an anonymous child token `token` (`export default`).
fn has_token(node: Node, token: &str) -> bool {
    let mut cursor = node.walk();
    let found = node
        .children(&mut cursor)
        .any(|c| !c.is_named() && c.k() == token);
    found
}

fn line(node: Node) -> u32 {
    u32::try_from(node.start_position().row)
        .unwrap_or(u32::MAX - 1)
        .saturating_add(1)
}

/// javascript-obfuscator's `_0x…` names: the offset of the first and the first name, once
/// three distinct ones are seen.
fn hex_names(src: &str) -> Option<(usize, &str)> {
    let bytes = src.as_bytes();
    let mut seen: [&str; 3] = [""; 3];
    let mut count = 0;
    let mut first = None;
    for (i, _) in src.match_indices("_0x") {
        if i > 0 && is_ident_byte(bytes[i - 1]) {
            continue;
        }
        let mut j = i + 3;
        while j < bytes.len() && bytes[j].is_ascii_hexdigit() {
            j += 1;
        }
        if j - (i + 3) < 4 || (j < bytes.len() && is_ident_byte(bytes[j])) {
            continue;
        }
        let name = &src[i..j];
        first.get_or_insert(i);
        if !seen[..count].contains(&name) {
            seen[count] = name;
            count += 1;
            if count == seen.len() {
                return first.map(|f| (f, seen[0]));
            }
        }
    }
    None
}

/// The offset of the first octal literal (`0o17`) when a file has at least
/// [`OCTAL_LITERALS_PER_FILE`] of them.
fn octal_soup(src: &str) -> Option<usize> {
    let bytes = src.as_bytes();
    let mut count = 0;
    let mut first = None;
    for (i, _) in src.match_indices('0') {
        let is_octal = matches!(bytes.get(i + 1), Some(b'o' | b'O'))
            && bytes.get(i + 2).is_some_and(|b| (b'0'..=b'7').contains(b))
            && (i == 0 || !(is_ident_byte(bytes[i - 1]) || bytes[i - 1] == b'.'));
        if is_octal {
            first.get_or_insert(i);
            count += 1;
            if count == OCTAL_LITERALS_PER_FILE {
                return first;
            }
        }
    }
    None
}

/// The span of the first run of [`STRING_TABLE_RUN`] numbered lookups of one array joined by
/// `+` (`_t[3] + _t[17] + …`).
fn string_table(src: &str) -> Option<(usize, usize)> {
    let bytes = src.as_bytes();
    // (array name, end of the lookup, start of the run, lookups in the run)
    let mut run: Option<(&str, usize, usize, usize)> = None;
    for (open, _) in src.match_indices('[') {
        let mut start = open;
        while start > 0 && is_ident_byte(bytes[start - 1]) {
            start -= 1;
        }
        let mut close = open + 1;
        while close < bytes.len() && bytes[close].is_ascii_digit() {
            close += 1;
        }
        let is_lookup = start < open
            && !bytes[start].is_ascii_digit()
            && (start == 0 || bytes[start - 1] != b'.')
            && close > open + 1
            && bytes.get(close) == Some(&b']');
        if !is_lookup {
            continue;
        }
        let name = &src[start..open];
        let end = close + 1;
        let joined = |prev_end: usize| src[prev_end..start].trim() == "+";
        run = match run {
            Some((prev, prev_end, run_start, n))
                if prev == name && prev_end <= start && joined(prev_end) =>
            {
                Some((name, end, run_start, n + 1))
            }
            _ => Some((name, end, start, 1)),
        };
        if let Some((_, end, run_start, STRING_TABLE_RUN)) = run {
            return Some((run_start, end));
        }
    }
    None
}
