//! End-to-end tests of every command, format and exit code.

mod common;
use common::*;
use serde_json::Value;

const BRIDGE_M: &str = "examples/discord-bridge/plugin.toml";
const BRIDGE_G: &str = "examples/discord-bridge/grant.toml";
/// broad-scraper's grant with one broad line left without `broad = true`
/// (a fixture: the shipped examples all pass `check`).
const UNAPPROVED_G: &str = "tests/fixtures/broad-scraper-unapproved.grant.toml";

/// Every example passes `check`, with and without its grant: an example is
/// what people copy.
#[test]
fn check_examples_exit_codes() {
    for ex in examples() {
        let m = format!("examples/{ex}/plugin.toml");
        let g = format!("examples/{ex}/grant.toml");
        let (code, _, err) = run(netgrant().args(["check", &m, "--grant", &g]));
        assert_eq!(code, 0, "{ex}: {err}");
        let (code, _, err) = run(netgrant().args(["check", &m]));
        assert_eq!(code, 0, "{ex} manifest alone: {err}");
    }
}

#[test]
fn check_entry_error_reports_but_compile_keeps_policy() {
    let m = "examples/broad-scraper/plugin.toml";
    let g = UNAPPROVED_G;
    let (code, _, err) = run(netgrant().args(["check", m, "--grant", g]));
    assert_eq!(code, 2);
    assert!(err.contains("netgrant::grant::broad_not_approved"), "{err}");
    assert!(err.contains("write `broad = true`"), "{err}");
    let (code, out, err) = run(netgrant().args(["compile", m, "--grant", g]));
    assert_eq!(code, 0, "{err}");
    let ir: Value = serde_json::from_str(&out).unwrap();
    let ignored = ir["ignored"].as_array().unwrap();
    assert_eq!(ignored.len(), 1);
    assert_eq!(ignored[0]["code"], "broad_not_approved");
    assert_eq!(ignored[0]["target"], "https://*.github.io/");
    assert!(ir["entries"]
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e["status"] == "granted" && e["target"] == "https://*/"));
}

#[test]
fn check_deny_broad_gate() {
    let m = "examples/broad-scraper/plugin.toml";
    let (code, _, err) = run(netgrant().args(["check", m, "--deny-broad"]));
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("--deny-broad"), "{err}");
    assert!(err.contains("request:https://*/"), "{err}");
    let (code, _, _) = run(netgrant().args(["check", BRIDGE_M, "--deny-broad"]));
    assert_eq!(code, 0);
    let (code, out, _) = run(netgrant().args(["check", m, "--deny-broad", "--format", "json"]));
    assert_eq!(code, 1);
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["deny_broad_tripped"], true);
    assert_eq!(v["broad_requested"].as_array().unwrap().len(), 3);
}

const BAD_MANIFEST: &str = r#"[plugin]
name = "Bad_Name"
version = "1.0"

[[host_api.websockets]]
url = "wss://x.example/"

[[host_api.request]]
url = "wss://a*.example.com/"
methods = ["CONNECT"]
headers = ["Authorization"]
"#;

