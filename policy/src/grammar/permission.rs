//! Normalized permissions: a target plus methods, headers, subprotocols and
//! networks, with containment and the derived flags.

use crate::address;
use crate::capability::Capability;
use crate::target::{HostPattern, PortPattern, Target};
use ipnet::IpNet;
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::fmt;
use std::net::IpAddr;

/// An HTTP method a request target may allow. `CONNECT` and `TRACE` are not
/// representable: they are never allowed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Method {
    /// GET
    Get,
    /// HEAD
    Head,
    /// POST
    Post,
    /// PUT
    Put,
    /// PATCH
    Patch,
    /// DELETE
    Delete,
    /// OPTIONS
    Options,
}

impl Method {
    /// All methods, in canonical order.
    pub const ALL: [Method; 7] = [
        Method::Get,
        Method::Head,
        Method::Post,
        Method::Put,
        Method::Patch,
        Method::Delete,
        Method::Options,
    ];

    /// Parses an exact (uppercase) method name.
    pub fn parse(s: &str) -> Option<Method> {
        // Byte patterns: a `str` match compiled to a `bcmp` call per arm.
        Some(match s.as_bytes() {
            [b'G', b'E', b'T'] => Method::Get,
            [b'H', b'E', b'A', b'D'] => Method::Head,
            [b'P', b'O', b'S', b'T'] => Method::Post,
            [b'P', b'U', b'T'] => Method::Put,
            [b'P', b'A', b'T', b'C', b'H'] => Method::Patch,
            [b'D', b'E', b'L', b'E', b'T', b'E'] => Method::Delete,
            [b'O', b'P', b'T', b'I', b'O', b'N', b'S'] => Method::Options,
            _ => return None,
        })
    }

    /// The uppercase name.
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Head => "HEAD",
            Method::Post => "POST",
            Method::Put => "PUT",
            Method::Patch => "PATCH",
            Method::Delete => "DELETE",
            Method::Options => "OPTIONS",
        }
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The methods of a request target.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Methods {
    /// `"*"`: every method in [`Method::ALL`].
    Any,
    /// A non-empty set.
    Set(BTreeSet<Method>),
}

impl Methods {
    /// A method set in canonical form: all seven methods are `"*"` (they mean
    /// the same, so they must compile the same).
    pub fn from_set(set: BTreeSet<Method>) -> Methods {
        if set.len() == Method::ALL.len() {
            Methods::Any
        } else {
            Methods::Set(set)
        }
    }

    /// Whether `m` is allowed.
    pub fn allows(&self, m: Method) -> bool {
        match self {
            Methods::Any => true,
            Methods::Set(s) => s.contains(&m),
        }
    }

    /// Whether every method of `inner` is allowed here.
    pub fn contains(&self, inner: &Methods) -> bool {
        match (self, inner) {
            (Methods::Any, _) => true,
            (Methods::Set(s), Methods::Set(t)) => t.is_subset(s),
            (Methods::Set(s), Methods::Any) => s.len() == Method::ALL.len(),
        }
    }

    /// The IR spelling: `["*"]` or the canonical ordered list.
    pub fn to_strings(&self) -> Vec<String> {
        match self {
            Methods::Any => vec!["*".to_string()],
            Methods::Set(s) => s.iter().map(|m| m.as_str().to_string()).collect(),
        }
    }
}

/// The derived flags of a permission (docs/spec.md §2.4). Never written by hand.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct Flags {
    /// Any host, a public-suffix wildcard, or a network wider than /16 (v4) or /48 (v6).
    pub broad: bool,
    /// A subdomain wildcard host.
    pub wildcard: bool,
    /// Port `*`.
    pub any_port: bool,
    /// Methods `"*"`.
    pub any_method: bool,
    /// A loopback IP, `localhost`/`*.localhost`, or networks including loopback.
    pub loopback: bool,
    /// A non-public IP host, or networks including non-public addresses.
    pub private: bool,
}

impl Flags {
    /// The names of the set flags, in a fixed order.
    pub fn names(&self) -> Vec<&'static str> {
        let mut v = Vec::new();
        if self.broad {
            v.push("broad");
        }
        if self.wildcard {
            v.push("wildcard");
        }
        if self.any_port {
            v.push("any_port");
        }
        if self.any_method {
            v.push("any_method");
        }
        if self.loopback {
            v.push("loopback");
        }
        if self.private {
            v.push("private");
        }
        v
    }
}

