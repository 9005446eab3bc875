//! Structured: a small policy (targets from a vocabulary of hosts, wildcards,
//! ports, paths, networks, plus fuzzed strings; a grant that approves,
//! narrows or differs), a URL (from parts or raw), a method, headers,
//! subprotocols and optional DNS answers (IPv4/IPv6, mapped and NAT64 forms)
//! → `compile` → `Authorizer::authorize`.
//!
//! Invariants: no panic; authorizing is deterministic and the runtime's
//! two-step path (`prepare` + `check_addresses`) gives the same decision;
//! every decision shows the URL exactly as `redact_url` does and never leaks
//! a password, query value or fragment; and on **allow**, the granted entry
//! the decision names must permit the request by the independent reference
//! in `src/reference.rs` (scheme, host, port, path readings, method, headers,
//! subprotocols), every address it would connect to is public or covered by
//! that entry (IP literal, localhost rule, networks), none is never-reachable,
//! and the decision's socket addresses are exactly those addresses.

use crate::reference::{self, Ask, RefEntry};
use arbitrary::Arbitrary;
use netgrant_policy::ir::Status;
use netgrant_policy::{HostPattern, PortPattern};
use netgrant_policy::{
    compile, redact, Authorizer, Capability, Destination, Grant, Manifest, Request, Target,
};
use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

const SCHEMES: &[&str] = &["ws", "wss", "http", "https"];
const DOMAINS: &[&str] = &[
    "example.com",
    "api.example.com",
    "a.b.example.com",
    "example.net",
    "localhost",
    "a.localhost",
    "bücher.example",
    "xn--bcher-kva.example",
    "corp.internal",
    "co.uk",
    "github.io",
    "events.corp.example",
];
const IPS: &[&str] = &[
    "127.0.0.1",
    "10.0.0.5",
    "93.184.215.14",
    "[::1]",
    "[2606:4700::1111]",
    "[fd12:3456:789a::1]",
    "[::ffff:10.0.0.5]",
    "[64:ff9b::a00:5]",
    "192.168.1.1",
    "100.64.0.1",
    "8.8.8.8",
    "169.254.1.1",
    "[fe80::1]",
    "[2002:c000:204::1]",
    "[2001:db8::1]",
    "198.51.100.7",
    "0x7f.1",
    "2130706433",
    "[::ffff:7f00:1]",
    "127.1",
    "010.0.0.5",
    "[::ffff:93.184.215.14]",
];
const LABELS: &[&str] = &["a", "x", "api", "b", "www", "xn--bcher-kva", "A", "events"];
const PORTS: &[u16] = &[80, 443, 8080, 9000, 8443, 0, 65535, 1];
const TARGET_PATHS: &[&str] = &[
    "",
    "/",
    "/v1",
    "/v1/",
    "/api/",
    "/api/v10/",
    "/a/b",
    "/debug/",
    "/%7e",
    "/é/",
    "/x/..",
    "/{x}",
    "/a%20b",
    "/v1/a/",
];
const SEGMENTS: &[&str] = &[
    "v1",
    "v10",
    "api",
    "a",
    "b",
    "debug",
    "..",
    ".",
    "%2e%2e",
    "%2E",
    "%2F",
    "%252F",
    "%5C",
    "\\",
    "x;y",
    ";p",
    "%00",
    "%c0%ae",
    "%41",
    "é",
    "",
    "..%2F",
    "%2e%2e%2f",
    "%25",
    "v1%2F..%2F..",
    "{x}",
    "%7B",
    "a%20b",
    "%ff",
    "%7e",
    "~",
    "..;",
    "%252e%252e",
];
// `hunter2` alone is a value passed bare: redaction hides the whole part.
const QUERIES: &[&str] = &[
    "q=1",
    "token=hunter2",
    "",
    "a&b=c",
    "x=hunter2&y=2",
    "hunter2",
    "k=v&hunter2",
];
const FRAGMENTS: &[&str] = &["", "frag", "hunter2", "a/../b"];
const USERINFO: &[&str] = &["user:hunter2@", "@", ":@", "u@", ":hunter2@"];
const SEPARATORS: &[&str] = &["://", ":/", ":", ":\\\\", "://\t", ":///", "://\\"];
const URL_SCHEMES: &[&str] = &[
    "ws", "wss", "http", "https", "WSS", "HtTp", "ftp", "file", "wss+x",
];
/// The schemes of the two capabilities, as spelled in [`URL_SCHEMES`].
const SPECIAL: &[&str] = &["ws", "wss", "http", "https", "WSS", "HtTp"];
const METHOD_WORDS: &[&str] = &[
    "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "*",
];
const ASK_METHODS: &[&str] = &[
    "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "get", "CONNECT", "TRACE", "Get",
];
const DECL_HEADERS: &[&str] = &["X-Audit-Log-Reason", "X-Request-Id", "X-Trace", "x-custom"];
const ASK_HEADERS: &[&str] = &[
    "Accept",
    "X-Request-Id",
    "x-trace",
    "X-Audit-Log-Reason",
    "Authorization",
    "Upgrade",
    "Sec-WebSocket-Protocol",
    "Content-Type",
    "Cookie",
    "X-Forwarded-For",
    "Connection",
    "User-Agent",
    "X-Unknown",
    "ACCEPT",
];
const HEADER_VALUES: &[&str] = &[
    "v",
    "text/event-stream",
    "a\r\nb",
    "",
    "upgrade",
    "Text/Event-Stream",
];
const SUBPROTOCOLS: &[&str] = &["json", "chat", "v2.proto"];
const NETWORKS: &[&str] = &[
    "10.0.0.0/8",
    "10.0.0.0/24",
    "192.168.0.0/16",
    "127.0.0.0/8",
    "::1/128",
    "fd12:3456:789a::/48",
    "100.64.0.0/10",
    "::ffff:10.0.0.0/104",
    "fe80::/10",
    "2001:db8::/32",
    "172.16.0.0/12",
    "0.0.0.0/0",
    "64:ff9b::a00:0/120",
    "169.254.0.0/16",
    "2002::/16",
    "198.51.100.0/24",
];
const ADDRS: &[&str] = &[
    "93.184.215.14",
    "10.0.0.5",
    "127.0.0.1",
    "::1",
    "169.254.169.254",
    "0.0.0.0",
    "224.0.0.1",
    "fd12:3456:789a::1",
    "2606:4700::1111",
    "100.64.0.1",
    "192.168.1.1",
    "10.1.2.3",
    "2002:c000:204::1",
    "2001::1",
    "64:ff9b:1::1",
    "fe80::1",
    "255.255.255.255",
    "fd00:ec2::254",
    "198.51.100.7",
    "::",
    "::a00:5",
    "100.100.100.200",
];

