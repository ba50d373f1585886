//! `cerebro pip` and `cerebro npm`: the guarded install, as the shims run it. This is the
//! terminal side: progress, the summary, the prompt, `--json`, Ctrl-C and exit codes. The
//! work itself is [`cerebro_guard::guard`].

use std::ffi::OsString;
use std::io::{IsTerminal, Write};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anstyle::{AnsiColor, Style};
use clap::Args;

use cerebro_guard::guard::{
    self, Action, Decision, HeldAction, Judged, Manager, Prepared, Report, Request,
};
use cerebro_guard::manager::real::ACTIVE_ENV;
use cerebro_guard::policy::{self, TerminalPrompter};

/// Exit code: the install was stopped because a flagged package was not allowed (by the
/// policy, or by the user at the prompt). Nothing was installed.
pub const EXIT_BLOCKED: u8 = 77;
/// Exit code: the guard could not judge the install (an upstream unreachable, a hash
/// mismatch, a download cut short, an unreadable archive, an unsupported requirement) and
/// failed closed. Nothing was installed.
pub const EXIT_CANNOT_JUDGE: u8 = 78;
/// Exit code: interrupted (Ctrl-C) before the hand-over. Nothing was installed.
pub const EXIT_INTERRUPTED: u8 = 130;

pub const AFTER_HELP: &str = "\
Everything after `--` goes to the real package manager, untouched. Commands that install or
fetch package code (pip install/download/wheel; npm install/i/add/ci/update; npm exec/x and
npx, unless the command is already in node_modules/.bin; pnpm add/install/i/update/up, dlx
and create; bun add/install/i/update/x and bunx) are resolved through Cerebro's guard index on 127.0.0.1, every package of the
tree is downloaded, verified and judged, and only then does the real manager run, served
exactly the artifacts that were judged. Other commands run the real manager directly.

uv (`cerebro uv`, `cerebro uvx`): `uv pip install`, `uv pip sync`, `uv add`, `uv remove`,
`uv lock`, `uv sync`, `uv run`, `uv tool install` and `uv tool run`/`uvx` run once, live, with the
guard index as uv's only index: each artifact is judged before it is served, and a refusal
stops uv before it builds or installs anything. uv.lock and pyproject.toml keep the user's
index and file URLs (guard URLs are mapped back; what cannot be is restored and refused).
`uv run` too: the project is synced (and a `--with` environment made) through the guard
before the command starts, and the command runs while the guard index still serves (its own
`pip install` or `uv add` are guarded anew). Extra or named indexes, find-links and direct
URLs are refused (78). Every other uv command runs the real uv directly.

Poetry (`cerebro poetry`): `add`, `install`, `update`, `lock`, `sync`, `remove`, `build` (and
any command Cerebro does not know) run once, in Poetry's own Python with Cerebro's hook in
front, which sends every download of Poetry's to the guard index: each sdist and wheel is
judged before it is served, so before Poetry may build it (for its metadata, while locking)
or install it. Poetry sees its own sources' URLs, so poetry.lock and pyproject.toml come out
as a bare run writes them; a stopped run puts both back. Poetry's caches are fresh for the
run. Path dependencies are judged where they are first; git and URL dependencies, project
plugins and `poetry self add/install/update` are refused (78); `run`, `show`, `check`, `env`
and the like run the real Poetry directly.

Policy (CEREBRO_POLICY, or `policy` in the config file):
  block   stop the install when a package is flagged
  prompt  ask about each flagged package (on a terminal; acts as block without one or with CI set)
  warn    install, and say which packages were flagged
  off     run the real manager directly

Exit codes:
  77   a flagged package was not allowed; nothing was installed
  78   Cerebro could not judge the install (unreachable registry, hash mismatch, truncated
       or unreadable download, unsupported requirement); nothing was installed
  130  interrupted before the hand-over; nothing was installed
  else the real package manager's own exit code

