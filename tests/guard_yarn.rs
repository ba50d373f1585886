//! End-to-end tests of `cerebro yarn`: the real yarn 1 (classic), in a project of its own,
//! run through the guard against the npm registry on loopback that serves synthetic packages
//! (`tests/support`). Nothing reaches the network.
//!
//! The guard's contract for yarn: bare `yarn`, `install`, `add` and `upgrade` are judged
//! before yarn installs anything or runs a lifecycle script; exit 77 when blocked;
//! `package.json` and `yarn.lock` come out byte for byte as a bare yarn writes them against
//! the same registry; other commands run the real yarn as they are.

mod support;

use std::path::PathBuf;
use std::process::Command;

use support::fixtures::{self, NPM_EVIL};
use support::registry::Registry;
use support::{explain, require_tool, run, Dirs, Policy, EXIT_BLOCKED, EXIT_UNJUDGED};

const PROJECT_JSON: &str = r#"{
  "name": "e2e-yarn-project",
  "version": "1.0.0",
  "private": true,
  "license": "MIT",
  "scripts": {
    "x": "node -e \"console.log('script x ran')\""
  }
}
"#;

const CLEAN: [&str; 4] = ["alpha-js", "beta-js", "gamma-js", "@acme/util"];

/// A project for yarn: `.npmrc` naming the registry, yarn's cache of its own.
struct YarnSandbox {
    dirs: Dirs,
    project: PathBuf,
}

impl YarnSandbox {
    /// `None` when yarn is missing and the test should be skipped.
    fn new(registry: &Registry) -> Option<YarnSandbox> {
        if !require_tool("yarn") || !require_tool("node") {
            return None;
        }
        let mut dirs = Dirs::new("yarn");
        let project = dirs.root().join("project");
        std::fs::create_dir_all(&project).unwrap();
        std::fs::write(project.join("package.json"), PROJECT_JSON).unwrap();
        std::fs::write(
            project.join(".npmrc"),
            format!("registry={}\n", registry.npm_url()),
        )
        .unwrap();
        let cache = dirs.root().join("yarn-cache");
        dirs.set_env("YARN_CACHE_FOLDER", cache);
        Some(YarnSandbox { dirs, project })
    }

    fn guard(&self, policy: Policy, args: &[&str]) -> Command {
        let mut cmd = self.dirs.cerebro(&["yarn", "--json", "--"]);
        cmd.args(args)
            .env("CEREBRO_POLICY", policy.as_str())
            .current_dir(&self.project);
        cmd
    }

    fn bare(&self, args: &[&str]) -> Command {
        let mut cmd = self.dirs.command("yarn");
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
        (self.read("package.json"), self.read("yarn.lock"))
    }
}

macro_rules! sandbox {
    ($registry:expr) => {
        match YarnSandbox::new(&$registry) {
            Some(sandbox) => sandbox,
            None => return,
        }
    };
}

fn registry() -> Registry {
    let mut all = fixtures::npm_clean_tree();
    all.extend(fixtures::npm_app_with_evil());
    all.push(fixtures::npm_hook_clean());
    Registry::with(vec![], all)
}

fn text(bytes: &Option<Vec<u8>>) -> String {
    String::from_utf8_lossy(bytes.as_deref().unwrap_or_default()).into_owned()
}

fn assert_evil_never_ran(sandbox: &YarnSandbox, why: &str) {
    assert!(
        !sandbox.installed("app-js") && !sandbox.installed(NPM_EVIL.0),
        "app-js / {} must not be installed\n{why}",
        NPM_EVIL.0
    );
    assert!(
        !sandbox.dirs.marker_written(),
        "a malicious install script ran\n{why}"
    );
}

#[test]
fn control_bare_yarn_runs_install_scripts() {
    let registry = registry();
    let sandbox = sandbox!(registry);
    let out = run(sandbox.bare(&["add", "hook-js"]));
    let why = explain(&out, &sandbox.installed_list(), &registry);
    assert_eq!(
        out.code,
        Some(0),
        "bare yarn failed: the harness is broken\n{why}"
    );
    // Without the guard yarn runs install scripts, so the tests below, where the marker must
    // stay absent, test something.
    assert!(
        sandbox.dirs.marker_written(),
        "bare yarn did not run hook-js's postinstall\n{why}"
    );
}

