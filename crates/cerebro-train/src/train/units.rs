//! Unit thresholds: when is one file of a package malicious enough to flag the package?
//!
//! The package thresholds stay as trained. A package is flagged when its whole score reaches
//! its threshold *or* its most malicious unit reaches the unit threshold, chosen here per
//! ecosystem on the validation part by the training rule ([`choose_threshold`]: the best F1
//! of that combined rule within the false-positive budget on the ecosystem's benign
//! validation packages, the budget bounded with confidence). The test part is not read.

use super::data::{Ecosystem, Example};
use super::eval::{score_examples, score_units, Dataset};
use super::metrics::{choose_threshold, Counts, FpBudget};
use super::split::Part;
use cerebro_archive::PerEcosystem;
use cerebro_model::Classifier;

/// The unit thresholds chosen, and what the combined rule does on validation.
#[derive(Debug, Clone)]
pub struct UnitChoice {
    pub thresholds: PerEcosystem<f32>,
    /// Validation counts of the package rule alone, then of the combined rule, per ecosystem.
    pub before: PerEcosystem<Counts>,
    pub after: PerEcosystem<Counts>,
}

/// Chooses the unit thresholds of `model` (whose package thresholds are `package`) on the
/// validation part of `ds`.
pub fn choose_unit_thresholds(
    model: &dyn Classifier,
    ds: &Dataset,
    package: PerEcosystem<f32>,
    budget: FpBudget,
) -> Result<UnitChoice, String> {
    let valid: Vec<&Example> = ds.part(Part::Valid, false);
    let scores = score_examples(model, &valid).map_err(|e| e.to_string())?;
    let units = score_units(model, &valid).map_err(|e| e.to_string())?;
    let mut thresholds = package;
    let mut before = PerEcosystem::both(Counts::default());
    let mut after = PerEcosystem::both(Counts::default());
    for eco in [Ecosystem::Pypi, Ecosystem::Npm] {
        let t = package.get(eco);
        let idx: Vec<usize> = (0..valid.len())
            .filter(|&i| valid[i].ecosystem == eco)
            .collect();
        let malicious: Vec<bool> = idx.iter().map(|&i| valid[i].malicious).collect();
        // The combined rule as one score: a package its whole score already flags counts as
        // flagged at every unit threshold; the others by their best unit (or never).
        let combined: Vec<f32> = idx
            .iter()
            .map(|&i| {
                if scores[i] >= t {
                    1.0
                } else {
                    units[i].as_ref().map_or(-1.0, |(s, _)| *s)
                }
            })
            .collect();
        let u = if malicious.iter().any(|&m| m) {
            choose_threshold(&combined, &malicious, &vec![0; combined.len()], budget)
        } else {
            1.0
        };
        // Never below what the whole package needs: a unit is a part of the package.
        let u = u.clamp(t.min(1.0), 1.0);
        let pkg: Vec<f32> = idx.iter().map(|&i| scores[i]).collect();
        let b = Counts::at(&pkg, &malicious, t);
        let a = Counts::at(&combined, &malicious, u);
        match eco {
            Ecosystem::Pypi => {
                thresholds.pypi = u;
                before.pypi = b;
                after.pypi = a;
            }
            Ecosystem::Npm => {
                thresholds.npm = u;
                before.npm = b;
                after.npm = a;
            }
        }
    }
    Ok(UnitChoice {
        thresholds,
        before,
        after,
    })
}
