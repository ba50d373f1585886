//! The npm flow: resolve with `npm install --package-lock-only --ignore-scripts` in a scratch
//! copy of the project (the user's `package.json` and lockfile stay as they are), through
//! the guard index; judge every tarball of the resulting lockfile; decide; hand over to the
//! user's own npm command pointed at the same index.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::Value;

use super::{
    parts, Decision, GuardError, Manager, Prepared, Progress, Report, Request, Resolved, Session,
};
use crate::delegate::Delegation;
use crate::manager::npm::{self as args, NpmCommand, NpmKind};
use crate::manager::{self, real};
use crate::policy::{Config, Mode, Prompter};
use cerebro_archive::Ecosystem;

/// Files of the project the resolution needs, copied into the scratch folder.
const PROJECT_FILES: [&str; 4] = [
    "package.json",
    "package-lock.json",
    "npm-shrinkwrap.json",
    ".npmrc",
];

pub(super) struct NpmFlow {
    /// The resolution run in the scratch project; `None` for `npm ci` (the lockfile is the
    /// resolution).
    resolve: Option<Delegation>,
    /// The lockfile to judge after the resolution.
    lockfile: PathBuf,
    local_paths: Vec<PathBuf>,
}

impl NpmFlow {
    pub(super) fn has_local_paths(&self) -> bool {
        !self.local_paths.is_empty()
    }
}

pub(super) fn prepare(
    request: &Request,
    config: Config,
    progress: Arc<dyn Progress>,
) -> Result<Prepared, GuardError> {
    let real = real::find_real("npm")?;
    let pass = || super::pass_through(vec![real.clone().into_os_string()], request);
    // `npm exec`/`npx`: the packages it would fetch are resolved and judged like an install
    // in an empty project (as npm installs them in its npx cache), then the user's own
    // `exec` runs through the same index.
    let (install, exec) = match args::parse(&request.args)? {
        NpmCommand::Install(install) => (install, None),
        NpmCommand::Exec(exec) => (exec.resolve.clone(), Some(exec)),
        NpmCommand::Other => return Ok(pass()),
    };
    if config.mode == Mode::Off {
        return Ok(pass());
    }
    if let Some(spec) = install.urls.first() {
        return Err(GuardError::Unsupported(format!(
            "cannot guard the package spec {spec} (git or URL): install it from a registry, \
             or download it and `npm install ./FILE.tgz` so it is scanned first"
        )));
    }
    let project = if install.global {
        None
    } else {
        Some(project_root(&request.cwd))
    };
    let env = manager::process_env;
    let npmrc_dir = project.clone().unwrap_or_else(|| request.cwd.clone());
    let npm_config = args::npm_config(&npmrc_dir, &install, &env)?;
    let timeout = config.installer_timeout();
    let parts = parts(config, npm_config.cafile.clone(), progress)?;
    let upstream = npm_config.clone();
    let (index, scratch) = parts.start(Vec::new(), Some(upstream), Manager::Npm)?;
    let guard_url = index.npm_url();
    let work = scratch.path().join("project");
    std::fs::create_dir_all(&work).map_err(GuardError::io("cannot make a scratch folder"))?;
    match &project {
        Some(_) if exec.is_some() => {
            // Only the project's settings: npm installs what it runs apart from the project.
            let npmrc = args::local_prefix(&request.cwd, &install).join(".npmrc");
            if npmrc.is_file() {
                std::fs::copy(&npmrc, work.join(".npmrc")).map_err(GuardError::io(format!(
                    "cannot copy {} into the scratch folder",
                    npmrc.display()
                )))?;
            }
            std::fs::write(work.join("package.json"), "{}\n")
                .map_err(GuardError::io("cannot write the scratch package.json"))?;
        }
        Some(root) => {
            for name in PROJECT_FILES {
                let from = root.join(name);
                if from.is_file() {
                    std::fs::copy(&from, work.join(name)).map_err(GuardError::io(format!(
                        "cannot copy {} into the scratch folder",
                        from.display()
                    )))?;
                }
            }
            if !work.join("package.json").exists() {
                std::fs::write(work.join("package.json"), "{}\n")
                    .map_err(GuardError::io("cannot write the scratch package.json"))?;
            }
        }
        None => std::fs::write(work.join("package.json"), "{}\n")
            .map_err(GuardError::io("cannot write the scratch package.json"))?,
    }
    let real_os = real.clone().into_os_string();
    let (resolve, lockfile) = if install.kind == NpmKind::Ci {
        let root = project.clone().unwrap_or_else(|| request.cwd.clone());
        let lock = ["npm-shrinkwrap.json", "package-lock.json"]
            .iter()
            .map(|n| root.join(n))
            .find(|p| p.is_file())
            .unwrap_or_else(|| root.join("package-lock.json"));
        (None, lock)
    } else {
        let mut d = Delegation::new(vec![real_os.clone()]).args(args::resolve_args(
            &install,
            &npm_config,
            &guard_url,
        ));
        d.cwd = Some(work.clone());
        d.env = super::run_env(Manager::Npm, timeout);
        // The scratch copy resolves like the project but must not write the user's cache
        // of lockfile state anywhere else.
        (Some(d), work.join("package-lock.json"))
    };
    let handed_over = exec.as_ref().map_or(&install, |e| &e.invocation);
    let mut delegation = Delegation::new(vec![real_os]).args(args::guarded_args(
        handed_over,
        &npm_config,
        &guard_url,
    ));
    delegation.cwd = Some(request.cwd.clone());
    delegation.env = super::run_env(Manager::Npm, timeout);
    let local_paths = install
        .local_paths
        .iter()
        .map(|p| {
            if p.is_absolute() {
                p.clone()
            } else {
                request.cwd.join(p)
            }
        })
        .collect();
    let memo = super::memo_for(&parts.gate, |k| {
        k.text("npm").text(&request.cwd.to_string_lossy());
        k.text(&real.to_string_lossy());
        for a in &request.args {
            k.text(&a.to_string_lossy());
        }
        k.env_with_prefixes(&["npm_config_", "NODE_"]);
        if let Some(root) = &project {
            for name in PROJECT_FILES {
                k.file(&root.join(name));
            }
        }
        if let Some(home) = std::env::var_os("HOME") {
            k.file(&Path::new(&home).join(".npmrc"));
        }
    });
    Ok(Prepared::Install(Box::new(Session {
        runtime: parts.runtime,
        index,
        gate: parts.gate,
        started: std::time::Instant::now(),
        manager: Manager::Npm,
        flow: super::Flow::Npm(NpmFlow {
            resolve,
            lockfile,
            local_paths,
        }),
        _scratch: scratch,
        delegation,
        memo,
        fast: false,
    })))
}

