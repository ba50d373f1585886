//! The upstream registry the tests point pip and npm (through the guard) at: a PyPI simple
//! index (PEP 503) and an npm registry, both served on 127.0.0.1 from in-memory fixtures by an
//! axum server on its own thread, with faults per artifact and a count of requests per path.
//!
//! Every response carries `Connection: close`, so each request comes on a fresh connection;
//! that lets the listener hand a truncated download to a raw writer (one that announces the
//! full `Content-Length`, sends half and hangs up), which hyper, rightly, refuses to do.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::http::{header, Method, Response, StatusCode, Uri};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::fixtures::{normalize, NpmPkg, PyDist};

/// What goes wrong when one artifact is downloaded.
#[derive(Debug, Clone)]
pub enum Fault {
    /// Serve these bytes in place of the published ones; the index and the packument still
    /// show the hashes of the published ones.
    Substitute(Vec<u8>),
    /// Announce the full `Content-Length`, send the first half of the body, close.
    Truncate,
    /// Answer only after this long (an upstream slower than the guard's deadline).
    Delay(Duration),
}

#[derive(Default)]
struct Inner {
    base: String,
    pypi: BTreeMap<String, Vec<PyDist>>,
    npm: BTreeMap<String, Vec<NpmPkg>>,
    faults: HashMap<String, Fault>,
    hits: BTreeMap<String, usize>,
    log: Vec<String>,
    /// The `User-Agent` of every request, by path: tells the guard's own downloads from a
    /// package manager's.
    agents: BTreeMap<String, Vec<String>>,
    /// Publish times (RFC 3339) by ecosystem, name (PyPI normalised) and version; the rest
    /// were published on [`OLD`].
    published: HashMap<(&'static str, String, String), String>,
    /// Publishes no times: PyPI pages in HTML only, npm packuments without `time` (as a
    /// private registry or an HTML-only mirror may).
    no_times: bool,
    /// The `Authorization` value every request must carry (a private index), when set.
    auth: Option<String>,
}

/// When every fixture release without a time of its own was published: long ago.
pub const OLD: &str = "2024-01-01T00:00:00.000Z";

/// `hours` ago, as a registry writes a publish time.
pub fn hours_ago(hours: u64) -> String {
    let t = std::time::SystemTime::now() - Duration::from_secs(hours * 3600);
    cerebro_guard::index::format_time(t)
}

type Shared = Arc<Mutex<Inner>>;

/// A running registry; stops when dropped.
pub struct Registry {
    addr: SocketAddr,
    inner: Shared,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Registry {
    /// Starts an empty registry on 127.0.0.1 and a free port.
    pub fn start() -> Registry {
        let std_listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        std_listener.set_nonblocking(true).unwrap();
        let addr = std_listener.local_addr().unwrap();
        let inner: Shared = Arc::new(Mutex::new(Inner {
            base: format!("http://{addr}"),
            ..Inner::default()
        }));
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let state = inner.clone();
        let thread = std::thread::Builder::new()
            .name(format!("registry-{}", addr.port()))
            .spawn(move || {
                let rt = tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .enable_all()
                    .build()
                    .expect("registry runtime");
                rt.block_on(async move {
                    let listener = FaultingListener {
                        inner: TcpListener::from_std(std_listener).expect("tokio listener"),
                        state: state.clone(),
                    };
                    let app = axum::Router::new().fallback(
                        move |method, uri: axum::http::Uri, headers: axum::http::HeaderMap| {
                            let state = state.clone();
                            let get = |h: header::HeaderName| {
                                headers
                                    .get(h)
                                    .and_then(|v| v.to_str().ok())
                                    .unwrap_or_default()
                                    .to_owned()
                            };
                            let agent = get(header::USER_AGENT);
                            let accept = get(header::ACCEPT);
                            let auth = get(header::AUTHORIZATION);
                            async move {
                                let file = uri.path().rsplit('/').next().unwrap_or_default();
                                let delay = match state.lock().unwrap().faults.get(file) {
                                    Some(Fault::Delay(d)) => Some(*d),
                                    _ => None,
                                };
                                if let Some(d) = delay {
                                    tokio::time::sleep(d).await;
                                }
                                handle(&state, method, uri, agent, &accept, &auth)
                            }
                        },
                    );
                    tokio::select! {
                        result = axum::serve(listener, app) => {
                            result.expect("registry server");
                        }
                        _ = stopped => {}
                    }
                });
                rt.shutdown_timeout(Duration::from_millis(200));
            })
            .expect("registry thread");
        Registry {
            addr,
            inner,
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    /// Starts a registry that serves these fixtures.
    pub fn with(pypi: Vec<PyDist>, npm: Vec<NpmPkg>) -> Registry {
        let registry = Registry::start();
        registry.add_pypi(pypi);
        registry.add_npm(npm);
        registry
    }

    /// `http://127.0.0.1:PORT` (no trailing slash).
    pub fn base(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The simple index: `http://127.0.0.1:PORT/simple/`.
    pub fn pypi_url(&self) -> String {
        format!("{}/simple/", self.base())
    }

    /// The npm registry: `http://127.0.0.1:PORT/`.
    pub fn npm_url(&self) -> String {
        format!("{}/", self.base())
    }

    /// `127.0.0.1:PORT`, as error messages would name it.
    pub fn host_port(&self) -> String {
        self.addr.to_string()
    }

    pub fn add_pypi(&self, dists: impl IntoIterator<Item = PyDist>) {
        let mut inner = self.inner.lock().unwrap();
        for dist in dists {
            inner
                .pypi
                .entry(normalize(&dist.name))
                .or_default()
                .push(dist);
        }
    }

    pub fn add_npm(&self, pkgs: impl IntoIterator<Item = NpmPkg>) {
        let mut inner = self.inner.lock().unwrap();
        for pkg in pkgs {
            inner.npm.entry(pkg.name.clone()).or_default().push(pkg);
        }
    }

    /// Says that `name` `version` (PyPI) was published at `time` (RFC 3339).
    pub fn publish_pypi_at(&self, name: &str, version: &str, time: &str) {
        self.inner.lock().unwrap().published.insert(
            ("pypi", normalize(name), version.to_owned()),
            time.to_owned(),
        );
    }

    /// Says that `name@version` (npm) was published at `time` (RFC 3339).
    pub fn publish_npm_at(&self, name: &str, version: &str, time: &str) {
        self.inner.lock().unwrap().published.insert(
            ("npm", name.to_owned(), version.to_owned()),
            time.to_owned(),
        );
    }

    /// From now on, publishes no release times (HTML pages only; packuments without `time`).
    pub fn without_times(&self) {
        self.inner.lock().unwrap().no_times = true;
    }

    /// From now on, answers 401 to every request without HTTP basic auth as `user:password`.
    pub fn require_auth(&self, user: &str, password: &str) {
        use base64::Engine as _;
        let token = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
        self.inner.lock().unwrap().auth = Some(format!("Basic {token}"));
    }

    /// Makes every download of the artifact named `file` go wrong this way.
    pub fn fault(&self, file: &str, fault: Fault) {
        self.inner
            .lock()
            .unwrap()
            .faults
            .insert(file.to_owned(), fault);
    }

    /// Requests for exactly this path (as sent, e.g. `/simple/alpha-lib/`).
    pub fn hits(&self, path: &str) -> usize {
        self.inner
            .lock()
            .unwrap()
            .hits
            .get(path)
            .copied()
            .unwrap_or(0)
    }

    /// Downloads of the artifact named `file`, whatever its folder.
    pub fn file_hits(&self, file: &str) -> usize {
        let suffix = format!("/{file}");
        self.inner
            .lock()
            .unwrap()
            .hits
            .iter()
            .filter(|(path, _)| path.ends_with(&suffix))
            .map(|(_, n)| n)
            .sum()
    }

    /// Every request so far, in order, as `METHOD /path -> status`.
    pub fn log(&self) -> Vec<String> {
        self.inner.lock().unwrap().log.clone()
    }

    /// The `User-Agent` of each request for `path` so far, in order.
    pub fn agents(&self, path: &str) -> Vec<String> {
        self.inner
            .lock()
            .unwrap()
            .agents
            .get(path)
            .cloned()
            .unwrap_or_default()
    }

    /// The total number of requests so far.
    pub fn total_hits(&self) -> usize {
        self.inner.lock().unwrap().log.len()
    }

    /// Blocks for ever (for the benchmark's fixture server).
    pub fn serve_forever(self) -> ! {
        loop {
            std::thread::park();
        }
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// A base URL nobody listens on: a port that was free a moment ago.
pub fn dead_url() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().unwrap();
    drop(listener);
    format!("http://{addr}")
}

// ---------------------------------------------------------------------------------------------
// Serving.

fn record(state: &Shared, method: &Method, path: &str, status: StatusCode, agent: String) {
    let mut inner = state.lock().unwrap();
    *inner.hits.entry(path.to_owned()).or_default() += 1;
    inner.agents.entry(path.to_owned()).or_default().push(agent);
    inner
        .log
        .push(format!("{method} {path} -> {}", status.as_u16()));
}

fn respond(status: StatusCode, content_type: &str, body: Vec<u8>) -> Response<Body> {
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, content_type)
        .header(header::CONNECTION, "close")
        .body(Body::from(body))
        .unwrap()
}

fn not_found() -> Response<Body> {
    respond(StatusCode::NOT_FOUND, "text/plain", b"not found\n".to_vec())
}

/// Answers every request. `Accept` chooses as real registries do: PEP 691 JSON pages (with
/// PEP 700 `upload-time`) for a client that asks for them, npm's abbreviated packument
/// (no `time`) for `application/vnd.npm.install-v1+json`.
fn handle(
    state: &Shared,
    method: Method,
    uri: Uri,
    agent: String,
    accept: &str,
    auth: &str,
) -> Response<Body> {
    let path = uri.path().to_owned();
    let wanted = state.lock().unwrap().auth.clone();
    let response = if wanted.is_some_and(|w| w != auth) {
        respond(
            StatusCode::UNAUTHORIZED,
            "text/plain",
            b"credentials needed\n".to_vec(),
        )
    } else if method != Method::GET && method != Method::HEAD {
        respond(
            StatusCode::METHOD_NOT_ALLOWED,
            "text/plain",
            b"GET only\n".to_vec(),
        )
    } else {
        route(state, &path, accept)
    };
    record(state, &method, &path, response.status(), agent);
    response
}

fn route(state: &Shared, path: &str, accept: &str) -> Response<Body> {
    let inner = state.lock().unwrap();
    if path == "/simple" || path == "/simple/" {
        return html(simple_root(&inner));
    }
    if let Some(project) = path.strip_prefix("/simple/") {
        let project = project.trim_end_matches('/');
        let json = !inner.no_times && accept.contains("application/vnd.pypi.simple.v1+json");
        return match inner.pypi.get(&normalize(project)) {
            Some(dists) if normalize(project) == project && json => respond(
                StatusCode::OK,
                "application/vnd.pypi.simple.v1+json",
                serde_json::to_vec(&simple_project_json(&inner, project, dists)).unwrap(),
            ),
            Some(dists) if normalize(project) == project => html(simple_project(project, dists)),
            // Real indexes redirect a name that is not normalised; pip always asks normalised.
            _ => not_found(),
        };
    }
    // PyPI's JSON API for one release (`/pypi/<name>/<version>/json`), as Poetry reads it.
    if let Some((project, version)) = path
        .strip_prefix("/pypi/")
        .and_then(|p| p.strip_suffix("/json"))
        .and_then(|p| p.split_once('/'))
    {
        return match inner.pypi.get(&normalize(project)) {
            Some(dists) if dists.iter().any(|d| d.version == version) => respond(
                StatusCode::OK,
                "application/json",
                serde_json::to_vec(&pypi_release_json(&inner, project, version, dists)).unwrap(),
            ),
            _ => not_found(),
        };
    }
    // PyPI's JSON API (`/pypi/<name>/json`): release times by version and file.
    if let Some(project) = path
        .strip_prefix("/pypi/")
        .and_then(|p| p.strip_suffix("/json"))
    {
        return match inner.pypi.get(&normalize(project)) {
            Some(dists) if !inner.no_times => respond(
                StatusCode::OK,
                "application/json",
                serde_json::to_vec(&pypi_json_api(&inner, project, dists)).unwrap(),
            ),
            _ => not_found(),
        };
    }
    if let Some(file) = path.strip_prefix("/files/") {
        return inner
            .pypi
            .values()
            .flatten()
            .find(|d| d.artifact.file == file)
            .map(|d| artifact(&inner, &d.artifact.file, &d.artifact.bytes))
            .unwrap_or_else(not_found);
    }
    // npm: `/<name>/-/<file>.tgz`, `/@scope/<name>/-/<file>.tgz`, `/<name>`, `/@scope%2f<name>`.
    let decoded = percent_decode(path.trim_start_matches('/'));
    if let Some((name, file)) = decoded.split_once("/-/") {
        return inner
            .npm
            .get(name)
            .into_iter()
            .flatten()
            .find(|p| p.artifact.file == file)
            .map(|p| artifact(&inner, &p.artifact.file, &p.artifact.bytes))
            .unwrap_or_else(not_found);
    }
    match inner.npm.get(decoded.as_str()) {
        Some(versions) => {
            let mut doc = packument(&inner, versions);
            if accept.contains("application/vnd.npm.install-v1+json") {
                doc = abbreviated(doc);
            }
            respond(
                StatusCode::OK,
                "application/json",
                serde_json::to_vec(&doc).unwrap(),
            )
        }
        None => not_found(),
    }
}

fn published(inner: &Inner, ecosystem: &'static str, name: &str, version: &str) -> String {
    inner
        .published
        .get(&(ecosystem, name.to_owned(), version.to_owned()))
        .cloned()
        .unwrap_or_else(|| OLD.to_owned())
}

/// A PEP 691 project page, with PEP 700 `upload-time`s.
fn simple_project_json(inner: &Inner, project: &str, dists: &[PyDist]) -> serde_json::Value {
    let files: Vec<serde_json::Value> = dists
        .iter()
        .map(|d| {
            let mut f = serde_json::json!({
                "filename": d.artifact.file,
                "url": format!("../../files/{}", d.artifact.file),
                "hashes": {"sha256": d.artifact.sha256_hex()},
                "upload-time": published(inner, "pypi", &normalize(&d.name), &d.version),
            });
            if let Some(r) = &d.requires_python {
                f["requires-python"] = r.clone().into();
            }
            f
        })
        .collect();
    serde_json::json!({
        "meta": {"api-version": "1.1"},
        "name": project,
        "files": files,
    })
}

/// PyPI's JSON API document: releases by version, each file with its upload time.
fn pypi_json_api(inner: &Inner, project: &str, dists: &[PyDist]) -> serde_json::Value {
    let mut releases = serde_json::Map::new();
    for d in dists {
        let file = serde_json::json!({
            "filename": d.artifact.file,
            "upload_time_iso_8601": published(inner, "pypi", &normalize(&d.name), &d.version),
        });
        releases
            .entry(d.version.clone())
            .or_insert_with(|| serde_json::Value::Array(Vec::new()))
            .as_array_mut()
            .unwrap()
            .push(file);
    }
    serde_json::json!({"info": {"name": project}, "releases": releases})
}

/// PyPI's JSON API document of one release: its files with absolute URLs (the same as the
/// simple page's), hashes and upload times. `requires_dist` is null, as PyPI gives it for a
/// release uploaded without that metadata: a client reads the dependencies from the files.
fn pypi_release_json(
    inner: &Inner,
    project: &str,
    version: &str,
    dists: &[PyDist],
) -> serde_json::Value {
    let release: Vec<&PyDist> = dists.iter().filter(|d| d.version == version).collect();
    let urls: Vec<serde_json::Value> = release
        .iter()
        .map(|d| {
            let time = published(inner, "pypi", &normalize(&d.name), &d.version);
            serde_json::json!({
                "filename": d.artifact.file,
                "url": format!("{}/files/{}", inner.base, d.artifact.file),
                "digests": {"sha256": d.artifact.sha256_hex()},
                "packagetype": if d.artifact.file.ends_with(".whl") { "bdist_wheel" } else { "sdist" },
                "size": d.artifact.bytes.len(),
                "upload_time_iso_8601": time,
                "yanked": false,
                "requires_python": d.requires_python,
            })
        })
        .collect();
    serde_json::json!({
        "info": {
            "name": project,
            "version": version,
            "summary": "",
            "requires_dist": null,
            "requires_python": release.first().and_then(|d| d.requires_python.clone()),
            "yanked": false,
            "yanked_reason": null,
        },
        "urls": urls,
    })
}

/// npm's abbreviated packument: no `time`, no per-version descriptions or scripts.
fn abbreviated(mut doc: serde_json::Value) -> serde_json::Value {
    let obj = doc.as_object_mut().unwrap();
    obj.remove("time");
    obj.remove("_id");
    if let Some(versions) = obj.get_mut("versions").and_then(|v| v.as_object_mut()) {
        for v in versions.values_mut() {
            let v = v.as_object_mut().unwrap();
            for key in ["_id", "description", "main", "license", "scripts"] {
                v.remove(key);
            }
        }
    }
    doc
}

fn html(body: String) -> Response<Body> {
    respond(
        StatusCode::OK,
        "text/html; charset=utf-8",
        body.into_bytes(),
    )
}

fn artifact(inner: &Inner, file: &str, bytes: &[u8]) -> Response<Body> {
    let body = match inner.faults.get(file) {
        Some(Fault::Substitute(other)) => other.clone(),
        // Truncated downloads are answered by the listener before they get here; this is the
        // fallback should a client reuse a connection despite `Connection: close`.
        Some(Fault::Truncate) => bytes[..bytes.len() / 2].to_vec(),
        Some(Fault::Delay(_)) | None => bytes.to_vec(),
    };
    let content_type = if file.ends_with(".whl") {
        "application/zip"
    } else {
        "application/octet-stream"
    };
    respond(StatusCode::OK, content_type, body)
}

fn simple_root(inner: &Inner) -> String {
    let mut out = String::from(
        "<!DOCTYPE html>\n<html>\n  <head>\n    <meta name=\"pypi:repository-version\" content=\"1.0\">\n    <title>Simple index</title>\n  </head>\n  <body>\n",
    );
    for name in inner.pypi.keys() {
        out.push_str(&format!("    <a href=\"{name}/\">{name}</a>\n"));
    }
    out.push_str("  </body>\n</html>\n");
    out
}

fn simple_project(project: &str, dists: &[PyDist]) -> String {
    let mut out = format!(
        "<!DOCTYPE html>\n<html>\n  <head>\n    <meta name=\"pypi:repository-version\" content=\"1.0\">\n    <title>Links for {project}</title>\n  </head>\n  <body>\n    <h1>Links for {project}</h1>\n"
    );
    for dist in dists {
        let requires = dist
            .requires_python
            .as_deref()
            .map(|r| format!(" data-requires-python=\"{}\"", html_escape(r)))
            .unwrap_or_default();
        out.push_str(&format!(
            "    <a href=\"../../files/{file}#sha256={sha}\"{requires}>{file}</a><br/>\n",
            file = dist.artifact.file,
            sha = dist.artifact.sha256_hex(),
        ));
    }
    out.push_str("  </body>\n</html>\n");
    out
}

fn html_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The packument of one package, in the full format.
fn packument(inner: &Inner, versions: &[NpmPkg]) -> serde_json::Value {
    let base = &inner.base;
    let name = &versions[0].name;
    let latest = &versions.last().unwrap().version;
    let mut doc_versions = serde_json::Map::new();
    let mut time = serde_json::Map::new();
    time.insert("created".into(), "2024-01-01T00:00:00.000Z".into());
    time.insert("modified".into(), "2024-01-01T00:00:00.000Z".into());
    for pkg in versions {
        let deps: serde_json::Map<String, serde_json::Value> = pkg
            .dependencies
            .iter()
            .map(|(n, r)| (n.clone(), r.clone().into()))
            .collect();
        let mut version = serde_json::json!({
            "name": pkg.name,
            "version": pkg.version,
            "_id": format!("{}@{}", pkg.name, pkg.version),
            "description": format!("{}, a small test library", pkg.name),
            "main": "index.js",
            "license": "MIT",
            "dependencies": deps,
            "dist": {
                "tarball": format!("{base}/{}/-/{}", pkg.name, pkg.artifact.file),
                "integrity": pkg.integrity(),
                "shasum": pkg.shasum(),
            },
        });
        if !pkg.bin.is_empty() {
            version["bin"] = pkg
                .bin
                .iter()
                .map(|(n, f)| (n.clone(), serde_json::Value::from(f.clone())))
                .collect::<serde_json::Map<_, _>>()
                .into();
        }
        if !pkg.scripts.is_empty() {
            version["scripts"] = pkg
                .scripts
                .iter()
                .map(|(n, c)| (n.clone(), serde_json::Value::from(c.clone())))
                .collect::<serde_json::Map<_, _>>()
                .into();
            version["hasInstallScript"] = pkg
                .scripts
                .iter()
                .any(|(n, _)| matches!(n.as_str(), "preinstall" | "install" | "postinstall"))
                .into();
        }
        doc_versions.insert(pkg.version.clone(), version);
        time.insert(
            pkg.version.clone(),
            published(inner, "npm", &pkg.name, &pkg.version).into(),
        );
    }
    let mut doc = serde_json::json!({
        "_id": name,
        "name": name,
        "dist-tags": { "latest": latest },
        "versions": doc_versions,
        "time": time,
        "modified": "2024-01-01T00:00:00.000Z",
    });
    if inner.no_times {
        doc.as_object_mut().unwrap().remove("time");
    }
    doc
}

/// Decodes `%XX` escapes (npm sends scoped names as `@scope%2fname`).
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let Ok(v) = u8::from_str_radix(&text[i + 1..i + 3], 16) {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

// ---------------------------------------------------------------------------------------------
// The listener that answers truncated downloads itself.

struct FaultingListener {
    inner: TcpListener,
    state: Shared,
}

impl axum::serve::Listener for FaultingListener {
    type Io = TcpStream;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (TcpStream, SocketAddr) {
        loop {
            let (stream, addr) = match self.inner.accept().await {
                Ok(accepted) => accepted,
                Err(_) => {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            };
            match truncated_target(&stream, &self.state).await {
                Some((path, full_len, body)) => {
                    let state = self.state.clone();
                    tokio::spawn(async move {
                        record(&state, &Method::GET, &path, StatusCode::OK, String::new());
                        let _ = write_truncated(stream, full_len, &body).await;
                    });
                }
                None => return (stream, addr),
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.inner.local_addr()
    }
}

/// Peeks at the request line; when it asks for an artifact with a [`Fault::Truncate`], returns
/// its path, the full length and the half that will be sent.
async fn truncated_target(stream: &TcpStream, state: &Shared) -> Option<(String, usize, Vec<u8>)> {
    let mut buf = [0u8; 2048];
    let line = {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
        loop {
            let n = tokio::time::timeout_at(deadline, stream.peek(&mut buf))
                .await
                .ok()?
                .ok()?;
            if n == 0 {
                return None;
            }
            if let Some(end) = buf[..n].windows(2).position(|w| w == b"\r\n") {
                break String::from_utf8_lossy(&buf[..end]).into_owned();
            }
            if n == buf.len() {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    };
    let mut parts = line.split(' ');
    let (_method, target) = (parts.next()?, parts.next()?);
    let path = target.split(['?', '#']).next()?.to_owned();
    let file = percent_decode(path.rsplit('/').next()?);
    let inner = state.lock().unwrap();
    if !matches!(inner.faults.get(&file), Some(Fault::Truncate)) {
        return None;
    }
    let bytes = inner
        .pypi
        .values()
        .flatten()
        .map(|d| &d.artifact)
        .chain(inner.npm.values().flatten().map(|p| &p.artifact))
        .find(|a| a.file == file)?
        .bytes
        .clone();
    let half = bytes[..bytes.len() / 2].to_vec();
    Some((path, bytes.len(), half))
}

async fn write_truncated(
    mut stream: TcpStream,
    full_len: usize,
    half: &[u8],
) -> std::io::Result<()> {
    // Read the request head so that closing does not reset the connection under the reply.
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 64 * 1024 {
        let n = tokio::time::timeout(Duration::from_secs(2), stream.read(&mut buf))
            .await
            .map_err(|_| std::io::ErrorKind::TimedOut)??;
        if n == 0 {
            break;
        }
        head.extend_from_slice(&buf[..n]);
    }
    let reply = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: {full_len}\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(reply.as_bytes()).await?;
    stream.write_all(half).await?;
    stream.flush().await?;
    stream.shutdown().await
}
