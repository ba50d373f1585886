//! End-to-end tests of `cerebro bun` and `cerebro bunx`: the real bun, in a project of its
//! own, run through the guard against the npm registry on loopback that serves synthetic
//! packages (`tests/support`). Nothing reaches the network.
//!
//! bun runs the lifecycle scripts of a dependency only when the project trusts it, so the
//! test project lists the marker fixtures in `trustedDependencies`: a bare bun would run
//! them (`control_*` checks that), and the guarded runs must not.

mod support;

use std::path::PathBuf;
use std::process::Command;

use support::fixtures::{self, NPM_EVIL, NPM_EVIL_CLI};
use support::registry::Registry;
use support::{explain, require_tool, run, Dirs, Policy, EXIT_BLOCKED};

/// The test project: no dependencies, the marker fixtures trusted.
const PROJECT_JSON: &str = r#"{
  "name": "e2e-bun-project",
  "version": "1.0.0",
  "private": true,
  "trustedDependencies": ["hook-js", "evil-js", "app-js", "evil-cli-js"]
}
"#;

/// A project for bun: `.npmrc` naming the registry, bun's install cache of its own.
struct BunSandbox {
    dirs: Dirs,
    project: PathBuf,
}

impl BunSandbox {
    /// `None` when bun is missing and the test should be skipped.
    fn new(registry: &Registry) -> Option<BunSandbox> {
        if !require_tool("bun") || !require_tool("node") {
            return None;
        }
        let mut dirs = Dirs::new("bun");
        let project = dirs.root().join("project");
        std::fs::create_dir_all(&project).unwrap();
        std::fs::write(project.join("package.json"), PROJECT_JSON).unwrap();
        std::fs::write(
            project.join(".npmrc"),
            format!("registry={}\n", registry.npm_url()),
        )
        .unwrap();
        let cache = dirs.root().join("bun-cache");
        dirs.set_env("BUN_INSTALL_CACHE_DIR", cache);
        dirs.set_env("DO_NOT_TRACK", "1");
        Some(BunSandbox { dirs, project })
    }

    fn guard(&self, policy: Policy, args: &[&str]) -> Command {
        let mut cmd = self.dirs.cerebro(&["bun", "--"]);
        cmd.args(args)
            .env("CEREBRO_POLICY", policy.as_str())
            .current_dir(&self.project);
        cmd
    }

    fn guard_bunx(&self, policy: Policy, args: &[&str]) -> Command {
        let mut cmd = self.dirs.cerebro(&["bunx", "--"]);
        cmd.args(args)
            .env("CEREBRO_POLICY", policy.as_str())
            .current_dir(&self.project);
        cmd
    }

    fn bare(&self, args: &[&str]) -> Command {
        let mut cmd = self.dirs.command("bun");
        cmd.args(args).current_dir(&self.project);
        cmd
    }

    fn read(&self, file: &str) -> Option<Vec<u8>> {
        std::fs::read(self.project.join(file)).ok()
    }

    fn installed(&self, name: &str) -> bool {
        support::node_module_installed(&self.project, name)
    }

    fn installed_list(&self) -> Vec<String> {
        support::node_modules_list(&self.project)
    }

    fn manifests(&self) -> (Option<Vec<u8>>, Option<Vec<u8>>) {
        (self.read("package.json"), self.read("bun.lock"))
    }
}

macro_rules! sandbox {
    ($registry:expr) => {
        match BunSandbox::new(&$registry) {
            Some(sandbox) => sandbox,
            None => return,
        }
    };
}

fn registry_with_all() -> Registry {
    let mut all = fixtures::npm_clean_tree();
    all.extend(fixtures::npm_app_with_evil());
    all.push(fixtures::npm_hook_clean());
    all.push(fixtures::npm_evil_cli());
    Registry::with(vec![], all)
}

fn assert_evil_never_ran(sandbox: &BunSandbox, why: &str) {
    assert!(
        !sandbox.installed("app-js") && !sandbox.installed(NPM_EVIL.0),
        "app-js / {} must not be installed\n{why}",
        NPM_EVIL.0
    );
    assert!(
        !sandbox.dirs.marker_written(),
        "a malicious install script or bin ran\n{why}"
    );
}

fn text(bytes: &Option<Vec<u8>>) -> String {
    String::from_utf8_lossy(bytes.as_deref().unwrap_or_default()).into_owned()
}

