//! The compiler: manifest + grant → canonical [`Policy`], and the IR loader
//! that re-validates an IR by compiling it again.

use crate::authorize::FastMap;
use crate::capability::{Capability, Scheme};
use crate::compiled::{CompiledPolicy, IgnoredGrant, PolicyEntry};
use crate::credential::{self, Credential, CredentialPlacement, EntryCredential, SecretRef};
use crate::diagnostics::{self, quote, Code, Diagnostic};
use crate::document::{self, Grant, GrantEntry, Manifest, Requested};
use crate::ir::{self, Entry, Ignored, IgnoredCode, Narrowed, PluginInfo, Policy, Port, Status};
use crate::permission::{Method, Methods, Permission};
use crate::target::{HostPattern, PortPattern, Target};
use ipnet::IpNet;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::IpAddr;
use std::ops::Range;

/// The result of compiling: a policy unless a fatal error was found, and all
/// diagnostics (entry-level grant errors included), each with its file attached.
#[derive(Debug)]
pub struct Compiled {
    /// The policy; `None` when a fatal error was found.
    pub policy: Option<CompiledPolicy>,
    /// All diagnostics from compiling (not from parsing).
    pub diagnostics: Vec<Diagnostic>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Side {
    Manifest,
    Grant,
}

/// Compiles a manifest and an optional grant into the IR.
///
/// Entry-level grant problems (granted but not requested; broad without
/// `broad = true`) drop only that entry, which is listed under `ignored`; every
/// other problem is fatal and yields no policy.
pub fn compile(manifest: &Manifest, grant: Option<&Grant>) -> Compiled {
    let mut diags: Vec<(Side, Diagnostic)> = Vec::new();
    if let Some(g) = grant {
        if g.plugin != manifest.name {
            let mut d = Diagnostic::new(
                Code::PluginMismatch,
                format!(
                    "grant is for plugin {} but the manifest is {}",
                    quote(&g.plugin),
                    quote(&manifest.name)
                ),
            )
            .with_help(format!(
                "a grant applies to one plugin: write `plugin = \"{}\"`, or pass the grant that belongs to this manifest",
                manifest.name
            ));
            if let Some(s) = &g.plugin_span {
                d = d.with_label(s.clone(), "another plugin");
            }
            diags.push((Side::Grant, d));
        }
    }
    let plugin = PluginInfo {
        name: manifest.name.clone(),
        version: manifest.version.clone(),
    };
    let empty = Vec::new();
    let entries = grant.map(|g| &g.entries).unwrap_or(&empty);
    let approved = grant.and_then(|g| g.approved_digest.clone());
    let (policy, mut more) = build(plugin, &manifest.requested, entries, approved);
    diags.append(&mut more);
    if let (Some(p), Some(g)) = (&policy, grant) {
        if let Some(drift) = crate::drift::drift(p, Some(g)) {
            diags.push((Side::Grant, drift_diagnostic(p, g, &drift)));
        }
    }
    let fatal = diags
        .iter()
        .any(|(_, d)| d.severity() == diagnostics::Severity::Error);
    let mut out: Vec<Diagnostic> = diags
        .into_iter()
        .map(|(side, d)| {
            let src = match side {
                Side::Manifest => manifest.source.clone(),
                Side::Grant => grant.and_then(|g| g.source.clone()),
            };
            match src {
                Some(s) => d.with_source(s),
                None => d,
            }
        })
        .collect();
    diagnostics::sort(&mut out);
    Compiled {
        policy: if fatal { None } else { policy },
        diagnostics: out,
    }
}

/// At most this many entries are named per kind in the drift help line.
const DRIFT_NAMES: usize = 5;

/// The `grant::digest_drift` warning: the primary label on `approved_digest`,
/// a label on every grant entry the change affects, and a help line naming
/// every affected entry (labels alone would not reach JSON-less formats such
/// as GitHub annotations).
fn drift_diagnostic(p: &Policy, g: &Grant, drift: &crate::drift::Drift) -> Diagnostic {
    let mut d = Diagnostic::new(
        Code::DigestDrift,
        "the manifest's requested set changed since this grant was approved".to_string(),
    );
    if let Some(s) = &g.approved_digest_span {
        d = d.with_label(s.clone(), "approved a different requested set");
    }
    // The first grant entry per id (as a scan would find it), looked up
    // once per named id instead of formatting every entry for each.
    let mut spans: HashMap<String, Option<Range<usize>>> = HashMap::new();
    for e in &g.entries {
        spans
            .entry(format!("{}:{}", e.capability, e.target))
            .or_insert_with(|| url_span(&e.origin));
    }
    let span_of = |id: &str| spans.get(id).cloned().flatten();
    for id in &drift.ignored {
        if let Some(s) = span_of(id) {
            d = d.with_label(s, "no longer applies");
        }
    }
    for f in drift.follows_manifest.iter().flatten() {
        if let Some(s) = span_of(&f.id) {
            d = d.with_label(s, format!("follows the manifest: {}", f.describe()));
        }
    }
    let names = |ids: Vec<String>| {
        let n = ids.len();
        let mut v: Vec<String> = ids.into_iter().take(DRIFT_NAMES).collect();
        if n > DRIFT_NAMES {
            v.push(format!("and {} more", n - DRIFT_NAMES));
        }
        v.join(", ")
    };
    let mut affected = Vec::new();
    if !drift.not_granted.is_empty() {
        affected.push(format!(
            "not granted (new, changed or never approved): {}",
            names(drift.not_granted.iter().map(|i| quote(i)).collect())
        ));
    }
    if !drift.ignored.is_empty() {
        affected.push(format!(
            "grant entries that no longer apply: {}",
            names(drift.ignored.iter().map(|i| quote(i)).collect())
        ));
    }
    let follows: Vec<String> = drift
        .follows_manifest
        .iter()
        .flatten()
        .map(|f| format!("{} ({})", quote(&f.id), f.describe()))
        .collect();
    if !follows.is_empty() {
        affected.push(format!(
            "entries that take unset fields from the manifest and may have widened: {}",
            names(follows)
        ));
    }
    let affected = if affected.is_empty() {
        "no entry of this grant is affected".to_string()
    } else {
        format!("affected — {}", affected.join("; "))
    };
    d.with_help(format!(
        "{affected}. review the change (`netgrant show`), then re-approve (`netgrant approve --grant`) or set `approved_digest = \"{}\"`; entries still apply only as far as the new requests contain them",
        p.requested_digest
    ))
}

fn url_span(o: &Option<document::Origin>) -> Option<Range<usize>> {
    o.as_ref().map(|o| o.url.clone())
}

fn labelled(d: Diagnostic, span: Option<Range<usize>>, text: &str) -> Diagnostic {
    match span {
        Some(s) => d.with_label(s, text),
        None => d,
    }
}

/// Fills a grant entry's unset fields from a candidate request.
fn effective(g: &GrantEntry, parent: &Permission) -> Permission {
    Permission {
        capability: g.capability,
        target: g.target.clone(),
        methods: match g.capability {
            Capability::Request => Some(
                g.methods
                    .clone()
                    .or_else(|| parent.methods.clone())
                    .unwrap_or(Methods::Any),
            ),
            Capability::Websocket => None,
        },
        headers: g.headers.clone().unwrap_or_else(|| parent.headers.clone()),
        subprotocols: g
            .subprotocols
            .clone()
            .unwrap_or_else(|| parent.subprotocols.clone()),
        networks: g
            .networks
            .clone()
            .unwrap_or_else(|| parent.networks.clone()),
    }
}

/// Why `parent` does not contain `eff`, for the help line.
fn containment_gap(parent: &Permission, eff: &Permission) -> String {
    if !parent.target.contains(&eff.target) {
        return format!("it is outside `{}`", parent.target);
    }
    if let (Some(a), Some(b)) = (&parent.methods, &eff.methods) {
        if !a.contains(b) {
            return format!(
                "the request for `{}` allows only methods {}",
                parent.target,
                a.to_strings().join(", ")
            );
        }
    }
    if !eff.headers.is_subset(&parent.headers) {
        return format!(
            "the request for `{}` does not declare all these headers",
            parent.target
        );
    }
    if !eff.subprotocols.is_subset(&parent.subprotocols) {
        return format!(
            "the request for `{}` does not declare all these subprotocols",
            parent.target
        );
    }
    format!(
        "the request for `{}` does not include all these networks",
        parent.target
    )
}

type Built = (Option<CompiledPolicy>, Vec<(Side, Diagnostic)>);

// Number of `Target::contains` checks `build` made on this thread: the
// growth guard (`tests::scale`) counts work instead of timing it.
#[cfg(test)]
thread_local! {
    static CONTAINMENT_CHECKS: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

/// `outer.contains(inner)`, counted in tests.
fn target_contains(outer: &Target, inner: &Target) -> bool {
    #[cfg(test)]
    CONTAINMENT_CHECKS.with(|c| c.set(c.get() + 1));
    outer.contains(inner)
}

/// A host pattern, borrowed: the index probes every parent suffix of a
/// grant's host without allocating a [`HostPattern`] for each.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
enum HostKey<'a> {
    Any,
    Domain(&'a str),
    Wildcard(&'a str),
    Ip(IpAddr),
}

impl<'a> HostKey<'a> {
    fn of(h: &'a HostPattern) -> Self {
        match h {
            HostPattern::Any => HostKey::Any,
            HostPattern::Domain(d) => HostKey::Domain(d),
            HostPattern::Wildcard(s) => HostKey::Wildcard(s),
            HostPattern::Ip(a) => HostKey::Ip(*a),
        }
    }
}

/// Every host pattern that [`HostPattern::contains`] `inner`, and no other:
/// the host itself, each wildcard over a strict parent suffix (`*.b.c` and
/// `*.c` for `a.b.c` or `*.a.b.c`: the suffixes after a `.` that is not the
/// first byte, exactly `is_strict_subdomain`), and `*`. An IP literal is
/// contained by itself and `*` only; `*` by `*` only.
fn containing_hosts<'a>(inner: &'a HostPattern, mut f: impl FnMut(HostKey<'a>)) {
    let name = match inner {
        HostPattern::Any => None,
        HostPattern::Domain(d) | HostPattern::Wildcard(d) => Some(d.as_str()),
        HostPattern::Ip(_) => None,
    };
    if !matches!(inner, HostPattern::Any) {
        f(HostKey::of(inner));
    }
    if let Some(name) = name {
        for (i, b) in name.bytes().enumerate() {
            if b == b'.' && i > 0 {
                f(HostKey::Wildcard(&name[i + 1..]));
            }
        }
    }
    f(HostKey::Any);
}

/// Every prefix that [`crate::path::prefix_contains`] accepts as an outer
/// prefix of `inner`, and no other: `inner` itself, and at each `/` the text
/// before it and the text through it (so `/a/b` gives `/a/b`, `` , `/`,
/// `/a`, `/a/`). A string may come twice (`//`); callers deduplicate.
fn containing_paths(inner: &str, mut f: impl FnMut(&str)) {
    f(inner);
    for (i, b) in inner.bytes().enumerate() {
        if b == b'/' {
            f(&inner[..i]);
            f(&inner[..=i]);
        }
    }
}

/// The requests of a manifest by capability, scheme, host and path, for
/// grant containment (docs/spec.md §3.2). A grant entry's candidates are
/// found by probing the few hosts and path prefixes that can contain it
/// (bounded by the entry's own length), so compiling — and loading an IR,
/// which compiles again — is linear in the number of entries instead of
/// testing every grant entry against every request. Hashed with FxHash, as
/// the authorizer's index is: the keys are the plugin's own targets (at most
/// 10,000 per file), so colliding keys could only slow its own compile.
struct RequestIndex<'a> {
    hosts: FastMap<HostSlot<'a>, Paths<'a>>,
}

/// The request ids under one host slot and path: almost always one (two
/// requests of one target are a diagnosed duplicate), kept inline.
enum Ids {
    One(usize),
    Many(Vec<usize>),
}

impl Ids {
    fn push(&mut self, i: usize) {
        match self {
            Ids::One(first) => *self = Ids::Many(vec![*first, i]),
            Ids::Many(v) => v.push(i),
        }
    }

    fn as_slice(&self) -> &[usize] {
        match self {
            Ids::One(i) => std::slice::from_ref(i),
            Ids::Many(v) => v,
        }
    }
}

/// The paths requested under one host slot: most slots have one, kept
/// inline. A map and a vector per request were three allocations each,
/// and at 10,000 entries building and freeing them grew faster than the
/// entries (docs/decisions.md, 202).
enum Paths<'a> {
    One(&'a str, Ids),
    Many(FastMap<&'a str, Ids>),
}

impl<'a> Paths<'a> {
    fn insert(&mut self, path: &'a str, i: usize) {
        match self {
            Paths::One(p, ids) if *p == path => ids.push(i),
            Paths::Many(m) => {
                m.entry(path)
                    .and_modify(|ids| ids.push(i))
                    .or_insert(Ids::One(i));
            }
            Paths::One(..) => {
                // A second path: the slot becomes a map of both.
                let old = std::mem::replace(self, Paths::Many(FastMap::default()));
                if let (Paths::One(p, ids), Paths::Many(m)) = (old, &mut *self) {
                    m.insert(p, ids);
                    m.insert(path, Ids::One(i));
                }
            }
        }
    }
}

/// Capability, scheme, host and port: what a request must share with a
/// grant entry (up to wildcards and `:*`) to contain it.
type HostSlot<'a> = (Capability, Scheme, HostKey<'a>, PortPattern);

impl<'a> RequestIndex<'a> {
    fn new(requested: &'a [Requested]) -> Self {
        let mut hosts: FastMap<_, Paths> =
            FastMap::with_capacity_and_hasher(requested.len(), Default::default());
        for (i, r) in requested.iter().enumerate() {
            let t = &r.permission.target;
            let slot = (
                r.permission.capability,
                t.scheme,
                HostKey::of(&t.host),
                t.port,
            );
            match hosts.entry(slot) {
                std::collections::hash_map::Entry::Occupied(mut e) => {
                    e.get_mut().insert(&t.path, i)
                }
                std::collections::hash_map::Entry::Vacant(e) => {
                    e.insert(Paths::One(&t.path, Ids::One(i)));
                }
            }
        }
        RequestIndex { hosts }
    }

    /// The indexes of the requests of `g`'s capability whose target contains
    /// `g`'s target, in no particular order, into `out` (cleared first).
    /// The same set the scan `requested.filter(|r| r.target.contains(g))`
    /// finds; `tests::index_agrees_with_scan` checks it.
    fn containing(&self, requested: &[Requested], g: &GrantEntry, out: &mut Vec<usize>) {
        out.clear();
        let t = &g.target;
        // Within one host, probe the grant's path prefixes, or walk the
        // host's paths when there are fewer of them: never more work than
        // the scan over that host, and never more than the entry's length.
        let probes = 1 + 2 * t.path.bytes().filter(|&b| b == b'/').count();
        // `:*` contains itself and every port; a port is contained by
        // itself and `:*`.
        let ports = [PortPattern::Any, t.port];
        let ports = if t.port == PortPattern::Any {
            &ports[..1]
        } else {
            &ports[..]
        };
        containing_hosts(&t.host, |host| {
            for &port in ports {
                let slot = (g.capability, t.scheme, host, port);
                probe(&self.hosts, requested, slot, t, probes, out);
            }
        });
        // `containing_paths` can name one prefix twice.
        out.sort_unstable();
        out.dedup();
    }
}

/// The requests in one host slot that contain `t`, into `out`. (A free
/// function so the index's key lifetime can shrink to the grant's.)
fn probe<'k>(
    hosts: &FastMap<HostSlot<'k>, Paths<'k>>,
    requested: &[Requested],
    slot: HostSlot<'k>,
    t: &Target,
    probes: usize,
    out: &mut Vec<usize>,
) {
    let Some(paths) = hosts.get(&slot) else {
        return;
    };
    let mut take = |ids: &Ids| {
        out.extend(
            ids.as_slice()
                .iter()
                .copied()
                .filter(|&i| target_contains(&requested[i].permission.target, t)),
        );
    };
    match paths {
        // One path: walking it is one probe, never more than probing.
        Paths::One(_, ids) => take(ids),
        Paths::Many(paths) if paths.len() <= probes => paths.values().for_each(&mut take),
        Paths::Many(paths) => containing_paths(&t.path, |p| {
            if let Some(ids) = paths.get(p) {
                take(ids);
            }
        }),
    }
}

fn build(
    plugin: PluginInfo,
    requested: &[Requested],
    grant_entries: &[GrantEntry],
    approved_digest: Option<String>,
) -> Built {
    let mut diags = Vec::new();
    // Every target spelled out once, here: the duplicate checks, the IR
    // strings and the requested digest all use these.
    let req_targets: Vec<String> = requested
        .iter()
        .map(|r| r.permission.target.to_string())
        .collect();
    let grant_targets: Vec<String> = grant_entries.iter().map(|g| g.target.to_string()).collect();
    // Duplicate requests are ambiguous (which reason? which methods?): fatal.
    let mut req_index: FastMap<(Capability, &str), usize> =
        FastMap::with_capacity_and_hasher(requested.len(), Default::default());
    for (i, r) in requested.iter().enumerate() {
        let k = (r.permission.capability, req_targets[i].as_str());
        if let Some(&first) = req_index.get(&k) {
            let d = Diagnostic::new(
                Code::DuplicateTarget,
                format!("{} is requested twice in `{}`", quote(k.1), k.0.table()),
            )
            .with_help("merge the two entries into one (targets are compared after normalization)");
            let d = labelled(d, url_span(&r.origin), "duplicate");
            let d = match url_span(&requested[first].origin) {
                Some(s) => d.with_label(s, "first requested here"),
                None => d,
            };
            diags.push((Side::Manifest, d));
        } else {
            req_index.insert(k, i);
        }
    }
    // The walker already refuses these in a manifest; requests rebuilt from
    // an IR (or built by hand) pass here, so check again.
    for r in requested {
        if r.credentials.is_empty() {
            continue;
        }
        for p in credential::target_problems(&r.permission) {
            let span = r
                .origin
                .as_ref()
                .and_then(|o| o.credentials.clone())
                .unwrap_or(0..0);
            diags.push((
                Side::Manifest,
                document::credential_target_diagnostic(p, &r.permission, span, "declared"),
            ));
        }
    }
    let mut grant_index: FastMap<(Capability, &str), usize> =
        FastMap::with_capacity_and_hasher(grant_entries.len(), Default::default());
    for (i, g) in grant_entries.iter().enumerate() {
        let k = (g.capability, grant_targets[i].as_str());
        if let Some(&first) = grant_index.get(&k) {
            let d = Diagnostic::new(
                Code::DuplicateGrant,
                format!("{} is granted twice in `{}`", quote(k.1), k.0.table()),
            )
            .with_help("merge the two entries into one (targets are compared after normalization)");
            let d = labelled(d, url_span(&g.origin), "duplicate");
            let d = match url_span(&grant_entries[first].origin) {
                Some(s) => d.with_label(s, "first granted here"),
                None => d,
            };
            diags.push((Side::Grant, d));
        } else {
            grant_index.insert(k, i);
        }
    }
    if !diags.is_empty() {
        return (None, diags);
    }

    // Requests indexed by host and path, so a grant entry meets only the
    // requests that can contain it, not every request of its capability.
    let index = RequestIndex::new(requested);
    let mut parent_of_some = vec![false; requested.len()];
    // (effective permission, parent, approved broad, bindings, grant index)
    type Granted<'g> = (
        Permission,
        usize,
        bool,
        &'g BTreeMap<String, SecretRef>,
        usize,
    );
    let mut granted: Vec<Granted<'_>> = Vec::new();
    let mut ignored: Vec<(Ignored, IgnoredGrant)> = Vec::new();
    let mut candidates: Vec<usize> = Vec::new();
    for (gi, g) in grant_entries.iter().enumerate() {
        // Every containing request is a candidate (docs/spec.md §3.2), most specific
        // first, so an equal-target request is tried first but is not the
        // only one. The order is total (targets are distinct within a
        // capability), so it does not depend on the order the index yields.
        index.containing(requested, g, &mut candidates);
        candidates.sort_by(|&a, &b| {
            requested[a]
                .permission
                .target
                .specificity_cmp(&requested[b].permission.target)
        });
        let found = candidates.iter().find_map(|&i| {
            let eff = effective(g, &requested[i].permission);
            requested[i].permission.contains(&eff).then_some((i, eff))
        });
        let Some((parent, eff)) = found else {
            let why = match candidates.first() {
                Some(&i) => {
                    let eff = effective(g, &requested[i].permission);
                    containment_gap(&requested[i].permission, &eff)
                }
                None => format!(
                    "no `{}` target in the manifest contains `{}`",
                    g.capability.table(),
                    g.target
                ),
            };
            let message = format!(
                "granted but not requested: {}",
                quote(&g.target.to_string())
            );
            let d = Diagnostic::new(Code::NotRequested, message.clone()).with_help(format!(
                "{why}; this entry has no effect — remove it, or narrow it to what the manifest requests"
            ));
            diags.push((
                Side::Grant,
                labelled(d, url_span(&g.origin), "not requested"),
            ));
            ignored.push(ignored_entry(
                g,
                IgnoredCode::NotRequested,
                format!("granted but not requested: {why}"),
            ));
            continue;
        };
        let flags = eff.flags();
        if flags.broad && !g.broad {
            let d = Diagnostic::new(
                Code::BroadNotApproved,
                format!("broad grant {} lacks `broad = true`", quote(&g.target.to_string())),
            )
            .with_help("write `broad = true` to approve broad access consciously, or narrow the entry; until then it has no effect");
            diags.push((
                Side::Grant,
                labelled(d, url_span(&g.origin), "broad access"),
            ));
            ignored.push(ignored_entry(
                g,
                IgnoredCode::BroadNotApproved,
                "broad access without `broad = true`".to_string(),
            ));
            continue;
        }
        // Bindings: every name must be declared by the parent, the request
        // this entry narrows (docs/spec.md §9.2). The effective entry is
        // inside that request, so a binding never reaches wider than its
        // declaration.
        let declared = &requested[parent].credentials;
        if let Some(name) = g
            .credentials
            .keys()
            .find(|n| !declared.iter().any(|c| &c.name == *n))
        {
            let span = g
                .origin
                .as_ref()
                .and_then(|o| o.credential_keys.iter().find(|(k, _)| k == name))
                .map(|(_, s)| s.clone())
                .or_else(|| url_span(&g.origin));
            let known: Vec<&str> = declared.iter().map(|c| c.name.as_str()).collect();
            let help = if known.is_empty() {
                format!(
                    "`{}` declares no credentials; remove the binding, or ask the plugin to declare it in its manifest",
                    requested[parent].permission.target
                )
            } else {
                format!(
                    "`{}` declares {}; bind one of those, or remove the binding",
                    requested[parent].permission.target,
                    known
                        .iter()
                        .map(|k| format!("`{k}`"))
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            };
            let d = Diagnostic::new(
                Code::CredentialNotDeclared,
                format!(
                    "{} binds credential {}, which its target does not declare",
                    quote(&g.target.to_string()),
                    quote(name)
                ),
            )
            .with_help(format!("{help}; until then this entry has no effect"));
            diags.push((Side::Grant, labelled(d, span, "not declared")));
            ignored.push(ignored_entry(
                g,
                IgnoredCode::CredentialNotDeclared,
                format!(
                    "binds credential {}, which `{}` does not declare",
                    quote(name),
                    requested[parent].permission.target
                ),
            ));
            continue;
        }
        if !g.credentials.is_empty() {
            // Unreachable while the entry is inside a valid request (a
            // request that may carry a credential contains only entries
            // that may), but a binding must never rest on that argument.
            let span = g
                .origin
                .as_ref()
                .and_then(|o| o.credentials.clone())
                .or_else(|| url_span(&g.origin))
                .unwrap_or(0..0);
            for p in credential::target_problems(&eff) {
                diags.push((
                    Side::Grant,
                    document::credential_target_diagnostic(p, &eff, span.clone(), "bound"),
                ));
            }
        }
        if !flags.broad && g.broad {
            let d = Diagnostic::new(
                Code::BroadUnneeded,
                format!(
                    "{} is not broad; `broad = true` is not needed",
                    quote(&g.target.to_string())
                ),
            )
            .with_help("remove `broad = true` so that it stands out where it matters");
            let span = g.origin.as_ref().and_then(|o| o.broad.clone());
            diags.push((Side::Grant, labelled(d, span, "not needed")));
        }
        parent_of_some[parent] = true;
        granted.push((eff, parent, g.broad && flags.broad, &g.credentials, gi));
    }

    // The IR entries and their typed twins are built together, from the same
    // permissions, and sorted together: they cannot disagree.
    let unparented = parent_of_some.iter().filter(|&&p| !p).count();
    let mut entries: Vec<(Entry, PolicyEntry)> = Vec::with_capacity(granted.len() + unparented);
    for (eff, parent, approved_broad, bindings, gi) in granted {
        let p = &requested[parent];
        let narrows =
            (p.permission != eff).then(|| narrowed(&p.permission, req_targets[parent].clone()));
        // The effective target is the grant entry's own.
        entries.push(entry(
            grant_targets[gi].clone(),
            eff,
            p.permission.clone(),
            Status::Granted,
            p.reason.clone(),
            approved_broad,
            narrows,
            entry_credentials(&p.credentials, bindings),
        ));
    }
    let unbound = BTreeMap::new();
    for (i, r) in requested.iter().enumerate() {
        if !parent_of_some[i] {
            entries.push(entry(
                req_targets[i].clone(),
                r.permission.clone(),
                r.permission.clone(),
                Status::NotGranted,
                r.reason.clone(),
                false,
                None,
                entry_credentials(&r.credentials, &unbound),
            ));
        }
    }
    // Sort positions, not the (large) entries: a stable sort of the indices
    // gives the order the stable sort of the entries gave, without moving
    // each entry many times.
    let mut order: Vec<usize> = (0..entries.len()).collect();
    order.sort_by(|&i, &j| {
        let (a, b) = (&entries[i].0, &entries[j].0);
        (a.capability, &a.target, a.status).cmp(&(b.capability, &b.target, b.status))
    });
    // Each pair moves once more, straight into its place in the two lists
    // (every index is in `order` once, so every slot is taken once).
    let mut slots: Vec<Option<(Entry, PolicyEntry)>> = entries.into_iter().map(Some).collect();
    let mut ir_entries = Vec::with_capacity(slots.len());
    let mut typed = Vec::with_capacity(slots.len());
    for &i in &order {
        let (e, t) = slots[i].take().expect("each index once");
        ir_entries.push(e);
        typed.push(t);
    }
    ignored.sort_by(|(a, _), (b, _)| {
        (a.capability, &a.target, a.code).cmp(&(b.capability, &b.target, b.code))
    });
    let (ignored, typed_ignored): (Vec<Ignored>, Vec<IgnoredGrant>) = ignored.into_iter().unzip();

    let requested_digest = requested_digest_of(&plugin.name, requested, &req_targets);
    let mut policy = Policy {
        version: ir::IR_VERSION,
        plugin,
        requested_digest,
        approved_digest,
        digest: String::new(),
        entries: ir_entries,
        ignored,
    };
    policy.digest = policy.compute_digest();
    (
        Some(CompiledPolicy::new(policy, typed, typed_ignored)),
        diags,
    )
}

fn strings<T: ToString>(it: impl IntoIterator<Item = T>) -> Vec<String> {
    it.into_iter().map(|x| x.to_string()).collect()
}

/// `target` is `p.target` spelled out.
fn narrowed(p: &Permission, target: String) -> Narrowed {
    Narrowed {
        target,
        methods: p.methods.as_ref().map(|m| m.to_strings()),
        headers: strings(&p.headers),
        subprotocols: strings(&p.subprotocols),
        networks: strings(&p.networks),
    }
}

/// A request's declarations, each with its binding from `bindings` (every
/// key of which the caller checked is declared).
fn entry_credentials(
    declared: &[Credential],
    bindings: &BTreeMap<String, SecretRef>,
) -> Vec<EntryCredential> {
    let mut out: Vec<EntryCredential> = declared
        .iter()
        .map(|c| EntryCredential {
            credential: c.clone(),
            secret_ref: bindings.get(&c.name).cloned(),
        })
        .collect();
    out.sort_by(|a, b| a.credential.name.cmp(&b.credential.name));
    out
}

/// The IR form of an entry's credential.
fn wire_credential(c: &EntryCredential) -> ir::Credential {
    let (placement, header) = match &c.credential.placement {
        CredentialPlacement::Header(h) => (ir::Placement::Header, Some(h.clone())),
        CredentialPlacement::Message => (ir::Placement::Message, None),
    };
    ir::Credential {
        name: c.credential.name.clone(),
        placement,
        header,
        format: c.credential.format.clone(),
        reason: c.credential.reason.clone(),
        status: if c.is_granted() {
            Status::Granted
        } else {
            Status::NotGranted
        },
        secret_ref: c.secret_ref.as_ref().map(|r| r.as_str().to_string()),
    }
}

/// `target` is `p.target` spelled out (the caller has it already).
#[allow(clippy::too_many_arguments)]
fn entry(
    target: String,
    p: Permission,
    requested: Permission,
    status: Status,
    reason: Option<String>,
    approved_broad: bool,
    narrows: Option<Narrowed>,
    credentials: Vec<EntryCredential>,
) -> (Entry, PolicyEntry) {
    let cap = p.capability.as_str();
    let mut id = String::with_capacity(cap.len() + 1 + target.len());
    id.push_str(cap);
    id.push(':');
    id.push_str(&target);
    let wire = Entry {
        id,
        capability: p.capability,
        status,
        target,
        scheme: p.target.scheme,
        host: match &p.target.host {
            // Spelled as `Display` does, without the formatting machinery.
            HostPattern::Domain(d) => d.clone(),
            h => h.to_string(),
        },
        host_kind: p.target.host.kind(),
        port: match p.target.port {
            PortPattern::Any => Port::Any(ir::AnyPort::Any),
            PortPattern::Exact(n) => Port::Number(n),
        },
        path: p.target.path.clone(),
        methods: p.methods.as_ref().map(|m| m.to_strings()),
        headers: strings(&p.headers),
        subprotocols: strings(&p.subprotocols),
        networks: strings(&p.networks),
        credentials: credentials.iter().map(wire_credential).collect(),
        flags: p.flags(),
        reason: reason.clone(),
        approved_broad,
        narrows,
    };
    let typed = PolicyEntry {
        id: wire.id.clone(),
        status,
        permission: p,
        requested,
        approved_broad,
        reason,
        credentials,
    };
    (wire, typed)
}

fn ignored_entry(g: &GrantEntry, code: IgnoredCode, message: String) -> (Ignored, IgnoredGrant) {
    let wire = Ignored {
        capability: g.capability,
        target: g.target.to_string(),
        methods: g.methods.as_ref().map(|m| m.to_strings()),
        headers: g.headers.as_ref().map(strings),
        subprotocols: g.subprotocols.as_ref().map(strings),
        networks: g.networks.as_ref().map(strings),
        broad: g.broad,
        credentials: g
            .credentials
            .iter()
            .map(|(k, v)| (k.clone(), v.as_str().to_string()))
            .collect(),
        code,
        message: message.clone(),
    };
    let typed = IgnoredGrant {
        grant: GrantEntry {
            origin: None,
            ..g.clone()
        },
        code,
        message,
    };
    (wire, typed)
}

/// `sha256:` over the canonical JSON of the requested set (plugin name and
/// each request's permission fields; reasons and the plugin version are not
/// part of what a grant approves).
///
/// The bytes are those of `{"plugin", "requested", "version"}` built as a
/// `serde_json::Value` (keys sorted) and written compactly — the form since IR
/// version 1 — streamed from borrowed views into the hasher.
// `build` uses `requested_digest_of` with the targets it already wrote;
// only the review engines (and tests) call this one.
#[cfg_attr(not(feature = "review"), allow(dead_code))]
pub fn requested_digest(plugin: &str, requested: &[Requested]) -> String {
    let targets: Vec<String> = requested
        .iter()
        .map(|r| r.permission.target.to_string())
        .collect();
    requested_digest_of(plugin, requested, &targets)
}

/// [`requested_digest`], with each request's target already spelled out
/// (`targets[i]` is `requested[i].permission.target`).
fn requested_digest_of(plugin: &str, requested: &[Requested], targets: &[String]) -> String {
    use serde::ser::{Serialize, Serializer};

    /// Serializes as its `Display` text, without a `String` in between.
    struct Shown<'a, T>(&'a T);
    impl<T: std::fmt::Display> Serialize for Shown<'_, T> {
        fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            s.collect_str(self.0)
        }
    }
    /// A set of `Display` values as a sequence of their texts.
    struct ShownSeq<'a, T>(&'a BTreeSet<T>);
    impl<T: std::fmt::Display> Serialize for ShownSeq<'_, T> {
        fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            s.collect_seq(self.0.iter().map(Shown))
        }
    }
    /// `Methods::to_strings`, without the strings.
    struct MethodsView<'a>(&'a Methods);
    impl Serialize for MethodsView<'_> {
        fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            match self.0 {
                Methods::Any => s.collect_seq(["*"]),
                Methods::Set(set) => s.collect_seq(set.iter().map(|m| m.as_str())),
            }
        }
    }
    /// A declaration as the digest covers it: not its reason (decision 13).
    struct CredentialItem<'a>(&'a Credential);
    impl Serialize for CredentialItem<'_> {
        fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            #[derive(serde::Serialize)]
            struct View<'a> {
                format: &'a str,
                #[serde(skip_serializing_if = "Option::is_none")]
                header: Option<&'a str>,
                name: &'a str,
                placement: &'a str,
            }
            let c = self.0;
            View {
                format: &c.format,
                header: c.placement.header(),
                name: &c.name,
                placement: c.placement.kind(),
            }
            .serialize(s)
        }
    }
    // Fields in sorted key order (see the doc comment). `credentials` is
    // left out when empty, so requested sets without credentials keep the
    // digest they always had.
    #[derive(serde::Serialize)]
    struct Item<'a> {
        capability: Capability,
        #[serde(skip_serializing_if = "Vec::is_empty")]
        credentials: Vec<CredentialItem<'a>>,
        headers: &'a BTreeSet<String>,
        methods: Option<MethodsView<'a>>,
        networks: ShownSeq<'a, IpNet>,
        subprotocols: &'a BTreeSet<String>,
        target: &'a str,
    }
    #[derive(serde::Serialize)]
    struct Doc<'a> {
        plugin: &'a str,
        requested: Vec<Item<'a>>,
        version: u32,
    }
    let mut items: Vec<Item<'_>> = requested
        .iter()
        .zip(targets)
        .map(|(r, target)| {
            let p = &r.permission;
            Item {
                capability: p.capability,
                credentials: r.credentials.iter().map(CredentialItem).collect(),
                headers: &p.headers,
                methods: p.methods.as_ref().map(MethodsView),
                networks: ShownSeq(&p.networks),
                subprotocols: &p.subprotocols,
                target,
            }
        })
        .collect();
    items.sort_by(|a, b| (a.capability, a.target).cmp(&(b.capability, b.target)));
    crate::canonical_json::digest_of(&Doc {
        plugin,
        requested: items,
        version: ir::IR_VERSION,
    })
}

