//! Command line: flags, the commands, and the one place that writes to the terminal.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use anstyle::{AnsiColor, Style};
use clap::builder::TypedValueParser as _;
use clap::{Args, Parser, Subcommand, ValueEnum};

use anyhow::Context as _;

use cerebro_model::Detector;
use cerebro_scan::detect::{Thresholds, Verdict};
use cerebro_scan::report;
use cerebro_scan::scan::{self, ScanOptions};

mod allow;
mod audit;
mod cache;
mod daemon;
mod diff;
mod guard;
mod mcp;

/// Exit code: every package was scanned.
pub const EXIT_OK: u8 = 0;
/// Exit code: at least one path could not be scanned (unreadable, corrupt, or over a limit);
/// the others were.
pub const EXIT_UNREADABLE: u8 = 1;
/// Exit code: wrong usage or a failure before any scan (also clap's code for bad flags).
pub const EXIT_USAGE: u8 = 2;
/// Exit code: at least one package was judged malicious (takes precedence over 1).
pub const EXIT_MALICIOUS: u8 = 3;

const AFTER_HELP: &str = "\
Exit codes:
  0  every package was scanned and none was judged malicious
  1  at least one path could not be read or judged (corrupt, not an archive, over a safety
     limit); the others were scanned and reported
  2  wrong usage
  3  at least one package was judged malicious

Environment:
  NO_COLOR       disable colour (also off when output is not a terminal)
  CLICOLOR_FORCE force colour";

const TOP_AFTER_HELP: &str = "\
Set-up: ./install.sh puts the pip, pip3, npm, npx, pnpm, pnpx, bun, bunx, yarn, uv, uvx,
pipx and poetry shims first on PATH; from then on `pip install`, `npm install`, `npm exec`,
`npx`, `pnpm add/install/update/dlx`, `bun add/install/update/x`, `bunx`, `yarn`/`yarn
add/install/upgrade`, `uv add`/`sync`/`pip install`, `uvx`, `pipx install/run/inject` and
`poetry add/install/update/lock/sync` run through `cerebro pip` / `cerebro npm` / `cerebro
npx` / `cerebro pnpm` / `cerebro bun` / `cerebro bunx` / `cerebro yarn` / `cerebro uv` /
`cerebro uvx` / `cerebro pipx` / `cerebro poetry`. A pip that no shim sees (a venv's pip
run by a script, make, an IDE, CI): `cerebro setup` points pip.conf at `cerebro daemon`,
which judges every file before pip gets it.

Exit codes:
  scan           0 clean, 1 some path unreadable, 2 usage, 3 a package judged malicious
  audit          0 clean, 1 some pin could not be judged, 2 usage, 3 a pin judged malicious
  pip, npm, npx, 77 blocked, 78 could not judge (fails closed), 130 interrupted; otherwise
  pnpm, bun, bunx,
  yarn, uv, uvx, pipx,
  poetry
                 the real manager's own code (see `cerebro pip --help`)
  setup, daemon  0 done, 2 refused or could not start (nothing changed)

Environment:
  CEREBRO_POLICY      block | prompt | warn | off
  CEREBRO_CONFIG_DIR  config.toml and allowlist.toml (default ~/.config/cerebro)
  CEREBRO_CACHE_DIR   download, verdict and resolution caches (default ~/.cache/cerebro)
  NO_COLOR            disable colour (also off when output is not a terminal)";

