//! `WebSocketHost`: one per plugin instance. The plugin holds opaque
//! [`ConnectionId`]s; the host owns every socket and task and enforces the policy.

use super::handshake::{self, Connected};
use super::task::{Ask, ConnectionTask, Inbox, Outgoing, Shared, Slot, TaskGuard};
use super::types::{ConnectionId, ConnectionStatus, Incoming, OpenOptions, State};
use crate::audit::{Audit, AuditSink};
use crate::config::{after, GlobalLimit, HostConfig};
use crate::connect;
use crate::credentials::{Injection, SecretStore};
use crate::error::{ErrorKind, HostError};
use crate::resolver::Resolver;
use netgrant_policy::{Authorizer, Capability, Request};
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{mpsc, Notify, Semaphore};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;
use tokio_util::sync::CancellationToken;

static NEXT_HOST_ID: AtomicU64 = AtomicU64::new(1);

struct Conn {
    shared: Arc<Shared>,
    cmd: mpsc::Sender<Outgoing>,
    task: JoinHandle<()>,
}

struct Inner {
    id: u64,
    audit: Audit,
    authorizer: Arc<Authorizer>,
    resolver: Arc<dyn Resolver>,
    config: HostConfig,
    tls: Arc<rustls::ClientConfig>,
    conns: Mutex<HashMap<u64, Conn>>,
    /// Connections whose task has ended, oldest first (some may have been
    /// closed by the plugin since): what [`prune`] forgets.
    ended: Arc<Mutex<VecDeque<u64>>>,
    next_seq: AtomicU64,
    open: Arc<AtomicUsize>,
    tasks: Arc<AtomicUsize>,
    is_shut: AtomicBool,
    /// Cancelled by `shutdown()`: ends every `open()` still resolving,
    /// connecting or shaking hands, at once, whatever the peer does.
    cancel: CancellationToken,
    /// Where credential values come from (docs/spec.md §9.4), if anywhere.
    secrets: Option<Arc<dyn SecretStore>>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        // Dropping the host ends every task it spawned.
        for (_, c) in self.conns.get_mut().unwrap().drain() {
            c.task.abort();
            // An aborted task cannot say why; wake any recv still waiting.
            c.shared.shut_down("host dropped");
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
    inner: Inner,
}

/// Connections that ended on their own (the peer closed, an error, a
/// deadline) stay readable through `recv` and `status` until the plugin
/// closes them, or until this many later connections have ended.
const MAX_TOMBSTONES: usize = 64;

impl WebSocketHost {
    /// A host enforcing `authorizer` (built from a compiled or loaded policy).
    pub fn new(
        authorizer: Arc<Authorizer>,
        resolver: Arc<dyn Resolver>,
        config: HostConfig,
    ) -> Result<Self, HostError> {
        let tls = connect::tls_config(&config.roots)?;
        Ok(WebSocketHost {
            inner: Inner {
                id: NEXT_HOST_ID.fetch_add(1, Ordering::SeqCst),
                audit: Audit::new(None, authorizer.plugin(), authorizer.digest()),
                authorizer,
                resolver,
                config,
                tls,
                conns: Mutex::new(HashMap::new()),
                ended: Arc::default(),
                next_seq: AtomicU64::new(1),
                open: Arc::new(AtomicUsize::new(0)),
                tasks: Arc::new(AtomicUsize::new(0)),
                is_shut: AtomicBool::new(false),
                cancel: CancellationToken::new(),
                secrets: None,
            },
        })
    }

    /// Sends every decision and every connection's end to `sink` as an
    /// [`AuditRecord`](crate::AuditRecord) (docs/spec.md §11). Without a
    /// sink they are only `tracing` events (target `netgrant`).
    pub fn with_audit(mut self, sink: Arc<dyn AuditSink>) -> Self {
        let a = &self.inner.authorizer;
        self.inner.audit = Audit::new(Some(sink), a.plugin(), a.digest());
        self
    }

