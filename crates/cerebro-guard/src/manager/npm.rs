//! npm: which commands install, where npm's packages come from (`.npmrc` files, `npm_config_*`
//! variables, command-line settings), and the arguments that make the real npm resolve and
//! install through the guard index only.
//!
//! Parsing follows npm's own (nopt): settings anywhere on the line, `--key=value`, any
//! unambiguous abbreviation of a setting (`--regi=…` is `--registry`), shorthands (`-D`,
//! `-g`, `-C dir`, `-reg url`, clusters like `-gD`), `--no-<flag>`, and `--` ending them.

use std::collections::{BTreeMap, VecDeque};
use std::ffi::OsString;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use reqwest::Url;

use super::{absolute, expand_tilde, redact, ManagerError};

mod exec;
pub use exec::{npx_args, NpmExec};

/// npm's default registry.
pub const NPM_REGISTRY: &str = "https://registry.npmjs.org/";

/// What an npm command line asks for.
// One per process: the size of the variants does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone)]
pub enum NpmCommand {
    Install(NpmInstall),
    /// `npm exec` / `npm x` (and `npx`, rewritten by [`npx_args`]) that fetches packages to
    /// run one of their bins: judged like an install before the bin runs.
    Exec(NpmExec),
    /// Anything else (`run`, `test`, `ls`, `--version`, `install --help`, `install --dry-run`,
    /// `install --package-lock-only`, an `exec` of a bin already in `node_modules/.bin`,
    /// which fetch no package code): passed to the real npm untouched.
    Other,
}

/// The kind of install, which decides how the guard resolves it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NpmKind {
    /// `install` and its aliases (`i`, `add`, `isntall`, …), and `install-test` (`it`).
    Install,
    /// `ci` (`clean-install`, `ic`, `install-clean`, …) and `install-ci-test` (`cit`): the
    /// lockfile is the resolution.
    Ci,
    /// `update` (`up`, `upgrade`, `udpate`, `u`).
    Update,
    /// `exec` (`x`): the command line of an [`NpmExec`], not an install itself.
    Exec,
}

/// An npm install command line, understood.
#[derive(Debug, Clone)]
pub struct NpmInstall {
    /// The user's arguments, whole (after `npm`).
    pub args: Vec<OsString>,
    pub kind: NpmKind,
    /// The subcommand as npm resolves it: `install`, `install-test`, `ci`,
    /// `install-ci-test` or `update`.
    pub command: String,
    /// Registry package specs from the command line (`left-pad`, `@scope/x@^1`,
    /// `alias@npm:real@1`), as written.
    pub packages: Vec<String>,
    /// `-g`, `--global`, `--location=global`.
    pub global: bool,
    /// `-D`, `--save-dev`.
    pub save_dev: bool,
    /// `--registry` from the command line (the last one).
    pub registry: Option<String>,
    /// `--prefix`/`-C`, absolute.
    pub prefix: Option<PathBuf>,
    pub ignore_scripts: bool,
    /// `-w`/`--workspace` values.
    pub workspaces: Vec<String>,
    /// Local folders and tarballs to install (`./dir`, `../x.tgz`, `file:…`, `name@file:…`),
    /// absolute (relative to the working folder, as npm takes them).
    pub local_paths: Vec<PathBuf>,
    /// Git, GitHub-shorthand (`user/repo`) and tarball-URL specs: npm fetches them itself,
    /// past the registry, so the guard cannot front them and should refuse them.
    pub urls: Vec<String>,
    /// Every setting given on the command line, in order: `(key, value)`, keys in full
    /// (abbreviations and shorthands resolved), flags as `true`/`false`.
    pub cli_config: Vec<(String, String)>,
    /// The working folder the command was parsed in.
    pub cwd: PathBuf,
    /// Where the subcommand is in `args`.
    command_at: usize,
    /// Where a `--` ends the settings, if any.
    end_of_options: Option<usize>,
    /// What each argument set, to rebuild it without some settings.
    settings: Vec<Setting>,
}

/// One setting and the arguments it came from.
#[derive(Debug, Clone)]
struct Setting {
    /// The first and one-past-last argument it spans.
    start: usize,
    end: usize,
    key: String,
    value: String,
}

/// Where an npm install's packages come from, and the credentials for each registry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NpmConfig {
    /// The default registry (with a trailing `/`).
    pub registry: Url,
    /// Scoped registries: `"@scope"` → URL.
    pub scopes: BTreeMap<String, Url>,
    /// Credentials by nerf-dart (`//host[:port]/path/`, always ending in `/`) → the whole
    /// `Authorization` value (`Bearer …` or `Basic …`). npm ignores unscoped `_authToken`
    /// and `_auth` since v9; so does this.
    pub auth: Vec<(String, String)>,
    /// `cafile` (absolute).
    pub cafile: Option<PathBuf>,
    /// `strict-ssl` (default true).
    pub strict_ssl: bool,
}

impl NpmConfig {
    /// The registry npm uses for `package` (a name or spec; an `alias@npm:real` uses the real
    /// package's scope).
    pub fn registry_for(&self, package: &str) -> &Url {
        let name = match package.split_once("@npm:") {
            Some((_, real)) => real,
            None => package,
        };
        if let Some(scope) = name.strip_prefix('@').and_then(|rest| rest.split_once('/')) {
            if let Some(url) = self.scopes.get(&format!("@{}", scope.0)) {
                return url;
            }
        }
        &self.registry
    }

    /// The `Authorization` value for a request to `url`: the credentials whose nerf-dart is
    /// the longest prefix of the URL's `//host[:port]/path`, as npm-registry-fetch picks them.
    /// Never those of another host (every nerf-dart ends its host with `/`).
    pub fn auth_for(&self, url: &Url) -> Option<&str> {
        let nerf = nerf_dart_of(url)?;
        self.auth
            .iter()
            .filter(|(key, _)| nerf.starts_with(key.as_str()))
            .max_by_key(|(key, _)| key.len())
            .map(|(_, value)| value.as_str())
    }
}

