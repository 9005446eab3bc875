//! Table-driven adversarial authorization cases (docs/spec.md §2, §5).
//!
//! The cases live in `tests/authorize.toml` (workspace root; read through `tests/table/mod.rs`): a few named policies
//! (manifest + grant TOML, compiled with the public API), then `[[case]]`
//! entries. Every case runs; all failures are reported together.
//!
//! Data format, per case:
//!
//! * `policy`: the name of a `[policy.<name>]` table;
//! * `capability`: `websocket` or `request`;
//! * `url`: the URL as the plugin gives it;
//! * `method` (optional): the HTTP method (request; `GET` when absent);
//! * `headers` (optional): `"Name: value"` strings, split at the first `:`
//!   (one space after the colon is dropped);
//! * `subprotocols` (optional);
//! * `credentials` (optional): names of credentials the plugin asks for;
//! * `resolve` (optional): DNS answers. Absent decides on the URL alone;
//!   `[]` means the name did not resolve;
//! * `decision` (`allow` / `deny`) and `code` (`allowed` or a deny code);
//! * `addresses` (optional, allow only): the exact checked socket addresses;
//! * `hidden` (optional): substrings that must not appear in the decision's
//!   redacted URL or message (userinfo, query values);
//! * `why`: one line explaining the expectation.
//!
//! In `url` and header values, `${c*N}` expands to the character `c`
//! repeated `N` times, for the size-limit cases.

use netgrant_policy::{compile, Authorizer, Capability, DenyCode, Grant, Manifest, Request};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt::Write as _;
use std::net::{IpAddr, SocketAddr};

mod table;
use table::{expand, parse_header, Case, Table, DATA};

const MIN_CASES: usize = 130;
const MIN_PER_CODE: usize = 2;

/// U+202A–U+202E, U+2066–U+2069, U+200E, U+200F, U+061C.
fn is_bidi_control(c: char) -> bool {
    matches!(
        c,
        '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{200E}' | '\u{200F}' | '\u{061C}'
    )
}

fn compile_policies(table: &Table) -> HashMap<String, Authorizer> {
    let mut out = HashMap::new();
    for (name, src) in &table.policy {
        assert!(
            !src.about.trim().is_empty(),
            "policy {name} needs an `about`"
        );
        let m = Manifest::parse(&format!("{name}/plugin.toml"), &src.manifest);
        let manifest = m.value.unwrap_or_else(|| {
            panic!(
                "policy {name}: manifest does not parse: {:#?}",
                m.diagnostics
            )
        });
        let g = Grant::parse(&format!("{name}/grant.toml"), &src.grant);
        let grant = g
            .value
            .unwrap_or_else(|| panic!("policy {name}: grant does not parse: {:#?}", g.diagnostics));
        let compiled = compile(&manifest, Some(&grant));
        let policy = compiled.policy.unwrap_or_else(|| {
            panic!(
                "policy {name}: does not compile: {:#?}",
                compiled.diagnostics
            )
        });
        out.insert(name.clone(), Authorizer::new(&policy));
    }
    out
}

/// Checks one case; `Err` describes every way it failed.
fn run_case(authz: &Authorizer, c: &Case) -> Result<(), String> {
    let capability = Capability::parse(&c.capability)
        .ok_or_else(|| format!("bad capability {:?} in table", c.capability))?;
    let url = expand(&c.url);
    let headers: Vec<(String, String)> = c.headers.iter().map(|h| parse_header(h)).collect();
    let answers: Option<Vec<IpAddr>> = match &c.resolve {
        None => None,
        Some(list) => Some(
            list.iter()
                .map(|a| {
                    a.parse()
                        .map_err(|_| format!("bad resolve address {a:?} in table"))
                })
                .collect::<Result<_, _>>()?,
        ),
    };
    let req = Request {
        capability,
        url: &url,
        method: c.method.as_deref(),
        headers: &headers,
        subprotocols: &c.subprotocols,
        credentials: &c.credentials,
    };
    let d = authz.authorize(&req, answers.as_deref());

    let mut problems = Vec::new();
    let got_decision = if d.is_allowed() { "allow" } else { "deny" };
    if got_decision != c.decision || d.code != c.code {
        problems.push(format!(
            "expected {} {}, got {} {} ({})",
            c.decision,
            c.code,
            got_decision,
            d.code,
            d.message()
        ));
    }
    if let Some(want) = &c.addresses {
        let want: Vec<SocketAddr> = want
            .iter()
            .map(|a| {
                a.parse()
                    .map_err(|_| format!("bad socket address {a:?} in table"))
            })
            .collect::<Result<_, _>>()?;
        if d.addresses != want {
            problems.push(format!(
                "expected checked addresses {want:?}, got {:?}",
                d.addresses
            ));
        }
    }
    for secret in &c.hidden {
        if d.url().contains(secret.as_str()) || d.message().contains(secret.as_str()) {
            problems.push(format!(
                "{secret:?} leaked into the decision (url {:?}, message {:?})",
                d.url(),
                d.message()
            ));
        }
    }
    // Invariants for every decision: messages are single-line, escaped text
    // (no controls, no bidi controls that could reorder what is shown).
    for (what, text) in [("url", d.url()), ("message", d.message())] {
        if text
            .chars()
            .any(|ch| ch.is_control() || is_bidi_control(ch))
        {
            problems.push(format!(
                "decision {what} contains a control or bidi character: {text:?}"
            ));
        }
    }
    if d.is_allowed() != d.deny_code().is_none() {
        problems.push("decision and deny code disagree".into());
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("; "))
    }
}

