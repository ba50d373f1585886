//! End-to-end tests of `cerebro pip`: the real pip, in a virtual environment of its own, run
//! through the guard against a PyPI simple index on loopback that serves synthetic packages
//! (`tests/support`). Nothing reaches the network.
//!
//! The tests named `control_*` and `harness_*` check the harness itself with bare pip; the
//! others hold the guard to its contract: exit 77 when blocked, 78 when a package could not be
//! judged, otherwise pip's own code; messages on stderr; `--json` puts one report on stdout
//! first.

mod support;

use std::io::{Read, Write};
use std::time::Duration;

use support::fixtures::{self, Intent, PY_EVIL, PY_MARKER};
use support::registry::{dead_url, Fault, Registry};
use support::{
    explain, explain_screen, guard_warned, report_entry, run, shows_score, PipSandbox, Policy, Pty,
    DOWN, ENTER, EXIT_BLOCKED, EXIT_UNJUDGED, FLAGGED_SCORE, PROMPT_TIMEOUT,
};

/// A sandbox for `$registry`, or return from the test when python3 is missing (outside CI).
macro_rules! sandbox {
    ($registry:expr) => {
        match PipSandbox::new(&$registry.pypi_url()) {
            Some(sandbox) => sandbox,
            None => return,
        }
    };
}

fn clean_tree() -> Registry {
    Registry::with(fixtures::py_clean_tree(), vec![])
}

fn app_with_evil() -> Registry {
    Registry::with(fixtures::py_app_with_evil(), vec![])
}

fn evil_file() -> String {
    fixtures::py_evil().artifact.file
}

fn clean_dist(name: &str, version: &str) -> fixtures::PyDist {
    fixtures::py_clean_tree()
        .into_iter()
        .find(|d| d.name == name && d.version == version)
        .unwrap()
}

fn gamma_file() -> String {
    clean_dist("gamma-lib", "1.0.0").artifact.file
}

// ---------------------------------------------------------------------------------------------
// The harness.

#[test]
fn fixtures_are_judged_as_intended() {
    let mut all = fixtures::py_clean_tree();
    all.extend(fixtures::py_app_with_evil());
    all.push(fixtures::py_marker_evil_sdist());
    all.push(fixtures::py_plain_sdist());
    all.push(fixtures::py_built_sdist());
    let list: Vec<(String, &[u8], Intent)> = all
        .iter()
        .map(|d| {
            (
                d.artifact.file.clone(),
                d.artifact.bytes.as_slice(),
                d.intent,
            )
        })
        .collect();
    // Malicious fixtures must sit well above the threshold, so that the tests below do not
    // start failing for the wrong reason when the model is retrained.
    if let Err(text) = support::judge(&list, 0.95) {
        panic!("the PyPI fixtures are no longer judged as the tests assume:\n{text}");
    }
}

#[test]
fn harness_registry_serves_the_simple_api_and_faults() {
    let registry = clean_tree();
    let gamma = gamma_file();
    let tampered = fixtures::py_tampered(&clean_dist("gamma-lib", "1.0.0"));
    registry.fault(&gamma, Fault::Truncate);
    registry.fault(
        "beta_lib-1.0.0-py3-none-any.whl",
        Fault::Substitute(tampered),
    );

    let (status, headers, body) = http_get(&registry.host_port(), "/simple/gamma-lib/");
    assert_eq!(status, 200, "{headers}");
    let page = String::from_utf8(body).unwrap();
    let gamma_sha = clean_dist("gamma-lib", "1.0.0").artifact.sha256_hex();
    assert!(
        page.contains(&format!("href=\"../../files/{gamma}#sha256={gamma_sha}\"")),
        "{page}"
    );
    assert!(page.contains("data-requires-python=\"&gt;=3.7\""), "{page}");
    let (status, _, _) = http_get(&registry.host_port(), "/simple/");
    assert_eq!(status, 200);
    let (status, _, _) = http_get(&registry.host_port(), "/simple/no-such-project/");
    assert_eq!(status, 404);

    // The truncated download promises the whole file and delivers half of it.
    let (status, headers, body) = http_get(&registry.host_port(), &format!("/files/{gamma}"));
    assert_eq!(status, 200);
    let full = clean_dist("gamma-lib", "1.0.0").artifact.bytes.len();
    assert!(
        headers
            .to_ascii_lowercase()
            .contains(&format!("content-length: {full}")),
        "{headers}"
    );
    assert_eq!(
        body.len(),
        full / 2,
        "half the body, then the connection closes"
    );

    // The substituted download is whole, but not what the index published.
    let (status, _, body) = http_get(
        &registry.host_port(),
        "/files/beta_lib-1.0.0-py3-none-any.whl",
    );
    assert_eq!(status, 200);
    let published = clean_dist("beta-lib", "1.0.0").artifact.sha256_hex();
    assert_ne!(fixtures::hex(&sha2_256(&body)), published);

    assert_eq!(registry.file_hits(&gamma), 1);
    assert_eq!(registry.hits("/simple/gamma-lib/"), 1);
}

