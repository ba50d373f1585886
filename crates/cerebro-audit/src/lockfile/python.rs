//! `uv.lock`, `poetry.lock` and `pylock.toml` (PEP 751): TOML lists of `[[package]]` (or
//! `[[packages]]`), each with its version, its source, and the files (with hashes) that may be
//! installed for it.

use std::collections::HashMap;
use std::path::Path;

use toml::Value;

use crate::{LockfileError, Origin, Pin, PinnedFile, Source};
use cerebro_archive::Ecosystem;

fn parse(path: &Path) -> Result<(String, Vec<toml::Table>), LockfileError> {
    let (text, doc) = parse_doc(path)?;
    let packages = tables(path, &doc, "package")?;
    Ok((text, packages))
}

fn parse_doc(path: &Path) -> Result<(String, toml::Table), LockfileError> {
    let text = crate::read_text(path)?;
    let doc: toml::Table = text.parse().map_err(|e: toml::de::Error| LockfileError {
        file: path.to_owned(),
        line: e.span().map(|s| crate::line_of(&text, s.start)),
        message: format!("is not valid TOML: {}", e.message()),
    })?;
    Ok((text, doc))
}

/// The array of tables `key` of `doc` (`[[package]]`), empty when absent.
fn tables(path: &Path, doc: &toml::Table, key: &str) -> Result<Vec<toml::Table>, LockfileError> {
    let packages = match doc.get(key) {
        None => Vec::new(),
        Some(Value::Array(list)) => list
            .iter()
            .map(|p| {
                p.as_table().cloned().ok_or_else(|| {
                    LockfileError::new(path, format!("a `[[{key}]]` is not a table"))
                })
            })
            .collect::<Result<_, _>>()?,
        Some(_) => {
            return Err(LockfileError::new(
                path,
                format!("`{key}` is not a list of tables"),
            ))
        }
    };
    Ok(packages)
}

fn text<'a>(table: &'a toml::Table, key: &str) -> Option<&'a str> {
    table.get(key).and_then(Value::as_str)
}

/// Reads the pins of a `uv.lock`. The project itself (`editable`/`virtual` `"."`) is left out.
pub fn read_uv(path: &Path) -> Result<Vec<Pin>, LockfileError> {
    let (source_text, packages) = parse(path)?;
    let lines = package_lines(&source_text, "[[package]]");
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut pins = Vec::new();
    for package in &packages {
        let (Some(name), version) = (text_of(package, "name"), text_of(package, "version")) else {
            return Err(LockfileError::new(path, "a `[[package]]` has no name"));
        };
        let version = version.unwrap_or_default();
        let source = package.get("source").and_then(Value::as_table);
        let local = source.and_then(|s| {
            ["editable", "virtual", "directory", "path"]
                .iter()
                .find_map(|k| text(s, k))
        });
        if local == Some(".") {
            continue;
        }
        let origin = if let Some(local) = local {
            Origin::Local(dir.join(local))
        } else if let Some(git) = source.and_then(|s| text(s, "git")) {
            Origin::Unjudgeable(format!(
                "a git dependency ({git}): Cerebro judges index files, URLs with a hash and \
                 local folders"
            ))
        } else {
            let mut files = Vec::new();
            let mut add = |file: &toml::Table| {
                if let Some(url) = text(file, "url") {
                    files.push(PinnedFile {
                        url: url.to_owned(),
                        hash: text(file, "hash").map(str::to_owned),
                    });
                }
            };
            if let Some(sdist) = package.get("sdist").and_then(Value::as_table) {
                add(sdist);
            }
            for wheel in package
                .get("wheels")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                if let Some(wheel) = wheel.as_table() {
                    add(wheel);
                }
            }
            match (files.is_empty(), source.and_then(|s| text(s, "registry"))) {
                (false, _) => Origin::Files(files),
                (true, Some(registry)) => Origin::Pypi {
                    hashes: Vec::new(),
                    indexes: Some(vec![registry.to_owned()]),
                },
                (true, None) => Origin::Unjudgeable(
                    "the lockfile names no file and no registry for it".to_owned(),
                ),
            }
        };
        pins.push(pin(path, &lines, name, version, origin));
    }
    Ok(pins)
}

