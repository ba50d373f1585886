//! `cerebro mcp`: a Model Context Protocol server on stdio, so that a coding agent asks
//! Cerebro before it installs a package (agents install constantly, and can be talked into
//! names that do not exist or were squatted).
//!
//! JSON-RPC 2.0, one message a line (the MCP stdio transport). Tools:
//! - `check_package`: does the name exist, does it look like a popular one, and what the
//!   code of that release and of the tree the installer would add does (fetched from the
//!   configured registry, judged, never run);
//! - `scan_path`: an archive or folder on disk;
//! - `audit_project`: the lockfiles of a folder, as `cerebro audit`.
//!
//! Each answer carries the verdict, the score, the reasons with `file:line`, and a one-line
//! recommendation, as text for the model and as `structuredContent` for the client.

use std::io::{BufRead, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use serde_json::{json, Value};

use cerebro_archive::Ecosystem;
use cerebro_audit::lockfile::PipOptions;
use cerebro_audit::{names, Origin, PackageReport, Pin, Registries, Source, Status};
use cerebro_model::Detector;
use cerebro_scan::detect::{Thresholds, Verdict};
use cerebro_scan::scan::{self, ScanOptions};

use super::audit::{self, AuditArgs, NotAudited};
use super::EXIT_OK;

/// The protocol version answered when the client names none.
const PROTOCOL_VERSION: &str = "2025-06-18";

/// JSON-RPC error codes.
const PARSE_ERROR: i64 = -32700;
const INVALID_REQUEST: i64 = -32600;
const METHOD_NOT_FOUND: i64 = -32601;
const INVALID_PARAMS: i64 = -32602;

/// Most packages of an npm tree `check_package` resolves and judges.
const MAX_TREE: usize = 2_000;

/// Longest request line read (a request is a few hundred bytes; a client gone wrong does not
/// make the server hold gigabytes).
const MAX_LINE: usize = 1 << 20;

/// Serves MCP on stdin/stdout until stdin closes.
pub fn run() -> anyhow::Result<ExitCode> {
    let stdin = std::io::stdin();
    let mut input = stdin.lock();
    let mut out = std::io::stdout().lock();
    let mut server = Server::default();
    let mut line = Vec::new();
    loop {
        line.clear();
        let n = std::io::Read::take(&mut input, MAX_LINE as u64 + 1)
            .read_until(b'\n', &mut line)
            .context("cannot read the client's messages")?;
        if n == 0 {
            return Ok(ExitCode::from(EXIT_OK));
        }
        if line.len() > MAX_LINE {
            // Drop the rest of the oversized line, answer it as unparsable.
            let mut rest = Vec::new();
            input.read_until(b'\n', &mut rest)?;
            write_message(
                &mut out,
                &error(Value::Null, PARSE_ERROR, "message too long"),
            )?;
            continue;
        }
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let reply = match serde_json::from_slice::<Value>(&line) {
            Ok(Value::Array(batch)) => {
                let replies: Vec<Value> = batch.iter().filter_map(|m| server.handle(m)).collect();
                (!replies.is_empty()).then_some(Value::Array(replies))
            }
            Ok(message) => server.handle(&message),
            Err(e) => Some(error(
                Value::Null,
                PARSE_ERROR,
                &format!("parse error: {e}"),
            )),
        };
        if let Some(reply) = reply {
            write_message(&mut out, &reply)?;
        }
    }
}

fn write_message(out: &mut impl Write, message: &Value) -> anyhow::Result<()> {
    serde_json::to_writer(&mut *out, message)?;
    out.write_all(b"\n")?;
    out.flush()?;
    Ok(())
}

fn error(id: Value, code: i64, message: &str) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "error": {"code": code, "message": message}})
}

fn result(id: Value, result: Value) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "result": result})
}

/// The server's state: the detector, loaded on first use.
#[derive(Default)]
struct Server {
    detector: Option<Detector>,
}

