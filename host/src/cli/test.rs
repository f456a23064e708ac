//! `nri-wasm test PLUGIN.wasm --event FILE.json`: runs one NRI event
//! through one plugin, offline, with the grants and limits its
//! configuration gives it, and prints each call (answer, refusals, time)
//! and the reply the runtime would get.
//!
//! The event file holds the event's name and its NRI request in the
//! protobuf JSON mapping:
//!
//! ```json
//! { "event": "CreateContainer",
//!   "request": { "pod": { "id": "web", ... }, "container": { ... } } }
//! ```
//!
//! Exit status: 0 when the plugin answered and its answer was taken, 2
//! when it failed, faulted or answered beyond its grants, 1 when the test
//! could not run (a bad file, a plugin that does not load).

use std::{
    path::{Path, PathBuf},
    sync::{Arc, Mutex},
    time::Duration,
};

use anyhow::{anyhow, bail, Context};
use clap::Args;
use nri_proto::{
    api::{
        Container, CreateContainerRequest, PodSandbox, StopContainerRequest,
        UpdateContainerRequest, ValidateContainerAdjustmentRequest,
    },
    events::{valid_events, NriVersionSource, NRI_VERSION},
};
use protobuf::MessageFull;
use serde_json::{json, Value};

use super::{check::load_single, report};
use crate::{
    config::Config,
    dispatch::{Answer, CallObserver, CallRecord, Dispatcher, SlotError},
    grants::{
        reads,
        suggest::{Reach, Suggestion},
    },
    protocol::{HandlerError, Notification, NriHandler, RuntimeInfo},
    runtime::GuestPre,
    shadow::{self, to_json},
};

/// Run one NRI event through a plugin offline, with its grants, and print
/// what it answered, what was refused, and how long it took.
#[derive(Debug, Args)]
pub struct TestArgs {
    /// The plugin file (`NN-name.wasm`).
    #[arg(required_unless_present = "event_template")]
    plugin: Option<PathBuf>,
    /// The event: `{"event": "CreateContainer", "request": {...}}`, the
    /// request in the protobuf JSON mapping.
    #[arg(long, required_unless_present = "event_template")]
    event: Option<PathBuf>,
    /// Print a sample event file of this kind (CreateContainer, ...) to
    /// start one from, and nothing else.
    #[arg(long, value_name = "KIND", conflicts_with_all = ["plugin", "event"])]
    event_template: Option<String>,
    /// Configuration file with the plugin's grants and limits.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
    /// Directory for compiled guests, so that a second run compiles
    /// nothing [default: /var/cache/nri-wasm for root, else
    /// ~/.cache/nri-wasm].
    #[arg(long, env = "NRI_WASM_CACHE_DIR")]
    cache_dir: Option<PathBuf>,
}

/// Exit status when the plugin's answer was not taken.
const EXIT_NOT_TAKEN: i32 = 2;

/// An NRI request, by the kind of answer it gets.
pub(super) enum Request {
    Create(CreateContainerRequest),
    Update(UpdateContainerRequest),
    Stop(StopContainerRequest),
    Validate(ValidateContainerAdjustmentRequest),
    Notify(Notification),
}

/// The events a test can send, for messages.
fn events() -> String {
    TEMPLATES.map(|(event, _)| event).join(", ")
}

impl Request {
    fn parse(event: &str, json: &str) -> anyhow::Result<Request> {
        use Notification as N;
        Ok(match event {
            "CreateContainer" => Request::Create(parse(json)?),
            "UpdateContainer" => Request::Update(parse(json)?),
            "StopContainer" => Request::Stop(parse(json)?),
            "ValidateContainerAdjustment" => Request::Validate(parse(json)?),
            "RunPodSandbox" => Request::Notify(N::RunPodSandbox(parse(json)?)),
            "UpdatePodSandbox" => Request::Notify(N::UpdatePodSandbox(parse(json)?)),
            "PostUpdatePodSandbox" => Request::Notify(N::PostUpdatePodSandbox(parse(json)?)),
            "StopPodSandbox" => Request::Notify(N::StopPodSandbox(parse(json)?)),
            "RemovePodSandbox" => Request::Notify(N::RemovePodSandbox(parse(json)?)),
            "PostCreateContainer" => Request::Notify(N::PostCreateContainer(parse(json)?)),
            "StartContainer" => Request::Notify(N::StartContainer(parse(json)?)),
            "PostStartContainer" => Request::Notify(N::PostStartContainer(parse(json)?)),
            "PostUpdateContainer" => Request::Notify(N::PostUpdateContainer(parse(json)?)),
            "RemoveContainer" => Request::Notify(N::RemoveContainer(parse(json)?)),
            other => bail!("unknown event {other:?}; one of: {}", events()),
        })
    }

