use super::*;
use crate::manager::test_util::{args, strings, url, write};

fn install_in(words: &[&str], cwd: &Path) -> NpmInstall {
    match parse_in(&args(words), cwd).unwrap() {
        NpmCommand::Install(install) => install,
        other => panic!("{words:?} parsed as another command: {other:?}"),
    }
}

fn install(words: &[&str]) -> NpmInstall {
    install_in(words, Path::new("/work/app"))
}

fn is_other(words: &[&str]) -> bool {
    matches!(
        parse_in(&args(words), Path::new("/")).unwrap(),
        NpmCommand::Other
    )
}

/// An environment from pairs, and the list of its names.
fn env_of(pairs: &[(&str, &str)]) -> (impl Fn(&str) -> Option<String>, Vec<String>) {
    let owned: Vec<(String, String)> = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let names = owned.iter().map(|(k, _)| k.clone()).collect();
    let lookup = move |name: &str| {
        owned
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    };
    (lookup, names)
}

#[test]
fn install_aliases_and_kinds() {
    for (command, kind) in [
        ("install", NpmKind::Install),
        ("i", NpmKind::Install),
        ("in", NpmKind::Install),
        ("ins", NpmKind::Install),
        ("inst", NpmKind::Install),
        ("insta", NpmKind::Install),
        ("instal", NpmKind::Install),
        ("isnt", NpmKind::Install),
        ("isntall", NpmKind::Install),
        ("add", NpmKind::Install),
        ("it", NpmKind::Install),
        ("installTest", NpmKind::Install),
        ("ci", NpmKind::Ci),
        ("ic", NpmKind::Ci),
        ("clean-install", NpmKind::Ci),
        ("install-clean", NpmKind::Ci),
        ("isntall-clean", NpmKind::Ci),
        ("install-cl", NpmKind::Ci),
        ("cit", NpmKind::Ci),
        ("sit", NpmKind::Ci),
        ("update", NpmKind::Update),
        ("up", NpmKind::Update),
        ("u", NpmKind::Update),
        ("upgrade", NpmKind::Update),
        ("udpate", NpmKind::Update),
        ("upd", NpmKind::Update),
    ] {
        assert_eq!(install(&[command]).kind, kind, "{command}");
    }
    assert_eq!(install(&["cit"]).command, "install-ci-test");
    assert_eq!(install(&["isntall-clean"]).command, "ci");
}

#[test]
fn everything_else_passes_through() {
    for words in [
        &[][..],
        &["run", "build"],
        &["test"],
        &["ls"],
        &["help", "install"],
        &["--version"],
        &["-v"],
        &["install", "--help"],
        &["i", "-h", "x"],
        &["install", "--dry-run", "x"],
        &["i", "--package-lock-only"],
        &["link", "x"],
        &["uninstall", "x"],
        &["instell", "x"],
    ] {
        assert!(is_other(words), "{words:?}");
    }
    // `--version false` is not asking for the version.
    assert!(!is_other(&["install", "--version", "false", "x"]));
}

#[test]
fn settings_in_every_spelling() {
    let i = install(&[
        "--cache",
        "/tmp/cache",
        "install",
        "-gD",
        "--registry",
        "https://one.example/",
        "-reg=https://two.example/",
        "--@corp:registry=https://corp.example/npm/",
        "-C",
        "../other",
        "-w",
        "a",
        "--workspace=b",
        "--ignore-scripts",
        "--no-save",
        "left-pad",
    ]);
    assert!(i.global && i.save_dev && i.ignore_scripts);
    assert_eq!(i.registry.as_deref(), Some("https://two.example/"));
    assert_eq!(i.prefix.as_deref(), Some(Path::new("/work/other")));
    assert_eq!(i.workspaces, vec!["a", "b"]);
    assert_eq!(i.packages, vec!["left-pad"]);
    assert!(i
        .cli_config
        .contains(&("@corp:registry".into(), "https://corp.example/npm/".into())));
    assert!(i.cli_config.contains(&("save".into(), "false".into())));
    assert!(i
        .cli_config
        .contains(&("cache".into(), "/tmp/cache".into())));
    // An abbreviation of a setting is that setting.
    let i = install(&["i", "--regi", "https://three.example/", "x"]);
    assert_eq!(i.registry.as_deref(), Some("https://three.example/"));
    assert_eq!(i.packages, vec!["x"]);
    // Unknown settings are flags unless written with `=`.
    let i = install(&["i", "--frobnicate", "x"]);
    assert_eq!(i.packages, vec!["x"]);
    let i = install(&["i", "--location=global"]);
    assert!(i.global);
}

