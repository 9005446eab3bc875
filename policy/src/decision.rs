//! Authorization decisions and the stable deny codes.
//!
//! This module is the one home of the deny codes: the CLI, the runtime and the
//! docs all read them from [`DenyCode`].

use serde::{Deserialize, Serialize};
use std::fmt;
use std::net::SocketAddr;

/// Why a URL was denied. The snake_case spelling is a stable interface.
///
/// Variants are listed in the order the authorizer checks them (docs/spec.md §5.3), so the
/// first failing check decides the code.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DenyCode {
    /// The URL does not parse, is too long, or uses a scheme netgrant does not know.
    InvalidUrl,
    /// The URL belongs to the other capability (a `ws` URL through `request`, an
    /// `Upgrade` header on a one-shot request, an `http` URL through `websocket`).
    WrongCapability,
    /// The URL carries userinfo (`user:pass@`).
    CredentialsInUrl,
    /// A WebSocket URL carries a `#fragment`.
    FragmentNotAllowed,
    /// A header (or WebSocket subprotocol) is not allowed for the matched target.
    ForbiddenHeader,
    /// The path could be read by a server as lying outside the granted prefix
    /// (encoded separators or dot segments, `%00`, invalid UTF-8).
    AmbiguousPath,
    /// No requested target of this capability covers the URL.
    NotRequested,
    /// A requested target covers the URL, but no effective grant does.
    NotGranted,
    /// The target is granted, but not for this HTTP method.
    MethodNotAllowed,
    /// An address (IP literal or DNS answer) is never reachable: unspecified,
    /// multicast, broadcast or a cloud metadata endpoint.
    ForbiddenAddress,
    /// An address is non-public (loopback, private, link-local, …) and the
    /// matched target does not cover it.
    NonPublicAddress,
    /// The host name resolved to no address.
    ResolutionFailed,
}

impl DenyCode {
    /// Every deny code, in check order.
    pub const ALL: &'static [DenyCode] = &[
        DenyCode::InvalidUrl,
        DenyCode::WrongCapability,
        DenyCode::CredentialsInUrl,
        DenyCode::FragmentNotAllowed,
        DenyCode::ForbiddenHeader,
        DenyCode::AmbiguousPath,
        DenyCode::NotRequested,
        DenyCode::NotGranted,
        DenyCode::MethodNotAllowed,
        DenyCode::ForbiddenAddress,
        DenyCode::NonPublicAddress,
        DenyCode::ResolutionFailed,
    ];

    /// The stable snake_case spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            DenyCode::InvalidUrl => "invalid_url",
            DenyCode::WrongCapability => "wrong_capability",
            DenyCode::CredentialsInUrl => "credentials_in_url",
            DenyCode::FragmentNotAllowed => "fragment_not_allowed",
            DenyCode::ForbiddenHeader => "forbidden_header",
            DenyCode::AmbiguousPath => "ambiguous_path",
            DenyCode::NotRequested => "not_requested",
            DenyCode::NotGranted => "not_granted",
            DenyCode::MethodNotAllowed => "method_not_allowed",
            DenyCode::ForbiddenAddress => "forbidden_address",
            DenyCode::NonPublicAddress => "non_public_address",
            DenyCode::ResolutionFailed => "resolution_failed",
        }
    }

    /// A one-line description, used in docs and `--help` output.
    pub fn summary(self) -> &'static str {
        match self {
            DenyCode::InvalidUrl => "the URL does not parse, is longer than 2048 bytes, or its scheme is not http, https, ws or wss",
            DenyCode::WrongCapability => "the URL or its headers belong to the other capability (websocket vs request), or ask for streaming",
            DenyCode::CredentialsInUrl => "the URL carries userinfo (user:pass@)",
            DenyCode::FragmentNotAllowed => "a websocket URL carries a #fragment",
            DenyCode::ForbiddenHeader => "a header or subprotocol is never allowed, not declared by the target, malformed, or over the limits",
            DenyCode::AmbiguousPath => "a server could read the path as outside the granted prefix (encoded separators or dots, ;params, %00, invalid UTF-8)",
            DenyCode::NotRequested => "no requested target of this capability covers the URL",
            DenyCode::NotGranted => "a requested target covers the URL but the grant does not",
            DenyCode::MethodNotAllowed => "the target is granted but not for this method (CONNECT and TRACE never are)",
            DenyCode::ForbiddenAddress => "an address is unspecified, multicast, broadcast or a cloud metadata endpoint",
            DenyCode::NonPublicAddress => "an address is non-public and the matched target does not cover it",
            DenyCode::ResolutionFailed => "the host name resolved to no address",
        }
    }
}

impl fmt::Display for DenyCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `allow` or `deny`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// The request may proceed (to the returned addresses, if any).
    Allow,
    /// The request must not proceed.
    Deny,
}

/// The outcome of one authorization.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Decision {
    /// `allow` or `deny`.
    pub decision: Verdict,
    /// `allowed` on allow, else the deny code.
    pub code: String,
    /// A human sentence. Contains only redacted URLs.
    pub message: String,
    /// The URL, redacted (userinfo dropped, query values `…`).
    pub url: String,
    /// The id of the permission entry that matched (on allow, and on denials
    /// decided after matching).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
    /// On allow: the checked socket addresses the caller must connect to (never
    /// re-resolve). Empty when the decision was made on the URL alone.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub addresses: Vec<SocketAddr>,
    /// Whether addresses were checked (IP literal, localhost, or DNS answers
    /// given); `false` when a domain was authorized on the URL alone.
    pub addresses_checked: bool,
    #[serde(skip)]
    deny: Option<DenyCode>,
}

impl Decision {
    /// An allow decision.
    pub fn allow(
        url: String,
        rule: String,
        addresses: Vec<SocketAddr>,
        addresses_checked: bool,
        message: String,
    ) -> Self {
        Decision {
            decision: Verdict::Allow,
            code: "allowed".to_string(),
            message,
            url,
            rule: Some(rule),
            addresses,
            addresses_checked,
            deny: None,
        }
    }

    /// A deny decision.
    pub fn deny(code: DenyCode, url: String, rule: Option<String>, message: String) -> Self {
        Decision {
            decision: Verdict::Deny,
            code: code.as_str().to_string(),
            message,
            url,
            rule,
            addresses: Vec::new(),
            addresses_checked: false,
            deny: Some(code),
        }
    }

    /// `true` on allow.
    pub fn is_allowed(&self) -> bool {
        self.decision == Verdict::Allow
    }

    /// The deny code, if denied.
    pub fn deny_code(&self) -> Option<DenyCode> {
        self.deny
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn codes_are_unique_and_serde_matches_as_str() {
        let mut seen = HashSet::new();
        for c in DenyCode::ALL {
            assert!(seen.insert(c.as_str()), "duplicate {c}");
            let json = serde_json::to_string(c).unwrap();
            assert_eq!(json, format!("\"{}\"", c.as_str()));
        }
        assert_eq!(seen.len(), 12);
    }

    #[test]
    fn every_code_is_documented_in_order() {
        let doc = include_str!("../../docs/deny-codes.md");
        let mut last = 0;
        for c in DenyCode::ALL {
            let needle = format!("| `{}` |", c.as_str());
            let at = doc
                .find(&needle)
                .unwrap_or_else(|| panic!("docs/deny-codes.md does not document {c}"));
            assert!(at > last, "{c} is out of check order in docs/deny-codes.md");
            last = at;
        }
    }
}
