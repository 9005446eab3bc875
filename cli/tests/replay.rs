//! `netgrant replay`: summary snapshots, JSON-lines records, `--against`,
//! malformed and oversized lines, exit codes, and a long log through stdin.

mod common;
use common::*;
use serde_json::Value;

const M: &str = "examples/discord-bridge/plugin.toml";
const G: &str = "examples/discord-bridge/grant.toml";
const NEXT: &str = "examples/discord-bridge/grant.next.toml";
const LOG: &str = "examples/discord-bridge/traffic.jsonl";

fn replay(args: &[&str]) -> (i32, String, String) {
    run(netgrant().arg("replay").args(args))
}

#[test]
fn summary_snapshot() {
    let (code, out, err) = replay(&["--manifest", M, "--grant", G, LOG]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("32 lines: 32 decided (17 allowed, 15 denied)"),
        "{out}"
    );
    assert!(!out.contains("s3cret") && !out.contains("abc.def"), "{out}");
    insta::assert_snapshot!("replay_summary", out);
}

#[test]
fn against_snapshot() {
    let args = [
        "--manifest",
        M,
        "--grant",
        G,
        "--against-manifest",
        M,
        "--against-grant",
        NEXT,
        LOG,
    ];
    let (code, out, err) = replay(&args);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("8 decisions change"), "{out}");
    assert!(out.contains("not_granted → allowed"), "{out}");
    insta::assert_snapshot!("replay_against", out);
    // The gate trips on a change; the IR form of --against agrees.
    let (code, _, _) = replay(&[&args[..], &["--fail-on-change"]].concat());
    assert_eq!(code, 1);
    let dir = tempfile::tempdir().unwrap();
    let ir = dir.path().join("next.json");
    let (c, _, e) =
        run(netgrant().args(["compile", M, "--grant", NEXT, "-o", ir.to_str().unwrap()]));
    assert_eq!(c, 0, "{e}");
    let (code, out2, _) = replay(&[
        "--manifest",
        M,
        "--grant",
        G,
        "--against",
        ir.to_str().unwrap(),
        LOG,
    ]);
    assert_eq!(code, 0);
    assert_eq!(
        out, out2,
        "--against IR and --against-manifest/--against-grant differ"
    );
    // The same policy on both sides: nothing changes, the gate holds.
    let (code, out, _) = replay(&[
        "--manifest",
        M,
        "--grant",
        G,
        "--against-manifest",
        M,
        "--against-grant",
        G,
        "--fail-on-change",
        LOG,
    ]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("no decision changes"), "{out}");
}

#[test]
fn json_lines_records() {
    let (code, out, err) = replay(&[
        "--manifest",
        M,
        "--grant",
        G,
        "--against-manifest",
        M,
        "--against-grant",
        NEXT,
        "--format",
        "json",
        LOG,
    ]);
    assert_eq!(code, 0, "{err}");
    let records: Vec<Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(records.len(), 33, "32 decisions and a summary");
    for (i, r) in records[..32].iter().enumerate() {
        assert_eq!(r["kind"], "decision");
        assert_eq!(r["line"], i as u64 + 1);
        for key in [
            "capability",
            "url",
            "decision",
            "code",
            "message",
            "addresses_checked",
            "against",
            "changed",
        ] {
            assert!(r.get(key).is_some(), "record {i} lacks {key}: {r}");
        }
        assert_eq!(r["decision"] == "allow", r["code"] == "allowed");
        assert_eq!(r["changed"], r["code"] != r["against"]["code"]);
        if r["capability"] == "request" {
            assert!(r["method"].is_string());
        } else {
            assert!(r.get("method").is_none());
        }
        // Redacted: query values never appear.
        assert!(!r["url"].as_str().unwrap().contains("limit=50"), "{r}");
    }
    let s = &records[32];
    assert_eq!(s["kind"], "summary");
    assert_eq!(s["lines"], 32);
    assert_eq!(
        s["allowed"].as_u64().unwrap() + s["denied"].as_u64().unwrap(),
        32
    );
    assert_eq!(s["against"]["changed"], 8);
    let codes: u64 = s["codes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["count"].as_u64().unwrap())
        .sum();
    assert_eq!(codes, 32);
    // Each record's decision is what `authorize` says for the same input.
    let line5: Value = serde_json::from_str(
        std::fs::read_to_string(root().join(LOG))
            .unwrap()
            .lines()
            .nth(3)
            .unwrap(),
    )
    .unwrap();
    let (_, a, _) = run(netgrant().args([
        "authorize",
        "--manifest",
        M,
        "--grant",
        G,
        "--format",
        "json",
        "--capability",
        "request",
        "--method",
        line5["method"].as_str().unwrap(),
        "--header",
        "Content-Type: application/json",
        "--header",
        "X-Audit-Log-Reason: reply",
        line5["url"].as_str().unwrap(),
    ]));
    let a: Value = serde_json::from_str(&a).unwrap();
    assert_eq!(records[3]["code"], a["code"]);
    assert_eq!(records[3]["message"], a["message"]);
}

#[test]
fn mixed_malformed_and_oversized_lines_are_counted() {
    let long = format!("https://discord.com/api/v10/{}\n", "a".repeat(70_000));
    let input = format!(
        "https://discord.com/api/v10/users\n\
         {{\"capability\":\"websocket\",\"url\":\"wss://gateway.discord.gg/\"}}\n\
         # comment\n\
         \n\
         {{\"url\":\"https://discord.com/\",\"when\":\"yesterday\"}}\n\
         {long}\
         {{broken json\n\
         https://cdn.discordapp.com/attachments/1\n"
    );
    let (code, out, err) = run(netgrant()
        .args([
            "replay",
            "--manifest",
            M,
            "--grant",
            G,
            "--capability",
            "request",
            "-",
        ])
        .write_stdin(input.clone()));
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("8 lines: 3 decided (2 allowed, 1 denied), 3 invalid, 2 skipped"),
        "{out}"
    );
    assert!(
        out.contains("line 5: not a request record: unknown field `when`"),
        "{out}"
    );
    assert!(
        out.contains("line 6: line is longer than 65536 bytes"),
        "{out}"
    );
    assert!(out.contains("line 7: not a request record"), "{out}");
    insta::assert_snapshot!("replay_malformed", out);
    // Fail closed: with --fail-on-deny, an unreadable line trips the gate too.
    let fail_on_deny = |stdin: &str| {
        run(netgrant()
            .args([
                "replay",
                "--manifest",
                M,
                "--grant",
                G,
                "--capability",
                "request",
                "--fail-on-deny",
                "-",
            ])
            .write_stdin(stdin.to_string()))
        .0
    };
    let code = fail_on_deny("https://discord.com/api/v10/users\n{\"nope\":1}\n");
    assert_eq!(code, 1);
    let code = fail_on_deny("https://discord.com/api/v10/users\n");
    assert_eq!(code, 0);
}

