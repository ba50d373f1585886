//! pnpm (9 and 10, the JavaScript pnpm): which commands fetch package code (`add`, `install`,
//! `update`, `dlx`), where pnpm's packages come from, and the arguments that make the real
//! pnpm resolve and install through the guard index only.
//!
//! pnpm reads its registries from the same places as npm (the command line, `npm_config_*`
//! variables, the project, user and global `.npmrc`), so [`pnpm_config`] reuses npm's reader
//! ([`super::npm::npm_config_with`]) and adds what is pnpm's own: the default `@jsr` scope
//! (`https://npm.jsr.io/`), and refusals for what Cerebro does not read as pnpm would (pnpm's
//! global `rc` file or `pnpm-workspace.yaml` naming a registry, `pnpm_config_*` registry
//! variables, workspaces).
//!
//! The command line is read with pnpm's rules: options anywhere before the command and after
//! it, `--key=value`, `--no-<flag>`, `--config.<key>=<value>`, and for `dlx` everything from
//! the command word on belongs to the command.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use reqwest::Url;

use super::npm::{self, NpmConfig};
use super::{absolute, expand_tilde, ManagerError};

/// pnpm's default registry for the `@jsr` scope.
pub const JSR_REGISTRY: &str = "https://npm.jsr.io/";

/// The major versions of pnpm whose command line and configuration Cerebro reads.
pub const SUPPORTED_MAJORS: [u64; 2] = [9, 10];

/// What a pnpm command line asks for.
#[derive(Debug, Clone)]
pub enum PnpmCommand {
    /// `add`, `install`/`i`, `update`/`up`/`upgrade`, or `dlx`.
    Install(PnpmInstall),
    /// Anything else: passed to the real pnpm untouched.
    Other,
}

/// The kind of command, which decides how the guard resolves it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PnpmKind {
    Add,
    Install,
    Update,
    /// `dlx`: fetches packages into a temporary project and runs one of their bins; also
    /// `create NAME`, which is `dlx create-NAME`.
    Dlx,
}

/// A pnpm command line that fetches packages, understood.
#[derive(Debug, Clone)]
pub struct PnpmInstall {
    /// The user's arguments, whole (after `pnpm`).
    pub args: Vec<OsString>,
    pub kind: PnpmKind,
    /// Where the command word is in `args`.
    command_at: usize,
    /// `add`/`update`: the package specs; `dlx`: what pnpm fetches (every `--package`, else
    /// the command word).
    pub packages: Vec<String>,
    /// `--frozen-lockfile` (the last one wins; `--no-frozen-lockfile` is false).
    pub frozen: Option<bool>,
    pub global: bool,
    /// `-C`/`--dir`, absolute.
    pub dir: Option<PathBuf>,
    /// `-r`, `--filter`, `-w`: a workspace command.
    pub workspace: bool,
    /// Registry settings from the command line, `(key, value)` (`registry`,
    /// `@scope:registry`, `//host/:_authToken`).
    pub registry_settings: Vec<(String, String)>,
    /// The working folder the command was parsed in.
    pub cwd: PathBuf,
    /// Argument ranges that set registry or cache settings, dropped from the hand-over.
    dropped: Vec<(usize, usize)>,
}

impl PnpmInstall {
    /// The folder pnpm works in: `--dir` when given, else the working folder.
    pub fn dir(&self) -> &Path {
        self.dir.as_deref().unwrap_or(&self.cwd)
    }
}

