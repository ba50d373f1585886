//! SARIF 2.1.0: the audit as a static-analysis log that code-scanning services (GitHub,
//! GitLab, Azure DevOps) show on a pull request. One rule per verdict kind; one result per
//! flagged or unjudged package, located at the lockfile line that pins it, with the
//! behaviours behind the verdict as related locations inside the package (`pkg:` URLs with
//! the file as their subpath).

use std::path::Path;

use serde_json::{json, Value};

use crate::{LockfileError, Outcome, PackageReport, Status};
use cerebro_archive::Ecosystem;

/// The schema the log names.
pub const SCHEMA: &str = "https://json.schemastore.org/sarif-2.1.0.json";

/// The rules, in `ruleIndex` order: (id, name, short, full, level).
const RULES: [(&str, &str, &str, &str, &str, Status); 3] = [
    (
        "cerebro/malicious",
        "MaliciousPackage",
        "A pinned package was judged malicious",
        "Cerebro read the code of a package this lockfile pins and judged its behaviour \
         malicious (for example reading credentials and sending them out at install time). \
         Remove the package or pin a version that is not, and treat any machine that \
         installed it as exposed.",
        "error",
        Status::Malicious,
    ),
    (
        "cerebro/suspicious",
        "SuspiciousPackage",
        "A pinned package was judged suspicious",
        "Cerebro read the code of a package this lockfile pins and found behaviour close to \
         that of malware, not enough to call it malicious. Review the behaviours listed.",
        "warning",
        Status::Suspicious,
    ),
    (
        "cerebro/unjudged",
        "UnjudgedPackage",
        "A pinned package could not be judged",
        "Cerebro could not fetch, verify or read a package this lockfile pins (a hash \
         mismatch, a download failure, a range instead of a pin, a git dependency). What \
         cannot be judged is not known to be safe.",
        "warning",
        Status::Unjudged,
    ),
];

/// The SARIF log of an audit: a result per package that is not benign, and one per lockfile
/// that could not be read. `base` is the folder lockfile paths are made relative to (the
/// working folder: the repository root in CI).
pub fn log(reports: &[PackageReport], unreadable: &[LockfileError], base: &Path) -> Value {
    let rules: Vec<Value> = RULES
        .iter()
        .map(|(id, name, short, full, level, _)| {
            json!({
                "id": id,
                "name": name,
                "shortDescription": {"text": short},
                "fullDescription": {"text": full},
                "help": {"text": full},
                "defaultConfiguration": {"level": level},
                "properties": {"tags": ["security", "supply-chain"]},
            })
        })
        .collect();
    let results: Vec<Value> = reports
        .iter()
        .filter(|r| !r.allowlisted)
        .filter_map(|r| result(r, base))
        .chain(unreadable.iter().map(|e| unreadable_result(e, base)))
        .collect();
    let mut run = json!({
        "tool": {"driver": {
            "name": "cerebro",
            "version": env!("CARGO_PKG_VERSION"),
            "semanticVersion": env!("CARGO_PKG_VERSION"),
            "rules": rules,
        }},
        "results": results,
        "columnKind": "unicodeCodePoints",
    });
    if let Ok(url) = cerebro_fetch::Url::from_directory_path(base) {
        run["originalUriBaseIds"] = json!({"SRCROOT": {"uri": url.as_str()}});
    }
    json!({
        "$schema": SCHEMA,
        "version": "2.1.0",
        "runs": [run],
    })
}

fn result(report: &PackageReport, base: &Path) -> Option<Value> {
    let index = RULES.iter().position(|r| r.5 == report.status)?;
    let (rule, level) = (RULES[index].0, RULES[index].4);
    let worst = report.worst_file()?;
    let message = match &worst.outcome {
        Outcome::Judged {
            score,
            verdict,
            reasons,
        } => {
            let mut text = format!(
                "{} {} ({}) was judged {verdict} (score {score:.2})",
                report.name, report.version, worst.file
            );
            if !reasons.is_empty() {
                let listed: Vec<String> = reasons
                    .iter()
                    .map(|f| match &f.file {
                        Some(file) if f.line > 0 => {
                            format!("{} ({}) at {file}:{}", f.description, f.feature, f.line)
                        }
                        Some(file) => format!("{} ({}) in {file}", f.description, f.feature),
                        None => format!("{} ({})", f.description, f.feature),
                    })
                    .collect();
                text.push_str(&format!(": {}", listed.join("; ")));
            }
            text.push('.');
            text
        }
        Outcome::Unjudged { error } => format!(
            "{} {} could not be judged: {error}",
            report.name, report.version
        ),
    };
    let mut location = json!({"physicalLocation": {"artifactLocation": artifact_location(&report.source.file, base)}});
    if report.source.line > 0 {
        location["physicalLocation"]["region"] = json!({"startLine": report.source.line});
    }
    let related: Vec<Value> = match &worst.outcome {
        Outcome::Judged { reasons, .. } => reasons
            .iter()
            .filter_map(|f| f.file.as_ref().map(|file| (f, file)))
            .enumerate()
            .map(|(i, (f, file))| {
                let mut loc = json!({
                    "id": i,
                    "physicalLocation": {"artifactLocation": {
                        "uri": package_url(report.ecosystem, &report.name, &report.version, Some(file)),
                    }},
                    "message": {"text": format!("{} ({}) in {}", f.description, f.feature, worst.file)},
                });
                if f.line > 0 {
                    loc["physicalLocation"]["region"] = json!({"startLine": f.line});
                }
                loc
            })
            .collect(),
        Outcome::Unjudged { .. } => Vec::new(),
    };
    let mut properties = json!({
        "ecosystem": report.ecosystem.to_string(),
        "package": report.name,
        "version": report.version,
        "file": worst.file,
    });
    if let Some(score) = report.score {
        properties["score"] = json!(score);
    }
    if let Some(sha) = &worst.sha256 {
        properties["sha256"] = json!(sha);
    }
    let mut out = json!({
        "ruleId": rule,
        "ruleIndex": index,
        "level": level,
        "message": {"text": message},
        "locations": [location],
        "partialFingerprints": {
            "cerebroPackage/v1": package_url(report.ecosystem, &report.name, &report.version, None),
        },
        "properties": properties,
    });
    if !related.is_empty() {
        out["relatedLocations"] = Value::Array(related);
    }
    Some(out)
}

