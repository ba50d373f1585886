//! `package-lock.json` and `npm-shrinkwrap.json`: lockfileVersion 2 and 3 (`packages`, keyed
//! by install path) and 1 (`dependencies`, nested). Every registry package is a pin; links
//! are left out (their targets are listed as folders of their own), bundled packages too
//! (they are inside their parent's tarball); workspace folders are scanned from disk; git
//! dependencies cannot be judged from the lockfile.

use std::collections::HashMap;
use std::path::Path;

use serde_json::{Map, Value};

use crate::{LockfileError, Origin, Pin, Source};
use cerebro_archive::Ecosystem;

/// Reads the pins of an npm lockfile.
pub fn read(path: &Path) -> Result<Vec<Pin>, LockfileError> {
    let text = crate::read_text(path)?;
    let doc: Value = serde_json::from_str(&text).map_err(|e| LockfileError {
        file: path.to_owned(),
        line: Some(e.line()),
        message: format!("is not valid JSON: {e}"),
    })?;
    let version = doc.get("lockfileVersion").and_then(Value::as_u64);
    let lines = KeyLines::new(&text);
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut pins = Vec::new();
    match (
        version,
        doc.get("packages").and_then(Value::as_object),
        doc.get("dependencies").and_then(Value::as_object),
    ) {
        (Some(2 | 3), Some(packages), _) => {
            for (key, meta) in packages {
                if let Some(pin) = package_entry(path, dir, key, meta, &lines) {
                    pins.push(pin);
                }
            }
        }
        (Some(1), _, Some(deps)) => v1(path, deps, &lines, &mut pins),
        (Some(1), _, None) => {}
        (Some(v), _, _) if v > 3 => {
            return Err(LockfileError::new(
                path,
                format!(
                    "lockfileVersion {v} is newer than Cerebro reads (1 to 3); it cannot be \
                     judged as npm would read it"
                ),
            ))
        }
        _ => {
            return Err(LockfileError::new(
                path,
                "has no lockfileVersion with `packages` or `dependencies`; not an npm lockfile",
            ))
        }
    }
    Ok(pins)
}

/// Reads the pins of a `pnpm-lock.yaml` (lockfileVersion 9.0) with the pnpm guard's own
/// reader: every registry package with its integrity (packages of every platform: the
/// project may be installed on another one). A git, folder or URL resolution cannot be
/// judged from the lockfile: the whole file is refused, naming it, as the guard refuses it.
pub fn read_pnpm(path: &Path) -> Result<Vec<Pin>, LockfileError> {
    let text = crate::read_text(path)?;
    let packages = cerebro_guard::guard::pnpm_locked_packages(&text)
        .map_err(|message| LockfileError::new(path, message))?;
    // The line of each package's key under `packages:` (quoted or not).
    let mut key_lines: HashMap<String, usize> = HashMap::new();
    let mut in_packages = false;
    for (i, line) in text.lines().enumerate() {
        if !line.starts_with(' ') && !line.is_empty() {
            in_packages = line.trim_end() == "packages:";
            continue;
        }
        let Some(key) = line
            .strip_prefix("  ")
            .filter(|k| !k.starts_with(' '))
            .and_then(|k| k.trim_end().strip_suffix(':'))
        else {
            continue;
        };
        if in_packages {
            let key = key.trim_matches(|c| c == '\'' || c == '"');
            key_lines.entry(key.to_owned()).or_insert(i + 1);
        }
    }
    Ok(packages
        .into_iter()
        .map(|p| {
            let line = key_lines
                .get(&format!("{}@{}", p.name, p.version))
                .copied()
                .unwrap_or(1);
            Pin {
                ecosystem: Ecosystem::Npm,
                source: Source {
                    file: path.to_owned(),
                    line,
                },
                origin: Origin::Npm {
                    resolved: None,
                    integrity: Some(p.integrity),
                },
                name: p.name,
                version: p.version,
            }
        })
        .collect())
}