/// npm's project root: the nearest folder up from `cwd` with a `package.json`, else `cwd`.
fn project_root(cwd: &Path) -> PathBuf {
    cwd.ancestors()
        .find(|d| d.join("package.json").is_file())
        .unwrap_or(cwd)
        .to_path_buf()
}

/// The hash a lockfile records for a package, which the installer checks the bytes against.
pub(super) enum LockedHash {
    /// None recorded: the registry's own (`dist.integrity`) is checked.
    Registry,
    /// Subresource Integrity (`sha512-…`).
    Integrity(String),
    /// A hex sha1 (yarn 1's `resolved` fragment).
    Sha1(String),
}

/// One package a JavaScript lockfile pins.
pub(super) struct LockedTarball {
    pub name: String,
    pub version: String,
    pub hash: LockedHash,
}

/// Judges the packages a lockfile pins (pnpm, yarn, bun): releases too new for the cooldown
/// go to the policy first ([`decide_locked_pins`]); then every tarball is fetched through
/// the guard index, verified against the lockfile's hash where it records one (the bytes the
/// installer accepts, from the guard or its own store, are exactly the bytes judged), and
/// judged, all at once; one decision for the whole tree.
pub(super) fn judge_locked_tarballs(
    session: &Session,
    packages: Vec<LockedTarball>,
    interactive: bool,
    prompter: &mut dyn Prompter,
) -> Result<Report, GuardError> {
    let named: Vec<(String, String)> = packages
        .iter()
        .map(|p| (p.name.clone(), p.version.clone()))
        .collect();
    if let Some(stop) = decide_locked_pins(session, &named, interactive, prompter)? {
        return Ok(stop);
    }
    let index = session.index.handle();
    let results = session.runtime.block_on(async {
        let mut set = tokio::task::JoinSet::new();
        let mut out = Vec::new();
        for p in packages {
            let mut tarball = match index.npm_tarball(&p.name, &p.version).await {
                Ok(t) => t,
                Err(e) => {
                    out.push(Err(e));
                    continue;
                }
            };
            match p.hash {
                LockedHash::Registry => {}
                LockedHash::Integrity(sri) => {
                    tarball.integrity = Some(sri);
                    tarball.shasum = None;
                }
                LockedHash::Sha1(hex) => {
                    tarball.integrity = None;
                    tarball.shasum = Some(hex);
                }
            }
            let index = index.clone();
            set.spawn(async move { index.admit_npm(&tarball).await });
        }
        while let Some(r) = set.join_next().await {
            out.push(r.unwrap_or_else(|e| Err(format!("internal error: {e}"))));
        }
        out
    });
    session.conclude(results, Vec::new(), interactive, prompter)
}

