//! The `nri-wasm` command: parses the command line, sets up logging and
//! runs the chosen verb.

use std::process::ExitCode;

use clap::Parser;
use nri_wasm::{cli::Cli, observe::init_logging};

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.log_format, cli.default_log_filter());
    match cli.run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("nri-wasm: {err:#}");
            ExitCode::FAILURE
        }
    }
}
