//! Semantic diff of two policies: what a plugin update adds, removes, widens
//! or narrows, and which access newly becomes broad, loopback or private.
//!
//! What is compared is the **requested** set of each policy (what the plugin
//! asks for; that is what an update changes), never the text: two manifests
//! that compile to the same requested set diff as empty, however they are
//! ordered or spelled.
//!
//! Pairing (per capability; containment needs the same scheme):
//!
//! 1. An unchanged target pairs with itself. Same target, different details
//!    (methods, headers, subprotocols, networks): the whole permissions are
//!    compared — superset → [`Kind::Widened`], subset → [`Kind::Narrowed`],
//!    incomparable → [`Kind::Changed`], equivalent → nothing (or
//!    [`Kind::ReasonChanged`] when only the reason differs).
//! 2. Every other new target pairs with the remaining old targets of its
//!    scheme that it contains or that contain it. Each such pair has a wider
//!    and a narrower side; pairs are grouped by the wider entry. A new entry
//!    that contains old ones is one change (widened, or changed when some old
//!    partner has details the new one lacks) listing every old entry it
//!    covers; an old entry that contains new ones is one change (narrowed, or
//!    changed) listing every new entry it now is.
//! 3. Targets with no partner are [`Kind::Added`] / [`Kind::Removed`].
//!
//! Partners are found through a host index (exact host map, wildcard-suffix
//! walk, "under this suffix" map, any-host list, each split by port), never
//! by an all-pairs scan; [`Work`] counts the containment checks done.
//!
//! On top of its kind, a change whose new side has the `broad`, `loopback` or
//! `private` flag where its old side had not is classed
//! [`Class::NewlyBroad`] / [`Class::NewlyLoopback`] / [`Class::NewlyPrivate`]
//! as well, so "newly broad" never hides behind "widened" (and a narrowing
//! from `https://*/` to `https://127.0.0.1/` is still reported as newly
//! loopback: `*` never reaches a non-public address, the IP literal does).
//!
//! Credentials (docs/spec.md §9.2) ride on the change of the target that
//! declares them; a change in credentials alone (same permission) is a
//! change of kind [`Kind::CredentialsChanged`]. A declaration the other side
//! lacks (same name, placement and format) is [`Class::CredentialAdded`] /
//! [`Class::CredentialRemoved`]; a binding (SecretRef) the old side did not
//! have is [`Class::CredentialBound`] (one it loses is
//! [`Class::CredentialRemoved`]); a credential on both sides of a widened or
//! changed target is [`Class::CredentialWidened`]: the secret now goes to
//! more than before. All but the removal are increases. Bindings come from
//! each side's grant (an IR's own, or the grant it was compiled with), so a
//! manifest compiled without a grant binds nothing.
//!
//! The relation is symmetric: `diff(b, a)` has the same changes as
//! `diff(a, b)` with old and new swapped (added ↔ removed, widened ↔
//! narrowed, flags turned on ↔ turned off).
//!
//! ```
//! use netgrant_policy::{compile, diff::{diff, Class}, Manifest};
//!
//! let old = Manifest::parse("old.toml", r#"
//! [plugin]
//! name = "p"
//! version = "1.0.0"
//! [[host_api.request]]
//! url = "https://api.example.com/v1/"
//! methods = ["GET"]
//! "#).value.unwrap();
//! let new = Manifest::parse("new.toml", r#"
//! [plugin]
//! name = "p"
//! version = "1.1.0"
//! [[host_api.request]]
//! url = "https://*.com/"
//! methods = ["GET"]
//! "#).value.unwrap();
//! let a = compile(&old, None).policy.unwrap();
//! let b = compile(&new, None).policy.unwrap();
//! let d = diff(&a, &b).unwrap();
//! assert_eq!(d.changes.len(), 1);
//! assert_eq!(d.changes[0].classes, vec![Class::NewlyBroad, Class::Widened]);
//! assert!(diff(&a, &a).unwrap().changes.is_empty());
//! ```

use crate::capability::{Capability, Scheme};
use crate::compiled::CompiledPolicy;
use crate::credential::{CredentialPlacement, EntryCredential, SecretRef};
use crate::ir::Status;
use crate::permission::{Flags, Method, Methods, Permission};
use crate::target::{HostPattern, PortPattern, Target};
#[cfg(feature = "schema")]
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// The most containment checks one diff (or coverage check) may do before it
/// gives up with [`DiffError::TooComplex`]. Realistic manifests need a small
/// multiple of their size; only thousands of distinct, mutually nested
/// targets on one host and port can get near this.
pub const MAX_CONTAINMENT_CHECKS: u64 = 20_000_000;

/// One requested permission and the plugin's reason for it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Item {
    /// The requested permission.
    pub permission: Permission,
    /// The plugin's reason, if given.
    pub reason: Option<String>,
    /// The credentials the request declares, sorted by name, each bound when
    /// some granted entry of the request binds it.
    pub credentials: Vec<EntryCredential>,
}

impl Item {
    /// The derived flags.
    pub fn flags(&self) -> Flags {
        self.permission.flags()
    }

    /// The canonical target string.
    pub fn target(&self) -> String {
        self.permission.target.to_string()
    }
}

