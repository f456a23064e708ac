//! How NRI combines the answers of several plugins to one container:
//! every adjusted field (or entry of a compound field) is owned by the
//! first plugin that sets it, a second plugin touching it is a conflict
//! naming both, OCI hooks accumulate, and a key prefixed with `-` removes
//! the entry. Each plugin sees the container as adjusted by those before
//! it.
//!
//! The runtime simulator merges plugins with this; nri-wasm merges its
//! guests with it, since to the runtime it is one plugin.

use std::collections::HashMap;

use protobuf::MessageField;

use crate::api::{
    Container, ContainerAdjustment, ContainerUpdate, Field, FieldOwners, Hooks, LinuxContainer,
    LinuxContainerAdjustment, LinuxResources, OwningPlugins,
};

/// The prefix marking a key, name or destination for removal.
pub const REMOVAL_MARKER: char = '-';

/// Two plugins set the same field or entry.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("plugins {second:?} and {first:?} both tried to set {field:?}{}", qualifier(.key))]
pub struct Conflict {
    /// The field.
    pub field: Field,
    /// The entry of a compound field (annotation key, mount destination, ...).
    pub key: Option<String>,
    /// The plugin that owned it first.
    pub first: String,
    /// The plugin that tried to set it again.
    pub second: String,
}

fn qualifier(key: &Option<String>) -> String {
    key.as_ref().map(|k| format!(" {k}")).unwrap_or_default()
}

/// Who owns what, for one container.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Owners {
    simple: HashMap<Field, Claim>,
    compound: HashMap<(Field, String), Claim>,
    hooks: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct Claim {
    plugin: String,
    removed: bool,
}

fn check(
    existing: Option<&Claim>,
    plugin: &str,
    field: Field,
    key: Option<&str>,
) -> Result<(), Conflict> {
    match existing {
        Some(claim) if claim.plugin != plugin => Err(Conflict {
            field,
            key: key.map(str::to_string),
            first: claim.plugin.clone(),
            second: plugin.to_string(),
        }),
        _ => Ok(()),
    }
}

/// One field or entry an answer sets or removes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClaimOf<'a> {
    /// The field.
    pub field: Field,
    /// The entry of a compound field; `None` for a simple field.
    pub key: Option<&'a str>,
    /// Whether the answer removes it.
    pub removed: bool,
}

impl<'a> ClaimOf<'a> {
    fn set(field: Field) -> Self {
        ClaimOf {
            field,
            key: None,
            removed: false,
        }
    }

    fn keyed(field: Field, key: &'a str) -> Self {
        ClaimOf {
            field,
            key: Some(key),
            removed: false,
        }
    }

    fn entry(field: Field, marked: &'a str) -> Self {
        let (key, removed) = split_marker(marked);
        ClaimOf {
            field,
            key: Some(key),
            removed,
        }
    }
}

/// What an answer claims: its fields and entries, and whether it adds OCI
/// hooks (which are never owned).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Claims<'a> {
    /// Fields and entries.
    pub fields: Vec<ClaimOf<'a>>,
    /// Whether it adds hooks.
    pub hooks: bool,
}

impl Owners {
    /// The first claim of `claims` that another plugin owns already.
    pub fn conflict(&self, plugin: &str, claims: &Claims<'_>) -> Option<Conflict> {
        claims.fields.iter().find_map(|c| {
            let existing = match c.key {
                None => self.simple.get(&c.field),
                Some(key) => self.compound.get(&(c.field, key.to_string())),
            };
            check(existing, plugin, c.field, c.key).err()
        })
    }

    /// Records `claims` for `plugin`; fails, recording nothing, if another
    /// plugin owns any of them.
    pub fn claim_all(&mut self, plugin: &str, claims: &Claims<'_>) -> Result<(), Conflict> {
        if let Some(conflict) = self.conflict(plugin, claims) {
            return Err(conflict);
        }
        for c in &claims.fields {
            let claim = Claim {
                plugin: plugin.to_string(),
                removed: c.removed,
            };
            match c.key {
                None => self.simple.insert(c.field, claim),
                Some(key) => self.compound.insert((c.field, key.to_string()), claim),
            };
        }
        if claims.hooks {
            self.hooks.push(plugin.to_string());
        }
        Ok(())
    }

    /// The owner of a simple field.
    pub fn owner(&self, field: Field) -> Option<&str> {
        self.simple.get(&field).map(|c| c.plugin.as_str())
    }

