//! pipx's command line (pipx 1.x): `install`, `run` and `inject` fetch packages with pip
//! inside pipx's own virtual environments, and are guarded; the commands that only read or
//! remove (`list`, `uninstall`, `ensurepath`, …) pass through; the ones that fetch again
//! from what pipx stored earlier (`upgrade`, `reinstall`, `install-all`, `runpip`, …) are
//! refused, since the specs and pip arguments they reuse are not on the command line.
//!
//! Only what Cerebro reads exactly as pipx does is guarded: package specs that are names
//! with optional extras and version specifiers. URLs, paths, `--editable`, `--index-url`,
//! `--pip-args`, `--preinstall`, requirement files and options this parser does not know
//! (argparse also takes abbreviations of long options) are refused.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use super::ManagerError;

/// What a pipx command line asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PipxCommand {
    /// `install`, `run` or `inject`: fetches the packages in `specs` (with their trees).
    Guarded(PipxInstall),
    /// Anything that fetches nothing: runs as it is.
    Other,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PipxKind {
    Install,
    Run,
    Inject,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PipxInstall {
    pub kind: PipxKind,
    /// The requirement specs pip will be asked for (names, extras, version specifiers).
    pub specs: Vec<String>,
    /// The arguments to give the real pipx: the user's, with `--no-cache` added to `run` (a
    /// cached environment was filled outside this guard).
    pub args: Vec<OsString>,
}

impl PipxKind {
    /// Whether pipx goes on to start the user's program.
    pub fn runs_a_program(self) -> bool {
        self == PipxKind::Run
    }
}

fn refuse(reason: impl Into<String>) -> ManagerError {
    ManagerError::Argument {
        manager: "pipx",
        reason: reason.into(),
    }
}

/// Subcommands that fetch from specs or pip arguments pipx stored earlier.
const REFUSED: &[&str] = &[
    "upgrade",
    "upgrade-all",
    "upgrade-shared",
    "reinstall",
    "reinstall-all",
    "install-all",
    "runpip",
];

/// Flags (no value) every guarded subcommand takes.
const FLAGS: &[&str] = &[
    "--quiet",
    "--verbose",
    "--global",
    "--system-site-packages",
    "--include-deps",
    "--force",
    "--fetch-missing-python",
    "--include-apps",
    "--with-suffix",
    "--no-cache",
];

/// Options with a value that change nothing about what is fetched.
const VALUED: &[&str] = &["--suffix", "--python"];

/// Parses pipx's arguments (without `pipx` itself), in folder `cwd`.
pub fn parse(args: &[OsString], cwd: &Path) -> Result<PipxCommand, ManagerError> {
    let words = args
        .iter()
        .map(|a| {
            a.to_str()
                .map(str::to_owned)
                .ok_or_else(|| refuse(format!("the argument {a:?} is not UTF-8")))
        })
        .collect::<Result<Vec<String>, _>>()?;
    // Global options before the subcommand: pipx's shared ones.
    let mut i = 0;
    while i < words.len() && words[i].starts_with('-') {
        match words[i].as_str() {
            "--quiet" | "--verbose" | "--global" | "-q" | "-v" | "-qq" | "-vv" => i += 1,
            // --help, --version and anything else: pipx runs no subcommand.
            _ => return Ok(PipxCommand::Other),
        }
    }
    let Some(sub) = words.get(i) else {
        return Ok(PipxCommand::Other);
    };
    let kind = match sub.as_str() {
        "install" => PipxKind::Install,
        "run" => PipxKind::Run,
        "inject" => PipxKind::Inject,
        s if REFUSED.contains(&s) => {
            return Err(refuse(format!(
                "cannot guard `pipx {s}` yet (it fetches again from what pipx stored): \
                 uninstall and `pipx install` the package instead"
            )))
        }
        _ => return Ok(PipxCommand::Other),
    };
    let mut positional: Vec<String> = Vec::new();
    let mut spec_option: Option<String> = None;
    let mut j = i + 1;
    while j < words.len() {
        let w = &words[j];
        j += 1;
        if w == "--" {
            positional.extend(words[j..].iter().cloned());
            break;
        }
        if w == "-h" || w == "--help" {
            return Ok(PipxCommand::Other);
        }
        if !w.starts_with('-') || w == "-" {
            positional.push(w.clone());
            if kind == PipxKind::Run {
                // `run APP ARGS...`: the rest is the app's.
                positional.extend(words[j..].iter().cloned());
                break;
            }
            continue;
        }
        let (name, inline) = match w.split_once('=') {
            Some((n, v)) if n.starts_with("--") => (n, Some(v.to_owned())),
            _ => (w.as_str(), None),
        };
        if name.starts_with("--") {
            if FLAGS.contains(&name) && inline.is_none() {
                continue;
            }
            if VALUED.contains(&name) || (name == "--spec" && kind == PipxKind::Run) {
                let value =
                    match inline {
                        Some(v) => v,
                        None => {
                            let v = words.get(j).cloned().ok_or_else(|| {
                                ManagerError::MissingValue {
                                    manager: "pipx",
                                    option: name.to_owned(),
                                }
                            })?;
                            j += 1;
                            v
                        }
                    };
                if name == "--spec" {
                    spec_option = Some(value);
                }
                continue;
            }
            return Err(match name {
                "--index-url" | "--pip-args" | "--editable" | "--preinstall" | "--requirement"
                | "--path" | "--pypackages" => refuse(format!(
                    "cannot guard pipx with {name} yet: the guard gives pip its index and \
                     judges packages by name only"
                )),
                _ => refuse(format!(
                    "cannot guard pipx with the option {name} (unknown to Cerebro, or \
                     abbreviated): spell out a supported option, or run with CEREBRO_POLICY=off"
                )),
            });
        }
        // Short options: only the flags -q, -v and -f, alone or clustered.
        if w[1..].chars().all(|c| matches!(c, 'q' | 'v' | 'f')) {
            continue;
        }
        return Err(refuse(format!(
            "cannot guard pipx with the option {w} (-i, -e and -r give pip what the guard \
             cannot judge)"
        )));
    }
    let mut specs = Vec::new();
    match kind {
        PipxKind::Install => specs.extend(positional.iter().cloned()),
        PipxKind::Inject => specs.extend(positional.iter().skip(1).cloned()),
        PipxKind::Run => {
            let Some(app) = positional.first() else {
                return Ok(PipxCommand::Other);
            };
            if app.contains("://") || app.ends_with(".py") || cwd.join(app).exists() {
                return Err(refuse(format!(
                    "cannot guard `pipx run {app}`: a script or path is not a package from \
                     the index"
                )));
            }
            specs.push(spec_option.unwrap_or_else(|| app.clone()));
        }
    }
    if specs.is_empty() {
        // pipx fails with its usage; nothing is fetched.
        return Ok(PipxCommand::Other);
    }
    for s in &specs {
        check_spec(s, cwd)?;
    }
    let mut out: Vec<OsString> = args.to_vec();
    if kind == PipxKind::Run {
        // Right after `run`: a cached environment was filled outside this guard.
        out.insert(i + 1, "--no-cache".into());
    }
    Ok(PipxCommand::Guarded(PipxInstall {
        kind,
        specs,
        args: out,
    }))
}

/// A spec pip reads as a name from the index: `name[extras] <version specifiers>`, no URL,
/// no path, no environment marker; and no file or folder of that name in `cwd` (pipx would
/// install it as a local path).
fn check_spec(spec: &str, cwd: &Path) -> Result<(), ManagerError> {
    let name_end = spec
        .find(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
        .unwrap_or(spec.len());
    let (name, rest) = spec.split_at(name_end);
    let rest = rest.trim_start();
    // `[extras]`, then only version specifier characters: no `@`, `/`, `:` or `;`.
    let rest = match rest.strip_prefix('[') {
        Some(r) => r.split_once(']').filter(|(extras, _)| {
            extras
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | ',' | ' '))
        }),
        None => Some(("", rest)),
    }
    .map(|(_, after)| after);
    let version_ok = rest.is_some_and(|rest| {
        rest.chars().all(|c| {
            c.is_ascii_alphanumeric()
                || matches!(c, '<' | '>' | '=' | '!' | '~' | ',' | '.' | '*' | '+' | ' ')
        })
    });
    let first_ok = name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphanumeric());
    if !first_ok || !version_ok {
        return Err(refuse(format!(
            "cannot guard the spec {spec:?}: only `name[extras]<version specifiers>` from the \
             index is judged (no URL, path or marker)"
        )));
    }
    let local: PathBuf = cwd.join(name);
    if local.exists() {
        return Err(refuse(format!(
            "cannot guard {spec:?}: pipx would install the local path {} instead of the \
             package",
            local.display()
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manager::test_util::{args, strings};

    fn guarded(words: &[&str]) -> PipxInstall {
        let dir = tempfile::tempdir().unwrap();
        match parse(&args(words), dir.path()).unwrap() {
            PipxCommand::Guarded(g) => g,
            other => panic!("{words:?}: {other:?}"),
        }
    }

    fn refused(words: &[&str]) -> String {
        let dir = tempfile::tempdir().unwrap();
        parse(&args(words), dir.path()).unwrap_err().to_string()
    }

    #[test]
    fn install_inject_run_are_guarded() {
        let g = guarded(&["install", "--force", "black[d]>=24,<25", "ruff"]);
        assert_eq!(g.kind, PipxKind::Install);
        assert_eq!(g.specs, ["black[d]>=24,<25", "ruff"]);
        let g = guarded(&["inject", "-f", "black", "click==8.1.7"]);
        assert_eq!(g.specs, ["click==8.1.7"]);
        let g = guarded(&["run", "--spec", "cowsay==6", "cowsay", "-t", "--index-url"]);
        assert_eq!(g.specs, ["cowsay==6"]);
        assert_eq!(
            strings(&g.args),
            [
                "run",
                "--no-cache",
                "--spec",
                "cowsay==6",
                "cowsay",
                "-t",
                "--index-url"
            ]
        );
        let g = guarded(&["--verbose", "run", "pycowsay", "hi"]);
        assert_eq!(g.specs, ["pycowsay"]);
        assert_eq!(strings(&g.args)[..3], ["--verbose", "run", "--no-cache"]);
    }

    #[test]
    fn what_is_not_a_name_is_refused() {
        for words in [
            &["install", "--index-url", "https://x/simple", "a"][..],
            &["install", "-i", "https://x/simple", "a"],
            &["install", "--pip-args=--pre", "a"],
            &["install", "--editable", "."],
            &["install", "--preinstall", "b", "a"],
            &["install", "--ind", "https://x", "a"],
            &["install", "git+https://github.com/x/y"],
            &["install", "a @ https://x/a.whl"],
            &["install", "./a"],
            &["install", "a; python_version>'3'"],
            &["install", "a[x"],
            &["install", "a[x/y]"],
            &["run", "--spec", "git+https://x/y", "y"],
            &["run", "https://x/script.py"],
            &["inject", "v", "-r", "req.txt"],
            &["upgrade", "black"],
            &["reinstall-all"],
        ] {
            let why = refused(words);
            assert!(why.starts_with("pipx: "), "{words:?}: {why}");
        }
    }

    #[test]
    fn a_local_folder_named_like_the_spec_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("black")).unwrap();
        assert!(parse(&args(&["install", "black"]), dir.path()).is_err());
    }

    #[test]
    fn others_pass_through() {
        let dir = tempfile::tempdir().unwrap();
        for words in [
            &["list"][..],
            &["uninstall", "black"],
            &["ensurepath"],
            &["--version"],
            &["install", "--help"],
            &[],
        ] {
            assert_eq!(
                parse(&args(words), dir.path()).unwrap(),
                PipxCommand::Other,
                "{words:?}"
            );
        }
    }
}
