//! Plugins from OCI registries: references, the artifact layouts, the
//! registry client, cosign signatures, and the content-addressed store
//! that keeps what was pulled so a node restarts without its registry.

pub mod artifact;
pub mod credentials;
pub mod pull;
pub mod reference;
pub mod registry;
pub mod signature;
pub mod store;

pub use pull::{PluginSource, Pulled, Puller};
pub use reference::OciReference;