#[test]
fn check_collects_all_problems_json() {
    let (_d, p) = temp_file("plugin.toml", BAD_MANIFEST);
    let (code, out, _) = run(netgrant().args(["check", p.to_str().unwrap(), "--format", "json"]));
    assert_eq!(code, 2);
    let v: Value = serde_json::from_str(&out).unwrap();
    let codes: Vec<&str> = v["diagnostics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["code"].as_str().unwrap())
        .collect();
    for want in [
        "netgrant::manifest::plugin_name",
        "netgrant::manifest::plugin_version",
        "netgrant::schema::unknown_key",
        "netgrant::method::forbidden",
        "netgrant::header::forbidden",
    ] {
        assert!(codes.contains(&want), "{want} missing from {codes:?}");
    }
    for d in v["diagnostics"].as_array().unwrap() {
        assert!(d["line"].as_u64().unwrap() >= 1, "{d}");
        assert!(d["help"].is_string(), "{d}");
        assert!(d["file"].as_str().unwrap().ends_with("plugin.toml"));
    }
    assert_eq!(v["ok"], false);
    assert_eq!(v["exit_code"], 2);
}

#[test]
fn check_human_renders_miette_with_span_and_help() {
    let (_d, p) = temp_file("plugin.toml", BAD_MANIFEST);
    let (code, out, err) = run(netgrant().args(["check", p.to_str().unwrap()]));
    assert_eq!(code, 2);
    assert!(out.is_empty());
    assert!(err.contains("netgrant::schema::unknown_key"), "{err}");
    assert!(
        err.contains("did you mean `websocket`?")
            || err.contains("did you mean `host_api.websocket`?"),
        "{err}"
    );
    assert!(err.contains("plugin.toml:5:"), "{err}");
    assert!(err.contains("help:"), "{err}");
    assert!(err.contains("failed"), "{err}");
}

#[test]
fn check_github_annotations() {
    let (_d, p) = temp_file("plugin.toml", BAD_MANIFEST);
    let (code, out, _) = run(netgrant().args(["check", p.to_str().unwrap(), "--format", "github"]));
    assert_eq!(code, 2);
    assert!(!out.is_empty());
    for line in out.lines() {
        assert!(
            line.starts_with("::error file=") || line.starts_with("::warning file="),
            "{line}"
        );
        assert!(line.contains(",line="), "{line}");
        assert!(line.contains("title=netgrant%3A%3A"), "{line}");
    }
}

fn sarif_validator() -> jsonschema::Validator {
    let text =
        std::fs::read_to_string(root().join("cli/tests/data/sarif-schema-2.1.0.json")).unwrap();
    let schema: Value = serde_json::from_str(&text).unwrap();
    jsonschema::validator_for(&schema).expect("SARIF schema compiles")
}

#[test]
fn check_sarif_validates_against_2_1_0() {
    let validator = sarif_validator();
    let (_d, p) = temp_file("plugin.toml", BAD_MANIFEST);
    for args in [
        vec!["check".to_string(), p.to_str().unwrap().to_string()],
        vec![
            "check".into(),
            BRIDGE_M.into(),
            "--grant".into(),
            BRIDGE_G.into(),
        ],
        vec![
            "check".into(),
            "examples/broad-scraper/plugin.toml".into(),
            "--grant".into(),
            UNAPPROVED_G.into(),
        ],
    ] {
        let (_, out, _) = run(netgrant().args(&args).args(["--format", "sarif"]));
        let v: Value = serde_json::from_str(&out).unwrap();
        let errors: Vec<String> = validator.iter_errors(&v).map(|e| e.to_string()).collect();
        assert!(errors.is_empty(), "{args:?}: {errors:?}");
        assert_eq!(v["version"], "2.1.0");
        let results = v["runs"][0]["results"].as_array().unwrap();
        for r in results {
            assert!(r["ruleId"].as_str().unwrap().starts_with("netgrant::"));
            assert!(
                r["locations"][0]["physicalLocation"]["region"]["startLine"]
                    .as_u64()
                    .unwrap()
                    >= 1
            );
        }
    }
    // The validator itself rejects a broken log, so the check above can fail.
    let broken: Value = serde_json::json!({"version": "2.1.0", "runs": [{"tool": {}}]});
    assert!(!validator.is_valid(&broken));
}

#[test]
fn compile_writes_canonical_ir_and_rejects_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    let out_path = dir.path().join("policy.json");
    let (code, out, err) = run(netgrant().args([
        "compile",
        BRIDGE_M,
        "--grant",
        BRIDGE_G,
        "-o",
        out_path.to_str().unwrap(),
    ]));
    assert_eq!(code, 0, "{err}");
    assert!(out.is_empty());
    let written = std::fs::read_to_string(&out_path).unwrap();
    let (code, stdout, _) = run(netgrant().args(["compile", BRIDGE_M, "--grant", BRIDGE_G]));
    assert_eq!(code, 0);
    assert_eq!(stdout, written);
    let v: Value = serde_json::from_str(&written).unwrap();
    assert_eq!(v["version"], 1);
    assert!(v["digest"].as_str().unwrap().starts_with("sha256:"));
    assert!(
        !written.contains("examples/"),
        "IR must not contain file paths"
    );
    let (_d, p) = temp_file("plugin.toml", BAD_MANIFEST);
    let (code, out, _) = run(netgrant().args(["compile", p.to_str().unwrap()]));
    assert_eq!(code, 2);
    assert!(out.is_empty());
}

#[test]
fn grant_for_another_plugin_is_fatal() {
    let (_d, g) = temp_file("grant.toml", "plugin = \"someone-else\"\n");
    let (code, _, err) =
        run(netgrant().args(["compile", BRIDGE_M, "--grant", g.to_str().unwrap()]));
    assert_eq!(code, 2);
    assert!(err.contains("netgrant::grant::plugin_mismatch"), "{err}");
}

