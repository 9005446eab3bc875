//! Runtime limits and their defaults: the one home of these numbers.

use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Semaphore;
use tokio::time::Instant;

/// `at + d`, saturating at ~30 years (as tokio's own `sleep` does): a
/// configured bound may be `Duration::MAX`, "no practical limit", and must
/// not overflow an `Instant`.
pub(crate) fn after(at: Instant, d: Duration) -> Instant {
    const FAR: Duration = Duration::from_secs(86_400 * 365 * 30);
    // Capped rather than checked: a sum just under `Instant`'s limit would
    // overflow in tokio's rounding to the next millisecond.
    at + d.min(FAR)
}

/// Which TLS roots `wss` connections and `https` requests trust.
#[derive(Clone, Debug, Default)]
pub enum Roots {
    /// The bundled Mozilla roots (`webpki-roots`). Ambient configuration such
    /// as `SSL_CERT_FILE` is never read.
    #[default]
    Bundled,
    /// Exactly these roots (e.g. a local CA in tests, a corporate CA).
    Custom(Arc<rustls::RootCertStore>),
}

/// A process-wide connection cap shared by several hosts (WebSocket
/// connections and requests in flight alike).
#[derive(Clone, Debug)]
pub struct GlobalLimit {
    pub(crate) permits: Arc<Semaphore>,
    pub(crate) max: usize,
}

impl GlobalLimit {
    /// A cap of `max` open connections across every host that shares it.
    pub fn new(max: usize) -> Self {
        GlobalLimit {
            permits: Arc::new(Semaphore::new(max)),
            max,
        }
    }

    /// Connections currently open under this cap.
    pub fn in_use(&self) -> usize {
        self.max - self.permits.available_permits()
    }
}

/// Limits of one [`crate::WebSocketHost`]. Every field has a documented default.
#[derive(Clone, Debug)]
pub struct HostConfig {
    /// Largest message, in either direction (default 1 MiB). Outgoing: the call
    /// fails with `message_too_large`, the connection stays open. Incoming: the
    /// connection is closed with 1009 and `message_too_large`.
    pub max_message_bytes: usize,
    /// Largest incoming frame (default 256 KiB).
    pub max_frame_bytes: usize,
    /// Per-connection inbox, counted in bytes of payload (default 2 MiB). When
    /// it is full the host stops reading the socket (TCP backpressure).
    pub inbox_bytes: usize,
    /// Largest write buffer per connection (default 4 MiB).
    pub max_write_buffer_bytes: usize,
    /// Open connections per host, i.e. per plugin instance (default 16).
    pub max_connections: usize,
    /// Optional cap across hosts.
    pub global_limit: Option<GlobalLimit>,
    /// DNS resolution deadline (default 5 s).
    pub dns_timeout: Duration,
    /// TCP connect deadline per address (default 10 s).
    pub connect_timeout: Duration,
    /// TLS plus WebSocket handshake deadline (default 10 s).
    pub handshake_timeout: Duration,
    /// `recv` timeout when the caller gives none (default 30 s).
    pub recv_timeout: Duration,
    /// Close a connection with no traffic either way for this long (default 5 min).
    pub idle_timeout: Duration,
    /// Once a message has started arriving, it must complete within this
    /// (default 30 s): defeats slow-drip peers.
    pub message_read_deadline: Duration,
    /// A send must be written within this (default 30 s), or the connection is
    /// closed with `timeout` (a peer that never reads).
    pub write_timeout: Duration,
    /// Optional maximum lifetime of a connection.
    pub max_lifetime: Option<Duration>,
    /// How long `shutdown` waits for close handshakes before aborting, and
    /// the bound of each step of `close` to a peer that does not read: the
    /// rest of the writes, then the close frame (default 250 ms).
    pub shutdown_grace: Duration,
    /// TLS roots.
    pub roots: Roots,
}

impl Default for HostConfig {
    fn default() -> Self {
        HostConfig {
            max_message_bytes: 1024 * 1024,
            max_frame_bytes: 256 * 1024,
            inbox_bytes: 2 * 1024 * 1024,
            max_write_buffer_bytes: 4 * 1024 * 1024,
            max_connections: 16,
            global_limit: None,
            dns_timeout: Duration::from_secs(5),
            connect_timeout: Duration::from_secs(10),
            handshake_timeout: Duration::from_secs(10),
            recv_timeout: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(300),
            message_read_deadline: Duration::from_secs(30),
            write_timeout: Duration::from_secs(30),
            max_lifetime: None,
            shutdown_grace: Duration::from_millis(250),
            roots: Roots::Bundled,
        }
    }
}

