//! yarn 1 (classic, the npm package `yarn@1.x`): which commands fetch package code (bare
//! `yarn`, `install`, `add`, `upgrade`), and `yarn.lock` read and rewritten for the guard.
//!
//! yarn classic fetches a locked package from the URL `yarn.lock` records (`resolved`),
//! whatever registry it is given, and records the tarball link of the packument it was served.
//! The guard serves yarn the packuments of bun's routes (every tarball link on the guard,
//! carrying its upstream URL: [`super::bun::guard_link`]), so [`lock_to_guard`] points a
//! lockfile's URLs at the guard and [`lock_from_guard`] gives each guard link back the upstream
//! URL it stands for: the `yarn.lock` a bare yarn writes against the user's registry.
//!
//! yarn 2+ (berry) is another program with another lockfile: refused where detected.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use super::bun::URL_PREFIX;
use super::npm::{self, NpmConfig};
use super::{absolute, expand_tilde, ManagerError};

/// yarn classic's own default registry (where no `.npmrc` names one).
pub const YARN_REGISTRY: &str = "https://registry.yarnpkg.com/";

/// What a yarn command line asks for.
#[derive(Debug, Clone)]
pub enum YarnCommand {
    /// Bare `yarn`, `install`, `add` or `upgrade`.
    Install(YarnInstall),
    /// Anything else: passed to the real yarn untouched.
    Other,
}

/// A yarn command line that fetches packages, understood.
#[derive(Debug, Clone)]
pub struct YarnInstall {
    /// The user's arguments, whole (after `yarn`).
    pub args: Vec<OsString>,
    /// Where the command word is in `args` (`None` for bare `yarn`).
    pub command_at: Option<usize>,
    /// `add`/`upgrade`: the package specs.
    pub packages: Vec<String>,
    /// `--registry` from the command line.
    pub registry: Option<String>,
    /// `--cwd`, absolute.
    pub dir: Option<PathBuf>,
    pub cwd: PathBuf,
    /// Argument ranges dropped from the guarded runs (registry, cache folder, `--cwd`).
    dropped: Vec<(usize, usize)>,
    /// The ranges of `--cwd` (kept for the hand-over, dropped for the resolution).
    cwd_at: Option<(usize, usize)>,
}

impl YarnInstall {
    /// The folder yarn works in: `--cwd` when given, else the working folder.
    pub fn dir(&self) -> &Path {
        self.dir.as_deref().unwrap_or(&self.cwd)
    }
}

/// yarn 1's options that take a value as the next word.
const VALUE_OPTIONS: &[&str] = &[
    "registry",
    "cache-folder",
    "preferred-cache-folder",
    "modules-folder",
    "cwd",
    "network-timeout",
    "network-concurrency",
    "mutex",
    "global-folder",
    "link-folder",
    "https-proxy",
    "proxy",
    "otp",
    "emoji",
    "scripts-prepend-node-path",
    "use-yarnrc",
    "scope",
    "pattern",
    "tag",
    "har",
];

/// Options Cerebro refuses: they make yarn take packages from elsewhere than the registry it
/// is given (the offline cache or mirror, another rc file).
const REFUSED: &[&str] = &["offline", "prefer-offline", "use-yarnrc", "global-folder"];

