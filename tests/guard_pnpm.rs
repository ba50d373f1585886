//! End-to-end tests of `cerebro pnpm`: the real pnpm, in a project of its own, run through the
//! guard against the npm registry on loopback that the npm tests use (`tests/support`).
//! Nothing reaches the network.
//!
//! The guard's contract for pnpm: `add`, `install` (also `--frozen-lockfile`), `update` and
//! `dlx` are judged before pnpm installs or runs anything; exit 77 when blocked, 78 when
//! something could not be judged; `package.json` and `pnpm-lock.yaml` come out byte for byte
//! as bare pnpm writes them against the same registry.

mod support;

use support::fixtures::{self, NPM_EVIL, NPM_EVIL_CLI};
use support::registry::Registry;
use support::{explain, run, PnpmSandbox, Policy, EXIT_BLOCKED, EXIT_UNJUDGED};

/// A sandbox for `$registry`, or return from the test when pnpm is missing (outside CI).
macro_rules! sandbox {
    ($registry:expr) => {
        match PnpmSandbox::new(&$registry.npm_url()) {
            Some(sandbox) => sandbox,
            None => return,
        }
    };
}

const CLEAN: [&str; 4] = ["alpha-js", "beta-js", "gamma-js", "@acme/util"];

/// Every fixture: the clean tree, `app-js` → `evil-js`, the clean and malicious bins, and
/// `hook-js` (clean, with a marker-writing postinstall).
fn registry() -> Registry {
    let mut all = fixtures::npm_clean_tree();
    all.extend(fixtures::npm_app_with_evil());
    all.push(fixtures::npm_hook_clean());
    all.push(fixtures::npm_cli_clean());
    all.push(fixtures::npm_evil_cli());
    Registry::with(vec![], all)
}

type Manifests = (Option<Vec<u8>>, Option<Vec<u8>>);

fn manifests(sandbox: &PnpmSandbox) -> Manifests {
    (sandbox.read("package.json"), sandbox.read("pnpm-lock.yaml"))
}

fn explain_pnpm(out: &support::Outcome, sandbox: &PnpmSandbox, registry: &Registry) -> String {
    explain(out, &sandbox.installed_list(), registry)
}

/// Nothing of the flagged tree is installed, and no install script or bin of it ran.
fn assert_evil_absent(sandbox: &PnpmSandbox, why: &str) {
    for name in ["app-js", NPM_EVIL.0, NPM_EVIL_CLI.0] {
        assert!(
            !sandbox.installed(name),
            "{name} must not be installed\n{why}"
        );
    }
    assert!(
        !sandbox.dirs().marker_written(),
        "the malicious package's code ran\n{why}"
    );
}

#[test]
fn control_bare_pnpm_runs_the_allowed_install_scripts() {
    let registry = registry();
    let sandbox = sandbox!(registry);
    let out = run(sandbox.bare(&["add", "hook-js"]));
    let why = explain_pnpm(&out, &sandbox, &registry);
    assert_eq!(
        out.code,
        Some(0),
        "bare pnpm failed: the harness is broken\n{why}"
    );
    // Without the guard pnpm runs the install scripts the project allows, so the tests
    // below, where the marker must stay absent, test something.
    assert!(
        sandbox.dirs().marker_written(),
        "bare pnpm did not run hook-js's postinstall\n{why}"
    );
}

