//! The end-to-end harness for the install guard: sandboxes with their own HOME, config, cache,
//! temporary folder and (for pip) virtual environment or (for npm) project; the real pip and
//! npm pointed only at a registry on loopback ([`registry`]) serving synthetic packages
//! ([`fixtures`]); a runner with a time limit whose failures print everything; and a
//! pseudo-terminal to answer the guard's prompt.
//!
//! Nothing here reaches the network: every command runs with a cleared environment that names
//! only loopback registries, `PIP_CONFIG_FILE=/dev/null`, npm user and global config files of
//! our own, and caches inside the sandbox.

#![allow(dead_code)]

/// A sandbox whose pip index is `$registry`, or return from the test when python3 is
/// missing (outside CI, where `CEREBRO_E2E_REQUIRE` makes a missing tool an error).
#[allow(unused_macros)]
macro_rules! pip_sandbox {
    ($registry:expr) => {
        match $crate::support::PipSandbox::new(&$registry.pypi_url()) {
            Some(sandbox) => sandbox,
            None => return,
        }
    };
}

/// A sandbox whose npm registry is `$registry`, or return from the test when npm is missing.
#[allow(unused_macros)]
macro_rules! npm_sandbox {
    ($registry:expr) => {
        match $crate::support::NpmSandbox::new(&$registry.npm_url()) {
            Some(sandbox) => sandbox,
            None => return,
        }
    };
}

pub mod fixtures;
pub mod registry;

use std::ffi::OsString;
use std::fmt;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use serde_json::Value;

/// Exit code: the install was blocked (by policy or by the user at the prompt).
pub const EXIT_BLOCKED: i32 = 77;
/// Exit code: a package could not be judged (fetch error, hash mismatch, unreadable artifact).
pub const EXIT_UNJUDGED: i32 = 78;

/// How long one guarded command may take before the test gives up on it.
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(180);

/// The guard under test: this crate's binary, or `$CEREBRO_E2E_BIN` (to check that the tests
/// fail against a guard that does nothing, or to test an installed build).
pub fn cerebro_bin() -> PathBuf {
    std::env::var_os("CEREBRO_E2E_BIN")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_cerebro")))
}

/// The folder that holds the sandboxes and the shared base venv (under `target/`).
fn work_root() -> PathBuf {
    let root = Path::new(env!("CARGO_TARGET_TMPDIR")).join("cerebro-e2e");
    std::fs::create_dir_all(&root).expect("create the e2e work folder");
    root
}

// ---------------------------------------------------------------------------------------------
// Tools.

/// Finds `program` on the caller's `PATH`.
pub fn find_on_path(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|candidate| candidate.is_file())
}

/// Decides what a test does when a tool it needs is missing: under CI it fails, elsewhere it
/// says so and the test returns early.
pub fn require_tool(program: &str) -> bool {
    if find_on_path(program).is_some() {
        return true;
    }
    if std::env::var_os("CI").is_some() || std::env::var_os("CEREBRO_E2E_REQUIRE").is_some() {
        panic!("`{program}` is not on PATH, and the end-to-end tests need it");
    }
    eprintln!("skipped: `{program}` is not on PATH (set CEREBRO_E2E_REQUIRE=1 to fail instead)");
    false
}

/// The real Python interpreter (not a pyenv shim): `sys.executable` of `python3` on PATH, or
/// `$CEREBRO_TEST_PYTHON`.
fn python() -> PathBuf {
    if let Some(p) = std::env::var_os("CEREBRO_TEST_PYTHON") {
        return PathBuf::from(p);
    }
    let out = Command::new("python3")
        .args(["-c", "import sys; print(sys.executable)"])
        .output()
        .expect("run python3");
    assert!(out.status.success(), "python3 failed: {out:?}");
    PathBuf::from(String::from_utf8(out.stdout).unwrap().trim())
}

/// A virtual environment with the interpreter's bundled pip, made once and kept under
/// `target/tmp` between runs (it needs no network: `ensurepip` installs from bundled wheels).
/// Sandboxes get a copy.
fn base_venv() -> &'static Path {
    static BASE: OnceLock<PathBuf> = OnceLock::new();
    BASE.get_or_init(|| {
        let python = python();
        let version = Command::new(&python)
            .args(["-c", "import sys; print('%d.%d.%d' % sys.version_info[:3])"])
            .output()
            .expect("python version");
        let version = String::from_utf8(version.stdout).unwrap().trim().to_owned();
        let root = work_root();
        let target = root.join(format!("base-venv-{version}"));
        if target.join("bin/pip").is_file() && target.join("ready").is_file() {
            return target;
        }
        let scratch = tempfile::Builder::new()
            .prefix("base-venv-")
            .tempdir_in(&root)
            .expect("scratch dir");
        let venv = scratch.path().join("venv");
        let out = Command::new(&python)
            .args(["-m", "venv"])
            .arg(&venv)
            .env_remove("PIP_FIND_LINKS")
            .env("PIP_CONFIG_FILE", "/dev/null")
            .output()
            .expect("python -m venv");
        assert!(
            out.status.success(),
            "python -m venv failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        // Its scripts name the interpreter by the path it was made at: keep that path, for
        // the copies to replace.
        std::fs::write(venv.join("ready"), venv.to_str().unwrap()).unwrap();
        // Another test binary may have raced us to it; either copy is as good.
        if std::fs::rename(&venv, &target).is_err() && !target.join("ready").is_file() {
            panic!("could not place the base venv at {}", target.display());
        }
        target
    })
}