Environment:
  CEREBRO_POLICY      block | prompt | warn | off (overrides the config file)
  CEREBRO_CONFIG_DIR  folder of config.toml and allowlist.toml
  CEREBRO_CACHE_DIR   folder of the download and verdict caches
  CEREBRO_JSON=1      as --json
  CI                  set: prompt acts as block
  NO_COLOR            no colour

Examples:
  cerebro pip -- install requests
  cerebro npm -- install --save-dev eslint
  cerebro npx -- -y cowsay hello
  cerebro uv -- add requests
  cerebro uvx -- ruff check
  cerebro poetry -- add requests
  cerebro pnpm -- add left-pad
  cerebro bun -- add left-pad
  CEREBRO_POLICY=block cerebro pip --json -- install -r requirements.txt";

#[derive(Debug, Args)]
pub struct GuardArgs {
    /// Print the guard's report as one JSON object on stdout before the hand-over.
    #[arg(long, env = cerebro_settings::ENV_JSON, value_parser = clap::builder::FalseyValueParser::new())]
    pub json: bool,

    /// The package manager's own arguments, passed on untouched.
    #[arg(
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "ARGS"
    )]
    pub args: Vec<OsString>,
}

/// `cerebro npx -- ARGS`: npx's arguments rewritten into the `npm exec` command npx itself
/// runs, then guarded as npm.
pub fn run_npx(mut args: GuardArgs) -> anyhow::Result<ExitCode> {
    match cerebro_guard::manager::npm::npx_args(&args.args) {
        Ok((exec, removed)) => {
            // npx's own words for the options it drops.
            for key in &removed {
                eprintln!("npx: the --{key} argument has been removed.");
            }
            if !removed.is_empty() {
                eprintln!("See `npm help exec` for more information");
            }
            args.args = exec;
            run(Manager::Npm, args)
        }
        Err(e) => Ok(fail(Manager::Npm, &e.to_string(), args.json)),
    }
}

/// `cerebro uvx -- ARGS`: `uv tool run ARGS`, which is what uvx is, guarded as uv.
pub fn run_uvx(mut args: GuardArgs) -> anyhow::Result<ExitCode> {
    let mut rewritten: Vec<OsString> = vec!["tool".into(), "run".into()];
    rewritten.append(&mut args.args);
    args.args = rewritten;
    run(Manager::Uv, args)
}

/// Runs one guarded command and returns the exit code.
pub fn run(manager: Manager, args: GuardArgs) -> anyhow::Result<ExitCode> {
    let code = run_guarded(manager, args);
    // Once the real installer is done with the downloads this run served.
    super::cache::trim();
    code
}

