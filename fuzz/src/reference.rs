//! A reference of docs/spec.md §2 and §5, written to be obviously right rather than
//! fast: linear scans, byte-string comparisons, its own address table.
//!
//! It answers one question per allowed decision: *does this granted entry
//! really permit this URL, these headers and these addresses?* It is a set of
//! necessary conditions from the spec; the production authorizer may be
//! stricter (extra path readings, more look-alikes, header limits), never
//! looser.

use netgrant_policy::ir::{Entry, Port};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use unicode_normalization::UnicodeNormalization;

// ---------------------------------------------------------------------------
// Addresses
// ---------------------------------------------------------------------------

/// The reference address classes (docs/spec.md §2.5).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Class {
    /// Reachable through any matching target.
    Public,
    /// Reachable only through a target that covers it explicitly.
    NonPublic,
    /// Never reachable.
    Never,
}

/// IPv4-mapped `::ffff:a.b.c.d` and NAT64 `64:ff9b::a.b.c.d` become the IPv4
/// address they embed (docs/spec.md §2.5).
pub fn canon(ip: IpAddr) -> IpAddr {
    if let IpAddr::V6(v6) = ip {
        let s = v6.segments();
        let o = v6.octets();
        let v4 = Ipv4Addr::new(o[12], o[13], o[14], o[15]);
        if s[..6] == [0, 0, 0, 0, 0, 0xffff] || s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
            return IpAddr::V4(v4);
        }
    }
    ip
}

fn in4(ip: Ipv4Addr, net: [u8; 4], len: u32) -> bool {
    let mask = if len == 0 { 0 } else { u32::MAX << (32 - len) };
    (u32::from(ip) & mask) == (u32::from(Ipv4Addr::from(net)) & mask)
}

fn in6(ip: Ipv6Addr, net: [u16; 8], len: u32) -> bool {
    let mask = if len == 0 {
        0
    } else {
        u128::MAX << (128 - len)
    };
    (u128::from(ip) & mask) == (u128::from(Ipv6Addr::from(net)) & mask)
}

/// The class of an address, from the spec's list (after [`canon`]).
pub fn class(ip: IpAddr) -> Class {
    match canon(ip) {
        IpAddr::V4(a) => {
            const NEVER: &[([u8; 4], u32)] = &[
                ([0, 0, 0, 0], 8),          // unspecified
                ([224, 0, 0, 0], 4),        // multicast
                ([255, 255, 255, 255], 32), // broadcast
                ([169, 254, 169, 254], 32), // metadata
                ([169, 254, 170, 2], 32),   // metadata
                ([100, 100, 100, 200], 32), // metadata
            ];
            const NON_PUBLIC: &[([u8; 4], u32)] = &[
                ([127, 0, 0, 0], 8),     // loopback
                ([10, 0, 0, 0], 8),      // private
                ([172, 16, 0, 0], 12),   // private
                ([192, 168, 0, 0], 16),  // private
                ([100, 64, 0, 0], 10),   // CGNAT
                ([169, 254, 0, 0], 16),  // link-local
                ([192, 0, 0, 0], 24),    // IETF protocol assignments
                ([192, 0, 2, 0], 24),    // documentation
                ([198, 51, 100, 0], 24), // documentation
                ([203, 0, 113, 0], 24),  // documentation
                ([198, 18, 0, 0], 15),   // benchmarking
                ([192, 88, 99, 0], 24),  // 6to4 relay
                ([240, 0, 0, 0], 4),     // reserved
            ];
            if NEVER.iter().any(|(n, l)| in4(a, *n, *l)) {
                Class::Never
            } else if NON_PUBLIC.iter().any(|(n, l)| in4(a, *n, *l)) {
                Class::NonPublic
            } else {
                Class::Public
            }
        }
        IpAddr::V6(a) => {
            const NEVER: &[([u16; 8], u32)] = &[
                ([0, 0, 0, 0, 0, 0, 0, 0], 128),              // unspecified
                ([0xff00, 0, 0, 0, 0, 0, 0, 0], 8),           // multicast
                ([0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254], 128), // metadata
            ];
            // Inside 2000::/3 (global unicast), these are not public.
            const NON_PUBLIC_GLOBAL: &[([u16; 8], u32)] = &[
                ([0x2001, 0, 0, 0, 0, 0, 0, 0], 32),     // Teredo
                ([0x2001, 2, 0, 0, 0, 0, 0, 0], 48),     // benchmarking
                ([0x2001, 0xdb8, 0, 0, 0, 0, 0, 0], 32), // documentation
                ([0x2002, 0, 0, 0, 0, 0, 0, 0], 16),     // 6to4
                ([0x3fff, 0, 0, 0, 0, 0, 0, 0], 20),     // documentation
            ];
            if NEVER.iter().any(|(n, l)| in6(a, *n, *l)) {
                Class::Never
            } else if in6(a, [0x2000, 0, 0, 0, 0, 0, 0, 0], 3)
                && !NON_PUBLIC_GLOBAL.iter().any(|(n, l)| in6(a, *n, *l))
            {
                Class::Public
            } else {
                // Loopback, unique-local, link-local, IPv4-compatible and
                // -translated, local-use NAT64, discard, site-local, and
                // everything else outside global unicast.
                Class::NonPublic
            }
        }
    }
}

