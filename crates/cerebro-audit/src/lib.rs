//! Audit: what a project pins, judged without installing or running anything.
//!
//! A guard protects one install on one machine; an audit answers the same question for a
//! lockfile in CI or in review. The stages, one module each:
//!
//! 1. [`discover`]: the paths given → the lockfiles and requirement files to read;
//! 2. [`lockfile`]: each file → its [`Pin`]s (name, version, where it is written, and where
//!    its bytes come from), read as data only: no package manager runs;
//! 3. [`resolve`]: pins → the artifacts to judge, by the URL and hash the file recorded, or
//!    from the configured registry (the same configuration the guard reads) by name and
//!    version; every artifact is fetched by `cerebro-fetch`, verified, and cached;
//! 4. [`judge`]: each artifact → the scan chain of `cerebro-scan` (the same as `cerebro scan`
//!    and the guard), with verdicts cached by artifact hash;
//! 5. [`sarif`]: the results as a SARIF 2.1.0 log (the command line renders the rest).
//!
//! [`changed`] narrows the pins to what a lockfile added since a git revision.
//!
//! Nothing here prints; progress goes through [`Progress`].

pub mod changed;
pub mod discover;
pub mod judge;
pub mod lockfile;
pub mod names;
pub mod resolve;
pub mod run;
pub mod sarif;

use std::path::{Path, PathBuf};

use serde::Serialize;

use cerebro_archive::Ecosystem;
use cerebro_scan::detect::Verdict;

pub use discover::{discover, Format, Lockfile};
pub use judge::Judge;
pub use resolve::{Registries, Resolver};
pub use run::audit;

/// Largest lockfile read, in bytes: the biggest real `package-lock.json` files are tens of
/// megabytes; anything larger is refused rather than parsed.
pub const MAX_LOCKFILE_BYTES: u64 = 256 << 20;

/// Where a pin is written: the file and its line (1-based; 0 when unknown).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Source {
    pub file: PathBuf,
    pub line: usize,
}

/// Where the bytes of a pinned package come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// An npm registry package: the tarball URL and Subresource Integrity the lockfile
    /// recorded, each possibly missing (npm's `omit-lockfile-registry-resolved` leaves the
    /// URL out); what is missing comes from the package's packument.
    Npm {
        resolved: Option<String>,
        integrity: Option<String>,
    },
    /// A PyPI project pinned to one version: every file of that version on the indexes (or
    /// only those whose hash is listed, `algo:hex`), from `indexes` when the file says which
    /// (a requirement file's own `-i`, with pip's configuration), else from the configured
    /// ones.
    Pypi {
        hashes: Vec<String>,
        indexes: Option<Vec<String>>,
    },
    /// Files named by URL with their hash (`uv.lock`, a pip `name @ URL`).
    Files(Vec<PinnedFile>),
    /// A folder or archive on disk (a workspace package, `-e ./lib`, `file:` dependency):
    /// scanned where it is.
    Local(PathBuf),
    /// An installed Python distribution: the files its `RECORD` lists, under the
    /// `site-packages` folder `root` (shared with every other distribution there).
    Installed { root: PathBuf, files: Vec<String> },
    /// Cannot be judged from the file (a range instead of a pin, a git dependency): why.
    Unjudgeable(String),
}

/// One file named by URL, and the hash it must have (`sha256:<hex>`, `sha512-<base64>`, or
/// `None` when the file records none).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PinnedFile {
    pub url: String,
    pub hash: Option<String>,
}

/// One package a file pins.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pin {
    pub ecosystem: Ecosystem,
    pub name: String,
    pub version: String,
    pub source: Source,
    pub origin: Origin,
}

/// What became of one artifact of a pin.
#[derive(Debug, Clone, Serialize)]
pub struct FileReport {
    /// The file name (`x-1.0.tgz`), or the folder for a local package.
    pub file: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    #[serde(flatten)]
    pub outcome: Outcome,
}

/// The judgement of one artifact.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
#[serde(tag = "status", rename_all = "lowercase")]
pub enum Outcome {
    /// Scored by the model.
    Judged {
        score: f32,
        verdict: Verdict,
        /// What drove the score (flagged packages only), strongest first.
        reasons: Vec<Finding>,
    },
    /// Not judged: could not be fetched, verified, read or scored. Never benign.
    Unjudged { error: String },
}

/// One behaviour behind a verdict, where it happens inside the package.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct Finding {
    /// The feature's id (`R3`) and name (`reads credentials or secrets`).
    pub feature: String,
    pub description: String,
    /// The file inside the package, and the line (0 when the event has none).
    pub file: Option<String>,
    pub line: u32,
}

/// A package's status: the worst of its files'.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Benign,
    Suspicious,
    /// Not judged (some file could not be fetched, verified or read).
    Unjudged,
    Malicious,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Benign => "benign",
            Status::Suspicious => "suspicious",
            Status::Unjudged => "unjudged",
            Status::Malicious => "malicious",
        }
    }
}

