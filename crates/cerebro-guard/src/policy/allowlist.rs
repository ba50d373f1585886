//! The allowlist: packages the user lets through whatever their verdict, kept as TOML in
//! [`config_dir`](super::config_dir) and changed only under a lock, atomically.

use std::fmt;
use std::fs::File;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use super::PolicyError;
use cerebro_archive::Ecosystem;

/// The known keys of `allowlist.toml`, for the unknown-key error.
const KNOWN_KEYS: &str = "[pypi] packages, [npm] packages";

const HEADER: &str = "\
# Cerebro's allowlist: packages installed whatever their verdict.
# \"name\" allows every version, \"name@1.2.3\" one version (PyPI also takes \"name==1.2.3\").
# Edit it with `cerebro allow ECOSYSTEM PACKAGE` and `cerebro allowlist --remove ECOSYSTEM PACKAGE`.
";

/// One allowlisted package, or one version of it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Entry {
    pub ecosystem: Ecosystem,
    /// PyPI: normalised (PEP 503: lowercase, runs of `-_.` as one `-`), so `Foo_Bar` and
    /// `foo-bar` are one package. npm: as published, `@scope/name` for scoped packages.
    pub name: String,
    /// `None`: every version.
    pub version: Option<String>,
}

impl Entry {
    /// Parses what a user types: `name`, `name@version`, `@scope/name`, `@scope/name@1.0.0`,
    /// and for PyPI also `name==version`. A version must be exact (no ranges).
    pub fn parse(ecosystem: Ecosystem, spec: &str) -> Result<Entry, PolicyError> {
        let trimmed = spec.trim();
        let (name, version) = match ecosystem {
            Ecosystem::Pypi => match trimmed.split_once("==") {
                Some((name, version)) => (name, Some(version)),
                None => match trimmed.split_once('@') {
                    Some((name, version)) => (name, Some(version)),
                    None => (trimmed, None),
                },
            },
            Ecosystem::Npm => {
                // The version's `@` is the first one after the scope's leading `@`.
                let start = usize::from(trimmed.starts_with('@'));
                match trimmed[start..].find('@') {
                    Some(at) => (&trimmed[..start + at], Some(&trimmed[start + at + 1..])),
                    None => (trimmed, None),
                }
            }
        };
        Entry::new(ecosystem, name.trim(), version.map(str::trim)).map_err(|e| match e {
            PolicyError::BadEntry {
                ecosystem, problem, ..
            } => PolicyError::BadEntry {
                ecosystem,
                spec: spec.to_owned(),
                problem,
            },
            other => other,
        })
    }

    /// An entry from a name and an optional exact version (as a package's metadata gives
    /// them), checked and normalised like [`Entry::parse`], so it can be saved and read back.
    pub fn new(
        ecosystem: Ecosystem,
        name: &str,
        version: Option<&str>,
    ) -> Result<Entry, PolicyError> {
        let bad = |problem: &str| PolicyError::BadEntry {
            ecosystem,
            spec: match version {
                Some(v) => format!("{name}@{v}"),
                None => name.to_owned(),
            },
            problem: problem.to_owned(),
        };
        let name = match ecosystem {
            Ecosystem::Pypi => {
                check_pypi_name(name).map_err(bad)?;
                normalise_pypi(name)
            }
            Ecosystem::Npm => {
                check_npm_name(name).map_err(bad)?;
                name.to_owned()
            }
        };
        let version = match version {
            None => None,
            Some(v) => {
                check_version(ecosystem, v).map_err(bad)?;
                Some(normalise_version(v))
            }
        };
        Ok(Entry {
            ecosystem,
            name,
            version,
        })
    }

    /// Whether this entry lets `name` at `version` through.
    pub fn matches(&self, ecosystem: Ecosystem, name: &str, version: &str) -> bool {
        self.ecosystem == ecosystem
            && same_name(ecosystem, &self.name, name)
            && self
                .version
                .as_deref()
                .is_none_or(|v| normalise_version(v) == normalise_version(version))
    }

    fn sort_key(&self) -> (u8, &str, Option<&str>) {
        let ecosystem = match self.ecosystem {
            Ecosystem::Pypi => 0,
            Ecosystem::Npm => 1,
        };
        (ecosystem, &self.name, self.version.as_deref())
    }
}

