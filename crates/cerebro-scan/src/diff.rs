//! Diff stage: what a release changed since the release before it, and whether the change
//! is malicious.
//!
//! The attacks that hurt most are compromised releases of popular libraries: a few new lines
//! in one function of a large, ordinary package. Read whole, such a release looks like the
//! library it always was; what gives it away is what it *added*. [`compare`] lists that,
//! without a model: new or changed install hooks, new dependencies, new `bin` entries, new
//! network destinations, new process, eval and decode calls, new encoded or long literals,
//! and the files whose behaviour changed ([`ChangedUnit`]). Events are compared per file by
//! phase, feature and detail (the API or literal), never by line, so code that only moved
//! is no change.
//!
//! [`judge`] then asks the detector about each changed file: the model scores the file's
//! *added behaviour* on its own ([`added_tokens`]: the events the file did not show before,
//! in run order, with code that runs when the library is used counted as import time). A
//! few new lines in a big file are judged as what they are, not drowned in the file's old
//! behaviour. **The rule**, kept simple so that it can be checked by hand:
//!
//! - a changed file is *malicious* when its added behaviour scores at or over the
//!   ecosystem's *suspicious* threshold (half the model's malicious threshold): new code
//!   that the model finds worth a look on its own is not what an ordinary update adds;
//!   except a test file whose added behaviour no install or import step reaches
//!   ([`ChangedUnit::test_only`]), which runs only when someone runs the tests;
//! - the change is *malicious* when any changed file is;
//! - otherwise it is *suspicious* when the release adds or changes an install hook, or adds
//!   a dependency in a patch release (reported, never blocked on: the hook's files and the
//!   dependency are judged on their own, as files of this release and as packages of the
//!   tree);
//! - otherwise *benign*.
//!
//! Behaviour only compared, never the model, decides what is listed: a release whose files
//! show nothing new is benign without a model run.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::path::Path;

use serde::Serialize;
use serde_json::Value;

use crate::detect::{Thresholds, Verdict};
use crate::scan::{ScanError, ScanOptions};
use cerebro_archive::{self as archive, Ecosystem, Package};
use cerebro_features::sequence::{self, Phase, Placed, Sequence, Token};
use cerebro_features::{self as features, Feature, PackageFacts};
use cerebro_model::{Detector, ModelError};

/// Entries listed per list of [`Changes`] (destinations, blobs, calls, dependencies, bins).
pub const MAX_LISTED: usize = 64;
/// Changed files listed and scored at most: when a release changes more, the ones whose
/// added behaviour shows the most distinct telling features are kept.
pub const MAX_UNITS: usize = 256;
/// Added events kept per changed file.
pub const MAX_EVENTS_PER_UNIT: usize = 16;

/// One release, read and analysed: what [`compare`] and [`judge`] need of it.
#[derive(Debug, Clone)]
pub struct Release {
    pub package: Package,
    pub facts: PackageFacts,
    pub sequence: Sequence,
}

impl Release {
    /// Analyses a package already read.
    pub fn new(package: Package, options: &ScanOptions) -> Release {
        let facts = features::extract(&package);
        let sequence = sequence::build(&facts, options.max_tokens);
        Release {
            package,
            facts,
            sequence,
        }
    }

    /// Reads and analyses the package at `path`; a panic in a stage becomes this path's
    /// error, as in [`crate::scan::scan_path`].
    pub fn open(path: &Path, options: &ScanOptions) -> Result<Release, ScanError> {
        guarded(path, || archive::open(path, &options.limits), options)
    }

    /// Reads and analyses a package held in memory, `name` telling its format, as
    /// [`crate::scan::scan_bytes`] does.
    pub fn from_bytes(
        name: &Path,
        bytes: &[u8],
        options: &ScanOptions,
    ) -> Result<Release, ScanError> {
        guarded(
            name,
            || archive::read_bytes(name, bytes, &options.limits),
            options,
        )
    }

    /// The release as a scan result, not yet judged (see [`crate::scan::judge`]).
    pub fn scanned(&self) -> crate::scan::Scanned {
        crate::scan::scanned(&self.package, &self.facts, self.sequence.clone())
    }
}

