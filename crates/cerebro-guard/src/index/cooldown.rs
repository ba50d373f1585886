//! The release-age cooldown: releases published less than `min_release_age` ago are taken
//! out of the pages and packuments the guard serves, so the installer resolves to the newest
//! release old enough, whatever it was asked for.
//!
//! Publish times come from the registry's own metadata: a PyPI file's `upload-time` (PEP 700,
//! JSON simple API only) and an npm packument's `time` map (the full packument: npm asks for
//! the abbreviated one, which has none, so the guard asks upstream for the full one instead). Where a
//! registry publishes no times (an HTML-only mirror, a private registry), the public
//! registry's time for the same release is used (pypi.org's JSON API, registry.npmjs.org's
//! packument; both overridable for tests). A release the public registry does not have (a
//! private package) cannot be timed and is not held back; the guard reports it once. A public
//! registry that cannot be reached stops the install (fail closed): the guard cannot tell a
//! release minutes old from one years old.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use reqwest::Url;
use serde_json::Value;

use super::simple::FileLink;
use super::Shared;
use crate::policy::release_age;
use cerebro_archive::Ecosystem;
use cerebro_fetch::FetchError;

/// The cooldown's settings for one guard index.
#[derive(Debug, Clone)]
pub struct Cooldown {
    pub min_age: Duration,
    /// Names, or prefixes ending in `*`, that are never held back.
    pub exempt: Vec<String>,
    /// The public PyPI (`https://pypi.org/`): `<url>pypi/<name>/json`.
    pub public_pypi: Url,
    /// The public npm registry (`https://registry.npmjs.org/`).
    pub public_npm: Url,
}

/// A release hidden from the installer because it is too new.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Held {
    pub ecosystem: Ecosystem,
    pub name: String,
    pub version: String,
    pub published: SystemTime,
}

impl Held {
    /// How long ago it was published, as of `now`.
    pub fn age(&self, now: SystemTime) -> Duration {
        now.duration_since(self.published).unwrap_or_default()
    }

    /// `published 3 hours ago (min_release_age 2 days)`.
    pub fn reason(&self, now: SystemTime, min_age: Duration) -> String {
        format!(
            "published {} ago (min_release_age {})",
            release_age::ago(self.age(now)),
            release_age::describe(min_age)
        )
    }
}

/// What the cooldown saw during one command.
pub(super) struct State {
    /// The time every age is measured from: one instant per command, so the resolution and
    /// the install see the same releases.
    pub now: SystemTime,
    held: Mutex<Vec<Held>>,
    /// Packages with releases no registry gave a time for (only on a private index).
    untimed: Mutex<Vec<(Ecosystem, String)>>,
    /// npm publish times by package, then version (for lockfile pins).
    npm_times: Mutex<HashMap<String, Arc<HashMap<String, SystemTime>>>>,
}

impl Default for State {
    fn default() -> State {
        State {
            now: SystemTime::now(),
            held: Mutex::default(),
            untimed: Mutex::default(),
            npm_times: Mutex::default(),
        }
    }
}

impl State {
    pub fn held(&self) -> Vec<Held> {
        self.held.lock().expect("lock").clone()
    }

    pub fn untimed(&self) -> Vec<(Ecosystem, String)> {
        self.untimed.lock().expect("lock").clone()
    }

    fn hold(&self, held: Held) {
        let mut list = self.held.lock().expect("lock");
        if let Some(h) = list.iter_mut().find(|h| {
            h.ecosystem == held.ecosystem && h.name == held.name && h.version == held.version
        }) {
            h.published = h.published.min(held.published);
        } else {
            list.push(held);
        }
    }

    fn note_untimed(&self, ecosystem: Ecosystem, name: &str) {
        let mut list = self.untimed.lock().expect("lock");
        if !list.iter().any(|(e, n)| *e == ecosystem && n == name) {
            list.push((ecosystem, name.to_owned()));
        }
    }
}

