//! Every denial happens before any socket is opened: for each case below a
//! dedicated loopback listener (the address a buggy runtime would dial) must
//! observe no TCP connection at all.

mod support;
use netgrant_runtime::{HostConfig, OpenOptions, StaticResolver};
use std::sync::Arc;
use std::time::Duration;
use support::*;

struct Case {
    name: String,
    server: EchoServer,
}

/// Opens `url` on a host built from `requested`/`granted` and asserts the
/// deny code. The listener is checked at the end of the test.
#[allow(clippy::too_many_arguments)]
async fn deny(
    cases: &mut Vec<Case>,
    name: &str,
    server: EchoServer,
    authz: Arc<netgrant_policy::Authorizer>,
    resolver: StaticResolver,
    url: &str,
    options: OpenOptions,
    code: &str,
) {
    let cfg = HostConfig {
        connect_timeout: Duration::from_millis(500),
        handshake_timeout: Duration::from_millis(500),
        ..HostConfig::default()
    };
    let h = host(authz, resolver, cfg);
    let err = h
        .open(url, options)
        .await
        .expect_err(&format!("{name}: {url} must be denied"));
    assert_eq!(err.code(), code, "{name}: {url}: {err}");
    assert!(
        err.decision.is_some(),
        "{name}: a denial carries its decision"
    );
    assert_eq!(h.open_connections(), 0, "{name}: a denial holds no slot");
    assert_eq!(h.active_tasks(), 0, "{name}: a denial spawns no task");
    cases.push(Case {
        name: name.to_string(),
        server,
    });
}

fn sub(p: &[&str]) -> OpenOptions {
    OpenOptions {
        subprotocols: p.iter().map(|s| s.to_string()).collect(),
        ..OpenOptions::default()
    }
}

