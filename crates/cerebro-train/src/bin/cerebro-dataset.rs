//! `cerebro-dataset`: builds the detector's training data, reproducibly. See the module
//! `cerebro_train::dataset` for the stages; this file is the command line and all the printing.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::builder::TypedValueParser as _;
use clap::{Args, Parser, Subcommand, ValueEnum};

#[path = "../term.rs"]
mod term;

use cerebro_scan::scan::{self, ScanOptions};
use cerebro_train::dataset::cache::{self, Cache};
use cerebro_train::dataset::collect::{self, Fetched, Outcome};
use cerebro_train::dataset::download::{Fetcher, Settings};
use cerebro_train::dataset::manifest::{self, MANIFEST_HEADER, SKIPPED_HEADER};
use cerebro_train::dataset::needles;
use cerebro_train::dataset::registry::{self, DEFAULT_NPM_URL, DEFAULT_PYPI_URL};
use cerebro_train::dataset::sequences::{self, Label};
use cerebro_train::dataset::{human_bytes, Ecosystem};
use cerebro_train::train::split::Part;
use term::{print_error, status};

/// The repository this binary was built from: defaults are relative to it, so the tool does
/// the same thing from any working directory.
const REPO: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");
const DEFAULT_CORPUS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/corpus");

const EXIT_FAILED: u8 = 1;
const EXIT_USAGE: u8 = 2;
const EXIT_INTERRUPTED: u8 = 130;

const AFTER_HELP: &str = "\
The three steps, from nothing to a training file:
  cerebro-dataset manifest --ecosystem pypi     # pin top PyPI packages -> data/benign-pypi.csv
  cerebro-dataset manifest --ecosystem npm      # pin top npm packages  -> data/benign-npm.csv
  cerebro-dataset sequences                     # scan everything -> target/dataset/sequences.jsonl
On another machine, with the manifests committed:
  cerebro-dataset fetch --manifest data/benign-pypi.csv --manifest data/benign-npm.csv
  cerebro-dataset sequences

Cache: downloads live in a content-addressed folder (files named by sha256), never in the
repository: --cache DIR, else $CEREBRO_DATASET_CACHE, else ~/.cache/cerebro/dataset-v1.

Exit codes:
  0    done
  1    some packages could not be fetched or verified, or the cache lacks some (see above)
  2    wrong usage, or a failure before any work
  130  interrupted (Ctrl-C); the cache holds only complete, verified files";

