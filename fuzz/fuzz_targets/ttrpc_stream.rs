//! The ttrpc stream check of one mux connection, fed in pieces: the same
//! verdict however the stream is cut, and never a panic.

#![no_main]

use libfuzzer_sys::fuzz_target;
use nri_proto::ttrpc_frame::TtrpcStreamCheck;
use nri_wasm_fuzz::pieces;

fuzz_target!(|data: &[u8]| {
    let mut in_pieces = TtrpcStreamCheck::default();
    let verdict = pieces(data).try_for_each(|piece| in_pieces.feed(piece));
    let mut whole = TtrpcStreamCheck::default();
    let stream: Vec<u8> = pieces(data).flatten().copied().collect();
    assert_eq!(verdict.is_ok(), whole.feed(&stream).is_ok());
    if verdict.is_ok() {
        assert_eq!(in_pieces.unfinished(), whole.unfinished());
    }
});
