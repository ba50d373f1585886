//! Registry metadata: where to ask for a package, and which artifact of its newest version
//! to take.
//!
//! PyPI (`/pypi/NAME/json`): the version is `info.version`, the files are `urls`; the sdist is
//! preferred, since most PyPI malware ships as one with a `setup.py` and a benign set of
//! wheels alone would teach the model file types instead of behaviour; failing that a
//! pure-Python wheel (`*-none-any.whl`); a project with only platform wheels is skipped.
//! npm (`/NAME`, scoped names as `@scope%2Fname`): the version is `dist-tags.latest`, the
//! artifact `versions[v].dist.tarball`, checked against `dist.integrity` (sha512) or
//! `dist.shasum` (sha1). Every URL in metadata is resolved against the metadata's own URL,
//! since mirrors may give relative ones.

use std::fmt;

use reqwest::Url;
use serde_json::Value;

use super::human_bytes;

/// The public PyPI.
pub const DEFAULT_PYPI_URL: &str = "https://pypi.org/";
/// The public npm registry.
pub const DEFAULT_NPM_URL: &str = "https://registry.npmjs.org/";

/// What kind of artifact was chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArtifactKind {
    /// A PyPI source distribution.
    Sdist,
    /// A pure-Python PyPI wheel.
    Wheel,
    /// An npm package tarball.
    Tarball,
}

impl ArtifactKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ArtifactKind::Sdist => "sdist",
            ArtifactKind::Wheel => "wheel",
            ArtifactKind::Tarball => "tarball",
        }
    }

    /// The kind of a manifest's `file`, from its name.
    pub fn of_file(registry: super::Ecosystem, file: &str) -> ArtifactKind {
        match registry {
            super::Ecosystem::Npm => ArtifactKind::Tarball,
            super::Ecosystem::Pypi if file.to_ascii_lowercase().ends_with(".whl") => {
                ArtifactKind::Wheel
            }
            super::Ecosystem::Pypi => ArtifactKind::Sdist,
        }
    }
}

/// The hash the registry publishes for an artifact, checked after download.
pub use cerebro_fetch::Expected;

/// The artifact chosen for a package.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Artifact {
    pub version: String,
    /// File name (the last segment of the URL for npm).
    pub file: String,
    pub url: Url,
    pub kind: ArtifactKind,
    /// Size in bytes, where the registry says.
    pub size: Option<u64>,
    pub expected: Expected,
}

/// Why a package was left out of the manifest; the short code goes in `*-skipped.csv`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum SkipReason {
    /// The registry has no such package (HTTP 404).
    NotFound,
    /// The metadata names no version, or the version has no files.
    NoFiles,
    /// PyPI: no sdist and no pure-Python wheel (only platform wheels, eggs, …).
    PlatformOnly,
    /// The artifact is larger than the size limit.
    TooLarge,
    /// The downloaded bytes do not match the registry's hash.
    IntegrityMismatch,
    /// The metadata is not what the registry's API documents.
    BadMetadata,
    /// The registry answered with an HTTP error other than 404.
    HttpError,
    /// The network failed, after retries.
    Network,
    /// Writing to the cache failed.
    CacheError,
}

impl SkipReason {
    pub fn as_str(self) -> &'static str {
        match self {
            SkipReason::NotFound => "not-found",
            SkipReason::NoFiles => "no-files",
            SkipReason::PlatformOnly => "platform-only",
            SkipReason::TooLarge => "too-large",
            SkipReason::IntegrityMismatch => "integrity-mismatch",
            SkipReason::BadMetadata => "bad-metadata",
            SkipReason::HttpError => "http-error",
            SkipReason::Network => "network",
            SkipReason::CacheError => "cache-error",
        }
    }
}

impl fmt::Display for SkipReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A package left out, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skip {
    pub reason: SkipReason,
    /// The version concerned, where one was found.
    pub version: Option<String>,
    pub detail: String,
}

impl Skip {
    pub fn new(reason: SkipReason, detail: impl Into<String>) -> Skip {
        Skip {
            reason,
            version: None,
            detail: detail.into(),
        }
    }

    fn at(mut self, version: &str) -> Skip {
        self.version = Some(version.to_owned());
        self
    }
}