/// What happened to the paired entries.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// A new target with no old partner.
    Added,
    /// An old target with no new partner.
    Removed,
    /// The new permission contains the old one(s).
    Widened,
    /// The old permission contains the new one(s).
    Narrowed,
    /// Paired, but neither contains the other (e.g. `GET` became `POST`, or a
    /// narrower path with more methods): access was both added and removed.
    Changed,
    /// Same permission, different reason text.
    ReasonChanged,
    /// Same permission, different credentials (declared or bound); see the
    /// change's [`Change::credentials`].
    CredentialsChanged,
}

impl Kind {
    /// The snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Added => "added",
            Kind::Removed => "removed",
            Kind::Widened => "widened",
            Kind::Narrowed => "narrowed",
            Kind::Changed => "changed",
            Kind::ReasonChanged => "reason_changed",
            Kind::CredentialsChanged => "credentials_changed",
        }
    }

    /// The kind of the same change seen the other way round (`diff(new, old)`).
    pub fn reversed(self) -> Kind {
        match self {
            Kind::Added => Kind::Removed,
            Kind::Removed => Kind::Added,
            Kind::Widened => Kind::Narrowed,
            Kind::Narrowed => Kind::Widened,
            k => k,
        }
    }
}

/// A review class. A change has one or more; the first (most severe) is the
/// group it is shown in. Declaration order is severity order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum Class {
    /// The new side is `broad` and the old side was not.
    NewlyBroad,
    /// The new side reaches loopback and the old side did not.
    NewlyLoopback,
    /// The new side reaches private (non-public) addresses and the old side did not.
    NewlyPrivate,
    /// A credential is declared on the new side that the old side did not
    /// declare (name, placement and format).
    CredentialAdded,
    /// A credential is bound to a SecretRef the old side did not bind it to.
    CredentialBound,
    /// A credential on both sides now goes to a wider (or changed) target.
    CredentialWidened,
    /// [`Kind::Widened`].
    Widened,
    /// [`Kind::Changed`].
    Changed,
    /// [`Kind::Added`].
    Added,
    /// The reason text changed (alone, or on top of another change of the same target).
    ReasonChanged,
    /// A credential declaration or binding of the old side is gone.
    CredentialRemoved,
    /// [`Kind::Narrowed`].
    Narrowed,
    /// [`Kind::Removed`].
    Removed,
}

impl Class {
    /// Every class, most severe first.
    pub const ALL: [Class; 13] = [
        Class::NewlyBroad,
        Class::NewlyLoopback,
        Class::NewlyPrivate,
        Class::CredentialAdded,
        Class::CredentialBound,
        Class::CredentialWidened,
        Class::Widened,
        Class::Changed,
        Class::Added,
        Class::ReasonChanged,
        Class::CredentialRemoved,
        Class::Narrowed,
        Class::Removed,
    ];

    /// The snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Class::NewlyBroad => "newly_broad",
            Class::NewlyLoopback => "newly_loopback",
            Class::NewlyPrivate => "newly_private",
            Class::CredentialAdded => "credential_added",
            Class::CredentialBound => "credential_bound",
            Class::CredentialWidened => "credential_widened",
            Class::Widened => "widened",
            Class::Changed => "changed",
            Class::Added => "added",
            Class::ReasonChanged => "reason_changed",
            Class::CredentialRemoved => "credential_removed",
            Class::Narrowed => "narrowed",
            Class::Removed => "removed",
        }
    }

    /// Words for people: `newly broad`, `reason changed`.
    pub fn label(self) -> &'static str {
        match self {
            Class::NewlyBroad => "newly broad",
            Class::NewlyLoopback => "newly loopback",
            Class::NewlyPrivate => "newly private",
            Class::CredentialAdded => "credential added",
            Class::CredentialBound => "credential newly bound",
            Class::CredentialWidened => "credential to a wider target",
            Class::Widened => "widened",
            Class::Changed => "changed",
            Class::Added => "added",
            Class::ReasonChanged => "reason changed",
            Class::CredentialRemoved => "credential removed",
            Class::Narrowed => "narrowed",
            Class::Removed => "removed",
        }
    }

    /// Whether the class means more access than before: added, widened,
    /// changed (incomparable: something was added), or newly broad,
    /// loopback or private, or a credential added, newly bound or sent to a
    /// wider target. These trip `--fail-on widened` and are the ones a grant
    /// may or may not already cover.
    pub fn is_increase(self) -> bool {
        !matches!(
            self,
            Class::ReasonChanged | Class::CredentialRemoved | Class::Narrowed | Class::Removed
        )
    }
}

/// What happened to one credential in a change.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum CredentialDelta {
    /// Declared on the new side only ([`Class::CredentialAdded`]).
    Added,
    /// Bound on the new side to a SecretRef the old side did not bind it to
    /// ([`Class::CredentialBound`]).
    Bound,
    /// On both sides, and the new target is wider or changed
    /// ([`Class::CredentialWidened`]).
    Widened,
    /// Declared on the old side only ([`Class::CredentialRemoved`]).
    Removed,
    /// Bound on the old side, not (to that SecretRef) on the new side
    /// ([`Class::CredentialRemoved`]).
    Unbound,
}

