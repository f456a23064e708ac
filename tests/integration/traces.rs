//! Golden vectors: frames captured on the NRI socket of real runtimes
//! (containerd v2.3.4, v2.0.11, v1.7.34, CRI-O v1.36.3), in
//! [`crate::capture`].
//!
//! Every frame is decoded with our mux, ttrpc header and protobuf code; each
//! NRI message is re-encoded and must decode to the same message; sample
//! fields are checked against what NRI's own Go plugin printed for them.

use std::{collections::HashMap, path::Path};

use bytes::BytesMut;
use nri_proto::{
    adjust::AdjustmentMerge,
    api,
    mux::{ConnId, FrameCodec},
    ttrpc_frame::{TtrpcHeader, TTRPC_HEADER_LEN},
};
use protobuf::Message;
use tokio_util::codec::{Decoder, Encoder};

use crate::capture::{read_trace, trace_names, traces_dir, Captured};

/// A decoded ttrpc message of one direction of one connection.
#[derive(Debug)]
enum TtrpcMessage {
    Request {
        stream: u32,
        method: String,
        payload: Vec<u8>,
    },
    Response {
        stream: u32,
        payload: Vec<u8>,
        ok: bool,
    },
}

/// Passes every frame through the mux codec (encode, then decode), joins
/// each direction of each connection into a byte stream and splits it into
/// ttrpc messages, in the order their last byte arrived.
fn ttrpc_messages(frames: &[Captured]) -> Vec<(bool, u32, TtrpcMessage)> {
    let mut wire = BytesMut::new();
    for f in frames {
        let frame = nri_proto::mux::Frame {
            conn: ConnId(f.conn),
            payload: f.payload.clone().into(),
        };
        FrameCodec.encode(frame, &mut wire).unwrap();
    }
    let mut streams: HashMap<(bool, u32), Vec<u8>> = HashMap::new();
    let mut out = Vec::new();
    for f in frames {
        let decoded = FrameCodec.decode(&mut wire).unwrap().expect("whole frame");
        assert_eq!(decoded.conn.0, f.conn);
        assert_eq!(&decoded.payload[..], &f.payload[..]);
        let buf = streams.entry((f.from_runtime, f.conn)).or_default();
        buf.extend_from_slice(&decoded.payload);
        while buf.len() >= TTRPC_HEADER_LEN {
            let header = TtrpcHeader::parse(buf[..TTRPC_HEADER_LEN].try_into().unwrap()).unwrap();
            let end = TTRPC_HEADER_LEN + header.length as usize;
            if buf.len() < end {
                break;
            }
            let body: Vec<u8> = buf.drain(..end).skip(TTRPC_HEADER_LEN).collect();
            out.push((f.from_runtime, f.conn, decode_ttrpc(header, &body)));
        }
    }
    assert!(wire.is_empty());
    for ((from_runtime, conn), rest) in streams {
        assert!(
            rest.is_empty(),
            "conn {conn} (runtime: {from_runtime}) ends inside a message"
        );
    }
    out
}

fn decode_ttrpc(header: TtrpcHeader, body: &[u8]) -> TtrpcMessage {
    match header.kind {
        1 => {
            let req = ttrpc::Request::parse_from_bytes(body).expect("ttrpc request");
            assert!(
                req.service.starts_with("nri.pkg.api.v1alpha1."),
                "{}",
                req.service
            );
            TtrpcMessage::Request {
                stream: header.stream_id,
                method: req.method,
                payload: req.payload,
            }
        }
        2 => {
            let resp = ttrpc::Response::parse_from_bytes(body).expect("ttrpc response");
            let ok = resp.status.as_ref().is_none_or(|s| s.code.value() == 0);
            TtrpcMessage::Response {
                stream: header.stream_id,
                payload: resp.payload,
                ok,
            }
        }
        other => panic!("unexpected ttrpc type {other}"),
    }
}

/// Decodes `bytes` as `M`, checks that its encoding decodes to the same
/// message, and returns it.
fn round_trip<M: Message + PartialEq + std::fmt::Debug>(bytes: &[u8]) -> M {
    let msg = M::parse_from_bytes(bytes).unwrap_or_else(|e| panic!("{}: {e}", M::NAME));
    let again = M::parse_from_bytes(&msg.write_to_bytes().unwrap()).unwrap();
    assert_eq!(msg, again, "{} does not survive re-encoding", M::NAME);
    msg
}

/// Every NRI message of one trace, decoded.
#[derive(Default)]
struct Decoded {
    requests: Vec<(String, Box<dyn std::any::Any>)>,
    responses: Vec<(String, Box<dyn std::any::Any>)>,
}

