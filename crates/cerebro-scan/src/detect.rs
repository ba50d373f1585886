//! Detect stage: turns a behaviour sequence into a score, a verdict and the reasons for it.
//!
//! The score is the model's probability that the package is malicious. The reasons come from
//! *occlusion*: each feature present is taken out of the sequence in turn and the sequence
//! scored again; the features whose absence lowers the score most are what drove it, and
//! each is shown with the event (file and line) where it first happens.

use std::fmt;

use serde::{Deserialize, Serialize};

use cerebro_archive::PerEcosystem;
use cerebro_features::sequence::{Placed, Sequence, Token};
use cerebro_features::Feature;
use cerebro_model::{Detector, ModelError};

/// Reasons given for a flagged package.
pub const MAX_REASONS: usize = 3;
/// Features tried by occlusion, strongest by table weight first: each costs a model run, and
/// routine features (imports of file-system modules and the like) rarely drive a score.
pub const MAX_OCCLUDED: usize = 8;

/// What the guard concludes about a package.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    Benign,
    Suspicious,
    Malicious,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Benign => "benign",
            Verdict::Suspicious => "suspicious",
            Verdict::Malicious => "malicious",
        }
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Score boundaries of the verdicts.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Thresholds {
    /// At or above: malicious. The model's own threshold, chosen on validation data.
    pub malicious: f32,
    /// At or above (and below `malicious`): suspicious. Half the malicious threshold: close
    /// enough to be worth a look, not enough to block on.
    pub suspicious: f32,
}

impl Thresholds {
    /// The thresholds that go with each ecosystem's decision threshold of `detector`.
    pub fn of_model(detector: &Detector) -> PerEcosystem<Thresholds> {
        detector.thresholds().map(Thresholds::for_model)
    }

    /// The thresholds that go with a model's decision threshold.
    pub fn for_model(threshold: f32) -> Thresholds {
        Thresholds {
            malicious: threshold,
            suspicious: threshold / 2.0,
        }
    }

    pub fn verdict(&self, score: f32) -> Verdict {
        if score >= self.malicious {
            Verdict::Malicious
        } else if score >= self.suspicious {
            Verdict::Suspicious
        } else {
            Verdict::Benign
        }
    }
}

/// One reason for a score: a feature, how much it contributed, and where it first shows.
#[derive(Debug, Clone, Serialize)]
pub struct Reason {
    pub feature: Feature,
    /// How much lower the score is without this feature, in log-odds (natural log of
    /// p / (1 - p)), which keeps differences visible when the score is near 0 or 1.
    pub weight: f32,
    /// The first event of this feature in run order.
    pub event: Option<Placed>,
}

/// The detector's judgement of one package.
#[derive(Debug, Clone, Serialize)]
pub struct Judgement {
    /// The whole package's score.
    pub score: f32,
    /// The worse of the package's verdict and its most malicious unit's.
    pub verdict: Verdict,
    /// Empty for benign packages (explaining costs a model run per feature). When a unit
    /// drives the verdict, its features, with events of its file.
    pub reasons: Vec<Reason>,
    /// The package's most malicious unit, when the model judges units and one was scored.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unit: Option<UnitFinding>,
}

/// The highest-scoring unit (one file's behaviour) of a package.
#[derive(Debug, Clone, Serialize)]
pub struct UnitFinding {
    pub file: String,
    pub score: f32,
    /// The model's unit threshold for the package's ecosystem.
    pub threshold: f32,
    /// Whether this unit, not the whole package, set the verdict.
    pub drives: bool,
}

/// Scores `sequence` and, unless it is benign, explains the score.
pub fn judge(
    detector: &Detector,
    thresholds: &Thresholds,
    sequence: &Sequence,
) -> Result<Judgement, ModelError> {
    if !sequence.tokens.iter().any(|t| t.feature().is_some()) {
        // No behaviour at all: nothing in it runs, so there is nothing to judge. The model
        // is not asked: it met this input on both sides (type-only and data packages, and
        // malware shells whose payload is a dependency) and answers about 0.5.
        return Ok(Judgement {
            score: 0.0,
            verdict: Verdict::Benign,
            reasons: Vec::new(),
            unit: None,
        });
    }
    let score = detector.score(&sequence.tokens)?;
    let verdict = thresholds.verdict(score);
    let reasons = if verdict == Verdict::Benign {
        Vec::new()
    } else {
        explain(detector, sequence, score)?
    };
    Ok(Judgement {
        score,
        verdict,
        reasons,
        unit: None,
    })
}