impl CredentialDelta {
    /// The snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            CredentialDelta::Added => "added",
            CredentialDelta::Bound => "bound",
            CredentialDelta::Widened => "widened",
            CredentialDelta::Removed => "removed",
            CredentialDelta::Unbound => "unbound",
        }
    }

    /// The review class it gives its change.
    pub fn class(self) -> Class {
        match self {
            CredentialDelta::Added => Class::CredentialAdded,
            CredentialDelta::Bound => Class::CredentialBound,
            CredentialDelta::Widened => Class::CredentialWidened,
            CredentialDelta::Removed | CredentialDelta::Unbound => Class::CredentialRemoved,
        }
    }

    /// Whether [`CredentialChange::item`] indexes [`Diff::old`] (removed,
    /// unbound) rather than [`Diff::new`].
    pub fn on_old_side(self) -> bool {
        matches!(self, CredentialDelta::Removed | CredentialDelta::Unbound)
    }
}

/// One credential of a change: what happened to it, and where.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CredentialChange {
    /// What happened.
    pub delta: CredentialDelta,
    /// Index into [`Diff::new`], or into [`Diff::old`] when
    /// [`CredentialDelta::on_old_side`].
    pub item: usize,
    /// The credential as that side has it (declaration and binding).
    pub credential: EntryCredential,
}

/// Whether an existing grant already approves a privilege increase.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum Coverage {
    /// One effective grant entry contains every new permission of the change.
    Covered,
    /// Some new permission of the change is not (wholly) approved: until a
    /// user re-approves it, that access stays disabled.
    NeedsReapproval,
}

impl Coverage {
    /// Words for people.
    pub fn label(self) -> &'static str {
        match self {
            Coverage::Covered => "covered",
            Coverage::NeedsReapproval => "needs re-approval",
        }
    }
}

/// One change: the paired old and new entries and how they differ.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Change {
    /// The capability of every entry in the change.
    pub capability: Capability,
    /// What happened.
    pub kind: Kind,
    /// Review classes, most severe first (never empty).
    pub classes: Vec<Class>,
    /// Indices into [`Diff::old`], sorted by target.
    pub old: Vec<usize>,
    /// Indices into [`Diff::new`], sorted by target.
    pub new: Vec<usize>,
    /// Flags set on some new entry of the change and on no old one.
    pub flags_on: Flags,
    /// Flags set on some old entry of the change and on no new one.
    pub flags_off: Flags,
    /// For a privilege increase, after [`check_coverage`]: whether the grant
    /// already covers it. `None` otherwise.
    pub coverage: Option<Coverage>,
    /// What happened to credentials, new side first (by item, then name),
    /// then the old side's removals.
    pub credentials: Vec<CredentialChange>,
}

impl Change {
    /// The most severe class: the group the change is shown in (the kind's
    /// class if `classes` was left empty by hand).
    pub fn severity(&self) -> Class {
        self.classes
            .first()
            .copied()
            .unwrap_or_else(|| kind_class(self.kind))
    }

    /// Whether any class is a privilege increase ([`Class::is_increase`]).
    pub fn is_increase(&self) -> bool {
        self.classes.iter().any(|c| c.is_increase())
    }
}

/// Work done, for tests and budgets: the diff must stay linear in practice.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Work {
    /// Containment checks (`Target::contains`, `Permission::contains`).
    pub containment_checks: u64,
    /// Candidate entries the host index returned.
    pub candidates: u64,
}

/// The result of [`diff`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diff {
    /// The old requested set, sorted by capability and target.
    pub old: Vec<Item>,
    /// The new requested set, sorted by capability and target.
    pub new: Vec<Item>,
    /// The changes, most severe first, then by capability and target.
    pub changes: Vec<Change>,
    /// Work done.
    pub work: Work,
}

impl Diff {
    /// Whether nothing changed.
    pub fn is_empty(&self) -> bool {
        self.changes.is_empty()
    }
}

/// Why a diff could not be computed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DiffError {
    /// More than [`MAX_CONTAINMENT_CHECKS`] containment checks were needed.
    #[error("the two policies overlap too much to diff: more than {MAX_CONTAINMENT_CHECKS} containment checks")]
    TooComplex,
}

/// The requested set of a policy: one item per requested target (a request
/// narrowed by several grant entries appears once), sorted by capability and
/// target.
pub fn requested_items(policy: &CompiledPolicy) -> Result<Vec<Item>, DiffError> {
    // compile and load_policy guarantee one set of details per requested
    // target, so the first entry naming a request describes it.
    let mut seen: std::collections::HashSet<(Capability, &crate::target::Target)> =
        std::collections::HashSet::new();
    let mut items: Vec<Item> = Vec::new();
    let mut at: HashMap<(Capability, &crate::target::Target), usize> = HashMap::new();
    for e in policy.entries() {
        let p = &e.requested;
        if seen.insert((p.capability, &p.target)) {
            at.insert((p.capability, &p.target), items.len());
            items.push(Item {
                permission: p.clone(),
                reason: e.reason.clone(),
                credentials: e
                    .declared_credentials()
                    .map(|c| EntryCredential {
                        credential: c.clone(),
                        secret_ref: None,
                    })
                    .collect(),
            });
        }
        // A binding of any granted entry of the request (the first, in
        // entry order) binds the request's credential.
        if e.status == Status::Granted {
            let item = &mut items[at[&(p.capability, &p.target)]];
            for (ic, ec) in item.credentials.iter_mut().zip(&e.credentials) {
                if ic.secret_ref.is_none() {
                    ic.secret_ref.clone_from(&ec.secret_ref);
                }
            }
        }
    }
    sort_items(&mut items);
    Ok(items)
}

