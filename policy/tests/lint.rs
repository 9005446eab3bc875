//! Lints, table-driven: each case lists exactly the lint codes it must give,
//! so negatives (no lint) are tested as strictly as positives.

use netgrant_policy::lint::lint;
use netgrant_policy::{compile, Code, Grant, Manifest};

fn lints(requests: &str, grant: Option<&str>) -> Vec<Code> {
    let text = format!("[plugin]\nname = \"demo\"\nversion = \"0.1.0\"\n{requests}");
    let m = Manifest::parse("plugin.toml", &text)
        .value
        .expect("manifest parses");
    let g = grant.map(|g| {
        Grant::parse("grant.toml", &format!("plugin = \"demo\"\n{g}"))
            .value
            .expect("grant parses")
    });
    let p = compile(&m, g.as_ref()).policy.expect("compiles");
    let mut v: Vec<Code> = lint(&m, g.as_ref(), &p).iter().map(|d| d.code).collect();
    v.sort();
    v
}

fn ws(url: &str, reason: Option<&str>) -> String {
    let r = reason
        .map(|r| format!("reason = \"{r}\"\n"))
        .unwrap_or_default();
    format!("[[host_api.websocket]]\nurl = \"{url}\"\n{r}")
}

fn req(url: &str, methods: &str, reason: Option<&str>) -> String {
    let r = reason
        .map(|r| format!("reason = \"{r}\"\n"))
        .unwrap_or_default();
    format!("[[host_api.request]]\nurl = \"{url}\"\nmethods = [{methods}]\n{r}")
}

#[test]
fn plaintext() {
    use Code::Plaintext as P;
    let cases: &[(&str, &[Code])] = &[
        ("ws://gateway.example.com/", &[P]),
        ("ws://10.0.0.1/", &[P]),
        ("ws://*.example.com/", &[P]),
        ("wss://gateway.example.com/", &[]),
        ("ws://localhost:9000/", &[]),
        ("ws://app.localhost/", &[]),
        ("ws://127.0.0.1:9000/", &[]),
        ("ws://[::1]:9000/", &[]),
        ("ws://[::ffff:127.0.0.1]/", &[]),
    ];
    for (url, want) in cases {
        assert_eq!(lints(&ws(url, Some("r")), None), *want, "{url}");
    }
    assert_eq!(
        lints(&req("http://api.example.com/", "\"GET\"", Some("r")), None),
        vec![P]
    );
    assert_eq!(
        lints(&req("https://api.example.com/", "\"GET\"", Some("r")), None),
        vec![]
    );
    // Networks beyond loopback make a localhost name plaintext on the LAN.
    let with_net = "[[host_api.websocket]]\nurl = \"ws://localhost/\"\nnetworks = [\"192.168.1.0/24\"]\nreason = \"r\"\n";
    assert_eq!(lints(with_net, None), vec![P]);
}

#[test]
fn loopback_without_reason() {
    use Code::LoopbackWithoutReason as L;
    assert_eq!(lints(&ws("wss://localhost/", None), None), vec![L]);
    assert_eq!(lints(&ws("wss://127.0.0.1/", None), None), vec![L]);
    assert_eq!(lints(&ws("wss://localhost/", Some("dev")), None), vec![]);
    assert_eq!(lints(&ws("wss://example.com/", None), None), vec![]);
    let net =
        "[[host_api.websocket]]\nurl = \"wss://db.example.com/\"\nnetworks = [\"127.0.0.0/8\"]\n";
    assert_eq!(lints(net, None), vec![L]);
}