/// Builds Cerebro's training data: benign packages pinned from the registries' most
/// downloaded lists, malicious ones from the shared corpus, all turned into behaviour
/// sequences by the same extractor as `cerebro scan`.
///
/// Registry metadata is read as JSON and artifacts are downloaded as files: no package
/// build step, install script or code ever runs, and the malware corpus is only read as
/// bytes, in memory.
#[derive(Debug, Parser)]
#[command(name = "cerebro-dataset", version, after_help = AFTER_HELP)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Pin the newest artifact of each top package into a manifest, downloading it.
    ///
    /// Reads the ranked list (CORPUS/benign/top-pypi.csv or top-npm.csv), asks the registry
    /// for each name's newest version, picks the artifact (PyPI: the sdist, else a
    /// pure-Python `*-none-any` wheel, else skip; npm: the `latest` tarball), downloads it
    /// into the cache, checks the registry's hash (PyPI sha256, npm sha512 integrity), and
    /// writes one row per package, sorted by rank:
    ///   ecosystem,rank,name,version,file,url,sha256,size
    /// Packages left out go to the skip list beside it (`*-skipped.csv`) with a reason:
    /// not-found, no-files, platform-only, too-large, integrity-mismatch, bad-metadata,
    /// http-error, network (after retries), cache-error.
    ///
    /// Examples:
    ///   cerebro-dataset manifest --ecosystem pypi
    ///   cerebro-dataset manifest --ecosystem npm --limit 200 --out /tmp/npm-sample.csv
    #[command(verbatim_doc_comment, after_help = AFTER_HELP)]
    Manifest(ManifestArgs),

    /// Download whatever a manifest pins that the cache lacks, checking every sha256.
    ///
    /// Files already in the cache are reused without any request (add --verify to re-hash
    /// them). A download whose sha256 differs from the manifest is an error naming the
    /// package, and is not kept. When a pinned URL fails (gone, or relative to a mirror
    /// that is not yours), the registry is asked where that exact version's file is now.
    ///
    /// Example:
    ///   cerebro-dataset fetch --manifest data/benign-pypi.csv --manifest data/benign-npm.csv
    #[command(verbatim_doc_comment, after_help = AFTER_HELP)]
    Fetch(FetchArgs),

    /// Scan every package into one JSON line each: the training file.
    ///
    /// Malicious: every archive of CORPUS/pypi-malicious/manifest.csv and
    /// CORPUS/npm-malicious/manifest.csv. Benign: every row of the manifests, read from the
    /// cache (run `fetch` first if it lacks some). Each line holds label, ecosystem, source,
    /// name, version, file, sha256, added, rank, sequence, sequence_uncapped_len,
    /// feature_counts, files_parsed and error, in the order: malicious PyPI, malicious npm,
    /// then each manifest by rank. The scan is `cerebro scan`'s, with its default settings.
    ///
    /// Example:
    ///   cerebro-dataset sequences --out target/dataset/sequences.jsonl
    #[command(verbatim_doc_comment, after_help = AFTER_HELP)]
    Sequences(SequencesArgs),
    /// Sew test-part malware into test-part benign packages: the needle test.
    ///
    /// Reads the split from a sequences file (the same split training uses), pairs every
    /// malicious package of its test part with a benign test package of the same ecosystem
    /// (spread over sizes), merges the malware's code into the benign package in memory the
    /// way a compromised release carries it (src/dataset/needles.rs), scans the result and
    /// writes one line each, labelled malicious with source `needle`, in the sequences
    /// format. Score them with `cerebro-train eval --data FILE --every-part --units`.
    ///
    /// Example:
    ///   cerebro-dataset needles --sequences target/dataset/sequences.jsonl \
    ///       --out target/dataset/needles.jsonl
    #[command(verbatim_doc_comment, after_help = AFTER_HELP)]
    Needles(NeedlesArgs),
    /// Print the part (train, valid, test, dropped) the split puts each package of a
    /// sequences file in, as `sha256,part` lines: to scan only what an evaluation reads.
    Parts(PartsArgs),
}

#[derive(Debug, Args)]
struct PartsArgs {
    /// The sequences file to split.
    #[arg(
        long,
        value_name = "FILE",
        default_value = "target/dataset/sequences.jsonl"
    )]
    sequences: PathBuf,
}

#[derive(Debug, Args)]
struct NeedlesArgs {
    /// The sequences file whose split chooses the test part.
    #[arg(
        long,
        value_name = "FILE",
        default_value = "target/dataset/sequences.jsonl"
    )]
    sequences: PathBuf,
    /// The part of the split both donors and hosts come from: `test` for the needle test,
    /// `train` and `valid` for training data (the split puts each needle in its host's part).
    #[arg(long, value_enum, default_value = "test")]
    part: NeedlePart,
    /// Keep at most N donors for each distinct behaviour sequence (the corpus repeats some
    /// payloads thousands of times); all of them when not given.
    #[arg(long, value_name = "N")]
    per_sequence: Option<usize>,
    #[command(flatten)]
    scan: SequencesArgs,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum NeedlePart {
    Train,
    Valid,
    Test,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Eco {
    Pypi,
    Npm,
}

impl From<Eco> for Ecosystem {
    fn from(e: Eco) -> Ecosystem {
        match e {
            Eco::Pypi => Ecosystem::Pypi,
            Eco::Npm => Ecosystem::Npm,
        }
    }
}

#[derive(Debug, Args)]
struct CacheArgs {
    /// Download cache folder [default: $CEREBRO_DATASET_CACHE, else ~/.cache/cerebro/dataset-v1].
    #[arg(long, value_name = "DIR")]
    cache: Option<PathBuf>,
}

#[derive(Debug, Args)]
struct NetArgs {
    /// Packages handled at once (requests in flight).
    #[arg(short, long, value_name = "N", default_value_t = 16,
          value_parser = clap::value_parser!(u16).range(1..=256).map(usize::from))]
    jobs: usize,

    /// Retries of a request that failed for a transient reason (network error, HTTP 429 or
    /// 5xx), waiting 1 s, 2 s, 4 s, … in between.
    #[arg(long, value_name = "N", default_value_t = 3)]
    retries: u32,

    /// Wait before the first retry, in milliseconds (for tests).
    #[arg(long, value_name = "MS", default_value_t = 1000, hide = true)]
    backoff_ms: u64,
}

