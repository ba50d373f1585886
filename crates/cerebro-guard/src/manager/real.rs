//! Finding the real package manager on `PATH`, past Cerebro's own shims, so that the guard
//! never runs itself in a loop.

use std::ffi::{OsStr, OsString};
use std::io::Read as _;
use std::path::{Path, PathBuf};

use super::ManagerError;

/// Set (to `1`) by the guard in the environment of every real manager it runs. A shim that
/// sees it execs the real tool at once, without Cerebro: pip calling pip (build isolation
/// installs build dependencies with `python -m pip`), npm lifecycle scripts running npm, and
/// the guard's own resolve and install runs all pass straight through instead of being
/// guarded again (the outer run already guards what they fetch, through the guard index).
pub const ACTIVE_ENV: &str = cerebro_settings::ENV_ACTIVE;

/// A `PATH`-style list of shim folders, set by each shim before it runs `cerebro` (its own
/// folder first). [`find_real`] never returns a program from these folders.
pub const SHIM_DIR_ENV: &str = cerebro_settings::ENV_SHIM_DIR;

/// The real Python interpreter, set by the `python`/`python3` shims when they route
/// `python -m pip …` to Cerebro: the guard must run that interpreter's pip
/// (`$CEREBRO_PYTHON -m pip`), not whichever `pip` is first on `PATH` ([`real_pip`]).
pub const PYTHON_ENV: &str = cerebro_settings::ENV_PYTHON;

/// The name the user typed for pip (`pip3` from the `pip3` shim; `pip` when unset), so that
/// `pip3 install` runs the real `pip3`.
pub const PIP_ENV: &str = cerebro_settings::ENV_PIP;

/// The marker every Cerebro shim carries near its top; a program whose first 512 bytes hold
/// it is never taken for the real manager, wherever it lives.
pub const SHIM_MARKER: &str = "# cerebro-shim";

/// The first `tool` on `PATH` that is not one of Cerebro's shims: programs in a folder named
/// in `CEREBRO_SHIM_DIR` (compared as written and canonicalised), programs that canonicalise
/// into such a folder or to the running `cerebro` itself, and scripts carrying
/// [`SHIM_MARKER`] are skipped.
pub fn find_real(tool: &str) -> Result<PathBuf, ManagerError> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let shim_dirs = std::env::var_os(SHIM_DIR_ENV).unwrap_or_default();
    find_real_in(tool, &path, &shim_dirs)
}

/// [`find_real`] with `PATH` and `CEREBRO_SHIM_DIR` given (tests, and callers that run the
/// manager with a changed environment).
pub fn find_real_in(tool: &str, path: &OsStr, shim_dirs: &OsStr) -> Result<PathBuf, ManagerError> {
    let not_found = || ManagerError::NotFound {
        tool: tool.to_owned(),
    };
    let mut skip: Vec<PathBuf> = Vec::new();
    for dir in std::env::split_paths(shim_dirs).filter(|d| !d.as_os_str().is_empty()) {
        if let Ok(canonical) = dir.canonicalize() {
            skip.push(canonical);
        }
        skip.push(dir);
    }
    let me = std::env::current_exe().and_then(|p| p.canonicalize()).ok();
    let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("/"));
    let candidates = which::which_in_all(tool, Some(path), cwd).map_err(|_| not_found())?;
    for candidate in candidates {
        if candidate
            .parent()
            .is_some_and(|dir| skip.iter().any(|s| s == dir))
        {
            continue;
        }
        if let Ok(canonical) = candidate.canonicalize() {
            if canonical
                .parent()
                .is_some_and(|dir| skip.iter().any(|s| s == dir))
            {
                continue;
            }
            if me.as_ref() == Some(&canonical) {
                continue;
            }
        }
        if is_shim(&candidate) {
            continue;
        }
        return Ok(candidate);
    }
    Err(not_found())
}

/// Whether the file at `path` is a Cerebro shim: [`SHIM_MARKER`] in its first 512 bytes.
pub fn is_shim(path: &Path) -> bool {
    let mut head = [0u8; 512];
    let Ok(mut file) = std::fs::File::open(path) else {
        return false;
    };
    let mut len = 0;
    while len < head.len() {
        match file.read(&mut head[len..]) {
            Ok(0) | Err(_) => break,
            Ok(n) => len += n,
        }
    }
    head[..len]
        .windows(SHIM_MARKER.len())
        .any(|w| w == SHIM_MARKER.as_bytes())
}

