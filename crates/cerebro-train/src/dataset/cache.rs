//! The dataset's download cache: the guard's content-addressed [`Cache`] (`sha256/ab/…`,
//! written through `tmp/` and an atomic rename, sha512 aliases for npm), kept in a folder of
//! its own so that training downloads and install downloads never mix.

use std::path::PathBuf;

pub use cerebro_fetch::cache::{write_atomic, Cache, TempFile};

/// Environment variable naming the cache folder.
pub const CACHE_ENV: &str = cerebro_settings::ENV_DATASET_CACHE;

/// Version of the cache layout; a new layout gets a new folder.
pub const LAYOUT: &str = cerebro_fetch::CacheBucket::Dataset.folder();

/// The default cache folder: `$CEREBRO_DATASET_CACHE`, else the user's cache folder
/// (`~/.cache/cerebro/dataset-v1` on Linux). `None` when the system names no home.
pub fn default_root() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os(CACHE_ENV).filter(|v| !v.is_empty()) {
        return Some(PathBuf::from(dir));
    }
    directories::ProjectDirs::from("", "", "cerebro").map(|d| d.cache_dir().join(LAYOUT))
}
