//! `netgrant approve`: write a grant approving what a manifest requests.
//!
//! An existing grant is edited, not regenerated (`toml_edit`), so the user's
//! comments, narrowings and other choices survive. Broad access is never
//! approved without a conscious yes: a prompt in a terminal, or
//! `--allow-broad`. Every entry approve writes states every field explicitly
//! (`methods`, `headers`, `subprotocols`, `networks`), so a later manifest
//! change can never widen it silently.

use crate::input;
use crate::output::{print_stderr, print_stdout, usage};
use crate::Exit;
use clap::Args;
use netgrant_policy::diagnostics::Severity;
use netgrant_policy::document::Requested;
use netgrant_policy::ir::{IgnoredCode, Status};
use netgrant_policy::permission::{Flags, Permission};
use netgrant_policy::redact::escape_terminal;
use netgrant_policy::{compile, Capability, Diagnostic, Grant, Manifest, Target};
use std::collections::{HashMap, HashSet};
use std::io::{BufRead, IsTerminal, Read, Write};
use std::path::{Path, PathBuf};
use toml_edit::{value, Array, ArrayOfTables, DocumentMut, InlineTable, Item, Table, TableLike};

/// Inputs of `approve`.
#[derive(Args, Debug)]
pub struct ApproveArgs {
    /// The plugin manifest (plugin.toml).
    pub manifest: PathBuf,
    /// An existing grant to update; its comments and narrowings are kept. It is
    /// only modified in place when -o names the same file.
    #[arg(long, short)]
    pub grant: Option<PathBuf>,
    /// Write the grant to this file (atomically) instead of standard output.
    #[arg(long, short)]
    pub output: Option<PathBuf>,
    /// Do not ask: approve everything that is not broad (loopback and private
    /// targets are approved and reported on stderr).
    #[arg(long, short)]
    pub yes: bool,
    /// Approve broad targets without asking (written with `broad = true`).
    #[arg(long)]
    pub allow_broad: bool,
    /// Approve only requested targets inside these target patterns, e.g.
    /// 'wss://*.discord.gg' (repeatable).
    #[arg(long, value_name = "PATTERN", num_args = 1..)]
    pub only: Vec<String>,
}

/// A user's answer to one prompt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Answer {
    /// Approve it.
    Yes,
    /// Leave it not granted.
    No,
    /// Stop; write nothing.
    Quit,
}

/// Asks one question until a valid answer (at most three times; then no).
/// End of input, an empty line or anything but yes is no: fail closed.
pub fn ask<R: BufRead, W: Write>(
    input: &mut R,
    out: &mut W,
    question: &str,
) -> std::io::Result<Answer> {
    for _ in 0..3 {
        write!(out, "{question} [y/N/q] ")?;
        out.flush()?;
        let mut line = String::new();
        // Bounded: a prompt answer is a word, not a file.
        if input.by_ref().take(1024).read_line(&mut line)? == 0 {
            writeln!(out)?;
            return Ok(Answer::No);
        }
        match line.trim().to_ascii_lowercase().as_str() {
            "y" | "yes" => return Ok(Answer::Yes),
            "" | "n" | "no" => return Ok(Answer::No),
            "q" | "quit" => return Ok(Answer::Quit),
            _ => writeln!(
                out,
                "please answer y (approve), n (leave it out) or q (quit, write nothing)"
            )?,
        }
    }
    Ok(Answer::No)
}

/// What a decision is about: a new entry for a request, or `broad = true` on
/// an existing grant entry that is broad but was never approved.
#[derive(Clone, Debug)]
enum Subject {
    /// Index into the manifest's requests.
    New(usize),
    /// An existing grant entry (capability, canonical target).
    MarkBroad(Capability, String),
}

#[derive(Clone, Debug)]
struct Candidate {
    subject: Subject,
    capability: Capability,
    target: String,
    flags: Flags,
    why: String,
    reason: Option<String>,
}

impl Candidate {
    fn id(&self) -> String {
        format!("{}:{}", self.capability, self.target)
    }

    /// `broad: any host over https`, `loopback`, … — what needs a conscious yes.
    fn risk(&self) -> Option<String> {
        if self.flags.broad {
            Some(format!("broad: {}", self.why))
        } else if self.flags.loopback && self.flags.private {
            Some("loopback and private networks".into())
        } else if self.flags.loopback {
            Some("loopback: services on this machine".into())
        } else if self.flags.private {
            Some("private: non-public addresses".into())
        } else {
            None
        }
    }

