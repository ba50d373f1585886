//! npm's package manifest: install-time lifecycle scripts and the import-time entry files.
use super::Hook;
use crate::archive::{Package, SourceFile};

/// Reads `package.json`: its install hooks and its entry files.
pub fn read_manifest(manifest: &SourceFile, package: &Package) -> (Vec<Hook>, Vec<String>) {
    todo!("{} {}", manifest.path, package.name)
}