/// `//host[:port]/path` of a URL (the whole path, for prefix matching).
fn nerf_dart_of(url: &Url) -> Option<String> {
    let host = url.host_str()?.to_ascii_lowercase();
    let port = url.port().map(|p| format!(":{p}")).unwrap_or_default();
    Some(format!("//{host}{port}{}", url.path()))
}

/// Parses the arguments given to `npm` (without `npm` itself), in the current folder.
pub fn parse(args: &[OsString]) -> Result<NpmCommand, ManagerError> {
    let cwd = std::env::current_dir().map_err(|source| ManagerError::Read {
        path: PathBuf::from("."),
        source,
    })?;
    parse_in(args, &cwd)
}

/// [`parse`] in folder `cwd`.
pub fn parse_in(args: &[OsString], cwd: &Path) -> Result<NpmCommand, ManagerError> {
    let words: Vec<String> = args
        .iter()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let parsed = nopt(&words);
    let mut positional = parsed.positional.iter();
    let Some(&(command_at, ref command)) = positional.next() else {
        return Ok(NpmCommand::Other);
    };
    let Some(command) = deref_command(command) else {
        return Ok(NpmCommand::Other);
    };
    let kind = match command.as_str() {
        "install" | "install-test" => NpmKind::Install,
        "ci" | "install-ci-test" => NpmKind::Ci,
        "update" => NpmKind::Update,
        "exec" => NpmKind::Exec,
        _ => return Ok(NpmCommand::Other),
    };
    let mut install = NpmInstall {
        args: args.to_vec(),
        kind,
        command,
        packages: Vec::new(),
        global: false,
        save_dev: false,
        registry: None,
        prefix: None,
        ignore_scripts: false,
        workspaces: Vec::new(),
        local_paths: Vec::new(),
        urls: Vec::new(),
        cli_config: Vec::new(),
        cwd: cwd.to_owned(),
        command_at,
        end_of_options: parsed.end_of_options,
        settings: parsed.settings.clone(),
    };
    for setting in &parsed.settings {
        let on = setting.value == "true";
        match setting.key.as_str() {
            // These print and exit, or fetch no package code.
            "usage" | "version" if on => return Ok(NpmCommand::Other),
            // `exec` runs with these as with any other setting.
            "dry-run" | "package-lock-only" if on && kind != NpmKind::Exec => {
                return Ok(NpmCommand::Other)
            }
            "global" => install.global = on,
            "location" => install.global = setting.value == "global",
            "save-dev" => install.save_dev = on,
            "ignore-scripts" => install.ignore_scripts = on,
            "registry" => install.registry = Some(setting.value.clone()),
            "prefix" => install.prefix = Some(absolute(cwd, &expand_tilde(&setting.value))),
            "workspace" => install.workspaces.push(setting.value.clone()),
            _ => {}
        }
        install
            .cli_config
            .push((setting.key.clone(), setting.value.clone()));
    }
    if kind == NpmKind::Exec {
        // Its positional words are the command to run, not packages.
        return Ok(match exec::parse_exec(&words, install, cwd)? {
            Some(exec) => NpmCommand::Exec(exec),
            None => NpmCommand::Other,
        });
    }
    for (_, spec) in positional {
        match classify_spec(spec, cwd) {
            Spec::Registry => install.packages.push(spec.clone()),
            Spec::Local(path) => install.local_paths.push(path),
            Spec::Url => install.urls.push(spec.clone()),
        }
    }
    Ok(NpmCommand::Install(install))
}

/// The user's arguments for the real npm, resolving and installing through the guard only:
/// every `--registry` (any spelling) and `--@scope:registry` removed, then, before any
/// `--`, `--registry=<guard>`, `--@scope:registry=<guard>` for every scope configured
/// anywhere (so scoped packages go through the guard too; the guard looks up each package's
/// real registry with [`NpmConfig::registry_for`]), and `--replace-registry-host=always`:
/// npm (≥ 8.15) then fetches a lockfile's `resolved` tarball URLs, whatever their host,
/// from the configured registry's origin instead, so lockfile installs go through the guard
/// as well. pacote rewrites them to `<guard origin><original path>` and arborist to
/// `<guard URL path><original path>`: the guard should serve npm at the root of its origin.
pub fn guarded_args(install: &NpmInstall, config: &NpmConfig, guard: &Url) -> Vec<OsString> {
    build_args(install, config, guard, false)
}

/// The resolution run, in a scratch copy of the project (`package.json`, lockfile,
/// `.npmrc`, workspace manifests): [`guarded_args`] plus `--package-lock-only
/// --ignore-scripts --no-audit --no-fund --no-update-notifier`, which fetches packuments
/// through the guard and writes the lockfile without fetching tarballs or running
/// anything. `--prefix`/`-C`,
/// `-g`/`--global` and `--location` are dropped, so npm works in the scratch folder: for a
/// global install, run it in an empty scratch folder, and the lockfile lists what `-g`
/// would install. For `ci` (and `install-ci-test`) the subcommand becomes `install`, as
/// `npm ci` has no lockfile-only mode: with a lockfile in sync it resolves to exactly that
/// lockfile; if the scratch lockfile comes out different, the real `npm ci` would refuse to
/// run anyway. `install-test` becomes `install` too.
pub fn resolve_args(install: &NpmInstall, config: &NpmConfig, guard: &Url) -> Vec<OsString> {
    build_args(install, config, guard, true)
}

