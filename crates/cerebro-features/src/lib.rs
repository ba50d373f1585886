//! Features stage: turns each source file into *behaviour events* over one feature set shared
//! by Python and JavaScript, so that what is learnt from one ecosystem carries to the other.
//!
//! The feature set is defined once, in [`FEATURES`]. Each language maps its own APIs onto it in
//! its own module ([`python`], [`javascript`]); the package manifest's install hooks are read
//! in [`npm`]. Literal strings are judged the same way in both languages by [`strings`].
//!
//! An extractor does not order anything across files: it records, per file, the top-level
//! statements and each named function as lists of [`Step`]s in source order, including the
//! imports and calls that *may* reach code of the package. The [`sequence`] stage resolves those
//! and walks them.

pub mod javascript;
pub mod npm;
pub mod parse;
pub mod paths;
pub mod python;
pub mod rich;
pub mod sequence;
pub mod strings;

use serde::Serialize;

use cerebro_archive::{AnomalyKind, Package};

/// One behaviour of the unified feature set.
///
/// The first sixteen are the Cerebro paper's, in its four dimensions (R: reconnaissance,
/// D: data exfiltration, E: encoding, P: payload execution); the rest are additions that are
/// ecosystem-neutral and that malware leans on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub enum Feature {
    R1,
    R2,
    R3,
    R4,
    R5,
    D1,
    D2,
    D3,
    D4,
    E1,
    E2,
    E3,
    E4,
    P1,
    P2,
    P3,
    P4,
    H1,
    O1,
    A1,
}

/// What a feature means, for people and for the docs.
#[derive(Debug, Clone, Copy)]
pub struct FeatureInfo {
    pub feature: Feature,
    /// Short id, also the feature's token in a sequence.
    pub id: &'static str,
    pub name: &'static str,
    /// How strongly the feature alone points at malice (0 = routine, 3 = rarely benign). Used
    /// to rank the strongest behaviours for people and to choose what a length cap keeps; the
    /// detector learns its own weights.
    pub weight: u8,
}

/// The unified feature set: the single table every other part refers to.
pub const FEATURES: &[FeatureInfo] = &[
    info(Feature::R1, "R1", "import operating-system module", 0),
    info(Feature::R2, "R2", "use operating-system module call", 1),
    info(Feature::R3, "R3", "import file-system module", 0),
    info(Feature::R4, "R4", "use file-system module call", 0),
    info(Feature::R5, "R5", "read sensitive information", 2),
    info(Feature::D1, "D1", "import network module", 1),
    info(Feature::D2, "D2", "use network module call", 2),
    info(Feature::D3, "D3", "use URL", 1),
    info(
        Feature::D4,
        "D4",
        "use exfiltration endpoint (webhook, messenger, paste, tunnel)",
        3,
    ),
    info(Feature::E1, "E1", "import encoding module", 0),
    info(Feature::E2, "E2", "use encoding module call", 1),
    info(Feature::E3, "E3", "use base64 string", 2),
    info(Feature::E4, "E4", "use long string", 1),
    info(Feature::P1, "P1", "import process module", 1),
    info(Feature::P2, "P2", "use process module call", 2),
    info(Feature::P3, "P3", "use shell script", 3),
    info(Feature::P4, "P4", "evaluate code at run time", 3),
    info(
        Feature::H1,
        "H1",
        "run code at install or start-up (install hook)",
        2,
    ),
    info(Feature::O1, "O1", "obfuscated code", 3),
    info(
        Feature::A1,
        "A1",
        "suspicious archive entry (link, traversal, oversized)",
        2,
    ),
];

const fn info(feature: Feature, id: &'static str, name: &'static str, weight: u8) -> FeatureInfo {
    FeatureInfo {
        feature,
        id,
        name,
        weight,
    }
}

impl Feature {
    /// This feature's row of [`FEATURES`].
    pub fn info(self) -> &'static FeatureInfo {
        // The table is in declaration order; a test checks it.
        &FEATURES[self as usize]
    }

    /// The token standing for this feature in a behaviour sequence.
    pub fn id(self) -> &'static str {
        self.info().id
    }

    pub fn name(self) -> &'static str {
        self.info().name
    }

    pub fn weight(self) -> u8 {
        self.info().weight
    }

    /// Parses a feature id (`"P3"`).
    pub fn from_id(id: &str) -> Option<Feature> {
        FEATURES.iter().find(|f| f.id == id).map(|f| f.feature)
    }
}

