//! `netgrant approve`: round trip through the authorizer, comment
//! preservation, the broad gate, and pinned-grant drift in `check` / `show`.

mod common;
use common::*;
use netgrant_policy::ir::{Entry, Status};
use netgrant_policy::{compile, Authorizer, Capability, Grant, Manifest, Request};
use netgrant_policy::{HostPattern, PortPattern};
use serde_json::Value;
use std::path::Path;

fn manifest_of(path: &Path) -> Manifest {
    let text = std::fs::read_to_string(path).unwrap();
    Manifest::parse("plugin.toml", &text).value.unwrap()
}

/// Runs `approve` non-interactively and returns (exit, grant text, stderr).
fn approve(manifest: &Path, extra: &[&str]) -> (i32, String, String) {
    let mut cmd = netgrant();
    cmd.arg("approve").arg(manifest).args(extra);
    run(&mut cmd)
}

/// A URL inside a canonical target (host, port and path filled in).
fn url_inside(t: &netgrant_policy::Target) -> String {
    let host = match &t.host {
        HostPattern::Any => "example.com".to_string(),
        HostPattern::Wildcard(s) => format!("a.{s}"),
        HostPattern::Domain(d) => d.clone(),
        HostPattern::Ip(ip) if ip.is_ipv6() => format!("[{ip}]"),
        HostPattern::Ip(ip) => ip.to_string(),
    };
    let port = match t.port {
        PortPattern::Any => ":8443".to_string(),
        PortPattern::Exact(p) => format!(":{p}"),
    };
    let path = if t.path.ends_with('/') {
        format!("{}inside", t.path)
    } else {
        format!("{}/inside", t.path)
    };
    format!("{}://{host}{port}{path}", t.scheme)
}

/// URLs just outside a canonical target: the apex or a sibling host, the
/// next port, a sibling path.
fn urls_outside(t: &netgrant_policy::Target) -> Vec<String> {
    let inside = url_inside(t);
    let mut v = Vec::new();
    match &t.host {
        HostPattern::Domain(d) => v.push(inside.replacen(d.as_str(), &format!("x{d}"), 1)),
        HostPattern::Wildcard(s) => v.push(inside.replacen(&format!("a.{s}"), s, 1)),
        // Any host: a private address is still outside (address class).
        HostPattern::Any => v.push(inside.replacen("example.com", "10.0.0.1", 1)),
        HostPattern::Ip(_) => {}
    }
    if let PortPattern::Exact(p) = t.port {
        if p < 65535 {
            v.push(inside.replacen(&format!(":{p}/"), &format!(":{}/", p + 1), 1));
        }
    }
    if t.path != "/" {
        let trimmed = t.path.trim_end_matches('/');
        let sibling = format!("{trimmed}x/");
        v.push(inside.replacen(t.path.as_str(), &sibling, 1));
    }
    v
}

fn request_for<'a>(cap: Capability, method: &'a str, url: &'a str) -> Request<'a> {
    match cap {
        Capability::Websocket => Request::websocket(url),
        Capability::Request => Request::http(method, url),
    }
}

/// Lints about the manifest itself (not the grant `approve` wrote) are
/// allowed in these checks; grant-side lints stay on, except
/// `credential_not_bound`: approve binds only with `--bind-credential`
/// (`bind_credential_writes_the_binding_and_the_grant_checks`).
const MANIFEST_LINTS: &[&str] = &[
    "-A",
    "credential_not_bound",
    "-A",
    "redundant_target",
    "-A",
    "overlapping_reasons",
    "-A",
    "loopback_without_reason",
    "-A",
    "plaintext",
];

