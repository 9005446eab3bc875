//! Table-driven semantic diff cases (`tests/diff.toml` at the workspace root).
//!
//! Each case is two manifest bodies (and optionally a grant for the new one);
//! the runner compiles them with the public API, diffs them, and compares the
//! changes — classes, kind, old and new targets, grant coverage — in output
//! order. Every case also runs backwards and must give the mirror image. All
//! failures are reported together.

use netgrant_policy::diff::{self, Change, Class, Coverage, Diff, Kind};
use netgrant_policy::{compile, CompiledPolicy, Grant, Manifest};
use serde::Deserialize;
use std::collections::BTreeSet;
use std::fmt::Write as _;

const DATA: &str = include_str!("../../tests/diff.toml");
const MIN_CASES: usize = 30;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Table {
    case: Vec<Case>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Case {
    name: String,
    old: String,
    new: String,
    grant: Option<String>,
    /// A grant for the old manifest: its bindings are the old side's.
    old_grant: Option<String>,
    /// Whether `--fail-on widened` trips (some change is an increase).
    fail_on_widened: Option<bool>,
    expect: Vec<Expect>,
}

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
struct Expect {
    classes: Vec<Class>,
    kind: Option<Kind>,
    old: Vec<String>,
    new: Vec<String>,
    coverage: Option<Coverage>,
    /// `"<delta> <name>"` per credential change, in the change's order.
    credentials: Option<Vec<String>>,
}

fn policy(version: &str, body: &str, grant: Option<&str>) -> Result<CompiledPolicy, String> {
    let text = format!("[plugin]\nname = \"t\"\nversion = \"{version}\"\n{body}");
    let parsed = Manifest::parse("plugin.toml", &text);
    let m = parsed
        .value
        .ok_or_else(|| format!("manifest does not parse: {:?}", parsed.diagnostics))?;
    let g = match grant {
        None => None,
        Some(b) => {
            let parsed = Grant::parse("grant.toml", &format!("plugin = \"t\"\n{b}"));
            Some(
                parsed
                    .value
                    .ok_or_else(|| format!("grant does not parse: {:?}", parsed.diagnostics))?,
            )
        }
    };
    let compiled = compile(&m, g.as_ref());
    if compiled.diagnostics.iter().any(|d| d.severity().is_error()) {
        return Err(format!("does not compile: {:?}", compiled.diagnostics));
    }
    compiled.policy.ok_or_else(|| "no policy".into())
}

fn targets(d: &Diff, c: &Change) -> (Vec<String>, Vec<String>) {
    (
        c.old.iter().map(|&i| d.old[i].target()).collect(),
        c.new.iter().map(|&j| d.new[j].target()).collect(),
    )
}

fn describe(d: &Diff) -> String {
    let mut s = String::new();
    for c in &d.changes {
        let (o, n) = targets(d, c);
        let classes: Vec<&str> = c.classes.iter().map(|c| c.as_str()).collect();
        let _ = writeln!(
            s,
            "    {classes:?} {} {o:?} -> {n:?} {:?}",
            c.kind.as_str(),
            c.coverage
        );
    }
    s
}

/// A change seen from the other side, as comparable data.
type Mirror = (
    String,
    Vec<String>,
    Vec<String>,
    Vec<&'static str>,
    Vec<&'static str>,
);

fn mirror_key(d: &Diff, c: &Change, backwards: bool) -> Mirror {
    let (o, n) = targets(d, c);
    let (kind, old, new, on, off) = if backwards {
        (c.kind.reversed(), n, o, c.flags_off, c.flags_on)
    } else {
        (c.kind, o, n, c.flags_on, c.flags_off)
    };
    (kind.as_str().to_string(), old, new, on.names(), off.names())
}

fn check(case: &Case) -> Result<(), String> {
    let a = policy("1.0.0", &case.old, case.old_grant.as_deref())?;
    let b = policy("2.0.0", &case.new, case.grant.as_deref())?;
    let mut d = diff::diff(&a, &b).map_err(|e| e.to_string())?;
    if case.grant.is_some() {
        diff::check_coverage(&mut d, &b).map_err(|e| e.to_string())?;
    }
    let mut problems = Vec::new();
    if d.changes.len() != case.expect.len() {
        problems.push(format!(
            "expected {} changes, got {}",
            case.expect.len(),
            d.changes.len()
        ));
    }
    for (k, (c, e)) in d.changes.iter().zip(&case.expect).enumerate() {
        let (o, n) = targets(&d, c);
        if c.classes != e.classes {
            problems.push(format!(
                "change {k}: classes {:?}, expected {:?}",
                c.classes, e.classes
            ));
        }
        if let Some(kind) = e.kind {
            if c.kind != kind {
                problems.push(format!("change {k}: kind {:?}, expected {kind:?}", c.kind));
            }
        }
        if o != e.old || n != e.new {
            problems.push(format!(
                "change {k}: {o:?} -> {n:?}, expected {:?} -> {:?}",
                e.old, e.new
            ));
        }
        let want_cov = if case.grant.is_some() {
            e.coverage
        } else {
            None
        };
        if c.coverage != want_cov {
            problems.push(format!(
                "change {k}: coverage {:?}, expected {want_cov:?}",
                c.coverage
            ));
        }
        if let Some(want) = &e.credentials {
            let got: Vec<String> = c
                .credentials
                .iter()
                .map(|cc| format!("{} {}", cc.delta.as_str(), cc.credential.credential.name))
                .collect();
            if &got != want {
                problems.push(format!(
                    "change {k}: credentials {got:?}, expected {want:?}"
                ));
            }
        }
        if c.classes.iter().any(|x| x.is_increase()) != c.is_increase() {
            problems.push(format!("change {k}: is_increase disagrees with classes"));
        }
        let mut sorted = c.classes.clone();
        sorted.sort();
        if sorted != c.classes || c.severity() != c.classes[0] {
            problems.push(format!("change {k}: classes not in severity order"));
        }
    }
    if let Some(want) = case.fail_on_widened {
        let got = d.changes.iter().any(Change::is_increase);
        if got != want {
            problems.push(format!("--fail-on widened trips: {got}, expected {want}"));
        }
    }
    // Backwards: the mirror image, change for change.
    let back = diff::diff(&b, &a).map_err(|e| e.to_string())?;
    let fwd: BTreeSet<Mirror> = d.changes.iter().map(|c| mirror_key(&d, c, true)).collect();
    let bwd: BTreeSet<Mirror> = back
        .changes
        .iter()
        .map(|c| mirror_key(&back, c, false))
        .collect();
    if fwd != bwd || d.changes.len() != back.changes.len() {
        problems.push(format!(
            "backwards diff is not the mirror image:\n  forwards (mirrored) {fwd:?}\n  backwards {bwd:?}"
        ));
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "{}\n  got:\n{}",
            problems.join("\n  "),
            describe(&d)
        ))
    }
}

