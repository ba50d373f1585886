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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Ecosystem {
    Pypi,
    Npm,
}

impl Ecosystem {
    pub const ALL: [Ecosystem; 2] = [Ecosystem::Pypi, Ecosystem::Npm];

    pub fn as_str(self) -> &'static str {
        match self {
            Ecosystem::Pypi => "pypi",
            Ecosystem::Npm => "npm",
        }
    }

    /// Parses [`Ecosystem::as_str`]'s `pypi` or `npm` (as written in the dataset's manifests).
    pub fn parse(s: &str) -> Option<Ecosystem> {
        Ecosystem::ALL.into_iter().find(|e| e.as_str() == s)
    }
}

impl fmt::Display for Ecosystem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One value for each ecosystem: what differs between them although one model serves both
/// (the model's decision thresholds, chosen per ecosystem on validation data).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct PerEcosystem<T> {
    pub pypi: T,
    pub npm: T,
}

impl<T: Copy> PerEcosystem<T> {
    /// The same value for both.
    pub fn both(value: T) -> PerEcosystem<T> {
        PerEcosystem {
            pypi: value,
            npm: value,
        }
    }

    pub fn get(&self, ecosystem: Ecosystem) -> T {
        match ecosystem {
            Ecosystem::Pypi => self.pypi,
            Ecosystem::Npm => self.npm,
        }
    }

    pub fn map<U>(self, f: impl Fn(T) -> U) -> PerEcosystem<U> {
        PerEcosystem {
            pypi: f(self.pypi),
            npm: f(self.npm),
        }
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
            max_file_bytes: 16 << 20,
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
    /// A construct that pip or npm reads differently from this reader (a PAX global
    /// header that renames members, a tar that is also a zip …): refused, never judged.
    #[error(
        "{path} cannot be judged: {reason}, which the installers read differently from Cerebro"
    )]
    Ambiguous { path: PathBuf, reason: String },
}

/// Reads the files `listed` under `root` as one package: an installed Python distribution,
/// whose files (its `RECORD`) share one `site-packages` with every other distribution. Paths
/// leaving `root` are skipped, links reported and not followed, the same limits applied.
pub fn open_listed(
    root: &Path,
    listed: &[String],
    limits: &Limits,
) -> Result<Package, ArchiveError> {
    let gathered = dir::read_listed(root, listed, limits).map_err(|fail| fail.at(root))?;
    let name = dir::display_name(root);
    let identity = metadata::identify(
        &gathered.files,
        gathered.python_marker,
        Hint::Directory,
        &name,
    );
    Ok(gathered.into_package(root, ArchiveKind::Directory, identity))
}

/// Reads the package at `path`: an archive file or a folder.
///
/// A folder is walked in place (see the `dir` module for what is skipped); a file is read
/// whole into memory and handed to [`read_bytes`], so both paths share one parser. A file
/// larger than [`Limits::max_total_bytes`] is refused before it is read, since it could not
/// unpack within that limit anyway.
pub fn open(path: &Path, limits: &Limits) -> Result<Package, ArchiveError> {
    let io_error = |source| ArchiveError::Io {
        path: path.to_path_buf(),
        source,
    };
    let meta = std::fs::metadata(path).map_err(io_error)?;
    if meta.is_dir() {
        let gathered = dir::read(path, limits).map_err(|fail| fail.at(path))?;
        let name = dir::display_name(path);
        let identity = metadata::identify(
            &gathered.files,
            gathered.python_marker,
            Hint::Directory,
            &name,
        );
        return Ok(gathered.into_package(path, ArchiveKind::Directory, identity));
    }
    if !meta.is_file() {
        // A fifo or device would block or never end: it cannot be a package.
        return Err(ArchiveError::NotAnArchive {
            path: path.to_path_buf(),
        });
    }
    if meta.len() > limits.max_total_bytes {
        return Err(Fail::Limit {
            limit: "archive size",
            detail: format!(
                "the file is {}, more than {}",
                human_size(meta.len()),
                human_size(limits.max_total_bytes)
            ),
        }
        .at(path));
    }
    let bytes = std::fs::read(path).map_err(io_error)?;
    read_bytes(path, &bytes, limits)
}

