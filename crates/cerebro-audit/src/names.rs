//! Names: whether a package name looks like a squat of a popular one, the question an agent
//! should ask before installing a name it was told or guessed.
//!
//! The popular names are the ranked lists the detector's benign data was drawn from
//! (`data/top-pypi.txt`, `data/top-npm.txt`, most downloaded first, built from
//! `data/benign-*.csv`). A name is *close* to a popular one when it is not itself popular and
//! either differs from it by one edit (two for long names), or equals it once separators and
//! look-alike characters are ignored (`python_dateutil`, `reqeusts`, `co1ors`).

use cerebro_archive::Ecosystem;

const TOP_PYPI: &str = include_str!("../../../data/top-pypi.txt");
const TOP_NPM: &str = include_str!("../../../data/top-npm.txt");

/// A popular package a name resembles.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct LookAlike {
    /// The popular name.
    pub name: String,
    /// Its rank by downloads in the list (1 = most downloaded).
    pub rank: usize,
}

/// The popular names of an ecosystem, most downloaded first.
fn top(ecosystem: Ecosystem) -> impl Iterator<Item = &'static str> {
    match ecosystem {
        Ecosystem::Pypi => TOP_PYPI,
        Ecosystem::Npm => TOP_NPM,
    }
    .lines()
    .filter(|l| !l.is_empty())
}

/// How an ecosystem compares names: PyPI folds case and runs of `-`, `_`, `.` (PEP 503).
fn normalize(ecosystem: Ecosystem, name: &str) -> String {
    match ecosystem {
        Ecosystem::Pypi => cerebro_guard::index::normalize_pypi_name(name),
        Ecosystem::Npm => name.to_ascii_lowercase(),
    }
}

/// The name with separators dropped and look-alike characters folded (`0`→`o`, `1`→`l`).
fn skeleton(name: &str) -> String {
    name.chars()
        .filter(|c| !matches!(c, '-' | '_' | '.'))
        .map(|c| match c {
            '0' => 'o',
            '1' | 'i' => 'l',
            '5' => 's',
            c => c,
        })
        .collect()
}

/// Whether `name` is among the ecosystem's popular names.
pub fn is_popular(ecosystem: Ecosystem, name: &str) -> bool {
    let n = normalize(ecosystem, name);
    top(ecosystem).any(|t| normalize(ecosystem, t) == n)
}

/// The most popular name that `name` looks like, when it is not popular itself.
pub fn look_alike(ecosystem: Ecosystem, name: &str) -> Option<LookAlike> {
    let n = normalize(ecosystem, name);
    if is_popular(ecosystem, name) {
        return None;
    }
    // The scope is part of an npm name: `@types/node` is not `@typos/node`, but the bare
    // name is what a typo changes.
    let bare = |s: &str| s.rsplit('/').next().unwrap_or(s).to_owned();
    let (n_bare, n_skel) = (bare(&n), skeleton(&bare(&n)));
    let scoped = n.starts_with('@');
    top(ecosystem).enumerate().find_map(|(i, t)| {
        let t_norm = normalize(ecosystem, t);
        // An unscoped name is a typo of an unscoped one; a scoped one may copy either.
        if !scoped && t_norm.starts_with('@') {
            return None;
        }
        let t_bare = bare(&t_norm);
        let budget = match t_bare.chars().count() {
            0..=4 => 0,
            5..=9 => 1,
            _ => 2,
        };
        let close = (budget > 0 && edit_distance(&n_bare, &t_bare, budget) <= budget)
            || (t_bare.len() >= 4 && skeleton(&t_bare) == n_skel)
            // The same bare name under a scope the popular one does not have.
            || (t_bare.len() >= 4 && n_bare == t_bare && n != t_norm);
        close.then(|| LookAlike {
            name: t.to_owned(),
            rank: i + 1,
        })
    })
}

/// Damerau-Levenshtein distance (adjacent swaps count one), stopping early past `max`.
fn edit_distance(a: &str, b: &str, max: usize) -> usize {
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    if a.len().abs_diff(b.len()) > max {
        return max + 1;
    }
    let w = b.len() + 1;
    let mut d = vec![0usize; (a.len() + 1) * w];
    for (j, cell) in d.iter_mut().enumerate().take(w) {
        *cell = j;
    }
    for i in 1..=a.len() {
        d[i * w] = i;
        let mut row_min = usize::MAX;
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut v = (d[(i - 1) * w + j] + 1)
                .min(d[i * w + j - 1] + 1)
                .min(d[(i - 1) * w + j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                v = v.min(d[(i - 2) * w + j - 2] + 1);
            }
            d[i * w + j] = v;
            row_min = row_min.min(v);
        }
        if row_min > max {
            return max + 1;
        }
    }
    d[a.len() * w + b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typos_of_popular_names_are_found() {
        let alike = |e, n| look_alike(e, n).map(|l| l.name);
        assert_eq!(
            alike(Ecosystem::Pypi, "reqeusts").as_deref(),
            Some("requests")
        );
        assert_eq!(
            alike(Ecosystem::Pypi, "requestss").as_deref(),
            Some("requests")
        );
        assert_eq!(
            alike(Ecosystem::Pypi, "python_dateutils").as_deref(),
            Some("python-dateutil")
        );
        assert_eq!(alike(Ecosystem::Npm, "co1ors").as_deref(), Some("colors"));
        assert_eq!(
            alike(Ecosystem::Npm, "expresss").as_deref(),
            Some("express")
        );
        // Popular names themselves, and names far from every popular one, are not.
        assert_eq!(alike(Ecosystem::Pypi, "requests"), None);
        assert_eq!(alike(Ecosystem::Pypi, "Requests"), None);
        assert_eq!(alike(Ecosystem::Npm, "express"), None);
        assert_eq!(alike(Ecosystem::Npm, "zq-internal-billing-widget"), None);
        assert!(is_popular(Ecosystem::Pypi, "python_dateutil"));
        // A popular name under a scope it does not have.
        assert_eq!(
            alike(Ecosystem::Npm, "@evil/express").as_deref(),
            Some("express")
        );
    }

    #[test]
    fn distance_counts_swaps_as_one() {
        assert_eq!(edit_distance("requests", "reqeusts", 2), 1);
        assert_eq!(edit_distance("abc", "abc", 1), 0);
        assert_eq!(edit_distance("abc", "xyz", 1), 2);
    }
}
