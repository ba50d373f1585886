//! The shims and `install.sh`, run for real in temporary folders: fake "real" pip, npm and
//! python3 that print their arguments, and a fake `cerebro` that prints how it was called.

use std::io::Read as _;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use cerebro_guard::manager::real::{find_real_in, is_shim, SHIM_MARKER};

const SHIM_NAMES: [&str; 15] = [
    "pip", "pip3", "npm", "npx", "pnpm", "pnpx", "bun", "bunx", "yarn", "uv", "uvx", "pipx",
    "poetry", "python", "python3",
];

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn script(path: &Path, body: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, body).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// Prints `NAME [arg][arg]…` and, for cerebro, the variables the shims set.
fn printer(name: &str) -> String {
    format!(
        "#!/bin/sh\nprintf '%s' '{name}'\nfor a in \"$@\"; do printf ' [%s]' \"$a\"; done\necho\n\
         echo \"dirs=${{CEREBRO_SHIM_DIR:-}} python=${{CEREBRO_PYTHON:-}} pip=${{CEREBRO_PIP:-}}\"\n"
    )
}

struct Fixture {
    tmp: tempfile::TempDir,
    shims: PathBuf,
    real: PathBuf,
    cerebro: PathBuf,
}

impl Fixture {
    fn new() -> Fixture {
        let tmp = tempfile::tempdir().unwrap();
        let real = tmp.path().join("real");
        for name in [
            "pip", "pip3", "npm", "npx", "pnpm", "pnpx", "bun", "bunx", "yarn", "uv", "uvx",
            "pipx", "poetry", "python3",
        ] {
            script(&real.join(name), &printer(&format!("real-{name}")));
        }
        let cerebro = tmp.path().join("tools/cerebro");
        script(&cerebro, &printer("cerebro"));
        Fixture {
            tmp,
            shims: repo().join("shims"),
            real,
            cerebro,
        }
    }

    /// `PATH` from folders.
    fn path(&self, dirs: &[&Path]) -> String {
        std::env::join_paths(dirs).unwrap().into_string().unwrap()
    }

    /// The usual `PATH`: shims first, then the real tools.
    fn default_path(&self) -> String {
        self.path(&[&self.shims, &self.real])
    }

    /// Runs `line` with `sh -c` in a clean environment, with `CEREBRO_BIN` set to the fake
    /// cerebro unless `envs` sets it (empty = unset).
    fn run(&self, path: &str, line: &str, envs: &[(&str, &str)]) -> Ran {
        let mut command = Command::new("/bin/sh");
        command
            .args(["-c", line])
            .env_clear()
            .env("PATH", path)
            .env("HOME", self.tmp.path())
            .env("CEREBRO_BIN", &self.cerebro);
        for (key, value) in envs {
            if value.is_empty() {
                command.env_remove(key);
            } else {
                command.env(key, value);
            }
        }
        run_with_deadline(command)
    }
}

