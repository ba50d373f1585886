//! End-to-end tests of `cerebro pipx`: the real pipx (`$CEREBRO_TEST_PIPX`, else the one
//! `.ci/run` installs under `target/pipx-venv`, else `pipx` on PATH) run through the guard
//! against the PyPI simple index on loopback that `tests/guard_pip.rs` uses. pipx's home,
//! bin and man folders are the sandbox's; its shared pip is made beforehand from the Python
//! pipx runs under (offline: `python -m venv` with ensurepip), so nothing reaches the network.
//!
//! The `control_*` test runs bare pipx: it shows that the malicious sdist's build really runs
//! (and writes its marker) when nothing stops it.

mod support;

use std::path::{Path, PathBuf};

use support::fixtures::{self, PyDist};
use support::registry::Registry;
use support::{explain, run, Dirs, Policy, EXIT_BLOCKED, EXIT_UNJUDGED};

/// `pipx-marker-evil` 0.1.0, sdist only: its build backend writes the marker.
fn pipx_marker_evil() -> PyDist {
    fixtures::backend_marker_evil_sdist("pipx-marker-evil")
}

/// `clean-tool` 1.0.0: a wheel with a console script, on the clean tree (`beta-lib` →
/// `gamma-lib`).
fn clean_tool() -> PyDist {
    fixtures::wheel(
        "clean-tool",
        "1.0.0",
        &["beta-lib>=1.0"],
        &[
            (
                "clean_tool/__init__.py",
                "def main():\n    print(\"clean tool ran\")\n",
            ),
            (
                "clean_tool-1.0.0.dist-info/entry_points.txt",
                "[console_scripts]\nclean-tool = clean_tool:main\n",
            ),
        ],
    )
}

fn registry() -> Registry {
    let mut all = fixtures::py_clean_tree();
    all.push(clean_tool());
    all.push(pipx_marker_evil());
    Registry::with(all, vec![])
}

/// The real pipx, or `None` (the test is skipped) outside CI.
fn pipx_program() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("CEREBRO_TEST_PIPX").filter(|v| !v.is_empty()) {
        return Some(PathBuf::from(p));
    }
    let ci = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/pipx-venv/bin/pipx");
    if ci.is_file() {
        return Some(ci);
    }
    if support::require_tool("pipx") {
        return support::find_on_path("pipx");
    }
    None
}

/// A sandbox for pipx: its own HOME, PIPX_HOME, bin and man folders; the index on loopback.
struct PipxSandbox {
    dirs: Dirs,
    pipx: PathBuf,
    pipx_home: PathBuf,
    bin: PathBuf,
}

impl PipxSandbox {
    fn new(registry: &Registry) -> Option<PipxSandbox> {
        let pipx = pipx_program()?;
        let mut dirs = Dirs::new("pipx");
        dirs.add_path(pipx.parent().unwrap().to_owned());
        let pipx_home = dirs.root().join("pipx-home");
        let bin = dirs.root().join("pipx-bin");
        for (k, v) in [
            ("PIP_INDEX_URL", registry.pypi_url()),
            ("PIPX_HOME", pipx_home.to_string_lossy().into_owned()),
            ("PIPX_BIN_DIR", bin.to_string_lossy().into_owned()),
            (
                "PIPX_MAN_DIR",
                dirs.root().join("pipx-man").to_string_lossy().into_owned(),
            ),
            ("PIP_DISABLE_PIP_VERSION_CHECK", "1".to_owned()),
            ("PYTHONDONTWRITEBYTECODE", "1".to_owned()),
        ] {
            dirs.set_env(k, v);
        }
        // pipx's shared pip, made offline from the Python pipx runs under (else pipx would
        // fetch pip from the index, which the loopback registry does not serve).
        let python = pipx.parent().unwrap().join("python");
        let python = if python.is_file() {
            python
        } else {
            PathBuf::from("python3")
        };
        let mut venv = dirs.command(&python);
        venv.args(["-m", "venv"]).arg(pipx_home.join("shared"));
        let out = run(venv);
        assert_eq!(
            out.code,
            Some(0),
            "cannot make pipx's shared libraries: {out}"
        );
        Some(PipxSandbox {
            dirs,
            pipx,
            pipx_home,
            bin,
        })
    }

