//! Discover: the paths on the command line → the files to read. A file is read as the format
//! its name says; a folder is searched for the formats Cerebro reads, skipping installed trees
//! (`node_modules`, virtual environments) and version-control folders.

use std::path::{Path, PathBuf};

/// The file formats an audit reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Format {
    /// `package-lock.json` or `npm-shrinkwrap.json` (lockfileVersion 1, 2 or 3).
    NpmLock,
    /// `requirements*.txt` (and any `.txt` named on the command line).
    Requirements,
    /// `uv.lock`.
    UvLock,
    /// `poetry.lock`.
    PoetryLock,
    /// `pnpm-lock.yaml` (lockfileVersion 9.0).
    PnpmLock,
    /// `bun.lock` (bun's text lockfile).
    BunLock,
    /// `yarn.lock` (yarn 1, `# yarn lockfile v1`).
    YarnLock,
    /// `pylock.toml` or `pylock.NAME.toml` (PEP 751).
    PyLock,
    /// An installed `node_modules` folder, named on the command line: every package in it.
    NodeModules,
    /// An installed `site-packages` folder (named, or found in a virtual environment named on
    /// the command line): every distribution in it.
    SitePackages,
}

impl Format {
    pub fn as_str(self) -> &'static str {
        match self {
            Format::NpmLock => "package-lock.json",
            Format::Requirements => "requirements.txt",
            Format::UvLock => "uv.lock",
            Format::PoetryLock => "poetry.lock",
            Format::PnpmLock => "pnpm-lock.yaml",
            Format::BunLock => "bun.lock",
            Format::YarnLock => "yarn.lock",
            Format::PyLock => "pylock.toml",
            Format::NodeModules => "node_modules",
            Format::SitePackages => "site-packages",
        }
    }

    /// The format a file name says, if any.
    pub fn of_name(name: &str) -> Option<Format> {
        match name {
            "package-lock.json" | "npm-shrinkwrap.json" => Some(Format::NpmLock),
            "uv.lock" => Some(Format::UvLock),
            "poetry.lock" => Some(Format::PoetryLock),
            "pnpm-lock.yaml" => Some(Format::PnpmLock),
            "bun.lock" => Some(Format::BunLock),
            "yarn.lock" => Some(Format::YarnLock),
            _ if name.starts_with("pylock.") && name.ends_with(".toml") => Some(Format::PyLock),
            _ if name.starts_with("requirements") && name.ends_with(".txt") => {
                Some(Format::Requirements)
            }
            _ => None,
        }
    }
}

/// One file to read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lockfile {
    pub format: Format,
    pub path: PathBuf,
}

/// Folders never searched: installed trees (judged by scanning them, not as lockfiles) and
/// version control.
const SKIPPED: &[&str] = &[
    "node_modules",
    ".git",
    ".hg",
    ".svn",
    ".venv",
    "venv",
    ".tox",
    ".nox",
    "site-packages",
    "__pycache__",
    "target",
];

/// Folder depth of the search below each folder given.
const MAX_DEPTH: usize = 8;

/// The files to read under `paths`, in path order, each once. A file given by name is read
/// by its name's format, or as a requirement file when it ends in `.txt`; `Err` names a path
/// that is neither.
pub fn discover(paths: &[PathBuf]) -> Result<Vec<Lockfile>, String> {
    let mut out = Vec::new();
    for path in paths {
        if path.is_dir() && path.file_name().is_some_and(|n| n == "node_modules") {
            // An installed tree, named on purpose (a folder search skips them).
            out.push(Lockfile {
                format: Format::NodeModules,
                path: path.clone(),
            });
        } else if path.is_dir()
            && path
                .file_name()
                .is_some_and(|n| n == "site-packages" || n == "dist-packages")
        {
            out.push(Lockfile {
                format: Format::SitePackages,
                path: path.clone(),
            });
        } else if is_venv(path) {
            // A virtual environment named on purpose: its site-packages (POSIX and Windows).
            let mut found = Vec::new();
            for lib in ["lib", "lib64", "Lib"] {
                let Ok(entries) = std::fs::read_dir(path.join(lib)) else {
                    continue;
                };
                for entry in entries.filter_map(Result::ok) {
                    let site = if lib == "Lib" {
                        path.join(lib).join("site-packages")
                    } else {
                        entry.path().join("site-packages")
                    };
                    if site.is_dir() && !found.contains(&site) {
                        found.push(site);
                    }
                }
            }
            found.sort();
            out.extend(found.into_iter().map(|path| Lockfile {
                format: Format::SitePackages,
                path,
            }));
        } else if path.is_dir() {
            search(path, 0, &mut out);
        } else if path.exists() {
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let format = Format::of_name(&name)
                .or_else(|| name.ends_with(".txt").then_some(Format::Requirements))
                .ok_or_else(|| {
                    format!(
                        "{}: not a format `cerebro audit` reads (package-lock.json, \
                         npm-shrinkwrap.json, pnpm-lock.yaml, bun.lock, yarn.lock, \
                         requirements*.txt, uv.lock, poetry.lock, pylock.toml)",
                        path.display()
                    )
                })?;
            out.push(Lockfile {
                format,
                path: path.clone(),
            });
        } else {
            return Err(format!("{}: no such file or folder", path.display()));
        }
    }
    let mut seen = std::collections::HashSet::new();
    out.retain(|l| seen.insert(l.path.canonicalize().unwrap_or_else(|_| l.path.clone())));
    Ok(out)
}

