//! Report: renders scan results for people (text) and for machines (one JSON object a line).
//!
//! Rendering only builds strings; the CLI decides where they go, and the output stream
//! strips colour when it is not a terminal or `NO_COLOR` is set.

use std::fmt::Write as _;

use anstyle::{AnsiColor, Style};
use serde::Serialize;

use crate::detect::{Reason, UnitFinding, Verdict};
use crate::diff::{self, Changes, UnitStatus};
use crate::scan::{ScanResult, Scanned};
use cerebro_archive::{Anomaly, ArchiveKind, Ecosystem};
use cerebro_features::sequence::{Phase, Placed, Token};

/// Events written per package in JSON; `events_total` tells how many there were.
pub const MAX_JSON_EVENTS: usize = 1000;
/// Behaviours listed per package for people.
pub const STRONGEST: usize = 8;
/// Tokens shown per phase for people before the rest is summarised.
const TOKENS_SHOWN: usize = 48;

/// The JSON object written for one package (the schema the README documents).
#[derive(Debug, Serialize)]
pub struct JsonReport<'a> {
    pub path: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ecosystem: Option<Ecosystem>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kind: Option<ArchiveKind>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub files_parsed: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sequence: Option<Vec<Token>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sequence_uncapped_len: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub events: Option<&'a [Placed]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub events_total: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub anomalies: Option<&'a [Anomaly]>,
    /// The detector's probability that the package is malicious; `null` when not scored.
    pub score: Option<f32>,
    /// `malicious`, `suspicious` or `benign`; `null` when not scored.
    pub verdict: Option<Verdict>,
    /// What drove the score (flagged packages only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reasons: Option<&'a [Reason]>,
    /// The package's most malicious unit (one file's behaviour), when the model judges units.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unit: Option<&'a UnitFinding>,
    /// What this release changed since an older one (`cerebro scan --against`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub changes: Option<&'a Changes>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub elapsed_ms: f64,
}