/// Options (pnpm 10's, across the guarded commands) that take a value as the next word.
const VALUE_OPTIONS: &[&str] = &[
    "dir",
    "filter",
    "filter-prod",
    "loglevel",
    "reporter",
    "registry",
    "store-dir",
    "cache-dir",
    "virtual-store-dir",
    "virtual-store-dir-max-length",
    "modules-dir",
    "lockfile-dir",
    "global-dir",
    "global-bin-dir",
    "network-concurrency",
    "child-concurrency",
    "workspace-concurrency",
    "node-linker",
    "package-import-method",
    "resolution-mode",
    "hoist-pattern",
    "public-hoist-pattern",
    "depth",
    "allow-build",
    "package",
    "pnpmfile",
    "global-pnpmfile",
    "test-pattern",
    "changed-files-ignore-pattern",
    "fetch-timeout",
    "fetch-retries",
    "fetch-retry-factor",
    "fetch-retry-mintimeout",
    "fetch-retry-maxtimeout",
    "proxy",
    "https-proxy",
    "noproxy",
    "cafile",
    "ca",
    "cert",
    "key",
    "userconfig",
    "globalconfig",
    "npm-path",
    "use-node-version",
    "node-version",
    "save-prefix",
    "trust-policy",
    "minimum-release-age",
    "cpu",
    "os",
    "libc",
];

/// Flags (no value) pnpm knows on the guarded commands, and its one-letter shorthands.
const FLAGS: &[&str] = &[
    "recursive",
    "workspace-root",
    "global",
    "frozen-lockfile",
    "prefer-frozen-lockfile",
    "lockfile-only",
    "fix-lockfile",
    "ignore-scripts",
    "ignore-pnpmfile",
    "ignore-workspace",
    "offline",
    "prefer-offline",
    "production",
    "prod",
    "dev",
    "optional",
    "save-dev",
    "save-prod",
    "save-optional",
    "save-peer",
    "save-exact",
    "save-workspace-protocol",
    "workspace",
    "latest",
    "interactive",
    "shamefully-hoist",
    "strict-peer-dependencies",
    "side-effects-cache",
    "side-effects-cache-readonly",
    "verify-store-integrity",
    "force",
    "merge-git-branch-lockfiles",
    "resolution-only",
    "shell-mode",
    "stream",
    "use-stderr",
    "aggregate-output",
    "color",
    "silent",
    "parallel",
    "sequential",
    "link-workspace-packages",
    "shared-workspace-lockfile",
    "dedupe-peer-dependents",
    "include-workspace-root",
    "fail-if-no-match",
    "use-running-store-server",
    "strict-ssl",
    "lockfile",
    "frozen-shrinkwrap",
    "no-optional",
    "help",
    "version",
    "check",
];

/// pnpm's shorthands: letter → option.
const SHORT: &[(&str, &str)] = &[
    ("C", "dir"),
    ("F", "filter"),
    ("r", "recursive"),
    ("w", "workspace-root"),
    ("g", "global"),
    ("D", "save-dev"),
    ("P", "save-prod"),
    ("O", "save-optional"),
    ("E", "save-exact"),
    ("L", "latest"),
    ("i", "interactive"),
    ("c", "shell-mode"),
    ("s", "silent"),
    ("h", "help"),
    ("v", "version"),
];

/// One option read from the command line.
struct Opt {
    key: String,
    value: String,
    start: usize,
    end: usize,
}