#[test]
fn diff_table() {
    let table: Table = toml::from_str(DATA).expect("tests/diff.toml parses");
    assert!(
        table.case.len() >= MIN_CASES,
        "only {} cases",
        table.case.len()
    );
    let mut names = BTreeSet::new();
    let mut failures = Vec::new();
    let mut classes_seen = BTreeSet::new();
    let mut empty = 0;
    for case in &table.case {
        assert!(
            names.insert(case.name.clone()),
            "duplicate case {}",
            case.name
        );
        if case.expect.is_empty() {
            empty += 1;
        }
        for e in &case.expect {
            classes_seen.extend(e.classes.iter().copied());
        }
        if let Err(e) = check(case) {
            failures.push(format!("{}:\n  {e}", case.name));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n\n{}",
        failures.len(),
        table.case.len(),
        failures.join("\n\n")
    );
    // The table exercises every class and several equal-set cases.
    for c in Class::ALL {
        assert!(classes_seen.contains(&c), "no case expects {c:?}");
    }
    assert!(empty >= 4, "only {empty} equal-set cases");
}

/// The table runner can fail: a wrong expectation is reported.
#[test]
fn runner_detects_a_wrong_expectation() {
    let case = Case {
        name: "wrong".into(),
        old: "[[host_api.request]]\nurl = \"https://a.example.com/v1/\"\nmethods = [\"GET\"]\n"
            .into(),
        new: "[[host_api.request]]\nurl = \"https://a.example.com/\"\nmethods = [\"GET\"]\n".into(),
        grant: None,
        old_grant: None,
        fail_on_widened: None,
        expect: vec![Expect {
            classes: vec![Class::Narrowed],
            kind: None,
            old: vec!["https://a.example.com/v1/".into()],
            new: vec!["https://a.example.com/".into()],
            coverage: None,
            credentials: None,
        }],
    };
    let err = check(&case).unwrap_err();
    assert!(
        err.contains("classes [Widened], expected [Narrowed]"),
        "{err}"
    );
}
