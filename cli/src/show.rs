//! `netgrant show`: the review view. Broad access first and marked, then
//! targets a secret is sent to, each credential spelled out; every
//! plugin-written string escaped for the output medium.

use crate::input;
use crate::output::{print_stderr, print_stdout, usage};
use crate::Exit;
use clap::ValueEnum;
use netgrant_policy::broad_reason_ir;
use netgrant_policy::idn::host_display;
use netgrant_policy::ir::{Credential, Entry, Policy, Status};
use netgrant_policy::redact::{escape_markdown, escape_markdown_code, escape_terminal};
use netgrant_policy::CredentialUse;
use netgrant_policy::Drift;
use serde_json::json;
use std::path::Path;

/// Output format for `show`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ShowFormat {
    /// A review table for a terminal.
    Human,
    /// One JSON document.
    Json,
    /// Markdown, for a pull-request comment.
    Markdown,
}

/// At most this many non-broad rows are listed in human and markdown output;
/// the rest are summarized by count. Broad rows, and rows that send a secret,
/// are always listed.
const MAX_ROWS: usize = 200;
/// Target column width.
const TARGET_WIDTH: usize = 48;

/// Runs `show`.
pub fn run(input_path: &Path, grant: Option<&Path>, format: ShowFormat) -> Exit {
    let loaded = if input::looks_like_ir(input_path) {
        if grant.is_some() {
            return usage("--grant applies to a manifest; an IR already contains its grant");
        }
        input::load_ir(input_path)
    } else {
        input::load_manifest_and_grant(input_path, grant)
    };
    print_stderr(&input::render_human(&loaded.diagnostics));
    if loaded.has_fatal() {
        return Exit::Invalid;
    }
    let Some(policy) = loaded.policy else {
        return Exit::Invalid;
    };
    // Pinned-grant drift, with the affected entries named (exact about unset
    // grant fields only when the grant itself is at hand, not from an IR).
    let drift = netgrant_policy::drift(&policy, loaded.grant.as_ref());
    let out = match format {
        ShowFormat::Human => human(&policy, drift.as_ref()),
        ShowFormat::Json => {
            let mut s =
                serde_json::to_string_pretty(&json_view(&policy, drift.as_ref())).expect("json");
            s.push('\n');
            s
        }
        ShowFormat::Markdown => markdown(&policy, drift.as_ref()),
    };
    print_stdout(&out)
}

/// Review order: broad first, then targets a secret is sent to, then
/// loopback/private, then the rest; granted before not granted; then
/// capability and target.
fn ordered(p: &Policy) -> Vec<&Entry> {
    let mut v: Vec<&Entry> = p.entries.iter().collect();
    v.sort_by_key(|e| {
        (
            !e.flags.broad,
            !sends_secret(e),
            !(e.flags.loopback || e.flags.private || host_display(&e.host).confusable.is_some()),
            e.status,
            e.capability,
            e.target.clone(),
        )
    });
    v
}

/// The entry is granted and binds at least one credential: the host sends a
/// secret to its target.
pub(crate) fn sends_secret(e: &Entry) -> bool {
    e.status == Status::Granted && e.credentials.iter().any(|c| c.status == Status::Granted)
}

/// A credential is sent (its own status; a `not_granted` entry binds none).
fn credential_sent(e: &Entry, c: &Credential) -> bool {
    e.status == Status::Granted && c.status == Status::Granted
}

/// The review sentence for one credential of an entry
/// ([`CredentialUse::render`]), with code spans for a terminal.
pub(crate) fn credential_text_terminal(e: &Entry, c: &Credential) -> String {
    CredentialUse::from_ir(c, &e.target).render(&|s| format!("`{}`", escape_terminal(s)))
}

/// As [`credential_text_terminal`], for Markdown.
pub(crate) fn credential_text_markdown(e: &Entry, c: &Credential) -> String {
    CredentialUse::from_ir(c, &e.target).render(&|s| format!("`{}`", escape_markdown_code(s)))
}

/// As [`credential_text_terminal`], unescaped (JSON carries it as a string).
fn credential_text_plain(e: &Entry, c: &Credential) -> String {
    CredentialUse::from_ir(c, &e.target).render(&|s| format!("`{s}`"))
}

