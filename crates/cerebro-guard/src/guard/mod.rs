//! The guarded install, start to end: parse the manager's arguments, start the guard index,
//! let the real manager resolve through it (so every artifact is judged before the manager
//! may build or unpack it), judge what the resolution chose, decide under the user's policy,
//! then hand over to the real manager, pointed at the same index so it installs exactly what
//! was judged.
//!
//! [`prepare`] works out whether a command is an install to guard; [`Session::judge`] does
//! the resolution, the scans and the decision; [`Session::delegate`] hands over.

mod bun;
mod gate;
mod memo;
mod npm;
mod pip;
mod pipx;
mod pnpm;
mod poetry;
mod uv;
mod yarn;

use std::ffi::OsString;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;

pub use gate::{render_reasons, GuardGate, Judged, Outcome, Progress, Silent};
/// The registry packages a `pnpm-lock.yaml` pins, read as the pnpm guard reads them (also
/// `cerebro audit`'s reader of that file).
pub use pnpm::{locked_packages as pnpm_locked_packages, LockedPackage as PnpmLockedPackage};
/// How the Poetry guard reads a `poetry.lock` (given by the CLI: `cerebro audit`'s reader).
pub use poetry::{
    LockReader as PoetryLockReader, LockedOutside as PoetryLockedOutside, HOOK as POETRY_HOOK,
};

use crate::delegate::Delegation;
use crate::index::{Admission, Candidate, Gate as _, GuardIndex, Held};
use crate::manager::ManagerError;
use crate::policy::{self, Allowlist, Config, Flagged, Mode, PolicyError, Prompter, VerdictCache};
use cerebro_archive::Ecosystem;
use cerebro_fetch::{CacheBucket, FetchError, FetchOptions, Fetcher};
use cerebro_model::{Detector, ModelError};

/// How long a failed manager run waits for judgements still under way before its failure is
/// read: longer than any single judgement takes (archives are bounded), short enough that a
/// wedged scan cannot hang the command.
const JUDGED_WAIT: Duration = Duration::from_secs(300);

/// The package managers Cerebro stands in front of.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Manager {
    Pip,
    Npm,
    Uv,
    Pnpm,
    Bun,
    Yarn,
    Pipx,
    Poetry,
}

impl Manager {
    pub fn as_str(self) -> &'static str {
        match self {
            Manager::Pip => "pip",
            Manager::Npm => "npm",
            Manager::Uv => "uv",
            Manager::Pnpm => "pnpm",
            Manager::Bun => "bun",
            Manager::Yarn => "yarn",
            Manager::Pipx => "pipx",
            Manager::Poetry => "poetry",
        }
    }

    /// The ecosystem whose packages it installs.
    pub fn ecosystem(self) -> Ecosystem {
        match self {
            Manager::Pip | Manager::Uv | Manager::Pipx | Manager::Poetry => Ecosystem::Pypi,
            Manager::Npm | Manager::Pnpm | Manager::Bun | Manager::Yarn => Ecosystem::Npm,
        }
    }
}

