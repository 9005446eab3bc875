//! Idle connections kept for reuse, per host (one plugin instance).
//!
//! Reuse never skips a check: every call is authorized, resolved and its
//! answers checked as if nothing were pooled. Only then may it take an idle
//! connection, and only one opened for the same scheme (TLS or not) and the
//! same server name (the URL's normalized host) **to one of the addresses
//! this call just checked** — so a changed DNS answer, a narrowed policy or
//! a different host never rides an old connection. Nothing is shared across
//! hosts, so no plugin uses a connection another plugin opened.
//!
//! A pooled connection is closed when it has been idle for
//! `RequestConfig::pool_idle_timeout`, when more than
//! `RequestConfig::pool_max_idle` are idle (oldest first), when its server
//! closes it, and when the host shuts down or is dropped.

use super::exchange::ScopeGuard;
use http_body_util::Full;
use hyper::body::Bytes;
use hyper::client::conn::{http1, http2};
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;
use tokio::task::AbortHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// What a connection was opened for: a call may reuse it only if its own
/// key is equal and the remote address is among its checked addresses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Key {
    pub tls: bool,
    /// The URL's normalized host: the TLS server name, and the `Host` the
    /// connection was opened for.
    pub server_name: String,
}

/// The sending half of an open connection.
pub(crate) enum Sender {
    H1(http1::SendRequest<Full<Bytes>>),
    H2(http2::SendRequest<Full<Bytes>>),
}

impl Sender {
    fn is_closed(&self) -> bool {
        match self {
            Sender::H1(s) => s.is_closed(),
            Sender::H2(s) => s.is_closed(),
        }
    }
}

/// What keeps a connection alive: its driver task and, for HTTP/2, the
/// helper tasks hyper spawned. Dropping the last reference aborts them and
/// so closes the socket.
pub(crate) struct Life {
    _driver: AbortOnDrop<()>,
    _scope: Option<ScopeGuard>,
}

/// Aborts a spawned task when dropped.
struct AbortOnDrop<O>(tokio::task::JoinHandle<O>);

impl<O> Drop for AbortOnDrop<O> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl Life {
    /// Drives `conn` on its own task until the last holder lets go or
    /// `cancel` is cancelled (shutdown).
    pub(crate) fn spawn<C>(
        conn: C,
        scope: Option<ScopeGuard>,
        cancel: &CancellationToken,
    ) -> Arc<Life>
    where
        C: std::future::Future + Send + 'static,
    {
        let cancel = cancel.clone();
        Arc::new(Life {
            _driver: AbortOnDrop(tokio::spawn(async move {
                let _ = cancel.run_until_cancelled_owned(conn).await;
            })),
            _scope: scope,
        })
    }
}

/// An open connection a call holds. HTTP/1.1 connections are held by one
/// call at a time; an HTTP/2 connection is shared (each call clones the
/// sender), and stays in the pool while calls use it.
pub(crate) struct Conn {
    pub sender: Sender,
    pub key: Key,
    pub remote: SocketAddr,
    pub life: Arc<Life>,
}

impl Conn {
    /// Another handle on a shared (HTTP/2) connection; HTTP/1.1 connections
    /// are never shared.
    pub(crate) fn share(&self) -> Option<Conn> {
        match &self.sender {
            Sender::H2(s) => Some(Conn {
                sender: Sender::H2(s.clone()),
                key: self.key.clone(),
                remote: self.remote,
                life: self.life.clone(),
            }),
            Sender::H1(_) => None,
        }
    }
}

struct Idle {
    conn: Conn,
    since: Instant,
}

struct State {
    idle: VecDeque<Idle>,
    /// The task that closes expired connections, while any are idle.
    sweeper: Option<AbortHandle>,
    closed: bool,
}

/// One host's idle connections.
pub(crate) struct Pool {
    state: Mutex<State>,
    max_idle: usize,
    idle_timeout: Duration,
}

impl Pool {
    pub(crate) fn new(max_idle: usize, idle_timeout: Duration) -> Arc<Pool> {
        Arc::new(Pool {
            state: Mutex::new(State {
                idle: VecDeque::new(),
                sweeper: None,
                closed: false,
            }),
            max_idle,
            idle_timeout,
        })
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether reuse is on at all.
    pub(crate) fn enabled(&self) -> bool {
        self.max_idle > 0 && !self.idle_timeout.is_zero()
    }

    /// An idle connection for `key` to one of `checked`, if there is one,
    /// idle for less than the idle timeout at `now`. HTTP/1.1 connections
    /// are taken out; HTTP/2 ones are shared.
    pub(crate) fn checkout(&self, key: &Key, checked: &[SocketAddr], now: Instant) -> Option<Conn> {
        if !self.enabled() {
            return None;
        }
        let mut st = self.state();
        let timeout = self.idle_timeout;
        st.idle
            .retain(|i| !i.conn.sender.is_closed() && now.duration_since(i.since) < timeout);
        let at = st
            .idle
            .iter()
            .position(|i| i.conn.key == *key && checked.contains(&i.conn.remote))?;
        match st.idle[at].conn.share() {
            Some(shared) => {
                st.idle[at].since = now;
                Some(shared)
            }
            None => st.idle.remove(at).map(|i| i.conn),
        }
    }

    /// Keeps `conn` for reuse (the call using it ended with a complete,
    /// reusable exchange). An HTTP/2 connection already pooled only has its
    /// idle time reset.
    pub(crate) fn checkin(self: &Arc<Self>, conn: Conn) {
        if !self.enabled() || conn.sender.is_closed() {
            return;
        }
        let now = Instant::now();
        let mut st = self.state();
        if st.closed {
            return;
        }
        if let Some(i) = st
            .idle
            .iter_mut()
            .find(|i| Arc::ptr_eq(&i.conn.life, &conn.life))
        {
            i.since = now;
            return;
        }
        st.idle.push_back(Idle { conn, since: now });
        while st.idle.len() > self.max_idle {
            st.idle.pop_front();
        }
        if st.sweeper.is_none() {
            st.sweeper = Some(self.spawn_sweeper());
        }
    }

    /// Closes expired connections every half idle timeout, and stops when
    /// none are idle (the next checkin starts it again).
    fn spawn_sweeper(self: &Arc<Self>) -> AbortHandle {
        let pool: Weak<Pool> = Arc::downgrade(self);
        let every = (self.idle_timeout / 2).max(Duration::from_millis(10));
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(every).await;
                let Some(pool) = pool.upgrade() else { return };
                let now = Instant::now();
                let mut st = pool.state();
                let timeout = pool.idle_timeout;
                // Dropped outside the lock would be nicer, but dropping only
                // aborts tasks: cheap and lock-free.
                st.idle.retain(|i| {
                    !i.conn.sender.is_closed() && now.duration_since(i.since) < timeout
                });
                if st.idle.is_empty() {
                    st.sweeper = None;
                    return;
                }
            }
        })
        .abort_handle()
    }

    /// Idle connections still open now (closed ones are let go).
    pub(crate) fn idle(&self) -> usize {
        let mut st = self.state();
        st.idle.retain(|i| !i.conn.sender.is_closed());
        st.idle.len()
    }

    /// Closes every idle connection and keeps none from now on.
    pub(crate) fn close(&self) {
        let (idle, sweeper) = {
            let mut st = self.state();
            st.closed = true;
            (std::mem::take(&mut st.idle), st.sweeper.take())
        };
        if let Some(s) = sweeper {
            s.abort();
        }
        drop(idle);
    }
}
