//! bun: which commands fetch package code (`add`, `install`/`i`, `update`, `x` and `bunx`),
//! where bun's packages come from (`--registry`, `BUN_CONFIG_REGISTRY`/`NPM_CONFIG_REGISTRY`,
//! `bunfig.toml`, `.npmrc`), and the text work on `bun.lock` that keeps loopback URLs out of
//! it.
//!
//! bun fetches a package by the tarball URL `bun.lock` records for it (an empty one means
//! "built from the configured registry": `<registry><name>/-/<file>`), whatever registry is
//! configured, and records the `dist.tarball` of the packument for a package it resolves
//! (empty when it is under `https://registry.npmjs.org/`). So the guard serves bun its
//! packuments with every tarball link pointing back at itself ([`guard_link`]), gives bun a
//! `bun.lock` whose recorded URLs point at the guard too ([`lock_to_guard`]), and after bun
//! wrote it, turns every guard URL back into what bun would have written against the user's
//! registry ([`lock_from_guard`]).
//!
//! Nothing here runs bun, touches the network, or prints.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};

use reqwest::Url;
use serde_json::Value;

use super::npm::{NpmConfig, NPM_REGISTRY};
use super::{absolute, expand_tilde, redact, ManagerError};

/// The path under the guard's origin that bun is given as its registry.
pub const GUARD_PREFIX: &str = "-/bun/";
/// Under [`GUARD_PREFIX`]: a tarball link that carries its upstream URL (`-/url/<scheme>/<rest>`).
pub const URL_PREFIX: &str = "-/url/";

const M: &str = "bun";

fn refuse(reason: impl Into<String>) -> ManagerError {
    ManagerError::Argument {
        manager: M,
        reason: reason.into(),
    }
}

/// What a bun command line asks for.
#[derive(Debug, Clone)]
pub enum BunCommand {
    /// `add`, `install`, `update`, or `x`: guarded.
    Install(BunInstall),
    /// Anything else (`run`, `test`, `build`, `remove`, `pm`, `--version`, `install --help`,
    /// `install --dry-run`, `install --lockfile-only`, `x --no-install`): passed through.
    Other,
}

/// The kind of a guarded bun command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BunKind {
    /// `add`/`a`, and `install`/`i` with packages.
    Add,
    /// `install`/`i` without packages.
    Install,
    /// `install --frozen-lockfile` (or `--ci`): the lockfile is the resolution.
    Frozen,
    /// `update`.
    Update,
    /// `x` (and `bunx`): the packages are resolved in an empty project, then the bin runs.
    Exec,
}

/// A guarded bun command line, understood.
#[derive(Debug, Clone)]
pub struct BunInstall {
    /// The user's arguments, whole (after `bun`).
    pub args: Vec<OsString>,
    pub kind: BunKind,
    /// Registry package specs (`left-pad`, `@s/x@^1`, `alias@npm:real@1`); for `x`, the
    /// package to run (`-p` or the first word).
    pub packages: Vec<String>,
    /// `--registry` from the command line.
    pub registry: Option<String>,
    /// `--cafile`, absolute.
    pub cafile: Option<PathBuf>,
    /// Where the subcommand word is in `args`.
    command_at: usize,
    /// Argument ranges of `--registry` (to drop them from the hand-over).
    registry_args: Vec<(usize, usize)>,
    /// Where the package to run is in `args` (`x`): options after it belong to its bin.
    exec_at: Option<usize>,
}

/// Options of `add`/`install`/`update` that take a value (`--opt value` or `--opt=value`).
const VALUE_OPTIONS: &[&str] = &[
    "--backend",
    "--concurrent-scripts",
    "--network-concurrency",
    "--omit",
    "--linker",
    "--minimum-release-age",
    "--minimum-release-age-excludes",
    "--cpu",
    "--os",
    "--libc",
];

/// Flag options of `add`/`install`/`update` that need nothing of the guard.
const FLAG_OPTIONS: &[&str] = &[
    "-y",
    "--yarn",
    "-p",
    "--production",
    "--no-save",
    "--save",
    "-f",
    "--force",
    "--no-cache",
    "--silent",
    "--quiet",
    "--verbose",
    "--no-progress",
    "--no-summary",
    "--no-verify",
    "--offline",
    "--prefer-offline",
    "--ignore-scripts",
    "--trust",
    "--save-text-lockfile",
    "-d",
    "--dev",
    "-D",
    "--development",
    "--optional",
    "--peer",
    "--save-prod",
    "-E",
    "--exact",
    "--only-missing",
    "--catalog",
    "--use-system-ca",
    "--use-openssl-ca",
    "--use-bundled-ca",
    "--no-env-file",
];

