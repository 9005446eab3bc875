//! `RequestHost`: one per plugin instance. Each call runs in its caller's
//! task (no task per call: a spawn and its join cost a cross-thread wake-up
//! per call, a third of a small pooled request, docs/benchmarks.md), raced
//! against the host's cancellation token. `shutdown()` (or dropping the
//! host) cancels that token: every call returns `shutdown` when next polled,
//! and every connection's driver task ends at once, closing its socket —
//! also for a caller that has stopped polling.

use super::exchange::{self, Call, Shared};
use super::pool::Pool;
use super::types::{RequestOptions, Response};
use crate::audit::{Audit, AuditSink};
use crate::config::{GlobalLimit, RequestConfig};
use crate::connect;
use crate::credentials::SecretStore;
use crate::error::{ErrorKind, HostError};
use crate::resolver::Resolver;
use netgrant_policy::Authorizer;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{Notify, OwnedSemaphorePermit};
use tokio_util::sync::CancellationToken;

/// How long `shutdown` waits for the calls in flight to end (a caller that
/// stopped polling ends its call only when it polls or drops it).
const SHUTDOWN_WAIT: Duration = Duration::from_secs(1);

/// Counts requests in flight; wakes `shutdown` when the last one ends.
struct InFlight {
    count: AtomicUsize,
    idle: Notify,
}

/// One reserved in-flight slot (and its process-wide permit, if any),
/// released when the call ends (returned, cancelled or dropped).
struct Slot {
    in_flight: Arc<InFlight>,
    _global: Option<OwnedSemaphorePermit>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        if self.in_flight.count.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.in_flight.idle.notify_waiters();
        }
    }
}

/// One plugin instance's one-shot HTTP client (`host_api.request`).
///
/// `request` authorizes the call with the policy's [`Authorizer`] — the same
/// code `netgrant authorize` runs — resolves the host once, checks every
/// answer, connects to a checked address only, does TLS with the URL's host
/// as server name, sends exactly one request over that connection and
/// returns the complete, bounded response with cookies and hop-by-hop
/// headers removed. It follows no redirect (a 3xx is returned as it is),
/// keeps no cookies, reads no proxy variables and does not decompress.
///
/// Connections are kept for reuse within this host only, and a call takes
/// one only after its own checks, when it goes to an address that call
/// just checked, with the same scheme and server name (see
/// [`RequestConfig::pool_max_idle`]). See docs/runtime.md for the limits
/// and faults.
pub struct RequestHost {
    shared: Arc<Shared>,
    in_flight: Arc<InFlight>,
    /// Numbers this host in audit ids (`req-<host>-<call>`).
    id: u64,
    next: AtomicU64,
    is_shut: AtomicBool,
}

static NEXT_HOST_ID: AtomicU64 = AtomicU64::new(1);

impl RequestHost {
    /// A host enforcing `authorizer` (built from a compiled or loaded policy).
    pub fn new(
        authorizer: Arc<Authorizer>,
        resolver: Arc<dyn Resolver>,
        config: RequestConfig,
    ) -> Result<Self, HostError> {
        let mut tls = (*connect::tls_config(&config.roots)?).clone();
        tls.alpn_protocols = if config.http2 {
            vec![b"h2".to_vec(), b"http/1.1".to_vec()]
        } else {
            vec![b"http/1.1".to_vec()]
        };
        Ok(RequestHost {
            shared: Arc::new(Shared {
                audit: Audit::new(None, authorizer.plugin(), authorizer.digest()),
                authorizer,
                resolver,
                pool: Pool::new(config.pool_max_idle, config.pool_idle_timeout),
                secrets: None,
                config,
                tls: Arc::new(tls),
                cancel: CancellationToken::new(),
            }),
            id: NEXT_HOST_ID.fetch_add(1, Ordering::SeqCst),
            in_flight: Arc::new(InFlight {
                count: AtomicUsize::new(0),
                idle: Notify::new(),
            }),
            next: AtomicU64::new(1),
            is_shut: AtomicBool::new(false),
        })
    }

    /// Sends every decision and every request's end to `sink` as an
    /// [`AuditRecord`](crate::AuditRecord) (docs/spec.md §11). Without a
    /// sink they are only `tracing` events (target `netgrant`).
    pub fn with_audit(mut self, sink: Arc<dyn AuditSink>) -> Self {
        let mut s = (*self.shared).clone();
        s.audit = Audit::new(Some(sink), s.authorizer.plugin(), s.authorizer.digest());
        self.shared = Arc::new(s);
        self
    }

    /// Looks credential values up in `store` (docs/spec.md §9.4). Without a
    /// store, a call asking for a credential fails `secret_store_failed`
    /// before anything is connected.
    pub fn with_secrets(mut self, store: Arc<dyn SecretStore>) -> Self {
        let mut s = (*self.shared).clone();
        s.secrets = Some(store);
        self.shared = Arc::new(s);
        self
    }

    /// The configuration.
    pub fn config(&self) -> &RequestConfig {
        &self.shared.config
    }

