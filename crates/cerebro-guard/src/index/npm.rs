//! The npm half of the guard index: packuments from the package's own registry, their tarball
//! links left as the registry wrote them (npm fetches them from the guard all the same, with
//! `--replace-registry-host=always`), and tarballs served once admitted.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::Response;
use serde_json::Value;

use super::{
    cooldown, percent_decode, run_gate, serve_artifact, text, Admission, Candidate, NpmTarball,
    Shared,
};
use cerebro_archive::Ecosystem;
use cerebro_fetch::FetchError;

/// What npm asks a registry for when installing.
const ACCEPT: &str = "application/vnd.npm.install-v1+json; q=1.0, application/json; q=0.8, */*";

/// Whether `name` is a valid npm package name in shape (`name` or `@scope/name`), so that
/// it can be put in an upstream URL.
pub(super) fn valid_name(name: &str) -> bool {
    let ok = |s: &str| {
        !s.is_empty()
            && s != "."
            && s != ".."
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-._~!*'()".contains(&b))
    };
    match name.strip_prefix('@') {
        Some(scoped) => scoped.split_once('/').is_some_and(|(s, n)| ok(s) && ok(n)),
        None => ok(name) && !name.starts_with('.') && !name.starts_with('_'),
    }
}

pub(super) async fn route(shared: &Arc<Shared>, rest: &str, headers: &HeaderMap) -> Response {
    if shared.npm.is_none() {
        return text(
            StatusCode::NOT_FOUND,
            "this guard index has no npm registry",
        );
    }
    if let Some(bun) = rest.strip_prefix(crate::manager::bun::GUARD_PREFIX) {
        return super::bun::route(shared, bun, headers).await;
    }
    let decoded = percent_decode(rest);
    if decoded.starts_with("-/") {
        // Registry endpoints (audit, ping, search): not needed to install.
        return text(StatusCode::NOT_FOUND, "cerebro guard index: not served");
    }
    if let Some((name, file)) = decoded.split_once("/-/") {
        if valid_name(name) && !file.contains('/') {
            return tarball(shared, name, file).await;
        }
    }
    let name = decoded.trim_end_matches('/');
    if !valid_name(name) {
        // A lockfile's `resolved` URL of a registry with its own tarball paths.
        let wanted = format!("/{rest}");
        let known = shared
            .tarballs
            .lock()
            .expect("lock")
            .values()
            .find(|t| t.url.path() == wanted)
            .cloned();
        return match known {
            Some(t) => serve_tarball(shared, &t).await,
            None => text(StatusCode::NOT_FOUND, "cerebro guard index: not found"),
        };
    }
    let accept = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    match load_packument(shared, name, accept.as_deref()).await {
        Ok(Some(mut doc)) => {
            cooldown::filter_npm(shared, name, &mut doc);
            let mut r = Response::new(Body::from(doc.to_string()));
            r.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            // What the cooldown hides changes with the user's answers within one command;
            // npm must ask again rather than reuse an earlier answer.
            r.headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            r
        }
        Ok(None) => text(StatusCode::NOT_FOUND, format!("no package {name}")),
        Err(detail) => text(StatusCode::BAD_GATEWAY, format!("cerebro: {detail}")),
    }
}