struct Ran {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

/// Runs `command`, killing it after 20 s (a shim loop must fail the test, not hang it).
fn run_with_deadline(mut command: Command) -> Ran {
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if start.elapsed() > Duration::from_secs(20) {
            child.kill().unwrap();
            panic!("timed out: {command:?}");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let mut stdout = String::new();
    let mut stderr = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut stdout)
        .unwrap();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    Ran {
        code: status.code(),
        stdout,
        stderr,
    }
}

#[test]
fn pip_install_reaches_cerebro_as_pip_dash_dash() {
    let f = Fixture::new();
    let ran = f.run(&f.default_path(), "pip install x", &[]);
    assert_eq!(ran.code, Some(0), "{}", ran.stderr);
    let shims = f.shims.display();
    assert_eq!(
        ran.stdout,
        format!("cerebro [pip] [--] [install] [x]\ndirs={shims} python= pip=pip\n")
    );
}

#[test]
fn pip3_and_npm_reach_cerebro() {
    let f = Fixture::new();
    let ran = f.run(&f.default_path(), "pip3 install x", &[]);
    assert!(
        ran.stdout.starts_with("cerebro [pip] [--] [install] [x]\n"),
        "{}",
        ran.stdout
    );
    assert!(ran.stdout.contains("pip=pip3"), "{}", ran.stdout);
    let ran = f.run(&f.default_path(), "npm i -D left-pad", &[]);
    assert!(
        ran.stdout
            .starts_with("cerebro [npm] [--] [i] [-D] [left-pad]\n"),
        "{}",
        ran.stdout
    );
    // Everything goes to cerebro, which passes non-installs on itself.
    let ran = f.run(&f.default_path(), "npm run build", &[]);
    assert!(ran.stdout.starts_with("cerebro [npm] [--] [run] [build]\n"));
    // npx runs package code at once: it goes to `cerebro npx`, its arguments untouched.
    let ran = f.run(&f.default_path(), "npx -y cowsay 'hi there'", &[]);
    assert!(
        ran.stdout
            .starts_with("cerebro [npx] [--] [-y] [cowsay] [hi there]\n"),
        "{}",
        ran.stdout
    );
    // pnpm too: `cerebro pnpm` decides which of its commands fetch package code.
    let ran = f.run(&f.default_path(), "pnpm dlx cowsay hi", &[]);
    assert!(
        ran.stdout
            .starts_with("cerebro [pnpm] [--] [dlx] [cowsay] [hi]\n"),
        "{}",
        ran.stdout
    );
    // pnpx is pnpm dlx.
    let ran = f.run(&f.default_path(), "pnpx cowsay hi", &[]);
    assert!(
        ran.stdout
            .starts_with("cerebro [pnpm] [--] [dlx] [cowsay] [hi]\n"),
        "{}",
        ran.stdout
    );
    let ran = f.run(
        &f.default_path(),
        "pnpx cowsay hi",
        &[("CEREBRO_POLICY", "off")],
    );
    assert!(
        ran.stdout.starts_with("real-pnpx [cowsay] [hi]\n"),
        "{}",
        ran.stdout
    );
    let ran = f.run(
        &f.default_path(),
        "npx -y cowsay hi",
        &[("CEREBRO_POLICY", "off")],
    );
    assert!(
        ran.stdout.starts_with("real-npx [-y] [cowsay] [hi]\n"),
        "{}",
        ran.stdout
    );
    // uv and uvx go to `cerebro uv` / `cerebro uvx`, their arguments untouched.
    let ran = f.run(&f.default_path(), "uv add 'x>=1'", &[]);
    assert!(
        ran.stdout.starts_with("cerebro [uv] [--] [add] [x>=1]\n"),
        "{}",
        ran.stdout
    );
    let ran = f.run(&f.default_path(), "uvx ruff check", &[]);
    assert!(
        ran.stdout
            .starts_with("cerebro [uvx] [--] [ruff] [check]\n"),
        "{}",
        ran.stdout
    );
    // pipx goes to `cerebro pipx`, its arguments untouched.
    let ran = f.run(&f.default_path(), "pipx install 'x>=1'", &[]);
    assert!(
        ran.stdout
            .starts_with("cerebro [pipx] [--] [install] [x>=1]\n"),
        "{}",
        ran.stdout
    );
    // poetry goes to `cerebro poetry`, its arguments untouched.
    let ran = f.run(&f.default_path(), "poetry add 'x@^1'", &[]);
    assert!(
        ran.stdout
            .starts_with("cerebro [poetry] [--] [add] [x@^1]\n"),
        "{}",
        ran.stdout
    );
}

#[test]
fn active_or_policy_off_reaches_the_real_tool() {
    let f = Fixture::new();
    let ran = f.run(
        &f.default_path(),
        "pip install x",
        &[("CEREBRO_ACTIVE", "1")],
    );
    assert!(
        ran.stdout.starts_with("real-pip [install] [x]\n"),
        "{}",
        ran.stdout
    );
    let ran = f.run(&f.default_path(), "npm ci", &[("CEREBRO_POLICY", "off")]);
    assert!(ran.stdout.starts_with("real-npm [ci]\n"), "{}", ran.stdout);
    let ran = f.run(
        &f.default_path(),
        "python3 -m pip install x",
        &[("CEREBRO_ACTIVE", "1")],
    );
    assert!(
        ran.stdout
            .starts_with("real-python3 [-m] [pip] [install] [x]\n"),
        "{}",
        ran.stdout
    );
    // Any other policy still guards.
    let ran = f.run(
        &f.default_path(),
        "pip install x",
        &[("CEREBRO_POLICY", "warn")],
    );
    assert!(ran.stdout.starts_with("cerebro "), "{}", ran.stdout);
}

#[test]
fn python_runs_pass_straight_through() {
    let f = Fixture::new();
    for (line, expected) in [
        ("python3 -c pass", "real-python3 [-c] [pass]\n"),
        ("python3", "real-python3\n"),
        (
            "python3 -m http.server 8000",
            "real-python3 [-m] [http.server] [8000]\n",
        ),
        ("python3 -m", "real-python3 [-m]\n"),
        (
            "python3 script.py -m pip",
            "real-python3 [script.py] [-m] [pip]\n",
        ),
    ] {
        let ran = f.run(&f.default_path(), line, &[]);
        assert!(ran.stdout.starts_with(expected), "{line}: {}", ran.stdout);
    }
}

#[test]
fn python_dash_m_pip_reaches_cerebro() {
    let f = Fixture::new();
    let python = f.real.join("python3");
    let ran = f.run(&f.default_path(), "python3 -m pip install x", &[]);
    assert_eq!(
        ran.stdout,
        format!(
            "cerebro [pip] [--] [install] [x]\ndirs={} python={} pip=\n",
            f.shims.display(),
            python.display()
        )
    );
    let ran = f.run(&f.default_path(), "python3 -mpip -q install y", &[]);
    assert!(
        ran.stdout
            .starts_with("cerebro [pip] [--] [-q] [install] [y]\n"),
        "{}",
        ran.stdout
    );
}

#[test]
fn python_flags_before_dash_m_pip_do_not_hide_it() {
    let f = Fixture::new();
    let python = f.real.join("python3");
    for line in [
        "python3 -I -m pip install x",
        "python3 -Im pip install x",
        "python3 -Impip install x",
        "python3 -u -m pip install x",
        "python3 -E -s -B -m pip install x",
        "python3 -IEsBu -m pip install x",
        "python3 -m pip.__main__ install x",
        "python3 -I -mpip.__main__ install x",
        "python3 -W ignore -X utf8 -m pip install x",
        "python3 -Wignore -Xfrozen_modules=off -O -m pip install x",
        "python3 --check-hash-based-pycs never -m pip install x",
    ] {
        let ran = f.run(&f.default_path(), line, &[]);
        assert_eq!(
            ran.stdout,
            format!(
                "cerebro [pip] [--] [install] [x]\ndirs={} python={} pip=\n",
                f.shims.display(),
                python.display()
            ),
            "{line}"
        );
    }
    // A flag's value, -c code, a script or `--` end the search: those runs are not pip's.
    for (line, expected) in [
        ("python3 -W -m pip", "real-python3 [-W] [-m] [pip]\n"),
        (
            "python3 -c 'import x' -m pip",
            "real-python3 [-c] [import x] [-m] [pip]\n",
        ),
        (
            "python3 -I script.py -m pip",
            "real-python3 [-I] [script.py] [-m] [pip]\n",
        ),
        ("python3 -- -m pip", "real-python3 [--] [-m] [pip]\n"),
        (
            "python3 -I -m pipx install",
            "real-python3 [-I] [-m] [pipx] [install]\n",
        ),
        ("python3 -I", "real-python3 [-I]\n"),
    ] {
        let ran = f.run(&f.default_path(), line, &[]);
        assert!(ran.stdout.starts_with(expected), "{line}: {}", ran.stdout);
    }
}

#[test]
fn versioned_pip_and_python_names_reach_cerebro() {
    let f = Fixture::new();
    let shims = f.tmp.path().join("versioned-shims");
    for name in ["pip3.11", "python3.12"] {
        std::fs::create_dir_all(&shims).unwrap();
        std::fs::copy(repo().join("shims/pip"), shims.join(name)).unwrap();
        script(&f.real.join(name), &printer(&format!("real-{name}")));
    }
    let path = f.path(&[&shims, &f.real]);
    let ran = f.run(&path, "pip3.11 install x", &[]);
    assert_eq!(
        ran.stdout,
        format!(
            "cerebro [pip] [--] [install] [x]\ndirs={} python= pip=pip3.11\n",
            shims.display()
        )
    );
    let ran = f.run(&path, "python3.12 -I -m pip install x", &[]);
    assert_eq!(
        ran.stdout,
        format!(
            "cerebro [pip] [--] [install] [x]\ndirs={} python={} pip=\n",
            shims.display(),
            f.real.join("python3.12").display()
        )
    );
    let ran = f.run(&path, "python3.12 -c pass", &[]);
    assert!(
        ran.stdout.starts_with("real-python3.12 [-c] [pass]\n"),
        "{}",
        ran.stdout
    );
}

#[test]
fn arguments_keep_their_spaces_and_quotes() {
    let f = Fixture::new();
    let ran = f.run(
        &f.default_path(),
        r#"pip install "a b" 'c"d' '' '$HOME' '*'"#,
        &[],
    );
    assert!(
        ran.stdout
            .starts_with("cerebro [pip] [--] [install] [a b] [c\"d] [] [$HOME] [*]\n"),
        "{}",
        ran.stdout
    );
    let ran = f.run(&f.default_path(), "python3 -c 'print(1)' '*'", &[]);
    assert!(ran.stdout.starts_with("real-python3 [-c] [print(1)] [*]\n"));
}

#[test]
fn a_shim_folder_on_path_twice_does_not_loop() {
    let f = Fixture::new();
    let link = f.tmp.path().join("link-to-shims");
    std::os::unix::fs::symlink(&f.shims, &link).unwrap();
    let slashed = PathBuf::from(format!("{}/", f.shims.display()));
    let path = f.path(&[&f.shims, &slashed, &link, &f.shims, &f.real]);
    for line in ["pip install x", "python3 -c pass"] {
        let ran = f.run(&path, line, &[("CEREBRO_ACTIVE", "1")]);
        assert_eq!(ran.code, Some(0), "{line}: {}", ran.stderr);
        assert!(ran.stdout.starts_with("real-"), "{line}: {}", ran.stdout);
    }
    // Nothing but shims: an error, at once.
    let path = f.path(&[&f.shims, &link, &f.shims]);
    let ran = f.run(&path, "pip install x", &[("CEREBRO_ACTIVE", "1")]);
    assert_eq!(ran.code, Some(127));
    assert!(ran.stderr.contains("no real pip on PATH"), "{}", ran.stderr);
}

#[test]
fn cerebro_is_found_beside_an_installed_prefix_or_refused() {
    let f = Fixture::new();
    let prefix = f.tmp.path().join("prefix");
    let shims = prefix.join("share/cerebro/shims");
    for name in SHIM_NAMES {
        script(
            &shims.join(name),
            &std::fs::read_to_string(f.shims.join(name)).unwrap(),
        );
    }
    script(&prefix.join("bin/cerebro"), &printer("installed-cerebro"));
    let path = f.path(&[&shims, &f.real]);
    let ran = f.run(&path, "pip install x", &[("CEREBRO_BIN", "")]);
    assert!(
        ran.stdout
            .starts_with("installed-cerebro [pip] [--] [install] [x]\n"),
        "{}",
        ran.stdout
    );
    // No cerebro anywhere: the install is refused, not run unguarded.
    std::fs::remove_file(prefix.join("bin/cerebro")).unwrap();
    let ran = f.run(&path, "pip install x", &[("CEREBRO_BIN", "")]);
    assert_eq!(ran.code, Some(127));
    assert_eq!(ran.stdout, "");
    assert!(
        ran.stderr.contains("cannot find the cerebro program"),
        "{}",
        ran.stderr
    );
    // A cerebro on PATH is the last resort.
    let tools = f.cerebro.parent().unwrap();
    let path = f.path(&[&shims, tools, &f.real]);
    let ran = f.run(&path, "npm ci", &[("CEREBRO_BIN", "")]);
    assert!(
        ran.stdout.starts_with("cerebro [npm] [--] [ci]\n"),
        "{}",
        ran.stdout
    );
}

#[test]
fn find_real_skips_shim_folders() {
    let f = Fixture::new();
    let path = f.path(&[&f.shims, &f.real]);
    let shims = f.shims.as_os_str();
    assert_eq!(
        find_real_in("pip", path.as_ref(), shims).unwrap(),
        f.real.join("pip")
    );
    // Not listed in CEREBRO_SHIM_DIR: the marker still gives the shims away.
    assert_eq!(
        find_real_in("npm", path.as_ref(), "".as_ref()).unwrap(),
        f.real.join("npm")
    );
    assert!(find_real_in("python", path.as_ref(), shims).is_err());
}

#[test]
fn every_shim_is_the_same_marked_posix_script() {
    let first = std::fs::read(repo().join("shims/pip")).unwrap();
    assert!(first.starts_with(b"#!/bin/sh\n"));
    let marker_at = first
        .windows(SHIM_MARKER.len())
        .position(|w| w == SHIM_MARKER.as_bytes())
        .unwrap();
    assert!(marker_at < 512);
    for name in SHIM_NAMES {
        let path = repo().join("shims").join(name);
        assert_eq!(
            std::fs::read(&path).unwrap(),
            first,
            "{name} differs from pip"
        );
        assert!(is_shim(&path));
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o111, 0o111, "{name} is not executable");
        let status = Command::new("/bin/sh")
            .arg("-n")
            .arg(&path)
            .status()
            .unwrap();
        assert!(status.success(), "{name} has a syntax error");
    }
}

