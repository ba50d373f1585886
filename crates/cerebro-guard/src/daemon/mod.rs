//! `cerebro daemon`: a long-running guard index on a fixed loopback port, in front of the
//! user's PyPI index, which every pip reads once `cerebro setup` pointed `pip.conf` at it.
//! It covers the installs the shims cannot see (a venv's own `bin/pip` run by a script, a
//! Makefile, `sh -c`, an IDE, CI): each artifact pip asks for is downloaded, verified,
//! judged by the same gate as the per-command guard ([`GuardGate`]: the embedded model, the
//! allowlist, the verdict cache, the release-age cooldown) and served only when admitted.
//!
//! There is no terminal to ask on: `prompt` acts as `block`. A refused artifact is answered
//! 403 with a body naming the package and its verdict, and every decision is appended to
//! `daemon.log` in the cache folder, so that a user whose pip failed can read why.
//!
//! It listens on the socket systemd passed it (socket activation, see [`activation`]) or
//! binds its address itself, and exits after an idle period when asked to (the socket unit
//! then starts it again on the next connection).

pub mod activation;
pub mod pipconf;
pub mod setup;

use std::io::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use reqwest::Url;

use crate::guard::{GuardError, GuardGate, Judged, Outcome, Silent};
use crate::index::{Admission, Candidate, Gate, GuardIndex, IndexConfig, PypiUpstream};
use crate::policy::{self, Allowlist, Config, Mode, VerdictCache};
use cerebro_archive::Ecosystem;
use cerebro_fetch::{CacheBucket, FetchOptions, Fetcher};
use cerebro_model::Detector;

/// How long the daemon reuses an upstream project page: long enough for one pip command's
/// many requests of it, short enough that the next command sees a new release.
const PAGE_TTL: Duration = Duration::from_secs(60);
/// The log is started afresh (the old one kept as `daemon.log.1`) past this size.
const LOG_CAP: u64 = 8 * 1024 * 1024;

/// Where the daemon listens.
#[derive(Debug)]
pub enum Listen {
    /// A socket passed by systemd.
    Inherited(std::net::TcpListener),
    /// An address to bind (`127.0.0.1:3141`; port 0: any free port).
    Bind(SocketAddr),
}

/// What `cerebro daemon` is asked to do.
#[derive(Debug)]
pub struct DaemonOptions {
    pub listen: Listen,
    /// Exit after this long without a request; `None`: run until stopped.
    pub idle_exit: Option<Duration>,
    /// The upstream indexes to front instead of those `cerebro setup` remembered (or, without
    /// a set-up, pip's configuration).
    pub upstreams: Vec<Url>,
}

/// What the daemon was started with, for the command line's first line.
#[derive(Debug, Clone)]
pub struct Started {
    pub addr: SocketAddr,
    /// The upstreams, credentials removed.
    pub upstreams: Vec<String>,
    /// The policy as applied (`prompt` reads `block`).
    pub mode: Mode,
    /// Whether the configured policy was `prompt`, applied as `block`.
    pub prompt_as_block: bool,
    pub log: PathBuf,
}

/// The log file: `daemon.log` in the cache folder.
pub fn log_path() -> Option<PathBuf> {
    cerebro_settings::cache_dir().map(|d| d.join("daemon.log"))
}

