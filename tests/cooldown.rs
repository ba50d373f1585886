//! End-to-end tests of the release-age cooldown (`min_release_age`): the real pip and npm,
//! through the guard, against loopback registries that publish release times (PEP 700
//! `upload-time`, npm's `time`), or none (then a second loopback registry plays the public one,
//! through `CEREBRO_PUBLIC_PYPI_URL` / `CEREBRO_PUBLIC_NPM_URL`). Nothing reaches the network.

#[macro_use]
mod support;

use serde_json::Value;
use support::fixtures::{self, NpmPkg, PyDist};
use support::registry::{hours_ago, Registry};
use support::{
    explain, explain_screen, run, Policy, Pty, DOWN, ENTER, EXIT_BLOCKED, EXIT_UNJUDGED,
    PROMPT_TIMEOUT,
};

const REASON: &str = "published 1 hour ago (min_release_age 2 days)";

/// The clean PyPI tree, and gamma-lib 1.1.0 (clean too).
fn py_tree() -> Vec<PyDist> {
    let mut all = fixtures::py_clean_tree();
    all.push(fixtures::wheel(
        "gamma-lib",
        "1.1.0",
        &[],
        &[("gamma_lib/__init__.py", "VERSION = '1.1.0'\n")],
    ));
    all
}

/// The clean npm tree, and gamma-js 1.1.0 (clean too).
fn npm_tree() -> Vec<NpmPkg> {
    let mut all = fixtures::npm_clean_tree();
    all.push(fixtures::npm(
        "gamma-js",
        "1.1.0",
        &[],
        &[],
        &[("index.js", "module.exports = { version: '1.1.0' };\n")],
    ));
    all
}

/// A registry whose gamma 1.1.0 came out an hour ago (the rest long ago).
fn fresh_gamma() -> Registry {
    let registry = Registry::with(py_tree(), npm_tree());
    registry.publish_pypi_at("gamma-lib", "1.1.0", &hours_ago(1));
    registry.publish_npm_at("gamma-js", "1.1.0", &hours_ago(1));
    registry
}

