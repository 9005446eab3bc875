//! Test support: real WebSocket peers on loopback and policy helpers.
#![allow(dead_code, clippy::result_large_err, clippy::collapsible_match)]

use futures_util::{SinkExt, StreamExt};
use netgrant_policy::{compile, Authorizer, Grant, Manifest};
use netgrant_runtime::{HostConfig, StaticResolver, WebSocketHost};
use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

pub mod http;
pub mod sentinel;

/// Compiles a manifest + grant into an authorizer (panics on invalid input).
pub fn authorizer(manifest: &str, grant: &str) -> Arc<Authorizer> {
    let m = Manifest::parse("plugin.toml", manifest);
    let m = m.value.unwrap_or_else(|| panic!("{:?}", m.diagnostics));
    let g = Grant::parse("grant.toml", grant);
    let g = g.value.unwrap_or_else(|| panic!("{:?}", g.diagnostics));
    let c = compile(&m, Some(&g));
    Arc::new(Authorizer::new(
        &c.policy.unwrap_or_else(|| panic!("{:?}", c.diagnostics)),
    ))
}

/// A manifest + grant that request and grant `url` (websocket).
pub fn allow_ws(url: &str) -> Arc<Authorizer> {
    authorizer(
        &format!("[plugin]\nname = \"t\"\nversion = \"1.0.0\"\n[[host_api.websocket]]\nurl = \"{url}\"\nsubprotocols = [\"json\"]\n"),
        &format!("plugin = \"t\"\n[[host_api.websocket]]\nurl = \"{url}\"\n"),
    )
}

/// A host with a static resolver.
pub fn host(authz: Arc<Authorizer>, resolver: StaticResolver, cfg: HostConfig) -> WebSocketHost {
    WebSocketHost::new(authz, Arc::new(resolver), cfg).unwrap()
}

/// A host allowed `ws://localhost:{port}/` with `cfg`, and one connection
/// opened there with default options: the setup most connection tests share.
pub async fn open_local(
    port: u16,
    cfg: HostConfig,
) -> (WebSocketHost, netgrant_runtime::ConnectionId) {
    let h = host(allow_localhost(port), StaticResolver::new(), cfg);
    let id = h
        .open(
            &format!("ws://localhost:{port}/"),
            netgrant_runtime::OpenOptions::default(),
        )
        .await
        .unwrap();
    (h, id)
}

/// A host with the default configuration allowed to reach
/// `ws://localhost:{port}/`, and that URL.
pub fn local_host(port: u16) -> (WebSocketHost, String) {
    let h = host(
        allow_localhost(port),
        StaticResolver::new(),
        HostConfig::default(),
    );
    (h, format!("ws://localhost:{port}/"))
}

/// An echo server on 127.0.0.1 that counts accepted TCP connections.
pub struct EchoServer {
    pub addr: SocketAddr,
    pub accepted: Arc<AtomicUsize>,
    pub closed: Arc<AtomicUsize>,
}

impl EchoServer {
    pub async fn start() -> EchoServer {
        Self::start_on("127.0.0.1:0").await
    }

    pub async fn start_on(bind: &str) -> EchoServer {
        let listener = TcpListener::bind(bind).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let accepted = Arc::new(AtomicUsize::new(0));
        let closed = Arc::new(AtomicUsize::new(0));
        let (a, c) = (accepted.clone(), closed.clone());
        tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    return;
                };
                a.fetch_add(1, Ordering::SeqCst);
                let c = c.clone();
                tokio::spawn(async move {
                    let cb = |req: &tokio_tungstenite::tungstenite::handshake::server::Request,
                              mut resp: tokio_tungstenite::tungstenite::handshake::server::Response| {
                        if let Some(p) = req.headers().get("sec-websocket-protocol") {
                            if p.to_str().unwrap_or("").split(',').any(|x| x.trim() == "json") {
                                resp.headers_mut().insert("sec-websocket-protocol", "json".parse().unwrap());
                            }
                        }
                        Ok(resp)
                    };
                    if let Ok(mut ws) = tokio_tungstenite::accept_hdr_async(tcp, cb).await {
                        while let Some(Ok(m)) = ws.next().await {
                            match m {
                                Message::Text(_) | Message::Binary(_) => {
                                    if ws.send(m).await.is_err() {
                                        break;
                                    }
                                }
                                Message::Close(_) => break,
                                _ => {}
                            }
                        }
                    }
                    c.fetch_add(1, Ordering::SeqCst);
                });
            }
        });
        EchoServer {
            addr,
            accepted,
            closed,
        }
    }

    pub fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }
}

// ---------------------------------------------------------------------------
// Policy helpers
// ---------------------------------------------------------------------------

/// Wraps `[[host_api.*]]` entries into a manifest and a grant for plugin `t`.
pub fn policy(requested: &str, granted: &str) -> Arc<Authorizer> {
    authorizer(
        &format!("[plugin]\nname = \"t\"\nversion = \"1.0.0\"\n{requested}"),
        &format!("plugin = \"t\"\n{granted}"),
    )
}

