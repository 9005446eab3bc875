//! `netgrant diff`: rendered output (insta snapshots), the JSON output against
//! its committed schema, exit codes of the gates, IR inputs, grant coverage,
//! bounded output and escaping of plugin-written text.

mod common;
use common::*;
use serde_json::Value;

const BRIDGE_M: &str = "examples/discord-bridge/plugin.toml";
const BRIDGE_G: &str = "examples/discord-bridge/grant.toml";
const UPDATE_M: &str = "examples/discord-bridge/update/plugin.toml";

/// Every class at least once: newly broad, newly loopback, newly private,
/// widened (one new target covering two old ones), changed, added, reason
/// changed, narrowed (one wildcard into two hosts), removed.
const ALL_OLD: &str = r#"[plugin]
name = "all-classes"
version = "1.0.0"

[[host_api.request]]
url = "https://api.example.com/v1/"
methods = ["GET"]
reason = "Read v1"

[[host_api.request]]
url = "https://api.example.com/v2/"
methods = ["GET"]

[[host_api.request]]
url = "https://*.a.io/"
methods = ["GET"]

[[host_api.request]]
url = "https://upload.example.com/"
methods = ["GET"]

[[host_api.request]]
url = "https://gone.example.net/"
methods = ["GET"]

[[host_api.websocket]]
url = "wss://*.events.example/"

[[host_api.websocket]]
url = "wss://gateway.example.com/"
reason = "Receive events"

[[host_api.websocket]]
url = "wss://bus.corp.example/"
"#;

const ALL_NEW: &str = r#"[plugin]
name = "all-classes"
version = "2.0.0"

[[host_api.request]]
url = "https://api.example.com/"
methods = ["GET"]
reason = "Read everything"

[[host_api.request]]
url = "https://*.io/"
methods = ["GET"]

[[host_api.request]]
url = "https://upload.example.com/"
methods = ["POST"]

[[host_api.request]]
url = "https://new.example.org/"
methods = ["GET", "HEAD"]

[[host_api.websocket]]
url = "wss://eu.events.example/"

[[host_api.websocket]]
url = "wss://us.events.example/"

[[host_api.websocket]]
url = "wss://gateway.example.com/"
reason = "Receive events and presence"

[[host_api.websocket]]
url = "wss://bus.corp.example/"
networks = ["10.20.0.0/16"]

[[host_api.websocket]]
url = "ws://localhost:9000/"
"#;

fn diff(args: &[&str]) -> (i32, String, String) {
    run(netgrant().arg("diff").args(args))
}

fn all_classes() -> (tempfile::TempDir, String, String) {
    let dir = tempfile::tempdir().unwrap();
    let (o, n) = (dir.path().join("old.toml"), dir.path().join("new.toml"));
    std::fs::write(&o, ALL_OLD).unwrap();
    std::fs::write(&n, ALL_NEW).unwrap();
    let (o, n) = (
        o.to_str().unwrap().to_string(),
        n.to_str().unwrap().to_string(),
    );
    (dir, o, n)
}

fn snapshot(name: &str, text: &str) {
    insta::with_settings!({ prepend_module_to_snapshot => true, omit_expression => true }, {
        insta::assert_snapshot!(name, text);
    });
}