impl Decoded {
    fn requests<M: 'static>(&self, method: &str) -> Vec<&M> {
        self.requests
            .iter()
            .filter(|(m, _)| m == method)
            .map(|(_, r)| r.downcast_ref::<M>().expect("type of method"))
            .collect()
    }

    fn responses<M: 'static>(&self, method: &str) -> Vec<&M> {
        self.responses
            .iter()
            .filter(|(m, _)| m == method)
            .map(|(_, r)| r.downcast_ref::<M>().expect("type of method"))
            .collect()
    }
}

type Boxed = Box<dyn std::any::Any>;

fn pair<Req: Message + PartialEq + std::fmt::Debug, Resp: Message + PartialEq + std::fmt::Debug>(
    req: &[u8],
    resp: Option<&[u8]>,
) -> (Boxed, Option<Boxed>) {
    (
        Box::new(round_trip::<Req>(req)),
        resp.map(|r| Box::new(round_trip::<Resp>(r)) as Boxed),
    )
}

fn decode_method(method: &str, req: &[u8], resp: Option<&[u8]>) -> (Boxed, Option<Boxed>) {
    use api::*;
    match method {
        "RegisterPlugin" => pair::<RegisterPluginRequest, Empty>(req, resp),
        "UpdateContainers" => pair::<UpdateContainersRequest, UpdateContainersResponse>(req, resp),
        "Configure" => pair::<ConfigureRequest, ConfigureResponse>(req, resp),
        "Synchronize" => pair::<SynchronizeRequest, SynchronizeResponse>(req, resp),
        "Shutdown" => pair::<Empty, Empty>(req, resp),
        "RunPodSandbox" => pair::<RunPodSandboxRequest, RunPodSandboxResponse>(req, resp),
        "UpdatePodSandbox" => pair::<UpdatePodSandboxRequest, UpdatePodSandboxResponse>(req, resp),
        "PostUpdatePodSandbox" => {
            pair::<PostUpdatePodSandboxRequest, PostUpdatePodSandboxResponse>(req, resp)
        }
        "StopPodSandbox" => pair::<StopPodSandboxRequest, StopPodSandboxResponse>(req, resp),
        "RemovePodSandbox" => pair::<RemovePodSandboxRequest, RemovePodSandboxResponse>(req, resp),
        "CreateContainer" => pair::<CreateContainerRequest, CreateContainerResponse>(req, resp),
        "PostCreateContainer" => {
            pair::<PostCreateContainerRequest, PostCreateContainerResponse>(req, resp)
        }
        "StartContainer" => pair::<StartContainerRequest, StartContainerResponse>(req, resp),
        "PostStartContainer" => {
            pair::<PostStartContainerRequest, PostStartContainerResponse>(req, resp)
        }
        "UpdateContainer" => pair::<UpdateContainerRequest, UpdateContainerResponse>(req, resp),
        "PostUpdateContainer" => {
            pair::<PostUpdateContainerRequest, PostUpdateContainerResponse>(req, resp)
        }
        "StopContainer" => pair::<StopContainerRequest, StopContainerResponse>(req, resp),
        "RemoveContainer" => pair::<RemoveContainerRequest, RemoveContainerResponse>(req, resp),
        "StateChange" => pair::<StateChangeEvent, Empty>(req, resp),
        "ValidateContainerAdjustment" => pair::<
            ValidateContainerAdjustmentRequest,
            ValidateContainerAdjustmentResponse,
        >(req, resp),
        other => panic!("unknown NRI method {other}"),
    }
}

/// Decodes a whole trace, pairing each response with its request.
fn decode_trace(name: &str) -> Decoded {
    let frames = read_trace(name);
    let messages = ttrpc_messages(&frames);
    let mut pending: HashMap<(u32, u32), (String, Vec<u8>)> = HashMap::new();
    let mut decoded = Decoded::default();
    for (_from, conn, message) in messages {
        match message {
            TtrpcMessage::Request {
                stream,
                method,
                payload,
            } => {
                pending.insert((conn, stream), (method, payload));
            }
            TtrpcMessage::Response {
                stream,
                payload,
                ok,
            } => {
                let (method, req) = pending
                    .remove(&(conn, stream))
                    .expect("response to a request");
                let resp = ok.then_some(&payload[..]);
                let (req, resp) = decode_method(&method, &req, resp);
                decoded.requests.push((method.clone(), req));
                if let Some(resp) = resp {
                    decoded.responses.push((method, resp));
                }
            }
        }
    }
    // Requests the capture ended on, unanswered.
    for (_, (method, req)) in pending {
        let (req, _) = decode_method(&method, &req, None);
        decoded.requests.push((method, req));
    }
    decoded
}

