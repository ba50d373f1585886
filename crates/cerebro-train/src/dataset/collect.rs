//! The `manifest` and `fetch` runs: many packages at once, a bounded number in flight.
//!
//! `manifest` asks the registry for each ranked name, picks the artifact, downloads it into
//! the cache (or finds it there) and checks the registry's hash; the result is one row per
//! package, or one skip with its reason. `fetch` makes the cache hold every artifact a
//! manifest pins, downloading only what is missing and checking each against its sha256.
//!
//! Both return once every package is settled; dropping the returned future (Ctrl-C) aborts
//! the downloads in flight, whose temporary files are removed as they are dropped.

use std::collections::HashMap;
use std::sync::Arc;

use reqwest::Url;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use super::cache::Cache;
use super::download::{Failure, Fetcher};
use super::manifest::{ManifestRow, Ranked, SkippedRow};
use super::registry::{self, ArtifactKind, Expected, Skip, SkipReason};
use super::Ecosystem;

/// The settled state of one package of a `manifest` run.
#[derive(Debug, Clone)]
pub enum Outcome {
    Chosen {
        row: ManifestRow,
        kind: ArtifactKind,
        /// Whether it was downloaded now (rather than found in the cache).
        downloaded: bool,
    },
    Skipped(SkippedRow),
}

/// Everything a `manifest` run produced.
#[derive(Debug, Default)]
pub struct ManifestReport {
    /// Sorted by rank.
    pub rows: Vec<ManifestRow>,
    /// Sorted by rank.
    pub skipped: Vec<SkippedRow>,
    pub sdists: usize,
    pub wheels: usize,
    pub tarballs: usize,
    pub downloaded_files: usize,
    pub downloaded_bytes: u64,
    /// Artifacts already in the cache.
    pub cached_files: usize,
}

struct Ctx {
    registry: Ecosystem,
    base: Url,
    fetcher: Fetcher,
    cache: Arc<Cache>,
}

/// Runs `manifest` over `ranked`, `jobs` packages at a time; `progress` sees each package
/// as it settles, with the count settled so far.
pub async fn build_manifest(
    registry: Ecosystem,
    base: Url,
    ranked: Vec<Ranked>,
    fetcher: Fetcher,
    cache: Arc<Cache>,
    jobs: usize,
    mut progress: impl FnMut(&Outcome, usize),
) -> ManifestReport {
    let ctx = Arc::new(Ctx {
        registry,
        base,
        fetcher,
        cache,
    });
    let permits = Arc::new(Semaphore::new(jobs.max(1)));
    let mut tasks = JoinSet::new();
    let mut by_task = HashMap::new();
    for item in ranked {
        let (ctx, permits, task_item) = (ctx.clone(), permits.clone(), item.clone());
        let handle = tasks.spawn(async move {
            let _permit = permits.acquire_owned().await;
            resolve(&ctx, &task_item).await
        });
        by_task.insert(handle.id(), item);
    }

    let mut report = ManifestReport::default();
    let mut done = 0;
    while let Some(joined) = tasks.join_next_with_id().await {
        let outcome = match joined {
            Ok((_, outcome)) => outcome,
            Err(error) => {
                // A panic inside one package's task: record it, keep the rest.
                let item = by_task.get(&error.id()).cloned().unwrap_or(Ranked {
                    rank: 0,
                    name: String::new(),
                });
                skipped(
                    registry,
                    &item,
                    Skip::new(SkipReason::CacheError, format!("internal error: {error}")),
                )
            }
        };
        done += 1;
        progress(&outcome, done);
        match outcome {
            Outcome::Chosen {
                row,
                kind,
                downloaded,
            } => {
                match kind {
                    ArtifactKind::Sdist => report.sdists += 1,
                    ArtifactKind::Wheel => report.wheels += 1,
                    ArtifactKind::Tarball => report.tarballs += 1,
                }
                if downloaded {
                    report.downloaded_files += 1;
                    report.downloaded_bytes += row.size;
                } else {
                    report.cached_files += 1;
                }
                report.rows.push(row);
            }
            Outcome::Skipped(row) => report.skipped.push(row),
        }
    }
    report
        .rows
        .sort_by(|a, b| (a.rank, &a.name).cmp(&(b.rank, &b.name)));
    report
        .skipped
        .sort_by(|a, b| (a.rank, &a.name).cmp(&(b.rank, &b.name)));
    report
}

fn skipped(registry: Ecosystem, item: &Ranked, skip: Skip) -> Outcome {
    Outcome::Skipped(SkippedRow {
        ecosystem: registry.as_str().to_owned(),
        rank: item.rank,
        name: item.name.clone(),
        version: skip.version.unwrap_or_default(),
        reason: skip.reason.as_str().to_owned(),
        detail: skip.detail,
    })
}