// ---------------------------------------------------------------------------
// IR loading
// ---------------------------------------------------------------------------

/// Loads an IR file and re-validates it: the requested set and the grant are
/// rebuilt from it and compiled again; any disagreement (flags, statuses,
/// containment, spelling, order, digests) rejects the file. An IR is never
/// trusted more than the TOML it came from.
pub fn load_policy(name: &str, text: &str) -> Result<CompiledPolicy, Vec<Diagnostic>> {
    // The display-safe copy of the whole file is made only on failure.
    let source = || diagnostics::named_source(name, text);
    let fail = |d: Diagnostic| vec![d.with_source(source())];
    if text.len() > 16 * document::MAX_FILE_BYTES {
        return Err(fail(
            Diagnostic::new(Code::FileTooLarge, "IR file is larger than 16 MiB").with_help(
                "an IR of 10,000 targets fits well within 16 MiB; is this the right file?",
            ),
        ));
    }
    let loaded: Policy = match serde_json::from_str(text) {
        Ok(p) => p,
        Err(e) => {
            let off = offset_of(text, e.line(), e.column());
            return Err(fail(
                Diagnostic::new(Code::IrSyntax, format!("invalid IR: {e}"))
                    .with_label(off..off, "here")
                    .with_help("regenerate the IR with `netgrant compile`"),
            ));
        }
    };
    if loaded.version != ir::IR_VERSION {
        return Err(fail(
            Diagnostic::new(
                Code::IrVersion,
                format!(
                    "IR version {} is not supported (this netgrant reads version {})",
                    loaded.version,
                    ir::IR_VERSION
                ),
            )
            .with_help("regenerate the IR with this version of `netgrant compile`"),
        ));
    }
    let tampered = |msg: String| {
        vec![Diagnostic::new(Code::IrTampered, msg)
            .with_help("the IR does not match what its own contents compile to; regenerate it with `netgrant compile` instead of editing it")
            .with_source(source())]
    };
    let rebuilt = rebuild(&loaded).map_err(tampered)?;
    let (recompiled, diags) = build(
        loaded.plugin.clone(),
        &rebuilt.0,
        &rebuilt.1,
        loaded.approved_digest.clone(),
    );
    if let Some((_, d)) = diags
        .iter()
        .find(|(_, d)| d.severity() == diagnostics::Severity::Error)
    {
        return Err(tampered(format!("IR is inconsistent: {}", d.message)));
    }
    let recompiled = recompiled.ok_or_else(|| tampered("IR is inconsistent".into()))?;
    if !document::is_valid_plugin_name(&loaded.plugin.name)
        || semver::Version::parse(&loaded.plugin.version).is_err()
    {
        return Err(tampered("IR has an invalid plugin name or version".into()));
    }
    if let Some(a) = &loaded.approved_digest {
        if !document::is_valid_digest(a) {
            return Err(tampered("IR has a malformed approved_digest".into()));
        }
    }
    if *recompiled.ir() != loaded {
        return Err(tampered(describe_difference(&loaded, &recompiled)));
    }
    // Byte-equal to what was loaded, with the typed entries built alongside.
    Ok(recompiled)
}

