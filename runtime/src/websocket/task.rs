//! The per-connection task: the only owner of a socket. It writes what the
//! plugin sends, reads into the bytes-bounded inbox, and enforces every
//! deadline; the host talks to it through [`Outgoing`] messages, the close
//! signal and [`Shared`] state.

use super::frames::{ReadTracker, Ws};
use super::types::{ConnectionStatus, Incoming, State};
use crate::audit::{Audit, Finished};
use crate::config::{after, HostConfig};
use crate::credentials::Injection;
use crate::error::bound;
use futures_util::task::AtomicWaker;
use futures_util::{FutureExt, SinkExt, StreamExt};
use netgrant_policy::Capability;
use std::borrow::Cow;
use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use tokio::sync::{mpsc, Notify, OwnedSemaphorePermit, Semaphore};
// The task's timers are polled outside tokio's cooperative budget, as
// `tokio::time::timeout` polls its own: a peer that keeps the read busy
// (a flood of pings, say) exhausts the budget, and a budgeted timer would
// then never be seen to fire.
use tokio::task::unconstrained;
use tokio::time::{Instant, Sleep};
use tokio_tungstenite::tungstenite::error::ProtocolError;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

#[derive(Default)]
pub(super) struct Inbox {
    pub(super) queue: VecDeque<Incoming>,
    pub(super) bytes: usize,
    pub(super) closed: Option<(u16, String)>,
}

pub(super) struct Shared {
    pub(super) inbox: Mutex<Inbox>,
    /// This connection's credentials: message values to substitute, and the
    /// masker for everything handed back.
    pub(super) injection: Injection,
    /// Bytes queued or being written, bounded by `max_write_buffer_bytes`.
    pub(super) budget: Arc<Semaphore>,
    pub(super) readable: Notify,
    pub(super) room: Notify,
    /// The plugin closed the connection, or the host is shutting down: the
    /// task sees it in its main loop or while a write is pending, and then
    /// closes within its own bounds (so `close` waits for the task with no
    /// timer).
    pub(super) closing: CloseSignal,
    pub(super) status: Mutex<ConnectionStatus>,
    /// Where the connection's end is recorded, under its id.
    pub(super) audit: Audit,
    pub(super) id: String,
    /// When it was authorized (the finished record's duration).
    pub(super) opened: std::time::Instant,
}

impl Shared {
    pub(super) fn push(&self, m: Incoming, len: usize) {
        let mut ib = self.inbox.lock().unwrap();
        ib.queue.push_back(m);
        ib.bytes += len;
        drop(ib);
        self.readable.notify_waiters();
    }

    pub(super) fn free(&self, cap: usize) -> usize {
        cap.saturating_sub(self.inbox.lock().unwrap().bytes)
    }

    /// Marks the connection closed, once: the first caller (the task, or
    /// the host when it aborts the task) says why, and the connection's
    /// end is recorded.
    pub(super) fn finish(&self, code: u16, reason: &str, error: Option<(&str, String)>) {
        self.end(code, reason, error, false);
    }

    /// [`Shared::finish`] for the host ending the connection (shutdown, or
    /// the host dropped): 1001, and the audit outcome `shutdown`.
    pub(super) fn shut_down(&self, reason: &str) {
        self.end(1001, reason, None, true);
    }

    fn end(&self, code: u16, reason: &str, error: Option<(&str, String)>, by_host: bool) {
        let reason = {
            let mut st = self.status.lock().unwrap();
            // Checked first: `close` calls this again after the task ended
            // it, and the reason need not be written for nothing.
            if st.state == State::Closed {
                return;
            }
            let reason = bound(reason);
            st.state = State::Closed;
            st.close = Some((code, reason.clone()));
            // A close by either side (any code) is `closed`; the host
            // ending it is `shutdown`; anything else names its error.
            let outcome = match &error {
                Some((c, _)) => *c,
                None if by_host => "shutdown",
                None => "closed",
            };
            self.audit.finished(Finished {
                id: &self.id,
                capability: Capability::Websocket,
                url: &st.url,
                outcome,
                close_code: Some(code),
                status: None,
                bytes_in: st.bytes_in,
                bytes_out: st.bytes_out,
                messages_in: st.messages_in,
                messages_out: st.messages_out,
                duration: self.opened.elapsed(),
            });
            if let Some((c, m)) = error {
                st.last_error = Some(format!("{c}: {}", bound(&m)));
            }
            reason
        };
        self.inbox.lock().unwrap().closed = Some((code, reason));
        self.readable.notify_waiters();
        // Senders waiting for write budget learn that the connection is gone.
        self.budget.close();
    }
}