/// Parses the arguments given to `yarn` (without `yarn` itself) in folder `cwd`.
pub fn parse_in(args: &[OsString], cwd: &Path) -> Result<YarnCommand, ManagerError> {
    let refuse = |reason: String| ManagerError::Argument {
        manager: "yarn",
        reason,
    };
    let mut words = Vec::with_capacity(args.len());
    for arg in args {
        let Some(word) = arg.to_str() else {
            return Err(refuse(format!(
                "the argument {} is not UTF-8",
                arg.to_string_lossy()
            )));
        };
        words.push(word.to_owned());
    }
    let mut install = YarnInstall {
        args: args.to_vec(),
        command_at: None,
        packages: Vec::new(),
        registry: None,
        dir: None,
        cwd: cwd.to_owned(),
        dropped: Vec::new(),
        cwd_at: None,
    };
    let mut i = 0;
    while i < words.len() {
        let word = &words[i];
        if word == "--" {
            return Err(refuse(
                "cannot read `--` on a yarn install command as yarn would".into(),
            ));
        }
        if !(word.starts_with('-') && word.len() > 1) {
            if install.command_at.is_none() {
                match word.as_str() {
                    "install" | "add" | "upgrade" => install.command_at = Some(i),
                    "global" => {
                        return Err(refuse(
                            "`yarn global` is not guarded yet: install into a project, or \
                             run yarn directly"
                                .into(),
                        ))
                    }
                    "upgrade-interactive" => {
                        return Err(refuse(
                            "`yarn upgrade-interactive` chooses while it installs, which \
                             Cerebro cannot judge first: name the packages to upgrade"
                                .into(),
                        ))
                    }
                    _ => return Ok(YarnCommand::Other),
                }
            } else {
                install.packages.push(word.clone());
            }
            i += 1;
            continue;
        }
        let (name, inline) = match word.split_once('=') {
            Some((n, v)) => (n.to_owned(), Some(v.to_owned())),
            None => (word.clone(), None),
        };
        let key = name.trim_start_matches('-').to_owned();
        if matches!(key.as_str(), "help" | "h" | "version" | "v") {
            return Ok(YarnCommand::Other);
        }
        if REFUSED.contains(&key.as_str()) {
            return Err(refuse(format!(
                "{name} makes yarn take packages from its cache or another configuration, \
                 which Cerebro cannot judge: run without it"
            )));
        }
        if matches!(key.as_str(), "production" | "prod")
            && inline.is_none()
            && words.get(i + 1).is_some_and(|w| !w.starts_with('-'))
        {
            return Err(refuse(format!(
                "cannot tell whether {name} takes the next word as yarn would: write \
                 {name}=true"
            )));
        }
        let takes_value = VALUE_OPTIONS.contains(&key.as_str());
        let (value, end) = match inline {
            Some(v) => (v, i + 1),
            None if takes_value => match words.get(i + 1) {
                Some(v) => (v.clone(), i + 2),
                None => {
                    return Err(ManagerError::MissingValue {
                        manager: "yarn",
                        option: name,
                    })
                }
            },
            None => ("true".into(), i + 1),
        };
        match key.as_str() {
            "registry" => {
                install.registry = Some(value);
                install.dropped.push((i, end));
            }
            "cache-folder" | "preferred-cache-folder" => install.dropped.push((i, end)),
            "cwd" => {
                install.dir = Some(absolute(cwd, &expand_tilde(&value)));
                install.cwd_at = Some((i, end));
            }
            _ => {}
        }
        i = end;
    }
    Ok(YarnCommand::Install(install))
}

/// The user's arguments without the dropped ones, then the guard's: `--registry=<guard>`,
/// `--cache-folder=<cache>` (a scratch cache, so that nothing cached by an unguarded run is
/// installed unjudged). With `resolve`, also without `--cwd` and with `--ignore-scripts
/// --non-interactive`: the resolution run in the scratch project.
pub fn run_args(install: &YarnInstall, guard: &str, cache: &Path, resolve: bool) -> Vec<OsString> {
    let mut out = Vec::with_capacity(install.args.len() + 4);
    for (i, arg) in install.args.iter().enumerate() {
        let inside = |r: &(usize, usize)| i >= r.0 && i < r.1;
        if install.dropped.iter().any(inside) || (resolve && install.cwd_at.iter().any(inside)) {
            continue;
        }
        out.push(arg.clone());
    }
    out.push(format!("--registry={guard}").into());
    out.push(format!("--cache-folder={}", cache.display()).into());
    if resolve {
        out.push("--ignore-scripts".into());
        out.push("--non-interactive".into());
    }
    out
}