fn guarded(
    path: &Path,
    read: impl FnOnce() -> Result<Package, archive::ArchiveError> + std::panic::UnwindSafe,
    options: &ScanOptions,
) -> Result<Release, ScanError> {
    let options = *options;
    std::panic::catch_unwind(move || {
        read()
            .map(|p| Release::new(p, &options))
            .map_err(ScanError::from)
    })
    .unwrap_or_else(|panic| {
        Err(ScanError::Internal {
            path: path.to_owned(),
            message: crate::scan::panic_message(panic.as_ref()),
        })
    })
}

/// How the version moved, by its leading numbers (`1.4.2` → `1.4.3` is a patch).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Bump {
    Major,
    Minor,
    Patch,
    /// Same leading numbers (pre-release, post-release, build) or versions not numeric.
    Other,
}

/// An install hook the new release adds, or whose command changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HookChange {
    /// npm: `preinstall`, `install` or `postinstall`; PyPI: the root `.pth` file or
    /// `setup.py`.
    pub name: String,
    pub command: String,
    /// The command before, when the hook existed and changed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub old_command: Option<String>,
    /// Package files the hook runs.
    pub runs: Vec<String>,
}

/// A dependency the new release declares and the old one did not.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Dependency {
    pub name: String,
    /// The version range as written (npm), or the requirement's rest (PyPI).
    pub spec: String,
    /// Where it is declared: `dependencies`, `optionalDependencies`, `peerDependencies`, or
    /// `Requires-Dist`.
    pub field: String,
}

/// A command the new release installs on `PATH` (npm `bin`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BinEntry {
    pub name: String,
    pub path: String,
}

/// An added behaviour, where it is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Located {
    pub feature: Feature,
    pub file: String,
    pub line: u32,
    pub detail: String,
}

/// Whether a changed file is new in the release.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum UnitStatus {
    Added,
    Changed,
}

/// A file whose behaviour changed: it shows telling events (beyond routine module use) that
/// the same file of the old release did not show in the same phase.
#[derive(Debug, Clone, Serialize)]
pub struct ChangedUnit {
    pub file: String,
    /// Line of the first added event, in run order.
    pub line: u32,
    pub status: UnitStatus,
    /// Features the file shows now and did not show at all before.
    pub features: Vec<Feature>,
    /// The added events, in run order (at most [`MAX_EVENTS_PER_UNIT`]).
    pub added: Vec<Placed>,
    /// The model's score of what the file added ([`added_tokens`]), when a detector judged
    /// the change.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub score: Option<f32>,
    /// Whether this file's change is judged malicious (see the module's rule).
    pub malicious: bool,
    /// A test file ([`is_test_path`]) whose added behaviour no install or import step
    /// reaches: it runs when someone runs the package's tests, not when it is installed or
    /// used, so it is listed and scored but never makes the change malicious. (The release
    /// is still judged whole, tests included, by the scan.)
    pub test_only: bool,
}

/// Whether a package path is a test file by the conventions of pytest, unittest and the
/// JavaScript test runners: a folder `test`, `tests`, `testing` or `__tests__`, or a file
/// `test_*.py`, `*_test.py`, `conftest.py`, `*.test.js`, `*.spec.js` (and `.ts`, `.mjs`,
/// `.cjs`).
pub fn is_test_path(path: &str) -> bool {
    let mut parts = path.split('/').peekable();
    while let Some(part) = parts.next() {
        if parts.peek().is_none() {
            let lower = part.to_ascii_lowercase();
            let stem = lower
                .rsplit_once('.')
                .map_or(lower.as_str(), |(stem, _)| stem);
            return (lower.ends_with(".py")
                && (stem.starts_with("test_") || stem.ends_with("_test") || stem == "conftest"))
                || [".test", ".spec"].iter().any(|m| stem.ends_with(m));
        }
        if matches!(part, "test" | "tests" | "testing" | "__tests__") {
            return true;
        }
    }
    false
}

