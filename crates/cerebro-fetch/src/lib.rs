//! Fetch: downloads artifacts and registry documents over HTTPS with the system trust store,
//! verifies every artifact against the hash its registry published, and keeps it in a
//! content-addressed cache that concurrent guards cannot corrupt.
//!
//! A [`Fetcher`] owns the HTTP clients, the [`Cache`] and a bound on requests in flight. An
//! artifact is looked up in the cache by its expected hash first (no network on a warm run),
//! else downloaded by exactly one process at a time (a lock file per hash), streamed into
//! `tmp/` while hashed, and renamed into `sha256/ab/<hex>` only when whole and matching.
//! Nothing here prints; every failure is a [`FetchError`] whose message names the URL and
//! says what to do.

pub mod cache;
mod http;

use std::io;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

pub use cache::{Cache, Usage};
pub use http::{Http, Pace};
pub use reqwest::Url;

/// Version of the guard's artifact cache layout; a new layout gets a new folder.
pub const CACHE_LAYOUT: &str = CacheBucket::Artifacts.folder();

/// The folders of Cerebro's caches, each in one place so that no two stages pick the same
/// name and a reader can see everything Cerebro keeps. A new layout of a bucket gets a new
/// folder name, so that old and new never mix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheBucket {
    /// Verified downloads by sha256 (this crate's [`Cache`]).
    Artifacts,
    /// The guard's verdicts by artifact hash and model.
    Verdicts,
    /// The guard's resolution memo (what an install resolved to, to skip a second resolution).
    Resolutions,
    /// The training data's downloads (`cerebro-dataset`; its own default root, see there).
    Dataset,
    /// `cerebro audit`'s verdicts by artifact hash and judge, with their reasons' places.
    AuditVerdicts,
}

impl CacheBucket {
    pub const ALL: [CacheBucket; 5] = [
        CacheBucket::Artifacts,
        CacheBucket::Verdicts,
        CacheBucket::Resolutions,
        CacheBucket::Dataset,
        CacheBucket::AuditVerdicts,
    ];

    /// The bucket's folder name inside the cache folder.
    pub const fn folder(self) -> &'static str {
        match self {
            CacheBucket::Artifacts => "artifacts-v1",
            CacheBucket::Verdicts => "verdicts",
            CacheBucket::Resolutions => "resolutions",
            CacheBucket::Dataset => "dataset-v1",
            CacheBucket::AuditVerdicts => "audit-verdicts-v1",
        }
    }

    /// The bucket inside [`cerebro_settings::cache_dir`]; `None` when the system names no home.
    pub fn path(self) -> Option<PathBuf> {
        cerebro_settings::cache_dir().map(|dir| dir.join(self.folder()))
    }
}

const USER_AGENT: &str = concat!("cerebro/", env!("CARGO_PKG_VERSION"));

/// How long to wait for another process that is downloading the same artifact before
/// downloading it too (the rename keeps the cache whole either way; this only bounds the wait
/// on a stuck process).
const LOCK_PATIENCE: Duration = Duration::from_secs(300);

/// The hash a registry publishes for an artifact, checked after download.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expected {
    /// Lowercase hex (PyPI `digests.sha256`, a PEP 503 `#sha256=` fragment).
    Sha256(String),
    /// Raw digest bytes (npm `dist.integrity`, `sha512-…`).
    Sha512(Vec<u8>),
    /// Lowercase hex (npm `dist.shasum`, for packages published before integrity existed).
    Sha1(String),
    /// The registry gave no hash: the artifact is accepted and kept under its sha256.
    Nothing,
}