#[test]
fn clean_add_installs_and_writes_what_bare_yarn_writes() {
    let registry = registry();
    let guarded = sandbox!(registry);
    let bare = sandbox!(registry);
    let out = run(guarded.guard(Policy::Block, &["add", "alpha-js"]));
    let why = explain(&out, &guarded.installed_list(), &registry);
    assert_eq!(out.code, Some(0), "a clean tree must install\n{why}");
    for name in CLEAN {
        assert!(guarded.installed(name), "{name}\n{why}");
    }
    let report = out.first_json().unwrap();
    assert_eq!(report["manager"], "yarn", "{report:#}");
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
        explain(&out, &bare.installed_list(), &registry)
    );
    let (g, b) = (guarded.manifests(), bare.manifests());
    assert!(g.1.is_some(), "yarn wrote no yarn.lock\n{why}");
    assert!(
        g.0 == b.0,
        "package.json differs from bare yarn's:\n{}\n--- bare ---\n{}",
        text(&g.0),
        text(&b.0)
    );
    assert!(
        g.1 == b.1,
        "yarn.lock differs from bare yarn's:\n{}\n--- bare ---\n{}",
        text(&g.1),
        text(&b.1)
    );

    // A later install from that lockfile is judged again and leaves it as it is.
    std::fs::remove_dir_all(guarded.project.join("node_modules")).unwrap();
    let out = run(guarded.guard(Policy::Block, &["install", "--frozen-lockfile"]));
    let why = explain(&out, &guarded.installed_list(), &registry);
    assert_eq!(out.code, Some(0), "{why}");
    assert!(guarded.installed("gamma-js"), "{why}");
    assert!(guarded.manifests() == b, "the lockfile changed\n{why}");

    // `upgrade` re-resolves through the guard: the same versions, the same files.
    let out = run(guarded.guard(Policy::Block, &["upgrade"]));
    let why = explain(&out, &guarded.installed_list(), &registry);
    assert_eq!(out.code, Some(0), "{why}");
    assert!(
        guarded.manifests() == b,
        "upgrade changed the manifests:\n{}\n{why}",
        text(&guarded.manifests().1)
    );
}

#[test]
fn malicious_add_is_blocked_before_its_install_script() {
    let registry = registry();
    let sandbox = sandbox!(registry);
    let before = sandbox.manifests();
    let out = run(sandbox.guard(Policy::Block, &["add", "app-js"]));
    let why = explain(&out, &sandbox.installed_list(), &registry);
    assert_eq!(out.code, Some(EXIT_BLOCKED), "{why}");
    assert_evil_never_ran(&sandbox, &why);
    assert!(sandbox.manifests() == before, "the project changed\n{why}");
    assert!(
        out.stderr.contains(NPM_EVIL.0),
        "the blocked package is named\n{why}"
    );
}

#[test]
fn malicious_dependency_in_the_manifest_is_blocked_on_install() {
    let registry = registry();
    let sandbox = sandbox!(registry);
    let manifest = PROJECT_JSON.replacen(
        "\"private\": true,",
        "\"private\": true,\n  \"dependencies\": { \"app-js\": \"^1.0.0\" },",
        1,
    );
    std::fs::write(sandbox.project.join("package.json"), &manifest).unwrap();
    for args in [&[][..], &["install"][..]] {
        let out = run(sandbox.guard(Policy::Block, args));
        let why = explain(&out, &sandbox.installed_list(), &registry);
        assert_eq!(out.code, Some(EXIT_BLOCKED), "{args:?}\n{why}");
        assert_evil_never_ran(&sandbox, &why);
        assert!(sandbox.read("yarn.lock").is_none(), "{why}");
    }
}

#[test]
fn other_commands_run_the_real_yarn() {
    let registry = registry();
    let sandbox = sandbox!(registry);
    let out = run(sandbox.guard(Policy::Block, &["run", "x"]));
    assert_eq!(out.code, Some(0), "{out}");
    assert!(out.stdout.contains("script x ran"), "{out}");
    assert_eq!(registry.total_hits(), 0, "nothing was fetched");

    // yarn 2+ (berry) is not read: refused, not installed unjudged.
    std::fs::write(sandbox.project.join(".yarnrc.yml"), "nodeLinker: pnp\n").unwrap();
    let out = run(sandbox.guard(Policy::Block, &["add", "alpha-js"]));
    assert_eq!(out.code, Some(EXIT_UNJUDGED), "{out}");
    assert!(out.stderr.contains("berry"), "{out}");
    assert!(!sandbox.installed("alpha-js"), "{out}");
}
