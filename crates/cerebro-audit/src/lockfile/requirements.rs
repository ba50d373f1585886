//! pip requirement files, read by the guard's own reader (`cerebro_guard::manager::pip`): the
//! same logical lines, `${VAR}` expansion, nested `-r`, index options and `--hash`es that
//! `pip install -r FILE` would see, run in the file's folder. A requirement pinned to one
//! version (`name==1.2.3`) is judged; anything else cannot be, and is reported so.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use cerebro_archive::Ecosystem;
use cerebro_guard::manager::pip::{self, PipCommand, RequirementLine};

use crate::{LockfileError, Origin, Pin, PinnedFile, Source};

/// The index options given to `cerebro audit`, as pip's command line would give them.
#[derive(Debug, Clone, Default)]
pub struct PipOptions {
    pub index_url: Option<String>,
    pub extra_index_urls: Vec<String>,
}

/// Reads the pins of a requirement file and those it includes, with the indexes pip would
/// use for it (its own `-i`/`--extra-index-url`, over the options given, over pip's
/// configuration and `PIP_*` variables).
pub fn read(
    path: &Path,
    options: &PipOptions,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Vec<Pin>, LockfileError> {
    let cwd = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .map(Path::to_owned)
        .unwrap_or_else(|| PathBuf::from("."));
    let cwd = std::path::absolute(&cwd).unwrap_or(cwd);
    let mut args: Vec<OsString> = vec!["install".into(), "-r".into(), path.into()];
    if let Some(index) = &options.index_url {
        args.extend(["--index-url".into(), index.into()]);
    }
    for extra in &options.extra_index_urls {
        args.extend(["--extra-index-url".into(), extra.into()]);
    }
    let install = match pip::parse_in(&args, &cwd, env) {
        Ok(PipCommand::Install(install)) => install,
        Ok(PipCommand::Other) => {
            return Err(LockfileError::new(
                path,
                "pip would not read it as a requirement file",
            ))
        }
        Err(e) => return Err(LockfileError::new(path, e.to_string())),
    };
    let real_pip = cerebro_guard::manager::real::real_pip().unwrap_or_default();
    let config_files = pip::pip_config_files(env, install.isolated, &real_pip);
    let upstream = pip::upstream(&install, env, &config_files)
        .map_err(|e| LockfileError::new(path, e.to_string()))?;
    let indexes: Option<Vec<String>> = (!upstream.no_index).then(|| {
        std::iter::once(&upstream.index)
            .chain(&upstream.extra)
            .map(|u| u.to_string())
            .collect()
    });
    let remote = install.remote_requirement_files.first().cloned();
    let mut pins: Vec<Pin> = install
        .requirement_lines()
        .into_iter()
        .map(|line| pin_of(&line, &cwd, indexes.as_ref()))
        .map(|pin| match indexes {
            Some(_) => pin,
            None => without_index(pin),
        })
        .collect();
    if let Some(url) = remote {
        pins.push(Pin {
            ecosystem: Ecosystem::Pypi,
            name: url.clone(),
            version: String::new(),
            source: Source {
                file: path.to_owned(),
                line: 0,
            },
            origin: Origin::Unjudgeable(format!(
                "a requirement file given by URL ({url}): pip downloads it itself; audit a \
                 local copy"
            )),
        });
    }
    Ok(pins)
}

/// The pin one requirement line makes.
fn pin_of(line: &RequirementLine, cwd: &Path, indexes: Option<&Vec<String>>) -> Pin {
    let source = Source {
        file: line.file.clone(),
        line: line.line,
    };
    let text = line.requirement.trim();
    let pin = |name: String, version: String, origin: Origin| Pin {
        ecosystem: Ecosystem::Pypi,
        name,
        version,
        source: source.clone(),
        origin,
    };
    if is_vcs(text) {
        let name = text.split_once(" @ ").map_or(text, |(n, _)| n.trim());
        return pin(
            name.to_owned(),
            String::new(),
            Origin::Unjudgeable(format!(
                "`{text}` is a version-control requirement: Cerebro judges index files, \
                 URLs with a hash and local folders"
            )),
        );
    }
    if let Some(local) = local_path(text, line.editable, cwd) {
        return pin(
            local.display().to_string(),
            String::new(),
            Origin::Local(local),
        );
    }
    let parsed = match parse_requirement(text) {
        Ok(parsed) => parsed,
        Err(why) => {
            return pin(
                text.to_owned(),
                String::new(),
                Origin::Unjudgeable(format!("cannot read `{text}`: {why}")),
            )
        }
    };
    if let Some(url) = parsed.url {
        let fragment = url.split_once('#').map(|(_, f)| f.to_owned());
        let hash = line.hashes.first().cloned().or_else(|| {
            fragment
                .and_then(|f| {
                    f.split('&')
                        .find(|p| p.starts_with("sha256="))
                        .map(str::to_owned)
                })
                .map(|h| h.replacen('=', ":", 1))
        });
        let url = url.split('#').next().unwrap_or(&url).to_owned();
        return pin(
            parsed.name,
            String::new(),
            Origin::Files(vec![PinnedFile { url, hash }]),
        );
    }
    match parsed.exact {
        Some(version) => pin(
            parsed.name,
            version,
            Origin::Pypi {
                hashes: line.hashes.clone(),
                indexes: indexes.cloned(),
            },
        ),
        None => {
            let why = match indexes {
                None => "pip would install it from --no-index find-links folders; scan them \
                         with `cerebro scan`"
                    .to_owned(),
                Some(_) => format!(
                    "`{text}` is not pinned to one version: pin it with `==` (as `pip-compile` \
                     or `uv pip compile` write) so that what is judged is what is installed"
                ),
            };
            pin(parsed.name, parsed.spec, Origin::Unjudgeable(why))
        }
    }
}

/// Under `--no-index` nothing comes from an index: an index pin cannot be judged here.
fn without_index(mut pin: Pin) -> Pin {
    if matches!(pin.origin, Origin::Pypi { .. }) {
        pin.origin = Origin::Unjudgeable(
            "pip would install it from --no-index find-links folders; scan them with \
             `cerebro scan`"
                .to_owned(),
        );
    }
    pin
}

fn is_vcs(text: &str) -> bool {
    let target = text.split_once(" @ ").map_or(text, |(_, u)| u.trim());
    ["git+", "hg+", "svn+", "bzr+"]
        .iter()
        .any(|p| target.starts_with(p))
}

/// The local folder or archive a requirement names, as pip takes it (relative to the working
/// folder, here the file's).
fn local_path(text: &str, editable: bool, cwd: &Path) -> Option<PathBuf> {
    let target = text.split(';').next().unwrap_or(text).trim();
    if let Some(path) = target.strip_prefix("file:") {
        let path = path.trim_start_matches("//");
        return Some(cwd.join(path));
    }
    if target.contains("://") || target.contains(" @ ") {
        return None;
    }
    let looks_like_path =
        target.starts_with('.') || target.starts_with('/') || target.contains('/');
    let archive = [".whl", ".tar.gz", ".zip", ".tar.bz2", ".tgz"]
        .iter()
        .any(|e| target.ends_with(e));
    (editable || looks_like_path || archive)
        .then(|| std::path::absolute(cwd.join(target)).unwrap_or_else(|_| cwd.join(target)))
}

/// A requirement as PEP 508 writes it, reduced to what an audit needs.
#[derive(Debug, PartialEq, Eq)]
struct Requirement {
    name: String,
    /// The specifier as written (`>=2,<3`), for messages.
    spec: String,
    /// The version of an exact pin (`==1.2.3`, `===1.2.3`).
    exact: Option<String>,
    /// `name @ URL`.
    url: Option<String>,
}

fn parse_requirement(text: &str) -> Result<Requirement, String> {
    let name_len = text
        .find(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')))
        .unwrap_or(text.len());
    if name_len == 0 {
        return Err("it does not start with a project name".to_owned());
    }
    let name = text[..name_len].to_owned();
    let mut rest = text[name_len..].trim_start();
    if let Some(after) = rest.strip_prefix('[') {
        let close = after.find(']').ok_or("an unclosed `[` of extras")?;
        rest = after[close + 1..].trim_start();
    }
    if let Some(url) = rest.strip_prefix('@') {
        let url = url.split(" ;").next().unwrap_or(url);
        let url = url.split("; ").next().unwrap_or(url).trim();
        return Ok(Requirement {
            name,
            spec: String::new(),
            exact: None,
            url: Some(url.to_owned()),
        });
    }
    let spec = rest.split(';').next().unwrap_or(rest).trim();
    let spec = spec
        .strip_prefix('(')
        .and_then(|s| s.strip_suffix(')'))
        .unwrap_or(spec)
        .trim()
        .to_owned();
    let clauses: Vec<&str> = spec
        .split(',')
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .collect();
    let exact = match clauses.as_slice() {
        [one] => one
            .strip_prefix("===")
            .or_else(|| one.strip_prefix("=="))
            .map(str::trim)
            .filter(|v| !v.is_empty() && !v.contains('*'))
            .map(str::to_owned),
        _ => None,
    };
    Ok(Requirement {
        name,
        spec,
        exact,
        url: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requirements_are_read_as_pep_508() {
        let r = parse_requirement("Requests[socks] == 2.32.3 ; python_version > \"3\"").unwrap();
        assert_eq!(r.name, "Requests");
        assert_eq!(r.exact.as_deref(), Some("2.32.3"));
        assert_eq!(
            parse_requirement("x===1.0").unwrap().exact.as_deref(),
            Some("1.0")
        );
        for loose in ["x>=1", "x==1.*", "x", "x==1,!=1.1", "x~=1.0"] {
            assert_eq!(parse_requirement(loose).unwrap().exact, None, "{loose}");
        }
        assert_eq!(
            parse_requirement("x @ https://h/x-1.whl ; os_name == 'nt'")
                .unwrap()
                .url
                .as_deref(),
            Some("https://h/x-1.whl")
        );
        assert!(parse_requirement("==1").is_err());
    }

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    #[test]
    fn pins_carry_lines_hashes_and_indexes() {
        let dir = tempfile::tempdir().unwrap();
        let env = |k: &str| match k {
            "PIP_CONFIG_FILE" => Some("/dev/null".to_owned()),
            "HOME" => Some("/nonexistent".to_owned()),
            _ => None,
        };
        write(dir.path(), "more.txt", "# nested\nb==2.0\n");
        write(dir.path(), "c.txt", "a==9\n");
        let path = write(
            dir.path(),
            "requirements.txt",
            "--index-url http://127.0.0.1:9/simple/\n\
             a==1.0 \\\n    --hash=sha256:aa --hash=sha256:bb\n\
             -r more.txt\n-c c.txt\nloose>=1\n-e ./lib\ng @ git+https://h/g.git\n",
        );
        let pins = read(&path, &PipOptions::default(), &env).unwrap();
        let brief: Vec<(String, usize, String)> = pins
            .iter()
            .map(|p| {
                let kind = match &p.origin {
                    Origin::Pypi { hashes, indexes } => {
                        format!("pypi {} {:?}", hashes.join(","), indexes)
                    }
                    Origin::Local(_) => "local".to_owned(),
                    Origin::Unjudgeable(_) => "unjudgeable".to_owned(),
                    other => format!("{other:?}"),
                };
                (
                    format!(
                        "{}:{}",
                        p.source.file.file_name().unwrap().to_string_lossy(),
                        p.name
                    ),
                    p.source.line,
                    kind,
                )
            })
            .collect();
        let index = "Some([\"http://127.0.0.1:9/simple/\"])";
        assert_eq!(
            brief,
            vec![
                ("more.txt:b".into(), 2, format!("pypi  {index}")),
                (
                    "requirements.txt:a".into(),
                    2,
                    format!("pypi sha256:aa,sha256:bb {index}")
                ),
                ("requirements.txt:loose".into(), 6, "unjudgeable".into()),
                (
                    format!("requirements.txt:{}", dir.path().join("lib").display()),
                    7,
                    "local".into()
                ),
                ("requirements.txt:g".into(), 8, "unjudgeable".into()),
            ]
        );
    }
}
