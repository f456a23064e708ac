//! The NRI socket multiplexer: one unix stream ("trunk") carries several
//! logical connections, each a byte stream of ttrpc messages.
//!
//! Every frame is an 8-byte header (connection id, payload length, both u32
//! big-endian) and its payload. Connection 1 carries the Plugin service
//! (served by the plugin), connection 2 the Runtime service (served by the
//! runtime). Opening a connection is implicit: both ends just use its id.
//!
//! The reader checks the ttrpc message headers inside each connection as the
//! bytes go by, so garbage is caught at the trunk, logged with what was wrong,
//! and closes the trunk instead of wedging a ttrpc connection. The writer cuts
//! each message into frames as ttrpc-go does ([`crate::framing`]), and the
//! runtime side can read by the Go reader's rule ([`ReadRule::Go`]).

use std::{
    collections::HashMap,
    fmt, io,
    pin::Pin,
    sync::{Arc, Mutex},
    task::{ready, Context, Poll},
};

use bytes::{Buf, BufMut, Bytes, BytesMut};
use tokio::{
    io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf},
    sync::{mpsc, watch},
};
use tokio_util::{
    codec::{Decoder, Encoder, FramedRead},
    sync::{CancellationToken, PollSender},
};

use crate::{
    framing::{go_read_size, MessageCutter},
    ttrpc_frame::{TtrpcStreamCheck, TTRPC_HEADER_LEN, TTRPC_MESSAGE_MAX},
};

/// Length of a mux frame header.
pub const FRAME_HEADER_LEN: usize = 8;
/// Largest frame payload NRI's multiplexer writes: one whole ttrpc message
/// (`pkg/net/multiplex/mux.go: maxPayloadSize`). What its reader can take
/// is less: see [`crate::framing`].
pub const MAX_FRAME_PAYLOAD: usize = TTRPC_HEADER_LEN + TTRPC_MESSAGE_MAX;
/// Frames queued per connection before the trunk is declared stuck (the
/// same bound NRI's own multiplexer uses).
pub const READ_QUEUE_FRAMES: usize = 256;
/// Frames queued for writing across all connections of a trunk.
const WRITE_QUEUE_FRAMES: usize = 64;

/// A logical connection id on the trunk.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ConnId(pub u32);

impl ConnId {
    /// The connection carrying the Plugin service, served by the plugin.
    pub const PLUGIN_SERVICE: ConnId = ConnId(1);
    /// The connection carrying the Runtime service, served by the runtime.
    pub const RUNTIME_SERVICE: ConnId = ConnId(2);
}

impl fmt::Display for ConnId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "conn {}", self.0)
    }
}

/// One frame of the trunk.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Frame {
    /// The logical connection it belongs to.
    pub conn: ConnId,
    /// Its payload, a piece of that connection's byte stream.
    pub payload: Bytes,
}

/// Why a trunk was closed.
#[derive(Debug, thiserror::Error)]
pub enum MuxError {
    /// The peer announced a frame larger than any ttrpc message can need.
    #[error(
        "frame for {conn} announces {len} bytes, more than the maximum of {MAX_FRAME_PAYLOAD}"
    )]
    FrameTooLarge {
        /// Connection named in the frame header.
        conn: ConnId,
        /// Announced payload length.
        len: usize,
    },
    /// A frame names a connection this trunk does not carry.
    #[error("frame for unknown {conn} ({len} bytes); this trunk carries {known}")]
    UnknownConn {
        /// Connection named in the frame header.
        conn: ConnId,
        /// Announced payload length.
        len: usize,
        /// The connections this trunk carries.
        known: String,
    },
    /// The bytes of a connection do not form ttrpc messages.
    #[error("bad ttrpc stream on {conn}: {reason}")]
    BadTtrpc {
        /// The connection whose stream is broken.
        conn: ConnId,
        /// What was wrong.
        reason: String,
    },
    /// A frame is larger than the read of NRI's Go reader it meets, which
    /// fails that read with `ENOMEM` and closes the trunk.
    #[error("frame of {len} bytes for {conn} is larger than the {read}-byte read of NRI's Go reader it meets")]
    FrameExceedsRead {
        /// Connection named in the frame header.
        conn: ConnId,
        /// Its payload length.
        len: usize,
        /// The size of the read it met.
        read: usize,
    },
    /// A connection's reader fell so far behind that its queue overflowed.
    #[error("read queue of {conn} overflowed ({READ_QUEUE_FRAMES} frames pending)")]
    QueueOverflow {
        /// The connection whose reader is stuck.
        conn: ConnId,
    },
    /// The trunk ended in the middle of a frame.
    #[error("trunk closed in the middle of a frame ({buffered} bytes of it received)")]
    TruncatedFrame {
        /// Bytes of the unfinished frame that had arrived.
        buffered: usize,
    },
    /// Reading or writing the trunk failed.
    #[error("trunk I/O failed: {0}")]
    Io(#[from] io::Error),
}

