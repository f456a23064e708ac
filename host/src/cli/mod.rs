//! The command-line verbs, one per file.

mod demo;
mod run;

use clap::{Parser, Subcommand};

use crate::observe::LogFormat;

/// A WebAssembly plugin runtime for NRI, the Node Resource Interface of
/// containerd and CRI-O.
#[derive(Debug, Parser)]
#[command(name = "nri-wasm", version, about, long_about = None)]
pub struct Cli {
    /// Log line format (the filter is read from NRI_WASM_LOG, default info).
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    Run(run::RunArgs),
    Demo(demo::DemoArgs),
}

impl Cli {
    /// Runs the chosen verb to completion.
    pub fn run(self) -> anyhow::Result<()> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()?;
        runtime.block_on(async {
            match self.command {
                Command::Run(args) => run::run(args).await,
                Command::Demo(args) => demo::demo(args).await,
            }
        })
    }
}
