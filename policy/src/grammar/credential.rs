//! Credentials (docs/spec.md §9): what a manifest target declares, the
//! SecretRef a grant binds to it, and where a credential may go at all.
//!
//! Only names and references live here, never a value: the host's secret
//! store resolves a [`SecretRef`] at injection time (the runtime's job).

use crate::address::{self, AddressClass};
use crate::capability::Scheme;
use crate::permission::Permission;
use crate::target::{HostPattern, PortPattern};
use std::fmt;

/// Most credentials one target may declare.
pub const MAX_CREDENTIALS_PER_TARGET: usize = 16;
/// Longest `format`, in bytes.
pub const MAX_FORMAT_BYTES: usize = 256;
/// Longest SecretRef, in bytes.
pub const MAX_SECRET_REF_BYTES: usize = 128;
/// The placeholder a `format` holds exactly once.
pub const SECRET_PLACEHOLDER: &str = "{secret}";

/// Where the host puts a credential's value.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum CredentialPlacement {
    /// In this request (or websocket handshake) header; the name is lowercase.
    Header(String),
    /// In websocket text messages, where the plugin writes the placeholder
    /// `{{credential:<name>}}`.
    Message,
}

impl CredentialPlacement {
    /// The header name (lowercase) for a header placement.
    pub fn header(&self) -> Option<&str> {
        match self {
            CredentialPlacement::Header(h) => Some(h),
            CredentialPlacement::Message => None,
        }
    }

    /// `header` or `message`, the IR spelling.
    pub fn kind(&self) -> &'static str {
        match self {
            CredentialPlacement::Header(_) => "header",
            CredentialPlacement::Message => "message",
        }
    }
}

/// A credential a manifest target declares (docs/spec.md §9.1).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Credential {
    /// `[a-z0-9][a-z0-9-]{0,63}`, unique per target.
    pub name: String,
    /// Where the value goes.
    pub placement: CredentialPlacement,
    /// The value's shape, with exactly one `{secret}` (default `{secret}`).
    pub format: String,
    /// The plugin's reason, shown at review.
    pub reason: Option<String>,
}

/// A reference to a secret in the host's store — never a value
/// (`[a-z0-9][a-z0-9._/-]{0,127}`, no `://`, no whitespace).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SecretRef(String);

/// Why a string is not a [`SecretRef`].
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SecretRefError {
    /// Empty.
    #[error("a secret reference cannot be empty")]
    Empty,
    /// Longer than 128 bytes.
    #[error("a secret reference is at most {MAX_SECRET_REF_BYTES} characters, this one has {0}")]
    TooLong(usize),
    /// Does not start with a lowercase letter or digit.
    #[error("a secret reference starts with a lowercase letter or digit")]
    Start,
    /// Looks like a URL (`://`): a reference names a secret, it does not locate one.
    #[error("a secret reference is a name, not a URL (`://`)")]
    Url,
    /// Holds whitespace (a pasted value, most likely).
    #[error("a secret reference contains whitespace")]
    Whitespace,
    /// Holds a character outside `[a-z0-9._/-]`.
    #[error("a secret reference contains {0:?}; only a-z, 0-9, `.`, `_`, `/` and `-` are allowed")]
    Char(char),
}

impl SecretRef {
    /// Checks and wraps a reference.
    pub fn parse(s: &str) -> Result<SecretRef, SecretRefError> {
        let first = s.chars().next().ok_or(SecretRefError::Empty)?;
        if s.contains("://") {
            return Err(SecretRefError::Url);
        }
        if let Some(c) = s.chars().find(|c| c.is_whitespace()) {
            let _ = c;
            return Err(SecretRefError::Whitespace);
        }
        if let Some(c) = s.chars().find(|c| {
            !(c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '_' | '/' | '-'))
        }) {
            return Err(SecretRefError::Char(c));
        }
        if !(first.is_ascii_lowercase() || first.is_ascii_digit()) {
            return Err(SecretRefError::Start);
        }
        if s.len() > MAX_SECRET_REF_BYTES {
            return Err(SecretRefError::TooLong(s.len()));
        }
        Ok(SecretRef(s.to_string()))
    }

    /// The reference.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::str::FromStr for SecretRef {
    type Err = SecretRefError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        SecretRef::parse(s)
    }
}

