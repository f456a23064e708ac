//! Grant suggestions: from answers a guest gave (in shadow mode, or to
//! test events), the narrowest grants that admit every one of them. Each
//! change yields the grant of exactly what it asked for, as the check will
//! judge it (a mount by what the runtime makes of it, a device by its type
//! and numbers); many annotation keys under one prefix become a pattern.
//! Nothing is suggested that no answer asked for, and what the check
//! refuses whatever the grants (a `..` path, a key with `=`, a NUL, an
//! update of a container the guest may not see) is noted, not granted.
//! Guest text reaches the suggestion only as TOML strings and quoted keys,
//! and notes only escaped: a suggestion is pasted into a configuration.

use std::collections::{BTreeMap, BTreeSet};

use nri_proto::{
    adjust::split_marker,
    api::{ContainerAdjustment, ContainerEviction, ContainerUpdate, LinuxResources},
};

use super::{
    check::{hook_stages, Family, NAMESPACE_TYPES},
    effective, instructions,
    model::{
        Bounds, DeviceGrant, DeviceRuleGrant, Grants, HookGrant, HookStage, MountGrant,
        NamespaceGrant, Patterns, ReadGrants, SchedulerGrant, UpdateScope,
    },
};

/// Keys under one prefix from which on a pattern of the prefix is
/// suggested instead of each key.
pub const KEYS_BEFORE_PATTERN: usize = 8;

/// One answer as observed.
#[derive(Clone, Copy, Debug)]
pub struct Observed<'a> {
    /// Its changes to the container being created.
    pub adjust: Option<&'a ContainerAdjustment>,
    /// Its updates of containers.
    pub updates: &'a [ContainerUpdate],
    /// Its evictions.
    pub evictions: &'a [ContainerEviction],
    /// The narrowest `updates` grant its updates need.
    pub scope: UpdateScope,
    /// Containers its updates and evictions name that the guest may not
    /// see: no grant admits those, so nothing of them is suggested.
    pub unseen: &'a [String],
    /// Whether it answered a validation.
    pub validated: bool,
    /// A validator's reason to reject.
    pub rejection: Option<&'a str>,
}

/// Which containers an answer's updates and evictions name, beyond the
/// one an UpdateContainer is about.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Reach {
    /// The narrowest `updates` grant its updates need.
    pub scope: UpdateScope,
    /// Containers its updates and evictions name that the guest may not
    /// see (outside its scope, gone, the one being created): no grant
    /// admits them.
    pub unseen: Vec<String>,
}

/// The grant families (`env`, `mounts`, ...) one answer needs.
pub fn families_of(answer: Observed<'_>) -> Vec<&'static str> {
    let mut suggestion = Suggestion::default();
    suggestion.observe(answer);
    suggestion.needed.into_keys().collect()
}

/// Grants that admit the answers observed so far.
#[derive(Debug, Default)]
pub struct Suggestion {
    keys: BTreeMap<&'static str, BTreeSet<String>>,
    grants: Grants,
    /// Answers that needed each grant key.
    needed: BTreeMap<&'static str, u64>,
    /// Why some changes have no grant.
    notes: BTreeSet<String>,
    answers: u64,
    /// Answers that needed any grant.
    changing: u64,
    /// Validations answered by accepting.
    accepted: u64,
}

/// What one answer asks of one grant family, while it is observed.
struct Asks<'s> {
    suggestion: &'s mut Suggestion,
    touched: BTreeSet<&'static str>,
}