/// Decodes and encodes mux frames. Pure, so it can be fuzzed on its own.
#[derive(Debug, Default)]
pub struct FrameCodec;

impl Decoder for FrameCodec {
    type Item = Frame;
    type Error = MuxError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Frame>, MuxError> {
        if src.len() < FRAME_HEADER_LEN {
            src.reserve(FRAME_HEADER_LEN - src.len());
            return Ok(None);
        }
        let conn = ConnId(u32::from_be_bytes(src[0..4].try_into().expect("4 bytes")));
        let len = u32::from_be_bytes(src[4..8].try_into().expect("4 bytes")) as usize;
        if len > MAX_FRAME_PAYLOAD {
            return Err(MuxError::FrameTooLarge { conn, len });
        }
        if src.len() < FRAME_HEADER_LEN + len {
            src.reserve(FRAME_HEADER_LEN + len - src.len());
            return Ok(None);
        }
        src.advance(FRAME_HEADER_LEN);
        let payload = src.split_to(len).freeze();
        Ok(Some(Frame { conn, payload }))
    }

    fn decode_eof(&mut self, src: &mut BytesMut) -> Result<Option<Frame>, MuxError> {
        match self.decode(src)? {
            Some(frame) => Ok(Some(frame)),
            None if src.is_empty() => Ok(None),
            None => Err(MuxError::TruncatedFrame {
                buffered: src.len(),
            }),
        }
    }
}

impl Encoder<Frame> for FrameCodec {
    type Error = MuxError;

    fn encode(&mut self, frame: Frame, dst: &mut BytesMut) -> Result<(), MuxError> {
        let len = frame.payload.len();
        if len > MAX_FRAME_PAYLOAD {
            return Err(MuxError::FrameTooLarge {
                conn: frame.conn,
                len,
            });
        }
        dst.reserve(FRAME_HEADER_LEN + len);
        dst.put_u32(frame.conn.0);
        dst.put_u32(len as u32);
        dst.extend_from_slice(&frame.payload);
        Ok(())
    }
}

/// How the reader takes frames.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReadRule {
    /// Any frame up to [`MAX_FRAME_PAYLOAD`]: each connection is a byte
    /// stream, however it is cut (the plugin side).
    Stream,
    /// As NRI's Go runtime reads: a frame larger than the read it meets
    /// closes the trunk (the simulated runtime).
    Go,
}

/// Control of a running trunk: its close reason and a way to close it.
#[derive(Clone)]
pub struct Mux {
    cancel: CancellationToken,
    closed: watch::Receiver<Option<Arc<TrunkEnd>>>,
    last_sent: Arc<Mutex<Option<SentFrame>>>,
}

/// The last frame a trunk queued for sending, and the message it belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SentFrame {
    /// Its connection.
    pub conn: ConnId,
    /// Its payload length.
    pub len: usize,
    /// The length of the ttrpc message it is part of.
    pub message: usize,
}

