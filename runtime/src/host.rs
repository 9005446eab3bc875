//! `WebSocketHost`: one per plugin instance. The plugin holds opaque
//! [`ConnectionId`]s; the host owns every socket and task and enforces the policy.

use crate::config::{GlobalLimit, HostConfig};
use crate::connect::{self, Connected};
use crate::error::{bound, ErrorKind, HostError};
use crate::resolver::Resolver;
use futures_util::{SinkExt, StreamExt};
use netgrant_policy::{Authorizer, Capability, Request};
use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot, watch, Notify, OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::error::ProtocolError;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

static NEXT_HOST_ID: AtomicU64 = AtomicU64::new(1);

/// An opaque connection handle. Never reused; valid only on the host that
/// issued it.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct ConnectionId {
    host: u64,
    seq: u64,
}

impl fmt::Debug for ConnectionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ws-{}-{}", self.host, self.seq)
    }
}

impl fmt::Display for ConnectionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// Options for [`WebSocketHost::open`].
#[derive(Clone, Debug, Default)]
pub struct OpenOptions {
    /// Subprotocols to offer; each must be declared by the target.
    pub subprotocols: Vec<String>,
    /// Extra handshake headers; the header allow-list of docs/spec.md §5.6 applies (no credentials).
    pub headers: Vec<(String, String)>,
}

/// What `recv` returns.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Incoming {
    /// A text message.
    Text(String),
    /// A binary message.
    Binary(Vec<u8>),
    /// Nothing arrived within the timeout; the connection stays open.
    TimedOut,
    /// The connection is closed (by the peer, a bound, a deadline or shutdown).
    /// `reason` is peer text, escaped and bounded, or the host's reason code.
    Closed {
        /// The close code (1000 normal, 1006 abnormal, 1009 too big, …).
        code: u16,
        /// Why.
        reason: String,
    },
}

/// The life stage of a connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    /// Open: messages flow.
    Open,
    /// Closed; queued messages may still be received.
    Closed,
}

/// A snapshot of a connection for the host's UI and logs. Contains no payloads.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConnectionStatus {
    /// Open or closed.
    pub state: State,
    /// The URL, redacted.
    pub url: String,
    /// The checked address the TCP connection went to.
    pub remote: SocketAddr,
    /// The subprotocol the server selected.
    pub subprotocol: Option<String>,
    /// The id of the policy entry that allowed it.
    pub rule: String,
    /// Payload bytes received.
    pub bytes_in: u64,
    /// Payload bytes sent.
    pub bytes_out: u64,
    /// Messages received.
    pub messages_in: u64,
    /// Messages sent.
    pub messages_out: u64,
    /// Payload bytes waiting in the inbox.
    pub inbox_bytes: usize,
    /// Close code and reason, once closed.
    pub close: Option<(u16, String)>,
    /// The last error, as `code: message` (bounded, redacted).
    pub last_error: Option<String>,
}

#[derive(Default)]
struct Inbox {
    queue: VecDeque<Incoming>,
    bytes: usize,
    closed: Option<(u16, String)>,
}

struct Shared {
    inbox: Mutex<Inbox>,
    /// Bytes queued or being written, bounded by `max_write_buffer_bytes`.
    budget: Arc<Semaphore>,
    readable: Notify,
    room: Notify,
    status: Mutex<ConnectionStatus>,
}

impl Shared {
    fn push(&self, m: Incoming, len: usize) {
        let mut ib = self.inbox.lock().unwrap();
        ib.queue.push_back(m);
        ib.bytes += len;
        drop(ib);
        self.readable.notify_waiters();
    }

    fn free(&self, cap: usize) -> usize {
        cap.saturating_sub(self.inbox.lock().unwrap().bytes)
    }

    fn finish(&self, code: u16, reason: &str, error: Option<(&str, String)>) {
        let reason = bound(reason);
        {
            let mut st = self.status.lock().unwrap();
            if st.state == State::Closed {
                return;
            }
            st.state = State::Closed;
            st.close = Some((code, reason.clone()));
            if let Some((c, m)) = error {
                st.last_error = Some(format!("{c}: {}", bound(&m)));
            }
        }
        self.inbox.lock().unwrap().closed = Some((code, reason));
        self.readable.notify_waiters();
        // Senders waiting for write budget learn that the connection is gone.
        self.budget.close();
    }
}

enum Command {
    /// A message and the write-budget permits it holds until written.
    Send(Message, OwnedSemaphorePermit),
    Close(oneshot::Sender<()>),
}

