//! IR bytes → `load_policy`.
//!
//! Invariants: no panic; a rejected IR has an error diagnostic whose labels
//! lie inside the file; loading is deterministic; an accepted IR
//! re-serializes to canonical bytes that load again to an equal policy and
//! the same bytes (the input text itself may differ in JSON whitespace or key
//! order, which serde accepts); its digest is the digest of the rest; and
//! every granted entry with an exact host and port allows its own target.
//!
//! A mutated IR almost always fails on its digests, which the fuzzer cannot
//! forge; so when loading fails only because a digest disagrees, the target
//! writes in the recomputed digest and loads again (at most twice:
//! `requested_digest`, then `digest`). That lets edited-but-consistent IRs
//! reach the accept path and its invariants.
#![no_main]

use libfuzzer_sys::fuzz_target;
use netgrant_fuzz::{check_labels, check_reload, fingerprint};
use netgrant_policy::ir::Port;
use netgrant_policy::HostKind;
use netgrant_policy::{load_policy, Authorizer, Capability, CompiledPolicy, Request, Severity};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut text = text.to_string();
    for _ in 0..3 {
        match load_policy("ir.json", &text) {
            Err(diags) => {
                check_labels(&diags);
                assert!(
                    diags.iter().any(|d| d.severity() == Severity::Error),
                    "rejected without an error: {:?}",
                    fingerprint(&diags)
                );
                let Some((recorded, recomputed)) = digest_mismatch(&diags[0].message) else {
                    return;
                };
                text = text.replace(&recorded, &recomputed);
            }
            Ok(p) => {
                accepted(&text, &p);
                return;
            }
        }
    }
});

/// `(recorded, recomputed)` from a "digest disagrees with recomputation"
/// message.
fn digest_mismatch(message: &str) -> Option<(String, String)> {
    let rest = message
        .split_once("disagrees with recomputation (recorded ")?
        .1;
    let (recorded, rest) = rest.split_once(", recomputed ")?;
    let recomputed = rest.strip_suffix(')')?;
    (recorded.starts_with("sha256:") && recomputed.starts_with("sha256:"))
        .then(|| (recorded.to_string(), recomputed.to_string()))
}

fn accepted(text: &str, p: &CompiledPolicy) {
    check_reload(p);
    // Same text, same answer (HashMap seeds differ between calls).
    assert_eq!(load_policy("ir.json", text).as_ref().ok(), Some(p));
    // Every granted entry with an exact host and port allows its own
    // target string as a URL.
    let a = Authorizer::new(p);
    for e in p.granted() {
        if matches!(e.host_kind, HostKind::Any | HostKind::Wildcard)
            || matches!(e.port, Port::Any(_))
        {
            continue;
        }
        let req = match e.capability {
            Capability::Websocket => Request::websocket(&e.target),
            Capability::Request => {
                let m = e
                    .methods
                    .as_ref()
                    .and_then(|m| m.first())
                    .map_or("GET", |m| if m == "*" { "GET" } else { m.as_str() });
                Request::http(m, &e.target)
            }
        };
        let d = a.authorize(&req, None);
        assert!(
            d.is_allowed(),
            "granted {} denies its own target: {} {}",
            e.id,
            d.code,
            d.message()
        );
    }
}
