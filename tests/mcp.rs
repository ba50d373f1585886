//! End-to-end test of `cerebro mcp`: the official MCP Python SDK (`mcp`, from PyPI; the one
//! `.ci/run` installs under `target/mcp-venv`, or `$CEREBRO_TEST_MCP_PYTHON`, a Python that
//! can import it) starts `cerebro mcp` over stdio, lists its tools and calls each, against
//! the registries on loopback. Nothing from the fixtures runs (the marker stays unwritten).

mod support;

use std::path::{Path, PathBuf};

use serde_json::Value;

use support::fixtures::{self, NPM_EVIL, PY_EVIL};
use support::registry::Registry;
use support::{run, Dirs};

/// A Python that imports `mcp`, or `None` (the test is skipped) outside CI.
fn mcp_python() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("CEREBRO_TEST_MCP_PYTHON").filter(|v| !v.is_empty()) {
        return Some(PathBuf::from(p));
    }
    let ci = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/mcp-venv/bin/python");
    if ci.is_file() {
        return Some(ci);
    }
    if support::require_tool("mcp-python (target/mcp-venv)") {
        panic!("no Python with the MCP SDK: set CEREBRO_TEST_MCP_PYTHON or run .ci/run");
    }
    None
}

/// The client: starts the server with this process's environment, lists the tools, calls
/// each call of `CALLS` (a JSON list of [tool, arguments]), prints one JSON object.
const CLIENT: &str = r#"
import asyncio, json, os, sys
from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client

async def main():
    calls = json.loads(os.environ["CALLS"])
    params = StdioServerParameters(command=sys.argv[1], args=["mcp"], env=dict(os.environ))
    out = {"calls": []}
    async with stdio_client(params) as (read, write):
        async with ClientSession(read, write) as session:
            init = await session.initialize()
            out["server"] = init.server_info.name
            tools = await session.list_tools()
            out["tools"] = sorted(t.name for t in tools.tools)
            for tool, args in calls:
                r = await session.call_tool(tool, args)
                text = "".join(c.text for c in r.content if getattr(c, "type", "") == "text")
                out["calls"].append({"error": r.is_error, "structured": r.structured_content,
                                     "text": text})
    print(json.dumps(out))

asyncio.run(main())
"#;