/// Why the guard could not do its work. Each is one line saying what to do.
#[derive(Debug, thiserror::Error)]
pub enum GuardError {
    #[error(transparent)]
    Manager(#[from] ManagerError),
    #[error(transparent)]
    Policy(#[from] PolicyError),
    #[error(transparent)]
    Fetch(#[from] FetchError),
    #[error("cannot load the embedded model: {0}")]
    Model(#[from] ModelError),
    /// Something the guard cannot put in front of the scanner; it refuses rather than let it
    /// through unjudged.
    #[error("{0}")]
    Unsupported(String),
    /// The resolution failed for a reason the guard saw (an unreachable upstream, a hash
    /// mismatch, a download cut short): nothing was installed.
    #[error("{0}")]
    CannotJudge(String),
    #[error("{what}: {source}")]
    Io {
        what: String,
        source: std::io::Error,
    },
}

impl GuardError {
    fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> GuardError {
        let what = what.into();
        move |source| GuardError::Io { what, source }
    }
}

/// One guarded command, as the user typed it.
#[derive(Debug, Clone)]
pub struct Request {
    pub manager: Manager,
    pub args: Vec<OsString>,
    pub cwd: PathBuf,
}

/// What to do with a command.
pub enum Prepared {
    /// Not an install, or the policy is `off`: run the real manager as is.
    PassThrough(Delegation),
    /// An install to judge.
    Install(Box<Session>),
}

/// Works out whether `request` is an install, and if so sets up its guard: the user's
/// config, the real manager, the upstream registries, and the guard index in front of them.
pub fn prepare(request: &Request, progress: Arc<dyn Progress>) -> Result<Prepared, GuardError> {
    let config = Config::load()?;
    match request.manager {
        Manager::Pip => pip::prepare(request, config, progress),
        Manager::Npm => npm::prepare(request, config, progress),
        Manager::Uv => uv::prepare(request, config, progress),
        Manager::Pnpm => pnpm::prepare(request, config, progress),
        Manager::Bun => bun::prepare(request, config, progress),
        Manager::Yarn => yarn::prepare(request, config, progress),
        Manager::Pipx => pipx::prepare(request, config, progress),
        // Without a reader of poetry.lock, a project with one is refused.
        Manager::Poetry => poetry::prepare(request, config, progress, None),
    }
}

/// [`prepare`] for Poetry, with the reader of `poetry.lock` that says which locked packages
/// are not packages of an index (the guard refuses those before Poetry runs).
pub fn prepare_poetry(
    request: &Request,
    progress: Arc<dyn Progress>,
    lock_reader: PoetryLockReader,
) -> Result<Prepared, GuardError> {
    poetry::prepare(request, Config::load()?, progress, Some(lock_reader))
}

/// Judges what `pip install <requirement>` would install here, into an environment without
/// it, and installs nothing: pip resolves with `--dry-run --ignore-installed` through the
/// guard index exactly as in a guarded install (each source distribution judged before pip
/// may build it for its metadata), and every artifact it chose is judged. For an agent asking
/// before it installs (`cerebro mcp`): the policy is `block` whatever the user's (nobody is
/// asked; the report says what would be flagged) and the warm path is not taken (it skips
/// the judging). `index_url` replaces pip's configured index when given.
pub fn check_pip(
    requirement: &str,
    index_url: Option<&str>,
    cwd: &std::path::Path,
    progress: Arc<dyn Progress>,
) -> Result<Report, GuardError> {
    let mut config = Config::load()?;
    config.mode = Mode::Block;
    let mut args: Vec<OsString> = vec!["install".into(), "--ignore-installed".into()];
    if let Some(url) = index_url {
        args.extend(["--index-url".into(), url.into()]);
    }
    args.push(requirement.into());
    let request = Request {
        manager: Manager::Pip,
        args,
        cwd: cwd.to_path_buf(),
    };
    match pip::prepare(&request, config, progress)? {
        Prepared::Install(mut session) => {
            session.memo = None;
            let mut report = session.judge(false, &mut NobodyAsked)?;
            // pip's own failure (no such release, a conflict) proceeds in a guarded install,
            // whose hand-over then shows pip's message; here the tree is incomplete.
            let Flow::Pip(flow) = &session.flow else {
                unreachable!("a pip request prepares the pip flow")
            };
            if report.decision == Decision::Proceed
                && report.error.is_none()
                && !flow.report.is_file()
            {
                report.error = Some(format!("pip could not resolve {requirement}"));
            }
            Ok(report)
        }
        Prepared::PassThrough(_) => Err(GuardError::Unsupported(format!(
            "pip would not install {requirement}"
        ))),
    }
}

/// The prompter of a run that asks nobody (`interactive` is false, so it is never called).
struct NobodyAsked;

impl Prompter for NobodyAsked {
    fn choose(&mut self, _: &Flagged, _: usize, _: usize) -> std::io::Result<policy::Choice> {
        Ok(policy::Choice::Abort)
    }
}

/// The real manager run as is, for a command reached from inside a guarded run
/// (`CEREBRO_ACTIVE` set): the outer run already judged what it installs.
pub fn prepare_passthrough(request: &Request) -> Result<Prepared, GuardError> {
    let command = match request.manager {
        Manager::Pip => crate::manager::real::real_pip()?,
        Manager::Npm => vec![crate::manager::real::find_real("npm")?.into_os_string()],
        Manager::Uv => vec![crate::manager::real::find_real("uv")?.into_os_string()],
        Manager::Pnpm => vec![crate::manager::real::find_real("pnpm")?.into_os_string()],
        Manager::Bun => vec![crate::manager::real::find_real("bun")?.into_os_string()],
        Manager::Yarn => vec![crate::manager::real::find_real("yarn")?.into_os_string()],
        Manager::Pipx => vec![crate::manager::real::find_real("pipx")?.into_os_string()],
        Manager::Poetry => vec![crate::manager::real::find_real("poetry")?.into_os_string()],
    };
    Ok(pass_through(command, request))
}

/// The real manager (`command`: program and leading arguments) run with the user's own
/// arguments, in their folder.
fn pass_through(command: Vec<OsString>, request: &Request) -> Prepared {
    let mut d = Delegation::new(command).args(request.args.clone());
    d.cwd = Some(request.cwd.clone());
    Prepared::PassThrough(d)
}

/// What happens to a package in this install.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    /// Judged and not flagged.
    Install,
    /// Flagged, and installed by the user's choice this once.
    Allowed,
    /// Flagged, and on the allowlist (or just added to it).
    Allowlisted,
    /// Flagged, installed with a warning (`warn`).
    Warned,
    /// Flagged and not installed: the install stops.
    Blocked,
    /// Could not be read or judged: the install stops.
    Unreadable,
}

/// What became of a release the cooldown held back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum HeldAction {
    /// Hidden from the installer, which chose an older release (or none).
    HeldBack,
    /// Asked for exactly, and not allowed: the install stops.
    Blocked,
    /// Asked for exactly, and let through this once.
    Allowed,
    /// Asked for exactly, and added to the allowlist.
    Allowlisted,
    /// Asked for exactly, and let through with a warning (`warn`).
    Warned,
}

/// A release too new for the cooldown (`min_release_age`).
#[derive(Debug, Clone, Serialize)]
pub struct HeldBack {
    pub ecosystem: Ecosystem,
    pub name: String,
    pub version: String,
    /// When the registry says it was published (RFC 3339, UTC).
    pub published: String,
    /// Its age when the install started, in seconds.
    pub age_s: u64,
    pub action: HeldAction,
    /// `published 3 hours ago (min_release_age 2 days)`.
    pub reason: String,
}

/// One package of the report.
#[derive(Debug, Clone, Serialize)]
pub struct PackageReport {
    pub ecosystem: Ecosystem,
    pub name: String,
    pub version: String,
    pub file: String,
    pub sha256: String,
    pub score: Option<f32>,
    pub verdict: Option<&'static str>,
    pub action: Action,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub reasons: Vec<String>,
}

/// The install's outcome, before any hand-over.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub manager: Manager,
    /// The policy in force (`prompt` without a terminal blocks without asking).
    pub policy: Mode,
    pub packages: Vec<PackageReport>,
    /// Packages flagged (whatever was then decided).
    pub flagged: usize,
    pub decision: Decision,
    #[serde(serialize_with = "ser_ms", rename = "elapsed_ms")]
    pub elapsed: Duration,
    /// Why the guard stopped without a policy decision (could not judge).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The cooldown in force, in seconds (0: off).
    pub min_release_age_s: u64,
    /// Releases the cooldown held back, and the too-new ones asked for exactly.
    pub held_back: Vec<HeldBack>,
    /// Packages (`ecosystem name`) with releases no registry gave a publish time for (only
    /// on a private index): the cooldown could not hold them back.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub untimed: Vec<String>,
}

fn ser_ms<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u64(d.as_millis() as u64)
}