    /// The owner of an entry of a compound field.
    pub fn entry_owner(&self, field: Field, key: &str) -> Option<&str> {
        self.compound
            .get(&(field, key.to_string()))
            .map(|c| c.plugin.as_str())
    }

    /// The wire form: removal claims are written `-plugin`, hook owners
    /// joined with commas, as NRI does.
    pub fn to_field_owners(&self) -> FieldOwners {
        let mark = |c: &Claim| {
            if c.removed {
                format!("{REMOVAL_MARKER}{}", c.plugin)
            } else {
                c.plugin.clone()
            }
        };
        let mut owners = FieldOwners::new();
        for (field, claim) in &self.simple {
            owners.simple.insert(*field as i32, mark(claim));
        }
        if !self.hooks.is_empty() {
            owners
                .simple
                .insert(Field::OciHooks as i32, self.hooks.join(","));
        }
        for ((field, key), claim) in &self.compound {
            owners
                .compound
                .entry(*field as i32)
                .or_default()
                .owners
                .insert(key.clone(), mark(claim));
        }
        owners
    }
}

/// Owners of several containers, keyed by container id, in wire form.
pub fn owning_plugins<'a>(
    per_container: impl IntoIterator<Item = (&'a str, &'a Owners)>,
) -> OwningPlugins {
    let mut owning = OwningPlugins::new();
    for (id, owners) in per_container {
        owning
            .owners
            .insert(id.to_string(), owners.to_field_owners());
    }
    owning
}

/// Every field and entry `adjust` sets or removes: NRI's ownership rules,
/// in one place. Compound entries come in key order, so that the conflict
/// reported first does not depend on a map's order.
pub fn adjustment_claims(adjust: &ContainerAdjustment) -> Claims<'_> {
    let mut fields = Vec::new();
    fields.extend(entries(
        Field::Annotations,
        sorted_keys(&adjust.annotations),
    ));
    fields.extend(entries(
        Field::Mounts,
        adjust.mounts.iter().map(|m| m.destination.as_str()),
    ));
    fields.extend(entries(
        Field::Env,
        adjust.env.iter().map(|kv| kv.key.as_str()),
    ));
    fields.extend(
        adjust
            .CDI_devices
            .iter()
            .map(|d| ClaimOf::keyed(Field::CdiDevices, &d.name)),
    );
    fields.extend(
        adjust
            .rlimits
            .iter()
            .map(|r| ClaimOf::keyed(Field::Rlimits, &r.type_)),
    );
    if !adjust.args.is_empty() {
        fields.push(ClaimOf::set(Field::Args));
    }
    if let Some(linux) = adjust.linux.as_ref() {
        linux_claims(linux, &mut fields);
    }
    let hooks = adjust.hooks.as_ref().is_some_and(|h| hook_count(h) > 0);
    Claims { fields, hooks }
}

/// Claims of the entries `keys` (removal markers split off).
fn entries<'a>(
    field: Field,
    keys: impl IntoIterator<Item = &'a str>,
) -> impl Iterator<Item = ClaimOf<'a>> {
    keys.into_iter().map(move |k| ClaimOf::entry(field, k))
}

fn linux_claims<'a>(linux: &'a LinuxContainerAdjustment, fields: &mut Vec<ClaimOf<'a>>) {
    fields.extend(entries(
        Field::Devices,
        linux.devices.iter().map(|d| d.path.as_str()),
    ));
    if let Some(resources) = linux.resources.as_ref() {
        fields.extend(resource_claims(resources));
    }
    let simple = [
        (Field::CgroupsPath, !linux.cgroups_path.is_empty()),
        (Field::OomScoreAdj, linux.oom_score_adj.is_some()),
        (Field::IoPriority, linux.io_priority.is_some()),
        (Field::SeccompPolicy, linux.seccomp_policy.is_some()),
        (Field::LinuxSched, linux.scheduler.is_some()),
        (Field::MemoryPolicy, linux.memory_policy.is_some()),
    ];
    fields.extend(
        simple
            .into_iter()
            .filter(|f| f.1)
            .map(|f| ClaimOf::set(f.0)),
    );
    fields.extend(entries(
        Field::Namespace,
        linux.namespaces.iter().map(|n| n.type_.as_str()),
    ));
    fields.extend(entries(Field::Sysctl, sorted_keys(&linux.sysctl)));
    fields.extend(entries(
        Field::LinuxNetDevices,
        sorted_keys(&linux.net_devices),
    ));
    if let Some(rdt) = linux.rdt.as_ref() {
        let rdt_fields = [
            (Field::RdtClosID, rdt.clos_id.is_some()),
            (Field::RdtSchemata, rdt.schemata.is_some()),
            (Field::RdtEnableMonitoring, rdt.enable_monitoring.is_some()),
        ];
        for (field, set) in rdt_fields {
            if rdt.remove {
                fields.push(ClaimOf {
                    field,
                    key: None,
                    removed: true,
                });
            } else if set {
                fields.push(ClaimOf::set(field));
            }
        }
    }
}

