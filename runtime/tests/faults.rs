//! Misbehaving peers and resolvers. One table of faults, one harness that
//! checks the same post-conditions after every row:
//!
//! * the host reports a bounded diagnostic (the expected code; messages,
//!   close reasons and `last_error` short, free of control characters and of
//!   the URL's secret query value);
//! * configured deadlines are respected from below and above (measured from
//!   before `open`, with generous slack for a loaded machine); faults without
//!   a deadline are reported promptly;
//! * the slot is freed (`open_connections()` back down, and a new open
//!   succeeds on a host whose `max_connections` leaves room for exactly one);
//! * no task is left (`active_tasks()` back to its baseline, polled with a
//!   bound) and a hanging resolver's future is dropped;
//! * the host drops the peer's socket (the peer then sees EOF), or for denied
//!   answers never opens one;
//! * a neighbour connection on the same host echoes correctly throughout.
//!
//! The specific tests after the table cover what a row cannot express.

#![allow(clippy::result_large_err)]

mod support;
use netgrant_runtime::{
    ConnectionId, HostConfig, Incoming, OpenOptions, ResolveFuture, Resolver, State,
    StaticResolver, WebSocketHost,
};
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use support::*;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::sync::watch;

const LONG: Option<Duration> = Some(Duration::from_secs(10));

/// The configured deadline of the timed rows.
const BOUND: Duration = Duration::from_millis(300);

/// A query value that must never appear in any diagnostic.
const SECRET: &str = "s3cr3t-fault-token";

// ---------------------------------------------------------------------------
// The table
// ---------------------------------------------------------------------------

type ScriptFuture = Pin<Box<dyn Future<Output = Option<TcpStream>> + Send>>;

/// A peer script: runs on the accepted socket and returns it (to be read
/// until EOF, which proves the host dropped it) or `None` if it ended it.
type Script = Arc<dyn Fn(TcpStream, Ctl) -> ScriptFuture + Send + Sync>;

fn script(f: impl Fn(TcpStream, Ctl) -> ScriptFuture + Send + Sync + 'static) -> Script {
    Arc::new(f)
}

/// What the row connects to.
enum Peer {
    /// A raw TCP server on loopback running the script (`wss` if `tls`).
    Raw { tls: bool, script: Script },
    /// A port nothing listens on.
    Refused,
    /// `ws://NAME:PORT/` through [`FaultResolver`]; a listener on PORT must
    /// see no connection. `networks` is added to the target.
    Resolve {
        name: &'static str,
        answers: &'static [&'static str],
        networks: &'static str,
    },
}

/// The close frame the peer receives from the host.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum PeerSees {
    /// Not checked (the peer cannot read, or the socket is reset).
    Unchecked,
    /// A close frame with this code.
    Close(u16),
    /// A close frame without a code.
    EmptyClose,
}

enum Expect {
    /// `open` fails with `code`; if `bound` is given, not before it.
    OpenFails {
        code: &'static str,
        bound: Option<Duration>,
        detail: &'static str,
    },
    /// `open` succeeds, `before` arrive as text, then `recv` reports
    /// `Closed { code, reason }`; `last_error` starts with `error` (or there
    /// is none) and contains `detail`.
    Closed {
        before: &'static [&'static str],
        code: u16,
        reason: &'static str,
        error: Option<&'static str>,
        detail: &'static str,
        bound: Option<Duration>,
        peer_sees: PeerSees,
    },
    /// `open` succeeds; sends of 256 KiB stall, each bounded by the write
    /// timeout, until one fails and the connection is closed with `timeout`.
    SendsStall,
}

struct Fault {
    name: String,
    peer: Peer,
    cfg: fn(&mut HostConfig),
    expect: Expect,
}

fn no_cfg(_: &mut HostConfig) {}

fn closed(code: u16, reason: &'static str, error: Option<&'static str>) -> Expect {
    Expect::Closed {
        before: &[],
        code,
        reason,
        error,
        detail: "",
        bound: None,
        peer_sees: PeerSees::Unchecked,
    }
}

fn closed_peer_sees(code: u16, reason: &'static str, error: &'static str) -> Expect {
    Expect::Closed {
        before: &[],
        code,
        reason,
        error: Some(error),
        detail: "",
        bound: None,
        peer_sees: PeerSees::Close(code),
    }
}

fn fails(code: &'static str) -> Expect {
    Expect::OpenFails {
        code,
        bound: None,
        detail: "",
    }
}

fn times_out(detail: &'static str) -> Expect {
    Expect::OpenFails {
        code: "timeout",
        bound: Some(BOUND),
        detail,
    }
}

/// The peer closes with `payload`; the host reports `code`/`error` and
/// answers with `echo`.
fn peer_close(code: u16, error: Option<&'static str>, echo: PeerSees) -> Expect {
    Expect::Closed {
        before: &[],
        code,
        reason: if error.is_some() {
            "protocol_error"
        } else {
            "bye"
        },
        error,
        detail: "",
        bound: None,
        peer_sees: echo,
    }
}

fn raw(script: Script) -> Peer {
    Peer::Raw { tls: false, script }
}

/// Completes the handshake, sends `out`, then reads the host's close frame.
fn sends(out: Vec<u8>) -> Peer {
    raw(script(move |tcp, ctl| {
        Box::pin(frames_then_read_close(tcp, ctl, out.clone()))
    }))
}

/// Reads the upgrade request and answers `out`.
fn answers(out: &'static [u8]) -> Peer {
    raw(script(move |tcp, _| Box::pin(answer_with(tcp, out))))
}

/// Reads the upgrade request, writes `out`, then stalls.
fn stalls_after(out: &'static [u8]) -> Peer {
    raw(script(move |tcp, ctl| {
        Box::pin(stall_after_writing(tcp, ctl, out))
    }))
}

/// Accepts TCP and stalls (plain or TLS: it never answers the ClientHello).
fn stalls(tls: bool) -> Peer {
    Peer::Raw {
        tls,
        script: script(|tcp, ctl| {
            Box::pin(async move {
                ctl.released().await;
                Some(tcp)
            })
        }),
    }
}