/// `base` with a trailing `/`, so that joining a relative path appends to it.
pub fn base_url(base: &str) -> Result<Url, String> {
    let mut url = Url::parse(base).map_err(|e| format!("{base:?} is not a URL: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!("{base:?} is not an http or https URL"));
    }
    if !url.path().ends_with('/') {
        let path = format!("{}/", url.path());
        url.set_path(&path);
    }
    Ok(url)
}

/// Percent-encodes everything but unreserved characters (and `@`, harmless in a path).
fn escape_segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'@') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The JSON API URL of a PyPI project: `BASE/pypi/NAME/json`.
pub fn pypi_metadata_url(base: &Url, name: &str) -> Result<Url, String> {
    if name.is_empty() {
        return Err("empty package name".to_owned());
    }
    base.join(&format!("pypi/{}/json", escape_segment(name)))
        .map_err(|e| format!("cannot build the metadata URL of {name:?}: {e}"))
}

/// The packument URL of an npm package: `BASE/NAME`, with a scoped `@scope/name` written
/// `@scope%2Fname` as the registry expects.
pub fn npm_metadata_url(base: &Url, name: &str) -> Result<Url, String> {
    if name.is_empty() || name.starts_with('.') {
        return Err(format!("{name:?} is not an npm package name"));
    }
    let escaped = match name.strip_prefix('@').and_then(|n| n.split_once('/')) {
        Some((scope, rest)) => format!("@{}%2F{}", escape_segment(scope), escape_segment(rest)),
        None => escape_segment(name),
    };
    base.join(&escaped)
        .map_err(|e| format!("cannot build the metadata URL of {name:?}: {e}"))
}

/// The JSON API URL of one release of a PyPI project: `BASE/pypi/NAME/VERSION/json`.
pub fn pypi_release_url(base: &Url, name: &str, version: &str) -> Result<Url, String> {
    if name.is_empty() || version.is_empty() {
        return Err("empty package name or version".to_owned());
    }
    base.join(&format!(
        "pypi/{}/{}/json",
        escape_segment(name),
        escape_segment(version)
    ))
    .map_err(|e| format!("cannot build the metadata URL of {name:?} {version:?}: {e}"))
}

/// The URL of the file named `file` of `version` in PyPI metadata (a release's `urls`, or
/// a project's `releases[version]`), resolved against `meta_url`.
pub fn pypi_file_url(meta: &Value, meta_url: &Url, version: &str, file: &str) -> Option<Url> {
    let lists = [
        meta.get("urls"),
        meta.get("releases").and_then(|r| r.get(version)),
    ];
    lists
        .into_iter()
        .flatten()
        .filter_map(Value::as_array)
        .flatten()
        .find(|f| f.get("filename").and_then(Value::as_str) == Some(file))
        .and_then(|f| f.get("url")?.as_str())
        .and_then(|u| meta_url.join(u).ok())
}

/// The tarball URL of `version` in an npm packument, resolved against `meta_url`.
pub fn npm_tarball_of(meta: &Value, meta_url: &Url, version: &str) -> Option<Url> {
    meta.get("versions")?
        .get(version)?
        .pointer("/dist/tarball")?
        .as_str()
        .and_then(|u| meta_url.join(u).ok())
}

/// Archive formats the scanner reads, by file name.
fn readable_sdist(file: &str) -> bool {
    let lower = file.to_ascii_lowercase();
    [".tar.gz", ".tgz", ".tar.bz2", ".tbz2", ".zip", ".tar"]
        .iter()
        .any(|e| lower.ends_with(e))
}

/// Preference among sdists: `.tar.gz` first (the modern standard), then the rest.
fn sdist_rank(file: &str) -> u8 {
    let lower = file.to_ascii_lowercase();
    if lower.ends_with(".tar.gz") {
        0
    } else if lower.ends_with(".zip") {
        1
    } else {
        2
    }
}

/// Whether a wheel's tags make it pure Python: ABI `none`, platform `any`, and only `py*`
/// interpreter tags (`py3-none-any`, `py2.py3-none-any`).
pub fn is_pure_wheel(file: &str) -> bool {
    let Some(stem) = file
        .strip_suffix(".whl")
        .or_else(|| file.strip_suffix(".WHL"))
    else {
        return false;
    };
    let parts: Vec<&str> = stem.split('-').collect();
    if parts.len() < 5 {
        return false;
    }
    let (py, abi, plat) = (
        parts[parts.len() - 3],
        parts[parts.len() - 2],
        parts[parts.len() - 1],
    );
    abi == "none" && plat == "any" && py.split('.').all(|t| t.starts_with("py"))
}

/// Preference among pure wheels: `py3` only, then `py2.py3`, then any other.
fn wheel_rank(file: &str) -> u8 {
    if file.ends_with("-py3-none-any.whl") {
        0
    } else if file.ends_with("-py2.py3-none-any.whl") {
        1
    } else {
        2
    }
}

