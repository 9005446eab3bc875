//! The target grammar: `scheme://host[:port][/path-prefix]`.
//!
//! This module is the one home of the grammar: parsing, normalization, display
//! (the canonical spelling), containment and URL-host matching.

use crate::address::{self, AddressClass};
use crate::capability::{Capability, Scheme};
use crate::path;
use crate::words;
use serde::{Deserialize, Serialize};
use std::cmp::Ordering;
use std::fmt;
use std::net::IpAddr;

/// The longest target or URL netgrant accepts, in bytes.
pub const MAX_URL_BYTES: usize = 2048;

/// The host part of a target.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum HostPattern {
    /// `*`: every domain and every IP literal (the address class still decides).
    Any,
    /// An exact domain: lowercase A-label, no trailing dot.
    Domain(String),
    /// `*.suffix`: strict subdomains of `suffix` at any depth, never the apex.
    Wildcard(String),
    /// An IP literal, canonicalized (mapped and NAT64 IPv6 become IPv4).
    Ip(IpAddr),
}

/// The kind of a host pattern, as recorded in the IR.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum HostKind {
    /// `*`.
    Any,
    /// An exact domain.
    Domain,
    /// A subdomain wildcard.
    Wildcard,
    /// An IPv4 literal.
    Ipv4,
    /// An IPv6 literal.
    Ipv6,
}

impl HostPattern {
    /// The kind recorded in the IR.
    pub fn kind(&self) -> HostKind {
        match self {
            HostPattern::Any => HostKind::Any,
            HostPattern::Domain(_) => HostKind::Domain,
            HostPattern::Wildcard(_) => HostKind::Wildcard,
            HostPattern::Ip(IpAddr::V4(_)) => HostKind::Ipv4,
            HostPattern::Ip(IpAddr::V6(_)) => HostKind::Ipv6,
        }
    }

    /// Whether this pattern contains every host `inner` matches.
    pub fn contains(&self, inner: &HostPattern) -> bool {
        match (self, inner) {
            (HostPattern::Any, _) => true,
            (HostPattern::Wildcard(s), HostPattern::Domain(d)) => is_strict_subdomain(d, s),
            (HostPattern::Wildcard(s), HostPattern::Wildcard(t)) => {
                t == s || is_strict_subdomain(t, s)
            }
            (HostPattern::Domain(a), HostPattern::Domain(b)) => a == b,
            (HostPattern::Ip(a), HostPattern::Ip(b)) => a == b,
            _ => false,
        }
    }

    /// Whether this pattern matches a concrete URL host. Names and IP literals
    /// never cross-match; only `*` matches both.
    pub fn matches(&self, host: &UrlHost) -> bool {
        match (self, host) {
            (HostPattern::Any, _) => true,
            (HostPattern::Domain(d), UrlHost::Domain(h)) => d == h,
            (HostPattern::Wildcard(s), UrlHost::Domain(h)) => is_strict_subdomain(h, s),
            (HostPattern::Ip(a), UrlHost::Ip(b)) => a == b,
            _ => false,
        }
    }

    /// Whether the host is `localhost` / `*.localhost` (RFC 6761: loopback by
    /// definition), as a name or a wildcard.
    pub fn is_localhost_name(&self) -> bool {
        match self {
            HostPattern::Domain(d) | HostPattern::Wildcard(d) => is_localhost_name(d),
            _ => false,
        }
    }
}

impl fmt::Display for HostPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HostPattern::Any => f.write_str("*"),
            HostPattern::Domain(d) => f.write_str(d),
            HostPattern::Wildcard(s) => write!(f, "*.{s}"),
            HostPattern::Ip(IpAddr::V4(a)) => write!(f, "{a}"),
            HostPattern::Ip(IpAddr::V6(a)) => write!(f, "[{a}]"),
        }
    }
}

/// `localhost` or a name under it.
pub fn is_localhost_name(name: &str) -> bool {
    // The last nine bytes as one fixed-size array: compared inline, where
    // `==` and `ends_with` on `str` were a `bcmp` call per allow.
    let b = name.as_bytes();
    let Some(start) = b.len().checked_sub(9) else {
        return false;
    };
    <[u8; 9]>::try_from(&b[start..]).is_ok_and(|tail| tail == *b"localhost")
        && (start == 0 || b[start - 1] == b'.')
}

fn is_strict_subdomain(name: &str, suffix: &str) -> bool {
    name.len() > suffix.len() + 1
        && name.ends_with(suffix)
        && name.as_bytes()[name.len() - suffix.len() - 1] == b'.'
}