impl Expected {
    /// Parses npm's Subresource Integrity value (`sha512-<base64>`, possibly a space-separated
    /// list with `?options`), keeping the strongest hash it understands: sha512, then sha256,
    /// then sha1. `None` when no entry is usable (sha384 only, bad base64, wrong length).
    pub fn from_integrity(sri: &str) -> Option<Expected> {
        let mut best: Option<(u8, Expected)> = None;
        for part in sri.split_whitespace() {
            let Some((algo, rest)) = part.split_once('-') else {
                continue;
            };
            let b64 = rest.split('?').next().unwrap_or(rest);
            let engine = &base64::engine::general_purpose::STANDARD;
            let no_pad = &base64::engine::general_purpose::STANDARD_NO_PAD;
            let Ok(bytes) = engine.decode(b64).or_else(|_| no_pad.decode(b64)) else {
                continue;
            };
            let (rank, expected) = match (algo.to_ascii_lowercase().as_str(), bytes.len()) {
                ("sha512", 64) => (3, Expected::Sha512(bytes)),
                ("sha256", 32) => (2, Expected::Sha256(hex(&bytes))),
                ("sha1", 20) => (1, Expected::Sha1(hex(&bytes))),
                _ => continue,
            };
            if best.as_ref().is_none_or(|(r, _)| rank > *r) {
                best = Some((rank, expected));
            }
        }
        best.map(|(_, e)| e)
    }

    /// Parses a PEP 503 URL fragment (`sha256=<hex>`, with or without the `#`). sha512 and
    /// sha1 are understood too; md5 and the rest give `None`, as does a malformed digest.
    pub fn from_fragment(fragment: &str) -> Option<Expected> {
        let fragment = fragment.strip_prefix('#').unwrap_or(fragment);
        let mut best: Option<(u8, Expected)> = None;
        for part in fragment.split('&') {
            let Some((name, value)) = part.split_once('=') else {
                continue;
            };
            let value = value.trim().to_ascii_lowercase();
            let (rank, expected) = match name.trim().to_ascii_lowercase().as_str() {
                "sha512" => match unhex(&value).filter(|b| b.len() == 64) {
                    Some(bytes) => (3, Expected::Sha512(bytes)),
                    None => continue,
                },
                "sha256" if is_sha256_hex(&value) => (2, Expected::Sha256(value)),
                "sha1" if value.len() == 40 && unhex(&value).is_some() => {
                    (1, Expected::Sha1(value))
                }
                _ => continue,
            };
            if best.as_ref().is_none_or(|(r, _)| rank > *r) {
                best = Some((rank, expected));
            }
        }
        best.map(|(_, e)| e)
    }

    /// The hash for people: `sha256 0123456789abcdef…`.
    pub fn describe(&self) -> String {
        match self {
            Expected::Sha256(h) => format!("sha256 {}", short(h)),
            Expected::Sha512(b) => format!("sha512 {}", short(&hex(b))),
            Expected::Sha1(h) => format!("sha1 {}", short(h)),
            Expected::Nothing => "no published hash".to_owned(),
        }
    }

    /// The sha512 in hex, for the cache's alias lookup.
    pub fn sha512_hex(&self) -> Option<String> {
        match self {
            Expected::Sha512(b) => Some(hex(b)),
            _ => None,
        }
    }

    /// The name of this hash's lock in the cache; `None` for a hash that cannot name a file.
    fn lock_key(&self) -> Option<String> {
        match self {
            Expected::Sha256(h) if is_sha256_hex(&h.to_ascii_lowercase()) => {
                Some(format!("sha256-{}", h.to_ascii_lowercase()))
            }
            Expected::Sha512(b) if b.len() == 64 => Some(format!("sha512-{}", hex(b))),
            Expected::Sha1(h) if h.len() == 40 && unhex(h).is_some() => {
                Some(format!("sha1-{}", h.to_ascii_lowercase()))
            }
            _ => None,
        }
    }
}

