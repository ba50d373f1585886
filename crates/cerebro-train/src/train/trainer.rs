//! The training procedure: masked-token pre-training on the training sequences, then
//! fine-tuning with the classification head, early stopping and the threshold on the
//! validation part, and the test part scored by the f32 network and by the quantized file.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Instant;

use candle_core::backprop::GradStore;
use candle_core::{DType, Device, Tensor, Var};
use candle_nn::{AdamW, Optimizer, ParamsAdamW, VarBuilder, VarMap};
use serde::Serialize;

use super::data::{read_jsonl, Ecosystem, Example};
use super::metrics::{choose_thresholds, roc_auc, Counts, FpBudget, Summary};
use super::split::{split, Part, SplitOptions};
use super::Rng;
use cerebro_archive::PerEcosystem;
use cerebro_model::bert::{
    init_value, tensor_shapes, BertClassifier, Config, Dropout, Init, MlmHead, Mode,
};
use cerebro_model::quantized::{write_gguf, ModelInfo};
use cerebro_model::tokenizer::{self, CLS_ID, MASK_ID, SEP_ID};
use cerebro_model::{pad_batch, Classifier, Model, ModelError};

/// Why training stopped.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    #[error("{0}")]
    Data(String),
    #[error(transparent)]
    Model(#[from] ModelError),
    #[error(transparent)]
    Candle(#[from] candle_core::Error),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// What a training run learns from: whole packages, or their units.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnitTraining {
    /// Whole packages (the shipped networks).
    Off,
    /// Units. Every unit of a benign training package is benign; a unit of a malicious
    /// package is malicious unless the same behaviour occurs in a benign training package
    /// (its loader, its `__init__`), which would only teach the model to flag libraries.
    On,
    /// Units, and of a malicious package with several units only those a selector model
    /// (the shipped package network) scores highest: its most malicious unit and any at
    /// [`SELECTED_UNIT_SCORE`] or above. The others (an ordinary `setup.py` beside the
    /// payload) are left out rather than taught as malicious: one step of
    /// multiple-instance learning, the selector standing in for the labels units lack.
    Selected,
}

/// The selector's score at which a further unit of a malicious package is kept.
pub const SELECTED_UNIT_SCORE: f32 = 0.9;

/// The training part as units ([`UnitTraining::On`]): benign packages give every unit,
/// malicious packages the units no benign training package has. Packages without units give
/// nothing (no file of theirs does anything telling).
pub fn unit_examples(
    rows: &[&Example],
    selector: Option<&dyn Classifier>,
) -> Result<Vec<Example>, ModelError> {
    let benign: std::collections::HashSet<&[u32]> = rows
        .iter()
        .filter(|e| !e.malicious)
        .flat_map(|e| e.units.iter().map(|u| u.ids.as_slice()))
        .collect();
    // The selector's score of every distinct unit of a malicious package with several.
    let mut selected: HashMap<&[u32], f32> = HashMap::new();
    if let Some(model) = selector {
        let distinct: Vec<&[u32]> = rows
            .iter()
            .filter(|e| e.malicious && e.units.len() > 1)
            .flat_map(|e| e.units.iter().map(|u| u.ids.as_slice()))
            .filter(|ids| !ids.is_empty())
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect();
        let scores = predict(model, &distinct, 8192)?;
        selected = distinct.into_iter().zip(scores).collect();
    }
    let mut out = Vec::new();
    for e in rows {
        let top = e
            .units
            .iter()
            .filter_map(|u| selected.get(u.ids.as_slice()))
            .copied()
            .fold(f32::NEG_INFINITY, f32::max);
        for u in &e.units {
            if u.ids.is_empty() || (e.malicious && benign.contains(u.ids.as_slice())) {
                continue;
            }
            if e.malicious && e.units.len() > 1 {
                if let Some(&s) = selected.get(u.ids.as_slice()) {
                    if s < top && s < SELECTED_UNIT_SCORE {
                        continue;
                    }
                }
            }
            out.push(Example {
                ids: u.ids.clone(),
                uncapped_len: u.ids.len(),
                units: Vec::new(),
                ..(*e).clone()
            });
        }
    }
    Ok(out)
}

/// Install-time units as import-time ones: every `[INSTALL]` marker read as `[IMPORT]`
/// (a marker of the phase already running dropped, as the sequence stage writes them), for the units of both labels, so that the network learns
/// that a payload is what it is wherever it runs and not that import time is suspect. A
/// compromised wheel carries the payload of a `setup.py` in its `__init__.py`. A copy that
/// already occurs as a unit (of either label) is not added again, and a malicious copy that
/// a benign unit has is dropped, as [`unit_examples`] drops such units.
pub fn phase_copies(units: &[Example]) -> Vec<Example> {
    let install = tokenizer::token_id("[INSTALL]");
    let import = tokenizer::token_id("[IMPORT]");
    let markers: Vec<u32> = ["[INSTALL]", "[IMPORT]", "[RUN]"]
        .iter()
        .map(|m| tokenizer::token_id(m))
        .collect();
    let mut seen: std::collections::HashSet<(bool, Vec<u32>)> =
        units.iter().map(|e| (e.malicious, e.ids.clone())).collect();
    let benign: std::collections::HashSet<&[u32]> = units
        .iter()
        .filter(|e| !e.malicious)
        .map(|e| e.ids.as_slice())
        .collect();
    let mut out = Vec::new();
    for e in units {
        if !e.ids.contains(&install) {
            continue;
        }
        let mut ids: Vec<u32> = Vec::with_capacity(e.ids.len());
        let mut phase = None;
        for &id in &e.ids {
            let id = if id == install { import } else { id };
            if markers.contains(&id) {
                if phase == Some(id) {
                    continue;
                }
                phase = Some(id);
            }
            ids.push(id);
        }
        if e.malicious && benign.contains(ids.as_slice()) {
            continue;
        }
        if !seen.insert((e.malicious, ids.clone())) {
            continue;
        }
        out.push(Example {
            uncapped_len: ids.len(),
            ids,
            ..e.clone()
        });
    }
    out
}

/// Scores of whole packages: their own sequence, or with `units` their most malicious unit
/// (0 for a package without units, which the unit rule never flags).
pub fn score_packages(
    model: &dyn Classifier,
    rows: &[&Example],
    units: UnitTraining,
    max_tokens: usize,
) -> Result<Vec<f32>, ModelError> {
    match units {
        UnitTraining::Off => {
            let ids: Vec<&[u32]> = rows.iter().map(|e| e.ids.as_slice()).collect();
            predict(model, &ids, max_tokens)
        }
        UnitTraining::On | UnitTraining::Selected => Ok(super::eval::score_units(model, rows)?
            .into_iter()
            .map(|u| u.map_or(0.0, |(s, _)| s))
            .collect()),
    }
}

/// Everything a training run is told.
#[derive(Debug, Clone)]
pub struct TrainOptions {
    pub data: PathBuf,
    /// Where the quantized model file goes.
    pub model_out: PathBuf,
    /// Folder for the f32 weights, the f32 model file and `metrics.json`.
    pub out_dir: PathBuf,
    pub hidden: usize,
    pub layers: usize,
    pub heads: usize,
    pub intermediate: usize,
    pub dropout: f32,
    pub seed: u64,
    pub pretrain: bool,
    pub pretrain_epochs: usize,
    pub pretrain_lr: f64,
    pub epochs: usize,
    pub lr: f64,
    pub weight_decay: f64,
    /// Upper bound on padded tokens per batch.
    pub batch_tokens: usize,
    pub max_batch: usize,
    /// Epochs without a better validation score before fine-tuning stops.
    pub patience: usize,
    pub mask_prob: f64,
    pub bag: bool,
    /// False-positive budget on benign validation packages for the thresholds.
    pub budget: FpBudget,
    /// Exponent of the class/ecosystem balancing weights (0: none, 1: every
    /// ecosystem×label cell weighs the same in total).
    pub balance: f64,
    /// Keep one copy of identical (sequence, label, ecosystem) training examples, weighted by
    /// (number of copies)^`dup_power`.
    pub dedupe: bool,
    pub dup_power: f64,
    /// Choose the epoch by the mean per-ecosystem validation F1 at the threshold, instead of
    /// by the validation loss.
    pub select_by_f1: bool,
    /// Decay of the exponential moving average of the weights during fine-tuning, whose
    /// weights are the ones evaluated and kept; 0 turns it off.
    pub ema: f64,
    /// Use only this many examples (quick trials); 0 for all.
    pub limit: usize,
    /// Leave every malicious npm package out of training and validation (the
    /// cross-ecosystem test: npm benign packages stay, the test part is unchanged).
    pub no_npm_malware: bool,
    /// Train on units (one file's behaviour each) instead of whole packages, and judge a
    /// validation or test package by its most malicious unit: a payload of a few lines is
    /// learnt and judged on its own, not drowned by the library around it.
    pub units: UnitTraining,
    /// The model file that selects a malicious package's units ([`UnitTraining::Selected`]).
    pub unit_selector: Vec<u8>,
    /// With units: also train on every install-time unit as if it ran at import
    /// ([`phase_copies`]), so that a payload reads alike in `setup.py` and in `__init__.py`.
    pub phase_augment: bool,
    pub split: SplitOptions,
    /// Text stored in the model file's metadata.
    pub description: String,
}

impl Default for TrainOptions {
    fn default() -> Self {
        TrainOptions {
            data: "target/dataset/sequences.jsonl".into(),
            model_out: "models/cerebro.gguf".into(),
            out_dir: "target/train".into(),
            hidden: 256,
            layers: 4,
            heads: 4,
            intermediate: 1024,
            dropout: 0.1,
            seed: 17,
            pretrain: true,
            pretrain_epochs: 3,
            pretrain_lr: 5e-4,
            epochs: 6,
            lr: 2e-4,
            weight_decay: 0.01,
            batch_tokens: 8192,
            max_batch: 64,
            patience: 3,
            mask_prob: 0.15,
            bag: false,
            budget: FpBudget::DEFAULT,
            balance: 0.5,
            dedupe: true,
            dup_power: 0.5,
            select_by_f1: false,
            ema: 0.0,
            limit: 0,
            no_npm_malware: false,
            units: UnitTraining::Off,
            unit_selector: Vec::new(),
            phase_augment: false,
            split: SplitOptions::default(),
            description: String::new(),
        }
    }
}

/// Metrics of one model on one part.
#[derive(Debug, Clone, Serialize)]
pub struct PartMetrics {
    pub all: Summary,
    pub auc: f64,
    pub by_ecosystem: Vec<(String, Summary, f64)>,
    /// npm malware from sources other than the training one.
    pub npm_out_of_source: Option<Summary>,
}

/// What a run reports (also written as `metrics.json`).
#[derive(Debug, Clone, Serialize)]
pub struct TrainReport {
    pub config: ConfigReport,
    pub split_cutoff: Option<String>,
    /// part → ecosystem → label → count.
    pub split_sizes: Vec<(String, String, String, usize)>,
    pub dropped_noise: usize,
    pub skipped_unscanned: usize,
    /// Decision thresholds, chosen on validation (see [`choose_thresholds`]).
    pub thresholds: PerEcosystem<f32>,
    pub best_epoch: usize,
    pub pretrain_seconds: f64,
    pub finetune_seconds: f64,
    pub model_bytes: usize,
    pub valid: PartMetrics,
    pub test_f32: PartMetrics,
    pub test_quantized: PartMetrics,
    pub max_abs_prob_diff_f32_vs_quantized: f32,
}

#[derive(Debug, Clone, Serialize)]
pub struct ConfigReport {
    pub hidden: usize,
    pub layers: usize,
    pub heads: usize,
    pub intermediate: usize,
    pub parameters: usize,
    pub pretrain: bool,
    pub bag: bool,
}

/// One batch: rows of examples (indices).
type Batch = Vec<usize>;

/// Groups `lengths` (in ids, framing included) into batches of similar length, at most
/// `max_tokens` padded ids and `max_batch` rows each, in a random order. Lengths are sorted
/// within windows of a few hundred shuffled rows, so batches change from epoch to epoch.
pub fn make_batches(
    lengths: &[usize],
    max_tokens: usize,
    max_batch: usize,
    rng: &mut Rng,
) -> Vec<Batch> {
    let mut order: Vec<usize> = (0..lengths.len()).collect();
    rng.shuffle(&mut order);
    let window = (max_batch * 16).max(1);
    let mut batches = Vec::new();
    for chunk in order.chunks_mut(window) {
        chunk.sort_by_key(|&i| lengths[i]);
        let mut cur: Batch = Vec::new();
        let mut cur_max = 0usize;
        for &i in chunk.iter() {
            let l = lengths[i];
            let new_max = cur_max.max(l);
            if !cur.is_empty() && (new_max * (cur.len() + 1) > max_tokens || cur.len() >= max_batch)
            {
                batches.push(std::mem::take(&mut cur));
                cur_max = 0;
            }
            cur_max = cur_max.max(l);
            cur.push(i);
        }
        if !cur.is_empty() {
            batches.push(cur);
        }
    }
    rng.shuffle(&mut batches);
    batches
}

/// `[CLS] ids [SEP]`.
pub fn frame(ids: &[u32]) -> Vec<u32> {
    let mut v = Vec::with_capacity(ids.len() + 2);
    v.push(CLS_ID);
    v.extend_from_slice(ids);
    v.push(SEP_ID);
    v
}

/// Masks a framed sequence for pre-training: each behaviour token with probability `p` (at
/// least one), replaced by `[MASK]` 80% of the time, a random behaviour token 10%, kept 10%.
/// Returns the input and the (position, original id) pairs to predict.
pub fn mask_sequence(framed: &[u32], p: f64, rng: &mut Rng) -> (Vec<u32>, Vec<(usize, u32)>) {
    let mut input = framed.to_vec();
    let mut targets = Vec::new();
    let inner = 1..framed.len().saturating_sub(1);
    for pos in inner.clone() {
        if rng.unit() < p {
            targets.push(pos);
        }
    }
    if targets.is_empty() && !inner.is_empty() {
        targets.push(inner.start + rng.below(inner.len()));
    }
    let first = tokenizer::FIRST_BEHAVIOUR_ID as usize;
    let n_behaviour = tokenizer::vocab_size() - first;
    let out = targets
        .iter()
        .map(|&pos| {
            let r = rng.unit();
            if r < 0.8 {
                input[pos] = MASK_ID;
            } else if r < 0.9 {
                input[pos] = (first + rng.below(n_behaviour)) as u32;
            }
            (pos, framed[pos])
        })
        .collect();
    (input, out)
}

/// Sets every tensor to its seeded initial value (see [`init_value`]).
pub fn init_params(map: &VarMap, cfg: &Config, seed: u64) -> Result<(), TrainError> {
    let data = map
        .data()
        .lock()
        .map_err(|_| TrainError::Data("poisoned".into()))?;
    let mut rng = Rng::new(seed);
    for (name, shape) in tensor_shapes(cfg) {
        let Some(var) = data.get(&name) else { continue };
        let n: usize = shape.iter().product();
        let values: Vec<f32> = match init_value(&name) {
            Init::Zeros => vec![0.0; n],
            Init::Ones => vec![1.0; n],
            Init::Normal(std) => (0..n).map(|_| rng.normal() * std).collect(),
        };
        var.set(&Tensor::from_vec(values, shape.as_slice(), &Device::Cpu)?)?;
    }
    Ok(())
}

/// The variables of `map` by name, sorted (the tensors themselves, not copies): what
/// [`write_gguf`] takes.
pub fn named_tensors(map: &VarMap) -> Vec<(String, Tensor)> {
    let data = map.data().lock().unwrap_or_else(|p| p.into_inner());
    let mut v: Vec<(String, Tensor)> = data
        .iter()
        .map(|(k, v)| (k.clone(), v.as_tensor().clone()))
        .collect();
    v.sort_by(|a, b| a.0.cmp(&b.0));
    v
}

fn snapshot(map: &VarMap) -> Result<HashMap<String, Tensor>, TrainError> {
    let data = map
        .data()
        .lock()
        .map_err(|_| TrainError::Data("poisoned".into()))?;
    data.iter()
        .map(|(k, v)| Ok((k.clone(), v.as_tensor().copy()?)))
        .collect()
}

fn restore(map: &VarMap, snap: &HashMap<String, Tensor>) -> Result<(), TrainError> {
    let data = map
        .data()
        .lock()
        .map_err(|_| TrainError::Data("poisoned".into()))?;
    for (k, v) in data.iter() {
        if let Some(t) = snap.get(k) {
            v.set(t)?;
        }
    }
    Ok(())
}

/// `ema ← d·ema + (1−d)·weights`, for every tensor.
fn update_ema(map: &VarMap, ema: &mut HashMap<String, Tensor>, d: f64) -> Result<(), TrainError> {
    let data = map
        .data()
        .lock()
        .map_err(|_| TrainError::Data("poisoned".into()))?;
    for (k, v) in data.iter() {
        if let Some(e) = ema.get_mut(k) {
            *e = ((&*e * d)? + (v.as_tensor().detach() * (1.0 - d))?)?;
        }
    }
    Ok(())
}

/// Scales the gradients so that their global norm is at most `max_norm`; returns the norm.
fn clip_gradients(grads: &mut GradStore, vars: &[Var], max_norm: f64) -> Result<f64, TrainError> {
    let mut sq = 0f64;
    for v in vars {
        if let Some(g) = grads.get(v.as_tensor()) {
            sq += g.sqr()?.sum_all()?.to_scalar::<f32>()? as f64;
        }
    }
    let norm = sq.sqrt();
    if norm > max_norm {
        let scale = max_norm / (norm + 1e-6);
        for v in vars {
            if let Some(g) = grads.remove(v.as_tensor()) {
                grads.insert(v.as_tensor(), (g * scale)?);
            }
        }
    }
    Ok(norm)
}

/// Linear warm-up over the first 6% of steps, then linear decay to 10%.
fn learning_rate(base: f64, step: usize, total: usize) -> f64 {
    let warm = ((total as f64) * 0.06).max(1.0);
    let s = step as f64;
    if s < warm {
        base * (s + 1.0) / warm
    } else {
        let rest = ((total as f64 - s) / (total as f64 - warm).max(1.0)).clamp(0.0, 1.0);
        base * (0.1 + 0.9 * rest)
    }
}

/// Scores sequences (behaviour ids, unframed) with a classifier, in length-sorted batches.
pub fn predict(
    model: &dyn Classifier,
    seqs: &[&[u32]],
    max_tokens: usize,
) -> Result<Vec<f32>, ModelError> {
    predict_as(model, seqs, max_tokens, false)
}

/// [`predict`] for units: scored by the model's unit networks where it has them.
pub fn predict_units(
    model: &dyn Classifier,
    seqs: &[&[u32]],
    max_tokens: usize,
) -> Result<Vec<f32>, ModelError> {
    predict_as(model, seqs, max_tokens, true)
}

fn predict_as(
    model: &dyn Classifier,
    seqs: &[&[u32]],
    max_tokens: usize,
    units: bool,
) -> Result<Vec<f32>, ModelError> {
    let mut order: Vec<usize> = (0..seqs.len()).collect();
    order.sort_by_key(|&i| seqs[i].len());
    let mut out = vec![0f32; seqs.len()];
    let mut start = 0;
    while start < order.len() {
        let mut end = start;
        while end < order.len() {
            let l = (seqs[order[end]].len() + 2).min(model.max_len());
            if end > start && l * (end - start + 1) > max_tokens {
                break;
            }
            end += 1;
        }
        let batch: Vec<Vec<u32>> = order[start..end].iter().map(|&i| frame(seqs[i])).collect();
        let p = if units {
            model.unit_probabilities(&batch)?
        } else {
            model.probabilities(&batch)?
        };
        for (k, &i) in order[start..end].iter().enumerate() {
            out[i] = p[k];
        }
        start = end;
    }
    Ok(out)
}

fn part_metrics(examples: &[&Example], scores: &[f32], t: PerEcosystem<f32>) -> PartMetrics {
    let mal: Vec<bool> = examples.iter().map(|e| e.malicious).collect();
    let all = Counts::at_each(scores, &mal, |i| t.get(examples[i].ecosystem)).summary();
    let auc = roc_auc(scores, &mal);
    let mut by_ecosystem = Vec::new();
    for eco in Ecosystem::ALL {
        let (s, m): (Vec<f32>, Vec<bool>) = examples
            .iter()
            .zip(scores)
            .filter(|(e, _)| e.ecosystem == eco)
            .map(|(e, s)| (*s, e.malicious))
            .unzip();
        by_ecosystem.push((
            eco.as_str().to_owned(),
            Counts::at(&s, &m, t.get(eco)).summary(),
            roc_auc(&s, &m),
        ));
    }
    let (s, m): (Vec<f32>, Vec<bool>) = examples
        .iter()
        .zip(scores)
        .filter(|(e, _)| {
            e.ecosystem == Ecosystem::Npm
                && (!e.malicious || matches!(e.source.as_str(), "sonatype" | "defcon33"))
        })
        .map(|(e, s)| (*s, e.malicious))
        .unzip();
    let npm_out_of_source = m
        .iter()
        .any(|&x| x)
        .then(|| Counts::at(&s, &m, t.npm).summary());
    PartMetrics {
        all,
        auc,
        by_ecosystem,
        npm_out_of_source,
    }
}

/// Formats metrics on one line per ecosystem, for the log.
pub fn describe(name: &str, m: &PartMetrics) -> String {
    let mut s = format!(
        "{name}: all P {:.4} R {:.4} F1 {:.4} FPR {:.4} AUC {:.4}",
        m.all.precision, m.all.recall, m.all.f1, m.all.fpr, m.auc
    );
    for (eco, x, auc) in &m.by_ecosystem {
        s.push_str(&format!(
            "\n    {eco:>4}: P {:.4} R {:.4} F1 {:.4} FPR {:.4} AUC {:.4} (tp {} fp {} tn {} fn {})",
            x.precision, x.recall, x.f1, x.fpr, auc, x.counts.tp, x.counts.fp, x.counts.tn, x.counts.fn_
        ));
    }
    if let Some(x) = &m.npm_out_of_source {
        s.push_str(&format!(
            "\n    npm sonatype+defcon33 vs npm benign: P {:.4} R {:.4} F1 {:.4} (tp {} fn {})",
            x.precision, x.recall, x.f1, x.counts.tp, x.counts.fn_
        ));
    }
    s
}

/// Mean cross-entropy of probabilities (for validation), each example weighted.
fn weighted_log_loss(scores: &[f32], malicious: &[bool], weights: &[f32]) -> f64 {
    let mut num = 0f64;
    let mut den = 0f64;
    for ((&p, &m), &w) in scores.iter().zip(malicious).zip(weights) {
        let p = (p as f64).clamp(1e-7, 1.0 - 1e-7);
        num -= w as f64 * if m { p.ln() } else { (1.0 - p).ln() };
        den += w as f64;
    }
    num / den.max(1e-9)
}

/// Weight of each row: its multiplicity `m` (how many identical packages it stands for,
/// already raised to the chosen power), times the balancing factor of its (ecosystem, label)
/// cell, `(M / (cells · M_cell))^balance` where `M` sums multiplicities; scaled to mean 1.
pub fn cell_weights(rows: &[&Example], multiplicity: &[f64], balance: f64) -> Vec<f32> {
    let mut mass: HashMap<(Ecosystem, bool), f64> = HashMap::new();
    for (e, m) in rows.iter().zip(multiplicity) {
        *mass.entry((e.ecosystem, e.malicious)).or_default() += m;
    }
    let total: f64 = multiplicity.iter().sum();
    let cells = mass.len().max(1) as f64;
    let raw: Vec<f64> = rows
        .iter()
        .zip(multiplicity)
        .map(|(e, m)| m * (total / (cells * mass[&(e.ecosystem, e.malicious)])).powf(balance))
        .collect();
    let mean = raw.iter().sum::<f64>() / raw.len().max(1) as f64;
    raw.iter().map(|w| (w / mean) as f32).collect()
}

/// Keeps one row of identical (sequence, label, ecosystem) examples when `dedupe`, with its
/// multiplicity (the number of copies)^`power`; otherwise every row with multiplicity 1.
pub fn dedupe_rows<'a>(
    rows: &[&'a Example],
    dedupe: bool,
    power: f64,
) -> (Vec<&'a Example>, Vec<f64>) {
    let mut out: Vec<&Example> = Vec::new();
    let mut multiplicity: Vec<f64> = Vec::new();
    let mut first: HashMap<(&[u32], bool, Ecosystem), usize> = HashMap::new();
    for &e in rows {
        if !dedupe {
            out.push(e);
            multiplicity.push(1.0);
            continue;
        }
        let key = (e.ids.as_slice(), e.malicious, e.ecosystem);
        match first.get(&key) {
            Some(&i) => multiplicity[i] += 1.0,
            None => {
                first.insert(key, out.len());
                out.push(e);
                multiplicity.push(1.0);
            }
        }
    }
    let multiplicity = multiplicity.iter().map(|m| m.powf(power)).collect();
    (out, multiplicity)
}

/// Trains, evaluates, writes the model files; `log` receives progress lines.
pub fn train(opts: &TrainOptions, log: &dyn Fn(&str)) -> Result<TrainReport, TrainError> {
    let device = Device::Cpu;
    let (mut examples, skipped) = read_jsonl(&opts.data, opts.bag).map_err(TrainError::Data)?;
    if opts.limit > 0 && examples.len() > opts.limit {
        let mut rng = Rng::new(opts.seed ^ 0x11);
        rng.shuffle(&mut examples);
        examples.truncate(opts.limit);
    }
    log(&format!(
        "read {} packages from {} ({} not scanned, skipped)",
        examples.len(),
        opts.data.display(),
        skipped
    ));
    let sp = split(&examples, &opts.split);
    let mut sizes: HashMap<(String, String, String), usize> = HashMap::new();
    for (e, p) in examples.iter().zip(&sp.parts) {
        let part = format!("{p:?}").to_lowercase();
        let label = if e.malicious { "malicious" } else { "benign" };
        *sizes
            .entry((part, e.ecosystem.as_str().into(), label.into()))
            .or_default() += 1;
    }
    let mut split_sizes: Vec<(String, String, String, usize)> = sizes
        .into_iter()
        .map(|((a, b, c), n)| (a, b, c, n))
        .collect();
    split_sizes.sort();
    log(&format!(
        "split (PyPI malware dated on or after {:?} is test):",
        sp.cutoff
    ));
    for (p, e, l, n) in &split_sizes {
        log(&format!("    {p:>7} {e:>4} {l:>9} {n}"));
    }
    let dropped_noise = sp.parts.iter().filter(|p| **p == Part::Dropped).count();
    let of = |part: Part| -> Vec<&Example> {
        examples
            .iter()
            .zip(&sp.parts)
            .filter(|(_, p)| **p == part)
            .map(|(e, _)| e)
            .collect()
    };
    let mut train_rows = of(Part::Train);
    let mut valid_rows = of(Part::Valid);
    let test_rows = of(Part::Test);
    if opts.no_npm_malware {
        let npm_malware = |e: &&Example| e.malicious && e.ecosystem == Ecosystem::Npm;
        let before = train_rows.len() + valid_rows.len();
        train_rows.retain(|e| !npm_malware(e));
        valid_rows.retain(|e| !npm_malware(e));
        log(&format!(
            "cross-ecosystem: {} malicious npm packages left out of training and validation",
            before - train_rows.len() - valid_rows.len()
        ));
    }
    let unit_store: Vec<Example>;
    if opts.units != UnitTraining::Off {
        let selector = match opts.units {
            UnitTraining::Selected => Some(Model::from_gguf(&opts.unit_selector)?),
            _ => None,
        };
        unit_store = {
            let mut store =
                unit_examples(&train_rows, selector.as_ref().map(|m| m as &dyn Classifier))?;
            if opts.phase_augment {
                let copies = phase_copies(&store);
                log(&format!(
                    "units: {} install-time units also taught as import-time ones",
                    copies.len()
                ));
                store.extend(copies);
            }
            store
        };
        let malicious = unit_store.iter().filter(|e| e.malicious).count();
        log(&format!(
            "units: training on {} units of {} packages ({} malicious, {} benign); validation and test packages judged by their most malicious unit",
            unit_store.len(),
            train_rows.len(),
            malicious,
            unit_store.len() - malicious
        ));
        train_rows = unit_store.iter().collect();
    }
    if train_rows.is_empty() || valid_rows.is_empty() {
        return Err(TrainError::Data(
            "too few packages to train and validate".into(),
        ));
    }

    // The network.
    let mut cfg = Config::new(
        tokenizer::vocab_size(),
        opts.hidden,
        opts.layers,
        opts.heads,
        opts.intermediate,
    );
    cfg.dropout = opts.dropout;
    cfg.validate().map_err(TrainError::Data)?;
    let map = VarMap::new();
    let vb = VarBuilder::from_varmap(&map, DType::F32, &device);
    let net = BertClassifier::load(&vb, &cfg)?;
    let mlm = MlmHead::load(&vb, &cfg, net.bert.word_embeddings())?;
    init_params(&map, &cfg, opts.seed)?;
    let vars = map.all_vars();
    let parameters: usize = tensor_shapes(&cfg)
        .iter()
        .filter(|(n, _)| !n.starts_with("mlm."))
        .map(|(_, s)| s.iter().product::<usize>())
        .sum();
    log(&format!(
        "model: hidden {} layers {} heads {} intermediate {}, {} parameters (classifier)",
        cfg.hidden_size, cfg.num_layers, cfg.num_heads, cfg.intermediate_size, parameters
    ));
    let dropout = Dropout::new(cfg.dropout, opts.seed ^ 0xD0);
    let mut rng = Rng::new(opts.seed);

    // Pre-training: masked tokens over the distinct training sequences.
    let started = Instant::now();
    if opts.pretrain && opts.pretrain_epochs > 0 {
        let mut seen = std::collections::HashSet::new();
        let corpus: Vec<Vec<u32>> = train_rows
            .iter()
            .filter(|e| !e.ids.is_empty() && seen.insert(e.ids.clone()))
            .map(|e| frame(&e.ids))
            .collect();
        let valid_corpus: Vec<Vec<u32>> = valid_rows
            .iter()
            .filter(|e| !e.ids.is_empty())
            .map(|e| frame(&e.ids))
            .take(1000)
            .collect();
        let lengths: Vec<usize> = corpus.iter().map(Vec::len).collect();
        let per_epoch = make_batches(
            &lengths,
            opts.batch_tokens,
            opts.max_batch,
            &mut rng.clone(),
        )
        .len();
        let total = per_epoch * opts.pretrain_epochs;
        log(&format!(
            "pre-training on {} distinct sequences, {} batches an epoch, {} epochs",
            corpus.len(),
            per_epoch,
            opts.pretrain_epochs
        ));
        let mut opt = AdamW::new(
            vars.clone(),
            ParamsAdamW {
                lr: opts.pretrain_lr,
                weight_decay: opts.weight_decay,
                ..Default::default()
            },
        )?;
        let mut step = 0;
        for epoch in 0..opts.pretrain_epochs {
            let batches = make_batches(&lengths, opts.batch_tokens, opts.max_batch, &mut rng);
            let (mut loss_sum, mut n_loss) = (0f64, 0usize);
            let t0 = Instant::now();
            for (bi, batch) in batches.iter().enumerate() {
                opt.set_learning_rate(learning_rate(opts.pretrain_lr, step, total));
                let loss = mlm_loss(
                    &net,
                    &mlm,
                    &corpus,
                    batch,
                    opts.mask_prob,
                    &mut rng,
                    Mode::Train(&dropout),
                    &device,
                )?
                .0;
                let mut grads = loss.backward()?;
                clip_gradients(&mut grads, &vars, 1.0)?;
                opt.step(&grads)?;
                loss_sum += loss.to_scalar::<f32>()? as f64;
                n_loss += 1;
                step += 1;
                if (bi + 1) % 50 == 0 || bi + 1 == batches.len() {
                    log(&format!(
                        "  pretrain epoch {} batch {}/{} loss {:.4} ({:.0}s)",
                        epoch + 1,
                        bi + 1,
                        batches.len(),
                        loss_sum / n_loss as f64,
                        t0.elapsed().as_secs_f64()
                    ));
                    loss_sum = 0.0;
                    n_loss = 0;
                }
            }
            // Masked-token accuracy on validation sequences, with a fixed masking.
            let mut vrng = Rng::new(99);
            let vl: Vec<usize> = valid_corpus.iter().map(Vec::len).collect();
            let vb = make_batches(&vl, opts.batch_tokens, opts.max_batch, &mut vrng.clone());
            let (mut correct, mut count) = (0usize, 0usize);
            for batch in &vb {
                let (_, c, n) = mlm_loss(
                    &net,
                    &mlm,
                    &valid_corpus,
                    batch,
                    opts.mask_prob,
                    &mut vrng,
                    Mode::Eval,
                    &device,
                )?;
                correct += c;
                count += n;
            }
            log(&format!(
                "pretrain epoch {} done in {:.0}s: validation masked-token accuracy {:.4}",
                epoch + 1,
                t0.elapsed().as_secs_f64(),
                correct as f64 / count.max(1) as f64
            ));
        }
    }
    let pretrain_seconds = started.elapsed().as_secs_f64();

    // Fine-tuning.
    let started = Instant::now();
    let (ft_rows, multiplicity) = dedupe_rows(&train_rows, opts.dedupe, opts.dup_power);
    let weights = cell_weights(&ft_rows, &multiplicity, opts.balance);
    let ft_framed: Vec<Vec<u32>> = ft_rows.iter().map(|e| frame(&e.ids)).collect();
    let lengths: Vec<usize> = ft_framed.iter().map(Vec::len).collect();
    let valid_mal: Vec<bool> = valid_rows.iter().map(|e| e.malicious).collect();
    let valid_ecosystems: Vec<Ecosystem> = valid_rows.iter().map(|e| e.ecosystem).collect();
    let valid_weights = cell_weights(&valid_rows, &vec![1.0; valid_rows.len()], opts.balance);
    let per_epoch = make_batches(
        &lengths,
        opts.batch_tokens,
        opts.max_batch,
        &mut rng.clone(),
    )
    .len();
    let total = per_epoch * opts.epochs.max(1);
    log(&format!(
        "fine-tuning on {} packages ({} distinct), {} batches an epoch, up to {} epochs",
        train_rows.len(),
        ft_rows.len(),
        per_epoch,
        opts.epochs
    ));
    let mut opt = AdamW::new(
        vars.clone(),
        ParamsAdamW {
            lr: opts.lr,
            weight_decay: opts.weight_decay,
            ..Default::default()
        },
    )?;
    let info_for = |thresholds: PerEcosystem<f32>| ModelInfo {
        config: Config {
            dropout: 0.0,
            ..cfg
        },
        thresholds,
        // A unit network's thresholds are for units; as a model file of its own it judges
        // a whole package by them too (a package of one unit is that unit).
        unit_thresholds: (opts.units != UnitTraining::Off).then_some(thresholds),
        unit_networks: 0,
        bag: opts.bag,
        description: opts.description.clone(),
    };
    let mut best: Option<(f64, f64, usize, HashMap<String, Tensor>)> = None;
    let mut since_best = 0;
    // Exponential moving average of the weights, evaluated instead of the raw weights.
    let mut ema = (opts.ema > 0.0).then(|| snapshot(&map)).transpose()?;
    let mut ema_steps = 0usize;
    let mut step = 0;
    for epoch in 0..opts.epochs {
        let batches = make_batches(&lengths, opts.batch_tokens, opts.max_batch, &mut rng);
        let t0 = Instant::now();
        let (mut loss_sum, mut n_loss) = (0f64, 0usize);
        for (bi, batch) in batches.iter().enumerate() {
            opt.set_learning_rate(learning_rate(opts.lr, step, total));
            let rows: Vec<Vec<u32>> = batch.iter().map(|&i| ft_framed[i].clone()).collect();
            let (ids, mask) = pad_batch(&rows, cfg.max_position, &device)?;
            let logits = net.logits(&ids, &mask, Mode::Train(&dropout))?;
            let labels: Vec<u32> = batch.iter().map(|&i| ft_rows[i].malicious as u32).collect();
            let w: Vec<f32> = batch.iter().map(|&i| weights[i]).collect();
            let loss = weighted_cross_entropy(&logits, &labels, &w, &device)?;
            let mut grads = loss.backward()?;
            clip_gradients(&mut grads, &vars, 1.0)?;
            opt.step(&grads)?;
            if let Some(ema) = ema.as_mut() {
                ema_steps += 1;
                let d = opts
                    .ema
                    .min((1.0 + ema_steps as f64) / (10.0 + ema_steps as f64));
                update_ema(&map, ema, d)?;
            }
            loss_sum += loss.to_scalar::<f32>()? as f64;
            n_loss += 1;
            step += 1;
            if (bi + 1) % 50 == 0 || bi + 1 == batches.len() {
                log(&format!(
                    "  epoch {} batch {}/{} loss {:.4} ({:.0}s)",
                    epoch + 1,
                    bi + 1,
                    batches.len(),
                    loss_sum / n_loss as f64,
                    t0.elapsed().as_secs_f64()
                ));
                loss_sum = 0.0;
                n_loss = 0;
            }
        }
        let raw = match &ema {
            Some(ema) => {
                let raw = snapshot(&map)?;
                restore(&map, ema)?;
                Some(raw)
            }
            None => None,
        };
        let model = Model::new(net.clone(), info_for(PerEcosystem::both(0.5)));
        let scores = score_packages(&model, &valid_rows, opts.units, opts.batch_tokens)?;
        let t = choose_thresholds(&scores, &valid_mal, &valid_ecosystems, opts.budget);
        let m = part_metrics(&valid_rows, &scores, t);
        let vloss = weighted_log_loss(&scores, &valid_mal, &valid_weights);
        let f1s: Vec<f64> = m
            .by_ecosystem
            .iter()
            .filter(|x| x.1.counts.tp + x.1.counts.fn_ > 0)
            .map(|x| x.1.f1)
            .collect();
        let score = f1s.iter().sum::<f64>() / f1s.len().max(1) as f64;
        log(&format!(
            "epoch {} done in {:.0}s: validation loss {:.4}, thresholds PyPI {:.4} npm {:.4}, mean F1 {:.4}\n  {}",
            epoch + 1,
            t0.elapsed().as_secs_f64(),
            vloss,
            t.pypi,
            t.npm,
            score,
            describe("validation", &m)
        ));
        let better = match &best {
            None => true,
            Some((bs, bl, _, _)) if opts.select_by_f1 => {
                score > *bs + 1e-9 || (score >= *bs - 1e-9 && vloss < *bl)
            }
            Some((_, bl, _, _)) => vloss < *bl,
        };
        if better {
            best = Some((score, vloss, epoch + 1, snapshot(&map)?));
        }
        if let Some(raw) = raw {
            restore(&map, &raw)?;
        }
        if better {
            since_best = 0;
        } else {
            since_best += 1;
            if since_best >= opts.patience {
                log(&format!(
                    "no better validation score for {} epochs: stopping",
                    opts.patience
                ));
                break;
            }
        }
    }
    let finetune_seconds = started.elapsed().as_secs_f64();
    let (_, _, best_epoch, snap) = best.ok_or_else(|| TrainError::Data("no epoch ran".into()))?;
    restore(&map, &snap)?;
    log(&format!("best epoch {best_epoch}"));

    // Threshold on validation, then the test part.
    let f32_model = Model::new(net.clone(), info_for(PerEcosystem::both(0.5)));
    let vscores = score_packages(&f32_model, &valid_rows, opts.units, opts.batch_tokens)?;
    let thresholds = choose_thresholds(&vscores, &valid_mal, &valid_ecosystems, opts.budget);
    let valid = part_metrics(&valid_rows, &vscores, thresholds);
    log(&format!(
        "thresholds PyPI {:.4} npm {:.4}\n  {}",
        thresholds.pypi,
        thresholds.npm,
        describe("validation", &valid)
    ));

    std::fs::create_dir_all(&opts.out_dir).map_err(|source| TrainError::Io {
        path: opts.out_dir.clone(),
        source,
    })?;
    let st = opts.out_dir.join("cerebro-f32.safetensors");
    map.save(&st)?;
    let mut tensors: Vec<(String, Tensor)> = snap.into_iter().collect();
    tensors.sort_by(|a, b| a.0.cmp(&b.0));
    let info = info_for(thresholds);
    let q_bytes = write_gguf(&tensors, &info, true)?;
    let f_bytes = write_gguf(&tensors, &info, false)?;
    let write = |path: &PathBuf, bytes: &[u8]| -> Result<(), TrainError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|source| TrainError::Io {
                path: dir.into(),
                source,
            })?;
        }
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, bytes)
            .and_then(|_| std::fs::rename(&tmp, path))
            .map_err(|source| TrainError::Io {
                path: path.clone(),
                source,
            })
    };
    write(&opts.model_out, &q_bytes)?;
    write(&opts.out_dir.join("cerebro-f32.gguf"), &f_bytes)?;
    log(&format!(
        "wrote {} ({} bytes), {} and {}",
        opts.model_out.display(),
        q_bytes.len(),
        opts.out_dir.join("cerebro-f32.gguf").display(),
        st.display()
    ));

    let f32_scores = score_packages(&f32_model, &test_rows, opts.units, opts.batch_tokens)?;
    let test_f32 = part_metrics(&test_rows, &f32_scores, thresholds);
    let q_model = Model::from_gguf(&q_bytes)?;
    let q_scores = score_packages(&q_model, &test_rows, opts.units, opts.batch_tokens)?;
    let test_quantized = part_metrics(&test_rows, &q_scores, thresholds);
    let max_diff = f32_scores
        .iter()
        .zip(&q_scores)
        .map(|(a, b)| (a - b).abs())
        .fold(0f32, f32::max);
    log(&format!(
        "{}\n  {}",
        describe("test f32", &test_f32),
        describe("test quantized", &test_quantized)
    ));
    log(&format!("largest |p_f32 - p_q8| on test: {max_diff:.5}"));

    let report = TrainReport {
        config: ConfigReport {
            hidden: cfg.hidden_size,
            layers: cfg.num_layers,
            heads: cfg.num_heads,
            intermediate: cfg.intermediate_size,
            parameters,
            pretrain: opts.pretrain && opts.pretrain_epochs > 0,
            bag: opts.bag,
        },
        split_cutoff: sp.cutoff.clone(),
        split_sizes,
        dropped_noise,
        skipped_unscanned: skipped,
        thresholds,
        best_epoch,
        pretrain_seconds,
        finetune_seconds,
        model_bytes: q_bytes.len(),
        valid,
        test_f32,
        test_quantized,
        max_abs_prob_diff_f32_vs_quantized: max_diff,
    };
    let vocab = tokenizer::vocab();
    let mut lines = String::new();
    let rows = valid_rows
        .iter()
        .zip(vscores.iter().map(|&s| (s, None)))
        .map(|(e, s)| ("valid", *e, s))
        .chain(
            test_rows
                .iter()
                .zip(
                    f32_scores
                        .iter()
                        .zip(&q_scores)
                        .map(|(&a, &b)| (a, Some(b))),
                )
                .map(|(e, s)| ("test", *e, s)),
        );
    for (part, e, (score, quantized)) in rows {
        let tokens: Vec<&str> = e.ids.iter().map(|&i| vocab[i as usize]).collect();
        let line = serde_json::json!({
            "part": part,
            "ecosystem": e.ecosystem.as_str(),
            "label": if e.malicious { "malicious" } else { "benign" },
            "source": e.source,
            "name": e.name,
            "version": e.version,
            "score": score,
            "score_quantized": quantized,
            "sequence": tokens.join(" "),
        });
        lines.push_str(&line.to_string());
        lines.push('\n');
    }
    write(&opts.out_dir.join("predictions.jsonl"), lines.as_bytes())?;
    let json =
        serde_json::to_string_pretty(&report).map_err(|e| TrainError::Data(e.to_string()))?;
    write(&opts.out_dir.join("metrics.json"), json.as_bytes())?;
    Ok(report)
}