impl Suggestion {
    /// Takes one answer in.
    pub fn observe(&mut self, answer: Observed<'_>) {
        self.answers += 1;
        if let Some(why) = inadmissible(&answer) {
            self.notes.insert(why);
            return;
        }
        let mut asks = Asks {
            suggestion: self,
            touched: BTreeSet::new(),
        };
        if let Some(adjust) = answer.adjust {
            asks.adjustment(adjust);
        }
        let seen = |id: &str| !answer.unseen.iter().any(|u| u == id);
        if !answer.unseen.is_empty() {
            asks.note(format!(
                "updates or evictions of containers it may not see (outside its scope, gone, or the one being created): {:?}",
                answer.unseen
            ));
        }
        for update in answer.updates.iter().filter(|u| seen(&u.container_id)) {
            let resources = update.linux.as_ref().and_then(|l| l.resources.as_ref());
            if let Some(resources) = resources {
                asks.resources(resources);
            }
        }
        if answer.scope != UpdateScope::None {
            asks.touch("updates");
            let scope = &mut asks.suggestion.grants.updates;
            *scope = (*scope).max(answer.scope);
        }
        if answer.evictions.iter().any(|e| seen(&e.container_id)) {
            asks.touch("evictions");
            asks.suggestion.grants.evictions = true;
        }
        match (answer.validated, answer.rejection) {
            (true, Some(_)) => {
                asks.touch("validate");
                asks.suggestion.grants.validate = true;
            }
            (true, None) => asks.suggestion.accepted += 1,
            (false, _) => {}
        }
        let touched = asks.touched;
        if !touched.is_empty() {
            self.changing += 1;
        }
        for key in touched {
            *self.needed.entry(key).or_default() += 1;
        }
    }

    /// The grant families the answers needed, each with how many answers
    /// needed it.
    pub fn needed(&self) -> &BTreeMap<&'static str, u64> {
        &self.needed
    }

    /// Changes no grant admits as asked, and why; and what the operator
    /// should decide that no answer showed.
    pub fn notes(&self) -> Vec<String> {
        let mut notes: Vec<String> = self.notes.iter().cloned().collect();
        if self.accepted > 0 && !self.grants.validate {
            notes.push(format!(
                "it validated {} containers and rejected none: `validate = true` lets it reject; without it, it is not asked",
                self.accepted
            ));
        }
        notes
    }

    /// The suggested grants.
    pub fn grants(&self) -> Grants {
        let mut grants = self.grants.clone();
        for (key, values) in &self.keys {
            // Only annotation keys come in families a prefix names; a
            // prefix of env names or CDI devices admits all.
            let prefixes = (*key == "annotations").then_some(Family::Annotations);
            *key_field(&mut grants, key) = patterns_of(values, prefixes);
        }
        grants
    }

    /// The suggested grants as lines of a grants table: each key that is
    /// granted anything, with its value as inline TOML (none, if they
    /// cannot be written, which [`Self::render`] says).
    pub fn lines(&self) -> Vec<(String, String)> {
        section_lines(&self.grants(), &Grants::default()).unwrap_or_default()
    }

    /// The plugin's section as TOML: its grants, each line with the number
    /// of answers that needed it, and the read grants it declares.
    pub fn render(&self, name: &str, reads: Option<&ReadGrants>) -> String {
        let changing = self.changing;
        let mut text = format!(
            "# Suggested from {} answers, {changing} of them asking for changes: \
             each grant admits what they asked, no more.\n",
            self.answers
        );
        for note in self.notes() {
            text.push_str(&format!("# not granted: {note}\n"));
        }
        text.push_str(&format!("[plugins.{name}]\n"));
        match reads.map(|r| section_lines(r, &ReadGrants::default())) {
            Some(Err(e)) => text.push_str(&format!("# read grants cannot be written: {e}\n")),
            Some(Ok(lines)) if !lines.is_empty() => {
                let fields: Vec<String> = lines.iter().map(|(k, v)| format!("{k} = {v}")).collect();
                text.push_str(&format!(
                    "read = {{ {} }}  # declared by the plugin\n",
                    fields.join(", ")
                ));
            }
            Some(Ok(_)) => text.push_str("# the plugin declares that it reads nothing\n"),
            None => text.push_str(
                "# read grants: none suggested (the plugin declares no reads; see `nri-wasm check`)\n",
            ),
        }
        text.push_str(&format!("\n[plugins.{name}.grants]\n"));
        let lines = section_lines(&self.grants(), &Grants::default()).unwrap_or_else(|e| {
            text.push_str(&format!("# the grants cannot be written: {e}\n"));
            Vec::new()
        });
        for (key, value) in lines {
            let count = self.needed.get(key.as_str()).copied().unwrap_or_default();
            text.push_str(&format!(
                "{key} = {value}  # {count} of {} answers\n",
                self.answers
            ));
        }
        text
    }
}

