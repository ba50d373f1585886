//! Cerebro's settings from the environment: the name of every `CEREBRO_*` variable the
//! product reads, and the two per-user folders they can move.
//!
//! Every crate reads its variables through the names here, so that this file (and the
//! README's table, which copies it) is the one list a user or a reviewer has to read.

use std::path::PathBuf;

/// Folder of `config.toml` and `allowlist.toml`, instead of the per-user config folder
/// (tests and managed machines set it).
pub const ENV_CONFIG_DIR: &str = "CEREBRO_CONFIG_DIR";
/// Folder of Cerebro's caches (verdicts, downloads), instead of the per-user cache folder.
pub const ENV_CACHE_DIR: &str = "CEREBRO_CACHE_DIR";
/// Overrides the config file's `policy` for one run: `block`, `prompt`, `warn` or `off`.
pub const ENV_POLICY: &str = "CEREBRO_POLICY";
/// Set (non-empty) by CI systems: nobody is there to answer a prompt.
pub const ENV_CI: &str = "CI";

/// Where the user's `config.toml` and `allowlist.toml` live: `$CEREBRO_CONFIG_DIR` when set
/// and non-empty, else the platform's per-user config folder (`~/.config/cerebro` on Linux).
/// `None` only when there is no home folder to derive it from.
pub fn config_dir() -> Option<PathBuf> {
    env_dir(ENV_CONFIG_DIR).or_else(|| {
        directories::ProjectDirs::from("", "", "cerebro").map(|d| d.config_dir().to_path_buf())
    })
}

/// Where Cerebro keeps caches (verdicts, downloads): `$CEREBRO_CACHE_DIR` when set and
/// non-empty, else the platform's per-user cache folder (`~/.cache/cerebro` on Linux).
pub fn cache_dir() -> Option<PathBuf> {
    env_dir(ENV_CACHE_DIR).or_else(|| {
        directories::ProjectDirs::from("", "", "cerebro").map(|d| d.cache_dir().to_path_buf())
    })
}

fn env_dir(var: &str) -> Option<PathBuf> {
    std::env::var_os(var)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
}