/// Options of `bun x` before the package that take a value.
const X_VALUE_OPTIONS: &[&str] = &["--minimum-release-age"];
const X_FLAG_OPTIONS: &[&str] = &[
    "--bun",
    "--trust",
    "--ignore-scripts",
    "--verbose",
    "--silent",
];

/// The command words that fetch packages.
fn command_kind(word: &str) -> Option<BunKind> {
    Some(match word {
        "add" | "a" => BunKind::Add,
        "install" | "i" => BunKind::Install,
        "update" => BunKind::Update,
        "x" => BunKind::Exec,
        _ => return None,
    })
}

/// Parses the arguments given to `bun` (without `bun` itself) in folder `cwd`.
pub fn parse_in(args: &[OsString], cwd: &Path) -> Result<BunCommand, ManagerError> {
    let words: Vec<String> = args
        .iter()
        .map(|a| {
            a.to_str()
                .map(str::to_owned)
                .ok_or_else(|| refuse("an argument is not valid UTF-8"))
        })
        .collect::<Result<_, _>>()?;
    let Some(first) = words.first() else {
        return Ok(BunCommand::Other);
    };
    if first.starts_with('-') {
        // `bun --flags script`: a run. A command word further on could still be read as one
        // by bun: refuse rather than guess.
        if words.iter().skip(1).any(|w| command_kind(w).is_some()) {
            return Err(refuse(
                "options before the command: put it first (`bun add ...`, `bun x ...`) so that \
                 Cerebro reads it as bun does",
            ));
        }
        return Ok(BunCommand::Other);
    }
    if matches!(first.as_str(), "create" | "c") {
        return Err(refuse(
            "`bun create` fetches and runs a template package Cerebro does not guard: run \
             `cerebro bunx create-NAME` instead",
        ));
    }
    let Some(mut kind) = command_kind(first) else {
        return Ok(BunCommand::Other);
    };
    let mut install = BunInstall {
        args: args.to_vec(),
        kind,
        packages: Vec::new(),
        registry: None,
        cafile: None,
        command_at: 0,
        registry_args: Vec::new(),
        exec_at: None,
    };
    if kind == BunKind::Exec {
        return parse_x(install, &words, cwd);
    }
    let mut i = 1;
    let mut frozen = false;
    let mut only_options = false;
    while i < words.len() {
        let word = &words[i];
        if only_options || !word.starts_with('-') || word == "-" {
            install.packages.push(word.clone());
            i += 1;
            continue;
        }
        if word == "--" {
            only_options = true;
            i += 1;
            continue;
        }
        let (name, inline) = match word.split_once('=') {
            Some((n, v)) if n.starts_with("--") => (n, Some(v.to_owned())),
            _ => (word.as_str(), None),
        };
        let value = |i: &mut usize| -> Result<String, ManagerError> {
            if let Some(v) = &inline {
                return Ok(v.clone());
            }
            *i += 1;
            words
                .get(*i)
                .cloned()
                .ok_or_else(|| ManagerError::MissingValue {
                    manager: M,
                    option: name.to_owned(),
                })
        };
        let start = i;
        match name {
            "-h" | "--help" | "--dry-run" | "--lockfile-only" => return Ok(BunCommand::Other),
            "--frozen-lockfile" | "--ci" => frozen = true,
            "--registry" => {
                install.registry = Some(value(&mut i)?);
                install.registry_args.push((start, i + 1));
            }
            "--cafile" => install.cafile = Some(absolute(cwd, &expand_tilde(&value(&mut i)?))),
            "-g" | "--global" => {
                return Err(refuse(
                    "global installs (-g) are not guarded yet: install into a project",
                ))
            }
            "-c" | "--config" | "--cwd" | "--cache-dir" | "--ca" | "--env-file" | "-F"
            | "--filter" | "-a" | "--analyze" => {
                return Err(refuse(format!(
                    "{name} changes what bun reads or where it caches in a way Cerebro does not \
                     follow: run without it"
                )))
            }
            _ if VALUE_OPTIONS.contains(&name) => {
                value(&mut i)?;
            }
            _ if FLAG_OPTIONS.contains(&name) && inline.is_none() => {}
            _ => {
                return Err(refuse(format!(
                    "unknown option {name}: Cerebro cannot tell how bun reads it"
                )))
            }
        }
        i += 1;
    }
    if kind == BunKind::Install && !install.packages.is_empty() {
        kind = BunKind::Add;
    }
    if frozen {
        if kind != BunKind::Install {
            return Err(refuse("--frozen-lockfile only goes with `bun install`"));
        }
        kind = BunKind::Frozen;
    }
    install.kind = kind;
    for spec in &install.packages {
        check_spec(spec)?;
    }
    Ok(BunCommand::Install(install))
}

