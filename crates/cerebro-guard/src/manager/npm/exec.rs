//! `npm exec` (`npm x`) and `npx`: commands that fetch packages into npm's npx cache and run
//! one of their `bin`s at once, so the packages (and their dependency trees) must be judged
//! before the command runs, like an install.
//!
//! `npx ARGS` is read the way npm's own `bin/npx-cli.js` rewrites it into `npm exec …`
//! ([`npx_args`]); the `exec` command line is then read by npm's nopt rules
//! ([`super::parse_in`]) and, as libnpmexec does, split into what npm would fetch
//! (`--package` values, else the command word) and what it would run. A command word that
//! names a bin already installed in `node_modules/.bin` (the project's, or a folder above it),
//! with no `--package`, fetches nothing and runs as is.

use std::ffi::OsString;
use std::path::Path;

use super::{local_prefix, nopt, NpmInstall, SHORTHANDS};
use crate::manager::ManagerError;

/// An `npm exec` command line that fetches packages, understood.
#[derive(Debug, Clone)]
pub struct NpmExec {
    /// The whole `exec …` command line, read like an install's (its settings, registries and
    /// `--`): the hand-over runs it with the registries pointed at the guard
    /// ([`super::guarded_args`]).
    pub invocation: NpmInstall,
    /// What the guard resolves and judges first, in an empty scratch project: `install` of the
    /// packages npm would fetch, with the command line's settings (those that only steer the
    /// run, `--package`, `--call`, `--yes`, `--workspace`, dropped).
    pub resolve: NpmInstall,
    /// The package specs npm would fetch, as written: every `--package`, else the command
    /// word (or the project folder, when the project's own `package.json` has that bin).
    pub specs: Vec<String>,
}

/// The settings of an `exec` command line that steer which command runs (or where), not what
/// is fetched, and those that would make the resolution fetch nothing (`--dry-run`,
/// `--package-lock-only`: npm exec then installs nothing and its command fails, yet what it
/// names is judged): left out of the resolution.
const RUN_ONLY: &[&str] = &[
    "dry-run",
    "package-lock-only",
    "package",
    "call",
    "yes",
    "workspace",
    "workspaces",
    "include-workspace-root",
    "script-shell",
];

/// Reads an `exec` command line (`words`, with `invocation` its install-like reading): `None`
/// when it fetches nothing (an interactive shell, `--call` without `--package`, a usage error npm
/// reports itself, or a bin already in `node_modules/.bin`).
pub(super) fn parse_exec(
    words: &[String],
    invocation: NpmInstall,
    cwd: &Path,
) -> Result<Option<NpmExec>, ManagerError> {
    let parsed = nopt(words);
    let run_args: Vec<&str> = parsed
        .positional
        .iter()
        .filter(|(at, _)| *at > invocation.command_at)
        .map(|(_, w)| w.as_str())
        .collect();
    let setting = |key: &str| -> Vec<&str> {
        parsed
            .settings
            .iter()
            .filter(|s| s.key == key)
            .map(|s| s.value.as_str())
            .collect()
    };
    let packages: Vec<String> = setting("package").iter().map(|s| s.to_string()).collect();
    let call = setting("call").last().is_some_and(|c| !c.is_empty());
    let workspaces = !setting("workspace").is_empty()
        || setting("workspaces").last().is_some_and(|v| *v == "true");
    let specs = if !packages.is_empty() {
        if call && !run_args.is_empty() {
            // npm refuses `--call` with positional arguments before fetching anything.
            return Ok(None);
        }
        packages
    } else if call || run_args.is_empty() {
        // `--call CMD` or an interactive shell, with nothing to fetch.
        return Ok(None);
    } else {
        let command = run_args[0];
        let prefix = local_prefix(cwd, &invocation);
        if !workspaces && manifest_has_bin(&prefix, command) {
            // libnpmexec installs the project itself (a link) into the npx cache to run it.
            vec![prefix.to_string_lossy().into_owned()]
        } else if !workspaces && bin_installed(&prefix, command) {
            return Ok(None);
        } else {
            vec![command.to_owned()]
        }
    };
    let mut resolve_words = vec!["install".to_owned()];
    for s in &parsed.settings {
        if !RUN_ONLY.contains(&s.key.as_str()) {
            resolve_words.push(format!("--{}={}", s.key, s.value));
        }
    }
    resolve_words.push("--".to_owned());
    resolve_words.extend(specs.iter().cloned());
    let resolve_args: Vec<OsString> = resolve_words.iter().map(OsString::from).collect();
    let resolve = match super::parse_in(&resolve_args, cwd)? {
        super::NpmCommand::Install(install) => install,
        _ => {
            return Err(ManagerError::Argument {
                manager: "npm",
                reason: format!(
                    "cannot read `npm exec` with the packages {} as npm would",
                    specs.join(" ")
                ),
            })
        }
    };
    Ok(Some(NpmExec {
        invocation,
        resolve,
        specs,
    }))
}

/// Whether the project's own `package.json` (in npm's local prefix) offers `command` as a
/// bin, as pacote reads it: a `bin` object's key, a `bin` string under the package's name
/// (its part after the scope), or any bin of a `directories.bin` folder (counted as a match:
/// the project is then judged, which costs a scan but never lets a fetch through).
fn manifest_has_bin(prefix: &Path, command: &str) -> bool {
    let Ok(text) = std::fs::read(prefix.join("package.json")) else {
        return false;
    };
    let Ok(json) = serde_json::from_slice::<serde_json::Value>(&text) else {
        return false;
    };
    match &json["bin"] {
        serde_json::Value::Object(bins) => bins.contains_key(command),
        serde_json::Value::String(_) => json["name"]
            .as_str()
            .map(|n| n.rsplit('/').next().unwrap_or(n))
            .is_some_and(|n| n == command),
        _ => json["directories"]["bin"].is_string(),
    }
}

