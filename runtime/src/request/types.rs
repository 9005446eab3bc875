//! Plugin-facing types of the request capability.

use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

/// Per-call options of [`crate::RequestHost::request`]. Each can only
/// tighten the host's [`crate::RequestConfig`]: a larger value is capped.
#[derive(Clone, Debug, Default)]
pub struct RequestOptions {
    /// A total deadline for this call (default: `total_timeout`).
    pub timeout: Option<Duration>,
    /// A response body bound for this call (default: `max_response_body_bytes`).
    pub max_response_body_bytes: Option<usize>,
    /// Credentials to inject, by declared name (docs/spec.md §9.3). Each
    /// must be bound by the rule that allows the URL, else the call is
    /// denied `credential_not_granted` before anything is connected. The
    /// host looks the values up in its [`SecretStore`](crate::SecretStore)
    /// and puts them in their headers; every occurrence of a value in the
    /// response is replaced by its placeholder `{{credential:NAME}}`.
    pub credentials: Vec<String>,
}

/// A complete response: status, filtered headers and the whole body.
///
/// Its `Debug` shows the status, the header names and the body length —
/// never header values or the body, so logging it leaks nothing.
#[derive(Clone, PartialEq, Eq)]
pub struct Response {
    /// The status code, as received (a 3xx is returned as it is, never followed).
    pub status: u16,
    /// Response headers in the order received, names lowercase, values as
    /// raw bytes (not necessarily UTF-8). `Set-Cookie`, `Set-Cookie2`,
    /// hop-by-hop headers and every header named in `Connection` are dropped.
    pub headers: Vec<(String, Vec<u8>)>,
    /// The complete body (never a truncated one), not decompressed.
    pub body: Vec<u8>,
    /// `HTTP/1.1` or `HTTP/2` (HTTP/1.0 servers show as `HTTP/1.0`).
    pub version: &'static str,
    /// The checked address the connection went to.
    pub remote: SocketAddr,
}

impl Response {
    /// The first value of header `name` (any case), as bytes.
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_slice())
    }

    /// The canonical reason phrase of the status (`OK`, `Not Found`), if any.
    pub fn reason(&self) -> Option<&'static str> {
        hyper::StatusCode::from_u16(self.status)
            .ok()
            .and_then(|s| s.canonical_reason())
    }
}

impl fmt::Debug for Response {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self.headers.iter().map(|(k, _)| k.as_str()).collect();
        f.debug_struct("Response")
            .field("status", &self.status)
            .field("headers", &names)
            .field("body_bytes", &self.body.len())
            .field("version", &self.version)
            .field("remote", &self.remote)
            .finish()
    }
}
