//! Credentials through the public API (docs/spec.md §9): declaration and
//! binding compile into the IR, the IR reloads (and refuses tampering), and
//! an allow hands the runtime the bound references it asked for.

use netgrant_policy::{
    compile, load_policy, Authorizer, BoundCredential, Code, CompiledPolicy, CredentialPlacement,
    Grant, Manifest, Request, SecretRef, Target,
};
use std::net::IpAddr;

const MANIFEST: &str = r#"
[plugin]
name = "discord-bridge"
version = "0.3.1"

[[host_api.request]]
url = "https://discord.com/api/v10/"
methods = ["GET", "POST"]
credentials = [
  { name = "bot-token", header = "Authorization", format = "Bot {secret}", reason = "Call the API as the bot" },
  { name = "webhook-key", header = "X-Webhook-Key" },
]

[[host_api.websocket]]
url = "wss://gateway.discord.gg/"
credentials = [{ name = "bot-token", message = true, reason = "IDENTIFY with the bot token" }]
"#;

const GRANT: &str = r#"
plugin = "discord-bridge"

[[host_api.request]]
url = "https://discord.com/api/v10/"
credentials = { bot-token = "discord/bot" }

[[host_api.websocket]]
url = "wss://gateway.discord.gg/"
credentials = { bot-token = "discord/bot" }
"#;

fn manifest(text: &str) -> Manifest {
    let p = Manifest::parse("plugin.toml", text);
    p.value
        .unwrap_or_else(|| panic!("manifest: {:#?}", p.diagnostics))
}

fn grant(text: &str) -> Grant {
    let p = Grant::parse("grant.toml", text);
    p.value
        .unwrap_or_else(|| panic!("grant: {:#?}", p.diagnostics))
}

fn policy(m: &str, g: &str) -> CompiledPolicy {
    let c = compile(&manifest(m), Some(&grant(g)));
    c.policy
        .unwrap_or_else(|| panic!("compile: {:#?}", c.diagnostics))
}

fn public() -> Vec<IpAddr> {
    vec!["162.159.135.232".parse().unwrap()]
}

fn names(v: &[String]) -> &[String] {
    v
}

#[test]
fn an_allow_hands_over_the_requested_bound_credentials() {
    let p = policy(MANIFEST, GRANT);
    let authz = Authorizer::new(&p);
    let asked = vec!["bot-token".to_string()];
    let req = Request::http("POST", "https://discord.com/api/v10/channels/1/messages")
        .with_credentials(names(&asked));
    let ok = authz
        .prepare(&req)
        .unwrap()
        .authorize_addresses(&public())
        .unwrap();
    assert_eq!(
        ok.credentials(),
        &[BoundCredential {
            name: "bot-token".into(),
            placement: CredentialPlacement::Header("authorization".into()),
            format: "Bot {secret}".into(),
            secret_ref: SecretRef::parse("discord/bot").unwrap(),
        }]
    );
    // Nothing asked, nothing handed over, even though the rule binds one.
    let ok = authz
        .prepare(&Request::http(
            "GET",
            "https://discord.com/api/v10/users/@me",
        ))
        .unwrap()
        .authorize_addresses(&public())
        .unwrap();
    assert!(ok.credentials().is_empty());
    // The websocket's message placement.
    let ws = Request::websocket("wss://gateway.discord.gg/?v=10").with_credentials(&asked);
    let ok = authz
        .prepare(&ws)
        .unwrap()
        .authorize_addresses(&public())
        .unwrap();
    assert_eq!(ok.credentials().len(), 1);
    assert_eq!(ok.credentials()[0].placement, CredentialPlacement::Message);
    assert_eq!(ok.credentials()[0].format, "{secret}");
}

#[test]
fn unbound_and_undeclared_credentials_are_denied_before_addresses() {
    let p = policy(MANIFEST, GRANT);
    let authz = Authorizer::new(&p);
    for asked in [
        vec!["webhook-key".to_string()],
        vec!["bot-token".to_string(), "other".to_string()],
        vec!["\u{1b}[31m".to_string()],
    ] {
        let req =
            Request::http("GET", "https://discord.com/api/v10/users/@me").with_credentials(&asked);
        // `prepare` needs no answers: no socket can follow a denial here.
        let d = authz.prepare(&req).unwrap_err();
        assert_eq!(d.code, "credential_not_granted", "{asked:?}");
        assert_eq!(d.rule(), Some("request:https://discord.com/api/v10/"));
        assert!(!d.message().contains('\u{1b}'), "{}", d.message());
    }
}