#[test]
fn control_bare_pip_installs_the_clean_tree_from_the_loopback_index() {
    let registry = clean_tree();
    let sandbox = sandbox!(registry);
    let out = run(sandbox.bare(&["install", "alpha-lib"]));
    let why = explain(&out, &sandbox.installed_list(), &registry);
    assert_eq!(
        out.code,
        Some(0),
        "bare pip failed: the harness is broken\n{why}"
    );
    for name in ["alpha-lib", "beta-lib"] {
        assert_eq!(
            sandbox.installed_version(name).as_deref(),
            Some("1.0.0"),
            "{why}"
        );
    }
    assert_eq!(
        sandbox.installed_version("gamma-lib").as_deref(),
        Some("1.0.0"),
        "pip picks the newest gamma\n{why}"
    );
}

/// Without the guard, pip runs an sdist's `setup.py` to prepare its metadata: so the marker
/// tests below, where the marker must stay absent, test something.
#[test]
fn control_bare_pip_runs_an_sdists_setup_py() {
    let registry = Registry::with(vec![fixtures::py_plain_sdist()], vec![]);
    let sandbox = sandbox!(registry);
    let out = run(sandbox.bare(&["install", "plain-sdist"]));
    assert!(
        sandbox.dirs.marker_written(),
        "bare pip did not run plain-sdist's setup.py, so the marker tests would prove \
         nothing\n{}",
        explain(&out, &sandbox.installed_list(), &registry)
    );
    // And the flagged sdist's setup.py would get as far as the marker: it is valid Python
    // (parsed, not run).
    let script = sandbox.dirs.root().join("marker-evil-setup.py");
    std::fs::write(&script, fixtures::MARKER_EVIL_SETUP_PY).unwrap();
    let mut check = sandbox.dirs.command(sandbox.venv.join("bin/python"));
    check
        .args(["-c", "import ast, sys; ast.parse(open(sys.argv[1]).read())"])
        .arg(&script);
    let out = run(check);
    assert_eq!(out.code, Some(0), "{out}");
}

// ---------------------------------------------------------------------------------------------
// Installs that go through.

#[test]
fn clean_tree_with_transitive_dependencies_installs_and_is_reported() {
    let registry = clean_tree();
    let sandbox = sandbox!(registry);
    let out = run(sandbox.guard_json(Policy::Block, &["install", "alpha-lib"]));
    let why = explain(&out, &sandbox.installed_list(), &registry);
    assert_eq!(
        out.code,
        Some(0),
        "a clean tree must install with exit 0\n{why}"
    );
    for name in ["alpha-lib", "beta-lib", "gamma-lib"] {
        assert_eq!(
            sandbox.installed_version(name).as_deref(),
            Some("1.0.0"),
            "{name} 1.0.0 should be installed\n{why}"
        );
    }

    let report = out
        .first_json()
        .unwrap_or_else(|e| panic!("--json must print a report first: {e}\n{why}"));
    assert_eq!(report["manager"], "pip", "{report:#}");
    assert_eq!(report["decision"], "proceed", "{report:#}");
    assert_eq!(report["flagged"], 0, "{report:#}");
    for dist in fixtures::py_clean_tree()
        .into_iter()
        .filter(|d| d.version == "1.0.0")
    {
        let entry = report_entry(&report, &dist.name)
            .unwrap_or_else(|| panic!("{} missing from the report: {report:#}", dist.name));
        assert_eq!(entry["ecosystem"], "pypi", "{entry:#}");
        assert_eq!(entry["version"], "1.0.0", "{entry:#}");
        assert_eq!(entry["file"], dist.artifact.file.as_str(), "{entry:#}");
        assert_eq!(entry["sha256"], dist.artifact.sha256_hex(), "{entry:#}");
        assert_eq!(entry["verdict"], "benign", "{entry:#}");
        let score = entry["score"].as_f64().unwrap_or(f64::NAN);
        assert!(
            (0.0..0.5).contains(&score),
            "score of a clean package: {entry:#}"
        );
        assert!(entry["action"].is_string(), "{entry:#}");
    }
}

