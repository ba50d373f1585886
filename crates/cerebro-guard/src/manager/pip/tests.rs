use super::*;
use crate::manager::test_util::{args, strings, url, write};

/// pip's timeout toward the guard in these tests.
const TIMEOUT: std::time::Duration = std::time::Duration::from_secs(300);

fn no_env(_: &str) -> Option<String> {
    None
}

/// Parses `words` in `cwd` and expects an install.
fn install_in(words: &[&str], cwd: &Path) -> PipInstall {
    install_env(words, cwd, &no_env)
}

fn install_env(words: &[&str], cwd: &Path, env: &dyn Fn(&str) -> Option<String>) -> PipInstall {
    match parse_in(&args(words), cwd, env).unwrap() {
        PipCommand::Install(install) => install,
        PipCommand::Other => panic!("{words:?} parsed as another command"),
    }
}

fn install(words: &[&str]) -> PipInstall {
    install_in(words, Path::new("/nonexistent-cwd"))
}

fn is_other(words: &[&str]) -> bool {
    matches!(
        parse_in(&args(words), Path::new("/"), &no_env).unwrap(),
        PipCommand::Other
    )
}

#[test]
fn general_options_before_install_are_skipped() {
    let i = install(&[
        "-v",
        "--cache-dir",
        "/tmp/c",
        "--proxy",
        "http://proxy:3128",
        "--isolated",
        "--timeout=5",
        "--cert",
        "/etc/ca.pem",
        "--trusted-host",
        "h.example",
        "install",
        "requests",
    ]);
    assert_eq!(i.names, vec!["requests"]);
    assert!(i.isolated);
    assert_eq!(i.cert.as_deref(), Some(Path::new("/etc/ca.pem")));
    assert_eq!(i.trusted_hosts, vec!["h.example"]);
    assert_eq!(i.install_at, 11);
}

#[test]
fn everything_but_install_passes_through() {
    for words in [
        &[][..],
        &["--version"],
        &["-V"],
        &["-h"],
        &["list"],
        &["help", "install"],
        &["install", "--help"],
        &["install", "-h", "x"],
        &["download", "--help", "x"],
        &["wheel", "-h"],
        &["downl", "x"],
        &["-q", "freeze"],
        &["--python", "/usr/bin/python3", "uninstall", "x"],
        &["inst", "x"],
    ] {
        assert!(is_other(words), "{words:?}");
    }
    // A value that looks like a subcommand is a value.
    assert!(!is_other(&["--log", "install", "install", "x"]));
    assert!(is_other(&["--log", "install", "list"]));
}

#[test]
fn download_and_wheel_are_read_like_installs() {
    let d = install(&[
        "download",
        "-qd",
        "out",
        "--ind",
        "http://idx.example/simple",
        "--extra-index-url=http://extra.example/simple",
        "x==1",
    ]);
    assert_eq!(d.subcommand, PipSubcommand::Download);
    assert_eq!(d.index_url.as_deref(), Some("http://idx.example/simple"));
    assert_eq!(d.extra_index_urls, vec!["http://extra.example/simple"]);
    assert_eq!(d.names, vec!["x==1"]);
    let w = install(&["wheel", "-w", "dist", "--no-verify", "-e", "/src/p", "y"]);
    assert_eq!(w.subcommand, PipSubcommand::Wheel);
    assert_eq!(w.local_paths, vec![PathBuf::from("/src/p")]);
    assert_eq!(w.names, vec!["y"]);
    // Abbreviations resolve among each command's own options: `--wheel` is wheel's
    // `--wheel-dir` (and takes a value), an unknown option for download.
    assert_eq!(install(&["wheel", "--wheel", "o", "z"]).names, vec!["z"]);
    assert_eq!(
        install(&["download", "--wheel", "o", "z"]).names,
        vec!["o", "z"]
    );
    // Ambiguous among download's options (`--no-deps`, `--no-dependencies`, `--no-binary`,
    // `--no-build-isolation`, `--no-use-pep517`, `--no-index`): refused, as pip refuses it.
    assert!(matches!(
        parse_in(&args(&["download", "--no", "x"]), Path::new("/"), &no_env),
        Err(ManagerError::AmbiguousOption { .. })
    ));
}