/// Whether `ip` is loopback (127/8, ::1), after [`canon`].
pub fn is_loopback(ip: IpAddr) -> bool {
    match canon(ip) {
        IpAddr::V4(a) => a.octets()[0] == 127,
        IpAddr::V6(a) => a == Ipv6Addr::LOCALHOST,
    }
}

/// A CIDR network, parsed here with std only.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Net {
    /// Network address (host bits may be set; comparisons mask them).
    pub addr: IpAddr,
    /// Prefix length.
    pub len: u32,
}

impl Net {
    /// Parses `addr/len`.
    pub fn parse(s: &str) -> Option<Net> {
        let (a, l) = s.split_once('/')?;
        let addr: IpAddr = a.parse().ok()?;
        let len: u32 = l.parse().ok()?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        (len <= max).then_some(Net { addr, len })
    }

    /// Whether the network contains `ip` (same family only; no mapping).
    pub fn contains_ip(&self, ip: IpAddr) -> bool {
        match (self.addr, ip) {
            (IpAddr::V4(n), IpAddr::V4(a)) => in4(a, n.octets(), self.len),
            (IpAddr::V6(n), IpAddr::V6(a)) => in6(a, n.segments(), self.len),
            _ => false,
        }
    }

    /// Whether the network contains every address of `inner`.
    pub fn contains_net(&self, inner: &Net) -> bool {
        self.len <= inner.len && self.contains_ip(inner.addr)
    }
}

// ---------------------------------------------------------------------------
// Hosts
// ---------------------------------------------------------------------------

/// A host pattern as the IR writes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HostPat {
    /// `*`.
    Any,
    /// An exact domain.
    Domain(String),
    /// `*.suffix` (the suffix).
    Wild(String),
    /// An IP literal.
    Ip(IpAddr),
}

impl HostPat {
    /// Reads the IR's `host` string.
    pub fn parse(host: &str) -> HostPat {
        if host == "*" {
            HostPat::Any
        } else if let Some(s) = host.strip_prefix("*.") {
            HostPat::Wild(s.to_string())
        } else if let Some(v6) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
            match v6.parse::<Ipv6Addr>() {
                Ok(a) => HostPat::Ip(canon(IpAddr::V6(a))),
                Err(_) => HostPat::Domain(host.to_string()),
            }
        } else if let Ok(a) = host.parse::<Ipv4Addr>() {
            HostPat::Ip(IpAddr::V4(a))
        } else {
            HostPat::Domain(host.to_string())
        }
    }

    /// Whether the pattern is `localhost` / `*.localhost` (RFC 6761).
    pub fn is_localhost_name(&self) -> bool {
        match self {
            HostPat::Domain(d) | HostPat::Wild(d) => is_localhost(d),
            _ => false,
        }
    }
}

/// `localhost` or a name under it.
pub fn is_localhost(name: &str) -> bool {
    name == "localhost" || name.ends_with(".localhost")
}