impl fmt::Display for SecretRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Whether `s` is a credential name: `[a-z0-9][a-z0-9-]{0,63}` (the plugin
/// name's grammar).
pub fn is_valid_name(s: &str) -> bool {
    crate::document::is_valid_plugin_name(s)
}

/// Why a `format` is not usable.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FormatError {
    /// Not exactly one `{secret}`.
    #[error("format must hold `{{secret}}` exactly once, it holds it {0} times")]
    Placeholders(usize),
    /// Longer than 256 bytes.
    #[error("format is {0} bytes; at most {MAX_FORMAT_BYTES} are allowed")]
    TooLong(usize),
    /// A character a header value cannot hold (header placement), or a
    /// control character (message placement).
    #[error("format contains U+{code:04X}, which {why}", code = u32::from(*.0), why = .1)]
    Char(char, &'static str),
}

/// Checks a `format` for a placement: exactly one `{secret}`; in a header,
/// only what a header value may hold (visible ASCII, SP, HTAB — the rule
/// plugin header values follow, docs/spec.md §5.6); in a message, no
/// control characters.
pub fn check_format(format: &str, placement: &CredentialPlacement) -> Result<(), FormatError> {
    if format.len() > MAX_FORMAT_BYTES {
        return Err(FormatError::TooLong(format.len()));
    }
    let n = format.matches(SECRET_PLACEHOLDER).count();
    if n != 1 {
        return Err(FormatError::Placeholders(n));
    }
    let bad = match placement {
        CredentialPlacement::Header(_) => format
            .chars()
            .find(|&c| !(c == '\t' || c == ' ' || c.is_ascii_graphic()))
            .map(|c| {
                (
                    c,
                    "a header value cannot hold (visible ASCII, space and tab only)",
                )
            }),
        CredentialPlacement::Message => format
            .chars()
            .find(|&c| c.is_control() || crate::redact::is_bidi_control(c))
            .map(|c| (c, "is a control character")),
    };
    match bad {
        Some((c, why)) => Err(FormatError::Char(c, why)),
        None => Ok(()),
    }
}

/// Why a target cannot carry a credential (docs/spec.md §9.1): each has its
/// own diagnostic code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TargetProblem {
    /// The target is `broad`: the secret could go to hosts nobody reviewed.
    Broad,
    /// Plaintext `http`/`ws` to a host that is not loopback-only.
    Plaintext,
    /// Port `*`: any service on the host could receive the secret.
    AnyPort,
}

/// Every reason `p` cannot carry a credential, in a fixed order.
pub fn target_problems(p: &Permission) -> Vec<TargetProblem> {
    let mut out = Vec::new();
    if p.flags().broad {
        out.push(TargetProblem::Broad);
    }
    if matches!(p.target.scheme, Scheme::Http | Scheme::Ws) && !loopback_only(&p.target.host) {
        out.push(TargetProblem::Plaintext);
    }
    if p.target.port == PortPattern::Any {
        out.push(TargetProblem::AnyPort);
    }
    out
}

/// A host that can only be loopback: a loopback IP literal or a localhost
/// name. `networks` do not count: `http://example.com/` with a loopback
/// network may still resolve to a public address and send the secret in
/// the clear.
fn loopback_only(h: &HostPattern) -> bool {
    match h {
        HostPattern::Ip(ip) => address::classify(*ip).class == AddressClass::Loopback,
        h => h.is_localhost_name(),
    }
}

/// A credential bound for use: declared by the rule that allowed a request,
/// bound by its grant, and asked for by the plugin. What the host resolves
/// (`secret_ref`) and where it puts the value (`placement`, `format`).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct BoundCredential {
    /// The declared name.
    pub name: String,
    /// Where the value goes.
    pub placement: CredentialPlacement,
    /// The value's shape: replace `{secret}` with the value.
    pub format: String,
    /// Which secret of the host's store.
    pub secret_ref: SecretRef,
}

