//! The fetch stage against small servers on loopback: verified downloads into the
//! content-addressed cache, what is refused and why, credentials across redirects, and two
//! fetchers racing for the same artifact. No test touches the network (one ignored test
//! checks real HTTPS through the system trust store when asked for).

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::Response;
use axum::Router;
use base64::Engine as _;
use sha2::Digest as _;

use cerebro_fetch::{Artifact, Expected, FetchError, FetchOptions, Fetcher, Url};

// ---------------------------------------------------------------------------------------------
// A fake registry: replies by path, every request logged with its Authorization header.
// ---------------------------------------------------------------------------------------------

#[derive(Clone)]
struct Reply {
    status: u16,
    headers: Vec<(&'static str, String)>,
    body: Vec<u8>,
    delay: Duration,
}

fn ok(body: &[u8]) -> Reply {
    Reply {
        status: 200,
        headers: Vec::new(),
        body: body.to_vec(),
        delay: Duration::ZERO,
    }
}

fn status(status: u16) -> Reply {
    Reply {
        status,
        ..ok(b"no")
    }
}

fn redirect(to: &str) -> Reply {
    Reply {
        status: 302,
        headers: vec![("location", to.to_owned())],
        ..ok(b"")
    }
}

/// A request's path and `Authorization` header.
type Seen = (String, Option<String>);

#[derive(Clone, Default)]
struct Fake {
    base: String,
    /// Replies by path; a list is served in turn, its last one repeatedly.
    routes: Arc<Mutex<HashMap<String, Vec<Reply>>>>,
    /// (path, Authorization) of every request, in arrival order.
    log: Arc<Mutex<Vec<Seen>>>,
}

impl Fake {
    /// A server on `ip` (port chosen by the system); `None` when `ip` cannot be bound.
    fn on(ip: &str) -> Option<Fake> {
        let listener = TcpListener::bind((ip, 0)).ok()?;
        listener.set_nonblocking(true).unwrap();
        let fake = Fake {
            base: format!("http://{}", listener.local_addr().unwrap()),
            ..Fake::default()
        };
        let app = Router::new().fallback(handle).with_state(fake.clone());
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).unwrap();
                axum::serve(listener, app).await.unwrap();
            });
        });
        Some(fake)
    }

    fn start() -> Fake {
        Fake::on("127.0.0.1").expect("bind 127.0.0.1")
    }

    fn route(&self, path: &str, replies: Vec<Reply>) {
        self.routes.lock().unwrap().insert(path.to_owned(), replies);
    }

    fn url(&self, path: &str) -> Url {
        Url::parse(&format!("{}{path}", self.base)).unwrap()
    }

    fn hits(&self, path: &str) -> usize {
        self.log
            .lock()
            .unwrap()
            .iter()
            .filter(|(p, _)| p == path)
            .count()
    }

    fn auth_seen(&self, path: &str) -> Vec<Option<String>> {
        let log = self.log.lock().unwrap();
        log.iter()
            .filter(|(p, _)| p == path)
            .map(|(_, a)| a.clone())
            .collect()
    }
}

async fn handle(State(fake): State<Fake>, uri: Uri, headers: HeaderMap) -> Response {
    let path = uri.path().to_owned();
    let auth = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    fake.log.lock().unwrap().push((path.clone(), auth));
    let reply = {
        let mut routes = fake.routes.lock().unwrap();
        match routes.get_mut(&path) {
            Some(list) if list.len() > 1 => list.remove(0),
            Some(list) => list[0].clone(),
            None => status(404),
        }
    };
    if !reply.delay.is_zero() {
        tokio::time::sleep(reply.delay).await;
    }
    let mut response = Response::builder().status(StatusCode::from_u16(reply.status).unwrap());
    for (name, value) in &reply.headers {
        response = response.header(*name, value);
    }
    response.body(Body::from(reply.body)).unwrap()
}

/// A raw server answering every connection with `response` verbatim, then closing: for
/// bodies shorter than their `Content-Length`, or delimited by the close alone.
fn raw_server(response: Vec<u8>) -> (String, Arc<AtomicUsize>) {
    let response = Arc::new(response);
    raw_server_with(move |mut stream| {
        let _ = stream.write_all(&response);
    })
}