#[test]
fn shell_scripts_pass_shellcheck_when_it_is_installed() {
    let Ok(status) = Command::new("shellcheck")
        .arg("--version")
        .stdout(Stdio::null())
        .status()
    else {
        return;
    };
    if !status.success() {
        return;
    }
    for (shell, file) in [("bash", "install.sh"), ("sh", "shims/pip")] {
        let output = Command::new("shellcheck")
            .args(["-s", shell])
            .arg(repo().join(file))
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "{file}:\n{}",
            String::from_utf8_lossy(&output.stdout)
        );
    }
}

// ---------------------------------------------------------------------------------------------
// install.sh

struct Install {
    tmp: tempfile::TempDir,
}

impl Install {
    fn new() -> Install {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(tmp.path().join("home")).unwrap();
        Install { tmp }
    }

    fn home(&self) -> PathBuf {
        self.tmp.path().join("home")
    }

    fn prefix(&self) -> PathBuf {
        self.tmp.path().join("prefix")
    }

    fn run(&self, options: &[&str]) -> Ran {
        let mut command = Command::new("bash");
        command
            .arg(repo().join("install.sh"))
            .args(["--binary", env!("CARGO_BIN_EXE_cerebro")])
            .arg("--prefix")
            .arg(self.prefix())
            .args(options)
            .env_clear()
            .env("HOME", self.home())
            .env("PATH", "/usr/bin:/bin")
            .env("SHELL", "/bin/bash");
        let ran = run_with_deadline(command);
        assert_eq!(ran.code, Some(0), "install.sh {options:?}: {}", ran.stderr);
        ran
    }