#[test]
fn download_and_wheel_resolve_as_install_ignoring_what_is_installed() {
    let guard = url("http://127.0.0.1:1/simple/");
    let scratch = Path::new("/scratch");
    let d = install(&[
        "-v",
        "download",
        "-qd",
        "out",
        "--dest=o2",
        "--no-deps",
        "x",
    ]);
    let guarded = guarded_args(&d, &guard, scratch).unwrap();
    assert_eq!(
        strings(&guarded),
        vec![
            "-v",
            "download",
            "--index-url",
            "http://127.0.0.1:1/simple/",
            "-qd",
            "out",
            "--dest=o2",
            "--no-deps",
            "x"
        ]
    );
    let dry = strings(&dry_run_args(&guarded, Path::new("/r.json"), d.subcommand));
    assert_eq!(
        dry,
        vec![
            "-v",
            "install",
            "--dry-run",
            "--report",
            "/r.json",
            "--quiet",
            "--no-input",
            "--ignore-installed",
            "--index-url",
            "http://127.0.0.1:1/simple/",
            "-q",
            "--no-deps",
            "x"
        ]
    );
    let w = install(&[
        "wheel",
        "--wheel-dir",
        "dist",
        "--no-verify",
        "--build-option=--x",
        "-C",
        "k=v",
        "y",
    ]);
    let guarded = guarded_args(&w, &guard, scratch).unwrap();
    let dry = strings(&dry_run_args(&guarded, Path::new("/r.json"), w.subcommand));
    assert_eq!(
        dry,
        vec![
            "install",
            "--dry-run",
            "--report",
            "/r.json",
            "--quiet",
            "--no-input",
            "--ignore-installed",
            "--index-url",
            "http://127.0.0.1:1/simple/",
            "-C",
            "k=v",
            "y"
        ]
    );
}

#[test]
fn install_flags_are_read() {
    let i = install(&[
        "install",
        "--upgrade",
        "--user",
        "--target",
        "/t",
        "--pre",
        "--no-deps",
        "--dry-run",
        "--report=/r.json",
        "x",
    ]);
    assert!(i.upgrade && i.user && i.pre && i.no_deps && i.dry_run);
    assert_eq!(i.target.as_deref(), Some(Path::new("/t")));
    assert_eq!(i.report.as_deref(), Some(Path::new("/r.json")));
    assert!(!i.isolated);
}

#[test]
fn index_options_in_every_spelling() {
    let i = install(&[
        "install",
        "--ind",
        "https://a.example/simple",
        "--extra=https://b.example/simple",
        "--pypi-url",
        "https://c.example/simple",
        "--extra-index-url",
        "https://d.example/simple",
        "x",
    ]);
    assert_eq!(i.index_url.as_deref(), Some("https://c.example/simple"));
    assert_eq!(
        i.extra_index_urls,
        vec!["https://b.example/simple", "https://d.example/simple"]
    );
    let error = parse_in(
        &args(&["install", "--ex", "u", "x"]),
        Path::new("/"),
        &no_env,
    )
    .unwrap_err()
    .to_string();
    assert!(
        error.contains("--ex") && error.contains("ambiguous"),
        "{error}"
    );
    let error = parse_in(&args(&["install", "x", "-i"]), Path::new("/"), &no_env)
        .unwrap_err()
        .to_string();
    assert_eq!(error, "pip option -i needs a value");
}

#[test]
fn short_clusters_and_attached_values() {
    let i = install(&["install", "-qUihttps://a.example/simple", "x"]);
    assert!(i.upgrade);
    assert_eq!(i.index_url.as_deref(), Some("https://a.example/simple"));
    let i = install(&["install", "-Ui", "https://a.example/simple", "x"]);
    assert_eq!(i.index_url.as_deref(), Some("https://a.example/simple"));
    assert_eq!(i.names, vec!["x"]);
}

#[test]
fn requirement_strings_stay_untouched() {
    let i = install(&[
        "install",
        "requests[socks]>=2,<3",
        "pkg; python_version < '3.12'",
        "Django~=5.0",
        "--",
        "-weird",
    ]);
    assert_eq!(
        i.names,
        vec![
            "requests[socks]>=2,<3",
            "pkg; python_version < '3.12'",
            "Django~=5.0",
            "-weird"
        ]
    );
    assert!(i.local_paths.is_empty() && i.urls.is_empty());
}

