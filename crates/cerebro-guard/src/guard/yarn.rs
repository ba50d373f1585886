//! The yarn 1 (classic) flow: resolve with the user's command plus `--ignore-scripts` in a
//! scratch copy of the project (`package.json`, `yarn.lock` pointed at the guard), through
//! the guard index's bun routes, whose packuments link every tarball on the guard (the link
//! carrying its upstream URL), so that each tarball yarn fetches is judged before it is
//! served; judge every package the resulting `yarn.lock` pins, each verified against the
//! lockfile's own integrity (or the sha1 of its `resolved` URL); decide; hand over to the
//! user's own command pointed at the same index, with the project's `yarn.lock` pointed at the
//! guard while yarn runs and given back after with every guard link turned back into the
//! upstream URL it stands for ([`args::lock_from_guard`]): what a bare yarn writes. Both runs
//! get a scratch `--cache-folder`, so that no tarball cached by an unguarded run is installed.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::{Decision, GuardError, Manager, Prepared, Progress, Report, Request, Session};
use crate::delegate::Delegation;
use crate::manager::yarn::{self as args, YarnCommand};
use crate::manager::{self, real};
use crate::policy::{Config, Mode, Prompter};

pub(super) struct YarnFlow {
    resolve: Delegation,
    /// The lockfile the resolution writes.
    lockfile: PathBuf,
    /// The project's `yarn.lock`.
    project_lock: PathBuf,
    /// The project's `node_modules/.yarn-integrity`, which records the lockfile's URLs too.
    integrity_file: PathBuf,
    /// `http://127.0.0.1:PORT/-/bun/`.
    guard_bun: String,
    /// `127.0.0.1:PORT`.
    guard_host: String,
    /// Whether yarn's registry is its own default (see [`args::lock_from_guard`]).
    yarn_default: bool,
}

/// The project's files as they were before the hand-over.
pub(super) struct Restore {
    lock: PathBuf,
    original: Option<Vec<u8>>,
    given: Option<String>,
    integrity_file: PathBuf,
    guard_bun: String,
    guard_host: String,
    yarn_default: bool,
}

pub(super) fn prepare(
    request: &Request,
    config: Config,
    progress: Arc<dyn Progress>,
) -> Result<Prepared, GuardError> {
    let real = real::find_real("yarn")?;
    let pass = || super::pass_through(vec![real.clone().into_os_string()], request);
    let install = match args::parse_in(&request.args, &request.cwd)? {
        YarnCommand::Install(install) => install,
        YarnCommand::Other => return Ok(pass()),
    };
    if config.mode == Mode::Off {
        return Ok(pass());
    }
    if let Some(spec) = install
        .packages
        .iter()
        .find(|s| !super::pnpm::registry_spec(s))
    {
        return Err(GuardError::Unsupported(format!(
            "cannot guard the package spec {spec} (git, URL or local path): install it from a \
             registry"
        )));
    }
    let root = args::project_root(install.dir());
    check_project(&real, &root)?;
    let names: Vec<String> = std::env::vars_os()
        .filter_map(|(name, _)| name.into_string().ok())
        .collect();
    let upstream = args::yarn_config(&install, &manager::process_env, &names)?;
    let yarn_default = upstream.registry.as_str() == args::YARN_REGISTRY;
    let timeout = config.installer_timeout();
    let parts = super::parts(config, upstream.cafile.clone(), progress)?;
    let (index, scratch) = parts.start(Vec::new(), Some(upstream), Manager::Yarn)?;
    let guard_url = index.npm_url();
    let guard_bun = format!("{guard_url}{}", crate::manager::bun::GUARD_PREFIX);
    let guard_host = guard_url
        .host_str()
        .map(|h| format!("{h}:{}", guard_url.port().unwrap_or(80)))
        .unwrap_or_default();
    let work = scratch.path().join("project");
    std::fs::create_dir_all(&work).map_err(GuardError::io("cannot make a scratch folder"))?;
    copy_project(&root, &work, &guard_bun)?;
    let real_os = real.clone().into_os_string();
    // yarn's own wait for the guard (it has no variable for it): a minute over the guard's
    // deadline, as for the other installers (`timeout_env`).
    let with_timeout = |mut args: Vec<std::ffi::OsString>| {
        args.push(format!("--network-timeout={}", timeout.as_millis()).into());
        args
    };
    let mut resolve = Delegation::new(vec![real_os.clone()]).args(with_timeout(args::run_args(
        &install,
        &guard_bun,
        &scratch.path().join("resolve-cache"),
        true,
    )));
    resolve.cwd = Some(work.clone());
    resolve.env = super::loopback_env();
    let mut delegation = Delegation::new(vec![real_os]).args(with_timeout(args::run_args(
        &install,
        &guard_bun,
        &scratch.path().join("install-cache"),
        false,
    )));
    delegation.cwd = Some(request.cwd.clone());
    delegation.env = super::loopback_env();
    Ok(Prepared::Install(Box::new(Session {
        runtime: parts.runtime,
        index,
        gate: parts.gate,
        started: std::time::Instant::now(),
        manager: Manager::Yarn,
        flow: super::Flow::Yarn(YarnFlow {
            resolve,
            lockfile: work.join("yarn.lock"),
            project_lock: root.join("yarn.lock"),
            integrity_file: root.join("node_modules").join(".yarn-integrity"),
            guard_bun,
            guard_host,
            yarn_default,
        }),
        _scratch: scratch,
        delegation,
        memo: None,
        fast: false,
    })))
}