/// The port part of a target.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PortPattern {
    /// `:*`.
    Any,
    /// One port (the scheme default when omitted).
    Exact(u16),
}

impl PortPattern {
    /// Whether this port pattern admits `port`.
    pub fn matches(self, port: u16) -> bool {
        match self {
            PortPattern::Any => true,
            PortPattern::Exact(p) => p == port,
        }
    }

    /// Whether this pattern contains `inner`.
    pub fn contains(self, inner: PortPattern) -> bool {
        match (self, inner) {
            (PortPattern::Any, _) => true,
            (PortPattern::Exact(a), PortPattern::Exact(b)) => a == b,
            (PortPattern::Exact(_), PortPattern::Any) => false,
        }
    }
}

/// A concrete host from a URL being authorized.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum UrlHost {
    /// A domain: lowercase A-label, one trailing dot removed.
    Domain(String),
    /// An IP literal, canonicalized.
    Ip(IpAddr),
}

impl UrlHost {
    /// Normalizes the host of a parsed URL. `None` for a URL without host or a
    /// domain that is still not canonical after removing one trailing dot.
    pub fn from_url(url: &url::Url) -> Option<UrlHost> {
        UrlHostRef::from_url(url).map(|h| h.to_owned())
    }
}

/// [`UrlHost`], borrowing the domain from the parsed URL: the WHATWG parser
/// already lowercases the hosts of special schemes, so the authorizer's
/// hot path copies nothing to match a host.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum UrlHostRef<'a> {
    /// A domain: lowercase A-label, one trailing dot removed.
    Domain(std::borrow::Cow<'a, str>),
    /// An IP literal, canonicalized.
    Ip(IpAddr),
}

impl<'a> UrlHostRef<'a> {
    /// What [`UrlHost::from_url`] returns, borrowed where it can be.
    pub(crate) fn from_url(url: &'a url::Url) -> Option<UrlHostRef<'a>> {
        let special = matches!(
            url.scheme(),
            "http" | "https" | "ws" | "wss" | "ftp" | "file"
        );
        Self::from_url_with_dots(url, special).map(|(host, _)| host)
    }

    /// [`UrlHostRef::from_url`], and for a domain of up to 64 bytes the
    /// bitmask of its dots ([`dot_blocks`]' one block), which the index
    /// lookup reuses instead of scanning the name again. `special`: the URL
    /// has a special scheme (WHATWG), which the authorizer knows already.
    /// Inline: returned through memory, the host was read back by wider
    /// loads than wrote it, a stall on every authorization (docs/decisions.md, 201).
    #[inline]
    pub(crate) fn from_url_with_dots(
        url: &'a url::Url,
        special: bool,
    ) -> Option<(UrlHostRef<'a>, Option<u64>)> {
        match url.host()? {
            url::Host::Domain(d) => {
                let d = d.strip_suffix('.').unwrap_or(d);
                // No empty label: leading or trailing dot, `..`, empty name.
                // It runs on every authorization, so the dots are found
                // eight bytes at a time.
                // A dot right after a dot, or at either end (`before`
                // carries "the byte before was a dot, or is the start").
                let mut before = 1;
                let mut empty_label = d.is_empty();
                let mut first = 0;
                for (i, (bits, len)) in dot_blocks(d.as_bytes()).enumerate() {
                    empty_label |= bits & (bits << 1 | before) != 0;
                    before = bits >> (len - 1) & 1;
                    if i == 0 {
                        first = bits;
                    }
                }
                if empty_label || before == 1 {
                    return None;
                }
                let dots = (d.len() <= 64).then_some(first);
                // WHATWG lowercases the hosts of special schemes (domain to
                // ASCII), so only other schemes can need a copy.
                let name = if !special && d.bytes().any(|b| b.is_ascii_uppercase()) {
                    std::borrow::Cow::Owned(d.to_ascii_lowercase())
                } else {
                    debug_assert!(!d.bytes().any(|b| b.is_ascii_uppercase()));
                    std::borrow::Cow::Borrowed(d)
                };
                Some((UrlHostRef::Domain(name), dots))
            }
            url::Host::Ipv4(a) => {
                Some((UrlHostRef::Ip(address::canonicalize(IpAddr::V4(a))), None))
            }
            url::Host::Ipv6(a) => {
                Some((UrlHostRef::Ip(address::canonicalize(IpAddr::V6(a))), None))
            }
        }
    }

    /// The owned [`UrlHost`].
    pub(crate) fn to_owned(&self) -> UrlHost {
        match self {
            UrlHostRef::Domain(d) => UrlHost::Domain(d.clone().into_owned()),
            UrlHostRef::Ip(ip) => UrlHost::Ip(*ip),
        }
    }
}

/// Where the dots of a host name are, 64 bytes at a time: each item is a
/// block's bitmask (bit `i` set when byte `i` of the block is `.`) and the
/// block's length. Host names are scanned on every authorization; eight
/// bytes are tested at once, so a name of twenty bytes takes three steps.
pub(crate) fn dot_blocks(s: &[u8]) -> impl Iterator<Item = (u64, usize)> + '_ {
    s.chunks(64).map(|block| {
        let mut bits = 0;
        let mut chunks = block.chunks_exact(8);
        let mut shift = 0;
        for w in &mut chunks {
            bits |= words::byte_mask(words::word(w), b'.') << shift;
            shift += 8;
        }
        let tail = chunks.remainder();
        if !tail.is_empty() {
            // The block's last eight bytes, shifted so the tail starts at
            // byte 0 (zeros above it hold no dot); a byte loop for a block
            // shorter than eight bytes (a short name, or the short last
            // block of a long one).
            let w = match block.len().checked_sub(8) {
                Some(start) => words::word(&block[start..]) >> (8 * (8 - tail.len())),
                None => tail.iter().rev().fold(0, |w, &b| w << 8 | u64::from(b)),
            };
            bits |= words::byte_mask(w, b'.') << shift;
        }
        (bits, block.len())
    })
}