/// Runs the daemon until it is idle for `idle_exit` (or forever). `ready` is called once it
/// listens and the model is loaded (connections made earlier wait in the socket's backlog).
pub fn run(options: DaemonOptions, ready: impl FnOnce(&Started)) -> Result<(), GuardError> {
    let mut config = Config::load()?;
    let prompt_as_block = config.mode == Mode::Prompt;
    if prompt_as_block {
        config.mode = Mode::Block;
    }
    // The index serves with the user's upstream credentials: never beyond this machine.
    let addr = match &options.listen {
        Listen::Inherited(l) => l.local_addr().ok(),
        Listen::Bind(a) => Some(*a),
    };
    if let Some(addr) = addr.filter(|a| !a.ip().is_loopback()) {
        return Err(GuardError::Unsupported(format!(
            "the daemon listens on loopback only (127.0.0.1), not on {addr}: it fetches with \
             your index credentials"
        )));
    }
    let (urls, cert) = upstreams(&options)?;
    let log_file =
        log_path().ok_or_else(|| GuardError::Unsupported("no cache folder: set HOME".into()))?;
    let log = Arc::new(Log::open(&log_file)?);

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(io("cannot start the daemon's runtime"))?;
    let cache_root = FetchOptions::default_cache_root().ok_or_else(|| {
        GuardError::Unsupported("no cache folder: set CEREBRO_CACHE_DIR or HOME".to_owned())
    })?;
    let mut fetch_options = FetchOptions::new(cache_root);
    fetch_options.extra_ca_file = cert;
    let fetcher = Fetcher::new(fetch_options)?;
    let verdicts = CacheBucket::Verdicts
        .path()
        .and_then(|d| VerdictCache::open(d).ok());
    let allowlist = Allowlist::load_default()?;
    let detector = Arc::new(Detector::embedded()?);
    let mode = config.mode;
    let (public_pypi, public_npm) = policy::public_registries()?;
    let cooldown = crate::index::Cooldown {
        min_age: config.min_release_age,
        exempt: config.min_release_age_exempt.clone(),
        public_pypi,
        public_npm,
    };
    let deadline = config.upstream_deadline;
    let gate = Arc::new(DaemonGate {
        inner: GuardGate::new(detector, config, verdicts, allowlist, Arc::new(Silent)),
        log: log.clone(),
    });
    let index = runtime.block_on(async {
        let listener = match options.listen {
            Listen::Inherited(l) => tokio::net::TcpListener::from_std(l),
            Listen::Bind(addr) => tokio::net::TcpListener::bind(addr).await,
        }
        .map_err(io("cannot listen"))?;
        GuardIndex::start_on(
            listener,
            IndexConfig {
                fetcher,
                gate: gate.clone(),
                pypi: urls.iter().map(PypiUpstream::from_url).collect(),
                npm: None,
                cooldown: Some(cooldown),
                npm_links_to_guard: false,
                deadline,
                document_ttl: Some(PAGE_TTL),
                poetry: None,
            },
        )
        .map_err(io("cannot start the guard index"))
    })?;
    let started = Started {
        addr: index.addr(),
        upstreams: urls
            .iter()
            .map(|u| crate::manager::redact(u.as_str()))
            .collect(),
        mode,
        prompt_as_block,
        log: log_file,
    };
    log.line(&format!(
        "started on {} in front of {} (policy {}{})",
        started.addr,
        started.upstreams.join(" "),
        mode.as_str(),
        if prompt_as_block {
            ": prompt acts as block, there is no terminal to ask on"
        } else {
            ""
        }
    ));
    ready(&started);
    // Incidents (a failed download, a hash mismatch, a slow upstream) and releases the
    // cooldown held back are logged as they come: pip only shows an HTTP error.
    let (mut incidents, mut held) = (0, 0);
    loop {
        std::thread::sleep(Duration::from_millis(500));
        let all = index.incidents();
        for i in &all[incidents.min(all.len())..] {
            if i.cannot_judge {
                log.line(&format!(
                    "cannot judge {} {}: {} (not served)",
                    i.ecosystem, i.name, i.detail
                ));
            }
        }
        incidents = all.len();
        let all = index.held();
        let now = SystemTime::now();
        for h in &all[held.min(all.len())..] {
            log.line(&format!(
                "held back {} {} {}: {}",
                h.ecosystem,
                h.name,
                h.version,
                h.reason(now, gate.inner.config().min_release_age)
            ));
        }
        held = all.len();
        if let Some(idle) = options.idle_exit {
            if index.idle_for() >= idle {
                log.line(&format!(
                    "idle for {}: exiting",
                    policy::release_age::describe(idle)
                ));
                break;
            }
        }
    }
    index.stop();
    drop(runtime);
    Ok(())
}

fn io(what: &str) -> impl FnOnce(std::io::Error) -> GuardError {
    let what = what.to_owned();
    move |source| GuardError::Io { what, source }
}

/// The upstreams to front and their CA bundle: the flag's, else those `cerebro setup`
/// remembered, else pip's own configuration (a daemon run by hand without a set-up). An
/// upstream on the daemon's own address would loop: refused.
fn upstreams(options: &DaemonOptions) -> Result<(Vec<Url>, Option<PathBuf>), GuardError> {
    let (urls, cert) = if !options.upstreams.is_empty() {
        (options.upstreams.clone(), None)
    } else if let Some(state) =
        setup::State::load().map_err(|e| GuardError::Unsupported(e.to_string()))?
    {
        let urls = state
            .upstreams()
            .map_err(|e| GuardError::Unsupported(e.to_string()))?;
        (urls, state.cert)
    } else {
        let env = crate::manager::process_env;
        let install = match crate::manager::pip::parse_in(
            &["install".into()],
            &std::env::temp_dir(),
            &env,
        )? {
            crate::manager::pip::PipCommand::Install(i) => i,
            crate::manager::pip::PipCommand::Other => unreachable!("`pip install` installs"),
        };
        let files = crate::manager::pip::pip_config_files(&env, false, &[]);
        let u = crate::manager::pip::upstream(&install, &env, &files)?;
        if u.no_index {
            return Err(GuardError::Unsupported(
                "pip's configuration sets no-index: no index to front (give --upstream)".into(),
            ));
        }
        (std::iter::once(u.index).chain(u.extra).collect(), u.cert)
    };
    let own_port = match &options.listen {
        Listen::Inherited(l) => l.local_addr().ok().map(|a| a.port()),
        Listen::Bind(a) => Some(a.port()).filter(|p| *p != 0),
    };
    for url in &urls {
        let loopback = matches!(url.host_str(), Some("127.0.0.1" | "localhost" | "[::1]"));
        if loopback && url.port_or_known_default() == own_port {
            return Err(GuardError::Unsupported(format!(
                "the upstream {} is the daemon itself: run `cerebro setup` (which remembers \
                 the index pip used before) or give --upstream",
                crate::manager::redact(url.as_str())
            )));
        }
    }
    Ok((urls, cert))
}