fn parse_x(
    mut install: BunInstall,
    words: &[String],
    cwd: &Path,
) -> Result<BunCommand, ManagerError> {
    let mut package: Option<String> = None;
    let mut i = 1;
    while i < words.len() {
        let word = &words[i];
        if !word.starts_with('-') {
            install.exec_at = Some(i);
            if package.is_none() {
                package = Some(word.clone());
            }
            break;
        }
        let (name, inline) = match word.split_once('=') {
            Some((n, v)) if n.starts_with("--") => (n, Some(v.to_owned())),
            _ => (word.as_str(), None),
        };
        let value = |i: &mut usize| -> Result<String, ManagerError> {
            if let Some(v) = &inline {
                return Ok(v.clone());
            }
            *i += 1;
            words
                .get(*i)
                .cloned()
                .ok_or_else(|| ManagerError::MissingValue {
                    manager: M,
                    option: name.to_owned(),
                })
        };
        let start = i;
        match name {
            "-h" | "--help" | "--no-install" => return Ok(BunCommand::Other),
            "-p" | "--package" => package = Some(value(&mut i)?),
            "--registry" => {
                install.registry = Some(value(&mut i)?);
                install.registry_args.push((start, i + 1));
            }
            "--cafile" => install.cafile = Some(absolute(cwd, &expand_tilde(&value(&mut i)?))),
            "--cwd" | "--env-file" | "--ca" => {
                return Err(refuse(format!(
                    "bunx {name} is not guarded yet: run without it"
                )))
            }
            _ if X_VALUE_OPTIONS.contains(&name) => {
                value(&mut i)?;
            }
            _ if X_FLAG_OPTIONS.contains(&name) && inline.is_none() => {}
            _ => {
                return Err(refuse(format!(
                    "unknown bunx option {name}: Cerebro cannot tell how bun reads it"
                )))
            }
        }
        i += 1;
    }
    let Some(package) = package else {
        return Ok(BunCommand::Other);
    };
    check_spec(&package)?;
    install.packages = vec![package];
    Ok(BunCommand::Install(install))
}

/// Refuses a spec that is not a registry package (git, GitHub, URL, path, workspace): bun
/// would fetch it past the registry.
fn check_spec(spec: &str) -> Result<(), ManagerError> {
    let (name, range) = split_spec(spec);
    let name_ok = |n: &str| {
        let ok = |s: &str| {
            !s.is_empty()
                && s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b))
        };
        match n.strip_prefix('@') {
            Some(scoped) => scoped.split_once('/').is_some_and(|(s, n)| ok(s) && ok(n)),
            None => ok(n) && !n.starts_with(['.', '_']),
        }
    };
    let range_ok = |r: &str| !r.contains([':', '/', '\\']) || r.starts_with("npm:");
    let alias_ok = match range.strip_prefix("npm:") {
        Some(real) => {
            let (n, r) = split_spec(real);
            name_ok(n) && !r.contains([':', '/', '\\'])
        }
        None => true,
    };
    if name_ok(name) && range_ok(range) && alias_ok {
        Ok(())
    } else {
        Err(refuse(format!(
            "cannot guard the package spec {spec} (git, URL, path or workspace): add it from a \
             registry"
        )))
    }
}

/// `name@range` → (`name`, `range`); `@s/n` keeps its scope.
fn split_spec(spec: &str) -> (&str, &str) {
    match spec.get(1..).and_then(|r| r.find('@')) {
        Some(at) => (&spec[..at + 1], &spec[at + 2..]),
        None => (spec, ""),
    }
}

/// The user's arguments for the real bun, with every `--registry` replaced by the guard's:
/// `--registry=<guard>` right after the subcommand (for `x`, before the package, where
/// bunx's own options go).
pub fn guarded_args(install: &BunInstall, guard: &Url) -> Vec<OsString> {
    let mut out = Vec::with_capacity(install.args.len() + 1);
    for (i, arg) in install.args.iter().enumerate() {
        if install
            .registry_args
            .iter()
            .any(|&(start, end)| (start..end).contains(&i))
        {
            continue;
        }
        out.push(arg.clone());
        if i == install.command_at {
            out.push(format!("--registry={guard}").into());
        }
    }
    out
}