#[test]
fn round_trip_allows_exactly_what_is_requested() {
    let mut checked = 0;
    for ex in examples() {
        let m = root().join(format!("examples/{ex}/plugin.toml"));
        let dir = tempfile::tempdir().unwrap();
        let g = dir.path().join("grant.toml");
        let (code, out, err) = approve(&m, &["--yes", "--allow-broad", "-o", g.to_str().unwrap()]);
        assert_eq!(code, 0, "{ex}: {err}");
        assert!(out.is_empty(), "with -o nothing goes to stdout: {out}");
        // The written grant checks cleanly: no errors, no warnings.
        let (code, _, err) = run(netgrant()
            .arg("check")
            .args(MANIFEST_LINTS)
            .arg(&m)
            .arg("--grant")
            .arg(&g));
        assert_eq!(code, 0, "{ex}: {err}");
        assert!(err.contains("(0 errors, 0 warnings"), "{ex}: {err}");

        let manifest = manifest_of(&m);
        let grant = Grant::parse("grant.toml", &std::fs::read_to_string(&g).unwrap())
            .value
            .unwrap();
        let policy = compile(&manifest, Some(&grant)).policy.unwrap();
        assert_eq!(
            policy.approved_digest.as_ref(),
            Some(&policy.requested_digest)
        );
        // Everything requested is granted, exactly as requested.
        assert!(policy.ignored.is_empty(), "{ex}");
        assert_eq!(policy.entries.len(), manifest.requested.len(), "{ex}");
        for e in &policy.entries {
            assert_eq!(e.status, Status::Granted, "{ex}: {}", e.id);
            assert!(e.narrows.is_none(), "{ex}: {} narrows", e.id);
        }
        let authz = Authorizer::new(&policy);
        for r in &manifest.requested {
            let p = &r.permission;
            let methods = p
                .methods
                .as_ref()
                .map(|m| m.to_strings())
                .unwrap_or_else(|| vec!["GET".into()]);
            let method = if methods[0] == "*" {
                "DELETE"
            } else {
                &methods[0]
            };
            let url = url_inside(&p.target);
            let d = authz.authorize(&request_for(p.capability, method, &url), None);
            assert!(
                d.is_allowed(),
                "{ex}: {url} should be allowed: {}",
                d.message()
            );
            checked += 1;
            for out in urls_outside(&p.target) {
                // Outside this target; skip it if another request covers it
                // (`https://*` covers the apex of `*.github.io`).
                let as_target = netgrant_policy::Target::parse(&out).unwrap();
                if manifest
                    .requested
                    .iter()
                    .any(|o| o.permission.target.contains(&as_target))
                {
                    continue;
                }
                let d = authz.authorize(&request_for(p.capability, method, &out), None);
                assert!(!d.is_allowed(), "{ex}: {out} should be denied");
                checked += 1;
            }
            // The other capability never rides on this one.
            let other = request_for(p.capability.other(), "GET", &url);
            assert!(!authz.authorize(&other, None).is_allowed(), "{ex}: {url}");
            // A method outside the requested ones is not approved.
            if p.capability == Capability::Request && methods[0] != "*" {
                let missing = ["PATCH", "DELETE", "PUT", "OPTIONS"]
                    .into_iter()
                    .find(|m| !methods.iter().any(|x| x == m))
                    .unwrap();
                let d = authz.authorize(&Request::http(missing, &url), None);
                assert_eq!(d.code, "method_not_allowed", "{ex}: {missing} {url}");
            }
        }
    }
    assert!(checked > 20, "only {checked} decisions checked");
}

#[test]
fn approved_entries_pin_every_field() {
    // An approved grant never widens silently: a manifest that later adds a
    // method, a header or a network gets only what was approved.
    let (_d, m) = temp_file(
        "plugin.toml",
        r#"[plugin]
name = "pin"
version = "1.0.0"

[[host_api.request]]
url = "https://api.example.com/"
methods = ["GET"]
"#,
    );
    let (code, grant, err) = approve(&m, &[]);
    assert_eq!(code, 0, "{err}");
    assert!(grant.contains("methods = [\"GET\"]"), "{grant}");
    assert!(grant.contains("headers = []"), "{grant}");
    assert!(grant.contains("networks = []"), "{grant}");
    std::fs::write(
        &m,
        r#"[plugin]
name = "pin"
version = "1.1.0"

[[host_api.request]]
url = "https://api.example.com/"
methods = ["GET", "DELETE"]
headers = ["X-Extra"]
networks = ["10.0.0.0/24"]
"#,
    )
    .unwrap();
    let manifest = manifest_of(&m);
    let g = Grant::parse("grant.toml", &grant).value.unwrap();
    let policy = compile(&manifest, Some(&g)).policy.unwrap();
    let e: &Entry = policy.granted().next().unwrap();
    assert_eq!(e.methods.as_deref(), Some(&["GET".to_string()][..]));
    assert!(e.headers.is_empty() && e.networks.is_empty(), "{e:?}");
    let d = netgrant_policy::drift(&policy, Some(&g)).unwrap();
    assert_eq!(
        d.follows_manifest,
        Some(vec![]),
        "pinned entries follow nothing"
    );
}