/// One `[[host_api.websocket]]` entry with extra TOML lines.
pub fn ws_entry(url: &str, extra: &str) -> String {
    format!("[[host_api.websocket]]\nurl = \"{url}\"\n{extra}\n")
}

/// One `[[host_api.request]]` entry with extra TOML lines.
pub fn req_entry(url: &str, extra: &str) -> String {
    format!("[[host_api.request]]\nurl = \"{url}\"\n{extra}\n")
}

/// A requested-and-granted `ws://localhost:PORT/` policy.
pub fn allow_localhost(port: u16) -> Arc<Authorizer> {
    allow_ws(&format!("ws://localhost:{port}/"))
}

/// Parses an IP address.
pub fn ip(s: &str) -> std::net::IpAddr {
    s.parse().unwrap()
}

/// The generous outer bound for anything that should happen "promptly".
pub const OUTER: Duration = Duration::from_secs(10);

/// Slack added to a configured bound when asserting it was respected, for a
/// loaded 2-core machine.
pub const SLACK: Duration = Duration::from_secs(3);

/// Polls `f` every 5 ms until it holds or `within` passes; returns whether it held.
pub async fn wait_until(within: Duration, mut f: impl FnMut() -> bool) -> bool {
    let end = tokio::time::Instant::now() + within;
    loop {
        if f() {
            return true;
        }
        if tokio::time::Instant::now() >= end {
            return f();
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// The text of `Incoming::Text` or the bytes of `Incoming::Binary`.
pub fn payload(m: &netgrant_runtime::Incoming) -> Option<Vec<u8>> {
    match m {
        netgrant_runtime::Incoming::Text(t) => Some(t.as_bytes().to_vec()),
        netgrant_runtime::Incoming::Binary(b) => Some(b.clone()),
        _ => None,
    }
}

// ---------------------------------------------------------------------------
// Scripted peers
// ---------------------------------------------------------------------------

/// A TCP server on loopback that runs `handler` on every accepted connection
/// and counts connections accepted and handlers finished.
pub struct RawServer {
    pub addr: SocketAddr,
    pub accepted: Arc<AtomicUsize>,
    pub finished: Arc<AtomicUsize>,
    /// Counted by handlers that want to say how far a peer got (the
    /// request servers count request heads read).
    pub reached: Arc<AtomicUsize>,
}

impl RawServer {
    pub async fn start<F, Fut>(handler: F) -> RawServer
    where
        F: Fn(TcpStream) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        Self::start_on("127.0.0.1:0", handler).await
    }

    pub async fn start_on<F, Fut>(bind: &str, handler: F) -> RawServer
    where
        F: Fn(TcpStream) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let listener = TcpListener::bind(bind).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let accepted = Arc::new(AtomicUsize::new(0));
        let finished = Arc::new(AtomicUsize::new(0));
        let (a, f) = (accepted.clone(), finished.clone());
        let handler = Arc::new(handler);
        tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    return;
                };
                a.fetch_add(1, Ordering::SeqCst);
                let (h, f) = (handler.clone(), f.clone());
                tokio::spawn(async move {
                    h(tcp).await;
                    f.fetch_add(1, Ordering::SeqCst);
                });
            }
        });
        RawServer {
            addr,
            accepted,
            finished,
            reached: Arc::new(AtomicUsize::new(0)),
        }
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    pub fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }

    pub fn finished(&self) -> usize {
        self.finished.load(Ordering::SeqCst)
    }

    pub fn reached(&self) -> usize {
        self.reached.load(Ordering::SeqCst)
    }
}

/// A WebSocket peer that closes each connection right after the
/// handshake, then waits for the host's answer (or the end of the socket).
pub async fn closing_peer() -> RawServer {
    ws_server(|mut ws| async move {
        use futures_util::StreamExt;
        let _ = ws.close(None).await;
        while let Some(Ok(_)) = ws.next().await {}
    })
    .await
}

/// A tokio-tungstenite server on loopback running `f` on every handshaken
/// connection (subprotocol `json` is echoed back when offered).
pub async fn ws_server<F, Fut>(f: F) -> RawServer
where
    F: Fn(WebSocketStream<TcpStream>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let f = Arc::new(f);
    RawServer::start(move |tcp| {
        let f = f.clone();
        async move {
            if let Ok(ws) = tokio_tungstenite::accept_async(tcp).await {
                f(ws).await;
            }
        }
    })
    .await
}

/// Reads a client's HTTP upgrade request (without reading past its end) and
/// returns its head.
pub async fn read_request_head(tcp: &mut TcpStream) -> Option<String> {
    let mut head = Vec::new();
    let mut b = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if head.len() > 16 * 1024 || tcp.read(&mut b).await.ok()? == 0 {
            return None;
        }
        head.push(b[0]);
    }
    Some(String::from_utf8_lossy(&head).into_owned())
}

