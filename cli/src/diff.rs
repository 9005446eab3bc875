//! `netgrant diff`: the permission change between two manifests or IRs —
//! added, removed, widened, narrowed, changed, newly broad / loopback /
//! private, reason changed, credentials added, bound, sent wider or removed —
//! with the existing grant's coverage and a CI gate.
//!
//! The semantics live in `netgrant_policy::diff`; this module loads the
//! inputs, renders human / markdown / JSON output (every plugin-written string
//! escaped for its medium) and picks the exit code.

use crate::input::{self, Loaded};
use crate::output::{print_stderr, print_stdout, usage};
use crate::show::truncate_target;
use crate::Exit;
use clap::{Args, ValueEnum};
use netgrant_policy::address;
use netgrant_policy::diff::{self, Change, Class, Coverage, Delta, Diff, Item, Kind, ListChange};
use netgrant_policy::redact::{escape_markdown, escape_terminal};
use netgrant_policy::HostPattern;
use netgrant_policy::{Capability, CompiledPolicy, CredentialUse};
use netgrant_policy::{Flags, Permission};
use schemars::JsonSchema;
use serde::Serialize;
use std::path::{Path, PathBuf};

/// Output format for `diff`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum DiffFormat {
    /// Grouped by severity, for a terminal.
    Human,
    /// One JSON document (schema: `netgrant schema diff`).
    Json,
    /// A table and a summary line, to paste as a pull-request comment.
    Markdown,
}

/// What trips the gate (exit 1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum FailOn {
    /// Anything added, widened or changed, or newly broad, loopback or private.
    Widened,
    /// Any change at all (a plugin rename included).
    Any,
}

/// Inputs of `diff`.
#[derive(Args, Debug)]
pub struct DiffArgs {
    /// The old manifest (plugin.toml) or IR (.json).
    pub old: PathBuf,
    /// The new manifest (plugin.toml) or IR (.json).
    pub new: PathBuf,
    /// The existing grant (grant.toml), applied to NEW (a manifest): says
    /// which increases it already covers and which need re-approval.
    #[arg(long, short)]
    pub grant: Option<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = DiffFormat::Human)]
    pub format: DiffFormat,
    /// Exit 1 when the diff has an increase (`widened`) or any change (`any`).
    #[arg(long, value_enum)]
    pub fail_on: Option<FailOn>,
}

/// At most this many changes are listed in human and markdown output (newly
/// broad ones are always listed); the rest are counted.
const MAX_ROWS: usize = 200;
/// At most this many partner targets are listed per change.
const MAX_PARTNERS: usize = 5;
/// Target width in human output.
const TARGET_WIDTH: usize = 96;

// ---------------------------------------------------------------------------
// JSON output (its schema is `netgrant schema diff`)
// ---------------------------------------------------------------------------

/// `netgrant diff --format json`.
#[derive(Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(
    title = "netgrant diff output",
    description = "The permission change between two manifests or IRs (`netgrant diff --format json`)."
)]
pub struct Report {
    /// Output format version.
    pub version: u32,
    /// The old input.
    pub old: InputInfo,
    /// The new input.
    pub new: InputInfo,
    /// The plugin name differs between old and new (an existing grant names the old one).
    pub plugin_renamed: bool,
    /// One line, as printed first by the human format.
    pub summary: String,
    /// Changes per severity group: each change counted once, under its most severe class.
    pub counts: Counts,
    /// Grant coverage of the increases; `null` when no grant was consulted.
    pub grant: Option<GrantInfo>,
    /// The `--fail-on` gate, if given.
    pub fail_on: Option<FailOn>,
    /// Whether the gate tripped.
    pub gate_tripped: bool,
    /// The exit code: 0, or 1 when the gate tripped.
    pub exit_code: u8,
    /// Every change, most severe first, then by capability and target.
    pub changes: Vec<ChangeOut>,
}

/// Manifest or IR.
#[derive(Clone, Copy, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum InputKind {
    /// A plugin.toml, compiled without a grant.
    Manifest,
    /// A compiled IR, re-validated on load.
    Ir,
}

/// One side of the diff.
#[derive(Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct InputInfo {
    /// The path as given.
    pub file: String,
    /// Manifest or IR.
    pub kind: InputKind,
    /// Plugin name.
    pub plugin: String,
    /// Plugin version.
    pub version: String,
    /// `sha256:` over the requested set (what a grant's `approved_digest` pins).
    pub requested_digest: String,
}