#[test]
fn show_formats() {
    let (code, out, _) = run(netgrant().args([
        "show",
        "examples/broad-scraper/plugin.toml",
        "--grant",
        UNAPPROVED_G,
    ]));
    assert_eq!(code, 0);
    let first_row = out
        .lines()
        .skip_while(|l| !l.contains("STATUS"))
        .nth(1)
        .unwrap();
    assert!(
        first_row.starts_with("!!"),
        "broad must come first and be marked: {out}"
    );
    assert!(out.contains("BROAD: any host over https"), "{out}");
    assert!(out.contains("risk: "), "{out}");
    assert!(out.contains("ignored grant entries"), "{out}");
    for l in out.lines() {
        assert!(l.chars().count() <= 120, "line too wide: {l}");
    }
    let (code, out, _) =
        run(netgrant().args(["show", BRIDGE_M, "--grant", BRIDGE_G, "--format", "json"]));
    assert_eq!(code, 0);
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["counts"]["granted"], 3);
    assert_eq!(v["counts"]["not_granted"], 1);
    assert!(v["requested_digest"]
        .as_str()
        .unwrap()
        .starts_with("sha256:"));
    let (code, out, _) = run(netgrant().args([
        "show", BRIDGE_M, "--grant", BRIDGE_G, "--format", "markdown",
    ]));
    assert_eq!(code, 0);
    assert!(out.contains("| status |"), "{out}");
}

#[test]
fn show_reads_ir_and_rejects_tampered_ir() {
    let (_, ir, _) = run(netgrant().args([
        "compile",
        "examples/broad-scraper/plugin.toml",
        "--grant",
        "examples/broad-scraper/grant.toml",
    ]));
    let (_d, p) = temp_file("policy.json", &ir);
    let (code, out, err) = run(netgrant().args(["show", p.to_str().unwrap()]));
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("https://*/"));
    // A hand edit that hides broad access is rejected, never trusted.
    let tampered = ir.replacen("\"broad\": true", "\"broad\": false", 1);
    assert_ne!(tampered, ir);
    let (_d2, p2) = temp_file("policy.json", &tampered);
    let (code, out, err) = run(netgrant().args(["show", p2.to_str().unwrap()]));
    assert_eq!(code, 2);
    assert!(out.is_empty());
    assert!(err.contains("netgrant::ir::tampered"), "{err}");
    let (code, _, err) = run(netgrant().args([
        "authorize",
        "--policy",
        p2.to_str().unwrap(),
        "--capability",
        "request",
        "https://example.com/",
    ]));
    assert_eq!(code, 2, "{err}");
}

#[test]
fn schema_matches_committed_files() {
    for kind in ["manifest", "grant", "ir"] {
        let (code, out, _) = run(netgrant().args(["schema", kind]));
        assert_eq!(code, 0);
        let committed =
            std::fs::read_to_string(root().join(format!("schema/{kind}.schema.json"))).unwrap();
        assert_eq!(
            out, committed,
            "schema/{kind}.schema.json is stale: run `netgrant schema {kind}`"
        );
        let v: Value = serde_json::from_str(&out).unwrap();
        assert!(v["$schema"].as_str().unwrap().contains("draft-07"));
    }
}

#[test]
fn compiled_ir_validates_against_ir_schema() {
    let schema: Value = serde_json::from_str(
        &std::fs::read_to_string(root().join("schema/ir.schema.json")).unwrap(),
    )
    .unwrap();
    let validator = jsonschema::validator_for(&schema).unwrap();
    for ex in examples() {
        let (_, out, _) = run(netgrant().args([
            "compile",
            &format!("examples/{ex}/plugin.toml"),
            "--grant",
            &format!("examples/{ex}/grant.toml"),
        ]));
        let v: Value = serde_json::from_str(&out).unwrap();
        let errors: Vec<String> = validator.iter_errors(&v).map(|e| e.to_string()).collect();
        assert!(errors.is_empty(), "{ex}: {errors:?}");
    }
}

fn authorize(args: &[&str]) -> (i32, Value) {
    let (code, out, err) = run(netgrant()
        .args([
            "authorize",
            "--manifest",
            BRIDGE_M,
            "--grant",
            BRIDGE_G,
            "--format",
            "json",
        ])
        .args(args));
    let v: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out} {err}"));
    (code, v)
}

