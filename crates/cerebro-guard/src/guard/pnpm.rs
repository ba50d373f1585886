//! The pnpm flow: resolve with `pnpm … --lockfile-only --ignore-scripts` in a scratch copy of
//! the project, through the guard index (whose packuments link their tarballs on the guard,
//! as pnpm fetches what they link); judge every package `pnpm-lock.yaml` pins, each tarball
//! verified against the lockfile's own integrity; decide; hand over to the user's own pnpm
//! command pointed at the same index, with pnpm's metadata cache in the scratch folder.
//!
//! pnpm's content-addressable store is left as it is: pnpm takes a package from it by the
//! lockfile's integrity, and the guard judged the bytes with exactly that integrity, so what
//! comes from the store is what was judged. `--frozen-lockfile` installs judge the user's
//! lockfile as it is (pnpm installs exactly it, or refuses).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::{parts, Decision, GuardError, Manager, Prepared, Progress, Report, Request, Session};
use crate::delegate::Delegation;
use crate::manager::pnpm::{self as args, PnpmCommand, PnpmKind};
use crate::manager::{self, real};
use crate::policy::{Config, Mode, Prompter};

/// Files of the project the resolution needs, copied into the scratch folder.
const PROJECT_FILES: [&str; 5] = [
    "package.json",
    "pnpm-lock.yaml",
    ".npmrc",
    "pnpm-workspace.yaml",
    ".pnpmfile.cjs",
];

pub(super) struct PnpmFlow {
    /// The resolution run in the scratch project; `None` for `--frozen-lockfile` (the
    /// lockfile is the resolution).
    resolve: Option<Delegation>,
    /// The lockfile to judge after the resolution.
    lockfile: PathBuf,
    /// `127.0.0.1:PORT` of the guard, which must never reach the lockfile.
    guard_host: String,
    /// Whether pnpm may install packages for other platforms (`supportedArchitectures` in
    /// the project's settings): then those are judged too.
    other_platforms: bool,
}

pub(super) fn prepare(
    request: &Request,
    config: Config,
    progress: Arc<dyn Progress>,
) -> Result<Prepared, GuardError> {
    let real = real::find_real("pnpm")?;
    let pass = || super::pass_through(vec![real.clone().into_os_string()], request);
    let install = match args::parse_in(&request.args, &request.cwd)? {
        PnpmCommand::Install(install) => install,
        PnpmCommand::Other => return Ok(pass()),
    };
    if config.mode == Mode::Off {
        return Ok(pass());
    }
    check_version(&real, &install)?;
    if install.workspace {
        return Err(GuardError::Unsupported(
            "pnpm workspace commands (-r, --filter, -w) are not guarded yet: run them in each \
             project, or run pnpm directly"
                .into(),
        ));
    }
    if install.kind != PnpmKind::Install {
        if let Some(spec) = install.packages.iter().find(|s| !registry_spec(s)) {
            return Err(GuardError::Unsupported(format!(
                "cannot guard the package spec {spec} (git, URL or local path): install it \
                 from a registry"
            )));
        }
    }
    let env = manager::process_env;
    let pnpm_config = args::pnpm_config(&install, &env)?;
    let timeout = config.installer_timeout();
    let parts = parts(config, pnpm_config.cafile.clone(), progress)?;
    let (index, scratch) = parts.start(Vec::new(), Some(pnpm_config.clone()), Manager::Pnpm)?;
    let guard_url = index.npm_url();
    let guard_host = guard_url
        .host_str()
        .map(|h| format!("{h}:{}", guard_url.port().unwrap_or(80)))
        .unwrap_or_default();
    let work = scratch.path().join("project");
    let cache = scratch.path().join("pnpm-cache");
    for dir in [&work, &cache] {
        std::fs::create_dir_all(dir).map_err(GuardError::io("cannot make a scratch folder"))?;
    }
    let root = args::project_root(install.dir());
    let isolated = install.global || install.kind == PnpmKind::Dlx;
    if !isolated {
        for name in PROJECT_FILES {
            let from = root.join(name);
            if from.is_file() {
                std::fs::copy(&from, work.join(name)).map_err(GuardError::io(format!(
                    "cannot copy {} into the scratch folder",
                    from.display()
                )))?;
            }
        }
        let patches = root.join("patches");
        if patches.is_dir() {
            copy_dir(&patches, &work.join("patches"))?;
        }
    }
    if !work.join("package.json").exists() {
        std::fs::write(work.join("package.json"), "{}\n")
            .map_err(GuardError::io("cannot write the scratch package.json"))?;
    }
    let other_platforms = PROJECT_FILES.iter().any(|name| {
        std::fs::read_to_string(root.join(name))
            .is_ok_and(|text| text.to_ascii_lowercase().contains("supportedarchitectures"))
    });
    let real_os = real.clone().into_os_string();
    let frozen = install.kind == PnpmKind::Install && install.frozen == Some(true);
    let (resolve, lockfile) = if frozen {
        (None, root.join("pnpm-lock.yaml"))
    } else {
        let mut d = Delegation::new(vec![real_os.clone()]).args(args::resolve_args(
            &install,
            &pnpm_config,
            &guard_url,
            &cache,
        ));
        d.cwd = Some(work.clone());
        d.env = super::run_env(Manager::Pnpm, timeout);
        (Some(d), work.join("pnpm-lock.yaml"))
    };
    let mut delegation = Delegation::new(vec![real_os]).args(args::guarded_args(
        &install,
        &pnpm_config,
        &guard_url,
        &cache,
    ));
    delegation.cwd = Some(request.cwd.clone());
    delegation.env = super::run_env(Manager::Pnpm, timeout);
    delegation.env.extend(args::guarded_env(
        &install,
        &pnpm_config,
        &guard_url,
        &cache,
    ));
    Ok(Prepared::Install(Box::new(Session {
        runtime: parts.runtime,
        index,
        gate: parts.gate,
        started: std::time::Instant::now(),
        manager: Manager::Pnpm,
        flow: super::Flow::Pnpm(PnpmFlow {
            resolve,
            lockfile,
            guard_host,
            other_platforms,
        }),
        _scratch: scratch,
        delegation,
        memo: None,
        fast: false,
    })))
}