/// Parses the arguments given to `pnpm` (without `pnpm` itself) in folder `cwd`.
pub fn parse_in(args: &[OsString], cwd: &Path) -> Result<PnpmCommand, ManagerError> {
    let mut words = Vec::with_capacity(args.len());
    for arg in args {
        let Some(word) = arg.to_str() else {
            return Err(ManagerError::Argument {
                manager: "pnpm",
                reason: format!(
                    "the argument {} is not UTF-8, which pnpm would read otherwise",
                    arg.to_string_lossy()
                ),
            });
        };
        words.push(word.to_owned());
    }
    let mut opts: Vec<Opt> = Vec::new();
    let mut positional: Vec<(usize, String)> = Vec::new();
    let mut command: Option<(usize, PnpmKind)> = None;
    let mut i = 0;
    while i < words.len() {
        let word = &words[i];
        if word == "--" {
            positional.extend(
                words[i + 1..]
                    .iter()
                    .cloned()
                    .enumerate()
                    .map(|(k, w)| (i + 1 + k, w)),
            );
            break;
        }
        if !(word.starts_with('-') && word.len() > 1) {
            if command.is_none() {
                let kind = match word.as_str() {
                    "add" => PnpmKind::Add,
                    "install" | "i" | "install-test" | "it" | "dedupe" => PnpmKind::Install,
                    "update" | "up" | "upgrade" => PnpmKind::Update,
                    "dlx" | "create" => PnpmKind::Dlx,
                    _ => return Ok(PnpmCommand::Other),
                };
                command = Some((i, kind));
                i += 1;
                continue;
            }
            if command.is_some_and(|(_, k)| k == PnpmKind::Dlx) {
                // The command to run, and its own arguments: not pnpm's.
                positional.push((i, word.clone()));
                break;
            }
            positional.push((i, word.clone()));
            i += 1;
            continue;
        }
        let (name, inline) = match word.split_once('=') {
            Some((n, v)) => (n.to_owned(), Some(v.to_owned())),
            None => (word.clone(), None),
        };
        let (key, negated) = if let Some(long) = name.strip_prefix("--") {
            match long.strip_prefix("no-") {
                Some(rest) if FLAGS.contains(&rest) => (rest.to_owned(), true),
                _ => (long.to_owned(), false),
            }
        } else {
            // `-C dir`, `-Cdir` is not pnpm's; clusters of flags (`-gD`) are.
            let letters = &name[1..];
            let mut keys = Vec::new();
            for c in letters.chars() {
                let found = SHORT
                    .iter()
                    .find(|(s, _)| s.starts_with(c))
                    .map(|(_, k)| *k);
                match found {
                    Some(k) => keys.push(k),
                    None => {
                        return Err(ManagerError::Argument {
                            manager: "pnpm",
                            reason: format!("cannot read the option {word} as pnpm would"),
                        })
                    }
                }
            }
            if keys.len() > 1 {
                if keys.iter().any(|k| VALUE_OPTIONS.contains(k)) || inline.is_some() {
                    return Err(ManagerError::Argument {
                        manager: "pnpm",
                        reason: format!("cannot read the option {word} as pnpm would"),
                    });
                }
                for k in keys {
                    opts.push(Opt {
                        key: k.to_owned(),
                        value: "true".into(),
                        start: i,
                        end: i + 1,
                    });
                }
                i += 1;
                continue;
            }
            (keys[0].to_owned(), false)
        };
        let takes_value = VALUE_OPTIONS.contains(&key.as_str())
            || key.starts_with("config.")
            || key.ends_with(":registry")
            || key.starts_with("//");
        let known = takes_value || FLAGS.contains(&key.as_str());
        if !known && (command.is_none() || command.is_some_and(|(_, k)| k == PnpmKind::Dlx)) {
            // Where the command word or what dlx fetches depends on it, an option Cerebro
            // does not know could hide either.
            return Err(ManagerError::Argument {
                manager: "pnpm",
                reason: format!(
                    "cannot tell whether the option {name} takes a value, as pnpm would: \
                     write it as {name}=VALUE, or after the command"
                ),
            });
        }
        let (value, end) = match inline {
            Some(v) => (v, i + 1),
            None if takes_value => match words.get(i + 1) {
                Some(v) => (v.clone(), i + 2),
                None => {
                    return Err(ManagerError::MissingValue {
                        manager: "pnpm",
                        option: name,
                    })
                }
            },
            None => ((!negated).to_string(), i + 1),
        };
        let key = key
            .strip_prefix("config.")
            .map(str::to_owned)
            .unwrap_or(key);
        opts.push(Opt {
            key,
            value,
            start: i,
            end,
        });
        i = end;
    }
    let Some((command_at, kind)) = command else {
        return Ok(PnpmCommand::Other);
    };
    if words[command_at] == "dedupe" {
        let on = |key: &str| opts.iter().any(|o| o.key == key && o.value == "true");
        if on("check") || on("help") {
            return Ok(PnpmCommand::Other);
        }
        return Err(ManagerError::Argument {
            manager: "pnpm",
            reason: "`pnpm dedupe` re-resolves and installs in one go, which Cerebro cannot \
                     judge first: run `pnpm dedupe --check`, then `pnpm install` with the \
                     changes, or run it with CEREBRO_POLICY=off"
                .into(),
        });
    }
    let mut install = PnpmInstall {
        args: args.to_vec(),
        kind,
        command_at,
        packages: Vec::new(),
        frozen: None,
        global: false,
        dir: None,
        workspace: false,
        registry_settings: Vec::new(),
        cwd: cwd.to_owned(),
        dropped: Vec::new(),
    };
    let create = words[command_at] == "create";
    let mut dlx_packages = Vec::new();
    for opt in &opts {
        let on = opt.value == "true";
        match opt.key.as_str() {
            "help" | "version" if on => return Ok(PnpmCommand::Other),
            "lockfile-only" | "resolution-only" if on && kind != PnpmKind::Dlx => {
                return Ok(PnpmCommand::Other)
            }
            "frozen-lockfile" => install.frozen = Some(on),
            "global" => install.global = on,
            "dir" => install.dir = Some(absolute(cwd, &expand_tilde(&opt.value))),
            "recursive" | "workspace-root" if on => install.workspace = true,
            "filter" | "filter-prod" => install.workspace = true,
            "interactive" if on && kind == PnpmKind::Update => {
                return Err(ManagerError::Argument {
                    manager: "pnpm",
                    reason: "`pnpm update --interactive` chooses while it installs, which \
                             Cerebro cannot judge first: name the packages to update instead"
                        .into(),
                })
            }
            "shell-mode"
                if on && kind == PnpmKind::Dlx && !opts.iter().any(|o| o.key == "package") =>
            {
                return Err(ManagerError::Argument {
                    manager: "pnpm",
                    reason: "`pnpm dlx -c` without --package: name the package to fetch \
                             with --package"
                        .into(),
                });
            }
            "package" if kind == PnpmKind::Dlx && !create => dlx_packages.push(opt.value.clone()),
            "cache-dir" => install.dropped.push((opt.start, opt.end)),
            key if key == "registry" || key.ends_with(":registry") || key.starts_with("//") => {
                install
                    .registry_settings
                    .push((key.to_owned(), opt.value.clone()));
                install.dropped.push((opt.start, opt.end));
            }
            _ => {}
        }
    }
    install.packages = if kind == PnpmKind::Dlx {
        if dlx_packages.is_empty() {
            match positional.first() {
                Some((_, word)) if create => vec![create_name(word)],
                Some((_, word)) => vec![word.clone()],
                // pnpm says what is missing itself.
                None => return Ok(PnpmCommand::Other),
            }
        } else {
            dlx_packages
        }
    } else {
        positional.into_iter().map(|(_, w)| w).collect()
    };
    Ok(PnpmCommand::Install(install))
}

