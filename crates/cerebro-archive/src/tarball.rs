//! Tar archives (`.tar.gz`, `.tgz`, `.tar.bz2`, `.tar`), streamed through the decompressor
//! in memory: every byte that comes out is charged to the [`Budget`], whether the entry it
//! belongs to is kept or skipped, since skipping a tar entry still means decompressing it.

use std::io::Read;

use tar::EntryType as TarType;

use super::{Budget, EntryType, Fail, Gather, Gathered, Limits, Metered};

/// The compression wrapped around the tar stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Compression {
    None,
    /// Read as multi-member gzip, as Python's `tarfile` does, so nothing hides in a
    /// second member.
    Gzip,
    /// Read as multi-stream bzip2, for the same reason.
    Bzip2,
}

/// Reads the tar archive in `bytes`, keeping the files [`super::is_kept`] wants.
pub(super) fn read(
    bytes: &[u8],
    compression: Compression,
    limits: &Limits,
) -> Result<Gathered, Fail> {
    let budget = Budget::new(limits, bytes.len() as u64);
    let gather = match compression {
        Compression::None => walk(bytes, &budget, limits),
        Compression::Gzip => walk(flate2::bufread::MultiGzDecoder::new(bytes), &budget, limits),
        Compression::Bzip2 => walk(bzip2::bufread::MultiBzDecoder::new(bytes), &budget, limits),
    }?;
    gather.finish(true)
}

/// Longest PAX extended header or GNU long name read (real ones are a few hundred bytes).
const MAX_EXTENSION_BYTES: u64 = 1 << 20;

/// PAX keys that change what a member is called or how long it is: Python's `tarfile` (pip)
/// and node-tar (npm) apply them from a global header too, the `tar` crate does not.
const NAMING_KEYS: &[&str] = &["path", "linkpath", "size"];

