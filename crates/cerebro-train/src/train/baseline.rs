//! The baseline the BERT has to beat: L2-regularised logistic regression on feature counts,
//! on the same split, with the same example weights and the same threshold rule.
//!
//! Inputs, from the behaviour tokens the BERT reads (the capped sequence):
//! - for each of the 20 features, `ln(1 + count)` in each phase (install, import, the rest;
//!   tokens before any marker count as the rest) and over the whole sequence;
//! - `ln(1 + length)`, `ln(1 + [GAP] count)`, and whether each phase is present;
//! - with `bigrams`, `ln(1 + count)` of each ordered pair of consecutive tokens (markers and
//!   features): the cheapest way for a linear model to see order.
//!
//! Fitting is Newton's method (the Hessian is at most a few hundred wide) with a step
//! halving guard; the L2 strength is chosen by the validation loss, the threshold by
//! [`choose_thresholds`] on validation exactly as for the BERT.

use std::path::PathBuf;

use serde::Serialize;

use super::data::{Ecosystem, Example};
use super::eval::{report, Dataset, EvalReport, ReportOptions};
use super::metrics::{choose_thresholds, FpBudget};
use super::split::{Part, SplitOptions};
use super::trainer::{cell_weights, dedupe_rows};
use cerebro_model::tokenizer::{self, FIRST_BEHAVIOUR_ID, MARKERS};

/// Id of the first feature token (after the phase markers and `[GAP]`).
const FIRST_FEATURE: u32 = FIRST_BEHAVIOUR_ID + MARKERS.len() as u32;

/// Settings of a baseline run.
#[derive(Debug, Clone)]
pub struct BaselineOptions {
    pub data: PathBuf,
    pub split: SplitOptions,
    pub bigrams: bool,
    /// Candidate L2 strengths (on the mean weighted loss); the best on validation is kept.
    pub lambdas: Vec<f64>,
    pub balance: f64,
    pub dedupe: bool,
    pub dup_power: f64,
    pub budget: FpBudget,
    pub no_npm_malware: bool,
    pub all_npm_malware: bool,
    pub smallest: usize,
}

impl Default for BaselineOptions {
    fn default() -> Self {
        BaselineOptions {
            data: "target/dataset/sequences.jsonl".into(),
            split: SplitOptions::default(),
            bigrams: false,
            lambdas: vec![1e-5, 1e-4, 1e-3, 1e-2, 1e-1],
            balance: 0.5,
            dedupe: true,
            dup_power: 0.5,
            budget: FpBudget::DEFAULT,
            no_npm_malware: false,
            all_npm_malware: false,
            smallest: 20,
        }
    }
}

/// What a baseline run reports.
#[derive(Debug, Clone, Serialize)]
pub struct BaselineReport {
    pub inputs: usize,
    /// (λ, weighted validation log loss) for each candidate.
    pub validation_loss: Vec<(f64, f64)>,
    pub lambda: f64,
    /// The largest coefficients by magnitude (inputs are on comparable log scales).
    pub top_weights: Vec<(String, f64)>,
    pub seconds: f64,
    pub eval: EvalReport,
}

/// A sparse input row: (index, value), indices increasing.
type SparseRow = Vec<(usize, f64)>;

/// The inputs of the model: names and how to compute them.
#[derive(Debug, Clone)]
pub struct Featurizer {
    pub bigrams: bool,
}

const PHASES: [&str; 3] = ["install", "import", "rest"];

impl Featurizer {
    fn n_features() -> usize {
        tokenizer::vocab_size() - FIRST_FEATURE as usize
    }

    /// Tokens that take part in bigrams: the phase markers, `[GAP]` and the features.
    fn n_bigram_tokens() -> usize {
        tokenizer::vocab_size() - FIRST_BEHAVIOUR_ID as usize
    }

    fn dense_len() -> usize {
        // bias, phase×feature, feature totals, length, gaps, 3 phase flags.
        1 + 3 * Self::n_features() + Self::n_features() + 2 + 3
    }

    pub fn len(&self) -> usize {
        Self::dense_len()
            + if self.bigrams {
                Self::n_bigram_tokens() * Self::n_bigram_tokens()
            } else {
                0
            }
    }

    pub fn is_empty(&self) -> bool {
        false
    }

    pub fn names(&self) -> Vec<String> {
        let vocab = tokenizer::vocab();
        let nf = Self::n_features();
        let feat = |i: usize| vocab[FIRST_FEATURE as usize + i].to_owned();
        let mut out = vec!["bias".to_owned()];
        for p in PHASES {
            for f in 0..nf {
                out.push(format!("{p}:{}", feat(f)));
            }
        }
        for f in 0..nf {
            out.push(format!("all:{}", feat(f)));
        }
        out.push("length".into());
        out.push("gaps".into());
        for p in PHASES {
            out.push(format!("has {p}"));
        }
        if self.bigrams {
            let nb = Self::n_bigram_tokens();
            for a in 0..nb {
                for b in 0..nb {
                    let base = FIRST_BEHAVIOUR_ID as usize;
                    out.push(format!("{}>{}", vocab[base + a], vocab[base + b]));
                }
            }
        }
        out
    }

