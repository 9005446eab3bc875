//! The request-guard contract, end to end on loopback.
//!
//! ```sh
//! cargo run -p netgrant-runtime --example request_guard
//! ```
//!
//! A host that lets a plugin make one-shot HTTP requests (`host_api.request`)
//! calls [`RequestGuard::check`] with the plugin's method, URL and headers
//! before its own HTTP client sends anything:
//!
//! * **Deny**: the error's `code()` is the stable reason (`not_requested`,
//!   `method_not_allowed`, `forbidden_header`, `non_public_address`, …) and
//!   nothing is sent. Websocket and streaming attempts are `wrong_capability`.
//! * **Allow**: [`Guarded`] carries the checked socket addresses and the
//!   normalized host. The host's client must
//!   1. connect to exactly `guarded.addresses` (in order, first that
//!      accepts) — never resolve the name again, so DNS rebinding cannot slip
//!      between the check and the connection;
//!   2. use `guarded.host` as the TLS server name and in the `Host` header
//!      (with the port when it is not the scheme's default);
//!   3. follow no redirects (a redirect is a new request that must pass the
//!      guard again) and ignore proxy environment variables;
//!   4. send only the headers that were checked.
//!
//! This example compiles a manifest + grant in code, resolves the made-up
//! name `api.local.test` with a [`StaticResolver`] (no real DNS), starts a
//! tiny HTTP/1.1 server on 127.0.0.1, sends one allowed request over a
//! `TcpStream` opened to `guarded.addresses` with hyper's connection-level
//! client (no pool, no resolver, no redirects), then shows denied checks with
//! their codes. It exits non-zero if anything behaves otherwise.

use http_body_util::{BodyExt, Empty, Full};
use hyper::body::Bytes;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use netgrant_policy::{compile, Authorizer, Grant, Manifest};
use netgrant_runtime::{Guarded, HostConfig, RequestGuard, StaticResolver};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use tokio::net::{TcpListener, TcpStream};

type Error = Box<dyn std::error::Error + Send + Sync>;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    // A tiny local HTTP server: it counts the requests that reach it.
    let (server, hits) = start_server().await?;
    let port = server.port();

    // The plugin's manifest and the user's grant. `api.local.test` resolves
    // to loopback, which a domain target reaches only through `networks`.
    let manifest = format!(
        r#"
[plugin]
name = "request-guard-example"
version = "1.0.0"

[[host_api.request]]
url = "http://api.local.test:{port}/v1/"
methods = ["GET", "POST"]
networks = ["127.0.0.1/32"]
reason = "Talk to the local example API"
"#
    );
    let grant = format!(
        r#"
plugin = "request-guard-example"

[[host_api.request]]
url = "http://api.local.test:{port}/v1/"
methods = ["GET"]
"#
    );
    let authz = authorizer(&manifest, &grant)?;
    let resolver = StaticResolver::new().with("api.local.test", [server.ip()]);
    let guard = RequestGuard::new(authz.clone(), Arc::new(resolver), HostConfig::default());

    // 1. Allowed: check, then connect to exactly the checked address.
    let url = format!("http://api.local.test:{port}/v1/x");
    let guarded = guard.check("GET", &url, &[]).await?;
    println!(
        "allow {} {} -> connect to {:?} (rule {})",
        guarded.decision().code,
        guarded.decision().url(),
        guarded.addresses(),
        guarded.decision().rule().unwrap_or("?")
    );
    let (status, body) = send_get(&guarded, port, "/v1/x").await?;
    println!("  response {status}: {body}");
    assert_eq!(status, 200);
    assert_eq!(hits.load(Ordering::SeqCst), 1);

    // 2. Denied: nothing is sent for any of these.
    let header = |k: &str, v: &str| vec![(k.to_string(), v.to_string())];
    let denied = [
        ("POST", url.clone(), vec![], "method_not_allowed"),
        (
            "GET",
            format!("http://api.local.test:{port}/admin"),
            vec![],
            "not_requested",
        ),
        (
            "GET",
            format!("http://127.0.0.1:{port}/v1/x"),
            vec![],
            "not_requested",
        ),
        (
            "GET",
            url.clone(),
            header("Authorization", "Bearer s3cret"),
            "forbidden_header",
        ),
        (
            "GET",
            url.clone(),
            header("Upgrade", "websocket"),
            "wrong_capability",
        ),
        (
            "GET",
            format!("http://api.local.test:{port}/v1/..%2Fadmin"),
            vec![],
            "ambiguous_path",
        ),
    ];
    for (method, url, headers, want) in denied {
        match guard.check(method, &url, &headers).await {
            Ok(g) => return Err(format!("{method} {url} was allowed: {g:?}").into()),
            Err(e) => {
                println!("deny  {method} {}: {}", e.code(), e.message);
                assert_eq!(e.code(), want);
            }
        }
    }
    // A name whose answer the target does not cover (no `networks` match).
    let other = StaticResolver::new().with("api.local.test", ["10.1.2.3".parse()?]);
    let guard2 = RequestGuard::new(authz, Arc::new(other), HostConfig::default());
    let e = guard2.check("GET", &url, &[]).await.unwrap_err();
    println!("deny  GET (answer 10.1.2.3) {}: {}", e.code(), e.message);
    assert_eq!(e.code(), "non_public_address");

    assert_eq!(
        hits.load(Ordering::SeqCst),
        1,
        "denied requests must not reach the server"
    );
    println!("ok: one allowed request reached the server, every denied one did not");
    Ok(())
}

