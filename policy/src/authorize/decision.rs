//! Authorization decisions and the stable deny codes.
//!
//! This module is the one home of the deny codes: the CLI, the runtime and the
//! docs all read them from [`DenyCode`].

use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;

macro_rules! deny_codes {
    ($( $(#[doc = $doc:literal])* $variant:ident = $name:literal, $summary:literal; )*) => {
        /// Why a URL was denied. The snake_case spelling is a stable interface.
        ///
        /// Variants are listed in the order the authorizer checks them (docs/spec.md §5.3), so the
        /// first failing check decides the code.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(rename_all = "snake_case")]
        pub enum DenyCode {
            $( $(#[doc = $doc])* $variant, )*
        }

        impl DenyCode {
            /// Every deny code, in check order.
            pub const ALL: &'static [DenyCode] = &[ $( DenyCode::$variant, )* ];

            /// The stable snake_case spelling.
            pub fn as_str(self) -> &'static str {
                match self { $( DenyCode::$variant => $name, )* }
            }

            /// A one-line description, used in docs and `--help` output.
            pub fn summary(self) -> &'static str {
                match self { $( DenyCode::$variant => $summary, )* }
            }
        }
    };
}

// The one list of deny codes: variant, stable name and summary, in check order.
// `serde(rename_all = "snake_case")` must agree with the name (a unit test checks).
deny_codes! {
    /// The URL does not parse, is too long, or uses a scheme netgrant does not know.
    InvalidUrl = "invalid_url",
        "the URL does not parse, is longer than 2048 bytes, or its scheme is not http, https, ws or wss";
    /// The URL belongs to the other capability (a `ws` URL through `request`, an
    /// `Upgrade` header on a one-shot request, an `http` URL through `websocket`).
    WrongCapability = "wrong_capability",
        "the URL or its headers belong to the other capability (websocket vs request), or ask for streaming";
    /// The URL carries userinfo (`user:pass@`).
    CredentialsInUrl = "credentials_in_url",
        "the URL carries userinfo (user:pass@)";
    /// A WebSocket URL carries a `#fragment`.
    FragmentNotAllowed = "fragment_not_allowed",
        "a websocket URL carries a #fragment";
    /// A header (or WebSocket subprotocol) is not allowed for the matched target.
    ForbiddenHeader = "forbidden_header",
        "a header or subprotocol is never allowed, not declared by the target, malformed, or over the limits";
    /// The path could be read by a server as lying outside the granted prefix
    /// (encoded separators or dot segments, `%00`, invalid UTF-8).
    AmbiguousPath = "ambiguous_path",
        "a server could read the path as outside the granted prefix (encoded separators or dots, ;params, %00, invalid UTF-8)";
    /// No requested target of this capability covers the URL.
    NotRequested = "not_requested",
        "no requested target of this capability covers the URL";
    /// A requested target covers the URL, but no effective grant does.
    NotGranted = "not_granted",
        "a requested target covers the URL but the grant does not";
    /// The target is granted, but not for this HTTP method.
    MethodNotAllowed = "method_not_allowed",
        "the target is granted but not for this method (CONNECT and TRACE never are)";
    /// The plugin asked for a credential that the rule allowing the URL does
    /// not bind (not declared, or declared but not granted).
    CredentialNotGranted = "credential_not_granted",
        "the plugin asked for a credential the matching rule does not declare or the grant does not bind";
    /// An address (IP literal or DNS answer) is never reachable: unspecified,
    /// multicast, broadcast or a cloud metadata endpoint.
    ForbiddenAddress = "forbidden_address",
        "an address is unspecified, multicast, broadcast or a cloud metadata endpoint";
    /// An address is non-public (loopback, private, link-local, …) and the
    /// matched target does not cover it.
    NonPublicAddress = "non_public_address",
        "an address is non-public and the matched target does not cover it";
    /// The host name resolved to no address.
    ResolutionFailed = "resolution_failed",
        "the host name resolved to no address";
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

/// The code of a decision: `allowed`, or the deny code. Serialized as that
/// string; compares equal to it (`decision.code == "not_granted"`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DecisionCode {
    /// The request may proceed.
    Allowed,
    /// Denied, with the first failing check's code.
    Denied(DenyCode),
}

impl DecisionCode {
    /// The stable snake_case spelling: `allowed` or the deny code's.
    pub fn as_str(self) -> &'static str {
        match self {
            DecisionCode::Allowed => "allowed",
            DecisionCode::Denied(c) => c.as_str(),
        }
    }

    /// Parses `allowed` or a deny code's name.
    pub fn parse(s: &str) -> Option<DecisionCode> {
        if s == "allowed" {
            return Some(DecisionCode::Allowed);
        }
        DenyCode::ALL
            .iter()
            .find(|c| c.as_str() == s)
            .map(|c| DecisionCode::Denied(*c))
    }
}

impl fmt::Display for DecisionCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl PartialEq<str> for DecisionCode {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for DecisionCode {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl PartialEq<String> for DecisionCode {
    fn eq(&self, other: &String) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<DecisionCode> for String {
    fn eq(&self, other: &DecisionCode) -> bool {
        self == other.as_str()
    }
}

impl PartialEq<DecisionCode> for &str {
    fn eq(&self, other: &DecisionCode) -> bool {
        *self == other.as_str()
    }
}

impl Serialize for DecisionCode {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for DecisionCode {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        DecisionCode::parse(&s)
            .ok_or_else(|| serde::de::Error::custom(format!("unknown decision code {s:?}")))
    }
}

/// The id of a permission entry as the authorizer holds it (`capability:target`).
/// Shared: a decision names its rule by a reference count, not a copy.
pub type RuleId = Arc<str>;

/// A decision's message: written out, or the allow sentence, which is built
/// from the rule id only when asked for (most allows are never printed).
#[derive(Clone)]
enum Message {
    /// The sentence itself.
    Text(Cow<'static, str>),
    /// ``allowed by `RULE` ``.
    Allowed,
    /// ``allowed by `RULE` (addresses not checked: no DNS answers given)``.
    AllowedUnresolved,
    /// `` `TARGET` is requested but not granted``, the target read from the
    /// rule id (`CAPABILITY:TARGET`, a requested target's id).
    NotGranted,
}

/// A decision's URL: already redacted, or the parsed URL, redacted when
/// asked for ([`crate::redact::redact_parsed`]; usually a borrow).
#[derive(Clone)]
pub(crate) enum ShownUrl {
    /// Redacted text.
    Text(String),
    /// Redacted text shared with the [`crate::Authorized`] that carries
    /// this decision (written once per call, not copied).
    Shared(std::sync::Arc<str>),
    /// The URL the decision was made on.
    Parsed(url::Url),
}

impl ShownUrl {
    fn get(&self) -> Cow<'_, str> {
        match self {
            ShownUrl::Text(s) => Cow::Borrowed(s),
            ShownUrl::Shared(s) => Cow::Borrowed(s),
            ShownUrl::Parsed(u) => crate::redact::redact_parsed(u),
        }
    }
}

/// A denial before its URL is attached: what the checks return. It is a
/// third of a [`Decision`]'s size, so returning it up through the checks
/// moves little; [`Denial::at`] then builds the decision once, in place,
/// with the URL the caller owns (docs/decisions.md, 201).
pub(crate) struct Denial {
    code: DenyCode,
    rule: Option<RuleId>,
    message: Message,
}

impl Denial {
    /// A denial with its sentence.
    pub(crate) fn new(
        code: DenyCode,
        rule: Option<RuleId>,
        message: impl Into<Cow<'static, str>>,
    ) -> Self {
        Denial {
            code,
            rule,
            message: Message::Text(message.into()),
        }
    }

    /// The `not_granted` denial for the requested target `rule`, whose
    /// sentence is built only when read.
    pub(crate) fn not_granted(rule: RuleId) -> Self {
        debug_assert!(rule.starts_with("request:") || rule.starts_with("websocket:"));
        Denial {
            code: DenyCode::NotGranted,
            rule: Some(rule),
            message: Message::NotGranted,
        }
    }

    /// The decision: this denial of `url`.
    #[inline]
    pub(crate) fn at(self, url: ShownUrl) -> Decision {
        Decision {
            decision: Verdict::Deny,
            code: DecisionCode::Denied(self.code),
            message: self.message,
            url,
            rule: self.rule,
            addresses: Vec::new(),
            addresses_checked: false,
        }
    }
}

/// An allow before its URL is attached: [`Denial`]'s counterpart.
pub(crate) struct Allow {
    pub(crate) rule: RuleId,
    /// The checked socket addresses (empty when decided on the URL alone).
    pub(crate) addresses: Vec<SocketAddr>,
    pub(crate) addresses_checked: bool,
}

impl Allow {
    /// The decision: this allow of `url`, its message built when read.
    #[inline]
    pub(crate) fn at(self, url: ShownUrl) -> Decision {
        Decision {
            decision: Verdict::Allow,
            code: DecisionCode::Allowed,
            message: if self.addresses_checked {
                Message::Allowed
            } else {
                Message::AllowedUnresolved
            },
            url,
            rule: Some(self.rule),
            addresses: self.addresses,
            addresses_checked: self.addresses_checked,
        }
    }

    /// The decision an outcome of the checks makes on `url`, built once in
    /// the return place (docs/decisions.md, 201).
    #[inline]
    pub(crate) fn decide(outcome: Result<Allow, Denial>, url: ShownUrl) -> Decision {
        match outcome {
            Ok(a) => a.at(url),
            Err(d) => d.at(url),
        }
    }
}

/// The outcome of one authorization.
///
/// The redacted URL, the message and the rule id are read through
/// [`Decision::url`], [`Decision::message`] and [`Decision::rule`]: the
/// authorizer keeps the parsed URL and the shared rule id and writes the
/// strings only when they are read, so an allow allocates nothing beyond the
/// URL parse. Serialized (JSON) as the fields `decision`, `code`, `message`,
/// `url`, `rule` (when set), `addresses` (when any), `addresses_checked`.
#[derive(Clone)]
pub struct Decision {
    /// `allow` or `deny`.
    pub decision: Verdict,
    /// `allowed` on allow, else the deny code (serialized as its name).
    pub code: DecisionCode,
    message: Message,
    url: ShownUrl,
    rule: Option<RuleId>,
    /// On allow: the checked socket addresses the caller must connect to (never
    /// re-resolve). Empty when the decision was made on the URL alone.
    pub addresses: Vec<SocketAddr>,
    /// Whether addresses were checked (IP literal, localhost, or DNS answers
    /// given); `false` when a domain was authorized on the URL alone.
    pub addresses_checked: bool,
}

impl Decision {
    /// An allow decision.
    pub fn allow(
        url: String,
        rule: impl Into<RuleId>,
        addresses: Vec<SocketAddr>,
        addresses_checked: bool,
        message: String,
    ) -> Self {
        Decision {
            decision: Verdict::Allow,
            code: DecisionCode::Allowed,
            message: Message::Text(message.into()),
            url: ShownUrl::Text(url),
            rule: Some(rule.into()),
            addresses,
            addresses_checked,
        }
    }

    /// A deny decision.
    pub fn deny(code: DenyCode, url: String, rule: Option<RuleId>, message: String) -> Self {
        Denial::new(code, rule, message).at(ShownUrl::Text(url))
    }

    /// A human sentence. Contains only redacted URLs.
    pub fn message(&self) -> Cow<'_, str> {
        let (rule, tail) = match &self.message {
            Message::Text(s) => return Cow::Borrowed(s),
            Message::NotGranted => {
                let rule = self.rule().unwrap_or_default();
                let target = rule.split_once(':').map_or(rule, |(_, t)| t);
                return Cow::Owned(format!("`{target}` is requested but not granted"));
            }
            Message::Allowed => (self.rule().unwrap_or_default(), "`"),
            Message::AllowedUnresolved => (
                self.rule().unwrap_or_default(),
                "` (addresses not checked: no DNS answers given)",
            ),
        };
        let mut s = String::with_capacity("allowed by `".len() + rule.len() + tail.len());
        s.push_str("allowed by `");
        s.push_str(rule);
        s.push_str(tail);
        Cow::Owned(s)
    }

    /// The URL, redacted (userinfo dropped, query values `…`, fragment `#…`).
    pub fn url(&self) -> Cow<'_, str> {
        self.url.get()
    }

    /// The id of the permission entry that matched (on allow, and on denials
    /// decided after matching).
    pub fn rule(&self) -> Option<&str> {
        self.rule.as_deref()
    }

    /// `true` on allow.
    pub fn is_allowed(&self) -> bool {
        self.decision == Verdict::Allow
    }

    /// The deny code, if denied.
    pub fn deny_code(&self) -> Option<DenyCode> {
        match self.code {
            DecisionCode::Allowed => None,
            DecisionCode::Denied(c) => Some(c),
        }
    }
}

/// Compared by what the accessors return, not by how it is stored.
impl PartialEq for Decision {
    fn eq(&self, other: &Self) -> bool {
        self.decision == other.decision
            && self.code == other.code
            && self.rule() == other.rule()
            && self.addresses == other.addresses
            && self.addresses_checked == other.addresses_checked
            && self.message() == other.message()
            && self.url() == other.url()
    }
}

impl Eq for Decision {}

/// The fields as the accessors return them (as when they were public).
impl fmt::Debug for Decision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Decision")
            .field("decision", &self.decision)
            .field("code", &self.code)
            .field("message", &self.message())
            .field("url", &self.url())
            .field("rule", &self.rule())
            .field("addresses", &self.addresses)
            .field("addresses_checked", &self.addresses_checked)
            .finish()
    }
}