struct Conn {
    shared: Arc<Shared>,
    cmd: mpsc::Sender<Command>,
    task: JoinHandle<()>,
}

struct Inner {
    id: u64,
    authorizer: Arc<Authorizer>,
    resolver: Arc<dyn Resolver>,
    config: HostConfig,
    tls: Arc<rustls::ClientConfig>,
    conns: Mutex<HashMap<u64, Conn>>,
    next_seq: AtomicU64,
    open: Arc<AtomicUsize>,
    tasks: Arc<AtomicUsize>,
    shutdown: watch::Sender<bool>,
    is_shut: AtomicBool,
}

impl Drop for Inner {
    fn drop(&mut self) {
        // Dropping the host ends every task it spawned.
        let _ = self.shutdown.send(true);
        for (_, c) in self.conns.get_mut().unwrap().drain() {
            c.task.abort();
            // An aborted task cannot say why; wake any recv still waiting.
            c.shared.finish(1001, "host dropped", None);
        }
    }
}

/// One plugin instance's WebSocket host.
///
/// Every connection lives here, never inside a call: a short-lived caller
/// (a tool invocation) holds only a [`ConnectionId`] and sends commands.
/// Incoming messages reach the plugin only as [`WebSocketHost::recv`] results;
/// nothing else observes them (no callback, no log of payloads).
///
/// The host does no reconnect, backoff or heartbeat: that is the plugin's job.
/// It answers pings per protocol.
pub struct WebSocketHost {
    inner: Arc<Inner>,
}

/// Reserves a connection slot (per host and process-wide); released on drop.
struct Slot {
    open: Arc<AtomicUsize>,
    _global: Option<OwnedSemaphorePermit>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.open.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Counts a spawned task until it ends.
struct TaskGuard(Arc<AtomicUsize>);

impl Drop for TaskGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Closed connections kept for `recv`/`status` until the plugin closes them.
const MAX_TOMBSTONES: usize = 64;

impl WebSocketHost {
    /// A host enforcing `authorizer` (built from a compiled or loaded policy).
    pub fn new(
        authorizer: Arc<Authorizer>,
        resolver: Arc<dyn Resolver>,
        config: HostConfig,
    ) -> Result<Self, HostError> {
        let tls = connect::tls_config(&config.roots)?;
        let (shutdown, _) = watch::channel(false);
        Ok(WebSocketHost {
            inner: Arc::new(Inner {
                id: NEXT_HOST_ID.fetch_add(1, Ordering::SeqCst),
                authorizer,
                resolver,
                config,
                tls,
                conns: Mutex::new(HashMap::new()),
                next_seq: AtomicU64::new(1),
                open: Arc::new(AtomicUsize::new(0)),
                tasks: Arc::new(AtomicUsize::new(0)),
                shutdown,
                is_shut: AtomicBool::new(false),
            }),
        })
    }

    /// The configuration.
    pub fn config(&self) -> &HostConfig {
        &self.inner.config
    }

    /// Open connections (slots in use).
    pub fn open_connections(&self) -> usize {
        self.inner.open.load(Ordering::SeqCst)
    }

    /// Tasks this host spawned that are still running.
    pub fn active_tasks(&self) -> usize {
        self.inner.tasks.load(Ordering::SeqCst)
    }

    fn reserve(&self) -> Result<Slot, HostError> {
        let max = self.inner.config.max_connections;
        let prev = self.inner.open.fetch_add(1, Ordering::SeqCst);
        let slot_open = self.inner.open.clone();
        if prev >= max {
            self.inner.open.fetch_sub(1, Ordering::SeqCst);
            return Err(HostError::new(
                ErrorKind::ConnectionLimit,
                format!("this plugin instance already has {max} open connections"),
            ));
        }
        let global = match &self.inner.config.global_limit {
            None => None,
            Some(GlobalLimit { permits, max }) => match permits.clone().try_acquire_owned() {
                Ok(p) => Some(p),
                Err(_) => {
                    self.inner.open.fetch_sub(1, Ordering::SeqCst);
                    return Err(HostError::new(
                        ErrorKind::ConnectionLimit,
                        format!("the process-wide limit of {max} connections is reached"),
                    ));
                }
            },
        };
        Ok(Slot {
            open: slot_open,
            _global: global,
        })
    }

