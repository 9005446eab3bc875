//! Frame tracking above TLS: the per-message read deadline (slow-drip
//! peers) and the close code as it was on the wire.

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::time::Instant;
use tokio_rustls::client::TlsStream;
use tokio_tungstenite::WebSocketStream;

/// The stream type of an open connection.
pub(crate) type Ws = WebSocketStream<Tracked<Transport>>;

/// Follows the frames the peer sends, for the per-message read deadline
/// (slow-drip peers) and for the close code as it was on the wire.
///
/// The deadline of a message runs from the first byte of its first frame to
/// the last byte of its final fragment; control frames interleaved inside a
/// fragmented message do not restart it. Outside a message, a frame that has
/// started arriving (a control frame too) is timed the same way.
#[derive(Clone, Default)]
pub(crate) struct ReadTracker {
    inner: Arc<TrackerShared>,
}

/// No wake-up signals a frame's start: the tracker is fed by the
/// connection task's own reads, and the task looks at [`ReadTracker::started`]
/// right after each read, in the same poll. (A signal here woke the task
/// from inside its own poll on every message, which made the scheduler hand
/// it to another worker thread: two context switches per message.)
#[derive(Default)]
struct TrackerShared {
    state: Mutex<TrackState>,
}

#[derive(Default)]
struct TrackState {
    /// When the message (or lone frame) now in progress started arriving.
    started: Option<Instant>,
    /// The code of the peer's first close frame, as sent.
    peer_close_code: Option<u16>,
}

impl ReadTracker {
    fn state(&self) -> std::sync::MutexGuard<'_, TrackState> {
        // The lock guards plain data; a poisoned one is still consistent.
        self.inner.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A frame's first byte arrived.
    fn frame_begins(&self) {
        let mut st = self.state();
        if st.started.is_none() {
            st.started = Some(Instant::now());
        }
    }

    /// Nothing is in progress any more (a message or a lone frame completed).
    fn idle(&self) {
        self.state().started = None;
    }

    fn set_peer_close_code(&self, code: u16) {
        let mut st = self.state();
        if st.peer_close_code.is_none() {
            st.peer_close_code = Some(code);
        }
    }

    /// When the message (or frame) now in progress started arriving.
    pub(crate) fn started(&self) -> Option<Instant> {
        self.state().started
    }

    /// Moves the start of the message in progress later by `by`: the time the
    /// host itself did not read (inbox full) is not the peer's.
    pub(crate) fn shift(&self, by: Duration) {
        if let Some(s) = self.state().started.as_mut() {
            *s += by;
        }
    }

    /// The close code of the peer's first close frame as it was on the wire
    /// (tungstenite reports an invalid one as 1002).
    pub(crate) fn peer_close_code(&self) -> Option<u16> {
        self.state().peer_close_code
    }
}

/// Where the byte stream from the peer stands.
enum Phase {
    /// The HTTP response to the upgrade request, up to its blank line.
    Http { matched: u8 },
    /// A frame header: `have` of its bytes so far.
    Header { buf: [u8; 14], have: usize },
    /// A frame's payload.
    Payload {
        remaining: u64,
        opcode: u8,
        fin: bool,
        masked: bool,
        /// Close frames: how many bytes of the code have arrived.
        code_bytes: u8,
        close_code: [u8; 2],
    },
}

/// Parses frame boundaries (headers and payload lengths only; tungstenite
/// does the real decoding and every protocol check).
struct FrameParser {
    phase: Phase,
    /// A data message has started and its final fragment has not ended.
    in_message: bool,
}

impl Default for FrameParser {
    fn default() -> Self {
        FrameParser {
            phase: Phase::Http { matched: 0 },
            in_message: false,
        }
    }
}