fn search(dir: &Path, depth: usize, out: &mut Vec<Lockfile>) {
    if depth > MAX_DEPTH {
        return;
    }
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut entries: Vec<_> = entries.filter_map(Result::ok).collect();
    entries.sort_by_key(|e| e.file_name());
    // npm reads npm-shrinkwrap.json instead of package-lock.json when both are there.
    let has_shrinkwrap = entries
        .iter()
        .any(|e| e.file_name() == "npm-shrinkwrap.json");
    for entry in entries {
        let Ok(kind) = entry.file_type() else {
            continue;
        };
        let name = entry.file_name().to_string_lossy().into_owned();
        if kind.is_dir() {
            if !SKIPPED.contains(&name.as_str()) && !is_venv(&entry.path()) {
                search(&entry.path(), depth + 1, out);
            }
        } else if kind.is_file() {
            if name == "package-lock.json" && has_shrinkwrap {
                continue;
            }
            if let Some(format) = Format::of_name(&name) {
                out.push(Lockfile {
                    format,
                    path: entry.path(),
                });
            }
        }
    }
}

/// A virtual environment (any name) holds `pyvenv.cfg`.
fn is_venv(dir: &Path) -> bool {
    dir.join("pyvenv.cfg").is_file()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_say_the_format() {
        assert_eq!(Format::of_name("package-lock.json"), Some(Format::NpmLock));
        assert_eq!(
            Format::of_name("requirements-dev.txt"),
            Some(Format::Requirements)
        );
        assert_eq!(Format::of_name("notes.txt"), None);
        assert_eq!(Format::of_name("uv.lock"), Some(Format::UvLock));
        assert_eq!(Format::of_name("pnpm-lock.yaml"), Some(Format::PnpmLock));
        assert_eq!(Format::of_name("bun.lock"), Some(Format::BunLock));
        assert_eq!(Format::of_name("yarn.lock"), Some(Format::YarnLock));
        assert_eq!(Format::of_name("pylock.toml"), Some(Format::PyLock));
        assert_eq!(Format::of_name("pylock.dev.toml"), Some(Format::PyLock));
        assert_eq!(Format::of_name("pylock.json"), None);
    }

    #[test]
    fn folders_are_searched_without_installed_trees() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        for file in [
            "package-lock.json",
            "npm-shrinkwrap.json",
            "api/requirements.txt",
            "node_modules/x/package-lock.json",
            "env/pyvenv.cfg",
            "env/requirements.txt",
            "README.md",
        ] {
            let path = root.join(file);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, "").unwrap();
        }
        let found: Vec<_> = discover(&[root.to_owned()])
            .unwrap()
            .into_iter()
            .map(|l| l.path.strip_prefix(root).unwrap().to_owned())
            .collect();
        assert_eq!(
            found,
            vec![
                PathBuf::from("api/requirements.txt"),
                PathBuf::from("npm-shrinkwrap.json")
            ]
        );
        assert!(discover(&[root.join("README.md")]).is_err());
        assert!(discover(&[root.join("missing")]).is_err());
    }
}