/// Cross-entropy of `(batch, 2)` logits against labels, each row weighted.
pub fn weighted_cross_entropy(
    logits: &Tensor,
    labels: &[u32],
    weights: &[f32],
    device: &Device,
) -> candle_core::Result<Tensor> {
    let n = labels.len();
    let logp = candle_nn::ops::log_softmax(logits, 1)?;
    let idx = Tensor::from_vec(labels.to_vec(), (n, 1), device)?;
    let picked = logp.gather(&idx, 1)?.squeeze(1)?;
    let w = Tensor::from_vec(weights.to_vec(), n, device)?;
    let total: f32 = weights.iter().sum();
    (picked * w)?.sum_all()? * (-1.0 / total.max(1e-9) as f64)
}

/// Masked-token loss of one batch; also the number of masked tokens predicted right and the
/// number masked.
#[allow(clippy::too_many_arguments)]
fn mlm_loss(
    net: &BertClassifier,
    mlm: &MlmHead,
    corpus: &[Vec<u32>],
    batch: &[usize],
    p: f64,
    rng: &mut Rng,
    mode: Mode,
    device: &Device,
) -> candle_core::Result<(Tensor, usize, usize)> {
    let mut inputs = Vec::with_capacity(batch.len());
    let mut positions = Vec::new();
    let mut targets = Vec::new();
    let len = batch.iter().map(|&i| corpus[i].len()).max().unwrap_or(1);
    for (row, &i) in batch.iter().enumerate() {
        let (input, t) = mask_sequence(&corpus[i], p, rng);
        for (pos, id) in t {
            positions.push((row * len + pos) as u32);
            targets.push(id);
        }
        inputs.push(input);
    }
    let (ids, mask) = pad_batch(&inputs, net.bert.config().max_position, device)?;
    let hidden = net.bert.forward(&ids, &mask, mode)?;
    let (b, l, h) = hidden.dims3()?;
    let n = positions.len();
    let picked = hidden
        .reshape((b * l, h))?
        .index_select(&Tensor::from_vec(positions, n, device)?, 0)?;
    let logits = mlm.forward(&picked, mode)?;
    let target = Tensor::from_vec(targets.clone(), n, device)?;
    let loss = candle_nn::loss::cross_entropy(&logits, &target)?;
    let pred: Vec<u32> = logits.argmax(1)?.to_vec1()?;
    let correct = pred.iter().zip(&targets).filter(|(a, b)| a == b).count();
    Ok((loss, correct, n))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_cover_every_row_once_within_budget() {
        let lengths: Vec<usize> = (0..500).map(|i| 3 + (i * 37) % 200).collect();
        let mut rng = Rng::new(1);
        let batches = make_batches(&lengths, 1024, 32, &mut rng);
        let mut seen = vec![0; lengths.len()];
        for b in &batches {
            assert!(b.len() <= 32);
            let max = b.iter().map(|&i| lengths[i]).max().unwrap();
            assert!(b.len() == 1 || max * b.len() <= 1024);
            for &i in b {
                seen[i] += 1;
            }
        }
        assert!(seen.iter().all(|&c| c == 1));
    }

    #[test]
    fn masking_follows_the_recipe() {
        let framed = frame(&[5, 6, 7, 8, 9, 10, 11, 12]);
        let mut rng = Rng::new(3);
        let (mut masked, mut kept, mut total) = (0, 0, 0);
        for _ in 0..2000 {
            let (input, targets) = mask_sequence(&framed, 0.15, &mut rng);
            assert_eq!(input[0], CLS_ID);
            assert_eq!(*input.last().unwrap(), SEP_ID);
            assert!(!targets.is_empty());
            for (pos, id) in targets {
                assert_eq!(framed[pos], id);
                total += 1;
                if input[pos] == MASK_ID {
                    masked += 1;
                } else if input[pos] == id {
                    kept += 1;
                }
            }
        }
        let m = masked as f64 / total as f64;
        assert!((0.75..0.85).contains(&m), "{m}");
        assert!(kept as f64 / (total as f64) < 0.2);
    }

    #[test]
    fn learning_rate_warms_up_and_decays() {
        assert!(learning_rate(1.0, 0, 100) < 0.2);
        assert!((learning_rate(1.0, 6, 100) - 1.0).abs() < 0.05);
        assert!((learning_rate(1.0, 99, 100) - 0.1).abs() < 0.02);
    }

    /// A PyPI example with these ids and nothing else.
    fn example(malicious: bool, ids: Vec<u32>) -> Example {
        Example {
            malicious,
            ecosystem: Ecosystem::Pypi,
            source: String::new(),
            name: String::new(),
            version: String::new(),
            added: None,
            uncapped_len: ids.len(),
            ids,
            files_parsed: None,
            units: Vec::new(),
        }
    }

    #[test]
    fn weights_balance_cells() {
        let mk = |m: bool| example(m, Vec::new());
        let rows = [mk(true), mk(true), mk(true), mk(false)];
        let refs: Vec<&Example> = rows.iter().collect();
        let w = cell_weights(&refs, &[1.0; 4], 1.0);
        let mal: f32 = w[..3].iter().sum();
        assert!((mal - w[3]).abs() < 1e-5);
        let w0 = cell_weights(&refs, &[1.0; 4], 0.0);
        assert!(w0.iter().all(|&x| (x - 1.0).abs() < 1e-6));
    }

    #[test]
    fn phase_copies_read_install_time_units_as_import_time_ones() {
        let mk = |m: bool, toks: &[&str]| {
            example(m, toks.iter().map(|t| tokenizer::token_id(t)).collect())
        };
        let units = [
            // Copied: [INSTALL] becomes [IMPORT], and the then repeated [IMPORT] goes.
            mk(true, &["[INSTALL]", "P1", "P2", "[IMPORT]", "D2"]),
            // Not copied: no install-time part.
            mk(true, &["[IMPORT]", "P4"]),
            // Dropped: its copy is a benign unit.
            mk(true, &["[INSTALL]", "R1", "D2"]),
            mk(false, &["[IMPORT]", "R1", "D2"]),
            // Benign units are copied too.
            mk(false, &["[INSTALL]", "H1"]),
            // Not added twice: its copy already occurs with the same label.
            mk(false, &["[IMPORT]", "H1", "P2"]),
            mk(false, &["[INSTALL]", "H1", "P2"]),
        ];
        let copies = phase_copies(&units);
        let got: Vec<(bool, Vec<u32>)> = copies
            .iter()
            .map(|e| (e.malicious, e.ids.clone()))
            .collect();
        let want = vec![
            (true, mk(true, &["[IMPORT]", "P1", "P2", "D2"]).ids),
            (false, mk(false, &["[IMPORT]", "H1"]).ids),
        ];
        assert_eq!(got, want);
        assert!(copies.iter().all(|e| e.uncapped_len == e.ids.len()));
    }
}