fn held_back(report: &Value) -> Vec<(String, String, String)> {
    report["held_back"]
        .as_array()
        .unwrap_or_else(|| panic!("no held_back list: {report:#}"))
        .iter()
        .map(|h| {
            (
                h["name"].as_str().unwrap_or_default().to_owned(),
                h["version"].as_str().unwrap_or_default().to_owned(),
                h["action"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

fn held(name: &str, version: &str, action: &str) -> (String, String, String) {
    (name.to_owned(), version.to_owned(), action.to_owned())
}

// ---------------------------------------------------------------------------------------------
// pip.

#[test]
fn pip_holds_back_a_release_published_an_hour_ago_and_installs_the_one_before() {
    let registry = fresh_gamma();
    let sandbox = pip_sandbox!(registry);
    let out = run(sandbox.guard_json(Policy::Block, &["install", "alpha-lib"]));
    let why = explain(&out, &sandbox.installed_list(), &registry);
    assert_eq!(out.code, Some(0), "{why}");
    assert_eq!(
        sandbox.installed_version("gamma-lib").as_deref(),
        Some("1.0.0"),
        "the newest release old enough\n{why}"
    );
    let report = out.first_json().unwrap();
    assert_eq!(
        held_back(&report),
        [held("gamma-lib", "1.1.0", "held-back")],
        "{report:#}"
    );
    let entry = &report["held_back"][0];
    assert_eq!(entry["ecosystem"], "pypi");
    let age = entry["age_s"].as_u64().unwrap();
    assert!((3_500..3_700).contains(&age), "{entry:#}");
    assert!(entry["published"].as_str().unwrap().ends_with('Z'));
    assert_eq!(report["min_release_age_s"], 2 * 86_400);
    assert!(
        out.stderr
            .contains("Held back 1 release newer than 2 days: gamma-lib 1.1.0"),
        "{why}"
    );
}

#[test]
fn pip_exact_pin_of_a_too_new_release_is_stopped_with_the_reason() {
    let registry = fresh_gamma();
    let sandbox = pip_sandbox!(registry);
    let out = run(sandbox.guard_json(Policy::Block, &["install", "gamma-lib==1.1"]));
    let why = explain(&out, &sandbox.installed_list(), &registry);
    assert_eq!(out.code, Some(EXIT_BLOCKED), "{why}");
    assert!(!sandbox.installed("gamma-lib"), "{why}");
    assert!(
        out.stderr.contains(&format!("gamma-lib 1.1.0: {REASON}")),
        "Cerebro's reason, not only pip's\n{why}"
    );
    let report = out.first_json().unwrap();
    assert_eq!(report["decision"], "blocked", "{report:#}");
    assert_eq!(
        held_back(&report),
        [held("gamma-lib", "1.1.0", "blocked")],
        "{report:#}"
    );
    // A range that older releases meet is no pin: it resolves to 1.0.0.
    let out = run(sandbox.guard(Policy::Block, &["install", "gamma-lib>=0.9"]));
    let why = explain(&out, &sandbox.installed_list(), &registry);
    assert_eq!(out.code, Some(0), "{why}");
    assert_eq!(
        sandbox.installed_version("gamma-lib").as_deref(),
        Some("1.0.0")
    );
}

#[test]
fn pip_min_release_age_0_and_the_allowlist_let_a_pin_through() {
    let registry = fresh_gamma();
    let mut sandbox = pip_sandbox!(registry);

    let mut cmd = sandbox.guard(Policy::Block, &["install", "gamma-lib==1.1.0"]);
    cmd.env("CEREBRO_MIN_RELEASE_AGE", "0");
    let out = run(cmd);
    let why = explain(&out, &sandbox.installed_list(), &registry);
    assert_eq!(out.code, Some(0), "{why}");
    assert_eq!(
        sandbox.installed_version("gamma-lib").as_deref(),
        Some("1.1.0"),
        "{why}"
    );

    // A shorter age in config.toml than the release's: shown as any other.
    sandbox.fresh_venv();
    std::fs::write(
        sandbox.dirs.config.join("config.toml"),
        "min_release_age = \"30m\"\n",
    )
    .unwrap();
    let out = run(sandbox.guard(Policy::Block, &["install", "alpha-lib"]));
    let why = explain(&out, &sandbox.installed_list(), &registry);
    assert_eq!(out.code, Some(0), "{why}");
    assert_eq!(
        sandbox.installed_version("gamma-lib").as_deref(),
        Some("1.1.0"),
        "{why}"
    );
    std::fs::remove_file(sandbox.dirs.config.join("config.toml")).unwrap();

    sandbox.fresh_venv();
    let out = run(sandbox.dirs.cerebro(&["allow", "pypi", "gamma-lib==1.1.0"]));
    assert_eq!(out.code, Some(0), "{out}");
    let out = run(sandbox.guard(Policy::Block, &["install", "gamma-lib==1.1.0"]));
    let why = explain(&out, &sandbox.installed_list(), &registry);
    assert_eq!(
        out.code,
        Some(0),
        "the allowlist lets the pin through\n{why}"
    );
    assert_eq!(
        sandbox.installed_version("gamma-lib").as_deref(),
        Some("1.1.0")
    );
}

#[test]
fn pip_prompt_shows_the_reason_and_install_once_lets_the_pin_through() {
    let registry = fresh_gamma();
    let mut sandbox = pip_sandbox!(registry);
    let mut pty = Pty::spawn(sandbox.guard(Policy::Prompt, &["install", "gamma-lib==1.1.0"]));
    if let Err(e) = pty.wait_for("Abort the install", PROMPT_TIMEOUT) {
        panic!(
            "{e}\n--- upstream requests ---\n{}",
            registry.log().join("\n")
        );
    }
    let screen = pty.screen();
    assert!(
        screen.contains("gamma-lib 1.1.0") && screen.contains(&format!("too new  {REASON}")),
        "{screen}"
    );
    assert!(
        !screen.contains("verdict"),
        "no verdict before a scan\n{screen}"
    );
    pty.send(DOWN);
    pty.send(ENTER);
    let (code, screen) = pty.finish(PROMPT_TIMEOUT);
    let why = explain_screen(code, &screen, &sandbox.installed_list(), &registry);
    assert_eq!(code, Some(0), "{why}");
    assert_eq!(
        sandbox.installed_version("gamma-lib").as_deref(),
        Some("1.1.0"),
        "{why}"
    );
    // This once only: the next install stops again.
    sandbox.fresh_venv();
    let out = run(sandbox.guard(Policy::Block, &["install", "gamma-lib==1.1.0"]));
    assert_eq!(
        out.code,
        Some(EXIT_BLOCKED),
        "{}",
        explain(&out, &sandbox.installed_list(), &registry)
    );
}

#[test]
fn a_bad_min_release_age_is_one_clear_error() {
    let registry = fresh_gamma();
    let sandbox = pip_sandbox!(registry);
    let mut cmd = sandbox.guard(Policy::Block, &["install", "alpha-lib"]);
    cmd.env("CEREBRO_MIN_RELEASE_AGE", "2");
    let out = run(cmd);
    assert_eq!(out.code, Some(EXIT_UNJUDGED), "{out}");
    assert!(
        out.stderr.contains("CEREBRO_MIN_RELEASE_AGE") && out.stderr.contains("48h"),
        "{out}"
    );
    assert!(!sandbox.installed("alpha-lib"));
}

#[test]
fn pip_index_without_times_uses_the_public_registrys_and_spares_private_packages() {
    let private = Registry::with(py_tree(), vec![]);
    private.add_pypi([
        fixtures::wheel(
            "corp-tool",
            "1.0.0",
            &[],
            &[("corp_tool/__init__.py", "A = 1\n")],
        ),
        fixtures::wheel(
            "corp-tool",
            "2.0.0",
            &[],
            &[("corp_tool/__init__.py", "A = 2\n")],
        ),
    ]);
    private.without_times();
    // corp-tool 2.0.0 is new too, but only the private index has it: no time to go by.
    private.publish_pypi_at("corp-tool", "2.0.0", &hours_ago(1));
    let public = Registry::with(py_tree(), vec![]);
    public.publish_pypi_at("gamma-lib", "1.1.0", &hours_ago(1));

    let mut sandbox = pip_sandbox!(private);
    sandbox
        .dirs
        .set_env("CEREBRO_PUBLIC_PYPI_URL", public.base());
    let out = run(sandbox.guard_json(Policy::Block, &["install", "alpha-lib", "corp-tool"]));
    let why = explain(&out, &sandbox.installed_list(), &private);
    assert_eq!(out.code, Some(0), "{why}");
    assert_eq!(
        sandbox.installed_version("gamma-lib").as_deref(),
        Some("1.0.0"),
        "the public registry's time holds 1.1.0 back\n{why}"
    );
    assert_eq!(
        sandbox.installed_version("corp-tool").as_deref(),
        Some("2.0.0"),
        "{why}"
    );
    assert!(
        public.hits("/pypi/gamma-lib/json") >= 1,
        "{:?}",
        public.log()
    );
    let report = out.first_json().unwrap();
    assert_eq!(
        held_back(&report),
        [held("gamma-lib", "1.1.0", "held-back")],
        "{report:#}"
    );
    assert_eq!(report["untimed"], serde_json::json!(["pypi corp-tool"]));
    assert!(
        out.stderr.contains("no publish time for pypi corp-tool"),
        "{why}"
    );

    // Without a public registry to ask, the guard cannot tell new from old: it stops.
    sandbox.fresh_venv();
    sandbox
        .dirs
        .set_env("CEREBRO_PUBLIC_PYPI_URL", support::registry::dead_url());
    let out = run(sandbox.guard(Policy::Block, &["install", "alpha-lib"]));
    assert_eq!(out.code, Some(EXIT_UNJUDGED), "{out}");
    assert!(out.stderr.contains("release times"), "{out}");
}

// ---------------------------------------------------------------------------------------------
// npm.

#[test]
fn npm_holds_back_a_release_published_an_hour_ago_and_installs_the_one_before() {
    let registry = fresh_gamma();
    let sandbox = npm_sandbox!(registry);
    let out = run(sandbox.guard_json(Policy::Block, &["install", "alpha-js"]));
    let why = explain(&out, &sandbox.installed_list(), &registry);
    assert_eq!(out.code, Some(0), "{why}");
    assert_eq!(
        sandbox.installed_version("gamma-js").as_deref(),
        Some("1.0.0"),
        "{why}"
    );
    let report = out.first_json().unwrap();
    assert_eq!(
        held_back(&report),
        [held("gamma-js", "1.1.0", "held-back")],
        "{report:#}"
    );
    assert!(
        out.stderr
            .contains("Held back 1 release newer than 2 days: gamma-js 1.1.0"),
        "{why}"
    );
    // `latest` pointed at 1.1.0: `npm install gamma-js` takes the newest one old enough.
    let out = run(sandbox.guard(Policy::Block, &["install", "gamma-js"]));
    let why = explain(&out, &sandbox.installed_list(), &registry);
    assert_eq!(out.code, Some(0), "{why}");
    assert_eq!(
        sandbox.installed_version("gamma-js").as_deref(),
        Some("1.0.0"),
        "{why}"
    );
}

#[test]
fn npm_exact_pin_and_lockfile_pin_of_a_too_new_release_are_stopped_with_the_reason() {
    let registry = fresh_gamma();
    let sandbox = npm_sandbox!(registry);
    let out = run(sandbox.guard_json(Policy::Block, &["install", "gamma-js@1.1.0"]));
    let why = explain(&out, &sandbox.installed_list(), &registry);
    assert_eq!(out.code, Some(EXIT_BLOCKED), "{why}");
    assert!(!sandbox.installed("gamma-js"), "{why}");
    assert!(
        out.stderr.contains(&format!("gamma-js 1.1.0: {REASON}")),
        "{why}"
    );
    let report = out.first_json().unwrap();
    assert_eq!(
        held_back(&report),
        [held("gamma-js", "1.1.0", "blocked")],
        "{report:#}"
    );

    // A lockfile written while the cooldown was off pins 1.1.0: `npm ci` is stopped too.
    let mut cmd = sandbox.guard(Policy::Block, &["install", "gamma-js@1.1.0"]);
    cmd.env("CEREBRO_MIN_RELEASE_AGE", "0");
    let out = run(cmd);
    let why = explain(&out, &sandbox.installed_list(), &registry);
    assert_eq!(out.code, Some(0), "{why}");
    assert_eq!(
        sandbox.installed_version("gamma-js").as_deref(),
        Some("1.1.0"),
        "{why}"
    );
    std::fs::remove_dir_all(sandbox.project.join("node_modules")).unwrap();
    let out = run(sandbox.guard(Policy::Block, &["ci"]));
    let why = explain(&out, &sandbox.installed_list(), &registry);
    assert_eq!(out.code, Some(EXIT_BLOCKED), "{why}");
    assert!(!sandbox.installed("gamma-js"), "{why}");
    assert!(
        out.stderr.contains(&format!("gamma-js 1.1.0: {REASON}")),
        "{why}"
    );

    // The allowlist (that version) lets it through.
    let out = run(sandbox.dirs.cerebro(&["allow", "npm", "gamma-js@1.1.0"]));
    assert_eq!(out.code, Some(0), "{out}");
    let out = run(sandbox.guard(Policy::Block, &["ci"]));
    let why = explain(&out, &sandbox.installed_list(), &registry);
    assert_eq!(out.code, Some(0), "{why}");
    assert_eq!(
        sandbox.installed_version("gamma-js").as_deref(),
        Some("1.1.0"),
        "{why}"
    );
}

#[test]
fn npm_exemptions_by_scope_and_name() {
    let registry = fresh_gamma();
    let sandbox = npm_sandbox!(registry);
    std::fs::write(
        sandbox.dirs.config.join("config.toml"),
        "min_release_age_exempt = [\"@acme/*\", \"gamma-js\"]\n",
    )
    .unwrap();
    let out = run(sandbox.guard(Policy::Block, &["install", "gamma-js@1.1.0"]));
    let why = explain(&out, &sandbox.installed_list(), &registry);
    assert_eq!(out.code, Some(0), "{why}");
    assert_eq!(
        sandbox.installed_version("gamma-js").as_deref(),
        Some("1.1.0"),
        "{why}"
    );
}

#[test]
fn npm_registry_without_times_uses_the_public_registrys_and_spares_private_packages() {
    let private = Registry::with(vec![], npm_tree());
    private.add_npm([
        fixtures::npm(
            "corp-js",
            "1.0.0",
            &[],
            &[],
            &[("index.js", "exports.a = 1;\n")],
        ),
        fixtures::npm(
            "corp-js",
            "2.0.0",
            &[],
            &[],
            &[("index.js", "exports.a = 2;\n")],
        ),
    ]);
    private.without_times();
    let public = Registry::with(vec![], npm_tree());
    public.publish_npm_at("gamma-js", "1.1.0", &hours_ago(1));

    let mut sandbox = npm_sandbox!(private);
    sandbox
        .dirs
        .set_env("CEREBRO_PUBLIC_NPM_URL", public.npm_url());
    let out = run(sandbox.guard_json(Policy::Block, &["install", "alpha-js", "corp-js"]));
    let why = explain(&out, &sandbox.installed_list(), &private);
    assert_eq!(out.code, Some(0), "{why}");
    assert_eq!(
        sandbox.installed_version("gamma-js").as_deref(),
        Some("1.0.0"),
        "the public registry's time holds 1.1.0 back\n{why}"
    );
    assert_eq!(
        sandbox.installed_version("corp-js").as_deref(),
        Some("2.0.0"),
        "{why}"
    );
    assert!(public.hits("/gamma-js") >= 1, "{:?}", public.log());
    let report = out.first_json().unwrap();
    assert_eq!(
        held_back(&report),
        [held("gamma-js", "1.1.0", "held-back")],
        "{report:#}"
    );
    assert_eq!(report["untimed"], serde_json::json!(["npm corp-js"]));
}