    /// The inputs of one behaviour sequence.
    pub fn row(&self, ids: &[u32]) -> SparseRow {
        let nf = Self::n_features();
        let first = FIRST_FEATURE;
        let install = tokenizer::token_id("[INSTALL]");
        let import = tokenizer::token_id("[IMPORT]");
        let run = tokenizer::token_id("[RUN]");
        let gap = tokenizer::token_id("[GAP]");
        let mut phase_counts = vec![0f64; 3 * nf];
        let mut totals = vec![0f64; nf];
        let mut present = [0f64; 3];
        let mut gaps = 0f64;
        let mut phase = 2;
        for &id in ids {
            if id == install {
                phase = 0;
                present[0] = 1.0;
            } else if id == import {
                phase = 1;
                present[1] = 1.0;
            } else if id == run {
                phase = 2;
                present[2] = 1.0;
            } else if id == gap {
                gaps += 1.0;
            } else if id >= first && ((id - first) as usize) < nf {
                let f = (id - first) as usize;
                phase_counts[phase * nf + f] += 1.0;
                totals[f] += 1.0;
            }
        }
        let mut row: SparseRow = vec![(0, 1.0)];
        let mut at = 1;
        for v in phase_counts.iter().chain(&totals) {
            if *v > 0.0 {
                row.push((at, v.ln_1p()));
            }
            at += 1;
        }
        row.push((at, (ids.len() as f64).ln_1p()));
        at += 1;
        if gaps > 0.0 {
            row.push((at, gaps.ln_1p()));
        }
        at += 1;
        for p in present {
            if p > 0.0 {
                row.push((at, p));
            }
            at += 1;
        }
        if self.bigrams {
            let nb = Self::n_bigram_tokens();
            let base = FIRST_BEHAVIOUR_ID;
            let mut pairs: Vec<usize> = ids
                .windows(2)
                .filter(|w| w[0] >= base && w[1] >= base)
                .map(|w| (w[0] - base) as usize * nb + (w[1] - base) as usize)
                .filter(|&k| k < nb * nb)
                .collect();
            pairs.sort_unstable();
            let mut i = 0;
            while i < pairs.len() {
                let mut j = i;
                while j < pairs.len() && pairs[j] == pairs[i] {
                    j += 1;
                }
                row.push((at + pairs[i], ((j - i) as f64).ln_1p()));
                i = j;
            }
        }
        row
    }
}

fn sigmoid(z: f64) -> f64 {
    if z >= 0.0 {
        1.0 / (1.0 + (-z).exp())
    } else {
        let e = z.exp();
        e / (1.0 + e)
    }
}

fn dot(w: &[f64], x: &SparseRow) -> f64 {
    x.iter().map(|&(i, v)| w[i] * v).sum()
}

/// Mean weighted logistic loss plus `λ/2·|w|²` (the bias not penalised).
fn objective(w: &[f64], xs: &[SparseRow], y: &[bool], s: &[f64], lambda: f64) -> f64 {
    let total: f64 = s.iter().sum();
    let mut loss = 0.0;
    for ((x, &yi), &si) in xs.iter().zip(y).zip(s) {
        let z = dot(w, x);
        // ln(1 + e^z) − y·z, stably.
        let softplus = if z > 0.0 {
            z + (-z).exp().ln_1p()
        } else {
            z.exp().ln_1p()
        };
        loss += si * (softplus - if yi { z } else { 0.0 });
    }
    loss / total + 0.5 * lambda * w[1..].iter().map(|v| v * v).sum::<f64>()
}

/// Solves `a·x = b` for a symmetric positive definite `a` (row-major, n×n) by Cholesky.
pub fn cholesky_solve(a: &[f64], b: &[f64]) -> Option<Vec<f64>> {
    let n = b.len();
    let mut l = vec![0f64; n * n];
    for i in 0..n {
        for j in 0..=i {
            let mut sum = a[i * n + j];
            for k in 0..j {
                sum -= l[i * n + k] * l[j * n + k];
            }
            if i == j {
                if sum <= 0.0 {
                    return None;
                }
                l[i * n + i] = sum.sqrt();
            } else {
                l[i * n + j] = sum / l[j * n + j];
            }
        }
    }
    let mut y = vec![0f64; n];
    for i in 0..n {
        let mut sum = b[i];
        for k in 0..i {
            sum -= l[i * n + k] * y[k];
        }
        y[i] = sum / l[i * n + i];
    }
    let mut x = vec![0f64; n];
    for i in (0..n).rev() {
        let mut sum = y[i];
        for k in i + 1..n {
            sum -= l[k * n + i] * x[k];
        }
        x[i] = sum / l[i * n + i];
    }
    Some(x)
}