/// Reads the pins of a yarn 1 `yarn.lock` (`# yarn lockfile v1`) with the yarn guard's own
/// reader: every package by its recorded tarball URL and hash (`integrity`, else the sha1 of
/// the URL's fragment). An entry without a registry tarball or a hash (a git or folder
/// dependency) cannot be judged from the lockfile: the whole file is refused, naming it, as
/// the guard refuses it. A yarn 2+ (berry) lockfile is refused the same way.
pub fn read_yarn(path: &Path) -> Result<Vec<Pin>, LockfileError> {
    use base64::Engine;
    use cerebro_guard::manager::yarn;
    let text = crate::read_text(path)?;
    if text.lines().any(|l| l.trim_end() == "__metadata:") {
        return read_yarn_berry(path, &text);
    }
    let packages =
        yarn::locked_packages(&text).map_err(|message| LockfileError::new(path, message))?;
    let mut pins = Vec::with_capacity(packages.len());
    for p in packages {
        let integrity = match (p.integrity, p.sha1) {
            (Some(sri), _) => sri,
            (None, Some(sha1)) => {
                let bytes: Option<Vec<u8>> = (0..sha1.len())
                    .step_by(2)
                    .map(|i| u8::from_str_radix(sha1.get(i..i + 2)?, 16).ok())
                    .collect();
                let bytes = bytes.ok_or_else(|| {
                    LockfileError::new(path, format!("{}@{}: bad sha1 {sha1}", p.name, p.version))
                })?;
                format!(
                    "sha1-{}",
                    base64::engine::general_purpose::STANDARD.encode(bytes)
                )
            }
            (None, None) => {
                return Err(LockfileError::new(
                    path,
                    format!("pins {}@{} without a hash", p.name, p.version),
                ))
            }
        };
        // The entry's key line: `name@range…:` or `"name@range…":` (the first that names it).
        let line = [format!("\n{}@", p.name), format!("\n\"{}@", p.name)]
            .iter()
            .filter_map(|k| text.find(k.as_str()))
            .min()
            .map_or(1, |offset| crate::line_of(&text, offset + 1));
        pins.push(Pin {
            ecosystem: Ecosystem::Npm,
            source: Source {
                file: path.to_owned(),
                line,
            },
            origin: Origin::Npm {
                resolved: Some(p.resolved),
                integrity: Some(integrity),
            },
            name: p.name,
            version: p.version,
        });
    }
    Ok(pins)
}

/// Reads the pins of a yarn 2+ (berry) `yarn.lock` (YAML with `__metadata`): every package
/// resolved from the npm registry (`resolution: "name@npm:1.2.3"`), fetched from the
/// configured registry and verified against the registry's own integrity. Berry's
/// `checksum` is of the zip yarn makes of the package, not of the tarball, so it cannot check
/// the download; the project's own workspaces are left out, and a package resolved from git,
/// a file, a link or a patch is unjudged (named).
fn read_yarn_berry(path: &Path, text: &str) -> Result<Vec<Pin>, LockfileError> {
    let doc: serde_yaml::Mapping = serde_yaml::from_str(text).map_err(|e| LockfileError {
        file: path.to_owned(),
        line: e.location().map(|l| l.line()),
        message: format!("is not a yarn lockfile yarn 2+ reads: {e}"),
    })?;
    let mut pins = Vec::new();
    for (key, entry) in &doc {
        let Some(key) = key.as_str().filter(|k| *k != "__metadata") else {
            continue;
        };
        let field = |k: &str| entry.get(k).and_then(|v| v.as_str()).map(str::to_owned);
        let resolution = field("resolution").unwrap_or_default();
        let version = field("version").unwrap_or_default();
        // `name@protocol:rest`; a scoped name has its own leading `@`.
        let at = resolution
            .get(1..)
            .and_then(|r| r.find('@'))
            .map(|a| a + 1)
            .unwrap_or(resolution.len());
        let (name, reference) = resolution.split_at(at);
        let reference = reference.trim_start_matches('@');
        let line = text
            .find(&format!("\n\"{key}\":"))
            .or_else(|| text.find(&format!("\n{key}:")))
            .map_or(0, |offset| crate::line_of(text, offset + 1));
        let origin = if reference.starts_with("workspace:") {
            continue;
        } else if reference.starts_with("npm:") {
            Origin::Npm {
                resolved: None,
                integrity: None,
            }
        } else {
            Origin::Unjudgeable(format!(
                "resolved as `{resolution}`, not from a registry: Cerebro judges registry \
                 packages of a yarn 2+ lockfile"
            ))
        };
        pins.push(Pin {
            ecosystem: Ecosystem::Npm,
            name: name.to_owned(),
            version,
            source: Source {
                file: path.to_owned(),
                line,
            },
            origin,
        });
    }
    Ok(pins)
}

/// Most packages read from one `node_modules` tree, and deepest nesting followed: bounds
/// for a tree built to make the walk endless.
const MAX_INSTALLED: usize = 100_000;
const MAX_NESTING: usize = 32;