#[test]
fn the_ir_carries_credentials_and_reloads() {
    let p = policy(MANIFEST, GRANT);
    let json = p.to_json();
    assert!(json.contains("\"secret_ref\": \"discord/bot\""), "{json}");
    assert!(json.contains("\"header\": \"authorization\""), "{json}");
    let loaded = load_policy("ir.json", &json).unwrap();
    assert_eq!(loaded, p);
    assert_eq!(loaded.entries()[0].credentials, p.entries()[0].credentials);
    // The typed entry: one granted, one declared but not granted.
    let e = &p.entries()[0];
    let granted: Vec<bool> = e.credentials.iter().map(|c| c.is_granted()).collect();
    assert_eq!(granted, [true, false]);
}

#[test]
fn digests_cover_credentials() {
    let p = policy(MANIFEST, GRANT);
    // Another SecretRef: the policy changes, the requested set does not.
    let q = policy(MANIFEST, &GRANT.replace("discord/bot", "discord/other"));
    assert_ne!(p.digest, q.digest);
    assert_eq!(p.requested_digest, q.requested_digest);
    // No binding at all: the policy changes too.
    let unbound = policy(
        MANIFEST,
        "plugin = \"discord-bridge\"\n[[host_api.request]]\nurl = \"https://discord.com/api/v10/\"\n",
    );
    assert_ne!(p.digest, unbound.digest);
    assert_eq!(p.requested_digest, unbound.requested_digest);
    // Another format, header or placement: the requested set changes.
    for (from, to) in [
        ("Bot {secret}", "Bearer {secret}"),
        ("X-Webhook-Key", "X-Hook-Key"),
    ] {
        let r = policy(&MANIFEST.replace(from, to), GRANT);
        assert_ne!(p.requested_digest, r.requested_digest, "{to}");
    }
    // A reason is not part of what a grant approves (decision 13).
    let r = policy(&MANIFEST.replace("Call the API", "Talk to the API"), GRANT);
    assert_eq!(p.requested_digest, r.requested_digest);
    assert_ne!(p.digest, r.digest);
}

/// Edits the IR (as a hand edit of the JSON would) and loads it.
fn load_edited(p: &CompiledPolicy, edit: impl FnOnce(&mut netgrant_policy::Policy)) -> Vec<Code> {
    let mut ir = p.ir().clone();
    edit(&mut ir);
    match load_policy("ir.json", &ir.to_json()) {
        Ok(_) => Vec::new(),
        Err(ds) => ds.iter().map(|d| d.code).collect(),
    }
}

#[test]
fn tampered_credentials_are_refused() {
    use netgrant_policy::ir::{Credential, Status};
    let p = policy(MANIFEST, GRANT);
    // entries[0] is the request entry: bot-token granted, webhook-key not.
    assert_eq!(p.entries[0].credentials[1].name, "webhook-key");
    type Edit = Box<dyn FnOnce(&mut netgrant_policy::Policy)>;
    let webhook = |f: fn(&mut Credential)| -> Edit {
        Box::new(move |ir| f(&mut ir.entries[0].credentials[1]))
    };
    let edits: Vec<(&str, Edit)> = vec![
        (
            "a declared credential hand-bound",
            webhook(|c| {
                c.status = Status::Granted;
                c.secret_ref = Some("stolen/key".into());
            }),
        ),
        (
            "a ref without the status",
            webhook(|c| c.secret_ref = Some("x".into())),
        ),
        (
            "the status without a ref",
            webhook(|c| c.status = Status::Granted),
        ),
        (
            "an undeclared credential with a binding",
            Box::new(|ir| {
                let mut c = ir.entries[0].credentials[0].clone();
                c.name = "zz-new".into();
                ir.entries[0].credentials.push(c);
            }),
        ),
        (
            "a header moved",
            Box::new(|ir| ir.entries[0].credentials[0].header = Some("x-other".into())),
        ),
        (
            "a format changed",
            Box::new(|ir| ir.entries[0].credentials[0].format = "{secret}".into()),
        ),
        (
            "a SecretRef swapped",
            Box::new(|ir| ir.entries[0].credentials[0].secret_ref = Some("other/bot".into())),
        ),
        (
            "a credential dropped",
            Box::new(|ir| {
                ir.entries[0].credentials.pop();
            }),
        ),
        (
            "order changed",
            Box::new(|ir| ir.entries[0].credentials.reverse()),
        ),
        (
            "a message placement on a request",
            Box::new(|ir| {
                let c = &mut ir.entries[0].credentials[1];
                c.placement = netgrant_policy::ir::Placement::Message;
                c.header = None;
            }),
        ),
    ];
    for (what, edit) in edits {
        let codes = load_edited(&p, edit);
        assert_eq!(codes, [Code::IrTampered], "{what}");
    }
    // Even with both digests recomputed, an inconsistent binding is refused
    // (only a consistent edit of declaration and binding together would
    // load: the digests detect change, not forgery, docs/spec.md §4.3).
    let codes = load_edited(&p, |ir| {
        ir.entries[0].credentials[1].status = Status::Granted;
        ir.digest = ir.compute_digest();
    });
    assert_eq!(codes, [Code::IrTampered]);
}

