//! `netgrant explain`: the authorize decision plus the reasoning a human
//! needs — which rule matched, or the nearest misses and the grant or
//! manifest change that would allow the request, or why no line can.
//!
//! The decision is [`Authorizer::authorize`]'s, unchanged: the explanation is
//! computed beside it, never instead of it. Nearest misses are ranked over
//! every entry of the policy (granted, not granted, requests granted only
//! through narrower entries, and ignored grant entries); explain is for one
//! URL at a time, so it scans all entries and compares each one part by part
//! (a cheap host-relatedness test first).
//!
//! A suggested fix is verified before it is shown: the change is applied to
//! the manifest and grant (as parsed, or as rebuilt from the IR), compiled
//! again and the request authorized against the result. Only a change that
//! turns the decision into `allow` is suggested.

use crate::address::{self, AddressClass};
use crate::authorize::{Authorizer, Request, LOCALHOST_ADDRS};
use crate::capability::{Capability, Scheme};
use crate::compile::compile;
use crate::compiled::CompiledPolicy;
use crate::credential::{Credential, CredentialUse, SecretRef};
use crate::decision::{Decision, DenyCode};
use crate::document::{Grant, GrantEntry, Manifest, Requested};
use crate::headers;
use crate::ir::{IgnoredCode, Status};
use crate::path::{self, PathReadings};
use crate::permission::{Method, Methods, Permission};
use crate::redact;
use crate::target::{HostPattern, PortPattern, Target, UrlHost};
use ipnet::IpNet;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::net::IpAddr;
use std::ops::Range;

/// How many nearest misses an explanation lists.
pub const MAX_MISSES: usize = 5;

/// How many of the nearest entries fixes are derived from, and how many
/// proposals are verified (each verification compiles the policy again), so
/// explain stays fast on a policy of 10,000 entries.
const FIX_CANDIDATES: usize = 16;
const MAX_VERIFIED: usize = 8;

/// The parsed manifest and grant behind a policy, when available: they give
/// file names and line numbers (`plugin.toml:12`), and the grant entries as
/// written (which fields are set, which inherit from the request).
#[derive(Clone, Copy, Debug, Default)]
pub struct Sources<'a> {
    /// The manifest the policy was compiled from.
    pub manifest: Option<&'a Manifest>,
    /// The grant the policy was compiled from.
    pub grant: Option<&'a Grant>,
}

/// A line in a manifest or grant file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Location {
    /// The file name as given (escaped for terminals).
    pub file: String,
    /// 1-based line of the entry's `url`.
    pub line: usize,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.file, self.line)
    }
}

/// The request as explain understood it.
#[derive(Clone, Debug, Serialize)]
pub struct RequestFacts {
    /// The capability used.
    pub capability: Capability,
    /// The URL, redacted.
    pub url: String,
    /// The effective method (request capability: `GET` when none was given).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    /// Names of the headers sent (values are never shown).
    pub headers: Vec<String>,
    /// Subprotocols asked for.
    pub subprotocols: Vec<String>,
    /// The addresses that were classified: the IP literal, loopback for a
    /// localhost name, or the DNS answers given.
    pub addresses: Vec<IpAddr>,
}

/// The rule that allowed the request.
#[derive(Clone, Debug, Serialize)]
pub struct Matched {
    /// Rule id (`<capability>:<target>`).
    pub rule: String,
    /// The granted target.
    pub target: String,
    /// The plugin's reason for the request.
    pub reason: Option<String>,
    /// The requested target this grant narrows, if it narrows one.
    pub narrows: Option<String>,
    /// What the grant narrowed: `target`, `methods`, `headers`,
    /// `subprotocols`, `networks`.
    pub narrowed: Vec<String>,
    /// Granted methods (request entries).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub methods: Option<Vec<String>>,
    /// Where the grant entry is written.
    pub granted_at: Option<Location>,
    /// Where the request is declared.
    pub requested_at: Option<Location>,
}

/// What kind of entry a near miss is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MissStatus {
    /// A granted entry (usable).
    Granted,
    /// A request that is not granted.
    NotGranted,
    /// A request granted only through narrower grant entries.
    Requested,
    /// A grant entry that compile dropped (see `ignored` in the IR).
    Ignored,
}

impl MissStatus {
    /// `granted`, `not_granted`, `requested` or `ignored`.
    pub fn as_str(self) -> &'static str {
        match self {
            MissStatus::Granted => "granted",
            MissStatus::NotGranted => "not_granted",
            MissStatus::Requested => "requested",
            MissStatus::Ignored => "ignored",
        }
    }
}

/// Which part of an entry does not fit the request.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Part {
    /// The entry belongs to the other capability.
    Capability,
    /// `http` vs `https`, `ws` vs `wss`.
    Scheme,
    /// The host.
    Host,
    /// The port.
    Port,
    /// The path prefix.
    Path,
    /// The HTTP method.
    Method,
    /// A header the entry does not declare.
    Header,
    /// A subprotocol the entry does not declare.
    Subprotocol,
    /// A non-public address the entry does not cover.
    Address,
    /// The entry is not usable: not granted, or an ignored grant entry.
    Status,
}

/// One way an entry differs from the request.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Difference {
    /// Which part.
    pub part: Part,
    /// A human sentence (plugin-written text escaped for terminals).
    pub message: String,
}

/// An entry that nearly allows the request.
#[derive(Clone, Debug, Serialize)]
pub struct Miss {
    /// Rule id (`<capability>:<target>`).
    pub rule: String,
    /// Capability of the entry.
    pub capability: Capability,
    /// The entry's target.
    pub target: String,
    /// What kind of entry.
    pub status: MissStatus,
    /// What differs, most significant first.
    pub differences: Vec<Difference>,
    /// Where the entry is written: the grant line for granted and ignored
    /// entries, the manifest line for requests.
    pub at: Option<Location>,
    /// Where the request behind a granted entry is declared.
    pub requested_at: Option<Location>,
}

