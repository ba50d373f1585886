//! End-to-end tests of `cerebro uv` and `cerebro uvx`: the real uv (`$CEREBRO_TEST_UV`, else
//! the one `.ci/run` installs under `target/uv-venv`, else `uv` on PATH) run through the guard
//! against the PyPI simple index on loopback that `tests/guard_pip.rs` uses. Nothing reaches
//! the network: uv's cache, config and Python downloads are the sandbox's (off).
//!
//! The `control_*` tests run bare uv: they show that the malicious sdist's build really runs
//! (and writes its marker) when nothing stops it, and what uv writes in `uv.lock` and
//! `pyproject.toml` against the same upstream, which the guarded runs must match byte for byte.

mod support;

use std::path::{Path, PathBuf};

use support::fixtures::{self, PyDist};
use support::registry::Registry;
use support::{explain, run, Dirs, Outcome, Policy, EXIT_BLOCKED, EXIT_UNJUDGED};

const PROJECT: &str = "[project]\nname = \"demo\"\nversion = \"0.1.0\"\nrequires-python = \">=3.8\"\ndependencies = []\n";

/// `uv-marker-evil` 0.1.0, sdist only: its build backend writes the marker.
fn uv_marker_evil() -> PyDist {
    fixtures::backend_marker_evil_sdist("uv-marker-evil")
}

fn registry() -> Registry {
    let mut all = fixtures::py_clean_tree();
    all.extend(fixtures::py_app_with_evil());
    all.push(uv_marker_evil());
    Registry::with(all, vec![])
}

/// The real uv, or `None` (the test is skipped) outside CI.
fn uv_program() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("CEREBRO_TEST_UV").filter(|v| !v.is_empty()) {
        return Some(PathBuf::from(p));
    }
    let ci = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/uv-venv/bin/uv");
    if ci.is_file() {
        return Some(ci);
    }
    if support::require_tool("uv") {
        return support::find_on_path("uv");
    }
    None
}

/// A sandbox for uv: its own HOME, cache, config; the index on loopback; a project folder.
struct UvSandbox {
    dirs: Dirs,
    uv: PathBuf,
    project: PathBuf,
    index: String,
}

impl UvSandbox {
    fn new(registry: &Registry) -> Option<UvSandbox> {
        let uv = uv_program()?;
        let mut dirs = Dirs::new("uv");
        dirs.add_path(uv.parent().unwrap().to_owned());
        let uv_cache = dirs.root().join("uv-cache");
        let index = registry.pypi_url();
        for (k, v) in [
            ("UV_INDEX_URL", index.clone()),
            ("UV_CACHE_DIR", uv_cache.to_string_lossy().into_owned()),
            ("UV_PYTHON_DOWNLOADS", "never".to_owned()),
            ("UV_NO_PROGRESS", "1".to_owned()),
            ("UV_HTTP_TIMEOUT", "60".to_owned()),
            ("PYTHONDONTWRITEBYTECODE", "1".to_owned()),
        ] {
            dirs.set_env(k, v);
        }
        let project = dirs.root().join("project");
        std::fs::create_dir_all(&project).unwrap();
        std::fs::write(project.join("pyproject.toml"), PROJECT).unwrap();
        Some(UvSandbox {
            dirs,
            uv,
            project,
            index,
        })
    }

    /// `cerebro uv -- <args>` in the project folder under `policy`.
    fn guard(&self, policy: Policy, args: &[&str]) -> std::process::Command {
        let mut cmd = self.dirs.cerebro(&["uv", "--"]);
        cmd.args(args)
            .env("CEREBRO_POLICY", policy.as_str())
            .current_dir(&self.project);
        cmd
    }

    /// Bare uv in `dir`.
    fn bare_in(&self, dir: &Path, args: &[&str]) -> std::process::Command {
        let mut cmd = self.dirs.command(&self.uv);
        cmd.args(args).current_dir(dir);
        cmd
    }