/// Cerebro judges the code of the packages pip and npm are about to install, offline.
///
/// It reads each package's code, turns it into a sequence of behaviours (reading secrets,
/// contacting the network, decoding payloads, running processes, at install or import time)
/// and reports what it found.
#[derive(Debug, Parser)]
#[command(name = "cerebro", version, after_help = TOP_AFTER_HELP)]
pub struct Cli {
    /// When to use colour.
    #[arg(long, value_enum, default_value_t = ColorWhen::Auto, global = true)]
    pub color: ColorWhen,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ColorWhen {
    Auto,
    Always,
    Never,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Turn packages into behaviour sequences and show what they do.
    ///
    /// PATH may be a package archive (.tar.gz, .tgz, .tar.bz2, .zip, .whl), a project folder
    /// (one holding setup.py, pyproject.toml, setup.cfg, PKG-INFO or package.json), or any
    /// other folder, which is searched for archives and project folders and scanned whole,
    /// in parallel. Nothing is extracted to disk and no package code is run.
    ///
    /// Examples:
    ///   cerebro scan requests-2.32.3.tar.gz
    ///   cerebro scan ./my-project
    ///   cerebro scan --json downloads/ > sequences.jsonl
    ///   cerebro scan --against axios-1.14.0.tgz axios-1.14.1.tgz
    ///
    /// With --against OLD, the one PATH is a newer release of the same package and the scan
    /// also says what it changed since OLD: new or changed install hooks, new dependencies,
    /// commands, network destinations, calls and blobs, and the files whose behaviour changed,
    /// each judged by the detector; a change judged malicious exits with 3.
    #[command(verbatim_doc_comment, after_help = AFTER_HELP)]
    Scan(ScanArgs),

    /// Judge what a project pins (lockfiles, requirement files) without installing anything.
    ///
    /// Reads each lockfile as data, fetches every pinned artifact by the URL and hash it
    /// records (or from the configured registry by name and version), verifies and caches
    /// it, and judges its code as `cerebro scan` does. Nothing is installed and no code of
    /// the project or its packages runs. With no PATH, the current folder is searched.
    ///
    /// Examples:
    ///   cerebro audit
    ///   cerebro audit package-lock.json requirements.txt
    ///   cerebro audit --sarif > cerebro.sarif
    ///   cerebro audit --changed-since origin/main     # only what a pull request adds
    ///   cerebro audit --json services/ | jq 'select(.status != "benign")'
    #[command(verbatim_doc_comment, after_help = audit::AFTER_HELP)]
    Audit(audit::AuditArgs),

    /// Run pip, guarded: `cerebro pip -- install requests` (what the `pip` shim runs).
    #[command(after_help = guard::AFTER_HELP)]
    Pip(guard::GuardArgs),

    /// Run npm, guarded: `cerebro npm -- install left-pad` (what the `npm` shim runs).
    #[command(after_help = guard::AFTER_HELP)]
    Npm(guard::GuardArgs),

    /// Run npx, guarded: `cerebro npx -- cowsay hi` (what the `npx` shim runs). The packages
    /// npx would fetch are judged, with their dependencies, before any of their code runs.
    #[command(after_help = guard::AFTER_HELP)]
    Npx(guard::GuardArgs),

    /// Run uv, guarded: `cerebro uv -- add requests` (what the `uv` shim runs). uv pip
    /// install/sync, add, remove, lock, sync and tool install/run fetch through the guard.
    #[command(after_help = guard::AFTER_HELP)]
    Uv(guard::GuardArgs),

    /// Run uvx (`uv tool run`), guarded: `cerebro uvx -- ruff check` (what the `uvx` shim
    /// runs). The tool and its dependencies are judged before any of their code runs.
    #[command(after_help = guard::AFTER_HELP)]
    Uvx(guard::GuardArgs),

    /// Run pipx, guarded: `cerebro pipx -- install black` (what the `pipx` shim runs).
    /// `install`, `run` and `inject` fetch through the guard, so the package and its whole
    /// tree are judged before pip builds, installs or runs any of it; `list`, `uninstall`
    /// and other commands that fetch nothing run as they are; `upgrade`, `reinstall`,
    /// `install-all` and `runpip` are refused (exit 78), as are specs that are not names
    /// from the index and `--index-url`/`--pip-args`/`--editable`/`--preinstall`.
    #[command(after_help = guard::AFTER_HELP)]
    Pipx(guard::GuardArgs),

    /// Run Poetry, guarded: `cerebro poetry -- add requests` (what the `poetry` shim runs).
    /// `add`, `install`, `update`, `lock`, `sync`, `remove` and `build` run once, every
    /// download of Poetry's going through the guard, so each sdist and wheel is judged
    /// before Poetry builds or installs it; `run`, `show`, `check`, `env` and other commands
    /// that fetch nothing run as they are; path dependencies are judged first, git and URL
    /// dependencies refused (78).
    #[command(after_help = guard::AFTER_HELP)]
    Poetry(guard::GuardArgs),
    /// Run pnpm, guarded: `cerebro pnpm -- add left-pad` (what the `pnpm` shim runs).
    /// `add`, `install`, `update`, `dlx` and `create` are judged, with their whole tree,
    /// before pnpm installs or runs anything; other pnpm commands run as they are.
    #[command(after_help = guard::AFTER_HELP)]
    Pnpm(guard::GuardArgs),

    /// Run bun, guarded: `cerebro bun -- add left-pad` (what the `bun` shim runs). `bun
    /// add`, `install`/`i` (also `--frozen-lockfile`), `update` and `x` are judged with their
    /// whole tree first; every other bun command runs as is.
    #[command(after_help = guard::AFTER_HELP)]
    Bun(guard::GuardArgs),

    /// Run bunx, guarded: `cerebro bunx -- cowsay hi` (what the `bunx` shim runs), as `bun
    /// x`. The package and its dependencies are judged before any of their code runs.
    #[command(after_help = guard::AFTER_HELP)]
    Bunx(guard::GuardArgs),

    /// Run yarn 1 (classic), guarded: `cerebro yarn -- add left-pad` (what the `yarn` shim
    /// runs). Bare `yarn`, `install` (also `--frozen-lockfile`), `add` and `upgrade` are
    /// judged with their whole tree first, and yarn.lock is left as a bare yarn writes it;
    /// every other yarn command (run, test, build, ...) runs as is. yarn 2+ (berry) is refused.
    #[command(after_help = guard::AFTER_HELP)]
    Yarn(guard::GuardArgs),

    /// Always allow a package, or one version of it, despite its verdict.
    Allow(allow::AllowArgs),

    /// Show or edit the allowlist.
    Allowlist(allow::AllowlistArgs),

    /// Show or clean Cerebro's caches (downloads, verdicts).
    ///
    /// The download cache is capped (config `cache_max_size`, `CEREBRO_CACHE_MAX_SIZE`;
    /// 10 GiB by default): the least recently used downloads go first, after every guarded
    /// install and audit.
    ///
    /// Examples:
    ///   cerebro cache info
    ///   cerebro cache clean                  # everything
    ///   cerebro cache clean --max-size 2G    # keep the most recent 2 GiB of downloads
    #[command(verbatim_doc_comment)]
    Cache(cache::CacheArgs),

    /// Serve the Model Context Protocol on stdin/stdout, for coding agents.
    ///
    /// Tools: check_package (does the name exist, does it look like a popular one, and what
    /// does the code of that release do), scan_path (an archive or folder) and audit_project
    /// (a folder's lockfiles). Each answer has a verdict, a score, reasons with file:line and a
    /// one-line recommendation. Nothing is installed and no package code runs.
    ///
    /// Setup (any MCP client; the command is `cerebro`, the argument `mcp`):
    ///   claude mcp add cerebro -- cerebro mcp
    ///   .cursor/mcp.json, .vscode/mcp.json:  {"servers": {"cerebro": {"command": "cerebro", "args": ["mcp"]}}}
    #[command(verbatim_doc_comment)]
    Mcp,

    /// Guard every pip of this user, also one no shim sees (a venv's pip run by a script,
    /// make, an IDE, CI): point pip.conf at `cerebro daemon`, started on demand by a
    /// systemd user socket; `--undo` puts everything back.
    ///
    /// Examples:
    ///   cerebro setup
    ///   cerebro setup --port 3142 --no-systemd
    ///   cerebro setup --undo
    #[command(verbatim_doc_comment, after_help = daemon::SETUP_AFTER_HELP)]
    Setup(daemon::SetupArgs),

    /// The guard index for pip on a fixed loopback port, judging every file it serves
    /// (what `cerebro setup` points pip.conf at; systemd starts it on demand).
    ///
    /// Examples:
    ///   cerebro daemon --idle-exit 15m
    ///   cerebro daemon --listen 127.0.0.1:3142 --upstream https://pypi.org/simple/
    #[command(verbatim_doc_comment, after_help = daemon::DAEMON_AFTER_HELP)]
    Daemon(daemon::DaemonArgs),
}

#[derive(Debug, Args)]
pub struct ScanArgs {
    /// Archives or folders to scan.
    #[arg(required = true, value_name = "PATH")]
    pub paths: Vec<PathBuf>,