#[test]
fn warn_mode_installs_a_flagged_dependency_with_a_warning() {
    let registry = app_with_evil();
    let sandbox = sandbox!(registry);
    let out = run(sandbox.guard(Policy::Warn, &["install", "app-core"]));
    let why = explain(&out, &sandbox.installed_list(), &registry);
    assert_eq!(out.code, Some(0), "warn lets the install through\n{why}");
    assert!(
        sandbox.installed("app-core") && sandbox.installed(PY_EVIL.0),
        "{why}"
    );
    assert!(
        guard_warned(&out.stderr, PY_EVIL.0),
        "stderr must warn about {}\n{why}",
        PY_EVIL.0
    );
}

/// The warm path: a second install of the same thing skips the separate resolution run (the
/// report comes after pip's own output), and still judges what it is served: a malicious
/// release that appears upstream afterwards is refused, and nothing is installed.
#[test]
fn warm_install_takes_one_pass_and_still_refuses_a_new_malicious_release() {
    let registry = clean_tree();
    let sandbox = sandbox!(registry);
    let tree = ["alpha-lib", "beta-lib", "gamma-lib"];
    let first = run(sandbox.guard_json(Policy::Block, &["install", "alpha-lib"]));
    let why = explain(&first, &sandbox.installed_list(), &registry);
    assert_eq!(first.code, Some(0), "{why}");
    assert!(
        first.stdout.trim_start().starts_with('{'),
        "cold: the report comes first\n{why}"
    );
    let mut uninstall = vec!["uninstall", "-y"];
    uninstall.extend(tree);
    assert_eq!(run(sandbox.bare(&uninstall)).code, Some(0));

    let second = run(sandbox.guard_json(Policy::Block, &["install", "alpha-lib"]));
    let why = explain(&second, &sandbox.installed_list(), &registry);
    assert_eq!(second.code, Some(0), "{why}");
    assert!(tree.iter().all(|n| sandbox.installed(n)), "{why}");
    let report_at = second.stdout.find("{\"manager\"").expect("a JSON report");
    let pip_at = second
        .stdout
        .find("Successfully installed")
        .expect("pip's output");
    assert!(
        pip_at < report_at,
        "warm: one pass, the report after pip\n{why}"
    );
    assert_eq!(run(sandbox.bare(&uninstall)).code, Some(0));

    // A hijacked gamma-lib 1.1.0 appears upstream; the resolver will prefer it.
    registry.add_pypi([fixtures::py_evil_as("gamma-lib", "1.1.0")]);
    let third = run(sandbox.guard(Policy::Block, &["install", "alpha-lib"]));
    let why = explain(&third, &sandbox.installed_list(), &registry);
    assert_eq!(third.code, Some(EXIT_BLOCKED), "{why}");
    assert!(
        sandbox.installed_list().is_empty(),
        "nothing may be installed\n{why}"
    );
    assert!(
        third.stderr.contains("gamma-lib") && third.stderr.contains("1.1.0"),
        "{why}"
    );

    // The memo is gone: the next run resolves apart and stops before pip installs.
    let fourth = run(sandbox.guard_json(Policy::Block, &["install", "alpha-lib"]));
    let why = explain(&fourth, &sandbox.installed_list(), &registry);
    assert_eq!(fourth.code, Some(EXIT_BLOCKED), "{why}");
    assert!(fourth.stdout.trim_start().starts_with('{'), "{why}");
    assert!(sandbox.installed_list().is_empty(), "{why}");
}

// ---------------------------------------------------------------------------------------------
// Blocking.

