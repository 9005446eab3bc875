//! Regressions found by the fuzz targets in `fuzz/` (see docs/fuzzing.md):
//! each test is the minimized input of one crash, and asserts the fixed
//! behaviour.

use netgrant_policy::{compile, load_policy, Code, Manifest};
use netgrant_policy::{Target, TargetErrorKind};

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

/// fuzz target `authorize`: `/debug/%252e%252e/..;/v1` under the prefix
/// `/debug/` was allowed. Path readings resolved dot segments after each
/// decoding layer, so after one layer the `..;` (a `..` once params are
/// stripped) removed the still-encoded `%2e%2e`; but a server that decodes
/// both layers first reads `/debug/../..;/v1`, i.e. `/..;/v1` or `/v1` —
/// outside the prefix. Readings now also decode every layer before resolving.
#[test]
fn encoded_dot_segments_are_not_consumed_before_decoding() {
    use netgrant_policy::PathReadings;
    let cases = [
        // (URL path, prefix)
        ("/debug/%252e%252e/..;/v1", "/debug/"),
        ("/debug/%252E%252E/..;x/v1", "/debug/"),
        ("/a/%252e%252e/a;x/b", "/a/"),
    ];
    for (p, prefix) in cases {
        let url = url::Url::parse(&format!("http://h.example{p}")).unwrap();
        let r = PathReadings::parse(url.path()).expect(p);
        assert!(
            !r.all_inside(prefix),
            "{p} is inside {prefix} under every reading: {:?}",
            r.all()
        );
        assert!(r.ambiguous_for(prefix), "{p}: {:?}", r.all());
    }
    // End to end: the fuzzer's policy and URL.
    let m = "[plugin]\nname = \"fuzz\"\nversion = \"1.0.0\"\n\
             [[host_api.request]]\nurl = \"http://*.example.net:*/debug/\"\nmethods = [\"GET\"]\n";
    let g = "plugin = \"fuzz\"\n[[host_api.request]]\nurl = \"http://*.example.net:*/debug/\"\n";
    let manifest = Manifest::parse("plugin.toml", m).value.unwrap();
    let grant = netgrant_policy::Grant::parse("grant.toml", g)
        .value
        .unwrap();
    let policy = compile(&manifest, Some(&grant)).policy.unwrap();
    let authz = netgrant_policy::Authorizer::new(&policy);
    let deny = authz.authorize(
        &netgrant_policy::Request::http("GET", "HTTP://x.example.net:8080/debug/%252e%252e/..;/v1"),
        None,
    );
    assert_eq!(deny.code, "ambiguous_path", "{}", deny.message());
    // Honest paths under the prefix stay allowed.
    for ok in [
        "http://x.example.net/debug/",
        "http://x.example.net/debug/a%2Fb",
        "http://x.example.net/debug/x/..;/y",
        "http://x.example.net/debug/%2541",
    ] {
        let d = authz.authorize(&netgrant_policy::Request::http("GET", ok), None);
        assert!(d.is_allowed(), "{ok}: {} {}", d.code, d.message());
    }
}

/// fuzz target `authorize` (debug assertions on): `redact` dropped the `/.`
/// that the WHATWG serializer puts before a `//` path of a URL without a
/// host, so `wss+x:/.//?q=1` was shown as `wss+x://?q=…` — a different URL,
/// with an authority — and the authorizer's debug self-check of its redaction
/// fast path panicked (in debug builds of the CLI too).
#[test]
fn redaction_keeps_the_path_marker_of_hostless_urls() {
    use netgrant_policy::redact::redact_url;
    assert_eq!(redact_url("wss+x:/.//?q=1"), "wss+x:/.//?q=…");
    assert_eq!(redact_url("wss+x:/.//a"), "wss+x:/.//a");
    assert_eq!(redact_url("foo:/.//x#frag"), "foo:/.//x#…");
    // Ordinary URLs are unchanged.
    assert_eq!(
        redact_url("wss://u:p@h.example:8443/a?q=1"),
        "wss://h.example:8443/a?q=…"
    );
    // The authorizer (whose debug build compares its fast path with
    // `redact`) decides such URLs without panicking.
    let m = "[plugin]\nname = \"p\"\nversion = \"1.0.0\"\n\
             [[host_api.websocket]]\nurl = \"wss://h.example/\"\n";
    let manifest = Manifest::parse("plugin.toml", m).value.unwrap();
    let policy = compile(&manifest, None).policy.unwrap();
    let authz = netgrant_policy::Authorizer::new(&policy);
    for url in ["wss+x:/.//?q=1", "wss+x:/.//", "x:/.//?a=b#c"] {
        let d = authz.authorize(&netgrant_policy::Request::websocket(url), None);
        assert_eq!(d.code, "invalid_url", "{url}");
        assert_eq!(d.url(), redact_url(url));
        assert!(d.url().contains("/.//"), "{}", d.url());
    }
}
