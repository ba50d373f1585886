//! The guard index in front of Poetry. Poetry has no setting that moves its implicit PyPI
//! source (`https://pypi.org/` is written into it) and names every source in the user's
//! `pyproject.toml`, so the guard does not point Poetry's sources anywhere: it runs Poetry with
//! a hook (`guard::poetry`) that sends each HTTP request Poetry makes to
//! `/poetry?url=<the URL, percent-encoded>` on this index, whatever host the URL names, and
//! hands the answer back to Poetry as the answer of that URL. Poetry sees the URLs a bare run
//! sees, so what it writes into `poetry.lock` and `pyproject.toml` is what a bare run writes;
//! this module decides what each URL gets:
//!
//! - a project page of a fronted source (`<source>/<name>/`): that source's page as the index
//!   read it (its files registered, the cooldown applied), written back with each file's own
//!   upstream URL and hash;
//! - PyPI's JSON API for one release (`https://pypi.org/pypi/<name>/<version>/json`, which
//!   Poetry reads for dependencies and for the files to install): the upstream document, its
//!   `urls` cut to the files the project's (filtered) simple page lists;
//! - a file one of those pages listed, or its `.metadata`: served only once fetched, verified
//!   against the listed hash and admitted by the gate, exactly as `/files/` serves it;
//! - anything else (a direct URL, another host): refused (403), and kept as an incident that
//!   stops the install as unjudged.
//!
//! A failure upstream (a 502) carries `Retry-After: 0`: Poetry retries those five times, with
//! growing pauses unless told otherwise, and the guard's fetcher has retried already.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::Response;
use reqwest::Url;
use serde_json::Value;

use super::{
    load_project_from, percent_decode, pypi_metadata, serve_pypi_file, simple, text, PypiFile,
    PypiUpstream, Shared,
};
use cerebro_archive::Ecosystem;
use cerebro_fetch::FetchError;

/// One package source Poetry reads through the simple API.
#[derive(Debug, Clone)]
pub struct PoetrySource {
    /// Its root as Poetry asks for it: the source URL (PyPI's `https://pypi.org/simple`),
    /// ending in `/`, without credentials; a project page is `<root><name>/`.
    pub root: Url,
    /// Where the index reads it (credentials in the URL moved to a header for its host).
    pub upstream: PypiUpstream,
}

/// What the index fronts for one Poetry run.
#[derive(Debug, Clone, Default)]
pub struct PoetryFront {
    pub sources: Vec<PoetrySource>,
    /// PyPI's JSON API: the root Poetry asks for (`https://pypi.org/pypi/`), the root read
    /// (the public PyPI's), and the index in `sources` of PyPI's simple API, whose pages say
    /// which files of a release may be served.
    pub json_api: Option<(Url, Url, usize)>,
}

/// Answers one request Poetry made, `query` being `url=<percent-encoded URL>`.
pub(super) async fn route(shared: &Arc<Shared>, query: &str, headers: &HeaderMap) -> Response {
    let Some(front) = shared.poetry.as_ref() else {
        return text(StatusCode::NOT_FOUND, "cerebro guard index: not found");
    };
    let Some(asked) = query.strip_prefix("url=") else {
        return text(StatusCode::BAD_REQUEST, "cerebro: no url= in the request");
    };
    let mut response = answer(shared, front, asked, headers).await;
    if response.status().is_server_error() {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("0"));
    }
    response
}

async fn answer(
    shared: &Arc<Shared>,
    front: &PoetryFront,
    asked: &str,
    headers: &HeaderMap,
) -> Response {
    let Some(url) = asked_url(asked) else {
        return refuse(shared, &percent_decode(asked), "not a URL");
    };
    // A file a served page listed (the index's own record of it is final).
    if let Some(file) = registered(shared, url.as_str()) {
        return serve_pypi_file(shared, &file).await;
    }
    if let Some(base) = url.as_str().strip_suffix(".metadata") {
        if let Some(file) = registered(shared, base) {
            return pypi_metadata(shared, &file).await;
        }
    }
    if url.query().is_none() {
        for source in &front.sources {
            let Some(rest) = url.as_str().strip_prefix(source.root.as_str()) else {
                continue;
            };
            let project = rest.strip_suffix('/').unwrap_or(rest);
            if !project.is_empty() && !project.contains('/') {
                return page(shared, source, project, headers).await;
            }
        }
        if let Some((root, upstream, pypi)) = &front.json_api {
            if let Some(rest) = url.as_str().strip_prefix(root.as_str()) {
                let parts: Vec<&str> = rest.split('/').collect();
                if let [project, version, "json"] = parts[..] {
                    let source = &front.sources[*pypi];
                    let source = upstream_for(source, headers);
                    return release(shared, &source, upstream, project, version).await;
                }
            }
        }
    }
    refuse(
        shared,
        url.as_str(),
        "not a project page, release or file of a source Cerebro fronts for Poetry (a direct \
         URL, or a host no source of the project names)",
    )
}

/// The URL of a `url=` query value as the index keys it: decoded, without its fragment, and
/// without the `user:password@` that `requests` keeps from a source URL (the index knows the
/// sources and files without it, and sends the source's credentials itself).
pub(super) fn asked_url(value: &str) -> Option<Url> {
    let mut url = Url::parse(&percent_decode(value)).ok()?;
    url.set_fragment(None);
    let _ = url.set_username("");
    let _ = url.set_password(None);
    Some(url)
}

