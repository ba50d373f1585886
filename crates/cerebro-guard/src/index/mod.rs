//! The guard index: an HTTP server on loopback, started for one command, that fronts the
//! user's registries. The real manager resolves and installs through it, and it serves an
//! artifact only once it was fetched, verified, and admitted by the [`Gate`] (which scans it
//! and applies the user's policy).
//!
//! Routes (one server for both ecosystems):
//! - `/simple/<project>/`: the merged PEP 503 page of every configured PyPI upstream, with
//!   each file's link rewritten to `/files/<n>/<filename>`;
//! - `/files/<n>/<filename>` (and `….metadata`): the file itself, or its core metadata;
//! - every other path is npm's, at the root (so that a lockfile's `resolved` URL with only
//!   its host replaced, as `npm --replace-registry-host=always` does, lands here too):
//!   `/<name>`: the packument from the package's registry (scopes honoured), each version's
//!   `dist.tarball` rewritten to `/<name>/-/<file>.tgz`; `/<name>/-/<file>.tgz`: the tarball;
//!   any other path: the tarball whose upstream URL has that path.
//!
//! Nothing is ever served that was not verified against the hash its registry published
//! (when it published one) and admitted by the gate; everything else gets an HTTP error whose
//! body says why, and the reason is kept for the guard to report.

mod bun;
mod cooldown;
mod npm;
mod poetry;
mod previous;
mod simple;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use reqwest::Url;

use crate::manager::npm::NpmConfig;
use cerebro_archive::Ecosystem;
use cerebro_fetch::{Artifact, Document, Expected, FetchError, Fetcher};

pub use cooldown::pypi_version;
pub use cooldown::{format_time, version_key, Cooldown, Held};
pub use poetry::{PoetryFront, PoetrySource};
pub use previous::Previous;
/// The `Accept` header for a PyPI project page: JSON (PEP 691) where the index speaks it.
pub use simple::ACCEPT as SIMPLE_ACCEPT;
pub use simple::{normalize as normalize_pypi_name, parse_page as parse_simple_page, FileLink};

/// A PyPI-style upstream index (`…/simple/`), with the `Authorization` value that goes to it
/// and to nothing else.
#[derive(Debug, Clone)]
pub struct PypiUpstream {
    pub url: Url,
    pub auth: Option<String>,
}

impl PypiUpstream {
    /// The upstream at `url`, its `user:password@` moved into an `Authorization` value so that
    /// it goes to that host only, and its path ending in `/`.
    pub fn from_url(url: &Url) -> PypiUpstream {
        use base64::Engine as _;
        let mut clean = url.clone();
        let auth = if !url.username().is_empty() || url.password().is_some() {
            let user = percent_decode(url.username());
            let pass = url.password().map(percent_decode).unwrap_or_default();
            let _ = clean.set_username("");
            let _ = clean.set_password(None);
            Some(format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"))
            ))
        } else {
            None
        };
        if !clean.path().ends_with('/') {
            let path = format!("{}/", clean.path());
            clean.set_path(&path);
        }
        PypiUpstream { url: clean, auth }
    }
}

/// What the index knows of an artifact it is about to serve.
#[derive(Debug, Clone)]
pub struct Candidate {
    pub ecosystem: Ecosystem,
    /// The project or package name as the manager asked for it.
    pub name: String,
    /// The version, where the registry said it (npm); PyPI versions come from the archive.
    pub version: Option<String>,
    pub filename: String,
    pub url: Url,
    pub artifact: Artifact,
    /// The release before this one on the same registry, fetched, for the gate to judge what
    /// this release changed; `None` when there is none or it could not be fetched.
    pub previous: Option<Previous>,
}

/// The gate's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Admission {
    Serve,
    /// Not served; the text goes into the HTTP error the manager shows.
    Refuse(String),
}

/// Decides whether a fetched and verified artifact may be served; the guard implements it by
/// scanning and applying the policy. Called on a blocking thread: it may take its time.
pub trait Gate: Send + Sync + 'static {
    fn admit(&self, candidate: &Candidate) -> Admission;

    /// Whether a release too new for the cooldown may be shown to the installer all the same
    /// (the allowlist, or the user's answer for this install).
    fn lets_through_new(&self, _ecosystem: Ecosystem, _name: &str, _version: &str) -> bool {
        false
    }

    /// Whether the gate would judge the artifact with this sha256 against the release before
    /// it (so that the index fetches that release only when it will be read: not for an
    /// artifact whose verdict is already known).
    fn wants_previous(&self, _ecosystem: Ecosystem, _sha256: &str) -> bool {
        false
    }
}