/// The cooldown in force for `name`, if any (not off, not exempt).
fn active<'a>(shared: &'a Shared, ecosystem: Ecosystem, name: &str) -> Option<&'a Cooldown> {
    shared
        .cooldown
        .as_ref()
        .filter(|c| !c.min_age.is_zero() && !release_age::exempt(&c.exempt, ecosystem, name))
}

/// Whether a release published at `published` is too new and not let through (allowlist,
/// or allowed for this install); records it as held back when so.
fn hides(
    shared: &Shared,
    cooldown: &Cooldown,
    ecosystem: Ecosystem,
    name: &str,
    version: &str,
    published: SystemTime,
) -> bool {
    // One instant per command; a long-running index (the daemon, whose pages expire) serves
    // command after command for hours, and measures each release's age when it is asked.
    let now = if shared.document_ttl.is_some() {
        SystemTime::now()
    } else {
        shared.cool.now
    };
    let age = now.duration_since(published).unwrap_or_default();
    if age >= cooldown.min_age || shared.gate.lets_through_new(ecosystem, name, version) {
        return false;
    }
    shared.cool.hold(Held {
        ecosystem,
        name: name.to_owned(),
        version: version.to_owned(),
        published,
    });
    true
}

/// The too-new release `name@version` of an npm lockfile, when the cooldown holds it back
/// (and nothing lets it through); the packument's times must have been loaded.
pub(super) fn npm_pin(shared: &Shared, name: &str, version: &str) -> Option<Held> {
    let cooldown = active(shared, Ecosystem::Npm, name)?;
    let times = shared
        .cool
        .npm_times
        .lock()
        .expect("lock")
        .get(name)?
        .clone();
    let published = *times.get(version)?;
    hides(shared, cooldown, Ecosystem::Npm, name, version, published).then(|| Held {
        ecosystem: Ecosystem::Npm,
        name: name.to_owned(),
        version: version.to_owned(),
        published,
    })
}

/// Whether the npm times of `name` are known yet.
pub(super) fn npm_times_known(shared: &Shared, name: &str) -> bool {
    shared
        .cool
        .npm_times
        .lock()
        .expect("lock")
        .contains_key(name)
}

// ---------------------------------------------------------------------------------------------
// PyPI.

/// Release times from the public PyPI's JSON API: by file name, and by version (its first
/// file's upload).
#[derive(Default)]
struct PublicPypi {
    by_file: HashMap<String, SystemTime>,
    by_version: HashMap<String, SystemTime>,
}

/// Takes the too-new files out of a project page.
pub(super) async fn filter_pypi<A>(
    shared: &Shared,
    project: &str,
    links: Vec<(FileLink, A)>,
) -> Result<Vec<(FileLink, A)>, String> {
    let Some(cooldown) = active(shared, Ecosystem::Pypi, project) else {
        return Ok(links);
    };
    let mut times: Vec<Option<SystemTime>> = links
        .iter()
        .map(|(l, _)| l.upload_time.as_deref().and_then(parse_time))
        .collect();
    if times.iter().any(Option::is_none) {
        if let Some(public) = public_pypi(shared, cooldown, project).await? {
            for ((link, _), time) in links.iter().zip(times.iter_mut()) {
                if time.is_none() {
                    *time = public.by_file.get(&link.filename).copied().or_else(|| {
                        pypi_version(&link.filename)
                            .and_then(|v| public.by_version.get(&version_key(&v)).copied())
                    });
                }
            }
        }
        if times.iter().any(Option::is_none) {
            shared.cool.note_untimed(Ecosystem::Pypi, project);
        }
    }
    Ok(links
        .into_iter()
        .zip(times)
        .filter(|((link, _), time)| {
            let Some(time) = *time else { return true };
            let version = pypi_version(&link.filename).unwrap_or_else(|| link.filename.clone());
            !hides(shared, cooldown, Ecosystem::Pypi, project, &version, time)
        })
        .map(|(l, _)| l)
        .collect())
}

