//! The JSON Schemas (for editors and CI) and the spanned walker (authoritative)
//! agree on structural validity.
//!
//! For every input: the TOML is converted to JSON (`toml` → `serde_json`) and
//! validated against `schema_value(SchemaKind::Manifest|Grant)`; the same text
//! goes through `Manifest::parse` / `Grant::parse`. Then:
//!
//! * whatever the schema rejects, the walker rejects too;
//! * whatever the walker rejects while the schema accepts is rejected only
//!   for reasons a JSON Schema cannot express — the codes in [`WALKER_ONLY`];
//! * each inline case states which of the three outcomes it expects (both
//!   accept, both reject, walker only), so the corpus keeps testing what it
//!   says it tests.
//!
//! The corpus: the inline cases below, every TOML fixture of
//! `tests/diagnostics/`, and the manifests and grants under `examples/`.

use netgrant_policy::schema::{schema_value, SchemaKind};
use netgrant_policy::{Code, Grant, Manifest};
use std::path::Path;

/// Problems only the walker can find. A walker-only rejection must consist of
/// these codes alone; anything else the walker rejects, the schema must too.
const WALKER_ONLY: &[(Code, &str)] = &[
    (
        Code::TargetSyntax,
        "control characters other than whitespace; the schema only excludes \\s",
    ),
    (
        Code::TargetTooLong,
        "the limit is 2,048 bytes; JSON Schema's maxLength counts characters",
    ),
    (
        Code::Wildcard,
        "the wildcard grammar (whole leftmost label, once, over a domain)",
    ),
    (Code::Host, "domain and IP-literal syntax, IDNA"),
    (Code::Port, "port range 1-65535"),
    (
        Code::Path,
        "path-prefix rules: globs, ambiguous escapes, `;`, `\\`",
    ),
    (
        Code::ForbiddenAddress,
        "never-reachable IP literals (metadata, unspecified, multicast)",
    ),
    (
        Code::ForbiddenHeader,
        "never-allowed and credential-like header names",
    ),
    (
        Code::InvalidNetwork,
        "CIDR syntax and prefix lengths; the schema only checks characters",
    ),
    (
        Code::ForbiddenNetwork,
        "networks entirely in never-reachable ranges",
    ),
    (
        Code::PluginVersion,
        "full semver (no leading zeros in pre-release identifiers, at most 128 bytes)",
    ),
    (
        Code::CredentialHeader,
        "never-allowed and always-allowed credential headers, and a header also in `headers`",
    ),
    (
        Code::CredentialFormat,
        "`{secret}` exactly once; the schema checks only that it is there",
    ),
    (
        Code::CredentialDuplicateName,
        "credential names unique per target",
    ),
    (
        Code::CredentialBroadTarget,
        "a credential on a broad target (derived flags)",
    ),
    (
        Code::CredentialPlaintextTarget,
        "a credential on plaintext http/ws except loopback",
    ),
    (
        Code::CredentialAnyPortTarget,
        "a credential on a target with port `*`",
    ),
    (
        Code::TooMany,
        "the 10,000-target limit counts both capabilities together; the schema limits each array",
    ),
];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Manifest,
    Grant,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Expect {
    /// Schema and walker both accept.
    Valid,
    /// Schema and walker both reject.
    Invalid,
    /// Only the walker rejects (a semantic check), with this code.
    WalkerOnly(Code),
}

use Expect::*;
use Kind::*;

struct Case {
    name: String,
    kind: Kind,
    text: String,
    expect: Option<Expect>,
}

fn case(name: &str, kind: Kind, text: &str, expect: Expect) -> Case {
    Case {
        name: name.into(),
        kind,
        text: text.into(),
        expect: Some(expect),
    }
}

const PLUGIN: &str = "[plugin]\nname = \"demo\"\nversion = \"0.1.0\"\n";

/// A manifest with one websocket target and `extra` lines in it.
fn ws(url: &str, extra: &str) -> String {
    format!("{PLUGIN}\n[[host_api.websocket]]\nurl = \"{url}\"\n{extra}")
}