#[test]
fn human_and_markdown_snapshots() {
    let (code, out, err) = diff(&[BRIDGE_M, UPDATE_M]);
    assert_eq!(code, 0, "{err}");
    assert!(err.is_empty(), "{err}");
    assert!(
        out.starts_with(
            "4 changes: 1 newly broad, 2 credential to a wider target, 1 widened\nplugin discord-bridge 0.3.1 → 0.4.0\n"
        ),
        "{out}"
    );
    snapshot("human_update", &out);

    let (code, out, err) = diff(&[
        BRIDGE_M,
        UPDATE_M,
        "--grant",
        BRIDGE_G,
        "--fail-on",
        "widened",
    ]);
    assert_eq!(code, 1, "{err}");
    assert!(
        out.contains("3 need re-approval, 1 covered by the grant"),
        "{out}"
    );
    snapshot("human_update_grant_gate", &out);

    let (code, out, _) = diff(&[
        BRIDGE_M, UPDATE_M, "--grant", BRIDGE_G, "--format", "markdown",
    ]);
    assert_eq!(code, 0);
    snapshot("markdown_update_grant", &out);

    let (_d, o, n) = all_classes();
    let (code, out, err) = diff(&[&o, &n]);
    assert_eq!(code, 0, "{err}");
    // Group order: newly broad, newly loopback, newly private, widened,
    // changed, added, reason changed, narrowed, removed.
    let groups: Vec<&str> = out
        .lines()
        .filter(|l| l.ends_with(')') && !l.starts_with(' ') && l.contains(" ("))
        .map(|l| l.split(" (").next().unwrap())
        .collect();
    assert_eq!(
        groups,
        [
            "newly broad",
            "newly loopback",
            "newly private",
            "widened",
            "changed",
            "added",
            "reason changed",
            "narrowed",
            "removed"
        ],
        "{out}"
    );
    snapshot("human_all_classes", &out);
    let (_, out, _) = diff(&[&o, &n, "--format", "markdown"]);
    snapshot("markdown_all_classes", &out);

    let (code, out, _) = diff(&[BRIDGE_M, BRIDGE_M, "--format", "markdown"]);
    assert_eq!(code, 0);
    snapshot("markdown_empty", &out);
}

fn diff_schema() -> jsonschema::Validator {
    let text = std::fs::read_to_string(root().join("schema/output/diff.schema.json")).unwrap();
    let schema: Value = serde_json::from_str(&text).unwrap();
    jsonschema::validator_for(&schema).expect("diff schema compiles")
}

#[test]
fn committed_schema_is_the_generated_one() {
    let (code, out, _) = run(netgrant().args(["schema", "diff-output"]));
    assert_eq!(code, 0);
    let committed = std::fs::read_to_string(root().join("schema/output/diff.schema.json")).unwrap();
    assert_eq!(
        out, committed,
        "schema/output/diff.schema.json is stale: run `netgrant schema diff-output > schema/output/diff.schema.json`"
    );
    let v: Value = serde_json::from_str(&out).unwrap();
    assert!(v["$schema"].as_str().unwrap().contains("draft-07"));
    assert_eq!(v["title"], "netgrant diff output");
}

#[test]
fn json_outputs_validate_against_the_schema() {
    let validator = diff_schema();
    let (_d, o, n) = all_classes();
    let dir = tempfile::tempdir().unwrap();
    let ir = dir.path().join("update.json");
    let (code, _, err) = run(netgrant().args([
        "compile",
        UPDATE_M,
        "--grant",
        BRIDGE_G,
        "-o",
        ir.to_str().unwrap(),
    ]));
    assert_eq!(code, 0, "{err}");
    let ir = ir.to_str().unwrap().to_string();
    let runs: Vec<Vec<&str>> = vec![
        vec![BRIDGE_M, UPDATE_M],
        vec![
            BRIDGE_M,
            UPDATE_M,
            "--grant",
            BRIDGE_G,
            "--fail-on",
            "widened",
        ],
        vec![UPDATE_M, BRIDGE_M, "--fail-on", "any"],
        vec![BRIDGE_M, BRIDGE_M],
        vec![BRIDGE_M, &ir],
        vec![&o, &n],
        vec![&n, &o],
        vec![
            "examples/local-dev/plugin.toml",
            "examples/broad-scraper/plugin.toml",
        ],
    ];
    let mut classes_seen = std::collections::BTreeSet::new();
    for args in &runs {
        let (code, out, err) = diff(&[args.as_slice(), &["--format", "json"]].concat());
        assert!(code == 0 || code == 1, "{args:?}: {err}");
        let v: Value =
            serde_json::from_str(&out).unwrap_or_else(|e| panic!("{args:?}: {e}\n{out}"));
        let errors: Vec<String> = validator
            .iter_errors(&v)
            .map(|e| format!("{e} at {}", e.instance_path()))
            .collect();
        assert!(errors.is_empty(), "{args:?}: {errors:?}");
        assert_eq!(v["exit_code"], code, "{args:?}");
        for c in v["changes"].as_array().unwrap() {
            classes_seen.insert(c["severity"].as_str().unwrap().to_string());
        }
    }
    assert!(classes_seen.len() >= 9, "{classes_seen:?}");
    // The validator can fail: a broken document is rejected.
    let (_, out, _) = diff(&[BRIDGE_M, UPDATE_M, "--format", "json"]);
    let mut v: Value = serde_json::from_str(&out).unwrap();
    v["changes"][0]["kind"] = Value::from("teleported");
    assert!(!validator.is_valid(&v));
    let mut v: Value = serde_json::from_str(&out).unwrap();
    v["surprise"] = Value::from(1);
    assert!(!validator.is_valid(&v));
}

