//! The pip flow: resolve with `pip install --dry-run --report` through the guard index (so
//! an sdist is judged before pip may build it), judge every artifact of the report, decide,
//! and hand over to `pip install` pointed at the same index.

use std::path::PathBuf;
use std::sync::Arc;

use reqwest::Url;
use serde_json::Value;

use super::{
    parts, Decision, GuardError, Manager, Prepared, Progress, Report, Request, Resolved, Session,
};
use crate::delegate::Delegation;
use crate::index::{percent_decode, PypiUpstream};
use crate::manager::pip::{self as args, PipCommand};
use crate::manager::{self, real};
use crate::policy::{Config, Mode, Prompter};
use cerebro_archive::Ecosystem;

/// What the pip flow needs between preparing and judging.
pub(super) struct PipFlow {
    /// The resolution run.
    dry_run: Delegation,
    pub(super) report: PathBuf,
    local_paths: Vec<PathBuf>,
}

impl PipFlow {
    pub(super) fn has_local_paths(&self) -> bool {
        !self.local_paths.is_empty()
    }
}

pub(super) fn prepare(
    request: &Request,
    config: Config,
    progress: Arc<dyn Progress>,
) -> Result<Prepared, GuardError> {
    let real = real::real_pip()?;
    let pass = || super::pass_through(real.clone(), request);
    let install = match args::parse(&request.args)? {
        PipCommand::Install(install) => install,
        PipCommand::Other => return Ok(pass()),
    };
    if config.mode == Mode::Off {
        return Ok(pass());
    }
    if let Some(url) = install.urls.first() {
        return Err(GuardError::Unsupported(format!(
            "cannot guard the direct URL requirement {url}: download the file and \
             `pip install ./FILE`, so that it is scanned first"
        )));
    }
    if let Some(url) = install.remote_requirement_files.first() {
        return Err(GuardError::Unsupported(format!(
            "cannot guard the remote requirements file {url}: download it and pass it with -r"
        )));
    }
    let env = manager::process_env;
    let config_files = args::pip_config_files(&env, install.isolated, &real);
    let mut upstream = args::upstream(&install, &env, &config_files)?;
    // pip.conf may name the guard daemon (`cerebro setup`): front what it fronts.
    crate::daemon::setup::unfront(&mut upstream);
    if upstream.no_index {
        return Err(GuardError::Unsupported(
            "cannot guard --no-index installs (from local folders) yet: scan the folder with \
             `cerebro scan`, then run pip with CEREBRO_POLICY=off"
                .into(),
        ));
    }
    if let Some(url) = upstream
        .remote_find_links
        .first()
        .or(install.remote_find_links.first())
    {
        return Err(GuardError::Unsupported(format!(
            "cannot guard the remote find-links page {url}: use an index URL instead"
        )));
    }
    let timeout = config.installer_timeout();
    let parts = parts(config, upstream.cert.clone(), progress)?;
    let pypi = std::iter::once(&upstream.index)
        .chain(&upstream.extra)
        .map(upstream_with_auth)
        .collect();
    let (index, scratch) = parts.start(pypi, None, Manager::Pip)?;
    let guard_url = index.pypi_url();
    let guarded = args::guarded_args(&install, &guard_url, scratch.path())?;
    let guarded_env = args::guarded_env(
        &install,
        &upstream,
        &guard_url,
        scratch.path(),
        timeout,
        &env,
    )?;
    let report = scratch.path().join("report.json");
    let mut dry_run = Delegation::new(real.clone()).args(args::dry_run_args(
        &guarded,
        &report,
        install.subcommand,
    ));
    dry_run.env = guarded_env.clone();
    dry_run.env.extend(super::loopback_env());
    dry_run.cwd = Some(request.cwd.clone());
    let mut delegation = Delegation::new(real.clone()).args(guarded);
    delegation.env = guarded_env;
    delegation.env.extend(super::loopback_env());
    delegation.cwd = Some(request.cwd.clone());
    let memo = super::memo_for(&parts.gate, |k| {
        k.text("pip").text(&request.cwd.to_string_lossy());
        // Not the real pip's path: a memo is only a hint (the index judges regardless), and
        // a fresh virtual environment should not lose it.
        for a in &request.args {
            k.text(&a.to_string_lossy());
        }
        k.env_with_prefixes(&["PIP_"]);
        for f in config_files
            .iter()
            .chain(&install.requirement_files)
            .chain(&install.constraint_files)
        {
            k.file(f);
        }
    });
    Ok(Prepared::Install(Box::new(Session {
        runtime: parts.runtime,
        index,
        gate: parts.gate,
        started: std::time::Instant::now(),
        manager: Manager::Pip,
        flow: super::Flow::Pip(PipFlow {
            dry_run,
            report,
            local_paths: install.local_paths.clone(),
        }),
        _scratch: scratch,
        delegation,
        memo,
        fast: false,
    })))
}