    /// Print one JSON object per package per line on stdout (schema in the README).
    #[arg(long)]
    pub json: bool,

    /// Compare the one PATH, a release, with OLD, an older release of the same package, and
    /// report what changed (a `changes` object in --json).
    #[arg(long, value_name = "OLD")]
    pub against: Option<PathBuf>,

    /// Threads to scan with [default: all cores].
    #[arg(short, long, value_name = "N")]
    pub jobs: Option<usize>,

    /// Print no progress bar and no summary line.
    #[arg(short, long)]
    pub quiet: bool,

    /// Only extract behaviour sequences; do not score them with the embedded model.
    #[arg(long)]
    pub no_model: bool,

    /// Longest behaviour sequence to keep, in tokens (see the README on the length cap).
    #[arg(long, value_name = "N", default_value_t = cerebro_features::sequence::DEFAULT_MAX_TOKENS,
          value_parser = clap::value_parser!(u32).range(16..=65536).map(|v| v as usize))]
    pub max_tokens: usize,
}

/// Runs the parsed command and returns the process's exit code.
pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.color {
        ColorWhen::Auto => {}
        ColorWhen::Always => anstream::ColorChoice::Always.write_global(),
        ColorWhen::Never => anstream::ColorChoice::Never.write_global(),
    }
    match cli.command {
        Command::Scan(args) => scan_command(args),
        Command::Audit(args) => {
            let code = audit::run(args);
            cache::trim();
            code
        }
        Command::Pip(args) => guard::run(cerebro_guard::guard::Manager::Pip, args),
        Command::Npm(args) => guard::run(cerebro_guard::guard::Manager::Npm, args),
        Command::Npx(args) => guard::run_npx(args),
        Command::Uv(args) => guard::run(cerebro_guard::guard::Manager::Uv, args),
        Command::Pipx(args) => guard::run(cerebro_guard::guard::Manager::Pipx, args),
        Command::Poetry(args) => guard::run(cerebro_guard::guard::Manager::Poetry, args),
        Command::Uvx(args) => guard::run_uvx(args),
        Command::Pnpm(args) => guard::run(cerebro_guard::guard::Manager::Pnpm, args),
        Command::Bun(args) => guard::run(cerebro_guard::guard::Manager::Bun, args),
        Command::Bunx(mut args) => {
            args.args.insert(0, "x".into());
            guard::run(cerebro_guard::guard::Manager::Bun, args)
        }
        Command::Yarn(args) => guard::run(cerebro_guard::guard::Manager::Yarn, args),
        Command::Allow(args) => allow::allow(args),
        Command::Allowlist(args) => allow::allowlist(args),
        Command::Mcp => mcp::run(),
        Command::Cache(args) => cache::run(args),
        Command::Setup(args) => daemon::run_setup(args),
        Command::Daemon(args) => daemon::run_daemon(args),
    }
}