fn sort_items(items: &mut [Item]) {
    items.sort_by_cached_key(|i| (i.permission.capability, i.target()));
}

/// Diffs the requested sets of two policies (see the module docs).
pub fn diff(old: &CompiledPolicy, new: &CompiledPolicy) -> Result<Diff, DiffError> {
    diff_items(requested_items(old)?, requested_items(new)?)
}

/// As [`diff`], comparing credential declarations only, not bindings: for a
/// side compiled from a manifest, whose bindings (if any) come from the
/// grant at hand rather than from what was approved before.
pub fn diff_declared(old: &CompiledPolicy, new: &CompiledPolicy) -> Result<Diff, DiffError> {
    let unbind = |mut items: Vec<Item>| {
        for i in &mut items {
            for c in &mut i.credentials {
                c.secret_ref = None;
            }
        }
        items
    };
    diff_items(unbind(requested_items(old)?), unbind(requested_items(new)?))
}

/// Diffs two requested sets. Items are sorted here; of two items with the same
/// capability and target, the first is kept.
pub fn diff_items(mut old: Vec<Item>, mut new: Vec<Item>) -> Result<Diff, DiffError> {
    sort_items(&mut old);
    sort_items(&mut new);
    dedup_items(&mut old);
    dedup_items(&mut new);
    let mut work = Work::default();
    let old_t: Vec<String> = old.iter().map(Item::target).collect();
    let new_t: Vec<String> = new.iter().map(Item::target).collect();
    let old_by_key: HashMap<(Capability, &str), usize> = old
        .iter()
        .enumerate()
        .map(|(i, o)| ((o.permission.capability, old_t[i].as_str()), i))
        .collect();

    let mut changes = Vec::new();
    let mut old_matched = vec![false; old.len()];
    let mut new_matched = vec![false; new.len()];
    // 1. Same target.
    for (j, n) in new.iter().enumerate() {
        let Some(&i) = old_by_key.get(&(n.permission.capability, new_t[j].as_str())) else {
            continue;
        };
        old_matched[i] = true;
        new_matched[j] = true;
        let (o, np) = (&old[i].permission, &n.permission);
        work.containment_checks += 2;
        let wider = np.contains(o);
        let narrower = o.contains(np);
        let reason_changed = old[i].reason != n.reason || credential_reason_changed(&old[i], n);
        let credentials_changed =
            !credential_changes(&old, &new, &[i], &[j], Kind::Narrowed).is_empty();
        let kind = match (wider, narrower) {
            (true, true) if credentials_changed => Kind::CredentialsChanged,
            (true, true) if reason_changed => Kind::ReasonChanged,
            (true, true) => continue,
            (true, false) => Kind::Widened,
            (false, true) => Kind::Narrowed,
            (false, false) => Kind::Changed,
        };
        changes.push(make_change(
            &old,
            &new,
            vec![i],
            vec![j],
            kind,
            reason_changed,
        ));
    }

    // 2. Containment among the rest, through a host index of the unmatched
    //    old entries.
    let mut index = HostIndex::default();
    for (i, o) in old.iter().enumerate() {
        if !old_matched[i] {
            index.insert(i, &o.permission.target);
        }
    }
    let mut seen = Seen::new(old.len());
    let mut wide_new: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
    let mut wide_old: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
    let mut old_paired = vec![false; old.len()];
    let mut new_paired = vec![false; new.len()];
    let mut candidates = Vec::new();
    for (j, n) in new.iter().enumerate() {
        if new_matched[j] {
            continue;
        }
        let nt = &n.permission.target;
        candidates.clear();
        index.containing(nt, &mut seen, &mut candidates);
        index.contained(nt, &mut seen, &mut candidates);
        seen.next_round();
        work.candidates += candidates.len() as u64;
        for &i in &candidates {
            let ot = &old[i].permission.target;
            work.containment_checks += 1;
            if ot.contains(nt) {
                wide_old.entry(i).or_default().push(j);
            } else {
                work.containment_checks += 1;
                if nt.contains(ot) {
                    wide_new.entry(j).or_default().push(i);
                } else {
                    continue;
                }
            }
            old_paired[i] = true;
            new_paired[j] = true;
        }
        if work.containment_checks > MAX_CONTAINMENT_CHECKS {
            return Err(DiffError::TooComplex);
        }
    }
    for (j, mut olds) in wide_new {
        olds.sort_unstable();
        work.containment_checks += olds.len() as u64;
        let np = &new[j].permission;
        let kind = if olds.iter().all(|&i| np.contains(&old[i].permission)) {
            Kind::Widened
        } else {
            Kind::Changed
        };
        changes.push(make_change(&old, &new, olds, vec![j], kind, false));
    }
    for (i, mut news) in wide_old {
        news.sort_unstable();
        work.containment_checks += news.len() as u64;
        let op = &old[i].permission;
        let kind = if news.iter().all(|&j| op.contains(&new[j].permission)) {
            Kind::Narrowed
        } else {
            Kind::Changed
        };
        changes.push(make_change(&old, &new, vec![i], news, kind, false));
    }
    if work.containment_checks > MAX_CONTAINMENT_CHECKS {
        return Err(DiffError::TooComplex);
    }

    // 3. No partner.
    for j in 0..new.len() {
        if !new_matched[j] && !new_paired[j] {
            changes.push(make_change(&old, &new, vec![], vec![j], Kind::Added, false));
        }
    }
    for i in 0..old.len() {
        if !old_matched[i] && !old_paired[i] {
            changes.push(make_change(
                &old,
                &new,
                vec![i],
                vec![],
                Kind::Removed,
                false,
            ));
        }
    }

    changes.sort_by_cached_key(|c| {
        let primary = if c.new.len() == 1 || c.old.is_empty() {
            c.new.first().map(|&j| new_t[j].clone())
        } else {
            c.old.first().map(|&i| old_t[i].clone())
        };
        let olds: Vec<&str> = c.old.iter().map(|&i| old_t[i].as_str()).collect();
        let news: Vec<&str> = c.new.iter().map(|&j| new_t[j].as_str()).collect();
        (
            c.severity(),
            c.capability,
            primary.unwrap_or_default(),
            olds.join(" "),
            news.join(" "),
        )
    });
    Ok(Diff {
        old,
        new,
        changes,
        work,
    })
}