/// Changes per severity group.
#[derive(Serialize, JsonSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct Counts {
    /// All changes.
    pub changes: usize,
    /// Most severe class `newly_broad`.
    pub newly_broad: usize,
    /// Most severe class `newly_loopback`.
    pub newly_loopback: usize,
    /// Most severe class `newly_private`.
    pub newly_private: usize,
    /// Most severe class `credential_added`.
    pub credential_added: usize,
    /// Most severe class `credential_bound`.
    pub credential_bound: usize,
    /// Most severe class `credential_widened`.
    pub credential_widened: usize,
    /// Most severe class `widened`.
    pub widened: usize,
    /// Most severe class `changed`.
    pub changed: usize,
    /// Most severe class `added`.
    pub added: usize,
    /// Most severe class `reason_changed`.
    pub reason_changed: usize,
    /// Most severe class `credential_removed`.
    pub credential_removed: usize,
    /// Most severe class `narrowed`.
    pub narrowed: usize,
    /// Most severe class `removed`.
    pub removed: usize,
    /// Changes that are increases (trip `--fail-on widened`).
    pub increases: usize,
}

/// Where coverage came from.
#[derive(Clone, Copy, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum GrantSource {
    /// `--grant`, compiled with the new manifest.
    Grant,
    /// The new input is an IR: its own statuses.
    Ir,
}

/// Grant coverage of the increases.
#[derive(Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GrantInfo {
    /// Where the granted entries came from.
    pub source: GrantSource,
    /// The grant file, with `source = "grant"`.
    pub file: Option<String>,
    /// Increases the grant already covers.
    pub covered: usize,
    /// Increases that need re-approval.
    pub needs_reapproval: usize,
}

/// A flag name.
#[derive(Clone, Copy, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum FlagName {
    /// `broad`
    Broad,
    /// `wildcard`
    Wildcard,
    /// `any_port`
    AnyPort,
    /// `any_method`
    AnyMethod,
    /// `loopback`
    Loopback,
    /// `private`
    Private,
}

fn flag_names(f: Flags) -> Vec<FlagName> {
    let mut v = Vec::new();
    for (on, name) in [
        (f.broad, FlagName::Broad),
        (f.wildcard, FlagName::Wildcard),
        (f.any_port, FlagName::AnyPort),
        (f.any_method, FlagName::AnyMethod),
        (f.loopback, FlagName::Loopback),
        (f.private, FlagName::Private),
    ] {
        if on {
            v.push(name);
        }
    }
    v
}

/// One requested permission.
#[derive(Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PermissionOut {
    /// The canonical target.
    pub target: String,
    /// Methods (request), canonical order or `["*"]`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub methods: Option<Vec<String>>,
    /// Extra headers.
    pub headers: Vec<String>,
    /// Subprotocols (websocket).
    pub subprotocols: Vec<String>,
    /// Non-public networks.
    pub networks: Vec<String>,
    /// Derived flags.
    pub flags: Flags,
    /// The plugin's reason.
    pub reason: Option<String>,
}

/// One change.
#[derive(Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangeOut {
    /// The most severe class: the group the change is shown in.
    pub severity: Class,
    /// Every class of the change, most severe first.
    pub classes: Vec<Class>,
    /// What happened to the paired entries.
    pub kind: Kind,
    /// `request` or `websocket`.
    pub capability: Capability,
    /// The old entries of the change (none when added).
    pub old: Vec<PermissionOut>,
    /// The new entries of the change (none when removed).
    pub new: Vec<PermissionOut>,
    /// Field by field, when the change pairs exactly one old and one new entry.
    pub delta: Option<Delta>,
    /// Flags on some new entry and no old one.
    pub flags_on: Vec<FlagName>,
    /// Flags on some old entry and no new one.
    pub flags_off: Vec<FlagName>,
    /// For an increase, when a grant was consulted.
    pub coverage: Option<Coverage>,
    /// What happened to credentials: new side first, then the old side's
    /// removals (absent when none).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub credentials: Vec<CredentialOut>,
}

/// One credential of a change.
#[derive(Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CredentialOut {
    /// What happened to it.
    pub delta: diff::CredentialDelta,
    /// The target it goes to (the old side's for `removed` / `unbound`).
    pub target: String,
    /// The declared name.
    pub name: String,
    /// `header` or `message`.
    pub placement: String,
    /// The header (lowercase), for a header placement.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub header: Option<String>,
    /// The value's shape.
    pub format: String,
    /// The bound SecretRef, if that side binds it (IR inputs only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_ref: Option<String>,
    /// The review sentence (`sends secret … to …`).
    pub text: String,
}

