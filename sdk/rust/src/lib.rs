//! Write NRI plugins for nri-wasm in Rust.
//!
//! A plugin is a type that implements [`Plugin`] (how it starts) and the
//! traits of the roles it takes: [`PodEvents`], [`ContainerEvents`],
//! [`Adjuster`], [`Validator`]. Every method has a default that does
//! nothing, so a plugin writes only what it uses. [`export!`] turns it into
//! the component's exports and tells the host which events it handles:
//!
//! ```no_run
//! use nri_wasm_sdk::{export, Adjuster, Adjustment, Container, Plugin, PodSandbox, RuntimeInfo};
//!
//! struct Hello;
//!
//! impl Plugin for Hello {
//!     fn configure(_config: &str, _runtime: &RuntimeInfo) -> Result<Self, String> {
//!         Ok(Hello)
//!     }
//! }
//!
//! impl Adjuster for Hello {
//!     fn create_container(&mut self, _pod: &PodSandbox, c: &Container) -> Result<Adjustment, String> {
//!         Ok(Adjustment::new().add_env("HELLO", &c.name))
//!     }
//! }
//!
//! export!(Hello: adjuster);
//! ```
//!
//! Build with `cargo build --release --target wasm32-unknown-unknown`, then
//! make the module a component (`scripts/build-guests.sh` does both).

mod adjustment;
mod lookup;

#[doc(hidden)]
pub mod bindings {
    wit_bindgen::generate!({
        path: "../../wit",
        world: "plugin",
        pub_export_macro: true,
        export_macro_name: "__export_world",
        default_bindings_module: "nri_wasm_sdk::bindings",
    });
}

pub use adjustment::{Adjustment, HookStage, Updates};
pub use bindings::nri::plugin::log::Level;
pub use bindings::nri::plugin::types::*;
pub use lookup::{pairs_get, ContainerExt, PodExt};

/// Writes a line to the host's log, tagged with this plugin's name.
pub fn log(level: Level, message: &str) {
    bindings::nri::plugin::log::log(level, message);
}

/// Whether lines of `level` reach the host's log: check it before
/// building a costly line.
pub fn log_enabled(level: Level) -> bool {
    bindings::nri::plugin::log::enabled(level)
}

/// How a plugin starts. It is created by `configure`, once per instance:
/// at start, and again if the host had to rebuild the instance (after a
/// trap or a missed deadline), followed by `synchronize`.
pub trait Plugin: Sized + Send + 'static {
    /// Creates the plugin from the operator's configuration string.
    fn configure(config: &str, runtime: &RuntimeInfo) -> Result<Self, String>;

    /// Narrows the events the plugin is sent, among those of its roles.
    fn events(&self) -> Events {
        Events::all()
    }

    /// Every existing pod and container; answers with updates to them.
    fn synchronize(
        &mut self,
        _pods: &[PodSandbox],
        _containers: &[Container],
    ) -> Result<Vec<ContainerUpdate>, String> {
        Ok(Vec::new())
    }
}

/// Observing pods.
pub trait PodEvents {
    /// A pod is starting.
    fn run_pod_sandbox(&mut self, _pod: &PodSandbox) -> Result<(), String> {
        Ok(())
    }
    /// A pod's resources are changing.
    fn update_pod_sandbox(
        &mut self,
        _pod: &PodSandbox,
        _overhead: Option<&LinuxResources>,
        _resources: Option<&LinuxResources>,
    ) -> Result<(), String> {
        Ok(())
    }
    /// A pod's resources changed.
    fn post_update_pod_sandbox(&mut self, _pod: &PodSandbox) -> Result<(), String> {
        Ok(())
    }
    /// A pod is stopping.
    fn stop_pod_sandbox(&mut self, _pod: &PodSandbox) -> Result<(), String> {
        Ok(())
    }
    /// A pod was removed.
    fn remove_pod_sandbox(&mut self, _pod: &PodSandbox) -> Result<(), String> {
        Ok(())
    }
}

