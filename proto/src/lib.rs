//! The NRI plugin protocol as it crosses the runtime's socket: the messages
//! and ttrpc services of `nri/api.proto` (generated at build time), the
//! ttrpc message header, and the multiplexer that carries two ttrpc
//! connections over one unix stream, in frames NRI's Go side can read.
//!
//! Both sides of NRI use this crate: the nri-wasm host (plugin side) and the
//! runtime simulator (runtime side).

pub mod adjust;
pub mod events;
pub mod framing;
pub mod identity;
pub mod mux;
pub mod ttrpc_frame;

pub use generated::{api, api_ttrpc};

/// Code generated from `nri/api.proto` at build time.
#[allow(
    missing_docs,
    clippy::all,
    dead_code,
    non_camel_case_types,
    non_snake_case,
    non_upper_case_globals,
    unused_mut,
    unused_attributes,
    unknown_lints,
    unused_imports
)]
#[rustfmt::skip]
mod generated {
    /// NRI messages and enums.
    pub mod api {
        include!(concat!(env!("OUT_DIR"), "/api.rs"));
    }

    /// ttrpc clients, service traits and service tables.
    pub mod api_ttrpc {
        include!(concat!(env!("OUT_DIR"), "/api_ttrpc.rs"));
    }
}
