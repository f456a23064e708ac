//! Prometheus metrics of the daemon and of each guest: calls by event,
//! call latency, errors by kind, refusals by grant family, instance
//! restarts, loaded and refused plugins, reloads, the manifest each
//! registry guest runs, runtime connection.

use prometheus_client::{
    encoding::{text::encode, EncodeLabelSet},
    metrics::{counter::Counter, family::Family, gauge::Gauge, histogram::Histogram},
    registry::Registry,
};

use crate::{
    dispatch::{CallObserver, CallRecord, SlotError},
    grants::suggest::families_of,
    protocol::RuntimeLink,
    shadow,
};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct GuestEvent {
    guest: String,
    event: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct GuestKind {
    guest: String,
    kind: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct GuestFamily {
    guest: String,
    family: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct GuestField {
    guest: String,
    family: String,
    field: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct GuestLabel {
    guest: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct GuestManifest {
    guest: String,
    manifest: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReloadResult {
    result: &'static str,
}

/// Latency buckets: 50 µs doubling to 1.6 s, the span between a trivial
/// guest call and NRI's 2 s request timeout.
fn latency_histogram() -> Histogram {
    Histogram::new(prometheus_client::metrics::histogram::exponential_buckets(
        50e-6, 2.0, 16,
    ))
}

/// The daemon's metrics and the registry they are served from.
pub struct Metrics {
    registry: Registry,
    calls: Family<GuestEvent, Counter>,
    latency: Family<GuestEvent, Histogram, fn() -> Histogram>,
    errors: Family<GuestKind, Counter>,
    refusals: Family<GuestFamily, Counter>,
    shadow_changes: Family<GuestFamily, Counter>,
    shadow_refusals: Family<GuestField, Counter>,
    restarts: Family<GuestLabel, Counter>,
    guests: Gauge,
    refused_plugins: Gauge,
    reloads: Family<ReloadResult, Counter>,
    connected: Gauge,
    runtime_drops: Counter,
    // Scrapes run concurrently; the counter catches up under this lock.
    drops_counted: std::sync::Mutex<u64>,
    drop_last_frame: Gauge,
    drop_last_message: Gauge,
    registry_guests: Family<GuestManifest, Gauge>,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    /// Fresh metrics, all registered under the `nri_wasm` prefix.
    pub fn new() -> Self {
        let mut metrics = Metrics {
            registry: Registry::with_prefix("nri_wasm"),
            calls: Family::default(),
            latency: Family::new_with_constructor(latency_histogram),
            errors: Family::default(),
            refusals: Family::default(),
            shadow_changes: Family::default(),
            shadow_refusals: Family::default(),
            restarts: Family::default(),
            guests: Gauge::default(),
            refused_plugins: Gauge::default(),
            reloads: Family::default(),
            connected: Gauge::default(),
            runtime_drops: Counter::default(),
            drops_counted: std::sync::Mutex::new(0),
            drop_last_frame: Gauge::default(),
            drop_last_message: Gauge::default(),
            registry_guests: Family::default(),
        };
        let r = &mut metrics.registry;
        r.register(
            "guest_calls",
            "Calls of a guest, by NRI event",
            metrics.calls.clone(),
        );
        r.register(
            "guest_call_duration_seconds",
            "Time from asking a guest to having its checked answer, by NRI event",
            metrics.latency.clone(),
        );
        r.register(
            "guest_errors",
            "Calls of a guest that gave no usable answer, by kind",
            metrics.errors.clone(),
        );
        r.register(
            "guest_refusals",
            "Changes of a guest refused for exceeding its grants, by grant family",
            metrics.refusals.clone(),
        );
        r.register(
            "shadow_changes",
            "Answers of a shadow guest asking to change a grant family, admitted or not; none is applied",
            metrics.shadow_changes.clone(),
        );
        r.register(
            "shadow_refusals",
            "Changes of a shadow guest that its grants would have refused, by family and field",
            metrics.shadow_refusals.clone(),
        );
        r.register(
            "guest_instance_restarts",
            "Instances of a guest created to replace one lost to a fault",
            metrics.restarts.clone(),
        );
        r.register("guests", "Guests loaded", metrics.guests.clone());
        r.register(
            "plugins_refused",
            "Plugins (files or registry references) refused at the latest load",
            metrics.refused_plugins.clone(),
        );
        r.register(
            "reloads",
            "Reloads of the plugin directory and configuration, by result",
            metrics.reloads.clone(),
        );
        r.register(
            "registry_guest_manifest",
            "1 for each guest from a registry, labelled with the manifest digest it runs",
            metrics.registry_guests.clone(),
        );
        r.register(
            "runtime_connected",
            "1 while registered with the container runtime",
            metrics.connected.clone(),
        );
        r.register(
            "runtime_drops",
            "Registered connections the container runtime closed",
            metrics.runtime_drops.clone(),
        );
        r.register(
            "runtime_drop_last_frame_bytes",
            "Payload of the last frame sent before the latest drop by the runtime",
            metrics.drop_last_frame.clone(),
        );
        r.register(
            "runtime_drop_last_message_bytes",
            "Length of the ttrpc message that frame belonged to",
            metrics.drop_last_message.clone(),
        );
        metrics
    }

    /// Records the result of a load: guests loaded and files refused.
    pub fn loaded(&self, guests: usize, refused: usize) {
        self.guests.set(guests as i64);
        self.refused_plugins.set(refused as i64);
    }

    /// Records a reload, applied or failed.
    pub fn reloaded(&self, applied: bool) {
        let result = if applied { "applied" } else { "failed" };
        self.reloads.get_or_create(&ReloadResult { result }).inc();
    }

    /// Records which manifest each registry guest runs (guest id,
    /// `sha256:` digest).
    pub fn registry_guests(&self, running: &[(String, String)]) {
        self.registry_guests.clear();
        for (guest, manifest) in running {
            let labels = GuestManifest {
                guest: guest.clone(),
                manifest: manifest.clone(),
            };
            self.registry_guests.get_or_create(&labels).set(1);
        }
    }

    /// Records the state of the runtime connection: up or not, and the
    /// runtime's drops.
    pub fn runtime_link(&self, link: &RuntimeLink) {
        self.connected.set(i64::from(link.is_connected()));
        let drops = link.drops();
        let mut counted = self.drops_counted.lock().expect("never poisoned");
        self.runtime_drops
            .inc_by(drops.count.saturating_sub(*counted));
        *counted = (*counted).max(drops.count);
        drop(counted);
        if let Some(frame) = drops.last_sent {
            self.drop_last_frame.set(frame.len as i64);
            self.drop_last_message.set(frame.message as i64);
        }
    }

    /// The metrics in the Prometheus/OpenMetrics text format.
    pub fn encode(&self) -> String {
        let mut text = String::new();
        encode(&mut text, &self.registry).expect("writing to a String cannot fail");
        text
    }
}

impl Metrics {
    /// A shadow guest's call: what it would have changed and what would
    /// have been refused; its faults count as any guest's.
    fn shadow_call(&self, record: &CallRecord<'_>) {
        let guest = record.guest.to_string();
        if let Some(answer) = record.answer() {
            let answer = shadow::observed(answer, &record.reach, record.event);
            for family in families_of(answer) {
                let labels = GuestFamily {
                    guest: guest.clone(),
                    family: family.to_string(),
                };
                self.shadow_changes.get_or_create(&labels).inc();
            }
        }
        match record.outcome {
            Err(SlotError::Refused(refusals, _)) => {
                for refusal in refusals {
                    let labels = GuestField {
                        guest: guest.clone(),
                        family: refusal.family.to_string(),
                        field: refusal.field.clone(),
                    };
                    self.shadow_refusals.get_or_create(&labels).inc();
                }
            }
            Err(err) => {
                let kind = err.kind();
                self.errors.get_or_create(&GuestKind { guest, kind }).inc();
            }
            Ok(_) => {}
        }
    }
}

impl CallObserver for Metrics {
    fn call(&self, record: &CallRecord<'_>) {
        let by_event = GuestEvent {
            guest: record.guest.to_string(),
            event: record.event,
        };
        self.calls.get_or_create(&by_event).inc();
        self.latency
            .get_or_create(&by_event)
            .observe(record.elapsed.as_secs_f64());
        if record.restarted {
            self.restarts
                .get_or_create(&GuestLabel {
                    guest: by_event.guest.clone(),
                })
                .inc();
        }
        if record.shadow {
            return self.shadow_call(record);
        }
        let Err(err) = record.outcome else {
            return;
        };
        if let SlotError::Refused(refusals, _) = err {
            for refusal in refusals {
                let family = GuestFamily {
                    guest: by_event.guest.clone(),
                    family: refusal.family.to_string(),
                };
                self.refusals.get_or_create(&family).inc();
            }
        }
        let kind = err.kind();
        let guest = by_event.guest;
        self.errors.get_or_create(&GuestKind { guest, kind }).inc();
    }
}