const CHAT_MANIFEST: &str = r#"[plugin]
name = "chat"
version = "2.0.0"

[[host_api.request]]
url = "https://api.chat.example/v2/"
methods = ["GET", "POST", "DELETE"]
reason = "Post and tidy messages"

[[host_api.request]]
url = "https://cdn.chat.example/"
methods = ["GET"]
reason = "Download attachments"

[[host_api.websocket]]
url = "wss://gateway.chat.example/"
subprotocols = ["json", "etf"]
reason = "Gateway events"

[[host_api.websocket]]
url = "ws://localhost:7000/"
reason = "Local bridge"
"#;

const CHAT_GRANT: &str = r#"#:schema ../../schema/grant.schema.json
# Reviewed by alice on 2026-01-05: keep the REST API read-only.
plugin = "chat"   # must match plugin.name

# REST, narrowed: no POST, no DELETE.
[[host_api.request]]
url = "https://api.chat.example/v2/"
methods = ["GET"]                  # narrowed on purpose

# Extra, narrower entry the user added: POST only to one channel.
[[host_api.request]]
url = "https://api.chat.example/v2/channels/42/"
methods = ["POST"]

# Removed from the manifest in 2.0.0.
[[host_api.request]]
url = "https://legacy.chat.example/"
methods = ["GET"]

# Gateway: JSON only.
[[host_api.websocket]]
url = "wss://gateway.chat.example/"
subprotocols = ["json"]

# end of grant
"#;

#[test]
fn updates_keep_comments_narrowing_and_extra_entries() {
    let dir = tempfile::tempdir().unwrap();
    let m = dir.path().join("plugin.toml");
    let g = dir.path().join("grant.toml");
    std::fs::write(&m, CHAT_MANIFEST).unwrap();
    std::fs::write(&g, CHAT_GRANT).unwrap();
    let (code, out, err) = run(netgrant().current_dir(dir.path()).args([
        "approve",
        "plugin.toml",
        "--grant",
        "grant.toml",
        "--yes",
    ]));
    assert_eq!(code, 0, "{err}");
    // Without -o the grant goes to stdout and the input is untouched.
    assert_eq!(std::fs::read_to_string(&g).unwrap(), CHAT_GRANT);
    insta::assert_snapshot!("approve_update_grant", out);
    insta::assert_snapshot!("approve_update_summary", err);
    // What was kept, explicitly.
    assert!(out.contains("# Reviewed by alice on 2026-01-05"), "{out}");
    assert!(out.contains("methods = [\"GET\"]                  # narrowed on purpose"));
    assert!(out.contains("url = \"https://api.chat.example/v2/channels/42/\""));
    assert!(!out.contains("legacy.chat.example"), "stale entry removed");
    assert!(
        !out.contains("Removed from the manifest"),
        "with its comment"
    );
    // approved_digest is a root key: before the first table.
    let digest_at = out.find("approved_digest").unwrap();
    assert!(digest_at < out.find("[[").unwrap(), "{out}");

    // -o the same file updates in place; the result checks cleanly.
    let (code, _, err) = run(netgrant().current_dir(dir.path()).args([
        "approve",
        "plugin.toml",
        "--grant",
        "grant.toml",
        "--yes",
        "-o",
        "grant.toml",
    ]));
    assert_eq!(code, 0, "{err}");
    assert_eq!(std::fs::read_to_string(&g).unwrap(), out);
    let (code, _, err) = run(netgrant()
        .current_dir(dir.path())
        .arg("check")
        .args(MANIFEST_LINTS)
        .args(["plugin.toml", "--grant", "grant.toml"]));
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("(0 errors, 0 warnings"), "{err}");
    // Approving again changes nothing.
    let (code, again, _) = run(netgrant().current_dir(dir.path()).args([
        "approve",
        "plugin.toml",
        "--grant",
        "grant.toml",
        "--yes",
    ]));
    assert_eq!(code, 0);
    assert_eq!(again, out);
    // No temporary file is left behind.
    let names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names.len(), 2, "{names:?}");
}