impl Serialize for Decision {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        // The same fields, in the same order, as when they were public.
        #[derive(Serialize)]
        struct View<'a> {
            decision: Verdict,
            code: DecisionCode,
            message: Cow<'a, str>,
            url: Cow<'a, str>,
            #[serde(skip_serializing_if = "Option::is_none")]
            rule: Option<&'a str>,
            #[serde(skip_serializing_if = "<[SocketAddr]>::is_empty")]
            addresses: &'a [SocketAddr],
            addresses_checked: bool,
        }
        View {
            decision: self.decision,
            code: self.code,
            message: self.message(),
            url: self.url(),
            rule: self.rule(),
            addresses: &self.addresses,
            addresses_checked: self.addresses_checked,
        }
        .serialize(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn codes_are_unique_snake_case_and_serde_matches_as_str() {
        let mut seen = HashSet::new();
        for c in DenyCode::ALL {
            let name = c.as_str();
            assert!(seen.insert(name), "duplicate {c}");
            assert!(
                !name.is_empty()
                    && name.bytes().all(|b| b.is_ascii_lowercase() || b == b'_')
                    && !name.starts_with('_')
                    && !name.ends_with('_')
                    && !name.contains("__"),
                "{name} is not snake_case"
            );
            let json = serde_json::to_string(c).unwrap();
            assert_eq!(json, format!("\"{name}\""));
            let back: DenyCode = serde_json::from_str(&json).unwrap();
            assert_eq!(back, *c);
            assert!(!c.summary().is_empty(), "{c} has no summary");
        }
        // ALL is in check order, which is also the derived `Ord`.
        assert!(DenyCode::ALL.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn every_code_is_documented_in_order() {
        // The table in docs/deny-codes.md: rows `| n | `code` | when | example |`.
        let doc = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../docs/deny-codes.md"
        ))
        .expect("docs/deny-codes.md is readable");
        let documented: Vec<(String, String)> = doc
            .lines()
            .filter_map(|line| {
                let cells: Vec<&str> = line.split('|').map(str::trim).collect();
                // ["", n, `code`, when, example, ""]
                let n = cells.get(1)?;
                let code = cells.get(2)?.strip_prefix('`')?.strip_suffix('`')?;
                n.parse::<usize>().ok()?;
                Some((n.to_string(), code.to_string()))
            })
            .collect();
        let expected: Vec<(String, String)> = DenyCode::ALL
            .iter()
            .enumerate()
            .map(|(i, c)| ((i + 1).to_string(), c.as_str().to_string()))
            .collect();
        assert_eq!(
            documented, expected,
            "docs/deny-codes.md must list every deny code, numbered, in DenyCode::ALL (check) order"
        );
    }
}
