//! Address classes: the one home of the special-purpose address table.
//!
//! Every IP address netgrant looks at (IP literals in URLs and targets, and
//! every DNS answer) is canonicalized and then classified by longest-prefix
//! match over [`RANGES`]. std's `is_global` is unstable and `is_loopback`
//! misses mapped forms, so nothing else in the crate decides address classes.

use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// The class of an address, which decides which targets may reach it (docs/spec.md §2.5).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AddressClass {
    /// Globally reachable: any matching target may reach it.
    Public,
    /// Loopback (127/8, ::1).
    Loopback,
    /// Private-use, carrier-grade NAT, link-local and unique-local ranges.
    Private,
    /// Documentation, benchmarking, reserved, 6to4, Teredo, discard and other
    /// IPv4-embedding forms, and IPv6 outside 2000::/3 not otherwise listed.
    Reserved,
    /// Never reachable: unspecified, multicast, broadcast, cloud metadata.
    Never,
}

impl AddressClass {
    /// Every class, in order.
    pub const ALL: [AddressClass; 5] = [
        AddressClass::Public,
        AddressClass::Loopback,
        AddressClass::Private,
        AddressClass::Reserved,
        AddressClass::Never,
    ];

    /// `true` for [`AddressClass::Public`].
    pub fn is_public(self) -> bool {
        self == AddressClass::Public
    }

    /// `true` for loopback, private and reserved: reachable only through a
    /// target that covers the address explicitly.
    pub fn is_non_public(self) -> bool {
        matches!(
            self,
            AddressClass::Loopback | AddressClass::Private | AddressClass::Reserved
        )
    }

    /// The snake_case spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            AddressClass::Public => "public",
            AddressClass::Loopback => "loopback",
            AddressClass::Private => "private",
            AddressClass::Reserved => "reserved",
            AddressClass::Never => "never",
        }
    }
}

impl fmt::Display for AddressClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One row of the address table: the result of classifying an address.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Classification {
    /// The class of the address.
    pub class: AddressClass,
    /// The table row that matched (the most specific one).
    pub range: IpNet,
    /// A human name for the row, e.g. `private-use` or `cloud metadata endpoint`.
    pub name: &'static str,
}

const fn v4(
    a: u8,
    b: u8,
    c: u8,
    d: u8,
    len: u8,
    class: AddressClass,
    name: &'static str,
) -> Classification {
    Classification {
        class,
        range: IpNet::V4(Ipv4Net::new_assert(Ipv4Addr::new(a, b, c, d), len)),
        name,
    }
}

const fn v6(segs: [u16; 8], len: u8, class: AddressClass, name: &'static str) -> Classification {
    let [a, b, c, d, e, f, g, h] = segs;
    Classification {
        class,
        range: IpNet::V6(Ipv6Net::new_assert(
            Ipv6Addr::new(a, b, c, d, e, f, g, h),
            len,
        )),
        name,
    }
}

use AddressClass::{Loopback, Never, Private, Public, Reserved};

const METADATA: &str = "cloud metadata endpoint";
const DOCUMENTATION: &str = "documentation";

