//! The Poetry flow: the real Poetry runs once, live, and every HTTP request it makes goes to
//! the guard index, which judges every artifact before it serves it (an sdist before Poetry
//! may build it to read its metadata, during `lock`, `add` or `update` as during `install`),
//! and a refusal fails Poetry before it builds or installs anything.
//!
//! Poetry cannot be pointed at another index by configuration: its PyPI source is
//! `https://pypi.org/` in its code, and the other sources are the project's own
//! `[[tool.poetry.source]]` URLs, which Poetry writes into `poetry.lock`. So the guard runs
//! the Python the real `poetry` script names with a small hook ([`HOOK`]) in front of
//! Poetry's own entry point: it sends each request of `requests` (which all of Poetry's
//! downloads use) to `/poetry?url=…` on the guard index instead, and gives the answer back as
//! the answer of the URL Poetry asked for (the index, `index::poetry`, decides what every URL
//! gets, and refuses what it does not front). Poetry sees the URLs a bare run sees, so
//! `poetry.lock` and `pyproject.toml` come out as a bare run writes them; nothing is rewritten.
//! The hook also gives Poetry fresh artifact and HTTP caches for the run (what an unguarded
//! run cached is never installed unjudged; its virtual environments stay where they are),
//! and, since Poetry installs each package as soon as it has downloaded it, has every archive
//! Poetry is about to install judged (in parallel) before the first one is installed: a
//! refusal stops the install with nothing installed.
//! Anything else that would reach the network (git, a Python download) meets a proxy that
//! refuses every connection but loopback's.
//!
//! Path dependencies (folders and archives on disk) are judged where they are before Poetry
//! runs, as uv's local packages are. When the guard stops the run (a refusal, or something
//! it could not judge), the project's `pyproject.toml` and `poetry.lock` are put back as
//! they were before Poetry ran.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use reqwest::Url;

use super::{parts, GuardError, Manager, Prepared, Progress, Request, Session};
use crate::delegate::Delegation;
use crate::index::{PoetryFront, PoetrySource, PypiUpstream};
use crate::manager::poetry::{self as args, PoetryCommand};
use crate::manager::real;
use crate::policy::{self as policy_mod, Config, Mode};

/// What a `poetry.lock` locks outside the indexes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LockedOutside {
    /// Folders and archives on disk (path dependencies), absolute: judged before Poetry runs.
    pub local: Vec<PathBuf>,
    /// Each package from a git repository or a URL, with what it is: refused.
    pub unfronted: Vec<String>,
}

/// Reads a `poetry.lock` into what it locks outside the indexes; the error is one line naming
/// the file. The CLI passes `cerebro audit`'s reader of that file (cerebro-audit depends on
/// this crate, so the guard cannot call it itself).
pub type LockReader = fn(&Path) -> Result<LockedOutside, String>;

/// The hook the guard runs in Poetry's own Python, in front of Poetry's entry point
/// (`poetry.console.application:main`, as the `poetry` script starts it). Arguments: the
/// guard index's origin, the real `poetry` script, the run's cache folder, `--`, then
/// Poetry's own arguments. It exits 78 with one line rather than run Poetry unhooked.
pub const HOOK: &str = r##"# Cerebro's hook for one guarded Poetry run (see cerebro-guard's guard/poetry.rs).
import os
import sys


def _cerebro_fail(why):
    sys.stderr.write("cerebro: cannot guard poetry: %s\n" % why)
    sys.exit(78)


if len(sys.argv) < 5 or sys.argv[4] != "--":
    _cerebro_fail("the hook was started without its arguments")
_guard, _script, _cache = sys.argv[1:4]
sys.argv = [_script] + sys.argv[5:]
sys.path[0] = os.path.dirname(os.path.realpath(_script))

try:
    from pathlib import Path
    from urllib.parse import quote

    import requests.adapters
    from poetry.__version__ import __version__ as _version
    from poetry.config.config import Config
except Exception as e:
    _cerebro_fail("its Python cannot import poetry and requests (%s)" % e)

if not _version.startswith("2."):
    _cerebro_fail("Cerebro guards Poetry 2.x, and this is Poetry %s" % _version)
for _name in ("repository_cache_directory", "artifacts_cache_directory"):
    if not isinstance(getattr(Config, _name, None), property):
        _cerebro_fail("this Poetry has no Config.%s to give a fresh cache" % _name)
Config.repository_cache_directory = property(
    lambda self: Path(_cache) / "cache" / "repositories"
)
Config.artifacts_cache_directory = property(lambda self: Path(_cache) / "artifacts")