    fn guard(&self, policy: Policy, args: &[&str]) -> std::process::Command {
        let mut cmd = self.dirs.cerebro(&["pipx", "--"]);
        cmd.args(args)
            .env("CEREBRO_POLICY", policy.as_str())
            .current_dir(self.dirs.root());
        cmd
    }

    fn bare(&self, args: &[&str]) -> std::process::Command {
        let mut cmd = self.dirs.command(&self.pipx);
        cmd.args(args)
            .env("PIP_NO_CACHE_DIR", "1")
            .current_dir(self.dirs.root());
        cmd
    }

    fn venv_of(&self, package: &str) -> PathBuf {
        self.pipx_home.join("venvs").join(package)
    }
}

macro_rules! sandbox {
    ($registry:expr) => {
        match PipxSandbox::new(&$registry) {
            Some(sandbox) => sandbox,
            None => return,
        }
    };
}

// ---------------------------------------------------------------------------------------------

#[test]
fn control_bare_pipx_runs_the_malicious_sdists_build() {
    let evil = pipx_marker_evil();
    let list = vec![(
        evil.artifact.file.clone(),
        &evil.artifact.bytes[..],
        evil.intent,
    )];
    if let Err(text) = support::judge(&list, 0.95) {
        panic!("the pipx fixture is no longer judged as the tests assume:\n{text}");
    }
    let registry = registry();
    let sandbox = sandbox!(registry);
    let out = run(sandbox.bare(&["install", "pipx-marker-evil"]));
    assert!(
        sandbox.dirs.marker_written(),
        "bare pipx should build the sdist (and its backend write the marker): {out}"
    );
}

#[test]
fn pipx_install_blocks_a_malicious_sdist_before_its_build_runs() {
    let registry = registry();
    let sandbox = sandbox!(registry);
    let out = run(sandbox.guard(Policy::Block, &["install", "pipx-marker-evil"]));
    assert_eq!(
        out.code,
        Some(EXIT_BLOCKED),
        "{}",
        explain(&out, &[], &registry)
    );
    assert!(!sandbox.dirs.marker_written(), "the build ran: {out}");
    assert!(!sandbox.venv_of("pipx-marker-evil").exists(), "{out}");
}

#[test]
fn pipx_run_blocks_a_malicious_sdist_before_anything_runs() {
    let registry = registry();
    let sandbox = sandbox!(registry);
    let out = run(sandbox.guard(Policy::Block, &["run", "pipx-marker-evil", "--help"]));
    assert_eq!(
        out.code,
        Some(EXIT_BLOCKED),
        "{}",
        explain(&out, &[], &registry)
    );
    assert!(!sandbox.dirs.marker_written(), "the build ran: {out}");
}

#[test]
fn pipx_install_installs_a_clean_tool_through_the_guard() {
    let registry = registry();
    let sandbox = sandbox!(registry);
    let out = run(sandbox.guard(Policy::Block, &["install", "clean-tool"]));
    assert_eq!(out.code, Some(0), "{}", explain(&out, &[], &registry));
    assert!(sandbox.bin.join("clean-tool").exists(), "{out}");
    let mut tool = sandbox.dirs.command(sandbox.bin.join("clean-tool"));
    tool.current_dir(sandbox.dirs.root());
    let ran = run(tool);
    assert!(ran.stdout.contains("clean tool ran"), "{ran}");
    // What pipx recorded names no guard URL.
    let meta = sandbox.venv_of("clean-tool").join("pipx_metadata.json");
    let text = std::fs::read_to_string(&meta).unwrap();
    assert!(!text.contains("127.0.0.1"), "{text}");
}

#[test]
fn pipx_refuses_what_it_cannot_front_and_passes_others_through() {
    let registry = registry();
    let sandbox = sandbox!(registry);
    for args in [
        &[
            "install",
            "--index-url",
            "http://127.0.0.1:1/simple",
            "clean-tool",
        ][..],
        &["install", "--pip-args=--pre", "clean-tool"],
        &["install", "git+https://example.invalid/x.git"],
        &["upgrade", "clean-tool"],
    ] {
        let out = run(sandbox.guard(Policy::Block, args));
        assert_eq!(out.code, Some(EXIT_UNJUDGED), "{args:?}: {out}");
    }
    let out = run(sandbox.guard(Policy::Block, &["list", "--short"]));
    assert_eq!(out.code, Some(0), "{out}");
    assert!(!out.stderr.contains("cerebro"), "{out}");
}