#[test]
fn a_binding_never_reaches_wider_than_its_declaration() {
    let m = r#"
[plugin]
name = "wide"
version = "1.0.0"

[[host_api.request]]
url = "https://api.example.com/"
methods = ["GET"]

[[host_api.request]]
url = "https://api.example.com/v1/"
methods = ["GET"]
credentials = [{ name = "api-key", header = "X-Api-Key" }]
"#;
    // The grant binds the key on the wider target: its parent is the wider
    // request, which declares nothing, so the entry is dropped.
    let g = r#"
plugin = "wide"
[[host_api.request]]
url = "https://api.example.com/"
credentials = { api-key = "example/key" }
"#;
    let c = compile(&manifest(m), Some(&grant(g)));
    let codes: Vec<Code> = c.diagnostics.iter().map(|d| d.code).collect();
    assert_eq!(codes, [Code::CredentialNotDeclared]);
    let p = c.policy.unwrap();
    assert_eq!(p.ignored.len(), 1);
    assert_eq!(
        p.ignored[0].code,
        netgrant_policy::ir::IgnoredCode::CredentialNotDeclared
    );
    assert!(p.granted().next().is_none());
    let authz = Authorizer::new(&p);
    let asked = vec!["api-key".to_string()];
    for url in ["https://api.example.com/", "https://api.example.com/v1/x"] {
        let d = authz.authorize(&Request::http("GET", url).with_credentials(&asked), None);
        assert_eq!(d.code, "not_granted", "{url}");
    }
    // The IR of a dropped binding reloads.
    load_policy("ir.json", &p.to_json()).unwrap();

    // Granted on the declaring target, the binding covers that target only.
    let g = r#"
plugin = "wide"
[[host_api.request]]
url = "https://api.example.com/"
[[host_api.request]]
url = "https://api.example.com/v1/"
credentials = { api-key = "example/key" }
"#;
    let p = policy(m, g);
    let authz = Authorizer::new(&p);
    let inside = authz.authorize(
        &Request::http("GET", "https://api.example.com/v1/x").with_credentials(&asked),
        None,
    );
    assert!(inside.is_allowed(), "{inside:?}");
    let outside = authz.authorize(
        &Request::http("GET", "https://api.example.com/v2/x").with_credentials(&asked),
        None,
    );
    assert_eq!(outside.code, "credential_not_granted");
}

#[test]
fn a_credential_on_a_target_that_cannot_carry_one_is_refused_at_compile_too() {
    // The walker refuses these in a manifest; a requested set built another
    // way (an IR, a caller) meets the same check in the compiler.
    for (url, code) in [
        ("https://*/", Code::CredentialBroadTarget),
        ("http://api.example.com/", Code::CredentialPlaintextTarget),
        ("https://api.example.com:*/", Code::CredentialAnyPortTarget),
    ] {
        let mut m = manifest(
            r#"
[plugin]
name = "p"
version = "1.0.0"
[[host_api.request]]
url = "https://api.example.com/"
methods = ["GET"]
credentials = [{ name = "api-key", header = "X-Api-Key" }]
"#,
        );
        m.requested[0].permission.target = Target::parse(url).unwrap();
        let g = grant(&format!(
            "plugin = \"p\"\n[[host_api.request]]\nurl = \"{url}\"\nbroad = true\ncredentials = {{ api-key = \"k\" }}\n"
        ));
        let c = compile(&m, Some(&g));
        assert!(c.policy.is_none(), "{url}");
        let codes: Vec<Code> = c.diagnostics.iter().map(|d| d.code).collect();
        assert!(codes.contains(&code), "{url}: {codes:?}");
    }
}

#[test]
fn policies_without_credentials_keep_their_shape() {
    let p = policy(
        "[plugin]\nname = \"p\"\nversion = \"1.0.0\"\n[[host_api.websocket]]\nurl = \"wss://x.example/\"\n",
        "plugin = \"p\"\n[[host_api.websocket]]\nurl = \"wss://x.example/\"\n",
    );
    assert!(!p.to_json().contains("credentials"));
}