/// Refuses what Cerebro does not read as yarn 1 would: another yarn than 1.x, a project
/// asking for yarn 2+ (`packageManager`), workspaces.
fn check_project(real: &Path, root: &Path) -> Result<(), GuardError> {
    let refuse = |why: String| Err(GuardError::Unsupported(why));
    let version = args::version_of(real).or_else(|| {
        let out = std::process::Command::new(real)
            .arg("--version")
            .env(real::ACTIVE_ENV, "1")
            .stdin(std::process::Stdio::null())
            .output()
            .ok()?;
        Some(String::from_utf8(out.stdout).ok()?.trim().to_owned())
    });
    match version {
        Some(v) if v.starts_with("1.") => {}
        Some(v) => {
            return refuse(format!(
                "{} is yarn {v}: Cerebro guards yarn 1 (classic) only, not yarn 2+ (berry)",
                real.display()
            ))
        }
        None => return refuse(format!("cannot tell which yarn {} is", real.display())),
    }
    let manifest = root.join("package.json");
    let Ok(text) = std::fs::read_to_string(&manifest) else {
        return Ok(());
    };
    let json: serde_json::Value = serde_json::from_str(&text)
        .map_err(|e| GuardError::Unsupported(format!("cannot read {}: {e}", manifest.display())))?;
    if json.get("workspaces").is_some() {
        return refuse(format!(
            "{} declares workspaces: yarn workspaces are not guarded yet",
            manifest.display()
        ));
    }
    if let Some(wanted) = json["packageManager"].as_str() {
        if !wanted.starts_with("yarn@1.") {
            return refuse(format!(
                "{} asks for {wanted} (packageManager): Cerebro guards yarn 1 (classic) only",
                manifest.display()
            ));
        }
    }
    Ok(())
}

/// `package.json` and `yarn.lock` (its URLs pointed at the guard) copied into the scratch
/// project.
fn copy_project(root: &Path, work: &Path, guard_bun: &str) -> Result<(), GuardError> {
    let from = root.join("package.json");
    if from.is_file() {
        std::fs::copy(&from, work.join("package.json")).map_err(GuardError::io(
            "cannot copy package.json into the scratch folder",
        ))?;
    } else {
        std::fs::write(work.join("package.json"), "{}\n")
            .map_err(GuardError::io("cannot write the scratch package.json"))?;
    }
    let lock = root.join("yarn.lock");
    if lock.is_file() {
        let text = std::fs::read_to_string(&lock)
            .map_err(GuardError::io(format!("cannot read {}", lock.display())))?;
        let given = args::lock_to_guard(&text, guard_bun).map_err(GuardError::Unsupported)?;
        std::fs::write(work.join("yarn.lock"), given)
            .map_err(GuardError::io("cannot write the scratch yarn.lock"))?;
    }
    Ok(())
}