fn to_skip(failure: Failure, version: Option<&str>) -> Skip {
    Skip {
        reason: failure.reason,
        version: version.map(str::to_owned),
        detail: failure.detail,
    }
}

/// Settles one package: metadata, choice, cache or download.
async fn resolve(ctx: &Ctx, item: &Ranked) -> Outcome {
    match resolve_inner(ctx, item).await {
        Ok((row, kind, downloaded)) => Outcome::Chosen {
            row,
            kind,
            downloaded,
        },
        Err(skip) => skipped(ctx.registry, item, skip),
    }
}

async fn resolve_inner(
    ctx: &Ctx,
    item: &Ranked,
) -> Result<(ManifestRow, ArtifactKind, bool), Skip> {
    let npm = ctx.registry == Ecosystem::Npm;
    let meta_url = if npm {
        registry::npm_metadata_url(&ctx.base, &item.name)
    } else {
        registry::pypi_metadata_url(&ctx.base, &item.name)
    }
    .map_err(|detail| Skip::new(SkipReason::BadMetadata, detail))?;
    let fetcher = &ctx.fetcher;
    let url = &meta_url;
    let meta = fetcher
        .retrying(|| fetcher.get_json(url, npm))
        .await
        .map_err(|f| to_skip(f, None))?;
    let artifact = if npm {
        registry::choose_npm(&meta, &meta_url)?
    } else {
        registry::choose_pypi(&meta, &meta_url, fetcher.settings().max_bytes)?
    };

    let cached = match &artifact.expected {
        Expected::Sha256(sha256) => ctx.cache.size_of(sha256).map(|s| (sha256.clone(), s)),
        Expected::Sha512(_) => artifact
            .expected
            .sha512_hex()
            .and_then(|h| ctx.cache.sha256_for_sha512(&h))
            .and_then(|sha256| ctx.cache.size_of(&sha256).map(|s| (sha256, s))),
        _ => None,
    }
    .filter(|&(_, size)| artifact.size.is_none_or(|s| s == size));

    let (sha256, size, downloaded) = match cached {
        Some((sha256, size)) => (sha256, size, false),
        None => {
            let (cache, art) = (&*ctx.cache, &artifact);
            let got = fetcher
                .retrying(|| fetcher.download(&art.url, cache, &art.expected))
                .await
                .map_err(|f| to_skip(f, Some(&artifact.version)))?;
            (got.sha256, got.size, true)
        }
    };
    let row = ManifestRow {
        ecosystem: ctx.registry.as_str().to_owned(),
        rank: item.rank,
        name: item.name.clone(),
        version: artifact.version,
        file: artifact.file,
        url: artifact.url.to_string(),
        sha256,
        size,
    };
    Ok((row, artifact.kind, downloaded))
}

/// The state of one manifest row after `fetch`.
#[derive(Debug, Clone)]
pub enum Fetched {
    /// Already in the cache.
    Present,
    /// Downloaded now, and verified.
    Downloaded,
    /// The manifest's URL failed (the reason is given) but the registry still serves the
    /// same file under another URL: downloaded from there, and verified.
    ViaRegistry(String),
    /// Could not be had, or did not match its sha256 (nothing was kept).
    Failed(String),
}

/// Everything a `fetch` run did.
#[derive(Debug, Default)]
pub struct FetchReport {
    pub present: usize,
    pub downloaded: usize,
    pub downloaded_bytes: u64,
    /// Each failed row, in manifest order, with why.
    pub failures: Vec<(ManifestRow, String)>,
}

/// Makes the cache hold every artifact of `rows`: present files are kept (and re-hashed
/// when `verify` is set; a mismatching one is removed and fetched again), missing ones are
/// downloaded from the row's URL and kept only if their sha256 matches the manifest.
pub async fn fetch(
    rows: Vec<ManifestRow>,
    fetcher: Fetcher,
    cache: Arc<Cache>,
    registries: Registries,
    jobs: usize,
    verify: bool,
    mut progress: impl FnMut(&ManifestRow, &Fetched, usize),
) -> FetchReport {
    let fetcher = Arc::new(fetcher);
    let registries = Arc::new(registries);
    let permits = Arc::new(Semaphore::new(jobs.max(1)));
    let mut tasks = JoinSet::new();
    let mut by_task = HashMap::new();
    for (i, row) in rows.iter().enumerate() {
        let (fetcher, cache, registries, permits, row) = (
            fetcher.clone(),
            cache.clone(),
            registries.clone(),
            permits.clone(),
            row.clone(),
        );
        let handle = tasks.spawn(async move {
            let _permit = permits.acquire_owned().await;
            fetch_one(&fetcher, &cache, &registries, &row, verify).await
        });
        by_task.insert(handle.id(), i);
    }
    let mut report = FetchReport::default();
    let mut done = 0;
    let mut failures = Vec::new();
    while let Some(joined) = tasks.join_next_with_id().await {
        let (i, state) = match joined {
            Ok((id, state)) => (by_task[&id], state),
            Err(error) => (
                by_task[&error.id()],
                Fetched::Failed(format!("internal error: {error}")),
            ),
        };
        done += 1;
        progress(&rows[i], &state, done);
        match state {
            Fetched::Present => report.present += 1,
            Fetched::Downloaded | Fetched::ViaRegistry(_) => {
                report.downloaded += 1;
                report.downloaded_bytes += rows[i].size;
            }
            Fetched::Failed(why) => failures.push((i, why)),
        }
    }
    failures.sort_by_key(|(i, _)| *i);
    report.failures = failures
        .into_iter()
        .map(|(i, why)| (rows[i].clone(), why))
        .collect();
    report
}