impl Asks<'_> {
    fn touch(&mut self, key: &'static str) {
        self.touched.insert(key);
    }

    fn note(&mut self, note: String) {
        self.suggestion.notes.insert(note);
    }

    /// A key of a key-pattern family, in its runtime form.
    fn key(&mut self, family: &'static str, key: &str, form: fn(&str) -> Result<(), &'static str>) {
        let (name, _) = split_marker(key);
        if let Err(want) = form(name) {
            return self.note(format!("{family} key {name:?}: the check wants {want}"));
        }
        if name.contains(['*', '?']) {
            return self.note(format!(
                "{family} key {name:?} holds pattern characters: a grant of it admits more"
            ));
        }
        if name.is_empty() || name.starts_with('-') {
            return self.note(format!(
                "{family} key {name:?}: no grant names an empty key or one starting with '-'"
            ));
        }
        self.touch(family);
        self.suggestion
            .keys
            .entry(family)
            .or_default()
            .insert(name.to_string());
    }

    fn switch(&mut self, family: &'static str, set: bool, grant: fn(&mut Grants) -> &mut bool) {
        if set {
            self.touch(family);
            *grant(&mut self.suggestion.grants) = true;
        }
    }

    fn adjustment(&mut self, a: &ContainerAdjustment) {
        for key in a.annotations.keys() {
            self.key("annotations", key, effective::annotation_key);
        }
        for kv in &a.env {
            self.key("env", &kv.key, effective::env_key);
        }
        for mount in &a.mounts {
            self.mount(mount);
        }
        if let Some(hooks) = a.hooks.as_ref() {
            self.hooks(hooks);
        }
        for rlimit in &a.rlimits {
            self.rlimit(rlimit);
        }
        for device in &a.CDI_devices {
            self.key("cdi-devices", &device.name, |_| Ok(()));
        }
        self.switch("args", !a.args.is_empty(), |g| &mut g.args);
        if let Some(linux) = a.linux.as_ref() {
            self.linux(linux);
        }
    }

    fn linux(&mut self, l: &nri_proto::api::LinuxContainerAdjustment) {
        for device in &l.devices {
            self.device(device);
        }
        if let Some(resources) = l.resources.as_ref() {
            self.resources(resources);
        }
        self.switch("cgroups-path", !l.cgroups_path.is_empty(), |g| {
            &mut g.cgroups_path
        });
        if let Some(score) = l.oom_score_adj.as_ref() {
            self.bound("oom-score-adj", score.value, |g| &mut g.oom_score_adj);
        }
        self.switch("io-priority", l.io_priority.is_some(), |g| {
            &mut g.io_priority
        });
        self.switch("seccomp", l.seccomp_policy.is_some(), |g| &mut g.seccomp);
        for namespace in &l.namespaces {
            self.namespace(namespace);
        }
        for key in l.sysctl.keys() {
            self.key("sysctl", key, effective::sysctl_key);
        }
        for key in l.net_devices.keys() {
            self.key("net-devices", key, effective::net_device);
        }
        if let Some(scheduler) = l.scheduler.as_ref() {
            self.scheduler(scheduler);
        }
        self.switch("rdt", l.rdt.is_some(), |g| &mut g.rdt);
        self.switch("memory-policy", l.memory_policy.is_some(), |g| {
            &mut g.memory_policy
        });
    }

    /// Scheduler attributes: their policy and flags listed, each value
    /// other than 0 within bounds.
    fn scheduler(&mut self, s: &nri_proto::api::LinuxScheduler) {
        let (Some(policy), Some(flags)) = (
            effective::scheduler_policy(s),
            effective::scheduler_flags(s),
        ) else {
            return self.note(format!(
                "scheduler policy {:?} or flags {:?}: not the kernel's, the check refuses them",
                s.policy, s.flags
            ));
        };
        if let Err(want) = effective::scheduler_attributes(policy, s) {
            return self.note(format!(
                "scheduler attributes of {policy:?}: runc and the kernel take {want}; the check refuses others"
            ));
        }
        self.touch("scheduler");
        let grant = self
            .suggestion
            .grants
            .scheduler
            .get_or_insert_with(SchedulerGrant::default);
        for item in flags {
            if !grant.flags.contains(&item) {
                grant.flags.push(item);
            }
        }
        grant.flags.sort_unstable();
        if !grant.policies.contains(&policy) {
            grant.policies.push(policy);
            grant.policies.sort_unstable();
        }
        fn scheduler(g: &mut Grants) -> &mut SchedulerGrant {
            g.scheduler.get_or_insert_with(SchedulerGrant::default)
        }
        if s.nice != 0 {
            self.bound("scheduler", s.nice, |g| &mut scheduler(g).nice);
        }
        if s.priority != 0 {
            self.bound("scheduler", s.priority, |g| &mut scheduler(g).priority);
        }
        for (value, which) in [(s.runtime, 0), (s.deadline, 1), (s.period, 2)] {
            if value != 0 {
                self.bound("scheduler", value, |g| {
                    let g = scheduler(g);
                    match which {
                        0 => &mut g.runtime,
                        1 => &mut g.deadline,
                        _ => &mut g.period,
                    }
                });
            }
        }
    }

    /// Widens the bounds at `field` to take `value`.
    fn bound<T: Copy + Ord + TryInto<i64> + std::fmt::Display>(
        &mut self,
        family: &'static str,
        value: T,
        field: impl FnOnce(&mut Grants) -> &mut Option<Bounds<T>>,
    ) {
        if value.try_into().is_err() {
            return self.note(format!(
                "{family} value {value}: a configuration holds numbers up to {}",
                i64::MAX
            ));
        }
        self.touch(family);
        let bounds = field(&mut self.suggestion.grants);
        *bounds = Some(match *bounds {
            Some(b) => Bounds {
                min: b.min.min(value),
                max: b.max.max(value),
            },
            None => Bounds {
                min: value,
                max: value,
            },
        });
    }

    fn resources(&mut self, r: &LinuxResources) {
        if let Some(m) = r.memory.as_ref() {
            let memory = [
                (&m.limit, 0),
                (&m.reservation, 1),
                (&m.swap, 2),
                (&m.kernel, 3),
                (&m.kernel_tcp, 3),
            ];
            for (value, which) in memory {
                if let Some(v) = value.as_ref() {
                    self.bound("memory", v.value, |g| match which {
                        0 => &mut g.memory.limit,
                        1 => &mut g.memory.reservation,
                        2 => &mut g.memory.swap,
                        _ => &mut g.memory.kernel,
                    });
                }
            }
            if let Some(v) = m.swappiness.as_ref() {
                self.bound("memory", v.value, |g| &mut g.memory.swappiness);
            }
            self.switch("memory", m.disable_oom_killer.is_some(), |g| {
                &mut g.memory.oom_kill
            });
            self.switch("memory", m.use_hierarchy.is_some(), |g| {
                &mut g.memory.use_hierarchy
            });
        }
        if let Some(c) = r.cpu.as_ref() {
            if let Some(v) = c.shares.as_ref() {
                self.bound("cpu", v.value, |g| &mut g.cpu.shares);
            }
            if let Some(v) = c.quota.as_ref() {
                self.bound("cpu", v.value, |g| &mut g.cpu.quota);
            }
            if let Some(v) = c.period.as_ref() {
                self.bound("cpu", v.value, |g| &mut g.cpu.period);
            }
            let cpuset = !c.cpus.is_empty() || !c.mems.is_empty();
            self.switch("cpu", cpuset, |g| &mut g.cpu.cpuset);
            let realtime = c.realtime_runtime.is_some() || c.realtime_period.is_some();
            self.switch("cpu", realtime, |g| &mut g.cpu.realtime);
        }
        for limit in &r.hugepage_limits {
            self.key("hugepages", &limit.page_size, |_| Ok(()));
        }
        if let Some(class) = r.blockio_class.as_ref() {
            self.key("blockio-class", &class.value, |_| Ok(()));
        }
        if let Some(class) = r.rdt_class.as_ref() {
            self.key("rdt-class", &class.value, |_| Ok(()));
        }
        for key in r.unified.keys() {
            self.key("unified", key, effective::unified_key);
        }
        for rule in &r.devices {
            self.device_rule(rule);
        }
        if let Some(pids) = r.pids.as_ref() {
            self.bound("pids", pids.limit, |g| &mut g.pids);
        }
    }

    fn rlimit(&mut self, r: &nri_proto::api::POSIXRlimit) {
        let named = r
            .type_
            .strip_prefix("RLIMIT_")
            .is_some_and(|rest| !rest.is_empty() && rest.bytes().all(|b| b.is_ascii_uppercase()));
        if !named {
            return self.note(format!("rlimit {:?}: not an RLIMIT_ name", r.type_));
        }
        if r.soft > r.hard {
            return self.note(format!(
                "rlimit {} soft {} above hard {}: the check refuses it",
                r.type_, r.soft, r.hard
            ));
        }
        if i64::try_from(r.hard).is_err() {
            return self.note(format!(
                "rlimit {} hard {}: a configuration holds limits up to {} (unlimited cannot be granted)",
                r.type_,
                r.hard,
                i64::MAX
            ));
        }
        self.touch("rlimits");
        let max = self
            .suggestion
            .grants
            .rlimits
            .entry(r.type_.clone())
            .or_default();
        *max = (*max).max(r.hard);
    }

    fn mount(&mut self, mount: &nri_proto::api::Mount) {
        let (destination, removal) = split_marker(&mount.destination);
        if removal {
            return self.removal("mounts", destination, |g, d| {
                if !g.mounts.iter().any(|m| m.destination.matches(d)) {
                    g.mounts.push(MountGrant {
                        destination: exact(d),
                        // A tmpfs from no source: nothing can be added.
                        source: Some(Patterns::default()),
                        types: vec!["tmpfs".into()],
                        read_write: false,
                        options: Patterns::default(),
                    });
                }
            });
        }
        let made = match effective::effective_mount(mount) {
            Ok(made) => made,
            Err(want) => {
                return self.note(format!(
                    "mount at {:?}: the check wants {want}",
                    mount.destination
                ))
            }
        };
        let sources: Vec<&str> = match &made.host_paths[..] {
            [] => vec![mount.source.as_str()],
            paths => paths.to_vec(),
        };
        let patterned = sources
            .iter()
            .chain([&destination])
            .chain(&made.granted_options)
            .find(|s| s.contains(['*', '?']));
        if let Some(text) = patterned {
            return self.note(format!(
                "mount at {destination:?}: {text:?} holds pattern characters"
            ));
        }
        let source = match (made.kind, sources.contains(&"")) {
            // A tmpfs without a source: any source, all the same to it.
            ("tmpfs", true) => None,
            _ => match Patterns::new(&sources) {
                Ok(source) => Some(source),
                Err(why) => return self.note(format!("mount at {destination:?}: source {why}")),
            },
        };
        let options = match Patterns::new(&made.granted_options) {
            Ok(options) => options,
            Err(why) => return self.note(format!("mount at {destination:?}: option {why}")),
        };
        self.touch("mounts");
        let grant = MountGrant {
            destination: exact(destination),
            source,
            types: vec![made.kind.to_string()],
            read_write: made.writable,
            options,
        };
        let mounts = &mut self.suggestion.grants.mounts;
        // A removal-only grant of the destination gives way.
        mounts.retain(|m| {
            !(m.destination == grant.destination
                && m.types == ["tmpfs"]
                && m.source.as_ref().is_some_and(Patterns::is_empty))
        });
        if !mounts.contains(&grant) {
            mounts.push(grant);
        }
    }

    /// A removal (`-key`) needs a grant that names the key; `add` adds one
    /// that admits nothing else, unless one names it already.
    fn removal(&mut self, family: &'static str, key: &str, add: fn(&mut Grants, &str)) {
        if let Err(want) = effective::clean_absolute(key) {
            return self.note(format!("removal of {key:?}: the check wants {want}"));
        }
        if key.contains(['*', '?']) {
            return self.note(format!(
                "removal of {key:?} holds pattern characters: a grant of it admits more"
            ));
        }
        self.touch(family);
        add(&mut self.suggestion.grants, key);
    }

    fn hooks(&mut self, hooks: &nri_proto::api::Hooks) {
        for (stage, list) in hook_stages(hooks) {
            for hook in list {
                self.hook(stage, hook);
            }
        }
    }

    fn hook(&mut self, stage: HookStage, hook: &nri_proto::api::Hook) {
        let names: Option<Vec<&str>> = hook
            .env
            .iter()
            .map(|e| e.split_once('=').map(|(n, _)| n))
            .collect();
        let well_formed = effective::clean_absolute(&hook.path).is_ok()
            && names
                .as_ref()
                .is_some_and(|n| n.iter().all(|n| effective::env_key(n).is_ok()));
        let names_ref = names.as_deref().unwrap_or_default();
        let plain = hook
            .args
            .iter()
            .map(String::as_str)
            .chain([hook.path.as_str()])
            .chain(names_ref.iter().copied())
            .all(|t| !t.is_empty() && !t.contains(['*', '?']));
        if !well_formed || !plain {
            return self.note(format!(
                "hook {:?}: not a clean path with NAME=value env and plain arguments",
                hook.path
            ));
        }
        let env = match Patterns::new(&names.unwrap_or_default()) {
            Ok(env) => env,
            Err(why) => return self.note(format!("hook {:?}: env name {why}", hook.path)),
        };
        let args = match (!hook.args.is_empty() && hook.args != [hook.path.clone()])
            .then(|| Patterns::of_values(&hook.args))
            .transpose()
        {
            Ok(args) => args,
            Err(why) => return self.note(format!("hook {:?}: argument {why}", hook.path)),
        };
        self.touch("hooks");
        // No grant admits a timeout outside 1..=MAX_HOOK_TIMEOUT.
        let timeout = hook.timeout.as_ref().map(|t| t.value);
        if timeout.is_some_and(|t| !(1..=effective::MAX_HOOK_TIMEOUT).contains(&t)) {
            return self.note(format!(
                "hook {:?}: a timeout of {} s, which no grant admits (1 to {} s)",
                hook.path,
                timeout.unwrap_or_default(),
                effective::MAX_HOOK_TIMEOUT
            ));
        }
        let hooks = &mut self.suggestion.grants.hooks;
        let same = hooks
            .iter_mut()
            .find(|g| g.path.sources() == [hook.path.as_str()] && g.args == args && g.env == env);
        match same {
            Some(grant) => {
                let stages = grant.stages.get_or_insert_with(Vec::new);
                if !stages.contains(&stage) {
                    stages.push(stage);
                    stages.sort();
                }
                grant.max_timeout = grant.max_timeout.zip(timeout).map(|(a, b)| a.max(b));
            }
            None => hooks.push(HookGrant {
                path: exact(&hook.path),
                stages: Some(vec![stage]),
                args,
                env,
                max_timeout: timeout,
            }),
        }
    }

    fn device(&mut self, device: &nri_proto::api::LinuxDevice) {
        let (path, removal) = split_marker(&device.path);
        if !path.starts_with("/dev/") {
            return self.note(format!("device {path:?}: not under /dev/"));
        }
        if removal {
            return self.removal("devices", path, |g, p| {
                if !g.devices.iter().any(|d| d.path.matches(p)) {
                    g.devices.push(DeviceGrant {
                        path: exact(p),
                        types: Vec::new(),
                        major: Vec::new(),
                        minor: Vec::new(),
                        max_file_mode: None,
                        uid: None,
                        gid: None,
                    });
                }
            });
        }
        if effective::clean_absolute(path).is_err() || path.contains(['*', '?']) {
            return self.note(format!("device {path:?}: not a clean plain path"));
        }
        let mode = device.file_mode.as_ref().map(|m| m.value);
        if mode.is_some_and(|m| m & !0o777 != 0) {
            return self.note(format!("device {path:?}: a mode beyond permission bits"));
        }
        self.touch("devices");
        let owner = |id: Option<u32>| id.filter(|&id| id != 0).map(|id| vec![id]);
        let grant = DeviceGrant {
            path: exact(path),
            types: vec![device.type_.clone()],
            major: vec![device.major],
            minor: vec![device.minor],
            // Unset is 0666, as no bound is; a mode set narrower is the
            // bound.
            max_file_mode: mode.filter(|&m| m != 0o666),
            uid: owner(device.uid.as_ref().map(|u| u.value)),
            gid: owner(device.gid.as_ref().map(|g| g.value)),
        };
        let devices = &mut self.suggestion.grants.devices;
        devices.retain(|d| !(d.path == grant.path && d.types.is_empty()));
        if !devices.contains(&grant) {
            devices.push(grant);
        }
    }

    fn device_rule(&mut self, rule: &nri_proto::api::LinuxDeviceCgroup) {
        self.touch("device-rules");
        let rules = &mut self.suggestion.grants.device_rules;
        let kind = match rule.type_.as_str() {
            "" => "a",
            kind => kind,
        };
        let number = |n: Option<i64>| vec![n.unwrap_or(-1)];
        let (major, minor) = match kind {
            "a" => (Vec::new(), Vec::new()),
            _ => (
                number(rule.major.as_ref().map(|m| m.value)),
                number(rule.minor.as_ref().map(|m| m.value)),
            ),
        };
        let access = match (kind, rule.access.as_str()) {
            ("a", _) | (_, "") => "rwm".to_string(),
            (_, access) => {
                let mut letters: Vec<char> = access.chars().collect();
                letters.sort_unstable();
                letters.dedup();
                letters.into_iter().collect()
            }
        };
        let grant = DeviceRuleGrant {
            types: vec![kind.to_string()],
            major,
            minor,
            access,
            deny: !rule.allow,
        };
        if !rules.contains(&grant) {
            rules.push(grant);
        }
    }

    fn namespace(&mut self, namespace: &nri_proto::api::LinuxNamespace) {
        let (kind, removal) = split_marker(&namespace.type_);
        if !NAMESPACE_TYPES.contains(&kind) {
            return self.note(format!(
                "namespace type {kind:?}: not one of the OCI runtime spec"
            ));
        }
        let path = namespace.path.as_str();
        let plain = !path.contains(['*', '?'])
            && (path.is_empty() || effective::clean_absolute(path).is_ok());
        if !plain {
            return self.note(format!(
                "namespace {kind:?} at {path:?}: not a clean plain path"
            ));
        }
        self.touch("namespaces");
        let namespaces = &mut self.suggestion.grants.namespaces;
        let grant = match namespaces.iter_mut().find(|g| g.types == [kind]) {
            Some(grant) => grant,
            None => {
                namespaces.push(NamespaceGrant {
                    types: vec![kind.to_string()],
                    paths: None,
                    host: false,
                });
                namespaces.last_mut().expect("just pushed")
            }
        };
        if removal {
            grant.host = true;
        } else if !path.is_empty() {
            let mut paths = grant
                .paths
                .as_ref()
                .map(|p| p.sources().to_vec())
                .unwrap_or_default();
            if !paths.iter().any(|p| p == path) {
                paths.push(path.to_string());
            }
            grant.paths = Patterns::of_values(&paths).ok();
        }
    }
}

