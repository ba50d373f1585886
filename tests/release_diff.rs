//! End-to-end tests of the release diff through the guard: the real pip and npm against a
//! loopback registry serving a small library in two releases. A compromised patch release
//! that changes one function (no install hook, no new dependency) is blocked, with the change
//! as the reason, while the release before it installs cleanly; an ordinary update installs.
//! Nothing reaches the network; the payload is only ever parsed.

#[macro_use]
mod support;

use serde_json::Value;
use support::fixtures::{self, Release};
use support::registry::Registry;
use support::{explain, report_entry, run, Policy, EXIT_BLOCKED};

/// The reasons of `name` in the guard's JSON report.
fn reasons(report: &Value, name: &str) -> Vec<String> {
    report_entry(report, name).unwrap_or_else(|| panic!("{name} is not in the report: {report:#}"))
        ["reasons"]
        .as_array()
        .map(|r| {
            r.iter()
                .map(|s| s.as_str().unwrap_or_default().to_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// PyPI releases are compared only when the user asks (`release_diff = "all"`; npm is the
/// default, docs/EVALUATION.md "Release diff" says why).
fn pip_diff(mut cmd: std::process::Command) -> std::process::Command {
    cmd.env("CEREBRO_RELEASE_DIFF", "all");
    cmd
}

// ---------------------------------------------------------------------------------------------
// npm.

fn npm_registry() -> Registry {
    Registry::with(
        vec![],
        vec![
            fixtures::npm_tiny_lib("tiny-lib", "1.0.0", Release::Base),
            fixtures::npm_tiny_lib("tiny-lib", "1.0.1", Release::Compromised),
            fixtures::npm_tiny_lib("tidy-lib", "1.0.0", Release::Base),
            fixtures::npm_tiny_lib("tidy-lib", "1.0.1", Release::Updated),
        ],
    )
}

#[test]
fn npm_the_release_before_a_compromised_patch_installs_cleanly() {
    let registry = npm_registry();
    let sandbox = npm_sandbox!(registry);
    let out = run(sandbox.guard_json(Policy::Block, &["install", "tiny-lib@1.0.0"]));
    let why = explain(&out, &sandbox.installed_list(), &registry);
    assert_eq!(out.code, Some(0), "{why}");
    assert_eq!(
        sandbox.installed_version("tiny-lib").as_deref(),
        Some("1.0.0")
    );
    let report = out.first_json().unwrap();
    assert_eq!(
        report_entry(&report, "tiny-lib").unwrap()["action"],
        "install"
    );
}

#[test]
fn npm_a_compromised_patch_release_that_changes_one_function_is_blocked() {
    let registry = npm_registry();
    let sandbox = npm_sandbox!(registry);
    let out = run(sandbox.guard_json(Policy::Block, &["install", "tiny-lib"]));
    let why = explain(&out, &sandbox.installed_list(), &registry);
    assert_eq!(out.code, Some(EXIT_BLOCKED), "{why}");
    assert!(!sandbox.installed("tiny-lib"), "{why}");
    let report = out.first_json().unwrap();
    let entry = report_entry(&report, "tiny-lib").unwrap();
    assert_eq!(entry["version"], "1.0.1", "{report:#}");
    assert_eq!(entry["verdict"], "malicious", "{report:#}");
    let reasons = reasons(&report, "tiny-lib");
    assert!(
        reasons[0].starts_with("new in 1.0.1 since 1.0.0: lib/util.js:"),
        "the change is the first reason: {reasons:?}\n{why}"
    );
    assert!(
        out.stderr.contains("new in 1.0.1 since 1.0.0"),
        "the change is shown to the user\n{why}"
    );
}

#[test]
fn npm_an_ordinary_patch_release_installs() {
    let registry = npm_registry();
    let sandbox = npm_sandbox!(registry);
    let out = run(sandbox.guard_json(Policy::Block, &["install", "tidy-lib"]));
    let why = explain(&out, &sandbox.installed_list(), &registry);
    assert_eq!(out.code, Some(0), "{why}");
    assert_eq!(
        sandbox.installed_version("tidy-lib").as_deref(),
        Some("1.0.1")
    );
    // The release before was fetched to compare with, by the guard, not by npm.
    assert!(
        registry.file_hits("tidy-lib-1.0.0.tgz") >= 1,
        "the guard never fetched the release before\n{why}"
    );
}

// ---------------------------------------------------------------------------------------------
// pip.

fn pypi_registry() -> Registry {
    Registry::with(
        vec![
            fixtures::py_tiny_lib("tiny-py", "1.0.0", Release::Base),
            fixtures::py_tiny_lib("tiny-py", "1.0.1", Release::Compromised),
            fixtures::py_tiny_lib("tidy-py", "1.0.0", Release::Base),
            fixtures::py_tiny_lib("tidy-py", "1.0.1", Release::Updated),
        ],
        vec![],
    )
}

#[test]
fn pip_the_release_before_a_compromised_patch_installs_cleanly() {
    let registry = pypi_registry();
    let sandbox = pip_sandbox!(registry);
    let out = run(sandbox.guard_json(Policy::Block, &["install", "tiny-py==1.0.0"]));
    let why = explain(&out, &sandbox.installed_list(), &registry);
    assert_eq!(out.code, Some(0), "{why}");
    assert_eq!(
        sandbox.installed_version("tiny-py").as_deref(),
        Some("1.0.0")
    );
}

#[test]
fn pip_a_compromised_patch_release_that_changes_one_function_is_blocked() {
    let registry = pypi_registry();
    let sandbox = pip_sandbox!(registry);
    let out = run(pip_diff(
        sandbox.guard_json(Policy::Block, &["install", "tiny-py"]),
    ));
    let why = explain(&out, &sandbox.installed_list(), &registry);
    assert_eq!(out.code, Some(EXIT_BLOCKED), "{why}");
    assert!(!sandbox.installed("tiny-py"), "{why}");
    let report = out.first_json().unwrap();
    let entry = report_entry(&report, "tiny-py").unwrap();
    assert_eq!(entry["version"], "1.0.1", "{report:#}");
    let reasons = reasons(&report, "tiny-py");
    assert!(
        reasons[0].starts_with("new in 1.0.1 since 1.0.0: tiny_py/core.py:"),
        "the change is the first reason: {reasons:?}\n{why}"
    );
}

#[test]
fn pip_an_ordinary_patch_release_installs() {
    let registry = pypi_registry();
    let sandbox = pip_sandbox!(registry);
    let out = run(pip_diff(
        sandbox.guard_json(Policy::Block, &["install", "tidy-py"]),
    ));
    let why = explain(&out, &sandbox.installed_list(), &registry);
    assert_eq!(out.code, Some(0), "{why}");
    assert_eq!(
        sandbox.installed_version("tidy-py").as_deref(),
        Some("1.0.1")
    );
    assert!(
        registry.file_hits("tidy_py-1.0.0-py3-none-any.whl") >= 1,
        "the guard never fetched the release before\n{why}"
    );
}
