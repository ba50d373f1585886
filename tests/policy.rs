//! `cerebro allow` and `cerebro allowlist`, run as the real binary against a config folder in
//! a temporary directory.

use std::path::Path;
use std::process::{Command, Output};

fn cerebro(config: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_cerebro"))
        .args(args)
        .env("CEREBRO_CONFIG_DIR", config)
        .env("NO_COLOR", "1")
        .env_remove("CEREBRO_POLICY")
        .output()
        .expect("run cerebro")
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn allow_then_list_then_remove() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path();

    let out = cerebro(config, &["allowlist"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("The allowlist is empty"),
        "{}",
        stderr(&out)
    );
    assert_eq!(stdout(&out), "");

    let out = cerebro(config, &["allow", "pypi", "Requests"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("Allowed pypi requests (any version)"),
        "{}",
        stderr(&out)
    );
    let out = cerebro(config, &["allow", "npm", "left-pad@1.3.0", "@scope/tool"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stderr(&out).contains("Allowed npm left-pad 1.3.0"));
    assert!(stderr(&out).contains("Allowed npm @scope/tool (any version)"));

    let out = cerebro(config, &["allow", "pip", "requests==2.0"]);
    assert!(out.status.success());
    assert!(
        stderr(&out).contains("pypi requests was already allowed (any version)"),
        "{}",
        stderr(&out)
    );

    let out = cerebro(config, &["allowlist"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        stdout(&out),
        "pypi\n  requests (any version)\nnpm\n  @scope/tool (any version)\n  left-pad 1.3.0\n"
    );

    let out = cerebro(config, &["allowlist", "--remove", "pypi", "requests"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("Removed pypi requests"),
        "{}",
        stderr(&out)
    );
    let out = cerebro(config, &["allowlist", "--remove", "npm", "left-pad@1.3.0"]);
    assert!(
        stderr(&out).contains("Removed npm left-pad 1.3.0"),
        "{}",
        stderr(&out)
    );
    let out = cerebro(config, &["allowlist", "--remove", "npm", "left-pad"]);
    assert!(out.status.success());
    assert!(
        stderr(&out).contains("was not in the allowlist"),
        "{}",
        stderr(&out)
    );

    let out = cerebro(config, &["allowlist"]);
    assert_eq!(stdout(&out), "npm\n  @scope/tool (any version)\n");
}

#[test]
fn allowlist_json() {
    let dir = tempfile::tempdir().unwrap();
    let out = cerebro(dir.path(), &["allowlist", "--json"]);
    assert!(out.status.success());
    assert_eq!(
        serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap(),
        serde_json::json!([])
    );
    cerebro(dir.path(), &["allow", "pypi", "Foo_Bar==1.0", "requests"]);
    cerebro(dir.path(), &["allow", "npm", "@s/n@2.0.0"]);
    let out = cerebro(dir.path(), &["allowlist", "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap(),
        serde_json::json!([
            {"ecosystem": "pypi", "name": "foo-bar", "version": "1.0"},
            {"ecosystem": "pypi", "name": "requests", "version": null},
            {"ecosystem": "npm", "name": "@s/n", "version": "2.0.0"},
        ])
    );
}

#[test]
fn allowlist_path_is_in_the_config_dir() {
    let dir = tempfile::tempdir().unwrap();
    let out = cerebro(dir.path(), &["allowlist", "--path"]);
    assert!(out.status.success());
    assert_eq!(
        stdout(&out).trim_end(),
        dir.path().join("allowlist.toml").display().to_string()
    );
    cerebro(dir.path(), &["allow", "pypi", "x"]);
    let text = std::fs::read_to_string(dir.path().join("allowlist.toml")).unwrap();
    assert!(text.contains("[pypi]") && text.contains("\"x\""), "{text}");
}

#[test]
fn bad_ecosystem_is_a_usage_error_in_one_line() {
    let dir = tempfile::tempdir().unwrap();
    for args in [
        &["allow", "cargo", "serde"][..],
        &["allowlist", "--remove", "gem", "rails"],
    ] {
        let out = cerebro(dir.path(), args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = stderr(&out);
        assert_eq!(err.trim_end().lines().count(), 1, "{err}");
        assert!(
            err.contains("unknown ecosystem") && err.contains("npm"),
            "{err}"
        );
    }
    assert!(!dir.path().join("allowlist.toml").exists());
}

#[test]
fn bad_package_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let out = cerebro(dir.path(), &["allow", "npm", "good", "left-pad@^1.0.0"]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(err.contains("`left-pad@^1.0.0`"), "{err}");
    assert!(!dir.path().join("allowlist.toml").exists());
}

#[test]
fn corrupt_allowlist_is_reported_and_kept() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("allowlist.toml");
    std::fs::write(&path, "[pypi]\npackages = [\"ok\",\n").unwrap();
    let out = cerebro(dir.path(), &["allow", "pypi", "other"]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(err.contains(&path.display().to_string()), "{err}");
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert_eq!(
        std::fs::read_to_string(&path).unwrap(),
        "[pypi]\npackages = [\"ok\",\n"
    );
}

#[test]
fn concurrent_allows_lose_no_entry() {
    let dir = tempfile::tempdir().unwrap();
    let children: Vec<_> = (0..8)
        .map(|i| {
            Command::new(env!("CARGO_BIN_EXE_cerebro"))
                .args(["allow", "npm", &format!("pkg-{i}")])
                .env("CEREBRO_CONFIG_DIR", dir.path())
                .stderr(std::process::Stdio::null())
                .spawn()
                .unwrap()
        })
        .collect();
    for mut child in children {
        assert!(child.wait().unwrap().success());
    }
    let out = cerebro(dir.path(), &["allowlist", "--json"]);
    let entries: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    let mut names: Vec<&str> = entries
        .iter()
        .map(|e| e["name"].as_str().unwrap())
        .collect();
    names.sort();
    let expected: Vec<String> = (0..8).map(|i| format!("pkg-{i}")).collect();
    assert_eq!(names, expected);
}
