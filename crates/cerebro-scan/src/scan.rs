//! Scan: runs the stages (archive → features → sequence) over one package, and over many in
//! parallel with results delivered in input order, so output is stable and memory stays flat.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::detect::{self, Judgement, Thresholds};
use cerebro_archive::{
    self as archive, Anomaly, ArchiveError, ArchiveKind, Ecosystem, Limits, Package, PerEcosystem,
};
use cerebro_features as features;
use cerebro_features::sequence::{self, Sequence};
use cerebro_model::Detector;

/// Settings of a scan.
#[derive(Debug, Clone, Copy)]
pub struct ScanOptions {
    pub limits: Limits,
    /// Length cap of the token sequence.
    pub max_tokens: usize,
}

impl Default for ScanOptions {
    fn default() -> Self {
        ScanOptions {
            limits: Limits::default(),
            max_tokens: sequence::DEFAULT_MAX_TOKENS,
        }
    }
}

/// Who a package is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub ecosystem: Ecosystem,
    pub name: String,
    pub version: String,
    pub kind: ArchiveKind,
}

/// A package's behaviour, ready for the detector and for people.
#[derive(Debug, Clone)]
pub struct Scanned {
    pub identity: Identity,
    pub anomalies: Vec<Anomaly>,
    /// Source files the extractors read.
    pub files_parsed: usize,
    pub sequence: Sequence,
    /// The detector's score, verdict and reasons, when a detector was asked.
    pub judgement: Option<Judgement>,
    /// Why the package cannot be judged (install-time code Cerebro could not read as the
    /// installer will); a guard refuses such a package whatever its score.
    pub unjudgeable: Vec<String>,
}

/// Why a package could not be scanned.
#[derive(Debug, thiserror::Error)]
pub enum ScanError {
    #[error(transparent)]
    Archive(#[from] ArchiveError),
    /// A bug in Cerebro, caught so that one package cannot stop a scan of thousands; the
    /// package is reported as not scanned (a guard fails closed on it).
    #[error("internal error while scanning {path}: {message} (please report this)")]
    Internal { path: PathBuf, message: String },
    /// The model could not score the package; it counts as not judged (fail closed).
    #[error("cannot judge {path}: {message}")]
    Model { path: PathBuf, message: String },
    /// Code that runs at install or import time could not be read as the installer reads
    /// it; the package counts as not judged (fail closed).
    #[error("cannot judge {path}: {reason}")]
    Unjudgeable { path: PathBuf, reason: String },
}

/// The outcome of scanning one path.
#[derive(Debug)]
pub struct ScanResult {
    pub path: PathBuf,
    pub outcome: Result<Scanned, ScanError>,
    /// Wall time of this package's scan.
    pub elapsed: Duration,
}

/// Turns a package already read into its behaviour sequence.
pub fn scan_package(package: &Package, options: &ScanOptions) -> Scanned {
    let facts = features::extract(package);
    let sequence = sequence::build(&facts, options.max_tokens);
    scanned(package, &facts, sequence)
}

/// The scan of a package whose facts and sequence were already built (a [`crate::diff`]
/// release), not yet judged.
pub fn scanned(package: &Package, facts: &features::PackageFacts, sequence: Sequence) -> Scanned {
    Scanned {
        identity: Identity {
            ecosystem: package.ecosystem,
            name: package.name.clone(),
            version: package.version.clone(),
            kind: package.kind,
        },
        anomalies: package.anomalies.clone(),
        files_parsed: facts.files.len(),
        sequence,
        judgement: None,
        unjudgeable: facts.unjudgeable.clone(),
    }
}

/// Scores a scanned package with `detector`, filling its judgement; a package the model
/// cannot score becomes an error, since a guard that cannot judge must not wave through.
pub fn judge(result: &mut ScanResult, detector: &Detector, thresholds: &PerEcosystem<Thresholds>) {
    let start = Instant::now();
    let Ok(scanned) = &mut result.outcome else {
        return;
    };
    if let Some(reason) = scanned.unjudgeable.first() {
        result.outcome = Err(ScanError::Unjudgeable {
            path: result.path.clone(),
            reason: reason.clone(),
        });
        result.elapsed += start.elapsed();
        return;
    }
    let ecosystem = scanned.identity.ecosystem;
    let thresholds = thresholds.get(ecosystem);
    let judged = detect::judge(detector, &thresholds, &scanned.sequence).and_then(|mut j| {
        if let Some(units) = detector.info().unit_thresholds {
            if j.score > 0.0 {
                detect::judge_units(detector, units.get(ecosystem), &scanned.sequence, &mut j)?;
            }
        }
        Ok(j)
    });
    match judged {
        Ok(judgement) => scanned.judgement = Some(judgement),
        Err(e) => {
            result.outcome = Err(ScanError::Model {
                path: result.path.clone(),
                message: e.to_string(),
            })
        }
    }
    result.elapsed += start.elapsed();
}

/// Reads and scans the package at `path` (an archive or a folder).
pub fn scan_path(path: &Path, options: &ScanOptions) -> ScanResult {
    guarded(path, || archive::open(path, &options.limits), options)
}

/// Reads and scans the files `listed` under `root` as one package (an installed Python
/// distribution, by its `RECORD`), as [`scan_path`] does for a folder.
pub fn scan_listed(root: &Path, listed: &[String], options: &ScanOptions) -> ScanResult {
    guarded(
        root,
        || archive::open_listed(root, listed, &options.limits),
        options,
    )
}

/// Reads and scans a package held in memory (a download), `name` telling its format, as
/// [`scan_path`] does for a file.
pub fn scan_bytes(name: &Path, bytes: &[u8], options: &ScanOptions) -> ScanResult {
    guarded(
        name,
        || archive::read_bytes(name, bytes, &options.limits),
        options,
    )
}

/// Reads with `read` and scans, turning a panic into this package's error.
fn guarded(
    path: &Path,
    read: impl FnOnce() -> Result<Package, ArchiveError> + std::panic::UnwindSafe,
    options: &ScanOptions,
) -> ScanResult {
    let start = Instant::now();
    let scan = || read().map(|p| scan_package(&p, options));
    let outcome = match std::panic::catch_unwind(scan) {
        Ok(result) => result.map_err(ScanError::from),
        Err(panic) => Err(ScanError::Internal {
            path: path.to_owned(),
            message: panic_message(panic.as_ref()),
        }),
    };
    ScanResult {
        path: path.to_owned(),
        outcome,
        elapsed: start.elapsed(),
    }
}

pub(crate) fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".to_owned())
}

