//! `netgrant approve`: write a grant approving what a manifest requests.
//!
//! An existing grant is edited, not regenerated (`toml_edit`), so the user's
//! comments, narrowings and other choices survive. Broad access is never
//! approved without a conscious yes: a prompt in a terminal, or
//! `--allow-broad`. Every entry approve writes states every field explicitly
//! (`methods`, `headers`, `subprotocols`, `networks`), so a later manifest
//! change can never widen it silently.
//!
//! Credentials are never bound by default: a binding names a secret in the
//! host's store, which only the user knows, so it comes from
//! `--bind-credential NAME=SECRET_REF`; in a terminal each binding is still
//! asked about (it sends a secret), and without a terminal the flag itself is
//! the approval. Declared credentials left unbound are listed in the summary.
//!
//! A run is four steps: the plan ([`netgrant_policy::approve_plan`]: what to
//! approve, ask about, keep, change or remove — pure), `decide` (the
//! prompts), `apply` (the `toml_edit` changes) and `verify` (the recompile
//! self-check), then the summary and the write.

use crate::input;
use crate::output::{print_stderr, print_stdout, usage};
use crate::Exit;
use clap::Args;
use netgrant_policy::approve_plan::{self, Action, Candidate, Plan, Subject};
use netgrant_policy::diagnostics::Severity;
use netgrant_policy::ir::Status;
use netgrant_policy::redact::escape_terminal;
use netgrant_policy::Permission;
use netgrant_policy::{
    compile, Capability, CredentialUse, Diagnostic, Grant, Manifest, SecretRef, Target,
};
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
    /// Bind the declared credential NAME to SECRET_REF (a name in the host's
    /// secret store, never a value) on every entry this run approves or keeps
    /// whose request declares NAME (repeatable). Asked about in a terminal.
    #[arg(long, value_name = "NAME=SECRET_REF")]
    pub bind_credential: Vec<String>,
}

