//! Evaluation on the held-out test part of [`super::split`]: per-ecosystem precision,
//! recall, F1 and false-positive rate at a model's threshold, the false positives by name,
//! the malware missed (by source), and how small benign packages score. Used by
//! `cerebro-train eval` for a model file and by `cerebro-train baseline` for the
//! feature-count baseline, so both are judged by the same code on the same packages.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Serialize;

use super::data::{read_jsonl, Ecosystem, Example};
use super::metrics::{roc_auc, Counts, Summary};
use super::split::{split, Part, SplitOptions};
use super::trainer::predict;
use cerebro_archive::PerEcosystem;
use cerebro_model::tokenizer;
use cerebro_model::{Classifier, ModelError};

/// The dataset read and split.
#[derive(Debug, Clone)]
pub struct Dataset {
    pub examples: Vec<Example>,
    pub parts: Vec<Part>,
    pub cutoff: Option<String>,
    /// Lines skipped because the package could not be scanned.
    pub skipped: usize,
}

impl Dataset {
    /// Reads `path` (sorting tokens when `bag`) and splits it.
    pub fn load(path: &Path, bag: bool, opts: &SplitOptions) -> Result<Dataset, String> {
        let (examples, skipped) = read_jsonl(path, bag)?;
        let sp = split(&examples, opts);
        Ok(Dataset {
            examples,
            parts: sp.parts,
            cutoff: sp.cutoff,
            skipped,
        })
    }

    /// The examples of one part, with npm malware left out when `no_npm_malware` (the
    /// cross-ecosystem setting; use it for training and validation only).
    pub fn part(&self, part: Part, no_npm_malware: bool) -> Vec<&Example> {
        self.examples
            .iter()
            .zip(&self.parts)
            .filter(|(e, p)| {
                **p == part && !(no_npm_malware && e.malicious && e.ecosystem == Ecosystem::Npm)
            })
            .map(|(e, _)| e)
            .collect()
    }

    /// The test part plus, when `all_npm_malware`, the malicious npm packages of the training
    /// and validation parts (for a model trained without npm malware, all of it is unseen).
    /// Each with its part.
    pub fn eval_rows(&self, all_npm_malware: bool) -> Vec<(&Example, Part)> {
        self.examples
            .iter()
            .zip(&self.parts)
            .filter(|(e, p)| {
                **p == Part::Test
                    || (all_npm_malware
                        && e.malicious
                        && e.ecosystem == Ecosystem::Npm
                        && matches!(p, Part::Train | Part::Valid))
            })
            .map(|(e, p)| (e, *p))
            .collect()
    }
}

/// Scores examples with a classifier (batches of at most 8,192 padded ids).
pub fn score_examples(model: &dyn Classifier, rows: &[&Example]) -> Result<Vec<f32>, ModelError> {
    let ids: Vec<&[u32]> = rows.iter().map(|e| e.ids.as_slice()).collect();
    predict(model, &ids, 8192)
}

/// One package in a report.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    pub part: String,
    pub ecosystem: String,
    pub source: String,
    pub name: String,
    pub version: String,
    pub score: f32,
    /// Behaviour tokens read (after the cap).
    pub tokens: usize,
    pub uncapped_tokens: usize,
    pub files_parsed: Option<usize>,
    /// The sequence as read, cut to its first 60 tokens.
    pub sequence: String,
}

impl Row {
    fn new(e: &Example, part: Part, score: f32) -> Row {
        let vocab = tokenizer::vocab();
        let mut seq: Vec<&str> = e
            .ids
            .iter()
            .take(60)
            .map(|&i| vocab.get(i as usize).copied().unwrap_or("[UNK]"))
            .collect();
        if e.ids.len() > 60 {
            seq.push("…");
        }
        Row {
            part: format!("{part:?}").to_lowercase(),
            ecosystem: e.ecosystem.as_str().to_owned(),
            source: e.source.clone(),
            name: e.name.clone(),
            version: e.version.clone(),
            score,
            tokens: e.ids.len(),
            uncapped_tokens: e.uncapped_len,
            files_parsed: e.files_parsed,
            sequence: seq.join(" "),
        }
    }
}