impl FrameParser {
    fn feed(&mut self, mut data: &[u8], tracker: &ReadTracker) {
        while !data.is_empty() {
            match &mut self.phase {
                Phase::Http { matched } => {
                    const END: &[u8; 4] = b"\r\n\r\n";
                    let mut rest = None;
                    for (i, &b) in data.iter().enumerate() {
                        *matched = if b == END[*matched as usize] {
                            *matched + 1
                        } else if b == b'\r' {
                            1
                        } else {
                            0
                        };
                        if *matched == 4 {
                            rest = Some(i + 1);
                            break;
                        }
                    }
                    match rest {
                        Some(i) => {
                            data = &data[i..];
                            self.phase = Phase::Header {
                                buf: [0; 14],
                                have: 0,
                            };
                        }
                        None => return,
                    }
                }
                Phase::Header { buf, have } => {
                    if *have == 0 {
                        tracker.frame_begins();
                    }
                    let need = |buf: &[u8; 14], have: usize| -> usize {
                        if have < 2 {
                            return 2;
                        }
                        let ext = match buf[1] & 0x7f {
                            126 => 2,
                            127 => 8,
                            _ => 0,
                        };
                        2 + ext + if buf[1] & 0x80 != 0 { 4 } else { 0 }
                    };
                    while *have < need(buf, *have) && !data.is_empty() {
                        buf[*have] = data[0];
                        *have += 1;
                        data = &data[1..];
                    }
                    if *have < need(buf, *have) {
                        return;
                    }
                    let fin = buf[0] & 0x80 != 0;
                    let opcode = buf[0] & 0x0f;
                    let masked = buf[1] & 0x80 != 0;
                    let len = match buf[1] & 0x7f {
                        126 => u16::from_be_bytes([buf[2], buf[3]]) as u64,
                        127 => {
                            let mut b = [0u8; 8];
                            b.copy_from_slice(&buf[2..10]);
                            u64::from_be_bytes(b)
                        }
                        n => n as u64,
                    };
                    self.phase = Phase::Payload {
                        remaining: len,
                        opcode,
                        fin,
                        masked,
                        code_bytes: 0,
                        close_code: [0; 2],
                    };
                    if len == 0 {
                        self.frame_done(opcode, fin, tracker);
                    }
                }
                Phase::Payload {
                    remaining,
                    opcode,
                    fin,
                    masked,
                    code_bytes,
                    close_code,
                } => {
                    let n = (*remaining).min(data.len() as u64) as usize;
                    if *opcode == 0x8 && !*masked && *code_bytes < 2 {
                        for &b in data[..n].iter().take(2 - *code_bytes as usize) {
                            close_code[*code_bytes as usize] = b;
                            *code_bytes += 1;
                        }
                        if *code_bytes == 2 {
                            tracker.set_peer_close_code(u16::from_be_bytes(*close_code));
                        }
                    }
                    *remaining -= n as u64;
                    data = &data[n..];
                    if *remaining == 0 {
                        let (op, f) = (*opcode, *fin);
                        self.frame_done(op, f, tracker);
                    }
                }
            }
        }
    }

    fn frame_done(&mut self, opcode: u8, fin: bool, tracker: &ReadTracker) {
        // Opcodes below 8 are data frames (continuation, text, binary, reserved).
        if opcode < 0x8 {
            self.in_message = !fin;
        }
        if !self.in_message {
            tracker.idle();
        }
        self.phase = Phase::Header {
            buf: [0; 14],
            have: 0,
        };
    }
}

/// The transport under the WebSocket layer: TCP, or TLS over TCP.
pub(crate) enum Transport {
    /// `ws://`.
    Plain(TcpStream),
    /// `wss://`. Boxed: a TLS session is about a kilobyte, which every move
    /// of the socket, and every future that holds it (the handshake's, the
    /// connection task's), would otherwise carry and copy, `ws://` or not
    /// (docs/decisions.md, 190).
    Tls(Box<TlsStream<TcpStream>>),
}