    /// Authorizes `url`, resolves its host once, checks every answer, connects
    /// to a checked address and completes the handshake within the bounds.
    pub async fn open(&self, url: &str, options: OpenOptions) -> Result<ConnectionId, HostError> {
        if self.inner.is_shut.load(Ordering::SeqCst) {
            return Err(HostError::new(ErrorKind::Shutdown, "the host is shut down"));
        }
        let slot = self.reserve()?;
        let cfg = &self.inner.config;
        let req = Request {
            capability: Capability::Websocket,
            url,
            method: None,
            headers: &options.headers,
            subprotocols: &options.subprotocols,
        };
        let authorized = connect::authorize_and_resolve(
            &self.inner.authorizer,
            self.inner.resolver.as_ref(),
            &req,
            cfg.dns_timeout,
        )
        .await?;
        let Connected {
            ws,
            remote,
            subprotocol,
            tracker,
        } = connect::connect_ws(&authorized, &options, cfg, self.inner.tls.clone()).await?;
        let seq = self.inner.next_seq.fetch_add(1, Ordering::SeqCst);
        let shared = Arc::new(Shared {
            inbox: Mutex::new(Inbox::default()),
            budget: Arc::new(Semaphore::new(write_budget(cfg))),
            readable: Notify::new(),
            room: Notify::new(),
            status: Mutex::new(ConnectionStatus {
                state: State::Open,
                url: authorized.redacted_url().to_owned(),
                remote,
                subprotocol,
                rule: authorized.rule().to_owned(),
                bytes_in: 0,
                bytes_out: 0,
                messages_in: 0,
                messages_out: 0,
                inbox_bytes: 0,
                close: None,
                last_error: None,
            }),
        });
        let (tx, rx) = mpsc::channel(256);
        // Checked under the lock shutdown() drains: an open whose handshake
        // finished after shutdown began must not leave a connection behind.
        let mut conns = self.inner.conns.lock().unwrap();
        if self.inner.is_shut.load(Ordering::SeqCst) {
            return Err(HostError::new(
                ErrorKind::Shutdown,
                "the host was shut down while connecting",
            ));
        }
        self.inner.tasks.fetch_add(1, Ordering::SeqCst);
        let guard = TaskGuard(self.inner.tasks.clone());
        let task = tokio::spawn(run(
            ws,
            tracker,
            shared.clone(),
            rx,
            self.inner.shutdown.subscribe(),
            cfg.clone(),
            slot,
            guard,
        ));
        conns.insert(
            seq,
            Conn {
                shared,
                cmd: tx,
                task,
            },
        );
        prune_tombstones(&mut conns);
        Ok(ConnectionId {
            host: self.inner.id,
            seq,
        })
    }

    fn lookup(&self, id: ConnectionId) -> Result<(Arc<Shared>, mpsc::Sender<Command>), HostError> {
        let unknown = || {
            HostError::new(ErrorKind::UnknownConnection, format!("{id} is not a connection of this plugin instance (closed, or issued by another host)"))
        };
        if id.host != self.inner.id {
            return Err(unknown());
        }
        let conns = self.inner.conns.lock().unwrap();
        let c = conns.get(&id.seq).ok_or_else(unknown)?;
        Ok((c.shared.clone(), c.cmd.clone()))
    }

    async fn send(&self, id: ConnectionId, msg: Message, len: usize) -> Result<(), HostError> {
        let (shared, cmd) = self.lookup(id)?;
        let max = self.inner.config.max_message_bytes;
        if len > max {
            return Err(HostError::new(
                ErrorKind::MessageTooLarge,
                format!("message of {len} bytes exceeds the {max}-byte bound; the connection stays open"),
            ));
        }
        if shared.status.lock().unwrap().state == State::Closed {
            return Err(HostError::new(ErrorKind::Closed, format!("{id} is closed")));
        }
        // Bounded by bytes, not messages: queued plus unwritten bytes never
        // exceed max_write_buffer_bytes. A peer that never reads makes this
        // wait, and the wait is bounded by the write timeout.
        let total = write_budget(&self.inner.config);
        let want = len.clamp(1, total) as u32;
        let cfg = &self.inner.config;
        let permit = match tokio::time::timeout(
            cfg.write_timeout,
            shared.budget.clone().acquire_many_owned(want),
        )
        .await
        {
            Err(_) => {
                return Err(HostError::new(
                    ErrorKind::Timeout,
                    format!(
                    "{id}: the peer has not read the queued {total} bytes within the write timeout"
                ),
                ))
            }
            Ok(Err(_)) => return Err(HostError::new(ErrorKind::Closed, format!("{id} is closed"))),
            Ok(Ok(p)) => p,
        };
        cmd.send(Command::Send(msg, permit))
            .await
            .map_err(|_| HostError::new(ErrorKind::Closed, format!("{id} is closed")))
    }

