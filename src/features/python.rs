//! Python's mapping onto the unified feature set, read with tree-sitter.

use super::FileFacts;

/// Extracts the behaviour steps of one Python source file.
pub fn extract(path: &str, source: &str) -> FileFacts {
    todo!("{path} {}", source.len())
}

/// Extracts a `.pth` file: its `import` lines run at every interpreter start-up.
pub fn extract_pth(path: &str, source: &str) -> FileFacts {
    todo!("{path} {}", source.len())
}
