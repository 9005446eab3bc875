//! Property tests for the semantic diff (`netgrant_policy::diff`).
//!
//! Manifests are drawn from a small pool of hosts, ports, paths, methods,
//! headers, subprotocols and networks, so that generated pairs overlap, nest
//! and collide often. Properties:
//!
//! * `diff(a, a)` and `diff(a, respelled and reordered a)` are empty;
//! * `diff(b, a)` is the mirror image of `diff(a, b)` (added ↔ removed,
//!   widened ↔ narrowed, flags turned on ↔ off);
//! * the indexed pairing finds exactly the pairs a brute-force all-pairs
//!   reference written here finds;
//! * every kind and class is sound (widened really contains, newly broad
//!   really turned broad on, …) and nothing is lost (every differing entry
//!   is in some change);
//! * with a grant approving every request, every increase is covered; with
//!   an empty grant, none is.
//!
//! `PROPTEST_CASES` raises the case count for a deeper local run.

use netgrant_policy::diff::{self, Change, Class, Coverage, Diff, Item, Kind};
use netgrant_policy::{compile, CompiledPolicy, Grant, Manifest};
use proptest::prelude::*;
use proptest::sample::subsequence;
use std::collections::{BTreeMap, BTreeSet};

fn cases(default: u32) -> ProptestConfig {
    let n = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default);
    ProptestConfig {
        cases: n,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// Hosts that nest: exact, wildcard, public-suffix wildcard, any, IPs, localhost.
const HOSTS: &[&str] = &[
    "a.example.com",
    "b.example.com",
    "x.a.example.com",
    "*.a.example.com",
    "*.example.com",
    "*.com",
    "*",
    "127.0.0.1",
    "10.0.0.5",
    "localhost",
];
const PORTS: &[&str] = &["", ":8443", ":*"];
const PATHS: &[&str] = &["/", "/v1/", "/v1/x/", "/v2"];
const METHODS: &[&str] = &["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"];
const HEADERS: &[&str] = &["X-Trace", "X-Request-Id"];
const SUBPROTOCOLS: &[&str] = &["json", "etf"];
const NETWORKS: &[&str] = &[
    "10.1.0.0/16",
    "10.0.0.0/8",
    "192.168.1.0/24",
    "127.0.0.0/24",
];
const REASONS: &[Option<&str>] = &[None, Some("one reason"), Some("another reason")];

#[derive(Clone, Debug)]
struct Spec {
    ws: bool,
    tls: bool,
    host: usize,
    port: usize,
    path: usize,
    methods: Option<Vec<usize>>, // None = "*"
    headers: Vec<usize>,
    subprotocols: Vec<usize>,
    networks: Vec<usize>,
    reason: usize,
}

fn spec() -> impl Strategy<Value = Spec> {
    (
        any::<bool>(),
        any::<bool>(),
        0..HOSTS.len(),
        0..PORTS.len(),
        0..PATHS.len(),
        prop::option::weighted(
            0.85,
            subsequence((0..METHODS.len()).collect::<Vec<_>>(), 1..3),
        ),
        subsequence((0..HEADERS.len()).collect::<Vec<_>>(), 0..=2),
        subsequence((0..SUBPROTOCOLS.len()).collect::<Vec<_>>(), 0..=2),
        prop::collection::vec(0..NETWORKS.len(), 0..2),
        0..REASONS.len(),
    )
        .prop_map(
            |(ws, tls, host, port, path, methods, headers, subprotocols, networks, reason)| Spec {
                ws,
                tls,
                host,
                port,
                path,
                methods,
                headers,
                subprotocols,
                networks,
                reason,
            },
        )
}

/// A manifest: specs with distinct targets.
fn manifest() -> impl Strategy<Value = Vec<Spec>> {
    prop::collection::vec(spec(), 0..10).prop_map(|v| {
        let mut seen = BTreeSet::new();
        v.into_iter()
            .filter(|s| seen.insert((s.ws, s.tls, s.host, s.port, s.path)))
            .collect()
    })
}

fn list(items: impl IntoIterator<Item = String>) -> String {
    let v: Vec<String> = items.into_iter().map(|s| format!("\"{s}\"")).collect();
    format!("[{}]", v.join(", "))
}

/// Manifest text. `respell` writes the same set differently: entries and
/// lists reversed, scheme and host uppercased, the default port spelled out.
fn manifest_text(specs: &[Spec], version: &str, respell: bool) -> String {
    let mut s = format!("[plugin]\nname = \"t\"\nversion = \"{version}\"\n");
    let mut order: Vec<&Spec> = specs.iter().collect();
    if respell {
        order.reverse();
    }
    for sp in order {
        let scheme = match (sp.ws, sp.tls) {
            (true, true) => "wss",
            (true, false) => "ws",
            (false, true) => "https",
            (false, false) => "http",
        };
        let mut host = HOSTS[sp.host].to_string();
        let mut port = PORTS[sp.port].to_string();
        let mut scheme = scheme.to_string();
        if respell {
            scheme = scheme.to_uppercase();
            host = host.to_uppercase();
            if port.is_empty() {
                port = format!(":{}", if sp.tls { 443 } else { 80 });
            }
        }
        let table = if sp.ws { "websocket" } else { "request" };
        s.push_str(&format!(
            "\n[[host_api.{table}]]\nurl = \"{scheme}://{host}{port}{}\"\n",
            PATHS[sp.path]
        ));
        let rev = |v: &[usize], pool: &[&str]| {
            let mut out: Vec<String> = v.iter().map(|&i| pool[i].to_string()).collect();
            if respell {
                out.reverse();
                out = out.into_iter().map(|x| x.to_lowercase()).collect();
            }
            out
        };
        if !sp.ws {
            match &sp.methods {
                None => s.push_str("methods = \"*\"\n"),
                Some(m) => {
                    let mut v: Vec<String> = m.iter().map(|&i| METHODS[i].to_string()).collect();
                    if respell {
                        v.reverse();
                    }
                    s.push_str(&format!("methods = {}\n", list(v)));
                }
            }
        }
        if !sp.headers.is_empty() {
            s.push_str(&format!("headers = {}\n", list(rev(&sp.headers, HEADERS))));
        }
        if sp.ws && !sp.subprotocols.is_empty() {
            let mut v: Vec<String> = sp
                .subprotocols
                .iter()
                .map(|&i| SUBPROTOCOLS[i].to_string())
                .collect();
            if respell {
                v.reverse();
            }
            s.push_str(&format!("subprotocols = {}\n", list(v)));
        }
        if !sp.networks.is_empty() {
            let v: BTreeSet<usize> = sp.networks.iter().copied().collect();
            let nets: Vec<String> = v
                .iter()
                .map(|&i| {
                    if respell {
                        // Host bits set: normalized away.
                        NETWORKS[i].replacen(".0/", ".9/", 1)
                    } else {
                        NETWORKS[i].to_string()
                    }
                })
                .collect();
            s.push_str(&format!("networks = {}\n", list(nets)));
        }
        if let Some(r) = REASONS[sp.reason] {
            s.push_str(&format!("reason = \"{r}\"\n"));
        }
    }
    s
}

fn compiled(text: &str, grant: Option<&str>) -> CompiledPolicy {
    let parsed = Manifest::parse("plugin.toml", text);
    let m = parsed.value.unwrap_or_else(|| {
        panic!(
            "generated manifest rejected: {:?}\n{text}",
            parsed.diagnostics
        )
    });
    let g = grant.map(|g| {
        Grant::parse("grant.toml", g)
            .value
            .unwrap_or_else(|| panic!("generated grant rejected\n{g}"))
    });
    let c = compile(&m, g.as_ref());
    c.policy.unwrap_or_else(|| {
        panic!(
            "generated manifest does not compile: {:?}\n{text}",
            c.diagnostics
        )
    })
}

/// A grant approving every request of `p` as requested (`broad = true`
/// where needed).
fn approve_all(p: &CompiledPolicy) -> String {
    let mut s = String::from("plugin = \"t\"\n");
    for it in diff::requested_items(p).unwrap() {
        s.push_str(&format!(
            "\n[[host_api.{}]]\nurl = \"{}\"\n",
            it.permission.capability.as_str(),
            it.target()
        ));
        if it.flags().broad {
            s.push_str("broad = true\n");
        }
    }
    s
}

type Key = (
    String,
    Vec<String>,
    Vec<String>,
    Vec<&'static str>,
    Vec<&'static str>,
);

fn key(d: &Diff, c: &Change, mirrored: bool) -> Key {
    let o: Vec<String> = c.old.iter().map(|&i| d.old[i].target()).collect();
    let n: Vec<String> = c.new.iter().map(|&j| d.new[j].target()).collect();
    if mirrored {
        (
            c.kind.reversed().as_str().into(),
            n,
            o,
            c.flags_off.names(),
            c.flags_on.names(),
        )
    } else {
        (
            c.kind.as_str().into(),
            o,
            n,
            c.flags_on.names(),
            c.flags_off.names(),
        )
    }
}

/// All-pairs reference pairing: (kind, old targets, new targets) per change,
/// without the flags.
fn reference(old: &[Item], new: &[Item]) -> BTreeSet<(String, Vec<String>, Vec<String>)> {
    let mut out = BTreeSet::new();
    let same = |a: &Item, b: &Item| {
        a.permission.capability == b.permission.capability && a.target() == b.target()
    };
    let old_m: Vec<bool> = old.iter().map(|o| new.iter().any(|n| same(o, n))).collect();
    let new_m: Vec<bool> = new.iter().map(|n| old.iter().any(|o| same(o, n))).collect();
    for o in old {
        for n in new {
            if !same(o, n) {
                continue;
            }
            let (w, na) = (
                n.permission.contains(&o.permission),
                o.permission.contains(&n.permission),
            );
            let kind = match (w, na) {
                (true, true) if o.reason != n.reason => "reason_changed",
                (true, true) => continue,
                (true, false) => "widened",
                (false, true) => "narrowed",
                _ => "changed",
            };
            out.insert((kind.to_string(), vec![o.target()], vec![n.target()]));
        }
    }
    let mut wide_new: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
    let mut wide_old: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
    let mut paired_o = vec![false; old.len()];
    let mut paired_n = vec![false; new.len()];
    for (i, o) in old.iter().enumerate() {
        for (j, n) in new.iter().enumerate() {
            if old_m[i] || new_m[j] {
                continue;
            }
            let (ot, nt) = (&o.permission.target, &n.permission.target);
            if ot.contains(nt) {
                wide_old.entry(i).or_default().push(j);
            } else if nt.contains(ot) {
                wide_new.entry(j).or_default().push(i);
            } else {
                continue;
            }
            paired_o[i] = true;
            paired_n[j] = true;
        }
    }
    for (j, olds) in wide_new {
        let kind = if olds
            .iter()
            .all(|&i| new[j].permission.contains(&old[i].permission))
        {
            "widened"
        } else {
            "changed"
        };
        out.insert((
            kind.into(),
            olds.iter().map(|&i| old[i].target()).collect(),
            vec![new[j].target()],
        ));
    }
    for (i, news) in wide_old {
        let kind = if news
            .iter()
            .all(|&j| old[i].permission.contains(&new[j].permission))
        {
            "narrowed"
        } else {
            "changed"
        };
        out.insert((
            kind.into(),
            vec![old[i].target()],
            news.iter().map(|&j| new[j].target()).collect(),
        ));
    }
    for (j, n) in new.iter().enumerate() {
        if !new_m[j] && !paired_n[j] {
            out.insert(("added".into(), vec![], vec![n.target()]));
        }
    }
    for (i, o) in old.iter().enumerate() {
        if !old_m[i] && !paired_o[i] {
            out.insert(("removed".into(), vec![o.target()], vec![]));
        }
    }
    out
}

fn union_flag(items: &[Item], idx: &[usize], f: impl Fn(&netgrant_policy::Flags) -> bool) -> bool {
    idx.iter().any(|&i| f(&items[i].flags()))
}

proptest! {
    #![proptest_config(cases(300))]

    /// A policy diffed against itself, or against a respelled, reordered
    /// copy of its manifest, is empty.
    #[test]
    fn self_and_respelled_diff_is_empty(a in manifest()) {
        let p = compiled(&manifest_text(&a, "1.0.0", false), None);
        let q = compiled(&manifest_text(&a, "9.9.9", true), None);
        let d = diff::diff(&p, &p).unwrap();
        prop_assert!(d.is_empty(), "diff(a, a) = {:?}", d.changes);
        let d = diff::diff(&p, &q).unwrap();
        prop_assert!(d.is_empty(), "respelled: {:?}", d.changes);
    }

    /// diff(b, a) is diff(a, b) with the sides swapped.
    #[test]
    fn diff_is_antisymmetric(a in manifest(), b in manifest()) {
        let p = compiled(&manifest_text(&a, "1.0.0", false), None);
        let q = compiled(&manifest_text(&b, "2.0.0", false), None);
        let ab = diff::diff(&p, &q).unwrap();
        let ba = diff::diff(&q, &p).unwrap();
        let fwd: BTreeSet<Key> = ab.changes.iter().map(|c| key(&ab, c, true)).collect();
        let bwd: BTreeSet<Key> = ba.changes.iter().map(|c| key(&ba, c, false)).collect();
        prop_assert_eq!(ab.changes.len(), ba.changes.len());
        prop_assert_eq!(fwd, bwd);
        // Class by class: added ↔ removed, widened ↔ narrowed.
        let count = |d: &Diff, k: Class| d.changes.iter().filter(|c| c.classes.contains(&k)).count();
        prop_assert_eq!(count(&ab, Class::Added), count(&ba, Class::Removed));
        prop_assert_eq!(count(&ab, Class::Removed), count(&ba, Class::Added));
        prop_assert_eq!(count(&ab, Class::Widened), count(&ba, Class::Narrowed));
        prop_assert_eq!(count(&ab, Class::Narrowed), count(&ba, Class::Widened));
        prop_assert_eq!(count(&ab, Class::Changed), count(&ba, Class::Changed));
    }

    /// The host-indexed pairing equals a brute-force all-pairs pairing, and
    /// every kind and class is sound.
    #[test]
    fn indexed_pairing_matches_reference_and_is_sound(a in manifest(), b in manifest()) {
        let p = compiled(&manifest_text(&a, "1.0.0", false), None);
        let q = compiled(&manifest_text(&b, "2.0.0", false), None);
        let d = diff::diff(&p, &q).unwrap();
        let got: BTreeSet<(String, Vec<String>, Vec<String>)> =
            d.changes.iter().map(|c| { let k = key(&d, c, false); (k.0, k.1, k.2) }).collect();
        prop_assert_eq!(&got, &reference(&d.old, &d.new));
        for c in &d.changes {
            let olds: Vec<&Item> = c.old.iter().map(|&i| &d.old[i]).collect();
            let news: Vec<&Item> = c.new.iter().map(|&j| &d.new[j]).collect();
            for x in olds.iter().chain(&news) {
                prop_assert_eq!(x.permission.capability, c.capability);
            }
            match c.kind {
                Kind::Added => prop_assert!(olds.is_empty() && news.len() == 1),
                Kind::Removed => prop_assert!(news.is_empty() && olds.len() == 1),
                Kind::Widened => for o in &olds { for n in &news {
                    prop_assert!(n.permission.contains(&o.permission) && n.permission != o.permission);
                }},
                Kind::Narrowed => for o in &olds { for n in &news {
                    prop_assert!(o.permission.contains(&n.permission) && n.permission != o.permission);
                }},
                Kind::Changed => prop_assert!(olds.iter().any(|o| news.iter().any(|n|
                    !n.permission.contains(&o.permission) && !o.permission.contains(&n.permission)
                ))),
                Kind::ReasonChanged => {
                    prop_assert_eq!(olds.len(), 1);
                    prop_assert_eq!(news.len(), 1);
                    prop_assert!(olds[0].reason != news[0].reason);
                }
                Kind::CredentialsChanged => {
                    prop_assert_eq!(olds.len(), 1);
                    prop_assert_eq!(news.len(), 1);
                    prop_assert!(!c.credentials.is_empty());
                }
            }
            let newly = |f: fn(&netgrant_policy::Flags) -> bool| {
                union_flag(&d.new, &c.new, f) && !union_flag(&d.old, &c.old, f)
            };
            prop_assert_eq!(c.classes.contains(&Class::NewlyBroad), newly(|f| f.broad));
            prop_assert_eq!(c.classes.contains(&Class::NewlyLoopback), newly(|f| f.loopback));
            prop_assert_eq!(c.classes.contains(&Class::NewlyPrivate), newly(|f| f.private));
        }
        // Nothing is lost: every entry without an identical twin on the other
        // side is in some change.
        let twin = |x: &Item, side: &[Item]| side.iter().any(|y| y == x);
        for (j, n) in d.new.iter().enumerate() {
            if !twin(n, &d.old) {
                prop_assert!(d.changes.iter().any(|c| c.new.contains(&j)), "lost new {}", n.target());
            }
        }
        for (i, o) in d.old.iter().enumerate() {
            if !twin(o, &d.new) {
                prop_assert!(d.changes.iter().any(|c| c.old.contains(&i)), "lost old {}", o.target());
            }
        }
    }

    /// A grant approving every new request covers every increase; an empty
    /// grant covers none.
    #[test]
    fn coverage_follows_the_grant(a in manifest(), b in manifest()) {
        let p = compiled(&manifest_text(&a, "1.0.0", false), None);
        let text = manifest_text(&b, "2.0.0", false);
        let bare = compiled(&text, None);
        let all = compiled(&text, Some(&approve_all(&bare)));
        let none = compiled(&text, Some("plugin = \"t\"\n"));
        for (granted, want) in [(&all, Coverage::Covered), (&none, Coverage::NeedsReapproval)] {
            let mut d = diff::diff(&p, granted).unwrap();
            diff::check_coverage(&mut d, granted).unwrap();
            for c in &d.changes {
                if c.is_increase() {
                    prop_assert_eq!(c.coverage, Some(want), "{:?}", c);
                } else {
                    prop_assert_eq!(c.coverage, None);
                }
            }
        }
    }
}