/// Credentials sent (granted entry, bound) and declared but not bound, over
/// the granted entries.
fn credential_counts(p: &Policy) -> (usize, usize) {
    let mut sent = 0;
    let mut unbound = 0;
    for e in p.granted() {
        for c in &e.credentials {
            if credential_sent(e, c) {
                sent += 1;
            } else {
                unbound += 1;
            }
        }
    }
    (sent, unbound)
}

/// Why an entry is broad, in the policy crate's wording
/// ([`netgrant_policy::broad_reason_ir`]), judged on the entry's own
/// (effective) target and networks.
fn broad_why(e: &Entry) -> String {
    broad_reason_ir(&e.target, &e.networks).unwrap_or_else(|| "broad".into())
}

/// The risk summary: a head (counts) and the risky parts.
fn risk_parts(p: &Policy) -> (String, Vec<String>) {
    let granted: Vec<&Entry> = p.granted().collect();
    let mut parts = Vec::new();
    let broad: Vec<&&Entry> = granted.iter().filter(|e| e.flags.broad).collect();
    if !broad.is_empty() {
        let mut whys: Vec<String> = broad.iter().map(|e| broad_why(e)).collect();
        whys.sort();
        whys.dedup();
        parts.push(format!(
            "{} broad target{} ({})",
            broad.len(),
            s(broad.len()),
            whys.join("; ")
        ));
    }
    let (sent, unbound) = credential_counts(p);
    if sent > 0 {
        let mut refs: Vec<&str> = granted
            .iter()
            .flat_map(|e| e.credentials.iter())
            .filter_map(|c| c.secret_ref.as_deref())
            .collect();
        refs.sort_unstable();
        refs.dedup();
        parts.push(format!(
            "{sent} credential{} sent (secret{} {})",
            s(sent),
            s(refs.len()),
            refs.join(", ")
        ));
    }
    if unbound > 0 {
        parts.push(format!(
            "{unbound} credential{} declared but not bound",
            s(unbound)
        ));
    }
    let lo = granted.iter().filter(|e| e.flags.loopback).count();
    if lo > 0 {
        parts.push(format!("{lo} loopback target{}", s(lo)));
    }
    let pr = granted.iter().filter(|e| e.flags.private).count();
    if pr > 0 {
        parts.push(format!("{pr} private-network target{}", s(pr)));
    }
    let ngb = p
        .entries
        .iter()
        .filter(|e| e.status == Status::NotGranted && e.flags.broad)
        .count();
    if ngb > 0 {
        parts.push(format!(
            "{ngb} broad target{} requested but not granted",
            s(ngb)
        ));
    }
    let lookalike = p
        .entries
        .iter()
        .filter(|e| host_display(&e.host).confusable.is_some())
        .count();
    if lookalike > 0 {
        parts.push(format!(
            "{lookalike} host{} flagged as a possible look-alike",
            s(lookalike)
        ));
    }
    let ng = p.entries.len() - granted.len();
    let head = format!("{} granted, {ng} not granted", granted.len());
    let ig = p.ignored.len();
    let mut tail = String::new();
    if ig > 0 {
        tail = format!(
            ", {ig} ignored grant entr{}",
            if ig == 1 { "y" } else { "ies" }
        );
    }
    (format!("{head}{tail}"), parts)
}

/// The one-line risk summary.
pub fn risk_summary(p: &Policy) -> String {
    let (head, parts) = risk_parts(p);
    if parts.is_empty() {
        format!("{head}; no broad, loopback or private access granted")
    } else {
        format!("{head}; {}", parts.join(", "))
    }
}

fn s(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

/// Truncates a canonical target in the middle of its path, never inside
/// scheme, host or port.
pub(crate) fn truncate_target(t: &str, max: usize) -> String {
    if t.chars().count() <= max {
        return t.to_string();
    }
    let after_scheme = t.find("://").map(|i| i + 3).unwrap_or(0);
    let path_start = t[after_scheme..]
        .find('/')
        .map(|i| i + after_scheme)
        .unwrap_or(t.len());
    let head = &t[..path_start];
    let path: Vec<char> = t[path_start..].chars().collect();
    let room = max.saturating_sub(head.chars().count() + 1);
    if room < 4 {
        let keep: String = path.iter().take(1).collect();
        return format!("{head}{keep}…");
    }
    let front: String = path.iter().take(room / 2).collect();
    let back: String = path[path.len() - (room - room / 2)..].iter().collect();
    format!("{head}{front}…{back}")
}

fn methods(e: &Entry) -> String {
    match &e.methods {
        None => "-".into(),
        Some(m) => m.join(","),
    }
}

fn flags(e: &Entry) -> String {
    let n = e.flags.names();
    if n.is_empty() {
        "-".into()
    } else {
        n.join(",")
    }
}

fn status_word(e: &Entry) -> &'static str {
    match e.status {
        Status::Granted => "granted",
        Status::NotGranted => "not granted",
    }
}

