//! Python's mapping onto the unified feature set, read with tree-sitter.
//!
//! The walker follows statements in the order they run and keeps an alias table, so that an
//! API is recognised however it was named: `import subprocess as sp`, `from os import system`,
//! `from os import *`, `s = subprocess.Popen`, `__import__('os').system`,
//! `importlib.import_module('os')`, `getattr(os, 'system')`. Names resolve to dotted API paths
//! (`subprocess.Popen`, `requests.Session().post`) that the `tables` submodule maps to
//! features; names bound to code of this file or of a possibly-local module become
//! [`Step::Call`]s. Code decoded from literals (`exec(b64decode('...'))`) is parsed and walked
//! where it runs.
//!
//! Module top level and class bodies go to [`FileFacts::top_level`]; each named function
//! (`f`, `Class.method`) is walked afterwards, with the module's final bindings, into its own
//! [`Function`]. A `def` inside a function, and every lambda, is walked inline.
//!
//! Hostile input is expected: files over [`MAX_PARSE_BYTES`] are not parsed, nesting deeper
//! than a fixed bound is not descended (and is itself reported as obfuscation), and the
//! number of steps per file is capped.

mod literal;
mod tables;

use std::cell::{Cell, RefCell};
use std::collections::{HashMap, HashSet};
use std::rc::Rc;
use std::sync::OnceLock;

use tree_sitter::{Node, Parser, Tree, TreeCursor};

use super::{strings, CallRef, Event, Feature, FileFacts, Function, Language, ModuleRef, Step};
use literal::Prefix;

/// Largest file parsed; a larger one gets a single `E4` event, since real source files are
/// far smaller and a parse of tens of megabytes would stall the scan.
pub const MAX_PARSE_BYTES: usize = 2 * 1024 * 1024;

/// Deepest syntax nesting descended. The walk recurses, and hostile files nest 100k levels
/// deep; real code stays under 40 (measured over the standard library and a few thousand
/// package files), and 100 levels fit a 2 MB thread stack several times over.
const MAX_DEPTH: u32 = 100;
/// Deepest expression followed when resolving a name (`a.b().c.d`...).
const MAX_RESOLVE_DEPTH: u32 = 32;
/// Past this many steps in one function (or top level), a repeat of the previous feature is
/// dropped: the sequence collapses repeats anyway, and data files hold thousands of literals.
const SOFT_SINK_STEPS: usize = 4096;
/// Hard cap on the steps of one file.
const MAX_FILE_STEPS: usize = 50_000;
/// Executable lines of one `.pth` file that are read (a real one has one or two).
const MAX_PTH_CODE_LINES: usize = 256;
/// A literal with at least this many numeric escapes (`\x41`) is hiding its text (`O1`).
const MANY_ESCAPES: usize = 16;
/// Lines longer than this holding `lambda`/`__import__`/`exec(` are packed one-liners (`O1`).
const LONG_CODE_LINE: usize = 500;
/// Most bytes of code decoded from literals (`exec(b64decode('...'))`) parsed per file, and
/// how deep payloads inside payloads are followed.
const MAX_PAYLOAD_BYTES_PER_FILE: usize = 4 * 1024 * 1024;
const MAX_PAYLOAD_DEPTH: u32 = 4;
/// Largest output of one decompression of a payload (a zip bomb stops here).
const MAX_INFLATED_BYTES: u64 = 1024 * 1024;
/// Longest literal text kept as an event's detail (Event::new shortens further).
const DETAIL_BYTES: usize = 240;

/// The setuptools commands that `pip install` of an sdist (or of a source tree, editable or
/// not) runs, directly or as sub-commands: metadata, the build, the install steps.
const INSTALL_COMMANDS: &[&str] = &[
    "egg_info",
    "dist_info",
    "bdist_wheel",
    "bdist_egg",
    "editable_wheel",
    "develop",
    "build",
    "build_py",
    "build_ext",
    "build_clib",
    "build_scripts",
    "install",
    "install_lib",
    "install_headers",
    "install_scripts",
    "install_data",
    "install_egg_info",
];

// One bit per kind of `O1` evidence, so each kind is reported once per file.
const O1_ESCAPES: u8 = 1;
const O1_PYARMOR: u8 = 2;
const O1_SOUP: u8 = 4;
const O1_ONE_LINER: u8 = 8;
const O1_DEEP: u8 = 16;
const O1_BUILTIN_LOOKUP: u8 = 32;

/// Extracts the behaviour steps of one Python source file.
pub fn extract(path: &str, source: &str) -> FileFacts {
    let mut facts = empty_facts(path);
    if source.len() > MAX_PARSE_BYTES {
        facts.top_level.push(too_large(path, source.len()));
        return facts;
    }
    extract_code(&mut facts, source, 0);
    facts
}

/// Extracts a `.pth` file: its `import` lines run at every interpreter start-up (`site`
/// executes them), so each is an install hook (`H1`) followed by what the line does; the other
/// lines are paths and do nothing.
pub fn extract_pth(path: &str, source: &str) -> FileFacts {
    let mut facts = empty_facts(path);
    if source.len() > MAX_PARSE_BYTES {
        facts.top_level.push(too_large(path, source.len()));
        return facts;
    }
    let mut code_lines = 0;
    for (n, line) in source.lines().enumerate() {
        let code = line.trim_start();
        let executable = code
            .strip_prefix("import")
            .is_some_and(|rest| rest.starts_with([' ', '\t']));
        if !executable {
            continue;
        }
        code_lines += 1;
        if code_lines > MAX_PTH_CODE_LINES {
            break;
        }
        let lineno = u32::try_from(n + 1).unwrap_or(u32::MAX);
        facts.top_level.push(Step::Event(Event::new(
            Feature::H1,
            path,
            lineno,
            "executable .pth line",
            line,
        )));
        extract_code(&mut facts, code, lineno - 1);
    }
    facts
}

fn empty_facts(path: &str) -> FileFacts {
    FileFacts {
        path: path.to_owned(),
        language: Language::Python,
        top_level: Vec::new(),
        functions: Vec::new(),
    }
}

fn too_large(path: &str, len: usize) -> Step {
    Step::Event(Event::new(
        Feature::E4,
        path,
        1,
        format!("file too large to parse ({len} bytes)"),
        "",
    ))
}

/// Parses `source` and appends what it does to `facts`, its lines shifted by `line_offset`.
fn extract_code(facts: &mut FileFacts, source: &str, line_offset: u32) {
    let nested = Nested::file(line_offset);
    match walk_source(&facts.path, source, nested, HashMap::new()) {
        Some((top, functions)) => {
            facts.top_level.extend(top);
            merge_functions(&mut facts.functions, functions);
        }
        None => facts.top_level.push(Step::Event(Event::new(
            Feature::E4,
            &facts.path,
            line_offset + 1,
            format!("{} ({} bytes)", super::GAVE_UP, source.len()),
            "",
        ))),
    }
}

/// Parses and walks `source` with the names of `scope` bound: its top-level steps and its
/// functions.
fn walk_source<'s>(
    path: &'s str,
    source: &'s str,
    nested: Nested,
    scope: HashMap<&'s str, Val>,
) -> Option<(Vec<Step>, Vec<Function>)> {
    let tree = parse(source)?;
    let root = tree.root_node();
    let mut walker = Walker::new(path, source, root, nested);
    walker.scope = scope;
    walker.run(root);
    let Walker { top, functions, .. } = walker;
    Some((top, functions))
}

/// Adds `more` to `functions`, appending the steps of a name defined twice to the first.
fn merge_functions(functions: &mut Vec<Function>, more: Vec<Function>) {
    for f in more {
        match functions.iter_mut().find(|g| g.name == f.name) {
            Some(g) => g.steps.extend(f.steps),
            None => functions.push(f),
        }
    }
}

thread_local! {
    /// One parser per thread: creating one per file costs more than parsing a small file.
    static PARSER: RefCell<Option<Parser>> = const { RefCell::new(None) };
}

fn new_parser() -> Option<Parser> {
    let mut parser = Parser::new();
    parser
        .set_language(&tree_sitter_python::LANGUAGE.into())
        .ok()?;
    Some(parser)
}

/// Most parse work for one file (or decoded payload): the shared budget
/// ([`crate::parse::budget`]), which tests on this thread may replace.
fn parse_budget(len: usize) -> u64 {
    #[cfg(test)]
    if let Some(budget) = tests::BUDGET.with(Cell::get) {
        return budget;
    }
    crate::parse::budget(len)
}

/// Parses `source`, giving up after [`parse_budget`] (`None`).
fn parse(source: &str) -> Option<Tree> {
    let budget = parse_budget(source.len());
    PARSER.with(|cell| match cell.try_borrow_mut() {
        Ok(mut slot) => {
            if slot.is_none() {
                *slot = new_parser();
            }
            crate::parse::parse_within(slot.as_mut()?, source, budget)
        }
        Err(_) => crate::parse::parse_within(&mut new_parser()?, source, budget),
    })
}

/// Field ids of the grammar, looked up once (by name they cost a string search per use).
struct Fields {
    function: u16,
    arguments: u16,
    object: u16,
    attribute: u16,
    name: u16,
    alias: u16,
    module_name: u16,
    left: u16,
    right: u16,
    value: u16,
    body: u16,
    parameters: u16,
    superclasses: u16,
    definition: u16,
    key: u16,
    subscript: u16,
    operator: u16,
    condition: u16,
}

fn fields() -> &'static Fields {
    static FIELDS: OnceLock<Fields> = OnceLock::new();
    FIELDS.get_or_init(|| {
        let language: tree_sitter::Language = tree_sitter_python::LANGUAGE.into();
        let id = |name: &str| language.field_id_for_name(name).map_or(0, |f| f.get());
        Fields {
            function: id("function"),
            arguments: id("arguments"),
            object: id("object"),
            attribute: id("attribute"),
            name: id("name"),
            alias: id("alias"),
            module_name: id("module_name"),
            left: id("left"),
            right: id("right"),
            value: id("value"),
            body: id("body"),
            parameters: id("parameters"),
            superclasses: id("superclasses"),
            definition: id("definition"),
            key: id("key"),
            subscript: id("subscript"),
            operator: id("operator"),
            condition: id("condition"),
        }
    })
}

