//! Runtime limits and their defaults: the one home of these numbers.

use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Semaphore;

/// Which TLS roots `wss` connections trust.
#[derive(Clone, Debug, Default)]
pub enum Roots {
    /// The bundled Mozilla roots (`webpki-roots`). Ambient configuration such
    /// as `SSL_CERT_FILE` is never read.
    #[default]
    Bundled,
    /// Exactly these roots (e.g. a local CA in tests, a corporate CA).
    Custom(Arc<rustls::RootCertStore>),
}

/// A process-wide connection cap shared by several hosts.
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
    /// How long `shutdown` waits for close handshakes before aborting (default 250 ms).
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