    fn question(&self) -> String {
        let what = match self.subject {
            Subject::New(_) => "",
            Subject::MarkBroad(..) => "the existing grant entry ",
        };
        let mut q = format!(
            "approve {what}{} {} ({})?",
            self.capability,
            escape_terminal(&self.target),
            self.risk().unwrap_or_default()
        );
        if let Some(r) = &self.reason {
            q.push_str(&format!("\n  reason: {}\n ", escape_terminal(r)));
        }
        q
    }
}

/// What happens to an existing grant entry.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Existing {
    /// Effective; kept as written.
    Keep { parent: usize },
    /// Effective and not broad, but says `broad = true`: kept, `broad` removed.
    DropBroad { parent: usize },
    /// Broad without `broad = true`: needs a decision about its effective
    /// permission.
    NeedsBroad {
        parent: usize,
        effective: Permission,
    },
    /// No request contains it: removed.
    Stale,
}

/// The summary on stderr: approved (`+`), changed (`~`), removed (`-`), not
/// approved (`·`), in that order, each in manifest or file order.
struct Report(Vec<(usize, String)>);

impl Report {
    fn line(&mut self, mark: &str, cap: Capability, target: &str, note: &str) {
        let sep = if note.is_empty() { "" } else { "  " };
        let rank = ["+", "~", "-", "·"]
            .iter()
            .position(|m| *m == mark)
            .unwrap_or(4);
        self.0.push((
            rank,
            format!(
                "  {mark} {:<9}  {}{sep}{note}\n",
                cap.as_str(),
                escape_terminal(target)
            ),
        ));
    }
}

fn fatal(diags: &[Diagnostic]) -> bool {
    diags.iter().any(|d| d.severity() == Severity::Error)
}

/// Runs `approve`.
pub fn run(args: &ApproveArgs) -> Exit {
    let stdin = std::io::stdin();
    let interactive = !args.yes && stdin.is_terminal() && std::io::stderr().is_terminal();
    let mut input = stdin.lock();
    let mut prompt = std::io::stderr();
    run_with(args, interactive, &mut input, &mut prompt)
}