    /// Sends a text message.
    pub async fn send_text(
        &self,
        id: ConnectionId,
        text: impl Into<String>,
    ) -> Result<(), HostError> {
        let text = text.into();
        let len = text.len();
        self.send(id, Message::text(text), len).await
    }

    /// Sends a binary message.
    pub async fn send_binary(
        &self,
        id: ConnectionId,
        data: impl Into<Vec<u8>>,
    ) -> Result<(), HostError> {
        let data = data.into();
        let len = data.len();
        self.send(id, Message::binary(data), len).await
    }

    /// The next incoming message, waiting at most `timeout` (default: the
    /// configured recv timeout). A timeout returns [`Incoming::TimedOut`] and
    /// leaves the connection open. Cancellation-safe: dropping the future
    /// loses no message.
    pub async fn recv(
        &self,
        id: ConnectionId,
        timeout: Option<Duration>,
    ) -> Result<Incoming, HostError> {
        let (shared, _) = self.lookup(id)?;
        let wait = timeout.unwrap_or(self.inner.config.recv_timeout);
        let got = tokio::time::timeout(wait, async {
            loop {
                let notified = shared.readable.notified();
                tokio::pin!(notified);
                notified.as_mut().enable();
                {
                    let mut ib = shared.inbox.lock().unwrap();
                    if let Some(m) = ib.queue.pop_front() {
                        let len = match &m {
                            Incoming::Text(t) => t.len(),
                            Incoming::Binary(b) => b.len(),
                            _ => 0,
                        };
                        ib.bytes -= len;
                        drop(ib);
                        shared.room.notify_one();
                        return m;
                    }
                    if let Some((code, reason)) = &ib.closed {
                        return Incoming::Closed {
                            code: *code,
                            reason: reason.clone(),
                        };
                    }
                }
                notified.await;
            }
        })
        .await;
        Ok(got.unwrap_or(Incoming::TimedOut))
    }

    /// Closes the connection (close handshake, bounded by the shutdown grace)
    /// and invalidates the handle.
    pub async fn close(&self, id: ConnectionId) -> Result<(), HostError> {
        let (_, cmd) = self.lookup(id)?;
        // Bounded as a whole: the command queue may be full of sends stuck
        // behind a peer that never reads.
        let _ = tokio::time::timeout(self.inner.config.shutdown_grace * 2, async {
            let (tx, rx) = oneshot::channel();
            if cmd.send(Command::Close(tx)).await.is_ok() {
                let _ = rx.await;
            }
        })
        .await;
        let removed = self.inner.conns.lock().unwrap().remove(&id.seq);
        if let Some(c) = removed {
            c.task.abort();
            // Wait for the task to be gone, so its slot and guard are released
            // when close() returns.
            let _ = c.task.await;
            // An aborted task cannot say why; wake any recv still waiting.
            c.shared.finish(1000, "closed by the plugin", None);
        }
        Ok(())
    }

    /// A snapshot of the connection.
    pub fn status(&self, id: ConnectionId) -> Result<ConnectionStatus, HostError> {
        let (shared, _) = self.lookup(id)?;
        let mut st = shared.status.lock().unwrap().clone();
        st.inbox_bytes = shared.inbox.lock().unwrap().bytes;
        Ok(st)
    }

