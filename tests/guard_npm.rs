//! End-to-end tests of `cerebro npm`: the real npm, in a project of its own, run through the
//! guard against an npm registry on loopback that serves synthetic packages
//! (`tests/support`). Nothing reaches the network.
//!
//! The tests named `control_*` check the harness itself with bare npm; the others hold the
//! guard to its contract: exit 77 when blocked, 78 when a package could not be judged,
//! otherwise npm's own code; messages on stderr; `--json` puts one report on stdout first; a
//! blocked install leaves `package.json` and `package-lock.json` as they were.

mod support;

use support::fixtures::{self, Intent, NPM_EVIL, NPM_EVIL_CLI};
use support::registry::{dead_url, Fault, Registry};
use support::{
    explain, explain_screen, guard_warned, report_entry, run, shows_score, NpmSandbox, Policy, Pty,
    DOWN, ENTER, EXIT_BLOCKED, EXIT_UNJUDGED, FLAGGED_SCORE, PROMPT_TIMEOUT,
};

/// A sandbox for `$registry`, or return from the test when npm is missing (outside CI).
macro_rules! sandbox {
    ($registry:expr) => {
        match NpmSandbox::new(&$registry.npm_url()) {
            Some(sandbox) => sandbox,
            None => return,
        }
    };
}

const CLEAN: [&str; 4] = ["alpha-js", "beta-js", "gamma-js", "@acme/util"];

fn clean_tree() -> Registry {
    Registry::with(vec![], fixtures::npm_clean_tree())
}

/// Both trees: the clean one gives the project a lockfile to start from.
fn app_with_evil() -> Registry {
    let mut all = fixtures::npm_clean_tree();
    all.extend(fixtures::npm_app_with_evil());
    Registry::with(vec![], all)
}

fn clean_pkg(name: &str) -> fixtures::NpmPkg {
    fixtures::npm_clean_tree()
        .into_iter()
        .find(|p| p.name == name)
        .unwrap()
}

/// The project's `package.json` and `package-lock.json`, byte for byte.
type Manifests = (Option<Vec<u8>>, Option<Vec<u8>>);

fn manifests(sandbox: &NpmSandbox) -> Manifests {
    (
        sandbox.read("package.json"),
        sandbox.read("package-lock.json"),
    )
}

/// Gives the project a dependency and a lockfile with bare npm, as a user's project would
/// have, and returns them.
fn project_with_lockfile(sandbox: &NpmSandbox, registry: &Registry) -> Manifests {
    let out = run(sandbox.bare(&["install", "gamma-js"]));
    assert_eq!(
        out.code,
        Some(0),
        "bare npm could not set up the project: the harness is broken\n{}",
        explain(&out, &sandbox.installed_list(), registry)
    );
    let before = manifests(sandbox);
    assert!(before.1.is_some(), "npm wrote no package-lock.json");
    before
}

fn assert_untouched(sandbox: &NpmSandbox, before: &Manifests, why: &str) {
    let after = manifests(sandbox);
    assert!(
        after.0 == before.0,
        "package.json changed:\n{}\n--- was ---\n{}\n{why}",
        String::from_utf8_lossy(after.0.as_deref().unwrap_or_default()),
        String::from_utf8_lossy(before.0.as_deref().unwrap_or_default()),
    );
    assert!(after.1 == before.1, "package-lock.json changed\n{why}");
}

/// Nothing of the flagged tree is in `node_modules`, and its install script never ran.
fn assert_evil_absent(sandbox: &NpmSandbox, why: &str) {
    assert!(
        !sandbox.installed("app-js") && !sandbox.installed(NPM_EVIL.0),
        "app-js / {} must not be installed\n{why}",
        NPM_EVIL.0
    );
    assert!(
        !sandbox.dirs.marker_written(),
        "{}'s postinstall ran\n{why}",
        NPM_EVIL.0
    );
}