/// The address table: IANA's special-purpose registries for both families,
/// the cloud metadata endpoints, and per-family defaults (`0.0.0.0/0` and
/// `2000::/3` public, the rest of IPv6 reserved so unknown space fails closed).
///
/// Rows nest or are disjoint; the most specific row containing an address
/// wins.
#[rustfmt::skip]
pub const RANGES: &[Classification] = &[
    // IPv4
    v4(0, 0, 0, 0, 0, Public, "public"),
    v4(0, 0, 0, 0, 8, Never, "unspecified"),
    v4(10, 0, 0, 0, 8, Private, "private-use"),
    v4(100, 64, 0, 0, 10, Private, "carrier-grade NAT"),
    v4(100, 100, 100, 200, 32, Never, METADATA),
    v4(127, 0, 0, 0, 8, Loopback, "loopback"),
    v4(169, 254, 0, 0, 16, Private, "link-local"),
    v4(169, 254, 169, 254, 32, Never, METADATA),
    v4(169, 254, 170, 2, 32, Never, METADATA),
    v4(172, 16, 0, 0, 12, Private, "private-use"),
    v4(192, 0, 0, 0, 24, Reserved, "IETF protocol assignments"),
    v4(192, 0, 2, 0, 24, Reserved, DOCUMENTATION),
    v4(192, 88, 99, 0, 24, Reserved, "6to4 relay anycast"),
    v4(192, 168, 0, 0, 16, Private, "private-use"),
    v4(198, 18, 0, 0, 15, Reserved, "benchmarking"),
    v4(198, 51, 100, 0, 24, Reserved, DOCUMENTATION),
    v4(203, 0, 113, 0, 24, Reserved, DOCUMENTATION),
    v4(224, 0, 0, 0, 4, Never, "multicast"),
    v4(240, 0, 0, 0, 4, Reserved, "reserved"),
    v4(255, 255, 255, 255, 32, Never, "broadcast"),
    // IPv6
    v6([0, 0, 0, 0, 0, 0, 0, 0], 0, Reserved, "unassigned"),
    v6([0x2000, 0, 0, 0, 0, 0, 0, 0], 3, Public, "public"),
    v6([0, 0, 0, 0, 0, 0, 0, 0], 128, Never, "unspecified"),
    v6([0, 0, 0, 0, 0, 0, 0, 1], 128, Loopback, "loopback"),
    v6([0, 0, 0, 0, 0, 0, 0, 0], 96, Reserved, "IPv4-compatible"),
    // Addresses here are canonicalized to IPv4 first; the row is a fallback.
    v6([0, 0, 0, 0, 0, 0xffff, 0, 0], 96, Reserved, "IPv4-mapped"),
    v6([0, 0, 0, 0, 0xffff, 0, 0, 0], 96, Reserved, "IPv4-translated"),
    // Addresses here are canonicalized to IPv4 first; the row is a fallback.
    v6([0x64, 0xff9b, 0, 0, 0, 0, 0, 0], 96, Reserved, "NAT64"),
    v6([0x64, 0xff9b, 1, 0, 0, 0, 0, 0], 48, Reserved, "local-use NAT64"),
    v6([0x100, 0, 0, 0, 0, 0, 0, 0], 64, Reserved, "discard-only"),
    v6([0x2001, 0, 0, 0, 0, 0, 0, 0], 23, Reserved, "IETF protocol assignments"),
    v6([0x2001, 0, 0, 0, 0, 0, 0, 0], 32, Reserved, "teredo"),
    v6([0x2001, 2, 0, 0, 0, 0, 0, 0], 48, Reserved, "benchmarking"),
    v6([0x2001, 0x10, 0, 0, 0, 0, 0, 0], 28, Reserved, "ORCHID"),
    v6([0x2001, 0x20, 0, 0, 0, 0, 0, 0], 28, Reserved, "ORCHIDv2"),
    v6([0x2001, 0xdb8, 0, 0, 0, 0, 0, 0], 32, Reserved, DOCUMENTATION),
    v6([0x2002, 0, 0, 0, 0, 0, 0, 0], 16, Reserved, "6to4"),
    v6([0x3fff, 0, 0, 0, 0, 0, 0, 0], 20, Reserved, DOCUMENTATION),
    v6([0x5f00, 0, 0, 0, 0, 0, 0, 0], 16, Reserved, "segment routing"),
    v6([0xfc00, 0, 0, 0, 0, 0, 0, 0], 7, Private, "unique-local"),
    v6([0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254], 128, Never, METADATA),
    v6([0xfe80, 0, 0, 0, 0, 0, 0, 0], 10, Private, "link-local"),
    v6([0xfec0, 0, 0, 0, 0, 0, 0, 0], 10, Reserved, "site-local"),
    v6([0xff00, 0, 0, 0, 0, 0, 0, 0], 8, Never, "multicast"),
];

/// The IPv4 address embedded in an IPv4-mapped (`::ffff:a.b.c.d`) or NAT64
/// well-known-prefix (`64:ff9b::a.b.c.d`) address.
fn embedded_v4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    if let Some(v4) = ip.to_ipv4_mapped() {
        return Some(v4);
    }
    let s = ip.segments();
    if s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        let o = ip.octets();
        return Some(Ipv4Addr::new(o[12], o[13], o[14], o[15]));
    }
    None
}

/// Canonicalizes an address: IPv4-mapped `::ffff:a.b.c.d` and NAT64
/// `64:ff9b::/96` addresses become the embedded IPv4 address, so they cannot
/// dodge the IPv4 rows. Everything else is returned unchanged.
pub fn canonicalize(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => embedded_v4(v6).map_or(ip, IpAddr::V4),
        IpAddr::V4(_) => ip,
    }
}