fn strict_subdomain(name: &str, suffix: &str) -> bool {
    name.len() > suffix.len() + 1 && name.ends_with(&format!(".{suffix}"))
}

/// A URL's host: a name or an address. Never both.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum UrlHost {
    /// A domain, lowercase, one trailing dot removed.
    Name(String),
    /// An IP literal, after [`canon`].
    Ip(IpAddr),
}

fn host_matches(p: &HostPat, h: &UrlHost) -> bool {
    match (p, h) {
        (HostPat::Any, _) => true,
        (HostPat::Domain(d), UrlHost::Name(n)) => d == n,
        (HostPat::Wild(s), UrlHost::Name(n)) => strict_subdomain(n, s),
        (HostPat::Ip(a), UrlHost::Ip(b)) => a == b,
        _ => false,
    }
}

fn host_contains(outer: &HostPat, inner: &HostPat) -> bool {
    match (outer, inner) {
        (HostPat::Any, _) => true,
        (HostPat::Wild(s), HostPat::Domain(d)) => strict_subdomain(d, s),
        (HostPat::Wild(s), HostPat::Wild(t)) => s == t || strict_subdomain(t, s),
        (HostPat::Domain(a), HostPat::Domain(b)) => a == b,
        (HostPat::Ip(a), HostPat::Ip(b)) => a == b,
        _ => false,
    }
}

// ---------------------------------------------------------------------------
// Paths
// ---------------------------------------------------------------------------

fn hex(b: u8) -> Option<u8> {
    (b as char).to_digit(16).map(|d| d as u8)
}

/// Decodes every valid `%XX` escape once.
pub fn decode(s: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        if s[i] == b'%' && i + 2 < s.len() {
            if let (Some(h), Some(l)) = (hex(s[i + 1]), hex(s[i + 2])) {
                out.push(h << 4 | l);
                i += 3;
                continue;
            }
        }
        out.push(s[i]);
        i += 1;
    }
    out
}

/// RFC 3986 §5.2.4 on a path that starts with `/`.
pub fn resolve_dots(p: &[u8]) -> Vec<u8> {
    let body = p.strip_prefix(b"/").unwrap_or(p);
    let segs: Vec<&[u8]> = body.split(|b| *b == b'/').collect();
    let mut out: Vec<&[u8]> = Vec::new();
    for (i, s) in segs.iter().enumerate() {
        let last = i + 1 == segs.len();
        match *s {
            b"." => {}
            b".." => {
                out.pop();
            }
            _ => {
                out.push(s);
                continue;
            }
        }
        if last {
            out.push(b"");
        }
    }
    let mut r = b"/".to_vec();
    r.extend(out.join(&b'/'));
    r
}

/// Decodes every IIS/Jetty-style `%uXXXX` escape (`u` either case) that
/// names a code point outside the surrogates, as UTF-8, once.
pub fn decode_percent_u(s: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        if s[i] == b'%' && matches!(s.get(i + 1), Some(b'u' | b'U')) && i + 5 < s.len() {
            let cp = s[i + 2..i + 6]
                .iter()
                .try_fold(0u32, |acc, b| Some(acc * 16 + u32::from(hex(*b)?)));
            if let Some(c) = cp.and_then(char::from_u32) {
                let mut buf = [0u8; 4];
                out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
                i += 6;
                continue;
            }
        }
        out.push(s[i]);
        i += 1;
    }
    out
}

/// The look-alikes docs/spec.md §5.5 names, written down from it here rather
/// than taken from the production table.
const SPEC_LOOKALIKES: &[(char, &str)] = &[
    ('\u{FF0E}', "."),
    ('\u{3002}', "."),
    ('\u{2024}', "."),
    ('\u{2025}', ".."),
    ('\u{FF0F}', "/"),
    ('\u{2215}', "/"),
    ('\u{2044}', "/"),
    ('\u{FF3C}', "\\"),
    ('\u{2216}', "\\"),
    ('\u{FE68}', "\\"),
];

