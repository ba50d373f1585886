//! The gate the guard index asks before serving an artifact: judge it (from the verdict
//! cache, or by scanning it with the embedded model), then admit it or refuse it under the
//! user's policy, remembering every judgement of this install for the report and the prompt.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::{Arc, Mutex};

use crate::archive::{self, Ecosystem};
use crate::detect::{self, Reason, Thresholds, Verdict};
use crate::index::{Admission, Candidate, Gate};
use crate::model::Detector;
use crate::policy::{Allowlist, CachedVerdict, Config, Flagged, Mode, VerdictCache};
use crate::scan::{self, ScanOptions};

/// One artifact's judgement.
#[derive(Debug, Clone, PartialEq)]
pub struct Judged {
    pub ecosystem: Ecosystem,
    pub name: String,
    pub version: String,
    pub file: String,
    pub sha256: String,
    pub outcome: Outcome,
}

/// What the detector made of an artifact.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Scored (`score` is `None` for a package with no code to judge).
    Judged {
        score: Option<f32>,
        verdict: Option<Verdict>,
        reasons: Vec<String>,
    },
    /// Could not be read or judged: the guard fails closed on it.
    Unreadable(String),
}

impl Judged {
    pub fn score(&self) -> Option<f32> {
        match &self.outcome {
            Outcome::Judged { score, .. } => *score,
            Outcome::Unreadable(_) => None,
        }
    }

    pub fn verdict(&self) -> Option<Verdict> {
        match &self.outcome {
            Outcome::Judged { verdict, .. } => *verdict,
            Outcome::Unreadable(_) => None,
        }
    }

    /// As the policy shows it (only meaningful for a judged package).
    pub fn flagged(&self) -> Flagged {
        let (score, verdict, reasons) = match &self.outcome {
            Outcome::Judged {
                score,
                verdict,
                reasons,
            } => (
                score.unwrap_or(0.0),
                verdict.unwrap_or(Verdict::Benign),
                reasons.clone(),
            ),
            Outcome::Unreadable(why) => (0.0, Verdict::Benign, vec![why.clone()]),
        };
        Flagged {
            ecosystem: self.ecosystem,
            name: self.name.clone(),
            version: self.version.clone(),
            file: self.file.clone(),
            sha256: self.sha256.clone(),
            score,
            verdict,
            reasons,
        }
    }
}

/// Hooks for showing progress while the index judges; implemented by the command line.
pub trait Progress: Send + Sync {
    /// A package was judged (from the cache or by a scan).
    fn judged(&self, judged: &Judged);
}

/// A progress that shows nothing.
pub struct Silent;

impl Progress for Silent {
    fn judged(&self, _: &Judged) {}
}

#[derive(Default)]
struct State {
    judged: Vec<Judged>,
    by_sha: HashMap<String, usize>,
    /// Allowed for this install (the prompt's "this once", or the user's decision).
    allowed: HashSet<String>,
    /// Refused by policy and not decided on yet, in order.
    refused: Vec<String>,
}

/// The guard's [`Gate`].
pub struct GuardGate {
    detector: Arc<Detector>,
    thresholds: Thresholds,
    config: Config,
    model_id: String,
    verdicts: Option<VerdictCache>,
    allowlist: Mutex<Allowlist>,
    state: Mutex<State>,
    progress: Arc<dyn Progress>,
}