#[test]
fn specs_by_npm_package_arg_rules() {
    let tmp = tempfile::tempdir().unwrap();
    let cwd = tmp.path();
    let i = install_in(
        &[
            "install",
            "left-pad",
            "@scope/pkg@^1.2",
            "alias@npm:real@1",
            "pkg@latest",
            "./dir",
            "../x.tgz",
            "file:../y",
            "name@file:./z",
            "local.tgz",
            "/abs/path",
            "user/repo",
            "github:user/repo#main",
            "git+https://github.com/u/r.git",
            "https://host.example/p.tgz",
            "git@github.com:u/r.git",
            "pkg@user/repo",
            "--",
            "after-dashes",
        ],
        cwd,
    );
    assert_eq!(
        i.packages,
        vec![
            "left-pad",
            "@scope/pkg@^1.2",
            "alias@npm:real@1",
            "pkg@latest",
            "after-dashes"
        ]
    );
    let parent = cwd.parent().unwrap();
    assert_eq!(
        i.local_paths,
        vec![
            cwd.join("dir"),
            parent.join("x.tgz"),
            parent.join("y"),
            cwd.join("z"),
            cwd.join("local.tgz"),
            PathBuf::from("/abs/path"),
        ]
    );
    assert_eq!(
        i.urls,
        vec![
            "user/repo",
            "github:user/repo#main",
            "git+https://github.com/u/r.git",
            "https://host.example/p.tgz",
            "git@github.com:u/r.git",
            "pkg@user/repo",
        ]
    );
}

#[test]
fn config_layers_and_precedence() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let home = root.join("home");
    let project = root.join("proj");
    let cwd = project.join("src/deep");
    std::fs::create_dir_all(&cwd).unwrap();
    write(&project.join("package.json"), "{}");
    write(
        &project.join(".npmrc"),
        "@corp:registry=https://corp.example/npm/\n//corp.example/npm/:_authToken=${CORP_TOKEN}\nstrict-ssl=false\n",
    );
    write(
        &home.join(".npmrc"),
        "registry = https://user.example/\n@corp:registry=https://ignored.example/\n//user.example/:_auth=dXNlcjpwYXNz\ncafile=~/ca.pem\n",
    );
    write(
        &root.join("prefix/etc/npmrc"),
        "@glob:registry=https://glob.example/\n//glob.example/:username=bob\n//glob.example/:_password=c2VjcmV0\n",
    );
    let (env, names) = env_of(&[
        ("HOME", home.to_str().unwrap()),
        ("PREFIX", root.join("prefix").to_str().unwrap()),
        ("CORP_TOKEN", "tok-123"),
        ("NPM_CONFIG_@ENV:REGISTRY", "https://env-scope.example/"),
    ]);
    let i = install_in(&["install", "x"], &cwd);
    let config = npm_config_with(&cwd, &i, &env, &names).unwrap();
    assert_eq!(config.registry, url("https://user.example/"));
    assert_eq!(
        config.scopes.keys().collect::<Vec<_>>(),
        vec!["@corp", "@env", "@glob"]
    );
    assert_eq!(config.scopes["@corp"], url("https://corp.example/npm/"));
    assert_eq!(config.scopes["@env"], url("https://env-scope.example/"));
    assert!(!config.strict_ssl);
    assert_eq!(config.cafile, Some(home.join("ca.pem")));
    assert_eq!(
        config.auth,
        vec![
            (
                "//corp.example/npm/".to_owned(),
                "Bearer tok-123".to_owned()
            ),
            (
                "//glob.example/".to_owned(),
                "Basic Ym9iOnNlY3JldA==".to_owned()
            ),
            (
                "//user.example/".to_owned(),
                "Basic dXNlcjpwYXNz".to_owned()
            ),
        ]
    );

    // The environment beats the files, the command line beats the environment.
    let (env2, names2) = env_of(&[
        ("HOME", home.to_str().unwrap()),
        ("npm_config_registry", "https://env.example/"),
    ]);
    let config = npm_config_with(&cwd, &i, &env2, &names2).unwrap();
    assert_eq!(config.registry, url("https://env.example/"));
    let i = install_in(&["install", "--registry=https://cli.example", "x"], &cwd);
    let config = npm_config_with(&cwd, &i, &env2, &names2).unwrap();
    assert_eq!(config.registry, url("https://cli.example/"));

    // Global installs ignore the project's .npmrc.
    let i = install_in(&["install", "-g", "x"], &cwd);
    let config = npm_config_with(&cwd, &i, &env, &names).unwrap();
    assert_eq!(config.scopes["@corp"], url("https://ignored.example/"));

    // The user file can be moved by the environment.
    write(
        &root.join("other-npmrc"),
        "registry=https://moved.example/\n",
    );
    let (env3, names3) = env_of(&[
        ("HOME", home.to_str().unwrap()),
        (
            "npm_config_userconfig",
            root.join("other-npmrc").to_str().unwrap(),
        ),
    ]);
    let i = install_in(&["install", "x"], &cwd);
    let config = npm_config_with(&cwd, &i, &env3, &names3).unwrap();
    assert_eq!(config.registry, url("https://moved.example/"));

    // Nothing anywhere: the public registry.
    let (env4, names4) = env_of(&[]);
    let config = npm_config_with(Path::new("/"), &i, &env4, &names4).unwrap();
    assert_eq!(config.registry, url(NPM_REGISTRY));
    assert!(config.scopes.is_empty() && config.auth.is_empty() && config.strict_ssl);
}