fn human(p: &Policy, drift: Option<&Drift>) -> String {
    let mut o = String::new();
    o.push_str(&format!(
        "plugin {} {}\n",
        escape_terminal(&p.plugin.name),
        escape_terminal(&p.plugin.version)
    ));
    o.push_str(&format!("  requested_digest  {}\n", p.requested_digest));
    o.push_str(&format!("  digest            {}\n", p.digest));
    match &p.approved_digest {
        None => o.push_str("  approved_digest   (none: grant not pinned to a manifest)\n"),
        Some(a) if *a == p.requested_digest => {
            o.push_str("  approved_digest   matches requested_digest\n")
        }
        Some(a) => {
            o.push_str(&format!(
                "  approved_digest   {a}\n  ⚠ the manifest changed since the grant was approved; entries apply only as far as the new requests contain them\n"
            ));
            for line in drift_lines(drift) {
                o.push_str(&format!("      {}\n", escape_terminal(&line)));
            }
        }
    }
    let (head, parts) = risk_parts(p);
    o.push_str(&format!("risk: {head}\n"));
    if parts.is_empty() {
        o.push_str("  no broad, loopback or private access granted\n");
    }
    for part in parts {
        o.push_str(&format!("  ! {part}\n"));
    }
    o.push('\n');
    o.push_str(&format!(
        "   {:<11}  {:<9}  {:<w$}  {:<12}  {}\n",
        "STATUS",
        "CAP",
        "TARGET",
        "METHODS",
        "FLAGS",
        w = TARGET_WIDTH
    ));
    let rows = ordered(p);
    let mut shown = 0usize;
    let mut hidden = 0usize;
    for e in rows {
        if !e.flags.broad && !sends_secret(e) && shown >= MAX_ROWS {
            hidden += 1;
            continue;
        }
        shown += 1;
        let mark = if e.flags.broad {
            "!!"
        } else if sends_secret(e) {
            " $"
        } else if e.flags.loopback || e.flags.private {
            " ~"
        } else {
            "  "
        };
        let target = escape_terminal(&truncate_target(&e.target, TARGET_WIDTH));
        o.push_str(&format!(
            "{mark} {:<11}  {:<9}  {:<w$}  {:<12}  {}\n",
            status_word(e),
            e.capability.as_str(),
            target,
            methods(e),
            flags(e),
            w = TARGET_WIDTH
        ));
        if e.flags.broad {
            o.push_str(&format!("      BROAD: {}\n", broad_why(e)));
        }
        for c in &e.credentials {
            let label = if credential_sent(e, c) {
                "SECRET: "
            } else {
                ""
            };
            o.push_str(&format!(
                "      {label}{}\n",
                credential_text_terminal(e, c)
            ));
        }
        let idn = host_display(&e.host);
        if let Some(u) = &idn.unicode {
            o.push_str(&format!(
                "      host {} (Unicode form)\n",
                escape_terminal(u)
            ));
        }
        if let Some(why) = &idn.confusable {
            o.push_str(&format!(
                "      ⚠ possible look-alike host: {}\n",
                escape_terminal(why)
            ));
        }
        if let Some(n) = &e.narrows {
            o.push_str(&format!(
                "      narrows {}\n",
                escape_terminal(&narrows_text(e, n))
            ));
        }
        if !e.networks.is_empty() {
            o.push_str(&format!("      networks {}\n", e.networks.join(", ")));
        }
        if !e.headers.is_empty() {
            o.push_str(&format!(
                "      headers {}\n",
                escape_terminal(&e.headers.join(", "))
            ));
        }
        if !e.subprotocols.is_empty() {
            o.push_str(&format!(
                "      subprotocols {}\n",
                escape_terminal(&e.subprotocols.join(", "))
            ));
        }
        if let Some(r) = &e.reason {
            o.push_str(&format!("      reason: {}\n", escape_terminal(r)));
        }
    }
    if hidden > 0 {
        o.push_str(&format!(
            "   … and {hidden} more entries (none broad); use --format json for all\n"
        ));
    }
    if !p.ignored.is_empty() {
        o.push_str("\nignored grant entries (no effect):\n");
        for ig in &p.ignored {
            o.push_str(&format!(
                "   {:<9}  {}  — {}\n",
                ig.capability.as_str(),
                escape_terminal(&truncate_target(&ig.target, TARGET_WIDTH)),
                escape_terminal(&ig.message)
            ));
        }
    }
    o
}