#[test]
fn malicious_transitive_dependency_is_blocked_and_nothing_is_installed() {
    let registry = app_with_evil();
    let sandbox = sandbox!(registry);
    let out = run(sandbox.guard_json(Policy::Block, &["install", "app-core"]));
    let why = explain(&out, &sandbox.installed_list(), &registry);
    assert_eq!(
        out.code,
        Some(EXIT_BLOCKED),
        "blocked installs exit 77\n{why}"
    );
    assert!(
        sandbox.installed_list().is_empty(),
        "nothing may be installed, not even app-core\n{why}"
    );
    assert!(
        out.stderr.contains(PY_EVIL.0) && out.stderr.contains(PY_EVIL.1),
        "stderr must name {} {}\n{why}",
        PY_EVIL.0,
        PY_EVIL.1
    );
    assert!(
        registry.file_hits(&evil_file()) >= 1,
        "the guard must have fetched the wheel it judged\n{why}"
    );

    let report = out
        .first_json()
        .unwrap_or_else(|e| panic!("--json must print a report first: {e}\n{why}"));
    assert_eq!(report["decision"], "blocked", "{report:#}");
    assert!(report["flagged"].as_u64().unwrap_or(0) >= 1, "{report:#}");
    let evil = report_entry(&report, PY_EVIL.0)
        .unwrap_or_else(|| panic!("{} missing from the report: {report:#}", PY_EVIL.0));
    assert_eq!(evil["verdict"], "malicious", "{evil:#}");
    assert_eq!(evil["version"], PY_EVIL.1, "{evil:#}");
    assert!(
        evil["score"].as_f64().unwrap_or(0.0) >= FLAGGED_SCORE,
        "{evil:#}"
    );
}

#[test]
fn sdist_whose_setup_py_writes_a_marker_is_blocked_before_it_runs() {
    let registry = Registry::with(vec![fixtures::py_marker_evil_sdist()], vec![]);
    let sandbox = sandbox!(registry);
    let out = run(sandbox.guard(Policy::Block, &["install", PY_MARKER.0]));
    let why = explain(&out, &sandbox.installed_list(), &registry);
    assert!(
        !sandbox.dirs.marker_written(),
        "the sdist's setup.py ran: the guard let pip build it\n{why}"
    );
    assert_eq!(out.code, Some(EXIT_BLOCKED), "{why}");
    assert!(!sandbox.installed(PY_MARKER.0), "{why}");
    assert!(
        out.stderr.contains(PY_MARKER.0),
        "stderr must name it\n{why}"
    );
}

// ---------------------------------------------------------------------------------------------
// The prompt.

/// Starts a prompt-mode install on a pseudo-terminal and waits for the menu.
fn prompt(sandbox: &PipSandbox, registry: &Registry, package: &str) -> Pty {
    let mut pty = Pty::spawn(sandbox.guard(Policy::Prompt, &["install", package]));
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
    let mut pty = prompt(&sandbox, &registry, "app-core");
    let screen = pty.screen();
    assert!(
        screen.contains(PY_EVIL.0),
        "the prompt must name the package:\n{screen}"
    );
    assert!(
        shows_score(&screen, FLAGGED_SCORE),
        "the prompt must show the score:\n{screen}"
    );
    for item in [
        "Install it this once",
        &format!("Always allow {}", PY_EVIL.0),
    ] {
        assert!(
            screen.contains(item),
            "menu item {item:?} missing:\n{screen}"
        );
    }
    pty.send(ENTER);
    let (code, screen) = pty.finish(PROMPT_TIMEOUT);
    let why = explain_screen(code, &screen, &sandbox.installed_list(), &registry);
    assert_eq!(
        code,
        Some(EXIT_BLOCKED),
        "Enter picks abort: exit 77\n{why}"
    );
    assert!(sandbox.installed_list().is_empty(), "{why}");
}

#[test]
fn prompt_install_once_installs_without_allowlisting() {
    let registry = app_with_evil();
    let mut sandbox = sandbox!(registry);
    let mut pty = prompt(&sandbox, &registry, "app-core");
    pty.send(DOWN);
    pty.send(ENTER);
    let (code, screen) = pty.finish(PROMPT_TIMEOUT);
    let why = explain_screen(code, &screen, &sandbox.installed_list(), &registry);
    assert_eq!(code, Some(0), "{why}");
    assert!(
        sandbox.installed("app-core") && sandbox.installed(PY_EVIL.0),
        "{why}"
    );

    let list = run(sandbox.dirs.cerebro(&["allowlist"]));
    assert!(!list.stdout.contains(PY_EVIL.0), "not allowlisted:\n{list}");
    sandbox.fresh_venv();
    let again = run(sandbox.guard(Policy::Block, &["install", "app-core"]));
    assert_eq!(
        again.code,
        Some(EXIT_BLOCKED),
        "\"this once\" must not outlive the install\n{}",
        explain(&again, &sandbox.installed_list(), &registry)
    );
}

