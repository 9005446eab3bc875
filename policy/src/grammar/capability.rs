//! The two network capabilities and their schemes.

use serde::{Deserialize, Serialize};
use std::fmt;

/// A network capability a plugin can request.
///
/// `request` and `websocket` are separate: a WebSocket never rides on
/// `request`, and `request` never opens a WebSocket.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum Capability {
    /// One-shot HTTP request/response (`host_api.request`).
    Request,
    /// A WebSocket connection (`host_api.websocket`).
    Websocket,
}

impl Capability {
    /// Both capabilities, in canonical order.
    pub const ALL: [Capability; 2] = [Capability::Request, Capability::Websocket];

    /// `request` or `websocket`.
    pub fn as_str(self) -> &'static str {
        match self {
            Capability::Request => "request",
            Capability::Websocket => "websocket",
        }
    }

    /// The TOML table path, `host_api.request` or `host_api.websocket`.
    pub fn table(self) -> &'static str {
        match self {
            Capability::Request => "host_api.request",
            Capability::Websocket => "host_api.websocket",
        }
    }

    /// The other capability.
    pub fn other(self) -> Capability {
        match self {
            Capability::Request => Capability::Websocket,
            Capability::Websocket => Capability::Request,
        }
    }

    /// Parses `request` / `websocket`.
    pub fn parse(s: &str) -> Option<Capability> {
        match s {
            "request" => Some(Capability::Request),
            "websocket" => Some(Capability::Websocket),
            _ => None,
        }
    }
}

impl fmt::Display for Capability {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A URL scheme netgrant knows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum Scheme {
    /// `http` (request).
    Http,
    /// `https` (request).
    Https,
    /// `ws` (websocket).
    Ws,
    /// `wss` (websocket).
    Wss,
}

impl Scheme {
    /// Parses a scheme, ASCII case-insensitively.
    pub fn parse(s: &str) -> Option<Scheme> {
        // Case-insensitive without a lowercase copy (every target parse
        // comes through here).
        [Scheme::Http, Scheme::Https, Scheme::Ws, Scheme::Wss]
            .into_iter()
            .find(|k| s.eq_ignore_ascii_case(k.as_str()))
    }

    /// The scheme of a parsed URL, which WHATWG has already lowercased.
    /// Matched byte by byte: a `str` match compiled to a `bcmp` call per
    /// arm, on every authorization (docs/decisions.md, 201).
    #[inline]
    pub(crate) fn from_lowercase(s: &str) -> Option<Scheme> {
        match s.as_bytes() {
            [b'h', b't', b't', b'p'] => Some(Scheme::Http),
            [b'h', b't', b't', b'p', b's'] => Some(Scheme::Https),
            [b'w', b's'] => Some(Scheme::Ws),
            [b'w', b's', b's'] => Some(Scheme::Wss),
            _ => None,
        }
    }

    /// The lowercase spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Scheme::Http => "http",
            Scheme::Https => "https",
            Scheme::Ws => "ws",
            Scheme::Wss => "wss",
        }
    }

    /// The capability this scheme belongs to.
    pub fn capability(self) -> Capability {
        match self {
            Scheme::Http | Scheme::Https => Capability::Request,
            Scheme::Ws | Scheme::Wss => Capability::Websocket,
        }
    }

    /// The default port: 80 for `http`/`ws`, 443 for `https`/`wss`.
    pub fn default_port(self) -> u16 {
        match self {
            Scheme::Http | Scheme::Ws => 80,
            Scheme::Https | Scheme::Wss => 443,
        }
    }

    /// Whether the scheme is encrypted (TLS).
    pub fn is_tls(self) -> bool {
        matches!(self, Scheme::Https | Scheme::Wss)
    }
}

impl fmt::Display for Scheme {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