/// The decision for the whole install.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Decision {
    /// Hand over to the real manager.
    Proceed,
    /// A flagged package was not allowed (policy, or the user aborted).
    Blocked,
    /// Something could not be judged: fail closed.
    CannotJudge,
}

/// An install being guarded: its index, its gate, and the hand-over prepared.
pub struct Session {
    runtime: tokio::runtime::Runtime,
    index: GuardIndex,
    gate: Arc<GuardGate>,
    started: Instant,
    manager: Manager,
    flow: Flow,
    /// Kept alive for the scratch files the hand-over reads (sanitised requirement files).
    _scratch: tempfile::TempDir,
    delegation: Delegation,
    /// The warm path's memo of this install, when a cache folder exists.
    memo: Option<memo::Memo>,
    /// Whether this run skipped the separate resolution (see [`memo`]).
    fast: bool,
}

enum Flow {
    Pip(pip::PipFlow),
    Npm(npm::NpmFlow),
    Uv(uv::UvFlow),
    Pnpm(pnpm::PnpmFlow),
    Bun(bun::BunFlow),
    Yarn(yarn::YarnFlow),
    Pipx(pipx::PipxFlow),
    Poetry(poetry::PoetryFlow),
}

impl Session {
    /// Resolves, judges and decides. `interactive` says whether the prompt may ask (a
    /// terminal and no `CI`); the prompter asks.
    pub fn judge(
        &mut self,
        interactive: bool,
        prompter: &mut dyn Prompter,
    ) -> Result<Report, GuardError> {
        if let Flow::Uv(flow) = &self.flow {
            // uv runs once, through the guard index, which judges each artifact before it
            // serves it; the report comes after (see `delegate`). Local packages first.
            if let Some(stop) =
                self.judge_locals(Ecosystem::Pypi, &flow.local_paths, interactive, prompter)?
            {
                return Ok(stop);
            }
            self.fast = true;
            return Ok(self.report(Decision::Proceed, None));
        }
        if let Flow::Poetry(flow) = &self.flow {
            // Poetry runs once, through the guard index, like uv; its path dependencies
            // are judged first, before it may build them.
            let mut paths = flow.local_paths.clone();
            paths.sort();
            paths.dedup();
            if let Some(stop) = self.judge_locals(Ecosystem::Pypi, &paths, interactive, prompter)? {
                return Ok(stop);
            }
            self.fast = true;
            return Ok(self.report(Decision::Proceed, None));
        }
        if let Flow::Pipx(_) = &self.flow {
            // pipx runs once, through the guard index, like uv (no local packages: refused).
            self.fast = true;
            return Ok(self.report(Decision::Proceed, None));
        }
        let local = match &self.flow {
            Flow::Pip(flow) => flow.has_local_paths(),
            Flow::Npm(flow) => flow.has_local_paths(),
            Flow::Uv(_) => false,
            Flow::Pnpm(_) => false,
            Flow::Bun(_) => false,
            Flow::Yarn(_) => false,
            Flow::Pipx(_) => false,
            Flow::Poetry(_) => false,
        };
        if !local && self.memo.as_ref().is_some_and(memo::Memo::fresh) {
            self.fast = true;
            return Ok(self.report(Decision::Proceed, None));
        }
        let report = match &self.flow {
            Flow::Pip(flow) => pip::judge(self, flow, interactive, prompter),
            Flow::Npm(flow) => npm::judge(self, flow, interactive, prompter),
            Flow::Uv(_) | Flow::Pipx(_) | Flow::Poetry(_) => {
                unreachable!("the uv, pipx and poetry flows returned above")
            }
            Flow::Pnpm(flow) => pnpm::judge(self, flow, interactive, prompter),
            Flow::Bun(flow) => bun::judge(self, flow, interactive, prompter),
            Flow::Yarn(flow) => yarn::judge(self, flow, interactive, prompter),
        }?;
        if let Some(memo) = &self.memo {
            if report.decision == Decision::Proceed
                && report.flagged == 0
                && !report.packages.is_empty()
            {
                let shas: Vec<String> = report.packages.iter().map(|p| p.sha256.clone()).collect();
                // A memo that cannot be written only costs the next run its warm path.
                let _ = memo.record(&shas);
            }
        }
        Ok(report)
    }