#[test]
fn prompt_always_allow_installs_and_persists_in_the_allowlist() {
    let registry = app_with_evil();
    let mut sandbox = sandbox!(registry);
    let mut pty = prompt(&sandbox, &registry, "app-core");
    pty.send(DOWN);
    pty.send(DOWN);
    pty.send(ENTER);
    let (code, screen) = pty.finish(PROMPT_TIMEOUT);
    let why = explain_screen(code, &screen, &sandbox.installed_list(), &registry);
    assert_eq!(code, Some(0), "{why}");
    assert!(
        sandbox.installed("app-core") && sandbox.installed(PY_EVIL.0),
        "{why}"
    );

    let list = run(sandbox.dirs.cerebro(&["allowlist"]));
    assert_eq!(list.code, Some(0), "{list}");
    assert!(
        list.stdout.contains(PY_EVIL.0),
        "`cerebro allowlist` must list it:\n{list}"
    );

    // A new venv and an empty verdict cache: only the allowlist in the config can let it in.
    sandbox.fresh_venv();
    sandbox.dirs.fresh_cache();
    let out = run(sandbox.guard(Policy::Block, &["install", "app-core"]));
    let why = explain(&out, &sandbox.installed_list(), &registry);
    assert_eq!(
        out.code,
        Some(0),
        "the allowlisted package installs in block mode\n{why}"
    );
    assert!(sandbox.installed(PY_EVIL.0), "{why}");
}

#[test]
fn prompt_without_a_terminal_blocks() {
    let registry = app_with_evil();
    let sandbox = sandbox!(registry);
    // `run` gives the command /dev/null for stdin and pipes for its output.
    let out = run(sandbox.guard(Policy::Prompt, &["install", "app-core"]));
    let why = explain(&out, &sandbox.installed_list(), &registry);
    assert_eq!(
        out.code,
        Some(EXIT_BLOCKED),
        "no TTY: prompt acts as block\n{why}"
    );
    assert!(sandbox.installed_list().is_empty(), "{why}");
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
        sandbox.guard(Policy::Prompt, &["install", "app-core"]),
        || sandbox.installed_list(),
        &registry,
    );
    assert!(sandbox.installed_list().is_empty(), "{why}");
}

#[test]
fn prompt_abort_keeps_an_sdists_setup_py_from_running() {
    let registry = Registry::with(vec![fixtures::py_marker_evil_sdist()], vec![]);
    let sandbox = sandbox!(registry);
    let mut pty = prompt(&sandbox, &registry, PY_MARKER.0);
    assert!(
        !sandbox.dirs.marker_written(),
        "setup.py ran before the user answered"
    );
    pty.send(ENTER);
    let (code, screen) = pty.finish(PROMPT_TIMEOUT);
    let why = explain_screen(code, &screen, &sandbox.installed_list(), &registry);
    assert!(
        !sandbox.dirs.marker_written(),
        "setup.py ran after abort\n{why}"
    );
    assert_eq!(code, Some(EXIT_BLOCKED), "{why}");
    assert!(!sandbox.installed(PY_MARKER.0), "{why}");
}

// ---------------------------------------------------------------------------------------------
// Other commands.

#[test]
fn non_install_commands_pass_through_unchanged() {
    let registry = clean_tree();
    let sandbox = sandbox!(registry);
    for args in [
        &["--version"][..],
        &["list"],
        &["show", "pip"],
        &["show", "no-such-package"],
    ] {
        let bare = run(sandbox.bare(args));
        let guarded = run(sandbox.guard(Policy::Block, args));
        assert_eq!(
            (guarded.code, &guarded.stdout),
            (bare.code, &bare.stdout),
            "`pip {}` through the guard must behave as bare pip\n--- guarded ---\n{guarded}\n--- bare ---\n{bare}",
            args.join(" ")
        );
    }
    assert_eq!(
        registry.total_hits(),
        0,
        "pass-through commands need no index: {:?}",
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
    sandbox.set_index(&format!("{dead}/simple/"));
    let out = run(sandbox.guard(Policy::Block, &["install", "alpha-lib"]));
    let why = explain(&out, &sandbox.installed_list(), &registry);
    assert!(
        !out.timed_out && out.code.is_some_and(|c| c != 0),
        "an unreachable index must fail the install\n{why}"
    );
    assert!(sandbox.installed_list().is_empty(), "{why}");
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
        lines.len() <= 6 && !out.stderr.contains("Traceback") && !out.stderr.contains("panicked"),
        "one readable error, not pages of retries or a backtrace\n{why}"
    );
}