/// Why the check refuses an answer whatever the grants, if it does: a
/// string or list it cannot take as the runtime would read it.
fn inadmissible(answer: &Observed<'_>) -> Option<String> {
    let messages = answer
        .adjust
        .map(|a| a as &dyn protobuf::MessageDyn)
        .into_iter()
        .chain(
            answer
                .updates
                .iter()
                .map(|u| u as &dyn protobuf::MessageDyn),
        )
        .chain(
            answer
                .evictions
                .iter()
                .map(|e| e as &dyn protobuf::MessageDyn),
        );
    for message in messages {
        if let Some(m) = effective::malformed_in(message) {
            return Some(format!(
                "an answer with {}: the check wants {}",
                m.field, m.want
            ));
        }
    }
    let entries = answer.updates.len().max(answer.evictions.len());
    (entries > effective::MAX_ENTRIES).then(|| {
        format!(
            "an answer with {entries} updates or evictions: the check takes at most {}",
            effective::MAX_ENTRIES
        )
    })
}

/// The grant of exactly one text.
fn exact(text: &str) -> Patterns {
    Patterns::of_values(&[text]).unwrap_or_default()
}

/// The key-pattern field of a grant family.
fn key_field<'g>(grants: &'g mut Grants, key: &str) -> &'g mut Patterns {
    match key {
        "annotations" => &mut grants.annotations,
        "env" => &mut grants.env,
        "cdi-devices" => &mut grants.cdi_devices,
        "hugepages" => &mut grants.hugepages,
        "blockio-class" => &mut grants.blockio_class,
        "rdt-class" => &mut grants.rdt_class,
        "unified" => &mut grants.unified,
        "sysctl" => &mut grants.sysctl,
        "net-devices" => &mut grants.net_devices,
        other => unreachable!("{other} is no key-pattern family"),
    }
}