/// Where yarn's packages come from for this command: `--registry`, else npm's configuration
/// (`npm_config_*` variables, the project's, user's and global `.npmrc`), else yarn's own
/// default ([`YARN_REGISTRY`]). Refused, as Cerebro does not read them as yarn would: scoped
/// registries, `YARN_*` variables naming a registry, mirror or rc file, a `.yarnrc`
/// (project, its parents, or the user's) with such settings, `.yarnrc.yml` (yarn 2+).
pub fn yarn_config(
    install: &YarnInstall,
    env: &dyn Fn(&str) -> Option<String>,
    env_names: &[String],
) -> Result<NpmConfig, ManagerError> {
    let refuse = |reason: String| ManagerError::Argument {
        manager: "yarn",
        reason,
    };
    for name in env_names {
        let upper = name.to_ascii_uppercase();
        if upper.contains("OFFLINE_MIRROR") || upper.contains("YARN_PATH") {
            return Err(refuse(format!(
                "{name} is set: yarn would take packages from an offline mirror or run another \
                 yarn, which Cerebro cannot judge; unset it"
            )));
        }
        if upper.starts_with("YARN_")
            && [
                "REGISTR",
                "MIRROR",
                "YARNRC",
                "OFFLINE",
                "_AUTH",
                "YARN_PATH",
            ]
            .iter()
            .any(|w| upper[5..].contains(w))
        {
            return Err(refuse(format!(
                "{name} is set: Cerebro does not read yarn's own variables as yarn would; \
                 unset it, or set the registry in .npmrc"
            )));
        }
    }
    let dir = install.dir();
    let home = env("HOME").filter(|h| !h.is_empty()).map(PathBuf::from);
    let mut rcs: Vec<PathBuf> = dir.ancestors().map(|d| d.join(".yarnrc")).collect();
    if let Some(home) = &home {
        rcs.push(home.join(".yarnrc"));
        rcs.push(home.join(".config/yarn/config"));
    }
    for rc in rcs {
        if let Ok(text) = std::fs::read_to_string(&rc) {
            let lower: String = text
                .lines()
                .filter(|l| !l.trim_start().starts_with('#'))
                .collect::<Vec<_>>()
                .join("\n")
                .to_ascii_lowercase();
            if ["registr", "mirror", "yarn-path", "_auth", "offline", "--"]
                .iter()
                .any(|w| lower.contains(w))
            {
                return Err(refuse(format!(
                    "{} sets a registry, mirror, yarn-path or options, which Cerebro does not \
                     read as yarn would: move the registry to .npmrc",
                    rc.display()
                )));
            }
        }
    }
    // yarn reads its own settings from `.npmrc` files too.
    let mut npmrcs: Vec<PathBuf> = dir.ancestors().map(|d| d.join(".npmrc")).collect();
    if let Some(home) = &home {
        npmrcs.push(home.join(".npmrc"));
    }
    for rc in npmrcs {
        if let Ok(text) = std::fs::read_to_string(&rc) {
            let lower = text.to_ascii_lowercase();
            if ["offline-mirror", "yarn-path"]
                .iter()
                .any(|w| lower.contains(w))
            {
                return Err(refuse(format!(
                    "{} sets a yarn offline mirror or yarn-path, which Cerebro cannot judge: \
                     remove it",
                    rc.display()
                )));
            }
        }
    }
    if let Some(berry) = dir
        .ancestors()
        .map(|d| d.join(".yarnrc.yml"))
        .find(|f| f.is_file())
    {
        return Err(refuse(format!(
            "{} belongs to yarn 2 or later (berry), which Cerebro does not guard: only yarn \
             1 (classic) is",
            berry.display()
        )));
    }
    let mut words: Vec<OsString> = vec!["install".into()];
    if let Some(registry) = &install.registry {
        words.push(format!("--registry={registry}").into());
    }
    let npm_install = match npm::parse_in(&words, dir)? {
        npm::NpmCommand::Install(i) => i,
        _ => {
            return Err(refuse(
                "cannot read the registry options as yarn would".into(),
            ))
        }
    };
    let mut config = npm::npm_config_with(&project_root(dir), &npm_install, env, env_names)?;
    if let Some(scope) = config.scopes.keys().next() {
        return Err(refuse(format!(
            "a registry for {scope} is configured: scoped registries are not guarded for \
             yarn yet"
        )));
    }
    if install.registry.is_none() && config.registry.as_str() == npm::NPM_REGISTRY {
        config.registry = reqwest::Url::parse(YARN_REGISTRY).expect("valid URL");
    }
    Ok(config)
}

/// The project folder: the nearest folder from `dir` up with a `package.json`, else `dir`.
pub fn project_root(dir: &Path) -> PathBuf {
    dir.ancestors()
        .find(|d| d.join("package.json").is_file())
        .unwrap_or(dir)
        .to_path_buf()
}