// ---------------------------------------------------------------------------------------------
// The harness.

#[test]
fn fixtures_are_judged_as_intended() {
    let mut all = fixtures::npm_clean_tree();
    all.extend(fixtures::npm_app_with_evil());
    all.push(fixtures::npm_hook_clean());
    all.push(fixtures::npm_cli_clean());
    all.push(fixtures::npm_evil_cli());
    let list: Vec<(String, &[u8], Intent)> = all
        .iter()
        .map(|p| {
            (
                p.artifact.file.clone(),
                p.artifact.bytes.as_slice(),
                p.intent,
            )
        })
        .collect();
    if let Err(text) = support::judge(&list, 0.95) {
        panic!("the npm fixtures are no longer judged as the tests assume:\n{text}");
    }
}

#[test]
fn control_bare_npm_installs_the_clean_tree_and_runs_install_scripts() {
    let registry = clean_tree();
    registry.add_npm([fixtures::npm_hook_clean()]);
    let sandbox = sandbox!(registry);
    let out = run(sandbox.bare(&["install", "alpha-js"]));
    let why = explain(&out, &sandbox.installed_list(), &registry);
    assert_eq!(
        out.code,
        Some(0),
        "bare npm failed: the harness is broken\n{why}"
    );
    for name in CLEAN {
        assert_eq!(
            sandbox.installed_version(name).as_deref(),
            Some("1.0.0"),
            "{name}\n{why}"
        );
    }
    assert!(
        registry.hits("/@acme%2futil")
            + registry.hits("/@acme%2Futil")
            + registry.hits("/@acme/util")
            >= 1,
        "the scoped packument was asked for\n{why}"
    );
    // Without the guard npm runs install scripts here, so the tests below, where the marker
    // must stay absent, test something.
    let out = run(sandbox.bare(&["install", "hook-js"]));
    let why = explain(&out, &sandbox.installed_list(), &registry);
    assert_eq!(out.code, Some(0), "{why}");
    assert!(
        sandbox.dirs.marker_written(),
        "bare npm did not run hook-js's postinstall\n{why}"
    );
    // And the flagged package's install script would get as far as the marker: it is valid
    // JavaScript (checked by node without running it).
    let script = sandbox.dirs.root().join("evil-install.js");
    std::fs::write(&script, fixtures::EVIL_INSTALL_JS).unwrap();
    let mut check = sandbox.dirs.command("node");
    check.arg("--check").arg(&script);
    let out = run(check);
    assert_eq!(out.code, Some(0), "{out}");
}

// ---------------------------------------------------------------------------------------------
// Installs that go through.

#[test]
fn clean_tree_with_transitive_dependencies_installs_and_is_reported() {
    let registry = clean_tree();
    let sandbox = sandbox!(registry);
    let out = run(sandbox.guard_json(Policy::Block, &["install", "alpha-js"]));
    let why = explain(&out, &sandbox.installed_list(), &registry);
    assert_eq!(
        out.code,
        Some(0),
        "a clean tree must install with exit 0\n{why}"
    );
    for name in CLEAN {
        assert_eq!(
            sandbox.installed_version(name).as_deref(),
            Some("1.0.0"),
            "{name} 1.0.0 should be installed\n{why}"
        );
    }
    let manifest = String::from_utf8(sandbox.read("package.json").unwrap()).unwrap();
    assert!(
        manifest.contains("\"alpha-js\""),
        "npm saved the dependency:\n{manifest}"
    );

    let report = out
        .first_json()
        .unwrap_or_else(|e| panic!("--json must print a report first: {e}\n{why}"));
    assert_eq!(report["manager"], "npm", "{report:#}");
    assert_eq!(report["decision"], "proceed", "{report:#}");
    assert_eq!(report["flagged"], 0, "{report:#}");
    for pkg in fixtures::npm_clean_tree() {
        let entry = report_entry(&report, &pkg.name)
            .unwrap_or_else(|| panic!("{} missing from the report: {report:#}", pkg.name));
        assert_eq!(entry["ecosystem"], "npm", "{entry:#}");
        assert_eq!(entry["version"], "1.0.0", "{entry:#}");
        assert_eq!(entry["sha256"], pkg.artifact.sha256_hex(), "{entry:#}");
        assert!(
            entry["file"]
                .as_str()
                .is_some_and(|f| f.ends_with(&pkg.artifact.file)),
            "file names the tarball {}: {entry:#}",
            pkg.artifact.file
        );
        assert_eq!(entry["verdict"], "benign", "{entry:#}");
        assert!(entry["action"].is_string(), "{entry:#}");
    }
}