/// Reads a package archive already in memory; `name` is its file name, used to pick the
/// format and as a fallback for the package's identity.
///
/// The format is chosen from the content's magic bytes when they are conclusive (gzip, bzip2,
/// zip, ustar), as pip's own `tarfile` does, and otherwise from the extension, so that a
/// misnamed archive is still read and a corrupt one is reported as corrupt.
pub fn read_bytes(name: &Path, bytes: &[u8], limits: &Limits) -> Result<Package, ArchiveError> {
    if bytes.is_empty() {
        return Err(ArchiveError::Empty {
            path: name.to_path_buf(),
        });
    }
    let file_name = name
        .file_name()
        .map(|n| n.to_string_lossy())
        .unwrap_or_else(|| name.to_string_lossy());
    let lower = file_name.to_ascii_lowercase();
    let sniffed = sniff(bytes);
    let named = format_from_extension(&lower);
    let format = sniffed
        .or(named)
        .ok_or_else(|| ArchiveError::NotAnArchive {
            path: name.to_path_buf(),
        })?;
    if let Some(reason) = polyglot(bytes, sniffed, named) {
        return Err(Fail::Ambiguous(reason).at(name));
    }
    let (gathered, kind) = match format {
        Format::Tar(compression) => (tarball::read(bytes, compression, limits), ArchiveKind::Tar),
        Format::Zip => (zipfile::read(bytes, limits), ArchiveKind::Zip),
        Format::Unsupported(what) => {
            let reason = format!(
                "it is {what}-compressed, which is not supported (only gzip, bzip2 and zip are)"
            );
            return Err(Fail::Corrupt(reason).at(name));
        }
    };
    let gathered = gathered.map_err(|fail| fail.at(name))?;
    let hint = if lower.ends_with(".whl") {
        Hint::Wheel
    } else if lower.ends_with(".tgz") {
        Hint::Npm
    } else {
        Hint::Sdist
    };
    let identity = metadata::identify(&gathered.files, gathered.python_marker, hint, &file_name);
    Ok(gathered.into_package(name, kind, identity))
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

// ---------------------------------------------------------------------------------------------
// Private machinery shared by the tar, zip and folder readers.
// ---------------------------------------------------------------------------------------------

use std::borrow::Cow;
use std::cell::Cell;

use metadata::{Hint, Identity};

/// The container format, decided by [`sniff`] or [`format_from_extension`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Tar(tarball::Compression),
    Zip,
    /// A compression recognised but not read (named for the message).
    Unsupported(&'static str),
}

/// The format the content's magic bytes announce, when they announce one.
fn sniff(bytes: &[u8]) -> Option<Format> {
    use tarball::Compression;
    if bytes.starts_with(&[0x1f, 0x8b]) {
        Some(Format::Tar(Compression::Gzip))
    } else if bytes.starts_with(b"BZh") {
        Some(Format::Tar(Compression::Bzip2))
    } else if bytes.starts_with(b"PK\x03\x04") || bytes.starts_with(b"PK\x05\x06") {
        Some(Format::Zip)
    } else if bytes.get(257..262) == Some(b"ustar") {
        Some(Format::Tar(Compression::None))
    } else if bytes.starts_with(b"\xFD7zXZ\x00") {
        Some(Format::Unsupported("xz"))
    } else if bytes.starts_with(b"\x28\xB5\x2F\xFD") {
        Some(Format::Unsupported("zstd"))
    } else {
        None
    }
}

/// Why an archive is read differently by the installers, when it is: a tar that is also a
/// zip (pip unpacks whatever `zipfile.is_zipfile` accepts as a zip, whatever its name), or a
/// file whose name promises zip and whose content is a tar (or the other way round).
fn polyglot(bytes: &[u8], sniffed: Option<Format>, named: Option<Format>) -> Option<String> {
    let is_tar = |f: Option<Format>| matches!(f, Some(Format::Tar(_)));
    if is_tar(sniffed) && has_zip_end_record(bytes) {
        return Some("it is a tar archive that is also a zip (pip would unpack the zip)".into());
    }
    match (sniffed, named) {
        (Some(Format::Zip), Some(Format::Tar(_))) | (Some(Format::Tar(_)), Some(Format::Zip)) => {
            Some("its content is not the archive format its name says".into())
        }
        _ => None,
    }
}

/// Whether CPython's `zipfile` (pip's `unpack_file` tries `is_zipfile` before the name)
/// would open `bytes` as a zip with something in it: the end-of-central-directory record
/// found as `_EndRecData` finds it (the last 22 bytes, else the *last* signature in the
/// final 64 KiB + 22 with a whole record after it), and where that record puts the central
/// directory, its signature, as `_RealGetContents` requires. The second check keeps the
/// chance that compressed bytes match by accident (four bytes in 64 KiB: about 1 in 65,000
/// archives) from refusing an ordinary tarball; a zip64 record is taken as a zip.
fn has_zip_end_record(bytes: &[u8]) -> bool {
    const END: &[u8] = b"PK\x05\x06";
    const CENTRAL: &[u8] = b"PK\x01\x02";
    const RECORD: usize = 22;
    if bytes.len() < RECORD {
        return false;
    }
    let last = bytes.len() - RECORD;
    let at = if bytes[last..].starts_with(END) && bytes.ends_with(b"\0\0") {
        last
    } else {
        let from = bytes.len().saturating_sub((1 << 16) + RECORD);
        match bytes[from..].windows(END.len()).rposition(|w| w == END) {
            Some(i) if bytes.len() - (from + i) >= RECORD => from + i,
            _ => return false,
        }
    };
    let record = &bytes[at..at + RECORD];
    let u16_at = |i: usize| u16::from_le_bytes([record[i], record[i + 1]]);
    let u32_at =
        |i: usize| u32::from_le_bytes([record[i], record[i + 1], record[i + 2], record[i + 3]]);
    let (entries, size) = (u16_at(10), u32_at(12));
    if entries == u16::MAX || size == u32::MAX || u32_at(16) == u32::MAX {
        return true;
    }
    if entries == 0 {
        // An empty zip: pip would unpack nothing, and nothing would be built or run.
        return false;
    }
    (at as u64)
        .checked_sub(u64::from(size))
        .and_then(|start| bytes.get(start as usize..start as usize + CENTRAL.len()))
        .is_some_and(|sig| sig == CENTRAL)
}

/// The format a (lowercased) file name promises.
fn format_from_extension(lower: &str) -> Option<Format> {
    use tarball::Compression;
    const GZIP: &[&str] = &[".tar.gz", ".tgz", ".taz"];
    const BZIP2: &[&str] = &[".tar.bz2", ".tbz2", ".tbz", ".tb2"];
    const ZIP: &[&str] = &[".zip", ".whl", ".egg"];
    let ends = |exts: &[&str]| exts.iter().any(|e| lower.ends_with(e));
    if ends(GZIP) {
        Some(Format::Tar(Compression::Gzip))
    } else if ends(BZIP2) {
        Some(Format::Tar(Compression::Bzip2))
    } else if ends(ZIP) {
        Some(Format::Zip)
    } else if lower.ends_with(".tar") {
        Some(Format::Tar(Compression::None))
    } else {
        None
    }
}

/// Why reading stopped, before the archive's name is attached by [`Fail::at`].
#[derive(Debug)]
enum Fail {
    Corrupt(String),
    /// See [`ArchiveError::Ambiguous`].
    Ambiguous(String),
    Limit {
        limit: &'static str,
        detail: String,
    },
    Empty,
    Io(std::io::Error),
}

impl Fail {
    /// The public error for the archive or folder at `path`.
    fn at(self, path: &Path) -> ArchiveError {
        let path = path.to_path_buf();
        match self {
            Fail::Corrupt(reason) => ArchiveError::Corrupt {
                path,
                reason: printable(&reason),
            },
            Fail::Limit { limit, detail } => ArchiveError::LimitExceeded {
                path,
                limit,
                detail,
            },
            Fail::Empty => ArchiveError::Empty { path },
            Fail::Ambiguous(reason) => ArchiveError::Ambiguous {
                path,
                reason: printable(&reason),
            },
            Fail::Io(source) => ArchiveError::Io { path, source },
        }
    }

    /// The entry-count limit, hit.
    fn too_many_entries(limits: &Limits) -> Fail {
        Fail::Limit {
            limit: "entry count",
            detail: format!("more than {} entries", limits.max_files),
        }
    }
}

/// One readable line for an error and its causes (`tar` and `zip` nest theirs).
fn describe(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    if let Some(io) = error.downcast_ref::<std::io::Error>() {
        if io.kind() == std::io::ErrorKind::UnexpectedEof && io.get_ref().is_none() {
            text = "unexpected end of data, the file is truncated".to_owned();
        }
    }
    let mut cause = error.source();
    while let Some(inner) = cause {
        let line = inner.to_string();
        if !line.is_empty() && !text.contains(&line) {
            text.push_str(": ");
            text.push_str(&line);
        }
        cause = inner.source();
    }
    text
}

/// Whether `c` can change how a terminal shows the text around it: control characters
/// (escape sequences, carriage returns) and Unicode's bidirectional and invisible format
/// characters (after U+202E, `evil` reads `live`). Names, versions and paths come from
/// packages, so every line that shows one passes it through [`terminal_safe`].
pub fn is_unsafe_on_terminal(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2060}'..='\u{2069}' | '\u{061C}' | '\u{FEFF}')
}

