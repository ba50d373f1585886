//! `cerebro pip` and `cerebro npm`: the guarded install, as the shims run it.

use std::ffi::OsString;
use std::process::ExitCode;

use clap::Args;

use crate::guard::Manager;

pub const AFTER_HELP: &str = "";

#[derive(Debug, Args)]
pub struct GuardArgs {
    /// The package manager's own arguments, passed on untouched.
    #[arg(
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "ARGS"
    )]
    pub args: Vec<OsString>,
}

pub fn run(_manager: Manager, _args: GuardArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("the guard is not built yet")
}
