//! pip requirement and constraint files, read the way pip reads them: logical lines (a `\` at
//! the end joins the next, `#` after whitespace starts a comment), `${VAR}` expansion, nested
//! `-r`/`-c` relative to the including file, and the index options pip takes from them. Files
//! that name an index are copied, sanitised, so that pip resolves only through the guard.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use super::pip::{
    classify_editable, classify_requirement, is_remote, is_url, FileIndexOption, OptKind, ReqKind,
    REQ_FILE_OPTIONS,
};
use super::{absolute, shell_quote, shlex_split, ManagerError};

/// Every file read for one install, each once, with what it includes.
#[derive(Debug, Clone, Default)]
pub(crate) struct Tree {
    files: Vec<File>,
    by_path: HashMap<PathBuf, usize>,
}

#[derive(Debug, Clone)]
struct File {
    path: PathBuf,
    /// Read first as a constraint file (`-c`): its lines pin, they do not install.
    constraint: bool,
    lines: Vec<Line>,
}

/// One requirement line of a requirement file, for readers that judge what a file pins
/// (`cerebro audit`) rather than install it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequirementLine {
    /// The file, absolute.
    pub file: PathBuf,
    /// The line the logical line starts on (1-based).
    pub line: usize,
    /// The requirement as pip reads it: `${VAR}` expanded, without its options.
    pub requirement: String,
    /// `-e`/`--editable`: the value of the option.
    pub editable: bool,
    /// Every `--hash=algo:hex` of the line, as written (`sha256:…`).
    pub hashes: Vec<String>,
}

#[derive(Debug, Clone)]
enum Line {
    /// A requirement (or `-e …`) line, kept as written before `${VAR}` expansion: pip resolves
    /// its local paths against the working folder, not the file, so a copy needs no change.
    Verbatim { raw: String, req: ReqLine },
    /// `-r FILE` or `-c FILE`; pip ignores any other option on such a line.
    Nested { constraint: bool, target: Target },
    /// Options only (index options, `--pre`, `--hash`-less settings, …).
    Options(Vec<FileOpt>),
}

/// What a requirement line asks for, as [`RequirementLine`] shows it.
#[derive(Debug, Clone)]
struct ReqLine {
    number: usize,
    requirement: String,
    editable: bool,
    hashes: Vec<String>,
}

#[derive(Debug, Clone)]
enum Target {
    Local(usize),
    Remote(String),
}

#[derive(Debug, Clone)]
struct FileOpt {
    kind: OptKind,
    /// The option's value, `${VAR}` expanded (local find-links made absolute).
    value: Option<String>,
    /// The words as written (after expansion), for the sanitised copy.
    words: Vec<String>,
}

/// What the files of one install say, gathered in pip's order.
#[derive(Debug, Clone, Default)]
pub(crate) struct Collected {
    pub index_options: Vec<FileIndexOption>,
    pub find_links: Vec<String>,
    pub remote_find_links: Vec<String>,
    pub requirement_files: Vec<PathBuf>,
    pub constraint_files: Vec<PathBuf>,
    pub remote_files: Vec<String>,
    pub local_paths: Vec<PathBuf>,
    pub urls: Vec<String>,
}

impl Tree {
    /// The file with id `id`, as read (absolute).
    pub fn path_of(&self, id: usize) -> PathBuf {
        self.files[id].path.clone()
    }

    /// Reads `path` (given on the command line, relative to `cwd`) and everything it
    /// includes; returns the file's id.
    pub fn read(
        &mut self,
        path: &Path,
        constraint: bool,
        cwd: &Path,
        env: &dyn Fn(&str) -> Option<String>,
        out: &mut Collected,
    ) -> Result<usize, ManagerError> {
        let path = absolute(cwd, path);
        let mut stack = Vec::new();
        self.read_file(&path, constraint, None, cwd, env, out, &mut stack)
    }

