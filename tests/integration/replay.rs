//! Replays what real runtimes sent (../shared/nri-traces) into nri-wasm's
//! plugin side, frame by frame as captured (CRI-O's split frames
//! included), and checks every answer: same stream, success, a message of
//! the method's reply type, and the subscription the runtime accepts.

use std::{sync::Arc, time::Duration};

use nri_proto::{
    api::{self, file_descriptor},
    events::EventMask,
    ttrpc_frame::{TtrpcHeader, TTRPC_HEADER_LEN},
};
use nri_wasm::{
    dispatch::Dispatcher,
    protocol::{self, Backoff, PluginConfig, PluginIdentity, RuntimeLink},
};
use protobuf::Message;
use tempfile::TempDir;
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{UnixListener, UnixStream},
    time::timeout,
};
use tokio_util::sync::CancellationToken;

use crate::capture::read_trace;

const WAIT: Duration = Duration::from_secs(5);

async fn read_frame(stream: &mut UnixStream) -> (u32, Vec<u8>) {
    let read = async {
        let mut header = [0; 8];
        stream.read_exact(&mut header).await?;
        let conn = u32::from_be_bytes(header[..4].try_into().unwrap());
        let mut payload = vec![0; u32::from_be_bytes(header[4..].try_into().unwrap()) as usize];
        stream.read_exact(&mut payload).await?;
        std::io::Result::Ok((conn, payload))
    };
    timeout(WAIT, read)
        .await
        .expect("an answer in time")
        .expect("a frame")
}

fn frame(conn: u32, payload: &[u8]) -> Vec<u8> {
    let mut out = conn.to_be_bytes().to_vec();
    out.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    out.extend_from_slice(payload);
    out
}

/// The reply type of a Plugin service method.
fn reply_type(method: &str) -> protobuf::reflect::MessageDescriptor {
    let service = file_descriptor()
        .services()
        .find(|s| s.proto().name() == "Plugin")
        .unwrap();
    let method = service
        .methods()
        .find(|m| m.proto().name() == method)
        .unwrap_or_else(|| panic!("no Plugin method {method}"));
    method.output_type()
}

/// Replays `name` and returns the subscription nri-wasm answered.
async fn replay(name: &str) -> EventMask {
    let dir = TempDir::new().unwrap();
    let socket = dir.path().join("nri.sock");
    let listener = UnixListener::bind(&socket).unwrap();
    let stop = CancellationToken::new();
    let host = tokio::spawn(protocol::run_plugin(
        PluginConfig {
            socket,
            identity: PluginIdentity::new("nri-wasm", "50").unwrap(),
            backoff: Backoff::default(),
        },
        Arc::new(Dispatcher::default()),
        RuntimeLink::default(),
        stop.clone(),
    ));
    let (mut stream, _) = timeout(WAIT, listener.accept()).await.unwrap().unwrap();

    let mut mask = EventMask::NONE;
    let mut pending_request = Vec::new();
    for captured in read_trace(name) {
        match (captured.from_runtime, captured.conn) {
            // Our RegisterPlugin, answered with the runtime's empty reply.
            (false, 2) => {
                let (conn, ours) = read_frame(&mut stream).await;
                assert_eq!(conn, 2);
                let header =
                    TtrpcHeader::parse(ours[..TTRPC_HEADER_LEN].try_into().unwrap()).unwrap();
                let reply = empty_reply(header.stream_id);
                stream.write_all(&frame(2, &reply)).await.unwrap();
            }
            (true, 2) => {}
            (true, _) => {
                pending_request.extend_from_slice(&captured.payload);
                stream
                    .write_all(&frame(captured.conn, &captured.payload))
                    .await
                    .unwrap();
            }
            // Where the captured plugin answered, we must answer too.
            (false, _) => {
                let request = std::mem::take(&mut pending_request);
                let header =
                    TtrpcHeader::parse(request[..TTRPC_HEADER_LEN].try_into().unwrap()).unwrap();
                let request =
                    ttrpc::Request::parse_from_bytes(&request[TTRPC_HEADER_LEN..]).unwrap();
                let (conn, ours) = read_frame(&mut stream).await;
                assert_eq!(conn, 1);
                let ours_header =
                    TtrpcHeader::parse(ours[..TTRPC_HEADER_LEN].try_into().unwrap()).unwrap();
                assert_eq!(
                    ours_header.stream_id, header.stream_id,
                    "{name}: {}",
                    request.method
                );
                assert_eq!(ours_header.kind, 2);
                let response =
                    ttrpc::Response::parse_from_bytes(&ours[TTRPC_HEADER_LEN..]).unwrap();
                assert!(
                    response.status.as_ref().is_none_or(|s| s.code.value() == 0),
                    "{name}: {} failed: {:?}",
                    request.method,
                    response.status
                );
                reply_type(&request.method)
                    .parse_from_bytes(&response.payload)
                    .unwrap_or_else(|e| panic!("{name}: {} reply: {e}", request.method));
                if request.method == "Configure" {
                    mask = EventMask(
                        api::ConfigureResponse::parse_from_bytes(&response.payload)
                            .unwrap()
                            .events,
                    );
                }
            }
        }
    }
    stop.cancel();
    drop(stream);
    host.await.unwrap();
    mask
}

fn empty_reply(stream_id: u32) -> Vec<u8> {
    TtrpcHeader {
        length: 0,
        stream_id,
        kind: 2,
        flags: 0,
    }
    .to_bytes()
    .to_vec()
}

#[tokio::test]
async fn captured_containerd_2_3_traffic_is_answered() {
    assert_eq!(replay("logger.jsonl").await.0, 0x3fff);
    assert_eq!(replay("ulimit-adjuster.jsonl").await.0, 0x3fff);
}

#[tokio::test]
async fn captured_containerd_2_0_and_1_7_traffic_is_answered_with_a_mask_they_accept() {
    for name in [
        "containerd-v2.0-logger.jsonl",
        "containerd-v2.0-ulimit-adjuster.jsonl",
        "containerd-v1.7-logger.jsonl",
        "containerd-v1.7-ulimit-adjuster.jsonl",
        // The runtime that refused NRI's logger for subscribing to 0x3800.
        "containerd-v2.0-reject-new-events.jsonl",
    ] {
        assert_eq!(replay(name).await.0, 0x7ff, "{name}");
    }
}

#[tokio::test]
async fn captured_crio_1_36_traffic_with_split_frames_is_answered() {
    assert_eq!(replay("crio-v1.36-logger.jsonl").await.0, 0x3fff);
    assert_eq!(replay("crio-v1.36-ulimit-adjuster.jsonl").await.0, 0x3fff);
}