/// A raw server that reads each request's head and hands the connection to `answer` (on a
/// thread of its own); also counts the connections.
fn raw_server_with(
    answer: impl Fn(std::net::TcpStream) + Send + Sync + 'static,
) -> (String, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let count = Arc::new(AtomicUsize::new(0));
    let seen = count.clone();
    let answer = Arc::new(answer);
    std::thread::spawn(move || {
        for mut stream in listener.incoming().flatten() {
            seen.fetch_add(1, Ordering::SeqCst);
            let answer = answer.clone();
            std::thread::spawn(move || {
                let mut head = Vec::new();
                let mut byte = [0u8; 1];
                while !head.ends_with(b"\r\n\r\n") {
                    match stream.read(&mut byte) {
                        Ok(1) => head.push(byte[0]),
                        _ => break,
                    }
                }
                answer(stream);
            });
        }
    });
    (base, count)
}

// ---------------------------------------------------------------------------------------------
// Fixtures.
// ---------------------------------------------------------------------------------------------

fn sha256(bytes: &[u8]) -> String {
    cerebro_fetch::hex(&sha2::Sha256::digest(bytes))
}

fn integrity(bytes: &[u8]) -> String {
    format!(
        "sha512-{}",
        base64::engine::general_purpose::STANDARD.encode(sha2::Sha512::digest(bytes))
    )
}

fn options(root: &Path) -> FetchOptions {
    let mut options = FetchOptions::new(root.to_path_buf());
    options.retries = 2;
    options.backoff = Duration::from_millis(1);
    options.connect_timeout = Duration::from_secs(5);
    options.read_timeout = Duration::from_secs(10);
    options
}

fn fetcher(root: &Path) -> Fetcher {
    Fetcher::new(options(root)).expect("fetcher")
}

fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.flatten() {
            if entry.path().is_dir() {
                out.extend(files_under(&entry.path()));
            } else {
                out.push(entry.path());
            }
        }
    }
    out
}

fn cached_files(root: &Path) -> Vec<PathBuf> {
    files_under(&root.join("sha256"))
}

fn tmp_is_empty(root: &Path) -> bool {
    files_under(&root.join("tmp")).is_empty()
}

/// A port nothing listens on.
fn closed_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

// ---------------------------------------------------------------------------------------------
// Downloads and the cache.
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn a_good_download_is_cached_and_found_again_without_a_server() {
    let dir = tempfile::tempdir().unwrap();
    let server = Fake::start();
    let bytes = b"the package bytes".repeat(1000);
    server.route("/pkg-1.0.tar.gz", vec![ok(&bytes)]);
    let expected = Expected::Sha256(sha256(&bytes));

    let fetcher = fetcher(dir.path());
    assert_eq!(fetcher.cached(&expected), None);
    let artifact = fetcher
        .artifact(&server.url("/pkg-1.0.tar.gz"), &expected, None)
        .await
        .expect("downloaded");
    assert_eq!(artifact.sha256, sha256(&bytes));
    assert_eq!(artifact.size, bytes.len() as u64);
    assert_eq!(
        artifact.path,
        dir.path()
            .join("sha256")
            .join(&artifact.sha256[..2])
            .join(&artifact.sha256)
    );
    assert_eq!(fetcher.read(&artifact).unwrap(), bytes);
    assert!(tmp_is_empty(dir.path()));

    // Another fetcher (a later run) finds it with no request at all, even when the URL
    // leads nowhere.
    let later = self::fetcher(dir.path());
    assert_eq!(later.cached(&expected), Some(artifact.clone()));
    let nowhere = Url::parse(&format!("http://127.0.0.1:{}/x", closed_port())).unwrap();
    assert_eq!(
        later.artifact(&nowhere, &expected, None).await.unwrap(),
        artifact
    );
    assert_eq!(server.hits("/pkg-1.0.tar.gz"), 1);
}