/// Refuses a pnpm whose command line and configuration Cerebro does not read (another major
/// version than [`args::SUPPORTED_MAJORS`]), also when the project's `packageManager` field
/// would make pnpm switch to one.
fn check_version(real: &Path, install: &args::PnpmInstall) -> Result<(), GuardError> {
    let version = args::version_of(real).or_else(|| {
        let out = std::process::Command::new(real)
            .arg("--version")
            .env(real::ACTIVE_ENV, "1")
            .stdin(std::process::Stdio::null())
            .output()
            .ok()?;
        let text = String::from_utf8(out.stdout).ok()?;
        Some(text.trim().to_owned())
    });
    let supported = |v: &str| args::major(v).is_some_and(|m| args::SUPPORTED_MAJORS.contains(&m));
    let Some(version) = version else {
        return Err(GuardError::Unsupported(format!(
            "cannot tell which pnpm {} is",
            real.display()
        )));
    };
    if !supported(&version) {
        return Err(GuardError::Unsupported(format!(
            "Cerebro reads pnpm 9 and 10 as they read their options and configuration; {} is \
             pnpm {version}",
            real.display()
        )));
    }
    if install.global || install.kind == PnpmKind::Dlx {
        return Ok(());
    }
    let manifest = args::project_root(install.dir()).join("package.json");
    if let Ok(text) = std::fs::read_to_string(&manifest) {
        if let Ok(json) = serde_json::from_str::<serde_json::Value>(&text) {
            if let Some(wanted) = json["packageManager"]
                .as_str()
                .and_then(|p| p.strip_prefix("pnpm@"))
            {
                if !supported(wanted) {
                    return Err(GuardError::Unsupported(format!(
                        "{} asks for pnpm {wanted} (packageManager), which pnpm would switch \
                         to; Cerebro reads pnpm 9 and 10",
                        manifest.display()
                    )));
                }
            }
        }
    }
    Ok(())
}