/// `text` with every character [`is_unsafe_on_terminal`] shown escaped (`\u{202e}`).
pub fn terminal_safe(text: &str) -> std::borrow::Cow<'_, str> {
    if !text.chars().any(is_unsafe_on_terminal) {
        return std::borrow::Cow::Borrowed(text);
    }
    std::borrow::Cow::Owned(
        text.chars()
            .map(|c| {
                if is_unsafe_on_terminal(c) {
                    c.escape_unicode().to_string()
                } else {
                    c.to_string()
                }
            })
            .collect(),
    )
}

/// A reason fit for one line on a terminal: entry names inside it come from the archive,
/// so control and bidirectional characters are replaced and the length bounded.
fn printable(reason: &str) -> String {
    const MAX_CHARS: usize = 300;
    let mut line: String = reason
        .chars()
        .take(MAX_CHARS)
        .map(|c| if is_unsafe_on_terminal(c) { '?' } else { c })
        .collect();
    if reason.chars().nth(MAX_CHARS).is_some() {
        line.push('…');
    }
    line
}

/// A byte count for messages: `512 MiB`, `1.5 KiB`, `12 bytes`.
fn human_size(bytes: u64) -> String {
    const UNITS: [(u64, &str); 3] = [(1 << 30, "GiB"), (1 << 20, "MiB"), (1 << 10, "KiB")];
    for (unit, name) in UNITS {
        if bytes >= unit {
            return if bytes.is_multiple_of(unit) {
                format!("{} {name}", bytes / unit)
            } else {
                format!("{:.1} {name}", bytes as f64 / unit as f64)
            };
        }
    }
    format!("{bytes} bytes")
}