#[test]
fn broad_needs_allow_broad_when_it_cannot_ask() {
    let m = root().join("examples/broad-scraper/plugin.toml");
    for extra in [&[][..], &["--yes"][..]] {
        let dir = tempfile::tempdir().unwrap();
        let g = dir.path().join("grant.toml");
        let mut args = extra.to_vec();
        args.extend(["-o", g.to_str().unwrap()]);
        let (code, out, err) = approve(&m, &args);
        assert_eq!(code, 1, "gate tripped: {err}");
        assert!(out.is_empty(), "{out}");
        assert!(!g.exists(), "nothing written");
        assert!(err.contains("--allow-broad"), "{err}");
        assert!(err.contains("request:https://*/"), "{err}");
        assert!(err.contains("request:https://*.github.io/"), "{err}");
        assert!(err.contains("websocket:wss://*:*/"), "{err}");
        assert!(err.contains("nothing written"), "{err}");
    }
    // With --allow-broad, broad entries say `broad = true`.
    let (code, out, err) = approve(&m, &["--allow-broad"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.matches("broad = true").count(), 3, "{out}");
    // --only can leave the broad targets out instead.
    let (code, out, err) = approve(&m, &["--only", "https://*.github.io/"]);
    assert_eq!(code, 1, "{err}: {out}");
    // An existing conscious approval is kept without --allow-broad; only new
    // broad approvals need it (the unapproved `*.github.io` entry is new).
    let g = root().join("tests/fixtures/broad-scraper-unapproved.grant.toml");
    let (code, _, err) = approve(&m, &["--grant", g.to_str().unwrap()]);
    assert_eq!(code, 1, "{err}");
    assert!(!err.contains("request:https://*/ "), "{err}");
    assert!(err.contains("request:https://*.github.io/"), "{err}");
}

/// Grants written with inline arrays or an inline `host_api` are edited in
/// their own style, and the result checks cleanly.
#[test]
fn inline_layouts_are_edited_in_place() {
    let m = root().join("examples/discord-bridge/plugin.toml");
    for grant in [
        "plugin = \"discord-bridge\"\nhost_api.request = [{ url = \"https://discord.com/api/v10/\", methods = [\"GET\"] }, { url = \"https://gone.example/\", methods = [\"GET\"] }]\n",
        "plugin = \"discord-bridge\"\nhost_api = { websocket = [{ url = \"wss://gateway.discord.gg/\" }] }\n",
        "plugin = \"discord-bridge\"\n[host_api]\nwebsocket = [{ url = \"wss://gateway.discord.gg/\", broad = true }]\n",
    ] {
        let (_d, g) = temp_file("grant.toml", grant);
        let (code, out, err) = approve(&m, &["--grant", g.to_str().unwrap(), "--yes"]);
        assert_eq!(code, 0, "{grant}: {err}");
        assert!(!out.contains("gone.example"), "{out}");
        assert!(!out.contains("broad"), "unneeded broad removed: {out}");
        let (_d2, written) = temp_file("grant.toml", &out);
        let (code, _, err) = run(netgrant().arg("check").args(MANIFEST_LINTS).arg(&m).arg("--grant").arg(&written));
        assert_eq!(code, 0, "{out}: {err}");
        assert!(err.contains("(0 errors, 0 warnings"), "{out}: {err}");
        // Every request is granted.
        let (_, v, _) = run(netgrant().arg("show").arg(&m).arg("--grant").arg(&written).args(["--format", "json"]));
        let v: Value = serde_json::from_str(&v).unwrap();
        assert_eq!(v["counts"]["not_granted"], 0, "{out}");
    }
}

#[test]
fn only_selects_by_containing_pattern() {
    let m = root().join("examples/discord-bridge/plugin.toml");
    let (code, out, err) = approve(
        &m,
        &[
            "--only",
            "wss://*.discord.gg",
            "--only",
            "https://discord.com/",
        ],
    );
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("url = \"wss://gateway.discord.gg/\""), "{out}");
    assert!(
        out.contains("url = \"https://discord.com/api/v10/\""),
        "{out}"
    );
    assert!(!out.contains("cdn.discordapp.com"), "{out}");
    assert!(!out.contains("localhost"), "{out}");
    assert!(err.contains("not approved: outside --only"), "{err}");
    // The result still checks (not-granted requests are fine).
    let (_d, g) = temp_file("grant.toml", &out);
    let (code, _, err) = run(netgrant()
        .arg("check")
        .args(MANIFEST_LINTS)
        .arg(&m)
        .arg("--grant")
        .arg(&g));
    assert_eq!(code, 0, "{err}");
    // A pattern that selects nothing, or is not a target, is a usage error.
    for bad in ["wss://*.example.org", "wss://x/?q", "ftp://x"] {
        let (code, out, err) = approve(&m, &["--only", bad]);
        assert_eq!(code, 2, "{bad}: {err}");
        assert!(out.is_empty());
        assert!(err.contains("--only"), "{err}");
    }
}