/// Something that went wrong while serving, kept for the guard's report: the manager only
/// sees an HTTP error, the user should see what really happened.
#[derive(Debug, Clone)]
pub struct Incident {
    pub ecosystem: Ecosystem,
    pub name: String,
    pub detail: String,
    /// Whether Cerebro could not judge (fetch failed, hash mismatch, unreachable upstream),
    /// as opposed to a refusal by policy.
    pub cannot_judge: bool,
}

/// An npm tarball known from a packument.
#[derive(Debug, Clone)]
pub struct NpmTarball {
    pub name: String,
    pub version: String,
    pub url: Url,
    pub integrity: Option<String>,
    pub shasum: Option<String>,
}

impl NpmTarball {
    fn expected(&self) -> Expected {
        self.integrity
            .as_deref()
            .and_then(Expected::from_integrity)
            .or_else(|| {
                self.shasum
                    .as_ref()
                    .map(|s| Expected::Sha1(s.to_ascii_lowercase()))
            })
            .unwrap_or(Expected::Nothing)
    }
}

/// A file listed on a PyPI page the guard served.
#[derive(Debug, Clone)]
struct PypiFile {
    project: String,
    link: simple::FileLink,
    auth: Option<String>,
}

struct Shared {
    fetcher: Fetcher,
    gate: Arc<dyn Gate>,
    pypi: Vec<PypiUpstream>,
    npm: Option<NpmConfig>,
    files: Mutex<Files>,
    tarballs: Mutex<HashMap<(String, String), NpmTarball>>,
    incidents: Mutex<Vec<Incident>>,
    /// Upstream pages already fetched in this command: the resolution and the install ask
    /// for the same ones, and must see the same answer. Kept for `document_ttl` when set
    /// (the daemon, which serves many commands and must see new releases).
    documents: Mutex<HashMap<(String, String), (std::time::Instant, Document)>>,
    /// How long a fetched page is reused ([`IndexConfig::document_ttl`]).
    document_ttl: Option<std::time::Duration>,
    /// When the last request of an installer began or ended: the daemon's idle exit.
    last_seen: Mutex<std::time::Instant>,
    /// Requests being answered now.
    requests: std::sync::atomic::AtomicUsize,
    /// The release-age cooldown (`None`: off).
    cooldown: Option<Cooldown>,
    cool: cooldown::State,
    /// Judgements under way: a manager that gave up waiting (pip's read timeout while a large
    /// artifact is scanned) must not be read as the manager's own failure before they end.
    judging: Arc<InFlight>,
    /// The guard's own npm URL, when packuments link their tarballs here.
    guard_base: Option<Url>,
    /// The most one request may take ([`IndexConfig::deadline`]).
    deadline: std::time::Duration,
    /// Requests that ran past it: asked again (npm retries a 504), they are answered at once.
    timed_out: Mutex<std::collections::HashSet<String>>,
    /// The sources Poetry reads, when the guard fronts Poetry's own URLs (`/poetry?url=`).
    poetry: Option<PoetryFront>,
}

/// A count of judgements under way, and a way to wait until there are none.
#[derive(Default)]
struct InFlight {
    count: Mutex<usize>,
    idle: std::sync::Condvar,
}

/// Ends one judgement of [`InFlight`] when dropped (also when the judging thread panics).
struct Judging(Arc<InFlight>);

impl InFlight {
    fn start(self: &Arc<Self>) -> Judging {
        *self.count.lock().expect("lock") += 1;
        Judging(self.clone())
    }

    /// Waits until no judgement is under way, or `limit` has passed; true when idle.
    fn wait_idle(&self, limit: std::time::Duration) -> bool {
        let count = self.count.lock().expect("lock");
        let (count, _) = self
            .idle
            .wait_timeout_while(count, limit, |n| *n > 0)
            .expect("lock");
        *count == 0
    }
}

impl Drop for Judging {
    fn drop(&mut self) {
        let mut n = self.0.count.lock().expect("lock");
        *n = n.saturating_sub(1);
        if *n == 0 {
            self.0.idle.notify_all();
        }
    }
}