/// Every resource knob `resources` sets.
pub fn resource_claims(resources: &LinuxResources) -> impl Iterator<Item = ClaimOf<'_>> {
    resource_fields_set(resources)
        .into_iter()
        .map(ClaimOf::set)
        .chain(
            resources
                .hugepage_limits
                .iter()
                .map(|l| ClaimOf::keyed(Field::HugepageLimits, &l.page_size)),
        )
        .chain(
            sorted_keys(&resources.unified)
                .into_iter()
                .map(|k| ClaimOf::keyed(Field::CgroupsUnified, k)),
        )
}

/// Combines the adjustments of several plugins to one container being
/// created, in call order.
#[derive(Clone, Debug, Default)]
pub struct AdjustmentMerge {
    /// The container as adjusted so far; the next plugin sees this.
    pub container: Container,
    /// The combined adjustment, as sent on to validators and the runtime.
    pub merged: ContainerAdjustment,
    /// Who owns what.
    pub owners: Owners,
}

impl AdjustmentMerge {
    /// Starts from the container as the runtime described it.
    pub fn new(container: Container) -> Self {
        AdjustmentMerge {
            container,
            ..Default::default()
        }
    }

    /// Whether `plugin`'s adjustment would conflict with the plugins
    /// before it.
    pub fn conflict(&self, plugin: &str, adjust: &ContainerAdjustment) -> Option<Conflict> {
        self.owners.conflict(plugin, &adjustment_claims(adjust))
    }

    /// Applies `plugin`'s adjustment. On a conflict nothing of it is
    /// applied.
    pub fn apply(&mut self, plugin: &str, adjust: &ContainerAdjustment) -> Result<(), Conflict> {
        self.owners.claim_all(plugin, &adjustment_claims(adjust))?;
        self.annotations(adjust);
        self.mounts(adjust);
        self.env(adjust);
        self.hooks(adjust);
        self.cdi_devices(adjust);
        self.rlimits(adjust);
        if !adjust.args.is_empty() {
            self.container.args = adjust.args.clone();
            self.merged.args = adjust.args.clone();
        }
        if let Some(linux) = adjust.linux.as_ref() {
            self.linux(linux);
        }
        Ok(())
    }

    fn annotations(&mut self, adjust: &ContainerAdjustment) {
        for (key, value) in sorted(&adjust.annotations) {
            match key.strip_prefix(REMOVAL_MARKER) {
                Some(name) => {
                    self.container.annotations.remove(name);
                    self.merged.annotations.remove(name);
                    self.merged.annotations.insert(key.clone(), String::new());
                }
                None => {
                    self.container
                        .annotations
                        .insert(key.clone(), value.clone());
                    self.merged
                        .annotations
                        .remove(&format!("{REMOVAL_MARKER}{key}"));
                    self.merged.annotations.insert(key.clone(), value.clone());
                }
            }
        }
    }

    fn mounts(&mut self, adjust: &ContainerAdjustment) {
        for mount in &adjust.mounts {
            let (dest, removal) = split_marker(&mount.destination);
            self.container.mounts.retain(|m| m.destination != dest);
            self.merged
                .mounts
                .retain(|m| split_marker(&m.destination).0 != dest);
            if !removal {
                self.container.mounts.push(mount.clone());
            }
            self.merged.mounts.push(mount.clone());
        }
    }

    fn env(&mut self, adjust: &ContainerAdjustment) {
        for kv in &adjust.env {
            let (name, removal) = split_marker(&kv.key);
            let prefix = format!("{name}=");
            self.container
                .env
                .retain(|e| !e.starts_with(&prefix) && e != name);
            self.merged.env.retain(|e| split_marker(&e.key).0 != name);
            if !removal {
                self.container.env.push(format!("{name}={}", kv.value));
            }
            self.merged.env.push(kv.clone());
        }
    }