/// Fetches the packument of `name` from its registry, records its tarballs (so the guard can
/// serve them when npm asks by the links' paths), and returns it; `None` when the registry has
/// no such package.
pub(super) async fn load_packument(
    shared: &Arc<Shared>,
    name: &str,
    accept: Option<&str>,
) -> Result<Option<Value>, String> {
    let npm = shared.npm.as_ref().ok_or("no npm registry configured")?;
    let registry = npm.registry_for(name);
    let url = registry
        .join(&name.replacen('/', "%2f", 1))
        .map_err(|e| format!("bad registry URL {registry}: {e}"))?;
    // The cooldown needs each version's publish time, which only the full packument has
    // (the abbreviated one npm asks for has no `time`): ask for the full one alone rather
    // than for both. npm reads a full packument as well.
    let accept = if cooldown::needs_times(shared, name) {
        cooldown::FULL_PACKUMENT
    } else {
        accept.unwrap_or(ACCEPT)
    };
    let doc = match shared.document(&url, accept, npm.auth_for(&url)).await {
        Ok(doc) => doc,
        Err(FetchError::NotFound { .. }) => return Ok(None),
        Err(e) => {
            let detail = e.to_string();
            shared.incident(Ecosystem::Npm, name, detail.clone(), true);
            return Err(detail);
        }
    };
    let mut json: Value = serde_json::from_slice(&doc.body).map_err(|e| {
        let detail = format!("unreadable packument of {name} from {}: {e}", doc.url);
        shared.incident(Ecosystem::Npm, name, detail.clone(), true);
        detail
    })?;
    if let Err(detail) =
        cooldown::load_npm_times(shared, name, &url, npm.auth_for(&url), &json).await
    {
        shared.incident(Ecosystem::Npm, name, detail.clone(), true);
        return Err(detail);
    }
    let mut found = Vec::new();
    if let Some(versions) = json.get_mut("versions").and_then(Value::as_object_mut) {
        for (version, meta) in versions.iter_mut() {
            let Some(dist) = meta.get_mut("dist").and_then(Value::as_object_mut) else {
                continue;
            };
            let Some(tarball) = dist
                .get("tarball")
                .and_then(Value::as_str)
                .and_then(|t| doc.url.join(t).ok())
            else {
                continue;
            };
            if tarball
                .path_segments()
                .and_then(|mut s| s.next_back())
                .map(percent_decode)
                .is_none_or(|f| f.is_empty() || f.contains('/'))
            {
                continue;
            }
            // The link stays the upstream one, so that npm records the user's registry in
            // its lockfiles exactly as it would without the guard; the guarded npm runs with
            // `--replace-registry-host=always`, so it still fetches every tarball from the
            // guard (the link's path on the guard's origin, routed back here by name and file
            // or by path). A relative link is made absolute against the packument's URL, as
            // npm would resolve it against the upstream registry, not the guard.
            let absolute = dist
                .get("tarball")
                .and_then(Value::as_str)
                .is_some_and(|t| reqwest::Url::parse(t).is_ok());
            if let Some(base) = &shared.guard_base {
                dist.insert(
                    "tarball".into(),
                    Value::String(served_link(base, registry, &tarball)),
                );
            } else if !absolute {
                dist.insert("tarball".into(), Value::String(tarball.to_string()));
            }
            found.push(NpmTarball {
                name: name.to_owned(),
                version: version.clone(),
                url: tarball,
                integrity: dist
                    .get("integrity")
                    .and_then(Value::as_str)
                    .map(str::to_owned),
                shasum: dist
                    .get("shasum")
                    .and_then(Value::as_str)
                    .map(str::to_owned),
            });
        }
    }
    let mut tarballs = shared.tarballs.lock().expect("lock");
    for t in found {
        let file = t
            .url
            .path_segments()
            .and_then(|mut s| s.next_back())
            .map(percent_decode)
            .unwrap_or_default();
        tarballs.insert((name.to_owned(), file), t);
    }
    Ok(Some(json))
}

/// The link pnpm is given for an upstream tarball, on the guard: pnpm has no
/// `--replace-registry-host`, so it fetches what the packument links. A link under its
/// registry keeps its place relative to the registry (`<guard>/<name>/-/<file>.tgz` for the
/// usual layout), so that pnpm writes the same `pnpm-lock.yaml` as against the registry
/// itself (no `tarball:` for the usual layout, the same relative one otherwise); any other
/// link keeps its path on the guard's origin (pnpm would then record the guard's address, which
/// the guard refuses after the resolution).
fn served_link(base: &reqwest::Url, registry: &reqwest::Url, tarball: &reqwest::Url) -> String {
    match tarball.as_str().strip_prefix(registry.as_str()) {
        Some(rest) => format!("{base}{rest}"),
        None => {
            let mut link = format!("{base}{}", tarball.path().trim_start_matches('/'));
            if let Some(q) = tarball.query() {
                link.push('?');
                link.push_str(q);
            }
            link
        }
    }
}

