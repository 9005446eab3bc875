//! `netgrant explain`: nearest-miss snapshots (human output) for the cases a
//! reviewer meets, the JSON shape, and agreement with `authorize`.

mod common;
use common::*;
use serde_json::Value;

const BRIDGE: [&str; 4] = [
    "--manifest",
    "examples/discord-bridge/plugin.toml",
    "--grant",
    "examples/discord-bridge/grant.toml",
];
const EVENTS: [&str; 4] = [
    "--manifest",
    "examples/internal-events/plugin.toml",
    "--grant",
    "examples/internal-events/grant.toml",
];
const LOCAL: [&str; 4] = [
    "--manifest",
    "examples/local-dev/plugin.toml",
    "--grant",
    "examples/local-dev/grant.toml",
];
const BROAD: [&str; 4] = [
    "--manifest",
    "examples/broad-scraper/plugin.toml",
    "--grant",
    "examples/broad-scraper/grant.toml",
];

struct Case {
    name: &'static str,
    policy: &'static [&'static str],
    args: &'static [&'static str],
    code: &'static str,
    /// Must appear in the human output (besides the snapshot).
    expect: &'static [&'static str],
}

const CASES: &[Case] = &[
    Case {
        name: "allowed_shows_matched_rule",
        policy: &BRIDGE,
        args: &["--capability", "websocket", "wss://gateway.discord.gg/?v=10&encoding=json"],
        code: "allowed",
        expect: &["matched", "websocket:wss://gateway.discord.gg/", "plugin.toml:22", "grant.toml:6"],
    },
    Case {
        name: "allowed_through_narrowing_grant",
        policy: &BRIDGE,
        args: &["--capability", "request", "https://discord.com/api/v10/channels/1"],
        code: "allowed",
        expect: &["narrows    https://discord.com/api/v10/ (methods)"],
    },
    Case {
        name: "same_host_different_path",
        policy: &BRIDGE,
        args: &["--capability", "request", "https://discord.com/api/v9/users/@me"],
        code: "not_requested",
        expect: &["path prefix `/api/v10/`", "url = \"https://discord.com/api/v9/users/\""],
    },
    Case {
        name: "different_port",
        policy: &BRIDGE,
        args: &["--capability", "websocket", "wss://gateway.discord.gg:8443/"],
        code: "not_requested",
        expect: &["port 443, the URL uses 8443"],
    },
    Case {
        name: "http_vs_https",
        policy: &BRIDGE,
        args: &["--capability", "request", "http://discord.com/api/v10/users"],
        code: "not_requested",
        expect: &["scheme `https`, the URL uses `http`"],
    },
    Case {
        name: "requested_not_granted",
        policy: &BRIDGE,
        args: &["--capability", "request", "https://cdn.discordapp.com/attachments/1/a.png"],
        code: "not_granted",
        expect: &[
            "add to examples/discord-bridge/grant.toml (it approves the request at examples/discord-bridge/plugin.toml:17)",
            "url = \"https://cdn.discordapp.com/attachments/\"",
        ],
    },
    Case {
        name: "grant_narrower_methods",
        policy: &BRIDGE,
        args: &[
            "--capability",
            "request",
            "--method",
            "POST",
            "https://discord.com/api/v10/channels/1/messages",
        ],
        code: "method_not_allowed",
        expect: &[
            "requested: GET, POST",
            "replace the entry at examples/discord-bridge/grant.toml:10",
            "methods = [\"GET\", \"POST\"]",
        ],
    },
    Case {
        name: "manifest_lacks_method",
        policy: &BRIDGE,
        args: &["--capability", "request", "--method", "DELETE", "https://discord.com/api/v10/x"],
        code: "method_not_allowed",
        expect: &["fix (manifest", "methods = [\"GET\", \"POST\", \"DELETE\"]"],
    },
    Case {
        name: "missing_header_declaration",
        policy: &BRIDGE,
        args: &[
            "--capability",
            "request",
            "--header",
            "X-Trace-Id: 7",
            "https://discord.com/api/v10/users",
        ],
        code: "forbidden_header",
        expect: &["header `x-trace-id` is not declared", "headers = [\"x-audit-log-reason\", \"x-trace-id\"]"],
    },
    Case {
        name: "undeclared_subprotocol",
        policy: &BRIDGE,
        args: &["--capability", "websocket", "--subprotocol", "etf", "wss://gateway.discord.gg/"],
        code: "forbidden_header",
        expect: &["subprotocol `etf` is not declared", "subprotocols = [\"etf\", \"json\"]"],
    },
    Case {
        name: "private_address_in_resolve",
        policy: &EVENTS,
        args: &[
            "--capability",
            "websocket",
            "--resolve",
            "events.corp.example=192.168.1.5",
            "wss://events.corp.example/",
        ],
        code: "non_public_address",
        expect: &["192.168.1.5/32", "DNS rebinding"],
    },
    Case {
        name: "grant_narrowed_networks",
        policy: &EVENTS,
        args: &[
            "--capability",
            "websocket",
            "--resolve",
            "events.corp.example=fd12:3456:789a::7",
            "wss://events.corp.example/",
        ],
        code: "non_public_address",
        expect: &["fix (grant", "networks = [\"10.20.0.0/16\", \"fd12:3456:789a::/48\"]"],
    },
    Case {
        name: "never_class_literal",
        policy: &EVENTS,
        args: &["--capability", "request", "https://169.254.169.254/latest/meta-data"],
        code: "not_requested",
        expect: &["no line can allow this", "cloud metadata endpoint"],
    },
    Case {
        name: "never_class_answer",
        policy: &EVENTS,
        args: &[
            "--capability",
            "websocket",
            "--resolve",
            "events.corp.example=10.20.0.9,169.254.169.254",
            "wss://events.corp.example/",
        ],
        code: "forbidden_address",
        expect: &["no line can allow this"],
    },
    Case {
        name: "ambiguous_path",
        policy: &BRIDGE,
        args: &["--capability", "request", "https://discord.com/api/v10/..%2F..%2Fadmin"],
        code: "ambiguous_path",
        expect: &["no line can allow this", "`/admin`"],
    },
    Case {
        name: "ambiguous_path_lookalike_dots",
        policy: &BRIDGE,
        args: &["--capability", "request", "https://discord.com/api/v10/．．/．．/admin"],
        code: "ambiguous_path",
        expect: &[
            "no line can allow this",
            "folds Unicode look-alike dots and slashes to ASCII (U+FF0E `．` → `.`)",
            "`/admin`",
        ],
    },
    Case {
        name: "ambiguous_path_percent_u",
        policy: &BRIDGE,
        args: &["--capability", "request", "https://discord.com/api/v10/%u002e%u002e/%u002e%u002e/admin"],
        code: "ambiguous_path",
        expect: &["decodes IIS-style `%uXXXX` and `%2F %5C %2E %3B %25` escapes once", "`/admin`"],
    },
    Case {
        name: "wrong_capability",
        policy: &BRIDGE,
        args: &["--capability", "request", "wss://gateway.discord.gg/"],
        code: "wrong_capability",
        expect: &["there this URL is allowed", "--capability websocket"],
    },
    Case {
        name: "unrelated_host",
        policy: &BRIDGE,
        args: &["--capability", "request", "https://evil.example/steal?token=s3cret"],
        code: "not_requested",
        expect: &["none: no entry has this host or a related one"],
    },
    Case {
        name: "forbidden_header_never_allowed",
        policy: &BRIDGE,
        args: &[
            "--capability",
            "request",
            "--header",
            "Cookie: session=1",
            "https://discord.com/api/v10/users",
        ],
        code: "forbidden_header",
        expect: &["no line can allow this", "whatever a target declares"],
    },
    Case {
        name: "connect_method",
        policy: &BRIDGE,
        args: &["--capability", "request", "--method", "CONNECT", "https://discord.com/api/v10/"],
        code: "method_not_allowed",
        expect: &["CONNECT and TRACE are never allowed"],
    },
    Case {
        name: "partly_granted_wildcard_port",
        policy: &LOCAL,
        args: &["--capability", "websocket", "ws://127.0.0.1:9230/debug/x"],
        code: "not_granted",
        expect: &["granted only through narrower entries", "url = \"ws://127.0.0.1:9230/debug/\""],
    },
    Case {
        name: "loopback_name_vs_literal",
        policy: &LOCAL,
        args: &["--capability", "websocket", "ws://localhost:9229/debug/"],
        code: "not_requested",
        expect: &["names and IP literals never cross-match"],
    },
    Case {
        name: "broad_request_not_granted",
        policy: &BROAD,
        args: &["--capability", "websocket", "wss://live.example/feed"],
        code: "not_granted",
        expect: &["broad = true"],
    },
    Case {
        name: "from_ir_without_locations",
        policy: &["--policy", "examples/discord-bridge/policy.json"],
        args: &["--capability", "request", "https://cdn.discordapp.com/attachments/1/a.png"],
        code: "not_granted",
        expect: &["add to grant.toml"],
    },
];