#[tokio::test]
async fn a_sha256_mismatch_is_refused_and_nothing_is_kept() {
    let dir = tempfile::tempdir().unwrap();
    let server = Fake::start();
    server.route("/evil-1.0.tar.gz", vec![ok(b"altered bytes")]);
    let claimed = sha256(b"the published bytes");
    let error = fetcher(dir.path())
        .artifact(
            &server.url("/evil-1.0.tar.gz"),
            &Expected::Sha256(claimed.clone()),
            None,
        )
        .await
        .unwrap_err();
    match &error {
        FetchError::HashMismatch {
            expected, actual, ..
        } => {
            assert_eq!(*expected, format!("sha256 {claimed}"));
            assert_eq!(*actual, format!("sha256 {}", sha256(b"altered bytes")));
        }
        other => panic!("{other:?}"),
    }
    let text = error.to_string();
    assert!(
        text.contains("/evil-1.0.tar.gz") && text.contains("discarded"),
        "{text}"
    );
    assert_eq!(
        server.hits("/evil-1.0.tar.gz"),
        1,
        "a mismatch is not retried"
    );
    assert!(cached_files(dir.path()).is_empty());
    assert!(tmp_is_empty(dir.path()));
}

#[tokio::test]
async fn npm_integrity_is_checked_and_remembered() {
    let dir = tempfile::tempdir().unwrap();
    let server = Fake::start();
    let tarball = b"npm tarball bytes".to_vec();
    server.route("/pkg/-/pkg-1.0.0.tgz", vec![ok(&tarball)]);
    server.route("/old/-/old-0.1.0.tgz", vec![ok(b"old tarball")]);
    server.route("/bad/-/bad-1.0.0.tgz", vec![ok(b"not what was published")]);

    let good = Expected::from_integrity(&integrity(&tarball)).unwrap();
    let fetcher = fetcher(dir.path());
    let artifact = fetcher
        .artifact(&server.url("/pkg/-/pkg-1.0.0.tgz"), &good, None)
        .await
        .expect("integrity matches");
    assert_eq!(artifact.sha256, sha256(&tarball));

    let shasum = cerebro_fetch::hex(&sha1::Sha1::digest(b"old tarball"));
    let old = fetcher
        .artifact(
            &server.url("/old/-/old-0.1.0.tgz"),
            &Expected::Sha1(shasum.clone()),
            None,
        )
        .await
        .expect("shasum matches");

    let bad = Expected::from_integrity(&integrity(b"the published tarball")).unwrap();
    let error = fetcher
        .artifact(&server.url("/bad/-/bad-1.0.0.tgz"), &bad, None)
        .await
        .unwrap_err();
    assert!(
        matches!(&error, FetchError::HashMismatch { expected, .. } if expected.starts_with("sha512 ")),
        "{error:?}"
    );
    assert!(error.to_string().contains("expected sha512 "), "{error}");
    assert_eq!(cached_files(dir.path()).len(), 2);

    // A later run finds both by the registry's hashes alone, through the alias files.
    let later = self::fetcher(dir.path());
    assert_eq!(later.cached(&good), Some(artifact));
    assert_eq!(later.cached(&Expected::Sha1(shasum)), Some(old));
    assert_eq!(later.cached(&bad), None);
    assert_eq!(later.cached(&Expected::Nothing), None);
}

#[tokio::test]
async fn an_artifact_without_a_published_hash_is_kept_under_its_sha256() {
    let dir = tempfile::tempdir().unwrap();
    let server = Fake::start();
    server.route("/x.zip", vec![ok(b"zip bytes")]);
    let artifact = fetcher(dir.path())
        .artifact(&server.url("/x.zip"), &Expected::Nothing, None)
        .await
        .unwrap();
    assert_eq!(artifact.sha256, sha256(b"zip bytes"));
    assert!(artifact.path.is_file());
}

