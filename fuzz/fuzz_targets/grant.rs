//! Grant bytes → `Grant::parse_bytes` → `compile` against a fixed manifest
//! (the one whose plugin name the grant names: one of the examples, one of
//! the policies of `tests/authorize.toml`, or else a richer built-in one) →
//! `lint`.
//!
//! Invariants: no panic; a rejected file has an error diagnostic; labels lie
//! inside their file; compiling is deterministic; the IR re-loads to the same
//! bytes; every granted entry is contained (by the reference's own docs/spec.md §3.2
//! check, on the IR's strings) in some requested permission; a granted broad
//! entry was approved with `broad = true`; nothing is both granted and ignored.
#![no_main]

use libfuzzer_sys::fuzz_target;
use netgrant_fuzz::reference::RefEntry;
use netgrant_fuzz::{check_labels, check_reload, fingerprint};
use netgrant_policy::ir::Status;
use netgrant_policy::{compile, lint::lint, CompiledPolicy, Grant, Manifest, Severity};
use std::sync::OnceLock;

const RICH: &str = r#"[plugin]
name = "bridge"
version = "0.3.1"

[[host_api.request]]
url = "https://api.example.com/v1/"
methods = ["GET", "POST"]
headers = ["X-Audit-Log-Reason", "X-Request-Id"]
reason = "Post replies"

[[host_api.request]]
url = "http://*.example.com:*/"
methods = "*"

[[host_api.request]]
url = "https://[2001:db8::1]:8443/api/"
methods = ["GET", "PUT", "DELETE"]

[[host_api.websocket]]
url = "wss://*.example.com/"
subprotocols = ["json", "chat"]
reason = "Receive events"

[[host_api.websocket]]
url = "wss://events.corp.example/"
networks = ["10.0.0.0/8", "fd12:3456:789a::/48", "192.168.1.0/24"]

[[host_api.websocket]]
url = "ws://localhost:9000/"

[[host_api.websocket]]
url = "ws://127.0.0.1:*/debug/"

[[host_api.websocket]]
url = "wss://*/"
reason = "User-configured relays"

[[host_api.request]]
url = "https://*.co.uk/"
methods = ["GET"]
"#;

const EXAMPLES: &[&str] = &[
    include_str!("../../examples/discord-bridge/plugin.toml"),
    include_str!("../../examples/internal-events/plugin.toml"),
    include_str!("../../examples/local-dev/plugin.toml"),
    include_str!("../../examples/broad-scraper/plugin.toml"),
    RICH,
];

/// The policies of the adversarial authorization table.
const TABLE: &str = include_str!("../../tests/authorize.toml");

/// Each manifest with its requested set (the IR of compiling it alone); the
/// built-in one last.
fn manifests() -> &'static [(Manifest, CompiledPolicy)] {
    static M: OnceLock<Vec<(Manifest, CompiledPolicy)>> = OnceLock::new();
    M.get_or_init(|| {
        let table: toml::Table = TABLE.parse().expect("tests/authorize.toml parses");
        let from_table = table["policy"]
            .as_table()
            .expect("[policy.*] tables")
            .values()
            .map(|p| p["manifest"].as_str().expect("manifest text").to_string());
        let mut texts: Vec<String> = EXAMPLES[..EXAMPLES.len() - 1]
            .iter()
            .map(|s| s.to_string())
            .chain(from_table)
            .collect();
        texts.push(RICH.to_string());
        texts
            .iter()
            .map(|t| {
                let m = Manifest::parse("plugin.toml", t)
                    .value
                    .expect("manifest parses");
                let p = compile(&m, None).policy.expect("manifest compiles");
                (m, p)
            })
            .collect()
    })
}

fuzz_target!(|data: &[u8]| {
    let parsed = Grant::parse_bytes("grant.toml", data);
    check_labels(&parsed.diagnostics);
    let Some(g) = parsed.value else {
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
    let all = manifests();
    let (m, requested) = all
        .iter()
        .find(|(m, _)| m.name == g.plugin)
        .unwrap_or(&all[all.len() - 1]);
    let a = compile(m, Some(&g));
    let b = compile(m, Some(&g));
    assert_eq!(fingerprint(&a.diagnostics), fingerprint(&b.diagnostics));
    check_labels(&a.diagnostics);
    let (p, q) = match (&a.policy, &b.policy) {
        (Some(p), Some(q)) => (p, q),
        (None, None) => {
            assert!(
                a.diagnostics
                    .iter()
                    .any(|d| d.severity() == Severity::Error),
                "no policy and no error"
            );
            return;
        }
        _ => panic!("compile is not deterministic (policy vs none)"),
    };
    assert_eq!(p.to_json(), q.to_json(), "compile is not deterministic");
    check_reload(p);
    let l = lint(m, Some(&g), p);
    assert_eq!(fingerprint(&l), fingerprint(&lint(m, Some(&g), q)));
    check_labels(&l);

    let requests: Vec<RefEntry> = requested.entries.iter().map(RefEntry::from_ir).collect();
    for e in p.entries.iter().filter(|e| e.status == Status::Granted) {
        let got = RefEntry::from_ir(e);
        assert!(
            requests.iter().any(|r| r.contains(&got)),
            "granted entry {} is not contained in any request\n{}",
            e.id,
            p.to_json()
        );
        if e.flags.broad {
            assert!(e.approved_broad, "{} is broad without approval", e.id);
        }
        assert!(
            !p.ignored
                .iter()
                .any(|i| i.capability == e.capability && i.target == e.target),
            "{} is both granted and ignored",
            e.id
        );
    }
    // Every request shows up: granted (itself or through narrowing entries)
    // or not granted.
    for r in &requested.entries {
        assert!(
            p.entries.iter().any(|e| e.id == r.id
                || (e.capability == r.capability
                    && e.narrows.as_ref().is_some_and(|n| n.target == r.target))),
            "request {} vanished from the IR",
            r.id
        );
    }
});
