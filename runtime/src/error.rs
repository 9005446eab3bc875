//! Runtime errors: a stable code plus a redacted, bounded message.

use netgrant_policy::{Decision, DenyCode};

/// What went wrong.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The policy denied the URL or an address (see the decision).
    Denied(DenyCode),
    /// The handle is not (or no longer) valid on this host.
    UnknownConnection,
    /// The per-host or process-wide connection limit (for requests: the
    /// per-host limit of requests in flight) is reached.
    ConnectionLimit,
    /// A deadline passed (DNS, connect, handshake, write, read, idle,
    /// lifetime; for requests: TLS, first byte, total).
    Timeout,
    /// A message exceeds the configured bound.
    MessageTooLarge,
    /// No checked address accepted a TCP connection.
    ConnectFailed,
    /// TLS failed (untrusted certificate, wrong name, …).
    Tls,
    /// The WebSocket handshake failed (status not 101, bad subprotocol, …).
    Handshake,
    /// An HTTP exchange failed: a malformed response, or the connection
    /// ended before the response was complete.
    Http,
    /// The connection is closed.
    Closed,
    /// The host is shut down.
    Shutdown,
    /// A local I/O error.
    Io,
    /// A credential could not be injected (docs/spec.md §9.3); the code
    /// says why: `secret_not_found` and `secret_store_failed` (the host's
    /// store), `credential_format` and `credential_not_header_safe` (the
    /// value cannot go in its header), `credential_not_granted` (a text
    /// message names a credential not bound to this connection) and
    /// `malformed_placeholder`. Nothing was sent.
    Credential(&'static str),
}

impl ErrorKind {
    /// The stable snake_case code.
    pub fn code(&self) -> &'static str {
        match self {
            ErrorKind::Denied(c) => c.as_str(),
            ErrorKind::UnknownConnection => "unknown_connection",
            ErrorKind::ConnectionLimit => "connection_limit",
            ErrorKind::Timeout => "timeout",
            ErrorKind::MessageTooLarge => "message_too_large",
            ErrorKind::ConnectFailed => "connect_failed",
            ErrorKind::Tls => "tls_failed",
            ErrorKind::Handshake => "handshake_failed",
            ErrorKind::Http => "http_failed",
            ErrorKind::Closed => "closed",
            ErrorKind::Shutdown => "shutdown",
            ErrorKind::Io => "io_error",
            ErrorKind::Credential(code) => code,
        }
    }
}

/// A runtime error. Its message never contains userinfo, query values or
/// payloads, and is bounded in length.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{}: {message}", self.code())]
pub struct HostError {
    /// What went wrong.
    pub kind: ErrorKind,
    /// A human sentence (redacted, at most 512 characters).
    pub message: String,
    /// The authorization decision, for denials.
    pub decision: Option<Decision>,
}

impl HostError {
    pub(crate) fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        HostError {
            kind,
            message: bound(&message.into()),
            decision: None,
        }
    }

    pub(crate) fn denied(d: Decision) -> Self {
        let code = d.deny_code().unwrap_or(DenyCode::NotRequested);
        HostError {
            kind: ErrorKind::Denied(code),
            message: bound(&format!("{} ({})", d.message(), d.url())),
            decision: Some(d),
        }
    }

    /// The stable code (`not_granted`, `timeout`, `unknown_connection`, …).
    pub fn code(&self) -> &'static str {
        self.kind.code()
    }
}

/// Escapes control characters and bounds the length of text that may come
/// from a peer or the network.
pub(crate) fn bound(s: &str) -> String {
    const MAX: usize = 512;
    let e = netgrant_policy::redact::escape_terminal(s);
    // Bytes bound chars: short text needs no count.
    if e.len() <= MAX || e.chars().count() <= MAX {
        e
    } else {
        let mut t: String = e.chars().take(MAX - 1).collect();
        t.push('…');
        t
    }
}