impl AsyncRead for Transport {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Transport::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Transport::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Transport {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        match self.get_mut() {
            Transport::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Transport::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Transport::Plain(s) => Pin::new(s).poll_flush(cx),
            Transport::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Transport::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Transport::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

/// A stream that reports the frames arriving on it to a [`ReadTracker`]. It
/// sits above TLS, so it sees WebSocket bytes in both cases.
pub(crate) struct Tracked<S> {
    inner: S,
    tracker: ReadTracker,
    parser: FrameParser,
}

impl<S> Tracked<S> {
    pub(crate) fn new(inner: S, tracker: ReadTracker) -> Self {
        Tracked {
            inner,
            tracker,
            parser: FrameParser::default(),
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Tracked<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let me = self.get_mut();
        let before = buf.filled().len();
        let r = Pin::new(&mut me.inner).poll_read(cx, buf);
        if matches!(r, Poll::Ready(Ok(()))) {
            me.parser.feed(&buf.filled()[before..], &me.tracker);
        }
        r
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Tracked<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEAD: &[u8] = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n";

    /// The socket is moved from the handshake into the connection's task,
    /// and every future holding it carries its size: a TLS session inline
    /// made it 1,424 bytes for `ws://` too (decision 190).
    #[test]
    fn an_open_socket_stays_small() {
        let size = std::mem::size_of::<Ws>();
        assert!(size <= 512, "the socket type is {size} bytes");
    }

    fn frame(fin: bool, opcode: u8, masked: bool, payload: &[u8]) -> Vec<u8> {
        let mut v = vec![if fin { 0x80 } else { 0 } | opcode];
        let m = if masked { 0x80 } else { 0 };
        match payload.len() {
            n if n < 126 => v.push(m | n as u8),
            n if n <= 0xffff => {
                v.push(m | 126);
                v.extend_from_slice(&(n as u16).to_be_bytes());
            }
            n => {
                v.push(m | 127);
                v.extend_from_slice(&(n as u64).to_be_bytes());
            }
        }
        if masked {
            v.extend_from_slice(&[1, 2, 3, 4]);
        }
        v.extend_from_slice(payload);
        v
    }

    /// Feeds `parts` in order, whole and then byte by byte, and returns
    /// whether something is in progress afterwards (the same both ways).
    fn in_progress_after(parts: &[&[u8]]) -> bool {
        let whole = {
            let (t, mut p) = (ReadTracker::default(), FrameParser::default());
            for part in parts {
                p.feed(part, &t);
            }
            t.started().is_some()
        };
        let (t, mut p) = (ReadTracker::default(), FrameParser::default());
        for part in parts {
            for b in part.iter() {
                p.feed(std::slice::from_ref(b), &t);
            }
        }
        assert_eq!(whole, t.started().is_some(), "split feeding disagrees");
        whole
    }

    #[test]
    fn frame_boundaries() {
        let text = frame(true, 0x1, false, b"hello");
        let first = frame(false, 0x1, false, b"hel");
        let last = frame(true, 0x0, false, b"lo");
        let ping = frame(true, 0x9, false, b"p");
        let big = frame(true, 0x2, false, &[7u8; 300]);
        let huge = frame(true, 0x2, false, &vec![7u8; 70_000]);
        let masked = frame(true, 0x2, true, b"abc");
        for (name, parts, busy) in [
            ("head only", vec![HEAD], false),
            (
                "head without its blank line",
                vec![&HEAD[..HEAD.len() - 2], &text[..]],
                false,
            ),
            ("a whole message", vec![HEAD, &text], false),
            ("half a header", vec![HEAD, &text[..1]], true),
            ("half a payload", vec![HEAD, &text[..4]], true),
            ("a first fragment", vec![HEAD, &first], true),
            ("first fragment and ping", vec![HEAD, &first, &ping], true),
            ("first, ping, last", vec![HEAD, &first, &ping, &last], false),
            ("a lone ping", vec![HEAD, &ping], false),
            ("half a ping", vec![HEAD, &ping[..2]], true),
            ("16-bit length", vec![HEAD, &big, &text], false),
            ("16-bit length, partial", vec![HEAD, &big[..200]], true),
            ("64-bit length", vec![HEAD, &huge, &text], false),
            ("masked frame", vec![HEAD, &masked, &text], false),
            ("masked frame, partial", vec![HEAD, &masked[..5]], true),
        ] {
            assert_eq!(in_progress_after(&parts), busy, "{name}");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn control_frames_do_not_restart_a_message() {
        let (t, mut p) = (ReadTracker::default(), FrameParser::default());
        p.feed(HEAD, &t);
        p.feed(&frame(false, 0x2, false, b"part"), &t);
        let start = t.started().expect("a message is in progress");
        for _ in 0..5 {
            tokio::time::advance(Duration::from_millis(100)).await;
            p.feed(&frame(true, 0x9, false, b"ping"), &t);
            p.feed(&frame(true, 0xA, false, b"pong"), &t);
            assert_eq!(t.started(), Some(start));
        }
        p.feed(&frame(false, 0x0, false, b"more"), &t);
        assert_eq!(t.started(), Some(start), "a middle fragment");
        p.feed(&frame(true, 0x0, false, b"end"), &t);
        assert_eq!(t.started(), None);

        // The next frame starts a new clock; time not read is shifted out.
        tokio::time::advance(Duration::from_millis(100)).await;
        p.feed(&frame(true, 0x1, false, b"abc")[..3], &t);
        let again = t.started().unwrap();
        assert_eq!(again, start + Duration::from_millis(600));
        t.shift(Duration::from_secs(1));
        assert_eq!(t.started(), Some(again + Duration::from_secs(1)));
    }

    #[test]
    fn close_code_as_sent() {
        let mut payload = 1006u16.to_be_bytes().to_vec();
        payload.extend_from_slice(b"bye");
        let close = frame(true, 0x8, false, &payload);
        for split in 0..close.len() {
            let (t, mut p) = (ReadTracker::default(), FrameParser::default());
            p.feed(HEAD, &t);
            p.feed(&frame(true, 0x1, false, b"x"), &t);
            p.feed(&close[..split], &t);
            assert_eq!(t.peer_close_code(), (split >= 4).then_some(1006), "{split}");
            p.feed(&close[split..], &t);
            assert_eq!(t.peer_close_code(), Some(1006), "{split}");
            // Only the first close frame counts.
            p.feed(&frame(true, 0x8, false, &1000u16.to_be_bytes()), &t);
            assert_eq!(t.peer_close_code(), Some(1006));
        }
        for empty in [
            &frame(true, 0x8, false, b"")[..],
            &frame(true, 0x8, false, &[3]),
        ] {
            let (t, mut p) = (ReadTracker::default(), FrameParser::default());
            p.feed(HEAD, &t);
            p.feed(empty, &t);
            assert_eq!(t.peer_close_code(), None);
        }
    }
}
