//! `RequestGuard::check`: the one-shot HTTP path. No socket is opened here;
//! the guard only decides and hands back the checked addresses.

mod support;
use netgrant_runtime::{HostConfig, RequestGuard, ResolveFuture, Resolver, StaticResolver};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use support::*;

fn guard(resolver: impl Resolver, cfg: HostConfig) -> RequestGuard {
    let t = req_entry(
        "https://api.example.com/v1/",
        "methods = [\"GET\", \"POST\"]\nheaders = [\"X-Trace\"]",
    );
    RequestGuard::new(policy(&t, &t), Arc::new(resolver), cfg)
}

fn public() -> StaticResolver {
    StaticResolver::new().with(
        "api.example.com",
        [
            ip("93.184.215.14"),
            ip("2606:2800:21f:cb07:6820:80da:af6b:8b2c"),
        ],
    )
}

fn h(k: &str, v: &str) -> Vec<(String, String)> {
    vec![(k.to_string(), v.to_string())]
}

#[tokio::test]
async fn streaming_and_websocket_attempts_are_wrong_capability() {
    let g = guard(public(), HostConfig::default());
    let url = "https://api.example.com/v1/x";
    for (what, method, u, headers) in [
        ("wss URL", "GET", "wss://api.example.com/v1/x", vec![]),
        ("ws URL", "GET", "ws://api.example.com/v1/x", vec![]),
        ("Upgrade header", "GET", url, h("Upgrade", "websocket")),
        (
            "Connection: upgrade",
            "GET",
            url,
            h("Connection", "keep-alive, Upgrade"),
        ),
        (
            "Sec-WebSocket-Key",
            "GET",
            url,
            h("Sec-WebSocket-Key", "AAAAAAAAAAAAAAAAAAAAAA=="),
        ),
        (
            "Accept: text/event-stream",
            "GET",
            url,
            h("Accept", "text/event-stream"),
        ),
        (
            "Accept: event-stream among others",
            "GET",
            url,
            h("accept", "application/json, Text/Event-Stream;q=0.9"),
        ),
    ] {
        let err = g.check(method, u, &headers).await.expect_err(what);
        assert_eq!(err.code(), "wrong_capability", "{what}: {err}");
    }
}

#[tokio::test]
async fn allowed_request_returns_exactly_the_checked_addresses() {
    let g = guard(public(), HostConfig::default());
    // Uppercase, trailing dot, default port spelled out: all normalize.
    for url in [
        "https://api.example.com/v1/items?page=2",
        "https://API.Example.COM./v1/items",
        "https://api.example.com:443/v1/items",
    ] {
        let ok = g
            .check("GET", url, &h("X-Trace", "1"))
            .await
            .unwrap_or_else(|e| panic!("{url}: {e}"));
        assert_eq!(ok.server_name(), "api.example.com", "{url}");
        let want: Vec<SocketAddr> = vec![
            "93.184.215.14:443".parse().unwrap(),
            "[2606:2800:21f:cb07:6820:80da:af6b:8b2c]:443"
                .parse()
                .unwrap(),
        ];
        assert_eq!(ok.addresses(), want, "{url}");
        assert_eq!(ok.decision().addresses, want);
        assert!(ok.decision().addresses_checked);
        assert!(ok.decision().is_allowed());
    }
    // An IPv4-mapped public answer comes back canonical (the embedded IPv4).
    let g = guard(
        StaticResolver::new().with("api.example.com", [ip("::ffff:93.184.215.14")]),
        HostConfig::default(),
    );
    let ok = g
        .check("POST", "https://api.example.com/v1/", &[])
        .await
        .unwrap();
    assert_eq!(
        ok.addresses(),
        vec!["93.184.215.14:443".parse::<SocketAddr>().unwrap()]
    );
}

#[tokio::test]
async fn idn_host_is_returned_as_a_label() {
    let t = req_entry("https://bücher.example/", "methods = [\"GET\"]");
    let g = RequestGuard::new(
        policy(&t, &t),
        Arc::new(StaticResolver::new().with("xn--bcher-kva.example", [ip("93.184.215.14")])),
        HostConfig::default(),
    );
    let ok = g
        .check("GET", "https://BÜCHER.example./a", &[])
        .await
        .unwrap();
    assert_eq!(ok.server_name(), "xn--bcher-kva.example");
    // The request target is built once, by the authorizer: normalized host,
    // default port dropped, no trailing dot.
    assert_eq!(ok.request_url(), "https://xn--bcher-kva.example/a");
    assert_eq!(ok.port(), 443);
    assert!(ok.is_tls());
    assert_eq!(ok.rule(), "request:https://xn--bcher-kva.example/");
    assert!(
        ok.policy_digest().starts_with("sha256:"),
        "{}",
        ok.policy_digest()
    );
    assert_eq!(
        ok.addresses(),
        vec!["93.184.215.14:443".parse::<SocketAddr>().unwrap()]
    );
}

