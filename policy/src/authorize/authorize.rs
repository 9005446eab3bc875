//! The authorizer: one decision path for the CLI and the runtime.
//!
//! Lifecycle: [`Authorizer::new`] indexes a [`Policy`] once; [`Authorizer::prepare`]
//! runs every URL-level check (docs/spec.md §5.3 order) and returns a [`Prepared`] that
//! says where to connect; [`Prepared::check_addresses`] classifies the
//! resolved answers and returns the final [`Decision`] with the checked socket
//! addresses. [`Authorizer::authorize`] does both for callers that already
//! have the answers (or none).
//!
//! Matching is indexed by host — an exact map, a wildcard-suffix map and the
//! any-host list — so its cost grows with the number of labels in the host,
//! not with the number of rules.

use crate::address::{self, AddressClass};
use crate::capability::{Capability, Scheme};
use crate::compiled::{CompiledPolicy, PolicyEntry};
use crate::credential::BoundCredential;
use crate::decision::{Allow, Decision, Denial, DenyCode, RuleId, ShownUrl};
use crate::ir::Status;
use crate::path;
use crate::permission::{Method, Permission};
use crate::redact;
use crate::target::{dot_blocks, HostPattern, UrlHost, UrlHostRef, MAX_URL_BYTES};
use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

/// What to authorize.
#[derive(Clone, Debug)]
pub struct Request<'a> {
    /// The capability the caller uses.
    pub capability: Capability,
    /// The URL, as the plugin gave it.
    pub url: &'a str,
    /// HTTP method (request capability; `GET` when `None`). Ignored for websocket.
    pub method: Option<&'a str>,
    /// Headers the plugin wants to send.
    pub headers: &'a [(String, String)],
    /// WebSocket subprotocols the plugin asks for.
    pub subprotocols: &'a [String],
    /// Names of the credentials the plugin asks the host to inject
    /// (docs/spec.md §9.3). Each must be bound by the allowing rule.
    pub credentials: &'a [String],
}

impl<'a> Request<'a> {
    /// A websocket request with no headers or subprotocols.
    pub fn websocket(url: &'a str) -> Self {
        Request {
            capability: Capability::Websocket,
            url,
            method: None,
            headers: &[],
            subprotocols: &[],
            credentials: &[],
        }
    }

    /// A one-shot HTTP request with no headers.
    pub fn http(method: &'a str, url: &'a str) -> Self {
        Request {
            capability: Capability::Request,
            url,
            method: Some(method),
            headers: &[],
            subprotocols: &[],
            credentials: &[],
        }
    }

    /// The same request, asking for these credentials.
    pub fn with_credentials(self, credentials: &'a [String]) -> Self {
        Request {
            credentials,
            ..self
        }
    }
}

/// Where the caller must connect, once the URL-level checks passed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Destination {
    /// An IP literal: connect to exactly this address.
    Ip(IpAddr),
    /// `localhost` / `*.localhost`: loopback by definition, dialed without DNS
    /// (127.0.0.1, then ::1).
    Localhost,
    /// A domain name to resolve once; every answer goes to
    /// [`Prepared::check_addresses`].
    Name(String),
}

/// The loopback addresses a localhost name is dialed at, in order.
pub const LOCALHOST_ADDRS: [IpAddr; 2] = [
    IpAddr::V4(Ipv4Addr::LOCALHOST),
    IpAddr::V6(Ipv6Addr::LOCALHOST),
];

#[derive(Clone, Debug)]
struct Rule {
    /// Shared with every decision that names the rule.
    id: RuleId,
    permission: Permission,
    /// `permission.headers` as a list, for `check_headers` (built once here,
    /// not on every call).
    declared_headers: Vec<String>,
    /// The header placements of every credential the rule declares
    /// (lowercase): the host owns them, the plugin may not send them.
    credential_headers: Vec<String>,
    /// The credentials this rule's grant binds, by name.
    credentials: Vec<BoundCredential>,
    /// `permission.methods` as bits ([`method_bit`]; none for websocket),
    /// tested on every allow without a set lookup.
    method_bits: u8,
}

/// The bit of `m` in [`Rule::method_bits`].
fn method_bit(m: Method) -> u8 {
    1 << m as u8
}

impl Rule {
    fn new(id: RuleId, permission: Permission) -> Rule {
        let declared_headers = permission.headers.iter().cloned().collect();
        let method_bits = Method::ALL
            .iter()
            .filter(|&&m| permission.methods.as_ref().is_some_and(|ms| ms.allows(m)))
            .fold(0, |bits, &m| bits | method_bit(m));
        Rule {
            id,
            permission,
            declared_headers,
            credential_headers: Vec::new(),
            credentials: Vec::new(),
            method_bits,
        }
    }

    /// A granted rule, with its entry's credentials.
    fn granted(e: &PolicyEntry) -> Rule {
        let mut r = Rule::new(RuleId::from(e.id.as_str()), e.permission.clone());
        r.credential_headers = e
            .declared_credentials()
            .filter_map(|c| c.placement.header().map(str::to_string))
            .collect();
        r.credentials = e.credentials.iter().filter_map(|c| c.bound()).collect();
        r
    }

    fn binds(&self, name: &str) -> bool {
        self.credentials.iter().any(|c| c.name == name)
    }
}

/// A map with FxHash (rustc's hasher, from `rustc-hash`): several times
/// cheaper than SipHash on the short host keys hashed on every call. It is
/// not DoS-resistant, and need not be: the keys come from the plugin's own
/// policy (at most 10,000 targets) and lookups never insert, so the worst a
/// crafted policy can do is slow down its own plugin's lookups.
pub(crate) type FastMap<K, V> = HashMap<K, V, rustc_hash::FxBuildHasher>;

/// The rules under one host key: the granted ones, and the requested
/// targets (read only on a miss, to tell `not_granted` from
/// `not_requested`). One index holds both, so a miss hashes the host once.
#[derive(Default, Debug)]
struct Slot {
    granted: Vec<u32>,
    requested: Vec<u32>,
}

