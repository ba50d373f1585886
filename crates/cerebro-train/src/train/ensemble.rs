//! Ensembles: several trained model files joined into one, scored as their members' mean
//! probability, with thresholds chosen for that mean on the validation part.
//!
//! Runs of the same recipe differ a lot from seed to seed, and most where it matters: in the
//! top few benign scores, which decide where a 0.5% false-positive budget puts the threshold.
//! The mean of several runs moves less (docs/EVALUATION.md, "Ensembles").

use std::path::PathBuf;

use super::data::Ecosystem;
use super::eval::{score_examples, score_units, Dataset};
use super::metrics::{choose_thresholds, Counts, FpBudget};
use super::split::{Part, SplitOptions};
use cerebro_archive::PerEcosystem;
use cerebro_model::quantized::{write_ensemble, write_ensemble_with_units};
use cerebro_model::{Classifier, Model};

/// Settings of [`build_ensemble`].
#[derive(Debug, Clone)]
pub struct EnsembleOptions {
    /// Sequences file whose validation part chooses the thresholds.
    pub data: PathBuf,
    pub split: SplitOptions,
    pub budget: FpBudget,
    /// Stored in the file: how it was made.
    pub description: String,
}

/// What [`build_ensemble`] made.
#[derive(Debug, Clone)]
pub struct Ensemble {
    /// The model file.
    pub file: Vec<u8>,
    pub thresholds: PerEcosystem<f32>,
    /// The unit networks' thresholds, when the ensemble has unit networks.
    pub unit_thresholds: Option<PerEcosystem<f32>>,
    /// With unit networks: what the pair of thresholds does on validation.
    pub unit_validation: Option<PerEcosystem<Counts>>,
    /// Validation packages the thresholds were chosen on.
    pub validation: usize,
}

/// Joins model files (single networks, as `cerebro-train` writes them) into one ensemble
/// file, its thresholds chosen on the validation part of `opts.data` by the same rule as a
/// trained model's ([`choose_thresholds`]).
pub fn build_ensemble(members: &[&[u8]], opts: &EnsembleOptions) -> Result<Ensemble, String> {
    build_ensemble_with_units(members, &[], opts)
}

/// [`build_ensemble`] with unit networks (files `cerebro-train --units` wrote): both
/// thresholds chosen together on the validation part
/// ([`super::units::choose_joint_thresholds`]).
pub fn build_ensemble_with_units(
    members: &[&[u8]],
    unit_members: &[&[u8]],
    opts: &EnsembleOptions,
) -> Result<Ensemble, String> {
    if !unit_members.is_empty() {
        let half = PerEcosystem::both(0.5);
        let draft =
            write_ensemble_with_units(members, unit_members, half, Some(half), &opts.description)
                .map_err(|e| e.to_string())?;
        let model = Model::from_gguf(&draft).map_err(|e| e.to_string())?;
        let ds = Dataset::load(&opts.data, model.info().bag, &opts.split)?;
        let valid = ds.part(Part::Valid, false);
        if valid.is_empty() {
            return Err(format!(
                "{}: no validation packages to choose thresholds on",
                opts.data.display()
            ));
        }
        let scores =
            score_examples(&model as &dyn Classifier, &valid).map_err(|e| e.to_string())?;
        let units: Vec<Option<f32>> = score_units(&model as &dyn Classifier, &valid)
            .map_err(|e| e.to_string())?
            .into_iter()
            .map(|u| u.map(|(s, _)| s))
            .collect();
        let (thresholds, unit_thresholds, counts) =
            super::units::choose_joint_thresholds(&valid, &scores, &units, opts.budget);
        let file = write_ensemble_with_units(
            members,
            unit_members,
            thresholds,
            Some(unit_thresholds),
            &opts.description,
        )
        .map_err(|e| e.to_string())?;
        return Ok(Ensemble {
            file,
            thresholds,
            unit_thresholds: Some(unit_thresholds),
            unit_validation: Some(counts),
            validation: valid.len(),
        });
    }
    let draft = write_ensemble(members, PerEcosystem::both(0.5), &opts.description)
        .map_err(|e| e.to_string())?;
    let model = Model::from_gguf(&draft).map_err(|e| e.to_string())?;
    let ds = Dataset::load(&opts.data, model.info().bag, &opts.split)?;
    let valid = ds.part(Part::Valid, false);
    if valid.is_empty() {
        return Err(format!(
            "{}: no validation packages to choose thresholds on",
            opts.data.display()
        ));
    }
    let scores = score_examples(&model as &dyn Classifier, &valid).map_err(|e| e.to_string())?;
    let malicious: Vec<bool> = valid.iter().map(|e| e.malicious).collect();
    let ecosystems: Vec<Ecosystem> = valid.iter().map(|e| e.ecosystem).collect();
    let thresholds = choose_thresholds(&scores, &malicious, &ecosystems, opts.budget);
    let file = write_ensemble(members, thresholds, &opts.description).map_err(|e| e.to_string())?;
    Ok(Ensemble {
        file,
        thresholds,
        unit_thresholds: None,
        unit_validation: None,
        validation: valid.len(),
    })
}
