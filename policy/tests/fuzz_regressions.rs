//! Regressions found by the fuzz targets in `fuzz/` (see docs/fuzzing.md):
//! each test is the minimized input of one crash, and asserts the fixed
//! behaviour.

use netgrant_policy::target::{Target, TargetErrorKind};
use netgrant_policy::{compile, load_policy, Code, Manifest};

/// fuzz target `target`: IDNA maps the fullwidth asterisk `＊` (U+FF0A) and
/// the small asterisk `﹡` (U+FE61) to `*`, so these hosts used to parse as
/// *domains* whose canonical spelling reads as a wildcard or as `*` — the
/// display did not parse back to the same target, and the IR did not re-load.
/// They are now rejected as malformed wildcards.
#[test]
fn idna_mapped_asterisk_is_not_a_domain() {
    for raw in [
        "wss://＊.example.com/",
        "wss://＊/",
        "wss://﹡.example.com/",
        "wss://a＊b.example/",
        "wss://*.a＊b.example/",
        "wss://bücher((((＊example/",
        "https://＊。example.com/v1/",
    ] {
        let e = Target::parse(raw).expect_err(raw);
        assert_eq!(e.kind, TargetErrorKind::Wildcard, "{raw}: {}", e.message);
        assert!(e.message.contains("contains `*`"), "{raw}: {}", e.message);
        assert!(e.span.end <= raw.len() && raw.is_char_boundary(e.span.start));
    }
    // The ASCII spellings keep working.
    assert_eq!(
        Target::parse("wss://*.example.com/").unwrap().to_string(),
        "wss://*.example.com/"
    );
    // In a manifest it is a diagnostic on the URL, not a policy.
    let m = "[plugin]\nname = \"p\"\nversion = \"1.0.0\"\n\
             [[host_api.websocket]]\nurl = \"wss://＊.example.com/\"\n";
    let parsed = Manifest::parse("plugin.toml", m);
    assert!(parsed.value.is_none());
    assert_eq!(parsed.diagnostics[0].code, Code::Wildcard);
}

/// Every accepted target's canonical spelling re-parses to itself, and a
/// compiled IR re-loads: the invariant the crash above broke, checked on the
/// neighbours of the crashing input.
#[test]
fn canonical_hosts_round_trip() {
    for raw in [
        "wss://bücher.example/",
        "wss://a(b.example/",
        "wss://*.bücher.example/",
        "wss://xn--bcher-kva.example/",
        "wss://EXAMPLE．com/",
    ] {
        let t = Target::parse(raw).expect(raw);
        let shown = t.to_string();
        assert_eq!(Target::parse(&shown).as_ref(), Ok(&t), "{raw} -> {shown}");
        let m = format!(
            "[plugin]\nname = \"p\"\nversion = \"1.0.0\"\n[[host_api.websocket]]\nurl = \"{raw}\"\n"
        );
        let manifest = Manifest::parse("plugin.toml", &m).value.expect(raw);
        let policy = compile(&manifest, None).policy.expect(raw);
        let loaded = load_policy("ir.json", &policy.to_json()).expect(raw);
        assert_eq!(loaded, policy, "{raw}");
    }
}

/// fuzz target `target`: a target within the 2,048-byte limit whose
/// canonical spelling is longer (every `"` becomes `%22`, `é` becomes
/// `%C3%A9`, a U-label becomes an A-label) used to be accepted, and its
/// canonical spelling — what the IR records — was then rejected as too long,
/// so the compiled IR could not be loaded. The limit now applies to the
/// canonical spelling too.
#[test]
fn canonical_spelling_within_the_length_limit() {
    let quotes = format!("wss://h.example/{}", "\"".repeat(2030));
    let accents = format!("wss://h.example/{}", "é".repeat(1000));
    for raw in [&quotes, &accents] {
        assert!(raw.len() <= 2048, "{}", raw.len());
        let e = Target::parse(raw).expect_err("too long once normalized");
        assert_eq!(e.kind, TargetErrorKind::TooLong, "{}", e.message);
        assert!(e.message.contains("once normalized"), "{}", e.message);
    }
    // Exactly at the limit after normalization is fine, and round-trips.
    let at_limit = format!("wss://h.example/{}", "a".repeat(2048 - 16));
    assert_eq!(at_limit.len(), 2048);
    let t = Target::parse(&at_limit).expect("at the limit");
    assert_eq!(Target::parse(&t.to_string()).as_ref(), Ok(&t));
    // Just over the limit once `"` is encoded.
    let over = format!("wss://h.example/{}\"", "a".repeat(2048 - 16 - 2));
    assert!(over.len() < 2048 && Target::parse(&over).is_err());
    // In a manifest: a diagnostic, not an IR that fails to load.
    let m = format!(
        "[plugin]\nname = \"p\"\nversion = \"1.0.0\"\n[[host_api.websocket]]\nurl = '{quotes}'\n"
    );
    let parsed = Manifest::parse("plugin.toml", &m);
    assert!(parsed.value.is_none());
    assert_eq!(parsed.diagnostics[0].code, Code::TargetTooLong);
}