#[test]
fn control_bare_bun_runs_trusted_install_scripts() {
    let registry = registry_with_all();
    let sandbox = sandbox!(registry);
    let out = run(sandbox.bare(&["add", "hook-js"]));
    let why = explain(&out, &sandbox.installed_list(), &registry);
    assert_eq!(
        out.code,
        Some(0),
        "bare bun failed: the harness is broken\n{why}"
    );
    assert!(
        sandbox.dirs.marker_written(),
        "bare bun did not run the trusted hook-js postinstall, so the blocked tests below \
         would prove nothing\n{why}"
    );
}

#[test]
fn clean_add_installs_and_bun_lock_matches_a_bare_run() {
    let registry = registry_with_all();
    let guarded = sandbox!(registry);
    let bare = sandbox!(registry);
    let out = run(guarded.guard(Policy::Block, &["add", "alpha-js"]));
    let why = explain(&out, &guarded.installed_list(), &registry);
    assert_eq!(out.code, Some(0), "a clean tree must install\n{why}");
    for name in ["alpha-js", "beta-js", "gamma-js", "@acme/util"] {
        assert!(guarded.installed(name), "{name} installed\n{why}");
    }
    let bare_out = run(bare.bare(&["add", "alpha-js"]));
    assert_eq!(bare_out.code, Some(0), "{bare_out}");
    let (g, b) = (guarded.manifests(), bare.manifests());
    assert!(g.1.is_some(), "bun wrote no bun.lock\n{why}");
    assert_eq!(
        text(&g.0),
        text(&b.0),
        "package.json differs from a bare run"
    );
    assert_eq!(text(&g.1), text(&b.1), "bun.lock differs from a bare run");
    assert!(!text(&g.1).contains("/-/bun/"), "no guard URL in bun.lock");

    // The lockfile (absolute URLs of the loopback upstream) installs frozen through the
    // guard, and stays as it was.
    std::fs::remove_dir_all(guarded.project.join("node_modules")).unwrap();
    let out = run(guarded.guard(Policy::Block, &["install", "--frozen-lockfile"]));
    let why = explain(&out, &guarded.installed_list(), &registry);
    assert_eq!(out.code, Some(0), "{why}");
    assert!(guarded.installed("gamma-js"), "{why}");
    assert_eq!(text(&guarded.manifests().1), text(&b.1), "bun.lock changed");

    // A plain `bun install` re-resolves and writes the same bytes as well.
    let out = run(guarded.guard(Policy::Block, &["install"]));
    assert_eq!(out.code, Some(0), "{out}");
    assert_eq!(text(&guarded.manifests().1), text(&b.1), "bun.lock changed");
}

#[test]
fn lockfile_entries_without_urls_come_back_as_a_bare_run_writes_them() {
    let registry = registry_with_all();
    let guarded = sandbox!(registry);
    let bare = sandbox!(registry);
    let out = run(bare.bare(&["add", "alpha-js"]));
    assert_eq!(out.code, Some(0), "{out}");
    // A lockfile written against the default registry records no URLs ("").
    let lock = text(&bare.read("bun.lock"));
    let prefix = format!("\"{}", registry.npm_url());
    let mut emptied = String::new();
    let mut rest = lock.as_str();
    while let Some(at) = rest.find(&prefix) {
        emptied.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        let end = after.find('"').unwrap();
        emptied.push_str("\"\"");
        rest = &after[end + 1..];
    }
    emptied.push_str(rest);
    assert!(emptied.contains("\"\""), "{emptied}");
    for sandbox in [&guarded, &bare] {
        std::fs::write(sandbox.project.join("bun.lock"), &emptied).unwrap();
        std::fs::copy(
            bare.project.join("package.json"),
            sandbox.project.join("package.json.new"),
        )
        .unwrap();
    }
    std::fs::rename(
        guarded.project.join("package.json.new"),
        guarded.project.join("package.json"),
    )
    .unwrap();
    std::fs::remove_file(bare.project.join("package.json.new")).unwrap();
    std::fs::remove_dir_all(bare.project.join("node_modules")).unwrap();
    let out = run(guarded.guard(Policy::Block, &["add", "gamma-js"]));
    let why = explain(&out, &guarded.installed_list(), &registry);
    assert_eq!(out.code, Some(0), "{why}");
    let out = run(bare.bare(&["add", "gamma-js"]));
    assert_eq!(out.code, Some(0), "{out}");
    let (g, b) = (guarded.manifests(), bare.manifests());
    assert_eq!(
        text(&g.0),
        text(&b.0),
        "package.json differs from a bare run"
    );
    assert_eq!(
        text(&g.1),
        text(&b.1),
        "bun.lock differs from a bare run\n{why}"
    );
}