fn run_guarded(manager: Manager, args: GuardArgs) -> anyhow::Result<ExitCode> {
    let cwd = std::env::current_dir()?;
    let request = Request {
        manager,
        args: args.args,
        cwd,
    };
    let progress = Arc::new(Spinner::new(manager));
    let interrupt = Interrupt::install();
    let prepared = if std::env::var_os(ACTIVE_ENV).is_some_and(|v| !v.is_empty()) {
        // Reached from inside a guarded run: that run already judged what this one installs.
        match guard::prepare_passthrough(&request) {
            Ok(p) => p,
            Err(e) => return Ok(fail(manager, &e.to_string(), args.json)),
        }
    } else {
        let prepared = if manager == Manager::Poetry {
            guard::prepare_poetry(&request, progress.clone(), poetry_lock_unfronted)
        } else {
            guard::prepare(&request, progress.clone())
        };
        match prepared {
            Ok(p) => p,
            Err(e) => {
                progress.finish();
                return Ok(fail(manager, &e.to_string(), args.json));
            }
        }
    };
    let mut session = match prepared {
        Prepared::PassThrough(d) => {
            interrupt.hand_over();
            let code = d
                .run()
                .map_err(|e| anyhow::anyhow!("cannot run {}: {e}", d.program.to_string_lossy()))?;
            return Ok(exit(code));
        }
        Prepared::Install(session) => session,
    };
    let interactive = policy::interactive();
    let mut prompter = SpinnerPausingPrompter {
        inner: TerminalPrompter::new(),
        spinner: progress.clone(),
    };
    let report = session.judge(interactive, &mut prompter);
    progress.finish();
    let report = match report {
        Ok(r) => r,
        Err(e) => return Ok(fail(manager, &e.to_string(), args.json)),
    };
    if !session.is_fast() {
        show(&report, args.json, interactive);
    }
    match report.decision {
        Decision::Proceed => {
            interrupt.hand_over();
            let (code, after) = session
                .delegate()
                .map_err(|e| anyhow::anyhow!("cannot run the real {}: {e}", manager.as_str()))?;
            let Some(after) = after else {
                return Ok(exit(code));
            };
            // A uv or Poetry run that fetched nothing (`uv run` in a synced project, `poetry
            // install` with everything installed) says nothing more.
            let quiet = matches!(manager, Manager::Uv | Manager::Poetry)
                && after.packages.is_empty()
                && after.held_back.is_empty()
                && after.decision == Decision::Proceed;
            if !quiet {
                show(&after, args.json, interactive);
            } else if args.json {
                show_json(&after);
            }
            Ok(match after.decision {
                Decision::Proceed => exit(code),
                Decision::Blocked => ExitCode::from(EXIT_BLOCKED),
                Decision::CannotJudge => ExitCode::from(EXIT_CANNOT_JUDGE),
            })
        }
        Decision::Blocked => Ok(ExitCode::from(EXIT_BLOCKED)),
        Decision::CannotJudge => Ok(ExitCode::from(EXIT_CANNOT_JUDGE)),
    }
}

/// What a `poetry.lock` locks outside the indexes (path dependencies to judge, git and URL
/// packages to refuse), read by `cerebro audit`'s reader of that file.
fn poetry_lock_unfronted(path: &std::path::Path) -> Result<guard::PoetryLockedOutside, String> {
    use cerebro_audit::Origin;
    let pins = cerebro_audit::lockfile::python::read_poetry(path).map_err(|e| e.to_string())?;
    let mut out = guard::PoetryLockedOutside::default();
    for pin in &pins {
        match &pin.origin {
            Origin::Pypi { .. } => {}
            Origin::Local(p) => out.local.push(p.clone()),
            Origin::Files(files) => out.unfronted.push(format!(
                "{} (the URL {})",
                pin.name,
                files.first().map_or("?", |f| f.url.as_str())
            )),
            Origin::Unjudgeable(why) => out.unfronted.push(format!("{} ({why})", pin.name)),
            Origin::Npm { .. } | Origin::Installed { .. } => out
                .unfronted
                .push(format!("{} (not a Python index package)", pin.name)),
        }
    }
    Ok(out)
}

/// The report as one JSON line on stdout.
fn show_json(report: &Report) {
    let mut out = std::io::stdout().lock();
    let _ = serde_json::to_writer(&mut out, report);
    let _ = writeln!(out);
}

/// The report: JSON on stdout when asked, the human lines on stderr. `interactive` says
/// whether the prompt could ask (to explain a `prompt` that blocked without asking).
fn show(report: &Report, json: bool, interactive: bool) {
    if json {
        show_json(report);
    }
    print_report(report);
    if report.decision == Decision::Blocked && report.policy == policy::Mode::Prompt && !interactive
    {
        let why = if std::env::var_os(cerebro_settings::ENV_CI).is_some_and(|v| !v.is_empty()) {
            "CI is set"
        } else {
            "there was no terminal to ask on"
        };
        let _ = writeln!(
            anstream::stderr(),
            "{YELLOW}{:>12}{YELLOW:#} the policy is prompt, but {why}: blocked without asking \
             (run it on a terminal to choose)",
            "note"
        );
    }
}

fn exit(code: i32) -> ExitCode {
    ExitCode::from(u8::try_from(code).unwrap_or(1))
}