/// A manifest with one request target and `extra` lines in it.
fn req(url: &str, extra: &str) -> String {
    format!("{PLUGIN}\n[[host_api.request]]\nurl = \"{url}\"\n{extra}")
}

fn grant(body: &str) -> String {
    format!("plugin = \"demo\"\n{body}")
}

fn quoted_list(items: impl IntoIterator<Item = String>) -> String {
    let v: Vec<String> = items.into_iter().map(|s| format!("\"{s}\"")).collect();
    format!("[{}]", v.join(", "))
}

fn inline_cases() -> Vec<Case> {
    let digest = format!("sha256:{}", "0123456789abcdef".repeat(4));
    let mut v = vec![
        // ---- manifests both accept
        case("m_minimal", Manifest, &ws("wss://gateway.example.com/", ""), Valid),
        case("m_no_targets", Manifest, PLUGIN, Valid),
        case("m_methods_star", Manifest, &req("https://api.example.com/", "methods = \"*\"\n"), Valid),
        case("m_methods_star_list", Manifest, &req("https://api.example.com/", "methods = [\"*\"]\n"), Valid),
        case("m_methods_all", Manifest, &req("https://api.example.com/", "methods = [\"GET\", \"HEAD\", \"POST\", \"PUT\", \"PATCH\", \"DELETE\", \"OPTIONS\"]\n"), Valid),
        case("m_path_with_at", Manifest, &req("https://api.example.com/@me/", "methods = [\"GET\"]\n"), Valid),
        case("m_ipv6_port", Manifest, &ws("ws://[::1]:9000/", ""), Valid),
        case("m_idn", Manifest, &req("https://bücher.example/api/", "methods = [\"GET\"]\n"), Valid),
        case("m_uppercase_scheme", Manifest, &ws("WSS://Gateway.Example.COM:443", ""), Valid),
        case("m_any_host_any_port", Manifest, &ws("wss://*:*/", ""), Valid),
        case("m_prerelease", Manifest, "[plugin]\nname = \"0demo-2\"\nversion = \"1.0.0-beta.2+build.5\"\n", Valid),
        case("m_inline_tables", Manifest, "plugin = { name = \"demo\", version = \"0.1.0\" }\nhost_api = { websocket = [{ url = \"wss://x.example.com/\" }] }\n", Valid),
        case("m_empty_arrays", Manifest, &format!("{PLUGIN}[host_api]\nrequest = []\nwebsocket = []\n"), Valid),
        case("m_header_128", Manifest, &req("https://api.example.com/", &format!("methods = [\"GET\"]\nheaders = [\"X-{}\"]\n", "a".repeat(126))), Valid),
        case("m_reason_200_chars", Manifest, &ws("wss://x.example.com/", &format!("reason = \"{}\"\n", "é".repeat(200))), Valid),
        case("m_networks", Manifest, &ws("wss://events.corp.example/", "networks = [\"10.0.0.0/8\", \"fd00::/8\", \"192.168.1.1\"]\n"), Valid),
        case("m_literal_string_url", Manifest, &format!("{PLUGIN}\n[[host_api.websocket]]\nurl = 'wss://x.example.com/'\n"), Valid),
        case("m_16_subprotocols", Manifest, &ws("wss://x.example.com/", &format!("subprotocols = {}\n", quoted_list((0..16).map(|i| format!("p{i}"))))), Valid),
        case("m_32_headers", Manifest, &req("https://x.example.com/", &format!("methods = [\"GET\"]\nheaders = {}\n", quoted_list((0..32).map(|i| format!("X-H{i}"))))), Valid),
        // ---- manifests both reject
        case("m_missing_plugin", Manifest, "[[host_api.websocket]]\nurl = \"wss://x.example.com/\"\n", Invalid),
        case("m_missing_name", Manifest, "[plugin]\nversion = \"0.1.0\"\n", Invalid),
        case("m_unknown_top_key", Manifest, &format!("{PLUGIN}permissions = {{}}\n"), Invalid),
        case("m_unknown_plugin_key", Manifest, "[plugin]\nname = \"demo\"\nversion = \"0.1.0\"\nauthor = \"me\"\n", Invalid),
        case("m_unknown_entry_key", Manifest, &ws("wss://x.example.com/", "timeout = 30\n"), Invalid),
        case("m_unknown_host_api_key", Manifest, &format!("{PLUGIN}\n[[host_api.http]]\nurl = \"https://x.example.com/\"\n"), Invalid),
        case("m_version_integer", Manifest, "[plugin]\nname = \"demo\"\nversion = 1\n", Invalid),
        case("m_version_short", Manifest, "[plugin]\nname = \"demo\"\nversion = \"1.0\"\n", Invalid),
        case("m_name_uppercase", Manifest, "[plugin]\nname = \"Demo\"\nversion = \"0.1.0\"\n", Invalid),
        case("m_name_too_long", Manifest, &format!("[plugin]\nname = \"{}\"\nversion = \"0.1.0\"\n", "a".repeat(65)), Invalid),
        case("m_plugin_string", Manifest, "plugin = \"demo\"\n", Invalid),
        case("m_websocket_single_table", Manifest, &format!("{PLUGIN}\n[host_api.websocket]\nurl = \"wss://x.example.com/\"\n"), Invalid),
        case("m_host_api_array", Manifest, &format!("{PLUGIN}host_api = []\n"), Invalid),
        case("m_entry_not_table", Manifest, &format!("{PLUGIN}[host_api]\nwebsocket = [\"wss://x.example.com/\"]\n"), Invalid),
        case("m_missing_url", Manifest, &format!("{PLUGIN}\n[[host_api.websocket]]\nreason = \"x\"\n"), Invalid),
        case("m_url_integer", Manifest, &format!("{PLUGIN}\n[[host_api.websocket]]\nurl = 443\n"), Invalid),
        case("m_url_datetime", Manifest, &format!("{PLUGIN}\n[[host_api.websocket]]\nurl = 1979-05-27T07:32:00Z\n"), Invalid),
        case("m_methods_missing", Manifest, &req("https://x.example.com/", ""), Invalid),
        case("m_methods_empty", Manifest, &req("https://x.example.com/", "methods = []\n"), Invalid),
        case("m_methods_lowercase", Manifest, &req("https://x.example.com/", "methods = [\"get\"]\n"), Invalid),
        case("m_methods_connect", Manifest, &req("https://x.example.com/", "methods = [\"CONNECT\"]\n"), Invalid),
        case("m_methods_trace", Manifest, &req("https://x.example.com/", "methods = [\"GET\", \"TRACE\"]\n"), Invalid),
        case("m_methods_star_mixed", Manifest, &req("https://x.example.com/", "methods = [\"*\", \"GET\"]\n"), Invalid),
        case("m_methods_other_string", Manifest, &req("https://x.example.com/", "methods = \"GET\"\n"), Invalid),
        case("m_methods_in_websocket", Manifest, &ws("wss://x.example.com/", "methods = [\"GET\"]\n"), Invalid),
        case("m_subprotocols_in_request", Manifest, &req("https://x.example.com/", "methods = [\"GET\"]\nsubprotocols = [\"json\"]\n"), Invalid),
        case("m_scheme_ftp", Manifest, &req("ftp://x.example.com/", "methods = [\"GET\"]\n"), Invalid),
        case("m_ws_in_request", Manifest, &req("wss://x.example.com/", "methods = [\"GET\"]\n"), Invalid),
        case("m_https_in_websocket", Manifest, &ws("https://x.example.com/", ""), Invalid),
        case("m_userinfo", Manifest, &ws("wss://u:p@x.example.com/", ""), Invalid),
        case("m_query", Manifest, &ws("wss://x.example.com/?v=1", ""), Invalid),
        case("m_fragment", Manifest, &req("https://x.example.com/#f", "methods = [\"GET\"]\n"), Invalid),
        case("m_url_space", Manifest, &ws("wss://x.example.com/a b", ""), Invalid),
        case("m_no_scheme", Manifest, &ws("x.example.com", ""), Invalid),
        case("m_reason_newline", Manifest, &ws("wss://x.example.com/", "reason = \"a\\nb\"\n"), Invalid),
        case("m_reason_bidi", Manifest, &ws("wss://x.example.com/", "reason = \"a\\u202Eb\"\n"), Invalid),
        case("m_reason_lrm", Manifest, &ws("wss://x.example.com/", "reason = \"a\\u200Eb\"\n"), Invalid),
        case("m_reason_zero_width", Manifest, &ws("wss://x.example.com/", "reason = \"a\\u200Bb\"\n"), Invalid),
        case("m_reason_nul", Manifest, &ws("wss://x.example.com/", "reason = \"a\\u0000b\"\n"), Invalid),
        case("m_reason_c1", Manifest, &ws("wss://x.example.com/", "reason = \"a\\u0085b\"\n"), Invalid),
        case("m_reason_201_chars", Manifest, &ws("wss://x.example.com/", &format!("reason = \"{}\"\n", "x".repeat(201))), Invalid),
        case("m_reason_integer", Manifest, &ws("wss://x.example.com/", "reason = 5\n"), Invalid),
        case("m_broad_in_manifest", Manifest, &ws("wss://*/", "broad = true\n"), Invalid),
        case("m_header_space", Manifest, &req("https://x.example.com/", "methods = [\"GET\"]\nheaders = [\"X Y\"]\n"), Invalid),
        case("m_header_129", Manifest, &req("https://x.example.com/", &format!("methods = [\"GET\"]\nheaders = [\"X-{}\"]\n", "a".repeat(127))), Invalid),
        case("m_header_not_string", Manifest, &req("https://x.example.com/", "methods = [\"GET\"]\nheaders = [1]\n"), Invalid),
        case("m_headers_33", Manifest, &req("https://x.example.com/", &format!("methods = [\"GET\"]\nheaders = {}\n", quoted_list((0..33).map(|i| format!("X-H{i}"))))), Invalid),
        case("m_subprotocol_invalid", Manifest, &ws("wss://x.example.com/", "subprotocols = [\"a/b c\"]\n"), Invalid),
        case("m_subprotocols_17", Manifest, &ws("wss://x.example.com/", &format!("subprotocols = {}\n", quoted_list((0..17).map(|i| format!("p{i}"))))), Invalid),
        case("m_networks_33", Manifest, &ws("wss://x.example.com/", &format!("networks = {}\n", quoted_list((0..33).map(|i| format!("10.{i}.0.0/16"))))), Invalid),
        case("m_network_letters", Manifest, &ws("wss://x.example.com/", "networks = [\"corp-net\"]\n"), Invalid),
        case("m_toml_syntax", Manifest, &format!("{PLUGIN}\n[[host_api.websocket]]\nurl = \"wss://x.example.com/\n"), Invalid),
        // ---- manifests only the walker rejects
        case("m_wildcard_partial", Manifest, &ws("wss://a*.example.com/", ""), WalkerOnly(Code::Wildcard)),
        case("m_wildcard_ip", Manifest, &ws("wss://*.10.0.0.1/", ""), WalkerOnly(Code::Wildcard)),
        case("m_port_range", Manifest, &ws("wss://x.example.com:99999/", ""), WalkerOnly(Code::Port)),
        case("m_metadata_ip", Manifest, &req("http://169.254.169.254/", "methods = [\"GET\"]\n"), WalkerOnly(Code::ForbiddenAddress)),
        case("m_path_glob", Manifest, &req("https://x.example.com/v1/*", "methods = [\"GET\"]\n"), WalkerOnly(Code::Path)),
        case("m_path_backslash", Manifest, &req("https://x.example.com\\\\admin", "methods = [\"GET\"]\n"), WalkerOnly(Code::Path)),
        case("m_host_empty_label", Manifest, &ws("wss://a..example.com/", ""), WalkerOnly(Code::Host)),
        case("m_url_control", Manifest, &ws("wss://x.example.com/\\u0001", ""), WalkerOnly(Code::TargetSyntax)),
        case("m_header_authorization", Manifest, &req("https://x.example.com/", "methods = [\"GET\"]\nheaders = [\"Authorization\"]\n"), WalkerOnly(Code::ForbiddenHeader)),
        case("m_network_multicast", Manifest, &ws("wss://x.example.com/", "networks = [\"224.0.0.0/4\"]\n"), WalkerOnly(Code::ForbiddenNetwork)),
        case("m_network_bad_octet", Manifest, &ws("wss://x.example.com/", "networks = [\"999.0.0.0/8\"]\n"), WalkerOnly(Code::InvalidNetwork)),
        case("m_version_leading_zero", Manifest, "[plugin]\nname = \"demo\"\nversion = \"1.0.0-01\"\n", WalkerOnly(Code::PluginVersion)),
        case("m_url_2048_chars_more_bytes", Manifest, &ws(&format!("wss://x.example.com/{}", "é".repeat(1020)), ""), WalkerOnly(Code::TargetTooLong)),
        // ---- grants both accept
        case("g_minimal", Grant, "plugin = \"demo\"\n", Valid),
        case("g_entries", Grant, &grant("\n[[host_api.websocket]]\nurl = \"wss://x.example.com/\"\n\n[[host_api.request]]\nurl = \"https://x.example.com/v1/\"\nmethods = [\"GET\"]\n"), Valid),
        case("g_request_without_methods", Grant, &grant("\n[[host_api.request]]\nurl = \"https://x.example.com/v1/\"\n"), Valid),
        case("g_broad", Grant, &grant("\n[[host_api.websocket]]\nurl = \"wss://*/\"\nbroad = true\n"), Valid),
        case("g_digest", Grant, &format!("plugin = \"demo\"\napproved_digest = \"{digest}\"\n"), Valid),
        case("g_narrowing_fields", Grant, &grant("\n[[host_api.websocket]]\nurl = \"wss://x.example.com/\"\nsubprotocols = []\nheaders = [\"X-Trace\"]\nnetworks = [\"10.0.0.0/24\"]\n"), Valid),
        // ---- grants both reject
        case("g_missing_plugin", Grant, "[[host_api.websocket]]\nurl = \"wss://x.example.com/\"\n", Invalid),
        case("g_plugin_table", Grant, "[plugin]\nname = \"demo\"\n", Invalid),
        case("g_plugin_uppercase", Grant, "plugin = \"Demo\"\n", Invalid),
        case("g_reason", Grant, &grant("\n[[host_api.websocket]]\nurl = \"wss://x.example.com/\"\nreason = \"x\"\n"), Invalid),
        case("g_broad_string", Grant, &grant("\n[[host_api.websocket]]\nurl = \"wss://*/\"\nbroad = \"yes\"\n"), Invalid),
        case("g_digest_uppercase", Grant, &format!("plugin = \"demo\"\napproved_digest = \"{}\"\n", digest.to_uppercase()), Invalid),
        case("g_digest_short", Grant, "plugin = \"demo\"\napproved_digest = \"sha256:abc\"\n", Invalid),
        case("g_methods_in_websocket", Grant, &grant("\n[[host_api.websocket]]\nurl = \"wss://x.example.com/\"\nmethods = [\"GET\"]\n"), Invalid),
        case("g_unknown_top_key", Grant, &grant("requested_digest = \"x\"\n"), Invalid),
        case("g_ws_in_request", Grant, &grant("\n[[host_api.request]]\nurl = \"wss://x.example.com/\"\n"), Invalid),
        case("g_methods_empty", Grant, &grant("\n[[host_api.request]]\nurl = \"https://x.example.com/\"\nmethods = []\n"), Invalid),
        case("g_single_table", Grant, &grant("\n[host_api.request]\nurl = \"https://x.example.com/\"\n"), Invalid),
        // ---- grants only the walker rejects
        case("g_wildcard", Grant, &grant("\n[[host_api.websocket]]\nurl = \"wss://x.*.example.com/\"\n"), WalkerOnly(Code::Wildcard)),
        case("g_forbidden_header", Grant, &grant("\n[[host_api.request]]\nurl = \"https://x.example.com/\"\nheaders = [\"Cookie\"]\n"), WalkerOnly(Code::ForbiddenHeader)),
    ];
    // 10,001 targets split over both capabilities: each array is within the
    // schema's per-array limit, the file is over the walker's total.
    let mut many = PLUGIN.to_string();
    for i in 0..5_001 {
        many.push_str(&format!(
            "\n[[host_api.websocket]]\nurl = \"wss://h{i}.example.com/\"\n"
        ));
    }
    for i in 0..5_000 {
        many.push_str(&format!(
            "\n[[host_api.request]]\nurl = \"https://h{i}.example.com/\"\nmethods = [\"GET\"]\n"
        ));
    }
    v.push(case(
        "m_10001_targets_split",
        Manifest,
        &many,
        WalkerOnly(Code::TooMany),
    ));
    v
}

