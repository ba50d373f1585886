//! HTTP: registry metadata and artifact downloads, with retries on transient failures and
//! hash checks, into the [`Cache`].
//!
//! HTTPS uses the system's trust store (so a proxy whose CA the system trusts works). A
//! download streams to a temporary file while it is hashed; it is moved into the cache only
//! when complete, within the size limit, and matching the hash the registry published.

use std::future::Future;
use std::io::Write as _;
use std::time::Duration;

use reqwest::{StatusCode, Url};
use serde_json::Value;
use sha1::Digest as _;

use super::cache::Cache;
use super::hex;
use super::human_bytes;
use super::registry::{Expected, SkipReason};

/// How to talk to the registries.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Retries after the first attempt, on transient failures (network, HTTP 429 and 5xx).
    pub retries: u32,
    /// Wait before the first retry; each further retry waits twice as long.
    pub backoff: Duration,
    /// Largest artifact kept, in bytes.
    pub max_bytes: u64,
    /// Largest metadata document read, in bytes.
    pub max_metadata_bytes: u64,
    pub connect_timeout: Duration,
    /// Longest wait for the next bytes of a response.
    pub read_timeout: Duration,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            retries: 3,
            backoff: Duration::from_secs(1),
            max_bytes: 25_000_000,
            max_metadata_bytes: 128_000_000,
            connect_timeout: Duration::from_secs(20),
            read_timeout: Duration::from_secs(60),
        }
    }
}

/// Why a request failed: a skip reason, and whether trying again might help.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub reason: SkipReason,
    pub detail: String,
    pub transient: bool,
}

impl Failure {
    fn permanent(reason: SkipReason, detail: impl Into<String>) -> Failure {
        Failure {
            reason,
            detail: detail.into(),
            transient: false,
        }
    }

    fn network(error: &reqwest::Error) -> Failure {
        Failure {
            reason: SkipReason::Network,
            detail: error_chain(error),
            transient: !error.is_builder(),
        }
    }

    fn status(status: StatusCode, url: &Url) -> Failure {
        if status == StatusCode::NOT_FOUND {
            return Failure::permanent(SkipReason::NotFound, format!("HTTP 404 from {url}"));
        }
        Failure {
            reason: SkipReason::HttpError,
            detail: format!("HTTP {} from {url}", status.as_u16()),
            transient: status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS,
        }
    }

    fn cache(error: std::io::Error) -> Failure {
        Failure::permanent(
            SkipReason::CacheError,
            format!("cannot write the cache: {error}"),
        )
    }
}

/// One line for an error and its causes.
fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut cause = error.source();
    while let Some(inner) = cause {
        let line = inner.to_string();
        if !text.contains(&line) {
            text.push_str(": ");
            text.push_str(&line);
        }
        cause = inner.source();
    }
    text
}

/// What a completed download left in the cache.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Downloaded {
    pub sha256: String,
    pub size: u64,
}

/// An HTTP client for registries, with the retry policy.
#[derive(Debug, Clone)]
pub struct Fetcher {
    client: reqwest::Client,
    settings: Settings,
}