fn pick<'a>(v: &[&'a str], i: impl Into<usize>) -> &'a str {
    v[i.into() % v.len()]
}

#[derive(Arbitrary, Debug)]
enum HostSpec {
    Domain(u8),
    Ip(u8),
    Wild(u8),
    Any,
    Raw(String),
}

impl HostSpec {
    fn text(&self) -> String {
        match self {
            HostSpec::Domain(i) => pick(DOMAINS, *i).to_string(),
            HostSpec::Ip(i) => pick(IPS, *i).to_string(),
            HostSpec::Wild(i) => format!("*.{}", pick(DOMAINS, *i)),
            HostSpec::Any => "*".to_string(),
            HostSpec::Raw(s) => s.clone(),
        }
    }
}

#[derive(Arbitrary, Debug)]
enum PortSpec {
    Default,
    Vocab(u8),
    Any,
    Num(u16),
}

impl PortSpec {
    fn text(&self) -> String {
        match self {
            PortSpec::Default => String::new(),
            PortSpec::Vocab(i) => format!(":{}", PORTS[*i as usize % PORTS.len()]),
            PortSpec::Any => ":*".to_string(),
            PortSpec::Num(n) => format!(":{n}"),
        }
    }
}

#[derive(Arbitrary, Debug)]
enum PathSpec {
    Vocab(u8),
    Raw(String),
}