fn validate_table(table: &Table) -> Vec<String> {
    let mut errors = Vec::new();
    let known: HashSet<&str> = DenyCode::ALL
        .iter()
        .map(|c| c.as_str())
        .chain(["allowed"])
        .collect();
    let mut seen = HashSet::new();
    for (i, c) in table.case.iter().enumerate() {
        let at = format!("case #{} ({} {})", i + 1, c.capability, c.url);
        if !table.policy.contains_key(&c.policy) {
            errors.push(format!("{at}: unknown policy {:?}", c.policy));
        }
        if !known.contains(c.code.as_str()) {
            errors.push(format!("{at}: unknown code {:?}", c.code));
        }
        match c.decision.as_str() {
            "allow" if c.code != "allowed" => {
                errors.push(format!("{at}: decision allow needs code \"allowed\""))
            }
            "deny" if c.code == "allowed" => {
                errors.push(format!("{at}: decision deny needs a deny code"))
            }
            "allow" | "deny" => {}
            other => errors.push(format!("{at}: bad decision {other:?}")),
        }
        if c.addresses.is_some() && c.decision != "allow" {
            errors.push(format!("{at}: `addresses` only makes sense on allow"));
        }
        if c.why.trim().is_empty() {
            errors.push(format!("{at}: empty `why`"));
        }
        let key = format!(
            "{}|{}|{}|{:?}|{:?}|{:?}|{:?}|{:?}",
            c.policy,
            c.capability,
            c.url,
            c.method,
            c.headers,
            c.subprotocols,
            c.credentials,
            c.resolve
        );
        if !seen.insert(key) {
            errors.push(format!("{at}: duplicate case"));
        }
    }
    errors
}

#[test]
fn authorize_table() {
    let table: Table = toml::from_str(DATA).expect("tests/authorize.toml (workspace root) parses");
    let table_errors = validate_table(&table);
    assert!(
        table_errors.is_empty(),
        "the case table itself is wrong:\n  {}",
        table_errors.join("\n  ")
    );

    let authorizers = compile_policies(&table);
    let mut failures = String::new();
    let mut failed = 0;
    for (i, c) in table.case.iter().enumerate() {
        if let Err(problem) = run_case(&authorizers[&c.policy], c) {
            failed += 1;
            let _ = writeln!(
                failures,
                "  #{:<3} [{}] {} {}{}{}{}\n        why: {}\n        {}",
                i + 1,
                c.policy,
                c.capability,
                c.method
                    .as_deref()
                    .map(|m| format!("{m} "))
                    .unwrap_or_default(),
                c.url,
                if c.headers.is_empty() {
                    String::new()
                } else {
                    format!(" headers={:?}", c.headers)
                },
                match &c.resolve {
                    Some(r) => format!(" resolve={r:?}"),
                    None => String::new(),
                },
                c.why,
                problem
            );
        }
    }
    assert!(
        failed == 0,
        "{failed} of {} authorize cases failed:\n{failures}",
        table.case.len()
    );
}

#[test]
fn table_covers_every_deny_code_and_is_large_enough() {
    let table: Table = toml::from_str(DATA).expect("tests/authorize.toml (workspace root) parses");
    assert!(
        table.case.len() >= MIN_CASES,
        "the table has {} cases; at least {MIN_CASES} are required",
        table.case.len()
    );
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for c in &table.case {
        *counts.entry(c.code.as_str()).or_default() += 1;
    }
    let thin: Vec<String> = DenyCode::ALL
        .iter()
        .map(|c| c.as_str())
        .filter(|c| counts.get(c).copied().unwrap_or(0) < MIN_PER_CODE)
        .map(|c| format!("{c} ({})", counts.get(c).copied().unwrap_or(0)))
        .collect();
    assert!(
        thin.is_empty(),
        "every deny code must be expected by at least {MIN_PER_CODE} cases; too few for: {}",
        thin.join(", ")
    );
    assert!(
        counts.get("allowed").copied().unwrap_or(0) >= 20,
        "the table needs allow cases too, or a deny-everything authorizer would pass"
    );
}
