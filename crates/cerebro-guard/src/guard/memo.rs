//! Resolution memos: the warm path. When the same install (same command, folder, manager,
//! configuration and manifest files) was resolved and judged clean recently, the separate
//! resolution run is skipped and the real manager installs through the guard index at once.
//!
//! This costs no safety: the index judges every artifact before serving it whether or not a
//! memo exists, and pip and npm fetch everything before they install anything (and run no
//! package code for an artifact they could not fetch), so a flagged artifact that appeared
//! upstream since the memo was written is still refused and the install stops. What the memo
//! gives up is only the prompt before the manager starts: on that (rare) refusal the memo is
//! dropped, the install is reported blocked, and the next run resolves separately again.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use sha2::{Digest as _, Sha256};

/// How long a memo stands: a resolution is re-checked at least this often.
pub const TTL: Duration = Duration::from_secs(24 * 3600);

/// One install's memo file.
#[derive(Debug, Clone)]
pub struct Memo {
    path: PathBuf,
}

/// What a memo key is made of, in order.
#[derive(Default)]
pub struct KeyBuilder {
    hash: Sha256,
}

impl KeyBuilder {
    pub fn new(judge_id: &str) -> KeyBuilder {
        let mut k = KeyBuilder::default();
        k.text("cerebro-memo-v1");
        k.text(judge_id);
        k
    }

    /// A string, length-prefixed so that no two sequences collide.
    pub fn text(&mut self, s: &str) -> &mut KeyBuilder {
        self.bytes(s.as_bytes())
    }

    pub fn bytes(&mut self, b: &[u8]) -> &mut KeyBuilder {
        self.hash.update((b.len() as u64).to_le_bytes());
        self.hash.update(b);
        self
    }

    /// A file's contents (or that it is missing).
    pub fn file(&mut self, path: &Path) -> &mut KeyBuilder {
        self.text(&path.to_string_lossy());
        match std::fs::read(path) {
            Ok(b) => self.bytes(&b),
            Err(_) => self.text("<missing>"),
        }
    }

    /// Every environment variable whose name starts with one of `prefixes`, sorted.
    pub fn env_with_prefixes(&mut self, prefixes: &[&str]) -> &mut KeyBuilder {
        let mut vars: Vec<(String, String)> = std::env::vars_os()
            .filter_map(|(k, v)| Some((k.into_string().ok()?, v.to_string_lossy().into_owned())))
            .filter(|(k, _)| {
                prefixes
                    .iter()
                    .any(|p| k.to_ascii_lowercase().starts_with(&p.to_ascii_lowercase()))
            })
            .collect();
        vars.sort();
        for (k, v) in vars {
            self.text(&k).text(&v);
        }
        self
    }

    pub fn finish(&self) -> String {
        self.hash
            .clone()
            .finalize()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }
}

impl Memo {
    /// The memo of `key` under `root` (`<cache>/resolutions`).
    pub fn at(root: &Path, key: &str) -> Memo {
        Memo {
            path: root.join(format!("{key}.json")),
        }
    }

    /// Whether a memo exists and is younger than [`TTL`].
    pub fn fresh(&self) -> bool {
        std::fs::metadata(&self.path)
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| SystemTime::now().duration_since(t).ok())
            .is_some_and(|age| age < TTL)
    }

    /// Records a clean resolution (the artifacts' hashes, for whoever reads the file).
    pub fn record(&self, sha256s: &[String]) -> std::io::Result<()> {
        if let Some(dir) = self.path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let body = serde_json::json!({ "artifacts": sha256s }).to_string();
        cerebro_fetch::cache::write_atomic(&self.path, body.as_bytes())
    }

    /// Drops the memo (a later run resolves separately again).
    pub fn forget(&self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_differ_by_content_and_memos_expire_by_age() {
        let a = KeyBuilder::new("j").text("install").text("x").finish();
        let b = KeyBuilder::new("j").text("installx").finish();
        let c = KeyBuilder::new("k").text("install").text("x").finish();
        assert_ne!(a, b);
        assert_ne!(a, c);
        let dir = tempfile::tempdir().unwrap();
        let memo = Memo::at(dir.path(), &a);
        assert!(!memo.fresh());
        memo.record(&["ab".into()]).unwrap();
        assert!(memo.fresh());
        memo.forget();
        assert!(!memo.fresh());
    }
}
