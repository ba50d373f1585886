//! Benchmark of classification alone: the embedded model scoring behaviour sequences on one
//! thread, without reading any archive.
//!
//! ```sh
//! cargo run --release --example bench_model -- [--data target/dataset/sequences.jsonl]
//!     [--limit 2000] [--reps 1] [--scores target/bench/model-scores.tsv] [--model FILE]
//! ```
//!
//! The model is the embedded one, or `--model FILE` (a model file as `cerebro-train` writes
//! it, with the embedded tokenizer): candidates are timed without rebuilding.
//! Sequences come from `--data` (JSON lines with a `sequence` array, as written by
//! `cerebro-dataset sequences` or `cerebro scan --json`; lines without one are skipped), an
//! evenly spaced sample of `--limit` of them; with `--synthetic` or without the file, from a
//! small built-in set of synthetic sequences. Nothing is written unless `--scores` asks.
//! Three measurements per sequence, each the median of `--reps` calls after a warm-up pass:
//!
//! - `score`: the score alone (`Detector::score`);
//! - `judge`: what `cerebro scan` does (score, then explain flagged packages by occlusion);
//! - `score+explain`: the score and the occlusion explanation for every sequence (the worst
//!   case: what `judge` costs when every package is flagged).
//!
//! Prints median, 95th and 99th percentile and mean per package, in wall time and in the
//! thread's CPU time (which other processes on a busy machine inflate much less), and with
//! `--scores` writes each sequence's score and reasons (tab-separated) to compare two builds.
//! `--only score|judge|explain` runs one measurement (for a profiler). `--candle` measures
//! the model run on candle's tensor ops instead of the engine (`Model::without_engine`);
//! `--check` compares the two on every sequence and every occluded variant of it, one
//! sequence per call, and reports the largest difference (and the first differing scores).

use std::io::Write;
use std::time::Instant;

use cerebro_features::sequence::{Sequence, Token};
use cerebro_model::{self as model, Detector};
use cerebro_scan::detect::{self, Thresholds};

const SYNTHETIC: &[&str] = &[
    "[INSTALL] H1 R5 D2 D4",
    "[IMPORT] R3 R4",
    "[INSTALL] D1 R1 P1 H1 D2 D3 D2 R2 P3 P2",
    "[IMPORT] E1 E2 [RUN] R3 R4 P4",
    "[INSTALL] H1 O1 E3 D3 P2 [IMPORT] R1 R2 [RUN] A1 D1 R3",
    "[RUN] R3",
    "[INSTALL] H1 P1 P2 P3 D4 E4 [IMPORT] R5 R4 R3 R2 R1 [RUN] D1 D2 D3 D4 E1 E2 E3 E4 P1 P2 P3 P4 H1 O1 A1",
];