#[test]
fn clean_add_installs_and_writes_what_bare_pnpm_writes() {
    let registry = registry();
    let guarded = sandbox!(registry);
    let bare = sandbox!(registry);
    let out = run(guarded.guard(Policy::Block, true, &["add", "alpha-js"]));
    let why_guarded = explain_pnpm(&out, &guarded, &registry);
    assert_eq!(
        out.code,
        Some(0),
        "a clean tree must install\n{why_guarded}"
    );
    for name in CLEAN {
        assert!(guarded.installed(name), "{name}\n{why_guarded}");
    }
    let report = out.first_json().unwrap();
    assert_eq!(report["manager"], "pnpm", "{report:#}");
    assert_eq!(report["decision"], "proceed", "{report:#}");
    assert_eq!(
        report["packages"].as_array().map(Vec::len),
        Some(CLEAN.len()),
        "{report:#}"
    );

    let out = run(bare.bare(&["add", "alpha-js"]));
    assert_eq!(
        out.code,
        Some(0),
        "{}",
        explain_pnpm(&out, &bare, &registry)
    );
    let (g, b) = (manifests(&guarded), manifests(&bare));
    assert!(g.1.is_some(), "pnpm wrote no pnpm-lock.yaml\n{why_guarded}");
    assert!(
        g.0 == b.0,
        "package.json differs from bare pnpm's:\n{}\n--- bare ---\n{}",
        String::from_utf8_lossy(g.0.as_deref().unwrap_or_default()),
        String::from_utf8_lossy(b.0.as_deref().unwrap_or_default())
    );
    assert!(
        g.1 == b.1,
        "pnpm-lock.yaml differs from bare pnpm's:\n{}\n--- bare ---\n{}",
        String::from_utf8_lossy(g.1.as_deref().unwrap_or_default()),
        String::from_utf8_lossy(b.1.as_deref().unwrap_or_default())
    );
    let lock = String::from_utf8(g.1.unwrap()).unwrap();
    assert!(!lock.contains("127.0.0.1"), "{lock}");

    // The lockfile installs again, frozen, judged from the lockfile alone.
    std::fs::remove_dir_all(guarded.npm.project.join("node_modules")).unwrap();
    let before = manifests(&guarded);
    let out = run(guarded.guard(Policy::Block, false, &["install", "--frozen-lockfile"]));
    let why_frozen = explain_pnpm(&out, &guarded, &registry);
    assert_eq!(out.code, Some(0), "{why_frozen}");
    for name in CLEAN {
        assert!(guarded.installed(name), "{name}\n{why_frozen}");
    }
    assert!(
        manifests(&guarded) == before,
        "the frozen install changed the manifests"
    );
}

#[test]
fn malicious_add_is_blocked_before_its_install_script() {
    let registry = registry();
    let sandbox = sandbox!(registry);
    let before = manifests(&sandbox);
    let out = run(sandbox.guard(Policy::Block, true, &["add", "app-js"]));
    let why = explain_pnpm(&out, &sandbox, &registry);
    assert_eq!(out.code, Some(EXIT_BLOCKED), "{why}");
    assert_evil_absent(&sandbox, &why);
    assert!(manifests(&sandbox) == before, "the project changed\n{why}");
    let report = out.first_json().unwrap();
    assert_eq!(report["decision"], "blocked", "{report:#}");
    assert!(
        out.stderr.contains(NPM_EVIL.0),
        "the blocked package is named\n{why}"
    );
}

#[test]
fn malicious_dependency_in_the_manifest_is_blocked_on_install() {
    let registry = registry();
    let sandbox = sandbox!(registry);
    let manifest = support::PNPM_PROJECT_JSON.replacen(
        "\"private\": true,",
        "\"private\": true,\n  \"dependencies\": { \"app-js\": \"^1.0.0\" },",
        1,
    );
    std::fs::write(sandbox.npm.project.join("package.json"), &manifest).unwrap();
    for args in [
        &["install"][..],
        &["i"][..],
        &["update"][..],
        &["up", "app-js"][..],
    ] {
        let out = run(sandbox.guard(Policy::Block, false, args));
        let why = explain_pnpm(&out, &sandbox, &registry);
        assert_eq!(out.code, Some(EXIT_BLOCKED), "{args:?}\n{why}");
        assert_evil_absent(&sandbox, &why);
        assert!(sandbox.read("pnpm-lock.yaml").is_none(), "{why}");
    }
}

