//! uv's command lines and configuration, as far as the guard needs them: which commands fetch
//! package code, which index they read it from, and everything that could send uv somewhere
//! else. What Cerebro cannot read exactly as uv does (extra indexes, find-links, named
//! indexes, direct URLs, index settings in more than one place) is refused: the guard would
//! judge something other than what uv installs.
//!
//! The guard reads one index, the default one, from (highest first) the command line
//! (`--index-url`/`-i` or `--default-index`), the environment (`UV_INDEX_URL` or
//! `UV_DEFAULT_INDEX`), or `index-url` in a uv config file; else uv's own default,
//! `https://pypi.org/simple`.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use reqwest::Url;

use super::{absolute, ManagerError};

/// uv's default index, as uv writes it in `uv.lock`.
pub const DEFAULT_INDEX: &str = "https://pypi.org/simple";

/// The uv commands the guard stands in front of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UvKind {
    /// `uv pip install`.
    PipInstall,
    /// `uv pip sync`.
    PipSync,
    /// `uv add`: changes `pyproject.toml`, locks, syncs.
    Add,
    /// `uv remove`: changes `pyproject.toml`, locks, syncs.
    Remove,
    /// `uv lock`.
    Lock,
    /// `uv sync`.
    Sync,
    /// `uv tool run` (and `uvx`).
    ToolRun,
    /// `uv tool install`.
    ToolInstall,
    /// `uv run`: syncs the project (and a `--with` environment), then runs a command.
    Run,
}

impl UvKind {
    /// Whether the command reads or writes the project (`pyproject.toml`, `uv.lock`).
    pub fn is_project(self) -> bool {
        matches!(
            self,
            UvKind::Add | UvKind::Remove | UvKind::Lock | UvKind::Sync | UvKind::Run
        )
    }

    /// Whether the command goes on to run the user's own program (with the guard index still
    /// serving): `uv run`, `uv tool run`.
    pub fn runs_a_program(self) -> bool {
        matches!(self, UvKind::Run | UvKind::ToolRun)
    }
}

/// What a uv command line is.
#[derive(Debug)]
pub enum UvCommand {
    /// Fetches package code: guard it.
    Guarded(Box<UvInstall>),
    /// Anything else: run the real uv as is.
    Other,
}

/// Where the default index came from; the guard's index goes the same way, so that uv
/// writes it where it would have written the user's (`uv add` records an index given as
/// `--default-index` or `UV_DEFAULT_INDEX` in `pyproject.toml`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IndexFrom {
    /// `--index-url`/`-i` on the command line.
    CliIndexUrl,
    /// `--default-index` on the command line.
    CliDefaultIndex,
    EnvIndexUrl,
    EnvDefaultIndex,
    /// The one `[[index]]` of a config file (`[[tool.uv.index]]` in `pyproject.toml`), with
    /// `default = true`: it outranks `--index-url`/`UV_INDEX_URL`, so the guard's index
    /// goes as `UV_DEFAULT_INDEX`.
    ConfigDefaultIndex,
    /// `index-url` in a config file, or uv's default.
    ConfigOrDefault,
}

/// A guarded uv command, read.
#[derive(Debug, Clone)]
pub struct UvInstall {
    pub kind: UvKind,
    /// The user's arguments.
    pub args: Vec<OsString>,
    /// Indexes of the arguments holding an index URL value (to replace with the guard's).
    index_values: Vec<usize>,
    /// `--index-url` values to split off `-iURL`/`--index-url=URL` forms: (argument, prefix).
    index_prefixes: Vec<(usize, String)>,
    /// The default index on the command line, the last one given.
    cli_index: Option<(IndexFrom, String)>,
    /// `--directory`.
    pub directory: Option<PathBuf>,
    /// `--project`.
    pub project: Option<PathBuf>,
    /// `--config-file`.
    pub config_file: Option<PathBuf>,
    pub no_config: bool,
    /// `-r`/`--requirement`, `-c`/`--constraint(s)`, `--override(s)`,
    /// `--build-constraint(s)`, `--with-requirements` files.
    pub requirement_files: Vec<PathBuf>,
    /// Local paths given as packages (archives or project folders): judged from disk.
    pub local_paths: Vec<PathBuf>,
}