#[derive(Default, Debug)]
struct Index {
    exact: FastMap<String, Slot>,
    ips: FastMap<IpAddr, Slot>,
    wildcard: FastMap<String, Slot>,
    /// Bit `n` is set when some wildcard suffix has `n` labels (bit 63: 63
    /// or more), so lookups skip suffixes no wildcard can match.
    wildcard_labels: u64,
    any: Slot,
}

/// The slots one lookup reached, in visiting order: walked for the granted
/// rules, and again for the requested targets on a miss, without hashing
/// the host twice. Inline, since a host reaches few (exact, a wildcard or
/// two, any); more spill to the heap.
struct Reached<'a> {
    len: usize,
    slots: [&'a Slot; 6],
    spill: Vec<&'a Slot>,
}

/// The filler of [`Reached`]'s unused places.
static NO_SLOT: Slot = Slot {
    granted: Vec::new(),
    requested: Vec::new(),
};

impl<'a> Reached<'a> {
    fn new() -> Self {
        Reached {
            len: 0,
            slots: [&NO_SLOT; 6],
            spill: Vec::new(),
        }
    }

    fn push(&mut self, slot: &'a Slot) {
        match self.slots.get_mut(self.len) {
            Some(place) => *place = slot,
            None => self.spill.push(slot),
        }
        self.len += 1;
    }

    fn iter(&self) -> impl Iterator<Item = &'a Slot> + '_ {
        let inline = self.len.min(self.slots.len());
        self.slots[..inline].iter().chain(&self.spill).copied()
    }
}

/// The bit of [`Index::wildcard_labels`] for a suffix of `labels` labels.
fn label_bit(labels: usize) -> u64 {
    1 << labels.min(63)
}

impl Index {
    fn insert(&mut self, host: &HostPattern, i: u32, granted: bool) {
        let slot = match host {
            HostPattern::Any => &mut self.any,
            HostPattern::Domain(d) => self.exact.entry(d.clone()).or_default(),
            HostPattern::Wildcard(s) => {
                self.wildcard_labels |= label_bit(s.split('.').count());
                self.wildcard.entry(s.clone()).or_default()
            }
            HostPattern::Ip(ip) => self.ips.entry(*ip).or_default(),
        };
        if granted {
            slot.granted.push(i);
        } else {
            slot.requested.push(i);
        }
    }

    /// Collects the slots whose host pattern matches `host`: exact, then
    /// wildcards from the longest suffix, then any-host (no allocation
    /// below seven). One instantiation, not one per visitor: two inlined
    /// copies of the lookups spread `check` over more cache lines.
    /// `dots`: the domain's dot bitmask when the caller has it (names of up
    /// to 64 bytes, from [`UrlHostRef::from_url_with_dots`]); otherwise the
    /// name is scanned here.
    fn candidates<'a>(
        &'a self,
        host: &UrlHostRef<'_>,
        dots: Option<u64>,
        reached: &mut Reached<'a>,
    ) {
        match host {
            UrlHostRef::Ip(ip) => {
                if let Some(v) = self.ips.get(ip) {
                    reached.push(v);
                }
            }
            UrlHostRef::Domain(d) => {
                let d: &str = d;
                if let Some(v) = self.exact.get(d) {
                    reached.push(v);
                }
                if !self.wildcard.is_empty() {
                    // From the longest suffix (after the first dot); only
                    // hash the suffixes whose label count some wildcard has.
                    // Names of up to 64 bytes (almost all) are one block,
                    // already scanned when the host was read; longer ones
                    // are scanned and collected here.
                    let one: [u64; 1];
                    let long: Vec<u64>;
                    let blocks: &[u64] = match dots {
                        Some(bits) => {
                            one = [bits];
                            &one
                        }
                        None => {
                            long = dot_blocks(d.as_bytes()).map(|(bits, _)| bits).collect();
                            &long
                        }
                    };
                    let mut labels = 1 + blocks
                        .iter()
                        .map(|b| b.count_ones() as usize)
                        .sum::<usize>();
                    for (n, mut bits) in blocks.iter().copied().enumerate() {
                        while bits != 0 {
                            let dot = 64 * n + bits.trailing_zeros() as usize;
                            bits &= bits - 1;
                            labels -= 1;
                            if self.wildcard_labels & label_bit(labels) == 0 {
                                continue;
                            }
                            if let Some(v) = self.wildcard.get(&d[dot + 1..]) {
                                reached.push(v);
                            }
                        }
                    }
                }
            }
        }
        reached.push(&self.any);
    }
}

/// An indexed policy, ready to authorize URLs. Cheap to share across threads.
#[derive(Debug)]
pub struct Authorizer {
    /// The policy's `digest`, carried into every [`Authorized`] for audit
    /// (shared: an allow copies no string).
    digest: Arc<str>,
    /// The plugin the policy is for (audit records name it).
    plugin: String,
    rules: Vec<Rule>,
    /// Granted rules and requested targets, by capability.
    index: [Index; 2],
}

fn cap_idx(c: Capability) -> usize {
    match c {
        Capability::Request => 0,
        Capability::Websocket => 1,
    }
}

impl Authorizer {
    /// Indexes a policy: its typed entries, as compiled or loaded.
    pub fn new(policy: &CompiledPolicy) -> Authorizer {
        let mut a = Authorizer {
            digest: Arc::from(policy.digest.as_str()),
            plugin: policy.plugin.name.clone(),
            rules: Vec::new(),
            index: Default::default(),
        };
        let mut requested_seen = std::collections::HashSet::new();
        for e in policy.entries() {
            if e.status == Status::Granted {
                let i = a.rules.len() as u32;
                a.index[cap_idx(e.capability())].insert(&e.permission.target.host, i, true);
                a.rules.push(Rule::granted(e));
            }
            let req = &e.requested;
            let id = format!("{}:{}", req.capability, req.target);
            if requested_seen.insert(id.clone()) {
                let i = a.rules.len() as u32;
                a.index[cap_idx(req.capability)].insert(&req.target.host, i, false);
                a.rules.push(Rule::new(RuleId::from(id), req.clone()));
            }
        }
        a
    }