/// `approve` with the prompt streams given (tests drive it with buffers).
pub fn run_with<R: BufRead, W: Write>(
    args: &ApproveArgs,
    interactive: bool,
    answers: &mut R,
    prompt: &mut W,
) -> Exit {
    let limit = netgrant_policy::document::MAX_FILE_BYTES as u64;
    // The manifest.
    let mname = args.manifest.display().to_string();
    let manifest = match input::read(&args.manifest, limit) {
        Ok(bytes) => {
            let parsed = Manifest::parse_bytes(&mname, &bytes);
            print_stderr(&input::render_human(&parsed.diagnostics));
            match parsed.value {
                Some(m) => m,
                None => return Exit::Invalid,
            }
        }
        Err(d) => {
            print_stderr(&input::render_human(&[d]));
            return Exit::Invalid;
        }
    };
    // The existing grant, as a model and as an editable document.
    let mut existing: Option<(Grant, String)> = None;
    if let Some(gp) = &args.grant {
        let gname = gp.display().to_string();
        let bytes = match input::read(gp, limit) {
            Ok(b) => b,
            Err(d) => {
                print_stderr(&input::render_human(&[d]));
                return Exit::Invalid;
            }
        };
        let parsed = Grant::parse_bytes(&gname, &bytes);
        print_stderr(&input::render_human(&parsed.diagnostics));
        let Some(g) = parsed.value else {
            return Exit::Invalid;
        };
        // parse_bytes succeeded, so the bytes are UTF-8.
        existing = Some((g, String::from_utf8_lossy(&bytes).into_owned()));
    }
    // Refuse a clobbering -o before asking anything.
    if let Some(out) = &args.output {
        if let Err(msg) = may_write(out, args.grant.as_deref()) {
            return usage(&msg);
        }
    }
    // --only patterns.
    let mut only = Vec::new();
    for raw in &args.only {
        match Target::parse(raw) {
            Ok(t) => only.push(t),
            Err(e) => {
                return usage(&format!(
                    "--only {}: {} ({})",
                    netgrant_policy::diagnostics::quote(raw),
                    e.message,
                    e.help
                ))
            }
        }
    }
    for (raw, t) in args.only.iter().zip(&only) {
        if !manifest
            .requested
            .iter()
            .any(|r| t.contains(&r.permission.target))
        {
            return usage(&format!(
                "--only {} matches no requested target; a pattern selects the requested targets it contains (same scheme, host inside, port and path inside)",
                netgrant_policy::diagnostics::quote(raw)
            ));
        }
    }
    let selected =
        |r: &Requested| only.is_empty() || only.iter().any(|t| t.contains(&r.permission.target));

    // Fatal problems across the two files (duplicate targets, a grant for
    // another plugin) stop here. Entry-level ones are what approve fixes.
    let base = compile(&manifest, existing.as_ref().map(|(g, _)| g));
    if fatal(&base.diagnostics) {
        print_stderr(&input::render_human(&base.diagnostics));
        return Exit::Invalid;
    }
    // Classify existing entries by compiling once with `broad = true` on every
    // entry: then only "not requested" drops an entry, and every effective
    // entry shows the request it narrows.
    let mut states: HashMap<(Capability, String), Existing> = HashMap::new();
    if let Some((g, _)) = &existing {
        let mut all_broad = g.clone();
        for e in &mut all_broad.entries {
            e.broad = true;
        }
        let Some(policy) = compile(&manifest, Some(&all_broad)).policy else {
            print_stderr(&input::render_human(&base.diagnostics));
            return Exit::Invalid;
        };
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
        for e in policy
            .entries
            .iter()
            .filter(|e| e.status == Status::Granted)
        {
            let parent_target = e.narrows.as_ref().map_or(&e.target, |n| &n.target);
            let Some(&parent) = req_index.get(&(e.capability, parent_target.clone())) else {
                continue;
            };
            let written = g
                .entries
                .iter()
                .find(|x| x.capability == e.capability && x.target.to_string() == e.target)
                .map(|x| x.broad)
                .unwrap_or(false);
            let state = match (e.flags.broad, written) {
                (true, true) | (false, false) => Existing::Keep { parent },
                (true, false) => match netgrant_policy::entry_permission(e) {
                    Ok(effective) => Existing::NeedsBroad { parent, effective },
                    Err(_) => continue,
                },
                (false, true) => Existing::DropBroad { parent },
            };
            states.insert((e.capability, e.target.clone()), state);
        }
        for ig in &policy.ignored {
            if ig.code == IgnoredCode::NotRequested {
                states.insert((ig.capability, ig.target.clone()), Existing::Stale);
            }
        }
    }

    // Requests already covered by a kept entry, and requests whose decision
    // is about an existing unapproved broad entry instead.
    let mut covered: HashSet<usize> = HashSet::new();
    let mut pending: HashSet<usize> = HashSet::new();
    for s in states.values() {
        match s {
            Existing::Keep { parent } | Existing::DropBroad { parent } => {
                covered.insert(*parent);
            }
            Existing::NeedsBroad { parent, .. } => {
                pending.insert(*parent);
            }
            Existing::Stale => {}
        }
    }

    let mut report = Report(Vec::new());
    let mut candidates: Vec<Candidate> = Vec::new();
    // File order (the model groups requests by capability): prompts and new
    // entries follow the manifest as its author wrote it.
    let mut order: Vec<usize> = (0..manifest.requested.len()).collect();
    order.sort_by_key(|&i| manifest.requested[i].origin.as_ref().map(|o| o.table.start));
    for i in order {
        let r = &manifest.requested[i];
        let p = &r.permission;
        if covered.contains(&i) || pending.contains(&i) {
            continue;
        }
        if !selected(r) {
            report.line(
                "·",
                p.capability,
                &p.target.to_string(),
                "not approved: outside --only",
            );
            continue;
        }
        candidates.push(Candidate {
            subject: Subject::New(i),
            capability: p.capability,
            target: p.target.to_string(),
            flags: p.flags(),
            why: p.broad_reason().unwrap_or_default(),
            reason: r.reason.clone(),
        });
    }
    // Existing unapproved broad entries, in file order.
    let mut left_unapproved = Vec::new();
    if let Some((g, _)) = &existing {
        for e in &g.entries {
            let k = (e.capability, e.target.to_string());
            if let Some(Existing::NeedsBroad { parent, effective }) = states.get(&k) {
                let r = &manifest.requested[*parent];
                if !selected(r) {
                    left_unapproved.push(k.clone());
                    report.line(
                        "·",
                        e.capability,
                        &k.1,
                        "left as written (outside --only): still lacks `broad = true`",
                    );
                    continue;
                }
                // Judged on the entry itself, its effective permission (docs/spec.md §3.3).
                candidates.push(Candidate {
                    subject: Subject::MarkBroad(e.capability, k.1.clone()),
                    capability: e.capability,
                    target: k.1,
                    flags: effective.flags(),
                    why: effective.broad_reason().unwrap_or_default(),
                    reason: r.reason.clone(),
                });
            }
        }
    }

    // Decide.
    // Approved candidates with the note the summary shows for them.
    let mut approved: Vec<(Candidate, String)> = Vec::new();
    let mut declined: Vec<Candidate> = Vec::new();
    let mut refused: Vec<Candidate> = Vec::new();
    for c in candidates {
        let Some(risk) = c.risk() else {
            approved.push((c, String::new()));
            continue;
        };
        if c.flags.broad && args.allow_broad {
            approved.push((c, format!("{risk} (--allow-broad)")));
        } else if interactive {
            match ask(answers, prompt, &c.question()) {
                Ok(Answer::Yes) => approved.push((c, format!("{risk} (you said yes)"))),
                Ok(Answer::No) => declined.push(c),
                Ok(Answer::Quit) | Err(_) => {
                    print_stderr("approve: stopped; nothing written\n");
                    return Exit::Deny;
                }
            }
        } else if c.flags.broad {
            refused.push(c);
        } else {
            approved.push((c, format!("{risk} (not asked: --yes or no terminal)")));
        }
    }
    if !refused.is_empty() {
        let mut s = format!(
            "error: {} broad target{} need{} a conscious approval, and this run cannot ask (--yes, or not a terminal):\n",
            refused.len(),
            if refused.len() == 1 { "" } else { "s" },
            if refused.len() == 1 { "s" } else { "" },
        );
        for c in &refused {
            s.push_str(&format!("    {}  ({})\n", escape_terminal(&c.id()), c.why));
        }
        s.push_str("  help: pass --allow-broad to approve them (written with `broad = true`), run approve in a terminal to be asked, or select other targets with --only PATTERN\nnothing written\n");
        print_stderr(&s);
        return Exit::Deny;
    }

    // Edit (or start) the document.
    let mut doc = match &existing {
        Some((_, text)) => match text.parse::<DocumentMut>() {
            Ok(d) => d,
            Err(e) => {
                print_stderr(&format!(
                    "error: cannot edit the grant: {}\n",
                    escape_terminal(&e.to_string())
                ));
                return Exit::Invalid;
            }
        },
        None => new_document(&manifest.name),
    };
    let requested_digest =
        netgrant_policy::compile::requested_digest(&manifest.name, &manifest.requested);
    set_digest(&mut doc, &requested_digest);
    let mut kept = 0usize;
    let mut removals: Vec<(Capability, String)> = Vec::new();
    let mut broad_off: Vec<(Capability, String)> = Vec::new();
    if let Some((g, _)) = &existing {
        for e in &g.entries {
            let k = (e.capability, e.target.to_string());
            match states.get(&k) {
                Some(Existing::Keep { .. }) => kept += 1,
                Some(Existing::DropBroad { .. }) => {
                    kept += 1;
                    report.line("~", k.0, &k.1, "kept; removed `broad = true` (not broad)");
                    broad_off.push(k);
                }
                Some(Existing::Stale) | None => {
                    report.line("-", k.0, &k.1, "removed: no longer requested");
                    removals.push(k);
                }
                Some(Existing::NeedsBroad { .. }) => {}
            }
        }
    }
    for c in &declined {
        match &c.subject {
            Subject::New(_) => {
                report.line("·", c.capability, &c.target, "not approved: you said no")
            }
            Subject::MarkBroad(cap, t) => {
                report.line("-", *cap, t, "removed: broad, and you said no");
                removals.push((*cap, t.clone()));
            }
        }
    }
    let mut next_position = max_position(&doc) + 1;
    for (c, note) in &approved {
        match &c.subject {
            Subject::MarkBroad(cap, t) => {
                report.line("+", *cap, t, &format!("{note}; `broad = true` added"));
                with_entry(&mut doc, *cap, t, |e| {
                    e.insert("broad", value(true));
                });
            }
            Subject::New(i) => {
                report.line("+", c.capability, &c.target, note);
                let r = &manifest.requested[*i];
                if !push_entry(&mut doc, &r.permission, c.flags.broad, next_position) {
                    return usage(&format!(
                        "cannot add a `{}` entry to this grant: `host_api` is not a table of arrays",
                        c.capability.table()
                    ));
                }
                next_position += 1;
            }
        }
    }
    for (cap, t) in &broad_off {
        with_entry(&mut doc, *cap, t, |e| {
            e.remove("broad");
        });
    }
    for (cap, t) in &removals {
        remove_entry(&mut doc, *cap, t);
    }
    let text = doc.to_string();

    // Check what we are about to write: it must compile, pinned to this
    // manifest. Anything else is a bug; write nothing.
    let out_name = args
        .output
        .as_ref()
        .map(|p| p.display().to_string())
        .unwrap_or_else(|| "grant.toml".into());
    let reparsed = Grant::parse(&out_name, &text);
    let recompiled = reparsed.value.as_ref().map(|g| compile(&manifest, Some(g)));
    // Every approved target must now be granted.
    let all_granted = |p: &netgrant_policy::Policy| {
        approved.iter().all(|(c, _)| {
            let id = c.id();
            match c.subject {
                Subject::New(_) => !p
                    .entries
                    .iter()
                    .any(|e| e.id == id && e.status == Status::NotGranted),
                Subject::MarkBroad(..) => p.granted().any(|e| e.id == id),
            }
        })
    };
    let ok = match &recompiled {
        Some(c) => {
            c.policy.as_ref().is_some_and(|p| {
                p.approved_digest.as_deref() == Some(&requested_digest) && all_granted(p)
            }) && !fatal(&c.diagnostics)
        }
        None => false,
    };
    if !ok {
        let mut d = reparsed.diagnostics;
        if let Some(c) = recompiled {
            d.extend(c.diagnostics);
        }
        print_stderr(&input::render_human(&d));
        print_stderr(
            "error: approve produced a grant that does not compile (a bug); nothing written\n",
        );
        return Exit::Invalid;
    }
    if !left_unapproved.is_empty() {
        // Entries outside --only that still lack `broad = true`: say so.
        if let Some(c) = &recompiled {
            print_stderr(&input::render_human(&c.diagnostics));
        }
    }

    // Summary, then write.
    let mut s = format!(
        "approve {} {}:\n",
        escape_terminal(&manifest.name),
        escape_terminal(&manifest.version)
    );
    report.0.sort_by_key(|(rank, _)| *rank);
    for (_, l) in &report.0 {
        s.push_str(l);
    }
    if kept > 0 {
        s.push_str(&format!(
            "  = {kept} existing entr{} kept as written\n",
            if kept == 1 { "y" } else { "ies" }
        ));
    }
    s.push_str(&format!("  approved_digest {requested_digest}\n"));
    match &args.output {
        None => {
            print_stderr(&s);
            print_stdout(&text)
        }
        Some(out) => match write_atomic(out, &text) {
            Ok(()) => {
                s.push_str(&format!(
                    "wrote {}\n",
                    escape_terminal(&out.display().to_string())
                ));
                print_stderr(&s);
                Exit::Ok
            }
            Err(e) => {
                print_stderr(&format!(
                    "error: cannot write {}: {}\n",
                    escape_terminal(&out.display().to_string()),
                    e.to_string().to_lowercase()
                ));
                Exit::Invalid
            }
        },
    }
}