/// The program (and leading arguments) that is the user's real pip: `[$CEREBRO_PYTHON, -m,
/// pip]` when a python shim routed `python -m pip` here, `[venv/bin/python, -m, pip]` when
/// the first pip on `PATH` is a virtual environment's link to the shim
/// ([`venv_python_behind_shim`]), else the real `$CEREBRO_PIP` (or `pip`, falling back to
/// `pip3`) from [`find_real`], e.g. `["/venv/bin/pip"]`.
pub fn real_pip() -> Result<Vec<OsString>, ManagerError> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let shim_dirs = std::env::var_os(SHIM_DIR_ENV).unwrap_or_default();
    let python = std::env::var_os(PYTHON_ENV)
        .filter(|p| !p.is_empty())
        .or_else(|| {
            let name = std::env::var(PIP_ENV).unwrap_or_else(|_| "pip".to_owned());
            venv_python_behind_shim(&name, &path, &shim_dirs).map(PathBuf::into_os_string)
        });
    real_pip_with(python, std::env::var(PIP_ENV).ok(), &find_real)
}

/// The interpreter of the virtual environment whose `bin/pip` (first on `PATH`) is a link to
/// Cerebro's shim, as `ln -s ~/.cerebro/shims/pip venv/bin/pip` makes it: the guard must hand
/// over to that environment's pip (`venv/bin/python -m pip`), not to the next `pip` on `PATH`,
/// which would install into another environment. `None` when the first `tool` on `PATH` is
/// not a shim, or not in a virtual environment's `bin` (a folder beside a `pyvenv.cfg`).
pub fn venv_python_behind_shim(tool: &str, path: &OsStr, shim_dirs: &OsStr) -> Option<PathBuf> {
    let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("/"));
    let first = which::which_in_all(tool, Some(path), cwd).ok()?.next()?;
    // The first one is the real pip: nothing to do.
    let real = find_real_in(tool, path, shim_dirs).ok();
    if real.as_ref() == Some(&first) {
        return None;
    }
    let bin = first.parent()?;
    if !bin.parent()?.join("pyvenv.cfg").is_file() {
        return None;
    }
    let python = ["python", "python3"]
        .iter()
        .map(|name| bin.join(name))
        .find(|p| p.is_file() && !is_shim(p))?;
    Some(python)
}