impl PathSpec {
    fn text(&self) -> String {
        match self {
            PathSpec::Vocab(i) => pick(TARGET_PATHS, *i).to_string(),
            PathSpec::Raw(s) => s.clone(),
        }
    }
}

#[derive(Arbitrary, Debug)]
enum GrantKind {
    Same,
    None,
    /// The same target with a longer path.
    LongerPath(u8),
    Methods(u8),
    Networks(u8),
    Headers(u8),
    Subprotocols(u8),
    /// Another target of the same scheme (narrower, wider or unrelated).
    Other(HostSpec, PortSpec, PathSpec),
}

#[derive(Arbitrary, Debug)]
struct TargetSpec {
    scheme: u8,
    host: HostSpec,
    port: PortSpec,
    path: PathSpec,
    methods: Vec<u8>,
    headers: u8,
    subprotocols: u8,
    /// Up to two networks from the vocabulary.
    networks: Vec<u8>,
    grant: GrantKind,
    /// `broad = true` in the grant unless this is 3 mod 4 (arbitrary fills
    /// exhausted input with zeros: zero is the common case).
    broad: u8,
}

fn subset<'a>(v: &[&'a str], mask: u32) -> Vec<&'a str> {
    v.iter()
        .enumerate()
        .filter(|(i, _)| mask >> i & 1 == 1)
        .map(|(_, s)| *s)
        .collect()
}

/// A TOML basic string.
fn q(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{:04X}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn list(items: &[&str]) -> String {
    let v: Vec<String> = items.iter().map(|s| q(s)).collect();
    format!("[{}]", v.join(", "))
}

impl TargetSpec {
    fn scheme(&self) -> &'static str {
        SCHEMES[self.scheme as usize % SCHEMES.len()]
    }

    fn websocket(&self) -> bool {
        self.scheme().starts_with("ws")
    }

    fn table(&self) -> &'static str {
        if self.websocket() {
            "[[host_api.websocket]]"
        } else {
            "[[host_api.request]]"
        }
    }

    fn url(&self) -> String {
        format!(
            "{}://{}{}{}",
            self.scheme(),
            self.host.text(),
            self.port.text(),
            self.path.text()
        )
    }

    fn methods(&self) -> Vec<&'static str> {
        let mut m: Vec<&str> = self
            .methods
            .iter()
            .take(4)
            .map(|i| pick(METHOD_WORDS, *i))
            .collect();
        m.dedup();
        if m.is_empty() {
            m.push("GET");
        }
        m
    }

    fn networks(&self) -> Vec<&'static str> {
        let mut n: Vec<&str> = self
            .networks
            .iter()
            .take(2)
            .map(|i| pick(NETWORKS, *i))
            .collect();
        n.dedup();
        n
    }

    fn manifest_entry(&self, out: &mut String) {
        let _ = writeln!(out, "\n{}\nurl = {}", self.table(), q(&self.url()));
        if !self.websocket() {
            let m = self.methods();
            if m == ["*"] {
                out.push_str("methods = \"*\"\n");
            } else {
                let _ = writeln!(out, "methods = {}", list(&m));
            }
        }
        let h = subset(DECL_HEADERS, u32::from(self.headers));
        if !h.is_empty() {
            let _ = writeln!(out, "headers = {}", list(&h));
        }
        let s = subset(SUBPROTOCOLS, u32::from(self.subprotocols));
        if self.websocket() && !s.is_empty() {
            let _ = writeln!(out, "subprotocols = {}", list(&s));
        }
        let n = self.networks();
        if !n.is_empty() {
            let _ = writeln!(out, "networks = {}", list(&n));
        }
    }

    fn grant_entry(&self, out: &mut String) {
        let mut extra = String::new();
        let url = match &self.grant {
            GrantKind::None => return,
            GrantKind::Same => self.url(),
            GrantKind::LongerPath(i) => {
                let p = self.path.text();
                let sep = if p.ends_with('/') { "" } else { "/" };
                format!(
                    "{}://{}{}{p}{sep}{}",
                    self.scheme(),
                    self.host.text(),
                    self.port.text(),
                    pick(SEGMENTS, *i)
                )
            }
            GrantKind::Methods(mask) => {
                let m = subset(&self.methods(), u32::from(*mask));
                if !self.websocket() && !m.is_empty() {
                    let _ = writeln!(extra, "methods = {}", list(&m));
                }
                self.url()
            }
            GrantKind::Networks(mask) => {
                let n = subset(&self.networks(), u32::from(*mask));
                let _ = writeln!(extra, "networks = {}", list(&n));
                self.url()
            }
            GrantKind::Headers(mask) => {
                let h = subset(
                    &subset(DECL_HEADERS, u32::from(self.headers)),
                    u32::from(*mask),
                );
                let _ = writeln!(extra, "headers = {}", list(&h));
                self.url()
            }
            GrantKind::Subprotocols(mask) => {
                let s = subset(
                    &subset(SUBPROTOCOLS, u32::from(self.subprotocols)),
                    u32::from(*mask),
                );
                if self.websocket() {
                    let _ = writeln!(extra, "subprotocols = {}", list(&s));
                }
                self.url()
            }
            GrantKind::Other(h, p, path) => {
                format!(
                    "{}://{}{}{}",
                    self.scheme(),
                    h.text(),
                    p.text(),
                    path.text()
                )
            }
        };
        let _ = writeln!(out, "\n{}\nurl = {}\n{extra}", self.table(), q(&url));
        if self.broad % 4 != 3 {
            out.push_str("broad = true\n");
        }
    }
}