#[test]
fn local_projects_and_archives() {
    let tmp = tempfile::tempdir().unwrap();
    let cwd = tmp.path();
    std::fs::create_dir_all(cwd.join("sub")).unwrap();
    std::fs::create_dir_all(cwd.join("proj")).unwrap();
    write(&cwd.join("dist/pkg-1.0-py3-none-any.whl"), "");
    write(&cwd.join("pkg-2.0.tar.gz"), "");
    let abs = cwd.join("proj");
    let i = install_in(
        &[
            "install",
            ".",
            "./sub[extra]",
            abs.to_str().unwrap(),
            "dist/pkg-1.0-py3-none-any.whl",
            "pkg-2.0.tar.gz",
            "-e",
            ".",
            "--editable=./proj[dev]",
            "file:///opt/x",
            "sub",
        ],
        cwd,
    );
    assert_eq!(
        i.local_paths,
        vec![
            cwd.to_owned(),
            cwd.join("sub"),
            cwd.join("proj"),
            cwd.join("dist/pkg-1.0-py3-none-any.whl"),
            cwd.join("pkg-2.0.tar.gz"),
            cwd.to_owned(),
            cwd.join("proj"),
            PathBuf::from("/opt/x"),
        ]
    );
    // A bare word is a name even when a folder has that name, as in pip.
    assert_eq!(i.names, vec!["sub"]);
}

#[test]
fn direct_urls() {
    let i = install(&[
        "install",
        "https://h.example/x-1.0.whl",
        "name @ https://h.example/n.tar.gz#sha256=00",
        "git+https://github.com/a/b@v1#egg=b",
        "-e",
        "git+https://github.com/a/c#egg=c",
        "local @ file:///srv/local",
    ]);
    assert_eq!(
        i.urls,
        vec![
            "https://h.example/x-1.0.whl",
            "name @ https://h.example/n.tar.gz#sha256=00",
            "git+https://github.com/a/b@v1#egg=b",
            "git+https://github.com/a/c#egg=c",
        ]
    );
    assert_eq!(i.local_paths, vec![PathBuf::from("/srv/local")]);
    assert!(i.names.is_empty());
}

#[test]
fn nested_requirement_files_with_index_options() {
    let tmp = tempfile::tempdir().unwrap();
    let cwd = tmp.path();
    write(
        &cwd.join("requirements.txt"),
        "# top\n--index-url https://private.example/simple\n-r sub/more.txt\nflask==3.0 \\\n  --hash=sha256:ab\n-e ./editable\n",
    );
    write(
        &cwd.join("sub/more.txt"),
        "--extra-index-url https://${TOKEN}@extra.example/simple\n--find-links wheels\n-c ../constraints.txt\n./sub-project\nhttps://h.example/direct.whl\n",
    );
    std::fs::create_dir_all(cwd.join("sub/wheels")).unwrap();
    std::fs::create_dir_all(cwd.join("sub-project")).unwrap();
    write(
        &cwd.join("constraints.txt"),
        "urllib3<2\n--trusted-host private.example\n",
    );
    let env = |name: &str| (name == "TOKEN").then(|| "s3cret".to_owned());
    let i = install_env(&["install", "-r", "requirements.txt"], cwd, &env);
    assert_eq!(
        i.requirement_files,
        vec![cwd.join("requirements.txt"), cwd.join("sub/more.txt")]
    );
    assert_eq!(i.constraint_files, vec![cwd.join("constraints.txt")]);
    assert_eq!(
        i.file_index_options,
        vec![
            FileIndexOption::IndexUrl("https://private.example/simple".into()),
            FileIndexOption::ExtraIndexUrl("https://s3cret@extra.example/simple".into()),
            FileIndexOption::FindLinks(cwd.join("sub/wheels").to_string_lossy().into_owned()),
            FileIndexOption::TrustedHost("private.example".into()),
        ]
    );
    // Requirement lines resolve against the working folder, as pip does (not the file).
    assert_eq!(
        i.local_paths,
        vec![cwd.join("sub-project"), cwd.join("editable")]
    );
    assert_eq!(i.urls, vec!["https://h.example/direct.whl"]);
    assert!(i.remote_find_links.is_empty());
}

#[test]
fn constraint_files_apply_before_requirement_files() {
    let tmp = tempfile::tempdir().unwrap();
    let cwd = tmp.path();
    write(&cwd.join("r.txt"), "-i https://from-r.example/simple\nx\n");
    write(&cwd.join("c.txt"), "-i https://from-c.example/simple\n");
    let i = install_in(&["install", "-r", "r.txt", "-c", "c.txt"], cwd);
    assert_eq!(
        i.file_index_options,
        vec![
            FileIndexOption::IndexUrl("https://from-c.example/simple".into()),
            FileIndexOption::IndexUrl("https://from-r.example/simple".into()),
        ]
    );
}

