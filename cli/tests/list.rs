//! `netgrant list`: the workspace view over `examples/`, its JSON schema,
//! broken plugins as rows, grant pairing and drift.

mod common;
use common::*;
use serde_json::Value;

fn list_validator() -> jsonschema::Validator {
    let schema: Value = serde_json::from_str(
        &std::fs::read_to_string(root().join("schema/output/list.schema.json")).unwrap(),
    )
    .unwrap();
    jsonschema::validator_for(&schema).unwrap()
}

fn list_json(args: &[&str]) -> (i32, Value) {
    let (code, out, err) = run(netgrant().arg("list").args(args).args(["--format", "json"]));
    let v: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out} {err}"));
    let errors: Vec<String> = list_validator()
        .iter_errors(&v)
        .map(|e| format!("{e} at {}", e.instance_path()))
        .collect();
    assert!(errors.is_empty(), "{errors:?}\n{out}");
    (code, v)
}

#[test]
fn examples_human_and_markdown() {
    let (code, out, err) = run(netgrant().args(["list", "examples"]));
    assert_eq!(code, 0, "{err}");
    insta::assert_snapshot!("list_examples_human", out);
    // Every example is a row; the broad one comes first and is marked.
    for ex in examples() {
        assert!(
            out.contains(&format!("examples/{ex}/plugin.toml")),
            "{ex}: {out}"
        );
    }
    let first = out.lines().nth(1).unwrap();
    assert!(first.starts_with("!! broad-scraper"), "{out}");
    let (code, md, _) = run(netgrant().args(["list", "examples", "--format", "markdown"]));
    assert_eq!(code, 0);
    insta::assert_snapshot!("list_examples_markdown", md);
    assert!(md.contains("| ⚠️ **BROAD** | broad\\-scraper |"), "{md}");
}

#[test]
fn json_matches_committed_schema() {
    let (code, out, _) = run(netgrant().args(["schema", "list-output"]));
    assert_eq!(code, 0);
    let committed = std::fs::read_to_string(root().join("schema/output/list.schema.json")).unwrap();
    assert_eq!(out, committed, "schema/output/list.schema.json is stale");

    let (code, v) = list_json(&["examples"]);
    assert_eq!(code, 0);
    assert_eq!(v["ok"], true);
    let rows = v["plugins"].as_array().unwrap();
    // Every example, plus the discord-bridge update (a manifest with no
    // grant yet, as a reviewer meets it).
    assert_eq!(rows.len(), examples().len() + 1);
    assert!(
        rows.iter().any(|r| r["name"] == "discord-bridge"
            && r["version"] == "0.4.0"
            && r["pin"] == "no_grant"),
        "{rows:?}"
    );
    assert_eq!(rows[0]["name"], "broad-scraper");
    assert_eq!(rows[0]["broad"]["granted"], 2);
    assert_eq!(rows[0]["broad"]["requested"], 3);
    assert_eq!(rows[0]["ignored"], 0);
    // A grant whose broad line lacks `broad = true` counts it as ignored.
    let dir = tempfile::tempdir().unwrap();
    let plugin = dir.path().join("broad-scraper");
    std::fs::create_dir(&plugin).unwrap();
    std::fs::copy(
        root().join("examples/broad-scraper/plugin.toml"),
        plugin.join("plugin.toml"),
    )
    .unwrap();
    std::fs::copy(
        root().join("tests/fixtures/broad-scraper-unapproved.grant.toml"),
        plugin.join("grant.toml"),
    )
    .unwrap();
    let (code, v) = list_json(&[dir.path().to_str().unwrap()]);
    assert_eq!(code, 0, "{v}");
    assert_eq!(v["plugins"][0]["ignored"], 1, "{v}");
    assert_eq!(v["plugins"][0]["broad"]["granted"], 1, "{v}");
    let bridge = rows
        .iter()
        .find(|r| r["name"] == "discord-bridge" && r["version"] == "0.3.1")
        .unwrap();
    assert_eq!(bridge["request"]["requested"], 2);
    assert_eq!(bridge["request"]["granted"], 1);
    assert_eq!(bridge["request"]["not_granted"], 1);
    assert_eq!(bridge["websocket"]["granted"], 2);
    assert_eq!(bridge["grant"], "examples/discord-bridge/grant.toml");
    assert_eq!(bridge["pin"], "unpinned");
    // The rest is ordered by name after the broad one.
    let names: Vec<&str> = rows[1..]
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(names, sorted);
}

const GOOD: &str = "[plugin]\nname = \"good\"\nversion = \"1.0.0\"\n\n[[host_api.request]]\nurl = \"https://api.example.com/\"\nmethods = [\"GET\"]\n";