/// The running count of unpacked bytes, checked against the size and ratio limits.
///
/// Interior mutability lets a [`Metered`] reader deep inside `tar` charge it while the
/// caller still holds it to find out why a read failed.
struct Budget<'l> {
    limits: &'l Limits,
    /// Compressed input size, for the ratio; `u64::MAX` where no ratio applies (folders).
    input_len: u64,
    used: Cell<u64>,
    /// The limit a [`Metered`] read hit, kept because `io::Error` cannot carry it back typed.
    hit: Cell<Option<Fail>>,
}

impl<'l> Budget<'l> {
    fn new(limits: &'l Limits, input_len: u64) -> Self {
        Budget {
            limits,
            input_len: input_len.max(1),
            used: Cell::new(0),
            hit: Cell::new(None),
        }
    }

    /// Adds `bytes` unpacked bytes, failing once a limit is passed.
    fn charge(&self, bytes: u64) -> Result<(), Fail> {
        let used = self.used.get().saturating_add(bytes);
        self.used.set(used);
        let limits = self.limits;
        if used > limits.max_total_bytes {
            return Err(Fail::Limit {
                limit: "total unpacked size",
                detail: format!("more than {}", human_size(limits.max_total_bytes)),
            });
        }
        if used > limits.ratio_floor_bytes && used > limits.max_ratio.saturating_mul(self.input_len)
        {
            return Err(Fail::Limit {
                limit: "compression ratio",
                detail: format!(
                    "{} unpacked from {}, more than {}:1",
                    human_size(used),
                    human_size(self.input_len),
                    limits.max_ratio
                ),
            });
        }
        Ok(())
    }

    /// The failure behind an I/O error: a limit a [`Metered`] read hit, or corrupt data.
    fn fail(&self, error: &std::io::Error) -> Fail {
        self.hit
            .take()
            .unwrap_or_else(|| Fail::Corrupt(describe(error)))
    }
}

