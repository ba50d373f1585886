//! pip: which commands install, what they install from, and the arguments and environment
//! that make the real pip resolve and install through the guard index only.
//!
//! Parsing follows pip's own (optparse): general options before the subcommand, any
//! unambiguous abbreviation of a long option (`--extra` is `--extra-index-url`), `--opt=value`,
//! short clusters (`-qU`, `-ihttps://…`), and `--` ending the options. Requirement and
//! constraint files are read as pip reads them (see `requirements.rs`).

use std::collections::{BTreeMap, HashMap};
use std::ffi::OsString;
use std::path::{Path, PathBuf};

use reqwest::Url;

pub use super::requirements::RequirementLine;
use super::requirements::{file_url_path, Collected, Tree};
use super::{absolute, expand_tilde, match_abbrev, parse_url_or_dir, Abbrev, ManagerError};

/// pip's default index.
pub const PYPI_SIMPLE: &str = "https://pypi.org/simple/";

/// What a pip command line asks for.
// One per process: the size of the variants does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone)]
pub enum PipCommand {
    /// `pip install …` (also with `--dry-run`: pip builds source distributions to learn their
    /// dependencies even then, which runs their code, so a dry run is guarded too), and
    /// `pip download …` / `pip wheel …`, which build source distributions too
    /// ([`PipInstall::subcommand`] says which).
    Install(PipInstall),
    /// Anything else (`list`, `--version`, `help`, `install --help`, …): passed to the real pip
    /// untouched.
    Other,
}

/// The pip commands that fetch (and may build) packages: each is judged like an install.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PipSubcommand {
    Install,
    /// `pip download`: fetches the whole tree into `-d` (building sdists to learn their
    /// dependencies), installed packages ignored.
    Download,
    /// `pip wheel`: builds a wheel of everything in the tree into `-w`, installed packages
    /// ignored.
    Wheel,
}

impl PipSubcommand {
    pub fn as_str(self) -> &'static str {
        match self {
            PipSubcommand::Install => "install",
            PipSubcommand::Download => "download",
            PipSubcommand::Wheel => "wheel",
        }
    }

    /// Its option tables (optparse resolves abbreviations among these, so each command has
    /// its own).
    fn options(self) -> &'static [&'static [OptSpec]] {
        match self {
            PipSubcommand::Install => INSTALL_OPTIONS,
            PipSubcommand::Download => DOWNLOAD_OPTIONS,
            PipSubcommand::Wheel => WHEEL_OPTIONS,
        }
    }
}

/// An index option met in a requirement or constraint file, in the order pip applies them
/// (constraint files first, then requirement files, each depth first).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileIndexOption {
    IndexUrl(String),
    ExtraIndexUrl(String),
    NoIndex,
    FindLinks(String),
    TrustedHost(String),
}

/// A `pip install` command line, understood.
#[derive(Debug, Clone)]
pub struct PipInstall {
    /// The user's arguments, whole (after `pip`).
    pub args: Vec<OsString>,
    /// `install`, `download` or `wheel`.
    pub subcommand: PipSubcommand,
    /// `-i/--index-url` from the command line (the last one, as pip takes it).
    pub index_url: Option<String>,
    /// `--extra-index-url` from the command line.
    pub extra_index_urls: Vec<String>,
    /// `--no-index` on the command line.
    pub no_index: bool,
    /// Every `-f/--find-links`, command line then files; local ones as absolute paths.
    pub find_links: Vec<String>,
    /// The find-links that are URLs: the guard cannot front them, [`guarded_args`] drops them,
    /// and the guard should refuse the install while there are any.
    pub remote_find_links: Vec<String>,
    /// `--trusted-host` from the command line.
    pub trusted_hosts: Vec<String>,
    /// Index options from requirement and constraint files, in pip's order.
    pub file_index_options: Vec<FileIndexOption>,
    /// Every requirement file read (given and nested), absolute.
    pub requirement_files: Vec<PathBuf>,
    /// Every constraint file read (given, and nested `-c`), absolute.
    pub constraint_files: Vec<PathBuf>,
    /// `--build-constraint` files (pip ≥ 25.3), absolute.
    pub build_constraint_files: Vec<PathBuf>,
    /// Requirement or constraint files given by `http(s)` URL (on the command line or
    /// nested): pip downloads them itself, so they are not read here and may name any index;
    /// the guard should refuse the install while there are any.
    pub remote_requirement_files: Vec<String>,
    /// Local projects and archives to install (`.`, `./x`, `/abs/dir`, `pkg.whl`, `-e PATH`,
    /// `file:` URLs), from the command line and the files, absolute. Relative paths are taken
    /// against the working folder, also inside requirement files, as pip does. pip builds
    /// local projects to learn their dependencies (running their `setup.py`), so the guard
    /// should scan these before pip resolves.
    pub local_paths: Vec<PathBuf>,
    /// Direct URL requirements (`https://…/x.whl`, `name @ https://…`, `git+https://…`,
    /// `-e git+…`), command line and files: pip fetches them itself, past any index.
    pub urls: Vec<String>,
    /// `--cert` (`~` expanded).
    pub cert: Option<PathBuf>,
    /// The user's own `--report` (dropped from the resolution run by [`dry_run_args`]).
    pub report: Option<PathBuf>,
    pub dry_run: bool,
    pub target: Option<PathBuf>,
    pub user: bool,
    pub no_deps: bool,
    pub pre: bool,
    pub upgrade: bool,
    /// `--isolated` appears in the arguments: pip then ignores `PIP_*` variables and the user
    /// config file (see [`pip_config_files`] and [`guarded_env`]).
    pub isolated: bool,
    /// Requirement strings given on the command line (names with extras, specifiers and
    /// markers, untouched).
    pub names: Vec<String>,
    /// The working folder the command was parsed in (relative paths resolve against it).
    pub cwd: PathBuf,
    /// Where the subcommand (`install`, `download`, `wheel`) is in `args`.
    install_at: usize,
    /// Argument spans to drop or replace in the guarded arguments.
    edits: Vec<Edit>,
    /// The local requirement and constraint files, for sanitised copies.
    tree: Tree,
}

/// A file option of the command line, in the order pip reads them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum FileRole {
    Constraint,
    Requirement,
    BuildConstraint,
}

#[derive(Debug, Clone)]
struct Edit {
    start: usize,
    end: usize,
    /// The part of a short-option cluster before the option (`-q` of `-qi URL`), kept.
    prefix: Option<String>,
    action: EditAction,
}