/// A new grant: a header comment and `plugin`.
fn new_document(plugin: &str) -> DocumentMut {
    let mut doc = DocumentMut::new();
    doc.decor_mut().set_prefix(format!(
        "# Grant for plugin `{plugin}`, written by `netgrant approve`.\n\
         # Edit freely: `netgrant approve --grant` keeps comments and narrowed entries.\n"
    ));
    doc.insert("plugin", value(plugin));
    doc
}

/// Sets `approved_digest`, a top-level key (so it is written before the first
/// `[[…]]` table, where TOML keys belong to the root), keeping the decor of an
/// existing one.
fn set_digest(doc: &mut DocumentMut, digest: &str) {
    match doc.get_mut("approved_digest") {
        Some(item) => {
            let decor = item.as_value().map(|v| v.decor().clone());
            let mut v = toml_edit::Value::from(digest);
            if let Some(d) = decor {
                *v.decor_mut() = d;
            }
            *item = Item::Value(v);
        }
        None => {
            doc.insert("approved_digest", value(digest));
            if let Some(mut k) = doc.key_mut("approved_digest") {
                k.leaf_decor_mut().set_prefix(
                    "\n# The manifest's requested set this grant approved (`netgrant approve`).\n",
                );
            }
        }
    }
}

/// The largest table position in the document, so appended entries come last.
fn max_position(doc: &DocumentMut) -> isize {
    fn walk(t: &Table, max: &mut isize) {
        if let Some(p) = t.position() {
            *max = (*max).max(p);
        }
        for (_, item) in t.iter() {
            match item {
                Item::Table(t) => walk(t, max),
                Item::ArrayOfTables(a) => {
                    for t in a.iter() {
                        walk(t, max);
                    }
                }
                _ => {}
            }
        }
    }
    let mut max = 0;
    walk(doc.as_table(), &mut max);
    max
}