/// The Python of the shared base venv, with the interpreter's bundled pip: for tests that run
/// pip's own code on synthetic inputs (its unpackers, its requirement-file parser).
pub fn pip_python() -> PathBuf {
    base_venv().join("bin/python")
}

/// Copies the base venv to `dest` and points its scripts at their new home.
fn copy_venv(dest: &Path) {
    let base = base_venv();
    let out = Command::new("cp")
        .arg("-a")
        .arg(base)
        .arg(dest)
        .output()
        .expect("cp -a");
    assert!(out.status.success(), "copying the venv failed: {out:?}");
    let from = std::fs::read_to_string(base.join("ready")).expect("the base venv's origin");
    let (from, to) = (from.trim(), dest.to_str().unwrap());
    for entry in std::fs::read_dir(dest.join("bin")).unwrap() {
        let path = entry.unwrap().path();
        if path.is_symlink() || !path.is_file() {
            continue;
        }
        if let Ok(text) = std::fs::read_to_string(&path) {
            if text.contains(from) {
                std::fs::write(&path, text.replace(from, to)).unwrap();
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Running commands.

/// What a finished command did.
pub struct Outcome {
    pub what: String,
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
    pub elapsed: Duration,
    pub timed_out: bool,
}

impl Outcome {
    /// The first JSON value on stdout (the guard's `--json` report).
    pub fn first_json(&self) -> Result<Value, String> {
        serde_json::Deserializer::from_str(&self.stdout)
            .into_iter::<Value>()
            .next()
            .ok_or_else(|| "stdout holds no JSON value".to_owned())?
            .map_err(|e| format!("stdout does not start with a JSON value: {e}"))
    }

    pub fn stderr_lower(&self) -> String {
        self.stderr.to_lowercase()
    }
}

fn tail(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut start = text.len() - max;
    while !text.is_char_boundary(start) {
        start += 1;
    }
    &text[start..]
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "command: {}", self.what)?;
        match (self.timed_out, self.code) {
            (true, _) => writeln!(f, "exit: killed after {:?} (timed out)", self.elapsed)?,
            (false, Some(c)) => writeln!(f, "exit: {c} after {:.1?}", self.elapsed)?,
            (false, None) => writeln!(f, "exit: killed by a signal after {:.1?}", self.elapsed)?,
        }
        writeln!(f, "--- stderr ---\n{}", tail(&self.stderr, 12_000))?;
        write!(f, "--- stdout ---\n{}", tail(&self.stdout, 6_000))
    }
}

impl fmt::Debug for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

fn describe(cmd: &Command) -> String {
    let mut parts = vec![cmd.get_program().to_string_lossy().into_owned()];
    parts.extend(cmd.get_args().map(|a| a.to_string_lossy().into_owned()));
    let envs: Vec<String> = cmd
        .get_envs()
        .filter_map(|(k, v)| {
            let k = k.to_string_lossy();
            (k.starts_with("CEREBRO_POLICY") || k == "CI")
                .then(|| format!("{k}={}", v.map(|v| v.to_string_lossy()).unwrap_or_default()))
        })
        .collect();
    format!("{} {}", envs.join(" "), parts.join(" "))
        .trim()
        .to_owned()
}

/// Runs `cmd` with stdin from /dev/null, capturing its output, killing its process group
/// after `timeout`.
pub fn run_with(mut cmd: Command, timeout: Duration) -> Outcome {
    use std::os::unix::process::CommandExt;
    let what = describe(&cmd);
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    let start = Instant::now();
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start `{what}`: {e}"));
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let out_reader = std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = out.read_to_end(&mut buf);
        buf
    });
    let err_reader = std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = err.read_to_end(&mut buf);
        buf
    });
    let mut timed_out = false;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if start.elapsed() > timeout {
            timed_out = true;
            kill_group(child.id());
            break child.wait().expect("wait after kill");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let elapsed = start.elapsed();
    // A grandchild that outlives the command could hold the pipes open; do not wait for it.
    kill_group(child.id());
    let stdout = String::from_utf8_lossy(&out_reader.join().unwrap()).into_owned();
    let stderr = String::from_utf8_lossy(&err_reader.join().unwrap()).into_owned();
    let outcome = Outcome {
        what,
        code: status.code(),
        stdout,
        stderr,
        elapsed,
        timed_out,
    };
    if verbose() {
        eprintln!("{outcome}\n");
    }
    outcome
}

