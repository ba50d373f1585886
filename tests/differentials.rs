//! Inputs that pip or npm read differently from a naive reader, end to end through the guard
//! and the real installer: each is a way past the guard if Cerebro reads it another way
//! (issue 13). Every test proves the package was not installed and its install code (a
//! marker-writing `setup.py` or install script) never ran.

mod support;

use support::fixtures::{self, PY_MARKER};
use support::registry::Registry;
use support::{explain, run, Outcome, PipSandbox, Policy, EXIT_BLOCKED, EXIT_UNJUDGED};

/// A sandbox whose pip index is `$registry`, or return from the test when python3 is
/// missing (outside CI).
macro_rules! pip_sandbox {
    ($registry:expr) => {
        match PipSandbox::new(&$registry.pypi_url()) {
            Some(sandbox) => sandbox,
            None => return,
        }
    };
}

// ---------------------------------------------------------------------------------------------
// Requirement files.

/// Installs `-r FILE` through the guard, FILE holding `bytes`, with pip's own index a clean
/// registry and the marker sdist only on the registry that the file names (`{EVIL}` in
/// `text` is that registry's simple URL).
/// `None` when python3 is missing.
fn install_requirements(encode: impl Fn(&str) -> Vec<u8>, text: &str) -> Option<(Outcome, String)> {
    let clean = Registry::with(fixtures::py_clean_tree(), vec![]);
    let evil = Registry::with(vec![fixtures::py_marker_evil_sdist()], vec![]);
    let sandbox = PipSandbox::new(&clean.pypi_url())?;
    let file = sandbox.dirs.root().join("requirements.txt");
    std::fs::write(&file, encode(&text.replace("{EVIL}", &evil.pypi_url()))).unwrap();
    let out = run(sandbox.guard(Policy::Block, &["install", "-r", file.to_str().unwrap()]));
    let why = explain(&out, &sandbox.installed_list(), &evil);
    assert!(
        !sandbox.dirs.marker_written(),
        "the sdist's setup.py ran: pip read an index the guard did not see\n{why}"
    );
    assert!(!sandbox.installed(PY_MARKER.0), "{why}");
    Some((out, why))
}

fn utf16le(text: &str) -> Vec<u8> {
    [0xff, 0xfe]
        .into_iter()
        .chain(text.encode_utf16().flat_map(u16::to_le_bytes))
        .collect()
}

#[test]
fn utf16_requirement_file_index_is_seen_and_its_package_judged() {
    let text = format!("--index-url {{EVIL}}\n{}\n", PY_MARKER.0);
    let Some((out, why)) = install_requirements(utf16le, &text) else {
        return;
    };
    assert_eq!(out.code, Some(EXIT_BLOCKED), "{why}");
}

#[test]
fn index_behind_a_carriage_return_is_seen_as_pip_splits_lines() {
    for separator in ["\r", "\x0c", "\x0b", "\x1c", "\u{85}", "\u{2028}"] {
        let text = format!("# pinned{separator}--index-url {{EVIL}}\n{}\n", PY_MARKER.0);
        let Some((out, why)) = install_requirements(|t| t.as_bytes().to_vec(), &text) else {
            return;
        };
        assert_eq!(
            out.code,
            Some(EXIT_BLOCKED),
            "separator {separator:?}\n{why}"
        );
    }
}

#[test]
fn requirement_file_in_an_encoding_cerebro_does_not_decode_is_refused() {
    // `+AC0AL-` is `--` in UTF-7: pip reads `--index-url`, a UTF-8 reader sees a name.
    let text = format!(
        "# coding: utf-7\n+AC0AL-index-url {{EVIL}}\n{}\n",
        PY_MARKER.0
    );
    let Some((out, why)) = install_requirements(|t| t.as_bytes().to_vec(), &text) else {
        return;
    };
    assert_eq!(out.code, Some(EXIT_UNJUDGED), "{why}");
    let line = out
        .stderr
        .lines()
        .find(|l| l.contains("requirements.txt"))
        .unwrap_or_else(|| panic!("stderr must name the file\n{why}"));
    assert!(line.contains("utf-7"), "{why}");
}

#[test]
fn control_bare_pip_follows_the_index_of_a_utf16_requirement_file() {
    let clean = Registry::with(fixtures::py_clean_tree(), vec![]);
    let evil = Registry::with(vec![fixtures::py_marker_evil_sdist()], vec![]);
    let sandbox = pip_sandbox!(clean);
    let file = sandbox.dirs.root().join("requirements.txt");
    let text = format!("--index-url {}\n{}\n", evil.pypi_url(), PY_MARKER.0);
    std::fs::write(&file, utf16le(&text)).unwrap();
    let out = run(sandbox.bare(&["install", "-r", file.to_str().unwrap()]));
    let why = explain(&out, &sandbox.installed_list(), &evil);
    // pip then fails to build a wheel without the `wheel` package; setup.py has run by then.
    assert!(
        sandbox.dirs.marker_written(),
        "without the guard pip reads the index and runs setup.py\n{why}"
    );
}
