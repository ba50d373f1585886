//! HTTP: registry metadata and artifact downloads, with retries on transient failures and
//! hash checks, into the [`Cache`].
//!
//! The requests themselves are the guard's ([`cerebro_fetch`]): HTTPS with the system's trust
//! store (so a proxy whose CA the system trusts works), artifacts streamed to a temporary
//! file while hashed and moved into the cache only when complete, within the size limit, and
//! matching the hash the registry published. This module adds the dataset's retry settings
//! and turns each failure into the skip reason its manifest records.

use std::future::Future;
use std::time::Duration;

use reqwest::Url;
use serde_json::Value;

use super::cache::Cache;
use super::human_bytes;
use super::registry::{Expected, SkipReason};
use cerebro_fetch::{FetchError, Http};

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

    /// The skip reason of a failed request; transient as [`FetchError::is_transient`] says.
    fn from_fetch(error: FetchError) -> Failure {
        let reason = match &error {
            FetchError::NotFound { .. } => SkipReason::NotFound,
            FetchError::Status { .. } => SkipReason::HttpError,
            FetchError::HashMismatch { .. } => SkipReason::IntegrityMismatch,
            FetchError::TooLarge { .. } => SkipReason::TooLarge,
            FetchError::Cache { .. } => SkipReason::CacheError,
            FetchError::Unreachable { .. }
            | FetchError::Truncated { .. }
            | FetchError::Setup { .. } => SkipReason::Network,
        };
        Failure {
            reason,
            transient: error.is_transient(),
            detail: error.to_string(),
        }
    }
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
    http: Http,
    settings: Settings,
}

impl Fetcher {
    pub fn new(settings: Settings) -> Result<Fetcher, String> {
        let http = Http::new(
            concat!(
                "cerebro-dataset/",
                env!("CARGO_PKG_VERSION"),
                " (+https://github.com/cerebro; training-data builder)"
            ),
            None,
            settings.connect_timeout,
            settings.read_timeout,
        )
        .map_err(|e| e.to_string())?;
        Ok(Fetcher { http, settings })
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
        let accept = if npm {
            "application/vnd.npm.install-v1+json; q=1.0, application/json; q=0.8"
        } else {
            "application/json"
        };
        let max = self.settings.max_metadata_bytes;
        let document = self
            .http
            .document_once(url, accept, None, max)
            .await
            .map_err(|error| match error {
                FetchError::TooLarge { .. } => Failure::permanent(
                    SkipReason::BadMetadata,
                    format!("metadata at {url} is over {}", human_bytes(max)),
                ),
                other => Failure::from_fetch(other),
            })?;
        serde_json::from_slice(&document.body).map_err(|e| {
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
        self.http
            .download_once(cache, url, expected, None, self.settings.max_bytes)
            .await
            .map(|artifact| Downloaded {
                sha256: artifact.sha256,
                size: artifact.size,
            })
            .map_err(Failure::from_fetch)
    }
}