/// How a [`Fetcher`] talks to registries and where it keeps what it downloads.
#[derive(Debug, Clone)]
pub struct FetchOptions {
    /// The cache folder (see [`FetchOptions::default_cache_root`]).
    pub cache_root: PathBuf,
    /// A PEM bundle of extra CA roots trusted on top of the system's (`PIP_CERT`, npm
    /// `cafile`).
    pub extra_ca_file: Option<PathBuf>,
    /// Largest artifact downloaded, in bytes ([`FetchError::TooLarge`] beyond).
    pub max_bytes: u64,
    /// Largest document read, in bytes, before and after gzip decoding.
    pub max_document_bytes: u64,
    pub connect_timeout: Duration,
    /// Longest wait for the next bytes of a response.
    pub read_timeout: Duration,
    /// How slow a response body may come in all ([`Pace`]: a floor on the rate, a deadline).
    pub pace: Pace,
    /// Retries after the first attempt, on transient failures (network, HTTP 429, 5xx).
    pub retries: u32,
    /// Wait before the first retry; each further retry waits twice as long (at most 30 s).
    pub backoff: Duration,
    /// Requests in flight at once, across all calls on one fetcher and its clones.
    pub concurrency: usize,
}

impl FetchOptions {
    /// Defaults fit for an install: artifacts up to 2 GiB (the largest GPU wheels are near
    /// 1 GB), documents up to 128 MiB (big npm packuments), 3 retries, 8 requests at once.
    pub fn new(cache_root: PathBuf) -> FetchOptions {
        FetchOptions {
            cache_root,
            extra_ca_file: None,
            max_bytes: 2 << 30,
            max_document_bytes: 128 << 20,
            connect_timeout: Duration::from_secs(20),
            read_timeout: Duration::from_secs(60),
            pace: Pace::default(),
            retries: 3,
            backoff: Duration::from_millis(500),
            concurrency: 8,
        }
    }

    /// `$CEREBRO_CACHE_DIR/artifacts-v1` when that is set, else the per-user cache folder's
    /// (`~/.cache/cerebro/artifacts-v1` on Linux). `None` when the system names no home.
    pub fn default_cache_root() -> Option<PathBuf> {
        CacheBucket::Artifacts.path()
    }
}

/// An artifact in the cache, verified when it was stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Artifact {
    /// Lowercase hex.
    pub sha256: String,
    pub size: u64,
    pub path: PathBuf,
}

/// A document as the server sent it (gzip decoded).
#[derive(Debug, Clone)]
pub struct Document {
    /// The final URL, after redirects (relative links resolve against it).
    pub url: Url,
    pub content_type: Option<String>,
    pub body: Vec<u8>,
}

/// Why a fetch failed. Each message is one line naming the URL and saying what to do; `url`
/// is the URL as text with any `user:pass@` removed, so that it can be shown.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// No answer: connection refused or reset, DNS, TLS, timeout (after retries).
    #[error("cannot reach {url}: {detail}; {}", unreachable_hint(detail))]
    Unreachable { url: String, detail: String },

    /// HTTP 404 (or 410).
    #[error(
        "{url} was not found (HTTP 404); check the package name, its version and the index URL"
    )]
    NotFound { url: String },

    /// Any other unsuccessful HTTP status (after retries for 429 and 5xx).
    #[error("{url} answered HTTP {status}; {}", status_hint(*status))]
    Status { url: String, status: u16 },

    /// The bytes do not match the published hash; they were not kept.
    #[error(
        "hash mismatch for {url}: expected {}, got {}; the download was discarded — the \
         registry or a proxy altered it",
        short_digest(expected),
        short_digest(actual)
    )]
    HashMismatch {
        url: String,
        /// `sha512 <hex>`: the algorithm and the whole published digest.
        expected: String,
        /// The same algorithm's digest of what arrived.
        actual: String,
    },

    /// The connection closed before `Content-Length` bytes arrived (after retries).
    #[error(
        "the download of {url} was cut short at {got} of {expected} bytes; try again, or check \
         the proxy if it keeps happening"
    )]
    Truncated {
        url: String,
        expected: u64,
        got: u64,
    },

    /// Larger than [`FetchOptions::max_bytes`] (or `max_document_bytes`); nothing was kept.
    #[error(
        "{url} is over the {} download limit; nothing was kept — raise the limit if this \
         package is known to be that large",
        human_bytes(*limit)
    )]
    TooLarge { url: String, limit: u64 },

    /// The cache folder could not be written.
    #[error(
        "cannot use the download cache at {}: {detail}; check that the folder is writable and \
         the disk has space",
        path.display()
    )]
    Cache { path: PathBuf, detail: String },

    /// The fetcher could not be built or the request could not be made (CA file, URL scheme,
    /// credentials that are not a header value).
    #[error("cannot set up downloads: {detail}")]
    Setup { detail: String },
}