/// Compiles manifest + grant, failing on any diagnostic error.
fn authorizer(manifest: &str, grant: &str) -> Result<Arc<Authorizer>, Error> {
    let m = Manifest::parse("plugin.toml", manifest);
    let m = m.value.ok_or_else(|| format!("{:?}", m.diagnostics))?;
    let g = Grant::parse("grant.toml", grant);
    let g = g.value.ok_or_else(|| format!("{:?}", g.diagnostics))?;
    let c = compile(&m, Some(&g));
    if c.diagnostics.iter().any(|d| d.severity().is_error()) {
        return Err(format!("{:?}", c.diagnostics).into());
    }
    let policy = c.policy.ok_or("no policy")?;
    Ok(Arc::new(Authorizer::new(&policy)))
}

/// The host's HTTP client side of the contract: TCP to the checked
/// addresses only, `Host` from the guard, one request, no redirects.
async fn send_get(g: &Guarded, port: u16, path: &str) -> Result<(u16, String), Error> {
    let mut tcp = None;
    for addr in g.addresses() {
        if let Ok(s) = TcpStream::connect(addr).await {
            tcp = Some(s);
            break;
        }
    }
    let tcp = tcp.ok_or("no checked address accepted a connection")?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp)).await?;
    let conn = tokio::spawn(conn);
    let req = Request::get(path)
        .header(hyper::header::HOST, format!("{}:{port}", g.server_name()))
        .body(Empty::<Bytes>::new())?;
    let resp = sender.send_request(req).await?;
    let status = resp.status().as_u16();
    // A 3xx here would be returned as is: the client never follows it.
    let body = resp.into_body().collect().await?.to_bytes();
    drop(sender);
    let _ = conn.await;
    Ok((status, String::from_utf8_lossy(&body).into_owned()))
}

/// An HTTP/1.1 server on 127.0.0.1 that answers every request with the
/// `Host` it was sent, counting requests.
async fn start_server() -> Result<(SocketAddr, Arc<AtomicUsize>), Error> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let hits = Arc::new(AtomicUsize::new(0));
    let counter = hits.clone();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let counter = counter.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |req: Request<_>| {
                    counter.fetch_add(1, Ordering::SeqCst);
                    let host = req
                        .headers()
                        .get(hyper::header::HOST)
                        .and_then(|h| h.to_str().ok())
                        .unwrap_or("")
                        .to_string();
                    let text = format!("{} {} (Host: {host})", req.method(), req.uri());
                    async move { Ok::<_, Infallible>(Response::new(Full::new(Bytes::from(text)))) }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(tcp), service)
                    .await;
            });
        }
    });
    Ok((addr, hits))
}