/// One line for a guard that could not do its job, and the exit code that says so.
fn fail(manager: Manager, message: &str, json: bool) -> ExitCode {
    if json {
        let doc = serde_json::json!({
            "manager": manager.as_str(),
            "packages": [],
            "flagged": 0,
            "decision": "cannot-judge",
            "error": message,
            "held_back": [],
        });
        println!("{doc}");
    }
    let red = Style::new().fg_color(Some(AnsiColor::Red.into())).bold();
    let _ = writeln!(
        anstream::stderr(),
        "{red}cerebro{red:#}: {message}; nothing was installed"
    );
    ExitCode::from(EXIT_CANNOT_JUDGE)
}

const RED: Style = AnsiColor::Red.on_default().bold();
const YELLOW: Style = AnsiColor::Yellow.on_default().bold();
const GREEN: Style = AnsiColor::Green.on_default().bold();
const DIM: Style = Style::new().dimmed();

/// The flagged packages, then one summary line, on stderr.
fn print_report(report: &Report) {
    write_report(report, &mut anstream::stderr());
}

/// Text from a package (names, versions, files), fit for the terminal.
fn safe(text: &str) -> std::borrow::Cow<'_, str> {
    cerebro_archive::terminal_safe(text)
}

/// [`print_report`] into `err` (styled; `anstream` strips the styles where they do not
/// belong).
fn write_report(report: &Report, err: &mut dyn Write) {
    for p in &report.packages {
        let (style, what) = match p.action {
            Action::Blocked => (RED, "blocked"),
            Action::Unreadable => (RED, "cannot judge"),
            Action::Warned => (YELLOW, "warning"),
            Action::Allowed => (YELLOW, "allowed once"),
            Action::Allowlisted => (DIM, "allowlisted"),
            Action::Install => continue,
        };
        let verdict = match (p.verdict, p.score) {
            (Some(v), Some(s)) => format!("{v}, score {s:.2}"),
            _ => "could not be judged".to_owned(),
        };
        let _ = writeln!(
            err,
            "{style}{what:>12}{style:#} {} {} {DIM}({}){DIM:#}: {verdict}",
            safe(&p.name),
            safe(&p.version),
            safe(&p.file)
        );
        for reason in &p.reasons {
            let _ = writeln!(err, "{:>12}   {}", "", safe(reason));
        }
    }
    for h in &report.held_back {
        let (style, what) = match h.action {
            HeldAction::HeldBack => continue,
            HeldAction::Blocked => (RED, "blocked"),
            HeldAction::Allowed => (YELLOW, "allowed once"),
            HeldAction::Warned => (YELLOW, "warning"),
            HeldAction::Allowlisted => (DIM, "allowlisted"),
        };
        let _ = writeln!(
            err,
            "{style}{what:>12}{style:#} {} {}: {}",
            safe(&h.name),
            safe(&h.version),
            safe(&h.reason)
        );
        if h.action == HeldAction::Blocked {
            let spec = match h.ecosystem {
                cerebro_archive::Ecosystem::Pypi => format!("{}=={}", h.name, h.version),
                cerebro_archive::Ecosystem::Npm => format!("{}@{}", h.name, h.version),
            };
            let _ = writeln!(
                err,
                "{:>12}   to install it now: `cerebro allow {} {spec}`, or CEREBRO_MIN_RELEASE_AGE=0",
                "", h.ecosystem
            );
        }
    }
    let n = report.packages.len();
    let secs = report.elapsed.as_secs_f64();
    let flagged = match report.flagged {
        0 => "none flagged".to_owned(),
        k => format!("{k} flagged"),
    };
    let (style, verb) = match report.decision {
        Decision::Proceed => (GREEN, "Scanned"),
        Decision::Blocked => (RED, "Blocked"),
        Decision::CannotJudge => (RED, "Stopped"),
    };
    let tail = match report.decision {
        Decision::Proceed => String::new(),
        // Stopped only by too-new releases: their own lines said how to let them through.
        Decision::Blocked if !report.packages.iter().any(|p| p.action == Action::Blocked) => {
            "; nothing was installed".to_owned()
        }
        Decision::Blocked => format!(
            "; nothing was installed (allow a package you trust with `cerebro allow {} NAME`)",
            report
                .packages
                .first()
                .map_or(report.manager.ecosystem().as_str(), |p| p
                    .ecosystem
                    .as_str())
        ),
        Decision::CannotJudge => format!(
            "; {}; nothing was installed",
            report
                .error
                .as_deref()
                .unwrap_or("a package could not be judged")
        ),
    };
    let _ = writeln!(
        err,
        "{style}{verb:>12}{style:#} {n} package{} in {secs:.1} s: {flagged}{tail}",
        if n == 1 { "" } else { "s" }
    );
    let held: Vec<String> = report
        .held_back
        .iter()
        .filter(|h| h.action == HeldAction::HeldBack)
        .map(|h| format!("{} {}", h.name, h.version))
        .collect();
    if !held.is_empty() {
        let _ = writeln!(
            err,
            "{YELLOW}{:>12}{YELLOW:#} {} release{} newer than {}: {}",
            "Held back",
            held.len(),
            if held.len() == 1 { "" } else { "s" },
            cerebro_guard::policy::release_age::describe(std::time::Duration::from_secs(
                report.min_release_age_s
            )),
            held.join(", ")
        );
    }
    if !report.untimed.is_empty() && report.min_release_age_s > 0 {
        let _ = writeln!(
            err,
            "{DIM}{:>12}{DIM:#} no publish time for {} (only on a private registry): not held back",
            "note",
            report.untimed.join(", ")
        );
    }
}