#[test]
fn json_content() {
    let (code, out, _) = diff(&[BRIDGE_M, UPDATE_M, "--grant", BRIDGE_G, "--format", "json"]);
    assert_eq!(code, 0);
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["version"], 1);
    assert_eq!(v["old"]["version"], "0.3.1");
    assert_eq!(v["new"]["version"], "0.4.0");
    assert_eq!(v["old"]["kind"], "manifest");
    assert_eq!(v["counts"]["changes"], 4);
    assert_eq!(v["counts"]["newly_broad"], 1);
    assert_eq!(v["counts"]["credential_widened"], 2);
    assert_eq!(v["counts"]["widened"], 1);
    assert_eq!(v["counts"]["increases"], 4);
    assert_eq!(v["grant"]["covered"], 1);
    assert_eq!(v["grant"]["needs_reapproval"], 3);
    let first = &v["changes"][0];
    assert_eq!(first["severity"], "newly_broad");
    assert_eq!(
        first["classes"],
        serde_json::json!(["newly_broad", "added"])
    );
    assert_eq!(first["new"][0]["target"], "https://*.github.io/");
    assert_eq!(first["coverage"], "needs_reapproval");
    let api = v["changes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["new"][0]["target"] == "https://discord.com/api/")
        .unwrap();
    assert_eq!(api["kind"], "widened");
    assert_eq!(api["old"][0]["target"], "https://discord.com/api/v10/");
    assert_eq!(
        api["delta"]["path"],
        serde_json::json!({"old": "/api/v10/", "new": "/api/"})
    );
    let gw = v["changes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["capability"] == "websocket")
        .unwrap();
    assert_eq!(
        gw["delta"]["subprotocols"]["added"],
        serde_json::json!(["etf"])
    );
    assert_eq!(gw["coverage"], "covered");
    // Stable: the same inputs give byte-identical output.
    let (_, again, _) = diff(&[BRIDGE_M, UPDATE_M, "--grant", BRIDGE_G, "--format", "json"]);
    assert_eq!(out, again);
}

#[test]
fn gate_exit_codes() {
    let (_d, o, n) = all_classes();
    let (_d2, respelled) = temp_file(
        "plugin.toml",
        &std::fs::read_to_string(root().join(BRIDGE_M))
            .unwrap()
            .replace(
                "https://discord.com/api/v10/",
                "HTTPS://Discord.COM:443/api/x/../v10/",
            )
            .replace("[\"GET\", \"POST\"]", "[\"POST\", \"GET\"]"),
    );
    let respelled = respelled.to_str().unwrap().to_string();
    let (_d3, reason_only) = temp_file(
        "plugin.toml",
        &std::fs::read_to_string(root().join(BRIDGE_M))
            .unwrap()
            .replace(
                "Receive gateway events",
                "Receive gateway events (all of them)",
            ),
    );
    let reason_only = reason_only.to_str().unwrap().to_string();
    let cases: Vec<(Vec<&str>, i32, &str)> = vec![
        (vec![BRIDGE_M, UPDATE_M], 0, "no gate: report only"),
        (
            vec![BRIDGE_M, UPDATE_M, "--fail-on", "widened"],
            1,
            "broad target added",
        ),
        (vec![BRIDGE_M, UPDATE_M, "--fail-on", "any"], 1, "changes"),
        (
            vec![UPDATE_M, BRIDGE_M, "--fail-on", "widened"],
            0,
            "only narrowed and removed",
        ),
        (
            vec![UPDATE_M, BRIDGE_M, "--fail-on", "any"],
            1,
            "narrowed is a change",
        ),
        (
            vec![BRIDGE_M, &respelled, "--fail-on", "any"],
            0,
            "respelled is no change",
        ),
        (
            vec![BRIDGE_M, &reason_only, "--fail-on", "widened"],
            0,
            "reason change is not an increase",
        ),
        (
            vec![BRIDGE_M, &reason_only, "--fail-on", "any"],
            1,
            "reason change is a change",
        ),
        (vec![&o, &n, "--fail-on", "widened"], 1, "all classes"),
        (
            vec![&n, &o, "--fail-on", "widened"],
            1,
            "backwards: the removed targets come back as added",
        ),
        (
            vec![
                BRIDGE_M,
                UPDATE_M,
                "--grant",
                BRIDGE_G,
                "--fail-on",
                "widened",
            ],
            1,
            "coverage does not open the gate",
        ),
    ];
    for (args, want, why) in cases {
        for fmt in ["human", "json", "markdown"] {
            let (code, out, err) = diff(&[args.as_slice(), &["--format", fmt]].concat());
            assert_eq!(code, want, "{why}: {args:?} ({fmt}): {out}{err}");
            assert!(!err.contains("panicked"), "{err}");
        }
    }
}

#[test]
fn bad_input_exits_2() {
    let (_d, bad) = temp_file("plugin.toml", "[plugin\nname =");
    let bad = bad.to_str().unwrap().to_string();
    let (_, ir, _) = run(netgrant().args(["compile", BRIDGE_M, "--grant", BRIDGE_G]));
    let (_d2, tampered) = temp_file(
        "policy.json",
        &ir.replacen("\"broad\": false", "\"broad\": true", 1),
    );
    let tampered = tampered.to_str().unwrap().to_string();
    let (_d3, good_ir) = temp_file("policy.json", &ir);
    let good_ir = good_ir.to_str().unwrap().to_string();
    let (_d4, other_grant) = temp_file("grant.toml", "plugin = \"someone-else\"\n");
    let other_grant = other_grant.to_str().unwrap().to_string();
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec![BRIDGE_M, "does/not/exist.toml"], "netgrant::io::read"),
        (vec!["does/not/exist.toml", BRIDGE_M], "netgrant::io::read"),
        (vec![BRIDGE_M, &bad], "netgrant::toml::syntax"),
        (
            vec![&bad, BRIDGE_M, "--fail-on", "any"],
            "netgrant::toml::syntax",
        ),
        (vec![BRIDGE_M, &tampered], "netgrant::ir::tampered"),
        (
            vec![BRIDGE_M, &good_ir, "--grant", BRIDGE_G],
            "--grant applies when NEW is a manifest",
        ),
        (
            vec![BRIDGE_M, UPDATE_M, "--grant", &other_grant],
            "netgrant::grant::plugin_mismatch",
        ),
        (
            vec![BRIDGE_M, UPDATE_M, "--fail-on", "broad"],
            "invalid value",
        ),
        (
            vec![BRIDGE_M, UPDATE_M, "--format", "sarif"],
            "invalid value",
        ),
        (vec![BRIDGE_M], "required"),
    ];
    for (args, needle) in cases {
        for fmt in [None, Some("json")] {
            let mut a = args.clone();
            if let Some(f) = fmt {
                if !a.contains(&"--format") {
                    a.extend(["--format", f]);
                }
            }
            let (code, out, err) = diff(&a);
            assert_eq!(code, 2, "{a:?}: {out}{err}");
            assert!(out.is_empty(), "{a:?}: nothing on stdout: {out}");
            assert!(err.contains(needle), "{a:?}: {err}");
            assert!(!err.contains("panicked"), "{err}");
        }
    }
}