/// Patterns of observed keys: each key, or, with `prefixes`, the prefix
/// (up to a `/`, `.`, `-` or `_`) of [`KEYS_BEFORE_PATTERN`] or more keys.
fn patterns_of(keys: &BTreeSet<String>, prefixes: Option<Family>) -> Patterns {
    let mut by_prefix: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    let mut patterns = Vec::new();
    for key in keys {
        // No pattern admits an instruction: it is granted by its name.
        if prefixes.is_some_and(|f| instructions::find(instructions::of(f), key).is_some()) {
            patterns.push(key.clone());
            continue;
        }
        let cut = key.rfind(['/', '.', '-', '_']).map_or(0, |at| at + 1);
        by_prefix.entry(&key[..cut]).or_default().push(key);
    }
    for (prefix, keys) in by_prefix {
        if prefixes.is_some() && prefix.len() >= 3 && keys.len() >= KEYS_BEFORE_PATTERN {
            patterns.push(format!("{prefix}*"));
        } else {
            patterns.extend(keys.into_iter().map(str::to_string));
        }
    }
    Patterns::new(&patterns).unwrap_or_default()
}

/// The keys of a grants table that differ from `default`, each with its
/// value as an inline TOML value.
fn section_lines<T: serde::Serialize>(
    value: &T,
    default: &T,
) -> Result<Vec<(String, String)>, String> {
    let table = |v: &T| match toml::Value::try_from(v) {
        Ok(toml::Value::Table(t)) => Ok(t),
        Ok(_) => Err("not a table".to_string()),
        Err(e) => Err(format!("{:?}", e.to_string())),
    };
    Ok(changed(table(value)?, &table(default)?)
        .into_iter()
        .map(|(k, v)| (key(&k), inline(&v)))
        .collect())
}