/// Metrics of one ecosystem (or another slice) at the threshold.
#[derive(Debug, Clone, Serialize)]
pub struct Slice {
    pub name: String,
    #[serde(flatten)]
    pub summary: Summary,
    pub auc: f64,
}

impl Slice {
    /// Metrics of `scores`, the `i`th judged at `threshold(i)`.
    fn of(
        name: &str,
        scores: &[f32],
        malicious: &[bool],
        threshold: impl Fn(usize) -> f32,
    ) -> Slice {
        Slice {
            name: name.to_owned(),
            summary: Counts::at_each(scores, malicious, threshold).summary(),
            auc: roc_auc(scores, malicious),
        }
    }
}

/// Malware caught, by ecosystem and source.
#[derive(Debug, Clone, Serialize)]
pub struct SourceRecall {
    pub ecosystem: String,
    pub source: String,
    pub caught: usize,
    pub total: usize,
}

/// Benign packages of one size bucket.
#[derive(Debug, Clone, Serialize)]
pub struct SizeBucket {
    /// `tokens` or `files`.
    pub by: String,
    pub range: String,
    pub packages: usize,
    pub flagged: usize,
    pub mean_score: f64,
    pub max_score: f32,
}

/// Everything `eval` reports.
#[derive(Debug, Clone, Serialize)]
pub struct EvalReport {
    /// What was evaluated (the model file's description, or the baseline).
    pub model: String,
    /// Decision thresholds; each package is judged at its ecosystem's.
    pub thresholds: PerEcosystem<f32>,
    pub split_cutoff: Option<String>,
    /// The test part, per ecosystem, then both together (`all`).
    pub test: Vec<Slice>,
    /// The same without the packages whose sequence is empty (nothing to judge: most of
    /// them benign npm packages of types, data or native binaries).
    pub test_nonempty: Vec<Slice>,
    /// npm malware from the sources never trained on (sonatype, defcon33) against npm benign.
    pub npm_out_of_source: Option<Slice>,
    /// With `--all-npm-malware`: every malicious npm package (all parts) against the npm
    /// benign test packages.
    pub npm_all_malware: Option<Slice>,
    /// The validation part at the same threshold (when scored).
    pub valid: Vec<Slice>,
    pub recall_by_source: Vec<SourceRecall>,
    /// Benign test packages at or above the threshold, highest score first.
    pub false_positives: Vec<Row>,
    /// Malicious npm packages evaluated and missed, lowest score first.
    pub missed_npm: Vec<Row>,
    /// The smallest benign test packages with a non-empty sequence (fewest tokens, then
    /// fewest files, then the highest score); the empty ones all score the same and are counted in
    /// `benign_by_size`.
    pub smallest_benign: Vec<Row>,
    pub benign_by_size: Vec<SizeBucket>,
    /// Every package scored (validation, then the evaluated rows), for `--predictions`.
    #[serde(skip)]
    pub predictions: Vec<Prediction>,
}

/// One scored package, a line of `--predictions`.
#[derive(Debug, Clone, Serialize)]
pub struct Prediction {
    pub part: String,
    pub ecosystem: String,
    pub label: String,
    pub source: String,
    pub name: String,
    pub version: String,
    pub score: f32,
    /// With `--units`: the highest score of the package's units, and that unit's file
    /// (`null` when the package has no unit).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unit_max: Option<Option<f32>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unit_file: Option<Option<String>>,
}

impl Prediction {
    fn new(e: &Example, part: Part, score: f32) -> Prediction {
        Prediction {
            part: format!("{part:?}").to_lowercase(),
            ecosystem: e.ecosystem.as_str().to_owned(),
            label: if e.malicious { "malicious" } else { "benign" }.to_owned(),
            source: e.source.clone(),
            name: e.name.clone(),
            version: e.version.clone(),
            score,
            unit_max: None,
            unit_file: None,
        }
    }
}

