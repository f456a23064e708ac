//! How ttrpc messages are cut into mux frames so that NRI's Go side can
//! read them, and the rule by which it reads them.
//!
//! The Go runtime's multiplexer hands each frame to one `Read` of the
//! connection and fails that read with `ENOMEM` when its buffer is smaller
//! than the frame, which closes the trunk (containerd/nri
//! `pkg/net/multiplex/mux.go: conn.Read`; it compares capacity, and a
//! frame longer than a pooled buffer's length but within its capacity
//! would overrun `bufio`'s bookkeeping instead: no frame may exceed the
//! length of the read it meets). ttrpc-go reads a connection
//! through `bufio.NewReader`, whose buffer is 4096 bytes (containerd/ttrpc
//! `channel.go: newChannel`). A `bufio.Reader` reads from the connection
//! only when its buffer is empty: into the whole buffer, or, for a read of
//! at least the buffer's size, straight into the caller's slice. ttrpc-go
//! reads the 10-byte message header and then the body with `io.ReadFull`,
//! so a frame meets a read of [`GO_READ_BUFFER`] bytes, or of the rest of
//! the body when at least that much of it is still to come.
//!
//! ttrpc-go's writer (a 4096-byte `bufio.Writer`) sends a message's first
//! 4096 bytes as one frame and the rest as one more: exactly what that
//! reader takes, in at most two frames per message, far below the mux's
//! queue of 256 frames per connection whose overflow also closes the trunk
//! (`mux.go: reader`). [`MessageCutter`] cuts the same way.

use crate::{mux::MAX_FRAME_PAYLOAD, ttrpc_frame::TTRPC_HEADER_LEN};

/// The buffer of Go's `bufio.Reader` (its default size), through which
/// ttrpc-go reads each connection.
pub const GO_READ_BUFFER: usize = 4096;

/// The size of the read that the next frame of a connection meets in the
/// Go reader, when `body_left` bytes of the current message body are
/// still to come (0 between messages and inside a header).
pub fn go_read_size(body_left: usize) -> usize {
    if body_left >= GO_READ_BUFFER {
        body_left
    } else {
        GO_READ_BUFFER
    }
}

/// Cuts one connection's outgoing byte stream into frames: each message's
/// first [`GO_READ_BUFFER`] bytes, then the rest of it, never two messages
/// in one frame.
#[derive(Clone, Copy, Debug, Default)]
pub struct MessageCutter {
    /// Bytes of the current message not yet cut; 0 at a message boundary.
    message_left: usize,
}

impl MessageCutter {
    /// The length of the next frame, if `pending` (the unsent bytes,
    /// starting where the last frame ended) holds all of it; with the
    /// length of the message it begins, when it begins one.
    pub fn next_frame(&mut self, pending: &[u8]) -> Option<CutFrame> {
        let (len, message) = if self.message_left == 0 {
            let header = pending.get(..TTRPC_HEADER_LEN)?;
            let body = u32::from_be_bytes(header[..4].try_into().expect("4 bytes")) as usize;
            let message = TTRPC_HEADER_LEN + body;
            (message.min(GO_READ_BUFFER), Some(message))
        } else {
            // Only a body past the ttrpc maximum, which the peer refuses,
            // has a rest larger than one frame.
            (self.message_left.min(MAX_FRAME_PAYLOAD), None)
        };
        if pending.len() < len {
            return None;
        }
        self.message_left = message.unwrap_or(self.message_left) - len;
        Some(CutFrame { len, message })
    }
}