#[derive(Arbitrary, Debug)]
enum UrlHostSpec {
    Host(HostSpec),
    Sub(u8, u8),
    Upper(u8),
    TrailingDot(u8),
}

#[derive(Arbitrary, Debug)]
pub enum Segment {
    Vocab(u8),
    Raw(String),
}

/// The path, query and fragment after the authority.
#[derive(Arbitrary, Debug)]
pub struct Tail {
    segments: Vec<Segment>,
    trailing_slash: bool,
    query: Option<u8>,
    fragment: Option<u8>,
}

impl Tail {
    /// How many `hunter2` the query and fragment add (redaction hides both).
    fn hidden_secrets(&self) -> usize {
        self.query
            .map_or(0, |i| pick(QUERIES, i).matches("hunter2").count())
            + self
                .fragment
                .map_or(0, |i| pick(FRAGMENTS, i).matches("hunter2").count())
    }

    fn push(&self, s: &mut String, base_path: &str) {
        s.push_str(base_path.trim_end_matches('/'));
        for seg in self.segments.iter().take(8) {
            s.push('/');
            match seg {
                Segment::Vocab(i) => s.push_str(pick(SEGMENTS, *i)),
                Segment::Raw(r) => s.push_str(r),
            }
        }
        if self.trailing_slash || self.segments.is_empty() {
            s.push('/');
        }
        if let Some(i) = self.query {
            s.push('?');
            s.push_str(pick(QUERIES, i));
        }
        if let Some(i) = self.fragment {
            s.push('#');
            s.push_str(pick(FRAGMENTS, i));
        }
    }
}

#[derive(Arbitrary, Debug)]
enum UrlSpec {
    /// A URL near one of the policy's targets: its scheme, its host (a
    /// subdomain of a wildcard, any vocabulary host for `*`), its port or
    /// another, its path and more segments.
    FromTarget {
        index: u8,
        upper_scheme: bool,
        label: u8,
        other_host: Option<u8>,
        port: Option<PortSpec>,
        keep_path: bool,
        userinfo: Option<u8>,
        tail: Tail,
    },
    Parts {
        scheme: u8,
        sep: u8,
        userinfo: Option<u8>,
        host: UrlHostSpec,
        port: Option<PortSpec>,
        tail: Tail,
    },
    Raw(String),
}

