//! `show` for review: snapshots of human and markdown output for every
//! example, internationalized and look-alike hosts, bounded output, and
//! escaping of plugin-written text in markdown.

mod common;
use common::{examples, netgrant, run, temp_file};

fn show(args: &[&str]) -> (i32, String, String) {
    let mut c = netgrant();
    c.arg("show").args(args);
    run(&mut c)
}

#[test]
fn examples_human_and_markdown_snapshots() {
    for ex in examples() {
        let m = format!("examples/{ex}/plugin.toml");
        let g = format!("examples/{ex}/grant.toml");
        for format in ["human", "markdown"] {
            let (code, out, _) = show(&[&m, "--grant", &g, "--format", format]);
            assert_eq!(code, 0, "{ex} {format}");
            insta::assert_snapshot!(format!("show_{ex}_{format}"), out);
        }
    }
}

/// Grant lines that were dropped (a broad line without `broad = true`) are
/// listed as ignored, with the reason, in every format.
#[test]
fn ignored_grant_entries_are_shown() {
    let m = "examples/broad-scraper/plugin.toml";
    let g = "tests/fixtures/broad-scraper-unapproved.grant.toml";
    for format in ["human", "markdown"] {
        let (code, out, _) = show(&[m, "--grant", g, "--format", format]);
        assert_eq!(code, 0, "{format}");
        assert!(out.contains("https://*.github.io/"), "{out}");
        assert!(out.contains("broad = true"), "{out}");
        insta::assert_snapshot!(format!("show_broad-scraper-unapproved_{format}"), out);
    }
}

const IDN: &str = r#"[plugin]
name = "idn-demo"
version = "1.0.0"

[[host_api.websocket]]
url = "wss://pаypal.com/"
reason = "Payments"

[[host_api.request]]
url = "https://bücher.example/api/"
methods = ["GET"]
reason = "Books"

[[host_api.request]]
url = "https://plain.example/a|b/"
methods = ["GET"]
reason = "Pipes `and` <!-- comments --> | in text"
"#;

#[test]
fn idn_hosts_show_unicode_and_look_alikes_stand_out() {
    let (_d, m) = temp_file("plugin.toml", IDN);
    let m = m.to_str().unwrap();
    let (code, human, _) = show(&[m]);
    assert_eq!(code, 0);
    assert!(
        human.contains("host bücher.example (Unicode form)"),
        "{human}"
    );
    assert!(human.contains("⚠ possible look-alike host: label `pаypal` mixes scripts"));
    assert!(human.contains("1 host flagged as a possible look-alike"));
    // The look-alike row comes before the ordinary ones.
    let lookalike = human.find("wss://xn--pypal-4ve.com/").unwrap();
    let plain = human.find("https://xn--bcher-kva.example/api/").unwrap();
    assert!(lookalike < plain);
    insta::assert_snapshot!("show_idn_human", human);

    let (_, md, _) = show(&[m, "--format", "markdown"]);
    insta::assert_snapshot!("show_idn_markdown", md);
    // Every table row has exactly 8 unescaped pipes: plugin text cannot add cells.
    for line in md
        .lines()
        .filter(|l| l.starts_with("| ") && !l.starts_with("| |"))
    {
        let unescaped = line
            .char_indices()
            .filter(|(i, c)| *c == '|' && (*i == 0 || &line[i - 1..*i] != "\\"))
            .count();
        assert_eq!(unescaped, 8, "{line}");
    }
    assert!(!md.contains("<!--"), "{md}");

    let (_, json, _) = show(&[m, "--format", "json"]);
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    let idn = v["idn"].as_array().unwrap();
    assert_eq!(idn.len(), 2);
    assert!(idn
        .iter()
        .any(|h| h["host"] == "xn--pypal-4ve.com" && h["confusable"].is_string()));
    assert!(idn
        .iter()
        .any(|h| h["unicode"] == "bücher.example" && h["confusable"].is_null()));
}