fn build_args(
    install: &NpmInstall,
    config: &NpmConfig,
    guard: &Url,
    resolve: bool,
) -> Vec<OsString> {
    let is_registry = |key: &str| {
        key == "registry"
            || key == "replace-registry-host"
            || (key.starts_with('@') && key.ends_with(":registry"))
    };
    let is_location = |key: &str| matches!(key, "prefix" | "global" | "location");
    let drop = |key: &str| is_registry(key) || (resolve && is_location(key));
    let mut out: Vec<OsString> = Vec::with_capacity(install.args.len() + 8);
    let mut i = 0;
    while i < install.args.len() {
        if Some(i) == install.end_of_options {
            break;
        }
        let here: Vec<&Setting> = install.settings.iter().filter(|s| s.start == i).collect();
        if here.iter().any(|s| drop(&s.key)) {
            // Keep the rest of a shorthand cluster (`-gD` without `-g` is `--save-dev`).
            for s in here.iter().filter(|s| !drop(&s.key)) {
                out.push(format!("--{}={}", s.key, s.value).into());
            }
            i = here.iter().map(|s| s.end).max().unwrap_or(i + 1);
            continue;
        }
        if resolve && i == install.command_at && install.command != "update" {
            out.push("install".into());
        } else {
            out.push(install.args[i].clone());
        }
        i += 1;
    }
    let guard = guard.as_str();
    out.push(format!("--registry={guard}").into());
    for scope in config.scopes.keys() {
        out.push(format!("--{scope}:registry={guard}").into());
    }
    out.push("--replace-registry-host=always".into());
    if resolve {
        for flag in [
            "--package-lock-only",
            "--ignore-scripts",
            "--no-audit",
            "--no-fund",
            "--no-update-notifier",
        ] {
            out.push(flag.into());
        }
    }
    if let Some(end) = install.end_of_options {
        out.extend_from_slice(&install.args[end..]);
    }
    out
}

/// The folder npm works in for this install (its `localPrefix`): `--prefix` when given,
/// else the nearest folder from `cwd` up that holds `package.json` or `node_modules`, or
/// the root of the workspace set that lists it; `cwd` itself when there is none. The
/// project `.npmrc` is read there, and the guard copies that folder to resolve in scratch.
pub fn local_prefix(cwd: &Path, install: &NpmInstall) -> PathBuf {
    if let Some(prefix) = &install.prefix {
        return prefix.clone();
    }
    let mut found: Option<PathBuf> = None;
    for dir in cwd.ancestors() {
        let has_manifest = dir.join("package.json").is_file();
        match &found {
            None => {
                if has_manifest || dir.join("node_modules").is_dir() {
                    found = Some(dir.to_owned());
                    if install.global {
                        break;
                    }
                }
            }
            Some(inner) if has_manifest => {
                if workspace_root_lists(dir, inner) {
                    return dir.to_owned();
                }
            }
            Some(_) => {}
        }
    }
    found.unwrap_or_else(|| cwd.to_owned())
}

/// Whether `root/package.json` declares `member` among its `workspaces` (globs of folder
/// names, `*` one level, `**` any depth).
fn workspace_root_lists(root: &Path, member: &Path) -> bool {
    let Ok(text) = std::fs::read_to_string(root.join("package.json")) else {
        return false;
    };
    let Ok(json) = serde_json::from_str::<serde_json::Value>(&text) else {
        return false;
    };
    let patterns: Vec<&str> = match &json["workspaces"] {
        serde_json::Value::Array(list) => list.iter().filter_map(|v| v.as_str()).collect(),
        serde_json::Value::Object(o) => o
            .get("packages")
            .and_then(|p| p.as_array())
            .map(|list| list.iter().filter_map(|v| v.as_str()).collect())
            .unwrap_or_default(),
        _ => return false,
    };
    let Ok(relative) = member.strip_prefix(root) else {
        return false;
    };
    let parts: Vec<String> = relative
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    patterns.iter().any(|pattern| {
        let pattern: Vec<&str> = pattern
            .trim_start_matches("./")
            .split('/')
            .filter(|p| !p.is_empty())
            .collect();
        glob_parts(&pattern, &parts)
    })
}

fn glob_parts(pattern: &[&str], parts: &[String]) -> bool {
    match (pattern.first(), parts.first()) {
        (None, None) => true,
        (Some(&"**"), _) => {
            glob_parts(&pattern[1..], parts)
                || (!parts.is_empty() && glob_parts(pattern, &parts[1..]))
        }
        (Some(p), Some(part)) => glob_one(p, part) && glob_parts(&pattern[1..], &parts[1..]),
        _ => false,
    }
}

/// One path segment against a pattern with `*` wildcards.
fn glob_one(pattern: &str, text: &str) -> bool {
    match pattern.split_once('*') {
        None => pattern == text,
        Some((head, tail)) => {
            let Some(rest) = text.strip_prefix(head) else {
                return false;
            };
            (0..=rest.len())
                .filter(|&at| rest.is_char_boundary(at))
                .any(|at| glob_one(tail, &rest[at..]))
        }
    }
}

