//! End-to-end tests of `cerebro poetry`: the real Poetry (`$CEREBRO_TEST_POETRY`, else the
//! one `.ci/run` installs under `target/poetry-venv`, else `poetry` on PATH) run through the
//! guard against the PyPI simple index on loopback that `tests/guard_pip.rs` uses, declared
//! as the project's primary source (so Poetry's implicit PyPI is not used). Nothing reaches
//! the network: Poetry's cache, config and data folders are the sandbox's, its virtual
//! environment is the project's `.venv` (made offline, from the Python Poetry runs on).
//!
//! The `control_*` test runs bare Poetry: it shows that the malicious sdist's build really
//! runs (and writes its marker) when nothing stops it. Bare runs in a twin project also give
//! what Poetry writes into `poetry.lock` and `pyproject.toml` against the same upstream,
//! which the guarded runs must match byte for byte.

mod support;

use std::path::{Path, PathBuf};

use support::fixtures::{self, PyDist};
use support::registry::Registry;
use support::{explain, run, Dirs, Outcome, Policy, EXIT_BLOCKED, EXIT_UNJUDGED};

/// `poetry-marker-evil` 0.1.0, sdist only: its build backend writes the marker.
fn poetry_marker_evil() -> PyDist {
    fixtures::backend_marker_evil_sdist("poetry-marker-evil")
}

fn registry() -> Registry {
    let mut all = fixtures::py_clean_tree();
    all.extend(fixtures::py_app_with_evil());
    all.push(poetry_marker_evil());
    Registry::with(all, vec![])
}

/// A project with no dependencies, the loopback index its only (primary) source.
fn project_text(index: &str) -> String {
    format!(
        "[project]\nname = \"demo\"\nversion = \"0.1.0\"\nrequires-python = \">=3.9\"\n\
         dependencies = []\n\n[tool.poetry]\npackage-mode = false\n\n\
         [[tool.poetry.source]]\nname = \"loopback\"\nurl = \"{index}\"\npriority = \"primary\"\n"
    )
}

/// The real Poetry, or `None` (the test is skipped) outside CI.
fn poetry_program() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("CEREBRO_TEST_POETRY").filter(|v| !v.is_empty()) {
        return Some(PathBuf::from(p));
    }
    let ci = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/poetry-venv/bin/poetry");
    if ci.is_file() {
        return Some(ci);
    }
    if support::require_tool("poetry") {
        return support::find_on_path("poetry");
    }
    None
}

/// A sandbox for Poetry: its own HOME, cache, config and data folders, and a project folder.
struct PoetrySandbox {
    dirs: Dirs,
    poetry: PathBuf,
    project: PathBuf,
    text: String,
}

impl PoetrySandbox {
    fn new(registry: &Registry) -> Option<PoetrySandbox> {
        PoetrySandbox::with_project(project_text(&registry.pypi_url()))
    }

    /// A sandbox whose project's `pyproject.toml` is `text`.
    fn with_project(text: String) -> Option<PoetrySandbox> {
        let poetry = poetry_program()?;
        let mut dirs = Dirs::new("poetry");
        dirs.add_path(poetry.parent().unwrap().to_owned());
        let root = dirs.root().to_owned();
        for (k, v) in [
            (
                "POETRY_CACHE_DIR",
                root.join("poetry-cache").into_os_string(),
            ),
            (
                "POETRY_CONFIG_DIR",
                root.join("poetry-config").into_os_string(),
            ),
            ("POETRY_DATA_DIR", root.join("poetry-data").into_os_string()),
            ("POETRY_VIRTUALENVS_IN_PROJECT", "true".into()),
            ("POETRY_NO_INTERACTION", "1".into()),
            (
                "PYTHON_KEYRING_BACKEND",
                "keyring.backends.null.Keyring".into(),
            ),
            ("PYTHONDONTWRITEBYTECODE", "1".into()),
        ] {
            dirs.set_env(k, v);
        }
        let project = root.join("project");
        std::fs::create_dir_all(&project).unwrap();
        std::fs::write(project.join("pyproject.toml"), &text).unwrap();
        Some(PoetrySandbox {
            dirs,
            poetry,
            project,
            text,
        })
    }