/// `name` or `name@version`, the form [`Entry::parse`] reads and the file stores.
impl fmt::Display for Entry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.version {
            Some(v) => write!(f, "{}@{v}", self.name),
            None => f.write_str(&self.name),
        }
    }
}

/// PEP 508: ASCII letters and digits, with `.`, `_`, `-` inside.
fn check_pypi_name(name: &str) -> Result<(), &'static str> {
    let ok_inner = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-');
    if name.is_empty() {
        return Err("the name is empty");
    }
    if !name.chars().all(ok_inner) {
        return Err("a PyPI name has only letters, digits, `.`, `_` and `-`");
    }
    let first_last = [name.chars().next(), name.chars().last()];
    if !first_last
        .iter()
        .flatten()
        .all(|c| c.is_ascii_alphanumeric())
    {
        return Err("a PyPI name starts and ends with a letter or digit");
    }
    Ok(())
}

/// PEP 503 normalisation: lowercase, every run of `-`, `_`, `.` becomes one `-`.
fn normalise_pypi(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for c in name.chars() {
        if matches!(c, '-' | '_' | '.') {
            if !out.ends_with('-') {
                out.push('-');
            }
        } else {
            out.push(c.to_ascii_lowercase());
        }
    }
    out
}

/// npm's rules, loosely: at most 214 characters, URL-safe, `@scope/name` or `name`, no part
/// starting with `.` or `_`. Case is kept (old packages have capitals).
fn check_npm_name(name: &str) -> Result<(), &'static str> {
    if name.is_empty() {
        return Err("the name is empty");
    }
    if name.len() > 214 {
        return Err("an npm name has at most 214 characters");
    }
    let parts: Vec<&str> = match name.strip_prefix('@') {
        Some(scoped) => match scoped.split_once('/') {
            Some((scope, rest)) => vec![scope, rest],
            None => return Err("a scoped npm name is `@scope/name`"),
        },
        None => vec![name],
    };
    for part in parts {
        if part.is_empty() {
            return Err("a scoped npm name is `@scope/name`");
        }
        if part.starts_with(['.', '_']) {
            return Err("an npm name does not start with `.` or `_`");
        }
        let ok = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_' | '~');
        if !part.chars().all(ok) {
            return Err("an npm name has only letters, digits, `-`, `.`, `_` and `~`");
        }
    }
    Ok(())
}

/// An exact version: PEP 440 or semver characters only, so ranges (`^1`, `>=2`, `1.*`) and
/// URLs are refused rather than silently never matching.
fn check_version(ecosystem: Ecosystem, version: &str) -> Result<(), &'static str> {
    if version.is_empty() {
        return Err("the version after `@` is empty");
    }
    let ok = |c: char| match ecosystem {
        Ecosystem::Pypi => c.is_ascii_alphanumeric() || matches!(c, '.' | '!' | '+' | '-' | '_'),
        Ecosystem::Npm => c.is_ascii_alphanumeric() || matches!(c, '.' | '+' | '-'),
    };
    if !version.chars().all(ok) {
        return Err("the version must be one exact version, like 1.2.3 (no ranges)");
    }
    Ok(())
}

/// Versions compare without case and without a leading `v` (`V1.0` is `1.0`).
fn normalise_version(version: &str) -> String {
    let lower = version.trim().to_ascii_lowercase();
    match lower.strip_prefix('v') {
        Some(rest) if rest.starts_with(|c: char| c.is_ascii_digit()) => rest.to_owned(),
        _ => lower,
    }
}

fn same_name(ecosystem: Ecosystem, a: &str, b: &str) -> bool {
    match ecosystem {
        Ecosystem::Pypi => normalise_pypi(a) == normalise_pypi(b),
        Ecosystem::Npm => a == b,
    }
}

/// The packages the user lets through whatever their verdict.
///
/// Stored at `allowlist.toml` in [`config_dir`](super::config_dir), one table per
/// ecosystem:
///
/// ```toml
/// [pypi]
/// packages = ["requests", "foo@1.2.3"]
///
/// [npm]
/// packages = ["left-pad", "@scope/name@1.0.0"]
/// ```
///
/// `name` allows every version, `name@version` that version only. Writes go through
/// [`Allowlist::update`], which holds a lock (`allowlist.lock` beside the file) around
/// read-modify-write and replaces the file atomically, so two installs saving at once lose
/// nothing. A file that cannot be read as an allowlist is an error naming it, never
/// overwritten.
#[derive(Debug, Clone, PartialEq)]
pub struct Allowlist {
    path: PathBuf,
    entries: Vec<Entry>,
}