#[test]
fn warn_mode_installs_a_flagged_dependency_with_a_warning() {
    let registry = app_with_evil();
    let sandbox = sandbox!(registry);
    let out = run(sandbox.guard(Policy::Warn, &["install", "app-js"]));
    let why = explain(&out, &sandbox.installed_list(), &registry);
    assert_eq!(out.code, Some(0), "warn lets the install through\n{why}");
    assert!(
        sandbox.installed("app-js") && sandbox.installed(NPM_EVIL.0),
        "{why}"
    );
    assert!(
        guard_warned(&out.stderr, NPM_EVIL.0),
        "stderr must warn about {}\n{why}",
        NPM_EVIL.0
    );
    assert!(
        sandbox.dirs.marker_written(),
        "a let-through install runs as npm would, scripts included\n{why}"
    );
}

// ---------------------------------------------------------------------------------------------
// Blocking.

#[test]
fn malicious_transitive_dependency_is_blocked_and_the_project_is_untouched() {
    let registry = app_with_evil();
    let sandbox = sandbox!(registry);
    let before = project_with_lockfile(&sandbox, &registry);
    let out = run(sandbox.guard_json(Policy::Block, &["install", "app-js"]));
    let why = explain(&out, &sandbox.installed_list(), &registry);
    assert_eq!(
        out.code,
        Some(EXIT_BLOCKED),
        "blocked installs exit 77\n{why}"
    );
    assert_evil_absent(&sandbox, &why);
    assert_untouched(&sandbox, &before, &why);
    assert!(sandbox.installed("gamma-js"), "what was there stays\n{why}");
    assert!(
        out.stderr.contains(NPM_EVIL.0) && out.stderr.contains(NPM_EVIL.1),
        "stderr must name {} {}\n{why}",
        NPM_EVIL.0,
        NPM_EVIL.1
    );
    assert!(
        registry.file_hits(&fixtures::npm_evil().artifact.file) >= 1,
        "the guard must have fetched the tarball it judged\n{why}"
    );

    let report = out
        .first_json()
        .unwrap_or_else(|e| panic!("--json must print a report first: {e}\n{why}"));
    assert_eq!(report["decision"], "blocked", "{report:#}");
    assert!(report["flagged"].as_u64().unwrap_or(0) >= 1, "{report:#}");
    let evil = report_entry(&report, NPM_EVIL.0)
        .unwrap_or_else(|| panic!("{} missing from the report: {report:#}", NPM_EVIL.0));
    assert_eq!(evil["verdict"], "malicious", "{evil:#}");
    assert_eq!(evil["version"], NPM_EVIL.1, "{evil:#}");
    assert!(
        evil["score"].as_f64().unwrap_or(0.0) >= FLAGGED_SCORE,
        "{evil:#}"
    );
}

// ---------------------------------------------------------------------------------------------
// The prompt.

fn prompt(sandbox: &NpmSandbox, registry: &Registry) -> Pty {
    let mut pty = Pty::spawn(sandbox.guard(Policy::Prompt, &["install", "app-js"]));
    if let Err(e) = pty.wait_for("Abort the install", PROMPT_TIMEOUT) {
        panic!(
            "{e}\n--- upstream requests ---\n{}",
            registry.log().join("\n")
        );
    }
    pty
}