    /// The pod and container the node has before the event: a container
    /// being created is not there yet.
    fn node(&self) -> (Option<PodSandbox>, Option<Container>) {
        match self {
            Request::Create(r) => (r.pod.clone().into_option(), None),
            Request::Update(r) => (
                r.pod.clone().into_option(),
                r.container.clone().into_option(),
            ),
            Request::Stop(r) => (
                r.pod.clone().into_option(),
                r.container.clone().into_option(),
            ),
            Request::Validate(r) => (r.pod.clone().into_option(), None),
            Request::Notify(n) => (n.pod().cloned(), n.container().cloned()),
        }
    }

    /// The container the event creates or validates, which the node does
    /// not have yet.
    fn new_container(&self) -> Option<&Container> {
        match self {
            Request::Create(r) => r.container.as_ref(),
            Request::Validate(r) => r.container.as_ref(),
            _ => None,
        }
    }

    /// Sends the request; returns the reply in the JSON mapping.
    async fn send(self, dispatcher: &Dispatcher) -> Result<Value, HandlerError> {
        match self {
            Request::Create(r) => Ok(to_json(&dispatcher.create_container(r).await?)),
            Request::Update(r) => Ok(to_json(&dispatcher.update_container(r).await?)),
            Request::Stop(r) => Ok(to_json(&dispatcher.stop_container(r).await?)),
            Request::Validate(r) => {
                Ok(to_json(&dispatcher.validate_container_adjustment(r).await?))
            }
            Request::Notify(n) => dispatcher.notify(n).await.map(|()| json!({})),
        }
    }
}

fn parse<M: MessageFull>(json: &str) -> anyhow::Result<M> {
    protobuf_json_mapping::parse_from_str(json)
        .map_err(|e| anyhow!("not a valid {}: {e}", M::descriptor().name()))
}

/// The calls of the test, as they end.
#[derive(Default)]
struct Calls(Mutex<Vec<Call>>);

struct Call {
    event: &'static str,
    elapsed: Duration,
    outcome: Result<Answer, SlotError>,
    reach: Reach,
}

impl Call {
    /// For a refused answer, the grant lines that would admit it: those of
    /// the refused families, as `grants suggest` writes them.
    fn admitting_lines(&self) -> Vec<(String, String)> {
        let Err(SlotError::Refused(refusals, answer)) = &self.outcome else {
            return Vec::new();
        };
        let mut suggestion = Suggestion::default();
        suggestion.observe(shadow::observed(answer, &self.reach, self.event));
        suggestion
            .lines()
            .into_iter()
            .filter(|(key, _)| refusals.iter().any(|r| r.family.key() == key))
            .collect()
    }
}

impl CallObserver for Calls {
    fn call(&self, record: &CallRecord<'_>) {
        self.0.lock().expect("never poisoned").push(Call {
            event: record.event,
            elapsed: record.elapsed,
            outcome: record.outcome.cloned().map_err(Clone::clone),
            reach: record.reach.clone(),
        });
    }
}

pub(super) async fn test(args: TestArgs) -> anyhow::Result<()> {
    if let Some(kind) = &args.event_template {
        print!("{}", event_template(kind)?);
        return Ok(());
    }
    let (Some(plugin), Some(event_file)) = (&args.plugin, &args.event) else {
        bail!("a plugin file and --event are needed");
    };
    let (event, request) = read_event(event_file)?;
    let (guest, config) = load_single(plugin, args.config.as_deref(), args.cache_dir.as_deref())?;
    let id = guest.id().to_string();
    let (pod, container) = request.node();
    let hidden = reads::hidden_in(
        &config.guest(&guest.id().name).read,
        pod.as_ref(),
        container.as_ref().or(request.new_container()),
    );
    let calls = Arc::new(Calls::default());
    let reply = replay(guest, &config, request, calls.clone()).await?;
    let calls = std::mem::take(&mut *calls.0.lock().expect("never poisoned"));
    let taken = reply.is_ok() && calls.iter().all(|c| c.outcome.is_ok());
    if args.json {
        let mut report = json_report(&id, &event, &calls, &reply);
        report["hidden"] = json!(hidden);
        println!("{report:#}");
    } else {
        print_report(&id, &event, &calls, &reply);
        if !hidden.is_empty() {
            println!("hidden from it by its read grants: {}", hidden.join(", "));
        }
    }
    if !taken {
        std::process::exit(EXIT_NOT_TAKEN);
    }
    Ok(())
}

