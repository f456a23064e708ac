//! Property tests for everything that parses bytes from the runtime: the
//! mux frame decoder, the ttrpc stream check, the multiplexer as a whole,
//! and the protobuf decoding of every NRI message. They run a bounded
//! number of cases (raise it with PROPTEST_CASES) and must never panic.

use bytes::BytesMut;
use nri_proto::{
    api::file_descriptor,
    mux::{ConnId, Frame, FrameCodec, Mux, MuxError, ReadRule, TrunkEnd, MAX_FRAME_PAYLOAD},
    ttrpc_frame::TtrpcStreamCheck,
};
use proptest::prelude::*;
use tokio::io::AsyncWriteExt;
use tokio_util::codec::{Decoder, Encoder};

/// Byte chunks, as a socket might deliver them.
fn chunks() -> impl Strategy<Value = Vec<Vec<u8>>> {
    prop::collection::vec(prop::collection::vec(any::<u8>(), 0..64), 0..16)
}

/// Well-formed mux frames with small payloads.
fn frames() -> impl Strategy<Value = Vec<(u32, Vec<u8>)>> {
    prop::collection::vec((0u32..4, prop::collection::vec(any::<u8>(), 0..300)), 0..12)
}

/// Encoded protobuf fields: valid wire format with random field numbers,
/// wire types and values, nested up to three levels, so that decoding gets
/// past the first byte into every message's fields.
fn wire_message(depth: u32) -> BoxedStrategy<Vec<u8>> {
    let scalar = prop_oneof![
        (1u32..30, any::<u64>()).prop_map(|(f, v)| {
            let mut out = varint(u64::from(f) << 3);
            out.extend(varint(v));
            out
        }),
        (1u32..30, any::<u64>()).prop_map(|(f, v)| {
            let mut out = varint(u64::from(f) << 3 | 1);
            out.extend(v.to_le_bytes());
            out
        }),
        (1u32..30, any::<u32>()).prop_map(|(f, v)| {
            let mut out = varint(u64::from(f) << 3 | 5);
            out.extend(v.to_le_bytes());
            out
        }),
        (1u32..30, "[ -~]{0,12}").prop_map(|(f, s)| length_delimited(f, s.as_bytes())),
    ];
    let field = if depth == 0 {
        scalar.boxed()
    } else {
        prop_oneof![
            3 => scalar,
            1 => (1u32..30, wire_message(depth - 1)).prop_map(|(f, m)| length_delimited(f, &m)),
        ]
        .boxed()
    };
    prop::collection::vec(field, 0..8)
        .prop_map(|fields| fields.concat())
        .boxed()
}

fn varint(mut v: u64) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let byte = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            out.push(byte);
            return out;
        }
        out.push(byte | 0x80);
    }
}

fn length_delimited(field: u32, body: &[u8]) -> Vec<u8> {
    let mut out = varint(u64::from(field) << 3 | 2);
    out.extend(varint(body.len() as u64));
    out.extend_from_slice(body);
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn frame_decoder_takes_any_bytes_and_re_encodes_what_it_accepts(input in chunks()) {
        let mut buf = BytesMut::new();
        let mut all = Vec::new();
        let mut reencoded = BytesMut::new();
        'feed: for chunk in input {
            all.extend_from_slice(&chunk);
            buf.extend_from_slice(&chunk);
            loop {
                match FrameCodec.decode(&mut buf) {
                    Ok(Some(frame)) => FrameCodec.encode(frame, &mut reencoded).unwrap(),
                    Ok(None) => break,
                    Err(MuxError::FrameTooLarge { len, .. }) => {
                        prop_assert!(len > MAX_FRAME_PAYLOAD);
                        break 'feed;
                    }
                    Err(other) => prop_assert!(false, "unexpected error {other}"),
                }
            }
        }
        // What was decoded is, byte for byte, the start of the input.
        prop_assert_eq!(&all[..reencoded.len()], &reencoded[..]);
    }

    #[test]
    fn frames_survive_any_split_of_the_stream(frames in frames(), cut in any::<prop::sample::Index>()) {
        let mut wire = BytesMut::new();
        for (conn, payload) in &frames {
            FrameCodec.encode(Frame { conn: ConnId(*conn), payload: payload.clone().into() }, &mut wire).unwrap();
        }
        let cut = cut.index(wire.len() + 1);
        let mut buf = BytesMut::from(&wire[..cut]);
        let mut decoded = Vec::new();
        while let Some(frame) = FrameCodec.decode(&mut buf).unwrap() {
            decoded.push((frame.conn.0, frame.payload.to_vec()));
        }
        buf.extend_from_slice(&wire[cut..]);
        while let Some(frame) = FrameCodec.decode(&mut buf).unwrap() {
            decoded.push((frame.conn.0, frame.payload.to_vec()));
        }
        prop_assert_eq!(decoded, frames);
        prop_assert!(buf.is_empty());
    }

    #[test]
    fn ttrpc_stream_check_takes_any_bytes(input in chunks()) {
        let mut check = TtrpcStreamCheck::default();
        for chunk in input {
            if check.feed(&chunk).is_err() {
                break;
            }
        }
        let _ = check.unfinished();
    }

    #[test]
    fn every_nri_message_decodes_any_wire_data_and_round_trips(body in wire_message(3)) {
        for descriptor in file_descriptor().messages() {
            let Ok(message) = descriptor.parse_from_bytes(&body) else { continue };
            let encoded = message.write_to_bytes_dyn().unwrap();
            let again = descriptor.parse_from_bytes(&encoded).unwrap();
            prop_assert!(
                descriptor.eq(&*message, &*again),
                "{} changed on re-encoding", descriptor.full_name()
            );
        }
    }

    #[test]
    fn every_nri_message_refuses_or_takes_random_bytes(body in prop::collection::vec(any::<u8>(), 0..256)) {
        for descriptor in file_descriptor().messages() {
            let _ = descriptor.parse_from_bytes(&body);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// The multiplexer, fed anything, ends the trunk with an error or a
    /// clean close; it never panics or hangs.
    #[test]
    fn mux_ends_cleanly_on_any_input(input in chunks(), valid in frames()) {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        runtime.block_on(async {
            let (ours, mut peer) = tokio::io::duplex(1 << 16);
            let (mux, _conns) = Mux::start(ours, &[ConnId::PLUGIN_SERVICE, ConnId::RUNTIME_SERVICE], ReadRule::Stream);
            let mut wire = BytesMut::new();
            for (conn, payload) in valid {
                FrameCodec.encode(Frame { conn: ConnId(conn), payload: payload.into() }, &mut wire).unwrap();
            }
            peer.write_all(&wire).await.ok();
            for chunk in input {
                peer.write_all(&chunk).await.ok();
            }
            drop(peer);
            let end = tokio::time::timeout(std::time::Duration::from_secs(5), mux.ended()).await;
            let end = end.expect("the trunk ends");
            if let TrunkEnd::Failed(err) = &*end {
                let _ = err.to_string();
            }
        });
    }
}