#[test]
fn prompt_shows_name_and_score_and_aborts_by_default() {
    let registry = app_with_evil();
    let sandbox = sandbox!(registry);
    let before = manifests(&sandbox);
    let mut pty = prompt(&sandbox, &registry);
    let screen = pty.screen();
    assert!(
        screen.contains(NPM_EVIL.0),
        "the prompt must name the package:\n{screen}"
    );
    assert!(
        shows_score(&screen, FLAGGED_SCORE),
        "the prompt must show the score:\n{screen}"
    );
    assert!(
        !sandbox.dirs.marker_written(),
        "the postinstall ran before the user answered"
    );
    pty.send(ENTER);
    let (code, screen) = pty.finish(PROMPT_TIMEOUT);
    let why = explain_screen(code, &screen, &sandbox.installed_list(), &registry);
    assert_eq!(
        code,
        Some(EXIT_BLOCKED),
        "Enter picks abort: exit 77\n{why}"
    );
    assert_evil_absent(&sandbox, &why);
    assert_untouched(&sandbox, &before, &why);
}

#[test]
fn prompt_always_allow_installs_and_persists_in_the_allowlist() {
    let registry = app_with_evil();
    let mut sandbox = sandbox!(registry);
    let mut pty = prompt(&sandbox, &registry);
    pty.send(DOWN);
    pty.send(DOWN);
    pty.send(ENTER);
    let (code, screen) = pty.finish(PROMPT_TIMEOUT);
    let why = explain_screen(code, &screen, &sandbox.installed_list(), &registry);
    assert_eq!(code, Some(0), "{why}");
    assert!(
        sandbox.installed("app-js") && sandbox.installed(NPM_EVIL.0),
        "{why}"
    );

    let list = run(sandbox.dirs.cerebro(&["allowlist"]));
    assert_eq!(list.code, Some(0), "{list}");
    assert!(
        list.stdout.contains(NPM_EVIL.0),
        "`cerebro allowlist` must list it:\n{list}"
    );

    // Back to an empty project and an empty verdict cache: only the allowlist can let it in.
    std::fs::remove_dir_all(sandbox.project.join("node_modules")).unwrap();
    let _ = std::fs::remove_file(sandbox.project.join("package-lock.json"));
    std::fs::write(sandbox.project.join("package.json"), support::PROJECT_JSON).unwrap();
    sandbox.dirs.fresh_cache();
    let out = run(sandbox.guard(Policy::Block, &["install", "app-js"]));
    let why = explain(&out, &sandbox.installed_list(), &registry);
    assert_eq!(
        out.code,
        Some(0),
        "the allowlisted package installs in block mode\n{why}"
    );
    assert!(sandbox.installed(NPM_EVIL.0), "{why}");
}

#[test]
fn prompt_without_a_terminal_blocks() {
    let registry = app_with_evil();
    let sandbox = sandbox!(registry);
    let before = manifests(&sandbox);
    let out = run(sandbox.guard(Policy::Prompt, &["install", "app-js"]));
    let why = explain(&out, &sandbox.installed_list(), &registry);
    assert_eq!(
        out.code,
        Some(EXIT_BLOCKED),
        "no TTY: prompt acts as block\n{why}"
    );
    assert_evil_absent(&sandbox, &why);
    assert_untouched(&sandbox, &before, &why);
    assert!(
        out.stderr.contains("no terminal to ask on"),
        "a prompt that could not ask says why it blocked\n{why}"
    );
}

#[test]
fn prompt_in_ci_blocks_without_asking_even_on_a_terminal() {
    let registry = app_with_evil();
    let sandbox = sandbox!(registry);
    let why = support::assert_ci_prompt_blocks(
        sandbox.guard(Policy::Prompt, &["install", "app-js"]),
        || sandbox.installed_list(),
        &registry,
    );
    assert_evil_absent(&sandbox, &why);
}

