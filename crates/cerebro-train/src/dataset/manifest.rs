//! The CSV files: ranked name lists in, manifests and skip lists out.
//!
//! A manifest (`data/benign-pypi.csv`) pins one artifact per package:
//! `ecosystem,rank,name,version,file,url,sha256,size`, sorted by rank. Its skip list
//! (`data/benign-pypi-skipped.csv`) says why the other ranks are missing:
//! `ecosystem,rank,name,version,reason,detail`.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::cache::write_atomic;
use super::{is_sha256_hex, Ecosystem};

/// One package of a ranked list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ranked {
    pub rank: u32,
    pub name: String,
}

/// One pinned artifact.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestRow {
    pub ecosystem: String,
    pub rank: u32,
    pub name: String,
    pub version: String,
    /// The artifact's file name (its format shows in the extension).
    pub file: String,
    pub url: String,
    pub sha256: String,
    pub size: u64,
}

/// One package left out of a manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SkippedRow {
    pub ecosystem: String,
    pub rank: u32,
    pub name: String,
    /// Empty where no version was found.
    pub version: String,
    /// A short code (`platform-only`, `too-large`, …; see `SkipReason`).
    pub reason: String,
    pub detail: String,
}

/// Reads a ranked list: `rank,project,…` (top-pypi.csv) or `rank,package` (top-npm.csv);
/// the name is the column called `project`, `package` or `name`, else the second one.
/// Returned in rank order.
pub fn read_ranked(path: &Path) -> Result<Vec<Ranked>, String> {
    let mut reader =
        csv::Reader::from_path(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let headers = reader
        .headers()
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?
        .clone();
    let col = |names: &[&str]| headers.iter().position(|h| names.contains(&h.trim()));
    let rank_col = col(&["rank"]).unwrap_or(0);
    let name_col = col(&["project", "package", "name"]).unwrap_or(1);
    let mut out = Vec::new();
    for (i, record) in reader.records().enumerate() {
        let line = i + 2;
        let record = record.map_err(|e| format!("{}:{line}: {e}", path.display()))?;
        let rank = record
            .get(rank_col)
            .and_then(|r| r.trim().parse::<u32>().ok())
            .ok_or_else(|| format!("{}:{line}: no rank", path.display()))?;
        let name = record
            .get(name_col)
            .map(str::trim)
            .filter(|n| !n.is_empty())
            .ok_or_else(|| format!("{}:{line}: no name", path.display()))?;
        out.push(Ranked {
            rank,
            name: name.to_owned(),
        });
    }
    out.sort_by_key(|r| r.rank);
    Ok(out)
}

/// `limit` items spread evenly over `items` (the first, then every `len/limit`-th), so that
/// a sample covers all ranks rather than only the most popular; everything when `limit` is
/// `None` or not smaller than the list.
pub fn spread<T: Clone>(items: &[T], limit: Option<usize>) -> Vec<T> {
    match limit {
        Some(n) if n < items.len() => (0..n)
            .map(|i| items[(i as u128 * items.len() as u128 / n as u128) as usize].clone())
            .collect(),
        _ => items.to_vec(),
    }
}

/// Reads a manifest, checking each row enough that later stages can trust it.
pub fn read_manifest(path: &Path) -> Result<Vec<ManifestRow>, String> {
    let mut reader =
        csv::Reader::from_path(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let mut rows = Vec::new();
    for (i, row) in reader.deserialize::<ManifestRow>().enumerate() {
        let line = i + 2;
        let row = row.map_err(|e| format!("{}:{line}: {e}", path.display()))?;
        if Ecosystem::parse(&row.ecosystem).is_none() {
            return Err(format!(
                "{}:{line}: ecosystem {:?} is neither pypi nor npm",
                path.display(),
                row.ecosystem
            ));
        }
        if !is_sha256_hex(&row.sha256) {
            return Err(format!(
                "{}:{line}: sha256 {:?} is not 64 lowercase hex digits",
                path.display(),
                row.sha256
            ));
        }
        rows.push(row);
    }
    Ok(rows)
}

/// Writes rows as CSV with a header, atomically.
pub fn write_csv<T: Serialize>(path: &Path, rows: &[T], header: &[&str]) -> Result<(), String> {
    let mut writer = csv::Writer::from_writer(Vec::new());
    if rows.is_empty() {
        // Serialising no rows writes no header; write it so the file still documents itself.
        writer.write_record(header).map_err(|e| e.to_string())?;
    }
    for row in rows {
        writer.serialize(row).map_err(|e| e.to_string())?;
    }
    let bytes = writer.into_inner().map_err(|e| e.to_string())?;
    write_atomic(path, &bytes).map_err(|e| format!("cannot write {}: {e}", path.display()))
}

/// Column names of a manifest.
pub const MANIFEST_HEADER: &[&str] = &[
    "ecosystem",
    "rank",
    "name",
    "version",
    "file",
    "url",
    "sha256",
    "size",
];
/// Column names of a skip list.
pub const SKIPPED_HEADER: &[&str] = &["ecosystem", "rank", "name", "version", "reason", "detail"];

/// The skip list beside a manifest: `x.csv` → `x-skipped.csv`.
pub fn skipped_path(manifest: &Path) -> PathBuf {
    let stem = manifest
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "manifest".to_owned());
    manifest.with_file_name(format!("{stem}-skipped.csv"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spread_covers_all_ranks() {
        let items: Vec<u32> = (1..=100).collect();
        assert_eq!(spread(&items, Some(4)), vec![1, 26, 51, 76]);
        assert_eq!(spread(&items, Some(1000)).len(), 100);
        assert_eq!(spread(&items, None).len(), 100);
        assert!(spread(&items, Some(0)).is_empty());
    }

    #[test]
    fn skipped_beside_manifest() {
        assert_eq!(
            skipped_path(Path::new("data/benign-pypi.csv")),
            Path::new("data/benign-pypi-skipped.csv")
        );
    }
}