fn dedup_items(items: &mut Vec<Item>) {
    items.dedup_by(|b, a| {
        a.permission.capability == b.permission.capability
            && a.permission.target == b.permission.target
    });
}

fn union_flags<'a>(items: impl Iterator<Item = &'a Item>) -> Flags {
    let mut f = Flags::default();
    for i in items {
        let g = i.flags();
        f.broad |= g.broad;
        f.wildcard |= g.wildcard;
        f.any_port |= g.any_port;
        f.any_method |= g.any_method;
        f.loopback |= g.loopback;
        f.private |= g.private;
    }
    f
}

fn and_not(a: Flags, b: Flags) -> Flags {
    Flags {
        broad: a.broad && !b.broad,
        wildcard: a.wildcard && !b.wildcard,
        any_port: a.any_port && !b.any_port,
        any_method: a.any_method && !b.any_method,
        loopback: a.loopback && !b.loopback,
        private: a.private && !b.private,
    }
}

fn kind_class(kind: Kind) -> Class {
    match kind {
        Kind::Added => Class::Added,
        Kind::Removed => Class::Removed,
        Kind::Widened => Class::Widened,
        Kind::Narrowed => Class::Narrowed,
        Kind::Changed => Class::Changed,
        Kind::ReasonChanged => Class::ReasonChanged,
        // Its classes are its credentials' (never empty); `changed` only as
        // the fallback of a hand-built change.
        Kind::CredentialsChanged => Class::Changed,
    }
}

/// A credential both items declare (by name) has a different reason: a
/// reworded one is a reason change, not a credential change.
fn credential_reason_changed(a: &Item, b: &Item) -> bool {
    a.credentials.iter().any(|x| {
        b.credentials.iter().any(|y| {
            x.credential.name == y.credential.name && x.credential.reason != y.credential.reason
        })
    })
}

/// A credential's identity for the diff: name, placement and format (not
/// the reason: a reworded reason sends nothing new).
fn credential_key(c: &EntryCredential) -> (&str, &CredentialPlacement, &str) {
    (
        &c.credential.name,
        &c.credential.placement,
        &c.credential.format,
    )
}

/// What happened to the credentials of a change between its old items
/// `olds` and new items `news` (see the module docs).
fn credential_changes(
    old: &[Item],
    new: &[Item],
    olds: &[usize],
    news: &[usize],
    kind: Kind,
) -> Vec<CredentialChange> {
    type Key<'a> = (&'a str, &'a CredentialPlacement, &'a str);
    fn sides<'a>(
        items: &'a [Item],
        idx: &[usize],
    ) -> BTreeMap<Key<'a>, BTreeSet<Option<&'a SecretRef>>> {
        let mut m: BTreeMap<Key<'a>, BTreeSet<Option<&'a SecretRef>>> = BTreeMap::new();
        for &i in idx {
            for c in &items[i].credentials {
                m.entry(credential_key(c))
                    .or_default()
                    .insert(c.secret_ref.as_ref());
            }
        }
        m
    }
    let before = sides(old, olds);
    let after = sides(new, news);
    let wider = matches!(kind, Kind::Widened | Kind::Changed);
    let mut out = Vec::new();
    for &j in news {
        for c in &new[j].credentials {
            let delta = match before.get(&credential_key(c)) {
                None => CredentialDelta::Added,
                Some(refs) if c.secret_ref.is_some() && !refs.contains(&c.secret_ref.as_ref()) => {
                    CredentialDelta::Bound
                }
                Some(_) if wider => CredentialDelta::Widened,
                Some(_) => continue,
            };
            out.push(CredentialChange {
                delta,
                item: j,
                credential: c.clone(),
            });
        }
    }
    for &i in olds {
        for c in &old[i].credentials {
            let delta = match after.get(&credential_key(c)) {
                None => CredentialDelta::Removed,
                Some(refs) if c.secret_ref.is_some() && !refs.contains(&c.secret_ref.as_ref()) => {
                    CredentialDelta::Unbound
                }
                Some(_) => continue,
            };
            out.push(CredentialChange {
                delta,
                item: i,
                credential: c.clone(),
            });
        }
    }
    out
}