#[derive(Default)]
struct Files {
    list: Vec<PypiFile>,
    by_url: HashMap<String, usize>,
}

/// Settings of one guard index.
pub struct IndexConfig {
    pub fetcher: Fetcher,
    pub gate: Arc<dyn Gate>,
    /// PyPI upstreams, merged in this order; empty for npm.
    pub pypi: Vec<PypiUpstream>,
    pub npm: Option<NpmConfig>,
    /// The release-age cooldown; `None` or a zero age: off.
    pub cooldown: Option<Cooldown>,
    /// Whether packuments link their tarballs on the guard (pnpm, which has no
    /// `--replace-registry-host`) rather than upstream (npm): see [`npm`]'s `served_link`.
    pub npm_links_to_guard: bool,
    /// The most one request may take, upstream fetch and judgement together
    /// (`Config::upstream_deadline`): past it the request is answered 504 and a "cannot
    /// judge" incident names it, so the run ends with 78 before the installer's own timeout
    /// (set longer) fires.
    pub deadline: std::time::Duration,
    /// The sources to front for Poetry, by the URLs Poetry itself asks for (see [`poetry`]).
    pub poetry: Option<PoetryFront>,
    /// How long an upstream page is reused: `None` for one command (its resolution and its
    /// install must see the same pages); the daemon sets a short time, as it serves command
    /// after command and each should see the releases published meanwhile.
    pub document_ttl: Option<std::time::Duration>,
}

/// A running guard index. Dropping it stops the server.
pub struct GuardIndex {
    addr: SocketAddr,
    shared: Arc<Shared>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl GuardIndex {
    /// Binds a free port on 127.0.0.1 and starts serving on the current tokio runtime.
    pub async fn start(config: IndexConfig) -> std::io::Result<GuardIndex> {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
        GuardIndex::start_on(listener, config)
    }

    /// Starts serving on a listener bound elsewhere: the daemon's fixed port, or the socket
    /// systemd passed it (socket activation). Must run inside a tokio runtime.
    pub fn start_on(
        listener: tokio::net::TcpListener,
        config: IndexConfig,
    ) -> std::io::Result<GuardIndex> {
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            fetcher: config.fetcher,
            gate: config.gate,
            pypi: config.pypi,
            npm: config.npm,
            files: Mutex::new(Files::default()),
            tarballs: Mutex::new(HashMap::new()),
            incidents: Mutex::new(Vec::new()),
            documents: Mutex::new(HashMap::new()),
            document_ttl: config.document_ttl,
            last_seen: Mutex::new(std::time::Instant::now()),
            requests: Default::default(),
            cooldown: config.cooldown,
            cool: cooldown::State::default(),
            judging: Arc::new(InFlight::default()),
            guard_base: config
                .npm_links_to_guard
                .then(|| Url::parse(&format!("http://{addr}/")).expect("valid URL")),
            deadline: config.deadline,
            timed_out: Mutex::new(Default::default()),
            poetry: config.poetry,
        });
        let app = axum::Router::new()
            .fallback(handle)
            .with_state(shared.clone());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = stopped.await;
                })
                .await;
        });
        Ok(GuardIndex {
            addr,
            shared,
            stop: Some(stop),
        })
    }

    /// The PyPI index URL to give pip (`http://127.0.0.1:PORT/simple/`).
    pub fn pypi_url(&self) -> Url {
        Url::parse(&format!("http://{}/simple/", self.addr)).expect("valid URL")
    }

    /// The npm registry URL to give npm (`http://127.0.0.1:PORT/`).
    pub fn npm_url(&self) -> Url {
        Url::parse(&format!("http://{}/", self.addr)).expect("valid URL")
    }

    /// What went wrong so far, in order.
    pub fn incidents(&self) -> Vec<Incident> {
        self.shared.incidents.lock().expect("lock").clone()
    }

    /// The releases the cooldown hid so far (each once), in order.
    pub fn held(&self) -> Vec<Held> {
        self.shared.cool.held()
    }

    /// Packages with releases that no registry gave a publish time for (on a private index
    /// only): the cooldown could not hold them back.
    pub fn untimed(&self) -> Vec<(Ecosystem, String)> {
        self.shared.cool.untimed()
    }

    /// The instant every release age of this command is measured from.
    pub fn now(&self) -> std::time::SystemTime {
        self.shared.cool.now
    }

    /// Waits (at most `limit`) until every judgement the index started has ended, so that
    /// what a manager that failed meanwhile asked for is judged before its failure is read
    /// (pip gives up on a response after its timeout; the scan goes on). True when idle.
    pub fn wait_judged(&self, limit: std::time::Duration) -> bool {
        self.shared.judging.wait_idle(limit)
    }

    /// How long no request has been under way or begun, and no judgement has run: the
    /// daemon exits after a while of it. Zero while anything is under way.
    pub fn idle_for(&self) -> std::time::Duration {
        use std::sync::atomic::Ordering;
        if self.shared.requests.load(Ordering::SeqCst) > 0
            || !self.shared.judging.wait_idle(std::time::Duration::ZERO)
        {
            return std::time::Duration::ZERO;
        }
        self.shared.last_seen.lock().expect("lock").elapsed()
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Forgets the incidents (between the resolution and the install).
    pub fn clear_incidents(&self) {
        self.shared.incidents.lock().expect("lock").clear();
    }

    /// A cheap handle for asking the index to fetch and admit artifacts from other tasks.
    pub fn handle(&self) -> IndexHandle {
        IndexHandle(self.shared.clone())
    }

    /// Stops the server.
    pub fn stop(mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
    }
}

