//! `cerebro audit`: judge what a project pins, without installing or running anything.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use anstyle::{AnsiColor, Style};
use anyhow::Context as _;
use clap::Args;

use cerebro_audit::lockfile::{self, PipOptions};
use cerebro_audit::{
    discover, Judge, LockfileError, Outcome, PackageReport, Registries, Resolver, Status,
};
use cerebro_fetch::{FetchOptions, Fetcher};
use cerebro_model::Detector;

use super::{status, EXIT_MALICIOUS, EXIT_OK, EXIT_UNREADABLE, EXIT_USAGE};

pub const AFTER_HELP: &str = "\
Formats:
  package-lock.json, npm-shrinkwrap.json   lockfileVersion 1, 2 and 3
  pnpm-lock.yaml                           lockfileVersion 9.0
  bun.lock                                 bun's text lockfile
  yarn.lock                                yarn 1, and yarn 2+ (berry)
  requirements*.txt                        `name==version` pins, with or without --hash
  uv.lock, poetry.lock, pylock.toml (PEP 751)
  node_modules                             an installed tree, when named: every package in it
  .venv, site-packages                     an installed environment, when named: every
                                           distribution (by its RECORD), and stray .pth files

Exit codes:
  0  every pinned package was judged and none was judged malicious
  1  some package could not be judged (hash mismatch, download failure, a range instead
     of a pin, a git dependency, an unreadable lockfile); the others were
  2  wrong usage, or nothing to audit
  3  at least one pinned package was judged malicious

Environment:
  CEREBRO_CACHE_DIR  downloads and verdicts (default ~/.cache/cerebro)
  NO_COLOR           disable colour (also off when output is not a terminal)";

/// Options of `cerebro audit`.
#[derive(Debug, Args)]
pub struct AuditArgs {
    /// Lockfiles, requirement files, or folders to search for them [default: .].
    #[arg(value_name = "PATH")]
    pub paths: Vec<PathBuf>,

    /// Print one JSON object per pinned package per line on stdout (schema in the README).
    #[arg(long, conflicts_with = "sarif")]
    pub json: bool,

    /// Print a SARIF 2.1.0 log on stdout, for code scanning (one result per flagged or
    /// unjudged package, at its lockfile line).
    #[arg(long)]
    pub sarif: bool,

    /// npm registry for packages the lockfile does not give a URL for [default: npm's
    /// configuration, as `npm ci` would read it].
    #[arg(long, value_name = "URL")]
    pub registry: Option<String>,

    /// PyPI index (PEP 503) for pinned requirements [default: pip's configuration].
    #[arg(short = 'i', long, value_name = "URL")]
    pub index_url: Option<String>,

    /// More PyPI indexes, as pip's option of the same name.
    #[arg(long, value_name = "URL")]
    pub extra_index_url: Vec<String>,

    /// Judge only what each lockfile pins now that it did not pin at git revision REV (a new
    /// package, version or hash): for CI on a pull request, `--changed-since origin/main`.
    /// A lockfile the revision did not have is judged whole.
    #[arg(long, value_name = "REV")]
    pub changed_since: Option<String>,

    /// Threads to judge with [default: all cores].
    #[arg(short, long, value_name = "N")]
    pub jobs: Option<usize>,

    /// Print no progress and no summary line.
    #[arg(short, long)]
    pub quiet: bool,
}

const RED: Style = AnsiColor::Red.on_default().bold();
const YELLOW: Style = AnsiColor::Yellow.on_default().bold();
const DIM: Style = Style::new().dimmed();

/// What an audit found: the files read, a report per pin, and the files that could not be
/// read.
pub struct Audited {
    pub lockfiles: Vec<cerebro_audit::Lockfile>,
    pub reports: Vec<PackageReport>,
    pub unreadable: Vec<LockfileError>,
}

/// Why an audit did not run: a usage error (one line, exit 2) or a failure to start.
pub enum NotAudited {
    Usage(String),
    Failed(anyhow::Error),
}

impl From<anyhow::Error> for NotAudited {
    fn from(e: anyhow::Error) -> NotAudited {
        NotAudited::Failed(e)
    }
}

