//! Rust bindings of the WIT package `nri:plugin@0.1.0` (`wit/`), for the
//! host side: the `log` import guests call, the exported interfaces the
//! host calls, and the WIT data model. The WIT files document every item.

#[allow(missing_docs)]
mod generated {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "plugin",
        // Guest calls are futures: a guest that waits in WASI (a timer, a
        // poll) yields, and its call can be cut off at its deadline.
        exports: { default: async },
    });
}

pub use generated::exports::nri::plugin::{
    adjuster, container_events, lifecycle, pod_events, validator,
};
pub use generated::nri::plugin::{log, types};
pub use generated::Plugin;