/// [`real_pip`] with its inputs given.
pub fn real_pip_with(
    python: Option<OsString>,
    pip_name: Option<String>,
    find: &dyn Fn(&str) -> Result<PathBuf, ManagerError>,
) -> Result<Vec<OsString>, ManagerError> {
    if let Some(python) = python.filter(|p| !p.is_empty()) {
        return Ok(vec![python, "-m".into(), "pip".into()]);
    }
    // Only a bare pip name is honoured: the variable must not name an arbitrary program.
    let name = pip_name
        .filter(|n| n.starts_with("pip") && n[3..].bytes().all(|b| b.is_ascii_digit() || b == b'.'))
        .unwrap_or_else(|| "pip".to_owned());
    match find(&name) {
        Ok(path) => Ok(vec![path.into_os_string()]),
        Err(ManagerError::NotFound { .. }) if name == "pip" => {
            find("pip3").map(|p| vec![p.into_os_string()])
        }
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt as _;

    fn script(dir: &Path, name: &str, body: &str) -> PathBuf {
        std::fs::create_dir_all(dir).unwrap();
        let path = dir.join(name);
        std::fs::write(&path, body).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        path
    }

    fn path_of(dirs: &[&Path]) -> OsString {
        std::env::join_paths(dirs).unwrap()
    }

    #[test]
    fn skips_shim_folders_and_marked_scripts() {
        let tmp = tempfile::tempdir().unwrap();
        let shims = tmp.path().join("shims");
        let other = tmp.path().join("other");
        let real = tmp.path().join("real");
        script(
            &shims,
            "pip",
            "#!/bin/sh\n# cerebro-shim\nexec cerebro pip -- \"$@\"\n",
        );
        // A copy of a shim elsewhere, not listed in CEREBRO_SHIM_DIR: caught by its marker.
        script(&other, "pip", "#!/bin/sh\n# cerebro-shim\n");
        let pip = script(&real, "pip", "#!/bin/sh\necho real\n");
        let path = path_of(&[&shims, &other, &real]);
        let found = find_real_in("pip", &path, shims.as_os_str()).unwrap();
        assert_eq!(found, pip);
    }

    #[test]
    fn skips_a_shim_folder_spelled_another_way() {
        let tmp = tempfile::tempdir().unwrap();
        let shims = tmp.path().join("shims");
        let link = tmp.path().join("link");
        let real = tmp.path().join("real");
        // Not marked, so only the folder comparison can skip it.
        script(&shims, "npm", "#!/bin/sh\necho shim\n");
        std::os::unix::fs::symlink(&shims, &link).unwrap();
        let npm = script(&real, "npm", "#!/bin/sh\necho real\n");
        let path = path_of(&[&link, &shims, &real]);
        assert_eq!(find_real_in("npm", &path, shims.as_os_str()).unwrap(), npm);
        // The symlinked spelling listed instead: the canonical comparison still skips both.
        assert_eq!(find_real_in("npm", &path, link.as_os_str()).unwrap(), npm);
    }

    #[test]
    fn nothing_left_names_the_tool_and_the_fix() {
        let tmp = tempfile::tempdir().unwrap();
        let shims = tmp.path().join("shims");
        script(&shims, "pip", "#!/bin/sh\n# cerebro-shim\n");
        let error = find_real_in("pip", shims.as_os_str(), shims.as_os_str()).unwrap_err();
        let text = error.to_string();
        assert!(text.contains("`pip`") && text.contains("PATH"), "{text}");
    }

    #[test]
    fn a_venv_pip_linked_to_the_shim_hands_over_to_the_venvs_python() {
        let tmp = tempfile::tempdir().unwrap();
        let shims = tmp.path().join("shims");
        let shim = script(&shims, "pip", "#!/bin/sh\n# cerebro-shim\n");
        let venv = tmp.path().join("venv");
        let bin = venv.join("bin");
        std::fs::create_dir_all(&bin).unwrap();
        std::fs::write(venv.join("pyvenv.cfg"), "home = /usr/bin\n").unwrap();
        let python = script(&bin, "python", "#!/bin/sh\n");
        std::os::unix::fs::symlink(&shim, bin.join("pip")).unwrap();
        let system = tmp.path().join("usr");
        script(&system, "pip", "#!/bin/sh\necho system\n");
        let path = path_of(&[&bin, &shims, &system]);
        assert_eq!(
            venv_python_behind_shim("pip", &path, shims.as_os_str()),
            Some(python)
        );
        // Not a venv (no pyvenv.cfg): the next real pip, as before.
        std::fs::remove_file(venv.join("pyvenv.cfg")).unwrap();
        assert_eq!(
            venv_python_behind_shim("pip", &path, shims.as_os_str()),
            None
        );
        // The shims folder first (the usual set-up): nothing to do.
        let path = path_of(&[&shims, &system]);
        assert_eq!(
            venv_python_behind_shim("pip", &path, shims.as_os_str()),
            None
        );
        // A venv's own pip first: it is the real one.
        let other = tmp.path().join("venv2");
        std::fs::create_dir_all(other.join("bin")).unwrap();
        std::fs::write(other.join("pyvenv.cfg"), "").unwrap();
        script(&other.join("bin"), "pip", "#!/bin/sh\n");
        let path = path_of(&[&other.join("bin"), &shims, &system]);
        assert_eq!(
            venv_python_behind_shim("pip", &path, shims.as_os_str()),
            None
        );
    }

    #[test]
    fn real_pip_prefers_the_shimmed_python() {
        let none = |_: &str| -> Result<PathBuf, ManagerError> { unreachable!() };
        assert_eq!(
            real_pip_with(Some("/usr/bin/python3".into()), None, &none).unwrap(),
            vec![
                OsString::from("/usr/bin/python3"),
                "-m".into(),
                "pip".into()
            ]
        );
        let only_pip3 = |tool: &str| match tool {
            "pip3" => Ok(PathBuf::from("/usr/bin/pip3")),
            _ => Err(ManagerError::NotFound { tool: tool.into() }),
        };
        assert_eq!(
            real_pip_with(None, None, &only_pip3).unwrap(),
            vec![OsString::from("/usr/bin/pip3")]
        );
        assert_eq!(
            real_pip_with(None, Some("pip3".into()), &only_pip3).unwrap(),
            vec![OsString::from("/usr/bin/pip3")]
        );
        // Not a pip name: ignored.
        assert_eq!(
            real_pip_with(None, Some("/bin/evil".into()), &only_pip3).unwrap(),
            vec![OsString::from("/usr/bin/pip3")]
        );
    }
}