impl NetArgs {
    fn settings(&self, max_bytes: u64) -> Settings {
        Settings {
            retries: self.retries,
            backoff: Duration::from_millis(self.backoff_ms),
            max_bytes,
            ..Settings::default()
        }
    }
}

#[derive(Debug, Args)]
struct ManifestArgs {
    /// Which registry's top list to pin.
    #[arg(long, value_enum)]
    ecosystem: Eco,

    /// Take only N packages, spread evenly over all ranks (rank 1, then every len/N-th), so
    /// a sample covers popular and less popular packages alike [default: all].
    #[arg(long, value_name = "N")]
    limit: Option<usize>,

    /// Manifest to write [default: data/benign-ECOSYSTEM.csv in the repository]. The skip
    /// list is written beside it, as NAME-skipped.csv.
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,

    /// The shared corpus folder (holding benign/top-pypi.csv and benign/top-npm.csv).
    #[arg(long, value_name = "DIR", default_value = DEFAULT_CORPUS)]
    corpus: PathBuf,

    /// Ranked list to read instead of CORPUS/benign/top-ECOSYSTEM.csv (columns
    /// rank,project,… or rank,package).
    #[arg(long, value_name = "FILE")]
    list: Option<PathBuf>,

    /// PyPI base URL; metadata is read from BASE/pypi/NAME/json.
    #[arg(long, value_name = "URL", default_value = DEFAULT_PYPI_URL)]
    pypi_url: String,

    /// npm registry base URL; metadata is read from BASE/NAME (scoped: BASE/@scope%2Fname).
    #[arg(long, value_name = "URL", default_value = DEFAULT_NPM_URL)]
    npm_url: String,

    /// Largest artifact to take, in MB (1,000,000 bytes); larger ones are skipped.
    #[arg(long, value_name = "MB", default_value_t = 25)]
    max_mb: u64,

    #[command(flatten)]
    net: NetArgs,

    #[command(flatten)]
    cache: CacheArgs,
}

#[derive(Debug, Args)]
struct FetchArgs {
    /// Manifest(s) to fetch (repeat the flag for several).
    #[arg(long = "manifest", value_name = "FILE", required = true)]
    manifests: Vec<PathBuf>,

    /// Re-hash the files already in the cache too (a damaged one is fetched again).
    #[arg(long)]
    verify: bool,

    /// PyPI base URL, asked for BASE/pypi/NAME/VERSION/json when a pinned URL no longer
    /// works (the same file, same sha256, is then taken from wherever PyPI says it is now).
    #[arg(long, value_name = "URL", default_value = DEFAULT_PYPI_URL)]
    pypi_url: String,

    /// npm registry base URL, asked for BASE/NAME when a pinned URL no longer works.
    #[arg(long, value_name = "URL", default_value = DEFAULT_NPM_URL)]
    npm_url: String,

    #[command(flatten)]
    net: NetArgs,

    #[command(flatten)]
    cache: CacheArgs,
}

