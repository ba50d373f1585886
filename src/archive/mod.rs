//! Archive stage: reads a package (sdist, wheel, npm tarball or plain directory) in memory,
//! within bounds, so that hostile archives cannot exhaust the machine or write to disk.
//!
//! Nothing is ever extracted. Links, absolute paths and `..` traversal are not followed but
//! recorded as [`Anomaly`]s, since a package that ships them is itself suspicious.

mod dir;
mod metadata;
mod tarball;
mod zipfile;

use std::fmt;
use std::path::{Path, PathBuf};

use serde::Serialize;

/// The package ecosystem a package belongs to: one model serves both.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Ecosystem {
    Pypi,
    Npm,
}

impl fmt::Display for Ecosystem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Ecosystem::Pypi => "pypi",
            Ecosystem::Npm => "npm",
        })
    }
}

/// The container format the package came in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ArchiveKind {
    /// `.tar.gz`, `.tgz`, `.tar.bz2` (PyPI sdist or npm tarball).
    Tar,
    /// `.zip` sdist or `.whl` wheel.
    Zip,
    /// A plain folder on disk (a local project).
    Directory,
}

/// One file kept from the archive: source code and the metadata files the later stages read.
#[derive(Debug, Clone)]
pub struct SourceFile {
    /// Path inside the package, `/`-separated, with the archive's single top folder
    /// (`pkg-1.0/`, `package/`) removed.
    pub path: String,
    /// Raw bytes; decoders read them lossily, since hostile files need not be UTF-8.
    pub bytes: Vec<u8>,
}

impl SourceFile {
    /// The file's text, with invalid UTF-8 replaced rather than rejected.
    pub fn text(&self) -> std::borrow::Cow<'_, str> {
        String::from_utf8_lossy(&self.bytes)
    }
}

/// What was odd about an archive entry. These are reported, never followed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum AnomalyKind {
    /// A symbolic link entry.
    Symlink,
    /// A hard link entry.
    Hardlink,
    /// An entry whose path is absolute (`/etc/x`, `C:\x`).
    AbsolutePath,
    /// An entry whose path climbs out of the package with `..`.
    PathTraversal,
    /// A source file larger than [`Limits::max_file_bytes`], skipped unread.
    OversizedFile,
    /// A device, fifo or other special entry.
    SpecialFile,
}

/// An archive entry that was not read as a normal file, and why.
#[derive(Debug, Clone, Serialize)]
pub struct Anomaly {
    pub kind: AnomalyKind,
    /// The entry's path as written in the archive.
    pub path: String,
}

/// Bounds that keep a hostile archive from exhausting memory or time.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Total bytes decompressed from the archive, kept or not (a zip bomb stops here).
    pub max_total_bytes: u64,
    /// Number of entries in the archive.
    pub max_files: usize,
    /// Largest single file that is kept for analysis; larger ones are skipped and reported.
    pub max_file_bytes: u64,
    /// Largest ratio of decompressed to compressed size, checked once past
    /// [`Limits::ratio_floor_bytes`] so that small, very compressible files pass.
    pub max_ratio: u64,
    /// Decompressed size below which the ratio is not checked.
    pub ratio_floor_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_total_bytes: 512 << 20,
            max_files: 50_000,
            max_file_bytes: 8 << 20,
            max_ratio: 200,
            ratio_floor_bytes: 16 << 20,
        }
    }
}

/// A package read into memory: identity, the files worth analysing, and what was odd.
#[derive(Debug, Clone)]
pub struct Package {
    /// Where the package was read from.
    pub origin: PathBuf,
    pub ecosystem: Ecosystem,
    pub name: String,
    pub version: String,
    pub kind: ArchiveKind,
    /// Source and metadata files, sorted by path.
    pub files: Vec<SourceFile>,
    pub anomalies: Vec<Anomaly>,
}

impl Package {
    /// The kept file at `path` (package-relative), if any.
    pub fn file(&self, path: &str) -> Option<&SourceFile> {
        self.files
            .binary_search_by(|f| f.path.as_str().cmp(path))
            .ok()
            .map(|i| &self.files[i])
    }
}

/// Why a package could not be read. Each names the archive and says what to do.
#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    #[error("cannot read {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} is not a package archive (expected .tar.gz, .tgz, .tar.bz2, .zip, .whl or a folder)")]
    NotAnArchive { path: PathBuf },
    #[error("{path} is corrupt or truncated: {reason}")]
    Corrupt { path: PathBuf, reason: String },
    #[error("{path} exceeds the {limit} limit ({detail}); it may be a decompression bomb")]
    LimitExceeded {
        path: PathBuf,
        limit: &'static str,
        detail: String,
    },
    #[error("{path} holds no files")]
    Empty { path: PathBuf },
}

/// Reads the package at `path`: an archive file or a folder.
pub fn open(path: &Path, limits: &Limits) -> Result<Package, ArchiveError> {
    todo!("archive::open {path:?} {limits:?}")
}

/// Reads a package archive already in memory; `name` is its file name, used to pick the
/// format and as a fallback for the package's identity.
pub fn read_bytes(name: &Path, bytes: &[u8], limits: &Limits) -> Result<Package, ArchiveError> {
    todo!("archive::read_bytes {name:?} {} {limits:?}", bytes.len())
}

/// Whether a file is worth keeping for the later stages: source code the extractors read,
/// and the metadata files that name the package.
pub fn is_kept(path: &str) -> bool {
    let file = path.rsplit('/').next().unwrap_or(path);
    let ext = file.rsplit_once('.').map(|(_, e)| e.to_ascii_lowercase());
    matches!(
        ext.as_deref(),
        Some("py" | "pyw" | "pth" | "js" | "mjs" | "cjs")
    ) || matches!(file, "package.json" | "PKG-INFO" | "METADATA" | "setup.cfg")
}