/// Judges the units of `sequence` (one file's behaviour each, [`sequence::units`]) at the
/// model's unit threshold `threshold` and makes `judgement` malicious when the most malicious
/// unit reaches it: a payload of a few lines in a big library is judged on its own, and the
/// reasons then name its file. Identical units are scored once (the detector's memo).
pub fn judge_units(
    detector: &Detector,
    threshold: f32,
    sequence: &Sequence,
    judgement: &mut Judgement,
) -> Result<(), ModelError> {
    let units = cerebro_features::sequence::units(
        &sequence.events,
        cerebro_features::sequence::DEFAULT_MAX_TOKENS,
        cerebro_features::sequence::DEFAULT_MAX_UNITS,
    );
    if units.is_empty() {
        return Ok(());
    }
    let refs: Vec<&[Token]> = units.iter().map(|u| u.tokens.as_slice()).collect();
    let scores = detector.score_units_many(&refs)?;
    let Some((best, score)) = units.iter().zip(scores).max_by(|a, b| a.1.total_cmp(&b.1)) else {
        return Ok(());
    };
    // Only a unit at its threshold counts: a unit in the suspicious band of a package that
    // is benign as a whole is what libraries are made of, not worth a word.
    let drives = score >= threshold && judgement.verdict < Verdict::Malicious;
    if drives {
        judgement.verdict = Verdict::Malicious;
        // Explain the unit: its tokens, with the events of its file only.
        let unit_sequence = Sequence {
            events: sequence
                .events
                .iter()
                .filter(|p| p.event.file == best.file)
                .cloned()
                .collect(),
            tokens: best.tokens.clone(),
            uncapped_len: best.tokens.len(),
        };
        judgement.reasons = explain_with(detector, &unit_sequence, score, true)?;
    }
    judgement.unit = Some(UnitFinding {
        file: best.file.clone(),
        score,
        threshold,
        drives,
    });
    Ok(())
}

/// The features whose removal lowers the score most, strongest first, scored in one batch
/// (at most [`MAX_OCCLUDED`] candidates, routine features not tried).
pub fn explain(
    detector: &Detector,
    sequence: &Sequence,
    score: f32,
) -> Result<Vec<Reason>, ModelError> {
    explain_with(detector, sequence, score, false)
}

/// [`explain`] for a unit (`units`: scored as units are, by the unit networks).
fn explain_with(
    detector: &Detector,
    sequence: &Sequence,
    score: f32,
    units: bool,
) -> Result<Vec<Reason>, ModelError> {
    let mut present: Vec<Feature> = sequence.tokens.iter().filter_map(|t| t.feature()).collect();
    present.sort();
    present.dedup();
    present.retain(|f| f.weight() > 0);
    present.sort_by_key(|f| std::cmp::Reverse(f.weight()));
    present.truncate(MAX_OCCLUDED);
    if present.is_empty() {
        return Ok(Vec::new());
    }
    let occluded: Vec<Vec<Token>> = present
        .iter()
        .map(|&f| {
            sequence
                .tokens
                .iter()
                .copied()
                .filter(|&t| t.feature() != Some(f))
                .collect()
        })
        .collect();
    let refs: Vec<&[Token]> = occluded.iter().map(|v| v.as_slice()).collect();
    let scores = if units {
        detector.score_units_many(&refs)?
    } else {
        detector.score_tokens_many(&refs)?
    };
    let mut reasons: Vec<Reason> = present
        .iter()
        .zip(scores)
        .map(|(&feature, without)| Reason {
            feature,
            weight: (log_odds(score) - log_odds(without)).max(0.0),
            event: sequence
                .events
                .iter()
                .find(|p| p.event.feature == feature)
                .cloned(),
        })
        .filter(|r| r.weight > 0.0)
        .collect();
    reasons.sort_by(|a, b| b.weight.total_cmp(&a.weight));
    reasons.truncate(MAX_REASONS);
    Ok(reasons)
}