#[test]
fn approve_refuses_bad_inputs_and_clobbering() {
    let m = root().join("examples/discord-bridge/plugin.toml");
    // -o naming an existing file that is not the --grant input.
    let (_d, existing) = temp_file("grant.toml", "# mine\n");
    let (code, _, err) = approve(&m, &["-o", existing.to_str().unwrap()]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--grant"), "{err}");
    assert_eq!(std::fs::read_to_string(&existing).unwrap(), "# mine\n");
    // A grant for another plugin, a broken grant, a broken manifest.
    for (grant, code_str) in [
        ("plugin = \"other\"\n", "netgrant::grant::plugin_mismatch"),
        (
            "plugin = \"discord-bridge\"\n[[host_api.request]]\nurl = 3\n",
            "netgrant::schema::wrong_type",
        ),
    ] {
        let (_d, g) = temp_file("grant.toml", grant);
        let (code, out, err) = approve(&m, &["--grant", g.to_str().unwrap()]);
        assert_eq!(code, 2, "{err}");
        assert!(out.is_empty());
        assert!(err.contains(code_str), "{err}");
    }
    let (_d, bad) = temp_file("plugin.toml", "[plugin]\nname = \"x\"\n");
    let (code, out, _) = approve(&bad, &[]);
    assert_eq!(code, 2);
    assert!(out.is_empty());
    // Duplicate targets are fatal when compiled, even with no grant yet.
    let (_d, dup) = temp_file(
        "plugin.toml",
        "[plugin]\nname = \"d\"\nversion = \"1.0.0\"\n[[host_api.websocket]]\nurl = \"wss://a.example/\"\n[[host_api.websocket]]\nurl = \"WSS://A.example:443/\"\n",
    );
    let (code, out, err) = approve(&dup, &[]);
    assert_eq!(code, 2, "{err}");
    assert!(out.is_empty());
    assert!(
        err.contains("netgrant::manifest::duplicate_target"),
        "{err}"
    );
}

/// Approve, change the manifest, and `check` / `show` name what the change affects.
/// `approve --grant grant.toml -o grant.toml --yes` in `dir`, then `check`
/// passes with no drift: the grant is pinned to the current manifest.
fn approve_in_place_and_check_pinned(dir: &std::path::Path) {
    let (code, _, err) = run(netgrant().current_dir(dir).args([
        "approve",
        "plugin.toml",
        "--grant",
        "grant.toml",
        "--yes",
        "-o",
        "grant.toml",
    ]));
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = run(netgrant()
        .current_dir(dir)
        .arg("check")
        .args(MANIFEST_LINTS)
        .args(["plugin.toml", "--grant", "grant.toml"]));
    assert_eq!(code, 0, "{err}");
    assert!(!err.contains("digest_drift"), "{err}");
}

#[test]
fn digest_drift_names_affected_entries() {
    let dir = tempfile::tempdir().unwrap();
    let m = dir.path().join("plugin.toml");
    let g = dir.path().join("grant.toml");
    std::fs::write(&m, CHAT_MANIFEST).unwrap();
    std::fs::write(&g, CHAT_GRANT).unwrap();
    approve_in_place_and_check_pinned(dir.path());

    // The plugin update: a new gateway subprotocol (the hand-written gateway
    // entry pins it, fine), a new header on the REST API (the narrowed REST
    // entry leaves headers unset, so it follows), and a new target.
    let changed = CHAT_MANIFEST
        .replace(
            "methods = [\"GET\", \"POST\", \"DELETE\"]",
            "methods = [\"GET\", \"POST\", \"DELETE\"]\nheaders = [\"X-Audit\"]",
        )
        .replace(
            "subprotocols = [\"json\", \"etf\"]",
            "subprotocols = [\"json\", \"etf\", \"zlib\"]",
        )
        + "\n[[host_api.websocket]]\nurl = \"wss://voice.chat.example/\"\nreason = \"Voice\"\n";
    std::fs::write(&m, changed).unwrap();

    let (code, _, err) = run(netgrant()
        .current_dir(dir.path())
        .arg("check")
        .args(MANIFEST_LINTS)
        .args(["plugin.toml", "--grant", "grant.toml"]));
    assert_eq!(code, 0, "drift is a warning: {err}");
    assert!(err.contains("netgrant::grant::digest_drift"), "{err}");
    assert!(err.contains("websocket:wss://voice.chat.example/"), "{err}");
    assert!(
        err.contains("follows the manifest: headers x-audit"),
        "{err}"
    );

    let (_, json, _) = run(netgrant()
        .current_dir(dir.path())
        .arg("check")
        .args(MANIFEST_LINTS)
        .args(["plugin.toml", "--grant", "grant.toml", "--format", "json"]));
    let v: Value = serde_json::from_str(&json).unwrap();
    let d = v["diagnostics"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["code"] == "netgrant::grant::digest_drift")
        .unwrap();
    let help = d["help"].as_str().unwrap();
    assert!(
        help.contains("`websocket:wss://voice.chat.example/`"),
        "{help}"
    );
    assert!(
        help.contains("`request:https://api.chat.example/v2/` (headers x-audit)"),
        "{help}"
    );
    assert!(
        !help.contains("gateway"),
        "pinned entries are not named: {help}"
    );
    // Labels: approved_digest, then the REST entry (and the extra entry
    // under it, which also leaves headers unset).
    let labels: Vec<&str> = d["labels"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["text"].as_str().unwrap())
        .collect();
    assert_eq!(labels[0], "approved a different requested set");
    assert!(
        labels
            .iter()
            .skip(1)
            .all(|l| l.starts_with("follows the manifest")),
        "{labels:?}"
    );
    assert_eq!(labels.len(), 3, "{labels:?}");

    let (code, out, _) = run(netgrant().current_dir(dir.path()).args([
        "show",
        "plugin.toml",
        "--grant",
        "grant.toml",
    ]));
    assert_eq!(code, 0);
    assert!(
        out.contains("the manifest changed since the grant was approved"),
        "{out}"
    );
    assert!(
        out.contains("not granted: websocket:wss://voice.chat.example/"),
        "{out}"
    );
    assert!(
        out.contains(
            "follows the manifest: request:https://api.chat.example/v2/ (headers x-audit)"
        ),
        "{out}"
    );
    let (_, md, _) = run(netgrant().current_dir(dir.path()).args([
        "show",
        "plugin.toml",
        "--grant",
        "grant.toml",
        "--format",
        "markdown",
    ]));
    assert!(
        md.contains("> - not granted: websocket:wss://voice.chat.example/"),
        "{md}"
    );
    let (_, js, _) = run(netgrant().current_dir(dir.path()).args([
        "show",
        "plugin.toml",
        "--grant",
        "grant.toml",
        "--format",
        "json",
    ]));
    let v: Value = serde_json::from_str(&js).unwrap();
    assert_eq!(v["digest_drift"], true);
    assert_eq!(
        v["drift"]["not_granted"][0],
        "websocket:wss://voice.chat.example/"
    );

    // Re-approving pins the new set again; the drift is gone.
    approve_in_place_and_check_pinned(dir.path());

    // A request the manifest drops: its grant entry no longer applies and is
    // named too (check fails on the entry error as well).
    let dropped = std::fs::read_to_string(&m)
        .unwrap()
        .replace("[[host_api.request]]\nurl = \"https://cdn.chat.example/\"\nmethods = [\"GET\"]\nreason = \"Download attachments\"\n", "");
    std::fs::write(&m, dropped).unwrap();
    let (code, _, err) = run(netgrant()
        .current_dir(dir.path())
        .arg("check")
        .args(MANIFEST_LINTS)
        .args(["plugin.toml", "--grant", "grant.toml"]));
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("╰── no longer applies"), "{err}");
    let (_, json, _) = run(netgrant()
        .current_dir(dir.path())
        .arg("check")
        .args(MANIFEST_LINTS)
        .args(["plugin.toml", "--grant", "grant.toml", "--format", "json"]));
    assert!(
        json.contains("grant entries that no longer apply: `request:https://cdn.chat.example/`"),
        "{json}"
    );
}