/// How a trunk ended.
#[derive(Debug)]
pub enum TrunkEnd {
    /// The peer closed the socket, or we closed the trunk ourselves.
    Closed,
    /// A protocol violation or I/O error ended it.
    Failed(MuxError),
}

impl fmt::Display for TrunkEnd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TrunkEnd::Closed => f.write_str("connection closed"),
            TrunkEnd::Failed(err) => err.fmt(f),
        }
    }
}

impl Mux {
    /// Starts multiplexing `trunk`, carrying exactly the connections in
    /// `conns`; a frame for any other id is a protocol error.
    ///
    /// Must be called within a tokio runtime: it spawns the reader and
    /// writer tasks of the trunk.
    pub fn start<S>(trunk: S, conns: &[ConnId], rule: ReadRule) -> (Mux, Vec<MuxConn>)
    where
        S: AsyncRead + AsyncWrite + Send + 'static,
    {
        let (read_half, write_half) = tokio::io::split(trunk);
        let cancel = CancellationToken::new();
        let (closed_tx, closed) = watch::channel(None);
        let closed_tx = Arc::new(closed_tx);
        let (write_tx, write_rx) = mpsc::channel(WRITE_QUEUE_FRAMES);
        let last_sent = Arc::new(Mutex::new(None));

        let mut routes = HashMap::new();
        let mut handles = Vec::with_capacity(conns.len());
        for &id in conns {
            let (tx, rx) = mpsc::channel(READ_QUEUE_FRAMES);
            routes.insert(id, Route::new(tx));
            handles.push(MuxConn::new(id, rx, write_tx.clone(), last_sent.clone()));
        }
        drop(write_tx);

        let reader = Reader {
            routes,
            known: describe(conns),
            rule,
        };
        tokio::spawn(run_until_end(
            reader.run(read_half),
            cancel.clone(),
            closed_tx.clone(),
        ));
        tokio::spawn(run_until_end(
            write_frames(write_half, write_rx),
            cancel.clone(),
            closed_tx,
        ));
        let mux = Mux {
            cancel,
            closed,
            last_sent,
        };
        (mux, handles)
    }

    /// The last frame queued for sending on any connection of the trunk:
    /// when the peer closes the trunk, what it was sent last.
    pub fn last_sent(&self) -> Option<SentFrame> {
        *self.last_sent.lock().expect("never poisoned")
    }

    /// Closes the trunk: both directions stop and every connection sees
    /// end-of-stream.
    pub fn close(&self) {
        self.cancel.cancel();
    }

    /// Waits until the trunk has ended and tells how.
    pub async fn ended(&self) -> Arc<TrunkEnd> {
        let mut closed = self.closed.clone();
        let end = closed
            .wait_for(Option::is_some)
            .await
            .expect("the end is recorded before its sender is dropped");
        end.clone().expect("waited for Some")
    }
}

fn describe(conns: &[ConnId]) -> String {
    let ids: Vec<String> = conns.iter().map(|c| c.0.to_string()).collect();
    format!("conns {}", ids.join(", "))
}

/// Runs one half of the trunk until it finishes or the trunk is closed, and
/// records the first end seen.
async fn run_until_end(
    half: impl std::future::Future<Output = Result<(), MuxError>>,
    cancel: CancellationToken,
    closed: Arc<watch::Sender<Option<Arc<TrunkEnd>>>>,
) {
    let end = tokio::select! {
        result = half => match result {
            Ok(()) => TrunkEnd::Closed,
            Err(err) => TrunkEnd::Failed(err),
        },
        () = cancel.cancelled() => TrunkEnd::Closed,
    };
    cancel.cancel();
    closed.send_if_modified(|slot| {
        if slot.is_none() {
            *slot = Some(Arc::new(end));
            true
        } else {
            false
        }
    });
}

struct Route {
    queue: mpsc::Sender<Bytes>,
    check: TtrpcStreamCheck,
}