    /// A second project folder, for a bare run to compare with.
    fn twin(&self, name: &str) -> PathBuf {
        let dir = self.dirs.root().join(name);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("pyproject.toml"), PROJECT).unwrap();
        dir
    }

    /// A virtual environment for `uv pip install` (made by uv, offline).
    fn venv(&self) -> PathBuf {
        let venv = self.dirs.root().join("venv");
        let out = run(self.bare_in(self.dirs.root(), &["venv", "-q", "venv"]));
        assert_eq!(out.code, Some(0), "{out}");
        venv
    }

    fn installed_in(&self, venv: &Path, name: &str) -> bool {
        let lib = venv.join("lib");
        let prefix = format!("{}-", name.replace('-', "_"));
        std::fs::read_dir(&lib)
            .into_iter()
            .flatten()
            .filter_map(Result::ok)
            .map(|e| e.path().join("site-packages"))
            .filter_map(|sp| std::fs::read_dir(sp).ok())
            .flatten()
            .filter_map(Result::ok)
            .filter_map(|e| e.file_name().into_string().ok())
            .any(|f| f.starts_with(&prefix) && f.ends_with(".dist-info"))
    }

    fn read(&self, file: &str) -> Option<Vec<u8>> {
        std::fs::read(self.project.join(file)).ok()
    }
}

macro_rules! sandbox {
    ($registry:expr) => {
        match UvSandbox::new(&$registry) {
            Some(sandbox) => sandbox,
            None => return,
        }
    };
}

fn no_loopback_of_the_guard(text: &[u8], registry: &Registry) {
    let text = String::from_utf8_lossy(text);
    for line in text.lines() {
        if line.contains("127.0.0.1") {
            assert!(
                line.contains(&format!("{}/", registry.host_port())),
                "a URL other than the upstream's: {line}"
            );
        }
    }
}

fn stderr_has(out: &Outcome, what: &str) -> bool {
    out.stderr.to_lowercase().contains(&what.to_lowercase())
}

// ---------------------------------------------------------------------------------------------

#[test]
fn uv_fixtures_are_judged_as_intended() {
    let evil = uv_marker_evil();
    let list = vec![(
        evil.artifact.file.clone(),
        &evil.artifact.bytes[..],
        evil.intent,
    )];
    if let Err(text) = support::judge(&list, 0.95) {
        panic!("the uv fixture is no longer judged as the tests assume:\n{text}");
    }
}

#[test]
fn control_bare_uv_runs_the_malicious_sdists_build() {
    let registry = registry();
    let sandbox = sandbox!(registry);
    let venv = sandbox.venv();
    let python = venv.join("bin/python");
    let out = run(sandbox.bare_in(
        sandbox.dirs.root(),
        &[
            "pip",
            "install",
            "--python",
            python.to_str().unwrap(),
            "uv-marker-evil",
        ],
    ));
    assert!(
        sandbox.dirs.marker_written(),
        "bare uv should build the sdist (and its backend write the marker): {out}"
    );
}

#[test]
fn uv_pip_install_blocks_a_malicious_sdist_before_its_build_runs() {
    let registry = registry();
    let sandbox = sandbox!(registry);
    let venv = sandbox.venv();
    let python = venv.join("bin/python");
    let out = run(sandbox.guard(
        Policy::Block,
        &[
            "pip",
            "install",
            "--python",
            python.to_str().unwrap(),
            "uv-marker-evil",
        ],
    ));
    assert_eq!(
        out.code,
        Some(EXIT_BLOCKED),
        "{}",
        explain(&out, &[], &registry)
    );
    assert!(!sandbox.dirs.marker_written(), "the build ran: {out}");
    assert!(!sandbox.installed_in(&venv, "uv-marker-evil"));
    assert!(stderr_has(&out, "uv-marker-evil"), "{out}");
}

#[test]
fn uv_pip_install_installs_a_clean_tree_through_the_guard() {
    let registry = registry();
    let sandbox = sandbox!(registry);
    let venv = sandbox.venv();
    let python = venv.join("bin/python");
    let out = run(sandbox.guard(
        Policy::Block,
        &[
            "pip",
            "install",
            "--python",
            python.to_str().unwrap(),
            "alpha-lib",
        ],
    ));
    assert_eq!(out.code, Some(0), "{}", explain(&out, &[], &registry));
    for name in ["alpha-lib", "beta-lib", "gamma-lib"] {
        assert!(sandbox.installed_in(&venv, name), "{name}: {out}");
    }
    assert!(stderr_has(&out, "scanned"), "{out}");
}