    #[allow(clippy::too_many_arguments)]
    fn read_file(
        &mut self,
        path: &Path,
        constraint: bool,
        from: Option<&Path>,
        cwd: &Path,
        env: &dyn Fn(&str) -> Option<String>,
        out: &mut Collected,
        stack: &mut Vec<PathBuf>,
    ) -> Result<usize, ManagerError> {
        let kind = if constraint {
            "constraint"
        } else {
            "requirement"
        };
        let bytes = std::fs::read(path).map_err(|source| {
            if source.kind() == std::io::ErrorKind::NotFound {
                ManagerError::MissingFile {
                    kind,
                    path: path.to_owned(),
                    from: from.map(Path::to_owned),
                }
            } else {
                ManagerError::Read {
                    path: path.to_owned(),
                    source,
                }
            }
        })?;
        let key = path.canonicalize().unwrap_or_else(|_| path.to_owned());
        if let Some(at) = stack.iter().position(|p| *p == key) {
            let mut chain: Vec<String> = stack[at..]
                .iter()
                .map(|p| p.display().to_string())
                .collect();
            chain.push(key.display().to_string());
            return Err(ManagerError::Cycle {
                chain: chain.join(" → "),
            });
        }
        if constraint {
            out.constraint_files.push(path.to_owned());
        } else {
            out.requirement_files.push(path.to_owned());
        }
        if let Some(&id) = self.by_path.get(&key) {
            // Read before, from another branch (not a loop): pip reads it again, and so its
            // options apply again.
            self.replay(id, out);
            return Ok(id);
        }
        stack.push(key.clone());
        let text = decode(&bytes, env).map_err(|reason| ManagerError::Undecodable {
            path: path.to_owned(),
            reason,
        })?;
        let dir = path.parent().unwrap_or(Path::new("/")).to_owned();
        let mut lines = Vec::new();
        for (number, raw) in logical_lines(&text) {
            let expanded = expand_env(&raw, env);
            let syntax = |message: String| ManagerError::Syntax {
                path: path.to_owned(),
                line: number,
                message,
            };
            let (args, options) = break_args_options(&expanded);
            if !args.is_empty() {
                match classify_requirement(&args, cwd) {
                    ReqKind::Local(p) => out.local_paths.push(p),
                    ReqKind::Url(u) => out.urls.push(u),
                    ReqKind::Name(_) => {}
                }
                // pip reads a requirement line's options too (`--hash`); one it cannot split
                // fails pip, and so it fails here.
                let words = shlex_split(&options).ok_or_else(|| {
                    syntax(format!("unclosed quote in `{}`", super::redact(&options)))
                })?;
                let hashes = parse_options(&words)
                    .map_err(|e| match e {
                        ManagerError::MissingValue { option, .. } => {
                            syntax(format!("{option} needs a value"))
                        }
                        other => other,
                    })?
                    .into_iter()
                    .filter(|o| o.kind == OptKind::Hash)
                    .filter_map(|o| o.value)
                    .collect();
                let req = ReqLine {
                    number,
                    requirement: args,
                    editable: false,
                    hashes,
                };
                lines.push(Line::Verbatim { raw, req });
                continue;
            }
            let words = shlex_split(&options).ok_or_else(|| {
                syntax(format!("unclosed quote in `{}`", super::redact(&options)))
            })?;
            let opts = parse_options(&words).map_err(|e| match e {
                ManagerError::MissingValue { option, .. } => {
                    syntax(format!("{option} needs a value"))
                }
                other => other,
            })?;
            if let Some(edit) = opts.iter().find(|o| o.kind == OptKind::Editable) {
                let value = edit.value.clone().unwrap_or_default();
                match classify_editable(&value, cwd) {
                    ReqKind::Local(p) => out.local_paths.push(p),
                    ReqKind::Url(u) => out.urls.push(u),
                    ReqKind::Name(_) => {}
                }
                let req = ReqLine {
                    number,
                    requirement: value,
                    editable: true,
                    hashes: Vec::new(),
                };
                lines.push(Line::Verbatim { raw, req });
                continue;
            }
            let nested = opts
                .iter()
                .find(|o| o.kind == OptKind::Requirement)
                .map(|o| (false, o))
                .or_else(|| {
                    opts.iter()
                        .find(|o| o.kind == OptKind::Constraint)
                        .map(|o| (true, o))
                });
            if let Some((nested_constraint, opt)) = nested {
                let value = opt.value.clone().unwrap_or_default();
                let target = if let Some(local) = file_url_path(&value) {
                    self.include(&local, nested_constraint, path, cwd, env, out, stack)?
                } else if is_remote(&value) {
                    out.remote_files.push(value.clone());
                    Target::Remote(value)
                } else {
                    self.include(
                        &dir.join(&value),
                        nested_constraint,
                        path,
                        cwd,
                        env,
                        out,
                        stack,
                    )?
                };
                lines.push(Line::Nested {
                    constraint: nested_constraint,
                    target,
                });
                continue;
            }
            let opts = resolve_find_links(opts, &dir);
            apply(&opts, out);
            lines.push(Line::Options(opts));
        }
        stack.pop();
        let id = self.files.len();
        self.files.push(File {
            path: path.to_owned(),
            constraint,
            lines,
        });
        self.by_path.insert(key, id);
        Ok(id)
    }

