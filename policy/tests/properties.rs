//! Property tests for the target grammar, the compiler and the authorizer.
//!
//! * target normalization is idempotent and its display stable;
//! * compiling is independent of entry order, list order and spelling;
//! * the indexed [`Authorizer`] agrees with a deliberately simple reference
//!   matcher (a linear scan with plain string checks) written here;
//! * [`Target::contains`] is reflexive, transitive, and sound with respect to
//!   URL matching;
//! * containment of whole permissions (methods, headers, networks included)
//!   is a partial order: reflexive, transitive, antisymmetric up to canonical
//!   equality;
//! * a grant never widens: whatever compile(manifest, grant) allows,
//!   compile(manifest, approve-all) allows too, with and without DNS answers;
//! * redaction never leaks userinfo, query values or fragments, in redacted
//!   URLs or in decision messages.
//!
//! Case counts are tuned so the whole file runs in well under a minute in a
//! debug build; raise `PROPTEST_CASES` locally for a deeper run.

use netgrant_policy::PathReadings;
use netgrant_policy::UrlHost;
use netgrant_policy::{
    compile, load_policy, Authorizer, Capability, Code, Grant, Manifest, Request, Target,
};
use proptest::prelude::*;
use proptest::sample::{select, subsequence};
use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// `PROPTEST_CASES` overrides `default` when set (for deeper local runs).
fn cases(default: u32) -> ProptestConfig {
    let n = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default);
    ProptestConfig {
        cases: n,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// A tiny deterministic shuffler (splitmix64), so one generated seed drives
/// every permutation and spelling choice in a test case.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn shuffle<T>(&mut self, v: &mut [T]) {
        for i in (1..v.len()).rev() {
            let j = self.below(i + 1);
            v.swap(i, j);
        }
    }

    fn pick<'a>(&mut self, v: &'a [&'a str]) -> &'a str {
        v[self.below(v.len())]
    }
}

fn toml_list(items: &[String]) -> String {
    let quoted: Vec<String> = items.iter().map(|s| format!("\"{s}\"")).collect();
    format!("[{}]", quoted.join(", "))
}

// ---------------------------------------------------------------------------
// 1. Target normalization is idempotent
// ---------------------------------------------------------------------------

fn scheme_spelling() -> impl Strategy<Value = (&'static str, u16)> {
    select(vec![
        ("ws", 80),
        ("wss", 443),
        ("http", 80),
        ("https", 443),
        ("WS", 80),
        ("Wss", 443),
        ("HTTP", 80),
        ("hTTpS", 443),
    ])
}

fn label() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => "[a-cA-C0-9]{1,4}",
        2 => "[a-c][a-c0-9-]{0,3}[a-c]",
        1 => select(vec!["bücher", "MÜNCHEN", "xn--bcher-kva", "Api", "v1"]).prop_map(String::from),
    ]
}

fn domain() -> impl Strategy<Value = String> {
    (
        prop::collection::vec(label(), 0..4),
        select(vec![
            "com",
            "net",
            "Example",
            "localhost",
            "co.UK",
            "github.io",
            "internal",
        ]),
        any::<bool>(),
    )
        .prop_map(|(labels, tld, dot)| {
            let mut s = String::new();
            for l in labels {
                s.push_str(&l);
                s.push('.');
            }
            s.push_str(tld);
            if dot {
                s.push('.');
            }
            s
        })
}

fn ipv4_literal() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => (1u8..=223, any::<u8>(), any::<u8>(), 1u8..=254)
            .prop_filter("cloud metadata endpoints cannot be written", |(a, b, c, d)| {
                !matches!((a, b, c, d), (169, 254, 169, 254) | (169, 254, 170, 2) | (100, 100, 100, 200))
            })
            .prop_map(|(a, b, c, d)| format!("{a}.{b}.{c}.{d}")),
        2 => select(vec![
            "127.0.0.1", "10.0.0.5", "93.184.215.14", "192.168.1.1", "172.16.0.1",
            "100.64.0.1", "169.254.1.1", "0x7f.0.0.1", "2130706433", "127.1", "010.0.0.5",
        ])
        .prop_map(String::from),
    ]
}

fn ipv6_literal() -> impl Strategy<Value = String> {
    prop_oneof![
        2 => (0x2000u16..=0x3fff, prop::array::uniform7(any::<u16>()), any::<bool>()).prop_map(
            |(first, rest, upper)| {
                let mut s = format!("[{first:x}");
                for r in rest {
                    let _ = write!(s, ":{r:x}");
                }
                s.push(']');
                if upper {
                    s.to_ascii_uppercase()
                } else {
                    s
                }
            }
        ),
        3 => select(vec![
            "[::1]", "[0:0:0:0:0:0:0:1]", "[2001:db8::1]", "[fe80::1]", "[FD12:3456::1]",
            "[2606:4700:4700::1111]", "[::ffff:127.0.0.1]", "[::ffff:7f00:1]",
            "[::FFFF:10.0.0.5]", "[64:ff9b::a00:5]", "[64:ff9b::93.184.215.14]", "[2002:c000:204::1]",
        ])
        .prop_map(String::from),
    ]
}

fn host_spelling() -> impl Strategy<Value = String> {
    prop_oneof![
        5 => domain(),
        3 => domain().prop_map(|d| format!("*.{d}")),
        1 => Just("*".to_string()),
        2 => ipv4_literal(),
        2 => ipv6_literal(),
    ]
}

fn path_spelling() -> impl Strategy<Value = Option<String>> {
    let segment = select(vec![
        "a", "B", "v1", "v10", ".", "..", "%7e", "%41", "%7E%2d", "é", "{x}", "a.b", "..c", "~", "",
    ]);
    prop::option::of(
        (prop::collection::vec(segment, 0..5), any::<bool>()).prop_map(|(segs, trailing)| {
            let mut s = format!("/{}", segs.join("/"));
            if trailing && !s.ends_with('/') {
                s.push('/');
            }
            s
        }),
    )
}

/// Port spellings; `default` is filled in from the scheme when the target is built.
#[derive(Clone, Debug)]
enum PortSpelling {
    Omitted,
    Default,
    LeadingZeros,
    Number(u16),
    Any,
}

fn port_spelling() -> impl Strategy<Value = PortSpelling> {
    prop_oneof![
        3 => Just(PortSpelling::Omitted),
        1 => Just(PortSpelling::Default),
        1 => Just(PortSpelling::LeadingZeros),
        2 => (1u16..=65535).prop_map(PortSpelling::Number),
        1 => Just(PortSpelling::Any),
    ]
}

fn target_spelling() -> impl Strategy<Value = String> {
    (
        scheme_spelling(),
        host_spelling(),
        port_spelling(),
        path_spelling(),
    )
        .prop_map(|((scheme, default), host, port, path)| {
            let port = match port {
                PortSpelling::Omitted => String::new(),
                PortSpelling::Default => format!(":{default}"),
                PortSpelling::LeadingZeros => format!(":0{default}"),
                PortSpelling::Number(n) => format!(":{n}"),
                PortSpelling::Any => ":*".to_string(),
            };
            format!("{scheme}://{host}{port}{}", path.unwrap_or_default())
        })
}

proptest! {
    #![proptest_config(cases(4000))]

    /// Every well-formed generated target parses, and its display is a fixed
    /// point: parsing the display gives the same target and the same text.
    #[test]
    fn target_normalization_is_idempotent(raw in target_spelling()) {
        let t = match Target::parse(&raw) {
            Ok(t) => t,
            Err(e) => return Err(TestCaseError::fail(format!("{raw} rejected: {}", e.message))),
        };
        let shown = t.to_string();
        let again = Target::parse(&shown)
            .map_err(|e| TestCaseError::fail(format!("{raw} displays as {shown}, which is rejected: {}", e.message)))?;
        prop_assert_eq!(&again, &t, "{} -> {}", raw, shown);
        prop_assert_eq!(again.to_string(), shown.clone());
        // The canonical spelling is lowercase up to the path and never spells
        // out the default port.
        let authority = shown.split("://").nth(1).unwrap().split('/').next().unwrap();
        prop_assert_eq!(authority.to_ascii_lowercase(), authority);
        let default = format!(":{}", t.scheme.default_port());
        prop_assert!(!authority.ends_with(&default), "{}", shown);
    }

    /// IPv4-mapped and NAT64 IPv6 literals normalize to the embedded IPv4
    /// literal; an explicit default port equals an omitted one.
    #[test]
    fn equivalent_spellings_normalize_alike(
        (a, b, c, d) in (1u8..=223, any::<u8>(), any::<u8>(), 1u8..=254)
            .prop_filter("metadata", |(a, b, c, d)| !matches!((a, b, c, d), (169, 254, 169, 254) | (169, 254, 170, 2) | (100, 100, 100, 200))),
        (scheme, default) in scheme_spelling(),
        path in path_spelling(),
    ) {
        let path = path.unwrap_or_default();
        let v4 = Target::parse(&format!("{scheme}://{a}.{b}.{c}.{d}{path}")).unwrap();
        let mapped = Target::parse(&format!("{scheme}://[::ffff:{a}.{b}.{c}.{d}]:{default}{path}")).unwrap();
        let hex = Ipv4Addr::new(a, b, c, d).to_bits();
        let nat64 = Target::parse(&format!("{scheme}://[64:ff9b::{:x}:{:x}]{path}", hex >> 16, hex & 0xffff)).unwrap();
        prop_assert_eq!(&mapped, &v4);
        prop_assert_eq!(&nat64, &v4);
        prop_assert_eq!(mapped.to_string(), v4.to_string());
    }
}

