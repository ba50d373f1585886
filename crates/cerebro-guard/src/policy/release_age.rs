//! The release-age cooldown's settings: how long a release must have been public before the
//! guard lets the installer see it (`min_release_age`), and the packages exempt from it.
//!
//! Compromised releases of popular packages (chalk/debug, axios 1.14.1, the Shai-Hulud worm)
//! were each live for hours before they were pulled; not installing what was published
//! minutes ago is the cheapest defence, as npm's `min-release-age`, pnpm's
//! `minimumReleaseAge` and uv's `exclude-newer` do.

use std::time::Duration;

use cerebro_archive::Ecosystem;

/// The default: two days, long enough for most compromised releases to be noticed and pulled.
pub const DEFAULT_MIN_RELEASE_AGE: Duration = Duration::from_secs(2 * 86_400);

/// Parses an age as the config and `CEREBRO_MIN_RELEASE_AGE` take it: `0` (off), or a number
/// with a unit: `30s`, `30m`, `48h`, `2d`, `1w` (long forms such as `2 days` too).
///
/// A bare number other than 0 is an error: `2` could mean days or hours, and guessing wrong
/// silently weakens (or needlessly tightens) the guard.
pub fn parse_age(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let digits = t.bytes().take_while(u8::is_ascii_digit).count();
    let (number, unit) = t.split_at(digits);
    let unit = unit.trim().to_ascii_lowercase();
    let usage = "use a number with a unit (30m, 48h, 2d, 1w) or 0 to turn the cooldown off";
    let n: u64 = number
        .parse()
        .map_err(|_| format!("`{t}` is not an age: {usage}"))?;
    let seconds = match unit.as_str() {
        "" if n == 0 => 0,
        "" => return Err(format!("`{t}` has no unit: {usage}")),
        "s" | "sec" | "secs" | "second" | "seconds" => 1,
        "m" | "min" | "mins" | "minute" | "minutes" => 60,
        "h" | "hr" | "hrs" | "hour" | "hours" => 3_600,
        "d" | "day" | "days" => 86_400,
        "w" | "week" | "weeks" => 7 * 86_400,
        _ => return Err(format!("`{t}` has an unknown unit: {usage}")),
    };
    n.checked_mul(seconds)
        .map(Duration::from_secs)
        .ok_or_else(|| format!("`{t}` is too long"))
}

/// A setting as people say it: `2 days`, `48 hours` when not whole days, `30 minutes`.
pub fn describe(age: Duration) -> String {
    let s = age.as_secs();
    let (n, unit) = if s == 0 {
        (0, "second")
    } else if s.is_multiple_of(604_800) && s >= 14 * 86_400 {
        (s / 604_800, "week")
    } else if s.is_multiple_of(86_400) {
        (s / 86_400, "day")
    } else if s.is_multiple_of(3_600) {
        (s / 3_600, "hour")
    } else if s.is_multiple_of(60) {
        (s / 60, "minute")
    } else {
        (s, "second")
    };
    plural(n, unit)
}

/// How long ago something happened, rounded down to a unit that reads well: `40 minutes`,
/// `5 hours` (up to two days), then days.
pub fn ago(age: Duration) -> String {
    let s = age.as_secs();
    if s < 60 {
        plural(s, "second")
    } else if s < 3_600 {
        plural(s / 60, "minute")
    } else if s < 2 * 86_400 {
        plural(s / 3_600, "hour")
    } else {
        plural(s / 86_400, "day")
    }
}

fn plural(n: u64, unit: &str) -> String {
    if n == 1 {
        format!("1 {unit}")
    } else {
        format!("{n} {unit}s")
    }
}

/// Whether `name` is exempt under these patterns: a package name (PyPI names compared
/// normalised), or a prefix ending in `*` (`@myorg/*` for an npm scope, `myorg-*`).
pub fn exempt(patterns: &[String], ecosystem: Ecosystem, name: &str) -> bool {
    let norm = |s: &str| match ecosystem {
        Ecosystem::Pypi => crate::index::normalize_pypi_name(s),
        Ecosystem::Npm => s.to_owned(),
    };
    let name = norm(name);
    patterns.iter().any(|p| match p.strip_suffix('*') {
        Some(prefix) => match ecosystem {
            // `foo_*` and `foo-*` are the same prefix once normalised; keep a trailing `-`.
            Ecosystem::Pypi => {
                let sep = prefix.ends_with(['-', '_', '.']);
                let mut n = norm(prefix);
                if sep {
                    n.push('-');
                }
                name.starts_with(&n)
            }
            Ecosystem::Npm => name.starts_with(prefix),
        },
        None => norm(p) == name,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages_parse_with_units() {
        assert_eq!(parse_age("0").unwrap(), Duration::ZERO);
        assert_eq!(parse_age(" 2d ").unwrap(), DEFAULT_MIN_RELEASE_AGE);
        assert_eq!(parse_age("48h").unwrap(), DEFAULT_MIN_RELEASE_AGE);
        assert_eq!(parse_age("30m").unwrap(), Duration::from_secs(1_800));
        assert_eq!(parse_age("2 days").unwrap(), DEFAULT_MIN_RELEASE_AGE);
        assert_eq!(parse_age("1w").unwrap(), Duration::from_secs(604_800));
        assert_eq!(parse_age("0h").unwrap(), Duration::ZERO);
        for bad in ["", "2", "2x", "d", "-1d", "1.5d", "two days"] {
            let err = parse_age(bad).unwrap_err();
            assert!(
                err.contains("2d") || err.contains("too long"),
                "{bad}: {err}"
            );
        }
    }

    #[test]
    fn ages_read_well() {
        assert_eq!(describe(DEFAULT_MIN_RELEASE_AGE), "2 days");
        assert_eq!(describe(Duration::from_secs(36 * 3600)), "36 hours");
        assert_eq!(describe(Duration::from_secs(1800)), "30 minutes");
        assert_eq!(describe(Duration::from_secs(3600)), "1 hour");
        assert_eq!(ago(Duration::from_secs(3_700)), "1 hour");
        assert_eq!(ago(Duration::from_secs(47 * 3_600)), "47 hours");
        assert_eq!(ago(Duration::from_secs(5 * 86_400)), "5 days");
        assert_eq!(ago(Duration::from_secs(42)), "42 seconds");
    }

    #[test]
    fn exemptions_by_name_and_scope() {
        let p = vec![
            "@myorg/*".to_owned(),
            "My_Pkg".to_owned(),
            "corp-*".to_owned(),
        ];
        assert!(exempt(&p, Ecosystem::Npm, "@myorg/util"));
        assert!(!exempt(&p, Ecosystem::Npm, "@other/util"));
        assert!(!exempt(&p, Ecosystem::Npm, "@myorgx/util"));
        assert!(exempt(&p, Ecosystem::Pypi, "my-pkg"));
        assert!(exempt(&p, Ecosystem::Pypi, "corp_tools"));
        assert!(!exempt(&p, Ecosystem::Pypi, "corporate"));
        assert!(!exempt(&p, Ecosystem::Npm, "my-pkg"));
    }
}