    #[allow(clippy::too_many_arguments)]
    fn include(
        &mut self,
        target: &Path,
        constraint: bool,
        from: &Path,
        cwd: &Path,
        env: &dyn Fn(&str) -> Option<String>,
        out: &mut Collected,
        stack: &mut Vec<PathBuf>,
    ) -> Result<Target, ManagerError> {
        let target = absolute(cwd, target);
        let id = self.read_file(&target, constraint, Some(from), cwd, env, out, stack)?;
        Ok(Target::Local(id))
    }

    /// The requirement lines of every requirement file read (constraint files left out), file
    /// by file in reading order, each line once.
    pub fn requirement_lines(&self) -> Vec<RequirementLine> {
        let mut out = Vec::new();
        for file in self.files.iter().filter(|f| !f.constraint) {
            for line in &file.lines {
                if let Line::Verbatim { req, .. } = line {
                    out.push(RequirementLine {
                        file: file.path.clone(),
                        line: req.number,
                        requirement: req.requirement.clone(),
                        editable: req.editable,
                        hashes: req.hashes.clone(),
                    });
                }
            }
        }
        out
    }

    /// Gathers again what a file already read says (a second inclusion).
    fn replay(&self, id: usize, out: &mut Collected) {
        for line in &self.files[id].lines {
            match line {
                Line::Options(opts) => apply(opts, out),
                Line::Nested {
                    target: Target::Local(inner),
                    ..
                } if *inner != id => self.replay(*inner, out),
                _ => {}
            }
        }
    }

    /// Whether file `id` (or one it includes) names an index or a remote find-links, or
    /// holds a find-links relative to itself: then pip must read a sanitised copy.
    fn needs_copy(&self, id: usize, memo: &mut HashMap<usize, bool>) -> bool {
        if let Some(&known) = memo.get(&id) {
            return known;
        }
        memo.insert(id, false);
        let needs = self.files[id].lines.iter().any(|line| match line {
            Line::Verbatim { .. } => false,
            Line::Nested {
                target: Target::Local(inner),
                ..
            } => self.needs_copy(*inner, memo),
            Line::Nested { .. } => false,
            Line::Options(opts) => opts.iter().any(|o| {
                matches!(
                    o.kind,
                    OptKind::IndexUrl | OptKind::ExtraIndexUrl | OptKind::FindLinks
                )
            }),
        });
        memo.insert(id, needs);
        needs
    }

    /// The file pip should read instead of file `id`: the original when it needs no change,
    /// else a sanitised copy under `scratch` (written once), whose index options are gone,
    /// whose local find-links and nested files are absolute, and whose nested files are
    /// themselves sanitised copies where needed.
    pub fn sanitised(
        &self,
        id: usize,
        scratch: &Path,
        written: &mut HashMap<usize, PathBuf>,
    ) -> Result<PathBuf, ManagerError> {
        let mut memo = HashMap::new();
        self.sanitised_inner(id, scratch, written, &mut memo)
    }

    fn sanitised_inner(
        &self,
        id: usize,
        scratch: &Path,
        written: &mut HashMap<usize, PathBuf>,
        memo: &mut HashMap<usize, bool>,
    ) -> Result<PathBuf, ManagerError> {
        let file = &self.files[id];
        if !self.needs_copy(id, memo) {
            return Ok(file.path.clone());
        }
        if let Some(done) = written.get(&id) {
            return Ok(done.clone());
        }
        let name = file
            .path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "requirements.txt".to_owned());
        let copy = scratch.join(format!("requirements-{id}-{name}"));
        // Reserved before the nested files are written, so that a file included twice is
        // copied once.
        written.insert(id, copy.clone());
        let mut text = format!("# sanitised by cerebro from {}\n", file.path.display());
        for line in &file.lines {
            match line {
                Line::Verbatim { raw, .. } => {
                    text.push_str(raw);
                    text.push('\n');
                }
                Line::Nested { constraint, target } => {
                    let flag = if *constraint { "-c" } else { "-r" };
                    let target = match target {
                        Target::Local(inner) => self
                            .sanitised_inner(*inner, scratch, written, memo)?
                            .to_string_lossy()
                            .into_owned(),
                        Target::Remote(url) => url.clone(),
                    };
                    text.push_str(&format!("{flag} {}\n", shell_quote(&target)));
                }
                Line::Options(opts) => {
                    let kept: Vec<String> = opts
                        .iter()
                        .filter_map(|o| match o.kind {
                            OptKind::IndexUrl | OptKind::ExtraIndexUrl => None,
                            OptKind::FindLinks => {
                                let value = o.value.as_deref().unwrap_or_default();
                                (!is_remote(value))
                                    .then(|| format!("--find-links {}", shell_quote(value)))
                            }
                            _ => Some(
                                o.words
                                    .iter()
                                    .map(|w| shell_quote(w))
                                    .collect::<Vec<_>>()
                                    .join(" "),
                            ),
                        })
                        .collect();
                    if !kept.is_empty() {
                        text.push_str(&kept.join(" "));
                        text.push('\n');
                    }
                }
            }
        }
        std::fs::create_dir_all(scratch).map_err(|source| ManagerError::Write {
            path: scratch.to_owned(),
            source,
        })?;
        std::fs::write(&copy, text).map_err(|source| ManagerError::Write {
            path: copy.clone(),
            source,
        })?;
        Ok(copy)
    }
}