fn main() {
    let mut data = Some("target/dataset/sequences.jsonl".to_owned());
    let mut limit = 2000usize;
    let mut reps = 1usize;
    let mut scores_out = None;
    let mut only = None;
    let mut model_file = None;
    let (mut candle, mut check) = (false, false);
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut val = || args.next().unwrap_or_else(|| usage(&a));
        match a.as_str() {
            "--data" => data = Some(val()),
            "--synthetic" => data = None,
            "--limit" => limit = val().parse().unwrap_or_else(|_| usage("--limit")),
            "--reps" => reps = val().parse().unwrap_or_else(|_| usage("--reps")),
            "--scores" => scores_out = Some(val()),
            "--only" => only = Some(val()),
            "--model" => model_file = Some(val()),
            "--candle" => candle = true,
            "--check" => check = true,
            _ => usage(&a),
        }
    }
    cerebro_model::single_threaded_kernels();

    let (source, sequences) = load(data.as_deref(), limit);
    let gguf = match &model_file {
        Some(path) => std::fs::read(path).unwrap_or_else(|e| panic!("{path}: {e}")),
        None => model::EMBEDDED_MODEL.to_vec(),
    };
    let load = |engine: bool| {
        let (model, tokenizer) = model::load(&gguf, model::EMBEDDED_TOKENIZER).expect("model file");
        let model = if engine {
            model
        } else {
            model.without_engine()
        };
        println!(
            "model run on {}",
            if model.has_engine() {
                "the engine"
            } else {
                "candle"
            }
        );
        // No memo: every call scores afresh, so the times are the model's cost per package.
        Detector::new(model, tokenizer)
            .expect("detector")
            .without_memo()
    };
    let detector = load(!candle);
    if check {
        compare(&detector, &load(false), &sequences);
    }
    // The lower of the two ecosystems' thresholds: more packages explained, the slower case.
    let t = detector.thresholds();
    let thresholds = Thresholds::for_model(t.pypi.min(t.npm));
    let lens: Vec<usize> = sorted(sequences.iter().map(|s| s.tokens.len()).collect());
    println!(
        "{} sequences from {source}; tokens median {}, p95 {}, max {}",
        sequences.len(),
        pct(&lens, 0.5),
        pct(&lens, 0.95),
        lens.last().copied().unwrap_or(0)
    );

    // Warm-up, and the results to compare between builds.
    let mut results = Vec::with_capacity(sequences.len());
    for s in &sequences {
        let score = detector.score(&s.tokens).expect("score");
        let reasons = detect::explain(&detector, s, score).expect("explain");
        results.push((score, reasons));
    }

    let time = |f: &dyn Fn(&Sequence)| -> (Vec<f64>, Vec<f64>) {
        sequences
            .iter()
            .map(|s| {
                let mut t: Vec<(f64, f64)> = (0..reps)
                    .map(|_| {
                        let (start, cpu) = (Instant::now(), thread_cpu_ms());
                        f(s);
                        (start.elapsed().as_secs_f64() * 1e3, thread_cpu_ms() - cpu)
                    })
                    .collect();
                t.sort_by(|a, b| a.0.total_cmp(&b.0));
                t[t.len() / 2]
            })
            .unzip()
    };
    let score = |s: &Sequence| {
        detector.score(&s.tokens).expect("score");
    };
    let judge = |s: &Sequence| {
        detect::judge(&detector, &thresholds, s).expect("judge");
    };
    let explain = |s: &Sequence| {
        let p = detector.score(&s.tokens).expect("score");
        detect::explain(&detector, s, p).expect("explain");
    };
    type Run<'a> = (&'a str, &'a dyn Fn(&Sequence));
    let runs: [Run; 3] = [
        ("score", &score),
        ("judge", &judge),
        ("score+explain", &explain),
    ];
    let flagged = results
        .iter()
        .filter(|(p, _)| *p >= thresholds.suspicious)
        .count();
    println!(
        "{flagged} of {} flagged (suspicious or malicious)",
        sequences.len()
    );
    println!("per package, ms (one thread)       median      p95      p99     mean");
    for (name, f) in runs {
        if only.as_deref().is_some_and(|o| !name.ends_with(o)) {
            continue;
        }
        let (wall, cpu) = time(f);
        for (clock, t) in [("wall", wall), ("cpu", cpu)] {
            let mean = t.iter().sum::<f64>() / t.len().max(1) as f64;
            let t = sorted(t);
            println!(
                "  {:<31}{:>8.3} {:>8.3} {:>8.3} {:>8.3}",
                format!("{name} ({clock})"),
                pct(&t, 0.5),
                pct(&t, 0.95),
                pct(&t, 0.99),
                mean
            );
        }
    }

    if let Some(path) = scores_out {
        let mut out = std::io::BufWriter::new(std::fs::File::create(&path).expect("scores file"));
        for (s, (score, reasons)) in sequences.iter().zip(&results) {
            let text: Vec<&str> = s.tokens.iter().map(|t| t.as_str()).collect();
            let reasons: Vec<String> = reasons
                .iter()
                .map(|r| format!("{}:{:.6}", r.feature.id(), r.weight))
                .collect();
            writeln!(out, "{score:.9}\t{}\t{}", reasons.join(","), text.join(" "))
                .expect("write scores");
        }
        println!("scores written to {path}");
    }
}