    /// Whether this run took the warm path: the real manager resolves and installs through
    /// the guard index in one go, and the report comes after it (from [`Session::delegate`]).
    pub fn is_fast(&self) -> bool {
        self.fast
    }

    /// Hands over to the real manager (only after a `Proceed` decision) and returns its exit
    /// code. The guard index keeps serving while it runs, so what it installs is what was
    /// judged.
    ///
    /// On the warm path it also returns the report of what the index judged meanwhile: if it
    /// refused anything (the manager then failed before installing), the decision is
    /// `Blocked` (or `CannotJudge`) and the memo is dropped so the next run resolves apart.
    pub fn delegate(self) -> std::io::Result<(i32, Option<Report>)> {
        if let Flow::Uv(flow) = &self.flow {
            // uv.lock pointed at the guard, just before uv runs.
            if let Err(detail) = flow.point_lock(&self.runtime, &self.index.handle()) {
                let report = self.report(Decision::CannotJudge, Some(detail));
                self.index.stop();
                return Ok((1, Some(report)));
            }
        }
        // bun: the project's lockfile names the guard while bun runs, and is given back after.
        let restore = match &self.flow {
            Flow::Bun(flow) => bun::before_hand_over(flow)?,
            _ => None,
        };
        // yarn: the same, with the lockfile's guard links turned back after.
        let yarn_restore = match &self.flow {
            Flow::Yarn(flow) => Some(yarn::before_hand_over(flow)?),
            _ => None,
        };
        let code = self.delegation.run();
        if let Some(restore) = restore {
            restore.finish()?;
        }
        let yarn_unmapped = yarn_restore.and_then(|r| r.finish().err());
        let code = code?;
        if code != 0 {
            self.index.wait_judged(JUDGED_WAIT);
        }
        // uv's project files name the guard's URLs: mapped back (or restored) at once.
        let unmapped = match &self.flow {
            Flow::Uv(flow) => flow.finish(&self.index.handle()).err(),
            _ => yarn_unmapped,
        };
        let after = (self.fast || unmapped.is_some()).then(|| {
            let refused = self.gate.take_refused();
            let cannot = self
                .index
                .incidents()
                .into_iter()
                .find(|i| i.cannot_judge)
                .map(|i| i.detail);
            let (decision, error) = if unmapped.is_some() {
                (Decision::CannotJudge, unmapped)
            } else if refused
                .iter()
                .any(|j| matches!(j.outcome, Outcome::Unreadable(_)))
            {
                (Decision::CannotJudge, None)
            } else if !refused.is_empty() {
                (Decision::Blocked, None)
            } else if cannot.is_some() && code != 0 {
                (Decision::CannotJudge, cannot)
            } else {
                (Decision::Proceed, None)
            };
            // A failed install with releases held back may have asked for one exactly: the
            // next run resolves apart, so that Cerebro can say so.
            if decision != Decision::Proceed || (code != 0 && !self.index.held().is_empty()) {
                if let Some(m) = &self.memo {
                    m.forget();
                }
            }
            let mut report = self.report(decision, error);
            // Poetry stopped by the guard: its project files as they were before it ran.
            if let (Flow::Poetry(flow), true) = (&self.flow, decision != Decision::Proceed) {
                if let Err(e) = flow.restore() {
                    report.error.get_or_insert(e);
                }
            }
            report
        });
        self.index.stop();
        Ok((code, after))
    }

    /// The command the hand-over runs.
    pub fn delegation(&self) -> &Delegation {
        &self.delegation
    }

    /// For the managers whose failed scratch resolution is never handed over (pnpm, yarn:
    /// their stores or answers could stand in for what the guard never saw): the report that
    /// stops the run, if it stops, with `tool`'s own error line (`last_failure`) as the why.
    fn stop_after_scratch_resolution(
        &self,
        resolved: Result<Resolved, GuardError>,
        tool: &str,
        last_failure: &str,
    ) -> Result<Option<Report>, GuardError> {
        match resolved {
            Ok(Resolved::Done) => Ok(None),
            Ok(Resolved::Stopped(d)) => Ok(Some(self.report(d, None))),
            Ok(Resolved::ManagerFailed) => {
                let why = if last_failure.is_empty() {
                    format!("{tool} could not resolve the install")
                } else {
                    format!("{tool} could not resolve the install: {last_failure}")
                };
                Ok(Some(self.report(Decision::CannotJudge, Some(why))))
            }
            Err(GuardError::CannotJudge(detail)) => {
                Ok(Some(self.report(Decision::CannotJudge, Some(detail))))
            }
            Err(e) => Err(e),
        }
    }

