//! Manifest bytes → `Manifest::parse_bytes` → `compile` → `lint`.
//!
//! Invariants: no panic; a rejected file has an error diagnostic; labels lie
//! inside their file; parsing, compiling and linting are deterministic (run
//! twice in one process, so `HashMap` seeds differ); the IR re-loads to the
//! same bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use netgrant_fuzz::{check_labels, check_reload, fingerprint};
use netgrant_policy::{compile, lint::lint, Manifest, Severity};

fuzz_target!(|data: &[u8]| {
    let parsed = Manifest::parse_bytes("plugin.toml", data);
    check_labels(&parsed.diagnostics);
    let Some(m) = parsed.value else {
        assert!(
            parsed
                .diagnostics
                .iter()
                .any(|d| d.severity() == Severity::Error),
            "rejected without an error: {:?}",
            fingerprint(&parsed.diagnostics)
        );
        return;
    };
    let again = Manifest::parse_bytes("plugin.toml", data);
    assert_eq!(
        fingerprint(&parsed.diagnostics),
        fingerprint(&again.diagnostics),
        "parsing is not deterministic"
    );
    let m2 = again.value.expect("parsed once, parses twice");
    let a = compile(&m, None);
    let b = compile(&m2, None);
    assert_eq!(fingerprint(&a.diagnostics), fingerprint(&b.diagnostics));
    check_labels(&a.diagnostics);
    match (&a.policy, &b.policy) {
        (Some(p), Some(q)) => {
            assert_eq!(p.to_json(), q.to_json(), "compile is not deterministic");
            check_reload(p);
            let la = lint(&m, None, p);
            assert_eq!(
                fingerprint(&la),
                fingerprint(&lint(&m2, None, q)),
                "lint is not deterministic"
            );
            check_labels(&la);
        }
        (None, None) => assert!(
            a.diagnostics
                .iter()
                .any(|d| d.severity() == Severity::Error),
            "no policy and no error"
        ),
        _ => panic!("compile is not deterministic (policy vs none)"),
    }
});