// ---------------------------------------------------------------------------
// 2. compile(x) == compile(shuffled x)
// ---------------------------------------------------------------------------

/// Canonical hosts and their alternative spellings (index 0 is the plain one).
const C_HOSTS: &[&[&str]] = &[
    &["api.example.com", "API.Example.com", "api.example.com."],
    &["*.example.com", "*.EXAMPLE.com", "*.example.com."],
    &["*"],
    &["10.1.2.3", "[::ffff:10.1.2.3]", "[::ffff:a01:203]"],
    &["[fd12:3456:789a::1]", "[FD12:3456:789A:0:0:0:0:1]"],
    &["localhost", "LocalHost"],
    &["bücher.example", "xn--bcher-kva.example"],
];
/// Paths and their alternative spellings; `narrow` is a path inside it that
/// no request uses.
const C_PATHS: &[(&[&str], &str)] = &[
    (&["/", "", "/./", "/x/.."], "/narrow"),
    (&["/v1/", "/v1/./", "/x/../v1/"], "/v1/narrow"),
    (&["/api", "/%61pi", "/x/../api"], "/api/narrow"),
    (&["/a/b", "/a/./b", "/%61/b"], "/a/b/narrow"),
];
const C_METHODS: &[&str] = &["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"];
const C_HEADERS: &[&[&str]] = &[
    &["X-Audit-Log-Reason", "x-audit-log-reason"],
    &["x-request-id", "X-Request-ID"],
    &["X-Trace", "x-trace"],
];
const C_NETWORKS: &[&[&str]] = &[
    &["10.1.0.0/16", "10.1.2.3/16"],
    &["192.168.1.0/24", "192.168.1.77/24"],
    &["fd12:3456:789a::/48", "FD12:3456:789A:0::/48"],
    &["100.64.1.0/24", "::ffff:100.64.1.0/120"],
];
const C_SUBPROTOCOLS: &[&str] = &["json", "v2.proto", "chat"];

#[derive(Clone, Debug)]
enum GrantKind {
    None,
    Exact { broad: bool },
    NarrowMethods(Vec<usize>),
    NarrowPath,
    NarrowHeaders(Vec<usize>),
    NarrowNetworks(Vec<usize>),
}

#[derive(Clone, Debug)]
struct ReqSpec {
    ws: bool,
    tls: bool,
    host: usize,
    port: usize,
    path: usize,
    methods: Option<Vec<usize>>,
    headers: Vec<usize>,
    networks: Vec<usize>,
    subprotocols: Vec<usize>,
    reason: bool,
    grant: GrantKind,
}

impl ReqSpec {
    fn key(&self) -> (bool, bool, usize, usize, usize) {
        (self.ws, self.tls, self.host, self.port, self.path)
    }
}

fn req_spec() -> impl Strategy<Value = ReqSpec> {
    let idx = |n: usize| subsequence((0..n).collect::<Vec<_>>(), 0..=n);
    (
        (
            any::<bool>(),
            any::<bool>(),
            0..C_HOSTS.len(),
            0..3usize,
            0..C_PATHS.len(),
        ),
        prop::option::weighted(0.8, subsequence((0..7).collect::<Vec<_>>(), 1..=7)),
        idx(C_HEADERS.len()),
        idx(C_NETWORKS.len()),
        idx(C_SUBPROTOCOLS.len()),
        any::<bool>(),
        (0..6usize, any::<bool>(), any::<u64>()),
    )
        .prop_map(
            |(
                (ws, tls, host, port, path),
                methods,
                headers,
                networks,
                subprotocols,
                reason,
                (g, broad, pick),
            )| {
                let sub = |v: &Vec<usize>| -> Vec<usize> {
                    // A deterministic, possibly empty subset of `v`.
                    v.iter()
                        .enumerate()
                        .filter(|(i, _)| pick >> (i % 64) & 1 == 1)
                        .map(|(_, x)| *x)
                        .collect()
                };
                let grant = match g {
                    0 => GrantKind::None,
                    1 | 2 => GrantKind::Exact { broad },
                    3 => match &methods {
                        Some(m) if !ws && !sub(m).is_empty() => GrantKind::NarrowMethods(sub(m)),
                        _ => GrantKind::Exact { broad },
                    },
                    4 => GrantKind::NarrowPath,
                    _ if pick & 1 == 0 => GrantKind::NarrowHeaders(sub(&headers)),
                    _ => GrantKind::NarrowNetworks(sub(&networks)),
                };
                ReqSpec {
                    ws,
                    tls,
                    host,
                    port,
                    path,
                    methods: if ws { None } else { methods },
                    headers,
                    networks,
                    subprotocols: if ws { subprotocols } else { Vec::new() },
                    reason,
                    grant,
                }
            },
        )
}

fn plan() -> impl Strategy<Value = (Vec<ReqSpec>, bool, u64)> {
    (
        prop::collection::vec(req_spec(), 1..8),
        any::<bool>(),
        any::<u64>(),
    )
        .prop_map(|(mut v, extra, seed)| {
            let mut seen = std::collections::HashSet::new();
            v.retain(|r| seen.insert(r.key()));
            (v, extra, seed)
        })
}

/// Spells a target; `rng == None` picks the plain spelling.
fn spell_target(r: &ReqSpec, path: &str, rng: &mut Option<Rng>) -> String {
    let mut choose = |opts: &[&str]| -> String {
        match rng {
            Some(g) => g.pick(opts).to_string(),
            None => opts[0].to_string(),
        }
    };
    let scheme = match (r.ws, r.tls) {
        (true, true) => choose(&["wss", "WSS"]),
        (true, false) => choose(&["ws", "Ws"]),
        (false, true) => choose(&["https", "HTTPS"]),
        (false, false) => choose(&["http", "HttP"]),
    };
    let default = if r.tls { "443" } else { "80" };
    let host = choose(C_HOSTS[r.host]);
    let port = match r.port {
        0 => choose(&["", &format!(":{default}")]),
        1 => ":8443".to_string(),
        _ => ":*".to_string(),
    };
    let path = if path.is_empty() {
        choose(C_PATHS[r.path].0)
    } else {
        path.to_string()
    };
    format!("{scheme}://{host}{port}{path}")
}

fn spell_list(table: &[&[&str]], idx: &[usize], rng: &mut Option<Rng>) -> Vec<String> {
    let mut out: Vec<String> = idx
        .iter()
        .map(|&i| match rng {
            Some(g) => g.pick(table[i]).to_string(),
            None => table[i][0].to_string(),
        })
        .collect();
    if let Some(g) = rng {
        g.shuffle(&mut out);
    }
    out
}

fn single(items: &'static [&'static str]) -> Vec<&'static [&'static str]> {
    items.iter().map(std::slice::from_ref).collect()
}

fn render(plan: &[ReqSpec], extra: bool, mut rng: Option<Rng>) -> (String, String) {
    let methods_table = single(C_METHODS);
    let subprotocols_table = single(C_SUBPROTOCOLS);
    let mut order: Vec<usize> = (0..plan.len()).collect();
    if let Some(g) = &mut rng {
        g.shuffle(&mut order);
    }
    let mut manifest = String::from("[plugin]\nname = \"prop\"\nversion = \"1.0.0\"\n");
    for &i in &order {
        let r = &plan[i];
        let table = if r.ws {
            "host_api.websocket"
        } else {
            "host_api.request"
        };
        let _ = writeln!(
            manifest,
            "\n[[{table}]]\nurl = \"{}\"",
            spell_target(r, "", &mut rng)
        );
        match &r.methods {
            Some(m) => {
                let _ = writeln!(
                    manifest,
                    "methods = {}",
                    toml_list(&spell_list(&methods_table, m, &mut rng))
                );
            }
            None if !r.ws => manifest.push_str("methods = \"*\"\n"),
            None => {}
        }
        if !r.headers.is_empty() {
            let _ = writeln!(
                manifest,
                "headers = {}",
                toml_list(&spell_list(C_HEADERS, &r.headers, &mut rng))
            );
        }
        if !r.networks.is_empty() {
            let _ = writeln!(
                manifest,
                "networks = {}",
                toml_list(&spell_list(C_NETWORKS, &r.networks, &mut rng))
            );
        }
        if !r.subprotocols.is_empty() {
            let _ = writeln!(
                manifest,
                "subprotocols = {}",
                toml_list(&spell_list(&subprotocols_table, &r.subprotocols, &mut rng))
            );
        }
        if r.reason {
            let _ = writeln!(manifest, "reason = \"reason for entry {i}\"");
        }
    }

    let mut grant = String::from("plugin = \"prop\"\n");
    let mut entries: Vec<String> = Vec::new();
    for r in plan {
        let table = if r.ws {
            "host_api.websocket"
        } else {
            "host_api.request"
        };
        let mut e = String::new();
        let narrow_path = C_PATHS[r.path].1;
        let url = match r.grant {
            GrantKind::None => continue,
            GrantKind::NarrowPath => spell_target(r, narrow_path, &mut rng),
            _ => spell_target(r, "", &mut rng),
        };
        let _ = writeln!(e, "\n[[{table}]]\nurl = \"{url}\"");
        match &r.grant {
            GrantKind::NarrowMethods(m) => {
                let _ = writeln!(
                    e,
                    "methods = {}",
                    toml_list(&spell_list(&methods_table, m, &mut rng))
                );
            }
            GrantKind::NarrowHeaders(h) => {
                let _ = writeln!(
                    e,
                    "headers = {}",
                    toml_list(&spell_list(C_HEADERS, h, &mut rng))
                );
            }
            GrantKind::NarrowNetworks(n) => {
                let _ = writeln!(
                    e,
                    "networks = {}",
                    toml_list(&spell_list(C_NETWORKS, n, &mut rng))
                );
            }
            _ => {}
        }
        // `*` hosts are broad; approve them unless the plan says not to (then
        // the entry is dropped and listed under `ignored`).
        if r.host == 2 && !matches!(r.grant, GrantKind::Exact { broad: false }) {
            e.push_str("broad = true\n");
        }
        entries.push(e);
    }
    if extra {
        // Granted but not requested: listed under `ignored`.
        entries.push(
            "\n[[host_api.request]]\nurl = \"https://unrequested.example/\"\nmethods = [\"GET\"]\n"
                .into(),
        );
        entries.push("\n[[host_api.websocket]]\nurl = \"wss://unrequested.example/\"\n".into());
    }
    if let Some(g) = &mut rng {
        g.shuffle(&mut entries);
    }
    for e in entries {
        grant.push_str(&e);
    }
    (manifest, grant)
}

