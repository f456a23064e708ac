//! What the fuzz targets share: reading their input as the runtime's
//! bytes arrive (in pieces of a size the input chooses) and as ttrpc
//! messages of the NRI services.

use nri_proto::{
    api::file_descriptor,
    ttrpc_frame::{TtrpcHeader, TTRPC_HEADER_LEN},
};
use protobuf::{
    reflect::{MessageDescriptor, ReflectFieldRef, ReflectValueRef},
    Message, MessageDyn,
};

/// ttrpc message type of a request.
const REQUEST: u8 = 1;
/// ttrpc message type of a response.
const RESPONSE: u8 = 2;

/// Splits an input into the byte stream it carries and the size of the
/// pieces it arrives in (its first byte, at least 1), as a socket cuts a
/// stream.
pub fn pieces(data: &[u8]) -> impl Iterator<Item = &[u8]> {
    let (step, stream) = data.split_first().map_or((1, data), |(s, rest)| (*s, rest));
    stream.chunks(usize::from(step).max(1))
}

/// A ttrpc message: its header's type and its body, if the header parses
/// and the body is whole.
pub fn ttrpc_message(data: &[u8]) -> Option<(u8, &[u8])> {
    let header: &[u8; TTRPC_HEADER_LEN] = data.get(..TTRPC_HEADER_LEN)?.try_into().ok()?;
    let header = TtrpcHeader::parse(header).ok()?;
    let body = data.get(TTRPC_HEADER_LEN..TTRPC_HEADER_LEN + header.length as usize)?;
    Some((header.kind, body))
}

/// The input type of an NRI method, as ttrpc names it
/// (`nri.pkg.api.v1alpha1.Plugin`, `CreateContainer`).
fn input_type(service: &str, method: &str) -> Option<MessageDescriptor> {
    let file = file_descriptor();
    file.services()
        .find(|s| format!("{}.{}", file.package(), s.proto().name()) == service)?
        .methods()
        .find(|m| m.proto().name() == method)
        .map(|m| m.input_type())
}

/// The NRI request a ttrpc request message carries: its type and the
/// decoded message.
pub fn nri_request(data: &[u8]) -> Option<(MessageDescriptor, Box<dyn MessageDyn>)> {
    let (REQUEST, body) = ttrpc_message(data)? else {
        return None;
    };
    let request = ttrpc::Request::parse_from_bytes(body).ok()?;
    let kind = input_type(&request.service, &request.method)?;
    let message = kind.parse_from_bytes(&request.payload).ok()?;
    Some((kind, message))
}

/// The payload of a ttrpc message, request or response.
pub fn payload(data: &[u8]) -> Option<Vec<u8>> {
    match ttrpc_message(data)? {
        (REQUEST, body) => Some(ttrpc::Request::parse_from_bytes(body).ok()?.payload),
        (RESPONSE, body) => Some(ttrpc::Response::parse_from_bytes(body).ok()?.payload),
        _ => None,
    }
}

/// Any message of the NRI protocol: the first byte picks its type, the
/// rest is its encoding.
pub fn any_message(data: &[u8]) -> Option<(MessageDescriptor, Box<dyn MessageDyn>)> {
    let (pick, body) = data.split_first()?;
    let messages = file_descriptor().messages().collect::<Vec<_>>();
    let kind = messages[usize::from(*pick) % messages.len()].clone();
    let message = kind.parse_from_bytes(body).ok()?;
    Some((kind, message))
}

/// Whether a message holds a negative number in a repeated enum field
/// (packed, as proto3 writes them) anywhere in it. rust-protobuf 3.7
/// sizes such a number as 5 bytes and writes it as 10, so its encoding of
/// that message is corrupt. nri-wasm never sends one: what it sends is
/// built from WIT flags, whose numbers are the proto's own, all positive.
pub fn holds_negative_packed_enum(message: &dyn MessageDyn) -> bool {
    message
        .descriptor_dyn()
        .fields()
        .any(|field| match field.get_reflect(message) {
            ReflectFieldRef::Optional(value) => value.value().is_some_and(negative_inside),
            ReflectFieldRef::Repeated(values) => values.into_iter().any(|value| match value {
                ReflectValueRef::Enum(_, number) => number < 0,
                other => negative_inside(other),
            }),
            ReflectFieldRef::Map(entries) => entries.into_iter().any(|(_, v)| negative_inside(v)),
        })
}

/// Whether a field's value is a message that holds such a number.
fn negative_inside(value: ReflectValueRef) -> bool {
    match value {
        ReflectValueRef::Message(inner) => holds_negative_packed_enum(&*inner),
        _ => false,
    }
}