impl Fetcher {
    pub fn new(settings: Settings) -> Result<Fetcher, String> {
        let client = reqwest::Client::builder()
            .user_agent(concat!(
                "cerebro-dataset/",
                env!("CARGO_PKG_VERSION"),
                " (+https://github.com/cerebro; training-data builder)"
            ))
            .connect_timeout(settings.connect_timeout)
            .read_timeout(settings.read_timeout)
            .build()
            .map_err(|e| format!("cannot set up HTTPS: {}", error_chain(&e)))?;
        Ok(Fetcher { client, settings })
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// Runs `op` until it succeeds, fails for good, or has been retried
    /// [`Settings::retries`] times, waiting longer before each retry.
    pub async fn retrying<T, F, Fut>(&self, mut op: F) -> Result<T, Failure>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, Failure>>,
    {
        let mut attempt = 0u32;
        loop {
            match op().await {
                Ok(value) => return Ok(value),
                Err(failure) if failure.transient && attempt < self.settings.retries => {
                    let wait = self.settings.backoff.saturating_mul(1 << attempt.min(16));
                    tokio::time::sleep(wait).await;
                    attempt += 1;
                }
                Err(mut failure) => {
                    if attempt > 0 {
                        failure.detail =
                            format!("{} (after {} attempts)", failure.detail, attempt + 1);
                    }
                    return Err(failure);
                }
            }
        }
    }

    /// Fetches and parses a JSON document (one attempt). `npm` asks for the abbreviated
    /// packument, which holds all this tool reads at a fraction of the size.
    pub async fn get_json(&self, url: &Url, npm: bool) -> Result<Value, Failure> {
        let mut request = self.client.get(url.clone());
        request = request.header(
            reqwest::header::ACCEPT,
            if npm {
                "application/vnd.npm.install-v1+json; q=1.0, application/json; q=0.8"
            } else {
                "application/json"
            },
        );
        let mut response = request.send().await.map_err(|e| Failure::network(&e))?;
        if !response.status().is_success() {
            return Err(Failure::status(response.status(), url));
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|e| Failure::network(&e))? {
            body.extend_from_slice(&chunk);
            if body.len() as u64 > self.settings.max_metadata_bytes {
                return Err(Failure::permanent(
                    SkipReason::BadMetadata,
                    format!(
                        "metadata at {url} is over {}",
                        human_bytes(self.settings.max_metadata_bytes)
                    ),
                ));
            }
        }
        serde_json::from_slice(&body).map_err(|e| {
            Failure::permanent(
                SkipReason::BadMetadata,
                format!("metadata at {url} is not JSON: {e}"),
            )
        })
    }

    /// Downloads `url` into the cache (one attempt), checking the size limit and `expected`.
    /// Nothing is left in the cache unless every check passed.
    pub async fn download(
        &self,
        url: &Url,
        cache: &Cache,
        expected: &Expected,
    ) -> Result<Downloaded, Failure> {
        let max = self.settings.max_bytes;
        let too_large = |size: u64| {
            Failure::permanent(
                SkipReason::TooLarge,
                format!(
                    "{url} is {}, over the {} limit",
                    human_bytes(size),
                    human_bytes(max)
                ),
            )
        };
        let mut response = self
            .client
            .get(url.clone())
            .send()
            .await
            .map_err(|e| Failure::network(&e))?;
        if !response.status().is_success() {
            return Err(Failure::status(response.status(), url));
        }
        if let Some(len) = response.content_length().filter(|&l| l > max) {
            return Err(too_large(len));
        }
        let mut temp = cache.temp().map_err(Failure::cache)?;
        let mut sha256 = sha2::Sha256::new();
        let mut sha512 = matches!(expected, Expected::Sha512(_)).then(sha2::Sha512::new);
        let mut sha1 = matches!(expected, Expected::Sha1(_)).then(sha1::Sha1::new);
        let mut size = 0u64;
        while let Some(chunk) = response.chunk().await.map_err(|e| Failure::network(&e))? {
            size += chunk.len() as u64;
            if size > max {
                return Err(too_large(size));
            }
            sha256.update(&chunk);
            if let Some(h) = &mut sha512 {
                h.update(&chunk);
            }
            if let Some(h) = &mut sha1 {
                h.update(&chunk);
            }
            temp.write_all(&chunk).map_err(Failure::cache)?;
        }
        let sha256 = hex(&sha256.finalize());
        let mismatch = |what: &str, want: &str, got: &str| {
            Failure::permanent(
                SkipReason::IntegrityMismatch,
                format!("{url}: {what} is {got}, the registry says {want}"),
            )
        };
        match expected {
            Expected::Sha256(want) if *want != sha256 => {
                return Err(mismatch("sha256", want, &sha256))
            }
            Expected::Sha512(want) => {
                let got = sha512.map(|h| h.finalize().to_vec()).unwrap_or_default();
                if got != *want {
                    return Err(mismatch("sha512", &hex(want), &hex(&got)));
                }
            }
            Expected::Sha1(want) => {
                let got = sha1.map(|h| hex(&h.finalize())).unwrap_or_default();
                if got != *want {
                    return Err(mismatch("sha1", want, &got));
                }
            }
            _ => {}
        }
        cache.persist(temp, &sha256).map_err(Failure::cache)?;
        if let Some(sha512) = expected.sha512_hex() {
            cache
                .record_sha512(&sha512, &sha256)
                .map_err(Failure::cache)?;
        }
        Ok(Downloaded { sha256, size })
    }
}