    fn hooks(&mut self, adjust: &ContainerAdjustment) {
        let Some(hooks) = adjust.hooks.as_ref() else {
            return;
        };
        if hook_count(hooks) == 0 {
            return;
        }
        append_hooks(self.container.hooks.mut_or_insert_default(), hooks);
        append_hooks(self.merged.hooks.mut_or_insert_default(), hooks);
    }

    fn cdi_devices(&mut self, adjust: &ContainerAdjustment) {
        for device in &adjust.CDI_devices {
            if !self
                .container
                .CDI_devices
                .iter()
                .any(|d| d.name == device.name)
            {
                self.container.CDI_devices.push(device.clone());
            }
            self.merged.CDI_devices.retain(|d| d.name != device.name);
            self.merged.CDI_devices.push(device.clone());
        }
    }

    fn rlimits(&mut self, adjust: &ContainerAdjustment) {
        for rlimit in &adjust.rlimits {
            self.container.rlimits.retain(|r| r.type_ != rlimit.type_);
            self.container.rlimits.push(rlimit.clone());
            self.merged.rlimits.retain(|r| r.type_ != rlimit.type_);
            self.merged.rlimits.push(rlimit.clone());
        }
    }

    fn linux(&mut self, adjust: &LinuxContainerAdjustment) {
        let container = self.container.linux.mut_or_insert_default();
        let merged = self.merged.linux.mut_or_insert_default();

        for device in &adjust.devices {
            let (path, removal) = split_marker(&device.path);
            container.devices.retain(|d| d.path != path);
            merged.devices.retain(|d| split_marker(&d.path).0 != path);
            if !removal {
                container.devices.push(device.clone());
            }
            merged.devices.push(device.clone());
        }
        if let Some(resources) = adjust.resources.as_ref() {
            merge_resources(container.resources.mut_or_insert_default(), resources);
            merge_resources(merged.resources.mut_or_insert_default(), resources);
        }
        if !adjust.cgroups_path.is_empty() {
            container.cgroups_path = adjust.cgroups_path.clone();
            merged.cgroups_path = adjust.cgroups_path.clone();
        }
        set_simple(
            &adjust.oom_score_adj,
            &mut container.oom_score_adj,
            &mut merged.oom_score_adj,
        );
        set_simple(
            &adjust.io_priority,
            &mut container.io_priority,
            &mut merged.io_priority,
        );
        set_simple(
            &adjust.seccomp_policy,
            &mut container.seccomp_policy,
            &mut merged.seccomp_policy,
        );
        set_simple(
            &adjust.scheduler,
            &mut container.scheduler,
            &mut merged.scheduler,
        );
        if adjust.memory_policy.is_some() {
            merged.memory_policy = adjust.memory_policy.clone();
        }
        for ns in &adjust.namespaces {
            let (kind, removal) = split_marker(&ns.type_);
            container.namespaces.retain(|n| n.type_ != kind);
            merged
                .namespaces
                .retain(|n| split_marker(&n.type_).0 != kind);
            if !removal {
                container.namespaces.push(ns.clone());
            }
            merged.namespaces.push(ns.clone());
        }
        for (key, value) in sorted(&adjust.sysctl) {
            let (name, removal) = split_marker(key);
            if removal {
                container.sysctl.remove(name);
            } else {
                container.sysctl.insert(name.to_string(), value.clone());
            }
            merged.sysctl.insert(key.clone(), value.clone());
        }
        for (key, device) in sorted(&adjust.net_devices) {
            let (name, removal) = split_marker(key);
            if removal {
                container.net_devices.remove(name);
            } else {
                container
                    .net_devices
                    .insert(name.to_string(), device.clone());
            }
            merged.net_devices.insert(key.clone(), device.clone());
        }
        if let Some(rdt) = adjust.rdt.as_ref() {
            container.rdt = if rdt.remove {
                MessageField::none()
            } else {
                adjust.rdt.clone()
            };
            merged.rdt = adjust.rdt.clone();
        }
    }
}

/// Splits a removal marker off a key.
pub fn split_marker(key: &str) -> (&str, bool) {
    match key.strip_prefix(REMOVAL_MARKER) {
        Some(rest) => (rest, true),
        None => (key, false),
    }
}