/// Whether a spec names a registry package (`name`, `name@range`, `@scope/name@tag`,
/// `alias@npm:real@1`, `jsr:@scope/name`), not a git, URL or local one.
pub(super) fn registry_spec(spec: &str) -> bool {
    let spec = spec.strip_prefix("jsr:").unwrap_or(spec);
    let name_end = spec
        .get(1..)
        .and_then(|rest| rest.find('@'))
        .map_or(spec.len(), |at| at + 1);
    let (name, range) = spec.split_at(name_end);
    let ok = |s: &str| {
        !s.is_empty()
            && !s.starts_with('.')
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b))
    };
    let name_ok = match name.strip_prefix('@') {
        Some(scoped) => scoped.split_once('/').is_some_and(|(s, n)| ok(s) && ok(n)),
        None => ok(name),
    };
    let range = range.strip_prefix('@').unwrap_or(range);
    let range_ok = match range
        .strip_prefix("npm:")
        .or_else(|| range.strip_prefix("jsr:"))
    {
        Some(real) => registry_spec(real),
        None => !range.contains([':', '/', '\\']),
    };
    name_ok && range_ok
}

fn copy_dir(from: &Path, to: &Path) -> Result<(), GuardError> {
    std::fs::create_dir_all(to).map_err(GuardError::io("cannot make a scratch folder"))?;
    let entries = std::fs::read_dir(from)
        .map_err(GuardError::io(format!("cannot read {}", from.display())))?;
    for entry in entries.flatten() {
        let path = entry.path();
        let dest = to.join(entry.file_name());
        if path.is_dir() {
            copy_dir(&path, &dest)?;
        } else if path.is_file() {
            std::fs::copy(&path, &dest).map_err(GuardError::io(format!(
                "cannot copy {} into the scratch folder",
                path.display()
            )))?;
        }
    }
    Ok(())
}

/// One package `pnpm-lock.yaml` pins.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockedPackage {
    pub name: String,
    pub version: String,
    pub integrity: String,
    /// Whether its `os`, `cpu` (and `libc`) admit this machine: pnpm installs no package
    /// for another platform (unless told to by `supportedArchitectures`).
    pub this_platform: bool,
}

/// The registry packages of a `pnpm-lock.yaml` (lockfile version 9): name, version and
/// integrity, each once. Anything Cerebro cannot judge as a registry artifact with its hash
/// (a git, directory or tarball resolution without integrity, another lockfile version) is an
/// error naming it.
pub fn locked_packages(text: &str) -> Result<Vec<LockedPackage>, String> {
    let doc: serde_yaml::Value =
        serde_yaml::from_str(text).map_err(|e| format!("cannot read pnpm-lock.yaml: {e}"))?;
    let version = match doc.get("lockfileVersion") {
        Some(serde_yaml::Value::String(s)) => s.clone(),
        Some(serde_yaml::Value::Number(n)) => n.to_string(),
        _ => String::new(),
    };
    if version != "9.0" {
        return Err(format!(
            "cannot read pnpm-lock.yaml lockfileVersion `{version}` (Cerebro reads 9.0)"
        ));
    }
    let mut out = Vec::new();
    let Some(packages) = doc.get("packages") else {
        return Ok(out);
    };
    let packages = packages
        .as_mapping()
        .ok_or("pnpm-lock.yaml: `packages` is not a mapping")?;
    for (key, meta) in packages {
        let key = key
            .as_str()
            .ok_or("pnpm-lock.yaml: a package key is not text")?;
        let at = key
            .get(1..)
            .and_then(|rest| rest.find('@'))
            .map(|at| at + 1)
            .ok_or_else(|| format!("pnpm-lock.yaml: cannot read the package key {key}"))?;
        let (name, version) = (&key[..at], &key[at + 1..]);
        let resolution = meta.get("resolution");
        let field = |k: &str| resolution.and_then(|r| r.get(k)).and_then(|v| v.as_str());
        let integrity = match (field("type"), field("integrity")) {
            (None, Some(integrity)) => integrity,
            _ => {
                return Err(format!(
                    "pnpm-lock.yaml pins {key} to something other than a registry tarball with \
                     its integrity (git, a folder, a tarball URL), which Cerebro cannot judge"
                ))
            }
        };
        let this_platform = serde_json::to_value(meta)
            .map(|json| super::npm::platform_matches(&json))
            .unwrap_or(true);
        out.push(LockedPackage {
            name: name.to_owned(),
            version: version.to_owned(),
            integrity: integrity.to_owned(),
            this_platform,
        });
    }
    out.sort_by(|a, b| (&a.name, &a.version).cmp(&(&b.name, &b.version)));
    out.dedup();
    Ok(out)
}

