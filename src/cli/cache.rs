//! `cerebro cache`: what Cerebro keeps on disk, and cleaning it.
//!
//! The download cache holds every artifact the guard and `cerebro audit` fetched, by sha256,
//! so that a second install of the same tree downloads nothing; it is capped
//! (`cache_max_size`, 10 GiB by default), least recently used first, after every guarded
//! install and audit ([`trim`]). The verdict and resolution caches are small.

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Subcommand};

use cerebro_fetch::{Cache, CacheBucket};

use super::{status, EXIT_OK};

#[derive(Debug, Args)]
pub struct CacheArgs {
    #[command(subcommand)]
    pub command: CacheCommand,
}

#[derive(Debug, Subcommand)]
pub enum CacheCommand {
    /// Show where the caches are and how much each holds.
    Info {
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
    },
    /// Remove cached downloads and verdicts (all of them), or only the least recently used
    /// downloads beyond a size (`--max-size 2G`).
    Clean {
        /// Keep the most recently used downloads up to this size (`500M`, `2G`) instead of
        /// removing everything.
        #[arg(long, value_name = "SIZE")]
        max_size: Option<String>,
    },
}

pub fn run(args: CacheArgs) -> anyhow::Result<ExitCode> {
    let root =
        cerebro_settings::cache_dir().context("no cache folder: set CEREBRO_CACHE_DIR or HOME")?;
    match args.command {
        CacheCommand::Info { json } => info(&root, json),
        CacheCommand::Clean { max_size } => clean(&root, max_size.as_deref()),
    }
}

/// The training data's cache is `cerebro-dataset`'s, not the product's: never touched here.
fn product_buckets() -> impl Iterator<Item = CacheBucket> {
    CacheBucket::ALL
        .into_iter()
        .filter(|b| *b != CacheBucket::Dataset)
}

fn info(root: &Path, json: bool) -> anyhow::Result<ExitCode> {
    let config = cerebro_guard::policy::Config::load()?;
    let rows: Vec<(CacheBucket, u64, u64)> = product_buckets()
        .map(|b| {
            let (files, bytes) = folder_usage(&root.join(b.folder()));
            (b, files, bytes)
        })
        .collect();
    let mut out = std::io::stdout().lock();
    if json {
        let buckets: serde_json::Map<String, serde_json::Value> = rows
            .iter()
            .map(|(b, files, bytes)| {
                (
                    b.folder().to_owned(),
                    serde_json::json!({"files": files, "bytes": bytes}),
                )
            })
            .collect();
        writeln!(
            out,
            "{}",
            serde_json::json!({
                "root": root,
                "max_size": config.cache_max_size,
                "buckets": buckets,
                "bytes": rows.iter().map(|r| r.2).sum::<u64>(),
            })
        )?;
    } else {
        writeln!(out, "{}", root.display())?;
        for (b, files, bytes) in &rows {
            writeln!(
                out,
                "  {:<20} {:>8} files {:>10}",
                b.folder(),
                files,
                human(*bytes)
            )?;
        }
        let cap = match config.cache_max_size {
            0 => "no cap".to_owned(),
            n => format!("downloads capped at {}", human(n)),
        };
        writeln!(
            out,
            "  {:<20} {:>16} {:>10}  ({cap})",
            "total",
            "",
            human(rows.iter().map(|r| r.2).sum())
        )?;
    }
    Ok(ExitCode::from(EXIT_OK))
}

fn clean(root: &Path, max_size: Option<&str>) -> anyhow::Result<ExitCode> {
    match max_size {
        Some(size) => {
            let max = cerebro_guard::policy::parse_size(size)
                .map_err(|e| anyhow::anyhow!("--max-size {e}"))?;
            let cache = Cache::open(root.join(CacheBucket::Artifacts.folder()))?;
            let removed = cache.evict_to(max);
            status(
                "Cleaned",
                &format!(
                    "{} downloads ({}) beyond {}",
                    removed.files,
                    human(removed.bytes),
                    human(max)
                ),
            );
        }
        None => {
            let mut total = 0;
            for bucket in product_buckets() {
                let dir = root.join(bucket.folder());
                total += folder_usage(&dir).1;
                match std::fs::remove_dir_all(&dir) {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => return Err(anyhow::anyhow!("cannot remove {}: {e}", dir.display())),
                }
            }
            status(
                "Cleaned",
                &format!("{} from {}", human(total), root.display()),
            );
        }
    }
    Ok(ExitCode::from(EXIT_OK))
}

/// Trims the download cache to the user's `cache_max_size` (after a guarded install or an
/// audit, once nothing of this run is needed any more). Never fails the run: a cache that
/// cannot be trimmed is only bigger than asked.
pub fn trim() {
    // A run inside a guarded one: the outer run may still be serving its downloads.
    if std::env::var_os(cerebro_settings::ENV_ACTIVE).is_some_and(|v| !v.is_empty()) {
        return;
    }
    let Ok(config) = cerebro_guard::policy::Config::load() else {
        return;
    };
    if config.cache_max_size == 0 {
        return;
    }
    let Some(dir) = CacheBucket::Artifacts.path() else {
        return;
    };
    if let Ok(cache) = Cache::open(dir) {
        cache.evict_to(config.cache_max_size);
    }
}

/// Files and bytes under `dir` (no links followed).
fn folder_usage(dir: &Path) -> (u64, u64) {
    let (mut files, mut bytes) = (0, 0);
    let mut pending = vec![dir.to_path_buf()];
    while let Some(d) = pending.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.filter_map(Result::ok) {
            let Ok(t) = e.file_type() else { continue };
            if t.is_dir() {
                pending.push(e.path());
            } else if t.is_file() {
                files += 1;
                bytes += e.metadata().map_or(0, |m| m.len());
            }
        }
    }
    (files, bytes)
}

fn human(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}