#[test]
fn exit_codes() {
    // Unreadable log, bad policy, gate without a second policy: 2.
    let (code, _, err) = replay(&["--manifest", M, "--grant", G, "no/such/log"]);
    assert_eq!(code, 2);
    assert!(err.contains("cannot read no/such/log"), "{err}");
    let (code, _, _) = replay(&["--manifest", "no/such/plugin.toml", LOG]);
    assert_eq!(code, 2);
    let (_d, bad) = temp_file("policy.json", "{\"version\": 1}");
    let (code, _, _) = replay(&["--policy", bad.to_str().unwrap(), LOG]);
    assert_eq!(code, 2);
    let (code, _, err) = replay(&["--manifest", M, "--grant", G, "--fail-on-change", LOG]);
    assert_eq!(code, 2);
    assert!(
        err.contains("--fail-on-change needs something to compare with"),
        "{err}"
    );
    // Denials alone do not fail a replay; --fail-on-deny makes them.
    let (code, _, _) = replay(&["--manifest", M, "--grant", G, LOG]);
    assert_eq!(code, 0);
    let (code, _, _) = replay(&["--manifest", M, "--grant", G, "--fail-on-deny", LOG]);
    assert_eq!(code, 1);
    let (code, _, _) = replay(&["--policy", "examples/discord-bridge/policy.json", LOG]);
    assert_eq!(code, 0);
}

#[test]
fn a_long_log_streams_through_stdin() {
    // 200,000 lines: a few hot endpoints and a tail of distinct ones.
    let mut input = String::with_capacity(200_000 * 70);
    for i in 0..200_000u32 {
        match i % 10 {
            0 => input.push_str(&format!("https://h{i}.example/x\n")),
            1..=5 => input.push_str("https://discord.com/api/v10/users/@me\n"),
            _ => input.push_str(&format!(
                "https://cdn.discordapp.com/attachments/{}\n",
                i % 5
            )),
        }
    }
    let (code, out, err) = run(netgrant()
        .args([
            "replay",
            "--manifest",
            M,
            "--grant",
            G,
            "--capability",
            "request",
            "--format",
            "json",
            "-",
        ])
        .write_stdin(input));
    assert_eq!(code, 0, "{err}");
    let last: Value = serde_json::from_str(out.lines().last().unwrap()).unwrap();
    assert_eq!(last["kind"], "summary");
    assert_eq!(last["lines"], 200_000);
    assert_eq!(last["allowed"], 100_000);
    assert_eq!(last["denied"], 100_000);
    assert_eq!(out.lines().count(), 200_001);
    // 20,000 distinct unknown hosts: more than the table tracks.
    assert_eq!(last["top_denied_approximate"], true);
    assert!(
        last["cache"]["hits"].as_u64().unwrap() >= 179_000,
        "{}",
        last["cache"]
    );
}

/// Audit records name the credentials asked for; replay passes them on, so
/// a recorded `credential_not_granted` replays as itself and
/// `--fail-on-change` stays quiet; without the names such a record is an
/// invalid line, not a false change.
#[test]
fn audit_records_with_credentials() {
    let dir = tempfile::tempdir().unwrap();
    let grant = dir.path().join("grant.toml");
    std::fs::write(
        &grant,
        "plugin = \"discord-bridge\"\n[[host_api.request]]\nurl = \"https://discord.com/api/v10/\"\n",
    )
    .unwrap();
    let log = dir.path().join("audit.jsonl");
    let deny = r#"{"record":"decision","time":"t","plugin":"discord-bridge","id":"1","capability":"request","url":"https://discord.com/api/v10/x","method":"GET","header_names":[],"subprotocols":[],"resolved":null,"decision":"deny","code":"credential_not_granted","rule":"r","digest":"sha256:x","credentials":["bot-token"]}"#;
    std::fs::write(&log, format!("{deny}\n")).unwrap();
    let g = grant.to_str().unwrap();
    let l = log.to_str().unwrap();
    let (code, out, err) = replay(&["--manifest", M, "--grant", g, "--fail-on-change", l]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("credential_not_granted"), "{out}");
    // With the example grant, which binds bot-token, the same record is now
    // allowed: a real change.
    let (code, out, _) = replay(&["--manifest", M, "--grant", G, "--fail-on-change", l]);
    assert_eq!(code, 1, "{out}");
    let stale = deny.replace(r#","credentials":["bot-token"]"#, "");
    std::fs::write(&log, format!("{stale}\n")).unwrap();
    let (_, out, _) = replay(&["--manifest", M, "--grant", g, l]);
    assert!(out.contains("1 invalid"), "{out}");
}