fn compile_texts(manifest: &str, grant: &str) -> Result<netgrant_policy::CompiledPolicy, String> {
    let m = Manifest::parse("plugin.toml", manifest);
    let Some(m) = m.value else {
        return Err(format!(
            "manifest rejected: {:?}\n{manifest}",
            m.diagnostics
        ));
    };
    let g = Grant::parse("grant.toml", grant);
    let Some(g) = g.value else {
        return Err(format!("grant rejected: {:?}\n{grant}", g.diagnostics));
    };
    let c = compile(&m, Some(&g));
    c.policy
        .ok_or_else(|| format!("compile failed: {:?}\n{manifest}\n{grant}", c.diagnostics))
}

proptest! {
    #![proptest_config(cases(300))]

    /// Semantically equal inputs (entries, methods, headers, networks and
    /// subprotocols in any order, targets and networks in any spelling)
    /// compile to byte-identical IR, which the loader accepts back.
    #[test]
    fn compile_is_order_and_spelling_independent((plan, extra, seed) in plan()) {
        let (m0, g0) = render(&plan, extra, None);
        let (m1, g1) = render(&plan, extra, Some(Rng(seed)));
        let a = compile_texts(&m0, &g0).map_err(TestCaseError::fail)?;
        let b = compile_texts(&m1, &g1).map_err(TestCaseError::fail)?;
        let (ja, jb) = (a.to_json(), b.to_json());
        prop_assert!(ja == jb, "IR differs\n--- plain\n{}\n{}\n--- shuffled\n{}\n{}\n--- IR plain\n{}\n--- IR shuffled\n{}", m0, g0, m1, g1, ja, jb);
        let loaded = load_policy("ir.json", &ja).map_err(|d| TestCaseError::fail(format!("{d:?}")))?;
        prop_assert_eq!(loaded.to_json(), ja);
    }
}

// ---------------------------------------------------------------------------
// 3. The authorizer agrees with a simple reference matcher
// ---------------------------------------------------------------------------

#[derive(Clone, Debug, PartialEq, Eq)]
enum RHost {
    Any,
    Domain(String),
    Wild(String),
    Ip(IpAddr),
}

