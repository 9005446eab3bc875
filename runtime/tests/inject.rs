//! Credentials carried by both hosts (docs/spec.md §9.3), against real
//! peers on loopback that record what they receive and echo it back: the
//! peer gets the value; the plugin side only ever sees the placeholder; a
//! sentinel value is searched for in every return value, error, `Debug`
//! string, audit record and `tracing` line.

#![allow(clippy::result_large_err)]

mod support;
use netgrant_runtime::secrecy::SecretString;
use netgrant_runtime::{
    ErrorKind, HostConfig, Incoming, MemorySecretStore, OpenOptions, RequestConfig, RequestHost,
    RequestOptions, SecretRef, StaticResolver, WebSocketHost,
};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use support::http::*;
use support::sentinel::Sentinel;
use support::*;
use tokio::io::AsyncWriteExt;

const S: Sentinel = Sentinel::DEFAULT;

fn store(value: &str) -> Arc<MemorySecretStore> {
    Arc::new(MemorySecretStore::new().with(
        SecretRef::parse("test/token").unwrap(),
        SecretString::from(value.to_owned()),
    ))
}

/// A request target on loopback declaring `token` in `Authorization` as
/// `Bearer {secret}`; the grant binds it when `bind`.
fn request_policy(p: u16, bind: bool) -> Arc<netgrant_policy::Authorizer> {
    let url = format!("http://127.0.0.1:{p}/v1/");
    let decl = "credentials = [{ name = \"token\", header = \"Authorization\", format = \"Bearer {secret}\" }]";
    let base = "methods = [\"GET\", \"POST\"]\nnetworks = [\"127.0.0.1/32\"]";
    let requested = req_entry(&url, &format!("{base}\n{decl}"));
    let granted = if bind {
        req_entry(
            &url,
            &format!("{base}\ncredentials = {{ token = \"test/token\" }}"),
        )
    } else {
        req_entry(&url, base)
    };
    policy(&requested, &granted)
}

/// A request host for [`request_policy`] whose store holds the sentinel.
fn token_host(p: u16, bind: bool) -> RequestHost {
    RequestHost::new(
        request_policy(p, bind),
        Arc::new(StaticResolver::new()),
        RequestConfig::default(),
    )
    .unwrap()
    .with_secrets(store(S.value()))
}

fn with_token() -> RequestOptions {
    RequestOptions {
        credentials: vec!["token".into()],
        ..RequestOptions::default()
    }
}