#[test]
fn every_frame_of_every_trace_decodes_and_round_trips() {
    let names = trace_names();
    assert!(
        names.len() >= 9,
        "expected the nine captured traces, found {names:?}"
    );
    for name in names {
        let decoded = decode_trace(&name);
        let registrations = decoded.requests::<api::RegisterPluginRequest>("RegisterPlugin");
        assert_eq!(registrations.len(), 1, "{name}");
        let configure = decoded.requests::<api::ConfigureRequest>("Configure");
        assert_eq!(configure.len(), 1, "{name}");
        assert_eq!(configure[0].request_timeout, 2000, "{name}");
        assert_eq!(configure[0].registration_timeout, 5000, "{name}");
    }
}

#[test]
fn older_runtimes_send_lifecycle_events_as_state_change() {
    for name in [
        "containerd-v2.0-logger.jsonl",
        "containerd-v1.7-logger.jsonl",
        "crio-v1.36-logger.jsonl",
    ] {
        let decoded = decode_trace(name);
        let changes = decoded.requests::<api::StateChangeEvent>("StateChange");
        assert!(!changes.is_empty(), "{name}");
        assert!(decoded
            .requests::<api::RunPodSandboxRequest>("RunPodSandbox")
            .is_empty());
        let configure = decoded.requests::<api::ConfigureRequest>("Configure")[0];
        assert_eq!(configure.NRI_version, "", "{name}");
    }
    let crio = decode_trace("crio-v1.36-logger.jsonl");
    let configure = crio.requests::<api::ConfigureRequest>("Configure")[0];
    assert_eq!(
        (
            configure.runtime_name.as_str(),
            configure.runtime_version.as_str()
        ),
        ("cri-o", "1.36.3")
    );
}

#[test]
fn logger_trace_matches_what_the_go_plugin_decoded() {
    let decoded = decode_trace("logger.jsonl");
    let log = GoLog::read(&traces_dir().join("logger-decoded.log"));

    let reg = decoded.requests::<api::RegisterPluginRequest>("RegisterPlugin")[0];
    assert_eq!(
        (reg.plugin_name.as_str(), reg.plugin_idx.as_str()),
        ("nri-logger", "10")
    );
    let configure = decoded.requests::<api::ConfigureRequest>("Configure")[0];
    assert_eq!(configure.runtime_name, "containerd");
    assert_eq!(configure.runtime_version, "v2.3.4");
    assert_eq!(configure.NRI_version, "v0.12.0");
    let reply = decoded.responses::<api::ConfigureResponse>("Configure")[0];
    assert_eq!(reply.events, 0x3fff);

    let sync = decoded.requests::<api::SynchronizeRequest>("Synchronize")[0];
    let mut sync_ids = ids(&sync.pods);
    sync_ids.extend(sync.containers.iter().map(|c| c.id.clone()));
    assert_eq!(sync_ids, log.values("Synchronize", "id", 6));
    let container = &sync.containers[0];
    assert_eq!(container.args, ["/bin/sleep", "3600"]);
    assert_eq!(container.env, log.list_items("Synchronize", "env"));
    assert_eq!(
        container
            .annotations
            .get("lab.example.com/container")
            .map(String::as_str),
        Some("sleeper")
    );

    for method in [
        "CreateContainer",
        "StartContainer",
        "StopContainer",
        "RemoveContainer",
    ] {
        let logged = log.values(method, "id", 4);
        let ours = pod_and_container_ids(&decoded, method);
        assert_eq!(ours, logged, "{method}: pod and container ids");
    }

    // The plugin's adjustment, as it answered and as the runtime passed it
    // on to validation.
    let adjust = decoded.responses::<api::CreateContainerResponse>("CreateContainer")[0]
        .adjust
        .clone()
        .unwrap();
    let seen = log.values("ValidateContainerAdjustment", "logger.example.com/seen", 8);
    assert_eq!(
        adjust.annotations.get("logger.example.com/seen"),
        seen.first()
    );
    // NRI's AddEnv removes any earlier value first.
    let env: Vec<(&str, &str)> = adjust
        .env
        .iter()
        .map(|kv| (kv.key.as_str(), kv.value.as_str()))
        .collect();
    assert_eq!(
        env,
        [("-LOGGER_SEEN", ""), ("LOGGER_SEEN", seen[0].as_str())]
    );
    let validate = decoded
        .requests::<api::ValidateContainerAdjustmentRequest>("ValidateContainerAdjustment")[0];
    // The ulimit adjuster (index 20) ran beside the logger. Merging both
    // answers into the pristine container as we do gives what the runtime
    // sent on to validation, owners included.
    let ulimit = decode_trace("ulimit-adjuster.jsonl");
    let ulimit_request = ulimit.requests::<api::CreateContainerRequest>("CreateContainer")[0];
    assert_eq!(ulimit_request.container.id, validate.container.id);
    let ulimit_adjust = ulimit.responses::<api::CreateContainerResponse>("CreateContainer")[0]
        .adjust
        .clone()
        .unwrap();
    let mut merge = AdjustmentMerge::new(validate.container.clone().unwrap());
    merge.apply("10-nri-logger", &adjust).unwrap();
    merge.apply("20-ulimit-adjuster", &ulimit_adjust).unwrap();
    assert_eq!(merge.merged.annotations, validate.adjust.annotations);
    assert_eq!(merge.merged.env, validate.adjust.env);
    assert_eq!(merge.merged.rlimits, validate.adjust.rlimits);
    let owners = &validate.owners.owners[&validate.container.id];
    assert_eq!(&merge.owners.to_field_owners(), owners);

    let update = decoded.requests::<api::UpdateContainerRequest>("UpdateContainer")[0];
    let memory = update.linux_resources.memory.limit.value;
    assert_eq!(memory, 256 << 20);
    assert_eq!(update.linux_resources.cpu.shares.value, 768);
}