#[derive(Debug, Args)]
struct SequencesArgs {
    /// Where to write the JSON lines [default: target/dataset/sequences.jsonl in the
    /// repository]. The file appears only when complete.
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,

    /// Benign manifest(s) (repeat the flag) [default: data/benign-pypi.csv and
    /// data/benign-npm.csv in the repository].
    #[arg(long = "manifest", value_name = "FILE")]
    manifests: Vec<PathBuf>,

    /// The shared corpus folder (holding pypi-malicious/ and npm-malicious/).
    #[arg(long, value_name = "DIR", default_value = DEFAULT_CORPUS)]
    corpus: PathBuf,

    /// Threads to scan with [default: all cores].
    #[arg(short, long, value_name = "N")]
    jobs: Option<usize>,

    #[command(flatten)]
    cache: CacheArgs,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Manifest(args) => manifest_command(args),
        Command::Fetch(args) => fetch_command(args),
        Command::Sequences(args) => sequences_command(args),
        Command::Needles(args) => needles_command(args),
        Command::Parts(args) => parts_command(args),
    };
    match result {
        Ok(code) => code,
        Err(message) => {
            print_error(&anyhow::anyhow!(message));
            ExitCode::from(EXIT_USAGE)
        }
    }
}

type CmdResult = Result<ExitCode, String>;

/// Opens the cache, refusing a folder inside the repository (downloads must never end up
/// committed).
fn open_cache(args: &CacheArgs) -> Result<Arc<Cache>, String> {
    let root = match &args.cache {
        Some(dir) => dir.clone(),
        None => cache::default_root().ok_or(
            "no cache folder: the system names no home folder; pass --cache DIR or set \
             CEREBRO_DATASET_CACHE",
        )?,
    };
    let cache = Cache::open(&root)
        .map_err(|e| format!("cannot open the cache at {}: {e}", root.display()))?;
    if let (Ok(cache_dir), Ok(repo)) = (cache.root().canonicalize(), Path::new(REPO).canonicalize())
    {
        if cache_dir.starts_with(&repo) {
            return Err(format!(
                "the cache {} is inside the repository {}; choose a folder outside it",
                cache_dir.display(),
                repo.display()
            ));
        }
    }
    Ok(Arc::new(cache))
}

fn runtime() -> Result<tokio::runtime::Runtime, String> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the async runtime: {e}"))
}

/// Runs `work` until it finishes or Ctrl-C (or SIGTERM); `None` when interrupted, after the
/// work in flight was dropped (its temporary files removed).
fn until_interrupted<T>(
    rt: &tokio::runtime::Runtime,
    work: impl std::future::Future<Output = T>,
) -> Option<T> {
    rt.block_on(async {
        tokio::select! {
            result = work => Some(result),
            _ = tokio::signal::ctrl_c() => None,
            _ = terminated() => None,
        }
    })
}

/// Resolves on SIGTERM (`kill`, `timeout`); never where there is no such signal.
async fn terminated() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            term.recv().await;
            return;
        }
    }
    std::future::pending::<()>().await
}

fn elapsed(since: Instant) -> String {
    let s = since.elapsed().as_secs();
    if s >= 3600 {
        format!("{}h{:02}m{:02}s", s / 3600, s / 60 % 60, s % 60)
    } else if s >= 60 {
        format!("{}m{:02}s", s / 60, s % 60)
    } else {
        format!("{:.1}s", since.elapsed().as_secs_f64())
    }
}

/// Whether to print a progress line after `done` of `total`: about every 5%.
fn milestone(done: usize, total: usize) -> bool {
    let step = (total / 20).max(1);
    done.is_multiple_of(step) && done != total
}