/// Why a connection's task is asked to end.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Ask {
    /// The plugin closed it: what it sent before is written, then 1000.
    Close = 1,
    /// The host is shutting down: 1001, recorded as `shutdown`.
    Shutdown = 2,
}

/// An end asked of the task: what was asked and the task's waker. The task
/// polls it on every pass of its loops, so the check is one atomic load
/// and, while nothing is asked, a waker registration without a lock (a
/// `Notify` would take its mutex twice a pass: decision 184). Shutdown
/// comes through here too, not through a host-wide channel: a `watch`
/// receiver took a lock to register on the task's first pass and again
/// when it was dropped (decision 192).
#[derive(Default)]
pub(super) struct CloseSignal {
    /// 0 until asked, then the largest [`Ask`] asked (shutdown wins).
    asked: AtomicU8,
    waker: AtomicWaker,
}

impl CloseSignal {
    /// Asks the task to end (once is enough; a shutdown asked after a
    /// close still ends it as a shutdown, if it has not ended yet).
    pub(super) fn ask(&self, why: Ask) {
        self.asked.fetch_max(why as u8, Ordering::AcqRel);
        self.waker.wake();
    }

    /// What was asked, if anything.
    fn get(&self) -> Option<Ask> {
        match self.asked.load(Ordering::Acquire) {
            0 => None,
            1 => Some(Ask::Close),
            _ => Some(Ask::Shutdown),
        }
    }

    /// Completes once an end was asked, with what was asked.
    fn asked(&self) -> impl Future<Output = Ask> + '_ {
        std::future::poll_fn(move |cx| self.poll(cx))
    }

    fn poll(&self, cx: &mut Context<'_>) -> Poll<Ask> {
        if let Some(why) = self.get() {
            return Poll::Ready(why);
        }
        self.waker.register(cx.waker());
        // Asked between the load and the registration: not missed.
        match self.get() {
            Some(why) => Poll::Ready(why),
            None => Poll::Pending,
        }
    }
}

/// A message from the plugin and the write-budget permits it holds until
/// written. A close is not queued behind sends: it is [`Shared::closing`],
/// which the task sees even while a write waits for the peer.
pub(super) struct Outgoing(pub(super) Message, pub(super) OwnedSemaphorePermit);