/// Everything a release changed since the one before it, and the verdict on the change.
#[derive(Debug, Clone, Serialize)]
pub struct Changes {
    pub ecosystem: Ecosystem,
    pub name: String,
    /// The old release's version.
    pub from: String,
    /// The new release's version.
    pub to: String,
    pub bump: Bump,
    pub hooks: Vec<HookChange>,
    pub dependencies: Vec<Dependency>,
    pub bins: Vec<BinEntry>,
    /// New network destinations (URLs, addresses, exfiltration endpoints) not in the old
    /// release anywhere.
    pub destinations: Vec<Located>,
    /// New process, eval, decode, network and sensitive-read calls, per file.
    pub calls: Vec<Located>,
    /// New base64, long or obfuscated literals not in the old release anywhere.
    pub blobs: Vec<Located>,
    /// Files whose behaviour changed, in run order of their first added event.
    pub units: Vec<ChangedUnit>,
    /// Changed files before the cap of [`MAX_UNITS`].
    pub units_total: usize,
    /// `benign`, `suspicious` or `malicious`; `benign` until [`judge`] ran unless a
    /// suspicious-only rule applied.
    pub verdict: Verdict,
    /// Why the verdict is what it is, one line each, for people.
    pub reasons: Vec<String>,
    /// Whether a detector judged the changed files.
    pub judged: bool,
}

impl Changes {
    /// Whether the release changed nothing worth listing.
    pub fn is_empty(&self) -> bool {
        self.hooks.is_empty()
            && self.dependencies.is_empty()
            && self.bins.is_empty()
            && self.destinations.is_empty()
            && self.calls.is_empty()
            && self.blobs.is_empty()
            && self.units.is_empty()
    }

    /// The malicious changed files.
    pub fn malicious_units(&self) -> impl Iterator<Item = &ChangedUnit> {
        self.units.iter().filter(|u| u.malicious)
    }
}

/// Lists what `new` changed since `old`, without a model; the verdict is `suspicious` when
/// a hook or patch-release dependency rule applies, else `benign` (see [`judge`]).
pub fn compare(old: &Release, new: &Release) -> Changes {
    let bump = bump(&old.package.version, &new.package.version);
    let hooks = hook_changes(old, new);
    let (old_deps, new_deps) = (dependencies(&old.package), dependencies(&new.package));
    let dependencies: Vec<Dependency> = new_deps
        .into_iter()
        .filter(|d| !old_deps.iter().any(|o| o.name == d.name))
        .collect();
    let old_bins = bins(&old.package);
    let bins: Vec<BinEntry> = bins(&new.package)
        .into_iter()
        .filter(|b| !old_bins.contains(b))
        .collect();

    let added = added_events(&old.sequence.events, &new.sequence.events);
    let old_anywhere: HashSet<(Feature, &str)> = old
        .sequence
        .events
        .iter()
        .map(|p| (p.event.feature, p.event.detail.as_str()))
        .collect();
    let located = |p: &Placed| Located {
        feature: p.event.feature,
        file: p.event.file.clone(),
        line: p.event.line,
        detail: p.event.detail.clone(),
    };
    let new_anywhere = |p: &&Placed| !old_anywhere.contains(&(p.event.feature, &p.event.detail));
    let mut destinations = Vec::new();
    let mut calls = Vec::new();
    let mut blobs = Vec::new();
    let mut seen = HashSet::new();
    for placed in &added {
        let e = &placed.event;
        if !seen.insert((e.feature, e.file.as_str(), e.detail.as_str())) {
            continue;
        }
        let list = match e.feature {
            Feature::D3 | Feature::D4 if new_anywhere(placed) => &mut destinations,
            Feature::E3 | Feature::E4 | Feature::O1 if new_anywhere(placed) => &mut blobs,
            Feature::P2 | Feature::P3 | Feature::P4 | Feature::E2 | Feature::D2 | Feature::R5 => {
                &mut calls
            }
            _ => continue,
        };
        if list.len() < MAX_LISTED {
            list.push(located(placed));
        }
    }

    let units = changed_units(old, new, &added);
    let units_total = units.len();
    let mut changes = Changes {
        ecosystem: new.package.ecosystem,
        name: new.package.name.clone(),
        from: old.package.version.clone(),
        to: new.package.version.clone(),
        bump,
        hooks,
        dependencies,
        bins,
        destinations,
        calls,
        blobs,
        units: most_telling(units, MAX_UNITS),
        units_total,
        verdict: Verdict::Benign,
        reasons: Vec::new(),
        judged: false,
    };
    changes.dependencies.truncate(MAX_LISTED);
    changes.bins.truncate(MAX_LISTED);
    apply_rule(&mut changes, None);
    changes
}