/// What kind of change would allow the request.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FixKind {
    /// Nothing: the request is allowed.
    None,
    /// A grant change: the manifest already requests it.
    Grant,
    /// A manifest change (for the plugin author), then a grant change.
    Manifest,
    /// No manifest or grant line can allow this request.
    Impossible,
    /// No verified suggestion was found.
    Unknown,
}

/// Which file a fix step edits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FixFile {
    /// `plugin.toml`.
    Manifest,
    /// `grant.toml`.
    Grant,
}

/// Add an entry, or replace an existing one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FixAction {
    /// Append a new entry.
    Add,
    /// Replace the entry with the same capability and `replaces_target`.
    Replace,
}

/// An entry a fix writes. `None` fields are left out: in a grant they
/// inherit the request's values, in a manifest they are empty.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SuggestedEntry {
    /// The canonical target.
    pub target: String,
    /// Methods (request entries).
    pub methods: Option<Vec<String>>,
    /// Header names.
    pub headers: Option<Vec<String>>,
    /// Subprotocols (websocket entries).
    pub subprotocols: Option<Vec<String>>,
    /// Networks (canonical CIDR).
    pub networks: Option<Vec<String>>,
    /// `broad = true` (grant entries).
    pub broad: bool,
    /// Credential bindings, name → SecretRef (grant entries; `None` when
    /// none).
    pub credentials: Option<BTreeMap<String, String>>,
    /// Credential declarations (manifest entries; `None` when none): an
    /// entry that is replaced keeps its own.
    pub declares: Option<Vec<SuggestedDeclaration>>,
    /// The reason (kept when a manifest entry is replaced).
    pub reason: Option<String>,
}

/// A credential a suggested manifest entry declares (docs/spec.md §9.1).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SuggestedDeclaration {
    /// The credential's name.
    pub name: String,
    /// The header it goes in, for a header credential.
    pub header: Option<String>,
    /// Whether it goes in websocket text messages instead.
    pub message: bool,
    /// Its format, when not plain `{secret}`.
    pub format: Option<String>,
    /// The plugin's reason.
    pub reason: Option<String>,
}

/// One edit of a fix.
#[derive(Clone, Debug, Serialize)]
pub struct FixStep {
    /// Which file.
    pub file: FixFile,
    /// Add or replace.
    pub action: FixAction,
    /// Capability of the entry.
    pub capability: Capability,
    /// For `replace`: the target of the entry being replaced.
    pub replaces_target: Option<String>,
    /// For `replace`: where that entry is written.
    pub replaces: Option<Location>,
    /// For a grant entry: where the request it approves is declared.
    pub approves: Option<Location>,
    /// The entry to write.
    pub entry: SuggestedEntry,
    /// The entry as TOML, ready to paste.
    pub snippet: String,
}

/// What would allow the request.
#[derive(Clone, Debug, Serialize)]
pub struct Fix {
    /// What kind of change.
    pub kind: FixKind,
    /// One sentence.
    pub summary: String,
    /// The edits, in order (manifest before grant).
    pub steps: Vec<FixStep>,
}

/// The decision and the reasoning behind it.
#[derive(Clone, Debug, Serialize)]
pub struct Explanation {
    /// Exactly what [`Authorizer::authorize`] returns for the same input.
    pub decision: Decision,
    /// The request.
    pub request: RequestFacts,
    /// On allow: the rule that allowed it.
    pub matched: Option<Matched>,
    /// On deny: the nearest misses, best first (at most [`MAX_MISSES`]).
    pub misses: Vec<Miss>,
    /// Related entries beyond the ones listed.
    pub more_misses: usize,
    /// What would allow it.
    pub fix: Fix,
}

mod compare;
mod fix;
mod locate;

use compare::*;
use fix::*;
use locate::*;

// ---------------------------------------------------------------------------
// The explainer
// ---------------------------------------------------------------------------

/// An indexed policy with its sources, ready to explain requests.
pub struct Explainer<'a> {
    policy: &'a CompiledPolicy,
    sources: Sources<'a>,
    authz: Authorizer,
    cands: Vec<Cand>,
    lines: Lines,
}