/// npm's configuration for this install, as npm would load it, with the process
/// environment: see [`npm_config_with`]. Scoped registries set only in the environment
/// (`npm_config_@scope:registry`) are found by the names of the process's variables.
pub fn npm_config(
    project: &Path,
    install: &NpmInstall,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<NpmConfig, ManagerError> {
    let names: Vec<String> = std::env::vars_os()
        .filter_map(|(name, _)| name.into_string().ok())
        .collect();
    npm_config_with(project, install, env, &names)
}

/// npm's configuration for an install run in folder `project`, highest precedence first:
/// the command line's settings; `npm_config_*` variables (any case; `env_names` lists the
/// variable names, their values come from `env`); the project `.npmrc` in
/// [`local_prefix`] (skipped for global installs, as npm does); the user `.npmrc`
/// (`userconfig`, default `~/.npmrc`); the global `npmrc` (`globalconfig`, default
/// `<prefix>/etc/npmrc`, the prefix from `prefix`, `$PREFIX`, or two folders above the real
/// `node`); npm's own `npmrc` beside the real npm; then `https://registry.npmjs.org/`.
/// `${VAR}` and `${VAR?}` in `.npmrc` keys and values are expanded from `env`.
pub fn npm_config_with(
    project: &Path,
    install: &NpmInstall,
    env: &dyn Fn(&str) -> Option<String>,
    env_names: &[String],
) -> Result<NpmConfig, ManagerError> {
    let home = env("HOME").filter(|h| !h.is_empty()).map(PathBuf::from);
    let resolve_path = |value: &str| -> PathBuf {
        match (value.strip_prefix("~/"), &home) {
            (Some(rest), Some(home)) => home.join(rest),
            _ => absolute(&install.cwd, Path::new(value)),
        }
    };
    let cli: Layer = install.cli_config.to_vec();
    let mut env_layer = Layer::new();
    for name in env_names {
        if name.len() <= 11 || !name[..11].eq_ignore_ascii_case("npm_config_") {
            continue;
        }
        let Some(value) = env(name).filter(|v| !v.is_empty()) else {
            continue;
        };
        let raw = &name[11..];
        let key = if raw.starts_with("//") {
            raw.to_owned()
        } else {
            let mut key = String::with_capacity(raw.len());
            for (i, c) in raw.chars().enumerate() {
                key.push(if c == '_' && i > 0 {
                    '-'
                } else {
                    c.to_ascii_lowercase()
                });
            }
            key
        };
        env_layer.push((key, value));
    }
    let pick = |layers: &[&Layer], key: &str| -> Option<String> {
        layers.iter().find_map(|layer| get(layer, key))
    };
    let global_mode = pick(&[&cli, &env_layer], "global").as_deref() == Some("true")
        || pick(&[&cli, &env_layer], "location").as_deref() == Some("global")
        || install.global;
    let default_user = home.as_ref().map(|h| h.join(".npmrc"));
    let early_user = pick(&[&cli, &env_layer], "userconfig")
        .map(|v| resolve_path(&v))
        .or_else(|| default_user.clone());
    let project_layer = if global_mode {
        Layer::new()
    } else {
        let file = local_prefix(project, install).join(".npmrc");
        if Some(&file) == early_user.as_ref() {
            Layer::new()
        } else {
            read_npmrc(&file, env)?
        }
    };
    let user_file = pick(&[&cli, &env_layer, &project_layer], "userconfig")
        .map(|v| resolve_path(&v))
        .or(default_user);
    let user_layer = match &user_file {
        Some(file) => read_npmrc(file, env)?,
        None => Layer::new(),
    };
    let real_npm = which_in_env("npm", env).and_then(|p| p.canonicalize().ok());
    let builtin_layer = match real_npm
        .as_deref()
        .filter(|p| p.file_name().is_some_and(|n| n == "npm-cli.js"))
        .and_then(|p| p.parent()?.parent())
    {
        Some(npm_dir) => read_npmrc(&npm_dir.join("npmrc"), env)?,
        None => Layer::new(),
    };
    let upper = [&cli, &env_layer, &project_layer, &user_layer];
    let global_file = pick(&upper, "globalconfig")
        .map(|v| resolve_path(&v))
        .or_else(|| {
            let prefix = pick(&upper, "prefix")
                .map(|v| resolve_path(&v))
                .or_else(|| pick(&[&builtin_layer], "prefix").map(|v| resolve_path(&v)))
                .or_else(|| env("PREFIX").filter(|p| !p.is_empty()).map(PathBuf::from))
                .or_else(|| {
                    let node = which_in_env("node", env)?.canonicalize().ok()?;
                    Some(node.parent()?.parent()?.to_owned())
                })?;
            Some(prefix.join("etc").join("npmrc"))
        })
        .or_else(|| pick(&[&builtin_layer], "globalconfig").map(|v| resolve_path(&v)));
    let global_layer = match &global_file {
        Some(file) => read_npmrc(file, env)?,
        None => Layer::new(),
    };
    let layers = [
        &cli,
        &env_layer,
        &project_layer,
        &user_layer,
        &global_layer,
        &builtin_layer,
    ];

    let registry_value = pick(&layers, "registry").unwrap_or_else(|| NPM_REGISTRY.to_owned());
    let registry = registry_url("npm registry", &registry_value)?;
    let mut scopes = BTreeMap::new();
    let mut nerfs: BTreeMap<String, BTreeMap<&'static str, String>> = BTreeMap::new();
    // Lowest precedence first, so that higher layers overwrite.
    for layer in layers.iter().rev() {
        for (key, value) in layer.iter() {
            if let Some(scope) = key.strip_suffix(":registry").filter(|s| s.starts_with('@')) {
                scopes.insert(scope.to_owned(), value.clone());
            } else if let Some((nerf, field)) =
                key.strip_prefix("//").and_then(|k| k.rsplit_once(':'))
            {
                let field = match field {
                    "_authToken" => "token",
                    "_auth" => "auth",
                    "username" => "username",
                    "_password" => "password",
                    _ => continue,
                };
                nerfs
                    .entry(normalise_nerf(nerf))
                    .or_default()
                    .insert(field, value.clone());
            }
        }
    }
    let scopes = scopes
        .into_iter()
        .map(|(scope, value)| {
            let url = registry_url(&format!("npm registry for {scope}"), &value)?;
            Ok((scope, url))
        })
        .collect::<Result<BTreeMap<_, _>, ManagerError>>()?;
    let b64 = &base64::engine::general_purpose::STANDARD;
    let auth = nerfs
        .into_iter()
        .filter_map(|(nerf, fields)| {
            let value = if let Some(token) = fields.get("token") {
                format!("Bearer {token}")
            } else if let Some(auth) = fields.get("auth") {
                format!("Basic {auth}")
            } else {
                let user = fields.get("username")?;
                let password = b64.decode(fields.get("password")?.trim()).ok()?;
                let password = String::from_utf8_lossy(&password);
                format!("Basic {}", b64.encode(format!("{user}:{password}")))
            };
            Some((nerf, value))
        })
        .collect();
    let cafile = pick(&layers, "cafile")
        .filter(|v| !v.is_empty() && v != "null")
        .map(|v| resolve_path(&v));
    let strict_ssl = pick(&layers, "strict-ssl").is_none_or(|v| v != "false");
    Ok(NpmConfig {
        registry,
        scopes,
        auth,
        cafile,
        strict_ssl,
    })
}

/// `//host[:port]/path/` from the part of a key between `//` and `:field`, host lowercased,
/// always ending in `/`.
fn normalise_nerf(nerf: &str) -> String {
    let (host, path) = match nerf.find('/') {
        Some(at) => (&nerf[..at], &nerf[at..]),
        None => (nerf, "/"),
    };
    let mut out = format!("//{}{path}", host.to_ascii_lowercase());
    if !out.ends_with('/') {
        out.push('/');
    }
    out
}

fn registry_url(what: &str, value: &str) -> Result<Url, ManagerError> {
    let mut value = value.trim().to_owned();
    if !value.ends_with('/') {
        value.push('/');
    }
    Url::parse(&value)
        .ok()
        .filter(|u| u.has_host())
        .ok_or_else(|| ManagerError::BadUrl {
            what: what.to_owned(),
            value: redact(&value),
            reason: "not an absolute http(s) URL".to_owned(),
        })
}

/// A program on `PATH` as `env` gives it, past Cerebro's shims.
fn which_in_env(tool: &str, env: &dyn Fn(&str) -> Option<String>) -> Option<PathBuf> {
    let path = env("PATH")?;
    let shims = env(super::real::SHIM_DIR_ENV).unwrap_or_default();
    super::real::find_real_in(tool, path.as_ref(), shims.as_ref()).ok()
}

// ---------------------------------------------------------------------------------------------
// .npmrc

/// One config source: `(key, value)` in file order (a later duplicate wins).
type Layer = Vec<(String, String)>;

fn get(layer: &Layer, key: &str) -> Option<String> {
    layer
        .iter()
        .rev()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.clone())
}