impl Serialize for FeatureInfo {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.id)
    }
}

/// One observed behaviour: what, where, and the code that showed it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Event {
    pub feature: Feature,
    /// Package-relative path of the file.
    pub file: String,
    /// 1-based line.
    pub line: u32,
    /// The API or literal that fired the feature (`subprocess.Popen`, `import socket`,
    /// `https://…`), language-specific, for people.
    pub detail: String,
    /// The source text, on one line, shortened.
    pub excerpt: String,
    /// What the behaviour touches or where its data goes, when [`rich::qualify`] could tell
    /// (the event's rich token, `D3.ip`, rather than `D3`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub qualifier: Option<rich::Qualifier>,
}

impl Event {
    /// Builds an event, cleaning `excerpt` into one short line.
    pub fn new(
        feature: Feature,
        file: &str,
        line: u32,
        detail: impl Into<String>,
        excerpt: &str,
    ) -> Event {
        Event {
            feature,
            file: file.to_owned(),
            line,
            detail: shorten(&detail.into(), 120),
            excerpt: shorten(excerpt, 120),
            qualifier: None,
        }
    }
}

/// Collapses whitespace to single spaces and cuts to `max` characters with an ellipsis.
pub fn shorten(text: &str, max: usize) -> String {
    let mut out = String::with_capacity(text.len().min(max + 3));
    let mut count = 0;
    let mut pending_space = false;
    for c in text.chars() {
        if c.is_whitespace() {
            pending_space = count > 0;
            continue;
        }
        if pending_space {
            if count >= max {
                break;
            }
            out.push(' ');
            count += 1;
            pending_space = false;
        }
        if count >= max {
            out.push('…');
            return out;
        }
        out.push(c);
        count += 1;
    }
    out
}

/// At most `max` bytes of `s`, cut back to a character boundary: extractors bound what they
/// copy out of hostile source without risking a split UTF-8 sequence.
pub fn clip(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// A module named by an import, not yet resolved to a file (that is the sequence stage's job).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ModuleRef {
    /// Python: the dotted module (`pkg.utils`, or `utils` for `from .utils import x`, or empty
    /// for `from . import x`). JavaScript: the specifier as written (`./utils`, `../lib/x.js`).
    pub spec: String,
    /// Python: the number of leading dots of a relative import. JavaScript: always 0.
    pub level: u32,
}

/// A call that may reach a function defined in the package.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallRef {
    /// The module the callee was imported from, or `None` for a name of this same file.
    pub module: Option<ModuleRef>,
    /// The callee inside that module: `helper`, `Install.run`, `utils.helper` (the resolver
    /// moves leading parts into the module when a submodule matches), `default` for a
    /// JavaScript default export, `Class.__init__` / `Class.constructor` for instantiation.
    pub function: String,
    pub line: u32,
}

/// One thing that happens when code runs, in source order.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    /// A behaviour.
    Event(Event),
    /// An import: if it names a module of the package, that module's top level runs here.
    Import(ModuleRef),
    /// A call: if it reaches a function of the package, its body runs here.
    Call(CallRef),
}

/// A named function (or method, as `Class.method`) and what its body does.
#[derive(Debug, Clone, PartialEq)]
pub struct Function {
    pub name: String,
    pub line: u32,
    pub steps: Vec<Step>,
}

/// Source languages the extractors read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Language {
    Python,
    JavaScript,
}

impl Language {
    /// The language of a package file, from its extension; `None` for files no extractor reads.
    pub fn of(path: &str) -> Option<Language> {
        let ext = path.rsplit_once('.')?.1.to_ascii_lowercase();
        match ext.as_str() {
            "py" | "pyw" | "pth" => Some(Language::Python),
            "js" | "mjs" | "cjs" => Some(Language::JavaScript),
            _ => None,
        }
    }
}

/// What one source file does: its top level and its named functions, each in source order.
#[derive(Debug, Clone, PartialEq)]
pub struct FileFacts {
    pub path: String,
    pub language: Language,
    /// Statements run when the file is executed or imported. Named function bodies are not
    /// here (they run when called), anonymous ones are (callbacks usually run).
    pub top_level: Vec<Step>,
    pub functions: Vec<Function>,
}