#[test]
fn an_agent_lists_the_tools_and_calls_each() {
    let Some(python) = mcp_python() else {
        return;
    };
    let mut npm = fixtures::npm_clean_tree();
    // `app-js` (clean) depends on `evil-js`: its tree is what npm would install.
    npm.extend(fixtures::npm_app_with_evil());
    let mut pypi = fixtures::py_clean_tree();
    // `app-core` (clean) depends on `evil-pkg`.
    pypi.extend(fixtures::py_app_with_evil());
    let registry = Registry::with(pypi.clone(), npm.clone());
    let mut dirs = Dirs::new("mcp");
    let npmrc = dirs.root().join("npmrc");
    std::fs::write(&npmrc, format!("registry={}\n", registry.npm_url())).unwrap();
    dirs.set_env("npm_config_userconfig", &npmrc);
    dirs.set_env("npm_config_globalconfig", &npmrc);
    dirs.set_env("PIP_CONFIG_FILE", "/dev/null");
    dirs.set_env("PIP_INDEX_URL", registry.pypi_url());
    // pip resolves PyPI trees: the SDK's interpreter has one.
    dirs.set_env("CEREBRO_PYTHON", &python);

    // A package on disk, and a project whose lockfile pins the malicious npm package.
    let evil_wheel = pypi.iter().find(|d| d.name == PY_EVIL.0).unwrap();
    let wheel = dirs.root().join(&evil_wheel.artifact.file);
    std::fs::write(&wheel, &evil_wheel.artifact.bytes).unwrap();
    let project = dirs.root().join("project");
    std::fs::create_dir_all(&project).unwrap();
    let evil = fixtures::npm_evil();
    std::fs::write(
        project.join("yarn.lock"),
        format!(
            "# yarn lockfile v1\n\n{}@^{}:\n  version \"{}\"\n  resolved \"{}{}/-/{}\"\n  integrity {}\n",
            evil.name,
            evil.version,
            evil.version,
            registry.npm_url(),
            evil.name,
            evil.artifact.file,
            evil.integrity()
        ),
    )
    .unwrap();

    let calls = serde_json::json!([
        ["check_package", {"ecosystem": "npm", "name": NPM_EVIL.0}],
        ["check_package", {"ecosystem": "npm", "name": "alpha-js"}],
        ["check_package", {"ecosystem": "pypi", "name": "reqeusts"}],
        ["check_package", {"ecosystem": "pypi", "name": PY_EVIL.0, "version": PY_EVIL.1}],
        ["scan_path", {"path": wheel}],
        ["audit_project", {"path": project}],
        ["scan_path", {"path": dirs.root().join("missing.whl")}],
        ["check_package", {"ecosystem": "npm", "name": "app-js"}],
        ["check_package", {"ecosystem": "pypi", "name": "alpha-lib"}],
        ["check_package", {"ecosystem": "pypi", "name": "app-core"}],
        ["check_package", {"ecosystem": "pypi", "name": "alpha-lib", "version": "9.9.9"}],
    ]);
    let script = dirs.root().join("client.py");
    std::fs::write(&script, CLIENT).unwrap();
    let mut cmd = dirs.command(&python);
    cmd.arg(&script)
        .arg(support::cerebro_bin())
        .env("CALLS", calls.to_string());
    let out = run(cmd);
    assert_eq!(out.code, Some(0), "{out}");
    let answer: Value = serde_json::from_str(out.stdout.trim()).expect("one JSON object");
    assert_eq!(answer["server"], "cerebro");
    assert_eq!(
        answer["tools"],
        serde_json::json!(["audit_project", "check_package", "scan_path"])
    );
    let call = |i: usize| &answer["calls"][i];
    let field = |i: usize, k: &str| call(i)["structured"][k].clone();

    // The malicious package by name: judged from the registry, named, not to be installed.
    assert_eq!(field(0, "verdict"), "malicious", "{}", call(0));
    assert_eq!(field(0, "version"), NPM_EVIL.1);
    assert!(call(0)["text"]
        .as_str()
        .unwrap()
        .starts_with("Do not install"));
    // A clean one, and its whole tree (alpha-js → beta-js → gamma-js, @acme/util).
    assert_eq!(field(1, "verdict"), "benign", "{}", call(1));
    assert_eq!(field(1, "dependencies_judged"), 3, "{}", call(1));
    // A name that does not exist, close to a popular one.
    assert_eq!(field(2, "verdict"), "not-found", "{}", call(2));
    assert_eq!(field(2, "look_alike")["name"], "requests");
    // A PyPI package at a given version.
    assert_eq!(field(3, "verdict"), "malicious", "{}", call(3));
    // An archive on disk, with a reason that names the file and line.
    assert_eq!(field(4, "verdict"), "malicious", "{}", call(4));
    let reason = &field(4, "reasons")[0];
    assert!(
        reason["file"].as_str().is_some_and(|f| f.ends_with(".py")),
        "{}",
        call(4)
    );
    assert!(
        reason["line"].as_u64().is_some_and(|l| l > 0),
        "{}",
        call(4)
    );
    // A project's lockfile.
    assert_eq!(field(5, "verdict"), "malicious", "{}", call(5));
    assert_eq!(field(5, "malicious"), 1);
    // A path that is not there: answered as unjudged, not as clean.
    assert_eq!(field(6, "verdict"), "unjudged", "{}", call(6));
    // A clean package whose dependency is malicious: the tree decides, and names it.
    assert_eq!(field(7, "verdict"), "malicious", "{}", call(7));
    assert_eq!(
        field(7, "flagged_dependencies")[0]["name"],
        NPM_EVIL.0,
        "{}",
        call(7)
    );
    assert!(call(7)["text"].as_str().unwrap().contains(NPM_EVIL.0));
    // PyPI: the tree pip resolves (alpha-lib → beta-lib → gamma-lib 1.0.0, not 0.9.0).
    assert_eq!(field(8, "verdict"), "benign", "{}", call(8));
    assert_eq!(field(8, "dependencies_judged"), 2, "{}", call(8));
    assert!(field(8, "tree_error").is_null(), "{}", call(8));
    // and a clean PyPI package whose dependency is malicious.
    assert_eq!(field(9, "verdict"), "malicious", "{}", call(9));
    assert_eq!(
        field(9, "flagged_dependencies")[0]["name"],
        PY_EVIL.0,
        "{}",
        call(9)
    );
    assert!(call(9)["text"].as_str().unwrap().contains(PY_EVIL.0));
    // A release pip cannot resolve: unjudged, and says so.
    assert_eq!(field(10, "verdict"), "unjudged", "{}", call(10));
    assert!(
        field(10, "tree_error")
            .as_str()
            .is_some_and(|e| e.contains("could not resolve")),
        "{}",
        call(10)
    );
    assert!(!dirs.marker_written(), "no fixture code ran");
}
