//! Resolve: a pin → the artifacts to judge, each with the URL to fetch it from and the hash
//! it must have. What the lockfile recorded wins; what it left out (npm's `resolved` under
//! `omit-lockfile-registry-resolved`, a requirement file's URLs) comes from the registry the
//! user configured, read the way the guard reads it (`.npmrc`, pip's configuration and
//! `PIP_*`, and `--registry`/`--index-url`), one registry document per package at most.

use std::collections::{HashMap, HashSet};
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use serde_json::Value;
use tokio::sync::OnceCell;

use cerebro_fetch::{Expected, FetchError, Fetcher, Url};
use cerebro_guard::index::{
    normalize_pypi_name, parse_simple_page, pypi_version, version_key, FileLink, PypiUpstream,
    SIMPLE_ACCEPT,
};
use cerebro_guard::manager::npm::{self, NpmCommand, NpmConfig};
use cerebro_guard::manager::pip::{self, PipCommand};

use crate::lockfile::PipOptions;
use crate::{Origin, Pin};
use cerebro_archive::Ecosystem;

/// npm's `Accept` for a packument: the abbreviated one where the registry has it.
const NPM_ACCEPT: &str = "application/vnd.npm.install-v1+json; q=1.0, application/json; q=0.8, */*";

/// The public npm registry, whose host npm replaces by the configured registry's in a
/// lockfile's `resolved` (its default `replace-registry-host=npmjs`).
const NPMJS: &str = "https://registry.npmjs.org/";

/// Where packages come from when the lockfile does not say.
#[derive(Debug, Clone)]
pub struct Registries {
    /// npm's configuration (registry, scopes, credentials), as the guard reads it.
    pub npm: NpmConfig,
    /// pip's indexes (main first), as the guard reads them; `user:pass@` kept.
    pub pypi: Vec<Url>,
}

/// One artifact to judge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Want {
    /// A file to fetch, verify and judge. `accept` lists the sha256s of which one it must
    /// have when the index gave none to check it against (a requirement's `--hash`es).
    Fetch {
        file: String,
        url: Url,
        expected: Expected,
        auth: Option<String>,
        accept: Vec<String>,
    },
    /// A folder or archive on disk, judged where it is.
    Local(PathBuf),
    /// Files of an installed distribution under a `site-packages` folder, judged in place.
    Installed { root: PathBuf, files: Vec<String> },
}

impl Registries {
    /// The registries the user configured for a project in `project`, as npm and pip would
    /// read them there (`.npmrc` files and `npm_config_*`; pip.conf and `PIP_*`), with the
    /// command line's `--registry` and `--index-url`/`--extra-index-url` over them. Also the
    /// extra CA file either names (npm `cafile`, pip `cert`).
    pub fn configured(
        project: &Path,
        npm_registry: Option<&str>,
        pip: &PipOptions,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<(Registries, Option<PathBuf>), String> {
        let mut npm_args: Vec<OsString> = vec!["ci".into()];
        if let Some(registry) = npm_registry {
            npm_args.extend(["--registry".into(), registry.into()]);
        }
        let npm_install = match npm::parse_in(&npm_args, project).map_err(|e| e.to_string())? {
            NpmCommand::Install(install) => install,
            NpmCommand::Exec(_) | NpmCommand::Other => {
                return Err("internal error: `npm ci` not read as an install".into())
            }
        };
        let npm_config = npm::npm_config(project, &npm_install, env).map_err(|e| e.to_string())?;
        let mut pip_args: Vec<OsString> = vec!["install".into()];
        if let Some(index) = &pip.index_url {
            pip_args.extend(["--index-url".into(), index.into()]);
        }
        for extra in &pip.extra_index_urls {
            pip_args.extend(["--extra-index-url".into(), extra.into()]);
        }
        let pip_install = match pip::parse_in(&pip_args, project, env).map_err(|e| e.to_string())? {
            PipCommand::Install(install) => install,
            PipCommand::Other => {
                return Err("internal error: `pip install` not read as an install".into())
            }
        };
        let real_pip = cerebro_guard::manager::real::real_pip().unwrap_or_default();
        let files = pip::pip_config_files(env, pip_install.isolated, &real_pip);
        let upstream = pip::upstream(&pip_install, env, &files).map_err(|e| e.to_string())?;
        let pypi = if upstream.no_index {
            Vec::new()
        } else {
            std::iter::once(upstream.index)
                .chain(upstream.extra)
                .collect()
        };
        let ca = npm_config.cafile.clone().or(upstream.cert);
        Ok((
            Registries {
                npm: npm_config,
                pypi,
            },
            ca,
        ))
    }
}

type Shared<T> = Arc<OnceCell<Result<T, String>>>;

/// The one cell of `key` in `map` (made on first use): every pin asking for the same document
/// waits on the same fetch.
fn shared_cell<T>(map: &Mutex<HashMap<String, Shared<T>>>, key: String) -> Shared<T> {
    map.lock().expect("lock").entry(key).or_default().clone()
}

/// Turns pins into artifacts, fetching each registry document once.
pub struct Resolver {
    fetcher: Fetcher,
    registries: Registries,
    packuments: Mutex<HashMap<String, Shared<Option<Arc<Value>>>>>,
    pages: Mutex<HashMap<String, Shared<Option<Vec<FileLink>>>>>,
}

impl Resolver {
    pub fn new(fetcher: Fetcher, registries: Registries) -> Resolver {
        Resolver {
            fetcher,
            registries,
            packuments: Mutex::default(),
            pages: Mutex::default(),
        }
    }