// ---------------------------------------------------------------------------------------------
// Other commands.

#[test]
fn non_install_commands_pass_through_unchanged() {
    let registry = clean_tree();
    let sandbox = sandbox!(registry);
    for args in [
        &["--version"][..],
        &["ls"],
        &["run", "x"],
        &["run", "no-such-script"],
    ] {
        let bare = run(sandbox.bare(args));
        let guarded = run(sandbox.guard(Policy::Block, args));
        assert_eq!(
            (guarded.code, &guarded.stdout),
            (bare.code, &bare.stdout),
            "`npm {}` through the guard must behave as bare npm\n--- guarded ---\n{guarded}\n--- bare ---\n{bare}",
            args.join(" ")
        );
    }
    assert_eq!(
        registry.total_hits(),
        0,
        "pass-through commands need no registry: {:?}",
        registry.log()
    );
}

// ---------------------------------------------------------------------------------------------
// Failures to judge.

#[test]
fn unreachable_upstream_is_one_clear_error_and_installs_nothing() {
    let registry = clean_tree();
    let mut sandbox = sandbox!(registry);
    let dead = dead_url();
    sandbox.set_registry(&format!("{dead}/"));
    let before = manifests(&sandbox);
    let out = run(sandbox.guard(Policy::Block, &["install", "alpha-js"]));
    let why = explain(&out, &sandbox.installed_list(), &registry);
    assert!(
        !out.timed_out && out.code.is_some_and(|c| c != 0),
        "an unreachable registry must fail the install\n{why}"
    );
    assert!(sandbox.installed_list().is_empty(), "{why}");
    assert_untouched(&sandbox, &before, &why);
    let host = dead.trim_start_matches("http://");
    let lines: Vec<&str> = out
        .stderr
        .lines()
        .filter(|l| !l.trim().is_empty())
        .collect();
    assert!(
        lines.iter().any(|l| l.contains(host)),
        "stderr must name the upstream {host}\n{why}"
    );
    assert!(
        lines.len() <= 6 && !out.stderr.contains("panicked"),
        "one readable error, not pages of npm's log or a backtrace\n{why}"
    );
}

#[test]
fn integrity_mismatch_is_refused_and_installs_nothing() {
    let registry = clean_tree();
    let sandbox = sandbox!(registry);
    let gamma = clean_pkg("gamma-js");
    registry.fault(
        &gamma.artifact.file,
        Fault::Substitute(fixtures::npm_tampered(&gamma)),
    );
    let before = manifests(&sandbox);
    let out = run(sandbox.guard(Policy::Block, &["install", "alpha-js"]));
    let why = explain(&out, &sandbox.installed_list(), &registry);
    assert_eq!(
        out.code,
        Some(EXIT_UNJUDGED),
        "an integrity mismatch exits 78\n{why}"
    );
    assert!(sandbox.installed_list().is_empty(), "{why}");
    assert_untouched(&sandbox, &before, &why);
    let err = out.stderr_lower();
    assert!(
        (err.contains("integrity") || err.contains("hash"))
            && (out.stderr.contains(&gamma.artifact.file) || out.stderr.contains("gamma-js")),
        "stderr must say the integrity check failed, for gamma-js\n{why}"
    );
}

#[test]
fn truncated_download_is_refused_and_installs_nothing() {
    let registry = clean_tree();
    let sandbox = sandbox!(registry);
    let gamma = clean_pkg("gamma-js");
    registry.fault(&gamma.artifact.file, Fault::Truncate);
    let before = manifests(&sandbox);
    let out = run(sandbox.guard(Policy::Block, &["install", "alpha-js"]));
    let why = explain(&out, &sandbox.installed_list(), &registry);
    assert_eq!(
        out.code,
        Some(EXIT_UNJUDGED),
        "a truncated download exits 78\n{why}"
    );
    assert!(sandbox.installed_list().is_empty(), "{why}");
    assert_untouched(&sandbox, &before, &why);
    assert!(
        out.stderr.contains(&gamma.artifact.file) || out.stderr.contains("gamma-js"),
        "stderr must name what could not be downloaded\n{why}"
    );
}