/// The resolution run in a scratch project: `bun add <packages>` (for `x`) or the user's
/// command, with `--lockfile-only --ignore-scripts --registry=<guard>` (bun then fetches
/// packuments only, and writes `bun.lock`).
pub fn resolve_args(install: &BunInstall, guard: &Url) -> Vec<OsString> {
    let mut out: Vec<OsString> = if install.kind == BunKind::Exec {
        vec!["add".into(), install.packages[0].clone().into()]
    } else {
        guarded_args(install, guard)
            .into_iter()
            .filter(|a| !a.to_str().is_some_and(|s| s.starts_with("--registry=")))
            .collect()
    };
    out.insert(1, format!("--registry={guard}").into());
    out.insert(1, "--ignore-scripts".into());
    out.insert(1, "--lockfile-only".into());
    out
}

/// Where bun's packages come from, read as bun reads its settings, as the upstream of the
/// guard index (bun's settings map onto npm's: one default registry, its token).
///
/// Read: `--registry`; `BUN_CONFIG_REGISTRY`, `NPM_CONFIG_REGISTRY` and `npm_config_registry`;
/// `[install] registry` of the project's `bunfig.toml` and of the user's
/// (`$XDG_CONFIG_HOME/.bunfig.toml`, `~/.bunfig.toml`); `registry=` of the project's and the
/// user's `.npmrc`. Without `--registry`, these must agree (bun orders them in a way Cerebro
/// does not model): when two differ, Cerebro refuses. Also refused: scoped registries
/// (`[install.scopes]`, `@scope:registry`), a `bunfig.toml` `[install.cache]` (the guarded
/// run gives bun a cache of its own), and `.env` files that set registries.
pub fn bun_config(
    project: &Path,
    install: &BunInstall,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<NpmConfig, ManagerError> {
    let home = env("HOME").filter(|h| !h.is_empty()).map(PathBuf::from);
    let mut found: Vec<(String, String)> = Vec::new();
    let mut tokens: Vec<(String, String)> = Vec::new();
    for name in [
        "BUN_CONFIG_REGISTRY",
        "NPM_CONFIG_REGISTRY",
        "npm_config_registry",
    ] {
        if let Some(v) = env(name).filter(|v| !v.is_empty()) {
            found.push((name.to_owned(), v));
        }
    }
    let mut bunfigs = vec![project.join("bunfig.toml")];
    if let Some(xdg) = env("XDG_CONFIG_HOME").filter(|v| !v.is_empty()) {
        bunfigs.push(Path::new(&xdg).join(".bunfig.toml"));
    }
    if let Some(home) = &home {
        bunfigs.push(home.join(".bunfig.toml"));
    }
    for file in &bunfigs {
        read_bunfig(file, env, &mut found, &mut tokens)?;
    }
    let mut npmrcs = vec![project.join(".npmrc")];
    if let Some(home) = &home {
        npmrcs.push(home.join(".npmrc"));
    }
    for file in &npmrcs {
        read_npmrc(file, env, &mut found, &mut tokens)?;
    }
    for name in [".env", ".env.local", ".env.development", ".env.production"] {
        let file = project.join(name);
        if let Ok(text) = std::fs::read_to_string(&file) {
            if text.to_ascii_uppercase().contains("REGISTRY") {
                return Err(refuse(format!(
                    "{} may set a registry (bun reads .env files): Cerebro cannot follow it; \
                     set the registry in bunfig.toml or .npmrc instead",
                    file.display()
                )));
            }
        }
    }
    let value = match &install.registry {
        Some(cli) => cli.clone(),
        None => {
            let mut values = found.iter().map(|(_, v)| normalise(v));
            match values.next() {
                None => NPM_REGISTRY.to_owned(),
                Some(first) => {
                    if let Some((other, _)) = found.iter().find(|(_, v)| normalise(v) != first) {
                        return Err(refuse(format!(
                            "registries differ between {} and {other}: Cerebro cannot tell which \
                             one bun uses; pass --registry",
                            found[0].0
                        )));
                    }
                    first
                }
            }
        }
    };
    let registry = Url::parse(&normalise(&value))
        .ok()
        .filter(|u| u.has_host() && matches!(u.scheme(), "http" | "https"))
        .ok_or_else(|| ManagerError::BadUrl {
            what: "bun registry".to_owned(),
            value: redact(&value),
            reason: "not an absolute http(s) URL".to_owned(),
        })?;
    let mut auth = Vec::new();
    if let Some(token) = env("BUN_CONFIG_TOKEN").filter(|t| !t.is_empty()) {
        tokens.push((registry.to_string(), token));
    }
    for (url, token) in tokens {
        if let Ok(u) = Url::parse(&normalise(&url)) {
            if let Some(host) = u.host_str() {
                let port = u.port().map(|p| format!(":{p}")).unwrap_or_default();
                auth.push((
                    format!("//{}{port}{}", host.to_ascii_lowercase(), u.path()),
                    format!("Bearer {token}"),
                ));
            }
        }
    }
    Ok(NpmConfig {
        registry,
        scopes: BTreeMap::new(),
        auth,
        cafile: install.cafile.clone(),
        strict_ssl: true,
    })
}

fn normalise(url: &str) -> String {
    let mut url = url.trim().to_owned();
    if !url.ends_with('/') {
        url.push('/');
    }
    url
}

fn read_bunfig(
    file: &Path,
    env: &dyn Fn(&str) -> Option<String>,
    found: &mut Vec<(String, String)>,
    tokens: &mut Vec<(String, String)>,
) -> Result<(), ManagerError> {
    let text = match std::fs::read_to_string(file) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(source) => {
            return Err(ManagerError::Read {
                path: file.to_owned(),
                source,
            })
        }
    };
    let doc: toml::Table = text
        .parse()
        .map_err(|e: toml::de::Error| ManagerError::Syntax {
            path: file.to_owned(),
            line: 0,
            message: e.message().to_owned(),
        })?;
    let Some(install) = doc.get("install") else {
        return Ok(());
    };
    let Some(install) = install.as_table() else {
        return Err(refuse(format!(
            "{}: [install] is not a table",
            file.display()
        )));
    };
    if install.contains_key("scopes") {
        return Err(refuse(format!(
            "{}: scoped registries ([install.scopes]) are not guarded for bun yet",
            file.display()
        )));
    }
    if install.contains_key("cache") {
        return Err(refuse(format!(
            "{}: [install.cache] is set; the guarded run gives bun a cache of its own: remove it",
            file.display()
        )));
    }
    let what = file.display().to_string();
    match install.get("registry") {
        None => {}
        Some(toml::Value::String(s)) => found.push((what, expand_env(s, env))),
        Some(toml::Value::Table(t)) => {
            let url = t.get("url").and_then(toml::Value::as_str).ok_or_else(|| {
                refuse(format!("{}: install.registry has no url", file.display()))
            })?;
            if t.contains_key("username") || t.contains_key("password") {
                return Err(refuse(format!(
                    "{}: install.registry with a username and password is not guarded yet \
                     (use a token)",
                    file.display()
                )));
            }
            let url = expand_env(url, env);
            if let Some(token) = t.get("token").and_then(toml::Value::as_str) {
                tokens.push((url.clone(), expand_env(token, env)));
            }
            found.push((what, url));
        }
        Some(_) => {
            return Err(refuse(format!(
                "{}: install.registry is neither a URL nor a table",
                file.display()
            )))
        }
    }
    Ok(())
}