    pub fn fetcher(&self) -> &Fetcher {
        &self.fetcher
    }

    /// The artifacts of `pin`, or why they cannot be found. A pin that cannot be judged
    /// from its lockfile is an `Err` with the lockfile's reason.
    pub async fn plan(&self, pin: &Pin) -> Result<Vec<Want>, String> {
        match &pin.origin {
            Origin::Unjudgeable(why) => Err(why.clone()),
            Origin::Installed { root, files } => Ok(vec![Want::Installed {
                root: root.clone(),
                files: files.clone(),
            }]),
            Origin::Local(path) => {
                if path.exists() {
                    Ok(vec![Want::Local(path.clone())])
                } else {
                    Err(format!(
                        "the local package {} does not exist",
                        path.display()
                    ))
                }
            }
            Origin::Files(files) => files
                .iter()
                .map(|f| {
                    let url = Url::parse(&f.url).map_err(|e| format!("bad URL {}: {e}", f.url))?;
                    let expected = match &f.hash {
                        Some(hash) => parse_hash(hash)
                            .ok_or_else(|| format!("cannot read the hash `{hash}` of {url}"))?,
                        None => Expected::Nothing,
                    };
                    Ok(Want::Fetch {
                        file: file_name(&url),
                        url,
                        expected,
                        auth: None,
                        accept: Vec::new(),
                    })
                })
                .collect(),
            Origin::Npm {
                resolved,
                integrity,
            } => self
                .plan_npm(pin, resolved.as_deref(), integrity.as_deref())
                .await
                .map(|w| vec![w]),
            Origin::Pypi { hashes, indexes } => {
                let indexes = match indexes {
                    Some(list) => list
                        .iter()
                        .map(|u| Url::parse(u).map_err(|e| format!("bad index URL {u}: {e}")))
                        .collect::<Result<Vec<_>, _>>()?,
                    None => self.registries.pypi.clone(),
                };
                self.plan_pypi(pin, hashes, &indexes).await
            }
        }
    }

    /// The newest release of `name` on the configured registry (npm: its `latest` tag; PyPI:
    /// the highest final release with a file on the first index that has the project), or
    /// `Ok(None)` when no configured registry has such a package: what an agent asks before
    /// installing a name it was given.
    pub async fn latest(&self, ecosystem: Ecosystem, name: &str) -> Result<Option<String>, String> {
        match ecosystem {
            Ecosystem::Npm => {
                let registry = self.registries.npm.registry_for(name).clone();
                let Some(doc) = self.packument_if_any(name, &registry).await? else {
                    return Ok(None);
                };
                Ok(doc
                    .get("dist-tags")
                    .and_then(|t| t.get("latest"))
                    .and_then(Value::as_str)
                    .map(str::to_owned))
            }
            Ecosystem::Pypi => {
                for index in &self.registries.pypi {
                    let upstream = PypiUpstream::from_url(index);
                    let Some(links) = self.page(name, &upstream).await? else {
                        continue;
                    };
                    let newest = links
                        .iter()
                        .filter_map(|l| pypi_version(&l.filename))
                        .filter_map(|v| final_release(&v).map(|key| (key, v)))
                        .max();
                    return Ok(Some(newest.map(|(_, v)| v).unwrap_or_default()));
                }
                Ok(None)
            }
        }
    }

