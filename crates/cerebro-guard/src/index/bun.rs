//! bun's half of the npm routes, under `/-/bun/` (the registry bun is given): packuments whose
//! tarball links all point back at the guard (`/-/bun/-/url/<scheme>/<host><path>`, which
//! carries the upstream URL, so that `bun.lock` can be given back the URL bun would have
//! recorded), and tarballs, by those links or by the `/-/bun/<name>/-/<file>` that bun builds
//! from the registry for a lockfile entry without a URL. bun fetches a tarball by its
//! packument link, and a locked package by its recorded URL, whatever registry it is given:
//! this is what makes it fetch everything through the guard.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::Response;
use serde_json::Value;

use super::npm::{load_packument, serve_tarball, tarball, valid_name};
use super::{cooldown, percent_decode, text, Shared};
use crate::manager::bun::{guard_link, upstream_of_link, GUARD_PREFIX, URL_PREFIX};

pub(super) async fn route(shared: &Arc<Shared>, rest: &str, headers: &HeaderMap) -> Response {
    if let Some(link) = rest.strip_prefix(URL_PREFIX) {
        return by_link(shared, link).await;
    }
    let decoded = percent_decode(rest);
    if decoded.starts_with("-/") {
        return text(StatusCode::NOT_FOUND, "cerebro guard index: not served");
    }
    if let Some((name, file)) = decoded.split_once("/-/") {
        if valid_name(name) && !file.contains('/') {
            return tarball(shared, name, file).await;
        }
        return text(StatusCode::NOT_FOUND, "cerebro guard index: not found");
    }
    let name = decoded.trim_end_matches('/');
    if !valid_name(name) {
        return text(StatusCode::NOT_FOUND, "cerebro guard index: not found");
    }
    let Some(host) = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .filter(|h| h.starts_with("127.0.0.1:") || h.starts_with("localhost:"))
    else {
        return text(StatusCode::BAD_REQUEST, "cerebro guard index: no Host");
    };
    let base = format!("http://{host}/{GUARD_PREFIX}");
    let accept = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    match load_packument(shared, name, accept.as_deref()).await {
        Ok(Some(mut doc)) => {
            cooldown::filter_npm(shared, name, &mut doc);
            relink(&mut doc, &base);
            let mut r = Response::new(Body::from(doc.to_string()));
            r.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            r.headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            r
        }
        Ok(None) => text(StatusCode::NOT_FOUND, format!("no package {name}")),
        Err(detail) => text(StatusCode::BAD_GATEWAY, format!("cerebro: {detail}")),
    }
}

/// Points every version's `dist.tarball` at the guard; a version whose link the guard
/// cannot carry is removed (bun must not fetch it past the guard).
fn relink(doc: &mut Value, base: &str) {
    let Some(versions) = doc.get_mut("versions").and_then(Value::as_object_mut) else {
        return;
    };
    let mut drop = Vec::new();
    for (version, meta) in versions.iter_mut() {
        let link = meta
            .pointer("/dist/tarball")
            .and_then(Value::as_str)
            .and_then(|t| reqwest::Url::parse(t).ok())
            .and_then(|u| guard_link(base, &u));
        match (link, meta.pointer_mut("/dist/tarball")) {
            (Some(link), Some(slot)) => *slot = Value::String(link),
            _ => drop.push(version.clone()),
        }
    }
    for version in drop {
        versions.remove(&version);
    }
}

/// A tarball by the upstream URL its link carries: the one a packument listed at that URL,
/// else (a lockfile's URL) the package's own file of that name from its registry.
async fn by_link(shared: &Arc<Shared>, link: &str) -> Response {
    let Some(url) = upstream_of_link(link) else {
        return text(StatusCode::NOT_FOUND, "cerebro guard index: bad link");
    };
    let known = shared
        .tarballs
        .lock()
        .expect("lock")
        .values()
        .find(|t| t.url == url)
        .cloned();
    if let Some(t) = known {
        return serve_tarball(shared, &t).await;
    }
    let path = percent_decode(url.path());
    let Some((before, file)) = path.rsplit_once("/-/") else {
        return text(StatusCode::NOT_FOUND, "cerebro guard index: not found");
    };
    let mut parts = before.rsplit('/');
    let last = parts.next().unwrap_or_default();
    let name = match parts.next() {
        Some(scope) if scope.starts_with('@') => format!("{scope}/{last}"),
        _ => last.to_owned(),
    };
    if !valid_name(&name) || file.contains('/') {
        return text(StatusCode::NOT_FOUND, "cerebro guard index: not found");
    }
    tarball(shared, &name, file).await
}