/// One binding to write: on the grant entry (capability, canonical target),
/// credential `name` → `secret_ref`.
struct Binding {
    capability: Capability,
    target: String,
    name: String,
    secret_ref: SecretRef,
    /// The review sentence (`sends secret … to …`).
    text: String,
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

/// The question for a candidate that needs a conscious yes.
fn question(c: &Candidate) -> String {
    let what = match c.subject {
        Subject::New(_) => "",
        Subject::MarkBroad => "the existing grant entry ",
    };
    let mut q = format!(
        "approve {what}{} {} ({})?",
        c.capability,
        escape_terminal(&c.target),
        c.risk().map(|r| r.to_string()).unwrap_or_default()
    );
    if let Some(r) = &c.reason {
        q.push_str(&format!("\n  reason: {}\n ", escape_terminal(r)));
    }
    q
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

/// `approve` with the prompt streams given (tests drive it with buffers):
/// read the inputs, [`plan`](approve_plan::plan), [`decide`] (ask), [`apply`]
/// (edit the TOML), [`verify`] (recompile), then report and write.
pub fn run_with<R: BufRead, W: Write>(
    args: &ApproveArgs,
    interactive: bool,
    answers: &mut R,
    prompt: &mut W,
) -> Exit {
    let steps = |answers: &mut R, prompt: &mut W| -> Result<Exit, Exit> {
        let inputs = read_inputs(args)?;
        let plan = make_plan(&inputs)?;
        let decided = decide(&plan, args.allow_broad, interactive, answers, prompt)?;
        let (bindings, unbound) =
            decide_bindings(&inputs, &plan, &decided, interactive, answers, prompt)?;
        let (text, mut report) = apply(&inputs, &plan, &decided)?;
        let text = apply_bindings(&text, &bindings, &mut report, &unbound)?;
        verify(
            &inputs.manifest,
            &plan,
            &decided,
            &text,
            args.output.as_deref(),
        )?;
        verify_bindings(&inputs.manifest, &bindings, &text)?;
        Ok(finish(args, &inputs.manifest, &plan, report, &text))
    };
    steps(answers, prompt).unwrap_or_else(|e| e)
}

/// What `approve` read: the manifest, the grant to update (as a model and as
/// text to edit) and the `--only` patterns.
struct Inputs {
    manifest: Manifest,
    existing: Option<(Grant, String)>,
    only: Vec<Target>,
    /// `--bind-credential` pairs, checked.
    binds: Vec<(String, SecretRef)>,
}

/// Reads and checks the inputs; `Err` is the exit code after the problem was
/// reported. Refuses a clobbering `-o` and a useless `--only` before asking
/// anything.
fn read_inputs(args: &ApproveArgs) -> Result<Inputs, Exit> {
    let limit = netgrant_policy::MAX_FILE_BYTES as u64;
    // The manifest.
    let mname = args.manifest.display().to_string();
    let manifest = match input::read(&args.manifest, limit) {
        Ok(bytes) => {
            let parsed = Manifest::parse_bytes(&mname, &bytes);
            print_stderr(&input::render_human(&parsed.diagnostics));
            parsed.value.ok_or(Exit::Invalid)?
        }
        Err(d) => {
            print_stderr(&input::render_human(&[d]));
            return Err(Exit::Invalid);
        }
    };
    // The existing grant, as a model and as an editable document.
    let mut existing: Option<(Grant, String)> = None;
    if let Some(gp) = &args.grant {
        let gname = gp.display().to_string();
        let bytes = input::read(gp, limit).map_err(|d| {
            print_stderr(&input::render_human(&[d]));
            Exit::Invalid
        })?;
        let parsed = Grant::parse_bytes(&gname, &bytes);
        print_stderr(&input::render_human(&parsed.diagnostics));
        let g = parsed.value.ok_or(Exit::Invalid)?;
        // parse_bytes succeeded, so the bytes are UTF-8.
        existing = Some((g, String::from_utf8_lossy(&bytes).into_owned()));
    }
    // Refuse a clobbering -o before asking anything.
    if let Some(out) = &args.output {
        may_write(out, args.grant.as_deref()).map_err(|msg| usage(&msg))?;
    }
    // --only patterns.
    let mut only = Vec::new();
    for raw in &args.only {
        match Target::parse(raw) {
            Ok(t) => only.push(t),
            Err(e) => {
                return Err(usage(&format!(
                    "--only {}: {} ({})",
                    netgrant_policy::diagnostics::quote(raw),
                    e.message,
                    e.help
                )))
            }
        }
    }
    for (raw, t) in args.only.iter().zip(&only) {
        if !manifest
            .requested
            .iter()
            .any(|r| t.contains(&r.permission.target))
        {
            return Err(usage(&format!(
                "--only {} matches no requested target; a pattern selects the requested targets it contains (same scheme, host inside, port and path inside)",
                netgrant_policy::diagnostics::quote(raw)
            )));
        }
    }
    // --bind-credential NAME=SECRET_REF: a declared name, a valid reference
    // (never quoted back: a malformed one may be a pasted value).
    let mut binds = Vec::new();
    for raw in &args.bind_credential {
        let Some((name, r)) = raw.split_once('=') else {
            return Err(usage("--bind-credential takes NAME=SECRET_REF"));
        };
        if !manifest
            .requested
            .iter()
            .any(|q| q.credentials.iter().any(|c| c.name == name))
        {
            return Err(usage(&format!(
                "--bind-credential: no requested target declares a credential {}",
                netgrant_policy::diagnostics::quote(name)
            )));
        }
        let secret_ref =
            SecretRef::parse(r).map_err(|e| usage(&format!("--bind-credential {name}=…: {e}")))?;
        binds.push((name.to_string(), secret_ref));
    }
    Ok(Inputs {
        manifest,
        existing,
        only,
        binds,
    })
}

/// (b2) The bindings to write: for each `--bind-credential`, every entry
/// that will be granted (approved now, or an existing one kept) whose request
/// declares the name and that does not bind it yet. In a terminal each is
/// asked about; otherwise the flag is the approval. Returns them, and the
/// declared credentials left unbound (for the summary).
fn decide_bindings<R: BufRead, W: Write>(
    inputs: &Inputs,
    plan: &Plan,
    decided: &Decided,
    interactive: bool,
    answers: &mut R,
    prompt: &mut W,
) -> Result<(Vec<Binding>, Vec<String>), Exit> {
    // (capability, target, declared credentials, already bound names)
    let mut entries: Vec<(
        Capability,
        String,
        Vec<netgrant_policy::Credential>,
        Vec<String>,
    )> = Vec::new();
    for (c, _) in &decided.approved {
        if let Subject::New(i) = c.subject {
            let r = &inputs.manifest.requested[i];
            entries.push((
                c.capability,
                c.target.clone(),
                r.credentials.clone(),
                Vec::new(),
            ));
        }
    }
    if let Some((g, _)) = &inputs.existing {
        let kept: Vec<(Capability, &str)> = plan
            .existing
            .iter()
            .filter(|e| matches!(e.action, Action::Keep | Action::DropBroad | Action::Decide))
            .map(|e| (e.capability, e.target.as_str()))
            .collect();
        if let Some(p) = compile(&inputs.manifest, Some(g)).policy {
            for e in p.entries().iter().filter(|e| e.status == Status::Granted) {
                let t = e.permission.target.to_string();
                if !kept.contains(&(e.capability(), t.as_str())) {
                    continue;
                }
                let declared: Vec<_> = e.declared_credentials().cloned().collect();
                let bound: Vec<String> = e
                    .credentials
                    .iter()
                    .filter(|c| c.is_granted())
                    .map(|c| c.credential.name.clone())
                    .collect();
                entries.push((e.capability(), t, declared, bound));
            }
        }
    }
    let mut bindings = Vec::new();
    let mut unbound = Vec::new();
    for (cap, target, declared, bound) in &entries {
        for d in declared {
            if bound.contains(&d.name) {
                continue;
            }
            let Some((_, r)) = inputs.binds.iter().find(|(n, _)| *n == d.name) else {
                unbound.push(format!(
                    "{cap}:{target}: credential `{}` not bound (--bind-credential {}=SECRET_REF binds it)",
                    d.name, d.name
                ));
                continue;
            };
            let ec = netgrant_policy::EntryCredential {
                credential: d.clone(),
                secret_ref: Some(r.clone()),
            };
            let text = CredentialUse::from_entry(&ec, target)
                .render(&|s| format!("`{}`", escape_terminal(s)));
            if interactive {
                let q = format!(
                    "bind credential on {cap} {}: {text}?",
                    escape_terminal(target)
                );
                match ask(answers, prompt, &q) {
                    Ok(Answer::Yes) => {}
                    Ok(Answer::No) => {
                        unbound.push(format!(
                            "{cap}:{target}: credential `{}` not bound: you said no",
                            d.name
                        ));
                        continue;
                    }
                    Ok(Answer::Quit) | Err(_) => {
                        print_stderr("approve: stopped; nothing written\n");
                        return Err(Exit::Deny);
                    }
                }
            }
            bindings.push(Binding {
                capability: *cap,
                target: target.clone(),
                name: d.name.clone(),
                secret_ref: r.clone(),
                text,
            });
        }
    }
    Ok((bindings, unbound))
}

/// (c2) Writes the bindings into the edited grant: `credentials = { NAME =
/// "SECRET_REF" }` on each entry (added to an existing table).
fn apply_bindings(
    text: &str,
    bindings: &[Binding],
    report: &mut Report,
    unbound: &[String],
) -> Result<String, Exit> {
    for u in unbound {
        report.0.push((3, format!("  · {}\n", escape_terminal(u))));
    }
    if bindings.is_empty() {
        return Ok(text.to_string());
    }
    let mut doc = text.parse::<DocumentMut>().map_err(|_| {
        print_stderr("error: approve produced a grant it cannot edit (a bug); nothing written\n");
        Exit::Invalid
    })?;
    for b in bindings {
        with_entry(&mut doc, b.capability, &b.target, |e| {
            let item =
                e.entry("credentials")
                    .or_insert(Item::Value(toml_edit::Value::InlineTable(
                        InlineTable::new(),
                    )));
            if let Some(t) = item.as_table_like_mut() {
                t.insert(&b.name, value(b.secret_ref.as_str()));
            }
        });
        report.0.push((
            0,
            format!(
                "  + {:<9}  {}  SECRET: {}\n",
                b.capability.as_str(),
                escape_terminal(&b.target),
                b.text
            ),
        ));
    }
    Ok(doc.to_string())
}

/// (d2) Every binding written is in force: the entry is granted and binds
/// the credential to that reference. Anything else is a bug; write nothing.
fn verify_bindings(manifest: &Manifest, bindings: &[Binding], text: &str) -> Result<(), Exit> {
    if bindings.is_empty() {
        return Ok(());
    }
    let policy = Grant::parse("grant.toml", text)
        .value
        .and_then(|g| compile(manifest, Some(&g)).policy);
    let ok = policy.is_some_and(|p| {
        bindings.iter().all(|b| {
            p.entries().iter().any(|e| {
                e.status == Status::Granted
                    && e.capability() == b.capability
                    && e.permission.target.to_string() == b.target
                    && e.credentials.iter().any(|c| {
                        c.credential.name == b.name && c.secret_ref.as_ref() == Some(&b.secret_ref)
                    })
            })
        })
    });
    if ok {
        Ok(())
    } else {
        print_stderr("error: approve wrote a credential binding that does not take effect (a bug); nothing written\n");
        Err(Exit::Invalid)
    }
}

/// (a) The plan. Fatal problems across the two files (duplicate targets, a
/// grant for another plugin) stop here; entry-level ones are what approve
/// fixes.
fn make_plan(inputs: &Inputs) -> Result<Plan, Exit> {
    let grant = inputs.existing.as_ref().map(|(g, _)| g);
    let base = compile(&inputs.manifest, grant);
    if fatal(&base.diagnostics) {
        print_stderr(&input::render_human(&base.diagnostics));
        return Err(Exit::Invalid);
    }
    approve_plan::plan(&inputs.manifest, grant, &inputs.only).map_err(
        |approve_plan::PlanError::DoesNotCompile| {
            print_stderr(&input::render_human(&base.diagnostics));
            Exit::Invalid
        },
    )
}

/// The candidates approved (with the note the summary shows for each) and
/// declined.
struct Decided<'p> {
    approved: Vec<(&'p Candidate, String)>,
    declined: Vec<&'p Candidate>,
}

/// (b) Decides every candidate: no risk is approved; broad with
/// `--allow-broad` is approved; in a terminal the user is asked; otherwise
/// broad is refused (nothing is written, exit 1) and loopback/private are
/// approved and reported. `q` stops with nothing written.
fn decide<'p, R: BufRead, W: Write>(
    plan: &'p Plan,
    allow_broad: bool,
    interactive: bool,
    answers: &mut R,
    prompt: &mut W,
) -> Result<Decided<'p>, Exit> {
    let mut approved = Vec::new();
    let mut declined = Vec::new();
    let mut refused: Vec<&Candidate> = Vec::new();
    for c in &plan.candidates {
        let Some(risk) = c.risk() else {
            approved.push((c, String::new()));
            continue;
        };
        if c.flags.broad && allow_broad {
            approved.push((c, format!("{risk} (--allow-broad)")));
        } else if interactive {
            match ask(answers, prompt, &question(c)) {
                Ok(Answer::Yes) => approved.push((c, format!("{risk} (you said yes)"))),
                Ok(Answer::No) => declined.push(c),
                Ok(Answer::Quit) | Err(_) => {
                    print_stderr("approve: stopped; nothing written\n");
                    return Err(Exit::Deny);
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
            s.push_str(&format!(
                "    {}  ({})\n",
                escape_terminal(&c.id()),
                c.broad_reason.as_deref().unwrap_or_default()
            ));
        }
        s.push_str("  help: pass --allow-broad to approve them (written with `broad = true`), run approve in a terminal to be asked, or select other targets with --only PATTERN\nnothing written\n");
        print_stderr(&s);
        return Err(Exit::Deny);
    }
    Ok(Decided { approved, declined })
}

/// (c) Edits the existing grant (or starts one) as planned and decided; the
/// new text and the summary lines.
fn apply(inputs: &Inputs, plan: &Plan, decided: &Decided) -> Result<(String, Report), Exit> {
    let manifest = &inputs.manifest;
    let mut report = Report(Vec::new());
    for u in &plan.unselected {
        report.line("·", u.capability, &u.target, "not approved: outside --only");
    }
    let mut doc = match &inputs.existing {
        Some((_, text)) => text.parse::<DocumentMut>().map_err(|e| {
            print_stderr(&format!(
                "error: cannot edit the grant: {}\n",
                escape_terminal(&e.to_string())
            ));
            Exit::Invalid
        })?,
        None => new_document(&manifest.name),
    };
    set_digest(&mut doc, &plan.requested_digest);
    let mut removals: Vec<(Capability, &str)> = Vec::new();
    let mut broad_off: Vec<(Capability, &str)> = Vec::new();
    for e in &plan.existing {
        let (cap, t) = (e.capability, e.target.as_str());
        match e.action {
            Action::LeaveUnapproved => report.line(
                "·",
                cap,
                t,
                "left as written (outside --only): still lacks `broad = true`",
            ),
            Action::DropBroad => {
                report.line("~", cap, t, "kept; removed `broad = true` (not broad)");
                broad_off.push((cap, t));
            }
            Action::Remove => {
                report.line("-", cap, t, "removed: no longer requested");
                removals.push((cap, t));
            }
            Action::Keep | Action::Decide => {}
        }
    }
    for c in &decided.declined {
        match c.subject {
            Subject::New(_) => {
                report.line("·", c.capability, &c.target, "not approved: you said no")
            }
            Subject::MarkBroad => {
                report.line(
                    "-",
                    c.capability,
                    &c.target,
                    "removed: broad, and you said no",
                );
                removals.push((c.capability, &c.target));
            }
        }
    }
    let mut next_position = max_position(&doc) + 1;
    for (c, note) in &decided.approved {
        match c.subject {
            Subject::MarkBroad => {
                report.line(
                    "+",
                    c.capability,
                    &c.target,
                    &format!("{note}; `broad = true` added"),
                );
                with_entry(&mut doc, c.capability, &c.target, |e| {
                    e.insert("broad", value(true));
                });
            }
            Subject::New(i) => {
                report.line("+", c.capability, &c.target, note);
                let r = &manifest.requested[i];
                if !push_entry(&mut doc, &r.permission, c.flags.broad, next_position) {
                    return Err(usage(&format!(
                        "cannot add a `{}` entry to this grant: `host_api` is not a table of arrays",
                        c.capability.table()
                    )));
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
    Ok((doc.to_string(), report))
}

/// (d) Checks what we are about to write: it must compile, pinned to this
/// manifest, with every approved target granted. Anything else is a bug;
/// write nothing. Entries left outside --only that still lack
/// `broad = true` are reported.
fn verify(
    manifest: &Manifest,
    plan: &Plan,
    decided: &Decided,
    text: &str,
    output: Option<&Path>,
) -> Result<(), Exit> {
    let out_name = output
        .map(|p| p.display().to_string())
        .unwrap_or_else(|| "grant.toml".into());
    let reparsed = Grant::parse(&out_name, text);
    let recompiled = reparsed.value.as_ref().map(|g| compile(manifest, Some(g)));
    let all_granted = |p: &netgrant_policy::Policy| {
        decided.approved.iter().all(|(c, _)| {
            let id = c.id();
            match c.subject {
                Subject::New(_) => !p
                    .entries
                    .iter()
                    .any(|e| e.id == id && e.status == Status::NotGranted),
                Subject::MarkBroad => p.granted().any(|e| e.id == id),
            }
        })
    };
    let ok = recompiled.as_ref().is_some_and(|c| {
        c.policy.as_ref().is_some_and(|p| {
            p.approved_digest.as_deref() == Some(&plan.requested_digest) && all_granted(p)
        }) && !fatal(&c.diagnostics)
    });
    if !ok {
        let mut d = reparsed.diagnostics;
        if let Some(c) = recompiled {
            d.extend(c.diagnostics);
        }
        print_stderr(&input::render_human(&d));
        print_stderr(
            "error: approve produced a grant that does not compile (a bug); nothing written\n",
        );
        return Err(Exit::Invalid);
    }
    if plan.leaves_unapproved() {
        // Entries outside --only that still lack `broad = true`: say so.
        if let Some(c) = &recompiled {
            print_stderr(&input::render_human(&c.diagnostics));
        }
    }
    Ok(())
}

/// The summary on stderr, then the grant: to standard output, or written
/// atomically to `-o`.
fn finish(
    args: &ApproveArgs,
    manifest: &Manifest,
    plan: &Plan,
    mut report: Report,
    text: &str,
) -> Exit {
    let mut s = format!(
        "approve {} {}:\n",
        escape_terminal(&manifest.name),
        escape_terminal(&manifest.version)
    );
    report.0.sort_by_key(|(rank, _)| *rank);
    for (_, l) in &report.0 {
        s.push_str(l);
    }
    let kept = plan.kept();
    if kept > 0 {
        s.push_str(&format!(
            "  = {kept} existing entr{} kept as written\n",
            if kept == 1 { "y" } else { "ies" }
        ));
    }
    s.push_str(&format!("  approved_digest {}\n", plan.requested_digest));
    match &args.output {
        None => {
            print_stderr(&s);
            print_stdout(text)
        }
        Some(out) => match write_atomic(out, text) {
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
            bind_credential: Vec::new(),
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

    /// A binding is asked about in a terminal: "no" leaves the credential
    /// unbound (and says so), "yes" writes it; without `--bind-credential`
    /// nothing is bound and nothing is asked.
    #[test]
    fn credential_bindings_are_asked_about() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("grant.toml");
        let mut a = args(&example("discord-bridge"), &out);
        a.bind_credential = vec!["bot-token=discord/bot".into()];
        // The loopback target (yes), then the two bindings (no, yes).
        let mut answers = std::io::Cursor::new(
            &b"y
n
y
"[..],
        );
        let mut shown = Vec::new();
        assert_eq!(run_with(&a, true, &mut answers, &mut shown), Exit::Ok);
        let shown = String::from_utf8(shown).unwrap();
        assert_eq!(shown.matches("bind credential on").count(), 2, "{shown}");
        assert!(shown.contains("sends secret `discord/bot`"), "{shown}");
        let g = std::fs::read_to_string(&out).unwrap();
        // One of the two bindings was declined.
        assert_eq!(g.matches("bot-token = \"discord/bot\"").count(), 1, "{g}");
        // Without the flag: no binding question, nothing bound.
        let out = dir.path().join("plain.toml");
        let a = args(&example("discord-bridge"), &out);
        let mut answers = std::io::Cursor::new(
            &b"y
"[..],
        );
        let mut shown = Vec::new();
        assert_eq!(run_with(&a, true, &mut answers, &mut shown), Exit::Ok);
        let shown = String::from_utf8(shown).unwrap();
        assert!(!shown.contains("bind credential"), "{shown}");
        assert!(!std::fs::read_to_string(&out)
            .unwrap()
            .contains("credentials"));
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
