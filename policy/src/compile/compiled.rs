//! The typed, in-memory policy every consumer reads.
//!
//! [`crate::compile`] and [`crate::load_policy`] are the only ways to make a
//! [`CompiledPolicy`]: they build the canonical IR ([`Policy`], the wire form)
//! and its typed entries in one pass, from the same values, so the two always
//! agree. The authorizer, the review engines, the CLI and the runtime read the
//! typed entries; nothing parses IR strings again.

use crate::capability::Capability;
use crate::credential::{Credential, EntryCredential};
use crate::document::{GrantEntry, Requested};
use crate::ir::{IgnoredCode, Policy, Status};
use crate::permission::Permission;
use std::ops::Deref;

/// A compiled or loaded-and-revalidated policy: the IR and its typed entries.
///
/// Dereferences to the IR ([`Policy`]) for its wire fields (plugin, digests,
/// entries as written). Two compiled policies are equal when their IRs are:
/// the typed entries are a function of the IR.
#[derive(Clone, Debug)]
pub struct CompiledPolicy {
    ir: Policy,
    entries: Vec<PolicyEntry>,
    ignored: Vec<IgnoredGrant>,
}

/// One entry of the policy, typed: the IR entry of the same index, with its
/// permission (and, for a narrowing grant, the request it narrows) already
/// normalized.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PolicyEntry {
    /// Stable rule id: `<capability>:<target>`.
    pub id: String,
    /// `granted` or `not_granted`.
    pub status: Status,
    /// What the entry permits: the effective grant, or the request itself
    /// for a `not_granted` entry.
    pub permission: Permission,
    /// The request behind it: the request a granted entry narrows, else the
    /// entry's own permission.
    pub requested: Permission,
    /// The grant said `broad = true` (granted broad entries must).
    pub approved_broad: bool,
    /// The plugin's reason, if given.
    pub reason: Option<String>,
    /// The credentials the request declares, sorted by name, each with the
    /// SecretRef this entry's grant binds (none on a `not_granted` entry).
    pub credentials: Vec<EntryCredential>,
}

impl PolicyEntry {
    /// The declarations behind [`PolicyEntry::credentials`], as the
    /// manifest wrote them.
    pub fn declared_credentials(&self) -> impl Iterator<Item = &Credential> {
        self.credentials.iter().map(|c| &c.credential)
    }

    /// The capability.
    pub fn capability(&self) -> Capability {
        self.permission.capability
    }

    /// Whether this is a granted entry narrower than its request.
    pub fn narrows(&self) -> bool {
        self.status == Status::Granted && self.permission != self.requested
    }
}

/// A grant entry that was dropped (docs/spec.md §3), typed as it was written:
/// unset fields stay `None`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IgnoredGrant {
    /// The grant entry (without source location).
    pub grant: GrantEntry,
    /// Why it was dropped.
    pub code: IgnoredCode,
    /// The reason, as a sentence.
    pub message: String,
}

impl CompiledPolicy {
    /// Pairs an IR with the typed entries built alongside it (same order).
    pub(crate) fn new(ir: Policy, entries: Vec<PolicyEntry>, ignored: Vec<IgnoredGrant>) -> Self {
        debug_assert_eq!(ir.entries.len(), entries.len());
        debug_assert_eq!(ir.ignored.len(), ignored.len());
        debug_assert!(ir.entries.iter().zip(&entries).all(|(a, b)| a.id == b.id));
        CompiledPolicy {
            ir,
            entries,
            ignored,
        }
    }

    /// The IR (wire form).
    pub fn ir(&self) -> &Policy {
        &self.ir
    }

    /// The IR, moved out.
    pub fn into_ir(self) -> Policy {
        self.ir
    }

    /// The typed entries, in IR order (`ir().entries[i]` is `entries()[i]`).
    pub fn entries(&self) -> &[PolicyEntry] {
        &self.entries
    }

    /// The dropped grant entries, typed, in IR order.
    pub fn ignored_grants(&self) -> &[IgnoredGrant] {
        &self.ignored
    }
}

impl CompiledPolicy {
    /// The requested set and the grant this policy compiles from, rebuilt
    /// from the typed entries (for callers without the TOML, like `explain`
    /// on an IR file).
    #[cfg(feature = "review")]
    pub(crate) fn documents(&self) -> (Vec<Requested>, Vec<GrantEntry>) {
        documents_of(
            &self.entries,
            self.ignored.iter().map(|ig| ig.grant.clone()),
        )
    }
}

/// The requested set and grant that typed entries (and the dropped grant
/// lines) compile from: each request once, in entry order, with its reason;
/// each granted entry as a grant line with every field written; then the
/// dropped lines. The one place that inverts compilation — IR loading
/// ([`crate::compile`]'s `rebuild`) and `explain` both use it.
pub(crate) fn documents_of(
    entries: &[PolicyEntry],
    ignored: impl IntoIterator<Item = GrantEntry>,
) -> (Vec<Requested>, Vec<GrantEntry>) {
    let mut requested: Vec<Requested> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    let mut grant = Vec::new();
    for e in entries {
        if seen.insert((e.requested.capability, &e.requested.target)) {
            requested.push(Requested {
                permission: e.requested.clone(),
                reason: e.reason.clone(),
                credentials: e.declared_credentials().cloned().collect(),
                origin: None,
            });
        }
        if e.status == Status::Granted {
            let p = &e.permission;
            grant.push(GrantEntry {
                capability: p.capability,
                target: p.target.clone(),
                methods: p.methods.clone(),
                headers: Some(p.headers.clone()),
                subprotocols: Some(p.subprotocols.clone()),
                networks: Some(p.networks.clone()),
                broad: e.approved_broad,
                credentials: e
                    .credentials
                    .iter()
                    .filter_map(|c| Some((c.credential.name.clone(), c.secret_ref.clone()?)))
                    .collect(),
                origin: None,
            });
        }
    }
    grant.extend(ignored);
    (requested, grant)
}

impl Deref for CompiledPolicy {
    type Target = Policy;

    fn deref(&self) -> &Policy {
        &self.ir
    }
}

impl PartialEq for CompiledPolicy {
    fn eq(&self, other: &Self) -> bool {
        self.ir == other.ir
    }
}

impl Eq for CompiledPolicy {}