/// The canonical spelling of an entry's `url`, if it has one that parses.
fn entry_target(t: &dyn TableLike) -> Option<String> {
    let raw = t.get("url")?.as_str()?;
    Target::parse(raw).ok().map(|t| t.to_string())
}

/// Applies `f` to the entry of `cap` whose url is `target` (canonical).
fn with_entry(
    doc: &mut DocumentMut,
    cap: Capability,
    target: &str,
    f: impl FnOnce(&mut dyn TableLike),
) {
    let Some(list) = doc
        .get_mut("host_api")
        .and_then(|h| h.as_table_like_mut())
        .and_then(|h| h.get_mut(cap.as_str()))
    else {
        return;
    };
    match list {
        Item::ArrayOfTables(a) => {
            if let Some(t) = a
                .iter_mut()
                .find(|t| entry_target(*t as &dyn TableLike).as_deref() == Some(target))
            {
                f(t);
            }
        }
        Item::Value(toml_edit::Value::Array(a)) => {
            if let Some(t) = a
                .iter_mut()
                .filter_map(|v| v.as_inline_table_mut())
                .find(|t| entry_target(*t as &dyn TableLike).as_deref() == Some(target))
            {
                f(t);
                // Inline tables hold no comments; normalize the spacing an
                // edit leaves behind.
                t.fmt();
            }
        }
        _ => {}
    }
}

