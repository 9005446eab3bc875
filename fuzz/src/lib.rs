//! Shared pieces of the netgrant fuzz targets: invariant checks that several
//! targets use, and a deliberately simple *reference* of the spec's matching
//! rules (docs/spec.md §2, §5) that the `authorize` and `grant` targets compare the
//! production code against.
//!
//! The reference is written from docs/spec.md, not from `netgrant-policy`'s
//! sources: plain string and integer comparisons, its own address table, its
//! own network parsing. It only ever reads the *IR* (strings) and URLs parsed
//! by the `url` crate, so a bug in the production normalizers, indexes or
//! address table cannot hide behind the same bug here.

use netgrant_policy::{load_policy, CompiledPolicy, Diagnostic};

pub mod authorize;
pub mod credentials;
// The runtime's credential masking and substitution, built from its source
// without the rest of the runtime (no tokio, hyper or rustls under the
// fuzzing instrumentation): both files use nothing else from their crate.
#[path = "../../runtime/src/credentials/inject.rs"]
pub mod cred_inject;
#[path = "../../runtime/src/credentials/mask.rs"]
pub mod cred_mask;
pub mod reference;

/// Everything observable about a list of diagnostics, for determinism checks
/// (`Diagnostic` is not `PartialEq`: it carries its source).
pub fn fingerprint(diags: &[Diagnostic]) -> Vec<String> {
    fn one(d: &Diagnostic, out: &mut Vec<String>, depth: usize) {
        out.push(format!(
            "{depth} {} {:?} {:?} {:?} {:?}",
            d.code,
            d.severity(),
            d.message,
            d.help,
            d.labels
        ));
        for r in &d.related {
            one(r, out, depth + 1);
        }
    }
    let mut out = Vec::new();
    for d in diags {
        one(d, &mut out, 0);
    }
    out
}

/// Every diagnostic that has labels has its file attached, every label lies
/// inside that file and on char boundaries, and rendering works (what `check`
/// prints). Related diagnostics are checked the same way.
pub fn check_labels(diags: &[Diagnostic]) {
    for d in diags {
        match d.source_text() {
            None => assert!(d.labels.is_empty(), "{}: labels without a file", d.code),
            Some(text) => {
                for l in &d.labels {
                    assert!(
                        l.span.start <= l.span.end && l.span.end <= text.len(),
                        "{}: label {:?} outside a {}-byte file",
                        d.code,
                        l.span,
                        text.len()
                    );
                    assert!(
                        text.is_char_boundary(l.span.start) && text.is_char_boundary(l.span.end),
                        "{}: label {:?} not on char boundaries",
                        d.code,
                        l.span
                    );
                }
            }
        }
        let _ = netgrant_policy::diagnostics::render(d, false);
        check_labels(&d.related);
    }
}

/// A compiled IR re-loads: `load_policy(to_json)` succeeds, gives the same
/// policy, and serializes to the same bytes. Also checks the digest field is
/// the digest of the rest.
pub fn check_reload(p: &CompiledPolicy) {
    let json = p.to_json();
    assert_eq!(p.digest, p.compute_digest(), "digest is stale");
    let loaded = match load_policy("ir.json", &json) {
        Ok(l) => l,
        Err(d) => panic!(
            "compiled IR does not re-load: {:?}\n{json}",
            fingerprint(&d)
        ),
    };
    assert_eq!(&loaded, p, "re-loaded IR differs");
    assert_eq!(
        loaded.to_json(),
        json,
        "re-loaded IR serializes differently"
    );
}