// ---------------------------------------------------------------------------------------------
// Lockfiles.

/// The files npm writes about the tree it installed: the project's lockfile and npm's hidden
/// lockfile inside `node_modules`.
const LOCKFILES: [&str; 2] = ["package-lock.json", "node_modules/.package-lock.json"];

/// A guarded install must leave the lockfiles exactly as bare npm writes them against the
/// same registry: `resolved` URLs of the user's registry, never the guard's loopback port,
/// or `npm ci` on another machine fails.
#[test]
fn guarded_install_writes_the_lockfiles_bare_npm_writes() {
    let registry = clean_tree();
    let bare = sandbox!(registry);
    let guarded = sandbox!(registry);
    for step in [&["install", "gamma-js"][..], &["install", "alpha-js"][..]] {
        let out = run(bare.bare(step));
        assert_eq!(
            out.code,
            Some(0),
            "bare npm: the harness is broken\n{}",
            explain(&out, &bare.installed_list(), &registry)
        );
        let out = run(guarded.guard(Policy::Block, step));
        let why = explain(&out, &guarded.installed_list(), &registry);
        assert_eq!(out.code, Some(0), "{step:?}\n{why}");
        for file in LOCKFILES {
            let want = bare
                .read(file)
                .unwrap_or_else(|| panic!("bare npm wrote no {file}"));
            let got = guarded
                .read(file)
                .unwrap_or_else(|| panic!("the guarded npm wrote no {file}\n{why}"));
            assert!(
                want == got,
                "{file} after {step:?} differs from bare npm's\n--- guarded ---\n{}\n--- bare ---\n{}\n{why}",
                String::from_utf8_lossy(&got),
                String::from_utf8_lossy(&want),
            );
            assert!(
                String::from_utf8_lossy(&got).contains(&registry.npm_url()),
                "{file} records the user's registry:\n{}",
                String::from_utf8_lossy(&got)
            );
        }
    }
    // The links npm recorded are upstream, but every tarball still came through the guard:
    // upstream saw only the guard's downloads, never npm's (its user agent names npm).
    let tarball = "/alpha-js/-/alpha-js-1.0.0.tgz";
    let agents = registry.agents(tarball);
    assert!(
        agents.iter().any(|a| a.starts_with("npm/")),
        "the harness tells npm by its user agent: bare npm's request for {tarball}: {agents:?}"
    );
    let before_guarded = agents.iter().filter(|a| a.starts_with("npm/")).count();
    assert_eq!(
        before_guarded, 1,
        "only bare npm fetched {tarball} straight from upstream: {agents:?}"
    );
    // And `npm ci` from that lockfile works with the guard gone: a fresh project with only
    // the manifest and the lockfile, npm's cache emptied.
    let ci = sandbox!(registry);
    for file in ["package.json", "package-lock.json"] {
        std::fs::write(ci.project.join(file), guarded.read(file).unwrap()).unwrap();
    }
    let out = run(ci.bare(&["ci"]));
    assert_eq!(
        out.code,
        Some(0),
        "bare npm ci on the guarded lockfile\n{}",
        explain(&out, &ci.installed_list(), &registry)
    );
}

// ---------------------------------------------------------------------------------------------
// npx and npm exec: the package's bin runs at once, so the tree is judged first.

/// The clean tree, `cli-js` (clean, with a bin), `evil-cli-js` (malicious, with a bin), and
/// `app-js` → `evil-js`.
fn bins() -> Registry {
    let mut all = fixtures::npm_clean_tree();
    all.extend(fixtures::npm_app_with_evil());
    all.push(fixtures::npm_cli_clean());
    all.push(fixtures::npm_evil_cli());
    Registry::with(vec![], all)
}