/// Whether `node_modules/.bin/<command>` exists in `prefix` or a folder above it (libnpmexec's
/// `localFileExists`, which walks up to the root).
fn bin_installed(prefix: &Path, command: &str) -> bool {
    if command.is_empty() || command.contains('/') || command == "." || command == ".." {
        return false;
    }
    prefix.ancestors().any(|dir| {
        dir.join("node_modules")
            .join(".bin")
            .join(command)
            .is_file()
    })
}

/// `npx ARGS` rewritten into the `npm` arguments npm's `npx-cli.js` runs (`exec …`), and
/// the options it drops as removed (npx says so on stderr: `npx: the --npm argument has been
/// removed.`). The leading options are read with npx's own rules (`-p` is `--package`,
/// `--shell` is `--script-shell`, `--no-install` is `--yes=false`, npm's shorthands
/// expanded), and a `--` goes in front of the first positional word, so everything from the
/// command on belongs to the command. Arguments that are not UTF-8 are refused: npm would
/// read them otherwise than Cerebro.
pub fn npx_args(args: &[OsString]) -> Result<(Vec<OsString>, Vec<String>), ManagerError> {
    let mut argv: Vec<String> = Vec::with_capacity(args.len() + 2);
    argv.push("exec".to_owned());
    for arg in args {
        let Some(word) = arg.to_str() else {
            return Err(ManagerError::Argument {
                manager: "npx",
                reason: format!(
                    "the argument {} is not UTF-8, which npm would read otherwise",
                    arg.to_string_lossy()
                ),
            });
        };
        argv.push(word.to_owned());
    }
    const REMOVED_SWITCHES: [&str; 3] = ["always-spawn", "ignore-existing", "shell-auto-fallback"];
    const REMOVED_OPTS: [&str; 3] = ["npm", "node-arg", "n"];
    const EXTRA_SWITCHES: [&str; 7] = ["no-install", "quiet", "q", "version", "v", "help", "h"];
    const OPTS: [&str; 8] = [
        "package",
        "p",
        "cache",
        "userconfig",
        "call",
        "c",
        "shell",
        "node-arg",
    ];
    let removed = |key: &str| REMOVED_SWITCHES.contains(&key) || REMOVED_OPTS.contains(&key);
    let switch = |key: &str| {
        REMOVED_SWITCHES.contains(&key)
            || super::BOOL_KEYS.contains(&key)
            || EXTRA_SWITCHES.contains(&key)
    };
    let opt = |key: &str| OPTS.contains(&key) || REMOVED_OPTS.contains(&key);
    let mut dropped = Vec::new();
    // `i` is where npx-cli.js's loop is (it counts from the word after `exec`); signed,
    // because a removed option steps it back before the word it removed.
    let mut i: isize = 1;
    // Every step either moves on or shortens a shorthand's expansion chain (each expansion
    // yields a `--long` word, which is not a shorthand), so this ends; bounded anyway.
    let mut budget = 16 * (argv.len() + 4);
    while (i as usize) < argv.len() {
        budget = budget.saturating_sub(1);
        if budget == 0 {
            return Err(ManagerError::Argument {
                manager: "npx",
                reason: "cannot read the options the way npx would".to_owned(),
            });
        }
        let at = i as usize;
        let arg = argv[at].clone();
        if arg == "--" {
            break;
        }
        if !arg.starts_with('-') {
            argv.insert(at, "--".to_owned());
            break;
        }
        let stripped = arg.trim_start_matches('-');
        let (key, value) = match stripped.split_once('=') {
            Some((k, v)) => (k.to_owned(), Some(v.to_owned())),
            None => (stripped.to_owned(), None),
        };
        match key.as_str() {
            "p" => argv[at] = join_value("--package", &value),
            "shell" => argv[at] = join_value("--script-shell", &value),
            "no-install" => argv[at] = "--yes=false".to_owned(),
            _ => {
                if let Some((_, expansion)) = SHORTHANDS.iter().find(|(n, _)| *n == key) {
                    if !removed(&key) {
                        let mut words: Vec<String> =
                            expansion.iter().map(|w| (*w).to_owned()).collect();
                        if let Some(v) = &value {
                            words.push(v.clone());
                        }
                        argv.splice(at..at + 1, words);
                        continue;
                    }
                }
            }
        }
        if removed(&key) {
            dropped.push(key.clone());
            argv.remove(at);
            i -= 1;
        }
        let next = (i + 1) as usize;
        let next_is_option = argv.get(next).is_some_and(|w| w.starts_with('-'));
        if value.is_none() && !switch(&key) && (opt(&key) || !next_is_option) {
            if removed(&key) {
                if next < argv.len() {
                    argv.remove(next);
                }
            } else {
                i += 1;
            }
        }
        i += 1;
    }
    Ok((argv.into_iter().map(OsString::from).collect(), dropped))
}

fn join_value(name: &str, value: &Option<String>) -> String {
    match value {
        Some(v) => format!("{name}={v}"),
        None => name.to_owned(),
    }
}