/// The index the guard stands in front of, and how to hand the guard's to uv.
#[derive(Debug, Clone)]
pub struct UvUpstream {
    /// As the user wrote it.
    pub raw: String,
    /// As uv writes it in `uv.lock` (parsed and serialised).
    pub url: Url,
    pub from: IndexFrom,
}

/// Long options that take a value (a following word, or `=value`), across uv's commands.
const VALUE_OPTIONS: &[&str] = &[
    "--cache-dir",
    "--directory",
    "--project",
    "--config-file",
    "--color",
    "--python-preference",
    "--allow-insecure-host",
    "--trusted-host",
    "--index",
    "--default-index",
    "--index-url",
    "--extra-index-url",
    "--find-links",
    "--index-strategy",
    "--keyring-provider",
    "--resolution",
    "--prerelease",
    "--fork-strategy",
    "--config-setting",
    "--config-settings",
    "--config-settings-package",
    "--no-build-isolation-package",
    "--exclude-newer",
    "--exclude-newer-package",
    "--link-mode",
    "--no-build-package",
    "--no-binary-package",
    "--only-binary",
    "--no-binary",
    "--upgrade-package",
    "--reinstall-package",
    "--refresh-package",
    "--python",
    "--python-platform",
    "--python-version",
    "--target",
    "--prefix",
    "--requirement",
    "--requirements",
    "--constraint",
    "--constraints",
    "--override",
    "--overrides",
    "--build-constraint",
    "--build-constraints",
    "--extra",
    "--group",
    "--no-group",
    "--only-group",
    "--optional",
    "--package",
    "--script",
    "--with",
    "--with-editable",
    "--with-requirements",
    "--from",
    "--env-file",
    "--editable",
    "--rev",
    "--tag",
    "--branch",
    "--bounds",
    "--marker",
    "--output-file",
    "--format",
    "--torch-backend",
    "--no-install-package",
    "--upgrade-group",
    "--excludes",
    "--exclude",
    "--dependency-metadata",
    "--install-dir",
];

/// Short options that take a value (joined or the next word).
const VALUE_SHORTS: &[char] = &['i', 'f', 'r', 'c', 'b', 'e', 'o', 'p', 'w', 'C', 'P', 'm'];

/// Options that would make uv read packages from somewhere the guard does not front.
fn refused_option(name: &str) -> Option<&'static str> {
    Some(match name {
        "--extra-index-url" => "cannot guard --extra-index-url yet: uv reads the indexes one by one (first-index), which the guard does not model; use one index",
        "--index" => "cannot guard --index yet (named and extra indexes): give the index with --default-index or UV_DEFAULT_INDEX",
        "--find-links" | "-f" => "cannot guard --find-links: uv would read packages from beside the index",
        "--no-index" => "cannot guard --no-index installs (from local folders): scan them with `cerebro scan`, then run uv with CEREBRO_POLICY=off",
        "--torch-backend" => "cannot guard --torch-backend: uv adds the PyTorch indexes of its own",
        "--script" => "cannot guard --script yet (inline script metadata and its own lockfile)",
        "--with-editable" => "cannot guard --with-editable yet",
        "--dependency-metadata" => "cannot guard --dependency-metadata",
        _ => return None,
    })
}

