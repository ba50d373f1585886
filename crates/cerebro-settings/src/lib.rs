//! Cerebro's settings from the environment: the name of every `CEREBRO_*` variable that
//! Cerebro, its shims and its training tools read, and the two per-user folders two of them
//! move.
//!
//! This is the one list. Code reads a variable through its constant here (so a search for the
//! constant finds every reader), the README's "Settings" table copies [`ALL`] (a test checks
//! that it does), and a new variable is added here first. The config file's keys are
//! documented with their parser (`cerebro_guard::policy::Config`).

use std::path::PathBuf;

/// Folder of `config.toml` and `allowlist.toml`, instead of the per-user config folder
/// (tests and managed machines set it).
pub const ENV_CONFIG_DIR: &str = "CEREBRO_CONFIG_DIR";
/// Folder of Cerebro's caches (verdicts, downloads), instead of the per-user cache folder.
pub const ENV_CACHE_DIR: &str = "CEREBRO_CACHE_DIR";
/// Overrides the config file's `policy` for one run: `block`, `prompt`, `warn` or `off`.
pub const ENV_POLICY: &str = "CEREBRO_POLICY";
/// Overrides the config's `min_release_age` for one run: `0` (off), `30m`, `48h`, `2d`.
pub const ENV_MIN_RELEASE_AGE: &str = "CEREBRO_MIN_RELEASE_AGE";
/// Overrides the config's `release_diff` for one run: `off`, `npm` or `all` (which
/// ecosystems' releases the guard also judges against the release before them).
pub const ENV_RELEASE_DIFF: &str = "CEREBRO_RELEASE_DIFF";
/// The public PyPI whose JSON API (`<url>/pypi/<name>/json`) gives release times when an
/// index publishes none, and which the Poetry guard reads for Poetry's own PyPI source
/// (`https://pypi.org/` in Poetry's code) (default `https://pypi.org/`; tests point it at a
/// loopback server).
pub const ENV_PUBLIC_PYPI_URL: &str = "CEREBRO_PUBLIC_PYPI_URL";
/// The public npm registry whose packuments give release times when a registry publishes
/// none (default `https://registry.npmjs.org/`).
pub const ENV_PUBLIC_NPM_URL: &str = "CEREBRO_PUBLIC_NPM_URL";
/// Overrides the config's `cache_max_size` for one run: the download cache's cap (`10G`,
/// `500M`; `0`: no cap).
pub const ENV_CACHE_MAX_SIZE: &str = "CEREBRO_CACHE_MAX_SIZE";
/// Overrides the config's `upstream_deadline` for one run: the most the guard index takes to
/// fetch and judge what one request of the installer asks for (`90s`, `4m`, `1h`).
pub const ENV_UPSTREAM_DEADLINE: &str = "CEREBRO_UPSTREAM_DEADLINE";
/// `cerebro pip`/`cerebro npm` print their summary as JSON, as `--json` does.
pub const ENV_JSON: &str = "CEREBRO_JSON";
/// Set by the guard for every real manager it runs: a shim that sees it runs the real tool
/// at once (pip calling pip, npm scripts running npm are already guarded by the outer run).
pub const ENV_ACTIVE: &str = "CEREBRO_ACTIVE";
/// Shim folders (`PATH`-style), set by each shim: the real manager is never looked up there.
pub const ENV_SHIM_DIR: &str = "CEREBRO_SHIM_DIR";
/// The real Python interpreter, set by the `python` shims for `python -m pip`.
pub const ENV_PYTHON: &str = "CEREBRO_PYTHON";
/// The name the user typed for pip (`pip3`), set by the pip shims.
pub const ENV_PIP: &str = "CEREBRO_PIP";
/// The `cerebro` binary a shim runs (read by the shell shims only).
pub const ENV_BIN: &str = "CEREBRO_BIN";
/// `off` scores with candle alone instead of the model's own CPU engine (to compare, or to
/// rule the engine out).
pub const ENV_MODEL_ENGINE: &str = "CEREBRO_MODEL_ENGINE";
/// The training data's download cache folder (`cerebro-dataset` only, not the product).
pub const ENV_DATASET_CACHE: &str = "CEREBRO_DATASET_CACHE";
/// Set (non-empty) by CI systems: nobody is there to answer a prompt.
pub const ENV_CI: &str = "CI";

/// Every variable above, in the README's order.
pub const ALL: [&str; 18] = [
    ENV_POLICY,
    ENV_MIN_RELEASE_AGE,
    ENV_RELEASE_DIFF,
    ENV_PUBLIC_PYPI_URL,
    ENV_PUBLIC_NPM_URL,
    ENV_CONFIG_DIR,
    ENV_CACHE_DIR,
    ENV_CACHE_MAX_SIZE,
    ENV_UPSTREAM_DEADLINE,
    ENV_JSON,
    ENV_ACTIVE,
    ENV_SHIM_DIR,
    ENV_PYTHON,
    ENV_PIP,
    ENV_BIN,
    ENV_MODEL_ENGINE,
    ENV_DATASET_CACHE,
    ENV_CI,
];

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_readme_lists_every_variable_once() {
        let readme = include_str!("../../../README.md");
        let table: Vec<&str> = readme
            .lines()
            .skip_while(|l| !l.starts_with("## Settings"))
            .skip(1)
            .take_while(|l| !l.starts_with("## "))
            .filter(|l| l.starts_with("| `"))
            .map(|l| l[3..].split('`').next().unwrap())
            .collect();
        assert_eq!(
            table, ALL,
            "README's Settings table must list settings::ALL in order"
        );
    }

    #[test]
    fn the_product_and_its_tools_read_no_unlisted_variable() {
        // Every `"CEREBRO_…"` literal in the crates' sources is one of ALL.
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let mut stack = vec![root.join("crates"), root.join("src")];
        let mut found = Vec::new();
        while let Some(dir) = stack.pop() {
            for entry in std::fs::read_dir(&dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    if !path.ends_with("tests") {
                        stack.push(path);
                    }
                } else if path.extension().is_some_and(|e| e == "rs") {
                    let text = std::fs::read_to_string(&path).unwrap();
                    for piece in text.split("\"CEREBRO_").skip(1) {
                        let name: String = piece
                            .chars()
                            .take_while(|c| c.is_ascii_uppercase() || *c == '_')
                            .collect();
                        if !name.is_empty() {
                            found.push((format!("CEREBRO_{name}"), path.clone()));
                        }
                    }
                }
            }
        }
        assert!(!found.is_empty());
        for (name, path) in found {
            assert!(
                ALL.contains(&name.as_str()),
                "{name} in {} is not in ALL",
                path.display()
            );
        }
    }
}
