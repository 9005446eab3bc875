//! `netgrant explain`: the authorize decision plus which rule matched, or the
//! nearest misses and the grant or manifest change that would allow it.
//! Same flags and exit codes as `authorize` (0 allow, 1 deny, 2 bad input).

use crate::authorize::{decision_exit, inputs, AuthorizeArgs, DecisionFormat};
use crate::output::print_stdout;
use crate::Exit;
use netgrant_policy::explain::{
    Explainer, Explanation, Fix, FixAction, FixFile, FixKind, Location, Miss, Sources,
};
use netgrant_policy::redact::escape_terminal;
use netgrant_policy::Grant;
use std::fmt::Write as _;
use std::path::Path;

/// Runs `explain`.
pub fn run(a: &AuthorizeArgs) -> Exit {
    let inputs = match inputs(a) {
        Ok(i) => i,
        Err(e) => return e,
    };
    // The grant as written (which fields it sets, and its line numbers). It
    // parsed once already, in `inputs`; entry-level errors do not stop it.
    let grant: Option<Grant> = match (&a.input.manifest, &a.input.grant) {
        (Some(_), Some(g)) => crate::input::read(g, netgrant_policy::MAX_FILE_BYTES as u64)
            .ok()
            .and_then(|b| Grant::parse_bytes(&g.display().to_string(), &b).value),
        _ => None,
    };
    let sources = Sources {
        manifest: inputs.loaded.manifest.as_ref(),
        grant: grant.as_ref(),
    };
    let explainer = Explainer::new(inputs.policy(), sources);
    let e = explainer.explain(&inputs.request(a), inputs.answers.as_deref());
    let out = match a.format {
        DecisionFormat::Json => {
            let mut s = serde_json::to_string(&e).expect("json");
            s.push('\n');
            s
        }
        DecisionFormat::Human => human(&e, a.input.manifest.as_deref(), a.input.grant.as_deref()),
    };
    decision_exit(print_stdout(&out), e.decision.is_allowed())
}

fn loc(l: &Option<Location>) -> Option<String> {
    l.as_ref().map(|l| escape_terminal(&l.to_string()))
}

/// The human rendering: the decision line (as `authorize` prints it), then
/// `matched`, or `nearest misses` and `fix`.
pub fn human(e: &Explanation, manifest: Option<&Path>, grant: Option<&Path>) -> String {
    let d = &e.decision;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "{} {} — {}",
        if d.is_allowed() { "allow" } else { "deny" },
        d.code,
        escape_terminal(&d.message())
    );
    let _ = writeln!(s, "  url      {}", escape_terminal(&d.url()));
    let mut req = e.request.capability.table().to_string();
    if let Some(m) = &e.request.method {
        let _ = write!(req, " {}", escape_terminal(m));
    }
    if !e.request.headers.is_empty() {
        let names: Vec<String> = e
            .request
            .headers
            .iter()
            .map(|h| escape_terminal(h))
            .collect();
        let _ = write!(req, ", headers {}", names.join(", "));
    }
    if !e.request.subprotocols.is_empty() {
        let p: Vec<String> = e
            .request
            .subprotocols
            .iter()
            .map(|h| escape_terminal(h))
            .collect();
        let _ = write!(req, ", subprotocols {}", p.join(", "));
    }
    let _ = writeln!(s, "  request  {req}");
    if !e.request.addresses.is_empty() {
        let a: Vec<String> = e.request.addresses.iter().map(|x| x.to_string()).collect();
        let _ = writeln!(s, "  address  {}", a.join(", "));
    }
    if let Some(m) = &e.matched {
        s.push_str("\nmatched\n");
        let _ = writeln!(s, "  rule       {}", escape_terminal(&m.rule));
        if let Some(r) = &m.reason {
            let _ = writeln!(s, "  reason     {}", escape_terminal(r));
        }
        if let Some(ms) = &m.methods {
            let _ = writeln!(s, "  methods    {}", ms.join(", "));
        }
        if let Some(n) = &m.narrows {
            let _ = writeln!(
                s,
                "  narrows    {} ({})",
                escape_terminal(n),
                m.narrowed.join(", ")
            );
        }
        if let Some(l) = loc(&m.granted_at) {
            let _ = writeln!(s, "  granted    {l}");
        }
        if let Some(l) = loc(&m.requested_at) {
            let _ = writeln!(s, "  requested  {l}");
        }
        return s;
    }
    if !e.misses.is_empty() {
        s.push_str("\nnearest misses\n");
        for (i, m) in e.misses.iter().enumerate() {
            miss(&mut s, i + 1, m);
        }
        if e.more_misses > 0 {
            let _ = writeln!(
                s,
                "  (+{} more related {})",
                e.more_misses,
                if e.more_misses == 1 {
                    "entry"
                } else {
                    "entries"
                }
            );
        }
    } else if e.fix.kind != FixKind::Impossible {
        s.push_str("\nnearest misses\n  none: no entry has this host or a related one\n");
    }
    fix(&mut s, &e.fix, manifest, grant);
    s
}

fn miss(s: &mut String, n: usize, m: &Miss) {
    let mut at = Vec::new();
    if let Some(l) = loc(&m.at) {
        at.push(l);
    }
    if let Some(l) = loc(&m.requested_at) {
        at.push(format!("requested at {l}"));
    }
    let _ = writeln!(
        s,
        "  {n}. {}  {}{}",
        escape_terminal(&m.rule),
        m.status.as_str().replace('_', " "),
        if at.is_empty() {
            String::new()
        } else {
            format!("  ({})", at.join("; "))
        }
    );
    for d in &m.differences {
        let part = serde_json::to_value(d.part)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default();
        let _ = writeln!(s, "       {part:<12} {}", escape_terminal(&d.message));
    }
}

fn fix(s: &mut String, f: &Fix, manifest: Option<&Path>, grant: Option<&Path>) {
    let title = match f.kind {
        FixKind::None => return,
        FixKind::Grant => "fix (grant: the manifest already requests it)",
        FixKind::Manifest => "fix (manifest: a change for the plugin author, then the grant)",
        FixKind::Impossible => "fix",
        FixKind::Unknown => "fix (none found)",
    };
    let _ = writeln!(s, "\n{title}\n  {}", escape_terminal(&f.summary));
    let name = |file: FixFile| -> String {
        let (p, default) = match file {
            FixFile::Manifest => (manifest, "plugin.toml"),
            FixFile::Grant => (grant, "grant.toml"),
        };
        escape_terminal(&p.map_or(default.to_string(), |p| p.display().to_string()))
    };
    for (i, step) in f.steps.iter().enumerate() {
        let approves = match loc(&step.approves) {
            Some(l) if step.file == FixFile::Grant => format!(" (it approves the request at {l})"),
            _ => String::new(),
        };
        let head = match (step.action, loc(&step.replaces)) {
            (FixAction::Replace, Some(l)) => format!("replace the entry at {l}{approves} with"),
            (FixAction::Replace, None) => format!(
                "replace the `{}` entry in {}{approves} with",
                escape_terminal(step.replaces_target.as_deref().unwrap_or("")),
                name(step.file)
            ),
            (FixAction::Add, _) => format!("add to {}{approves}", name(step.file)),
        };
        let _ = writeln!(s, "\n  {}. {head}:", i + 1);
        for line in step.snippet.lines() {
            let _ = writeln!(s, "       {}", escape_terminal(line));
        }
    }
}