/// Removes the entry of `cap` whose url is `target`, with the comments above it.
fn remove_entry(doc: &mut DocumentMut, cap: Capability, target: &str) {
    let Some(list) = doc
        .get_mut("host_api")
        .and_then(|h| h.as_table_like_mut())
        .and_then(|h| h.get_mut(cap.as_str()))
    else {
        return;
    };
    match list {
        Item::ArrayOfTables(a) => {
            a.retain(|t| entry_target(t as &dyn TableLike).as_deref() != Some(target));
        }
        Item::Value(toml_edit::Value::Array(a)) => {
            a.retain(|v| {
                v.as_inline_table()
                    .map(|t| entry_target(t as &dyn TableLike).as_deref() != Some(target))
                    .unwrap_or(true)
            });
        }
        _ => {}
    }
}

fn strings<T: ToString>(it: impl IntoIterator<Item = T>) -> Array {
    it.into_iter().map(|x| x.to_string()).collect()
}

/// Appends an entry approving `p` exactly: canonical url and every field
/// explicit, so a later manifest change cannot widen it.
///
/// Returns false when the grant's layout has no place for it (a `host_api`
/// that is not a table, say); the caller then writes nothing.
fn push_entry(doc: &mut DocumentMut, p: &Permission, broad: bool, position: isize) -> bool {
    let fields: Vec<(&str, Item)> = {
        let mut v = vec![("url", value(p.target.to_string()))];
        if let Some(m) = &p.methods {
            v.push(("methods", value(strings(m.to_strings()))));
        }
        v.push(("headers", value(strings(&p.headers))));
        if p.capability == Capability::Websocket {
            v.push(("subprotocols", value(strings(&p.subprotocols))));
        }
        v.push(("networks", value(strings(&p.networks))));
        if broad {
            v.push(("broad", value(true)));
        }
        v
    };
    let host_api = doc.entry("host_api").or_insert_with(|| {
        let mut t = Table::new();
        t.set_implicit(true);
        Item::Table(t)
    });
    // An inline (`host_api = { … }`) or dotted (`host_api.request = […]`)
    // host_api takes inline arrays; a `[host_api]` table or none takes
    // `[[host_api.…]]` tables.
    let inline = match &*host_api {
        Item::Value(_) => true,
        Item::Table(t) => t.is_dotted(),
        _ => false,
    };
    let Some(host_api) = host_api.as_table_like_mut() else {
        return false;
    };
    let list = host_api.entry(p.capability.as_str()).or_insert_with(|| {
        if inline {
            Item::Value(toml_edit::Value::Array(Array::new()))
        } else {
            Item::ArrayOfTables(ArrayOfTables::new())
        }
    });
    match list {
        Item::ArrayOfTables(a) => {
            let mut t = Table::new();
            for (k, v) in fields {
                t.insert(k, v);
            }
            t.decor_mut().set_prefix("\n");
            t.set_position(Some(position));
            a.push(t);
            true
        }
        Item::Value(toml_edit::Value::Array(a)) => {
            let mut t = InlineTable::new();
            for (k, v) in fields {
                if let Ok(v) = v.into_value() {
                    t.insert(k, v);
                }
            }
            t.fmt();
            a.push(t);
            true
        }
        _ => false,
    }
}

