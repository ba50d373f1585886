//! Poetry's command line (Poetry 2.x) and the project it works on.
//!
//! Which commands are guarded: everything that may fetch a package (`add`, `install`,
//! `update`, `lock`, `sync`, `remove`, `build`, `init`, `debug resolve`, `show --outdated` /
//! `--latest`, and any command Cerebro does not know, such as a plugin's). Those that fetch
//! no package pass straight through (`run`, `show`, `check`, `env`, `config`, `source`,
//! `cache`, `version`, `--version`, `--help`, …). `poetry self add/install/update/lock/sync/
//! remove` change Poetry's own environment from its own project and are refused.
//!
//! Path dependencies (a folder or an archive on disk, in `pyproject.toml` or given to `poetry
//! add`) are collected, for the guard to judge before Poetry may build them. What the guard
//! cannot front exactly is refused before Poetry runs: git and URL dependencies (in
//! `pyproject.toml`, in `poetry.lock`, or given to `poetry add`), and plugins the project
//! requires (`[tool.poetry.requires-plugins]`, which Poetry installs before any command).

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use reqwest::Url;
use toml::Value;

use super::ManagerError;

/// What a Poetry command line asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PoetryCommand {
    /// May fetch packages: run through the guard.
    Guarded(PoetryRun),
    /// Fetches no package: runs as it is.
    Other,
}

/// A guarded Poetry command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoetryRun {
    /// The command (`add`, `install`, …).
    pub command: String,
    /// Where Poetry looks for the project: `--project`, else `--directory`, else `None`
    /// (the folder it runs in), absolute.
    pub start: Option<PathBuf>,
    /// Folders and archives on disk that `poetry add` was given, absolute.
    pub local_paths: Vec<PathBuf>,
}

fn refuse(reason: impl Into<String>) -> ManagerError {
    ManagerError::Argument {
        manager: "poetry",
        reason: reason.into(),
    }
}

/// Commands that fetch no package.
const PASS: &[&str] = &[
    "about",
    "check",
    "config",
    "env",
    "help",
    "list",
    "run",
    "search",
    "shell",
    "source",
    "version",
    "cache",
    "python",
    "publish",
    "export",
    "completions",
    "new",
];

/// `poetry self` commands that install into Poetry's own environment.
const SELF_FETCHING: &[&str] = &["add", "install", "update", "lock", "sync", "remove"];

/// Parses Poetry's arguments (without `poetry` itself), given in folder `cwd`.
pub fn parse(args: &[OsString], cwd: &Path) -> Result<PoetryCommand, ManagerError> {
    let words = args
        .iter()
        .map(|a| {
            a.to_str()
                .map(str::to_owned)
                .ok_or_else(|| refuse(format!("the argument {a:?} is not UTF-8")))
        })
        .collect::<Result<Vec<String>, _>>()?;
    let mut positional: Vec<&str> = Vec::new();
    let mut flags: Vec<&str> = Vec::new();
    let mut directory: Option<String> = None;
    let mut project: Option<String> = None;
    let mut i = 0;
    while i < words.len() {
        let w = words[i].as_str();
        i += 1;
        if w == "--" {
            positional.extend(words[i..].iter().map(String::as_str));
            break;
        }
        if !w.starts_with('-') || w == "-" {
            positional.push(w);
            continue;
        }
        let mut value = |inline: Option<&str>, name: &str| -> Result<String, ManagerError> {
            match inline {
                Some(v) => Ok(v.to_owned()),
                None => {
                    let v = words
                        .get(i)
                        .cloned()
                        .ok_or_else(|| ManagerError::MissingValue {
                            manager: "poetry",
                            option: name.to_owned(),
                        })?;
                    i += 1;
                    Ok(v)
                }
            }
        };
        let (name, inline) = match w.split_once('=') {
            Some((n, v)) if n.starts_with("--") => (n, Some(v)),
            _ => (w, None),
        };
        match name {
            "--directory" => directory = Some(value(inline, name)?),
            "--project" => project = Some(value(inline, name)?),
            "-C" => directory = Some(value(None, name)?),
            "-P" => project = Some(value(None, name)?),
            _ if w.starts_with("-C") && !w.starts_with("--") => directory = Some(w[2..].into()),
            _ if w.starts_with("-P") && !w.starts_with("--") => project = Some(w[2..].into()),
            _ => flags.push(w),
        }
    }
    if flags
        .iter()
        .any(|f| matches!(*f, "-h" | "--help" | "-V" | "--version"))
    {
        return Ok(PoetryCommand::Other);
    }
    let Some(command) = positional.first().copied() else {
        return Ok(PoetryCommand::Other);
    };
    let sub = positional.get(1).copied().unwrap_or("");
    let guarded = match command {
        "show" => flags.iter().any(|f| {
            matches!(*f, "--outdated" | "--latest")
                || (!f.starts_with("--") && f[1..].chars().any(|c| c == 'o' || c == 'l'))
        }),
        "debug" => sub == "resolve",
        "self" => {
            if SELF_FETCHING.contains(&sub) {
                return Err(refuse(format!(
                    "cannot guard `poetry self {sub}` (it changes Poetry's own environment, \
                     which Cerebro does not front): run it with CEREBRO_POLICY=off if you \
                     trust what it installs"
                )));
            }
            false
        }
        c => !PASS.contains(&c),
    };
    if !guarded {
        return Ok(PoetryCommand::Other);
    }
    let abs = |d: &str| super::absolute(cwd, Path::new(d));
    // Poetry reads a relative path of `poetry add` from the folder it works in.
    let workdir = directory.as_deref().map_or_else(|| cwd.to_owned(), abs);
    let mut local_paths = Vec::new();
    if command == "add" {
        for spec in &positional[1..] {
            match classify_spec(spec, &workdir) {
                Spec::Package => {}
                Spec::Local(path) => local_paths.push(path),
                Spec::Unfronted(why) => {
                    return Err(refuse(format!("cannot guard `poetry add {spec}`: {why}")))
                }
            }
        }
    }
    let start = match (&project, &directory) {
        (Some(p), Some(d)) => Some(super::absolute(&abs(d), Path::new(p))),
        (Some(p), None) => Some(abs(p)),
        (None, Some(d)) => Some(abs(d)),
        (None, None) => None,
    };
    Ok(PoetryCommand::Guarded(PoetryRun {
        command: command.to_owned(),
        start,
        local_paths,
    }))
}

