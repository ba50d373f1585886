//! Train / validation / test split, by package group, so that versions of one package (or
//! members of one obvious family) never straddle the split.
//!
//! - **Group**: the package name normalised (lowercase, runs of `_`, `.`, `-` → `-`), then
//!   trailing digits and separators removed, then a trailing `-v` (`10Cent10`, `10cent11` →
//!   `10cent`; `foo-1.2`, `foo_v2` → `foo`). A name that would become empty keeps its
//!   normalised form. Benign and malicious packages share groups.
//! - **Label noise** is dropped from every part: npm packages named `sonatype…` (a
//!   researcher's test package) and npm's `*-0.0.1-security` placeholders, among the malicious
//!   npm samples.
//! - **Test**, decided per group, first rule that applies:
//!   1. a group with malicious PyPI packages: by date. Its date is the earliest `added` of its
//!      members; the cutoff is the latest date such that the packages of groups dated on or
//!      after it are at least `test_fraction` of the malicious PyPI packages. Groups dated on
//!      or after the cutoff are test (malware found later than anything trained on).
//!   2. a group with malicious npm packages from `sonatype` or `defcon33` (other sources than
//!      the training one): test.
//!   3. otherwise (benign, and the `spiderscan` npm malware): test when a hash of the group
//!      falls in the lowest `test_fraction`.
//! - **Needles** (source `needle`: a benign host with malware sewn in, `dataset::needles`)
//!   take no part in the rules above, so adding them moves no other package: each goes to the
//!   part of its host's group (the donor was drawn from that same part), or is dropped when
//!   the host's group is not in the file.
//! - **Validation**: of the remaining groups, those whose hash (with another salt) falls in
//!   the lowest `valid_fraction`, or `benign_valid_fraction` for groups without malware; it
//!   chooses the epoch and the decision thresholds. Benign groups get the larger share because
//!   a 0.5% false-positive budget needs many benign packages to be more than one or two of
//!   them (the thresholds move by a package either way).

use std::collections::HashMap;

use super::data::{Ecosystem, Example};

/// Where an example goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Part {
    Train,
    Valid,
    Test,
    /// Label noise, in no part.
    Dropped,
}

/// The `source` of needle examples (`dataset::needles`).
pub const NEEDLE_SOURCE: &str = "needle";

/// Settings of the split.
#[derive(Debug, Clone, Copy)]
pub struct SplitOptions {
    pub test_fraction: f64,
    pub valid_fraction: f64,
    /// Validation share of groups with no malicious member (at least `valid_fraction`).
    pub benign_valid_fraction: f64,
}

impl Default for SplitOptions {
    fn default() -> Self {
        SplitOptions {
            test_fraction: 0.2,
            valid_fraction: 0.1,
            benign_valid_fraction: 0.25,
        }
    }
}

/// The outcome: one part per example, and the date cutoff used for malicious PyPI.
#[derive(Debug, Clone)]
pub struct Split {
    pub parts: Vec<Part>,
    pub cutoff: Option<String>,
}

/// Lowercase, runs of `_`, `.`, `-` as one `-` (PEP 503, applied to npm names too).
pub fn normalise_name(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for c in name.trim().chars() {
        let c = if matches!(c, '_' | '.' | '-') {
            '-'
        } else {
            c.to_ascii_lowercase()
        };
        if !(c == '-' && out.ends_with('-')) {
            out.push(c);
        }
    }
    out
}

/// The group of a package name (see the module docs).
pub fn family(name: &str) -> String {
    let norm = normalise_name(name);
    let mut f = norm.trim_end_matches(|c: char| c.is_ascii_digit() || c == '-');
    if let Some(stripped) = f.strip_suffix("-v") {
        f = stripped.trim_end_matches('-');
    }
    if f.is_empty() {
        norm
    } else {
        f.to_owned()
    }
}

/// Whether a sample is known label noise (see the module docs).
pub fn is_label_noise(ex: &Example) -> bool {
    ex.malicious
        && ex.ecosystem == Ecosystem::Npm
        && (normalise_name(&ex.name).starts_with("sonatype")
            || ex.version.ends_with("-security")
            || ex.name.ends_with("-security"))
}

/// A number in `[0, 1)` from a string, stable across runs and platforms (FNV-1a).
pub fn unit_hash(salt: &str, key: &str) -> f64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in salt.bytes().chain([0u8]).chain(key.bytes()) {
        h ^= b as u64;
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    // Finalise (the low bits of FNV mix poorly).
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    (h >> 11) as f64 / (1u64 << 53) as f64
}