#[test]
fn cycles_and_missing_files_are_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let cwd = tmp.path();
    write(&cwd.join("a.txt"), "-r b.txt\n");
    write(&cwd.join("b.txt"), "x\n-r a.txt\n");
    let error = parse_in(&args(&["install", "-r", "a.txt"]), cwd, &no_env)
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("loop") && error.contains("a.txt → "),
        "{error}"
    );

    write(&cwd.join("c.txt"), "-r missing.txt\n");
    let error = parse_in(&args(&["install", "-r", "c.txt"]), cwd, &no_env)
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("missing.txt does not exist") && error.contains("included from"),
        "{error}"
    );
    let error = parse_in(&args(&["install", "-c", "nope.txt"]), cwd, &no_env)
        .unwrap_err()
        .to_string();
    assert!(error.starts_with("constraint file"), "{error}");

    // The same file from two branches is no loop.
    write(&cwd.join("d.txt"), "-r shared.txt\n-r e.txt\n");
    write(&cwd.join("e.txt"), "-r shared.txt\n");
    write(
        &cwd.join("shared.txt"),
        "--extra-index-url https://x.example/\n",
    );
    let i = install_in(&["install", "-r", "d.txt"], cwd);
    assert_eq!(i.file_index_options.len(), 2);
}

#[test]
fn remote_files_and_find_links_are_reported() {
    let tmp = tempfile::tempdir().unwrap();
    let cwd = tmp.path();
    write(
        &cwd.join("r.txt"),
        "-r https://h.example/more.txt\n-f https://links.example/\n",
    );
    let i = install_in(
        &[
            "install",
            "-r",
            "r.txt",
            "-r",
            "https://h.example/top.txt",
            "-f",
            "http://cli-links.example/",
            "-f",
            "wheels",
            "x",
        ],
        cwd,
    );
    assert_eq!(
        i.remote_requirement_files,
        vec!["https://h.example/top.txt", "https://h.example/more.txt"]
    );
    assert_eq!(
        i.remote_find_links,
        vec!["http://cli-links.example/", "https://links.example/"]
    );
    assert_eq!(
        i.find_links,
        vec![
            "http://cli-links.example/".to_owned(),
            cwd.join("wheels").to_string_lossy().into_owned(),
            "https://links.example/".to_owned(),
        ]
    );
}

#[test]
fn upstream_precedence() {
    let tmp = tempfile::tempdir().unwrap();
    let cwd = tmp.path();
    let global = cwd.join("etc/pip.conf");
    write(
        &global,
        "[global]\nindex-url = https://global.example/simple\nextra-index-url =\n    https://g1.example/simple\n    https://g2.example/simple\ncert = /etc/global-ca.pem\n",
    );
    let user = cwd.join("user/pip.conf");
    write(
        &user,
        "[install]\nindex_url = https://user-install.example/simple\n",
    );
    let files = vec![global.clone(), user.clone(), cwd.join("absent.conf")];

    // Config files: [install] beats [global]; extras from [global] stay.
    let i = install_in(&["install", "x"], cwd);
    let up = upstream(&i, &no_env, &files).unwrap();
    assert_eq!(up.index, url("https://user-install.example/simple"));
    assert_eq!(
        up.extra,
        vec![
            url("https://g1.example/simple"),
            url("https://g2.example/simple")
        ]
    );
    assert_eq!(up.cert.as_deref(), Some(Path::new("/etc/global-ca.pem")));

    // The environment beats the files; the command line beats the environment, and its
    // extras add to the environment's.
    let env = |name: &str| match name {
        "PIP_INDEX_URL" => Some("https://env.example/simple".to_owned()),
        "PIP_EXTRA_INDEX_URL" => Some("https://e1.example/ https://e2.example/".to_owned()),
        "PIP_CERT" => Some("/env-ca.pem".to_owned()),
        _ => None,
    };
    let up = upstream(&i, &env, &files).unwrap();
    assert_eq!(up.index, url("https://env.example/simple"));
    assert_eq!(
        up.extra,
        vec![url("https://e1.example/"), url("https://e2.example/")]
    );
    assert_eq!(up.cert.as_deref(), Some(Path::new("/env-ca.pem")));
    let i = install_in(
        &[
            "install",
            "-i",
            "https://cli.example/simple",
            "--extra-index-url",
            "https://e2.example/",
            "x",
        ],
        cwd,
    );
    let up = upstream(&i, &env, &files).unwrap();
    assert_eq!(up.index, url("https://cli.example/simple"));
    assert_eq!(
        up.extra,
        vec![url("https://e1.example/"), url("https://e2.example/")]
    );

    // A requirement file's -i replaces the list so far (extras included); its extras add.
    write(
        &cwd.join("r.txt"),
        "-i https://file.example/simple\n--extra-index-url https://fx.example/\nx\n",
    );
    let i = install_in(
        &["install", "-i", "https://cli.example/simple", "-r", "r.txt"],
        cwd,
    );
    let up = upstream(&i, &env, &files).unwrap();
    assert_eq!(up.index, url("https://file.example/simple"));
    assert_eq!(up.extra, vec![url("https://fx.example/")]);

    // --isolated: no environment (the files given are the caller's choice).
    let i = install_in(&["install", "--isolated", "x"], cwd);
    let up = upstream(&i, &env, &files).unwrap();
    assert_eq!(up.index, url("https://user-install.example/simple"));

    // Nothing anywhere: PyPI.
    let i = install_in(&["install", "x"], cwd);
    let up = upstream(&i, &no_env, &[]).unwrap();
    assert_eq!(up.index, url(PYPI_SIMPLE));
    assert!(up.extra.is_empty() && !up.no_index && up.cert.is_none());
}

