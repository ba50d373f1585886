//! Units: the behaviour of one file of a package, in the phase where it runs.
//!
//! One sequence per package drowns a payload of ten lines in a library of three thousand
//! files: the cap keeps the head and a window, and the library's ordinary behaviour outweighs
//! the rest. A unit is the events that happen *in one file*, in the package's run order and
//! with the phase each ran in (a helper module imported from `__init__.py` runs at import
//! time, a file named by an install script at install time), so that the detector can judge
//! the few lines that matter on their own, and the reasons can name the file.
//!
//! Files whose events are all routine (importing and using file-system or encoding modules,
//! and nothing else) are not units: they are what every library is made of, and scoring them
//! would only cost time.

use std::collections::BTreeMap;

use super::{cap, Phase, Placed, Token};
use crate::Feature;

/// Units scored per package at most: a bounded number of model runs however big it is.
pub const DEFAULT_MAX_UNITS: usize = 64;

/// One file's behaviour, ready to score.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unit {
    /// Package-relative path of the file.
    pub file: String,
    /// Phase markers and features, repeats collapsed, capped like a package's sequence.
    pub tokens: Vec<Token>,
    /// Index into the package's events of this unit's first event (for `file:line`).
    pub first_event: usize,
}

/// Units are only worth a model run when they show something beyond routine module use
/// (the release diff lists a changed file on the same ground).
pub fn telling(feature: Feature) -> bool {
    !matches!(
        feature,
        Feature::R1 | Feature::R3 | Feature::R4 | Feature::E1 | Feature::E2 | Feature::E4
    )
}

/// The units of a package, from its events in run order ([`super::order`]), in the order
/// their files first show behaviour; at most `max_units`, the ones with the most distinct
/// telling features first when there are more, so that a huge package costs a bounded number
/// of model runs.
pub fn units(events: &[Placed], max_tokens: usize, max_units: usize) -> Vec<Unit> {
    // Group the events by file, keeping run order within each file.
    let mut by_file: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (i, placed) in events.iter().enumerate() {
        if placed.event.file.is_empty() {
            continue;
        }
        by_file
            .entry(placed.event.file.as_str())
            .or_default()
            .push(i);
    }
    let mut out: Vec<(usize, Unit)> = Vec::new();
    for (file, indices) in by_file {
        let mut distinct: Vec<Feature> = indices
            .iter()
            .map(|&i| events[i].event.feature)
            .filter(|&f| telling(f))
            .collect();
        distinct.sort();
        distinct.dedup();
        if distinct.is_empty() {
            continue;
        }
        let mut raw = Vec::with_capacity(indices.len() + 3);
        let mut phase: Option<Phase> = None;
        for &i in &indices {
            let placed = &events[i];
            if phase != Some(placed.phase) {
                phase = Some(placed.phase);
                raw.push(Token::Phase(placed.phase));
            }
            super::push_collapsed(&mut raw, Token::of(&placed.event));
        }
        out.push((
            distinct.len(),
            Unit {
                file: file.to_owned(),
                tokens: cap(&raw, max_tokens),
                first_event: indices[0],
            },
        ));
    }
    if out.len() > max_units {
        // Most telling first; ties keep run order.
        out.sort_by_key(|(n, u)| (std::cmp::Reverse(*n), u.first_event));
        out.truncate(max_units);
    }
    let mut units: Vec<Unit> = out.into_iter().map(|(_, u)| u).collect();
    units.sort_by_key(|u| u.first_event);
    units
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Event;

    fn placed(phase: Phase, feature: Feature, file: &str, line: u32) -> Placed {
        Placed {
            phase,
            event: Event::new(feature, file, line, "", ""),
        }
    }

    #[test]
    fn one_unit_per_file_with_its_phases_in_run_order() {
        let events = vec![
            placed(Phase::Install, Feature::H1, "setup.py", 3),
            placed(Phase::Import, Feature::R1, "pkg/__init__.py", 1),
            placed(Phase::Import, Feature::D1, "pkg/net.py", 1),
            placed(Phase::Import, Feature::D2, "pkg/net.py", 5),
            placed(Phase::Import, Feature::D2, "pkg/net.py", 6),
            placed(Phase::Run, Feature::P2, "pkg/net.py", 9),
            placed(Phase::Run, Feature::R3, "pkg/io.py", 1),
        ];
        let got = units(&events, 510, 64);
        let files: Vec<&str> = got.iter().map(|u| u.file.as_str()).collect();
        // `pkg/__init__.py` and `pkg/io.py` only do routine things.
        assert_eq!(files, ["setup.py", "pkg/net.py"]);
        let net: Vec<&str> = got[1].tokens.iter().map(|t| t.as_str()).collect();
        assert_eq!(net, ["[IMPORT]", "D1", "D2", "[RUN]", "P2"]);
        assert_eq!(got[1].first_event, 2);
    }

    #[test]
    fn a_cap_on_units_keeps_the_most_telling_files() {
        let mut events = Vec::new();
        for i in 0..10 {
            events.push(placed(Phase::Run, Feature::D3, &format!("f{i}.js"), 1));
        }
        events.push(placed(Phase::Run, Feature::D2, "z.js", 1));
        events.push(placed(Phase::Run, Feature::R5, "z.js", 2));
        events.push(placed(Phase::Run, Feature::D4, "z.js", 3));
        let got = units(&events, 510, 3);
        assert_eq!(got.len(), 3);
        assert!(got.iter().any(|u| u.file == "z.js"), "{got:?}");
    }
}
