//! The guarded parse both extractors share: tree-sitter with a time budget, so that crafted
//! input cannot keep its error recovery busy for minutes (it can be quadratic and take near a
//! gigabyte on a few hundred KiB).

use std::time::{Duration, Instant};

use tree_sitter::{Parser, Tree};

/// Longest time spent parsing one file: a base plus so much per MiB. Legitimate files, 2 MiB
/// of minified code included, parse in a fraction of it. Debug builds (tests) parse about ten
/// times slower, so they get ten times the budget.
pub(crate) fn budget(len: usize) -> Duration {
    let scale = if cfg!(debug_assertions) { 10 } else { 1 };
    let per_mib = u32::try_from(len >> 20).unwrap_or(u32::MAX);
    Duration::from_secs(2).saturating_mul(scale)
        + Duration::from_secs(2).saturating_mul(per_mib.saturating_mul(scale))
}

/// Parses `source` with `parser`, giving up (`None`) once `budget` has passed; the parser is
/// left reset either way, ready for the next file.
pub(crate) fn parse_within(parser: &mut Parser, source: &str, budget: Duration) -> Option<Tree> {
    parser.reset();
    let bytes = source.as_bytes();
    let start = Instant::now();
    let mut progress = |_: &tree_sitter::ParseState| start.elapsed() > budget;
    let options = tree_sitter::ParseOptions::new().progress_callback(&mut progress);
    let tree = parser.parse_with_options(
        &mut |offset, _| bytes.get(offset..).unwrap_or_default(),
        None,
        Some(options),
    );
    if tree.is_none() {
        parser.reset();
    }
    tree
}
