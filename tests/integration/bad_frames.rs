//! A runtime peer that sends garbage: the `nri-wasm run` process closes
//! that connection with a logged error, stays up, and dials again.
//!
//! The peer here is a raw socket, not the simulator, so that it can put
//! any bytes on the wire.

use std::time::Duration;

use nri_proto::ttrpc_frame::{TtrpcHeader, TTRPC_HEADER_LEN};
use tempfile::TempDir;
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{UnixListener, UnixStream},
    time::timeout,
};

use crate::daemon::Daemon;

const WAIT: Duration = Duration::from_secs(5);

fn frame(conn: u32, payload: &[u8]) -> Vec<u8> {
    let mut out = conn.to_be_bytes().to_vec();
    out.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    out.extend_from_slice(payload);
    out
}

fn ttrpc(stream_id: u32, kind: u8, body: &[u8]) -> Vec<u8> {
    let mut out = TtrpcHeader {
        length: body.len() as u32,
        stream_id,
        kind,
        flags: 0,
    }
    .to_bytes()
    .to_vec();
    out.extend_from_slice(body);
    out
}

async fn read_frame(stream: &mut UnixStream) -> std::io::Result<(u32, Vec<u8>)> {
    let mut header = [0; 8];
    stream.read_exact(&mut header).await?;
    let conn = u32::from_be_bytes(header[..4].try_into().unwrap());
    let len = u32::from_be_bytes(header[4..].try_into().unwrap()) as usize;
    let mut payload = vec![0; len];
    stream.read_exact(&mut payload).await?;
    Ok((conn, payload))
}

/// Accepts the daemon and answers its RegisterPlugin, as a runtime would.
async fn accept_registration(listener: &UnixListener) -> UnixStream {
    let (mut stream, _) = timeout(WAIT, listener.accept())
        .await
        .expect("the daemon dials within the wait")
        .unwrap();
    let (conn, payload) = timeout(WAIT, read_frame(&mut stream))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        conn, 2,
        "RegisterPlugin travels on the Runtime service conn"
    );
    let request = TtrpcHeader::parse(payload[..TTRPC_HEADER_LEN].try_into().unwrap()).unwrap();
    assert!(payload.windows(14).any(|w| w == b"RegisterPlugin"));
    let reply = frame(2, &ttrpc(request.stream_id, 2, &[]));
    stream.write_all(&reply).await.unwrap();
    stream
}

/// Sends `bad` after registration and checks that the daemon hangs up,
/// logs `expected`, stays up and registers again.
async fn daemon_survives(bad: Vec<u8>, expected: &str, hang_up: bool) {
    let dir = TempDir::new().unwrap();
    let socket = dir.path().join("nri.sock");
    let plugins = dir.path().join("plugins");
    std::fs::create_dir(&plugins).unwrap();
    let listener = UnixListener::bind(&socket).unwrap();
    let mut daemon = Daemon::start(&socket, &plugins);

    let mut stream = accept_registration(&listener).await;
    daemon.wait_for_log("registered with runtime").await;
    stream.write_all(&bad).await.unwrap();
    if hang_up {
        drop(stream);
    } else {
        // The daemon closes the trunk: we read end-of-file.
        let mut rest = Vec::new();
        let read = timeout(WAIT, stream.read_to_end(&mut rest)).await;
        assert!(read.is_ok(), "the daemon kept the connection open");
    }
    daemon.wait_for_log(expected).await;
    assert!(daemon.is_running(), "the daemon exited");

    let _again = accept_registration(&listener).await;
    assert!(daemon.is_running());
}

#[tokio::test]
async fn an_oversized_frame_closes_the_connection() {
    let mut bad = 1u32.to_be_bytes().to_vec();
    bad.extend_from_slice(&u32::MAX.to_be_bytes());
    daemon_survives(
        bad,
        "frame for conn 1 announces 4294967295 bytes, more than the maximum of 4194314",
        false,
    )
    .await;
}

#[tokio::test]
async fn a_frame_for_an_unknown_connection_closes_the_connection() {
    let bad = frame(7, &ttrpc(1, 1, b"hello"));
    daemon_survives(
        bad,
        "frame for unknown conn 7 (15 bytes); this trunk carries conns 1, 2",
        false,
    )
    .await;
}

#[tokio::test]
async fn a_truncated_ttrpc_header_closes_the_connection() {
    let request = ttrpc(1, 1, b"payload");
    let mut bad = frame(1, &request[..6]);
    bad.extend(frame(1, &request));
    daemon_survives(
        bad,
        "bad ttrpc stream on conn 1: unknown message type 0x00",
        false,
    )
    .await;
}

#[tokio::test]
async fn a_truncated_ttrpc_header_then_hang_up_is_reported() {
    let request = ttrpc(1, 1, b"payload");
    let bad = frame(1, &request[..6]);
    daemon_survives(
        bad,
        "bad ttrpc stream on conn 1: stream ended inside a message header (6 of 10 bytes)",
        true,
    )
    .await;
}