impl Server {
    /// The reply to one message; `None` for a notification.
    fn handle(&mut self, message: &Value) -> Option<Value> {
        let id = message.get("id").cloned();
        let Some(method) = message.get("method").and_then(Value::as_str) else {
            // A response from the client (we send no requests) or garbage.
            return id.map(|id| error(id, INVALID_REQUEST, "not a request"));
        };
        let id = id?; // a notification: `notifications/initialized`, cancellations
        let params = message.get("params").cloned().unwrap_or(Value::Null);
        Some(match method {
            "initialize" => {
                let version = params
                    .get("protocolVersion")
                    .and_then(Value::as_str)
                    .unwrap_or(PROTOCOL_VERSION);
                result(
                    id,
                    json!({
                        "protocolVersion": version,
                        "capabilities": {"tools": {"listChanged": false}},
                        "serverInfo": {"name": "cerebro", "version": env!("CARGO_PKG_VERSION")},
                        "instructions": "Before installing a package (pip, uv, npm, pnpm, yarn, \
                            bun, npx), call check_package with its ecosystem and name. Do not \
                            install a package whose verdict is malicious or not-found, or whose \
                            name looks like a popular one, without asking the user."
                    }),
                )
            }
            "ping" => result(id, json!({})),
            "tools/list" => result(id, json!({"tools": tools()})),
            "tools/call" => {
                let name = params.get("name").and_then(Value::as_str).unwrap_or("");
                let args = params.get("arguments").cloned().unwrap_or(json!({}));
                match self.call(name, &args) {
                    Ok(answer) => result(id, answer.into_result(false)),
                    Err(ToolError::Params(m)) => error(id, INVALID_PARAMS, &m),
                    Err(ToolError::Failed(m)) => result(
                        id,
                        json!({"content": [{"type": "text", "text": m}], "isError": true}),
                    ),
                }
            }
            other => error(id, METHOD_NOT_FOUND, &format!("unknown method {other}")),
        })
    }

    fn detector(&mut self) -> Result<&Detector, ToolError> {
        if self.detector.is_none() {
            self.detector = Some(
                Detector::embedded()
                    .map_err(|e| ToolError::Failed(format!("cannot load the model: {e}")))?,
            );
        }
        Ok(self.detector.as_ref().expect("set above"))
    }

    fn call(&mut self, tool: &str, args: &Value) -> Result<Answer, ToolError> {
        match tool {
            "check_package" => self.check_package(args),
            "scan_path" => self.scan_path(args),
            "audit_project" => audit_project(args),
            other => Err(ToolError::Params(format!("unknown tool {other}"))),
        }
    }

    fn scan_path(&mut self, args: &Value) -> Result<Answer, ToolError> {
        let path = PathBuf::from(required(args, "path")?);
        let detector = self.detector()?;
        let thresholds = Thresholds::of_model(detector);
        let mut result = scan::scan_path(&path, &ScanOptions::default());
        scan::judge(&mut result, detector, &thresholds);
        let scanned = match result.outcome {
            Ok(s) => s,
            Err(e) => {
                return Ok(Answer::new(
                    json!({"path": path, "verdict": "unjudged", "error": e.to_string()}),
                    format!(
                        "Cerebro could not read {}: {e}. Treat it as untrusted.",
                        path.display()
                    ),
                ))
            }
        };
        let (verdict, score, reasons) = match &scanned.judgement {
            Some(j) if scanned.unjudgeable.is_empty() => (
                j.verdict.to_string(),
                Some(j.score),
                j.reasons
                    .iter()
                    .map(|r| {
                        json!({
                            "feature": r.feature.id(),
                            "description": r.feature.name(),
                            "file": r.event.as_ref().map(|p| p.event.file.clone()),
                            "line": r.event.as_ref().map_or(0, |p| p.event.line),
                        })
                    })
                    .collect::<Vec<_>>(),
            ),
            _ => ("unjudged".to_owned(), None, Vec::new()),
        };
        let what = format!(
            "{} {} {}",
            scanned.identity.ecosystem, scanned.identity.name, scanned.identity.version
        );
        let recommendation = recommend(&verdict, &what, reasons.first());
        Ok(Answer::new(
            json!({
                "path": path,
                "ecosystem": scanned.identity.ecosystem,
                "name": scanned.identity.name,
                "version": scanned.identity.version,
                "verdict": verdict,
                "score": score,
                "reasons": reasons,
                "unjudgeable": scanned.unjudgeable,
                "recommendation": recommendation,
            }),
            recommendation.clone(),
        ))
    }