/// Observing containers.
pub trait ContainerEvents {
    /// A container was created.
    fn post_create_container(
        &mut self,
        _pod: &PodSandbox,
        _container: &Container,
    ) -> Result<(), String> {
        Ok(())
    }
    /// A container is starting.
    fn start_container(&mut self, _pod: &PodSandbox, _container: &Container) -> Result<(), String> {
        Ok(())
    }
    /// A container started.
    fn post_start_container(
        &mut self,
        _pod: &PodSandbox,
        _container: &Container,
    ) -> Result<(), String> {
        Ok(())
    }
    /// A container's resources changed.
    fn post_update_container(
        &mut self,
        _pod: &PodSandbox,
        _container: &Container,
    ) -> Result<(), String> {
        Ok(())
    }
    /// A container was removed.
    fn remove_container(
        &mut self,
        _pod: &PodSandbox,
        _container: &Container,
    ) -> Result<(), String> {
        Ok(())
    }
}

/// Changing containers.
pub trait Adjuster {
    /// A container is being created; `container` is as the runtime and the
    /// plugins before this one left it.
    fn create_container(
        &mut self,
        _pod: &PodSandbox,
        _container: &Container,
    ) -> Result<Adjustment, String> {
        Ok(Adjustment::new())
    }
    /// A container's resources are being updated.
    fn update_container(
        &mut self,
        _pod: &PodSandbox,
        _container: &Container,
        _resources: Option<&LinuxResources>,
    ) -> Result<Updates, String> {
        Ok(Updates::new())
    }
    /// A container is stopping.
    fn stop_container(
        &mut self,
        _pod: &PodSandbox,
        _container: &Container,
    ) -> Result<Updates, String> {
        Ok(Updates::new())
    }
}

/// Validating every plugin's changes to a container before it is created.
pub trait Validator {
    /// `Err(reason)` rejects the container.
    fn validate(&mut self, _request: &ValidateRequest) -> Result<(), String> {
        Ok(())
    }
}

impl Events {
    /// The events of the pod-events interface.
    pub const POD: Events = Events::RUN_POD_SANDBOX
        .union(Events::UPDATE_POD_SANDBOX)
        .union(Events::POST_UPDATE_POD_SANDBOX)
        .union(Events::STOP_POD_SANDBOX)
        .union(Events::REMOVE_POD_SANDBOX);
    /// The events of the container-events interface.
    pub const CONTAINER: Events = Events::POST_CREATE_CONTAINER
        .union(Events::START_CONTAINER)
        .union(Events::POST_START_CONTAINER)
        .union(Events::POST_UPDATE_CONTAINER)
        .union(Events::REMOVE_CONTAINER);
    /// The events of the adjuster interface.
    pub const ADJUSTER: Events = Events::CREATE_CONTAINER
        .union(Events::UPDATE_CONTAINER)
        .union(Events::STOP_CONTAINER);
    /// The events of the validator interface.
    pub const VALIDATOR: Events = Events::VALIDATE_CONTAINER_ADJUSTMENT;
}

#[doc(hidden)]
pub mod __private {
    pub use std::sync::Mutex;

    /// The plugin of this instance, set by configure.
    pub fn with<T, R>(
        slot: &Mutex<Option<T>>,
        f: impl FnOnce(&mut T) -> Result<R, String>,
    ) -> Result<R, String> {
        let mut guard = slot
            .lock()
            .map_err(|_| "plugin state is poisoned".to_string())?;
        match guard.as_mut() {
            Some(plugin) => f(plugin),
            None => Err("plugin called before configure".to_string()),
        }
    }
}