fn make_change(
    old: &[Item],
    new: &[Item],
    olds: Vec<usize>,
    news: Vec<usize>,
    kind: Kind,
    reason_changed: bool,
) -> Change {
    let fo = union_flags(olds.iter().map(|&i| &old[i]));
    let fn_ = union_flags(news.iter().map(|&j| &new[j]));
    let flags_on = and_not(fn_, fo);
    let flags_off = and_not(fo, fn_);
    let mut classes = Vec::new();
    if flags_on.broad {
        classes.push(Class::NewlyBroad);
    }
    if flags_on.loopback {
        classes.push(Class::NewlyLoopback);
    }
    if flags_on.private {
        classes.push(Class::NewlyPrivate);
    }
    let credentials = credential_changes(old, new, &olds, &news, kind);
    if kind != Kind::CredentialsChanged {
        classes.push(kind_class(kind));
    }
    classes.extend(credentials.iter().map(|c| c.delta.class()));
    if reason_changed {
        classes.push(Class::ReasonChanged);
    }
    classes.sort_unstable();
    classes.dedup();
    let capability = olds
        .first()
        .map(|&i| old[i].permission.capability)
        .or_else(|| news.first().map(|&j| new[j].permission.capability))
        .unwrap_or(Capability::Request);
    Change {
        capability,
        kind,
        classes,
        old: olds,
        new: news,
        flags_on,
        flags_off,
        coverage: None,
        credentials,
    }
}

/// Marks every privilege increase in `diff` as [`Coverage::Covered`] or
/// [`Coverage::NeedsReapproval`] against the granted entries of `granted`
/// (the new policy compiled with the existing grant, or an IR with its own
/// statuses). Returns the work done.
///
/// A new permission is covered when one granted entry contains it
/// ([`Permission::contains`]) and also reaches its host: a non-public IP
/// literal only through a grant on that IP or networks containing it, a
/// `localhost` name only through a localhost grant — `*` contains both as a
/// pattern but never reaches them.
pub fn check_coverage(diff: &mut Diff, granted: &CompiledPolicy) -> Result<Work, DiffError> {
    let grants: Vec<&Permission> = granted
        .entries()
        .iter()
        .filter(|e| e.status == Status::Granted)
        .map(|e| &e.permission)
        .collect();
    let mut index = HostIndex::default();
    for (g, p) in grants.iter().enumerate() {
        index.insert(g, &p.target);
    }
    let mut work = Work::default();
    let mut seen = Seen::new(grants.len());
    let mut candidates = Vec::new();
    let mut memo: HashMap<usize, bool> = HashMap::new();
    for c in &mut diff.changes {
        if !c.is_increase() {
            c.coverage = None;
            continue;
        }
        let mut all = true;
        for &j in &c.new {
            let covered = match memo.get(&j) {
                Some(&v) => v,
                None => {
                    let r = &diff.new[j].permission;
                    candidates.clear();
                    index.containing(&r.target, &mut seen, &mut candidates);
                    seen.next_round();
                    work.candidates += candidates.len() as u64;
                    work.containment_checks += candidates.len() as u64;
                    let v = candidates.iter().any(|&g| grant_covers(grants[g], r));
                    memo.insert(j, v);
                    v
                }
            };
            all &= covered;
        }
        c.coverage = Some(if all {
            Coverage::Covered
        } else {
            Coverage::NeedsReapproval
        });
        if work.containment_checks > MAX_CONTAINMENT_CHECKS {
            return Err(DiffError::TooComplex);
        }
    }
    Ok(work)
}

/// Whether granted permission `g` approves all of requested permission `r`.
pub fn grant_covers(g: &Permission, r: &Permission) -> bool {
    if !g.contains(r) {
        return false;
    }
    match &r.target.host {
        HostPattern::Ip(ip) => g.covers_address(*ip),
        h if h.is_localhost_name() => g.target.host.is_localhost_name(),
        _ => true,
    }
}

// ---------------------------------------------------------------------------
// Field-by-field description of a pair
// ---------------------------------------------------------------------------

/// One value before and after.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct ValueChange {
    /// Before.
    pub old: String,
    /// After.
    pub new: String,
}

/// A list before and after, with what was added and removed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct ListChange {
    /// Before (canonical spelling).
    pub old: Vec<String>,
    /// After (canonical spelling).
    pub new: Vec<String>,
    /// In `new`, not in `old` (for methods, `*` is expanded to the seven
    /// methods it means).
    pub added: Vec<String>,
    /// In `old`, not in `new`.
    pub removed: Vec<String>,
}