/// Splits `examples` (see the module docs).
pub fn split(examples: &[Example], opts: &SplitOptions) -> Split {
    let is_needle = |e: &Example| e.source == NEEDLE_SOURCE;
    if examples.iter().any(is_needle) {
        let plain: Vec<Example> = examples.iter().filter(|e| !is_needle(e)).cloned().collect();
        let inner = split(&plain, opts);
        let mut by_group: HashMap<String, Part> = HashMap::new();
        for (e, p) in plain.iter().zip(&inner.parts) {
            by_group.insert(family(&e.name), *p);
        }
        let mut plain_parts = inner.parts.into_iter();
        let parts = examples
            .iter()
            .map(|e| {
                if is_needle(e) {
                    by_group
                        .get(&family(&e.name))
                        .copied()
                        .unwrap_or(Part::Dropped)
                } else {
                    plain_parts.next().unwrap_or(Part::Dropped)
                }
            })
            .collect();
        return Split {
            parts,
            cutoff: inner.cutoff,
        };
    }
    let groups: Vec<String> = examples.iter().map(|e| family(&e.name)).collect();
    let noise: Vec<bool> = examples.iter().map(is_label_noise).collect();

    // Rule 1: the date of each group with malicious PyPI packages.
    let mut group_date: HashMap<&str, &str> = HashMap::new();
    for (i, ex) in examples.iter().enumerate() {
        if ex.malicious && ex.ecosystem == Ecosystem::Pypi && !noise[i] {
            let date = ex.added.as_deref().unwrap_or("");
            group_date
                .entry(groups[i].as_str())
                .and_modify(|d| {
                    if date < *d {
                        *d = date
                    }
                })
                .or_insert(date);
        }
    }
    let mut dated: Vec<&str> = examples
        .iter()
        .enumerate()
        .filter(|(i, ex)| ex.malicious && ex.ecosystem == Ecosystem::Pypi && !noise[*i])
        .map(|(i, _)| group_date[groups[i].as_str()])
        .collect();
    dated.sort_unstable();
    let cutoff = cutoff_date(&dated, opts.test_fraction);

    // Rule 2: groups with out-of-source npm malware.
    let mut npm_test: HashMap<&str, bool> = HashMap::new();
    for (i, ex) in examples.iter().enumerate() {
        if ex.malicious
            && ex.ecosystem == Ecosystem::Npm
            && !noise[i]
            && matches!(ex.source.as_str(), "sonatype" | "defcon33")
        {
            npm_test.insert(groups[i].as_str(), true);
        }
    }

    let with_malware: std::collections::HashSet<&str> = examples
        .iter()
        .zip(&groups)
        .filter(|(e, _)| e.malicious)
        .map(|(_, g)| g.as_str())
        .collect();

    let parts = examples
        .iter()
        .enumerate()
        .map(|(i, _)| {
            if noise[i] {
                return Part::Dropped;
            }
            let g = groups[i].as_str();
            let test = if let Some(date) = group_date.get(g) {
                cutoff.as_deref().is_some_and(|c| *date >= c)
            } else if npm_test.contains_key(g) {
                true
            } else {
                unit_hash("test", g) < opts.test_fraction
            };
            let valid_fraction = if with_malware.contains(g) {
                opts.valid_fraction
            } else {
                opts.valid_fraction.max(opts.benign_valid_fraction)
            };
            if test {
                Part::Test
            } else if unit_hash("valid", g) < valid_fraction {
                Part::Valid
            } else {
                Part::Train
            }
        })
        .collect();
    Split { parts, cutoff }
}