/// What a narrowing grant narrowed: the requested target and the requested
/// values of the fields it cut down.
fn narrows_text(e: &Entry, n: &netgrant_policy::ir::Narrowed) -> String {
    let mut parts = vec![format!("requested {}", truncate_target(&n.target, 64))];
    if n.methods != e.methods {
        if let Some(m) = &n.methods {
            parts.push(format!("methods {}", m.join(",")));
        }
    }
    if n.headers != e.headers {
        parts.push(format!("headers {}", list_or_none(&n.headers)));
    }
    if n.subprotocols != e.subprotocols {
        parts.push(format!("subprotocols {}", list_or_none(&n.subprotocols)));
    }
    if n.networks != e.networks {
        parts.push(format!("networks {}", list_or_none(&n.networks)));
    }
    parts.join("; ")
}

fn list_or_none(v: &[String]) -> String {
    if v.is_empty() {
        "(none)".into()
    } else {
        v.join(",")
    }
}

fn markdown(p: &Policy, drift: Option<&Drift>) -> String {
    let mut o = String::new();
    o.push_str(&format!(
        "### netgrant: `{}` {}\n\n",
        escape_markdown(&p.plugin.name),
        escape_markdown(&p.plugin.version)
    ));
    o.push_str(&format!(
        "**Risk:** {}\n\n",
        escape_markdown(&risk_summary(p))
    ));
    if p.digest_drift() {
        o.push_str("> ⚠️ The manifest changed since the grant was approved.\n");
        let lines = drift_lines(drift);
        if !lines.is_empty() {
            o.push_str(">\n");
        }
        for line in lines {
            o.push_str(&format!("> - {}\n", escape_markdown(&line)));
        }
        o.push('\n');
    }
    o.push_str(&markdown_credentials(p));
    o.push_str("| | status | capability | target | methods | flags | reason |\n|---|---|---|---|---|---|---|\n");
    let mut shown = 0usize;
    let mut hidden = 0usize;
    for e in ordered(p) {
        if !e.flags.broad && !sends_secret(e) && shown >= MAX_ROWS {
            hidden += 1;
            continue;
        }
        shown += 1;
        let mark = match (e.flags.broad, sends_secret(e)) {
            (true, _) => "⚠️ **BROAD**",
            (false, true) => "🔑 **SECRET**",
            (false, false) => "",
        };
        let idn = host_display(&e.host);
        let mut idn_note = String::new();
        if let Some(u) = &idn.unicode {
            idn_note.push_str(&format!(" ({})", escape_markdown(u)));
        }
        if let Some(why) = &idn.confusable {
            idn_note.push_str(&format!(
                " ⚠️ possible look-alike: {}",
                escape_markdown(why)
            ));
        }
        o.push_str(&format!(
            "| {mark} | {} | {} | `{}`{idn_note} | {} | {} | {} |\n",
            status_word(e),
            e.capability.as_str(),
            escape_markdown_code(&truncate_target(&e.target, 80)),
            escape_markdown(&methods(e)),
            escape_markdown(&flags(e)),
            e.reason.as_deref().map(escape_markdown).unwrap_or_default()
        ));
    }
    if hidden > 0 {
        o.push_str(&format!("\n… and {hidden} more entries (none broad).\n"));
    }
    if !p.ignored.is_empty() {
        o.push_str("\n**Ignored grant entries (no effect):**\n\n");
        for ig in &p.ignored {
            o.push_str(&format!(
                "- {} `{}` — {}\n",
                ig.capability.as_str(),
                escape_markdown_code(&ig.target),
                escape_markdown(&ig.message)
            ));
        }
    }
    o.push_str(&format!(
        "\n<sub>requested_digest {} · digest {}</sub>\n",
        p.requested_digest, p.digest
    ));
    o
}