    /// Resolution loop shared by both managers: run `resolve`, and when it failed because the
    /// gate refused flagged packages, decide on them (the prompt may allow some) and try
    /// again; returns once the resolution succeeded or the decision is to stop.
    fn resolve_loop(
        &self,
        interactive: bool,
        prompter: &mut dyn Prompter,
        mut resolve: impl FnMut() -> Result<crate::delegate::Captured, GuardError>,
    ) -> Result<Resolved, GuardError> {
        for _ in 0..8 {
            self.index.clear_incidents();
            let run = resolve()?;
            if run.code != 0 {
                // The manager may have given up waiting for a judgement still under way.
                self.index.wait_judged(JUDGED_WAIT);
            }
            let refused = self.gate.take_refused();
            if run.code == 0 && refused.is_empty() {
                return Ok(Resolved::Done);
            }
            if !refused.is_empty() {
                if let Some(stop) = self.decide(&refused, interactive, prompter)? {
                    return Ok(Resolved::Stopped(stop));
                }
                continue;
            }
            // Failed for want of a release the cooldown hid: asked for exactly.
            let pins = self.failed_pins(&run);
            if !pins.is_empty() {
                if let Some(stop) = self.decide_pins(&pins, interactive, prompter)? {
                    return Ok(Resolved::Stopped(stop));
                }
                continue;
            }
            // The resolution failed with nothing refused: a fetch problem the index saw, or
            // the manager's own complaint (no such package, conflicts).
            if let Some(incident) = self.index.incidents().into_iter().find(|i| i.cannot_judge) {
                return Err(GuardError::CannotJudge(incident.detail));
            }
            return Ok(Resolved::ManagerFailed);
        }
        Err(GuardError::Unsupported(
            "the resolution kept finding new flagged packages; giving up".into(),
        ))
    }

    /// Decides on packages the policy stops; `Some` when the install must stop. Allowed ones
    /// are let through for the rest of this install (and the allowlist updated).
    fn decide(
        &self,
        stopped: &[Judged],
        interactive: bool,
        prompter: &mut dyn Prompter,
    ) -> Result<Option<Decision>, GuardError> {
        // Fail closed: what cannot be judged is not offered at the prompt (only the
        // allowlist lets it through).
        if stopped
            .iter()
            .any(|j| matches!(j.outcome, Outcome::Unreadable(_)))
        {
            return Ok(Some(Decision::CannotJudge));
        }
        let flagged: Vec<Flagged> = stopped.iter().map(Judged::flagged).collect();
        let mode = self.gate.config().mode;
        let decision = policy::decide(mode, &flagged, interactive, prompter)
            .map_err(GuardError::io("the prompt failed"))?;
        for &i in decision.once.iter().chain(&decision.always) {
            self.gate.allow_once(&flagged[i].sha256);
        }
        if !decision.always.is_empty() {
            let entries: Vec<_> = decision
                .always
                .iter()
                .map(|&i| policy::Entry::new(flagged[i].ecosystem, &flagged[i].name, None))
                .collect::<Result<_, _>>()?;
            let list = Allowlist::update_default(|list| {
                for e in entries {
                    list.add(e);
                }
                list.clone()
            })?;
            self.gate.set_allowlist(list);
        }
        if decision.proceed {
            for &i in &decision.warned {
                self.gate.allow_once(&flagged[i].sha256);
            }
            Ok(None)
        } else {
            Ok(Some(Decision::Blocked))
        }
    }

    /// The releases the cooldown hid that a failed resolution asked for: the manager said it
    /// found no version of a package (pip's "No matching distribution found for X==1.1",
    /// npm's "No matching version found for x@1.1.0"), and the index hid versions of it (the
    /// one named, for an exact version).
    fn failed_pins(&self, run: &crate::delegate::Captured) -> Vec<Held> {
        let ecosystem = self.manager.ecosystem();
        let output = format!(
            "{}\n{}",
            String::from_utf8_lossy(&run.stdout),
            String::from_utf8_lossy(&run.stderr)
        );
        let wanted = missing_requirements(self.manager, &output);
        let same = |a: &str, b: &str| match ecosystem {
            Ecosystem::Pypi => {
                crate::index::normalize_pypi_name(a) == crate::index::normalize_pypi_name(b)
            }
            Ecosystem::Npm => a == b,
        };
        self.index
            .held()
            .into_iter()
            .filter(|h| h.ecosystem == ecosystem)
            .filter(|h| !self.gate.lets_through_new(h.ecosystem, &h.name, &h.version))
            .filter(|h| {
                wanted.iter().any(|(name, version)| {
                    same(name, &h.name)
                        && version.as_deref().is_none_or(|v| {
                            crate::index::version_key(v) == crate::index::version_key(&h.version)
                        })
                })
            })
            .collect()
    }