/// `CEREBRO_E2E_VERBOSE=1` prints every command's outcome and every terminal session, to see
/// what the guard says when the tests pass (run with `--nocapture`).
fn verbose() -> bool {
    std::env::var_os("CEREBRO_E2E_VERBOSE").is_some_and(|v| !v.is_empty())
}

pub fn run(cmd: Command) -> Outcome {
    run_with(cmd, COMMAND_TIMEOUT)
}

fn kill_group(pid: u32) {
    let _ = Command::new("kill")
        .args(["-KILL", "--", &format!("-{pid}")])
        .stderr(Stdio::null())
        .status();
}

// ---------------------------------------------------------------------------------------------
// Sandboxes.

/// The folders every sandbox has, and the environment every command in it starts from.
pub struct Dirs {
    root: tempfile::TempDir,
    pub home: PathBuf,
    pub config: PathBuf,
    pub cache: PathBuf,
    pub tmp: PathBuf,
    /// Where the marker fixtures write if their install code runs (`CEREBRO_TEST_MARKER`).
    pub marker: PathBuf,
    extra_path: Vec<PathBuf>,
    env: Vec<(OsString, OsString)>,
}

impl Dirs {
    pub fn new(tag: &str) -> Dirs {
        let root = tempfile::Builder::new()
            .prefix(&format!("{tag}-"))
            .tempdir_in(work_root())
            .expect("sandbox dir");
        let p = root.path().to_path_buf();
        let mut dirs = Dirs {
            home: p.join("home"),
            config: p.join("cerebro-config"),
            cache: p.join("cerebro-cache"),
            tmp: p.join("tmp"),
            marker: p.join("marker"),
            root,
            extra_path: Vec::new(),
            env: Vec::new(),
        };
        for d in [&dirs.home, &dirs.config, &dirs.cache, &dirs.tmp] {
            std::fs::create_dir_all(d).unwrap();
        }
        // The release-age cooldown asks the public registries for release times an index
        // does not publish: never the internet in tests. A test that needs the fallback
        // points these at a loopback registry; unset, a fallback fails loudly (exit 78).
        let dead = registry::dead_url();
        dirs.set_env("CEREBRO_PUBLIC_PYPI_URL", format!("{dead}/"));
        dirs.set_env("CEREBRO_PUBLIC_NPM_URL", format!("{dead}/"));
        dirs
    }

    pub fn root(&self) -> &Path {
        self.root.path()
    }

    /// Puts `dir` first on `PATH` for every later command of this sandbox.
    pub fn add_path(&mut self, dir: PathBuf) {
        self.extra_path.insert(0, dir);
    }

    /// Sets a variable for every later command of this sandbox.
    pub fn set_env(&mut self, key: &str, value: impl Into<OsString>) {
        let key = OsString::from(key);
        self.env.retain(|(k, _)| *k != key);
        self.env.push((key, value.into()));
    }

    /// Unsets a variable this sandbox set, for every later command.
    pub fn remove_env(&mut self, key: &str) {
        self.env.retain(|(k, _)| k != key);
    }

    /// Uses a new, empty guard cache from now on (the config, and so the allowlist, stay).
    pub fn fresh_cache(&mut self) {
        let n = std::fs::read_dir(self.root()).unwrap().count();
        self.cache = self.root().join(format!("cerebro-cache-{n}"));
        std::fs::create_dir_all(&self.cache).unwrap();
    }

    /// A command with a cleared environment: only what this sandbox sets.
    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut cmd = Command::new(program);
        cmd.env_clear();
        let mut path: Vec<PathBuf> = self.extra_path.clone();
        if let Some(outer) = std::env::var_os("PATH") {
            path.extend(std::env::split_paths(&outer));
        }
        cmd.env("PATH", std::env::join_paths(path).unwrap())
            .env("HOME", &self.home)
            .env("TMPDIR", &self.tmp)
            .env("XDG_CONFIG_HOME", self.home.join(".config"))
            .env("XDG_CACHE_HOME", self.home.join(".cache"))
            .env("XDG_DATA_HOME", self.home.join(".local/share"))
            .env("LANG", "C.UTF-8")
            .env("TERM", "dumb")
            .env("NO_COLOR", "1")
            .env("RUST_BACKTRACE", "1")
            .env("CEREBRO_CONFIG_DIR", &self.config)
            .env("CEREBRO_CACHE_DIR", &self.cache)
            .env(fixtures::MARKER_ENV, &self.marker);
        for key in ["USER", "LOGNAME", "PYENV_ROOT"] {
            if let Some(v) = std::env::var_os(key) {
                cmd.env(key, v);
            }
        }
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        cmd
    }

    /// `cerebro <args>` in this sandbox.
    pub fn cerebro(&self, args: &[&str]) -> Command {
        let mut cmd = self.command(cerebro_bin());
        cmd.args(args);
        cmd
    }

    /// Whether a marker fixture's install code ran.
    pub fn marker_written(&self) -> bool {
        self.marker.exists()
    }
}