impl fmt::Display for UrlHostRef<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UrlHostRef::Domain(d) => f.write_str(d),
            UrlHostRef::Ip(IpAddr::V4(a)) => write!(f, "{a}"),
            UrlHostRef::Ip(IpAddr::V6(a)) => write!(f, "[{a}]"),
        }
    }
}

impl fmt::Display for UrlHost {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UrlHost::Domain(d) => f.write_str(d),
            UrlHost::Ip(IpAddr::V4(a)) => write!(f, "{a}"),
            UrlHost::Ip(IpAddr::V6(a)) => write!(f, "[{a}]"),
        }
    }
}

/// A parsed, normalized target.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Target {
    /// The scheme.
    pub scheme: Scheme,
    /// The host pattern.
    pub host: HostPattern,
    /// The port pattern; an omitted port is stored as the scheme default.
    pub port: PortPattern,
    /// The normalized path prefix (at least `/`).
    pub path: String,
}

/// What went wrong parsing a target.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TargetErrorKind {
    /// Not `scheme://host…` at all.
    Syntax,
    /// Longer than [`MAX_URL_BYTES`].
    TooLong,
    /// A scheme other than http/https/ws/wss.
    Scheme,
    /// Userinfo present.
    Userinfo,
    /// Query or fragment present.
    QueryOrFragment,
    /// A malformed wildcard.
    Wildcard,
    /// A host that is not a domain or IP literal.
    Host,
    /// A bad port.
    Port,
    /// A bad path prefix.
    Path,
    /// A never-reachable IP literal.
    ForbiddenAddress,
}

/// A target parse error: a lowercase message, a help line, and the byte range
/// inside the target string that is at fault.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error, miette::Diagnostic)]
#[error("{message}")]
#[diagnostic(help("{help}"))]
pub struct TargetError {
    /// What kind of problem.
    pub kind: TargetErrorKind,
    /// Lowercase sentence.
    pub message: String,
    /// What to do.
    pub help: String,
    /// Byte range within the target string.
    pub span: std::ops::Range<usize>,
}

fn err(
    kind: TargetErrorKind,
    span: std::ops::Range<usize>,
    message: impl Into<String>,
    help: impl Into<String>,
) -> TargetError {
    TargetError {
        kind,
        message: message.into(),
        help: help.into(),
        span,
    }
}