#[test]
fn broken_plugins_are_rows_and_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    for (sub, manifest, grant) in [
        (
            "a-good",
            GOOD,
            Some("plugin = \"good\"\n[[host_api.request]]\nurl = \"https://api.example.com/\"\n"),
        ),
        ("b-syntax", "[plugin\nname=", None),
        (
            "c-bad-grant",
            GOOD.replace("good", "other").as_str(),
            Some("plugin = \"someone-else\"\n"),
        ),
        ("d-no-grant", GOOD.replace("good", "lonely").as_str(), None),
    ] {
        std::fs::create_dir_all(d.join(sub)).unwrap();
        std::fs::write(d.join(sub).join("plugin.toml"), manifest).unwrap();
        if let Some(g) = grant {
            std::fs::write(d.join(sub).join("grant.toml"), g).unwrap();
        }
    }
    let (code, v) = list_json(&[d.to_str().unwrap()]);
    assert_eq!(code, 2);
    assert_eq!(v["ok"], false);
    assert_eq!(v["exit_code"], 2);
    let rows = v["plugins"].as_array().unwrap();
    assert_eq!(rows.len(), 4, "{v}");
    let by = |sub: &str| {
        rows.iter()
            .find(|r| r["manifest"].as_str().unwrap().contains(sub))
            .unwrap()
    };
    assert_eq!(by("b-syntax")["valid"], false);
    assert_eq!(
        by("b-syntax")["errors"][0]["code"],
        "netgrant::toml::syntax"
    );
    assert_eq!(by("c-bad-grant")["valid"], false);
    assert_eq!(by("c-bad-grant")["name"], "other");
    assert_eq!(
        by("c-bad-grant")["errors"][0]["code"],
        "netgrant::grant::plugin_mismatch"
    );
    assert_eq!(by("a-good")["valid"], true);
    assert_eq!(by("a-good")["request"]["granted"], 1);
    assert_eq!(by("d-no-grant")["pin"], "no_grant");
    assert_eq!(by("d-no-grant")["request"]["not_granted"], 1);
    // Invalid rows come before plain ones (no broad here).
    assert_eq!(rows[0]["valid"], false);
    assert_eq!(rows[1]["valid"], false);
    // Human: the broken rows carry their error, and a hint on stderr.
    let (code, out, err) = run(netgrant().arg("list").arg(d));
    assert_eq!(code, 2);
    assert!(out.contains("✗  ?"), "{out}");
    assert!(out.contains("netgrant::toml::syntax"), "{out}");
    assert!(err.contains("2 invalid plugins"), "{err}");
    // A path that does not exist is an input error, listed, exit 2.
    let (code, v) = list_json(&["examples/local-dev", "no/such/dir"]);
    assert_eq!(code, 2);
    assert_eq!(v["plugins"].as_array().unwrap().len(), 1);
    assert_eq!(v["errors"][0]["code"], "netgrant::io::read");
}

#[test]
fn grants_dir_pairing() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::create_dir_all(d.join("plugins/good")).unwrap();
    std::fs::write(d.join("plugins/good/plugin.toml"), GOOD).unwrap();
    // Beside the manifest: ignored under --grants.
    std::fs::write(d.join("plugins/good/grant.toml"), "plugin = \"good\"\n").unwrap();
    std::fs::create_dir_all(d.join("grants")).unwrap();
    std::fs::write(
        d.join("grants/good.toml"),
        "plugin = \"good\"\n[[host_api.request]]\nurl = \"https://api.example.com/\"\n",
    )
    .unwrap();
    let plugins = d.join("plugins");
    let grants = d.join("grants");
    let (code, v) = list_json(&[
        plugins.to_str().unwrap(),
        "--grants",
        grants.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{v}");
    let row = &v["plugins"][0];
    assert!(
        row["grant"].as_str().unwrap().ends_with("grants/good.toml"),
        "{row}"
    );
    assert_eq!(row["request"]["granted"], 1);
    // Without --grants, the grant beside the manifest (which grants nothing).
    let (_, v) = list_json(&[plugins.to_str().unwrap()]);
    assert_eq!(v["plugins"][0]["request"]["granted"], 0);
    // Two candidate grants: an error row, not a guess.
    std::fs::create_dir_all(d.join("grants/good")).unwrap();
    std::fs::write(d.join("grants/good/grant.toml"), "plugin = \"good\"\n").unwrap();
    let (code, v) = list_json(&[
        plugins.to_str().unwrap(),
        "--grants",
        grants.to_str().unwrap(),
    ]);
    assert_eq!(code, 2);
    assert_eq!(
        v["plugins"][0]["errors"][0]["code"],
        "netgrant::list::ambiguous_grant"
    );
}

#[test]
fn list_shows_pinned_and_drifted_grants() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("plugin.toml"), GOOD).unwrap();
    let (code, _, err) =
        run(netgrant()
            .current_dir(d)
            .args(["approve", "plugin.toml", "-o", "grant.toml"]));
    assert_eq!(code, 0, "{err}");
    let (_, v) = list_json(&[d.to_str().unwrap()]);
    assert_eq!(v["plugins"][0]["pin"], "pinned");
    assert!(v["plugins"][0]["drift"].is_null());
    std::fs::write(
        d.join("plugin.toml"),
        format!("{GOOD}\n[[host_api.websocket]]\nurl = \"wss://*.example.com/\"\n"),
    )
    .unwrap();
    let (code, v) = list_json(&[d.to_str().unwrap()]);
    assert_eq!(code, 0, "drift is not invalid input");
    let row = &v["plugins"][0];
    assert_eq!(row["pin"], "drift");
    assert_eq!(
        row["drift"]["not_granted"][0],
        "websocket:wss://*.example.com/"
    );
    let (_, out, _) = run(netgrant().arg("list").arg(d));
    assert!(out.contains("DRIFT"), "{out}");
    assert!(out.contains("1 with a drifted grant"), "{out}");
}

#[test]
fn plugin_text_is_escaped_in_every_format() {
    // A version with a terminal escape cannot pass semver, so the only
    // plugin-controlled free text that reaches a row is an error message,
    // which quotes the offending value escaped.
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(
        d.join("plugin.toml"),
        "[plugin]\nname = \"x\u{1b}[31m|*evil*\"\nversion = \"1.0.0\"\n",
    )
    .unwrap();
    for format in ["human", "markdown"] {
        let (code, out, _) = run(netgrant().arg("list").arg(d).args(["--format", format]));
        assert_eq!(code, 2);
        assert!(!out.contains('\u{1b}'), "{format}: {out:?}");
        if format == "markdown" {
            assert!(!out.contains("|*evil*"), "{out}");
        }
    }
}