/// Reads the pins of a `poetry.lock`: each package's files by name and hash, found on its
/// source (`[package.source]` of type `legacy`) or the configured indexes.
pub fn read_poetry(path: &Path) -> Result<Vec<Pin>, LockfileError> {
    let (source_text, packages) = parse(path)?;
    let lines = package_lines(&source_text, "[[package]]");
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut pins = Vec::new();
    for package in &packages {
        let (Some(name), Some(version)) = (text_of(package, "name"), text_of(package, "version"))
        else {
            return Err(LockfileError::new(
                path,
                "a `[[package]]` has no name or version",
            ));
        };
        let hashes: Vec<String> = package
            .get("files")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|f| {
                f.as_table()
                    .and_then(|f| text(f, "hash"))
                    .map(str::to_owned)
            })
            .collect();
        let source = package.get("source").and_then(Value::as_table);
        let kind = source.and_then(|s| text(s, "type")).unwrap_or("");
        let url = source.and_then(|s| text(s, "url"));
        let origin = match (kind, url) {
            ("", _) => Origin::Pypi {
                hashes,
                indexes: None,
            },
            ("legacy", Some(url)) => Origin::Pypi {
                hashes,
                indexes: Some(vec![url.to_owned()]),
            },
            ("directory" | "file", Some(local)) => Origin::Local(dir.join(local)),
            ("url", Some(url)) => Origin::Files(vec![PinnedFile {
                url: url.to_owned(),
                hash: hashes.first().cloned(),
            }]),
            ("git", url) => Origin::Unjudgeable(format!(
                "a git dependency ({}): Cerebro judges index files, URLs with a hash and \
                 local folders",
                url.unwrap_or("?")
            )),
            (other, _) => Origin::Unjudgeable(format!(
                "a source of type `{other}`, which Cerebro does not fetch"
            )),
        };
        pins.push(pin(path, &lines, name, version, origin));
    }
    Ok(pins)
}

/// Reads the pins of a `pylock.toml` (PEP 751, `lock-version` 1.x): each package's
/// `sdist`, `wheels` and `archive` by URL and hash (a file named without a URL is found on
/// the package's `index` or the configured ones, by hash), a `directory` (or an archive
/// `path`) from disk, and a `vcs` source as unjudged. Packages are judged whatever their
/// `marker` says: the file may be installed on another machine.
pub fn read_pylock(path: &Path) -> Result<Vec<Pin>, LockfileError> {
    let (source_text, doc) = parse_doc(path)?;
    match doc.get("lock-version").and_then(Value::as_str) {
        Some(v) if v.split('.').next() == Some("1") => {}
        Some(v) => {
            return Err(LockfileError::new(
                path,
                format!("lock-version {v} is not 1.x, which Cerebro reads (PEP 751)"),
            ))
        }
        None => {
            return Err(LockfileError::new(
                path,
                "has no `lock-version`; not a pylock.toml",
            ))
        }
    }
    let packages = tables(path, &doc, "packages")?;
    let lines = package_lines(&source_text, "[[packages]]");
    let dir = path.parent().unwrap_or(Path::new("."));
    let hash_of = |file: &toml::Table| -> Option<String> {
        let hashes = file.get("hashes").and_then(Value::as_table)?;
        ["sha256", "sha512", "sha1"]
            .iter()
            .find_map(|algo| text(hashes, algo).map(|hex| format!("{algo}:{hex}")))
    };
    let mut pins = Vec::new();
    for package in &packages {
        let Some(name) = text_of(package, "name") else {
            return Err(LockfileError::new(path, "a `[[packages]]` has no name"));
        };
        let version = text_of(package, "version").unwrap_or_default();
        let table = |k: &str| package.get(k).and_then(Value::as_table);
        let mut files = Vec::new();
        let mut by_hash = Vec::new();
        let mut local = None;
        for file in table("sdist")
            .into_iter()
            .chain(
                package
                    .get("wheels")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_table),
            )
            .chain(table("archive"))
        {
            match (text(file, "url"), text(file, "path"), hash_of(file)) {
                (Some(url), _, hash) => files.push(PinnedFile {
                    url: url.to_owned(),
                    hash,
                }),
                (None, Some(p), _) => local = Some(dir.join(p)),
                (None, None, Some(hash)) => by_hash.push(hash),
                (None, None, None) => {}
            }
        }
        let origin = if let Some(vcs) = table("vcs") {
            Origin::Unjudgeable(format!(
                "a version-control dependency ({}): Cerebro judges index files, URLs with a \
                 hash and local folders",
                text(vcs, "url")
                    .or_else(|| text(vcs, "path"))
                    .unwrap_or("?")
            ))
        } else if let Some(folder) = table("directory").and_then(|d| text(d, "path")) {
            Origin::Local(dir.join(folder))
        } else if let Some(local) = local {
            Origin::Local(local)
        } else if !files.is_empty() {
            Origin::Files(files)
        } else if !by_hash.is_empty() || text(package, "index").is_some() {
            Origin::Pypi {
                hashes: by_hash,
                indexes: text(package, "index").map(|i| vec![i.to_owned()]),
            }
        } else {
            Origin::Unjudgeable("the lockfile names no file and no index for it".to_owned())
        };
        pins.push(pin(path, &lines, name, version, origin));
    }
    Ok(pins)
}