/// Reads a uv command line (`uv` itself left out; `uvx ARGS` arrives as `tool run ARGS`).
pub fn parse(args: &[OsString], cwd: &Path) -> Result<UvCommand, ManagerError> {
    let words: Vec<String> = args
        .iter()
        .map(|a| {
            a.to_str()
                .map(str::to_owned)
                .ok_or_else(|| ManagerError::Argument {
                    manager: "uv",
                    reason: format!("the argument {a:?} is not UTF-8"),
                })
        })
        .collect::<Result<_, _>>()?;
    let mut install = UvInstall {
        kind: UvKind::Lock,
        args: args.to_vec(),
        index_values: Vec::new(),
        index_prefixes: Vec::new(),
        cli_index: None,
        directory: None,
        project: None,
        config_file: None,
        no_config: false,
        requirement_files: Vec::new(),
        local_paths: Vec::new(),
    };
    let mut command: Vec<&str> = Vec::new();
    let mut kind: Option<UvKind> = None;
    let mut positionals: Vec<&str> = Vec::new();
    let mut i = 0;
    while i < words.len() {
        let word = words[i].as_str();
        if word == "--" {
            if kind.is_some_and(UvKind::runs_a_program) {
                break;
            }
            positionals.extend(words[i + 1..].iter().map(String::as_str));
            break;
        }
        if let Some(long) = word.strip_prefix("--") {
            let (name, inline) = match long.split_once('=') {
                Some((n, v)) => (format!("--{n}"), Some(v.to_owned())),
                None => (word.to_owned(), None),
            };
            if name == "--help" || name == "--version" {
                return Ok(UvCommand::Other);
            }
            if let Some(why) = refused_option(&name) {
                return Err(refused(why));
            }
            if name == "--no-config" {
                install.no_config = true;
            }
            if VALUE_OPTIONS.contains(&name.as_str()) {
                let (value, at) = match inline {
                    Some(v) => (v, None),
                    None => {
                        let v = words.get(i + 1).ok_or_else(|| ManagerError::MissingValue {
                            manager: "uv",
                            option: name.clone(),
                        })?;
                        i += 1;
                        (v.clone(), Some(i))
                    }
                };
                option_value(&mut install, &name, &value, at, i, cwd);
            }
            i += 1;
            continue;
        }
        if word.len() > 1 && word.starts_with('-') {
            // A cluster of short flags; the first that takes a value takes the rest.
            let chars: Vec<char> = word[1..].chars().collect();
            for (k, c) in chars.iter().enumerate() {
                if *c == 'h' || *c == 'V' {
                    return Ok(UvCommand::Other);
                }
                if *c == 'f' {
                    return Err(refused(refused_option("-f").unwrap_or_default()));
                }
                if VALUE_SHORTS.contains(c) {
                    let rest: String = chars[k + 1..].iter().collect();
                    let name = long_of(*c);
                    if rest.is_empty() {
                        let v = words.get(i + 1).ok_or_else(|| ManagerError::MissingValue {
                            manager: "uv",
                            option: format!("-{c}"),
                        })?;
                        i += 1;
                        let v = v.clone();
                        option_value(&mut install, name, &v, Some(i), i, cwd);
                    } else {
                        if *c == 'i' {
                            install
                                .index_prefixes
                                .push((i, format!("-{}", &word[1..=k])));
                        }
                        option_value(&mut install, name, &rest, None, i, cwd);
                    }
                    break;
                }
            }
            i += 1;
            continue;
        }
        // A positional word.
        if kind.is_none() {
            command.push(word);
            kind = match command.as_slice() {
                ["pip"] | ["tool"] => None,
                ["pip", "install"] => Some(UvKind::PipInstall),
                ["pip", "sync"] => Some(UvKind::PipSync),
                ["add"] => Some(UvKind::Add),
                ["remove"] => Some(UvKind::Remove),
                ["lock"] => Some(UvKind::Lock),
                ["sync"] => Some(UvKind::Sync),
                ["tool", "run"] => Some(UvKind::ToolRun),
                ["tool", "install"] => Some(UvKind::ToolInstall),
                ["run"] => Some(UvKind::Run),
                _ => return Ok(UvCommand::Other),
            };
        } else if kind == Some(UvKind::ToolRun) {
            // The tool's name: what follows is the tool's own command line.
            positionals.push(word);
            break;
        } else if kind == Some(UvKind::Run) {
            // The command: what follows is its own. A script with a lockfile of its own
            // (`uv lock --script`) would be locked against the guard.
            let script = absolute(&install.start_dir(cwd), Path::new(word));
            let lock = PathBuf::from(format!("{}.lock", script.display()));
            if word.ends_with(".py") && lock.is_file() {
                return Err(refused(&format!(
                    "cannot guard `uv run` of a script with a lockfile of its own ({}) yet",
                    lock.display()
                )));
            }
            break;
        } else {
            positionals.push(word);
        }
        i += 1;
    }
    let Some(kind) = kind else {
        return Ok(UvCommand::Other);
    };
    install.kind = kind;
    if matches!(
        kind,
        UvKind::PipInstall | UvKind::Add | UvKind::ToolRun | UvKind::ToolInstall
    ) {
        for p in positionals {
            package_word(&mut install, p, cwd)?;
        }
    }
    Ok(UvCommand::Guarded(Box::new(install)))
}

