//! `cerebro setup`: point every pip of the user at the guard daemon, and `--undo` it.
//!
//! The shims only catch a `pip` typed in an interactive shell; a venv's own `bin/pip` run by
//! a script, a Makefile or an IDE comes before them on `PATH`. pip reads the user's
//! `pip.conf` whoever runs it, so setup writes `index-url = http://127.0.0.1:PORT/simple/`
//! there (after taking every index setting out of it, remembered in Cerebro's own
//! `daemon.toml` for the daemon to front), and a systemd user socket unit on that port that
//! starts `cerebro daemon` on the first connection. When the daemon cannot start, pip cannot
//! connect, and installs nothing: the set-up fails closed.
//!
//! Nothing is changed that cannot be put back exactly: the previous `pip.conf` is kept
//! (bytes and mode) beside `daemon.toml`, every file is written atomically, and `--undo`
//! refuses to overwrite a `pip.conf` edited since.

use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use reqwest::Url;
use serde::{Deserialize, Serialize};

use super::pipconf;
use crate::manager::pip as pip_args;

/// The daemon's port unless told otherwise (`cerebro setup --port`): the port devpi's
/// index server made the usual one for a PyPI proxy on a developer's machine.
pub const DEFAULT_PORT: u16 = 3141;
/// The socket unit's name (and, with `.service`, the service's).
pub const UNIT: &str = "cerebro-daemon";
/// How long a daemon started on demand waits without a request before it exits.
pub const DEFAULT_IDLE_EXIT: Duration = Duration::from_secs(15 * 60);

/// Why setup or undo could not be done. One line naming the file and what to do; nothing
/// was changed (or what was changed was put back) when one is returned.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error("cannot read {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot write {}: {source}", path.display())]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}: {reason}", path.display())]
    Bad { path: PathBuf, reason: String },
    #[error("{0}")]
    Refused(String),
}

/// What setup remembers, in `daemon.toml` in Cerebro's config folder: the index pip used
/// before (the daemon fronts it; the shims' per-command guard uses it instead of the
/// daemon's URL), and what was written where, for `--undo`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct State {
    /// The daemon's address (`127.0.0.1:3141`).
    pub listen: String,
    /// The URL written to `pip.conf`.
    pub guard_url: String,
    /// The user's index before setup (credentials kept: the file is the user's only).
    pub index: String,
    /// The user's extra indexes before setup, in pip's order.
    #[serde(default)]
    pub extra: Vec<String>,
    /// The CA bundle pip was configured with (`cert =`), for the daemon's downloads.
    #[serde(default)]
    pub cert: Option<PathBuf>,
    /// The `pip.conf` written.
    pub pip_conf: PathBuf,
    /// The copy of the previous `pip.conf`; `None` when there was none (undo removes it).
    #[serde(default)]
    pub backup: Option<PathBuf>,
    /// The previous file's permission bits.
    #[serde(default)]
    pub backup_mode: Option<u32>,
    /// The sha256 of what setup wrote: undo puts the backup back only over that.
    pub written_sha256: String,
    /// The systemd unit files written (none with `--no-systemd`).
    #[serde(default)]
    pub units: Vec<PathBuf>,
}

impl State {
    /// `daemon.toml` in the config folder.
    pub fn path() -> Option<PathBuf> {
        cerebro_settings::config_dir().map(|d| d.join("daemon.toml"))
    }

    /// The state setup left, `None` when setup has not run (or was undone).
    pub fn load() -> Result<Option<State>, SetupError> {
        let Some(path) = State::path() else {
            return Ok(None);
        };
        State::load_from(&path)
    }

