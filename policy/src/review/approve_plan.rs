//! What `netgrant approve` would do, decided without I/O: which requested
//! targets to approve outright, which need a conscious yes (broad, loopback,
//! private), which lie outside `--only`, and what happens to every entry of an
//! existing grant (kept, `broad = true` removed, decided again, left as
//! written, removed).
//!
//! The CLI asks the questions, edits the TOML and re-checks the result; this
//! module only plans (docs/spec.md §3.3 for how a grant entry is judged).

use crate::capability::Capability;
use crate::compile::compile;
use crate::document::{Grant, Manifest, Requested};
use crate::ir::{IgnoredCode, Status};
use crate::permission::{Flags, Permission};
use crate::target::Target;
use std::collections::{HashMap, HashSet};
use std::fmt;

/// What a candidate decision is about.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Subject {
    /// A new grant entry for the request at this index of
    /// [`Manifest::requested`].
    New(usize),
    /// `broad = true` on the existing grant entry with the candidate's
    /// capability and target: it is broad (judged on the entry itself, its
    /// effective permission) but was never approved as such.
    MarkBroad,
}

/// Why a candidate needs a conscious yes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Risk {
    /// Broad, with the reason in words ([`Permission::broad_reason`]).
    Broad(String),
    /// Reaches loopback and private networks.
    LoopbackAndPrivate,
    /// Reaches services on this machine.
    Loopback,
    /// Reaches non-public addresses.
    Private,
}

impl fmt::Display for Risk {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Risk::Broad(why) => write!(f, "broad: {why}"),
            Risk::LoopbackAndPrivate => f.write_str("loopback and private networks"),
            Risk::Loopback => f.write_str("loopback: services on this machine"),
            Risk::Private => f.write_str("private: non-public addresses"),
        }
    }
}

/// One thing to approve: a new entry, or `broad = true` on an existing one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Candidate {
    /// What approving it means.
    pub subject: Subject,
    /// The capability.
    pub capability: Capability,
    /// The canonical target.
    pub target: String,
    /// The derived flags of what would be granted.
    pub flags: Flags,
    /// Why it is broad, when it is.
    pub broad_reason: Option<String>,
    /// The manifest's `reason` for the request behind it.
    pub reason: Option<String>,
}

impl Candidate {
    fn new(subject: Subject, p: &Permission, target: String, reason: Option<String>) -> Self {
        Candidate {
            subject,
            capability: p.capability,
            target,
            flags: p.flags(),
            broad_reason: p.broad_reason(),
            reason,
        }
    }

    /// `capability:target`, the IR id.
    pub fn id(&self) -> String {
        format!("{}:{}", self.capability, self.target)
    }

    /// What needs a conscious yes, if anything: broad first, then loopback
    /// and private.
    pub fn risk(&self) -> Option<Risk> {
        if self.flags.broad {
            Some(Risk::Broad(self.broad_reason.clone().unwrap_or_default()))
        } else if self.flags.loopback && self.flags.private {
            Some(Risk::LoopbackAndPrivate)
        } else if self.flags.loopback {
            Some(Risk::Loopback)
        } else if self.flags.private {
            Some(Risk::Private)
        } else {
            None
        }
    }
}

/// What happens to one entry of the existing grant.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Effective and approved as written: kept unchanged.
    Keep,
    /// Effective and not broad, but says `broad = true`: kept, `broad` removed.
    DropBroad,
    /// Broad without `broad = true`: decided again by its [`Candidate`]
    /// (`Subject::MarkBroad`) — yes adds `broad = true`, no removes it.
    Decide,
    /// Broad without `broad = true`, but its request is outside `--only`:
    /// left as written (it stays ignored until approved).
    LeaveUnapproved,
    /// No request contains it any more: removed.
    Remove,
}

/// One entry of the existing grant.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExistingEntry {
    /// The capability.
    pub capability: Capability,
    /// The canonical target as written in the grant.
    pub target: String,
    /// What happens to it.
    pub action: Action,
}