#[test]
fn malicious_add_is_blocked_and_never_runs() {
    let registry = registry_with_all();
    let sandbox = sandbox!(registry);
    let before = sandbox.manifests();
    let out = run(sandbox.guard(Policy::Block, &["add", "app-js"]));
    let why = explain(&out, &sandbox.installed_list(), &registry);
    assert_eq!(out.code, Some(EXIT_BLOCKED), "{why}");
    assert_evil_never_ran(&sandbox, &why);
    assert_eq!(
        sandbox.manifests(),
        before,
        "package.json/bun.lock untouched\n{why}"
    );
}

#[test]
fn bun_install_cache_lets_nothing_unjudged_through() {
    let registry = registry_with_all();
    let sandbox = sandbox!(registry);
    // An unguarded run elsewhere (scripts off) puts app-js and evil-js into bun's cache.
    let other = sandbox.dirs.root().join("other");
    std::fs::create_dir_all(&other).unwrap();
    std::fs::write(other.join("package.json"), "{}\n").unwrap();
    std::fs::copy(sandbox.project.join(".npmrc"), other.join(".npmrc")).unwrap();
    let mut cmd = sandbox.dirs.command("bun");
    cmd.args(["add", "app-js", "--ignore-scripts"])
        .current_dir(&other);
    let out = run(cmd);
    assert_eq!(out.code, Some(0), "{out}");
    assert!(!sandbox.dirs.marker_written());
    let out = run(sandbox.guard(Policy::Block, &["add", "app-js"]));
    let why = explain(&out, &sandbox.installed_list(), &registry);
    assert_eq!(out.code, Some(EXIT_BLOCKED), "{why}");
    assert_evil_never_ran(&sandbox, &why);
}

#[test]
fn malicious_dependency_of_install_is_blocked() {
    let registry = registry_with_all();
    let sandbox = sandbox!(registry);
    let manifest = PROJECT_JSON.replace(
        "\"private\": true,",
        "\"private\": true,\n  \"dependencies\": { \"app-js\": \"^1.0.0\" },",
    );
    std::fs::write(sandbox.project.join("package.json"), manifest).unwrap();
    let out = run(sandbox.guard(Policy::Block, &["install"]));
    let why = explain(&out, &sandbox.installed_list(), &registry);
    assert_eq!(out.code, Some(EXIT_BLOCKED), "{why}");
    assert_evil_never_ran(&sandbox, &why);
    assert!(
        sandbox.read("bun.lock").is_none(),
        "no lockfile written\n{why}"
    );

    // A lockfile made without running anything (bare `--lockfile-only` fetches no package
    // code): the frozen install of it is blocked too.
    let out = run(sandbox.bare(&["install", "--lockfile-only"]));
    assert_eq!(out.code, Some(0), "{out}");
    let lock = sandbox.read("bun.lock");
    assert!(lock.is_some());
    let out = run(sandbox.guard(Policy::Block, &["install", "--frozen-lockfile"]));
    let why = explain(&out, &sandbox.installed_list(), &registry);
    assert_eq!(out.code, Some(EXIT_BLOCKED), "{why}");
    assert_evil_never_ran(&sandbox, &why);
    assert_eq!(sandbox.read("bun.lock"), lock, "bun.lock untouched\n{why}");
}

#[test]
fn malicious_bunx_is_blocked_and_its_bin_never_runs() {
    let registry = registry_with_all();
    let sandbox = sandbox!(registry);
    let out = run(sandbox.guard_bunx(Policy::Block, &[NPM_EVIL_CLI.0]));
    let why = explain(&out, &sandbox.installed_list(), &registry);
    assert_eq!(out.code, Some(EXIT_BLOCKED), "{why}");
    assert!(!sandbox.dirs.marker_written(), "the bin ran\n{why}");
    let out = run(sandbox.guard(Policy::Block, &["x", NPM_EVIL_CLI.0]));
    let why = explain(&out, &sandbox.installed_list(), &registry);
    assert_eq!(out.code, Some(EXIT_BLOCKED), "{why}");
    assert!(!sandbox.dirs.marker_written(), "the bin ran\n{why}");
}

#[test]
fn other_commands_pass_through_and_unreadable_ones_are_refused() {
    let registry = registry_with_all();
    let sandbox = sandbox!(registry);
    let out = run(sandbox.guard(Policy::Block, &["--version"]));
    assert_eq!(out.code, Some(0), "{out}");
    let out = run(sandbox.guard(Policy::Block, &["add", "github:someone/thing"]));
    assert_eq!(out.code, Some(support::EXIT_UNJUDGED), "{out}");
    assert_eq!(registry.hits("/someone"), 0);
}
