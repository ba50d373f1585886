//! The sequences file: one JSON line per package, malicious and benign, with the behaviour
//! sequence `cerebro scan` would give it.
//!
//! The malicious packages are the shared corpus's, listed by `pypi-malicious/manifest.csv`
//! (`name,version,file,added,sha256`) and `npm-malicious/manifest.csv`
//! (`source,file,sha256`); they are read as bytes and parsed in memory by the archive
//! reader, never unpacked to disk or run. The benign ones are a manifest's artifacts, read
//! from the cache. Every file is checked against its sha256 before it is scanned.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::{Component, Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::cache::{write_atomic, Cache};
use super::manifest::ManifestRow;
use super::{sha256_hex, Ecosystem};
use cerebro_archive::{self as archive, Package};
use cerebro_scan::scan::{self, ScanOptions, Scanned};

/// What a package is known to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Label {
    Malicious,
    Benign,
}

/// One package to scan, and what the dataset records about it.
#[derive(Debug, Clone)]
pub struct Entry {
    pub label: Label,
    pub ecosystem: Ecosystem,
    /// Where the package comes from: `pypi-malregistry`, `spiderscan`, `sonatype`,
    /// `defcon33`, `top-pypi`, `top-npm`.
    pub source: String,
    /// From the manifest where it names one; else from the package's metadata.
    pub name: Option<String>,
    pub version: Option<String>,
    /// Relative path: under the corpus for malicious packages, the artifact's file name for
    /// benign ones.
    pub file: String,
    /// The sha256 the manifest gives.
    pub sha256: String,
    /// Malicious PyPI: the date the sample entered the registry.
    pub added: Option<String>,
    /// Benign: popularity rank.
    pub rank: Option<u32>,
    /// Where the bytes are read from.
    pub location: PathBuf,
}

/// One line of the sequences file.
#[derive(Debug, Clone, Serialize)]
pub struct Record {
    pub label: Label,
    pub ecosystem: &'static str,
    pub source: String,
    pub name: Option<String>,
    pub version: Option<String>,
    pub file: String,
    pub sha256: String,
    pub added: Option<String>,
    pub rank: Option<u32>,
    /// Behaviour tokens (phase markers, feature ids, `[GAP]`); `null` when unreadable.
    pub sequence: Option<Vec<&'static str>>,
    pub sequence_uncapped_len: Option<usize>,
    /// Feature id → number of events (all events, before collapsing and capping).
    pub feature_counts: Option<BTreeMap<&'static str, usize>>,
    pub files_parsed: Option<usize>,
    /// The package's units (one file's behaviour each, `sequence::units`), for judging
    /// files on their own; `null` when unreadable.
    pub units: Option<Vec<UnitRecord>>,
    /// Why the package could not be scanned; `null` when it was.
    pub error: Option<String>,
}

/// One unit of a [`Record`].
#[derive(Debug, Clone, Serialize)]
pub struct UnitRecord {
    pub file: String,
    pub sequence: Vec<&'static str>,
}

#[derive(Debug, Deserialize)]
struct PypiMalicious {
    name: String,
    version: String,
    file: String,
    added: String,
    sha256: String,
}

#[derive(Debug, Deserialize)]
struct NpmMalicious {
    source: String,
    file: String,
    sha256: String,
}

/// A manifest path that stays inside its folder (no `..`, not absolute).
fn inside(base: &Path, rel: &str, manifest: &Path, line: usize) -> Result<PathBuf, String> {
    let path = Path::new(rel);
    let ok = !rel.is_empty() && path.components().all(|c| matches!(c, Component::Normal(_)));
    if !ok {
        return Err(format!(
            "{}:{line}: file {rel:?} is not a plain relative path",
            manifest.display()
        ));
    }
    Ok(base.join(path))
}

fn checked_sha(sha: &str, manifest: &Path, line: usize) -> Result<String, String> {
    let sha = sha.trim().to_ascii_lowercase();
    if super::is_sha256_hex(&sha) {
        Ok(sha)
    } else {
        Err(format!(
            "{}:{line}: {sha:?} is not a sha256",
            manifest.display()
        ))
    }
}

