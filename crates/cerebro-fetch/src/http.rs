//! HTTP: one attempt at a document or an artifact, and the retry loop around attempts.
//!
//! HTTPS is verified by rustls against the system trust store through
//! rustls-platform-verifier (on Linux the roots come from `SSL_CERT_FILE` / `SSL_CERT_DIR`
//! when set, else the distribution's bundle), plus the roots of an extra CA file when one is
//! given. Artifacts are downloaded without any `Content-Encoding` decoding, so that the bytes
//! hashed are the bytes the registry published; documents ask for gzip and are decoded here,
//! under the size cap.

use std::future::Future;
use std::io::{Read as _, Write as _};
use std::path::Path;
use std::time::Duration;

use reqwest::header::{HeaderValue, ACCEPT, ACCEPT_ENCODING, AUTHORIZATION, CONTENT_ENCODING};
use reqwest::{StatusCode, Url};
use sha2::Digest as _;

use super::cache::Cache;
use super::{hex, redact, shown, Artifact, Document, Expected, FetchError};

/// The HTTP clients of one fetcher.
#[derive(Debug, Clone)]
pub struct Http {
    /// For everything but loopback: honours the `HTTPS_PROXY` / `NO_PROXY` family.
    proxied: reqwest::Client,
    /// For `127.0.0.1`, `::1` and `localhost`, which must never be sent to a proxy (a guard
    /// index or a test server listens there).
    direct: reqwest::Client,
    /// How slow a response body may come.
    pace: Pace,
}

/// How slow a registry may send a response body before the request counts as failed: a
/// read timeout alone lets a server that sends a byte a second hold an install for ever.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pace {
    /// Lowest average rate, in bytes a second, once `grace` has passed.
    pub min_bytes_per_second: u64,
    /// How long a body may come slower than that (a cold CDN, a slow start).
    pub grace: Duration,
    /// Longest a request may take, whatever its rate.
    pub deadline: Duration,
}

impl Default for Pace {
    /// 4 KiB/s after 30 s, one hour at most: a 1 GB wheel over a 3 Mbit/s link still comes.
    fn default() -> Pace {
        Pace {
            min_bytes_per_second: 4 << 10,
            grace: Duration::from_secs(30),
            deadline: Duration::from_secs(3600),
        }
    }
}

/// The pace of one response body (see [`Pace`]).
struct Paced {
    pace: Pace,
    started: std::time::Instant,
}

impl Paced {
    fn start(pace: Pace) -> Paced {
        Paced {
            pace,
            started: std::time::Instant::now(),
        }
    }

    /// `next` (the next chunk of a body of which `received` bytes came), or why the body
    /// comes too slowly.
    async fn chunk<F: std::future::Future>(
        &self,
        url: &Url,
        next: F,
        received: u64,
    ) -> Result<F::Output, FetchError> {
        let elapsed = self.started.elapsed();
        let slow = |detail: String| FetchError::Unreachable {
            url: shown(url),
            detail,
        };
        if elapsed > self.pace.grace
            && (received as f64) < self.pace.min_bytes_per_second as f64 * elapsed.as_secs_f64()
        {
            return Err(slow(format!(
                "the server sent {received} bytes in {:.0} s, under the floor of {} bytes a second",
                elapsed.as_secs_f64(),
                self.pace.min_bytes_per_second
            )));
        }
        let left = self.pace.deadline.saturating_sub(elapsed);
        tokio::time::timeout(left, next).await.map_err(|_| {
            slow(format!(
                "the response took longer than {} s",
                self.pace.deadline.as_secs()
            ))
        })
    }
}