#[test]
fn no_index_and_find_links() {
    let tmp = tempfile::tempdir().unwrap();
    let cwd = tmp.path();
    let conf = cwd.join("pip.conf");
    write(
        &conf,
        "[global]\nno-index = true\nfind-links = /srv/wheels https://links.example/\n",
    );
    let i = install_in(&["install", "-f", "./more", "x"], cwd);
    let up = upstream(&i, &no_env, std::slice::from_ref(&conf)).unwrap();
    assert!(up.no_index);
    assert!(up.extra.is_empty());
    assert_eq!(
        up.find_links,
        vec![
            "/srv/wheels".to_owned(),
            "https://links.example/".to_owned(),
            cwd.join("more").to_string_lossy().into_owned(),
        ]
    );
    assert_eq!(up.remote_find_links, vec!["https://links.example/"]);
    assert_eq!(
        up.config_find_links,
        vec!["/srv/wheels", "https://links.example/"]
    );
    // A file's --no-index wins over everything before it.
    write(
        &cwd.join("r.txt"),
        "--no-index\n-i https://after.example/\nx\n",
    );
    let i = install_in(&["install", "-r", "r.txt"], cwd);
    assert!(upstream(&i, &no_env, &[]).unwrap().no_index);
}

#[test]
fn credentials_stay_in_the_index_url_and_out_of_errors() {
    let i = install(&[
        "install",
        "-i",
        "https://user:tok@private.example/simple",
        "x",
    ]);
    let up = upstream(&i, &no_env, &[]).unwrap();
    assert_eq!(up.index.username(), "user");
    assert_eq!(up.index.password(), Some("tok"));
    let i = install(&["install", "-i", "https://user:tok@[bad/simple", "x"]);
    let error = upstream(&i, &no_env, &[]).unwrap_err().to_string();
    assert!(!error.contains("tok"), "{error}");
}

#[test]
fn a_local_folder_index_is_a_file_url() {
    let i = install_in(&["install", "-i", "./mirror", "x"], Path::new("/work"));
    let up = upstream(&i, &no_env, &[]).unwrap();
    assert_eq!(up.index, url("file:///work/mirror/"));
}

#[test]
fn config_files_in_pips_order() {
    let home = |name: &str| match name {
        "HOME" => Some("/home/u".to_owned()),
        _ => None,
    };
    assert_eq!(
        pip_config_files(&home, false, &[]),
        vec![
            PathBuf::from("/etc/xdg/pip/pip.conf"),
            PathBuf::from("/etc/pip.conf"),
            PathBuf::from("/home/u/.pip/pip.conf"),
            PathBuf::from("/home/u/.config/pip/pip.conf"),
        ]
    );
    let env = |name: &str| match name {
        "HOME" => Some("/home/u".to_owned()),
        "XDG_CONFIG_DIRS" => Some("/a:/b".to_owned()),
        "XDG_CONFIG_HOME" => Some("/cfg".to_owned()),
        "VIRTUAL_ENV" => Some("/venv".to_owned()),
        "PIP_CONFIG_FILE" => Some("/nonexistent/pip.conf".to_owned()),
        _ => None,
    };
    assert_eq!(
        pip_config_files(&env, false, &[]),
        vec![
            PathBuf::from("/a/pip/pip.conf"),
            PathBuf::from("/b/pip/pip.conf"),
            PathBuf::from("/etc/pip.conf"),
            PathBuf::from("/home/u/.pip/pip.conf"),
            PathBuf::from("/cfg/pip/pip.conf"),
            PathBuf::from("/venv/pip.conf"),
            PathBuf::from("/nonexistent/pip.conf"),
        ]
    );
    // Isolated: no user files. The site file follows the real pip's prefix.
    assert_eq!(
        pip_config_files(
            &env,
            true,
            &[OsString::from("/opt/v/bin/python3"), "-m".into()]
        ),
        vec![
            PathBuf::from("/a/pip/pip.conf"),
            PathBuf::from("/b/pip/pip.conf"),
            PathBuf::from("/etc/pip.conf"),
            PathBuf::from("/opt/v/pip.conf"),
            PathBuf::from("/nonexistent/pip.conf"),
        ]
    );
    let devnull = |name: &str| (name == "PIP_CONFIG_FILE").then(|| "/dev/null".to_owned());
    assert!(pip_config_files(&devnull, false, &[]).is_empty());
    // An existing PIP_CONFIG_FILE turns the user files off.
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("p.conf");
    write(&file, "");
    let with_file = |name: &str| match name {
        "HOME" => Some("/home/u".to_owned()),
        "PIP_CONFIG_FILE" => Some(file.to_string_lossy().into_owned()),
        _ => None,
    };
    assert!(!pip_config_files(&with_file, false, &[])
        .iter()
        .any(|f| f.starts_with("/home/u")));
}