/// The kind of a node, by table: `Node::kind` goes through FFI and re-validates the name as
/// UTF-8 on every call, and the walk asks for a kind at every node.
fn kind(node: Node) -> &'static str {
    static KINDS: OnceLock<Vec<&'static str>> = OnceLock::new();
    let kinds = KINDS.get_or_init(|| {
        let language: tree_sitter::Language = tree_sitter_python::LANGUAGE.into();
        (0..language.node_kind_count())
            .map(|id| {
                u16::try_from(id)
                    .ok()
                    .and_then(|id| language.node_kind_for_id(id))
                    .unwrap_or("")
            })
            .collect()
    });
    kinds
        .get(usize::from(node.kind_id()))
        .copied()
        .unwrap_or("")
}

/// What a name or expression stands for.
#[derive(Debug, Clone)]
enum Val {
    /// A known API, dotted (`os`, `os.system`, `socket.socket()` for a call's result).
    Api(String),
    /// Something of a module that may be part of the package: the module and the dotted
    /// path inside it (empty for the module itself).
    Pkg(Rc<ModuleRef>, String),
    /// A function (or method, `Class.m`) defined in this file.
    Func(String),
    /// A class defined in this file, by qualified name.
    Class(String),
    /// An instance of a class defined in this file.
    Inst(String),
    /// Something this file bound that is none of the above (a variable, a parameter): it
    /// shadows builtins, star imports and functions of the same name.
    Opaque,
}

/// What the pre-pass learnt about a class of this file.
#[derive(Default)]
struct ClassInfo<'a> {
    methods: HashSet<&'a str>,
    bases: Vec<&'a str>,
}

/// A named function whose body is walked after the module's top level.
#[derive(Clone)]
struct Deferred<'a> {
    name: String,
    class: Option<String>,
    node: Node<'a>,
    decorated: Option<Node<'a>>,
}

struct Walker<'a> {
    path: &'a str,
    src: &'a str,
    f: &'static Fields,
    cursor: TreeCursor<'a>,
    /// Children of the nodes being walked, a stack shared by all levels (no allocation per
    /// node): each level pushes its children, walks them by index and truncates back.
    buf: Vec<Node<'a>>,

    scope: HashMap<&'a str, Val>,
    /// Previous bindings to restore when a function, lambda or class body ends.
    undo: Vec<(&'a str, Option<Val>)>,
    scopes_open: u32,
    /// Known modules imported with `*`, and possibly-local ones.
    star_api: Vec<String>,
    star_pkg: Vec<Rc<ModuleRef>>,
    /// Top-level functions and all classes (qualified) of the file, from the pre-pass.
    defined: HashSet<&'a str>,
    classes: HashMap<String, ClassInfo<'a>>,
    /// Names bound to a dict literal or `dict(...)`, for `setup(cmdclass=name)`.
    dicts: HashMap<&'a str, Node<'a>>,

    sink: Vec<Step>,
    top: Vec<Step>,
    functions: Vec<Function>,
    deferred: Vec<Deferred<'a>>,
    class_ctx: Option<String>,
    fn_depth: u32,
    steps: usize,
    text_buf: String,

    o1: u8,
    soup: HashSet<&'a str>,
    long_rows: Vec<usize>,
    pyarmor: bool,

    /// Bindings of imports anywhere in the module's top level (also inside `if`/`try`/loops),
    /// used for names not bound yet where they are read: the import may run first.
    hoisted: HashMap<&'a str, Val>,
    hoisting: bool,
    /// Names bound to a literal, for payloads decoded in place (`exec(b64decode(CODE))`).
    consts: HashMap<&'a str, Node<'a>>,
    nested: Nested,
}

/// Where a walker's code came from: a file, or a payload decoded from a literal of one.
#[derive(Clone)]
struct Nested {
    line_offset: u32,
    /// Payload code has no lines of its own: its events are placed at the decoding call.
    fixed_line: Option<u32>,
    depth: u32,
    /// Syntax depth already used on the stack by the walks that decoded this payload: a
    /// payload's walk continues the bound of theirs instead of starting a new one.
    base_depth: u32,
    /// Bytes of payload code left to parse for the whole file.
    budget: Rc<Cell<usize>>,
}

impl Nested {
    fn file(line_offset: u32) -> Nested {
        Nested {
            line_offset,
            fixed_line: None,
            depth: 0,
            base_depth: 0,
            budget: Rc::new(Cell::new(MAX_PAYLOAD_BYTES_PER_FILE)),
        }
    }
}

impl<'a> Walker<'a> {
    fn new(path: &'a str, src: &'a str, root: Node<'a>, nested: Nested) -> Walker<'a> {
        let (soup, long_rows) = prescan(src);
        Walker {
            path,
            src,
            f: fields(),
            cursor: root.walk(),
            buf: Vec::with_capacity(64),
            scope: HashMap::new(),
            undo: Vec::new(),
            scopes_open: 0,
            star_api: Vec::new(),
            star_pkg: Vec::new(),
            defined: HashSet::new(),
            classes: HashMap::new(),
            dicts: HashMap::new(),
            sink: Vec::new(),
            top: Vec::new(),
            functions: Vec::new(),
            deferred: Vec::new(),
            class_ctx: None,
            fn_depth: 0,
            steps: 0,
            text_buf: String::new(),
            o1: 0,
            soup,
            long_rows,
            pyarmor: src.contains("pyarmor") || src.contains("pytransform"),
            hoisted: HashMap::new(),
            hoisting: false,
            consts: HashMap::new(),
            nested,
        }
    }

    fn run(&mut self, root: Node<'a>) {
        let mut imports = Vec::new();
        self.collect_defs(root, None, 0, &mut imports);
        self.hoisting = true;
        for node in imports {
            match kind(node) {
                "import_statement" => self.import(node),
                _ => self.import_from(node),
            }
        }
        self.hoisting = false;
        self.walk_block(root, true, self.nested.base_depth);
        self.top = std::mem::take(&mut self.sink);
        let mut i = 0;
        while i < self.deferred.len() {
            let d = self.deferred[i].clone();
            i += 1;
            self.walk_function(d);
        }
    }

    // ----- small helpers -------------------------------------------------------------------

    fn text(&self, node: Node) -> &'a str {
        self.src.get(node.byte_range()).unwrap_or("")
    }

    fn line(&self, node: Node) -> u32 {
        if let Some(line) = self.nested.fixed_line {
            return line;
        }
        let row = u32::try_from(node.start_position().row).unwrap_or(u32::MAX - 1);
        row.saturating_add(1)
            .saturating_add(self.nested.line_offset)
    }