/// What the guard asks of the index directly (outside the manager's requests).
#[derive(Clone)]
pub struct IndexHandle(Arc<Shared>);

impl IndexHandle {
    /// The tarball of `name@version`, as its registry lists it: from a packument already
    /// served, else fetched now.
    pub async fn npm_tarball(&self, name: &str, version: &str) -> Result<NpmTarball, String> {
        if let Some(t) = self.0.find_tarball_by_version(name, version) {
            return Ok(t);
        }
        npm::load_packument(&self.0, name, None).await?;
        self.0
            .find_tarball_by_version(name, version)
            .ok_or_else(|| format!("the registry lists no version {version} of {name}"))
    }

    /// `name@version` from a lockfile, when the cooldown holds it back: too new, and neither
    /// exempt, allowlisted nor allowed for this install.
    pub async fn npm_pin(&self, name: &str, version: &str) -> Result<Option<Held>, String> {
        if !cooldown::npm_times_known(&self.0, name) {
            npm::load_packument(&self.0, name, None).await?;
        }
        Ok(cooldown::npm_pin(&self.0, name, version))
    }

    /// Fetches, verifies and admits an npm tarball as if npm had asked for it.
    pub async fn admit_npm(&self, tarball: &NpmTarball) -> Result<(Candidate, Admission), String> {
        npm::admit_tarball(&self.0, tarball).await
    }

    /// Maps a URL on this index (from pip's report) back to the file it stands for.
    pub fn pypi_file(&self, url: &str) -> Option<(String, String, Url)> {
        let path = Url::parse(url).ok()?.path().to_owned();
        let n: usize = path
            .strip_prefix("/files/")?
            .split('/')
            .next()?
            .parse()
            .ok()?;
        let files = self.0.files.lock().expect("lock");
        let f = files.list.get(n)?;
        Some((
            f.project.clone(),
            f.link.filename.clone(),
            f.link.url.clone(),
        ))
    }

    /// The files of `project`'s merged page, each with its path on this index
    /// (`/files/<n>/<filename>`), registered as if the manager had read the page; the error
    /// says why there is no page.
    pub async fn pypi_project_files(&self, project: &str) -> Result<Vec<(Url, String)>, String> {
        let name = simple::normalize(project);
        match load_project(&self.0, &name).await {
            Ok(links) => Ok(links
                .into_iter()
                .map(|(link, n)| {
                    let path = format!("/files/{n}/{}", url_escape(&link.filename));
                    (link.url, path)
                })
                .collect()),
            Err(r) if r.status() == StatusCode::NOT_FOUND => {
                Err(format!("the index has no project {name}"))
            }
            Err(_) => Err(self
                .0
                .incidents
                .lock()
                .expect("lock")
                .last()
                .map(|i| i.detail.clone())
                .unwrap_or_else(|| format!("cannot read the page of {name}"))),
        }
    }

