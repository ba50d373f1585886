//! End-to-end tests of `cerebro setup` and `cerebro daemon`: the real pip of a venv, run by
//! `sh -c` with no shim on `PATH` (as a script, a Makefile or an IDE runs it), reading the
//! `pip.conf` that `cerebro setup` wrote in a private HOME, against a daemon in front of a
//! PyPI index on loopback (`tests/support`). Nothing reaches the network.

mod support;

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use support::fixtures::{self, PY_MARKER};
use support::registry::Registry;
use support::{explain, run, PipSandbox};

/// How long the daemon may take to load the model and listen.
const START_TIMEOUT: Duration = Duration::from_secs(120);

fn registry() -> Registry {
    let mut dists = fixtures::py_clean_tree();
    dists.push(fixtures::py_marker_evil_sdist());
    Registry::with(dists, vec![])
}

/// A free port on 127.0.0.1 (bound, then let go).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A sandbox whose pip reads the user's pip.conf (no `PIP_INDEX_URL`, no
/// `PIP_CONFIG_FILE=/dev/null`), which names the loopback registry.
fn sandbox(registry: &Registry) -> Option<(PipSandbox, PathBuf, Vec<u8>)> {
    let mut sandbox = PipSandbox::new(&registry.pypi_url())?;
    sandbox.dirs.remove_env("PIP_INDEX_URL");
    sandbox.dirs.remove_env("PIP_CONFIG_FILE");
    let conf = sandbox.dirs.home.join(".config/pip/pip.conf");
    std::fs::create_dir_all(conf.parent().unwrap()).unwrap();
    let original = format!(
        "# the user's own\n[global]\r\nindex-url = {}\r\ntimeout = 30\n\n[list]\nformat = columns\n",
        registry.pypi_url()
    )
    .into_bytes();
    std::fs::write(&conf, &original).unwrap();
    Some((sandbox, conf, original))
}

/// A `cerebro daemon` started by the test, killed when dropped.
struct Daemon {
    child: Child,
    log: PathBuf,
}