#[test]
fn authorize_decisions_and_exit_codes() {
    let cases: &[(&[&str], i32, &str)] = &[
        (
            &[
                "--capability",
                "websocket",
                "wss://gateway.discord.gg/?v=10",
            ],
            0,
            "allowed",
        ),
        (
            &["--capability", "websocket", "https://gateway.discord.gg/"],
            1,
            "wrong_capability",
        ),
        // docs/spec.md §9.3: the example binds `bot-token` on both targets.
        (
            &[
                "--capability",
                "request",
                "--credential",
                "bot-token",
                "https://discord.com/api/v10/users/@me",
            ],
            0,
            "allowed",
        ),
        (
            &[
                "--capability",
                "websocket",
                "--credential",
                "bot-token",
                "--credential",
                "webhook-key",
                "wss://gateway.discord.gg/?v=10",
            ],
            1,
            "credential_not_granted",
        ),
        (
            &["--capability", "websocket", "not a url"],
            1,
            "invalid_url",
        ),
        (
            &["--capability", "websocket", "wss://u:p@gateway.discord.gg/"],
            1,
            "credentials_in_url",
        ),
        (
            &[
                "--capability",
                "request",
                "https://cdn.discordapp.com/attachments/1",
            ],
            1,
            "not_granted",
        ),
        (
            &["--capability", "request", "https://evil.example/"],
            1,
            "not_requested",
        ),
        (
            &[
                "--capability",
                "request",
                "--method",
                "POST",
                "https://discord.com/api/v10/x",
            ],
            1,
            "method_not_allowed",
        ),
        (
            &[
                "--capability",
                "request",
                "--header",
                "Cookie: a=b",
                "https://discord.com/api/v10/x",
            ],
            1,
            "forbidden_header",
        ),
        (
            &[
                "--capability",
                "request",
                "--header",
                "X-Audit-Log-Reason: hi",
                "https://discord.com/api/v10/x",
            ],
            0,
            "allowed",
        ),
        (
            &[
                "--capability",
                "websocket",
                "--resolve",
                "gateway.discord.gg=162.159.135.234",
                "wss://gateway.discord.gg/",
            ],
            0,
            "allowed",
        ),
        (
            &[
                "--capability",
                "websocket",
                "--resolve",
                "gateway.discord.gg=162.159.135.234,10.0.0.7",
                "wss://gateway.discord.gg/",
            ],
            1,
            "non_public_address",
        ),
        (
            &[
                "--capability",
                "websocket",
                "--resolve",
                "gateway.discord.gg=",
                "wss://gateway.discord.gg/",
            ],
            1,
            "resolution_failed",
        ),
        (
            &[
                "--capability",
                "websocket",
                "--resolve",
                "GATEWAY.discord.gg.=169.254.169.254",
                "wss://gateway.discord.gg/",
            ],
            1,
            "forbidden_address",
        ),
        // Repeated --resolve flags for one host are merged, never replaced:
        // the private answer of the first flag is still checked, whichever
        // order the flags come in (docs/spec.md §5).
        (
            &[
                "--capability",
                "websocket",
                "--resolve",
                "gateway.discord.gg=10.0.0.1",
                "--resolve",
                "gateway.discord.gg=162.159.135.234",
                "wss://gateway.discord.gg/",
            ],
            1,
            "non_public_address",
        ),
        (
            &[
                "--capability",
                "websocket",
                "--resolve",
                "gateway.discord.gg=162.159.135.234",
                "--resolve",
                "Gateway.Discord.GG.=169.254.169.254",
                "wss://gateway.discord.gg/",
            ],
            1,
            "forbidden_address",
        ),
        // An empty flag adds no answer; a later one for the same name does.
        (
            &[
                "--capability",
                "websocket",
                "--resolve",
                "gateway.discord.gg=",
                "--resolve",
                "gateway.discord.gg=162.159.135.234",
                "wss://gateway.discord.gg/",
            ],
            0,
            "allowed",
        ),
        // Flags for other names do not apply.
        (
            &[
                "--capability",
                "websocket",
                "--resolve",
                "other.discord.gg=10.0.0.1",
                "--resolve",
                "gateway.discord.gg=162.159.135.234",
                "wss://gateway.discord.gg/",
            ],
            0,
            "allowed",
        ),
        (
            &["--capability", "websocket", "ws://localhost:9000/"],
            0,
            "allowed",
        ),
        (
            &["--capability", "websocket", "ws://127.0.0.1:9000/"],
            1,
            "not_requested",
        ),
    ];
    for (args, exit, code) in cases {
        let (c, v) = authorize(args);
        assert_eq!(
            (c, v["code"].as_str().unwrap()),
            (*exit, *code),
            "{args:?}: {v}"
        );
        assert_eq!(v["decision"], if *exit == 0 { "allow" } else { "deny" });
    }
    let (_, v) = authorize(&[
        "--capability",
        "websocket",
        "--resolve",
        "gateway.discord.gg=162.159.135.234",
        "wss://gateway.discord.gg/",
    ]);
    assert_eq!(v["addresses"][0], "162.159.135.234:443");
    // Every answer of every flag is checked and returned, in flag order,
    // each once.
    let (c, v) = authorize(&[
        "--capability",
        "websocket",
        "--resolve",
        "gateway.discord.gg=162.159.135.234",
        "--resolve",
        "gateway.discord.gg=162.159.136.234,162.159.135.234",
        "wss://gateway.discord.gg/",
    ]);
    assert_eq!(c, 0, "{v}");
    assert_eq!(
        v["addresses"],
        serde_json::json!(["162.159.135.234:443", "162.159.136.234:443"])
    );
}

