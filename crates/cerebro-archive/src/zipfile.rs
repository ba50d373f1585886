//! Zip archives (`.zip` sdists, `.whl` wheels). Zip is random access, so only kept entries
//! are decompressed; the others are charged to the [`Budget`] at their declared size. Kept
//! entries are read through `Read::take` capped at their declared size, so a header that
//! lies about the size cannot make a read run away.

use std::borrow::Cow;
use std::io::{Cursor, Read};

use zip::ZipArchive;

use super::{describe, human_size, Budget, EntryType, Fail, Gather, Gathered, Limits};

/// Reads the zip archive in `bytes`, keeping the files [`super::is_kept`] wants.
pub(super) fn read(bytes: &[u8], limits: &Limits) -> Result<Gathered, Fail> {
    let mut archive =
        ZipArchive::new(Cursor::new(bytes)).map_err(|e| Fail::Corrupt(describe(&e)))?;
    if archive.len() > limits.max_files {
        return Err(Fail::too_many_entries(limits));
    }
    // Python's zipfile reads a name given twice as its last entry (pip opens each entry by
    // name, so every copy installs as the last), the `zip` crate as its first: refused, as
    // PyPI itself refuses such wheels.
    if archive.has_duplicate_names() {
        return Err(Fail::Ambiguous(
            "it names an entry twice, which pip reads as the last copy".to_owned(),
        ));
    }
    let budget = Budget::new(limits, bytes.len() as u64);
    let mut gather = Gather::new(limits);
    let mut names: std::collections::HashMap<String, String> = std::collections::HashMap::new();
    for index in 0..archive.len() {
        gather.count()?;
        let (wanted, size) = {
            let entry = archive
                .by_index_raw(index)
                .map_err(|e| Fail::Corrupt(describe(&e)))?;
            // The Info-ZIP Unicode Path field (0x7075) renames an entry for the `zip` crate
            // and not for CPython's `zipfile` (pip): refused, never judged under a name pip
            // does not use.
            if entry
                .extra_data_fields()
                .any(|f| matches!(f, zip::ExtraField::UnicodePath(_)))
            {
                return Err(Fail::Ambiguous(format!(
                    "entry {} carries an Info-ZIP Unicode Path field (0x7075), a second name \
                     that CPython's zipfile ignores",
                    String::from_utf8_lossy(entry.name_raw())
                )));
            }
            let raw = match entry.name() {
                Ok(name) => name,
                Err(_) => String::from_utf8_lossy(entry.name_raw()),
            };
            // `a\\b.py` is a file of that name to pip on Linux and `a/b.py` on Windows; Cerebro
            // reads it as `a/b.py`, so two names that meet there cannot both be read as pip will.
            let same = raw.replace('\\', "/");
            let same = same.trim_start_matches("./").to_owned();
            if let Some(other) = names.insert(same, raw.to_string()) {
                if other != raw {
                    return Err(Fail::Ambiguous(format!(
                        "entries {other} and {raw} name one file in two spellings, which pip \
                         unpacks as two files"
                    )));
                }
            }
            // As pip reads a zip (`unzip_file` for an sdist, the wheel installer): a folder is
            // a name ending in `/` or `\`, and everything else is a file written with its
            // stored bytes, whatever mode the entry claims (a "symlink" or "fifo" entry
            // installs as a file holding its content, so it is read as one).
            let kind = if entry.name_raw().ends_with(b"/") || entry.name_raw().ends_with(b"\\") {
                EntryType::Dir
            } else {
                EntryType::File
            };
            let size = entry.size();
            if kind == EntryType::File {
                check_entry_ratio(&raw, size, entry.compressed_size(), limits)?;
            }
            let wanted = gather.entry(&raw, kind, size);
            if wanted.is_none() && kind == EntryType::File {
                // Not decompressed, but it would be on install: count what it claims.
                budget.charge(size)?;
            }
            (wanted.map(Cow::into_owned), size)
        };
        let Some(path) = wanted else { continue };
        let file = archive
            .by_index(index)
            .map_err(|e| Fail::Corrupt(format!("{path}: {}", describe(&e))))?;
        // `size` is at most `max_file_bytes` here, so the allocation is bounded; one byte
        // more than declared is read to catch an entry that holds more than it says.
        let mut bytes = Vec::with_capacity(size as usize);
        file.take(size.saturating_add(1))
            .read_to_end(&mut bytes)
            .map_err(|e| Fail::Corrupt(format!("{path}: {}", describe(&e))))?;
        if bytes.len() as u64 != size {
            return Err(Fail::Corrupt(format!(
                "{path} does not hold the {size} bytes its header declares"
            )));
        }
        budget.charge(size)?;
        gather.keep(path, bytes);
    }
    gather.finish(true)
}

/// Refuses an entry whose declared sizes make it a bomb on its own.
fn check_entry_ratio(path: &str, size: u64, compressed: u64, limits: &Limits) -> Result<(), Fail> {
    if size > limits.ratio_floor_bytes && size > limits.max_ratio.saturating_mul(compressed) {
        return Err(Fail::Limit {
            limit: "compression ratio",
            detail: format!(
                "entry {path} unpacks {} from {}, more than {}:1",
                human_size(size),
                human_size(compressed),
                limits.max_ratio
            ),
        });
    }
    Ok(())
}