/// One frame as the cutter cut it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CutFrame {
    /// Its payload length.
    pub len: usize,
    /// The length of the whole message, when this frame begins one.
    pub message: Option<usize>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ttrpc_frame::{TtrpcStreamCheck, TTRPC_MESSAGE_MAX};

    fn message(body: usize) -> Vec<u8> {
        let mut out = Vec::with_capacity(TTRPC_HEADER_LEN + body);
        out.extend_from_slice(&(body as u32).to_be_bytes());
        out.extend_from_slice(&1u32.to_be_bytes());
        out.extend_from_slice(&[2, 0]);
        out.resize(TTRPC_HEADER_LEN + body, 0x5a);
        out
    }

    /// Cuts `stream` whole, as the writer does once everything is queued.
    fn cut(stream: &[u8]) -> Vec<usize> {
        let mut cutter = MessageCutter::default();
        let mut at = 0;
        let mut lens = Vec::new();
        while let Some(frame) = cutter.next_frame(&stream[at..]) {
            lens.push(frame.len);
            at += frame.len;
        }
        assert_eq!(at, stream.len(), "everything is cut");
        lens
    }

    /// Feeds frames of `lens` to the Go reader's rule; the first frame it
    /// refuses, as (index, frame length, read size).
    fn go_reader_refuses(stream: &[u8], lens: &[usize]) -> Option<(usize, usize, usize)> {
        let mut check = TtrpcStreamCheck::default();
        let mut at = 0;
        for (i, &len) in lens.iter().enumerate() {
            let read = go_read_size(check.body_left());
            if len > read {
                return Some((i, len, read));
            }
            check.feed(&stream[at..at + len]).unwrap();
            at += len;
        }
        None
    }

    #[test]
    fn messages_are_cut_as_ttrpc_go_writes_them() {
        assert_eq!(cut(&message(0)), [10]);
        assert_eq!(cut(&message(4086)), [4096]);
        assert_eq!(cut(&message(4087)), [4096, 1]);
        assert_eq!(cut(&message(64 << 10)), [4096, (64 << 10) + 10 - 4096]);
        let mut two = message(5000);
        two.extend(message(3));
        assert_eq!(cut(&two), [4096, 5010 - 4096, 13]);
    }

    #[test]
    fn nothing_is_cut_before_a_frame_is_whole() {
        let stream = message(10_000);
        let mut cutter = MessageCutter::default();
        assert_eq!(cutter.next_frame(&stream[..9]), None);
        assert_eq!(cutter.next_frame(&stream[..4095]), None);
        let first = cutter.next_frame(&stream[..5000]).unwrap();
        assert_eq!(first.len, 4096);
        assert_eq!(first.message, Some(10_010));
        assert_eq!(cutter.next_frame(&stream[4096..10_009]), None);
        let rest = cutter.next_frame(&stream[4096..]).unwrap();
        assert_eq!(
            rest,
            CutFrame {
                len: 10_010 - 4096,
                message: None
            }
        );
    }

    #[test]
    fn the_go_reader_takes_every_cut_frame() {
        for body in [
            0,
            1,
            4085,
            4086,
            4087,
            8182,
            8192,
            65_536,
            TTRPC_MESSAGE_MAX,
        ] {
            let mut stream = message(body);
            stream.extend(message(body / 3));
            stream.extend(message(17));
            let lens = cut(&stream);
            assert_eq!(go_reader_refuses(&stream, &lens), None, "body {body}");
        }
    }

    #[test]
    fn the_go_reader_refuses_a_message_in_one_large_frame() {
        // The failure seen on containerd: a reply of 4,100 bytes in one frame.
        let stream = message(4100);
        assert_eq!(
            go_reader_refuses(&stream, &[stream.len()]),
            Some((0, 4110, 4096))
        );
        // Small frames after the first would be taken, one read at a time.
        let mut stream = message(9000);
        stream.extend(message(1));
        let lens = [4096, 4096, 818, 11];
        assert_eq!(go_reader_refuses(&stream, &lens), None);
        // A frame running on into the next message is larger than the read
        // of its message's rest.
        assert_eq!(
            go_reader_refuses(&stream, &[4096, 9010 - 4096 + 11]),
            Some((1, 4925, 4914))
        );
    }
}