async fn public_pypi(
    shared: &Shared,
    cooldown: &Cooldown,
    project: &str,
) -> Result<Option<PublicPypi>, String> {
    let url = cooldown
        .public_pypi
        .join(&format!("pypi/{project}/json"))
        .map_err(|e| format!("bad public PyPI URL {}: {e}", cooldown.public_pypi))?;
    let doc = match shared.document(&url, "application/json", None).await {
        Ok(doc) => doc,
        Err(FetchError::NotFound { .. }) => return Ok(None),
        Err(e) => return Err(format!("cannot get the release times of {project}: {e}")),
    };
    let json: Value = serde_json::from_slice(&doc.body)
        .map_err(|e| format!("unreadable release times of {project} from {url}: {e}"))?;
    let mut out = PublicPypi::default();
    for (version, files) in json
        .get("releases")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
    {
        for f in files.as_array().into_iter().flatten() {
            let time = ["upload_time_iso_8601", "upload_time"]
                .iter()
                .find_map(|k| f.get(*k).and_then(Value::as_str).and_then(parse_time));
            let (Some(time), Some(file)) = (time, f.get("filename").and_then(Value::as_str)) else {
                continue;
            };
            out.by_file.insert(file.to_owned(), time);
            let slot = out.by_version.entry(version_key(version)).or_insert(time);
            *slot = (*slot).min(time);
        }
    }
    Ok(Some(out))
}

/// The version in a distribution's file name: a wheel's second field, an sdist's text after
/// its last `-`.
pub fn pypi_version(filename: &str) -> Option<String> {
    if let Some(stem) = filename.strip_suffix(".whl") {
        return stem.split('-').nth(1).map(str::to_owned);
    }
    if let Some(stem) = filename.strip_suffix(".egg") {
        return stem.split('-').nth(1).map(str::to_owned);
    }
    let stem = [".tar.gz", ".tar.bz2", ".tar.xz", ".tgz", ".zip", ".tar"]
        .iter()
        .find_map(|ext| filename.strip_suffix(ext))?;
    stem.rsplit_once('-')
        .map(|(_, v)| v.to_owned())
        .filter(|v| !v.is_empty())
}

/// A version as compared across indexes: lowercase, trailing `.0` parts dropped (PEP 440
/// `1.1 == 1.1.0`).
pub fn version_key(version: &str) -> String {
    let mut v = version.trim().to_ascii_lowercase();
    while let Some(s) = v.strip_suffix(".0") {
        if s.is_empty() || !s.contains(|c: char| c.is_ascii_digit()) {
            break;
        }
        v = s.to_owned();
    }
    v
}

// ---------------------------------------------------------------------------------------------
// npm.

/// What to ask an npm registry for to get publish times: the full packument.
pub(super) const FULL_PACKUMENT: &str = "application/json";

/// Whether the packument of `name` must carry publish times (the cooldown applies to it).
pub(super) fn needs_times(shared: &Shared, name: &str) -> bool {
    active(shared, Ecosystem::Npm, name).is_some()
}