fn strings<T: ToString>(it: impl IntoIterator<Item = T>) -> Vec<String> {
    it.into_iter().map(|x| x.to_string()).collect()
}

fn permission_out(i: &Item) -> PermissionOut {
    let p = &i.permission;
    PermissionOut {
        target: i.target(),
        methods: p.methods.as_ref().map(|m| m.to_strings()),
        headers: strings(&p.headers),
        subprotocols: strings(&p.subprotocols),
        networks: strings(&p.networks),
        flags: p.flags(),
        reason: i.reason.clone(),
    }
}

fn pair_delta(d: &Diff, c: &Change) -> Option<Delta> {
    match (c.old.as_slice(), c.new.as_slice()) {
        ([i], [j]) => Some(diff::delta(&d.old[*i].permission, &d.new[*j].permission)),
        _ => None,
    }
}

/// The JSON Schema of [`Report`] (draft-07), as committed in
/// `schema/output/diff.schema.json`.
pub fn schema_json() -> String {
    let gen = schemars::generate::SchemaSettings::draft07().into_generator();
    let schema = gen.into_root_schema_for::<Report>();
    let mut s = serde_json::to_string_pretty(&schema).expect("schema serializes");
    s.push('\n');
    s
}

// ---------------------------------------------------------------------------
// Running
// ---------------------------------------------------------------------------

struct Side {
    file: String,
    kind: InputKind,
    policy: CompiledPolicy,
}

fn load(path: &Path, grant: Option<&Path>) -> (InputKind, Loaded) {
    if input::looks_like_ir(path) {
        (InputKind::Ir, input::load_ir(path))
    } else {
        (
            InputKind::Manifest,
            input::load_manifest_and_grant(path, grant),
        )
    }
}

/// Runs `diff`.
pub fn run(a: &DiffArgs) -> Exit {
    let new_is_ir = input::looks_like_ir(&a.new);
    if new_is_ir && a.grant.is_some() {
        return usage(
            "--grant applies when NEW is a manifest; an IR already contains its grant, and its own statuses are used",
        );
    }
    let (old_kind, old) = load(&a.old, None);
    let (new_kind, new) = load(&a.new, a.grant.as_deref());
    let mut diags = old.diagnostics.clone();
    diags.extend(new.diagnostics.iter().cloned());
    print_stderr(&input::render_human(&diags));
    if old.has_fatal() || new.has_fatal() {
        return Exit::Invalid;
    }
    let (Some(old_p), Some(new_p)) = (old.policy, new.policy) else {
        return Exit::Invalid;
    };
    let old_side = Side {
        file: a.old.display().to_string(),
        kind: old_kind,
        policy: old_p,
    };
    let new_side = Side {
        file: a.new.display().to_string(),
        kind: new_kind,
        policy: new_p,
    };
    // Bindings are compared only between two IRs: a manifest side's
    // bindings come from the grant at hand, not from an earlier approval.
    let both_ir = matches!(old_kind, InputKind::Ir) && new_is_ir;
    let computed = if both_ir {
        diff::diff(&old_side.policy, &new_side.policy)
    } else {
        diff::diff_declared(&old_side.policy, &new_side.policy)
    };
    let mut d = match computed {
        Ok(d) => d,
        Err(e) => return usage(&e.to_string()),
    };
    let grant_source = if new_is_ir {
        Some(GrantSource::Ir)
    } else if a.grant.is_some() {
        Some(GrantSource::Grant)
    } else {
        None
    };
    if grant_source.is_some() {
        if let Err(e) = diff::check_coverage(&mut d, &new_side.policy) {
            return usage(&e.to_string());
        }
    }
    let renamed = old_side.policy.plugin.name != new_side.policy.plugin.name;
    let tripped = match a.fail_on {
        None => false,
        Some(FailOn::Widened) => d.changes.iter().any(Change::is_increase),
        Some(FailOn::Any) => !d.changes.is_empty() || renamed,
    };
    let exit = if tripped { Exit::Deny } else { Exit::Ok };
    let view = View {
        d: &d,
        old: &old_side,
        new: &new_side,
        renamed,
        grant_source,
        grant_file: a.grant.as_ref().map(|g| g.display().to_string()),
        fail_on: a.fail_on,
        tripped,
    };
    let out = match a.format {
        DiffFormat::Human => view.human(),
        DiffFormat::Markdown => view.markdown(),
        DiffFormat::Json => {
            let mut s = serde_json::to_string_pretty(&view.report(exit)).expect("json");
            s.push('\n');
            s
        }
    };
    match print_stdout(&out) {
        Exit::Ok => exit,
        e => e,
    }
}