    fn load_from(path: &Path) -> Result<Option<State>, SetupError> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => {
                return Err(SetupError::Read {
                    path: path.to_owned(),
                    source,
                })
            }
        };
        toml::from_str(&text)
            .map(Some)
            .map_err(|e| SetupError::Bad {
                path: path.to_owned(),
                reason: e.message().to_owned(),
            })
    }

    /// The upstream indexes the daemon fronts, in pip's order.
    pub fn upstreams(&self) -> Result<Vec<Url>, SetupError> {
        std::iter::once(&self.index)
            .chain(&self.extra)
            .map(|u| {
                Url::parse(u).map_err(|e| SetupError::Bad {
                    path: State::path().unwrap_or_default(),
                    reason: format!("bad index URL {}: {e}", crate::manager::redact(u)),
                })
            })
            .collect()
    }
}

/// Replaces the daemon's URL, where the user's pip configuration gives it (as setup wrote
/// it), by the indexes setup remembered: the shims' per-command guard fronts the user's
/// real index rather than the daemon (which may not be running). Nothing changes without a
/// set-up, or when the index is another one (a `--index-url` of the user's).
pub fn unfront(upstream: &mut pip_args::PipUpstream) {
    if let Ok(Some(state)) = State::load() {
        unfront_with(&state, upstream);
    }
}

fn unfront_with(state: &State, upstream: &mut pip_args::PipUpstream) {
    let Ok(urls) = state.upstreams() else {
        return;
    };
    let guard = Url::parse(&state.guard_url).ok();
    let is_guard = |u: &Url| guard.as_ref() == Some(u);
    upstream.extra.retain(|u| !is_guard(u));
    if is_guard(&upstream.index) {
        let mut urls = urls.into_iter();
        upstream.index = urls.next().expect("the index is first");
        for url in urls {
            if !upstream.extra.contains(&url) {
                upstream.extra.push(url);
            }
        }
        if upstream.cert.is_none() {
            upstream.cert = state.cert.clone();
        }
    }
}

/// What `cerebro setup` is asked to do.
#[derive(Debug, Clone)]
pub struct SetupOptions {
    pub listen: SocketAddr,
    /// Write the systemd user units and enable the socket.
    pub systemd: bool,
    /// The `cerebro` binary the service runs.
    pub cerebro_bin: PathBuf,
    pub idle_exit: Duration,
    /// pip's `timeout` toward the daemon ([`crate::policy::Config::installer_timeout`]),
    /// written unless the user's `[global]` has one.
    pub pip_timeout: Duration,
}

/// What setup did, for the command line to tell.
#[derive(Debug, Clone)]
pub struct SetupOutcome {
    pub state: State,
    /// The user's variables that would still send pip elsewhere when set in a shell
    /// (`PIP_INDEX_URL`, `PIP_CONFIG_FILE`, …), seen set now.
    pub overriding_env: Vec<String>,
    /// `systemctl --user enable --now` failed or could not run: why. The daemon must then
    /// be started another way, and until it is pip cannot connect (fails closed).
    pub systemctl_failed: Option<String>,
}

/// Where pip reads the user's own config (`$XDG_CONFIG_HOME/pip/pip.conf`), and the
/// systemd user units folder.
fn user_paths(env: &dyn Fn(&str) -> Option<String>) -> Result<(PathBuf, PathBuf), SetupError> {
    let home = env("HOME")
        .filter(|h| !h.is_empty())
        .ok_or_else(|| SetupError::Refused("HOME is not set: no user pip.conf to write".into()))?;
    let config_home = env("XDG_CONFIG_HOME")
        .filter(|v| !v.trim().is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(&home).join(".config"));
    Ok((
        config_home.join("pip").join("pip.conf"),
        config_home.join("systemd").join("user"),
    ))
}

/// The environment setup reads pip's configuration with: the process's, without `PIP_*`
/// variables and `VIRTUAL_ENV` (those belong to one shell, not to every pip of the user).
fn config_env(name: &str) -> Option<String> {
    if name.starts_with("PIP_") || name == "VIRTUAL_ENV" {
        return None;
    }
    std::env::var(name).ok()
}