impl Target {
    /// Parses and normalizes a target.
    ///
    /// ```
    /// use netgrant_policy::Target;
    /// let a = Target::parse("WSS://Example.COM.:443").unwrap();
    /// let b = Target::parse("wss://example.com/").unwrap();
    /// assert_eq!(a, b);
    /// assert_eq!(a.to_string(), "wss://example.com/");
    /// ```
    pub fn parse(raw: &str) -> Result<Target, TargetError> {
        use TargetErrorKind as K;
        let all = 0..raw.len();
        if raw.len() > MAX_URL_BYTES {
            return Err(err(
                K::TooLong,
                all,
                format!(
                    "target is {} bytes long; the limit is {MAX_URL_BYTES}",
                    raw.len()
                ),
                "shorten the path prefix: a target names a host and a prefix, not a full URL",
            ));
        }
        // Visible ASCII has no control, whitespace or bidi character: only
        // other text needs the per-character test.
        let offender = if raw.bytes().all(|b| b.is_ascii_graphic()) {
            None
        } else {
            raw.char_indices().find(|(_, c)| {
                c.is_control() || c.is_whitespace() || crate::redact::is_bidi_control(*c)
            })
        };
        if let Some((i, c)) = offender {
            return Err(err(
                K::Syntax,
                i..i + c.len_utf8(),
                "target contains whitespace or a control character",
                "remove the whitespace or control character",
            ));
        }
        // The first `://`, found from the colons (a byte search) rather
        // than with a substring searcher.
        let sep = raw
            .match_indices(':')
            .map(|(i, _)| i)
            .find(|&i| raw[i..].starts_with("://"));
        let Some(sep) = sep else {
            return Err(err(
                K::Syntax,
                all,
                "target is not of the form scheme://host[:port][/path-prefix]",
                "write the target as a URL such as `wss://example.com/`",
            ));
        };
        let scheme_str = &raw[..sep];
        let Some(scheme) = Scheme::parse(scheme_str) else {
            return Err(err(
                K::Scheme,
                0..sep,
                format!(
                    "unsupported scheme {}",
                    crate::diagnostics::quote(scheme_str)
                ),
                "use `https` or `http` in host_api.request, `wss` or `ws` in host_api.websocket",
            ));
        };
        let rest_start = sep + 3;
        let rest = &raw[rest_start..];
        // Byte searches: `str::find` with a set of chars decodes UTF-8.
        if let Some(i) = rest.bytes().position(|b| b == b'?' || b == b'#') {
            let what = if rest.as_bytes()[i] == b'?' {
                "query"
            } else {
                "fragment"
            };
            return Err(err(
                K::QueryOrFragment,
                rest_start + i..raw.len(),
                format!("a target cannot carry a {what}"),
                "remove everything from the `?` or `#`: a target is matched by scheme, host, port and path prefix",
            ));
        }
        let auth_end = rest
            .bytes()
            .position(|b| b == b'/' || b == b'\\')
            .unwrap_or(rest.len());
        let authority = &rest[..auth_end];
        let path_raw = &rest[auth_end..];
        if let Some(at) = authority.rfind('@') {
            return Err(err(
                K::Userinfo,
                rest_start..rest_start + at + 1,
                "a target cannot carry userinfo (credentials)",
                "remove the `user:password@` part; credentials never belong in a manifest or grant",
            ));
        }
        // Split host and port; IPv6 literals are bracketed.
        let (host_str, port_str, port_off) = if authority.starts_with('[') {
            let Some(close) = authority.find(']') else {
                return Err(err(
                    K::Host,
                    rest_start..rest_start + authority.len(),
                    "unterminated IPv6 literal",
                    "write IPv6 addresses in brackets, e.g. `[::1]`",
                ));
            };
            let after = &authority[close + 1..];
            let port = match after.strip_prefix(':') {
                Some(p) => Some(p),
                None if after.is_empty() => None,
                None => {
                    return Err(err(
                        K::Host,
                        rest_start + close + 1..rest_start + authority.len(),
                        "unexpected text after the IPv6 literal",
                        "write `[addr]` or `[addr]:port`",
                    ))
                }
            };
            (&authority[..=close], port, rest_start + close + 2)
        } else {
            match authority.rfind(':') {
                Some(i) => (
                    &authority[..i],
                    Some(&authority[i + 1..]),
                    rest_start + i + 1,
                ),
                None => (authority, None, 0),
            }
        };
        let host_span = rest_start..rest_start + host_str.len();
        let port = match port_str {
            None => PortPattern::Exact(scheme.default_port()),
            Some("*") => PortPattern::Any,
            Some(p) => {
                let span = port_off..port_off + p.len();
                if p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()) || p.len() > 5 {
                    return Err(err(
                        K::Port,
                        span,
                        format!("invalid port {}", crate::diagnostics::quote(p)),
                        "write a port from 1 to 65535, `*` for any port, or omit it for the scheme default",
                    ));
                }
                match p.parse::<u32>() {
                    Ok(n) if (1..=65535).contains(&n) => PortPattern::Exact(n as u16),
                    _ => {
                        return Err(err(
                            K::Port,
                            span,
                            format!("port {p} is out of range"),
                            "write a port from 1 to 65535, or `*` for any port",
                        ))
                    }
                }
            }
        };
        let host = parse_host_pattern(host_str, host_span)?;
        let path = if path_raw.is_empty() {
            "/".to_string()
        } else {
            let path_off = rest_start + auth_end;
            path::normalize_prefix(path_raw)
                .map_err(|e| err(K::Path, path_off..raw.len(), e.message, e.help))?
        };
        let target = Target {
            scheme,
            host,
            port,
            path,
        };
        // Normalizing can lengthen a target (percent-encoding, A-labels); the
        // canonical spelling must stay within the limit too, or the IR it is
        // written to could not be loaded back.
        let canonical = target.canonical_len();
        if canonical > MAX_URL_BYTES {
            return Err(err(
                K::TooLong,
                all,
                format!(
                    "target is {canonical} bytes long once normalized (percent-encoded, A-labels); the limit is {MAX_URL_BYTES}"
                ),
                "shorten the path prefix: a target names a host and a prefix, not a full URL",
            ));
        }
        Ok(target)
    }

    /// The byte length of the canonical spelling, without building it:
    /// the [`fmt::Display`] below, counted (it runs on every target parsed).
    fn canonical_len(&self) -> usize {
        let host = match &self.host {
            HostPattern::Any => 1,
            HostPattern::Domain(d) => d.len(),
            HostPattern::Wildcard(s) => 2 + s.len(),
            HostPattern::Ip(_) => return self.counted_len(),
        };
        let port = match self.port {
            PortPattern::Any => 2,
            PortPattern::Exact(p) if p == self.scheme.default_port() => 0,
            // `:` and the digits
            PortPattern::Exact(p) => 1 + p.checked_ilog10().unwrap_or(0) as usize + 1,
        };
        self.scheme.as_str().len() + 3 + host + port + self.path.len()
    }

    /// The byte length of the [`fmt::Display`] output, by writing it.
    fn counted_len(&self) -> usize {
        struct Count(usize);
        impl fmt::Write for Count {
            fn write_str(&mut self, s: &str) -> fmt::Result {
                self.0 += s.len();
                Ok(())
            }
        }
        let mut c = Count(0);
        // Writing to a counter cannot fail.
        let _ = fmt::write(&mut c, format_args!("{self}"));
        c.0
    }

    /// The capability this target belongs to (by its scheme).
    pub fn capability(&self) -> Capability {
        self.scheme.capability()
    }

    /// Whether `self` contains `inner`: same scheme, host equal or inside the
    /// wildcard, port equal (or `*`), path prefix equal or longer.
    pub fn contains(&self, inner: &Target) -> bool {
        self.scheme == inner.scheme
            && self.host.contains(&inner.host)
            && self.port.contains(inner.port)
            && path::prefix_contains(&self.path, &inner.path)
    }

    /// The port as written in the IR: a number, or `None` for `*`.
    pub fn port_number(&self) -> Option<u16> {
        match self.port {
            PortPattern::Any => None,
            PortPattern::Exact(p) => Some(p),
        }
    }

    /// A key that orders more specific targets first: exact hosts before
    /// wildcards (longer suffix first) before `*`, exact ports before `*`,
    /// longer paths first.
    pub fn specificity_cmp(&self, other: &Target) -> Ordering {
        fn host_rank(h: &HostPattern) -> (u8, usize) {
            match h {
                HostPattern::Domain(_) | HostPattern::Ip(_) => (0, 0),
                HostPattern::Wildcard(s) => (1, usize::MAX - s.len()),
                HostPattern::Any => (2, 0),
            }
        }
        host_rank(&self.host)
            .cmp(&host_rank(&other.host))
            .then((self.port == PortPattern::Any).cmp(&(other.port == PortPattern::Any)))
            .then(other.path.len().cmp(&self.path.len()))
            // Lazily: spelling out both targets is the costly part.
            .then_with(|| self.to_string().cmp(&other.to_string()))
    }

    /// Whether the host is an IP literal of the given classes.
    pub fn ip_class(&self) -> Option<AddressClass> {
        match &self.host {
            HostPattern::Ip(ip) => Some(address::classify(*ip).class),
            _ => None,
        }
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}://{}", self.scheme, self.host)?;
        match self.port {
            PortPattern::Any => f.write_str(":*")?,
            PortPattern::Exact(p) if p == self.scheme.default_port() => {}
            PortPattern::Exact(p) => write!(f, ":{p}")?,
        }
        f.write_str(&self.path)
    }
}

