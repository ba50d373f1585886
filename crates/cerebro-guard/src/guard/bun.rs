//! The bun flow: resolve with `bun <command> --lockfile-only --ignore-scripts` in a scratch
//! copy of the project (for `bun x`, `bun add PACKAGE` in an empty one), through the guard
//! index; judge every tarball of the resulting `bun.lock` (for `--frozen-lockfile`, of the
//! project's own); decide; hand over to the user's own bun command pointed at the same index.
//!
//! bun fetches a locked package from the URL `bun.lock` records, whatever registry it is
//! given, so for the hand-over the project's `bun.lock` is rewritten to name the guard
//! ([`bun::lock_to_guard`]) and, once bun is done, rewritten back into what bun writes against
//! the user's registry ([`bun::lock_from_guard`]): the same bytes as a bare run. Every bun run
//! gets a scratch install cache (`BUN_INSTALL_CACHE_DIR`, which also holds `bunx`'s installs),
//! so that nothing cached by an unguarded run is installed or run unjudged.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use reqwest::Url;

use super::{
    Decision, GuardError, Manager, Prepared, Progress, Report, Request, Resolved, Session,
};
use crate::delegate::Delegation;
use crate::manager::bun::{self as args, BunCommand, BunKind};
use crate::manager::{self, real};
use crate::policy::{Config, Mode, Prompter};

pub(super) struct BunFlow {
    /// The resolution run in the scratch project; `None` for `--frozen-lockfile`.
    resolve: Option<Delegation>,
    /// The lockfile to judge after the resolution.
    lockfile: PathBuf,
    /// The project's `bun.lock`, rewritten for the hand-over (`None` for `bun x`).
    project_lock: Option<PathBuf>,
    /// `http://127.0.0.1:PORT/-/bun/`.
    guard_bun: String,
    /// The user's registry.
    upstream: Url,
}

/// The project's `bun.lock` as it was before the hand-over, to put back what bun would write.
pub(super) struct Restore {
    path: PathBuf,
    original: Option<Vec<u8>>,
    given: Option<String>,
    guard_bun: String,
    upstream: Url,
}

pub(super) fn prepare(
    request: &Request,
    config: Config,
    progress: Arc<dyn Progress>,
) -> Result<Prepared, GuardError> {
    let real = real::find_real("bun")?;
    let pass = || super::pass_through(vec![real.clone().into_os_string()], request);
    let install = match args::parse_in(&request.args, &request.cwd)? {
        BunCommand::Install(install) => install,
        BunCommand::Other => return Ok(pass()),
    };
    if config.mode == Mode::Off {
        return Ok(pass());
    }
    let exec = install.kind == BunKind::Exec;
    let root = request
        .cwd
        .ancestors()
        .find(|d| d.join("package.json").is_file())
        .unwrap_or(&request.cwd)
        .to_path_buf();
    let lock = root.join("bun.lock");
    if !exec {
        check_project(&root)?;
    }
    let upstream = args::bun_config(&root, &install, &manager::process_env)?;
    let parts = super::parts(config, upstream.cafile.clone(), progress)?;
    let (index, scratch) = parts.start(Vec::new(), Some(upstream.clone()), Manager::Bun)?;
    let guard_bun = format!("{}{}", index.npm_url(), args::GUARD_PREFIX);
    let guard_url = Url::parse(&guard_bun).map_err(|e| GuardError::Unsupported(e.to_string()))?;
    let work = scratch.path().join("project");
    std::fs::create_dir_all(&work).map_err(GuardError::io("cannot make a scratch folder"))?;
    if exec {
        std::fs::write(work.join("package.json"), "{}\n")
    } else {
        copy_project(&root, &work, &guard_bun)
    }
    .map_err(GuardError::io("cannot write the scratch project"))?;
    let env = |cache: &str| {
        let mut env = super::loopback_env();
        env.push((
            OsString::from("BUN_INSTALL_CACHE_DIR"),
            scratch.path().join(cache).into_os_string(),
        ));
        env
    };
    let real_os = real.clone().into_os_string();
    let (resolve, lockfile) = if install.kind == BunKind::Frozen {
        (None, lock.clone())
    } else {
        let mut d =
            Delegation::new(vec![real_os.clone()]).args(args::resolve_args(&install, &guard_url));
        d.cwd = Some(work.clone());
        d.env = env("resolve-cache");
        (Some(d), work.join("bun.lock"))
    };
    let mut delegation =
        Delegation::new(vec![real_os]).args(args::guarded_args(&install, &guard_url));
    delegation.cwd = Some(request.cwd.clone());
    delegation.env = env("install-cache");
    Ok(Prepared::Install(Box::new(Session {
        runtime: parts.runtime,
        index,
        gate: parts.gate,
        started: std::time::Instant::now(),
        manager: Manager::Bun,
        flow: super::Flow::Bun(BunFlow {
            resolve,
            lockfile,
            project_lock: (!exec).then_some(lock),
            guard_bun,
            upstream: upstream.registry,
        }),
        _scratch: scratch,
        delegation,
        memo: None,
        fast: false,
    })))
}