fn refused(why: &str) -> ManagerError {
    ManagerError::Argument {
        manager: "uv",
        reason: why.to_owned(),
    }
}

fn long_of(c: char) -> &'static str {
    match c {
        'i' => "--index-url",
        'r' => "--requirement",
        'c' => "--constraint",
        'b' => "--build-constraint",
        'e' => "--editable",
        'p' => "--python",
        'w' => "--with",
        _ => "",
    }
}

/// Records what an option's value means to the guard. `at`: the argument holding the value
/// alone (a separate word), for replacing it.
fn option_value(
    install: &mut UvInstall,
    name: &str,
    value: &str,
    at: Option<usize>,
    word: usize,
    cwd: &Path,
) {
    match name {
        "--index-url" | "--default-index" => {
            let from = if name == "--index-url" {
                IndexFrom::CliIndexUrl
            } else {
                IndexFrom::CliDefaultIndex
            };
            install.cli_index = Some((from, value.to_owned()));
            match at {
                Some(at) => install.index_values.push(at),
                None => {
                    if !install.index_prefixes.iter().any(|(w, _)| *w == word) {
                        install.index_prefixes.push((word, format!("{name}=")));
                    }
                }
            }
        }
        "--directory" => install.directory = Some(absolute(cwd, Path::new(value))),
        "--project" => install.project = Some(PathBuf::from(value)),
        "--config-file" => install.config_file = Some(absolute(cwd, Path::new(value))),
        "--requirement"
        | "--requirements"
        | "--constraint"
        | "--constraints"
        | "--override"
        | "--overrides"
        | "--build-constraint"
        | "--build-constraints"
        | "--with-requirements" => install
            .requirement_files
            .push(absolute(cwd, Path::new(value))),
        "--with" | "--from" | "--editable" => {
            // Packages too: read like the positional ones (a URL is refused at the end).
            install.local_paths.extend(local_path(value, cwd));
            if is_url_requirement(value) {
                install
                    .local_paths
                    .push(PathBuf::from(format!("url:{value}")));
            }
        }
        _ => {}
    }
}

fn is_url_requirement(word: &str) -> bool {
    word.contains("://") || word.starts_with("git+") || word.contains(" @ ") || word == "@"
}

fn local_path(word: &str, cwd: &Path) -> Option<PathBuf> {
    let lower = word.to_ascii_lowercase();
    let archive = [".whl", ".tar.gz", ".zip", ".tar.bz2", ".tgz"]
        .iter()
        .any(|e| lower.ends_with(e));
    let pathish = word.starts_with('.') || word.starts_with('/') || word.contains('/');
    (pathish || archive || word == "~").then(|| absolute(cwd, Path::new(word)))
}

fn package_word(install: &mut UvInstall, word: &str, cwd: &Path) -> Result<(), ManagerError> {
    if is_url_requirement(word) {
        return Err(refused(&format!(
            "cannot guard the direct URL requirement {word}: download the file and pass its \
             path, so that it is scanned first"
        )));
    }
    install.local_paths.extend(local_path(word, cwd));
    Ok(())
}