impl UrlSpec {
    /// The URL text; whether `hunter2` appears only where redaction must
    /// hide it (password, query value, fragment); and the capability the
    /// URL's scheme suggests (`None`: no special scheme).
    fn text(&self, targets: &[Target]) -> (String, bool, Option<bool>) {
        match self {
            UrlSpec::Raw(s) => (s.clone(), false, None),
            UrlSpec::FromTarget {
                index,
                upper_scheme,
                label,
                other_host,
                port,
                keep_path,
                userinfo,
                tail,
            } => {
                if targets.is_empty() {
                    return (String::new(), false, None);
                }
                let t = &targets[*index as usize % targets.len()];
                let scheme = t.scheme.to_string();
                let mut s = if *upper_scheme {
                    scheme.to_uppercase()
                } else {
                    scheme
                };
                s.push_str("://");
                if let Some(u) = userinfo {
                    s.push_str(pick(USERINFO, *u));
                }
                let host = match (&t.host, other_host) {
                    (_, Some(h)) => pick_host(*h).to_string(),
                    (HostPattern::Any, None) => pick(DOMAINS, *label).to_string(),
                    (HostPattern::Wildcard(suffix), None) => {
                        format!("{}.{suffix}", pick(LABELS, *label))
                    }
                    (h, None) => h.to_string(),
                };
                s.push_str(&host);
                match (port, t.port) {
                    (Some(p), _) => s.push_str(&p.text()),
                    (None, PortPattern::Any) => s.push_str(":8080"),
                    (None, PortPattern::Exact(p)) => {
                        let _ = write!(s, ":{p}");
                    }
                }
                tail.push(&mut s, if *keep_path { &t.path } else { "" });
                let secret = only_hidden_secrets(&s, *userinfo, tail);
                (
                    s,
                    secret,
                    Some(t.scheme.capability() == Capability::Websocket),
                )
            }
            UrlSpec::Parts {
                scheme,
                sep,
                userinfo,
                host,
                port,
                tail,
            } => {
                let scheme = pick(URL_SCHEMES, *scheme);
                let mut s = format!("{scheme}{}", pick(SEPARATORS, *sep));
                if let Some(u) = userinfo {
                    s.push_str(pick(USERINFO, *u));
                }
                match host {
                    UrlHostSpec::Host(h) => s.push_str(&h.text()),
                    UrlHostSpec::Sub(l, d) => {
                        let _ = write!(s, "{}.{}", pick(LABELS, *l), pick(DOMAINS, *d));
                    }
                    UrlHostSpec::Upper(d) => s.push_str(&pick(DOMAINS, *d).to_uppercase()),
                    UrlHostSpec::TrailingDot(d) => {
                        let _ = write!(s, "{}.", pick(DOMAINS, *d));
                    }
                }
                if let Some(p) = port {
                    s.push_str(&p.text());
                }
                tail.push(&mut s, "");
                // Only the special schemes have an authority without `//`.
                let special = SPECIAL.contains(&scheme);
                let secret = special && only_hidden_secrets(&s, *userinfo, tail);
                let ws = special.then(|| scheme.to_ascii_lowercase().starts_with("ws"));
                (s, secret, ws)
            }
        }
    }
}

/// Whether `url` contains `hunter2`, and only where the userinfo, query and
/// fragment vocabulary put it (a fuzzed host or segment may spell it too,
/// and a path is shown as it is).
fn only_hidden_secrets(url: &str, userinfo: Option<u8>, tail: &Tail) -> bool {
    let hidden = userinfo.map_or(0, |i| pick(USERINFO, i).matches("hunter2").count())
        + tail.hidden_secrets();
    hidden > 0 && url.matches("hunter2").count() == hidden
}

/// A host from the domain or IP vocabulary.
fn pick_host(i: u8) -> &'static str {
    let i = i as usize % (DOMAINS.len() + IPS.len());
    if i < DOMAINS.len() {
        DOMAINS[i]
    } else {
        IPS[i - DOMAINS.len()]
    }
}

#[derive(Arbitrary, Debug)]
enum AddrSpec {
    Vocab(u8),
    Mapped(u8),
    Nat64(u8),
    V4(u32),
    V6(u128),
}