    /// Every file under the prefix, relative to it.
    fn files(&self) -> Vec<String> {
        let mut out = Vec::new();
        let mut stack = vec![self.prefix()];
        while let Some(dir) = stack.pop() {
            let Ok(entries) = std::fs::read_dir(&dir) else {
                continue;
            };
            for entry in entries {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    stack.push(path);
                } else {
                    let rel = path.strip_prefix(self.prefix()).unwrap();
                    out.push(rel.display().to_string());
                }
            }
        }
        out.sort();
        out
    }
}

#[test]
fn install_sh_installs_once_and_uninstalls_everything() {
    let t = Install::new();
    let bashrc = t.home().join(".bashrc");
    let zshrc = t.home().join(".zshrc");
    std::fs::write(&bashrc, "alias ll='ls -l'\n").unwrap();
    std::fs::write(&zshrc, "export X=1\n").unwrap();
    t.run(&["--add-to-profile"]);
    t.run(&["--add-to-profile"]);
    assert_eq!(
        t.files(),
        vec![
            "bin/cerebro",
            "share/cerebro/shims/bun",
            "share/cerebro/shims/bunx",
            "share/cerebro/shims/npm",
            "share/cerebro/shims/npx",
            "share/cerebro/shims/pip",
            "share/cerebro/shims/pip3",
            "share/cerebro/shims/pip3.10",
            "share/cerebro/shims/pip3.11",
            "share/cerebro/shims/pip3.12",
            "share/cerebro/shims/pip3.13",
            "share/cerebro/shims/pip3.14",
            "share/cerebro/shims/pip3.8",
            "share/cerebro/shims/pip3.9",
            "share/cerebro/shims/pipx",
            "share/cerebro/shims/pnpm",
            "share/cerebro/shims/pnpx",
            "share/cerebro/shims/poetry",
            "share/cerebro/shims/uv",
            "share/cerebro/shims/uvx",
            "share/cerebro/shims/yarn",
        ]
    );
    let shims = t.prefix().join("share/cerebro/shims");
    let pip = std::fs::read(repo().join("shims/pip")).unwrap();
    assert_eq!(std::fs::read(shims.join("pip3.12")).unwrap(), pip);
    for rc in [&bashrc, &zshrc] {
        let text = std::fs::read_to_string(rc).unwrap();
        assert_eq!(text.matches("# >>> cerebro >>>").count(), 1, "{text}");
        assert_eq!(text.matches("# <<< cerebro <<<").count(), 1, "{text}");
        assert!(text.contains(&format!("export PATH=\"{}:$PATH\"", shims.display())));
        assert!(text.contains("export CEREBRO_POLICY=prompt"));
    }
    assert!(std::fs::read_to_string(&bashrc)
        .unwrap()
        .starts_with("alias ll='ls -l'\n"));

    // A shell that reads the profile has the shim functions and the installed binary.
    let mut command = Command::new("bash");
    command
        .args([
            "-c",
            "source ~/.bashrc; type pip | head -n 1; type pip3.11 | head -n 1; command -v cerebro",
        ])
        .env_clear()
        .env("HOME", t.home())
        .env("PATH", "/usr/bin:/bin");
    let ran = run_with_deadline(command);
    assert!(ran.stdout.contains("pip is a function"), "{}", ran.stdout);
    assert!(
        ran.stdout.contains("pip3.11 is a function"),
        "{}",
        ran.stdout
    );
    assert!(ran
        .stdout
        .contains(&t.prefix().join("bin/cerebro").display().to_string()));

    let config = t.home().join(".config/cerebro");
    let cache = t.home().join(".cache/cerebro/artifacts-v1");
    std::fs::create_dir_all(&config).unwrap();
    std::fs::write(config.join("config.toml"), "").unwrap();
    std::fs::create_dir_all(&cache).unwrap();
    // Without --purge (and no terminal to ask on), settings and caches are kept.
    let ran = t.run(&["--uninstall"]);
    assert!(ran.stdout.contains("--purge"), "{}", ran.stdout);
    assert!(config.join("config.toml").exists());
    t.run(&["--uninstall", "--purge"]);
    assert_eq!(t.files(), Vec::<String>::new());
    assert!(!t.prefix().join("share/cerebro").exists());
    assert!(!config.exists() && !t.home().join(".cache/cerebro").exists());
    assert_eq!(
        std::fs::read_to_string(&bashrc).unwrap(),
        "alias ll='ls -l'\n"
    );
    assert_eq!(std::fs::read_to_string(&zshrc).unwrap(), "export X=1\n");
}