/// What, resolver, method, URL, headers, expected code.
type Case = (
    &'static str,
    StaticResolver,
    &'static str,
    &'static str,
    Vec<(String, String)>,
    &'static str,
);

#[tokio::test]
async fn bad_answers_and_requests_deny() {
    let cases: Vec<Case> = vec![
        (
            "mixed public + private answers",
            StaticResolver::new().with("api.example.com", [ip("93.184.215.14"), ip("10.0.0.7")]),
            "GET",
            "https://api.example.com/v1/",
            vec![],
            "non_public_address",
        ),
        (
            "mapped loopback answer",
            StaticResolver::new().with(
                "api.example.com",
                [ip("93.184.215.14"), ip("::ffff:127.0.0.1")],
            ),
            "GET",
            "https://api.example.com/v1/",
            vec![],
            "non_public_address",
        ),
        (
            "metadata endpoint among answers",
            StaticResolver::new().with(
                "api.example.com",
                [ip("93.184.215.14"), ip("169.254.169.254")],
            ),
            "GET",
            "https://api.example.com/v1/",
            vec![],
            "forbidden_address",
        ),
        (
            "zero answers",
            StaticResolver::new(),
            "GET",
            "https://api.example.com/v1/",
            vec![],
            "resolution_failed",
        ),
        (
            "method",
            public(),
            "DELETE",
            "https://api.example.com/v1/",
            vec![],
            "method_not_allowed",
        ),
        (
            "path",
            public(),
            "GET",
            "https://api.example.com/v2/",
            vec![],
            "not_requested",
        ),
        (
            "scheme",
            public(),
            "GET",
            "http://api.example.com/v1/",
            vec![],
            "not_requested",
        ),
        (
            "authorization",
            public(),
            "GET",
            "https://api.example.com/v1/",
            h("Authorization", "Bearer x"),
            "forbidden_header",
        ),
        (
            "undeclared header",
            public(),
            "GET",
            "https://api.example.com/v1/",
            h("X-Other", "1"),
            "forbidden_header",
        ),
        (
            "userinfo",
            public(),
            "GET",
            "https://u:p@api.example.com/v1/",
            vec![],
            "credentials_in_url",
        ),
    ];
    for (what, r, method, url, headers, code) in cases {
        let g = guard(r, HostConfig::default());
        let err = g.check(method, url, &headers).await.expect_err(what);
        assert_eq!(err.code(), code, "{what}: {err}");
        assert!(
            err.decision
                .as_ref()
                .is_some_and(|d| d.addresses.is_empty()),
            "{what}: a denial carries no address"
        );
    }
}

/// A resolver that never answers; the guard must give up at its DNS deadline
/// (the resolver future is dropped: cancellable by contract).
struct Never(Arc<std::sync::atomic::AtomicBool>);
struct DropFlag(Arc<std::sync::atomic::AtomicBool>);
impl Drop for DropFlag {
    fn drop(&mut self) {
        self.0.store(true, std::sync::atomic::Ordering::SeqCst);
    }
}
impl Resolver for Never {
    fn resolve<'a>(&'a self, _host: &'a str) -> ResolveFuture<'a> {
        let flag = DropFlag(self.0.clone());
        Box::pin(async move {
            let _flag = flag;
            std::future::pending::<()>().await;
            unreachable!()
        })
    }
}

struct Failing;
impl Resolver for Failing {
    fn resolve<'a>(&'a self, _host: &'a str) -> ResolveFuture<'a> {
        Box::pin(async { Err(std::io::Error::other("SERVFAIL")) })
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dns_deadline_and_resolver_errors() {
    let dropped = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let bound = Duration::from_millis(300);
    let g = guard(
        Never(dropped.clone()),
        HostConfig {
            dns_timeout: bound,
            ..HostConfig::default()
        },
    );
    let t0 = Instant::now();
    let err = tokio::time::timeout(OUTER, g.check("GET", "https://api.example.com/v1/", &[]))
        .await
        .expect("the guard must honor its DNS deadline")
        .unwrap_err();
    let took = t0.elapsed();
    assert_eq!(err.code(), "timeout", "{err}");
    assert!(took >= bound && took < bound + SLACK, "{took:?}");
    assert!(
        dropped.load(std::sync::atomic::Ordering::SeqCst),
        "the resolution future is dropped at the deadline"
    );

    let g = guard(Failing, HostConfig::default());
    let err = g
        .check("GET", "https://api.example.com/v1/", &[])
        .await
        .unwrap_err();
    assert_eq!(err.code(), "resolution_failed", "{err}");
}