fn offset_of(text: &str, line: usize, col: usize) -> usize {
    let mut off = 0;
    for (i, l) in text.split_inclusive('\n').enumerate() {
        if i + 1 == line {
            return (off + col.saturating_sub(1)).min(text.len());
        }
        off += l.len();
    }
    text.len()
}

fn describe_difference(loaded: &Policy, recompiled: &Policy) -> String {
    if loaded.entries.len() != recompiled.entries.len() {
        return format!(
            "IR lists {} entries but its contents compile to {}",
            loaded.entries.len(),
            recompiled.entries.len()
        );
    }
    for (a, b) in loaded.entries.iter().zip(&recompiled.entries) {
        if a != b {
            let id = diagnostics::quote(&a.id);
            let field = if a.flags != b.flags {
                format!(
                    "flags (recorded {:?}, recomputed {:?})",
                    a.flags.names(),
                    b.flags.names()
                )
            } else if a.status != b.status {
                format!(
                    "status (recorded {}, recomputed {})",
                    a.status.as_str(),
                    b.status.as_str()
                )
            } else if a.approved_broad != b.approved_broad {
                "approved_broad".to_string()
            } else if a.id != b.id || a.target != b.target {
                "order or target spelling".to_string()
            } else {
                "scheme, host, port, path or narrows".to_string()
            };
            return format!("entry {id} disagrees with recomputation: {field}");
        }
    }
    if loaded.ignored != recompiled.ignored {
        return "the ignored grant entries disagree with recomputation".into();
    }
    if loaded.requested_digest != recompiled.requested_digest {
        return format!(
            "requested_digest disagrees with recomputation (recorded {}, recomputed {})",
            loaded.requested_digest, recompiled.requested_digest
        );
    }
    if loaded.digest != recompiled.digest {
        return format!(
            "digest disagrees with recomputation (recorded {}, recomputed {})",
            loaded.digest, recompiled.digest
        );
    }
    "IR disagrees with recomputation".into()
}

