//! The uv flow: the real uv runs once, live, with the guard index as its only index (the
//! same channel the user's index came by), so every sdist, wheel and pinned artifact it
//! fetches is judged before it is served, and a refusal fails uv before it builds or
//! installs anything. uv's cache is a fresh one for the run (`UV_NO_CACHE`), so nothing
//! reaches the install from a cache filled outside the guard.
//!
//! A project's `uv.lock` names its index and file URLs: before the run, a lock that names
//! the fronted index is pointed at the guard (each file URL mapped to the guard's number for
//! it, found on the project's page); after the run every guard URL in `uv.lock` and
//! `pyproject.toml` is mapped back to the upstream URL it stands for. Anything left unmapped
//! restores both files as they were and fails closed.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use reqwest::Url;

use super::{parts, GuardError, Manager, Prepared, Progress, Request, Session};
use crate::delegate::Delegation;
use crate::index::{IndexHandle, PypiUpstream};
use crate::manager::requirements::{Collected, Tree};
use crate::manager::uv::{self as args, IndexFrom, UvCommand, UvUpstream};
use crate::manager::{self, real};
use crate::policy::{Config, Mode};

/// What the uv flow needs around the hand-over.
pub(super) struct UvFlow {
    pub(super) local_paths: Vec<PathBuf>,
    project: Option<Project>,
    /// The guard index URL given to uv, as uv writes it back (`http://127.0.0.1:PORT/simple`,
    /// with a `/` where the upstream URL has one).
    guard: String,
    /// `http://127.0.0.1:PORT`: what no file may keep after the run.
    origin: String,
    upstream: UvUpstream,
    /// The upstream index as uv writes it in `uv.lock`: parsed, serialised, no credentials.
    registry: String,
}

/// A project's files, as they were before the run.
struct Project {
    lock: PathBuf,
    pyproject: PathBuf,
    lock_before: Option<Vec<u8>>,
    pyproject_before: Option<Vec<u8>>,
}

pub(super) fn prepare(
    request: &Request,
    config: Config,
    progress: Arc<dyn Progress>,
) -> Result<Prepared, GuardError> {
    let real = vec![real::find_real("uv")?.into_os_string()];
    let pass = || super::pass_through(real.clone(), request);
    let mut install = match args::parse(&request.args, &request.cwd)? {
        UvCommand::Guarded(install) => install,
        UvCommand::Other => return Ok(pass()),
    };
    if config.mode == Mode::Off {
        return Ok(pass());
    }
    let env = manager::process_env;
    // `--directory` and `--project` from the environment, as uv reads them: the project (and
    // so the uv.lock) the guard points at the guard must be the one uv works on.
    let set = |k: &str| env(k).filter(|v| !v.is_empty());
    if install.directory.is_none() {
        install.directory =
            set("UV_WORKING_DIR").map(|d| manager::absolute(&request.cwd, Path::new(&d)));
    }
    if install.project.is_none() {
        install.project = set("UV_PROJECT").map(PathBuf::from);
    }
    let local_paths = install.local_paths()?;
    read_requirement_files(&install.requirement_files, &request.cwd, &env)?;
    let start = install.start_dir(&request.cwd);
    let config_files = args::config_files(&install, &start, &env);
    let upstream = args::upstream(&install, &env, &config_files)?;
    let timeout = config.installer_timeout();
    let parts = parts(config, None, progress)?;
    let (index, scratch) = parts.start(
        vec![PypiUpstream::from_url(&upstream.url)],
        None,
        Manager::Uv,
    )?;
    let origin = index.pypi_url().origin().ascii_serialization();
    let slash = if upstream.url.path().ends_with('/') {
        "/"
    } else {
        ""
    };
    let guard = format!("{origin}/simple{slash}");
    let mut clean = upstream.url.clone();
    let _ = clean.set_username("");
    let _ = clean.set_password(None);
    let mut flow = UvFlow {
        local_paths,
        project: None,
        guard: guard.clone(),
        origin,
        upstream: upstream.clone(),
        registry: clean.to_string(),
    };
    if install.kind.is_project() {
        flow.project = find_project(&start)?;
    }
    let mut delegation = Delegation::new(real).args(install.guarded_args(&guard));
    let var = match upstream.from {
        IndexFrom::EnvDefaultIndex | IndexFrom::CliDefaultIndex | IndexFrom::ConfigDefaultIndex => {
            "UV_DEFAULT_INDEX"
        }
        _ => "UV_INDEX_URL",
    };
    delegation.env = vec![
        (var.into(), guard.clone().into()),
        ("UV_NO_CACHE".into(), "1".into()),
    ];
    delegation
        .env
        .extend(super::timeout_env(Manager::Uv, timeout));
    if install.kind.runs_a_program() {
        delegation.env.extend(super::loopback_env());
    } else {
        // uv may reach nothing but the guard: any other download (a file URL of a uv.lock
        // the guard did not point at itself, a managed Python) fails instead of bypassing it.
        delegation.env.extend(no_network_but_loopback());
    }
    delegation.cwd = Some(request.cwd.clone());
    // The program `uv run`/`uvx` starts is the user's: a `pip install` or `uv add` it runs is
    // guarded anew (through this guard index, while it serves), not passed straight on.
    delegation.active = !install.kind.runs_a_program();
    Ok(Prepared::Install(Box::new(Session {
        runtime: parts.runtime,
        index,
        gate: parts.gate,
        started: std::time::Instant::now(),
        manager: Manager::Uv,
        flow: super::Flow::Uv(flow),
        _scratch: scratch,
        delegation,
        memo: None,
        fast: false,
    })))
}