/// Reads an `.npmrc` as npm's `ini` does: `key = value` lines before any `[section]`,
/// `;`/`#` comment lines, an unquoted value cut at its first unescaped `;` or `#`, quoted
/// values JSON-decoded, `key[]` arrays (their last value kept), `${VAR}` expansion. A
/// missing file is an empty layer.
fn read_npmrc(path: &Path, env: &dyn Fn(&str) -> Option<String>) -> Result<Layer, ManagerError> {
    let text = match std::fs::read(path) {
        Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::NotFound | std::io::ErrorKind::NotADirectory
            ) =>
        {
            return Ok(Layer::new())
        }
        Err(source) => {
            return Err(ManagerError::Read {
                path: path.to_owned(),
                source,
            })
        }
    };
    Ok(parse_npmrc(&text, env))
}

fn parse_npmrc(text: &str, env: &dyn Fn(&str) -> Option<String>) -> Layer {
    let mut layer = Layer::new();
    for line in text.split(['\r', '\n']) {
        let trimmed = line.trim();
        if trimmed.is_empty() || trimmed.starts_with([';', '#']) {
            continue;
        }
        if trimmed.starts_with('[') && trimmed.ends_with(']') {
            // npm reads only the top level; keys in sections are not settings.
            break;
        }
        let (key, value) = match line.split_once('=') {
            Some((key, value)) => (unsafe_ini(key), unsafe_ini(value)),
            None => (unsafe_ini(line), "true".to_owned()),
        };
        let key = key.strip_suffix("[]").map(str::to_owned).unwrap_or(key);
        if key.is_empty() {
            continue;
        }
        layer.push((env_replace(&key, env), env_replace(&value, env)));
    }
    layer
}

/// ini's `unsafe`: trims; a quoted value is JSON-decoded (single quotes stripped first); an
/// unquoted one ends at the first unescaped `;` or `#`, with `\;` `\#` `\\` unescaped.
fn unsafe_ini(value: &str) -> String {
    let value = value.trim();
    let quoted = value.len() >= 2
        && ((value.starts_with('"') && value.ends_with('"'))
            || (value.starts_with('\'') && value.ends_with('\'')));
    if quoted {
        let inner = if value.starts_with('\'') {
            &value[1..value.len() - 1]
        } else {
            value
        };
        return match serde_json::from_str::<serde_json::Value>(inner) {
            Ok(serde_json::Value::String(s)) => s,
            _ => inner.to_owned(),
        };
    }
    let mut out = String::with_capacity(value.len());
    let mut escaped = false;
    for c in value.chars() {
        if escaped {
            if !matches!(c, '\\' | ';' | '#') {
                out.push('\\');
            }
            out.push(c);
            escaped = false;
        } else if c == ';' || c == '#' {
            break;
        } else if c == '\\' {
            escaped = true;
        } else {
            out.push(c);
        }
    }
    if escaped {
        out.push('\\');
    }
    out.trim().to_owned()
}

/// npm's `${VAR}` expansion: unset variables stay as written, `${VAR?}` becomes empty when
/// unset, and a backslash before `$` escapes it.
fn env_replace(text: &str, env: &dyn Fn(&str) -> Option<String>) -> String {
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    let mut copied = 0;
    while i < bytes.len() {
        if bytes[i] != b'$' || bytes.get(i + 1) != Some(&b'{') {
            i += 1;
            continue;
        }
        let Some(close) = text[i + 2..].find('}').map(|c| i + 2 + c) else {
            break;
        };
        let inner = &text[i + 2..close];
        let (name, optional) = match inner.strip_suffix('?') {
            Some(name) => (name, true),
            None => (inner, false),
        };
        if name.is_empty() || name.contains(['$', '{', '}', '?']) {
            i += 1;
            continue;
        }
        // Backslashes right before `${`: an odd count escapes the expression.
        let slashes = text[copied..i]
            .bytes()
            .rev()
            .take_while(|&b| b == b'\\')
            .count();
        let before = i - slashes;
        out.push_str(&text[copied..before]);
        out.push_str(&"\\".repeat(slashes / 2));
        if slashes % 2 == 1 {
            out.push_str(&text[i..=close]);
        } else {
            match env(name) {
                Some(value) => out.push_str(&value),
                None if optional => {}
                None => out.push_str(&text[i..=close]),
            }
        }
        i = close + 1;
        copied = i;
    }
    out.push_str(&text[copied..]);
    out
}

// ---------------------------------------------------------------------------------------------
// Command line

struct Parsed {
    settings: Vec<Setting>,
    /// `(argument index, word)` of every positional argument.
    positional: Vec<(usize, String)>,
    end_of_options: Option<usize>,
}