fn parse_host_pattern(
    host: &str,
    span: std::ops::Range<usize>,
) -> Result<HostPattern, TargetError> {
    use TargetErrorKind as K;
    if host.is_empty() {
        return Err(err(
            K::Host,
            span,
            "target has no host",
            "write a host such as `example.com`, `*.example.com`, `127.0.0.1` or `[::1]`",
        ));
    }
    if host == "*" {
        return Ok(HostPattern::Any);
    }
    if let Some(suffix) = host.strip_prefix("*.") {
        if suffix.contains('*') {
            return Err(err(
                K::Wildcard,
                span,
                format!("malformed wildcard {}", crate::diagnostics::quote(host)),
                "a wildcard is `*.` followed by a domain, once, as the whole leftmost label (e.g. `*.example.com`)",
            ));
        }
        let suffix_span = span.start + 2..span.end;
        return match parse_concrete_host(suffix, suffix_span.clone())? {
            HostPattern::Domain(d) => Ok(HostPattern::Wildcard(d)),
            _ => Err(err(
                K::Wildcard,
                span,
                format!(
                    "wildcard over an IP address {}",
                    crate::diagnostics::quote(host)
                ),
                "a wildcard needs a domain suffix; name the IP address itself or use `networks`",
            )),
        };
    }
    if host.contains('*') {
        return Err(err(
            K::Wildcard,
            span,
            format!("malformed wildcard {}", crate::diagnostics::quote(host)),
            "a wildcard must be the whole leftmost label: write `*.example.com`, or `*` for any host",
        ));
    }
    parse_concrete_host(host, span)
}