pub(crate) type Rebuilt = (Vec<Requested>, Vec<GrantEntry>);

fn parse_target(s: &str, cap: Capability) -> Result<Target, String> {
    let t = Target::parse(s).map_err(|e| format!("target {}: {}", quote(s), e.message))?;
    if t.to_string() != s {
        return Err(format!("target {} is not in canonical spelling", quote(s)));
    }
    if t.capability() != cap {
        return Err(format!("target {} does not belong to {}", quote(s), cap));
    }
    Ok(t)
}

fn parse_methods(v: &[String]) -> Result<Methods, String> {
    if v.len() == 1 && v[0] == "*" {
        return Ok(Methods::Any);
    }
    let mut set = BTreeSet::new();
    for m in v {
        set.insert(Method::parse(m).ok_or_else(|| format!("unknown method {}", quote(m)))?);
    }
    if set.is_empty() {
        return Err("empty methods".into());
    }
    Ok(Methods::from_set(set))
}

fn parse_set(
    v: &[String],
    what: &str,
    ok: impl Fn(&str) -> bool,
) -> Result<BTreeSet<String>, String> {
    v.iter()
        .map(|s| {
            if ok(s) {
                Ok(s.clone())
            } else {
                Err(format!("invalid {what} {}", quote(s)))
            }
        })
        .collect()
}

