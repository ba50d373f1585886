//! Integration tests for the archive stage, through its public API only.
//!
//! Every fixture is built here in memory (or in a temporary folder) with the `tar`, `flate2`,
//! `bzip2` and `zip` crates: no real package, and never anything from the malware corpus.

use std::io::Write;
use std::path::Path;

use cerebro_archive::{
    self as archive, AnomalyKind, ArchiveError, ArchiveKind, Ecosystem, Limits, Package,
};
use flate2::write::GzEncoder;
use tar::{EntryType, Header};
use zip::write::SimpleFileOptions;

// ----- fixture builders ------------------------------------------------------------------

/// One tar entry: path exactly as written, type, and contents (or link target).
struct Entry<'a> {
    path: &'a str,
    kind: EntryType,
    data: &'a [u8],
}

fn file<'a>(path: &'a str, data: &'a [u8]) -> Entry<'a> {
    Entry {
        path,
        kind: EntryType::Regular,
        data,
    }
}

fn dir(path: &str) -> Entry<'_> {
    Entry {
        path,
        kind: EntryType::Directory,
        data: b"",
    }
}

fn link(path: &str, kind: EntryType) -> Entry<'_> {
    Entry {
        path,
        kind,
        data: b"",
    }
}

/// A tar header with the name bytes set directly, since `tar`'s own setters refuse `..`
/// and absolute paths (which is what the hostile fixtures need).
fn raw_header(path: &str, kind: EntryType, size: u64) -> Header {
    let mut header = Header::new_gnu();
    let name = &mut header.as_old_mut().name;
    assert!(path.len() < name.len(), "fixture path too long");
    name[..path.len()].copy_from_slice(path.as_bytes());
    header.set_size(size);
    header.set_entry_type(kind);
    header.set_mode(if kind == EntryType::Directory {
        0o755
    } else {
        0o644
    });
    if matches!(kind, EntryType::Symlink | EntryType::Link) {
        header.set_link_name_literal("/etc/passwd").unwrap();
    }
    header.set_cksum();
    header
}

