//! The user's policy settings: `config.toml` in [`config_dir`](super::config_dir), then the
//! `CEREBRO_POLICY` variable on top.

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::PolicyError;
use cerebro_scan::detect::{Thresholds, Verdict};

/// What the guard does when a package is flagged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Stop the install; nothing is installed.
    Block,
    /// Ask, package by package, on a terminal; block when nobody can answer (CI, no TTY).
    #[default]
    Prompt,
    /// Say what was flagged and install anyway.
    Warn,
    /// Install without a word (scanning still happens, for the cache and `--json`).
    Off,
}

impl Mode {
    /// Every mode, in the order help texts list them.
    pub const ALL: [Mode; 4] = [Mode::Block, Mode::Prompt, Mode::Warn, Mode::Off];

    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Block => "block",
            Mode::Prompt => "prompt",
            Mode::Warn => "warn",
            Mode::Off => "off",
        }
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Mode {
    type Err = PolicyError;

    /// Case-insensitive, surrounding spaces ignored: `Block`, ` warn ` are fine.
    fn from_str(s: &str) -> Result<Mode, PolicyError> {
        let wanted = s.trim();
        Mode::ALL
            .into_iter()
            .find(|m| m.as_str().eq_ignore_ascii_case(wanted))
            .ok_or_else(|| PolicyError::UnknownMode(s.to_owned()))
    }
}

/// The known keys of `config.toml`, for the unknown-key error.
const KNOWN_KEYS: &str = "policy, flag_suspicious, min_release_age, min_release_age_exempt, \
                          release_diff, cache_max_size, upstream_deadline, [thresholds] malicious, \
                          suspicious";

/// The download cache's default cap: big enough for the trees of many projects (a data
/// science environment's wheels are a few GB), small enough not to fill a laptop.
pub const DEFAULT_CACHE_MAX_SIZE: u64 = 10 << 30;

/// How long the guard index may take to answer one request (fetch from upstream, then
/// judge): four minutes, so that it answers before the installers' own timeouts toward it
/// fire (bun's HTTP client gives up after five idle minutes and is not told otherwise; pip,
/// uv, npm, pnpm and yarn are given [`Config::installer_timeout`]). A 500 MiB wheel needs about 2 MB/s to make it.
pub const DEFAULT_UPSTREAM_DEADLINE: Duration = Duration::from_secs(240);

/// Parses [`Config::upstream_deadline`]: a duration with a unit (`90s`, `4m`, `1h`), not zero.
fn parse_deadline(s: &str) -> Result<Duration, String> {
    match super::release_age::parse_age(s) {
        Ok(d) if d.is_zero() => Err("must be longer than 0 (a guard that never waits would \
                                     refuse every download)"
            .to_owned()),
        Ok(d) => Ok(d),
        Err(_) => Err(format!(
            "`{}` is not a duration: use a number with a unit (90s, 4m, 1h)",
            s.trim()
        )),
    }
}

/// Parses a size: bytes, or a number with `K`, `M`, `G`, `T` (powers of 1024; `KB`, `KiB`,
/// `MB`… read the same), `0` for no cap.
pub fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let value: f64 = number
        .parse()
        .map_err(|_| format!("must be a size such as 10G or 500M, not \"{s}\""))?;
    let shift = match unit
        .trim()
        .to_ascii_lowercase()
        .trim_end_matches('b')
        .trim_end_matches('i')
    {
        "" => 0,
        "k" => 10,
        "m" => 20,
        "g" => 30,
        "t" => 40,
        _ => return Err(format!("must be a size such as 10G or 500M, not \"{s}\"")),
    };
    Ok((value * (1u64 << shift) as f64) as u64)
}

/// Which ecosystems' releases the guard also judges against the release before them
/// (`crates/cerebro-scan/src/diff.rs`). npm by default: measured on 218 real npm updates it
/// flagged none, while on PyPI it flagged 9 of 123 (test and build scripts of sdists;
/// docs/EVALUATION.md, "Release diff"), too many to stop installs on by default.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReleaseDiff {
    Off,
    Npm,
    All,
}