/// A TOML key: bare when it can be, else a quoted string.
fn key(text: &str) -> String {
    let bare = !text.is_empty()
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if bare {
        return text.to_string();
    }
    let mut quoted = String::from("\"");
    for c in text.chars() {
        match c {
            '"' => quoted.push_str("\\\""),
            '\\' => quoted.push_str("\\\\"),
            c if c.is_control() => quoted.push_str(&format!("\\u{:04X}", c as u32)),
            c => quoted.push(c),
        }
    }
    quoted.push('"');
    quoted
}

/// The entries of `table` that differ from `default`'s, tables within
/// compared the same way: `cpu = { shares = [2, 8] }` without the
/// switches left off.
fn changed(table: toml::Table, default: &toml::Table) -> Vec<(String, toml::Value)> {
    table
        .into_iter()
        .filter(|(k, v)| default.get(k) != Some(v))
        .map(|(k, v)| match (v, default.get(&k)) {
            (toml::Value::Table(inner), Some(toml::Value::Table(base))) => {
                let inner = changed(inner, base).into_iter().collect();
                (k, toml::Value::Table(inner))
            }
            (v, _) => (k, v),
        })
        .collect()
}

/// A TOML value on one line.
fn inline(value: &toml::Value) -> String {
    match value {
        toml::Value::Table(table) => {
            let fields: Vec<String> = table
                .iter()
                .map(|(k, v)| format!("{} = {}", key(k), inline(v)))
                .collect();
            format!("{{ {} }}", fields.join(", "))
        }
        toml::Value::Array(items) => {
            let items: Vec<String> = items.iter().map(inline).collect();
            format!("[{}]", items.join(", "))
        }
        other => other.to_string(),
    }
}