impl Daemon {
    fn spawn(mut cmd: Command, log: PathBuf, port: u16) -> Daemon {
        let out = std::fs::File::create(&log).unwrap();
        cmd.stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .process_group(0);
        let child = cmd.spawn().expect("start cerebro daemon");
        let mut daemon = Daemon { child, log };
        let start = Instant::now();
        loop {
            if TcpStream::connect(SocketAddr::from(([127, 0, 0, 1], port))).is_ok() {
                // The socket may be systemd's (passed in), listening before the daemon is
                // ready: wait for its first line.
                if daemon.output().contains("Listening") {
                    return daemon;
                }
            }
            if let Some(status) = daemon.child.try_wait().unwrap() {
                panic!("the daemon exited ({status}):\n{}", daemon.output());
            }
            assert!(
                start.elapsed() < START_TIMEOUT,
                "the daemon did not listen on {port}:\n{}",
                daemon.output()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn output(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn stop(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `sh -c "<venv>/bin/pip ARGS"`: the venv's pip as a script runs it, no shim anywhere.
fn script_pip(sandbox: &PipSandbox, args: &str) -> Command {
    let mut cmd = sandbox.dirs.command("/bin/sh");
    cmd.arg("-c")
        .arg(format!("{} {args}", sandbox.venv.join("bin/pip").display()));
    cmd
}

fn no_shims_on_path() {
    let path = std::env::var_os("PATH").unwrap_or_default();
    for dir in std::env::split_paths(&path) {
        assert!(
            !Path::new(&dir).join("pip").is_file()
                || !std::fs::read_to_string(Path::new(&dir).join("pip"))
                    .unwrap_or_default()
                    .contains("cerebro"),
            "a Cerebro shim is on the test's PATH ({}): the test would not show what it claims",
            dir.display()
        );
    }
}

fn daemon_log(sandbox: &PipSandbox) -> String {
    std::fs::read_to_string(sandbox.dirs.cache.join("daemon.log")).unwrap_or_default()
}

#[test]
fn a_venv_pip_run_by_a_script_is_judged_by_the_daemon_setup_points_it_at() {
    no_shims_on_path();
    let registry = registry();
    let Some((mut sandbox, conf, original)) = sandbox(&registry) else {
        return;
    };
    let port = free_port();
    let setup = run(sandbox
        .dirs
        .cerebro(&["setup", "--no-systemd", "--port", &port.to_string()]));
    assert_eq!(setup.code, Some(0), "{setup}");
    let written = std::fs::read_to_string(&conf).unwrap();
    let guard = format!("http://127.0.0.1:{port}/simple/");
    assert!(
        written.contains(&format!("index-url = {guard}")),
        "{written}"
    );
    assert!(
        !written.contains(&registry.pypi_url()),
        "the old index is out of pip.conf:\n{written}"
    );
    assert!(written.contains("[list]\nformat = columns\n"), "{written}");
    let state = std::fs::read_to_string(sandbox.dirs.config.join("daemon.toml")).unwrap();
    assert!(state.contains(&registry.pypi_url()), "{state}");

    // Nothing listens yet: pip cannot connect, and installs nothing (fails closed).
    let out = run(script_pip(&sandbox, "install gamma-lib"));
    assert_ne!(out.code, Some(0), "{out}");
    assert!(!sandbox.installed("gamma-lib"), "{out}");
    assert_eq!(registry.total_hits(), 0, "pip went past the daemon: {out}");

    // The policy is the default, prompt: without a terminal, the daemon blocks.
    let daemon = Daemon::spawn(
        sandbox
            .dirs
            .cerebro(&["daemon", "--listen", &format!("127.0.0.1:{port}")]),
        sandbox.dirs.root().join("daemon.out"),
        port,
    );
    assert!(
        daemon.output().contains("no terminal to ask on"),
        "{}",
        daemon.output()
    );

    let out = run(script_pip(&sandbox, &format!("install {}", PY_MARKER.0)));
    let why = format!(
        "{}\n--- daemon ---\n{}\n--- daemon.log ---\n{}",
        explain(&out, &sandbox.installed_list(), &registry),
        daemon.output(),
        daemon_log(&sandbox)
    );
    assert!(
        !sandbox.dirs.marker_written(),
        "the sdist's setup.py ran: the daemon served it\n{why}"
    );
    assert_ne!(out.code, Some(0), "{why}");
    assert!(!sandbox.installed(PY_MARKER.0), "{why}");
    assert!(out.stderr.contains("403"), "pip says it was refused\n{why}");
    assert!(
        out.stderr.contains(&format!(
            "{} {} was judged malicious",
            PY_MARKER.0, PY_MARKER.1
        )) && out.stderr.contains("daemon.log"),
        "pip's own output says why, and where to read more\n{why}"
    );
    let log = daemon_log(&sandbox);
    assert!(
        log.lines().any(
            |l| l.contains(&format!("blocked pypi {} {}", PY_MARKER.0, PY_MARKER.1))
                && l.contains("malicious")
        ),
        "the log says what was blocked and why\n{why}"
    );

    // `python -m pip`, `pip download` and `pip wheel` (which build sdists) read it too.
    let dest = sandbox.dirs.root().join("downloads");
    for line in [
        format!(
            "{} -m pip install {}",
            sandbox.venv.join("bin/python").display(),
            PY_MARKER.0
        ),
        format!(
            "{} download -d {} {}",
            sandbox.venv.join("bin/pip").display(),
            dest.display(),
            PY_MARKER.0
        ),
        format!(
            "{} wheel -w {} {}",
            sandbox.venv.join("bin/pip").display(),
            dest.display(),
            PY_MARKER.0
        ),
    ] {
        let mut cmd = sandbox.dirs.command("/bin/sh");
        cmd.args(["-c", &line]);
        let out = run(cmd);
        assert_ne!(out.code, Some(0), "{out}");
        assert!(out.stderr.contains("was judged malicious"), "{out}");
        assert!(!sandbox.dirs.marker_written(), "setup.py ran: {out}");
        assert!(!sandbox.installed(PY_MARKER.0), "{out}");
    }
    assert!(
        !dest.exists() || std::fs::read_dir(&dest).unwrap().next().is_none(),
        "nothing downloaded"
    );

    // A clean tree installs through the daemon.
    let out = run(script_pip(&sandbox, "install alpha-lib"));
    let why = format!(
        "{}\n--- daemon.log ---\n{}",
        explain(&out, &sandbox.installed_list(), &registry),
        daemon_log(&sandbox)
    );
    assert_eq!(out.code, Some(0), "{why}");
    for name in ["alpha-lib", "beta-lib", "gamma-lib"] {
        assert!(sandbox.installed(name), "{name} missing\n{why}");
    }
    assert!(
        daemon_log(&sandbox).contains("served pypi gamma-lib 1.0.0"),
        "{why}"
    );

    // The shims' per-command guard reads pip.conf too: it fronts the user's index that
    // setup remembered, not the daemon (which may not run).
    daemon.stop();
    sandbox.fresh_venv();
    let out = run(sandbox.guard(support::Policy::Block, &["install", "beta-lib"]));
    assert_eq!(
        out.code,
        Some(0),
        "{}",
        explain(&out, &sandbox.installed_list(), &registry)
    );
    assert!(sandbox.installed("gamma-lib"));

    // With the daemon stopped, the venv's pip fails and installs nothing.
    sandbox.fresh_venv();
    let out = run(script_pip(&sandbox, "install gamma-lib"));
    assert_ne!(out.code, Some(0), "{out}");
    assert!(!sandbox.installed("gamma-lib"), "{out}");

    // Undo puts pip.conf back byte for byte.
    let undo = run(sandbox.dirs.cerebro(&["setup", "--undo"]));
    assert_eq!(undo.code, Some(0), "{undo}");
    assert_eq!(std::fs::read(&conf).unwrap(), original);
    assert!(!sandbox.dirs.config.join("daemon.toml").exists());
    let out = run(script_pip(&sandbox, "install gamma-lib"));
    assert_eq!(out.code, Some(0), "pip reads the registry again: {out}");
}

#[test]
fn setup_refuses_when_another_config_file_would_bypass_the_daemon_and_changes_nothing() {
    let registry = registry();
    let Some((sandbox, conf, original)) = sandbox(&registry) else {
        return;
    };
    // The legacy user file's [install] section wins over [global] of any file.
    let legacy = sandbox.dirs.home.join(".pip/pip.conf");
    std::fs::create_dir_all(legacy.parent().unwrap()).unwrap();
    std::fs::write(
        &legacy,
        "[install]\nextra-index-url = https://other.example/simple\n",
    )
    .unwrap();
    let out =
        run(sandbox
            .dirs
            .cerebro(&["setup", "--no-systemd", "--port", &free_port().to_string()]));
    assert_eq!(out.code, Some(2), "{out}");
    assert!(
        out.stderr.contains(".pip/pip.conf"),
        "names the file: {out}"
    );
    assert_eq!(std::fs::read(&conf).unwrap(), original, "pip.conf put back");
    assert!(!sandbox.dirs.config.join("daemon.toml").exists());
    assert!(!sandbox.dirs.config.join("pip.conf.before-setup").exists());

    // The daemon never listens beyond loopback (it fetches with the user's credentials).
    let out = run(sandbox.dirs.cerebro(&["daemon", "--listen", "0.0.0.0:0"]));
    assert_eq!(out.code, Some(2), "{out}");
    assert!(out.stderr.contains("loopback only"), "{out}");

    // An undo with nothing set up says so.
    let out = run(sandbox.dirs.cerebro(&["setup", "--undo"]));
    assert_eq!(out.code, Some(2), "{out}");
    assert!(out.stderr.contains("not set up"), "{out}");
}

/// systemd's socket activation, as systemd does it: the listening socket is descriptor 3,
/// `LISTEN_PID` the daemon's own pid (a Python wrapper binds, then execs the daemon, keeping
/// its pid). The daemon serves on it, and exits after its idle time.
#[test]
fn a_socket_passed_by_systemd_is_served_and_the_daemon_exits_when_idle() {
    let registry = registry();
    let Some((mut sandbox, _conf, _)) = sandbox(&registry) else {
        return;
    };
    let port = free_port();
    // pip.conf as setup would write it (without setup: the daemon is told its upstream).
    std::fs::write(
        sandbox.dirs.home.join(".config/pip/pip.conf"),
        format!("[global]\nindex-url = http://127.0.0.1:{port}/simple/\n"),
    )
    .unwrap();
    sandbox.dirs.set_env("CEREBRO_POLICY", "block");
    let wrapper = "import os, socket, sys\n\
                   s = socket.socket()\n\
                   s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n\
                   s.bind(('127.0.0.1', int(sys.argv[1])))\n\
                   s.listen(16)\n\
                   os.dup2(s.fileno(), 3)\n\
                   os.set_inheritable(3, True)\n\
                   os.environ['LISTEN_PID'] = str(os.getpid())\n\
                   os.environ['LISTEN_FDS'] = '1'\n\
                   os.execv(sys.argv[2], sys.argv[2:])\n";
    let mut cmd = sandbox.dirs.command(support::pip_python());
    let bin = support::cerebro_bin();
    cmd.args(["-c", wrapper, &port.to_string()])
        .arg(&bin)
        .args([
            "daemon",
            // In use (by the passed socket): binding it instead of taking fd 3 would fail.
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--idle-exit",
            "3s",
            "--upstream",
            &registry.pypi_url(),
        ]);
    let mut daemon = Daemon::spawn(cmd, sandbox.dirs.root().join("daemon.out"), port);
    assert!(
        daemon.output().contains(&format!("127.0.0.1:{port}")),
        "{}",
        daemon.output()
    );
    let out = run(script_pip(&sandbox, "install gamma-lib"));
    assert_eq!(
        out.code,
        Some(0),
        "{}\n{}",
        explain(&out, &sandbox.installed_list(), &registry),
        daemon.output()
    );
    assert!(sandbox.installed("gamma-lib"));
    let out = run(script_pip(&sandbox, &format!("install {}", PY_MARKER.0)));
    assert_ne!(out.code, Some(0), "{out}");
    assert!(!sandbox.dirs.marker_written(), "{out}");

    let start = Instant::now();
    let status = loop {
        if let Some(status) = daemon.child.try_wait().unwrap() {
            break status;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "the daemon did not exit when idle:\n{}",
            daemon.output()
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(status.code(), Some(0), "{}", daemon.output());
    assert!(daemon_log(&sandbox).contains("exiting"));
}
