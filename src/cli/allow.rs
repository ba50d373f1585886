//! `cerebro allow` and `cerebro allowlist`: the user's allowlist, edited from the terminal.

use std::io::Write as _;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::Args;

use super::status;
use cerebro_archive::Ecosystem;
use cerebro_guard::policy::{Allowlist, Entry};

const ALLOW_AFTER_HELP: &str = "\
ECOSYSTEM is pypi (or pip) or npm. PACKAGE is a name, which allows every version, or
name@version (PyPI also takes name==version), which allows that version only. PyPI names
compare the way pip compares them (Foo_Bar is foo-bar); npm scoped names are @scope/name.
Allowed packages are installed whatever their verdict.

Examples:
  cerebro allow pypi requests
  cerebro allow pypi internal-tool==2.1.0
  cerebro allow npm left-pad@1.3.0 @myorg/build-scripts

The allowlist is allowlist.toml in the config folder ($CEREBRO_CONFIG_DIR, else
~/.config/cerebro on Linux); `cerebro allowlist` lists it, `cerebro allowlist --path` prints
where it is.";

const ALLOWLIST_AFTER_HELP: &str = "\
Without options, lists the allowed packages by ecosystem. Add packages with `cerebro allow`,
or by answering \"Always allow\" at the install prompt.

Examples:
  cerebro allowlist
  cerebro allowlist --json
  cerebro allowlist --remove pypi requests
  cerebro allowlist --remove npm left-pad@1.3.0
  cerebro allowlist --path";

/// `cerebro allow ECOSYSTEM PACKAGE...`: always allow packages despite their verdict.
#[derive(Debug, Args)]
#[command(after_help = ALLOW_AFTER_HELP)]
pub struct AllowArgs {
    /// `pypi` (or `pip`) or `npm`.
    #[arg(value_name = "ECOSYSTEM")]
    pub ecosystem: String,

    /// Packages to allow: `name` (every version) or `name@version`.
    #[arg(required = true, value_name = "PACKAGE")]
    pub packages: Vec<String>,
}

/// `cerebro allowlist`: list the allowlist, or remove packages from it.
#[derive(Debug, Args)]
#[command(after_help = ALLOWLIST_AFTER_HELP)]
pub struct AllowlistArgs {
    /// Print the entries as a JSON array of {"ecosystem", "name", "version"} on stdout
    /// (`version` is null for every version).
    #[arg(long, conflicts_with_all = ["remove", "path"])]
    pub json: bool,

    /// Remove packages: `name` removes every entry of that package, `name@version` only
    /// that version's.
    #[arg(long, num_args = 2.., value_names = ["ECOSYSTEM", "PACKAGE"], conflicts_with = "path")]
    pub remove: Option<Vec<String>>,

    /// Print the allowlist file's path and nothing else.
    #[arg(long)]
    pub path: bool,
}

pub fn allow(args: AllowArgs) -> anyhow::Result<ExitCode> {
    let ecosystem = parse_ecosystem(&args.ecosystem)?;
    let entries = parse_entries(ecosystem, &args.packages)?;
    let path = Allowlist::default_path()?;
    let added = Allowlist::update(&path, |list| {
        entries
            .into_iter()
            .map(|entry| {
                let covered_by_all = list.entries().any(|e| {
                    e.ecosystem == entry.ecosystem && e.name == entry.name && e.version.is_none()
                });
                let added = list.add(entry.clone());
                (entry, added, covered_by_all)
            })
            .collect::<Vec<_>>()
    })?;
    for (entry, added, covered_by_all) in added {
        if added {
            status("Allowed", &describe(&entry));
        } else if covered_by_all {
            status(
                "Unchanged",
                &format!(
                    "{} {} was already allowed (any version)",
                    entry.ecosystem, entry.name
                ),
            );
        } else {
            status(
                "Unchanged",
                &format!("{} was already allowed", describe(&entry)),
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub fn allowlist(args: AllowlistArgs) -> anyhow::Result<ExitCode> {
    let path = Allowlist::default_path()?;
    if args.path {
        writeln!(anstream::stdout(), "{}", path.display()).context("cannot write the path")?;
        return Ok(ExitCode::SUCCESS);
    }
    if let Some(remove) = args.remove {
        let (ecosystem, packages) = remove.split_first().expect("clap asks for two values");
        let ecosystem = parse_ecosystem(ecosystem)?;
        let entries = parse_entries(ecosystem, packages)?;
        let removed = Allowlist::update(&path, |list| {
            entries
                .into_iter()
                .map(|entry| {
                    let removed = list.remove(&entry);
                    (entry, removed)
                })
                .collect::<Vec<_>>()
        })?;
        for (entry, removed) in removed {
            if removed {
                let what = match &entry.version {
                    Some(v) => format!("{} {} {v}", entry.ecosystem, entry.name),
                    None => format!("{} {}", entry.ecosystem, entry.name),
                };
                status("Removed", &what);
            } else {
                status(
                    "Unchanged",
                    &format!("{} {entry} was not in the allowlist", entry.ecosystem),
                );
            }
        }
        return Ok(ExitCode::SUCCESS);
    }

    let list = Allowlist::load(&path)?;
    let mut out = anstream::stdout().lock();
    if args.json {
        let items: Vec<serde_json::Value> = list
            .entries()
            .map(|e| {
                serde_json::json!({
                    "ecosystem": e.ecosystem,
                    "name": e.name,
                    "version": e.version,
                })
            })
            .collect();
        let text = serde_json::to_string_pretty(&items)?;
        writeln!(out, "{text}").context("cannot write the allowlist")?;
        return Ok(ExitCode::SUCCESS);
    }
    if list.is_empty() {
        status("Empty", "The allowlist is empty");
        eprintln!(
            "\nhint: add a package with `cerebro allow pypi NAME` or `cerebro allow npm NAME`"
        );
        return Ok(ExitCode::SUCCESS);
    }
    let header = anstyle::Style::new().bold();
    let mut current = None;
    for entry in list.entries() {
        if current != Some(entry.ecosystem) {
            current = Some(entry.ecosystem);
            writeln!(out, "{header}{}{header:#}", entry.ecosystem)?;
        }
        let version = match &entry.version {
            Some(v) => v.as_str(),
            None => "(any version)",
        };
        writeln!(out, "  {} {version}", entry.name)?;
    }
    Ok(ExitCode::SUCCESS)
}

/// `pypi`, `pip` or `npm`, any case.
fn parse_ecosystem(text: &str) -> anyhow::Result<Ecosystem> {
    match text.to_ascii_lowercase().as_str() {
        "pypi" | "pip" => Ok(Ecosystem::Pypi),
        "npm" => Ok(Ecosystem::Npm),
        _ => anyhow::bail!("unknown ecosystem `{text}`: use pypi (or pip) or npm"),
    }
}

/// Every package checked before anything is written, so one typo changes nothing.
fn parse_entries(ecosystem: Ecosystem, specs: &[String]) -> anyhow::Result<Vec<Entry>> {
    Ok(specs
        .iter()
        .map(|spec| Entry::parse(ecosystem, spec))
        .collect::<Result<_, _>>()?)
}

/// `pypi requests (any version)` or `npm left-pad 1.3.0`.
fn describe(entry: &Entry) -> String {
    match &entry.version {
        Some(v) => format!("{} {} {v}", entry.ecosystem, entry.name),
        None => format!("{} {} (any version)", entry.ecosystem, entry.name),
    }
}