fn hdr(k: &str, v: &str) -> OpenOptions {
    OpenOptions {
        subprotocols: vec![],
        headers: vec![(k.to_string(), v.to_string())],
        ..OpenOptions::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_denial_opens_no_socket() {
    let mut cases = Vec::new();
    let lo = || ip("127.0.0.1");
    let none = OpenOptions::default;

    // --- matching -----------------------------------------------------------
    let s = EchoServer::start().await;
    let p = s.addr.port();
    let a = policy(
        &ws_entry(&format!("ws://localhost:{p}/"), ""),
        &ws_entry(&format!("ws://localhost:{p}/"), ""),
    );
    let r = StaticResolver::new().with("other.test", [lo()]);
    deny(
        &mut cases,
        "not requested (other host)",
        s,
        a,
        r,
        &format!("ws://other.test:{p}/"),
        none(),
        "not_requested",
    )
    .await;

    let s = EchoServer::start().await;
    let p = s.addr.port();
    let a = policy(&ws_entry(&format!("ws://localhost:{p}/"), ""), "");
    deny(
        &mut cases,
        "requested, not granted",
        s,
        a,
        StaticResolver::new(),
        &format!("ws://localhost:{p}/"),
        none(),
        "not_granted",
    )
    .await;

    // Granted but not requested: the grant entry is ignored (fail closed).
    let s = EchoServer::start().await;
    let p = s.addr.port();
    let a = policy(
        &ws_entry("ws://localhost:1/", ""),
        &ws_entry(&format!("ws://localhost:{p}/"), ""),
    );
    deny(
        &mut cases,
        "granted only (ignored entry)",
        s,
        a,
        StaticResolver::new(),
        &format!("ws://localhost:{p}/"),
        none(),
        "not_requested",
    )
    .await;

    let s = EchoServer::start().await;
    let p = s.addr.port();
    let other = if p == 65535 { p - 1 } else { p + 1 };
    let a = allow_ws(&format!("ws://localhost:{other}/"));
    deny(
        &mut cases,
        "wrong port",
        s,
        a,
        StaticResolver::new(),
        &format!("ws://localhost:{p}/"),
        none(),
        "not_requested",
    )
    .await;

    let s = EchoServer::start().await;
    let p = s.addr.port();
    let a = allow_ws(&format!("ws://localhost:{p}/api/"));
    deny(
        &mut cases,
        "wrong path",
        s,
        a,
        StaticResolver::new(),
        &format!("ws://localhost:{p}/other"),
        none(),
        "not_requested",
    )
    .await;

    let s = EchoServer::start().await;
    let p = s.addr.port();
    let a = allow_ws(&format!("ws://localhost:{p}/api/"));
    deny(
        &mut cases,
        "prefix without segment boundary",
        s,
        a,
        StaticResolver::new(),
        &format!("ws://localhost:{p}/api"),
        none(),
        "not_requested",
    )
    .await;

    let s = EchoServer::start().await;
    let p = s.addr.port();
    let a = allow_ws(&format!("ws://localhost:{p}/api/"));
    deny(
        &mut cases,
        "encoded dot-dot escapes the prefix",
        s,
        a,
        StaticResolver::new(),
        &format!("ws://localhost:{p}/api/..%2Fadmin"),
        none(),
        "ambiguous_path",
    )
    .await;

    // --- loopback and names vs IP literals ------------------------------------
    let s = EchoServer::start().await;
    let p = s.addr.port();
    let a = allow_ws(&format!("ws://localhost:{p}/"));
    deny(
        &mut cases,
        "127.0.0.1 literal under a localhost grant",
        s,
        a,
        StaticResolver::new(),
        &format!("ws://127.0.0.1:{p}/"),
        none(),
        "not_requested",
    )
    .await;

    let s = EchoServer::start_on("[::1]:0").await;
    let p = s.addr.port();
    let a = allow_ws(&format!("ws://localhost:{p}/"));
    deny(
        &mut cases,
        "[::1] literal under a localhost grant",
        s,
        a,
        StaticResolver::new(),
        &format!("ws://[::1]:{p}/"),
        none(),
        "not_requested",
    )
    .await;

    let s = EchoServer::start().await;
    let p = s.addr.port();
    let a = allow_ws(&format!("ws://127.0.0.1:{p}/"));
    deny(
        &mut cases,
        "localhost under a 127.0.0.1 grant",
        s,
        a,
        StaticResolver::new(),
        &format!("ws://localhost:{p}/"),
        none(),
        "not_requested",
    )
    .await;

    // A domain allowed as a public host whose answers are loopback, private
    // or mixed (IPv4-mapped forms included): none may be dialed.
    for (name, host, answers, code) in [
        (
            "domain resolving to 127.0.0.1",
            "echo.test",
            &["127.0.0.1"][..],
            "non_public_address",
        ),
        (
            "domain resolving to mapped ::ffff:127.0.0.1",
            "echo.test",
            &["::ffff:127.0.0.1"][..],
            "non_public_address",
        ),
        (
            "domain resolving to ::1",
            "echo.test",
            &["::1"][..],
            "non_public_address",
        ),
        (
            "domain resolving to 10.1.2.3",
            "intranet.test",
            &["10.1.2.3"][..],
            "non_public_address",
        ),
        (
            "domain resolving to mapped ::ffff:192.168.1.10",
            "intranet.test",
            &["::ffff:192.168.1.10"][..],
            "non_public_address",
        ),
        (
            "mixed public + private answers",
            "mixed.test",
            &["93.184.215.14", "10.0.0.1"][..],
            "non_public_address",
        ),
    ] {
        let s = EchoServer::start().await;
        let p = s.addr.port();
        let a = allow_ws(&format!("ws://{host}:{p}/"));
        let r = StaticResolver::new().with(host, answers.iter().map(|a| ip(a)));
        let url = format!("ws://{host}:{p}/");
        deny(&mut cases, name, s, a, r, &url, none(), code).await;
    }

    // The target covers 127.0.0.1 (networks) and public addresses, so a runtime
    // that dialed "the first acceptable answer" would reach the listener.
    let s = EchoServer::start().await;
    let p = s.addr.port();
    let t = ws_entry(
        &format!("ws://mixed.test:{p}/"),
        "networks = [\"127.0.0.1/32\"]",
    );
    let a = policy(&t, &t);
    let r = StaticResolver::new().with("mixed.test", [lo(), ip("93.184.215.14"), ip("10.0.0.1")]);
    deny(
        &mut cases,
        "covered loopback + public + uncovered private",
        s,
        a,
        r,
        &format!("ws://mixed.test:{p}/"),
        none(),
        "non_public_address",
    )
    .await;

    // --- zero answers, never-class answers ----------------------------------------
    let s = EchoServer::start().await;
    let p = s.addr.port();
    let a = allow_ws(&format!("ws://nowhere.test:{p}/"));
    deny(
        &mut cases,
        "zero answers",
        s,
        a,
        StaticResolver::new(),
        &format!("ws://nowhere.test:{p}/"),
        none(),
        "resolution_failed",
    )
    .await;

    // Dialing 0.0.0.0 on Linux reaches a loopback listener.
    let s = EchoServer::start().await;
    let p = s.addr.port();
    let t = ws_entry(
        &format!("ws://never.test:{p}/"),
        "networks = [\"127.0.0.1/32\"]",
    );
    let a = policy(&t, &t);
    let r = StaticResolver::new().with("never.test", [ip("0.0.0.0")]);
    deny(
        &mut cases,
        "answer 0.0.0.0",
        s,
        a,
        r,
        &format!("ws://never.test:{p}/"),
        none(),
        "forbidden_address",
    )
    .await;

    let s = EchoServer::start().await;
    let p = s.addr.port();
    let t = ws_entry(
        &format!("ws://never.test:{p}/"),
        "networks = [\"127.0.0.1/32\"]",
    );
    let a = policy(&t, &t);
    let r = StaticResolver::new().with("never.test", [lo(), ip("169.254.169.254")]);
    deny(
        &mut cases,
        "covered loopback + metadata endpoint",
        s,
        a,
        r,
        &format!("ws://never.test:{p}/"),
        none(),
        "forbidden_address",
    )
    .await;

    let s = EchoServer::start().await;
    let p = s.addr.port();
    let a = allow_ws(&format!("ws://never.test:{p}/"));
    let r = StaticResolver::new().with("never.test", [ip("10.0.0.1"), ip("::ffff:224.0.0.1")]);
    deny(
        &mut cases,
        "forbidden_address wins over non_public_address",
        s,
        a,
        r,
        &format!("ws://never.test:{p}/"),
        none(),
        "forbidden_address",
    )
    .await;

    // Any host on the port (broad, approved): the address class still decides.
    for (name, host, code) in [
        (
            "0.0.0.0 literal under ws://*",
            "0.0.0.0",
            "forbidden_address",
        ),
        (
            "127.0.0.1 literal under ws://*",
            "127.0.0.1",
            "non_public_address",
        ),
        ("localhost under ws://*", "localhost", "non_public_address"),
    ] {
        let s = EchoServer::start().await;
        let p = s.addr.port();
        let a = policy(
            &ws_entry(&format!("ws://*:{p}/"), ""),
            &ws_entry(&format!("ws://*:{p}/"), "broad = true"),
        );
        deny(
            &mut cases,
            name,
            s,
            a,
            StaticResolver::new(),
            &format!("ws://{host}:{p}/"),
            none(),
            code,
        )
        .await;
    }

    // --- options: subprotocols and headers --------------------------------------
    let s = EchoServer::start().await;
    let p = s.addr.port();
    deny(
        &mut cases,
        "undeclared subprotocol",
        s,
        allow_localhost(p),
        StaticResolver::new(),
        &format!("ws://localhost:{p}/"),
        sub(&["xml"]),
        "forbidden_header",
    )
    .await;

    let s = EchoServer::start().await;
    let p = s.addr.port();
    let a = policy(
        &ws_entry(
            &format!("ws://localhost:{p}/"),
            "subprotocols = [\"json\", \"xml\"]",
        ),
        &ws_entry(&format!("ws://localhost:{p}/"), "subprotocols = [\"json\"]"),
    );
    deny(
        &mut cases,
        "requested but ungranted subprotocol",
        s,
        a,
        StaticResolver::new(),
        &format!("ws://localhost:{p}/"),
        sub(&["json", "xml"]),
        "forbidden_header",
    )
    .await;

    for (name, k, v) in [
        ("Authorization header", "Authorization", "Bearer abc"),
        ("Cookie header", "Cookie", "a=b"),
        ("Host header", "Host", "evil.test"),
        ("credential-like header", "X-Api-Key", "k"),
        ("undeclared header", "X-Trace", "1"),
        ("header value with CRLF", "User-Agent", "a\r\nX-Injected: 1"),
        ("header value with NUL", "User-Agent", "a\0b"),
    ] {
        let s = EchoServer::start().await;
        let p = s.addr.port();
        deny(
            &mut cases,
            name,
            s,
            allow_localhost(p),
            StaticResolver::new(),
            &format!("ws://localhost:{p}/"),
            hdr(k, v),
            "forbidden_header",
        )
        .await;
    }
    // On the websocket capability the handshake's own headers are the
    // runtime's alone: forbidden_header (wrong_capability is for `request`).
    for (name, k, v) in [
        (
            "Sec-WebSocket-Protocol header",
            "Sec-WebSocket-Protocol",
            "json",
        ),
        (
            "Sec-WebSocket-Key header",
            "Sec-WebSocket-Key",
            "AAAAAAAAAAAAAAAAAAAAAA==",
        ),
        ("Upgrade header", "Upgrade", "h2c"),
        ("Connection header", "Connection", "close"),
    ] {
        let s = EchoServer::start().await;
        let p = s.addr.port();
        deny(
            &mut cases,
            name,
            s,
            allow_localhost(p),
            StaticResolver::new(),
            &format!("ws://localhost:{p}/"),
            hdr(k, v),
            "forbidden_header",
        )
        .await;
    }

    // --- URL shape ---------------------------------------------------------------
    for (name, url, code) in [
        (
            "http URL through websocket",
            "http://localhost:{p}/",
            "wrong_capability",
        ),
        (
            "userinfo",
            "ws://user:pw@localhost:{p}/",
            "credentials_in_url",
        ),
        (
            "fragment",
            "ws://localhost:{p}/#frag",
            "fragment_not_allowed",
        ),
        ("unparsable", "ws://localhost:{p}:x/", "invalid_url"),
    ] {
        let s = EchoServer::start().await;
        let p = s.addr.port();
        let url = url.replace("{p}", &p.to_string());
        deny(
            &mut cases,
            name,
            s,
            allow_localhost(p),
            StaticResolver::new(),
            &url,
            none(),
            code,
        )
        .await;
    }

    // Positive control: the same setup, allowed, is observed by its listener —
    // so a zero below means "no connection", not "the counter is broken".
    let control = EchoServer::start().await;
    let p = control.addr.port();
    let (h, id) = open_local(p, HostConfig::default()).await;
    assert_eq!(control.accepted(), 1);
    h.close(id).await.unwrap();

    // Absence cannot be awaited: give any stray connection a moment to land.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let touched: Vec<String> = cases
        .iter()
        .filter(|c| c.server.accepted() != 0)
        .map(|c| format!("{} ({} connections)", c.name, c.server.accepted()))
        .collect();
    assert!(
        touched.is_empty(),
        "denied opens reached their listener: {touched:#?}"
    );
    assert!(cases.len() >= 35, "{} cases", cases.len());
}

/// A declared header is allowed and reaches the peer (the undeclared case is
/// denied above, so that deny is about the declaration).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn declared_header_is_sent() {
    let seen = Arc::new(std::sync::Mutex::new(String::new()));
    let s2 = seen.clone();
    let server = RawServer::start(move |mut tcp| {
        let seen = s2.clone();
        async move {
            use tokio::io::AsyncWriteExt;
            let Some(head) = read_request_head(&mut tcp).await else {
                return;
            };
            // Recorded before the 101, so it is there when open() returns.
            *seen.lock().unwrap() = head.clone();
            if tcp.write_all(&switching_protocols(&head)).await.is_ok() {
                drain_until_eof(tcp).await;
            }
        }
    })
    .await;
    let p = server.port();
    let t = ws_entry(&format!("ws://localhost:{p}/"), "headers = [\"X-Trace\"]");
    let h = host(policy(&t, &t), StaticResolver::new(), HostConfig::default());
    let id = h
        .open(&format!("ws://localhost:{p}/"), hdr("X-Trace", "abc123"))
        .await
        .unwrap();
    let head = seen.lock().unwrap().to_ascii_lowercase();
    assert!(head.contains("x-trace: abc123"), "{head}");
    assert!(head.contains(&format!("host: localhost:{p}")), "{head}");
    h.close(id).await.unwrap();
    h.shutdown().await;
}