impl Route {
    fn new(queue: mpsc::Sender<Bytes>) -> Self {
        Route {
            queue,
            check: TtrpcStreamCheck::default(),
        }
    }
}

struct Reader {
    routes: HashMap<ConnId, Route>,
    known: String,
    rule: ReadRule,
}

impl Reader {
    async fn run(mut self, half: impl AsyncRead + Unpin) -> Result<(), MuxError> {
        use futures_util::StreamExt;

        let mut frames = FramedRead::with_capacity(half, FrameCodec, 64 * 1024);
        while let Some(frame) = frames.next().await {
            self.route(frame?)?;
        }
        self.check_nothing_unfinished()
    }

    fn check_nothing_unfinished(&self) -> Result<(), MuxError> {
        for (&conn, route) in &self.routes {
            if let Some(reason) = route.check.unfinished() {
                return Err(MuxError::BadTtrpc { conn, reason });
            }
        }
        Ok(())
    }

    fn route(&mut self, frame: Frame) -> Result<(), MuxError> {
        let Frame { conn, payload } = frame;
        let Some(route) = self.routes.get_mut(&conn) else {
            return Err(MuxError::UnknownConn {
                conn,
                len: payload.len(),
                known: self.known.clone(),
            });
        };
        if self.rule == ReadRule::Go {
            let read = go_read_size(route.check.body_left());
            if payload.len() > read {
                return Err(MuxError::FrameExceedsRead {
                    conn,
                    len: payload.len(),
                    read,
                });
            }
        }
        route
            .check
            .feed(&payload)
            .map_err(|reason| MuxError::BadTtrpc { conn, reason })?;
        match route.queue.try_send(payload) {
            Ok(()) => Ok(()),
            Err(mpsc::error::TrySendError::Full(_)) => Err(MuxError::QueueOverflow { conn }),
            // The local end of this connection is gone; like a closed
            // socket, whatever still arrives for it is dropped.
            Err(mpsc::error::TrySendError::Closed(_)) => Ok(()),
        }
    }
}

async fn write_frames(
    half: impl AsyncWrite + Unpin,
    mut queue: mpsc::Receiver<Frame>,
) -> Result<(), MuxError> {
    let mut out = tokio::io::BufWriter::with_capacity(64 * 1024, half);
    let mut codec = FrameCodec;
    let mut buf = BytesMut::new();
    while let Some(frame) = queue.recv().await {
        let mut next = Some(frame);
        // Write everything already queued, then flush once.
        while let Some(frame) = next {
            buf.clear();
            codec.encode(frame, &mut buf)?;
            out.write_all(&buf).await?;
            next = queue.try_recv().ok();
        }
        out.flush().await?;
    }
    out.shutdown().await?;
    Ok(())
}

/// One logical connection of a trunk, a byte stream for ttrpc.
///
/// Writes are collected and sent in frames cut at message boundaries as
/// ttrpc-go cuts them ([`MessageCutter`]): a frame leaves once it is whole,
/// so a flush inside a message sends only the frames it completes.
pub struct MuxConn {
    id: ConnId,
    incoming: mpsc::Receiver<Bytes>,
    unread: Bytes,
    // Behind a mutex only to make the connection `Sync`, as ttrpc's
    // transport demands; access is always through `&mut self`.
    outgoing: Mutex<PollSender<Frame>>,
    unsent: BytesMut,
    cutter: MessageCutter,
    message: usize,
    last_sent: Arc<Mutex<Option<SentFrame>>>,
}

impl MuxConn {
    fn new(
        id: ConnId,
        incoming: mpsc::Receiver<Bytes>,
        outgoing: mpsc::Sender<Frame>,
        last_sent: Arc<Mutex<Option<SentFrame>>>,
    ) -> Self {
        MuxConn {
            id,
            incoming,
            unread: Bytes::new(),
            outgoing: Mutex::new(PollSender::new(outgoing)),
            unsent: BytesMut::new(),
            cutter: MessageCutter::default(),
            message: 0,
            last_sent,
        }
    }