    /// Looks credential values up in `store` (docs/spec.md §9.4). Without a
    /// store, an open asking for a credential fails `secret_store_failed`
    /// before anything is connected.
    pub fn with_secrets(mut self, store: Arc<dyn SecretStore>) -> Self {
        self.inner.secrets = Some(store);
        self
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
    /// [`WebSocketHost::shutdown`] ends an open still under way at once
    /// (error `shutdown`), closing its socket.
    pub async fn open(&self, url: &str, options: OpenOptions) -> Result<ConnectionId, HostError> {
        // Dropped at its await point when the token is cancelled: the
        // socket with it, and its `Opening` guard records the end.
        match self
            .inner
            .cancel
            .run_until_cancelled(self.open_until_shutdown(url, options))
            .await
        {
            Some(result) => result,
            None => Err(HostError::new(
                ErrorKind::Shutdown,
                "the host was shut down while connecting",
            )),
        }
    }

    async fn open_until_shutdown(
        &self,
        url: &str,
        options: OpenOptions,
    ) -> Result<ConnectionId, HostError> {
        if self.inner.is_shut.load(Ordering::SeqCst) {
            return Err(HostError::new(ErrorKind::Shutdown, "the host is shut down"));
        }
        let slot = self.reserve()?;
        let cfg = &self.inner.config;
        // Numbered before deciding, so the decision record and the finished
        // record carry the same id.
        let seq = self.inner.next_seq.fetch_add(1, Ordering::SeqCst);
        let id = ConnectionId {
            host: self.inner.id,
            seq,
        };
        let audit_id = id.to_string();
        let audit = &self.inner.audit;
        let req = Request {
            capability: Capability::Websocket,
            url,
            method: None,
            headers: &options.headers,
            subprotocols: &options.subprotocols,
            credentials: &options.credentials,
        };
        let authorized = connect::authorize_and_resolve(
            &self.inner.authorizer,
            self.inner.resolver.as_ref(),
            &req,
            cfg.dns_timeout,
            audit,
            &audit_id,
        )
        .await?;
        let opened = std::time::Instant::now();
        // From the recorded allow until the connection is registered (its
        // task then records the end), an end is recorded exactly once:
        // on an error here, or by this guard if the open is dropped.
        let mut opening = Opening {
            audit,
            id: &audit_id,
            url: authorized.redacted_url(),
            opened,
            cancel: &self.inner.cancel,
            done: false,
        };
        // Values are fetched after the decision (which checked that the
        // rule binds every name) and before any socket.
        let mut injection = Injection::resolve(
            self.inner.secrets.as_deref(),
            authorized.credentials(),
            cfg.handshake_timeout,
            authorized.redacted_url(),
        )
        .await
        .inspect_err(|e| opening.failed(e))?;
        // Boxed: the TLS and handshake futures are ~18 KB (docs/decisions.md, 185), which would
        // otherwise sit in the caller's future (and its task) for as long
        // as that lives; this way they are freed once the handshake is done.
        let Connected {
            ws,
            remote,
            subprotocol,
            tracker,
        } = Box::pin(handshake::connect_ws(
            &authorized,
            &options,
            &injection.headers,
            cfg,
            self.inner.tls.clone(),
        ))
        .await
        .inspect_err(|e| opening.failed(e))?;
        // Header values served the handshake; they are not kept (zeroized
        // now). Message values and the masker live with the connection.
        injection.headers.clear();
        // The connection's `Shared` records its end from here on (no await
        // is left before it is registered or shut down).
        opening.handed_over();
        let shared = Arc::new(Shared {
            inbox: Mutex::new(Inbox::default()),
            injection,
            budget: Arc::new(Semaphore::new(write_budget(cfg))),
            readable: Notify::new(),
            room: Notify::new(),
            closing: Default::default(),
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
            audit: audit.clone(),
            id: audit_id,
            opened,
        });
        let (tx, rx) = mpsc::channel(256);
        // Checked under the lock shutdown() drains: an open whose handshake
        // finished after shutdown began must not leave a connection behind.
        let mut conns = self.inner.conns.lock().unwrap();
        if self.inner.is_shut.load(Ordering::SeqCst) {
            shared.shut_down("shutdown");
            return Err(HostError::new(
                ErrorKind::Shutdown,
                "the host was shut down while connecting",
            ));
        }
        self.inner.tasks.fetch_add(1, Ordering::SeqCst);
        let guard = TaskGuard {
            tasks: self.inner.tasks.clone(),
            seq,
            ended: self.inner.ended.clone(),
        };
        let task = tokio::spawn(
            ConnectionTask {
                ws,
                tracker,
                shared: shared.clone(),
                commands: rx,
                config: cfg.clone(),
                slot,
                guard,
            }
            .run(),
        );
        conns.insert(
            seq,
            Conn {
                shared,
                cmd: tx,
                task,
            },
        );
        prune(&mut conns, &mut self.inner.ended.lock().unwrap());
        Ok(id)
    }

    fn lookup(&self, id: ConnectionId) -> Result<(Arc<Shared>, mpsc::Sender<Outgoing>), HostError> {
        if id.host != self.inner.id {
            return Err(unknown(id));
        }
        let conns = self.inner.conns.lock().unwrap();
        let c = conns.get(&id.seq).ok_or_else(|| unknown(id))?;
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
        cmd.send(Outgoing(msg, permit))
            .await
            .map_err(|_| HostError::new(ErrorKind::Closed, format!("{id} is closed")))
    }

    /// Sends a text message.
    pub async fn send_text(
        &self,
        id: ConnectionId,
        text: impl Into<String>,
    ) -> Result<(), HostError> {
        let (shared, _) = self.lookup(id)?;
        // `{{credential:NAME}}` becomes this connection's value; a name not
        // bound to it fails the send (docs/spec.md §9.3). The wire buffers
        // beyond this point are tungstenite's and are not zeroized.
        let mut text = shared.injection.substitute(text.into())?;
        let text = std::mem::take(&mut *text);
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

    /// Closes the connection and invalidates the handle: what was sent
    /// before is written first, then the close frame (a peer that does not
    /// read gets one shutdown grace period for each). Returns once the
    /// connection's task has ended, so its slot is free.
    pub async fn close(&self, id: ConnectionId) -> Result<(), HostError> {
        // One lock: the caller that takes the connection out of the table
        // closes it; any other (a second close, even a concurrent one)
        // finds the handle already invalid.
        let removed = match id.host == self.inner.id {
            true => self.inner.conns.lock().unwrap().remove(&id.seq),
            false => None,
        };
        let Some(Conn { shared, cmd, task }) = removed else {
            return Err(unknown(id));
        };
        // The close is not queued behind sends (the queue may be full of
        // sends stuck behind a peer that never reads): the task sees it even
        // while a write is pending, and bounds the close itself, within two
        // grace periods (docs/decisions.md, 184). Waiting for the task is
        // the one wake-up back, with no timer here. The sender is held until
        // then, so the task never takes the close for the host going away.
        // No new send is accepted from here on (one that already holds
        // budget may still be queued, and is written if it is in the queue
        // when the task drains it).
        shared.budget.close();
        shared.closing.ask(Ask::Close);
        let _ = task.await;
        drop(cmd);
        // A task that panicked cannot say why; wake any recv still waiting.
        shared.finish(1000, "closed by the plugin", None);
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
        // Opens still under way end now, not when their peer answers.
        self.inner.cancel.cancel();
        // Asked before the command senders are dropped, so no task takes
        // its closed queue for the host going away. An open finishing its
        // handshake now checks `is_shut` under this lock and connects
        // nothing.
        let tasks: Vec<(Arc<Shared>, JoinHandle<()>)> = {
            let mut conns = self.inner.conns.lock().unwrap();
            conns
                .drain()
                .map(|(_, c)| {
                    c.shared.closing.ask(Ask::Shutdown);
                    (c.shared, c.task)
                })
                .collect()
        };
        let deadline = after(
            Instant::now(),
            self.inner
                .config
                .shutdown_grace
                .saturating_add(Duration::from_millis(50)),
        );
        for (shared, mut t) in tasks {
            if tokio::time::timeout_at(deadline, &mut t).await.is_err() {
                t.abort();
                let _ = t.await;
            }
            // An aborted task cannot say why; wake any recv still waiting.
            shared.shut_down("shutdown");
        }
    }
}

/// An allowed open not yet handed to its connection task: records the
/// open's end once, as a failure ([`Opening::failed`]) or, if the open is
/// dropped first (shutdown, or the caller gave up), when dropped: outcome
/// `shutdown` or `cancelled`, as `RequestHost` records an abandoned call.
struct Opening<'a> {
    audit: &'a Audit,
    id: &'a str,
    url: &'a str,
    opened: std::time::Instant,
    cancel: &'a CancellationToken,
    done: bool,
}

impl Opening<'_> {
    /// The connection now records its own end.
    fn handed_over(mut self) {
        self.done = true;
    }