#[derive(Debug, Clone)]
enum EditAction {
    Remove,
    File { id: usize, flag: &'static str },
}

/// Where the user's packages come from, as pip would see it for this install.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PipUpstream {
    /// The main index (credentials in the URL are kept). Meaningless when `no_index`.
    pub index: Url,
    /// Extra indexes, in pip's order, without duplicates.
    pub extra: Vec<Url>,
    /// CA bundle for the upstream (`--cert`, `PIP_CERT`, `cert =` in pip.conf).
    pub cert: Option<PathBuf>,
    /// `--no-index` in effect (command line, file or config): pip looks at find-links only.
    /// The guard then has no index to front; [`guarded_args`] keeps `--no-index`, so pip
    /// never asks the guard, and the local find-links folders are what must be scanned.
    pub no_index: bool,
    /// Every find-links pip would look at: config, command line, files.
    pub find_links: Vec<String>,
    /// The find-links that are URLs (the guard cannot front them yet).
    pub remote_find_links: Vec<String>,
    /// `--trusted-host` from config, command line and files.
    pub trusted_hosts: Vec<String>,
    /// The find-links pip would take from `PIP_FIND_LINKS` or pip.conf; [`guarded_env`]
    /// replaces them by their local ones.
    pub config_find_links: Vec<String>,
}

/// Parses the arguments given to `pip` (without `pip` itself), in the current folder with the
/// process environment (for `${VAR}` in requirement files).
pub fn parse(args: &[OsString]) -> Result<PipCommand, ManagerError> {
    let cwd = std::env::current_dir().map_err(|source| ManagerError::Read {
        path: PathBuf::from("."),
        source,
    })?;
    parse_in(args, &cwd, &super::process_env)
}