    /// The policy's `digest` (`sha256:…`).
    pub fn digest(&self) -> &str {
        &self.digest
    }

    /// The name of the plugin the policy is for.
    pub fn plugin(&self) -> &str {
        &self.plugin
    }

    /// Runs every check up to and including matching; IP literals and
    /// localhost names are classified here too (their addresses are known).
    pub fn prepare(&self, req: &Request<'_>) -> Result<Prepared<'_>, Decision> {
        let m = self.decide(req)?;
        // The runtime shows this URL in logs and errors many times: written once.
        let shown: Arc<str> = Arc::from(redact::redact_parsed(&m.url));
        let host = match UrlHostRef::from_url(&m.url) {
            Some(h) => h.to_owned(),
            // `check` read the same host from the same URL.
            None => return Err(no_host().at(ShownUrl::Shared(shown))),
        };
        let destination = match &host {
            UrlHost::Ip(ip) => Destination::Ip(*ip),
            UrlHost::Domain(d) if crate::target::is_localhost_name(d) => Destination::Localhost,
            UrlHost::Domain(d) => Destination::Name(d.clone()),
        };
        Ok(Prepared {
            authorizer: self,
            credentials: req.credentials.to_vec(),
            url: m.url,
            shown,
            host,
            port: m.port,
            destination,
            rules: m.rules,
        })
    }

    /// Every check of [`Authorizer::prepare`], without building the owned
    /// host and destination.
    fn decide(&self, req: &Request<'_>) -> Result<Decided, Decision> {
        let url = parse_url(req).map_err(|d| *d)?;
        // The match borrows the URL; keep only what does not, then move it.
        let checked = self.check(req, &url).map(|m| (m.port, m.rules));
        match checked {
            Ok((port, rules)) => Ok(Decided { url, port, rules }),
            Err(d) => Err(d.at(ShownUrl::Parsed(url))),
        }
    }

    /// Every check after the parse, up to and including matching, on the
    /// parsed URL. A denial comes back without its URL: the caller attaches
    /// the parsed URL it owns, which is redacted only if the URL is read.
    fn check<'u>(&self, req: &Request<'_>, url: &'u url::Url) -> Result<Matched<'u>, Denial> {
        let Some(scheme) = Scheme::from_lowercase(url.scheme()) else {
            return Err(cold::bad_scheme(url.scheme()));
        };
        // All four schemes are special.
        let Some((host, dots)) = UrlHostRef::from_url_with_dots(url, true) else {
            return Err(no_host());
        };
        // 2. capability
        if scheme.capability() != req.capability {
            return Err(cold::wrong_capability(scheme, req.capability));
        }
        let extras = !req.headers.is_empty() || !req.subprotocols.is_empty();
        if req.capability == Capability::Request && extras {
            cold::request_is_one_shot(req)?;
        }
        // 3. userinfo. WHATWG takes userinfo only from an `@` in the input,
        // so a URL without one (almost all) skips the three checks.
        if has_at(req.url.as_bytes())
            && (!url.username().is_empty() || url.password().is_some() || raw_userinfo(req.url))
        {
            return Err(cold::userinfo());
        }
        // 4. fragment
        if req.capability == Capability::Websocket && url.fragment().is_some() {
            return Err(cold::fragment());
        }
        // 5. headers and subprotocols, independent of the target
        // (declared-ness is checked per rule). All pass when there are none.
        if extras {
            cold::headers_and_subprotocols(req)?;
        }
        // 6. path ambiguity that no prefix can excuse
        // `None`: a plain path, whose one reading is itself.
        let url_path = url.path();
        let readings = match path::readings_unless_plain(url_path) {
            Ok(r) => r,
            Err(e) => return Err(cold::ambiguous_path(e)),
        };
        // 7. match
        // The same as `port_or_known_default` for these schemes, without
        // matching the scheme's text again.
        let port = url.port().unwrap_or(scheme.default_port());
        // Parsed once, not per matched rule.
        let method = match req.capability {
            Capability::Request => {
                let m = req.method.unwrap_or("GET");
                Some((m, Method::parse(m)))
            }
            Capability::Websocket => None,
        };
        let ci = cap_idx(req.capability);
        let all_inside = |prefix: &str| match &readings {
            None => path::prefix_matches(prefix, url_path),
            Some(r) => r.all_inside(prefix),
        };
        let ambiguous_for =
            |prefix: &str| readings.as_ref().is_some_and(|r| r.ambiguous_for(prefix));
        let mut matched = RuleIds::default();
        let mut ambiguous = false;
        // How rule `i` of a reached slot fits the URL: the same test for
        // granted rules and requested targets.
        enum Fit {
            Inside,
            Ambiguous,
            No,
        }
        let fit = |i: u32| {
            let t = &self.rules[i as usize].permission.target;
            if t.scheme != scheme || !t.port.matches(port) {
                Fit::No
            } else if all_inside(&t.path) {
                Fit::Inside
            } else if ambiguous_for(&t.path) {
                Fit::Ambiguous
            } else {
                Fit::No
            }
        };
        let mut reached = Reached::new();
        self.index[ci].candidates(&host, dots, &mut reached);
        for slot in reached.iter() {
            for &i in &slot.granted {
                match fit(i) {
                    Fit::Inside => matched.push(i),
                    Fit::Ambiguous => ambiguous = true,
                    Fit::No => {}
                }
            }
        }
        if matched.is_empty() {
            let mut requested_match = None;
            // The same slots in the same order.
            for slot in reached.iter() {
                for &i in &slot.requested {
                    match fit(i) {
                        Fit::Inside => {
                            requested_match.get_or_insert(i);
                        }
                        Fit::Ambiguous => ambiguous = true,
                        Fit::No => {}
                    }
                }
            }
            if ambiguous {
                return Err(cold::ambiguous_prefix());
            }
            return Err(match requested_match {
                // Its sentence is built from the rule id if it is read.
                Some(i) => Denial::not_granted(self.rules[i as usize].id.clone()),
                // The most common denial: its sentence is a constant.
                None => Denial::new(
                    DenyCode::NotRequested,
                    None,
                    match req.capability {
                        Capability::Request => {
                            "no host_api.request target requested by the plugin covers this URL"
                        }
                        Capability::Websocket => {
                            "no host_api.websocket target requested by the plugin covers this URL"
                        }
                    },
                ),
            });
        }
        matched.as_mut_slice().sort_by(|&a, &b| {
            self.rules[a as usize]
                .permission
                .target
                .specificity_cmp(&self.rules[b as usize].permission.target)
        });
        // Per-rule checks: declared headers (and none a credential of the
        // rule is placed in), subprotocols, method, credentials.
        // The rules that pass are compacted to the front of `matched`.
        let mut first_failure: Option<Denial> = None;
        let mut passing = 0;
        for j in 0..matched.len() {
            let i = matched.as_slice()[j];
            let rule = &self.rules[i as usize];
            if let Some(f) = RuleFailure::first(rule, req, method) {
                first_failure.get_or_insert_with(|| {
                    let (code, message) = f.describe(rule);
                    Denial::new(code, Some(rule.id.clone()), message)
                });
                continue;
            }
            matched.as_mut_slice()[passing] = i;
            passing += 1;
        }
        if passing == 0 {
            return Err(first_failure.expect("a matched rule failed a check"));
        }
        matched.truncate(passing);
        Ok(Matched {
            host,
            port,
            rules: matched,
        })
    }

    /// Authorizes a request. `answers`: `None` decides on the URL alone (IP
    /// literals and localhost names are still classified); `Some(list)` checks
    /// the given DNS answers (empty means the name did not resolve).
    pub fn authorize(&self, req: &Request<'_>, answers: Option<&[IpAddr]>) -> Decision {
        // What `prepare` + `Prepared` do, borrowing the host from the URL and
        // moving the parsed URL into the decision: no owned host, no
        // destination, no strings on the allow path.
        //
        // The parse result and the match stay where they were written, read
        // by reference, until the decision is built: moved at once, each was
        // copied by wide loads of stores still in flight, a stall on every
        // call (docs/decisions.md, 201).
        if req.url.len() > MAX_URL_BYTES {
            return url_too_long(req);
        }
        let parsed = url::Url::parse(req.url);
        let outcome = match &parsed {
            Ok(url) => self.outcome(req, url, answers),
            Err(e) => return unparsable(req, e),
        };
        match parsed {
            Ok(url) => Allow::decide(outcome, ShownUrl::Parsed(url)),
            // Returned above; a total match rather than a panic.
            Err(e) => unparsable(req, &e),
        }
    }

    /// What [`Authorizer::authorize`] decides about a parsed URL, before
    /// the URL is attached.
    #[inline]
    fn outcome(
        &self,
        req: &Request<'_>,
        url: &url::Url,
        answers: Option<&[IpAddr]>,
    ) -> Result<Allow, Denial> {
        let checked = self.check(req, url);
        let m = match checked {
            Ok(ref m) => m,
            Err(d) => return Err(d),
        };
        let (ip, localhost) = match &m.host {
            UrlHostRef::Ip(ip) => (Some(*ip), false),
            UrlHostRef::Domain(d) => (None, crate::target::is_localhost_name(d)),
        };
        let checks = AddressChecks {
            authorizer: self,
            host: &m.host,
            port: m.port,
            rules: m.rules.as_slice(),
        };
        match (ip, answers) {
            (Some(ip), _) => checks.check(&[ip]),
            (None, _) if localhost => checks.check(&LOCALHOST_ADDRS),
            (None, None) => Ok(checks.allow_unresolved()),
            (None, Some(a)) => checks.check(a),
        }
    }

    /// Number of indexed rules (granted and requested).
    pub fn rule_count(&self) -> usize {
        self.rules.len()
    }
}

/// A request that passed every URL-level check; what remains is the address check.
#[derive(Debug)]
pub struct Prepared<'a> {
    authorizer: &'a Authorizer,
    /// The credentials the request asked for.
    credentials: Vec<String>,
    url: url::Url,
    /// The redacted URL, written once and shared with the decision.
    shown: Arc<str>,
    host: UrlHost,
    port: u16,
    destination: Destination,
    rules: RuleIds,
}

