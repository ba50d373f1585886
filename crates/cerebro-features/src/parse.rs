//! The guarded parse both extractors share: tree-sitter with a work budget, so that crafted
//! input cannot keep its error recovery busy for minutes (it can be quadratic and take near a
//! gigabyte on a few hundred KiB). The budget counts work, not time, so that the same package
//! gets the same sequence on any machine and under any load; a wall-time backstop (four
//! times what the work stands for, two minutes a package) stops input whose every operation
//! is slow.
//!
//! Memory is bounded the same way: tree-sitter allocates through [`memory`], which counts the
//! bytes live on each thread, and a parse that holds more than [`MEMORY_PER_PARSE`] gives up
//! at its next progress report, like one out of work.

use std::cell::Cell;
use std::time::{Duration, Instant};

use tree_sitter::{Parser, Tree};

/// Parse work per second of parsing on the machine the budgets were set on (2 cores, 2026,
/// measured with `examples/parse_work.rs` on the largest bundles of the ranked packages:
/// about 20,000 progress calls a second with the cores shared four ways, so about twice that
/// alone). Tree-sitter reports progress about every 100 parser operations, so counting its
/// reports measures work the same on every machine and under any load: a file gives up (or
/// not) whatever else the machine is doing, and the same package gets the same sequence.
pub const WORK_PER_SECOND: u64 = 40_000;

/// Wall time a parse may take, as a multiple of the time its work budget stands for: a
/// backstop that legitimate files reach only on a machine four times slower than the one the
/// budget was set on, while input whose every operation is costly (crafted error recovery
/// runs at a fifteenth of the normal rate) stops after a few seconds. Debug builds (tests)
/// run about ten times slower.
const TIME_FACTOR: u32 = if cfg!(debug_assertions) { 40 } else { 4 };

/// Wall time the parses of one package may take together, the same backstop for the package
/// budget (many crafted files that each stop at their own backstop).
const PACKAGE_TIME: Duration = Duration::from_secs(if cfg!(debug_assertions) { 1200 } else { 120 });

/// Most parse work the files of one package get together: sixty crafted files that each use
/// their own budget must not hold an install for minutes (a minute of parsing). The largest
/// real packages (thousands of files) take a small part of it.
pub fn package_budget() -> u64 {
    60 * WORK_PER_SECOND
}

/// Most memory one parse may hold (tree-sitter's stacks and tree): the largest real files
/// (10.9 MB of `typescript`, 5 MiB bundles) stay far below it, while crafted error recovery
/// that grows by gigabytes stops here. With one parse per core at a time, the parsers of a
/// scan hold at most this much per core.
pub const MEMORY_PER_PARSE: usize = 512 << 20;

thread_local! {
    /// The memory bound of parses on this thread (tests lower it).
    static MEMORY_LIMIT: Cell<usize> = const { Cell::new(MEMORY_PER_PARSE) };
    /// Parse work left to the package being extracted on this thread.
    static PACKAGE_LEFT: Cell<Option<u64>> = const { Cell::new(None) };
    /// When that package's parses must stop whatever work is left ([`PACKAGE_TIME`]).
    static PACKAGE_DEADLINE: Cell<Option<Instant>> = const { Cell::new(None) };
}

/// Runs `f` (the extraction of one package) with every parse on this thread drawing on one
/// package budget of `work`, as well as bounded by its own file budget.
pub(crate) fn with_package_budget<T>(work: u64, f: impl FnOnce() -> T) -> T {
    let previous = PACKAGE_LEFT.with(|d| d.replace(Some(work)));
    let deadline = PACKAGE_DEADLINE.with(|d| d.replace(Instant::now().checked_add(PACKAGE_TIME)));
    let out = f();
    PACKAGE_LEFT.with(|d| d.set(previous));
    PACKAGE_DEADLINE.with(|d| d.set(deadline));
    out
}