    /// Decides on too-new releases asked for exactly, like on flagged packages: `Some` when
    /// the install must stop. Allowed ones are shown to the installer for the rest of this
    /// install; "always" adds that version (not the package) to the allowlist.
    fn decide_pins(
        &self,
        pins: &[Held],
        interactive: bool,
        prompter: &mut dyn Prompter,
    ) -> Result<Option<Decision>, GuardError> {
        let now = self.index.now();
        let min = self.gate.config().min_release_age;
        let flagged: Vec<Flagged> = pins
            .iter()
            .map(|h| Flagged {
                ecosystem: h.ecosystem,
                name: h.name.clone(),
                version: h.version.clone(),
                file: String::new(),
                sha256: String::new(),
                score: 0.0,
                verdict: cerebro_scan::detect::Verdict::Benign,
                reasons: Vec::new(),
                too_new: Some(h.reason(now, min)),
            })
            .collect();
        let mode = self.gate.config().mode;
        let decision = policy::decide(mode, &flagged, interactive, prompter)
            .map_err(GuardError::io("the prompt failed"))?;
        let record = |list: &[usize], action: HeldAction| {
            for &i in list {
                let h = &pins[i];
                if action != HeldAction::Blocked {
                    self.gate.allow_release(h.ecosystem, &h.name, &h.version);
                }
                self.gate.record_pin(h.clone(), action);
            }
        };
        record(&decision.once, HeldAction::Allowed);
        record(&decision.always, HeldAction::Allowlisted);
        record(&decision.blocked, HeldAction::Blocked);
        if decision.proceed {
            record(&decision.warned, HeldAction::Warned);
        }
        if !decision.always.is_empty() {
            let entries: Vec<_> = decision
                .always
                .iter()
                .map(|&i| {
                    policy::Entry::new(pins[i].ecosystem, &pins[i].name, Some(&pins[i].version))
                })
                .collect::<Result<_, _>>()?;
            let list = Allowlist::update_default(|list| {
                for e in entries {
                    list.add(e);
                }
                list.clone()
            })?;
            self.gate.set_allowlist(list);
        }
        Ok((!decision.proceed).then_some(Decision::Blocked))
    }

    /// Judges the local projects and archives the user named, before anything runs their
    /// build; `Some` (the report) when the decision is to stop.
    fn judge_locals(
        &self,
        ecosystem: Ecosystem,
        paths: &[PathBuf],
        interactive: bool,
        prompter: &mut dyn Prompter,
    ) -> Result<Option<Report>, GuardError> {
        let stopped: Vec<Judged> = paths
            .iter()
            .map(|p| self.gate.judge_local(ecosystem, p))
            .filter(|j| self.gate.stops(j))
            .collect();
        if stopped.is_empty() {
            return Ok(None);
        }
        Ok(self
            .decide(&stopped, interactive, prompter)?
            .map(|d| self.report(d, None)))
    }

    /// The end of both flows: the admissions of the resolved tree (a fetch that failed
    /// stops the install: fail closed), then one decision on everything the policy stopped,
    /// with `more` (judged outside the index) considered too.
    fn conclude(
        &self,
        admissions: Vec<Result<(Candidate, Admission), String>>,
        more: Vec<Judged>,
        interactive: bool,
        prompter: &mut dyn Prompter,
    ) -> Result<Report, GuardError> {
        if let Some(Err(detail)) = admissions.into_iter().find(Result::is_err) {
            return Ok(self.report(Decision::CannotJudge, Some(detail)));
        }
        let mut refused = self.gate.take_refused();
        refused.extend(more.into_iter().filter(|j| self.gate.stops(j)));
        if !refused.is_empty() {
            if let Some(d) = self.decide(&refused, interactive, prompter)? {
                return Ok(self.report(d, None));
            }
        }
        Ok(self.report(Decision::Proceed, None))
    }

    /// The report of everything judged so far, with the decision.
    fn report(&self, decision: Decision, error: Option<String>) -> Report {
        let mode = self.gate.config().mode;
        let judged = self.gate.judged();
        let mut flagged = 0;
        let packages = judged
            .iter()
            .map(|j| {
                let concerning = self.gate.concerning(j);
                if concerning {
                    flagged += 1;
                }
                let action = match (&j.outcome, concerning, self.gate.stops(j)) {
                    (_, false, _) => Action::Install,
                    (Outcome::Unreadable(_), _, true) => Action::Unreadable,
                    (_, true, true) if mode == Mode::Warn => Action::Warned,
                    (_, true, true) => Action::Blocked,
                    (_, true, false) if self.gate.allowlisted(j) => Action::Allowlisted,
                    (_, true, false) if mode == Mode::Warn => Action::Warned,
                    (_, true, false) => Action::Allowed,
                };
                let (score, verdict, reasons) = match &j.outcome {
                    Outcome::Judged {
                        score,
                        verdict,
                        reasons,
                    } => (*score, verdict.map(|v| v.as_str()), reasons.clone()),
                    Outcome::Unreadable(why) => (None, None, vec![why.clone()]),
                };
                PackageReport {
                    ecosystem: j.ecosystem,
                    name: j.name.clone(),
                    version: j.version.clone(),
                    file: j.file.clone(),
                    sha256: j.sha256.clone(),
                    score,
                    verdict,
                    action,
                    reasons: if concerning { reasons } else { Vec::new() },
                }
            })
            .collect();
        let now = self.index.now();
        let min = self.gate.config().min_release_age;
        let pins = self.gate.pins();
        flagged += pins.len();
        let held_back = self
            .index
            .held()
            .into_iter()
            .filter_map(|h| {
                let action = pins
                    .iter()
                    .find(|(p, _)| p == &h)
                    .map(|(_, a)| *a)
                    .unwrap_or(HeldAction::HeldBack);
                // Let through later (an answer at the prompt, for another request of it).
                if action == HeldAction::HeldBack
                    && self.gate.lets_through_new(h.ecosystem, &h.name, &h.version)
                {
                    return None;
                }
                Some(HeldBack {
                    ecosystem: h.ecosystem,
                    name: h.name.clone(),
                    version: h.version.clone(),
                    published: crate::index::format_time(h.published),
                    age_s: h.age(now).as_secs(),
                    action,
                    reason: h.reason(now, min),
                })
            })
            .collect();
        Report {
            manager: self.manager,
            policy: mode,
            packages,
            flagged,
            decision,
            elapsed: self.started.elapsed(),
            error,
            min_release_age_s: min.as_secs(),
            held_back,
            untimed: self
                .index
                .untimed()
                .into_iter()
                .map(|(e, n)| format!("{e} {n}"))
                .collect(),
        }
    }
}