/// Moves `user:password@` of an index URL into an `Authorization` value, so that the index
/// can send it to that host only.
fn upstream_with_auth(url: &Url) -> PypiUpstream {
    PypiUpstream::from_url(url)
}

pub(super) fn judge(
    session: &Session,
    flow: &PipFlow,
    interactive: bool,
    prompter: &mut dyn Prompter,
) -> Result<Report, GuardError> {
    // Local projects first: pip runs their build backend during the resolution.
    if let Some(stop) =
        session.judge_locals(Ecosystem::Pypi, &flow.local_paths, interactive, prompter)?
    {
        return Ok(stop);
    }
    let _ = std::fs::remove_file(&flow.report);
    let resolved = session.resolve_loop(interactive, prompter, || {
        flow.dry_run
            .run_captured()
            .map_err(GuardError::io("cannot run pip"))
    });
    match resolved {
        Ok(Resolved::Done) => {}
        Ok(Resolved::Stopped(d)) => return Ok(session.report(d, None)),
        // pip's own failure (no such version, a conflict): the hand-over shows pip's message.
        Ok(Resolved::ManagerFailed) => return Ok(session.report(Decision::Proceed, None)),
        Err(GuardError::CannotJudge(detail)) => {
            return Ok(session.report(Decision::CannotJudge, Some(detail)));
        }
        Err(e) => return Err(e),
    }
    let text =
        std::fs::read(&flow.report).map_err(GuardError::io("pip wrote no installation report"))?;
    let report: Value = serde_json::from_slice(&text).map_err(|e| {
        GuardError::Unsupported(format!("pip's installation report is unreadable: {e}"))
    })?;
    let urls: Vec<String> = report
        .get("install")
        .and_then(Value::as_array)
        .map(|items| {
            items
                .iter()
                .filter_map(|i| i.pointer("/download_info/url").and_then(Value::as_str))
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default();
    // Every artifact pip chose, judged (most were during the resolution; wheels whose
    // metadata pip read on its own are fetched and judged now).
    let index = session.index.handle();
    let mut local = Vec::new();
    let results = session.runtime.block_on(async {
        let mut set = tokio::task::JoinSet::new();
        let mut out = Vec::new();
        for url in urls {
            if let Some(path) = url.strip_prefix("file://") {
                // A local project or a file from a local find-links folder: pip reads it
                // without the index, so it is judged here, from disk.
                let path = PathBuf::from(percent_decode(path));
                if !flow.local_paths.iter().any(|p| same_file(p, &path)) {
                    local.push(path);
                }
                continue;
            }
            if index.pypi_file(&url).is_none() {
                out.push(Err(format!(
                    "pip chose {url}, which did not come through the guard index"
                )));
                continue;
            }
            let index = index.clone();
            set.spawn(async move { index.admit_pypi(&url).await });
        }
        while let Some(r) = set.join_next().await {
            out.push(r.unwrap_or_else(|e| Err(format!("internal error: {e}"))));
        }
        out
    });
    let more = local
        .iter()
        .map(|p| session.gate.judge_local(Ecosystem::Pypi, p))
        .collect();
    session.conclude(results, more, interactive, prompter)
}

fn same_file(a: &std::path::Path, b: &std::path::Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine as _;

    #[test]
    fn credentials_leave_the_url() {
        let u =
            upstream_with_auth(&Url::parse("https://me:p%40ss@pkgs.example.org/simple").unwrap());
        assert_eq!(u.url.as_str(), "https://pkgs.example.org/simple/");
        let expected = base64::engine::general_purpose::STANDARD.encode("me:p@ss");
        assert_eq!(u.auth.as_deref(), Some(&*format!("Basic {expected}")));
        let u = upstream_with_auth(&Url::parse("https://pypi.org/simple/").unwrap());
        assert_eq!(u.auth, None);
    }
}