/// The audit of one pinned package.
#[derive(Debug, Clone, Serialize)]
pub struct PackageReport {
    pub ecosystem: Ecosystem,
    pub name: String,
    pub version: String,
    /// The lockfile and the line that pins it.
    pub source: Source,
    pub status: Status,
    /// The highest score among its files.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub score: Option<f32>,
    pub files: Vec<FileReport>,
    /// The user's allowlist (`cerebro allow`) trusts this package or version: reported with
    /// its status, never counted toward the exit code or the SARIF log.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub allowlisted: bool,
}

impl PackageReport {
    /// A report for `pin` with these files, its status the worst of theirs (a package with no
    /// file is unjudged).
    pub fn new(pin: &Pin, files: Vec<FileReport>) -> PackageReport {
        let status = if files.is_empty() {
            Status::Unjudged
        } else {
            files
                .iter()
                .map(|f| match &f.outcome {
                    Outcome::Judged { verdict, .. } => match verdict {
                        Verdict::Benign => Status::Benign,
                        Verdict::Suspicious => Status::Suspicious,
                        Verdict::Malicious => Status::Malicious,
                    },
                    Outcome::Unjudged { .. } => Status::Unjudged,
                })
                .max()
                .unwrap_or(Status::Unjudged)
        };
        let score = files
            .iter()
            .filter_map(|f| match f.outcome {
                Outcome::Judged { score, .. } => Some(score),
                Outcome::Unjudged { .. } => None,
            })
            .reduce(f32::max);
        PackageReport {
            ecosystem: pin.ecosystem,
            name: pin.name.clone(),
            version: pin.version.clone(),
            source: pin.source.clone(),
            status,
            score,
            files,
            allowlisted: false,
        }
    }

    /// Whether the report counts toward the outcome as `status`: not when allowlisted.
    pub fn counts_as(&self, status: Status) -> bool {
        self.status == status && !self.allowlisted
    }

    /// A report for a pin that could not be judged at all.
    pub fn unjudged(pin: &Pin, file: &str, error: String) -> PackageReport {
        PackageReport::new(
            pin,
            vec![FileReport {
                file: file.to_owned(),
                url: None,
                sha256: None,
                outcome: Outcome::Unjudged { error },
            }],
        )
    }

    /// The file whose judgement sets the status (for one-line summaries).
    pub fn worst_file(&self) -> Option<&FileReport> {
        self.files.iter().max_by(|a, b| {
            let rank = |f: &FileReport| match &f.outcome {
                Outcome::Judged { verdict, score, .. } => (*verdict as u8 * 2, *score),
                Outcome::Unjudged { .. } => (3, 0.0),
            };
            let (ra, sa) = rank(a);
            let (rb, sb) = rank(b);
            ra.cmp(&rb).then(sa.total_cmp(&sb))
        })
    }
}

/// Why a lockfile could not be read at all. One line naming the file.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{}: {message}", file.display())]
pub struct LockfileError {
    pub file: PathBuf,
    /// 1-based, when the fault has a place.
    pub line: Option<usize>,
    pub message: String,
}

impl LockfileError {
    pub fn new(file: &Path, message: impl Into<String>) -> LockfileError {
        LockfileError {
            file: file.to_owned(),
            line: None,
            message: message.into(),
        }
    }
}

/// Hooks for showing progress; implemented by the command line.
pub trait Progress: Send + Sync {
    /// A stage begins (`Fetching`, `Judging`) over `total` items.
    fn phase(&self, _what: &str, _total: usize) {}
    /// One item of the stage is done.
    fn advance(&self) {}
}

/// A progress that shows nothing.
pub struct Silent;

impl Progress for Silent {}

/// Reads `path` whole, refusing a file over [`MAX_LOCKFILE_BYTES`] or not UTF-8.
pub(crate) fn read_text(path: &Path) -> Result<String, LockfileError> {
    let meta = std::fs::metadata(path)
        .map_err(|e| LockfileError::new(path, format!("cannot read: {e}")))?;
    if meta.len() > MAX_LOCKFILE_BYTES {
        return Err(LockfileError::new(
            path,
            format!(
                "{} bytes is over the {} byte limit for a lockfile; not read",
                meta.len(),
                MAX_LOCKFILE_BYTES
            ),
        ));
    }
    let bytes =
        std::fs::read(path).map_err(|e| LockfileError::new(path, format!("cannot read: {e}")))?;
    String::from_utf8(bytes).map_err(|_| LockfileError::new(path, "is not UTF-8; not read"))
}

/// The 1-based number of the line holding byte `offset` of `text`.
pub(crate) fn line_of(text: &str, offset: usize) -> usize {
    text.as_bytes()[..offset.min(text.len())]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}