#[test]
fn registry_for_packages_and_auth_for_urls() {
    let config = NpmConfig {
        registry: url("https://registry.npmjs.org/"),
        scopes: [("@corp".to_owned(), url("https://corp.example/npm/"))].into(),
        auth: vec![
            ("//corp.example/".to_owned(), "Bearer host-wide".to_owned()),
            (
                "//corp.example/npm/".to_owned(),
                "Bearer npm-path".to_owned(),
            ),
            (
                "//port.example:8443/".to_owned(),
                "Bearer with-port".to_owned(),
            ),
        ],
        cafile: None,
        strict_ssl: true,
    };
    assert_eq!(
        config.registry_for("@corp/x@1").as_str(),
        "https://corp.example/npm/"
    );
    assert_eq!(
        config.registry_for("@other/x").as_str(),
        "https://registry.npmjs.org/"
    );
    assert_eq!(
        config.registry_for("left-pad").as_str(),
        "https://registry.npmjs.org/"
    );
    assert_eq!(
        config.registry_for("mine@npm:@corp/real@2").as_str(),
        "https://corp.example/npm/"
    );
    let auth = |u: &str| config.auth_for(&url(u));
    assert_eq!(
        auth("https://corp.example/npm/x/-/x-1.0.0.tgz"),
        Some("Bearer npm-path")
    );
    assert_eq!(
        auth("https://corp.example/other/x"),
        Some("Bearer host-wide")
    );
    assert_eq!(auth("https://CORP.example/npm/x"), Some("Bearer npm-path"));
    assert_eq!(auth("https://corp.example.evil/npm/x"), None);
    assert_eq!(auth("https://evil.example/corp.example/npm/x"), None);
    assert_eq!(
        auth("https://port.example:8443/x"),
        Some("Bearer with-port")
    );
    assert_eq!(auth("https://port.example/x"), None);
    assert_eq!(auth("https://registry.npmjs.org/x"), None);
}

#[test]
fn guarded_args_point_every_registry_at_the_guard() {
    let guard = url("http://127.0.0.1:7000/");
    let i = install(&[
        "--registry",
        "https://one.example/",
        "install",
        "-reg=https://two.example/",
        "--@corp:registry=https://corp.example/",
        "--replace-registry-host=never",
        "-D",
        "x",
        "--",
        "y",
    ]);
    let config = NpmConfig {
        registry: url("https://two.example/"),
        scopes: [
            ("@corp".to_owned(), url("https://corp.example/")),
            ("@gh".to_owned(), url("https://npm.pkg.github.com/")),
        ]
        .into(),
        auth: Vec::new(),
        cafile: None,
        strict_ssl: true,
    };
    assert_eq!(
        strings(&guarded_args(&i, &config, &guard)),
        vec![
            "install",
            "-D",
            "x",
            "--registry=http://127.0.0.1:7000/",
            "--@corp:registry=http://127.0.0.1:7000/",
            "--@gh:registry=http://127.0.0.1:7000/",
            "--replace-registry-host=always",
            "--",
            "y",
        ]
    );
}