fn sorted_keys<V>(map: &HashMap<String, V>) -> Vec<&str> {
    let mut keys: Vec<&str> = map.keys().map(String::as_str).collect();
    keys.sort_unstable();
    keys
}

fn sorted<V>(map: &HashMap<String, V>) -> Vec<(&String, &V)> {
    let mut entries: Vec<_> = map.iter().collect();
    entries.sort_by(|a, b| a.0.cmp(b.0));
    entries
}

fn set_simple<T: Clone>(
    value: &MessageField<T>,
    container: &mut MessageField<T>,
    merged: &mut MessageField<T>,
) {
    if value.is_some() {
        *container = value.clone();
        *merged = value.clone();
    }
}

fn hook_count(hooks: &Hooks) -> usize {
    hooks.prestart.len()
        + hooks.create_runtime.len()
        + hooks.create_container.len()
        + hooks.start_container.len()
        + hooks.poststart.len()
        + hooks.poststop.len()
}

fn append_hooks(target: &mut Hooks, hooks: &Hooks) {
    target.prestart.extend(hooks.prestart.iter().cloned());
    target
        .create_runtime
        .extend(hooks.create_runtime.iter().cloned());
    target
        .create_container
        .extend(hooks.create_container.iter().cloned());
    target
        .start_container
        .extend(hooks.start_container.iter().cloned());
    target.poststart.extend(hooks.poststart.iter().cloned());
    target.poststop.extend(hooks.poststop.iter().cloned());
}

/// The simple resource fields that `resources` sets.
pub fn resource_fields_set(resources: &LinuxResources) -> Vec<Field> {
    let mut fields = Vec::new();
    if let Some(m) = resources.memory.as_ref() {
        let memory = [
            (Field::MemLimit, m.limit.is_some()),
            (Field::MemReservation, m.reservation.is_some()),
            (Field::MemSwapLimit, m.swap.is_some()),
            (Field::MemKernelLimit, m.kernel.is_some()),
            (Field::MemTCPLimit, m.kernel_tcp.is_some()),
            (Field::MemSwappiness, m.swappiness.is_some()),
            (Field::MemDisableOomKiller, m.disable_oom_killer.is_some()),
            (Field::MemUseHierarchy, m.use_hierarchy.is_some()),
        ];
        fields.extend(memory.into_iter().filter(|f| f.1).map(|f| f.0));
    }
    if let Some(c) = resources.cpu.as_ref() {
        let cpu = [
            (Field::CPUShares, c.shares.is_some()),
            (Field::CPUQuota, c.quota.is_some()),
            (Field::CPUPeriod, c.period.is_some()),
            (Field::CPURealtimeRuntime, c.realtime_runtime.is_some()),
            (Field::CPURealtimePeriod, c.realtime_period.is_some()),
            (Field::CPUSetCPUs, !c.cpus.is_empty()),
            (Field::CPUSetMems, !c.mems.is_empty()),
        ];
        fields.extend(cpu.into_iter().filter(|f| f.1).map(|f| f.0));
    }
    let rest = [
        (Field::PidsLimit, resources.pids.is_some()),
        (Field::BlockioClass, resources.blockio_class.is_some()),
        (Field::RdtClass, resources.rdt_class.is_some()),
    ];
    fields.extend(rest.into_iter().filter(|f| f.1).map(|f| f.0));
    fields
}