fn parse_concrete_host(
    host: &str,
    span: std::ops::Range<usize>,
) -> Result<HostPattern, TargetError> {
    use TargetErrorKind as K;
    let bad = |msg: String| {
        err(
            K::Host,
            span.clone(),
            msg,
            "write a domain such as `api.example.com`, an IPv4 address, or an IPv6 address in brackets",
        )
    };
    if is_plain_domain(host) {
        return Ok(HostPattern::Domain(host.to_owned()));
    }
    // The WHATWG parser (the same one the authorizer uses on URLs) does IDNA,
    // lowercasing and the numeric IPv4 forms, so targets and URLs agree.
    let parsed = url::Url::parse(&format!("http://{host}/")).map_err(|e| {
        bad(format!(
            "invalid host {}: {e}",
            crate::diagnostics::quote(host)
        ))
    })?;
    let pattern = match parsed.host() {
        Some(url::Host::Domain(d)) => {
            let d = d.strip_suffix('.').unwrap_or(d);
            if d.is_empty() || d.ends_with('.') || d.starts_with('.') || d.contains("..") {
                return Err(bad(format!(
                    "invalid host {}: empty label",
                    crate::diagnostics::quote(host)
                )));
            }
            // IDNA maps look-alikes such as the fullwidth `＊` (U+FF0A) to
            // `*`: the canonical spelling would then read as a wildcard (or
            // `*`) and not parse back to this target.
            if d.contains('*') {
                return Err(err(
                    K::Wildcard,
                    span.clone(),
                    format!(
                        "host {} normalizes to {}, which contains `*`",
                        crate::diagnostics::quote(host),
                        crate::diagnostics::quote(d)
                    ),
                    "a wildcard is an ASCII `*.` followed by a domain (e.g. `*.example.com`), and `*` alone is any host",
                ));
            }
            HostPattern::Domain(d.to_ascii_lowercase())
        }
        Some(url::Host::Ipv4(a)) => HostPattern::Ip(address::canonicalize(IpAddr::V4(a))),
        Some(url::Host::Ipv6(a)) => HostPattern::Ip(address::canonicalize(IpAddr::V6(a))),
        None => {
            return Err(bad(format!(
                "invalid host {}",
                crate::diagnostics::quote(host)
            )))
        }
    };
    if parsed.port().is_some() || parsed.path() != "/" || parsed.username() != "" {
        return Err(bad(format!(
            "invalid host {}",
            crate::diagnostics::quote(host)
        )));
    }
    if let HostPattern::Ip(ip) = &pattern {
        let c = address::classify(*ip);
        if c.class == AddressClass::Never {
            return Err(err(
                K::ForbiddenAddress,
                span,
                format!("{ip} is {} and is never reachable", crate::address::with_article(c.name)),
                "unspecified, multicast, broadcast and cloud metadata addresses cannot be granted; remove this target",
            ));
        }
    }
    Ok(pattern)
}

/// Whether `host` is a lowercase LDH name that the WHATWG host parser
/// returns unchanged, so it needs no URL parse: non-empty labels of
/// `a-z 0-9 -`, none of them punycode (`xn--…`, which IDNA must check), and a
/// last label starting with a letter (a numeric one makes the host IPv4).
fn is_plain_domain(host: &str) -> bool {
    let mut last = "";
    for label in host.split('.') {
        if label.is_empty()
            || label.starts_with("xn--")
            || !label
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        {
            return false;
        }
        last = label;
    }
    last.starts_with(|c: char| c.is_ascii_lowercase())
}