#[test]
fn uv_pip_install_blocks_a_malicious_wheel_in_the_tree() {
    let registry = registry();
    let sandbox = sandbox!(registry);
    let venv = sandbox.venv();
    let python = venv.join("bin/python");
    let out = run(sandbox.guard(
        Policy::Block,
        &[
            "pip",
            "install",
            "--python",
            python.to_str().unwrap(),
            "app-core",
        ],
    ));
    assert_eq!(
        out.code,
        Some(EXIT_BLOCKED),
        "{}",
        explain(&out, &[], &registry)
    );
    assert!(!sandbox.installed_in(&venv, "evil-pkg"));
    assert!(!sandbox.installed_in(&venv, "app-core"));
}

#[test]
fn uv_add_blocks_a_malicious_sdist_and_leaves_the_project_as_it_was() {
    let registry = registry();
    let sandbox = sandbox!(registry);
    let out = run(sandbox.guard(Policy::Block, &["add", "uv-marker-evil"]));
    assert_eq!(
        out.code,
        Some(EXIT_BLOCKED),
        "{}",
        explain(&out, &[], &registry)
    );
    assert!(!sandbox.dirs.marker_written(), "the build ran: {out}");
    assert_eq!(sandbox.read("pyproject.toml").unwrap(), PROJECT.as_bytes());
    if let Some(lock) = sandbox.read("uv.lock") {
        no_loopback_of_the_guard(&lock, &registry);
    }
}

/// `uv add` guarded writes what bare uv writes, through either channel for the index
/// (`UV_INDEX_URL`: not recorded; `UV_DEFAULT_INDEX`: recorded in pyproject.toml).
#[test]
fn uv_add_writes_the_lock_and_pyproject_bare_uv_writes() {
    let registry = registry();
    for var in ["UV_INDEX_URL", "UV_DEFAULT_INDEX"] {
        let mut sandbox = sandbox!(registry);
        if var == "UV_DEFAULT_INDEX" {
            let index = sandbox.index.clone();
            sandbox.dirs.set_env("UV_INDEX_URL", "");
            sandbox.dirs.set_env("UV_DEFAULT_INDEX", index);
        }
        let twin = sandbox.twin("bare");
        let bare = run(sandbox.bare_in(&twin, &["add", "alpha-lib"]));
        assert_eq!(bare.code, Some(0), "{bare}");
        let out = run(sandbox.guard(Policy::Block, &["add", "alpha-lib"]));
        assert_eq!(
            out.code,
            Some(0),
            "{var}: {}",
            explain(&out, &[], &registry)
        );
        let lock = String::from_utf8(sandbox.read("uv.lock").unwrap()).unwrap();
        assert!(
            lock.contains("upload-time = "),
            "the guard's JSON page passes PEP 700 upload times on: {lock}"
        );
        for file in ["uv.lock", "pyproject.toml"] {
            let guarded = sandbox.read(file).unwrap();
            let expected = std::fs::read(twin.join(file)).unwrap();
            assert_eq!(
                String::from_utf8_lossy(&guarded),
                String::from_utf8_lossy(&expected),
                "{var}: {file} differs from bare uv's"
            );
        }
        // And a later guarded sync from that lock leaves it as it is.
        let before = sandbox.read("uv.lock").unwrap();
        std::fs::remove_dir_all(sandbox.project.join(".venv")).unwrap();
        let out = run(sandbox.guard(Policy::Block, &["sync", "--locked"]));
        assert_eq!(
            out.code,
            Some(0),
            "{var}: {}",
            explain(&out, &[], &registry)
        );
        assert_eq!(sandbox.read("uv.lock").unwrap(), before);
        if var == "UV_DEFAULT_INDEX" {
            // The index now comes from pyproject.toml's [[tool.uv.index]] alone.
            std::fs::remove_dir_all(sandbox.project.join(".venv")).unwrap();
            let mut cmd = sandbox.guard(Policy::Block, &["sync", "--locked"]);
            cmd.env_remove("UV_DEFAULT_INDEX")
                .env_remove("UV_INDEX_URL");
            let out = run(cmd);
            assert_eq!(out.code, Some(0), "{}", explain(&out, &[], &registry));
            assert!(stderr_has(&out, "scanned"), "{out}");
            assert_eq!(sandbox.read("uv.lock").unwrap(), before);
        }
    }
}