    /// Fetches, verifies and admits a PyPI file listed on a page this index served, as if
    /// pip had asked for it (URL as pip's report gives it).
    pub async fn admit_pypi(&self, url: &str) -> Result<(Candidate, Admission), String> {
        let path = Url::parse(url)
            .map_err(|e| format!("bad URL {url}: {e}"))?
            .path()
            .to_owned();
        let n = path
            .strip_prefix("/files/")
            .and_then(|p| p.split('/').next())
            .and_then(|n| n.parse::<usize>().ok())
            .ok_or_else(|| format!("{url} is not a file of the guard index"))?;
        let file = self
            .0
            .files
            .lock()
            .expect("lock")
            .list
            .get(n)
            .cloned()
            .ok_or_else(|| format!("{url} is not a file of the guard index"))?;
        admit_pypi_file(&self.0, &file).await
    }
}

impl Drop for GuardIndex {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
    }
}

impl Shared {
    /// An upstream document, fetched once per command.
    async fn document(
        &self,
        url: &Url,
        accept: &str,
        auth: Option<&str>,
    ) -> Result<Document, FetchError> {
        let key = (url.as_str().to_owned(), accept.to_owned());
        if let Some((at, doc)) = self.documents.lock().expect("lock").get(&key) {
            if self.document_ttl.is_none_or(|ttl| at.elapsed() < ttl) {
                return Ok(doc.clone());
            }
        }
        let doc = self.fetcher.document(url, accept, auth).await?;
        self.documents
            .lock()
            .expect("lock")
            .insert(key, (std::time::Instant::now(), doc.clone()));
        Ok(doc)
    }

    fn incident(&self, ecosystem: Ecosystem, name: &str, detail: String, cannot_judge: bool) {
        self.incidents.lock().expect("lock").push(Incident {
            ecosystem,
            name: name.to_owned(),
            detail,
            cannot_judge,
        });
    }

    fn find_tarball_by_version(&self, name: &str, version: &str) -> Option<NpmTarball> {
        self.tarballs
            .lock()
            .expect("lock")
            .values()
            .find(|t| t.name == name && t.version == version)
            .cloned()
    }
}

/// Runs the gate on a blocking thread.
async fn run_gate(shared: &Arc<Shared>, candidate: Candidate) -> (Candidate, Admission) {
    let gate = shared.gate.clone();
    let c = candidate.clone();
    // Counted from before the task starts until the judgement ends, whatever the manager
    // does meanwhile (a request dropped by the manager does not stop the judgement).
    let judging = shared.judging.start();
    match tokio::task::spawn_blocking(move || {
        let _judging = judging;
        gate.admit(&c)
    })
    .await
    {
        Ok(a) => (candidate, a),
        Err(_) => (
            candidate,
            Admission::Refuse("internal error while judging the package".into()),
        ),
    }
}

fn text(status: StatusCode, body: impl Into<String>) -> Response {
    let mut r = (status, body.into()).into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

/// Serves a verified artifact from the cache.
async fn serve_artifact(shared: &Shared, artifact: &Artifact) -> Response {
    let fetcher = shared.fetcher.clone();
    let a = artifact.clone();
    match tokio::task::spawn_blocking(move || fetcher.read(&a)).await {
        Ok(Ok(bytes)) => {
            let mut r = Response::new(Body::from(bytes));
            let h = r.headers_mut();
            h.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/octet-stream"),
            );
            // The guard's URLs change with every command (a new port): a cache keyed by
            // URL would only fill up. Cerebro's own cache is keyed by content.
            h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            r
        }
        _ => text(
            StatusCode::INTERNAL_SERVER_ERROR,
            "cerebro: the cached file changed on disk since it was verified",
        ),
    }
}

/// Answers one request within the deadline: past it, 504 and a "cannot judge" incident
/// naming what was too slow (the judgement itself runs on and is kept for a later ask).
async fn handle(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    // Poetry's requests all have the path `/poetry`: the URL asked for is in the query.
    let path = match uri.query() {
        Some(q) if uri.path() == "/poetry" => format!("/poetry?{q}"),
        _ => uri.path().to_owned(),
    };
    // Counts the request while it runs and marks its end, however it ends (a dropped
    // connection included), for the daemon's idle exit.
    struct Seen<'a>(&'a Shared);
    impl Drop for Seen<'_> {
        fn drop(&mut self) {
            if let Ok(mut at) = self.0.last_seen.lock() {
                *at = std::time::Instant::now();
            }
            self.0
                .requests
                .fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
        }
    }
    shared
        .requests
        .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    let _seen = Seen(&shared);
    if shared.timed_out.lock().expect("lock").contains(&path) {
        return too_slow(&shared);
    }
    let answer = route(shared.clone(), method, uri, headers);
    match tokio::time::timeout(shared.deadline, answer).await {
        Ok(response) => response,
        Err(_) => {
            shared.timed_out.lock().expect("lock").insert(path.clone());
            let (ecosystem, name, what) = subject(&shared, &path);
            let detail = format!(
                "{what} took longer than {} to download and judge (raise `upstream_deadline` \
                 in config.toml or CEREBRO_UPSTREAM_DEADLINE if the registry is this slow)",
                crate::policy::release_age::describe(shared.deadline)
            );
            shared.incident(ecosystem, &name, detail, true);
            too_slow(&shared)
        }
    }
}