    fn check_package(&mut self, args: &Value) -> Result<Answer, ToolError> {
        let ecosystem = match required(args, "ecosystem")?.to_ascii_lowercase().as_str() {
            "pypi" | "python" | "pip" => Ecosystem::Pypi,
            "npm" | "javascript" | "node" => Ecosystem::Npm,
            other => {
                return Err(ToolError::Params(format!(
                    "ecosystem {other:?} is not `pypi` or `npm`"
                )))
            }
        };
        let name = required(args, "name")?.trim().to_owned();
        let version = args
            .get("version")
            .and_then(Value::as_str)
            .filter(|v| !v.is_empty())
            .map(str::to_owned);
        let registry = args.get("registry").and_then(Value::as_str);
        let look_alike = names::look_alike(ecosystem, &name);
        let popular = names::is_popular(ecosystem, &name);

        let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
        let env = cerebro_guard::manager::process_env;
        let pip = PipOptions {
            index_url: (ecosystem == Ecosystem::Pypi)
                .then(|| registry.map(str::to_owned))
                .flatten(),
            extra_index_urls: Vec::new(),
        };
        let npm_registry = registry.filter(|_| ecosystem == Ecosystem::Npm);
        let (registries, ca) =
            Registries::configured(&cwd, npm_registry, &pip, &env).map_err(ToolError::Failed)?;
        let resolver =
            audit::resolver(registries, ca).map_err(|e| ToolError::Failed(e.to_string()))?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| ToolError::Failed(format!("cannot start the runtime: {e}")))?;
        let latest = runtime
            .block_on(resolver.latest(ecosystem, &name))
            .map_err(ToolError::Failed)?;
        let alike = look_alike
            .as_ref()
            .map(|l| json!({"name": l.name, "rank": l.rank}));
        let Some(latest) = latest else {
            let mut text = format!(
                "{ecosystem} package {name} does not exist on the configured registry: an \
                 invented or mistyped name. Do not install it."
            );
            if let Some(l) = &look_alike {
                text.push_str(&format!(" Did you mean {}?", l.name));
            }
            return Ok(Answer::new(
                json!({"ecosystem": ecosystem, "name": name, "exists": false,
                       "verdict": "not-found", "look_alike": alike, "recommendation": text}),
                text,
            ));
        };
        let version = version.unwrap_or(latest);
        // The whole tree the installer would resolve, the package first. npm: from the
        // registry's metadata, ranges picked as npm picks them. PyPI: by pip itself (its
        // resolution depends on the interpreter and on metadata only a build can give),
        // through the guard index, so that each artifact pip chose is pinned by its hash.
        let (tree, tree_error) = match ecosystem {
            Ecosystem::Npm => {
                match runtime.block_on(resolver.npm_tree(&name, &version, MAX_TREE)) {
                    Ok(tree) => (tree.into_iter().map(|(n, v)| (n, v, None)).collect(), None),
                    Err(e) => (vec![(name.clone(), version.clone(), None)], Some(e)),
                }
            }
            Ecosystem::Pypi => {
                drop(runtime);
                pip_tree(&name, &version, registry, &cwd)
            }
        };
        let pins: Vec<Pin> = tree
            .iter()
            .map(|(n, v, sha256): &(String, String, Option<String>)| Pin {
                ecosystem,
                name: n.clone(),
                version: v.clone(),
                source: Source {
                    file: PathBuf::from("(check_package)"),
                    line: 0,
                },
                origin: match ecosystem {
                    Ecosystem::Npm => Origin::Npm {
                        resolved: None,
                        integrity: None,
                    },
                    Ecosystem::Pypi => Origin::Pypi {
                        hashes: sha256.iter().map(|h| format!("sha256:{h}")).collect(),
                        indexes: None,
                    },
                },
            })
            .collect();
        let detector = Detector::embedded()
            .map_err(|e| ToolError::Failed(format!("cannot load the model: {e}")))?;
        let judge = cerebro_audit::Judge::new(detector, cerebro_audit::Judge::default_cache_root());
        let mut reports =
            cerebro_audit::audit(&pins, resolver, &judge, scan::default_jobs(), &Silent);
        if reports.is_empty() {
            return Err(ToolError::Failed("internal error: no report".to_owned()));
        }
        let report = reports.remove(0);
        let worst_dep = reports.iter().map(|r| r.status).max();
        let mut status = report.status.max(worst_dep.unwrap_or(Status::Benign));
        if tree_error.is_some() {
            status = status.max(Status::Unjudged);
        }
        let verdict = status_word(status);
        let flagged_deps: Vec<&PackageReport> = reports
            .iter()
            .filter(|r| r.status != Status::Benign)
            .collect();
        let first =
            first_reason(&report).or_else(|| flagged_deps.first().and_then(|r| first_reason(r)));
        let what = format!("{ecosystem} {name} {version}");
        let mut text = recommend(verdict, &what, first.as_ref());
        let bad_deps: Vec<String> = flagged_deps
            .iter()
            .map(|r| format!("{}@{} ({})", r.name, r.version, status_word(r.status)))
            .collect();
        if !bad_deps.is_empty() {
            text.push_str(&format!(" In its dependencies: {}.", bad_deps.join(", ")));
        }
        if let Some(e) = &tree_error {
            text.push_str(&format!(" Its dependency tree could not be resolved: {e}."));
        }
        if let Some(l) = &look_alike {
            text.push_str(&format!(
                " Its name looks like the popular {} (rank {}): make sure {name} is the \
                 package meant before installing it.",
                l.name, l.rank
            ));
        }
        Ok(Answer::new(
            json!({
                "ecosystem": ecosystem,
                "name": name,
                "version": version,
                "exists": true,
                "popular": popular,
                "look_alike": alike,
                "verdict": verdict,
                "score": report.score,
                "files": report.files,
                "dependencies_judged": reports.len(),
                "flagged_dependencies": flagged_deps,
                "tree_error": tree_error,
                "recommendation": text,
            }),
            text,
        ))
    }
}