/// A reader that charges every byte it yields to a [`Budget`], and fails once it is spent,
/// so that a decompression bomb stops after the limit rather than after the bomb.
struct Metered<'b, 'l, R> {
    inner: R,
    budget: &'b Budget<'l>,
}

impl<R: std::io::Read> std::io::Read for Metered<'_, '_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        if let Err(fail) = self.budget.charge(n as u64) {
            self.budget.hit.set(Some(fail));
            return Err(std::io::Error::other("unpack limit reached"));
        }
        Ok(n)
    }
}

/// What an archive entry is, in the terms the readers share.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum EntryType {
    File,
    Dir,
    Symlink,
    Hardlink,
    Special,
}

/// Where an entry's path points.
enum Place<'p> {
    /// Inside the package: the path normalised to `/` separators without `.` or empty parts.
    Inside(Cow<'p, str>),
    Absolute,
    Traversal,
}

/// Classifies a path as written in an archive. Any `..` part counts as traversal, even one
/// that would stay inside: no honest package needs it.
fn place(raw: &str) -> Place<'_> {
    let bytes = raw.as_bytes();
    let drive = bytes.len() >= 2 && bytes[1] == b':' && bytes[0].is_ascii_alphabetic();
    if drive || matches!(bytes.first(), Some(b'/' | b'\\')) {
        return Place::Absolute;
    }
    let mut path = raw;
    while let Some(rest) = path.strip_prefix("./") {
        path = rest;
    }
    let path = path.trim_end_matches('/');
    let mut clean = !path.contains('\\');
    for part in path.split(['/', '\\']) {
        match part {
            ".." => return Place::Traversal,
            "" | "." => clean = false,
            _ => {}
        }
    }
    if clean || path.is_empty() {
        return Place::Inside(Cow::Borrowed(path));
    }
    let mut normal = String::with_capacity(path.len());
    for part in path
        .split(['/', '\\'])
        .filter(|p| !p.is_empty() && *p != ".")
    {
        if !normal.is_empty() {
            normal.push('/');
        }
        normal.push_str(part);
    }
    Place::Inside(Cow::Owned(normal))
}

/// The single top folder every entry sits in, as far as seen so far.
enum Top {
    Unseen,
    Folder(String),
    /// Entries at the root or in different folders: paths are kept as they are.
    Mixed,
}

/// The entries of one archive or folder, gathered as they stream past.
struct Gather<'l> {
    limits: &'l Limits,
    entries: usize,
    regular_files: usize,
    files: Vec<SourceFile>,
    anomalies: Vec<Anomaly>,
    top: Top,
    /// Paths of `pyproject.toml` files: not kept, but they mark a Python project.
    pyprojects: Vec<String>,
    /// Tar links whose name is a kept file, resolved in [`Gather::finish`].
    links: Vec<Link>,
}

/// A tar symbolic link at a kept path: what pip leaves there is read through to the target's
/// final content, so it is read as that file when its target is a kept file of the archive,
/// and stays an anomaly otherwise. (A hard link is unpacked as a copy of its target as it
/// stands at the link, and is read so at once: [`Gather::link`].)
struct Link {
    /// The link's path, normalised like a file's.
    path: String,
    /// The target's path from the archive's root, normalised.
    target: String,
    kind: AnomalyKind,
    raw: String,
}

/// A finished [`Gather`]: files sorted and stripped, ready for [`metadata::identify`].
struct Gathered {
    files: Vec<SourceFile>,
    anomalies: Vec<Anomaly>,
    /// Whether a `pyproject.toml` sits at the package root.
    python_marker: bool,
}

impl<'l> Gather<'l> {
    fn new(limits: &'l Limits) -> Self {
        Gather {
            limits,
            entries: 0,
            regular_files: 0,
            files: Vec::new(),
            anomalies: Vec::new(),
            top: Top::Unseen,
            pyprojects: Vec::new(),
            links: Vec::new(),
        }
    }

