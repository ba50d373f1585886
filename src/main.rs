use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    // Before any thread starts: scans run one package per thread, so the model's kernels
    // must not start pools of their own that spin against ours.
    cerebro_model::single_threaded_kernels();
    let cli = cerebro::cli::Cli::parse();
    match cerebro::cli::run(cli) {
        Ok(code) => code,
        Err(error) => {
            cerebro::cli::print_error(&error);
            ExitCode::from(cerebro::cli::EXIT_USAGE)
        }
    }
}