#[test]
fn guarded_args_swap_every_index_for_the_guard() {
    let tmp = tempfile::tempdir().unwrap();
    let cwd = tmp.path();
    let scratch = cwd.join("scratch");
    let guard = url("http://127.0.0.1:4321/simple/");
    let i = install_in(
        &[
            "--isolated",
            "install",
            "-qUi",
            "https://a.example/simple",
            "--extra-index-url=https://b.example/",
            "--no-index",
            "-f",
            "https://links.example/",
            "-f",
            "./wheels",
            "x",
            "--",
            "-y",
        ],
        cwd,
    );
    let guarded = guarded_args(&i, &guard, &scratch).unwrap();
    assert_eq!(
        strings(&guarded),
        vec![
            "--isolated",
            "install",
            "--index-url",
            "http://127.0.0.1:4321/simple/",
            "-qU",
            "--no-index",
            "-f",
            "./wheels",
            "x",
            "--",
            "-y",
        ]
    );
    // Nothing was written for a command line without files.
    assert!(!scratch.exists());
}

#[test]
fn requirement_files_naming_an_index_are_replaced_by_sanitised_copies() {
    let tmp = tempfile::tempdir().unwrap();
    let cwd = tmp.path();
    let scratch = cwd.join("scratch");
    let guard = url("http://127.0.0.1:4321/simple/");
    write(
        &cwd.join("reqs/top.txt"),
        "-i https://private.example/simple --pre\n-r nested/inner.txt\n-r plain.txt\nrequests==2.32.3 --hash=sha256:abc\n-e ./local\n",
    );
    write(
        &cwd.join("reqs/nested/inner.txt"),
        "--extra-index-url https://${TOKEN}@x.example/\n-f ../wheels\n-c ../cons.txt\nflask\n",
    );
    std::fs::create_dir_all(cwd.join("reqs/wheels")).unwrap();
    write(&cwd.join("reqs/plain.txt"), "six\n");
    write(&cwd.join("reqs/cons.txt"), "urllib3<2\n");
    write(&cwd.join("other.txt"), "idna\n");
    let env = |name: &str| (name == "TOKEN").then(|| "s3cret".to_owned());
    let i = install_env(
        &[
            "install",
            "-r",
            "reqs/top.txt",
            "--requirement=other.txt",
            "-c",
            "reqs/cons.txt",
        ],
        cwd,
        &env,
    );
    let guarded = strings(&guarded_args(&i, &guard, &scratch).unwrap());
    assert_eq!(guarded[..3], ["install", "--index-url", guard.as_str()]);
    // The top file was copied; the files with no index stay as the user gave them.
    assert_eq!(guarded[3], "-r");
    let top_copy = PathBuf::from(&guarded[4]);
    assert!(top_copy.starts_with(&scratch));
    assert_eq!(
        guarded[5..],
        ["--requirement=other.txt", "-c", "reqs/cons.txt"]
    );

    let top = std::fs::read_to_string(&top_copy).unwrap();
    let lines: Vec<&str> = top.lines().filter(|l| !l.starts_with('#')).collect();
    assert_eq!(lines[0], "--pre");
    assert!(
        lines[1].starts_with("-r ") && lines[1].contains("scratch"),
        "{top}"
    );
    assert_eq!(
        lines[2],
        format!("-r {}", cwd.join("reqs/plain.txt").display())
    );
    assert_eq!(lines[3], "requests==2.32.3 --hash=sha256:abc");
    assert_eq!(lines[4], "-e ./local");
    let inner = std::fs::read_to_string(lines[1].trim_start_matches("-r ")).unwrap();
    assert!(
        !inner.contains("x.example") && !inner.contains("s3cret"),
        "{inner}"
    );
    assert!(inner.contains(&format!(
        "--find-links {}",
        cwd.join("reqs/wheels").display()
    )));
    assert!(inner.contains(&format!("-c {}", cwd.join("reqs/cons.txt").display())));
    assert!(inner.contains("\nflask\n"));
    // The user's files are untouched.
    assert!(std::fs::read_to_string(cwd.join("reqs/top.txt"))
        .unwrap()
        .contains("private.example"));
}