/// Records the index options of one option line, as pip's `handle_option_line` applies them
/// (only the first find-links of a line counts).
fn apply(opts: &[FileOpt], out: &mut Collected) {
    let mut find_links_seen = false;
    for o in opts {
        let value = o.value.clone().unwrap_or_default();
        match o.kind {
            OptKind::IndexUrl => out.index_options.push(FileIndexOption::IndexUrl(value)),
            OptKind::ExtraIndexUrl => out
                .index_options
                .push(FileIndexOption::ExtraIndexUrl(value)),
            OptKind::NoIndex => out.index_options.push(FileIndexOption::NoIndex),
            OptKind::TrustedHost => out.index_options.push(FileIndexOption::TrustedHost(value)),
            OptKind::FindLinks if !find_links_seen => {
                find_links_seen = true;
                if is_remote(&value) {
                    out.remote_find_links.push(value.clone());
                }
                out.find_links.push(value.clone());
                out.index_options.push(FileIndexOption::FindLinks(value));
            }
            _ => {}
        }
    }
}

/// pip takes a file's first find-links relative to the file when that path exists, else as
/// written (relative to the working folder); the later ones on the line are ignored, and so
/// dropped here.
fn resolve_find_links(opts: Vec<FileOpt>, dir: &Path) -> Vec<FileOpt> {
    let mut seen = false;
    opts.into_iter()
        .filter_map(|mut o| {
            if o.kind != OptKind::FindLinks {
                return Some(o);
            }
            if seen {
                return None;
            }
            seen = true;
            let value = o.value.clone().unwrap_or_default();
            if !is_url(&value) {
                let beside = dir.join(&value);
                if beside.exists() {
                    o.value = Some(
                        absolute(dir, Path::new(&value))
                            .to_string_lossy()
                            .into_owned(),
                    );
                }
            }
            Some(o)
        })
        .collect()
}

/// Parses the option words of one line with the options pip accepts in requirement files.
fn parse_options(words: &[String]) -> Result<Vec<FileOpt>, ManagerError> {
    let occurrences = super::pip::scan(words, REQ_FILE_OPTIONS, false)?;
    Ok(occurrences
        .into_iter()
        .map(|occ| FileOpt {
            kind: occ.kind,
            value: occ.value,
            words: words[occ.start..occ.end].to_vec(),
        })
        .collect())
}

/// The local path of a `file:` URL.
pub(crate) fn file_url_path(value: &str) -> Option<PathBuf> {
    let lower = value.get(..5)?.to_ascii_lowercase();
    if lower != "file:" {
        return None;
    }
    match reqwest::Url::parse(value) {
        Ok(url) => url.to_file_path().ok(),
        Err(_) => Some(PathBuf::from(&value[5..])),
    }
}