#[test]
fn redundant_and_overlapping() {
    use Code::{OverlappingReasons as O, RedundantTarget as R};
    let cases: Vec<(String, Vec<Code>)> = vec![
        // Contained in a wildcard, same reason: redundant only.
        (req("https://*.a.com/", "\"GET\"", Some("x")) + &req("https://b.a.com/v1/", "\"GET\"", Some("x")), vec![R]),
        // Contained, different reason: still just redundant (help mentions reasons).
        (req("https://*.a.com/", "\"GET\"", Some("x")) + &req("https://b.a.com/", "\"GET\"", Some("y")), vec![R]),
        // Any host contains everything of its scheme.
        (req("https://*/", "\"*\"", Some("x")) + &req("https://b.a.com/", "\"GET\"", Some("x")), vec![R]),
        // Same path tree but more methods: not contained; overlap with other reasons.
        (req("https://a.com/", "\"GET\"", Some("x")) + &req("https://a.com/up/", "\"POST\"", Some("y")), vec![O]),
        // Overlap with the same reason: nothing.
        (req("https://a.com/", "\"GET\"", Some("x")) + &req("https://a.com/up/", "\"POST\"", Some("x")), vec![]),
        // Different schemes, ports or disjoint paths: no overlap.
        (req("https://a.com/", "\"GET\"", Some("x")) + &req("http://a.com/", "\"GET\"", Some("y")), vec![Code::Plaintext]),
        (req("https://a.com:8443/", "\"GET\"", Some("x")) + &req("https://a.com/", "\"POST\"", Some("y")), vec![]),
        (req("https://a.com/x/", "\"GET\"", Some("x")) + &req("https://a.com/y/", "\"POST\"", Some("y")), vec![]),
        // Port `*` overlaps any port.
        (req("https://a.com:*/", "\"GET\"", Some("x")) + &req("https://a.com:8443/", "\"POST\"", Some("y")), vec![O]),
        // A wildcard never contains its apex.
        (req("https://*.a.com/", "\"GET\"", Some("x")) + &req("https://a.com/", "\"GET\"", Some("x")), vec![]),
        // Other capability: never paired.
        (req("https://a.com/", "\"GET\"", Some("x")) + &ws("wss://a.com/", Some("y")), vec![]),
        // Narrower networks are contained in wider ones.
        ("[[host_api.websocket]]\nurl = \"wss://*.corp.example/\"\nnetworks = [\"10.0.0.0/8\"]\nreason = \"x\"\n[[host_api.websocket]]\nurl = \"wss://db.corp.example/\"\nnetworks = [\"10.1.0.0/16\"]\nreason = \"x\"\n".to_string(), vec![R]),
    ];
    for (text, want) in &cases {
        assert_eq!(&lints(text, None), want, "{text}");
    }
}

#[test]
fn grant_narrows_is_a_note() {
    let m = req("https://a.com/", "\"GET\", \"POST\"", Some("x"));
    let g_same = "[[host_api.request]]\nurl = \"https://a.com/\"\n";
    let g_methods = "[[host_api.request]]\nurl = \"https://a.com/\"\nmethods = [\"GET\"]\n";
    let g_path = "[[host_api.request]]\nurl = \"https://a.com/v2/\"\n";
    assert_eq!(lints(&m, Some(g_same)), vec![]);
    assert_eq!(lints(&m, Some(g_methods)), vec![Code::GrantNarrows]);
    assert_eq!(lints(&m, Some(g_path)), vec![Code::GrantNarrows]);
    assert_eq!(
        Code::GrantNarrows.severity(),
        netgrant_policy::Severity::Note
    );
}

#[test]
fn many_targets_lint_through_the_index() {
    // 5,000 distinct hosts plus one any-host target: every target is
    // redundant with `https://*/`, and nothing else pairs.
    let mut text = req("https://*/", "\"*\"", Some("x"));
    for i in 0..5000 {
        text.push_str(&req(
            &format!("https://h{i}.example.com/"),
            "\"GET\"",
            Some("x"),
        ));
    }
    let got = lints(&text, None);
    assert_eq!(got.len(), 5000);
    assert!(got.iter().all(|c| *c == Code::RedundantTarget));
}

#[test]
fn credential_not_bound() {
    use Code::CredentialNotBound as C;
    let m = "[[host_api.request]]\nurl = \"https://api.example.com/v1/\"\nmethods = [\"GET\"]\nreason = \"r\"\ncredentials = [{ name = \"key\", header = \"X-Api-Key\" }, { name = \"tok\", header = \"Authorization\" }]\n";
    let entry = "[[host_api.request]]\nurl = \"https://api.example.com/v1/\"\n";
    // No grant: nothing granted, nothing to bind yet.
    assert_eq!(lints(m, None), vec![]);
    // Granted, neither bound: one lint per credential.
    assert_eq!(lints(m, Some(entry)), vec![C, C]);
    // One bound.
    let one = format!("{entry}credentials = {{ key = \"vault/key\" }}\n");
    assert_eq!(lints(m, Some(&one)), vec![C]);
    // Both bound.
    let both = format!("{entry}credentials = {{ key = \"vault/key\", tok = \"vault/tok\" }}\n");
    assert_eq!(lints(m, Some(&both)), vec![]);
    // Not granted at all: not_granted is for review, not this lint.
    let other = "[[host_api.request]]\nurl = \"https://other.example.com/\"\nmethods = [\"GET\"]\nreason = \"r\"\n";
    let m2 = format!("{m}{other}");
    let g2 = "[[host_api.request]]\nurl = \"https://other.example.com/\"\n";
    assert_eq!(lints(&m2, Some(g2)), vec![]);
}