/// The requirements a failed resolution could not meet, from the manager's output: name,
/// and the version when it asked for exactly one.
fn missing_requirements(manager: Manager, output: &str) -> Vec<(String, Option<String>)> {
    let marker = match manager {
        Manager::Pip | Manager::Uv | Manager::Pipx => "No matching distribution found for ",
        Manager::Npm | Manager::Pnpm => "No matching version found for ",
        Manager::Bun | Manager::Yarn | Manager::Poetry => return Vec::new(),
    };
    output
        .lines()
        .filter_map(|line| {
            let spec = line.split_once(marker)?.1.trim();
            // pnpm goes on: `x@1.1.0 while fetching it from http://…`.
            let spec = match manager {
                Manager::Pnpm => spec.split_whitespace().next().unwrap_or(spec),
                _ => spec,
            };
            let spec = spec.strip_suffix('.').unwrap_or(spec);
            match manager {
                Manager::Pip | Manager::Uv | Manager::Pipx => {
                    let end = spec
                        .find(|c: char| !(c.is_ascii_alphanumeric() || "-_.".contains(c)))
                        .unwrap_or(spec.len());
                    let (name, rest) = spec.split_at(end);
                    let rest = match rest.trim_start().strip_prefix('[') {
                        Some(r) => r.split_once(']').map_or("", |(_, r)| r),
                        None => rest,
                    };
                    let rest = rest.split(';').next().unwrap_or("").trim();
                    let exact = rest
                        .strip_prefix("==")
                        .filter(|v| !v.starts_with('=') && !v.contains([',', '*']))
                        .map(|v| v.trim().to_owned());
                    (!name.is_empty()).then(|| (name.to_owned(), exact))
                }
                Manager::Bun | Manager::Yarn | Manager::Poetry => None,
                Manager::Npm | Manager::Pnpm => {
                    let at = spec[1..].rfind('@').map(|i| i + 1)?;
                    let (name, range) = (&spec[..at], &spec[at + 1..]);
                    let range = range.trim().trim_start_matches(['=', 'v']);
                    let exact = range
                        .split(['.', '-', '+'])
                        .take(3)
                        .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
                        && range.split('.').count() >= 3;
                    Some((name.to_owned(), exact.then(|| range.to_owned())))
                }
            }
        })
        .collect()
}

enum Resolved {
    Done,
    Stopped(Decision),
    ManagerFailed,
}

/// `NO_PROXY`/`no_proxy` with loopback added, so that a manager behind an HTTP proxy still
/// talks to the guard index directly.
/// The variables that tell an installer how long to wait for the guard index: `timeout`
/// ([`Config::installer_timeout`], a minute over the guard's own deadline), so that a slow
/// download ends with the guard's line and 78, not the installer's read-timeout traceback.
/// pip's own run gets it from `guarded_env` (also for `--isolated`), yarn as a flag; bun has
/// no such setting.
fn timeout_env(manager: Manager, timeout: Duration) -> Vec<(OsString, OsString)> {
    let (name, value) = match manager {
        Manager::Pip | Manager::Pipx => ("PIP_DEFAULT_TIMEOUT", timeout.as_secs().to_string()),
        Manager::Uv => ("UV_HTTP_TIMEOUT", timeout.as_secs().to_string()),
        Manager::Poetry => ("POETRY_REQUESTS_TIMEOUT", timeout.as_secs().to_string()),
        Manager::Npm | Manager::Pnpm => {
            ("npm_config_fetch_timeout", timeout.as_millis().to_string())
        }
        Manager::Yarn | Manager::Bun => return Vec::new(),
    };
    vec![(name.into(), value.into())]
}

/// [`loopback_env`] and [`timeout_env`]: the environment of an installer run against the
/// guard index.
fn run_env(manager: Manager, timeout: Duration) -> Vec<(OsString, OsString)> {
    let mut env = loopback_env();
    env.extend(timeout_env(manager, timeout));
    env
}

fn loopback_env() -> Vec<(OsString, OsString)> {
    ["NO_PROXY", "no_proxy"]
        .iter()
        .map(|k| {
            let mut v = std::env::var(k).unwrap_or_default();
            if !v.split(',').any(|h| h.trim() == "127.0.0.1") {
                if !v.is_empty() {
                    v.push(',');
                }
                v.push_str("127.0.0.1,localhost");
            }
            (OsString::from(*k), OsString::from(v))
        })
        .collect()
}