    /// `cerebro poetry -- <args>` in the project folder under `policy`.
    fn guard(&self, policy: Policy, args: &[&str]) -> std::process::Command {
        let mut cmd = self.dirs.cerebro(&["poetry", "--"]);
        cmd.args(args)
            .env("CEREBRO_POLICY", policy.as_str())
            .current_dir(&self.project);
        cmd
    }

    /// Bare Poetry in `dir`.
    fn bare_in(&self, dir: &Path, args: &[&str]) -> std::process::Command {
        let mut cmd = self.dirs.command(&self.poetry);
        cmd.args(args).current_dir(dir);
        cmd
    }

    /// A second project folder with the same pyproject.toml, for a bare run to compare with.
    fn twin(&self, name: &str) -> PathBuf {
        let dir = self.dirs.root().join(name);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("pyproject.toml"), &self.text).unwrap();
        dir
    }

    fn installed(&self, name: &str) -> bool {
        installed_in(&self.project, name)
    }

    fn read(&self, file: &str) -> Option<Vec<u8>> {
        std::fs::read(self.project.join(file)).ok()
    }
}

/// Whether the project's `.venv` has `name` installed.
fn installed_in(project: &Path, name: &str) -> bool {
    let lib = project.join(".venv/lib");
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

/// The project with no source: Poetry reads its implicit PyPI.
const PYPI_PROJECT: &str = "[project]\nname = \"demo\"\nversion = \"0.1.0\"\n\
    requires-python = \">=3.9\"\ndependencies = []\n\n[tool.poetry]\npackage-mode = false\n";

/// Bare Poetry with its PyPI at `base` (Poetry has no setting for it: the URL is the default
/// of `PyPiRepository`, patched here), run by the Python its script names.
fn bare_poetry_with_pypi(sandbox: &PoetrySandbox, base: &str, dir: &Path) -> std::process::Command {
    let script = std::fs::read_to_string(&sandbox.poetry).unwrap();
    let python = script
        .lines()
        .next()
        .and_then(|l| l.strip_prefix("#!"))
        .and_then(|l| l.split_whitespace().next())
        .expect("the poetry script names its Python")
        .to_owned();
    let code = "import sys\n\
        from poetry.repositories.pypi_repository import PyPiRepository\n\
        PyPiRepository.__init__.__defaults__ = (sys.argv.pop(1),)\n\
        sys.argv[0] = 'poetry'\n\
        from poetry.console.application import main\n\
        sys.exit(main())\n";
    let mut cmd = sandbox.dirs.command(python);
    cmd.args(["-c", code, &format!("{base}/")]).current_dir(dir);
    cmd
}

macro_rules! sandbox {
    ($registry:expr) => {
        match PoetrySandbox::new(&$registry) {
            Some(sandbox) => sandbox,
            None => return,
        }
    };
}

fn stderr_has(out: &Outcome, what: &str) -> bool {
    out.stderr.to_lowercase().contains(&what.to_lowercase())
}

/// The project's files are as they were, and nothing of the tree is installed.
fn untouched(sandbox: &PoetrySandbox, out: &Outcome, names: &[&str]) {
    assert_eq!(
        String::from_utf8(sandbox.read("pyproject.toml").unwrap()).unwrap(),
        sandbox.text,
        "pyproject.toml changed: {out}"
    );
    assert!(
        sandbox.read("poetry.lock").is_none(),
        "a lock was written: {out}"
    );
    for name in names {
        assert!(!sandbox.installed(name), "{name} was installed: {out}");
    }
}

// ---------------------------------------------------------------------------------------------

#[test]
fn poetry_fixtures_are_judged_as_intended() {
    let evil = poetry_marker_evil();
    let list = vec![(
        evil.artifact.file.clone(),
        &evil.artifact.bytes[..],
        evil.intent,
    )];
    if let Err(text) = support::judge(&list, 0.95) {
        panic!("the poetry fixture is no longer judged as the tests assume:\n{text}");
    }
}

#[test]
fn control_bare_poetry_builds_the_malicious_sdist_while_locking() {
    let registry = registry();
    let sandbox = sandbox!(registry);
    let twin = sandbox.twin("bare");
    let out = run(sandbox.bare_in(&twin, &["add", "--lock", "poetry-marker-evil"]));
    assert!(
        sandbox.dirs.marker_written(),
        "bare poetry should build the sdist to read its metadata (and its backend write \
         the marker): {out}"
    );
}

#[test]
fn poetry_add_blocks_a_malicious_sdist_before_its_build_runs() {
    let registry = registry();
    let sandbox = sandbox!(registry);
    // `--lock` too: resolving alone would build it.
    for args in [
        &["add", "poetry-marker-evil"][..],
        &["add", "--lock", "poetry-marker-evil"],
    ] {
        let out = run(sandbox.guard(Policy::Block, args));
        assert_eq!(
            out.code,
            Some(EXIT_BLOCKED),
            "{args:?}: {}",
            explain(&out, &[], &registry)
        );
        assert!(!sandbox.dirs.marker_written(), "the build ran: {out}");
        assert!(stderr_has(&out, "poetry-marker-evil"), "{out}");
        untouched(&sandbox, &out, &["poetry-marker-evil"]);
    }
}

#[test]
fn poetry_add_blocks_a_malicious_wheel_in_the_tree_and_installs_nothing() {
    let registry = registry();
    let sandbox = sandbox!(registry);
    let out = run(sandbox.guard(Policy::Block, &["add", "app-core"]));
    assert_eq!(
        out.code,
        Some(EXIT_BLOCKED),
        "{}",
        explain(&out, &[], &registry)
    );
    assert!(stderr_has(&out, "evil-pkg"), "{out}");
    untouched(&sandbox, &out, &["app-core", "evil-pkg"]);
}

/// `poetry add` guarded writes what bare Poetry writes, and installs the tree; a later
/// guarded `poetry install` from that lock into a fresh environment installs it again and
/// leaves the files as they are.
#[test]
fn poetry_add_and_install_write_what_bare_poetry_writes() {
    let registry = registry();
    let sandbox = sandbox!(registry);
    let twin = sandbox.twin("bare");
    let bare = run(sandbox.bare_in(&twin, &["add", "alpha-lib"]));
    assert_eq!(bare.code, Some(0), "{bare}");
    let out = run(sandbox.guard(Policy::Block, &["add", "alpha-lib"]));
    assert_eq!(out.code, Some(0), "{}", explain(&out, &[], &registry));
    assert!(stderr_has(&out, "scanned"), "{out}");
    for name in ["alpha-lib", "beta-lib", "gamma-lib"] {
        assert!(sandbox.installed(name), "{name}: {out}");
    }
    for file in ["poetry.lock", "pyproject.toml"] {
        let guarded = sandbox.read(file).unwrap();
        let expected = std::fs::read(twin.join(file)).unwrap();
        assert_eq!(
            String::from_utf8_lossy(&guarded),
            String::from_utf8_lossy(&expected),
            "{file} differs from bare poetry's"
        );
    }
    let before = sandbox.read("poetry.lock").unwrap();
    std::fs::remove_dir_all(sandbox.project.join(".venv")).unwrap();
    let out = run(sandbox.guard(Policy::Block, &["install"]));
    assert_eq!(out.code, Some(0), "{}", explain(&out, &[], &registry));
    for name in ["alpha-lib", "beta-lib", "gamma-lib"] {
        assert!(sandbox.installed(name), "{name}: {out}");
    }
    assert_eq!(sandbox.read("poetry.lock").unwrap(), before);
    // `lock --regenerate` and `update` write what they write bare.
    for args in [&["lock", "--regenerate"][..], &["update"]] {
        let bare = run(sandbox.bare_in(&twin, args));
        assert_eq!(bare.code, Some(0), "{args:?}: {bare}");
        let out = run(sandbox.guard(Policy::Block, args));
        assert_eq!(
            out.code,
            Some(0),
            "{args:?}: {}",
            explain(&out, &[], &registry)
        );
        assert_eq!(
            String::from_utf8_lossy(&sandbox.read("poetry.lock").unwrap()),
            String::from_utf8_lossy(&std::fs::read(twin.join("poetry.lock")).unwrap()),
            "{args:?}: poetry.lock differs from bare poetry's"
        );
    }
}

/// Under `warn`, the flagged wheel is installed with the tree, and the report says so.
#[test]
fn poetry_add_under_warn_installs_and_says_what_was_flagged() {
    let registry = registry();
    let sandbox = sandbox!(registry);
    let out = run(sandbox.guard(Policy::Warn, &["add", "app-core"]));
    assert_eq!(out.code, Some(0), "{}", explain(&out, &[], &registry));
    for name in ["app-core", "evil-pkg"] {
        assert!(sandbox.installed(name), "{name}: {out}");
    }
    assert!(
        stderr_has(&out, "evil-pkg") && stderr_has(&out, "warn"),
        "{out}"
    );
}

/// A lock that pins a malicious wheel beside a clean one (locked by bare Poetry, which reads
/// a wheel's metadata without running it): `poetry install`, `sync` and `update` are blocked
/// before anything is installed (Poetry would install the clean one alongside), and the
/// project's files stay as they were.
#[test]
fn poetry_install_from_a_lock_is_blocked_on_a_malicious_wheel() {
    let registry = registry();
    let sandbox = sandbox!(registry);
    let bare = run(sandbox.bare_in(
        &sandbox.project,
        &["add", "--lock", "evil-pkg", "gamma-lib", "app-core"],
    ));
    assert_eq!(bare.code, Some(0), "{bare}");
    let pyproject = sandbox.read("pyproject.toml").unwrap();
    let lock = sandbox.read("poetry.lock").unwrap();
    for args in [&["install"][..], &["sync"], &["update"]] {
        let out = run(sandbox.guard(Policy::Block, args));
        assert_eq!(
            out.code,
            Some(EXIT_BLOCKED),
            "{args:?}: {}",
            explain(&out, &[], &registry)
        );
        assert!(stderr_has(&out, "evil-pkg"), "{args:?}: {out}");
        for name in ["app-core", "evil-pkg", "gamma-lib"] {
            assert!(
                !sandbox.installed(name),
                "{args:?}: {name} installed: {out}"
            );
        }
        assert_eq!(
            sandbox.read("pyproject.toml").unwrap(),
            pyproject,
            "{args:?}"
        );
        assert_eq!(sandbox.read("poetry.lock").unwrap(), lock, "{args:?}");
    }
}

/// A lock that pins the malicious sdist (locked by bare Poetry, whose build of it wrote the
/// marker, which is then removed): `poetry install`, `poetry lock --regenerate` and
/// `poetry update` are blocked before its build runs again.
#[test]
fn poetry_install_lock_and_update_are_blocked_on_a_malicious_sdist_pin() {
    let registry = registry();
    let sandbox = sandbox!(registry);
    let bare = run(sandbox.bare_in(&sandbox.project, &["add", "--lock", "poetry-marker-evil"]));
    assert_eq!(bare.code, Some(0), "{bare}");
    assert!(
        sandbox.dirs.marker_written(),
        "bare poetry built it: {bare}"
    );
    std::fs::remove_file(&sandbox.dirs.marker).unwrap();
    let pyproject = sandbox.read("pyproject.toml").unwrap();
    let lock = sandbox.read("poetry.lock").unwrap();
    for args in [&["install"][..], &["lock", "--regenerate"], &["update"]] {
        let out = run(sandbox.guard(Policy::Block, args));
        assert_eq!(
            out.code,
            Some(EXIT_BLOCKED),
            "{args:?}: {}",
            explain(&out, &[], &registry)
        );
        assert!(
            !sandbox.dirs.marker_written(),
            "{args:?}: the build ran: {out}"
        );
        assert!(stderr_has(&out, "poetry-marker-evil"), "{args:?}: {out}");
        assert!(!sandbox.installed("poetry-marker-evil"), "{args:?}: {out}");
        assert_eq!(
            sandbox.read("pyproject.toml").unwrap(),
            pyproject,
            "{args:?}"
        );
        assert_eq!(sandbox.read("poetry.lock").unwrap(), lock, "{args:?}");
    }
}

#[test]
fn poetry_refuses_what_it_cannot_front_with_one_line() {
    let registry = registry();
    let sandbox = sandbox!(registry);
    let out = run(sandbox.guard(Policy::Block, &["add", "git+https://example.org/x/y.git"]));
    assert_eq!(out.code, Some(EXIT_UNJUDGED), "{out}");
    assert!(stderr_has(&out, "git or URL dependency"), "{out}");
    let with_git = format!(
        "{}\n[tool.poetry.dependencies]\ny = {{ git = \"https://example.org/x/y.git\" }}\n",
        sandbox.text
    );
    std::fs::write(sandbox.project.join("pyproject.toml"), &with_git).unwrap();
    let out = run(sandbox.guard(Policy::Block, &["install"]));
    assert_eq!(out.code, Some(EXIT_UNJUDGED), "{out}");
    assert!(
        stderr_has(&out, "pyproject.toml") && stderr_has(&out, "git dependency y"),
        "{out}"
    );
    assert!(!sandbox.project.join(".venv").exists(), "poetry ran: {out}");
    // Commands that fetch nothing pass straight to the real Poetry.
    let out = run(sandbox.guard(Policy::Block, &["--version"]));
    assert_eq!(out.code, Some(0), "{out}");
    assert!(out.stdout.contains("Poetry"), "{out}");
}

/// Without a source, Poetry reads its implicit PyPI (`https://pypi.org/`, written into its
/// code): the simple API for versions, the JSON API for a release's dependencies and files.
/// The guard fronts those URLs, `CEREBRO_PUBLIC_PYPI_URL` standing for PyPI (here the
/// loopback registry); bare Poetry is pointed at the same registry by patching its PyPI URL.
#[test]
fn poetry_on_its_implicit_pypi_is_guarded_and_writes_what_bare_poetry_writes() {
    let registry = registry();
    let mut sandbox = match PoetrySandbox::with_project(PYPI_PROJECT.to_owned()) {
        Some(s) => s,
        None => return,
    };
    sandbox
        .dirs
        .set_env("CEREBRO_PUBLIC_PYPI_URL", format!("{}/", registry.base()));
    let out = run(sandbox.guard(Policy::Block, &["add", "poetry-marker-evil"]));
    assert_eq!(
        out.code,
        Some(EXIT_BLOCKED),
        "{}",
        explain(&out, &[], &registry)
    );
    assert!(!sandbox.dirs.marker_written(), "the build ran: {out}");
    untouched(&sandbox, &out, &["poetry-marker-evil"]);
    assert!(
        registry.hits("/pypi/poetry-marker-evil/0.1.0/json") > 0,
        "the guard read PyPI's JSON API for the release"
    );

    let twin = sandbox.twin("bare");
    let bare = run({
        let mut cmd = bare_poetry_with_pypi(&sandbox, &registry.base(), &twin);
        cmd.args(["add", "alpha-lib"]);
        cmd
    });
    assert_eq!(bare.code, Some(0), "{bare}");
    let release = "/pypi/alpha-lib/1.0.0/json";
    let agents = registry.agents(release);
    let bare_reads = agents.len();
    assert!(
        bare_reads > 0 && agents.iter().all(|a| a.contains("poetry")),
        "bare Poetry read the registry as its PyPI: {agents:?}"
    );
    let out = run(sandbox.guard(Policy::Block, &["add", "alpha-lib"]));
    assert_eq!(out.code, Some(0), "{}", explain(&out, &[], &registry));
    let agents = registry.agents(release);
    assert!(
        agents.len() > bare_reads && agents[bare_reads..].iter().all(|a| !a.contains("poetry")),
        "the guard, not Poetry, read the release: {agents:?}"
    );
    for name in ["alpha-lib", "beta-lib", "gamma-lib"] {
        assert!(sandbox.installed(name), "{name}: {out}");
    }
    for file in ["poetry.lock", "pyproject.toml"] {
        assert_eq!(
            String::from_utf8_lossy(&sandbox.read(file).unwrap()),
            String::from_utf8_lossy(&std::fs::read(twin.join(file)).unwrap()),
            "{file} differs from bare poetry's"
        );
    }
}

/// A source whose URL carries credentials (`requests` keeps them in every URL it asks for):
/// fronted all the same, the lock as a bare run writes it.
#[test]
fn poetry_source_with_credentials_in_its_url_is_fronted() {
    let registry = registry();
    let url = format!("http://user:secret@{}/simple/", registry.host_port());
    let sandbox = match PoetrySandbox::with_project(project_text(&url)) {
        Some(s) => s,
        None => return,
    };
    let twin = sandbox.twin("bare");
    let bare = run(sandbox.bare_in(&twin, &["add", "gamma-lib"]));
    assert_eq!(bare.code, Some(0), "{bare}");
    let out = run(sandbox.guard(Policy::Block, &["add", "gamma-lib"]));
    assert_eq!(out.code, Some(0), "{}", explain(&out, &[], &registry));
    assert!(sandbox.installed("gamma-lib"), "{out}");
    for file in ["poetry.lock", "pyproject.toml"] {
        assert_eq!(
            String::from_utf8_lossy(&sandbox.read(file).unwrap()),
            String::from_utf8_lossy(&std::fs::read(twin.join(file)).unwrap()),
            "{file} differs from bare poetry's"
        );
    }
}

/// A private source whose credentials are in Poetry's configuration (`http-basic.<source>`,
/// here by environment): the guard reads the source with the credentials Poetry sends for
/// it, and the run is as a bare one.
#[test]
fn poetry_private_source_with_configured_credentials_is_fronted() {
    let registry = registry();
    registry.require_auth("user", "secret");
    let mut sandbox = sandbox!(registry);
    sandbox
        .dirs
        .set_env("POETRY_HTTP_BASIC_LOOPBACK_USERNAME", "user");
    sandbox
        .dirs
        .set_env("POETRY_HTTP_BASIC_LOOPBACK_PASSWORD", "secret");
    let twin = sandbox.twin("bare");
    let bare = run(sandbox.bare_in(&twin, &["add", "gamma-lib"]));
    assert_eq!(bare.code, Some(0), "{bare}");
    let out = run(sandbox.guard(Policy::Block, &["add", "gamma-lib"]));
    assert_eq!(out.code, Some(0), "{}", explain(&out, &[], &registry));
    assert!(sandbox.installed("gamma-lib"), "{out}");
    assert_eq!(
        sandbox.read("poetry.lock").unwrap(),
        std::fs::read(twin.join("poetry.lock")).unwrap()
    );
    // With wrong ones, the source refuses the guard too: 78, and nothing is installed.
    sandbox
        .dirs
        .set_env("POETRY_HTTP_BASIC_LOOPBACK_PASSWORD", "wrong");
    let out = run(sandbox.guard(Policy::Block, &["add", "alpha-lib"]));
    assert_eq!(out.code, Some(EXIT_UNJUDGED), "{out}");
    assert!(stderr_has(&out, "HTTP 401"), "{out}");
    assert!(!sandbox.installed("alpha-lib"), "{out}");
}

/// An upstream slower than `upstream_deadline`: the run ends with 78 and the line naming the
/// file (Poetry's retries of the 504 are answered at once), and nothing is installed.
#[test]
fn poetry_past_the_deadline_ends_with_78_naming_the_file() {
    let registry = registry();
    let sandbox = sandbox!(registry);
    let gamma = fixtures::py_clean_tree()
        .into_iter()
        .find(|d| d.name == "gamma-lib" && d.version == "1.0.0")
        .unwrap()
        .artifact
        .file;
    registry.fault(
        &gamma,
        support::registry::Fault::Delay(std::time::Duration::from_secs(120)),
    );
    let mut cmd = sandbox.guard(Policy::Block, &["add", "alpha-lib"]);
    cmd.env("CEREBRO_UPSTREAM_DEADLINE", "3s");
    let started = std::time::Instant::now();
    let out = run(cmd);
    assert_eq!(
        out.code,
        Some(EXIT_UNJUDGED),
        "{}",
        explain(&out, &[], &registry)
    );
    assert!(
        started.elapsed() < std::time::Duration::from_secs(60),
        "the retries waited: {out}"
    );
    assert!(
        out.stderr.contains(&gamma) && out.stderr.contains("upstream_deadline"),
        "{out}"
    );
    untouched(&sandbox, &out, &["alpha-lib", "beta-lib", "gamma-lib"]);
}

/// A project in package mode (the default): `poetry install` installs the project itself
/// too (Poetry builds it in-process, fetching nothing more), and its dependencies through
/// the guard.
#[test]
fn poetry_install_of_a_package_mode_project() {
    let registry = registry();
    let text = format!(
        "[project]\nname = \"demo\"\nversion = \"0.1.0\"\nrequires-python = \">=3.9\"\n\
         dependencies = [\"gamma-lib>=1.0\"]\n\n\
         [build-system]\nrequires = [\"poetry-core>=2.0\"]\nbuild-backend = \"poetry.core.masonry.api\"\n\n\
         [[tool.poetry.source]]\nname = \"loopback\"\nurl = \"{}\"\npriority = \"primary\"\n",
        registry.pypi_url()
    );
    let sandbox = match PoetrySandbox::with_project(text) {
        Some(s) => s,
        None => return,
    };
    let package = sandbox.project.join("demo");
    std::fs::create_dir_all(&package).unwrap();
    std::fs::write(package.join("__init__.py"), "").unwrap();
    std::fs::write(sandbox.project.join("README.md"), "demo\n").unwrap();
    let out = run(sandbox.guard(Policy::Block, &["install"]));
    assert_eq!(out.code, Some(0), "{}", explain(&out, &[], &registry));
    assert!(sandbox.installed("gamma-lib"), "{out}");
    assert!(sandbox.installed("demo"), "the project itself: {out}");
    assert!(sandbox.read("poetry.lock").is_some(), "{out}");
}

/// The malicious sdist unpacked into a folder on disk, as a path dependency would be.
fn local_evil_folder(sandbox: &PoetrySandbox) -> PathBuf {
    let evil = fixtures::backend_marker_evil_sdist("local-evil");
    let into = sandbox.dirs.root().join("local");
    let gz = flate2::read::GzDecoder::new(&evil.artifact.bytes[..]);
    tar::Archive::new(gz).unpack(&into).unwrap();
    let top = std::fs::read_dir(&into).unwrap().next().unwrap().unwrap();
    top.path()
}

/// Path dependencies are judged where they are before Poetry may build them: a malicious
/// folder given to `poetry add`, or named by `pyproject.toml`, stops the run (77) before its
/// build backend runs, and the project's files stay as they were.
#[test]
fn poetry_path_dependencies_are_judged_before_poetry_builds_them() {
    let registry = registry();
    let sandbox = sandbox!(registry);
    let folder = local_evil_folder(&sandbox);
    let out = run(sandbox.guard(Policy::Block, &["add", folder.to_str().unwrap()]));
    assert_eq!(
        out.code,
        Some(EXIT_BLOCKED),
        "{}",
        explain(&out, &[], &registry)
    );
    assert!(!sandbox.dirs.marker_written(), "the build ran: {out}");
    untouched(&sandbox, &out, &["local-evil"]);
    let with_path = format!(
        "{}\n[tool.poetry.dependencies]\nlocal-evil = {{ path = \"{}\", develop = true }}\n",
        sandbox.text,
        folder.display()
    );
    std::fs::write(sandbox.project.join("pyproject.toml"), &with_path).unwrap();
    let out = run(sandbox.guard(Policy::Block, &["install"]));
    assert_eq!(
        out.code,
        Some(EXIT_BLOCKED),
        "{}",
        explain(&out, &[], &registry)
    );
    assert!(!sandbox.dirs.marker_written(), "the build ran: {out}");
    assert!(!sandbox.installed("local-evil"), "{out}");
    assert!(sandbox.read("poetry.lock").is_none(), "{out}");
    // Bare Poetry builds the folder to read its metadata: the backend runs.
    let twin = sandbox.twin("bare");
    let bare = run(sandbox.bare_in(&twin, &["add", "--lock", folder.to_str().unwrap()]));
    assert!(
        sandbox.dirs.marker_written(),
        "bare poetry should build the folder (and its backend write the marker): {bare}"
    );
}