fn manifest_command(args: ManifestArgs) -> CmdResult {
    let registry = Ecosystem::from(args.ecosystem);
    let list = args.list.clone().unwrap_or_else(|| {
        args.corpus
            .join("benign")
            .join(format!("top-{}.csv", registry.as_str()))
    });
    let out = args.out.clone().unwrap_or_else(|| {
        Path::new(REPO)
            .join("data")
            .join(format!("benign-{}.csv", registry.as_str()))
    });
    let skipped_out = manifest::skipped_path(&out);
    let base = match registry {
        Ecosystem::Pypi => registry::base_url(&args.pypi_url),
        Ecosystem::Npm => registry::base_url(&args.npm_url),
    }?;
    let ranked = manifest::read_ranked(&list)?;
    let ranked = manifest::spread(&ranked, args.limit);
    let cache = open_cache(&args.cache)?;
    let fetcher = Fetcher::new(args.net.settings(args.max_mb.saturating_mul(1_000_000)))?;
    let total = ranked.len();
    status(
        "Pinning",
        &format!(
            "{total} {registry} packages from {} via {base}, {} at a time, cache {}",
            list.display(),
            args.net.jobs,
            cache.root().display()
        ),
    );

    let start = Instant::now();
    let rt = runtime()?;
    let (mut chosen, mut skipped, mut bytes) = (0usize, 0usize, 0u64);
    let work = collect::build_manifest(
        registry,
        base,
        ranked,
        fetcher,
        cache.clone(),
        args.net.jobs,
        |outcome, done| {
            match outcome {
                Outcome::Chosen {
                    row, downloaded, ..
                } => {
                    chosen += 1;
                    if *downloaded {
                        bytes += row.size;
                    }
                }
                Outcome::Skipped(row) => {
                    skipped += 1;
                    status(
                        "Skipped",
                        &format!("#{} {}: {}: {}", row.rank, row.name, row.reason, row.detail),
                    );
                }
            }
            if milestone(done, total) {
                status(
                    "Progress",
                    &format!(
                        "{done}/{total}: {chosen} pinned, {skipped} skipped, {} downloaded, {}",
                        human_bytes(bytes),
                        elapsed(start)
                    ),
                );
            }
        },
    );
    let Some(report) = until_interrupted(&rt, work) else {
        drop(rt);
        status(
            "Interrupted",
            "no manifest written; the cache keeps every complete download, so a re-run is quicker",
        );
        return Ok(ExitCode::from(EXIT_INTERRUPTED));
    };
    drop(rt);

    manifest::write_csv(&out, &report.rows, MANIFEST_HEADER)?;
    manifest::write_csv(&skipped_out, &report.skipped, SKIPPED_HEADER)?;

    let mut reasons = std::collections::BTreeMap::<&str, usize>::new();
    for row in &report.skipped {
        *reasons.entry(row.reason.as_str()).or_default() += 1;
    }
    let reasons: Vec<String> = reasons.iter().map(|(r, n)| format!("{n} {r}")).collect();
    let kinds = match registry {
        Ecosystem::Pypi => format!("{} sdists, {} wheels", report.sdists, report.wheels),
        Ecosystem::Npm => format!("{} tarballs", report.tarballs),
    };
    let total_bytes: u64 = report.rows.iter().map(|r| r.size).sum();
    status(
        "Pinned",
        &format!(
            "{} of {total} packages ({kinds}; {} in all) in {} -> {}",
            report.rows.len(),
            human_bytes(total_bytes),
            elapsed(start),
            out.display()
        ),
    );
    status(
        "Downloaded",
        &format!(
            "{} files, {}; {} were already in the cache",
            report.downloaded_files,
            human_bytes(report.downloaded_bytes),
            report.cached_files
        ),
    );
    status(
        "Skipped",
        &format!(
            "{} packages{} -> {}",
            report.skipped.len(),
            if reasons.is_empty() {
                String::new()
            } else {
                format!(" ({})", reasons.join(", "))
            },
            skipped_out.display()
        ),
    );
    Ok(ExitCode::SUCCESS)
}