impl ReleaseDiff {
    /// Whether releases of `ecosystem` are compared with the release before.
    pub fn covers(self, ecosystem: cerebro_archive::Ecosystem) -> bool {
        match self {
            ReleaseDiff::Off => false,
            ReleaseDiff::Npm => ecosystem == cerebro_archive::Ecosystem::Npm,
            ReleaseDiff::All => true,
        }
    }

    /// `off`, `npm` or `all`.
    pub fn parse(s: &str) -> Result<ReleaseDiff, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "off" | "0" | "false" => Ok(ReleaseDiff::Off),
            "npm" => Ok(ReleaseDiff::Npm),
            "all" | "1" | "true" => Ok(ReleaseDiff::All),
            other => Err(format!("must be off, npm or all, not \"{other}\"")),
        }
    }
}

/// The user's policy: what to do with flagged packages and where the score boundaries lie.
///
/// Read from `config.toml` in [`config_dir`](super::config_dir) (`~/.config/cerebro` on
/// Linux, or `$CEREBRO_CONFIG_DIR`). Every key is optional; a missing file means the defaults:
///
/// ```toml
/// policy = "prompt"          # block | prompt | warn | off
/// flag_suspicious = false    # also stop on "suspicious" verdicts, not only "malicious"
/// min_release_age = "2d"     # hide releases younger than this from the installer; 0: off
/// min_release_age_exempt = ["@myorg/*", "mypkg"]   # names, or prefixes ending in `*`
/// release_diff = "npm"       # judge what a release changed since the one before: off | npm | all
/// cache_max_size = "10G"     # the download cache's cap (least recently used go first); 0: none
/// upstream_deadline = "4m"   # the most one download and its judgement may take
///
/// [thresholds]               # scores from 0 to 1; leave out to use the model's own
/// malicious = 0.85           # at or above: malicious
/// suspicious = 0.42          # at or above (below malicious): suspicious
/// ```
///
/// An unknown key, a value of the wrong type, a threshold outside 0..=1 or a `suspicious`
/// above `malicious` is an error naming the file and the key, so a typo never silently
/// weakens the guard. `CEREBRO_POLICY=block|prompt|warn|off` overrides `policy` for one run,
/// `CEREBRO_MIN_RELEASE_AGE` overrides `min_release_age`, `CEREBRO_RELEASE_DIFF` `release_diff`,
/// `CEREBRO_CACHE_MAX_SIZE` `cache_max_size`, `CEREBRO_UPSTREAM_DEADLINE` `upstream_deadline`.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub mode: Mode,
    /// Overrides the model's malicious threshold.
    pub malicious: Option<f32>,
    /// Overrides the suspicious threshold (by default half the malicious one).
    pub suspicious: Option<f32>,
    /// Treat `suspicious` verdicts like `malicious` ones (block, prompt or warn on them).
    pub flag_suspicious: bool,
    /// Releases published less than this long ago are hidden from the installer (zero: off).
    pub min_release_age: Duration,
    /// Packages the cooldown leaves alone: names, or prefixes ending in `*`.
    pub min_release_age_exempt: Vec<String>,
    /// Which ecosystems' releases are judged against the release before them.
    pub release_diff: ReleaseDiff,
    /// Most bytes the download cache keeps; the least recently used artifacts go first
    /// (0: no cap).
    pub cache_max_size: u64,
    /// The most the guard index takes to answer one request of the installer (an upstream
    /// document or artifact fetched, and judged): past it the request is answered with an
    /// error and the run ends with 78, naming what was too slow, before the installer's own
    /// timeout turns it into a traceback. Never zero.
    pub upstream_deadline: Duration,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            mode: Mode::Prompt,
            malicious: None,
            suspicious: None,
            flag_suspicious: false,
            min_release_age: super::release_age::DEFAULT_MIN_RELEASE_AGE,
            min_release_age_exempt: Vec::new(),
            release_diff: ReleaseDiff::Npm,
            cache_max_size: DEFAULT_CACHE_MAX_SIZE,
            upstream_deadline: DEFAULT_UPSTREAM_DEADLINE,
        }
    }
}