impl UvInstall {
    /// The folder uv starts from: `--project`, else `--directory`, else `cwd`.
    pub fn start_dir(&self, cwd: &Path) -> PathBuf {
        let base = self.directory.clone().unwrap_or_else(|| cwd.to_owned());
        match &self.project {
            Some(p) => absolute(&base, p),
            None => base,
        }
    }

    /// Local paths named as packages; an entry `url:…` (from `--with`/`--from`) is refused.
    pub fn local_paths(&self) -> Result<Vec<PathBuf>, ManagerError> {
        for p in &self.local_paths {
            if let Some(url) = p.to_str().and_then(|s| s.strip_prefix("url:")) {
                return Err(refused(&format!(
                    "cannot guard the direct URL requirement {url}: download the file and \
                     pass its path, so that it is scanned first"
                )));
            }
        }
        Ok(self.local_paths.clone())
    }

    /// The arguments with every index URL on the command line replaced by `guard`.
    pub fn guarded_args(&self, guard: &str) -> Vec<OsString> {
        let mut args = self.args.clone();
        for &at in &self.index_values {
            args[at] = OsString::from(guard);
        }
        for (at, prefix) in &self.index_prefixes {
            args[*at] = OsString::from(format!("{prefix}{guard}"));
        }
        args
    }
}

/// Works out the default index uv would read, refusing what the guard does not model.
/// `env` looks variables up; `config_files` are the uv config files uv would read
/// ([`config_files`]).
pub fn upstream(
    install: &UvInstall,
    env: &dyn Fn(&str) -> Option<String>,
    config_files: &[PathBuf],
) -> Result<UvUpstream, ManagerError> {
    let set = |k: &str| env(k).filter(|v| !v.trim().is_empty());
    for (var, why) in [
        (
            "UV_EXTRA_INDEX_URL",
            "cannot guard UV_EXTRA_INDEX_URL yet: use one index",
        ),
        (
            "UV_INDEX",
            "cannot guard UV_INDEX yet (named and extra indexes): use UV_DEFAULT_INDEX",
        ),
        (
            "UV_FIND_LINKS",
            "cannot guard UV_FIND_LINKS: uv would read packages from beside the index",
        ),
        (
            "UV_NO_INDEX",
            "cannot guard UV_NO_INDEX installs (from local folders)",
        ),
        (
            "UV_TORCH_BACKEND",
            "cannot guard UV_TORCH_BACKEND: uv adds the PyTorch indexes of its own",
        ),
    ] {
        if set(var).is_some() {
            return Err(refused(why));
        }
    }
    let env_url = set("UV_INDEX_URL");
    let env_default = set("UV_DEFAULT_INDEX");
    let cli_kind = install.cli_index.as_ref().map(|(f, _)| *f);
    // uv has two settings for the default index; which wins when both are set is not
    // something the guard models.
    let kinds = [
        cli_kind == Some(IndexFrom::CliIndexUrl) || env_url.is_some(),
        cli_kind == Some(IndexFrom::CliDefaultIndex) || env_default.is_some(),
    ];
    if kinds[0] && kinds[1] {
        return Err(refused(
            "both --index-url/UV_INDEX_URL and --default-index/UV_DEFAULT_INDEX are set: \
             keep one",
        ));
    }
    let mut config_index: Option<(String, bool)> = None;
    for file in config_files {
        if let Some(found) = config_index_url(file)? {
            match &config_index {
                Some(first) if *first != found => {
                    return Err(refused(&format!(
                        "the index is set in more than one uv config file ({} and others): \
                         keep one",
                        file.display()
                    )))
                }
                _ => config_index = Some(found),
            }
        }
    }
    if kinds[0] && config_index.as_ref().is_some_and(|(_, default)| *default) {
        return Err(refused(
            "--index-url/UV_INDEX_URL is set, and a config file names a default [[index]], \
             which uv prefers: use --default-index/UV_DEFAULT_INDEX, or keep one",
        ));
    }
    let (raw, from) = if let Some((from, v)) = &install.cli_index {
        (v.clone(), *from)
    } else if let Some(v) = env_url {
        (v, IndexFrom::EnvIndexUrl)
    } else if let Some(v) = env_default {
        (v, IndexFrom::EnvDefaultIndex)
    } else if let Some((v, default)) = config_index {
        let from = if default {
            IndexFrom::ConfigDefaultIndex
        } else {
            IndexFrom::ConfigOrDefault
        };
        (v, from)
    } else {
        (DEFAULT_INDEX.to_owned(), IndexFrom::ConfigOrDefault)
    };
    let raw = raw.trim().to_owned();
    let url = Url::parse(&raw).map_err(|e| ManagerError::BadUrl {
        what: "uv's index".into(),
        value: raw.clone(),
        reason: e.to_string(),
    })?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(refused(&format!(
            "cannot guard the index {raw}: only http(s) indexes are fronted"
        )));
    }
    Ok(UvUpstream { raw, url, from })
}