#[test]
fn malicious_package_pinned_in_the_lockfile_is_blocked_on_a_frozen_install() {
    let registry = registry();
    let sandbox = sandbox!(registry);
    // A lockfile that pins the malicious package, written without installing anything.
    let out = run(sandbox.bare(&["add", "app-js", "--lockfile-only", "--ignore-scripts"]));
    assert_eq!(
        out.code,
        Some(0),
        "{}",
        explain_pnpm(&out, &sandbox, &registry)
    );
    assert_evil_absent(&sandbox, "the harness installed it");
    let before = manifests(&sandbox);
    let out = run(sandbox.guard(Policy::Block, false, &["install", "--frozen-lockfile"]));
    let why = explain_pnpm(&out, &sandbox, &registry);
    assert_eq!(out.code, Some(EXIT_BLOCKED), "{why}");
    assert_evil_absent(&sandbox, &why);
    assert!(manifests(&sandbox) == before, "{why}");

    // A lockfile whose integrity is not the registry's: pnpm would install other bytes than
    // the registry serves, which the guard cannot judge.
    let lock = String::from_utf8(before.1.clone().unwrap()).unwrap();
    let evil = fixtures::npm_evil();
    let tampered = lock.replace(&evil.integrity(), "sha512-AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA==");
    assert_ne!(tampered, lock, "the lockfile pins evil-js's integrity");
    std::fs::write(sandbox.npm.project.join("pnpm-lock.yaml"), &tampered).unwrap();
    let out = run(sandbox.guard(Policy::Block, false, &["install", "--frozen-lockfile"]));
    let why = explain_pnpm(&out, &sandbox, &registry);
    assert_eq!(out.code, Some(EXIT_UNJUDGED), "{why}");
    assert_evil_absent(&sandbox, &why);
}

#[test]
fn dlx_judges_the_package_before_its_bin_runs() {
    let registry = registry();
    let sandbox = sandbox!(registry);
    let out = run(sandbox.guard(Policy::Block, false, &["dlx", NPM_EVIL_CLI.0, "go"]));
    let why_evil = explain_pnpm(&out, &sandbox, &registry);
    assert_eq!(out.code, Some(EXIT_BLOCKED), "{why_evil}");
    assert!(
        !sandbox.dirs().marker_written(),
        "the malicious bin ran\n{why_evil}"
    );

    let out = run(sandbox.guard(Policy::Block, false, &["dlx", "cli-js", "hello", "there"]));
    let why_clean = explain_pnpm(&out, &sandbox, &registry);
    assert_eq!(out.code, Some(0), "{why_clean}");
    assert!(
        out.stdout.contains("cli-js ran: hello there"),
        "the clean bin ran with its arguments\n{why_clean}"
    );
    assert!(
        sandbox.read("pnpm-lock.yaml").is_none(),
        "dlx left the project alone"
    );

    // Without the guard the malicious bin runs at once: the check above tests something.
    let out = run(sandbox.bare(&["dlx", NPM_EVIL_CLI.0, "go"]));
    assert!(
        sandbox.dirs().marker_written(),
        "bare pnpm dlx did not run the bin: the harness is broken\n{}",
        explain_pnpm(&out, &sandbox, &registry)
    );
}

#[test]
fn a_package_already_in_the_store_is_judged_all_the_same() {
    let registry = registry();
    let sandbox = sandbox!(registry);
    // Bare pnpm puts the malicious tree into its store (scripts off), then drops it from the
    // project: the store still holds it, by integrity.
    for args in [
        &["add", "app-js", "--ignore-scripts"][..],
        &["remove", "app-js"][..],
    ] {
        let out = run(sandbox.bare(args));
        assert_eq!(
            out.code,
            Some(0),
            "{}",
            explain_pnpm(&out, &sandbox, &registry)
        );
    }
    assert!(!sandbox.dirs().marker_written());
    std::fs::remove_dir_all(sandbox.npm.project.join("node_modules")).unwrap();
    let out = run(sandbox.guard(Policy::Block, false, &["add", "app-js"]));
    let why = explain_pnpm(&out, &sandbox, &registry);
    assert_eq!(out.code, Some(EXIT_BLOCKED), "{why}");
    assert!(!sandbox.installed("app-js"), "{why}");
    assert!(!sandbox.dirs().marker_written(), "{why}");
}

#[test]
fn other_commands_run_the_real_pnpm() {
    let registry = registry();
    let sandbox = sandbox!(registry);
    let out = run(sandbox.guard(Policy::Block, false, &["run", "x"]));
    assert_eq!(out.code, Some(0), "{out}");
    assert!(out.stdout.contains("script x ran"), "{out}");
    assert_eq!(registry.total_hits(), 0, "nothing was fetched");
}