/// The `101 Switching Protocols` answer to a request head.
pub fn switching_protocols(head: &str) -> Vec<u8> {
    let key = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim()
                .eq_ignore_ascii_case("sec-websocket-key")
                .then(|| v.trim().to_string())
        })
        .expect("no Sec-WebSocket-Key");
    let accept = tokio_tungstenite::tungstenite::handshake::derive_accept_key(key.as_bytes());
    format!("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n\r\n").into_bytes()
}

/// Completes the server side of the handshake by hand; returns the request head.
pub async fn accept_raw(tcp: &mut TcpStream) -> Option<String> {
    let head = read_request_head(tcp).await?;
    tcp.write_all(&switching_protocols(&head)).await.ok()?;
    tcp.flush().await.ok()?;
    Some(head)
}

/// Opcodes.
pub const TEXT: u8 = 0x1;
pub const BINARY: u8 = 0x2;
pub const CONT: u8 = 0x0;
pub const CLOSE: u8 = 0x8;
pub const PING: u8 = 0x9;
pub const PONG: u8 = 0xA;

/// The header of an unmasked (server) frame with a payload of `len` bytes.
pub fn frame_header(fin: bool, opcode: u8, len: usize) -> Vec<u8> {
    let mut v = vec![if fin { 0x80 } else { 0 } | opcode];
    if len < 126 {
        v.push(len as u8);
    } else if len <= u16::MAX as usize {
        v.push(126);
        v.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        v.push(127);
        v.extend_from_slice(&(len as u64).to_be_bytes());
    }
    v
}

/// An unmasked (server) frame.
pub fn frame(fin: bool, opcode: u8, payload: &[u8]) -> Vec<u8> {
    let mut v = frame_header(fin, opcode, payload.len());
    v.extend_from_slice(payload);
    v
}

/// A close frame payload: code then reason bytes.
pub fn close_payload(code: u16, reason: &[u8]) -> Vec<u8> {
    let mut v = code.to_be_bytes().to_vec();
    v.extend_from_slice(reason);
    v
}

/// Reads one (masked) client frame: `(fin, opcode, unmasked payload)`; `None`
/// at EOF or on an error.
pub async fn read_client_frame<R: AsyncRead + Unpin>(tcp: &mut R) -> Option<(bool, u8, Vec<u8>)> {
    let mut h = [0u8; 2];
    tcp.read_exact(&mut h).await.ok()?;
    let fin = h[0] & 0x80 != 0;
    let opcode = h[0] & 0x0f;
    let masked = h[1] & 0x80 != 0;
    let len = match h[1] & 0x7f {
        126 => {
            let mut b = [0u8; 2];
            tcp.read_exact(&mut b).await.ok()?;
            u16::from_be_bytes(b) as usize
        }
        127 => {
            let mut b = [0u8; 8];
            tcp.read_exact(&mut b).await.ok()?;
            u64::from_be_bytes(b) as usize
        }
        n => n as usize,
    };
    let mut mask = [0u8; 4];
    if masked {
        tcp.read_exact(&mut mask).await.ok()?;
    }
    let mut p = vec![0u8; len];
    tcp.read_exact(&mut p).await.ok()?;
    if masked {
        for (i, b) in p.iter_mut().enumerate() {
            *b ^= mask[i % 4];
        }
    }
    Some((fin, opcode, p))
}

/// Reads client frames until a close frame; returns its code (`None` for an
/// empty close payload), or `None` at EOF.
pub async fn read_close_code<R: AsyncRead + Unpin>(tcp: &mut R) -> Option<Option<u16>> {
    loop {
        let (_, op, p) = read_client_frame(tcp).await?;
        if op == CLOSE {
            return Some((p.len() >= 2).then(|| u16::from_be_bytes([p[0], p[1]])));
        }
    }
}

/// Holds a socket without ever reading or writing, until `for_at_most` passes.
pub async fn hold(tcp: TcpStream, for_at_most: Duration) {
    tokio::time::sleep(for_at_most).await;
    drop(tcp);
}

/// Reads and discards until EOF (a peer that listens but never speaks).
pub async fn drain_until_eof(mut tcp: TcpStream) {
    let mut buf = [0u8; 4096];
    while let Ok(n) = tcp.read(&mut buf).await {
        if n == 0 {
            break;
        }
    }
}

/// The host's side of auditing: it keeps what it is given.
#[derive(Default)]
pub struct Collect(pub Mutex<Vec<netgrant_runtime::AuditRecord>>);

impl netgrant_runtime::AuditSink for Collect {
    fn record(&self, record: &netgrant_runtime::AuditRecord) {
        self.0.lock().unwrap().push(record.clone());
    }
}

impl Collect {
    /// Every record as JSON.
    pub fn json(&self) -> Vec<serde_json::Value> {
        let records = self.0.lock().unwrap();
        records
            .iter()
            .map(|r| serde_json::to_value(r).unwrap())
            .collect()
    }

    /// Every record as a JSON line, as `JsonLinesSink` writes them.
    pub fn text(&self) -> String {
        self.json().iter().map(|v| format!("{v}\n")).collect()
    }
}