/// A lock pinning a malicious wheel (written by bare uv): `uv sync --frozen`, which reads
/// the file URLs straight from the lock, is stopped, and the lock stays byte for byte.
#[test]
fn uv_sync_frozen_judges_the_pinned_artifacts() {
    let registry = registry();
    let sandbox = sandbox!(registry);
    let bare = run(sandbox.bare_in(&sandbox.project, &["add", "--no-sync", "app-core"]));
    assert_eq!(bare.code, Some(0), "{bare}");
    let lock = sandbox.read("uv.lock").unwrap();
    let pyproject = sandbox.read("pyproject.toml").unwrap();
    let out = run(sandbox.guard(Policy::Block, &["sync", "--frozen"]));
    assert_eq!(
        out.code,
        Some(EXIT_BLOCKED),
        "{}",
        explain(&out, &[], &registry)
    );
    assert!(stderr_has(&out, "evil-pkg"), "{out}");
    assert_eq!(sandbox.read("uv.lock").unwrap(), lock);
    assert_eq!(sandbox.read("pyproject.toml").unwrap(), pyproject);
    let venv = sandbox.project.join(".venv");
    assert!(!sandbox.installed_in(&venv, "evil-pkg"));
}

#[test]
fn uvx_blocks_a_malicious_tool_before_its_build_runs() {
    let registry = registry();
    let sandbox = sandbox!(registry);
    let mut cmd = sandbox.dirs.cerebro(&["uvx", "--"]);
    cmd.args(["--from", "uv-marker-evil", "python", "-c", "print(1)"])
        .env("CEREBRO_POLICY", "block")
        .current_dir(sandbox.dirs.root());
    let out = run(cmd);
    assert_eq!(
        out.code,
        Some(EXIT_BLOCKED),
        "{}",
        explain(&out, &[], &registry)
    );
    assert!(!sandbox.dirs.marker_written(), "the build ran: {out}");
}

#[test]
fn uv_refuses_what_it_cannot_front() {
    let registry = registry();
    let sandbox = sandbox!(registry);
    for args in [
        &[
            "pip",
            "install",
            "--extra-index-url",
            "http://127.0.0.1:9/simple",
            "alpha-lib",
        ][..],
        &[
            "add",
            "--index",
            "other=http://127.0.0.1:9/simple",
            "alpha-lib",
        ],
        &["pip", "install", "--find-links", "./wheels", "alpha-lib"],
    ] {
        let out = run(sandbox.guard(Policy::Block, args));
        assert_eq!(out.code, Some(EXIT_UNJUDGED), "{args:?}: {out}");
        assert!(stderr_has(&out, "cannot guard"), "{out}");
    }
    assert_eq!(registry.total_hits(), 0, "nothing was fetched");
    assert_eq!(sandbox.read("pyproject.toml").unwrap(), PROJECT.as_bytes());
}

#[test]
fn uv_pip_install_from_a_requirement_file_blocks_a_malicious_sdist() {
    let registry = registry();
    let sandbox = sandbox!(registry);
    let venv = sandbox.venv();
    let python = venv.join("bin/python");
    std::fs::write(
        sandbox.project.join("requirements.txt"),
        "alpha-lib\nuv-marker-evil==0.1.0\n",
    )
    .unwrap();
    let out = run(sandbox.guard(
        Policy::Block,
        &[
            "pip",
            "install",
            "--python",
            python.to_str().unwrap(),
            "-r",
            "requirements.txt",
        ],
    ));
    assert_eq!(
        out.code,
        Some(EXIT_BLOCKED),
        "{}",
        explain(&out, &[], &registry)
    );
    assert!(!sandbox.dirs.marker_written(), "the build ran: {out}");
    assert!(
        !sandbox.installed_in(&venv, "alpha-lib"),
        "nothing is installed"
    );
    // An index option inside the file would send uv elsewhere: refused.
    std::fs::write(
        sandbox.project.join("requirements.txt"),
        "--extra-index-url http://127.0.0.1:9/simple\nalpha-lib\n",
    )
    .unwrap();
    let out = run(sandbox.guard(
        Policy::Block,
        &[
            "pip",
            "install",
            "--python",
            python.to_str().unwrap(),
            "-r",
            "requirements.txt",
        ],
    ));
    assert_eq!(out.code, Some(EXIT_UNJUDGED), "{out}");
}