#[test]
fn long_lists_are_bounded_and_broad_rows_never_hidden() {
    let mut text = String::from("[plugin]\nname = \"many\"\nversion = \"1.0.0\"\n");
    for i in 0..400 {
        text.push_str(&format!(
            "[[host_api.request]]\nurl = \"https://h{i:03}.example.com/{}\"\nmethods = [\"GET\"]\n",
            "seg/".repeat(30)
        ));
    }
    text.push_str("[[host_api.websocket]]\nurl = \"wss://*:*/\"\nreason = \"anything\"\n");
    let (_d, m) = temp_file("plugin.toml", &text);
    let (code, out, _) = show(&[m.to_str().unwrap()]);
    assert_eq!(code, 0);
    assert!(
        out.contains("… and 201 more entries (none broad)"),
        "{}",
        &out[out.len() - 300..]
    );
    assert!(out.contains("!! not granted  websocket  wss://*:*/"));
    // Long targets are cut in the path, never in the host.
    assert!(out.contains("https://h000.example.com/seg/"));
    assert!(out.lines().all(|l| l.chars().count() < 160));
}

const CRED: &str = r#"[plugin]
name = "cred-demo"
version = "1.0.0"

[[host_api.request]]
url = "https://api.example.com/v1/"
methods = ["GET"]
credentials = [
  { name = "api-key", header = "X-Api-Key", reason = "Call the API" },
  { name = "bot-token", header = "Authorization", format = "Bot {secret}|`x`" },
]

[[host_api.websocket]]
url = "wss://gateway.example.com/"
credentials = [{ name = "bot-token", message = true, format = "tok:{secret}" }]

[[host_api.request]]
url = "https://other.example.com/"
methods = ["GET"]
credentials = [{ name = "other", header = "Authorization" }]
"#;

const CRED_GRANT: &str = r#"plugin = "cred-demo"

[[host_api.request]]
url = "https://api.example.com/v1/"
credentials = { bot-token = "example/bot" }

[[host_api.websocket]]
url = "wss://gateway.example.com/"
credentials = { bot-token = "example/bot" }
"#;

/// Credentials stand out in every format: sent secrets (header and message
/// placement) with their SecretRef, declared but unbound ones, a target not
/// granted at all; plugin-written formats escaped.
#[test]
fn credentials_are_shown_in_every_format() {
    let (_d, m) = temp_file("plugin.toml", CRED);
    let (_g, g) = temp_file("grant.toml", CRED_GRANT);
    let (m, g) = (m.to_str().unwrap(), g.to_str().unwrap());
    let (code, human, err) = show(&[m, "--grant", g]);
    assert_eq!(code, 0, "{err}");
    assert!(
        human.contains("2 credentials sent (secret example/bot)"),
        "{human}"
    );
    assert!(
        human.contains("1 credential declared but not bound"),
        "{human}"
    );
    assert!(human.contains(
        "SECRET: sends secret `example/bot` in text messages at `{{credential:bot-token}}`, formatted `tok:{secret}` to `wss://gateway.example.com/`"
    ), "{human}");
    insta::assert_snapshot!("show_credentials_human", human);

    let (code, md, _) = show(&[m, "--grant", g, "--format", "markdown"]);
    assert_eq!(code, 0);
    assert!(md.contains("**🔑 Secrets sent:**"), "{md}");
    assert!(
        !md.contains("`x`"),
        "a plugin-written backtick ends no code span: {md}"
    );
    insta::assert_snapshot!("show_credentials_markdown", md);

    let (code, json, _) = show(&[m, "--grant", g, "--format", "json"]);
    assert_eq!(code, 0);
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["counts"]["credentials_sent"], 2);
    assert_eq!(v["counts"]["credentials_not_bound"], 1);
    insta::assert_snapshot!(
        "show_credentials_json",
        serde_json::to_string_pretty(&v["credentials"]).unwrap()
    );
    let entries = v["entries"].as_array().unwrap();
    assert!(entries
        .iter()
        .any(|e| e["credentials"][0]["secret_ref"] == "example/bot"));
}