#[test]
fn explain_merges_repeated_resolve_flags() {
    let (code, out, err) = run(netgrant().args([
        "explain",
        "--manifest",
        BRIDGE_M,
        "--grant",
        BRIDGE_G,
        "--format",
        "json",
        "--capability",
        "websocket",
        "--resolve",
        "gateway.discord.gg=10.0.0.1",
        "--resolve",
        "gateway.discord.gg=162.159.135.234",
        "wss://gateway.discord.gg/",
    ]));
    assert_eq!(code, 1, "{out} {err}");
    let v: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out} {err}"));
    assert_eq!(v["decision"]["code"], "non_public_address", "{v}");
}

#[test]
fn authorize_redacts_urls() {
    let (_, v) = authorize(&[
        "--capability",
        "websocket",
        "wss://gateway.discord.gg/?token=s3cr3t&v=10",
    ]);
    let s = v.to_string();
    assert!(!s.contains("s3cr3t"), "{s}");
    let (code, out, _) = run(netgrant().args([
        "authorize",
        "--manifest",
        BRIDGE_M,
        "--grant",
        BRIDGE_G,
        "--capability",
        "websocket",
        "wss://user:hunter2@gateway.discord.gg/",
    ]));
    assert_eq!(code, 1);
    assert!(!out.contains("hunter2") && !out.contains("user:"), "{out}");
}

#[test]
fn authorize_with_policy_file() {
    let (_, ir, _) = run(netgrant().args(["compile", BRIDGE_M, "--grant", BRIDGE_G]));
    let (_d, p) = temp_file("policy.json", &ir);
    let (code, out, _) = run(netgrant().args([
        "authorize",
        "--policy",
        p.to_str().unwrap(),
        "--capability",
        "websocket",
        "--format",
        "json",
        "wss://gateway.discord.gg/",
    ]));
    assert_eq!(code, 0, "{out}");
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["rule"], "websocket:wss://gateway.discord.gg/");
}

#[test]
fn usage_errors_exit_2() {
    for args in [
        vec!["frobnicate"],
        vec!["check"],
        vec!["schema", "nope"],
        vec!["check", "does/not/exist.toml"],
        vec!["authorize", "--capability", "websocket", "wss://x/"],
        vec![
            "authorize",
            "--manifest",
            BRIDGE_M,
            "--capability",
            "websocket",
            "--header",
            "no-colon",
            "wss://x/",
        ],
        vec![
            "authorize",
            "--manifest",
            BRIDGE_M,
            "--capability",
            "websocket",
            "--resolve",
            "x=not-an-ip",
            "wss://x/",
        ],
        vec![
            "authorize",
            "--manifest",
            BRIDGE_M,
            "--capability",
            "ftp",
            "wss://x/",
        ],
        vec![
            "show",
            "examples/discord-bridge/plugin.toml",
            "--format",
            "sarif",
        ],
    ] {
        let (code, _, err) = run(netgrant().args(&args));
        assert_eq!(code, 2, "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{err}");
    }
}