/// Every TOML fixture of the diagnostics test, and the examples.
fn file_cases() -> Vec<Case> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut out = Vec::new();
    for base in [root.join("tests/diagnostics"), root.join("../examples")] {
        let mut dirs: Vec<_> = std::fs::read_dir(&base)
            .unwrap_or_else(|e| panic!("{}: {e}", base.display()))
            .map(|e| e.unwrap().path())
            .filter(|p| p.is_dir())
            .collect();
        dirs.sort();
        let examples = base.ends_with("examples");
        for d in dirs {
            for (file, kind) in [("plugin.toml", Manifest), ("grant.toml", Grant)] {
                let Ok(bytes) = std::fs::read(d.join(file)) else {
                    continue;
                };
                let name = format!(
                    "{}/{}/{file}",
                    base.file_name().unwrap().to_string_lossy(),
                    d.file_name().unwrap().to_string_lossy()
                );
                let Ok(text) = String::from_utf8(bytes.clone()) else {
                    // Not text: nothing to convert to JSON; the walker rejects it.
                    let parsed = match kind {
                        Manifest => Manifest::parse_bytes(&name, &bytes).value.is_some(),
                        Grant => Grant::parse_bytes(&name, &bytes).value.is_some(),
                    };
                    assert!(!parsed, "{name}: invalid UTF-8 accepted");
                    continue;
                };
                out.push(Case {
                    name,
                    kind,
                    text,
                    // The examples are valid; fixtures are whatever they are.
                    expect: examples.then_some(Valid),
                });
            }
        }
    }
    out
}