/// [`parse`] in folder `cwd` with environment `env`.
pub fn parse_in(
    args: &[OsString],
    cwd: &Path,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<PipCommand, ManagerError> {
    let words: Vec<String> = args
        .iter()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let general = scan_from(&words, 0, &[GENERAL_OPTIONS], true)?;
    let mut install = PipInstall::empty(args, cwd);
    let mut sub_at = None;
    let mut all_positional = false;
    for occ in &general {
        match occ.kind {
            OptKind::Help | OptKind::Version => return Ok(PipCommand::Other),
            OptKind::EndOfOptions => all_positional = true,
            OptKind::Positional => sub_at = Some(occ.start),
            _ => install.note(occ),
        }
    }
    let Some(sub_at) = sub_at else {
        return Ok(PipCommand::Other);
    };
    // pip takes its subcommand only as written (no abbreviations).
    install.subcommand = match words[sub_at].as_str() {
        "install" => PipSubcommand::Install,
        "download" => PipSubcommand::Download,
        "wheel" => PipSubcommand::Wheel,
        _ => return Ok(PipCommand::Other),
    };
    install.install_at = sub_at;
    // pip creates the command as isolated when the literal `--isolated` is among the
    // arguments, wherever it is.
    install.isolated = words
        .iter()
        .enumerate()
        .any(|(i, w)| i != sub_at && w == "--isolated");
    let occurrences = if all_positional {
        (sub_at + 1..words.len())
            .map(|i| Occurrence::positional(i, &words[i]))
            .collect()
    } else {
        scan_from(&words, sub_at + 1, install.subcommand.options(), false)?
    };
    let mut files: Vec<(FileRole, String, usize)> = Vec::new();
    for (n, occ) in occurrences.iter().enumerate() {
        match occ.kind {
            OptKind::Help => return Ok(PipCommand::Other),
            OptKind::Positional => match classify_requirement(&occ.text, cwd) {
                ReqKind::Name(name) => install.names.push(name),
                ReqKind::Local(path) => install.local_paths.push(path),
                ReqKind::Url(url) => install.urls.push(url),
            },
            OptKind::Requirement => files.push((FileRole::Requirement, occ.value(), n)),
            OptKind::Constraint => files.push((FileRole::Constraint, occ.value(), n)),
            OptKind::BuildConstraint => files.push((FileRole::BuildConstraint, occ.value(), n)),
            _ => install.note(occ),
        }
    }
    // pip reads the constraint files first, then the requirement files.
    files.sort_by_key(|(role, ..)| *role);
    let mut collected = Collected::default();
    let mut build = Collected::default();
    for (role, value, n) in files {
        let occ = &occurrences[n];
        let local = match file_url_path(&value) {
            Some(path) => path,
            None if is_remote(&value) => {
                install.remote_requirement_files.push(value);
                continue;
            }
            None => PathBuf::from(value),
        };
        // Build constraints only steer the builds' own resolutions: their index options
        // are not this install's (they are still sanitised).
        let into = match role {
            FileRole::BuildConstraint => &mut build,
            _ => &mut collected,
        };
        let constraint = role != FileRole::Requirement;
        let id = install.tree.read(&local, constraint, cwd, env, into)?;
        if role == FileRole::BuildConstraint {
            install.build_constraint_files.push(absolute(cwd, &local));
        }
        let flag = match role {
            FileRole::Constraint => "-c",
            FileRole::Requirement => "-r",
            FileRole::BuildConstraint => "--build-constraint",
        };
        install.edits.push(Edit {
            start: occ.start,
            end: occ.end,
            prefix: occ.prefix.clone(),
            action: EditAction::File { id, flag },
        });
    }
    install.absorb(collected);
    install.remote_requirement_files.extend(build.remote_files);
    Ok(PipCommand::Install(install))
}

impl PipInstall {
    fn empty(args: &[OsString], cwd: &Path) -> PipInstall {
        PipInstall {
            args: args.to_vec(),
            subcommand: PipSubcommand::Install,
            index_url: None,
            extra_index_urls: Vec::new(),
            no_index: false,
            find_links: Vec::new(),
            remote_find_links: Vec::new(),
            trusted_hosts: Vec::new(),
            file_index_options: Vec::new(),
            requirement_files: Vec::new(),
            constraint_files: Vec::new(),
            build_constraint_files: Vec::new(),
            remote_requirement_files: Vec::new(),
            local_paths: Vec::new(),
            urls: Vec::new(),
            cert: None,
            report: None,
            dry_run: false,
            target: None,
            user: false,
            no_deps: false,
            pre: false,
            upgrade: false,
            isolated: false,
            names: Vec::new(),
            cwd: cwd.to_owned(),
            install_at: 0,
            edits: Vec::new(),
            tree: Tree::default(),
        }
    }

    /// Records one option of the command line.
    fn note(&mut self, occ: &Occurrence) {
        let remove = |edits: &mut Vec<Edit>| {
            edits.push(Edit {
                start: occ.start,
                end: occ.end,
                prefix: occ.prefix.clone(),
                action: EditAction::Remove,
            })
        };
        let path = |value: String| absolute(&self.cwd, &expand_tilde(&value));
        match occ.kind {
            OptKind::IndexUrl => {
                self.index_url = Some(occ.value());
                remove(&mut self.edits);
            }
            OptKind::ExtraIndexUrl => {
                self.extra_index_urls.push(occ.value());
                remove(&mut self.edits);
            }
            OptKind::NoIndex => self.no_index = true,
            OptKind::FindLinks => {
                let value = occ.value();
                if is_remote(&value) {
                    self.remote_find_links.push(value.clone());
                    self.find_links.push(value);
                    remove(&mut self.edits);
                } else {
                    let local = file_url_path(&value).unwrap_or_else(|| path(value));
                    self.find_links.push(local.to_string_lossy().into_owned());
                }
            }
            OptKind::TrustedHost => self.trusted_hosts.push(occ.value()),
            OptKind::Editable => match classify_editable(&occ.value(), &self.cwd) {
                ReqKind::Url(url) => self.urls.push(url),
                ReqKind::Local(p) => self.local_paths.push(p),
                ReqKind::Name(_) => {}
            },
            OptKind::Cert => self.cert = Some(path(occ.value())),
            OptKind::Report => self.report = Some(path(occ.value())),
            OptKind::Target => self.target = Some(path(occ.value())),
            OptKind::DryRun => self.dry_run = true,
            OptKind::User => self.user = true,
            OptKind::NoUser => self.user = false,
            OptKind::NoDeps => self.no_deps = true,
            OptKind::Pre => self.pre = true,
            OptKind::Upgrade => self.upgrade = true,
            _ => {}
        }
    }

    fn absorb(&mut self, c: Collected) {
        fn dedup(paths: Vec<PathBuf>) -> Vec<PathBuf> {
            let mut out: Vec<PathBuf> = Vec::with_capacity(paths.len());
            for path in paths {
                if !out.contains(&path) {
                    out.push(path);
                }
            }
            out
        }
        self.file_index_options = c.index_options;
        self.find_links.extend(c.find_links);
        self.remote_find_links.extend(c.remote_find_links);
        self.requirement_files = dedup(c.requirement_files);
        self.constraint_files = dedup(c.constraint_files);
        self.remote_requirement_files.extend(c.remote_files);
        self.local_paths.extend(c.local_paths);
        self.urls.extend(c.urls);
    }
}

/// The pip config files, lowest precedence first (a later file overrides an earlier one),
/// as pip ≥ 23 loads them on Linux: global (`$XDG_CONFIG_DIRS/pip/pip.conf`, default
/// `/etc/xdg`, then `/etc/pip.conf`), user (`~/.pip/pip.conf`, then
/// `$XDG_CONFIG_HOME/pip/pip.conf`, skipped when `isolated` or when `PIP_CONFIG_FILE` names an
/// existing file), site (`<prefix>/pip.conf` of the Python that runs pip: from `real_pip`,
/// the program [`super::real::real_pip`] found, else `$VIRTUAL_ENV`), then `PIP_CONFIG_FILE`.
/// `PIP_CONFIG_FILE=/dev/null` turns every file off. Files that do not exist are listed too.
pub fn pip_config_files(
    env: &dyn Fn(&str) -> Option<String>,
    isolated: bool,
    real_pip: &[OsString],
) -> Vec<PathBuf> {
    let config_file = env("PIP_CONFIG_FILE").filter(|v| !v.is_empty());
    if config_file.as_deref() == Some("/dev/null") {
        return Vec::new();
    }
    let mut files = Vec::new();
    let xdg_dirs = env("XDG_CONFIG_DIRS")
        .filter(|v| !v.trim().is_empty())
        .unwrap_or_else(|| "/etc/xdg".to_owned());
    for dir in xdg_dirs.split(':') {
        files.push(Path::new(dir).join("pip").join("pip.conf"));
    }
    files.push(PathBuf::from("/etc/pip.conf"));
    let env_file_exists = config_file
        .as_deref()
        .is_some_and(|f| Path::new(f).exists());
    if !isolated && !env_file_exists {
        if let Some(home) = env("HOME").filter(|h| !h.is_empty()) {
            files.push(Path::new(&home).join(".pip").join("pip.conf"));
            let config_home = env("XDG_CONFIG_HOME")
                .filter(|v| !v.trim().is_empty())
                .map(PathBuf::from)
                .unwrap_or_else(|| Path::new(&home).join(".config"));
            files.push(config_home.join("pip").join("pip.conf"));
        }
    }
    let prefix = real_pip
        .first()
        .map(Path::new)
        .filter(|p| p.is_absolute())
        .and_then(|p| p.parent()?.parent())
        .map(Path::to_owned)
        .or_else(|| {
            env("VIRTUAL_ENV")
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        });
    if let Some(prefix) = prefix {
        files.push(prefix.join("pip.conf"));
    }
    if let Some(file) = config_file {
        files.push(PathBuf::from(file));
    }
    files
}

/// Where this install's packages come from, by pip's precedence: command line, then
/// requirement files (a file's `-i` replaces the index list so far, its `--extra-index-url`
/// adds to it, as pip applies them), over `PIP_*` variables (ignored when `--isolated`), over
/// the config files' `[install]` then `[global]` sections, over `https://pypi.org/simple/`.
/// Extra indexes and find-links from the environment or config add to the command line's.
pub fn upstream(
    install: &PipInstall,
    env: &dyn Fn(&str) -> Option<String>,
    config_files: &[PathBuf],
) -> Result<PipUpstream, ManagerError> {
    let config = IniConfig::load(config_files)?;
    let lookup = |key: &str| -> Option<String> {
        if !install.isolated {
            let name = format!("PIP_{}", key.to_ascii_uppercase().replace('-', "_"));
            if let Some(value) = env(&name).filter(|v| !v.is_empty()) {
                return Some(value);
            }
        }
        config
            .get("install", key)
            .or_else(|| config.get("global", key))
            .map(str::to_owned)
    };
    let words = |key: &str| -> Vec<String> {
        lookup(key)
            .map(|v| v.split_whitespace().map(str::to_owned).collect())
            .unwrap_or_default()
    };
    let index = install
        .index_url
        .clone()
        .or_else(|| lookup("index-url"))
        .or_else(|| lookup("pypi-url"))
        .unwrap_or_else(|| PYPI_SIMPLE.to_owned());
    let mut extras = words("extra-index-url");
    extras.extend(install.extra_index_urls.iter().cloned());
    let mut no_index = install.no_index || lookup("no-index").is_some_and(|v| strtobool(&v));
    let config_find_links = words("find-links");
    let mut trusted_hosts = words("trusted-host");
    trusted_hosts.extend(install.trusted_hosts.iter().cloned());
    let cert = install
        .cert
        .clone()
        .or_else(|| lookup("cert").map(|c| absolute(&install.cwd, &expand_tilde(&c))));

    let mut urls: Vec<String> = if no_index {
        Vec::new()
    } else {
        std::iter::once(index).chain(extras).collect()
    };
    for option in &install.file_index_options {
        match option {
            FileIndexOption::NoIndex => {
                no_index = true;
                urls.clear();
            }
            FileIndexOption::IndexUrl(url) if !no_index => urls = vec![url.clone()],
            FileIndexOption::ExtraIndexUrl(url) if !no_index => urls.push(url.clone()),
            FileIndexOption::TrustedHost(host) => trusted_hosts.push(host.clone()),
            _ => {}
        }
    }
    let mut parsed: Vec<Url> = Vec::new();
    for (i, url) in urls.iter().enumerate() {
        let what = if i == 0 {
            "pip index"
        } else {
            "pip extra index"
        };
        let url = parse_url_or_dir(what, url, &install.cwd)?;
        if !parsed.contains(&url) {
            parsed.push(url);
        }
    }
    let mut find_links = config_find_links.clone();
    find_links.extend(install.find_links.iter().cloned());
    let remote_find_links = find_links
        .iter()
        .filter(|f| is_remote(f))
        .cloned()
        .collect();
    let no_index = no_index || parsed.is_empty();
    let mut parsed = parsed.into_iter();
    let index = parsed
        .next()
        .unwrap_or_else(|| Url::parse(PYPI_SIMPLE).expect("the PyPI URL is valid"));
    Ok(PipUpstream {
        index,
        extra: parsed.collect(),
        cert,
        no_index,
        find_links,
        remote_find_links,
        trusted_hosts,
        config_find_links,
    })
}

/// The user's arguments for the real pip, resolving and installing through the guard only:
/// every `-i/--index-url`, `--extra-index-url` and remote `-f/--find-links` removed (the
/// guard fronts the upstream [`upstream`] found instead), `--index-url <guard_index>` added
/// right after `install`, and requirement or constraint files that name an index replaced
/// by sanitised copies written under `scratch` (nested ones too, their `-r`/`-c` rewritten,
/// their local find-links made absolute). `--no-index` and local find-links stay: with
/// them pip installs from local folders, which the guard should scan (see
/// [`PipUpstream::find_links`]). Run the result with [`guarded_env`] set.
pub fn guarded_args(
    install: &PipInstall,
    guard_index: &Url,
    scratch: &Path,
) -> Result<Vec<OsString>, ManagerError> {
    let mut edits = install.edits.clone();
    edits.sort_by_key(|e| e.start);
    let mut written = HashMap::new();
    let mut out = Vec::with_capacity(install.args.len() + 2);
    let mut i = 0;
    let mut edits = edits.into_iter().peekable();
    while i < install.args.len() {
        if let Some(edit) = edits.next_if(|e| e.start == i) {
            match edit.action {
                EditAction::Remove => out.extend(edit.prefix.map(OsString::from)),
                EditAction::File { id, flag } => {
                    let copy = install.tree.sanitised(id, scratch, &mut written)?;
                    if install.tree_path(id) == copy {
                        out.extend_from_slice(&install.args[edit.start..edit.end]);
                    } else {
                        out.extend(edit.prefix.map(OsString::from));
                        out.push(flag.into());
                        out.push(copy.into_os_string());
                    }
                }
            }
            i = edit.end;
            continue;
        }
        out.push(install.args[i].clone());
        if i == install.install_at {
            out.push("--index-url".into());
            out.push(guard_index.as_str().into());
        }
        i += 1;
    }
    Ok(out)
}

impl PipInstall {
    fn tree_path(&self, id: usize) -> PathBuf {
        self.tree.path_of(id)
    }

    /// The requirement lines of the requirement files this install reads (given and nested;
    /// constraint files left out), with their file, line and `--hash`es: what an audit of the
    /// files judges without installing them.
    pub fn requirement_lines(&self) -> Vec<RequirementLine> {
        self.tree.requirement_lines()
    }
}

/// A variable value pip reads as set (it skips empty ones) and splits into no words.
const BLANK: &str = " ";

/// The environment for every run of the real pip with [`guarded_args`], so that pip.conf and
/// `PIP_*` variables cannot add an index or a remote find-links behind the guard's back (pip
/// adds those to the command line's). Without `--isolated`: `PIP_INDEX_URL` set to the guard,
/// `PIP_EXTRA_INDEX_URL` blank (no extra index), `PIP_FIND_LINKS` to the config's local
/// find-links (or blank), and pip's socket timeout toward the guard, `timeout` (pip's default
/// 15 s would fire while a large artifact is judged; the guard answers within its own
/// deadline, which `timeout` exceeds, so a slow judgement ends with the verdict or the
/// guard's one line rather than pip's traceback; a `--timeout` on the command line still
/// wins, pip reads it first). With `--isolated` pip ignores variables but still reads
/// `PIP_CONFIG_FILE`, so a sanitised copy of that file is written under `scratch` and named
/// there, with the guard as index and extra index and the local find-links (or an empty
/// folder under `scratch`).
pub fn guarded_env(
    install: &PipInstall,
    upstream: &PipUpstream,
    guard_index: &Url,
    scratch: &Path,
    timeout: std::time::Duration,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Vec<(OsString, OsString)>, ManagerError> {
    let timeout = timeout.as_secs().max(1).to_string();
    let user_file = env("PIP_CONFIG_FILE").filter(|v| !v.is_empty());
    if install.isolated && user_file.as_deref() == Some("/dev/null") {
        // No config file is read at all; the command line rules.
        return Ok(Vec::new());
    }
    let local: Vec<&str> = upstream
        .config_find_links
        .iter()
        .filter(|f| !is_remote(f))
        .map(String::as_str)
        .collect();
    let guard = guard_index.as_str().to_owned();
    if !install.isolated {
        // pip skips an empty variable (then pip.conf's value applies) but splits a blank one
        // into an empty list, which overrides pip.conf: no extra index, and `Looking in
        // indexes:` shows the guard once.
        let find_links = if local.is_empty() {
            BLANK.to_owned()
        } else {
            local.join(" ")
        };
        return Ok([
            ("PIP_INDEX_URL", guard),
            ("PIP_EXTRA_INDEX_URL", BLANK.to_owned()),
            ("PIP_FIND_LINKS", find_links),
            ("PIP_DEFAULT_TIMEOUT", timeout),
        ]
        .into_iter()
        .map(|(k, v)| (OsString::from(k), OsString::from(v)))
        .collect());
    }
    // A config file cannot hold a blank value (configparser strips it, and pip then skips
    // it): the guard itself as the extra index, an empty folder as the find-links.
    let find_links = if local.is_empty() {
        let empty = scratch.join("no-find-links");
        std::fs::create_dir_all(&empty).map_err(|source| ManagerError::Write {
            path: empty.clone(),
            source,
        })?;
        empty.to_string_lossy().into_owned()
    } else {
        local.join(" ")
    };
    let settings = [
        ("index-url", guard.clone()),
        ("extra-index-url", guard),
        ("find-links", find_links),
        ("timeout", timeout),
    ];
    let mut sections: BTreeMap<String, Vec<(String, String)>> = BTreeMap::new();
    if let Some(file) = user_file.as_deref().map(Path::new).filter(|f| f.exists()) {
        let parsed = IniConfig::load(&[file.to_owned()])?;
        for (section, keys) in parsed.sections {
            let entry = sections.entry(section).or_default();
            for (key, value) in keys {
                if !matches!(
                    key.as_str(),
                    "index-url"
                        | "pypi-url"
                        | "extra-index-url"
                        | "find-links"
                        | "timeout"
                        | "default-timeout"
                ) {
                    entry.push((key, value));
                }
            }
        }
    }
    for section in ["global", "install"] {
        let entry = sections.entry(section.to_owned()).or_default();
        for (key, value) in &settings {
            entry.push(((*key).to_owned(), value.clone()));
        }
    }
    let mut text = String::from("# written by cerebro for one guarded pip run\n");
    for (section, keys) in sections {
        text.push_str(&format!("[{section}]\n"));
        for (key, value) in keys {
            text.push_str(&format!("{key} = {}\n", value.replace('\n', "\n    ")));
        }
    }
    std::fs::create_dir_all(scratch).map_err(|source| ManagerError::Write {
        path: scratch.to_owned(),
        source,
    })?;
    let path = scratch.join("pip.conf");
    std::fs::write(&path, text).map_err(|source| ManagerError::Write {
        path: path.clone(),
        source,
    })?;
    Ok(vec![("PIP_CONFIG_FILE".into(), path.into_os_string())])
}

/// The resolution run: `guarded` plus `--dry-run --report <report> --quiet --no-input`
/// right after the subcommand, without the user's own `--report`. pip only resolves and
/// downloads (through the guard, which scans each artifact before serving it); `--target`,
/// `--user`, `--prefix` stay, as pip accepts them with `--dry-run` and they can change what
/// is already satisfied.
///
/// For `download` and `wheel` the subcommand becomes `install` with `--ignore-installed`
/// (both fetch the whole tree, whatever is installed), and the options `install` does not
/// have (`-d`, `-w`, `--no-verify`, `--build-option`) are dropped: the same resolver then
/// picks the same tree, and pip writes its report of it.
pub fn dry_run_args(
    guarded: &[OsString],
    report: &Path,
    subcommand: PipSubcommand,
) -> Vec<OsString> {
    let words: Vec<String> = guarded
        .iter()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let sub_at = scan_from(&words, 0, &[GENERAL_OPTIONS], true)
        .ok()
        .and_then(|occs| {
            occs.iter()
                .find(|o| o.kind == OptKind::Positional)
                .map(|o| o.start)
        });
    let Some(sub_at) = sub_at else {
        let mut out = guarded.to_vec();
        out.extend(["--dry-run".into(), "--report".into(), report.into()]);
        return out;
    };
    // (start, end, the cluster's head to keep)
    let drop: Vec<(usize, usize, Option<String>)> =
        scan_from(&words, sub_at + 1, subcommand.options(), false)
            .map(|occs| {
                occs.iter()
                    .filter(|o| matches!(o.kind, OptKind::Report | OptKind::NotForInstall))
                    .map(|o| (o.start, o.end, o.prefix.clone()))
                    .collect()
            })
            .unwrap_or_default();
    let mut out = Vec::with_capacity(guarded.len() + 6);
    let mut i = 0;
    while i < guarded.len() {
        if let Some((_, end, prefix)) = drop.iter().find(|(start, ..)| *start == i) {
            out.extend(prefix.clone().map(OsString::from));
            i = *end;
            continue;
        }
        if i == sub_at {
            out.push("install".into());
            out.extend([
                OsString::from("--dry-run"),
                "--report".into(),
                report.into(),
                "--quiet".into(),
                "--no-input".into(),
            ]);
            if subcommand != PipSubcommand::Install {
                out.push("--ignore-installed".into());
            }
        } else {
            out.push(guarded[i].clone());
        }
        i += 1;
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Options

/// What an option means to the guard.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OptKind {
    Plain,
    /// `--hash` of a requirement line.
    Hash,
    Help,
    Version,
    IndexUrl,
    ExtraIndexUrl,
    NoIndex,
    FindLinks,
    TrustedHost,
    Requirement,
    Constraint,
    BuildConstraint,
    Editable,
    Cert,
    Report,
    DryRun,
    Target,
    User,
    NoUser,
    NoDeps,
    Pre,
    Upgrade,
    /// `download`'s and `wheel`'s options that `install` does not have (`-d`, `-w`,
    /// `--no-verify`, `--build-option`): left out of the resolution run.
    NotForInstall,
    /// An option pip does not have (pip will refuse it); kept.
    Unknown,
    Positional,
    EndOfOptions,
}

/// One option: its spellings (short and long), whether it takes a value, its meaning.
pub(crate) struct OptSpec {
    names: &'static [&'static str],
    value: bool,
    kind: OptKind,
}

const fn opt(names: &'static [&'static str], value: bool, kind: OptKind) -> OptSpec {
    OptSpec { names, value, kind }
}

use OptKind as K;

/// pip's general options (valid before the subcommand and after it).
const GENERAL_OPTIONS: &[OptSpec] = &[
    opt(&["-h", "--help"], false, K::Help),
    opt(&["--debug"], false, K::Plain),
    opt(&["--isolated"], false, K::Plain),
    opt(&["--require-virtualenv", "--require-venv"], false, K::Plain),
    opt(&["--python"], true, K::Plain),
    opt(&["-v", "--verbose"], false, K::Plain),
    opt(&["-V", "--version"], false, K::Version),
    opt(&["-q", "--quiet"], false, K::Plain),
    opt(&["--log", "--log-file", "--local-log"], true, K::Plain),
    opt(&["--no-input"], false, K::Plain),
    opt(&["--keyring-provider"], true, K::Plain),
    opt(&["--proxy"], true, K::Plain),
    opt(&["--retries"], true, K::Plain),
    opt(&["--resume-retries"], true, K::Plain),
    opt(&["--timeout", "--default-timeout"], true, K::Plain),
    opt(&["--exists-action"], true, K::Plain),
    opt(&["--trusted-host"], true, K::TrustedHost),
    opt(&["--cert"], true, K::Cert),
    opt(&["--client-cert"], true, K::Plain),
    opt(&["--cache-dir"], true, K::Plain),
    opt(&["--no-cache-dir"], false, K::Plain),
    opt(&["--disable-pip-version-check"], false, K::Plain),
    opt(&["--no-color"], false, K::Plain),
    opt(&["--no-python-version-warning"], false, K::Plain),
    opt(&["--use-feature"], true, K::Plain),
    opt(&["--use-deprecated"], true, K::Plain),
];

/// `pip install`'s own options (pip 23 to 25), after the subcommand, with the general ones.
const INSTALL_ONLY_OPTIONS: &[OptSpec] = &[
    opt(&["-r", "--requirement"], true, K::Requirement),
    opt(&["-c", "--constraint"], true, K::Constraint),
    opt(&["--build-constraint"], true, K::BuildConstraint),
    opt(&["--requirements-from-script"], true, K::Plain),
    opt(&["--no-deps", "--no-dependencies"], false, K::NoDeps),
    opt(&["--only-deps", "--only-dependencies"], false, K::Plain),
    opt(&["--pre"], false, K::Pre),
    opt(&["--all-releases"], true, K::Plain),
    opt(&["--only-final"], true, K::Plain),
    opt(&["-e", "--editable"], true, K::Editable),
    opt(&["--dry-run"], false, K::DryRun),
    opt(&["-t", "--target"], true, K::Target),
    opt(&["--platform"], true, K::Plain),
    opt(&["--python-version"], true, K::Plain),
    opt(&["--implementation"], true, K::Plain),
    opt(&["--abi"], true, K::Plain),
    opt(&["--user"], false, K::User),
    opt(&["--no-user"], false, K::NoUser),
    opt(&["--root"], true, K::Plain),
    opt(&["--prefix"], true, K::Plain),
    opt(
        &["--src", "--source", "--source-dir", "--source-directory"],
        true,
        K::Plain,
    ),
    opt(&["-U", "--upgrade"], false, K::Upgrade),
    opt(&["--upgrade-strategy"], true, K::Plain),
    opt(&["--force-reinstall"], false, K::Plain),
    opt(&["-I", "--ignore-installed"], false, K::Plain),
    opt(&["--ignore-requires-python"], false, K::Plain),
    opt(&["--no-build-isolation"], false, K::Plain),
    opt(&["--use-pep517"], false, K::Plain),
    opt(&["--no-use-pep517"], false, K::Plain),
    opt(&["--check-build-dependencies"], false, K::Plain),
    opt(&["--break-system-packages"], false, K::Plain),
    opt(&["-C", "--config-settings"], true, K::Plain),
    opt(&["--global-option"], true, K::Plain),
    opt(&["--install-option"], true, K::Plain),
    opt(&["--compile"], false, K::Plain),
    opt(&["--no-compile"], false, K::Plain),
    opt(&["--no-warn-script-location"], false, K::Plain),
    opt(&["--no-warn-conflicts"], false, K::Plain),
    opt(&["--no-binary"], true, K::Plain),
    opt(&["--only-binary"], true, K::Plain),
    opt(&["--prefer-binary"], false, K::Plain),
    opt(&["--require-hashes"], false, K::Plain),
    opt(&["--progress-bar"], true, K::Plain),
    opt(&["--root-user-action"], true, K::Plain),
    opt(&["--report"], true, K::Report),
    opt(&["--no-clean"], false, K::Plain),
    opt(&["--group"], true, K::Plain),
    opt(&["-i", "--index-url", "--pypi-url"], true, K::IndexUrl),
    opt(&["--extra-index-url"], true, K::ExtraIndexUrl),
    opt(&["--no-index"], false, K::NoIndex),
    opt(&["-f", "--find-links"], true, K::FindLinks),
    opt(&["--uploaded-prior-to"], true, K::Plain),
];

/// The install parser knows both lists.
const INSTALL_OPTIONS: &[&[OptSpec]] = &[GENERAL_OPTIONS, INSTALL_ONLY_OPTIONS];

/// pip's index options (`index_group`), which `download` and `wheel` have as `install` does.
const INDEX_OPTIONS: &[OptSpec] = &[
    opt(&["-i", "--index-url", "--pypi-url"], true, K::IndexUrl),
    opt(&["--extra-index-url"], true, K::ExtraIndexUrl),
    opt(&["--no-index"], false, K::NoIndex),
    opt(&["-f", "--find-links"], true, K::FindLinks),
];

/// `pip download`'s own options (pip 23 to 25; a superset where versions differ: an
/// abbreviation unique here is unique, to the same option, in each version, and one that is
/// ambiguous here is refused).
const DOWNLOAD_ONLY_OPTIONS: &[OptSpec] = &[
    opt(&["-c", "--constraint"], true, K::Constraint),
    opt(&["--build-constraint"], true, K::BuildConstraint),
    opt(&["-r", "--requirement"], true, K::Requirement),
    opt(&["--no-deps", "--no-dependencies"], false, K::NoDeps),
    opt(&["--global-option"], true, K::Plain),
    opt(&["--no-binary"], true, K::Plain),
    opt(&["--only-binary"], true, K::Plain),
    opt(&["--prefer-binary"], false, K::Plain),
    opt(
        &["--src", "--source", "--source-dir", "--source-directory"],
        true,
        K::Plain,
    ),
    opt(&["--pre"], false, K::Pre),
    opt(&["--all-releases"], true, K::Plain),
    opt(&["--only-final"], true, K::Plain),
    opt(&["--require-hashes"], false, K::Plain),
    opt(&["--progress-bar"], true, K::Plain),
    opt(&["--no-build-isolation"], false, K::Plain),
    opt(&["--use-pep517"], false, K::Plain),
    opt(&["--no-use-pep517"], false, K::Plain),
    opt(&["--check-build-dependencies"], false, K::Plain),
    opt(&["--ignore-requires-python"], false, K::Plain),
    opt(&["-C", "--config-settings"], true, K::Plain),
    opt(&["--group"], true, K::Plain),
    opt(
        &[
            "-d",
            "--dest",
            "--destination-dir",
            "--destination-directory",
        ],
        true,
        K::NotForInstall,
    ),
    opt(&["--platform"], true, K::Plain),
    opt(&["--python-version"], true, K::Plain),
    opt(&["--implementation"], true, K::Plain),
    opt(&["--abi"], true, K::Plain),
    opt(&["--uploaded-prior-to"], true, K::Plain),
];

/// `pip wheel`'s own options (pip 23 to 25, a superset as for download).
const WHEEL_ONLY_OPTIONS: &[OptSpec] = &[
    opt(&["-w", "--wheel-dir"], true, K::NotForInstall),
    opt(&["--no-binary"], true, K::Plain),
    opt(&["--only-binary"], true, K::Plain),
    opt(&["--prefer-binary"], false, K::Plain),
    opt(&["--no-build-isolation"], false, K::Plain),
    opt(&["--use-pep517"], false, K::Plain),
    opt(&["--no-use-pep517"], false, K::Plain),
    opt(&["--check-build-dependencies"], false, K::Plain),
    opt(&["-c", "--constraint"], true, K::Constraint),
    opt(&["--build-constraint"], true, K::BuildConstraint),
    opt(&["-e", "--editable"], true, K::Editable),
    opt(&["-r", "--requirement"], true, K::Requirement),
    opt(
        &["--src", "--source", "--source-dir", "--source-directory"],
        true,
        K::Plain,
    ),
    opt(&["--ignore-requires-python"], false, K::Plain),
    opt(&["--no-deps", "--no-dependencies"], false, K::NoDeps),
    opt(&["--progress-bar"], true, K::Plain),
    opt(&["--no-verify"], false, K::NotForInstall),
    opt(&["-C", "--config-settings"], true, K::Plain),
    opt(&["--build-option"], true, K::NotForInstall),
    opt(&["--global-option"], true, K::Plain),
    opt(&["--pre"], false, K::Pre),
    opt(&["--all-releases"], true, K::Plain),
    opt(&["--only-final"], true, K::Plain),
    opt(&["--require-hashes"], false, K::Plain),
    opt(&["--group"], true, K::Plain),
    opt(&["--uploaded-prior-to"], true, K::Plain),
];

const DOWNLOAD_OPTIONS: &[&[OptSpec]] = &[GENERAL_OPTIONS, DOWNLOAD_ONLY_OPTIONS, INDEX_OPTIONS];
const WHEEL_OPTIONS: &[&[OptSpec]] = &[GENERAL_OPTIONS, WHEEL_ONLY_OPTIONS, INDEX_OPTIONS];

/// The options pip accepts in a requirement or constraint file.
pub(crate) const REQ_FILE_OPTIONS: &[&[OptSpec]] = &[&[
    opt(&["-i", "--index-url", "--pypi-url"], true, K::IndexUrl),
    opt(&["--extra-index-url"], true, K::ExtraIndexUrl),
    opt(&["--no-index"], false, K::NoIndex),
    opt(&["-c", "--constraint"], true, K::Constraint),
    opt(&["-r", "--requirement"], true, K::Requirement),
    opt(&["-e", "--editable"], true, K::Editable),
    opt(&["-f", "--find-links"], true, K::FindLinks),
    opt(&["--no-binary"], true, K::Plain),
    opt(&["--only-binary"], true, K::Plain),
    opt(&["--prefer-binary"], false, K::Plain),
    opt(&["--require-hashes"], false, K::Plain),
    opt(&["--pre"], false, K::Pre),
    opt(&["--trusted-host"], true, K::TrustedHost),
    opt(&["--use-feature"], true, K::Plain),
    opt(&["--global-option"], true, K::Plain),
    opt(&["--install-option"], true, K::Plain),
    opt(&["--hash"], true, K::Hash),
    opt(&["-C", "--config-settings"], true, K::Plain),
    opt(&["--all-releases"], true, K::Plain),
    opt(&["--only-final"], true, K::Plain),
    opt(&["--uploaded-prior-to"], true, K::Plain),
]];

/// One option (or positional word) found in a command line or a file line.
#[derive(Debug, Clone)]
pub(crate) struct Occurrence {
    /// The words it spans, `start..end`.
    pub start: usize,
    pub end: usize,
    /// The cluster before it (`-q` of `-qr file`).
    pub prefix: Option<String>,
    pub kind: OptKind,
    pub value: Option<String>,
    /// The word itself (positional) or the option as written.
    pub text: String,
}

impl Occurrence {
    fn positional(at: usize, word: &str) -> Occurrence {
        Occurrence {
            start: at,
            end: at + 1,
            prefix: None,
            kind: OptKind::Positional,
            value: None,
            text: word.to_owned(),
        }
    }

    fn value(&self) -> String {
        self.value.clone().unwrap_or_default()
    }
}

/// Scans `words` for options of `tables` (optparse's rules), every word of the line.
pub(crate) fn scan(
    words: &[String],
    tables: &[&[OptSpec]],
    stop_at_positional: bool,
) -> Result<Vec<Occurrence>, ManagerError> {
    scan_from(words, 0, tables, stop_at_positional)
}

fn scan_from(
    words: &[String],
    from: usize,
    tables: &[&[OptSpec]],
    stop_at_positional: bool,
) -> Result<Vec<Occurrence>, ManagerError> {
    let specs = || tables.iter().flat_map(|t| t.iter());
    let find = |name: &str| specs().find(|s| s.names.contains(&name));
    let longs = || {
        specs()
            .flat_map(|s| s.names.iter().copied())
            .filter(|n| n.starts_with("--"))
    };
    let missing = |option: &str| ManagerError::MissingValue {
        manager: "pip",
        option: option.to_owned(),
    };
    let mut out = Vec::new();
    let mut i = from;
    while i < words.len() {
        let word = &words[i];
        if word == "--" {
            out.push(Occurrence {
                kind: OptKind::EndOfOptions,
                ..Occurrence::positional(i, word)
            });
            for (j, rest) in words.iter().enumerate().skip(i + 1) {
                out.push(Occurrence::positional(j, rest));
                if stop_at_positional {
                    break;
                }
            }
            return Ok(out);
        }
        if word.starts_with("--") {
            let (name, inline) = match word.split_once('=') {
                Some((name, value)) => (name, Some(value.to_owned())),
                None => (word.as_str(), None),
            };
            let spec = match match_abbrev(name, longs()) {
                Abbrev::Exact(full) | Abbrev::Unique(full) => find(full),
                Abbrev::Ambiguous(candidates) => {
                    return Err(ManagerError::AmbiguousOption {
                        manager: "pip",
                        option: name.to_owned(),
                        candidates: candidates.join(", "),
                    })
                }
                Abbrev::Unknown => None,
            };
            let Some(spec) = spec else {
                out.push(Occurrence {
                    kind: OptKind::Unknown,
                    value: inline,
                    ..Occurrence::positional(i, word)
                });
                i += 1;
                continue;
            };
            let (value, end) = match (spec.value, inline) {
                (true, Some(v)) => (Some(v), i + 1),
                (true, None) => (
                    Some(words.get(i + 1).ok_or_else(|| missing(name))?.clone()),
                    i + 2,
                ),
                (false, v) => (v, i + 1),
            };
            out.push(Occurrence {
                start: i,
                end,
                prefix: None,
                kind: spec.kind,
                value,
                text: spec
                    .names
                    .iter()
                    .find(|n| n.starts_with("--"))
                    .copied()
                    .unwrap_or(name)
                    .to_owned(),
            });
            i = end;
            continue;
        }
        if word.len() > 1 && word.starts_with('-') {
            let chars: Vec<char> = word[1..].chars().collect();
            let mut end = i + 1;
            for (j, c) in chars.iter().enumerate() {
                let name = format!("-{c}");
                let prefix = (j > 0).then(|| format!("-{}", chars[..j].iter().collect::<String>()));
                let Some(spec) = find(&name) else {
                    out.push(Occurrence {
                        start: i,
                        end,
                        prefix,
                        kind: OptKind::Unknown,
                        value: None,
                        text: name,
                    });
                    continue;
                };
                if !spec.value {
                    out.push(Occurrence {
                        start: i,
                        end,
                        prefix,
                        kind: spec.kind,
                        value: None,
                        text: name,
                    });
                    continue;
                }
                let rest: String = chars[j + 1..].iter().collect();
                let value = if rest.is_empty() {
                    end = i + 2;
                    words.get(i + 1).ok_or_else(|| missing(&name))?.clone()
                } else {
                    rest
                };
                out.push(Occurrence {
                    start: i,
                    end,
                    prefix,
                    kind: spec.kind,
                    value: Some(value),
                    text: name,
                });
                break;
            }
            i = end;
            continue;
        }
        out.push(Occurrence::positional(i, word));
        if stop_at_positional {
            return Ok(out);
        }
        i += 1;
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------------------
// Requirements

/// What a requirement string names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ReqKind {
    /// A name with extras, specifiers and markers, resolved through the index.
    Name(String),
    /// A local folder or archive (absolute).
    Local(PathBuf),
    /// A direct URL (`https://…`, `name @ https://…`, `git+…`).
    Url(String),
}

/// Whether pip takes `value` for a URL (`is_url`): http(s), ftp, file, or a VCS scheme.
pub(crate) fn is_url(value: &str) -> bool {
    let Some((scheme, _)) = value.split_once(':') else {
        return false;
    };
    let scheme = scheme.to_ascii_lowercase();
    if scheme.is_empty()
        || !scheme
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b == b'+' || b == b'-')
    {
        return false;
    }
    matches!(
        scheme.as_str(),
        "http" | "https" | "ftp" | "file" | "git" | "svn"
    ) || ["git+", "hg+", "svn+", "bzr+"]
        .iter()
        .any(|p| scheme.starts_with(p))
}

/// A URL that is not a `file:` one: fetched by pip itself, past the guard.
pub(crate) fn is_remote(value: &str) -> bool {
    is_url(value)
        && !value
            .get(..5)
            .is_some_and(|s| s.eq_ignore_ascii_case("file:"))
}

/// Classifies one requirement the way pip's `parse_req_from_line` does: URLs; paths that look
/// like paths (a `/` or a leading `.`) to folders; archive names (`.whl`, `.tar.gz`, `.zip`,
/// …) that exist or do not look like `name @ url`; PEP 508 `name @ url`; else a name.
pub(crate) fn classify_requirement(text: &str, cwd: &Path) -> ReqKind {
    let text = text.trim();
    let marker_sep = if is_url(text) { "; " } else { ";" };
    let name = text.split(marker_sep).next().unwrap_or(text).trim();
    if is_url(name) {
        return match file_url_path(name) {
            Some(path) => ReqKind::Local(path),
            None => ReqKind::Url(text.to_owned()),
        };
    }
    let path = absolute(cwd, &expand_tilde(name));
    let path_str = path.to_string_lossy();
    let no_extras = match path_str
        .strip_suffix(']')
        .and_then(|p| p.rfind('[').map(|at| &p[..at]))
    {
        Some(base) if !base.is_empty() => PathBuf::from(base),
        _ => path.clone(),
    };
    let looks_like_path = name.contains('/') || name.starts_with('.');
    if looks_like_path && no_extras.is_dir() {
        return ReqKind::Local(no_extras);
    }
    if is_archive(&no_extras.to_string_lossy()) {
        if no_extras.is_file() {
            return ReqKind::Local(no_extras);
        }
        let url_like = name
            .split_once('@')
            .is_some_and(|(before, _)| !(before.contains('/') || before.starts_with('.')));
        if !url_like {
            return ReqKind::Local(no_extras);
        }
    }
    if let Some((_, after)) = name.split_once('@') {
        let target = after.trim();
        if is_url(target) {
            return match file_url_path(target) {
                Some(path) => ReqKind::Local(path),
                None => ReqKind::Url(text.to_owned()),
            };
        }
    }
    ReqKind::Name(text.to_owned())
}

/// `-e VALUE`: a local folder (with optional `[extras]`), a `file:` URL, or a VCS URL.
pub(crate) fn classify_editable(value: &str, cwd: &Path) -> ReqKind {
    if let Some(path) = file_url_path(value) {
        return ReqKind::Local(path);
    }
    if is_remote(value) {
        return ReqKind::Url(value.to_owned());
    }
    let no_extras = match value
        .strip_suffix(']')
        .and_then(|v| v.rfind('[').map(|at| &v[..at]))
    {
        Some(base) if !base.is_empty() => base,
        _ => value,
    };
    ReqKind::Local(absolute(cwd, &expand_tilde(no_extras)))
}

/// pip's archive extensions.
fn is_archive(name: &str) -> bool {
    const EXTENSIONS: &[&str] = &[
        ".zip",
        ".whl",
        ".tar.bz2",
        ".tbz",
        ".tar.gz",
        ".tgz",
        ".tar",
        ".tar.xz",
        ".txz",
        ".tlz",
        ".tar.lz",
        ".tar.lzma",
    ];
    let lower = name.to_ascii_lowercase();
    EXTENSIONS.iter().any(|e| lower.ends_with(e))
}

/// Python's `strtobool`.
fn strtobool(value: &str) -> bool {
    matches!(
        value.trim().to_ascii_lowercase().as_str(),
        "y" | "yes" | "t" | "true" | "on" | "1"
    )
}

// ---------------------------------------------------------------------------------------------
// pip.conf

/// pip config files read as Python's `RawConfigParser` reads them: `[section]`s, `key = value`
/// or `key: value`, indented continuation lines, `#`/`;` comment lines, no inline comments.
/// Keys are normalised as pip does (lowercase, `_` → `-`); later files override earlier ones.
#[derive(Debug, Default)]
struct IniConfig {
    sections: BTreeMap<String, Vec<(String, String)>>,
}

impl IniConfig {
    fn load(files: &[PathBuf]) -> Result<IniConfig, ManagerError> {
        let mut config = IniConfig::default();
        for file in files {
            let text = match std::fs::read(file) {
                Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::NotFound | std::io::ErrorKind::NotADirectory
                    ) =>
                {
                    continue
                }
                Err(source) => {
                    return Err(ManagerError::Read {
                        path: file.clone(),
                        source,
                    })
                }
            };
            config.merge(&text);
        }
        Ok(config)
    }

    fn merge(&mut self, text: &str) {
        // (section, key, value) in file order; `DEFAULT` values fill every section.
        let mut entries: Vec<(String, String, String)> = Vec::new();
        let mut section: Option<String> = None;
        for line in text.lines() {
            let trimmed = line.trim();
            if trimmed.is_empty() || trimmed.starts_with(['#', ';']) {
                continue;
            }
            let indented = line.starts_with([' ', '\t']);
            if indented {
                if let Some((_, _, value)) = entries.last_mut() {
                    value.push('\n');
                    value.push_str(trimmed);
                    continue;
                }
            }
            if let Some(name) = trimmed.strip_prefix('[').and_then(|t| t.strip_suffix(']')) {
                section = Some(name.to_owned());
                continue;
            }
            let (Some(section), Some(at)) = (&section, trimmed.find(['=', ':'])) else {
                continue;
            };
            let key = trimmed[..at].trim().to_ascii_lowercase().replace('_', "-");
            entries.push((section.clone(), key, trimmed[at + 1..].trim().to_owned()));
        }
        let defaults: Vec<(String, String)> = entries
            .iter()
            .filter(|(s, ..)| s == "DEFAULT")
            .map(|(_, k, v)| (k.clone(), v.clone()))
            .collect();
        let mut seen: Vec<String> = Vec::new();
        for (section, key, value) in entries.into_iter().filter(|(s, ..)| s != "DEFAULT") {
            if !seen.contains(&section) {
                seen.push(section.clone());
            }
            self.set(&section, key, value);
        }
        for section in seen {
            for (key, value) in &defaults {
                if self.get(&section, key).is_none() {
                    self.set(&section, key.clone(), value.clone());
                }
            }
        }
    }

    fn set(&mut self, section: &str, key: String, value: String) {
        let keys = self.sections.entry(section.to_owned()).or_default();
        keys.retain(|(k, _)| *k != key);
        keys.push((key, value));
    }

    /// A non-empty value (pip ignores empty ones).
    fn get(&self, section: &str, key: &str) -> Option<&str> {
        self.sections
            .get(section)?
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
            .filter(|v| !v.is_empty())
    }
}

#[cfg(test)]
mod tests;