/// A requirement file's text, decoded as pip's `auto_decode` does: by its byte-order mark
/// (in pip's order, where the native UTF-16 mark shadows the UTF-32 one that starts with it),
/// else by a PEP 263 `coding` comment on one of the first two lines, else in the locale's
/// encoding. A text decoded any other way than pip's could hide an index option from the
/// guard, so where this cannot reproduce pip's reading exactly it says why instead.
pub(crate) fn decode(bytes: &[u8], env: &dyn Fn(&str) -> Option<String>) -> Result<String, String> {
    let native_le = cfg!(target_endian = "little");
    let boms: [(&[u8], Codec); 7] = [
        (b"\xef\xbb\xbf", Codec::Utf8),
        (
            if native_le { b"\xff\xfe" } else { b"\xfe\xff" },
            Codec::Utf16 {
                le: native_le,
                sniff: true,
            },
        ),
        (
            b"\xfe\xff",
            Codec::Utf16 {
                le: false,
                sniff: false,
            },
        ),
        (
            b"\xff\xfe",
            Codec::Utf16 {
                le: true,
                sniff: false,
            },
        ),
        (
            if native_le {
                b"\xff\xfe\x00\x00"
            } else {
                b"\x00\x00\xfe\xff"
            },
            Codec::Utf32 {
                le: native_le,
                sniff: true,
            },
        ),
        (
            b"\x00\x00\xfe\xff",
            Codec::Utf32 {
                le: false,
                sniff: false,
            },
        ),
        (
            b"\xff\xfe\x00\x00",
            Codec::Utf32 {
                le: true,
                sniff: false,
            },
        ),
    ];
    for (bom, codec) in boms {
        if let Some(rest) = bytes.strip_prefix(bom) {
            return codec.decode(rest);
        }
    }
    for line in bytes.split(|&b| b == b'\n').take(2) {
        if line.first() != Some(&b'#') {
            continue;
        }
        if let Some(name) = coding_cookie(line) {
            let codec = Codec::named(&name).ok_or_else(|| {
                format!(
                    "its `coding: {name}` comment names an encoding Cerebro does not decode \
                     (only UTF-8, Latin-1 and ASCII); save it as UTF-8"
                )
            })?;
            return codec.decode(bytes);
        }
    }
    if bytes.is_ascii() || locale_is_utf8(env) {
        Codec::Utf8.decode(bytes)
    } else {
        Err(
            "it is not ASCII and has neither a byte-order mark nor a `coding:` comment, and \
             pip would decode it in the locale's encoding, which is not UTF-8; save it as \
             UTF-8 with a `# coding: utf-8` first line"
                .to_owned(),
        )
    }
}

/// The encodings [`decode`] reproduces exactly.
#[derive(Debug, Clone, Copy)]
enum Codec {
    Utf8,
    Latin1,
    Ascii,
    /// `sniff`: Python's `utf-16` codec, which takes a second mark as the byte order.
    Utf16 {
        le: bool,
        sniff: bool,
    },
    Utf32 {
        le: bool,
        sniff: bool,
    },
}

impl Codec {
    /// The codec Python's `codecs.lookup` finds for `name`, among those implemented here
    /// (the name normalised as `encodings.normalize_encoding` does, then its aliases).
    fn named(name: &str) -> Option<Codec> {
        let mut norm = String::new();
        for c in name.chars() {
            if c.is_ascii_alphanumeric() || c == '.' {
                norm.push(c.to_ascii_lowercase());
            } else if !norm.is_empty() && !norm.ends_with('_') {
                norm.push('_');
            }
        }
        let norm = norm.trim_end_matches('_');
        Some(match norm {
            "utf_8" | "utf8" | "u8" | "utf" | "utf8_ucs2" | "utf8_ucs4" | "cp65001"
            | "utf_8_sig" => Codec::Utf8,
            "latin_1" | "latin1" | "latin" | "l1" | "iso8859_1" | "iso_8859_1" | "8859"
            | "cp819" | "iso_ir_100" | "csisolatin1" | "ibm819" => Codec::Latin1,
            "ascii" | "us_ascii" | "646" | "us" | "cp367" | "csascii" | "ibm367" | "iso646_us"
            | "iso_ir_6" => Codec::Ascii,
            _ => return None,
        })
    }