#[test]
fn dry_run_args_replace_the_users_report() {
    let guarded = args(&[
        "-v",
        "install",
        "--index-url",
        "http://127.0.0.1:1/simple/",
        "--report",
        "mine.json",
        "--target",
        "/t",
        "x",
    ]);
    let dry = strings(&dry_run_args(
        &guarded,
        Path::new("/scratch/report.json"),
        PipSubcommand::Install,
    ));
    assert_eq!(
        dry,
        vec![
            "-v",
            "install",
            "--dry-run",
            "--report",
            "/scratch/report.json",
            "--quiet",
            "--no-input",
            "--index-url",
            "http://127.0.0.1:1/simple/",
            "--target",
            "/t",
            "x",
        ]
    );
    let dry = strings(&dry_run_args(
        &args(&["install", "--rep=a.json", "x"]),
        Path::new("/r"),
        PipSubcommand::Install,
    ));
    assert_eq!(
        dry,
        vec![
            "install",
            "--dry-run",
            "--report",
            "/r",
            "--quiet",
            "--no-input",
            "x"
        ]
    );
}

#[test]
fn guarded_env_overrides_config_indexes() {
    let tmp = tempfile::tempdir().unwrap();
    let scratch = tmp.path().join("scratch");
    let guard = url("http://127.0.0.1:9/simple/");
    let conf = tmp.path().join("pip.conf");
    write(
        &conf,
        "[global]\nfind-links = /srv/wheels https://links.example/\ntimeout = 60\n",
    );
    let i = install(&["install", "x"]);
    let up = upstream(&i, &no_env, std::slice::from_ref(&conf)).unwrap();
    let env = guarded_env(&i, &up, &guard, &scratch, TIMEOUT, &no_env).unwrap();
    let env: Vec<(String, String)> = env
        .into_iter()
        .map(|(k, v)| (k.into_string().unwrap(), v.into_string().unwrap()))
        .collect();
    assert_eq!(
        env,
        vec![
            ("PIP_INDEX_URL".to_owned(), guard.to_string()),
            ("PIP_EXTRA_INDEX_URL".to_owned(), " ".to_owned()),
            ("PIP_FIND_LINKS".to_owned(), "/srv/wheels".to_owned()),
            ("PIP_DEFAULT_TIMEOUT".to_owned(), "300".to_owned()),
        ]
    );
    // No local find-links in the config: blank too (pip would show an empty folder).
    let up = upstream(&i, &no_env, &[]).unwrap();
    let env = guarded_env(&i, &up, &guard, &scratch, TIMEOUT, &no_env).unwrap();
    assert_eq!(env[2], ("PIP_FIND_LINKS".into(), " ".into()));

    // --isolated: pip ignores variables but reads PIP_CONFIG_FILE; a sanitised copy of it.
    let user_env =
        |name: &str| (name == "PIP_CONFIG_FILE").then(|| conf.to_string_lossy().into_owned());
    let i = install(&["install", "--isolated", "x"]);
    let up = upstream(&i, &no_env, std::slice::from_ref(&conf)).unwrap();
    let env = guarded_env(&i, &up, &guard, &scratch, TIMEOUT, &user_env).unwrap();
    assert_eq!(env.len(), 1);
    assert_eq!(env[0].0, "PIP_CONFIG_FILE");
    let written = std::fs::read_to_string(&env[0].1).unwrap();
    let parsed = IniConfig::load(&[PathBuf::from(&env[0].1)]).unwrap();
    // The user's 60 s gives way to the guard's timeout, once.
    assert_eq!(parsed.get("global", "timeout"), Some("300"));
    assert_eq!(written.matches("timeout").count(), 2, "{written}");
    for section in ["global", "install"] {
        assert_eq!(parsed.get(section, "index-url"), Some(guard.as_str()));
        assert_eq!(parsed.get(section, "extra-index-url"), Some(guard.as_str()));
        assert_eq!(parsed.get(section, "find-links"), Some("/srv/wheels"));
    }
    assert!(!written.contains("links.example"), "{written}");
}