impl FetchError {
    /// Whether trying again might help: network failures, cut-short bodies, HTTP 408, 429
    /// and 5xx.
    pub fn is_transient(&self) -> bool {
        match self {
            FetchError::Unreachable { .. } | FetchError::Truncated { .. } => true,
            FetchError::Status { status, .. } => *status >= 500 || *status == 429 || *status == 408,
            _ => false,
        }
    }
}

fn unreachable_hint(detail: &str) -> &'static str {
    if detail.contains("certificate") {
        "the server's certificate is not trusted: add its CA with SSL_CERT_FILE, or the \
         index's own CA file (pip `cert`, npm `cafile`)"
    } else {
        "check the network connection, the proxy settings and the index URL"
    }
}

fn status_hint(status: u16) -> &'static str {
    match status {
        401 | 407 => "the index wants credentials: check the ones configured for it",
        403 => "access was refused: check the credentials configured for this index",
        429 => "the registry is limiting requests: wait a little and try again",
        500..=599 => "the registry is failing: try again later",
        _ => "check the index URL",
    }
}

/// A clonable handle on the HTTP clients, the cache and the bound on requests in flight.
#[derive(Debug, Clone)]
pub struct Fetcher {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    http: Http,
    cache: Cache,
    options: FetchOptions,
    permits: Semaphore,
}

impl Fetcher {
    /// Opens the cache (removing temporary files of dead runs) and builds the HTTPS clients.
    pub fn new(options: FetchOptions) -> Result<Fetcher, FetchError> {
        let cache = Cache::open(&options.cache_root).map_err(|e| FetchError::Cache {
            path: options.cache_root.clone(),
            detail: e.to_string(),
        })?;
        let http = Http::new(
            USER_AGENT,
            options.extra_ca_file.as_deref(),
            options.connect_timeout,
            options.read_timeout,
        )?
        .with_pace(options.pace);
        let permits = Semaphore::new(options.concurrency.clamp(1, Semaphore::MAX_PERMITS));
        Ok(Fetcher {
            inner: Arc::new(Inner {
                http,
                cache,
                options,
                permits,
            }),
        })
    }

    pub fn options(&self) -> &FetchOptions {
        &self.inner.options
    }

    pub fn cache(&self) -> &Cache {
        &self.inner.cache
    }

    /// The cached artifact with this hash, without any request: a sha256 names the file, a
    /// sha512 or sha1 is found through the alias a verified download recorded.
    pub fn cached(&self, expected: &Expected) -> Option<Artifact> {
        let cache = &self.inner.cache;
        let sha256 = match expected {
            Expected::Sha256(h) => Some(h.to_ascii_lowercase()),
            Expected::Sha512(b) => cache.sha256_for_sha512(&hex(b)),
            Expected::Sha1(h) => cache.sha256_for_sha1(&h.to_ascii_lowercase()),
            Expected::Nothing => None,
        }?;
        let size = cache.size_of(&sha256)?;
        Some(Artifact {
            path: cache.path_of(&sha256),
            sha256,
            size,
        })
    }

    /// The artifact at `url`, from the cache when its hash is there, else downloaded and
    /// verified. `auth` is a whole `Authorization` value; without it a `user:pass@` in the
    /// URL is sent as basic auth. Credentials are never sent to another host a redirect
    /// leads to. While one process downloads an artifact, others asking for the same hash
    /// wait for it and then take it from the cache.
    pub async fn artifact(
        &self,
        url: &Url,
        expected: &Expected,
        auth: Option<&str>,
    ) -> Result<Artifact, FetchError> {
        if let Some(artifact) = self.cached(expected) {
            return Ok(artifact);
        }
        // The permit is taken before the lock, so that a lock holder never waits for a
        // permit (no deadlock between tasks of one process).
        let _permit = self.permit().await?;
        let _lock = match expected.lock_key() {
            Some(key) => self.lock(&key).await?,
            None => None,
        };
        if let Some(artifact) = self.cached(expected) {
            return Ok(artifact);
        }
        let options = &self.inner.options;
        http::retrying(options.retries, options.backoff, || {
            self.inner
                .http
                .download_once(&self.inner.cache, url, expected, auth, options.max_bytes)
        })
        .await
    }

