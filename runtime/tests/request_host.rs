//! `RequestHost` against real servers on loopback: a hyper server in the
//! test (plain, and TLS with HTTP/2 by ALPN under a local CA), scripted raw
//! TCP peers for the faults, and a Python `http.server` for interop.
//!
//! Every test bounds its waits (`OUTER`), so a hang fails instead of
//! stalling; deadlines are asserted from below and above.

#![allow(clippy::result_large_err)]

mod support;
use netgrant_runtime::{
    HostError, RequestConfig, RequestHost, RequestOptions, ResolveFuture, Resolver, StaticResolver,
};
use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use support::http::*;
use support::*;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

fn h(k: &str, v: &str) -> (String, String) {
    (k.to_string(), v.to_string())
}

/// A short deadline for the timed faults.
const BOUND: Duration = Duration::from_millis(400);

/// Reads the request head, then runs `then` on the socket.
async fn after_head<F, Fut>(then: F) -> RawServer
where
    F: Fn(TcpStream) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let then = Arc::new(then);
    let heads = Arc::new(AtomicUsize::new(0));
    let counted = heads.clone();
    let mut server = RawServer::start(move |mut tcp| {
        let (then, counted) = (then.clone(), counted.clone());
        async move {
            if read_request_head(&mut tcp).await.is_some() {
                counted.fetch_add(1, Ordering::SeqCst);
                then(tcp).await;
            }
        }
    })
    .await;
    // `reached()` counts request heads read: by then the call has handed
    // its connection to the driver task. An accept alone does not say so:
    // a call may still own its socket mid-connect (docs/runtime.md).
    server.reached = heads;
    server
}