/// Walks the members the way Python's `tarfile` reads them, folding PAX (`x`) and GNU long
/// name (`L`, `K`) headers into the member that follows them ourselves (the `tar` crate's own
/// folding differs from Python's where they meet), and refusing where readers disagree: GNU
/// sparse members and `GNU.sparse.*` keys, a global (`g`) header that renames or resizes
/// members, a PAX `path` beside a GNU long name, a PAX `size` other than the header's, two
/// PAX headers or two long names for one member. Extension headers after the last member name
/// nothing and are ignored, as Python ignores them.
fn walk<'l, R: Read>(
    reader: R,
    budget: &Budget<'_>,
    limits: &'l Limits,
) -> Result<Gather<'l>, Fail> {
    let mut archive = tar::Archive::new(Metered {
        inner: reader,
        budget,
    });
    let mut gather = Gather::new(limits);
    let entries = archive.entries().map_err(|e| budget.fail(&e))?.raw(true);
    let mut pax: Option<Vec<(String, Vec<u8>)>> = None;
    let mut long_name: Option<Vec<u8>> = None;
    let mut long_link = false;
    for entry in entries {
        let mut entry = entry.map_err(|e| budget.fail(&e))?;
        gather.count()?;
        let entry_type = entry.header().entry_type();
        if matches!(
            entry_type,
            TarType::XHeader | TarType::XGlobalHeader | TarType::GNULongName | TarType::GNULongLink
        ) {
            let size = entry.size();
            if size > MAX_EXTENSION_BYTES {
                return Err(differs(format!(
                    "an extension header of {size} bytes (at most {MAX_EXTENSION_BYTES})"
                )));
            }
            let mut body = Vec::with_capacity(size as usize);
            entry.read_to_end(&mut body).map_err(|e| budget.fail(&e))?;
            match entry_type {
                TarType::XHeader => {
                    if pax.is_some() {
                        return Err(differs("two PAX headers for one member".into()));
                    }
                    let records = pax_records(&body)?;
                    if let Some((key, _)) =
                        records.iter().find(|(k, _)| k.starts_with("GNU.sparse"))
                    {
                        return Err(differs(format!("a GNU sparse member (PAX key {key})")));
                    }
                    pax = Some(records);
                }
                TarType::XGlobalHeader => {
                    let records = pax_records(&body)?;
                    if let Some((key, _)) = records.iter().find(|(k, _)| {
                        NAMING_KEYS.contains(&k.as_str()) || k.starts_with("GNU.sparse")
                    }) {
                        return Err(differs(format!(
                            "a PAX global header that sets {key} for the members after it"
                        )));
                    }
                }
                TarType::GNULongName => {
                    if long_name.is_some() {
                        return Err(differs("two GNU long names for one member".into()));
                    }
                    let end = body.iter().position(|&b| b == 0).unwrap_or(body.len());
                    body.truncate(end);
                    long_name = Some(body);
                }
                // A long link target: such a link stays an anomaly, whatever its target.
                _ => long_link = true,
            }
            continue;
        }
        let pax_here = pax.take();
        let long_here = long_name.take();
        let long_link_here = std::mem::take(&mut long_link);
        let pax_value = |key: &str| {
            pax_here
                .as_ref()
                .and_then(|r| r.iter().rev().find(|(k, _)| k == key))
                .map(|(_, v)| v.clone())
        };
        let pax_path = pax_value("path");
        if pax_path.is_some() && long_here.is_some() {
            return Err(differs(
                "a member named both by a PAX path and by a GNU long name".into(),
            ));
        }
        if let Some(size) = pax_value("size") {
            let declared = std::str::from_utf8(&size)
                .ok()
                .and_then(|s| s.parse::<u64>().ok());
            if declared != Some(entry.size()) {
                return Err(differs(format!(
                    "a PAX size ({}) other than its header's ({})",
                    String::from_utf8_lossy(&size),
                    entry.size()
                )));
            }
        }
        let kind = match entry_type {
            TarType::Regular | TarType::Continuous => EntryType::File,
            TarType::Directory => EntryType::Dir,
            TarType::Symlink => EntryType::Symlink,
            TarType::Link => EntryType::Hardlink,
            TarType::GNUSparse => return Err(differs("a GNU sparse member".into())),
            // Devices, fifos and unknown types: nothing a package needs.
            _ => EntryType::Special,
        };
        let size = entry.size();
        let wanted = {
            let raw = match pax_path.or(long_here) {
                Some(name) => name,
                None => entry.path_bytes().into_owned(),
            };
            let raw = String::from_utf8_lossy(&raw);
            if matches!(kind, EntryType::Symlink | EntryType::Hardlink) {
                // A long or PAX link target is read by no one the same way: left an anomaly.
                let target = match (pax_value("linkpath"), entry.header().link_name_bytes()) {
                    (None, Some(target)) if !long_link_here => {
                        Some(String::from_utf8_lossy(&target).into_owned())
                    }
                    _ => None,
                };
                match target {
                    Some(target) => gather.link(&raw, kind, &target),
                    None => {
                        let _ = gather.entry(&raw, kind, size);
                    }
                }
                continue;
            }
            gather.entry(&raw, kind, size).map(|path| path.into_owned())
        };
        let Some(path) = wanted else { continue };
        // `size` is at most `max_file_bytes` here, so the allocation is bounded.
        let mut bytes = Vec::with_capacity(size as usize);
        entry.read_to_end(&mut bytes).map_err(|e| budget.fail(&e))?;
        if bytes.len() as u64 != size {
            return Err(Fail::Corrupt(format!(
                "{path} is cut short ({} of {size} bytes)",
                bytes.len()
            )));
        }
        gather.keep(path, bytes);
    }
    Ok(gather)
}

/// The records of a PAX extended header, in order; a malformed one is refused (readers
/// recover from it differently).
fn pax_records(body: &[u8]) -> Result<Vec<(String, Vec<u8>)>, Fail> {
    let mut out = Vec::new();
    for record in tar::PaxExtensions::new(body) {
        let record = record.map_err(|_| differs("a malformed PAX header".into()))?;
        let key = record
            .key()
            .map_err(|_| differs("a PAX key that is not UTF-8".into()))?;
        out.push((key.to_owned(), record.value_bytes().to_vec()));
    }
    Ok(out)
}

/// A construct pip and npm read differently from this reader: refused, never judged.
fn differs(what: String) -> Fail {
    Fail::Ambiguous(format!("it holds {what}"))
}