/// An npm lifecycle script that runs at install time.
#[derive(Debug, Clone, PartialEq)]
pub struct Hook {
    /// `preinstall`, `install` or `postinstall`.
    pub name: String,
    pub command: String,
    /// The `H1` event for the hook itself, then what its inline shell does.
    pub steps: Vec<Step>,
    /// Package files the command runs (`node scripts/x.js` → `scripts/x.js`), resolved.
    pub runs: Vec<String>,
}

/// The start of the `E4` event an extractor leaves for a file whose parse ran out of its time
/// budget: at install or import time such a file makes the package one Cerebro cannot judge.
pub(crate) const GAVE_UP: &str = "file too hard to parse";

/// Whether the extractor gave up parsing the file these facts are of.
fn gave_up(facts: &FileFacts) -> bool {
    facts.top_level.iter().any(|step| {
        matches!(step, Step::Event(e) if e.feature == Feature::E4 && e.detail.starts_with(GAVE_UP))
    })
}

/// Everything the extractors found in one package, for the sequence stage to order.
#[derive(Debug, Clone, Default)]
pub struct PackageFacts {
    /// One entry per parsed source file, sorted by path.
    pub files: Vec<FileFacts>,
    /// npm install-time lifecycle scripts, in the order npm runs them.
    pub hooks: Vec<Hook>,
    /// npm import-time entry files (`main`, `exports`), resolved to package files.
    pub entries: Vec<String>,
    /// Events about the archive itself (`A1`).
    pub archive_events: Vec<Event>,
    /// Why the package cannot be judged at all (empty when it can): code that runs at
    /// install or import time that Cerebro could not read as the installer will.
    pub unjudgeable: Vec<String>,
}

impl PackageFacts {
    /// The facts of the file at `path`, if it was parsed.
    pub fn file(&self, path: &str) -> Option<&FileFacts> {
        self.files
            .binary_search_by(|f| f.path.as_str().cmp(path))
            .ok()
            .map(|i| &self.files[i])
    }
}

/// Runs the extractors over every source file of `package`, within the package's parse
/// budget ([`parse::package_budget`]): once it is spent, each file left is one whose parse
/// gave up (at install or import time, that makes the package one Cerebro cannot judge).
pub fn extract(package: &Package) -> PackageFacts {
    extract_within(package, parse::package_budget())
}

/// [`extract`] with another package budget, in parse work (tests; a caller with its own).
pub fn extract_within(package: &Package, work: u64) -> PackageFacts {
    parse::with_package_budget(work, || extract_all(package))
}

fn extract_all(package: &Package) -> PackageFacts {
    let mut files: Vec<FileFacts> = package
        .files
        .iter()
        .filter_map(|file| {
            let language = Language::of(&file.path)?;
            let text = file.text();
            Some(match language {
                Language::Python if file.path.ends_with(".pth") => {
                    python::extract_pth(&file.path, &text)
                }
                Language::Python => python::extract(&file.path, &text),
                Language::JavaScript => javascript::extract(&file.path, &text),
            })
        })
        .collect();
    files.sort_by(|a, b| a.path.cmp(&b.path));

    let (hooks, entries) = match package.file("package.json") {
        Some(manifest) => npm::read_manifest(manifest, package),
        None => (Vec::new(), Vec::new()),
    };

    let archive_events = package
        .anomalies
        .iter()
        .map(|a| {
            let what = match a.kind {
                AnomalyKind::Symlink => "symbolic link",
                AnomalyKind::Hardlink => "hard link",
                AnomalyKind::AbsolutePath => "absolute path",
                AnomalyKind::PathTraversal => "path traversal",
                AnomalyKind::OversizedFile => "oversized file",
                AnomalyKind::SpecialFile => "special file",
            };
            Event::new(Feature::A1, &a.path, 0, what, &a.path)
        })
        .collect();

    let unjudgeable = unjudgeable(package, &files, &hooks, &entries);
    let mut facts = PackageFacts {
        files,
        hooks,
        entries,
        archive_events,
        unjudgeable,
    };
    rich::qualify(&mut facts);
    facts
}