fn too_slow(shared: &Shared) -> Response {
    text(
        StatusCode::GATEWAY_TIMEOUT,
        format!(
            "cerebro: not downloaded and judged within {}",
            crate::policy::release_age::describe(shared.deadline)
        ),
    )
}

/// What a request path asks for, for the too-slow line: the ecosystem, the package, and the
/// file or page in words.
fn subject(shared: &Shared, path: &str) -> (Ecosystem, String, String) {
    if let Some(asked) = path.strip_prefix("/poetry?url=") {
        let Some(url) = poetry::asked_url(asked) else {
            return (
                Ecosystem::Pypi,
                "poetry".into(),
                "a request of Poetry's".into(),
            );
        };
        if let Some(file) = poetry::registered(shared, url.as_str()) {
            return (Ecosystem::Pypi, file.project, file.link.filename);
        }
        return (Ecosystem::Pypi, "poetry".to_owned(), url.to_string());
    }
    if let Some(rest) = path.strip_prefix("/simple/") {
        let project = percent_decode(rest.trim_end_matches('/'));
        let what = format!("the index page of {project}");
        return (Ecosystem::Pypi, project, what);
    }
    if let Some(rest) = path.strip_prefix("/files/") {
        let file = rest
            .split_once('/')
            .and_then(|(n, _)| n.parse::<usize>().ok())
            .and_then(|n| shared.files.lock().expect("lock").list.get(n).cloned());
        if let Some(file) = file {
            return (Ecosystem::Pypi, file.project, file.link.filename);
        }
        let name = percent_decode(rest);
        return (Ecosystem::Pypi, name.clone(), name);
    }
    let path = percent_decode(path.trim_start_matches('/'));
    match path.split_once("/-/") {
        Some((name, file)) => (Ecosystem::Npm, name.to_owned(), file.to_owned()),
        None => (
            Ecosystem::Npm,
            path.clone(),
            format!("the packument of {path}"),
        ),
    }
}

async fn route(shared: Arc<Shared>, method: Method, uri: Uri, headers: HeaderMap) -> Response {
    if method != Method::GET && method != Method::HEAD {
        return text(
            StatusCode::METHOD_NOT_ALLOWED,
            "cerebro guard index: read-only",
        );
    }
    let path = uri.path();
    if let Some(rest) = path.strip_prefix("/simple/") {
        let project = rest.trim_end_matches('/');
        if project.is_empty() || project.contains('/') {
            return text(StatusCode::NOT_FOUND, "no such project");
        }
        return pypi_page(&shared, project, &headers).await;
    }
    if let Some(rest) = path.strip_prefix("/files/") {
        return pypi_file(&shared, rest).await;
    }
    if path == "/poetry" && shared.poetry.is_some() {
        return poetry::route(&shared, uri.query().unwrap_or(""), &headers).await;
    }
    if shared.npm.is_some() {
        return npm::route(&shared, path.trim_start_matches('/'), &headers).await;
    }
    text(StatusCode::NOT_FOUND, "cerebro guard index: not found")
}

/// The files of a project's merged page, each with its number on this index (registered
/// for `/files/<n>/…`); `Err` is the response to give instead (not found, upstream failure).
async fn load_project(
    shared: &Arc<Shared>,
    name: &str,
) -> Result<Vec<(simple::FileLink, usize)>, Response> {
    load_project_from(shared, &shared.pypi, name).await
}