/// The highest unit score of each example and the file of that unit (`None` for an example
/// without units). Identical units are scored once.
pub fn score_units(
    model: &dyn Classifier,
    rows: &[&Example],
) -> Result<Vec<Option<(f32, String)>>, ModelError> {
    let mut distinct: Vec<&[u32]> = Vec::new();
    let mut index: std::collections::HashMap<&[u32], usize> = std::collections::HashMap::new();
    for e in rows {
        for u in &e.units {
            index.entry(u.ids.as_slice()).or_insert_with(|| {
                distinct.push(u.ids.as_slice());
                distinct.len() - 1
            });
        }
    }
    let scores = super::trainer::predict_units(model, &distinct, 8192)?;
    Ok(rows
        .iter()
        .map(|e| {
            e.units
                .iter()
                .map(|u| (scores[index[u.ids.as_slice()]], &u.file))
                .max_by(|a, b| a.0.total_cmp(&b.0))
                .map(|(s, f)| (s, f.clone()))
        })
        .collect())
}

/// The predictions as JSON lines.
pub fn predictions_jsonl(r: &EvalReport) -> String {
    let mut out = String::new();
    for p in &r.predictions {
        out.push_str(&serde_json::to_string(p).unwrap_or_default());
        out.push('\n');
    }
    out
}

/// What to put in a report.
#[derive(Debug, Clone)]
pub struct ReportOptions {
    pub thresholds: PerEcosystem<f32>,
    /// Smallest benign test packages to list.
    pub smallest: usize,
}

fn slices(rows: &[(&Example, Part)], scores: &[f32], t: PerEcosystem<f32>) -> Vec<Slice> {
    let mut out = Vec::new();
    for eco in Ecosystem::ALL {
        let (s, m): (Vec<f32>, Vec<bool>) = rows
            .iter()
            .zip(scores)
            .filter(|((e, _), _)| e.ecosystem == eco)
            .map(|((e, _), s)| (*s, e.malicious))
            .unzip();
        if !s.is_empty() {
            out.push(Slice::of(eco.as_str(), &s, &m, |_| t.get(eco)));
        }
    }
    let (s, m): (Vec<f32>, Vec<bool>) = rows
        .iter()
        .zip(scores)
        .map(|((e, _), s)| (*s, e.malicious))
        .unzip();
    out.push(Slice::of("all", &s, &m, |i| t.get(rows[i].0.ecosystem)));
    out
}

/// A size range, both ends included (`None`: no upper end).
type Range = (usize, Option<usize>);

fn bucket_label(lo: usize, hi: Option<usize>) -> String {
    match hi {
        Some(h) if h == lo => format!("{lo}"),
        Some(h) => format!("{lo}–{h}"),
        None => format!("{lo}+"),
    }
}