struct View<'a> {
    d: &'a Diff,
    old: &'a Side,
    new: &'a Side,
    renamed: bool,
    grant_source: Option<GrantSource>,
    grant_file: Option<String>,
    fail_on: Option<FailOn>,
    tripped: bool,
}

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

impl View<'_> {
    fn counts(&self) -> Counts {
        let mut c = Counts {
            changes: self.d.changes.len(),
            ..Counts::default()
        };
        for ch in &self.d.changes {
            let slot = match ch.severity() {
                Class::NewlyBroad => &mut c.newly_broad,
                Class::NewlyLoopback => &mut c.newly_loopback,
                Class::NewlyPrivate => &mut c.newly_private,
                Class::CredentialAdded => &mut c.credential_added,
                Class::CredentialBound => &mut c.credential_bound,
                Class::CredentialWidened => &mut c.credential_widened,
                Class::CredentialRemoved => &mut c.credential_removed,
                Class::Widened => &mut c.widened,
                Class::Changed => &mut c.changed,
                Class::Added => &mut c.added,
                Class::ReasonChanged => &mut c.reason_changed,
                Class::Narrowed => &mut c.narrowed,
                Class::Removed => &mut c.removed,
            };
            *slot += 1;
            if ch.is_increase() {
                c.increases += 1;
            }
        }
        c
    }

    fn coverage_counts(&self) -> (usize, usize) {
        let covered = self
            .d
            .changes
            .iter()
            .filter(|c| c.coverage == Some(Coverage::Covered))
            .count();
        let needs = self
            .d
            .changes
            .iter()
            .filter(|c| c.coverage == Some(Coverage::NeedsReapproval))
            .count();
        (covered, needs)
    }

    /// "3 changes: 1 newly broad, 1 widened, 1 added; 2 need re-approval".
    fn summary(&self) -> String {
        let n = self.d.changes.len();
        let mut s = if n == 0 {
            "no permission changes".to_string()
        } else {
            let mut groups: Vec<(Class, usize)> = Vec::new();
            for c in &self.d.changes {
                match groups.last_mut() {
                    Some((k, m)) if *k == c.severity() => *m += 1,
                    _ => groups.push((c.severity(), 1)),
                }
            }
            let parts: Vec<String> = groups
                .iter()
                .map(|(k, m)| format!("{m} {}", k.label()))
                .collect();
            format!("{}: {}", plural(n, "change", "changes"), parts.join(", "))
        };
        if self.grant_source.is_some() && self.d.changes.iter().any(Change::is_increase) {
            let (covered, needs) = self.coverage_counts();
            if needs == 0 {
                s.push_str("; all covered by the grant");
            } else {
                s.push_str(&format!("; {} re-approval", plural(needs, "needs", "need")));
                if covered > 0 {
                    s.push_str(&format!(", {covered} covered by the grant"));
                }
            }
        }
        if self.renamed {
            s.push_str("; plugin renamed");
        }
        s
    }

    fn report(&self, exit: Exit) -> Report {
        let info = |s: &Side| InputInfo {
            file: s.file.clone(),
            kind: s.kind,
            plugin: s.policy.plugin.name.clone(),
            version: s.policy.plugin.version.clone(),
            requested_digest: s.policy.requested_digest.clone(),
        };
        let (covered, needs) = self.coverage_counts();
        Report {
            version: 1,
            old: info(self.old),
            new: info(self.new),
            plugin_renamed: self.renamed,
            summary: self.summary(),
            counts: self.counts(),
            grant: self.grant_source.map(|source| GrantInfo {
                source,
                file: self.grant_file.clone(),
                covered,
                needs_reapproval: needs,
            }),
            fail_on: self.fail_on,
            gate_tripped: self.tripped,
            exit_code: exit as u8,
            changes: self
                .d
                .changes
                .iter()
                .map(|c| ChangeOut {
                    severity: c.severity(),
                    classes: c.classes.clone(),
                    kind: c.kind,
                    capability: c.capability,
                    old: c
                        .old
                        .iter()
                        .map(|&i| permission_out(&self.d.old[i]))
                        .collect(),
                    new: c
                        .new
                        .iter()
                        .map(|&j| permission_out(&self.d.new[j]))
                        .collect(),
                    delta: pair_delta(self.d, c),
                    flags_on: flag_names(c.flags_on),
                    flags_off: flag_names(c.flags_off),
                    coverage: c.coverage,
                    credentials: credentials_out(self.d, c),
                })
                .collect(),
        }
    }

    /// `name version → version` (or `old-name version → new-name version`).
    fn heading(&self, esc: fn(&str) -> String) -> String {
        let (o, n) = (&self.old.policy.plugin, &self.new.policy.plugin);
        if self.renamed {
            format!(
                "{} {} → {} {}",
                esc(&o.name),
                esc(&o.version),
                esc(&n.name),
                esc(&n.version)
            )
        } else {
            format!("{} {} → {}", esc(&o.name), esc(&o.version), esc(&n.version))
        }
    }

    /// The changes to list: all newly broad ones, then up to [`MAX_ROWS`] in
    /// all; and how many were left out.
    fn listed(&self) -> (Vec<&Change>, usize) {
        let mut shown = Vec::new();
        let mut hidden = 0;
        for c in &self.d.changes {
            if c.severity() == Class::NewlyBroad || shown.len() < MAX_ROWS {
                shown.push(c);
            } else {
                hidden += 1;
            }
        }
        (shown, hidden)
    }

    fn human(&self) -> String {
        let mut o = String::new();
        // The summary is the first line, so `| head -1` in CI says it all.
        o.push_str(&format!("{}\n", self.summary()));
        o.push_str(&format!("plugin {}\n", self.heading(escape_terminal)));
        if self.renamed {
            o.push_str(
                "  ⚠ plugin renamed: a grant for the old name does not apply to the new one\n",
            );
        }
        let (shown, hidden) = self.listed();
        let mut group = None;
        for c in shown {
            if group != Some(c.severity()) {
                group = Some(c.severity());
                let n = self
                    .d
                    .changes
                    .iter()
                    .filter(|x| x.severity() == c.severity())
                    .count();
                o.push_str(&format!("\n{} ({n})\n", c.severity().label()));
            }
            self.human_change(&mut o, c);
        }
        if hidden > 0 {
            o.push_str(&format!(
                "\n… and {hidden} more changes (none newly broad); use --format json for all\n"
            ));
        }
        if let Some(f) = self.fail_on {
            let name = match f {
                FailOn::Widened => "widened",
                FailOn::Any => "any",
            };
            if self.tripped {
                o.push_str(&format!("\n✗ --fail-on {name}: gate tripped (exit 1)\n"));
            } else {
                o.push_str(&format!("\n✓ --fail-on {name}: gate passed\n"));
            }
        }
        o
    }

    fn human_change(&self, o: &mut String, c: &Change) {
        let mark = mark(c);
        let t = |s: &str| escape_terminal(&truncate_target(s, TARGET_WIDTH));
        let (primary, others, word) = self.sides(c);
        o.push_str(&format!(
            "{mark} {:<14} {:<9}  {}\n",
            kind_label(c.kind),
            c.capability.as_str(),
            t(&primary)
        ));
        for line in partner_lines(&others, word) {
            o.push_str(&format!("      {}\n", t_line(&line)));
        }
        for line in self.detail_lines(c) {
            o.push_str(&format!("      {}\n", escape_terminal(&line)));
        }
        if let Some(r) = self.reason_line(c) {
            o.push_str(&format!("      {}\n", escape_terminal(&r)));
        }
    }

    /// The target a change is listed under, the other side's targets, and
    /// the word that introduces them (`was` / `now`).
    fn sides(&self, c: &Change) -> (String, Vec<String>, &'static str) {
        let olds: Vec<String> = c.old.iter().map(|&i| self.d.old[i].target()).collect();
        let news: Vec<String> = c.new.iter().map(|&j| self.d.new[j].target()).collect();
        if news.len() == 1 {
            let others = if olds.len() == 1 && olds[0] == news[0] {
                Vec::new()
            } else {
                olds
            };
            (news[0].clone(), others, "was")
        } else if olds.len() == 1 {
            (olds[0].clone(), news, "now")
        } else {
            // Not produced by the engine (every change has one anchor).
            (
                news.first().or(olds.first()).cloned().unwrap_or_default(),
                Vec::new(),
                "",
            )
        }
    }

    /// Field changes, what is requested (for added / removed), why newly
    /// broad / loopback / private, flags turned off, grant coverage.
    fn detail_lines(&self, c: &Change) -> Vec<String> {
        let mut lines = Vec::new();
        if let Some(dl) = pair_delta(self.d, c) {
            let s = delta_text(&dl);
            if !s.is_empty() {
                lines.push(s);
            }
        } else if c.old.is_empty() || c.new.is_empty() {
            let item = c
                .new
                .first()
                .map(|&j| &self.d.new[j])
                .or_else(|| c.old.first().map(|&i| &self.d.old[i]));
            if let Some(item) = item {
                let s = requested_text(&item.permission);
                if !s.is_empty() {
                    lines.push(s);
                }
            }
        }
        let news = || c.new.iter().map(|&j| &self.d.new[j].permission);
        if c.classes.contains(&Class::NewlyBroad) {
            let why: Vec<String> = news().filter_map(Permission::broad_reason).collect();
            lines.push(format!("BROAD: {}", dedup(why).join("; ")));
        }
        if c.classes.contains(&Class::NewlyLoopback) {
            let why: Vec<String> = news()
                .filter(|p| p.flags().loopback)
                .map(|p| reach_why(p, true))
                .collect();
            lines.push(format!("LOOPBACK: {}", dedup(why).join("; ")));
        }
        if c.classes.contains(&Class::NewlyPrivate) {
            let why: Vec<String> = news()
                .filter(|p| p.flags().private)
                .map(|p| reach_why(p, false))
                .collect();
            lines.push(format!("PRIVATE: {}", dedup(why).join("; ")));
        }
        let off: Vec<&str> = [
            (c.flags_off.broad, "broad"),
            (c.flags_off.loopback, "loopback"),
            (c.flags_off.private, "private"),
        ]
        .into_iter()
        .filter(|(on, _)| *on)
        .map(|(_, n)| n)
        .collect();
        if !off.is_empty() {
            lines.push(format!("no longer {}", off.join(" or ")));
        }
        lines.extend(credential_lines(self.d, c));
        if let Some(cov) = c.coverage {
            lines.push(format!("grant: {}", cov.label()));
        }
        lines
    }

    /// `reason: "old" → "new"` for a reason change, else the listed entry's reason.
    fn reason_line(&self, c: &Change) -> Option<String> {
        if let (true, [i], [j]) = (
            c.classes.contains(&Class::ReasonChanged),
            c.old.as_slice(),
            c.new.as_slice(),
        ) {
            let (i, j) = (*i, *j);
            let q = |r: &Option<String>| match r {
                Some(r) => format!("\"{r}\""),
                None => "(none)".to_string(),
            };
            return Some(format!(
                "reason: {} → {}",
                q(&self.d.old[i].reason),
                q(&self.d.new[j].reason)
            ));
        }
        let item = if c.new.len() == 1 {
            &self.d.new[c.new[0]]
        } else {
            &self.d.old[*c.old.first()?]
        };
        item.reason.as_ref().map(|r| format!("reason: {r}"))
    }

    fn markdown(&self) -> String {
        let mut o = String::new();
        // Plugin names are validated ([a-z0-9-]), so a code span is safe.
        let (on, nn) = (&self.old.policy.plugin, &self.new.policy.plugin);
        let name = if self.renamed {
            format!("`{}` → `{}`", on.name, nn.name)
        } else {
            format!("`{}`", on.name)
        };
        o.push_str(&format!(
            "### netgrant diff: {name} {} → {}\n\n",
            escape_markdown(&on.version),
            escape_markdown(&nn.version)
        ));
        o.push_str(&format!("**{}**\n\n", escape_markdown(&self.summary())));
        if self.renamed {
            o.push_str(
                "> ⚠️ The plugin was renamed: a grant for the old name does not apply to the new one.\n\n",
            );
        }
        if !self.d.changes.is_empty() {
            let grant_col = self.grant_source.is_some();
            o.push_str("| | change | capability | target | details |");
            if grant_col {
                o.push_str(" grant |");
            }
            o.push_str("\n|---|---|---|---|---|");
            if grant_col {
                o.push_str("---|");
            }
            o.push('\n');
            let (shown, hidden) = self.listed();
            for c in shown {
                let (primary, others, word) = self.sides(c);
                let mut target = md_target(&primary);
                for line in partner_lines(&others, word) {
                    target.push_str("<br>");
                    target.push_str(&md_line(&line));
                }
                let mut details: Vec<String> = self
                    .detail_lines(c)
                    .into_iter()
                    .filter(|l| !l.starts_with("grant: "))
                    .map(|l| escape_markdown(&l))
                    .collect();
                if let Some(r) = self.reason_line(c) {
                    details.push(escape_markdown(&r));
                }
                o.push_str(&format!(
                    "| {} | {} | {} | {} | {} |",
                    severity_md(c),
                    escape_markdown(kind_label(c.kind)),
                    c.capability.as_str(),
                    target,
                    details.join("<br>")
                ));
                if grant_col {
                    o.push_str(&format!(
                        " {} |",
                        c.coverage.map(|x| x.label()).unwrap_or("")
                    ));
                }
                o.push('\n');
            }
            if hidden > 0 {
                o.push_str(&format!(
                    "\n… and {hidden} more changes (none newly broad); run `netgrant diff --format json` for all.\n"
                ));
            }
            o.push('\n');
        }
        let (a, b) = (
            &self.old.policy.requested_digest,
            &self.new.policy.requested_digest,
        );
        if a == b {
            o.push_str(&format!("<sub>requested_digest {a} (unchanged)</sub>\n"));
        } else {
            o.push_str(&format!("<sub>requested_digest {a} → {b}</sub>\n"));
        }
        o
    }
}