/// What `cerebro scan` and `cerebro scan --against` read packages with: the scan's options
/// and the embedded model (none with `--no-model`).
fn scan_setup(args: &ScanArgs) -> anyhow::Result<(ScanOptions, Option<Detector>)> {
    let options = ScanOptions {
        max_tokens: args.max_tokens,
        ..ScanOptions::default()
    };
    let detector = if args.no_model {
        None
    } else {
        Some(Detector::embedded().context("cannot load the embedded model")?)
    };
    Ok((options, detector))
}

fn scan_command(args: ScanArgs) -> anyhow::Result<ExitCode> {
    if let Some(old) = &args.against {
        return diff::against(old, &args);
    }
    let (options, detector) = scan_setup(&args)?;
    let thresholds = detector.as_ref().map(Thresholds::of_model);
    let targets = scan::targets(&args.paths);
    let jobs = args.jobs.unwrap_or_else(scan::default_jobs);
    let progress = progress_bar(targets.len(), args.quiet);
    let start = Instant::now();
    let (mut unreadable, mut flagged_empty, mut malicious) = (0usize, 0usize, 0usize);
    let mut stdout = anstream::stdout().lock();
    let mut write_error = None;

    scan::for_each_ordered(
        targets.len(),
        jobs,
        |i| {
            let mut result = scan::scan_path(&targets[i], &options);
            if let (Some(detector), Some(thresholds)) = (&detector, &thresholds) {
                scan::judge(&mut result, detector, thresholds);
            }
            let text = if args.json {
                let mut line = report::json_line(&result);
                line.push('\n');
                line
            } else {
                report::human(&result)
            };
            let outcome = result.outcome.as_ref().ok().map(|s| {
                let verdict = s.judgement.as_ref().map(|j| j.verdict);
                (s.sequence.is_empty(), verdict == Some(Verdict::Malicious))
            });
            (outcome, text)
        },
        |_, (outcome, text)| {
            match outcome {
                None => unreadable += 1,
                Some((empty, is_malicious)) => {
                    flagged_empty += usize::from(empty);
                    malicious += usize::from(is_malicious);
                }
            }
            if write_error.is_none() {
                if let Err(e) = progress.suspend(|| stdout.write_all(text.as_bytes())) {
                    write_error = Some(e);
                }
            }
            progress.inc(1);
        },
    );
    progress.finish_and_clear();
    if let Some(e) = write_error {
        // A closed pipe (`cerebro scan … | head`) is not a failure of the scan.
        if e.kind() != std::io::ErrorKind::BrokenPipe {
            return Err(anyhow::Error::new(e).context("cannot write the results"));
        }
    }

    if !args.quiet {
        let n = targets.len();
        let mut summary = format!(
            "{n} package{} in {:.1}s",
            if n == 1 { "" } else { "s" },
            start.elapsed().as_secs_f64()
        );
        if unreadable > 0 {
            summary.push_str(&format!(", {unreadable} unreadable"));
        }
        if flagged_empty > 0 {
            summary.push_str(&format!(", {flagged_empty} with no behaviour"));
        }
        if detector.is_some() {
            summary.push_str(&match malicious {
                0 => ": none judged malicious".to_owned(),
                n => format!(": {n} judged malicious"),
            });
        }
        status("Scanned", &summary);
    }
    Ok(ExitCode::from(if malicious > 0 {
        EXIT_MALICIOUS
    } else if unreadable > 0 {
        EXIT_UNREADABLE
    } else {
        EXIT_OK
    }))
}

/// A progress bar on stderr, only when it is a terminal, there is more than one package and
/// the user did not ask for quiet.
fn progress_bar(len: usize, quiet: bool) -> indicatif::ProgressBar {
    if quiet || len < 2 || !std::io::stderr().is_terminal() {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new(len as u64);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{prefix:>12.cyan.bold} [{bar:27}] {pos}/{len} {wide_msg}",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
        .progress_chars("=> "),
    );
    bar.set_prefix("Scanning");
    bar
}

/// A cargo-style status line on stderr: a right-aligned bold verb, then the message.
pub fn status(verb: &str, message: &str) {
    let style = AnsiColor::Green.on_default() | anstyle::Effects::BOLD;
    let _ = writeln!(anstream::stderr(), "{style}{verb:>12}{style:#} {message}");
}

/// Prints an error chain: `error: …`, then one `Caused by:` line per cause.
pub fn print_error(error: &anyhow::Error) {
    let red = Style::new().fg_color(Some(AnsiColor::Red.into())).bold();
    let mut err = anstream::stderr();
    let _ = writeln!(err, "{red}error{red:#}: {error}");
    for cause in error.chain().skip(1) {
        let _ = writeln!(err, "  Caused by: {cause}");
    }
}