fn parse_headers(v: &[String]) -> Result<BTreeSet<String>, String> {
    parse_set(v, "header", |s| {
        crate::headers::check_declared(s).as_deref() == Ok(s)
    })
}

fn parse_subprotocols(v: &[String]) -> Result<BTreeSet<String>, String> {
    parse_set(v, "subprotocol", |s| {
        crate::headers::is_token(s) && s.len() <= 128
    })
}

fn parse_networks(v: &[String]) -> Result<BTreeSet<IpNet>, String> {
    let set = parse_network_blocks(v)?;
    if crate::address::aggregate_networks(&set) != set {
        return Err(
            "networks are not aggregated (a block inside another, or adjacent blocks)".into(),
        );
    }
    Ok(set)
}

fn parse_network_blocks(v: &[String]) -> Result<BTreeSet<IpNet>, String> {
    v.iter()
        .map(|s| {
            let n: IpNet = s
                .parse()
                .map_err(|_| format!("invalid network {}", quote(s)))?;
            if crate::address::canonical_network(n) != n
                || crate::address::classify_network(n).only_never
            {
                return Err(format!(
                    "network {} is not canonical or never reachable",
                    quote(s)
                ));
            }
            Ok(n)
        })
        .collect()
}

fn permission_from(
    cap: Capability,
    target: &str,
    methods: Option<&Vec<String>>,
    headers: &[String],
    subprotocols: &[String],
    networks: &[String],
) -> Result<Permission, String> {
    let methods = match (cap, methods) {
        (Capability::Request, Some(m)) => Some(parse_methods(m)?),
        (Capability::Request, None) => {
            return Err(format!("request entry {} has no methods", quote(target)))
        }
        (Capability::Websocket, None) => None,
        (Capability::Websocket, Some(_)) => {
            return Err(format!("websocket entry {} has methods", quote(target)))
        }
    };
    Ok(Permission {
        capability: cap,
        target: parse_target(target, cap)?,
        methods,
        headers: parse_headers(headers)?,
        subprotocols: parse_subprotocols(subprotocols)?,
        networks: parse_networks(networks)?,
    })
}