fn read_npmrc(
    file: &Path,
    env: &dyn Fn(&str) -> Option<String>,
    found: &mut Vec<(String, String)>,
    tokens: &mut Vec<(String, String)>,
) -> Result<(), ManagerError> {
    let text = match std::fs::read_to_string(file) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(source) => {
            return Err(ManagerError::Read {
                path: file.to_owned(),
                source,
            })
        }
    };
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with(['#', ';']) {
            continue;
        }
        let Some((key, value)) = line.split_once('=') else {
            continue;
        };
        let key = expand_env(key.trim(), env);
        let value = expand_env(value.trim().trim_matches('"'), env);
        if key == "registry" {
            found.push((file.display().to_string(), value));
        } else if key.starts_with('@') && key.ends_with(":registry") {
            return Err(refuse(format!(
                "{}: scoped registries ({key}) are not guarded for bun yet",
                file.display()
            )));
        } else if let Some(nerf) = key
            .strip_prefix("//")
            .and_then(|k| k.strip_suffix(":_authToken"))
        {
            tokens.push((format!("https://{nerf}"), value.clone()));
            tokens.push((format!("http://{nerf}"), value));
        }
    }
    Ok(())
}

/// `${VAR}` expanded from `env` (empty when unset), as bun and npm do in their config files.
fn expand_env(text: &str, env: &dyn Fn(&str) -> Option<String>) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("${") {
        out.push_str(&rest[..at]);
        match rest[at + 2..].find('}') {
            Some(end) => {
                let name = rest[at + 2..at + 2 + end].trim_end_matches('?');
                out.push_str(&env(name).unwrap_or_default());
                rest = &rest[at + 3 + end..];
            }
            None => {
                out.push_str(&rest[at..]);
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out
}

/// The guard's link for an upstream tarball URL: `<guard>-/url/<scheme>/<host[:port]><path>`;
/// `None` for one this form cannot carry (a query, a fragment, credentials), which the guard
/// then does not offer bun at all.
pub fn guard_link(guard_bun: &str, upstream: &Url) -> Option<String> {
    if upstream.query().is_some()
        || upstream.fragment().is_some()
        || !upstream.username().is_empty()
        || upstream.password().is_some()
        || !matches!(upstream.scheme(), "http" | "https")
    {
        return None;
    }
    let host = upstream.host_str()?;
    let port = upstream.port().map(|p| format!(":{p}")).unwrap_or_default();
    Some(format!(
        "{guard_bun}{URL_PREFIX}{}/{host}{port}{}",
        upstream.scheme(),
        upstream.path()
    ))
}

/// The upstream URL a `-/url/…` path (after [`URL_PREFIX`]) carries.
pub fn upstream_of_link(rest: &str) -> Option<Url> {
    let (scheme, tail) = rest.split_once('/')?;
    if !matches!(scheme, "http" | "https") {
        return None;
    }
    Url::parse(&format!("{scheme}://{tail}")).ok()
}

/// One package of `bun.lock` that bun fetches from a registry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockedPackage {
    pub name: String,
    pub version: String,
    /// The recorded tarball URL (empty: built from the registry).
    pub url: String,
    pub integrity: String,
}

/// `bun.lock` (JSON with trailing commas) as JSON.
pub fn parse_lock(text: &str) -> Result<Value, String> {
    let mut out = String::with_capacity(text.len());
    let bytes: Vec<char> = text.chars().collect();
    let mut in_string = false;
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        if in_string {
            out.push(c);
            if c == '\\' {
                if let Some(&n) = bytes.get(i + 1) {
                    out.push(n);
                    i += 1;
                }
            } else if c == '"' {
                in_string = false;
            }
        } else if c == '"' {
            in_string = true;
            out.push(c);
        } else if c == ',' {
            let next = bytes[i + 1..].iter().find(|c| !c.is_whitespace());
            if !matches!(next, Some('}') | Some(']')) {
                out.push(c);
            }
        } else {
            out.push(c);
        }
        i += 1;
    }
    serde_json::from_str(&out).map_err(|e| e.to_string())
}