impl Prepared<'_> {
    /// Where to connect (or what to resolve).
    pub fn destination(&self) -> &Destination {
        &self.destination
    }

    /// The port to connect to.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The parsed URL.
    pub fn url(&self) -> &url::Url {
        &self.url
    }

    /// The normalized host: the TLS server name and `Host` header for domains
    /// (lowercase A-label, no trailing dot).
    pub fn host(&self) -> &UrlHost {
        &self.host
    }

    /// The redacted URL.
    pub fn redacted_url(&self) -> &str {
        &self.shown
    }

    /// The id of the most specific matching rule.
    pub fn rule_id(&self) -> &str {
        &self.authorizer.rules[self.rules.as_slice()[0] as usize].id
    }

    /// Allows without address checks: a domain authorized on the URL alone.
    pub fn allow_unresolved(&self) -> Decision {
        self.checks()
            .allow_unresolved()
            .at(ShownUrl::Shared(self.shown.clone()))
    }

    fn checks(&self) -> AddressChecks<'_> {
        AddressChecks {
            authorizer: self.authorizer,
            host: &self.host,
            port: self.port,
            rules: self.rules.as_slice(),
        }
    }

    /// [`Prepared::check_addresses`], and on allow everything a host needs
    /// to connect, decided once: the runtime consumes the [`Authorized`] and
    /// never parses the URL or decides again.
    pub fn authorize_addresses(self, answers: &[IpAddr]) -> Result<Authorized, Decision> {
        let decision = self.check_addresses(answers);
        if !decision.is_allowed() {
            return Err(decision);
        }
        // The rule that allowed (the decision names it) binds every
        // requested credential: each passing rule does.
        let credentials = match (decision.rule(), self.credentials.is_empty()) {
            (Some(id), false) => self
                .rules
                .as_slice()
                .iter()
                .map(|&i| &self.authorizer.rules[i as usize])
                .find(|r| &*r.id == id)
                .map(|r| {
                    r.credentials
                        .iter()
                        .filter(|c| self.credentials.contains(&c.name))
                        .cloned()
                        .collect()
                })
                .unwrap_or_default(),
            _ => Vec::new(),
        };
        let Prepared {
            authorizer,
            url,
            shown,
            host,
            port,
            ..
        } = self;
        Ok(Authorized {
            decision,
            shown,
            url,
            host,
            port,
            digest: authorizer.digest.clone(),
            credentials,
        })
    }

    /// Classifies every answer; one bad answer denies the whole connection.
    /// On allow, the decision carries the checked socket addresses, in the
    /// order given, which the caller must connect to (never re-resolve).
    pub fn check_addresses(&self, answers: &[IpAddr]) -> Decision {
        Allow::decide(
            self.checks().check(answers),
            ShownUrl::Shared(self.shown.clone()),
        )
    }
}