/// Folds look-alike dots and slashes to ASCII: the spec's list, and any
/// character whose NFKC form is made of `.`, `/` and `\` only. Bytes that
/// are not UTF-8 are kept as they are.
pub fn fold(s: &[u8]) -> Vec<u8> {
    let Ok(text) = std::str::from_utf8(s) else {
        return s.to_vec();
    };
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if let Some((_, to)) = SPEC_LOOKALIKES.iter().find(|(from, _)| *from == c) {
            out.push_str(to);
            continue;
        }
        let n: String = std::iter::once(c).nfkc().collect();
        if !n.is_empty() && n.chars().all(|d| matches!(d, '.' | '/' | '\\')) {
            out.push_str(&n);
        } else {
            out.push(c);
        }
    }
    out.into_bytes()
}

/// Drops `;params` from every segment (servlet containers).
pub fn strip_params(p: &[u8]) -> Vec<u8> {
    let segs: Vec<&[u8]> = p
        .split(|b| *b == b'/')
        .map(|seg| match seg.iter().position(|b| *b == b';') {
            Some(at) => &seg[..at],
            None => seg,
        })
        .collect();
    segs.join(&b'/')
}

/// The readings of a request path the reference insists on: decoded once as
/// parsed; and decoded until nothing changes (`%XX`, and in a second
/// family `%uXXXX` too), `\` read as `/`, dot segments resolved, each with
/// and without `;params` stripped and with and without look-alikes folded
/// (docs/spec.md §5.5). `None` if decoding never settles.
pub fn readings(url_path: &str) -> Option<Vec<Vec<u8>>> {
    let once = decode(url_path.as_bytes());
    let mut out = vec![once];
    for percent_u in [false, true] {
        let mut cur = url_path.as_bytes().to_vec();
        let mut settled = false;
        for _ in 0..32 {
            let mut next = decode(&cur);
            if percent_u {
                next = decode_percent_u(&next);
            }
            if next == cur {
                settled = true;
                break;
            }
            cur = next;
        }
        if !settled {
            return None;
        }
        for folded in [false, true] {
            let text = if folded { fold(&cur) } else { cur.clone() };
            let slashed: Vec<u8> = text
                .iter()
                .map(|b| if *b == b'\\' { b'/' } else { *b })
                .collect();
            out.push(resolve_dots(&slashed));
            out.push(resolve_dots(&strip_params(&slashed)));
        }
    }
    Some(out)
}

/// Segment-boundary prefix matching (docs/spec.md §2.3).
pub fn prefix_inside(prefix: &[u8], path: &[u8]) -> bool {
    path == prefix
        || (path.starts_with(prefix)
            && (prefix.ends_with(b"/") || path.get(prefix.len()) == Some(&b'/')))
}

// ---------------------------------------------------------------------------
// Entries and requests
// ---------------------------------------------------------------------------

/// An IR entry, read back with the reference's own parsers.
#[derive(Clone, Debug)]
pub struct RefEntry {
    /// `request` / `websocket`.
    pub capability: String,
    /// The scheme.
    pub scheme: String,
    /// The host pattern.
    pub host: HostPat,
    /// `None` for `*`.
    pub port: Option<u16>,
    /// The path prefix as written in the IR.
    pub path: String,
    /// Methods (request entries).
    pub methods: Option<Vec<String>>,
    /// Declared headers.
    pub headers: Vec<String>,
    /// Declared subprotocols.
    pub subprotocols: Vec<String>,
    /// Networks.
    pub networks: Vec<Net>,
}

impl RefEntry {
    /// Reads an IR entry. Panics on a network the IR should never hold.
    pub fn from_ir(e: &Entry) -> RefEntry {
        RefEntry {
            capability: e.capability.to_string(),
            scheme: e.scheme.to_string(),
            host: HostPat::parse(&e.host),
            port: match e.port {
                Port::Number(n) => Some(n),
                Port::Any(_) => None,
            },
            path: e.path.clone(),
            methods: e.methods.clone(),
            headers: e.headers.clone(),
            subprotocols: e.subprotocols.clone(),
            networks: e
                .networks
                .iter()
                .map(|n| Net::parse(n).unwrap_or_else(|| panic!("IR network {n:?} is not CIDR")))
                .collect(),
        }
    }

