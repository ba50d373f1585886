//! The release before: for a package release the gate is asked about, the index finds the
//! release just before it on the same registry and fetches it (verified against its
//! registry's hash, and cached by content like every download), so that the gate can judge
//! what the release changed ([`cerebro_scan::diff`]).
//!
//! "Just before" is the highest stable version below the one judged, among those the
//! registry lists (npm: the packument; PyPI: the project page, the same kind of file: a wheel
//! with the same tags when there is one, else any wheel, else an sdist for an sdist). A
//! release with no earlier one, or whose earlier one cannot be fetched, is judged on its own
//! as before: the diff adds a judgement, and its absence takes none away.

use std::cmp::Ordering;
use std::sync::Arc;

use cerebro_fetch::{Artifact, Expected};

use super::{cooldown, NpmTarball, PypiFile, Shared};

/// The release before the one judged, fetched and verified.
#[derive(Debug, Clone)]
pub struct Previous {
    pub version: String,
    pub filename: String,
    pub artifact: Artifact,
}

/// The npm release before `t`, fetched.
pub(super) async fn npm(shared: &Arc<Shared>, t: &NpmTarball) -> Option<Previous> {
    let before = {
        let tarballs = shared.tarballs.lock().expect("lock");
        let versions: Vec<&str> = tarballs
            .values()
            .filter(|o| o.name == t.name)
            .map(|o| o.version.as_str())
            .collect();
        let version = cooldown::npm_release_before(&versions, &t.version)?;
        tarballs
            .values()
            .find(|o| o.name == t.name && o.version == version)
            .cloned()?
    };
    let auth = shared.npm.as_ref().and_then(|n| n.auth_for(&before.url));
    let artifact = shared
        .fetcher
        .artifact(&before.url, &before.expected(), auth)
        .await
        .ok()?;
    let filename = before
        .url
        .path_segments()
        .and_then(|mut s| s.next_back())
        .map(super::percent_decode)
        .unwrap_or_else(|| format!("{}-{}.tgz", before.name, before.version));
    Some(Previous {
        version: before.version,
        filename,
        artifact,
    })
}

/// The PyPI release before `file`, of the same kind, fetched.
pub(super) async fn pypi(shared: &Arc<Shared>, file: &PypiFile) -> Option<Previous> {
    let version = cooldown::pypi_version(&file.link.filename)?;
    let this = release_numbers(&version)?;
    let before = {
        let files = shared.files.lock().expect("lock");
        let same_project = files
            .list
            .iter()
            .filter(|f| f.project == file.project && f.link.yanked.is_none());
        let mut best: Option<(Vec<u64>, u8, &PypiFile)> = None;
        for f in same_project {
            let Some(numbers) = cooldown::pypi_version(&f.link.filename)
                .as_deref()
                .and_then(release_numbers)
            else {
                continue;
            };
            if compare(&numbers, &this) != Ordering::Less {
                continue;
            }
            let Some(rank) = kinship(&file.link.filename, &f.link.filename) else {
                continue;
            };
            let better = best.as_ref().is_none_or(|(n, r, _)| {
                compare(&numbers, n).then(rank.cmp(r)) == Ordering::Greater
            });
            if better {
                best = Some((numbers, rank, f));
            }
        }
        best.map(|(_, _, f)| f.clone())?
    };
    let expected = before
        .link
        .sha256
        .clone()
        .map(Expected::Sha256)
        .unwrap_or(Expected::Nothing);
    let artifact = shared
        .fetcher
        .artifact(&before.link.url, &expected, before.auth.as_deref())
        .await
        .ok()?;
    Some(Previous {
        version: cooldown::pypi_version(&before.link.filename)?,
        filename: before.link.filename,
        artifact,
    })
}

/// How good a stand-in `other` is for the earlier release of `this` (higher is better):
/// `None` for another kind of file (a wheel is not compared with an sdist).
fn kinship(this: &str, other: &str) -> Option<u8> {
    let tags = |f: &str| {
        f.strip_suffix(".whl")
            .map(|stem| stem.splitn(3, '-').nth(2).unwrap_or("").to_owned())
    };
    match (tags(this), tags(other)) {
        (Some(a), Some(b)) => Some(if a == b { 2 } else { 1 }),
        (None, None) => Some(1),
        _ => None,
    }
}

/// The numbers of a plain PEP 440 release (`2.31.0`, `1.0.post1` → `[1, 0]`); `None` for
/// pre-releases, development releases and anything else, which are never the yardstick.
fn release_numbers(version: &str) -> Option<Vec<u64>> {
    let v = version.trim().to_ascii_lowercase();
    let v = v.split_once('+').map_or(v.as_str(), |(v, _)| v);
    let v = v.split_once(".post").map_or(v, |(v, _)| v);
    let v = v.split_once('!').map_or(v, |(_, v)| v);
    v.split('.').map(|p| p.parse::<u64>().ok()).collect()
}

/// Orders release numbers as PEP 440 does (missing parts are zeros).
fn compare(a: &[u64], b: &[u64]) -> Ordering {
    let n = a.len().max(b.len());
    (0..n)
        .map(|i| {
            a.get(i)
                .copied()
                .unwrap_or(0)
                .cmp(&b.get(i).copied().unwrap_or(0))
        })
        .find(|o| *o != Ordering::Equal)
        .unwrap_or(Ordering::Equal)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_releases_only() {
        assert_eq!(release_numbers("2.31.0"), Some(vec![2, 31, 0]));
        assert_eq!(release_numbers("1.0.post1"), Some(vec![1, 0]));
        assert_eq!(release_numbers("1.0rc1"), None);
        assert_eq!(release_numbers("1.0.dev3"), None);
        assert_eq!(compare(&[1, 0], &[1, 0, 0]), Ordering::Equal);
        assert_eq!(compare(&[1, 0, 1], &[1, 0]), Ordering::Greater);
    }

    #[test]
    fn wheels_are_compared_with_wheels_of_the_same_tags_first() {
        let this = "x-1.0.1-py3-none-any.whl";
        assert_eq!(kinship(this, "x-1.0.0-py3-none-any.whl"), Some(2));
        assert_eq!(
            kinship(this, "x-1.0.0-cp312-cp312-manylinux_2_17_x86_64.whl"),
            Some(1)
        );
        assert_eq!(kinship(this, "x-1.0.0.tar.gz"), None);
        assert_eq!(kinship("x-1.0.1.tar.gz", "x-1.0.0.tar.gz"), Some(1));
    }
}