    fn failed(&mut self, e: &HostError) {
        self.end(e.code());
    }

    fn end(&mut self, outcome: &str) {
        if std::mem::replace(&mut self.done, true) {
            return;
        }
        self.audit.ended_unopened(
            self.id,
            Capability::Websocket,
            self.url,
            outcome,
            self.opened.elapsed(),
        );
    }
}

impl Drop for Opening<'_> {
    fn drop(&mut self) {
        let outcome = if self.cancel.is_cancelled() {
            "shutdown"
        } else {
            "cancelled"
        };
        self.end(outcome);
    }
}

/// The error for a handle this host does not hold (any more).
fn unknown(id: ConnectionId) -> HostError {
    HostError::new(
        ErrorKind::UnknownConnection,
        format!(
            "{id} is not a connection of this plugin instance (closed, or issued by another host)"
        ),
    )
}

/// The per-connection write budget in bytes (at least one maximum message).
fn write_budget(cfg: &HostConfig) -> usize {
    cfg.max_write_buffer_bytes
        .max(cfg.max_message_bytes)
        .min(u32::MAX as usize)
}

/// Forgets the connections that ended before the last [`MAX_TOMBSTONES`]
/// to end (a no-op for those the plugin closed already). One step per ended
/// connection, never a scan of the table: opening n connections is O(n)
/// however many stay open. Returns the steps taken.
fn prune<V>(conns: &mut HashMap<u64, V>, ended: &mut VecDeque<u64>) -> usize {
    let mut steps = 0;
    while ended.len() > MAX_TOMBSTONES {
        if let Some(seq) = ended.pop_front() {
            conns.remove(&seq);
        }
        steps += 1;
    }
    steps
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Growth guard: pruning costs one step per ended connection, not a
    /// pass over the table (the table held every open connection, and a
    /// scan per open made opening n connections O(n²)).
    #[test]
    fn pruning_is_linear_in_ended_connections() {
        let mut conns: HashMap<u64, ()> = HashMap::new();
        let mut ended = VecDeque::new();
        let mut steps = 0;
        // 10,000 connections stay open while 10,000 others open and end.
        for seq in 0..10_000u64 {
            conns.insert(seq, ());
        }
        for seq in 10_000..20_000u64 {
            conns.insert(seq, ());
            ended.push_back(seq);
            steps += prune(&mut conns, &mut ended);
        }
        assert_eq!(steps, 10_000 - MAX_TOMBSTONES);
        assert_eq!(conns.len(), 10_000 + MAX_TOMBSTONES);
        // The newest ended ones are kept, the oldest forgotten.
        assert!(conns.contains_key(&19_999) && conns.contains_key(&(20_000 - 64)));
        assert!(!conns.contains_key(&(20_000 - 65)));
        // Ended connections the plugin closed already cost one step each.
        for seq in 20_000..20_100u64 {
            ended.push_back(seq);
        }
        assert_eq!(prune(&mut conns, &mut ended), 100);
        assert_eq!(conns.len(), 10_000);
    }
}
