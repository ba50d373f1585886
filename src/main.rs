use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = cerebro::cli::Cli::parse();
    match cerebro::cli::run(cli) {
        Ok(code) => code,
        Err(error) => {
            cerebro::cli::print_error(&error);
            ExitCode::from(cerebro::cli::EXIT_USAGE)
        }
    }
}