/// Fits the weights by Newton's method.
pub fn fit(xs: &[SparseRow], y: &[bool], s: &[f64], dim: usize, lambda: f64) -> Vec<f64> {
    let total: f64 = s.iter().sum::<f64>().max(1e-12);
    let mut w = vec![0f64; dim];
    let mut obj = objective(&w, xs, y, s, lambda);
    for _ in 0..100 {
        let mut g = vec![0f64; dim];
        let mut h = vec![0f64; dim * dim];
        for ((x, &yi), &si) in xs.iter().zip(y).zip(s) {
            let p = sigmoid(dot(&w, x));
            let r = si * (p - if yi { 1.0 } else { 0.0 }) / total;
            let c = si * (p * (1.0 - p)).max(1e-12) / total;
            for &(i, vi) in x {
                g[i] += r * vi;
                for &(j, vj) in x {
                    if j <= i {
                        h[i * dim + j] += c * vi * vj;
                    }
                }
            }
        }
        for i in 0..dim {
            let reg = if i == 0 { 1e-9 } else { lambda.max(1e-9) };
            h[i * dim + i] += reg;
            if i > 0 {
                g[i] += lambda * w[i];
            }
            for j in 0..i {
                h[j * dim + i] = h[i * dim + j];
            }
        }
        let Some(step) = cholesky_solve(&h, &g) else {
            break;
        };
        // Newton step, halved while it does not lower the objective.
        let mut scale = 1.0;
        let (next, o) = loop {
            let next: Vec<f64> = w.iter().zip(&step).map(|(a, d)| a - scale * d).collect();
            let o = objective(&next, xs, y, s, lambda);
            if o <= obj + 1e-12 || scale < 1e-4 {
                break (next, o);
            }
            scale *= 0.5;
        };
        let change = step.iter().map(|d| (d * scale).abs()).fold(0f64, f64::max);
        let gain = obj - o;
        w = next;
        obj = o;
        if change < 1e-8 || gain.abs() < 1e-12 {
            break;
        }
    }
    w
}

/// Probabilities of rows under weights `w`.
pub fn predict(w: &[f64], xs: &[SparseRow]) -> Vec<f32> {
    xs.iter().map(|x| sigmoid(dot(w, x)) as f32).collect()
}

fn weighted_log_loss(p: &[f32], y: &[bool], s: &[f32]) -> f64 {
    let mut num = 0.0;
    let mut den = 0.0;
    for ((&p, &y), &s) in p.iter().zip(y).zip(s) {
        let p = (p as f64).clamp(1e-7, 1.0 - 1e-7);
        num -= s as f64 * if y { p.ln() } else { (1.0 - p).ln() };
        den += s as f64;
    }
    num / den.max(1e-12)
}