/// Scores what each changed file of `changes` added (its *added behaviour*, see
/// [`added_tokens`]) with `detector`, and sets the verdict by the module's rule at
/// `thresholds` (the new release's ecosystem's).
pub fn judge(
    changes: &mut Changes,
    old: &Release,
    new: &Release,
    detector: &Detector,
    thresholds: &Thresholds,
) -> Result<(), ModelError> {
    let added = added_events(&old.sequence.events, &new.sequence.events);
    let tokens: Vec<Vec<Token>> = changes
        .units
        .iter()
        .map(|u| {
            let mine: Vec<&Placed> = added
                .iter()
                .copied()
                .filter(|p| p.event.file == u.file)
                .collect();
            added_tokens(&mine)
        })
        .collect();
    let refs: Vec<&[Token]> = tokens.iter().map(Vec::as_slice).collect();
    let scores = if refs.is_empty() {
        Vec::new()
    } else {
        detector.score_tokens_many(&refs)?
    };
    for (unit, score) in changes.units.iter_mut().zip(scores) {
        let score = (score * 1e4).round() / 1e4;
        unit.score = Some(score);
        unit.malicious = score >= thresholds.suspicious && !unit.test_only;
    }
    changes.judged = true;
    apply_rule(changes, Some(thresholds.suspicious));
    Ok(())
}

/// The token sequence of a file's added behaviour: its added events in run order, phase
/// markers where the phase changes, repeats collapsed, capped like a unit. Code that runs
/// only when the library is used (the run phase) is marked as import time: a library's code
/// runs when it is used, and the model's import-time view (what a package does once an
/// application loads it) is the one that fits a question about new library code; the model
/// reads run-time behaviour of a whole package leniently because every library has plenty.
pub fn added_tokens(events: &[&Placed]) -> Vec<Token> {
    let mut raw = Vec::with_capacity(events.len() + 2);
    let mut phase = None;
    for p in events {
        let here = match p.phase {
            Phase::Run => Phase::Import,
            other => other,
        };
        if phase != Some(here) {
            phase = Some(here);
            raw.push(Token::Phase(here));
        }
        sequence::push_collapsed(&mut raw, Token::of(&p.event));
    }
    sequence::cap(&raw, sequence::DEFAULT_MAX_TOKENS)
}

/// Sets `verdict` and `reasons` from what is listed (the module's rule).
fn apply_rule(changes: &mut Changes, threshold: Option<f32>) {
    let mut reasons = Vec::new();
    for unit in changes.malicious_units() {
        let what = match unit.status {
            UnitStatus::Added => "new file",
            UnitStatus::Changed => "changed file",
        };
        reasons.push(format!(
            "{}:{}: what the {what} adds scores {:.2}, at or over {:.2}",
            unit.file,
            unit.line,
            unit.score.unwrap_or_default(),
            threshold.unwrap_or_default(),
        ));
    }
    let malicious = !reasons.is_empty();
    for hook in &changes.hooks {
        reasons.push(match &hook.old_command {
            Some(old) => format!(
                "install hook {} changed from `{old}` to `{}`",
                hook.name, hook.command
            ),
            None => format!("new install hook {}: `{}`", hook.name, hook.command),
        });
    }
    if changes.bump == Bump::Patch {
        for dep in &changes.dependencies {
            reasons.push(format!(
                "new dependency {} {} in a patch release",
                dep.name, dep.spec
            ));
        }
    }
    changes.verdict = if malicious {
        Verdict::Malicious
    } else if !reasons.is_empty() {
        Verdict::Suspicious
    } else {
        Verdict::Benign
    };
    changes.reasons = reasons;
}