    /// `bytes` decoded strictly, as Python's codec of the same name (errors="strict").
    fn decode(self, bytes: &[u8]) -> Result<String, String> {
        let invalid = |what: &str| format!("it is not valid {what} (pip would fail to read it)");
        match self {
            Codec::Utf8 => String::from_utf8(bytes.to_vec()).map_err(|_| invalid("UTF-8")),
            Codec::Latin1 => Ok(bytes.iter().map(|&b| char::from(b)).collect()),
            Codec::Ascii => match std::str::from_utf8(bytes) {
                Ok(text) if text.is_ascii() => Ok(text.to_owned()),
                _ => Err(invalid("ASCII")),
            },
            Codec::Utf16 { mut le, sniff } => {
                let mut bytes = bytes;
                if sniff {
                    if let Some(rest) = bytes.strip_prefix(b"\xff\xfe") {
                        (le, bytes) = (true, rest);
                    } else if let Some(rest) = bytes.strip_prefix(b"\xfe\xff") {
                        (le, bytes) = (false, rest);
                    }
                }
                if !bytes.len().is_multiple_of(2) {
                    return Err(invalid("UTF-16"));
                }
                let units = bytes.chunks_exact(2).map(|u| {
                    let pair = [u[0], u[1]];
                    if le {
                        u16::from_le_bytes(pair)
                    } else {
                        u16::from_be_bytes(pair)
                    }
                });
                char::decode_utf16(units)
                    .collect::<Result<String, _>>()
                    .map_err(|_| invalid("UTF-16"))
            }
            Codec::Utf32 { mut le, sniff } => {
                let mut bytes = bytes;
                if sniff {
                    if let Some(rest) = bytes.strip_prefix(b"\xff\xfe\x00\x00") {
                        (le, bytes) = (true, rest);
                    } else if let Some(rest) = bytes.strip_prefix(b"\x00\x00\xfe\xff") {
                        (le, bytes) = (false, rest);
                    }
                }
                if !bytes.len().is_multiple_of(4) {
                    return Err(invalid("UTF-32"));
                }
                bytes
                    .chunks_exact(4)
                    .map(|u| {
                        let quad = [u[0], u[1], u[2], u[3]];
                        let value = if le {
                            u32::from_le_bytes(quad)
                        } else {
                            u32::from_be_bytes(quad)
                        };
                        char::from_u32(value)
                    })
                    .collect::<Option<String>>()
                    .ok_or_else(|| invalid("UTF-32"))
            }
        }
    }
}