/// A requested target that is not approved because `--only` leaves it out.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unselected {
    /// The capability.
    pub capability: Capability,
    /// The canonical target.
    pub target: String,
}

/// The plan of one `approve` run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Plan {
    /// The decisions to make: new requests in the manifest's file order, then
    /// unapproved broad grant entries in the grant's file order. A candidate
    /// without a [`Candidate::risk`] is approved without a question.
    pub candidates: Vec<Candidate>,
    /// Requests outside `--only` (and not already covered), in file order.
    pub unselected: Vec<Unselected>,
    /// Every entry of the existing grant, in the grant model's order
    /// ([`Grant::entries`]).
    pub existing: Vec<ExistingEntry>,
    /// The manifest's requested digest, for `approved_digest`.
    pub requested_digest: String,
}

impl Plan {
    /// How many existing entries are kept (with or without `broad = true`
    /// removed).
    pub fn kept(&self) -> usize {
        self.existing
            .iter()
            .filter(|e| matches!(e.action, Action::Keep | Action::DropBroad))
            .count()
    }

    /// Whether some broad entry outside `--only` stays without `broad = true`.
    pub fn leaves_unapproved(&self) -> bool {
        self.existing
            .iter()
            .any(|e| e.action == Action::LeaveUnapproved)
    }
}

/// Why no plan could be made.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PlanError {
    /// The manifest and grant do not compile together (fatal diagnostics;
    /// compile them to report them).
    DoesNotCompile,
}

