//! The Wasm side: one engine, guests compiled once and cached, each guest
//! in its own sandboxed store with a memory cap and a deadline per call.

pub mod bindings;
pub mod cache;
pub mod convert;
pub mod engine;
mod exports;
pub mod guest;
pub mod loader;
pub mod sandbox;
pub mod sections;

pub use cache::{CompileCache, ContentDigest};
pub use engine::WasmEngine;
pub use guest::{
    CallResult, GuestFault, GuestId, GuestInstance, GuestLimits, GuestNotification, GuestPre,
    LinkError, SandboxSpec,
};
pub use sandbox::WasiAccess;