/// Reads the packages installed in a `node_modules` folder: every folder with a
/// `package.json` (`name`, `@scope/name`, nested `node_modules` inside packages, and pnpm's
/// `.pnpm/<id>/node_modules/<name>` store), each judged from disk as it is installed. Links
/// are not followed (pnpm's top-level links point into `.pnpm`, which is walked itself).
pub fn read_node_modules(path: &Path) -> Result<Vec<Pin>, LockfileError> {
    let mut pins = Vec::new();
    let mut pending: Vec<(std::path::PathBuf, usize)> = vec![(path.to_owned(), 0)];
    let list = |dir: &Path| -> Vec<std::fs::DirEntry> {
        let mut entries: Vec<_> = std::fs::read_dir(dir)
            .map(|r| r.filter_map(Result::ok).collect())
            .unwrap_or_default();
        entries.sort_by_key(|e| e.file_name());
        entries
    };
    let is_dir = |e: &std::fs::DirEntry| e.file_type().is_ok_and(|t| t.is_dir());
    while let Some((modules, depth)) = pending.pop() {
        if depth > MAX_NESTING {
            continue;
        }
        let mut packages = Vec::new();
        for entry in list(&modules).into_iter().filter(is_dir) {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with('@') {
                packages.extend(
                    list(&entry.path())
                        .into_iter()
                        .filter(is_dir)
                        .map(|e| e.path()),
                );
            } else if name == ".pnpm" {
                for store in list(&entry.path()).into_iter().filter(is_dir) {
                    pending.push((store.path().join("node_modules"), depth + 1));
                }
            } else if !name.starts_with('.') {
                packages.push(entry.path());
            }
        }
        for dir in packages {
            let manifest = dir.join("package.json");
            let Ok(text) = std::fs::read_to_string(&manifest) else {
                continue;
            };
            if pins.len() >= MAX_INSTALLED {
                return Err(LockfileError::new(
                    path,
                    format!("holds more than {MAX_INSTALLED} packages"),
                ));
            }
            let json: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
            let field = |k: &str| json.get(k).and_then(Value::as_str).map(str::to_owned);
            let folder = dir
                .strip_prefix(&modules)
                .map(|p| p.to_string_lossy().replace('\\', "/"))
                .unwrap_or_default();
            pins.push(Pin {
                ecosystem: Ecosystem::Npm,
                name: field("name").unwrap_or(folder),
                version: field("version").unwrap_or_default(),
                source: Source {
                    file: manifest,
                    line: 1,
                },
                origin: Origin::Local(dir.clone()),
            });
            let nested = dir.join("node_modules");
            if nested.is_dir() {
                pending.push((nested, depth + 1));
            }
        }
    }
    Ok(pins)
}

/// Reads the pins of a `bun.lock` with the bun guard's own reader: every registry package
/// bun would install on this machine (its `os`/`cpu` admit it), by the recorded tarball URL
/// (none: from the configured registry) and integrity. A git, GitHub or URL package cannot be
/// judged from the lockfile: the whole file is refused, naming it, as the guard refuses it.
pub fn read_bun(path: &Path) -> Result<Vec<Pin>, LockfileError> {
    use cerebro_guard::manager::bun;
    let text = crate::read_text(path)?;
    let packages = bun::parse_lock(&text)
        .and_then(|lock| bun::locked_packages(&lock))
        .map_err(|message| LockfileError::new(path, message))?;
    Ok(packages
        .into_iter()
        .map(|p| {
            let id = format!("\"{}@{}\"", p.name, p.version);
            let line = text
                .find(&id)
                .map_or(1, |offset| crate::line_of(&text, offset));
            Pin {
                ecosystem: Ecosystem::Npm,
                source: Source {
                    file: path.to_owned(),
                    line,
                },
                origin: Origin::Npm {
                    resolved: (!p.url.is_empty()).then_some(p.url),
                    integrity: Some(p.integrity),
                },
                name: p.name,
                version: p.version,
            }
        })
        .collect())
}

