//! The ttrpc message header, as far as the multiplexer needs to know it to
//! recognise a broken stream: `length u32 BE | stream id u32 BE | type u8 |
//! flags u8`, then `length` bytes of protobuf.

/// Length of a ttrpc message header.
pub const TTRPC_HEADER_LEN: usize = 10;
/// Largest ttrpc message body.
pub const TTRPC_MESSAGE_MAX: usize = 4 << 20;

/// ttrpc message types.
const TYPE_REQUEST: u8 = 1;
const TYPE_RESPONSE: u8 = 2;
const TYPE_DATA: u8 = 3;

/// A decoded ttrpc message header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TtrpcHeader {
    /// Length of the body that follows.
    pub length: u32,
    /// Stream the message belongs to.
    pub stream_id: u32,
    /// Request, response or data.
    pub kind: u8,
    /// Type-specific flags.
    pub flags: u8,
}

impl TtrpcHeader {
    /// Decodes and checks a header: a known type, a non-zero stream and a
    /// body within the ttrpc maximum.
    pub fn parse(bytes: &[u8; TTRPC_HEADER_LEN]) -> Result<Self, String> {
        let header = TtrpcHeader {
            length: u32::from_be_bytes(bytes[0..4].try_into().expect("4 bytes")),
            stream_id: u32::from_be_bytes(bytes[4..8].try_into().expect("4 bytes")),
            kind: bytes[8],
            flags: bytes[9],
        };
        if header.length as usize > TTRPC_MESSAGE_MAX {
            return Err(format!(
                "message length {} exceeds the ttrpc maximum of {TTRPC_MESSAGE_MAX}",
                header.length
            ));
        }
        if !matches!(header.kind, TYPE_REQUEST | TYPE_RESPONSE | TYPE_DATA) {
            return Err(format!(
                "unknown message type {:#04x} on stream {}",
                header.kind, header.stream_id
            ));
        }
        if header.stream_id == 0 {
            return Err("message on stream 0, which ttrpc never uses".to_string());
        }
        Ok(header)
    }

    /// Encodes the header.
    pub fn to_bytes(self) -> [u8; TTRPC_HEADER_LEN] {
        let mut out = [0; TTRPC_HEADER_LEN];
        out[0..4].copy_from_slice(&self.length.to_be_bytes());
        out[4..8].copy_from_slice(&self.stream_id.to_be_bytes());
        out[8] = self.kind;
        out[9] = self.flags;
        out
    }
}

/// Follows the message boundaries of one connection's byte stream, however
/// the stream is cut into frames, and checks every header as it completes.
#[derive(Debug, Default)]
pub struct TtrpcStreamCheck {
    header: [u8; TTRPC_HEADER_LEN],
    header_len: usize,
    body_left: usize,
}

impl TtrpcStreamCheck {
    /// Takes the next piece of the stream.
    pub fn feed(&mut self, mut bytes: &[u8]) -> Result<(), String> {
        while !bytes.is_empty() {
            if self.body_left > 0 {
                let n = self.body_left.min(bytes.len());
                self.body_left -= n;
                bytes = &bytes[n..];
                continue;
            }
            let n = (TTRPC_HEADER_LEN - self.header_len).min(bytes.len());
            self.header[self.header_len..self.header_len + n].copy_from_slice(&bytes[..n]);
            self.header_len += n;
            bytes = &bytes[n..];
            if self.header_len == TTRPC_HEADER_LEN {
                self.header_len = 0;
                self.body_left = TtrpcHeader::parse(&self.header)?.length as usize;
            }
        }
        Ok(())
    }

    /// Bytes of the current message body still to come; 0 between
    /// messages and inside a header.
    pub fn body_left(&self) -> usize {
        self.body_left
    }

    /// Describes an unfinished message, if the stream stopped inside one.
    pub fn unfinished(&self) -> Option<String> {
        if self.header_len > 0 {
            Some(format!(
                "stream ended inside a message header ({} of {TTRPC_HEADER_LEN} bytes)",
                self.header_len
            ))
        } else if self.body_left > 0 {
            Some(format!(
                "stream ended inside a message body ({} bytes missing)",
                self.body_left
            ))
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(length: u32, stream_id: u32, kind: u8) -> [u8; TTRPC_HEADER_LEN] {
        TtrpcHeader {
            length,
            stream_id,
            kind,
            flags: 0,
        }
        .to_bytes()
    }

    #[test]
    fn header_checks() {
        let cases: [(&str, [u8; TTRPC_HEADER_LEN], Result<(), &str>); 5] = [
            ("request", header(5, 1, 1), Ok(())),
            ("data", header(0, 3, 3), Ok(())),
            (
                "too long",
                header(TTRPC_MESSAGE_MAX as u32 + 1, 1, 1),
                Err("message length 4194305 exceeds the ttrpc maximum of 4194304"),
            ),
            (
                "bad type",
                header(1, 1, 9),
                Err("unknown message type 0x09 on stream 1"),
            ),
            (
                "stream 0",
                header(1, 0, 2),
                Err("message on stream 0, which ttrpc never uses"),
            ),
        ];
        for (name, bytes, want) in cases {
            let got = TtrpcHeader::parse(&bytes).map(|_| ());
            assert_eq!(got, want.map_err(str::to_string), "case {name}");
        }
    }

    #[test]
    fn stream_check_follows_messages_across_any_split() {
        let mut stream = Vec::new();
        stream.extend_from_slice(&header(3, 1, 1));
        stream.extend_from_slice(b"abc");
        stream.extend_from_slice(&header(0, 1, 2));
        stream.extend_from_slice(&header(2, 3, 1));
        stream.extend_from_slice(b"de");
        for cut in 0..=stream.len() {
            let mut check = TtrpcStreamCheck::default();
            check.feed(&stream[..cut]).unwrap();
            check.feed(&stream[cut..]).unwrap();
            assert_eq!(check.unfinished(), None, "cut at {cut}");
        }
    }

    #[test]
    fn stream_check_catches_a_truncated_header_followed_by_a_message() {
        let mut check = TtrpcStreamCheck::default();
        check.feed(&header(3, 1, 1)[..6]).unwrap();
        assert_eq!(
            check.unfinished().as_deref(),
            Some("stream ended inside a message header (6 of 10 bytes)")
        );
        let err = check.feed(&header(0x53, 1, 1)).unwrap_err();
        assert_eq!(err, "unknown message type 0x00 on stream 0");
    }
}
