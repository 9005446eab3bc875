//! Lints: advice about a valid manifest and grant (`netgrant::lint::*`).
//!
//! Lints never change a policy. `check` reports them as warnings (one, the
//! narrowing-grant lint, as a note) and [`Levels`] promotes or silences them,
//! cargo-deny style: `--deny redundant_target`, `--deny warnings`,
//! `--allow plaintext`.
//!
//! Pairwise lints (redundant, overlapping) find partners through a host index
//! (exact host, each wildcard suffix, `*`), so a 10,000-target manifest is not
//! an all-pairs scan.

use crate::capability::Scheme;
use crate::diagnostics::{quote, Code, Diagnostic, Severity};
use crate::document::{Grant, Manifest, Requested};
use crate::ir::Policy;
use crate::path;
use crate::permission::Permission;
use crate::target::{HostPattern, PortPattern, Target};
use std::collections::{BTreeSet, HashMap};

/// Runs every lint over a parsed manifest, its grant and the compiled policy.
/// Diagnostics come with their source files attached.
pub fn lint(manifest: &Manifest, grant: Option<&Grant>, policy: &Policy) -> Vec<Diagnostic> {
    let mut m = Vec::new();
    pairwise(&manifest.requested, &mut m);
    for r in &manifest.requested {
        single(r, &mut m);
    }
    let mut g = Vec::new();
    if let Some(grant) = grant {
        narrowing(grant, policy, &mut g);
        unbound_credentials(grant, policy, &mut g);
    }
    let attach =
        |d: Diagnostic, src: &Option<std::sync::Arc<miette::NamedSource<String>>>| match src {
            Some(s) => d.with_source(s.clone()),
            None => d,
        };
    let mut out: Vec<Diagnostic> = m.into_iter().map(|d| attach(d, &manifest.source)).collect();
    crate::diagnostics::sort(&mut out);
    let mut gs: Vec<Diagnostic> = g
        .into_iter()
        .map(|d| attach(d, &grant.and_then(|g| g.source.clone())))
        .collect();
    crate::diagnostics::sort(&mut gs);
    out.extend(gs);
    out
}

fn span_label(d: Diagnostic, r: &Requested, text: &str) -> Diagnostic {
    match &r.origin {
        Some(o) => d.with_label(o.url.clone(), text),
        None => d,
    }
}

/// Loopback without a reason; plaintext to a non-loopback host.
fn single(r: &Requested, out: &mut Vec<Diagnostic>) {
    let p = &r.permission;
    let flags = p.flags();
    let target = p.target.to_string();
    if flags.loopback && r.reason.is_none() {
        let d = Diagnostic::new(
            Code::LoopbackWithoutReason,
            format!("loopback target {} has no reason", quote(&target)),
        )
        .with_help(
            "add `reason = \"…\"`: a reviewer must know why a plugin reaches services on this machine",
        );
        out.push(span_label(d, r, "loopback, no reason"));
    }
    let plaintext = matches!(p.target.scheme, Scheme::Ws | Scheme::Http);
    if plaintext && !is_loopback_only(p) {
        let secure = match p.target.scheme {
            Scheme::Ws => "wss",
            _ => "https",
        };
        let d = Diagnostic::new(
            Code::Plaintext,
            format!(
                "{} is plaintext {}:// to a host that is not loopback",
                quote(&target),
                p.target.scheme
            ),
        )
        .with_help(format!(
            "use {secure}:// so the traffic cannot be read or changed on the way; plaintext is fine only on this machine"
        ));
        out.push(span_label(d, r, "plaintext"));
    }
}

/// Whether every address the target can reach is loopback: a loopback IP or a
/// localhost name, with no networks beyond loopback.
fn is_loopback_only(p: &Permission) -> bool {
    let host_loopback = match &p.target.host {
        HostPattern::Ip(ip) => ip.is_loopback(),
        h => h.is_localhost_name(),
    };
    host_loopback
        && p.networks.iter().all(|n| {
            let c = crate::address::classify_network(*n);
            c.loopback && !c.private && !c.public
        })
}

/// The index key of a host pattern.
fn host_key(h: &HostPattern) -> String {
    h.to_string()
}