/// Builds the report. `rows`/`scores`: the packages evaluated (the test part, and more npm
/// malware with their own part); `valid`/`valid_scores`: the validation part (may be empty).
pub fn report(
    model: &str,
    cutoff: Option<String>,
    rows: &[(&Example, Part)],
    scores: &[f32],
    valid: &[&Example],
    valid_scores: &[f32],
    opts: &ReportOptions,
) -> EvalReport {
    let t = opts.thresholds;
    let test: Vec<(&Example, Part)> = rows
        .iter()
        .copied()
        .filter(|(_, p)| *p == Part::Test)
        .collect();
    let test_scores: Vec<f32> = rows
        .iter()
        .zip(scores)
        .filter(|((_, p), _)| *p == Part::Test)
        .map(|(_, s)| *s)
        .collect();

    let npm_slice = |keep: &dyn Fn(&Example, Part) -> bool, name: &str| -> Option<Slice> {
        let (s, m): (Vec<f32>, Vec<bool>) = rows
            .iter()
            .zip(scores)
            .filter(|((e, p), _)| {
                e.ecosystem == Ecosystem::Npm
                    && ((!e.malicious && *p == Part::Test) || (e.malicious && keep(e, *p)))
            })
            .map(|((e, _), s)| (*s, e.malicious))
            .unzip();
        m.iter()
            .any(|&x| x)
            .then(|| Slice::of(name, &s, &m, |_| t.npm))
    };
    let npm_out_of_source = npm_slice(
        &|e, p| p == Part::Test && matches!(e.source.as_str(), "sonatype" | "defcon33"),
        "npm sonatype+defcon33",
    );
    let npm_all_malware = rows
        .iter()
        .any(|(e, p)| e.malicious && e.ecosystem == Ecosystem::Npm && *p != Part::Test)
        .then(|| npm_slice(&|_, _| true, "npm all malware"))
        .flatten();

    let valid_pairs: Vec<(&Example, Part)> = valid.iter().map(|e| (*e, Part::Valid)).collect();
    let valid_slices = if valid.is_empty() {
        Vec::new()
    } else {
        slices(&valid_pairs, valid_scores, t)
    };

    let mut by_source: BTreeMap<(String, String), (usize, usize)> = BTreeMap::new();
    for ((e, _), &s) in rows.iter().zip(scores).filter(|((e, _), _)| e.malicious) {
        let c = by_source
            .entry((e.ecosystem.as_str().to_owned(), e.source.clone()))
            .or_default();
        c.1 += 1;
        if s >= t.get(e.ecosystem) {
            c.0 += 1;
        }
    }
    let recall_by_source = by_source
        .into_iter()
        .map(|((ecosystem, source), (caught, total))| SourceRecall {
            ecosystem,
            source,
            caught,
            total,
        })
        .collect();

    let mut false_positives: Vec<Row> = test
        .iter()
        .zip(&test_scores)
        .filter(|((e, _), s)| !e.malicious && **s >= t.get(e.ecosystem))
        .map(|((e, p), s)| Row::new(e, *p, *s))
        .collect();
    false_positives.sort_by(|a, b| b.score.total_cmp(&a.score));
    let mut missed_npm: Vec<Row> = rows
        .iter()
        .zip(scores)
        .filter(|((e, _), s)| e.malicious && e.ecosystem == Ecosystem::Npm && **s < t.npm)
        .map(|((e, p), s)| Row::new(e, *p, *s))
        .collect();
    missed_npm.sort_by(|a, b| a.score.total_cmp(&b.score));

    let mut benign: Vec<(&Example, f32)> = test
        .iter()
        .zip(&test_scores)
        .filter(|((e, _), _)| !e.malicious)
        .map(|((e, _), s)| (*e, *s))
        .collect();
    // Smallest first; among equals, the highest score first (the riskiest small package).
    benign.sort_by(|a, b| {
        (a.0.uncapped_len, a.0.files_parsed.unwrap_or(0))
            .cmp(&(b.0.uncapped_len, b.0.files_parsed.unwrap_or(0)))
            .then(b.1.total_cmp(&a.1))
            .then(a.0.name.cmp(&b.0.name))
    });
    let smallest_benign = benign
        .iter()
        .filter(|(e, _)| !e.ids.is_empty())
        .take(opts.smallest)
        .map(|(e, s)| Row::new(e, Part::Test, *s))
        .collect();
    let mut benign_by_size = Vec::new();
    let buckets: [(&str, &[Range]); 2] = [
        (
            "tokens",
            &[
                (0, Some(0)),
                (1, Some(3)),
                (4, Some(10)),
                (11, Some(30)),
                (31, Some(100)),
                (101, Some(510)),
                (511, None),
            ],
        ),
        (
            "files",
            &[
                (0, Some(0)),
                (1, Some(1)),
                (2, Some(5)),
                (6, Some(20)),
                (21, Some(100)),
                (101, None),
            ],
        ),
    ];
    for (by, ranges) in buckets {
        for &(lo, hi) in ranges {
            let inside: Vec<(f32, bool)> = benign
                .iter()
                .filter(|(e, _)| {
                    let v = if by == "tokens" {
                        e.uncapped_len
                    } else {
                        e.files_parsed.unwrap_or(0)
                    };
                    v >= lo && hi.is_none_or(|h| v <= h)
                })
                .map(|(e, s)| (*s, *s >= t.get(e.ecosystem)))
                .collect();
            if inside.is_empty() {
                continue;
            }
            benign_by_size.push(SizeBucket {
                by: by.to_owned(),
                range: bucket_label(lo, hi),
                packages: inside.len(),
                flagged: inside.iter().filter(|x| x.1).count(),
                mean_score: inside.iter().map(|x| x.0 as f64).sum::<f64>() / inside.len() as f64,
                max_score: inside.iter().map(|x| x.0).fold(0f32, f32::max),
            });
        }
    }

    let predictions = valid
        .iter()
        .zip(valid_scores)
        .map(|(e, s)| Prediction::new(e, Part::Valid, *s))
        .chain(
            rows.iter()
                .zip(scores)
                .map(|((e, p), s)| Prediction::new(e, *p, *s)),
        )
        .collect();
    EvalReport {
        model: model.to_owned(),
        thresholds: t,
        split_cutoff: cutoff,
        test: slices(&test, &test_scores, t),
        test_nonempty: {
            let (r, s): (Vec<(&Example, Part)>, Vec<f32>) = test
                .iter()
                .zip(&test_scores)
                .filter(|((e, _), _)| !e.ids.is_empty())
                .map(|(r, s)| (*r, *s))
                .unzip();
            slices(&r, &s, t)
        },
        npm_out_of_source,
        npm_all_malware,
        valid: valid_slices,
        recall_by_source,
        false_positives,
        missed_npm,
        smallest_benign,
        benign_by_size,
        predictions,
    }
}