/// Policy modes, as `CEREBRO_POLICY` takes them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Policy {
    Block,
    Prompt,
    Warn,
    Off,
}

impl Policy {
    pub fn as_str(self) -> &'static str {
        match self {
            Policy::Block => "block",
            Policy::Prompt => "prompt",
            Policy::Warn => "warn",
            Policy::Off => "off",
        }
    }
}

/// A sandbox for pip: its own venv (a copy of the shared base), the index on loopback.
pub struct PipSandbox {
    pub dirs: Dirs,
    pub venv: PathBuf,
    pub index_url: String,
    venvs: usize,
}

impl PipSandbox {
    /// `None` when python3 is missing and the test should be skipped.
    pub fn new(index_url: &str) -> Option<PipSandbox> {
        if !require_tool("python3") {
            return None;
        }
        let mut dirs = Dirs::new("pip");
        let venv = dirs.root().join("venv-0");
        copy_venv(&venv);
        dirs.extra_path = vec![venv.join("bin")];
        let pip_cache = dirs.root().join("pip-cache");
        for (k, v) in [
            ("PIP_INDEX_URL", index_url.to_owned()),
            ("PIP_CONFIG_FILE", "/dev/null".to_owned()),
            ("PIP_DISABLE_PIP_VERSION_CHECK", "1".to_owned()),
            ("PIP_NO_INPUT", "1".to_owned()),
            ("PIP_CACHE_DIR", pip_cache.to_string_lossy().into_owned()),
            // An sdist is prepared with the venv's setuptools, as a user without network
            // would; with isolation pip would first fetch setuptools, fail, and never get to
            // run setup.py, which would make the marker tests pass for the wrong reason.
            ("PIP_NO_BUILD_ISOLATION", "0".to_owned()),
            ("PIP_PROGRESS_BAR", "off".to_owned()),
            ("PIP_RETRIES", "0".to_owned()),
            ("PIP_DEFAULT_TIMEOUT", "20".to_owned()),
            ("PYTHONDONTWRITEBYTECODE", "1".to_owned()),
        ] {
            dirs.set_env(k, v);
        }
        Some(PipSandbox {
            dirs,
            venv,
            index_url: index_url.to_owned(),
            venvs: 1,
        })
    }

    /// Points pip at another index from now on.
    pub fn set_index(&mut self, index_url: &str) {
        self.index_url = index_url.to_owned();
        self.dirs.set_env("PIP_INDEX_URL", index_url);
    }

    /// Replaces the venv with a new, empty copy (the guard's config and cache stay).
    pub fn fresh_venv(&mut self) {
        let venv = self.dirs.root().join(format!("venv-{}", self.venvs));
        self.venvs += 1;
        copy_venv(&venv);
        self.dirs.extra_path = vec![venv.join("bin")];
        self.venv = venv;
    }

    /// `cerebro pip -- <args>` under `policy`.
    pub fn guard(&self, policy: Policy, args: &[&str]) -> Command {
        let mut cmd = self.dirs.cerebro(&["pip", "--"]);
        cmd.args(args).env("CEREBRO_POLICY", policy.as_str());
        cmd
    }

    /// `cerebro pip --json -- <args>` under `policy`.
    pub fn guard_json(&self, policy: Policy, args: &[&str]) -> Command {
        let mut cmd = self.dirs.cerebro(&["pip", "--json", "--"]);
        cmd.args(args).env("CEREBRO_POLICY", policy.as_str());
        cmd
    }

    /// The venv's own pip, unguarded.
    pub fn bare(&self, args: &[&str]) -> Command {
        let mut cmd = self.dirs.command(self.venv.join("bin/pip"));
        cmd.args(args);
        cmd
    }

    fn site_packages(&self) -> PathBuf {
        let lib = self.venv.join("lib");
        std::fs::read_dir(&lib)
            .unwrap()
            .map(|e| e.unwrap().path().join("site-packages"))
            .find(|p| p.is_dir())
            .unwrap_or_else(|| panic!("no site-packages under {}", lib.display()))
    }

    /// The installed version of `name`, from its `.dist-info` folder.
    pub fn installed_version(&self, name: &str) -> Option<String> {
        let prefix = format!("{}-", fixtures::normalize(name).replace('-', "_"));
        std::fs::read_dir(self.site_packages())
            .unwrap()
            .filter_map(|e| e.ok())
            .filter_map(|e| e.file_name().into_string().ok())
            .find_map(|f| {
                let rest = f.strip_suffix(".dist-info")?;
                let lower = rest.to_lowercase();
                lower
                    .starts_with(&prefix)
                    .then(|| rest[prefix.len()..].to_owned())
            })
    }

    pub fn installed(&self, name: &str) -> bool {
        self.installed_version(name).is_some()
    }