fn resolves(name: &'static str, answers: &'static [&'static str], networks: &'static str) -> Peer {
    Peer::Resolve {
        name,
        answers,
        networks,
    }
}

/// Frames are concatenated.
fn frames(fs: &[Vec<u8>]) -> Vec<u8> {
    fs.concat()
}

fn short_handshake(c: &mut HostConfig) {
    c.handshake_timeout = BOUND;
}

fn short_read_deadline(c: &mut HostConfig) {
    c.message_read_deadline = BOUND;
    c.idle_timeout = Duration::from_secs(60);
}

/// Closed by the host's read deadline, the peer told with 1008.
fn read_deadline() -> Expect {
    Expect::Closed {
        before: &[],
        code: 1008,
        reason: "timeout",
        error: Some("timeout"),
        detail: "read deadline",
        bound: Some(BOUND),
        peer_sees: PeerSees::Close(1008),
    }
}

fn table() -> Vec<Fault> {
    let too_large = || closed_peer_sees(1009, "message_too_large", "message_too_large");
    let bad_utf8 = || closed_peer_sees(1007, "invalid_utf8", "protocol_error");
    let protocol = || closed_peer_sees(1002, "protocol_error", "protocol_error");
    let chunk = [b'a'; 8 * 1024];
    let mut rows = vec![
        // --- connect and handshake ------------------------------------------
        Fault {
            name: "port refused".into(),
            peer: Peer::Refused,
            cfg: no_cfg,
            expect: fails("connect_failed"),
        },
        Fault {
            name: "accepts TCP, then stalls forever (never reads)".into(),
            peer: stalls(false),
            cfg: short_handshake,
            expect: times_out("handshake"),
        },
        Fault {
            name: "reads the request, never answers".into(),
            peer: stalls_after(b""),
            cfg: short_handshake,
            expect: times_out("handshake"),
        },
        Fault {
            name: "stalls mid-101 (inside the status line)".into(),
            peer: stalls_after(b"HTTP/1.1 10"),
            cfg: short_handshake,
            expect: times_out("handshake"),
        },
        Fault {
            name: "stalls mid-101 (before the blank line)".into(),
            peer: stalls_after(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"),
            cfg: short_handshake,
            expect: times_out("handshake"),
        },
        Fault {
            name: "TLS: the ClientHello goes unanswered".into(),
            peer: stalls(true),
            cfg: short_handshake,
            expect: times_out("handshake"),
        },
        Fault {
            name: "TLS: plain HTTP instead of a ServerHello".into(),
            peer: Peer::Raw {
                tls: true,
                script: script(|mut tcp, _| {
                    Box::pin(async move {
                        let _ = tcp.write_all(b"HTTP/1.1 400 Bad Request\r\n\r\n").await;
                        Some(tcp)
                    })
                }),
            },
            cfg: no_cfg,
            expect: fails("tls_failed"),
        },
        Fault {
            name: "closes during the handshake".into(),
            peer: raw(script(|mut tcp, _| {
                Box::pin(async move {
                    read_request_head(&mut tcp).await;
                    None
                })
            })),
            cfg: no_cfg,
            expect: fails("handshake_failed"),
        },
        Fault {
            name: "answers 200 instead of 101".into(),
            peer: answers(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"),
            cfg: no_cfg,
            expect: fails("handshake_failed"),
        },
        Fault {
            name: "answers a redirect (not followed)".into(),
            peer: answers(b"HTTP/1.1 302 Found\r\nLocation: ws://localhost:1/\r\nContent-Length: 0\r\n\r\n"),
            cfg: no_cfg,
            expect: fails("handshake_failed"),
        },
        Fault {
            name: "101 with a wrong Sec-WebSocket-Accept".into(),
            peer: answers(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: AAAAAAAAAAAAAAAAAAAAAAAAAAA=\r\n\r\n"),
            cfg: no_cfg,
            expect: fails("handshake_failed"),
        },
        Fault {
            name: "101 selecting a subprotocol that was not offered".into(),
            peer: raw(script(|mut tcp, _| {
                Box::pin(async move {
                    let head = read_request_head(&mut tcp).await?;
                    let mut r = switching_protocols(&head);
                    r.truncate(r.len() - 2);
                    r.extend_from_slice(b"Sec-WebSocket-Protocol: json\r\n\r\n");
                    tcp.write_all(&r).await.ok()?;
                    Some(tcp)
                })
            })),
            cfg: no_cfg,
            expect: fails("handshake_failed"),
        },
        Fault {
            name: "endless handshake response head".into(),
            peer: raw(script(|mut tcp, _| {
                Box::pin(async move {
                    read_request_head(&mut tcp).await?;
                    tcp.write_all(b"HTTP/1.1 101 Switching Protocols\r\n").await.ok()?;
                    let lines = b"X-Filler: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n".repeat(64);
                    // The host must give up long before this ends (3 MiB).
                    for _ in 0..1024 {
                        tcp.write_all(&lines).await.ok()?;
                    }
                    Some(tcp)
                })
            })),
            cfg: no_cfg,
            expect: fails("handshake_failed"),
        },
        // --- frames over the bounds ---------------------------------------------
        Fault {
            name: "frame header announcing 2^40 bytes".into(),
            peer: sends(frame_header(true, BINARY, 1 << 40)),
            cfg: no_cfg,
            expect: too_large(),
        },
        Fault {
            name: "one frame a byte over the frame bound".into(),
            peer: sends(frame(true, BINARY, &[7u8; 4097])),
            cfg: |c| c.max_frame_bytes = 4096,
            expect: too_large(),
        },
        Fault {
            name: "fragmented message over the message bound".into(),
            peer: sends(frames(&[
                frame(false, TEXT, &chunk),
                frame(false, CONT, &chunk),
                frame(true, CONT, &chunk),
            ])),
            cfg: |c| c.max_message_bytes = 16 * 1024,
            expect: too_large(),
        },
        // --- invalid data ---------------------------------------------------------
        Fault {
            name: "invalid UTF-8 in a text frame".into(),
            peer: sends(frame(true, TEXT, b"ab\xff\xfe")),
            cfg: no_cfg,
            expect: bad_utf8(),
        },
        Fault {
            // "€" is e2 82 ac; the second fragment breaks it.
            name: "invalid UTF-8 across text fragments".into(),
            peer: sends(frames(&[frame(false, TEXT, b"ok \xe2\x82"), frame(true, CONT, b"\x28")])),
            cfg: no_cfg,
            expect: bad_utf8(),
        },
        Fault {
            name: "invalid UTF-8 in a close reason".into(),
            peer: sends(frame(true, CLOSE, &close_payload(1000, b"\xc3\x28"))),
            cfg: no_cfg,
            expect: bad_utf8(),
        },
        Fault {
            name: "masked frame from the server".into(),
            peer: sends(vec![0x80 | TEXT, 0x82, 1, 2, 3, 4, b'h' ^ 1, b'i' ^ 2]),
            cfg: no_cfg,
            expect: protocol(),
        },
        Fault {
            name: "reserved bits set".into(),
            peer: sends(vec![0x80 | 0x40 | TEXT, 2, b'h', b'i']),
            cfg: no_cfg,
            expect: protocol(),
        },
        Fault {
            name: "reserved data opcode".into(),
            peer: sends(frame(true, 0x3, b"x")),
            cfg: no_cfg,
            expect: protocol(),
        },
        Fault {
            name: "fragmented ping".into(),
            peer: sends(frame(false, PING, b"x")),
            cfg: no_cfg,
            expect: protocol(),
        },
        Fault {
            name: "ping with a 126-byte payload".into(),
            peer: sends(frame(true, PING, &[0u8; 126])),
            cfg: no_cfg,
            expect: protocol(),
        },
        Fault {
            name: "continuation frame without a message".into(),
            peer: sends(frame(true, CONT, b"x")),
            cfg: no_cfg,
            expect: protocol(),
        },
        Fault {
            name: "new message inside a fragmented one".into(),
            peer: sends(frames(&[frame(false, TEXT, b"a"), frame(true, BINARY, b"b")])),
            cfg: no_cfg,
            expect: protocol(),
        },
        Fault {
            name: "close frame with a one-byte payload".into(),
            peer: sends(frame(true, CLOSE, &[3])),
            cfg: no_cfg,
            expect: protocol(),
        },
        // --- the connection goes away ----------------------------------------
        Fault {
            name: "reset (RST) mid-message".into(),
            peer: raw(script(|tcp, _| Box::pin(cut_mid_message(tcp, true)))),
            cfg: no_cfg,
            expect: closed(1006, "connection_lost", Some("io_error")),
        },
        Fault {
            name: "FIN mid-message".into(),
            peer: raw(script(|tcp, _| Box::pin(cut_mid_message(tcp, false)))),
            cfg: no_cfg,
            expect: closed(1006, "connection_lost", Some("io_error")),
        },
        Fault {
            name: "FIN between messages, without a close frame".into(),
            peer: raw(script(|mut tcp, _| {
                Box::pin(async move {
                    accept_raw(&mut tcp).await?;
                    let _ = tcp.write_all(&frame(true, TEXT, b"last words")).await;
                    None
                })
            })),
            cfg: no_cfg,
            expect: Expect::Closed {
                before: &["last words"],
                code: 1006,
                reason: "connection_lost",
                error: Some("io_error"),
                detail: "without a close frame",
                bound: None,
                peer_sees: PeerSees::Unchecked,
            },
        },
        // --- deadlines -----------------------------------------------------------
        Fault {
            name: "slow drip: one byte of a 1000-byte frame every 100 ms".into(),
            peer: raw(script(|tcp, ctl| Box::pin(slow_drip(tcp, ctl)))),
            cfg: short_read_deadline,
            expect: read_deadline(),
        },
        Fault {
            name: "first fragment, then a ping every 100 ms".into(),
            peer: raw(script(|tcp, ctl| Box::pin(fragment_then_control(tcp, ctl, PING)))),
            cfg: short_read_deadline,
            expect: read_deadline(),
        },
        Fault {
            name: "first fragment, then a pong every 100 ms".into(),
            peer: raw(script(|tcp, ctl| Box::pin(fragment_then_control(tcp, ctl, PONG)))),
            cfg: short_read_deadline,
            expect: read_deadline(),
        },
        Fault {
            name: "half-open: handshake, then silence without FIN".into(),
            peer: raw(script(|mut tcp, ctl| {
                Box::pin(async move {
                    accept_raw(&mut tcp).await?;
                    ctl.released().await;
                    let c = read_close_code(&mut tcp).await;
                    ctl.saw(c);
                    Some(tcp)
                })
            })),
            cfg: |c| c.idle_timeout = BOUND,
            expect: Expect::Closed {
                before: &[],
                code: 1008,
                reason: "timeout",
                error: Some("timeout"),
                detail: "idle",
                bound: Some(BOUND),
                peer_sees: PeerSees::Close(1008),
            },
        },
        Fault {
            name: "peer never reads (write buffer bound)".into(),
            peer: raw(script(|mut tcp, ctl| {
                Box::pin(async move {
                    accept_raw(&mut tcp).await?;
                    ctl.released().await;
                    Some(tcp)
                })
            })),
            cfg: |c| {
                c.write_timeout = BOUND;
                c.max_write_buffer_bytes = 1024 * 1024;
            },
            expect: Expect::SendsStall,
        },
        // --- close codes (more below) ---------------------------------------------
        Fault {
            name: "close without a code".into(),
            peer: sends(frame(true, CLOSE, b"")),
            cfg: no_cfg,
            expect: Expect::Closed {
                before: &[],
                code: 1005,
                reason: "",
                error: None,
                detail: "",
                bound: None,
                peer_sees: PeerSees::EmptyClose,
            },
        },
        // --- resolution -------------------------------------------------------------
        Fault {
            name: "resolver never answers".into(),
            peer: resolves("hang.test", &[], ""),
            cfg: |c| c.dns_timeout = BOUND,
            expect: times_out("resolving"),
        },
        Fault {
            name: "resolver returns no address".into(),
            peer: resolves("empty.test", &[], ""),
            cfg: no_cfg,
            expect: fails("resolution_failed"),
        },
        Fault {
            name: "resolver fails".into(),
            peer: resolves("error.test", &[], ""),
            cfg: no_cfg,
            expect: fails("resolution_failed"),
        },
        // 127.0.0.1 plays the public answer: the target's networks cover it.
        Fault {
            name: "allowed + private answers".into(),
            peer: resolves("mixed.test", &["127.0.0.1", "10.0.0.1"], LOOPBACK_OK),
            cfg: no_cfg,
            expect: fails("non_public_address"),
        },
        Fault {
            name: "allowed + IPv4-mapped private answers".into(),
            peer: resolves("mixed.test", &["127.0.0.1", "::ffff:10.0.0.1"], LOOPBACK_OK),
            cfg: no_cfg,
            expect: fails("non_public_address"),
        },
        Fault {
            name: "IPv4-mapped private ::ffff:10.0.0.1".into(),
            peer: resolves("mapped.test", &["::ffff:10.0.0.1"], ""),
            cfg: no_cfg,
            expect: fails("non_public_address"),
        },
        Fault {
            name: "IPv4-mapped loopback ::ffff:127.0.0.1, not covered".into(),
            peer: resolves("mapped.test", &["::ffff:127.0.0.1"], ""),
            cfg: no_cfg,
            expect: fails("non_public_address"),
        },
        Fault {
            name: "allowed + IPv4-mapped metadata address".into(),
            peer: resolves("mixed.test", &["127.0.0.1", "::ffff:169.254.169.254"], LOOPBACK_OK),
            cfg: no_cfg,
            expect: fails("forbidden_address"),
        },
    ];

    // Close codes the peer may send (RFC 6455 §7.4, as tungstenite reads it):
    // reported as sent and echoed.
    for code in [1000u16, 1001, 1011, 1013, 3000, 4999] {
        rows.push(close_row(
            code,
            peer_close(code, None, PeerSees::Close(code)),
        ));
    }
    // Codes that are never valid on the wire: reported as protocol_error (1002)
    // with the code in last_error, and answered with 1002, never echoed.
    for code in [
        0u16, 999, 1004, 1005, 1006, 1014, 1015, 1016, 2999, 5000, 65535,
    ] {
        rows.push(close_row(
            code,
            peer_close(1002, Some("protocol_error"), PeerSees::Close(1002)),
        ));
    }
    rows
}

/// A target line that covers 127.0.0.1, which then stands for a public answer.
const LOOPBACK_OK: &str = "networks = [\"127.0.0.1/32\"]";

/// A row whose peer closes with `code` and reason "bye".
fn close_row(code: u16, expect: Expect) -> Fault {
    Fault {
        name: format!("close {code}"),
        peer: sends(frame(true, CLOSE, &close_payload(code, b"bye"))),
        cfg: no_cfg,
        expect,
    }
}

// ---------------------------------------------------------------------------
// Peer scripts
// ---------------------------------------------------------------------------

/// What a script gets besides its socket.
#[derive(Clone)]
struct Ctl {
    release: watch::Receiver<bool>,
    saw: Arc<Mutex<Option<Option<Option<u16>>>>>,
}

impl Ctl {
    /// Waits until the harness has checked the host's side.
    async fn released(&self) {
        let mut r = self.release.clone();
        let _ = r.wait_for(|v| *v).await;
    }

    /// Records the close frame the peer received (`None`: EOF first).
    fn saw(&self, close: Option<Option<u16>>) {
        *self.saw.lock().unwrap() = Some(close);
    }
}

async fn stall_after_writing(mut tcp: TcpStream, ctl: Ctl, out: &[u8]) -> Option<TcpStream> {
    read_request_head(&mut tcp).await?;
    tcp.write_all(out).await.ok()?;
    ctl.released().await;
    Some(tcp)
}

async fn answer_with(mut tcp: TcpStream, out: &[u8]) -> Option<TcpStream> {
    read_request_head(&mut tcp).await?;
    tcp.write_all(out).await.ok()?;
    Some(tcp)
}

/// Handshake, `out`, then the host's close frame.
async fn frames_then_read_close(mut tcp: TcpStream, ctl: Ctl, out: Vec<u8>) -> Option<TcpStream> {
    accept_raw(&mut tcp).await?;
    tcp.write_all(&out).await.ok()?;
    let c = read_close_code(&mut tcp).await;
    ctl.saw(c);
    Some(tcp)
}

async fn cut_mid_message(mut tcp: TcpStream, reset: bool) -> Option<TcpStream> {
    accept_raw(&mut tcp).await?;
    let mut out = frame_header(true, BINARY, 1000);
    out.extend_from_slice(&[1u8; 10]);
    tcp.write_all(&out).await.ok()?;
    tokio::time::sleep(Duration::from_millis(50)).await;
    if reset {
        // SO_LINGER 0: close() sends RST.
        tcp.set_zero_linger().ok()?;
    }
    None
}

/// The header of a 1000-byte message, then one byte every 100 ms (100 s in
/// all), while reading what the host sends.
async fn slow_drip(mut tcp: TcpStream, ctl: Ctl) -> Option<TcpStream> {
    accept_raw(&mut tcp).await?;
    let (mut rd, mut wr) = tcp.into_split();
    let drip = async {
        wr.write_all(&frame_header(true, BINARY, 1000)).await.ok()?;
        for _ in 0..1000 {
            tokio::time::sleep(Duration::from_millis(100)).await;
            wr.write_all(b"x").await.ok()?;
        }
        Some(())
    };
    tokio::select! {
        c = read_close_code(&mut rd) => ctl.saw(c),
        _ = drip => {}
    }
    rd.reunite(wr).ok()
}

/// The first fragment of a text message, then a control frame (`PING` or
/// `PONG`) every 100 ms, never the rest; reads what the host sends.
async fn fragment_then_control(mut tcp: TcpStream, ctl: Ctl, opcode: u8) -> Option<TcpStream> {
    accept_raw(&mut tcp).await?;
    let (mut rd, mut wr) = tcp.into_split();
    let control = async {
        wr.write_all(&frame(false, TEXT, b"first fragment"))
            .await
            .ok()?;
        for _ in 0..1000 {
            tokio::time::sleep(Duration::from_millis(100)).await;
            wr.write_all(&frame(true, opcode, b"keepalive"))
                .await
                .ok()?;
        }
        Some(())
    };
    tokio::select! {
        c = read_close_code(&mut rd) => ctl.saw(c),
        _ = control => {}
    }
    rd.reunite(wr).ok()
}

// ---------------------------------------------------------------------------
// The harness
// ---------------------------------------------------------------------------

/// Answers for resolver rows: `hang.test` never answers (and counts its live
/// futures), `error.test` fails, the rest come from a static table.
struct FaultResolver {
    table: StaticResolver,
    live: Arc<AtomicUsize>,
}

struct Live(Arc<AtomicUsize>);

impl Drop for Live {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Resolver for FaultResolver {
    fn resolve<'a>(&'a self, host: &'a str) -> ResolveFuture<'a> {
        match host {
            "hang.test" => {
                self.live.fetch_add(1, Ordering::SeqCst);
                let live = Live(self.live.clone());
                Box::pin(async move {
                    let _live = live;
                    std::future::pending().await
                })
            }
            "error.test" => Box::pin(async { Err(std::io::Error::other("SERVFAIL")) }),
            _ => self.table.resolve(host),
        }
    }
}

fn assert_diagnostic(row: &str, what: &str, s: &str) {
    assert!(
        s.chars().count() <= 512 + 32,
        "{row}: {what} has {} chars",
        s.chars().count()
    );
    assert!(
        !s.chars().any(|c| c.is_control()),
        "{row}: raw control characters in {what}: {s:?}"
    );
    assert!(
        !s.contains(SECRET),
        "{row}: the secret leaked into {what}: {s}"
    );
}

fn assert_timing(row: &str, took: Duration, bound: Option<Duration>) {
    match bound {
        Some(b) => {
            assert!(
                took >= b,
                "{row}: reported after {took:?}, before its bound {b:?}"
            );
            assert!(
                took < b + SLACK,
                "{row}: reported after {took:?}, bound {b:?}"
            );
        }
        None => assert!(took < SLACK, "{row}: took {took:?} to be reported"),
    }
}

/// The neighbour's n-th message: text or binary, up to 1 KiB, numbered.
fn neighbour_message(n: usize) -> Incoming {
    let len = (n * 97) % 1024;
    if n % 3 == 0 {
        Incoming::Text(format!("{n:08}{}", "t".repeat(len)))
    } else {
        let mut b = vec![(n % 251) as u8; 8 + len];
        b[..8].copy_from_slice(&(n as u64).to_be_bytes());
        Incoming::Binary(b)
    }
}

/// Echoes numbered messages, one every 10 ms, until `stop`; any loss,
/// reordering, corruption or error is returned.
async fn neighbour(
    h: Arc<WebSocketHost>,
    id: ConnectionId,
    stop: watch::Receiver<bool>,
    count: Arc<AtomicUsize>,
) -> Result<(), String> {
    for n in 0.. {
        if *stop.borrow() {
            return Ok(());
        }
        let m = neighbour_message(n);
        match &m {
            Incoming::Text(t) => h.send_text(id, t.clone()).await,
            Incoming::Binary(b) => h.send_binary(id, b.clone()).await,
            _ => unreachable!(),
        }
        .map_err(|e| format!("send {n}: {e}"))?;
        let got = h
            .recv(id, LONG)
            .await
            .map_err(|e| format!("recv {n}: {e}"))?;
        if got != m {
            return Err(format!(
                "message {n}: got {:?}",
                payload(&got).map(|p| p.len())
            ));
        }
        count.fetch_add(1, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    Ok(())
}

async fn run_row(row: Fault) {
    let name = row.name.as_str();
    let echo = EchoServer::start().await;
    let ep = echo.addr.port();
    let (release_tx, release_rx) = watch::channel(false);
    let saw = Arc::new(Mutex::new(None));
    let live = Arc::new(AtomicUsize::new(0));
    let mut table = StaticResolver::new();
    let mut raw = None;
    let mut listener = None;
    let mut reserved = None;

    let (url, target) = match row.peer {
        Peer::Raw { tls, script } => {
            let ctl = Ctl {
                release: release_rx,
                saw: saw.clone(),
            };
            let server = RawServer::start(move |tcp| {
                let (ctl, script) = (ctl.clone(), script.clone());
                async move {
                    if let Some(tcp) = script(tcp, ctl).await {
                        drain_until_eof(tcp).await;
                    }
                }
            })
            .await;
            let scheme = if tls { "wss" } else { "ws" };
            let t = format!("{scheme}://localhost:{}/", server.port());
            raw = Some(server);
            (t.clone(), ws_entry(&t, ""))
        }
        Peer::Refused => {
            // Bound but not listening: connections are refused, and the port
            // cannot be reused by a row running alongside.
            let sock = tokio::net::TcpSocket::new_v4().unwrap();
            sock.bind("127.0.0.1:0".parse().unwrap()).unwrap();
            let p = sock.local_addr().unwrap().port();
            reserved = Some(sock);
            let t = format!("ws://localhost:{p}/");
            (t.clone(), ws_entry(&t, ""))
        }
        Peer::Resolve {
            name: host_name,
            answers,
            networks,
        } => {
            let l = EchoServer::start().await;
            let t = format!("ws://{host_name}:{}/", l.addr.port());
            table = table.with(host_name, answers.iter().map(|a| ip(a)));
            listener = Some(l);
            (t.clone(), ws_entry(&t, networks))
        }
    };
    let url = format!("{url}fault?token={SECRET}");
    let nurl = format!("ws://localhost:{ep}/");
    let t = format!("{}{target}", ws_entry(&nurl, ""));
    let mut cfg = HostConfig {
        // The neighbour plus one: a slot the fault leaks fails the new open below.
        max_connections: 2,
        ..HostConfig::default()
    };
    (row.cfg)(&mut cfg);
    let h = Arc::new(
        WebSocketHost::new(
            policy(&t, &t),
            Arc::new(FaultResolver {
                table,
                live: live.clone(),
            }),
            cfg,
        )
        .unwrap(),
    );

    // The neighbour runs through the whole row.
    let nid = h.open(&nurl, OpenOptions::default()).await.unwrap();
    let baseline = h.active_tasks();
    assert_eq!(baseline, 1, "{name}: one task per connection");
    let (stop_tx, stop_rx) = watch::channel(false);
    let count = Arc::new(AtomicUsize::new(0));
    let nb = tokio::spawn(neighbour(h.clone(), nid, stop_rx, count.clone()));
    assert!(
        wait_until(OUTER, || count.load(Ordering::SeqCst) >= 1).await,
        "{name}: the neighbour never echoed"
    );

    let t0 = Instant::now();
    let open = tokio::time::timeout(OUTER, h.open(&url, OpenOptions::default()))
        .await
        .unwrap_or_else(|_| panic!("{name}: open is not bounded"));
    match row.expect {
        Expect::OpenFails {
            code,
            bound,
            detail,
        } => {
            let took = t0.elapsed();
            let err = open.expect_err(name);
            assert_eq!(err.code(), code, "{name}: {err}");
            assert_timing(name, took, bound);
            assert_diagnostic(name, "the error", &err.to_string());
            assert!(err.message.contains(detail), "{name}: {err}");
        }
        Expect::Closed {
            before,
            code,
            reason,
            error,
            detail,
            bound,
            peer_sees: _,
        } => {
            let id = open.unwrap_or_else(|e| panic!("{name}: {e}"));
            for b in before {
                assert_eq!(
                    h.recv(id, LONG).await.unwrap(),
                    Incoming::Text(b.to_string()),
                    "{name}"
                );
            }
            let got = h.recv(id, LONG).await.unwrap();
            let took = t0.elapsed();
            assert_eq!(
                got,
                Incoming::Closed {
                    code,
                    reason: reason.into()
                },
                "{name}: {:?}",
                h.status(id).unwrap().last_error
            );
            assert_timing(name, took, bound);
            let st = h.status(id).unwrap();
            assert_eq!(st.state, State::Closed, "{name}");
            assert_eq!(st.close, Some((code, reason.to_string())), "{name}");
            match (error, &st.last_error) {
                (None, None) => {}
                (Some(e), Some(l)) => {
                    assert!(l.starts_with(&format!("{e}: ")), "{name}: {l}");
                    assert!(l.contains(detail), "{name}: {l}");
                    assert_diagnostic(name, "last_error", l);
                }
                (e, l) => panic!("{name}: expected error {e:?}, got {l:?}"),
            }
            assert_diagnostic(name, "the close reason", reason);
            assert_diagnostic(name, "the status URL", &st.url);
            assert_eq!(
                h.send_text(id, "after").await.unwrap_err().code(),
                "closed",
                "{name}"
            );
        }
        Expect::SendsStall => {
            let id = open.unwrap_or_else(|e| panic!("{name}: {e}"));
            let write_timeout = h.config().write_timeout;
            let chunk = vec![0u8; 256 * 1024];
            let mut ok = 0usize;
            let err = loop {
                let t = Instant::now();
                let r = tokio::time::timeout(OUTER, h.send_binary(id, chunk.clone()))
                    .await
                    .unwrap_or_else(|_| panic!("{name}: a send is not bounded"));
                assert!(
                    t.elapsed() < write_timeout + SLACK,
                    "{name}: one send took {:?}",
                    t.elapsed()
                );
                match r {
                    Ok(()) => ok += 1,
                    Err(e) => break e,
                }
                // Kernel buffers (a few MiB) plus the write buffer: far below
                // this unless the host buffers without bound.
                assert!(
                    ok < 192,
                    "{name}: {ok} × 256 KiB accepted by a peer that never reads"
                );
            };
            assert!(matches!(err.code(), "timeout" | "closed"), "{name}: {err}");
            assert_diagnostic(name, "the error", &err.to_string());
            // The send's own wait and the write in the connection task are
            // bounded by the same timeout; either may end first.
            assert!(
                wait_until(OUTER, || h.status(id).unwrap().state == State::Closed).await,
                "{name}: still open"
            );
            let st = h.status(id).unwrap();
            let l = st.last_error.unwrap_or_default();
            assert!(l.starts_with("timeout: "), "{name}: {l}");
            assert_diagnostic(name, "last_error", &l);
        }
    }

    // Slot freed, task ended, resolver future dropped.
    assert!(
        wait_until(OUTER, || h.open_connections() == 1
            && h.active_tasks() == baseline)
        .await,
        "{name}: {} connections, {} tasks after the fault (want 1, {baseline})",
        h.open_connections(),
        h.active_tasks()
    );
    assert_eq!(
        live.load(Ordering::SeqCst),
        0,
        "{name}: a resolver future outlived open"
    );

    // The neighbour keeps echoing after the fault...
    let c = count.load(Ordering::SeqCst);
    assert!(
        wait_until(OUTER, || count.load(Ordering::SeqCst) >= c + 3).await,
        "{name}: the neighbour stopped echoing"
    );
    // ...and the freed slot takes a new connection.
    let id = h
        .open(&nurl, OpenOptions::default())
        .await
        .unwrap_or_else(|e| panic!("{name}: a new open after the fault: {e}"));
    h.send_text(id, "fresh").await.unwrap();
    assert_eq!(
        h.recv(id, LONG).await.unwrap(),
        Incoming::Text("fresh".into()),
        "{name}"
    );
    h.close(id).await.unwrap();
    assert_eq!(
        (h.open_connections(), h.active_tasks()),
        (1, baseline),
        "{name}"
    );

    // The peer: its socket was dropped by the host (EOF once it reads again),
    // or — for denied answers — never opened.
    release_tx.send(true).unwrap();
    if let Some(s) = &raw {
        assert_eq!(s.accepted(), 1, "{name}: dialed once");
        assert!(
            wait_until(OUTER, || s.finished() == 1).await,
            "{name}: the host kept the peer's socket open"
        );
        if let Expect::Closed { peer_sees, .. } = row.expect {
            let seen = *saw.lock().unwrap();
            match peer_sees {
                PeerSees::Unchecked => {}
                PeerSees::Close(code) => {
                    assert_eq!(
                        seen,
                        Some(Some(Some(code))),
                        "{name}: the host's close frame"
                    )
                }
                PeerSees::EmptyClose => {
                    assert_eq!(seen, Some(Some(None)), "{name}: the host's close frame")
                }
            }
        }
    }
    if let Some(l) = &listener {
        assert_eq!(l.accepted(), 0, "{name}: a denied answer was dialed");
    }

    stop_tx.send(true).unwrap();
    let r = tokio::time::timeout(OUTER, nb)
        .await
        .unwrap_or_else(|_| panic!("{name}: the neighbour hung"))
        .unwrap();
    r.unwrap_or_else(|e| panic!("{name}: neighbour: {e}"));
    assert_eq!(h.status(nid).unwrap().state, State::Open, "{name}");
    h.close(nid).await.unwrap();
    h.shutdown().await;
    assert_eq!((h.open_connections(), h.active_tasks()), (0, 0), "{name}");
    drop(reserved);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_fault_is_reported_bounded_and_cleaned_up() {
    use futures_util::StreamExt;
    let rows = table();
    let n = rows.len();
    let mut names = std::collections::HashSet::new();
    for r in &rows {
        assert!(names.insert(r.name.clone()), "duplicate row {}", r.name);
    }
    // Rows run a few at a time; each in its own task so that one failure
    // names its row and the others still run.
    let failures: Vec<String> = futures_util::stream::iter(rows)
        .map(|row| async move {
            let name = row.name.clone();
            match tokio::spawn(run_row(row)).await {
                Ok(()) => None,
                Err(e) => Some(match e.try_into_panic() {
                    Ok(p) => p
                        .downcast_ref::<String>()
                        .cloned()
                        .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                        .unwrap_or_else(|| format!("{name}: panicked")),
                    Err(e) => format!("{name}: {e}"),
                }),
            }
        })
        .buffer_unordered(6)
        .filter_map(|r| async move { r })
        .collect()
        .await;
    assert!(
        failures.is_empty(),
        "{} of {n} rows failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert!(n >= 50, "{n} rows");
}

// ---------------------------------------------------------------------------
// Specific cases
// ---------------------------------------------------------------------------

fn h_for(server: &RawServer, cfg: HostConfig) -> (WebSocketHost, String) {
    let p = server.port();
    (
        host(allow_localhost(p), StaticResolver::new(), cfg),
        format!("ws://localhost:{p}/"),
    )
}

async fn closed_now(h: &WebSocketHost, id: ConnectionId) -> (u16, String) {
    match h.recv(id, LONG).await.unwrap() {
        Incoming::Closed { code, reason } => (code, reason),
        other => panic!("expected Closed, got {other:?}"),
    }
}

fn assert_within(what: &str, took: Duration, bound: Duration) {
    assert!(
        took >= bound,
        "{what}: closed after {took:?}, before its bound {bound:?}"
    );
    assert!(
        took < bound + SLACK,
        "{what}: closed after {took:?}, bound {bound:?}"
    );
}

/// The positive side of the read-deadline fix: a fragmented message that
/// completes within the deadline arrives whole although pings are
/// interleaved, and every ping is answered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pings_inside_a_fragmented_message_are_answered() {
    let (tx, rx) = tokio::sync::oneshot::channel();
    let tx = Mutex::new(Some(tx));
    let server = RawServer::start(move |mut tcp| {
        let tx = tx.lock().unwrap().take();
        async move {
            if accept_raw(&mut tcp).await.is_none() {
                return;
            }
            // Five fragments 50 ms apart, a ping after each but the last.
            for i in 0..5u8 {
                let op = if i == 0 { TEXT } else { CONT };
                let mut out = frame(i == 4, op, &[b'a' + i; 100]);
                if i < 4 {
                    out.extend(frame(true, PING, &[i]));
                }
                if tcp.write_all(&out).await.is_err() {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            let mut pongs = Vec::new();
            while let Some((_, op, p)) = read_client_frame(&mut tcp).await {
                match op {
                    PONG => pongs.push(p),
                    CLOSE => break,
                    _ => {}
                }
            }
            if let Some(tx) = tx {
                let _ = tx.send(pongs);
            }
        }
    })
    .await;
    let cfg = HostConfig {
        message_read_deadline: Duration::from_secs(5),
        ..HostConfig::default()
    };
    let (h, url) = h_for(&server, cfg);
    let id = h.open(&url, OpenOptions::default()).await.unwrap();
    let want: String = (0..5u8)
        .map(|i| String::from_utf8(vec![b'a' + i; 100]).unwrap())
        .collect();
    assert_eq!(h.recv(id, LONG).await.unwrap(), Incoming::Text(want));
    assert_eq!(
        h.status(id).unwrap().messages_in,
        1,
        "pings are not messages"
    );
    h.close(id).await.unwrap();
    let pongs = tokio::time::timeout(OUTER, rx).await.unwrap().unwrap();
    assert_eq!(pongs, (0..4u8).map(|i| vec![i]).collect::<Vec<_>>());
}

/// Time the host spends not reading (its inbox is full because the plugin does
/// not recv) does not count against the peer's message read deadline.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_inbox_pauses_the_read_deadline() {
    let go = Arc::new(tokio::sync::Notify::new());
    let g2 = go.clone();
    let server = RawServer::start(move |mut tcp| {
        let go = g2.clone();
        async move {
            if accept_raw(&mut tcp).await.is_none() {
                return;
            }
            // Three messages; then, once the host has read them, a fourth
            // that fills the 4 KiB inbox and the first fragment of a fifth
            // in one write, so that the host reads the fragment's start
            // before it stops reading.
            let mut out = Vec::new();
            for i in 0..3u8 {
                out.extend(frame(true, BINARY, &[i; 1024]));
            }
            if tcp.write_all(&out).await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
            let mut out = frame(true, BINARY, &[3u8; 1024]);
            out.extend(frame(false, TEXT, b"start "));
            if tcp.write_all(&out).await.is_err() {
                return;
            }
            go.notified().await;
            let _ = tcp.write_all(&frame(true, CONT, b"end")).await;
            drain_until_eof(tcp).await;
        }
    })
    .await;
    let bound = Duration::from_millis(300);
    let cfg = HostConfig {
        inbox_bytes: 4096,
        max_message_bytes: 1024,
        message_read_deadline: bound,
        ..HostConfig::default()
    };
    let (h, url) = h_for(&server, cfg);
    let id = h.open(&url, OpenOptions::default()).await.unwrap();
    assert!(
        wait_until(OUTER, || h.status(id).unwrap().inbox_bytes == 4096).await,
        "the inbox never filled"
    );
    // The plugin is busy for three read deadlines.
    tokio::time::sleep(bound * 3).await;
    assert_eq!(h.status(id).unwrap().state, State::Open);
    for i in 0..4u8 {
        assert_eq!(
            h.recv(id, LONG).await.unwrap(),
            Incoming::Binary(vec![i; 1024])
        );
    }
    go.notify_one();
    assert_eq!(
        h.recv(id, LONG).await.unwrap(),
        Incoming::Text("start end".into()),
        "{:?}",
        h.status(id).unwrap().last_error
    );
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_timeout_is_kept_away_by_traffic() {
    let bound = Duration::from_millis(300);
    let cfg = HostConfig {
        idle_timeout: bound,
        ..HostConfig::default()
    };

    // Traffic every 100 ms for 900 ms keeps an idle timeout of 300 ms away.
    let echo = EchoServer::start().await;
    let p = echo.addr.port();
    let (h, id) = open_local(p, cfg.clone()).await;
    for i in 0..9 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        h.send_text(id, format!("{i}")).await.unwrap();
        assert_eq!(
            h.recv(id, LONG).await.unwrap(),
            Incoming::Text(format!("{i}"))
        );
    }
    assert_eq!(h.status(id).unwrap().state, State::Open);

    // Then silence: the last traffic was the echo just received, after t0.
    let t0 = Instant::now();
    h.send_text(id, "last").await.unwrap();
    assert_eq!(
        h.recv(id, LONG).await.unwrap(),
        Incoming::Text("last".into())
    );
    let (_, reason) = closed_now(&h, id).await;
    assert_within("idle", t0.elapsed(), bound);
    assert_eq!(reason, "timeout");
    let e = h.status(id).unwrap().last_error.unwrap();
    assert!(e.starts_with("timeout") && e.contains("idle"), "{e}");
    assert!(wait_until(OUTER, || h.active_tasks() == 0 && h.open_connections() == 0).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_lifetime_closes_a_busy_connection() {
    let echo = EchoServer::start().await;
    let p = echo.addr.port();
    let bound = Duration::from_millis(600);
    let cfg = HostConfig {
        max_lifetime: Some(bound),
        ..HostConfig::default()
    };
    let h = host(allow_localhost(p), StaticResolver::new(), cfg);
    let t0 = Instant::now();
    let id = h
        .open(&format!("ws://localhost:{p}/"), OpenOptions::default())
        .await
        .unwrap();
    let closed_at = loop {
        if h.send_text(id, "ping").await.is_err() {
            break t0.elapsed();
        }
        match h.recv(id, LONG).await.unwrap() {
            Incoming::Text(_) => {}
            Incoming::Closed { reason, .. } => {
                assert_eq!(reason, "timeout");
                break t0.elapsed();
            }
            other => panic!("{other:?}"),
        }
        assert!(
            t0.elapsed() < bound + SLACK,
            "still open after {:?}",
            t0.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_within("lifetime", closed_at, bound);
    let st = h.status(id).unwrap();
    assert_eq!(st.state, State::Closed);
    assert!(
        st.last_error.as_deref().unwrap().contains("lifetime"),
        "{:?}",
        st.last_error
    );
}

fn assert_clean(what: &str, s: &str) {
    assert!(
        !s.chars().any(|c| c.is_control()),
        "{what}: raw control characters in {s:?}"
    );
    assert!(!s.contains('\u{202e}'), "{what}: raw bidi control in {s:?}");
    assert!(
        s.chars().count() <= 512,
        "{what}: {} chars",
        s.chars().count()
    );
}

async fn peer_closes_with(payload: Vec<u8>) -> (u16, String, Option<String>) {
    let server = RawServer::start(move |mut tcp| {
        let payload = payload.clone();
        async move {
            if accept_raw(&mut tcp).await.is_none() {
                return;
            }
            let _ = tcp.write_all(&frame(true, CLOSE, &payload)).await;
            read_close_code(&mut tcp).await;
        }
    })
    .await;
    let (h, url) = h_for(&server, HostConfig::default());
    let id = h.open(&url, OpenOptions::default()).await.unwrap();
    let (code, reason) = closed_now(&h, id).await;
    let st = h.status(id).unwrap();
    assert_eq!(st.close.as_ref().map(|c| c.0), Some(code));
    (code, reason, st.last_error)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peer_close_reason_is_escaped_and_bounded() {
    // The largest legal close reason (123 bytes), full of terminal escapes.
    let mut evil = b"\x1b[2J\x1b]0;pwned\x07\r\nFAKE PROMPT$ \xe2\x80\xae".to_vec();
    while evil.len() < 123 {
        evil.push(0x1b);
    }
    let (code, reason, err) = peer_closes_with(close_payload(4321, &evil)).await;
    assert_eq!(code, 4321, "an application close code is passed through");
    assert_clean("reason", &reason);
    assert!(
        reason.contains("\\u{1b}") && reason.contains("FAKE PROMPT"),
        "{reason}"
    );
    if let Some(e) = err {
        assert_clean("last_error", &e);
    }

    // A 200-byte reason does not fit a control frame: a protocol error, and
    // none of the peer's text survives unescaped.
    let long: Vec<u8> = b"\x1b[31m".iter().copied().cycle().take(200).collect();
    let (code, reason, err) = peer_closes_with(close_payload(4000, &long)).await;
    assert_eq!(code, 1002, "{reason}");
    assert_clean("reason", &reason);
    assert_clean("last_error", err.as_deref().unwrap_or(""));

    // A code that may not appear on the wire: its reason is dropped with it.
    let (code, reason, err) = peer_closes_with(close_payload(1006, b"\x1b[31mx")).await;
    assert_eq!((code, reason.as_str()), (1002, "protocol_error"));
    assert_eq!(
        err.as_deref(),
        Some("protocol_error: the peer closed with code 1006, which is not valid on the wire; answered 1002")
    );
}