impl GuardGate {
    pub fn new(
        detector: Arc<Detector>,
        config: Config,
        verdicts: Option<VerdictCache>,
        allowlist: Allowlist,
        progress: Arc<dyn Progress>,
    ) -> GuardGate {
        let thresholds = config.thresholds(Thresholds::for_model(detector.threshold()));
        let model_id = judge_id(&detector, &thresholds);
        GuardGate {
            detector,
            thresholds,
            config,
            model_id,
            verdicts,
            allowlist: Mutex::new(allowlist),
            state: Mutex::new(State::default()),
            progress,
        }
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Everything a judgement depends on (model, extractor, thresholds), as one string.
    pub fn judge_id(&self) -> &str {
        &self.model_id
    }

    /// Judges an artifact, once per install and once per artifact hash across installs.
    pub fn judge(&self, candidate: &Candidate) -> Judged {
        let sha = &candidate.artifact.sha256;
        if let Some(j) = self.known(sha) {
            return j;
        }
        let judged = match self
            .verdicts
            .as_ref()
            .and_then(|v| v.get(sha, &self.model_id))
        {
            Some(cached) => Judged {
                ecosystem: candidate.ecosystem,
                name: cached.name,
                version: cached.version,
                file: candidate.filename.clone(),
                sha256: sha.clone(),
                outcome: Outcome::Judged {
                    score: cached.score,
                    verdict: cached.verdict,
                    reasons: cached.reasons,
                },
            },
            None => {
                let judged = self.scan(candidate);
                if let (
                    Some(cache),
                    Outcome::Judged {
                        score,
                        verdict,
                        reasons,
                    },
                ) = (&self.verdicts, &judged.outcome)
                {
                    // A cache that cannot be written only costs a re-scan next time.
                    let _ = cache.put(
                        sha,
                        &self.model_id,
                        &CachedVerdict {
                            name: judged.name.clone(),
                            version: judged.version.clone(),
                            score: *score,
                            verdict: *verdict,
                            reasons: reasons.clone(),
                        },
                    );
                }
                judged
            }
        };
        self.record(judged)
    }

    /// Judges a local project or archive the user named (`pip install ./x`, `npm i ./x`).
    pub fn judge_local(&self, ecosystem: Ecosystem, path: &Path) -> Judged {
        let options = ScanOptions::default();
        let mut result = scan::scan_path(path, &options);
        scan::judge(&mut result, &self.detector, &self.thresholds);
        let file = path.display().to_string();
        let judged = match result.outcome {
            Ok(scanned) => {
                let j = scanned.judgement;
                Judged {
                    ecosystem,
                    name: scanned.identity.name,
                    version: scanned.identity.version,
                    file,
                    sha256: String::new(),
                    outcome: Outcome::Judged {
                        score: j.as_ref().map(|j| j.score),
                        verdict: j.as_ref().map(|j| j.verdict),
                        reasons: j.map(|j| render_reasons(&j.reasons)).unwrap_or_default(),
                    },
                }
            }
            Err(e) => Judged {
                ecosystem,
                name: file.clone(),
                version: String::new(),
                file,
                sha256: String::new(),
                outcome: Outcome::Unreadable(e.to_string()),
            },
        };
        self.progress.judged(&judged);
        let mut state = self.state.lock().expect("lock");
        state.judged.push(judged.clone());
        judged
    }

    fn known(&self, sha: &str) -> Option<Judged> {
        let state = self.state.lock().expect("lock");
        state.by_sha.get(sha).map(|&i| state.judged[i].clone())
    }

    fn record(&self, judged: Judged) -> Judged {
        let mut state = self.state.lock().expect("lock");
        if let Some(&i) = state.by_sha.get(&judged.sha256) {
            return state.judged[i].clone();
        }
        self.progress.judged(&judged);
        let at = state.judged.len();
        state.by_sha.insert(judged.sha256.clone(), at);
        state.judged.push(judged.clone());
        judged
    }

    fn scan(&self, candidate: &Candidate) -> Judged {
        let options = ScanOptions::default();
        let fallback_version = candidate.version.clone().unwrap_or_default();
        let unreadable = |why: String| Judged {
            ecosystem: candidate.ecosystem,
            name: candidate.name.clone(),
            version: fallback_version.clone(),
            file: candidate.filename.clone(),
            sha256: candidate.artifact.sha256.clone(),
            outcome: Outcome::Unreadable(why),
        };
        let bytes = match std::fs::read(&candidate.artifact.path) {
            Ok(b) => b,
            Err(e) => return unreadable(format!("cannot read the downloaded file: {e}")),
        };
        let scanned = std::panic::catch_unwind(|| {
            archive::read_bytes(Path::new(&candidate.filename), &bytes, &options.limits)
                .map(|p| scan::scan_package(&p, &options))
        });
        let scanned = match scanned {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => return unreadable(e.to_string()),
            Err(_) => {
                return unreadable("internal error while scanning (please report this)".into())
            }
        };
        let name = if scanned.identity.name.is_empty() {
            candidate.name.clone()
        } else {
            scanned.identity.name.clone()
        };
        let version = if scanned.identity.version.is_empty() {
            fallback_version.clone()
        } else {
            scanned.identity.version.clone()
        };
        let outcome = if scanned.sequence.is_empty() {
            // Nothing that runs: nothing to judge, nothing to fear from its code.
            Outcome::Judged {
                score: None,
                verdict: None,
                reasons: Vec::new(),
            }
        } else {
            match detect::judge(&self.detector, &self.thresholds, &scanned.sequence) {
                Ok(j) => Outcome::Judged {
                    score: Some(j.score),
                    verdict: Some(j.verdict),
                    reasons: render_reasons(&j.reasons),
                },
                Err(e) => Outcome::Unreadable(format!("the model could not score it: {e}")),
            }
        };
        Judged {
            ecosystem: candidate.ecosystem,
            name,
            version,
            file: candidate.filename.clone(),
            sha256: candidate.artifact.sha256.clone(),
            outcome,
        }
    }

    /// Whether the policy stops this package: flagged (or unreadable) and neither allowlisted
    /// nor allowed for this install.
    pub fn stops(&self, judged: &Judged) -> bool {
        let concerning = match &judged.outcome {
            Outcome::Unreadable(_) => true,
            Outcome::Judged { verdict, .. } => verdict.is_some_and(|v| self.config.flags(v)),
        };
        if !concerning {
            return false;
        }
        if self.allowlist.lock().expect("lock").allows(
            judged.ecosystem,
            &judged.name,
            &judged.version,
        ) {
            return false;
        }
        !self
            .state
            .lock()
            .expect("lock")
            .allowed
            .contains(&judged.sha256)
    }

    /// Whether the allowlist lets this package through.
    pub fn allowlisted(&self, judged: &Judged) -> bool {
        self.allowlist
            .lock()
            .expect("lock")
            .allows(judged.ecosystem, &judged.name, &judged.version)
    }

    /// Allows these artifacts for the rest of this install.
    pub fn allow_once(&self, sha256: &str) {
        let mut state = self.state.lock().expect("lock");
        state.allowed.insert(sha256.to_owned());
        state.refused.retain(|s| s != sha256);
    }

    /// Re-reads the allowlist (after the prompt added to it).
    pub fn set_allowlist(&self, allowlist: Allowlist) {
        *self.allowlist.lock().expect("lock") = allowlist;
    }

    /// Every judgement of this install, in the order made.
    pub fn judged(&self) -> Vec<Judged> {
        self.state.lock().expect("lock").judged.clone()
    }

    /// The packages refused since the last call.
    pub fn take_refused(&self) -> Vec<Judged> {
        let mut state = self.state.lock().expect("lock");
        let refused = std::mem::take(&mut state.refused);
        refused
            .iter()
            .filter_map(|s| state.by_sha.get(s).map(|&i| state.judged[i].clone()))
            .collect()
    }
}

impl Gate for GuardGate {
    fn admit(&self, candidate: &Candidate) -> Admission {
        let judged = self.judge(candidate);
        if !self.stops(&judged) {
            return Admission::Serve;
        }
        let unreadable = matches!(judged.outcome, Outcome::Unreadable(_));
        if self.config.mode == Mode::Warn && !unreadable {
            return Admission::Serve;
        }
        let mut state = self.state.lock().expect("lock");
        if !state.refused.contains(&judged.sha256) {
            state.refused.push(judged.sha256.clone());
        }
        Admission::Refuse(match &judged.outcome {
            Outcome::Unreadable(why) => format!(
                "cannot judge {} {} ({}): {why}",
                judged.name, judged.version, judged.file
            ),
            Outcome::Judged { score, verdict, .. } => format!(
                "{} {} was judged {} (score {:.2}) and not allowed",
                judged.name,
                judged.version,
                verdict.map_or("-", |v| v.as_str()),
                score.unwrap_or(0.0)
            ),
        })
    }
}

/// Everything a cached judgement depends on: the model and tokenizer (by hash), the
/// extractor (the crate version), and the thresholds in force.
fn judge_id(_detector: &Detector, thresholds: &Thresholds) -> String {
    use sha2::Digest as _;
    static MODEL: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let model = MODEL.get_or_init(|| {
        let mut h = sha2::Sha256::new();
        h.update(crate::model::EMBEDDED_MODEL);
        h.update(crate::model::EMBEDDED_TOKENIZER);
        h.finalize()[..8]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    });
    format!(
        "cerebro-{}-model-{model}-t{:.4}-{:.4}",
        env!("CARGO_PKG_VERSION"),
        thresholds.malicious,
        thresholds.suspicious
    )
}

/// `reads credentials or secrets (R3) — setup.py:12`.
pub fn render_reasons(reasons: &[Reason]) -> Vec<String> {
    reasons
        .iter()
        .map(|r| {
            let place = r.event.as_ref().map_or(String::new(), |p| {
                if p.event.line > 0 {
                    format!(" — {}:{}", p.event.file, p.event.line)
                } else {
                    format!(" — {}", p.event.file)
                }
            });
            format!("{} ({}){place}", r.feature.name(), r.feature.id())
        })
        .collect()
}