fn fetch_command(args: FetchArgs) -> CmdResult {
    let mut rows = Vec::new();
    for path in &args.manifests {
        rows.extend(manifest::read_manifest(path)?);
    }
    let cache = open_cache(&args.cache)?;
    // The manifest's sizes bound the downloads; the sha256 check does the rest.
    let max_bytes = rows.iter().map(|r| r.size).max().unwrap_or(0);
    let fetcher = Fetcher::new(args.net.settings(max_bytes))?;
    let registries = collect::Registries {
        pypi: registry::base_url(&args.pypi_url)?,
        npm: registry::base_url(&args.npm_url)?,
    };
    let total = rows.len();
    let start = Instant::now();
    let rt = runtime()?;
    let mut via_registry = 0usize;
    let work = collect::fetch(
        rows,
        fetcher,
        cache.clone(),
        registries,
        args.net.jobs,
        args.verify,
        |row, state, done| {
            match state {
                Fetched::Failed(why) => print_error(&anyhow::anyhow!(
                    "{} {} {} (#{}): {why}",
                    row.ecosystem,
                    row.name,
                    row.version,
                    row.rank
                )),
                Fetched::ViaRegistry(_) => via_registry += 1,
                _ => {}
            }
            if milestone(done, total) {
                status("Progress", &format!("{done}/{total}, {}", elapsed(start)));
            }
        },
    );
    let Some(report) = until_interrupted(&rt, work) else {
        drop(rt);
        status(
            "Interrupted",
            "the cache keeps every complete, verified download",
        );
        return Ok(ExitCode::from(EXIT_INTERRUPTED));
    };
    drop(rt);
    status(
        "Fetched",
        &format!(
            "{total} artifacts in {}: {} already in the cache, {} downloaded ({}; {via_registry} \
             from the registry's current URL), {} failed; cache {}",
            elapsed(start),
            report.present,
            report.downloaded,
            human_bytes(report.downloaded_bytes),
            report.failures.len(),
            cache.root().display()
        ),
    );
    Ok(ExitCode::from(if report.failures.is_empty() {
        0
    } else {
        EXIT_FAILED
    }))
}

fn parts_command(args: PartsArgs) -> CmdResult {
    let parts = needles::parts(&args.sequences, &Default::default())?;
    let mut lines: Vec<String> = parts
        .iter()
        .map(|(h, (p, _))| format!("{h},{}", format!("{p:?}").to_lowercase()))
        .collect();
    lines.sort();
    println!("sha256,part\n{}", lines.join("\n"));
    Ok(ExitCode::SUCCESS)
}

