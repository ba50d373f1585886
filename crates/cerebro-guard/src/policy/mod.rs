//! Policy: what to do with a flagged package (block, prompt, warn, off), the user's TOML
//! config, the allowlist, the prompt, and the verdict cache.
//!
//! Everything here is decided before the real package manager runs: the guard gathers the
//! [`Flagged`] packages of one install, drops the ones the [`Allowlist`] lets through, and asks
//! [`decide`] what to do with the rest under the [`Config`]'s [`Mode`]. The environment
//! variables this stage reads are declared in `cerebro_settings` with all the others.

mod allowlist;
mod config;
mod decide;
mod prompt;
pub mod release_age;
mod verdicts;

use std::io::IsTerminal;
use std::path::PathBuf;

pub use allowlist::{Allowlist, Entry};
pub use config::{parse_size, Config, Mode, ReleaseDiff, DEFAULT_CACHE_MAX_SIZE};
pub use decide::{decide, Choice, Decision, Flagged, Prompter};
pub use prompt::TerminalPrompter;
pub use verdicts::{CachedVerdict, VerdictCache};

pub use cerebro_settings::{
    cache_dir, config_dir, ENV_CACHE_DIR, ENV_CI, ENV_CONFIG_DIR, ENV_MIN_RELEASE_AGE, ENV_POLICY,
    ENV_PUBLIC_NPM_URL, ENV_PUBLIC_PYPI_URL, ENV_RELEASE_DIFF,
};

/// File name of the config inside [`config_dir`].
pub const CONFIG_FILE: &str = "config.toml";
/// File name of the allowlist inside [`config_dir`].
pub const ALLOWLIST_FILE: &str = "allowlist.toml";

/// Why the policy stage could not read or write the user's settings. Each message is one line
/// that names the file or variable at fault and says what to do.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    /// A policy mode that is not one of the four.
    #[error("unknown policy `{0}`: use block, prompt, warn or off")]
    UnknownMode(String),

    /// `CEREBRO_POLICY` holds something that is not a mode.
    #[error("{var}=`{value}` is not a policy: set it to block, prompt, warn or off, or unset it")]
    BadEnv { var: &'static str, value: String },

    /// A variable (`CEREBRO_MIN_RELEASE_AGE`, `CEREBRO_PUBLIC_*_URL`) holds a bad value.
    #[error("{var}: {problem}")]
    BadVar { var: &'static str, problem: String },

    /// A settings file exists but could not be read.
    #[error("cannot read {}: {error}", path.display())]
    Read {
        path: PathBuf,
        error: std::io::Error,
    },

    /// A settings file is not valid TOML.
    #[error("{} is not valid TOML (line {line}: {message}): fix or remove it", path.display())]
    Syntax {
        path: PathBuf,
        line: usize,
        message: String,
    },

    /// A key the file's format does not have (often a typo).
    #[error("{} has an unknown key `{key}` (known: {known}): fix or remove it", path.display())]
    UnknownKey {
        path: PathBuf,
        key: String,
        known: &'static str,
    },

    /// A known key with a value it cannot take.
    #[error("{}: `{key}` {problem}", path.display())]
    BadValue {
        path: PathBuf,
        key: String,
        problem: String,
    },

    /// A package name (with or without version) that cannot be an allowlist entry.
    #[error("invalid {ecosystem} package `{spec}`: {problem}")]
    BadEntry {
        ecosystem: cerebro_archive::Ecosystem,
        spec: String,
        problem: String,
    },

    /// Neither `CEREBRO_CONFIG_DIR` nor a home folder to put the settings in.
    #[error("cannot find a config folder for this user: set {ENV_CONFIG_DIR} to one")]
    NoConfigDir,

    /// The allowlist could not be locked or written.
    #[error("cannot write {}: {error}", path.display())]
    Write {
        path: PathBuf,
        error: std::io::Error,
    },
}

/// The public registries the release-age cooldown asks for release times when a user's
/// registry publishes none: `$CEREBRO_PUBLIC_PYPI_URL` and `$CEREBRO_PUBLIC_NPM_URL` when set
/// and non-empty, else pypi.org and registry.npmjs.org. A value that is not a URL is an error.
pub fn public_registries() -> Result<(reqwest::Url, reqwest::Url), PolicyError> {
    let get = |var: &'static str, default: &str| {
        let text = std::env::var(var)
            .ok()
            .filter(|v| !v.trim().is_empty())
            .unwrap_or_else(|| default.to_owned());
        let mut url = reqwest::Url::parse(text.trim()).map_err(|e| PolicyError::BadVar {
            var,
            problem: format!("`{text}` is not a URL ({e})"),
        })?;
        if !url.path().ends_with('/') {
            let path = format!("{}/", url.path());
            url.set_path(&path);
        }
        Ok(url)
    };
    Ok((
        get(ENV_PUBLIC_PYPI_URL, "https://pypi.org/")?,
        get(ENV_PUBLIC_NPM_URL, "https://registry.npmjs.org/")?,
    ))
}

/// Whether someone can answer a prompt: stdin and stderr are terminals and `CI` is unset or
/// empty. When not, [`Mode::Prompt`] blocks instead of asking.
pub fn interactive() -> bool {
    let ci = std::env::var_os(ENV_CI).is_some_and(|v| !v.is_empty());
    !ci && std::io::stdin().is_terminal() && std::io::stderr().is_terminal()
}