#[test]
fn resolve_args_run_lockfile_only_in_scratch() {
    let guard = url("http://127.0.0.1:7000/");
    let config = NpmConfig {
        registry: url(NPM_REGISTRY),
        scopes: BTreeMap::new(),
        auth: Vec::new(),
        cafile: None,
        strict_ssl: true,
    };
    let i = install(&["ci", "--omit=dev", "-C", "/elsewhere"]);
    assert_eq!(
        strings(&resolve_args(&i, &config, &guard)),
        vec![
            "install",
            "--omit=dev",
            "--registry=http://127.0.0.1:7000/",
            "--replace-registry-host=always",
            "--package-lock-only",
            "--ignore-scripts",
            "--no-audit",
            "--no-fund",
            "--no-update-notifier",
        ]
    );
    let i = install(&["i", "-gD", "typescript"]);
    assert_eq!(
        strings(&resolve_args(&i, &config, &guard))[..3],
        ["install", "--save-dev=true", "typescript"]
    );
    // The real run keeps -g.
    assert_eq!(
        strings(&guarded_args(&i, &config, &guard))[..3],
        ["i", "-gD", "typescript"]
    );
    let i = install(&["update", "lodash"]);
    assert_eq!(
        strings(&resolve_args(&i, &config, &guard))[..2],
        ["update", "lodash"]
    );
}

#[test]
fn local_prefix_finds_the_project_and_workspace_root() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    write(
        &root.join("mono/package.json"),
        r#"{"workspaces": ["packages/*"]}"#,
    );
    write(&root.join("mono/packages/app/package.json"), "{}");
    write(&root.join("mono/tools/cli/package.json"), "{}");
    std::fs::create_dir_all(root.join("mono/packages/app/src")).unwrap();
    std::fs::create_dir_all(root.join("plain/node_modules")).unwrap();
    std::fs::create_dir_all(root.join("plain/sub")).unwrap();
    let i = install(&["install"]);
    let prefix = |cwd: &Path| local_prefix(cwd, &i);
    assert_eq!(
        prefix(&root.join("mono/packages/app/src")),
        root.join("mono")
    );
    assert_eq!(
        prefix(&root.join("mono/tools/cli")),
        root.join("mono/tools/cli")
    );
    assert_eq!(prefix(&root.join("plain/sub")), root.join("plain"));
    let empty = root.join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    let i = install(&["install", "--prefix", "/somewhere"]);
    assert_eq!(local_prefix(&empty, &i), PathBuf::from("/somewhere"));
}

#[test]
fn npmrc_lines_read_like_ini() {
    let env = |name: &str| (name == "T").then(|| "tok".to_owned());
    let layer = parse_npmrc(
        "; comment\n# comment\nregistry = https://r.example/ ; trailing\nquoted = \"a;b#c\"\nsingle = 'x y'\nescaped = a\\;b\nflag\n//h/:_authToken=${T}\nopt=${MISSING?}x\nkept=${MISSING}\nca[] = one\nca[] = two\n[section]\ninside = no\n",
        &env,
    );
    let get = |k: &str| get(&layer, k);
    assert_eq!(get("registry").as_deref(), Some("https://r.example/"));
    assert_eq!(get("quoted").as_deref(), Some("a;b#c"));
    assert_eq!(get("single").as_deref(), Some("x y"));
    assert_eq!(get("escaped").as_deref(), Some("a;b"));
    assert_eq!(get("flag").as_deref(), Some("true"));
    assert_eq!(get("//h/:_authToken").as_deref(), Some("tok"));
    assert_eq!(get("opt").as_deref(), Some("x"));
    assert_eq!(get("kept").as_deref(), Some("${MISSING}"));
    assert_eq!(get("ca").as_deref(), Some("two"));
    assert_eq!(get("inside"), None);
}