    /// docs/spec.md §3.2 containment: same capability and scheme, host equal or
    /// inside, port equal (or `*`), prefix equal or longer (as spelled in
    /// the IR: both sides are canonical), methods, headers, subprotocols and
    /// networks a subset.
    pub fn contains(&self, inner: &RefEntry) -> bool {
        self.capability == inner.capability
            && self.scheme == inner.scheme
            && host_contains(&self.host, &inner.host)
            && (self.port.is_none() || self.port == inner.port)
            && prefix_inside(self.path.as_bytes(), inner.path.as_bytes())
            && match (&self.methods, &inner.methods) {
                (None, None) => true,
                (Some(o), Some(i)) => {
                    o == &["*"] || (i != &["*"] && i.iter().all(|m| o.contains(m)))
                }
                _ => false,
            }
            && inner.headers.iter().all(|h| self.headers.contains(h))
            && inner
                .subprotocols
                .iter()
                .all(|s| self.subprotocols.contains(s))
            && inner
                .networks
                .iter()
                .all(|n| self.networks.iter().any(|o| o.contains_net(n)))
    }

    /// Whether a non-public address is covered: the host is that IP literal,
    /// the host is a localhost name and the address loopback, or a network
    /// contains it (docs/spec.md §5.9).
    pub fn covers(&self, ip: IpAddr) -> bool {
        let ip = canon(ip);
        match class(ip) {
            Class::Never => false,
            Class::Public => true,
            Class::NonPublic => {
                self.host == HostPat::Ip(ip)
                    || (self.host.is_localhost_name() && is_loopback(ip))
                    || self.networks.iter().any(|n| n.contains_ip(ip))
            }
        }
    }
}

const METHODS: &[&str] = &["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"];
const ALWAYS_HEADERS: &[&str] = &[
    "accept",
    "accept-language",
    "content-type",
    "content-language",
    "cache-control",
    "if-match",
    "if-none-match",
    "if-modified-since",
    "if-unmodified-since",
    "user-agent",
];

/// Header names the spec never allows, whatever a target declares.
pub fn never_header(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    const EXACT: &[&str] = &[
        "host",
        "authorization",
        "proxy-authorization",
        "cookie",
        "connection",
        "keep-alive",
        "upgrade",
        "te",
        "trailer",
        "transfer-encoding",
        "content-length",
        "forwarded",
        "x-http-method-override",
        "x-method-override",
        "x-http-method",
    ];
    EXACT.contains(&n.as_str())
        || ["x-forwarded-", "proxy-", "sec-"]
            .iter()
            .any(|p| n.starts_with(p))
        || [
            "token", "secret", "password", "api-key", "apikey", "auth", "session",
        ]
        .iter()
        .any(|w| n.contains(w))
}

/// What was asked, as the fuzz target gave it to the authorizer.
#[derive(Debug)]
pub struct Ask<'a> {
    /// `true` for websocket, `false` for request.
    pub websocket: bool,
    /// The URL text.
    pub url: &'a str,
    /// The method (request; `None` means GET).
    pub method: Option<&'a str>,
    /// Headers.
    pub headers: &'a [(String, String)],
    /// Subprotocols.
    pub subprotocols: &'a [String],
    /// DNS answers, if given.
    pub answers: Option<&'a [IpAddr]>,
}

/// The URL-level facts the reference needs, parsed with the `url` crate.
#[derive(Debug)]
pub struct RefUrl {
    /// Lowercase scheme.
    pub scheme: String,
    /// The host.
    pub host: UrlHost,
    /// Port (explicit or the scheme's default).
    pub port: u16,
    /// Path readings ([`readings`]).
    pub readings: Vec<Vec<u8>>,
    /// Whether the URL has a fragment.
    pub fragment: bool,
}