/// The index settings pip would use with the user's config files, as [`pip_args::upstream`]
/// reads them.
fn effective_upstream(
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<pip_args::PipUpstream, SetupError> {
    let cwd = std::env::temp_dir();
    let install = match pip_args::parse_in(&["install".into()], &cwd, env) {
        Ok(pip_args::PipCommand::Install(i)) => i,
        _ => unreachable!("`pip install` is an install"),
    };
    let files = pip_args::pip_config_files(env, false, &[]);
    pip_args::upstream(&install, env, &files).map_err(|e| SetupError::Refused(e.to_string()))
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest as _;
    sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Writes atomically (a file beside it, then a rename) with the given permission bits.
fn write(path: &Path, bytes: &[u8], mode: u32) -> Result<(), SetupError> {
    let err = |source| SetupError::Write {
        path: path.to_owned(),
        source,
    };
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(err)?;
    let mut temp = tempfile::NamedTempFile::new_in(dir).map_err(err)?;
    std::io::Write::write_all(&mut temp, bytes).map_err(err)?;
    temp.as_file().sync_all().map_err(err)?;
    std::fs::set_permissions(temp.path(), std::fs::Permissions::from_mode(mode)).map_err(err)?;
    temp.persist(path).map_err(|e| err(e.error))?;
    Ok(())
}

/// The socket unit: systemd listens on the daemon's port and starts the service on the
/// first connection, handing it the socket.
pub fn socket_unit(listen: SocketAddr) -> String {
    format!(
        "# written by `cerebro setup` (`cerebro setup --undo` removes it)\n\
         [Unit]\n\
         Description=Cerebro guard index for pip (pip.conf points here)\n\
         \n\
         [Socket]\n\
         ListenStream={listen}\n\
         \n\
         [Install]\n\
         WantedBy=sockets.target\n"
    )
}

/// The service unit: `cerebro daemon`, given the socket, exiting after `idle` without a
/// request (the socket stays, and starts it again). The Cerebro folders in force at setup
/// are passed on, so that the daemon reads the same `daemon.toml`.
pub fn service_unit(
    cerebro_bin: &Path,
    idle: Duration,
    env: &dyn Fn(&str) -> Option<String>,
) -> String {
    let quote = |s: &str| format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""));
    let mut environment = String::new();
    for key in [
        cerebro_settings::ENV_CONFIG_DIR,
        cerebro_settings::ENV_CACHE_DIR,
    ] {
        if let Some(v) = env(key).filter(|v| !v.is_empty()) {
            environment.push_str(&format!("Environment={}\n", quote(&format!("{key}={v}"))));
        }
    }
    format!(
        "# written by `cerebro setup` (`cerebro setup --undo` removes it)\n\
         [Unit]\n\
         Description=Cerebro guard index for pip: judges every package before pip gets it\n\
         Requires={UNIT}.socket\n\
         After={UNIT}.socket\n\
         \n\
         [Service]\n\
         ExecStart={} daemon --idle-exit {}s\n\
         {environment}",
        quote(&cerebro_bin.to_string_lossy()),
        idle.as_secs(),
    )
}