/// Finds the publish times of an npm packument (its own `time`; else the full packument's,
/// when `doc` was the abbreviated one; else the public registry's) and keeps them for
/// [`filter_npm`] and [`npm_pin`].
pub(super) async fn load_npm_times(
    shared: &Shared,
    name: &str,
    url: &Url,
    auth: Option<&str>,
    doc: &Value,
) -> Result<(), String> {
    let Some(cooldown) = active(shared, Ecosystem::Npm, name) else {
        return Ok(());
    };
    if npm_times_known(shared, name) {
        return Ok(());
    }
    let versions: Vec<String> = doc
        .get("versions")
        .and_then(Value::as_object)
        .map(|v| v.keys().cloned().collect())
        .unwrap_or_default();
    let mut times = time_map(doc);
    let complete = |t: &HashMap<String, SystemTime>| versions.iter().all(|v| t.contains_key(v));
    if !complete(&times) {
        // The abbreviated packument (`application/vnd.npm.install-v1+json`) has no `time`.
        match shared.document(url, FULL_PACKUMENT, auth).await {
            Ok(full) => {
                if let Ok(full) = serde_json::from_slice::<Value>(&full.body) {
                    for (v, t) in time_map(&full) {
                        times.entry(v).or_insert(t);
                    }
                }
            }
            Err(FetchError::NotFound { .. }) => {}
            Err(e) => return Err(format!("cannot get the release times of {name}: {e}")),
        }
    }
    if !complete(&times) && !same_registry(url, &cooldown.public_npm) {
        let public = cooldown
            .public_npm
            .join(&name.replacen('/', "%2f", 1))
            .map_err(|e| format!("bad public npm URL {}: {e}", cooldown.public_npm))?;
        match shared.document(&public, FULL_PACKUMENT, None).await {
            Ok(doc) => {
                if let Ok(doc) = serde_json::from_slice::<Value>(&doc.body) {
                    for (v, t) in time_map(&doc) {
                        times.entry(v).or_insert(t);
                    }
                }
            }
            Err(FetchError::NotFound { .. }) => {}
            Err(e) => return Err(format!("cannot get the release times of {name}: {e}")),
        }
    }
    if !complete(&times) {
        shared.cool.note_untimed(Ecosystem::Npm, name);
    }
    shared
        .cool
        .npm_times
        .lock()
        .expect("lock")
        .insert(name.to_owned(), Arc::new(times));
    Ok(())
}

fn same_registry(a: &Url, b: &Url) -> bool {
    a.scheme() == b.scheme()
        && a.host_str() == b.host_str()
        && a.port_or_known_default() == b.port_or_known_default()
}

fn time_map(doc: &Value) -> HashMap<String, SystemTime> {
    doc.get("time")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
        .filter(|(k, _)| k.as_str() != "created" && k.as_str() != "modified")
        .filter_map(|(k, v)| Some((k.clone(), parse_time(v.as_str()?)?)))
        .collect()
}

/// Takes the too-new versions out of a packument about to be served, and points the
/// dist-tags that named one at the newest remaining release (`latest`) or drops them, as
/// npm's and pnpm's own minimum-release-age settings do.
pub(super) fn filter_npm(shared: &Shared, name: &str, doc: &mut Value) {
    let Some(cooldown) = active(shared, Ecosystem::Npm, name) else {
        return;
    };
    let Some(times) = shared
        .cool
        .npm_times
        .lock()
        .expect("lock")
        .get(name)
        .cloned()
    else {
        return;
    };
    let Some(versions) = doc.get_mut("versions").and_then(Value::as_object_mut) else {
        return;
    };
    let hidden: Vec<String> = versions
        .keys()
        .filter(|v| {
            times
                .get(*v)
                .is_some_and(|t| hides(shared, cooldown, Ecosystem::Npm, name, v, *t))
        })
        .cloned()
        .collect();
    if hidden.is_empty() {
        return;
    }
    for v in &hidden {
        versions.remove(v);
    }
    let remaining: Vec<String> = versions.keys().cloned().collect();
    if let Some(time) = doc.get_mut("time").and_then(Value::as_object_mut) {
        for v in &hidden {
            time.remove(v);
        }
    }
    if let Some(tags) = doc.get_mut("dist-tags").and_then(Value::as_object_mut) {
        let newest = newest_release(&remaining);
        let stale: Vec<String> = tags
            .iter()
            .filter(|(_, v)| v.as_str().is_some_and(|v| hidden.iter().any(|h| h == v)))
            .map(|(k, _)| k.clone())
            .collect();
        for tag in stale {
            match (&newest, tag.as_str()) {
                (Some(n), "latest") => {
                    tags.insert(tag, Value::String(n.clone()));
                }
                _ => {
                    tags.remove(&tag);
                }
            }
        }
    }
}