/// Why `package` cannot be judged: an install- or import-time file (`setup.py`, a root
/// `.pth`, `package.json`, a file an npm install script runs, npm's `main`) that is a link,
/// a special entry, too large to read or parse, or whose parse ran out of time, or an npm
/// manifest Cerebro cannot parse.
/// The installer follows the link, runs the padded file and reads the manifest all the
/// same, so a package judged without them would be judged on less than what runs.
fn unjudgeable(
    package: &Package,
    parsed: &[FileFacts],
    hooks: &[Hook],
    entries: &[String],
) -> Vec<String> {
    let mut reasons = Vec::new();
    let npm_manifest = (package.ecosystem == cerebro_archive::Ecosystem::Npm)
        .then(|| package.file("package.json"))
        .flatten();
    let mut main = None;
    if let Some(manifest) = npm_manifest {
        match npm::parse_manifest(&manifest.bytes) {
            Ok(json) => main = json.get("main").and_then(|m| m.as_str()).map(str::to_owned),
            Err(e) => reasons.push(format!(
                "package.json cannot be read as npm reads it ({e}), so its install scripts \
                 are unknown"
            )),
        }
    }
    let install_time = |path: &str| -> bool {
        match package.ecosystem {
            cerebro_archive::Ecosystem::Pypi => {
                path == "setup.py" || (!path.contains('/') && path.ends_with(".pth"))
            }
            cerebro_archive::Ecosystem::Npm => {
                path == "package.json"
                    || entries.iter().any(|e| e == path)
                    || hooks.iter().any(|h| h.runs.iter().any(|r| r == path))
                    || main.as_deref().is_some_and(|m| names(m, path))
                    || (main.is_none() && path == "index.js")
                    || hooks.iter().any(|h| {
                        h.command
                            .split(|c: char| c.is_whitespace() || "&|;<>()'\"`".contains(c))
                            .any(|word| names(word, path))
                    })
            }
        }
    };
    for anomaly in &package.anomalies {
        let what = match anomaly.kind {
            AnomalyKind::Symlink => "a symbolic link",
            AnomalyKind::Hardlink => "a hard link",
            AnomalyKind::SpecialFile => "a special file",
            AnomalyKind::OversizedFile => "larger than the per-file limit",
            AnomalyKind::AbsolutePath | AnomalyKind::PathTraversal => continue,
        };
        let raw = anomaly.path.trim_start_matches("./");
        let below_top = raw.split_once('/').map(|(_, rest)| rest);
        if install_time(raw) || below_top.is_some_and(install_time) {
            reasons.push(format!(
                "{} runs at install or import time and is {what}, which Cerebro does not read",
                anomaly.path
            ));
        } else if package.ecosystem == cerebro_archive::Ecosystem::Pypi
            && matches!(anomaly.kind, AnomalyKind::Symlink | AnomalyKind::Hardlink)
            && (Language::of(raw) == Some(Language::Python) || raw.ends_with(".pth"))
        {
            // pip unpacks an sdist's links (a hard link as a copy of its target, a symbolic
            // link as a link), so the module is installed with content Cerebro never read
            // under its name. npm drops links from tarballs, so there they install nothing.
            reasons.push(format!(
                "{} is Python code and {what}: pip installs what it points to under this \
                 name, which Cerebro does not read",
                anomaly.path
            ));
        }
    }
    for file in &package.files {
        let limit = match Language::of(&file.path) {
            Some(Language::Python) => python::MAX_PARSE_BYTES,
            Some(Language::JavaScript) => javascript::MAX_PARSE_BYTES,
            None => continue,
        };
        if file.bytes.len() > limit && install_time(&file.path) {
            reasons.push(format!(
                "{} runs at install or import time and is too large to parse ({} bytes, \
                 limit {limit})",
                file.path,
                file.bytes.len()
            ));
        }
    }
    // A Python module imported with its package: a root module or a package's `__init__.py`.
    let import_time = |path: &str| {
        package.ecosystem == cerebro_archive::Ecosystem::Pypi
            && (path == "__init__.py"
                || path.ends_with("/__init__.py")
                || (!path.contains('/') && path.ends_with(".py")))
    };
    for facts in parsed {
        if (install_time(&facts.path) || import_time(&facts.path)) && gave_up(facts) {
            reasons.push(format!(
                "{} runs at install or import time and its parse ran out of time",
                facts.path
            ));
        }
    }
    reasons
}