#[test]
fn hash_mismatch_is_refused_and_installs_nothing() {
    let registry = clean_tree();
    let sandbox = sandbox!(registry);
    let gamma = gamma_file();
    let tampered = fixtures::py_tampered(&clean_dist("gamma-lib", "1.0.0"));
    registry.fault(&gamma, Fault::Substitute(tampered));
    let out = run(sandbox.guard(Policy::Block, &["install", "alpha-lib"]));
    let why = explain(&out, &sandbox.installed_list(), &registry);
    assert_eq!(
        out.code,
        Some(EXIT_UNJUDGED),
        "a hash mismatch exits 78\n{why}"
    );
    assert!(sandbox.installed_list().is_empty(), "{why}");
    let err = out.stderr_lower();
    assert!(
        err.contains("hash") && err.contains("match") && out.stderr.contains(&gamma),
        "stderr must say hash mismatch and name {gamma}\n{why}"
    );
}

#[test]
fn truncated_download_is_refused_and_installs_nothing() {
    let registry = clean_tree();
    let sandbox = sandbox!(registry);
    let gamma = gamma_file();
    registry.fault(&gamma, Fault::Truncate);
    let out = run(sandbox.guard(Policy::Block, &["install", "alpha-lib"]));
    let why = explain(&out, &sandbox.installed_list(), &registry);
    assert_eq!(
        out.code,
        Some(EXIT_UNJUDGED),
        "a truncated download exits 78\n{why}"
    );
    assert!(sandbox.installed_list().is_empty(), "{why}");
    assert!(
        out.stderr.contains(&gamma) || out.stderr.contains("gamma-lib"),
        "stderr must name what could not be downloaded\n{why}"
    );
}

#[test]
fn an_upstream_slower_than_the_deadline_ends_with_78_naming_the_file_not_pips_traceback() {
    let registry = clean_tree();
    let sandbox = sandbox!(registry);
    let gamma = gamma_file();
    // Longer than the guard's 30 s grace before its rate floor: only the deadline can end it.
    registry.fault(&gamma, Fault::Delay(Duration::from_secs(120)));
    let mut cmd = sandbox.guard(Policy::Block, &["install", "alpha-lib"]);
    cmd.env("CEREBRO_UPSTREAM_DEADLINE", "3s");
    let out = run(cmd);
    let why = explain(&out, &sandbox.installed_list(), &registry);
    assert_eq!(
        out.code,
        Some(EXIT_UNJUDGED),
        "past the deadline the run exits 78\n{why}"
    );
    assert!(sandbox.installed_list().is_empty(), "{why}");
    assert!(
        out.stderr.contains(&gamma) && out.stderr.contains("upstream_deadline"),
        "stderr names the slow file and the setting\n{why}"
    );
    assert!(!out.stderr.contains("Traceback"), "no pip traceback\n{why}");
}

// ---------------------------------------------------------------------------------------------
// The benchmark's server (bench/guard-overhead.sh).

/// Serves the benchmark tree (61 wheels, 61 npm tarballs) until killed, after printing where.
#[test]
#[ignore = "run by bench/guard-overhead.sh"]
fn overhead_fixture_server() {
    let mids = env_usize("CEREBRO_BENCH_MIDS", 6);
    let leaves = env_usize("CEREBRO_BENCH_LEAVES", 9);
    let pypi = fixtures::bench_py_tree(mids, leaves);
    let npm = fixtures::bench_npm_tree(mids, leaves);
    let (n_pypi, n_npm) = (pypi.len(), npm.len());
    let registry = Registry::with(pypi, npm);
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "PYPI_INDEX={}", registry.pypi_url()).unwrap();
    writeln!(stdout, "NPM_REGISTRY={}", registry.npm_url()).unwrap();
    writeln!(stdout, "PYPI_ROOT=bench-root PYPI_PACKAGES={n_pypi}").unwrap();
    writeln!(stdout, "NPM_ROOT=bench-root-js NPM_PACKAGES={n_npm}").unwrap();
    writeln!(stdout, "READY").unwrap();
    stdout.flush().unwrap();
    drop(stdout);
    registry.serve_forever();
}