/// Reserves a connection slot (per host and process-wide); released on drop.
pub(super) struct Slot {
    pub(super) open: Arc<AtomicUsize>,
    pub(super) _global: Option<OwnedSemaphorePermit>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.open.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Counts a spawned task until it ends, and then lists its connection as
/// ended (the host prunes the oldest ended connections the plugin has not
/// closed).
pub(super) struct TaskGuard {
    pub(super) tasks: Arc<AtomicUsize>,
    pub(super) seq: u64,
    pub(super) ended: Arc<Mutex<VecDeque<u64>>>,
}

impl Drop for TaskGuard {
    fn drop(&mut self) {
        // Never a panic here: this may run while a panic unwinds.
        let mut ended = self.ended.lock().unwrap_or_else(|e| e.into_inner());
        ended.push_back(self.seq);
        drop(ended);
        self.tasks.fetch_sub(1, Ordering::SeqCst);
    }
}

const NO_CLOSE_FRAME: &str = "the peer closed the TCP connection without a close frame";
const READ_DEADLINE: &str = "message read deadline: a message started but did not complete";
const LIFETIME: &str = "maximum lifetime reached";

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

/// Everything one connection's task owns. Built by the host once the
/// handshake is done; [`ConnectionTask::run`] ends only when the connection
/// is closed, and its slot and task count are released with it.
pub(super) struct ConnectionTask {
    /// The socket, after the handshake.
    pub(super) ws: Ws,
    /// Frame tracking for the read deadline and the wire close code.
    pub(super) tracker: ReadTracker,
    /// State the host reads: inbox, status, write budget.
    pub(super) shared: Arc<Shared>,
    /// What the plugin sends, in order.
    pub(super) commands: mpsc::Receiver<Outgoing>,
    /// Bounds and deadlines.
    pub(super) config: HostConfig,
    /// The connection slot, released when the task ends.
    pub(super) slot: Slot,
    /// Counts the task while it runs.
    pub(super) guard: TaskGuard,
}

impl ConnectionTask {
    /// Runs the connection until it closes: writes what the plugin sends,
    /// reads into the inbox while it has room, enforces every deadline.
    pub(super) async fn run(self) {
        let ConnectionTask {
            ws,
            tracker,
            shared,
            commands,
            config,
            slot,
            guard,
        } = self;
        run(ws, tracker, shared, commands, config).await;
        drop((slot, guard));
    }
}

async fn run(
    ws: Ws,
    tracker: ReadTracker,
    shared: Arc<Shared>,
    mut cmds: mpsc::Receiver<Outgoing>,
    cfg: HostConfig,
) {
    let (mut sink, mut stream) = ws.split();
    let opened = Instant::now();
    let mut last_activity = Instant::now();
    // Since when the inbox has been too full to read the socket.
    let mut blocked_since: Option<Instant> = None;
    // The timers live across the loop: one made per pass was a timer-wheel
    // insert and removal on every message. The idle timer is moved only
    // when it fires early (traffic since it was set), not on each message.
    let idle_timer = tokio::time::sleep_until(after(last_activity, cfg.idle_timeout));
    // Never polled (so never registered) without a maximum lifetime.
    let life_timer =
        tokio::time::sleep_until(after(opened, cfg.max_lifetime.unwrap_or(cfg.idle_timeout)));
    let read_timer = tokio::time::sleep_until(opened);
    // Polled only once the plugin has closed while a write was pending.
    let close_timer = tokio::time::sleep_until(opened);
    tokio::pin!(idle_timer, life_timer, read_timer, close_timer);
    // The deadline `read_timer` is set to, while a message is in progress.
    let mut read_armed: Option<Instant> = None;
    loop {
        let room = has_room(&shared, &tracker, &cfg, &mut blocked_since);
        // Polled right after the read (the select is biased): a message
        // that started arriving in that read, and is still pending, has its
        // deadline armed in the same pass (else a slow drip is never timed).
        let read_deadline = std::future::poll_fn(|cx| {
            poll_read_deadline(read_timer.as_mut(), &mut read_armed, &tracker, &cfg, cx)
        });
        tokio::select! {
            biased;
            why = shared.closing.asked() => {
                end_as_asked(&mut sink, &mut cmds, &shared, &cfg, why, after(Instant::now(), cfg.shutdown_grace)).await;
                return;
            }
            cmd = cmds.recv() => match cmd {
                None => {
                    shared.shut_down("host dropped");
                    return;
                }
                Some(Outgoing(msg, permit)) => {
                    // Batch what is already queued into one flush.
                    let mut batch = vec![(msg, permit)];
                    while batch.len() < 64 {
                        match cmds.try_recv() {
                            Ok(Outgoing(m, p)) => batch.push((m, p)),
                            Err(_) => break,
                        }
                    }
                    let counts = batch_counts(&batch);
                    let write = write_batch(&mut sink, batch);
                    // Reading goes on while the write waits for the peer: a
                    // peer that writes before it reads would otherwise wait
                    // for this task to read while this task waits for it to
                    // read, until the write timed out. (The write's end sets
                    // the activity time, so reads here need not.)
                    // A close by the plugin lets the write finish within the
                    // grace period, then closes.
                    let mut close_by: Option<Instant> = None;
                    let written = {
                        let write = tokio::time::timeout(cfg.write_timeout, write);
                        tokio::pin!(write);
                        loop {
                            let room = has_room(&shared, &tracker, &cfg, &mut blocked_since);
                            // The deadlines of what is read here, too.
                            let read_deadline = std::future::poll_fn(|cx| {
                                poll_read_deadline(read_timer.as_mut(), &mut read_armed, &tracker, &cfg, cx)
                            });
                            tokio::select! {
                                biased;
                                r = &mut write => break Ok(r),
                                msg = stream.next(), if room => match on_read(msg, &shared, &tracker) {
                                    Read::Message(m, len) => shared.push(m, len),
                                    // tungstenite sends a ping's answer ahead of
                                    // this write's next frame or flush.
                                    Read::Control => {}
                                    Read::End(end) => break Err(end),
                                },
                                _ = shared.room.notified(), if !room => {}
                                _ = read_deadline, if room => break Err(End::Deadline(READ_DEADLINE)),
                                _ = unconstrained(life_timer.as_mut()), if cfg.max_lifetime.is_some() => break Err(End::Deadline(LIFETIME)),
                                _ = shared.closing.asked(), if close_by.is_none() => {
                                    let by = after(Instant::now(), cfg.shutdown_grace);
                                    close_timer.as_mut().reset(by);
                                    close_by = Some(by);
                                }
                                _ = unconstrained(close_timer.as_mut()), if close_by.is_some() => break Err(End::Closed),
                            }
                        }
                    };
                    let written = match written {
                        Ok(r) => r,
                        // The connection ended while writing: the write is
                        // dropped and the socket gets its last word.
                        Err(end) => {
                            finish_socket(&mut sink, &shared, &cfg, end).await;
                            return;
                        }
                    };
                    match written {
                        Ok(Ok(())) => {
                            last_activity = Instant::now();
                            count_written(&shared, counts);
                        }
                        Ok(Err(e)) => {
                            write_failed(&shared, &e);
                            return;
                        }
                        Err(_) => {
                            shared.finish(1006, "timeout", Some(("timeout", "write timeout: the peer is not reading".into())));
                            return;
                        }
                    }
                    if let (Some(by), Some(why)) = (close_by, shared.closing.get()) {
                        end_as_asked(&mut sink, &mut cmds, &shared, &cfg, why, by).await;
                        return;
                    }
                }
            },
            msg = stream.next(), if room => match on_read(msg, &shared, &tracker) {
                Read::Message(m, len) => {
                    last_activity = Instant::now();
                    shared.push(m, len);
                }
                Read::Control => {
                    last_activity = Instant::now();
                    answer_pings(&mut sink);
                }
                Read::End(end) => {
                    finish_socket(&mut sink, &shared, &cfg, end).await;
                    return;
                }
            },
            _ = shared.room.notified(), if !room => {}
            _ = read_deadline, if room => {
                timeout_close(&mut sink, &shared, &cfg, READ_DEADLINE).await;
                return;
            }
            _ = unconstrained(idle_timer.as_mut()) => {
                let idle_at = after(last_activity, cfg.idle_timeout);
                if idle_at > Instant::now() {
                    idle_timer.as_mut().reset(idle_at);
                    continue;
                }
                timeout_close(&mut sink, &shared, &cfg, "idle timeout: no traffic").await;
                return;
            }
            _ = unconstrained(life_timer.as_mut()), if cfg.max_lifetime.is_some() => {
                timeout_close(&mut sink, &shared, &cfg, LIFETIME).await;
                return;
            }
        }
    }
}

/// Whether the inbox has room for the largest message, keeping the read
/// deadline's books: while the host did not read, the peer could not
/// complete its message, and that time does not count against it.
fn has_room(
    shared: &Shared,
    tracker: &ReadTracker,
    cfg: &HostConfig,
    blocked_since: &mut Option<Instant>,
) -> bool {
    let need = cfg.max_message_bytes.min(cfg.inbox_bytes);
    let room = shared.free(cfg.inbox_bytes) >= need;
    match (room, *blocked_since) {
        (false, None) => *blocked_since = Some(Instant::now()),
        (true, Some(t)) => {
            tracker.shift(t.elapsed());
            *blocked_since = None;
        }
        _ => {}
    }
    room
}

/// What one read from the socket means for the task.
enum Read {
    /// A message for the inbox (masked, counted) and its length.
    Message(Incoming, usize),
    /// A ping, pong or raw frame: tungstenite queues the answer to a ping,
    /// which goes out on the next flush.
    Control,
    /// The connection ended.
    End(End),
}

/// How a connection that ended in a read leaves, in the order the close
/// handshake wants.
enum End {
    /// The peer closed (already recorded): the answer tungstenite queued
    /// goes out on a last flush.
    PeerClosed,
    /// The TCP connection is gone (already recorded): nothing to send.
    Lost,
    /// A deadline passed while a write was pending: a 1008 close frame,
    /// then the record (what [`timeout_close`] does).
    Deadline(&'static str),
    /// The plugin closed (or the host is shutting down) and the pending
    /// write did not finish within the grace period: the write is dropped,
    /// then the close frame [`end_as_asked`] would send.
    Closed,
    /// A protocol, size or encoding error: a close frame with its code
    /// (unless the connection is lost), then the record. The write budget
    /// is closed at once, so no sender queues a message that the close
    /// would drop.
    Error {
        code: u16,
        reason: &'static str,
        err: &'static str,
        why: String,
    },
}

/// Reads the result of one `stream.next()`: masks and counts a message,
/// and says how a connection ended (a peer's close and a lost connection
/// are recorded here; an error is recorded by [`finish_socket`], after its
/// close frame). The socket itself is left to the caller, which may be in
/// the middle of a write.
fn on_read(msg: Option<Result<Message, WsError>>, shared: &Shared, tracker: &ReadTracker) -> Read {
    let m = match msg {
        Some(Ok(m)) => m,
        Some(Err(e)) => {
            let (code, reason, err) = close_code_for(&e);
            let why = match e {
                WsError::Protocol(ProtocolError::ResetWithoutClosingHandshake) => {
                    NO_CLOSE_FRAME.to_string()
                }
                e => e.to_string(),
            };
            shared.budget.close();
            return Read::End(End::Error {
                code,
                reason,
                err,
                why,
            });
        }
        None => {
            shared.finish(
                1006,
                "connection_lost",
                Some(("io_error", NO_CLOSE_FRAME.into())),
            );
            return Read::End(End::Lost);
        }
    };
    let (incoming, len) = match m {
        // Every injected value becomes its placeholder.
        Message::Text(t) => {
            let s = shared.injection.masker.mask_str(t.as_str()).into_owned();
            let n = s.len();
            (Incoming::Text(s), n)
        }
        Message::Binary(b) => {
            // A copy, on purpose: the payload shares tungstenite's read
            // buffer, which may have grown for an earlier, larger frame;
            // kept as it is, a small message in the inbox could hold that
            // whole buffer, and the inbox's byte bound would stop bounding
            // memory (docs/decisions.md, 191).
            let mut v = Vec::from(b);
            if let Cow::Owned(m) = shared.injection.masker.mask_bytes(&v) {
                v = m;
            }
            let n = v.len();
            (Incoming::Binary(v), n)
        }
        Message::Close(frame) => {
            match (frame, tracker.peer_close_code()) {
                // tungstenite answers a code that is not valid on the wire
                // with 1002 (never echoes it); say so.
                (_, Some(wire)) if !CloseCode::from(wire).is_allowed() => {
                    shared.finish(
                        1002,
                        "protocol_error",
                        Some((
                            "protocol_error",
                            format!("the peer closed with code {wire}, which is not valid on the wire; answered 1002"),
                        )),
                    );
                }
                // Peer text: escaped and bounded in finish(); never logged.
                (Some(f), _) => shared.finish(
                    u16::from(f.code),
                    &shared.injection.masker.mask_str(f.reason.as_str()),
                    None,
                ),
                // No code: 1005 is how RFC 6455 reports that locally.
                (None, _) => shared.finish(1005, "", None),
            }
            return Read::End(End::PeerClosed);
        }
        Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => return Read::Control,
    };
    let mut st = shared.status.lock().unwrap();
    st.bytes_in += len as u64;
    st.messages_in += 1;
    drop(st);
    Read::Message(incoming, len)
}

/// Sends the answer to a ping now if the socket takes it at once, without
/// waiting: waiting here would stop the reading (a peer that pings while
/// it pushes a backlog would wait for this task, and this task for it).
/// What the socket does not take stays queued in tungstenite, which sends
/// it at the start of the next read or with the next write.
fn answer_pings(sink: &mut Sink) {
    let _ = sink.flush().now_or_never();
}

/// The socket's last word after [`on_read`], a deadline, or the plugin's
/// close in a pending write ended the connection.
async fn finish_socket(sink: &mut Sink, shared: &Shared, cfg: &HostConfig, end: End) {
    match end {
        End::PeerClosed => {
            let _ = tokio::time::timeout(cfg.shutdown_grace, sink.flush()).await;
        }
        End::Lost => {}
        End::Deadline(why) => timeout_close(sink, shared, cfg, why).await,
        End::Closed => match shared.closing.get() {
            Some(Ask::Shutdown) => host_shut_down(sink, shared, cfg).await,
            _ => plugin_closed(sink, shared, cfg).await,
        },
        End::Error {
            code,
            reason,
            err,
            why,
        } => {
            if code != 1006 {
                send_close(sink, cfg, CloseCode::from(code), reason).await;
            }
            shared.finish(code, reason, Some((err, why)));
        }
    }
}

/// The connection's sending half.
type Sink = futures_util::stream::SplitSink<Ws, Message>;

/// Messages written with one flush, each with the write budget it holds.
type Batch = Vec<(Message, OwnedSemaphorePermit)>;

/// What a batch adds to the connection's counts once written: messages and
/// payload bytes.
fn batch_counts(batch: &Batch) -> (u64, u64) {
    let bytes = batch.iter().map(|(m, _)| m.len() as u64).sum();
    (batch.len() as u64, bytes)
}

/// Writes a batch and flushes once; each message's budget is released only
/// after the flush, so queued plus unwritten bytes stay bounded.
async fn write_batch(sink: &mut Sink, batch: Batch) -> Result<(), WsError> {
    let mut held = Vec::with_capacity(batch.len());
    for (m, p) in batch {
        sink.feed(m).await?;
        held.push(p);
    }
    sink.flush().await?;
    drop(held);
    Ok(())
}

fn count_written(shared: &Shared, (n, bytes): (u64, u64)) {
    let mut st = shared.status.lock().unwrap();
    st.bytes_out += bytes;
    st.messages_out += n;
}

/// A write that failed ends the connection with its error's code.
fn write_failed(shared: &Shared, e: &WsError) {
    let (code, reason, err) = close_code_for(e);
    shared.finish(code, reason, Some((err, e.to_string())));
}

/// The end asked of the task. The plugin closed: what it sent before is
/// written first, all by `by` (one grace period after the close was seen),
/// then the close frame within one more. Nothing here waits without a
/// bound, so `close` needs no timer of its own; a write that completes at
/// once registers none either. The host is shutting down: a 1001 close
/// frame, what is queued is dropped.
async fn end_as_asked(
    sink: &mut Sink,
    cmds: &mut mpsc::Receiver<Outgoing>,
    shared: &Shared,
    cfg: &HostConfig,
    why: Ask,
    by: Instant,
) {
    if why == Ask::Shutdown {
        host_shut_down(sink, shared, cfg).await;
        return;
    }
    let mut queued = Vec::new();
    while let Ok(Outgoing(m, p)) = cmds.try_recv() {
        queued.push((m, p));
    }
    if !queued.is_empty() {
        let counts = batch_counts(&queued);
        match tokio::time::timeout_at(by, write_batch(sink, queued)).await {
            Ok(Ok(())) => count_written(shared, counts),
            Ok(Err(e)) => {
                write_failed(shared, &e);
                return;
            }
            // The peer is not reading: the rest is dropped with the close.
            Err(_) => {}
        }
    }
    plugin_closed(sink, shared, cfg).await;
}

/// The end of a shutdown: a 1001 close frame, recorded as `shutdown`.
async fn host_shut_down(sink: &mut Sink, shared: &Shared, cfg: &HostConfig) {
    send_close(sink, cfg, CloseCode::Away, "shutdown").await;
    shared.shut_down("shutdown");
}

/// The end of a close by the plugin: a 1000 close frame, as its record says
/// (an empty close frame would reach the peer as 1005, "no status").
async fn plugin_closed(sink: &mut Sink, shared: &Shared, cfg: &HostConfig) {
    send_close(sink, cfg, CloseCode::Normal, "").await;
    shared.finish(1000, "closed by the plugin", None);
}

/// Sends a close frame, waiting at most the grace period for a peer that
/// does not read.
async fn send_close(sink: &mut Sink, cfg: &HostConfig, code: CloseCode, reason: &str) {
    let frame = CloseFrame {
        code,
        reason: reason.into(),
    };
    let _ = tokio::time::timeout(cfg.shutdown_grace, sink.send(Message::Close(Some(frame)))).await;
}

/// The read deadline of the message in progress (from the tracker's start
/// and the configured limit), on one timer that is reset only when the
/// deadline changes.
/// With nothing in progress there is nothing to time: the first bytes of the
/// next frame arrive through the read, which wakes the task and is polled
/// before this again.
fn poll_read_deadline(
    timer: Pin<&mut Sleep>,
    armed: &mut Option<Instant>,
    tracker: &ReadTracker,
    cfg: &HostConfig,
    cx: &mut Context<'_>,
) -> Poll<()> {
    let Some(at) = tracker
        .started()
        .map(|s| after(s, cfg.message_read_deadline))
    else {
        *armed = None;
        return Poll::Pending;
    };
    let mut timer = timer;
    if *armed != Some(at) {
        timer.as_mut().reset(at);
        *armed = Some(at);
    }
    Pin::new(&mut unconstrained(timer)).poll(cx)
}

async fn timeout_close(sink: &mut Sink, shared: &Shared, cfg: &HostConfig, why: &str) {
    send_close(sink, cfg, CloseCode::Policy, "timeout").await;
    shared.finish(1008, "timeout", Some(("timeout", why.to_string())));
}