/// The review sentence of one credential change ([`CredentialUse::render`]),
/// unescaped: the caller escapes the line for its medium.
fn credential_text(d: &Diff, cc: &diff::CredentialChange) -> String {
    let item = if cc.delta.on_old_side() {
        &d.old[cc.item]
    } else {
        &d.new[cc.item]
    };
    let target = item.target();
    CredentialUse::from_entry(&cc.credential, &target).render_declared(&|s| format!("`{s}`"))
}

fn credential_lines(d: &Diff, c: &Change) -> Vec<String> {
    c.credentials
        .iter()
        .map(|cc| {
            let head = match cc.delta {
                diff::CredentialDelta::Added => "SECRET added",
                diff::CredentialDelta::Bound => "SECRET newly bound",
                diff::CredentialDelta::Widened => "SECRET to a wider target",
                diff::CredentialDelta::Removed => "credential removed",
                diff::CredentialDelta::Unbound => "credential no longer bound",
            };
            format!("{head}: {}", credential_text(d, cc))
        })
        .collect()
}

fn credentials_out(d: &Diff, c: &Change) -> Vec<CredentialOut> {
    c.credentials
        .iter()
        .map(|cc| {
            let item = if cc.delta.on_old_side() {
                &d.old[cc.item]
            } else {
                &d.new[cc.item]
            };
            let cred = &cc.credential.credential;
            CredentialOut {
                delta: cc.delta,
                target: item.target(),
                name: cred.name.clone(),
                placement: cred.placement.kind().to_string(),
                header: cred.placement.header().map(str::to_string),
                format: cred.format.clone(),
                secret_ref: cc.credential.secret_ref.as_ref().map(|r| r.to_string()),
                text: credential_text(d, cc),
            }
        })
        .collect()
}

