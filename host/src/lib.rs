//! nri-wasm: one NRI plugin that runs sandboxed WebAssembly guests.
//!
//! ```text
//! runtime --unix socket--> protocol (mux, ttrpc, registration)
//!                          --> dispatch (node view, guests, merge) --> reply
//! ```
//!
//! [`protocol`] speaks NRI to containerd or CRI-O as an external plugin;
//! [`dispatch`] decides the answers; [`cli`] holds the command-line verbs;
//! [`observe`] sets up logging.

#![deny(missing_docs)]

pub mod cli;
pub mod config;
pub mod dispatch;
pub mod grants;

pub mod metrics;
pub mod observe;
pub mod oci;
pub mod plugins;
pub mod protocol;
pub mod runtime;
pub mod shadow;
pub mod status;
#[cfg(test)]
mod test_support;
pub mod untrusted;