/// Exports a plugin type with the roles it takes, any of `pod_events`,
/// `container_events`, `adjuster`, `validator`:
/// `export!(MyPlugin: adjuster, validator);`. The host is told to send the
/// plugin only the events of those roles (narrowed by [`Plugin::events`]).
#[macro_export]
macro_rules! export {
    (@events pod_events) => { Events::POD };
    (@events container_events) => { Events::CONTAINER };
    (@events adjuster) => { Events::ADJUSTER };
    (@events validator) => { Events::VALIDATOR };

    // Each role: forward to the plugin's trait if listed, else answer
    // nothing (the host never calls it: the events are not subscribed).
    (@pod_events $ty:ty, $ex:ident, $p:ident, pod_events $(, $rest:ident)*) => {
        impl ifaces::pod_events::Guest for $ex {
            fn run_pod_sandbox(pod: PodSandbox) -> Result<(), String> {
                __private::with(&$p, |p| PodEvents::run_pod_sandbox(p, &pod))
            }
            fn update_pod_sandbox(pod: PodSandbox, overhead: Option<LinuxResources>, resources: Option<LinuxResources>) -> Result<(), String> {
                __private::with(&$p, |p| PodEvents::update_pod_sandbox(p, &pod, overhead.as_ref(), resources.as_ref()))
            }
            fn post_update_pod_sandbox(pod: PodSandbox) -> Result<(), String> {
                __private::with(&$p, |p| PodEvents::post_update_pod_sandbox(p, &pod))
            }
            fn stop_pod_sandbox(pod: PodSandbox) -> Result<(), String> {
                __private::with(&$p, |p| PodEvents::stop_pod_sandbox(p, &pod))
            }
            fn remove_pod_sandbox(pod: PodSandbox) -> Result<(), String> {
                __private::with(&$p, |p| PodEvents::remove_pod_sandbox(p, &pod))
            }
        }
    };
    (@pod_events $ty:ty, $ex:ident, $p:ident, $other:ident $(, $rest:ident)*) => {
        $crate::export!(@pod_events $ty, $ex, $p, $($rest),*);
    };
    (@pod_events $ty:ty, $ex:ident, $p:ident, ) => {
        impl ifaces::pod_events::Guest for $ex {
            fn run_pod_sandbox(_: PodSandbox) -> Result<(), String> { Ok(()) }
            fn update_pod_sandbox(_: PodSandbox, _: Option<LinuxResources>, _: Option<LinuxResources>) -> Result<(), String> { Ok(()) }
            fn post_update_pod_sandbox(_: PodSandbox) -> Result<(), String> { Ok(()) }
            fn stop_pod_sandbox(_: PodSandbox) -> Result<(), String> { Ok(()) }
            fn remove_pod_sandbox(_: PodSandbox) -> Result<(), String> { Ok(()) }
        }
    };

    (@container_events $ty:ty, $ex:ident, $p:ident, container_events $(, $rest:ident)*) => {
        impl ifaces::container_events::Guest for $ex {
            fn post_create_container(pod: PodSandbox, c: Container) -> Result<(), String> {
                __private::with(&$p, |p| ContainerEvents::post_create_container(p, &pod, &c))
            }
            fn start_container(pod: PodSandbox, c: Container) -> Result<(), String> {
                __private::with(&$p, |p| ContainerEvents::start_container(p, &pod, &c))
            }
            fn post_start_container(pod: PodSandbox, c: Container) -> Result<(), String> {
                __private::with(&$p, |p| ContainerEvents::post_start_container(p, &pod, &c))
            }
            fn post_update_container(pod: PodSandbox, c: Container) -> Result<(), String> {
                __private::with(&$p, |p| ContainerEvents::post_update_container(p, &pod, &c))
            }
            fn remove_container(pod: PodSandbox, c: Container) -> Result<(), String> {
                __private::with(&$p, |p| ContainerEvents::remove_container(p, &pod, &c))
            }
        }
    };
    (@container_events $ty:ty, $ex:ident, $p:ident, $other:ident $(, $rest:ident)*) => {
        $crate::export!(@container_events $ty, $ex, $p, $($rest),*);
    };
    (@container_events $ty:ty, $ex:ident, $p:ident, ) => {
        impl ifaces::container_events::Guest for $ex {
            fn post_create_container(_: PodSandbox, _: Container) -> Result<(), String> { Ok(()) }
            fn start_container(_: PodSandbox, _: Container) -> Result<(), String> { Ok(()) }
            fn post_start_container(_: PodSandbox, _: Container) -> Result<(), String> { Ok(()) }
            fn post_update_container(_: PodSandbox, _: Container) -> Result<(), String> { Ok(()) }
            fn remove_container(_: PodSandbox, _: Container) -> Result<(), String> { Ok(()) }
        }
    };

    (@adjuster $ty:ty, $ex:ident, $p:ident, adjuster $(, $rest:ident)*) => {
        impl ifaces::adjuster::Guest for $ex {
            fn create_container(pod: PodSandbox, c: Container) -> Result<CreateReply, String> {
                __private::with(&$p, |p| Adjuster::create_container(p, &pod, &c)).map(Adjustment::into_reply)
            }
            fn update_container(pod: PodSandbox, c: Container, resources: Option<LinuxResources>) -> Result<UpdateReply, String> {
                __private::with(&$p, |p| Adjuster::update_container(p, &pod, &c, resources.as_ref())).map(Updates::into_reply)
            }
            fn stop_container(pod: PodSandbox, c: Container) -> Result<UpdateReply, String> {
                __private::with(&$p, |p| Adjuster::stop_container(p, &pod, &c)).map(Updates::into_reply)
            }
        }
    };
    (@adjuster $ty:ty, $ex:ident, $p:ident, $other:ident $(, $rest:ident)*) => {
        $crate::export!(@adjuster $ty, $ex, $p, $($rest),*);
    };
    (@adjuster $ty:ty, $ex:ident, $p:ident, ) => {
        impl ifaces::adjuster::Guest for $ex {
            fn create_container(_: PodSandbox, _: Container) -> Result<CreateReply, String> { Ok(Adjustment::new().into_reply()) }
            fn update_container(_: PodSandbox, _: Container, _: Option<LinuxResources>) -> Result<UpdateReply, String> { Ok(Updates::new().into_reply()) }
            fn stop_container(_: PodSandbox, _: Container) -> Result<UpdateReply, String> { Ok(Updates::new().into_reply()) }
        }
    };

    (@validator $ty:ty, $ex:ident, $p:ident, validator $(, $rest:ident)*) => {
        impl ifaces::validator::Guest for $ex {
            fn validate_container_adjustment(request: ValidateRequest) -> Result<(), String> {
                __private::with(&$p, |p| Validator::validate(p, &request))
            }
        }
    };
    (@validator $ty:ty, $ex:ident, $p:ident, $other:ident $(, $rest:ident)*) => {
        $crate::export!(@validator $ty, $ex, $p, $($rest),*);
    };
    (@validator $ty:ty, $ex:ident, $p:ident, ) => {
        impl ifaces::validator::Guest for $ex {
            fn validate_container_adjustment(_: ValidateRequest) -> Result<(), String> { Ok(()) }
        }
    };

    ($ty:ty: $($role:ident),+ $(,)?) => {
        const _: () = {
            use $crate::__private::Mutex;
            use $crate::bindings::exports::nri::plugin as ifaces;
            use $crate::*;

            static PLUGIN: Mutex<Option<$ty>> = Mutex::new(None);

            struct Exports;

            impl ifaces::lifecycle::Guest for Exports {
                fn configure(config: String, runtime: RuntimeInfo) -> Result<Events, String> {
                    let plugin = <$ty as Plugin>::configure(&config, &runtime)?;
                    let roles = Events::empty() $(| $crate::export!(@events $role))+;
                    let events = plugin.events() & roles;
                    *PLUGIN.lock().map_err(|_| "plugin state is poisoned".to_string())? = Some(plugin);
                    Ok(events)
                }
                fn synchronize(pods: Vec<PodSandbox>, containers: Vec<Container>) -> Result<Vec<ContainerUpdate>, String> {
                    __private::with(&PLUGIN, |p| Plugin::synchronize(p, &pods, &containers))
                }
            }

            $crate::export!(@pod_events $ty, Exports, PLUGIN, $($role),+);
            $crate::export!(@container_events $ty, Exports, PLUGIN, $($role),+);
            $crate::export!(@adjuster $ty, Exports, PLUGIN, $($role),+);
            $crate::export!(@validator $ty, Exports, PLUGIN, $($role),+);

            // Only a Wasm build exports (native builds serve unit tests).
            #[cfg(target_arch = "wasm32")]
            $crate::bindings::__export_world!(Exports with_types_in $crate::bindings);
        };
    };
}