/// The events of `new` that the same file of `old` does not show: compared by phase,
/// feature and detail, as many times as each occurs, never by line.
fn added_events<'a>(old: &[Placed], new: &'a [Placed]) -> Vec<&'a Placed> {
    let mut counts: HashMap<(&str, Phase, Feature, &str), usize> = HashMap::new();
    for p in old {
        *counts
            .entry((&p.event.file, p.phase, p.event.feature, &p.event.detail))
            .or_default() += 1;
    }
    new.iter()
        .filter(|p| {
            match counts.get_mut(&(
                p.event.file.as_str(),
                p.phase,
                p.event.feature,
                p.event.detail.as_str(),
            )) {
                Some(n) if *n > 0 => {
                    *n -= 1;
                    false
                }
                _ => true,
            }
        })
        .collect()
}

/// The files with a telling added event, in run order of their first one.
fn changed_units(old: &Release, new: &Release, added: &[&Placed]) -> Vec<ChangedUnit> {
    let mut old_features: HashMap<&str, BTreeSet<Feature>> = HashMap::new();
    for p in &old.sequence.events {
        old_features
            .entry(&p.event.file)
            .or_default()
            .insert(p.event.feature);
    }
    let mut new_features: HashMap<&str, BTreeSet<Feature>> = HashMap::new();
    for p in &new.sequence.events {
        new_features
            .entry(&p.event.file)
            .or_default()
            .insert(p.event.feature);
    }
    let mut by_file: BTreeMap<&str, Vec<&Placed>> = BTreeMap::new();
    let mut order: Vec<&str> = Vec::new();
    for p in added {
        if p.event.file.is_empty() {
            continue;
        }
        let list = by_file.entry(&p.event.file).or_default();
        if list.is_empty() {
            order.push(&p.event.file);
        }
        list.push(p);
    }
    let existed = |file: &str| {
        old.package.file(file).is_some()
            || old_features.contains_key(file)
            || old.facts.file(file).is_some()
    };
    order
        .into_iter()
        .filter_map(|file| {
            let events = &by_file[file];
            let first = events.iter().find(|p| sequence::telling(p.event.feature))?;
            let before = old_features.get(file);
            let features = new_features
                .get(file)
                .map(|now| {
                    now.iter()
                        .filter(|f| before.is_none_or(|b| !b.contains(f)))
                        .copied()
                        .collect()
                })
                .unwrap_or_default();
            Some(ChangedUnit {
                file: file.to_owned(),
                line: first.event.line,
                status: if existed(file) {
                    UnitStatus::Changed
                } else {
                    UnitStatus::Added
                },
                features,
                added: events
                    .iter()
                    .take(MAX_EVENTS_PER_UNIT)
                    .map(|p| (*p).clone())
                    .collect(),
                score: None,
                malicious: false,
                test_only: is_test_path(file) && events.iter().all(|p| p.phase == Phase::Run),
            })
        })
        .collect()
}

/// At most `max` of `units`, those with the most distinct telling added features, in their
/// run order.
fn most_telling(mut units: Vec<ChangedUnit>, max: usize) -> Vec<ChangedUnit> {
    if units.len() <= max {
        return units;
    }
    let telling = |u: &ChangedUnit| {
        let mut f: Vec<Feature> = u
            .added
            .iter()
            .map(|p| p.event.feature)
            .filter(|&f| sequence::telling(f))
            .collect();
        f.sort();
        f.dedup();
        f.len()
    };
    let mut ranked: Vec<(usize, usize)> = units
        .iter()
        .enumerate()
        .map(|(i, u)| (telling(u), i))
        .collect();
    ranked.sort_by_key(|&(n, i)| (std::cmp::Reverse(n), i));
    let mut keep: Vec<usize> = ranked.into_iter().take(max).map(|(_, i)| i).collect();
    keep.sort_unstable();
    let mut i = 0;
    units.retain(|_| {
        let kept = keep.binary_search(&i).is_ok();
        i += 1;
        kept
    });
    units
}