/// Keys of every host pattern that can contain `h` (including `h` itself).
fn container_keys(h: &HostPattern) -> Vec<String> {
    let mut keys = vec![host_key(h)];
    let name = match h {
        HostPattern::Domain(d) => Some(d.as_str()),
        HostPattern::Wildcard(s) => Some(s.as_str()),
        _ => None,
    };
    if let Some(name) = name {
        // A domain `a.b.c` sits under `*.b.c` and `*.c`; a wildcard `*.b.c`
        // under `*.c`.
        let mut rest = name;
        while let Some(i) = rest.find('.') {
            rest = &rest[i + 1..];
            keys.push(format!("*.{rest}"));
        }
    }
    if !matches!(h, HostPattern::Any) {
        keys.push("*".to_string());
    }
    keys
}

fn ports_overlap(a: PortPattern, b: PortPattern) -> bool {
    a.contains(b) || b.contains(a)
}

/// Whether two targets share at least one URL: same scheme, one host inside
/// the other, ports overlap, one path prefix inside the other.
pub fn targets_overlap(a: &Target, b: &Target) -> bool {
    a.scheme == b.scheme
        && (a.host.contains(&b.host) || b.host.contains(&a.host))
        && ports_overlap(a.port, b.port)
        && (path::prefix_contains(&a.path, &b.path) || path::prefix_contains(&b.path, &a.path))
}

/// Redundant targets (one request's permission inside another's) and
/// overlapping targets with different reasons.
fn pairwise(requested: &[Requested], out: &mut Vec<Diagnostic>) {
    let mut index: HashMap<(crate::Capability, String), Vec<usize>> = HashMap::new();
    for (i, r) in requested.iter().enumerate() {
        index
            .entry((r.permission.capability, host_key(&r.permission.target.host)))
            .or_default()
            .push(i);
    }
    let mut reported: BTreeSet<(usize, usize)> = BTreeSet::new();
    for (i, inner) in requested.iter().enumerate() {
        let ip = &inner.permission;
        let mut redundant_in: Option<usize> = None;
        for key in container_keys(&ip.target.host) {
            let Some(cands) = index.get(&(ip.capability, key)) else {
                continue;
            };
            for &j in cands {
                if j == i {
                    continue;
                }
                let outer = &requested[j];
                let op = &outer.permission;
                if !targets_overlap(&op.target, &ip.target) {
                    continue;
                }
                if op.contains(ip) && redundant_in.is_none() {
                    redundant_in = Some(j);
                    continue;
                }
                let pair = (i.min(j), i.max(j));
                if inner.reason != outer.reason
                    && !op.contains(ip)
                    && !ip.contains(op)
                    && reported.insert(pair)
                {
                    let (first, second) = (&requested[pair.0], &requested[pair.1]);
                    let d = Diagnostic::new(
                        Code::OverlappingReasons,
                        format!(
                            "{} and {} overlap but give different reasons",
                            quote(&first.permission.target.to_string()),
                            quote(&second.permission.target.to_string())
                        ),
                    )
                    .with_help(
                        "a URL both reach is explained two ways at review; give them one reason, or make the targets disjoint",
                    );
                    let d = span_label(d, second, "overlaps");
                    let d = span_label(d, first, "the other target");
                    out.push(d);
                }
            }
        }
        if let Some(j) = redundant_in {
            let outer = &requested[j];
            let mut help = format!(
                "remove it: everything it allows, {} already allows",
                quote(&outer.permission.target.to_string())
            );
            if inner.reason != outer.reason {
                help.push_str(
                    " (the two give different reasons: keep the one a reviewer should read)",
                );
            }
            let d = Diagnostic::new(
                Code::RedundantTarget,
                format!(
                    "{} is contained in {}",
                    quote(&ip.target.to_string()),
                    quote(&outer.permission.target.to_string())
                ),
            )
            .with_help(help);
            let d = span_label(d, inner, "redundant");
            let d = span_label(d, outer, "contains it");
            out.push(d);
        }
    }
}