_send = requests.adapters.HTTPAdapter.send
_prefix = _guard + "/poetry?url="


def _cerebro_send(self, request, *args, **kwargs):
    url = request.url
    if url.startswith(_prefix):
        return _send(self, request, *args, **kwargs)
    request.url = _prefix + quote(url, safe="")
    # Straight to the guard on loopback, whatever proxy the URL would have used.
    if len(args) >= 5:
        args = args[:4] + ({},) + args[5:]
    else:
        kwargs["proxies"] = {}
    try:
        response = _send(self, request, *args, **kwargs)
    finally:
        request.url = url
    response.url = url
    return response


requests.adapters.HTTPAdapter.send = _cerebro_send

try:
    from concurrent.futures import ThreadPoolExecutor

    from poetry.installation.executor import Executor
except Exception as e:
    _cerebro_fail("this Poetry has no installer Cerebro knows (%s)" % e)
_execute = Executor.execute


def _cerebro_judge(self, package, link):
    response = self._authenticator.request(
        "get", link.url_without_fragment, raise_for_status=False, stream=True
    )
    try:
        if response.status_code == 200:
            return None
        why = response.text.strip() or "HTTP %d" % response.status_code
        return "%s %s: %s" % (package.pretty_name, package.full_pretty_version, why)
    finally:
        response.close()


def _cerebro_execute(self, operations):
    # Poetry installs each package as soon as it has it; the guard judges every archive
    # Poetry is about to install before the first is installed (one request each, in
    # parallel: the guard fetches, verifies and judges; Poetry's own download comes after).
    if getattr(self, "_enabled", True) and not getattr(self, "_dry_run", False):
        wanted = []
        for op in operations:
            if op.job_type not in ("install", "update") or op.skipped:
                continue
            package = op.package
            # On disk: judged before the run. Git: refused before the run.
            if package.source_type in ("directory", "file", "git"):
                continue
            if package.source_type == "url":
                wanted.append((package, _CerebroLink(package.source_url)))
            else:
                wanted.append((package, self._chooser.choose_for(package)))
        with ThreadPoolExecutor(max_workers=8) as pool:
            refused = [r for r in pool.map(lambda w: _cerebro_judge(self, *w), wanted) if r]
        if refused:
            raise RuntimeError(
                "Cerebro stopped the install before anything was installed:\n  "
                + "\n  ".join(refused)
            )
    return _execute(self, operations)


class _CerebroLink:
    def __init__(self, url):
        self.url_without_fragment = url.split("#", 1)[0]


Executor.execute = _cerebro_execute

from poetry.console.application import main

sys.exit(main())
"##;

/// PyPI as Poetry's code names it.
const POETRY_PYPI: &str = "https://pypi.org/";

/// What the Poetry flow keeps: the path dependencies to judge before Poetry runs, and the
/// project's files as they were, for after the run.
pub(super) struct PoetryFlow {
    pub(super) local_paths: Vec<PathBuf>,
    before: Vec<(PathBuf, Option<Vec<u8>>)>,
}

impl PoetryFlow {
    /// Puts the project's files back as they were before Poetry ran.
    pub(super) fn restore(&self) -> Result<(), String> {
        for (path, bytes) in &self.before {
            let done = match bytes {
                Some(b) => std::fs::write(path, b),
                None => match std::fs::remove_file(path) {
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
                    other => other,
                },
            };
            done.map_err(|e| format!("cannot put {} back: {e}", path.display()))?;
        }
        Ok(())
    }
}