    /// The dependency tree of npm package `name` at `version`, as npm would resolve it from
    /// the configured registry (each range to the highest version satisfying it; optional
    /// dependencies included), at most `max` packages, the root first. A range Cerebro cannot
    /// read as npm does, or that nothing satisfies, is an error naming it: the tree would
    /// not be the one npm installs.
    pub async fn npm_tree(
        self: &Arc<Self>,
        name: &str,
        version: &str,
        max: usize,
    ) -> Result<Vec<(String, String)>, String> {
        let mut seen: HashSet<(String, String)> = HashSet::new();
        let mut out = Vec::new();
        let mut queue = std::collections::VecDeque::from([(name.to_owned(), version.to_owned())]);
        while let Some((name, version)) = queue.pop_front() {
            if !seen.insert((name.clone(), version.clone())) {
                continue;
            }
            if out.len() >= max {
                return Err(format!("the tree has more than {max} packages"));
            }
            let registry = self.registries.npm.registry_for(&name).clone();
            let doc = self.packument(&name, &registry).await?;
            let manifest = doc
                .get("versions")
                .and_then(|v| v.get(&version))
                .ok_or_else(|| format!("{name}@{version} is not on {registry}"))?;
            let deps: Vec<(String, String)> = ["dependencies", "optionalDependencies"]
                .iter()
                .filter_map(|field| manifest.get(*field).and_then(Value::as_object))
                .flatten()
                .map(|(dep, range)| (dep.clone(), range.as_str().unwrap_or("").to_owned()))
                .collect();
            // Their packuments at once (each fetched once per resolver); then picked in order.
            let mut fetches = tokio::task::JoinSet::new();
            for (dep, _) in &deps {
                let (resolver, dep) = (self.clone(), dep.clone());
                fetches.spawn(async move {
                    let registry = resolver.registries.npm.registry_for(&dep).clone();
                    // An error comes back again below, where it is reported.
                    let _ = resolver.packument(&dep, &registry).await;
                });
            }
            while fetches.join_next().await.is_some() {}
            for (dep, range) in deps {
                let dep_registry = self.registries.npm.registry_for(&dep).clone();
                let dep_doc = self.packument(&dep, &dep_registry).await?;
                let chosen = npm_max_satisfying(&dep_doc, &range).ok_or_else(|| {
                    format!("{name}@{version} depends on {dep}@{range}, which Cerebro cannot resolve as npm does")
                })?;
                queue.push_back((dep, chosen));
            }
            out.push((name, version));
        }
        Ok(out)
    }

    async fn plan_npm(
        &self,
        pin: &Pin,
        resolved: Option<&str>,
        integrity: Option<&str>,
    ) -> Result<Want, String> {
        let registry = self.registries.npm.registry_for(&pin.name).clone();
        let recorded = match resolved {
            Some(r) => Some(replace_registry_host(r, &registry)?),
            None => None,
        };
        let recorded_expected = match integrity {
            Some(sri) => Some(Expected::from_integrity(sri).ok_or_else(|| {
                format!("the lockfile's integrity `{sri}` holds no hash Cerebro can check")
            })?),
            None => None,
        };
        let (url, expected) = match (recorded, recorded_expected) {
            (Some(url), Some(expected)) => (url, expected),
            (recorded, recorded_expected) => {
                let doc = self.packument(&pin.name, &registry).await?;
                let dist = doc
                    .get("versions")
                    .and_then(|v| v.get(&pin.version))
                    .and_then(|v| v.get("dist"))
                    .ok_or_else(|| format!("{}@{} is not on {registry}", pin.name, pin.version))?;
                let tarball = dist
                    .get("tarball")
                    .and_then(Value::as_str)
                    .ok_or_else(|| format!("the packument of {} has no tarball", pin.name))?;
                let url = match recorded {
                    Some(url) => url,
                    None => registry
                        .join(tarball)
                        .map_err(|e| format!("bad tarball URL {tarball}: {e}"))?,
                };
                let expected = match recorded_expected {
                    Some(e) => e,
                    None => dist
                        .get("integrity")
                        .and_then(Value::as_str)
                        .and_then(Expected::from_integrity)
                        .or_else(|| {
                            dist.get("shasum")
                                .and_then(Value::as_str)
                                .map(|s| Expected::Sha1(s.to_ascii_lowercase()))
                        })
                        .unwrap_or(Expected::Nothing),
                };
                (url, expected)
            }
        };
        let auth = self.registries.npm.auth_for(&url).map(str::to_owned);
        Ok(Want::Fetch {
            file: file_name(&url),
            url,
            expected,
            auth,
            accept: Vec::new(),
        })
    }