/// Granted entries narrower than the request they approve (a note).
fn narrowing(grant: &Grant, policy: &Policy, out: &mut Vec<Diagnostic>) {
    let mut by_target: HashMap<(crate::Capability, String), usize> = HashMap::new();
    for (i, g) in grant.entries.iter().enumerate() {
        by_target.insert((g.capability, g.target.to_string()), i);
    }
    for e in policy.granted() {
        let Some(n) = &e.narrows else { continue };
        let mut what = Vec::new();
        if n.target != e.target {
            what.push(format!("target (requested {})", quote(&n.target)));
        }
        if n.methods != e.methods {
            what.push(format!(
                "methods {} (requested {})",
                e.methods.as_deref().unwrap_or_default().join(","),
                n.methods.as_deref().unwrap_or_default().join(",")
            ));
        }
        if n.headers != e.headers {
            what.push("headers".to_string());
        }
        if n.subprotocols != e.subprotocols {
            what.push("subprotocols".to_string());
        }
        if n.networks != e.networks {
            what.push("networks".to_string());
        }
        let mut d = Diagnostic::new(
            Code::GrantNarrows,
            format!(
                "grant for {} is narrower than the request: {}",
                quote(&e.target),
                what.join(", ")
            ),
        )
        .with_help(
            "fine if intended: the plugin gets only what is granted; calls outside it are denied",
        );
        if let Some(o) = by_target
            .get(&(e.capability, e.target.clone()))
            .and_then(|&i| grant.entries[i].origin.as_ref())
        {
            d = d.with_label(o.url.clone(), "narrows the request");
        }
        out.push(d);
    }
}

/// Granted entries that leave a declared credential unbound: the target
/// works without it, but the plugin asked for it, so a request naming it is
/// denied `credential_not_granted` (docs/spec.md §9.2).
fn unbound_credentials(grant: &Grant, policy: &Policy, out: &mut Vec<Diagnostic>) {
    for e in policy.granted() {
        for c in e
            .credentials
            .iter()
            .filter(|c| c.status != crate::ir::Status::Granted)
        {
            let mut d = Diagnostic::new(
                Code::CredentialNotBound,
                format!(
                    "grant for {} does not bind credential {}, which the request declares: requests that ask for it are denied",
                    quote(&e.target),
                    quote(&c.name)
                ),
            )
            .with_help(format!(
                "bind it: `credentials = {{ {} = \"secret/ref\" }}` (or `netgrant approve --bind-credential {}=REF`); allow the lint if the plugin works without it",
                c.name, c.name
            ));
            if let Some(o) = grant
                .entries
                .iter()
                .find(|g| g.capability == e.capability && g.target.to_string() == e.target)
                .and_then(|g| g.origin.as_ref())
            {
                d = d.with_label(o.url.clone(), "binds no secret for it");
            }
            out.push(d);
        }
    }
}

/// Lint levels from `--deny` / `--allow`, applied after every lint ran.
#[derive(Clone, Debug, Default)]
pub struct Levels {
    deny: BTreeSet<Code>,
    allow: BTreeSet<Code>,
    deny_warnings: bool,
}

/// A level name that is not a lint or warning code.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnknownLevel(pub String);

impl Levels {
    /// Builds levels from names: a code (`netgrant::lint::plaintext`,
    /// `lint::plaintext`, `plaintext`) or `warnings` (every warning-level code;
    /// notes stay notes).
    /// Errors cannot be allowed; only warning- and note-level codes are accepted.
    pub fn new(deny: &[String], allow: &[String]) -> Result<Levels, UnknownLevel> {
        let mut l = Levels::default();
        let code = |n: &String| {
            Code::lookup(n)
                .filter(|c| !c.severity().is_error())
                .ok_or_else(|| UnknownLevel(n.clone()))
        };
        for n in deny {
            if n == "warnings" {
                l.deny_warnings = true;
            } else {
                l.deny.insert(code(n)?);
            }
        }
        for n in allow {
            l.allow.insert(code(n)?);
        }
        Ok(l)
    }

    /// The codes a level may name (warnings and notes), for help text.
    pub fn names() -> Vec<&'static str> {
        Code::ALL
            .iter()
            .filter(|c| !c.severity().is_error())
            .map(|c| c.as_str())
            .collect()
    }

    /// Drops allowed diagnostics and promotes denied ones to errors. A code
    /// both denied and allowed is denied (fail closed).
    pub fn apply(&self, diags: Vec<Diagnostic>) -> Vec<Diagnostic> {
        diags
            .into_iter()
            .filter_map(|d| {
                let sev = d.code.severity();
                if sev.is_error() {
                    return Some(d);
                }
                if self.deny.contains(&d.code) || (self.deny_warnings && sev == Severity::Warning) {
                    return Some(d.with_severity(Severity::Error));
                }
                if self.allow.contains(&d.code) {
                    return None;
                }
                Some(d)
            })
            .collect()
    }
}