impl RHost {
    fn spell(&self) -> String {
        match self {
            RHost::Any => "*".into(),
            RHost::Domain(d) => d.clone(),
            RHost::Wild(s) => format!("*.{s}"),
            RHost::Ip(IpAddr::V4(a)) => a.to_string(),
            RHost::Ip(IpAddr::V6(a)) => format!("[{a}]"),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Class {
    Public,
    NonPublic,
    Never,
}

/// The IP literals of the small alphabet, classified by hand.
fn ip_pool() -> Vec<(IpAddr, Class)> {
    use Class::*;
    let v4 = |a, b, c, d| IpAddr::V4(Ipv4Addr::new(a, b, c, d));
    vec![
        (v4(127, 0, 0, 1), NonPublic),
        (v4(10, 0, 0, 5), NonPublic),
        (v4(192, 168, 1, 1), NonPublic),
        (v4(93, 184, 215, 14), Public),
        (v4(8, 8, 8, 8), Public),
        (v4(169, 254, 169, 254), Never),
        (v4(0, 0, 0, 0), Never),
        (IpAddr::V6(Ipv6Addr::LOCALHOST), NonPublic),
        (IpAddr::V6("fd00::5".parse().unwrap()), NonPublic),
        (IpAddr::V6("2606:4700::1111".parse().unwrap()), Public),
    ]
}

/// A target of the reference model. `port: None` is `*`.
#[derive(Clone, Debug)]
struct RTarget {
    scheme: &'static str,
    host: RHost,
    port: Option<u16>,
    path: String,
    /// Request methods; `None` for websocket targets.
    methods: Option<Vec<&'static str>>,
}

fn is_ws(scheme: &str) -> bool {
    scheme.starts_with("ws")
}

fn default_port(scheme: &str) -> u16 {
    if matches!(scheme, "https" | "wss") {
        443
    } else {
        80
    }
}

impl RTarget {
    fn spell(&self) -> String {
        let port = match self.port {
            None => ":*".to_string(),
            Some(p) => format!(":{p}"),
        };
        format!("{}://{}{port}{}", self.scheme, self.host.spell(), self.path)
    }

    fn canonical(&self) -> String {
        Target::parse(&self.spell()).unwrap().to_string()
    }
}

const R_SCHEMES: &[&str] = &["http", "https", "ws", "wss"];
const R_DOMAINS: &[&str] = &[
    "example.com",
    "a.example.com",
    "b.a.example.com",
    "localhost",
    "x.org",
];
const R_SUFFIXES: &[&str] = &["example.com", "a.example.com", "localhost"];
const R_PATHS: &[&str] = &["/", "/v1", "/v1/", "/v1/a", "/a/"];
const R_METHODS: &[&str] = &["GET", "POST", "PUT", "DELETE"];

fn r_host() -> impl Strategy<Value = RHost> {
    let ips: Vec<IpAddr> = ip_pool()
        .into_iter()
        .filter(|(_, c)| *c != Class::Never)
        .map(|(ip, _)| ip)
        .collect();
    prop_oneof![
        3 => select(R_DOMAINS).prop_map(|d| RHost::Domain(d.to_string())),
        3 => select(R_SUFFIXES).prop_map(|s| RHost::Wild(s.to_string())),
        1 => Just(RHost::Any),
        2 => select(ips).prop_map(RHost::Ip),
    ]
}

fn r_target() -> impl Strategy<Value = RTarget> {
    (
        select(R_SCHEMES),
        r_host(),
        select(vec![None, Some(0u16), Some(8080)]),
        select(R_PATHS),
        subsequence(R_METHODS.to_vec(), 1..=R_METHODS.len()),
    )
        .prop_map(|(scheme, host, port, path, methods)| RTarget {
            scheme,
            host,
            port: port.map(|p| if p == 0 { default_port(scheme) } else { p }),
            path: path.to_string(),
            methods: (!is_ws(scheme)).then_some(methods),
        })
}

/// How a requested target is granted: not at all, as requested, or narrowed.
#[derive(Clone, Debug)]
enum RGrant {
    None,
    Exact,
    /// Narrow host/port/path by the given choices, and keep only the methods
    /// selected by the mask (at least one).
    Narrow {
        sub: &'static str,
        port: u16,
        path: &'static str,
        mask: u8,
    },
}

fn r_grant() -> impl Strategy<Value = RGrant> {
    prop_oneof![
        1 => Just(RGrant::None),
        2 => Just(RGrant::Exact),
        2 => (select(vec!["", "q.", "a."]), select(vec![443u16, 8080]), select(vec!["", "z", "/z", "/"]), any::<u8>())
            .prop_map(|(sub, port, path, mask)| RGrant::Narrow { sub, port, path, mask }),
    ]
}

fn narrow(t: &RTarget, sub: &str, port: u16, extra: &str, mask: u8) -> RTarget {
    let host = match (&t.host, sub) {
        (RHost::Any, "") => RHost::Domain("a.example.com".into()),
        (RHost::Any, s) => RHost::Wild(format!("{s}example.com")),
        (RHost::Wild(s), "") => RHost::Domain(format!("q.{s}")),
        (RHost::Wild(s), p) => RHost::Wild(format!("{p}{s}")),
        (h, _) => h.clone(),
    };
    let port = match t.port {
        None => Some(port),
        p => p,
    };
    // Extend the prefix on a segment boundary (or, for `/x/`, inside it).
    let path = match extra {
        "" => t.path.clone(),
        "/" if !t.path.ends_with('/') => format!("{}/", t.path),
        "/" => format!("{}y/", t.path),
        "z" if t.path.ends_with('/') => format!("{}z", t.path),
        _ if t.path.ends_with('/') => format!("{}z/w", t.path),
        _ => format!("{}/z", t.path),
    };
    let methods = t.methods.as_ref().map(|m| {
        let kept: Vec<&'static str> = m
            .iter()
            .enumerate()
            .filter(|(i, _)| mask >> i & 1 == 1)
            .map(|(_, x)| *x)
            .collect();
        if kept.is_empty() {
            vec![m[0]]
        } else {
            kept
        }
    });
    RTarget {
        scheme: t.scheme,
        host,
        port,
        path,
        methods,
    }
}

#[derive(Clone, Debug)]
struct RPolicy {
    requested: Vec<RTarget>,
    granted: Vec<RTarget>,
}

fn r_policy() -> impl Strategy<Value = RPolicy> {
    prop::collection::vec((r_target(), r_grant()), 1..8).prop_map(|items| {
        let mut seen = std::collections::HashSet::new();
        let mut requested = Vec::new();
        let mut grants = Vec::new();
        for (t, g) in items {
            if seen.insert(t.canonical()) {
                requested.push(t.clone());
                grants.push((t, g));
            }
        }
        // Grants must not collide with each other or with another request
        // (a grant equal to a request is matched against that request only).
        let mut granted: Vec<RTarget> = Vec::new();
        let mut taken = std::collections::HashSet::new();
        for (t, g) in grants {
            let e = match g {
                RGrant::None => continue,
                RGrant::Exact => t,
                RGrant::Narrow {
                    sub,
                    port,
                    path,
                    mask,
                } => {
                    let n = narrow(&t, sub, port, path, mask);
                    let c = n.canonical();
                    if c != t.canonical() && seen.contains(&c) {
                        continue;
                    }
                    n
                }
            };
            if taken.insert(e.canonical()) {
                granted.push(e);
            }
        }
        RPolicy { requested, granted }
    })
}

impl RPolicy {
    fn texts(&self) -> (String, String) {
        let table = |t: &RTarget| {
            if is_ws(t.scheme) {
                "host_api.websocket"
            } else {
                "host_api.request"
            }
        };
        let methods = |t: &RTarget| match &t.methods {
            Some(m) => format!(
                "methods = {}\n",
                toml_list(&m.iter().map(|s| s.to_string()).collect::<Vec<_>>())
            ),
            None => String::new(),
        };
        let mut m = String::from("[plugin]\nname = \"ref\"\nversion = \"0.1.0\"\n");
        for t in &self.requested {
            let _ = write!(
                m,
                "\n[[{}]]\nurl = \"{}\"\n{}",
                table(t),
                t.spell(),
                methods(t)
            );
        }
        let mut g = String::from("plugin = \"ref\"\n");
        for t in &self.granted {
            let broad = if t.host == RHost::Any {
                "broad = true\n"
            } else {
                ""
            };
            let _ = write!(
                g,
                "\n[[{}]]\nurl = \"{}\"\n{}{broad}",
                table(t),
                t.spell(),
                methods(t)
            );
        }
        (m, g)
    }
}

/// A URL of the small alphabet, kept as parts so the reference never needs a
/// URL parser.
#[derive(Clone, Debug)]
struct RUrl {
    scheme: &'static str,
    /// As written (may be upper case, have a trailing dot, or be a mapped IPv6 form).
    host_text: String,
    /// What the host means: a lowercase domain without trailing dot, or a canonical IP.
    host: RHost,
    port: Option<u16>,
    segments: Vec<&'static str>,
    /// Use the other capability than the scheme's.
    flip_capability: bool,
    method: &'static str,
}

impl RUrl {
    fn text(&self) -> String {
        let port = self.port.map(|p| format!(":{p}")).unwrap_or_default();
        format!(
            "{}://{}{port}/{}",
            self.scheme,
            self.host_text,
            self.segments.join("/")
        )
    }

    /// The path with dot segments resolved (RFC 3986 §5.2.4).
    fn path(&self) -> String {
        let mut out: Vec<&str> = Vec::new();
        let last = self.segments.len().saturating_sub(1);
        for (i, s) in self.segments.iter().enumerate() {
            match *s {
                "." | ".." => {
                    if *s == ".." {
                        out.pop();
                    }
                    if i == last {
                        out.push("");
                    }
                }
                s => out.push(s),
            }
        }
        format!("/{}", out.join("/"))
    }

    fn capability(&self) -> Capability {
        match (is_ws(self.scheme), self.flip_capability) {
            (true, false) | (false, true) => Capability::Websocket,
            _ => Capability::Request,
        }
    }
}

/// Hosts a URL can use for a given target host: usually one the host
/// matches (`aim`), else a near miss (a wildcard's apex, a sibling name, the
/// mapped form of another IP literal) or a distractor.
fn url_host_for(base: &RHost, aim: bool, pick: usize, upper: bool, dot: bool) -> (String, RHost) {
    let domain = |d: String| -> (String, RHost) {
        let mut text = if upper {
            d.to_ascii_uppercase()
        } else {
            d.clone()
        };
        if dot {
            text.push('.');
        }
        (text, RHost::Domain(d))
    };
    let ip = |ip: IpAddr, mapped: bool| -> (String, RHost) {
        match ip {
            IpAddr::V4(a) if mapped => (format!("[::ffff:{a}]"), RHost::Ip(ip)),
            IpAddr::V4(a) => (a.to_string(), RHost::Ip(ip)),
            IpAddr::V6(a) => (format!("[{a}]"), RHost::Ip(ip)),
        }
    };
    let subs = ["a.", "q.", "b.q."];
    let pool = ip_pool();
    match (base, aim) {
        (RHost::Domain(d), true) => domain(d.clone()),
        (RHost::Domain(d), false) => domain(format!("{}{d}", subs[pick % subs.len()])),
        (RHost::Wild(s), true) => domain(format!("{}{s}", subs[pick % subs.len()])),
        (RHost::Wild(s), false) => domain(s.clone()),
        (RHost::Ip(a), true) => ip(*a, pick % 2 == 1),
        (RHost::Ip(_), false) => ip(pool[pick % pool.len()].0, pick % 2 == 1),
        (RHost::Any, _) => {
            let names = [
                "other.net",
                "localhost",
                "a.localhost",
                "example.com",
                "q.a.example.com",
            ];
            if pick % 2 == 0 {
                domain(names[pick / 2 % names.len()].to_string())
            } else {
                ip(pool[pick / 2 % pool.len()].0, pick % 4 == 3)
            }
        }
    }
}

fn r_urls(policy: RPolicy) -> impl Strategy<Value = (RPolicy, Vec<RUrl>)> {
    // Aim at requested and granted targets alike; the extra index gives URLs
    // unrelated to the policy.
    let aims: Vec<RTarget> = policy
        .requested
        .iter()
        .chain(&policy.granted)
        .cloned()
        .collect();
    let n = aims.len();
    let aimed = || prop::bool::weighted(0.85);
    let url = (
        (
            0..n + 1,
            0..64usize,
            any::<bool>(),
            prop::bool::weighted(0.15),
        ),
        (aimed(), aimed(), aimed(), aimed()),
        (
            select(R_SCHEMES),
            select(vec![None, Some(0u16), Some(8080), Some(9000)]),
        ),
        prop::collection::vec(
            select(vec!["v1", "v10", "a", "V1", "z", "x", ".", ".."]),
            0..3,
        ),
        (
            prop::bool::weighted(0.08),
            select(vec!["GET", "GET", "POST", "PUT", "DELETE", "put", "TRACE"]),
        ),
    );
    let p = policy.clone();
    prop::collection::vec(url, 1..24).prop_map(move |raw| {
        let urls = raw
            .into_iter()
            .map(
                |(
                    (base, pick, upper, dot),
                    (aim_scheme, aim_host, aim_port, aim_path),
                    (scheme, port),
                    mut segments,
                    (flip, method),
                )| {
                    let target = aims.get(base);
                    let host_base = target.map_or(RHost::Any, |t| t.host.clone());
                    let (host_text, host) = url_host_for(&host_base, aim_host, pick, upper, dot);
                    let scheme = match target {
                        Some(t) if aim_scheme => t.scheme,
                        _ => scheme,
                    };
                    let port = port.map(|q| if q == 0 { default_port(scheme) } else { q });
                    let port = match target {
                        Some(t) if aim_port => match t.port {
                            Some(q) if q == default_port(scheme) && pick % 2 == 0 => None,
                            Some(q) => Some(q),
                            None => port,
                        },
                        _ => port,
                    };
                    if let (Some(t), true) = (target, aim_path) {
                        let mut pre: Vec<&'static str> = t
                            .path
                            .trim_start_matches('/')
                            .split('/')
                            .map(static_segment)
                            .collect();
                        if pre.last() == Some(&"") && !segments.is_empty() {
                            pre.pop();
                        }
                        pre.append(&mut segments);
                        segments = pre;
                    }
                    // A method the target allows, most of the time.
                    let method = match target.and_then(|t| t.methods.as_ref()) {
                        Some(m) if pick % 5 != 0 => m[pick % m.len()],
                        _ => method,
                    };
                    RUrl {
                        scheme,
                        host_text,
                        host,
                        port,
                        segments,
                        flip_capability: flip,
                        method,
                    }
                },
            )
            .collect();
        (p.clone(), urls)
    })
}

/// `&'static str` for a handful of distinct path segments (bounded: the
/// segments come from the fixed path alphabet).
fn static_segment(s: &str) -> &'static str {
    ["", "v1", "a", "z", "w", "y"]
        .into_iter()
        .find(|x| *x == s)
        .unwrap_or_else(|| panic!("unexpected path segment {s:?}"))
}

fn ref_host_matches(pattern: &RHost, host: &RHost) -> bool {
    match (pattern, host) {
        (RHost::Any, _) => true,
        (RHost::Domain(d), RHost::Domain(h)) => d == h,
        (RHost::Wild(s), RHost::Domain(h)) => h.ends_with(&format!(".{s}")),
        (RHost::Ip(a), RHost::Ip(b)) => a == b,
        _ => false,
    }
}

fn ref_prefix(prefix: &str, path: &str) -> bool {
    path == prefix
        || (path.starts_with(prefix)
            && (prefix.ends_with('/') || path[prefix.len()..].starts_with('/')))
}

fn is_localhost(name: &str) -> bool {
    name == "localhost" || name.ends_with(".localhost")
}

/// The reference decision: a linear scan with plain string checks.
fn reference(p: &RPolicy, u: &RUrl) -> &'static str {
    let cap = u.capability();
    if is_ws(u.scheme) != (cap == Capability::Websocket) {
        return "wrong_capability";
    }
    let port = u.port.unwrap_or(default_port(u.scheme));
    let path = u.path();
    let covers = |t: &&RTarget| {
        t.scheme == u.scheme
            && ref_host_matches(&t.host, &u.host)
            && t.port.is_none_or(|q| q == port)
            && ref_prefix(&t.path, &path)
    };
    let granted: Vec<&RTarget> = p.granted.iter().filter(covers).collect();
    if granted.is_empty() {
        return if p.requested.iter().any(|t| covers(&t)) {
            "not_granted"
        } else {
            "not_requested"
        };
    }
    // Methods are case-sensitive tokens (RFC 9110 §9.1): `put` is not `PUT`.
    let passing: Vec<&RTarget> = granted
        .into_iter()
        .filter(|t| t.methods.as_ref().is_none_or(|m| m.contains(&u.method)))
        .collect();
    if passing.is_empty() {
        return "method_not_allowed";
    }
    match &u.host {
        RHost::Ip(ip) => match ip_pool().iter().find(|(a, _)| a == ip).expect("pool IP").1 {
            Class::Never => "forbidden_address",
            Class::Public => "allowed",
            Class::NonPublic if passing.iter().any(|t| t.host == RHost::Ip(*ip)) => "allowed",
            Class::NonPublic => "non_public_address",
        },
        RHost::Domain(d) if is_localhost(d) => {
            let named = |t: &&RTarget| matches!(&t.host, RHost::Domain(h) | RHost::Wild(h) if is_localhost(h));
            if passing.iter().any(named) {
                "allowed"
            } else {
                "non_public_address"
            }
        }
        _ => "allowed",
    }
}

proptest! {
    #![proptest_config(cases(1500))]

    /// On URLs without percent-encoding, the indexed authorizer returns
    /// exactly the code the reference linear scan predicts.
    #[test]
    fn authorizer_agrees_with_reference((policy, urls) in r_policy().prop_flat_map(r_urls)) {
        let (m, g) = policy.texts();
        let compiled = compile_texts(&m, &g).map_err(TestCaseError::fail)?;
        prop_assert!(compiled.ignored.is_empty(), "unexpectedly ignored: {:?}\n{}\n{}", compiled.ignored, m, g);
        let authz = Authorizer::new(&compiled);
        for u in &urls {
            let text = u.text();
            let req = Request {
                capability: u.capability(),
                url: &text,
                method: (u.capability() == Capability::Request).then_some(u.method),
                headers: &[],
                subprotocols: &[],
                credentials: &[],
            };
            let got = authz.authorize(&req, None);
            let want = reference(&policy, u);
            prop_assert_eq!(&got.url(), &netgrant_policy::redact::redact_url(&text));
            prop_assert_eq!(
                got.code.as_str(), want,
                "{} {} ({:?}) under\n{}\n{}\n-> {}", u.method, text, u.capability(), m, g, got.message()
            );
        }
    }
}

// ---------------------------------------------------------------------------
// 4. Containment
// ---------------------------------------------------------------------------

const K_HOSTS: &[&str] = &[
    "*",
    "*.example.com",
    "*.a.example.com",
    "a.example.com",
    "b.a.example.com",
    "example.com",
    "127.0.0.1",
    "[::1]",
    "*.localhost",
    "localhost",
];
const K_PATHS: &[&str] = &["/", "/v1", "/v1/", "/v1/a", "/v10", "/v1/a/"];
const K_PORTS: &[&str] = &["", ":8080", ":*"];

fn k_target() -> impl Strategy<Value = Target> {
    (
        select(vec!["ws", "wss"]),
        select(K_HOSTS),
        select(K_PORTS),
        select(K_PATHS),
    )
        .prop_map(|(s, h, p, path)| Target::parse(&format!("{s}://{h}{p}{path}")).unwrap())
}

fn k_url() -> impl Strategy<Value = String> {
    (
        select(vec!["ws", "wss"]),
        select(vec![
            "example.com",
            "a.example.com",
            "b.a.example.com",
            "c.b.a.example.com",
            "x.example.com",
            "other.org",
            "127.0.0.1",
            "[::1]",
            "[::ffff:127.0.0.1]",
            "localhost",
            "a.localhost",
            "10.0.0.1",
        ]),
        select(vec!["", ":80", ":443", ":8080", ":9"]),
        prop::collection::vec(select(vec!["v1", "v10", "a", "b", ""]), 0..4),
    )
        .prop_map(|(s, h, p, segs)| format!("{s}://{h}{p}/{}", segs.join("/")))
}

/// Whether the target's scheme, host, port and path prefix match the URL,
/// using the library's own matching pieces.
fn target_matches(t: &Target, url: &str) -> bool {
    let u = url::Url::parse(url).unwrap();
    let host = UrlHost::from_url(&u).unwrap();
    let port = u.port_or_known_default().unwrap();
    let readings = PathReadings::parse(u.path()).unwrap();
    t.scheme.as_str() == u.scheme()
        && t.host.matches(&host)
        && t.port.matches(port)
        && readings.all_inside(&t.path)
}

proptest! {
    #![proptest_config(cases(3000))]

    #[test]
    fn containment_is_reflexive(t in k_target()) {
        prop_assert!(t.contains(&t), "{}", t);
    }
}

/// Runs `test` on generated values like `proptest!` does (shrinking a
/// failure), and counts the cases whose premise held (`test` returns whether
/// it did): a property asserted under an `if` proves nothing unless the `if`
/// is taken, so each such property must meet its premise in at least
/// `min_percent` of its cases.
fn check_premise<S>(
    name: &str,
    config: ProptestConfig,
    min_percent: usize,
    strategy: S,
    test: impl Fn(S::Value) -> Result<bool, TestCaseError>,
) where
    S: Strategy,
    S::Value: std::fmt::Debug,
{
    use proptest::test_runner::TestRunner;
    use std::sync::atomic::{AtomicUsize, Ordering};
    let n = config.cases as usize;
    let hits = AtomicUsize::new(0);
    let mut runner = TestRunner::new(config);
    if let Err(e) = runner.run(&strategy, |v| {
        if test(v)? {
            hits.fetch_add(1, Ordering::Relaxed);
        }
        Ok(())
    }) {
        panic!("{name}: {e}");
    }
    let hits = hits.into_inner();
    eprintln!("{name}: premise held in {hits} of {n} cases");
    assert!(
        hits * 100 >= n * min_percent,
        "{name}: premise held in only {hits} of {n} cases (want {min_percent}%): the generator no longer fits the property"
    );
}

/// A target (or permission) as spelled, before parsing.
#[derive(Clone, Debug)]
struct TSpell {
    scheme: &'static str,
    host: String,
    port: String,
    path: String,
}

impl TSpell {
    fn text(&self) -> String {
        format!("{}://{}{}{}", self.scheme, self.host, self.port, self.path)
    }