/// Registry base URLs, for `fetch` to find a file again when its URL no longer works.
#[derive(Debug, Clone)]
pub struct Registries {
    pub pypi: Url,
    pub npm: Url,
}

async fn fetch_one(
    fetcher: &Fetcher,
    cache: &Cache,
    registries: &Registries,
    row: &ManifestRow,
    verify: bool,
) -> Fetched {
    if let Some(size) = cache.size_of(&row.sha256) {
        let intact = size == row.size
            && (!verify
                || cache
                    .read(&row.sha256)
                    .is_ok_and(|bytes| super::sha256_hex(&bytes) == row.sha256));
        if intact {
            return Fetched::Present;
        }
        // A file named by a hash it does not have: the cache was damaged. Fetch it again.
        let _ = std::fs::remove_file(cache.path_of(&row.sha256));
    }
    let expected = Expected::Sha256(row.sha256.clone());
    let failure = match Url::parse(&row.url) {
        Ok(url) => match fetcher
            .retrying(|| fetcher.download(&url, cache, &expected))
            .await
        {
            Ok(_) => return Fetched::Downloaded,
            Err(failure) => failure,
        },
        Err(e) => Failure {
            reason: SkipReason::BadMetadata,
            detail: format!("bad url {:?}: {e}", row.url),
            transient: false,
        },
    };
    let first = format!("{}: {}", failure.reason, failure.detail);
    // Different bytes at the pinned URL are an error, never a reason to look elsewhere.
    if failure.reason == SkipReason::IntegrityMismatch || failure.reason == SkipReason::TooLarge {
        return Fetched::Failed(first);
    }
    match find_again(fetcher, registries, row).await {
        Ok(url) if url.as_str() != row.url => match fetcher
            .retrying(|| fetcher.download(&url, cache, &expected))
            .await
        {
            Ok(_) => Fetched::ViaRegistry(first),
            Err(f) => Fetched::Failed(format!(
                "{first}; from the registry ({url}): {}: {}",
                f.reason, f.detail
            )),
        },
        Ok(_) => Fetched::Failed(first),
        Err(why) => Fetched::Failed(format!("{first}; not found again on the registry: {why}")),
    }
}

/// The URL the registry gives today for a manifest row's exact version and file (mirrors
/// and registries move files, and some metadata gives URLs relative to a mirror).
async fn find_again(
    fetcher: &Fetcher,
    registries: &Registries,
    row: &ManifestRow,
) -> Result<Url, String> {
    let npm = match Ecosystem::parse(&row.ecosystem) {
        Some(Ecosystem::Npm) => true,
        Some(Ecosystem::Pypi) => false,
        None => return Err(format!("unknown ecosystem {:?}", row.ecosystem)),
    };
    let get = |meta_url: Url| async move {
        fetcher
            .retrying(|| fetcher.get_json(&meta_url, npm))
            .await
            .map(|meta| (meta, meta_url.clone()))
            .map_err(|f| format!("{}: {}", f.reason, f.detail))
    };
    if npm {
        let (meta, meta_url) = get(registry::npm_metadata_url(&registries.npm, &row.name)?).await?;
        return registry::npm_tarball_of(&meta, &meta_url, &row.version)
            .ok_or_else(|| format!("{} {} has no tarball there", row.name, row.version));
    }
    // PyPI: the release's own JSON, else the project's (whose `releases` lists every
    // version; some mirrors serve only that one).
    let mut why = String::new();
    for meta_url in [
        registry::pypi_release_url(&registries.pypi, &row.name, &row.version)?,
        registry::pypi_metadata_url(&registries.pypi, &row.name)?,
    ] {
        match get(meta_url).await {
            Ok((meta, meta_url)) => {
                if let Some(url) =
                    registry::pypi_file_url(&meta, &meta_url, &row.version, &row.file)
                {
                    return Ok(url);
                }
                why = format!(
                    "{} {} has no file {} at {meta_url}",
                    row.name, row.version, row.file
                );
            }
            Err(e) => why = e,
        }
    }
    Err(why)
}