/// A declared credential of a policy entry, with its binding when granted.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct EntryCredential {
    /// The declaration, from the manifest.
    pub credential: Credential,
    /// The bound SecretRef; `None` when not granted.
    pub secret_ref: Option<SecretRef>,
}

impl EntryCredential {
    /// Whether the grant binds it.
    pub fn is_granted(&self) -> bool {
        self.secret_ref.is_some()
    }

    /// The bound form, when granted.
    pub fn bound(&self) -> Option<BoundCredential> {
        self.secret_ref.as_ref().map(|r| BoundCredential {
            name: self.credential.name.clone(),
            placement: self.credential.placement.clone(),
            format: self.credential.format.clone(),
            secret_ref: r.clone(),
        })
    }
}

/// How review output says what a credential does (docs/spec.md §9.2): the one
/// wording `show`, `list`, `diff`, `approve` and `explain` share. Built from
/// the IR ([`CredentialUse::from_ir`]) or the typed policy
/// ([`CredentialUse::from_entry`]); [`CredentialUse::render`] takes the
/// medium's code-span function, which must escape what it is given (the
/// format and target are plugin-written).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CredentialUse<'a> {
    /// The declared name.
    pub name: &'a str,
    /// The header (lowercase) for a header placement; `None` for messages.
    pub header: Option<&'a str>,
    /// The value's shape.
    pub format: &'a str,
    /// The bound SecretRef; `None` when not granted.
    pub secret_ref: Option<&'a str>,
    /// The canonical target the credential goes to.
    pub target: &'a str,
}

impl<'a> CredentialUse<'a> {
    /// From an IR credential of an entry with canonical target `target`.
    pub fn from_ir(c: &'a crate::ir::Credential, target: &'a str) -> Self {
        CredentialUse {
            name: &c.name,
            header: c.header.as_deref(),
            format: &c.format,
            secret_ref: c.secret_ref.as_deref(),
            target,
        }
    }

    /// From a typed entry credential with canonical target `target`.
    pub fn from_entry(c: &'a EntryCredential, target: &'a str) -> Self {
        CredentialUse {
            name: &c.credential.name,
            header: c.credential.placement.header(),
            format: &c.credential.format,
            secret_ref: c.secret_ref.as_ref().map(SecretRef::as_str),
            target,
        }
    }

    /// The placeholder the plugin writes in a message for this credential.
    pub fn placeholder(&self) -> String {
        format!("{{{{credential:{}}}}}", self.name)
    }

    /// Where the value goes: `as `authorization: Bot {secret}``, or
    /// `in text messages at `{{credential:NAME}}``.
    fn placement(&self, code: &dyn Fn(&str) -> String) -> String {
        match self.header {
            Some(h) if self.format == SECRET_PLACEHOLDER => format!("as {}", code(h)),
            Some(h) => format!("as {}", code(&format!("{h}: {}", self.format))),
            None if self.format == SECRET_PLACEHOLDER => {
                format!("in text messages at {}", code(&self.placeholder()))
            }
            None => format!(
                "in text messages at {}, formatted {}",
                code(&self.placeholder()),
                code(self.format)
            ),
        }
    }

    /// One sentence: "sends secret `discord/bot` as `authorization: Bot
    /// {secret}` to `https://discord.com/api/v10/` (credential `bot-token`)",
    /// or for an unbound one "credential `bot-token` (as …) is declared for
    /// `…` but not bound: not sent". `code` formats (and escapes) one code
    /// span; the rest is fixed wording.
    pub fn render(&self, code: &dyn Fn(&str) -> String) -> String {
        let place = self.placement(code);
        match self.secret_ref {
            Some(r) => format!(
                "sends secret {} {place} to {} (credential {})",
                code(r),
                code(self.target),
                code(self.name)
            ),
            None => format!(
                "credential {} ({place}) is declared for {} but not bound: not sent",
                code(self.name),
                code(self.target)
            ),
        }
    }