/// Sets in `target` every knob that `update` sets; leaves the rest.
pub fn merge_resources(target: &mut LinuxResources, update: &LinuxResources) {
    if let Some(m) = update.memory.as_ref() {
        let t = target.memory.mut_or_insert_default();
        overlay(&mut t.limit, &m.limit);
        overlay(&mut t.reservation, &m.reservation);
        overlay(&mut t.swap, &m.swap);
        overlay(&mut t.kernel, &m.kernel);
        overlay(&mut t.kernel_tcp, &m.kernel_tcp);
        overlay(&mut t.swappiness, &m.swappiness);
        overlay(&mut t.disable_oom_killer, &m.disable_oom_killer);
        overlay(&mut t.use_hierarchy, &m.use_hierarchy);
    }
    if let Some(c) = update.cpu.as_ref() {
        let t = target.cpu.mut_or_insert_default();
        overlay(&mut t.shares, &c.shares);
        overlay(&mut t.quota, &c.quota);
        overlay(&mut t.period, &c.period);
        overlay(&mut t.realtime_runtime, &c.realtime_runtime);
        overlay(&mut t.realtime_period, &c.realtime_period);
        if !c.cpus.is_empty() {
            t.cpus = c.cpus.clone();
        }
        if !c.mems.is_empty() {
            t.mems = c.mems.clone();
        }
    }
    for limit in &update.hugepage_limits {
        target
            .hugepage_limits
            .retain(|l| l.page_size != limit.page_size);
        target.hugepage_limits.push(limit.clone());
    }
    overlay(&mut target.blockio_class, &update.blockio_class);
    overlay(&mut target.rdt_class, &update.rdt_class);
    overlay(&mut target.pids, &update.pids);
    for (key, value) in &update.unified {
        target.unified.insert(key.clone(), value.clone());
    }
    // Device rules accumulate, as the runtime's generator appends them: a
    // later plugin's rules never erase an earlier one's (a deny among them).
    target.devices.extend(update.devices.iter().cloned());
}

fn overlay<T: Clone>(target: &mut MessageField<T>, value: &MessageField<T>) {
    if value.is_some() {
        *target = value.clone();
    }
}

/// Applies a resource update to a container.
pub fn apply_update(container: &mut Container, update: &ContainerUpdate) {
    if let Some(resources) = update.linux.as_ref().and_then(|l| l.resources.as_ref()) {
        let linux: &mut LinuxContainer = container.linux.mut_or_insert_default();
        merge_resources(linux.resources.mut_or_insert_default(), resources);
    }
}

/// The resource knobs an update sets.
fn update_claims(update: &ContainerUpdate) -> Claims<'_> {
    let resources = update.linux.as_ref().and_then(|l| l.resources.as_ref());
    Claims {
        fields: resources.into_iter().flat_map(resource_claims).collect(),
        hooks: false,
    }
}

/// Combines the updates of several plugins to existing containers, per
/// container, with the same ownership rules as adjustments.
#[derive(Clone, Debug, Default)]
pub struct UpdateMerge {
    updates: Vec<ContainerUpdate>,
    owners: HashMap<String, Owners>,
}

/// An update that cannot be merged.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum UpdateError {
    /// The update names the container whose creation is being answered.
    #[error("plugin {plugin:?} asked to update container {id} while it is being created")]
    ContainerBeingCreated {
        /// The plugin.
        plugin: String,
        /// The container.
        id: String,
    },
    /// Another plugin updated the same knob.
    #[error(transparent)]
    Conflict(#[from] Conflict),
}

impl UpdateMerge {
    /// Starts from the update the runtime itself was asked for; plugins
    /// may override it without conflicting with the runtime.
    pub fn with_request(update: ContainerUpdate) -> Self {
        UpdateMerge {
            updates: vec![update],
            owners: HashMap::new(),
        }
    }

    /// Adds `plugin`'s updates; `creating` is the container being created,
    /// which may not be updated. On an error nothing of them is added.
    pub fn apply(
        &mut self,
        plugin: &str,
        updates: &[ContainerUpdate],
        creating: Option<&str>,
    ) -> Result<(), UpdateError> {
        if let Some(update) = updates
            .iter()
            .find(|u| Some(u.container_id.as_str()) == creating)
        {
            return Err(UpdateError::ContainerBeingCreated {
                plugin: plugin.to_string(),
                id: update.container_id.clone(),
            });
        }
        if let Some(conflict) = self.conflict(plugin, updates) {
            return Err(conflict.into());
        }
        for update in updates {
            self.add(plugin, update);
        }
        Ok(())
    }

    /// Whether `plugin`'s updates would conflict with the plugins before it.
    pub fn conflict(&self, plugin: &str, updates: &[ContainerUpdate]) -> Option<Conflict> {
        updates.iter().find_map(|update| {
            let owners = self.owners.get(&update.container_id)?;
            owners.conflict(plugin, &update_claims(update))
        })
    }