#[tokio::test]
async fn a_body_shorter_than_its_content_length_is_truncated() {
    let dir = tempfile::tempdir().unwrap();
    let mut response =
        b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\nConnection: close\r\n\r\n".to_vec();
    response.extend_from_slice(&[b'x'; 100]);
    let (base, connections) = raw_server(response);
    let url = Url::parse(&format!("{base}/cut.tgz")).unwrap();
    let error = fetcher(dir.path())
        .artifact(&url, &Expected::Sha256(sha256(&[b'x'; 1000])), None)
        .await
        .unwrap_err();
    match error {
        FetchError::Truncated { expected, got, .. } => {
            assert_eq!((expected, got), (1000, 100));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(connections.load(Ordering::SeqCst), 3, "retried twice");
    assert!(cached_files(dir.path()).is_empty());
    assert!(tmp_is_empty(dir.path()));
}

/// A server that answers every connection with a `Content-Length` of 100,000 and then
/// drips the body, a byte every 20 ms, until the client goes.
fn dripping_server() -> (String, Arc<AtomicUsize>) {
    raw_server_with(|mut stream| {
        let _ = stream.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n");
        while stream.write_all(b"x").is_ok() {
            let _ = stream.flush();
            std::thread::sleep(Duration::from_millis(20));
        }
    })
}

#[tokio::test]
async fn a_body_that_drips_fails_once_under_the_floor_rate() {
    let dir = tempfile::tempdir().unwrap();
    let (base, connections) = dripping_server();
    let mut options = options(dir.path());
    options.retries = 1;
    // Each byte comes well within the read timeout: only the floor stops it.
    options.pace = cerebro_fetch::Pace {
        min_bytes_per_second: 1024,
        grace: Duration::from_millis(500),
        deadline: Duration::from_secs(60),
    };
    let url = Url::parse(&format!("{base}/drip.tgz")).unwrap();
    let started = std::time::Instant::now();
    let error = Fetcher::new(options)
        .unwrap()
        .artifact(&url, &Expected::Nothing, None)
        .await
        .unwrap_err();
    match &error {
        FetchError::Unreachable { detail, .. } => {
            assert!(detail.contains("under the floor"), "{detail}")
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(connections.load(Ordering::SeqCst), 2, "retried once");
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "{:?}",
        started.elapsed()
    );
    assert!(tmp_is_empty(dir.path()));

    // And a deadline, whatever the rate.
    let (base, _) = dripping_server();
    let mut options = self::options(dir.path());
    options.retries = 0;
    options.pace = cerebro_fetch::Pace {
        min_bytes_per_second: 0,
        grace: Duration::ZERO,
        deadline: Duration::from_millis(700),
    };
    let url = Url::parse(&format!("{base}/drip.tgz")).unwrap();
    let error = Fetcher::new(options)
        .unwrap()
        .artifact(&url, &Expected::Nothing, None)
        .await
        .unwrap_err();
    assert!(error.to_string().contains("longer than"), "{error}");
}

#[tokio::test]
async fn an_artifact_over_the_limit_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let server = Fake::start();
    server.route("/big.whl", vec![ok(&[7u8; 5000])]);
    let mut options = options(dir.path());
    options.max_bytes = 1000;
    let fetcher = Fetcher::new(options).unwrap();
    let error = fetcher
        .artifact(&server.url("/big.whl"), &Expected::Nothing, None)
        .await
        .unwrap_err();
    assert!(
        matches!(error, FetchError::TooLarge { limit: 1000, .. }),
        "{error:?}"
    );
    assert!(error.to_string().contains("1.0 kB"), "{error}");

    // Without a Content-Length, the count of bytes received stops it.
    let mut response = b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n".to_vec();
    response.extend_from_slice(&[7u8; 5000]);
    let (base, _) = raw_server(response);
    let url = Url::parse(&format!("{base}/stream.whl")).unwrap();
    let error = fetcher
        .artifact(&url, &Expected::Nothing, None)
        .await
        .unwrap_err();
    assert!(
        matches!(error, FetchError::TooLarge { limit: 1000, .. }),
        "{error:?}"
    );
    assert!(cached_files(dir.path()).is_empty());
    assert!(tmp_is_empty(dir.path()));
}

#[tokio::test]
async fn an_unreachable_server_is_said_without_its_credentials() {
    let dir = tempfile::tempdir().unwrap();
    let url = Url::parse(&format!(
        "http://user:s3cret@127.0.0.1:{}/simple/x/",
        closed_port()
    ))
    .unwrap();
    let fetcher = fetcher(dir.path());
    let error = fetcher
        .artifact(&url, &Expected::Sha256("a".repeat(64)), None)
        .await
        .unwrap_err();
    assert!(matches!(error, FetchError::Unreachable { .. }), "{error:?}");
    let text = error.to_string();
    assert!(text.starts_with("cannot reach http://127.0.0.1:"), "{text}");
    assert!(!text.contains("s3cret") && !text.contains('\n'), "{text}");
    let error = fetcher.document(&url, "text/html", None).await.unwrap_err();
    assert!(matches!(error, FetchError::Unreachable { .. }), "{error:?}");
}

#[tokio::test]
async fn not_found_is_final_and_server_errors_are_retried() {
    let dir = tempfile::tempdir().unwrap();
    let server = Fake::start();
    let fetcher = fetcher(dir.path());
    let error = fetcher
        .artifact(&server.url("/missing.tgz"), &Expected::Nothing, None)
        .await
        .unwrap_err();
    assert!(matches!(error, FetchError::NotFound { .. }), "{error:?}");
    assert_eq!(server.hits("/missing.tgz"), 1, "a 404 is not retried");

    server.route("/busy.tgz", vec![status(503), status(429), ok(b"at last")]);
    let artifact = fetcher
        .artifact(
            &server.url("/busy.tgz"),
            &Expected::Sha256(sha256(b"at last")),
            None,
        )
        .await
        .expect("third attempt");
    assert_eq!(artifact.size, 7);
    assert_eq!(server.hits("/busy.tgz"), 3);

    server.route("/forbidden.tgz", vec![status(403)]);
    let error = fetcher
        .artifact(&server.url("/forbidden.tgz"), &Expected::Nothing, None)
        .await
        .unwrap_err();
    assert!(
        matches!(error, FetchError::Status { status: 403, .. }),
        "{error:?}"
    );
    assert!(error.to_string().contains("credentials"), "{error}");
    assert_eq!(server.hits("/forbidden.tgz"), 1);
}

#[tokio::test]
async fn credentials_follow_redirects_on_their_host_only() {
    let dir = tempfile::tempdir().unwrap();
    let home = Fake::start();
    // Another host: 127.0.0.2 where the system routes all of 127/8 (Linux), else another
    // port, which reqwest treats as another origin just the same.
    let other = Fake::on("127.0.0.2").unwrap_or_else(Fake::start);
    home.route("/final.tgz", vec![ok(b"artifact")]);
    other.route("/final.tgz", vec![ok(b"artifact")]);
    home.route("/same.tgz", vec![redirect("/final.tgz")]);
    home.route(
        "/away.tgz",
        vec![redirect(&format!("{}/final.tgz", other.base))],
    );
    let fetcher = fetcher(dir.path());

    // An explicit Authorization value.
    let token = Some("Bearer s3cret");
    let doc = fetcher
        .document(&home.url("/same.tgz"), "*/*", token)
        .await
        .unwrap();
    assert_eq!(doc.url, home.url("/final.tgz"));
    assert_eq!(doc.body, b"artifact");
    let doc = fetcher
        .document(&home.url("/away.tgz"), "*/*", token)
        .await
        .unwrap();
    assert_eq!(doc.url, other.url("/final.tgz"));
    assert_eq!(
        home.auth_seen("/same.tgz"),
        [Some("Bearer s3cret".to_owned())]
    );
    assert_eq!(
        home.auth_seen("/final.tgz"),
        [Some("Bearer s3cret".to_owned())],
        "same host: kept"
    );
    assert_eq!(
        home.auth_seen("/away.tgz"),
        [Some("Bearer s3cret".to_owned())]
    );
    assert_eq!(other.auth_seen("/final.tgz"), [None], "other host: dropped");

    // `user:pass@` in the URL is basic auth, and stays home just the same.
    let mut url = home.url("/away.tgz");
    url.set_username("user").unwrap();
    url.set_password(Some("pa ss")).unwrap();
    fetcher
        .artifact(&url, &Expected::Sha256(sha256(b"artifact")), None)
        .await
        .unwrap();
    let basic = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode("user:pa ss")
    );
    assert_eq!(home.auth_seen("/away.tgz").last(), Some(&Some(basic)));
    assert_eq!(other.auth_seen("/final.tgz"), [None, None]);

    // Both given: the explicit value wins, and only one header is sent.
    home.route("/echo.tgz", vec![ok(b"echo")]);
    let mut url = home.url("/echo.tgz");
    url.set_username("user").unwrap();
    fetcher
        .artifact(&url, &Expected::Nothing, Some("Bearer t"))
        .await
        .unwrap();
    assert_eq!(home.auth_seen("/echo.tgz"), [Some("Bearer t".to_owned())]);
}

#[test]
fn two_fetchers_racing_for_one_artifact_download_it_once() {
    let dir = tempfile::tempdir().unwrap();
    let server = Fake::start();
    let bytes = b"slow artifact".repeat(10_000);
    server.route(
        "/slow.tgz",
        vec![Reply {
            delay: Duration::from_millis(400),
            ..ok(&bytes)
        }],
    );
    let url = server.url("/slow.tgz");
    let expected = Expected::from_integrity(&integrity(&bytes)).unwrap();
    let start = Arc::new(Barrier::new(2));
    let racers: Vec<_> = (0..2)
        .map(|_| {
            let (root, url, expected, start) = (
                dir.path().to_path_buf(),
                url.clone(),
                expected.clone(),
                start.clone(),
            );
            // Separate fetchers on separate runtimes, as two guard processes would be.
            std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap();
                let fetcher = fetcher(&root);
                start.wait();
                rt.block_on(fetcher.artifact(&url, &expected, None))
            })
        })
        .collect();
    let results: Vec<Artifact> = racers
        .into_iter()
        .map(|r| r.join().unwrap().expect("both succeed"))
        .collect();
    assert_eq!(results[0], results[1]);
    assert_eq!(
        server.hits("/slow.tgz"),
        1,
        "the second waited for the first"
    );
    assert_eq!(cached_files(dir.path()), [results[0].path.clone()]);
    assert_eq!(std::fs::read(&results[0].path).unwrap(), bytes);
    assert!(tmp_is_empty(dir.path()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_artifacts_come_back_in_order_and_duplicates_download_once() {
    let dir = tempfile::tempdir().unwrap();
    let server = Fake::start();
    let mut requests = Vec::new();
    for i in 0..6 {
        let body = format!("artifact {i}").into_bytes();
        server.route(
            &format!("/a{i}.tgz"),
            vec![Reply {
                delay: Duration::from_millis(50),
                ..ok(&body)
            }],
        );
        requests.push((
            server.url(&format!("/a{i}.tgz")),
            Expected::Sha256(sha256(&body)),
            None,
        ));
    }
    // The same artifact three more times, and one that fails.
    for _ in 0..3 {
        requests.push(requests[0].clone());
    }
    requests.push((server.url("/gone.tgz"), Expected::Nothing, None));
    let mut options = options(dir.path());
    options.concurrency = 3;
    let results = Fetcher::new(options).unwrap().artifacts(requests).await;
    assert_eq!(results.len(), 10);
    for (i, result) in results.iter().take(6).enumerate() {
        let artifact = result.as_ref().expect("fetched");
        assert_eq!(artifact.sha256, sha256(format!("artifact {i}").as_bytes()));
    }
    for result in &results[6..9] {
        assert_eq!(result.as_ref().unwrap(), results[0].as_ref().unwrap());
    }
    assert!(matches!(results[9], Err(FetchError::NotFound { .. })));
    assert_eq!(server.hits("/a0.tgz"), 1);
    assert_eq!(cached_files(dir.path()).len(), 6);
}

#[tokio::test]
async fn a_cache_file_altered_on_disk_is_not_served() {
    let dir = tempfile::tempdir().unwrap();
    let server = Fake::start();
    let bytes = b"pristine bytes".to_vec();
    server.route("/p.tgz", vec![ok(&bytes)]);
    let expected = Expected::Sha256(sha256(&bytes));
    let fetcher = fetcher(dir.path());
    let artifact = fetcher
        .artifact(&server.url("/p.tgz"), &expected, None)
        .await
        .unwrap();

    // Same length, other bytes: caught by the hash.
    std::fs::write(&artifact.path, b"tampered bytes").unwrap();
    let error = fetcher.read(&artifact).unwrap_err();
    assert_eq!(error.kind(), std::io::ErrorKind::InvalidData);
    assert!(error.to_string().contains("altered"), "{error}");
    assert!(
        !artifact.path.exists(),
        "removed so that it is fetched again"
    );
    assert_eq!(fetcher.cached(&expected), None);

    // Fetched again, then grown on disk: caught by the size.
    let again = fetcher
        .artifact(&server.url("/p.tgz"), &expected, None)
        .await
        .unwrap();
    assert_eq!(again, artifact);
    std::fs::write(&again.path, b"pristine bytes and a payload").unwrap();
    assert!(fetcher.read(&again).is_err());
    assert_eq!(server.hits("/p.tgz"), 2);
}

// ---------------------------------------------------------------------------------------------
// Documents and setup.
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn documents_follow_redirects_and_are_gzip_decoded_within_the_limit() {
    let dir = tempfile::tempdir().unwrap();
    let server = Fake::start();
    let page = b"<a href=\"x-1.0.tar.gz#sha256=00\">x</a>".repeat(100);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&page).unwrap();
    let compressed = gz.finish().unwrap();
    server.route("/simple/x", vec![redirect("/simple/x/")]);
    server.route(
        "/simple/x/",
        vec![Reply {
            headers: vec![
                ("content-encoding", "gzip".to_owned()),
                ("content-type", "text/html; charset=utf-8".to_owned()),
            ],
            ..ok(&compressed)
        }],
    );
    let fetcher = fetcher(dir.path());
    let doc = fetcher
        .document(&server.url("/simple/x"), "text/html", None)
        .await
        .unwrap();
    assert_eq!(doc.url, server.url("/simple/x/"));
    assert_eq!(
        doc.content_type.as_deref(),
        Some("text/html; charset=utf-8")
    );
    assert_eq!(doc.body, page);

    // The limit holds for the decoded size, however small the compressed one.
    let mut options = options(dir.path());
    options.max_document_bytes = 1000;
    let small = Fetcher::new(options).unwrap();
    assert!(compressed.len() < 1000 && page.len() > 1000);
    let error = small
        .document(&server.url("/simple/x/"), "text/html", None)
        .await
        .unwrap_err();
    assert!(
        matches!(error, FetchError::TooLarge { limit: 1000, .. }),
        "{error:?}"
    );
}

#[test]
fn an_extra_ca_file_must_hold_certificates() {
    let dir = tempfile::tempdir().unwrap();
    let mut options = options(&dir.path().join("cache"));
    options.extra_ca_file = Some(dir.path().join("absent.pem"));
    let error = Fetcher::new(options.clone()).unwrap_err();
    assert!(matches!(error, FetchError::Setup { .. }), "{error:?}");
    assert!(error.to_string().contains("absent.pem"), "{error}");

    let junk = dir.path().join("junk.pem");
    std::fs::write(&junk, b"not a certificate").unwrap();
    options.extra_ca_file = Some(junk);
    assert!(matches!(
        Fetcher::new(options.clone()),
        Err(FetchError::Setup { .. })
    ));

    let system = Path::new("/etc/ssl/certs/ca-certificates.crt");
    if system.is_file() {
        options.extra_ca_file = Some(system.to_path_buf());
        Fetcher::new(options).expect("a real bundle is accepted");
    }
}

#[test]
fn the_default_cache_is_versioned() {
    let root = FetchOptions::default_cache_root();
    if let Some(root) = root {
        assert!(root.ends_with("artifacts-v1"), "{}", root.display());
    }
}

/// Real HTTPS through the system trust store (and `SSL_CERT_FILE`):
/// `cargo test --test fetch -- --ignored`. `CEREBRO_TEST_CA_FILE` names an extra CA file to
/// merge, to check that one works on top of a narrowed `SSL_CERT_FILE`.
#[tokio::test]
#[ignore = "needs the network"]
async fn real_https_uses_the_system_trust_store() {
    let dir = tempfile::tempdir().unwrap();
    let mut options = options(dir.path());
    options.extra_ca_file = std::env::var_os("CEREBRO_TEST_CA_FILE").map(PathBuf::from);
    let fetcher = Fetcher::new(options).unwrap();
    let url = Url::parse("https://pypi.org/simple/six/").unwrap();
    let doc = fetcher
        .document(&url, "application/vnd.pypi.simple.v1+json", None)
        .await
        .expect("pypi.org over HTTPS");
    assert!(String::from_utf8_lossy(&doc.body).contains("six-"));
    let doc = fetcher
        .document(
            &Url::parse("https://registry.npmjs.org/left-pad").unwrap(),
            "application/vnd.npm.install-v1+json",
            None,
        )
        .await
        .expect("registry.npmjs.org over HTTPS");
    let meta: serde_json::Value = serde_json::from_slice(&doc.body).unwrap();
    let dist = &meta["versions"]["1.3.0"]["dist"];
    let expected = Expected::from_integrity(dist["integrity"].as_str().unwrap()).unwrap();
    let tarball = Url::parse(dist["tarball"].as_str().unwrap()).unwrap();
    let artifact = fetcher.artifact(&tarball, &expected, None).await.unwrap();
    assert!(fetcher.read(&artifact).unwrap().len() > 1000);
}