/// The encoding named on a comment line, as pip's `coding[:=]\s*([-\w.]+)` (bytes pattern:
/// ASCII whitespace and word characters) finds it first.
fn coding_cookie(line: &[u8]) -> Option<String> {
    let mut from = 0;
    while let Some(at) = find(&line[from..], b"coding") {
        let mut i = from + at + b"coding".len();
        from += at + 1;
        if !matches!(line.get(i), Some(b':' | b'=')) {
            continue;
        }
        i += 1;
        while line
            .get(i)
            .is_some_and(|b| matches!(b, b' ' | b'\t' | b'\n' | b'\r' | b'\x0b' | b'\x0c'))
        {
            i += 1;
        }
        let name: Vec<u8> = line[i..]
            .iter()
            .copied()
            .take_while(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
            .collect();
        if !name.is_empty() {
            return Some(String::from_utf8_lossy(&name).into_owned());
        }
    }
    None
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Whether Python's `locale.getpreferredencoding(False)` is UTF-8 under `env`: in UTF-8 mode
/// (`PYTHONUTF8=1`, or the C/POSIX locale, which Python 3.7+ treats as UTF-8), or under a
/// locale whose codeset is UTF-8.
fn locale_is_utf8(env: &dyn Fn(&str) -> Option<String>) -> bool {
    if env("PYTHONUTF8").as_deref() == Some("1") {
        return true;
    }
    let locale = ["LC_ALL", "LC_CTYPE", "LANG"]
        .iter()
        .find_map(|k| env(k).filter(|v| !v.is_empty()));
    let Some(locale) = locale else {
        return true;
    };
    if matches!(locale.as_str(), "C" | "POSIX") {
        return true;
    }
    let codeset = locale
        .split_once('.')
        .map(|(_, c)| c.split('@').next().unwrap_or(c))
        .unwrap_or("");
    let codeset: String = codeset
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .collect::<String>()
        .to_ascii_lowercase();
    codeset == "utf8"
}

/// Python's `str.isspace()`, which pip's `\s` and `strip()` use: Unicode white space plus the
/// separators U+001C to U+001F, which Rust's `char::is_whitespace` leaves out.
fn py_isspace(c: char) -> bool {
    c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c)
}

/// Python's `str.splitlines()`: lines end at `\n`, `\r`, `\r\n`, `\v`, `\f`, U+001C to
/// U+001E, U+0085, U+2028 and U+2029, and a break at the very end adds no empty line.
fn py_splitlines(text: &str) -> Vec<&str> {
    let mut lines = Vec::new();
    let mut start = 0;
    let mut chars = text.char_indices().peekable();
    while let Some((at, c)) = chars.next() {
        let end = match c {
            '\r' => match chars.peek() {
                Some(&(next, '\n')) => {
                    chars.next();
                    next + 1
                }
                _ => at + 1,
            },
            '\n' | '\u{0b}' | '\u{0c}' | '\u{1c}' | '\u{1d}' | '\u{1e}' | '\u{85}' | '\u{2028}'
            | '\u{2029}' => at + c.len_utf8(),
            _ => continue,
        };
        lines.push(&text[start..at]);
        start = end;
    }
    if start < text.len() {
        lines.push(&text[start..]);
    }
    lines
}

/// The logical lines of a requirement file, numbered by their first physical line, with
/// continuations joined and comments removed, as pip's `join_lines` and `ignore_comments`.
fn logical_lines(text: &str) -> Vec<(usize, String)> {
    let is_comment_line = |line: &str| line.trim_start_matches(py_isspace).starts_with('#');
    let mut joined: Vec<(usize, String)> = Vec::new();
    let mut pending: Option<(usize, String)> = None;
    for (index, line) in py_splitlines(text).into_iter().enumerate() {
        let number = index + 1;
        if !line.ends_with('\\') || is_comment_line(line) {
            let line = if is_comment_line(line) {
                format!(" {line}")
            } else {
                line.to_owned()
            };
            match pending.take() {
                Some((first, mut acc)) => {
                    acc.push_str(&line);
                    joined.push((first, acc));
                }
                None => joined.push((number, line)),
            }
        } else {
            let part = line.trim_matches('\\');
            match &mut pending {
                Some((_, acc)) => acc.push_str(part),
                None => pending = Some((number, part.to_owned())),
            }
        }
    }
    if let Some(last) = pending {
        joined.push(last);
    }
    joined
        .into_iter()
        .filter_map(|(number, line)| {
            let line = strip_comment(&line).trim_matches(py_isspace).to_owned();
            (!line.is_empty()).then_some((number, line))
        })
        .collect()
}

/// `line` without its comment: from the first `#` that starts the line or follows
/// whitespace (with that whitespace), as pip's `(^|\s+)#.*$`.
fn strip_comment(line: &str) -> &str {
    let mut previous_is_space = true;
    for (at, c) in line.char_indices() {
        if c == '#' && previous_is_space {
            return line[..at].trim_end_matches(py_isspace);
        }
        previous_is_space = py_isspace(c);
    }
    line
}

/// Expands `${NAME}` (NAME of `A-Z`, `0-9`, `_`) from the environment; unset or empty
/// variables stay as written, as pip does.
fn expand_env(line: &str, env: &dyn Fn(&str) -> Option<String>) -> String {
    let mut out = String::with_capacity(line.len());
    let mut rest = line;
    while let Some(at) = rest.find("${") {
        out.push_str(&rest[..at]);
        let after = &rest[at + 2..];
        let name_len = after
            .bytes()
            .take_while(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || *b == b'_')
            .count();
        if name_len > 0 && after[name_len..].starts_with('}') {
            let name = &after[..name_len];
            match env(name).filter(|v| !v.is_empty()) {
                Some(value) => out.push_str(&value),
                None => out.push_str(&rest[at..at + 2 + name_len + 1]),
            }
            rest = &after[name_len + 1..];
        } else {
            out.push_str("${");
            rest = after;
        }
    }
    out.push_str(rest);
    out
}

/// Splits a line into its requirement part (the space-separated words before the first that
/// starts with `-`) and its options, as pip's `break_args_options`.
fn break_args_options(line: &str) -> (String, String) {
    let tokens: Vec<&str> = line.split(' ').collect();
    let first_option = tokens
        .iter()
        .position(|t| t.starts_with('-'))
        .unwrap_or(tokens.len());
    (
        tokens[..first_option].join(" "),
        tokens[first_option..].join(" "),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logical_lines_follow_pip() {
        let text = "# comment\nrequests>=2 \\\n  [socks]  # trailing\n\n-i https://x/simple\npkg @ https://h/p.whl#sha256=ab\n  # indented comment \\\nlast \\";
        let lines = logical_lines(text);
        assert_eq!(
            lines,
            vec![
                (2, "requests>=2   [socks]".to_owned()),
                (5, "-i https://x/simple".to_owned()),
                (6, "pkg @ https://h/p.whl#sha256=ab".to_owned()),
                (8, "last".to_owned()),
            ]
        );
    }

    #[test]
    fn lines_split_where_pythons_splitlines_splits() {
        let text = "a\rb\r\nc\x0bd\x0ce\x1cf\x1dg\x1eh\u{85}i\u{2028}j\u{2029}k\x1fl\n";
        assert_eq!(
            py_splitlines(text),
            vec!["a", "b", "c", "d", "e", "f", "g", "h", "i", "j", "k\x1fl"]
        );
        assert_eq!(py_splitlines(""), Vec::<&str>::new());
        assert_eq!(py_splitlines("x\n\n"), vec!["x", ""]);
        let lines = logical_lines("# pinned\r--index-url http://evil/simple/\x0cfoo\x1f# c");
        assert_eq!(
            lines,
            vec![
                (2, "--index-url http://evil/simple/".to_owned()),
                (3, "foo".to_owned()),
            ]
        );
    }

    #[test]
    fn decoding_follows_pips_auto_decode() {
        let utf8 = |_: &str| Some("C.UTF-8".to_owned());
        let latin = |k: &str| (k == "LANG").then(|| "de_DE.ISO-8859-1".to_owned());
        let utf16le: Vec<u8> = [0xff, 0xfe]
            .into_iter()
            .chain("-i x\n".encode_utf16().flat_map(u16::to_le_bytes))
            .collect();
        assert_eq!(decode(&utf16le, &utf8).unwrap(), "-i x\n");
        let utf16be: Vec<u8> = [0xfe, 0xff]
            .into_iter()
            .chain("-i x\n".encode_utf16().flat_map(u16::to_be_bytes))
            .collect();
        assert_eq!(decode(&utf16be, &utf8).unwrap(), "-i x\n");
        // pip tries the UTF-16 mark first: a UTF-32-LE file is read as UTF-16.
        let utf32le: Vec<u8> = [0xff, 0xfe, 0, 0]
            .into_iter()
            .chain("-i".chars().flat_map(|c| (c as u32).to_le_bytes()))
            .collect();
        assert_eq!(decode(&utf32le, &utf8).unwrap(), "\0-\0i\0");
        let utf32be: Vec<u8> = [0, 0, 0xfe, 0xff]
            .into_iter()
            .chain("-i".chars().flat_map(|c| (c as u32).to_be_bytes()))
            .collect();
        assert_eq!(decode(&utf32be, &utf8).unwrap(), "-i");
        assert_eq!(decode(b"\xef\xbb\xbf-i x", &utf8).unwrap(), "-i x");
        assert_eq!(
            decode(b"# -*- coding: latin-1 -*-\n-i x\x85--pre", &utf8).unwrap(),
            "# -*- coding: latin-1 -*-\n-i x\u{85}--pre"
        );
        assert_eq!(
            decode(b"foo\n#coding=utf8\n\xc3\xa9", &latin).unwrap(),
            "foo\n#coding=utf8\né"
        );
        let utf7 = decode(b"# coding: utf-7\n+AC0-i x\n", &utf8).unwrap_err();
        assert!(utf7.contains("utf-7"), "{utf7}");
        // A cookie on the third line, or one not at the start of its line, does not count.
        assert!(decode(b"a\nb\n# coding: latin-1\n\xe9", &utf8).is_err());
        assert!(decode(b" # coding: latin-1\n\xe9", &utf8).is_err());
        assert!(decode(b"\xe9", &latin).unwrap_err().contains("locale"));
        assert_eq!(decode(b"plain", &latin).unwrap(), "plain");
        assert!(
            decode(b"\xff\xfe\x00\xd8", &utf8).is_err(),
            "a lone surrogate"
        );
        assert!(decode(b"\xff\xfe-", &utf8).is_err(), "an odd length");
    }

    #[test]
    fn env_expansion_is_pips() {
        let env = |name: &str| match name {
            "TOKEN" => Some("s3cret".to_owned()),
            "EMPTY" => Some(String::new()),
            _ => None,
        };
        assert_eq!(
            expand_env("https://${TOKEN}@h/${EMPTY}/${UNSET}/${lower}/$TOKEN", &env),
            "https://s3cret@h/${EMPTY}/${UNSET}/${lower}/$TOKEN"
        );
    }

    #[test]
    fn args_and_options_split_at_the_first_dash() {
        assert_eq!(
            break_args_options("foo==1 --hash=sha256:ab"),
            ("foo==1".to_owned(), "--hash=sha256:ab".to_owned())
        );
        assert_eq!(
            break_args_options("-e ./x"),
            (String::new(), "-e ./x".to_owned())
        );
    }
}