/// `yarn.lock` with every `resolved` URL pointed at the guard (`guard_bun` is
/// `http://127.0.0.1:PORT/-/bun/`). A resolution Cerebro cannot route through the guard (a git
/// or file one, a URL with credentials or a query) is an error naming it.
pub fn lock_to_guard(text: &str, guard_bun: &str) -> Result<String, String> {
    let mut out = String::with_capacity(text.len() + 64);
    for line in text.split_inclusive('\n') {
        let Some(rest) = line.strip_prefix("  resolved \"") else {
            out.push_str(line);
            continue;
        };
        let url = rest.split('"').next().unwrap_or_default();
        let tail = &rest[url.len()..];
        let (scheme, after) = url
            .split_once("://")
            .filter(|(s, _)| matches!(*s, "http" | "https"))
            .ok_or_else(|| format!("yarn.lock resolves a package from {url}, not a registry"))?;
        let authority = after.split('/').next().unwrap_or_default();
        if authority.contains('@') || after.contains('?') || after.contains('"') {
            return Err(format!(
                "yarn.lock resolves a package from a URL Cerebro cannot route through the \
                 guard: {}",
                url.split('#').next().unwrap_or(url)
            ));
        }
        out.push_str(&format!(
            "  resolved \"{guard_bun}{URL_PREFIX}{scheme}/{after}{tail}"
        ));
    }
    Ok(out)
}