/// What differs between two paired permissions; unchanged parts are absent.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct Delta {
    /// Host pattern.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<ValueChange>,
    /// Port (`*` for any).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<ValueChange>,
    /// Path prefix.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<ValueChange>,
    /// Methods (request).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub methods: Option<ListChange>,
    /// Extra headers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub headers: Option<ListChange>,
    /// Subprotocols (websocket).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subprotocols: Option<ListChange>,
    /// Non-public networks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub networks: Option<ListChange>,
}

impl Delta {
    /// Whether nothing differs.
    pub fn is_empty(&self) -> bool {
        *self == Delta::default()
    }
}

fn port_str(p: PortPattern) -> String {
    match p {
        PortPattern::Any => "*".into(),
        PortPattern::Exact(n) => n.to_string(),
    }
}

fn value_change(old: String, new: String) -> Option<ValueChange> {
    (old != new).then_some(ValueChange { old, new })
}

fn list_change(
    old: Vec<String>,
    new: Vec<String>,
    old_set: BTreeSet<String>,
    new_set: BTreeSet<String>,
) -> Option<ListChange> {
    if old_set == new_set {
        return None;
    }
    Some(ListChange {
        added: new_set.difference(&old_set).cloned().collect(),
        removed: old_set.difference(&new_set).cloned().collect(),
        old,
        new,
    })
}

fn set_change<T: ToString>(
    old: impl IntoIterator<Item = T>,
    new: impl IntoIterator<Item = T>,
) -> Option<ListChange> {
    let o: Vec<String> = old.into_iter().map(|x| x.to_string()).collect();
    let n: Vec<String> = new.into_iter().map(|x| x.to_string()).collect();
    let (os, ns) = (o.iter().cloned().collect(), n.iter().cloned().collect());
    list_change(o, n, os, ns)
}

fn expanded(m: &Methods) -> BTreeSet<String> {
    Method::ALL
        .iter()
        .filter(|x| m.allows(**x))
        .map(|x| x.as_str().to_string())
        .collect()
}

/// What differs between `old` and `new`, field by field (scheme never
/// differs between paired entries).
pub fn delta(old: &Permission, new: &Permission) -> Delta {
    let (a, b): (&Target, &Target) = (&old.target, &new.target);
    Delta {
        host: value_change(a.host.to_string(), b.host.to_string()),
        port: value_change(port_str(a.port), port_str(b.port)),
        path: value_change(a.path.clone(), b.path.clone()),
        methods: match (&old.methods, &new.methods) {
            (Some(x), Some(y)) => {
                list_change(x.to_strings(), y.to_strings(), expanded(x), expanded(y))
            }
            _ => None,
        },
        headers: set_change(&old.headers, &new.headers),
        subprotocols: set_change(&old.subprotocols, &new.subprotocols),
        networks: set_change(&old.networks, &new.networks),
    }
}

// ---------------------------------------------------------------------------
// Host index
// ---------------------------------------------------------------------------

/// Where an entry is filed, by host.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum HostKey {
    /// A domain or IP literal host.
    Exact(HostPattern),
    /// A wildcard `*.suffix`.
    Wild(String),
    /// Hosts strictly inside `*.suffix` other than `*.suffix` itself: domains
    /// and wildcards below it.
    Under(String),
    /// The any-host pattern `*`.
    Any,
    /// Every entry.
    All,
}

/// Proper suffixes of a name at label boundaries: `a.b.c` → `b.c`, `c`.
fn proper_suffixes(name: &str) -> impl Iterator<Item = &str> {
    name.match_indices('.').map(move |(i, _)| &name[i + 1..])
}

/// Entries filed by scheme, host key and port, and by scheme and host key
/// alone (for `:*` queries that want every port).
#[derive(Default)]
struct HostIndex {
    by_port: HashMap<(Scheme, HostKey, PortPattern), Vec<usize>>,
    all_ports: HashMap<(Scheme, HostKey), Vec<usize>>,
}

impl HostIndex {
    fn insert(&mut self, i: usize, t: &Target) {
        let mut keys = vec![HostKey::All];
        match &t.host {
            HostPattern::Any => keys.push(HostKey::Any),
            HostPattern::Ip(_) => keys.push(HostKey::Exact(t.host.clone())),
            HostPattern::Domain(d) => {
                keys.push(HostKey::Exact(t.host.clone()));
                keys.extend(proper_suffixes(d).map(|s| HostKey::Under(s.to_string())));
            }
            HostPattern::Wildcard(s) => {
                keys.push(HostKey::Wild(s.clone()));
                keys.extend(proper_suffixes(s).map(|x| HostKey::Under(x.to_string())));
            }
        }
        for k in keys {
            self.by_port
                .entry((t.scheme, k.clone(), t.port))
                .or_default()
                .push(i);
            self.all_ports.entry((t.scheme, k)).or_default().push(i);
        }
    }

    fn push(&self, key: (Scheme, HostKey, PortPattern), seen: &mut Seen, out: &mut Vec<usize>) {
        if let Some(v) = self.by_port.get(&key) {
            out.extend(v.iter().copied().filter(|&i| seen.first(i)));
        }
    }