/// Parses a URL the way the spec reads it; `Err` says why no entry can ever
/// allow it.
pub fn parse_url(ask: &Ask<'_>) -> Result<RefUrl, String> {
    let u = url::Url::parse(ask.url).map_err(|e| format!("url crate rejects it: {e}"))?;
    let scheme = u.scheme().to_string();
    let want: &[&str] = if ask.websocket {
        &["ws", "wss"]
    } else {
        &["http", "https"]
    };
    if !want.contains(&scheme.as_str()) {
        return Err(format!("scheme {scheme} is not the capability's"));
    }
    if !u.username().is_empty() || u.password().is_some() {
        return Err("userinfo".into());
    }
    let host = match u.host() {
        None => return Err("no host".into()),
        Some(url::Host::Domain(d)) => {
            let d = d.strip_suffix('.').unwrap_or(d);
            UrlHost::Name(d.to_ascii_lowercase())
        }
        Some(url::Host::Ipv4(a)) => UrlHost::Ip(IpAddr::V4(a)),
        Some(url::Host::Ipv6(a)) => UrlHost::Ip(canon(IpAddr::V6(a))),
    };
    let port = u.port_or_known_default().ok_or("no port")?;
    let readings = readings(u.path()).ok_or("path decoding never settles")?;
    Ok(RefUrl {
        scheme,
        host,
        port,
        readings,
        fragment: u.fragment().is_some(),
    })
}

/// The addresses a connection to `url` would use: the IP literal, the two
/// loopback addresses for a localhost name, or the DNS answers (`None`: the
/// name was not resolved; the decision is on the URL alone).
pub fn effective_addresses(url: &RefUrl, answers: Option<&[IpAddr]>) -> Option<Vec<IpAddr>> {
    match &url.host {
        UrlHost::Ip(ip) => Some(vec![*ip]),
        UrlHost::Name(n) if is_localhost(n) => Some(vec![
            IpAddr::V4(Ipv4Addr::LOCALHOST),
            IpAddr::V6(Ipv6Addr::LOCALHOST),
        ]),
        UrlHost::Name(_) => answers.map(<[IpAddr]>::to_vec),
    }
}