/// Every `"<guard_bun>-/url/<scheme>/<rest>"` in `text` (yarn.lock, or `.yarn-integrity`)
/// turned back into `"<scheme>://<rest>"`. With `yarn_default` (yarn's registry is its own
/// default, [`YARN_REGISTRY`]), `http(s)://registry.npmjs.org` in a link becomes
/// `https://registry.yarnpkg.com`, as yarn rewrites a packument's tarball links then
/// (`NpmResolver.cleanRegistry`). Anything of the guard's address left after that is an error:
/// the file cannot be given back as a bare yarn writes it.
pub fn lock_from_guard(
    text: &str,
    guard_bun: &str,
    guard_host: &str,
    yarn_default: bool,
) -> Result<String, String> {
    let needle = format!("\"{guard_bun}{URL_PREFIX}");
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find(&needle) {
        out.push_str(&rest[..at]);
        let after = &rest[at + needle.len()..];
        let end = after
            .find('"')
            .ok_or("a guard link Cerebro cannot map back")?;
        match after[..end].split_once('/') {
            Some((scheme, tail)) if matches!(scheme, "http" | "https") => {
                let mut url = format!("{scheme}://{tail}");
                if yarn_default {
                    let yarn = YARN_REGISTRY.trim_end_matches('/');
                    for npm in ["https://registry.npmjs.org", "http://registry.npmjs.org"] {
                        url = url.replace(npm, yarn);
                    }
                }
                out.push('"');
                out.push_str(&url);
                out.push('"');
            }
            _ => return Err("a guard link Cerebro cannot map back".into()),
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    if out.contains(guard_host) {
        return Err(format!(
            "yarn would keep the guard's address ({guard_host}) in its files"
        ));
    }
    Ok(out)
}

/// One package `yarn.lock` pins.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockedPackage {
    pub name: String,
    pub version: String,
    /// `integrity`, when recorded.
    pub integrity: Option<String>,
    /// The sha1 of the `resolved` URL's `#` fragment, when recorded.
    pub sha1: Option<String>,
    /// The `resolved` tarball URL, without its `#` fragment.
    pub resolved: String,
}

/// The packages of a yarn 1 `yarn.lock` (`# yarn lockfile v1`), each once. An entry Cerebro
/// cannot judge as a registry tarball with its hash is an error naming it.
pub fn locked_packages(text: &str) -> Result<Vec<LockedPackage>, String> {
    if !text.contains("# yarn lockfile v1") {
        return Err("yarn.lock is not a yarn 1 lockfile (`# yarn lockfile v1`)".into());
    }
    let mut out = Vec::new();
    let mut entry: Option<(String, Vec<(String, String)>)> = None;
    let finish = |entry: Option<(String, Vec<(String, String)>)>,
                  out: &mut Vec<LockedPackage>|
     -> Result<(), String> {
        let Some((key, fields)) = entry else {
            return Ok(());
        };
        let get = |k: &str| {
            fields
                .iter()
                .find(|(f, _)| f == k)
                .map(|(_, v)| v.trim_matches('"').to_owned())
        };
        let first = key.split(", ").next().unwrap_or_default().trim_matches('"');
        let at = first
            .get(1..)
            .and_then(|r| r.find('@'))
            .map(|a| a + 1)
            .ok_or_else(|| format!("yarn.lock: cannot read the entry {key}"))?;
        let (mut name, range) = (&first[..at], &first[at + 1..]);
        if let Some(real) = range.strip_prefix("npm:") {
            let at = real.get(1..).and_then(|r| r.find('@')).map(|a| a + 1);
            name = at.map_or(real, |a| &real[..a]);
        }
        let version = get("version").ok_or_else(|| format!("yarn.lock: {key} has no version"))?;
        let resolved = get("resolved").ok_or_else(|| {
            format!("yarn.lock pins {key} without a registry tarball, which Cerebro cannot judge")
        })?;
        let sha1 = resolved
            .split_once('#')
            .map(|(_, s)| s.to_owned())
            .filter(|s| s.len() == 40 && s.bytes().all(|b| b.is_ascii_hexdigit()));
        let integrity = get("integrity");
        if sha1.is_none() && integrity.is_none() {
            return Err(format!(
                "yarn.lock pins {key} without a hash, which Cerebro cannot verify"
            ));
        }
        out.push(LockedPackage {
            name: name.to_owned(),
            version,
            integrity,
            sha1,
            resolved: resolved.split('#').next().unwrap_or_default().to_owned(),
        });
        Ok(())
    };
    for line in text.lines() {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if !line.starts_with(' ') {
            finish(entry.take(), &mut out)?;
            let key = line
                .strip_suffix(':')
                .ok_or_else(|| format!("yarn.lock: cannot read the line {line}"))?;
            entry = Some((key.to_owned(), Vec::new()));
        } else if let Some(field) = line.strip_prefix("  ").filter(|l| !l.starts_with(' ')) {
            if let Some((k, v)) = field.split_once(' ') {
                if let Some((_, fields)) = entry.as_mut() {
                    fields.push((k.to_owned(), v.to_owned()));
                }
            }
        }
    }
    finish(entry.take(), &mut out)?;
    out.sort_by(|a, b| (&a.name, &a.version).cmp(&(&b.name, &b.version)));
    out.dedup();
    Ok(out)
}

/// The version of the real yarn at `path`, from the `package.json` of the package it runs
/// from (`…/yarn/bin/yarn.js`).
pub fn version_of(path: &Path) -> Option<String> {
    let real = path.canonicalize().ok()?;
    let package = real.parent()?.parent()?.join("package.json");
    let text = std::fs::read_to_string(package).ok()?;
    let json: serde_json::Value = serde_json::from_str(&text).ok()?;
    (json["name"] == "yarn")
        .then(|| json["version"].as_str().map(str::to_owned))
        .flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn install(words: &[&str]) -> YarnInstall {
        let args: Vec<OsString> = words.iter().map(OsString::from).collect();
        match parse_in(&args, Path::new("/p")).unwrap() {
            YarnCommand::Install(i) => i,
            YarnCommand::Other => panic!("{words:?} is not guarded"),
        }
    }

    #[test]
    fn commands() {
        assert!(install(&[]).command_at.is_none());
        assert_eq!(install(&["add", "x", "-D"]).packages, ["x"]);
        assert_eq!(
            install(&["--registry", "http://r/", "install"])
                .registry
                .as_deref(),
            Some("http://r/")
        );
        for other in [vec!["run", "build"], vec!["test"], vec!["add", "--help"]] {
            let args: Vec<OsString> = other.iter().map(OsString::from).collect();
            assert!(matches!(
                parse_in(&args, Path::new("/p")).unwrap(),
                YarnCommand::Other
            ));
        }
        for bad in [vec!["global", "add", "x"], vec!["install", "--offline"]] {
            let args: Vec<OsString> = bad.iter().map(OsString::from).collect();
            assert!(parse_in(&args, Path::new("/p")).is_err());
        }
        let i = install(&["add", "x", "--cache-folder", "/c", "--registry=http://r/"]);
        let got: Vec<String> = run_args(&i, "http://g/-/bun/", Path::new("/s"), true)
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            got,
            [
                "add",
                "x",
                "--registry=http://g/-/bun/",
                "--cache-folder=/s",
                "--ignore-scripts",
                "--non-interactive"
            ]
        );
    }

    #[test]
    fn lock_round_trip() {
        let lock = "# yarn lockfile v1\n\n\n\"@s/b@^2\":\n  version \"2.0.0\"\n  resolved \"https://r.example/@s/b/-/b-2.0.0.tgz#0bae2fde455d468b1f9a0a9f2d9cb841c4ea886b\"\n  integrity sha512-x\n\na@^1.0.0, a@^1.1:\n  version \"1.1.0\"\n  resolved \"http://127.0.0.1:9/a/-/a-1.1.0.tgz#0bae2fde455d468b1f9a0a9f2d9cb841c4ea886b\"\n  dependencies:\n    \"@s/b\" \"^2\"\n";
        let guard = "http://127.0.0.1:5/-/bun/";
        let to = lock_to_guard(lock, guard).unwrap();
        assert!(to.contains("resolved \"http://127.0.0.1:5/-/bun/-/url/https/r.example/@s/b/"));
        assert_eq!(
            lock_from_guard(&to, guard, "127.0.0.1:5", false).unwrap(),
            lock
        );
        let npm = "\"http://127.0.0.1:5/-/bun/-/url/https/registry.npmjs.org/a/-/a-1.tgz#x\"";
        assert_eq!(
            lock_from_guard(npm, guard, "127.0.0.1:5", true).unwrap(),
            "\"https://registry.yarnpkg.com/a/-/a-1.tgz#x\""
        );
        let got = locked_packages(lock).unwrap();
        assert_eq!(got[0].name, "@s/b");
        assert_eq!(got[0].integrity.as_deref(), Some("sha512-x"));
        assert_eq!(got[1].name, "a");
        assert_eq!(got[1].version, "1.1.0");
        assert!(got[1].sha1.is_some());
        let git = "# yarn lockfile v1\n\nx@git+https://g/x.git:\n  version \"1.0.0\"\n  resolved \"git+https://g/x.git#abc\"\n";
        assert!(lock_to_guard(git, guard).is_err());
        assert!(
            lock_from_guard("\"http://127.0.0.1:5/other\"", guard, "127.0.0.1:5", false).is_err()
        );
    }

    #[test]
    fn registries_yarn_reads_elsewhere_are_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let home = tmp.path().join("home");
        let project = tmp.path().join("app");
        std::fs::create_dir_all(&home).unwrap();
        std::fs::create_dir_all(&project).unwrap();
        std::fs::write(project.join("package.json"), "{}").unwrap();
        let args: Vec<OsString> = ["add", "x"].iter().map(OsString::from).collect();
        let YarnCommand::Install(i) = parse_in(&args, &project).unwrap() else {
            panic!("add is guarded")
        };
        let home_s = home.to_string_lossy().into_owned();
        let env = move |k: &str| (k == "HOME").then(|| home_s.clone());
        let config = yarn_config(&i, &env, &[]).unwrap();
        assert_eq!(config.registry.as_str(), YARN_REGISTRY);
        std::fs::write(
            home.join(".yarnrc"),
            "# yarn lockfile v1\nlastUpdateCheck 1\n",
        )
        .unwrap();
        assert!(yarn_config(&i, &env, &[]).is_ok());
        std::fs::write(project.join(".yarnrc"), "registry \"https://o/\"\n").unwrap();
        assert!(yarn_config(&i, &env, &[]).is_err());
        std::fs::remove_file(project.join(".yarnrc")).unwrap();
        assert!(yarn_config(&i, &env, &["YARN_REGISTRY".to_owned()]).is_err());
        std::fs::write(project.join(".npmrc"), "@acme:registry=https://acme/\n").unwrap();
        assert!(yarn_config(&i, &env, &[]).is_err());
        std::fs::write(project.join(".npmrc"), "yarn-offline-mirror=./m\n").unwrap();
        assert!(yarn_config(&i, &env, &[]).is_err());
        std::fs::write(project.join(".npmrc"), "registry=https://r.example/\n").unwrap();
        assert_eq!(
            yarn_config(&i, &env, &[]).unwrap().registry.as_str(),
            "https://r.example/"
        );
        std::fs::write(project.join(".yarnrc.yml"), "nodeLinker: pnp\n").unwrap();
        assert!(yarn_config(&i, &env, &[]).is_err());
    }
}