/// One entry of `packages`.
fn package_entry(
    file: &Path,
    dir: &Path,
    key: &str,
    meta: &Value,
    lines: &KeyLines,
) -> Option<Pin> {
    if key.is_empty() {
        return None;
    }
    let flag = |k: &str| meta.get(k).and_then(Value::as_bool).unwrap_or(false);
    if flag("link") || flag("inBundle") {
        return None;
    }
    let text = |k: &str| meta.get(k).and_then(Value::as_str).map(str::to_owned);
    let installed_name = key.rsplit_once("node_modules/").map(|(_, n)| n.to_owned());
    let name = text("name")
        .or_else(|| installed_name.clone())
        .unwrap_or_else(|| key.to_owned());
    let version = text("version").unwrap_or_default();
    let source = Source {
        file: file.to_owned(),
        line: lines.first(key).unwrap_or(0),
    };
    let resolved = text("resolved");
    let origin = if installed_name.is_none() {
        // A workspace folder of the project (`packages/app`).
        Origin::Local(dir.join(key))
    } else {
        origin_of(dir, resolved, text("integrity"))
    };
    Some(Pin {
        ecosystem: Ecosystem::Npm,
        name,
        version,
        source,
        origin,
    })
}

/// Where an entry's bytes come from, by its `resolved`.
fn origin_of(dir: &Path, resolved: Option<String>, integrity: Option<String>) -> Origin {
    match resolved.as_deref() {
        Some(r) if r.starts_with("file:") => Origin::Local(dir.join(&r[5..])),
        Some(r) if r.starts_with("git") || r.starts_with("github:") => Origin::Unjudgeable(
            format!("a git dependency ({r}): Cerebro judges registry tarballs and local folders"),
        ),
        Some(r) if r.starts_with("https://") || r.starts_with("http://") => Origin::Npm {
            resolved: Some(r.to_owned()),
            integrity,
        },
        Some(r) => Origin::Unjudgeable(format!(
            "`resolved` is `{r}`, which is neither a registry URL nor a local folder"
        )),
        None => Origin::Npm {
            resolved: None,
            integrity,
        },
    }
}

/// lockfileVersion 1: `dependencies`, nested for packages installed below another.
fn v1(file: &Path, deps: &Map<String, Value>, lines: &KeyLines, pins: &mut Vec<Pin>) {
    let dir = file.parent().unwrap_or(Path::new("."));
    for (name, meta) in deps {
        let flag = |k: &str| meta.get(k).and_then(Value::as_bool).unwrap_or(false);
        let text = |k: &str| meta.get(k).and_then(Value::as_str).map(str::to_owned);
        let written = text("version").unwrap_or_default();
        if !flag("bundled") {
            // `npm:real@1.0.0` is an alias of another package.
            let alias = written.strip_prefix("npm:").and_then(|spec| {
                // The name's own `@` (a scope) is its first character.
                let at = spec.get(1..)?.find('@')? + 1;
                Some((spec[..at].to_owned(), spec[at + 1..].to_owned()))
            });
            let (real, version) = alias.unwrap_or_else(|| (name.clone(), written.clone()));
            let resolved = text("resolved").or_else(|| {
                (written.starts_with("file:")
                    || written.starts_with("git")
                    || written.contains("://"))
                .then(|| written.clone())
            });
            pins.push(Pin {
                ecosystem: Ecosystem::Npm,
                name: real,
                version,
                source: Source {
                    file: file.to_owned(),
                    line: lines.v1(name, &written).unwrap_or(0),
                },
                origin: origin_of(dir, resolved, text("integrity")),
            });
        }
        if let Some(nested) = meta.get("dependencies").and_then(Value::as_object) {
            v1(file, nested, lines, pins);
        }
    }
}

/// The lines where each object key of a JSON text opens (`"key": {`), to point at a pin.
struct KeyLines<'a> {
    text: &'a str,
    by_key: HashMap<String, Vec<usize>>,
}

