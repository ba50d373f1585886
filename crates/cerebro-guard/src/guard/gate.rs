//! The gate the guard index asks before serving an artifact: judge it (from the verdict
//! cache, or by scanning it with the embedded model), then admit it or refuse it under the
//! user's policy, remembering every judgement of this install for the report and the prompt.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};

use crate::index::{Admission, Candidate, Gate, Previous};
use crate::policy::{Allowlist, CachedVerdict, Config, Flagged, Mode, VerdictCache};
use cerebro_archive::{Ecosystem, PerEcosystem};
use cerebro_model::Detector;
use cerebro_scan::detect::{self, Reason, Thresholds, Verdict};
use cerebro_scan::diff::{self, Release};
use cerebro_scan::scan::{self, ScanOptions};

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
            too_new: None,
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
    /// Releases too new for the cooldown that the user let through for this install
    /// (ecosystem, name as the index names it, version key).
    released: HashSet<(Ecosystem, String, String)>,
    /// Too-new releases asked for exactly, and what became of them.
    pins: Vec<(crate::index::Held, super::HeldAction)>,
    /// Artifacts (sha256) being judged now: a second request waits for that judgement.
    judging: HashSet<String>,
}

/// The guard's [`Gate`].
pub struct GuardGate {
    detector: Arc<Detector>,
    thresholds: PerEcosystem<Thresholds>,
    config: Config,
    model_id: String,
    verdicts: Option<VerdictCache>,
    allowlist: Mutex<Allowlist>,
    state: Mutex<State>,
    /// Signalled whenever a judgement ends (see [`GuardGate::judge`]'s single flight).
    judged_one: Condvar,
    /// Scans run (not answered from a cache), for the single flight's test.
    scans: AtomicUsize,
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
        let thresholds = Thresholds::of_model(&detector).map(|t| config.thresholds(t));
        let model_id = judge_id(&detector, &thresholds);
        GuardGate {
            detector,
            thresholds,
            config,
            model_id,
            verdicts,
            allowlist: Mutex::new(allowlist),
            state: Mutex::new(State::default()),
            judged_one: Condvar::new(),
            scans: AtomicUsize::new(0),
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
    ///
    /// Single flight: a request for an artifact already being judged (pip retrying after
    /// its read timeout, two downloads of one file) waits for that judgement and gets it,
    /// rather than starting the same scan again.
    pub fn judge(&self, candidate: &Candidate) -> Judged {
        let sha = &candidate.artifact.sha256;
        {
            let mut state = self.state.lock().expect("lock");
            loop {
                if let Some(&i) = state.by_sha.get(sha) {
                    return state.judged[i].clone();
                }
                if state.judging.insert(sha.clone()) {
                    break;
                }
                state = self.judged_one.wait(state).expect("lock");
            }
        }
        // Ends the flight however the judgement ends (a panic included), so waiters go on.
        let _flight = Flight { gate: self, sha };
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
        let file = path.display().to_string();
        let result = scan::scan_path(path, &ScanOptions::default());
        let judged = self.conclude(ecosystem, result, &file, "", (&file, ""));
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
        self.scans.fetch_add(1, Ordering::Relaxed);
        let version = candidate.version.clone().unwrap_or_default();
        let fallback = (candidate.name.as_str(), version.as_str());
        let sha = &candidate.artifact.sha256;
        let bytes = match std::fs::read(&candidate.artifact.path) {
            Ok(bytes) => bytes,
            Err(e) => {
                let mut j =
                    self.unreadable(candidate.ecosystem, &candidate.filename, sha, fallback);
                j.outcome = Outcome::Unreadable(format!("cannot read the downloaded file: {e}"));
                return j;
            }
        };
        let options = ScanOptions::default();
        let name = Path::new(&candidate.filename);
        let start = std::time::Instant::now();
        let (result, release) = match Release::from_bytes(name, &bytes, &options) {
            Ok(release) => (Ok(release.scanned()), Some(release)),
            Err(e) => (Err(e), None),
        };
        let result = scan::ScanResult {
            path: name.to_owned(),
            outcome: result,
            elapsed: start.elapsed(),
        };
        let mut judged = self.conclude(
            candidate.ecosystem,
            result,
            &candidate.filename,
            sha,
            fallback,
        );
        if let (Some(release), Some(previous)) = (release, &candidate.previous) {
            self.judge_changes(&mut judged, &release, previous);
        }
        judged
    }

    /// Judges what `release` changed since `previous` and, when the change is malicious,
    /// makes the judgement malicious with the change as its first reasons ("new in 1.0.1
    /// since 1.0.0: lib/util.js:42 reads …"). A judgement already unreadable stays so; an
    /// earlier release that cannot be read, or is another package, adds nothing.
    fn judge_changes(&self, judged: &mut Judged, release: &Release, previous: &Previous) {
        let Outcome::Judged {
            score,
            verdict,
            reasons,
        } = &mut judged.outcome
        else {
            return;
        };
        let Ok(bytes) = std::fs::read(&previous.artifact.path) else {
            return;
        };
        let Ok(old) = Release::from_bytes(
            Path::new(&previous.filename),
            &bytes,
            &ScanOptions::default(),
        ) else {
            return;
        };
        let same = old.package.ecosystem == release.package.ecosystem
            && match release.package.ecosystem {
                Ecosystem::Pypi => {
                    crate::index::normalize_pypi_name(&old.package.name)
                        == crate::index::normalize_pypi_name(&release.package.name)
                }
                Ecosystem::Npm => old.package.name == release.package.name,
            };
        if !same {
            return;
        }
        let mut changes = diff::compare(&old, release);
        let thresholds = self.thresholds.get(release.package.ecosystem);
        if diff::judge(&mut changes, &old, release, &self.detector, &thresholds).is_err()
            || changes.verdict != Verdict::Malicious
        {
            return;
        }
        let mut lines: Vec<String> = changes
            .malicious_units()
            .map(|u| {
                format!(
                    "new in {} since {}: {}",
                    changes.to,
                    changes.from,
                    diff::summary(u, 4)
                )
            })
            .collect();
        lines.extend(std::mem::take(reasons));
        *reasons = lines;
        *verdict = Some(Verdict::Malicious);
        // The score shown is the most malicious changed file's, when it is higher.
        let unit_score = changes
            .malicious_units()
            .filter_map(|u| u.score)
            .fold(0.0f32, f32::max);
        *score = Some(score.unwrap_or(0.0).max(unit_score));
    }

    /// A scan's result as a judgement: the detector's verdict, or unreadable. `fallback` is
    /// the name and version to show when the package does not say its own.
    fn conclude(
        &self,
        ecosystem: Ecosystem,
        result: scan::ScanResult,
        file: &str,
        sha256: &str,
        fallback: (&str, &str),
    ) -> Judged {
        let mut judged = self.unreadable(ecosystem, file, sha256, fallback);
        let scanned = match result.outcome {
            Ok(s) => s,
            Err(e) => {
                judged.outcome = Outcome::Unreadable(e.to_string());
                return judged;
            }
        };
        if !scanned.identity.name.is_empty() {
            judged.name = scanned.identity.name;
        }
        if !scanned.identity.version.is_empty() {
            judged.version = scanned.identity.version;
        }
        if let Some(reason) = scanned.unjudgeable.first() {
            judged.outcome = Outcome::Unreadable(reason.clone());
            return judged;
        }
        let thresholds = self.thresholds.get(judged.ecosystem);
        judged.outcome = match detect::judge(&self.detector, &thresholds, &scanned.sequence) {
            Ok(j) => Outcome::Judged {
                score: Some(j.score),
                verdict: Some(j.verdict),
                reasons: render_reasons(&j.reasons),
            },
            Err(e) => Outcome::Unreadable(format!("the model could not score it: {e}")),
        };
        judged
    }

    /// A judgement to fill in: unreadable until shown otherwise.
    fn unreadable(
        &self,
        ecosystem: Ecosystem,
        file: &str,
        sha256: &str,
        fallback: (&str, &str),
    ) -> Judged {
        Judged {
            ecosystem,
            name: fallback.0.to_owned(),
            version: fallback.1.to_owned(),
            file: file.to_owned(),
            sha256: sha256.to_owned(),
            outcome: Outcome::Unreadable(String::new()),
        }
    }

    /// Whether the policy would stop this package (flagged, or unreadable) unless it is
    /// allowed.
    pub fn concerning(&self, judged: &Judged) -> bool {
        match &judged.outcome {
            Outcome::Unreadable(_) => true,
            Outcome::Judged { verdict, .. } => verdict.is_some_and(|v| self.config.flags(v)),
        }
    }

    /// Whether the policy stops this package: flagged (or unreadable) and neither allowlisted
    /// nor allowed for this install.
    pub fn stops(&self, judged: &Judged) -> bool {
        if !self.concerning(judged) {
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

    /// Lets a release too new for the cooldown through for the rest of this install.
    pub fn allow_release(&self, ecosystem: Ecosystem, name: &str, version: &str) {
        self.state
            .lock()
            .expect("lock")
            .released
            .insert(release_key(ecosystem, name, version));
    }

    /// Records what became of a too-new release that was asked for exactly.
    pub fn record_pin(&self, held: crate::index::Held, action: super::HeldAction) {
        let mut state = self.state.lock().expect("lock");
        state.pins.retain(|(h, _)| {
            !(h.ecosystem == held.ecosystem && h.name == held.name && h.version == held.version)
        });
        state.pins.push((held, action));
    }

    /// The too-new releases asked for exactly, with what became of them.
    pub fn pins(&self) -> Vec<(crate::index::Held, super::HeldAction)> {
        self.state.lock().expect("lock").pins.clone()
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

/// How a released version is keyed: PyPI names normalised, versions compared as PEP 440
/// does for `1.1` and `1.1.0`.
fn release_key(ecosystem: Ecosystem, name: &str, version: &str) -> (Ecosystem, String, String) {
    let name = match ecosystem {
        Ecosystem::Pypi => crate::index::normalize_pypi_name(name),
        Ecosystem::Npm => name.to_owned(),
    };
    (ecosystem, name, crate::index::version_key(version))
}

impl Gate for GuardGate {
    fn lets_through_new(&self, ecosystem: Ecosystem, name: &str, version: &str) -> bool {
        self.allowlist
            .lock()
            .expect("lock")
            .allows(ecosystem, name, version)
            || self
                .state
                .lock()
                .expect("lock")
                .released
                .contains(&release_key(ecosystem, name, version))
    }

    fn wants_previous(&self, ecosystem: Ecosystem, sha256: &str) -> bool {
        self.config.release_diff.covers(ecosystem)
            && self.known(sha256).is_none()
            && self
                .verdicts
                .as_ref()
                .and_then(|v| v.get(sha256, &self.model_id))
                .is_none()
    }

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

/// An artifact being judged ([`GuardGate::judge`]); dropping it ends the flight.
struct Flight<'a> {
    gate: &'a GuardGate,
    sha: &'a str,
}

impl Drop for Flight<'_> {
    fn drop(&mut self) {
        // A poisoned lock still holds the set: waiters must not wait forever.
        let mut state = match self.gate.state.lock() {
            Ok(s) => s,
            Err(poisoned) => poisoned.into_inner(),
        };
        state.judging.remove(self.sha);
        drop(state);
        self.gate.judged_one.notify_all();
    }
}

/// Bumped when a fail-closed rule changes what is judged at all (2: archive differentials;
/// 3: zip entries read as pip writes them, repeated names refused, linked Python modules).
const FAIL_CLOSED_RULES: u32 = 3;
/// Bumped when the release diff's rule changes what a change is judged.
const RELEASE_DIFF_RULE: u32 = 1;

/// Everything a cached judgement depends on: the model and tokenizer (by hash), the
/// extractor (the crate version), and the thresholds in force.
fn judge_id(_detector: &Detector, thresholds: &PerEcosystem<Thresholds>) -> String {
    use sha2::Digest as _;
    static MODEL: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let model = MODEL.get_or_init(|| {
        let mut h = sha2::Sha256::new();
        h.update(cerebro_model::EMBEDDED_MODEL);
        h.update(cerebro_model::EMBEDDED_TOKENIZER);
        h.finalize()[..8]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    });
    // `rules`: the fail-closed rules (docs/SECURITY.md); a verdict cached before a rule
    // changed may be one the rule now refuses.
    // `diff`: the release diff's rule (crates/cerebro-scan/src/diff.rs); a verdict cached
    // before it judged no change.
    format!(
        "cerebro-{}-rules{FAIL_CLOSED_RULES}-diff{RELEASE_DIFF_RULE}-model-{model}-t{:.4}-{:.4}-npm{:.4}-{:.4}",
        env!("CARGO_PKG_VERSION"),
        thresholds.pypi.malicious,
        thresholds.pypi.suspicious,
        thresholds.npm.malicious,
        thresholds.npm.suspicious,
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

#[cfg(test)]
mod tests {
    use super::*;
    use cerebro_fetch::Artifact;
    use sha2::{Digest, Sha256};
    use std::io::Write as _;

    /// A wheel whose `__init__.py` has some behaviour to judge.
    fn wheel(dir: &Path) -> Artifact {
        let path = dir.join("demo_pkg-1.0.0-py3-none-any.whl");
        let mut zip = zip::ZipWriter::new(std::fs::File::create(&path).unwrap());
        let opts = zip::write::SimpleFileOptions::default();
        zip.start_file("demo_pkg/__init__.py", opts).unwrap();
        // Big enough that a scan lasts while the other requests arrive.
        let mut code = String::from("import os\nimport subprocess\n");
        for i in 0..4000 {
            code.push_str(&format!(
                "def f{i}(x):\n    return subprocess.run(['ls', os.getcwd(), x])\n"
            ));
        }
        zip.write_all(code.as_bytes()).unwrap();
        zip.start_file("demo_pkg-1.0.0.dist-info/METADATA", opts)
            .unwrap();
        zip.write_all(b"Metadata-Version: 2.1\nName: demo-pkg\nVersion: 1.0.0\n")
            .unwrap();
        zip.finish().unwrap();
        let bytes = std::fs::read(&path).unwrap();
        Artifact {
            sha256: format!("{:x}", Sha256::digest(&bytes)),
            size: bytes.len() as u64,
            path,
        }
    }

    #[test]
    fn concurrent_requests_for_one_artifact_share_one_scan() {
        let dir = tempfile::tempdir().unwrap();
        let artifact = wheel(dir.path());
        let gate = GuardGate::new(
            Arc::new(Detector::embedded().unwrap()),
            Config::default(),
            None,
            Allowlist::new(dir.path().join("allowlist.toml")),
            Arc::new(Silent),
        );
        let candidate = Candidate {
            ecosystem: Ecosystem::Pypi,
            name: "demo-pkg".into(),
            version: None,
            filename: "demo_pkg-1.0.0-py3-none-any.whl".into(),
            url: "http://127.0.0.1:9/demo_pkg-1.0.0-py3-none-any.whl"
                .parse()
                .unwrap(),
            artifact,
            previous: None,
        };
        let start = std::sync::Barrier::new(8);
        let results: Vec<Judged> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..8)
                .map(|_| {
                    s.spawn(|| {
                        start.wait();
                        gate.judge(&candidate)
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        assert_eq!(
            gate.scans.load(Ordering::Relaxed),
            1,
            "one scan for eight requests"
        );
        assert!(results.iter().all(|j| j.outcome == results[0].outcome));
        assert!(matches!(results[0].outcome, Outcome::Judged { .. }));
        assert_eq!(gate.judged().len(), 1);
    }
}
