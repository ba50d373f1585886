//! Changed: what a lockfile pins now that it did not pin at a git revision, so that CI on a
//! pull request judges what the change adds (`cerebro audit --changed-since origin/main`).
//!
//! The old lockfile comes from `git show REV:./FILE`, run in the lockfile's folder; git
//! only reads its object store there (no hook, no filter of the project runs for `show`), and
//! the old text is read by the same reader as the new one, in a temporary folder. A pin is
//! new unless the old file pins the same name, version and origin (URL and hash): a package
//! whose hash changed is judged again. Where the old file cannot be read that way (a
//! requirement file including others by relative path), every pin of the file counts as new:
//! the answer may be larger than the change, never smaller.

use std::path::Path;
use std::process::Command;

use crate::lockfile::{self, PipOptions};
use crate::{Lockfile, Pin};

/// The pins of `lockfile` as it was at `rev`: `Ok(None)` when the file did not exist there,
/// `Err` (one line) when git cannot answer (not a repository, an unknown revision).
pub fn pins_at(
    lockfile: &Lockfile,
    rev: &str,
    pip: &PipOptions,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Option<Vec<Pin>>, String> {
    let dir = lockfile
        .path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = lockfile
        .path
        .file_name()
        .ok_or_else(|| format!("{}: not a file", lockfile.path.display()))?;
    let git = |args: &[&str]| {
        Command::new("git")
            .arg("-C")
            .arg(dir)
            .args(["-c", "core.fsmonitor=false"])
            .args(args)
            .output()
            .map_err(|e| format!("cannot run git: {e}"))
    };
    let verify = git(&[
        "rev-parse",
        "--verify",
        "--quiet",
        &format!("{rev}^{{commit}}"),
    ])?;
    if !verify.status.success() {
        return Err(format!(
            "--changed-since {rev}: not a revision of the git repository at {}",
            dir.display()
        ));
    }
    let spec = format!("{rev}:./{}", name.to_string_lossy());
    let shown = git(&["show", &spec])?;
    if !shown.status.success() {
        // The revision exists but the file did not: everything in it is new.
        return Ok(None);
    }
    let tmp = tempfile::tempdir().map_err(|e| format!("cannot make a temporary folder: {e}"))?;
    let old = tmp.path().join(name);
    std::fs::write(&old, &shown.stdout).map_err(|e| format!("{}: {e}", old.display()))?;
    let old_lockfile = Lockfile {
        format: lockfile.format,
        path: old,
    };
    match lockfile::read(&old_lockfile, pip, env) {
        Ok(pins) => Ok(Some(pins)),
        // Unreadable alone (includes by relative path): judge everything the file pins now.
        Err(_) => Ok(None),
    }
}

/// The pins of `now` that `before` does not pin with the same name, version and origin.
pub fn added(now: Vec<Pin>, before: Option<&[Pin]>) -> Vec<Pin> {
    let Some(before) = before else {
        return now;
    };
    now.into_iter()
        .filter(|p| {
            !before.iter().any(|b| {
                b.ecosystem == p.ecosystem
                    && b.name == p.name
                    && b.version == p.version
                    && b.origin == p.origin
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Format, Origin, Source};
    use cerebro_archive::Ecosystem;

    fn pin(name: &str, version: &str, integrity: &str) -> Pin {
        Pin {
            ecosystem: Ecosystem::Npm,
            name: name.into(),
            version: version.into(),
            source: Source {
                file: "package-lock.json".into(),
                line: 1,
            },
            origin: Origin::Npm {
                resolved: None,
                integrity: Some(integrity.into()),
            },
        }
    }

    #[test]
    fn new_versions_and_new_hashes_are_added() {
        let before = [pin("a", "1.0.0", "sha512-a"), pin("b", "1.0.0", "sha512-b")];
        let now = vec![
            pin("a", "1.0.0", "sha512-a"),
            pin("b", "1.0.0", "sha512-B"),
            pin("c", "2.0.0", "sha512-c"),
        ];
        let names: Vec<_> = added(now.clone(), Some(&before))
            .into_iter()
            .map(|p| p.name)
            .collect();
        assert_eq!(names, ["b", "c"]);
        assert_eq!(added(now, None).len(), 3);
    }

    #[test]
    fn the_old_file_comes_from_git() {
        let repo = tempfile::tempdir().unwrap();
        let dir = repo.path();
        let git = |args: &[&str]| {
            let out = Command::new("git")
                .arg("-C")
                .arg(dir)
                .args([
                    "-c",
                    "user.name=t",
                    "-c",
                    "user.email=t@t",
                    "-c",
                    "commit.gpgsign=false",
                ])
                .args(args)
                .output()
                .unwrap();
            assert!(out.status.success(), "{out:?}");
        };
        git(&["init", "-q"]);
        let lock = dir.join("requirements.txt");
        std::fs::write(&lock, "a==1.0\n").unwrap();
        git(&["add", "."]);
        git(&["commit", "-qm", "one"]);
        std::fs::write(&lock, "a==1.0\nb==2.0\n").unwrap();
        let file = Lockfile {
            format: Format::Requirements,
            path: lock.clone(),
        };
        let pip = PipOptions::default();
        let env = |_: &str| None;
        let before = pins_at(&file, "HEAD", &pip, &env).unwrap().unwrap();
        let now = lockfile::read(&file, &pip, &env).unwrap();
        let names: Vec<_> = added(now, Some(&before))
            .into_iter()
            .map(|p| p.name)
            .collect();
        assert_eq!(names, ["b"]);
        // A file the revision did not have: everything is new. An unknown revision: an error.
        let other = Lockfile {
            format: Format::Requirements,
            path: dir.join("requirements-dev.txt"),
        };
        std::fs::write(&other.path, "c==1.0\n").unwrap();
        assert_eq!(pins_at(&other, "HEAD", &pip, &env).unwrap(), None);
        let err = pins_at(&file, "no-such-rev", &pip, &env).unwrap_err();
        assert!(err.contains("no-such-rev"), "{err}");
    }
}