    fn target(&self) -> Target {
        Target::parse(&self.text()).unwrap_or_else(|e| panic!("{}: {}", self.text(), e.message))
    }

    /// A spelling of a target inside this one: each part kept or narrowed
    /// (a subdomain or exact host under a wildcard, any host under `*`, a
    /// fixed port under `*`, a longer path prefix on a segment boundary).
    fn narrow(&self, g: &mut Rng) -> TSpell {
        let host = if self.host == "*" {
            g.pick(K_HOSTS).to_string()
        } else if let Some(suffix) = self.host.strip_prefix("*.") {
            let l = g.pick(&["a", "b", "q"]);
            match g.below(4) {
                0 => self.host.clone(),
                1 => format!("*.{l}.{suffix}"),
                2 => format!("{l}.{suffix}"),
                _ => format!("b.{l}.{suffix}"),
            }
        } else {
            self.host.clone()
        };
        let port = if self.port == ":*" {
            g.pick(&[":*", "", ":8080", ":443"]).to_string()
        } else {
            self.port.clone()
        };
        let path = match g.below(3) {
            0 => self.path.clone(),
            _ if self.path.ends_with('/') => {
                format!("{}{}", self.path, g.pick(&["a", "a/", "v1/z"]))
            }
            _ => format!("{}{}", self.path, g.pick(&["/", "/a", "/a/"])),
        };
        TSpell {
            scheme: self.scheme,
            host,
            port,
            path,
        }
    }