#[test]
fn control_bare_npx_runs_the_bin_of_what_it_fetches() {
    let registry = bins();
    let sandbox = sandbox!(registry);
    let out = run(sandbox.bare_npx(&["-y", "cli-js", "hello"]));
    assert!(
        out.code == Some(0) && out.stdout.contains("cli-js ran: hello"),
        "bare npx did not run cli-js: the harness is broken\n{}",
        explain(&out, &sandbox.installed_list(), &registry)
    );
    // Without the guard, the flagged package's code runs: so the tests below, where the
    // marker must stay absent, test something.
    let out = run(sandbox.bare_npx(&["-y", NPM_EVIL_CLI.0]));
    assert!(
        sandbox.dirs.marker_written(),
        "bare npx did not run {}\n{}",
        NPM_EVIL_CLI.0,
        explain(&out, &sandbox.installed_list(), &registry)
    );
}

#[test]
fn npx_of_a_clean_package_judges_its_tree_then_runs_its_bin() {
    let registry = bins();
    let sandbox = sandbox!(registry);
    let out = run(sandbox.guard_npx(Policy::Block, true, &["-y", "cli-js", "hello", "--yes"]));
    let why = explain(&out, &sandbox.installed_list(), &registry);
    assert_eq!(out.code, Some(0), "{why}");
    assert!(
        out.stdout.contains("cli-js ran: hello --yes"),
        "the bin runs with its arguments (`--yes` after the command is the command's)\n{why}"
    );
    let report = out
        .first_json()
        .unwrap_or_else(|e| panic!("--json must print a report first: {e}\n{why}"));
    assert_eq!(report["decision"], "proceed", "{report:#}");
    for name in ["cli-js", "gamma-js"] {
        let entry = report_entry(&report, name)
            .unwrap_or_else(|| panic!("{name} missing from the report: {report:#}"));
        assert_eq!(entry["verdict"], "benign", "{entry:#}");
    }
    assert!(
        sandbox.npx_cached("cli-js"),
        "npx ran it from its cache\n{why}"
    );
    // The project itself is left alone: npx installs apart from it.
    assert!(sandbox.installed_list().is_empty(), "{why}");
    assert!(sandbox.read("package-lock.json").is_none(), "{why}");
    // Every tarball came through the guard (npm's own user agent never asked upstream).
    let agents = registry.agents("/cli-js/-/cli-js-1.0.0.tgz");
    assert!(
        !agents.is_empty() && !agents.iter().any(|a| a.starts_with("npm/")),
        "cli-js's tarball must come from the guard only: {agents:?}\n{why}"
    );
}

#[test]
fn npx_of_a_malicious_package_is_blocked_before_its_bin_runs() {
    let registry = bins();
    let sandbox = sandbox!(registry);
    let out = run(sandbox.guard_npx(Policy::Block, true, &["--yes", NPM_EVIL_CLI.0]));
    let why = explain(&out, &sandbox.installed_list(), &registry);
    assert_eq!(out.code, Some(EXIT_BLOCKED), "blocked: exit 77\n{why}");
    assert!(
        !sandbox.dirs.marker_written(),
        "{}'s bin or postinstall ran\n{why}",
        NPM_EVIL_CLI.0
    );
    assert!(
        !sandbox.npx_cached(NPM_EVIL_CLI.0),
        "npx must not have fetched it\n{why}"
    );
    assert!(
        out.stderr.contains(NPM_EVIL_CLI.0) && out.stderr.contains(NPM_EVIL_CLI.1),
        "stderr must name {} {}\n{why}",
        NPM_EVIL_CLI.0,
        NPM_EVIL_CLI.1
    );
    let report = out
        .first_json()
        .unwrap_or_else(|e| panic!("--json must print a report first: {e}\n{why}"));
    assert_eq!(report["decision"], "blocked", "{report:#}");
    let evil = report_entry(&report, NPM_EVIL_CLI.0)
        .unwrap_or_else(|| panic!("{} missing from the report: {report:#}", NPM_EVIL_CLI.0));
    assert_eq!(evil["verdict"], "malicious", "{evil:#}");
    assert!(
        evil["score"].as_f64().unwrap_or(0.0) >= FLAGGED_SCORE,
        "{evil:#}"
    );
}