/// The registry packages of a `bun.lock`, each once, for this platform (optional packages
/// for another `os`/`cpu` are left out, as bun skips them); workspace, folder and link
/// packages are local and left out. A git, GitHub or tarball-URL package is refused: bun
/// fetches it past the registry.
pub fn locked_packages(lock: &Value) -> Result<Vec<LockedPackage>, String> {
    let mut out: Vec<LockedPackage> = Vec::new();
    let Some(packages) = lock.get("packages").and_then(Value::as_object) else {
        return Ok(out);
    };
    for (key, entry) in packages {
        let Some(list) = entry.as_array() else {
            return Err(format!("bun.lock: package {key} is not a list"));
        };
        let id = list.first().and_then(Value::as_str).unwrap_or_default();
        let (name, spec) = split_spec(id);
        if ["workspace:", "file:", "link:", "root:", "module:"]
            .iter()
            .any(|p| spec.starts_with(p))
        {
            continue;
        }
        let plain_version = !spec.is_empty()
            && spec
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b".-+_".contains(&b));
        let url = list.get(1).and_then(Value::as_str);
        let integrity = list.get(3).and_then(Value::as_str);
        let (Some(url), Some(integrity), true) = (url, integrity, plain_version) else {
            return Err(format!(
                "bun.lock: {id} is not a registry package (git, GitHub or a tarball URL): \
                 Cerebro cannot guard it"
            ));
        };
        let meta = list.get(2).cloned().unwrap_or(Value::Null);
        if !platform_admits(&meta) {
            continue;
        }
        let p = LockedPackage {
            name: name.to_owned(),
            version: spec.to_owned(),
            url: url.to_owned(),
            integrity: integrity.to_owned(),
        };
        if !out.contains(&p) {
            out.push(p);
        }
    }
    out.sort_by(|a, b| (&a.name, &a.version).cmp(&(&b.name, &b.version)));
    Ok(out)
}