/// The malicious packages of the corpus at `corpus`: every row of
/// `pypi-malicious/manifest.csv`, then of `npm-malicious/manifest.csv`, in file order.
pub fn malicious_entries(corpus: &Path) -> Result<Vec<Entry>, String> {
    let mut out = Vec::new();

    let dir = corpus.join("pypi-malicious");
    let manifest = dir.join("manifest.csv");
    let mut reader = csv::Reader::from_path(&manifest)
        .map_err(|e| format!("cannot read {}: {e}", manifest.display()))?;
    for (i, row) in reader.deserialize::<PypiMalicious>().enumerate() {
        let line = i + 2;
        let row = row.map_err(|e| format!("{}:{line}: {e}", manifest.display()))?;
        out.push(Entry {
            label: Label::Malicious,
            ecosystem: Ecosystem::Pypi,
            source: "pypi-malregistry".to_owned(),
            name: Some(row.name),
            version: Some(row.version),
            location: inside(&dir, &row.file, &manifest, line)?,
            file: format!("pypi-malicious/{}", row.file),
            sha256: checked_sha(&row.sha256, &manifest, line)?,
            added: Some(row.added).filter(|a| !a.is_empty()),
            rank: None,
        });
    }

    let dir = corpus.join("npm-malicious");
    let manifest = dir.join("manifest.csv");
    let mut reader = csv::Reader::from_path(&manifest)
        .map_err(|e| format!("cannot read {}: {e}", manifest.display()))?;
    for (i, row) in reader.deserialize::<NpmMalicious>().enumerate() {
        let line = i + 2;
        let row = row.map_err(|e| format!("{}:{line}: {e}", manifest.display()))?;
        out.push(Entry {
            label: Label::Malicious,
            ecosystem: Ecosystem::Npm,
            source: row.source,
            name: None,
            version: None,
            location: inside(&dir, &row.file, &manifest, line)?,
            file: format!("npm-malicious/{}", row.file),
            sha256: checked_sha(&row.sha256, &manifest, line)?,
            added: None,
            rank: None,
        });
    }
    Ok(out)
}

/// The benign packages of manifest rows, read from `cache`. Rows whose artifact is not in
/// the cache come back separately (run `fetch` for them).
pub fn benign_entries(rows: &[ManifestRow], cache: &Cache) -> (Vec<Entry>, Vec<ManifestRow>) {
    let mut entries = Vec::new();
    let mut missing = Vec::new();
    for row in rows {
        let Some(ecosystem) = Ecosystem::parse(&row.ecosystem) else {
            missing.push(row.clone());
            continue;
        };
        if !cache.contains(&row.sha256) {
            missing.push(row.clone());
            continue;
        }
        entries.push(Entry {
            label: Label::Benign,
            ecosystem,
            source: super::benign_source(ecosystem).to_owned(),
            name: Some(row.name.clone()),
            version: Some(row.version.clone()),
            file: row.file.clone(),
            sha256: row.sha256.clone(),
            added: None,
            rank: Some(row.rank),
            location: cache.path_of(&row.sha256),
        });
    }
    (entries, missing)
}

/// Scans one entry with the same stages as `cerebro scan`.
pub fn scan_entry(entry: &Entry, options: &ScanOptions) -> Record {
    let scanned = read_package(entry, options)
        .and_then(|package| catch(&entry.file, || scan::scan_package(&package, options)));
    record_of(entry, scanned, options)
}

/// The line of `entry` for what its scan gave (or why it could not be scanned).
pub fn record_of(entry: &Entry, scanned: Result<Scanned, String>, options: &ScanOptions) -> Record {
    let mut record = Record {
        label: entry.label,
        ecosystem: entry.ecosystem.as_str(),
        source: entry.source.clone(),
        name: entry.name.clone(),
        version: entry.version.clone(),
        file: entry.file.clone(),
        sha256: entry.sha256.clone(),
        added: entry.added.clone(),
        rank: entry.rank,
        sequence: None,
        sequence_uncapped_len: None,
        feature_counts: None,
        files_parsed: None,
        units: None,
        error: None,
    };
    match scanned {
        Ok(scanned) => {
            if record.name.is_none() {
                record.name = Some(scanned.identity.name.clone());
            }
            if record.version.is_none() {
                record.version = Some(scanned.identity.version.clone());
            }
            let mut counts = BTreeMap::new();
            for placed in &scanned.sequence.events {
                *counts.entry(placed.event.feature.id()).or_insert(0) += 1;
            }
            record.sequence = Some(scanned.sequence.token_strs());
            record.sequence_uncapped_len = Some(scanned.sequence.uncapped_len);
            record.feature_counts = Some(counts);
            record.files_parsed = Some(scanned.files_parsed);
            record.units = Some(
                cerebro_features::sequence::units(
                    &scanned.sequence.events,
                    options.max_tokens,
                    cerebro_features::sequence::DEFAULT_MAX_UNITS,
                )
                .into_iter()
                .map(|u| UnitRecord {
                    file: u.file,
                    sequence: u.tokens.iter().map(|t| t.as_str()).collect(),
                })
                .collect(),
            );
        }
        Err(error) => record.error = Some(error),
    }
    record
}