fn tar(entries: &[Entry<'_>]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    for entry in entries {
        let size = if entry.kind == EntryType::Regular {
            entry.data.len() as u64
        } else {
            0
        };
        let mut header = raw_header(entry.path, entry.kind, size);
        if matches!(entry.kind, EntryType::Symlink | EntryType::Link) && !entry.data.is_empty() {
            // A link's `data` is its target (default: /etc/passwd).
            let target = std::str::from_utf8(entry.data).unwrap();
            header.set_link_name_literal(target).unwrap();
            header.set_cksum();
        }
        let data: &[u8] = if size > 0 { entry.data } else { b"" };
        builder.append(&header, data).unwrap();
    }
    builder.into_inner().unwrap()
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

fn tar_gz(entries: &[Entry<'_>]) -> Vec<u8> {
    gzip(&tar(entries))
}

fn bzip2(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = bzip2::write::BzEncoder::new(Vec::new(), bzip2::Compression::default());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

fn zip(entries: &[(&str, &[u8])]) -> Vec<u8> {
    let mut writer = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options = SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
    for (path, data) in entries {
        writer.start_file(*path, options).unwrap();
        writer.write_all(data).unwrap();
    }
    writer.finish().unwrap().into_inner()
}

fn read(name: &str, bytes: &[u8]) -> Result<Package, ArchiveError> {
    archive::read_bytes(Path::new(name), bytes, &Limits::default())
}

fn paths(package: &Package) -> Vec<&str> {
    package.files.iter().map(|f| f.path.as_str()).collect()
}

fn anomalies(package: &Package) -> Vec<(AnomalyKind, &str)> {
    package
        .anomalies
        .iter()
        .map(|a| (a.kind, a.path.as_str()))
        .collect()
}

/// Small bytes that match no archive magic, from a fixed-seed xorshift.
fn noise(len: usize) -> Vec<u8> {
    let mut state = 0x2545_f491_4f6c_dd1d_u64;
    let mut bytes: Vec<u8> = (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect();
    bytes[..2].copy_from_slice(b"\x00\x42");
    bytes
}

/// Asserts the error's message is one line naming the file.
fn assert_readable(error: &ArchiveError, name: &str) {
    let text = error.to_string();
    assert!(text.contains(name), "{text:?} does not name {name}");
    assert!(!text.contains('\n'), "{text:?} is not one line");
}

const PKG_INFO: &[u8] =
    b"Metadata-Version: 2.1\nName: real-name\nVersion: 1.0.0\nSummary: x\n\nName: not-this\n";

// ----- well-formed packages --------------------------------------------------------------

#[test]
fn sdist_tar_gz_uses_pkg_info_strips_top_folder_and_drops_non_source() {
    let bytes = tar_gz(&[
        dir("foo-1.0/"),
        file("foo-1.0/PKG-INFO", PKG_INFO),
        file(
            "foo-1.0/setup.py",
            b"from setuptools import setup\nsetup()\n",
        ),
        dir("foo-1.0/foo/"),
        file("foo-1.0/foo/__init__.py", b"import os\n"),
        file("foo-1.0/README.md", b"# readme\n"),
        file("foo-1.0/data.bin", &[0u8; 64]),
    ]);
    let package = read("foo-9.9.tar.gz", &bytes).unwrap();
    assert_eq!(package.kind, ArchiveKind::Tar);
    assert_eq!(package.ecosystem, Ecosystem::Pypi);
    assert_eq!(package.name, "real-name");
    assert_eq!(package.version, "1.0.0");
    assert_eq!(paths(&package), ["PKG-INFO", "foo/__init__.py", "setup.py"]);
    assert_eq!(
        package.file("foo/__init__.py").unwrap().text(),
        "import os\n"
    );
    assert!(package.anomalies.is_empty());
    assert_eq!(package.origin, Path::new("foo-9.9.tar.gz"));
}

#[test]
fn sdist_tar_bz2() {
    let bytes = bzip2(&tar(&[
        file("bar-2.0/PKG-INFO", b"Name: bar\r\nVersion: 2.0\r\n\r\n"),
        file("bar-2.0/bar.py", b"print('hi')\n"),
    ]));
    let package = read("bar-2.0.tar.bz2", &bytes).unwrap();
    assert_eq!(package.kind, ArchiveKind::Tar);
    assert_eq!(
        (package.name.as_str(), package.version.as_str()),
        ("bar", "2.0")
    );
    assert_eq!(paths(&package), ["PKG-INFO", "bar.py"]);
}

#[test]
fn sdist_zip_and_plain_tar() {
    let zipped = zip(&[
        ("baz-3.1/setup.py", b"x = 1\n"),
        ("baz-3.1/baz/core.py", b"y = 2\n"),
    ]);
    let package = read("baz-3.1.zip", &zipped).unwrap();
    assert_eq!(package.kind, ArchiveKind::Zip);
    assert_eq!(package.ecosystem, Ecosystem::Pypi);
    assert_eq!(
        (package.name.as_str(), package.version.as_str()),
        ("baz", "3.1")
    );
    assert_eq!(paths(&package), ["baz/core.py", "setup.py"]);

    let plain = tar(&[file("./setup.py", b"x = 1\n"), file("./qux/a.py", b"")]);
    let package = read("qux-0.1.tar", &plain).unwrap();
    assert_eq!(paths(&package), ["qux/a.py", "setup.py"]);
}

#[test]
fn wheel_uses_dist_info_metadata_and_keeps_paths() {
    let bytes = zip(&[
        ("foo/__init__.py", b"from .core import run\n"),
        ("foo/core.py", b"def run(): pass\n"),
        (
            "foo-1.2.dist-info/METADATA",
            b"Metadata-Version: 2.1\nName: Foo\nVersion: 1.2\n\nbody",
        ),
        ("foo-1.2.dist-info/RECORD", b"foo/__init__.py,,\n"),
    ]);
    let package = read("foo-1.2-py3-none-any.whl", &bytes).unwrap();
    assert_eq!(package.kind, ArchiveKind::Zip);
    assert_eq!(package.ecosystem, Ecosystem::Pypi);
    assert_eq!(
        (package.name.as_str(), package.version.as_str()),
        ("Foo", "1.2")
    );
    assert_eq!(
        paths(&package),
        [
            "foo-1.2.dist-info/METADATA",
            "foo/__init__.py",
            "foo/core.py"
        ]
    );
}

#[test]
fn npm_tarball_with_package_folder() {
    let bytes = tar_gz(&[
        file(
            "package/package.json",
            br#"{"name": "left-pad", "version": "1.3.0", "main": "index.js"}"#,
        ),
        file("package/index.js", b"module.exports = 1;\n"),
        file("package/lib/util.mjs", b"export default 2;\n"),
        file("package/README.md", b"# left-pad\n"),
    ]);
    let package = read("left-pad-1.3.0.tgz", &bytes).unwrap();
    assert_eq!(package.ecosystem, Ecosystem::Npm);
    assert_eq!(
        (package.name.as_str(), package.version.as_str()),
        ("left-pad", "1.3.0")
    );
    assert_eq!(
        paths(&package),
        ["index.js", "lib/util.mjs", "package.json"]
    );
}

#[test]
fn npm_tarball_with_other_top_folder() {
    let bytes = tar_gz(&[
        file(
            "node-thing/package.json",
            br#"{"name": "@scope/thing", "version": "0.2.0"}"#,
        ),
        file("node-thing/index.js", b"require('child_process');\n"),
        file(
            "node-thing/node_modules/dep/package.json",
            br#"{"name": "dep"}"#,
        ),
    ]);
    let package = read("scope-thing-0.2.0.tgz", &bytes).unwrap();
    assert_eq!(package.ecosystem, Ecosystem::Npm);
    assert_eq!(
        (package.name.as_str(), package.version.as_str()),
        ("@scope/thing", "0.2.0")
    );
    assert_eq!(
        paths(&package),
        ["index.js", "node_modules/dep/package.json", "package.json"]
    );
}

#[test]
fn npm_tarball_with_bare_file_and_no_folder() {
    let bytes = tar_gz(&[file("index.js", b"eval(atob('x'));\n")]);
    let package = read("evil-pkg-2.0.1.tgz", &bytes).unwrap();
    assert_eq!(package.ecosystem, Ecosystem::Npm);
    assert_eq!(
        (package.name.as_str(), package.version.as_str()),
        ("evil-pkg", "2.0.1")
    );
    assert_eq!(paths(&package), ["index.js"]);
}

#[test]
fn invalid_package_json_falls_back_to_file_name() {
    let bytes = tar_gz(&[
        file("package/package.json", b"{ not json"),
        file("package/index.js", b"1;\n"),
    ]);
    let package = read("broken-1.0.0.tgz", &bytes).unwrap();
    assert_eq!(package.ecosystem, Ecosystem::Npm);
    assert_eq!(
        (package.name.as_str(), package.version.as_str()),
        ("broken", "1.0.0")
    );
}

#[test]
fn identity_falls_back_to_file_name_without_metadata() {
    let sdist = tar_gz(&[file("my-pkg-2.3.4/setup.py", b"import os\n")]);
    let package = read("my-pkg-2.3.4.tar.gz", &sdist).unwrap();
    assert_eq!(package.ecosystem, Ecosystem::Pypi);
    assert_eq!(
        (package.name.as_str(), package.version.as_str()),
        ("my-pkg", "2.3.4")
    );

    let wheel = zip(&[("my_pkg/__init__.py", b"")]);
    let package = read("my_pkg-0.1-py3-none-any.whl", &wheel).unwrap();
    assert_eq!(package.ecosystem, Ecosystem::Pypi);
    assert_eq!(
        (package.name.as_str(), package.version.as_str()),
        ("my_pkg", "0.1")
    );

    let unversioned = tar_gz(&[file("x/a.py", b"")]);
    let package = read("noversion.tar.gz", &unversioned).unwrap();
    assert_eq!(
        (package.name.as_str(), package.version.as_str()),
        ("noversion", "unknown")
    );
}

#[test]
fn egg_info_pkg_info_is_used_when_root_has_none() {
    let bytes = tar_gz(&[
        file("eggy-1.0/setup.py", b""),
        file(
            "eggy-1.0/src/eggy.egg-info/PKG-INFO",
            b"Name: eggy\nVersion: 1.0.post1\n",
        ),
    ]);
    let package = read("whatever.tar.gz", &bytes).unwrap();
    assert_eq!(
        (package.name.as_str(), package.version.as_str()),
        ("eggy", "1.0.post1")
    );
}

#[test]
fn format_is_sniffed_from_content_when_the_name_says_nothing() {
    let bytes = tar_gz(&[file("package/index.js", b"1;\n"), file("package/b.js", b"")]);
    let package = read("download.bin", &bytes).unwrap();
    assert_eq!(package.kind, ArchiveKind::Tar);
    assert_eq!(package.ecosystem, Ecosystem::Npm);
    assert_eq!(paths(&package), ["b.js", "index.js"]);
}

#[test]
fn upper_case_extension_is_recognised() {
    let bytes = zip(&[("a/x.py", b"")]);
    // A zip that does not start with its magic (a prefix, as self-extracting archives have).
    let mut prefixed = b"#!/bin/sh\n".to_vec();
    prefixed.extend_from_slice(&bytes);
    let package = read("SOMETHING-1.0.ZIP", &prefixed).unwrap();
    assert_eq!(package.kind, ArchiveKind::Zip);
}

#[test]
fn non_utf8_bytes_are_kept_and_read_lossily() {
    let bytes = tar_gz(&[file("p-1/m.py", b"s = '\xff\xfe'\n")]);
    let package = read("p-1.tar.gz", &bytes).unwrap();
    let file = package.file("m.py").unwrap();
    assert_eq!(file.bytes, b"s = '\xff\xfe'\n");
    assert_eq!(file.text(), "s = '\u{fffd}\u{fffd}'\n");
}

#[test]
fn duplicate_paths_keep_the_last_copy_as_extraction_would() {
    let bytes = tar_gz(&[file("d-1/a.py", b"first"), file("d-1/a.py", b"second")]);
    let package = read("d-1.tar.gz", &bytes).unwrap();
    assert_eq!(paths(&package), ["a.py"]);
    assert_eq!(package.files[0].bytes, b"second");
}

#[test]
fn archive_with_entries_but_no_kept_files_is_not_an_error() {
    let bytes = tar_gz(&[
        file("docs-1/README.md", b"hi"),
        file("docs-1/logo.png", b"png"),
    ]);
    let package = read("docs-1.tar.gz", &bytes).unwrap();
    assert!(package.files.is_empty());
    assert_eq!(
        (package.name.as_str(), package.version.as_str()),
        ("docs", "1")
    );
}

#[test]
fn open_reads_a_file_like_read_bytes() {
    let folder = tempfile::tempdir().unwrap();
    let path = folder.path().join("foo-1.0.tar.gz");
    std::fs::write(&path, tar_gz(&[file("foo-1.0/PKG-INFO", PKG_INFO)])).unwrap();
    let package = archive::open(&path, &Limits::default()).unwrap();
    assert_eq!(package.origin, path);
    assert_eq!(package.name, "real-name");

    let missing = folder.path().join("missing.tar.gz");
    let error = archive::open(&missing, &Limits::default()).unwrap_err();
    assert!(matches!(error, ArchiveError::Io { .. }), "{error:?}");
    assert_readable(&error, "missing.tar.gz");
}

#[cfg(unix)]
#[test]
fn directory_is_walked_without_following_links() {
    let root = tempfile::tempdir().unwrap();
    let project = root.path().join("myproj");
    let outside = root.path().join("outside");
    std::fs::create_dir_all(project.join("pkg")).unwrap();
    std::fs::create_dir_all(project.join("node_modules/dep")).unwrap();
    std::fs::create_dir_all(project.join(".git")).unwrap();
    std::fs::create_dir_all(project.join("pkg/__pycache__")).unwrap();
    std::fs::create_dir_all(&outside).unwrap();
    std::fs::write(project.join("setup.py"), b"import os\n").unwrap();
    std::fs::write(project.join("pkg/mod.py"), b"x = 1\n").unwrap();
    std::fs::write(project.join("pkg/notes.txt"), b"text").unwrap();
    std::fs::write(project.join("node_modules/dep/index.js"), b"1;").unwrap();
    std::fs::write(project.join(".git/hook.py"), b"1").unwrap();
    std::fs::write(project.join("pkg/__pycache__/mod.py"), b"1").unwrap();
    std::fs::write(outside.join("secret.py"), b"stolen = True\n").unwrap();
    std::os::unix::fs::symlink(&outside, project.join("escape")).unwrap();
    std::os::unix::fs::symlink("/etc/passwd", project.join("passwd.py")).unwrap();

    let package = archive::open(&project, &Limits::default()).unwrap();
    assert_eq!(package.kind, ArchiveKind::Directory);
    assert_eq!(package.ecosystem, Ecosystem::Pypi);
    assert_eq!(
        (package.name.as_str(), package.version.as_str()),
        ("myproj", "unknown")
    );
    assert_eq!(paths(&package), ["pkg/mod.py", "setup.py"]);
    let mut found = anomalies(&package);
    found.sort_by_key(|(_, path)| path.to_string());
    assert_eq!(
        found,
        [
            (AnomalyKind::Symlink, "escape"),
            (AnomalyKind::Symlink, "passwd.py")
        ]
    );
}

#[test]
fn empty_directory_is_empty() {
    let root = tempfile::tempdir().unwrap();
    std::fs::create_dir(root.path().join("sub")).unwrap();
    let error = archive::open(root.path(), &Limits::default()).unwrap_err();
    assert!(matches!(error, ArchiveError::Empty { .. }), "{error:?}");
}

// ----- hostile and broken archives -------------------------------------------------------

#[test]
fn zip_bomb_is_stopped_by_declared_sizes_without_inflating() {
    let zeros = vec![0u8; 1 << 20];
    let bytes = zip(&[("bomb/data.bin", &zeros), ("bomb/x.py", b"")]);
    assert!(bytes.len() < 16 << 10, "fixture is {} bytes", bytes.len());
    let limits = Limits {
        max_total_bytes: 512 << 10,
        ratio_floor_bytes: 128 << 10,
        ..Limits::default()
    };
    let error = archive::read_bytes(Path::new("bomb.zip"), &bytes, &limits).unwrap_err();
    assert!(
        matches!(
            error,
            ArchiveError::LimitExceeded {
                limit: "compression ratio",
                ..
            }
        ),
        "{error:?}"
    );
    assert_readable(&error, "bomb.zip");

    // Without the ratio check, the total size limit catches it.
    let limits = Limits {
        max_ratio: u64::MAX,
        ..limits
    };
    let error = archive::read_bytes(Path::new("bomb.zip"), &bytes, &limits).unwrap_err();
    assert!(
        matches!(
            error,
            ArchiveError::LimitExceeded {
                limit: "total unpacked size",
                ..
            }
        ),
        "{error:?}"
    );
}

#[test]
fn zip_declaring_200_mib_is_stopped_with_default_limits() {
    let mut bytes = zip(&[("bomb/data.py", &[0u8; 4096])]);
    patch_zip_sizes(&mut bytes, 200 << 20);
    let error = read("bomb.whl", &bytes).unwrap_err();
    assert!(
        matches!(
            error,
            ArchiveError::LimitExceeded {
                limit: "compression ratio",
                ..
            }
        ),
        "{error:?}"
    );
}

/// Rewrites every declared uncompressed size in a one-entry zip.
fn patch_zip_sizes(bytes: &mut [u8], size: u32) {
    let mut i = 0;
    while i + 4 <= bytes.len() {
        let at = match &bytes[i..i + 4] {
            b"PK\x03\x04" => Some(i + 22),
            b"PK\x01\x02" => Some(i + 24),
            _ => None,
        };
        if let Some(at) = at {
            bytes[at..at + 4].copy_from_slice(&size.to_le_bytes());
        }
        i += 1;
    }
}

#[test]
fn zip_entry_that_lies_about_its_size_is_not_inflated_past_it() {
    let zeros = vec![0u8; 1 << 20];
    let mut bytes = zip(&[("liar.py", &zeros)]);
    patch_zip_sizes(&mut bytes, 100);
    let error = read("liar.zip", &bytes).unwrap_err();
    assert!(matches!(error, ArchiveError::Corrupt { .. }), "{error:?}");
    assert_readable(&error, "liar.zip");
}

/// A `.tar.gz` whose single entry claims 1 GiB but holds `mib` MiB of zeros, as gzip
/// members of 1 MiB each (valid gzip, as `gzip` and Python read it), so that the fixture is
/// cheap to build and tiny on disk.
fn gzip_bomb(mib: usize) -> Vec<u8> {
    let mut bytes = gzip(raw_header("bomb/zeros.py", EntryType::Regular, 1 << 30).as_bytes());
    let mut encoder = GzEncoder::new(Vec::new(), flate2::Compression::best());
    encoder.write_all(&vec![0u8; 1 << 20]).unwrap();
    let member = encoder.finish().unwrap();
    for _ in 0..mib {
        bytes.extend_from_slice(&member);
    }
    bytes
}

#[test]
fn gzip_bomb_is_stopped_with_default_limits() {
    let bytes = gzip_bomb(24);
    assert!(bytes.len() < 64 << 10, "fixture is {} bytes", bytes.len());
    let error = read("bomb-1.0.tar.gz", &bytes).unwrap_err();
    assert!(
        matches!(
            error,
            ArchiveError::LimitExceeded {
                limit: "compression ratio",
                ..
            }
        ),
        "{error:?}"
    );
    assert_readable(&error, "bomb-1.0.tar.gz");
}

#[test]
fn gzip_bomb_is_stopped_by_total_size() {
    let bytes = gzip_bomb(4);
    let limits = Limits {
        max_total_bytes: 2 << 20,
        ..Limits::default()
    };
    let error = archive::read_bytes(Path::new("bomb.tgz"), &bytes, &limits).unwrap_err();
    match &error {
        ArchiveError::LimitExceeded { limit, detail, .. } => {
            assert_eq!(*limit, "total unpacked size");
            assert_eq!(detail, "more than 2 MiB");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn path_traversal_is_reported_not_kept() {
    let bytes = tar_gz(&[
        file("evil-1.0/setup.py", b"x\n"),
        file("../../etc/passwd", b"root::0:0\n"),
        file("evil-1.0/../../../home/u/.bashrc.py", b"rm -rf\n"),
    ]);
    let package = read("evil-1.0.tar.gz", &bytes).unwrap();
    assert_eq!(paths(&package), ["setup.py"]);
    assert_eq!(
        anomalies(&package),
        [
            (AnomalyKind::PathTraversal, "../../etc/passwd"),
            (
                AnomalyKind::PathTraversal,
                "evil-1.0/../../../home/u/.bashrc.py"
            ),
        ]
    );
}

#[test]
fn absolute_paths_are_reported_not_kept() {
    let bytes = tar_gz(&[file("abs-1/a.py", b""), file("/etc/cron.d/x.py", b"evil")]);
    let package = read("abs-1.tar.gz", &bytes).unwrap();
    assert_eq!(paths(&package), ["a.py"]);
    assert_eq!(
        anomalies(&package),
        [(AnomalyKind::AbsolutePath, "/etc/cron.d/x.py")]
    );

    let zipped = zip(&[
        ("win/ok.py", b""),
        ("C:\\Windows\\evil.py", b"x"),
        ("..\\..\\evil.py", b"x"),
    ]);
    let package = read("win.zip", &zipped).unwrap();
    assert_eq!(paths(&package), ["ok.py"]);
    assert_eq!(
        anomalies(&package),
        [
            (AnomalyKind::AbsolutePath, "C:\\Windows\\evil.py"),
            (AnomalyKind::PathTraversal, "..\\..\\evil.py"),
        ]
    );
}

#[test]
fn links_and_special_entries_are_reported_not_followed() {
    let bytes = tar_gz(&[
        file("l-1/a.py", b""),
        link("l-1/sym.py", EntryType::Symlink),
        link("l-1/hard.py", EntryType::Link),
        link("l-1/fifo", EntryType::Fifo),
        link("l-1/dev", EntryType::Char),
    ]);
    let package = read("l-1.tar.gz", &bytes).unwrap();
    assert_eq!(paths(&package), ["a.py"]);
    assert_eq!(
        anomalies(&package),
        [
            (AnomalyKind::Symlink, "l-1/sym.py"),
            (AnomalyKind::Hardlink, "l-1/hard.py"),
            (AnomalyKind::SpecialFile, "l-1/fifo"),
            (AnomalyKind::SpecialFile, "l-1/dev"),
        ]
    );
}

#[test]
fn a_zip_symlink_or_special_entry_is_read_as_the_file_pip_writes() {
    // pip (`unzip_file`, the wheel installer) writes every entry not named like a folder as
    // a file holding its stored bytes, whatever mode the entry claims; and an entry with a
    // folder's mode but a file's name is a file too.
    let mut writer = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options = SimpleFileOptions::default();
    writer.start_file("z/a.py", options).unwrap();
    writer.write_all(b"x = 1\n").unwrap();
    writer
        .add_symlink("z/link.py", "import os; os.system('id')", options)
        .unwrap();
    writer
        .start_file("z/dir.py", options.unix_permissions(0o040_755))
        .unwrap();
    writer.write_all(b"y = 2\n").unwrap();
    let bytes = writer.finish().unwrap().into_inner();
    let package = read("z.zip", &bytes).unwrap();
    assert_eq!(paths(&package), ["a.py", "dir.py", "link.py"]);
    assert_eq!(
        package.file("link.py").unwrap().bytes,
        b"import os; os.system('id')"
    );
    assert!(anomalies(&package).is_empty());
}

fn link_to<'a>(path: &'a str, kind: EntryType, target: &'a str) -> Entry<'a> {
    Entry {
        path,
        kind,
        data: target.as_bytes(),
    }
}

#[test]
fn a_link_to_a_file_of_the_archive_is_read_as_pip_unpacks_it() {
    let bytes = tar_gz(&[
        file("h-1/pkg/a/__init__.py", b"first = 1\n"),
        // A symbolic link reads the target's final content; a hard link is a copy of the
        // target as it stands at the link.
        link_to(
            "h-1/pkg/b/__init__.py",
            EntryType::Symlink,
            "../a/__init__.py",
        ),
        link_to("h-1/pkg/c.py", EntryType::Link, "h-1/pkg/a/__init__.py"),
        file("h-1/pkg/a/__init__.py", b"last = 2\n"),
        // Nothing to read at the target: an anomaly, as before.
        link_to("h-1/pkg/d.py", EntryType::Symlink, "../../outside.py"),
        link_to("h-1/pkg/e.py", EntryType::Link, "h-1/data.txt"),
    ]);
    let package = read("h-1.tar.gz", &bytes).unwrap();
    let text = |p: &str| String::from_utf8(package.file(p).unwrap().bytes.clone()).unwrap();
    assert_eq!(text("pkg/a/__init__.py"), "last = 2\n");
    assert_eq!(text("pkg/b/__init__.py"), "last = 2\n");
    assert_eq!(text("pkg/c.py"), "first = 1\n");
    // (Symbolic links are resolved once the archive is read, so theirs come last.)
    assert_eq!(
        anomalies(&package),
        [
            (AnomalyKind::Hardlink, "h-1/pkg/e.py"),
            (AnomalyKind::Symlink, "h-1/pkg/d.py")
        ]
    );
}

#[test]
fn only_links_is_a_package_with_anomalies_not_empty() {
    let bytes = tar_gz(&[link("package/index.js", EntryType::Symlink)]);
    let package = read("l.tgz", &bytes).unwrap();
    assert!(package.files.is_empty());
    assert_eq!(package.anomalies.len(), 1);
}

#[test]
fn truncated_gzip_is_corrupt() {
    let bytes = tar_gz(&[file("t-1/a.py", &noise(64 << 10))]);
    let error = read("t-1.tar.gz", &bytes[..bytes.len() / 2]).unwrap_err();
    assert!(matches!(error, ArchiveError::Corrupt { .. }), "{error:?}");
    assert_readable(&error, "t-1.tar.gz");
}

#[test]
fn truncated_zip_is_corrupt() {
    let bytes = zip(&[("t/a.py", b"x = 1\n")]);
    let error = read("t.zip", &bytes[..bytes.len() - 30]).unwrap_err();
    assert!(matches!(error, ArchiveError::Corrupt { .. }), "{error:?}");
}

#[test]
fn random_bytes_named_as_archive_are_corrupt() {
    for name in ["x.tar.gz", "x.whl", "x.tar.bz2", "x.tar"] {
        let error = read(name, &noise(4096)).unwrap_err();
        assert!(
            matches!(error, ArchiveError::Corrupt { .. }),
            "{name}: {error:?}"
        );
        assert_readable(&error, name);
    }
}

#[test]
fn random_bytes_with_unknown_name_are_not_an_archive() {
    let error = read("x.bin", &noise(4096)).unwrap_err();
    assert!(
        matches!(error, ArchiveError::NotAnArchive { .. }),
        "{error:?}"
    );
    assert_readable(&error, "x.bin");
}

#[test]
fn empty_file_and_empty_archives_are_empty() {
    let cases = [
        ("empty.tar.gz", Vec::new()),
        ("empty.tar", tar(&[])),
        ("empty.tar.gz", tar_gz(&[])),
        ("dirs.tar.gz", tar_gz(&[dir("a/"), dir("a/b/")])),
        ("empty.zip", zip(&[])),
    ];
    for (name, bytes) in cases {
        let error = read(name, &bytes).unwrap_err();
        assert!(
            matches!(error, ArchiveError::Empty { .. }),
            "{name}: {error:?}"
        );
        assert_readable(&error, name);
    }
}

#[test]
fn too_many_entries_exceed_the_limit() {
    let names: Vec<String> = (0..20).map(|i| format!("many/f{i}.py")).collect();
    let entries: Vec<Entry<'_>> = names.iter().map(|n| file(n, b"")).collect();
    let limits = Limits {
        max_files: 10,
        ..Limits::default()
    };
    let error =
        archive::read_bytes(Path::new("many.tar.gz"), &tar_gz(&entries), &limits).unwrap_err();
    assert!(
        matches!(
            error,
            ArchiveError::LimitExceeded {
                limit: "entry count",
                ..
            }
        ),
        "{error:?}"
    );
    assert_readable(&error, "many.tar.gz");

    let zipped: Vec<(&str, &[u8])> = names.iter().map(|n| (n.as_str(), &b""[..])).collect();
    let error = archive::read_bytes(Path::new("many.zip"), &zip(&zipped), &limits).unwrap_err();
    assert!(
        matches!(error, ArchiveError::LimitExceeded { .. }),
        "{error:?}"
    );
}

#[test]
fn oversized_source_file_is_skipped_and_reported() {
    let big = vec![b'#'; 4096];
    let limits = Limits {
        max_file_bytes: 1024,
        ..Limits::default()
    };
    let bytes = tar_gz(&[file("o-1/big.py", &big), file("o-1/small.py", b"x\n")]);
    let package = archive::read_bytes(Path::new("o-1.tar.gz"), &bytes, &limits).unwrap();
    assert_eq!(paths(&package), ["small.py"]);
    assert_eq!(
        anomalies(&package),
        [(AnomalyKind::OversizedFile, "o-1/big.py")]
    );

    let zipped = zip(&[("o-1/big.py", &big), ("o-1/small.py", b"x\n")]);
    let package = archive::read_bytes(Path::new("o-1.zip"), &zipped, &limits).unwrap();
    assert_eq!(paths(&package), ["small.py"]);
    assert_eq!(
        anomalies(&package),
        [(AnomalyKind::OversizedFile, "o-1/big.py")]
    );
}

#[test]
fn hostile_metadata_is_sanitised() {
    let bytes = tar_gz(&[file(
        "package/package.json",
        b"{\"name\": \"evil\\u001b[2J\", \"version\": 3}",
    )]);
    let package = read("evil-9.9.9.tgz", &bytes).unwrap();
    assert_eq!(package.name, "evil?[2J");
    assert_eq!(package.version, "9.9.9");
}

#[test]
fn xz_data_is_reported_as_unsupported() {
    let mut bytes = b"\xFD7zXZ\x00".to_vec();
    bytes.extend_from_slice(&noise(100));
    let error = read("x-1.0.tar.gz", &bytes).unwrap_err();
    match &error {
        ArchiveError::Corrupt { reason, .. } => assert!(reason.contains("xz"), "{reason}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn old_style_folder_entries_still_let_the_top_folder_be_stripped() {
    // A v7 tar marks a folder as a regular entry whose name ends in a slash.
    let bytes = tar_gz(&[file("old-1.0/", b""), file("old-1.0/old.py", b"x\n")]);
    let package = read("old-1.0.tar.gz", &bytes).unwrap();
    assert_eq!(paths(&package), ["old.py"]);
}

#[test]
fn open_refuses_a_file_larger_than_the_total_limit_before_reading_it() {
    let folder = tempfile::tempdir().unwrap();
    let path = folder.path().join("huge.tar.gz");
    std::fs::write(&path, vec![0u8; 4096]).unwrap();
    let limits = Limits {
        max_total_bytes: 1024,
        ..Limits::default()
    };
    let error = archive::open(&path, &limits).unwrap_err();
    assert!(
        matches!(
            error,
            ArchiveError::LimitExceeded {
                limit: "archive size",
                ..
            }
        ),
        "{error:?}"
    );
    assert_readable(&error, "huge.tar.gz");
}

#[test]
fn corrupt_reasons_never_carry_control_characters() {
    // An entry name with a terminal escape, in a zip whose entry data is then damaged.
    let mut bytes = zip(&[("e/\x1b[31mred.py", &noise(4096))]);
    let at = bytes.len() / 2;
    bytes[at] ^= 0xff;
    bytes[at + 1] ^= 0xff;
    let error = read("esc.zip", &bytes).unwrap_err();
    let text = error.to_string();
    assert!(text.contains("red.py"), "{text:?}");
    assert!(!text.chars().any(char::is_control), "{text:?}");
}

#[test]
fn repacked_npm_tarball_with_a_nested_package_folder_reads_its_manifest() {
    // A tarball of a folder that holds npm's own `package/` (as some malware collections
    // re-pack samples): the manifest and its install hooks must still be found.
    let bytes = tar_gz(&[
        file(
            "evil-1.0.0/package/package.json",
            br#"{"name":"evil","version":"1.0.0"}"#,
        ),
        file("evil-1.0.0/package/index.js", b"module.exports = 1;\n"),
    ]);
    let pkg = read("evil-1.0.0.tgz", &bytes).unwrap();
    assert_eq!(paths(&pkg), vec!["index.js", "package.json"]);
    assert_eq!(pkg.ecosystem, Ecosystem::Npm);
    assert_eq!(pkg.name, "evil");
}

#[test]
fn a_nested_folder_without_a_manifest_is_not_stripped() {
    let bytes = tar_gz(&[
        file("proj-1.0/src/a.py", b"x = 1\n"),
        file("proj-1.0/src/b.py", b"y = 2\n"),
    ]);
    let pkg = read("proj-1.0.tar.gz", &bytes).unwrap();
    assert_eq!(paths(&pkg), vec!["src/a.py", "src/b.py"]);
}

// ----- readings that differ from pip's and npm's: refused (issue 13) ----------------------

/// One PAX record, `"<len> key=value\n"`, its length counting itself.
fn pax_record(key: &str, value: &str) -> Vec<u8> {
    let body = format!(" {key}={value}\n");
    let mut len = body.len() + 1;
    while format!("{len}{body}").len() != len {
        len += 1;
    }
    format!("{len}{body}").into_bytes()
}

/// A tar of raw members: (type, name in the header, data). Extension members (`x`, `g`,
/// `L`) are written as is, so the fixtures say exactly what a hostile archive would.
fn raw_tar(members: &[(EntryType, &str, Vec<u8>)]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    for (kind, path, data) in members {
        let mut header = raw_header(path, *kind, data.len() as u64);
        header.set_cksum();
        builder.append(&header, data.as_slice()).unwrap();
    }
    builder.into_inner().unwrap()
}

fn assert_ambiguous(name: &str, bytes: &[u8], says: &str) {
    let error = read(name, bytes).unwrap_err();
    assert!(
        matches!(error, ArchiveError::Ambiguous { .. }),
        "{name}: {error:?}"
    );
    assert_readable(&error, name);
    assert!(error.to_string().contains(says), "{error}");
}

#[test]
fn pax_headers_name_members_as_python_reads_them() {
    // A PAX path (written by Python's tarfile and node-tar for long names) names the
    // member, whatever the header's own name; so does a GNU long name.
    let long = format!("p-1.0/{}/mod.py", "d".repeat(120));
    let bytes = gzip(&raw_tar(&[
        (
            EntryType::XHeader,
            "././@PaxHeader",
            pax_record("path", &long),
        ),
        (EntryType::Regular, "short-name.py", b"x = 1\n".to_vec()),
        (
            EntryType::GNULongName,
            "././@LongLink",
            format!("p-1.0/{}/other.py\0", "e".repeat(120)).into_bytes(),
        ),
        (EntryType::Regular, "truncated-name", b"y = 2\n".to_vec()),
        // git archive's global header says only which commit: harmless.
        (
            EntryType::XGlobalHeader,
            "pax_global_header",
            pax_record("comment", "abc123"),
        ),
        (EntryType::Regular, "p-1.0/setup.py", b"z = 3\n".to_vec()),
    ]));
    let pkg = read("p-1.0.tar.gz", &bytes).unwrap();
    let got = paths(&pkg);
    assert!(
        got.contains(&format!("{}/mod.py", "d".repeat(120)).as_str()),
        "{got:?}"
    );
    assert!(
        got.contains(&format!("{}/other.py", "e".repeat(120)).as_str()),
        "{got:?}"
    );
    assert!(got.contains(&"setup.py"), "{got:?}");
}

#[test]
fn a_global_header_that_renames_members_is_refused() {
    let bytes = gzip(&raw_tar(&[
        (
            EntryType::XGlobalHeader,
            "pax_global_header",
            pax_record("path", "p-1.0/setup.py"),
        ),
        (EntryType::Regular, "p-1.0/harmless.py", b"x = 1\n".to_vec()),
    ]));
    assert_ambiguous("p-1.0.tar.gz", &bytes, "global header that sets path");
}

#[test]
fn gnu_sparse_members_are_refused() {
    let bytes = gzip(&raw_tar(&[
        (
            EntryType::XHeader,
            "././@PaxHeader",
            pax_record("GNU.sparse.name", "p-1.0/setup.py"),
        ),
        (
            EntryType::Regular,
            "p-1.0/GNUSparseFile.0/setup.py",
            b"x = 1\n".to_vec(),
        ),
    ]));
    assert_ambiguous("p-1.0.tar.gz", &bytes, "GNU sparse");
}

#[test]
fn a_pax_path_beside_a_gnu_long_name_is_refused() {
    let bytes = gzip(&raw_tar(&[
        (
            EntryType::GNULongName,
            "././@LongLink",
            b"p-1.0/setup.py\0".to_vec(),
        ),
        (
            EntryType::XHeader,
            "././@PaxHeader",
            pax_record("path", "p-1.0/other.py"),
        ),
        (EntryType::Regular, "p-1.0/x.py", b"x = 1\n".to_vec()),
    ]));
    assert_ambiguous("p-1.0.tar.gz", &bytes, "PAX path and by a GNU long name");
}

#[test]
fn a_pax_size_other_than_the_headers_is_refused() {
    let bytes = gzip(&raw_tar(&[
        (
            EntryType::XHeader,
            "././@PaxHeader",
            pax_record("size", "0"),
        ),
        (EntryType::Regular, "p-1.0/setup.py", b"x = 1\n".to_vec()),
    ]));
    assert_ambiguous("p-1.0.tar.gz", &bytes, "PAX size");
}

#[test]
fn a_tar_that_is_also_a_zip_is_refused() {
    // pip tries `zipfile.is_zipfile` first: a zip appended to an sdist is what it unpacks.
    let mut bytes = tar_gz(&[file("p-1.0/setup.py", b"x = 1\n")]);
    bytes.extend(zip(&[("p-1.0/setup.py", b"import os\n")]));
    assert_ambiguous("p-1.0.tar.gz", &bytes, "also a zip");
}

#[test]
fn a_zip_end_signature_by_chance_does_not_make_a_tar_a_zip() {
    // The four bytes of a zip's end record turn up in compressed data about once in 65,000
    // archives; without a central directory where the record puts it, CPython's zipfile
    // cannot open the file, pip unpacks the tar, and so does Cerebro.
    let mut bytes = tar_gz(&[file("p-1.0/setup.py", b"x = 1\n")]);
    let mut record = b"PK\x05\x06".to_vec();
    record.extend([0, 0, 0, 0, 1, 0, 1, 0]); // one entry on this disk, one in all
    record.extend(40u32.to_le_bytes()); // central directory size
    record.extend(0u32.to_le_bytes()); // its offset
    record.extend([0, 0]); // no comment
    bytes.extend(record);
    let pkg = read("p-1.0.tar.gz", &bytes).unwrap();
    assert_eq!(paths(&pkg), vec!["setup.py"]);
}

#[test]
fn a_wheel_that_is_a_tar_is_refused() {
    let bytes = tar_gz(&[file("p/__init__.py", b"x = 1\n")]);
    assert_ambiguous(
        "p-1.0-py3-none-any.whl",
        &bytes,
        "not the archive format its name says",
    );
}

#[test]
fn a_zip_naming_a_file_twice_or_in_two_spellings_is_refused() {
    // Python's zipfile reads a repeated name as its last entry (pip opens entries by name),
    // the `zip` crate as its first.
    // The writer refuses a repeated name: write another, then give it the same bytes.
    let mut twice = zip(&[("p/setup.py", b"x = 1\n"), ("p/setup.pz", b"x = 2\n")]);
    for at in 0..twice.len() - 10 {
        if &twice[at..at + 10] == b"p/setup.pz" {
            twice[at + 9] = b'y';
        }
    }
    assert_ambiguous("p-1.0.zip", &twice, "twice");
    // `p\\a.py` is its own file to pip on Linux; Cerebro reads it as `p/a.py`.
    let spelled = zip(&[("p/a.py", b"x = 1\n"), ("p\\a.py", b"x = 2\n")]);
    assert_ambiguous("p-1.0.zip", &spelled, "two spellings");
}

#[test]
fn a_zip_entry_with_a_unicode_path_field_is_refused() {
    // The `zip` crate names the entry by the field; CPython's zipfile by its header name.
    let name = "p/harmless.py";
    let unicode = "p/__init__.py";
    let mut field = vec![1u8];
    let mut crc = flate2::Crc::new();
    crc.update(name.as_bytes());
    field.extend(crc.sum().to_le_bytes());
    field.extend(unicode.as_bytes());
    let mut writer = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let mut options = zip::write::FullFileOptions::default();
    options.add_extra_field(0x7075, &field, false).unwrap();
    writer.start_file(name, options).unwrap();
    writer.write_all(b"x = 1\n").unwrap();
    let bytes = writer.finish().unwrap().into_inner();
    assert_ambiguous("p-1.0-py3-none-any.whl", &bytes, "Unicode Path");
}