#[test]
fn env_replace_honours_escapes() {
    let env = |name: &str| (name == "A").then(|| "1".to_owned());
    assert_eq!(env_replace("x${A}y", &env), "x1y");
    assert_eq!(env_replace(r"\${A}", &env), "${A}");
    assert_eq!(env_replace(r"\\${A}", &env), r"\1");
    assert_eq!(env_replace("${B?}${B}", &env), "${B}");
    assert_eq!(env_replace("$A ${", &env), "$A ${");
}

/// Runs the real npm (when there is one) with the resolution arguments: every package, scoped
/// or not, must be asked of the guard only, whatever the `.npmrc` files and variables name.
#[test]
#[ignore = "runs the real npm; `cargo test --lib manager -- --ignored`"]
fn the_real_npm_asks_the_guard_only() {
    let Some(npm) = std::env::var_os("PATH").and_then(|path| {
        std::env::split_paths(&path)
            .map(|dir| dir.join("npm"))
            .find(|p| p.is_file())
    }) else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let project = tmp.path().join("proj");
    let home = tmp.path().join("home");
    write(
        &project.join("package.json"),
        r#"{"name":"p","version":"1.0.0"}"#,
    );
    write(
        &project.join(".npmrc"),
        "registry=http://project.invalid/\n@corp:registry=http://corp.invalid/\n",
    );
    write(
        &home.join(".npmrc"),
        "@user:registry=http://user.invalid/\n",
    );
    let (env, names) = env_of(&[
        ("HOME", home.to_str().unwrap()),
        ("npm_config_@env:registry", "http://env.invalid/"),
    ]);
    let guard = url("http://127.0.0.1:9/");
    for package in ["left-pad", "@corp/x", "@user/y", "@env/z"] {
        let install = install_in(
            &["install", "--registry", "http://cli.invalid/", package],
            &project,
        );
        let config = npm_config_with(&project, &install, &env, &names).unwrap();
        let resolve = resolve_args(&install, &config, &guard);
        let output = std::process::Command::new(&npm)
            .args(&resolve)
            .args(["--fetch-retries=0", "--loglevel=http", "--cache"])
            .arg(tmp.path().join("cache"))
            .current_dir(&project)
            .env("HOME", &home)
            .env("npm_config_@env:registry", "http://env.invalid/")
            .env("npm_config_update_notifier", "false")
            .output()
            .unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(text.contains("127.0.0.1:9"), "{package}: {text}");
        assert!(!text.contains(".invalid"), "{package}: {text}");
    }
}

// ---------------------------------------------------------------------------------------------
// npm exec and npx

/// `npx WORDS` as npx-cli.js hands them to npm.
fn npx(words: &[&str]) -> (Vec<String>, Vec<String>) {
    let (out, removed) = npx_args(&args(words)).unwrap();
    (strings(&out), removed)
}

fn exec_in(words: &[&str], cwd: &Path) -> Option<NpmExec> {
    match parse_in(&args(words), cwd).unwrap() {
        NpmCommand::Exec(exec) => Some(exec),
        NpmCommand::Other => None,
        NpmCommand::Install(i) => panic!("{words:?} parsed as an install: {i:?}"),
    }
}