#[test]
fn uv_pip_install_of_a_local_sdist_judges_it_before_its_build() {
    let registry = registry();
    let sandbox = sandbox!(registry);
    let venv = sandbox.venv();
    let python = venv.join("bin/python");
    let evil = uv_marker_evil();
    let file = sandbox.project.join(&evil.artifact.file);
    std::fs::write(&file, &evil.artifact.bytes).unwrap();
    let out = run(sandbox.guard(
        Policy::Block,
        &[
            "pip",
            "install",
            "--python",
            python.to_str().unwrap(),
            file.to_str().unwrap(),
        ],
    ));
    assert_eq!(
        out.code,
        Some(EXIT_BLOCKED),
        "{}",
        explain(&out, &[], &registry)
    );
    assert!(!sandbox.dirs.marker_written(), "the build ran: {out}");
    assert!(!sandbox.installed_in(&venv, "uv-marker-evil"));
}

/// `uv lock` guarded writes the lock bare uv writes, and `uv lock --locked` agrees with it.
#[test]
fn uv_lock_writes_the_lock_bare_uv_writes() {
    let registry = registry();
    let sandbox = sandbox!(registry);
    let with_deps = PROJECT.replace("dependencies = []", "dependencies = [\"alpha-lib\"]");
    std::fs::write(sandbox.project.join("pyproject.toml"), &with_deps).unwrap();
    let twin = sandbox.twin("bare");
    std::fs::write(twin.join("pyproject.toml"), &with_deps).unwrap();
    let bare = run(sandbox.bare_in(&twin, &["lock"]));
    assert_eq!(bare.code, Some(0), "{bare}");
    let out = run(sandbox.guard(Policy::Block, &["lock"]));
    assert_eq!(out.code, Some(0), "{}", explain(&out, &[], &registry));
    let expected = std::fs::read(twin.join("uv.lock")).unwrap();
    assert_eq!(
        String::from_utf8_lossy(&sandbox.read("uv.lock").unwrap()),
        String::from_utf8_lossy(&expected)
    );
    let out = run(sandbox.guard(Policy::Block, &["lock", "--locked"]));
    assert_eq!(out.code, Some(0), "{}", explain(&out, &[], &registry));
    assert_eq!(sandbox.read("uv.lock").unwrap(), expected);
}

/// A lock from another index than the one uv now reads is refused, and left as it is.
#[test]
fn uv_sync_refuses_a_lock_from_another_index() {
    let registry = registry();
    let sandbox = sandbox!(registry);
    let bare = run(sandbox.bare_in(&sandbox.project, &["add", "--no-sync", "alpha-lib"]));
    assert_eq!(bare.code, Some(0), "{bare}");
    let lock = sandbox.read("uv.lock").unwrap();
    let other = Registry::with(fixtures::py_clean_tree(), vec![]);
    let mut cmd = sandbox.guard(Policy::Block, &["sync", "--frozen"]);
    cmd.env("UV_INDEX_URL", other.pypi_url());
    let out = run(cmd);
    assert_eq!(out.code, Some(EXIT_UNJUDGED), "{out}");
    assert_eq!(sandbox.read("uv.lock").unwrap(), lock);
    assert_eq!(other.total_hits(), 0);
}