/// Most distributions read from one `site-packages`, and files one `RECORD` may list.
const MAX_DISTRIBUTIONS: usize = 50_000;
const MAX_RECORD_FILES: usize = 200_000;

/// Reads the distributions installed in a `site-packages` folder: each `*.dist-info` is a
/// pin (name and version from its `METADATA`) whose files are those its `RECORD` lists,
/// judged in place. A `.pth` file no `RECORD` owns (Python runs its `import` lines at every
/// start-up, and malware drops them) is a pin of its own, named by the file.
pub fn read_site_packages(root: &Path) -> Result<Vec<Pin>, LockfileError> {
    let mut entries: Vec<_> = std::fs::read_dir(root)
        .map_err(|e| LockfileError::new(root, format!("cannot be read: {e}")))?
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    entries.sort();
    let mut pins = Vec::new();
    let mut owned = std::collections::HashSet::new();
    for name in entries.iter().filter(|n| n.ends_with(".dist-info")) {
        if pins.len() >= MAX_DISTRIBUTIONS {
            return Err(LockfileError::new(
                root,
                format!("holds more than {MAX_DISTRIBUTIONS} distributions"),
            ));
        }
        let info = root.join(name);
        let metadata = std::fs::read(info.join("METADATA")).unwrap_or_default();
        let metadata = String::from_utf8_lossy(&metadata[..metadata.len().min(64 << 10)]);
        let header = |key: &str| {
            metadata
                .lines()
                .take_while(|l| !l.is_empty())
                .find_map(|l| l.strip_prefix(key).map(|v| v.trim().to_owned()))
        };
        let stem = name.trim_end_matches(".dist-info");
        let (name_part, version_part) = stem.rsplit_once('-').unwrap_or((stem, ""));
        let record = std::fs::read(info.join("RECORD")).unwrap_or_default();
        let files: Vec<String> = String::from_utf8_lossy(&record)
            .lines()
            .filter_map(record_path)
            .take(MAX_RECORD_FILES)
            .collect();
        owned.extend(files.iter().cloned());
        let origin = if files.is_empty() {
            Origin::Unjudgeable(format!(
                "{name} has no RECORD: its files are not known (installed by a tool that \
                 does not record them)"
            ))
        } else {
            Origin::Installed {
                root: root.to_owned(),
                files,
            }
        };
        pins.push(Pin {
            ecosystem: Ecosystem::Pypi,
            name: header("Name:").unwrap_or_else(|| name_part.to_owned()),
            version: header("Version:").unwrap_or_else(|| version_part.to_owned()),
            source: Source {
                file: info.join("METADATA"),
                line: 1,
            },
            origin,
        });
    }
    for pth in entries.iter().filter(|n| n.ends_with(".pth")) {
        if owned.contains(pth.as_str()) {
            continue;
        }
        pins.push(Pin {
            ecosystem: Ecosystem::Pypi,
            name: pth.clone(),
            version: String::new(),
            source: Source {
                file: root.join(pth),
                line: 1,
            },
            origin: Origin::Installed {
                root: root.to_owned(),
                files: vec![pth.clone()],
            },
        });
    }
    Ok(pins)
}

/// The path of one `RECORD` line (CSV: the first field, quoted when it holds a comma).
fn record_path(line: &str) -> Option<String> {
    let line = line.trim_end_matches('\r');
    if line.is_empty() {
        return None;
    }
    let path = if let Some(rest) = line.strip_prefix('"') {
        let mut out = String::new();
        let mut chars = rest.chars().peekable();
        loop {
            match chars.next()? {
                '"' if chars.peek() == Some(&'"') => {
                    chars.next();
                    out.push('"');
                }
                '"' => break,
                c => out.push(c),
            }
        }
        out
    } else {
        line.split(',').next()?.to_owned()
    };
    Some(path.replace('\\', "/"))
}

fn text_of(table: &toml::Table, key: &str) -> Option<String> {
    text(table, key).map(str::to_owned)
}

fn pin(
    path: &Path,
    lines: &HashMap<(String, String), usize>,
    name: String,
    version: String,
    origin: Origin,
) -> Pin {
    let line = lines
        .get(&(name.clone(), version.clone()))
        .copied()
        .unwrap_or(0);
    Pin {
        ecosystem: Ecosystem::Pypi,
        name,
        version,
        source: Source {
            file: path.to_owned(),
            line,
        },
        origin,
    }
}