    /// A URL this target matches (when `inside`), in a plain spelling.
    fn url_inside(&self, g: &mut Rng) -> String {
        let host = if self.host == "*" {
            g.pick(&[
                "example.com",
                "x.example.com",
                "127.0.0.1",
                "[::1]",
                "other.org",
            ])
            .to_string()
        } else if let Some(suffix) = self.host.strip_prefix("*.") {
            format!("{}.{suffix}", g.pick(&["x", "y.b", "a"]))
        } else {
            self.host.clone()
        };
        let port = if self.port == ":*" {
            g.pick(&["", ":80", ":443", ":8080", ":9"]).to_string()
        } else {
            self.port.clone()
        };
        let tail = if self.path.ends_with('/') {
            g.pick(&["", "x", "x/y", "v1/"])
        } else {
            g.pick(&["", "/", "/x", "/x/y"])
        };
        format!("{}://{host}{port}{}{tail}", self.scheme, self.path)
    }
}

fn k_spell() -> impl Strategy<Value = TSpell> {
    (
        select(vec!["ws", "wss"]),
        select(K_HOSTS),
        select(K_PORTS),
        select(K_PATHS),
    )
        .prop_map(|(scheme, h, p, path)| TSpell {
            scheme,
            host: h.to_string(),
            port: p.to_string(),
            path: path.to_string(),
        })
}

/// Three targets, nested `a ⊇ b ⊇ c` by construction (most cases), or
/// drawn independently (so unrelated triples keep a share).
fn k_chain() -> impl Strategy<Value = (Target, Target, Target)> {
    prop_oneof![
        19 => (k_spell(), any::<u64>()).prop_map(|(a, seed)| {
            let mut g = Rng(seed);
            let b = a.narrow(&mut g);
            let c = b.narrow(&mut g);
            (a.target(), b.target(), c.target())
        }),
        1 => (k_target(), k_target(), k_target()),
    ]
}

/// Two targets, mostly `a ⊇ b` by construction, and URLs: most inside `b`
/// (derived from it), the rest drawn from the fixed URL alphabet.
fn k_pair_with_urls() -> impl Strategy<Value = (Target, Target, Vec<String>)> {
    (
        prop_oneof![
            19 => (k_spell(), any::<u64>()).prop_map(|(a, seed)| {
                let b = a.narrow(&mut Rng(seed));
                (a, b)
            }),
            1 => (k_spell(), k_spell()),
        ],
        prop::collection::vec(k_url(), 0..8),
        1..8usize,
        any::<u64>(),
    )
        .prop_map(|((a, b), mut urls, inside, seed)| {
            let mut g = Rng(seed);
            for _ in 0..inside {
                urls.push(b.url_inside(&mut g));
            }
            g.shuffle(&mut urls);
            (a.target(), b.target(), urls)
        })
}

#[test]
fn containment_is_transitive() {
    check_premise(
        "containment_is_transitive",
        cases(3000),
        80,
        k_chain(),
        |(a, b, c)| {
            if a.contains(&b) && b.contains(&c) {
                prop_assert!(
                    a.contains(&c),
                    "{} ⊇ {} ⊇ {} but not {} ⊇ {}",
                    a,
                    b,
                    c,
                    a,
                    c
                );
                return Ok(true);
            }
            Ok(false)
        },
    );
}

/// If `a` contains `b`, every URL that `b` matches is matched by `a`. The
/// premise counts as met when `a ⊇ b` and some URL of the case matches `b`.
#[test]
fn containment_is_sound_for_urls() {
    check_premise(
        "containment_is_sound_for_urls",
        cases(3000),
        80,
        k_pair_with_urls(),
        |(a, b, urls)| {
            let contains = a.contains(&b);
            let mut met = false;
            for url in &urls {
                if contains && target_matches(&b, url) {
                    met = true;
                    prop_assert!(
                        target_matches(&a, url),
                        "{} ⊇ {} and {} matches {} but not {}",
                        a,
                        b,
                        b,
                        url,
                        a
                    );
                }
            }
            Ok(met)
        },
    );
}

/// Chains built on purpose (random triples rarely nest three deep).
#[test]
fn containment_chains_are_transitive_exhaustively() {
    let all: Vec<Target> = ["ws"]
        .iter()
        .flat_map(|s| {
            K_HOSTS.iter().flat_map(move |h| {
                K_PORTS.iter().flat_map(move |p| {
                    K_PATHS
                        .iter()
                        .map(move |path| Target::parse(&format!("{s}://{h}{p}{path}")).unwrap())
                })
            })
        })
        .collect();
    let below: Vec<Vec<usize>> = all
        .iter()
        .map(|a| (0..all.len()).filter(|&j| a.contains(&all[j])).collect())
        .collect();
    let mut chains = 0;
    for (i, b_list) in below.iter().enumerate() {
        assert!(b_list.contains(&i), "{} is not reflexive", all[i]);
        for &j in b_list {
            for &k in &below[j] {
                chains += 1;
                assert!(
                    all[i].contains(&all[k]),
                    "{} ⊇ {} ⊇ {}",
                    all[i],
                    all[j],
                    all[k]
                );
            }
        }
    }
    assert!(chains > 1000, "only {chains} chains");
}

/// The generators are only useful if matches happen often: sample them and
/// check every outcome the reference can tell apart shows up, allows most.
#[test]
fn authorizer_generators_cover_every_outcome() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;
    let mut runner = TestRunner::deterministic();
    let strategy = r_policy().prop_flat_map(r_urls);
    let mut seen = std::collections::BTreeMap::<&str, usize>::new();
    let mut total = 0;
    for _ in 0..300 {
        let (policy, urls) = strategy.new_tree(&mut runner).unwrap().current();
        for u in &urls {
            *seen.entry(reference(&policy, u)).or_default() += 1;
            total += 1;
        }
    }
    eprintln!("reference outcomes over {total} URLs: {seen:?}");
    for code in [
        "allowed",
        "wrong_capability",
        "not_requested",
        "not_granted",
        "method_not_allowed",
        "non_public_address",
        "forbidden_address",
    ] {
        assert!(
            seen.get(code).copied().unwrap_or(0) >= 5,
            "{code} is rare: {seen:?}"
        );
    }
    assert!(seen["allowed"] * 5 >= total, "too few allows: {seen:?}");
    assert!(
        seen["not_requested"] * 2 <= total,
        "too many misses: {seen:?}"
    );
}

// ---------------------------------------------------------------------------
// 5. Decisions show URLs exactly as `redact` does
// ---------------------------------------------------------------------------

fn redaction_url() -> impl Strategy<Value = String> {
    let part = select(vec![
        "a", "b", "=", "&", "%41", "é", ";", "?", " ", "..", "/", "%2F", "x=1", "=&=",
    ]);
    (
        select(vec!["http", "https", "ws", "wss", "HTTPS"]),
        select(vec![
            "example.com",
            "EXAMPLE.com.",
            "10.0.0.1",
            "[::1]",
            "bücher.example",
            "u:p@example.com",
            ":@example.com",
        ]),
        select(vec!["", ":8080", ":443"]),
        prop::collection::vec(part.clone(), 0..4),
        prop::option::of(prop::collection::vec(part.clone(), 0..5)),
        prop::option::of(prop::collection::vec(part, 0..3)),
    )
        .prop_map(|(scheme, host, port, path, query, fragment)| {
            let mut u = format!("{scheme}://{host}{port}/{}", path.concat());
            if let Some(q) = query {
                let _ = write!(u, "?{}", q.concat());
            }
            if let Some(f) = fragment {
                let _ = write!(u, "#{}", f.concat());
            }
            u
        })
}

proptest! {
    #![proptest_config(cases(1500))]

    /// Every decision carries the URL exactly as `redact::redact_url` shows
    /// it (the authorizer has a fast path for the common case; in debug
    /// builds it also checks itself against `redact`).
    #[test]
    fn decisions_show_redacted_urls(url in redaction_url(), websocket in any::<bool>()) {
        let m = "[plugin]\nname = \"any\"\nversion = \"1.0.0\"\n\
                 [[host_api.request]]\nurl = \"http://*:*/\"\nmethods = \"*\"\n\
                 [[host_api.request]]\nurl = \"https://*:*/\"\nmethods = \"*\"\n\
                 [[host_api.websocket]]\nurl = \"ws://*:*/\"\n\
                 [[host_api.websocket]]\nurl = \"wss://*:*/\"\n";
        let g = "plugin = \"any\"\n\
                 [[host_api.request]]\nurl = \"http://*:*/\"\nbroad = true\n\
                 [[host_api.request]]\nurl = \"https://*:*/\"\nbroad = true\n\
                 [[host_api.websocket]]\nurl = \"ws://*:*/\"\nbroad = true\n\
                 [[host_api.websocket]]\nurl = \"wss://*:*/\"\nbroad = true\n";
        let policy = compile_texts(m, g).map_err(TestCaseError::fail)?;
        let authz = Authorizer::new(&policy);
        let req = if websocket { Request::websocket(&url) } else { Request::http("GET", &url) };
        let d = authz.authorize(&req, None);
        prop_assert_eq!(&d.url(), &netgrant_policy::redact::redact_url(&url), "{} -> {}", url, d.code);
    }
}

// ---------------------------------------------------------------------------
// 6. Hardening: containment is a partial order on whole permissions, a grant
//    never widens, redaction never leaks
// ---------------------------------------------------------------------------

const P_NETWORKS: &[&str] = &[
    "10.0.0.0/8",
    "10.1.0.0/16",
    "10.1.2.0/24",
    "10.2.0.0/16",
    "192.168.0.0/16",
    "127.0.0.0/8",
    "fd00::/8",
];
const P_HEADERS: &[&str] = &["x-a", "x-b", "x-c"];

/// A whole permission (request capability, so methods take part), parsed
/// from a manifest so every field is in canonical form.
fn p_permission() -> impl Strategy<Value = netgrant_policy::Permission> {
    (
        select(vec!["http", "https"]),
        select(K_HOSTS),
        select(K_PORTS),
        select(K_PATHS),
        prop_oneof![
            1 => Just(vec!["*"]),
            4 => subsequence(vec!["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"], 1..=7),
        ],
        subsequence(P_HEADERS.to_vec(), 0..=3),
        subsequence(P_NETWORKS.to_vec(), 0..=3),
    )
        .prop_map(|(s, h, p, path, methods, headers, networks)| {
            let list = |v: &[&str]| toml_list(&v.iter().map(|x| x.to_string()).collect::<Vec<_>>());
            let text = format!(
                "[plugin]\nname = \"p\"\nversion = \"1.0.0\"\n[[host_api.request]]\nurl = \"{s}://{h}{p}{path}\"\nmethods = {}\nheaders = {}\nnetworks = {}\n",
                list(&methods),
                list(&headers),
                list(&networks)
            );
            let m = Manifest::parse("plugin.toml", &text)
                .value
                .unwrap_or_else(|| panic!("generated manifest must parse:\n{text}"));
            m.requested[0].permission.clone()
        })
}