#[test]
fn ini_reading_follows_configparser() {
    let mut config = IniConfig::default();
    config.merge(
        "; comment\n[DEFAULT]\ntimeout = 9\n[global]\nIndex_URL: https://a.example/simple\nextra-index-url =\n  https://b.example/\n\n  https://c.example/\n# x\n[install]\nindex-url = https://d.example/ # not a comment\nempty =\n",
    );
    assert_eq!(
        config.get("global", "index-url"),
        Some("https://a.example/simple")
    );
    assert_eq!(
        config.get("global", "extra-index-url"),
        Some("\nhttps://b.example/\nhttps://c.example/")
    );
    assert_eq!(
        config.get("install", "index-url"),
        Some("https://d.example/ # not a comment")
    );
    assert_eq!(config.get("install", "timeout"), Some("9"));
    assert_eq!(config.get("install", "empty"), None);
}

/// Runs the real pip (when there is one) with the guarded arguments and environment: it must
/// look at the guard only, whatever pip.conf, `PIP_*` and the requirement files name.
#[test]
#[ignore = "runs the real pip; `cargo test --lib manager -- --ignored`"]
fn the_real_pip_looks_at_the_guard_only() {
    let Some(pip) = std::env::var_os("PATH").and_then(|path| {
        std::env::split_paths(&path)
            .map(|dir| dir.join("pip"))
            .find(|p| p.is_file())
    }) else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let cwd = tmp.path();
    let conf = cwd.join("pip.conf");
    write(
        &conf,
        "[global]\nextra-index-url = http://conf-extra.invalid/simple\nfind-links = http://conf-links.invalid/\n[install]\nindex-url = http://conf-index.invalid/simple\n",
    );
    write(
        &cwd.join("r.txt"),
        "-i http://file-index.invalid/simple\n--extra-index-url http://file-extra.invalid/\n-f http://file-links.invalid/\nnonexistent-cerebro-probe\n",
    );
    let guard = url("http://127.0.0.1:9/simple/");
    let env = |name: &str| match name {
        "PIP_CONFIG_FILE" => Some(conf.to_string_lossy().into_owned()),
        "PIP_EXTRA_INDEX_URL" => Some("http://env-extra.invalid/".to_owned()),
        _ => None,
    };
    for isolated in [false, true] {
        let mut words = vec!["install"];
        if isolated {
            words.push("--isolated");
        }
        words.extend([
            "--extra-index-url",
            "http://cli-extra.invalid/",
            "-r",
            "r.txt",
        ]);
        let install = install_env(&words, cwd, &env);
        let up = upstream(&install, &env, &pip_config_files(&env, isolated, &[])).unwrap();
        assert_eq!(up.index, url("http://file-index.invalid/simple"));
        let scratch = cwd.join(format!("scratch-{isolated}"));
        let guarded = guarded_args(&install, &guard, &scratch).unwrap();
        let dry = dry_run_args(&guarded, &scratch.join("report.json"), install.subcommand);
        let overrides = guarded_env(&install, &up, &guard, &scratch, TIMEOUT, &env).unwrap();
        let output = std::process::Command::new(&pip)
            .args(&dry)
            .args([
                "--retries",
                "0",
                "--timeout",
                "1",
                "-v",
                "--disable-pip-version-check",
            ])
            .current_dir(cwd)
            .env("PIP_CONFIG_FILE", &conf)
            .env("PIP_EXTRA_INDEX_URL", "http://env-extra.invalid/")
            .env_remove("PIP_FIND_LINKS")
            .env_remove("PIP_INDEX_URL")
            .envs(overrides)
            .output()
            .unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(text.contains("127.0.0.1:9"), "{text}");
        assert!(!text.contains(".invalid"), "isolated={isolated}: {text}");
        if !isolated {
            // The guard once, not as index and extra index both.
            let looking = text
                .lines()
                .find(|l| l.starts_with("Looking in indexes:"))
                .unwrap_or_else(|| panic!("{text}"));
            assert_eq!(looking, format!("Looking in indexes: {guard}"), "{text}");
            assert!(!text.contains("Looking in links"), "{text}");
        }
    }
}