/// The file `url` stands for, when a page the index served listed it.
pub(super) fn registered(shared: &Shared, url: &str) -> Option<PypiFile> {
    let files = shared.files.lock().expect("lock");
    files
        .by_url
        .get(url)
        .and_then(|&n| files.list.get(n))
        .cloned()
}

fn refuse(shared: &Shared, url: &str, why: &str) -> Response {
    let detail = format!("Poetry asked for {}: {why}", shown(url));
    shared.incident(Ecosystem::Pypi, "poetry", detail.clone(), true);
    text(StatusCode::FORBIDDEN, format!("cerebro: {detail}"))
}

/// `url` without credentials, for messages.
fn shown(url: &str) -> String {
    match Url::parse(url) {
        Ok(mut u) => {
            let _ = u.set_username("");
            let _ = u.set_password(None);
            u.to_string()
        }
        Err(_) => url.to_owned(),
    }
}

/// The upstream to read `source` from for this request: with the `Authorization` Poetry sent
/// when the source's URL carries no credentials of its own (Poetry's `http-basic.<source>`
/// or keyring credentials, which Poetry sends to that source's URLs only). The index sends
/// it to that source's host only, as Poetry would have.
fn upstream_for(source: &PoetrySource, headers: &HeaderMap) -> PypiUpstream {
    let mut upstream = source.upstream.clone();
    if upstream.auth.is_none() {
        upstream.auth = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
    }
    upstream
}

/// A project page of `source`, each file linked at its upstream URL.
async fn page(
    shared: &Arc<Shared>,
    source: &PoetrySource,
    project: &str,
    headers: &HeaderMap,
) -> Response {
    let name = simple::normalize(&percent_decode(project));
    let upstream = upstream_for(source, headers);
    let links = match load_project_from(shared, std::slice::from_ref(&upstream), &name).await {
        Ok(links) => links,
        Err(response) => return response,
    };
    let local: Vec<simple::LocalLink<'_>> = links
        .iter()
        .map(|(link, _)| simple::LocalLink {
            link,
            href: link.url.to_string(),
        })
        .collect();
    let accept = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok());
    let (body, content_type) = simple::render_for(accept, &name, &local);
    respond(body.into_bytes(), content_type)
}

/// PyPI's JSON document of one release, its files cut to those the project's simple page
/// lists (the cooldown's view; a file no page listed could not be served anyway).
async fn release(
    shared: &Arc<Shared>,
    source: &PypiUpstream,
    upstream_root: &Url,
    project: &str,
    version: &str,
) -> Response {
    let name = simple::normalize(&percent_decode(project));
    let listed = match load_project_from(shared, std::slice::from_ref(source), &name).await {
        Ok(links) => links,
        Err(response) => return response,
    };
    let Ok(url) = upstream_root.join(&format!("{name}/{version}/json")) else {
        return refuse(shared, project, "not a release name");
    };
    let doc = match shared
        .document(&url, "application/json", source.auth.as_deref())
        .await
    {
        Ok(doc) => doc,
        Err(FetchError::NotFound { .. }) => {
            return text(
                StatusCode::NOT_FOUND,
                format!("no release {name} {version}"),
            )
        }
        Err(e) => {
            let detail = e.to_string();
            shared.incident(Ecosystem::Pypi, &name, detail.clone(), true);
            return text(StatusCode::BAD_GATEWAY, format!("cerebro: {detail}"));
        }
    };
    let mut json: Value = match serde_json::from_slice(&doc.body) {
        Ok(v) => v,
        Err(e) => {
            let detail = format!("unreadable release document {}: {e}", doc.url);
            shared.incident(Ecosystem::Pypi, &name, detail.clone(), true);
            return text(StatusCode::BAD_GATEWAY, format!("cerebro: {detail}"));
        }
    };
    let on_page = |u: &str| {
        doc.url
            .join(u)
            .ok()
            .map(|mut u| {
                u.set_fragment(None);
                u
            })
            .is_some_and(|u| listed.iter().any(|(l, _)| l.url == u))
    };
    let mut cut = false;
    if let Some(urls) = json.get_mut("urls").and_then(Value::as_array_mut) {
        let before = urls.len();
        urls.retain(|f| f.get("url").and_then(Value::as_str).is_some_and(on_page));
        cut = urls.len() != before;
    }
    let body = if cut {
        json.to_string().into_bytes()
    } else {
        doc.body
    };
    respond(body, "application/json")
}

fn respond(body: Vec<u8>, content_type: &'static str) -> Response {
    let mut r = Response::new(Body::from(body));
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_asked_url_is_keyed_without_credentials_or_fragment() {
        let asked = "https%3A%2F%2Fu%3Ap%40Files.Example.org%2Fa%2Fx-1.0.tar.gz%23sha256%3Dab";
        assert_eq!(
            asked_url(asked).unwrap().as_str(),
            "https://files.example.org/a/x-1.0.tar.gz"
        );
        assert!(asked_url("not%20a%20url").is_none());
        assert_eq!(
            shown("https://u:secret@host/simple/x/"),
            "https://host/simple/x/"
        );
    }
}