/// The install hooks `new` adds or changes: npm's lifecycle scripts, and for PyPI a root
/// `.pth` file (run at every interpreter start) or a `setup.py` (run by an sdist install)
/// that is new or whose text changed.
fn hook_changes(old: &Release, new: &Release) -> Vec<HookChange> {
    let mut out = Vec::new();
    for hook in &new.facts.hooks {
        let before = old.facts.hooks.iter().find(|h| h.name == hook.name);
        if before.is_some_and(|b| b.command == hook.command) {
            continue;
        }
        out.push(HookChange {
            name: hook.name.clone(),
            command: hook.command.clone(),
            old_command: before.map(|b| b.command.clone()),
            runs: hook.runs.clone(),
        });
    }
    if new.package.ecosystem == Ecosystem::Pypi {
        for file in &new.package.files {
            let path = file.path.as_str();
            let is_hook = path == "setup.py" || (!path.contains('/') && path.ends_with(".pth"));
            if !is_hook {
                continue;
            }
            let before = old.package.file(path);
            if before.is_some_and(|b| b.bytes == file.bytes) {
                continue;
            }
            // A setup.py that only changed (versions, metadata) is routine; its behaviour
            // is compared as a file like any other. One that is new, or a new `.pth`, is not.
            if path == "setup.py" && before.is_some() {
                continue;
            }
            out.push(HookChange {
                name: path.to_owned(),
                command: features::shorten(&file.text(), 120),
                old_command: before.map(|b| features::shorten(&b.text(), 120)),
                runs: vec![path.to_owned()],
            });
        }
    }
    out
}

/// The dependencies a package declares: npm's `dependencies`, `optionalDependencies` and
/// `peerDependencies` (npm installs all three); PyPI's `Requires-Dist` headers of its
/// metadata (a metadata file without them declares none that Cerebro can see).
pub fn dependencies(package: &Package) -> Vec<Dependency> {
    let mut out = Vec::new();
    match package.ecosystem {
        Ecosystem::Npm => {
            let Some(json) = manifest(package) else {
                return out;
            };
            for field in ["dependencies", "optionalDependencies", "peerDependencies"] {
                if let Some(Value::Object(map)) = json.get(field) {
                    for (name, spec) in map {
                        if out.iter().any(|d: &Dependency| &d.name == name) {
                            continue;
                        }
                        out.push(Dependency {
                            name: name.clone(),
                            spec: spec.as_str().unwrap_or("").to_owned(),
                            field: field.to_owned(),
                        });
                    }
                }
            }
        }
        Ecosystem::Pypi => {
            let Some(metadata) = python_metadata(package) else {
                return out;
            };
            for line in metadata.text().lines() {
                if line.trim().is_empty() {
                    break; // the headers end at the first blank line; the body follows
                }
                let Some((key, value)) = line.split_once(':') else {
                    continue;
                };
                if !key.trim().eq_ignore_ascii_case("requires-dist") {
                    continue;
                }
                let value = value.trim();
                let end = value
                    .find(|c: char| !(c.is_ascii_alphanumeric() || "-_.".contains(c)))
                    .unwrap_or(value.len());
                let name = normalize_pypi(&value[..end]);
                if name.is_empty() || out.iter().any(|d| d.name == name) {
                    continue;
                }
                out.push(Dependency {
                    name,
                    spec: value[end..].trim().to_owned(),
                    field: "Requires-Dist".to_owned(),
                });
            }
        }
    }
    out
}

/// PEP 503 name normalisation: lower case, runs of `-_.` as one `-`.
fn normalize_pypi(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for c in name.chars() {
        if "-_.".contains(c) {
            if !out.ends_with('-') {
                out.push('-');
            }
        } else {
            out.push(c.to_ascii_lowercase());
        }
    }
    out
}

/// The PyPI metadata file: `PKG-INFO` at the root (sdist), else `*.dist-info/METADATA` one
/// folder down (wheel).
fn python_metadata(package: &Package) -> Option<&archive::SourceFile> {
    package.file("PKG-INFO").or_else(|| {
        package.files.iter().find(|f| {
            f.path.matches('/').count() == 1
                && f.path.ends_with("/METADATA")
                && f.path
                    .split('/')
                    .next()
                    .is_some_and(|d| d.ends_with(".dist-info"))
        })
    })
}

fn manifest(package: &Package) -> Option<Value> {
    features::npm::parse_manifest(&package.file("package.json")?.bytes).ok()
}

