//! A package's identity (ecosystem, name, version), from its own metadata where it has
//! some, else from the file name it came in: malware is often repacked without metadata,
//! and the name on disk is then the best there is.

use serde::Deserialize;

use super::{Ecosystem, SourceFile};

/// What the package's file name says about its kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Hint {
    /// `.whl`: always PyPI.
    Wheel,
    /// `.tar.gz`, `.tar.bz2`, `.zip` and the rest: PyPI when nothing else decides.
    Sdist,
    /// `.tgz`: npm when nothing else decides.
    Npm,
    /// A folder: PyPI when nothing else decides; its name carries no version.
    Directory,
}

/// The package's identity.
pub(super) struct Identity {
    pub ecosystem: Ecosystem,
    pub name: String,
    pub version: String,
}

/// Used where neither the metadata nor the file name gives a version.
const UNKNOWN_VERSION: &str = "unknown";
/// Longest name or version kept: hostile metadata may hold anything.
const MAX_FIELD_CHARS: usize = 200;

/// Decides the identity of a package from its kept `files` (sorted, top folder stripped),
/// whether a `pyproject.toml` sits at its root, its kind and its file (or folder) name.
pub(super) fn identify(
    files: &[SourceFile],
    pyproject: bool,
    hint: Hint,
    file_name: &str,
) -> Identity {
    let python = python_metadata(files);
    let python_marker = pyproject
        || python.is_some()
        || find(files, "setup.py").is_some()
        || find(files, "setup.cfg").is_some();
    let manifest = find(files, "package.json");
    let ecosystem = if hint == Hint::Wheel || python_marker {
        Ecosystem::Pypi
    } else if manifest.is_some() {
        Ecosystem::Npm
    } else {
        by_file_count(files).unwrap_or(if hint == Hint::Npm {
            Ecosystem::Npm
        } else {
            Ecosystem::Pypi
        })
    };
    let (name, version) = match ecosystem {
        Ecosystem::Pypi => python.map(|file| headers(&file.bytes)),
        Ecosystem::Npm => manifest.map(|file| package_json(&file.bytes)),
    }
    .unwrap_or((None, None));
    let (fallback_name, fallback_version) = from_file_name(file_name, hint);
    Identity {
        ecosystem,
        name: name.unwrap_or(fallback_name),
        version: version
            .or(fallback_version)
            .unwrap_or_else(|| UNKNOWN_VERSION.to_owned()),
    }
}

/// The kept file at `path`, by binary search (the files are sorted).
fn find<'f>(files: &'f [SourceFile], path: &str) -> Option<&'f SourceFile> {
    files
        .binary_search_by(|f| f.path.as_str().cmp(path))
        .ok()
        .map(|i| &files[i])
}

/// The Python metadata file: `PKG-INFO` at the root, else a wheel's
/// `*.dist-info/METADATA` at the root, else the shallowest `*.egg-info/PKG-INFO`.
fn python_metadata(files: &[SourceFile]) -> Option<&SourceFile> {
    if let Some(file) = find(files, "PKG-INFO") {
        return Some(file);
    }
    // `…/dir/name` where `dir` ends with `suffix`.
    let in_folder = |file: &&SourceFile, suffix: &str, name: &str| {
        let mut parts = file.path.rsplitn(3, '/');
        parts.next() == Some(name) && parts.next().is_some_and(|dir| dir.ends_with(suffix))
    };
    files
        .iter()
        .find(|f| f.path.matches('/').count() == 1 && in_folder(f, ".dist-info", "METADATA"))
        .or_else(|| {
            files
                .iter()
                .filter(|f| in_folder(f, ".egg-info", "PKG-INFO"))
                .min_by_key(|f| f.path.matches('/').count())
        })
}

/// PyPI or npm by which kind of source file is more numerous; `None` on a tie.
fn by_file_count(files: &[SourceFile]) -> Option<Ecosystem> {
    let (mut python, mut javascript) = (0usize, 0usize);
    for file in files {
        let ext = file.path.rsplit_once('.').map_or("", |(_, ext)| ext);
        if ["py", "pyw", "pth"]
            .iter()
            .any(|e| ext.eq_ignore_ascii_case(e))
        {
            python += 1;
        } else if ["js", "mjs", "cjs"]
            .iter()
            .any(|e| ext.eq_ignore_ascii_case(e))
        {
            javascript += 1;
        }
    }
    match python.cmp(&javascript) {
        std::cmp::Ordering::Greater => Some(Ecosystem::Pypi),
        std::cmp::Ordering::Less => Some(Ecosystem::Npm),
        std::cmp::Ordering::Equal => None,
    }
}