/// The uv config files uv reads for a command started in `start`: `--config-file` (or
/// `UV_CONFIG_FILE`), every `uv.toml` and `pyproject.toml` from `start` up to the root
/// (more than uv itself reads, which can only refuse more), the user's and the system's
/// `uv.toml`. None with `--no-config`/`UV_NO_CONFIG`.
pub fn config_files(
    install: &UvInstall,
    start: &Path,
    env: &dyn Fn(&str) -> Option<String>,
) -> Vec<PathBuf> {
    let set = |k: &str| env(k).filter(|v| !v.is_empty());
    if install.no_config || set("UV_NO_CONFIG").is_some_and(|v| v != "0" && v != "false") {
        return Vec::new();
    }
    let mut out = Vec::new();
    if let Some(f) = install
        .config_file
        .clone()
        .or_else(|| set("UV_CONFIG_FILE").map(PathBuf::from))
    {
        out.push(f);
    }
    for dir in start.ancestors() {
        for name in ["uv.toml", "pyproject.toml"] {
            let f = dir.join(name);
            if f.is_file() {
                out.push(f);
            }
        }
    }
    let config_home = set("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .or_else(|| set("HOME").map(|h| Path::new(&h).join(".config")));
    if let Some(home) = config_home {
        out.push(home.join("uv/uv.toml"));
    }
    let system = set("XDG_CONFIG_DIRS").unwrap_or_else(|| "/etc/xdg".to_owned());
    for dir in system.split(':').filter(|d| !d.is_empty()) {
        out.push(Path::new(dir).join("uv/uv.toml"));
    }
    out.push(PathBuf::from("/etc/uv/uv.toml"));
    out.retain(|f| f.is_file());
    out
}

/// The index a uv config file sets (`uv.toml` at the top or under `[pip]`; a
/// `pyproject.toml` under `[tool.uv]`): `index-url` (`false`), or one `[[index]]` with only
/// `url` and `default = true` (`true`, as `uv add --default-index` writes it); every other
/// way of naming where packages come from is refused.
fn config_index_url(file: &Path) -> Result<Option<(String, bool)>, ManagerError> {
    let text = std::fs::read_to_string(file).map_err(|source| ManagerError::Read {
        path: file.to_owned(),
        source,
    })?;
    let doc: toml::Table = toml::from_str(&text).map_err(|e| ManagerError::Syntax {
        path: file.to_owned(),
        line: 0,
        message: format!("not TOML uv can read: {}", e.message()),
    })?;
    let pyproject = file.file_name().is_some_and(|n| n == "pyproject.toml");
    let uv = if pyproject {
        match doc
            .get("tool")
            .and_then(|t| t.get("uv"))
            .and_then(toml::Value::as_table)
        {
            Some(t) => t.clone(),
            None => return Ok(None),
        }
    } else {
        doc
    };
    let cannot = |key: &str| {
        Err(refused(&format!(
            "cannot guard `{key}` in {} yet: the guard fronts one default index (index-url)",
            file.display()
        )))
    };
    let mut found = None;
    let mut default_index = None;
    if let Some(index) = uv.get("index") {
        let one = index
            .as_array()
            .filter(|a| a.len() == 1)
            .and_then(|a| a[0].as_table())
            .filter(|t| {
                t.keys().all(|k| k == "url" || k == "default")
                    && t.get("default").and_then(toml::Value::as_bool) == Some(true)
            })
            .and_then(|t| t.get("url"))
            .and_then(toml::Value::as_str);
        match one {
            Some(url) => default_index = Some(url.to_owned()),
            None => return cannot("index"),
        }
    }
    let pip = uv.get("pip").and_then(toml::Value::as_table);
    if pip.is_some_and(|p| p.contains_key("index")) {
        return cannot("index");
    }
    let sections = [Some(&uv), pip];
    for table in sections.into_iter().flatten() {
        for key in [
            "extra-index-url",
            "find-links",
            "no-index",
            "torch-backend",
            "dependency-metadata",
        ] {
            if table.contains_key(key) {
                return cannot(key);
            }
        }
        if let Some(v) = table.get("index-url") {
            let Some(v) = v.as_str() else {
                return cannot("index-url");
            };
            if found.as_deref().is_some_and(|f: &str| f != v) {
                return cannot("index-url");
            }
            found = Some(v.to_owned());
        }
    }
    if let Some(sources) = uv.get("sources").and_then(toml::Value::as_table) {
        for (name, source) in sources {
            let entries: Vec<&toml::Value> = match source {
                toml::Value::Array(a) => a.iter().collect(),
                other => vec![other],
            };
            for e in entries {
                if ["url", "git", "index"].iter().any(|k| e.get(k).is_some()) {
                    return Err(refused(&format!(
                        "cannot guard the source of {name} in {}: only the default index and \
                         local paths are fronted",
                        file.display()
                    )));
                }
            }
        }
    }
    match (found, default_index) {
        (Some(_), Some(_)) => cannot("index-url"),
        (Some(url), None) => Ok(Some((url, false))),
        (None, Some(url)) => Ok(Some((url, true))),
        (None, None) => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn os(args: &[&str]) -> Vec<OsString> {
        args.iter().map(OsString::from).collect()
    }

    fn guarded(args: &[&str]) -> UvInstall {
        match parse(&os(args), Path::new("/w")).unwrap() {
            UvCommand::Guarded(i) => *i,
            UvCommand::Other => panic!("{args:?} not guarded"),
        }
    }

    #[test]
    fn installs_are_told_from_other_commands() {
        assert_eq!(guarded(&["pip", "install", "x"]).kind, UvKind::PipInstall);
        assert_eq!(guarded(&["-q", "add", "x"]).kind, UvKind::Add);
        assert_eq!(
            guarded(&["--directory", "add", "sync"]).kind,
            UvKind::Sync,
            "--directory takes a value"
        );
        assert_eq!(guarded(&["tool", "run", "cowsay"]).kind, UvKind::ToolRun);
        let run = guarded(&["run", "--with", "rich", "python", "-i", "x"]);
        assert_eq!(run.kind, UvKind::Run);
        assert!(run.cli_index.is_none(), "the command's own -i is not uv's");
        for other in [
            &["pip", "list"][..],
            &["--version"],
            &["add", "--help"],
            &["venv"],
        ] {
            assert!(
                matches!(
                    parse(&os(other), Path::new("/w")).unwrap(),
                    UvCommand::Other
                ),
                "{other:?}"
            );
        }
    }

    #[test]
    fn index_options_are_found_in_every_spelling() {
        for (args, value) in [
            (
                &["pip", "install", "-i", "https://a/simple", "x"][..],
                "https://a/simple",
            ),
            (
                &["pip", "install", "-ihttps://a/simple", "x"],
                "https://a/simple",
            ),
            (
                &["pip", "install", "-qi", "https://a/simple", "x"],
                "https://a/simple",
            ),
            (
                &["pip", "install", "--index-url=https://a/simple", "x"],
                "https://a/simple",
            ),
            (
                &["add", "--default-index", "https://a/simple", "x"],
                "https://a/simple",
            ),
        ] {
            let i = guarded(args);
            assert_eq!(i.cli_index.as_ref().unwrap().1, value, "{args:?}");
            let g = i.guarded_args("http://127.0.0.1:1/simple");
            let joined = g
                .iter()
                .map(|a| a.to_string_lossy().into_owned())
                .collect::<Vec<_>>()
                .join(" ");
            assert!(!joined.contains("https://a"), "{joined}");
            assert!(joined.contains("http://127.0.0.1:1/simple"), "{joined}");
        }
    }

    #[test]
    fn what_the_guard_does_not_model_is_refused() {
        for args in [
            &[
                "pip",
                "install",
                "--extra-index-url",
                "https://b/simple",
                "x",
            ][..],
            &["pip", "install", "-f", "./wheels", "x"],
            &["pip", "install", "-qf", "./wheels", "x"],
            &["add", "--index", "b=https://b/simple", "x"],
            &["pip", "install", "git+https://github.com/a/b"],
            &["add", "x @ https://a/x.whl"],
            &["pip", "install", "--no-index", "x"],
        ] {
            assert!(parse(&os(args), Path::new("/w")).is_err(), "{args:?}");
        }
        // The tool's own arguments are the tool's.
        assert!(parse(
            &os(&["tool", "run", "x", "--find-links", "y"]),
            Path::new("/w")
        )
        .is_ok());
    }

    #[test]
    fn the_default_index_and_its_precedence() {
        let none = |_: &str| None;
        let i = guarded(&["pip", "install", "x"]);
        let u = upstream(&i, &none, &[]).unwrap();
        assert_eq!(u.url.as_str(), DEFAULT_INDEX);
        let env = |k: &str| (k == "UV_DEFAULT_INDEX").then(|| "https://e/simple/".to_owned());
        let u = upstream(&i, &env, &[]).unwrap();
        assert_eq!(
            (u.raw.as_str(), u.from),
            ("https://e/simple/", IndexFrom::EnvDefaultIndex)
        );
        let i = guarded(&["pip", "install", "-i", "https://c/simple", "x"]);
        assert!(
            upstream(&i, &env, &[]).is_err(),
            "two kinds of default index"
        );
        let extra = |k: &str| (k == "UV_EXTRA_INDEX_URL").then(|| "https://e/".to_owned());
        assert!(upstream(&i, &extra, &[]).is_err());
    }

    #[test]
    fn config_files_name_one_index_or_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("uv.toml");
        std::fs::write(&f, "index-url = \"https://cfg/simple\"\n").unwrap();
        assert_eq!(
            config_index_url(&f).unwrap(),
            Some(("https://cfg/simple".to_owned(), false))
        );
        std::fs::write(&f, "[[index]]\nurl = \"https://cfg/simple\"\n").unwrap();
        assert!(
            config_index_url(&f).is_err(),
            "not the default: an extra index"
        );
        std::fs::write(
            &f,
            "[[index]]\nurl = \"https://cfg/simple\"\ndefault = true\n",
        )
        .unwrap();
        assert_eq!(
            config_index_url(&f).unwrap(),
            Some(("https://cfg/simple".to_owned(), true))
        );
        std::fs::write(
            &f,
            "[[index]]\nurl = \"https://a/simple\"\ndefault = true\n[[index]]\nurl = \"https://b/simple\"\n",
        )
        .unwrap();
        assert!(config_index_url(&f).is_err());
        let p = dir.path().join("pyproject.toml");
        std::fs::write(&p, "[project]\nname = \"a\"\n").unwrap();
        assert_eq!(config_index_url(&p).unwrap(), None);
        std::fs::write(&p, "[tool.uv.sources]\nx = { git = \"https://g/x\" }\n").unwrap();
        assert!(config_index_url(&p).is_err());
        std::fs::write(&p, "[tool.uv.sources]\nx = { path = \"../x\" }\n").unwrap();
        assert_eq!(config_index_url(&p).unwrap(), None);
    }
}