/// Fits the baseline and evaluates it on the test part.
pub fn run(opts: &BaselineOptions, log: &dyn Fn(&str)) -> Result<BaselineReport, String> {
    let started = std::time::Instant::now();
    let ds = Dataset::load(&opts.data, false, &opts.split)?;
    let train = ds.part(Part::Train, opts.no_npm_malware);
    let valid = ds.part(Part::Valid, opts.no_npm_malware);
    let feat = Featurizer {
        bigrams: opts.bigrams,
    };
    let dim = feat.len();
    let (rows, multiplicity) = dedupe_rows(&train, opts.dedupe, opts.dup_power);
    let s: Vec<f64> = cell_weights(&rows, &multiplicity, opts.balance)
        .iter()
        .map(|&w| w as f64)
        .collect();
    let xs: Vec<SparseRow> = rows.iter().map(|e| feat.row(&e.ids)).collect();
    let y: Vec<bool> = rows.iter().map(|e| e.malicious).collect();
    log(&format!(
        "baseline: {} inputs, {} training packages ({} distinct), {} validation",
        dim,
        train.len(),
        rows.len(),
        valid.len()
    ));
    let vx: Vec<SparseRow> = valid.iter().map(|e| feat.row(&e.ids)).collect();
    let vy: Vec<bool> = valid.iter().map(|e| e.malicious).collect();
    let vs = cell_weights(&valid, &vec![1.0; valid.len()], opts.balance);
    let mut best: Option<(f64, f64, Vec<f64>)> = None;
    let mut validation_loss = Vec::new();
    for &lambda in &opts.lambdas {
        let w = fit(&xs, &y, &s, dim, lambda);
        let loss = weighted_log_loss(&predict(&w, &vx), &vy, &vs);
        log(&format!("  λ {lambda:e}: validation loss {loss:.4}"));
        validation_loss.push((lambda, loss));
        if best.as_ref().is_none_or(|b| loss < b.1) {
            best = Some((lambda, loss, w));
        }
    }
    let (lambda, _, w) = best.ok_or("no L2 strength to try")?;
    let vp = predict(&w, &vx);
    let ecosystems: Vec<Ecosystem> = valid.iter().map(|e| e.ecosystem).collect();
    let thresholds = choose_thresholds(&vp, &vy, &ecosystems, opts.budget);
    log(&format!(
        "λ {lambda:e}, thresholds PyPI {:.4} npm {:.4}",
        thresholds.pypi, thresholds.npm
    ));

    let eval_rows = ds.eval_rows(opts.all_npm_malware);
    let ex: Vec<&Example> = eval_rows.iter().map(|(e, _)| *e).collect();
    let ep = predict(&w, &ex.iter().map(|e| feat.row(&e.ids)).collect::<Vec<_>>());
    let names = feat.names();
    let mut top: Vec<(String, f64)> = names.into_iter().zip(w.iter().copied()).collect();
    top.sort_by(|a, b| b.1.abs().total_cmp(&a.1.abs()));
    top.truncate(25);
    let description = format!(
        "logistic regression on feature counts{} (λ {lambda:e}){}",
        if opts.bigrams { " and bigrams" } else { "" },
        if opts.no_npm_malware {
            ", no npm malware in training"
        } else {
            ""
        }
    );
    let eval = report(
        &description,
        ds.cutoff.clone(),
        &eval_rows,
        &ep,
        &valid,
        &vp,
        &ReportOptions {
            thresholds,
            smallest: opts.smallest,
        },
    );
    Ok(BaselineReport {
        inputs: dim,
        validation_loss,
        lambda,
        top_weights: top,
        seconds: started.elapsed().as_secs_f64(),
        eval,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cholesky_solves() {
        let a = [4.0, 2.0, 2.0, 3.0];
        let x = cholesky_solve(&a, &[2.0, 1.0]).unwrap();
        assert!((4.0 * x[0] + 2.0 * x[1] - 2.0).abs() < 1e-12);
        assert!((2.0 * x[0] + 3.0 * x[1] - 1.0).abs() < 1e-12);
        assert!(cholesky_solve(&[-1.0], &[1.0]).is_none());
    }

    #[test]
    fn rows_count_by_phase() {
        let f = Featurizer { bigrams: true };
        let ids: Vec<u32> = ["[INSTALL]", "H1", "R5", "H1", "[RUN]", "D2", "[GAP]", "D2"]
            .iter()
            .map(|t| tokenizer::token_id(t))
            .collect();
        let row = f.row(&ids);
        let names = f.names();
        assert_eq!(names.len(), f.len());
        let get = |n: &str| {
            let i = names.iter().position(|x| x == n).unwrap();
            row.iter().find(|(j, _)| *j == i).map_or(0.0, |x| x.1)
        };
        assert!((get("install:H1") - 2f64.ln_1p()).abs() < 1e-12);
        assert!((get("rest:D2") - 2f64.ln_1p()).abs() < 1e-12);
        assert_eq!(get("import:H1"), 0.0);
        assert!((get("all:H1") - 2f64.ln_1p()).abs() < 1e-12);
        assert_eq!(get("has install"), 1.0);
        assert_eq!(get("has import"), 0.0);
        assert!((get("gaps") - 1f64.ln_1p()).abs() < 1e-12);
        assert!((get("H1>R5") - 1f64.ln_1p()).abs() < 1e-12);
        assert!((get("[INSTALL]>H1") - 1f64.ln_1p()).abs() < 1e-12);
        assert!(row.windows(2).all(|w| w[0].0 < w[1].0));
    }

    #[test]
    fn fits_a_separable_rule() {
        // Malicious iff input 1 is set; the fit must rank them apart.
        let xs: Vec<SparseRow> = (0..200)
            .map(|i| {
                let mut r = vec![(0, 1.0)];
                if i % 2 == 0 {
                    r.push((1, 1.0));
                }
                if i % 3 == 0 {
                    r.push((2, 1.0));
                }
                r
            })
            .collect();
        let y: Vec<bool> = (0..200).map(|i| i % 2 == 0).collect();
        let s = vec![1.0; 200];
        let w = fit(&xs, &y, &s, 3, 1e-3);
        let p = predict(&w, &xs);
        assert!(p.iter().zip(&y).all(|(&p, &m)| (p > 0.5) == m));
        assert!(w[1] > 1.0 && w[2].abs() < 0.5, "{w:?}");
    }
}