/// npm's `bin`: a string (the command is the package's name without its scope) or a map of
/// command names to files.
pub fn bins(package: &Package) -> Vec<BinEntry> {
    if package.ecosystem != Ecosystem::Npm {
        return Vec::new();
    }
    let Some(json) = manifest(package) else {
        return Vec::new();
    };
    match json.get("bin") {
        Some(Value::String(path)) => {
            let name = package.name.rsplit('/').next().unwrap_or(&package.name);
            vec![BinEntry {
                name: name.to_owned(),
                path: path.clone(),
            }]
        }
        Some(Value::Object(map)) => map
            .iter()
            .map(|(name, path)| BinEntry {
                name: name.clone(),
                path: path.as_str().unwrap_or("").to_owned(),
            })
            .collect(),
        _ => Vec::new(),
    }
}

/// How `new` moved from `old`, by their leading dot-separated numbers.
pub fn bump(old: &str, new: &str) -> Bump {
    fn numbers(v: &str) -> Vec<u64> {
        let mut out = Vec::new();
        for part in v.trim_start_matches(['v', 'V']).split('.') {
            let digits: String = part.chars().take_while(char::is_ascii_digit).collect();
            let Ok(n) = digits.parse() else { break };
            out.push(n);
            // `2rc1` ends the numeric prefix after its number.
            if digits.len() != part.len() || out.len() == 3 {
                break;
            }
        }
        out
    }
    let (a, b) = (numbers(old), numbers(new));
    if a.is_empty() || b.is_empty() {
        return Bump::Other;
    }
    let at = |v: &[u64], i: usize| v.get(i).copied().unwrap_or(0);
    if at(&a, 0) != at(&b, 0) {
        Bump::Major
    } else if at(&a, 1) != at(&b, 1) {
        Bump::Minor
    } else if at(&a, 2) != at(&b, 2) {
        Bump::Patch
    } else {
        Bump::Other
    }
}

/// What an added event does, as a verb phrase for people (`reads`, `starts a process with`).
pub fn verb(feature: Feature) -> &'static str {
    match feature {
        Feature::R1 => "imports an operating-system module:",
        Feature::R2 => "calls",
        Feature::R3 => "imports a file-system module:",
        Feature::R4 => "uses the file system with",
        Feature::R5 => "reads",
        Feature::D1 => "imports a network module:",
        Feature::D2 => "sends over the network with",
        Feature::D3 => "names",
        Feature::D4 => "sends to the exfiltration endpoint",
        Feature::E1 => "imports an encoding module:",
        Feature::E2 => "decodes with",
        Feature::E3 => "holds a base64 blob",
        Feature::E4 => "holds a long string",
        Feature::P1 => "imports a process module:",
        Feature::P2 => "starts a process with",
        Feature::P3 => "runs shell",
        Feature::P4 => "evaluates code with",
        Feature::H1 => "adds an install hook",
        Feature::O1 => "is obfuscated",
        Feature::A1 => "has an odd archive entry",
    }
}

/// One line for people about a changed file: `lib/util.js:42 reads \`~/.npmrc\`, sends over
/// the network with \`https.request\``: its telling added events, one per feature and
/// detail, strongest features first, at most `max`.
pub fn summary(unit: &ChangedUnit, max: usize) -> String {
    let mut events: Vec<&Placed> = unit
        .added
        .iter()
        .filter(|p| sequence::telling(p.event.feature))
        .collect();
    events.sort_by_key(|p| std::cmp::Reverse(p.event.feature.weight()));
    let mut seen = HashSet::new();
    let mut parts = Vec::new();
    for p in events {
        let e = &p.event;
        if !seen.insert((e.feature, e.detail.as_str())) {
            continue;
        }
        let blob = matches!(e.feature, Feature::E3 | Feature::E4 | Feature::O1);
        parts.push(if blob || e.detail.is_empty() {
            format!("{} ({})", verb(e.feature), e.feature.id())
        } else {
            format!(
                "{} `{}` ({})",
                verb(e.feature),
                features::shorten(&e.detail, 60),
                e.feature.id()
            )
        });
        if parts.len() == max {
            break;
        }
    }
    format!("{}:{} {}", unit.file, unit.line, parts.join(", "))
}

#[cfg(test)]
mod tests;