fn slice_line(s: &Slice) -> String {
    let c = &s.summary.counts;
    format!(
        "  {:<22} P {:.4}  R {:.4}  F1 {:.4}  FPR {:.2}% ({} of {})  AUC {:.4}  (tp {} fp {} tn {} fn {})",
        s.name,
        s.summary.precision,
        s.summary.recall,
        s.summary.f1,
        100.0 * s.summary.fpr,
        c.fp,
        c.fp + c.tn,
        s.auc,
        c.tp,
        c.fp,
        c.tn,
        c.fn_
    )
}

fn row_line(r: &Row) -> String {
    format!(
        "  {:.4}  {:<4} {:<16} {} {}  ({} tokens, {} files)  {}",
        r.score,
        r.ecosystem,
        r.source,
        r.name,
        r.version,
        r.uncapped_tokens,
        r.files_parsed.map_or("?".to_owned(), |f| f.to_string()),
        r.sequence
    )
}

/// The report as text, for a terminal.
pub fn render(r: &EvalReport) -> String {
    let mut s = String::new();
    s.push_str(&format!("model: {}\n", r.model));
    s.push_str(&format!(
        "thresholds: PyPI {:.4}, npm {:.4}; PyPI malware dated on or after {} is test\n",
        r.thresholds.pypi,
        r.thresholds.npm,
        r.split_cutoff.as_deref().unwrap_or("-")
    ));
    s.push_str("test:\n");
    for x in &r.test {
        s.push_str(&slice_line(x));
        s.push('\n');
    }
    s.push_str("test, non-empty sequences only:\n");
    for x in &r.test_nonempty {
        s.push_str(&slice_line(x));
        s.push('\n');
    }
    for x in r.npm_out_of_source.iter().chain(&r.npm_all_malware) {
        s.push_str(&slice_line(x));
        s.push('\n');
    }
    if !r.valid.is_empty() {
        s.push_str("validation (same thresholds):\n");
        for x in &r.valid {
            s.push_str(&slice_line(x));
            s.push('\n');
        }
    }
    s.push_str("malware caught by source:\n");
    for x in &r.recall_by_source {
        s.push_str(&format!(
            "  {:<4} {:<16} {} of {} ({:.1}%)\n",
            x.ecosystem,
            x.source,
            x.caught,
            x.total,
            100.0 * x.caught as f64 / x.total.max(1) as f64
        ));
    }
    s.push_str(&format!("false positives ({}):\n", r.false_positives.len()));
    for x in &r.false_positives {
        s.push_str(&row_line(x));
        s.push('\n');
    }
    s.push_str(&format!("missed npm malware ({}):\n", r.missed_npm.len()));
    for x in &r.missed_npm {
        s.push_str(&row_line(x));
        s.push('\n');
    }
    s.push_str("benign test packages by size:\n");
    for b in &r.benign_by_size {
        s.push_str(&format!(
            "  {:<6} {:>8}: {:>4} packages, {} flagged, mean score {:.4}, max {:.4}\n",
            b.by, b.range, b.packages, b.flagged, b.mean_score, b.max_score
        ));
    }
    s.push_str(&format!(
        "smallest benign test packages ({}):\n",
        r.smallest_benign.len()
    ));
    for x in &r.smallest_benign {
        s.push_str(&row_line(x));
        s.push('\n');
    }
    s
}

