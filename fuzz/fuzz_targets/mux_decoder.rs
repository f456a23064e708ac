//! The mux frame decoder, fed a stream in pieces: it yields frames within
//! the size limit or refuses the stream, and never panics.

#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use nri_proto::mux::{FrameCodec, MAX_FRAME_PAYLOAD};
use nri_wasm_fuzz::pieces;
use tokio_util::codec::Decoder;

fuzz_target!(|data: &[u8]| {
    let mut codec = FrameCodec;
    let mut buffer = BytesMut::new();
    for piece in pieces(data) {
        buffer.extend_from_slice(piece);
        loop {
            match codec.decode(&mut buffer) {
                Ok(Some(frame)) => assert!(frame.payload.len() <= MAX_FRAME_PAYLOAD),
                Ok(None) => break,
                Err(_) => return,
            }
        }
    }
    if let Ok(Some(frame)) = codec.decode_eof(&mut buffer) {
        assert!(frame.payload.len() <= MAX_FRAME_PAYLOAD);
    }
});