/// Whether a package's `os` and `cpu` (a name, or a list with `!` exclusions) admit this
/// machine.
fn platform_admits(meta: &Value) -> bool {
    let os = match std::env::consts::OS {
        "macos" => "darwin",
        "windows" => "win32",
        other => other,
    };
    let cpu = match std::env::consts::ARCH {
        "x86_64" => "x64",
        "aarch64" => "arm64",
        "x86" => "ia32",
        other => other,
    };
    let allowed = |field: &str, here: &str| {
        let items: Vec<&str> = match meta.get(field) {
            Some(Value::String(s)) => vec![s.as_str()],
            Some(Value::Array(list)) => list.iter().filter_map(Value::as_str).collect(),
            _ => return true,
        };
        if items.iter().any(|i| i.strip_prefix('!') == Some(here)) {
            return false;
        }
        let positive: Vec<&&str> = items.iter().filter(|i| !i.starts_with('!')).collect();
        positive.is_empty() || positive.iter().any(|i| **i == here || **i == "any")
    };
    allowed("os", os) && allowed("cpu", cpu)
}

/// `bun.lock`'s text with every recorded absolute tarball URL of a registry package turned
/// into the guard's link for it ([`guard_link`]), so that bun fetches it from the guard;
/// `Err` names one the guard cannot carry. Empty URLs stay empty (bun builds them from the
/// registry it is given: the guard).
pub fn lock_to_guard(text: &str, guard_bun: &str) -> Result<String, String> {
    let lock = parse_lock(text)?;
    let mut out = text.to_owned();
    for p in locked_packages_all(&lock)? {
        if p.url.is_empty() {
            continue;
        }
        let url = Url::parse(&p.url).map_err(|e| format!("bun.lock: {}: {e}", p.url))?;
        let link = guard_link(guard_bun, &url).ok_or_else(|| {
            format!(
                "bun.lock: the tarball URL of {}@{} cannot go through the guard",
                p.name, p.version
            )
        })?;
        out = out.replace(&format!("\"{}\"", p.url), &format!("\"{link}\""));
    }
    Ok(out)
}

/// Every registry package of the lockfile, whatever its platform.
fn locked_packages_all(lock: &Value) -> Result<Vec<LockedPackage>, String> {
    let mut out = Vec::new();
    if let Some(packages) = lock.get("packages").and_then(Value::as_object) {
        for entry in packages.values() {
            let Some(list) = entry.as_array() else {
                continue;
            };
            if let (Some(id), Some(url), Some(integrity)) = (
                list.first().and_then(Value::as_str),
                list.get(1).and_then(Value::as_str),
                list.get(3).and_then(Value::as_str),
            ) {
                let (name, version) = split_spec(id);
                out.push(LockedPackage {
                    name: name.to_owned(),
                    version: version.to_owned(),
                    url: url.to_owned(),
                    integrity: integrity.to_owned(),
                });
            }
        }
    }
    Ok(out)
}

