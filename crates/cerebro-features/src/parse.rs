//! The guarded parse both extractors share: tree-sitter with a time budget, so that crafted
//! input cannot keep its error recovery busy for minutes (it can be quadratic and take near a
//! gigabyte on a few hundred KiB).

use std::cell::Cell;
use std::time::{Duration, Instant};

use tree_sitter::{Parser, Tree};

/// Debug builds (tests) parse about ten times slower, so they get ten times the budgets.
const SCALE: u32 = if cfg!(debug_assertions) { 10 } else { 1 };

/// Longest time the parses of one package take together: sixty crafted files that each use
/// their own budget must not hold an install for minutes. The largest real packages (thousands
/// of files) parse in a few seconds.
pub fn package_budget() -> Duration {
    Duration::from_secs(60).saturating_mul(SCALE)
}

thread_local! {
    /// When the package being extracted on this thread must be done parsing.
    static DEADLINE: Cell<Option<Instant>> = const { Cell::new(None) };
}

/// Runs `f` (the extraction of one package) with every parse on this thread bounded by a
/// deadline `budget` from now, as well as by its own file budget.
pub(crate) fn with_package_deadline<T>(budget: Duration, f: impl FnOnce() -> T) -> T {
    let previous = DEADLINE.with(|d| d.replace(Instant::now().checked_add(budget)));
    let out = f();
    DEADLINE.with(|d| d.set(previous));
    out
}

/// Longest time spent parsing one file: a base plus so much per MiB, and never past the
/// package's deadline. Legitimate files, 2 MiB of minified code included, parse in a
/// fraction of it.
pub(crate) fn budget(len: usize) -> Duration {
    let per_mib = u32::try_from(len >> 20).unwrap_or(u32::MAX);
    let file = Duration::from_secs(2).saturating_mul(SCALE)
        + Duration::from_secs(2).saturating_mul(per_mib.saturating_mul(SCALE));
    match DEADLINE.with(Cell::get) {
        Some(deadline) => file.min(deadline.saturating_duration_since(Instant::now())),
        None => file,
    }
}

/// Parses `source` with `parser`, giving up (`None`) once `budget` has passed; the parser is
/// left reset either way, ready for the next file.
pub(crate) fn parse_within(parser: &mut Parser, source: &str, budget: Duration) -> Option<Tree> {
    parser.reset();
    if budget.is_zero() {
        // The package's deadline has passed: a small file would parse before the first
        // progress check, and this one must give up like the rest.
        return None;
    }
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