/// npm's command-line parsing (nopt with npm's types and shorthands).
fn nopt(words: &[String]) -> Parsed {
    let mut settings = Vec::new();
    let mut positional = Vec::new();
    let mut end_of_options = None;
    // (word, index of the argument it came from)
    let mut queue: VecDeque<(String, usize)> = words
        .iter()
        .enumerate()
        .map(|(i, w)| (w.clone(), i))
        .collect();
    while let Some((word, origin)) = queue.pop_front() {
        if word == "--" {
            end_of_options = Some(origin);
            positional.extend(queue.drain(..).map(|(w, i)| (i, w)));
            break;
        }
        if !(word.starts_with('-') && word.len() > 1) {
            positional.push((origin, word));
            continue;
        }
        let (name, inline) = match word.split_once('=') {
            Some((name, value)) => (name.to_owned(), Some(value.to_owned())),
            None => (word.clone(), None),
        };
        let bare = name.trim_start_matches('-');
        if let Some(expansion) = resolve_short(bare) {
            if let Some(value) = inline {
                queue.push_front((value, origin));
            }
            for token in expansion.into_iter().rev() {
                queue.push_front((token.to_owned(), origin));
            }
            continue;
        }
        let mut key = bare;
        let mut negated = false;
        while key.len() >= 3 && key[..3].eq_ignore_ascii_case("no-") {
            negated = !negated;
            key = &key[3..];
        }
        let key = resolve_key(key);
        let is_value = VALUE_KEYS.contains(&key.as_str());
        let is_bool = BOOL_KEYS.contains(&key.as_str()) || (!is_value && inline.is_none());
        let mut end = origin + 1;
        let value = if let Some(value) = inline {
            value
        } else if is_bool || negated {
            let explicit = queue
                .front()
                .filter(|(w, _)| w == "true" || w == "false")
                .map(|(w, _)| w == "true");
            let on = match explicit {
                Some(on) => {
                    let (_, at) = queue.pop_front().unwrap_or_default();
                    end = at + 1;
                    on
                }
                None => true,
            };
            (on != negated).to_string()
        } else {
            match queue.front() {
                Some((next, _)) if !(next.len() >= 2 && next.bytes().all(|b| b == b'-')) => {
                    let (value, at) = queue.pop_front().unwrap_or_default();
                    end = at + 1;
                    value
                }
                _ => "true".to_owned(),
            }
        };
        settings.push(Setting {
            start: origin,
            end,
            key,
            value,
        });
    }
    Parsed {
        settings,
        positional,
        end_of_options,
    }
}

/// nopt's `resolveShort`: a known shorthand (`D`, `reg`, `ws`), a cluster of one-letter
/// shorthands (`gD`), or an abbreviation of a shorthand name; `None` for settings.
fn resolve_short(arg: &str) -> Option<Vec<&'static str>> {
    if arg.is_empty() || is_key(arg) {
        return None;
    }
    if let Some((_, expansion)) = SHORTHANDS.iter().find(|(name, _)| *name == arg) {
        return Some(expansion.to_vec());
    }
    let singles: Option<Vec<&'static str>> = arg
        .chars()
        .map(|c| {
            SHORTHANDS
                .iter()
                .find(|(name, _)| name.len() == 1 && name.starts_with(c))
                .map(|(_, e)| e.to_vec())
        })
        .collect::<Option<Vec<Vec<_>>>>()
        .map(|parts| parts.concat());
    if singles.is_some() {
        return singles;
    }
    if unique_prefix(arg, all_keys()).is_some() {
        return None;
    }
    let shorthand = unique_prefix(arg, SHORTHANDS.iter().map(|(n, _)| *n))?;
    SHORTHANDS
        .iter()
        .find(|(name, _)| *name == shorthand)
        .map(|(_, e)| e.to_vec())
}

fn is_key(word: &str) -> bool {
    all_keys().any(|k| k == word)
}

fn all_keys() -> impl Iterator<Item = &'static str> + Clone {
    VALUE_KEYS.iter().chain(BOOL_KEYS.iter()).copied()
}

/// The setting `word` names: itself when known, else the one it uniquely abbreviates, else
/// itself (npm keeps unknown settings, like `@scope:registry`).
fn resolve_key(word: &str) -> String {
    if is_key(word) {
        return word.to_owned();
    }
    unique_prefix(word, all_keys()).unwrap_or(word).to_owned()
}

fn unique_prefix<'a>(word: &str, names: impl Iterator<Item = &'a str>) -> Option<&'a str> {
    match super::match_abbrev(word, names) {
        super::Abbrev::Exact(n) | super::Abbrev::Unique(n) => Some(n),
        _ => None,
    }
}

/// npm's `deref`: camelCase to kebab-case, a command, an alias, or a unique abbreviation of
/// either (then through the aliases).
fn deref_command(word: &str) -> Option<String> {
    let mut command = String::with_capacity(word.len() + 4);
    for c in word.chars() {
        if c.is_ascii_uppercase() {
            command.push('-');
            command.push(c.to_ascii_lowercase());
        } else {
            command.push(c);
        }
    }
    if COMMANDS.contains(&command.as_str()) {
        return Some(command);
    }
    let alias = |name: &str| ALIASES.iter().find(|(a, _)| *a == name).map(|(_, t)| *t);
    if let Some(target) = alias(&command) {
        return Some(target.to_owned());
    }
    let names = COMMANDS
        .iter()
        .copied()
        .chain(ALIASES.iter().map(|(a, _)| *a));
    let mut found = unique_prefix(&command, names)?;
    while let Some(target) = alias(found) {
        found = target;
    }
    Some(found.to_owned())
}

/// What an install spec names, by npm-package-arg's rules.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Spec {
    Registry,
    Local(PathBuf),
    Url,
}