/// Classifies an address (after [`canonicalize`]) by the most specific row of
/// [`RANGES`] that contains it.
pub fn classify(ip: IpAddr) -> Classification {
    // The table as masks, most specific row first: the first row that
    // contains the address is the longest-prefix match (the runtime
    // classifies every DNS answer of every call, so this is on the hot
    // path; `classify_linear` is the definition it must agree with).
    /// (network, mask, row) per family.
    type Masks = (Vec<(u32, u32, usize)>, Vec<(u128, u128, usize)>);
    static BY_PREFIX: std::sync::LazyLock<Masks> = std::sync::LazyLock::new(|| {
        // Longest prefix first; among equal prefixes the later row
        // first, as `max_by_key` picks the last maximum.
        let mut order: Vec<usize> = (0..RANGES.len()).collect();
        order.sort_by_key(|&i| {
            (
                std::cmp::Reverse(RANGES[i].range.prefix_len()),
                std::cmp::Reverse(i),
            )
        });
        let (mut v4, mut v6) = (Vec::new(), Vec::new());
        for i in order {
            match RANGES[i].range {
                IpNet::V4(n) => v4.push((u32::from(n.network()), u32::from(n.netmask()), i)),
                IpNet::V6(n) => v6.push((u128::from(n.network()), u128::from(n.netmask()), i)),
            }
        }
        (v4, v6)
    });
    let (v4, v6) = &*BY_PREFIX;
    let row = match canonicalize(ip) {
        IpAddr::V4(a) => {
            let x = u32::from(a);
            v4.iter()
                .find(|(net, mask, _)| x & mask == *net)
                .map(|r| r.2)
        }
        IpAddr::V6(a) => {
            let x = u128::from(a);
            v6.iter()
                .find(|(net, mask, _)| x & mask == *net)
                .map(|r| r.2)
        }
    };
    RANGES[row.expect("the default rows cover every address")]
}

/// [`classify`] by its definition: the longest-prefix row, by a scan of
/// the whole table. The fast version is checked against it.
#[cfg(test)]
fn classify_linear(ip: IpAddr) -> Classification {
    let ip = canonicalize(ip);
    *RANGES
        .iter()
        .filter(|row| row.range.contains(&ip))
        .max_by_key(|row| row.range.prefix_len())
        .expect("the default rows cover every address")
}

/// Which classes of the table a network overlaps.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NetworkClasses {
    /// It contains public addresses.
    pub public: bool,
    /// It contains loopback addresses.
    pub loopback: bool,
    /// It contains private or reserved addresses.
    pub private: bool,
    /// It contains never-reachable addresses.
    pub never: bool,
    /// It lies entirely inside never-reachable rows.
    pub only_never: bool,
}

/// The IPv6 /96 prefixes whose networks embed an IPv4 block in their last
/// 32 bits (docs/spec.md §2): IPv4-mapped (RFC 4291), NAT64 well-known
/// (RFC 6052), IPv4-compatible (RFC 4291, deprecated) and IPv4-translated
/// (RFC 2765). A `networks` block written in one of them is judged on the
/// IPv4 block it embeds, for breadth and containment alike, so `::/96`
/// is as broad as `0.0.0.0/0`.
pub const EMBEDDING_V4: [[u16; 6]; 4] = [
    [0, 0, 0, 0, 0, 0xffff],
    [0x64, 0xff9b, 0, 0, 0, 0],
    [0, 0, 0, 0, 0, 0],
    [0, 0, 0, 0, 0xffff, 0],
];

/// The IPv4 block an IPv6 network of at least /96 embeds, if it lies in
/// one of the [`EMBEDDING_V4`] prefixes. `::/127` and narrower (`::` and
/// `::1`) are the IPv6 unspecified and loopback addresses, never
/// IPv4-compatible ones (RFC 4291 §2.5.5.1), so they stay IPv6.
fn embedded_v4_network(n: Ipv6Net) -> Option<Ipv4Net> {
    if n.prefix_len() < 96 {
        return None;
    }
    let s = n.network().segments();
    if !EMBEDDING_V4.iter().any(|p| s[..6] == p[..]) {
        return None;
    }
    if n.prefix_len() >= 127 && s[6] == 0 && s[7] <= 1 {
        return None;
    }
    let o = n.network().octets();
    let v4 = Ipv4Addr::new(o[12], o[13], o[14], o[15]);
    Some(Ipv4Net::new_assert(v4, n.prefix_len() - 96))
}

/// Whether an answer lies in an IPv4-embedding prefix that [`canonicalize`]
/// leaves as IPv6 (IPv4-compatible, IPv4-translated): its own /128 in
/// `networks` reads as the IPv4 address it embeds, so only a broad IPv6
/// network covers it.
pub fn embeds_v4_only_in_networks(ip: IpAddr) -> bool {
    match canonicalize(ip) {
        IpAddr::V6(v6) => embedded_v4_network(Ipv6Net::new_assert(v6, 128)).is_some(),
        IpAddr::V4(_) => false,
    }
}

/// Canonicalizes a network: host bits are zeroed (`10.1.2.3/8` becomes
/// `10.0.0.0/8`), and a network in an IPv4-embedding prefix
/// ([`EMBEDDING_V4`]: `::ffff:a.b.c.d/96+n`, `64:ff9b::a.b.c.d/96+n`,
/// `::a.b.c.d/96+n`, `::ffff:0:a.b.c.d/96+n`) becomes the IPv4 network
/// `a.b.c.d/n`.
pub fn canonical_network(net: IpNet) -> IpNet {
    let net = net.trunc();
    if let IpNet::V6(n) = net {
        if let Some(v4) = embedded_v4_network(n) {
            return IpNet::V4(v4);
        }
    }
    net
}