/// Settings of [`evaluate_model`].
#[derive(Debug, Clone)]
pub struct EvalOptions {
    pub data: std::path::PathBuf,
    pub split: SplitOptions,
    /// One threshold for both ecosystems instead of those stored in the model file.
    pub threshold: Option<f32>,
    /// Also score the malicious npm packages of the training and validation parts.
    pub all_npm_malware: bool,
    pub smallest: usize,
    /// Also score each package's units and put the highest in the predictions.
    pub units: bool,
    /// Score every package of the file, whatever its part (a file that is all test data,
    /// such as the needles, whose split means nothing on its own).
    pub every_part: bool,
}

impl Default for EvalOptions {
    fn default() -> Self {
        EvalOptions {
            data: "target/dataset/sequences.jsonl".into(),
            split: SplitOptions::default(),
            threshold: None,
            all_npm_malware: false,
            smallest: 20,
            units: false,
            every_part: false,
        }
    }
}

/// Scores the test (and validation) part with a model file and reports. The sequences are
/// read the way the model reads them (sorted for a bag model). A model with unit thresholds
/// is judged as the product judges (package score or best unit), unless `threshold` is
/// given.
pub fn evaluate_model(gguf: &[u8], opts: &EvalOptions) -> Result<EvalReport, String> {
    let model = cerebro_model::Model::from_gguf(gguf).map_err(|e| e.to_string())?;
    let info = model.info().clone();
    if info.config.vocab_size != tokenizer::vocab_size() {
        return Err(format!(
            "the model reads {} token ids, the tokenizer has {}",
            info.config.vocab_size,
            tokenizer::vocab_size()
        ));
    }
    let ds = Dataset::load(&opts.data, info.bag, &opts.split)?;
    let rows = if opts.every_part {
        ds.examples.iter().zip(ds.parts.iter().copied()).collect()
    } else {
        ds.eval_rows(opts.all_npm_malware)
    };
    let ex: Vec<&Example> = rows.iter().map(|(e, _)| *e).collect();
    let mut scores = score_examples(&model, &ex).map_err(|e| e.to_string())?;
    let valid = if opts.every_part {
        Vec::new()
    } else {
        ds.part(Part::Valid, false)
    };
    let mut valid_scores = score_examples(&model, &valid).map_err(|e| e.to_string())?;
    // The product's verdict where the model judges units: a package whose best unit reaches
    // the unit threshold is flagged as if its score had reached the package threshold (its
    // score is raised to it; nothing else changes).
    let judge_units = opts.threshold.is_none() && info.unit_thresholds.is_some();
    if let (true, Some(ut)) = (judge_units, info.unit_thresholds) {
        for (rows, scores) in [(&ex, &mut scores), (&valid, &mut valid_scores)] {
            let units = score_units(&model, rows).map_err(|e| e.to_string())?;
            for ((e, s), u) in rows.iter().zip(scores.iter_mut()).zip(units) {
                if u.is_some_and(|(us, _)| us >= ut.get(e.ecosystem)) {
                    *s = s.max(info.thresholds.get(e.ecosystem));
                }
            }
        }
    }
    let description = if info.description.is_empty() {
        "(no description)".to_owned()
    } else {
        info.description.clone()
    };
    let mut r = report(
        &description,
        ds.cutoff.clone(),
        &rows,
        &scores,
        &valid,
        &valid_scores,
        &ReportOptions {
            thresholds: opts.threshold.map_or(info.thresholds, PerEcosystem::both),
            smallest: opts.smallest,
        },
    );
    if opts.units || judge_units {
        // The predictions are the validation part, then the evaluated rows.
        let all: Vec<&Example> = valid.iter().copied().chain(ex.iter().copied()).collect();
        let units = score_units(&model, &all).map_err(|e| e.to_string())?;
        for (p, u) in r.predictions.iter_mut().zip(units) {
            p.unit_max = Some(u.as_ref().map(|(s, _)| *s));
            p.unit_file = Some(u.map(|(_, f)| f));
        }
    }
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ex(mal: bool, eco: Ecosystem, source: &str, name: &str, len: usize) -> Example {
        Example {
            malicious: mal,
            ecosystem: eco,
            source: source.into(),
            name: name.into(),
            version: "1".into(),
            added: None,
            ids: vec![9; len],
            uncapped_len: len,
            files_parsed: Some(1),
            units: Vec::new(),
        }
    }

    #[test]
    fn report_counts_slices_and_lists() {
        let v = [
            ex(true, Ecosystem::Npm, "spiderscan", "a", 5),
            ex(true, Ecosystem::Npm, "sonatype", "b", 5),
            ex(false, Ecosystem::Npm, "top-npm", "c", 0),
            ex(false, Ecosystem::Npm, "top-npm", "d", 9),
            ex(true, Ecosystem::Pypi, "pypi-malregistry", "e", 5),
            ex(false, Ecosystem::Pypi, "top-pypi", "f", 2),
            ex(true, Ecosystem::Npm, "spiderscan", "g", 5),
        ];
        let rows: Vec<(&Example, Part)> = v
            .iter()
            .enumerate()
            .map(|(i, e)| (e, if i == 6 { Part::Train } else { Part::Test }))
            .collect();
        let scores = [0.9, 0.2, 0.1, 0.7, 0.8, 0.3, 0.95];
        let r = report(
            "m",
            None,
            &rows,
            &scores,
            &[],
            &[],
            &ReportOptions {
                thresholds: PerEcosystem::both(0.5),
                smallest: 2,
            },
        );
        let npm = &r.test[1];
        assert_eq!(npm.name, "npm");
        assert_eq!(
            npm.summary.counts,
            Counts {
                tp: 1,
                fp: 1,
                tn: 1,
                fn_: 1
            }
        );
        assert_eq!(r.test[2].name, "all");
        assert_eq!(r.test[2].summary.counts.tp, 2);
        // The training-part sample only counts in the all-npm-malware slice.
        assert_eq!(r.npm_all_malware.as_ref().unwrap().summary.counts.tp, 2);
        assert_eq!(r.npm_out_of_source.as_ref().unwrap().summary.counts.fn_, 1);
        assert_eq!(r.false_positives.len(), 1);
        assert_eq!(r.false_positives[0].name, "d");
        assert_eq!(r.missed_npm.len(), 1);
        // "c" has an empty sequence: counted by size, not listed.
        assert_eq!(r.smallest_benign[0].name, "f");
        assert_eq!(r.smallest_benign[1].name, "d");
        assert_eq!(r.test_nonempty[1].summary.counts.tn, 0);
        assert!(render(&r).contains("false positives (1)"));
        assert_eq!(predictions_jsonl(&r).lines().count(), 7);
    }
}
