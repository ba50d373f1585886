//! The pipx flow: the real pipx runs once, its pip pointed at the guard index as its only
//! index (`PIP_INDEX_URL`; `PIP_CONFIG_FILE=/dev/null` and emptied `PIP_*` list variables,
//! so nothing else reaches pip), so every sdist and wheel of the requested packages' trees
//! is judged before it is served, and a refusal fails pip before it builds or installs
//! anything. pip's cache is off (`PIP_NO_CACHE_DIR`), so nothing reaches the install from a
//! cache filled outside the guard; `pipx run` gets `--no-cache` for the same reason.

use std::sync::Arc;

use super::{parts, GuardError, Manager, Prepared, Progress, Request, Session};
use crate::delegate::Delegation;
use crate::index::PypiUpstream;
use crate::manager::pip as pip_args;
use crate::manager::pipx::{self as args, PipxCommand};
use crate::manager::{self, real};
use crate::policy::{Config, Mode};

/// Nothing to keep between the hand-over and the report: pipx writes no project file.
pub(super) struct PipxFlow;

pub(super) fn prepare(
    request: &Request,
    config: Config,
    progress: Arc<dyn Progress>,
) -> Result<Prepared, GuardError> {
    let real = vec![real::find_real("pipx")?.into_os_string()];
    let pass = || super::pass_through(real.clone(), request);
    let install = match args::parse(&request.args, &request.cwd)? {
        PipxCommand::Guarded(install) => install,
        PipxCommand::Other => return Ok(pass()),
    };
    if config.mode == Mode::Off {
        return Ok(pass());
    }
    // The index pipx's pip would read: the user's pip configuration and PIP_* variables.
    let env = manager::process_env;
    let mut words: Vec<std::ffi::OsString> = vec!["install".into()];
    words.extend(install.specs.iter().map(Into::into));
    let pip_install = match pip_args::parse_in(&words, &request.cwd, &env)? {
        pip_args::PipCommand::Install(i) => i,
        pip_args::PipCommand::Other => {
            return Err(GuardError::Unsupported(
                "cannot read pipx's package specs as pip would".into(),
            ))
        }
    };
    let config_files = pip_args::pip_config_files(&env, false, &[]);
    let mut upstream = pip_args::upstream(&pip_install, &env, &config_files)?;
    // pip.conf may name the guard daemon (`cerebro setup`): front what it fronts.
    crate::daemon::setup::unfront(&mut upstream);
    if upstream.no_index {
        return Err(GuardError::Unsupported(
            "cannot guard pipx with pip's no-index set (PIP_NO_INDEX or pip.conf)".into(),
        ));
    }
    if let Some(f) = upstream.find_links.first() {
        return Err(GuardError::Unsupported(format!(
            "cannot guard pipx with pip's find-links {f} (PIP_FIND_LINKS or pip.conf)"
        )));
    }
    let timeout = config.installer_timeout();
    let parts = parts(config, upstream.cert.clone(), progress)?;
    let pypi = std::iter::once(&upstream.index)
        .chain(&upstream.extra)
        .map(PypiUpstream::from_url)
        .collect();
    let (index, scratch) = parts.start(pypi, None, Manager::Pipx)?;
    let guard = index.pypi_url().to_string();
    let mut delegation = Delegation::new(real).args(install.args.clone());
    delegation.env = [
        ("PIP_INDEX_URL", guard.as_str()),
        ("PIP_EXTRA_INDEX_URL", ""),
        ("PIP_FIND_LINKS", ""),
        ("PIP_CONSTRAINT", ""),
        ("PIP_REQUIREMENT", ""),
        ("PIP_EDITABLE", ""),
        ("PIP_CONFIG_FILE", "/dev/null"),
        ("PIP_NO_CACHE_DIR", "1"),
    ]
    .into_iter()
    .map(|(k, v)| (k.into(), v.into()))
    .collect();
    delegation
        .env
        .extend(super::timeout_env(Manager::Pipx, timeout));
    if install.kind.runs_a_program() {
        delegation.env.extend(super::loopback_env());
    } else {
        // pip may reach nothing but the guard.
        delegation.env.extend(super::uv::no_network_but_loopback());
    }
    delegation.cwd = Some(request.cwd.clone());
    // The program `pipx run` starts is the user's: its own installs are guarded anew.
    delegation.active = !install.kind.runs_a_program();
    Ok(Prepared::Install(Box::new(Session {
        runtime: parts.runtime,
        index,
        gate: parts.gate,
        started: std::time::Instant::now(),
        manager: Manager::Pipx,
        flow: super::Flow::Pipx(PipxFlow),
        _scratch: scratch,
        delegation,
        memo: None,
        fast: false,
    })))
}