impl Config {
    /// The user's config: `config.toml` in [`config_dir`](super::config_dir) if it exists,
    /// then `$CEREBRO_POLICY` over its mode.
    pub fn load() -> Result<Config, PolicyError> {
        let path = super::config_dir().map(|d| d.join(super::CONFIG_FILE));
        let env = std::env::var_os(super::ENV_POLICY).map(|v| v.to_string_lossy().into_owned());
        let mut config = Config::load_from(path.as_deref(), env.as_deref())?;
        let age =
            std::env::var_os(super::ENV_MIN_RELEASE_AGE).map(|v| v.to_string_lossy().into_owned());
        config.apply_min_release_age_env(age.as_deref())?;
        let diff =
            std::env::var_os(super::ENV_RELEASE_DIFF).map(|v| v.to_string_lossy().into_owned());
        if let Some(value) = diff.as_deref().filter(|v| !v.trim().is_empty()) {
            config.release_diff =
                ReleaseDiff::parse(value).map_err(|problem| PolicyError::BadVar {
                    var: super::ENV_RELEASE_DIFF,
                    problem,
                })?;
        }
        let cap = std::env::var_os(cerebro_settings::ENV_CACHE_MAX_SIZE)
            .map(|v| v.to_string_lossy().into_owned());
        if let Some(value) = cap.as_deref().filter(|v| !v.trim().is_empty()) {
            config.cache_max_size = parse_size(value).map_err(|problem| PolicyError::BadVar {
                var: cerebro_settings::ENV_CACHE_MAX_SIZE,
                problem,
            })?;
        }
        let deadline = std::env::var_os(cerebro_settings::ENV_UPSTREAM_DEADLINE)
            .map(|v| v.to_string_lossy().into_owned());
        if let Some(value) = deadline.as_deref().filter(|v| !v.trim().is_empty()) {
            config.upstream_deadline =
                parse_deadline(value).map_err(|problem| PolicyError::BadVar {
                    var: cerebro_settings::ENV_UPSTREAM_DEADLINE,
                    problem,
                })?;
        }
        Ok(config)
    }

    /// The timeout the installers get toward the guard index: a minute over
    /// [`Config::upstream_deadline`], so that the guard always answers first and the run
    /// ends with its verdict or its one line, not the installer's read-timeout traceback.
    pub fn installer_timeout(&self) -> Duration {
        self.upstream_deadline + Duration::from_secs(60)
    }

    /// `CEREBRO_MIN_RELEASE_AGE` over the file's `min_release_age`; empty counts as unset.
    pub fn apply_min_release_age_env(&mut self, value: Option<&str>) -> Result<(), PolicyError> {
        if let Some(value) = value.filter(|v| !v.trim().is_empty()) {
            self.min_release_age =
                super::release_age::parse_age(value).map_err(|problem| PolicyError::BadVar {
                    var: super::ENV_MIN_RELEASE_AGE,
                    problem,
                })?;
        }
        Ok(())
    }

    /// [`Config::load`] with the file and the variable's value given: `path` `None` or a
    /// missing file means the defaults; an empty `env_policy` counts as unset.
    pub fn load_from(path: Option<&Path>, env_policy: Option<&str>) -> Result<Config, PolicyError> {
        let mut config = match path {
            Some(path) => match std::fs::read_to_string(path) {
                Ok(text) => Config::parse(&text, path)?,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Config::default(),
                Err(error) => {
                    return Err(PolicyError::Read {
                        path: path.to_owned(),
                        error,
                    })
                }
            },
            None => Config::default(),
        };
        if let Some(value) = env_policy.filter(|v| !v.trim().is_empty()) {
            config.mode = value.parse().map_err(|_| PolicyError::BadEnv {
                var: super::ENV_POLICY,
                value: value.to_owned(),
            })?;
        }
        Ok(config)
    }