    /// Many artifacts at once, at most [`FetchOptions::concurrency`] downloads in flight;
    /// the results come in the order of `requests`. Dropping the future aborts the downloads
    /// (their temporary files are removed).
    pub async fn artifacts(
        &self,
        requests: Vec<(Url, Expected, Option<String>)>,
    ) -> Vec<Result<Artifact, FetchError>> {
        let count = requests.len();
        let mut tasks = JoinSet::new();
        for (i, (url, expected, auth)) in requests.into_iter().enumerate() {
            let fetcher = self.clone();
            tasks.spawn(async move {
                let result = fetcher.artifact(&url, &expected, auth.as_deref()).await;
                (i, result)
            });
        }
        let mut results: Vec<Option<Result<Artifact, FetchError>>> =
            (0..count).map(|_| None).collect();
        while let Some(joined) = tasks.join_next().await {
            if let Ok((i, result)) = joined {
                results[i] = Some(result);
            }
        }
        results
            .into_iter()
            .map(|r| {
                r.unwrap_or_else(|| {
                    Err(FetchError::Setup {
                        detail: "internal error: a download task stopped".to_owned(),
                    })
                })
            })
            .collect()
    }

    /// A registry document (index page, packument), at most
    /// [`FetchOptions::max_document_bytes`], with retries. `accept` is the `Accept` header.
    pub async fn document(
        &self,
        url: &Url,
        accept: &str,
        auth: Option<&str>,
    ) -> Result<Document, FetchError> {
        let _permit = self.permit().await?;
        let options = &self.inner.options;
        http::retrying(options.retries, options.backoff, || {
            self.inner
                .http
                .document_once(url, accept, auth, options.max_document_bytes)
        })
        .await
    }

    /// The bytes of a cached artifact, re-hashed: a file altered on disk since it was
    /// verified is an error, never served, and is removed from the cache so that the next
    /// fetch downloads it again.
    pub fn read(&self, artifact: &Artifact) -> io::Result<Vec<u8>> {
        let path = &artifact.path;
        let ours =
            is_sha256_hex(&artifact.sha256) && *path == self.inner.cache.path_of(&artifact.sha256);
        let altered = |why: String| {
            if ours {
                let _ = std::fs::remove_file(path);
            }
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "{} was altered on disk ({why}){}",
                    path.display(),
                    if ours {
                        "; it was removed from the cache, fetch it again"
                    } else {
                        ""
                    }
                ),
            )
        };
        let size = std::fs::metadata(path)?.len();
        if size != artifact.size {
            return Err(altered(format!(
                "{size} bytes, verified at {}",
                artifact.size
            )));
        }
        let bytes = std::fs::read(path)?;
        let actual = sha256_hex(&bytes);
        if !actual.eq_ignore_ascii_case(&artifact.sha256) {
            return Err(altered(format!(
                "sha256 {}, verified as {}",
                short(&actual),
                short(&artifact.sha256)
            )));
        }
        Ok(bytes)
    }

    async fn permit(&self) -> Result<tokio::sync::SemaphorePermit<'_>, FetchError> {
        self.inner
            .permits
            .acquire()
            .await
            .map_err(|_| FetchError::Setup {
                detail: "internal error: the download queue was closed".to_owned(),
            })
    }

    /// Waits for the lock of `key`, polling (so that a dropped future stops waiting at
    /// once). `None` after [`LOCK_PATIENCE`]: the holder seems stuck, and downloading
    /// alongside it is safe.
    async fn lock(&self, key: &str) -> Result<Option<cache::CacheLock>, FetchError> {
        let start = Instant::now();
        let mut wait = Duration::from_millis(10);
        loop {
            match self.inner.cache.try_lock(key) {
                Ok(Some(lock)) => return Ok(Some(lock)),
                Ok(None) if start.elapsed() < LOCK_PATIENCE => {
                    tokio::time::sleep(wait).await;
                    wait = (wait * 2).min(Duration::from_millis(200));
                }
                Ok(None) => return Ok(None),
                Err(e) => {
                    return Err(FetchError::Cache {
                        path: self.inner.cache.root().join("locks"),
                        detail: e.to_string(),
                    })
                }
            }
        }
    }
}

