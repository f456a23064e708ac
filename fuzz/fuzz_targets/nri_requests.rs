//! Protobuf decoding of every NRI request, in its ttrpc envelope as the
//! runtime sends it (or of any NRI message, picked by the first byte):
//! whatever decodes encodes again to a message that decodes the same
//! (but for negative numbers in packed enum fields, which rust-protobuf
//! 3.7 cannot encode and nri-wasm never sends).

#![no_main]

use libfuzzer_sys::fuzz_target;
use nri_wasm_fuzz::{any_message, holds_negative_packed_enum, nri_request};

fuzz_target!(|data: &[u8]| {
    let Some((kind, message)) = nri_request(data).or_else(|| any_message(data)) else {
        return;
    };
    if holds_negative_packed_enum(&*message) {
        return;
    }
    let bytes = message
        .write_to_bytes_dyn()
        .expect("a decoded message encodes");
    let again = kind
        .parse_from_bytes(&bytes)
        .expect("an encoded message decodes");
    assert!(
        kind.eq(&*message, &*again),
        "{} changed on a round trip",
        kind.full_name()
    );
});