/// Sets up a guarded Poetry run (or the plain one, for a command that fetches nothing or the
/// policy `off`): the project read and checked, the guard index in front of PyPI and the
/// project's sources, the hook written, and the real Poetry's Python made to start it.
pub(super) fn prepare(
    request: &Request,
    config: Config,
    progress: Arc<dyn Progress>,
    lock_reader: Option<LockReader>,
) -> Result<Prepared, GuardError> {
    let script = real::find_real("poetry")?;
    let pass = || super::pass_through(vec![script.clone().into_os_string()], request);
    if config.mode == Mode::Off {
        return Ok(pass());
    }
    let run = match args::parse(&request.args, &request.cwd)? {
        PoetryCommand::Guarded(run) => run,
        PoetryCommand::Other => return Ok(pass()),
    };
    let start = run.start.clone().unwrap_or_else(|| request.cwd.clone());
    let project = args::project(&start)?;
    let mut before = Vec::new();
    let mut local_paths = run.local_paths.clone();
    if let Some(p) = &project {
        local_paths.extend(p.local_paths.iter().cloned());
        if p.lock.is_file() {
            let Some(read) = lock_reader else {
                return Err(GuardError::Unsupported(format!(
                    "cannot guard poetry here: {} cannot be read without cerebro audit's reader",
                    p.lock.display()
                )));
            };
            let locked = read(&p.lock).map_err(GuardError::Unsupported)?;
            local_paths.extend(locked.local);
            if let Some(first) = locked.unfronted.first() {
                return Err(GuardError::Unsupported(format!(
                    "{}: cannot guard {first}: it is not a package of an index, so Cerebro \
                     cannot judge it before Poetry builds or installs it",
                    p.lock.display()
                )));
            }
        }
        for path in [&p.pyproject, &p.lock] {
            let bytes = match std::fs::read(path) {
                Ok(b) => Some(b),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
                Err(e) => {
                    return Err(GuardError::Io {
                        what: format!("cannot read {}", path.display()),
                        source: e,
                    })
                }
            };
            before.push((path.clone(), bytes));
        }
    }
    let local_paths = with_nested(local_paths)?;
    let mut command = interpreter(&script)?;
    let (public_pypi, _) = policy_mod::public_registries()?;
    let join = |base: &Url, path: &str| {
        base.join(path).map_err(|e| {
            GuardError::Unsupported(format!("cannot front {base}{path} for Poetry: {e}"))
        })
    };
    let pypi = Url::parse(POETRY_PYPI).expect("valid URL");
    let mut front = PoetryFront {
        sources: vec![PoetrySource {
            root: join(&pypi, "simple/")?,
            upstream: PypiUpstream::from_url(&join(&public_pypi, "simple/")?),
        }],
        json_api: Some((join(&pypi, "pypi/")?, join(&public_pypi, "pypi/")?, 0)),
    };
    for (_, url) in project.iter().flat_map(|p| &p.sources) {
        let upstream = PypiUpstream::from_url(url);
        front.sources.push(PoetrySource {
            root: upstream.url.clone(),
            upstream,
        });
    }
    let timeout = config.installer_timeout();
    let parts = parts(config, None, progress)?;
    let (index, scratch) = parts.start_with(Vec::new(), None, Manager::Poetry, Some(front))?;
    let hook = scratch.path().join("cerebro_poetry_hook.py");
    std::fs::write(&hook, HOOK)
        .map_err(GuardError::io(format!("cannot write {}", hook.display())))?;
    let cache = scratch.path().join("cache");
    let origin = index.pypi_url().origin().ascii_serialization();
    command.extend([
        hook.into_os_string(),
        origin.into(),
        script.into_os_string(),
        cache.into_os_string(),
        "--".into(),
    ]);
    let mut delegation = Delegation::new(command).args(request.args.clone());
    // Poetry may reach nothing but the guard: git, a Python download or anything else that
    // leaves the hook's path fails instead of bypassing it.
    delegation.env = super::uv::no_network_but_loopback();
    // Poetry waits for the guard longer than the guard waits upstream (its default read
    // timeout, 15 s, is shorter than a judgement of a large archive can take).
    delegation
        .env
        .extend(super::timeout_env(Manager::Poetry, timeout));
    delegation.cwd = Some(request.cwd.clone());
    Ok(Prepared::Install(Box::new(Session {
        runtime: parts.runtime,
        index,
        gate: parts.gate,
        started: std::time::Instant::now(),
        manager: Manager::Poetry,
        flow: super::Flow::Poetry(PoetryFlow {
            local_paths,
            before,
        }),
        _scratch: scratch,
        delegation,
        memo: None,
        fast: false,
    })))
}

/// `paths` and, for each folder among them that is a project, its own path dependencies,
/// and theirs (Poetry builds them all while it locks): every folder Poetry may build is
/// judged before it runs. A nested project Cerebro cannot front is refused as the user's
/// own would be.
fn with_nested(mut paths: Vec<PathBuf>) -> Result<Vec<PathBuf>, GuardError> {
    let mut i = 0;
    while i < paths.len() {
        let path = paths[i].clone();
        i += 1;
        if !path.join("pyproject.toml").is_file() {
            continue;
        }
        for nested in args::project(&path)?
            .into_iter()
            .flat_map(|p| p.local_paths)
        {
            if !paths.contains(&nested) {
                paths.push(nested);
            }
        }
    }
    Ok(paths)
}