pub(crate) fn rebuild(p: &Policy) -> Result<Rebuilt, String> {
    // Parse each IR entry into its typed form (the only place IR strings are
    // parsed), then invert compilation the way `explain` does.
    let mut typed = Vec::with_capacity(p.entries.len());
    let mut seen: HashMap<(Capability, &Target), usize> = HashMap::new();
    for e in &p.entries {
        if let Some(r) = &e.reason {
            if let Some(m) = document::reason_problem(r) {
                return Err(format!("entry {}: {m}", quote(&e.id)));
            }
        }
        typed.push(PolicyEntry {
            id: e.id.clone(),
            status: e.status,
            permission: entry_permission(e)?,
            requested: entry_requested_permission(e)?,
            approved_broad: e.approved_broad,
            reason: e.reason.clone(),
            credentials: entry_credentials_from(e)?,
        });
    }
    for (i, t) in typed.iter().enumerate() {
        let req = &t.requested;
        match seen.get(&(req.capability, &req.target)) {
            Some(&first)
                if typed[first].requested != *req
                    || !typed[first]
                        .declared_credentials()
                        .eq(typed[i].declared_credentials()) =>
            {
                return Err(format!(
                    "requested target {} appears with different details",
                    quote(&req.target.to_string())
                ))
            }
            Some(_) => {}
            None => {
                seen.insert((req.capability, &req.target), i);
            }
        }
    }
    let ignored = p
        .ignored
        .iter()
        .map(|ig| {
            Ok(GrantEntry {
                capability: ig.capability,
                target: parse_target(&ig.target, ig.capability)?,
                methods: ig.methods.as_deref().map(parse_methods).transpose()?,
                headers: ig.headers.as_deref().map(parse_headers).transpose()?,
                subprotocols: ig
                    .subprotocols
                    .as_deref()
                    .map(parse_subprotocols)
                    .transpose()?,
                networks: ig.networks.as_deref().map(parse_networks).transpose()?,
                broad: ig.broad,
                credentials: ig
                    .credentials
                    .iter()
                    .map(|(k, v)| {
                        if !credential::is_valid_name(k) {
                            return Err(format!("invalid credential name {}", quote(k)));
                        }
                        let r = SecretRef::parse(v).map_err(|e| e.to_string())?;
                        Ok((k.clone(), r))
                    })
                    .collect::<Result<_, String>>()?,
                origin: None,
            })
        })
        .collect::<Result<Vec<_>, String>>()?;
    Ok(crate::compiled::documents_of(&typed, ignored))
}

