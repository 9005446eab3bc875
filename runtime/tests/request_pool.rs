//! Connection reuse in `RequestHost`, against real servers on loopback that
//! count the connections they accept.
//!
//! Reuse must never skip a check: every call is decided and its answers
//! checked, and a pooled connection is taken only for the same scheme and
//! server name, to an address that call just checked.

#![allow(clippy::result_large_err)]

mod support;
use netgrant_runtime::{
    ErrorKind, RequestConfig, RequestHost, RequestOptions, ResolveFuture, Resolver, StaticResolver,
};
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use support::http::*;
use support::*;
use tokio::io::AsyncWriteExt;

/// A resolver whose answers the test changes between calls.
#[derive(Clone, Default)]
struct Switch(Arc<Mutex<Vec<IpAddr>>>);

impl Switch {
    fn set(&self, answers: &[&str]) {
        *self.0.lock().unwrap() = answers.iter().map(|a| ip(a)).collect();
    }
}

impl Resolver for Switch {
    fn resolve<'a>(&'a self, _host: &'a str) -> ResolveFuture<'a> {
        let v = self.0.lock().unwrap().clone();
        Box::pin(async move { Ok(v) })
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sequential_requests_reuse_one_connection_until_shutdown() {
    let server = http_server(|s| ok(s.target.clone())).await;
    let p = server.port();
    let host = request_host(
        allow_request(&format!("http://api.test:{p}/v1/"), ""),
        api_test(),
        RequestConfig::default(),
    );
    for i in 0..5 {
        let r = get(&host, &format!("http://api.test:{p}/v1/{i}"))
            .await
            .unwrap();
        assert_eq!(r.body, format!("/v1/{i}").as_bytes());
    }
    assert_eq!(server.accepted(), 1, "five calls, one connection");
    assert_eq!(server.seen().len(), 5);
    assert_eq!(host.idle_connections(), 1);
    host.shutdown().await;
    assert_eq!(host.idle_connections(), 0);
    assert!(wait_until(OUTER, || server.closed.load(Ordering::SeqCst) == 1).await);
    // And a shut host keeps nothing.
    let e = get(&host, &format!("http://api.test:{p}/v1/x"))
        .await
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::Shutdown);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_call_is_still_decided_with_a_connection_pooled() {
    let server = http_server(|_| ok("x")).await;
    let p = server.port();
    let host = request_host(
        allow_request(&format!("http://api.test:{p}/v1/"), ""),
        api_test(),
        RequestConfig::default(),
    );
    get(&host, &format!("http://api.test:{p}/v1/a"))
        .await
        .unwrap();
    assert_eq!(host.idle_connections(), 1);
    // Same host, port and address, but outside the granted path, an
    // ungranted method, an unlisted header: each denied, nothing sent.
    let e = get(&host, &format!("http://api.test:{p}/admin"))
        .await
        .unwrap_err();
    assert_eq!(e.code(), "not_requested");
    let e = bounded(
        "delete",
        host.request(
            "DELETE",
            &format!("http://api.test:{p}/v1/a"),
            &[],
            Vec::new(),
            RequestOptions::default(),
        ),
    )
    .await
    .unwrap_err();
    assert_eq!(e.code(), "method_not_allowed");
    let e = bounded(
        "header",
        host.request(
            "GET",
            &format!("http://api.test:{p}/v1/a"),
            &[("X-Other".into(), "1".into())],
            Vec::new(),
            RequestOptions::default(),
        ),
    )
    .await
    .unwrap_err();
    assert_eq!(e.code(), "forbidden_header");
    assert_eq!(server.seen().len(), 1, "no denied call reached the server");
    assert_eq!(server.accepted(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_changed_dns_answer_never_rides_the_old_connection() {
    // Two servers on one port, on 127.0.0.1 and 127.0.0.2.
    let a = http_server_on("127.0.0.1:0", |_| ok("a")).await;
    let p = a.port();
    let b = http_server_on(&format!("127.0.0.2:{p}"), |_| ok("b")).await;
    let entry = req_entry(
        &format!("http://api.test:{p}/"),
        "methods = [\"GET\"]\nnetworks = [\"127.0.0.1/32\", \"127.0.0.2/32\"]",
    );
    let switch = Switch::default();
    let host = RequestHost::new(
        policy(&entry, &entry),
        Arc::new(switch.clone()),
        RequestConfig::default(),
    )
    .unwrap();
    let url = format!("http://api.test:{p}/x");
    switch.set(&["127.0.0.1"]);
    assert_eq!(get(&host, &url).await.unwrap().body, b"a");
    // The name now answers 127.0.0.2 only: the idle connection to
    // 127.0.0.1 was not checked by this call and is not used.
    switch.set(&["127.0.0.2"]);
    let r = get(&host, &url).await.unwrap();
    assert_eq!(r.body, b"b");
    assert_eq!(r.remote, SocketAddr::from(([127, 0, 0, 2], p)));
    assert_eq!((a.accepted(), b.accepted()), (1, 1));
    // Both answers: the first is checked again and its connection reused.
    switch.set(&["127.0.0.2", "127.0.0.1"]);
    let r = get(&host, &url).await.unwrap();
    assert!(r.body == b"a" || r.body == b"b");
    assert_eq!(
        a.accepted() + b.accepted(),
        2,
        "a checked, pooled address is reused"
    );
    // An answer that fails the check denies before any reuse.
    switch.set(&["127.0.0.1", "10.0.0.1"]);
    let e = get(&host, &url).await.unwrap_err();
    assert_eq!(e.code(), "non_public_address");
    assert_eq!(a.seen().len() + b.seen().len(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_server_name_on_the_same_address_opens_its_own_connection() {
    let server = http_server(|s| ok(s.host.clone())).await;
    let p = server.port();
    let requested = format!(
        "{}{}",
        req_entry(
            &format!("http://a.test:{p}/"),
            "methods = [\"GET\"]\nnetworks = [\"127.0.0.1/32\"]"
        ),
        req_entry(
            &format!("http://b.test:{p}/"),
            "methods = [\"GET\"]\nnetworks = [\"127.0.0.1/32\"]"
        ),
    );
    let resolver = StaticResolver::new()
        .with("a.test", [ip("127.0.0.1")])
        .with("b.test", [ip("127.0.0.1")]);
    let host = request_host(
        policy(&requested, &requested),
        resolver,
        RequestConfig::default(),
    );
    let ra = get(&host, &format!("http://a.test:{p}/")).await.unwrap();
    let rb = get(&host, &format!("http://b.test:{p}/")).await.unwrap();
    assert_eq!(ra.body, format!("a.test:{p}").as_bytes());
    assert_eq!(rb.body, format!("b.test:{p}").as_bytes());
    assert_eq!(
        server.accepted(),
        2,
        "a connection is kept for its server name"
    );
    // Each name reuses its own.
    get(&host, &format!("http://a.test:{p}/")).await.unwrap();
    get(&host, &format!("http://b.test:{p}/")).await.unwrap();
    assert_eq!(server.accepted(), 2);
    assert_eq!(host.idle_connections(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_close_answers_and_http10_are_not_pooled() {
    for close in [true, false] {
        // A raw peer: one answer per connection, then it waits for the
        // client to go (so only the client's pooling decides reuse).
        let server = RawServer::start(move |mut tcp| async move {
            while read_request_head(&mut tcp).await.is_some() {
                let head = if close {
                    "HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok"
                } else {
                    "HTTP/1.0 200 OK\r\ncontent-length: 2\r\n\r\nok"
                };
                let _ = tcp.write_all(head.as_bytes()).await;
            }
        })
        .await;
        let p = server.port();
        let host = request_host(
            allow_request(&format!("http://api.test:{p}/"), ""),
            api_test(),
            RequestConfig::default(),
        );
        for _ in 0..3 {
            let r = get(&host, &format!("http://api.test:{p}/")).await.unwrap();
            assert_eq!(r.body, b"ok");
            assert_eq!(host.idle_connections(), 0, "close {close}");
        }
        assert_eq!(server.accepted.load(Ordering::SeqCst), 3, "close {close}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_connection_the_server_closed_is_replaced_not_an_error() {
    // Answers one request, then closes the connection shortly after.
    let server = RawServer::start(|mut tcp| async move {
        if read_request_head(&mut tcp).await.is_some() {
            let _ = tcp
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
                .await;
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    let p = server.port();
    let host = api_host(p);
    for _ in 0..3 {
        let r = get(&host, &format!("http://api.test:{p}/")).await.unwrap();
        assert_eq!(r.body, b"ok");
        // Let the close arrive before the next call.
        assert!(wait_until(OUTER, || host.idle_connections() == 0).await);
    }
    assert_eq!(server.accepted.load(Ordering::SeqCst), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pool_is_bounded_in_count_and_idle_time_and_can_be_off() {
    let server = http_server(|_| ok("x")).await;
    let p = server.port();
    // Off: every call its own connection, closed when the call ends.
    let host = request_host(
        allow_request(&format!("http://api.test:{p}/"), ""),
        api_test(),
        RequestConfig {
            pool_max_idle: 0,
            ..RequestConfig::default()
        },
    );
    for _ in 0..3 {
        get(&host, &format!("http://api.test:{p}/")).await.unwrap();
        assert_eq!(host.idle_connections(), 0);
    }
    assert_eq!(server.accepted(), 3);
    assert!(wait_until(OUTER, || server.closed.load(Ordering::SeqCst) == 3).await);

    // An idle timeout closes an unused connection on its own.
    let server = http_server(|_| ok("x")).await;
    let p = server.port();
    let host = request_host(
        allow_request(&format!("http://api.test:{p}/"), ""),
        api_test(),
        RequestConfig {
            pool_idle_timeout: Duration::from_millis(100),
            ..RequestConfig::default()
        },
    );
    get(&host, &format!("http://api.test:{p}/")).await.unwrap();
    assert_eq!(host.idle_connections(), 1);
    assert!(wait_until(OUTER, || server.closed.load(Ordering::SeqCst) == 1).await);
    assert_eq!(host.idle_connections(), 0);

    // At most `pool_max_idle` stay: 4 overlapping calls (the peer holds
    // each answer 200 ms), 4 connections, 2 kept, 2 closed.
    let slow = RawServer::start(|mut tcp| async move {
        while read_request_head(&mut tcp).await.is_some() {
            tokio::time::sleep(Duration::from_millis(200)).await;
            if tcp
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 1\r\n\r\nx")
                .await
                .is_err()
            {
                return;
            }
        }
    })
    .await;
    let p = slow.port();
    let host = Arc::new(request_host(
        allow_request(&format!("http://api.test:{p}/"), ""),
        api_test(),
        RequestConfig {
            pool_max_idle: 2,
            ..RequestConfig::default()
        },
    ));
    let calls: Vec<_> = (0..4)
        .map(|_| {
            let host = host.clone();
            tokio::spawn(async move { get(&host, &format!("http://api.test:{p}/")).await })
        })
        .collect();
    for c in calls {
        c.await.unwrap().unwrap();
    }
    assert_eq!(slow.accepted.load(Ordering::SeqCst), 4);
    assert_eq!(host.idle_connections(), 2);
    assert!(wait_until(OUTER, || slow.finished.load(Ordering::SeqCst) == 2).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http2_calls_share_one_connection_and_the_host_drop_closes_it() {
    let ca = Ca::new();
    let (chain, key) = ca.leaf("api.test");
    let server = https_server(chain, key, &[b"h2".as_slice()], |s| ok(s.target.clone())).await;
    let p = server.port();
    let host = Arc::new(request_host(
        allow_request(&format!("https://api.test:{p}/v1/"), ""),
        api_test(),
        RequestConfig {
            roots: ca.roots(),
            ..RequestConfig::default()
        },
    ));
    let first = get(&host, &format!("https://api.test:{p}/v1/first"))
        .await
        .unwrap();
    assert_eq!(first.version, "HTTP/2");
    let calls: Vec<_> = (0..8)
        .map(|i| {
            let host = host.clone();
            tokio::spawn(async move { get(&host, &format!("https://api.test:{p}/v1/{i}")).await })
        })
        .collect();
    for (i, c) in calls.into_iter().enumerate() {
        let r = c.await.unwrap().unwrap();
        assert_eq!(r.body, format!("/v1/{i}").as_bytes());
    }
    assert_eq!(server.accepted(), 1, "nine calls, one HTTP/2 connection");
    assert_eq!(host.idle_connections(), 1);
    drop(Arc::try_unwrap(host).ok().expect("no other holder"));
    assert!(wait_until(OUTER, || server.closed.load(Ordering::SeqCst) == 1).await);
}