/// What a `poetry add` argument names.
#[derive(Debug, PartialEq, Eq)]
enum Spec {
    /// A package of an index (`requests`, `requests@^2`, `x[extra]>=1`).
    Package,
    /// A folder or archive on disk, absolute.
    Local(PathBuf),
    /// Something the guard cannot front, and why.
    Unfronted(&'static str),
}

/// How Poetry would read a `poetry add` argument, given in folder `workdir`.
fn classify_spec(spec: &str, workdir: &Path) -> Spec {
    let lower = spec.to_ascii_lowercase();
    if lower.starts_with("git+") || lower.starts_with("git@") || lower.contains("://") {
        return Spec::Unfronted(
            "a git or URL dependency is not a package of an index, so Cerebro cannot judge \
             it before Poetry builds it",
        );
    }
    if spec
        .split(';')
        .next()
        .is_some_and(|r| r.contains(" @ ") || r.contains("@ "))
    {
        return Spec::Unfronted("a direct reference is not a package of an index");
    }
    if spec.starts_with('~') {
        return Spec::Unfronted(
            "give a path dependency without `~`, so that Cerebro reads the same path",
        );
    }
    let path_like = spec.starts_with('.')
        || spec.starts_with('/')
        || spec.contains(std::path::MAIN_SEPARATOR)
        || [".whl", ".tar.gz", ".zip", ".tgz", ".tar.bz2"]
            .iter()
            .any(|e| lower.ends_with(e));
    let path = super::absolute(workdir, Path::new(spec));
    if path_like || (!spec.contains(['@', '=', '<', '>', '~', '^']) && path.exists()) {
        if path.exists() {
            return Spec::Local(path);
        }
        return Spec::Unfronted("a path that does not exist");
    }
    Spec::Package
}

/// The project Poetry works on, as Cerebro reads it before the run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoetryProject {
    pub pyproject: PathBuf,
    /// `poetry.lock` beside it (it may not exist).
    pub lock: PathBuf,
    /// `[[tool.poetry.source]]` with a URL: name and URL as written.
    pub sources: Vec<(String, Url)>,
    /// Path dependencies (folders and archives on disk), absolute.
    pub local_paths: Vec<PathBuf>,
}