/// [`load_project`] from the pages of `upstreams` only (merged in this order).
async fn load_project_from(
    shared: &Arc<Shared>,
    upstreams: &[PypiUpstream],
    name: &str,
) -> Result<Vec<(simple::FileLink, usize)>, Response> {
    let mut links: Vec<(simple::FileLink, Option<String>)> = Vec::new();
    let mut found = false;
    for upstream in upstreams {
        let Ok(url) = upstream.url.join(&format!("{name}/")) else {
            continue;
        };
        match shared
            .document(&url, simple::ACCEPT, upstream.auth.as_deref())
            .await
        {
            Ok(doc) => {
                found = true;
                match simple::parse_page(&doc.body, doc.content_type.as_deref(), &doc.url) {
                    Ok(page) => {
                        for link in page {
                            // Credentials go only to the upstream's own host.
                            let auth = upstream
                                .auth
                                .clone()
                                .filter(|_| same_origin(&link.url, &upstream.url));
                            links.push((link, auth));
                        }
                    }
                    Err(e) => {
                        let detail = format!("unreadable project page {}: {e}", doc.url);
                        shared.incident(Ecosystem::Pypi, name, detail.clone(), true);
                        return Err(text(StatusCode::BAD_GATEWAY, format!("cerebro: {detail}")));
                    }
                }
            }
            Err(FetchError::NotFound { .. }) => {}
            Err(e) => {
                let detail = e.to_string();
                shared.incident(Ecosystem::Pypi, name, detail.clone(), true);
                return Err(text(StatusCode::BAD_GATEWAY, format!("cerebro: {detail}")));
            }
        }
    }
    if !found {
        return Err(text(StatusCode::NOT_FOUND, format!("no project {name}")));
    }
    let links = match cooldown::filter_pypi(shared, name, links).await {
        Ok(links) => links,
        Err(detail) => {
            shared.incident(Ecosystem::Pypi, name, detail.clone(), true);
            return Err(text(StatusCode::BAD_GATEWAY, format!("cerebro: {detail}")));
        }
    };
    let mut files = shared.files.lock().expect("lock");
    let mut out = Vec::with_capacity(links.len());
    for (link, auth) in links {
        let key = link.url.as_str().to_owned();
        let n = match files.by_url.get(&key) {
            Some(&n) => n,
            None => {
                files.list.push(PypiFile {
                    project: name.to_owned(),
                    link: link.clone(),
                    auth,
                });
                let n = files.list.len() - 1;
                files.by_url.insert(key, n);
                n
            }
        };
        out.push((link, n));
    }
    Ok(out)
}

/// A project's page: PEP 691 JSON for a client that asks for it (uv does), else PEP 503 HTML.
async fn pypi_page(shared: &Arc<Shared>, project: &str, headers: &HeaderMap) -> Response {
    let name = simple::normalize(&percent_decode(project));
    let links = match load_project(shared, &name).await {
        Ok(links) => links,
        Err(response) => return response,
    };
    let local_links: Vec<simple::LocalLink<'_>> = links
        .iter()
        .map(|(link, n)| simple::LocalLink {
            link,
            href: format!("/files/{n}/{}", url_escape(&link.filename)),
        })
        .collect();
    let accept = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok());
    let (body, content_type) = simple::render_for(accept, &name, &local_links);
    let mut r = Response::new(Body::from(body));
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    r
}

async fn pypi_file(shared: &Arc<Shared>, rest: &str) -> Response {
    let Some((n, filename)) = rest.split_once('/') else {
        return text(StatusCode::NOT_FOUND, "no such file");
    };
    let Ok(n) = n.parse::<usize>() else {
        return text(StatusCode::NOT_FOUND, "no such file");
    };
    let Some(file) = shared.files.lock().expect("lock").list.get(n).cloned() else {
        return text(StatusCode::NOT_FOUND, "no such file");
    };
    let filename = percent_decode(filename);
    if filename == format!("{}.metadata", file.link.filename) {
        return pypi_metadata(shared, &file).await;
    }
    if filename != file.link.filename {
        return text(StatusCode::NOT_FOUND, "no such file");
    }
    serve_pypi_file(shared, &file).await
}

/// A listed file, once fetched, verified and admitted; else the error that says why not.
async fn serve_pypi_file(shared: &Arc<Shared>, file: &PypiFile) -> Response {
    match admit_pypi_file(shared, file).await {
        Ok((candidate, Admission::Serve)) => serve_artifact(shared, &candidate.artifact).await,
        Ok((_, Admission::Refuse(why))) => refused(&format!("cerebro: {why}")),
        Err(detail) => text(StatusCode::BAD_GATEWAY, format!("cerebro: {detail}")),
    }
}