/// One normalized permission.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Permission {
    /// Which capability.
    pub capability: Capability,
    /// The target.
    pub target: Target,
    /// Methods (request targets only).
    pub methods: Option<Methods>,
    /// Extra header names it may send, lowercase.
    pub headers: BTreeSet<String>,
    /// Subprotocols `open` may ask for (websocket targets).
    pub subprotocols: BTreeSet<String>,
    /// Non-public networks its host may resolve to, canonical.
    pub networks: BTreeSet<IpNet>,
}

impl Permission {
    /// Whether `inner` is contained in `self`: same capability, target
    /// contained, and methods, headers, subprotocols and networks a subset.
    pub fn contains(&self, inner: &Permission) -> bool {
        self.capability == inner.capability
            && self.target.contains(&inner.target)
            && match (&self.methods, &inner.methods) {
                (Some(a), Some(b)) => a.contains(b),
                (None, None) => true,
                _ => false,
            }
            && inner.headers.is_subset(&self.headers)
            && inner.subprotocols.is_subset(&self.subprotocols)
            && inner
                .networks
                .iter()
                .all(|n| self.networks.iter().any(|o| o.contains(n)))
    }

    /// The derived flags.
    pub fn flags(&self) -> Flags {
        let mut f = Flags {
            wildcard: matches!(self.target.host, HostPattern::Wildcard(_)),
            any_port: self.target.port == PortPattern::Any,
            any_method: matches!(self.methods, Some(Methods::Any)),
            ..Flags::default()
        };
        match &self.target.host {
            HostPattern::Any => f.broad = true,
            HostPattern::Wildcard(s) => {
                if crate::target::is_public_suffix(s) {
                    f.broad = true;
                }
                if crate::target::is_localhost_name(s) {
                    f.loopback = true;
                }
            }
            HostPattern::Domain(d) => {
                if crate::target::is_localhost_name(d) {
                    f.loopback = true;
                }
            }
            HostPattern::Ip(ip) => match address::classify(*ip).class {
                address::AddressClass::Loopback => f.loopback = true,
                c if c.is_non_public() => f.private = true,
                _ => {}
            },
        }
        for n in &self.networks {
            if address::is_broad_network(*n) {
                f.broad = true;
            }
            let c = address::classify_network(*n);
            f.loopback |= c.loopback;
            f.private |= c.private;
        }
        f
    }

    /// Why this permission is broad, in words; `None` when it is not
    /// (exactly when [`Flags::broad`] is unset). See [`broad_reason`].
    pub fn broad_reason(&self) -> Option<String> {
        broad_reason(&self.target, &self.networks)
    }

    /// Whether a non-public address is covered by this permission: the host is
    /// that IP literal, the host is a localhost name and the address is
    /// loopback, or `networks` contain it. Never-class addresses are never
    /// covered.
    pub fn covers_address(&self, ip: IpAddr) -> bool {
        let ip = address::canonicalize(ip);
        let class = address::classify(ip).class;
        match class {
            address::AddressClass::Never => false,
            address::AddressClass::Public => true,
            _ => {
                matches!(&self.target.host, HostPattern::Ip(h) if *h == ip)
                    || (class == address::AddressClass::Loopback
                        && self.target.host.is_localhost_name())
                    || self.networks.iter().any(|n| n.contains(&ip))
            }
        }
    }
}

/// Why a target with these `networks` is broad (docs/spec.md §2.4), in the
/// one wording every command shows; `None` when it is not broad. Each reason
/// names what makes it broad, joined with `; `:
///
/// * `any host over https`: the host is `*`;
/// * `every name under public suffix github.io`: a public-suffix wildcard;
/// * `network 10.0.0.0/8 is wider than /16 (IPv4) or /48 (IPv6)`;
/// * `network 64:ff9b::/64 holds a whole IPv4-embedding /96 (all of IPv4)`:
///   an IPv6 network no wider than /48 that still spans every IPv4 address
///   through an embedding form (docs/spec.md §2.6).
///
/// Networks are judged (and named) in canonical form, as the flags are.
///
/// ```
/// use netgrant_policy::broad_reason;
/// use netgrant_policy::Target;
/// let any = Target::parse("https://*/").unwrap();
/// assert_eq!(broad_reason(&any, []).as_deref(), Some("any host over https"));
/// let host = Target::parse("https://api.example.com/").unwrap();
/// assert_eq!(broad_reason(&host, []), None);
/// let nets = ["10.0.0.0/8".parse().unwrap()];
/// assert_eq!(
///     broad_reason(&host, &nets).as_deref(),
///     Some("network 10.0.0.0/8 is wider than /16 (IPv4) or /48 (IPv6)")
/// );
/// ```
pub fn broad_reason<'a>(
    target: &Target,
    networks: impl IntoIterator<Item = &'a IpNet>,
) -> Option<String> {
    reasons(Some(target), networks.into_iter().copied())
}