fn classify_spec(arg: &str, cwd: &Path) -> Spec {
    let is_url = |s: &str| {
        let s = s.strip_prefix("git+").unwrap_or(s);
        s.split_once(':').is_some_and(|(scheme, _)| {
            !scheme.is_empty() && scheme.bytes().all(|b| b.is_ascii_alphabetic())
        })
    };
    let is_file_type = |s: &str| {
        let lower = s.to_ascii_lowercase();
        lower.ends_with(".tgz") || lower.ends_with(".tar.gz") || lower.ends_with(".tar")
    };
    // npm's isGit: `user@host.tld:path` (scp-like git).
    let is_scp_git = |s: &str| {
        s.split_once('@').is_some_and(|(user, rest)| {
            !user.is_empty()
                && rest.split_once(':').is_some_and(|(host, path)| {
                    host.contains('.') && !host.starts_with('.') && !path.is_empty()
                })
        })
    };
    let name_ends_at = arg
        .get(1..)
        .and_then(|rest| rest.find('@'))
        .map(|at| at + 1);
    let name_part = name_ends_at.map_or(arg, |at| &arg[..at]);
    let spec = if is_url(arg) {
        arg
    } else if is_scp_git(arg) {
        return Spec::Url;
    } else if !name_part.starts_with('@') && (name_part.contains('/') || is_file_type(name_part)) {
        arg
    } else if let Some(at) = name_ends_at {
        &arg[at + 1..]
    } else {
        return Spec::Registry;
    };
    let lower = spec.to_ascii_lowercase();
    let posix_file = spec.starts_with('.')
        || spec.starts_with("~/")
        || spec.starts_with('/')
        || (spec.len() >= 2
            && spec.as_bytes()[0].is_ascii_alphabetic()
            && spec.as_bytes()[1] == b':'
            && !is_url(spec));
    if lower.starts_with("file:") || posix_file {
        return Spec::Local(spec_path(spec, cwd));
    }
    if lower.starts_with("npm:") || spec.is_empty() {
        return Spec::Registry;
    }
    if is_hosted_git(spec) || is_url(spec) {
        return Spec::Url;
    }
    if spec.contains('/') || is_file_type(spec) {
        return Spec::Local(spec_path(spec, cwd));
    }
    Spec::Registry
}

/// GitHub-style shorthands hosted-git-info accepts: `github:`, `gitlab:`, `bitbucket:`,
/// `gist:` prefixes and bare `user/repo[#ref]`.
fn is_hosted_git(spec: &str) -> bool {
    let lower = spec.to_ascii_lowercase();
    if ["github:", "gitlab:", "bitbucket:", "gist:"]
        .iter()
        .any(|p| lower.starts_with(p))
    {
        return true;
    }
    let body = spec.split('#').next().unwrap_or(spec);
    let Some((user, repo)) = body.split_once('/') else {
        return false;
    };
    let bad = |s: &str| s.is_empty() || s.contains([':', '@', '%', '/', ' ']);
    !bad(user) && !bad(repo) && !user.starts_with(['.', '-'])
}

/// The local path a file spec names, absolute.
fn spec_path(spec: &str, cwd: &Path) -> PathBuf {
    let mut path = spec;
    if path.len() >= 5 && path[..5].eq_ignore_ascii_case("file:") {
        path = &path[5..];
        if let Some(rest) = path.strip_prefix("//") {
            // file://host/path or file:///path: the path starts at the next `/`.
            path = rest.find('/').map_or(rest, |at| &rest[at..]);
        }
    }
    absolute(cwd, &expand_tilde(path))
}

// ---------------------------------------------------------------------------------------------
// npm's tables (npm 11; a superset of npm 8 to 10 where they differ)

/// Settings that take a value (their type has no Boolean).
const VALUE_KEYS: &[&str] = &[
    "_auth",
    "access",
    "allow-directory",
    "allow-file",
    "allow-git",
    "allow-remote",
    "allow-scripts",
    "also",
    "audit-level",
    "auth-type",
    "before",
    "ca",
    "cache",
    "cache-max",
    "cache-min",
    "cafile",
    "call",
    "cert",
    "cidr",
    "cpu",
    "depth",
    "diff",
    "diff-dst-prefix",
    "diff-src-prefix",
    "diff-unified",
    "editor",
    "expect-result-count",
    "expires",
    "fetch-retries",
    "fetch-retry-factor",
    "fetch-retry-maxtimeout",
    "fetch-retry-mintimeout",
    "fetch-timeout",
    "git",
    "globalconfig",
    "heading",
    "https-proxy",
    "include",
    "init-author-email",
    "init-author-name",
    "init-author-url",
    "init-license",
    "init-module",
    "init-type",
    "init-version",
    "init.author.email",
    "init.author.name",
    "init.author.url",
    "init.license",
    "init.module",
    "init.version",
    "install-strategy",
    "key",
    "libc",
    "local-address",
    "location",
    "lockfile-version",
    "loglevel",
    "logs-dir",
    "logs-max",
    "maxsockets",
    "message",
    "min-release-age",
    "min-release-age-exclude",
    "node-gyp",
    "node-options",
    "noproxy",
    "omit",
    "only",
    "orgs",
    "os",
    "otp",
    "package",
    "pack-destination",
    "packages",
    "prefix",
    "preid",
    "provenance-file",
    "proxy",
    "registry",
    "replace-registry-host",
    "save-prefix",
    "sbom-format",
    "sbom-type",
    "scope",
    "scopes",
    "packages-and-scopes-permission",
    "orgs-permission",
    "password",
    "token-description",
    "script-shell",
    "searchexclude",
    "searchlimit",
    "searchopts",
    "searchstaleness",
    "shell",
    "tag",
    "tag-version-prefix",
    "umask",
    "user-agent",
    "userconfig",
    "viewer",
    "which",
    "workspace",
    "sso-poll-frequency",
    "sso-type",
    "node-version",
];

