//! Which request a grant entry narrows (docs/spec.md §3.2, docs/decisions.md #9): any
//! containing request makes an entry effective, not only an equal-target one.

use netgrant_policy::ir::Status;
use netgrant_policy::{compile, Grant, Manifest};

fn policy(manifest: &str, grant: &str) -> netgrant_policy::CompiledPolicy {
    let m = Manifest::parse("plugin.toml", manifest).value.unwrap();
    let g = Grant::parse("grant.toml", grant).value.unwrap();
    let c = compile(&m, Some(&g));
    assert!(
        c.diagnostics.iter().all(|d| !d.severity().is_error()),
        "{:?}",
        c.diagnostics
    );
    c.policy.unwrap()
}

const MANIFEST: &str = r#"
[plugin]
name = "p"
version = "1.0.0"

[[host_api.request]]
url = "https://a.example.com/"
methods = ["GET"]

[[host_api.request]]
url = "https://*.example.com/"
methods = ["GET", "POST"]
"#;

#[test]
fn equal_target_request_that_cannot_contain_falls_back_to_wildcard() {
    let p = policy(
        MANIFEST,
        r#"
plugin = "p"
[[host_api.request]]
url = "https://a.example.com/"
methods = ["POST"]
"#,
    );
    let e = p
        .entries
        .iter()
        .find(|e| e.target == "https://a.example.com/" && e.status == Status::Granted)
        .expect("granted through the wildcard request");
    assert_eq!(e.methods.as_deref(), Some(&["POST".to_string()][..]));
    assert_eq!(
        e.narrows.as_ref().map(|n| n.target.as_str()),
        Some("https://*.example.com/")
    );
    assert!(p.ignored.is_empty());
    // The equal-target request stays not granted (nothing narrows it).
    assert!(p
        .entries
        .iter()
        .any(|e| e.target == "https://a.example.com/" && e.status == Status::NotGranted));
    // And the IR re-loads (re-validation agrees with the parent choice).
    netgrant_policy::load_policy("ir.json", &p.to_json()).unwrap();
}

#[test]
fn equal_target_request_is_preferred_when_it_contains() {
    let p = policy(
        MANIFEST,
        r#"
plugin = "p"
[[host_api.request]]
url = "https://a.example.com/"
"#,
    );
    let e = p
        .entries
        .iter()
        .find(|e| e.target == "https://a.example.com/")
        .unwrap();
    assert_eq!(e.status, Status::Granted);
    // Defaults come from the equal-target request: GET only, no narrowing.
    assert_eq!(e.methods.as_deref(), Some(&["GET".to_string()][..]));
    assert!(e.narrows.is_none());
}