/// `--bind-credential NAME=SECRET_REF` writes the binding on every approved
/// entry whose request declares NAME; the grant passes `check` and `show`
/// lists the secret as sent. Without the flag nothing is bound, and the
/// summary says how to bind it. A malformed reference is refused unquoted.
#[test]
fn bind_credential_writes_the_binding_and_the_grant_checks() {
    let dir = tempfile::tempdir().unwrap();
    let m = root().join("examples/discord-bridge/plugin.toml");
    let out = dir.path().join("grant.toml");
    let o = out.to_str().unwrap();
    let (code, _, err) = approve(
        &m,
        &[
            "--yes",
            "--bind-credential",
            "bot-token=discord/bot",
            "-o",
            o,
        ],
    );
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("SECRET: sends secret `discord/bot`"), "{err}");
    let text = std::fs::read_to_string(&out).unwrap();
    assert_eq!(
        text.matches("credentials = { bot-token = \"discord/bot\" }")
            .count(),
        2,
        "{text}"
    );
    let mut c = netgrant();
    c.arg("check").arg(&m).arg("--grant").arg(&out);
    let (code, _, err) = run(&mut c);
    assert_eq!(code, 0, "{err}");
    let mut c = netgrant();
    c.arg("show").arg(&m).arg("--grant").arg(&out);
    let (_, shown, _) = run(&mut c);
    assert!(
        shown.contains("2 credentials sent (secret discord/bot)"),
        "{shown}"
    );

    let (code, text, err) = approve(&m, &["--yes"]);
    assert_eq!(code, 0, "{err}");
    assert!(!text.contains("credentials"), "{text}");
    assert!(
        err.contains("--bind-credential bot-token=SECRET_REF"),
        "{err}"
    );

    let (code, _, err) = approve(&m, &["--yes", "--bind-credential", "bot-token=Bot abc.def"]);
    assert_eq!(code, 2, "{err}");
    assert!(!err.contains("abc.def"), "{err}");
    let (code, _, err) = approve(&m, &["--yes", "--bind-credential", "nope=x/y"]);
    assert_eq!(code, 2, "{err}");
}