#[test]
fn output_injection_is_escaped() {
    // A key carrying a newline and a forged workflow command, an ANSI escape,
    // and a bidi override: all must be neutralized in every format.
    let manifest = "[plugin]\nname = \"x\"\nversion = \"1.0.0\"\n\"a\\n::error file=forged::pwned\" = 1\n\"\\u001b[31mred\\u202e\" = 2\n";
    let (_d, p) = temp_file("plugin.toml", manifest);
    let p = p.to_str().unwrap();
    let (code, out, _) = run(netgrant().args(["check", p, "--format", "github"]));
    assert_eq!(code, 2);
    for line in out.lines() {
        assert!(
            line.starts_with("::error file=") || line.starts_with("::warning file="),
            "forged line: {line:?}"
        );
    }
    assert!(!out.contains('\u{1b}') && !out.contains('\u{202e}'));
    let (_, _, err) = run(netgrant().args(["check", p]));
    assert!(
        !err.contains('\u{1b}'),
        "raw ESC reached the terminal: {err:?}"
    );
    assert!(
        !err.contains('\u{202e}'),
        "raw bidi override reached the terminal"
    );
    assert!(!err.lines().any(|l| l.starts_with("::error")), "{err}");
    // A reason that tries to break a markdown table or smuggle a comment.
    let manifest = "[plugin]\nname = \"x\"\nversion = \"1.0.0\"\n[[host_api.websocket]]\nurl = \"wss://a.example/\"\nreason = \"ok | <!-- hidden --> `x` [link](https://evil)\"\n";
    let (_d, p) = temp_file("plugin.toml", manifest);
    let (code, out, _) =
        run(netgrant().args(["show", p.to_str().unwrap(), "--format", "markdown"]));
    assert_eq!(code, 0);
    let row = out.lines().find(|l| l.contains("a.example")).unwrap();
    let unescaped_pipes = row
        .match_indices('|')
        .filter(|(i, _)| !row[..*i].ends_with('\\'))
        .count();
    assert_eq!(unescaped_pipes, 8, "table row broken: {row}");
    assert!(!out.contains("<!--"), "{out}");
    assert!(!out.contains("](https://evil)"), "{out}");
}

#[test]
fn bad_input_classes_never_panic() {
    let big = format!(
        "[plugin]\nname = \"x\"\nversion = \"1.0.0\"\n# {}\n",
        "a".repeat(1024 * 1024)
    );
    let many: String = (0..10_001)
        .map(|i| format!("[[host_api.websocket]]\nurl = \"wss://h{i}.example/\"\n"))
        .collect();
    let inputs: Vec<(&str, Vec<u8>)> = vec![
        ("empty", Vec::new()),
        ("garbage", vec![0xff, 0xfe, 0x00, 0x41]),
        ("syntax", b"[plugin\nname=".to_vec()),
        ("too big", big.into_bytes()),
        ("too many", format!("[plugin]\nname = \"x\"\nversion = \"1.0.0\"\n{many}").into_bytes()),
        ("long url", format!("[plugin]\nname = \"x\"\nversion = \"1.0.0\"\n[[host_api.websocket]]\nurl = \"wss://a.example/{}\"\n", "p".repeat(2100)).into_bytes()),
        ("table not array", b"[plugin]\nname = \"x\"\nversion = \"1.0.0\"\n[host_api.websocket]\nurl = \"wss://a/\"\n".to_vec()),
        ("wrong types", b"plugin = 5\nhost_api = \"x\"\n".to_vec()),
    ];
    for (what, bytes) in inputs {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("plugin.toml");
        std::fs::write(&p, &bytes).unwrap();
        for fmt in ["human", "json", "github", "sarif"] {
            let (code, _, err) =
                run(netgrant().args(["check", p.to_str().unwrap(), "--format", fmt]));
            assert_eq!(code, 2, "{what} ({fmt}): {err}");
            assert!(!err.contains("panicked"), "{what}: {err}");
        }
    }
}