/// A proxy that refuses every connection for everything but loopback (the guard index).
pub(super) fn no_network_but_loopback() -> Vec<(std::ffi::OsString, std::ffi::OsString)> {
    let dead = "http://127.0.0.1:1";
    [
        ("HTTP_PROXY", dead),
        ("http_proxy", dead),
        ("HTTPS_PROXY", dead),
        ("https_proxy", dead),
        ("ALL_PROXY", dead),
        ("all_proxy", dead),
        ("NO_PROXY", "127.0.0.1,localhost"),
        ("no_proxy", "127.0.0.1,localhost"),
    ]
    .into_iter()
    .map(|(k, v)| (k.into(), v.into()))
    .collect()
}

/// Reads requirement files the way the pip guard does, and refuses what would send uv
/// past the guard: index options, find-links, remote files, direct URLs.
fn read_requirement_files(
    files: &[PathBuf],
    cwd: &Path,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<(), GuardError> {
    let mut tree = Tree::default();
    let mut out = Collected::default();
    for f in files {
        let name = f.file_name().and_then(|n| n.to_str()).unwrap_or_default();
        if matches!(
            name,
            "pyproject.toml" | "setup.py" | "setup.cfg" | "pylock.toml"
        ) || name.ends_with(".toml")
        {
            return Err(GuardError::Unsupported(format!(
                "cannot guard uv reading requirements from {} yet: pass a requirements.txt",
                f.display()
            )));
        }
        tree.read(f, false, cwd, env, &mut out)?;
    }
    let refuse = |what: &str| Err(GuardError::Unsupported(what.to_owned()));
    if !out.index_options.is_empty() {
        return refuse("cannot guard index options inside requirement files for uv yet: give the index with --index-url or UV_INDEX_URL");
    }
    if let Some(f) = out.find_links.first().or(out.remote_find_links.first()) {
        return refuse(&format!(
            "cannot guard the find-links {f} of a requirement file"
        ));
    }
    if let Some(f) = out.remote_files.first() {
        return refuse(&format!(
            "cannot guard the remote requirements file {f}: download it and pass it with -r"
        ));
    }
    if let Some(u) = out.urls.first() {
        return refuse(&format!(
            "cannot guard the direct URL requirement {u}: download the file and pass its path, \
             so that it is scanned first"
        ));
    }
    if let Some(p) = out.local_paths.first() {
        return refuse(&format!(
            "cannot guard the local path {} of a requirement file for uv yet: pass it on the \
             command line",
            p.display()
        ));
    }
    Ok(())
}

/// The project uv works on from `start`: the nearest folder with a `pyproject.toml` (none:
/// no project); its `uv.lock` is the nearest one at or above it beside a `pyproject.toml`
/// (a workspace's), else where uv would write it.
fn find_project(start: &Path) -> Result<Option<Project>, GuardError> {
    let Some(root) = start
        .ancestors()
        .find(|d| d.join("pyproject.toml").is_file())
        .map(Path::to_owned)
    else {
        return Ok(None);
    };
    let lock = root
        .ancestors()
        .filter(|d| d.join("pyproject.toml").is_file())
        .map(|d| d.join("uv.lock"))
        .find(|l| l.is_file())
        .unwrap_or_else(|| root.join("uv.lock"));
    let read = |p: &Path| match std::fs::read(p) {
        Ok(b) => Ok(Some(b)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(GuardError::Io {
            what: format!("cannot read {}", p.display()),
            source: e,
        }),
    };
    let pyproject = root.join("pyproject.toml");
    Ok(Some(Project {
        lock_before: read(&lock)?,
        pyproject_before: read(&pyproject)?,
        lock,
        pyproject,
    }))
}

/// The existing `uv.lock` pointed at the guard: its index URL becomes the guard's, and each
/// file URL the guard's path for that file (from the project's page, read through the
/// index). A lock that names another index, or a file its index no longer lists, is refused.
async fn lock_to_guard(
    path: &Path,
    bytes: &[u8],
    flow: &UvFlow,
    handle: &IndexHandle,
) -> Result<Vec<u8>, GuardError> {
    let cannot = |why: String| GuardError::Unsupported(format!("{}: {why}", path.display()));
    let text = std::str::from_utf8(bytes).map_err(|_| cannot("not UTF-8".into()))?;
    let doc: toml::Table = toml::from_str(text).map_err(|e| cannot(e.message().to_owned()))?;
    let registry = flow.registry.as_str();
    let mut replace: Vec<(String, String)> = vec![(registry.to_owned(), flow.guard.clone())];
    let packages = doc
        .get("package")
        .and_then(toml::Value::as_array)
        .cloned()
        .unwrap_or_default();
    for p in &packages {
        let name = p.get("name").and_then(toml::Value::as_str).unwrap_or("?");
        let Some(source) = p.get("source").and_then(toml::Value::as_table) else {
            continue;
        };
        if let Some(r) = source.get("registry").and_then(toml::Value::as_str) {
            if r != registry {
                return Err(cannot(format!(
                    "{name} is locked from the index {r}, and uv now reads {registry}: run \
                     `uv lock` against that index first"
                )));
            }
        } else if ["url", "git"].iter().any(|k| source.contains_key(*k)) {
            return Err(cannot(format!(
                "cannot guard {name}, locked from a direct URL or git"
            )));
        } else {
            continue;
        }
        let mut urls: Vec<&str> = Vec::new();
        if let Some(u) = p
            .get("sdist")
            .and_then(|s| s.get("url"))
            .and_then(toml::Value::as_str)
        {
            urls.push(u);
        }
        for w in p
            .get("wheels")
            .and_then(toml::Value::as_array)
            .into_iter()
            .flatten()
        {
            if let Some(u) = w.get("url").and_then(toml::Value::as_str) {
                urls.push(u);
            }
        }
        if urls.is_empty() {
            continue;
        }
        let files = handle.pypi_project_files(name).await.map_err(|e| {
            GuardError::CannotJudge(format!(
                "cannot read the files uv.lock pins for {name}: {e}"
            ))
        })?;
        for u in urls {
            let Some((_, local)) = files.iter().find(|(up, _)| up.as_str() == u) else {
                return Err(cannot(format!(
                    "{u} (locked for {name}) is not listed by {registry} (or is too new for \
                     min_release_age)"
                )));
            };
            replace.push((u.to_owned(), format!("{}{local}", flow.origin)));
        }
    }
    Ok(replace_quoted(text, &replace).into_bytes())
}

/// `text` with every TOML string `"from"` replaced by `"to"`.
fn replace_quoted(text: &str, pairs: &[(String, String)]) -> String {
    let mut out = text.to_owned();
    for (from, to) in pairs {
        out = out.replace(&format!("\"{from}\""), &format!("\"{to}\""));
    }
    out
}

impl UvFlow {
    /// Before the run: a `uv.lock` that exists is pointed at the guard ([`lock_to_guard`]).
    pub(super) fn point_lock(
        &self,
        runtime: &tokio::runtime::Runtime,
        handle: &IndexHandle,
    ) -> Result<(), String> {
        let Some(project) = &self.project else {
            return Ok(());
        };
        let Some(before) = &project.lock_before else {
            return Ok(());
        };
        let text = runtime
            .block_on(lock_to_guard(&project.lock, before, self, handle))
            .map_err(|e| e.to_string())?;
        std::fs::write(&project.lock, text)
            .map_err(|e| format!("cannot write {}: {e}", project.lock.display()))
    }

    /// After the run: maps every guard URL in `uv.lock` and `pyproject.toml` back to the
    /// upstream URL it stands for. On failure both files are put back as they were.
    pub(super) fn finish(&self, handle: &IndexHandle) -> Result<(), String> {
        let Some(project) = &self.project else {
            return Ok(());
        };
        let result = self.map_back(project, handle);
        if result.is_err() {
            for (path, before) in [
                (&project.lock, &project.lock_before),
                (&project.pyproject, &project.pyproject_before),
            ] {
                let _ = match before {
                    Some(b) => std::fs::write(path, b),
                    None => std::fs::remove_file(path),
                };
            }
        }
        result
    }

    fn map_back(&self, project: &Project, handle: &IndexHandle) -> Result<(), String> {
        // The lock names the index as uv serialises it; pyproject.toml as the user wrote it.
        let lock_registry = self.registry.clone();
        if let Some(text) = read_text(&project.lock)? {
            let mapped = self.map_text(&text, &lock_registry, handle, &project.lock)?;
            if mapped != text {
                std::fs::write(&project.lock, mapped)
                    .map_err(|e| format!("cannot write {}: {e}", project.lock.display()))?;
            }
        }
        if let Some(text) = read_text(&project.pyproject)? {
            if names_host(&text, self.origin.trim_start_matches("http://")) {
                if self.upstream.raw != lock_registry {
                    return Err(format!(
                        "uv wrote the guard's index into {}, and Cerebro cannot tell how uv \
                         would have written {}: run `uv add` with the index as uv prints it \
                         ({lock_registry})",
                        project.pyproject.display(),
                        self.upstream.raw
                    ));
                }
                let mapped =
                    self.map_text(&text, &self.upstream.raw, handle, &project.pyproject)?;
                std::fs::write(&project.pyproject, mapped)
                    .map_err(|e| format!("cannot write {}: {e}", project.pyproject.display()))?;
            }
        }
        Ok(())
    }

    /// Every `"<guard URL>"` string in `text` mapped: the index itself to `registry`, a file
    /// to its upstream URL; anything else of the guard's is an error.
    fn map_text(
        &self,
        text: &str,
        registry: &str,
        handle: &IndexHandle,
        file: &Path,
    ) -> Result<String, String> {
        // `"http://127.0.0.1:PORT/`: the slash keeps a longer port (an upstream on loopback)
        // from matching.
        let needle = format!("\"{}/", self.origin);
        let mut out = String::with_capacity(text.len());
        let mut rest = text;
        while let Some(at) = rest.find(&needle) {
            out.push_str(&rest[..at]);
            let tail = &rest[at + 1..];
            let end = tail.find('"').ok_or_else(|| {
                format!(
                    "{}: an unterminated string at the guard's URL",
                    file.display()
                )
            })?;
            let url = &tail[..end];
            let mapped = if url == self.guard
                || url.trim_end_matches('/') == self.guard.trim_end_matches('/')
            {
                registry.to_owned()
            } else if let Some((_, _, upstream)) = handle.pypi_file(url) {
                Url::parse(url)
                    .ok()
                    .filter(|u| u.path().starts_with("/files/"))
                    .map(|_| upstream.to_string())
                    .ok_or_else(|| format!("{}: cannot map {url} back", file.display()))?
            } else {
                return Err(format!(
                    "{} names {url}, which Cerebro cannot map back to {}",
                    file.display(),
                    registry
                ));
            };
            out.push('"');
            out.push_str(&mapped);
            out.push('"');
            rest = &tail[end + 1..];
        }
        out.push_str(rest);
        let host = self.origin.trim_start_matches("http://");
        if names_host(&out, host) {
            return Err(format!(
                "{} still names the guard index ({host}) after mapping it back",
                file.display()
            ));
        }
        Ok(out)
    }
}

/// Whether `text` names `host` (`127.0.0.1:PORT`) with no further digit of a longer port.
fn names_host(text: &str, host: &str) -> bool {
    text.match_indices(host).any(|(at, _)| {
        !text[at + host.len()..]
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_digit())
    })
}

fn read_text(path: &Path) -> Result<Option<String>, String> {
    match std::fs::read(path) {
        Ok(b) => String::from_utf8(b)
            .map(Some)
            .map_err(|_| format!("{} is not UTF-8", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(format!("cannot read {}: {e}", path.display())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_longer_port_is_another_host() {
        assert!(names_host(
            "x = \"http://127.0.0.1:3456/simple\"",
            "127.0.0.1:3456"
        ));
        assert!(!names_host(
            "x = \"http://127.0.0.1:34567/simple\"",
            "127.0.0.1:3456"
        ));
        assert!(names_host("127.0.0.1:3456", "127.0.0.1:3456"));
    }

    #[test]
    fn quoted_strings_only_are_replaced() {
        let text = "a = \"https://x/simple\"\nb = \"https://x/simple/more\"\n";
        let out = replace_quoted(
            text,
            &[(
                "https://x/simple".into(),
                "http://127.0.0.1:9/simple".into(),
            )],
        );
        assert_eq!(
            out,
            "a = \"http://127.0.0.1:9/simple\"\nb = \"https://x/simple/more\"\n"
        );
    }
}