/// An IR entry's credentials, typed: each declaration re-checked as the
/// walker checks it, names sorted and unique, a SecretRef exactly on the
/// granted ones, and none granted on a `not_granted` entry.
fn entry_credentials_from(e: &Entry) -> Result<Vec<EntryCredential>, String> {
    let mut out: Vec<EntryCredential> = Vec::with_capacity(e.credentials.len());
    for c in &e.credentials {
        let bad = |what: &str| {
            format!(
                "entry {}: credential {}: {what}",
                quote(&e.id),
                quote(&c.name)
            )
        };
        if !credential::is_valid_name(&c.name) {
            return Err(bad("invalid name"));
        }
        if out.last().is_some_and(|p| p.credential.name >= c.name) {
            return Err(bad("credentials are not sorted by name or repeat a name"));
        }
        let placement = match (c.placement, &c.header) {
            (ir::Placement::Header, Some(h)) => {
                if crate::headers::check_credential_header(h).as_deref() != Ok(h.as_str()) {
                    return Err(bad("invalid header"));
                }
                CredentialPlacement::Header(h.clone())
            }
            (ir::Placement::Message, None) if e.capability == Capability::Websocket => {
                CredentialPlacement::Message
            }
            _ => return Err(bad("invalid placement")),
        };
        credential::check_format(&c.format, &placement).map_err(|x| bad(&x.to_string()))?;
        if let Some(r) = &c.reason {
            if let Some(m) = document::reason_problem(r) {
                return Err(bad(&m));
            }
        }
        let secret_ref = match (c.status, &c.secret_ref, e.status) {
            (Status::Granted, Some(r), Status::Granted) => {
                Some(SecretRef::parse(r).map_err(|x| bad(&x.to_string()))?)
            }
            (Status::NotGranted, None, _) => None,
            _ => return Err(bad("status and secret_ref disagree")),
        };
        out.push(EntryCredential {
            credential: Credential {
                name: c.name.clone(),
                placement,
                format: c.format.clone(),
                reason: c.reason.clone(),
            },
            secret_ref,
        });
    }
    Ok(out)
}

/// The normalized permission an IR entry describes (its own fields, not the
/// request it narrows). Fails on anything that is not canonical.
fn entry_permission(e: &Entry) -> Result<Permission, String> {
    permission_from(
        e.capability,
        &e.target,
        e.methods.as_ref(),
        &e.headers,
        &e.subprotocols,
        &e.networks,
    )
}