/// What `prepare` decided from the URL: the parsed URL, the port and the
/// matching rules (most specific first).
struct Decided {
    url: url::Url,
    port: u16,
    rules: RuleIds,
}

/// What `check` matched: the host (borrowed from the URL), the port and
/// the matching rules (most specific first).
struct Matched<'u> {
    host: UrlHostRef<'u>,
    port: u16,
    rules: RuleIds,
}

/// Check 1: the URL parses and is not too long. A URL that does not parse
/// is redacted as text, at once (rare, and there is no parse to keep).
fn parse_url(req: &Request<'_>) -> Result<url::Url, Box<Decision>> {
    // The error is built out of line and boxed: a `Result` as large as a
    // `Decision` would be copied around on every allow.
    if req.url.len() > MAX_URL_BYTES {
        return Err(Box::new(url_too_long(req)));
    }
    url::Url::parse(req.url).map_err(|e| Box::new(unparsable(req, &e)))
}

/// The denial of a URL over [`MAX_URL_BYTES`].
#[cold]
#[inline(never)]
fn url_too_long(req: &Request<'_>) -> Decision {
    invalid_url(
        req,
        format!(
            "URL is {} bytes long; the limit is {MAX_URL_BYTES}",
            req.url.len()
        ),
    )
}

/// The denial of a URL that does not parse.
#[cold]
#[inline(never)]
fn unparsable(req: &Request<'_>, e: &url::ParseError) -> Decision {
    invalid_url(req, format!("URL does not parse: {e}"))
}

fn invalid_url(req: &Request<'_>, msg: String) -> Decision {
    Denial::new(DenyCode::InvalidUrl, None, msg).at(ShownUrl::Text(redact::redact_url(req.url)))
}