/// Whether a wildcard suffix is a public suffix (Public Suffix List, private
/// section included, implicit `*` rule for unlisted TLDs). `localhost` names
/// are loopback, never broad.
pub fn is_public_suffix(suffix: &str) -> bool {
    if is_localhost_name(suffix) {
        return false;
    }
    match psl::suffix(suffix.as_bytes()) {
        Some(s) => s.as_bytes() == suffix.as_bytes(),
        // No suffix at all (malformed): fail closed.
        None => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> String {
        Target::parse(s).unwrap().to_string()
    }

    /// The eight-at-a-time scan finds exactly the dots a byte loop finds, at
    /// every length and offset, next to bytes one bit away from `.`.
    #[test]
    fn dot_blocks_find_every_dot() {
        let alphabet = [b'.', b'a', b'.' ^ 0x80, b'.' ^ 1, 0, 0x7f, 0xff];
        let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
        for len in (0..80).chain([127, 128, 129, 200]) {
            for _ in 0..200 {
                let s: Vec<u8> = (0..len)
                    .map(|_| {
                        seed ^= seed << 13;
                        seed ^= seed >> 7;
                        seed ^= seed << 17;
                        alphabet[(seed % alphabet.len() as u64) as usize]
                    })
                    .collect();
                let mut found = Vec::new();
                for (n, (mut bits, len)) in dot_blocks(&s).enumerate() {
                    assert!(len == 64 || 64 * n + len == s.len());
                    while bits != 0 {
                        found.push(64 * n + bits.trailing_zeros() as usize);
                        bits &= bits - 1;
                    }
                }
                let want: Vec<usize> = (0..s.len()).filter(|&i| s[i] == b'.').collect();
                assert_eq!(found, want, "{s:?}");
            }
        }
    }

    /// A URL's host is refused when a label is empty (after one trailing
    /// dot is dropped) and borrowed as the parser lowercased it.
    #[test]
    fn url_hosts_refuse_empty_labels() {
        let host = |u: &str| {
            let u = url::Url::parse(u).unwrap();
            UrlHost::from_url(&u).map(|h| h.to_string())
        };
        for (u, want) in [
            ("https://A.Example.COM./x", Some("a.example.com")),
            ("https://a.b/", Some("a.b")),
            (
                "https://abcdefgh.ijklmnop.qrstuvwx.yz/",
                Some("abcdefgh.ijklmnop.qrstuvwx.yz"),
            ),
            ("custom://Mixed.Case/", Some("mixed.case")),
            ("https://a..b/", None),
            ("https://.a/", None),
            ("https://a.b../", None),
            ("https://abcdefg..hijklmno/", None),
            ("https://abcdefgh.ijklmno../", None),
        ] {
            assert_eq!(host(u).as_deref(), want, "{u}");
        }
    }

    /// The counted length is the spelled length, for every host kind and
    /// port width.
    #[test]
    fn canonical_len_is_the_spelled_length() {
        for raw in [
            "https://example.com",
            "https://example.com:443/a",
            "https://example.com:8/a",
            "http://example.com:80/",
            "http://example.com:65535/x/",
            "wss://*.example.com:10000/a%20b/",
            "ws://*:*/",
            "https://bücher.example/é/",
            "https://127.0.0.1:9/",
            "https://[::ffff:127.0.0.1]:999/",
            "https://[2001:db8::1]/",
        ] {
            let target = Target::parse(raw).unwrap();
            assert_eq!(target.canonical_len(), target.to_string().len(), "{raw}");
            assert_eq!(target.counted_len(), target.to_string().len(), "{raw}");
        }
    }

    #[test]
    fn normalizes() {
        assert_eq!(t("WSS://Example.COM:443"), "wss://example.com/");
        assert_eq!(t("wss://example.com."), "wss://example.com/");
        assert_eq!(t("ws://localhost:9000"), "ws://localhost:9000/");
        assert_eq!(
            t("https://bücher.example/api"),
            "https://xn--bcher-kva.example/api"
        );
        assert_eq!(
            t("https://*.Example.com:*/v1/"),
            "https://*.example.com:*/v1/"
        );
        assert_eq!(t("ws://[::ffff:127.0.0.1]/"), "ws://127.0.0.1/");
        assert_eq!(t("ws://0x7f.1/"), "ws://127.0.0.1/");
        assert_eq!(t("ws://[::1]:80/"), "ws://[::1]/");
        assert_eq!(t("wss://*"), "wss://*/");
    }

    #[test]
    fn rejects() {
        use TargetErrorKind as K;
        let cases = [
            ("ftp://x/", K::Scheme),
            ("wss://a*.example.com/", K::Wildcard),
            ("wss://*.*.x/", K::Wildcard),
            ("wss://foo.*.com/", K::Wildcard),
            ("wss://*.1.2.3.4/", K::Wildcard),
            ("wss://u:p@x/", K::Userinfo),
            ("wss://x/?a=1", K::QueryOrFragment),
            ("wss://x/#f", K::QueryOrFragment),
            ("wss://x:0/", K::Port),
            ("wss://x:65536/", K::Port),
            ("wss://x:/", K::Port),
            ("wss://0.0.0.0/", K::ForbiddenAddress),
            ("wss://169.254.169.254/", K::ForbiddenAddress),
            ("wss://[::]/", K::ForbiddenAddress),
            ("wss://224.0.0.1/", K::ForbiddenAddress),
            ("wss:///", K::Host),
            ("example.com", K::Syntax),
            ("wss://a..b/", K::Host),
            ("wss://x /", K::Syntax),
        ];
        for (s, kind) in cases {
            let e = Target::parse(s).expect_err(s);
            assert_eq!(e.kind, kind, "{s}: {}", e.message);
        }
    }

    #[test]
    fn containment() {
        let p = |s| Target::parse(s).unwrap();
        assert!(p("wss://*.example.com/").contains(&p("wss://a.b.example.com/x")));
        assert!(!p("wss://*.example.com/").contains(&p("wss://example.com/")));
        assert!(p("wss://*.example.com/").contains(&p("wss://*.a.example.com/")));
        assert!(p("wss://*/").contains(&p("wss://10.0.0.1/")));
        assert!(!p("wss://x/").contains(&p("ws://x/")));
        assert!(p("wss://x:*/").contains(&p("wss://x:8443/")));
        assert!(!p("wss://x/").contains(&p("wss://x:*/")));
        assert!(p("wss://x/v1").contains(&p("wss://x/v1/a")));
        assert!(!p("wss://x/v1").contains(&p("wss://x/v10")));
    }

    /// The fast path's premise (`is_plain_domain`) must hold in most cases
    /// for the property to say anything: labels and TLDs are mostly plain,
    /// sometimes `xn--` or numeric (which the fast path must leave alone).
    #[test]
    fn plain_domains_parse_as_written() {
        use proptest::prelude::*;
        use proptest::test_runner::{Config, TestRunner};
        use std::sync::atomic::{AtomicUsize, Ordering};
        let label = prop_oneof![29 => "[a-z0-9-]{1,6}", 1 => "xn--[a-z0-9-]{1,6}"];
        let tld = prop_oneof![
            18 => "[a-z][a-z0-9-]{0,3}",
            1 => "[a-z0-9-]{1,4}",
            1 => "[0-9]{1,3}|0x[0-9a-f]{1,2}",
        ];
        let strategy = (proptest::collection::vec(label, 1..5), tld);
        let cases = 256;
        let hits = AtomicUsize::new(0);
        let mut runner = TestRunner::new(Config {
            cases,
            failure_persistence: None,
            ..Config::default()
        });
        let result = runner.run(&strategy, |(labels, tld)| {
            let host = format!("{}.{tld}", labels.join("."));
            if is_plain_domain(&host) {
                hits.fetch_add(1, Ordering::Relaxed);
                let via_url = url::Url::parse(&format!("http://{host}/"))
                    .map(|u| u.host_str().map(str::to_owned));
                prop_assert_eq!(via_url, Ok(Some(host.clone())));
                prop_assert_eq!(
                    parse_concrete_host(&host, 0..host.len()),
                    Ok(HostPattern::Domain(host.clone()))
                );
            }
            Ok(())
        });
        if let Err(e) = result {
            panic!("{e}");
        }
        let hits = hits.into_inner();
        eprintln!("plain_domains_parse_as_written: premise held in {hits} of {cases} cases");
        assert!(
            hits * 100 >= cases as usize * 75,
            "is_plain_domain held in only {hits} of {cases} cases"
        );
    }

    #[test]
    fn public_suffix() {
        assert!(is_public_suffix("com"));
        assert!(is_public_suffix("co.uk"));
        assert!(is_public_suffix("github.io"));
        assert!(is_public_suffix("internal"));
        assert!(!is_public_suffix("example.com"));
        assert!(!is_public_suffix("localhost"));
    }
}