    /// The distributions installed besides pip's own, for failure messages.
    pub fn installed_list(&self) -> Vec<String> {
        let mut all: Vec<String> = std::fs::read_dir(self.site_packages())
            .unwrap()
            .filter_map(|e| e.ok())
            .filter_map(|e| e.file_name().into_string().ok())
            .filter(|f| f.ends_with(".dist-info"))
            .filter(|f| !f.starts_with("pip-") && !f.starts_with("setuptools-"))
            .collect();
        all.sort();
        all
    }
}

/// A sandbox for npm: a project folder with `package.json` and an `.npmrc` naming the
/// registry, npm's user and global config files and cache of its own.
pub struct NpmSandbox {
    pub dirs: Dirs,
    pub project: PathBuf,
    pub registry: String,
}

/// The test project's manifest: no dependencies, one script for the pass-through test.
pub const PROJECT_JSON: &str = r#"{
  "name": "e2e-project",
  "version": "1.0.0",
  "private": true,
  "scripts": {
    "x": "node -e \"console.log('script x ran')\""
  }
}
"#;

impl NpmSandbox {
    /// `None` when npm is missing and the test should be skipped.
    pub fn new(registry: &str) -> Option<NpmSandbox> {
        if !require_tool("npm") || !require_tool("node") {
            return None;
        }
        let mut dirs = Dirs::new("npm");
        let project = dirs.root().join("project");
        std::fs::create_dir_all(&project).unwrap();
        std::fs::write(project.join("package.json"), PROJECT_JSON).unwrap();
        let user_rc = dirs.root().join("npmrc-user");
        let global_rc = dirs.root().join("npmrc-global");
        std::fs::write(&global_rc, "").unwrap();
        for (k, v) in [
            (
                "npm_config_userconfig",
                user_rc.to_string_lossy().into_owned(),
            ),
            (
                "npm_config_globalconfig",
                global_rc.to_string_lossy().into_owned(),
            ),
            (
                "npm_config_cache",
                dirs.root().join("npm-cache").to_string_lossy().into_owned(),
            ),
            ("npm_config_fetch_retries", "0".to_owned()),
            ("npm_config_fetch_timeout", "20000".to_owned()),
            ("npm_config_color", "false".to_owned()),
            ("npm_config_progress", "false".to_owned()),
        ] {
            dirs.set_env(k, v);
        }
        let mut sandbox = NpmSandbox {
            dirs,
            project,
            registry: String::new(),
        };
        sandbox.set_registry(registry);
        Some(sandbox)
    }

    /// Names `registry` in the project's and the user's `.npmrc`.
    pub fn set_registry(&mut self, registry: &str) {
        self.registry = registry.to_owned();
        let rc = format!("registry={registry}\naudit=false\nfund=false\nupdate-notifier=false\n");
        std::fs::write(self.project.join(".npmrc"), &rc).unwrap();
        std::fs::write(self.dirs.root().join("npmrc-user"), &rc).unwrap();
    }

    /// `cerebro npm -- <args>` under `policy`, in the project.
    pub fn guard(&self, policy: Policy, args: &[&str]) -> Command {
        let mut cmd = self.dirs.cerebro(&["npm", "--"]);
        cmd.args(args)
            .env("CEREBRO_POLICY", policy.as_str())
            .current_dir(&self.project);
        cmd
    }

    /// `cerebro npm --json -- <args>` under `policy`, in the project.
    pub fn guard_json(&self, policy: Policy, args: &[&str]) -> Command {
        let mut cmd = self.dirs.cerebro(&["npm", "--json", "--"]);
        cmd.args(args)
            .env("CEREBRO_POLICY", policy.as_str())
            .current_dir(&self.project);
        cmd
    }

    /// `cerebro npx [--json] -- <args>` under `policy`, in the project.
    pub fn guard_npx(&self, policy: Policy, json: bool, args: &[&str]) -> Command {
        let mut cmd = self.dirs.cerebro(&["npx"]);
        if json {
            cmd.arg("--json");
        }
        cmd.arg("--")
            .args(args)
            .env("CEREBRO_POLICY", policy.as_str())
            .current_dir(&self.project);
        cmd
    }

    /// The real npx, unguarded, in the project.
    pub fn bare_npx(&self, args: &[&str]) -> Command {
        let mut cmd = self.dirs.command("npx");
        cmd.args(args).current_dir(&self.project);
        cmd
    }

    /// Whether npx installed `name` into its cache (`<cache>/_npx/<hash>/node_modules/`).
    pub fn npx_cached(&self, name: &str) -> bool {
        let Ok(entries) = std::fs::read_dir(self.dirs.root().join("npm-cache/_npx")) else {
            return false;
        };
        entries
            .filter_map(|e| e.ok())
            .any(|e| e.path().join("node_modules").join(name).exists())
    }

    /// The real npm, unguarded, in the project.
    pub fn bare(&self, args: &[&str]) -> Command {
        let mut cmd = self.dirs.command("npm");
        cmd.args(args).current_dir(&self.project);
        cmd
    }