    /// Parses the text of `config.toml`; `path` only names the file in errors.
    pub fn parse(text: &str, path: &Path) -> Result<Config, PolicyError> {
        let table = parse_table(text, path)?;
        let mut config = Config::default();
        let bad = |key: &str, problem: String| PolicyError::BadValue {
            path: path.to_owned(),
            key: key.to_owned(),
            problem,
        };
        for (key, value) in &table {
            match (key.as_str(), value) {
                ("policy", toml::Value::String(s)) => {
                    config.mode = s.parse().map_err(|_| {
                        bad(
                            "policy",
                            format!("must be block, prompt, warn or off, not \"{s}\""),
                        )
                    })?
                }
                ("policy", other) => {
                    return Err(bad(
                        "policy",
                        format!(
                            "must be a string (\"block\", \"prompt\", \"warn\" or \"off\"), not {}",
                            other.type_str()
                        ),
                    ))
                }
                ("flag_suspicious", toml::Value::Boolean(b)) => config.flag_suspicious = *b,
                ("flag_suspicious", other) => {
                    return Err(bad(
                        "flag_suspicious",
                        format!("must be true or false, not {}", other.type_str()),
                    ))
                }
                ("min_release_age", toml::Value::String(s)) => {
                    config.min_release_age = super::release_age::parse_age(s)
                        .map_err(|problem| bad("min_release_age", problem))?
                }
                ("min_release_age", toml::Value::Integer(0)) => {
                    config.min_release_age = Duration::ZERO
                }
                ("min_release_age", other) => {
                    return Err(bad(
                        "min_release_age",
                        format!(
                            "must be a string with a unit (\"2d\", \"48h\", \"30m\") or 0, not {}",
                            match other {
                                toml::Value::Integer(i) => i.to_string(),
                                other => other.type_str().to_owned(),
                            }
                        ),
                    ))
                }
                ("min_release_age_exempt", toml::Value::Array(items)) => {
                    config.min_release_age_exempt = items
                        .iter()
                        .map(|i| match i {
                            toml::Value::String(s) if !s.trim().is_empty() => {
                                Ok(s.trim().to_owned())
                            }
                            other => Err(bad(
                                "min_release_age_exempt",
                                format!(
                                    "must list package names or prefixes (\"@myorg/*\"), not {}",
                                    other.type_str()
                                ),
                            )),
                        })
                        .collect::<Result<_, _>>()?
                }
                ("min_release_age_exempt", other) => {
                    return Err(bad(
                        "min_release_age_exempt",
                        format!(
                            "must be a list of names ([\"@myorg/*\", \"mypkg\"]), not {}",
                            other.type_str()
                        ),
                    ))
                }
                ("release_diff", toml::Value::String(v)) => {
                    config.release_diff =
                        ReleaseDiff::parse(v).map_err(|problem| bad("release_diff", problem))?
                }
                ("cache_max_size", toml::Value::String(v)) => {
                    config.cache_max_size =
                        parse_size(v).map_err(|problem| bad("cache_max_size", problem))?
                }
                ("cache_max_size", toml::Value::Integer(v)) if *v >= 0 => {
                    config.cache_max_size = *v as u64
                }
                ("cache_max_size", other) => {
                    return Err(bad(
                        "cache_max_size",
                        format!("must be a size such as \"10G\", not {}", other.type_str()),
                    ))
                }
                ("upstream_deadline", toml::Value::String(v)) => {
                    config.upstream_deadline =
                        parse_deadline(v).map_err(|problem| bad("upstream_deadline", problem))?
                }
                ("upstream_deadline", other) => {
                    return Err(bad(
                        "upstream_deadline",
                        format!(
                            "must be a duration such as \"4m\" or \"90s\", not {}",
                            other.type_str()
                        ),
                    ))
                }
                ("release_diff", other) => {
                    return Err(bad(
                        "release_diff",
                        format!("must be off, npm or all, not {}", other.type_str()),
                    ))
                }
                ("thresholds", toml::Value::Table(thresholds)) => {
                    for (name, value) in thresholds {
                        let full = format!("thresholds.{name}");
                        let slot = match name.as_str() {
                            "malicious" => &mut config.malicious,
                            "suspicious" => &mut config.suspicious,
                            _ => return Err(unknown_key(path, &full)),
                        };
                        let score = match value {
                            toml::Value::Float(f) => *f,
                            toml::Value::Integer(i) => *i as f64,
                            other => {
                                return Err(bad(
                                    &full,
                                    format!(
                                        "must be a number from 0 to 1, not {}",
                                        other.type_str()
                                    ),
                                ))
                            }
                        };
                        if !(0.0..=1.0).contains(&score) {
                            return Err(bad(
                                &full,
                                format!("must be a number from 0 to 1, not {score}"),
                            ));
                        }
                        *slot = Some(score as f32);
                    }
                }
                ("thresholds", other) => {
                    return Err(bad(
                        "thresholds",
                        format!("must be a table ([thresholds]), not {}", other.type_str()),
                    ))
                }
                (key, _) => return Err(unknown_key(path, key)),
            }
        }
        if let (Some(m), Some(s)) = (config.malicious, config.suspicious) {
            if s > m {
                return Err(bad(
                    "thresholds.suspicious",
                    format!("({s}) must not be above thresholds.malicious ({m})"),
                ));
            }
        }
        Ok(config)
    }