fn needles_command(args: NeedlesArgs) -> CmdResult {
    let part = match args.part {
        NeedlePart::Train => Part::Train,
        NeedlePart::Valid => Part::Valid,
        NeedlePart::Test => Part::Test,
    };
    let test = needles::part_members(&args.sequences, &Default::default(), part)?;
    let a = &args.scan;
    let out = a
        .out
        .clone()
        .unwrap_or_else(|| Path::new(REPO).join("target/dataset/needles.jsonl"));
    let donors: Vec<_> = sequences::malicious_entries(&a.corpus)?
        .into_iter()
        .filter(|e| test.contains_key(&e.sha256))
        .collect();
    let donors = match args.per_sequence {
        Some(k) => needles::thin_donors(donors, &needles::sequences_by_hash(&args.sequences)?, k),
        None => donors,
    };
    let cache = open_cache(&a.cache)?;
    let manifests = if a.manifests.is_empty() {
        vec![
            Path::new(REPO).join("data/benign-pypi.csv"),
            Path::new(REPO).join("data/benign-npm.csv"),
        ]
    } else {
        a.manifests.clone()
    };
    let mut hosts = Vec::new();
    for path in &manifests {
        let rows = manifest::read_manifest(path).map_err(|e| e.to_string())?;
        let (benign, _) = sequences::benign_entries(&rows, &cache);
        hosts.extend(benign.into_iter().filter(|e| test.contains_key(&e.sha256)));
    }
    let sizes: Vec<usize> = hosts.iter().map(|h| test[&h.sha256]).collect();
    let pairs = needles::pair(&donors, &hosts, &sizes);
    let jobs = a.jobs.unwrap_or_else(scan::default_jobs).max(1);
    let total = pairs.len();
    status(
        "Sewing",
        &format!(
            "{total} needles ({} {part:?} malware into {} {part:?} benign hosts) on {jobs} threads",
            donors.len(),
            hosts.len()
        ),
    );
    let start = Instant::now();
    let options = ScanOptions::default();
    let mut text = String::new();
    let mut done = 0;
    scan::for_each_ordered(
        total,
        jobs,
        |i| needles::needle_record(pairs[i].1, pairs[i].0, &options),
        |_, record| {
            text.push_str(&serde_json::to_string(&record).unwrap_or_default());
            text.push('\n');
            done += 1;
            if milestone(done, total) {
                status("Progress", &format!("{done}/{total}, {}", elapsed(start)));
            }
        },
    );
    if let Some(dir) = out.parent() {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    std::fs::write(&out, text).map_err(|e| format!("{}: {e}", out.display()))?;
    status(
        "Wrote",
        &format!("{total} needles in {} -> {}", elapsed(start), out.display()),
    );
    Ok(ExitCode::SUCCESS)
}

fn sequences_command(args: SequencesArgs) -> CmdResult {
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| Path::new(REPO).join("target/dataset/sequences.jsonl"));
    let manifests = if args.manifests.is_empty() {
        vec![
            Path::new(REPO).join("data/benign-pypi.csv"),
            Path::new(REPO).join("data/benign-npm.csv"),
        ]
    } else {
        args.manifests.clone()
    };
    let mut entries = sequences::malicious_entries(&args.corpus)?;
    let cache = open_cache(&args.cache)?;
    let mut missing = Vec::new();
    for path in &manifests {
        let rows = manifest::read_manifest(path).map_err(|e| {
            format!("{e}\n  (build it with `cerebro-dataset manifest`, or pass --manifest)")
        })?;
        let (benign, lacking) = sequences::benign_entries(&rows, &cache);
        entries.extend(benign);
        missing.extend(lacking.into_iter().map(|r| (path.clone(), r)));
    }
    if !missing.is_empty() {
        for (path, row) in missing.iter().take(10) {
            print_error(&anyhow::anyhow!(
                "{} {} {} ({}) is not in the cache",
                row.ecosystem,
                row.name,
                row.version,
                path.display()
            ));
        }
        let args: Vec<String> = manifests
            .iter()
            .map(|m| format!("--manifest {}", m.display()))
            .collect();
        print_error(&anyhow::anyhow!(
            "{} artifacts are missing from the cache {}; fetch them first:\n  cerebro-dataset fetch {}",
            missing.len(),
            cache.root().display(),
            args.join(" ")
        ));
        return Ok(ExitCode::from(EXIT_FAILED));
    }

    let jobs = args.jobs.unwrap_or_else(scan::default_jobs).max(1);
    let total = entries.len();
    let malicious = entries
        .iter()
        .filter(|e| e.label == Label::Malicious)
        .count();
    status(
        "Scanning",
        &format!(
            "{total} packages ({malicious} malicious, {} benign) on {jobs} threads",
            total - malicious
        ),
    );
    let start = Instant::now();
    let report =
        sequences::write_sequences(&entries, &out, jobs, &ScanOptions::default(), |_, done| {
            if milestone(done, total) {
                status("Progress", &format!("{done}/{total}, {}", elapsed(start)));
            }
        })?;
    status(
        "Wrote",
        &format!(
            "{} lines ({} malicious, {} benign) in {} -> {}",
            report.lines,
            report.malicious,
            report.benign,
            elapsed(start),
            out.display()
        ),
    );
    status(
        "Summary",
        &format!(
            "{} unreadable; no behaviour at all: {} benign, {} malicious",
            report.errors, report.empty_benign, report.empty_malicious
        ),
    );
    Ok(ExitCode::SUCCESS)
}