fn mark(c: &Change) -> &'static str {
    match c.severity() {
        Class::NewlyBroad => "!!",
        Class::NewlyLoopback | Class::NewlyPrivate => " ~",
        Class::CredentialAdded | Class::CredentialBound | Class::CredentialWidened => " $",
        Class::CredentialRemoved => " -",
        Class::Widened | Class::Changed | Class::Added => " +",
        Class::ReasonChanged => " *",
        Class::Narrowed | Class::Removed => " -",
    }
}

fn kind_label(k: Kind) -> &'static str {
    match k {
        Kind::Added => "added",
        Kind::Removed => "removed",
        Kind::Widened => "widened",
        Kind::Narrowed => "narrowed",
        Kind::Changed => "changed",
        Kind::ReasonChanged => "reason changed",
        Kind::CredentialsChanged => "credentials",
    }
}

/// The first column: the newly broad / loopback / private classes, marked;
/// empty otherwise (the kind has its own column).
fn severity_md(c: &Change) -> String {
    let v: Vec<String> = c
        .classes
        .iter()
        .filter(|k| {
            matches!(
                k,
                Class::NewlyBroad
                    | Class::NewlyLoopback
                    | Class::NewlyPrivate
                    | Class::CredentialAdded
                    | Class::CredentialBound
                    | Class::CredentialWidened
            )
        })
        .map(|k| match k {
            Class::CredentialAdded | Class::CredentialBound | Class::CredentialWidened => {
                format!("🔑 **{}**", k.label())
            }
            _ => format!("⚠️ **{}**", k.label()),
        })
        .collect();
    v.join("<br>")
}