#[test]
fn git_specs_and_workspaces_are_refused() {
    let registry = registry();
    let sandbox = sandbox!(registry);
    let out = run(sandbox.guard(Policy::Block, false, &["add", "github:someone/thing"]));
    assert_eq!(out.code, Some(EXIT_UNJUDGED), "{out}");
    assert_eq!(out.stderr.trim().lines().count(), 1, "{out}");
    std::fs::write(
        sandbox.npm.project.join("pnpm-workspace.yaml"),
        "packages:\n  - 'pkgs/*'\n",
    )
    .unwrap();
    let out = run(sandbox.guard(Policy::Block, false, &["add", "alpha-js"]));
    assert_eq!(out.code, Some(EXIT_UNJUDGED), "{out}");
    assert_eq!(registry.total_hits(), 0, "nothing was fetched");
}

#[test]
fn ci_install_with_a_lockfile_is_judged_and_installs() {
    let registry = registry();
    let mut sandbox = sandbox!(registry);
    let out = run(sandbox.bare(&["add", "alpha-js", "--lockfile-only"]));
    assert_eq!(
        out.code,
        Some(0),
        "{}",
        explain_pnpm(&out, &sandbox, &registry)
    );
    let before = manifests(&sandbox);
    // pnpm installs frozen by default under CI.
    sandbox.npm.dirs.set_env("CI", "true");
    let out = run(sandbox.guard(Policy::Block, false, &["install"]));
    let why = explain_pnpm(&out, &sandbox, &registry);
    assert_eq!(out.code, Some(0), "{why}");
    for name in CLEAN {
        assert!(sandbox.installed(name), "{name}\n{why}");
    }
    assert!(manifests(&sandbox) == before, "{why}");
}

#[test]
fn a_scope_on_another_registry_with_a_token_keeps_the_lockfile_as_bare_pnpm_writes_it() {
    let registry = registry();
    let scoped = Registry::with(vec![], fixtures::npm_clean_tree());
    let rc = |sandbox: &PnpmSandbox| {
        let text = format!(
            "registry={}\n@acme:registry={}\n//{}/:_authToken=s3cret\n",
            registry.npm_url(),
            scoped.npm_url(),
            scoped.host_port()
        );
        std::fs::write(sandbox.npm.project.join(".npmrc"), text).unwrap();
    };
    let guarded = sandbox!(registry);
    let bare = sandbox!(registry);
    rc(&guarded);
    rc(&bare);
    let out = run(guarded.guard(Policy::Block, false, &["add", "alpha-js"]));
    let why = explain_pnpm(&out, &guarded, &scoped);
    assert_eq!(out.code, Some(0), "{why}");
    assert!(
        scoped.hits("/@acme%2futil") + scoped.hits("/@acme%2Futil") + scoped.hits("/@acme/util")
            >= 1,
        "{why}"
    );
    let out = run(bare.bare(&["add", "alpha-js"]));
    assert_eq!(out.code, Some(0), "{}", explain_pnpm(&out, &bare, &scoped));
    assert!(
        manifests(&guarded) == manifests(&bare),
        "pnpm-lock.yaml differs from bare pnpm's:\n{}\n--- bare ---\n{}",
        String::from_utf8_lossy(&guarded.read("pnpm-lock.yaml").unwrap_or_default()),
        String::from_utf8_lossy(&bare.read("pnpm-lock.yaml").unwrap_or_default())
    );
}

#[test]
fn create_judges_the_starter_kit_before_it_runs() {
    let registry = registry();
    // `pnpm create evil` runs `create-evil`: the malicious bin under a starter kit's name.
    let bin = format!("#!/usr/bin/env node\n{}", fixtures::EVIL_INSTALL_JS);
    registry.add_npm([fixtures::malicious(fixtures::npm_with_bin(
        "create-evil",
        "1.0.0",
        &[],
        &[],
        &[("index.js", "module.exports = {};\n"), ("cli.js", &bin)],
        &[("create-evil", "cli.js")],
    ))]);
    let sandbox = sandbox!(registry);
    let out = run(sandbox.guard(Policy::Block, false, &["create", "evil", "my-app"]));
    let why = explain_pnpm(&out, &sandbox, &registry);
    assert_eq!(out.code, Some(EXIT_BLOCKED), "{why}");
    assert!(
        !sandbox.dirs().marker_written(),
        "the starter kit ran\n{why}"
    );
    let out = run(sandbox.bare(&["create", "evil", "my-app"]));
    assert!(
        sandbox.dirs().marker_written(),
        "bare pnpm create did not run the bin: the harness is broken\n{}",
        explain_pnpm(&out, &sandbox, &registry)
    );
}