impl AddrSpec {
    fn addr(&self) -> IpAddr {
        let vocab = |i: u8| -> IpAddr { pick(ADDRS, i).parse().expect("vocabulary address") };
        let embed = |i: u8, nat64: bool| -> IpAddr {
            match vocab(i) {
                IpAddr::V4(a) if nat64 => IpAddr::V6(Ipv6Addr::from(
                    (0x64_ff9b_u128 << 96) | u128::from(u32::from(a)),
                )),
                IpAddr::V4(a) => IpAddr::V6(a.to_ipv6_mapped()),
                v6 => v6,
            }
        };
        match self {
            AddrSpec::Vocab(i) => vocab(*i),
            AddrSpec::Mapped(i) => embed(*i, false),
            AddrSpec::Nat64(i) => embed(*i, true),
            AddrSpec::V4(n) => IpAddr::V4(Ipv4Addr::from(*n)),
            AddrSpec::V6(n) => IpAddr::V6(Ipv6Addr::from(*n)),
        }
    }
}

#[derive(Arbitrary, Debug)]
enum Word {
    Vocab(u8),
    Raw(String),
}

/// One fuzz input.
#[derive(Arbitrary, Debug)]
pub struct Input {
    targets: Vec<TargetSpec>,
    url: UrlSpec,
    /// Use the other capability than the URL's scheme suggests when this is
    /// 7 mod 8 (and for URLs without a special scheme, when it is odd).
    capability: u8,
    method: Option<Word>,
    headers: Vec<(Word, Word)>,
    subprotocols: Vec<Word>,
    answers: Option<Vec<AddrSpec>>,
}

fn word(w: &Word, vocab: &[&str]) -> String {
    match w {
        Word::Vocab(i) => pick(vocab, *i).to_string(),
        Word::Raw(s) => s.clone(),
    }
}

