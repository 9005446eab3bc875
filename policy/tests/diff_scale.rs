//! The diff stays linear: two generated 10,000-target manifests diff with a
//! small constant number of containment checks per target, and ten times the
//! targets costs about ten times the work — never a hundred (all-pairs).
//! Work is counted ([`Work`]), not timed, so the test is stable on a loaded
//! machine.

use netgrant_policy::diff::{self, Class, Work};
use netgrant_policy::{compile, CompiledPolicy, Manifest};
use std::fmt::Write as _;

/// Old manifest: `n` targets in blocks of 20, alternately request and
/// websocket, each on its own host `h<i>.s<i>.example<i%7>.com` under a few
/// path prefixes. New manifest (also `n` targets): in every block, one path
/// widened, one method or subprotocol added, one removed, one host turned
/// into the wildcard over it, one port opened to `*`, one reason changed, one
/// new host added; and one websocket target replaced by `wss://*/`.
fn manifests(n: usize) -> (String, String) {
    let head = |v: &str| format!("[plugin]\nname = \"scale\"\nversion = \"{v}\"\n");
    let (mut old, mut new) = (head("1.0.0"), head("2.0.0"));
    for i in 0..n {
        let ws = (i / 20) % 2 == 1;
        let (scheme, table) = if ws {
            ("wss", "websocket")
        } else {
            ("https", "request")
        };
        let host = format!("h{i}.s{i}.example{}.com", i % 7);
        let path = format!("/api/v{}/", i % 3);
        let extra = |methods: &str| {
            if ws {
                String::new()
            } else {
                format!("methods = [{methods}]\n")
            }
        };
        let _ = write!(
            old,
            "\n[[host_api.{table}]]\nurl = \"{scheme}://{host}{path}\"\n{}reason = \"r{i}\"\n",
            extra("\"GET\"")
        );
        let (url, more, reason) = match i % 20 {
            0 => (
                format!("{scheme}://{host}/"),
                extra("\"GET\""),
                format!("r{i}"),
            ),
            1 if ws => (
                format!("{scheme}://{host}{path}"),
                "subprotocols = [\"json\"]\n".into(),
                format!("r{i}"),
            ),
            1 => (
                format!("{scheme}://{host}{path}"),
                extra("\"GET\", \"POST\""),
                format!("r{i}"),
            ),
            2 => continue,
            _ if i == 27 => ("wss://*/".to_string(), String::new(), format!("r{i}")),
            3 => (
                format!("{scheme}://*.s{i}.example{}.com{path}", i % 7),
                extra("\"GET\""),
                format!("r{i}"),
            ),
            4 => (
                format!("{scheme}://{host}:*{path}"),
                extra("\"GET\""),
                format!("r{i}"),
            ),
            5 => (
                format!("{scheme}://{host}{path}"),
                extra("\"GET\""),
                format!("changed r{i}"),
            ),
            _ => (
                format!("{scheme}://{host}{path}"),
                extra("\"GET\""),
                format!("r{i}"),
            ),
        };
        let _ = write!(
            new,
            "\n[[host_api.{table}]]\nurl = \"{url}\"\n{more}reason = \"{reason}\"\n"
        );
        if i % 20 == 6 {
            let _ = write!(
                new,
                "\n[[host_api.{table}]]\nurl = \"{scheme}://n{i}.example.net/\"\n{}",
                extra("\"GET\"")
            );
        }
    }
    (old, new)
}

fn policy(text: &str) -> CompiledPolicy {
    let m = Manifest::parse("plugin.toml", text).value.expect("parses");
    compile(&m, None).policy.expect("compiles")
}

fn work(n: usize) -> (Work, diff::Diff, std::time::Duration) {
    let (old, new) = manifests(n);
    let (a, b) = (policy(&old), policy(&new));
    let started = std::time::Instant::now();
    let d = diff::diff(&a, &b).unwrap();
    (d.work, d, started.elapsed())
}

#[test]
fn ten_thousand_targets_diff_in_linear_work() {
    let n = 10_000;
    let (w, d, elapsed) = work(n);
    eprintln!(
        "diff of two {n}-target manifests: {} changes, {} containment checks, {} candidates, {elapsed:?} (diff only, this build)",
        d.changes.len(),
        w.containment_checks,
        w.candidates
    );
    assert_eq!(d.old.len(), n);
    // The generator's changes are all found: per 20 targets one widened path,
    // one added method/subprotocol, one wildcard, one `:*` port (widened),
    // one reason change, one added host; removed websocket targets are
    // absorbed by the new `wss://*/`, removed request targets are removed.
    let count = |k: Class| d.changes.iter().filter(|c| c.classes.contains(&k)).count();
    let per = n / 20;
    assert_eq!(d.new.len(), n);
    assert_eq!(count(Class::Widened), 4 * per + 1, "widened");
    assert_eq!(count(Class::NewlyBroad), 1, "the any-host target");
    assert_eq!(count(Class::ReasonChanged), per);
    assert_eq!(count(Class::Added), per);
    assert_eq!(count(Class::Removed), per / 2);
    // Linear: a few checks per target (the one any-host target checks every
    // unmatched old websocket target once), never n².
    assert!(
        w.containment_checks <= 4 * n as u64,
        "{} containment checks for {n} targets",
        w.containment_checks
    );
    // Ten times the targets, about ten times the work.
    let (small, _, _) = work(n / 10);
    let ratio = w.containment_checks as f64 / small.containment_checks as f64;
    assert!(
        ratio < 12.0,
        "work grew {ratio:.1}x for 10x the targets ({} vs {})",
        w.containment_checks,
        small.containment_checks
    );
}

/// The work counter is honest: a diff whose pairs really are all-pairs (one
/// new any-host target over n old ones, plus n new paths under n old
/// any-port any-host targets) is counted as such.
#[test]
fn work_counter_sees_quadratic_input() {
    let n = 300;
    let mut old = String::from("[plugin]\nname = \"q\"\nversion = \"1.0.0\"\n");
    let mut new = old.clone();
    for i in 0..n {
        let _ = write!(old, "\n[[host_api.websocket]]\nurl = \"wss://*:*/p{i}/\"\n");
        let _ = write!(
            new,
            "\n[[host_api.websocket]]\nurl = \"wss://*:*/p{i}/q/\"\n"
        );
    }
    let d = diff::diff(&policy(&old), &policy(&new)).unwrap();
    // Every new entry is compared with every old any-host entry.
    assert!(d.work.containment_checks >= (n * n) as u64);
    assert_eq!(d.changes.len(), n);
    assert!(d.changes.iter().all(|c| c.classes == vec![Class::Narrowed]));
}