/// Runs `request` through `guest` with its settings from `config`, on a
/// node that has the request's pod and container, as the daemon would;
/// its calls go to `observer`. Returns the reply to the runtime.
pub(super) async fn replay(
    guest: GuestPre,
    config: &Config,
    request: Request,
    observer: Arc<dyn CallObserver>,
) -> anyhow::Result<Result<Value, HandlerError>> {
    let (pod, container) = request.node();
    let dispatcher = Dispatcher::with_observers(vec![guest], config, vec![observer]);
    dispatcher
        .configure(&offline_runtime())
        .await
        .map_err(|e| anyhow!("configure: {e}"))?;
    dispatcher
        .synchronize(pod.into_iter().collect(), container.into_iter().collect())
        .await
        .map_err(|e| anyhow!("synchronize: {e}"))?;
    Ok(request.send(&dispatcher).await)
}

/// The sample event files of `guest-examples/events/`, by event.
const TEMPLATES: [(&str, &str); 14] = [
    (
        "RunPodSandbox",
        include_str!("../../../guest-examples/events/run-pod-sandbox.json"),
    ),
    (
        "UpdatePodSandbox",
        include_str!("../../../guest-examples/events/update-pod-sandbox.json"),
    ),
    (
        "PostUpdatePodSandbox",
        include_str!("../../../guest-examples/events/post-update-pod-sandbox.json"),
    ),
    (
        "StopPodSandbox",
        include_str!("../../../guest-examples/events/stop-pod-sandbox.json"),
    ),
    (
        "RemovePodSandbox",
        include_str!("../../../guest-examples/events/remove-pod-sandbox.json"),
    ),
    (
        "CreateContainer",
        include_str!("../../../guest-examples/events/create-container.json"),
    ),
    (
        "PostCreateContainer",
        include_str!("../../../guest-examples/events/post-create-container.json"),
    ),
    (
        "StartContainer",
        include_str!("../../../guest-examples/events/start-container.json"),
    ),
    (
        "PostStartContainer",
        include_str!("../../../guest-examples/events/post-start-container.json"),
    ),
    (
        "UpdateContainer",
        include_str!("../../../guest-examples/events/update-container.json"),
    ),
    (
        "PostUpdateContainer",
        include_str!("../../../guest-examples/events/post-update-container.json"),
    ),
    (
        "StopContainer",
        include_str!("../../../guest-examples/events/stop-container.json"),
    ),
    (
        "RemoveContainer",
        include_str!("../../../guest-examples/events/remove-container.json"),
    ),
    (
        "ValidateContainerAdjustment",
        include_str!("../../../guest-examples/events/validate-container-adjustment.json"),
    ),
];

fn event_template(kind: &str) -> anyhow::Result<&'static str> {
    TEMPLATES
        .iter()
        .find(|(event, _)| *event == kind)
        .map(|(_, text)| *text)
        .ok_or_else(|| anyhow!("unknown event {kind:?}; one of: {}", events()))
}

pub(super) fn read_event(file: &Path) -> anyhow::Result<(String, Request)> {
    let text = std::fs::read_to_string(file)
        .with_context(|| format!("cannot read event file {}", file.display()))?;
    let parsed: EventFile = serde_json::from_str(&text)
        .with_context(|| format!("event file {} is not JSON", file.display()))?;
    parse_event(&text, parsed).with_context(|| format!("event file {}", file.display()))
}

/// The events of a scenario file of `nri-wasm demo --events`: a JSON
/// array of what `nri-wasm test` takes.
pub(super) fn read_scenario(file: &Path) -> anyhow::Result<Vec<(String, Request)>> {
    let text = std::fs::read_to_string(file)
        .with_context(|| format!("cannot read scenario {}", file.display()))?;
    let parsed: Vec<EventFile> = serde_json::from_str(&text)
        .with_context(|| format!("scenario {} is not a JSON array of events", file.display()))?;
    parsed
        .into_iter()
        .enumerate()
        .map(|(i, event)| {
            parse_event(&text, event)
                .with_context(|| format!("scenario {}: event {}", file.display(), i + 1))
        })
        .collect()
}