    /// Candidates that may contain `t`: same host, wildcards over it, any
    /// host; on the same port or `*`.
    fn containing(&self, t: &Target, seen: &mut Seen, out: &mut Vec<usize>) {
        let mut keys = Vec::new();
        match &t.host {
            HostPattern::Any => {}
            HostPattern::Ip(_) => keys.push(HostKey::Exact(t.host.clone())),
            HostPattern::Domain(d) => {
                keys.push(HostKey::Exact(t.host.clone()));
                keys.extend(proper_suffixes(d).map(|s| HostKey::Wild(s.to_string())));
            }
            HostPattern::Wildcard(s) => {
                keys.push(HostKey::Wild(s.clone()));
                keys.extend(proper_suffixes(s).map(|x| HostKey::Wild(x.to_string())));
            }
        }
        keys.push(HostKey::Any);
        for k in keys {
            if t.port != PortPattern::Any {
                self.push((t.scheme, k.clone(), t.port), seen, out);
            }
            self.push((t.scheme, k, PortPattern::Any), seen, out);
        }
    }

    /// Candidates `t` may contain: same host, hosts under its wildcard, or
    /// everything for `*`; on its port, or every port for `*`.
    fn contained(&self, t: &Target, seen: &mut Seen, out: &mut Vec<usize>) {
        let keys = match &t.host {
            HostPattern::Any => vec![HostKey::All],
            HostPattern::Ip(_) | HostPattern::Domain(_) => vec![HostKey::Exact(t.host.clone())],
            HostPattern::Wildcard(s) => vec![HostKey::Wild(s.clone()), HostKey::Under(s.clone())],
        };
        for k in keys {
            match t.port {
                PortPattern::Exact(_) => self.push((t.scheme, k, t.port), seen, out),
                PortPattern::Any => {
                    if let Some(v) = self.all_ports.get(&(t.scheme, k)) {
                        out.extend(v.iter().copied().filter(|&i| seen.first(i)));
                    }
                }
            }
        }
    }
}

/// Dedups candidates within one query without clearing a set each time.
struct Seen {
    stamp: Vec<u32>,
    round: u32,
}

impl Seen {
    fn new(n: usize) -> Seen {
        Seen {
            stamp: vec![0; n],
            round: 1,
        }
    }

    /// True the first time `i` is seen in this round.
    fn first(&mut self, i: usize) -> bool {
        if self.stamp[i] == self.round {
            false
        } else {
            self.stamp[i] = self.round;
            true
        }
    }

    fn next_round(&mut self) {
        self.round = self.round.wrapping_add(1);
        if self.round == 0 {
            self.stamp.iter_mut().for_each(|s| *s = 0);
            self.round = 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(t: &str) -> Item {
        let target = Target::parse(t).unwrap();
        let capability = target.capability();
        Item {
            permission: Permission {
                capability,
                methods: (capability == Capability::Request)
                    .then(|| Methods::Set([Method::Get].into_iter().collect())),
                target,
                headers: Default::default(),
                subprotocols: Default::default(),
                networks: Default::default(),
            },
            reason: None,
            credentials: Vec::new(),
        }
    }

    #[test]
    fn index_finds_both_directions_and_nothing_else() {
        let old = [
            "https://a.example.com/",
            "https://*.example.com/",
            "https://*.com/",
            "https://*/",
            "https://b.example.com/",
            "https://a.example.com:8443/",
            "https://*:*/",
            "http://a.example.com/",
            "https://x.a.example.com/",
            "https://*.a.example.com/",
        ];
        let mut idx = HostIndex::default();
        for (i, t) in old.iter().enumerate() {
            idx.insert(i, &item(t).permission.target);
        }
        let probe = |t: &str| {
            let mut seen = Seen::new(old.len());
            let mut out = Vec::new();
            let t = Target::parse(t).unwrap();
            idx.containing(&t, &mut seen, &mut out);
            idx.contained(&t, &mut seen, &mut out);
            let mut v: Vec<&str> = out.iter().map(|&i| old[i]).collect();
            v.sort();
            // Every real relation is among the candidates.
            for o in &old {
                let ot = Target::parse(o).unwrap();
                if ot.contains(&t) || t.contains(&ot) {
                    assert!(v.contains(o), "{o} missing for {t}");
                }
            }
            v
        };
        let v = probe("https://a.example.com/");
        assert!(!v.contains(&"https://b.example.com/"), "{v:?}");
        assert!(!v.contains(&"http://a.example.com/"), "{v:?}");
        assert!(!v.contains(&"https://a.example.com:8443/"), "{v:?}");
        let v = probe("https://*.example.com/");
        assert!(v.contains(&"https://x.a.example.com/"), "{v:?}");
        let v = probe("https://*:*/");
        assert_eq!(v.len(), old.len() - 1, "{v:?}");
        let v = probe("https://other.net/");
        assert_eq!(v, vec!["https://*/", "https://*:*/"]);
    }

    #[test]
    fn suffixes() {
        let v: Vec<&str> = proper_suffixes("a.b.c").collect();
        assert_eq!(v, vec!["b.c", "c"]);
        assert_eq!(proper_suffixes("c").count(), 0);
    }
}
