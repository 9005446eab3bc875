//! The compiler: manifest + grant → canonical [`Policy`], and the IR loader
//! that re-validates an IR by compiling it again.

use crate::capability::Capability;
use crate::compiled::{CompiledPolicy, IgnoredGrant, PolicyEntry};
use crate::diagnostics::{self, quote, Code, Diagnostic};
use crate::document::{self, Grant, GrantEntry, Manifest, Requested};
use crate::ir::{self, Entry, Ignored, IgnoredCode, Narrowed, PluginInfo, Policy, Port, Status};
use crate::permission::{Method, Methods, Permission};
use crate::target::{PortPattern, Target};
use ipnet::IpNet;
use std::collections::{BTreeSet, HashMap};
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
    let span_of = |id: &str| {
        g.entries
            .iter()
            .find(|e| format!("{}:{}", e.capability, e.target) == id)
            .and_then(|e| url_span(&e.origin))
    };
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

fn key(cap: Capability, t: &Target) -> (Capability, String) {
    (cap, t.to_string())
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

fn build(
    plugin: PluginInfo,
    requested: &[Requested],
    grant_entries: &[GrantEntry],
    approved_digest: Option<String>,
) -> Built {
    let mut diags = Vec::new();
    // Duplicate requests are ambiguous (which reason? which methods?): fatal.
    let mut req_index: HashMap<(Capability, String), usize> = HashMap::new();
    for (i, r) in requested.iter().enumerate() {
        let k = key(r.permission.capability, &r.permission.target);
        if let Some(&first) = req_index.get(&k) {
            let d = Diagnostic::new(
                Code::DuplicateTarget,
                format!("{} is requested twice in `{}`", quote(&k.1), k.0.table()),
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
    let mut grant_index: HashMap<(Capability, String), usize> = HashMap::new();
    for (i, g) in grant_entries.iter().enumerate() {
        let k = key(g.capability, &g.target);
        if let Some(&first) = grant_index.get(&k) {
            let d = Diagnostic::new(
                Code::DuplicateGrant,
                format!("{} is granted twice in `{}`", quote(&k.1), k.0.table()),
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

    // Requests by capability, for candidate search.
    let mut by_cap: HashMap<Capability, Vec<usize>> = HashMap::new();
    for (i, r) in requested.iter().enumerate() {
        by_cap.entry(r.permission.capability).or_default().push(i);
    }
    let mut parent_of_some = vec![false; requested.len()];
    let mut granted: Vec<(Permission, usize, bool)> = Vec::new();
    let mut ignored: Vec<(Ignored, IgnoredGrant)> = Vec::new();
    for g in grant_entries {
        // Every containing request is a candidate (docs/spec.md §3.2), most specific
        // first, so an equal-target request is tried first but is not the
        // only one.
        let mut candidates: Vec<usize> = by_cap
            .get(&g.capability)
            .map(|v| {
                v.iter()
                    .copied()
                    .filter(|&i| requested[i].permission.target.contains(&g.target))
                    .collect()
            })
            .unwrap_or_default();
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
        granted.push((eff, parent, g.broad && flags.broad));
    }

    // The IR entries and their typed twins are built together, from the same
    // permissions, and sorted together: they cannot disagree.
    let mut entries: Vec<(Entry, PolicyEntry)> = Vec::new();
    for (eff, parent, approved_broad) in granted {
        let p = &requested[parent];
        let narrows = (p.permission != eff).then(|| narrowed(&p.permission));
        entries.push(entry(
            eff,
            p.permission.clone(),
            Status::Granted,
            p.reason.clone(),
            approved_broad,
            narrows,
        ));
    }
    for (i, r) in requested.iter().enumerate() {
        if !parent_of_some[i] {
            entries.push(entry(
                r.permission.clone(),
                r.permission.clone(),
                Status::NotGranted,
                r.reason.clone(),
                false,
                None,
            ));
        }
    }
    entries.sort_by(|(a, _), (b, _)| {
        (a.capability, &a.target, a.status).cmp(&(b.capability, &b.target, b.status))
    });
    ignored.sort_by(|(a, _), (b, _)| {
        (a.capability, &a.target, a.code).cmp(&(b.capability, &b.target, b.code))
    });
    let (entries, typed): (Vec<Entry>, Vec<PolicyEntry>) = entries.into_iter().unzip();
    let (ignored, typed_ignored): (Vec<Ignored>, Vec<IgnoredGrant>) = ignored.into_iter().unzip();

    let requested_digest = requested_digest(&plugin.name, requested);
    let mut policy = Policy {
        version: ir::IR_VERSION,
        plugin,
        requested_digest,
        approved_digest,
        digest: String::new(),
        entries,
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

fn narrowed(p: &Permission) -> Narrowed {
    Narrowed {
        target: p.target.to_string(),
        methods: p.methods.as_ref().map(|m| m.to_strings()),
        headers: strings(&p.headers),
        subprotocols: strings(&p.subprotocols),
        networks: strings(&p.networks),
    }
}

fn entry(
    p: Permission,
    requested: Permission,
    status: Status,
    reason: Option<String>,
    approved_broad: bool,
    narrows: Option<Narrowed>,
) -> (Entry, PolicyEntry) {
    let target = p.target.to_string();
    let wire = Entry {
        id: format!("{}:{}", p.capability, target),
        capability: p.capability,
        status,
        target,
        scheme: p.target.scheme,
        host: p.target.host.to_string(),
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
pub fn requested_digest(plugin: &str, requested: &[Requested]) -> String {
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

// ---------------------------------------------------------------------------
// IR loading
// ---------------------------------------------------------------------------

/// Loads an IR file and re-validates it: the requested set and the grant are
/// rebuilt from it and compiled again; any disagreement (flags, statuses,
/// containment, spelling, order, digests) rejects the file. An IR is never
/// trusted more than the TOML it came from.
pub fn load_policy(name: &str, text: &str) -> Result<CompiledPolicy, Vec<Diagnostic>> {
    let source = diagnostics::named_source(name, text);
    let fail = |d: Diagnostic| vec![d.with_source(source.clone())];
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
            .with_source(source.clone())]
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
        });
    }
    for (i, t) in typed.iter().enumerate() {
        let req = &t.requested;
        match seen.get(&(req.capability, &req.target)) {
            Some(&first) if typed[first].requested != *req => {
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
                origin: None,
            })
        })
        .collect::<Result<Vec<_>, String>>()?;
    Ok(crate::compiled::documents_of(&typed, ignored))
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