proptest! {
    #![proptest_config(cases(3000))]

    #[test]
    fn permission_containment_is_reflexive(a in p_permission()) {
        prop_assert!(a.contains(&a));
    }
}

/// A request permission as spelled in a manifest.
#[derive(Clone, Debug)]
struct PSpell {
    target: TSpell,
    /// `["*"]` or a non-empty list of methods.
    methods: Vec<&'static str>,
    headers: Vec<String>,
    networks: Vec<String>,
}

/// For each network of [`P_NETWORKS`], networks inside it.
const P_SUBNETS: &[(&str, &[&str])] = &[
    (
        "10.0.0.0/8",
        &["10.1.0.0/16", "10.1.2.0/24", "10.2.0.0/16", "10.9.0.0/16"],
    ),
    ("10.1.0.0/16", &["10.1.2.0/24", "10.1.3.0/24"]),
    ("10.1.2.0/24", &["10.1.2.128/25"]),
    ("10.2.0.0/16", &["10.2.3.0/24"]),
    ("192.168.0.0/16", &["192.168.1.0/24"]),
    ("127.0.0.0/8", &["127.0.0.0/16"]),
    ("fd00::/8", &["fd00::/16", "fd12:3456::/32"]),
];

const P_METHODS: &[&str] = &["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"];

impl PSpell {
    fn permission(&self) -> netgrant_policy::Permission {
        let list = |v: &[String]| toml_list(v);
        let methods: Vec<String> = self.methods.iter().map(|m| m.to_string()).collect();
        let text = format!(
            "[plugin]\nname = \"p\"\nversion = \"1.0.0\"\n[[host_api.request]]\nurl = \"{}\"\nmethods = {}\nheaders = {}\nnetworks = {}\n",
            self.target.text(),
            list(&methods),
            list(&self.headers),
            list(&self.networks)
        );
        let m = Manifest::parse("plugin.toml", &text)
            .value
            .unwrap_or_else(|| panic!("generated manifest must parse:\n{text}"));
        m.requested[0].permission.clone()
    }

    /// A permission inside this one: the target narrowed, methods, headers
    /// and networks kept, subset or replaced by subnets.
    fn narrow(&self, g: &mut Rng) -> PSpell {
        let keep = |g: &mut Rng| g.below(3) != 0;
        let methods: Vec<&'static str> = {
            let from: &[&'static str] = if self.methods == ["*"] {
                if g.below(3) == 0 {
                    return self.narrow_rest(g, vec!["*"]);
                }
                P_METHODS
            } else {
                &self.methods
            };
            let mut v: Vec<&'static str> = from.iter().copied().filter(|_| keep(g)).collect();
            if v.is_empty() {
                v.push(from[g.below(from.len())]);
            }
            v
        };
        self.narrow_rest(g, methods)
    }

    fn narrow_rest(&self, g: &mut Rng, methods: Vec<&'static str>) -> PSpell {
        let headers = self
            .headers
            .iter()
            .filter(|_| g.below(3) != 0)
            .cloned()
            .collect();
        let mut networks = Vec::new();
        for n in &self.networks {
            match g.below(4) {
                0 => {}
                1 => {
                    let subs = P_SUBNETS
                        .iter()
                        .find(|(o, _)| o == n)
                        .map_or(&[][..], |(_, s)| s);
                    if !subs.is_empty() {
                        networks.push(subs[g.below(subs.len())].to_string());
                    }
                }
                _ => networks.push(n.clone()),
            }
        }
        PSpell {
            target: self.target.narrow(g),
            methods,
            headers,
            networks,
        }
    }

    /// Another spelling of the same permission: scheme and host case, a
    /// trailing dot, the default port written out, path and network
    /// respellings, `*` as every method, lists shuffled, header case, a
    /// network already inside another one added.
    fn respell(&self, g: &mut Rng) -> PSpell {
        let t = &self.target;
        let scheme = match (t.scheme, g.below(2)) {
            ("http", 0) => "HTTP",
            ("https", 0) => "HttpS",
            (s, _) => s,
        };
        let host = match t.host.as_str() {
            "127.0.0.1" => g
                .pick(&["127.0.0.1", "[::ffff:127.0.0.1]", "[::ffff:7f00:1]"])
                .to_string(),
            "[::1]" => g.pick(&["[::1]", "[0:0:0:0:0:0:0:1]"]).to_string(),
            h => match g.below(3) {
                0 => h.to_ascii_uppercase(),
                1 if h != "*" => format!("{h}."),
                _ => h.to_string(),
            },
        };
        let port = match (t.port.as_str(), g.below(2)) {
            ("", 0) => if t.scheme == "https" { ":443" } else { ":80" }.to_string(),
            (p, _) => p.to_string(),
        };
        let path = match g.below(3) {
            0 => format!("/x/..{}", t.path),
            1 => format!("/.{}", t.path),
            _ => t.path.replace("v1", "%76%31"),
        };
        let mut methods = if self.methods == ["*"] && g.below(2) == 0 {
            P_METHODS.to_vec()
        } else if self.methods.len() == P_METHODS.len() && g.below(2) == 0 {
            vec!["*"]
        } else {
            self.methods.clone()
        };
        g.shuffle(&mut methods);
        let mut headers: Vec<String> = self
            .headers
            .iter()
            .map(|h| {
                if g.below(2) == 0 {
                    h.to_ascii_uppercase()
                } else {
                    h.clone()
                }
            })
            .collect();
        g.shuffle(&mut headers);
        let mut networks: Vec<String> = self
            .networks
            .iter()
            .map(|n| match n.as_str() {
                "10.1.0.0/16" if g.below(2) == 0 => "10.1.2.3/16".to_string(),
                "192.168.0.0/16" if g.below(2) == 0 => "192.168.7.7/16".to_string(),
                "fd00::/8" if g.below(2) == 0 => "FD00:0::/8".to_string(),
                _ => n.clone(),
            })
            .collect();
        if let Some((_, subs)) = P_SUBNETS
            .iter()
            .find(|(o, _)| self.networks.iter().any(|n| n == o))
        {
            if g.below(2) == 0 {
                networks.push(subs[0].to_string());
            }
        }
        g.shuffle(&mut networks);
        PSpell {
            target: TSpell {
                scheme,
                host,
                port,
                path,
            },
            methods,
            headers,
            networks,
        }
    }
}

fn p_spell() -> impl Strategy<Value = PSpell> {
    (
        select(vec!["http", "https"]),
        select(K_HOSTS),
        select(K_PORTS),
        select(K_PATHS),
        prop_oneof![
            1 => Just(vec!["*"]),
            4 => subsequence(P_METHODS.to_vec(), 1..=7),
        ],
        subsequence(P_HEADERS.to_vec(), 0..=3),
        subsequence(P_NETWORKS.to_vec(), 0..=3),
    )
        .prop_map(|(scheme, h, p, path, methods, headers, networks)| PSpell {
            target: TSpell {
                scheme,
                host: h.to_string(),
                port: p.to_string(),
                path: path.to_string(),
            },
            methods,
            headers: headers.into_iter().map(String::from).collect(),
            networks: networks.into_iter().map(String::from).collect(),
        })
}

type Perm = netgrant_policy::Permission;

/// Three permissions, nested `a ⊇ b ⊇ c` by construction (most cases), or
/// drawn independently.
fn p_chain() -> impl Strategy<Value = (Perm, Perm, Perm)> {
    prop_oneof![
        19 => (p_spell(), any::<u64>()).prop_map(|(a, seed)| {
            let mut g = Rng(seed);
            let b = a.narrow(&mut g);
            let c = b.narrow(&mut g);
            (a.permission(), b.permission(), c.permission())
        }),
        1 => (p_permission(), p_permission(), p_permission()),
    ]
}

/// Pairs `a ⊇ b`: the same permission spelled twice (so each contains the
/// other), or `b` narrowed from `a` (usually strictly inside it); and a few
/// independent pairs.
fn p_pair() -> impl Strategy<Value = (Perm, Perm)> {
    prop_oneof![
        10 => (p_spell(), any::<u64>()).prop_map(|(a, seed)| {
            let b = a.respell(&mut Rng(seed));
            (a.permission(), b.permission())
        }),
        9 => (p_spell(), any::<u64>()).prop_map(|(a, seed)| {
            let b = a.narrow(&mut Rng(seed));
            (a.permission(), b.permission())
        }),
        1 => (p_permission(), p_permission()),
    ]
}

#[test]
fn permission_containment_is_transitive() {
    check_premise(
        "permission_containment_is_transitive",
        cases(3000),
        80,
        p_chain(),
        |(a, b, c)| {
            if a.contains(&b) && b.contains(&c) {
                prop_assert!(a.contains(&c), "{:?}\n⊇ {:?}\n⊇ {:?}", a, b, c);
                return Ok(true);
            }
            Ok(false)
        },
    );
}