#[test]
fn uv_tool_install_blocks_a_malicious_package() {
    let registry = registry();
    let sandbox = sandbox!(registry);
    let tools = sandbox.dirs.root().join("tools");
    let mut cmd = sandbox.guard(Policy::Block, &["tool", "install", "evil-pkg"]);
    cmd.env("UV_TOOL_DIR", &tools)
        .env("UV_TOOL_BIN_DIR", tools.join("bin"));
    let out = run(cmd);
    assert_eq!(
        out.code,
        Some(EXIT_BLOCKED),
        "{}",
        explain(&out, &[], &registry)
    );
    assert!(!tools.join("evil-pkg").exists(), "{out}");
}

/// Commands that fetch no package go straight to the real uv: no guard index, no report.
#[test]
fn other_uv_commands_pass_straight_through() {
    let registry = registry();
    let sandbox = sandbox!(registry);
    let out = run(sandbox.guard(Policy::Block, &["--version"]));
    assert_eq!(out.code, Some(0), "{out}");
    assert!(out.stdout.starts_with("uv "), "{out}");
    let out = run(sandbox.guard(Policy::Block, &["pip", "list", "--help"]));
    assert_eq!(out.code, Some(0), "{out}");
    assert!(!stderr_has(&out, "scanned"), "{out}");
    assert_eq!(registry.total_hits(), 0);
}

/// `--json` puts the report on stdout, with `"manager":"uv"`.
#[test]
fn uv_json_report_names_uv_and_the_blocked_package() {
    let registry = registry();
    let sandbox = sandbox!(registry);
    let mut cmd = sandbox.dirs.cerebro(&["uv", "--json", "--"]);
    cmd.args(["add", "app-core"])
        .env("CEREBRO_POLICY", "block")
        .current_dir(&sandbox.project);
    let out = run(cmd);
    assert_eq!(
        out.code,
        Some(EXIT_BLOCKED),
        "{}",
        explain(&out, &[], &registry)
    );
    let report = out.first_json().unwrap_or_else(|e| panic!("{e}: {out}"));
    assert_eq!(report["manager"], "uv", "{report}");
    assert_eq!(report["decision"], "blocked", "{report}");
    let evil = support::report_entry(&report, "evil-pkg").expect("evil-pkg in the report");
    assert_eq!(evil["action"], "blocked", "{report}");
    assert_eq!(sandbox.read("pyproject.toml").unwrap(), PROJECT.as_bytes());
}

/// `uv run --with` fetches through the guard: a malicious package is refused before its
/// build runs, and the command never starts.
#[test]
fn uv_run_with_a_malicious_package_is_blocked_before_anything_runs() {
    let registry = registry();
    let sandbox = sandbox!(registry);
    let ran = sandbox.dirs.root().join("command-ran");
    let code = format!("open({:?}, 'w').write('ran')", ran.to_str().unwrap());
    let out = run(sandbox.guard(
        Policy::Block,
        &["run", "--with", "uv-marker-evil", "python", "-c", &code],
    ));
    assert_eq!(
        out.code,
        Some(EXIT_BLOCKED),
        "{}",
        explain(&out, &[], &registry)
    );
    assert!(!sandbox.dirs.marker_written(), "the build ran: {out}");
    assert!(!ran.exists(), "the command ran: {out}");
}

/// `uv run` syncs the project through the guard, runs the command, and leaves `uv.lock` as
/// bare uv wrote it.
#[test]
fn uv_run_syncs_the_project_through_the_guard_and_runs_the_command() {
    let registry = registry();
    let sandbox = sandbox!(registry);
    let bare = run(sandbox.bare_in(&sandbox.project, &["add", "--no-sync", "alpha-lib"]));
    assert_eq!(bare.code, Some(0), "{bare}");
    let lock = sandbox.read("uv.lock").unwrap();
    let out = run(sandbox.guard(
        Policy::Block,
        &[
            "run",
            "--locked",
            "python",
            "-c",
            "import alpha_lib; print('imported')",
        ],
    ));
    assert_eq!(out.code, Some(0), "{}", explain(&out, &[], &registry));
    assert!(out.stdout.contains("imported"), "{out}");
    assert!(stderr_has(&out, "scanned"), "{out}");
    assert_eq!(sandbox.read("uv.lock").unwrap(), lock);
}