    /// What the declaration alone says, binding or not: "credential
    /// `bot-token` goes as `authorization: Bot {secret}` to `…`" (for a
    /// side whose bindings are not known, as a manifest in `diff`); with a
    /// binding, [`CredentialUse::render`].
    pub fn render_declared(&self, code: &dyn Fn(&str) -> String) -> String {
        if self.secret_ref.is_some() {
            return self.render(code);
        }
        format!(
            "credential {} goes {} to {}",
            code(self.name),
            self.placement(code),
            code(self.target)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::target::Target;

    #[test]
    fn secret_refs() {
        for ok in ["discord/bot", "a", "0.x_y-z/w", &"a".repeat(128)] {
            assert_eq!(SecretRef::parse(ok).unwrap().as_str(), ok);
        }
        let cases: &[(&str, SecretRefError)] = &[
            ("", SecretRefError::Empty),
            (&"a".repeat(129), SecretRefError::TooLong(129)),
            ("/abs", SecretRefError::Start),
            ("-x", SecretRefError::Start),
            ("vault://kv/bot", SecretRefError::Url),
            ("a b", SecretRefError::Whitespace),
            ("a\tb", SecretRefError::Whitespace),
            ("Discord/bot", SecretRefError::Char('D')),
            ("a:b", SecretRefError::Char(':')),
            ("é", SecretRefError::Char('é')),
        ];
        for (s, want) in cases {
            assert_eq!(SecretRef::parse(s).as_ref(), Err(want), "{s:?}");
        }
    }

    #[test]
    fn formats() {
        let h = CredentialPlacement::Header("authorization".into());
        let m = CredentialPlacement::Message;
        assert_eq!(check_format("{secret}", &h), Ok(()));
        assert_eq!(check_format("Bot {secret}", &h), Ok(()));
        assert_eq!(check_format("Bot\t{secret}", &h), Ok(()));
        assert_eq!(check_format("Bot", &h), Err(FormatError::Placeholders(0)));
        assert_eq!(
            check_format("{secret}{secret}", &m),
            Err(FormatError::Placeholders(2))
        );
        assert!(matches!(
            check_format("a\r\n{secret}", &h),
            Err(FormatError::Char('\r', _))
        ));
        assert!(matches!(
            check_format("é {secret}", &h),
            Err(FormatError::Char('é', _))
        ));
        // a message may hold non-ASCII text, never controls
        assert_eq!(check_format("é {secret}", &m), Ok(()));
        assert!(check_format("\u{202e}{secret}", &m).is_err());
        let long = format!("{}{{secret}}", "a".repeat(MAX_FORMAT_BYTES));
        assert!(matches!(
            check_format(&long, &h),
            Err(FormatError::TooLong(_))
        ));
    }

    #[test]
    fn where_a_credential_may_go() {
        use TargetProblem::*;
        let cases: &[(&str, &[TargetProblem])] = &[
            ("https://discord.com/api/v10/", &[]),
            ("wss://gateway.discord.gg/", &[]),
            ("https://*.example.com/", &[]),
            ("http://localhost:8080/", &[]),
            ("ws://127.0.0.1:9000/", &[]),
            ("http://[::1]:9000/", &[]),
            ("http://a.localhost/", &[]),
            ("http://example.com/", &[Plaintext]),
            ("ws://10.0.0.1/", &[Plaintext]),
            ("https://*/", &[Broad]),
            ("https://*.com/", &[Broad]),
            ("https://example.com:*/", &[AnyPort]),
            ("http://*:*/", &[Broad, Plaintext, AnyPort]),
        ];
        for (url, want) in cases {
            let t = Target::parse(url).unwrap();
            let p = Permission {
                capability: t.capability(),
                target: t,
                methods: None,
                headers: Default::default(),
                subprotocols: Default::default(),
                networks: Default::default(),
            };
            assert_eq!(target_problems(&p), *want, "{url}");
        }
        // a loopback network does not make a public name loopback-only
        let t = Target::parse("http://example.com/").unwrap();
        let p = Permission {
            capability: t.capability(),
            target: t,
            methods: None,
            headers: Default::default(),
            subprotocols: Default::default(),
            networks: ["127.0.0.1/32".parse().unwrap()].into_iter().collect(),
        };
        assert_eq!(target_problems(&p), vec![Plaintext]);
    }
}