impl Allowlist {
    /// An empty allowlist that [`Allowlist::save`] would write to `path`.
    pub fn new(path: impl Into<PathBuf>) -> Allowlist {
        Allowlist {
            path: path.into(),
            entries: Vec::new(),
        }
    }

    /// `allowlist.toml` in [`config_dir`](super::config_dir).
    pub fn default_path() -> Result<PathBuf, PolicyError> {
        super::config_dir()
            .map(|d| d.join(super::ALLOWLIST_FILE))
            .ok_or(PolicyError::NoConfigDir)
    }

    /// Reads the allowlist at `path`; a missing file is an empty list.
    pub fn load(path: &Path) -> Result<Allowlist, PolicyError> {
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Allowlist::new(path)),
            Err(error) => {
                return Err(PolicyError::Read {
                    path: path.to_owned(),
                    error,
                })
            }
        };
        Allowlist::parse(&text, path)
    }

    /// Reads the user's allowlist ([`Allowlist::default_path`]).
    pub fn load_default() -> Result<Allowlist, PolicyError> {
        Allowlist::load(&Allowlist::default_path()?)
    }

    /// Parses the text of an allowlist file that lives (or will live) at `path`.
    pub fn parse(text: &str, path: &Path) -> Result<Allowlist, PolicyError> {
        let table = super::config::parse_table(text, path)?;
        let mut list = Allowlist::new(path);
        let bad = |key: &str, problem: String| PolicyError::BadValue {
            path: path.to_owned(),
            key: key.to_owned(),
            problem,
        };
        let unknown = |key: String| PolicyError::UnknownKey {
            path: path.to_owned(),
            key,
            known: KNOWN_KEYS,
        };
        for (section, value) in &table {
            let ecosystem = match section.as_str() {
                "pypi" => Ecosystem::Pypi,
                "npm" => Ecosystem::Npm,
                _ => return Err(unknown(section.clone())),
            };
            let toml::Value::Table(inner) = value else {
                return Err(bad(
                    section,
                    format!("must be a table ([{section}]), not {}", value.type_str()),
                ));
            };
            for (key, value) in inner {
                let full = format!("{section}.{key}");
                if key != "packages" {
                    return Err(unknown(full));
                }
                let toml::Value::Array(items) = value else {
                    return Err(bad(
                        &full,
                        format!("must be a list of strings, not {}", value.type_str()),
                    ));
                };
                for item in items {
                    let toml::Value::String(spec) = item else {
                        return Err(bad(
                            &full,
                            format!("must be a list of strings, not hold a {}", item.type_str()),
                        ));
                    };
                    let entry = Entry::parse(ecosystem, spec)
                        .map_err(|e| bad(&full, format!("has a bad entry ({e})")))?;
                    list.add(entry);
                }
            }
        }
        Ok(list)
    }

    /// The file this list is read from and saved to.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether `name` at `version` may be installed whatever its verdict. PyPI names
    /// compare normalised; versions compare exactly (ignoring case and a leading `v`).
    pub fn allows(&self, ecosystem: Ecosystem, name: &str, version: &str) -> bool {
        self.entries
            .iter()
            .any(|e| e.matches(ecosystem, name, version))
    }

    /// Adds an entry. Returns `false`, changing nothing, when the list already allows it
    /// (the same entry, or every version of that package). Allowing every version drops the
    /// entries for single versions of that package, which it makes redundant.
    pub fn add(&mut self, entry: Entry) -> bool {
        let entry = match Entry::new(entry.ecosystem, &entry.name, entry.version.as_deref()) {
            Ok(normalised) => normalised,
            Err(_) => entry,
        };
        let covered = self.entries.iter().any(|e| {
            e.ecosystem == entry.ecosystem
                && e.name == entry.name
                && (e.version.is_none() || e.version == entry.version)
        });
        if covered {
            return false;
        }
        if entry.version.is_none() {
            self.entries
                .retain(|e| !(e.ecosystem == entry.ecosystem && e.name == entry.name));
        }
        let at = self
            .entries
            .partition_point(|e| e.sort_key() < entry.sort_key());
        self.entries.insert(at, entry);
        true
    }

    /// Removes an entry. An entry without a version removes every entry of that package
    /// (all versions and single ones); with a version, only that version's entry. Returns
    /// whether anything was removed.
    pub fn remove(&mut self, entry: &Entry) -> bool {
        let before = self.entries.len();
        self.entries.retain(|e| {
            let same_package =
                e.ecosystem == entry.ecosystem && same_name(e.ecosystem, &e.name, &entry.name);
            let same_version = match &entry.version {
                None => true,
                Some(v) => e
                    .version
                    .as_deref()
                    .is_some_and(|ev| normalise_version(ev) == normalise_version(v)),
            };
            !(same_package && same_version)
        });
        self.entries.len() != before
    }

    /// The entries, PyPI first, then by name, every-version entries before single versions.
    pub fn entries(&self) -> std::slice::Iter<'_, Entry> {
        self.entries.iter()
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Writes the list to its file, atomically, under the allowlist lock. To change the
    /// list on disk without losing another process's change, use [`Allowlist::update`].
    pub fn save(&self) -> Result<(), PolicyError> {
        let _lock = lock(&self.path)?;
        self.write(&self.path)
    }

    /// Loads the list at `path` under an exclusive lock, lets `change` edit it, and saves it
    /// (only if it changed) before the lock is released: the way to edit the allowlist when
    /// another process may be editing it too. A corrupt file is returned as an error and left
    /// as it is.
    pub fn update<R>(
        path: &Path,
        change: impl FnOnce(&mut Allowlist) -> R,
    ) -> Result<R, PolicyError> {
        let _lock = lock(path)?;
        let mut list = Allowlist::load(path)?;
        let before = list.entries.clone();
        let result = change(&mut list);
        if list.entries != before {
            list.write(path)?;
        }
        Ok(result)
    }

    /// [`Allowlist::update`] on the user's allowlist ([`Allowlist::default_path`]).
    pub fn update_default<R>(change: impl FnOnce(&mut Allowlist) -> R) -> Result<R, PolicyError> {
        Allowlist::update(&Allowlist::default_path()?, change)
    }

    /// The file's text: a comment saying how to edit it, then one table per ecosystem.
    fn render(&self) -> String {
        let mut out = String::from(HEADER);
        for (ecosystem, section) in [(Ecosystem::Pypi, "pypi"), (Ecosystem::Npm, "npm")] {
            out.push_str(&format!("\n[{section}]\npackages = ["));
            let mut any = false;
            for entry in self.entries.iter().filter(|e| e.ecosystem == ecosystem) {
                let quoted = toml::Value::String(entry.to_string()).to_string();
                out.push_str(&format!("\n    {quoted},"));
                any = true;
            }
            out.push_str(if any { "\n]\n" } else { "]\n" });
        }
        out
    }

    /// Writes to a temporary file beside `path`, then renames it over `path`: readers see the
    /// old list or the new one, never half of one. The caller holds the lock.
    fn write(&self, path: &Path) -> Result<(), PolicyError> {
        let write_err = |error| PolicyError::Write {
            path: path.to_owned(),
            error,
        };
        let dir = parent_dir(path);
        std::fs::create_dir_all(dir).map_err(write_err)?;
        let mut tmp = tempfile::Builder::new()
            .prefix(".allowlist-")
            .suffix(".tmp")
            .tempfile_in(dir)
            .map_err(write_err)?;
        tmp.write_all(self.render().as_bytes())
            .and_then(|()| tmp.as_file().sync_all())
            .map_err(write_err)?;
        tmp.persist(path).map_err(|e| write_err(e.error))?;
        Ok(())
    }
}

fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// Takes the exclusive lock that guards `path` (`allowlist.lock` for `allowlist.toml`),
/// waiting for another process holding it. Released when the file is dropped.
fn lock(path: &Path) -> Result<File, PolicyError> {
    let lock_path = path.with_extension("lock");
    let write_err = |error| PolicyError::Write {
        path: lock_path.clone(),
        error,
    };
    std::fs::create_dir_all(parent_dir(path)).map_err(write_err)?;
    let file = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(write_err)?;
    file.lock().map_err(write_err)?;
    Ok(file)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pypi(spec: &str) -> Entry {
        Entry::parse(Ecosystem::Pypi, spec).unwrap()
    }

    fn npm(spec: &str) -> Entry {
        Entry::parse(Ecosystem::Npm, spec).unwrap()
    }

    #[test]
    fn pypi_entries_are_normalised_per_pep_503() {
        let e = pypi("Foo__Bar.-baz");
        assert_eq!(e.name, "foo-bar-baz");
        assert_eq!(e.version, None);
        assert_eq!(pypi("Requests==2.32.3").version.as_deref(), Some("2.32.3"));
        assert_eq!(pypi("requests@2.32.3").to_string(), "requests@2.32.3");
        assert_eq!(pypi(" requests == V2.0 ").version.as_deref(), Some("2.0"));
        assert_eq!(pypi("a").name, "a");
    }

    #[test]
    fn npm_entries_keep_scopes() {
        let e = npm("@scope/name@1.0.0");
        assert_eq!(
            (e.name.as_str(), e.version.as_deref()),
            ("@scope/name", Some("1.0.0"))
        );
        let e = npm("@scope/name");
        assert_eq!((e.name.as_str(), e.version), ("@scope/name", None));
        let e = npm("left-pad@1.3.0");
        assert_eq!(
            (e.name.as_str(), e.version.as_deref()),
            ("left-pad", Some("1.3.0"))
        );
        assert_eq!(npm("JSONStream").name, "JSONStream");
        for spec in ["@scope/name@1.0.0", "left-pad", "x@1.0.0-beta.1+b2"] {
            assert_eq!(npm(spec).to_string(), spec);
            assert_eq!(
                Entry::parse(Ecosystem::Npm, &npm(spec).to_string()).unwrap(),
                npm(spec)
            );
        }
    }

    #[test]
    fn bad_entries_are_refused_with_the_spec() {
        for (ecosystem, spec) in [
            (Ecosystem::Pypi, ""),
            (Ecosystem::Pypi, "foo bar"),
            (Ecosystem::Pypi, "-foo"),
            (Ecosystem::Pypi, "foo>=1.0"),
            (Ecosystem::Pypi, "foo==1.*"),
            (Ecosystem::Pypi, "foo@"),
            (Ecosystem::Pypi, "foo @ https://x/y.whl"),
            (Ecosystem::Npm, "@scope"),
            (Ecosystem::Npm, "@/name"),
            (Ecosystem::Npm, "@scope/"),
            (Ecosystem::Npm, "a/b"),
            (Ecosystem::Npm, "_private"),
            (Ecosystem::Npm, "left-pad@^1.0.0"),
            (Ecosystem::Npm, "left-pad@"),
            (Ecosystem::Npm, "x@1@2"),
        ] {
            let err = Entry::parse(ecosystem, spec).expect_err(spec).to_string();
            assert!(err.contains(&format!("`{spec}`")), "{spec}: {err}");
        }
    }

    #[test]
    fn allows_with_and_without_versions() {
        let mut list = Allowlist::new("/x/allowlist.toml");
        assert!(!list.allows(Ecosystem::Pypi, "requests", "1.0"));
        list.add(pypi("requests"));
        list.add(pypi("foo-bar@1.2.3"));
        list.add(npm("@s/n@2.0.0"));
        assert!(list.allows(Ecosystem::Pypi, "Requests", "9.9"));
        assert!(!list.allows(Ecosystem::Npm, "requests", "9.9"));
        assert!(list.allows(Ecosystem::Pypi, "foo_bar", "1.2.3"));
        assert!(list.allows(Ecosystem::Pypi, "Foo.Bar", "v1.2.3"));
        assert!(!list.allows(Ecosystem::Pypi, "foo-bar", "1.2.4"));
        assert!(list.allows(Ecosystem::Npm, "@s/n", "2.0.0"));
        assert!(!list.allows(Ecosystem::Npm, "@S/n", "2.0.0"));
        assert!(!list.allows(Ecosystem::Npm, "n", "2.0.0"));
    }

    #[test]
    fn add_and_remove() {
        let mut list = Allowlist::new("/x/allowlist.toml");
        assert!(list.add(pypi("foo@1.0")));
        assert!(!list.add(pypi("Foo==1.0")));
        assert!(list.add(pypi("foo@2.0")));
        assert_eq!(list.len(), 2);
        // Every version supersedes single ones, and then covers them.
        assert!(list.add(pypi("foo")));
        assert_eq!(
            list.entries().cloned().collect::<Vec<_>>(),
            vec![pypi("foo")]
        );
        assert!(!list.add(pypi("foo@3.0")));
        assert!(list.add(npm("foo")));
        assert_eq!(list.len(), 2);
        assert!(!list.remove(&pypi("foo@1.0")));
        assert!(list.remove(&pypi("FOO")));
        assert!(!list.remove(&pypi("foo")));
        assert_eq!(list.entries().collect::<Vec<_>>(), vec![&npm("foo")]);
        // Removing without a version removes single versions too.
        list.add(npm("bar@1.0.0"));
        list.add(npm("bar@2.0.0"));
        assert!(list.remove(&npm("bar@1.0.0")));
        assert!(list.remove(&npm("bar")));
        assert_eq!(list.len(), 1);
    }

    #[test]
    fn save_and_load_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/allowlist.toml");
        assert!(Allowlist::load(&path).unwrap().is_empty());
        let mut list = Allowlist::new(&path);
        for e in [npm("@s/n@1.0.0"), pypi("b"), pypi("a@1.0"), npm("left-pad")] {
            list.add(e);
        }
        list.save().unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.starts_with("# Cerebro's allowlist"), "{text}");
        let back = Allowlist::load(&path).unwrap();
        assert_eq!(back, list);
        let order: Vec<String> = back.entries().map(|e| e.to_string()).collect();
        assert_eq!(order, ["a@1.0", "b", "@s/n@1.0.0", "left-pad"]);
        // Only the list and its lock are left: no temporary files.
        let mut names: Vec<_> = std::fs::read_dir(path.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        assert_eq!(names, ["allowlist.lock", "allowlist.toml"]);
    }

    #[test]
    fn hand_written_file_is_read() {
        let list = Allowlist::parse(
            "[pypi]\npackages = [\"Requests\", \"foo==1.0\"]\n[npm]\npackages = []\n",
            Path::new("/x/allowlist.toml"),
        )
        .unwrap();
        assert!(list.allows(Ecosystem::Pypi, "requests", "0.1"));
        assert!(list.allows(Ecosystem::Pypi, "foo", "1.0"));
    }

    #[test]
    fn corrupt_file_is_an_error_and_is_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("allowlist.toml");
        for text in [
            "[pypi\npackages = [",
            "[pip]\npackages = []",
            "[pypi]\npackage = []",
            "[pypi]\npackages = \"requests\"",
            "[pypi]\npackages = [1]",
            "pypi = 3",
            "[npm]\npackages = [\"a b\"]",
        ] {
            std::fs::write(&path, text).unwrap();
            let err = Allowlist::update(&path, |l| l.add(pypi("x")))
                .unwrap_err()
                .to_string();
            assert!(err.contains(&path.display().to_string()), "{text}: {err}");
            assert!(!err.contains('\n'), "{err}");
            assert_eq!(std::fs::read_to_string(&path).unwrap(), text);
        }
    }

    #[test]
    fn update_saves_only_changes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("allowlist.toml");
        assert!(!Allowlist::update(&path, |l| l.remove(&pypi("x"))).unwrap());
        assert!(!path.exists());
        assert!(Allowlist::update(&path, |l| l.add(pypi("x"))).unwrap());
        assert!(Allowlist::load(&path)
            .unwrap()
            .allows(Ecosystem::Pypi, "x", "1"));
    }

    #[test]
    fn concurrent_updates_lose_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("allowlist.toml");
        std::thread::scope(|s| {
            for i in 0..8 {
                let path = &path;
                s.spawn(move || {
                    Allowlist::update(path, |l| l.add(npm(&format!("pkg-{i}")))).unwrap();
                });
            }
        });
        assert_eq!(Allowlist::load(&path).unwrap().len(), 8);
    }
}