/// The packages `pip install NAME==VERSION` would install here, the package first, each with
/// the sha256 of the file pip chose ([`cerebro_guard::guard::check_pip`]: pip resolves
/// through the guard index, which judges each source distribution before pip may build it).
/// Where pip cannot resolve it (no pip on `PATH`, a conflict, a release a source
/// distribution refused), the package alone and why.
fn pip_tree(
    name: &str,
    version: &str,
    index_url: Option<&str>,
    cwd: &std::path::Path,
) -> (Vec<TreeEntry>, Option<String>) {
    let alone = || vec![(name.to_owned(), version.to_owned(), None)];
    let requirement = format!("{name}=={version}");
    let report = match cerebro_guard::guard::check_pip(
        &requirement,
        index_url,
        cwd,
        std::sync::Arc::new(cerebro_guard::guard::Silent),
    ) {
        Ok(report) => report,
        Err(e) => return (alone(), Some(format!("pip could not resolve it: {e}"))),
    };
    let wanted = cerebro_guard::index::normalize_pypi_name(name);
    let mut tree: Vec<TreeEntry> = report
        .packages
        .iter()
        .map(|p| (p.name.clone(), p.version.clone(), Some(p.sha256.clone())))
        .collect();
    // The package first (its own report leads the answer).
    tree.sort_by_key(|(n, _, _)| cerebro_guard::index::normalize_pypi_name(n) != wanted);
    let error = match (&report.error, tree.is_empty()) {
        (Some(e), _) => Some(format!("pip could not resolve it: {e}")),
        (None, true) => Some("pip could not resolve it here".to_owned()),
        (None, false) => None,
    };
    if tree.is_empty() {
        tree = alone();
    }
    (tree, error)
}