fn run_case(c: &Case, format: &str) -> (i32, String, String) {
    run(netgrant()
        .arg("explain")
        .args(c.policy)
        .args(["--format", format])
        .args(c.args))
}

#[test]
fn explain_snapshots() {
    assert!(CASES.len() >= 10);
    let mut failures = Vec::new();
    for c in CASES {
        let (code, out, err) = run_case(c, "human");
        let want_exit = if c.code == "allowed" { 0 } else { 1 };
        if code != want_exit {
            failures.push(format!("{}: exit {code}, want {want_exit}: {err}", c.name));
        }
        let first = out.lines().next().unwrap_or("");
        if !first.contains(&format!(" {} — ", c.code)) {
            failures.push(format!(
                "{}: first line {first:?} lacks code {}",
                c.name, c.code
            ));
        }
        for e in c.expect {
            if !out.contains(e) {
                failures.push(format!("{}: output lacks {e:?}:\n{out}", c.name));
            }
        }
        if out.chars().any(|ch| ch.is_control() && ch != '\n') {
            failures.push(format!("{}: control characters in output", c.name));
        }
        insta::with_settings!({
            description => format!("netgrant explain {} {}", c.policy.join(" "), c.args.join(" ")),
            omit_expression => true,
        }, {
            insta::assert_snapshot!(format!("explain_{}", c.name), out);
        });
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn explain_json_carries_the_authorize_decision() {
    for c in CASES {
        let (code, out, err) = run_case(c, "json");
        let v: Value =
            serde_json::from_str(&out).unwrap_or_else(|e| panic!("{}: {e}: {out} {err}", c.name));
        let (acode, aout, _) = run(netgrant()
            .arg("authorize")
            .args(c.policy)
            .args(["--format", "json"])
            .args(c.args));
        let a: Value = serde_json::from_str(&aout).unwrap();
        assert_eq!(
            v["decision"], a,
            "{}: explain and authorize disagree",
            c.name
        );
        assert_eq!(code, acode, "{}: exit codes differ", c.name);
        assert_eq!(v["decision"]["code"], c.code, "{}", c.name);
        for key in ["request", "misses", "more_misses", "fix"] {
            assert!(v.get(key).is_some(), "{}: no {key}", c.name);
        }
        let kind = v["fix"]["kind"].as_str().unwrap();
        assert!(
            ["none", "grant", "manifest", "impossible"].contains(&kind),
            "{}: fix kind {kind}",
            c.name
        );
        assert_eq!(kind == "none", c.code == "allowed", "{}", c.name);
        if c.code == "allowed" {
            assert_eq!(v["matched"]["rule"], a["rule"], "{}", c.name);
        }
        for step in v["fix"]["steps"].as_array().unwrap() {
            assert!(step["snippet"].as_str().unwrap().starts_with("[[host_api."));
            assert!(["manifest", "grant"].contains(&step["file"].as_str().unwrap()));
            assert!(["add", "replace"].contains(&step["action"].as_str().unwrap()));
        }
    }
}

#[test]
fn explain_redacts_and_exits_like_authorize() {
    let (code, out, _) = run(netgrant().args(["explain"]).args(BRIDGE).args([
        "--capability",
        "request",
        "https://u:hunter2@discord.com/api/v10/x?token=s3cret",
    ]));
    assert_eq!(code, 1);
    assert!(!out.contains("hunter2") && !out.contains("s3cret"), "{out}");
    assert!(out.contains("credentials_in_url"), "{out}");
    // Usage errors: exit 2, as authorize.
    let (code, _, err) = run(netgrant().args(["explain"]).args(BRIDGE).args([
        "--capability",
        "request",
        "--header",
        "no colon",
        "https://discord.com/",
    ]));
    assert_eq!(code, 2, "{err}");
    let (code, _, _) = run(netgrant().args([
        "explain",
        "--manifest",
        "examples/nope/plugin.toml",
        "--capability",
        "request",
        "https://discord.com/",
    ]));
    assert_eq!(code, 2);
    // An invalid URL is a decision, not a usage error.
    let (code, out, _) = run(netgrant().args(["explain"]).args(BRIDGE).args([
        "--capability",
        "request",
        "not a url",
    ]));
    assert_eq!(code, 1);
    assert!(out.contains("no line can allow this"), "{out}");
}

#[test]
fn explain_escapes_hostile_input() {
    // A header name and a URL path carrying terminal escapes and bidi
    // controls: explain shows them escaped, never raw.
    let (code, out, err) = run(netgrant().args(["explain"]).args(BRIDGE).args([
        "--capability",
        "request",
        "--header",
        "X-\u{1b}[2J\u{202e}: 1",
        "https://discord.com/api/v10/\u{1b}[31m\u{202e}x",
    ]));
    assert_eq!(code, 1, "{err}");
    assert!(out.contains("forbidden_header"), "{out}");
    assert!(
        !out.contains('\u{1b}') && !out.contains('\u{202e}'),
        "raw control characters in {out:?}"
    );
    assert!(out.contains("\\u{1b}") || out.contains("%1B"), "{out}");
}