pub(super) fn judge(
    session: &Session,
    flow: &PnpmFlow,
    interactive: bool,
    prompter: &mut dyn Prompter,
) -> Result<Report, GuardError> {
    if let Some(resolve) = &flow.resolve {
        let mut last_failure = String::new();
        let resolved = session.resolve_loop(interactive, prompter, || {
            let run = resolve
                .run_captured()
                .map_err(GuardError::io("cannot run pnpm"))?;
            if run.code != 0 {
                let mut text = String::from_utf8_lossy(&run.stdout).into_owned();
                text.push_str(&String::from_utf8_lossy(&run.stderr));
                last_failure = text
                    .lines()
                    .map(str::trim)
                    .filter(|l| !l.is_empty())
                    .find(|l| l.contains("ERR_PNPM") || l.contains("ERROR"))
                    .unwrap_or("")
                    .to_owned();
            }
            Ok(run)
        });
        // pnpm's store could stand in for tarballs the guard never saw: the install is not
        // handed over after a resolution that failed.
        if let Some(stop) =
            session.stop_after_scratch_resolution(resolved, "pnpm", &last_failure)?
        {
            return Ok(stop);
        }
    }
    let text = match std::fs::read_to_string(&flow.lockfile) {
        Ok(text) => text,
        // No lockfile: `--frozen-lockfile` refuses on its own, and a resolution that wrote none
        // installs nothing either.
        Err(_) => return Ok(session.report(Decision::Proceed, None)),
    };
    if flow.resolve.is_some() && text.contains(&flow.guard_host) {
        return Ok(session.report(
            Decision::CannotJudge,
            Some(
                "pnpm would write the guard's address into pnpm-lock.yaml (a registry whose \
                 tarballs live elsewhere)"
                    .into(),
            ),
        ));
    }
    let packages: Vec<LockedPackage> = match locked_packages(&text) {
        Ok(p) => p
            .into_iter()
            .filter(|p| p.this_platform || flow.other_platforms)
            .collect(),
        Err(detail) => return Ok(session.report(Decision::CannotJudge, Some(detail))),
    };
    let packages = packages
        .into_iter()
        .map(|p| super::npm::LockedTarball {
            name: p.name,
            version: p.version,
            hash: super::npm::LockedHash::Integrity(p.integrity),
        })
        .collect();
    super::npm::judge_locked_tarballs(session, packages, interactive, prompter)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs() {
        for ok in [
            "x",
            "x@1",
            "@s/x@^1.2",
            "a@npm:b@2",
            "jsr:@luca/cases",
            "x@latest",
        ] {
            assert!(registry_spec(ok), "{ok}");
        }
        for bad in [
            "github:u/r",
            "u/r",
            "./dir",
            "file:../x",
            "https://h/x.tgz",
            "x@file:../x",
            "git+ssh://g/x.git",
            "link:../x",
        ] {
            assert!(!registry_spec(bad), "{bad}");
        }
    }

    #[test]
    fn lockfile_packages() {
        let other = "lockfileVersion: '9.0'\npackages:\n  x@1.0.0:\n    resolution: {integrity: sha512-x}\n    os: [plan9]\n    cpu: ['!x64', '!arm64']\n";
        assert!(!locked_packages(other).unwrap()[0].this_platform);
        let text = "lockfileVersion: '9.0'\n\nimporters:\n  .:\n    dependencies:\n      a:\n        specifier: ^1.0.0\n        version: 1.0.0\n\npackages:\n\n  '@s/b@2.0.0':\n    resolution: {integrity: sha512-bbb}\n\n  a@1.0.0:\n    resolution: {integrity: sha512-aaa}\n\nsnapshots:\n  a@1.0.0: {}\n";
        let got = locked_packages(text).unwrap();
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].name, "@s/b");
        assert_eq!(got[0].version, "2.0.0");
        assert_eq!(got[1].integrity, "sha512-aaa");
        let git = "lockfileVersion: '9.0'\npackages:\n  x@1.0.0:\n    resolution: {type: git, repo: r, commit: c}\n";
        assert!(locked_packages(git).is_err());
        assert!(locked_packages("lockfileVersion: '6.0'\n").is_err());
    }
}