/// Why `entry` does not permit the request, or `Ok` if it does.
pub fn permits(entry: &RefEntry, url: &RefUrl, ask: &Ask<'_>) -> Result<(), String> {
    let cap = if ask.websocket {
        "websocket"
    } else {
        "request"
    };
    if entry.capability != cap {
        return Err(format!("capability {} ≠ {cap}", entry.capability));
    }
    if entry.scheme != url.scheme {
        return Err(format!("scheme {} ≠ {}", entry.scheme, url.scheme));
    }
    if !host_matches(&entry.host, &url.host) {
        return Err(format!(
            "host {:?} does not match {:?}",
            entry.host, url.host
        ));
    }
    if entry.port.is_some_and(|p| p != url.port) {
        return Err(format!("port {:?} ≠ {}", entry.port, url.port));
    }
    let prefix = decode(entry.path.as_bytes());
    for r in &url.readings {
        if !prefix_inside(&prefix, r) {
            return Err(format!(
                "path reading {:?} is outside prefix {:?}",
                String::from_utf8_lossy(r),
                entry.path
            ));
        }
    }
    if ask.websocket && url.fragment {
        return Err("websocket URL with a fragment".into());
    }
    if !ask.websocket {
        let m = ask.method.unwrap_or("GET");
        let ok = match &entry.methods {
            Some(ms) if ms == &["*"] => METHODS.contains(&m),
            Some(ms) => ms.iter().any(|x| x == m),
            None => false,
        };
        if !ok {
            return Err(format!("method {m:?} not in {:?}", entry.methods));
        }
    }
    for (name, value) in ask.headers {
        let n = name.to_ascii_lowercase();
        if never_header(&n) {
            return Err(format!("header {name:?} is never allowed"));
        }
        if !ALWAYS_HEADERS.contains(&n.as_str()) && !entry.headers.contains(&n) {
            return Err(format!("header {name:?} not declared"));
        }
        // docs/spec.md §5.6: visible ASCII, SP and HTAB only.
        if !value.chars().all(|c| c == ' ' || c == '\t' || ('!'..='~').contains(&c)) {
            return Err(format!("header {name:?} value is not visible ASCII, SP, HTAB"));
        }
        if !ask.websocket
            && n == "accept"
            && value.to_ascii_lowercase().contains("text/event-stream")
        {
            return Err("event stream on the request capability".into());
        }
    }
    if ask.websocket {
        for s in ask.subprotocols {
            if !entry.subprotocols.contains(s) {
                return Err(format!("subprotocol {s:?} not declared"));
            }
        }
    }
    if let Some(addrs) = effective_addresses(url, ask.answers) {
        if addrs.is_empty() {
            return Err("no DNS answers".into());
        }
        for a in addrs {
            if class(a) == Class::Never {
                return Err(format!("address {a} is never reachable"));
            }
            if !entry.covers(a) {
                return Err(format!("address {a} is {:?} and not covered", class(a)));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes() {
        let c = |s: &str| class(s.parse().unwrap());
        assert_eq!(c("93.184.215.14"), Class::Public);
        assert_eq!(c("10.1.2.3"), Class::NonPublic);
        assert_eq!(c("::ffff:10.1.2.3"), Class::NonPublic);
        assert_eq!(c("64:ff9b::a01:203"), Class::NonPublic);
        assert_eq!(c("64:ff9b::5db8:d70e"), Class::Public);
        assert_eq!(c("::1"), Class::NonPublic);
        assert_eq!(c("2606:4700::1111"), Class::Public);
        assert_eq!(c("2001:db8::1"), Class::NonPublic);
        assert_eq!(c("fe80::1"), Class::NonPublic);
        assert_eq!(c("169.254.169.254"), Class::Never);
        assert_eq!(c("::ffff:169.254.169.254"), Class::Never);
        assert_eq!(c("0.0.0.0"), Class::Never);
        assert_eq!(c("::"), Class::Never);
        assert_eq!(c("ff02::1"), Class::Never);
    }

    #[test]
    fn paths() {
        assert_eq!(resolve_dots(b"/a/b/.."), b"/a/");
        assert_eq!(resolve_dots(b"/a//../b"), b"/a/b");
        assert_eq!(resolve_dots(b"/.."), b"/");
        assert_eq!(resolve_dots(b"/a/./b"), b"/a/b");
        let r = readings("/v1/..%2Fadmin").unwrap();
        assert!(prefix_inside(b"/v1/", &r[0]));
        assert!(!prefix_inside(b"/v1/", &r[1]));
        let r = readings("/v1/%252e%252e/x").unwrap();
        assert_eq!(r[1], b"/x");
        assert!(prefix_inside(b"/v1", b"/v1/x"));
        assert!(!prefix_inside(b"/v1", b"/v10"));
        assert!(!prefix_inside(b"/v1/", b"/v1"));
        assert_eq!(decode(b"%4"), b"%4");
        assert_eq!(decode(b"a%41"), b"aA");
    }

    /// Whether `path` is inside `prefix` under every reading.
    fn inside(prefix: &[u8], path: &str) -> bool {
        readings(path)
            .unwrap()
            .iter()
            .all(|r| prefix_inside(prefix, r))
    }

    #[test]
    fn encoded_semicolons() {
        assert!(!inside(b"/v1/", "/v1/..%3b/admin"));
        assert!(!inside(b"/v1/", "/v1/..%3Bjsessionid=1/admin"));
        assert!(!inside(b"/v1/", "/v1/..;/admin"));
        assert!(inside(b"/v1/", "/v1/a%3Bb/c"));
        assert!(inside(b"/v1/", "/v1/x;jsessionid=1"));
        assert_eq!(strip_params(b"/a;x/b;y/c"), b"/a/b/c");
    }

    #[test]
    fn percent_u() {
        assert_eq!(decode_percent_u(b"%u002e%U002E"), b"..");
        assert_eq!(decode_percent_u(b"%uFF0E"), "．".as_bytes());
        assert_eq!(decode_percent_u(b"%u00"), b"%u00");
        assert_eq!(decode_percent_u(b"%uD800"), b"%uD800");
        assert!(!inside(b"/v1/", "/v1/%u002e%u002e/admin"));
        assert!(!inside(b"/v1/", "/v1/%25u002e%25u002e/admin"));
        assert!(!inside(b"/v1/", "/v1/..%u002fadmin"));
        assert!(!inside(b"/v1/", "/v1/%uFF0E%uFF0E/admin"));
        assert!(inside(b"/v1/", "/v1/%u0041bc"));
        assert!(inside(b"/v1/", "/v1/x/%u002e%u002e/y"));
    }

    /// The reference states necessary conditions: where the production
    /// authorizer finds a path inside a prefix under all its readings, the
    /// reference must too (else the fuzz target would report a false bug).
    #[test]
    fn production_readings_are_never_looser() {
        const TOKENS: &[&str] = &[
            "a",
            "/",
            "..",
            ".",
            ";x",
            "%2f",
            "%3b",
            "%2e",
            "%252e",
            "%u002e",
            "%u002f",
            "%25u002e",
            "%EF%BC%8E",
            "%E3%80%82",
            "%E2%80%A5",
            "%EF%BC%8F",
            "%EF%BC%BC",
            "%E2%88%95",
            "%C3%A9",
            "%uFF0E",
        ];
        let mut checked = 0;
        let mut paths = vec![String::new()];
        for _ in 0..3 {
            paths = paths
                .iter()
                .flat_map(|p| TOKENS.iter().map(move |t| format!("{p}{t}")))
                .collect();
            for tail in &paths {
                let Ok(url) = url::Url::parse(&format!("http://h/v1/{tail}")) else {
                    continue;
                };
                let Ok(prod) = netgrant_policy::PathReadings::parse(url.path()) else {
                    continue;
                };
                let Some(reference) = readings(url.path()) else {
                    continue;
                };
                for prefix in ["/v1/", "/v1", "/v1/a/", "/"] {
                    if prod.all_inside(prefix) {
                        checked += 1;
                        assert!(
                            reference
                                .iter()
                                .all(|r| prefix_inside(prefix.as_bytes(), r)),
                            "{} under {prefix}: production allows, the reference does not",
                            url.path()
                        );
                    }
                }
            }
        }
        assert!(checked > 5000, "{checked}");
    }

    #[test]
    fn lookalikes() {
        assert_eq!(fold("．。․‥／∕⁄＼∖﹨".as_bytes()), b".....///\\\\\\");
        assert_eq!(fold("﹒…".as_bytes()), b"....");
        assert_eq!(
            fold("café ß 日本語 ﬁ".as_bytes()),
            "café ß 日本語 ﬁ".as_bytes()
        );
        assert_eq!(fold(b"\xff."), b"\xff.");
        for path in [
            "/v1/%EF%BC%8E%EF%BC%8E/admin",
            "/v1/%E3%80%82%E3%80%82/admin",
            "/v1/%E2%80%A5/admin",
            "/v1/..%EF%BC%8Fadmin",
            "/v1/..%E2%88%95admin",
            "/v1/..%EF%BC%BCadmin",
            "/v1/..%EF%B9%A8admin",
            "/v1/%25EF%25BC%258E%25EF%25BC%258E/admin",
        ] {
            assert!(!inside(b"/v1/", path), "{path}");
        }
        for path in [
            "/v1/caf%C3%A9/%C3%9F/%E6%97%A5%E6%9C%AC%E8%AA%9E",
            "/v1/a%EF%BC%8Eb",
            "/v1/x/%EF%BC%8E%EF%BC%8E/y",
            "/v1/%E2%80%A6",
        ] {
            assert!(inside(b"/v1/", path), "{path}");
        }
    }

    #[test]
    fn networks() {
        let n = Net::parse("10.0.0.0/8").unwrap();
        assert!(n.contains_ip("10.9.9.9".parse().unwrap()));
        assert!(!n.contains_ip("11.0.0.0".parse().unwrap()));
        assert!(n.contains_net(&Net::parse("10.1.0.0/16").unwrap()));
        assert!(!Net::parse("10.1.0.0/16").unwrap().contains_net(&n));
        assert!(Net::parse("::/0")
            .unwrap()
            .contains_ip("::1".parse().unwrap()));
    }
}