#[test]
fn install_sh_python_shims_are_opt_in() {
    let t = Install::new();
    let ran = t.run(&[]);
    // Without --add-to-profile the lines are printed, and no profile is written.
    assert!(ran.stdout.contains("# >>> cerebro >>>"), "{}", ran.stdout);
    assert!(!t.home().join(".bashrc").exists());
    assert!(!t.files().iter().any(|f| f.contains("python")));
    t.run(&["--with-python-shims"]);
    assert!(t
        .files()
        .contains(&"share/cerebro/shims/python3".to_owned()));
    assert!(t.files().contains(&"share/cerebro/shims/python".to_owned()));
    for minor in 8..=14 {
        let name = format!("share/cerebro/shims/python3.{minor}");
        assert!(t.files().contains(&name), "{name}: {:?}", t.files());
    }
    // A re-run without the option turns them off again.
    t.run(&[]);
    assert!(!t.files().iter().any(|f| f.contains("python")));
    let help = t.run(&["--help"]);
    assert!(help.stdout.contains("--with-python-shims"));
}

#[test]
fn yarn_goes_to_cerebro_yarn() {
    let f = Fixture::new();
    let ran = f.run(&f.default_path(), "yarn add left-pad", &[]);
    assert!(
        ran.stdout
            .starts_with("cerebro [yarn] [--] [add] [left-pad]\n"),
        "{}",
        ran.stdout
    );
}

#[test]
fn a_venv_pip_linked_to_the_shim_runs_that_venvs_pip() {
    // `ln -s ~/.cerebro/shims/pip venv/bin/pip`: the real Cerebro must hand over to the
    // venv's own pip (`venv/bin/python -m pip`), not to the next pip on PATH, which would
    // install into another environment. `pip --version` is passed through unjudged.
    let f = Fixture::new();
    let venv = f.tmp.path().join("venv");
    let bin = venv.join("bin");
    script(&bin.join("python"), &printer("venv-python"));
    std::fs::write(venv.join("pyvenv.cfg"), "home = /usr/bin\n").unwrap();
    std::os::unix::fs::symlink(f.shims.join("pip"), bin.join("pip")).unwrap();
    let path = f.path(&[&bin, &f.real]);
    let cerebro = env!("CARGO_BIN_EXE_cerebro");
    let ran = f.run(&path, "pip --version", &[("CEREBRO_BIN", cerebro)]);
    assert_eq!(ran.code, Some(0), "{}", ran.stderr);
    assert!(
        ran.stdout.starts_with("venv-python [-m] [pip] [--version]"),
        "{}\n{}",
        ran.stdout,
        ran.stderr
    );
}