/// Reads the bytes, checks their sha256, and runs the archive reader on them in memory. A
/// panic is caught and reported, as `cerebro scan` does.
pub fn read_package(entry: &Entry, options: &ScanOptions) -> Result<Package, String> {
    let limit = options.limits.max_total_bytes;
    let meta = std::fs::metadata(&entry.location)
        .map_err(|e| format!("cannot read {}: {e}", entry.file))?;
    if meta.len() > limit {
        return Err(format!(
            "{} is {} bytes, over the archive size limit of {limit}",
            entry.file,
            meta.len()
        ));
    }
    let bytes =
        std::fs::read(&entry.location).map_err(|e| format!("cannot read {}: {e}", entry.file))?;
    let got = sha256_hex(&bytes);
    if got != entry.sha256 {
        return Err(format!(
            "{}: sha256 is {got}, the manifest says {}",
            entry.file, entry.sha256
        ));
    }
    // The file name (not the cache's hash name) guides the reader's format and identity
    // guesses, as it would for `cerebro scan` on the downloaded file.
    let name = Path::new(&entry.file);
    catch(&entry.file, || {
        archive::read_bytes(name, &bytes, &options.limits)
    })?
    .map_err(|e| e.to_string())
}

/// Runs `work`, turning a panic into an error naming `file`, so that one package cannot stop
/// a run over thousands.
pub fn catch<T>(file: &str, work: impl FnOnce() -> T) -> Result<T, String> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(work)).map_err(|panic| {
        let message = panic
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown panic".to_owned());
        format!("internal error while scanning {file}: {message}")
    })
}

/// Counts of a sequences run.
#[derive(Debug, Default, Clone)]
pub struct SequencesReport {
    pub lines: usize,
    pub malicious: usize,
    pub benign: usize,
    /// Packages that could not be scanned (they still have a line, with `error`).
    pub errors: usize,
    /// Scanned packages with no behaviour at all, by label.
    pub empty_malicious: usize,
    pub empty_benign: usize,
}

/// Scans `entries` on `jobs` threads and writes one JSON line each to `out`, in entry order,
/// atomically (the file appears complete when done). `progress` sees each record as it is
/// written, with the count written so far.
pub fn write_sequences(
    entries: &[Entry],
    out: &Path,
    jobs: usize,
    options: &ScanOptions,
    mut progress: impl FnMut(&Record, usize),
) -> Result<SequencesReport, String> {
    let mut report = SequencesReport::default();
    let mut buffer = Vec::new();
    let mut failure = None;
    scan::for_each_ordered(
        entries.len(),
        jobs,
        |i| {
            let record = scan_entry(&entries[i], options);
            let line = serde_json::to_string(&record);
            (record, line)
        },
        |_, (record, line)| {
            match line {
                Ok(line) => {
                    let _ = writeln!(buffer, "{line}");
                }
                Err(e) => {
                    failure.get_or_insert(format!("cannot encode {}: {e}", record.file));
                }
            }
            report.lines += 1;
            match record.label {
                Label::Malicious => report.malicious += 1,
                Label::Benign => report.benign += 1,
            }
            if record.error.is_some() {
                report.errors += 1;
            } else if record
                .feature_counts
                .as_ref()
                .is_some_and(BTreeMap::is_empty)
            {
                match record.label {
                    Label::Malicious => report.empty_malicious += 1,
                    Label::Benign => report.empty_benign += 1,
                }
            }
            progress(&record, report.lines);
        },
    );
    if let Some(failure) = failure {
        return Err(failure);
    }
    write_atomic(out, &buffer).map_err(|e| format!("cannot write {}: {e}", out.display()))?;
    Ok(report)
}