/// `-o` may replace only the `--grant` file or a file that does not exist yet:
/// never clobber a grant whose comments and choices we did not read.
fn may_write(out: &Path, grant: Option<&Path>) -> Result<(), String> {
    if !out.exists() {
        return Ok(());
    }
    let same =
        grant.is_some_and(
            |g| match (std::fs::canonicalize(g), std::fs::canonicalize(out)) {
                (Ok(a), Ok(b)) => a == b,
                _ => false,
            },
        );
    if same {
        Ok(())
    } else {
        Err(format!(
            "{} exists and is not the --grant input; pass `--grant {}` to update it (keeping its comments and choices), or choose another -o",
            out.display(),
            out.display()
        ))
    }
}

/// Writes `text` to `path` atomically: a temporary file in the same directory,
/// flushed, then renamed over the target (keeping an existing file's mode).
/// Overwriting is intended: `may_write` has already refused any existing
/// file that is not the `--grant` input.
fn write_atomic(path: &Path, text: &str) -> std::io::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "grant.toml".into());
    let prefix = format!(".{name}.netgrant-");
    let mut builder = tempfile::Builder::new();
    builder.prefix(&prefix).suffix(".tmp");
    // A new file gets the mode any new file gets (0666 less the umask), not
    // tempfile's private 0600.
    #[cfg(unix)]
    builder
        .permissions(<std::fs::Permissions as std::os::unix::fs::PermissionsExt>::from_mode(0o666));
    let mut tmp = builder.tempfile_in(&dir).map_err(without_temp_path)?;
    tmp.write_all(text.as_bytes())?;
    tmp.as_file().sync_all()?;
    if let Ok(meta) = std::fs::metadata(path) {
        tmp.as_file().set_permissions(meta.permissions())?;
    }
    // On failure the temporary file is dropped, which removes it.
    tmp.persist(path).map(drop).map_err(|e| e.error)
}

