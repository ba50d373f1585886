//! Manager: what the user asked pip or npm to do (an install to guard, or anything else to
//! pass through), where their packages come from (the upstream registries they configured),
//! and where the real manager lives on `PATH`.
//!
//! Everything here is pure argument and file work: nothing runs a package manager, nothing
//! touches the network, and nothing prints. The guard ([`crate::guard`]) parses the command
//! with [`pip::parse`] or [`npm::parse`], reads the upstream with [`pip::upstream`] or
//! [`npm::npm_config`], and runs the real manager ([`real::find_real`], [`real::real_pip`])
//! with the arguments built here ([`pip::guarded_args`], [`npm::guarded_args`], …), which
//! point it at the loopback guard index instead of the user's registries.
//!
//! The environment is read through a lookup function (`env: &dyn Fn(&str) ->
//! Option<String>`) so tests can give any; [`process_env`] is the real one.

pub mod bun;
pub mod npm;
pub mod pip;
pub mod pipx;
pub mod pnpm;
pub mod poetry;
pub mod real;
pub(crate) mod requirements;
pub mod uv;
pub mod yarn;

use std::path::{Path, PathBuf};

/// Why an install could not be understood or prepared. Each message is one line that names the
/// file, option or tool at fault and says what to do; URLs in messages have their credentials
/// removed.
#[derive(Debug, thiserror::Error)]
pub enum ManagerError {
    /// No real package manager on `PATH` once Cerebro's shims are skipped.
    #[error(
        "cannot find the real `{tool}` on PATH (Cerebro's shim folders skipped): install \
         {tool}, or make sure its folder is on PATH after the shims"
    )]
    NotFound { tool: String },

    /// A requirement, constraint or config file that should exist does not.
    #[error("{kind} file {} does not exist{}", path.display(), included_from(from))]
    MissingFile {
        kind: &'static str,
        path: PathBuf,
        from: Option<PathBuf>,
    },

    /// A file exists but could not be read.
    #[error("cannot read {}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// A sanitised copy could not be written to the scratch folder.
    #[error("cannot write {}: {source}", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// Requirement files that include each other in a loop (pip would recurse forever).
    #[error(
        "requirement files include each other in a loop: {chain}; remove one of the -r/-c lines"
    )]
    Cycle { chain: String },

    /// An option that takes a value came last, without one.
    #[error("{manager} option {option} needs a value")]
    MissingValue {
        manager: &'static str,
        option: String,
    },

    /// An abbreviated option that could mean several (pip refuses them too); spelled out, it
    /// cannot be mistaken for an index option.
    #[error("{manager} option {option} is ambiguous (it could be {candidates}): spell it out")]
    AmbiguousOption {
        manager: &'static str,
        option: String,
        candidates: String,
    },

    /// A registry or index address that is not a URL.
    #[error("{what} `{value}` is not a valid URL ({reason})")]
    BadUrl {
        what: String,
        value: String,
        reason: String,
    },

    /// A requirement file whose text Cerebro cannot decode exactly as pip would: read another
    /// way, it could hide an index option from the guard.
    #[error("cannot judge requirement file {}: {reason}", path.display())]
    Undecodable { path: PathBuf, reason: String },

    /// A command line Cerebro cannot read exactly as the manager would.
    #[error("{manager}: {reason}")]
    Argument {
        manager: &'static str,
        reason: String,
    },

    /// A line of a requirement or config file the manager itself would reject.
    #[error("{}:{line}: {message}", path.display())]
    Syntax {
        path: PathBuf,
        line: usize,
        message: String,
    },
}

fn included_from(from: &Option<PathBuf>) -> String {
    match from {
        Some(file) => format!(" (included from {})", file.display()),
        None => String::new(),
    }
}

/// The process environment, as the lookup the functions of this module take.
pub fn process_env(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

/// `text` with the password (or token) of every `scheme://user:secret@host` replaced by
/// `****`, for messages.
pub(crate) fn redact(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("://") {
        let (head, tail) = rest.split_at(at + 3);
        out.push_str(head);
        let authority_end = tail.find(['/', '?', '#', ' ']).unwrap_or(tail.len());
        let authority = &tail[..authority_end];
        match authority.rfind('@') {
            Some(userinfo_end) => {
                let userinfo = &authority[..userinfo_end];
                match userinfo.split_once(':') {
                    Some((user, _)) => out.push_str(&format!("{user}:****")),
                    None => out.push_str("****"),
                }
                out.push_str(&authority[userinfo_end..]);
            }
            None => out.push_str(authority),
        }
        rest = &tail[authority_end..];
    }
    out.push_str(rest);
    out
}

/// Parses `value` as an absolute URL, or, when it is a path (pip accepts a local folder as an
/// index), as the `file:` URL of that folder resolved against `cwd`.
pub(crate) fn parse_url_or_dir(
    what: &str,
    value: &str,
    cwd: &Path,
) -> Result<reqwest::Url, ManagerError> {
    let bad = |reason: String| ManagerError::BadUrl {
        what: what.to_owned(),
        value: redact(value),
        reason,
    };
    let has_scheme = value.split_once(':').is_some_and(|(scheme, _)| {
        scheme.len() > 1
            && scheme.starts_with(|c: char| c.is_ascii_alphabetic())
            && scheme
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"+.-".contains(&b))
    });
    if has_scheme {
        return reqwest::Url::parse(value).map_err(|e| bad(e.to_string()));
    }
    let path = absolute(cwd, &expand_tilde(value));
    reqwest::Url::from_directory_path(&path)
        .map_err(|()| bad("neither a URL nor an absolute folder".to_owned()))
}

