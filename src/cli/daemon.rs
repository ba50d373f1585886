//! `cerebro daemon` and `cerebro setup`: the guard for installs nobody typed (a venv's pip
//! run by a script, a Makefile, an IDE, CI), through pip's own configuration.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use clap::Args;

use cerebro_guard::daemon::{self, setup, Listen};
use cerebro_guard::policy::Mode;

use super::{status, EXIT_OK};

pub const DAEMON_AFTER_HELP: &str = "\
The daemon takes the listening socket systemd passes it (LISTEN_FDS, from the socket unit
`cerebro setup` writes); without one it binds --listen itself. There is no terminal to ask
on: policy `prompt` acts as `block`. A refused file is answered 403, and every decision is
appended to daemon.log in the cache folder (~/.cache/cerebro/daemon.log).

Exit codes:
  0  stopped after --idle-exit without a request
  2  could not start (bad flag, port in use, no upstream, unreadable config)";

pub const SETUP_AFTER_HELP: &str = "\
What it changes (all put back by `cerebro setup --undo`):
  ~/.config/pip/pip.conf   every index setting taken out, `index-url` naming the daemon;
                           the previous file kept as ~/.config/cerebro/pip.conf.before-setup
  ~/.config/cerebro/daemon.toml
                           the index pip used before, which the daemon fronts
  ~/.config/systemd/user/cerebro-daemon.socket, .service
                           (not with --no-systemd) the first connection starts the daemon

Without systemd, start `cerebro daemon` yourself (a line in your profile); until it runs, pip
cannot connect and installs nothing: it fails closed.

Exit codes:
  0  done
  2  refused, nothing changed (already set up, another pip config file would bypass the
     daemon, pip.conf edited since setup on --undo, ...)";

#[derive(Debug, Args)]
pub struct DaemonArgs {
    /// Address to listen on when systemd passed no socket.
    #[arg(long, value_name = "ADDR", default_value_t = default_listen())]
    pub listen: SocketAddr,

    /// Exit after this long without a request (`15m`, `1h`); the socket unit starts it
    /// again on the next connection. Default: run until stopped.
    #[arg(long, value_name = "DURATION")]
    pub idle_exit: Option<String>,

    /// The index to front (repeat for extra indexes), instead of the one `cerebro setup`
    /// remembered or, without a set-up, pip's configuration.
    #[arg(long, value_name = "URL")]
    pub upstream: Vec<String>,
}

#[derive(Debug, Args)]
pub struct SetupArgs {
    /// Put back what setup changed: pip.conf byte for byte, the units removed.
    #[arg(long)]
    pub undo: bool,

    /// With --undo: also when pip.conf was edited since setup (the edited file is kept as
    /// pip.conf.edited-after-setup).
    #[arg(long, requires = "undo")]
    pub force: bool,

    /// Port of the daemon on 127.0.0.1.
    #[arg(long, value_name = "PORT", default_value_t = setup::DEFAULT_PORT)]
    pub port: u16,

    /// Write no systemd units: you start `cerebro daemon` yourself.
    #[arg(long)]
    pub no_systemd: bool,
}

fn default_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], setup::DEFAULT_PORT))
}

pub fn run_daemon(args: DaemonArgs) -> anyhow::Result<ExitCode> {
    let idle_exit = args
        .idle_exit
        .as_deref()
        .map(cerebro_guard::policy::release_age::parse_age)
        .transpose()
        .map_err(|e| anyhow::anyhow!("--idle-exit: {e}"))?
        .filter(|d| *d > Duration::ZERO);
    let upstreams = args
        .upstream
        .iter()
        .map(|u| cerebro_fetch::Url::parse(u).with_context(|| format!("--upstream {u}")))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let listen = match daemon::activation::inherited_listener().map_err(anyhow::Error::msg)? {
        Some(listener) => Listen::Inherited(listener),
        None => Listen::Bind(args.listen),
    };
    daemon::run(
        daemon::DaemonOptions {
            listen,
            idle_exit,
            upstreams,
        },
        |started| {
            let policy = if started.prompt_as_block {
                "block (policy prompt: there is no terminal to ask on)".to_owned()
            } else {
                started.mode.as_str().to_owned()
            };
            status(
                "Listening",
                &format!(
                    "on http://{}/simple/ in front of {}, policy {policy}; decisions in {}",
                    started.addr,
                    started.upstreams.join(" "),
                    started.log.display()
                ),
            );
            if started.mode == Mode::Off {
                status("Note", "policy off: everything is served unjudged");
            }
        },
    )?;
    super::cache::trim();
    Ok(ExitCode::from(EXIT_OK))
}

pub fn run_setup(args: SetupArgs) -> anyhow::Result<ExitCode> {
    if args.undo {
        let done = setup::undo(args.force)?;
        status(
            "Restored",
            &if done.restored {
                format!("{} as it was before setup", done.state.pip_conf.display())
            } else {
                format!(
                    "{} removed (there was none before setup)",
                    done.state.pip_conf.display()
                )
            },
        );
        for unit in &done.state.units {
            status("Removed", &unit.display().to_string());
        }
        if let Some(why) = done.systemctl_failed {
            status("Note", &format!("{why}: stop `cerebro daemon` yourself"));
        }
        return Ok(ExitCode::from(EXIT_OK));
    }
    let cerebro_bin = std::env::current_exe().context("cannot tell where cerebro is")?;
    let done = setup::setup(&setup::SetupOptions {
        listen: SocketAddr::from(([127, 0, 0, 1], args.port)),
        systemd: !args.no_systemd,
        cerebro_bin,
        idle_exit: setup::DEFAULT_IDLE_EXIT,
        pip_timeout: cerebro_guard::policy::Config::load()?.installer_timeout(),
    })?;
    let state = &done.state;
    let fronted: Vec<String> = std::iter::once(&state.index)
        .chain(&state.extra)
        .map(|u| redact(u))
        .collect();
    status(
        "Wrote",
        &format!(
            "{}: every pip reads {} (in front of {})",
            state.pip_conf.display(),
            state.guard_url,
            fronted.join(" ")
        ),
    );
    for unit in &state.units {
        status("Wrote", &unit.display().to_string());
    }
    match (&done.systemctl_failed, state.units.is_empty()) {
        (None, false) => status(
            "Enabled",
            "cerebro-daemon.socket: the first pip to connect starts the daemon",
        ),
        (Some(why), _) => status(
            "Note",
            &format!(
                "{why}. Until `cerebro daemon` runs, pip cannot connect and installs \
                 nothing: start it yourself, e.g. in your profile: \
                 `(cerebro daemon --idle-exit 15m >/dev/null 2>&1 &)`"
            ),
        ),
        (None, true) => status(
            "Note",
            "no systemd units written: start `cerebro daemon` yourself (e.g. in your \
             profile); until it runs, pip cannot connect and installs nothing",
        ),
    }
    for var in &done.overriding_env {
        status(
            "Note",
            &format!("{var} is set in this shell: it overrides pip.conf, so that pip does not read the daemon while it is set"),
        );
    }
    Ok(ExitCode::from(EXIT_OK))
}

/// A URL without its password, for the terminal.
fn redact(url: &str) -> String {
    match cerebro_fetch::Url::parse(url) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("****"));
            u.to_string()
        }
        _ => url.to_owned(),
    }
}