    fn add(&mut self, plugin: &str, update: &ContainerUpdate) {
        let id = &update.container_id;
        let owners = self.owners.entry(id.clone()).or_default();
        owners
            .claim_all(plugin, &update_claims(update))
            .expect("conflicts are found before anything is added");
        let resources = update.linux.as_ref().and_then(|l| l.resources.as_ref());
        match self.updates.iter_mut().find(|u| &u.container_id == id) {
            Some(existing) => {
                existing.ignore_failure &= update.ignore_failure;
                if let Some(resources) = resources {
                    let linux = existing.linux.mut_or_insert_default();
                    merge_resources(linux.resources.mut_or_insert_default(), resources);
                }
            }
            None => self.updates.push(update.clone()),
        }
    }

    /// The merged updates, one per container.
    pub fn updates(&self) -> &[ContainerUpdate] {
        &self.updates
    }

    /// Owners per updated container.
    pub fn owners(&self) -> impl Iterator<Item = (&str, &Owners)> {
        self.owners.iter().map(|(id, o)| (id.as_str(), o))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{Hook, KeyValue, LinuxMemory, Mount, OptionalInt64, POSIXRlimit};

    fn env(key: &str, value: &str) -> KeyValue {
        KeyValue {
            key: key.into(),
            value: value.into(),
            ..Default::default()
        }
    }

    fn memory_limit(limit: i64) -> LinuxContainerAdjustment {
        LinuxContainerAdjustment {
            resources: Some(LinuxResources {
                memory: Some(LinuxMemory {
                    limit: Some(OptionalInt64 {
                        value: limit,
                        ..Default::default()
                    })
                    .into(),
                    ..Default::default()
                })
                .into(),
                ..Default::default()
            })
            .into(),
            ..Default::default()
        }
    }

    fn container() -> Container {
        Container {
            id: "c1".into(),
            env: vec!["PATH=/bin".into(), "SECRET=x".into()],
            annotations: [("a".to_string(), "1".to_string())].into(),
            ..Default::default()
        }
    }

    #[test]
    fn later_plugins_see_earlier_changes_and_removals() {
        let first = ContainerAdjustment {
            env: vec![env("-SECRET", ""), env("ADDED", "1")],
            annotations: [
                ("-a".to_string(), String::new()),
                ("b".to_string(), "2".to_string()),
            ]
            .into(),
            ..Default::default()
        };
        let mut merge = AdjustmentMerge::new(container());
        merge.apply("10-first", &first).unwrap();
        assert_eq!(merge.container.env, ["PATH=/bin", "ADDED=1"]);
        assert_eq!(
            merge.container.annotations.get("b").map(String::as_str),
            Some("2")
        );
        assert!(!merge.container.annotations.contains_key("a"));
        assert_eq!(merge.merged.env, [env("-SECRET", ""), env("ADDED", "1")]);
        assert_eq!(
            merge.owners.entry_owner(Field::Env, "SECRET"),
            Some("10-first")
        );
    }

    #[test]
    fn a_second_plugin_touching_an_owned_entry_conflicts_naming_both() {
        let cases: [(&str, ContainerAdjustment, &str); 4] = [
            (
                "env",
                ContainerAdjustment {
                    env: vec![env("X", "1")],
                    ..Default::default()
                },
                "plugins \"20-b\" and \"10-a\" both tried to set Env X",
            ),
            (
                "removed env",
                ContainerAdjustment {
                    env: vec![env("-X", "")],
                    ..Default::default()
                },
                "plugins \"20-b\" and \"10-a\" both tried to set Env X",
            ),
            (
                "memory limit",
                ContainerAdjustment {
                    linux: Some(memory_limit(1 << 20)).into(),
                    ..Default::default()
                },
                "plugins \"20-b\" and \"10-a\" both tried to set MemLimit",
            ),
            (
                "mount",
                ContainerAdjustment {
                    mounts: vec![Mount {
                        destination: "/data".into(),
                        ..Default::default()
                    }],
                    ..Default::default()
                },
                "plugins \"20-b\" and \"10-a\" both tried to set Mounts /data",
            ),
        ];
        for (name, adjust, want) in cases {
            let mut merge = AdjustmentMerge::new(container());
            merge.apply("10-a", &adjust).unwrap();
            let before = merge.clone();
            let err = merge.apply("20-b", &adjust).unwrap_err();
            assert_eq!(err.to_string(), want, "case {name}");
            assert_eq!(merge.merged, before.merged, "case {name}: half applied");
            assert_eq!(merge.owners, before.owners, "case {name}: half claimed");
            // The owner itself may set it again.
            merge.apply("10-a", &adjust).unwrap();
        }
    }

    #[test]
    fn an_answer_with_one_conflicting_entry_applies_nothing_of_the_rest() {
        let mut merge = AdjustmentMerge::new(container());
        let first = ContainerAdjustment {
            env: vec![env("Z", "1")],
            ..Default::default()
        };
        merge.apply("10-a", &first).unwrap();
        let second = ContainerAdjustment {
            env: vec![env("A", "fresh"), env("Z", "2")],
            annotations: [("fresh".to_string(), "1".to_string())].into(),
            ..Default::default()
        };
        assert_eq!(
            merge.conflict("20-b", &second).map(|c| c.to_string()),
            Some("plugins \"20-b\" and \"10-a\" both tried to set Env Z".to_string())
        );
        merge.apply("20-b", &second).unwrap_err();
        assert_eq!(merge.container.env, ["PATH=/bin", "SECRET=x", "Z=1"]);
        assert!(!merge.container.annotations.contains_key("fresh"));
        assert_eq!(merge.owners.entry_owner(Field::Env, "A"), None);
    }

    #[test]
    fn hooks_accumulate_and_rlimits_are_owned_per_type() {
        let hooks = ContainerAdjustment {
            hooks: Some(Hooks {
                prestart: vec![Hook {
                    path: "/bin/hook".into(),
                    ..Default::default()
                }],
                ..Default::default()
            })
            .into(),
            rlimits: vec![POSIXRlimit {
                type_: "RLIMIT_NOFILE".into(),
                hard: 2,
                soft: 1,
                ..Default::default()
            }],
            ..Default::default()
        };
        let only_hooks = ContainerAdjustment {
            hooks: hooks.hooks.clone(),
            ..Default::default()
        };
        let mut merge = AdjustmentMerge::new(container());
        merge.apply("10-a", &hooks).unwrap();
        merge.apply("20-b", &only_hooks).unwrap();
        assert_eq!(merge.container.hooks.prestart.len(), 2);
        let owners = merge.owners.to_field_owners();
        assert_eq!(
            owners.simple.get(&(Field::OciHooks as i32)).unwrap(),
            "10-a,20-b"
        );
        assert_eq!(
            merge.apply("20-b", &hooks).unwrap_err().to_string(),
            "plugins \"20-b\" and \"10-a\" both tried to set Rlimits RLIMIT_NOFILE"
        );
    }

    #[test]
    fn a_later_plugins_device_rules_never_erase_an_earlier_ones() {
        let rule = |allow: bool| crate::api::LinuxDeviceCgroup {
            allow,
            type_: "c".into(),
            access: "rwm".into(),
            ..Default::default()
        };
        let with_rule = |allow: bool| ContainerAdjustment {
            linux: Some(LinuxContainerAdjustment {
                resources: Some(LinuxResources {
                    devices: vec![rule(allow)],
                    ..Default::default()
                })
                .into(),
                ..Default::default()
            })
            .into(),
            ..Default::default()
        };
        let mut merge = AdjustmentMerge::new(container());
        merge.apply("10-a", &with_rule(false)).unwrap();
        merge.apply("20-b", &with_rule(true)).unwrap();
        let rules = &merge.merged.linux.resources.devices;
        assert_eq!(
            rules.iter().map(|r| r.allow).collect::<Vec<_>>(),
            [false, true]
        );
    }

    #[test]
    fn updates_merge_per_container_and_refuse_the_one_being_created() {
        let update = |id: &str, ignore: bool| ContainerUpdate {
            container_id: id.into(),
            linux: Some(crate::api::LinuxContainerUpdate {
                resources: memory_limit(1 << 20).resources,
                ..Default::default()
            })
            .into(),
            ignore_failure: ignore,
            ..Default::default()
        };
        let mut merge = UpdateMerge::default();
        merge
            .apply("10-a", &[update("other", true)], Some("new"))
            .unwrap();
        assert_eq!(
            merge
                .apply("20-b", &[update("other", false)], Some("new"))
                .unwrap_err()
                .to_string(),
            "plugins \"20-b\" and \"10-a\" both tried to set MemLimit"
        );
        assert_eq!(
            merge
                .apply("20-b", &[update("new", false)], Some("new"))
                .unwrap_err()
                .to_string(),
            "plugin \"20-b\" asked to update container new while it is being created"
        );
        assert_eq!(merge.updates().len(), 1);
    }
}