/// CPU time of the calling thread, in milliseconds (`CLOCK_THREAD_CPUTIME_ID`; 0 where
/// there is none).
fn thread_cpu_ms() -> f64 {
    #[cfg(target_os = "linux")]
    {
        #[repr(C)]
        struct Timespec {
            sec: i64,
            nsec: i64,
        }
        extern "C" {
            fn clock_gettime(clock: i32, tp: *mut Timespec) -> i32;
        }
        const CLOCK_THREAD_CPUTIME_ID: i32 = 3;
        let mut t = Timespec { sec: 0, nsec: 0 };
        // SAFETY: `t` is a valid timespec for the duration of the call.
        if unsafe { clock_gettime(CLOCK_THREAD_CPUTIME_ID, &mut t) } == 0 {
            return t.sec as f64 * 1e3 + t.nsec as f64 / 1e6;
        }
    }
    0.0
}

/// Scores every sequence and each of its occluded variants (every feature present taken
/// out) with both detectors, one sequence per call, and prints how far apart they are.
fn compare(a: &Detector, b: &Detector, sequences: &[Sequence]) {
    let (mut n, mut same, mut over, mut worst) = (0usize, 0usize, 0usize, 0f32);
    for s in sequences {
        let mut variants = vec![s.tokens.clone()];
        let mut features: Vec<Token> = s
            .tokens
            .iter()
            .copied()
            .filter(|t| matches!(t, Token::Feature(_)))
            .collect();
        features.sort_by_key(|t| t.as_str());
        features.dedup();
        for f in features {
            variants.push(s.tokens.iter().copied().filter(|&t| t != f).collect());
        }
        for v in variants {
            let (p, q) = (a.score(&v).expect("score"), b.score(&v).expect("score"));
            let d = (p - q).abs();
            n += 1;
            same += usize::from(p == q);
            over += usize::from(d > 1e-5);
            if d > 0.0 && n - same <= 20 {
                println!("  {} tokens: {p} vs {q}", v.len());
            }
            worst = worst.max(d);
        }
    }
    println!(
        "engine vs candle: {n} sequences (with occluded variants), {same} identical, \
         {over} differ by more than 1e-5, largest difference {worst:e}"
    );
}

fn usage(arg: &str) -> ! {
    eprintln!(
        "unexpected {arg:?}\nusage: bench_model [--data FILE | --synthetic] [--limit N] \
         [--reps N] [--scores FILE] [--only score|judge|explain] [--candle] [--check] [--model FILE]"
    );
    std::process::exit(2)
}

fn sorted<T: PartialOrd>(mut v: Vec<T>) -> Vec<T> {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
    v
}

fn pct<T: Copy + Default>(sorted: &[T], p: f64) -> T {
    if sorted.is_empty() {
        return T::default();
    }
    sorted[((sorted.len() as f64 * p) as usize).min(sorted.len() - 1)]
}

fn sequence(tokens: Vec<Token>) -> Sequence {
    Sequence {
        uncapped_len: tokens.len(),
        tokens,
        events: Vec::new(),
    }
}

/// An evenly spaced sample of `limit` sequences of the data file, else the synthetic set.
fn load(data: Option<&str>, limit: usize) -> (String, Vec<Sequence>) {
    let text = data.and_then(|p| std::fs::read_to_string(p).ok().map(|t| (p, t)));
    let Some((path, text)) = text else {
        let seqs = SYNTHETIC
            .iter()
            .map(|s| sequence(s.split_whitespace().filter_map(Token::parse).collect()))
            .collect();
        return ("the built-in synthetic set".to_owned(), seqs);
    };
    let all: Vec<Sequence> = text
        .lines()
        .filter_map(|line| {
            let v: serde_json::Value = serde_json::from_str(line).ok()?;
            let tokens = v.get("sequence")?.as_array()?;
            let tokens: Vec<Token> = tokens
                .iter()
                .filter_map(|t| Token::parse(t.as_str()?))
                .collect();
            Some(sequence(tokens))
        })
        .collect();
    let n = all.len();
    let take = limit.min(n).max(1);
    let seqs = (0..take)
        .filter_map(|i| all.get(i * n / take).cloned())
        .collect();
    (format!("{path} ({n} read)"), seqs)
}
