//! `cerebro allow` and `cerebro allowlist`: the user's allowlist, edited from the terminal.

use std::process::ExitCode;

use clap::Args;

#[derive(Debug, Args)]
pub struct AllowArgs {}

#[derive(Debug, Args)]
pub struct AllowlistArgs {}

pub fn allow(_args: AllowArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("`cerebro allow` is not built yet")
}

pub fn allowlist(_args: AllowlistArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("`cerebro allowlist` is not built yet")
}
