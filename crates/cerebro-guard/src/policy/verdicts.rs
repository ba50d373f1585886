//! The verdict cache: a package's judgement, kept by the artifact's sha256, so installing
//! the same file again costs no scan.
//!
//! Entries live at `ROOT/v1/ab/abcdef….json` (the first two hex digits as a folder). Each
//! records the id of what judged it; a lookup with another id (a new model, a new extractor,
//! other thresholds) misses, and the next `put` replaces the entry.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use cerebro_scan::detect::Verdict;

/// The cache format's bucket: bumped when [`CachedVerdict`]'s layout changes, which leaves
/// the old entries unread.
const BUCKET: &str = "v1";

/// What is remembered of one package's judgement: enough to decide and to show the prompt
/// again without reading the archive.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CachedVerdict {
    pub name: String,
    pub version: String,
    /// `None`: the package had no code to judge.
    pub score: Option<f32>,
    /// `None` with `score`.
    #[serde(with = "verdict_serde")]
    pub verdict: Option<Verdict>,
    /// Rendered reason lines, as in [`Flagged::reasons`](super::Flagged::reasons).
    pub reasons: Vec<String>,
}

/// One file of the cache: the judgement and what it is valid for.
#[derive(Serialize, Deserialize)]
struct Stored {
    sha256: String,
    model_id: String,
    judgement: CachedVerdict,
}

/// Judgements by artifact sha256 and judge id, on disk. Safe to share between processes:
/// each write replaces a whole file atomically, and a torn or corrupt file is a miss.
#[derive(Debug, Clone)]
pub struct VerdictCache {
    root: PathBuf,
}

impl VerdictCache {
    /// Opens (creating it if needed) the cache under `root`, normally
    /// [`cache_dir`](super::cache_dir)`/verdicts`.
    pub fn open(root: PathBuf) -> std::io::Result<VerdictCache> {
        std::fs::create_dir_all(root.join(BUCKET))?;
        Ok(VerdictCache { root })
    }

    /// The cached judgement of the artifact with this sha256, if one was made by `model_id`.
    ///
    /// `model_id` must name everything the judgement depends on: the model's hash, the
    /// extractor's version and the thresholds in force. A malformed sha256, a missing or
    /// unreadable entry, and an entry from another `model_id` are all misses.
    pub fn get(&self, sha256: &str, model_id: &str) -> Option<CachedVerdict> {
        let path = self.entry_path(sha256)?;
        let bytes = std::fs::read(path).ok()?;
        let stored: Stored = serde_json::from_slice(&bytes).ok()?;
        (stored.sha256 == sha256 && stored.model_id == model_id).then_some(stored.judgement)
    }

    /// Records a judgement, replacing any earlier one for this sha256. The sha256 must be 64
    /// lowercase hex digits (it becomes a file name).
    pub fn put(
        &self,
        sha256: &str,
        model_id: &str,
        verdict: &CachedVerdict,
    ) -> std::io::Result<()> {
        let path = self.entry_path(sha256).ok_or_else(|| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!("not a sha256 (64 lowercase hex digits): {sha256:?}"),
            )
        })?;
        let dir = path.parent().unwrap_or(&self.root);
        std::fs::create_dir_all(dir)?;
        let stored = Stored {
            sha256: sha256.to_owned(),
            model_id: model_id.to_owned(),
            judgement: verdict.clone(),
        };
        let json = serde_json::to_vec(&stored).map_err(std::io::Error::other)?;
        let mut tmp = tempfile::Builder::new()
            .prefix(".verdict-")
            .suffix(".tmp")
            .tempfile_in(dir)?;
        tmp.write_all(&json)?;
        tmp.persist(&path).map_err(|e| e.error)?;
        Ok(())
    }

    /// The folder the cache lives in.
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn entry_path(&self, sha256: &str) -> Option<PathBuf> {
        let valid = sha256.len() == 64
            && sha256
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        valid.then(|| {
            self.root
                .join(BUCKET)
                .join(&sha256[..2])
                .join(format!("{sha256}.json"))
        })
    }
}

/// [`Verdict`] as its lowercase name, `null` for none (the type itself only serialises).
mod verdict_serde {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    use cerebro_scan::detect::Verdict;

    pub fn serialize<S: Serializer>(v: &Option<Verdict>, s: S) -> Result<S::Ok, S::Error> {
        v.map(Verdict::as_str).serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Verdict>, D::Error> {
        let Some(name) = Option::<String>::deserialize(d)? else {
            return Ok(None);
        };
        [Verdict::Benign, Verdict::Suspicious, Verdict::Malicious]
            .into_iter()
            .find(|v| v.as_str() == name)
            .map(Some)
            .ok_or_else(|| serde::de::Error::custom(format!("unknown verdict `{name}`")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHA: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    fn judged() -> CachedVerdict {
        CachedVerdict {
            name: "evil".into(),
            version: "1.0".into(),
            score: Some(0.97),
            verdict: Some(Verdict::Malicious),
            reasons: vec!["runs a shell command at install time (P3) — setup.py:3".into()],
        }
    }

    #[test]
    fn round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let cache = VerdictCache::open(dir.path().join("verdicts")).unwrap();
        assert_eq!(cache.get(SHA, "m1"), None);
        cache.put(SHA, "m1", &judged()).unwrap();
        assert_eq!(cache.get(SHA, "m1"), Some(judged()));
        let empty = CachedVerdict {
            score: None,
            verdict: None,
            reasons: vec![],
            ..judged()
        };
        cache.put(SHA, "m1", &empty).unwrap();
        assert_eq!(cache.get(SHA, "m1"), Some(empty));
        // No temporary files left behind.
        let shard = dir.path().join("verdicts/v1/01");
        assert_eq!(std::fs::read_dir(shard).unwrap().count(), 1);
    }

    #[test]
    fn another_model_misses() {
        let dir = tempfile::tempdir().unwrap();
        let cache = VerdictCache::open(dir.path().to_owned()).unwrap();
        cache.put(SHA, "model-a", &judged()).unwrap();
        assert_eq!(cache.get(SHA, "model-b"), None);
        cache.put(SHA, "model-b", &judged()).unwrap();
        assert_eq!(cache.get(SHA, "model-a"), None);
        assert!(cache.get(SHA, "model-b").is_some());
    }

    #[test]
    fn corrupt_entries_miss_and_are_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let cache = VerdictCache::open(dir.path().to_owned()).unwrap();
        cache.put(SHA, "m", &judged()).unwrap();
        let path = cache.entry_path(SHA).unwrap();
        for junk in [
            &b"{\"sha256\": \"01"[..],
            b"",
            b"\xff\xfe",
            b"{\"verdict\": \"evil\"}",
        ] {
            std::fs::write(&path, junk).unwrap();
            assert_eq!(cache.get(SHA, "m"), None);
        }
        cache.put(SHA, "m", &judged()).unwrap();
        assert_eq!(cache.get(SHA, "m"), Some(judged()));
    }

    #[test]
    fn malformed_sha256_never_becomes_a_path() {
        let dir = tempfile::tempdir().unwrap();
        let cache = VerdictCache::open(dir.path().to_owned()).unwrap();
        for bad in [
            "",
            "../../etc/passwd",
            &SHA.to_uppercase(),
            &SHA[..63],
            &format!("{SHA}0"),
            &format!("../{}", &SHA[3..]),
        ] {
            assert!(cache.put(bad, "m", &judged()).is_err(), "{bad}");
            assert_eq!(cache.get(bad, "m"), None);
        }
    }
}