/// [`broad_reason`] for the IR spellings of a target and its networks (an IR
/// entry's `target` and `networks`, as `show` reads them from a policy file);
/// a spelling that does not parse adds no reason.
pub fn broad_reason_ir(target: &str, networks: &[String]) -> Option<String> {
    let target = Target::parse(target).ok();
    reasons(
        target.as_ref(),
        networks.iter().filter_map(|n| n.parse::<IpNet>().ok()),
    )
}

fn reasons(target: Option<&Target>, networks: impl Iterator<Item = IpNet>) -> Option<String> {
    let mut why = Vec::new();
    match target.map(|t| (&t.host, t.scheme)) {
        Some((HostPattern::Any, scheme)) => why.push(format!("any host over {scheme}")),
        Some((HostPattern::Wildcard(s), _)) if crate::target::is_public_suffix(s) => {
            why.push(format!("every name under public suffix {s}"))
        }
        _ => {}
    }
    for n in networks {
        let n = address::canonical_network(n);
        if !address::is_broad_network(n) {
            continue;
        }
        let wide = match n {
            IpNet::V4(v4) => v4.prefix_len() < 16,
            IpNet::V6(v6) => v6.prefix_len() < 48,
        };
        why.push(if wide {
            format!("network {n} is wider than /16 (IPv4) or /48 (IPv6)")
        } else {
            // Broad yet no wider than /48: it holds an IPv4-embedding /96.
            format!("network {n} holds a whole IPv4-embedding /96 (all of IPv4)")
        });
    }
    (!why.is_empty()).then(|| why.join("; "))
}

#[cfg(test)]
mod broad_reason_tests {
    use super::*;

    fn perm(url: &str, nets: &[&str]) -> Permission {
        Permission {
            capability: Capability::Request,
            target: Target::parse(url).unwrap(),
            methods: Some(Methods::Any),
            headers: BTreeSet::new(),
            subprotocols: BTreeSet::new(),
            networks: nets
                .iter()
                .map(|n| address::canonical_network(n.parse().unwrap()))
                .collect(),
        }
    }

    #[test]
    fn every_kind_of_broad_is_named() {
        let cases: &[(&str, &[&str], Option<&str>)] = &[
            ("https://*/", &[], Some("any host over https")),
            ("wss://*:*/", &[], Some("any host over wss")),
            (
                "https://*.github.io/",
                &[],
                Some("every name under public suffix github.io"),
            ),
            ("https://*.example.com/", &[], None),
            ("https://api.example.com/", &["10.0.0.0/16"], None),
            (
                "https://api.example.com/",
                &["10.0.0.0/8"],
                Some("network 10.0.0.0/8 is wider than /16 (IPv4) or /48 (IPv6)"),
            ),
            (
                "https://api.example.com/",
                &["fd00::/8"],
                Some("network fd00::/8 is wider than /16 (IPv4) or /48 (IPv6)"),
            ),
            (
                "https://api.example.com/",
                &["::/96"],
                Some("network 0.0.0.0/0 is wider than /16 (IPv4) or /48 (IPv6)"),
            ),
            (
                "https://api.example.com/",
                &["64:ff9b::/64"],
                Some("network 64:ff9b::/64 holds a whole IPv4-embedding /96 (all of IPv4)"),
            ),
            (
                "https://*/",
                &["10.0.0.0/8"],
                Some("any host over https; network 10.0.0.0/8 is wider than /16 (IPv4) or /48 (IPv6)"),
            ),
            ("https://localhost/", &["127.0.0.0/16"], None),
        ];
        for (url, nets, want) in cases {
            let p = perm(url, nets);
            assert_eq!(p.broad_reason().as_deref(), *want, "{url} {nets:?}");
            // A reason exactly when the flag is set.
            assert_eq!(p.flags().broad, want.is_some(), "{url} {nets:?}");
            // The IR spellings give the same words.
            let spelled: Vec<String> = p.networks.iter().map(|n| n.to_string()).collect();
            assert_eq!(
                broad_reason_ir(&p.target.to_string(), &spelled).as_deref(),
                *want,
                "{url} {nets:?}"
            );
        }
    }
}