/// The latest date such that the entries of `sorted_dates` on or after it are at least
/// `fraction` of them.
fn cutoff_date(sorted_dates: &[&str], fraction: f64) -> Option<String> {
    let n = sorted_dates.len();
    if n == 0 {
        return None;
    }
    let want = ((n as f64) * fraction).ceil().max(1.0) as usize;
    // The date of the entry `want` from the end; everything dated on or after it is test.
    Some(sorted_dates[n - want.min(n)].to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ex(mal: bool, eco: Ecosystem, source: &str, name: &str, added: Option<&str>) -> Example {
        Example {
            malicious: mal,
            ecosystem: eco,
            source: source.into(),
            name: name.into(),
            version: "1.0.0".into(),
            added: added.map(str::to_owned),
            ids: vec![],
            uncapped_len: 0,
            files_parsed: None,
            units: Vec::new(),
        }
    }

    #[test]
    fn names_and_families() {
        assert_eq!(normalise_name("Foo_Bar.baz"), "foo-bar-baz");
        assert_eq!(normalise_name("a__b"), "a-b");
        assert_eq!(family("10Cent10"), "10cent");
        assert_eq!(family("10cent11"), "10cent");
        assert_eq!(family("foo-1.2"), "foo");
        assert_eq!(family("foo_v2"), "foo");
        assert_eq!(family("requests"), "requests");
        assert_eq!(family("s3transfer"), "s3transfer");
        assert_eq!(family("12345"), "12345");
    }

    #[test]
    fn label_noise() {
        let mut placeholder = ex(true, Ecosystem::Npm, "sonatype", "electorn", None);
        placeholder.version = "0.0.1-security".into();
        assert!(is_label_noise(&placeholder));
        assert!(is_label_noise(&ex(
            true,
            Ecosystem::Npm,
            "spiderscan",
            "sonatype",
            None
        )));
        assert!(!is_label_noise(&ex(
            true,
            Ecosystem::Npm,
            "sonatype",
            "electorn",
            None
        )));
        assert!(!is_label_noise(&ex(
            false,
            Ecosystem::Npm,
            "top-npm",
            "sonatype",
            None
        )));
    }

    #[test]
    fn cutoff_takes_the_newest_fifth() {
        let d = [
            "2023-01-01",
            "2023-01-01",
            "2023-02-01",
            "2023-03-01",
            "2023-04-01",
        ];
        assert_eq!(cutoff_date(&d, 0.2).as_deref(), Some("2023-04-01"));
        assert_eq!(cutoff_date(&d, 0.4).as_deref(), Some("2023-03-01"));
        // A big batch on one date goes whole to one side.
        let d = ["a", "b", "b", "b", "b"];
        assert_eq!(cutoff_date(&d, 0.2).as_deref(), Some("b"));
        assert_eq!(cutoff_date(&[], 0.2), None);
    }

    #[test]
    fn groups_never_straddle_and_rules_apply() {
        let mut v = vec![
            ex(
                true,
                Ecosystem::Pypi,
                "pypi-malregistry",
                "old1",
                Some("2023-01-01"),
            ),
            ex(
                true,
                Ecosystem::Pypi,
                "pypi-malregistry",
                "old2",
                Some("2024-09-01"),
            ),
            ex(
                true,
                Ecosystem::Pypi,
                "pypi-malregistry",
                "new",
                Some("2024-09-01"),
            ),
            ex(
                true,
                Ecosystem::Pypi,
                "pypi-malregistry",
                "new2",
                Some("2024-09-01"),
            ),
            ex(
                true,
                Ecosystem::Pypi,
                "pypi-malregistry",
                "new-3",
                Some("2024-09-01"),
            ),
            ex(true, Ecosystem::Npm, "sonatype", "evil-npm", None),
            ex(true, Ecosystem::Npm, "spiderscan", "sonatype", None),
        ];
        for i in 0..6 {
            v.push(ex(
                true,
                Ecosystem::Pypi,
                "pypi-malregistry",
                &format!("p{i}x"),
                Some("2023-06-01"),
            ));
        }
        for i in 0..400 {
            v.push(ex(
                false,
                Ecosystem::Pypi,
                "top-pypi",
                &format!("benign-pkg-{i}x"),
                None,
            ));
            v.push(ex(
                false,
                Ecosystem::Pypi,
                "top-pypi",
                &format!("benign_pkg_{i}x.2"),
                None,
            ));
        }
        let s = split(&v, &SplitOptions::default());
        assert_eq!(s.cutoff.as_deref(), Some("2024-09-01"));
        // old2 belongs to the family of old1, dated 2023: train side.
        assert_ne!(s.parts[0], Part::Test);
        assert_eq!(s.parts[0], s.parts[1]);
        assert_eq!(s.parts[2], Part::Test);
        assert_eq!(s.parts[3], Part::Test);
        assert_eq!(s.parts[4], Part::Test);
        assert_eq!(s.parts[5], Part::Test);
        assert_eq!(s.parts[6], Part::Dropped);
        let mut by_group: HashMap<String, Part> = HashMap::new();
        for (e, p) in v.iter().zip(&s.parts) {
            let prev = by_group.insert(family(&e.name), *p);
            assert!(prev.is_none() || prev == Some(*p), "{} straddles", e.name);
        }
        let benign: Vec<Part> = s.parts[13..].to_vec();
        let test = benign.iter().filter(|p| **p == Part::Test).count() as f64 / benign.len() as f64;
        let valid =
            benign.iter().filter(|p| **p == Part::Valid).count() as f64 / benign.len() as f64;
        assert!((0.12..0.28).contains(&test), "{test}");
        // A quarter of the benign groups left after the test part.
        assert!((0.12..0.28).contains(&valid), "{valid}");
    }

    #[test]
    fn needles_follow_their_host_and_move_nothing() {
        let mut v: Vec<Example> = (0..200)
            .map(|i| {
                ex(
                    false,
                    Ecosystem::Pypi,
                    "top-pypi",
                    &format!("lib{i}x"),
                    None,
                )
            })
            .collect();
        v.push(ex(
            true,
            Ecosystem::Pypi,
            "pypi-malregistry",
            "evil",
            Some("2024-01-01"),
        ));
        let before = split(&v, &SplitOptions::default()).parts;
        let mut with = v.clone();
        for i in [3, 50, 199] {
            let mut n = ex(
                true,
                Ecosystem::Pypi,
                NEEDLE_SOURCE,
                &format!("lib{i}x"),
                None,
            );
            n.added = Some("2024-01-01".into());
            with.push(n);
        }
        with.push(ex(
            true,
            Ecosystem::Pypi,
            NEEDLE_SOURCE,
            "no-such-host",
            None,
        ));
        let after = split(&with, &SplitOptions::default()).parts;
        assert_eq!(&after[..v.len()], &before[..]);
        assert_eq!(after[v.len()], before[3]);
        assert_eq!(after[v.len() + 1], before[50]);
        assert_eq!(after[v.len() + 2], before[199]);
        assert_eq!(after[v.len() + 3], Part::Dropped);
    }
}
