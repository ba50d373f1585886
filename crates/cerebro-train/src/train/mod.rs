//! Training stage (used by `cerebro-train`): reads the dataset's behaviour sequences, splits
//! them by package group, pre-trains the BERT of [`cerebro_model`] on masked tokens, fine-tunes
//! it to classify, and writes the model files. Library code: progress goes to a callback.
//!
//! - [`data`]: the sequences file;
//! - [`split`]: train / validation / test, by group and date;
//! - [`metrics`]: precision, recall, F1, false-positive rate, the threshold;
//! - [`trainer`]: the procedure;
//! - [`eval`]: the test part judged (per ecosystem, false positives, small packages);
//! - [`baseline`]: logistic regression on feature counts, the bar the BERT must clear;
//! - [`ensemble`]: trained model files joined into one, thresholds chosen for their mean.

pub mod baseline;
pub mod data;
pub mod ensemble;
pub mod eval;
pub mod metrics;
pub mod split;
pub mod trainer;
pub mod units;

pub use trainer::{train, TrainError, TrainOptions, TrainReport};

/// A small seeded generator (SplitMix64): shuffles, masks and initial weights repeat
/// exactly from run to run.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `[0, 1)`.
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform in `0..n` (`n > 0`).
    pub fn below(&mut self, n: usize) -> usize {
        ((self.next_u64() as u128 * n as u128) >> 64) as usize
    }

    /// Standard normal (Box–Muller).
    pub fn normal(&mut self) -> f32 {
        let u1 = self.unit().max(1e-12);
        let u2 = self.unit();
        ((-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()) as f32
    }

    pub fn shuffle<T>(&mut self, v: &mut [T]) {
        for i in (1..v.len()).rev() {
            let j = self.below(i + 1);
            v.swap(i, j);
        }
    }
}