fn env_usize(key: &str, default: usize) -> usize {
    std::env::var(key)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

// ---------------------------------------------------------------------------------------------
// Helpers.

/// A minimal HTTP/1.1 GET: status, the header block, and the body as far as it came.
fn http_get(host: &str, path: &str) -> (u16, String, Vec<u8>) {
    let mut stream = std::net::TcpStream::connect(host).expect("connect to the registry");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut raw = Vec::new();
    let _ = stream.read_to_end(&mut raw);
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a header block");
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("a status code");
    (status, head, raw[split + 4..].to_vec())
}

fn sha2_256(bytes: &[u8]) -> Vec<u8> {
    use sha2::Digest;
    sha2::Sha256::digest(bytes).to_vec()
}

// ---------------------------------------------------------------------------------------------
// pip download and pip wheel: they build sdists to learn their dependencies, so they are judged
// like installs.

/// The files in `dir`, sorted (none when it does not exist).
fn files_in(dir: &std::path::Path) -> Vec<String> {
    let mut all: Vec<String> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok())
                .filter_map(|e| e.file_name().into_string().ok())
                .collect()
        })
        .unwrap_or_default();
    all.sort();
    all
}

#[test]
fn control_bare_pip_download_runs_an_sdists_setup_py() {
    let registry = Registry::with(vec![fixtures::py_plain_sdist()], vec![]);
    let sandbox = sandbox!(registry);
    let dest = sandbox.dirs.root().join("dest");
    let out = run(sandbox.bare(&["download", "plain-sdist", "-d", dest.to_str().unwrap()]));
    assert!(
        sandbox.dirs.marker_written(),
        "bare `pip download` did not run plain-sdist's setup.py, so the tests below would \
         prove nothing\n{}",
        explain(&out, &sandbox.installed_list(), &registry)
    );
}

#[test]
fn pip_download_and_wheel_of_a_malicious_sdist_stop_before_setup_py_runs() {
    let registry = Registry::with(vec![fixtures::py_marker_evil_sdist()], vec![]);
    let sandbox = sandbox!(registry);
    for (command, dest_flag) in [("download", "-d"), ("wheel", "--wheel-dir")] {
        let dest = sandbox.dirs.root().join(format!("{command}-dest"));
        let out = run(sandbox.guard_json(
            Policy::Block,
            &[command, PY_MARKER.0, dest_flag, dest.to_str().unwrap()],
        ));
        let why = explain(&out, &sandbox.installed_list(), &registry);
        assert_eq!(
            out.code,
            Some(EXIT_BLOCKED),
            "pip {command}: exit 77\n{why}"
        );
        assert!(
            !sandbox.dirs.marker_written(),
            "pip {command}: the sdist's setup.py ran\n{why}"
        );
        assert_eq!(
            files_in(&dest),
            Vec::<String>::new(),
            "pip {command}\n{why}"
        );
        assert!(out.stderr.contains(PY_MARKER.0), "stderr names it\n{why}");
        let report = out
            .first_json()
            .unwrap_or_else(|e| panic!("--json must print a report first: {e}\n{why}"));
        assert_eq!(report["decision"], "blocked", "{report:#}");
    }
}

#[test]
fn pip_download_of_a_malicious_dependency_is_blocked_even_when_installed_packages_satisfy_it() {
    let registry = app_with_evil();
    let sandbox = sandbox!(registry);
    // Installed unguarded: an install would find it satisfied and fetch nothing, but
    // `pip download` fetches the tree all the same, so all of it is judged first.
    let out = run(sandbox.bare(&["install", "app-core"]));
    assert_eq!(out.code, Some(0), "{out}");
    let dest = sandbox.dirs.root().join("dest");
    let out = run(sandbox.guard(
        Policy::Block,
        &["download", "app-core", "-d", dest.to_str().unwrap()],
    ));
    let why = explain(&out, &sandbox.installed_list(), &registry);
    assert_eq!(out.code, Some(EXIT_BLOCKED), "{why}");
    assert_eq!(files_in(&dest), Vec::<String>::new(), "{why}");
    assert!(out.stderr.contains(PY_EVIL.0), "{why}");
}