impl Http {
    pub fn new(
        user_agent: &str,
        extra_ca_file: Option<&Path>,
        connect_timeout: Duration,
        read_timeout: Duration,
    ) -> Result<Http, FetchError> {
        let extra = match extra_ca_file {
            Some(path) => {
                let pem = std::fs::read(path).map_err(|e| FetchError::Setup {
                    detail: format!("cannot read the CA file {}: {e}", path.display()),
                })?;
                let certs =
                    reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| FetchError::Setup {
                        detail: format!(
                            "the CA file {} is not a PEM bundle: {}",
                            path.display(),
                            error_chain(&e)
                        ),
                    })?;
                if certs.is_empty() {
                    return Err(FetchError::Setup {
                        detail: format!("the CA file {} holds no certificate", path.display()),
                    });
                }
                certs
            }
            None => Vec::new(),
        };
        let build = |direct: bool| {
            let mut builder = reqwest::Client::builder()
                .user_agent(user_agent)
                .connect_timeout(connect_timeout)
                .read_timeout(read_timeout)
                .no_gzip()
                // Extra roots are merged with the platform's; an empty list changes nothing.
                .tls_certs_merge(extra.iter().cloned());
            if direct {
                builder = builder.no_proxy();
            }
            builder.build().map_err(|e| FetchError::Setup {
                detail: format!("cannot set up HTTPS: {}", error_chain(&e)),
            })
        };
        Ok(Http {
            proxied: build(false)?,
            direct: build(true)?,
            pace: Pace::default(),
        })
    }

    /// The same clients, with another [`Pace`] for response bodies.
    pub fn with_pace(mut self, pace: Pace) -> Http {
        self.pace = pace;
        self
    }

    /// Sends a GET for `url` with `auth` (a whole `Authorization` value) or, without it, the
    /// URL's own `user:pass@` as basic auth. reqwest drops `Authorization` when a redirect
    /// leaves the host, port or scheme, so credentials never reach another server.
    async fn get(
        &self,
        url: &Url,
        accept: Option<&str>,
        accept_gzip: bool,
        auth: Option<&str>,
    ) -> Result<reqwest::Response, FetchError> {
        if !matches!(url.scheme(), "http" | "https") {
            return Err(FetchError::Setup {
                detail: format!("cannot fetch {}: only http and https URLs", redact(url)),
            });
        }
        let client = if is_loopback(url) {
            &self.direct
        } else {
            &self.proxied
        };
        let mut request = match auth {
            Some(auth) => {
                let mut value = HeaderValue::from_str(auth).map_err(|_| FetchError::Setup {
                    detail: format!(
                        "the credentials for {} are not a valid Authorization header",
                        redact(url)
                    ),
                })?;
                value.set_sensitive(true);
                // The explicit value replaces any `user:pass@` of the URL.
                client.get(redact(url)).header(AUTHORIZATION, value)
            }
            // reqwest turns `user:pass@` into basic auth and takes it out of the URL.
            None => client.get(url.clone()),
        };
        if let Some(accept) = accept {
            request = request.header(ACCEPT, accept);
        }
        if accept_gzip {
            request = request.header(ACCEPT_ENCODING, "gzip");
        }
        let response = request.send().await.map_err(|e| request_error(url, e))?;
        let status = response.status();
        if status.is_success() {
            return Ok(response);
        }
        let url = shown(url);
        if status == StatusCode::NOT_FOUND || status == StatusCode::GONE {
            return Err(FetchError::NotFound { url });
        }
        Err(FetchError::Status {
            url,
            status: status.as_u16(),
        })
    }

    /// One attempt at a document: at most `max_bytes`, before and after gzip decoding.
    pub async fn document_once(
        &self,
        url: &Url,
        accept: &str,
        auth: Option<&str>,
        max_bytes: u64,
    ) -> Result<Document, FetchError> {
        let mut response = self.get(url, Some(accept), true, auth).await?;
        let too_large = || FetchError::TooLarge {
            url: shown(url),
            limit: max_bytes,
        };
        let declared = response.content_length();
        if declared.is_some_and(|len| len > max_bytes) {
            return Err(too_large());
        }
        let final_url = response.url().clone();
        let header = |name| {
            response
                .headers()
                .get(name)
                .and_then(|v: &HeaderValue| v.to_str().ok())
                .map(|v| v.trim().to_owned())
        };
        let content_type = header(reqwest::header::CONTENT_TYPE);
        let encoding = header(CONTENT_ENCODING)
            .unwrap_or_default()
            .to_ascii_lowercase();
        let mut body = Vec::new();
        let paced = Paced::start(self.pace);
        loop {
            match paced
                .chunk(url, response.chunk(), body.len() as u64)
                .await?
            {
                Ok(Some(chunk)) => {
                    body.extend_from_slice(&chunk);
                    if body.len() as u64 > max_bytes {
                        return Err(too_large());
                    }
                }
                Ok(None) => break,
                Err(e) => return Err(body_error(url, e, declared, body.len() as u64)),
            }
        }
        check_length(url, declared, body.len() as u64)?;
        let body = match encoding.as_str() {
            "" | "identity" => body,
            "gzip" | "x-gzip" => {
                let mut decoded = Vec::new();
                flate2::read::MultiGzDecoder::new(&body[..])
                    .take(max_bytes.saturating_add(1))
                    .read_to_end(&mut decoded)
                    .map_err(|e| FetchError::Unreachable {
                        url: shown(url),
                        detail: format!("the gzip body is corrupt: {e}"),
                    })?;
                if decoded.len() as u64 > max_bytes {
                    return Err(too_large());
                }
                decoded
            }
            other => {
                return Err(FetchError::Unreachable {
                    url: shown(url),
                    detail: format!("the server sent an unsupported Content-Encoding {other:?}"),
                })
            }
        };
        Ok(Document {
            url: final_url,
            content_type,
            body,
        })
    }

    /// One attempt at an artifact: streamed into a temporary file of `cache` while hashed,
    /// capped at `max_bytes`, checked against the declared length and `expected`, and only
    /// then renamed into place (with alias files for a sha512 or sha1). On any error nothing
    /// is left in the cache.
    pub async fn download_once(
        &self,
        cache: &Cache,
        url: &Url,
        expected: &Expected,
        auth: Option<&str>,
        max_bytes: u64,
    ) -> Result<Artifact, FetchError> {
        let mut response = self.get(url, None, false, auth).await?;
        let too_large = || FetchError::TooLarge {
            url: shown(url),
            limit: max_bytes,
        };
        let declared = response.content_length();
        if declared.is_some_and(|len| len > max_bytes) {
            return Err(too_large());
        }
        let tmp_dir = cache.root().join("tmp");
        let cache_error = |e: std::io::Error| FetchError::Cache {
            path: tmp_dir.clone(),
            detail: e.to_string(),
        };
        let mut temp = cache.temp().map_err(cache_error)?;
        let mut sha256 = sha2::Sha256::new();
        let mut sha512 = matches!(expected, Expected::Sha512(_)).then(sha2::Sha512::new);
        let mut sha1 = matches!(expected, Expected::Sha1(_)).then(sha1::Sha1::new);
        let mut size = 0u64;
        let paced = Paced::start(self.pace);
        loop {
            let chunk = match paced.chunk(url, response.chunk(), size).await? {
                Ok(Some(chunk)) => chunk,
                Ok(None) => break,
                Err(e) => return Err(body_error(url, e, declared, size)),
            };
            size += chunk.len() as u64;
            if size > max_bytes {
                return Err(too_large());
            }
            sha256.update(&chunk);
            if let Some(h) = &mut sha512 {
                h.update(&chunk);
            }
            if let Some(h) = &mut sha1 {
                h.update(&chunk);
            }
            temp.write_all(&chunk).map_err(cache_error)?;
        }
        check_length(url, declared, size)?;
        let sha256 = hex(&sha256.finalize());
        let mismatch = |want: String, got: String| FetchError::HashMismatch {
            url: shown(url),
            expected: want,
            actual: got,
        };
        match expected {
            Expected::Sha256(want) if !want.eq_ignore_ascii_case(&sha256) => {
                return Err(mismatch(
                    format!("sha256 {}", want.to_ascii_lowercase()),
                    format!("sha256 {sha256}"),
                ));
            }
            Expected::Sha512(want) => {
                let got = sha512.map(|h| h.finalize().to_vec()).unwrap_or_default();
                if got != *want {
                    return Err(mismatch(
                        format!("sha512 {}", hex(want)),
                        format!("sha512 {}", hex(&got)),
                    ));
                }
            }
            Expected::Sha1(want) => {
                let got = sha1.map(|h| hex(&h.finalize())).unwrap_or_default();
                if !want.eq_ignore_ascii_case(&got) {
                    return Err(mismatch(
                        format!("sha1 {}", want.to_ascii_lowercase()),
                        format!("sha1 {got}"),
                    ));
                }
            }
            _ => {}
        }
        let dest = cache.path_of(&sha256);
        let at = |path: &Path| {
            let path = path.to_path_buf();
            move |e: std::io::Error| FetchError::Cache {
                path,
                detail: e.to_string(),
            }
        };
        let path = cache.persist(temp, &sha256).map_err(at(&dest))?;
        match expected {
            Expected::Sha512(want) => cache
                .record_sha512(&hex(want), &sha256)
                .map_err(at(cache.root()))?,
            Expected::Sha1(want) => cache
                .record_sha1(&want.to_ascii_lowercase(), &sha256)
                .map_err(at(cache.root()))?,
            _ => {}
        }
        Ok(Artifact { sha256, size, path })
    }
}