    /// Whether `node_modules/<name>` holds the package.
    pub fn installed(&self, name: &str) -> bool {
        self.installed_version(name).is_some()
    }

    pub fn installed_version(&self, name: &str) -> Option<String> {
        let manifest = self
            .project
            .join("node_modules")
            .join(name)
            .join("package.json");
        let text = std::fs::read_to_string(manifest).ok()?;
        let json: Value = serde_json::from_str(&text).ok()?;
        json["version"].as_str().map(str::to_owned)
    }

    /// The top-level entries of `node_modules`, for failure messages.
    pub fn installed_list(&self) -> Vec<String> {
        node_modules_list(&self.project)
    }

    /// The bytes of a project file, or `None` when it does not exist.
    pub fn read(&self, file: &str) -> Option<Vec<u8>> {
        std::fs::read(self.project.join(file)).ok()
    }
}

/// The top-level entries of `project`'s `node_modules` (npm, pnpm, bun and yarn alike), for
/// failure messages.
pub fn node_modules_list(project: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(project.join("node_modules")) else {
        return Vec::new();
    };
    let mut all: Vec<String> = entries
        .filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().into_string().ok())
        .collect();
    all.sort();
    all
}

/// Whether `project`'s `node_modules/<name>` holds a package.
pub fn node_module_installed(project: &Path, name: &str) -> bool {
    project
        .join("node_modules")
        .join(name)
        .join("package.json")
        .is_file()
}

// ---------------------------------------------------------------------------------------------
// The pseudo-terminal.

/// A command run on a pseudo-terminal, as a person at a terminal would run it.
pub struct Pty {
    session: expectrl::session::OsSession,
    raw: Vec<u8>,
    start: Instant,
    what: String,
    eof: bool,
}

/// Keys, as a terminal sends them.
pub const ENTER: &str = "\r";
pub const DOWN: &str = "\x1b[B";

impl Pty {
    pub fn spawn(mut cmd: Command) -> Pty {
        cmd.env("TERM", "xterm-256color");
        let what = describe(&cmd);
        let session = expectrl::session::OsSession::spawn(cmd)
            .unwrap_or_else(|e| panic!("cannot start `{what}` on a pty: {e}"));
        Pty {
            session,
            raw: Vec::new(),
            start: Instant::now(),
            what,
            eof: false,
        }
    }

    /// Everything the terminal showed so far, escape sequences removed.
    pub fn screen(&self) -> String {
        strip_ansi(&String::from_utf8_lossy(&self.raw))
    }

