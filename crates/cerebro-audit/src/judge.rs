//! Judge: one artifact → its [`Outcome`], by the scan chain of `cerebro-scan` (read in memory,
//! behaviour extracted, sequence scored, reasons by occlusion) exactly as `cerebro scan` runs
//! it. Verdicts are kept by artifact sha256 and judge (model, extractor, thresholds), so a
//! second audit of the same lockfile scans nothing.

use std::path::{Path, PathBuf};

use cerebro_archive::PerEcosystem;
use cerebro_fetch::{Artifact, CacheBucket, Fetcher};
use cerebro_model::Detector;
use cerebro_scan::detect::Thresholds;
use cerebro_scan::scan::{self, ScanOptions, ScanResult};

use crate::{Finding, Outcome};

/// The detector, its thresholds, and the verdict store.
pub struct Judge {
    detector: Detector,
    thresholds: PerEcosystem<Thresholds>,
    options: ScanOptions,
    store: Option<PathBuf>,
}

impl Judge {
    /// A judge with `detector`, keeping verdicts under `cache_root` (the cache folder's
    /// audit bucket) when given.
    pub fn new(detector: Detector, cache_root: Option<PathBuf>) -> Judge {
        let thresholds = Thresholds::of_model(&detector);
        let store = cache_root.map(|root| root.join(judge_id(&thresholds)));
        Judge {
            detector,
            thresholds,
            options: ScanOptions::default(),
            store,
        }
    }

    /// The default verdict folder: the cache folder's audit bucket.
    pub fn default_cache_root() -> Option<PathBuf> {
        CacheBucket::AuditVerdicts.path()
    }

    /// Judges a fetched artifact: from the verdict store when it was judged before, else by
    /// reading it back from the download cache (re-hashed) and scanning it.
    pub fn artifact(&self, fetcher: &Fetcher, artifact: &Artifact, file: &str) -> Outcome {
        if let Some(known) = self.stored(&artifact.sha256) {
            return known;
        }
        let outcome = match fetcher.read(artifact) {
            Ok(bytes) => self.outcome(scan::scan_bytes(Path::new(file), &bytes, &self.options)),
            Err(e) => Outcome::Unjudged {
                error: format!("cannot read the downloaded {file}: {e}"),
            },
        };
        if matches!(outcome, Outcome::Judged { .. }) {
            self.store(&artifact.sha256, &outcome);
        }
        outcome
    }

    /// Judges a folder or archive on disk (never stored: it may change).
    pub fn local(&self, path: &Path) -> Outcome {
        self.outcome(scan::scan_path(path, &self.options))
    }

    /// Judges an installed distribution: the files `listed` under `root` (its `RECORD`).
    pub fn installed(&self, root: &Path, listed: &[String]) -> Outcome {
        self.outcome(scan::scan_listed(root, listed, &self.options))
    }

    fn outcome(&self, mut result: ScanResult) -> Outcome {
        scan::judge(&mut result, &self.detector, &self.thresholds);
        match result.outcome {
            Err(e) => Outcome::Unjudged {
                error: e.to_string(),
            },
            Ok(scanned) => match scanned.judgement {
                None => Outcome::Unjudged {
                    error: "the model gave no judgement".to_owned(),
                },
                Some(j) => Outcome::Judged {
                    score: (j.score * 1e4).round() / 1e4,
                    verdict: j.verdict,
                    reasons: j
                        .reasons
                        .iter()
                        .map(|r| Finding {
                            feature: r.feature.id().to_owned(),
                            description: r.feature.name().to_owned(),
                            file: r.event.as_ref().map(|p| p.event.file.clone()),
                            line: r.event.as_ref().map_or(0, |p| p.event.line),
                        })
                        .collect(),
                },
            },
        }
    }

    fn path_of(&self, sha256: &str) -> Option<PathBuf> {
        let store = self.store.as_ref()?;
        cerebro_fetch::is_sha256_hex(sha256)
            .then(|| store.join(&sha256[..2]).join(format!("{sha256}.json")))
    }

    fn stored(&self, sha256: &str) -> Option<Outcome> {
        let path = self.path_of(sha256)?;
        let meta = std::fs::metadata(&path).ok()?;
        if meta.len() > 1 << 20 {
            return None;
        }
        serde_json::from_slice(&std::fs::read(path).ok()?).ok()
    }

    /// Keeps a verdict; a store that cannot be written only costs a scan next time.
    fn store(&self, sha256: &str, outcome: &Outcome) {
        let Some(path) = self.path_of(sha256) else {
            return;
        };
        let Some(dir) = path.parent() else {
            return;
        };
        if std::fs::create_dir_all(dir).is_err() {
            return;
        }
        let Ok(json) = serde_json::to_vec(outcome) else {
            return;
        };
        // Written beside and renamed, so that a reader never sees half a verdict.
        if let Ok(mut tmp) = tempfile::NamedTempFile::new_in(dir) {
            use std::io::Write as _;
            if tmp.write_all(&json).is_ok() {
                let _ = tmp.persist(&path);
            }
        }
    }
}

/// What a stored verdict depends on: the model and tokenizer (by hash), the extractor (the
/// crate version) and the thresholds.
fn judge_id(thresholds: &PerEcosystem<Thresholds>) -> String {
    use sha2::Digest as _;
    let mut h = sha2::Sha256::new();
    h.update(cerebro_model::EMBEDDED_MODEL);
    h.update(cerebro_model::EMBEDDED_TOKENIZER);
    let model: String = h.finalize()[..8]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!(
        "cerebro-{}-model-{model}-t{:.4}-npm{:.4}",
        env!("CARGO_PKG_VERSION"),
        thresholds.pypi.malicious,
        thresholds.npm.malicious,
    )
}