pub(super) fn judge(
    session: &Session,
    flow: &YarnFlow,
    interactive: bool,
    prompter: &mut dyn Prompter,
) -> Result<Report, GuardError> {
    let mut last_failure = String::new();
    let resolved = session.resolve_loop(interactive, prompter, || {
        let run = flow
            .resolve
            .run_captured()
            .map_err(GuardError::io("cannot run yarn"))?;
        if run.code != 0 {
            let mut text = String::from_utf8_lossy(&run.stdout).into_owned();
            text.push_str(&String::from_utf8_lossy(&run.stderr));
            last_failure = text
                .lines()
                .map(str::trim)
                .find(|l| l.starts_with("error"))
                .unwrap_or("")
                .to_owned();
        }
        Ok(run)
    });
    // A failed resolution is not handed over: yarn's answer may differ with the user's
    // files, and Cerebro judged nothing for it.
    if let Some(stop) = session.stop_after_scratch_resolution(resolved, "yarn", &last_failure)? {
        return Ok(stop);
    }
    let Ok(text) = std::fs::read_to_string(&flow.lockfile) else {
        // Nothing to install: yarn wrote no lockfile.
        return Ok(session.report(Decision::Proceed, None));
    };
    if let Err(detail) =
        args::lock_from_guard(&text, &flow.guard_bun, &flow.guard_host, flow.yarn_default)
    {
        return Ok(session.report(Decision::CannotJudge, Some(detail)));
    }
    // Every package the guard served carries its link: anything else (a git or other URL
    // resolution) was fetched past the guard.
    let served = format!(
        "  resolved \"{}{}",
        flow.guard_bun,
        crate::manager::bun::URL_PREFIX
    );
    if let Some(line) = text
        .lines()
        .find(|l| l.starts_with("  resolved \"") && !l.starts_with(&served))
    {
        return Ok(session.report(
            Decision::CannotJudge,
            Some(format!(
                "yarn.lock resolves a package from elsewhere than a registry, which Cerebro \
                 cannot judge: {}",
                line.trim().split('#').next().unwrap_or_default()
            )),
        ));
    }
    let packages = match args::locked_packages(&text) {
        Ok(p) => p,
        Err(detail) => return Ok(session.report(Decision::CannotJudge, Some(detail))),
    };
    let packages = packages
        .into_iter()
        .map(|p| super::npm::LockedTarball {
            hash: match (p.integrity, p.sha1) {
                (Some(sri), _) => super::npm::LockedHash::Integrity(sri),
                (None, Some(hex)) => super::npm::LockedHash::Sha1(hex),
                (None, None) => super::npm::LockedHash::Registry,
            },
            name: p.name,
            version: p.version,
        })
        .collect();
    super::npm::judge_locked_tarballs(session, packages, interactive, prompter)
}

/// Points the project's `yarn.lock` at the guard for the hand-over.
pub(super) fn before_hand_over(flow: &YarnFlow) -> std::io::Result<Restore> {
    let original = match std::fs::read(&flow.project_lock) {
        Ok(bytes) => Some(bytes),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(e),
    };
    let given = match &original {
        Some(bytes) => {
            let text = String::from_utf8(bytes.clone()).map_err(std::io::Error::other)?;
            let given =
                args::lock_to_guard(&text, &flow.guard_bun).map_err(std::io::Error::other)?;
            std::fs::write(&flow.project_lock, &given)?;
            Some(given)
        }
        None => None,
    };
    Ok(Restore {
        lock: flow.project_lock.clone(),
        original,
        given,
        integrity_file: flow.integrity_file.clone(),
        guard_bun: flow.guard_bun.clone(),
        guard_host: flow.guard_host.clone(),
        yarn_default: flow.yarn_default,
    })
}

impl Restore {
    /// Puts back what yarn would have written: the original bytes when yarn left the lockfile
    /// as it was given, else yarn's lockfile with every guard link turned back. A lockfile
    /// that cannot be turned back is an error (the original is put back).
    pub(super) fn finish(self) -> Result<(), String> {
        let now = std::fs::read_to_string(&self.lock).ok();
        let result = match (now, &self.original) {
            (Some(now), Some(original)) if Some(&now) == self.given.as_ref() => {
                std::fs::write(&self.lock, original).map_err(|e| e.to_string())
            }
            (Some(now), original) => {
                match args::lock_from_guard(
                    &now,
                    &self.guard_bun,
                    &self.guard_host,
                    self.yarn_default,
                ) {
                    Ok(back) => std::fs::write(&self.lock, back).map_err(|e| e.to_string()),
                    Err(detail) => {
                        let _ = match original {
                            Some(o) => std::fs::write(&self.lock, o),
                            None => std::fs::remove_file(&self.lock),
                        };
                        Err(format!("{detail}; {} put back", self.lock.display()))
                    }
                }
            }
            (None, Some(original)) => {
                std::fs::write(&self.lock, original).map_err(|e| e.to_string())
            }
            (None, None) => Ok(()),
        };
        // node_modules/.yarn-integrity records the lockfile's URLs as well.
        if let Ok(text) = std::fs::read_to_string(&self.integrity_file) {
            match args::lock_from_guard(&text, &self.guard_bun, &self.guard_host, self.yarn_default)
            {
                Ok(back) if back != text => {
                    let _ = std::fs::write(&self.integrity_file, back);
                }
                Ok(_) => {}
                // yarn re-checks its install against the lockfile when this file is gone.
                Err(_) => {
                    let _ = std::fs::remove_file(&self.integrity_file);
                }
            }
        }
        result
    }
}