    /// The verdict boundaries in force: the model's, with this config's overrides.
    ///
    /// A `malicious` override alone brings `suspicious` to half of it (as for the model's
    /// own); a `suspicious` override alone is capped at the malicious threshold.
    pub fn thresholds(&self, model: Thresholds) -> Thresholds {
        match (self.malicious, self.suspicious) {
            (Some(malicious), Some(suspicious)) => Thresholds {
                malicious,
                suspicious,
            },
            (Some(malicious), None) => Thresholds::for_model(malicious),
            (None, Some(suspicious)) => Thresholds {
                malicious: model.malicious,
                suspicious: suspicious.min(model.malicious),
            },
            (None, None) => model,
        }
    }

    /// Whether a verdict stops the install under this config (goes to the mode): always
    /// for `malicious`, for `suspicious` only with `flag_suspicious`.
    pub fn flags(&self, verdict: Verdict) -> bool {
        match verdict {
            Verdict::Malicious => true,
            Verdict::Suspicious => self.flag_suspicious,
            Verdict::Benign => false,
        }
    }
}

/// Parses TOML into a table, turning a syntax error into one line with its line number.
pub(super) fn parse_table(text: &str, path: &Path) -> Result<toml::Table, PolicyError> {
    toml::from_str::<toml::Table>(text).map_err(|e| PolicyError::Syntax {
        path: path.to_owned(),
        line: e.span().map_or(1, |span| {
            text[..span.start.min(text.len())].matches('\n').count() + 1
        }),
        message: e.message().trim().replace('\n', "; "),
    })
}