/// Picks the artifact of a PyPI project's newest version from its JSON metadata, fetched
/// from `meta_url`. Applies the size limit (`max_bytes`) where the metadata gives a size.
pub fn choose_pypi(meta: &Value, meta_url: &Url, max_bytes: u64) -> Result<Artifact, Skip> {
    let version = meta
        .pointer("/info/version")
        .and_then(Value::as_str)
        .filter(|v| !v.is_empty())
        .ok_or_else(|| Skip::new(SkipReason::BadMetadata, "no info.version in the metadata"))?;
    let files = meta
        .get("urls")
        .and_then(Value::as_array)
        .ok_or_else(|| Skip::new(SkipReason::BadMetadata, "no urls list").at(version))?;
    if files.is_empty() {
        return Err(Skip::new(
            SkipReason::NoFiles,
            format!("version {version} has no files"),
        )
        .at(version));
    }
    fn file_name(f: &Value) -> &str {
        f.get("filename").and_then(Value::as_str).unwrap_or("")
    }
    let yanked = |f: &Value| f.get("yanked").and_then(Value::as_bool).unwrap_or(false);
    fn packagetype(f: &Value) -> &str {
        f.get("packagetype").and_then(Value::as_str).unwrap_or("")
    }

    let mut sdists: Vec<&Value> = files
        .iter()
        .filter(|f| packagetype(f) == "sdist" && readable_sdist(file_name(f)))
        .collect();
    sdists.sort_by_key(|f| (yanked(f), sdist_rank(file_name(f))));
    let mut wheels: Vec<&Value> = files
        .iter()
        .filter(|f| packagetype(f) == "bdist_wheel" && is_pure_wheel(file_name(f)))
        .collect();
    wheels.sort_by_key(|f| (yanked(f), wheel_rank(file_name(f))));

    let (chosen, kind) = match (sdists.first(), wheels.first()) {
        (Some(s), _) => (*s, ArtifactKind::Sdist),
        (None, Some(w)) => (*w, ArtifactKind::Wheel),
        (None, None) => {
            let mut names: Vec<&str> = files.iter().map(file_name).collect();
            let more = names.len().saturating_sub(3);
            names.truncate(3);
            let mut detail = format!(
                "version {version} has no sdist and no pure-Python wheel, only {}",
                names.join(", ")
            );
            if more > 0 {
                detail.push_str(&format!(" and {more} more"));
            }
            return Err(Skip::new(SkipReason::PlatformOnly, detail).at(version));
        }
    };
    let file = file_name(chosen).to_owned();
    if file.is_empty() || file.contains('/') || file.contains('\\') {
        return Err(Skip::new(SkipReason::BadMetadata, "a file without a usable name").at(version));
    }
    let url = chosen
        .get("url")
        .and_then(Value::as_str)
        .ok_or_else(|| Skip::new(SkipReason::BadMetadata, format!("{file} has no url")).at(version))
        .and_then(|u| {
            meta_url.join(u).map_err(|e| {
                Skip::new(
                    SkipReason::BadMetadata,
                    format!("bad url {u:?} for {file}: {e}"),
                )
                .at(version)
            })
        })?;
    let size = chosen.get("size").and_then(Value::as_u64);
    let expected = match chosen.pointer("/digests/sha256").and_then(Value::as_str) {
        Some(h) if super::is_sha256_hex(&h.to_ascii_lowercase()) => {
            Expected::Sha256(h.to_ascii_lowercase())
        }
        _ => Expected::Nothing,
    };
    if let Some(size) = size.filter(|&s| s > max_bytes) {
        return Err(Skip::new(
            SkipReason::TooLarge,
            format!(
                "{} {file} is {}, over the {} limit",
                kind.as_str(),
                human_bytes(size),
                human_bytes(max_bytes)
            ),
        )
        .at(version));
    }
    Ok(Artifact {
        version: version.to_owned(),
        file,
        url,
        kind,
        size,
        expected,
    })
}