/// `was X` / `now X` lines for a change's other side, capped.
fn partner_lines(others: &[String], word: &str) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = others
        .iter()
        .take(MAX_PARTNERS)
        .map(|t| (word.to_string(), t.clone()))
        .collect();
    if others.len() > MAX_PARTNERS {
        v.push((
            String::new(),
            format!("… and {} more", others.len() - MAX_PARTNERS),
        ));
    }
    v
}

fn t_line((word, target): &(String, String)) -> String {
    if word.is_empty() {
        escape_terminal(target)
    } else {
        format!(
            "{word} {}",
            escape_terminal(&truncate_target(target, TARGET_WIDTH))
        )
    }
}

/// A target as a code span: never auto-linked, `*` and `_` shown as they
/// are. Inside a code span backslash escapes do not apply, so the two
/// characters that could still break out are replaced: a backtick by `'`,
/// and `|` (which splits a table cell even there) by `\|`, which GitHub
/// reads as a literal pipe in tables.
fn md_target(t: &str) -> String {
    let t = escape_terminal(&truncate_target(t, 80))
        .replace('`', "'")
        .replace('|', "\\|");
    format!("`{t}`")
}

fn md_line((word, target): &(String, String)) -> String {
    if word.is_empty() {
        escape_markdown(target)
    } else {
        format!("{word} {}", md_target(target))
    }
}