/// `Name:` and `Version:` from RFC 822 style headers (`PKG-INFO`, `METADATA`), which end
/// at the first blank line.
fn headers(bytes: &[u8]) -> (Option<String>, Option<String>) {
    let (mut name, mut version) = (None, None);
    for line in bytes.split(|&b| b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.iter().all(u8::is_ascii_whitespace) {
            break;
        }
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            continue;
        };
        let (key, value) = (&line[..colon], &line[colon + 1..]);
        let slot = if key.eq_ignore_ascii_case(b"name") {
            &mut name
        } else if key.eq_ignore_ascii_case(b"version") {
            &mut version
        } else {
            continue;
        };
        if slot.is_none() {
            *slot = clean(&String::from_utf8_lossy(value));
        }
        if name.is_some() && version.is_some() {
            break;
        }
    }
    (name, version)
}

/// The two `package.json` fields identity needs; the rest is skipped unparsed.
#[derive(Deserialize)]
struct Manifest {
    #[serde(default)]
    name: Option<serde_json::Value>,
    #[serde(default)]
    version: Option<serde_json::Value>,
}

/// `name` and `version` from `package.json`; nothing if it is not valid JSON.
fn package_json(bytes: &[u8]) -> (Option<String>, Option<String>) {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let Ok(manifest) = serde_json::from_slice::<Manifest>(bytes) else {
        return (None, None);
    };
    let field = |value: Option<serde_json::Value>| match value {
        Some(serde_json::Value::String(text)) => clean(&text),
        _ => None,
    };
    (field(manifest.name), field(manifest.version))
}

/// The identity a file name gives: `name-1.0.tar.gz`, `name-1.0-py3-none-any.whl`,
/// `name-1.0.0.tgz`, or a folder's name.
fn from_file_name(file_name: &str, hint: Hint) -> (String, Option<String>) {
    const EXTENSIONS: &[&str] = &[
        ".tar.gz", ".tar.bz2", ".tgz", ".taz", ".tbz2", ".tbz", ".tb2", ".tar", ".zip", ".whl",
        ".egg",
    ];
    let stem = match hint {
        Hint::Directory => file_name,
        _ => EXTENSIONS
            .iter()
            .find_map(|ext| strip_suffix_ignore_case(file_name, ext))
            .or_else(|| file_name.rsplit_once('.').map(|(stem, _)| stem))
            .unwrap_or(file_name),
    };
    let split = match hint {
        Hint::Directory => None,
        Hint::Wheel => stem
            .split_once('-')
            .map(|(name, rest)| (name, rest.split('-').next().unwrap_or(rest))),
        Hint::Sdist | Hint::Npm => stem
            .char_indices()
            .rev()
            .find(|&(i, c)| c == '-' && stem[i + 1..].starts_with(|d: char| d.is_ascii_digit()))
            .map(|(i, _)| (&stem[..i], &stem[i + 1..])),
    };
    match split {
        Some((name, version)) if !name.is_empty() => (
            clean(name).unwrap_or_else(|| name.to_owned()),
            clean(version),
        ),
        _ => (clean(stem).unwrap_or_else(|| stem.to_owned()), None),
    }
}

fn strip_suffix_ignore_case<'s>(text: &'s str, suffix: &str) -> Option<&'s str> {
    let cut = text.len().checked_sub(suffix.len())?;
    (text.is_char_boundary(cut) && text[cut..].eq_ignore_ascii_case(suffix)).then(|| &text[..cut])
}

/// A metadata value fit to print: trimmed, control characters replaced (a terminal escape
/// in a hostile package's name must not reach the user's terminal), bounded in length.
fn clean(value: &str) -> Option<String> {
    let value = value.trim();
    if value.is_empty() {
        return None;
    }
    Some(
        value
            .chars()
            .take(MAX_FIELD_CHARS)
            .map(|c| if c.is_control() { '?' } else { c })
            .collect(),
    )
}