/// A spinner on stderr while the guard resolves and judges (nothing when not a terminal).
struct Spinner {
    bar: Option<indicatif::ProgressBar>,
    count: AtomicUsize,
}

impl Spinner {
    fn new(manager: Manager) -> Spinner {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = indicatif::ProgressBar::new_spinner();
            bar.set_style(
                indicatif::ProgressStyle::with_template("{prefix:>12.cyan.bold} {spinner} {msg}")
                    .expect("valid template"),
            );
            bar.set_prefix("Judging");
            bar.set_message(format!("resolving with {}…", manager.as_str()));
            bar.enable_steady_tick(Duration::from_millis(120));
            bar
        });
        Spinner {
            bar,
            count: AtomicUsize::new(0),
        }
    }

    fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

impl guard::Progress for Spinner {
    fn judged(&self, judged: &Judged) {
        let n = self.count.fetch_add(1, Ordering::Relaxed) + 1;
        if let Some(bar) = &self.bar {
            bar.set_message(format!(
                "{n} package{} · {} {}",
                if n == 1 { "" } else { "s" },
                judged.name,
                judged.version
            ));
        }
    }
}

/// The terminal prompt, with the spinner out of its way.
struct SpinnerPausingPrompter {
    inner: TerminalPrompter,
    spinner: Arc<Spinner>,
}

impl policy::Prompter for SpinnerPausingPrompter {
    fn choose(
        &mut self,
        flagged: &policy::Flagged,
        index: usize,
        total: usize,
    ) -> std::io::Result<policy::Choice> {
        match &self.spinner.bar {
            Some(bar) => bar.suspend(|| self.inner.choose(flagged, index, total)),
            None => self.inner.choose(flagged, index, total),
        }
    }
}

/// Ctrl-C: before the hand-over, Cerebro stops with one line (nothing was installed; the
/// resolution child, in the same process group, stops too); after it, the real manager
/// decides what an interrupt means and Cerebro passes its exit code on.
struct Interrupt {
    handed_over: Arc<AtomicBool>,
}

