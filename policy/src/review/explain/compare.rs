//! Candidates (every entry of the policy, normalized once), the request
//! parsed once, and the part-by-part comparison that ranks nearest misses.

use super::*;

/// One entry of the policy, as explain compares it. `None` fields are unknown
/// (an ignored grant entry that did not set them) and never differ.
#[derive(Clone, Debug)]
pub(super) struct Cand {
    pub(super) status: MissStatus,
    pub(super) capability: Capability,
    pub(super) target: Target,
    pub(super) id: String,
    pub(super) methods: Option<Methods>,
    pub(super) headers: Option<BTreeSet<String>>,
    pub(super) subprotocols: Option<BTreeSet<String>>,
    pub(super) networks: Option<BTreeSet<IpNet>>,
    /// Granted entries: the request behind them (itself when not narrowing).
    pub(super) requested: Option<Permission>,
    pub(super) reason: Option<String>,
    pub(super) ignored: Option<(IgnoredCode, String)>,
}

impl Cand {
    /// The permission, when every field is known.
    pub(super) fn permission(&self) -> Option<Permission> {
        Some(Permission {
            capability: self.capability,
            target: self.target.clone(),
            methods: match self.capability {
                Capability::Request => Some(self.methods.clone()?),
                Capability::Websocket => None,
            },
            headers: self.headers.clone()?,
            subprotocols: self.subprotocols.clone()?,
            networks: self.networks.clone()?,
        })
    }
}

pub(super) fn candidates(policy: &CompiledPolicy) -> Vec<Cand> {
    let mut out = Vec::new();
    let mut requested_seen = std::collections::HashSet::new();
    for e in policy.entries() {
        let (own, req) = (&e.permission, &e.requested);
        let (status, requested) = match e.status {
            Status::Granted => (MissStatus::Granted, Some(req.clone())),
            Status::NotGranted => (MissStatus::NotGranted, None),
        };
        if e.status == Status::NotGranted {
            requested_seen.insert((own.capability, own.target.to_string()));
        }
        out.push(Cand {
            status,
            capability: own.capability,
            target: own.target.clone(),
            id: e.id.clone(),
            methods: own.methods.clone(),
            headers: Some(own.headers.clone()),
            subprotocols: Some(own.subprotocols.clone()),
            networks: Some(own.networks.clone()),
            requested,
            reason: e.reason.clone(),
            ignored: None,
        });
    }
    // Requests granted only through narrower entries (a granted entry with
    // the request's own target stands for it).
    let granted_targets: std::collections::HashSet<(Capability, String)> = out
        .iter()
        .filter(|c| c.status == MissStatus::Granted)
        .map(|c| (c.capability, c.target.to_string()))
        .collect();
    let mut extra = Vec::new();
    for c in &out {
        let Some(r) = &c.requested else { continue };
        let key = (r.capability, r.target.to_string());
        if granted_targets.contains(&key) || !requested_seen.insert(key.clone()) {
            continue;
        }
        extra.push(Cand {
            status: MissStatus::Requested,
            capability: r.capability,
            target: r.target.clone(),
            id: format!("{}:{}", key.0, key.1),
            methods: r.methods.clone(),
            headers: Some(r.headers.clone()),
            subprotocols: Some(r.subprotocols.clone()),
            networks: Some(r.networks.clone()),
            requested: None,
            reason: c.reason.clone(),
            ignored: None,
        });
    }
    out.extend(extra);
    // Every request, to give ignored grant entries their parent's defaults.
    let requests: Vec<Permission> = out
        .iter()
        .filter_map(|c| match c.status {
            MissStatus::Granted => c.requested.clone(),
            _ => c.permission(),
        })
        .collect();
    for ig in policy.ignored_grants() {
        let g = &ig.grant;
        let mut c = Cand {
            status: MissStatus::Ignored,
            capability: g.capability,
            target: g.target.clone(),
            id: format!("{}:{}", g.capability, g.target),
            methods: g.methods.clone(),
            headers: g.headers.clone(),
            subprotocols: g.subprotocols.clone(),
            networks: g.networks.clone(),
            requested: None,
            reason: None,
            ignored: Some((ig.code, ig.message.clone())),
        };
        // Unset fields follow the containing request, as compile would fill
        // them (an entry no request contains keeps them unknown).
        if let Some(parent) = requests
            .iter()
            .filter(|r| r.capability == c.capability && r.target.contains(&c.target))
            .min_by(|a, b| a.target.specificity_cmp(&b.target))
        {
            c.methods = c.methods.or_else(|| parent.methods.clone());
            c.headers = c.headers.or_else(|| Some(parent.headers.clone()));
            c.subprotocols = c.subprotocols.or_else(|| Some(parent.subprotocols.clone()));
            c.networks = c.networks.or_else(|| Some(parent.networks.clone()));
        }
        out.push(c);
    }
    out
}

// ---------------------------------------------------------------------------
// The request, parsed once
// ---------------------------------------------------------------------------

