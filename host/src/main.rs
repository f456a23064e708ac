//! The `nri-wasm` command: parses the command line, sets up logging and
//! runs the chosen verb.

use std::process::ExitCode;

use clap::Parser;
use nri_wasm::{cli::Cli, observe::init_logging};

fn main() -> ExitCode {
    quiet_on_closed_stdout();
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

/// A reader that closes our output early (`nri-wasm demo | head`) ends
/// the program as it ends `cat`: quietly, with the status of SIGPIPE.
fn quiet_on_closed_stdout() {
    const SIGPIPE_STATUS: i32 = 128 + 13;
    let report = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let payload = info.payload();
        let message = payload
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| payload.downcast_ref::<&str>().copied())
            .unwrap_or_default();
        if message.starts_with("failed printing to stdout") && message.contains("Broken pipe") {
            std::process::exit(SIGPIPE_STATUS);
        }
        report(info);
    }));
}
