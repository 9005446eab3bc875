//! Target text → `Target::parse`.
//!
//! Invariants: no panic; an error's span lies inside the text on char
//! boundaries; on success the display (the canonical spelling) re-parses to
//! an equal target and displays the same (normalization is idempotent), as
//! do its upper-cased scheme/host and explicit-default-port spellings;
//! `contains` is reflexive; and the target matches a URL built from its own
//! spelling (a target that matches nothing is a bug).
#![no_main]

use libfuzzer_sys::fuzz_target;
use netgrant_policy::PathReadings;
use netgrant_policy::{HostPattern, PortPattern, Target, UrlHost, MAX_URL_BYTES};

fuzz_target!(|data: &[u8]| {
    let Ok(raw) = std::str::from_utf8(data) else {
        return;
    };
    let t = match Target::parse(raw) {
        Ok(t) => t,
        Err(e) => {
            assert!(
                e.span.start <= e.span.end && e.span.end <= raw.len(),
                "error span {:?} outside {} bytes",
                e.span,
                raw.len()
            );
            assert!(raw.is_char_boundary(e.span.start) && raw.is_char_boundary(e.span.end));
            assert!(!e.message.is_empty() && !e.help.is_empty());
            return;
        }
    };
    let shown = t.to_string();
    let again = Target::parse(&shown).unwrap_or_else(|e| {
        panic!(
            "{raw:?} displays as {shown:?}, which is rejected: {}",
            e.message
        )
    });
    assert_eq!(again, t, "{raw:?} -> {shown:?}");
    assert_eq!(again.to_string(), shown);
    assert!(t.contains(&t), "{shown} does not contain itself");
    assert_eq!(t.capability(), t.scheme.capability());

    // Spelling variants of the canonical form: upper-case scheme and host,
    // and the default port written out.
    let (scheme_host, rest) = split_authority(&shown);
    let upper = format!("{}{rest}", scheme_host.to_ascii_uppercase());
    assert_eq!(
        Target::parse(&upper).as_ref(),
        Ok(&t),
        "{upper:?} vs {shown:?}"
    );
    if t.port == PortPattern::Exact(t.scheme.default_port()) {
        let (host_part, path_part) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
        let explicit = format!(
            "{scheme_host}{host_part}:{}{path_part}",
            t.scheme.default_port()
        );
        // (Writing the port out may push a target at the limit past it.)
        if explicit.len() <= MAX_URL_BYTES {
            assert_eq!(
                Target::parse(&explicit).as_ref(),
                Ok(&t),
                "{explicit:?} vs {shown:?}"
            );
        }
    }

    // The target matches a URL made from its own spelling.
    let host = match &t.host {
        HostPattern::Any => "example.com".to_string(),
        HostPattern::Wildcard(s) => format!("x.{s}"),
        h => h.to_string(),
    };
    let port = match t.port {
        PortPattern::Any => 8080,
        PortPattern::Exact(p) => p,
    };
    let url_text = format!("{}://{host}:{port}{}", t.scheme, t.path);
    let url = url::Url::parse(&url_text)
        .unwrap_or_else(|e| panic!("{shown}: own URL {url_text:?} does not parse: {e}"));
    let uhost = UrlHost::from_url(&url).unwrap_or_else(|| panic!("{url_text}: no host"));
    assert!(
        t.host.matches(&uhost),
        "{shown} does not match its own host {uhost}"
    );
    assert!(t.port.matches(url.port_or_known_default().unwrap()));
    let readings = PathReadings::parse(url.path())
        .unwrap_or_else(|e| panic!("{shown}: own path {:?} is unreadable: {e}", url.path()));
    assert!(
        readings.all_inside(&t.path),
        "{shown}: own path {:?} (readings {:?}) is not inside {:?}",
        url.path(),
        readings.all(),
        t.path
    );
});

/// Splits `scheme://host[:port]/path` into `scheme://host` (up to the port or
/// path) and the rest.
fn split_authority(s: &str) -> (&str, &str) {
    let start = s.find("://").map_or(0, |i| i + 3);
    let body = &s[start..];
    let end = if body.starts_with('[') {
        body.find(']').map_or(body.len(), |i| i + 1)
    } else {
        body.find([':', '/']).unwrap_or(body.len())
    };
    s.split_at(start + end)
}