/// File names that make a folder a package of its own rather than a folder of archives.
const PROJECT_MARKERS: &[&str] = &[
    "setup.py",
    "pyproject.toml",
    "setup.cfg",
    "PKG-INFO",
    "package.json",
];

/// Whether a file name is a package archive a scan should pick up from a folder.
pub fn is_archive_name(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    [
        ".tar.gz", ".tgz", ".tar.bz2", ".tbz2", ".tar", ".zip", ".whl",
    ]
    .iter()
    .any(|ext| lower.ends_with(ext))
}

/// Expands the paths given on the command line into the packages to scan: a file is one
/// package; a folder holding a project (`setup.py`, `package.json`, …) is one package; any
/// other folder is searched, in name order, for archives and project folders. A path that
/// does not exist is kept, so that its scan reports the error in its place.
pub fn targets(paths: &[PathBuf]) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for path in paths {
        if path.is_dir() && !is_project(path) {
            collect(path, &mut out, 0);
        } else {
            out.push(path.clone());
        }
    }
    out
}

fn is_project(dir: &Path) -> bool {
    PROJECT_MARKERS.iter().any(|m| dir.join(m).is_file())
}

/// Folder depth beyond which a search for archives stops (a link loop cannot recurse: links
/// are not followed, but very deep trees are not worth the walk either).
const MAX_SEARCH_DEPTH: usize = 32;

fn collect(dir: &Path, out: &mut Vec<PathBuf>, depth: usize) {
    if depth > MAX_SEARCH_DEPTH {
        return;
    }
    let Ok(entries) = std::fs::read_dir(dir) else {
        out.push(dir.to_owned());
        return;
    };
    let mut entries: Vec<_> = entries.filter_map(Result::ok).collect();
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let Ok(kind) = entry.file_type() else {
            continue;
        };
        let path = entry.path();
        if kind.is_dir() {
            if is_project(&path) {
                out.push(path);
            } else {
                collect(&path, out, depth + 1);
            }
        } else if kind.is_file() && is_archive_name(&entry.file_name().to_string_lossy()) {
            out.push(path);
        }
    }
}

/// Runs `work` on indices `0..n` on `jobs` threads and hands each result to `sink` in index
/// order, as soon as it and all before it are done. Threads take the next index from a shared
/// counter, so results arrive nearly in order and few wait in the reorder buffer; the channel
/// is bounded, so a slow sink slows the workers instead of queueing everything in memory.
pub fn for_each_ordered<T, W, S>(n: usize, jobs: usize, work: W, mut sink: S)
where
    T: Send,
    W: Fn(usize) -> T + Sync,
    S: FnMut(usize, T),
{
    let jobs = jobs.clamp(1, n.max(1));
    let next = AtomicUsize::new(0);
    let (tx, rx) = mpsc::sync_channel::<(usize, T)>(jobs * 4);
    std::thread::scope(|scope| {
        for _ in 0..jobs {
            let tx = tx.clone();
            let (next, work) = (&next, &work);
            std::thread::Builder::new()
                // Parsers and walkers bound their own depth; this is headroom, not a need.
                .stack_size(8 << 20)
                .spawn_scoped(scope, move || loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= n || tx.send((i, work(i))).is_err() {
                        break;
                    }
                })
                .expect("spawning a scan thread");
        }
        drop(tx);
        let mut pending = BTreeMap::new();
        let mut due = 0;
        for (i, result) in rx {
            pending.insert(i, result);
            while let Some(result) = pending.remove(&due) {
                sink(due, result);
                due += 1;
            }
        }
    });
}

/// The number of threads to use by default: all cores.
pub fn default_jobs() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordered_results_whatever_the_finishing_order() {
        let mut seen = Vec::new();
        for_each_ordered(
            50,
            4,
            |i| {
                std::thread::sleep(Duration::from_micros(((50 - i) * 37 % 200) as u64));
                i * 2
            },
            |i, v| seen.push((i, v)),
        );
        assert_eq!(seen, (0..50).map(|i| (i, i * 2)).collect::<Vec<_>>());
    }

    #[test]
    fn ordered_with_nothing_to_do() {
        let mut called = false;
        for_each_ordered(0, 4, |i| i, |_, _| called = true);
        assert!(!called);
    }

    #[test]
    fn archive_names() {
        assert!(is_archive_name("x-1.0.tar.gz"));
        assert!(is_archive_name("X.WHL"));
        assert!(!is_archive_name("manifest.csv"));
    }
}