/// Antisymmetric up to canonical equality: two permissions that contain
/// each other are the same value (so they compile to the same IR entry).
/// Every pair with `a ⊇ b` puts the property to work (a wrongly equal or
/// wrongly mutual pair fails it); about half contain each other.
#[test]
fn permission_containment_is_antisymmetric() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let mutual = AtomicUsize::new(0);
    let config = cases(3000);
    let n = config.cases as usize;
    check_premise(
        "permission_containment_is_antisymmetric",
        config,
        80,
        p_pair(),
        |(a, b)| {
            if a.contains(&b) && b.contains(&a) {
                mutual.fetch_add(1, Ordering::Relaxed);
                prop_assert_eq!(&a, &b);
            }
            Ok(a.contains(&b))
        },
    );
    let mutual = mutual.into_inner();
    eprintln!(
        "permission_containment_is_antisymmetric: mutual containment in {mutual} of {n} cases"
    );
    assert!(
        mutual * 100 >= n * 35,
        "mutual containment in only {mutual} of {n} cases"
    );
}

/// The grant that approves everything requested, as `approve --allow-broad`
/// would write it.
fn approve_all(p: &RPolicy) -> String {
    let all = RPolicy {
        requested: p.requested.clone(),
        granted: p.requested.clone(),
    };
    all.texts().1
}

/// The manifest with credential `k` declared on every target that may
/// carry one (docs/spec.md §9.1: not broad, not plaintext except loopback,
/// not `:*`): declared everywhere, then removed where the walker refuses it.
fn declare_credential(manifest: &str) -> String {
    const LINE: &str = "credentials = [{ name = \"k\", header = \"X-Netgrant-K\" }]";
    let with: String = manifest
        .lines()
        .flat_map(|l| {
            let extra = l.starts_with("url = ").then_some(LINE);
            std::iter::once(l).chain(extra)
        })
        .map(|l| format!("{l}\n"))
        .collect();
    let refused: Vec<usize> = Manifest::parse("plugin.toml", &with)
        .diagnostics
        .iter()
        .filter(|d| {
            matches!(
                d.code,
                Code::CredentialBroadTarget
                    | Code::CredentialPlaintextTarget
                    | Code::CredentialAnyPortTarget
            )
        })
        .filter_map(|d| d.primary_span())
        .map(|s| with[..s.start].matches('\n').count())
        .collect();
    with.lines()
        .enumerate()
        .filter(|(i, _)| !refused.contains(i))
        .map(|(_, l)| format!("{l}\n"))
        .collect()
}

/// The grant with `k` bound on every entry (an entry whose parent does not
/// declare `k` is dropped as `credential_not_declared`: fewer allows).
fn bind_credential(grant: &str) -> String {
    grant
        .lines()
        .flat_map(|l| {
            let extra = l
                .starts_with("url = ")
                .then_some("credentials = { k = \"s/k\" }");
            std::iter::once(l).chain(extra)
        })
        .map(|l| format!("{l}\n"))
        .collect()
}

/// With credentials: whatever a grant allows while the plugin asks for
/// credential `k`, the approve-everything grant (binding `k` wherever it
/// is declared) allows too. Bindings on narrower entries never reach
/// wider than the declaration. The premise: some URL of the case is
/// allowed with `k` by the grant.
#[test]
fn a_grant_never_widens_with_credentials() {
    check_premise(
        "a_grant_never_widens_with_credentials",
        cases(300),
        30,
        r_policy().prop_flat_map(r_urls),
        |(policy, urls)| {
            let (m, g) = policy.texts();
            let m = declare_credential(&m);
            let narrow = compile_texts(&m, &bind_credential(&g)).map_err(TestCaseError::fail)?;
            let all = compile_texts(&m, &bind_credential(&approve_all(&policy)))
                .map_err(TestCaseError::fail)?;
            let (narrow, all) = (Authorizer::new(&narrow), Authorizer::new(&all));
            let asked = ["k".to_string()];
            let mut held = false;
            for u in &urls {
                let text = u.text();
                let req = Request {
                    capability: u.capability(),
                    url: &text,
                    method: (u.capability() == Capability::Request).then_some(u.method),
                    headers: &[],
                    subprotocols: &[],
                    credentials: &asked,
                };
                if narrow.authorize(&req, None).is_allowed() {
                    held = true;
                    prop_assert!(
                        all.authorize(&req, None).is_allowed(),
                        "{} allowed with `k` by the grant but not by approve-all\n{}\n{}",
                        text,
                        m,
                        g
                    );
                }
            }
            Ok(held)
        },
    );
}

/// Every URL a grant allows, the approve-everything grant allows too: a
/// grant can narrow what the manifest asks for, never widen it. The
/// premise: some URL of the case is allowed by the grant.
#[test]
fn a_grant_never_widens() {
    check_premise(
        "a_grant_never_widens",
        cases(1000),
        60,
        r_policy().prop_flat_map(r_urls),
        |(policy, urls)| {
            let (m, g) = policy.texts();
            let narrow = compile_texts(&m, &g).map_err(TestCaseError::fail)?;
            let all = compile_texts(&m, &approve_all(&policy)).map_err(TestCaseError::fail)?;
            let (narrow, all) = (Authorizer::new(&narrow), Authorizer::new(&all));
            let ips: Vec<IpAddr> = ip_pool().into_iter().map(|(ip, _)| ip).collect();
            let mut held = false;
            for (i, u) in urls.iter().enumerate() {
                let text = u.text();
                let req = Request {
                    capability: u.capability(),
                    url: &text,
                    method: (u.capability() == Capability::Request).then_some(u.method),
                    headers: &[],
                    subprotocols: &[],
                    credentials: &[],
                };
                // Also with DNS answers, so the address checks take part.
                let answers = [ips[i % ips.len()]];
                for ans in [None, Some(&answers[..])] {
                    if narrow.authorize(&req, ans).is_allowed() {
                        held = true;
                        prop_assert!(
                            all.authorize(&req, ans).is_allowed(),
                            "{} allowed by the grant but not by approve-all\n{}\n{}",
                            text,
                            m,
                            g
                        );
                    }
                }
            }
            Ok(held)
        },
    );
}

/// A URL with a credential in its userinfo and secret query values, each a
/// unique marker that must never appear in a redacted URL or a decision.
fn leaky_url() -> impl Strategy<Value = (String, Vec<String>)> {
    (
        select(vec!["http", "https", "ws", "wss"]),
        0u32..1_000_000,
        // No userinfo at all in half of the URLs: their decisions take
        // the redaction's fast path (nothing to remove), the others not.
        select(vec![
            None,
            Some(""),
            Some("user"),
            Some("u%40x"),
            None,
            None,
        ]),
        select(vec!["example.com", "10.0.0.1", "[::1]", "bücher.example"]),
        prop::collection::vec(select(vec!["k", "a.b", "", "%3D", "token"]), 1..4),
        select(vec!["", "/p", "/a;b=SEKRETPATH", "/%2e%2e/"]),
        prop::bool::ANY,
        // A part with no `=`: an API key passed bare (`?sk-…`), first,
        // last or absent.
        select(vec![None, Some(0usize), Some(usize::MAX)]),
    )
        .prop_map(|(scheme, n, user, host, keys, path, frag, bare)| {
            let pass = format!("PASS{n}X");
            let mut secrets = Vec::new();
            let userinfo = match user {
                Some(user) => {
                    secrets.push(pass.clone());
                    format!("{user}:{pass}@")
                }
                None => String::new(),
            };
            let mut q = Vec::new();
            for (i, k) in keys.iter().enumerate() {
                let v = format!("QV{n}Y{i}");
                secrets.push(v.clone());
                q.push(format!("{k}={v}"));
            }
            if let Some(at) = bare {
                let token = format!("BARE{n}W");
                secrets.push(token.clone());
                q.insert(at.min(q.len()), token);
            }
            let mut url = format!("{scheme}://{userinfo}{host}{path}?{}", q.join("&"));
            if frag {
                let f = format!("FRAG{n}Z");
                secrets.push(f.clone());
                url.push('#');
                url.push_str(&f);
            }
            (url, secrets)
        })
}

/// Redaction hides userinfo, query values (a part passed bare included) and
/// fragments, in `redact_url` and in every decision, allowed or denied. The
/// premise counted: a bare token in a URL without userinfo, whose decision
/// takes the redaction's fast path (nothing to remove but the query).
#[test]
fn redaction_never_leaks_credentials_or_query_values() {
    let m = "[plugin]\nname = \"any\"\nversion = \"1.0.0\"\n\
             [[host_api.request]]\nurl = \"https://*:*/\"\nmethods = \"*\"\n\
             [[host_api.websocket]]\nurl = \"wss://*:*/\"\n";
    let policy = compile_texts(m, "plugin = \"any\"\n").unwrap();
    let authz = Authorizer::new(&policy);
    check_premise(
        "redaction_never_leaks_credentials_or_query_values",
        cases(2000),
        20,
        leaky_url(),
        |(url, secrets)| {
            let r = netgrant_policy::redact::redact_url(&url);
            for s in &secrets {
                prop_assert!(!r.contains(s.as_str()), "{} leaked in {}", s, r);
            }
            // Decisions (allow or deny, message included) carry only redacted text.
            for req in [Request::websocket(&url), Request::http("GET", &url)] {
                let d = authz.authorize(&req, None);
                for s in &secrets {
                    prop_assert!(
                        !d.url().contains(s.as_str()) && !d.message().contains(s.as_str()),
                        "{} leaked in {:?}",
                        s,
                        d
                    );
                }
            }
            let has = |p: &str| secrets.iter().any(|s| s.starts_with(p));
            Ok(has("BARE") && !has("PASS"))
        },
    );
}