/// Settings whose type includes Boolean (they take no value unless written `--x=value` or
/// followed by `true`/`false`).
const BOOL_KEYS: &[&str] = &[
    "all",
    "allow-same-version",
    "audit",
    "bin-links",
    "browser",
    "bypass-2fa",
    "color",
    "commit-hooks",
    "dangerously-allow-all-scripts",
    "description",
    "dev",
    "diff-ignore-all-space",
    "diff-name-only",
    "diff-no-prefix",
    "diff-text",
    "dry-run",
    "engine-strict",
    "expect-results",
    "force",
    "foreground-scripts",
    "format-package-lock",
    "fund",
    "git-tag-version",
    "global",
    "global-style",
    "if-present",
    "ignore-scripts",
    "include-staged",
    "include-workspace-root",
    "include-attestations",
    "init-private",
    "install-links",
    "json",
    "legacy-bundling",
    "legacy-peer-deps",
    "link",
    "long",
    "offline",
    "omit-lockfile-registry-resolved",
    "optional",
    "package-lock",
    "package-lock-only",
    "parseable",
    "allow-scripts-pending",
    "allow-scripts-pin",
    "prefer-dedupe",
    "prefer-offline",
    "prefer-online",
    "production",
    "progress",
    "provenance",
    "read-only",
    "rebuild-bundle",
    "save",
    "save-bundle",
    "save-dev",
    "save-exact",
    "save-optional",
    "save-peer",
    "save-prod",
    "packages-all",
    "shrinkwrap",
    "sign-git-commit",
    "sign-git-tag",
    "strict-peer-deps",
    "strict-allow-scripts",
    "strict-ssl",
    "timing",
    "unicode",
    "update-notifier",
    "usage",
    "version",
    "versions",
    "workspaces",
    "workspaces-update",
    "yes",
];

/// npm's shorthands.
const SHORTHANDS: &[(&str, &[&str])] = &[
    ("enjoy-by", &["--before"]),
    ("d", &["--loglevel", "info"]),
    ("dd", &["--loglevel", "verbose"]),
    ("ddd", &["--loglevel", "silly"]),
    ("quiet", &["--loglevel", "warn"]),
    ("q", &["--loglevel", "warn"]),
    ("s", &["--loglevel", "silent"]),
    ("silent", &["--loglevel", "silent"]),
    ("verbose", &["--loglevel", "verbose"]),
    ("desc", &["--description"]),
    ("help", &["--usage"]),
    ("local", &["--no-global"]),
    ("n", &["--no-yes"]),
    ("no", &["--no-yes"]),
    ("porcelain", &["--parseable"]),
    ("readonly", &["--read-only"]),
    ("reg", &["--registry"]),
    ("iwr", &["--include-workspace-root"]),
    ("ws", &["--workspaces"]),
    ("a", &["--all"]),
    ("c", &["--call"]),
    ("f", &["--force"]),
    ("g", &["--global"]),
    ("L", &["--location"]),
    ("l", &["--long"]),
    ("m", &["--message"]),
    ("p", &["--parseable"]),
    ("C", &["--prefix"]),
    ("S", &["--save"]),
    ("B", &["--save-bundle"]),
    ("D", &["--save-dev"]),
    ("E", &["--save-exact"]),
    ("O", &["--save-optional"]),
    ("P", &["--save-prod"]),
    ("?", &["--usage"]),
    ("H", &["--usage"]),
    ("h", &["--usage"]),
    ("v", &["--version"]),
    ("w", &["--workspace"]),
    ("y", &["--yes"]),
];

/// npm's commands.
const COMMANDS: &[&str] = &[
    "access",
    "adduser",
    "approve-scripts",
    "audit",
    "bugs",
    "cache",
    "ci",
    "completion",
    "config",
    "dedupe",
    "deny-scripts",
    "deprecate",
    "diff",
    "dist-tag",
    "docs",
    "doctor",
    "edit",
    "exec",
    "explain",
    "explore",
    "find-dupes",
    "fund",
    "get",
    "help",
    "help-search",
    "init",
    "install",
    "install-ci-test",
    "install-scripts",
    "install-test",
    "link",
    "ll",
    "login",
    "logout",
    "ls",
    "org",
    "outdated",
    "owner",
    "pack",
    "ping",
    "pkg",
    "prefix",
    "profile",
    "prune",
    "publish",
    "query",
    "rebuild",
    "repo",
    "restart",
    "root",
    "run",
    "sbom",
    "search",
    "set",
    "shrinkwrap",
    "stage",
    "star",
    "stars",
    "start",
    "stop",
    "team",
    "test",
    "token",
    "trust",
    "undeprecate",
    "uninstall",
    "unpublish",
    "unstar",
    "update",
    "version",
    "view",
    "whoami",
];

/// npm's command aliases.
const ALIASES: &[(&str, &str)] = &[
    ("author", "owner"),
    ("home", "docs"),
    ("issues", "bugs"),
    ("info", "view"),
    ("show", "view"),
    ("find", "search"),
    ("add", "install"),
    ("unlink", "uninstall"),
    ("remove", "uninstall"),
    ("rm", "uninstall"),
    ("r", "uninstall"),
    ("un", "uninstall"),
    ("rb", "rebuild"),
    ("list", "ls"),
    ("ln", "link"),
    ("create", "init"),
    ("i", "install"),
    ("it", "install-test"),
    ("cit", "install-ci-test"),
    ("u", "update"),
    ("up", "update"),
    ("c", "config"),
    ("s", "search"),
    ("se", "search"),
    ("tst", "test"),
    ("t", "test"),
    ("ddp", "dedupe"),
    ("v", "view"),
    ("run-script", "run"),
    ("clean-install", "ci"),
    ("clean-install-test", "install-ci-test"),
    ("x", "exec"),
    ("why", "explain"),
    ("la", "ll"),
    ("verison", "version"),
    ("ic", "ci"),
    ("innit", "init"),
    ("in", "install"),
    ("ins", "install"),
    ("inst", "install"),
    ("insta", "install"),
    ("instal", "install"),
    ("isnt", "install"),
    ("isnta", "install"),
    ("isntal", "install"),
    ("isntall", "install"),
    ("install-clean", "ci"),
    ("isntall-clean", "ci"),
    ("hlep", "help"),
    ("dist-tags", "dist-tag"),
    ("upgrade", "update"),
    ("udpate", "update"),
    ("rum", "run"),
    ("sit", "install-ci-test"),
    ("urn", "run"),
    ("ogr", "org"),
    ("add-user", "adduser"),
];

#[cfg(test)]
mod tests;