fn list_or_none(v: &[String]) -> String {
    if v.is_empty() {
        "(none)".into()
    } else {
        v.join(",")
    }
}

fn delta_text(d: &Delta) -> String {
    let mut parts = Vec::new();
    for (name, v) in [("host", &d.host), ("port", &d.port), ("path", &d.path)] {
        if let Some(v) = v {
            parts.push(format!("{name} {} → {}", v.old, v.new));
        }
    }
    let lists: [(&str, &Option<ListChange>); 4] = [
        ("methods", &d.methods),
        ("headers", &d.headers),
        ("subprotocols", &d.subprotocols),
        ("networks", &d.networks),
    ];
    for (name, l) in lists {
        if let Some(l) = l {
            parts.push(format!(
                "{name} {} → {}",
                list_or_none(&l.old),
                list_or_none(&l.new)
            ));
        }
    }
    parts.join("; ")
}

/// What an added or removed entry requests beyond its target.
fn requested_text(p: &Permission) -> String {
    let mut parts = Vec::new();
    if let Some(m) = &p.methods {
        parts.push(format!("methods {}", m.to_strings().join(",")));
    }
    for (name, v) in [
        ("headers", strings(&p.headers)),
        ("subprotocols", strings(&p.subprotocols)),
        ("networks", strings(&p.networks)),
    ] {
        if !v.is_empty() {
            parts.push(format!("{name} {}", v.join(",")));
        }
    }
    parts.join("; ")
}

fn dedup(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v.dedup();
    v
}

/// Why a permission reaches loopback (or private) addresses.
fn reach_why(p: &Permission, loopback: bool) -> String {
    let mut why = Vec::new();
    match &p.target.host {
        HostPattern::Ip(ip) => {
            let class = address::classify(*ip).class;
            let hit = if loopback {
                class == address::AddressClass::Loopback
            } else {
                class.is_non_public() && class != address::AddressClass::Loopback
            };
            if hit {
                why.push(format!(
                    "host {} is {}",
                    p.target.host,
                    if loopback {
                        "a loopback address".to_string()
                    } else {
                        "a non-public address".to_string()
                    }
                ));
            }
        }
        h if loopback && h.is_localhost_name() => why.push(format!("host {h} is a localhost name")),
        _ => {}
    }
    let nets: Vec<String> = p
        .networks
        .iter()
        .filter(|n| {
            let c = address::classify_network(**n);
            if loopback {
                c.loopback
            } else {
                c.private
            }
        })
        .map(|n| n.to_string())
        .collect();
    if !nets.is_empty() {
        let what = if loopback { "loopback" } else { "non-public" };
        why.push(format!("networks include {what} {}", nets.join(",")));
    }
    why.join("; ")
}
