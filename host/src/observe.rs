//! Logs: `tracing` to stderr, as text for people or JSON for collectors.
//! The filter comes from `NRI_WASM_LOG` (env-filter syntax), else the
//! verb's default.

use std::io::IsTerminal;

use clap::ValueEnum;
use tracing_subscriber::EnvFilter;

/// Environment variable holding the log filter.
pub const LOG_FILTER_ENV: &str = "NRI_WASM_LOG";

/// How log lines are written.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// One human-readable line per event.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

/// Installs the global subscriber, filtering by `NRI_WASM_LOG` or else by
/// `default_filter`. Records of the `log` crate (ttrpc uses it) are
/// forwarded into it.
pub fn init_logging(format: LogFormat, default_filter: &str) {
    let filter =
        EnvFilter::try_from_env(LOG_FILTER_ENV).unwrap_or_else(|_| EnvFilter::new(default_filter));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}