/// The lockfile pins (`(name, version)`) of releases too new for the cooldown, asked of the
/// guard index all at once, go to the policy before anything is judged (npm, pnpm and bun
/// alike). `Some(report)` when the run stops there.
pub(super) fn decide_locked_pins(
    session: &Session,
    packages: &[(String, String)],
    interactive: bool,
    prompter: &mut dyn Prompter,
) -> Result<Option<Report>, GuardError> {
    let index = session.index.handle();
    let pins = session.runtime.block_on(async {
        let mut set = tokio::task::JoinSet::new();
        for (name, version) in packages {
            let (name, version, index) = (name.clone(), version.clone(), index.clone());
            set.spawn(async move { index.npm_pin(&name, &version).await });
        }
        let mut pins = Vec::new();
        while let Some(r) = set.join_next().await {
            match r.unwrap_or_else(|e| Err(format!("internal error: {e}"))) {
                Ok(Some(held)) => pins.push(held),
                Ok(None) => {}
                Err(detail) => return Err(detail),
            }
        }
        pins.sort_by(|a, b| (&a.name, &a.version).cmp(&(&b.name, &b.version)));
        Ok(pins)
    });
    match pins {
        Err(detail) => return Ok(Some(session.report(Decision::CannotJudge, Some(detail)))),
        Ok(pins) if !pins.is_empty() => {
            if let Some(stop) = session.decide_pins(&pins, interactive, prompter)? {
                return Ok(Some(session.report(stop, None)));
            }
        }
        Ok(_) => {}
    }
    Ok(None)
}

pub(super) fn judge(
    session: &Session,
    flow: &NpmFlow,
    interactive: bool,
    prompter: &mut dyn Prompter,
) -> Result<Report, GuardError> {
    if let Some(stop) =
        session.judge_locals(Ecosystem::Npm, &flow.local_paths, interactive, prompter)?
    {
        return Ok(stop);
    }
    if let Some(resolve) = &flow.resolve {
        let resolved = session.resolve_loop(interactive, prompter, || {
            resolve
                .run_captured()
                .map_err(GuardError::io("cannot run npm"))
        });
        match resolved {
            Ok(Resolved::Done) => {}
            Ok(Resolved::Stopped(d)) => return Ok(session.report(d, None)),
            Ok(Resolved::ManagerFailed) => return Ok(session.report(Decision::Proceed, None)),
            Err(GuardError::CannotJudge(detail)) => {
                return Ok(session.report(Decision::CannotJudge, Some(detail)));
            }
            Err(e) => return Err(e),
        }
    }
    let Ok(text) = std::fs::read(&flow.lockfile) else {
        // `npm ci` without a lockfile: npm refuses on its own, and installs nothing.
        return Ok(session.report(Decision::Proceed, None));
    };
    let lock: Value = serde_json::from_slice(&text).map_err(|e| {
        GuardError::Unsupported(format!("cannot read {}: {e}", flow.lockfile.display()))
    })?;
    // The lockfile npm writes records the registry's own integrity: the registry's is checked.
    let packages = locked_packages(&lock)
        .into_iter()
        .map(|(name, version)| LockedTarball {
            name,
            version,
            hash: LockedHash::Registry,
        })
        .collect();
    judge_locked_tarballs(session, packages, interactive, prompter)
}