/// The credentials section of the Markdown view, above the table: every
/// secret sent, then every credential declared but not sent, in review
/// order. Empty when there are none.
fn markdown_credentials(p: &Policy) -> String {
    let mut sent = Vec::new();
    let mut unbound = Vec::new();
    for e in ordered(p) {
        for c in &e.credentials {
            let line = format!("- {}\n", credential_text_markdown(e, c));
            if credential_sent(e, c) {
                sent.push(line);
            } else {
                unbound.push(line);
            }
        }
    }
    let mut o = String::new();
    if !sent.is_empty() {
        o.push_str("**🔑 Secrets sent:**\n\n");
        o.extend(sent);
        o.push('\n');
    }
    if !unbound.is_empty() {
        o.push_str("**Credentials declared, not sent:**\n\n");
        o.extend(unbound);
        o.push('\n');
    }
    o
}

/// One object per credential of every entry, in review order: the entry,
/// the IR credential fields, whether it is sent, and the review sentence.
fn credentials_json(p: &Policy) -> Vec<serde_json::Value> {
    ordered(p)
        .into_iter()
        .flat_map(|e| {
            e.credentials.iter().map(move |c| {
                json!({
                    "capability": e.capability,
                    "target": e.target,
                    "name": c.name,
                    "placement": c.placement,
                    "header": c.header,
                    "format": c.format,
                    "secret_ref": c.secret_ref,
                    "sent": credential_sent(e, c),
                    "text": credential_text_plain(e, c),
                })
            })
        })
        .collect()
}

fn json_view(p: &Policy, drift: Option<&Drift>) -> serde_json::Value {
    let granted: Vec<&Entry> = p.granted().collect();
    json!({
        "plugin": p.plugin,
        "requested_digest": p.requested_digest,
        "approved_digest": p.approved_digest,
        "digest": p.digest,
        "digest_drift": p.digest_drift(),
        "drift": drift,
        "risk": risk_summary(p),
        "counts": {
            "granted": granted.len(),
            "not_granted": p.entries.len() - granted.len(),
            "ignored": p.ignored.len(),
            "broad": granted.iter().filter(|e| e.flags.broad).count(),
            "loopback": granted.iter().filter(|e| e.flags.loopback).count(),
            "private": granted.iter().filter(|e| e.flags.private).count(),
            "credentials_sent": credential_counts(p).0,
            "credentials_not_bound": credential_counts(p).1,
        },
        "credentials": credentials_json(p),
        "entries": ordered(p),
        "ignored": p.ignored,
        "idn": idn_json(p),
    })
}

/// Internationalized hosts: the Unicode form beside the A-label, and the
/// look-alike flag, once per host.
fn idn_json(p: &Policy) -> Vec<serde_json::Value> {
    let mut hosts: Vec<&str> = p.entries.iter().map(|e| e.host.as_str()).collect();
    hosts.sort_unstable();
    hosts.dedup();
    hosts
        .into_iter()
        .filter_map(|h| {
            let d = host_display(h);
            (d.unicode.is_some() || d.confusable.is_some())
                .then(|| json!({"host": h, "unicode": d.unicode, "confusable": d.confusable}))
        })
        .collect()
}

/// The entries a pinned grant's drift affects, one line each.
fn drift_lines(drift: Option<&Drift>) -> Vec<String> {
    let Some(d) = drift else {
        return Vec::new();
    };
    let mut v = d.lines();
    if d.follows_manifest.is_none() {
        v.push("(an IR does not record which grant fields were unset; show the manifest with --grant to list entries that follow it)".into());
    } else if v.is_empty() {
        v.push("no entry of this grant is affected".into());
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncation_keeps_host() {
        let t = format!("https://api.example.com:8443/{}", "a/".repeat(60));
        let out = truncate_target(&t, 48);
        assert!(out.starts_with("https://api.example.com:8443/"));
        assert!(out.contains('…'));
        assert!(out.chars().count() <= 48);
        assert_eq!(truncate_target("wss://x/", 48), "wss://x/");
    }
}