fn unknown_key(path: &Path, key: &str) -> PolicyError {
    PolicyError::UnknownKey {
        path: PathBuf::from(path),
        key: key.to_owned(),
        known: KNOWN_KEYS,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config, PolicyError> {
        Config::parse(text, Path::new("/cfg/config.toml"))
    }

    #[test]
    fn mode_parses_case_insensitively_and_round_trips() {
        for mode in Mode::ALL {
            assert_eq!(mode.as_str().parse::<Mode>().unwrap(), mode);
            assert_eq!(
                mode.to_string().to_uppercase().parse::<Mode>().unwrap(),
                mode
            );
        }
        assert_eq!(" Warn ".parse::<Mode>().unwrap(), Mode::Warn);
        let err = "ask".parse::<Mode>().unwrap_err().to_string();
        assert!(err.contains("`ask`"), "{err}");
        for mode in Mode::ALL {
            assert!(err.contains(mode.as_str()), "{err}");
        }
        assert_eq!(Mode::default(), Mode::Prompt);
    }

    #[test]
    fn mode_serde_is_lowercase() {
        assert_eq!(serde_json::to_string(&Mode::Block).unwrap(), "\"block\"");
        assert_eq!(serde_json::from_str::<Mode>("\"off\"").unwrap(), Mode::Off);
    }

    #[test]
    fn empty_or_missing_config_is_the_default() {
        assert_eq!(parse("").unwrap(), Config::default());
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("config.toml");
        assert_eq!(
            Config::load_from(Some(&missing), None).unwrap(),
            Config::default()
        );
        assert_eq!(Config::load_from(None, None).unwrap().mode, Mode::Prompt);
    }

    #[test]
    fn full_config_is_read() {
        let config = parse(
            "policy = \"Block\"\nflag_suspicious = true\n[thresholds]\nmalicious = 0.9\nsuspicious = 0.3\n",
        )
        .unwrap();
        assert_eq!(
            config,
            Config {
                mode: Mode::Block,
                malicious: Some(0.9),
                suspicious: Some(0.3),
                flag_suspicious: true,
                ..Config::default()
            }
        );
        assert_eq!(
            parse("[thresholds]\nmalicious = 1").unwrap().malicious,
            Some(1.0)
        );
    }

    #[test]
    fn unknown_keys_are_named_with_the_file() {
        let err = parse("polcy = \"block\"").unwrap_err().to_string();
        assert!(
            err.contains("/cfg/config.toml") && err.contains("`polcy`"),
            "{err}"
        );
        let err = parse("[thresholds]\nmalicous = 0.5")
            .unwrap_err()
            .to_string();
        assert!(err.contains("`thresholds.malicous`"), "{err}");
        assert!(!err.contains('\n'));
    }

    #[test]
    fn bad_values_are_errors() {
        for (text, key) in [
            ("policy = \"ask\"", "`policy`"),
            ("policy = 1", "`policy`"),
            ("flag_suspicious = \"yes\"", "`flag_suspicious`"),
            ("thresholds = 0.5", "`thresholds`"),
            ("[thresholds]\nmalicious = 1.5", "`thresholds.malicious`"),
            ("[thresholds]\nsuspicious = -0.1", "`thresholds.suspicious`"),
            (
                "[thresholds]\nmalicious = \"high\"",
                "`thresholds.malicious`",
            ),
            (
                "[thresholds]\nmalicious = 0.3\nsuspicious = 0.6",
                "`thresholds.suspicious`",
            ),
        ] {
            let err = parse(text).unwrap_err().to_string();
            assert!(
                err.contains("/cfg/config.toml") && err.contains(key),
                "{text}: {err}"
            );
            assert!(!err.contains('\n'), "{err}");
        }
    }

    #[test]
    fn syntax_errors_are_one_line_with_the_line_number() {
        let err = parse("policy = \"block\"\nflag_suspicious = \n")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("/cfg/config.toml") && err.contains("line 2"),
            "{err}"
        );
        assert!(!err.contains('\n'), "{err}");
    }

    #[test]
    fn env_policy_overrides_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        std::fs::write(&path, "policy = \"block\"\n").unwrap();
        assert_eq!(
            Config::load_from(Some(&path), None).unwrap().mode,
            Mode::Block
        );
        assert_eq!(
            Config::load_from(Some(&path), Some("WARN")).unwrap().mode,
            Mode::Warn
        );
        assert_eq!(
            Config::load_from(Some(&path), Some("")).unwrap().mode,
            Mode::Block
        );
        let err = Config::load_from(Some(&path), Some("yolo"))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("CEREBRO_POLICY") && err.contains("yolo"),
            "{err}"
        );
    }

    #[test]
    fn unreadable_config_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        // A folder where the file should be: exists, cannot be read as text.
        let err = Config::load_from(Some(dir.path()), None)
            .unwrap_err()
            .to_string();
        assert!(err.contains(&dir.path().display().to_string()), "{err}");
    }

    #[test]
    fn thresholds_apply_overrides() {
        let model = Thresholds::for_model(0.8);
        let mut config = Config::default();
        assert_eq!(config.thresholds(model), model);
        config.malicious = Some(0.6);
        assert_eq!(config.thresholds(model), Thresholds::for_model(0.6));
        config.suspicious = Some(0.5);
        assert_eq!(
            config.thresholds(model),
            Thresholds {
                malicious: 0.6,
                suspicious: 0.5
            }
        );
        config.malicious = None;
        config.suspicious = Some(0.95);
        assert_eq!(
            config.thresholds(model),
            Thresholds {
                malicious: 0.8,
                suspicious: 0.8
            }
        );
    }

    #[test]
    fn cache_max_size_is_read_from_the_file() {
        assert_eq!(parse("").unwrap().cache_max_size, DEFAULT_CACHE_MAX_SIZE);
        assert_eq!(
            parse("cache_max_size = \"500M\"").unwrap().cache_max_size,
            500 << 20
        );
        assert_eq!(parse("cache_max_size = 0").unwrap().cache_max_size, 0);
        assert!(parse("cache_max_size = \"lots\"").is_err());
        assert!(parse("cache_max_size = true").is_err());
        assert_eq!(parse_size("1.5GiB").unwrap(), 3 << 29);
        assert_eq!(parse_size("2kb").unwrap(), 2048);
        assert_eq!(parse_size("123").unwrap(), 123);
        assert!(parse_size("10X").is_err());
    }

    #[test]
    fn upstream_deadline_is_read_from_the_file_and_the_installers_wait_longer() {
        let default = parse("").unwrap();
        assert_eq!(default.upstream_deadline, DEFAULT_UPSTREAM_DEADLINE);
        assert!(default.installer_timeout() > default.upstream_deadline);
        let set = parse("upstream_deadline = \"90s\"").unwrap();
        assert_eq!(set.upstream_deadline, Duration::from_secs(90));
        assert_eq!(set.installer_timeout(), Duration::from_secs(150));
        for bad in [
            "upstream_deadline = \"0\"",
            "upstream_deadline = \"soon\"",
            "upstream_deadline = 90",
        ] {
            let error = parse(bad).unwrap_err().to_string();
            assert!(error.contains("upstream_deadline"), "{bad}: {error}");
        }
    }

    #[test]
    fn release_diff_is_read_from_the_file() {
        assert_eq!(parse("").unwrap().release_diff, ReleaseDiff::Npm);
        assert_eq!(
            parse("release_diff = \"all\"").unwrap().release_diff,
            ReleaseDiff::All
        );
        assert_eq!(
            parse("release_diff = \"OFF\"").unwrap().release_diff,
            ReleaseDiff::Off
        );
        assert!(parse("release_diff = \"pypi\"").is_err());
        assert!(parse("release_diff = true").is_err());
        assert!(ReleaseDiff::Npm.covers(cerebro_archive::Ecosystem::Npm));
        assert!(!ReleaseDiff::Npm.covers(cerebro_archive::Ecosystem::Pypi));
        assert!(ReleaseDiff::All.covers(cerebro_archive::Ecosystem::Pypi));
        assert!(!ReleaseDiff::Off.covers(cerebro_archive::Ecosystem::Npm));
    }

    #[test]
    fn min_release_age_is_read_from_the_file_and_the_variable() {
        assert_eq!(
            parse("").unwrap().min_release_age,
            Duration::from_secs(2 * 86_400)
        );
        let c =
            parse("min_release_age = \"36h\"\nmin_release_age_exempt = [\"@myorg/*\", \"mypkg\"]")
                .unwrap();
        assert_eq!(c.min_release_age, Duration::from_secs(36 * 3_600));
        assert_eq!(c.min_release_age_exempt, ["@myorg/*", "mypkg"]);
        assert_eq!(
            parse("min_release_age = 0").unwrap().min_release_age,
            Duration::ZERO
        );
        for (text, key) in [
            ("min_release_age = 2", "`min_release_age`"),
            ("min_release_age = \"2\"", "`min_release_age`"),
            ("min_release_age = \"soon\"", "`min_release_age`"),
            ("min_release_age_exempt = \"x\"", "`min_release_age_exempt`"),
            ("min_release_age_exempt = [1]", "`min_release_age_exempt`"),
        ] {
            let err = parse(text).unwrap_err().to_string();
            assert!(err.contains(key) && !err.contains('\n'), "{text}: {err}");
        }
        let mut c = Config::default();
        c.apply_min_release_age_env(Some("30m")).unwrap();
        assert_eq!(c.min_release_age, Duration::from_secs(1_800));
        c.apply_min_release_age_env(Some("")).unwrap();
        assert_eq!(c.min_release_age, Duration::from_secs(1_800));
        c.apply_min_release_age_env(Some("0")).unwrap();
        assert_eq!(c.min_release_age, Duration::ZERO);
        let err = c
            .apply_min_release_age_env(Some("2"))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("CEREBRO_MIN_RELEASE_AGE") && err.contains("`2`"),
            "{err}"
        );
    }

    #[test]
    fn flags_suspicious_only_when_asked() {
        let mut config = Config::default();
        assert!(config.flags(Verdict::Malicious));
        assert!(!config.flags(Verdict::Suspicious));
        assert!(!config.flags(Verdict::Benign));
        config.flag_suspicious = true;
        assert!(config.flags(Verdict::Suspicious));
    }
}