/// One package of a tree: name, version, and the sha256 of the file the installer chose
/// when known.
type TreeEntry = (String, String, Option<String>);

fn audit_project(args: &Value) -> Result<Answer, ToolError> {
    let path = PathBuf::from(required(args, "path")?);
    let audit_args = AuditArgs {
        paths: vec![path.clone()],
        json: true,
        sarif: false,
        registry: None,
        index_url: None,
        extra_index_url: Vec::new(),
        changed_since: None,
        jobs: None,
        quiet: true,
    };
    let audited = match audit::collect(&audit_args, &Silent) {
        Ok(a) => a,
        Err(NotAudited::Usage(m)) => return Err(ToolError::Failed(m)),
        Err(NotAudited::Failed(e)) => return Err(ToolError::Failed(format!("{e:#}"))),
    };
    let count = |s: Status| audited.reports.iter().filter(|r| r.counts_as(s)).count();
    let (malicious, suspicious, unjudged) = (
        count(Status::Malicious),
        count(Status::Suspicious),
        count(Status::Unjudged) + audited.unreadable.len(),
    );
    let flagged: Vec<&PackageReport> = audited
        .reports
        .iter()
        .filter(|r| r.status != Status::Benign)
        .collect();
    let verdict = if malicious > 0 {
        "malicious"
    } else if unjudged > 0 {
        "unjudged"
    } else if suspicious > 0 {
        "suspicious"
    } else {
        "benign"
    };
    let names: Vec<String> = flagged
        .iter()
        .filter(|r| r.counts_as(Status::Malicious))
        .map(|r| {
            format!(
                "{} {} ({}:{})",
                r.name,
                r.version,
                r.source.file.display(),
                r.source.line
            )
        })
        .collect();
    let text = match verdict {
        "malicious" => format!(
            "Do not install this project's dependencies: {malicious} pinned package(s) judged \
             malicious: {}.",
            names.join(", ")
        ),
        "unjudged" => format!(
            "{unjudged} pinned package(s) could not be judged (see `flagged`); treat them as \
             untrusted. None was judged malicious."
        ),
        "suspicious" => format!(
            "{suspicious} pinned package(s) look suspicious: review them before installing."
        ),
        _ => format!(
            "All {} pinned packages were judged; none looks malicious.",
            audited.reports.len()
        ),
    };
    let unreadable: Vec<String> = audited.unreadable.iter().map(|e| e.to_string()).collect();
    Ok(Answer::new(
        json!({
            "path": path,
            "verdict": verdict,
            "lockfiles": audited.lockfiles.iter().map(|l| l.path.display().to_string()).collect::<Vec<_>>(),
            "packages": audited.reports.len(),
            "malicious": malicious,
            "suspicious": suspicious,
            "unjudged": unjudged,
            "flagged": flagged,
            "unreadable": unreadable,
            "recommendation": text,
        }),
        text,
    ))
}

/// A tool's answer: structured, and as text (the recommendation, then the JSON).
struct Answer {
    structured: Value,
    text: String,
}

impl Answer {
    fn new(structured: Value, recommendation: String) -> Answer {
        let text = format!(
            "{recommendation}\n\n{}",
            serde_json::to_string_pretty(&structured).unwrap_or_default()
        );
        Answer { structured, text }
    }

    fn into_result(self, is_error: bool) -> Value {
        json!({
            "content": [{"type": "text", "text": self.text}],
            "structuredContent": self.structured,
            "isError": is_error,
        })
    }
}

enum ToolError {
    /// The arguments are wrong (a JSON-RPC error).
    Params(String),
    /// The tool ran and failed (a result with `isError`).
    Failed(String),
}

fn required<'a>(args: &'a Value, key: &str) -> Result<&'a str, ToolError> {
    args.get(key)
        .and_then(Value::as_str)
        .filter(|s| !s.trim().is_empty())
        .ok_or_else(|| ToolError::Params(format!("missing string argument `{key}`")))
}

