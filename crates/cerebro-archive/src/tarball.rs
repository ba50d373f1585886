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
    let entries = archive.entries().map_err(|e| budget.fail(&e))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| budget.fail(&e))?;
        gather.count()?;
        let kind = match entry.header().entry_type() {
            TarType::Regular | TarType::Continuous => EntryType::File,
            TarType::Directory => EntryType::Dir,
            TarType::Symlink => EntryType::Symlink,
            TarType::Link => EntryType::Hardlink,
            // Extension headers `tar` did not fold into the next entry (a pax global header).
            TarType::XGlobalHeader
            | TarType::XHeader
            | TarType::GNULongName
            | TarType::GNULongLink => continue,
            // Devices, fifos, sparse files and unknown types: nothing a package needs.
            _ => EntryType::Special,
        };
        let size = entry.size();
        let wanted = {
            let raw = entry.path_bytes();
            let raw = String::from_utf8_lossy(&raw);
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
