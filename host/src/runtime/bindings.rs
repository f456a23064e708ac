//! Rust bindings of the WIT package `nri:plugin@0.1.0` (`wit/`), for the
//! host side: the `log` import guests call, the exported interfaces the
//! host calls, and the WIT data model. The WIT files document every item.
//!
//! The exports come twice: called directly, for guests that import
//! nothing but the host's own interfaces and so never wait in the host;
//! and as futures ([`calls_async`]), for guests that import WASI, where a
//! call waiting on a WASI timer or poll yields and can be cut off at its
//! deadline. Both share one set of types.

#[allow(missing_docs)]
mod generated {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "plugin",
    });
}

/// The exports as futures, over the same types.
#[allow(missing_docs)]
pub mod calls_async {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "plugin",
        exports: { default: async },
        with: {
            "nri:plugin/types": super::generated::nri::plugin::types,
            "nri:plugin/log": super::generated::nri::plugin::log,
        },
    });
    pub use exports::nri::plugin::{adjuster, container_events, lifecycle, pod_events, validator};
}

pub use generated::exports::nri::plugin::{
    adjuster, container_events, lifecycle, pod_events, validator,
};
pub use generated::nri::plugin::{log, types};
pub use generated::Plugin;