    fn pump(&mut self) -> bool {
        let mut buf = [0u8; 8192];
        match self.session.try_read(&mut buf) {
            Ok(0) => {
                self.eof = true;
                false
            }
            Ok(n) => {
                self.raw.extend_from_slice(&buf[..n]);
                true
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => false,
            Err(_) => {
                self.eof = true;
                false
            }
        }
    }

    /// Waits until the screen shows `text`; on a timeout or the end of the program, says
    /// what the screen showed instead.
    pub fn wait_for(&mut self, text: &str, timeout: Duration) -> Result<(), String> {
        let deadline = Instant::now() + timeout;
        loop {
            if self.screen().contains(text) {
                return Ok(());
            }
            if self.eof {
                return Err(format!(
                    "`{}` ended without showing {text:?}; the terminal showed:\n{}",
                    self.what,
                    self.screen()
                ));
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "`{}` did not show {text:?} within {timeout:?}; the terminal showed:\n{}",
                    self.what,
                    self.screen()
                ));
            }
            if !self.pump() {
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }

    /// Types `keys` (one key at a time, as a person would).
    pub fn send(&mut self, keys: &str) {
        use expectrl::Expect;
        std::thread::sleep(Duration::from_millis(100));
        self.session
            .send(keys)
            .unwrap_or_else(|e| panic!("cannot type into `{}`: {e}", self.what));
    }

    /// Reads to the end and returns the exit code (None when killed) and the screen.
    pub fn finish(mut self, timeout: Duration) -> (Option<i32>, String) {
        use expectrl::process::unix::WaitStatus;
        let deadline = Instant::now() + timeout;
        while !self.eof && Instant::now() < deadline {
            if !self.pump() {
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        if !self.eof {
            let _ = self.session.get_process_mut().exit(true);
            let screen = self.screen();
            return (
                None,
                format!("(killed after {:?})\n{screen}", self.start.elapsed()),
            );
        }
        let code = match self.session.get_process().wait() {
            Ok(WaitStatus::Exited(_, code)) => Some(code),
            _ => None,
        };
        if verbose() {
            eprintln!(
                "terminal: {}\nexit: {code:?}\n--- screen ---\n{}\n",
                self.what,
                self.screen()
            );
        }
        (code, self.screen())
    }
}

/// Removes ANSI escape sequences (CSI, OSC, and two-byte escapes) and carriage returns.
pub fn strip_ansi(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\x1b' => match chars.next() {
                Some('[') => {
                    for c in chars.by_ref() {
                        if ('\x40'..='\x7e').contains(&c) {
                            break;
                        }
                    }
                }
                Some(']') => {
                    while let Some(c) = chars.next() {
                        if c == '\x07' {
                            break;
                        }
                        if c == '\x1b' && chars.peek() == Some(&'\\') {
                            chars.next();
                            break;
                        }
                    }
                }
                _ => {}
            },
            '\r' => {}
            c => out.push(c),
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Scanning fixtures with the real model.

/// `cerebro scan --json -q` over one archive written to a temporary folder; returns the report.
pub fn scan_artifact(file: &str, bytes: &[u8]) -> Value {
    let dir = tempfile::Builder::new()
        .prefix("scan-")
        .tempdir_in(work_root())
        .unwrap();
    let path = dir.path().join(file);
    std::fs::write(&path, bytes).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_cerebro"))
        .args(["scan", "--json", "-q"])
        .arg(&path)
        .env("NO_COLOR", "1")
        .output()
        .expect("run cerebro scan");
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text.lines().next().unwrap_or_else(|| {
        panic!(
            "cerebro scan printed nothing for {file}: {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    serde_json::from_str(line).unwrap_or_else(|e| panic!("bad JSON from scan ({e}): {line}"))
}

/// Checks each fixture's verdict against its intent: malicious ones must score at least
/// `margin` (well above the model's threshold) and be judged `malicious`, clean ones must be
/// `benign`. Returns a line per fixture for the failure message.
pub fn judge(
    fixtures: &[(String, &[u8], fixtures::Intent)],
    margin: f64,
) -> Result<String, String> {
    let mut lines = Vec::new();
    let mut failed = false;
    for (file, bytes, intent) in fixtures {
        let report = scan_artifact(file, bytes);
        let verdict = report["verdict"].as_str().unwrap_or("(none)").to_owned();
        let score = report["score"].as_f64().unwrap_or(f64::NAN);
        let ok = match intent {
            fixtures::Intent::Malicious => verdict == "malicious" && score >= margin,
            // Not stopped under the default config, which stops `malicious` only: a clean
            // install script that reads an environment variable (`hook-js` reads where to
            // write its marker) can score in the wide `suspicious` band below npm's threshold.
            fixtures::Intent::Benign => matches!(verdict.as_str(), "benign" | "suspicious"),
        };
        failed |= !ok;
        let seq: Vec<&str> = report["sequence"]
            .as_array()
            .map(|a| a.iter().filter_map(|t| t.as_str()).collect())
            .unwrap_or_default();
        lines.push(format!(
            "{} {file}: meant {}, judged {verdict} (score {score:.3}){}\n    sequence {}",
            if ok { "ok  " } else { "FAIL" },
            intent.verdict(),
            report["error"]
                .as_str()
                .map(|e| format!(" error: {e}"))
                .unwrap_or_default(),
            seq.join(" ")
        ));
    }
    let text = lines.join("\n");
    if failed {
        Err(text)
    } else {
        Ok(text)
    }
}

// ---------------------------------------------------------------------------------------------
// Assertion helpers.

/// Everything worth knowing when a guarded command did not do what a test expected.
pub fn explain(out: &Outcome, installed: &[String], registry: &registry::Registry) -> String {
    let log = registry.log();
    format!(
        "{out}\n--- installed afterwards ---\n{}\n--- upstream requests ({}) ---\n{}",
        if installed.is_empty() {
            "(nothing)".to_owned()
        } else {
            installed.join("\n")
        },
        log.len(),
        log.join("\n")
    )
}

/// A flagged fixture must be shown with a score at least this high: below what every
/// malicious fixture scores (0.95 or more, checked by `fixtures_are_judged_as_intended`).
pub const FLAGGED_SCORE: f64 = 0.85;

/// How long a test waits for the guard's prompt (a cold build of the tree can be slow).
pub const PROMPT_TIMEOUT: Duration = Duration::from_secs(120);

/// Runs a guarded install on a terminal with `CI=1`: the prompt policy must block without
/// showing its menu. Returns the failure context, for the caller's own checks after it.
pub fn assert_ci_prompt_blocks(
    mut cmd: Command,
    installed: impl Fn() -> Vec<String>,
    registry: &registry::Registry,
) -> String {
    cmd.env("CI", "1");
    let (code, screen) = Pty::spawn(cmd).finish(PROMPT_TIMEOUT);
    let why = explain_screen(code, &screen, &installed(), registry);
    assert_eq!(
        code,
        Some(EXIT_BLOCKED),
        "CI=1: prompt acts as block\n{why}"
    );
    assert!(
        !screen.contains("Abort the install"),
        "no menu in CI\n{why}"
    );
    assert!(
        screen.contains("CI is set"),
        "it says why it did not ask\n{why}"
    );
    why
}

/// The prompt's transcript with what the registry saw, for failure messages.
pub fn explain_screen(
    code: Option<i32>,
    screen: &str,
    installed: &[String],
    registry: &registry::Registry,
) -> String {
    format!(
        "exit: {code:?}\n--- terminal ---\n{}\n--- installed afterwards ---\n{}\n--- upstream requests ---\n{}",
        tail(screen, 12_000),
        installed.join("\n"),
        registry.log().join("\n")
    )
}

/// Whether `text` shows a score at or above `min` (as `0.97` or `97%`; versions such as
/// `0.3.1` do not count).
pub fn shows_score(text: &str, min: f64) -> bool {
    text.split(|c: char| !(c.is_ascii_digit() || c == '.' || c == '%'))
        .filter_map(|word| {
            let word = word.trim_end_matches('.');
            let (number, scale) = match word.strip_suffix('%') {
                Some(n) => (n, 100.0),
                None => (word, 1.0),
            };
            if scale == 1.0 && !number.contains('.') {
                return None;
            }
            number.parse::<f64>().ok().map(|v| v / scale)
        })
        .any(|v| v >= min && v <= 1.0)
}

/// Whether the guard (not the manager: lines from npm's log start with `npm `) printed a
/// warning that names `name`.
pub fn guard_warned(stderr: &str, name: &str) -> bool {
    stderr.lines().any(|line| {
        !line.trim_start().starts_with("npm ")
            && line.contains(name)
            && line.to_lowercase().contains("warn")
    })
}

/// The entry for `name` in a `--json` report's `packages`, matched on the normalised name.
pub fn report_entry<'a>(report: &'a Value, name: &str) -> Option<&'a Value> {
    report["packages"].as_array()?.iter().find(|p| {
        p["name"]
            .as_str()
            .is_some_and(|n| fixtures::normalize(n) == fixtures::normalize(name))
    })
}

// ---------------------------------------------------------------------------------------------
// pnpm.

/// A sandbox for pnpm: an npm sandbox (project, `.npmrc` naming the registry, npm's config
/// files) whose project lets the test packages' install scripts run (pnpm 10 runs only those
/// of `onlyBuiltDependencies`), with pnpm's store and caches under the sandbox's HOME.
pub struct PnpmSandbox {
    pub npm: NpmSandbox,
}

/// The pnpm test project's manifest: the npm one, with the fixtures' install scripts allowed.
pub const PNPM_PROJECT_JSON: &str = r#"{
  "name": "e2e-project",
  "version": "1.0.0",
  "private": true,
  "scripts": {
    "x": "node -e \"console.log('script x ran')\""
  },
  "pnpm": {
    "onlyBuiltDependencies": ["evil-js", "evil-cli-js", "hook-js"]
  }
}
"#;

impl PnpmSandbox {
    /// `None` when pnpm (or npm, node) is missing and the test should be skipped.
    pub fn new(registry: &str) -> Option<PnpmSandbox> {
        if !require_tool("pnpm") {
            return None;
        }
        let npm = NpmSandbox::new(registry)?;
        std::fs::write(npm.project.join("package.json"), PNPM_PROJECT_JSON).unwrap();
        Some(PnpmSandbox { npm })
    }

    pub fn dirs(&self) -> &Dirs {
        &self.npm.dirs
    }

    /// `cerebro pnpm [--json] -- <args>` under `policy`, in the project.
    pub fn guard(&self, policy: Policy, json: bool, args: &[&str]) -> Command {
        let mut cmd = self.npm.dirs.cerebro(&["pnpm"]);
        if json {
            cmd.arg("--json");
        }
        cmd.arg("--")
            .args(args)
            .env("CEREBRO_POLICY", policy.as_str())
            .current_dir(&self.npm.project);
        cmd
    }

    /// The real pnpm, unguarded, in the project.
    pub fn bare(&self, args: &[&str]) -> Command {
        let mut cmd = self.npm.dirs.command("pnpm");
        cmd.args(args).current_dir(&self.npm.project);
        cmd
    }

    /// Whether pnpm put `name` anywhere in `node_modules` (linked at the top or in
    /// `node_modules/.pnpm`).
    pub fn installed(&self, name: &str) -> bool {
        if self.npm.installed(name) {
            return true;
        }
        let flat = name.replace('/', "+");
        std::fs::read_dir(self.npm.project.join("node_modules/.pnpm"))
            .map(|entries| {
                entries.filter_map(|e| e.ok()).any(|e| {
                    e.file_name()
                        .to_string_lossy()
                        .starts_with(&format!("{flat}@"))
                })
            })
            .unwrap_or(false)
    }

    pub fn installed_list(&self) -> Vec<String> {
        let mut all = self.npm.installed_list();
        if let Ok(entries) = std::fs::read_dir(self.npm.project.join("node_modules/.pnpm")) {
            all.extend(
                entries
                    .filter_map(|e| e.ok())
                    .map(|e| format!(".pnpm/{}", e.file_name().to_string_lossy())),
            );
        }
        all.sort();
        all
    }

    pub fn read(&self, file: &str) -> Option<Vec<u8>> {
        self.npm.read(file)
    }
}