impl Interrupt {
    fn install() -> Interrupt {
        let handed_over = Arc::new(AtomicBool::new(false));
        let flag = handed_over.clone();
        let _ = std::thread::Builder::new()
            .name("cerebro-signals".into())
            .spawn(move || {
                let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                else {
                    return;
                };
                rt.block_on(async move {
                    loop {
                        if tokio::signal::ctrl_c().await.is_err() {
                            return;
                        }
                        if !flag.load(Ordering::SeqCst) {
                            let _ = writeln!(
                                anstream::stderr(),
                                "\ncerebro: interrupted; nothing was installed"
                            );
                            std::process::exit(i32::from(EXIT_INTERRUPTED));
                        }
                    }
                });
            });
        Interrupt { handed_over }
    }

    fn hand_over(&self) {
        self.handed_over.store(true, Ordering::SeqCst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cerebro_archive::Ecosystem;
    use cerebro_guard::guard::{HeldBack, PackageReport};

    fn package(name: &str, action: Action, verdict: &'static str, score: f32) -> PackageReport {
        PackageReport {
            ecosystem: Ecosystem::Pypi,
            name: name.into(),
            version: "1.0.3".into(),
            file: format!("{name}-1.0.3.tar.gz"),
            sha256: "0".repeat(64),
            score: Some(score),
            verdict: Some(verdict),
            action,
            reasons: if action == Action::Install {
                Vec::new()
            } else {
                vec![
                    "D4 use exfiltration endpoint (webhook, messenger, paste, tunnel) at evil_helper/collect.py:9".into(),
                    "R5 read sensitive information at evil_helper/collect.py:5".into(),
                ]
            },
        }
    }

    fn report(decision: Decision, packages: Vec<PackageReport>) -> Report {
        Report {
            manager: Manager::Pip,
            policy: policy::Mode::Block,
            flagged: packages
                .iter()
                .filter(|p| p.action != Action::Install)
                .count(),
            packages,
            decision,
            elapsed: Duration::from_millis(1234),
            error: None,
            min_release_age_s: 2 * 86_400,
            held_back: Vec::new(),
            untimed: Vec::new(),
        }
    }

    /// The summary as people read it (styles stripped, as on a pipe).
    fn text(report: &Report) -> String {
        let mut out = Vec::new();
        write_report(report, &mut out);
        anstream::adapter::strip_str(&String::from_utf8(out).unwrap()).to_string()
    }

    #[test]
    fn snapshot_guard_summary_blocked() {
        let mut r = report(
            Decision::Blocked,
            vec![
                package("requests", Action::Install, "benign", 0.01),
                package("evil-helper", Action::Blocked, "malicious", 0.99),
            ],
        );
        r.held_back.push(HeldBack {
            ecosystem: Ecosystem::Pypi,
            name: "fresh-lib".into(),
            version: "2.0.0".into(),
            published: "2026-12-03T08:00:00Z".into(),
            age_s: 3 * 3600,
            action: HeldAction::HeldBack,
            reason: "published 3 hours ago (min_release_age 2 days)".into(),
        });
        insta::assert_snapshot!(text(&r));
    }

    #[test]
    fn snapshot_guard_summary_warned_and_clean() {
        let warned = report(
            Decision::Proceed,
            vec![
                package("requests", Action::Install, "benign", 0.01),
                package("evil-helper", Action::Warned, "malicious", 0.99),
            ],
        );
        let clean = report(
            Decision::Proceed,
            vec![package("requests", Action::Install, "benign", 0.01)],
        );
        insta::assert_snapshot!(format!("{}---\n{}", text(&warned), text(&clean)));
    }

    #[test]
    fn snapshot_guard_summary_cannot_judge() {
        let mut r = report(
            Decision::CannotJudge,
            vec![package("odd-lib", Action::Unreadable, "unjudged", 0.0)],
        );
        r.packages[0].score = None;
        r.packages[0].verdict = None;
        r.packages[0].reasons.clear();
        r.error = Some("odd-lib-1.0.3.tar.gz: setup.py is a link to another member".into());
        insta::assert_snapshot!(text(&r));
    }
}