impl<'a> Explainer<'a> {
    /// Indexes a policy. `sources` may be empty (an IR file): locations are
    /// then unknown and fixes are verified against the IR's own contents.
    pub fn new(policy: &'a CompiledPolicy, sources: Sources<'a>) -> Explainer<'a> {
        Explainer {
            policy,
            sources,
            authz: Authorizer::new(policy),
            cands: candidates(policy),
            lines: Lines::new(&sources),
        }
    }

    /// The authorizer whose decisions the explanations carry.
    pub fn authorizer(&self) -> &Authorizer {
        &self.authz
    }

    /// Explains one request (`answers` as for [`Authorizer::authorize`]).
    pub fn explain(&self, req: &Request<'_>, answers: Option<&[IpAddr]>) -> Explanation {
        let decision = self.authz.authorize(req, answers);
        let facts = Facts::new(req, answers);
        let request = RequestFacts {
            capability: req.capability,
            url: decision.url().into_owned(),
            method: match req.capability {
                Capability::Request => Some(req.method.unwrap_or("GET").to_string()),
                Capability::Websocket => None,
            },
            headers: req.headers.iter().map(|(n, _)| n.clone()).collect(),
            subprotocols: req.subprotocols.to_vec(),
            addresses: facts
                .as_ref()
                .map(|f| f.addresses.clone())
                .unwrap_or_default(),
        };
        let mut out = Explanation {
            decision,
            request,
            matched: None,
            misses: Vec::new(),
            more_misses: 0,
            fix: Fix {
                kind: FixKind::None,
                summary: String::new(),
                steps: Vec::new(),
            },
        };
        if out.decision.is_allowed() {
            out.matched = self.matched(out.decision.rule());
            out.fix.summary = "nothing to change: the request is allowed".into();
            return out;
        }
        if out.decision.deny_code() == Some(DenyCode::CredentialNotGranted) {
            if let Some(fix) = self.credential_fix(&out.decision, req, answers) {
                out.fix = fix;
                return out;
            }
        }
        if let Some(why) = self.blocker(&out.decision, req, facts.as_ref(), answers) {
            out.fix = Fix {
                kind: FixKind::Impossible,
                summary: why,
                steps: Vec::new(),
            };
            return out;
        }
        let Some(f) = facts else {
            out.fix = Fix {
                kind: FixKind::Impossible,
                summary: "no line can allow this: the URL cannot be read".into(),
                steps: Vec::new(),
            };
            return out;
        };
        let ranked = self.rank(&f);
        out.more_misses = ranked.len().saturating_sub(MAX_MISSES);
        out.misses = ranked
            .iter()
            .take(MAX_MISSES)
            .map(|(i, _, d)| self.miss(&self.cands[*i], d.clone()))
            .collect();
        out.fix = self.fix(&f, &ranked, answers);
        out
    }

    fn matched(&self, rule: Option<&str>) -> Option<Matched> {
        let rule = rule?;
        let e = self
            .policy
            .entries()
            .iter()
            .find(|e| e.id == rule && e.status == Status::Granted)?;
        let (own, req) = (&e.permission, &e.requested);
        Some(Matched {
            rule: e.id.clone(),
            target: own.target.to_string(),
            reason: e.reason.clone(),
            narrows: e.narrows().then(|| req.target.to_string()),
            narrowed: [
                ("target", own.target != req.target),
                ("methods", own.methods != req.methods),
                ("headers", own.headers != req.headers),
                ("subprotocols", own.subprotocols != req.subprotocols),
                ("networks", own.networks != req.networks),
            ]
            .iter()
            .filter(|(_, differs)| *differs)
            .map(|(name, _)| name.to_string())
            .collect(),
            methods: own.methods.as_ref().map(|m| m.to_strings()),
            granted_at: self.lines.grant(e.capability(), &own.target),
            requested_at: self.lines.manifest(e.capability(), &req.target),
        })
    }

    fn miss(&self, c: &Cand, differences: Vec<Difference>) -> Miss {
        let (at, requested_at) = match c.status {
            MissStatus::Granted => (
                self.lines.grant(c.capability, &c.target),
                c.requested
                    .as_ref()
                    .and_then(|r| self.lines.manifest(c.capability, &r.target)),
            ),
            MissStatus::Ignored => (self.lines.grant(c.capability, &c.target), None),
            MissStatus::NotGranted | MissStatus::Requested => {
                (self.lines.manifest(c.capability, &c.target), None)
            }
        };
        Miss {
            rule: c.id.clone(),
            capability: c.capability,
            target: c.target.to_string(),
            status: c.status,
            differences,
            at,
            requested_at,
        }
    }

    /// Every related entry, nearest first: (candidate index, score, diffs).
    fn rank(&self, f: &Facts<'_>) -> Vec<(usize, u32, Vec<Difference>)> {
        let mut v: Vec<(usize, u32, Vec<Difference>)> = self
            .cands
            .iter()
            .enumerate()
            .filter_map(|(i, c)| {
                let (rel, d) = compare(c, f);
                if rel == HostRelation::Unrelated {
                    return None;
                }
                debug_assert!(
                    !(c.status == MissStatus::Granted && d.is_empty()),
                    "a granted entry fits a denied request: {}",
                    c.id
                );
                Some((i, score(rel, &d), d))
            })
            .collect();
        v.sort_by(|a, b| {
            let (ca, cb) = (&self.cands[a.0], &self.cands[b.0]);
            a.1.cmp(&b.1)
                .then(ca.status.cmp(&cb.status))
                .then_with(|| ca.target.specificity_cmp(&cb.target))
                .then_with(|| ca.capability.cmp(&cb.capability))
        });
        v
    }

    /// Why no manifest or grant line can allow the request, if that is so.
    /// The sentence starts with "no line can allow this" and says what to do
    /// instead, where there is something.
    fn blocker(
        &self,
        d: &Decision,
        req: &Request<'_>,
        f: Option<&Facts<'_>>,
        answers: Option<&[IpAddr]>,
    ) -> Option<String> {
        let code = d.deny_code()?;
        let no = |why: String| Some(format!("no line can allow this: {why}"));
        match code {
            DenyCode::InvalidUrl => {
                return no("the URL is not a valid http, https, ws or wss URL".into())
            }
            DenyCode::WrongCapability => {
                let other = req.capability.other();
                let scheme = url::Url::parse(req.url)
                    .ok()
                    .and_then(|u| Scheme::parse(u.scheme()));
                return match scheme {
                    Some(s) if s.capability() == other => {
                        let alt = self.authz.authorize(
                            &Request {
                                capability: other,
                                method: None,
                                subprotocols: &[],
                                ..req.clone()
                            },
                            answers,
                        );
                        no(format!(
                            "a {s} URL is never allowed through {}; the plugin must use {} ({}; run explain with --capability {other})",
                            req.capability.table(),
                            other.table(),
                            if alt.is_allowed() {
                                "there this URL is allowed".to_string()
                            } else {
                                format!("there it is denied too: {}", alt.code)
                            },
                        ))
                    }
                    _ => no(format!(
                        "{} is one-shot, and websocket or streaming requests (upgrade headers, subprotocols, `Accept: text/event-stream`) belong to {}",
                        req.capability.table(),
                        other.table()
                    )),
                };
            }
            DenyCode::CredentialsInUrl => {
                return no("plugins cannot send credentials; send the URL without `user:pass@`".into())
            }
            DenyCode::FragmentNotAllowed => {
                return no("a websocket URL cannot carry a `#fragment`; drop it".into())
            }
            DenyCode::AmbiguousPath => {
                let readings = url::Url::parse(req.url)
                    .ok()
                    .and_then(|u| path::readings(u.path()).ok());
                // The target the path is ambiguous for, and the simplest
                // reading that leaves it.
                let outside = f.zip(readings.as_ref()).and_then(|(f, r)| {
                    self.cands
                        .iter()
                        .filter(|c| {
                            c.capability == f.req.capability
                                && c.target.scheme == f.scheme
                                && c.target.host.matches(&f.host)
                                && c.target.port.matches(f.port)
                                && r.ambiguous_for(&c.target.path)
                        })
                        .find_map(|c| Some((&c.target.path, r.outside(&c.target.path)?)))
                });
                return no(match (&readings, outside) {
                    (Some(r), Some((prefix, (reading, how)))) => format!(
                        "the path is inside {} as written, but under the reading that {}, a server reads it as {}; send the plain, normalized path",
                        tick(prefix),
                        how.describe(r.lookalike()),
                        tick(reading)
                    ),
                    (Some(r), None) => format!(
                        "a server may read the path as {}, and not every reading is inside the target; send the plain, normalized path",
                        r.all().iter().map(tick).collect::<Vec<_>>().join(" or ")
                    ),
                    (None, _) => "the path hides a NUL byte or bytes that are not UTF-8, which no server reads safely".into(),
                });
            }
            DenyCode::ResolutionFailed => {
                return no("the name did not resolve; that is DNS, not policy".into())
            }
            DenyCode::CredentialNotGranted => {
                // Handled by `credential_fix` before blockers are looked at.
                return Some("the matching rule does not bind a credential the plugin asked for: the manifest must declare it on that target (`credentials = [{ name = \"…\", header = \"…\" }]`) and the grant bind it (`credentials = { name = \"secret/ref\" }`)".into());
            }
            DenyCode::ForbiddenAddress => {
                return no("never-class addresses (unspecified, multicast, broadcast, cloud metadata endpoints) are unreachable by design, and declaring one is an error".into())
            }
            // Decided below, from the targets, headers, method and addresses.
            DenyCode::ForbiddenHeader
            | DenyCode::NotRequested
            | DenyCode::NotGranted
            | DenyCode::MethodNotAllowed
            | DenyCode::NonPublicAddress => {}
        }
        // Checks that do not depend on any target.
        if code == DenyCode::ForbiddenHeader {
            let all: Vec<String> = req
                .headers
                .iter()
                .map(|(n, _)| n.to_ascii_lowercase())
                .collect();
            if let Err(v) = headers::check_headers(req.capability, req.headers, &all) {
                return no(format!("{}, whatever a target declares", v.message));
            }
            if let Some(p) = req.subprotocols.iter().find(|p| !headers::is_token(p)) {
                return no(format!("subprotocol {} is not a token", tick(p)));
            }
        }
        if let (Some(m), Capability::Request) = (req.method, req.capability) {
            if Method::parse(m).is_none() {
                return no(
                    if m.eq_ignore_ascii_case("CONNECT") || m.eq_ignore_ascii_case("TRACE") {
                        "CONNECT and TRACE are never allowed".to_string()
                    } else if Method::parse(&m.to_ascii_uppercase()).is_some() {
                        format!(
                            "methods are case-sensitive; send `{}`",
                            m.to_ascii_uppercase()
                        )
                    } else {
                        format!(
                            "{} is not a method a target can allow (GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS)",
                            tick(m)
                        )
                    },
                );
            }
        }
        let f = f?;
        let unresolved = matches!(answers, Some([]))
            && matches!(&f.host, UrlHost::Domain(d) if !crate::target::is_localhost_name(d));
        if unresolved {
            return no(
                "the name did not resolve, so even a matching line would deny it (resolution_failed); that is DNS, not policy"
                    .into(),
            );
        }
        if let Some(a) = f
            .addresses
            .iter()
            .find(|a| address::classify(**a).class == AddressClass::Never)
        {
            let cl = address::classify(*a);
            return no(format!(
                "address {a} is {} and never reachable; declaring it is an error",
                address::with_article(cl.name)
            ));
        }
        if let Some(a) = f
            .addresses
            .iter()
            .find(|a| address::embeds_v4_only_in_networks(**a))
        {
            let cl = address::classify(*a);
            return no(format!(
                "address {a} is {}: `networks` read that form as the IPv4 block it embeds (docs/spec.md §2.6), so no narrow network covers the address itself",
                address::with_article(cl.name)
            ));
        }
        None
    }

    /// For `credential_not_granted`: the grant line binding what the rule
    /// declares but does not bind (docs/spec.md §9.2), with a SecretRef to
    /// replace (`<plugin>/<name>`: the real one names a secret in the host's
    /// store, which only the user knows), applied and verified like every
    /// fix. `None` when a credential asked for is not declared on the rule
    /// (a manifest change; the blocker's sentence says so) or the rule has
    /// no grant entry to edit.
    fn credential_fix(
        &self,
        d: &Decision,
        req: &Request<'_>,
        answers: Option<&[IpAddr]>,
    ) -> Option<Fix> {
        let rule = d.rule()?;
        let e = self
            .policy
            .entries()
            .iter()
            .find(|e| e.id == rule && e.status == Status::Granted)?;
        let base = Base::new(self.policy, &self.sources)?;
        let cap = e.capability();
        let own = &e.permission.target;
        let mut shape = Shape::from_grant(base.grant_entry(cap, own)?);
        let mut sentences = Vec::new();
        for name in req.credentials {
            let c = e.credentials.iter().find(|c| &c.credential.name == name)?;
            if c.is_granted() {
                continue;
            }
            let r = SecretRef::parse(&format!("{}/{}", self.policy.plugin.name, name)).ok()?;
            let bound = crate::credential::EntryCredential {
                credential: c.credential.clone(),
                secret_ref: Some(r.clone()),
            };
            let target = own.to_string();
            sentences.push(
                CredentialUse::from_entry(&bound, &target)
                    .render(&|s| format!("`{}`", redact::escape_terminal(s))),
            );
            shape.credentials.insert(name.clone(), r);
            shape.stand_ins.insert(name.clone());
        }
        if sentences.is_empty() {
            return None;
        }
        let steps = vec![Step {
            file: FixFile::Grant,
            replaces: Some(own.clone()),
            approves: Some(e.requested.target.clone()),
            shape,
        }];
        if !base.verify(&steps, req, answers) {
            return None;
        }
        Some(Fix {
            kind: FixKind::Grant,
            summary: format!(
                "bind the credential in the grant (it then {}); replace the SecretRef with the secret's name in the host's store",
                sentences.join("; and ")
            ),
            steps: steps.iter().map(|s| self.render_step(s)).collect(),
        })
    }

    fn fix(
        &self,
        f: &Facts<'_>,
        ranked: &[(usize, u32, Vec<Difference>)],
        answers: Option<&[IpAddr]>,
    ) -> Fix {
        let Some(base) = Base::new(self.policy, &self.sources) else {
            return Fix {
                kind: FixKind::Unknown,
                summary: "the policy could not be rebuilt to try a fix".into(),
                steps: Vec::new(),
            };
        };
        let near = &ranked[..ranked.len().min(FIX_CANDIDATES)];
        for p in self
            .proposals(f, near, &base)
            .into_iter()
            .take(MAX_VERIFIED)
        {
            if base.verify(&p.steps, f.req, answers) {
                let stand_ins: BTreeSet<&String> =
                    p.steps.iter().flat_map(|s| &s.shape.stand_ins).collect();
                let summary = if stand_ins.is_empty() {
                    p.summary
                } else {
                    let names: Vec<String> = stand_ins.iter().map(tick).collect();
                    format!(
                        "{}; the grant entry binds credential {} with a stand-in SecretRef: replace it with the secret's name in the host's store",
                        p.summary,
                        names.join(", ")
                    )
                };
                return Fix {
                    kind: p.kind,
                    summary,
                    steps: p.steps.iter().map(|s| self.render_step(s)).collect(),
                };
            }
        }
        if let Some(name) = f.req.credentials.iter().find(|n| {
            !base
                .requested
                .iter()
                .any(|r| r.credentials.iter().any(|c| &c.name == *n))
        }) {
            return Fix {
                kind: FixKind::Unknown,
                summary: format!(
                    "the plugin asks for credential {}, which no manifest entry declares: the plugin author must declare it (its header or message placement) on a target covering this URL, and the grant bind it",
                    tick(name)
                ),
                steps: Vec::new(),
            };
        }
        if derived_prefix(&f.readings).is_none() {
            return Fix {
                kind: FixKind::Impossible,
                summary: "no line can allow this: the path reads differently under some server readings, so no target can name it safely; send the plain, normalized path".into(),
                steps: Vec::new(),
            };
        }
        Fix {
            kind: FixKind::Unknown,
            summary: "no single manifest or grant change was found that allows this request".into(),
            steps: Vec::new(),
        }
    }

    fn render_step(&self, s: &Step) -> FixStep {
        let entry = s.shape.suggested(s.file);
        let replaces = s.replaces.as_ref().and_then(|t| match s.file {
            FixFile::Manifest => self.lines.manifest(s.shape.cap, t),
            FixFile::Grant => self.lines.grant(s.shape.cap, t),
        });
        FixStep {
            file: s.file,
            action: if s.replaces.is_some() {
                FixAction::Replace
            } else {
                FixAction::Add
            },
            capability: s.shape.cap,
            replaces_target: s.replaces.as_ref().map(|t| t.to_string()),
            replaces,
            approves: s
                .approves
                .as_ref()
                .and_then(|t| self.lines.manifest(s.shape.cap, t)),
            snippet: snippet(s.shape.cap, &entry),
            entry,
        }
    }

    fn at_manifest(&self, cap: Capability, t: &Target) -> String {
        match self.lines.manifest(cap, t) {
            Some(l) => format!(" ({l})"),
            None => String::new(),
        }
    }

    fn at_grant(&self, cap: Capability, t: &Target) -> String {
        match self.lines.grant(cap, t) {
            Some(l) => format!(" at {l}"),
            None => String::new(),
        }
    }

    /// The grant step that approves `shape` (a manifest entry as it will
    /// be, possibly unchanged): widen the grant entry with its target or one
    /// inside it that reaches the URL, else add an entry (a narrow one when
    /// the request is already granted only through narrower entries).
    /// Empty when the existing grant already approves it.
    fn grant_steps_for(&self, shape: &Shape, f: &Facts<'_>, base: &Base) -> Vec<Step> {
        let parent = shape.permission();
        let cap = shape.cap;
        let reaches = |t: &Target| {
            t.scheme == f.scheme
                && t.host.matches(&f.host)
                && t.port.matches(f.port)
                && f.readings.all_inside(&t.path)
        };
        let existing = base.grant_entry(cap, &shape.target).or_else(|| {
            base.grant
                .iter()
                .filter(|g| {
                    g.capability == cap && shape.target.contains(&g.target) && reaches(&g.target)
                })
                .min_by(|a, b| a.target.specificity_cmp(&b.target))
        });
        if let Some(g) = existing {
            let mut s = Shape::from_grant(g);
            widen(&mut s, f, Some(&parent));
            s.broad |= s.effective(&parent).flags().broad;
            s.bind_stand_ins(&base.name, f.req.credentials, &shape.declared);
            if s == Shape::from_grant(g) {
                return Vec::new();
            }
            return vec![Step {
                file: FixFile::Grant,
                replaces: Some(g.target.clone()),
                shape: s,
                approves: Some(shape.target.clone()),
            }];
        }
        let narrowed_elsewhere = base.grant.iter().any(|g| {
            g.capability == cap && shape.target.contains(&g.target) && g.target != shape.target
        });
        // Least privilege: when the grant already narrows this request
        // elsewhere, or approving it as declared would be broad, propose the
        // URL's own host and directory first (approving the whole request
        // stays available as the fallback proposal).
        let target = if narrowed_elsewhere || parent.flags().broad {
            narrowed_target(&shape.target, f).unwrap_or_else(|| shape.target.clone())
        } else {
            shape.target.clone()
        };
        let mut s = Shape::approving(cap, target);
        s.broad = s.effective(&parent).flags().broad;
        s.bind_stand_ins(&base.name, f.req.credentials, &shape.declared);
        vec![Step {
            file: FixFile::Grant,
            replaces: None,
            shape: s,
            approves: Some(shape.target.clone()),
        }]
    }

    /// The request behind a candidate: itself for requests, the request it
    /// narrows for granted entries; none for ignored grant entries.
    fn requested_of(c: &Cand) -> Option<Permission> {
        match c.status {
            MissStatus::NotGranted | MissStatus::Requested => c.permission(),
            MissStatus::Granted => c.requested.clone(),
            MissStatus::Ignored => None,
        }
    }

    /// Compares a request (as a permission) with the URL.
    fn compare_request(r: &Permission, f: &Facts<'_>) -> Vec<Difference> {
        let c = Cand {
            status: MissStatus::Granted,
            capability: r.capability,
            target: r.target.clone(),
            id: String::new(),
            methods: r.methods.clone(),
            headers: Some(r.headers.clone()),
            subprotocols: Some(r.subprotocols.clone()),
            networks: Some(r.networks.clone()),
            requested: None,
            reason: None,
            ignored: None,
        };
        compare(&c, f).1
    }

    fn summarize_grant_step(&self, r: &Permission, step: &Step, f: &Facts<'_>) -> String {
        let cap = r.capability;
        let requested = format!(
            "the manifest requests {}{}",
            tick(&r.target),
            self.at_manifest(cap, &r.target)
        );
        match &step.replaces {
            Some(t) => {
                let ignored = self
                    .cands
                    .iter()
                    .find(|x| x.status == MissStatus::Ignored && x.capability == cap && x.target == *t)
                    .and_then(|x| x.ignored.as_ref());
                match ignored {
                    Some((_, m)) => format!(
                        "{requested}; the grant entry for {}{} is ignored ({}): change it",
                        tick(t),
                        self.at_grant(cap, t),
                        redact::escape_terminal(m)
                    ),
                    None => {
                        let what: Vec<&str> = self
                            .cands
                            .iter()
                            .find(|x| x.status == MissStatus::Granted && x.capability == cap && x.target == *t)
                            .map(|x| compare(x, f).1)
                            .unwrap_or_default()
                            .iter()
                            .map(|x| part_name(x.part))
                            .collect();
                        format!(
                            "{requested}; the grant entry for {}{} narrows it ({}): widen it within the request",
                            tick(t),
                            self.at_grant(cap, t),
                            what.join(", ")
                        )
                    }
                }
            }
            None if step.shape.target != r.target && r.flags().broad => format!(
                "{requested}, which is broad and not granted; grant just this destination (least privilege), or approve the whole request with `broad = true` if that is what you mean"
            ),
            None if step.shape.target != r.target => format!(
                "{requested}, but only narrower grant entries approve it; add a grant entry for this destination"
            ),
            None => format!("{requested}, but the grant does not approve it; add it to the grant"),
        }
    }

    /// Candidate fixes, most preferred first.
    fn proposals(
        &self,
        f: &Facts<'_>,
        ranked: &[(usize, u32, Vec<Difference>)],
        base: &Base,
    ) -> Vec<Proposal> {
        let cap = f.req.capability;
        let mut out = Vec::new();
        let fits = |d: &[Difference]| d.iter().all(|x| x.part == Part::Status);
        let outside = |d: &[Difference]| {
            d.iter().any(|x| {
                matches!(
                    x.part,
                    Part::Capability | Part::Scheme | Part::Host | Part::Port | Part::Path
                )
            })
        };
        let mut seen = std::collections::HashSet::new();
        // 1. The manifest already requests something that allows it: a
        // grant change.
        for (i, _, _) in ranked {
            let c = &self.cands[*i];
            if c.capability != cap {
                continue;
            }
            let Some(r) = Self::requested_of(c) else {
                continue;
            };
            if !fits(&Self::compare_request(&r, f)) || !seen.insert(r.target.to_string()) {
                continue;
            }
            let mut shape = Shape::from_permission(&r, c.reason.clone());
            shape.declared = base
                .requested_entry(cap, &r.target)
                .map(|x| x.credentials.clone())
                .unwrap_or_default();
            let steps = self.grant_steps_for(&shape, f, base);
            if let Some(first) = steps.first() {
                out.push(Proposal {
                    kind: FixKind::Grant,
                    summary: self.summarize_grant_step(&r, first, f),
                    steps,
                });
            }
            // Fallback: approve the request as declared.
            let mut s = Shape::approving(cap, r.target.clone());
            s.broad = s.effective(&r).flags().broad;
            s.bind_stand_ins(&base.name, f.req.credentials, &shape.declared);
            let replaces = base.grant_entry(cap, &r.target).map(|g| g.target.clone());
            let step = Step {
                file: FixFile::Grant,
                replaces,
                shape: s,
                approves: Some(r.target.clone()),
            };
            out.push(Proposal {
                kind: FixKind::Grant,
                summary: self.summarize_grant_step(&r, &step, f),
                steps: vec![step],
            });
        }
        // 2a. An ignored grant entry names it, but the manifest does not
        // request it.
        for (i, _, d) in ranked {
            let c = &self.cands[*i];
            if c.capability != cap
                || !matches!(c.ignored, Some((IgnoredCode::NotRequested, _)))
                || outside(d)
            {
                continue;
            }
            let mut m = Shape {
                cap,
                target: c.target.clone(),
                methods: match cap {
                    Capability::Request => Some(c.methods.clone().unwrap_or_else(|| {
                        Methods::Set(f.method.and_then(Method::parse).into_iter().collect())
                    })),
                    Capability::Websocket => None,
                },
                headers: Some(c.headers.clone().unwrap_or_default()),
                subprotocols: Some(c.subprotocols.clone().unwrap_or_default()),
                networks: Some(c.networks.clone().unwrap_or_default()),
                broad: false,
                reason: None,
                credentials: BTreeMap::new(),
                stand_ins: BTreeSet::new(),
                declared: declarations_for(&base.requested, cap, f.req.credentials),
            };
            widen(&mut m, f, None);
            let mut steps = vec![Step {
                file: FixFile::Manifest,
                replaces: None,
                shape: m.clone(),
                approves: None,
            }];
            steps.extend(self.grant_steps_for(&m, f, base));
            let then = then_grant(&steps);
            out.push(Proposal {
                kind: FixKind::Manifest,
                summary: format!(
                    "the grant entry for {}{} is ignored because the manifest does not request it; the plugin author must request it{then}",
                    tick(&c.target),
                    self.at_grant(cap, &c.target)
                ),
                steps,
            });
        }
        // 2b. A manifest entry covers the URL but lacks a method, header,
        // subprotocol or network: the plugin author widens it.
        for (i, _, _) in ranked {
            let c = &self.cands[*i];
            if c.capability != cap {
                continue;
            }
            let Some(r) = Self::requested_of(c) else {
                continue;
            };
            if !seen.insert(format!("manifest {}", r.target)) {
                continue;
            }
            let rd = Self::compare_request(&r, f);
            if outside(&rd) {
                continue;
            }
            // Networks on a wildcard or any-host target would reach that
            // network under every name it matches: name the host instead (2c).
            if rd.iter().any(|x| x.part == Part::Address)
                && !matches!(r.target.host, HostPattern::Domain(_))
            {
                continue;
            }
            let own = base.requested_entry(cap, &r.target);
            let mut m = Shape::from_permission(&r, own.and_then(|x| x.reason.clone()));
            // The replaced entry keeps its declarations: a fix never drops one.
            m.declared = own.map(|x| x.credentials.clone()).unwrap_or_default();
            widen(&mut m, f, None);
            let what: Vec<&str> = rd
                .iter()
                .filter(|x| x.part != Part::Status)
                .map(|x| part_name(x.part))
                .collect();
            let mut steps = vec![Step {
                file: FixFile::Manifest,
                replaces: Some(r.target.clone()),
                shape: m.clone(),
                approves: None,
            }];
            steps.extend(self.grant_steps_for(&m, f, base));
            let then = then_grant(&steps);
            out.push(Proposal {
                kind: FixKind::Manifest,
                summary: format!(
                    "the manifest's {}{} covers this URL but not its {}; the plugin author must widen it{then}{}",
                    tick(&r.target),
                    self.at_manifest(cap, &r.target),
                    what.join(", "),
                    if rd.iter().any(|x| x.part == Part::Address) && !is_loopback_host(&f.host) {
                        " (only if the name really resolves there: a public name answering with a non-public address is also what DNS rebinding looks like)"
                    } else {
                        ""
                    }
                ),
                steps,
            });
        }
        // 2c. Nothing requested covers it: a new manifest entry.
        if let Some(t) = derived_target(f) {
            let mut m = Shape {
                cap,
                target: t,
                methods: match cap {
                    Capability::Request => Some(Methods::Set(
                        f.method.and_then(Method::parse).into_iter().collect(),
                    )),
                    Capability::Websocket => None,
                },
                headers: Some(BTreeSet::new()),
                subprotocols: Some(BTreeSet::new()),
                networks: Some(BTreeSet::new()),
                broad: false,
                reason: None,
                credentials: BTreeMap::new(),
                stand_ins: BTreeSet::new(),
                declared: declarations_for(&base.requested, cap, f.req.credentials),
            };
            widen(&mut m, f, None);
            let clash = base.requested_entry(cap, &m.target).is_some();
            if !clash {
                let mut steps = vec![Step {
                    file: FixFile::Manifest,
                    replaces: None,
                    shape: m.clone(),
                    approves: None,
                }];
                steps.extend(self.grant_steps_for(&m, f, base));
                let then = then_grant(&steps);
                out.push(Proposal {
                    kind: FixKind::Manifest,
                    summary: format!(
                        "no {} target requested by the plugin covers this URL; the plugin author must request it{then}",
                        cap.table()
                    ),
                    steps,
                });
            }
        }
        out
    }
}