    /// Requests in flight (each holds at most one socket).
    pub fn in_flight(&self) -> usize {
        self.in_flight.count.load(Ordering::SeqCst)
    }

    /// Connections kept open for reuse now (an HTTP/2 connection in use by
    /// calls counts while it is pooled).
    pub fn idle_connections(&self) -> usize {
        self.shared.pool.idle()
    }

    fn shut_error() -> HostError {
        HostError::new(ErrorKind::Shutdown, "the host is shut down")
    }

    fn reserve(&self) -> Result<Slot, HostError> {
        let max = self.shared.config.max_in_flight;
        let prev = self.in_flight.count.fetch_add(1, Ordering::SeqCst);
        let mut slot = Slot {
            in_flight: self.in_flight.clone(),
            _global: None,
        };
        if prev >= max {
            return Err(HostError::new(
                ErrorKind::ConnectionLimit,
                format!("this plugin instance already has {max} requests in flight"),
            ));
        }
        if let Some(GlobalLimit { permits, max }) = &self.shared.config.global_limit {
            match permits.clone().try_acquire_owned() {
                Ok(p) => slot._global = Some(p),
                Err(_) => {
                    return Err(HostError::new(
                        ErrorKind::ConnectionLimit,
                        format!("the process-wide limit of {max} connections is reached"),
                    ))
                }
            }
        }
        Ok(slot)
    }

    /// Sends one request and returns the complete response.
    ///
    /// `method` is an uppercase HTTP method (`GET`, `POST`, …; the grant
    /// must allow it), `headers` pass the header allow-list of
    /// docs/spec.md §5.6 (no `Host`, credentials, hop-by-hop or
    /// `Content-Length`: the host sets those), `body` is at most
    /// `max_request_body_bytes`. Any HTTP status is an `Ok`; an `Err` is a
    /// denial (`ErrorKind::Denied`, nothing was connected) or a failure
    /// (`timeout`, `message_too_large`, `connect_failed`, `tls_failed`,
    /// `http_failed`, `connection_limit`, `shutdown`).
    ///
    /// Cancellation: dropping the returned future aborts the request and
    /// closes its connection.
    pub async fn request(
        &self,
        method: &str,
        url: &str,
        headers: &[(String, String)],
        body: Vec<u8>,
        options: RequestOptions,
    ) -> Result<Response, HostError> {
        if self.is_shut.load(Ordering::SeqCst) {
            return Err(Self::shut_error());
        }
        let cfg = &self.shared.config;
        let max_out = cfg.max_request_body_bytes;
        if body.len() > max_out {
            return Err(HostError::new(
                ErrorKind::MessageTooLarge,
                format!(
                    "the request body of {} bytes exceeds the {max_out}-byte bound; nothing was sent",
                    body.len()
                ),
            ));
        }
        let slot = self.reserve()?;
        let seq = self.next.fetch_add(1, Ordering::SeqCst);
        let call = Call {
            id: format!("req-{}-{seq}", self.id),
            method,
            url,
            headers,
            body,
            total: options
                .timeout
                .map_or(cfg.total_timeout, |t| t.min(cfg.total_timeout)),
            max_body: options
                .max_response_body_bytes
                .map_or(cfg.max_response_body_bytes, |b| {
                    b.min(cfg.max_response_body_bytes)
                }),
            credentials: options.credentials,
        };
        // Boxed: the call's future is several KB and would otherwise be
        // moved with the caller's future (memmove was 10% of the CPU with
        // 16 small requests in flight, docs/benchmarks.md).
        let work = Box::pin(exchange::run(&self.shared, call));
        // `shutdown` cancels after setting `is_shut`: a call that started
        // before sees the token, one that starts after is refused above.
        let result = match self.shared.cancel.run_until_cancelled(work).await {
            Some(r) => r,
            None => Err(exchange::cancelled_by_shutdown()),
        };
        // Released here, or when the caller drops this future.
        drop(slot);
        result
    }

    /// Ends every request in flight at once — each returns `shutdown` and its
    /// connection is closed —, closes every pooled connection and refuses
    /// new requests. Returns when the calls in flight have ended (bounded
    /// wait: a call whose caller stopped polling ends when it is polled or
    /// dropped, though its connection is closed now). Dropping the host does
    /// the same without waiting.
    pub async fn shutdown(&self) {
        self.is_shut.store(true, Ordering::SeqCst);
        self.shared.cancel.cancel();
        self.shared.pool.close();
        let _ = tokio::time::timeout(SHUTDOWN_WAIT, async {
            loop {
                let idle = self.in_flight.idle.notified();
                tokio::pin!(idle);
                idle.as_mut().enable();
                if self.in_flight.count.load(Ordering::SeqCst) == 0 {
                    return;
                }
                idle.await;
            }
        })
        .await;
    }
}

impl Drop for RequestHost {
    fn drop(&mut self) {
        self.is_shut.store(true, Ordering::SeqCst);
        self.shared.cancel.cancel();
        self.shared.pool.close();
    }
}
