//! JavaScript's mapping onto the unified feature set, read with tree-sitter.

use super::FileFacts;

/// Extracts the behaviour steps of one JavaScript source file (`.js`, `.mjs`, `.cjs`).
pub fn extract(path: &str, source: &str) -> FileFacts {
    todo!("{path} {}", source.len())
}
