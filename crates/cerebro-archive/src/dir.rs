//! Plain folders (a local project), walked in place without following links.
//!
//! Skipped folders: `.git`, `__pycache__`, `.venv`, `venv` and `node_modules`. They hold
//! version-control state, byte code, a virtual environment or installed dependencies, none
//! of which is the project's own code, and they can be huge. Symbolic links are reported as
//! [`AnomalyKind::Symlink`](super::AnomalyKind::Symlink) and never followed, so a link to
//! `/` cannot make the walk escape or loop. Only bytes actually read count toward
//! [`Limits::max_total_bytes`]; the ratio limit does not apply to a folder.

use std::fs;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use super::{is_kept, Budget, EntryType, Fail, Gather, Gathered, Limits};

/// Folder names never descended into.
const SKIPPED: &[&str] = &[".git", "__pycache__", ".venv", "venv", "node_modules"];

/// Reads the kept files under `root`, paths relative to it.
pub(super) fn read(root: &Path, limits: &Limits) -> Result<Gathered, Fail> {
    let budget = Budget::new(limits, u64::MAX);
    let mut gather = Gather::new(limits);
    let mut pending: Vec<(PathBuf, String)> = vec![(root.to_path_buf(), String::new())];
    while let Some((folder, relative)) = pending.pop() {
        let listing = fs::read_dir(&folder).map_err(|e| io_fail(&folder, e))?;
        for item in listing {
            let item = item.map_err(|e| io_fail(&folder, e))?;
            gather.count()?;
            let name = item.file_name();
            let name = name.to_string_lossy();
            let path = if relative.is_empty() {
                name.into_owned()
            } else {
                format!("{relative}/{name}")
            };
            // `DirEntry::file_type` does not follow symbolic links.
            let file_type = item.file_type().map_err(|e| io_fail(&item.path(), e))?;
            if file_type.is_dir() {
                if !SKIPPED.contains(&path.rsplit('/').next().unwrap_or(&path)) {
                    pending.push((item.path(), path));
                }
                continue;
            }
            let kind = if file_type.is_symlink() {
                EntryType::Symlink
            } else if file_type.is_file() {
                EntryType::File
            } else {
                EntryType::Special
            };
            let size = if kind == EntryType::File && is_kept(&path) {
                item.metadata().map_err(|e| io_fail(&item.path(), e))?.len()
            } else {
                0
            };
            let Some(wanted) = gather.entry(&path, kind, size) else {
                continue;
            };
            let wanted = wanted.into_owned();
            let full = item.path();
            let bytes =
                read_capped(&full, size, limits.max_file_bytes).map_err(|e| io_fail(&full, e))?;
            match bytes {
                Some(bytes) => {
                    budget.charge(bytes.len() as u64)?;
                    gather.keep(wanted, bytes);
                }
                // It grew past the limit since it was listed.
                None => {
                    gather.anomaly::<()>(super::AnomalyKind::OversizedFile, &path);
                }
            }
        }
    }
    gather.finish(false)
}

/// Reads the files `listed` (paths relative to `root`, `/`-separated, as an installed
/// distribution's `RECORD` names them) as one package: an installed Python distribution is
/// its listed files, mixed in one `site-packages` with every other one. A path that leaves
/// `root` (`..`, absolute: console scripts pip wrote elsewhere) is skipped; a link is
/// reported, never followed; a listed file that is gone is skipped (pip may have replaced it).
pub(super) fn read_listed(
    root: &Path,
    listed: &[String],
    limits: &Limits,
) -> Result<Gathered, Fail> {
    let budget = Budget::new(limits, u64::MAX);
    let mut gather = Gather::new(limits);
    for path in listed {
        if path.starts_with('/') || path.split('/').any(|p| p == ".." || p.is_empty()) {
            continue;
        }
        gather.count()?;
        let full = root.join(path);
        let Ok(meta) = fs::symlink_metadata(&full) else {
            continue;
        };
        let kind = if meta.file_type().is_symlink() {
            EntryType::Symlink
        } else if meta.is_file() {
            EntryType::File
        } else {
            EntryType::Special
        };
        let size = if kind == EntryType::File {
            meta.len()
        } else {
            0
        };
        let Some(wanted) = gather.entry(path, kind, size) else {
            continue;
        };
        let wanted = wanted.into_owned();
        match read_capped(&full, size, limits.max_file_bytes).map_err(|e| io_fail(&full, e))? {
            Some(bytes) => {
                budget.charge(bytes.len() as u64)?;
                gather.keep(wanted, bytes);
            }
            None => {
                gather.anomaly::<()>(super::AnomalyKind::OversizedFile, path);
            }
        }
    }
    gather.finish(false)
}

/// The file's bytes, or `None` if it holds more than `max` bytes.
fn read_capped(path: &Path, size: u64, max: u64) -> io::Result<Option<Vec<u8>>> {
    let file = fs::File::open(path)?;
    let mut bytes = Vec::with_capacity(size.min(max) as usize);
    file.take(max.saturating_add(1)).read_to_end(&mut bytes)?;
    Ok((bytes.len() as u64 <= max).then_some(bytes))
}

/// An I/O failure, naming the file inside the folder since the error names only the folder.
fn io_fail(path: &Path, error: io::Error) -> Fail {
    Fail::Io(io::Error::new(
        error.kind(),
        format!("{}: {error}", path.display()),
    ))
}

/// The folder's own name, for the package's fallback identity (`.` resolves to its name).
pub(super) fn display_name(path: &Path) -> String {
    let named = |p: &Path| p.file_name().map(|n| n.to_string_lossy().into_owned());
    named(path)
        .or_else(|| fs::canonicalize(path).ok().as_deref().and_then(named))
        .unwrap_or_else(|| path.to_string_lossy().into_owned())
}