/// Runs `op` until it succeeds, fails for good, or has been retried `retries` times, waiting
/// `backoff`, then twice as long, and so on (at most 30 s) between attempts.
pub async fn retrying<T, F, Fut>(
    retries: u32,
    backoff: Duration,
    mut op: F,
) -> Result<T, FetchError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, FetchError>>,
{
    let mut attempt = 0u32;
    loop {
        match op().await {
            Err(error) if error.is_transient() && attempt < retries => {
                let wait = backoff
                    .saturating_mul(1 << attempt.min(16))
                    .min(Duration::from_secs(30));
                tokio::time::sleep(wait).await;
                attempt += 1;
            }
            result => return result,
        }
    }
}

/// Whether `url` names this machine: `localhost` or a loopback address.
fn is_loopback(url: &Url) -> bool {
    let Some(host) = url.host_str() else {
        return false;
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// A body cut short of its `Content-Length` is [`FetchError::Truncated`].
fn check_length(url: &Url, declared: Option<u64>, got: u64) -> Result<(), FetchError> {
    match declared {
        Some(expected) if got < expected => Err(FetchError::Truncated {
            url: shown(url),
            expected,
            got,
        }),
        _ => Ok(()),
    }
}

/// A failure while reading the body: the connection closed before `Content-Length` bytes
/// came is [`FetchError::Truncated`], anything else (a reset, a timeout) is unreachable.
fn body_error(url: &Url, error: reqwest::Error, declared: Option<u64>, got: u64) -> FetchError {
    match declared {
        Some(expected) if got < expected => FetchError::Truncated {
            url: shown(url),
            expected,
            got,
        },
        _ => FetchError::Unreachable {
            url: shown(url),
            detail: error_chain(&error.without_url()),
        },
    }
}

fn request_error(url: &Url, error: reqwest::Error) -> FetchError {
    if error.is_builder() {
        return FetchError::Setup {
            detail: format!(
                "cannot request {}: {}",
                redact(url),
                error_chain(&error.without_url())
            ),
        };
    }
    let detail = if error.is_timeout() {
        "the connection timed out".to_owned()
    } else {
        error_chain(&error.without_url())
    };
    FetchError::Unreachable {
        url: shown(url),
        detail,
    }
}

/// One line for an error and its causes, each said once.
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
