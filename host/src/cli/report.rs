//! Guest calls in readable form, for `demo` and `test`.

use std::time::Duration;

use nri_proto::{
    adjust::split_marker,
    api::{ContainerAdjustment, LinuxResources},
};
use protobuf::text_format::print_to_string;

use crate::dispatch::{Answer, CallRecord, SlotError};

/// One call: who, how long, and what came of it, one line per item.
pub fn describe_call(record: &CallRecord<'_>) -> Vec<String> {
    let head = format!(
        "{:<22} {:>9}",
        record.guest.to_string(),
        millis(record.elapsed)
    );
    let lines = match (record.shadow, record.answer()) {
        (true, Some(answer)) => describe_shadow(record, answer),
        _ => describe_outcome(record.event, record.outcome),
    };
    let mut lines = lines.into_iter();
    let first = lines.next().unwrap_or_default();
    std::iter::once(format!("{head}  {first}"))
        .chain(lines.map(|line| format!("{:33}{line}", "")))
        .collect()
}

/// A shadow guest's answer: what it would have changed, and what would
/// have been refused.
fn describe_shadow(record: &CallRecord<'_>, answer: &Answer) -> Vec<String> {
    let changes = describe_answer(record.event, answer)
        .into_iter()
        .map(|line| format!("shadow, not applied: {line}"));
    let refused: Vec<String> = match record.outcome {
        Err(SlotError::Refused(refusals, _)) => refusals.iter().map(ToString::to_string).collect(),
        Err(SlotError::Conflict(conflict, _)) => {
            vec![format!("a conflict with an earlier guest: {conflict}")]
        }
        _ => Vec::new(),
    };
    changes
        .chain(
            refused
                .iter()
                .map(|r| format!("shadow, would be REFUSED: {r}")),
        )
        .collect()
}

/// What came of a call of `event`, one line per item.
pub fn describe_outcome(event: &str, outcome: Result<&Answer, &SlotError>) -> Vec<String> {
    match outcome {
        Ok(answer) => describe_answer(event, answer),
        Err(SlotError::Refused(refusals, _)) => refusals
            .iter()
            .map(|r| format!("REFUSED {r}; none of its answer applied"))
            .collect(),
        Err(err) => vec![format!("FAILED: it {err}")],
    }
}

/// Events whose answer can change something.
const ANSWERING: [&str; 5] = [
    "CreateContainer",
    "UpdateContainer",
    "StopContainer",
    "ValidateContainerAdjustment",
    "Synchronize",
];

fn describe_answer(event: &str, answer: &Answer) -> Vec<String> {
    let mut lines = Vec::new();
    if let Some(adjust) = &answer.adjust {
        lines.extend(describe_adjustment(adjust));
    }
    for update in &answer.updates {
        let resources = update.linux.as_ref().and_then(|l| l.resources.as_ref());
        let what = resources.map_or(String::new(), |r| format!(": {}", print_to_string(r)));
        lines.push(format!("updates container {}{what}", update.container_id));
    }
    for eviction in &answer.evictions {
        lines.push(format!(
            "evicts container {} ({})",
            eviction.container_id, eviction.reason
        ));
    }
    if let Some(reason) = &answer.rejection {
        lines.push(format!("rejects: {reason}"));
    }
    if lines.is_empty() {
        let nothing = if ANSWERING.contains(&event) {
            "no change"
        } else {
            "observed"
        };
        lines.push(nothing.to_string());
    }
    lines
}

/// An adjustment, one readable line per change: `+ env NAME=value`, the
/// removals as `- env NAME`; the fields without a line of their own in
/// protobuf's text form.
pub fn describe_adjustment(adjust: &ContainerAdjustment) -> Vec<String> {
    let mut lines = Vec::new();
    for kv in &adjust.env {
        lines.push(entry(&kv.key, "env", format!("={}", kv.value)));
    }
    let mut annotations: Vec<_> = adjust.annotations.iter().collect();
    annotations.sort();
    for (key, value) in annotations {
        lines.push(entry(key, "annotation", format!("={value}")));
    }
    for m in &adjust.mounts {
        let rest = format!(" from {} ({} {})", m.source, m.type_, m.options.join(","));
        lines.push(entry(&m.destination, "mount", rest));
    }
    for r in &adjust.rlimits {
        let rest = format!(" soft {} hard {}", r.soft, r.hard);
        lines.push(entry(&r.type_, "rlimit", rest));
    }
    for d in &adjust.CDI_devices {
        lines.push(entry(&d.name, "CDI device", String::new()));
    }
    if !adjust.args.is_empty() {
        lines.push(format!("+ args {:?}", adjust.args));
    }
    if let Some(hooks) = adjust.hooks.as_ref() {
        for (stage, list) in [
            ("prestart", &hooks.prestart),
            ("createRuntime", &hooks.create_runtime),
            ("createContainer", &hooks.create_container),
            ("startContainer", &hooks.start_container),
            ("poststart", &hooks.poststart),
            ("poststop", &hooks.poststop),
        ] {
            for hook in list {
                lines.push(format!("+ {stage} hook {} {:?}", hook.path, hook.args));
            }
        }
    }
    if let Some(linux) = adjust.linux.as_ref() {
        let mut linux = linux.clone();
        for d in std::mem::take(&mut linux.devices) {
            let rest = format!(" ({} {}:{})", d.type_, d.major, d.minor);
            lines.push(entry(&d.path, "device", rest));
        }
        if let Some(score) = linux.oom_score_adj.take() {
            lines.push(format!("+ oom score adj {}", score.value));
        }
        if let Some(resources) = linux.resources.as_mut() {
            lines.extend(take_common_resources(resources));
            if *resources == Default::default() {
                linux.resources.clear();
            }
        }
        if linux != Default::default() {
            lines.push(format!("+ linux {}", print_to_string(&linux)));
        }
    }
    lines
}

/// Lines for the resources adjusted most (memory limit, CPU shares),
/// taken out of `resources`.
fn take_common_resources(resources: &mut LinuxResources) -> Vec<String> {
    let mut lines = Vec::new();
    if let Some(memory) = resources.memory.as_mut() {
        if let Some(limit) = memory.limit.take() {
            lines.push(format!("+ memory limit {}", memory_size(limit.value)));
        }
        if *memory == Default::default() {
            resources.memory.clear();
        }
    }
    if let Some(cpu) = resources.cpu.as_mut() {
        if let Some(shares) = cpu.shares.take() {
            lines.push(format!("+ cpu shares {}", shares.value));
        }
        if *cpu == Default::default() {
            resources.cpu.clear();
        }
    }
    lines
}

/// `256 MiB`, or bytes when not whole MiB.
pub fn memory_size(bytes: i64) -> String {
    match bytes % (1 << 20) {
        0 => format!("{} MiB", bytes >> 20),
        _ => format!("{bytes} bytes"),
    }
}

/// `+ what key rest`, or `- what key` for a removal.
fn entry(key: &str, what: &str, rest: String) -> String {
    match split_marker(key) {
        (name, true) => format!("- {what} {name}"),
        (name, false) => format!("+ {what} {name}{rest}"),
    }
}

/// `0.123 ms`.
pub fn millis(elapsed: Duration) -> String {
    format!("{:.3} ms", elapsed.as_secs_f64() * 1e3)
}