/// The interpreter (and its one argument, if any) that the `poetry` script's `#!` line
/// names, the way the kernel would start it: pip's launcher for long paths (`#!/bin/sh` and
/// an `'''exec' "PYTHON" "$0" "$@"` line) included.
fn interpreter(script: &Path) -> Result<Vec<OsString>, GuardError> {
    let not = |why: &str| {
        GuardError::Unsupported(format!(
            "cannot guard poetry: {} {why} (Cerebro runs Poetry's own Python with its hook)",
            script.display()
        ))
    };
    let bytes = std::fs::read(script)
        .map_err(GuardError::io(format!("cannot read {}", script.display())))?;
    let head = &bytes[..bytes.len().min(4096)];
    let text = String::from_utf8_lossy(head);
    let mut lines = text.lines();
    let first = lines.next().unwrap_or("");
    let Some(line) = first.strip_prefix("#!") else {
        return Err(not("is not a script"));
    };
    let mut words = line.split_whitespace();
    let Some(program) = words.next() else {
        return Err(not("has an empty #! line"));
    };
    let rest: Vec<&str> = words.collect();
    let file_name = |p: &str| {
        Path::new(p)
            .file_name()
            .and_then(|n| n.to_str())
            .map(str::to_owned)
    };
    let is_python =
        |p: &str| file_name(p).is_some_and(|n| n.starts_with("python") || n.starts_with("pypy"));
    let name = file_name(program).unwrap_or_default();
    if name == "sh" || name == "bash" {
        // pip's launcher: `'''exec' "/long path/python" "$0" "$@"`.
        let exec = lines
            .next()
            .and_then(|l| l.strip_prefix("'''exec' \""))
            .and_then(|l| l.split_once('"'))
            .map(|(p, _)| p.to_owned());
        return match exec {
            Some(p) if is_python(&p) => Ok(vec![p.into()]),
            _ => Err(not("is a shell script")),
        };
    }
    if name == "env" {
        return match rest.as_slice() {
            [p] if is_python(p) => Ok(vec![program.into(), (*p).into()]),
            _ => Err(not("starts a program Cerebro cannot tell is Python")),
        };
    }
    if !is_python(program) {
        return Err(not("does not start Python"));
    }
    // The kernel passes the rest of the line as one argument.
    let mut out: Vec<OsString> = vec![program.into()];
    if !rest.is_empty() {
        out.push(rest.join(" ").into());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nested_path_dependencies_are_judged_too() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a"), dir.path().join("b"));
        for d in [&a, &b] {
            std::fs::create_dir_all(d).unwrap();
        }
        let dep = |to: &str| format!("[tool.poetry.dependencies]\nx = {{ path = \"../{to}\" }}\n");
        std::fs::write(a.join("pyproject.toml"), dep("b")).unwrap();
        // b depends on a again: no loop.
        std::fs::write(b.join("pyproject.toml"), dep("a")).unwrap();
        assert_eq!(
            with_nested(vec![a.clone()]).unwrap(),
            [a.clone(), b.clone()]
        );
        std::fs::write(
            b.join("pyproject.toml"),
            "[tool.poetry.dependencies]\ny = { git = \"g\" }\n",
        )
        .unwrap();
        let e = with_nested(vec![a]).unwrap_err().to_string();
        assert!(e.contains("git dependency y"), "{e}");
    }

    #[test]
    fn the_python_a_poetry_script_names() {
        let dir = tempfile::tempdir().unwrap();
        let script = dir.path().join("poetry");
        let cases: [(&str, Option<&[&str]>); 6] = [
            (
                "#!/opt/venv/bin/python\nimport re\n",
                Some(&["/opt/venv/bin/python"]),
            ),
            (
                "#! /usr/bin/python3 -s\n",
                Some(&["/usr/bin/python3", "-s"]),
            ),
            (
                "#!/usr/bin/env python3\n",
                Some(&["/usr/bin/env", "python3"]),
            ),
            (
                "#!/bin/sh\n'''exec' \"/a b/venv/bin/python3.12\" \"$0\" \"$@\"\n' '''\n",
                Some(&["/a b/venv/bin/python3.12"]),
            ),
            ("\u{7f}ELF\u{2}\u{1}", None),
            ("#!/usr/bin/node\n", None),
        ];
        for (text, want) in cases {
            std::fs::write(&script, text).unwrap();
            let got = interpreter(&script);
            match want {
                Some(w) => assert_eq!(
                    got.unwrap(),
                    w.iter().map(OsString::from).collect::<Vec<_>>(),
                    "{text}"
                ),
                None => {
                    let e = got.unwrap_err().to_string();
                    assert!(e.contains("cannot guard poetry"), "{e}");
                }
            }
        }
    }
}
