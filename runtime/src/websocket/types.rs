//! What the plugin side of a [`super::WebSocketHost`] sees: handles, open
//! options, incoming messages, connection status.

use std::fmt;
use std::net::SocketAddr;

/// An opaque connection handle. Never reused; valid only on the host that
/// issued it.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct ConnectionId {
    pub(super) host: u64,
    pub(super) seq: u64,
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

/// Options for [`WebSocketHost::open`](crate::WebSocketHost::open).
#[derive(Clone, Debug, Default)]
pub struct OpenOptions {
    /// Subprotocols to offer; each must be declared by the target.
    pub subprotocols: Vec<String>,
    /// Extra handshake headers; the header allow-list of docs/spec.md §5.6 applies (no credentials).
    pub headers: Vec<(String, String)>,
    /// Credentials to inject, by declared name (docs/spec.md §9.3). Each
    /// must be bound by the rule that allows the URL (else the open is
    /// denied `credential_not_granted` before anything is connected).
    /// Header credentials go in the handshake; `message = true` ones
    /// replace `{{credential:NAME}}` in text messages this connection
    /// sends. Every occurrence of a value in what the connection hands back
    /// (messages, close reason) becomes its placeholder.
    pub credentials: Vec<String>,
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