/// The highest version that is not a prerelease (the highest of all when every one is).
fn newest_release(versions: &[String]) -> Option<String> {
    let parsed: Vec<(&String, Semver)> = versions
        .iter()
        .filter_map(|v| Some((v, Semver::parse(v)?)))
        .collect();
    let stable = parsed.iter().filter(|(_, s)| s.pre.is_empty());
    stable
        .max_by(|a, b| a.1.cmp(&b.1))
        .or_else(|| parsed.iter().max_by(|a, b| a.1.cmp(&b.1)))
        .map(|(v, _)| (*v).clone())
}

/// The highest stable version of `versions` below `version` (the release before it, for
/// the release diff); `None` when there is none or `version` is not semver.
pub(super) fn npm_release_before<'a>(versions: &[&'a str], version: &str) -> Option<&'a str> {
    let this = Semver::parse(version)?;
    versions
        .iter()
        .filter_map(|v| Some((*v, Semver::parse(v)?)))
        .filter(|(_, s)| s.pre.is_empty() && *s < this)
        .max_by(|a, b| a.1.cmp(&b.1))
        .map(|(v, _)| v)
}

/// Enough of semver to order versions: numbers, then prereleases before the release.
#[derive(Debug, PartialEq, Eq)]
struct Semver {
    core: [u64; 3],
    pre: Vec<String>,
}

impl Semver {
    fn parse(v: &str) -> Option<Semver> {
        let v = v.trim().trim_start_matches('v');
        let v = v.split('+').next()?;
        let (core, pre) = match v.split_once('-') {
            Some((c, p)) => (c, p.split('.').map(str::to_owned).collect()),
            None => (v, Vec::new()),
        };
        let mut parts = core.split('.').map(|p| p.parse::<u64>().ok());
        let core = [parts.next()??, parts.next()??, parts.next()??];
        Some(Semver { core, pre })
    }
}

impl Ord for Semver {
    fn cmp(&self, other: &Semver) -> std::cmp::Ordering {
        use std::cmp::Ordering;
        self.core
            .cmp(&other.core)
            .then_with(|| match (self.pre.is_empty(), other.pre.is_empty()) {
                (true, true) => Ordering::Equal,
                (true, false) => Ordering::Greater,
                (false, true) => Ordering::Less,
                (false, false) => {
                    for (a, b) in self.pre.iter().zip(&other.pre) {
                        let o = match (a.parse::<u64>(), b.parse::<u64>()) {
                            (Ok(x), Ok(y)) => x.cmp(&y),
                            (Ok(_), Err(_)) => Ordering::Less,
                            (Err(_), Ok(_)) => Ordering::Greater,
                            _ => a.cmp(b),
                        };
                        if o != Ordering::Equal {
                            return o;
                        }
                    }
                    self.pre.len().cmp(&other.pre.len())
                }
            })
    }
}

impl PartialOrd for Semver {
    fn partial_cmp(&self, other: &Semver) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

// ---------------------------------------------------------------------------------------------
// Times.

/// Parses an RFC 3339 / ISO 8601 time as registries write them: `2024-01-01T00:00:00.000Z`,
/// `2024-01-01T00:00:00+02:00`, or without a zone (PyPI's `upload_time`, UTC).
pub fn parse_time(text: &str) -> Option<SystemTime> {
    let t = text.trim();
    let b = t.as_bytes();
    if b.len() < 19 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let s = t.get(r)?;
        s.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| s.parse().ok())?
    };
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, s) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if b[13] != b':' || b[16] != b':' || !(1..=12).contains(&mo) || !(1..=31).contains(&d) {
        return None;
    }
    if h > 23 || mi > 59 || s > 60 {
        return None;
    }
    let mut rest = &t[19..];
    if let Some(frac) = rest.strip_prefix('.') {
        let n = frac.bytes().take_while(u8::is_ascii_digit).count();
        rest = &frac[n..];
    }
    let offset = match rest {
        "" | "Z" | "z" => 0,
        zone => {
            let sign = match zone.as_bytes().first()? {
                b'+' => 1,
                b'-' => -1,
                _ => return None,
            };
            let (zh, zm) = zone[1..].split_once(':')?;
            sign * (zh.parse::<i64>().ok()? * 3600 + zm.parse::<i64>().ok()? * 60)
        }
    };
    let secs = days_from_civil(y, mo, d) * 86_400 + h * 3600 + mi * 60 + s - offset;
    u64::try_from(secs)
        .ok()
        .map(|s| UNIX_EPOCH + Duration::from_secs(s))
}