    /// Closes every connection and ends every task: a close frame first, then
    /// a hard abort after the grace period, even if a peer never answers.
    pub async fn shutdown(&self) {
        self.inner.is_shut.store(true, Ordering::SeqCst);
        let _ = self.inner.shutdown.send(true);
        let tasks: Vec<(Arc<Shared>, JoinHandle<()>)> = {
            let mut conns = self.inner.conns.lock().unwrap();
            conns.drain().map(|(_, c)| (c.shared, c.task)).collect()
        };
        let deadline =
            Instant::now() + self.inner.config.shutdown_grace + Duration::from_millis(50);
        for (shared, mut t) in tasks {
            if tokio::time::timeout_at(deadline, &mut t).await.is_err() {
                t.abort();
                let _ = t.await;
            }
            // An aborted task cannot say why; wake any recv still waiting.
            shared.finish(1001, "shutdown", None);
        }
    }
}

/// The per-connection write budget in bytes (at least one maximum message).
fn write_budget(cfg: &HostConfig) -> usize {
    cfg.max_write_buffer_bytes
        .max(cfg.max_message_bytes)
        .min(u32::MAX as usize)
}

fn prune_tombstones(conns: &mut HashMap<u64, Conn>) {
    let mut closed: Vec<u64> = conns
        .iter()
        .filter(|(_, c)| c.task.is_finished())
        .map(|(k, _)| *k)
        .collect();
    if closed.len() > MAX_TOMBSTONES {
        closed.sort_unstable();
        for k in &closed[..closed.len() - MAX_TOMBSTONES] {
            conns.remove(k);
        }
    }
}

const NO_CLOSE_FRAME: &str = "the peer closed the TCP connection without a close frame";

fn close_code_for(e: &WsError) -> (u16, &'static str, &'static str) {
    match e {
        WsError::Capacity(_) => (1009, "message_too_large", "message_too_large"),
        WsError::Utf8(_) => (1007, "invalid_utf8", "protocol_error"),
        // TCP closed without a close frame: abnormal closure (RFC 6455 §7.1.5).
        WsError::Protocol(ProtocolError::ResetWithoutClosingHandshake) => {
            (1006, "connection_lost", "io_error")
        }
        WsError::Protocol(_) => (1002, "protocol_error", "protocol_error"),
        WsError::WriteBufferFull(_) => (1008, "write_buffer_full", "write_buffer_full"),
        _ => (1006, "connection_lost", "io_error"),
    }
}

#[allow(clippy::too_many_arguments)]
async fn run(
    ws: connect::Ws,
    tracker: connect::ReadTracker,
    shared: Arc<Shared>,
    mut cmds: mpsc::Receiver<Command>,
    mut shutdown: watch::Receiver<bool>,
    cfg: HostConfig,
    _slot: Slot,
    _guard: TaskGuard,
) {
    let (mut sink, mut stream) = ws.split();
    let opened = Instant::now();
    let mut last_activity = Instant::now();
    let need = cfg.max_message_bytes.min(cfg.inbox_bytes);
    // Since when the inbox has been too full to read the socket.
    let mut blocked_since: Option<Instant> = None;
    loop {
        let room = shared.free(cfg.inbox_bytes) >= need;
        match (room, blocked_since) {
            (false, None) => blocked_since = Some(Instant::now()),
            // While the host did not read, the peer could not complete its
            // message: that time does not count against its read deadline.
            (true, Some(t)) => {
                tracker.shift(t.elapsed());
                blocked_since = None;
            }
            _ => {}
        }
        let idle_at = last_activity + cfg.idle_timeout;
        let life_at = cfg.max_lifetime.map(|l| opened + l);
        let read_at = tracker.started().map(|s| s + cfg.message_read_deadline);
        tokio::select! {
            biased;
            _ = shutdown.changed() => {
                let frame = CloseFrame { code: CloseCode::Away, reason: "shutdown".into() };
                let _ = tokio::time::timeout(cfg.shutdown_grace, sink.send(Message::Close(Some(frame)))).await;
                shared.finish(1001, "shutdown", None);
                return;
            }
            cmd = cmds.recv() => match cmd {
                None => {
                    shared.finish(1001, "host dropped", None);
                    return;
                }
                Some(Command::Close(reply)) => {
                    let _ = tokio::time::timeout(cfg.shutdown_grace, sink.send(Message::Close(None))).await;
                    shared.finish(1000, "closed by the plugin", None);
                    let _ = reply.send(());
                    return;
                }
                Some(Command::Send(msg, permit)) => {
                    // Batch what is already queued into one flush.
                    let mut batch = vec![(msg, permit)];
                    let mut then_close = None;
                    while batch.len() < 64 {
                        match cmds.try_recv() {
                            Ok(Command::Send(m, p)) => batch.push((m, p)),
                            Ok(Command::Close(r)) => {
                                then_close = Some(r);
                                break;
                            }
                            Err(_) => break,
                        }
                    }
                    let n = batch.len() as u64;
                    let bytes: u64 = batch.iter().map(|(m, _)| m.len() as u64).sum();
                    let write = async {
                        let mut held = Vec::with_capacity(batch.len());
                        for (m, p) in batch {
                            sink.feed(m).await?;
                            held.push(p);
                        }
                        sink.flush().await?;
                        drop(held);
                        Ok::<(), WsError>(())
                    };
                    match tokio::time::timeout(cfg.write_timeout, write).await {
                        Ok(Ok(())) => {
                            last_activity = Instant::now();
                            let mut st = shared.status.lock().unwrap();
                            st.bytes_out += bytes;
                            st.messages_out += n;
                        }
                        Ok(Err(e)) => {
                            let (code, reason, err) = close_code_for(&e);
                            shared.finish(code, reason, Some((err, e.to_string())));
                            return;
                        }
                        Err(_) => {
                            shared.finish(1006, "timeout", Some(("timeout", "write timeout: the peer is not reading".into())));
                            return;
                        }
                    }
                    if let Some(reply) = then_close {
                        let _ = tokio::time::timeout(cfg.shutdown_grace, sink.send(Message::Close(None))).await;
                        shared.finish(1000, "closed by the plugin", None);
                        let _ = reply.send(());
                        return;
                    }
                }
            },
            msg = stream.next(), if room => {
                match msg {
                    Some(Ok(m)) => {
                        last_activity = Instant::now();
                        let (incoming, len) = match m {
                            Message::Text(t) => {
                                let s = t.as_str().to_string();
                                let n = s.len();
                                (Incoming::Text(s), n)
                            }
                            Message::Binary(b) => {
                                let n = b.len();
                                (Incoming::Binary(b.to_vec()), n)
                            }
                            Message::Close(frame) => {
                                match (frame, tracker.peer_close_code()) {
                                    // tungstenite answers a code that is not valid on the
                                    // wire with 1002 (never echoes it); say so.
                                    (_, Some(wire)) if !CloseCode::from(wire).is_allowed() => {
                                        shared.finish(1002, "protocol_error", Some(("protocol_error", format!("the peer closed with code {wire}, which is not valid on the wire; answered 1002"))));
                                    }
                                    // Peer text: escaped and bounded in finish(); never logged.
                                    (Some(f), _) => shared.finish(u16::from(f.code), f.reason.as_str(), None),
                                    // No code: 1005 is how RFC 6455 reports that locally.
                                    (None, _) => shared.finish(1005, "", None),
                                }
                                let _ = tokio::time::timeout(cfg.shutdown_grace, sink.flush()).await;
                                return;
                            }
                            // Pings are answered by the protocol layer on the next flush.
                            Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => {
                                let _ = tokio::time::timeout(cfg.write_timeout, sink.flush()).await;
                                continue;
                            }
                        };
                        {
                            let mut st = shared.status.lock().unwrap();
                            st.bytes_in += len as u64;
                            st.messages_in += 1;
                        }
                        shared.push(incoming, len);
                    }
                    Some(Err(e)) => {
                        let (code, reason, err) = close_code_for(&e);
                        if code != 1006 {
                            let frame = CloseFrame { code: CloseCode::from(code), reason: reason.into() };
                            let _ = tokio::time::timeout(cfg.shutdown_grace, sink.send(Message::Close(Some(frame)))).await;
                        }
                        let why = match e {
                            WsError::Protocol(ProtocolError::ResetWithoutClosingHandshake) => NO_CLOSE_FRAME.to_string(),
                            e => e.to_string(),
                        };
                        shared.finish(code, reason, Some((err, why)));
                        return;
                    }
                    None => {
                        shared.finish(1006, "connection_lost", Some(("io_error", NO_CLOSE_FRAME.into())));
                        return;
                    }
                }
            }
            _ = shared.room.notified(), if !room => {}
            // A message started arriving while the read above is still pending:
            // loop to arm its read deadline (else a slow drip is never timed).
            _ = tracker.wait_started(), if read_at.is_none() => {}
            _ = tokio::time::sleep_until(read_at.unwrap_or(idle_at)), if read_at.is_some() && room => {
                timeout_close(&mut sink, &shared, &cfg, "message read deadline: a message started but did not complete").await;
                return;
            }
            _ = tokio::time::sleep_until(idle_at) => {
                timeout_close(&mut sink, &shared, &cfg, "idle timeout: no traffic").await;
                return;
            }
            _ = tokio::time::sleep_until(life_at.unwrap_or(idle_at)), if life_at.is_some() => {
                timeout_close(&mut sink, &shared, &cfg, "maximum lifetime reached").await;
                return;
            }
        }
    }
}

async fn timeout_close(
    sink: &mut futures_util::stream::SplitSink<connect::Ws, Message>,
    shared: &Shared,
    cfg: &HostConfig,
    why: &str,
) {
    let frame = CloseFrame {
        code: CloseCode::Policy,
        reason: "timeout".into(),
    };
    let _ = tokio::time::timeout(cfg.shutdown_grace, sink.send(Message::Close(Some(frame)))).await;
    shared.finish(1008, "timeout", Some(("timeout", why.to_string())));
}