/// A lockfile that could not be read, at the fault when it has a place.
fn unreadable_result(error: &LockfileError, base: &Path) -> Value {
    let index = RULES
        .iter()
        .position(|r| r.5 == Status::Unjudged)
        .unwrap_or(0);
    let mut location =
        json!({"physicalLocation": {"artifactLocation": artifact_location(&error.file, base)}});
    if let Some(line) = error.line.filter(|l| *l > 0) {
        location["physicalLocation"]["region"] = json!({"startLine": line});
    }
    json!({
        "ruleId": RULES[index].0,
        "ruleIndex": index,
        "level": RULES[index].4,
        "message": {"text": format!("The lockfile could not be read: {}.", error.message)},
        "locations": [location],
    })
}

/// `pkg:npm/%40scope/name@1.0.0#lib/index.js`: a package URL (purl), with a file inside it as
/// its subpath.
pub fn package_url(ecosystem: Ecosystem, name: &str, version: &str, file: Option<&str>) -> String {
    let kind = match ecosystem {
        Ecosystem::Npm => "npm",
        Ecosystem::Pypi => "pypi",
    };
    let name = match ecosystem {
        Ecosystem::Npm => match name.strip_prefix('@').and_then(|n| n.split_once('/')) {
            Some((scope, rest)) => format!("%40{}/{}", encode(scope), encode(rest)),
            None => encode(name),
        },
        Ecosystem::Pypi => encode(&cerebro_guard::index::normalize_pypi_name(name)),
    };
    let mut out = format!("pkg:{kind}/{name}");
    if !version.is_empty() {
        out.push('@');
        out.push_str(&encode(version));
    }
    if let Some(file) = file {
        out.push('#');
        let parts: Vec<String> = file.split('/').map(encode).collect();
        out.push_str(&parts.join("/"));
    }
    out
}

/// The lockfile as a SARIF artifact location: relative to `base` under `SRCROOT` when it is
/// inside, else an absolute `file:` URL.
fn artifact_location(file: &Path, base: &Path) -> Value {
    let absolute: std::path::PathBuf = std::path::absolute(file)
        .unwrap_or_else(|_| file.to_owned())
        .components()
        .filter(|c| !matches!(c, std::path::Component::CurDir))
        .collect();
    match absolute.strip_prefix(base) {
        Ok(relative) => {
            let parts: Vec<String> = relative
                .components()
                .map(|c| encode(&c.as_os_str().to_string_lossy()))
                .collect();
            json!({"uri": parts.join("/"), "uriBaseId": "SRCROOT"})
        }
        Err(_) => match cerebro_fetch::Url::from_file_path(&absolute) {
            Ok(url) => json!({"uri": url.as_str()}),
            Err(()) => json!({"uri": encode(&absolute.display().to_string())}),
        },
    }
}

/// Percent-encodes everything but RFC 3986's unreserved characters.
fn encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn package_urls_are_purls() {
        assert_eq!(
            package_url(Ecosystem::Npm, "@s/x", "1.0.0", Some("lib/a b.js")),
            "pkg:npm/%40s/x@1.0.0#lib/a%20b.js"
        );
        assert_eq!(
            package_url(Ecosystem::Pypi, "Evil_Pkg", "0.3.1", None),
            "pkg:pypi/evil-pkg@0.3.1"
        );
    }

    #[test]
    fn lockfiles_are_located_under_the_source_root() {
        let base = std::path::absolute(Path::new("/repo")).unwrap();
        assert_eq!(
            artifact_location(Path::new("/repo/web app/package-lock.json"), &base),
            json!({"uri": "web%20app/package-lock.json", "uriBaseId": "SRCROOT"})
        );
        assert_eq!(
            artifact_location(Path::new("/elsewhere/uv.lock"), &base),
            json!({"uri": "file:///elsewhere/uv.lock"})
        );
    }
}
