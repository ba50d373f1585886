//! The training data: the JSON lines written by `cerebro-dataset sequences`, one package a
//! line, read into [`Example`]s.

use std::io::BufRead;
use std::path::Path;

use serde::Deserialize;

use cerebro_features::sequence::{self, Token};
use cerebro_model::tokenizer;

pub use cerebro_archive::Ecosystem;

/// One package of the dataset.
#[derive(Debug, Clone, PartialEq)]
pub struct Example {
    pub malicious: bool,
    pub ecosystem: Ecosystem,
    /// `pypi-malregistry`, `spiderscan`, `sonatype`, `defcon33`, `top-pypi`, `top-npm`.
    pub source: String,
    pub name: String,
    pub version: String,
    /// Malicious PyPI: the date the sample entered the registry, `YYYY-MM-DD`.
    pub added: Option<String>,
    /// Behaviour token ids, without `[CLS]`/`[SEP]`, at most [`MAX_TOKENS`].
    pub ids: Vec<u32>,
    /// Tokens of the sequence before the length cap.
    pub uncapped_len: usize,
    /// Python and JavaScript files the scan read (when the dataset says).
    pub files_parsed: Option<usize>,
    /// The package's units (one file's behaviour each, `sequence::units`) as token ids, when
    /// the dataset has them: judged on their own so a payload is not drowned by its package.
    pub units: Vec<UnitIds>,
}

/// One unit of an [`Example`].
#[derive(Debug, Clone, PartialEq)]
pub struct UnitIds {
    pub file: String,
    pub ids: Vec<u32>,
}

#[derive(Debug, Deserialize)]
struct UnitLine {
    file: String,
    sequence: Vec<String>,
}

/// Behaviour tokens a sequence keeps (the model reads `[CLS]` + 510 + `[SEP]`).
pub const MAX_TOKENS: usize = sequence::DEFAULT_MAX_TOKENS;

#[derive(Debug, Deserialize)]
struct Line {
    label: String,
    ecosystem: String,
    source: String,
    name: Option<String>,
    version: Option<String>,
    file: Option<String>,
    added: Option<String>,
    sequence: Option<Vec<String>>,
    sequence_uncapped_len: Option<usize>,
    files_parsed: Option<usize>,
    #[serde(default)]
    units: Option<Vec<UnitLine>>,
    error: Option<String>,
}

/// Behaviour token ids of a sequence given as text: capped to [`MAX_TOKENS`] with the scan's
/// own policy, and sorted first when `bag` (the order-free ablation).
pub fn sequence_ids(tokens: &[String], bag: bool) -> Vec<u32> {
    let mut text: Vec<&str> = tokens.iter().map(String::as_str).collect();
    if text.len() > MAX_TOKENS {
        let parsed: Option<Vec<Token>> = text.iter().map(|t| Token::parse(t)).collect();
        text = match parsed {
            Some(p) => sequence::cap(&p, MAX_TOKENS)
                .iter()
                .map(|t| t.as_str())
                .collect(),
            None => text[..MAX_TOKENS].to_vec(),
        };
    }
    if bag {
        text.sort_unstable();
    }
    text.iter().map(|t| tokenizer::token_id(t)).collect()
}

/// Parses one line; `Ok(None)` for a package that could not be scanned.
pub fn parse_line(line: &str, bag: bool) -> Result<Option<Example>, String> {
    let l: Line = serde_json::from_str(line).map_err(|e| e.to_string())?;
    if l.error.is_some() {
        return Ok(None);
    }
    let Some(seq) = l.sequence else {
        return Ok(None);
    };
    let malicious = match l.label.as_str() {
        "malicious" => true,
        "benign" => false,
        other => return Err(format!("unknown label {other:?}")),
    };
    let ecosystem = match l.ecosystem.as_str() {
        "pypi" => Ecosystem::Pypi,
        "npm" => Ecosystem::Npm,
        other => return Err(format!("unknown ecosystem {other:?}")),
    };
    let name = l
        .name
        .filter(|n| !n.trim().is_empty())
        .or_else(|| l.file.clone())
        .unwrap_or_default();
    Ok(Some(Example {
        malicious,
        ecosystem,
        source: l.source,
        name,
        version: l.version.unwrap_or_default(),
        added: l.added,
        uncapped_len: l.sequence_uncapped_len.unwrap_or(seq.len()),
        files_parsed: l.files_parsed,
        ids: sequence_ids(&seq, bag),
        units: l
            .units
            .unwrap_or_default()
            .into_iter()
            .map(|u| UnitIds {
                ids: sequence_ids(&u.sequence, bag),
                file: u.file,
            })
            .collect(),
    }))
}

/// Reads a sequences file. Returns the examples and the number of lines skipped because the
/// package could not be scanned.
pub fn read_jsonl(path: &Path, bag: bool) -> Result<(Vec<Example>, usize), String> {
    let file = std::fs::File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut out = Vec::new();
    let mut skipped = 0;
    for (i, line) in std::io::BufReader::new(file).lines().enumerate() {
        let line = line.map_err(|e| format!("{}: {e}", path.display()))?;
        if line.trim().is_empty() {
            continue;
        }
        match parse_line(&line, bag).map_err(|e| format!("{}:{}: {e}", path.display(), i + 1))? {
            Some(ex) => out.push(ex),
            None => skipped += 1,
        }
    }
    Ok((out, skipped))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_lines_and_skips_errors() {
        let ok = r#"{"label":"malicious","ecosystem":"pypi","source":"pypi-malregistry","name":"evil","version":"1.0","file":"evil-1.0.tar.gz","added":"2024-05-01","rank":null,"sequence":["[INSTALL]","H1","R5"],"error":null}"#;
        let ex = parse_line(ok, false).unwrap().unwrap();
        assert!(ex.malicious);
        assert_eq!(ex.ecosystem, Ecosystem::Pypi);
        assert_eq!(ex.added.as_deref(), Some("2024-05-01"));
        assert_eq!(
            ex.ids,
            vec![
                tokenizer::token_id("[INSTALL]"),
                tokenizer::token_id("H1"),
                tokenizer::token_id("R5")
            ]
        );
        let bag = parse_line(ok, true).unwrap().unwrap();
        let mut sorted = ["[INSTALL]", "H1", "R5"];
        sorted.sort_unstable();
        assert_eq!(
            bag.ids,
            sorted
                .iter()
                .map(|t| tokenizer::token_id(t))
                .collect::<Vec<_>>()
        );
        let err = r#"{"label":"benign","ecosystem":"npm","source":"top-npm","name":"x","sequence":null,"error":"corrupt"}"#;
        assert_eq!(parse_line(err, false).unwrap(), None);
        assert!(parse_line("{", false).is_err());
    }

    #[test]
    fn long_sequences_are_capped() {
        let long: Vec<String> = std::iter::once("[RUN]".to_string())
            .chain((0..2000).map(|i| if i % 50 == 0 { "P3" } else { "R3" }.to_string()))
            .collect();
        let ids = sequence_ids(&long, false);
        assert!(ids.len() <= MAX_TOKENS, "{}", ids.len());
        assert_eq!(ids[0], tokenizer::token_id("[RUN]"));
        assert!(ids.contains(&tokenizer::token_id("[GAP]")));
        assert!(ids.contains(&tokenizer::token_id("P3")));
    }
}