// ---------------------------------------------------------------------------
// The happy path
// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_goes_to_the_checked_address_with_host_from_the_url_and_filtered_headers() {
    let server = http_server(|_| {
        hyper::Response::builder()
            .header("content-type", "text/plain")
            .header("set-cookie", "session=s3cret")
            .header("connection", "x-hop")
            .header("x-hop", "1")
            .header("x-kept", "yes")
            .body(http_body_util::Full::new("hello".into()))
            .unwrap()
    })
    .await;
    let p = server.port();
    let host = request_host(
        allow_request(&format!("http://api.test:{p}/v1/"), ""),
        api_test(),
        RequestConfig::default(),
    );
    // Uppercase and a trailing dot normalize; the fragment is never sent.
    let url = format!("http://API.Test.:{p}/v1/items?page=2#frag");
    let r = bounded(
        "get",
        host.request(
            "GET",
            &url,
            &[h("X-Trace", "t1"), h("Accept", "text/plain")],
            Vec::new(),
            RequestOptions::default(),
        ),
    )
    .await
    .unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(r.reason(), Some("OK"));
    assert_eq!(r.body, b"hello");
    assert_eq!(r.version, "HTTP/1.1");
    assert_eq!(r.remote, SocketAddr::from(([127, 0, 0, 1], p)));
    let names: Vec<&str> = r.headers.iter().map(|(k, _)| k.as_str()).collect();
    assert!(names.contains(&"content-type") && names.contains(&"x-kept"));
    assert_eq!(r.header("X-Kept"), Some(b"yes".as_slice()));
    for dropped in ["set-cookie", "connection", "x-hop"] {
        assert!(!names.contains(&dropped), "{dropped} reached the plugin");
    }
    // Debug never shows header values or the body.
    let dbg = format!("{r:?}");
    assert!(!dbg.contains("hello") && !dbg.contains("yes"), "{dbg}");

    let seen = server.seen();
    assert_eq!(seen.len(), 1);
    let s = &seen[0];
    assert_eq!(
        (s.method.as_str(), s.target.as_str()),
        ("GET", "/v1/items?page=2")
    );
    assert_eq!(s.host, format!("api.test:{p}"));
    let sent: Vec<&str> = s.headers.iter().map(|(k, _)| k.as_str()).collect();
    assert!(sent.contains(&"x-trace") && sent.contains(&"accept"));
    assert!(
        !sent.contains(&"accept-encoding") && !sent.contains(&"cookie"),
        "the host adds no encoding or cookie header: {sent:?}"
    );
    assert_eq!(host.in_flight(), 0);
    // The connection is kept for reuse until the host shuts down
    // (tests/request_pool.rs), then the server sees it end.
    assert_eq!(host.idle_connections(), 1);
    assert_eq!(server.closed.load(Ordering::SeqCst), 0);
    host.shutdown().await;
    assert_eq!(host.idle_connections(), 0);
    assert!(wait_until(OUTER, || server.closed.load(Ordering::SeqCst) == 1).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn post_sends_the_whole_body_with_a_content_length_set_by_the_host() {
    let server = http_server(|s| ok(format!("got {} bytes", s.body.len()))).await;
    let p = server.port();
    let host = request_host(
        allow_request(&format!("http://api.test:{p}/v1/"), ""),
        api_test(),
        RequestConfig::default(),
    );
    let body: Vec<u8> = (0..=255u8).cycle().take(300_000).collect();
    let r = bounded(
        "post",
        host.request(
            "POST",
            &format!("http://api.test:{p}/v1/upload"),
            &[h("Content-Type", "application/octet-stream")],
            body.clone(),
            RequestOptions::default(),
        ),
    )
    .await
    .unwrap();
    assert_eq!(r.body, b"got 300000 bytes");
    let s = &server.seen()[0];
    assert_eq!(s.body, body);
    assert!(s
        .headers
        .iter()
        .any(|(k, v)| k == "content-length" && v == "300000"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redirect_is_returned_as_it_is_and_never_followed() {
    // The redirect target listens on another loopback address, so any
    // attempt to follow it would show up as an accepted connection.
    let elsewhere = http_server_on("127.0.0.2:0", |_| ok("followed")).await;
    let target = format!("http://127.0.0.2:{}/admin", elsewhere.port());
    let t2 = target.clone();
    let server = http_server(move |_| {
        hyper::Response::builder()
            .status(302)
            .header("location", t2.as_str())
            .body(http_body_util::Full::new("moved".into()))
            .unwrap()
    })
    .await;
    let p = server.port();
    let host = request_host(
        allow_request(&format!("http://api.test:{p}/v1/"), ""),
        api_test(),
        RequestConfig::default(),
    );
    let r = get(&host, &format!("http://api.test:{p}/v1/x"))
        .await
        .unwrap();
    assert_eq!(r.status, 302);
    assert_eq!(r.header("location"), Some(target.as_bytes()));
    assert_eq!(r.body, b"moved");
    // The redirect target is not even allowed; a client that followed
    // would have connected before finding out.
    let e = get(&host, &target).await.unwrap_err();
    assert_eq!(e.code(), "not_requested");
    assert_eq!(elsewhere.accepted(), 0, "the redirect was followed");
    assert_eq!(server.accepted(), 1);
}

// ---------------------------------------------------------------------------
// Denials open nothing
// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dns_answers_mixing_public_and_private_are_denied_before_any_connection() {
    let server = http_server(|_| ok("should not be reached")).await;
    let p = server.port();
    // No `networks`: loopback is not covered for a domain target.
    let t = req_entry(&format!("http://api.test:{p}/v1/"), "methods = [\"GET\"]");
    let authz = policy(&t, &t);
    for answers in [
        vec![ip("93.184.215.14"), ip("127.0.0.1")],
        vec![ip("127.0.0.1"), ip("93.184.215.14")],
        vec![ip("93.184.215.14"), ip("::ffff:127.0.0.1")],
    ] {
        let host = request_host(
            authz.clone(),
            StaticResolver::new().with("api.test", answers.clone()),
            RequestConfig::default(),
        );
        let e = get(&host, &format!("http://api.test:{p}/v1/x"))
            .await
            .unwrap_err();
        assert_eq!(e.code(), "non_public_address", "{answers:?}: {e}");
        assert!(e.decision.is_some());
    }
    assert_eq!(server.accepted(), 0, "a denied request opened a connection");
}

/// (expected code, method, URL, headers).
type Case = (&'static str, &'static str, String, Vec<(String, String)>);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_deny_opens_no_tcp_connection() {
    let server = http_server(|_| ok("should not be reached")).await;
    let p = server.port();
    let host = request_host(
        allow_request(&format!("http://api.test:{p}/v1/"), ""),
        api_test(),
        RequestConfig::default(),
    );
    // The same policy, but the name resolves to nothing.
    let unresolved = request_host(
        allow_request(&format!("http://api.test:{p}/v1/"), ""),
        StaticResolver::new(),
        RequestConfig::default(),
    );
    let base = format!("http://api.test:{p}/v1/x");
    let cases: Vec<Case> = vec![
        (
            "not_requested",
            "GET",
            format!("http://api.test:{p}/admin"),
            vec![],
        ),
        (
            "not_requested",
            "GET",
            format!("http://127.0.0.1:{p}/v1/x"),
            vec![],
        ),
        ("method_not_allowed", "DELETE", base.clone(), vec![]),
        ("method_not_allowed", "get", base.clone(), vec![]),
        ("method_not_allowed", "", base.clone(), vec![]),
        ("method_not_allowed", "G\r\nET", base.clone(), vec![]),
        ("method_not_allowed", "CONNECT", base.clone(), vec![]),
        (
            "forbidden_header",
            "GET",
            base.clone(),
            vec![h("Authorization", "Bearer x")],
        ),
        (
            "forbidden_header",
            "GET",
            base.clone(),
            vec![h("Host", "evil.test")],
        ),
        (
            "forbidden_header",
            "GET",
            base.clone(),
            vec![h("Transfer-Encoding", "chunked")],
        ),
        (
            "forbidden_header",
            "GET",
            base.clone(),
            vec![h("Content-Length", "5")],
        ),
        (
            "forbidden_header",
            "GET",
            base.clone(),
            vec![h("X-Undeclared", "1")],
        ),
        (
            "forbidden_header",
            "GET",
            base.clone(),
            vec![h("X-Trace", "a\r\nInjected: 1")],
        ),
        (
            "wrong_capability",
            "GET",
            base.clone(),
            vec![h("Upgrade", "websocket")],
        ),
        (
            "wrong_capability",
            "GET",
            base.clone(),
            vec![h("Accept", "text/event-stream")],
        ),
        (
            "wrong_capability",
            "GET",
            format!("ws://api.test:{p}/v1/x"),
            vec![],
        ),
        (
            "credentials_in_url",
            "GET",
            format!("http://u:pw@api.test:{p}/v1/x"),
            vec![],
        ),
        (
            "ambiguous_path",
            "GET",
            format!("http://api.test:{p}/v1/..%2Fadmin"),
            vec![],
        ),
        ("invalid_url", "GET", "not a url".to_string(), vec![]),
    ];
    for (want, method, url, headers) in cases {
        let e = bounded(
            &url,
            host.request(
                method,
                &url,
                &headers,
                Vec::new(),
                RequestOptions::default(),
            ),
        )
        .await
        .unwrap_err();
        assert_eq!(e.code(), want, "{method} {url} {headers:?}: {e}");
        assert!(!e.message.contains("pw"), "unredacted: {}", e.message);
    }
    let e = get(&unresolved, &base).await.unwrap_err();
    assert_eq!(e.code(), "resolution_failed", "{e}");
    assert_eq!(server.accepted(), 0, "a denied request opened a connection");
    assert_eq!(host.in_flight(), 0);
    // And the same host still works.
    assert_eq!(get(&host, &base).await.unwrap().status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_body_over_the_bound_fails_before_anything_is_resolved() {
    let server = http_server(|_| ok("")).await;
    let p = server.port();
    let host = request_host(
        allow_request(&format!("http://api.test:{p}/v1/"), ""),
        api_test(),
        RequestConfig {
            max_request_body_bytes: 1000,
            ..RequestConfig::default()
        },
    );
    let url = format!("http://api.test:{p}/v1/x");
    let e = bounded(
        "post",
        host.request("POST", &url, &[], vec![0; 1001], RequestOptions::default()),
    )
    .await
    .unwrap_err();
    assert_eq!(e.code(), "message_too_large");
    assert_eq!(server.accepted(), 0);
    let r = bounded(
        "post",
        host.request("POST", &url, &[], vec![0; 1000], RequestOptions::default()),
    )
    .await
    .unwrap();
    assert_eq!(r.status, 200);
}

// ---------------------------------------------------------------------------
// Faults
// ---------------------------------------------------------------------------

/// Asserts a timed fault: the code, and a duration within [bound, bound + SLACK].
fn assert_deadline(e: &HostError, started: Instant, bound: Duration) {
    let took = started.elapsed();
    assert_eq!(e.code(), "timeout", "{e}");
    assert!(took >= bound, "gave up after {took:?}, before {bound:?}");
    assert!(
        took <= bound + SLACK,
        "took {took:?} for a {bound:?} deadline"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_never_answers_hits_the_first_byte_deadline() {
    let server = after_head(drain_until_eof).await;
    let p = server.port();
    let host = request_host(
        allow_request(&format!("http://api.test:{p}/v1/"), ""),
        api_test(),
        RequestConfig {
            first_byte_timeout: BOUND,
            ..RequestConfig::default()
        },
    );
    let started = Instant::now();
    let e = get(&host, &format!("http://api.test:{p}/v1/x?key=s3cret"))
        .await
        .unwrap_err();
    assert_deadline(&e, started, BOUND);
    assert!(
        e.message.contains("key=…") && !e.message.contains("s3cret"),
        "{e}"
    );
    // The socket was closed: the peer's read loop saw EOF.
    assert!(wait_until(OUTER, || server.finished() == 1).await);
    assert_eq!(host.in_flight(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_drip_body_hits_the_total_deadline() {
    let server = after_head(|mut tcp| async move {
        let _ = tcp
            .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 1000\r\n\r\n")
            .await;
        for _ in 0..1000 {
            if tcp.write_all(b"x").await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    let p = server.port();
    let host = request_host(
        allow_request(&format!("http://api.test:{p}/v1/"), ""),
        api_test(),
        RequestConfig {
            total_timeout: Duration::from_secs(30),
            ..RequestConfig::default()
        },
    );
    // A per-call deadline tightens the configured one.
    let started = Instant::now();
    let e = bounded(
        "drip",
        host.request(
            "GET",
            &format!("http://api.test:{p}/v1/x"),
            &[],
            Vec::new(),
            RequestOptions {
                timeout: Some(Duration::from_secs(1)),
                ..RequestOptions::default()
            },
        ),
    )
    .await
    .unwrap_err();
    assert_deadline(&e, started, Duration::from_secs(1));
    // The peer's next write fails: the socket is closed.
    assert!(wait_until(OUTER, || server.finished() == 1).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reset_mid_body_is_an_error_never_a_truncated_body() {
    // Half the declared body, then RST (linger 0) or a plain FIN.
    for rst in [true, false] {
        let server = after_head(move |mut tcp| async move {
            let _ = tcp
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 1000\r\n\r\n")
                .await;
            let _ = tcp.write_all(&[b'x'; 500]).await;
            let _ = tcp.flush().await;
            if rst {
                let _ = tcp.set_zero_linger();
            }
            drop(tcp);
        })
        .await;
        let p = server.port();
        let host = request_host(
            allow_request(&format!("http://api.test:{p}/v1/"), ""),
            api_test(),
            RequestConfig::default(),
        );
        let e = get(&host, &format!("http://api.test:{p}/v1/x"))
            .await
            .unwrap_err();
        assert_eq!(e.code(), "http_failed", "rst={rst}: {e}");
        // Chunked, cut before the last chunk.
        let server = after_head(move |mut tcp| async move {
            let _ = tcp
                .write_all(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\n")
                .await;
            let _ = tcp.flush().await;
            if rst {
                let _ = tcp.set_zero_linger();
            }
            drop(tcp);
        })
        .await;
        let p = server.port();
        let host = request_host(
            allow_request(&format!("http://api.test:{p}/v1/"), ""),
            api_test(),
            RequestConfig::default(),
        );
        let e = get(&host, &format!("http://api.test:{p}/v1/x"))
            .await
            .unwrap_err();
        assert_eq!(e.code(), "http_failed", "chunked rst={rst}: {e}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_response_head_is_message_too_large() {
    let cfg = RequestConfig {
        max_response_headers: 20,
        max_response_header_bytes: 4096,
        ..RequestConfig::default()
    };
    // Too many headers; one huge header; many headers under the count but
    // over the bytes together; and a head that never ends.
    let heads: Vec<Vec<u8>> = vec![
        (0..21)
            .map(|i| format!("x-h{i}: v\r\n"))
            .collect::<String>()
            .into_bytes(),
        format!("x-big: {}\r\n", "a".repeat(5000)).into_bytes(),
        (0..10)
            .map(|i| format!("x-h{i}: {}\r\n", "b".repeat(500)))
            .collect::<String>()
            .into_bytes(),
    ];
    for (i, extra) in heads.into_iter().enumerate() {
        let extra = Arc::new(extra);
        let server = after_head(move |mut tcp| {
            let extra = extra.clone();
            async move {
                let _ = tcp
                    .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n")
                    .await;
                let _ = tcp.write_all(&extra).await;
                let _ = tcp.write_all(b"\r\nok").await;
                drain_until_eof(tcp).await;
            }
        })
        .await;
        let p = server.port();
        let host = request_host(
            allow_request(&format!("http://api.test:{p}/v1/"), ""),
            api_test(),
            cfg.clone(),
        );
        let e = get(&host, &format!("http://api.test:{p}/v1/x"))
            .await
            .unwrap_err();
        assert_eq!(e.code(), "message_too_large", "head {i}: {e}");
        assert!(
            wait_until(OUTER, || server.finished() == 1).await,
            "head {i}"
        );
    }
    // Exactly at the count bound is fine.
    let server = after_head(|mut tcp| async move {
        let mut head = String::from("HTTP/1.1 200 OK\r\ncontent-length: 2\r\n");
        for i in 0..19 {
            head.push_str(&format!("x-h{i}: v\r\n"));
        }
        head.push_str("\r\nok");
        let _ = tcp.write_all(head.as_bytes()).await;
        drain_until_eof(tcp).await;
    })
    .await;
    let p = server.port();
    let host = request_host(
        allow_request(&format!("http://api.test:{p}/v1/"), ""),
        api_test(),
        cfg,
    );
    let r = get(&host, &format!("http://api.test:{p}/v1/x"))
        .await
        .unwrap();
    assert_eq!((r.status, r.body.as_slice()), (200, b"ok".as_slice()));
    assert_eq!(r.headers.len(), 20);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_response_body_over_the_bound_is_message_too_large_never_truncated() {
    const MAX: usize = 64 * 1024;
    let cfg = RequestConfig {
        max_response_body_bytes: MAX,
        ..RequestConfig::default()
    };
    // (declared length, bytes actually sent, chunked)
    for (declared, sent, chunked, want_ok) in [
        (Some(MAX), MAX, false, true),
        (Some(MAX + 1), MAX + 1, false, false),
        // Declared far over the bound: refused without reading it.
        (Some(1 << 40), 10, false, false),
        (None, MAX, true, true),
        (None, MAX + 1, true, false),
        (None, 4 * MAX, true, false),
    ] {
        let server = after_head(move |mut tcp| async move {
            let mut head = String::from("HTTP/1.1 200 OK\r\n");
            match declared {
                Some(n) => head.push_str(&format!("content-length: {n}\r\n\r\n")),
                None => head.push_str("transfer-encoding: chunked\r\n\r\n"),
            }
            if tcp.write_all(head.as_bytes()).await.is_err() {
                return;
            }
            let body = vec![b'z'; sent];
            if chunked {
                for c in body.chunks(4096) {
                    let mut frame = format!("{:x}\r\n", c.len()).into_bytes();
                    frame.extend_from_slice(c);
                    frame.extend_from_slice(b"\r\n");
                    if tcp.write_all(&frame).await.is_err() {
                        return;
                    }
                }
                let _ = tcp.write_all(b"0\r\n\r\n").await;
            } else if tcp.write_all(&body).await.is_err() {
                return;
            }
            drain_until_eof(tcp).await;
        })
        .await;
        let p = server.port();
        let host = request_host(
            allow_request(&format!("http://api.test:{p}/v1/"), ""),
            api_test(),
            cfg.clone(),
        );
        let got = get(&host, &format!("http://api.test:{p}/v1/x")).await;
        let case = format!("declared {declared:?}, sent {sent}, chunked {chunked}");
        if want_ok {
            assert_eq!(got.unwrap().body.len(), sent, "{case}");
            // A complete exchange is pooled: the host's end closes it.
            assert_eq!(host.idle_connections(), 1, "{case}");
            drop(host);
        } else {
            assert_eq!(got.unwrap_err().code(), "message_too_large", "{case}");
            // A failed exchange is never pooled: closed at once.
            assert_eq!(host.idle_connections(), 0, "{case}");
        }
        assert!(wait_until(OUTER, || server.finished() == 1).await, "{case}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_per_call_body_bound_only_tightens() {
    let server = http_server(|_| ok(vec![b'q'; 2000])).await;
    let p = server.port();
    let host = request_host(
        allow_request(&format!("http://api.test:{p}/v1/"), ""),
        api_test(),
        RequestConfig {
            max_response_body_bytes: 3000,
            ..RequestConfig::default()
        },
    );
    let url = format!("http://api.test:{p}/v1/x");
    let with = |n| RequestOptions {
        max_response_body_bytes: Some(n),
        ..RequestOptions::default()
    };
    let e = bounded("small", host.request("GET", &url, &[], vec![], with(1999)))
        .await
        .unwrap_err();
    assert_eq!(e.code(), "message_too_large");
    // Asking for more than the host allows is capped, not granted.
    let r = bounded(
        "big",
        host.request("GET", &url, &[], vec![], with(usize::MAX)),
    )
    .await
    .unwrap();
    assert_eq!(r.body.len(), 2000);
}

/// A resolver that never answers, counting the lookups it was asked for.
struct Hanging(Arc<AtomicUsize>);

impl Resolver for Hanging {
    fn resolve<'a>(&'a self, _host: &'a str) -> ResolveFuture<'a> {
        self.0.fetch_add(1, Ordering::SeqCst);
        Box::pin(std::future::pending())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hanging_resolver_hits_the_dns_deadline() {
    let asked = Arc::new(AtomicUsize::new(0));
    let host = RequestHost::new(
        allow_request("http://api.test:8080/v1/", ""),
        Arc::new(Hanging(asked.clone())),
        RequestConfig {
            dns_timeout: BOUND,
            ..RequestConfig::default()
        },
    )
    .unwrap();
    let started = Instant::now();
    let e = get(&host, "http://api.test:8080/v1/x").await.unwrap_err();
    assert_deadline(&e, started, BOUND);
    assert_eq!(asked.load(Ordering::SeqCst), 1, "resolved once");
}

// ---------------------------------------------------------------------------
// Limits, cancellation and shutdown
// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_request_over_the_in_flight_limit_fails_at_once() {
    let server = after_head(drain_until_eof).await;
    let p = server.port();
    let host = Arc::new(request_host(
        allow_request(&format!("http://api.test:{p}/v1/"), ""),
        api_test(),
        RequestConfig {
            max_in_flight: 2,
            ..RequestConfig::default()
        },
    ));
    let url = format!("http://api.test:{p}/v1/x");
    let mut calls = Vec::new();
    for _ in 0..2 {
        let (host, url) = (host.clone(), url.clone());
        calls.push(tokio::spawn(async move { get(&host, &url).await }));
    }
    assert!(wait_until(OUTER, || server.accepted() == 2).await);
    assert_eq!(host.in_flight(), 2);
    let e = get(&host, &url).await.unwrap_err();
    assert_eq!(e.code(), "connection_limit", "{e}");
    assert_eq!(server.accepted(), 2);
    host.shutdown().await;
    for c in calls {
        assert_eq!(c.await.unwrap().unwrap_err().code(), "shutdown");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_ends_a_hundred_requests_in_flight_promptly_and_closes_their_sockets() {
    let server = after_head(drain_until_eof).await;
    let p = server.port();
    let host = Arc::new(request_host(
        allow_request(&format!("http://api.test:{p}/v1/"), ""),
        api_test(),
        RequestConfig {
            max_in_flight: 100,
            ..RequestConfig::default()
        },
    ));
    let url = format!("http://api.test:{p}/v1/x");
    let mut calls = Vec::new();
    for _ in 0..100 {
        let (host, url) = (host.clone(), url.clone());
        calls.push(tokio::spawn(async move {
            host.request("GET", &url, &[], Vec::new(), RequestOptions::default())
                .await
        }));
    }
    assert!(
        wait_until(OUTER, || server.accepted() == 100).await,
        "only {} of 100 requests connected",
        server.accepted()
    );
    assert_eq!(host.in_flight(), 100);
    let started = Instant::now();
    bounded("shutdown", host.shutdown()).await;
    assert_eq!(host.in_flight(), 0, "shutdown returned with tasks left");
    for c in calls {
        let r = bounded("a call after shutdown", c).await.unwrap();
        assert_eq!(r.unwrap_err().code(), "shutdown");
    }
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "took {:?}",
        started.elapsed()
    );
    assert!(
        wait_until(OUTER, || server.finished() == 100).await,
        "only {} of 100 sockets closed",
        server.finished()
    );
    // A shut-down host refuses new requests without connecting.
    assert_eq!(get(&host, &url).await.unwrap_err().code(), "shutdown");
    assert_eq!(server.accepted(), 100);
}

/// A host allowed to a server that reads the request and never answers,
/// with the URL to call it on.
async fn silent() -> (RawServer, RequestHost, String) {
    let server = after_head(drain_until_eof).await;
    let p = server.port();
    let host = request_host(
        allow_request(&format!("http://api.test:{p}/v1/"), ""),
        api_test(),
        RequestConfig::default(),
    );
    (server, host, format!("http://api.test:{p}/v1/x"))
}

/// Polls `call` until the server has read its request head.
async fn poll_until_sent<F: Future>(call: std::pin::Pin<&mut F>, server: &RawServer) {
    tokio::select! {
        _ = call => panic!("the silent server answered"),
        true = wait_until(OUTER, || server.reached() == 1) => {}
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_a_request_future_closes_its_connection() {
    let (server, host, url) = silent().await;
    {
        let call = host.request("GET", &url, &[], Vec::new(), RequestOptions::default());
        tokio::pin!(call);
        // Poll until the server has the request, then give up on it.
        poll_until_sent(call.as_mut(), &server).await;
    }
    assert!(wait_until(OUTER, || server.finished() == 1).await);
    assert!(wait_until(OUTER, || host.in_flight() == 0).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_closes_the_connection_of_a_call_whose_caller_stopped_polling() {
    let (server, host, url) = silent().await;
    let call = host.request("GET", &url, &[], Vec::new(), RequestOptions::default());
    tokio::pin!(call);
    // Poll until the server has the request, then stop polling (the future
    // is kept, not dropped).
    poll_until_sent(call.as_mut(), &server).await;
    assert_eq!(host.in_flight(), 1);
    // Bounded: shutdown waits for the call, which ends only when polled.
    bounded("shutdown", host.shutdown()).await;
    assert!(
        wait_until(OUTER, || server.finished() == 1).await,
        "the socket of an unpolled call stayed open after shutdown"
    );
    // Polled again, the call reports the shutdown and releases its slot.
    let e = bounded("the stopped call", call).await.unwrap_err();
    assert_eq!(e.code(), "shutdown", "{e}");
    assert_eq!(host.in_flight(), 0);
}

// ---------------------------------------------------------------------------
// TLS and HTTP/2
// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_uses_the_url_name_over_the_checked_address_with_h2_or_http1_by_alpn() {
    let ca = Ca::new();
    for (server_alpn, client_h2, want) in [
        (vec![b"h2".as_slice(), b"http/1.1"], true, "HTTP/2"),
        (vec![b"h2".as_slice(), b"http/1.1"], false, "HTTP/1.1"),
        (vec![b"http/1.1".as_slice()], true, "HTTP/1.1"),
        (vec![], true, "HTTP/1.1"),
    ] {
        let (chain, key) = ca.leaf("api.test");
        let server = https_server(chain, key, &server_alpn, |s| {
            hyper::Response::builder()
                .header("set-cookie", "a=1")
                .body(http_body_util::Full::new(
                    format!("{} {}", s.method, s.target).into(),
                ))
                .unwrap()
        })
        .await;
        let p = server.port();
        let host = request_host(
            allow_request(&format!("https://api.test:{p}/v1/"), ""),
            api_test(),
            RequestConfig {
                roots: ca.roots(),
                http2: client_h2,
                ..RequestConfig::default()
            },
        );
        let case = format!("server {server_alpn:?}, client h2 {client_h2}");
        let r = bounded(
            &case,
            host.request(
                "POST",
                &format!("https://API.test.:{p}/v1/x?q=1"),
                &[h("X-Trace", "t")],
                b"payload".to_vec(),
                RequestOptions::default(),
            ),
        )
        .await
        .unwrap_or_else(|e| panic!("{case}: {e}"));
        assert_eq!((r.status, r.version), (200, want), "{case}");
        assert_eq!(r.body, b"POST /v1/x?q=1", "{case}");
        assert!(r.header("set-cookie").is_none(), "{case}");
        let s = &server.seen()[0];
        assert_eq!(s.sni.as_deref(), Some("api.test"), "{case}");
        assert_eq!(s.host, format!("api.test:{p}"), "{case}");
        assert_eq!(s.body, b"payload", "{case}");
        assert!(s.headers.iter().any(|(k, v)| k == "x-trace" && v == "t"));
        // Pooled until the host goes.
        drop(host);
        assert!(wait_until(OUTER, || server.closed.load(Ordering::SeqCst) == 1).await);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_fails_closed_on_untrusted_or_misnamed_certificates() {
    let ca = Ca::new();
    for (name, roots, what) in [
        ("api.test", None, "bundled roots do not trust a local CA"),
        (
            "other.test",
            Some(ca.roots()),
            "a certificate for another name",
        ),
    ] {
        let (chain, key) = ca.leaf(name);
        let server = https_server(chain, key, &[b"h2", b"http/1.1"], |_| ok("secret")).await;
        let p = server.port();
        let host = request_host(
            allow_request(&format!("https://api.test:{p}/v1/"), ""),
            api_test(),
            RequestConfig {
                roots: roots.unwrap_or_default(),
                ..RequestConfig::default()
            },
        );
        let e = get(&host, &format!("https://api.test:{p}/v1/x"))
            .await
            .unwrap_err();
        assert_eq!(e.code(), "tls_failed", "{what}: {e}");
        assert_eq!(server.accepted(), 1, "{what}");
        assert!(server.seen().is_empty(), "{what}: a request crossed");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tls_server_that_stalls_the_handshake_hits_the_tls_deadline() {
    let server = RawServer::start(drain_until_eof).await;
    let p = server.port();
    let host = request_host(
        allow_request(&format!("https://api.test:{p}/v1/"), ""),
        api_test(),
        RequestConfig {
            tls_timeout: BOUND,
            ..RequestConfig::default()
        },
    );
    let started = Instant::now();
    let e = get(&host, &format!("https://api.test:{p}/v1/x"))
        .await
        .unwrap_err();
    assert_deadline(&e, started, BOUND);
    assert!(wait_until(OUTER, || server.finished() == 1).await);
}

// ---------------------------------------------------------------------------
// Interop: Python's http.server (stdlib)
// ---------------------------------------------------------------------------

/// `python3 -m http.server` on an ephemeral loopback port serving `dir`;
/// killed on drop. Never skipped: without python3 the test fails.
struct PythonServer {
    child: std::process::Child,
    port: u16,
}

impl PythonServer {
    fn start(dir: &std::path::Path) -> PythonServer {
        use std::io::BufRead;
        let mut child = std::process::Command::new("python3")
            .args([
                "-u",
                "-m",
                "http.server",
                "0",
                "--bind",
                "127.0.0.1",
                "--directory",
            ])
            .arg(dir)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("python3 must be installed for the interop test");
        let stdout = child.stdout.take().unwrap();
        // "Serving HTTP on 127.0.0.1 port 40123 (http://127.0.0.1:40123/) ..."
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = std::io::BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let line = rx.recv_timeout(OUTER).unwrap_or_else(|_| {
            let _ = child.kill();
            panic!("python3 -m http.server did not start within {OUTER:?}")
        });
        let port = line
            .split_whitespace()
            .skip_while(|w| *w != "port")
            .nth(1)
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("unexpected http.server banner: {line:?}"));
        PythonServer { child, port }
    }
}

impl Drop for PythonServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn interop_with_python_http_server() {
    let dir = tempfile_dir();
    let blob: Vec<u8> = (0..=255u8).cycle().take(200_003).collect();
    std::fs::write(dir.join("blob.bin"), &blob).unwrap();
    std::fs::create_dir(dir.join("sub")).unwrap();
    let py = PythonServer::start(&dir);
    let p = py.port;
    let host = api_host(p);
    let r = get(&host, &format!("http://api.test:{p}/blob.bin"))
        .await
        .unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(r.version, "HTTP/1.0");
    assert!(
        r.body == blob,
        "binary body differs ({} bytes)",
        r.body.len()
    );
    assert_eq!(r.header("content-length"), Some(b"200003".as_slice()));

    let r = bounded(
        "head",
        host.request(
            "HEAD",
            &format!("http://api.test:{p}/blob.bin"),
            &[],
            Vec::new(),
            RequestOptions::default(),
        ),
    )
    .await
    .unwrap();
    assert_eq!((r.status, r.body.len()), (200, 0));
    // A HEAD answer declares the GET body's length, and sends no body: not
    // over any bound.
    let r = bounded(
        "head under a small bound",
        host.request(
            "HEAD",
            &format!("http://api.test:{p}/blob.bin"),
            &[],
            Vec::new(),
            RequestOptions {
                max_response_body_bytes: Some(1000),
                ..RequestOptions::default()
            },
        ),
    )
    .await
    .unwrap();
    assert_eq!(r.header("content-length"), Some(b"200003".as_slice()));
    assert_eq!((r.status, r.body.len()), (200, 0));

    let r = get(&host, &format!("http://api.test:{p}/missing"))
        .await
        .unwrap();
    assert_eq!(r.status, 404, "any status is a response, not an error");

    // http.server redirects a directory without its slash: returned as is.
    let r = get(&host, &format!("http://api.test:{p}/sub"))
        .await
        .unwrap();
    assert_eq!(r.status, 301);
    assert_eq!(r.header("location"), Some(b"/sub/".as_slice()));

    // A body over the bound from a real server: an error, not a prefix.
    let e = bounded(
        "bounded",
        host.request(
            "GET",
            &format!("http://api.test:{p}/blob.bin"),
            &[],
            Vec::new(),
            RequestOptions {
                max_response_body_bytes: Some(100_000),
                ..RequestOptions::default()
            },
        ),
    )
    .await
    .unwrap_err();
    assert_eq!(e.code(), "message_too_large");
    drop(py);
    let _ = std::fs::remove_dir_all(&dir);
}

/// A fresh directory under the build's temp dir.
fn tempfile_dir() -> std::path::PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    let d = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!(
        "request-host-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    ));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http2_responses_are_bounded_like_http1() {
    let ca = Ca::new();
    let (chain, key) = ca.leaf("api.test");
    let server = https_server(chain, key, &[b"h2"], |s| {
        let mut b = hyper::Response::builder();
        let body = match s.target.as_str() {
            "/v1/headers" => {
                for i in 0..30 {
                    b = b.header(format!("x-h{i}"), "v");
                }
                Vec::new()
            }
            "/v1/big" => vec![b'b'; 5000],
            _ => b"small".to_vec(),
        };
        b.body(http_body_util::Full::new(body.into())).unwrap()
    })
    .await;
    let p = server.port();
    let host = request_host(
        allow_request(&format!("https://api.test:{p}/v1/"), ""),
        api_test(),
        RequestConfig {
            roots: ca.roots(),
            max_response_headers: 20,
            max_response_body_bytes: 4096,
            ..RequestConfig::default()
        },
    );
    let r = get(&host, &format!("https://api.test:{p}/v1/ok"))
        .await
        .unwrap();
    assert_eq!(
        (r.version, r.body.as_slice()),
        ("HTTP/2", b"small".as_slice())
    );
    for path in ["headers", "big"] {
        let e = get(&host, &format!("https://api.test:{p}/v1/{path}"))
            .await
            .unwrap_err();
        assert_eq!(e.code(), "message_too_large", "{path}: {e}");
    }
    // An over-bound answer ends its stream only: the HTTP/2 connection is
    // shared and stays (tests/request_pool.rs).
    assert_eq!(server.accepted(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_ports_malformed_answers_and_endless_heads_are_reported() {
    // A port nobody listens on (bound, then closed).
    let closed_port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let host = request_host(
        allow_request(&format!("http://api.test:{closed_port}/v1/"), ""),
        api_test(),
        RequestConfig::default(),
    );
    let e = get(&host, &format!("http://api.test:{closed_port}/v1/x"))
        .await
        .unwrap_err();
    assert_eq!(e.code(), "connect_failed", "{e}");

    let malformed = after_head(|mut tcp| async move {
        let _ = tcp.write_all(b"NOT HTTP AT ALL\r\n\r\n").await;
        drain_until_eof(tcp).await;
    })
    .await;
    // Header lines forever, never the blank line that ends the head.
    let endless = after_head(|mut tcp| async move {
        let _ = tcp.write_all(b"HTTP/1.1 200 OK\r\n").await;
        for i in 0..100_000 {
            let line = format!("x-h{}: {}\r\n", i % 50, "v".repeat(100));
            if tcp.write_all(line.as_bytes()).await.is_err() {
                return;
            }
        }
    })
    .await;
    for (server, want) in [(malformed, "http_failed"), (endless, "message_too_large")] {
        let p = server.port();
        let host = request_host(
            allow_request(&format!("http://api.test:{p}/v1/"), ""),
            api_test(),
            RequestConfig::default(),
        );
        let e = get(&host, &format!("http://api.test:{p}/v1/x"))
            .await
            .unwrap_err();
        assert_eq!(e.code(), want, "{e}");
        assert!(wait_until(OUTER, || server.finished() == 1).await, "{want}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checked_addresses_are_tried_in_order_and_ipv6_hosts_are_bracketed() {
    // Listening on ::1 only: `localhost` is dialed at 127.0.0.1 (refused)
    // and then at ::1, never resolved.
    let server = http_server_on("[::1]:0", |_| ok("v6")).await;
    let p = server.port();
    let get_only = "methods = [\"GET\"]";
    let t = format!(
        "{}{}",
        req_entry(&format!("http://localhost:{p}/v1/"), get_only),
        req_entry(&format!("http://[::1]:{p}/v1/"), get_only)
    );
    let host = request_host(
        policy(&t, &t),
        StaticResolver::new(),
        RequestConfig::default(),
    );
    let r = get(&host, &format!("http://localhost:{p}/v1/x"))
        .await
        .unwrap();
    assert_eq!(r.body, b"v6");
    assert_eq!(
        r.remote,
        format!("[::1]:{p}").parse::<SocketAddr>().unwrap()
    );
    let r = get(&host, &format!("http://[::1]:{p}/v1/y")).await.unwrap();
    assert_eq!(r.body, b"v6");
    let hosts: Vec<String> = server.seen().into_iter().map(|s| s.host).collect();
    assert_eq!(hosts, [format!("localhost:{p}"), format!("[::1]:{p}")]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_304_declaring_a_large_length_has_no_body_and_is_not_over_the_bound() {
    let server = after_head(|mut tcp| async move {
        let _ = tcp
            .write_all(
                b"HTTP/1.1 304 Not Modified\r\ncontent-length: 99999999\r\netag: \"v1\"\r\n\r\n",
            )
            .await;
        drain_until_eof(tcp).await;
    })
    .await;
    let p = server.port();
    let host = request_host(
        allow_request(&format!("http://api.test:{p}/v1/"), ""),
        api_test(),
        RequestConfig {
            max_response_body_bytes: 1000,
            ..RequestConfig::default()
        },
    );
    let r = get(&host, &format!("http://api.test:{p}/v1/x"))
        .await
        .unwrap();
    assert_eq!((r.status, r.body.len()), (304, 0));
    assert_eq!(r.header("etag"), Some(b"\"v1\"".as_slice()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_the_host_ends_a_call_whose_future_was_leaked() {
    let server = after_head(drain_until_eof).await;
    let p = server.port();
    let host = request_host(
        allow_request(&format!("http://api.test:{p}/v1/"), ""),
        api_test(),
        RequestConfig::default(),
    );
    let url = format!("http://api.test:{p}/v1/x");
    let mut call = Box::pin(host.request("GET", &url, &[], Vec::new(), RequestOptions::default()));
    tokio::select! {
        _ = &mut call => panic!("the silent server answered"),
        true = wait_until(OUTER, || server.reached() == 1) => {}
    }
    // The caller neither finishes nor drops its future: only the host's own
    // ownership of the task can close the socket now.
    std::mem::forget(call);
    assert_eq!(server.finished(), 0);
    drop(host);
    assert!(wait_until(OUTER, || server.finished() == 1).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_requests_each_get_their_own_answer() {
    let server = http_server(|s| ok(s.target.clone())).await;
    let p = server.port();
    let host = Arc::new(request_host(
        allow_request(&format!("http://api.test:{p}/v1/"), ""),
        api_test(),
        RequestConfig {
            max_in_flight: 64,
            ..RequestConfig::default()
        },
    ));
    let mut calls = Vec::new();
    for i in 0..64 {
        let host = host.clone();
        calls.push(tokio::spawn(async move {
            let url = format!("http://api.test:{p}/v1/{i}");
            (i, get(&host, &url).await)
        }));
    }
    for c in calls {
        let (i, r) = bounded("a concurrent call", c).await.unwrap();
        assert_eq!(r.unwrap().body, format!("/v1/{i}").as_bytes());
    }
    assert_eq!(host.in_flight(), 0);
    assert_eq!(server.seen().len(), 64);
    // Connections are reused when a call finds one idle, never shared by
    // two HTTP/1.1 calls at once, and at most 16 stay.
    assert!(
        (1..=64).contains(&server.accepted()),
        "{}",
        server.accepted()
    );
    assert!(host.idle_connections() <= 16);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_global_limit_caps_websockets_and_requests_together() {
    use netgrant_runtime::{GlobalLimit, HostConfig, OpenOptions};
    let limit = GlobalLimit::new(1);
    let echo = EchoServer::start().await;
    let ws = host(
        allow_localhost(echo.addr.port()),
        StaticResolver::new(),
        HostConfig {
            global_limit: Some(limit.clone()),
            ..HostConfig::default()
        },
    );
    let server = http_server(|_| ok("answered")).await;
    let p = server.port();
    let http = request_host(
        allow_request(&format!("http://api.test:{p}/v1/"), ""),
        api_test(),
        RequestConfig {
            global_limit: Some(limit.clone()),
            ..RequestConfig::default()
        },
    );
    let url = format!("http://api.test:{p}/v1/x");
    let id = bounded(
        "open",
        ws.open(
            &format!("ws://localhost:{}/", echo.addr.port()),
            OpenOptions::default(),
        ),
    )
    .await
    .unwrap();
    assert_eq!(limit.in_use(), 1);
    let e = get(&http, &url).await.unwrap_err();
    assert_eq!(e.code(), "connection_limit", "{e}");
    assert_eq!(server.accepted(), 0);
    ws.close(id).await.unwrap();
    assert_eq!(limit.in_use(), 0);
    assert_eq!(get(&http, &url).await.unwrap().body, b"answered");
    assert_eq!(limit.in_use(), 0, "the permit is released with the call");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn huge_configured_deadlines_and_bounds_do_not_overflow() {
    let server = http_server(|_| ok("fine")).await;
    let p = server.port();
    let host = request_host(
        allow_request(&format!("http://api.test:{p}/v1/"), ""),
        api_test(),
        RequestConfig {
            dns_timeout: Duration::MAX,
            connect_timeout: Duration::MAX,
            tls_timeout: Duration::MAX,
            first_byte_timeout: Duration::MAX,
            total_timeout: Duration::MAX,
            max_response_body_bytes: usize::MAX,
            max_response_header_bytes: usize::MAX,
            max_response_headers: usize::MAX,
            max_in_flight: usize::MAX,
            ..RequestConfig::default()
        },
    );
    let r = bounded(
        "huge bounds",
        host.request(
            "GET",
            &format!("http://api.test:{p}/v1/x"),
            &[],
            Vec::new(),
            RequestOptions {
                timeout: Some(Duration::MAX),
                max_response_body_bytes: Some(usize::MAX),
                ..RequestOptions::default()
            },
        ),
    )
    .await
    .unwrap();
    assert_eq!(r.body, b"fine");
}