/// The memo of an install, keyed by what `key` adds after the judge's id; `None` without a
/// cache folder.
fn memo_for(gate: &GuardGate, key: impl FnOnce(&mut memo::KeyBuilder)) -> Option<memo::Memo> {
    let root = CacheBucket::Resolutions.path()?;
    let mut k = memo::KeyBuilder::new(gate.judge_id());
    key(&mut k);
    Some(memo::Memo::at(&root, &k.finish()))
}

/// The parts every session needs: runtime, fetcher, gate.
struct Parts {
    runtime: tokio::runtime::Runtime,
    fetcher: Fetcher,
    gate: Arc<GuardGate>,
}

impl Parts {
    /// Starts the guard index in front of these upstreams, and makes the scratch folder.
    fn start(
        &self,
        pypi: Vec<crate::index::PypiUpstream>,
        npm: Option<crate::manager::npm::NpmConfig>,
        manager: Manager,
    ) -> Result<(GuardIndex, tempfile::TempDir), GuardError> {
        self.start_with(pypi, npm, manager, None)
    }

    /// [`Parts::start`], the index also fronting Poetry's own URLs when `poetry` is given.
    fn start_with(
        &self,
        pypi: Vec<crate::index::PypiUpstream>,
        npm: Option<crate::manager::npm::NpmConfig>,
        manager: Manager,
        poetry: Option<crate::index::PoetryFront>,
    ) -> Result<(GuardIndex, tempfile::TempDir), GuardError> {
        let (public_pypi, public_npm) = policy::public_registries()?;
        let config = self.gate.config();
        let cooldown = crate::index::Cooldown {
            min_age: config.min_release_age,
            exempt: config.min_release_age_exempt.clone(),
            public_pypi,
            public_npm,
        };
        let index = self
            .runtime
            .block_on(GuardIndex::start(crate::index::IndexConfig {
                fetcher: self.fetcher.clone(),
                gate: self.gate.clone(),
                pypi,
                npm,
                cooldown: Some(cooldown),
                npm_links_to_guard: manager == Manager::Pnpm,
                deadline: config.upstream_deadline,
                poetry,
                document_ttl: None,
            }))
            .map_err(GuardError::io("cannot start the guard index on 127.0.0.1"))?;
        let scratch = tempfile::Builder::new()
            .prefix(&format!("cerebro-{}-", manager.as_str()))
            .tempdir()
            .map_err(GuardError::io("cannot make a scratch folder"))?;
        Ok((index, scratch))
    }
}

fn parts(
    config: Config,
    extra_ca_file: Option<PathBuf>,
    progress: Arc<dyn Progress>,
) -> Result<Parts, GuardError> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(GuardError::io("cannot start the guard's runtime"))?;
    let cache_root = FetchOptions::default_cache_root().ok_or_else(|| {
        GuardError::Unsupported("no cache folder: set CEREBRO_CACHE_DIR or HOME".to_owned())
    })?;
    let mut options = FetchOptions::new(cache_root);
    options.extra_ca_file = extra_ca_file;
    let fetcher = Fetcher::new(options)?;
    let verdicts = CacheBucket::Verdicts
        .path()
        .and_then(|d| VerdictCache::open(d).ok());
    let allowlist = Allowlist::load_default()?;
    let detector = Arc::new(Detector::embedded()?);
    let gate = Arc::new(GuardGate::new(
        detector, config, verdicts, allowlist, progress,
    ));
    Ok(Parts {
        runtime,
        fetcher,
        gate,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_requirements_from_the_managers_words() {
        let pip = "ERROR: Could not find a version that satisfies the requirement Gamma_Lib[x]==1.1 (from versions: 1.0.0)\n\
                   ERROR: No matching distribution found for Gamma_Lib[x]==1.1\n\
                   ERROR: No matching distribution found for beta-lib>=2,<3\n\
                   ERROR: No matching distribution found for zeta===1.0\n";
        assert_eq!(
            missing_requirements(Manager::Pip, pip),
            [
                ("Gamma_Lib".to_owned(), Some("1.1".to_owned())),
                ("beta-lib".to_owned(), None),
                ("zeta".to_owned(), None),
            ]
        );
        let npm = "npm error code ETARGET\n\
                   npm error notarget No matching version found for @acme/util@1.1.0.\n\
                   npm ERR! notarget No matching version found for gamma-js@^1.1.0.\n";
        assert_eq!(
            missing_requirements(Manager::Npm, npm),
            [
                ("@acme/util".to_owned(), Some("1.1.0".to_owned())),
                ("gamma-js".to_owned(), None),
            ]
        );
        assert!(missing_requirements(Manager::Npm, "npm error code E404\n").is_empty());
        let pnpm = " ERR_PNPM_NO_MATCHING_VERSION  No matching version found for gamma-js@1.1.0 \
                    while fetching it from http://127.0.0.1:4873/\n";
        assert_eq!(
            missing_requirements(Manager::Pnpm, pnpm),
            [("gamma-js".to_owned(), Some("1.1.0".to_owned()))]
        );
    }
}