/// Plans an `approve` run: `manifest`, the grant to update if any, and the
/// `--only` patterns (empty: every request is selected).
///
/// Existing entries are classified by compiling once with `broad = true` on
/// every entry: then only "not requested" drops an entry, and every effective
/// entry shows the request it narrows. A request covered by a kept entry is
/// not asked about again; a request whose entry is broad but unapproved is
/// decided through that entry ([`Subject::MarkBroad`]).
pub fn plan(
    manifest: &Manifest,
    grant: Option<&Grant>,
    only: &[Target],
) -> Result<Plan, PlanError> {
    let selected =
        |r: &Requested| only.is_empty() || only.iter().any(|t| t.contains(&r.permission.target));

    // Per existing entry (capability, canonical target): its state, and for
    // broad unapproved ones the request and effective permission.
    enum State {
        Keep(usize),
        DropBroad(usize),
        NeedsBroad(usize, Permission),
        Stale,
    }
    let mut states: HashMap<(Capability, String), State> = HashMap::new();
    if let Some(g) = grant {
        let mut all_broad = g.clone();
        for e in &mut all_broad.entries {
            e.broad = true;
        }
        let policy = compile(manifest, Some(&all_broad))
            .policy
            .ok_or(PlanError::DoesNotCompile)?;
        let req_index: HashMap<(Capability, String), usize> = manifest
            .requested
            .iter()
            .enumerate()
            .map(|(i, r)| {
                (
                    (r.permission.capability, r.permission.target.to_string()),
                    i,
                )
            })
            .collect();
        for (e, typed) in policy
            .entries
            .iter()
            .zip(policy.entries())
            .filter(|(e, _)| e.status == Status::Granted)
        {
            let parent_target = e.narrows.as_ref().map_or(&e.target, |n| &n.target);
            let Some(&parent) = req_index.get(&(e.capability, parent_target.clone())) else {
                continue;
            };
            let written = g
                .entries
                .iter()
                .find(|x| x.capability == e.capability && x.target.to_string() == e.target)
                .is_some_and(|x| x.broad);
            let state = match (e.flags.broad, written) {
                (true, true) | (false, false) => State::Keep(parent),
                (true, false) => State::NeedsBroad(parent, typed.permission.clone()),
                (false, true) => State::DropBroad(parent),
            };
            states.insert((e.capability, e.target.clone()), state);
        }
        for ig in &policy.ignored {
            if ig.code == IgnoredCode::NotRequested {
                states.insert((ig.capability, ig.target.clone()), State::Stale);
            }
        }
    }

    // Requests already covered by a kept entry, and requests decided through
    // an existing unapproved broad entry instead.
    let mut settled: HashSet<usize> = HashSet::new();
    for s in states.values() {
        match s {
            State::Keep(parent) | State::DropBroad(parent) | State::NeedsBroad(parent, _) => {
                settled.insert(*parent);
            }
            State::Stale => {}
        }
    }

    let mut candidates = Vec::new();
    let mut unselected = Vec::new();
    // File order (the model groups requests by capability): prompts and new
    // entries follow the manifest as its author wrote it.
    let mut order: Vec<usize> = (0..manifest.requested.len()).collect();
    order.sort_by_key(|&i| manifest.requested[i].origin.as_ref().map(|o| o.table.start));
    for i in order {
        let r = &manifest.requested[i];
        let p = &r.permission;
        if settled.contains(&i) {
            continue;
        }
        if !selected(r) {
            unselected.push(Unselected {
                capability: p.capability,
                target: p.target.to_string(),
            });
            continue;
        }
        candidates.push(Candidate::new(
            Subject::New(i),
            p,
            p.target.to_string(),
            r.reason.clone(),
        ));
    }

    let mut existing = Vec::new();
    for e in grant.map_or(&[][..], |g| &g.entries) {
        let target = e.target.to_string();
        let action = match states.get(&(e.capability, target.clone())) {
            Some(State::Keep(_)) => Action::Keep,
            Some(State::DropBroad(_)) => Action::DropBroad,
            Some(State::NeedsBroad(parent, effective)) => {
                let r = &manifest.requested[*parent];
                if selected(r) {
                    // Judged on the entry itself, its effective permission
                    // (docs/spec.md §3.3).
                    candidates.push(Candidate::new(
                        Subject::MarkBroad,
                        effective,
                        target.clone(),
                        r.reason.clone(),
                    ));
                    Action::Decide
                } else {
                    Action::LeaveUnapproved
                }
            }
            Some(State::Stale) | None => Action::Remove,
        };
        existing.push(ExistingEntry {
            capability: e.capability,
            target,
            action,
        });
    }

    Ok(Plan {
        candidates,
        unselected,
        existing,
        requested_digest: crate::compile::requested_digest(&manifest.name, &manifest.requested),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const MANIFEST: &str = r#"[plugin]
name = "p"
version = "1.0.0"

[[host_api.request]]
url = "https://api.example.com/v1/"
methods = ["GET", "POST"]
reason = "the API"

[[host_api.request]]
url = "https://*/"
methods = ["GET"]
reason = "any page"

[[host_api.websocket]]
url = "ws://localhost:9000/"

[[host_api.request]]
url = "https://*.github.io/"
methods = ["GET"]
"#;

    fn manifest() -> Manifest {
        Manifest::parse("plugin.toml", MANIFEST).value.unwrap()
    }

    fn grant(text: &str) -> Grant {
        Grant::parse("grant.toml", text).value.unwrap()
    }

    fn targets(plan: &Plan) -> Vec<(String, Subject)> {
        plan.candidates
            .iter()
            .map(|c| (c.id(), c.subject.clone()))
            .collect()
    }

    #[test]
    fn without_a_grant_every_request_is_a_candidate_in_file_order() {
        let m = manifest();
        let plan = plan(&m, None, &[]).unwrap();
        let ids: Vec<String> = plan.candidates.iter().map(Candidate::id).collect();
        // File order, not the model's capability grouping.
        assert_eq!(
            ids,
            [
                "request:https://api.example.com/v1/",
                "request:https://*/",
                "websocket:ws://localhost:9000/",
                "request:https://*.github.io/",
            ]
        );
        let risks: Vec<Option<String>> = plan
            .candidates
            .iter()
            .map(|c| c.risk().map(|r| r.to_string()))
            .collect();
        assert_eq!(
            risks,
            [
                None,
                Some("broad: any host over https".into()),
                Some("loopback: services on this machine".into()),
                Some("broad: every name under public suffix github.io".into()),
            ]
        );
        assert_eq!(plan.candidates[1].reason.as_deref(), Some("any page"));
        assert!(plan.unselected.is_empty() && plan.existing.is_empty());
        assert_eq!(plan.kept(), 0);
        assert_eq!(
            plan.requested_digest,
            crate::compile::requested_digest(&m.name, &m.requested)
        );
    }

    #[test]
    fn only_selects_contained_requests() {
        let m = manifest();
        let only = [Target::parse("https://*.example.com").unwrap()];
        let plan = plan(&m, None, &only).unwrap();
        assert_eq!(
            targets(&plan),
            [(
                "request:https://api.example.com/v1/".into(),
                Subject::New(0)
            )]
        );
        let left: Vec<String> = plan.unselected.iter().map(|u| u.target.clone()).collect();
        assert_eq!(
            left,
            ["https://*/", "ws://localhost:9000/", "https://*.github.io/"]
        );
    }

    #[test]
    fn existing_entries_are_kept_narrowed_decided_or_removed() {
        let m = manifest();
        let g = grant(
            r#"plugin = "p"

# narrowed: GET only; covers its request
[[host_api.request]]
url = "https://api.example.com/v1/"
methods = ["GET"]

# broad and approved
[[host_api.request]]
url = "https://*/"
methods = ["GET"]
broad = true

# broad, never approved
[[host_api.request]]
url = "https://*.github.io/"
methods = ["GET"]

# not broad, but says so
[[host_api.websocket]]
url = "ws://localhost:9000/"
broad = true

# no longer requested
[[host_api.websocket]]
url = "wss://old.example.com/"
"#,
        );
        let plan = plan(&m, Some(&g), &[]).unwrap();
        let actions: Vec<(&str, &Action)> = plan
            .existing
            .iter()
            .map(|e| (e.target.as_str(), &e.action))
            .collect();
        assert_eq!(
            actions,
            [
                ("https://api.example.com/v1/", &Action::Keep),
                ("https://*/", &Action::Keep),
                ("https://*.github.io/", &Action::Decide),
                ("ws://localhost:9000/", &Action::DropBroad),
                ("wss://old.example.com/", &Action::Remove),
            ]
        );
        assert_eq!(plan.kept(), 3);
        // Only the unapproved broad entry is left to decide, as itself.
        assert_eq!(
            targets(&plan),
            [("request:https://*.github.io/".into(), Subject::MarkBroad)]
        );
        assert_eq!(
            plan.candidates[0].risk(),
            Some(Risk::Broad(
                "every name under public suffix github.io".into()
            ))
        );
        assert!(!plan.leaves_unapproved());

        // Outside --only, the unapproved broad entry is left as written.
        let only = [Target::parse("https://api.example.com").unwrap()];
        let narrowed = super::plan(&m, Some(&g), &only).unwrap();
        assert!(narrowed.candidates.is_empty(), "{:?}", narrowed.candidates);
        assert_eq!(narrowed.existing[2].action, Action::LeaveUnapproved);
        assert!(narrowed.leaves_unapproved());
    }

    #[test]
    fn an_unapproved_entry_is_judged_on_its_effective_permission() {
        // The request is broad; the entry narrows it to a non-broad host and
        // is kept without a question.
        let m = manifest();
        let g = grant(
            r#"plugin = "p"
[[host_api.request]]
url = "https://docs.github.io/"
methods = ["GET"]
"#,
        );
        let plan = plan(&m, Some(&g), &[]).unwrap();
        assert_eq!(plan.existing[0].action, Action::Keep);
        let ids: Vec<String> = plan.candidates.iter().map(Candidate::id).collect();
        assert!(!ids.contains(&"request:https://*.github.io/".to_string()));
        assert_eq!(ids.len(), 3, "{ids:?}");
    }
}