/// The event of `parsed`, read from `text`.
fn parse_event(text: &str, parsed: EventFile) -> anyhow::Result<(String, Request)> {
    let event = parsed
        .event
        .as_ref()
        .and_then(Value::as_str)
        .ok_or_else(|| anyhow!("no \"event\" name"))?;
    if event_template(event).is_err() {
        bail!("\"event\": unknown event {event:?}; one of: {}", events());
    }
    let request = match parsed.request {
        Some(raw) => in_place(text, raw.get()),
        None => "{}".to_string(),
    };
    let request = Request::parse(event, &request).context("\"request\"")?;
    Ok((event.to_string(), request))
}

/// An event file; its request is parsed where it lies in the file.
#[derive(serde::Deserialize)]
struct EventFile<'a> {
    event: Option<Value>,
    #[serde(borrow)]
    request: Option<&'a serde_json::value::RawValue>,
}

/// `file` with everything but `part` (a slice of it) blanked, line breaks
/// kept: a parser of `part` then reports positions in the file.
fn in_place(file: &str, part: &str) -> String {
    let start = (part.as_ptr() as usize).checked_sub(file.as_ptr() as usize);
    let Some(start) = start.filter(|start| start + part.len() <= file.len()) else {
        return part.to_string();
    };
    let span = start..start + part.len();
    file.char_indices()
        .map(|(i, c)| match span.contains(&i) || c == '\n' {
            true => c,
            false => ' ',
        })
        .collect()
}

/// The runtime the plugin is configured with: NRI's current version and
/// default request timeout.
fn offline_runtime() -> RuntimeInfo {
    RuntimeInfo {
        name: "nri-wasm-test".into(),
        version: env!("CARGO_PKG_VERSION").into(),
        nri_version: NRI_VERSION,
        nri_version_source: NriVersionSource::Announced,
        valid_events: valid_events(NRI_VERSION),
        registration_timeout: Duration::from_secs(5),
        request_timeout: Duration::from_secs(2),
        config: String::new(),
    }
}

fn print_report(id: &str, event: &str, calls: &[Call], reply: &Result<Value, HandlerError>) {
    println!("{id}: {event}");
    for call in calls {
        let lines = report::describe_outcome(call.event, call.outcome.as_ref());
        println!(
            "  {:<28} {:>9}  {}",
            call.event,
            report::millis(call.elapsed),
            lines[0]
        );
        for line in &lines[1..] {
            println!("  {:40}{line}", "");
        }
        let admitting = call.admitting_lines();
        if !admitting.is_empty() {
            println!("  {:40}admitted by, in [plugins.NAME.grants]:", "");
            for (key, value) in admitting {
                println!("  {:40}  {key} = {value}", "");
            }
        }
    }
    match reply {
        Ok(reply) => println!("reply to the runtime: {reply}"),
        Err(err) => println!("the event fails: {err}"),
    }
}

/// An answer in the JSON mapping of its NRI messages.
fn answer_json(answer: &Answer) -> Value {
    json!({
        "adjust": answer.adjust.as_ref().map(to_json),
        "updates": answer.updates.iter().map(to_json).collect::<Vec<_>>(),
        "evictions": answer.evictions.iter().map(to_json).collect::<Vec<_>>(),
        "rejection": answer.rejection,
    })
}

fn json_report(
    id: &str,
    event: &str,
    calls: &[Call],
    reply: &Result<Value, HandlerError>,
) -> Value {
    let calls: Vec<Value> = calls
        .iter()
        .map(|call| {
            let mut entry = json!({
                "event": call.event,
                "elapsed_ms": call.elapsed.as_secs_f64() * 1e3,
            });
            match &call.outcome {
                Ok(answer) => entry["answer"] = answer_json(answer),
                Err(SlotError::Refused(refusals, answer)) => {
                    entry["answer"] = answer_json(answer);
                    entry["admitted-by"] = call
                        .admitting_lines()
                        .into_iter()
                        .map(|(key, value)| (key, json!(value)))
                        .collect::<serde_json::Map<_, _>>()
                        .into();
                    entry["refusals"] = refusals
                        .iter()
                        .map(|r| {
                            json!({"family": r.family.to_string(), "field": r.field,
                                   "value": r.value, "grant": r.grant})
                        })
                        .collect();
                }
                Err(err) => {
                    entry["error"] = json!({"kind": err.kind(), "message": err.to_string()})
                }
            }
            entry
        })
        .collect();
    let mut report = json!({"plugin": id, "event": event, "calls": calls});
    match reply {
        Ok(reply) => report["reply"] = reply.clone(),
        Err(err) => report["error"] = json!(err.0),
    }
    report
}