fn header_of(s: &Seen, name: &str) -> Option<String> {
    s.headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.clone())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_carries_the_value_and_the_plugin_sees_only_the_placeholder() {
    // The server echoes the header it got in a header and in the body.
    let server = http_server(|s| {
        let auth = header_of(s, "authorization").unwrap_or_default();
        hyper::Response::builder()
            .header("x-echo", auth.clone())
            .body(http_body_util::Full::new(format!("you sent {auth}").into()))
            .unwrap()
    })
    .await;
    let p = server.port();
    let sink = Arc::new(Collect::default());
    let host = token_host(p, true).with_audit(sink.clone());
    let url = format!("http://127.0.0.1:{p}/v1/me");
    let r = bounded(
        "get",
        host.request("GET", &url, &[], Vec::new(), with_token()),
    )
    .await
    .unwrap();
    // The peer received the value, formatted.
    let seen = server.seen();
    assert_eq!(
        header_of(&seen[0], "authorization").as_deref(),
        Some(format!("Bearer {}", S.value()).as_str())
    );
    // The plugin reads only the placeholder, in the body and the headers.
    assert_eq!(r.body, b"you sent Bearer {{credential:token}}");
    assert_eq!(
        r.header("x-echo"),
        Some(b"Bearer {{credential:token}}".as_slice())
    );
    S.assert_not_in_debug("the response", &r);
    assert!(!S.found_in(&r.body));
    // The audit records name the credential, never its value or ref.
    let text = sink.text();
    assert!(!S.found_in(text.as_bytes()));
    assert!(text.contains(r#""credentials":["token"]"#), "{text}");
    assert!(!text.contains("test/token"), "{text}");
    // Without asking for it, nothing is injected.
    let r = get(&host, &url).await.unwrap();
    assert_eq!(r.body, b"you sent ");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_credential_the_rule_does_not_bind_is_denied_before_any_connection() {
    let server = http_server(|_| ok("x")).await;
    let p = server.port();
    let url = format!("http://127.0.0.1:{p}/v1/me");
    // Declared but not bound by the grant; and a name nobody declared.
    let host = token_host(p, false);
    for name in ["token", "other"] {
        let e = bounded(
            name,
            host.request(
                "GET",
                &url,
                &[],
                Vec::new(),
                RequestOptions {
                    credentials: vec![name.into()],
                    ..RequestOptions::default()
                },
            ),
        )
        .await
        .unwrap_err();
        assert_eq!(e.code(), "credential_not_granted", "{name}: {e}");
        S.assert_not_in_error("the denial", &e);
    }
    assert_eq!(server.accepted(), 0, "a denial opened a connection");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_store_secret_or_unsafe_value_fails_before_any_connection() {
    let server = http_server(|_| ok("x")).await;
    let p = server.port();
    let url = format!("http://127.0.0.1:{p}/v1/me");
    let host = |store: Option<Arc<MemorySecretStore>>| {
        let h = RequestHost::new(
            request_policy(p, true),
            Arc::new(StaticResolver::new()),
            RequestConfig::default(),
        )
        .unwrap();
        match store {
            Some(s) => h.with_secrets(s),
            None => h,
        }
    };
    let cases: Vec<(&str, Option<Arc<MemorySecretStore>>, &str)> = vec![
        ("no store", None, "secret_store_failed"),
        (
            "not in the store",
            Some(Arc::new(MemorySecretStore::new())),
            "secret_not_found",
        ),
        (
            "a line break in the value",
            Some(store(&format!("{}\r\nX-Evil: 1", S.value()))),
            "credential_not_header_safe",
        ),
    ];
    for (what, s, code) in cases {
        let h = host(s);
        let e = bounded(what, h.request("GET", &url, &[], Vec::new(), with_token()))
            .await
            .unwrap_err();
        assert_eq!(e.code(), code, "{what}: {e}");
        assert!(matches!(e.kind, ErrorKind::Credential(_)), "{what}");
        S.assert_not_in_error(what, &e);
        S.assert_not_in_debug(what, &e);
    }
    assert_eq!(server.accepted(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redirect_after_an_authenticated_request_is_not_followed_and_is_masked() {
    let server = http_server(|s| {
        let auth = header_of(s, "authorization").unwrap_or_default();
        // A hostile answer: send the credential elsewhere, in the URL.
        hyper::Response::builder()
            .status(302)
            .header(
                "location",
                format!("http://10.0.0.1/steal?c={}", auth.replace(' ', "+")),
            )
            .body(http_body_util::Full::new(Default::default()))
            .unwrap()
    })
    .await;
    let p = server.port();
    let host = token_host(p, true);
    let url = format!("http://127.0.0.1:{p}/v1/me");
    let r = bounded(
        "get",
        host.request("GET", &url, &[], Vec::new(), with_token()),
    )
    .await
    .unwrap();
    assert_eq!(r.status, 302);
    let loc = String::from_utf8(r.header("location").unwrap().to_vec()).unwrap();
    assert_eq!(loc, "http://10.0.0.1/steal?c=Bearer+{{credential:token}}");
    assert_eq!(server.seen().len(), 1, "the redirect was followed");
}

// ---------------------------------------------------------------------------
// WebSockets
// ---------------------------------------------------------------------------

/// A loopback websocket target with a handshake header credential and a
/// message credential formatted `Bot {secret}`, both bound to `test/token`.
fn ws_policy(p: u16) -> Arc<netgrant_policy::Authorizer> {
    let url = format!("ws://127.0.0.1:{p}/");
    let base = "networks = [\"127.0.0.1/32\"]";
    let requested = ws_entry(
        &url,
        &format!(
            "{base}\ncredentials = [{{ name = \"hs\", header = \"X-Gateway-Auth\" }}, {{ name = \"gw\", message = true, format = \"Bot {{secret}}\" }}]"
        ),
    );
    let granted = ws_entry(
        &url,
        &format!("{base}\ncredentials = {{ hs = \"test/token\", gw = \"test/token\" }}"),
    );
    policy(&requested, &granted)
}

fn ws_host(p: u16) -> WebSocketHost {
    host(ws_policy(p), StaticResolver::new(), HostConfig::default()).with_secrets(store(S.value()))
}

fn creds(names: &[&str]) -> OpenOptions {
    OpenOptions {
        credentials: names.iter().map(|n| n.to_string()).collect(),
        ..OpenOptions::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_websocket_carries_values_in_the_handshake_and_messages_and_masks_every_echo() {
    let (heard_tx, mut heard) = tokio::sync::mpsc::unbounded_channel::<String>();
    let heard_tx = Arc::new(heard_tx);
    // A raw peer: records the handshake and the first text message, then
    // echoes it back split over three fragments (the value cut across
    // frames), and closes with the value in its close reason.
    let server = RawServer::start(move |mut tcp| {
        let heard_tx = heard_tx.clone();
        async move {
            let Some(head) = accept_raw(&mut tcp).await else {
                return;
            };
            let _ = heard_tx.send(head);
            let Some((_, _, text)) = read_client_frame(&mut tcp).await else {
                return;
            };
            let _ = heard_tx.send(String::from_utf8_lossy(&text).into_owned());
            let (a, rest) = text.split_at(text.len() / 3);
            let (b, c) = rest.split_at(rest.len() / 2);
            let mut out = frame(false, TEXT, a);
            out.extend(frame(false, CONT, b));
            out.extend(frame(true, CONT, c));
            let mut reason = b"bye ".to_vec();
            reason.extend_from_slice(&text[text.len() - S.value().len()..]);
            out.extend(frame(true, CLOSE, &close_payload(4000, &reason)));
            let _ = tcp.write_all(&out).await;
            let _ = read_close_code(&mut tcp).await;
        }
    })
    .await;
    let p = server.port();
    let h = ws_host(p);
    let id = bounded(
        "open",
        h.open(&format!("ws://127.0.0.1:{p}/"), creds(&["hs", "gw"])),
    )
    .await
    .unwrap();
    let head = heard.recv().await.unwrap();
    assert!(
        head.to_ascii_lowercase()
            .contains(&format!("x-gateway-auth: {}", S.value()).to_ascii_lowercase()),
        "{head}"
    );
    bounded(
        "send",
        h.send_text(id, "IDENTIFY {{credential:gw}}".to_string()),
    )
    .await
    .unwrap();
    assert_eq!(
        heard.recv().await.unwrap(),
        format!("IDENTIFY Bot {}", S.value()),
        "the peer gets the value as the declaration's format places it"
    );
    let m = bounded("recv", h.recv(id, None)).await.unwrap();
    assert_eq!(m, Incoming::Text("IDENTIFY Bot {{credential:gw}}".into()));
    let closed = bounded("recv close", h.recv(id, None)).await.unwrap();
    match &closed {
        Incoming::Closed { code, reason } => {
            assert_eq!(*code, 4000);
            assert_eq!(reason, "bye {{credential:gw}}");
        }
        other => panic!("{other:?}"),
    }
    let status = h.status(id).unwrap();
    S.assert_not_in_debug("the status", &status);
    h.shutdown().await;
    assert!(wait_until(OUTER, || server.finished.load(Ordering::SeqCst) == 1).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_placeholder_not_bound_to_the_connection_fails_the_send_and_sends_nothing() {
    let server = ws_server(|mut ws| async move {
        use futures_util::StreamExt;
        // Records nothing: any message reaching it fails the test below.
        if let Some(Ok(m)) = ws.next().await {
            panic!("the peer received {m:?}");
        }
    })
    .await;
    let p = server.port();
    let h = ws_host(p);
    // Opened without asking for `gw`: its placeholder is not bound here.
    let id = bounded(
        "open",
        h.open(&format!("ws://127.0.0.1:{p}/"), creds(&["hs"])),
    )
    .await
    .unwrap();
    for text in [
        "IDENTIFY {{credential:gw}}",
        "IDENTIFY {{credential:nope}}",
        "IDENTIFY {{credential:",
    ] {
        let e = bounded("send", h.send_text(id, text.to_string()))
            .await
            .unwrap_err();
        assert!(
            ["credential_not_granted", "malformed_placeholder"].contains(&e.code()),
            "{text}: {e}"
        );
    }
    // The connection is still open, and nothing was sent.
    assert_eq!(h.status(id).unwrap().messages_out, 0);
    h.close(id).await.unwrap();
    let _ = Duration::ZERO;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_websocket_credential_not_bound_is_denied_before_any_connection() {
    let server = ws_server(|_| async {}).await;
    let p = server.port();
    let h = ws_host(p);
    let e = bounded(
        "open",
        h.open(&format!("ws://127.0.0.1:{p}/"), creds(&["other"])),
    )
    .await
    .unwrap_err();
    assert_eq!(e.code(), "credential_not_granted");
    assert_eq!(server.accepted(), 0);
}

/// Every `tracing` event both hosts emit while injecting, masking, failing
/// and denying is free of the value (captured on this thread: a
/// current-thread runtime drives everything inside the capture).
#[test]
fn no_tracing_event_carries_a_value() {
    let scenario = || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(async {
                let server = http_server(|s| {
                    let auth = header_of(s, "authorization").unwrap_or_default();
                    hyper::Response::builder()
                        .status(302)
                        .header("location", format!("http://10.0.0.1/?{auth}"))
                        .body(http_body_util::Full::new(auth.into()))
                        .unwrap()
                })
                .await;
                let p = server.port();
                let host = token_host(p, true);
                let url = format!("http://127.0.0.1:{p}/v1/me");
                let r = host
                    .request("GET", &url, &[], Vec::new(), with_token())
                    .await
                    .unwrap();
                assert_eq!(r.status, 302);
                // A denial and a failure are traced too.
                let other = RequestOptions {
                    credentials: vec!["other".into()],
                    ..RequestOptions::default()
                };
                let e = host
                    .request("GET", &url, &[], Vec::new(), other)
                    .await
                    .unwrap_err();
                assert_eq!(e.code(), "credential_not_granted");
                host.shutdown().await;

                let ws = RawServer::start(|mut tcp| async move {
                    if accept_raw(&mut tcp).await.is_some() {
                        if let Some((_, _, text)) = read_client_frame(&mut tcp).await {
                            let _ = tcp.write_all(&frame(true, TEXT, &text)).await;
                            let _ = tcp
                                .write_all(&frame(true, CLOSE, &close_payload(4001, &text)))
                                .await;
                        }
                        let _ = read_close_code(&mut tcp).await;
                    }
                })
                .await;
                let p = ws.port();
                let h = ws_host(p);
                let id = h
                    .open(&format!("ws://127.0.0.1:{p}/"), creds(&["hs", "gw"]))
                    .await
                    .unwrap();
                h.send_text(id, "{{credential:gw}}".to_string())
                    .await
                    .unwrap();
                let m = h.recv(id, None).await.unwrap();
                // The value went out formatted (`Bot {secret}`); it comes
                // back masked.
                assert_eq!(m, Incoming::Text("Bot {{credential:gw}}".into()));
                let _ = h.recv(id, None).await.unwrap();
                h.shutdown().await;
            })
    };
    // Once uncaptured first, so every callsite is registered before the
    // capture's subscriber exists: registering the subscriber then
    // re-reads every callsite's interest. A callsite first registered by
    // another test's thread while the subscriber was being installed could
    // keep a stale "no one listens" and lose its events (a CI run lost the
    // `denied` event that way).
    scenario();
    let ((), text) = S.assert_not_in_tracing(scenario);
    // The capture saw the runtime's events (so the search was not vacuous).
    assert!(text.contains("netgrant"), "{text}");
    assert!(
        text.contains("allowed") && text.contains("denied"),
        "{text}"
    );
}