impl<'a> KeyLines<'a> {
    fn new(text: &'a str) -> KeyLines<'a> {
        let mut by_key: HashMap<String, Vec<usize>> = HashMap::new();
        for (i, line) in text.lines().enumerate() {
            let trimmed = line.trim_start();
            let Some(rest) = trimmed.strip_prefix('"') else {
                continue;
            };
            let Some(end) = rest.find("\": {") else {
                continue;
            };
            by_key
                .entry(rest[..end].to_owned())
                .or_default()
                .push(i + 1);
        }
        KeyLines { text, by_key }
    }

    fn first(&self, key: &str) -> Option<usize> {
        self.by_key.get(key).and_then(|l| l.first().copied())
    }

    /// The line of a v1 entry: `"name": {` whose next line gives this version (npm writes
    /// `version` first).
    fn v1(&self, name: &str, version: &str) -> Option<usize> {
        let candidates = self.by_key.get(name)?;
        let lines: Vec<&str> = self.text.lines().collect();
        let wanted = format!("\"version\": {}", Value::from(version));
        candidates
            .iter()
            .copied()
            .find(|&l| lines.get(l).is_some_and(|next| next.contains(&wanted)))
            .or_else(|| candidates.first().copied())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lock(text: &str) -> (tempfile::TempDir, std::path::PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("package-lock.json");
        std::fs::write(&path, text).unwrap();
        (dir, path)
    }

    #[test]
    fn v3_entries_become_pins_with_their_lines() {
        let (_d, path) = lock(
            r#"{
  "name": "app",
  "lockfileVersion": 3,
  "packages": {
    "": {
      "name": "app"
    },
    "node_modules/a": {
      "version": "1.0.0",
      "resolved": "https://r.example/a/-/a-1.0.0.tgz",
      "integrity": "sha512-AAAA"
    },
    "node_modules/a/node_modules/@s/b": {
      "version": "2.0.0"
    },
    "node_modules/alias": {
      "name": "real",
      "version": "3.0.0"
    },
    "node_modules/ws": {
      "resolved": "packages/ws",
      "link": true
    },
    "packages/ws": {
      "name": "ws",
      "version": "0.0.1"
    },
    "node_modules/g": {
      "version": "1.0.0",
      "resolved": "git+ssh://git@github.com/x/g.git#abc"
    },
    "node_modules/in": {
      "version": "1.0.0",
      "inBundle": true
    }
  }
}"#,
        );
        let pins = read(&path).unwrap();
        let summary: std::collections::BTreeSet<(&str, &str, usize)> = pins
            .iter()
            .map(|p| (p.name.as_str(), p.version.as_str(), p.source.line))
            .collect();
        let expected: std::collections::BTreeSet<(&str, &str, usize)> = [
            ("a", "1.0.0", 8),
            ("@s/b", "2.0.0", 13),
            ("real", "3.0.0", 16),
            ("ws", "0.0.1", 24),
            ("g", "1.0.0", 28),
        ]
        .into_iter()
        .collect();
        assert_eq!(summary, expected);
        let by_name = |n: &str| pins.iter().find(|p| p.name == n).unwrap();
        assert_eq!(
            by_name("a").origin,
            Origin::Npm {
                resolved: Some("https://r.example/a/-/a-1.0.0.tgz".into()),
                integrity: Some("sha512-AAAA".into())
            }
        );
        assert_eq!(
            by_name("@s/b").origin,
            Origin::Npm {
                resolved: None,
                integrity: None
            }
        );
        assert!(matches!(by_name("g").origin, Origin::Unjudgeable(_)));
        assert!(matches!(&by_name("ws").origin, Origin::Local(p) if p.ends_with("packages/ws")));
        assert!(pins.iter().all(|p| p.name != "in"));
        assert_eq!(pins.len(), 5);
    }

    #[test]
    fn v1_nested_and_aliased() {
        let (_d, path) = lock(
            r#"{
  "lockfileVersion": 1,
  "dependencies": {
    "a": {
      "version": "1.0.0",
      "integrity": "sha512-AAAA",
      "dependencies": {
        "b": {
          "version": "2.0.0"
        }
      }
    },
    "b": {
      "version": "1.5.0"
    },
    "x": {
      "version": "npm:@s/real@4.0.0"
    }
  }
}"#,
        );
        let pins = read(&path).unwrap();
        let summary: Vec<(&str, &str, usize)> = pins
            .iter()
            .map(|p| (p.name.as_str(), p.version.as_str(), p.source.line))
            .collect();
        assert!(summary.contains(&("a", "1.0.0", 4)), "{summary:?}");
        assert!(summary.contains(&("b", "2.0.0", 8)), "{summary:?}");
        assert!(summary.contains(&("b", "1.5.0", 13)), "{summary:?}");
        assert!(summary.contains(&("@s/real", "4.0.0", 16)), "{summary:?}");
    }

    #[test]
    fn unreadable_lockfiles_say_why() {
        let (_d, path) = lock("{\n  \"lockfileVersion\": 3,\n  \"packages\": {\n");
        let e = read(&path).unwrap_err();
        assert!(e.to_string().contains("not valid JSON"), "{e}");
        let (_d, path) = lock(r#"{"lockfileVersion": 9, "packages": {}}"#);
        assert!(read(&path).unwrap_err().to_string().contains("newer"));
        let (_d, path) = lock(r#"{"name": "x"}"#);
        assert!(read(&path)
            .unwrap_err()
            .to_string()
            .contains("not an npm lockfile"));
    }
}