#[test]
fn npm_exec_with_packages_blocks_a_malicious_dependency_before_the_command_runs() {
    let registry = bins();
    let sandbox = sandbox!(registry);
    for args in [
        &[
            "exec",
            "--yes",
            "--package",
            "app-js",
            "--package=cli-js",
            "--",
            "cli-js",
            "x",
        ][..],
        &[
            "x",
            "-y",
            "--package=cli-js",
            "--package=app-js",
            "--",
            "cli-js",
        ],
    ] {
        let out = run(sandbox.guard(Policy::Block, args));
        let why = explain(&out, &sandbox.installed_list(), &registry);
        assert_eq!(out.code, Some(EXIT_BLOCKED), "{args:?}\n{why}");
        assert!(!out.stdout.contains("cli-js ran"), "the command ran\n{why}");
        assert_evil_absent(&sandbox, &why);
        assert!(!sandbox.npx_cached(NPM_EVIL.0), "{why}");
        assert!(out.stderr.contains(NPM_EVIL.0), "stderr names it\n{why}");
    }
    // `npx -p` is `--package` (in npm itself `-p` is `--parseable`).
    let out = run(sandbox.guard_npx(
        Policy::Block,
        false,
        &["-y", "-p", "app-js", "-p", "cli-js", "cli-js"],
    ));
    let why = explain(&out, &sandbox.installed_list(), &registry);
    assert_eq!(out.code, Some(EXIT_BLOCKED), "{why}");
    assert!(!out.stdout.contains("cli-js ran"), "{why}");
    assert!(!sandbox.dirs.marker_written(), "{why}");
}

#[test]
fn npm_exec_of_a_bin_already_in_node_modules_runs_without_the_registry() {
    let registry = bins();
    let sandbox = sandbox!(registry);
    let out = run(sandbox.bare(&["install", "cli-js"]));
    assert_eq!(
        out.code,
        Some(0),
        "bare npm could not set up the project\n{}",
        explain(&out, &sandbox.installed_list(), &registry)
    );
    let before = registry.total_hits();
    for out in [
        run(sandbox.guard(Policy::Block, &["exec", "--", "cli-js", "local"])),
        run(sandbox.guard_npx(Policy::Block, false, &["cli-js", "local"])),
    ] {
        let why = explain(&out, &sandbox.installed_list(), &registry);
        assert_eq!(out.code, Some(0), "{why}");
        assert!(out.stdout.contains("cli-js ran: local"), "{why}");
    }
    assert_eq!(
        registry.total_hits(),
        before,
        "nothing to fetch, nothing asked of the registry: {:?}",
        registry.log()
    );
}

#[test]
fn npx_of_a_git_spec_is_refused_with_one_line() {
    let registry = bins();
    let sandbox = sandbox!(registry);
    let out = run(sandbox.guard_npx(Policy::Block, false, &["-y", "github:someone/tool"]));
    let why = explain(&out, &sandbox.installed_list(), &registry);
    assert_eq!(out.code, Some(EXIT_UNJUDGED), "{why}");
    let lines: Vec<&str> = out
        .stderr
        .lines()
        .filter(|l| !l.trim().is_empty())
        .collect();
    assert_eq!(lines.len(), 1, "one line\n{why}");
    assert!(lines[0].contains("github:someone/tool"), "{why}");
    assert_eq!(registry.total_hits(), 0, "{why}");
}