/// Why a matched rule does not allow a request: the per-rule checks in
/// their order. Borrowed, so the message is built only for the decision
/// that reports it.
enum RuleFailure<'a> {
    /// An undeclared or never-allowed header, or a streaming attempt.
    Headers(crate::headers::HeaderViolation),
    /// A plugin header the rule places a credential in.
    CredentialHeader(&'a str),
    /// A subprotocol the rule does not declare.
    Subprotocol(&'a str),
    /// A method the rule does not grant.
    Method(&'a str),
    /// A credential the rule does not bind.
    Credential(&'a str),
}

impl<'a> RuleFailure<'a> {
    /// The first check `rule` fails for `req`, if any.
    /// `method`: the request's method as given, and parsed.
    fn first(
        rule: &Rule,
        req: &'a Request<'a>,
        method: Option<(&'a str, Option<Method>)>,
    ) -> Option<Self> {
        if req.headers.is_empty() {
            // Neither header check below can fail without headers.
        } else if let Err(v) =
            crate::headers::check_headers(req.capability, req.headers, &rule.declared_headers)
        {
            return Some(RuleFailure::Headers(v));
        }
        if let Some((h, _)) = req.headers.iter().find(|(h, _)| {
            rule.credential_headers
                .iter()
                .any(|c| c.eq_ignore_ascii_case(h))
        }) {
            return Some(RuleFailure::CredentialHeader(h));
        }
        if let Some(p) = req
            .subprotocols
            .iter()
            .find(|p| !rule.permission.subprotocols.contains(*p))
        {
            return Some(RuleFailure::Subprotocol(p));
        }
        if let Some((m, parsed)) = method {
            let ok = parsed.is_some_and(|mm| rule.method_bits & method_bit(mm) != 0);
            if !ok {
                return Some(RuleFailure::Method(m));
            }
        }
        req.credentials
            .iter()
            .find(|c| !rule.binds(c))
            .map(|c| RuleFailure::Credential(c))
    }

    /// The deny code and message (out of line, as `cold`'s denials are:
    /// inline, its formatting sat inside the per-rule loop of every
    /// authorization; docs/decisions.md, 196).
    #[cold]
    #[inline(never)]
    fn describe(self, rule: &Rule) -> (DenyCode, String) {
        let target = &rule.permission.target;
        match self {
            RuleFailure::Headers(v) => (v.code, v.message),
            RuleFailure::CredentialHeader(h) => (
                DenyCode::ForbiddenHeader,
                format!(
                    "header `{}` carries a credential of `{target}`; the host sets it, the plugin cannot",
                    redact::escape_terminal(h)
                ),
            ),
            RuleFailure::Subprotocol(p) => (
                DenyCode::ForbiddenHeader,
                format!(
                    "subprotocol `{}` is not declared by `{target}`",
                    redact::escape_terminal(p)
                ),
            ),
            RuleFailure::Method(m) => (
                DenyCode::MethodNotAllowed,
                format!(
                    "method `{}` is not granted for `{target}`",
                    redact::escape_terminal(m)
                ),
            ),
            RuleFailure::Credential(c) => (
                DenyCode::CredentialNotGranted,
                format!(
                    "credential `{}` is not granted for `{target}`",
                    redact::escape_terminal(&shorten(c))
                ),
            ),
        }
    }
}

/// A plugin-given name, bounded for messages (at most 64 chars).
/// The denials `check` returns before matching, built out of line: the
/// allow path never runs them, and inline their formatting spread `check`
/// over instruction cache lines that every authorization fetched
/// (docs/decisions.md, 196). Same checks, same order, same words.
mod cold {
    use super::*;

    #[cold]
    #[inline(never)]
    pub(super) fn bad_scheme(scheme: &str) -> Denial {
        Denial::new(
            DenyCode::InvalidUrl,
            None,
            format!(
                "scheme `{}` is not http, https, ws or wss",
                redact::escape_terminal(scheme)
            ),
        )
    }

    #[cold]
    #[inline(never)]
    pub(super) fn wrong_capability(scheme: Scheme, capability: Capability) -> Denial {
        Denial::new(
            DenyCode::WrongCapability,
            None,
            format!(
                "a {} URL cannot be used through {}; use {}",
                scheme,
                capability.table(),
                scheme.capability().table()
            ),
        )
    }

    /// A request that asks for a streaming response or offers
    /// subprotocols belongs to `host_api.websocket`.
    #[inline(never)]
    pub(super) fn request_is_one_shot(req: &Request<'_>) -> Result<(), Denial> {
        if let Some(h) = crate::headers::is_streaming_request(req.headers) {
            return Err(Denial::new(
                DenyCode::WrongCapability,
                None,
                format!(
                    "header `{}` asks for a websocket or streaming response; host_api.request is one-shot, use host_api.websocket",
                    redact::escape_terminal(&h)
                ),
            ));
        }
        if !req.subprotocols.is_empty() {
            return Err(Denial::new(
                DenyCode::WrongCapability,
                None,
                "subprotocols belong to host_api.websocket",
            ));
        }
        Ok(())
    }

    #[cold]
    #[inline(never)]
    pub(super) fn userinfo() -> Denial {
        Denial::new(
            DenyCode::CredentialsInUrl,
            None,
            "URL carries userinfo (credentials); plugins cannot send credentials",
        )
    }

    #[cold]
    #[inline(never)]
    pub(super) fn fragment() -> Denial {
        Denial::new(
            DenyCode::FragmentNotAllowed,
            None,
            "a websocket URL cannot carry a #fragment",
        )
    }

    /// The header checks that do not depend on the target, and that every
    /// subprotocol is a token.
    #[inline(never)]
    pub(super) fn headers_and_subprotocols(req: &Request<'_>) -> Result<(), Denial> {
        if !req.headers.is_empty() {
            let custom: Vec<String> = req
                .headers
                .iter()
                .map(|(k, _)| k.to_ascii_lowercase())
                .collect();
            if let Err(v) = crate::headers::check_headers(req.capability, req.headers, &custom) {
                return Err(Denial::new(v.code, None, v.message));
            }
        }
        for p in req.subprotocols {
            if !crate::headers::is_token(p) {
                return Err(Denial::new(
                    DenyCode::ForbiddenHeader,
                    None,
                    format!(
                        "subprotocol `{}` is not a token",
                        redact::escape_terminal(p)
                    ),
                ));
            }
        }
        Ok(())
    }

    #[cold]
    #[inline(never)]
    pub(super) fn ambiguous_path(e: impl std::fmt::Display) -> Denial {
        Denial::new(
            DenyCode::AmbiguousPath,
            None,
            format!("path is ambiguous: {e}"),
        )
    }

    #[cold]
    #[inline(never)]
    pub(super) fn ambiguous_prefix() -> Denial {
        Denial::new(
            DenyCode::AmbiguousPath,
            None,
            "path is inside the target's prefix only under some server readings (encoded separators, dot segments, ;params, %uXXXX escapes or Unicode look-alikes)",
        )
    }
}

fn shorten(s: &str) -> String {
    if s.chars().count() <= 64 {
        s.to_string()
    } else {
        s.chars().take(63).chain(['…']).collect()
    }
}

/// `URL has no valid host` (the caller attaches the URL).
fn no_host() -> Denial {
    Denial::new(DenyCode::InvalidUrl, None, "URL has no valid host")
}

/// The address checks after matching, shared by [`Prepared`] and
/// [`Authorizer::authorize`] (which borrows the host from the URL).
struct AddressChecks<'a> {
    authorizer: &'a Authorizer,
    host: &'a dyn std::fmt::Display,
    port: u16,
    /// Matching rules, most specific first; never empty.
    rules: &'a [u32],
}

impl AddressChecks<'_> {
    fn rule(&self, i: u32) -> &Rule {
        &self.authorizer.rules[i as usize]
    }

    /// A domain authorized on the URL alone. The caller attaches the URL
    /// (here and in [`AddressChecks::check`]).
    fn allow_unresolved(&self) -> Allow {
        Allow {
            rule: self.rule(self.rules[0]).id.clone(),
            addresses: Vec::new(),
            addresses_checked: false,
        }
    }

    /// See [`Prepared::check_addresses`].
    fn check(&self, answers: &[IpAddr]) -> Result<Allow, Denial> {
        // Only denials name the first rule; an allow names the one that allowed.
        let rule0 = || Some(self.rule(self.rules[0]).id.clone());
        if answers.is_empty() {
            return Err(Denial::new(
                DenyCode::ResolutionFailed,
                rule0(),
                format!("`{}` resolved to no address", self.host),
            ));
        }
        // The canonical answers with the port: what an allow hands back.
        let addresses: Vec<SocketAddr> = answers
            .iter()
            .map(|a| SocketAddr::new(address::canonicalize(*a), self.port))
            .collect();
        if let Some((raw, c)) = answers
            .iter()
            .zip(&addresses)
            .map(|(raw, c)| (raw, address::classify(c.ip())))
            .find(|(_, c)| c.class == AddressClass::Never)
        {
            return Err(Denial::new(
                DenyCode::ForbiddenAddress,
                rule0(),
                format!(
                    "address {raw} is {} and is never reachable",
                    address::with_article(c.name)
                ),
            ));
        }
        // Any single matching rule must cover every answer.
        for &i in self.rules {
            let rule = self.rule(i);
            if addresses
                .iter()
                .all(|a| rule.permission.covers_address(a.ip()))
            {
                return Ok(Allow {
                    rule: rule.id.clone(),
                    addresses,
                    addresses_checked: true,
                });
            }
        }
        let rule = self.rule(self.rules[0]);
        let (raw, c) = answers
            .iter()
            .zip(&addresses)
            .find(|(_, c)| !rule.permission.covers_address(c.ip()))
            .map(|(raw, c)| (raw, address::classify(c.ip())))
            .unwrap_or((&answers[0], address::classify(addresses[0].ip())));
        Err(Denial::new(
            DenyCode::NonPublicAddress,
            rule0(),
            format!(
                "address {raw} is {} ({}) and `{}` does not cover it",
                address::with_article(c.name),
                c.range,
                rule.permission.target
            ),
        ))
    }
}

/// The ids of the matching rules. Almost always one or two, so they live
/// inline; more spill to the heap.
#[derive(Clone, Debug)]
enum RuleIds {
    Inline(usize, [u32; 4]),
    Heap(Vec<u32>),
}

impl Default for RuleIds {
    fn default() -> Self {
        RuleIds::Inline(0, [0; 4])
    }
}

impl RuleIds {
    fn push(&mut self, i: u32) {
        match self {
            RuleIds::Inline(n, a) if *n < a.len() => {
                a[*n] = i;
                *n += 1;
            }
            RuleIds::Inline(n, a) => {
                let mut v = a[..*n].to_vec();
                v.push(i);
                *self = RuleIds::Heap(v);
            }
            RuleIds::Heap(v) => v.push(i),
        }
    }

    fn as_slice(&self) -> &[u32] {
        match self {
            RuleIds::Inline(n, a) => &a[..*n],
            RuleIds::Heap(v) => v,
        }
    }

    fn as_mut_slice(&mut self) -> &mut [u32] {
        match self {
            RuleIds::Inline(n, a) => &mut a[..*n],
            RuleIds::Heap(v) => v,
        }
    }

    fn len(&self) -> usize {
        self.as_slice().len()
    }

    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn truncate(&mut self, len: usize) {
        match self {
            RuleIds::Inline(n, _) => *n = (*n).min(len),
            RuleIds::Heap(v) => v.truncate(len),
        }
    }
}

/// An allowed connection or request, with everything the runtime needs to
/// carry it out and nothing left to decide (docs/spec.md §5, §6): the
/// checked addresses to connect to, the normalized host for TLS and `Host`,
/// the port, the request target to send, the rule and the policy digest.
///
/// Only [`Prepared::authorize_addresses`] makes one, so holding an
/// `Authorized` means every check passed, addresses included.
#[derive(Clone, Debug)]
pub struct Authorized {
    decision: Decision,
    /// The redacted URL, written once (the runtime shows it many times).
    shown: Arc<str>,
    url: url::Url,
    host: UrlHost,
    port: u16,
    digest: Arc<str>,
    credentials: Vec<BoundCredential>,
}

impl Authorized {
    /// The credentials the request asked for, as the allowing rule binds
    /// them (sorted by name, each once): what the host injects. References
    /// only; the host resolves each [`BoundCredential::secret_ref`] in its
    /// store at the last moment (docs/spec.md §9.3).
    pub fn credentials(&self) -> &[BoundCredential] {
        &self.credentials
    }

    /// The allow decision (redacted URL, rule, message), as `authorize` prints it.
    pub fn decision(&self) -> &Decision {
        &self.decision
    }

    /// The decision, moved out.
    pub fn into_decision(self) -> Decision {
        self.decision
    }

    /// The checked socket addresses: connect to exactly these, in order,
    /// never re-resolving the name.
    pub fn addresses(&self) -> &[SocketAddr] {
        &self.decision.addresses
    }

    /// The scheme: `http`, `https`, `ws` or `wss`.
    pub fn scheme(&self) -> &str {
        self.url.scheme()
    }

    /// Whether the connection is TLS (`https`, `wss`).
    pub fn is_tls(&self) -> bool {
        matches!(self.url.scheme(), "https" | "wss")
    }

    /// The normalized host: lowercase A-label without trailing dot, or the
    /// canonical IP literal.
    pub fn host(&self) -> &UrlHost {
        &self.host
    }

    /// The TLS server name: the normalized host, an IP without brackets.
    pub fn server_name(&self) -> String {
        match &self.host {
            UrlHost::Domain(d) => d.clone(),
            UrlHost::Ip(ip) => ip.to_string(),
        }
    }

    /// The port to connect to (the scheme's default when the URL has none).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The URL to send: scheme, normalized host, the port when it is not
    /// the scheme's default, path and query as parsed; no userinfo (denied
    /// before), no fragment (never sent).
    pub fn request_url(&self) -> String {
        use std::fmt::Write;
        let scheme = self.url.scheme();
        let default = Scheme::parse(scheme).map(Scheme::default_port);
        let path = self.url.path();
        let query = self.url.query();
        // Sized once (on every call of the request host): the longest IP
        // literal is 41 bytes with brackets, a port 6 with its colon.
        let host_len = match &self.host {
            UrlHost::Domain(d) => d.len(),
            UrlHost::Ip(_) => 41,
        };
        let mut s = String::with_capacity(
            scheme.len() + 3 + host_len + 6 + path.len() + query.map_or(0, |q| q.len() + 1),
        );
        s.push_str(scheme);
        s.push_str("://");
        match &self.host {
            UrlHost::Domain(d) => s.push_str(d),
            ip => {
                let _ = write!(s, "{ip}");
            }
        }
        if default != Some(self.port) {
            let _ = write!(s, ":{}", self.port);
        }
        s.push_str(path);
        if let Some(q) = query {
            s.push('?');
            s.push_str(q);
        }
        s
    }

    /// The id of the rule that allowed it.
    pub fn rule(&self) -> &str {
        self.decision.rule().unwrap_or_default()
    }

    /// The `digest` of the policy that allowed it (for audit records).
    pub fn policy_digest(&self) -> &str {
        &self.digest
    }

    /// The redacted URL, safe to log.
    pub fn redacted_url(&self) -> &str {
        &self.shown
    }
}

/// Whether `s` has an `@`, eight bytes at a time (std's `memchr` spends
/// most of its time aligning on URLs this short).
fn has_at(s: &[u8]) -> bool {
    use crate::words::{any_word, has_byte};
    any_word(s, |x| has_byte(x, b'@'), |b| b == b'@')
}

/// Whether the URL as written has an `@` in its authority. The `url` crate
/// drops empty userinfo (`https://:@host/`, `https://@host/`), but it is still
/// userinfo (RFC 3986), so it is denied like any other (fail closed). Only
/// called on URLs that parsed with a special scheme: WHATWG removes tabs and
/// newlines, skips any `/` and `\` after the scheme, and ends the authority at
/// `/`, `\`, `?` or `#`.
fn raw_userinfo(raw: &str) -> bool {
    // Hot path: most URLs have no `@` at all, and need no copy.
    if !raw.as_bytes().contains(&b'@') {
        return false;
    }
    let cleaned: std::borrow::Cow<'_, str> =
        if raw.bytes().any(|b| matches!(b, b'\t' | b'\n' | b'\r')) {
            raw.chars()
                .filter(|c| !matches!(c, '\t' | '\n' | '\r'))
                .collect::<String>()
                .into()
        } else {
            raw.into()
        };
    let Some((_, rest)) = cleaned.split_once(':') else {
        return false;
    };
    let rest = rest.trim_start_matches(['/', '\\']);
    let end = rest.find(['/', '\\', '?', '#']).unwrap_or(rest.len());
    rest[..end].contains('@')
}

#[cfg(test)]
mod authorized_tests {
    use super::*;
    use crate::{compile, Grant, Manifest};

    fn authorizer(manifest_targets: &str) -> Authorizer {
        let m = format!("[plugin]\nname = \"p\"\nversion = \"1.0.0\"\n{manifest_targets}");
        let g = format!(
            "plugin = \"p\"\n{}",
            manifest_targets.replace("methods = [\"GET\"]\n", "")
        );
        let manifest = Manifest::parse("plugin.toml", &m).value.unwrap();
        let grant = Grant::parse("grant.toml", &g).value.unwrap();
        Authorizer::new(&compile(&manifest, Some(&grant)).policy.unwrap())
    }

    /// The word-at-a-time `@` test agrees with a byte search at every
    /// length and position, next to bytes one bit away from `@`.
    #[test]
    fn has_at_finds_every_at() {
        for len in 0..40 {
            for fill in [b'a', b'@' ^ 1, b'@' ^ 0x80, 0, 0xff] {
                let mut s = vec![fill; len];
                assert!(!has_at(&s), "{s:?}");
                for i in 0..len {
                    s[i] = b'@';
                    assert!(has_at(&s), "{s:?}");
                    s[i] = fill;
                }
            }
        }
    }

    /// Wildcards match names of any length: the dot scan works in blocks of
    /// 64 bytes, and a dot on either side of a block boundary counts.
    #[test]
    fn wildcards_match_long_names() {
        let a = authorizer(
            "[[host_api.request]]\nurl = \"https://*.example.com/\"\nmethods = [\"GET\"]\n\
             [[host_api.request]]\nurl = \"https://*.b.example.org/\"\nmethods = [\"GET\"]\n",
        );
        for left in [1, 50, 55, 56, 62, 63, 64, 65, 120, 127, 128, 129, 300] {
            let label = "a".repeat(left.min(63));
            let mut name = label.clone();
            while name.len() < left {
                name.push('.');
                name.push_str(&label[..(left - name.len()).clamp(1, 63)]);
            }
            for (suffix, want) in [
                ("example.com", "allowed"),
                ("b.example.org", "allowed"),
                ("example.org", "not_requested"),
                ("xexample.com", "not_requested"),
            ] {
                let url = format!("https://{name}.{suffix}/x");
                let d = a.authorize(&Request::http("GET", &url), None);
                assert_eq!(d.code, want, "{url}: {}", d.message());
            }
            // WHATWG keeps the empty label; the host is refused.
            let url = format!("https://{name}..example.com/x");
            let d = a.authorize(&Request::http("GET", &url), None);
            assert_eq!(d.code, "invalid_url", "{url}: {}", d.message());
        }
    }

    /// An [`Authorized`] carries the request target the runtime sends, built
    /// from the parse the decision was made on.
    #[test]
    fn authorized_carries_what_the_runtime_sends() {
        let a = authorizer(
            "[[host_api.websocket]]\nurl = \"ws://[::1]:9002/\"\n\
             [[host_api.request]]\nurl = \"https://api.example.com/v1/\"\nmethods = [\"GET\"]\n",
        );
        let cases: &[(Request<'_>, &[IpAddr], &str, u16, &str)] = &[
            (
                Request::websocket("ws://[0:0::1]:9002/a/./b/?q=1"),
                &[],
                "ws://[::1]:9002/a/b/?q=1",
                9002,
                "::1",
            ),
            (
                Request::http("GET", "HTTPS://API.Example.com.:443/v1/x?k=v#frag"),
                &[IpAddr::V4(Ipv4Addr::new(93, 184, 215, 14))],
                "https://api.example.com/v1/x?k=v",
                443,
                "api.example.com",
            ),
        ];
        for (req, answers, url, port, name) in cases {
            let p = a.prepare(req).unwrap();
            let answers: Vec<IpAddr> = match p.destination() {
                Destination::Ip(ip) => vec![*ip],
                _ => answers.to_vec(),
            };
            let ok = p.authorize_addresses(&answers).unwrap();
            assert_eq!(ok.request_url(), *url);
            assert_eq!(ok.port(), *port);
            assert_eq!(ok.server_name(), *name);
            assert!(ok.addresses().iter().all(|s| s.port() == *port));
            assert!(ok.decision().is_allowed());
        }
        // A deny never yields an Authorized.
        let p = a
            .prepare(&Request::http("GET", "https://api.example.com/v1/x"))
            .unwrap();
        let d = p
            .authorize_addresses(&[IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1))])
            .unwrap_err();
        assert_eq!(d.deny_code(), Some(DenyCode::NonPublicAddress));
    }
}