/// `~/x` → `$HOME/x` (as Python's `expanduser` and npm do); anything else unchanged.
pub(crate) fn expand_tilde(path: &str) -> PathBuf {
    match path.strip_prefix("~/") {
        Some(rest) => match std::env::var_os("HOME") {
            Some(home) => Path::new(&home).join(rest),
            None => PathBuf::from(path),
        },
        None => PathBuf::from(path),
    }
}

/// `path` made absolute against `cwd`, with `.` and `..` folded lexically (no disk access),
/// as Python's `os.path.abspath` does.
pub(crate) fn absolute(cwd: &Path, path: &Path) -> PathBuf {
    use std::path::Component;
    let joined = cwd.join(path);
    let mut out = PathBuf::new();
    for part in joined.components() {
        match part {
            Component::ParentDir => {
                if !out.pop() {
                    out.push(part);
                }
            }
            Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

/// A word quoted for a POSIX shell (and for `shlex.split`, which pip uses on requirement
/// file options): bare when it is plain, else in single quotes.
pub(crate) fn shell_quote(word: &str) -> String {
    let plain = !word.is_empty()
        && word
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_./:=@%+,^~".contains(&b));
    if plain {
        word.to_owned()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

/// Splits `line` the way Python's `shlex.split` does in POSIX mode (quotes and backslashes,
/// no comments). `None` on an unclosed quote.
pub(crate) fn shlex_split(line: &str) -> Option<Vec<String>> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            c if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            '\'' => {
                in_word = true;
                loop {
                    match chars.next()? {
                        '\'' => break,
                        c => word.push(c),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next()? {
                        '"' => break,
                        '\\' => match chars.next()? {
                            c @ ('"' | '\\') => word.push(c),
                            c => {
                                word.push('\\');
                                word.push(c);
                            }
                        },
                        c => word.push(c),
                    }
                }
            }
            '\\' => {
                in_word = true;
                if let Some(c) = chars.next() {
                    word.push(c);
                }
            }
            c => {
                in_word = true;
                word.push(c);
            }
        }
    }
    if in_word {
        words.push(word);
    }
    Some(words)
}

/// How an abbreviated long option resolves among `names` (optparse and nopt both accept any
/// unambiguous prefix).
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Abbrev<'a> {
    Exact(&'a str),
    Unique(&'a str),
    Ambiguous(Vec<&'a str>),
    Unknown,
}

pub(crate) fn match_abbrev<'a>(word: &str, names: impl Iterator<Item = &'a str>) -> Abbrev<'a> {
    let mut found = Vec::new();
    for name in names {
        if name == word {
            return Abbrev::Exact(name);
        }
        if name.starts_with(word) && !found.contains(&name) {
            found.push(name);
        }
    }
    match found.len() {
        0 => Abbrev::Unknown,
        1 => Abbrev::Unique(found[0]),
        _ => Abbrev::Ambiguous(found),
    }
}

/// Helpers shared by the pip and npm parsers' tests.
#[cfg(test)]
pub(crate) mod test_util {
    use std::ffi::OsString;
    use std::path::Path;

    use reqwest::Url;

    pub fn args(words: &[&str]) -> Vec<OsString> {
        words.iter().map(OsString::from).collect()
    }

    pub fn strings(args: &[OsString]) -> Vec<String> {
        args.iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect()
    }

    pub fn write(path: &Path, text: &str) {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }

    pub fn url(s: &str) -> Url {
        Url::parse(s).unwrap()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redact_hides_secrets_only() {
        assert_eq!(
            redact("https://user:tok@host/simple and http://h2/x"),
            "https://user:****@host/simple and http://h2/x"
        );
        assert_eq!(redact("https://tok@host/"), "https://****@host/");
        assert_eq!(redact("no url here"), "no url here");
    }

    #[test]
    fn shlex_follows_posix_rules() {
        assert_eq!(
            shlex_split(r#"-i 'a b' "c\"d" e\ f"#).unwrap(),
            vec!["-i", "a b", "c\"d", "e f"]
        );
        assert_eq!(shlex_split("''").unwrap(), vec![""]);
        assert!(shlex_split("'open").is_none());
        for word in ["plain", "with space", "it's", "", "$HOME"] {
            assert_eq!(shlex_split(&shell_quote(word)).unwrap(), vec![word]);
        }
    }

    #[test]
    fn abbreviations_resolve_like_optparse() {
        let names = ["--index-url", "--extra-index-url", "--exists-action"];
        assert_eq!(
            match_abbrev("--ind", names.iter().copied()),
            Abbrev::Unique("--index-url")
        );
        assert!(matches!(
            match_abbrev("--ex", names.iter().copied()),
            Abbrev::Ambiguous(_)
        ));
        assert_eq!(match_abbrev("--zz", names.iter().copied()), Abbrev::Unknown);
    }

    #[test]
    fn absolute_folds_dots() {
        assert_eq!(
            absolute(Path::new("/a/b"), Path::new("../c/./d")),
            PathBuf::from("/a/c/d")
        );
        assert_eq!(
            absolute(Path::new("/a"), Path::new("/x")),
            PathBuf::from("/x")
        );
    }
}
