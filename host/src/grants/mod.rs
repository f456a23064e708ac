//! Grants: what each guest may change, read and see, written by the
//! operator, deny by default.
//!
//! ```text
//! dispatcher: scope (call the guest at all?) -> redact (what it reads)
//!             -> guest -> check (its answer against its grants) -> merge
//! ```
//!
//! An answer that exceeds the grants is refused whole: none of it is
//! applied.

#[cfg(test)]
mod adversarial;
mod check;
pub mod effective;
mod instructions;
mod model;
pub mod reads;
mod redact;
mod scope;
pub mod suggest;
#[cfg(test)]
mod suggest_tests;

pub use check::{check_answer, Family, Refusal, Targets, ADJUSTMENT_FIELDS, RESOURCE_FIELDS};
pub use model::{
    Bounds, CpuGrant, DeviceGrant, DeviceRuleGrant, Grants, HookGrant, HookStage, MemoryGrant,
    MountGrant, NamespaceGrant, Patterns, ReadGrants, SchedulerFlag, SchedulerGrant,
    SchedulerPolicy, Scope, UpdateScope,
};
pub use scope::in_scope;