/// Picks the tarball of an npm package's `latest` version from its packument (full or
/// abbreviated), fetched from `meta_url`.
pub fn choose_npm(meta: &Value, meta_url: &Url) -> Result<Artifact, Skip> {
    let version = meta
        .pointer("/dist-tags/latest")
        .and_then(Value::as_str)
        .filter(|v| !v.is_empty())
        .ok_or_else(|| {
            let unpublished = meta.pointer("/time/unpublished").is_some();
            Skip::new(
                if unpublished {
                    SkipReason::NoFiles
                } else {
                    SkipReason::BadMetadata
                },
                if unpublished {
                    "the package was unpublished"
                } else {
                    "no dist-tags.latest in the packument"
                },
            )
        })?;
    let dist = meta
        .get("versions")
        .and_then(|v| v.get(version))
        .and_then(|v| v.get("dist"))
        .ok_or_else(|| {
            Skip::new(
                SkipReason::NoFiles,
                format!("latest version {version} is not in versions"),
            )
            .at(version)
        })?;
    let tarball = dist
        .get("tarball")
        .and_then(Value::as_str)
        .ok_or_else(|| Skip::new(SkipReason::BadMetadata, "no dist.tarball").at(version))?;
    let url = meta_url.join(tarball).map_err(|e| {
        Skip::new(
            SkipReason::BadMetadata,
            format!("bad tarball url {tarball:?}: {e}"),
        )
        .at(version)
    })?;
    let file = url
        .path_segments()
        .and_then(|mut s| s.next_back())
        .filter(|f| !f.is_empty())
        .unwrap_or("package.tgz")
        .to_owned();
    let expected = npm_expected(dist);
    Ok(Artifact {
        version: version.to_owned(),
        file,
        url,
        kind: ArtifactKind::Tarball,
        size: dist.get("size").and_then(Value::as_u64),
        expected,
    })
}

/// The strongest hash an npm `dist` carries: its `integrity`, else `shasum` (sha1).
fn npm_expected(dist: &Value) -> Expected {
    let integrity = dist.get("integrity").and_then(Value::as_str).unwrap_or("");
    if let Some(expected) = Expected::from_integrity(integrity) {
        return expected;
    }
    match dist.get("shasum").and_then(Value::as_str) {
        Some(h) if h.len() == 40 && h.bytes().all(|b| b.is_ascii_hexdigit()) => {
            Expected::Sha1(h.to_ascii_lowercase())
        }
        _ => Expected::Nothing,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine as _;
    use serde_json::json;

    fn base() -> Url {
        base_url("http://127.0.0.1:9/").unwrap()
    }

    #[test]
    fn metadata_urls() {
        let pypi = base_url("https://mirror.example/simple-ish").unwrap();
        assert_eq!(
            pypi_metadata_url(&pypi, "requests").unwrap().as_str(),
            "https://mirror.example/simple-ish/pypi/requests/json"
        );
        assert_eq!(
            npm_metadata_url(&base(), "@types/node").unwrap().as_str(),
            "http://127.0.0.1:9/@types%2Fnode"
        );
        assert_eq!(
            npm_metadata_url(&base(), "semver").unwrap().as_str(),
            "http://127.0.0.1:9/semver"
        );
    }

    #[test]
    fn wheel_tags() {
        assert!(is_pure_wheel("six-1.16.0-py2.py3-none-any.whl"));
        assert!(is_pure_wheel("a_b-1.0-1-py3-none-any.whl"));
        assert!(!is_pure_wheel(
            "numpy-2.0-cp312-cp312-manylinux_2_17_x86_64.whl"
        ));
        assert!(!is_pure_wheel("x-1.0-cp39-abi3-any.whl"));
        assert!(!is_pure_wheel("x-1.0.tar.gz"));
    }

    #[test]
    fn pypi_relative_url_and_sdist_preference() {
        let meta = json!({
            "info": {"version": "1.0"},
            "urls": [
                {"filename": "x-1.0-py3-none-any.whl", "packagetype": "bdist_wheel",
                 "url": "https://files.example/x-1.0-py3-none-any.whl", "size": 10,
                 "digests": {"sha256": "a".repeat(64)}},
                {"filename": "x-1.0.tar.gz", "packagetype": "sdist",
                 "url": "../../packages/x-1.0.tar.gz", "size": 20,
                 "digests": {"sha256": "B".repeat(64)}}
            ]
        });
        let url = pypi_metadata_url(&base(), "x").unwrap();
        let a = choose_pypi(&meta, &url, 100).unwrap();
        assert_eq!(a.kind, ArtifactKind::Sdist);
        assert_eq!(a.url.as_str(), "http://127.0.0.1:9/packages/x-1.0.tar.gz");
        assert_eq!(a.expected, Expected::Sha256("b".repeat(64)));
        let skip = choose_pypi(&meta, &url, 15).unwrap_err();
        assert_eq!(skip.reason, SkipReason::TooLarge);
    }

    #[test]
    fn npm_integrity() {
        let meta = json!({
            "dist-tags": {"latest": "2.0.0"},
            "versions": {"2.0.0": {"dist": {
                "tarball": "https://r.example/@a/b/-/b-2.0.0.tgz",
                "integrity": format!("sha512-{}", base64::engine::general_purpose::STANDARD.encode([7u8; 64])),
                "shasum": "0".repeat(40)
            }}}
        });
        let a = choose_npm(&meta, &base()).unwrap();
        assert_eq!(a.file, "b-2.0.0.tgz");
        assert_eq!(a.expected, Expected::Sha512(vec![7u8; 64]));
    }
}