#[test]
fn npx_arguments_become_npm_exec_as_npx_cli_writes_them() {
    let none: Vec<String> = Vec::new();
    for (words, want) in [
        (&["cowsay", "hi"][..], &["exec", "--", "cowsay", "hi"][..]),
        (
            &["-y", "cowsay", "--help"],
            &["exec", "--yes", "--", "cowsay", "--help"],
        ),
        (
            &["--yes", "-p", "foo@1", "-p=@s/bar", "cmd", "a"],
            &[
                "exec",
                "--yes",
                "--package",
                "foo@1",
                "--package=@s/bar",
                "--",
                "cmd",
                "a",
            ],
        ),
        (&["--no-install", "x"], &["exec", "--yes=false", "--", "x"]),
        (
            &["--shell=bash", "x"],
            &["exec", "--script-shell=bash", "--", "x"],
        ),
        // `-c` is npm's shorthand for `--call`, which takes a value: no command word.
        (
            &["-c", "echo hi", "-p", "foo"],
            &["exec", "--call", "echo hi", "--package", "foo"],
        ),
        (
            &["--", "cowsay", "--yes"],
            &["exec", "--", "cowsay", "--yes"],
        ),
        // An option npx does not know takes the next word as its value unless it looks like
        // an option.
        (
            &["--registry", "http://r.example/", "x"],
            &["exec", "--registry", "http://r.example/", "--", "x"],
        ),
        (
            &["--prefer-offline", "x"],
            &["exec", "--prefer-offline", "--", "x"],
        ),
        // `-yp`: not a shorthand npx knows, so it swallows `x` as a value; npm then reads
        // `-yp` as `--yes --parseable` and `x` as the command.
        (&["-yp", "x", "y"], &["exec", "-yp", "x", "--", "y"]),
        (&[], &["exec"]),
    ] {
        assert_eq!(
            npx(words),
            (strings(&args(want)), none.clone()),
            "{words:?}"
        );
    }
    // Removed options are dropped with their values, and reported.
    assert_eq!(
        npx(&["--npm", "/x/npm", "--always-spawn", "cowsay"]),
        (
            strings(&args(&["exec", "--", "cowsay"])),
            vec!["npm".to_owned(), "always-spawn".to_owned()]
        )
    );
    // Not UTF-8: npm would read it otherwise (as replacement characters).
    use std::os::unix::ffi::OsStringExt as _;
    let bad = vec![OsString::from_vec(vec![b'x', 0xff])];
    assert!(matches!(npx_args(&bad), Err(ManagerError::Argument { .. })));
}

#[test]
fn exec_fetches_the_command_word_or_every_package() {
    let tmp = tempfile::tempdir().unwrap();
    let cwd = tmp.path();
    let e = exec_in(&["exec", "--", "cowsay@1.2.0", "hi", "--yes"], cwd).unwrap();
    assert_eq!(e.specs, vec!["cowsay@1.2.0"]);
    assert_eq!(e.resolve.packages, vec!["cowsay@1.2.0"]);
    assert_eq!(e.resolve.kind, NpmKind::Install);
    assert_eq!(e.invocation.kind, NpmKind::Exec);
    // Without `--`, npm reads `--yes` after the command as its own setting.
    let e = exec_in(&["x", "cowsay", "--yes"], cwd).unwrap();
    assert_eq!(e.specs, vec!["cowsay"]);
    let (words, _) = npx(&["-y", "-p", "foo", "--package", "@s/bar@^2", "cmd", "arg"]);
    let words: Vec<&str> = words.iter().map(String::as_str).collect();
    let e = exec_in(&words, cwd).unwrap();
    assert_eq!(e.specs, vec!["foo", "@s/bar@^2"]);
    assert_eq!(e.resolve.packages, vec!["foo", "@s/bar@^2"]);
    // Git and URL specs are found, for the guard to refuse.
    let e = exec_in(&["exec", "--", "github:user/repo"], cwd).unwrap();
    assert_eq!(e.resolve.urls, vec!["github:user/repo"]);
    let e = exec_in(&["exec", "--package=./tool", "--", "tool"], cwd).unwrap();
    assert_eq!(e.resolve.local_paths, vec![cwd.join("tool")]);
    // `--dry-run` does not keep npm exec from running what it finds: still judged.
    let e = exec_in(&["exec", "--dry-run", "--", "cowsay"], cwd).unwrap();
    assert_eq!(e.resolve.packages, vec!["cowsay"]);
}

#[test]
fn exec_without_a_package_to_fetch_passes_through() {
    let tmp = tempfile::tempdir().unwrap();
    let cwd = tmp.path();
    for words in [
        &["exec"][..],
        &["exec", "--call", "echo hi"],
        &["exec", "-c", "eslint ."],
        &["exec", "--package=x", "--call", "x", "--", "extra"],
        &["exec", "--version"],
        &["exec", "-h", "x"],
    ] {
        assert!(exec_in(words, cwd).is_none(), "{words:?}");
    }
    assert!(exec_in(&["exec", "--package=x", "--call", "x"], cwd).is_some());
}