fn systemctl(args: &[&str]) -> Result<(), String> {
    let out = std::process::Command::new("systemctl")
        .arg("--user")
        .args(args)
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(|e| format!("cannot run systemctl: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "`systemctl --user {}` failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// Points the user's pip at the daemon (see the module's comment). Refused when already set
/// up, when pip's configuration names no index (`no-index`) or a remote find-links page,
/// or when another config file (system-wide, `~/.pip/pip.conf`) would still send pip past
/// the guard after the rewrite; in those cases nothing is left changed.
pub fn setup(options: &SetupOptions) -> Result<SetupOutcome, SetupError> {
    setup_in(options, &config_env)
}

fn setup_in(
    options: &SetupOptions,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<SetupOutcome, SetupError> {
    let state_path = State::path().ok_or_else(|| {
        SetupError::Refused("no config folder: set CEREBRO_CONFIG_DIR or HOME".into())
    })?;
    if State::load_from(&state_path)?.is_some() {
        return Err(SetupError::Refused(format!(
            "already set up ({}): run `cerebro setup --undo` first to change it",
            state_path.display()
        )));
    }
    let (pip_conf, unit_dir) = user_paths(env)?;
    let guard_url = format!("http://{}/simple/", options.listen);
    let before = effective_upstream(env)?;
    if before.no_index {
        return Err(SetupError::Refused(
            "pip's configuration sets no-index: there is no index for the daemon to front".into(),
        ));
    }
    if let Some(f) = before.remote_find_links.first() {
        return Err(SetupError::Refused(format!(
            "pip's configuration reads the remote find-links page {}, which the daemon \
             cannot front: remove it first",
            crate::manager::redact(f)
        )));
    }
    if before.index.as_str() == guard_url || before.extra.iter().any(|u| u.as_str() == guard_url) {
        return Err(SetupError::Refused(format!(
            "pip's configuration already names {guard_url}, with no record of a set-up in {}: \
             remove it from pip.conf first",
            state_path.display()
        )));
    }

    let original = match std::fs::read(&pip_conf) {
        Ok(bytes) => Some(bytes),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(source) => {
            return Err(SetupError::Read {
                path: pip_conf,
                source,
            })
        }
    };
    let original_mode = std::fs::metadata(&pip_conf)
        .ok()
        .map(|m| m.permissions().mode() & 0o7777);
    let text = match &original {
        Some(bytes) => String::from_utf8(bytes.clone()).map_err(|_| SetupError::Bad {
            path: pip_conf.clone(),
            reason: "not UTF-8 text: not rewritten".into(),
        })?,
        None => String::new(),
    };
    let rewritten = pipconf::point_at(&text, &guard_url, options.pip_timeout.as_secs().max(1));
    let config_dir = state_path.parent().expect("daemon.toml is in a folder");
    let backup = original
        .as_ref()
        .map(|_| config_dir.join("pip.conf.before-setup"));
    let state = State {
        listen: options.listen.to_string(),
        guard_url: guard_url.clone(),
        index: before.index.to_string(),
        extra: before.extra.iter().map(Url::to_string).collect(),
        cert: before.cert.clone(),
        pip_conf: pip_conf.clone(),
        backup: backup.clone(),
        backup_mode: original_mode,
        written_sha256: sha256_hex(rewritten.text.as_bytes()),
        units: Vec::new(),
    };
    // The backup and the record first: whatever happens next, undo can put the file back.
    if let (Some(path), Some(bytes)) = (&backup, &original) {
        write(path, bytes, 0o600)?;
    }
    let mut state = state;
    save(&state_path, &state)?;
    write(
        &pip_conf,
        rewritten.text.as_bytes(),
        original_mode.unwrap_or(0o644),
    )?;
    let after = effective_upstream(env);
    let leak = match &after {
        Ok(u) if u.index.as_str() == guard_url && u.extra.is_empty() && !u.no_index => None,
        Ok(u) => Some(format!(
            "another pip config file ({}) still sends pip to {}: change it, then run setup again",
            pip_args::pip_config_files(env, false, &[])
                .iter()
                .filter(|f| **f != pip_conf && f.exists())
                .map(|f| f.display().to_string())
                .collect::<Vec<_>>()
                .join(", "),
            std::iter::once(&u.index)
                .chain(&u.extra)
                .filter(|x| x.as_str() != guard_url)
                .map(|x| crate::manager::redact(x.as_str()))
                .collect::<Vec<_>>()
                .join(" ")
        )),
        Err(e) => Some(e.to_string()),
    };
    if let Some(why) = leak {
        undo_files(&state_path, &state, false)?;
        return Err(SetupError::Refused(why));
    }

    let mut systemctl_failed = None;
    if options.systemd {
        let socket = unit_dir.join(format!("{UNIT}.socket"));
        let service = unit_dir.join(format!("{UNIT}.service"));
        state.units = vec![socket.clone(), service.clone()];
        save(&state_path, &state)?;
        write(&socket, socket_unit(options.listen).as_bytes(), 0o644)?;
        write(
            &service,
            service_unit(&options.cerebro_bin, options.idle_exit, env).as_bytes(),
            0o644,
        )?;
        systemctl_failed = systemctl(&["daemon-reload"])
            .and_then(|()| systemctl(&["enable", "--now", &format!("{UNIT}.socket")]))
            .err();
    }
    let overriding_env = [
        "PIP_INDEX_URL",
        "PIP_EXTRA_INDEX_URL",
        "PIP_CONFIG_FILE",
        "PIP_NO_INDEX",
        "PIP_FIND_LINKS",
    ]
    .iter()
    .filter(|k| std::env::var_os(k).is_some_and(|v| !v.is_empty()))
    .map(|k| k.to_string())
    .collect();
    Ok(SetupOutcome {
        state,
        overriding_env,
        systemctl_failed,
    })
}

fn save(path: &Path, state: &State) -> Result<(), SetupError> {
    let text = toml::to_string(state).map_err(|e| SetupError::Bad {
        path: path.to_owned(),
        reason: e.to_string(),
    })?;
    let text = format!(
        "# written by `cerebro setup`: the index pip used before, which the guard daemon \
         fronts, and what to put back on `cerebro setup --undo`\n{text}"
    );
    write(path, text.as_bytes(), 0o600)
}

/// What undo did.
#[derive(Debug, Clone)]
pub struct UndoOutcome {
    pub state: State,
    /// Whether `pip.conf` was put back (else removed: there was none before).
    pub restored: bool,
    /// systemctl could not stop or disable the socket: why.
    pub systemctl_failed: Option<String>,
}

/// Puts back what setup changed: the previous `pip.conf` byte for byte (or none, as
/// before), the units removed and the socket stopped, `daemon.toml` removed. Refused when
/// `pip.conf` changed since setup wrote it, unless `force` (the backup then replaces the
/// edited file, which is kept beside it as `pip.conf.edited-after-setup`).
pub fn undo(force: bool) -> Result<UndoOutcome, SetupError> {
    let state_path = State::path().ok_or_else(|| {
        SetupError::Refused("no config folder: set CEREBRO_CONFIG_DIR or HOME".into())
    })?;
    let Some(state) = State::load_from(&state_path)? else {
        return Err(SetupError::Refused(format!(
            "not set up: no {}",
            state_path.display()
        )));
    };
    let mut systemctl_failed = None;
    if !state.units.is_empty() {
        systemctl_failed = systemctl(&["disable", "--now", &format!("{UNIT}.socket")])
            .and_then(|()| systemctl(&["stop", &format!("{UNIT}.service")]))
            .err();
        for unit in &state.units {
            match std::fs::remove_file(unit) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(source) => {
                    return Err(SetupError::Write {
                        path: unit.clone(),
                        source,
                    })
                }
            }
        }
        if systemctl_failed.is_none() {
            systemctl_failed = systemctl(&["daemon-reload"]).err();
        }
    }
    let restored = undo_files(&state_path, &state, force)?;
    Ok(UndoOutcome {
        state,
        restored,
        systemctl_failed,
    })
}

/// Puts `pip.conf` back and removes the record; true when a previous file was restored.
fn undo_files(state_path: &Path, state: &State, force: bool) -> Result<bool, SetupError> {
    let current = match std::fs::read(&state.pip_conf) {
        Ok(bytes) => Some(bytes),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(source) => {
            return Err(SetupError::Read {
                path: state.pip_conf.clone(),
                source,
            })
        }
    };
    let edited = current
        .as_ref()
        .is_some_and(|c| sha256_hex(c) != state.written_sha256);
    if edited {
        if !force {
            return Err(SetupError::Refused(format!(
                "{} changed since `cerebro setup` wrote it: put your changes in {} (the file \
                 from before setup), or run `cerebro setup --undo --force` to keep them aside",
                state.pip_conf.display(),
                state
                    .backup
                    .as_ref()
                    .map_or("a new file".to_owned(), |b| b.display().to_string())
            )));
        }
        let aside = state.pip_conf.with_extension("conf.edited-after-setup");
        write(&aside, current.as_deref().unwrap_or_default(), 0o600)?;
    }
    let restored = match &state.backup {
        Some(backup) => {
            let bytes = std::fs::read(backup).map_err(|source| SetupError::Read {
                path: backup.clone(),
                source,
            })?;
            write(&state.pip_conf, &bytes, state.backup_mode.unwrap_or(0o644))?;
            true
        }
        None => {
            match std::fs::remove_file(&state.pip_conf) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(source) => {
                    return Err(SetupError::Write {
                        path: state.pip_conf.clone(),
                        source,
                    })
                }
            }
            false
        }
    };
    std::fs::remove_file(state_path).map_err(|source| SetupError::Write {
        path: state_path.to_owned(),
        source,
    })?;
    if let Some(backup) = &state.backup {
        let _ = std::fs::remove_file(backup);
    }
    Ok(restored)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_name_the_port_and_the_binary() {
        let socket = socket_unit("127.0.0.1:3141".parse().unwrap());
        assert!(
            socket.contains("\nListenStream=127.0.0.1:3141\n"),
            "{socket}"
        );
        assert!(socket.contains("WantedBy=sockets.target"));
        let env = |k: &str| (k == "CEREBRO_CACHE_DIR").then(|| "/c d".to_owned());
        let service = service_unit(
            Path::new("/opt/my tools/cerebro"),
            Duration::from_secs(600),
            &env,
        );
        assert!(
            service.contains("ExecStart=\"/opt/my tools/cerebro\" daemon --idle-exit 600s\n"),
            "{service}"
        );
        assert!(
            service.contains("Environment=\"CEREBRO_CACHE_DIR=/c d\"\n"),
            "{service}"
        );
        assert!(!service.contains("CEREBRO_CONFIG_DIR"));
        assert!(service.contains("Requires=cerebro-daemon.socket"));
    }

    fn state(index: &str, extra: &[&str]) -> State {
        State {
            listen: "127.0.0.1:3141".into(),
            guard_url: "http://127.0.0.1:3141/simple/".into(),
            index: index.into(),
            extra: extra.iter().map(|s| s.to_string()).collect(),
            cert: Some(PathBuf::from("/etc/corp.pem")),
            pip_conf: PathBuf::from("/nowhere/pip.conf"),
            backup: None,
            backup_mode: None,
            written_sha256: String::new(),
            units: Vec::new(),
        }
    }

    fn upstream(index: &str, extra: &[&str]) -> pip_args::PipUpstream {
        pip_args::PipUpstream {
            index: Url::parse(index).unwrap(),
            extra: extra.iter().map(|u| Url::parse(u).unwrap()).collect(),
            cert: None,
            no_index: false,
            find_links: Vec::new(),
            remote_find_links: Vec::new(),
            trusted_hosts: Vec::new(),
            config_find_links: Vec::new(),
        }
    }

    #[test]
    fn the_daemons_url_is_replaced_by_the_remembered_indexes() {
        let state = state(
            "https://corp.example/simple/",
            &["https://extra.example/simple/"],
        );
        let mut u = upstream("http://127.0.0.1:3141/simple/", &[]);
        unfront_with(&state, &mut u);
        assert_eq!(u.index.as_str(), "https://corp.example/simple/");
        assert_eq!(
            u.extra.iter().map(Url::as_str).collect::<Vec<_>>(),
            ["https://extra.example/simple/"]
        );
        assert_eq!(u.cert.as_deref(), Some(Path::new("/etc/corp.pem")));

        // The user's own --index-url stays; a guard URL among the extras goes.
        let mut u = upstream(
            "https://mine.example/simple/",
            &["http://127.0.0.1:3141/simple/"],
        );
        unfront_with(&state, &mut u);
        assert_eq!(u.index.as_str(), "https://mine.example/simple/");
        assert!(u.extra.is_empty());
        assert_eq!(u.cert, None);
    }

    #[test]
    fn state_round_trips_and_rejects_unknown_keys() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("daemon.toml");
        let state = State {
            listen: "127.0.0.1:3141".into(),
            guard_url: "http://127.0.0.1:3141/simple/".into(),
            index: "https://u:p@corp.example/simple/".into(),
            extra: vec!["https://extra.example/simple/".into()],
            cert: None,
            pip_conf: dir.path().join("pip.conf"),
            backup: None,
            backup_mode: None,
            written_sha256: "00".into(),
            units: Vec::new(),
        };
        save(&path, &state).unwrap();
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600,
            "credentials stay the user's"
        );
        assert_eq!(State::load_from(&path).unwrap(), Some(state));
        std::fs::write(&path, "listen = 1\nbogus = true\n").unwrap();
        let e = State::load_from(&path).unwrap_err().to_string();
        assert!(e.contains("daemon.toml"), "{e}");
        assert_eq!(
            State::load_from(&dir.path().join("none.toml")).unwrap(),
            None
        );
    }

    #[test]
    fn undo_puts_the_file_back_byte_for_byte_and_refuses_an_edited_one() {
        let dir = tempfile::tempdir().unwrap();
        let conf = dir.path().join("pip.conf");
        let backup = dir.path().join("pip.conf.before-setup");
        let state_path = dir.path().join("daemon.toml");
        let before = b"[global]\r\nindex-url = https://corp/simple\r\ntimeout=5";
        std::fs::write(&backup, before).unwrap();
        let written = pipconf::point_at(
            std::str::from_utf8(before).unwrap(),
            "http://127.0.0.1:3141/simple/",
            300,
        )
        .text;
        std::fs::write(&conf, &written).unwrap();
        let state = State {
            listen: "127.0.0.1:3141".into(),
            guard_url: "http://127.0.0.1:3141/simple/".into(),
            index: "https://corp/simple/".into(),
            extra: Vec::new(),
            cert: None,
            pip_conf: conf.clone(),
            backup: Some(backup.clone()),
            backup_mode: Some(0o640),
            written_sha256: sha256_hex(written.as_bytes()),
            units: Vec::new(),
        };
        save(&state_path, &state).unwrap();

        std::fs::write(&conf, format!("{written}user = true\n")).unwrap();
        let e = undo_files(&state_path, &state, false)
            .unwrap_err()
            .to_string();
        assert!(e.contains("pip.conf changed since"), "{e}");
        assert!(state_path.exists(), "nothing undone");

        std::fs::write(&conf, &written).unwrap();
        assert!(undo_files(&state_path, &state, false).unwrap());
        assert_eq!(std::fs::read(&conf).unwrap(), before);
        assert_eq!(
            std::fs::metadata(&conf).unwrap().permissions().mode() & 0o777,
            0o640
        );
        assert!(!state_path.exists() && !backup.exists());
    }

    #[test]
    fn undo_removes_a_file_that_did_not_exist() {
        let dir = tempfile::tempdir().unwrap();
        let conf = dir.path().join("pip.conf");
        let state_path = dir.path().join("daemon.toml");
        let written = pipconf::point_at("", "http://127.0.0.1:3141/simple/", 300).text;
        std::fs::write(&conf, &written).unwrap();
        let state = State {
            listen: "127.0.0.1:3141".into(),
            guard_url: "http://127.0.0.1:3141/simple/".into(),
            index: "https://pypi.org/simple/".into(),
            extra: Vec::new(),
            cert: None,
            pip_conf: conf.clone(),
            backup: None,
            backup_mode: None,
            written_sha256: sha256_hex(written.as_bytes()),
            units: Vec::new(),
        };
        save(&state_path, &state).unwrap();
        assert!(!undo_files(&state_path, &state, false).unwrap());
        assert!(!conf.exists());
    }
}