/// 403 with the reason in the body and as the HTTP/1 reason phrase too: pip shows only the
/// phrase (`403 Client Error: <phrase> for url: …`), so the user reads why in pip's output.
fn refused(why: &str) -> Response {
    let mut r = text(StatusCode::FORBIDDEN, why);
    let phrase: String = why
        .chars()
        .map(|c| {
            if c == ' ' || c.is_ascii_graphic() {
                c
            } else {
                '?'
            }
        })
        .take(400)
        .collect();
    if let Ok(phrase) = hyper::ext::ReasonPhrase::try_from(phrase) {
        r.extensions_mut().insert(phrase);
    }
    r
}

/// The core metadata file (PEP 658): plain text, no code, verified when hashed.
async fn pypi_metadata(shared: &Arc<Shared>, file: &PypiFile) -> Response {
    let Some(hash) = &file.link.metadata else {
        return text(StatusCode::NOT_FOUND, "no metadata file");
    };
    let Ok(url) = Url::parse(&format!("{}.metadata", file.link.url)) else {
        return text(StatusCode::NOT_FOUND, "no metadata file");
    };
    let expected = hash
        .clone()
        .map(Expected::Sha256)
        .unwrap_or(Expected::Nothing);
    match shared
        .fetcher
        .artifact(&url, &expected, file.auth.as_deref())
        .await
    {
        Ok(a) => serve_artifact(shared, &a).await,
        Err(e) => {
            let detail = e.to_string();
            shared.incident(Ecosystem::Pypi, &file.project, detail.clone(), true);
            text(StatusCode::BAD_GATEWAY, format!("cerebro: {detail}"))
        }
    }
}

async fn admit_pypi_file(
    shared: &Arc<Shared>,
    file: &PypiFile,
) -> Result<(Candidate, Admission), String> {
    let expected = file
        .link
        .sha256
        .clone()
        .map(Expected::Sha256)
        .unwrap_or(Expected::Nothing);
    let artifact = match shared
        .fetcher
        .artifact(&file.link.url, &expected, file.auth.as_deref())
        .await
    {
        Ok(a) => a,
        Err(e) => {
            let detail = format!("{}: {e}", file.link.filename);
            shared.incident(Ecosystem::Pypi, &file.project, detail.clone(), true);
            return Err(detail);
        }
    };
    let previous = if shared
        .gate
        .wants_previous(Ecosystem::Pypi, &artifact.sha256)
    {
        previous::pypi(shared, file).await
    } else {
        None
    };
    let candidate = Candidate {
        ecosystem: Ecosystem::Pypi,
        name: file.project.clone(),
        version: None,
        filename: file.link.filename.clone(),
        url: file.link.url.clone(),
        artifact,
        previous,
    };
    let (candidate, admission) = run_gate(shared, candidate).await;
    if let Admission::Refuse(why) = &admission {
        shared.incident(Ecosystem::Pypi, &file.project, why.clone(), false);
    }
    Ok((candidate, admission))
}

fn same_origin(a: &Url, b: &Url) -> bool {
    a.scheme() == b.scheme()
        && a.host_str() == b.host_str()
        && a.port_or_known_default() == b.port_or_known_default()
}

/// Escapes a file name for a URL path segment.
fn url_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~+!".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Decodes `%XX` escapes (as bytes, then UTF-8 with replacement): for URL paths.
pub fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() && s.is_char_boundary(i + 3) {
            if let Ok(v) = u8::from_str_radix(&s[i + 1..i + 3], 16) {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod in_flight_tests {
    use super::InFlight;
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    #[test]
    fn waiting_ends_when_the_last_judgement_ends() {
        let flight = Arc::new(InFlight::default());
        assert!(
            flight.wait_idle(Duration::ZERO),
            "idle with nothing under way"
        );
        let one = flight.start();
        let two = flight.start();
        assert!(
            !flight.wait_idle(Duration::from_millis(20)),
            "two under way"
        );
        let worker = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(50));
            drop(one);
            std::thread::sleep(Duration::from_millis(50));
            drop(two);
        });
        let start = Instant::now();
        assert!(flight.wait_idle(Duration::from_secs(30)));
        assert!(
            start.elapsed() >= Duration::from_millis(90),
            "waited for both"
        );
        worker.join().unwrap();
    }
}