struct Outcome {
    schema_errors: Option<Vec<String>>, // None: not TOML, so no JSON to validate
    walker_codes: Vec<Code>,            // error codes only
}

fn outcome(c: &Case, manifest: &jsonschema::Validator, grant: &jsonschema::Validator) -> Outcome {
    let walker_codes: Vec<Code> = match c.kind {
        Manifest => Manifest::parse(&c.name, &c.text).diagnostics,
        Grant => Grant::parse(&c.name, &c.text).diagnostics,
    }
    .into_iter()
    .filter(|d| d.severity().is_error())
    .map(|d| d.code)
    .collect();
    let schema_errors = toml::from_str::<serde_json::Value>(&c.text)
        .ok()
        .map(|json| {
            let v = match c.kind {
                Manifest => manifest,
                Grant => grant,
            };
            v.iter_errors(&json)
                .map(|e| format!("{} at {}", e, e.instance_path()))
                .collect()
        });
    Outcome {
        schema_errors,
        walker_codes,
    }
}

fn validators() -> (jsonschema::Validator, jsonschema::Validator) {
    let m = jsonschema::draft7::new(&schema_value(SchemaKind::Manifest))
        .expect("manifest schema compiles");
    let g =
        jsonschema::draft7::new(&schema_value(SchemaKind::Grant)).expect("grant schema compiles");
    (m, g)
}