/// The canonical spelling of a set of networks: each block canonical, blocks
/// inside another dropped, adjacent blocks merged. Same addresses, one
/// spelling, so semantically equal `networks` compile to the same IR (and a
/// pair of /16s that together span a /15 is judged as the /15 it is).
pub fn aggregate_networks(
    nets: &std::collections::BTreeSet<IpNet>,
) -> std::collections::BTreeSet<IpNet> {
    let v: Vec<IpNet> = nets.iter().map(|n| canonical_network(*n)).collect();
    IpNet::aggregate(&v).into_iter().collect()
}

/// Computes which classes a network overlaps (after [`canonical_network`]).
///
/// An IPv6 network wider than the mapped or NAT64 /96 overlaps every IPv4
/// class, since addresses in those /96s classify as their embedded IPv4.
pub fn classify_network(net: IpNet) -> NetworkClasses {
    let mut seen = [false; AddressClass::ALL.len()];
    collect_classes(canonical_network(net), &mut seen);
    let has = |c: AddressClass| seen[c as usize];
    let any = seen.iter().any(|s| *s);
    NetworkClasses {
        public: has(Public),
        loopback: has(Loopback),
        private: has(Private) || has(Reserved),
        never: has(Never),
        only_never: any && AddressClass::ALL.iter().all(|c| *c == Never || !has(*c)),
    }
}

/// Marks in `seen` every class that the longest-prefix match assigns to some
/// address of `net` (which must be canonical).
fn collect_classes(net: IpNet, seen: &mut [bool; 5]) {
    // The most specific row containing the whole network applies to the part
    // of it that no more specific row covers.
    let base = RANGES
        .iter()
        .filter(|row| row.range.contains(&net))
        .max_by_key(|row| row.range.prefix_len())
        .expect("the default rows cover every network");
    // Rows strictly inside the network; keep only the outermost ones, which
    // are disjoint because the table's rows nest.
    let inner: Vec<IpNet> = RANGES
        .iter()
        .map(|row| row.range)
        .filter(|r| *r != net && net.contains(r))
        .collect();
    let tops: Vec<IpNet> = inner
        .iter()
        .filter(|r| !inner.iter().any(|o| o != *r && o.contains(*r)))
        .copied()
        .collect();
    if IpNet::aggregate(&tops) != vec![net] {
        seen[base.class as usize] = true;
    }
    for top in tops {
        // The IPv4-embedding /96 rows canonicalize to 0.0.0.0/0.
        collect_classes(canonical_network(top), seen);
    }
}

/// Whether a network is wider than a /16 (IPv4) or a /48 (IPv6), after
/// [`canonical_network`], or an IPv6 network holding a whole IPv4-embedding
/// /96 ([`EMBEDDING_V4`]: `::/80` spans every IPv4-compatible address, all
/// of IPv4 again): such networks make a target `broad`.
pub fn is_broad_network(net: IpNet) -> bool {
    match canonical_network(net) {
        IpNet::V4(n) => n.prefix_len() < 16,
        IpNet::V6(n) => {
            n.prefix_len() < 48
                || (n.prefix_len() < 96
                    && EMBEDDING_V4.iter().any(|p| {
                        let s = [p[0], p[1], p[2], p[3], p[4], p[5], 0, 0];
                        n.contains(&Ipv6Net::new_assert(Ipv6Addr::from(s), 96))
                    }))
        }
    }
}

/// "a private-use address", "an unspecified address": the class name with its article.
pub fn with_article(name: &str) -> String {
    let vowel = name
        .chars()
        .next()
        .is_some_and(|c| "aeiouAEIOU".contains(c));
    // "unique-local", "unicast": a vowel letter sounding like "you".
    let you_sound = name.get(..3).is_some_and(|p| p.eq_ignore_ascii_case("uni"));
    let article = if vowel && !you_sound { "an" } else { "a" };
    format!("{article} {name} address")
}