    /// Records a tar link entry `raw` pointing at `target` (a hard link's target from the
    /// archive's root, a symbolic link's from the link's folder). A link at a kept path
    /// whose target stays inside the archive waits for [`Gather::finish`]; any other is an
    /// anomaly, as [`Gather::entry`] records it.
    fn link(&mut self, raw: &str, kind: EntryType, target: &str) {
        let anomaly = match kind {
            EntryType::Symlink => AnomalyKind::Symlink,
            _ => AnomalyKind::Hardlink,
        };
        let path = match place(raw) {
            Place::Inside(path) if !path.is_empty() && is_kept(&path) => path.into_owned(),
            _ => {
                let _ = self.entry(raw, kind, 0);
                return;
            }
        };
        self.note_top(&path, false);
        let joined = match (kind, path.rsplit_once('/')) {
            (EntryType::Symlink, Some((folder, _))) => format!("{folder}/{target}"),
            _ => target.to_owned(),
        };
        // `..` inside a symbolic link's target is ordinary (`../x/__init__.py`): folded here.
        let mut parts: Vec<&str> = Vec::new();
        let mut inside = !target.starts_with('/') && !target.contains('\\');
        for part in joined.split('/') {
            match part {
                "" | "." => {}
                ".." => inside &= parts.pop().is_some(),
                part => parts.push(part),
            }
        }
        if !inside || parts.is_empty() {
            let _ = self.anomaly::<()>(anomaly, raw);
            return;
        }
        if kind == EntryType::Hardlink {
            // Unpacked as a copy of its target as it stands at this point of the archive.
            let target = parts.join("/");
            match self.files.iter().rev().find(|f| f.path == target) {
                Some(file) => {
                    let bytes = file.bytes.clone();
                    self.keep(path, bytes);
                }
                None => {
                    let _ = self.anomaly::<()>(anomaly, raw);
                }
            }
            return;
        }
        self.links.push(Link {
            path,
            target: parts.join("/"),
            kind: anomaly,
            raw: raw.to_owned(),
        });
    }

    /// Reads each waiting link as its target's content, when the target is a kept file and
    /// nothing else of the archive has the link's path (a file written over a link, or a
    /// link over a file, is read differently by each unpacker); the rest are anomalies.
    fn resolve_links(&mut self) {
        for link in std::mem::take(&mut self.links) {
            let taken =
                self.files.iter().any(|f| f.path == link.path) || self.links_at(&link.path) > 0;
            let target = self
                .files
                .iter()
                .rev()
                .find(|f| f.path == link.target)
                .map(|f| f.bytes.clone());
            match target {
                Some(bytes) if !taken => self.files.push(SourceFile {
                    path: link.path,
                    bytes,
                }),
                _ => {
                    let _ = self.anomaly::<()>(link.kind, &link.raw);
                }
            }
        }
    }

    /// How many links still waiting have `path` (another link at the same place).
    fn links_at(&self, path: &str) -> usize {
        self.links.iter().filter(|l| l.path == path).count()
    }

    /// Counts one more entry against [`Limits::max_files`].
    fn count(&mut self) -> Result<(), Fail> {
        self.entries += 1;
        if self.entries > self.limits.max_files {
            return Err(Fail::too_many_entries(self.limits));
        }
        Ok(())
    }