impl<'a> JsonReport<'a> {
    pub fn new(result: &'a ScanResult) -> JsonReport<'a> {
        let elapsed_ms = (result.elapsed.as_secs_f64() * 1e6).round() / 1e3;
        let mut report = JsonReport {
            path: result.path.display().to_string(),
            ecosystem: None,
            name: None,
            version: None,
            kind: None,
            files_parsed: None,
            sequence: None,
            sequence_uncapped_len: None,
            events: None,
            events_total: None,
            anomalies: None,
            score: None,
            verdict: None,
            reasons: None,
            unit: None,
            changes: None,
            error: None,
            elapsed_ms,
        };
        match &result.outcome {
            Ok(scanned) => {
                let events = &scanned.sequence.events;
                report.ecosystem = Some(scanned.identity.ecosystem);
                report.name = Some(&scanned.identity.name);
                report.version = Some(&scanned.identity.version);
                report.kind = Some(scanned.identity.kind);
                report.files_parsed = Some(scanned.files_parsed);
                report.sequence = Some(scanned.sequence.tokens.clone());
                report.sequence_uncapped_len = Some(scanned.sequence.uncapped_len);
                report.events = Some(&events[..events.len().min(MAX_JSON_EVENTS)]);
                report.events_total = Some(events.len());
                report.anomalies = Some(&scanned.anomalies);
                if let Some(j) = &scanned.judgement {
                    report.score = Some((j.score * 1e4).round() / 1e4);
                    report.verdict = Some(j.verdict);
                    report.reasons = (!j.reasons.is_empty()).then_some(&j.reasons[..]);
                    report.unit = j.unit.as_ref();
                }
            }
            Err(error) => report.error = Some(error.to_string()),
        }
        report
    }
}

/// One line of JSON for `result`.
pub fn json_line(result: &ScanResult) -> String {
    // Serialising plain data with string keys cannot fail.
    serde_json::to_string(&JsonReport::new(result)).unwrap_or_default()
}

/// One line of JSON for `result` with what it changed since an older release.
pub fn json_line_with_changes(result: &ScanResult, changes: &Changes) -> String {
    let mut report = JsonReport::new(result);
    report.changes = Some(changes);
    serde_json::to_string(&report).unwrap_or_default()
}

/// Changed files described per release diff, for people.
const CHANGED_SHOWN: usize = 12;

/// The text shown to a person for what a release changed: the verdict on the change and
/// why, then "new in 1.0.1 since 1.0.0:" and each change with `file:line`.
pub fn human_changes(changes: &Changes) -> String {
    let mut out = String::new();
    let style = match changes.verdict {
        Verdict::Malicious => STRONG,
        Verdict::Suspicious => MEDIUM,
        Verdict::Benign => GOOD,
    };
    let judged = if changes.judged { "" } else { " (not scored)" };
    let _ = writeln!(
        out,
        "  {PHASE}{:<8}{PHASE:#} {style}{}{style:#}{judged}",
        "change", changes.verdict
    );
    for reason in &changes.reasons {
        let _ = writeln!(out, "    because {reason}");
    }
    if changes.is_empty() {
        let _ = writeln!(
            out,
            "  no new behaviour in {} since {}",
            changes.to, changes.from
        );
        return out;
    }
    let _ = writeln!(out, "  new in {} since {}:", changes.to, changes.from);
    for hook in &changes.hooks {
        let _ = writeln!(out, "    install hook {}: `{}`", hook.name, hook.command);
    }
    for dep in &changes.dependencies {
        let _ = writeln!(
            out,
            "    dependency {} {} ({})",
            dep.name, dep.spec, dep.field
        );
    }
    for bin in &changes.bins {
        let _ = writeln!(out, "    command {} → {}", bin.name, bin.path);
    }
    // Malicious files first, then the rest in run order.
    let mut units: Vec<_> = changes.units.iter().collect();
    units.sort_by_key(|u| !u.malicious);
    for unit in units.iter().take(CHANGED_SHOWN) {
        let mark = if unit.malicious {
            format!("{STRONG}malicious{STRONG:#} ")
        } else {
            String::new()
        };
        let status = match unit.status {
            UnitStatus::Added => "new file",
            UnitStatus::Changed => "changed",
        };
        let score = unit.score.map_or(String::new(), |s| {
            format!(", added behaviour scores {s:.2}")
        });
        let _ = writeln!(
            out,
            "    {mark}{}  {DIM}({status}{score}){DIM:#}",
            diff::summary(unit, 6)
        );
    }
    if changes.units_total > CHANGED_SHOWN.min(changes.units.len()) {
        let _ = writeln!(
            out,
            "    {DIM}… {} more changed files{DIM:#}",
            changes.units_total - CHANGED_SHOWN.min(changes.units.len())
        );
    }
    for d in changes.destinations.iter().take(CHANGED_SHOWN) {
        let _ = writeln!(
            out,
            "    destination {}  {DIM}{}:{}{DIM:#}",
            shorten_detail(&d.detail),
            d.file,
            d.line
        );
    }
    if !changes.blobs.is_empty() {
        let _ = writeln!(
            out,
            "    {} new encoded, long or obfuscated literal{}, first at {}:{}",
            changes.blobs.len(),
            plural(changes.blobs.len()),
            changes.blobs[0].file,
            changes.blobs[0].line
        );
    }
    out
}

fn shorten_detail(detail: &str) -> String {
    cerebro_features::shorten(detail, 80)
}

const HEADER: Style = Style::new().bold();
const DIM: Style = Style::new().dimmed();
const PHASE: Style = AnsiColor::Cyan.on_default().bold();
const STRONG: Style = AnsiColor::Red.on_default().bold();
const MEDIUM: Style = AnsiColor::Yellow.on_default();
const ERROR: Style = AnsiColor::Red.on_default().bold();
const GOOD: Style = AnsiColor::Green.on_default();

/// The text shown to a person for `result`: identity, the sequence phase by phase, and the
/// strongest behaviours with `file:line`. Carries ANSI styles; the stream strips them.
pub fn human(result: &ScanResult) -> String {
    let mut out = String::new();
    let path = result.path.display();
    let scanned = match &result.outcome {
        Ok(scanned) => scanned,
        Err(error) => {
            let _ = writeln!(out, "{ERROR}error{ERROR:#}: {error}");
            return out;
        }
    };
    let id = &scanned.identity;
    let _ = writeln!(
        out,
        "{HEADER}{} {} {}{HEADER:#}  {DIM}{path}{DIM:#}",
        id.ecosystem, id.name, id.version
    );
    if let Some(j) = &scanned.judgement {
        let style = match j.verdict {
            Verdict::Malicious => STRONG,
            Verdict::Suspicious => MEDIUM,
            Verdict::Benign => GOOD,
        };
        let _ = writeln!(
            out,
            "  {PHASE}{:<8}{PHASE:#} {style}{}{style:#} (score {:.2})",
            "verdict", j.verdict, j.score
        );
        if let Some(unit) = j.unit.as_ref().filter(|u| u.drives) {
            let _ = writeln!(
                out,
                "    in {} (score {:.2} on its own)",
                unit.file, unit.score
            );
        }
        for reason in &j.reasons {
            let location = reason.event.as_ref().map_or(String::new(), |p| {
                if p.event.line > 0 {
                    format!("{}:{}", p.event.file, p.event.line)
                } else {
                    p.event.file.clone()
                }
            });
            let _ = writeln!(
                out,
                "    because {} {:<46} {location}",
                reason.feature.id(),
                reason.feature.name()
            );
        }
    }
    if scanned.sequence.is_empty() {
        let _ = writeln!(
            out,
            "  no behaviour found in {} source file{}",
            scanned.files_parsed,
            plural(scanned.files_parsed)
        );
        return out;
    }
    for (phase, tokens) in phases(&scanned.sequence.tokens) {
        let shown = tokens.len().min(TOKENS_SHOWN);
        let mut line: Vec<String> = tokens[..shown].iter().map(|t| styled(*t)).collect();
        if tokens.len() > shown {
            line.push(format!("{DIM}… {} more{DIM:#}", tokens.len() - shown));
        }
        let _ = writeln!(
            out,
            "  {PHASE}{:<8}{PHASE:#} {}",
            phase.as_str(),
            line.join(" ")
        );
    }
    let strongest = strongest(scanned, STRONGEST);
    if !strongest.is_empty() {
        let _ = writeln!(out, "  strongest behaviours:");
        for placed in strongest {
            let e = &placed.event;
            let style = weight_style(e.feature.weight());
            let location = if e.line > 0 {
                format!("{}:{}", e.file, e.line)
            } else {
                e.file.clone()
            };
            let _ = writeln!(
                out,
                "    {style}{}{style:#} {:<46} {location}  {DIM}{}{DIM:#}",
                e.feature.id(),
                e.feature.name(),
                if e.excerpt.is_empty() {
                    &e.detail
                } else {
                    &e.excerpt
                }
            );
        }
    }
    out
}

/// The tokens of each phase, without the markers (gaps included).
fn phases(tokens: &[Token]) -> Vec<(Phase, Vec<Token>)> {
    let mut out: Vec<(Phase, Vec<Token>)> = Vec::new();
    for token in tokens {
        match token {
            Token::Phase(p) => out.push((*p, Vec::new())),
            t => {
                if let Some((_, list)) = out.last_mut() {
                    list.push(*t);
                }
            }
        }
    }
    out
}

/// The `n` most telling events: highest feature weight first, then run order; one per
/// feature and detail, so a loop does not fill the list.
pub fn strongest(scanned: &Scanned, n: usize) -> Vec<&Placed> {
    let mut events: Vec<(usize, &Placed)> = scanned.sequence.events.iter().enumerate().collect();
    events.sort_by_key(|(i, p)| (std::cmp::Reverse(p.event.feature.weight()), *i));
    let mut seen = std::collections::HashSet::new();
    let mut out = Vec::new();
    for (_, placed) in events {
        if placed.event.feature.weight() == 0 {
            break;
        }
        if seen.insert((placed.event.feature, placed.event.detail.as_str())) {
            out.push(placed);
            if out.len() == n {
                break;
            }
        }
    }
    out
}

fn styled(token: Token) -> String {
    match token {
        Token::Feature(f) | Token::Qualified(f, _) => {
            let style = weight_style(f.weight());
            format!("{style}{}{style:#}", token.as_str())
        }
        other => format!("{DIM}{other}{DIM:#}"),
    }
}

fn weight_style(weight: u8) -> Style {
    match weight {
        3 => STRONG,
        2 => MEDIUM,
        _ => Style::new(),
    }
}

fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}