#[test]
fn ulimit_adjuster_reply_carries_the_rlimits() {
    for name in [
        "ulimit-adjuster.jsonl",
        "crio-v1.36-ulimit-adjuster.jsonl",
        "containerd-v1.7-ulimit-adjuster.jsonl",
    ] {
        let decoded = decode_trace(name);
        let reply = decoded.responses::<api::CreateContainerResponse>("CreateContainer");
        let rlimits: Vec<(String, u64, u64)> = reply
            .iter()
            .flat_map(|r| r.adjust.rlimits.iter())
            .map(|r| (r.type_.clone(), r.soft, r.hard))
            .collect();
        assert_eq!(
            rlimits,
            [
                ("RLIMIT_NOFILE".into(), 1000, 2000),
                ("RLIMIT_NPROC".into(), 500, 600)
            ],
            "{name}"
        );
    }
}

fn ids(pods: &[api::PodSandbox]) -> Vec<String> {
    pods.iter().map(|p| p.id.clone()).collect()
}

fn pod_and_container_ids(decoded: &Decoded, method: &str) -> Vec<String> {
    macro_rules! ids_of {
        ($ty:ty) => {
            decoded
                .requests::<$ty>(method)
                .iter()
                .flat_map(|r| [r.pod.id.clone(), r.container.id.clone()])
                .collect()
        };
    }
    match method {
        "CreateContainer" => ids_of!(api::CreateContainerRequest),
        "StartContainer" => ids_of!(api::StartContainerRequest),
        "StopContainer" => ids_of!(api::StopContainerRequest),
        "RemoveContainer" => ids_of!(api::RemoveContainerRequest),
        other => panic!("{other}"),
    }
}

/// The YAML that NRI's Go logger printed, one `msg="Event: line"` per line.
struct GoLog {
    lines: Vec<(String, String)>,
}

impl GoLog {
    fn read(path: &Path) -> GoLog {
        let text = std::fs::read_to_string(path).expect("decoded log");
        let lines = text
            .lines()
            .filter_map(|line| {
                let msg = line.split_once("msg=\"")?.1.strip_suffix('"')?;
                let (event, rest) = msg.split_once(':')?;
                Some((event.to_string(), rest.replace("\\\"", "\"")))
            })
            .collect();
        GoLog { lines }
    }

    /// Every value of `key:` printed at an indentation of `indent`
    /// spaces for `event`, in order.
    fn values(&self, event: &str, key: &str, indent: usize) -> Vec<String> {
        let prefix = format!("{}{key}: ", " ".repeat(indent));
        self.lines
            .iter()
            .filter(|(e, _)| e == event)
            .filter_map(|(_, line)| line.strip_prefix(&prefix))
            .map(|value| value.trim_matches('"').to_string())
            .collect()
    }

    /// The items of the first list `key:` printed for `event`.
    fn list_items(&self, event: &str, key: &str) -> Vec<String> {
        let mut items = Vec::new();
        let mut inside = None;
        for (e, line) in &self.lines {
            if e != event {
                continue;
            }
            let indent = line.len() - line.trim_start().len();
            match inside {
                None if line.trim_start() == format!("{key}:") => inside = Some(indent),
                Some(list_indent) => match line.trim_start().strip_prefix("- ") {
                    Some(item) if indent == list_indent => {
                        items.push(item.trim_matches('"').to_string())
                    }
                    _ => break,
                },
                None => {}
            }
        }
        items
    }
}