fn status_word(status: Status) -> &'static str {
    match status {
        Status::Malicious => "malicious",
        Status::Suspicious => "suspicious",
        Status::Benign => "benign",
        Status::Unjudged => "unjudged",
    }
}

/// The first reason of a report's flagged files, as `scan_path` gives reasons.
fn first_reason(report: &PackageReport) -> Option<Value> {
    report.files.iter().find_map(|f| match &f.outcome {
        cerebro_audit::Outcome::Judged { reasons, .. } => reasons.first().map(|r| {
            json!({"feature": r.feature, "description": r.description,
                   "file": r.file, "line": r.line})
        }),
        cerebro_audit::Outcome::Unjudged { .. } => None,
    })
}

/// One line for the agent: what to do, and the strongest reason with its place.
fn recommend(verdict: &str, what: &str, reason: Option<&Value>) -> String {
    let why = reason
        .map(|r| {
            let file = r.get("file").and_then(Value::as_str).unwrap_or("");
            let line = r.get("line").and_then(Value::as_u64).unwrap_or(0);
            let desc = r.get("description").and_then(Value::as_str).unwrap_or("");
            if file.is_empty() {
                format!(" ({desc})")
            } else {
                format!(" ({desc} at {file}:{line})")
            }
        })
        .unwrap_or_default();
    match verdict {
        v if v == Verdict::Malicious.to_string() => {
            format!("Do not install {what}: Cerebro judged its code malicious{why}.")
        }
        v if v == Verdict::Suspicious.to_string() => {
            format!("Review {what} before installing it: its code looks suspicious{why}.")
        }
        v if v == Verdict::Benign.to_string() => {
            format!("{what}: no malicious behaviour found in its code.")
        }
        _ => format!(
            "Cerebro could not judge {what} (see the files): treat it as untrusted and ask \
             the user before installing it."
        ),
    }
}

/// Progress nobody sees: stdout is the protocol's.
struct Silent;

impl cerebro_audit::Progress for Silent {
    fn phase(&self, _: &str, _: usize) {}
    fn advance(&self) {}
}

/// The tools, with their input schemas.
fn tools() -> Value {
    json!([
        {
            "name": "check_package",
            "title": "Check a package before installing it",
            "description": "Before installing a PyPI or npm package, ask Cerebro: whether the \
                name exists on the configured registry, whether it looks like a squat of a \
                popular package, and what the code of that release and of its dependency \
                tree does (fetched and judged by Cerebro's model, never run). Returns a verdict (benign, suspicious, \
                malicious, unjudged, not-found), a score, reasons with file:line, and a \
                one-line recommendation.",
            "inputSchema": {
                "type": "object",
                "properties": {
                    "ecosystem": {"type": "string", "enum": ["pypi", "npm"]},
                    "name": {"type": "string", "description": "The package name as it would be installed."},
                    "version": {"type": "string", "description": "A version; default: the newest release."},
                    "registry": {"type": "string", "description": "Registry or index URL; default: the user's npm or pip configuration."}
                },
                "required": ["ecosystem", "name"]
            }
        },
        {
            "name": "scan_path",
            "title": "Judge a package archive or folder",
            "description": "Judge a package on disk (a wheel, sdist, npm tarball, or a \
                package folder) by what its code would do, without running it.",
            "inputSchema": {
                "type": "object",
                "properties": {"path": {"type": "string", "description": "Archive or folder."}},
                "required": ["path"]
            }
        },
        {
            "name": "audit_project",
            "title": "Audit what a project pins",
            "description": "Judge every package the lockfiles under a folder pin \
                (package-lock.json, pnpm-lock.yaml, yarn.lock, bun.lock, requirements*.txt, \
                uv.lock, poetry.lock, pylock.toml), as `cerebro audit` does.",
            "inputSchema": {
                "type": "object",
                "properties": {"path": {"type": "string", "description": "Project folder or lockfile."}},
                "required": ["path"]
            }
        }
    ])
}
