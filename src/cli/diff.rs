//! `cerebro scan --against OLD NEW`: one release judged, and what it changed since OLD.

use std::io::Write as _;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{bail, Context as _};

use cerebro_scan::detect::{Thresholds, Verdict};
use cerebro_scan::diff::{self, Release};
use cerebro_scan::report;
use cerebro_scan::scan::{self, ScanResult};

use super::{ScanArgs, EXIT_MALICIOUS, EXIT_OK, EXIT_UNREADABLE};

/// Runs the comparison; `args.paths` must name exactly one package, the newer release.
pub fn against(old_path: &std::path::Path, args: &ScanArgs) -> anyhow::Result<ExitCode> {
    let [new_path] = args.paths.as_slice() else {
        bail!(
            "--against compares two releases: give one PATH, the newer release ({} given)",
            args.paths.len()
        );
    };
    if new_path.is_dir() && scan::targets(std::slice::from_ref(new_path)) != [new_path.clone()] {
        bail!(
            "{} is a folder of packages; --against compares one release with another",
            new_path.display()
        );
    }
    let (options, detector) = super::scan_setup(args)?;
    let start = Instant::now();
    let old = match Release::open(old_path, &options) {
        Ok(old) => old,
        Err(error) => {
            // The old release is only the yardstick; the new one is still reported.
            super::print_error(&anyhow::anyhow!("cannot read the older release: {error}"));
            return Ok(ExitCode::from(EXIT_UNREADABLE));
        }
    };
    let new = match Release::open(new_path, &options) {
        Ok(new) => new,
        Err(error) => {
            let result = ScanResult {
                path: new_path.clone(),
                outcome: Err(error),
                elapsed: start.elapsed(),
            };
            print(args, &result, None)?;
            return Ok(ExitCode::from(EXIT_UNREADABLE));
        }
    };
    if old.package.ecosystem != new.package.ecosystem || old.package.name != new.package.name {
        bail!(
            "{} is {} {} and {} is {} {}: --against compares two releases of one package",
            old_path.display(),
            old.package.ecosystem,
            old.package.name,
            new_path.display(),
            new.package.ecosystem,
            new.package.name
        );
    }
    let mut changes = diff::compare(&old, &new);
    let mut result = ScanResult {
        path: new_path.clone(),
        outcome: Ok(new.scanned()),
        elapsed: start.elapsed(),
    };
    if let Some(detector) = &detector {
        let thresholds = Thresholds::of_model(detector);
        scan::judge(&mut result, detector, &thresholds);
        let thresholds = thresholds.get(new.package.ecosystem);
        diff::judge(&mut changes, &old, &new, detector, &thresholds)
            .with_context(|| format!("cannot judge what {} changed", new_path.display()))?;
    }
    print(args, &result, Some(&changes))?;
    let release_malicious = result.outcome.as_ref().is_ok_and(|s| {
        s.judgement
            .as_ref()
            .is_some_and(|j| j.verdict == Verdict::Malicious)
    });
    if !args.quiet {
        let verdict = if detector.is_some() {
            format!(": change judged {}", changes.verdict)
        } else {
            String::new()
        };
        super::status(
            "Compared",
            &format!(
                "{} {} {} with {} in {:.1}s{verdict}",
                changes.ecosystem,
                changes.name,
                changes.to,
                changes.from,
                start.elapsed().as_secs_f64()
            ),
        );
    }
    Ok(ExitCode::from(
        if release_malicious || changes.verdict == Verdict::Malicious {
            EXIT_MALICIOUS
        } else if result.outcome.is_err() {
            EXIT_UNREADABLE
        } else {
            EXIT_OK
        },
    ))
}

fn print(
    args: &ScanArgs,
    result: &ScanResult,
    changes: Option<&diff::Changes>,
) -> anyhow::Result<()> {
    let text = match (args.json, changes) {
        (true, Some(changes)) => report::json_line_with_changes(result, changes) + "\n",
        (true, None) => report::json_line(result) + "\n",
        (false, Some(changes)) => report::human(result) + &report::human_changes(changes),
        (false, None) => report::human(result),
    };
    match anstream::stdout().lock().write_all(text.as_bytes()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            Err(anyhow::Error::new(e).context("cannot write the results"))
        }
        _ => Ok(()),
    }
}