/// Refuses projects whose install Cerebro cannot reproduce in scratch: workspaces, a binary
/// `bun.lockb` only, or another manager's lockfile that bun would migrate.
fn check_project(root: &Path) -> Result<(), GuardError> {
    let refuse = |why: String| Err(GuardError::Unsupported(why));
    if let Ok(text) = std::fs::read_to_string(root.join("package.json")) {
        let json: serde_json::Value = serde_json::from_str(&text).map_err(|e| {
            GuardError::Unsupported(format!(
                "cannot read {}: {e}",
                root.join("package.json").display()
            ))
        })?;
        if json.get("workspaces").is_some() {
            return refuse(format!(
                "{} declares workspaces: bun workspaces are not guarded yet",
                root.join("package.json").display()
            ));
        }
    }
    if root.join("bun.lock").is_file() {
        return Ok(());
    }
    if root.join("bun.lockb").is_file() {
        return refuse(format!(
            "{} is a binary lockfile Cerebro cannot read: convert it with `bun install \
             --save-text-lockfile --lockfile-only` first",
            root.join("bun.lockb").display()
        ));
    }
    for other in [
        "package-lock.json",
        "npm-shrinkwrap.json",
        "yarn.lock",
        "pnpm-lock.yaml",
    ] {
        if root.join(other).is_file() {
            return refuse(format!(
                "bun would migrate {} into bun.lock: Cerebro cannot judge that migration; \
                 run `bun install --lockfile-only` unguarded first (it fetches no package code)",
                root.join(other).display()
            ));
        }
    }
    Ok(())
}

/// `package.json`, `bunfig.toml` and `bun.lock` (its URLs pointed at the guard) copied into
/// the scratch project.
fn copy_project(root: &Path, work: &Path, guard_bun: &str) -> std::io::Result<()> {
    for name in ["package.json", "bunfig.toml"] {
        let from = root.join(name);
        if from.is_file() {
            std::fs::copy(&from, work.join(name))?;
        }
    }
    if !work.join("package.json").exists() {
        std::fs::write(work.join("package.json"), "{}\n")?;
    }
    let lock = root.join("bun.lock");
    if lock.is_file() {
        let text = std::fs::read_to_string(&lock)?;
        let given = args::lock_to_guard(&text, guard_bun).map_err(std::io::Error::other)?;
        std::fs::write(work.join("bun.lock"), given)?;
    }
    Ok(())
}

pub(super) fn judge(
    session: &Session,
    flow: &BunFlow,
    interactive: bool,
    prompter: &mut dyn Prompter,
) -> Result<Report, GuardError> {
    if let Some(resolve) = &flow.resolve {
        let resolved = session.resolve_loop(interactive, prompter, || {
            resolve
                .run_captured()
                .map_err(GuardError::io("cannot run bun"))
        });
        match resolved {
            Ok(Resolved::Done) => {}
            Ok(Resolved::Stopped(d)) => return Ok(session.report(d, None)),
            Ok(Resolved::ManagerFailed) => return Ok(session.report(Decision::Proceed, None)),
            Err(GuardError::CannotJudge(detail)) => {
                return Ok(session.report(Decision::CannotJudge, Some(detail)));
            }
            Err(e) => return Err(e),
        }
    }
    let Ok(text) = std::fs::read_to_string(&flow.lockfile) else {
        // No lockfile (a frozen install without one, or nothing to install): bun itself
        // refuses or installs nothing.
        return Ok(session.report(Decision::Proceed, None));
    };
    let lock = args::parse_lock(&text).map_err(|e| {
        GuardError::Unsupported(format!("cannot read {}: {e}", flow.lockfile.display()))
    })?;
    let packages = args::locked_packages(&lock).map_err(GuardError::Unsupported)?;
    let packages = packages
        .into_iter()
        .map(|p| super::npm::LockedTarball {
            name: p.name,
            version: p.version,
            hash: super::npm::LockedHash::Registry,
        })
        .collect();
    super::npm::judge_locked_tarballs(session, packages, interactive, prompter)
}

/// Points the project's `bun.lock` at the guard for the hand-over.
pub(super) fn before_hand_over(flow: &BunFlow) -> std::io::Result<Option<Restore>> {
    let Some(path) = &flow.project_lock else {
        return Ok(None);
    };
    let original = match std::fs::read(path) {
        Ok(bytes) => Some(bytes),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(e),
    };
    let given = match &original {
        Some(bytes) => {
            let text = String::from_utf8(bytes.clone()).map_err(std::io::Error::other)?;
            let given =
                args::lock_to_guard(&text, &flow.guard_bun).map_err(std::io::Error::other)?;
            if given != text {
                std::fs::write(path, &given)?;
            }
            Some(given)
        }
        None => None,
    };
    Ok(Some(Restore {
        path: path.clone(),
        original,
        given,
        guard_bun: flow.guard_bun.clone(),
        upstream: flow.upstream.clone(),
    }))
}

impl Restore {
    /// Puts back what bun would have written: the original bytes when bun left the lockfile
    /// as it was given, else bun's lockfile with every guard URL turned back.
    pub(super) fn finish(self) -> std::io::Result<()> {
        let now = match std::fs::read_to_string(&self.path) {
            Ok(text) => Some(text),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(e),
        };
        match (now, &self.original) {
            (Some(now), Some(original)) if Some(&now) == self.given.as_ref() => {
                std::fs::write(&self.path, original)
            }
            (Some(now), _) => {
                let back = args::lock_from_guard(&now, &self.guard_bun, &self.upstream);
                if back != now {
                    std::fs::write(&self.path, back)?;
                }
                Ok(())
            }
            (None, Some(original)) => std::fs::write(&self.path, original),
            (None, None) => Ok(()),
        }
    }
}