    fn field(&self, node: Node<'a>, id: u16) -> Option<Node<'a>> {
        node.child_by_field_id(id)
    }

    /// Pushes the children of `node` onto the shared buffer; returns their index range.
    fn children(&mut self, node: Node<'a>) -> (usize, usize) {
        let start = self.buf.len();
        self.cursor.reset(node);
        if self.cursor.goto_first_child() {
            loop {
                self.buf.push(self.cursor.node());
                if !self.cursor.goto_next_sibling() {
                    break;
                }
            }
        }
        (start, self.buf.len())
    }

    fn accepts(&self, feature: Feature) -> bool {
        if self.steps >= MAX_FILE_STEPS || self.hoisting {
            return false;
        }
        if self.sink.len() >= SOFT_SINK_STEPS {
            if let Some(Step::Event(last)) = self.sink.last() {
                return last.feature != feature;
            }
        }
        true
    }

    fn push(&mut self, step: Step) {
        if self.steps < MAX_FILE_STEPS && !self.hoisting {
            self.steps += 1;
            self.sink.push(step);
        }
    }

    fn event(&mut self, feature: Feature, node: Node, detail: &str) {
        if !self.accepts(feature) {
            return;
        }
        let event = Event::new(feature, self.path, self.line(node), detail, self.text(node));
        self.push(Step::Event(event));
    }

    fn obfuscation(&mut self, kind: u8, node: Node, detail: &str) {
        if self.o1 & kind == 0 && !self.hoisting {
            self.o1 |= kind;
            self.event(Feature::O1, node, detail);
        }
    }

    fn call_step(&mut self, module: Option<ModuleRef>, function: String, node: Node) {
        let line = self.line(node);
        self.push(Step::Call(CallRef {
            module,
            function,
            line,
        }));
    }

    /// A call step to what `find_method` found.
    fn target_call(&mut self, target: Val, node: Node) {
        match target {
            Val::Func(f) => self.call_step(None, f, node),
            Val::Pkg(m, p) => self.call_step(Some((*m).clone()), p, node),
            _ => {}
        }
    }

    fn bind(&mut self, name: &'a str, val: Option<Val>) {
        if self.hoisting {
            if let Some(v) = val {
                self.hoisted.entry(name).or_insert(v);
            }
            return;
        }
        let old = self.scope.insert(name, val.unwrap_or(Val::Opaque));
        if self.scopes_open > 0 {
            self.undo.push((name, old));
        }
    }

    fn open_scope(&mut self) -> usize {
        self.scopes_open += 1;
        self.undo.len()
    }

    fn close_scope(&mut self, mark: usize) {
        while self.undo.len() > mark {
            if let Some((name, old)) = self.undo.pop() {
                match old {
                    Some(v) => self.scope.insert(name, v),
                    None => self.scope.remove(name),
                };
            }
        }
        self.scopes_open = self.scopes_open.saturating_sub(1);
    }

    // ----- pre-pass: what this file defines -------------------------------------------------

    fn collect_defs(
        &mut self,
        node: Node<'a>,
        class: Option<&str>,
        depth: u32,
        imports: &mut Vec<Node<'a>>,
    ) {
        if depth > 32 {
            return;
        }
        let (s, e) = self.children(node);
        for i in s..e {
            let mut child = self.buf[i];
            if kind(child) == "decorated_definition" {
                match self.field(child, self.f.definition) {
                    Some(d) => child = d,
                    None => continue,
                }
            }
            match kind(child) {
                "function_definition" => {
                    let Some(name) = self.field(child, self.f.name).map(|n| self.text(n)) else {
                        continue;
                    };
                    match class {
                        Some(c) => {
                            if let Some(info) = self.classes.get_mut(c) {
                                info.methods.insert(name);
                            }
                        }
                        None => {
                            self.defined.insert(name);
                        }
                    }
                }
                "class_definition" => {
                    let Some(name) = self.field(child, self.f.name).map(|n| self.text(n)) else {
                        continue;
                    };
                    let qual = match class {
                        Some(c) => format!("{c}.{name}"),
                        None => name.to_owned(),
                    };
                    let mut info = ClassInfo::default();
                    if let Some(sup) = self.field(child, self.f.superclasses) {
                        let (bs, be) = self.children(sup);
                        for j in bs..be {
                            let b = self.buf[j];
                            if matches!(kind(b), "identifier" | "attribute") {
                                info.bases.push(self.text(b));
                            }
                        }
                        self.buf.truncate(bs);
                    }
                    self.classes.insert(qual.clone(), info);
                    if let Some(body) = self.field(child, self.f.body) {
                        self.collect_defs(body, Some(&qual), depth + 1, imports);
                    }
                }
                "import_statement" | "import_from_statement"
                    if class.is_none() && imports.len() < 1024 =>
                {
                    imports.push(child);
                }
                "if_statement" | "try_statement" | "with_statement" | "for_statement"
                | "while_statement" | "elif_clause" | "else_clause" | "except_clause"
                | "finally_clause" | "block" => {
                    self.collect_defs(child, class, depth + 1, imports);
                }
                _ => {}
            }
        }
        self.buf.truncate(s);
    }

    /// Method `m` as seen from class `c`: found in `c` or one of its bases of this file, else
    /// in a base imported from a possibly-local module; `None` when it is inherited from a
    /// known API (`unittest.TestCase`) or defined nowhere.
    fn find_method(&self, c: &str, m: &str) -> Option<Val> {
        let mut queue: Vec<&str> = vec![c];
        let mut outside: Vec<&str> = Vec::new();
        let mut i = 0;
        while i < queue.len() && i < 16 {
            let cur = queue[i];
            i += 1;
            if let Some(info) = self.classes.get(cur) {
                if info.methods.contains(m) {
                    return Some(Val::Func(format!("{cur}.{m}")));
                }
                for b in &info.bases {
                    if self.classes.contains_key(*b) {
                        if !queue.contains(b) {
                            queue.push(b);
                        }
                    } else {
                        outside.push(b);
                    }
                }
            }
        }
        // Only a base imported from a possibly-local module is followed out of the file (and
        // without looking at classes again, so mutually inheriting classes cannot loop).
        outside.into_iter().find_map(|base| {
            let mut parts = base.split('.').map(str::trim);
            let Some(Val::Pkg(module, mut path)) = self.resolve_name(parts.next()?) else {
                return None;
            };
            if path.contains("()") {
                return None;
            }
            for part in parts {
                path = if path.is_empty() {
                    part.to_owned()
                } else {
                    format!("{path}.{part}")
                };
            }
            (!path.is_empty()).then(|| Val::Pkg(module, format!("{path}.{m}")))
        })
    }

    // ----- statements ----------------------------------------------------------------------

    fn walk_block(&mut self, node: Node<'a>, docstring: bool, depth: u32) {
        let (s, e) = self.children(node);
        let mut first = docstring;
        for i in s..e {
            let stmt = self.buf[i];
            if !stmt.is_named() || kind(stmt) == "comment" {
                continue;
            }
            if std::mem::take(&mut first) && self.is_docstring(stmt) {
                continue;
            }
            if !self.long_rows.is_empty()
                && self.o1 & O1_ONE_LINER == 0
                && self.long_rows.contains(&stmt.start_position().row)
            {
                self.obfuscation(O1_ONE_LINER, stmt, "long one-line code");
            }
            self.walk(stmt, depth);
        }
        self.buf.truncate(s);
    }

    fn is_docstring(&self, stmt: Node) -> bool {
        kind(stmt) == "expression_statement"
            && stmt.named_child_count() == 1
            && stmt
                .named_child(0)
                .is_some_and(|c| matches!(kind(c), "string" | "concatenated_string"))
    }

    fn walk_children(&mut self, node: Node<'a>, depth: u32) {
        let (s, e) = self.children(node);
        for i in s..e {
            let c = self.buf[i];
            if c.is_named() {
                self.walk(c, depth);
            }
        }
        self.buf.truncate(s);
    }

    fn walk(&mut self, node: Node<'a>, depth: u32) {
        if depth > MAX_DEPTH {
            self.obfuscation(O1_DEEP, node, "deeply nested code");
            return;
        }
        let d = depth + 1;
        match kind(node) {
            "module" | "block" => self.walk_block(node, false, d),
            "comment"
            | "pass_statement"
            | "break_statement"
            | "continue_statement"
            | "global_statement"
            | "nonlocal_statement"
            | "future_import_statement"
            | "integer"
            | "float"
            | "true"
            | "false"
            | "none"
            | "ellipsis"
            | "keyword_separator"
            | "positional_separator"
            | "type_conversion"
            | "line_continuation" => {}
            "import_statement" => self.import(node),
            "import_from_statement" => self.import_from(node),
            "function_definition" => self.def(node, None, d),
            "class_definition" => self.class(node, d),
            "decorated_definition" => self.decorated(node, d),
            "call" => self.call(node, d),
            "attribute" => self.attribute(node, d),
            "identifier" => self.identifier(node, true),
            "string" | "concatenated_string" => self.string(node, d),
            "assignment" => self.assignment(node, d),
            "augmented_assignment" => self.augmented_assignment(node, d),
            "named_expression" => self.named_expression(node, d),
            "lambda" => self.lambda(node, d),
            "binary_operator" | "boolean_operator" => self.operator_chain(node, d),
            "for_statement" => self.for_statement(node, d),
            "if_statement" if self.is_other_command_guard(node) => {
                // `if sys.argv[-1] == "publish": os.system("twine upload …")` in setup.py:
                // runs only when a maintainer asks for that command, never when installing.
                let (s, e) = self.children(node);
                for i in s..e {
                    let c = self.buf[i];
                    if matches!(kind(c), "elif_clause" | "else_clause") {
                        self.walk(c, d);
                    }
                }
                self.buf.truncate(s);
            }
            "list_comprehension"
            | "set_comprehension"
            | "dictionary_comprehension"
            | "generator_expression" => self.comprehension(node, d),
            "subscript" => self.subscript(node, d),
            "exec_statement" => self.exec_statement(node, d),
            "as_pattern" => self.as_pattern(node, d),
            "keyword_argument" => {
                if let Some(v) = self.field(node, self.f.value) {
                    self.walk(v, d);
                }
            }
            _ => self.walk_children(node, d),
        }
    }

    /// Whether `node` is an `if` of setup.py that runs its body only for a command installing
    /// never runs: `sys.argv[N] == "publish"` or `"publish" in sys.argv`. Only the package's
    /// own `setup.py` at its root, the one file the sequence stage puts at install time.
    fn is_other_command_guard(&self, node: Node<'a>) -> bool {
        if self.path != "setup.py" {
            return false;
        }
        let Some(cond) = self.field(node, self.f.condition) else {
            return false;
        };
        let text: String = self
            .text(cond)
            .chars()
            .filter(|c| !c.is_whitespace())
            .collect();
        let literal = |q: &str| -> Option<String> {
            let quote = q.chars().next().filter(|c| matches!(c, '"' | '\''))?;
            let inner = q.strip_prefix(quote)?.strip_suffix(quote)?;
            inner
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_')
                .then(|| inner.to_owned())
        };
        let command = if let Some(rest) = text.strip_prefix("sys.argv[") {
            rest.split_once("]==").and_then(|(index, q)| {
                index
                    .trim_start_matches('-')
                    .chars()
                    .all(|c| c.is_ascii_digit())
                    .then(|| literal(q))
                    .flatten()
            })
        } else {
            text.strip_suffix("insys.argv").and_then(literal)
        };
        command.is_some_and(|c| !c.is_empty() && !INSTALL_COMMANDS.contains(&c.as_str()))
    }

    fn augmented_assignment(&mut self, node: Node<'a>, d: u32) {
        if let Some(r) = self.field(node, self.f.right) {
            self.walk(r, d);
        }
        if let Some(l) = self.field(node, self.f.left) {
            if kind(l) == "identifier" {
                self.bind(self.text(l), None);
            } else {
                self.walk(l, d);
            }
        }
    }

    fn named_expression(&mut self, node: Node<'a>, d: u32) {
        if let Some(v) = self.field(node, self.f.value) {
            self.walk(v, d);
            if let Some(n) = self.field(node, self.f.name) {
                let val = self.resolve(v, 0);
                self.bind(self.text(n), val);
            }
        }
    }

    fn for_statement(&mut self, node: Node<'a>, d: u32) {
        if let Some(r) = self.field(node, self.f.right) {
            self.walk(r, d);
        }
        if let Some(l) = self.field(node, self.f.left) {
            self.unbind_targets(l, 0);
        }
        if let Some(b) = self.field(node, self.f.body) {
            self.walk(b, d);
        }
        let (s, e) = self.children(node);
        for i in s..e {
            let c = self.buf[i];
            if kind(c) == "else_clause" {
                self.walk(c, d);
            }
        }
        self.buf.truncate(s);
    }

    /// Python 2 `exec "code"`.
    fn exec_statement(&mut self, node: Node<'a>, d: u32) {
        self.walk_children(node, d);
        self.event(Feature::P4, node, "exec");
        if let Some(code) = node.named_child(0) {
            self.run_payload(node, code, d);
        }
    }

    fn as_pattern(&mut self, node: Node<'a>, d: u32) {
        let (s, e) = self.children(node);
        for i in s..e {
            let c = self.buf[i];
            if kind(c) == "as_pattern_target" {
                self.unbind_targets(c, 0);
            } else if c.is_named() {
                self.walk(c, d);
            }
        }
        self.buf.truncate(s);
    }

    /// `a + b + c + ...` nests to the left, one level per operand: long generated chains
    /// would hit the depth bound, so the left spine is followed without recursing.
    fn operator_chain(&mut self, node: Node<'a>, d: u32) {
        let is_op = |n: Node| matches!(kind(n), "binary_operator" | "boolean_operator");
        let left = self.field(node, self.f.left);
        let mut spine = vec![node];
        let mut cur = left;
        while let Some(l) = cur.filter(|&l| is_op(l)) {
            spine.push(l);
            cur = self.field(l, self.f.left);
        }
        if let Some(joined) = self.joined_literals(&spine, cur) {
            self.literal_text(node, &joined, 0);
            return;
        }
        if let Some(leftmost) = cur {
            self.walk(leftmost, d);
        }
        for op in spine.into_iter().rev() {
            if let Some(r) = self.field(op, self.f.right) {
                self.walk(r, d);
            }
        }
    }

    /// The text of `"htt" + "p://" + host_literal...` when every operand of a `+` chain is a
    /// plain literal: split strings are judged joined, the way they are used.
    fn joined_literals(&self, spine: &[Node<'a>], leftmost: Option<Node<'a>>) -> Option<String> {
        let is_literal = |n: Node| matches!(kind(n), "string" | "concatenated_string");
        if !leftmost.is_some_and(is_literal) {
            return None;
        }
        let mut out = self.const_str(leftmost?, 0)?;
        for op in spine.iter().rev() {
            let plus = self.field(*op, self.f.operator).map(|o| kind(o)) == Some("+");
            let right = self.field(*op, self.f.right).filter(|&r| is_literal(r))?;
            if !plus || out.len() > MAX_PARSE_BYTES {
                return None;
            }
            out.push_str(&self.const_str(right, 0)?);
        }
        Some(out)
    }

    fn decorated(&mut self, node: Node<'a>, d: u32) {
        let (s, e) = self.children(node);
        for i in s..e {
            let c = self.buf[i];
            if kind(c) == "decorator" {
                self.walk_children(c, d);
            }
        }
        self.buf.truncate(s);
        if let Some(def) = self.field(node, self.f.definition) {
            match kind(def) {
                "function_definition" => self.def(def, Some(node), d),
                "class_definition" => self.class(def, d),
                _ => self.walk(def, d),
            }
        }
    }

    fn def(&mut self, node: Node<'a>, decorated: Option<Node<'a>>, d: u32) {
        let Some(name) = self.field(node, self.f.name).map(|n| self.text(n)) else {
            return;
        };
        let params = self.field(node, self.f.parameters);
        if let Some(p) = params {
            self.walk_param_defaults(p, d);
        }
        if self.fn_depth > 0 {
            // A nested function: walked where it is defined.
            let mark = self.open_scope();
            if let Some(p) = params {
                self.bind_params(p, None);
            }
            self.fn_depth += 1;
            if let Some(body) = self.field(node, self.f.body) {
                self.walk_block(body, true, d);
            }
            self.fn_depth -= 1;
            self.close_scope(mark);
            self.bind(name, None);
            return;
        }
        let qualified = match &self.class_ctx {
            Some(c) => format!("{c}.{name}"),
            None => {
                // The definition rebinds the module-level name.
                self.bind(name, Some(Val::Func(name.to_owned())));
                name.to_owned()
            }
        };
        self.deferred.push(Deferred {
            name: qualified,
            class: self.class_ctx.clone(),
            node,
            decorated,
        });
        if let Some(dec) = decorated {
            // `@atexit.register` runs the function when the interpreter exits.
            if self.text(dec).contains("atexit.register") {
                let function = match &self.class_ctx {
                    Some(c) => format!("{c}.{name}"),
                    None => name.to_owned(),
                };
                self.call_step(None, function, node);
            }
        }
    }

    fn walk_function(&mut self, d: Deferred<'a>) {
        self.class_ctx = d.class.clone();
        self.fn_depth = 1;
        let mark = self.open_scope();
        if let Some(p) = self.field(d.node, self.f.parameters) {
            let decorators = d.decorated.map(|n| self.text(n)).unwrap_or("");
            let is_static = decorators.contains("staticmethod");
            let as_class = decorators.contains("classmethod");
            match &d.class {
                Some(c) if !is_static => {
                    let c = c.clone();
                    self.bind_params(p, Some((c, as_class)));
                }
                _ => self.bind_params(p, None),
            }
        }
        if let Some(body) = self.field(d.node, self.f.body) {
            self.walk_block(body, true, self.nested.base_depth + 1);
        }
        self.close_scope(mark);
        self.fn_depth = 0;
        self.class_ctx = None;
        let steps = std::mem::take(&mut self.sink);
        let line = self.line(d.node);
        match self.functions.iter_mut().find(|f| f.name == d.name) {
            Some(f) => f.steps.extend(steps),
            None => self.functions.push(Function {
                name: d.name,
                line,
                steps,
            }),
        }
    }

    /// Binds parameter names in the function's scope: shadowing makes them unknown, except a
    /// method's first parameter, the instance (or class) itself.
    fn bind_params(&mut self, params: Node<'a>, class: Option<(String, bool)>) {
        let (s, e) = self.children(params);
        let mut first = true;
        for i in s..e {
            let p = self.buf[i];
            let name_node = match kind(p) {
                "identifier" => Some(p),
                "default_parameter" | "typed_default_parameter" => self.field(p, self.f.name),
                "typed_parameter" | "list_splat_pattern" | "dictionary_splat_pattern" => {
                    let mut found = None;
                    for j in 0..p.named_child_count().min(4) {
                        if let Some(c) = p.named_child(j) {
                            if kind(c) == "identifier" {
                                found = Some(c);
                                break;
                            }
                            if matches!(kind(c), "list_splat_pattern" | "dictionary_splat_pattern")
                            {
                                found = c.named_child(0);
                                break;
                            }
                        }
                    }
                    found
                }
                _ => None,
            };
            let Some(n) = name_node.filter(|n| kind(*n) == "identifier") else {
                continue;
            };
            let name = self.text(n);
            let val = match (&class, first && kind(p) == "identifier") {
                (Some((c, as_class)), true) => Some(if *as_class || name == "cls" {
                    Val::Class(c.clone())
                } else {
                    Val::Inst(c.clone())
                }),
                _ => None,
            };
            first = false;
            self.bind(name, val);
        }
        self.buf.truncate(s);
    }

    fn walk_param_defaults(&mut self, params: Node<'a>, d: u32) {
        let (s, e) = self.children(params);
        for i in s..e {
            let p = self.buf[i];
            if matches!(kind(p), "default_parameter" | "typed_default_parameter") {
                if let Some(v) = self.field(p, self.f.value) {
                    self.walk(v, d);
                }
            }
        }
        self.buf.truncate(s);
    }

    fn class(&mut self, node: Node<'a>, d: u32) {
        let Some(name) = self.field(node, self.f.name).map(|n| self.text(n)) else {
            return;
        };
        if let Some(sup) = self.field(node, self.f.superclasses) {
            self.walk(sup, d);
        }
        let body = self.field(node, self.f.body);
        if self.fn_depth > 0 {
            let mark = self.open_scope();
            if let Some(b) = body {
                self.walk_block(b, true, d);
            }
            self.close_scope(mark);
            self.bind(name, None);
            return;
        }
        let qualified = match &self.class_ctx {
            Some(c) => format!("{c}.{name}"),
            None => name.to_owned(),
        };
        let saved = self.class_ctx.replace(qualified);
        // Names bound in a class body are class attributes, not module names.
        let mark = self.open_scope();
        if let Some(b) = body {
            self.walk_block(b, true, d);
        }
        self.close_scope(mark);
        self.class_ctx = saved;
        if self.class_ctx.is_none() {
            self.bind(name, Some(Val::Class(name.to_owned())));
        }
    }

    fn lambda(&mut self, node: Node<'a>, d: u32) {
        let params = self.field(node, self.f.parameters);
        if let Some(p) = params {
            self.walk_param_defaults(p, d);
        }
        let mark = self.open_scope();
        if let Some(p) = params {
            self.bind_params(p, None);
        }
        if let Some(b) = self.field(node, self.f.body) {
            self.walk(b, d);
        }
        self.close_scope(mark);
    }

    fn comprehension(&mut self, node: Node<'a>, d: u32) {
        let mark = self.open_scope();
        let body = self.field(node, self.f.body);
        let (s, e) = self.children(node);
        for i in s..e {
            let c = self.buf[i];
            if Some(c) == body || !c.is_named() {
                continue;
            }
            if kind(c) == "for_in_clause" {
                if let Some(r) = self.field(c, self.f.right) {
                    self.walk(r, d);
                }
                if let Some(l) = self.field(c, self.f.left) {
                    self.unbind_targets(l, 0);
                }
            } else {
                self.walk(c, d);
            }
        }
        self.buf.truncate(s);
        if let Some(b) = body {
            self.walk(b, d);
        }
        self.close_scope(mark);
    }

    /// Forgets what the names of an assignment target stood for.
    fn unbind_targets(&mut self, node: Node<'a>, depth: u32) {
        if kind(node) == "identifier" {
            let name = self.text(node);
            self.bind(name, None);
            return;
        }
        if depth > 8
            || !matches!(
                kind(node),
                "pattern_list"
                    | "tuple_pattern"
                    | "list_pattern"
                    | "as_pattern_target"
                    | "list_splat_pattern"
                    | "parenthesized_expression"
                    | "tuple"
                    | "list"
                    | "expression_list"
            )
        {
            return;
        }
        let (s, e) = self.children(node);
        for i in s..e {
            let c = self.buf[i];
            if c.is_named() {
                self.unbind_targets(c, depth + 1);
            }
        }
        self.buf.truncate(s);
    }

    fn assignment(&mut self, node: Node<'a>, d: u32) {
        let left = self.field(node, self.f.left);
        let right = self.field(node, self.f.right);
        if let Some(r) = right {
            self.walk(r, d);
        }
        let Some(l) = left else {
            return;
        };
        match kind(l) {
            "identifier" => {
                let Some(r) = right else {
                    return;
                };
                let name = self.text(l);
                if !self.soup.is_empty() && self.soup.contains(name) {
                    self.obfuscation(O1_SOUP, l, "confusable identifiers");
                }
                let val = self.assigned_value(r, 0);
                self.bind(name, val);
                let is_dict = kind(r) == "dictionary"
                    || (kind(r) == "call"
                        && self
                            .field(r, self.f.function)
                            .is_some_and(|f| self.text(f) == "dict"));
                if is_dict {
                    self.dicts.insert(name, r);
                }
                if matches!(
                    kind(r),
                    "string" | "concatenated_string" | "binary_operator" | "call" | "subscript"
                ) {
                    self.consts.insert(name, r);
                }
            }
            "pattern_list" | "tuple_pattern" | "list_pattern" => {
                let pairs = right.filter(|r| {
                    matches!(kind(*r), "expression_list" | "tuple")
                        && r.named_child_count() == l.named_child_count()
                });
                match pairs {
                    Some(r) => {
                        for i in 0..l.named_child_count() {
                            let (Some(t), Some(v)) = (l.named_child(i), r.named_child(i)) else {
                                continue;
                            };
                            if kind(t) == "identifier" {
                                let val = self.resolve(v, 0);
                                self.bind(self.text(t), val);
                            } else {
                                self.unbind_targets(t, 0);
                            }
                        }
                    }
                    None => self.unbind_targets(l, 0),
                }
            }
            _ => self.walk(l, d),
        }
    }

    fn assigned_value(&self, right: Node<'a>, depth: u32) -> Option<Val> {
        if kind(right) == "assignment" && depth < 8 {
            return self.assigned_value(self.field(right, self.f.right)?, depth + 1);
        }
        self.resolve(right, 0)
    }

    // ----- imports -------------------------------------------------------------------------

    #[inline(never)]
    fn import(&mut self, node: Node<'a>) {
        let (s, e) = self.children(node);
        for i in s..e {
            let c = self.buf[i];
            let (module, alias) = match kind(c) {
                "dotted_name" => (dotted(self.text(c)), None),
                "aliased_import" => {
                    let Some(n) = self.field(c, self.f.name) else {
                        continue;
                    };
                    let alias = self.field(c, self.f.alias).map(|a| self.text(a));
                    (dotted(self.text(n)), alias)
                }
                _ => continue,
            };
            if module.is_empty() {
                continue;
            }
            self.import_event(node, &module);
            let top = module.split('.').next().unwrap_or(&module);
            if !tables::is_known(top) {
                self.push(Step::Import(ModuleRef {
                    spec: module.clone(),
                    level: 0,
                }));
            }
            match alias {
                Some(a) => self.bind(a, Some(module_val(&module))),
                None => {
                    let top_text = self.text(c).split('.').next().unwrap_or("").trim();
                    let val = module_val(top);
                    self.bind(top_text, Some(val));
                }
            }
        }
        self.buf.truncate(s);
    }

    fn import_event(&mut self, node: Node, module: &str) {
        if self.pyarmor && (module.contains("pytransform") || module.contains("pyarmor")) {
            self.obfuscation(O1_PYARMOR, node, "pyarmor runtime");
        }
        if let Some(feature) = tables::import_feature(module) {
            self.event(feature, node, &format!("import {module}"));
        }
    }

    #[inline(never)]
    fn import_from(&mut self, node: Node<'a>) {
        let Some(module_node) = self.field(node, self.f.module_name) else {
            return;
        };
        let (level, module) = if kind(module_node) == "relative_import" {
            let text = self.text(module_node);
            let level = text.bytes().take_while(|&b| b == b'.').count();
            (
                u32::try_from(level).unwrap_or(u32::MAX),
                dotted(&text[level..]),
            )
        } else {
            (0, dotted(self.text(module_node)))
        };
        let known = level == 0 && tables::is_known(module.split('.').next().unwrap_or(""));
        if !(known || (level == 0 && module.is_empty())) {
            self.push(Step::Import(ModuleRef {
                spec: module.clone(),
                level,
            }));
        }
        let pkg = (!known).then(|| {
            Rc::new(ModuleRef {
                spec: module.clone(),
                level,
            })
        });
        let mut evented: Vec<String> = Vec::new();
        let (s, e) = self.children(node);
        for i in s..e {
            let c = self.buf[i];
            if c.id() == module_node.id() {
                continue;
            }
            let (name, alias) = match kind(c) {
                "dotted_name" => (self.text(c), self.text(c)),
                "aliased_import" => {
                    let (Some(n), Some(a)) =
                        (self.field(c, self.f.name), self.field(c, self.f.alias))
                    else {
                        continue;
                    };
                    (self.text(n), self.text(a))
                }
                "wildcard_import" => {
                    if self.hoisting {
                        continue;
                    }
                    if known {
                        if !evented.contains(&module) {
                            self.import_event(node, &module);
                            evented.push(module.clone());
                        }
                        self.star_api.push(module.clone());
                    } else if let Some(p) = &pkg {
                        self.star_pkg.push(p.clone());
                    }
                    continue;
                }
                _ => continue,
            };
            let name = name.trim();
            let full = if module.is_empty() {
                name.to_owned()
            } else {
                format!("{module}.{name}")
            };
            match &pkg {
                None => {
                    let imported = if tables::has_import_entry(&full) {
                        full.clone()
                    } else {
                        module.clone()
                    };
                    if !evented.contains(&imported) {
                        self.import_event(node, &imported);
                        evented.push(imported);
                    }
                    self.bind(alias.trim(), Some(module_val(&full)));
                }
                Some(p) => {
                    // The name may be a submodule: importing it runs that module. Modules
                    // are named in lower case; `from . import X` names little else.
                    let module_like = module.is_empty()
                        || name
                            .trim_start_matches('_')
                            .starts_with(|c: char| c.is_lowercase());
                    if module_like {
                        self.push(Step::Import(ModuleRef { spec: full, level }));
                    }
                    self.bind(alias.trim(), Some(Val::Pkg(p.clone(), name.to_owned())));
                }
            }
        }
        self.buf.truncate(s);
    }

    // ----- expressions ---------------------------------------------------------------------

    #[inline(never)]
    fn identifier(&mut self, node: Node<'a>, value_use: bool) {
        let name = self.text(node);
        if !self.soup.is_empty() && self.soup.contains(name) {
            self.obfuscation(O1_SOUP, node, "confusable identifiers");
        }
        if self.pyarmor && name.contains("pyarmor") {
            self.obfuscation(O1_PYARMOR, node, "pyarmor runtime");
        }
        if value_use {
            if let Some(Val::Api(q)) = self.scope.get(name) {
                if q == "os.environ" || q == "os.environb" {
                    self.event(Feature::R5, node, "os.environ");
                }
            } else if !self.star_api.is_empty() && name == "environ" {
                if let Some(Val::Api(q)) = self.resolve_name(name) {
                    if q == "os.environ" {
                        self.event(Feature::R5, node, "os.environ");
                    }
                }
            }
        }
    }

    /// Walks what a callee (or attribute chain) evaluates before the call: the base object
    /// when it is itself an expression (`f(x).g` walks `f(x)`).
    fn callee(&mut self, node: Node<'a>, d: u32) -> bool {
        let mut cur = node;
        let mut saw_environ = false;
        let mut steps = 0;
        while kind(cur) == "attribute" && steps < 10_000 {
            if let Some(a) = self.field(cur, self.f.attribute) {
                saw_environ |= self.text(a).starts_with("environ");
            }
            match self.field(cur, self.f.object) {
                Some(o) => cur = o,
                None => return saw_environ,
            }
            steps += 1;
        }
        if kind(cur) == "identifier" {
            self.identifier(cur, false);
        } else if cur != node {
            self.walk(cur, d);
        }
        saw_environ
    }

    #[inline(never)]
    fn attribute(&mut self, node: Node<'a>, d: u32) {
        let saw_environ = self.callee(node, d);
        if saw_environ {
            if let Some(Val::Api(q)) = self.resolve(node, 0) {
                if q.starts_with("os.environ") {
                    self.event(Feature::R5, node, "os.environ");
                }
            }
        }
    }

    fn subscript(&mut self, node: Node<'a>, d: u32) {
        self.walk_children(node, d);
        let reversed = self
            .field(node, self.f.value)
            .is_some_and(|v| matches!(kind(v), "string" | "concatenated_string"))
            && self.field(node, self.f.subscript).is_some_and(|s| {
                kind(s) == "slice"
                    && self
                        .text(s)
                        .bytes()
                        .filter(|b| !b.is_ascii_whitespace())
                        .eq(b"::-1".iter().copied())
            });
        if reversed {
            self.event(Feature::E2, node, "reversed string literal");
        }
    }

    fn call(&mut self, node: Node<'a>, d: u32) {
        let callee = self.field(node, self.f.function);
        let args = self.field(node, self.f.arguments);
        if let Some(c) = callee {
            if kind(c) == "attribute" || kind(c) == "identifier" {
                self.callee(c, d);
            } else {
                self.walk(c, d);
            }
        }
        let mut callbacks: Vec<String> = Vec::new();
        if let Some(a) = args {
            if kind(a) == "argument_list" {
                let (s, e) = self.children(a);
                for i in s..e {
                    let arg = self.buf[i];
                    if !arg.is_named() || kind(arg) == "comment" {
                        continue;
                    }
                    if kind(arg) == "keyword_argument" {
                        let name = self.field(arg, self.f.name).map(|n| self.text(n));
                        let Some(v) = self.field(arg, self.f.value) else {
                            continue;
                        };
                        self.walk(v, d);
                        self.reference(v, &mut callbacks);
                        if name == Some("shell") && is_truthy(self.text(v)) {
                            self.event(Feature::P3, arg, "shell=True");
                        }
                    } else {
                        self.walk(arg, d);
                        self.reference(arg, &mut callbacks);
                    }
                }
                self.buf.truncate(s);
            } else {
                self.walk(a, d);
            }
        }

        self.call_effects(node, callee, args, callbacks, d);
    }

    /// What the call itself does, once its callee and arguments were walked. Kept out of
    /// [`Walker::call`], which recurses, so that the recursion's stack frames stay small.
    #[inline(never)]
    fn call_effects(
        &mut self,
        node: Node<'a>,
        callee: Option<Node<'a>>,
        args: Option<Node<'a>>,
        callbacks: Vec<String>,
        d: u32,
    ) {
        let val = callee.and_then(|c| self.resolve(c, 0));
        let mut handled = false;
        match val {
            Some(Val::Api(q)) => {
                let shown = q.strip_prefix("builtins.").unwrap_or(&q);
                if let Some(feature) = tables::call_feature(&q) {
                    self.event(feature, node, shown);
                    handled = true;
                }
                if tables::is_dynamic_import(&q) {
                    if let Some(name) = args.and_then(|a| self.positional(a, 0)) {
                        if let Some(module) = self.const_str(name, 0) {
                            self.dynamic_import(node, module.trim());
                        }
                    }
                }
                if q == "builtins.getattr" {
                    self.builtin_lookup(node, args);
                }
                if matches!(
                    q.as_str(),
                    "builtins.exec" | "builtins.eval" | "builtins.compile"
                ) {
                    if let Some(code) = args.and_then(|a| self.positional(a, 0)) {
                        self.run_payload(node, code, d);
                    }
                }
                if tables::is_setup(&q) {
                    if let Some(a) = args {
                        self.setup_hooks(a);
                    }
                }
            }
            Some(Val::Func(name)) => {
                self.call_step(None, name, node);
                handled = true;
            }
            Some(Val::Class(c)) => {
                // Instantiation runs `__init__`, wherever the class got it from.
                if let Some(init) = self.find_method(&c, "__init__") {
                    self.target_call(init, node);
                }
                handled = true;
            }
            Some(Val::Pkg(m, p)) if !p.is_empty() && !p.contains("()") => {
                let last = p.rsplit('.').next().unwrap_or(&p);
                let function = if last.starts_with(|c: char| c.is_ascii_uppercase()) {
                    format!("{p}.__init__")
                } else {
                    p
                };
                self.call_step(Some((*m).clone()), function, node);
                handled = true;
            }
            _ => {}
        }
        if !handled {
            if let (Some(c), Some(a)) = (callee, args) {
                self.method_patterns(node, c, a, d);
            }
        }
        for f in callbacks {
            self.call_step(None, f, node);
        }
    }

    /// A value passed to a call: a local function passed along is likely to be called back,
    /// and handing over `os.system` or `exec` is as good as calling it.
    fn reference(&mut self, arg: Node<'a>, callbacks: &mut Vec<String>) {
        if !matches!(kind(arg), "identifier" | "attribute") {
            return;
        }
        match self.resolve(arg, 0) {
            Some(Val::Api(q)) => {
                if let Some(feature) = tables::reference_feature(&q) {
                    let shown = q.strip_prefix("builtins.").unwrap_or(&q);
                    self.event(feature, arg, shown);
                }
            }
            Some(Val::Func(f)) => callbacks.push(f),
            _ => {}
        }
    }

    /// Decoding idioms recognised by method name on any object: `s.decode('hex')`,
    /// `''.join(chr(c) for c in xs)`.
    fn method_patterns(&mut self, node: Node<'a>, callee: Node<'a>, args: Node<'a>, d: u32) {
        if kind(callee) != "attribute" {
            return;
        }
        let Some(attr) = self.field(callee, self.f.attribute).map(|a| self.text(a)) else {
            return;
        };
        match attr {
            "decode" | "encode" => {
                let codec = self.positional(args, 0).and_then(|a| self.const_str(a, 0));
                if let Some(codec) = codec.filter(|c| tables::is_obscuring_codec(c)) {
                    self.event(Feature::E2, node, &format!(".{attr}('{codec}')"));
                }
            }
            "write" => {
                // Code written to a file to be run later (often a temp file).
                if let Some(code) = self.positional(args, 0) {
                    if self
                        .const_str(code, 0)
                        .is_some_and(|c| c.contains("import "))
                    {
                        self.run_payload(node, code, d);
                    }
                }
            }
            "join" => {
                let on_literal = self
                    .field(callee, self.f.object)
                    .is_some_and(|o| matches!(kind(o), "string" | "concatenated_string"));
                if on_literal && contains_identifier(args, self.src, "chr", 256) {
                    self.event(Feature::E2, node, "join(chr(...))");
                }
            }
            _ => {}
        }
    }

    /// Code a call runs from a literal (`exec('...')`, `exec(b64decode(CODE))`, code written
    /// to a file): decoded, parsed and walked in place, since what it does is what the
    /// package does. Its events are placed at the call.
    fn run_payload(&mut self, node: Node<'a>, code: Node<'a>, d: u32) {
        if self.nested.depth >= MAX_PAYLOAD_DEPTH || self.hoisting || d >= MAX_DEPTH {
            return;
        }
        let Some(bytes) = self.payload(code, 0) else {
            return;
        };
        // Binary data (bytecode, ciphertext) is not code to parse.
        let Ok(code) = String::from_utf8(bytes) else {
            return;
        };
        let left = self.nested.budget.get();
        if code.len() > left || code.trim().is_empty() {
            return;
        }
        self.nested.budget.set(left - code.len());
        let nested = Nested {
            line_offset: 0,
            fixed_line: Some(self.line(node)),
            depth: self.nested.depth + 1,
            base_depth: d,
            budget: self.nested.budget.clone(),
        };
        // Code run by `exec` sees the module's names.
        let mut scope: HashMap<&str, Val> = HashMap::new();
        for (name, val) in &self.hoisted {
            scope.insert(name, val.clone());
        }
        for name in &self.defined {
            scope.insert(name, Val::Func((*name).to_owned()));
        }
        for name in self.classes.keys().filter(|c| !c.contains('.')) {
            scope.insert(name, Val::Class(name.clone()));
        }
        for (name, val) in &self.scope {
            scope.insert(name, val.clone());
        }
        if let Some((top, functions)) = walk_source(self.path, &code, nested, scope) {
            for step in top {
                self.push(step);
            }
            merge_functions(&mut self.functions, functions);
        }
    }

    /// The bytes a constant expression evaluates to, through the decoding layers malware
    /// wraps payloads in: literals (and names bound to them), base64, hex, zlib/gzip, rot13,
    /// reversal, `.decode()`.
    fn payload(&self, node: Node<'a>, depth: u32) -> Option<Vec<u8>> {
        if depth > 12 {
            return None;
        }
        match kind(node) {
            "string" | "concatenated_string" | "binary_operator" => {
                self.const_str(node, 0).map(latin1_or_utf8)
            }
            "parenthesized_expression" => {
                let inner = (0..node.named_child_count())
                    .filter_map(|i| node.named_child(i))
                    .find(|c| kind(*c) != "comment")?;
                self.payload(inner, depth + 1)
            }
            "identifier" => {
                let bound = *self.consts.get(self.text(node))?;
                self.payload(bound, depth + 1)
            }
            "subscript" => {
                let slice = self.field(node, self.f.subscript)?;
                let reversed = self
                    .text(slice)
                    .bytes()
                    .filter(|b| !b.is_ascii_whitespace())
                    .eq(b"::-1".iter().copied());
                if !reversed {
                    return None;
                }
                let mut data = self.payload(self.field(node, self.f.value)?, depth + 1)?;
                data.reverse();
                Some(data)
            }
            "call" => {
                let callee = self.field(node, self.f.function)?;
                let args = self.field(node, self.f.arguments)?;
                let first = self.positional(args, 0);
                let api = match self.resolve(callee, 0) {
                    Some(Val::Api(q)) => Some(q),
                    _ => None,
                };
                if api.is_none() && kind(callee) == "attribute" {
                    // `payload.decode('base64')` on a value of the payload.
                    let attr = self.text(self.field(callee, self.f.attribute)?);
                    if attr == "decode" || attr == "encode" {
                        let data = self.payload(self.field(callee, self.f.object)?, depth + 1)?;
                        let codec = first.and_then(|a| self.const_str(a, 0)).unwrap_or_default();
                        return decode_codec(&codec, data);
                    }
                }
                let q = api?;
                let data = self.payload(first?, depth + 1)?;
                match q.as_str() {
                    "base64.b64decode"
                    | "base64.decodebytes"
                    | "base64.decodestring"
                    | "base64.standard_b64decode"
                    | "base64.urlsafe_b64decode"
                    | "binascii.a2b_base64" => base64_decode(&data),
                    "builtins.bytes.fromhex"
                    | "builtins.bytearray.fromhex"
                    | "binascii.unhexlify"
                    | "binascii.a2b_hex" => hex_decode(&data),
                    "zlib.decompress" | "gzip.decompress" => inflate(&data),
                    "codecs.decode" => {
                        let codec = self.const_str(self.positional(args, 1)?, 0)?;
                        decode_codec(&codec, data)
                    }
                    "builtins.bytes" | "builtins.bytearray" => Some(data),
                    _ => None,
                }
            }
            _ => None,
        }
    }

    /// `getattr(__builtins__, <computed>)`: a builtin chosen by a computed name.
    fn builtin_lookup(&mut self, node: Node<'a>, args: Option<Node<'a>>) {
        let Some(a) = args else {
            return;
        };
        let (Some(obj), Some(name)) = (self.positional(a, 0), self.positional(a, 1)) else {
            return;
        };
        // Only the `__builtins__` of code that hides its calls; the `builtins` module looked
        // up by a name from data is ordinary reflection.
        let hidden = matches!(
            kind(name),
            "binary_operator" | "subscript" | "call" | "concatenated_string"
        );
        if self.text(obj).contains("__builtins__") && hidden && self.const_str(name, 0).is_none() {
            self.obfuscation(O1_BUILTIN_LOOKUP, node, "computed builtin lookup");
        }
    }

    fn dynamic_import(&mut self, node: Node, module: &str) {
        if module.is_empty() || module.len() > 200 {
            return;
        }
        let module = module
            .strip_prefix("__builtin__")
            .map_or(module, |_| "builtins");
        self.import_event(node, module);
        let top = module.split('.').next().unwrap_or(module);
        if !tables::is_known(top) && !module.starts_with('.') {
            self.push(Step::Import(ModuleRef {
                spec: module.to_owned(),
                level: 0,
            }));
        }
    }

    /// `setup(cmdclass={'install': X})`: each custom command that installing runs is an
    /// install hook whose `run` is called by pip. Commands installing never runs (`test`,
    /// `upload`, `docs`, a project's own `lint`) are left out: their code runs only when a
    /// developer of the package asks for it.
    fn setup_hooks(&mut self, args: Node<'a>) {
        let mut value = None;
        for i in 0..args.named_child_count() {
            let Some(arg) = args.named_child(i) else {
                continue;
            };
            if kind(arg) == "keyword_argument"
                && self.field(arg, self.f.name).map(|n| self.text(n)) == Some("cmdclass")
            {
                value = self.field(arg, self.f.value);
            }
        }
        let Some(mut v) = value else {
            return;
        };
        if kind(v) == "identifier" {
            match self.dicts.get(self.text(v)) {
                Some(&dict) => v = dict,
                None => return,
            }
        }
        let mut entries: Vec<(String, Node<'a>, Node<'a>)> = Vec::new();
        match kind(v) {
            "dictionary" => self.dict_entries(v, &mut entries),
            "call" => {
                if let Some(a) = self.field(v, self.f.arguments) {
                    for i in 0..a.named_child_count() {
                        let Some(arg) = a.named_child(i) else {
                            continue;
                        };
                        match kind(arg) {
                            "keyword_argument" => {
                                if let (Some(n), Some(val)) =
                                    (self.field(arg, self.f.name), self.field(arg, self.f.value))
                                {
                                    entries.push((self.text(n).to_owned(), val, arg));
                                }
                            }
                            "dictionary" => self.dict_entries(arg, &mut entries),
                            _ => {}
                        }
                    }
                }
            }
            _ => return,
        }
        for (command, target, entry) in entries {
            if !INSTALL_COMMANDS.contains(&command.as_str()) {
                continue;
            }
            let resolved = self.resolve(target, 0);
            if matches!(resolved, Some(Val::Api(_))) {
                // The stock command of setuptools or distutils: no custom code.
                continue;
            }
            let shown = format!("cmdclass {command}: {}", self.text(target));
            self.event(Feature::H1, entry, &shown);
            match resolved {
                Some(Val::Class(c)) => {
                    if let Some(run) = self.find_method(&c, "run") {
                        self.target_call(run, entry);
                    }
                }
                Some(Val::Pkg(m, p)) if !p.is_empty() && !p.contains("()") => {
                    self.call_step(Some((*m).clone()), format!("{p}.run"), entry);
                }
                _ => {}
            }
        }
    }

    fn dict_entries(&self, dict: Node<'a>, out: &mut Vec<(String, Node<'a>, Node<'a>)>) {
        for i in 0..dict.named_child_count().min(256) {
            let Some(pair) = dict.named_child(i) else {
                continue;
            };
            if kind(pair) != "pair" {
                continue;
            }
            let (Some(k), Some(v)) = (self.field(pair, self.f.key), self.field(pair, self.f.value))
            else {
                continue;
            };
            if let Some(key) = self.const_str(k, 0) {
                out.push((key, v, pair));
            }
        }
    }

    fn string(&mut self, node: Node<'a>, d: u32) {
        let mut buf = std::mem::take(&mut self.text_buf);
        buf.clear();
        let mut escapes = 0;
        if kind(node) == "concatenated_string" {
            let (s, e) = self.children(node);
            for i in s..e {
                let c = self.buf[i];
                if kind(c) == "string" {
                    escapes += self.string_piece(c, &mut buf, d);
                }
            }
            self.buf.truncate(s);
        } else {
            escapes += self.string_piece(node, &mut buf, d);
        }
        self.literal_text(node, &buf, escapes);
        self.text_buf = buf;
    }

    /// Judges the value of a literal (`escapes`: how many numeric escapes wrote it).
    #[inline(never)]
    fn literal_text(&mut self, node: Node<'a>, text: &str, escapes: usize) {
        if escapes >= MANY_ESCAPES && hides_text(text, escapes) {
            self.obfuscation(O1_ESCAPES, node, "escaped string");
        }
        if self.pyarmor && text.contains("pyarmor") {
            self.obfuscation(O1_PYARMOR, node, "pyarmor runtime");
        }
        let features = strings::classify(text);
        if !features.is_empty() {
            let detail = super::clip(text, DETAIL_BYTES);
            for feature in features {
                self.event(feature, node, detail);
            }
        }
    }

    /// Appends the value of one `string` node to `out`, walking its interpolations (an
    /// interpolation reads as `x`, so `f"https://{host}/a"` still reads as an address).
    fn string_piece(&mut self, node: Node<'a>, out: &mut String, d: u32) -> usize {
        let mut escapes = 0;
        let mut prefix = Prefix::default();
        let (s, e) = self.children(node);
        for i in s..e {
            let c = self.buf[i];
            match kind(c) {
                "string_start" => prefix = Prefix::of(self.text(c)),
                "string_content" => escapes += literal::decode_into(out, self.text(c), prefix),
                "interpolation" => {
                    out.push('x');
                    self.walk_children(c, d);
                }
                _ => {}
            }
        }
        self.buf.truncate(s);
        escapes
    }

    // ----- resolution ----------------------------------------------------------------------

    fn resolve(&self, node: Node<'a>, depth: u32) -> Option<Val> {
        if depth > MAX_RESOLVE_DEPTH {
            return None;
        }
        match kind(node) {
            "identifier" => self.resolve_name(self.text(node)),
            "attribute" => {
                let obj = self.resolve(self.field(node, self.f.object)?, depth + 1)?;
                let attr = self.text(self.field(node, self.f.attribute)?);
                self.member(obj, attr)
            }
            "call" => self.resolve_call(node, depth),
            "subscript" => {
                let value = self.resolve(self.field(node, self.f.value)?, depth + 1)?;
                let key = self.const_str(self.field(node, self.f.subscript)?, 0)?;
                match value {
                    Val::Api(q) if q == "sys.modules" => Some(module_val(&key)),
                    Val::Api(q) if q.ends_with(".__dict__") => {
                        let base = &q[..q.len() - ".__dict__".len()];
                        Some(Val::Api(format!("{base}.{key}")))
                    }
                    _ => None,
                }
            }
            "parenthesized_expression" => {
                let inner = (0..node.named_child_count())
                    .filter_map(|i| node.named_child(i))
                    .find(|c| kind(*c) != "comment")?;
                self.resolve(inner, depth + 1)
            }
            _ => None,
        }
    }

    fn resolve_name(&self, name: &str) -> Option<Val> {
        if let Some(v) = self.scope.get(name) {
            return match v {
                Val::Opaque => None,
                v => Some(v.clone()),
            };
        }
        if self.classes.contains_key(name) {
            return Some(Val::Class(name.to_owned()));
        }
        if self.defined.contains(name) {
            return Some(Val::Func(name.to_owned()));
        }
        if let Some(v) = self.hoisted.get(name) {
            return Some(v.clone());
        }
        if name == "__builtins__" {
            return Some(Val::Api("builtins".to_owned()));
        }
        if tables::is_builtin(name) {
            return tables::interesting_builtin(name).then(|| Val::Api(format!("builtins.{name}")));
        }
        for m in self.star_api.iter().rev() {
            if tables::star_member(m, name) {
                return Some(Val::Api(format!("{m}.{name}")));
            }
        }
        self.star_pkg
            .last()
            .map(|m| Val::Pkg(m.clone(), name.to_owned()))
    }

    fn member(&self, obj: Val, attr: &str) -> Option<Val> {
        if attr.is_empty() {
            return None;
        }
        match obj {
            Val::Api(q) => Some(Val::Api(format!("{q}.{attr}"))),
            Val::Pkg(m, p) => {
                if p.contains("()") {
                    None
                } else if p.is_empty() {
                    Some(Val::Pkg(m, attr.to_owned()))
                } else {
                    Some(Val::Pkg(m, format!("{p}.{attr}")))
                }
            }
            Val::Class(c) => {
                let nested = format!("{c}.{attr}");
                if self.classes.contains_key(&nested) {
                    Some(Val::Class(nested))
                } else {
                    self.find_method(&c, attr)
                }
            }
            Val::Inst(c) => self.find_method(&c, attr),
            Val::Func(_) | Val::Opaque => None,
        }
    }

    fn resolve_call(&self, node: Node<'a>, depth: u32) -> Option<Val> {
        let callee = self.resolve(self.field(node, self.f.function)?, depth + 1)?;
        match callee {
            Val::Api(q) => {
                let args = self.field(node, self.f.arguments);
                if tables::is_dynamic_import(&q) {
                    let name = self.const_str(self.positional(args?, 0)?, 0)?;
                    let name = name.trim();
                    let name = if q == "builtins.__import__" {
                        name.split('.').next().unwrap_or(name)
                    } else {
                        name
                    };
                    return (!name.is_empty()).then(|| module_val(name));
                }
                if q == "builtins.getattr" {
                    let a = args?;
                    let obj = self.resolve(self.positional(a, 0)?, depth + 1)?;
                    let attr = self.const_str(self.positional(a, 1)?, 0)?;
                    return self.member(obj, &attr);
                }
                Some(Val::Api(format!("{q}()")))
            }
            Val::Class(c) => Some(Val::Inst(c)),
            _ => None,
        }
    }

    /// The `n`th positional argument of an argument list.
    fn positional(&self, args: Node<'a>, n: usize) -> Option<Node<'a>> {
        if kind(args) != "argument_list" {
            return None;
        }
        (0..args.named_child_count())
            .filter_map(|i| args.named_child(i))
            .filter(|a| {
                !matches!(
                    kind(*a),
                    "keyword_argument" | "comment" | "list_splat" | "dictionary_splat"
                )
            })
            .nth(n)
    }

    /// The value of a constant string expression: literals (not f-strings), their
    /// concatenation, `+` of constants, parentheses.
    fn const_str(&self, node: Node<'a>, depth: u32) -> Option<String> {
        if depth > 8 {
            return None;
        }
        match kind(node) {
            "string" => {
                let mut out = String::new();
                let mut prefix = Prefix::default();
                for i in 0..node.child_count().min(64) {
                    let c = node.child(i)?;
                    match kind(c) {
                        "string_start" => {
                            prefix = Prefix::of(self.text(c));
                            if prefix.format {
                                return None;
                            }
                        }
                        "string_content" => {
                            literal::decode_into(&mut out, self.text(c), prefix);
                        }
                        "interpolation" => return None,
                        _ => {}
                    }
                }
                Some(out)
            }
            "concatenated_string" | "binary_operator" | "parenthesized_expression" => {
                if kind(node) == "binary_operator"
                    && node.child_by_field_name("operator").map(|o| kind(o)) != Some("+")
                {
                    return None;
                }
                let mut out = String::new();
                for i in 0..node.named_child_count().min(64) {
                    let c = node.named_child(i)?;
                    if kind(c) == "comment" {
                        continue;
                    }
                    out.push_str(&self.const_str(c, depth + 1)?);
                }
                Some(out)
            }
            _ => None,
        }
    }
}

/// A literal's value as bytes: a bytes literal's characters are bytes (Latin-1), text is
/// UTF-8.
fn latin1_or_utf8(s: String) -> Vec<u8> {
    if s.chars().all(|c| (c as u32) < 256) {
        s.chars().map(|c| c as u8).collect()
    } else {
        s.into_bytes()
    }
}

/// Applies a codec by name (`.decode('base64')`, `codecs.decode(x, 'rot13')`); text codecs
/// leave the bytes as they are.
fn decode_codec(codec: &str, data: Vec<u8>) -> Option<Vec<u8>> {
    match codec.to_ascii_lowercase().replace('-', "_").as_str() {
        "" | "utf_8" | "utf8" | "ascii" | "latin_1" | "latin1" | "iso_8859_1" => Some(data),
        "base64" | "base_64" | "base64_codec" => base64_decode(&data),
        "hex" | "hex_codec" => hex_decode(&data),
        "zlib" | "zlib_codec" | "zip" => inflate(&data),
        "rot13" | "rot_13" => Some(
            data.into_iter()
                .map(|b| match b {
                    b'a'..=b'z' => (b - b'a' + 13) % 26 + b'a',
                    b'A'..=b'Z' => (b - b'A' + 13) % 26 + b'A',
                    other => other,
                })
                .collect(),
        ),
        _ => None,
    }
}

/// Standard or URL-safe base64, whitespace ignored, padding optional.
fn base64_decode(data: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(data.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0u32);
    for &c in data {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' | b'-' => 62,
            b'/' | b'_' => 63,
            b'=' => break,
            c if c.is_ascii_whitespace() => continue,
            _ => return None,
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Some(out)
}

fn hex_decode(data: &[u8]) -> Option<Vec<u8>> {
    let digits: Vec<u8> = data
        .iter()
        .copied()
        .filter(|c| !c.is_ascii_whitespace())
        .map(|c| (c as char).to_digit(16).map(|d| d as u8))
        .collect::<Option<_>>()?;
    if !digits.len().is_multiple_of(2) {
        return None;
    }
    Some(digits.chunks(2).map(|p| p[0] << 4 | p[1]).collect())
}

/// zlib or gzip data, inflated up to a bound.
fn inflate(data: &[u8]) -> Option<Vec<u8>> {
    use std::io::Read;
    let mut out = Vec::new();
    let read = if data.starts_with(&[0x1f, 0x8b]) {
        flate2::read::GzDecoder::new(data)
            .take(MAX_INFLATED_BYTES)
            .read_to_end(&mut out)
    } else {
        flate2::read::ZlibDecoder::new(data)
            .take(MAX_INFLATED_BYTES)
            .read_to_end(&mut out)
    };
    read.ok().filter(|&n| n > 0).map(|_| out)
}

/// The value a module name stands for once imported.
fn module_val(name: &str) -> Val {
    let name = match name.strip_prefix("__builtin__") {
        Some(rest) => format!("builtins{rest}"),
        None => name.to_owned(),
    };
    let top = name.split('.').next().unwrap_or(&name);
    if tables::is_known(top) {
        Val::Api(name)
    } else {
        Val::Pkg(
            Rc::new(ModuleRef {
                spec: name,
                level: 0,
            }),
            String::new(),
        )
    }
}

/// A dotted name as written, without the spaces or comments Python allows inside it.
fn dotted(text: &str) -> String {
    if text
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_')
    {
        return text.to_owned();
    }
    text.split('.')
        .map(|part| {
            part.split('#')
                .next()
                .unwrap_or("")
                .trim_matches(|c: char| c.is_whitespace() || c == '\\')
        })
        .collect::<Vec<_>>()
        .join(".")
}

fn is_truthy(text: &str) -> bool {
    matches!(text.trim(), "True" | "1")
}

/// Whether a literal written with `escapes` numeric escapes spells out readable text (code,
/// addresses) rather than binary data or character tables, which benign code writes the same
/// way: mostly escapes, and the value mostly printable ASCII.
fn hides_text(text: &str, escapes: usize) -> bool {
    let (mut chars, mut printable) = (0usize, 0usize);
    for c in text.chars() {
        chars += 1;
        if c == ' ' || c.is_ascii_graphic() || c == '\n' {
            printable += 1;
        }
    }
    escapes * 2 >= chars && printable * 10 >= chars * 9
}

/// Whether an identifier `name` occurs within the first `budget` nodes below `node`.
fn contains_identifier(node: Node, src: &str, name: &str, budget: usize) -> bool {
    let mut cursor = node.walk();
    let mut seen = 0;
    loop {
        let n = cursor.node();
        if kind(n) == "identifier" && src.get(n.byte_range()) == Some(name) {
            return true;
        }
        seen += 1;
        if seen >= budget {
            return false;
        }
        if cursor.goto_first_child() || cursor.goto_next_sibling() {
            continue;
        }
        loop {
            if !cursor.goto_parent() || cursor.node() == node {
                return false;
            }
            if cursor.goto_next_sibling() {
                break;
            }
        }
    }
}

/// One pass over the raw text for `O1` evidence that needs the whole file: identifiers made
/// of confusable characters used again and again or in numbers (`lIlIlI`, `O0O0OO`), and long
/// code lines.
fn prescan(src: &str) -> (HashSet<&str>, Vec<usize>) {
    let b = src.as_bytes();
    let mut counts: HashMap<&str, u32> = HashMap::new();
    let mut long_rows = Vec::new();
    let (mut i, mut row, mut line_start) = (0usize, 0usize, 0usize);
    let check_line = |start: usize, end: usize, row: usize, rows: &mut Vec<usize>| {
        if end - start > LONG_CODE_LINE && rows.len() < 8 {
            let line = src.get(start..end).unwrap_or("");
            if ["lambda", "__import__", "exec(", "eval("]
                .iter()
                .any(|m| line.contains(m))
            {
                rows.push(row);
            }
        }
    };
    while i < b.len() {
        let c = b[i];
        if c == b'\n' {
            check_line(line_start, i, row, &mut long_rows);
            row += 1;
            i += 1;
            line_start = i;
            continue;
        }
        if c.is_ascii_alphabetic() || c == b'_' {
            let start = i;
            while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_') {
                i += 1;
            }
            if i - start >= 6 && is_confusable(&b[start..i]) {
                if let Some(tok) = src.get(start..i) {
                    *counts.entry(tok).or_insert(0) += 1;
                }
            }
            continue;
        }
        if c.is_ascii_digit() {
            while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_' || b[i] == b'.') {
                i += 1;
            }
            continue;
        }
        i += 1;
    }
    check_line(line_start, b.len(), row, &mut long_rows);
    // A name used again and again, or many distinct ones each used once (generators that
    // rename every variable): either way, names made to be unreadable.
    let many_distinct = counts.len() >= 5;
    let soup = counts
        .into_iter()
        .filter(|&(_, n)| n >= 3 || many_distinct)
        .map(|(t, _)| t)
        .collect();
    (soup, long_rows)
}

/// An identifier made only of `O`, `0`, `I`, `l` and `_`, mixing at least two of the
/// look-alikes: names generated to be unreadable.
fn is_confusable(tok: &[u8]) -> bool {
    let mut seen = [false; 4];
    let mut letters = 0;
    for &c in tok {
        match c {
            b'O' => seen[0] = true,
            b'0' => seen[1] = true,
            b'I' => seen[2] = true,
            b'l' => seen[3] = true,
            b'_' => continue,
            _ => return false,
        }
        letters += 1;
    }
    letters >= 4 && seen.iter().filter(|&&s| s).count() >= 2
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    thread_local! {
        /// A parse budget that replaces [`parse_budget`]'s on this thread.
        pub(crate) static BUDGET: Cell<Option<u64>> = const { Cell::new(None) };
    }

    /// Runs `f` with every parse on this thread given `budget`.
    fn with_budget<T>(budget: u64, f: impl FnOnce() -> T) -> T {
        BUDGET.with(|b| b.set(Some(budget)));
        let out = f();
        BUDGET.with(|b| b.set(None));
        out
    }

    /// Enough code that tree-sitter reports progress (and so can be stopped) before it ends.
    fn long_source() -> String {
        "import os\nos.system('echo hi')\n".repeat(20_000)
    }

    #[test]
    fn a_parse_over_budget_leaves_a_gave_up_event() {
        let facts = with_budget(0, || extract("setup.py", &long_source()));
        assert!(super::super::gave_up(&facts), "{:?}", facts.top_level);
        let facts = extract("setup.py", &long_source());
        assert!(!super::super::gave_up(&facts));
    }

    #[test]
    fn an_install_time_file_over_budget_makes_the_package_unjudgeable() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("PKG-INFO"),
            "Metadata-Version: 2.1\nName: slow\nVersion: 1.0\n",
        )
        .unwrap();
        std::fs::create_dir(dir.path().join("slow")).unwrap();
        std::fs::write(dir.path().join("slow/data.py"), long_source()).unwrap();
        let limits = cerebro_archive::Limits::default();
        let package = cerebro_archive::open(dir.path(), &limits).unwrap();
        // Only a module nothing runs at install gives up: judged as usual.
        let facts = with_budget(0, || super::super::extract(&package));
        assert!(facts.unjudgeable.is_empty(), "{:?}", facts.unjudgeable);
        std::fs::write(dir.path().join("slow/__init__.py"), long_source()).unwrap();
        let package = cerebro_archive::open(dir.path(), &limits).unwrap();
        let facts = with_budget(0, || super::super::extract(&package));
        assert!(
            facts
                .unjudgeable
                .iter()
                .any(|r| r.contains("slow/__init__.py")),
            "{:?}",
            facts.unjudgeable
        );
        std::fs::remove_file(dir.path().join("slow/__init__.py")).unwrap();
        std::fs::write(dir.path().join("setup.py"), long_source()).unwrap();
        let package = cerebro_archive::open(dir.path(), &limits).unwrap();
        let facts = with_budget(0, || super::super::extract(&package));
        assert_eq!(facts.unjudgeable.len(), 1, "{:?}", facts.unjudgeable);
        assert!(
            facts.unjudgeable[0].contains("setup.py")
                && facts.unjudgeable[0].contains("out of time")
        );
        // With the usual budget it parses, and is judged.
        let facts = super::super::extract(&package);
        assert!(facts.unjudgeable.is_empty(), "{:?}", facts.unjudgeable);
    }
}