/// The work one file may take: 2 s worth plus 2 s worth per MiB, and never more than the
/// package has left. Legitimate files, 5 MiB bundles included, take a fraction of it.
pub(crate) fn budget(len: usize) -> u64 {
    let mib = (len >> 20) as u64;
    let file = WORK_PER_SECOND.saturating_mul(2 + 2 * mib);
    match PACKAGE_LEFT.with(Cell::get) {
        Some(left) => file.min(left),
        None => file,
    }
}

/// Parses `source` with `parser`, giving up (`None`) once it has done `work` (progress
/// reports) or run past the backstop; the work done is charged to the package's budget. The
/// parser is left reset either way, ready for the next file.
pub(crate) fn parse_within(parser: &mut Parser, source: &str, work: u64) -> Option<Tree> {
    parser.reset();
    let past_deadline = PACKAGE_DEADLINE
        .with(Cell::get)
        .is_some_and(|d| Instant::now() > d);
    if work == 0 || past_deadline {
        // The package's budget is spent: a small file would parse before the first progress
        // report, and this one must give up like the rest.
        return None;
    }
    let bytes = source.as_bytes();
    let start = Instant::now();
    let seconds = work as f64 / WORK_PER_SECOND as f64;
    let mut stop = start + Duration::from_secs_f64(seconds) * TIME_FACTOR;
    if let Some(deadline) = PACKAGE_DEADLINE.with(Cell::get) {
        stop = stop.min(deadline);
    }
    memory::install();
    let held_before = memory::live();
    let memory_limit = MEMORY_LIMIT.with(Cell::get) as isize;
    let mut done = 0u64;
    let mut progress = |_: &tree_sitter::ParseState| {
        done += 1;
        done > work
            || Instant::now() > stop
            || memory::live().saturating_sub(held_before) > memory_limit
    };
    let options = tree_sitter::ParseOptions::new().progress_callback(&mut progress);
    let tree = parser.parse_with_options(
        &mut |offset, _| bytes.get(offset..).unwrap_or_default(),
        None,
        Some(options),
    );
    PACKAGE_LEFT.with(|left| {
        if let Some(l) = left.get() {
            left.set(Some(l.saturating_sub(done)));
        }
    });
    if tree.is_none() {
        parser.reset();
    }
    tree
}

/// Runs `f` with parses on this thread bounded to `bytes` of memory instead of
/// [`MEMORY_PER_PARSE`] (tests).
#[cfg(test)]
fn with_memory_limit<T>(bytes: usize, f: impl FnOnce() -> T) -> T {
    let previous = MEMORY_LIMIT.with(|l| l.replace(bytes));
    let out = f();
    MEMORY_LIMIT.with(|l| l.set(previous));
    out
}

/// tree-sitter's allocator, counting the bytes it holds on each thread.
///
/// The C library's `malloc` underneath, with the usable size of each block added on
/// allocation and taken away on release, so a block allocated before [`install`] (or on
/// another thread) is freed safely: only the count is off by it, and a parse measures what
/// it adds from its start.
pub mod memory {
    use std::cell::Cell;
    use std::ffi::c_void;
    use std::sync::Once;

    extern "C" {
        fn malloc(size: usize) -> *mut c_void;
        fn calloc(count: usize, size: usize) -> *mut c_void;
        fn realloc(block: *mut c_void, size: usize) -> *mut c_void;
        fn free(block: *mut c_void);
    }
    #[cfg(any(target_os = "linux", target_os = "android"))]
    extern "C" {
        fn malloc_usable_size(block: *mut c_void) -> usize;
    }
    #[cfg(any(target_os = "macos", target_os = "ios"))]
    extern "C" {
        fn malloc_size(block: *const c_void) -> usize;
    }

    thread_local! {
        static LIVE: Cell<isize> = const { Cell::new(0) };
    }

    /// Whether the platform tells a block's size (else tree-sitter keeps its own allocator
    /// and parses are bounded by work and time only).
    const COUNTED: bool = cfg!(any(
        target_os = "linux",
        target_os = "android",
        target_os = "macos",
        target_os = "ios"
    ));