#[test]
fn exec_of_an_installed_bin_passes_through_and_the_projects_own_bin_is_judged() {
    let tmp = tempfile::tempdir().unwrap();
    let project = tmp.path().join("app");
    write(&project.join("package.json"), r#"{"name":"app"}"#);
    write(&project.join("node_modules/.bin/tsc"), "#!/bin/sh\n");
    std::fs::create_dir_all(project.join("src")).unwrap();
    for cwd in [project.clone(), project.join("src")] {
        assert!(exec_in(&["exec", "--", "tsc", "-v"], &cwd).is_none());
        // A version, or `--package`, asks npm to fetch.
        assert!(exec_in(&["exec", "--", "tsc@5", "-v"], &cwd).is_some());
        let e = exec_in(&["exec", "--package=typescript", "--", "tsc"], &cwd).unwrap();
        assert_eq!(e.specs, vec!["typescript"]);
        // Workspaces run with their own bin folders: judged.
        assert!(exec_in(&["exec", "-w", "a", "--", "tsc"], &cwd).is_some());
    }
    // The bin of a folder above the project counts too (libnpmexec walks up).
    let nested = project.join("packages/inner");
    write(&nested.join("package.json"), r#"{"name":"inner"}"#);
    assert!(exec_in(&["exec", "--", "tsc"], &nested).is_none());

    // The project's own bin: npm installs the project into its npx cache to run it.
    let tool = tmp.path().join("tool");
    write(
        &tool.join("package.json"),
        r#"{"name":"@me/tool","version":"1.0.0","bin":"cli.js"}"#,
    );
    let e = exec_in(&["exec", "--", "tool"], &tool).unwrap();
    assert_eq!(e.specs, vec![tool.to_string_lossy().into_owned()]);
    assert_eq!(e.resolve.local_paths, vec![tool.clone()]);
    write(
        &tool.join("package.json"),
        r#"{"name":"t","bin":{"mk":"mk.js"}}"#,
    );
    assert_eq!(
        exec_in(&["exec", "--", "mk"], &tool).unwrap().specs,
        vec![tool.to_string_lossy().into_owned()]
    );
    assert_eq!(
        exec_in(&["exec", "--", "other"], &tool).unwrap().specs,
        vec!["other"]
    );
}

#[test]
fn exec_resolves_with_the_settings_that_fetch_and_hands_over_through_the_guard() {
    let tmp = tempfile::tempdir().unwrap();
    let e = exec_in(
        &[
            "exec",
            "--registry",
            "https://r.example/",
            "--legacy-peer-deps",
            "--yes",
            "-w",
            "a",
            "--package=x",
            "--",
            "cmd",
            "--registry=https://not-a-setting.example/",
        ],
        tmp.path(),
    )
    .unwrap();
    let keys: Vec<&str> = e
        .resolve
        .cli_config
        .iter()
        .map(|(k, _)| k.as_str())
        .collect();
    assert_eq!(keys, vec!["registry", "legacy-peer-deps"]);
    assert_eq!(e.resolve.registry.as_deref(), Some("https://r.example/"));
    assert_eq!(e.invocation.registry.as_deref(), Some("https://r.example/"));
    let guard = url("http://127.0.0.1:7000/");
    let config = NpmConfig {
        registry: url("https://r.example/"),
        scopes: BTreeMap::new(),
        auth: Vec::new(),
        cafile: None,
        strict_ssl: true,
    };
    assert_eq!(
        strings(&guarded_args(&e.invocation, &config, &guard)),
        vec![
            "exec",
            "--legacy-peer-deps",
            "--yes",
            "-w",
            "a",
            "--package=x",
            "--registry=http://127.0.0.1:7000/",
            "--replace-registry-host=always",
            "--",
            "cmd",
            "--registry=https://not-a-setting.example/",
        ]
    );
    let resolve = strings(&resolve_args(&e.resolve, &config, &guard));
    assert_eq!(resolve[0], "install");
    assert!(
        resolve.contains(&"--package-lock-only".to_owned()),
        "{resolve:?}"
    );
    assert!(
        resolve.contains(&"--ignore-scripts".to_owned()),
        "{resolve:?}"
    );
    assert_eq!(resolve.last().map(String::as_str), Some("x"), "{resolve:?}");
    assert!(
        !resolve.iter().any(|w| w.contains("r.example")),
        "{resolve:?}"
    );
}