/// The project Poetry finds from `start`: the nearest folder at or above it with a
/// `pyproject.toml`; `None` without one. Refuses what Cerebro cannot front (see the module).
pub fn project(start: &Path) -> Result<Option<PoetryProject>, ManagerError> {
    let Some(dir) = start
        .ancestors()
        .find(|d| d.join("pyproject.toml").is_file())
    else {
        return Ok(None);
    };
    let pyproject = dir.join("pyproject.toml");
    let text = std::fs::read_to_string(&pyproject).map_err(|source| ManagerError::Read {
        path: pyproject.clone(),
        source,
    })?;
    let bad = |why: String| refuse(format!("{}: {why}", pyproject.display()));
    let doc: toml::Table = text
        .parse()
        .map_err(|e: toml::de::Error| bad(format!("not valid TOML ({})", e.message().trim())))?;
    let poetry = doc
        .get("tool")
        .and_then(|t| t.get("poetry"))
        .and_then(Value::as_table);
    if let Some(plugins) = poetry.and_then(|p| p.get("requires-plugins")) {
        if plugins.as_table().is_none_or(|t| !t.is_empty()) {
            return Err(bad("cannot guard a project that requires Poetry plugins \
                 ([tool.poetry.requires-plugins]): Poetry installs them before any command, \
                 outside what Cerebro fronts"
                .into()));
        }
    }
    let mut tables: Vec<(&str, &toml::Table)> = Vec::new();
    if let Some(p) = poetry {
        for key in ["dependencies", "dev-dependencies"] {
            if let Some(t) = p.get(key).and_then(Value::as_table) {
                tables.push((key, t));
            }
        }
        for (_, g) in p
            .get("group")
            .and_then(Value::as_table)
            .into_iter()
            .flatten()
        {
            if let Some(t) = g.get("dependencies").and_then(Value::as_table) {
                tables.push(("group dependencies", t));
            }
        }
    }
    let mut local_paths = Vec::new();
    for (_, table) in tables {
        for (name, spec) in table {
            let specs: Vec<&toml::Table> = match spec {
                Value::Table(t) => vec![t],
                Value::Array(a) => a.iter().filter_map(Value::as_table).collect(),
                _ => Vec::new(),
            };
            for s in specs {
                if let Some(kind) = ["git", "url"].iter().find(|k| s.contains_key(**k)) {
                    return Err(bad(format!(
                        "cannot guard the {kind} dependency {name}: it is not a package of an \
                         index, so Cerebro cannot judge it before Poetry builds it"
                    )));
                }
                if let Some(path) = s.get("path") {
                    let Some(path) = path.as_str() else {
                        return Err(bad(format!(
                            "the path of dependency {name} is not a string"
                        )));
                    };
                    local_paths.push(super::absolute(dir, Path::new(path)));
                }
            }
        }
    }
    let project = doc.get("project").and_then(Value::as_table);
    let mut requirements: Vec<&str> = Vec::new();
    if let Some(p) = project {
        if let Some(list) = p.get("dependencies").and_then(Value::as_array) {
            requirements.extend(list.iter().filter_map(Value::as_str));
        }
        for (_, list) in p
            .get("optional-dependencies")
            .and_then(Value::as_table)
            .into_iter()
            .flatten()
        {
            if let Some(list) = list.as_array() {
                requirements.extend(list.iter().filter_map(Value::as_str));
            }
        }
    }
    for (_, list) in doc
        .get("dependency-groups")
        .and_then(Value::as_table)
        .into_iter()
        .flatten()
    {
        if let Some(list) = list.as_array() {
            requirements.extend(list.iter().filter_map(Value::as_str));
        }
    }
    for r in requirements {
        if r.split(';').next().is_some_and(|r| r.contains('@')) {
            return Err(bad(format!(
                "cannot guard the direct reference `{r}`: it is not a package of an index"
            )));
        }
    }
    let mut sources = Vec::new();
    for s in poetry
        .and_then(|p| p.get("source"))
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let name = s.get("name").and_then(Value::as_str).unwrap_or("?");
        let Some(url) = s.get("url").and_then(Value::as_str) else {
            continue;
        };
        let parsed = Url::parse(url).map_err(|e| ManagerError::BadUrl {
            what: format!("{}: the URL of source {name}", pyproject.display()),
            value: url.to_owned(),
            reason: e.to_string(),
        })?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(bad(format!(
                "cannot guard the source {name} ({url}): only http and https sources are fronted"
            )));
        }
        sources.push((name.to_owned(), parsed));
    }
    Ok(Some(PoetryProject {
        lock: dir.join("poetry.lock"),
        pyproject,
        sources,
        local_paths,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manager::test_util::{args, write};

    fn guarded(words: &[&str]) -> Option<String> {
        match parse(&args(words), Path::new("/nowhere")).unwrap() {
            PoetryCommand::Guarded(r) => Some(r.command),
            PoetryCommand::Other => None,
        }
    }

    #[test]
    fn commands_that_fetch_are_guarded_and_the_rest_pass() {
        for words in [
            &["add", "requests"][..],
            &["install"],
            &["-C", "sub", "update"],
            &["--no-ansi", "lock"],
            &["sync", "--no-root"],
            &["remove", "x"],
            &["build"],
            &["debug", "resolve", "x"],
            &["show", "--outdated"],
            &["show", "-l"],
            &["bundle", "venv", "x"],
        ] {
            assert!(guarded(words).is_some(), "{words:?}");
        }
        for words in [
            &["run", "pip", "install", "x"][..],
            &["show"],
            &["show", "--tree"],
            &["--version"],
            &["add", "--help"],
            &[],
            &["env", "info"],
            &["self", "show", "plugins"],
            &["debug", "info"],
            &["check"],
        ] {
            assert!(guarded(words).is_none(), "{words:?}");
        }
        let e = parse(&args(&["self", "add", "x"]), Path::new("/")).unwrap_err();
        assert!(e.to_string().contains("poetry self add"), "{e}");
    }

    #[test]
    fn the_project_folder_follows_directory_and_project() {
        let run = |words: &[&str]| match parse(&args(words), Path::new("/w")).unwrap() {
            PoetryCommand::Guarded(r) => r.start,
            PoetryCommand::Other => panic!("{words:?}"),
        };
        assert_eq!(run(&["lock"]), None);
        assert_eq!(run(&["-C", "a", "lock"]), Some(PathBuf::from("/w/a")));
        assert_eq!(run(&["--directory=a", "lock"]), Some(PathBuf::from("/w/a")));
        assert_eq!(run(&["lock", "-P", "/p"]), Some(PathBuf::from("/p")));
        assert_eq!(
            run(&["-Ca", "-P", "b", "lock"]),
            Some(PathBuf::from("/w/a/b"))
        );
    }

    #[test]
    fn add_refuses_what_is_not_a_package_of_an_index() {
        for spec in [
            "git+https://github.com/x/y.git",
            "https://example.org/x-1.0.tar.gz",
            "./lib",
            "../x-1.0-py3-none-any.whl",
            "x @ https://example.org/x.whl",
            "~/lib",
        ] {
            let e = parse(&args(&["add", spec]), Path::new("/nowhere")).unwrap_err();
            assert!(e.to_string().contains(spec), "{e}");
        }
        for spec in ["requests", "requests@^2.1", "requests==2.1", "x[extra]>=1"] {
            assert!(guarded(&["add", spec]).is_some(), "{spec}");
        }
        // A path on disk is kept for the guard to judge, from Poetry's working folder.
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("w/lib")).unwrap();
        let words = args(&["-C", "w", "add", "./lib", "requests"]);
        match parse(&words, dir.path()).unwrap() {
            PoetryCommand::Guarded(r) => assert_eq!(r.local_paths, [dir.path().join("w/lib")]),
            PoetryCommand::Other => panic!("guarded"),
        }
    }

    #[test]
    fn a_pyproject_with_what_cannot_be_fronted_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("pyproject.toml");
        let cases = [
            (
                "[tool.poetry.dependencies]\nx = { git = \"https://g/x.git\" }\n",
                "git dependency x",
            ),
            (
                "[tool.poetry.group.dev.dependencies]\ny = { url = \"https://e/y.whl\" }\n",
                "url dependency y",
            ),
            (
                "[project]\nname = \"d\"\ndependencies = [\"z @ https://e/z.whl\"]\n",
                "z @ https",
            ),
            (
                "[tool.poetry.requires-plugins]\np = \">1\"\n",
                "requires Poetry plugins",
            ),
            (
                "[[tool.poetry.source]]\nname = \"s\"\nurl = \"ftp://x/\"\n",
                "source s",
            ),
            ("[project\n", "not valid TOML"),
        ];
        for (text, why) in cases {
            write(&file, text);
            let e = project(dir.path()).unwrap_err().to_string();
            assert!(
                e.contains(why) && e.contains("pyproject.toml"),
                "{text}: {e}"
            );
        }
        write(
            &file,
            "[project]\nname = \"d\"\ndependencies = [\"a>=1; python_version > '3'\"]\n\
             [[tool.poetry.source]]\nname = \"mine\"\nurl = \"https://u:p@x.org/simple/\"\n\
             priority = \"primary\"\n[[tool.poetry.source]]\nname = \"PyPI\"\n\
             [tool.poetry.group.dev.dependencies]\nlib = { path = \"../lib\", develop = true }\n",
        );
        let sub = dir.path().join("src");
        std::fs::create_dir_all(&sub).unwrap();
        let p = project(&sub).unwrap().unwrap();
        assert_eq!(p.pyproject, file);
        assert_eq!(p.lock, dir.path().join("poetry.lock"));
        assert_eq!(p.sources.len(), 1);
        assert_eq!(p.sources[0].0, "mine");
        assert_eq!(p.local_paths, [dir.path().parent().unwrap().join("lib")]);
    }
}