    unsafe fn size_of(block: *mut c_void) -> isize {
        if block.is_null() {
            return 0;
        }
        #[cfg(any(target_os = "linux", target_os = "android"))]
        return malloc_usable_size(block) as isize;
        #[cfg(any(target_os = "macos", target_os = "ios"))]
        return malloc_size(block) as isize;
        #[allow(unreachable_code)]
        0
    }

    fn add(bytes: isize) {
        // During thread teardown the count may be gone: nothing left to bound then.
        let _ = LIVE.try_with(|live| live.set(live.get().wrapping_add(bytes)));
    }

    unsafe extern "C" fn counted_malloc(size: usize) -> *mut c_void {
        let block = malloc(size);
        add(size_of(block));
        block
    }

    unsafe extern "C" fn counted_calloc(count: usize, size: usize) -> *mut c_void {
        let block = calloc(count, size);
        add(size_of(block));
        block
    }

    unsafe extern "C" fn counted_realloc(block: *mut c_void, size: usize) -> *mut c_void {
        let before = size_of(block);
        let moved = realloc(block, size);
        if !moved.is_null() || size == 0 {
            add(size_of(moved) - before);
        }
        moved
    }

    unsafe extern "C" fn counted_free(block: *mut c_void) {
        add(-size_of(block));
        free(block);
    }

    /// Points tree-sitter at the counting allocator, once per process.
    pub fn install() {
        static ONCE: Once = Once::new();
        if COUNTED {
            ONCE.call_once(|| unsafe {
                tree_sitter::set_allocator(
                    Some(counted_malloc),
                    Some(counted_calloc),
                    Some(counted_realloc),
                    Some(counted_free),
                );
            });
        }
    }

    /// Bytes tree-sitter holds on this thread (relative: compare two readings).
    pub fn live() -> isize {
        LIVE.with(Cell::get)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn python_parser() -> Parser {
        let mut parser = Parser::new();
        parser
            .set_language(&tree_sitter_python::LANGUAGE.into())
            .unwrap();
        parser
    }

    #[test]
    fn the_budget_counts_work_not_time() {
        // Long enough that tree-sitter reports progress many times.
        let source = "import os\nos.system('echo hi')\n".repeat(20_000);
        let mut parser = python_parser();
        // One report of work is spent at once, however fast the machine: a give-up that
        // depends on the work done, not on the clock.
        assert!(parse_within(&mut parser, &source, 1).is_none());
        assert!(parse_within(&mut parser, &source, budget(source.len())).is_some());
    }

    #[test]
    fn a_parse_that_holds_too_much_memory_gives_up() {
        let source = "import os\nos.system('echo hi')\n".repeat(20_000);
        let mut parser = python_parser();
        let work = budget(source.len());
        let tree = parse_within(&mut parser, &source, work).expect("parses within the default");
        drop(tree);
        let before = memory::live();
        let tree = parse_within(&mut parser, &source, work).expect("parses again");
        // The tree it keeps is counted: tree-sitter's allocations go through the counter.
        assert!(
            memory::live() - before > 1 << 20,
            "the tree's memory is counted"
        );
        drop(tree);
        with_memory_limit(64 << 10, || {
            assert!(
                parse_within(&mut parser, &source, work).is_none(),
                "a parse past its memory bound gives up"
            );
        });
    }

    #[test]
    fn the_package_budget_is_drawn_down_by_each_parse() {
        let source = "import os\nos.system('echo hi')\n".repeat(20_000);
        let mut parser = python_parser();
        with_package_budget(1_000_000, || {
            let before = budget(usize::MAX >> 40);
            assert!(parse_within(&mut parser, &source, budget(source.len())).is_some());
            assert!(
                budget(usize::MAX >> 40) < before,
                "the parse's work was charged"
            );
        });
        with_package_budget(0, || {
            assert_eq!(budget(10), 0);
            assert!(parse_within(&mut parser, "x = 1\n", budget(6)).is_none());
        });
    }
}