    /// Records an entry whose path was `raw` in the archive, and returns its normalised
    /// path when it is a file to read: kept by [`is_kept`] and within
    /// [`Limits::max_file_bytes`]. Links, special entries and escaping paths become
    /// anomalies.
    fn entry<'p>(&mut self, raw: &'p str, kind: EntryType, size: u64) -> Option<Cow<'p, str>> {
        let path = match place(raw) {
            Place::Inside(path) => path,
            Place::Absolute => return self.anomaly(AnomalyKind::AbsolutePath, raw),
            Place::Traversal => return self.anomaly(AnomalyKind::PathTraversal, raw),
        };
        if path.is_empty() {
            return None;
        }
        // Old tars mark folders only by a trailing slash on a regular entry.
        let kind = match kind {
            EntryType::File if raw.ends_with('/') => EntryType::Dir,
            kind => kind,
        };
        self.note_top(&path, kind == EntryType::Dir);
        match kind {
            EntryType::Dir => None,
            EntryType::Symlink => self.anomaly(AnomalyKind::Symlink, raw),
            EntryType::Hardlink => self.anomaly(AnomalyKind::Hardlink, raw),
            EntryType::Special => self.anomaly(AnomalyKind::SpecialFile, raw),
            EntryType::File => {
                self.regular_files += 1;
                if !is_kept(&path) {
                    if path == "pyproject.toml" || path.ends_with("/pyproject.toml") {
                        self.pyprojects.push(path.into_owned());
                    }
                    None
                } else if size > self.limits.max_file_bytes {
                    self.anomaly(AnomalyKind::OversizedFile, raw)
                } else {
                    Some(path)
                }
            }
        }
    }

    /// Records an anomaly at the entry's path as written; always `None`, for [`Gather::entry`].
    fn anomaly<T>(&mut self, kind: AnomalyKind, raw: &str) -> Option<T> {
        self.anomalies.push(Anomaly {
            kind,
            path: raw.to_owned(),
        });
        None
    }

    /// Keeps a file read after [`Gather::entry`] asked for it.
    fn keep(&mut self, path: String, bytes: Vec<u8>) {
        self.files.push(SourceFile { path, bytes });
    }

    fn note_top(&mut self, path: &str, is_dir: bool) {
        if matches!(self.top, Top::Mixed) {
            return;
        }
        let first = match path.split_once('/') {
            Some((first, _)) => first,
            None if is_dir => path,
            None => {
                self.top = Top::Mixed;
                return;
            }
        };
        if first == "__MACOSX" {
            // Resource forks a Mac adds beside the real top folder.
            return;
        }
        match &self.top {
            Top::Unseen => self.top = Top::Folder(first.to_owned()),
            Top::Folder(top) if top == first => {}
            _ => self.top = Top::Mixed,
        }
    }

    /// Strips the single top folder (when `strip` and there is one), sorts the files, and
    /// keeps the last of duplicate paths, as extraction would. An archive with neither a
    /// file nor an anomaly is [`Fail::Empty`].
    fn finish(mut self, strip: bool) -> Result<Gathered, Fail> {
        if self.regular_files == 0 && self.anomalies.is_empty() && self.links.is_empty() {
            return Err(Fail::Empty);
        }
        self.resolve_links();
        if let (true, Top::Folder(top)) = (strip, &self.top) {
            let cut = top.len() + 1;
            let under = |path: &str| {
                path.len() > cut
                    && path.starts_with(top.as_str())
                    && path.as_bytes()[top.len()] == b'/'
            };
            for file in &mut self.files {
                if under(&file.path) {
                    file.path.replace_range(..cut, "");
                }
            }
            for path in &mut self.pyprojects {
                if under(path) {
                    path.replace_range(..cut, "");
                }
            }
        }
        if strip {
            self.strip_nested_project();
        }
        self.files.sort_by(|a, b| a.path.cmp(&b.path));
        self.files.dedup_by(|later, earlier| {
            let same = later.path == earlier.path;
            if same {
                std::mem::swap(&mut later.bytes, &mut earlier.bytes);
            }
            same
        });
        Ok(Gathered {
            files: self.files,
            anomalies: self.anomalies,
            python_marker: self.pyprojects.iter().any(|p| p == "pyproject.toml"),
        })
    }
}

impl Gather<'_> {
    /// Re-packed archives (a tarball of a folder that holds npm's own `package/`) nest the
    /// project a level deeper than the one top folder already stripped. While no manifest
    /// sits at the root and every kept file is under one folder that has one, strip that
    /// folder too, so the manifest's install hooks are read (at most two more levels).
    fn strip_nested_project(&mut self) {
        const MANIFESTS: &[&str] = &["package.json", "PKG-INFO", "setup.py"];
        for _ in 0..2 {
            let at_root = |f: &SourceFile| MANIFESTS.contains(&f.path.as_str());
            if self.files.is_empty() || self.files.iter().any(at_root) {
                return;
            }
            let Some((top, _)) = self.files[0].path.split_once('/') else {
                return;
            };
            let prefix = format!("{top}/");
            if !self.files.iter().all(|f| f.path.starts_with(&prefix))
                || !MANIFESTS
                    .iter()
                    .any(|m| self.files.iter().any(|f| f.path[prefix.len()..] == **m))
            {
                return;
            }
            for file in &mut self.files {
                file.path.replace_range(..prefix.len(), "");
            }
            for path in &mut self.pyprojects {
                if let Some(rest) = path.strip_prefix(&prefix) {
                    *path = rest.to_owned();
                }
            }
        }
    }
}

impl Gathered {
    fn into_package(self, origin: &Path, kind: ArchiveKind, identity: Identity) -> Package {
        Package {
            origin: origin.to_path_buf(),
            ecosystem: identity.ecosystem,
            name: identity.name,
            version: identity.version,
            kind,
            files: self.files,
            anomalies: self.anomalies,
        }
    }
}