/// A grant line that requests nothing is dropped, and every command that
/// decides with the policy says so on stderr while it goes on
/// (docs/spec.md §3.3).
#[test]
fn deciding_commands_print_the_entry_errors_they_drop() {
    let dir = tempfile::tempdir().unwrap();
    let m = dir.path().join("plugin.toml");
    let g = dir.path().join("grant.toml");
    std::fs::write(
        &m,
        "[plugin]\nname = \"x\"\nversion = \"1.0.0\"\n[[host_api.request]]\nurl = \"https://api.example.com/\"\nmethods = [\"GET\"]\n",
    )
    .unwrap();
    std::fs::write(
        &g,
        "plugin = \"x\"\n[[host_api.request]]\nurl = \"https://api.example.com/\"\n[[host_api.request]]\nurl = \"https://stale.example.com/\"\n",
    )
    .unwrap();
    let (m, g) = (m.to_str().unwrap(), g.to_str().unwrap());
    let log = dir.path().join("urls.txt");
    std::fs::write(&log, "https://api.example.com/x\n").unwrap();
    let log = log.to_str().unwrap();
    let policy = ["--manifest", m, "--grant", g];
    let commands: Vec<Vec<&str>> = vec![
        [
            &["authorize", "--capability", "request"][..],
            &policy,
            &["https://api.example.com/x"],
        ]
        .concat(),
        [
            &["explain", "--capability", "request"][..],
            &policy,
            &["https://api.example.com/x"],
        ]
        .concat(),
        [&["replay"][..], &policy, &[log]].concat(),
    ];
    for args in commands {
        let (code, _, err) = run(netgrant().args(&args));
        assert_eq!(code, 0, "{args:?}: the kept entry still allows: {err}");
        assert!(err.contains("grant::not_requested"), "{args:?}: {err}");
        assert!(err.contains("stale.example.com"), "{args:?}: {err}");
    }
}

/// `show` and `diff` decide whether a file is an IR from a bounded look at
/// its start: an endless file is refused by the size limit (exit 2), not
/// read whole into memory first (which never ended).
#[cfg(target_os = "linux")]
#[test]
fn show_and_diff_read_an_endless_file_only_up_to_the_limit() {
    for args in [
        vec!["show", "/dev/zero"],
        vec!["diff", "/dev/zero", "/dev/zero"],
    ] {
        // Bounded: the old whole-file read of `/dev/zero` never returned.
        let (code, _, err) = run(netgrant()
            .args(&args)
            .timeout(std::time::Duration::from_secs(60)));
        assert_eq!(code, 2, "{args:?}: {err}");
        assert!(
            err.contains("too large") || err.contains("limit"),
            "{args:?}: {err}"
        );
        assert!(!err.contains("panicked"), "{args:?}: {err}");
    }
}

/// The README starts with two commands (build and run on the examples, run
/// the tests), and CI runs exactly both.
#[test]
fn ci_runs_the_readme_commands() {
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    let block = readme
        .split("```sh\n")
        .nth(1)
        .and_then(|b| b.split("```").next())
        .expect("README has a sh block");
    let commands: Vec<&str> = block
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect();
    assert_eq!(commands.len(), 2, "{commands:?}");
    let ci = std::fs::read_to_string(root().join(".ci/run")).unwrap();
    for c in commands {
        assert!(
            ci.lines().any(|l| l.trim() == c),
            ".ci/run does not run the README command {c:?}"
        );
    }
}

/// `show`, `diff` and `approve` say why a target is broad in one wording
/// (netgrant_policy::broad_reason), naming a wide network.
#[test]
fn broad_reasons_share_one_wording() {
    const WIDE: &str = r#"[plugin]
name = "wide"
version = "1.0.0"

[[host_api.request]]
url = "https://db.internal.example/"
methods = ["GET"]
networks = ["10.0.0.0/8", "64:ff9b::/64"]
"#;
    const NARROW: &str = r#"[plugin]
name = "wide"
version = "0.9.0"

[[host_api.request]]
url = "https://db.internal.example/"
methods = ["GET"]
networks = ["10.1.0.0/16"]
"#;
    let want = "network 10.0.0.0/8 is wider than /16 (IPv4) or /48 (IPv6); \
                network 64:ff9b::/64 holds a whole IPv4-embedding /96 (all of IPv4)";
    let (_d, m) = temp_file("plugin.toml", WIDE);
    let (_o, old) = temp_file("old.toml", NARROW);
    let (code, out, err) = run(netgrant().arg("show").arg(&m));
    assert_eq!(code, 0, "{err}");
    assert!(out.contains(&format!("BROAD: {want}")), "{out}");
    let (_, out, err) = run(netgrant().arg("diff").arg(&old).arg(&m));
    assert!(out.contains(&format!("BROAD: {want}")), "{out}{err}");
    let (code, _, err) = run(netgrant().arg("approve").arg(&m).arg("--yes"));
    assert_eq!(code, 1, "{err}");
    assert!(err.contains(&format!("({want})")), "{err}");
}