/// `2024-01-01T00:00:00Z`.
pub fn format_time(time: SystemTime) -> String {
    let secs = time
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs() as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (
        if m <= 2 {
            yoe + era * 400 + 1
        } else {
            yoe + era * 400
        },
        m,
        d,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_parse_and_format() {
        let t = parse_time("2024-01-01T00:00:00.000Z").unwrap();
        assert_eq!(t, UNIX_EPOCH + Duration::from_secs(1_704_067_200));
        assert_eq!(format_time(t), "2024-01-01T00:00:00Z");
        assert_eq!(
            parse_time("2023-05-22T15:12:42.271785Z"),
            parse_time("2023-05-22T17:12:42+02:00")
        );
        assert_eq!(
            parse_time("2023-05-22T15:12:42"),
            parse_time("2023-05-22T15:12:42Z")
        );
        assert_eq!(
            format_time(parse_time("2000-02-29T23:59:59Z").unwrap()),
            "2000-02-29T23:59:59Z"
        );
        for bad in [
            "",
            "yesterday",
            "2024-13-01T00:00:00Z",
            "2024-01-01",
            "1969-12-31T00:00:00Z",
        ] {
            assert_eq!(parse_time(bad), None, "{bad}");
        }
    }

    #[test]
    fn versions_of_file_names() {
        assert_eq!(
            pypi_version("alpha_lib-1.1.0-py3-none-any.whl").as_deref(),
            Some("1.1.0")
        );
        assert_eq!(pypi_version("foo-bar-2.0.tar.gz").as_deref(), Some("2.0"));
        assert_eq!(pypi_version("x-1.0.zip").as_deref(), Some("1.0"));
        assert_eq!(pypi_version("README"), None);
        assert_eq!(version_key("1.1.0"), version_key("1.1"));
        assert_ne!(version_key("1.10"), version_key("1.1"));
        assert_eq!(version_key("0"), "0");
    }

    #[test]
    fn the_release_before_is_the_highest_stable_below() {
        let versions = ["1.0.0", "1.0.1", "1.1.0-beta.1", "0.9.9", "2.0.0"];
        assert_eq!(npm_release_before(&versions, "1.1.0"), Some("1.0.1"));
        assert_eq!(npm_release_before(&versions, "1.0.1"), Some("1.0.0"));
        assert_eq!(npm_release_before(&versions, "0.9.9"), None);
        assert_eq!(npm_release_before(&versions, "latest"), None);
    }

    #[test]
    fn newest_release_skips_prereleases() {
        let v = |s: &[&str]| s.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            newest_release(&v(&["1.0.0", "1.10.0", "1.9.0", "2.0.0-beta.1"])).as_deref(),
            Some("1.10.0")
        );
        assert_eq!(
            newest_release(&v(&["1.0.0-rc.1", "1.0.0-rc.10", "1.0.0-rc.2"])).as_deref(),
            Some("1.0.0-rc.10")
        );
        assert_eq!(newest_release(&[]), None);
    }

    #[test]
    fn reasons_say_the_age_and_the_setting() {
        let now = UNIX_EPOCH + Duration::from_secs(10 * 86_400);
        let held = Held {
            ecosystem: Ecosystem::Npm,
            name: "axios".into(),
            version: "1.14.1".into(),
            published: now - Duration::from_secs(3 * 3600 + 5),
        };
        assert_eq!(
            held.reason(now, Duration::from_secs(2 * 86_400)),
            "published 3 hours ago (min_release_age 2 days)"
        );
    }
}