/// Reads the lockfiles under `args.paths` and judges every pin (what `cerebro audit` and the
/// MCP server's `audit_project` share); `progress` sees the phases.
pub fn collect(
    args: &AuditArgs,
    progress: &dyn cerebro_audit::Progress,
) -> Result<Audited, NotAudited> {
    let paths = if args.paths.is_empty() {
        vec![PathBuf::from(".")]
    } else {
        args.paths.clone()
    };
    let lockfiles = discover(&paths).map_err(NotAudited::Usage)?;
    if lockfiles.is_empty() {
        let shown: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
        return Err(NotAudited::Usage(format!(
            "no lockfile under {}: cerebro audit reads package-lock.json, \
             npm-shrinkwrap.json, pnpm-lock.yaml, bun.lock, yarn.lock, \
             requirements*.txt, uv.lock, poetry.lock and pylock.toml",
            shown.join(", ")
        )));
    }
    let env = cerebro_guard::manager::process_env;
    let pip = PipOptions {
        index_url: args.index_url.clone(),
        extra_index_urls: args.extra_index_url.clone(),
    };

    // Read every lockfile; one that cannot be read is reported and counts as unjudged.
    let mut pins = Vec::new();
    let mut unreadable: Vec<LockfileError> = Vec::new();
    for file in &lockfiles {
        match lockfile::read(file, &pip, &env) {
            Ok(found) => match &args.changed_since {
                None => pins.extend(found),
                Some(rev) => {
                    let before = cerebro_audit::changed::pins_at(file, rev, &pip, &env)
                        .map_err(NotAudited::Usage)?;
                    pins.extend(cerebro_audit::changed::added(found, before.as_deref()))
                }
            },
            Err(e) => unreadable.push(e),
        }
    }

    let project = lockfiles
        .iter()
        .find_map(|l| l.path.parent().filter(|p| !p.as_os_str().is_empty()))
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("."));
    let project = std::path::absolute(&project).unwrap_or(project);
    let (registries, ca) = Registries::configured(&project, args.registry.as_deref(), &pip, &env)
        .map_err(anyhow::Error::msg)?;
    let resolver = resolver(registries, ca)?;
    let detector = Detector::embedded().context("cannot load the embedded model")?;
    let judge = Judge::new(detector, Judge::default_cache_root());
    let jobs = args.jobs.unwrap_or_else(cerebro_scan::scan::default_jobs);
    let mut reports = cerebro_audit::audit(&pins, resolver, &judge, jobs, progress);
    let allowlist =
        cerebro_guard::policy::Allowlist::load_default().map_err(|e| anyhow::anyhow!("{e}"))?;
    for report in &mut reports {
        report.allowlisted = allowlist.allows(report.ecosystem, &report.name, &report.version);
    }
    Ok(Audited {
        lockfiles,
        reports,
        unreadable,
    })
}

/// A resolver over the user's download cache, trusting `ca` too.
pub fn resolver(registries: Registries, ca: Option<PathBuf>) -> anyhow::Result<Arc<Resolver>> {
    let cache_root = FetchOptions::default_cache_root()
        .context("no cache folder: set CEREBRO_CACHE_DIR or HOME")?;
    let mut options = FetchOptions::new(cache_root);
    options.extra_ca_file = ca;
    let fetcher = Fetcher::new(options)?;
    Ok(Arc::new(Resolver::new(fetcher, registries)))
}

pub fn run(args: AuditArgs) -> anyhow::Result<ExitCode> {
    let start = Instant::now();
    let progress = Bar::new(args.quiet);
    let Audited {
        lockfiles,
        reports,
        unreadable,
    } = match collect(&args, &progress) {
        Ok(audited) => audited,
        Err(NotAudited::Usage(message)) => {
            progress.bar.finish_and_clear();
            print_line(RED, "error", &message);
            return Ok(ExitCode::from(EXIT_USAGE));
        }
        Err(NotAudited::Failed(e)) => return Err(e),
    };
    progress.bar.finish_and_clear();

    let base = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
    let mut stdout = std::io::stdout().lock();
    let written = if args.sarif {
        let log = cerebro_audit::sarif::log(&reports, &unreadable, &base);
        serde_json::to_writer_pretty(&mut stdout, &log)
            .map_err(std::io::Error::other)
            .and_then(|()| writeln!(stdout))
    } else if args.json {
        write_json(&mut stdout, &reports, &unreadable)
    } else {
        drop(stdout);
        print_human(&reports, &unreadable);
        Ok(())
    };
    if let Err(e) = written {
        if e.kind() != std::io::ErrorKind::BrokenPipe {
            return Err(anyhow::Error::new(e).context("cannot write the results"));
        }
    }

    let count = |s: Status| reports.iter().filter(|r| r.counts_as(s)).count();
    let (malicious, suspicious) = (count(Status::Malicious), count(Status::Suspicious));
    let unjudged = count(Status::Unjudged) + unreadable.len();
    if !args.quiet {
        let n = reports.len();
        let mut summary = format!(
            "{n} pinned package{} in {} file{} in {:.1}s",
            if n == 1 { "" } else { "s" },
            lockfiles.len(),
            if lockfiles.len() == 1 { "" } else { "s" },
            start.elapsed().as_secs_f64()
        );
        if unjudged > 0 {
            summary.push_str(&format!(", {unjudged} could not be judged"));
        }
        if suspicious > 0 {
            summary.push_str(&format!(", {suspicious} suspicious"));
        }
        summary.push_str(&match malicious {
            0 => ": none judged malicious".to_owned(),
            k => format!(": {k} judged malicious"),
        });
        if malicious > 0 || unjudged > 0 {
            print_line(RED, "Audited", &summary);
        } else {
            status("Audited", &summary);
        }
    }
    Ok(ExitCode::from(if malicious > 0 {
        EXIT_MALICIOUS
    } else if unjudged > 0 {
        EXIT_UNREADABLE
    } else {
        EXIT_OK
    }))
}