#[test]
fn pip_download_of_a_clean_tree_fetches_what_bare_pip_fetches() {
    let registry = clean_tree();
    let sandbox = sandbox!(registry);
    // Installed already: `pip download` fetches the whole tree anyway, and all of it is judged.
    let out = run(sandbox.bare(&["install", "alpha-lib"]));
    assert_eq!(out.code, Some(0), "{out}");
    let bare_dest = sandbox.dirs.root().join("bare-dest");
    let out = run(sandbox.bare(&["download", "alpha-lib", "-d", bare_dest.to_str().unwrap()]));
    assert_eq!(
        out.code,
        Some(0),
        "bare pip download: the harness is broken\n{out}"
    );
    let dest = sandbox.dirs.root().join("dest");
    let out = run(sandbox.guard_json(
        Policy::Block,
        &["download", "--dest", dest.to_str().unwrap(), "alpha-lib"],
    ));
    let why = explain(&out, &sandbox.installed_list(), &registry);
    assert_eq!(out.code, Some(0), "{why}");
    let want: Vec<String> = {
        let mut v: Vec<String> = fixtures::py_clean_tree()
            .into_iter()
            .filter(|d| d.version == "1.0.0")
            .map(|d| d.artifact.file)
            .collect();
        v.sort();
        v
    };
    assert_eq!(files_in(&bare_dest), want, "bare pip's files");
    assert_eq!(files_in(&dest), want, "{why}");
    for file in &want {
        assert!(
            std::fs::read(dest.join(file)).unwrap() == std::fs::read(bare_dest.join(file)).unwrap(),
            "{file} differs from bare pip's\n{why}"
        );
    }
    let report = out
        .first_json()
        .unwrap_or_else(|e| panic!("--json must print a report first: {e}\n{why}"));
    assert_eq!(report["decision"], "proceed", "{report:#}");
    for name in ["alpha-lib", "beta-lib", "gamma-lib"] {
        assert!(
            report_entry(&report, name).is_some(),
            "{name} missing from the report: {report:#}"
        );
    }
    // pip's own output names the guard's index once (not as index and extra index both).
    let looking: Vec<&str> = out
        .stdout
        .lines()
        .filter(|l| l.starts_with("Looking in indexes:"))
        .collect();
    assert!(
        looking.len() == 1 && !looking[0].contains(", "),
        "one index, once: {looking:?}\n{why}"
    );
    assert!(!out.stdout.contains("Looking in links"), "{why}");
}

#[test]
fn pip_wheel_of_a_clean_sdist_builds_it_once_judged() {
    let registry = Registry::with(vec![fixtures::py_built_sdist()], vec![]);
    let sandbox = sandbox!(registry);
    let wheel = "built_sdist-1.0.0-py3-none-any.whl".to_owned();
    let bare_dest = sandbox.dirs.root().join("bare-dest");
    let bare = run(sandbox.bare(&["wheel", "built-sdist", "-w", bare_dest.to_str().unwrap()]));
    assert!(
        bare.code == Some(0)
            && files_in(&bare_dest) == [wheel.clone()]
            && sandbox.dirs.marker_written(),
        "bare pip wheel did not build built-sdist: the harness is broken\n{bare}"
    );
    std::fs::remove_file(&sandbox.dirs.marker).unwrap();
    let dest = sandbox.dirs.root().join("dest");
    let out = run(sandbox.guard_json(
        Policy::Block,
        &["wheel", "built-sdist", "-w", dest.to_str().unwrap()],
    ));
    let why = explain(&out, &sandbox.installed_list(), &registry);
    assert_eq!(out.code, Some(0), "{why}");
    assert_eq!(files_in(&dest), [wheel], "{why}");
    assert!(
        sandbox.dirs.marker_written(),
        "the clean sdist's build backend runs once judged\n{why}"
    );
    let report = out
        .first_json()
        .unwrap_or_else(|e| panic!("--json must print a report first: {e}\n{why}"));
    assert_eq!(report["decision"], "proceed", "{report:#}");
    let entry = report_entry(&report, "built-sdist")
        .unwrap_or_else(|| panic!("built-sdist missing from the report: {report:#}"));
    assert_eq!(
        entry["file"],
        fixtures::py_built_sdist().artifact.file.as_str(),
        "{entry:#}"
    );
}