    /// The connection id.
    pub fn id(&self) -> ConnId {
        self.id
    }

    /// Sends every whole frame of the unsent bytes.
    fn poll_send_whole_frames(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let outgoing = self.outgoing.get_mut().expect("never poisoned");
        // Even with no whole frame to send, a closed trunk is an error.
        if outgoing.get_ref().is_none_or(|sender| sender.is_closed()) {
            return Poll::Ready(Err(trunk_closed()));
        }
        loop {
            let mut cutter = self.cutter;
            let Some(cut) = cutter.next_frame(&self.unsent) else {
                return Poll::Ready(Ok(()));
            };
            ready!(outgoing.poll_reserve(cx)).map_err(|_| trunk_closed())?;
            self.cutter = cutter;
            self.message = cut.message.unwrap_or(self.message);
            let payload = self.unsent.split_to(cut.len).freeze();
            outgoing
                .send_item(Frame {
                    conn: self.id,
                    payload,
                })
                .map_err(|_| trunk_closed())?;
            *self.last_sent.lock().expect("never poisoned") = Some(SentFrame {
                conn: self.id,
                len: cut.len,
                message: self.message,
            });
        }
    }
}

/// A ttrpc listener yielding `conn` once. It stays open afterwards, so the
/// server on it can be shut down like a server on a real socket.
pub fn ttrpc_listener(conn: MuxConn) -> ttrpc::r#async::transport::Listener {
    use futures_util::{stream, StreamExt};
    ttrpc::r#async::transport::Listener::new(
        stream::once(async move { Ok(conn) }).chain(stream::pending()),
    )
}

fn trunk_closed() -> io::Error {
    io::Error::new(io::ErrorKind::BrokenPipe, "NRI trunk closed")
}

impl AsyncRead for MuxConn {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if self.unread.is_empty() {
            match ready!(self.incoming.poll_recv(cx)) {
                Some(payload) => self.unread = payload,
                None => return Poll::Ready(Ok(())),
            }
        }
        let n = self.unread.len().min(buf.remaining());
        buf.put_slice(&self.unread.split_to(n));
        Poll::Ready(Ok(()))
    }
}