/// The daemon's gate: the guard's, with the allowlist read again when it changed (a
/// `cerebro allow` while the daemon runs applies at once), `off` serving without judging,
/// and each decision logged.
struct DaemonGate {
    inner: GuardGate,
    log: Arc<Log>,
}

impl DaemonGate {
    fn refresh_allowlist(&self) {
        // An allowlist that cannot be read now keeps the one in force (it was readable at
        // start); the per-command guard reports the broken file by name.
        if let Ok(list) = Allowlist::load_default() {
            self.inner.set_allowlist(list);
        }
    }
}

impl Gate for DaemonGate {
    fn admit(&self, candidate: &Candidate) -> Admission {
        let mode = self.inner.config().mode;
        if mode == Mode::Off {
            self.log.line(&format!(
                "served {} {} (policy off: not judged)",
                candidate.name, candidate.filename
            ));
            return Admission::Serve;
        }
        self.refresh_allowlist();
        let judged = self.inner.judge(candidate);
        let admission = self.inner.admit(candidate);
        let action = match (&admission, self.inner.concerning(&judged)) {
            (Admission::Refuse(_), _) => "blocked",
            (Admission::Serve, false) => "served",
            (Admission::Serve, true) if self.inner.allowlisted(&judged) => "served (allowlisted)",
            (Admission::Serve, true) => "served with a warning (policy warn)",
        };
        self.log.line(&describe(&judged, action));
        match admission {
            Admission::Refuse(why) => Admission::Refuse(format!(
                "{why} (by the Cerebro guard daemon; see {}; `cerebro allow pypi {}` to \
                 trust it)",
                self.log.path.display(),
                judged.name
            )),
            serve => serve,
        }
    }

    fn lets_through_new(&self, ecosystem: Ecosystem, name: &str, version: &str) -> bool {
        self.refresh_allowlist();
        self.inner.lets_through_new(ecosystem, name, version)
    }

    fn wants_previous(&self, ecosystem: Ecosystem, sha256: &str) -> bool {
        self.inner.wants_previous(ecosystem, sha256)
    }
}

/// One log line for a judgement: `blocked pypi evil 1.0 evil-1.0.tar.gz malicious 0.97
/// sha256:… — reasons`.
fn describe(judged: &Judged, action: &str) -> String {
    let mut line = format!(
        "{action} {} {} {} {} sha256:{}",
        judged.ecosystem, judged.name, judged.version, judged.file, judged.sha256
    );
    match &judged.outcome {
        Outcome::Judged {
            score,
            verdict,
            reasons,
        } => {
            line.push_str(&format!(
                " {} score {}",
                verdict.map_or("no-code", |v| v.as_str()),
                score.map_or("-".to_owned(), |s| format!("{s:.2}"))
            ));
            if action != "served" && !reasons.is_empty() {
                line.push_str(&format!(": {}", reasons.join("; ")));
            }
        }
        Outcome::Unreadable(why) => line.push_str(&format!(" cannot judge: {why}")),
    }
    line
}

/// `daemon.log`: one line per decision, each with its UTC time, appended.
struct Log {
    path: PathBuf,
    file: Mutex<std::fs::File>,
}

impl Log {
    fn open(path: &Path) -> Result<Log, GuardError> {
        let what = format!("cannot open the daemon's log {}", path.display());
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(io(&what))?;
        }
        if std::fs::metadata(path).is_ok_and(|m| m.len() > LOG_CAP) {
            let _ = std::fs::rename(path, path.with_extension("log.1"));
        }
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(io(&what))?;
        Ok(Log {
            path: path.to_owned(),
            file: Mutex::new(file),
        })
    }

    /// Appends a line; a log that cannot be written is no reason to stop judging.
    fn line(&self, text: &str) {
        let now = crate::index::format_time(SystemTime::now());
        let line = format!("{now} {}\n", text.replace('\n', " "));
        if let Ok(mut f) = self.file.lock() {
            let _ = f.write_all(line.as_bytes());
        }
    }
}