/// Whether `word` (a path as a script or `main` writes it) names the package file `path`
/// the way Node would find it: as is, with `.js`, or as a folder's `index.js`.
fn names(word: &str, path: &str) -> bool {
    let Some(word) = paths::join("", word.trim()) else {
        return false;
    };
    !word.is_empty()
        && (word == path
            || format!("{word}.js") == path
            || format!("{word}.cjs") == path
            || format!("{word}/index.js") == path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_is_in_declaration_order_with_unique_ids() {
        for (i, row) in FEATURES.iter().enumerate() {
            assert_eq!(row.feature as usize, i, "{} out of order", row.id);
            assert_eq!(Feature::from_id(row.id), Some(row.feature));
        }
        let mut ids: Vec<_> = FEATURES.iter().map(|f| f.id).collect();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), FEATURES.len());
    }

    #[test]
    fn a_package_past_its_parse_deadline_cannot_be_judged() {
        let package = Package {
            origin: "x-1.0.tar.gz".into(),
            ecosystem: cerebro_archive::Ecosystem::Pypi,
            name: "x".into(),
            version: "1.0".into(),
            kind: cerebro_archive::ArchiveKind::Tar,
            files: vec![
                cerebro_archive::SourceFile {
                    path: "setup.py".into(),
                    bytes: b"import os\nos.system('id')\n".to_vec(),
                },
                cerebro_archive::SourceFile {
                    path: "x/util.py".into(),
                    bytes: b"import socket\n".to_vec(),
                },
            ],
            anomalies: Vec::new(),
        };
        let within = extract(&package);
        assert!(within.unjudgeable.is_empty(), "{:?}", within.unjudgeable);
        // No time left: every file gives up, and the install-time one makes the package
        // one Cerebro cannot judge (rather than a package with less code than runs).
        let late = extract_within(&package, 0);
        assert!(
            late.unjudgeable.iter().any(|r| r.contains("setup.py")),
            "{:?}",
            late.unjudgeable
        );
        assert!(gave_up(late.file("x/util.py").unwrap()));
    }

    #[test]
    fn a_python_module_that_is_a_link_cannot_be_judged_in_a_python_package_only() {
        let package = |ecosystem, anomaly: &str| Package {
            origin: "x-1.0.tar.gz".into(),
            ecosystem,
            name: "x".into(),
            version: "1.0".into(),
            kind: cerebro_archive::ArchiveKind::Tar,
            files: vec![cerebro_archive::SourceFile {
                path: "x/__init__.py".into(),
                bytes: b"from . import util\n".to_vec(),
            }],
            anomalies: vec![cerebro_archive::Anomaly {
                kind: AnomalyKind::Hardlink,
                path: anomaly.into(),
            }],
        };
        use cerebro_archive::Ecosystem::{Npm, Pypi};
        // pip unpacks the link as the file it points to: Cerebro never read that as x/util.py.
        let facts = extract(&package(Pypi, "x-1.0/x/util.py"));
        assert!(
            facts.unjudgeable.iter().any(|r| r.contains("x/util.py")),
            "{:?}",
            facts.unjudgeable
        );
        // A link to data is data; npm drops links from tarballs.
        assert!(extract(&package(Pypi, "x-1.0/x/data.txt"))
            .unjudgeable
            .is_empty());
        assert!(extract(&package(Npm, "package/lib/util.py"))
            .unjudgeable
            .is_empty());
    }

    #[test]
    fn clip_stops_at_a_character_boundary() {
        assert_eq!(clip("héllo", 2), "h");
        assert_eq!(clip("abc", 10), "abc");
    }

    #[test]
    fn shorten_collapses_and_cuts() {
        assert_eq!(shorten("  a\n\t b  ", 10), "a b");
        assert_eq!(shorten("abcdef", 3), "abc…");
        assert_eq!(shorten("abc", 3), "abc");
    }

    #[test]
    fn language_by_extension() {
        assert_eq!(Language::of("a/b.py"), Some(Language::Python));
        assert_eq!(Language::of("x.pth"), Some(Language::Python));
        assert_eq!(Language::of("x.CJS"), Some(Language::JavaScript));
        assert_eq!(Language::of("README.md"), None);
        assert_eq!(Language::of("Makefile"), None);
    }
}