/// `url` without its `user:pass@`, for messages and for requests whose credentials travel
/// in a header.
pub(crate) fn redact(url: &Url) -> Url {
    let mut url = url.clone();
    let _ = url.set_username("");
    let _ = url.set_password(None);
    url
}

/// `url` as text for messages, without its `user:pass@`.
pub(crate) fn shown(url: &Url) -> String {
    redact(url).into()
}

/// Lowercase hexadecimal of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(DIGITS[(b >> 4) as usize] as char);
        out.push(DIGITS[(b & 15) as usize] as char);
    }
    out
}

/// The bytes of an even-length hex string (either case).
fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    s.as_bytes()
        .chunks(2)
        .map(|pair| u8::from_str_radix(std::str::from_utf8(pair).ok()?, 16).ok())
        .collect()
}

/// Whether `s` is a sha256 in lowercase hex (64 digits), safe to use as a file name.
pub fn is_sha256_hex(s: &str) -> bool {
    s.len() == 64
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// The sha256 of `bytes`, in lowercase hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex(&sha2::Sha256::digest(bytes))
}

/// A byte count for people: `1.2 GB`, `340.5 MB`, `12 kB` (decimal units, as registries use).
pub fn human_bytes(bytes: u64) -> String {
    const UNITS: [(u64, &str); 3] = [(1_000_000_000, "GB"), (1_000_000, "MB"), (1_000, "kB")];
    for (unit, name) in UNITS {
        if bytes >= unit {
            return format!("{:.1} {name}", bytes as f64 / unit as f64);
        }
    }
    format!("{bytes} bytes")
}

/// The first 16 digits of a digest, enough to tell two apart in a message.
fn short(hex: &str) -> String {
    match hex.get(..16) {
        Some(head) if hex.len() > 16 => format!("{head}…"),
        _ => hex.to_owned(),
    }
}