/// Bounds and deadlines of one [`crate::RequestHost`]. Every field has a
/// documented default; none can be switched off.
///
/// A separate struct from [`HostConfig`]: a one-shot request has different
/// bounds (two bodies, response headers, a first-byte deadline) and shares
/// only the DNS/connect deadlines and the roots, whose defaults are the same
/// numbers (docs/decisions.md, 112).
#[derive(Clone, Debug)]
pub struct RequestConfig {
    /// Largest request body (default 1 MiB). Over it the call fails with
    /// `message_too_large` before anything is resolved or connected.
    pub max_request_body_bytes: usize,
    /// Largest response body (default 10 MiB). Over it (declared by
    /// `Content-Length` or counted while reading) the call fails with
    /// `message_too_large`; a partial body is never returned.
    pub max_response_body_bytes: usize,
    /// Most response header fields (default 100, at most 10,000: hyper
    /// sets aside room for this many in every response). Over it:
    /// `message_too_large`.
    pub max_response_headers: usize,
    /// Largest response head in bytes: status line plus header names and
    /// values (default 64 KiB). Over it: `message_too_large`.
    pub max_response_header_bytes: usize,
    /// Requests in flight per host, i.e. per plugin instance (default 16).
    /// One more fails at once with `connection_limit`.
    pub max_in_flight: usize,
    /// Optional cap across hosts; each request in flight holds one permit.
    /// The same [`GlobalLimit`] may be shared with WebSocket hosts, so it
    /// caps the sockets of both capabilities together.
    pub global_limit: Option<GlobalLimit>,
    /// DNS resolution deadline (default 5 s).
    pub dns_timeout: Duration,
    /// TCP connect deadline per checked address (default 10 s).
    pub connect_timeout: Duration,
    /// TLS handshake deadline (default 10 s).
    pub tls_timeout: Duration,
    /// From the start of sending the request to the response's status line
    /// and headers (default 30 s): a server that never answers.
    pub first_byte_timeout: Duration,
    /// The whole call, from `request` to the last byte of the response body
    /// (default 60 s): a slow-drip body. A call may ask for less, never more.
    pub total_timeout: Duration,
    /// Offer HTTP/2 by ALPN on `https` (default true); HTTP/1.1 otherwise.
    /// Plain `http` is always HTTP/1.1 (no h2c).
    pub http2: bool,
    /// Most connections this host keeps open for reuse (default 16, as many
    /// as `max_in_flight`; 0: none,
    /// every request opens its own connection). The oldest idle one is
    /// closed first. A call reuses one only after its own decision and DNS
    /// check, and only when it goes to an address that call just checked,
    /// with the same scheme and server name. An HTTP/2 connection is shared
    /// by concurrent calls; an HTTP/1.1 one serves one call at a time.
    /// Idle connections hold no in-flight slot or [`GlobalLimit`] permit:
    /// this bound is theirs.
    pub pool_max_idle: usize,
    /// How long an unused connection stays open (default 30 s; zero: no
    /// reuse).
    pub pool_idle_timeout: Duration,
    /// TLS roots.
    pub roots: Roots,
}

impl Default for RequestConfig {
    fn default() -> Self {
        RequestConfig {
            max_request_body_bytes: 1024 * 1024,
            max_response_body_bytes: 10 * 1024 * 1024,
            max_response_headers: 100,
            max_response_header_bytes: 64 * 1024,
            max_in_flight: 16,
            global_limit: None,
            dns_timeout: Duration::from_secs(5),
            connect_timeout: Duration::from_secs(10),
            tls_timeout: Duration::from_secs(10),
            first_byte_timeout: Duration::from_secs(30),
            total_timeout: Duration::from_secs(60),
            http2: true,
            pool_max_idle: 16,
            pool_idle_timeout: Duration::from_secs(30),
            roots: Roots::Bundled,
        }
    }
}