/// `tempfile` appends ` at path "<temporary name>"` to creation errors; the
/// message names the output file instead, so drop it.
fn without_temp_path(e: std::io::Error) -> std::io::Error {
    if e.get_ref().is_none() {
        return e;
    }
    let text = e.to_string();
    match text.rsplit_once(" at path \"") {
        Some((plain, _)) => std::io::Error::new(e.kind(), plain.to_string()),
        None => e,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(manifest: &Path, out: &Path) -> ApproveArgs {
        ApproveArgs {
            manifest: manifest.to_path_buf(),
            grant: None,
            output: Some(out.to_path_buf()),
            yes: false,
            allow_broad: false,
            only: Vec::new(),
        }
    }

    fn example(name: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("../examples/{name}/plugin.toml"))
    }

    /// The atomic write leaves no temporary file, gives a new file the usual
    /// mode, keeps an existing file's mode, and names no temporary path in
    /// its errors.
    #[test]
    fn write_atomic_keeps_modes_and_cleans_up() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("grant.toml");
        write_atomic(&out, "a = 1\n").unwrap();
        assert_eq!(std::fs::read_to_string(&out).unwrap(), "a = 1\n");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let plain = dir.path().join("plain");
            std::fs::write(&plain, "").unwrap();
            let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o7777;
            assert_eq!(mode(&out), mode(&plain), "a new file gets the usual mode");
            std::fs::set_permissions(&out, std::fs::Permissions::from_mode(0o640)).unwrap();
            write_atomic(&out, "a = 2\n").unwrap();
            assert_eq!(mode(&out), 0o640, "an existing file keeps its mode");
            std::fs::remove_file(&plain).unwrap();
        }
        write_atomic(&out, "a = 3\n").unwrap();
        assert_eq!(std::fs::read_to_string(&out).unwrap(), "a = 3\n");
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["grant.toml"]);
        let e = write_atomic(&dir.path().join("missing/grant.toml"), "").unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::NotFound);
        assert!(!e.to_string().contains("at path"), "{e}");
    }

    /// The interactive path, driven with buffers: one prompt per broad,
    /// loopback or private target, in manifest order; "no" leaves a target
    /// out; "q" writes nothing.
    #[test]
    fn interactive_prompts_decide_risky_targets() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("grant.toml");
        // broad-scraper: three broad targets. Yes, no, yes.
        let mut answers = std::io::Cursor::new(&b"y\nn\nyes\n"[..]);
        let mut shown = Vec::new();
        let exit = run_with(
            &args(&example("broad-scraper"), &out),
            true,
            &mut answers,
            &mut shown,
        );
        assert_eq!(exit, Exit::Ok);
        let shown = String::from_utf8(shown).unwrap();
        assert_eq!(shown.matches("[y/N/q]").count(), 3, "{shown}");
        assert!(
            shown.contains("approve request https://*/ (broad: any host over https)?"),
            "{shown}"
        );
        assert!(
            shown.contains("reason: Fetch any page the user asks to clip"),
            "{shown}"
        );
        let grant = std::fs::read_to_string(&out).unwrap();
        assert!(grant.contains("url = \"https://*/\""), "{grant}");
        assert!(!grant.contains("github.io"), "declined: {grant}");
        assert!(grant.contains("url = \"wss://*:*/\""), "{grant}");
        assert_eq!(grant.matches("broad = true").count(), 2, "{grant}");

        // local-dev: loopback targets are asked about too; plain ones are not.
        let out2 = dir.path().join("local.toml");
        let mut answers = std::io::Cursor::new(&b"n\ny\ny\n"[..]);
        let mut shown = Vec::new();
        let exit = run_with(
            &args(&example("local-dev"), &out2),
            true,
            &mut answers,
            &mut shown,
        );
        assert_eq!(exit, Exit::Ok);
        let shown = String::from_utf8(shown).unwrap();
        assert_eq!(shown.matches("[y/N/q]").count(), 3, "{shown}");
        assert!(shown.contains("loopback"), "{shown}");
        let grant = std::fs::read_to_string(&out2).unwrap();
        assert!(!grant.contains("localhost:9000"), "declined: {grant}");
        assert!(grant.contains("127.0.0.1"), "{grant}");

        // An existing broad entry without `broad = true` is asked about as
        // itself; the consciously approved `https://*/` is not asked again.
        let out5 = dir.path().join("existing.toml");
        let mut a = args(&example("broad-scraper"), &out5);
        a.grant = Some(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../tests/fixtures/broad-scraper-unapproved.grant.toml"),
        );
        let mut answers = std::io::Cursor::new(&b"n\ny\n"[..]);
        let mut shown = Vec::new();
        assert_eq!(run_with(&a, true, &mut answers, &mut shown), Exit::Ok);
        let shown = String::from_utf8(shown).unwrap();
        assert_eq!(shown.matches("[y/N/q]").count(), 2, "{shown}");
        assert!(shown.contains("approve websocket wss://*:*/"), "{shown}");
        assert!(
            shown.contains("approve the existing grant entry request https://*.github.io/ (broad: every name under public suffix github.io)?"),
            "{shown}"
        );
        let grant = std::fs::read_to_string(&out5).unwrap();
        assert!(!grant.contains("wss://"), "declined: {grant}");
        assert_eq!(
            grant.lines().filter(|l| *l == "broad = true").count(),
            2,
            "{grant}"
        );
        assert!(
            grant.contains("# Left without `broad = true` on purpose"),
            "{grant}"
        );

        // End of input is "no"; quit writes nothing and trips the gate.
        let out3 = dir.path().join("quit.toml");
        let mut answers = std::io::Cursor::new(&b"y\nq\n"[..]);
        let exit = run_with(
            &args(&example("broad-scraper"), &out3),
            true,
            &mut answers,
            &mut Vec::new(),
        );
        assert_eq!(exit, Exit::Deny);
        assert!(!out3.exists());
        let out4 = dir.path().join("eof.toml");
        let exit = run_with(
            &args(&example("broad-scraper"), &out4),
            true,
            &mut std::io::Cursor::new(&b""[..]),
            &mut Vec::new(),
        );
        assert_eq!(exit, Exit::Ok);
        let grant = std::fs::read_to_string(&out4).unwrap();
        assert!(!grant.contains("[["), "nothing approved: {grant}");
        assert!(grant.contains("approved_digest = \"sha256:"), "{grant}");
    }

    #[test]
    fn prompt_answers() {
        let cases: &[(&str, Answer)] = &[
            ("y\n", Answer::Yes),
            ("YES\n", Answer::Yes),
            ("n\n", Answer::No),
            ("\n", Answer::No),
            ("", Answer::No),
            ("q\n", Answer::Quit),
            ("maybe\ny\n", Answer::Yes),
            ("a\nb\nc\ny\n", Answer::No),
        ];
        for (input, want) in cases {
            let mut r = std::io::Cursor::new(input.as_bytes());
            let mut w = Vec::new();
            let got = ask(&mut r, &mut w, "approve it?").unwrap();
            assert_eq!(got, *want, "{input:?}");
            let shown = String::from_utf8(w).unwrap();
            assert!(shown.starts_with("approve it? [y/N/q] "), "{shown}");
        }
    }
}