/// One JSON object per package per line; then one per unreadable lockfile.
fn write_json(
    out: &mut impl Write,
    reports: &[PackageReport],
    unreadable: &[LockfileError],
) -> std::io::Result<()> {
    for report in reports {
        serde_json::to_writer(&mut *out, report).map_err(std::io::Error::other)?;
        writeln!(out)?;
    }
    for e in unreadable {
        let line = serde_json::json!({
            "source": {"file": e.file, "line": e.line.unwrap_or(0)},
            "status": "unjudged",
            "error": e.message,
        });
        writeln!(out, "{line}")?;
    }
    Ok(())
}

/// The flagged and unjudged packages, one block each, on stdout; benign ones are counted
/// in the summary only.
fn print_human(reports: &[PackageReport], unreadable: &[LockfileError]) {
    let mut out = anstream::stdout();
    for e in unreadable {
        let _ = writeln!(out, "{RED}{:>12}{RED:#} {e}", "unreadable");
    }
    for report in reports {
        let (style, what) = match report.status {
            Status::Benign => continue,
            _ if report.allowlisted => (DIM, "allowlisted"),
            Status::Malicious => (RED, "malicious"),
            Status::Suspicious => (YELLOW, "suspicious"),
            Status::Unjudged => (RED, "cannot judge"),
        };
        let place = format!("{}:{}", report.source.file.display(), report.source.line);
        let _ = writeln!(
            out,
            "{style}{what:>12}{style:#} {} {} {} {DIM}({}){DIM:#}",
            report.ecosystem,
            cerebro_archive::terminal_safe(&report.name),
            cerebro_archive::terminal_safe(&report.version),
            cerebro_archive::terminal_safe(&place)
        );
        for file in &report.files {
            match &file.outcome {
                Outcome::Judged {
                    score,
                    verdict,
                    reasons,
                } => {
                    if *verdict == cerebro_scan::detect::Verdict::Benign {
                        continue;
                    }
                    let _ = writeln!(
                        out,
                        "{:>12}   {}: {verdict}, score {score:.2}",
                        "", file.file
                    );
                    for r in reasons {
                        let at = match (&r.file, r.line) {
                            (Some(f), 0) => format!(" — {f}"),
                            (Some(f), l) => format!(" — {f}:{l}"),
                            (None, _) => String::new(),
                        };
                        let _ =
                            writeln!(out, "{:>12}     {} ({}){at}", "", r.description, r.feature);
                    }
                }
                Outcome::Unjudged { error } => {
                    let _ = writeln!(out, "{:>12}   {}: {error}", "", file.file);
                }
            }
        }
    }
}

/// A red status line on stderr.
fn print_line(style: Style, verb: &str, message: &str) {
    let _ = writeln!(anstream::stderr(), "{style}{verb:>12}{style:#} {message}");
}

/// The progress bar on stderr, on a terminal only.
struct Bar {
    bar: indicatif::ProgressBar,
}

impl Bar {
    fn new(quiet: bool) -> Bar {
        let bar = if quiet || !std::io::stderr().is_terminal() {
            indicatif::ProgressBar::hidden()
        } else {
            let bar = indicatif::ProgressBar::new(0);
            bar.set_style(
                indicatif::ProgressStyle::with_template(
                    "{prefix:>12.cyan.bold} [{bar:27}] {pos}/{len} {wide_msg}",
                )
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
                .progress_chars("=> "),
            );
            bar
        };
        Bar { bar }
    }
}

impl cerebro_audit::Progress for Bar {
    fn phase(&self, what: &str, total: usize) {
        self.bar.set_prefix(what.to_owned());
        self.bar.set_length(total as u64);
        self.bar.set_position(0);
    }

    fn advance(&self) {
        self.bar.inc(1);
    }
}