/// The requested permission behind an IR entry: the request it narrows, or
/// the entry itself.
fn entry_requested_permission(e: &Entry) -> Result<Permission, String> {
    match (&e.status, &e.narrows) {
        (Status::Granted, Some(n)) => permission_from(
            e.capability,
            &n.target,
            n.methods.as_ref(),
            &n.headers,
            &n.subprotocols,
            &n.networks,
        ),
        _ => entry_permission(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::fmt::Write as _;

    fn requested(targets: &[Target]) -> Vec<Requested> {
        targets
            .iter()
            .map(|t| Requested {
                permission: Permission {
                    capability: t.capability(),
                    target: t.clone(),
                    methods: None,
                    headers: BTreeSet::new(),
                    subprotocols: BTreeSet::new(),
                    networks: BTreeSet::new(),
                },
                reason: None,
                credentials: Vec::new(),
                origin: None,
            })
            .collect()
    }

    fn grant_entry(t: &Target) -> GrantEntry {
        GrantEntry {
            capability: t.capability(),
            target: t.clone(),
            methods: None,
            headers: None,
            subprotocols: None,
            networks: None,
            broad: false,
            credentials: BTreeMap::new(),
            origin: None,
        }
    }

    /// Targets over a small alphabet, so that containment is common: every
    /// host form (`*`, domains, wildcards at several depths, IPv4, IPv6),
    /// default, other and `*` ports, paths with and without a trailing `/`,
    /// empty segments, and schemes of both capabilities.
    fn target() -> impl Strategy<Value = Target> {
        let scheme = prop::sample::select(vec!["https", "http", "wss"]);
        let host = prop::sample::select(vec![
            "*",
            "a.b.c",
            "b.c",
            "c",
            "x.a.b.c",
            "*.b.c",
            "*.c",
            "*.a.b.c",
            "*.x.a.b.c",
            "bc",
            "*.bc",
            "10.0.0.1",
            "10.0.0.2",
            "[2001:db8::1]",
        ]);
        let port = prop::sample::select(vec!["", ":8443", ":*", ":443"]);
        let path = prop::sample::select(vec![
            "/", "/a", "/a/", "/a/b", "/a/b/", "/ab", "/a//b", "//", "/a/b/c",
        ]);
        (scheme, host, port, path).prop_map(|(s, h, p, path)| {
            Target::parse(&format!("{s}://{h}{p}{path}")).expect("valid target")
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 512, failure_persistence: None, ..ProptestConfig::default() })]

        /// The index finds exactly the requests the old scan found: every
        /// request of the capability whose target contains the grant's.
        #[test]
        fn index_agrees_with_scan(
            targets in prop::collection::vec(target(), 0..40),
            grants in prop::collection::vec(target(), 1..10),
        ) {
            let mut distinct = Vec::new();
            for t in targets {
                if !distinct.contains(&t) {
                    distinct.push(t);
                }
            }
            let req = requested(&distinct);
            let index = RequestIndex::new(&req);
            let mut found = Vec::new();
            for g in &grants {
                let g = grant_entry(g);
                index.containing(&req, &g, &mut found);
                let scan: Vec<usize> = (0..req.len())
                    .filter(|&i| {
                        req[i].permission.capability == g.capability
                            && req[i].permission.target.contains(&g.target)
                    })
                    .collect();
                prop_assert_eq!(&found, &scan, "grant {}", g.target);
            }
        }
    }

    /// The premise of `index_agrees_with_scan`: its alphabet makes
    /// containment common, across host forms, so agreement is not vacuous.
    #[test]
    fn index_sees_every_host_form() {
        let p = |s: &str| Target::parse(s).unwrap();
        let req = requested(&[
            p("https://*/"),
            p("https://*.c/"),
            p("https://*.b.c:*/a/"),
            p("https://a.b.c/a"),
            p("https://10.0.0.1/"),
            p("https://[2001:db8::1]:*/"),
        ]);
        let index = RequestIndex::new(&req);
        let mut found = Vec::new();
        let mut hits = |g: &str| {
            index.containing(&req, &grant_entry(&p(g)), &mut found);
            found.clone()
        };
        assert_eq!(hits("https://a.b.c/a/b"), [0, 1, 2, 3]);
        assert_eq!(hits("https://a.b.c:8443/a/b"), [2]);
        assert_eq!(hits("https://*.x.b.c:*/a//"), [2]);
        assert_eq!(hits("https://10.0.0.1/x"), [0, 4]);
        assert_eq!(hits("https://[2001:db8::1]:8080/"), [5]);
        assert_eq!(hits("https://*/"), [0]);
        assert!(hits("http://a.b.c/").is_empty());
    }

    /// A manifest of `n` targets over every host form (exact hosts under 97
    /// parents with three path shapes, wildcards, a non-default port, IPv4
    /// and IPv6 literals) plus `wss://*/` and `https://*.example.com:*/`,
    /// and a grant that grants most of them as written, narrows some, grants
    /// some hosts only the wildcards or `*` contain, and some nothing
    /// contains; pinned to a stale digest so drift runs too.
    fn scale_texts(n: usize) -> (String, String) {
        let mut m = String::from(
            "[plugin]\nname = \"scale\"\nversion = \"1.0.0\"\n\n[[host_api.websocket]]\nurl = \"wss://*/\"\nreason = \"any\"\n\n[[host_api.request]]\nurl = \"https://*.example.com:*/\"\nmethods = [\"GET\"]\n",
        );
        let mut g = format!(
            "plugin = \"scale\"\napproved_digest = \"sha256:{}\"\n",
            "0".repeat(64)
        );
        // Two fixed targets above: `n` in all (the per-file limit is 10,000).
        for i in 0..n - 2 {
            let t = match i % 10 {
                0..=5 => format!(
                    "https://s{i}.t{}.example.com{}",
                    i % 97,
                    ["/", "/api/", "/v1"][i % 3]
                ),
                6 => format!("https://*.w{i}.example.net/"),
                7 => format!("https://s{i}.t{}.example.com:8443/data/", i % 97),
                8 => format!(
                    "https://10.{}.{}.{}/",
                    (i >> 16) & 255,
                    (i >> 8) & 255,
                    i & 255
                ),
                _ => format!("https://[2001:db8::{i:x}]/"),
            };
            let _ = write!(
                m,
                "\n[[host_api.request]]\nurl = \"{t}\"\nmethods = [\"GET\", \"POST\"]\nreason = \"r{i}\"\n"
            );
            let granted = match i % 16 {
                1 => format!("{}/x/", t.trim_end_matches('/')),
                2 => format!("https://a.w{i}.example.net/"),
                3 => format!("wss://h{i}.example.org/"),
                4 => format!("https://gone{i}.example.org/"),
                5 => continue,
                _ => t,
            };
            let _ = write!(g, "\n[[host_api.request]]\nurl = \"{granted}\"\n");
        }
        // `wss://` lines above sit in the request table; move them.
        let g = g.replace(
            "[[host_api.request]]\nurl = \"wss://",
            "[[host_api.websocket]]\nurl = \"wss://",
        );
        (m, g)
    }

    /// `requested_digest` as computed before it was streamed: `json!`
    /// values (sorted keys) serialized to a buffer.
    fn value_requested_digest(plugin: &str, requested: &[Requested]) -> String {
        let mut items: Vec<(Capability, String, serde_json::Value)> = requested
            .iter()
            .map(|r| {
                let p = &r.permission;
                (
                    p.capability,
                    p.target.to_string(),
                    serde_json::json!({
                        "capability": p.capability,
                        "target": p.target.to_string(),
                        "methods": p.methods.as_ref().map(|m| m.to_strings()),
                        "headers": strings(&p.headers),
                        "subprotocols": strings(&p.subprotocols),
                        "networks": strings(&p.networks),
                    }),
                )
            })
            .collect();
        items.sort_by(|a, b| (a.0, &a.1).cmp(&(b.0, &b.1)));
        let doc = serde_json::json!({
            "version": ir::IR_VERSION,
            "plugin": plugin,
            "requested": items.into_iter().map(|(_, _, v)| v).collect::<Vec<_>>(),
        });
        ir::sha256(&serde_json::to_vec(&doc).expect("json"))
    }

    /// Old and new `requested_digest` agree: on the scale manifest (every
    /// host form, methods sets), on one with `"*"` methods, headers,
    /// subprotocols and networks in both capabilities, and on an empty one.
    #[test]
    fn streamed_requested_digest_matches_value_digest() {
        let rich = r#"
[plugin]
name = "rich"
version = "0.1.0"

[[host_api.request]]
url = "https://*.example.net:*/a%20b/"
methods = "*"
headers = ["X-Trace", "X-Lang"]
networks = ["10.0.0.0/8", "fd00::/8", "192.168.1.0/24"]

[[host_api.request]]
url = "http://[2001:db8::1]:8080/"
methods = ["DELETE", "GET"]

[[host_api.websocket]]
url = "wss://ws.example.com/v1"
subprotocols = ["mqtt", "json"]
networks = ["100.64.0.0/10"]

[[host_api.websocket]]
url = "ws://localhost:9000/"
"#;
        let empty = "[plugin]\nname = \"empty\"\nversion = \"1.0.0\"\n";
        for text in [rich.to_string(), empty.to_string(), scale_texts(300).0] {
            let m = parsed(Manifest::parse("plugin.toml", &text));
            assert_eq!(
                requested_digest(&m.name, &m.requested),
                value_requested_digest(&m.name, &m.requested)
            );
        }
        // And the result is the one the IR records.
        let m = parsed(Manifest::parse("plugin.toml", rich));
        let p = compile(&m, None).policy.expect("compiles");
        assert_eq!(
            p.requested_digest,
            value_requested_digest(&m.name, &m.requested)
        );
    }

    fn parsed<T>(p: document::Parsed<T>) -> T {
        let messages: Vec<String> = p.diagnostics.iter().map(|d| d.message.clone()).collect();
        p.value
            .unwrap_or_else(|| panic!("does not parse: {messages:?}"))
    }

    fn checks(f: impl FnOnce()) -> u64 {
        CONTAINMENT_CHECKS.with(|c| c.set(0));
        f();
        CONTAINMENT_CHECKS.with(|c| c.get())
    }

    /// (compile checks, IR load checks, entries) for `n` targets.
    fn scale_work(n: usize) -> (u64, u64, usize) {
        let (m, g) = scale_texts(n);
        let m = parsed(Manifest::parse("plugin.toml", &m));
        let g = parsed(Grant::parse("grant.toml", &g));
        let mut policy = None;
        let compiling = checks(|| policy = compile(&m, Some(&g)).policy);
        let policy = policy.expect("compiles");
        assert!(policy.digest_drift());
        assert!(policy.ignored.len() >= n / 16, "{}", policy.ignored.len());
        let json = policy.to_json();
        let mut loaded = None;
        let loading = checks(|| loaded = Some(load_policy("policy.json", &json)));
        assert_eq!(loaded.expect("ran").expect("loads"), policy);
        (compiling, loading, policy.entries.len())
    }

    /// Growth guard: grant containment stays linear in compile and in IR
    /// load (which compiles again). Counted, not timed: ten times the
    /// entries must cost at most ~11 times the containment checks (the old
    /// all-pairs scan grew 100×), and a few checks per entry at most.
    #[test]
    fn containment_work_grows_linearly() {
        let (c1, l1, e1) = scale_work(1_000);
        let (c10, l10, e10) = scale_work(10_000);
        eprintln!(
            "containment checks: compile {c1} -> {c10}, load {l1} -> {l10} ({e1} -> {e10} entries)"
        );
        for (what, small, big) in [("compile", c1, c10), ("IR load", l1, l10)] {
            let ratio = big as f64 / small as f64;
            assert!(
                ratio <= 11.0,
                "{what}: containment checks grew {ratio:.1}x ({small} -> {big}) for 10x the entries"
            );
            assert!(
                big <= 4 * 10_000,
                "{what}: {big} containment checks for 10,000 targets"
            );
        }
    }
}