pub(super) struct Facts<'r> {
    pub(super) req: &'r Request<'r>,
    pub(super) scheme: Scheme,
    pub(super) host: UrlHost,
    pub(super) port: u16,
    pub(super) readings: PathReadings,
    /// The effective method (request capability).
    pub(super) method: Option<&'r str>,
    /// Lowercase names of the headers that need declaring.
    pub(super) needed_headers: BTreeSet<String>,
    /// Canonical addresses authorize classifies (empty: a name decided on
    /// the URL alone).
    pub(super) addresses: Vec<IpAddr>,
}

impl<'r> Facts<'r> {
    pub(super) fn new(req: &'r Request<'r>, answers: Option<&[IpAddr]>) -> Option<Facts<'r>> {
        let url = url::Url::parse(req.url).ok()?;
        let scheme = Scheme::parse(url.scheme())?;
        let host = UrlHost::from_url(&url)?;
        let port = url.port_or_known_default().unwrap_or(scheme.default_port());
        let readings = path::readings(url.path()).ok()?;
        let method = match req.capability {
            Capability::Request => Some(req.method.unwrap_or("GET")),
            Capability::Websocket => None,
        };
        let needed_headers = req
            .headers
            .iter()
            .filter(|(n, _)| !headers::is_always_allowed(n))
            .map(|(n, _)| n.to_ascii_lowercase())
            .collect();
        let addresses = match &host {
            UrlHost::Ip(ip) => vec![*ip],
            UrlHost::Domain(d) if crate::target::is_localhost_name(d) => LOCALHOST_ADDRS.to_vec(),
            UrlHost::Domain(_) => answers
                .unwrap_or(&[])
                .iter()
                .map(|a| address::canonicalize(*a))
                .collect(),
        };
        Some(Facts {
            req,
            scheme,
            host,
            port,
            readings,
            method,
            needed_headers,
            addresses,
        })
    }

    /// Addresses that only a target naming them (or its networks) reaches.
    pub(super) fn non_public(&self) -> impl Iterator<Item = IpAddr> + '_ {
        self.addresses
            .iter()
            .copied()
            .filter(|a| address::classify(*a).class.is_non_public())
    }
}

// ---------------------------------------------------------------------------
// Comparing one entry with the request
// ---------------------------------------------------------------------------

/// How an entry's host relates to the URL's host.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum HostRelation {
    Match,
    /// Both loopback: `localhost` vs `127.0.0.1`, `127.0.0.1` vs `[::1]`.
    LoopbackAlias,
    /// A wildcard's apex, or a name under the same registrable domain.
    SameSite,
    Unrelated,
}

pub(super) fn registrable(name: &str) -> &str {
    psl::domain_str(name).unwrap_or(name)
}

pub(super) fn is_loopback_host(h: &UrlHost) -> bool {
    match h {
        UrlHost::Ip(ip) => address::classify(*ip).class == AddressClass::Loopback,
        UrlHost::Domain(d) => crate::target::is_localhost_name(d),
    }
}

pub(super) fn host_relation(p: &HostPattern, h: &UrlHost) -> HostRelation {
    if p.matches(h) {
        return HostRelation::Match;
    }
    let pattern_loopback = match p {
        HostPattern::Ip(ip) => address::classify(*ip).class == AddressClass::Loopback,
        _ => p.is_localhost_name(),
    };
    if pattern_loopback && is_loopback_host(h) {
        return HostRelation::LoopbackAlias;
    }
    if let UrlHost::Domain(d) = h {
        let base = match p {
            HostPattern::Domain(x) | HostPattern::Wildcard(x) => x,
            _ => return HostRelation::Unrelated,
        };
        if base == d || registrable(base) == registrable(d) {
            return HostRelation::SameSite;
        }
    }
    HostRelation::Unrelated
}

pub(super) fn list(items: impl IntoIterator<Item = impl fmt::Display>) -> String {
    let v: Vec<String> = items.into_iter().map(|x| x.to_string()).collect();
    if v.is_empty() {
        "none".to_string()
    } else {
        v.join(", ")
    }
}

pub(super) fn tick(s: impl fmt::Display) -> String {
    format!("`{}`", redact::escape_terminal(&s.to_string()))
}