    async fn packument(&self, name: &str, registry: &Url) -> Result<Arc<Value>, String> {
        self.packument_if_any(name, registry)
            .await?
            .ok_or_else(|| format!("{name} is not on {registry}"))
    }

    /// The packument of `name` on `registry`, `None` when the registry has no such package;
    /// fetched once per resolver.
    async fn packument_if_any(
        &self,
        name: &str,
        registry: &Url,
    ) -> Result<Option<Arc<Value>>, String> {
        let cell = shared_cell(&self.packuments, format!("{registry} {name}"));
        cell.get_or_init(|| async {
            let url = registry
                .join(&name.replacen('/', "%2f", 1))
                .map_err(|e| format!("bad registry URL {registry}: {e}"))?;
            let auth = self.registries.npm.auth_for(&url);
            let doc = match self.fetcher.document(&url, NPM_ACCEPT, auth).await {
                Ok(doc) => doc,
                Err(FetchError::NotFound { .. }) => return Ok(None),
                Err(e) => return Err(e.to_string()),
            };
            serde_json::from_slice(&doc.body)
                .map(|v| Some(Arc::new(v)))
                .map_err(|e| format!("unreadable packument of {name} from {}: {e}", doc.url))
        })
        .await
        .clone()
    }

    async fn plan_pypi(
        &self,
        pin: &Pin,
        hashes: &[String],
        indexes: &[Url],
    ) -> Result<Vec<Want>, String> {
        let wanted = version_key(&pin.version);
        let listed: HashSet<String> = hashes
            .iter()
            .filter_map(|h| h.strip_prefix("sha256:"))
            .map(str::to_ascii_lowercase)
            .collect();
        if !hashes.is_empty() && listed.is_empty() {
            return Err(format!(
                "none of its --hash values is a sha256 ({}), which is what indexes publish",
                hashes.join(", ")
            ));
        }
        let mut wants = Vec::new();
        let mut seen = HashSet::new();
        let mut of_version = 0;
        for index in indexes {
            let upstream = PypiUpstream::from_url(index);
            let Some(links) = self.page(&pin.name, &upstream).await? else {
                continue;
            };
            for link in links.iter() {
                if pypi_version(&link.filename).map(|v| version_key(&v)) != Some(wanted.clone()) {
                    continue;
                }
                of_version += 1;
                let (expected, accept) = match (&link.sha256, listed.is_empty()) {
                    (Some(sha), true) => (Expected::Sha256(sha.clone()), Vec::new()),
                    (Some(sha), false) if listed.contains(sha) => {
                        (Expected::Sha256(sha.clone()), Vec::new())
                    }
                    (Some(_), false) => continue,
                    (None, true) => (Expected::Nothing, Vec::new()),
                    (None, false) => (Expected::Nothing, listed.iter().cloned().collect()),
                };
                if !seen.insert(link.url.clone()) {
                    continue;
                }
                wants.push(Want::Fetch {
                    file: link.filename.clone(),
                    url: link.url.clone(),
                    expected,
                    auth: same_host(&link.url, &upstream.url)
                        .then(|| upstream.auth.clone())
                        .flatten(),
                    accept,
                });
            }
        }
        let shown: Vec<String> = indexes.iter().map(|u| redact(u).to_string()).collect();
        match (wants.is_empty(), of_version) {
            (false, _) => Ok(wants),
            (true, 0) => Err(format!(
                "no file of {} {} on {}",
                pin.name,
                pin.version,
                shown.join(", ")
            )),
            (true, _) => Err(format!(
                "hash mismatch: none of the {of_version} files of {} {} on {} has a hash the \
                 requirement lists ({})",
                pin.name,
                pin.version,
                shown.join(", "),
                hashes.join(", ")
            )),
        }
    }