/// The registry packages of a lockfile (v1, v2 or v3) that npm would install on this
/// machine: name and version, each once. Links, local folders and bundled packages (judged
/// inside their parent's tarball) are left out, and so are optional packages for another
/// platform, which npm skips.
pub fn locked_packages(lock: &Value) -> Vec<(String, String)> {
    let mut out = BTreeSet::new();
    if let Some(packages) = lock.get("packages").and_then(Value::as_object) {
        for (path, meta) in packages {
            if path.is_empty() {
                continue;
            }
            let flag = |k: &str| meta.get(k).and_then(Value::as_bool).unwrap_or(false);
            if flag("link") || flag("inBundle") {
                continue;
            }
            if let Some(resolved) = meta.get("resolved").and_then(Value::as_str) {
                if resolved.starts_with("file:") || resolved.starts_with("git") {
                    continue;
                }
            }
            if flag("optional") && !platform_matches(meta) {
                continue;
            }
            let name = meta
                .get("name")
                .and_then(Value::as_str)
                .map(str::to_owned)
                .or_else(|| path.rsplit_once("node_modules/").map(|(_, n)| n.to_owned()));
            let version = meta.get("version").and_then(Value::as_str);
            if let (Some(name), Some(version)) = (name, version) {
                out.insert((name, version.to_owned()));
            }
        }
    } else if let Some(deps) = lock.get("dependencies").and_then(Value::as_object) {
        v1_dependencies(deps, &mut out);
    }
    out.into_iter().collect()
}

fn v1_dependencies(deps: &serde_json::Map<String, Value>, out: &mut BTreeSet<(String, String)>) {
    for (name, meta) in deps {
        let flag = |k: &str| meta.get(k).and_then(Value::as_bool).unwrap_or(false);
        let version = meta.get("version").and_then(Value::as_str).unwrap_or("");
        let local =
            version.starts_with("file:") || version.contains("://") || version.starts_with("git");
        if !flag("bundled") && !local && !version.is_empty() {
            out.insert((name.clone(), version.to_owned()));
        }
        if let Some(nested) = meta.get("dependencies").and_then(Value::as_object) {
            v1_dependencies(nested, out);
        }
    }
}

/// Whether a package's `os` and `cpu` lists (npm's `["linux", "!win32"]` form) admit this
/// machine.
pub(super) fn platform_matches(meta: &Value) -> bool {
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
    allowed(meta.get("os"), os) && allowed(meta.get("cpu"), cpu)
}

fn allowed(list: Option<&Value>, here: &str) -> bool {
    let Some(list) = list.and_then(Value::as_array) else {
        return true;
    };
    let items: Vec<&str> = list.iter().filter_map(Value::as_str).collect();
    if items.iter().any(|i| i.strip_prefix('!') == Some(here)) {
        return false;
    }
    let positive: Vec<&&str> = items.iter().filter(|i| !i.starts_with('!')).collect();
    positive.is_empty() || positive.iter().any(|i| **i == here)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn lockfile_v3_packages() {
        let lock = json!({
            "lockfileVersion": 3,
            "packages": {
                "": {"name": "app"},
                "node_modules/a": {"version": "1.0.0", "integrity": "sha512-x"},
                "node_modules/a/node_modules/b": {"version": "2.0.0"},
                "node_modules/alias": {"name": "real-name", "version": "3.0.0"},
                "node_modules/@s/c": {"version": "1.2.3"},
                "node_modules/linked": {"link": true, "resolved": "../x"},
                "node_modules/local": {"version": "1.0.0", "resolved": "file:../local"},
                "node_modules/bundled": {"version": "1.0.0", "inBundle": true},
                "node_modules/nope": {"version": "1.0.0", "optional": true, "os": ["plan9"]},
                "node_modules/yes": {"version": "1.0.0", "optional": true, "os": ["!plan9"]}
            }
        });
        let got = locked_packages(&lock);
        let want: Vec<(String, String)> = [
            ("@s/c", "1.2.3"),
            ("a", "1.0.0"),
            ("b", "2.0.0"),
            ("real-name", "3.0.0"),
            ("yes", "1.0.0"),
        ]
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
        assert_eq!(got, want);
    }

    #[test]
    fn lockfile_v1_dependencies() {
        let lock = json!({"lockfileVersion": 1, "dependencies": {
            "a": {"version": "1.0.0", "dependencies": {"b": {"version": "2.0.0"}}},
            "c": {"version": "file:../c"},
            "d": {"version": "1.0.0", "bundled": true}
        }});
        assert_eq!(
            locked_packages(&lock),
            vec![("a".into(), "1.0.0".into()), ("b".into(), "2.0.0".into())]
        );
    }

    #[test]
    fn platform_lists() {
        assert!(allowed(None, "linux"));
        assert!(allowed(Some(&json!(["linux", "darwin"])), "linux"));
        assert!(!allowed(Some(&json!(["darwin"])), "linux"));
        assert!(!allowed(Some(&json!(["!linux"])), "linux"));
        assert!(allowed(Some(&json!(["!win32"])), "linux"));
    }
}