#[test]
fn ir_inputs() {
    let dir = tempfile::tempdir().unwrap();
    let old_ir = dir.path().join("old.json");
    let new_ir = dir.path().join("new.json");
    for (m, g, out) in [(BRIDGE_M, BRIDGE_G, &old_ir), (UPDATE_M, BRIDGE_G, &new_ir)] {
        let (code, _, err) =
            run(netgrant().args(["compile", m, "--grant", g, "-o", out.to_str().unwrap()]));
        assert_eq!(code, 0, "{err}");
    }
    let (old_ir, new_ir) = (old_ir.to_str().unwrap(), new_ir.to_str().unwrap());
    // A manifest and its own IR have the same requested set, whatever the grant.
    let (code, out, _) = diff(&[BRIDGE_M, old_ir, "--fail-on", "any"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("no permission changes"), "{out}");
    // IR → IR: the same changes as manifest → manifest; the new IR's own
    // statuses say what is covered (it was compiled with the grant).
    let (_, by_ir, _) = diff(&[old_ir, new_ir, "--format", "json"]);
    let (_, by_manifest, _) = diff(&[BRIDGE_M, UPDATE_M, "--grant", BRIDGE_G, "--format", "json"]);
    let (a, b): (Value, Value) = (
        serde_json::from_str(&by_ir).unwrap(),
        serde_json::from_str(&by_manifest).unwrap(),
    );
    // Bindings are compared (and shown) only between two IRs: the same
    // changes, the IR side naming the bound SecretRef.
    let strip = |v: &Value| {
        let mut v = v["changes"].clone();
        for c in v.as_array_mut().unwrap() {
            c.as_object_mut().unwrap().remove("credentials");
        }
        v
    };
    assert_eq!(strip(&a), strip(&b));
    let api = |v: &Value| {
        v["changes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["new"][0]["target"] == "https://discord.com/api/")
            .unwrap()["credentials"][0]
            .clone()
    };
    assert_eq!(api(&a)["secret_ref"], "discord/bot");
    assert!(api(&b)["secret_ref"].is_null());
    assert_eq!(api(&a)["delta"], "widened");
    assert_eq!(a["grant"]["source"], "ir");
    assert_eq!(a["grant"]["covered"], 1);
    assert_eq!(a["old"]["kind"], "ir");
    // Without a grant nothing is consulted.
    let (_, plain, _) = diff(&[BRIDGE_M, UPDATE_M, "--format", "json"]);
    let p: Value = serde_json::from_str(&plain).unwrap();
    assert!(p["grant"].is_null());
    assert!(p["changes"]
        .as_array()
        .unwrap()
        .iter()
        .all(|c| c["coverage"].is_null()));
}

#[test]
fn plugin_rename_is_reported_and_trips_any() {
    let text = std::fs::read_to_string(root().join(BRIDGE_M))
        .unwrap()
        .replace("name = \"discord-bridge\"", "name = \"chat-bridge\"");
    let (_d, renamed) = temp_file("plugin.toml", &text);
    let renamed = renamed.to_str().unwrap();
    let (code, out, _) = diff(&[BRIDGE_M, renamed]);
    assert_eq!(code, 0);
    assert!(
        out.contains("discord-bridge 0.3.1 → chat-bridge 0.3.1"),
        "{out}"
    );
    assert!(out.contains("plugin renamed"), "{out}");
    let (code, _, _) = diff(&[BRIDGE_M, renamed, "--fail-on", "widened"]);
    assert_eq!(code, 0);
    let (code, out, _) = diff(&[BRIDGE_M, renamed, "--fail-on", "any", "--format", "json"]);
    assert_eq!(code, 1);
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["plugin_renamed"], true);
    assert_eq!(v["gate_tripped"], true);
}

#[test]
fn output_is_bounded() {
    let mut old = String::from("[plugin]\nname = \"many\"\nversion = \"1.0.0\"\n");
    let mut new = old.replace("1.0.0", "2.0.0");
    for i in 0..260 {
        new.push_str(&format!(
            "\n[[host_api.websocket]]\nurl = \"wss://h{i}.example.com/\"\n"
        ));
    }
    // Three broad targets: they sort first and are never cut.
    for s in ["wss://*.com/", "wss://*.net/", "wss://*.org/"] {
        new.push_str(&format!("\n[[host_api.websocket]]\nurl = \"{s}\"\n"));
    }
    // An old target under every new wildcard host, so each wildcard widens
    // it and lists it as a partner: partner lines are capped too.
    for i in 0..8 {
        old.push_str(&format!(
            "\n[[host_api.websocket]]\nurl = \"wss://o{i}.example.org/\"\n"
        ));
    }
    let (_d, o) = temp_file("old.toml", &old);
    let (_d2, n) = temp_file("new.toml", &new);
    let (code, out, _) = diff(&[o.to_str().unwrap(), n.to_str().unwrap()]);
    assert_eq!(code, 0);
    assert!(
        out.contains("263 changes: 3 newly broad, 260 added"),
        "{}",
        &out[..300]
    );
    let rows = out
        .lines()
        .filter(|l| l.starts_with(" +") || l.starts_with("!!"))
        .count();
    assert_eq!(rows, 200, "200 rows listed");
    assert!(
        out.contains("… and 63 more changes (none newly broad)"),
        "{out}"
    );
    assert!(out.contains("was wss://o4.example.org/"), "{out}");
    assert!(!out.contains("was wss://o5.example.org/"), "{out}");
    assert!(out.contains("… and 3 more"), "{out}");
    let (_, md, _) = diff(&[
        o.to_str().unwrap(),
        n.to_str().unwrap(),
        "--format",
        "markdown",
    ]);
    let rows = md.lines().filter(|l| l.starts_with("| ")).count();
    assert_eq!(rows, 1 + 200, "header + 200 rows");
    assert!(md.contains("… and 63 more changes"), "{md}");
}

#[test]
fn plugin_text_is_escaped_everywhere() {
    let old = "[plugin]\nname = \"x\"\nversion = \"1.0.0\"\n[[host_api.websocket]]\nurl = \"wss://a.example/\"\nreason = \"fine\"\n";
    // Reasons cannot carry control or invisible characters (the manifest
    // rejects them) and targets are percent-encoded, so what reaches the
    // output is markdown look-alikes: table pipes (in a reason and in a
    // path), HTML comments and tags, links, backticks, emphasis.
    let new = "[plugin]\nname = \"x\"\nversion = \"1.0.1\"\n[[host_api.websocket]]\nurl = \"wss://a.example/\"\nreason = \"ok | <!-- hidden --> `x` [link](https://evil)\"\n[[host_api.websocket]]\nurl = \"wss://b.example/p|q/\"\nreason = \"**bold** <img src=x>\"\n";
    let (_d, o) = temp_file("old.toml", old);
    let (_d2, n) = temp_file("new.toml", new);
    let (o, n) = (o.to_str().unwrap(), n.to_str().unwrap());
    let (code, out, err) = diff(&[o, n]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("reason: \"fine\" → \"ok | <!-- hidden --> `x` [link](https://evil)\""),
        "{out}"
    );
    assert!(!out.chars().any(|c| c.is_control() && c != '\n'), "{out:?}");
    let (code, md, _) = diff(&[o, n, "--format", "markdown"]);
    assert_eq!(code, 0);
    for row in md
        .lines()
        .filter(|l| l.starts_with("| ") && !l.starts_with("| |"))
    {
        let unescaped = row
            .match_indices('|')
            .filter(|(i, _)| !row[..*i].ends_with('\\'))
            .count();
        assert_eq!(unescaped, 6, "table row broken: {row}");
    }
    assert!(!md.contains("<!--"), "{md}");
    assert!(!md.contains("](https://evil)"), "{md}");
    // Every `<` is escaped, or one of the tags the renderer itself writes.
    for (i, _) in md.match_indices('<') {
        let rest = &md[i..];
        assert!(
            md[..i].ends_with('\\')
                || ["<br>", "<sub>", "</sub>"]
                    .iter()
                    .any(|t| rest.starts_with(t)),
            "unescaped `<` at {i}: {md}"
        );
    }
    assert!(!md.contains("**bold**"), "{md}");
}

/// docs/cli.md shows real output: keep it in step with the renderer.
#[test]
fn docs_show_real_output() {
    let doc = std::fs::read_to_string(root().join("docs/cli.md")).unwrap();
    let (_, human, _) = diff(&[
        BRIDGE_M,
        UPDATE_M,
        "--grant",
        BRIDGE_G,
        "--fail-on",
        "widened",
    ]);
    let (_, md, _) = diff(&[
        BRIDGE_M, UPDATE_M, "--grant", BRIDGE_G, "--format", "markdown",
    ]);
    assert!(
        doc.contains(&human),
        "docs/cli.md `diff` human example is stale:\n{human}"
    );
    assert!(
        doc.contains(&md),
        "docs/cli.md `diff` markdown example is stale:\n{md}"
    );
}