fn log_odds(p: f32) -> f32 {
    let p = p.clamp(1e-6, 1.0 - 1e-6);
    (p / (1.0 - p)).ln()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verdicts_follow_the_thresholds() {
        let t = Thresholds::for_model(0.8);
        assert_eq!(t.verdict(0.95), Verdict::Malicious);
        assert_eq!(t.verdict(0.8), Verdict::Malicious);
        assert_eq!(t.verdict(0.5), Verdict::Suspicious);
        assert_eq!(t.verdict(0.4), Verdict::Suspicious);
        assert_eq!(t.verdict(0.39), Verdict::Benign);
        assert!(Verdict::Malicious > Verdict::Suspicious && Verdict::Suspicious > Verdict::Benign);
    }

    #[test]
    fn a_package_without_behaviour_is_benign_without_asking_the_model() {
        let detector = Detector::embedded().unwrap();
        let thresholds = Thresholds::for_model(detector.thresholds().npm);
        let empty = Sequence::default();
        let j = judge(&detector, &thresholds, &empty).unwrap();
        assert_eq!((j.score, j.verdict), (0.0, Verdict::Benign));
        // Phase markers alone are no behaviour either; the model alone would say ~0.5.
        let markers = Sequence {
            tokens: vec![Token::Phase(cerebro_features::sequence::Phase::Install)],
            ..Sequence::default()
        };
        assert_eq!(
            judge(&detector, &thresholds, &markers).unwrap().verdict,
            Verdict::Benign
        );
    }

    fn event(phase: cerebro_features::sequence::Phase, feature: Feature, file: &str) -> Placed {
        Placed {
            phase,
            event: cerebro_features::Event::new(feature, file, 7, "", ""),
        }
    }

    /// A library whose behaviour is ordinary, with one file that reads secrets and posts them.
    fn library_with_a_payload() -> Sequence {
        use cerebro_features::sequence::Phase::{Import, Run};
        let mut events = Vec::new();
        for i in 0..30 {
            events.push(event(Import, Feature::R3, &format!("lib/m{i}.py")));
            events.push(event(Run, Feature::R4, &format!("lib/m{i}.py")));
        }
        for f in [
            Feature::R5,
            Feature::E2,
            Feature::D1,
            Feature::D2,
            Feature::D4,
        ] {
            events.push(event(Import, f, "lib/telemetry.py"));
        }
        cerebro_features::sequence::Sequence {
            tokens: events
                .iter()
                .map(|p| Token::Feature(p.event.feature))
                .collect(),
            uncapped_len: events.len(),
            events,
        }
    }

    #[test]
    fn a_unit_over_its_threshold_sets_the_verdict_and_names_its_file() {
        let detector = Detector::embedded().unwrap();
        let seq = library_with_a_payload();
        // Package thresholds no score reaches: the whole package is benign.
        let never = Thresholds {
            malicious: 1.01,
            suspicious: 1.01,
        };
        let mut j = judge(&detector, &never, &seq).unwrap();
        assert_eq!(j.verdict, Verdict::Benign);
        judge_units(&detector, 0.0, &seq, &mut j).unwrap();
        let unit = j.unit.clone().expect("a unit was scored");
        assert_eq!(unit.file, "lib/telemetry.py");
        assert!(unit.drives);
        assert_eq!(j.verdict, Verdict::Malicious);
        assert!(
            j.reasons.iter().all(|r| r
                .event
                .as_ref()
                .is_some_and(|p| p.event.file == "lib/telemetry.py")),
            "{:?}",
            j.reasons
        );
        // At a unit threshold no score reaches, the unit is reported but changes nothing.
        let mut j = judge(&detector, &never, &seq).unwrap();
        judge_units(&detector, 1.0, &seq, &mut j).unwrap();
        assert_eq!(j.verdict, Verdict::Benign);
        assert!(!j.unit.unwrap().drives);
    }

    #[test]
    fn log_odds_spread_saturated_scores() {
        assert!(log_odds(0.5).abs() < 1e-6);
        assert!(log_odds(0.999) - log_odds(0.99) > 2.0);
        assert!(log_odds(1.0).is_finite() && log_odds(0.0).is_finite());
    }
}