/// `bun.lock`'s text with every guard URL turned back into what bun writes against the
/// user's registry `upstream`: a `-/url/` link into the upstream URL it carries, a link bun
/// built from the registry (`<guard>-/bun/<name>/-/<file>`) into `<upstream><name>/-/<file>`;
/// then, as bun's writer does, a URL under `https://registry.npmjs.org/` into `""`.
pub fn lock_from_guard(text: &str, guard_bun: &str, upstream: &Url) -> String {
    let needle = format!("\"{guard_bun}");
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find(&needle) {
        out.push_str(&rest[..at]);
        let after = &rest[at + needle.len()..];
        let Some(end) = after.find('"') else {
            out.push_str(&rest[at..]);
            rest = "";
            break;
        };
        let tail = &after[..end];
        let url = match tail.strip_prefix(URL_PREFIX) {
            Some(link) => upstream_of_link(link)
                .map(|u| u.to_string())
                .unwrap_or_else(|| format!("{guard_bun}{tail}")),
            None => format!("{upstream}{tail}"),
        };
        if url.starts_with(NPM_REGISTRY) {
            out.push_str("\"\"");
        } else {
            out.push('"');
            out.push_str(&url);
            out.push('"');
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manager::test_util::{args, url};

    fn parse(words: &[&str]) -> Result<BunCommand, ManagerError> {
        parse_in(&args(words), Path::new("/p"))
    }

    fn kind(words: &[&str]) -> Option<BunKind> {
        match parse(words).unwrap() {
            BunCommand::Install(i) => Some(i.kind),
            BunCommand::Other => None,
        }
    }

    #[test]
    fn commands() {
        assert_eq!(kind(&["add", "left-pad"]), Some(BunKind::Add));
        assert_eq!(kind(&["i", "left-pad"]), Some(BunKind::Add));
        assert_eq!(kind(&["install"]), Some(BunKind::Install));
        assert_eq!(
            kind(&["install", "--frozen-lockfile"]),
            Some(BunKind::Frozen)
        );
        assert_eq!(kind(&["update"]), Some(BunKind::Update));
        assert_eq!(
            kind(&["x", "cowsay", "--registry", "y"]),
            Some(BunKind::Exec)
        );
        for other in [
            &["run", "build"][..],
            &["test"],
            &["--version"],
            &["install", "--help"],
            &["x", "--no-install", "tsc"],
            &[],
        ] {
            assert_eq!(kind(other), None, "{other:?}");
        }
        for refused in [
            &["add", "-g", "x"][..],
            &["add", "--bogus", "x"],
            &["add", "github:u/r"],
            &["add", "./local"],
            &["add", "x@https://h/x.tgz"],
            &["create", "vite"],
            &["--cwd", "/x", "install"],
            &["install", "--cache-dir", "/c"],
        ] {
            assert!(parse(refused).is_err(), "{refused:?}");
        }
    }

    #[test]
    fn guarded_args_replace_the_registry() {
        let BunCommand::Install(i) = parse(&["add", "--registry", "http://r/", "-d", "x"]).unwrap()
        else {
            panic!()
        };
        assert_eq!(i.registry.as_deref(), Some("http://r/"));
        let got: Vec<String> = guarded_args(&i, &url("http://127.0.0.1:9/-/bun/"))
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            got,
            ["add", "--registry=http://127.0.0.1:9/-/bun/", "-d", "x"]
        );
        let BunCommand::Install(x) = parse(&["x", "--bun", "cowsay", "--registry", "a"]).unwrap()
        else {
            panic!()
        };
        assert_eq!(x.packages, ["cowsay"]);
        assert!(
            x.registry.is_none(),
            "options after the package are its bin's"
        );
    }

    #[test]
    fn lock_round_trip() {
        let guard = "http://127.0.0.1:9/-/bun/";
        let text = r#"{
  "packages": {
    "a": ["a@1.0.0", "https://cdn.example/a/-/a-1.0.0.tgz", {}, "sha512-x"],
    "b": ["b@2.0.0", "", { "os": "plan9" }, "sha512-y"],
  }
}
"#;
        let lock = parse_lock(text).unwrap();
        let found = locked_packages(&lock).unwrap();
        assert_eq!(found.len(), 1, "{found:?}");
        let to = lock_to_guard(text, guard).unwrap();
        assert!(to.contains("\"http://127.0.0.1:9/-/bun/-/url/https/cdn.example/a/-/a-1.0.0.tgz\""));
        let upstream = url("https://registry.npmjs.org/");
        assert_eq!(lock_from_guard(&to, guard, &upstream), text);
        let built = text.replace("\"\"", "\"http://127.0.0.1:9/-/bun/b/-/b-2.0.0.tgz\"");
        assert_eq!(lock_from_guard(&built, guard, &upstream), text);
        let mine = url("http://r.example/npm/");
        assert!(lock_from_guard(&built, guard, &mine)
            .contains("\"http://r.example/npm/b/-/b-2.0.0.tgz\""));
        let npmjs = guard_link(guard, &url("https://registry.npmjs.org/c/-/c-1.tgz")).unwrap();
        assert_eq!(
            lock_from_guard(&format!("\"{npmjs}\""), guard, &mine),
            "\"\""
        );
    }

    #[test]
    fn config_sources_must_agree() {
        let dir = tempfile::tempdir().unwrap();
        let BunCommand::Install(i) = parse(&["install"]).unwrap() else {
            panic!()
        };
        std::fs::write(dir.path().join(".npmrc"), "registry=http://a/\n").unwrap();
        let env = |_: &str| None;
        assert_eq!(
            bun_config(dir.path(), &i, &env).unwrap().registry.as_str(),
            "http://a/"
        );
        std::fs::write(
            dir.path().join("bunfig.toml"),
            "[install]\nregistry = \"http://b\"\n",
        )
        .unwrap();
        assert!(bun_config(dir.path(), &i, &env).is_err());
        std::fs::write(
            dir.path().join("bunfig.toml"),
            "[install.scopes]\nx = \"http://b\"\n",
        )
        .unwrap();
        assert!(bun_config(dir.path(), &i, &env).is_err());
    }
}