#[cfg(test)]
mod article_tests {
    #[test]
    fn articles_follow_the_sound() {
        assert_eq!(
            super::with_article("unique-local"),
            "a unique-local address"
        );
        assert_eq!(super::with_article("unspecified"), "an unspecified address");
        assert_eq!(super::with_article("loopback"), "a loopback address");
        assert_eq!(super::with_article("IPv4-mapped"), "an IPv4-mapped address");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classify_agrees_with_the_linear_scan_at_every_row_edge() {
        // Each row's first and last address and their neighbours, in both
        // families and through the mapped and NAT64 forms, plus a spread.
        let mut probes: Vec<IpAddr> = Vec::new();
        for row in RANGES {
            match row.range {
                IpNet::V4(n) => {
                    let (lo, hi) = (u32::from(n.network()), u32::from(n.broadcast()));
                    for x in [
                        lo.wrapping_sub(1),
                        lo,
                        lo.wrapping_add(1),
                        hi.wrapping_sub(1),
                        hi,
                        hi.wrapping_add(1),
                    ] {
                        let a = Ipv4Addr::from(x);
                        probes.push(IpAddr::V4(a));
                        probes.push(IpAddr::V6(a.to_ipv6_mapped()));
                        let [p, q, r, t] = a.octets();
                        probes.push(IpAddr::V6(Ipv6Addr::new(
                            0x64,
                            0xff9b,
                            0,
                            0,
                            0,
                            0,
                            u16::from_be_bytes([p, q]),
                            u16::from_be_bytes([r, t]),
                        )));
                    }
                }
                IpNet::V6(n) => {
                    let (lo, hi) = (u128::from(n.network()), u128::from(n.broadcast()));
                    for x in [
                        lo.wrapping_sub(1),
                        lo,
                        lo.wrapping_add(1),
                        hi.wrapping_sub(1),
                        hi,
                        hi.wrapping_add(1),
                    ] {
                        probes.push(IpAddr::V6(Ipv6Addr::from(x)));
                    }
                }
            }
        }
        for k in 0..20_000u32 {
            let x = k.wrapping_mul(2_654_435_761);
            probes.push(IpAddr::V4(Ipv4Addr::from(x)));
            probes.push(IpAddr::V6(Ipv6Addr::from(
                (u128::from(x) << 96) | u128::from(k),
            )));
        }
        assert!(probes.len() > 40_000);
        for ip in probes {
            assert_eq!(classify(ip), classify_linear(ip), "{ip}");
        }
    }
    use proptest::prelude::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn net(s: &str) -> IpNet {
        s.parse().unwrap()
    }

    #[test]
    fn addresses_classify_by_most_specific_row() {
        #[rustfmt::skip]
        let cases: &[(&str, AddressClass, &str, &str)] = &[
            // IPv4
            ("0.0.0.0", Never, "0.0.0.0/8", "unspecified"),
            ("0.1.2.3", Never, "0.0.0.0/8", "unspecified"),
            ("10.0.0.1", Private, "10.0.0.0/8", "private-use"),
            ("10.255.255.255", Private, "10.0.0.0/8", "private-use"),
            ("100.64.0.1", Private, "100.64.0.0/10", "carrier-grade NAT"),
            ("100.127.255.255", Private, "100.64.0.0/10", "carrier-grade NAT"),
            ("100.128.0.0", Public, "0.0.0.0/0", "public"),
            ("100.100.100.200", Never, "100.100.100.200/32", METADATA),
            ("100.100.100.201", Private, "100.64.0.0/10", "carrier-grade NAT"),
            ("127.0.0.1", Loopback, "127.0.0.0/8", "loopback"),
            ("127.255.0.9", Loopback, "127.0.0.0/8", "loopback"),
            ("169.254.0.1", Private, "169.254.0.0/16", "link-local"),
            ("169.254.169.254", Never, "169.254.169.254/32", METADATA),
            ("169.254.170.2", Never, "169.254.170.2/32", METADATA),
            ("172.16.0.1", Private, "172.16.0.0/12", "private-use"),
            ("172.31.255.255", Private, "172.16.0.0/12", "private-use"),
            ("172.32.0.0", Public, "0.0.0.0/0", "public"),
            ("192.0.0.8", Reserved, "192.0.0.0/24", "IETF protocol assignments"),
            ("192.0.2.1", Reserved, "192.0.2.0/24", "documentation"),
            ("192.88.99.1", Reserved, "192.88.99.0/24", "6to4 relay anycast"),
            ("192.168.1.1", Private, "192.168.0.0/16", "private-use"),
            ("198.18.0.1", Reserved, "198.18.0.0/15", "benchmarking"),
            ("198.19.255.255", Reserved, "198.18.0.0/15", "benchmarking"),
            ("198.51.100.7", Reserved, "198.51.100.0/24", "documentation"),
            ("203.0.113.9", Reserved, "203.0.113.0/24", "documentation"),
            ("224.0.0.1", Never, "224.0.0.0/4", "multicast"),
            ("239.255.255.250", Never, "224.0.0.0/4", "multicast"),
            ("240.0.0.1", Reserved, "240.0.0.0/4", "reserved"),
            ("255.255.255.254", Reserved, "240.0.0.0/4", "reserved"),
            ("255.255.255.255", Never, "255.255.255.255/32", "broadcast"),
            ("93.184.215.14", Public, "0.0.0.0/0", "public"),
            ("1.1.1.1", Public, "0.0.0.0/0", "public"),
            ("8.8.8.8", Public, "0.0.0.0/0", "public"),
            // IPv6
            ("::", Never, "::/128", "unspecified"),
            ("::1", Loopback, "::1/128", "loopback"),
            ("::2", Reserved, "::/96", "IPv4-compatible"),
            ("::a00:1", Reserved, "::/96", "IPv4-compatible"),
            ("::ffff:0:a00:1", Reserved, "::ffff:0:0:0/96", "IPv4-translated"),
            ("64:ff9b:1::1", Reserved, "64:ff9b:1::/48", "local-use NAT64"),
            ("100::1", Reserved, "100::/64", "discard-only"),
            ("2001:1::1", Reserved, "2001::/23", "IETF protocol assignments"),
            ("2001::1", Reserved, "2001::/32", "teredo"),
            ("2001:0:4136:e378:8000:63bf:3fff:fdd2", Reserved, "2001::/32", "teredo"),
            ("2001:2::1", Reserved, "2001:2::/48", "benchmarking"),
            ("2001:10::1", Reserved, "2001:10::/28", "ORCHID"),
            ("2001:20::1", Reserved, "2001:20::/28", "ORCHIDv2"),
            ("2001:db8::1", Reserved, "2001:db8::/32", "documentation"),
            ("2002:c000:204::1", Reserved, "2002::/16", "6to4"),
            ("3fff::1", Reserved, "3fff::/20", "documentation"),
            ("3fff:1000::1", Public, "2000::/3", "public"),
            ("5f00::1", Reserved, "5f00::/16", "segment routing"),
            ("fc00::1", Private, "fc00::/7", "unique-local"),
            ("fd12:3456::1", Private, "fc00::/7", "unique-local"),
            ("fd00:ec2::254", Never, "fd00:ec2::254/128", METADATA),
            ("fd00:ec2::253", Private, "fc00::/7", "unique-local"),
            ("fe80::1", Private, "fe80::/10", "link-local"),
            ("febf::1", Private, "fe80::/10", "link-local"),
            ("fec0::1", Reserved, "fec0::/10", "site-local"),
            ("ff02::1", Never, "ff00::/8", "multicast"),
            ("2606:4700::1111", Public, "2000::/3", "public"),
            ("2a00:1450:4001::1", Public, "2000::/3", "public"),
            ("4000::1", Reserved, "::/0", "unassigned"),
            ("1::1", Reserved, "::/0", "unassigned"),
            ("e000::1", Reserved, "::/0", "unassigned"),
            // mapped and NAT64 forms classify as the embedded IPv4
            ("::ffff:127.0.0.1", Loopback, "127.0.0.0/8", "loopback"),
            ("::ffff:169.254.169.254", Never, "169.254.169.254/32", METADATA),
            ("::ffff:10.1.2.3", Private, "10.0.0.0/8", "private-use"),
            ("::ffff:93.184.215.14", Public, "0.0.0.0/0", "public"),
            ("::ffff:0.0.0.0", Never, "0.0.0.0/8", "unspecified"),
            ("64:ff9b::a00:1", Private, "10.0.0.0/8", "private-use"),
            ("64:ff9b::a9fe:a9fe", Never, "169.254.169.254/32", METADATA),
            ("64:ff9b::5db8:d70e", Public, "0.0.0.0/0", "public"),
        ];
        for (addr, class, range, name) in cases {
            let c = classify(ip(addr));
            assert_eq!(c.class, *class, "{addr}");
            assert_eq!(c.range, net(range), "{addr}");
            assert_eq!(c.name, *name, "{addr}");
        }
    }

    #[test]
    fn every_row_classifies_its_own_network_address() {
        for row in RANGES {
            if canonicalize(row.range.network()) != row.range.network() {
                // Mapped and NAT64 rows: their addresses classify as IPv4.
                assert_eq!(classify(row.range.network()).range, net("0.0.0.0/8"));
                continue;
            }
            // The first address of each row belongs to the row itself, except
            // where a more specific row starts at the same address.
            let c = classify(row.range.network());
            let more_specific = RANGES.iter().any(|o| {
                o.range.prefix_len() > row.range.prefix_len()
                    && o.range.contains(&row.range.network())
            });
            if !more_specific {
                assert_eq!(c, *row, "{}", row.range);
            }
            // Every row is canonical.
            assert_eq!(row.range, row.range.trunc(), "{}", row.range);
        }
    }

    #[test]
    fn rows_are_unique_and_nest() {
        for (i, a) in RANGES.iter().enumerate() {
            for b in &RANGES[i + 1..] {
                assert_ne!(a.range, b.range);
                let nested = a.range.contains(&b.range) || b.range.contains(&a.range);
                let disjoint =
                    !a.range.contains(&b.range.network()) && !b.range.contains(&a.range.network());
                assert!(nested || disjoint, "{} and {} overlap", a.range, b.range);
            }
        }
    }

    #[test]
    fn canonicalize_unwraps_mapped_and_nat64_only() {
        let cases = [
            ("::ffff:127.0.0.1", "127.0.0.1"),
            ("::ffff:a9fe:a9fe", "169.254.169.254"),
            ("64:ff9b::a00:1", "10.0.0.1"),
            ("64:ff9b::1.2.3.4", "1.2.3.4"),
            ("10.0.0.1", "10.0.0.1"),
            ("::1", "::1"),
            ("::a00:1", "::a00:1"),
            ("64:ff9b:1::a00:1", "64:ff9b:1::a00:1"),
            ("2002:a00:1::", "2002:a00:1::"),
            ("2606:4700::1111", "2606:4700::1111"),
        ];
        for (input, want) in cases {
            assert_eq!(canonicalize(ip(input)), ip(want), "{input}");
        }
    }

    #[test]
    fn class_helpers() {
        let cases = [
            (Public, true, false, "public"),
            (Loopback, false, true, "loopback"),
            (Private, false, true, "private"),
            (Reserved, false, true, "reserved"),
            (Never, false, false, "never"),
        ];
        for (c, public, non_public, s) in cases {
            assert_eq!(c.is_public(), public);
            assert_eq!(c.is_non_public(), non_public);
            assert_eq!(c.as_str(), s);
            assert_eq!(serde_json::to_string(&c).unwrap(), format!("\"{s}\""));
            assert_eq!(c.to_string(), s);
        }
    }

    #[test]
    fn networks_classify_by_overlap() {
        let nc = |public, loopback, private, never, only_never| NetworkClasses {
            public,
            loopback,
            private,
            never,
            only_never,
        };
        let cases = [
            ("10.0.0.0/8", nc(false, false, true, false, false)),
            ("10.1.0.0/16", nc(false, false, true, false, false)),
            ("0.0.0.0/0", nc(true, true, true, true, false)),
            ("::/0", nc(true, true, true, true, false)),
            ("169.254.169.254/32", nc(false, false, false, true, true)),
            ("224.0.0.0/4", nc(false, false, false, true, true)),
            ("239.1.0.0/16", nc(false, false, false, true, true)),
            ("0.0.0.0/8", nc(false, false, false, true, true)),
            ("255.255.255.255/32", nc(false, false, false, true, true)),
            ("169.254.0.0/16", nc(false, false, true, true, false)),
            ("169.254.169.0/24", nc(false, false, true, true, false)),
            ("100.64.0.0/10", nc(false, false, true, true, false)),
            ("127.0.0.0/8", nc(false, true, false, false, false)),
            ("127.0.0.1/32", nc(false, true, false, false, false)),
            ("93.184.0.0/16", nc(true, false, false, false, false)),
            ("192.0.0.0/16", nc(true, false, true, false, false)),
            ("192.0.2.0/24", nc(false, false, true, false, false)),
            ("240.0.0.0/4", nc(false, false, true, true, false)),
            ("192.168.0.0/15", nc(true, false, true, false, false)),
            ("fc00::/7", nc(false, false, true, true, false)),
            ("fd12::/16", nc(false, false, true, false, false)),
            ("fd00:ec2::254/128", nc(false, false, false, true, true)),
            ("ff00::/8", nc(false, false, false, true, true)),
            ("::1/128", nc(false, true, false, false, false)),
            ("::/128", nc(false, false, false, true, true)),
            ("::/127", nc(false, true, false, true, false)),
            // IPv4-compatible ::/96 embeds all of IPv4 (docs/spec.md §2)
            ("::/96", nc(true, true, true, true, false)),
            ("2000::/3", nc(true, false, true, false, false)),
            ("2606:4700::/32", nc(true, false, false, false, false)),
            ("2001:db8::/32", nc(false, false, true, false, false)),
            // mapped and NAT64 forms become the IPv4 network
            ("::ffff:10.0.0.0/104", nc(false, false, true, false, false)),
            (
                "::ffff:169.254.169.254/128",
                nc(false, false, false, true, true),
            ),
            ("64:ff9b::7f00:0/104", nc(false, true, false, false, false)),
            // wider than the mapped /96: overlaps every IPv4 class
            ("::ffff:0:0/95", nc(true, true, true, true, false)),
            ("::/64", nc(true, true, true, true, false)),
            ("64:ff9b::/64", nc(true, true, true, true, false)),
        ];
        for (n, want) in cases {
            assert_eq!(classify_network(net(n)), want, "{n}");
        }
    }

    #[test]
    fn canonical_networks() {
        let cases = [
            ("10.1.2.3/8", "10.0.0.0/8"),
            ("10.0.0.0/8", "10.0.0.0/8"),
            ("192.168.1.77/24", "192.168.1.0/24"),
            ("::ffff:10.0.0.0/104", "10.0.0.0/8"),
            ("::ffff:10.9.9.9/104", "10.0.0.0/8"),
            ("::ffff:0:0/96", "0.0.0.0/0"),
            ("::ffff:1.2.3.4/128", "1.2.3.4/32"),
            ("64:ff9b::a00:0/120", "10.0.0.0/24"),
            // IPv4-compatible and IPv4-translated forms too
            ("::/96", "0.0.0.0/0"),
            ("::a00:0/104", "10.0.0.0/8"),
            ("::ffff:0:a00:0/104", "10.0.0.0/8"),
            ("::ffff:0:0:0/96", "0.0.0.0/0"),
            ("::2/127", "0.0.0.2/31"),
            // ...but `::` and `::1` are IPv6 addresses of their own
            ("::1/128", "::1/128"),
            ("::/128", "::/128"),
            ("::/127", "::/127"),
            ("::ffff:0:0/95", "::fffe:0:0/95"),
            ("fd00::1/8", "fd00::/8"),
            ("2001:db8::1/32", "2001:db8::/32"),
        ];
        for (input, want) in cases {
            assert_eq!(canonical_network(net(input)), net(want), "{input}");
        }
    }

    #[test]
    fn broad_networks() {
        let cases = [
            ("10.0.0.0/8", true),
            ("10.0.0.0/15", true),
            ("10.0.0.0/16", false),
            ("10.0.0.0/24", false),
            ("0.0.0.0/0", true),
            ("fd00::/8", true),
            ("fd00::/47", true),
            ("fd00::/48", false),
            ("fd00::/64", false),
            ("::ffff:10.0.0.0/104", true),
            ("::ffff:10.0.0.0/112", false),
            ("64:ff9b::a00:0/120", false),
            // an IPv4-embedding /96 is as broad as 0.0.0.0/0 (docs/spec.md §2)
            ("::/96", true),
            ("::ffff:0:0/96", true),
            ("64:ff9b::/96", true),
            ("::ffff:0:0:0/96", true),
            ("::a00:0/104", true),
            ("::a00:0/112", false),
            ("::1/128", false),
            // an IPv6 network holding a whole embedding /96 spans all of IPv4
            ("::/80", true),
            ("::/95", true),
            ("::ffff:0:0/95", true),
            ("64:ff9b::/64", true),
            ("::1:0:0/96", false),
            ("fd00::/64", false),
        ];
        for (n, want) in cases {
            assert_eq!(is_broad_network(net(n)), want, "{n}");
        }
    }

    proptest! {
        /// Every IPv4-embedding spelling of an IPv4 block is judged exactly
        /// as that block: same canonical form, breadth and classes.
        #[test]
        fn embedded_networks_are_judged_as_their_ipv4_block(bits: u32, len in 0u8..=32, form in 0usize..4) {
            let v4 = Ipv4Net::new(Ipv4Addr::from(bits), len).unwrap().trunc();
            let p = EMBEDDING_V4[form];
            let o = v4.network().octets();
            let v6 = Ipv6Addr::new(
                p[0], p[1], p[2], p[3], p[4], p[5],
                u16::from_be_bytes([o[0], o[1]]),
                u16::from_be_bytes([o[2], o[3]]),
            );
            let written = IpNet::V6(Ipv6Net::new(v6, 96 + len).unwrap());
            // `::/127` and narrower are `::` and `::1`, the one exception.
            prop_assume!(!(form == 2 && len >= 31 && bits <= 1));
            prop_assert_eq!(canonical_network(written), IpNet::V4(v4));
            prop_assert_eq!(is_broad_network(written), is_broad_network(IpNet::V4(v4)));
            prop_assert_eq!(classify_network(written), classify_network(IpNet::V4(v4)));
        }

        #[test]
        fn mapped_and_nat64_classify_as_ipv4(bits: u32) {
            let v4 = Ipv4Addr::from(bits);
            let plain = classify(IpAddr::V4(v4));
            prop_assert_eq!(classify(IpAddr::V6(v4.to_ipv6_mapped())), plain);
            let o = v4.octets();
            let nat64 = Ipv6Addr::new(
                0x64, 0xff9b, 0, 0, 0, 0,
                u16::from_be_bytes([o[0], o[1]]),
                u16::from_be_bytes([o[2], o[3]]),
            );
            prop_assert_eq!(classify(IpAddr::V6(nat64)), plain);
        }

        #[test]
        fn an_address_class_is_among_its_networks_classes(bits: u32, len in 0u8..=32) {
            let n = IpNet::V4(Ipv4Net::new(Ipv4Addr::from(bits), len).unwrap());
            let c = classify(n.network()).class;
            let nc = classify_network(n);
            let hit = match c {
                Public => nc.public,
                Loopback => nc.loopback,
                Private | Reserved => nc.private,
                Never => nc.never,
            };
            prop_assert!(hit, "{} in {}", n.network(), n);
            if len == 32 {
                prop_assert_eq!(nc.only_never, c == Never);
            }
        }
    }
}