/// The declarations of `names` on other manifest entries of `cap` (first
/// found per name): how a new entry for a request that asks for credentials
/// declares them. Names declared nowhere are left out.
fn declarations_for(requested: &[Requested], cap: Capability, names: &[String]) -> Vec<Credential> {
    let mut out: Vec<Credential> = names
        .iter()
        .filter_map(|n| {
            requested
                .iter()
                .filter(|r| r.permission.capability == cap)
                .flat_map(|r| &r.credentials)
                .find(|c| &c.name == n)
                .cloned()
        })
        .collect();
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out.dedup_by(|a, b| a.name == b.name);
    out
}

/// How a manifest fix ends: with a grant change, or with none needed.
fn then_grant(steps: &[Step]) -> &'static str {
    if steps.iter().any(|s| s.file == FixFile::Grant) {
        ", then the grant must approve it"
    } else {
        "; the grant approves it as it stands (its unset fields follow the request)"
    }
}

fn part_name(p: Part) -> &'static str {
    match p {
        Part::Capability => "capability",
        Part::Scheme => "scheme",
        Part::Host => "host",
        Part::Port => "port",
        Part::Path => "path",
        Part::Method => "method",
        Part::Header => "headers",
        Part::Subprotocol => "subprotocols",
        Part::Address => "networks",
        Part::Status => "status",
    }
}