/// Compares one entry with the request: how its host relates, and every
/// part that does not fit.
pub(super) fn compare(c: &Cand, f: &Facts<'_>) -> (HostRelation, Vec<Difference>) {
    let mut d = Vec::new();
    let mut push = |part, message: String| d.push(Difference { part, message });
    let relation = host_relation(&c.target.host, &f.host);
    if c.capability != f.req.capability {
        push(
            Part::Capability,
            format!(
                "a {} target; this request uses {}",
                c.capability.table(),
                f.req.capability.table()
            ),
        );
    } else if c.target.scheme != f.scheme {
        push(
            Part::Scheme,
            format!(
                "scheme {}, the URL uses {}",
                tick(c.target.scheme),
                tick(f.scheme)
            ),
        );
    }
    match relation {
        HostRelation::Match => {}
        HostRelation::LoopbackAlias => push(
            Part::Host,
            format!(
                "host {} is loopback too, but names and IP literals never cross-match (the URL has {})",
                tick(&c.target.host),
                tick(&f.host)
            ),
        ),
        _ => {
            let apex = matches!(&c.target.host, HostPattern::Wildcard(s) if UrlHost::Domain(s.clone()) == f.host);
            push(
                Part::Host,
                if apex {
                    format!(
                        "host {} matches subdomains only, not the apex {}",
                        tick(&c.target.host),
                        tick(&f.host)
                    )
                } else {
                    format!(
                        "host {}, the URL has {}",
                        tick(&c.target.host),
                        tick(&f.host)
                    )
                },
            )
        }
    }
    // `http` vs `https` on their default ports differ in the scheme only.
    let defaults = c.target.scheme != f.scheme
        && c.target.port == PortPattern::Exact(c.target.scheme.default_port())
        && f.port == f.scheme.default_port();
    if !c.target.port.matches(f.port) && !defaults {
        push(
            Part::Port,
            format!(
                "port {}, the URL uses {}",
                c.target.port_number().map_or("*".into(), |p| p.to_string()),
                f.port
            ),
        );
    }
    if !f.readings.all_inside(&c.target.path) {
        let msg = if f.readings.ambiguous_for(&c.target.path) {
            let (outside, how) = f
                .readings
                .outside(&c.target.path)
                .unwrap_or(("", path::Reading::AS_PARSED));
            format!(
                "path is inside {} as written, but under the reading that {}, a server reads it as {}",
                tick(&c.target.path),
                how.describe(f.readings.lookalike()),
                tick(outside)
            )
        } else {
            format!(
                "path prefix {}, the URL path is {}",
                tick(&c.target.path),
                tick(f.readings.as_parsed())
            )
        };
        push(Part::Path, msg);
    }
    if c.capability == f.req.capability {
        if let (Some(m), Some(ms)) = (f.method, &c.methods) {
            let ok = Method::parse(m).is_some_and(|mm| ms.allows(mm));
            if !ok {
                let requested = match (c.status, &c.requested) {
                    (MissStatus::Granted, Some(r)) if r.methods.as_ref() != Some(ms) => format!(
                        "; requested: {}",
                        list(
                            r.methods
                                .as_ref()
                                .map(|x| x.to_strings())
                                .unwrap_or_default()
                        )
                    ),
                    _ => String::new(),
                };
                push(
                    Part::Method,
                    format!(
                        "method {} is not allowed (allows {}{requested})",
                        tick(m),
                        list(ms.to_strings())
                    ),
                );
            }
        }
        if let Some(h) = &c.headers {
            for n in f.needed_headers.iter().filter(|n| !h.contains(*n)) {
                push(
                    Part::Header,
                    format!("header {} is not declared (declares {})", tick(n), list(h)),
                );
            }
        }
        if let Some(s) = &c.subprotocols {
            for p in f.req.subprotocols.iter().filter(|p| !s.contains(*p)) {
                push(
                    Part::Subprotocol,
                    format!(
                        "subprotocol {} is not declared (declares {})",
                        tick(p),
                        list(s)
                    ),
                );
            }
        }
        if let Some(p) = c.permission() {
            for a in f.non_public().filter(|a| !p.covers_address(*a)) {
                let cl = address::classify(a);
                push(
                    Part::Address,
                    format!(
                        "address {a} is {} ({}) and the entry does not cover it (networks: {})",
                        address::with_article(cl.name),
                        cl.range,
                        list(&p.networks)
                    ),
                );
            }
        }
    }
    match (c.status, &c.ignored) {
        (MissStatus::NotGranted, _) => push(Part::Status, "requested but not granted".into()),
        (MissStatus::Requested, _) => push(
            Part::Status,
            "requested, but granted only through narrower entries".into(),
        ),
        (MissStatus::Ignored, Some((_, why))) => push(
            Part::Status,
            format!(
                "grant entry ignored: {}",
                redact::escape_terminal(why.trim_start_matches("granted but not requested: "))
            ),
        ),
        _ => {}
    }
    d.sort_by_key(|x| x.part);
    (relation, d)
}

/// Lower is nearer. Hosts and capabilities weigh most, then scheme, port and
/// path, then what a grant or a manifest line can add.
pub(super) fn score(relation: HostRelation, diffs: &[Difference]) -> u32 {
    let host = match relation {
        HostRelation::Match => 0,
        HostRelation::LoopbackAlias => 30,
        HostRelation::SameSite => 40,
        HostRelation::Unrelated => 1_000,
    };
    host + diffs
        .iter()
        .map(|d| match d.part {
            Part::Capability => 100,
            Part::Scheme => 20,
            Part::Port => 15,
            Part::Path => 10,
            Part::Address => 5,
            Part::Method => 4,
            Part::Header | Part::Subprotocol => 3,
            Part::Status => 2,
            Part::Host => 0,
        })
        .sum::<u32>()
}