/// `sha512 <hex>` with the digest shortened.
fn short_digest(text: &str) -> String {
    match text.split_once(' ') {
        Some((algo, digest)) => format!("{algo} {}", short(digest)),
        None => short(text),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn cache_buckets_have_distinct_folders() {
        let mut names: Vec<&str> = super::CacheBucket::ALL.iter().map(|b| b.folder()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), super::CacheBucket::ALL.len());
    }

    use super::*;

    fn b64(bytes: &[u8]) -> String {
        base64::engine::general_purpose::STANDARD.encode(bytes)
    }

    #[test]
    fn integrity_takes_the_strongest_usable_hash() {
        let sha512 = [7u8; 64];
        let sha1 = [9u8; 20];
        assert_eq!(
            Expected::from_integrity(&format!("sha512-{}", b64(&sha512))),
            Some(Expected::Sha512(sha512.to_vec()))
        );
        assert_eq!(
            Expected::from_integrity(&format!("sha1-{} sha512-{}?opt", b64(&sha1), b64(&sha512))),
            Some(Expected::Sha512(sha512.to_vec()))
        );
        assert_eq!(
            Expected::from_integrity(&format!("sha1-{}", b64(&sha1))),
            Some(Expected::Sha1("09".repeat(20)))
        );
        assert_eq!(
            Expected::from_integrity(&format!("sha256-{}", b64(&[1u8; 32]))),
            Some(Expected::Sha256("01".repeat(32)))
        );
        // Unpadded base64 is accepted too.
        let unpadded = b64(&sha512).trim_end_matches('=').to_owned();
        assert_eq!(
            Expected::from_integrity(&format!("sha512-{unpadded}")),
            Some(Expected::Sha512(sha512.to_vec()))
        );
        // A bad entry is skipped, not fatal.
        assert_eq!(
            Expected::from_integrity(&format!("sha512-!!! sha1-{}", b64(&sha1))),
            Some(Expected::Sha1("09".repeat(20)))
        );
        assert_eq!(
            Expected::from_integrity(&format!("sha384-{}", b64(&[0; 48]))),
            None
        );
        assert_eq!(
            Expected::from_integrity(&format!("sha512-{}", b64(&[0; 32]))),
            None
        );
        assert_eq!(Expected::from_integrity(""), None);
        assert_eq!(Expected::from_integrity("nonsense"), None);
    }

    #[test]
    fn fragments_follow_pep_503() {
        let h = "AB".repeat(32);
        assert_eq!(
            Expected::from_fragment(&format!("sha256={h}")),
            Some(Expected::Sha256(h.to_ascii_lowercase()))
        );
        assert_eq!(
            Expected::from_fragment(&format!("#sha256={h}")),
            Some(Expected::Sha256(h.to_ascii_lowercase()))
        );
        assert_eq!(
            Expected::from_fragment(&format!("sha512={}", "cd".repeat(64))),
            Some(Expected::Sha512(vec![0xcd; 64]))
        );
        assert_eq!(
            Expected::from_fragment(&format!("sha1={}", "ef".repeat(20))),
            Some(Expected::Sha1("ef".repeat(20)))
        );
        assert_eq!(
            Expected::from_fragment(&format!("md5={}", "0".repeat(32))),
            None
        );
        assert_eq!(Expected::from_fragment("sha256=abc"), None);
        assert_eq!(Expected::from_fragment("sha256=../../etc"), None);
        assert_eq!(Expected::from_fragment("egg=x"), None);
        assert_eq!(Expected::from_fragment(""), None);
    }

    #[test]
    fn descriptions_and_messages_are_short() {
        assert_eq!(
            Expected::Sha256("0123456789abcdef0123".into()).describe(),
            "sha256 0123456789abcdef…"
        );
        assert_eq!(Expected::Nothing.describe(), "no published hash");
        let url = Url::parse("https://user:secret@registry.example/x.tgz").unwrap();
        let error = FetchError::HashMismatch {
            url: shown(&url),
            expected: format!("sha512 {}", "ab".repeat(64)),
            actual: format!("sha512 {}", "cd".repeat(64)),
        };
        let text = error.to_string();
        assert_eq!(
            text,
            "hash mismatch for https://registry.example/x.tgz: expected sha512 abababababababab…, \
             got sha512 cdcdcdcdcdcdcdcd…; the download was discarded — the registry or a proxy \
             altered it"
        );
        assert!(!text.contains("secret"));
        assert!(!text.contains('\n'));
    }

    #[test]
    fn transient_failures_are_the_retryable_ones() {
        let url = "https://r.example/x".to_owned();
        let status = |status| FetchError::Status {
            url: url.clone(),
            status,
        };
        assert!(status(503).is_transient());
        assert!(status(429).is_transient());
        assert!(!status(403).is_transient());
        assert!(!FetchError::NotFound { url: url.clone() }.is_transient());
    }

    #[test]
    fn hex_helpers() {
        assert_eq!(hex(&[0, 0xab, 0xff]), "00abff");
        assert_eq!(unhex("00abFF"), Some(vec![0, 0xab, 0xff]));
        assert_eq!(unhex("0g"), None);
        assert_eq!(unhex("abc"), None);
        assert_eq!(unhex("+a"), None);
        assert!(is_sha256_hex(&sha256_hex(b"")));
        assert_eq!(human_bytes(2 << 30), "2.1 GB");
    }
}