/// Runs one input through compile and authorize, checking every invariant
/// (panics on a violation). Returns the decision's code, or why nothing was
/// authorized (in parentheses).
pub fn run(input: &Input) -> String {
    let targets = &input.targets[..input.targets.len().min(6)];
    if targets.is_empty() {
        return "(no targets)".into();
    }
    // Entries that do not parse on their own (a fuzzed host, say) are left
    // out, and so are duplicates, so one bad entry does not void the policy.
    const HEAD: &str = "[plugin]\nname = \"fuzz\"\nversion = \"1.0.0\"\n";
    let mut manifest = String::from(HEAD);
    let mut grant = String::from("plugin = \"fuzz\"\n");
    let mut seen = Vec::new();
    for t in targets {
        let Ok(canonical) = Target::parse(&t.url()) else {
            continue;
        };
        if seen.contains(&canonical) {
            continue;
        }
        let mut one = String::from(HEAD);
        t.manifest_entry(&mut one);
        if Manifest::parse("plugin.toml", &one).value.is_none() {
            continue;
        }
        seen.push(canonical);
        manifest.push_str(&one[HEAD.len()..]);
        let mut g = String::from("plugin = \"fuzz\"\n");
        t.grant_entry(&mut g);
        if Grant::parse("grant.toml", &g).value.is_some() {
            t.grant_entry(&mut grant);
        }
    }
    if seen.is_empty() {
        return "(no valid target)".into();
    }
    let Some(m) = Manifest::parse("plugin.toml", &manifest).value else {
        return "(manifest rejected)".into();
    };
    let Some(g) = Grant::parse("grant.toml", &grant).value else {
        return "(grant rejected)".into();
    };
    let Some(policy) = compile(&m, Some(&g)).policy else {
        return "(compile failed)".into();
    };
    if policy.granted().next().is_none() {
        return "(nothing granted)".into();
    }
    let authz = Authorizer::new(&policy);

    let (url, secret, ws) = input.url.text(&seen);
    let websocket = match ws {
        Some(ws) => ws != (input.capability % 8 == 7),
        None => input.capability % 2 == 1,
    };
    let method = input.method.as_ref().map(|w| word(w, ASK_METHODS));
    let headers: Vec<(String, String)> = input
        .headers
        .iter()
        .take(4)
        .map(|(n, v)| (word(n, ASK_HEADERS), word(v, HEADER_VALUES)))
        .collect();
    let subprotocols: Vec<String> = input
        .subprotocols
        .iter()
        .take(3)
        .map(|w| word(w, SUBPROTOCOLS))
        .collect();
    let answers: Option<Vec<IpAddr>> = input
        .answers
        .as_ref()
        .map(|a| a.iter().take(4).map(AddrSpec::addr).collect());

    let req = Request {
        capability: if websocket {
            Capability::Websocket
        } else {
            Capability::Request
        },
        url: &url,
        method: method.as_deref(),
        headers: &headers,
        subprotocols: &subprotocols,
        credentials: &[],
    };
    let d = authz.authorize(&req, answers.as_deref());

    // Deterministic, and the runtime's two-step path agrees.
    assert_eq!(
        authz.authorize(&req, answers.as_deref()),
        d,
        "authorize is not deterministic"
    );
    match authz.prepare(&req) {
        Err(e) => assert_eq!(e, d, "prepare and authorize disagree"),
        Ok(p) => {
            let two_step = match (p.destination(), answers.as_deref()) {
                (Destination::Name(_), None) => p.allow_unresolved(),
                (Destination::Name(_), Some(a)) => p.check_addresses(a),
                (Destination::Ip(ip), _) => p.check_addresses(&[*ip]),
                (Destination::Localhost, _) => p.check_addresses(&[
                    IpAddr::V4(Ipv4Addr::LOCALHOST),
                    IpAddr::V6(Ipv6Addr::LOCALHOST),
                ]),
            };
            assert_eq!(
                two_step, d,
                "prepare + check_addresses and authorize disagree"
            );
        }
    }

    // Decisions show the URL as `redact_url` does, and never the secret.
    assert_eq!(d.url(), redact::redact_url(&url));
    if secret {
        assert!(
            !d.url().contains("hunter2"),
            "secret in decision URL: {}",
            d.url()
        );
        assert!(
            !d.message().contains("hunter2"),
            "secret in decision message: {}",
            d.message()
        );
    }

    if !d.is_allowed() {
        return d.code.as_str().to_string();
    }
    let ask = Ask {
        websocket,
        url: &url,
        method: method.as_deref(),
        headers: &headers,
        subprotocols: &subprotocols,
        answers: answers.as_deref(),
    };
    let ctx = || {
        format!("{url:?} {ask:?}\n--- manifest\n{manifest}\n--- grant\n{grant}\n--- decision {d:?}")
    };
    let rule = d.rule().expect("an allow names its rule");
    let entry = policy
        .entries
        .iter()
        .find(|e| e.id == rule)
        .unwrap_or_else(|| panic!("allowed by unknown rule {rule}\n{}", ctx()));
    assert_eq!(
        entry.status,
        Status::Granted,
        "allowed by a rule that is not granted\n{}",
        ctx()
    );
    let ru = reference::parse_url(&ask).unwrap_or_else(|why| {
        panic!(
            "allowed, but the reference says no entry can allow it: {why}\n{}",
            ctx()
        )
    });
    let re = RefEntry::from_ir(entry);
    if let Err(why) = reference::permits(&re, &ru, &ask) {
        let other = policy
            .granted()
            .find(|e| reference::permits(&RefEntry::from_ir(e), &ru, &ask).is_ok());
        panic!(
            "allowed by {rule}, which does not permit it: {why}\n(another granted entry that would: {:?})\n{}",
            other.map(|e| &e.id),
            ctx()
        );
    }
    match reference::effective_addresses(&ru, answers.as_deref()) {
        None => assert!(!d.addresses_checked && d.addresses.is_empty(), "{}", ctx()),
        Some(addrs) => {
            let want: Vec<SocketAddr> = addrs
                .iter()
                .map(|a| SocketAddr::new(reference::canon(*a), ru.port))
                .collect();
            assert!(d.addresses_checked, "{}", ctx());
            assert_eq!(d.addresses, want, "connect addresses\n{}", ctx());
        }
    }
    d.code.as_str().to_string()
}