/// Explains one request against a policy (see [`Explainer`]).
pub fn explain(
    policy: &CompiledPolicy,
    sources: Sources<'_>,
    req: &Request<'_>,
    answers: Option<&[IpAddr]>,
) -> Explanation {
    Explainer::new(policy, sources).explain(req, answers)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn readings(p: &str) -> PathReadings {
        path::readings(p).unwrap()
    }

    #[test]
    fn derived_prefixes() {
        for (path, want) in [
            ("/", Some("/")),
            ("/users", Some("/users")),
            ("/api/v9/users/@me", Some("/api/v9/users/")),
            ("/api/v4/projects/group%2Fname", Some("/api/v4/projects/")),
            ("/v1/..%2Fadmin", None),
        ] {
            assert_eq!(derived_prefix(&readings(path)).as_deref(), want, "{path}");
        }
    }

    #[test]
    fn snippets_are_toml() {
        let e = SuggestedEntry {
            target: "https://a.example/x/".into(),
            methods: Some(vec!["GET".into(), "POST".into()]),
            headers: None,
            subprotocols: None,
            networks: Some(vec!["10.0.0.5/32".into()]),
            broad: true,
            reason: Some("say \"hi\"\\".into()),
            credentials: Some([("bot-token".to_string(), "a/b".to_string())].into()),
            declares: None,
        };
        let s = snippet(Capability::Request, &e);
        assert_eq!(
            s,
            "[[host_api.request]]\nurl = \"https://a.example/x/\"\nmethods = [\"GET\", \"POST\"]\nnetworks = [\"10.0.0.5/32\"]\nbroad = true\ncredentials = { bot-token = \"a/b\" }\nreason = 'say \"hi\"\\'\n"
        );
        let v: toml::Table = toml::from_str(&s).unwrap();
        assert!(v.contains_key("host_api"));
        // A manifest entry's declarations, in the manifest's own syntax.
        let m = SuggestedEntry {
            target: "wss://g.example/".into(),
            methods: None,
            headers: None,
            subprotocols: None,
            networks: None,
            broad: false,
            reason: None,
            credentials: None,
            declares: Some(vec![
                SuggestedDeclaration {
                    name: "bot-token".into(),
                    header: None,
                    message: true,
                    format: None,
                    reason: Some("IDENTIFY".into()),
                },
                SuggestedDeclaration {
                    name: "key".into(),
                    header: Some("x-key".into()),
                    message: false,
                    format: Some("Key {secret}".into()),
                    reason: None,
                },
            ]),
        };
        let s = snippet(Capability::Websocket, &m);
        assert_eq!(
            s,
            "[[host_api.websocket]]\nurl = \"wss://g.example/\"\ncredentials = [{ name = \"bot-token\", message = true, reason = \"IDENTIFY\" }, { name = \"key\", header = \"x-key\", format = \"Key {secret}\" }]\n"
        );
        let doc = format!("[plugin]\nname = \"p\"\nversion = \"1.0.0\"\n{s}");
        let parsed = crate::Manifest::parse("plugin.toml", &doc);
        let parsed = parsed.value.expect("the snippet is a valid manifest entry");
        assert_eq!(parsed.requested[0].credentials.len(), 2);
    }

    #[test]
    fn host_relations() {
        let d = |s: &str| UrlHost::Domain(s.into());
        let p = |s: &str| Target::parse(&format!("https://{s}/")).unwrap().host;
        assert_eq!(
            host_relation(&p("a.example.com"), &d("a.example.com")),
            HostRelation::Match
        );
        assert_eq!(
            host_relation(&p("*.example.com"), &d("example.com")),
            HostRelation::SameSite
        );
        assert_eq!(
            host_relation(&p("cdn.example.com"), &d("api.example.com")),
            HostRelation::SameSite
        );
        assert_eq!(
            host_relation(&p("localhost"), &UrlHost::Ip("127.0.0.1".parse().unwrap())),
            HostRelation::LoopbackAlias
        );
        assert_eq!(
            host_relation(&p("example.com"), &d("example.org")),
            HostRelation::Unrelated
        );
        assert_eq!(
            host_relation(&p("a.github.io"), &d("b.github.io")),
            HostRelation::Unrelated
        );
    }
}