pub(super) async fn tarball(shared: &Arc<Shared>, name: &str, file: &str) -> Response {
    let key = (name.to_owned(), file.to_owned());
    let mut known = shared.tarballs.lock().expect("lock").get(&key).cloned();
    if known.is_none() {
        // A lockfile's `resolved` URL can name a tarball whose packument npm did not ask for.
        match load_packument(shared, name, None).await {
            Ok(_) => known = shared.tarballs.lock().expect("lock").get(&key).cloned(),
            Err(detail) => return text(StatusCode::BAD_GATEWAY, format!("cerebro: {detail}")),
        }
    }
    let Some(t) = known else {
        return text(
            StatusCode::NOT_FOUND,
            format!("no tarball {file} of {name}"),
        );
    };
    serve_tarball(shared, &t).await
}

pub(super) async fn serve_tarball(shared: &Arc<Shared>, t: &NpmTarball) -> Response {
    match admit_tarball(shared, t).await {
        Ok((candidate, Admission::Serve)) => serve_artifact(shared, &candidate.artifact).await,
        Ok((_, Admission::Refuse(why))) => text(StatusCode::FORBIDDEN, format!("cerebro: {why}")),
        Err(detail) => text(StatusCode::BAD_GATEWAY, format!("cerebro: {detail}")),
    }
}

/// Fetches and verifies a tarball, then asks the gate.
pub(super) async fn admit_tarball(
    shared: &Arc<Shared>,
    t: &NpmTarball,
) -> Result<(Candidate, Admission), String> {
    let auth = shared.npm.as_ref().and_then(|n| n.auth_for(&t.url));
    let artifact = match shared.fetcher.artifact(&t.url, &t.expected(), auth).await {
        Ok(a) => a,
        Err(e) => {
            let detail = format!("{}@{}: {e}", t.name, t.version);
            shared.incident(Ecosystem::Npm, &t.name, detail.clone(), true);
            return Err(detail);
        }
    };
    let filename = t
        .url
        .path_segments()
        .and_then(|mut s| s.next_back())
        .map(percent_decode)
        .unwrap_or_else(|| format!("{}-{}.tgz", t.name, t.version));
    let previous = if shared.gate.wants_previous(Ecosystem::Npm, &artifact.sha256) {
        super::previous::npm(shared, t).await
    } else {
        None
    };
    let candidate = Candidate {
        ecosystem: Ecosystem::Npm,
        name: t.name.clone(),
        version: Some(t.version.clone()),
        filename,
        url: t.url.clone(),
        artifact,
        previous,
    };
    let (candidate, admission) = run_gate(shared, candidate).await;
    if let Admission::Refuse(why) = &admission {
        shared.incident(Ecosystem::Npm, &t.name, why.clone(), false);
    }
    Ok((candidate, admission))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_served_to_pnpm_keep_their_place_under_the_registry() {
        let url = |s: &str| reqwest::Url::parse(s).unwrap();
        let guard = url("http://127.0.0.1:9/");
        assert_eq!(
            served_link(
                &guard,
                &url("https://r.example/npm/"),
                &url("https://r.example/npm/@s/x/-/x-1.0.0.tgz")
            ),
            "http://127.0.0.1:9/@s/x/-/x-1.0.0.tgz"
        );
        assert_eq!(
            served_link(
                &guard,
                &url("https://r.example/"),
                &url("https://cdn.example/files/x.tgz?sig=1")
            ),
            "http://127.0.0.1:9/files/x.tgz?sig=1"
        );
    }

    #[test]
    fn package_names() {
        for ok in ["left-pad", "@types/node", "a.b", "x_y"] {
            assert!(valid_name(ok), "{ok}");
        }
        for bad in [
            "", "..", "../x", "@scope", "@/x", "a/b", ".hidden", "a b", "@s/../x",
        ] {
            assert!(!valid_name(bad), "{bad}");
        }
    }
}