/// The line of each `header` (`[[package]]`), by the name and version that follow it.
fn package_lines(text: &str, header: &str) -> HashMap<(String, String), usize> {
    let mut out = HashMap::new();
    let mut current: Option<(usize, Option<String>, Option<String>)> = None;
    let value = |line: &str, key: &str| -> Option<String> {
        let rest = line
            .strip_prefix(key)?
            .trim_start()
            .strip_prefix('=')?
            .trim();
        Some(rest.trim_matches('"').to_owned())
    };
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line == header {
            current = Some((i + 1, None, None));
            continue;
        }
        if line.starts_with('[') {
            current = None;
            continue;
        }
        if let Some((at, name, version)) = &mut current {
            if let Some(v) = value(line, "name") {
                *name = Some(v);
            } else if let Some(v) = value(line, "version") {
                *version = Some(v);
            }
            if let (Some(n), Some(v)) = (name.clone(), version.clone()) {
                out.entry((n, v)).or_insert(*at);
                current = None;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_lines_give_their_paths() {
        assert_eq!(record_path("a/b.py,sha256=x,12").as_deref(), Some("a/b.py"));
        assert_eq!(
            record_path("\"a,b/c \"\"q\"\".py\",,").as_deref(),
            Some("a,b/c \"q\".py")
        );
        assert_eq!(
            record_path("..\\..\\Scripts\\x.exe,,").as_deref(),
            Some("../../Scripts/x.exe")
        );
        assert_eq!(record_path(""), None);
    }

    fn write(name: &str, text: &str) -> (tempfile::TempDir, std::path::PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        (dir, path)
    }

    #[test]
    fn uv_lock_files_and_sources() {
        let (_d, path) = write(
            "uv.lock",
            r#"version = 1
requires-python = ">=3.9"

[[package]]
name = "app"
version = "0.1.0"
source = { editable = "." }

[[package]]
name = "a"
version = "1.0"
source = { registry = "https://pypi.org/simple" }
sdist = { url = "https://files.example/a-1.0.tar.gz", hash = "sha256:aa", size = 1 }
wheels = [
    { url = "https://files.example/a-1.0-py3-none-any.whl", hash = "sha256:bb", size = 1 },
]

[[package]]
name = "g"
version = "2.0"
source = { git = "https://h/g.git?rev=x" }
"#,
        );
        let pins = read_uv(&path).unwrap();
        assert_eq!(pins.len(), 2);
        assert_eq!(pins[0].name, "a");
        assert_eq!(pins[0].source.line, 9);
        assert_eq!(
            pins[0].origin,
            Origin::Files(vec![
                PinnedFile {
                    url: "https://files.example/a-1.0.tar.gz".into(),
                    hash: Some("sha256:aa".into())
                },
                PinnedFile {
                    url: "https://files.example/a-1.0-py3-none-any.whl".into(),
                    hash: Some("sha256:bb".into())
                },
            ])
        );
        assert!(matches!(pins[1].origin, Origin::Unjudgeable(_)));
        assert_eq!(pins[1].source.line, 18);
    }

    #[test]
    fn poetry_lock_hashes_and_sources() {
        let (_d, path) = write(
            "poetry.lock",
            r#"# This file is automatically @generated by Poetry

[[package]]
name = "a"
version = "1.0"
description = ""
optional = false
python-versions = "*"
files = [
    {file = "a-1.0.tar.gz", hash = "sha256:aa"},
]

[[package]]
name = "b"
version = "2.0"
description = ""
optional = false
python-versions = "*"
files = []

[package.source]
type = "legacy"
url = "http://127.0.0.1:9/simple"
reference = "private"
"#,
        );
        let pins = read_poetry(&path).unwrap();
        assert_eq!(pins[0].source.line, 3);
        assert_eq!(
            pins[0].origin,
            Origin::Pypi {
                hashes: vec!["sha256:aa".into()],
                indexes: None
            }
        );
        assert_eq!(pins[1].source.line, 13);
        assert_eq!(
            pins[1].origin,
            Origin::Pypi {
                hashes: vec![],
                indexes: Some(vec!["http://127.0.0.1:9/simple".into()])
            }
        );
        let (_d, bad) = write("poetry.lock", "[[package]\nname = 1");
        let e = read_poetry(&bad).unwrap_err();
        assert!(e.to_string().contains("not valid TOML"), "{e}");
        assert_eq!(e.line, Some(1));
    }
}
