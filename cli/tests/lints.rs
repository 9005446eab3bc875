//! `check` lints and lint levels (`--deny` / `--allow`), end to end.

mod common;
use common::{netgrant, run, temp_file};

const MANIFEST: &str = r#"[plugin]
name = "demo"
version = "0.1.0"

[[host_api.websocket]]
url = "ws://gateway.example.com/"
reason = "Live updates"

[[host_api.websocket]]
url = "ws://localhost:9000/"

[[host_api.request]]
url = "https://*.example.com/"
methods = ["GET", "POST"]
reason = "Call the API"

[[host_api.request]]
url = "https://api.example.com/v1/"
methods = ["GET"]
reason = "Call the API"
"#;

fn codes(json: &str) -> Vec<(String, String)> {
    let v: serde_json::Value = serde_json::from_str(json).unwrap();
    v["diagnostics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["code"].as_str().unwrap().to_string(),
                d["severity"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn check(args: &[&str]) -> (i32, String, String) {
    let (_d, m) = temp_file("plugin.toml", MANIFEST);
    let mut c = netgrant();
    c.arg("check").arg(&m).args(args);
    run(&mut c)
}

#[test]
fn lints_are_warnings_by_default() {
    let (code, out, _) = check(&["--format", "json"]);
    assert_eq!(code, 0, "{out}");
    let mut got = codes(&out);
    got.sort();
    assert_eq!(
        got,
        vec![
            (
                "netgrant::lint::loopback_without_reason".into(),
                "warning".into()
            ),
            ("netgrant::lint::plaintext".into(), "warning".into()),
            ("netgrant::lint::redundant_target".into(), "warning".into()),
        ]
    );
}

#[test]
fn deny_promotes_to_a_gate_exit_1() {
    for name in [
        "plaintext",
        "lint::plaintext",
        "netgrant::lint::plaintext",
        "warnings",
    ] {
        let (code, out, _) = check(&["--format", "json", "-D", name]);
        assert_eq!(code, 1, "-D {name}: {out}");
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert!(v["denied"].as_u64().unwrap() >= 1, "{name}");
        assert!(codes(&out).contains(&("netgrant::lint::plaintext".into(), "error".into())));
    }
}

#[test]
fn allow_silences_and_deny_wins() {
    let (code, out, _) = check(&[
        "--format",
        "json",
        "-A",
        "plaintext",
        "-A",
        "redundant_target",
    ]);
    assert_eq!(code, 0);
    assert_eq!(
        codes(&out),
        vec![(
            "netgrant::lint::loopback_without_reason".into(),
            "warning".into()
        )]
    );
    let (code, _, _) = check(&["-A", "plaintext", "-D", "plaintext"]);
    assert_eq!(code, 1);
}

#[test]
fn unknown_or_error_codes_are_usage_errors() {
    for name in [
        "no_such_lint",
        "netgrant::grant::not_requested",
        "syntax",
        "",
    ] {
        let (code, _, err) = check(&["-D", name]);
        assert_eq!(code, 2, "-D {name:?}");
        assert!(err.contains("is not a lint or warning code"), "{err}");
        let (code, _, _) = check(&["-A", name]);
        assert_eq!(code, 2, "-A {name:?}");
    }
}

#[test]
fn real_errors_still_exit_2_with_denied_lints() {
    let bad = MANIFEST.replace("methods = [\"GET\"]", "methods = [\"TRACE\"]");
    let (_d, m) = temp_file("plugin.toml", &bad);
    let (code, _, _) = run(netgrant().arg("check").arg(&m).args(["-D", "warnings"]));
    assert_eq!(code, 2);
}

#[test]
fn notes_show_in_github_and_sarif_levels() {
    let g = r#"plugin = "demo"
[[host_api.request]]
url = "https://api.example.com/v1/"
"#;
    let dir = tempfile::tempdir().unwrap();
    let m = dir.path().join("plugin.toml");
    let gp = dir.path().join("grant.toml");
    std::fs::write(
        &m,
        MANIFEST.replace("https://*.example.com/", "https://*.example.org/"),
    )
    .unwrap();
    std::fs::write(
        &gp,
        g.replace(
            "https://api.example.com/v1/",
            "https://api.example.com/v1/x/",
        ),
    )
    .unwrap();
    let (code, out, _) = run(netgrant()
        .arg("check")
        .arg(&m)
        .arg("--grant")
        .arg(&gp)
        .args(["--format", "github"]));
    assert_eq!(code, 0, "{out}");
    assert!(
        out.lines().any(|l| l.starts_with("::notice ")
            && l.contains("title=netgrant%3A%3Alint%3A%3Agrant_narrows")),
        "{out}"
    );
    let (_, out, _) = run(netgrant()
        .arg("check")
        .arg(&m)
        .arg("--grant")
        .arg(&gp)
        .args(["--format", "sarif"]));
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let results = v["runs"][0]["results"].as_array().unwrap();
    assert!(results
        .iter()
        .any(|r| r["ruleId"] == "netgrant::lint::grant_narrows" && r["level"] == "note"));
}

/// The pre-commit hook in contrib/ checks the staged manifests (with their
/// grants) and blocks a commit that fails `check`.
#[test]
fn pre_commit_hook_blocks_bad_staged_manifest() {
    let hook = common::root().join("contrib/pre-commit");
    let bin = assert_cmd::cargo::cargo_bin("netgrant");
    let repo = tempfile::tempdir().unwrap();
    let git = |args: &[&str]| {
        let out = std::process::Command::new("git")
            .args(args)
            .current_dir(repo.path())
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .output()
            .unwrap();
        assert!(out.status.success(), "git {args:?}: {out:?}");
    };
    let hook_run = || {
        std::process::Command::new("sh")
            .arg(&hook)
            .current_dir(repo.path())
            .env("NETGRANT", &bin)
            .env("NO_COLOR", "1")
            .output()
            .unwrap()
    };
    git(&["init", "-q"]);
    let dir = repo.path().join("plugins/demo dir");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("plugin.toml"), MANIFEST).unwrap();
    git(&["add", "."]);
    let out = hook_run();
    assert!(out.status.success(), "{out:?}");
    // A bad grant staged beside it fails the hook, naming the file by its
    // repository path.
    std::fs::write(dir.join("grant.toml"), "plugin = \"other\"\n").unwrap();
    git(&["add", "."]);
    let out = hook_run();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("plugins/demo dir/grant.toml"), "{err}");
    assert!(err.contains("netgrant::grant::plugin_mismatch"), "{err}");
    // Only the staged content counts: fixing the file without staging it
    // still fails; staging the fix passes.
    std::fs::write(dir.join("grant.toml"), "plugin = \"demo\"\n").unwrap();
    assert_eq!(hook_run().status.code(), Some(1));
    git(&["add", "."]);
    assert!(hook_run().status.success());
}