/// The package `pnpm create NAME` runs (pnpm's `convertToCreateName`): `create-NAME`,
/// `@scope/create-NAME` for `@scope/NAME`, `@scope/create` for `@scope`, a version kept.
fn create_name(name: &str) -> String {
    let prefixed = |n: &str| {
        if n.starts_with("create-") {
            n.to_owned()
        } else {
            format!("create-{n}")
        }
    };
    if !name.starts_with('@') {
        return prefixed(name);
    }
    let (scoped, version) = match name[1..].find('@') {
        Some(at) => name.split_at(at + 1),
        None => (name, ""),
    };
    match scoped.split_once('/') {
        Some((scope, rest)) if !rest.is_empty() => format!("{scope}/{}{version}", prefixed(rest)),
        Some((scope, _)) => format!("{scope}/create{version}"),
        None => format!("{scoped}/create{version}"),
    }
}

/// Where pnpm's packages come from for this command: npm's configuration read for pnpm's
/// folder (see the module), with `@jsr` added when nothing names its registry.
pub fn pnpm_config(
    install: &PnpmInstall,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<NpmConfig, ManagerError> {
    let names: Vec<String> = std::env::vars_os()
        .filter_map(|(name, _)| name.into_string().ok())
        .collect();
    pnpm_config_with(install, env, &names)
}

/// [`pnpm_config`] with the environment's variable names given.
pub fn pnpm_config_with(
    install: &PnpmInstall,
    env: &dyn Fn(&str) -> Option<String>,
    env_names: &[String],
) -> Result<NpmConfig, ManagerError> {
    let refuse = |reason: String| ManagerError::Argument {
        manager: "pnpm",
        reason,
    };
    for name in env_names {
        let lower = name.to_ascii_lowercase();
        if lower.starts_with("pnpm_config_")
            && (lower.contains("registr") || lower.contains("_auth"))
        {
            return Err(refuse(format!(
                "cannot read {name} as pnpm would: set npm_config_{} instead",
                &name[12..]
            )));
        }
    }
    // pnpm's own global config file (`pnpm config set --global`).
    let config_home = env("XDG_CONFIG_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| env("HOME").map(|h| Path::new(&h).join(".config")));
    // On macOS pnpm keeps it in ~/Library/Preferences/pnpm.
    let mac = env("HOME").map(|h| Path::new(&h).join("Library/Preferences/pnpm/rc"));
    for rc in [config_home.map(|d| d.join("pnpm").join("rc")), mac]
        .into_iter()
        .flatten()
    {
        if let Ok(text) = std::fs::read_to_string(&rc) {
            if text.lines().any(registry_line) {
                return Err(refuse(format!(
                    "{} sets a registry, credentials or a cache folder, which Cerebro does \
                     not read as pnpm would: move them to ~/.npmrc",
                    rc.display()
                )));
            }
        }
    }
    let dir = install.dir();
    if !install.global {
        if let Some(workspace) = workspace_file(dir) {
            let text =
                std::fs::read_to_string(&workspace).map_err(|source| ManagerError::Read {
                    path: workspace.clone(),
                    source,
                })?;
            let doc: serde_yaml::Value = serde_yaml::from_str(&text)
                .map_err(|e| refuse(format!("cannot read {}: {e}", workspace.display())))?;
            let has = |key: &str| doc.get(key).is_some();
            if has("packages") || workspace.parent() != Some(project_root(dir).as_path()) {
                return Err(refuse(format!(
                    "pnpm workspaces ({}) are not guarded yet: install in a project outside \
                     the workspace, or run pnpm directly",
                    workspace.display()
                )));
            }
            let lower = text.to_ascii_lowercase();
            if ["registr", "cachedir", "cache-dir", "_auth"]
                .iter()
                .any(|w| lower.contains(w))
            {
                return Err(refuse(format!(
                    "{} names a registry, credentials or a cache folder, which Cerebro does \
                     not read as pnpm would: move them to .npmrc",
                    workspace.display()
                )));
            }
        }
    }
    let mut words: Vec<OsString> = vec!["install".into()];
    if install.global {
        words.push("--global".into());
    }
    for (key, value) in &install.registry_settings {
        words.push(format!("--{key}={value}").into());
    }
    let npm_install = match npm::parse_in(&words, dir)? {
        npm::NpmCommand::Install(i) => i,
        _ => {
            return Err(refuse(
                "cannot read the registry options as pnpm would".to_owned(),
            ))
        }
    };
    let mut config = npm::npm_config_with(&project_root(dir), &npm_install, env, env_names)?;
    if !config.scopes.contains_key("@jsr") {
        let jsr = Url::parse(JSR_REGISTRY).expect("valid URL");
        config.scopes.insert("@jsr".to_owned(), jsr);
    }
    Ok(config)
}

/// Whether an `.npmrc`-style line sets a registry, credentials or the cache folder.
fn registry_line(line: &str) -> bool {
    let key = line
        .split('=')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    key == "registry"
        || key.ends_with(":registry")
        || key.starts_with("//")
        || key.contains("_auth")
        || key == "cache-dir"
}

/// The project folder: the nearest folder from `dir` up with a `package.json`, else `dir`.
pub fn project_root(dir: &Path) -> PathBuf {
    dir.ancestors()
        .find(|d| d.join("package.json").is_file())
        .unwrap_or(dir)
        .to_path_buf()
}

/// The nearest `pnpm-workspace.yaml` from `dir` up, as pnpm looks for it.
pub fn workspace_file(dir: &Path) -> Option<PathBuf> {
    dir.ancestors()
        .map(|d| d.join("pnpm-workspace.yaml"))
        .find(|f| f.is_file())
}

/// The user's arguments for the real pnpm, fetching through the guard only: the registry
/// and `--cache-dir` settings removed, then, right after the command word (except for `dlx`:
/// see [`guarded_env`]), `--registry=<guard>`, `--@scope:registry=<guard>` for every scope
/// configured (and `@jsr`), and `--cache-dir=<cache>`: pnpm's metadata cache (and `dlx`'s
/// installs) in the guard's scratch folder, so that nothing cached from an earlier run
/// stands in for what the guard serves now.
pub fn guarded_args(
    install: &PnpmInstall,
    config: &NpmConfig,
    guard: &Url,
    cache: &Path,
) -> Vec<OsString> {
    let mut out = Vec::with_capacity(install.args.len() + 6);
    for (i, arg) in install.args.iter().enumerate() {
        if install.dropped.iter().any(|&(s, e)| i >= s && i < e) {
            continue;
        }
        out.push(arg.clone());
        if i == install.command_at && install.kind != PnpmKind::Dlx {
            out.extend(guard_flags(config, guard, cache));
        }
    }
    out
}

/// The environment of the hand-over: for `dlx`, which takes no `--registry` or
/// `--cache-dir` on its command line, the same settings as `npm_config_*` variables (which
/// pnpm reads over every `.npmrc`), in both spellings so that neither of the user's wins.
pub fn guarded_env(
    install: &PnpmInstall,
    config: &NpmConfig,
    guard: &Url,
    cache: &Path,
) -> Vec<(OsString, OsString)> {
    if install.kind != PnpmKind::Dlx {
        return Vec::new();
    }
    let mut settings: Vec<(String, String)> = vec![("registry".into(), guard.to_string())];
    for scope in config.scopes.keys() {
        settings.push((format!("{scope}:registry"), guard.to_string()));
    }
    settings.push(("cache_dir".into(), cache.display().to_string()));
    let mut out = Vec::new();
    for (key, value) in settings {
        for prefix in ["npm_config_", "NPM_CONFIG_"] {
            let key = if prefix.starts_with('N') && !key.starts_with('@') {
                key.to_ascii_uppercase()
            } else {
                key.clone()
            };
            out.push((format!("{prefix}{key}").into(), value.clone().into()));
        }
    }
    out
}

/// The resolution run, in a scratch copy of the project: `add` (of what `dlx` fetches, for
/// `dlx`; of the user's specs for `add`), `install` or `update` with the guard's registry
/// flags and `--lockfile-only --ignore-scripts`, which fetches the metadata through the guard
/// and writes `pnpm-lock.yaml` without installing or running anything. `-C`/`--dir` and
/// `-g` are dropped, so that pnpm works in the scratch folder.
pub fn resolve_args(
    install: &PnpmInstall,
    config: &NpmConfig,
    guard: &Url,
    cache: &Path,
) -> Vec<OsString> {
    let mut out: Vec<OsString> = Vec::new();
    if install.kind == PnpmKind::Dlx {
        out.push("add".into());
        out.extend(guard_flags(config, guard, cache));
        out.push("--".into());
        out.extend(install.packages.iter().map(OsString::from));
    } else {
        let words: Vec<String> = install
            .args
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        let mut i = 0;
        while i < words.len() {
            let w = &words[i];
            if install.dropped.iter().any(|&(s, e)| i >= s && i < e) {
                i += 1;
                continue;
            }
            if w == "-C" || w == "--dir" {
                i += 2;
                continue;
            }
            if w.starts_with("--dir=") || w == "-g" || w == "--global" || w.starts_with("--global=")
            {
                i += 1;
                continue;
            }
            if i == install.command_at {
                // `install-test` resolves as `install`: the tests run after the hand-over.
                out.push(match w.as_str() {
                    "it" | "install-test" => "install".into(),
                    _ => w.into(),
                });
                out.extend(guard_flags(config, guard, cache));
            } else {
                out.push(w.into());
            }
            i += 1;
        }
    }
    for flag in ["--lockfile-only", "--ignore-scripts"] {
        // Before any `--`, where pnpm reads options.
        match out.iter().position(|a| a == "--") {
            Some(at) => out.insert(at, flag.into()),
            None => out.push(flag.into()),
        }
    }
    out
}

fn guard_flags(config: &NpmConfig, guard: &Url, cache: &Path) -> Vec<OsString> {
    let guard = guard.as_str();
    let mut out: Vec<OsString> = vec![format!("--registry={guard}").into()];
    for scope in config.scopes.keys() {
        out.push(format!("--{scope}:registry={guard}").into());
    }
    out.push(format!("--cache-dir={}", cache.display()).into());
    out
}

/// The version of the real pnpm at `path`, from the `package.json` of the package it runs
/// from (`…/pnpm/bin/pnpm.cjs`); `None` when that cannot be found.
pub fn version_of(path: &Path) -> Option<String> {
    let real = path.canonicalize().ok()?;
    let package = real.parent()?.parent()?.join("package.json");
    let text = std::fs::read_to_string(package).ok()?;
    let json: serde_json::Value = serde_json::from_str(&text).ok()?;
    (json["name"] == "pnpm" || json["name"] == "@pnpm/exe")
        .then(|| json["version"].as_str().map(str::to_owned))
        .flatten()
}

/// The major version of a `major.minor.patch` string.
pub fn major(version: &str) -> Option<u64> {
    version.split('.').next()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(words: &[&str]) -> PnpmCommand {
        let args: Vec<OsString> = words.iter().map(OsString::from).collect();
        parse_in(&args, Path::new("/work/app")).unwrap()
    }

    fn install(words: &[&str]) -> PnpmInstall {
        match parse(words) {
            PnpmCommand::Install(i) => i,
            PnpmCommand::Other => panic!("{words:?} is not guarded"),
        }
    }

    #[test]
    fn commands() {
        assert_eq!(install(&["add", "left-pad"]).kind, PnpmKind::Add);
        assert_eq!(install(&["i"]).kind, PnpmKind::Install);
        assert_eq!(
            install(&["install", "--frozen-lockfile"]).frozen,
            Some(true)
        );
        assert_eq!(install(&["up", "x"]).kind, PnpmKind::Update);
        assert_eq!(install(&["it"]).kind, PnpmKind::Install);
        assert!(matches!(parse(&["dedupe", "--check"]), PnpmCommand::Other));
        let args: Vec<OsString> = ["dedupe"].iter().map(OsString::from).collect();
        assert!(parse_in(&args, Path::new("/")).is_err());
        assert_eq!(
            install(&["--reporter", "silent", "add", "x"]).packages,
            ["x"]
        );
        assert_eq!(
            install(&["-C", "/tmp/p", "add", "x"]).dir(),
            Path::new("/tmp/p")
        );
        for other in [
            vec!["run", "build"],
            vec!["--version"],
            vec!["add", "--help"],
            vec!["install", "--lockfile-only"],
            vec!["exec", "tsc"],
            vec![],
        ] {
            assert!(matches!(parse(&other), PnpmCommand::Other), "{other:?}");
        }
    }

    #[test]
    fn dlx_reads_only_its_own_options() {
        let d = install(&["dlx", "cowsay", "--registry", "x", "hi"]);
        assert_eq!(d.packages, ["cowsay"]);
        assert!(d.registry_settings.is_empty());
        let d = install(&["dlx", "--package=a", "--package", "b@1", "run-it"]);
        assert_eq!(d.packages, ["a", "b@1"]);
    }

    #[test]
    fn registries_pnpm_reads_elsewhere_are_refused_and_jsr_is_fronted() {
        let tmp = tempfile::tempdir().unwrap();
        let home = tmp.path().join("home");
        let project = tmp.path().join("app");
        std::fs::create_dir_all(&project).unwrap();
        std::fs::create_dir_all(home.join(".config/pnpm")).unwrap();
        std::fs::write(project.join("package.json"), "{}").unwrap();
        std::fs::write(
            project.join(".npmrc"),
            "registry=https://r.example/\n@acme:registry=https://acme.example/\n",
        )
        .unwrap();
        let args: Vec<OsString> = ["add", "x"].iter().map(OsString::from).collect();
        let PnpmCommand::Install(i) = parse_in(&args, &project).unwrap() else {
            panic!("add is guarded")
        };
        let home_s = home.to_string_lossy().into_owned();
        let env = move |k: &str| (k == "HOME").then(|| home_s.clone());
        let config = pnpm_config_with(&i, &env, &[]).unwrap();
        assert_eq!(config.registry.as_str(), "https://r.example/");
        assert_eq!(config.scopes["@acme"].as_str(), "https://acme.example/");
        assert_eq!(config.scopes["@jsr"].as_str(), JSR_REGISTRY);
        let names = vec!["pnpm_config_registry".to_owned()];
        assert!(pnpm_config_with(&i, &env, &names).is_err());
        std::fs::write(home.join(".config/pnpm/rc"), "registry=https://other/\n").unwrap();
        assert!(pnpm_config_with(&i, &env, &[]).is_err());
        std::fs::remove_file(home.join(".config/pnpm/rc")).unwrap();
        std::fs::write(
            project.join("pnpm-workspace.yaml"),
            "onlyBuiltDependencies: [x]\n",
        )
        .unwrap();
        assert!(pnpm_config_with(&i, &env, &[]).is_ok());
        std::fs::write(
            project.join("pnpm-workspace.yaml"),
            "registry: https://o/\n",
        )
        .unwrap();
        assert!(pnpm_config_with(&i, &env, &[]).is_err());
        std::fs::write(project.join("pnpm-workspace.yaml"), "packages: ['p/*']\n").unwrap();
        assert!(pnpm_config_with(&i, &env, &[]).is_err());
    }

    #[test]
    fn create_runs_the_starter_package() {
        assert_eq!(
            install(&["create", "vite", "app"]).packages,
            ["create-vite"]
        );
        assert_eq!(create_name("create-x@2"), "create-x@2");
        assert_eq!(create_name("@s"), "@s/create");
        assert_eq!(create_name("@s/app@1.2"), "@s/create-app@1.2");
        assert_eq!(create_name("@s@3"), "@s/create@3");
    }

    #[test]
    fn unknown_options_before_what_decides_are_refused() {
        let args: Vec<OsString> = ["--mystery", "x", "add", "y"]
            .iter()
            .map(OsString::from)
            .collect();
        assert!(parse_in(&args, Path::new("/")).is_err());
        let args: Vec<OsString> = ["dlx", "--mystery", "x"]
            .iter()
            .map(OsString::from)
            .collect();
        assert!(parse_in(&args, Path::new("/")).is_err());
    }

    #[test]
    fn guarded_args_replace_registries_after_the_command() {
        let i = install(&[
            "dlx",
            "--registry=https://r/",
            "--cache-dir",
            "/c",
            "cli",
            "--registry=z",
        ]);
        let mut config = NpmConfig {
            registry: Url::parse("https://r/").unwrap(),
            scopes: Default::default(),
            auth: Vec::new(),
            cafile: None,
            strict_ssl: true,
        };
        config
            .scopes
            .insert("@jsr".into(), Url::parse(JSR_REGISTRY).unwrap());
        let guard = Url::parse("http://127.0.0.1:9/").unwrap();
        let got: Vec<String> = guarded_args(&i, &config, &guard, Path::new("/s"))
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        assert_eq!(got, ["dlx", "cli", "--registry=z"]);
        let env = guarded_env(&i, &config, &guard, Path::new("/s"));
        assert!(env.contains(&("npm_config_registry".into(), "http://127.0.0.1:9/".into())));
        assert!(env.contains(&(
            "NPM_CONFIG_@jsr:registry".into(),
            "http://127.0.0.1:9/".into()
        )));
        assert!(env.contains(&("NPM_CONFIG_CACHE_DIR".into(), "/s".into())));
        let r: Vec<String> = resolve_args(&i, &config, &guard, Path::new("/s"))
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        assert_eq!(r[0], "add");
        assert_eq!(
            &r[r.len() - 4..],
            ["--lockfile-only", "--ignore-scripts", "--", "cli"]
        );
    }
}