#[test]
fn schemas_declare_draft_07() {
    for kind in [SchemaKind::Manifest, SchemaKind::Grant, SchemaKind::Ir] {
        let v = schema_value(kind);
        let s = v["$schema"].as_str().unwrap_or_default();
        assert!(s.contains("draft-07"), "{kind:?}: $schema is {s:?}");
        jsonschema::draft7::new(&v).unwrap_or_else(|e| panic!("{kind:?} schema: {e}"));
    }
}

#[test]
fn schema_and_walker_agree() {
    let (mv, gv) = validators();
    let walker_only: Vec<Code> = WALKER_ONLY.iter().map(|(c, _)| *c).collect();
    let mut cases = inline_cases();
    let inline = cases.len();
    cases.extend(file_cases());
    assert!(inline >= 40, "only {inline} inline cases");
    assert!(cases.len() >= 100, "only {} cases", cases.len());

    let mut problems = Vec::new();
    let mut one_sided = Vec::new();
    for c in &cases {
        let o = outcome(c, &mv, &gv);
        let walker_ok = o.walker_codes.is_empty();
        let Some(schema_errors) = &o.schema_errors else {
            // Not TOML at all: the walker must say so.
            if !o.walker_codes.contains(&Code::TomlSyntax) {
                problems.push(format!(
                    "{}: not TOML, but the walker reported {:?}",
                    c.name, o.walker_codes
                ));
            }
            if c.expect.is_some_and(|e| e != Invalid) {
                problems.push(format!(
                    "{}: expected {:?}, but it is not TOML",
                    c.name, c.expect
                ));
            }
            continue;
        };
        let schema_ok = schema_errors.is_empty();
        // 1. Whatever the schema rejects, the walker rejects.
        if !schema_ok && walker_ok {
            problems.push(format!(
                "{}: the schema rejects what the walker accepts: {schema_errors:?}",
                c.name
            ));
        }
        // 2. A walker-only rejection is for semantic reasons only.
        if schema_ok && !walker_ok {
            let structural: Vec<&Code> = o
                .walker_codes
                .iter()
                .filter(|c| !walker_only.contains(c))
                .collect();
            if !structural.is_empty() {
                problems.push(format!(
                    "{}: the walker rejects it structurally ({structural:?}) but the schema accepts it",
                    c.name
                ));
            }
            one_sided.push(format!("{} ({:?})", c.name, o.walker_codes));
        }
        // 3. The case tests what it says it tests.
        let actual = match (schema_ok, walker_ok) {
            (true, true) => Valid,
            (false, false) => Invalid,
            (true, false) => WalkerOnly(o.walker_codes[0]),
            (false, true) => continue, // reported above
        };
        if let Some(e) = c.expect {
            let matches = match (e, actual) {
                (WalkerOnly(want), WalkerOnly(_)) => o.walker_codes.contains(&want),
                _ => e == actual,
            };
            if !matches {
                problems.push(format!(
                    "{}: expected {e:?}, got {actual:?} (schema: {schema_errors:?}; walker: {:?})",
                    c.name, o.walker_codes
                ));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    // Keep the list of one-sided cases visible with `--nocapture`.
    println!(
        "{} cases; walker-only rejections:\n  {}",
        cases.len(),
        one_sided.join("\n  ")
    );
}

#[test]
fn committed_schemas_are_current() {
    // docs/spec.md §8: the files under schema/ equal what `netgrant schema` prints.
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../schema");
    for (kind, file) in [
        (SchemaKind::Manifest, "manifest.schema.json"),
        (SchemaKind::Grant, "grant.schema.json"),
        (SchemaKind::Ir, "ir.schema.json"),
    ] {
        let committed = std::fs::read_to_string(root.join(file)).unwrap();
        assert!(
            committed == netgrant_policy::schema::schema_json(kind),
            "schema/{file} is stale: regenerate it with `netgrant schema`"
        );
    }
}
