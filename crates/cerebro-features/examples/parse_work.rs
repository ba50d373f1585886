//! Measures how much parse work (tree-sitter progress callbacks, one per ~100 parser
//! operations) and time each source file of a package takes: the calibration of the work
//! budget in `parse.rs`, and the most memory a parse holds (for `MEMORY_PER_PARSE`). Usage: `cargo run --release -p cerebro-features --example parse_work
//! -- ARCHIVE...`.

use std::time::Instant;

use tree_sitter::Parser;

fn main() {
    let limits = cerebro_archive::Limits::default();
    let (mut total_calls, mut total_secs) = (0u64, 0f64);
    let mut most_memory = (0isize, String::new());
    let mut rows = Vec::new();
    for path in std::env::args().skip(1) {
        let package = match cerebro_archive::open(std::path::Path::new(&path), &limits) {
            Ok(p) => p,
            Err(e) => {
                eprintln!("{path}: {e}");
                continue;
            }
        };
        for file in &package.files {
            let language = match cerebro_features::Language::of(&file.path) {
                Some(cerebro_features::Language::Python) => tree_sitter_python::LANGUAGE,
                Some(cerebro_features::Language::JavaScript) => tree_sitter_javascript::LANGUAGE,
                None => continue,
            };
            let text = file.text();
            let mut parser = Parser::new();
            parser.set_language(&language.into()).unwrap();
            let bytes = text.as_bytes();
            let mut calls = 0u64;
            let start = Instant::now();
            cerebro_features::parse::memory::install();
            let held_before = cerebro_features::parse::memory::live();
            let mut peak = 0isize;
            let mut progress = |_: &tree_sitter::ParseState| {
                calls += 1;
                peak = peak.max(cerebro_features::parse::memory::live() - held_before);
                start.elapsed().as_secs() > 30
            };
            let options = tree_sitter::ParseOptions::new().progress_callback(&mut progress);
            let tree = parser.parse_with_options(
                &mut |offset, _| bytes.get(offset..).unwrap_or_default(),
                None,
                Some(options),
            );
            let secs = start.elapsed().as_secs_f64();
            let held = cerebro_features::parse::memory::live() - held_before;
            drop(tree);
            most_memory = most_memory.max((peak.max(held), format!("{path}:{}", file.path)));
            total_calls += calls;
            total_secs += secs;
            rows.push((secs, calls, bytes.len(), format!("{path}:{}", file.path)));
        }
    }
    rows.sort_by(|a, b| b.0.total_cmp(&a.0));
    for (secs, calls, len, name) in rows.iter().take(15) {
        println!(
            "{secs:8.3}s {calls:>10} calls {:>9} bytes  {:>8.0} calls/s  {name}",
            len,
            *calls as f64 / secs.max(1e-9)
        );
    }
    println!(
        "total {total_secs:.2}s {total_calls} calls: {:.0} calls/s over {} files",
        total_calls as f64 / total_secs.max(1e-9),
        rows.len()
    );
    println!(
        "most memory one parse held: {:.1} MiB ({})",
        most_memory.0 as f64 / (1 << 20) as f64,
        most_memory.1
    );
}
