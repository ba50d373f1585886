//! Unit thresholds: when is one file of a package malicious enough to flag the package?
//!
//! The package thresholds stay as trained. A package is flagged when its whole score reaches
//! its threshold *or* its most malicious unit reaches the unit threshold, chosen here per
//! ecosystem on the validation part by the training rule ([`choose_threshold`]: the best F1
//! of that combined rule within the false-positive budget on the ecosystem's benign
//! validation packages, the budget bounded with confidence). The test part is not read.

use super::data::{Ecosystem, Example};
use super::eval::{score_examples, score_units, Dataset};
use super::metrics::{candidates, choose_threshold, Counts, FpBudget};
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

/// At most this many candidates per threshold in [`choose_joint_thresholds`] (evenly spaced
/// among the midpoints): the pair search is their product.
pub const JOINT_CANDIDATES: usize = 160;

/// Both thresholds of a model with unit networks, chosen together per ecosystem on the
/// validation part: a package is flagged when its whole score reaches the package threshold
/// or its most malicious unit the unit threshold, and the pair is the one with the best F1
/// of that rule within the false-positive budget (ties to the lower package threshold, then
/// the lower unit threshold). `package` and `units` are the validation packages' scores
/// (whole, and best unit or `None`), in the order of `valid`. The test part is not read.
pub fn choose_joint_thresholds(
    valid: &[&Example],
    package: &[f32],
    units: &[Option<f32>],
    budget: FpBudget,
) -> (PerEcosystem<f32>, PerEcosystem<f32>, PerEcosystem<Counts>) {
    let mut pkg_t = PerEcosystem::both(1.0);
    let mut unit_t = PerEcosystem::both(1.0);
    let mut counts = PerEcosystem::both(Counts::default());
    for eco in [Ecosystem::Pypi, Ecosystem::Npm] {
        let idx: Vec<usize> = (0..valid.len())
            .filter(|&i| valid[i].ecosystem == eco)
            .collect();
        let malicious: Vec<bool> = idx.iter().map(|&i| valid[i].malicious).collect();
        let p: Vec<f32> = idx.iter().map(|&i| package[i]).collect();
        let u: Vec<f32> = idx.iter().map(|&i| units[i].unwrap_or(-1.0)).collect();
        let allowed = budget.allowed(malicious.iter().filter(|&&m| !m).count());
        let thin = |scores: &[f32]| -> Vec<f32> {
            let mut c = candidates(scores);
            c.sort_by(f32::total_cmp);
            c.dedup();
            if c.len() > JOINT_CANDIDATES {
                let n = c.len();
                c = (0..JOINT_CANDIDATES)
                    .map(|k| c[k * (n - 1) / (JOINT_CANDIDATES - 1)])
                    .collect();
            }
            c.push(1.01);
            c
        };
        let (pc, uc) = (thin(&p), thin(&u));
        let mut best: Option<(f64, f32, f32, Counts)> = None;
        for &tp in &pc {
            for &tu in &uc {
                let flagged: Vec<f32> = p
                    .iter()
                    .zip(&u)
                    .map(|(&a, &b)| if a >= tp || b >= tu { 1.0 } else { 0.0 })
                    .collect();
                let c = Counts::at(&flagged, &malicious, 0.5);
                if c.fp > allowed {
                    continue;
                }
                let f1 = c.f1();
                if best.as_ref().is_none_or(|b| f1 > b.0 + 1e-12) {
                    best = Some((f1, tp, tu, c));
                }
            }
        }
        let (_, tp, tu, c) = best.unwrap_or((0.0, 1.0, 1.0, Counts::default()));
        let (tp, tu) = (tp.min(1.0), tu.min(1.0));
        match eco {
            Ecosystem::Pypi => {
                pkg_t.pypi = tp;
                unit_t.pypi = tu;
                counts.pypi = c;
            }
            Ecosystem::Npm => {
                pkg_t.npm = tp;
                unit_t.npm = tu;
                counts.npm = c;
            }
        }
    }
    (pkg_t, unit_t, counts)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn example(eco: Ecosystem, malicious: bool) -> Example {
        Example {
            malicious,
            ecosystem: eco,
            source: "t".into(),
            name: "p".into(),
            version: "1".into(),
            added: None,
            ids: vec![5],
            uncapped_len: 1,
            files_parsed: None,
            units: Vec::new(),
        }
    }

    #[test]
    fn the_pair_flags_what_either_score_alone_misses_within_the_budget() {
        // PyPI: two malicious packages, one found only by its package score, one only by
        // its unit; the benign packages sit below both thresholds except one high unit.
        let mut rows = Vec::new();
        let mut package = Vec::new();
        let mut units = Vec::new();
        let mut add = |m: bool, p: f32, u: Option<f32>| {
            rows.push(example(Ecosystem::Pypi, m));
            package.push(p);
            units.push(u);
        };
        add(true, 0.95, Some(0.1));
        add(true, 0.2, Some(0.97));
        for k in 0..50 {
            add(false, 0.1 + k as f32 / 100.0, Some(0.3));
        }
        add(false, 0.3, Some(0.96)); // a benign package with one odd unit
        let refs: Vec<&Example> = rows.iter().collect();
        let budget = FpBudget {
            rate: 0.005,
            confidence: 0.0,
        };
        let (p, u, c) = choose_joint_thresholds(&refs, &package, &units, budget);
        assert_eq!((c.pypi.tp, c.pypi.fp, c.pypi.fn_), (2, 0, 0));
        assert!(p.pypi > 0.6 && p.pypi <= 0.95, "{}", p.pypi);
        // Above the benign odd unit (a false positive), at most the malicious one.
        assert!(u.pypi > 0.96 && u.pypi <= 0.97, "{}", u.pypi);
        // No npm packages: nothing flagged there.
        assert_eq!(c.npm.tp + c.npm.fp, 0);
    }
}