    /// The file links of `project` on one index; `None` when the index has no such project.
    async fn page(
        &self,
        project: &str,
        upstream: &PypiUpstream,
    ) -> Result<Option<Vec<FileLink>>, String> {
        let name = normalize_pypi_name(project);
        let cell = shared_cell(&self.pages, format!("{} {name}", upstream.url));
        cell.get_or_init(|| async {
            let url = upstream
                .url
                .join(&format!("{name}/"))
                .map_err(|e| format!("bad index URL {}: {e}", upstream.url))?;
            match self
                .fetcher
                .document(&url, SIMPLE_ACCEPT, upstream.auth.as_deref())
                .await
            {
                Ok(doc) => parse_simple_page(&doc.body, doc.content_type.as_deref(), &doc.url)
                    .map(Some)
                    .map_err(|e| format!("unreadable project page {}: {e}", doc.url)),
                Err(FetchError::NotFound { .. }) => Ok(None),
                Err(e) => Err(e.to_string()),
            }
        })
        .await
        .clone()
    }
}

/// The version of a packument npm picks for `range` (npm-pick-manifest): a dist-tag names
/// its version; else the `latest` tag's version when the range admits it; else the highest
/// version the range admits. `None` for a range this reader does not take (git, file, URL,
/// aliases) or that nothing satisfies.
fn npm_max_satisfying(packument: &Value, range: &str) -> Option<String> {
    let range = range.trim();
    if let Some(tag) = packument
        .get("dist-tags")
        .and_then(|t| t.get(range))
        .and_then(Value::as_str)
    {
        return Some(tag.to_owned());
    }
    let alternatives: Vec<semver::VersionReq> = range
        .split("||")
        .map(npm_range_to_req)
        .collect::<Option<_>>()?;
    let latest = packument
        .get("dist-tags")
        .and_then(|t| t.get("latest"))
        .and_then(Value::as_str)
        .and_then(|v| semver::Version::parse(v).ok());
    if let Some(latest) = latest.filter(|v| alternatives.iter().any(|req| req.matches(v))) {
        return Some(latest.to_string());
    }
    packument
        .get("versions")?
        .as_object()?
        .keys()
        .filter_map(|v| semver::Version::parse(v).ok())
        .filter(|v| alternatives.iter().any(|req| req.matches(v)))
        .max()
        .map(|v| v.to_string())
}

/// One npm range (no `||`) as a Rust `semver` requirement: npm's bare version is exact
/// (`=`), its comparators are space-separated (commas here), `1.x` is `1.*`, `a - b` is
/// `>=a, <=b`.
fn npm_range_to_req(range: &str) -> Option<semver::VersionReq> {
    let range = range.trim();
    if range.is_empty() || range == "*" || range.eq_ignore_ascii_case("x") || range == "latest" {
        return Some(semver::VersionReq::STAR);
    }
    let tokens: Vec<&str> = range.split_whitespace().collect();
    let mut parts: Vec<String> = Vec::new();
    let mut i = 0;
    while i < tokens.len() {
        if i + 2 < tokens.len() && tokens[i + 1] == "-" {
            parts.push(format!(">={}, <={}", tokens[i], tokens[i + 2]));
            i += 3;
            continue;
        }
        let t = tokens[i].replace(['x', 'X'], "*");
        let t = t.strip_prefix('v').unwrap_or(&t).to_owned();
        let starts_with_digit = t.starts_with(|c: char| c.is_ascii_digit());
        parts.push(if starts_with_digit && !t.contains('*') {
            format!("={t}")
        } else {
            t
        });
        i += 1;
    }
    semver::VersionReq::parse(&parts.join(", ")).ok()
}

/// The numbers of a final PyPI release (`2.31.0` → `[2, 31]`, trailing zeros dropped so
/// `1.0` and `1` compare equal); `None` for pre-, post- and dev releases and local versions.
fn final_release(version: &str) -> Option<Vec<u64>> {
    let v = version.trim().trim_start_matches(['v', 'V']);
    let v = v.split_once('!').map_or(v, |(_, rest)| rest);
    let mut parts: Vec<u64> = v
        .split('.')
        .map(|p| p.parse().ok())
        .collect::<Option<_>>()?;
    while parts.len() > 1 && parts.last() == Some(&0) {
        parts.pop();
    }
    Some(parts)
}

/// npm's `replace-registry-host=npmjs`: a `resolved` on the public registry is fetched from
/// the configured registry instead, its path kept.
fn replace_registry_host(resolved: &str, registry: &Url) -> Result<Url, String> {
    let url = Url::parse(resolved).map_err(|e| format!("bad `resolved` URL {resolved}: {e}"))?;
    match resolved.strip_prefix(NPMJS) {
        Some(path) if registry.as_str() != NPMJS => registry
            .join(path)
            .map_err(|e| format!("bad registry URL {registry}: {e}")),
        _ => Ok(url),
    }
}

fn same_host(a: &Url, b: &Url) -> bool {
    a.scheme() == b.scheme() && a.host_str() == b.host_str() && a.port() == b.port()
}

fn redact(url: &Url) -> Url {
    let mut url = url.clone();
    let _ = url.set_username("");
    let _ = url.set_password(None);
    url
}

/// The last segment of a URL's path, percent-decoded: the artifact's file name.
fn file_name(url: &Url) -> String {
    let last = url
        .path_segments()
        .and_then(|mut s| s.next_back())
        .unwrap_or("artifact");
    cerebro_guard::index::percent_decode(last)
}

/// A hash as lockfiles write it: `sha256:<hex>` (pip, uv, poetry) or Subresource Integrity
/// (`sha512-<base64>`).
pub fn parse_hash(hash: &str) -> Option<Expected> {
    match hash.split_once(':') {
        Some((algo, hex)) => Expected::from_fragment(&format!("{algo}={hex}")),
        None => Expected::from_integrity(hash),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn npm_ranges_pick_what_npm_would() {
        let doc = serde_json::json!({
            "dist-tags": {"latest": "1.2.0", "next": "2.0.0-rc.1"},
            "versions": {"1.0.0": {}, "1.2.0": {}, "1.10.1": {}, "2.0.0-rc.1": {}, "2.1.0": {}}
        });
        let pick = |r| npm_max_satisfying(&doc, r);
        assert_eq!(
            pick("^1.0.0").as_deref(),
            Some("1.2.0"),
            "the latest tag when admitted"
        );
        assert_eq!(pick(">1.2.0 <2").as_deref(), Some("1.10.1"));
        assert_eq!(pick("~1.2.0").as_deref(), Some("1.2.0"));
        assert_eq!(
            pick("1.0.0").as_deref(),
            Some("1.0.0"),
            "a bare version is exact"
        );
        assert_eq!(pick("1.x").as_deref(), Some("1.2.0"));
        assert_eq!(pick(">=1.5.0 <2").as_deref(), Some("1.10.1"));
        assert_eq!(pick("1.0.0 - 1.5.0").as_deref(), Some("1.2.0"));
        assert_eq!(pick("^1.0.0 || ^2.0.0").as_deref(), Some("1.2.0"));
        assert_eq!(pick("^2.0.0-rc.0 || ^2.1.0").as_deref(), Some("2.1.0"));
        assert_eq!(pick("*").as_deref(), Some("1.2.0"));
        assert_eq!(pick("next").as_deref(), Some("2.0.0-rc.1"));
        assert_eq!(pick("^3.0.0"), None);
        assert_eq!(pick("git+https://x/y.git"), None);
    }

    #[test]
    fn final_releases_order_by_their_numbers() {
        assert_eq!(final_release("2.31.0"), Some(vec![2, 31]));
        assert!(final_release("2.10") > final_release("2.9.9"));
        assert_eq!(final_release("1.0rc1"), None);
        assert_eq!(final_release("1.0.dev3"), None);
        assert_eq!(final_release("1.0+local"), None);
    }

    #[test]
    fn public_registry_urls_follow_the_configured_registry() {
        let mirror = Url::parse("http://127.0.0.1:4873/npm/").unwrap();
        assert_eq!(
            replace_registry_host("https://registry.npmjs.org/a/-/a-1.0.0.tgz", &mirror)
                .unwrap()
                .as_str(),
            "http://127.0.0.1:4873/npm/a/-/a-1.0.0.tgz"
        );
        assert_eq!(
            replace_registry_host("https://other.example/a/-/a-1.0.0.tgz", &mirror)
                .unwrap()
                .as_str(),
            "https://other.example/a/-/a-1.0.0.tgz"
        );
    }

    #[test]
    fn lockfile_hashes_are_understood() {
        let hex = "ab".repeat(32);
        assert_eq!(
            parse_hash(&format!("sha256:{hex}")),
            Some(Expected::Sha256(hex.clone()))
        );
        assert_eq!(parse_hash("sha256:zz"), None);
        assert_eq!(parse_hash("md5:00"), None);
        assert!(matches!(
            parse_hash(&format!("sha512-{}", "A".repeat(86) + "==")),
            Some(Expected::Sha512(_))
        ));
    }
}