impl AsyncWrite for MuxConn {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        // A frame is at most MAX_FRAME_PAYLOAD long, so this many unsent
        // bytes always begin with a whole one.
        if self.unsent.len() >= MAX_FRAME_PAYLOAD {
            ready!(self.poll_send_whole_frames(cx))?;
        }
        let n = buf.len().min(MAX_FRAME_PAYLOAD - self.unsent.len());
        self.unsent.extend_from_slice(&buf[..n]);
        Poll::Ready(Ok(n))
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.poll_send_whole_frames(cx)
    }

    /// Sends the whole frames; an unfinished message left behind (a write
    /// given up half-way) would only make the peer's stream unreadable.
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.as_mut().poll_send_whole_frames(cx))?;
        self.outgoing.get_mut().expect("never poisoned").close();
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt;

    fn frame_bytes(conn: u32, payload: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(&conn.to_be_bytes());
        out.extend_from_slice(&(payload.len() as u32).to_be_bytes());
        out.extend_from_slice(payload);
        out
    }

    fn ttrpc_message(stream: u32, body: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(&(body.len() as u32).to_be_bytes());
        out.extend_from_slice(&stream.to_be_bytes());
        out.extend_from_slice(&[1, 0]);
        out.extend_from_slice(body);
        out
    }

    #[test]
    fn decoder_waits_for_whole_frames() {
        let bytes = frame_bytes(2, b"hello");
        let mut codec = FrameCodec;
        for cut in 0..bytes.len() {
            let mut buf = BytesMut::from(&bytes[..cut]);
            assert_eq!(codec.decode(&mut buf).unwrap(), None, "cut at {cut}");
        }
        let mut buf = BytesMut::from(&bytes[..]);
        let frame = codec.decode(&mut buf).unwrap().unwrap();
        assert_eq!(frame.conn, ConnId(2));
        assert_eq!(&frame.payload[..], b"hello");
        assert!(buf.is_empty());
    }

    #[test]
    fn decoder_refuses_oversized_frame_before_buffering_it() {
        let mut buf = BytesMut::new();
        buf.put_u32(1);
        buf.put_u32((MAX_FRAME_PAYLOAD + 1) as u32);
        let err = FrameCodec.decode(&mut buf).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "frame for conn 1 announces {} bytes, more than the maximum of {MAX_FRAME_PAYLOAD}",
                MAX_FRAME_PAYLOAD + 1
            )
        );
    }

    #[test]
    fn decoder_reports_truncated_frame_at_eof() {
        let bytes = frame_bytes(1, b"abcdef");
        let mut buf = BytesMut::from(&bytes[..11]);
        let err = FrameCodec.decode_eof(&mut buf).unwrap_err();
        assert_eq!(
            err.to_string(),
            "trunk closed in the middle of a frame (11 bytes of it received)"
        );
    }

    #[test]
    fn encoder_round_trips() {
        let mut buf = BytesMut::new();
        let frame = Frame {
            conn: ConnId(7),
            payload: Bytes::from_static(b"xyz"),
        };
        FrameCodec.encode(frame.clone(), &mut buf).unwrap();
        assert_eq!(&buf[..], &frame_bytes(7, b"xyz")[..]);
        assert_eq!(FrameCodec.decode(&mut buf).unwrap(), Some(frame));
    }

    #[tokio::test]
    async fn connections_are_separate_byte_streams() {
        let (a, b) = tokio::io::duplex(1 << 20);
        let (_mux_a, mut conns_a) = Mux::start(
            a,
            &[ConnId::PLUGIN_SERVICE, ConnId::RUNTIME_SERVICE],
            ReadRule::Stream,
        );
        let (_mux_b, mut conns_b) = Mux::start(
            b,
            &[ConnId::PLUGIN_SERVICE, ConnId::RUNTIME_SERVICE],
            ReadRule::Go,
        );
        let msg1 = ttrpc_message(1, b"to plugin service");
        let msg2 = ttrpc_message(3, b"to runtime service");
        conns_a[0].write_all(&msg1).await.unwrap();
        conns_a[0].flush().await.unwrap();
        conns_a[1].write_all(&msg2).await.unwrap();
        conns_a[1].flush().await.unwrap();

        let mut got2 = vec![0; msg2.len()];
        conns_b[1].read_exact(&mut got2).await.unwrap();
        let mut got1 = vec![0; msg1.len()];
        conns_b[0].read_exact(&mut got1).await.unwrap();
        assert_eq!(got1, msg1);
        assert_eq!(got2, msg2);
    }

    #[tokio::test]
    async fn messages_leave_in_the_frames_ttrpc_go_writes() {
        let (a, mut raw) = tokio::io::duplex(16 << 20);
        let (mux, mut conns) = Mux::start(a, &[ConnId::PLUGIN_SERVICE], ReadRule::Stream);
        let body = vec![0xab; TTRPC_MESSAGE_MAX];
        let mut big = ttrpc_message(1, &body);
        big.extend(ttrpc_message(3, b"tail"));
        conns[0].write_all(&big).await.unwrap();
        conns[0].flush().await.unwrap();

        let mut lens = Vec::new();
        let mut total = 0;
        while total < big.len() {
            let mut header = [0; FRAME_HEADER_LEN];
            raw.read_exact(&mut header).await.unwrap();
            let len = u32::from_be_bytes(header[4..].try_into().unwrap()) as usize;
            let mut payload = vec![0; len];
            raw.read_exact(&mut payload).await.unwrap();
            assert_eq!(payload[..], big[total..total + len]);
            lens.push(len);
            total += len;
        }
        assert_eq!(lens, vec![4096, MAX_FRAME_PAYLOAD - 4096, 14]);
        let last = mux.last_sent().unwrap();
        assert_eq!((last.conn, last.len, last.message), (ConnId(1), 14, 14));
    }

    #[tokio::test]
    async fn a_go_reader_takes_messages_of_every_size() {
        let (a, b) = tokio::io::duplex(1 << 16);
        let (_plugin, mut ours) = Mux::start(a, &[ConnId::PLUGIN_SERVICE], ReadRule::Stream);
        let (runtime, mut theirs) = Mux::start(b, &[ConnId::PLUGIN_SERVICE], ReadRule::Go);
        for body in [0, 4086, 4087, 64 << 10, 3 << 20, TTRPC_MESSAGE_MAX] {
            let msg = ttrpc_message(1, &vec![7; body]);
            // As ttrpc-rust writes: the first 4096 bytes, the rest, a flush.
            let (head, rest) = msg.split_at(msg.len().min(4096));
            let (write, read) = tokio::join!(
                async {
                    ours[0].write_all(head).await.unwrap();
                    ours[0].write_all(rest).await.unwrap();
                    ours[0].flush().await.unwrap();
                },
                async {
                    let mut got = vec![0; msg.len()];
                    theirs[0].read_exact(&mut got).await.map(|_| got)
                }
            );
            let () = write;
            assert!(read.unwrap() == msg, "body {body}");
        }
        assert!(runtime.closed.borrow().is_none());
    }

    #[tokio::test]
    async fn a_go_reader_closes_the_trunk_on_a_frame_larger_than_its_read() {
        let end =
            end_after_raw_input_as(frame_bytes(1, &ttrpc_message(1, &[0; 4100])), ReadRule::Go)
                .await;
        assert_eq!(
            end,
            "frame of 4110 bytes for conn 1 is larger than the 4096-byte read of NRI's Go reader it meets"
        );
    }

    async fn end_after_raw_input(input: Vec<u8>) -> String {
        end_after_raw_input_as(input, ReadRule::Stream).await
    }

    async fn end_after_raw_input_as(input: Vec<u8>, rule: ReadRule) -> String {
        let (a, mut raw) = tokio::io::duplex(1 << 20);
        let (mux, _conns) = Mux::start(a, &[ConnId::PLUGIN_SERVICE, ConnId::RUNTIME_SERVICE], rule);
        raw.write_all(&input).await.unwrap();
        match &*mux.ended().await {
            TrunkEnd::Failed(err) => err.to_string(),
            TrunkEnd::Closed => "closed".to_string(),
        }
    }

    #[tokio::test]
    async fn unknown_conn_closes_the_trunk() {
        let end = end_after_raw_input(frame_bytes(9, &ttrpc_message(1, b"x"))).await;
        assert_eq!(
            end,
            "frame for unknown conn 9 (11 bytes); this trunk carries conns 1, 2"
        );
    }

    #[tokio::test]
    async fn garbage_in_a_conn_closes_the_trunk() {
        let end = end_after_raw_input(frame_bytes(1, b"\xff\xff\xff\xffgarbage!")).await;
        assert!(
            end.starts_with("bad ttrpc stream on conn 1: message length 4294967295"),
            "{end}"
        );
    }

    #[tokio::test]
    async fn peer_close_ends_cleanly_and_reads_see_eof() {
        let (a, raw) = tokio::io::duplex(1024);
        let (mux, mut conns) = Mux::start(a, &[ConnId::PLUGIN_SERVICE], ReadRule::Stream);
        drop(raw);
        assert!(matches!(&*mux.ended().await, TrunkEnd::Closed));
        let mut buf = [0; 1];
        assert_eq!(conns[0].read(&mut buf).await.unwrap(), 0);
        let err = conns[0].write_all(b"x").await.and(conns[0].flush().await);
        assert_eq!(err.unwrap_err().kind(), io::ErrorKind::BrokenPipe);
    }
}
