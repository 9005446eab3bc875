//! A plugin's one-shot HTTP through `RequestHost`, end to end on loopback.
//!
//! ```sh
//! cargo run -p netgrant-runtime --example request_host
//! ```
//!
//! Embedding, in four steps: compile (or load) the policy into an
//! [`Authorizer`]; pick a [`Resolver`] (`HickoryResolver::from_system()` in
//! production; here a [`StaticResolver`], so no real name is resolved); make
//! **one `RequestHost` per plugin instance** with its [`RequestConfig`];
//! hand the plugin's `request(method, url, headers, body)` calls to it and
//! give the plugin the [`Response`] (status, filtered headers, body) or the
//! error's stable `code()`. Call `shutdown()` when the instance goes away.
//!
//! The host decides nothing itself and makes no HTTP request of its own: the
//! policy authorizes, `RequestHost` resolves once, checks every answer,
//! connects to a checked address only, follows no redirect and bounds
//! everything. This example starts a tiny HTTP server on 127.0.0.1, sends an
//! allowed GET and POST, shows a redirect returned as it is, a response over
//! the body bound and several denials with their codes, and exits non-zero
//! if anything behaves otherwise.

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use netgrant_policy::{compile, Authorizer, Grant, Manifest};
use netgrant_runtime::{
    RequestConfig, RequestHost, RequestOptions, Resolver, Response, StaticResolver,
};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use tokio::net::TcpListener;

type Error = Box<dyn std::error::Error + Send + Sync>;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    let (server, hits) = start_server().await?;
    let port = server.port();

    // The plugin's manifest and the user's grant. `api.local.test` resolves
    // to loopback, which a domain target reaches only through `networks`.
    let manifest = format!(
        r#"
[plugin]
name = "request-host-example"
version = "1.0.0"

[[host_api.request]]
url = "http://api.local.test:{port}/v1/"
methods = ["GET", "POST"]
headers = ["X-Trace"]
networks = ["127.0.0.1/32"]
reason = "Talk to the local example API"
"#
    );
    let grant = format!(
        r#"
plugin = "request-host-example"

[[host_api.request]]
url = "http://api.local.test:{port}/v1/"
methods = ["GET", "POST"]
"#
    );
    let authz = authorizer(&manifest, &grant)?;
    let resolver: Arc<dyn Resolver> =
        Arc::new(StaticResolver::new().with("api.local.test", [server.ip()]));
    let config = RequestConfig {
        max_response_body_bytes: 64 * 1024,
        ..RequestConfig::default()
    };
    let host = RequestHost::new(authz, resolver, config)?;
    let base = format!("http://api.local.test:{port}/v1");
    let none: &[(String, String)] = &[];

    // 1. Allowed: the response comes back whole, cookies filtered out.
    let trace = [("X-Trace".to_string(), "example-1".to_string())];
    let r = host
        .request(
            "GET",
            &format!("{base}/hello"),
            &trace,
            Vec::new(),
            RequestOptions::default(),
        )
        .await?;
    show("GET /v1/hello", &r);
    check(r.status == 200 && r.header("set-cookie").is_none(), "GET")?;
    let r = host
        .request(
            "POST",
            &format!("{base}/echo"),
            none,
            b"ping".to_vec(),
            RequestOptions::default(),
        )
        .await?;
    show("POST /v1/echo", &r);
    check(r.body.starts_with(b"POST /v1/echo: ping"), "POST")?;

    // 2. A redirect is returned as it is: following it would be a new
    //    request, authorized again (and this one is not allowed).
    let r = host
        .request(
            "GET",
            &format!("{base}/moved"),
            none,
            Vec::new(),
            RequestOptions::default(),
        )
        .await?;
    show("GET /v1/moved", &r);
    check(r.status == 302, "redirect")?;

    // 3. Over the response body bound: an error, never a truncated body.
    let e = host
        .request(
            "GET",
            &format!("{base}/big"),
            none,
            Vec::new(),
            RequestOptions::default(),
        )
        .await
        .unwrap_err();
    println!("error {}: {}", e.code(), e.message);
    check(e.code() == "message_too_large", "bound")?;

    // 4. Denied: nothing is connected for any of these.
    let before = hits.load(Ordering::SeqCst);
    for (method, url, headers, want) in [
        ("DELETE", format!("{base}/x"), vec![], "method_not_allowed"),
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
            format!("{base}/x"),
            vec![("Cookie".into(), "a=1".into())],
            "forbidden_header",
        ),
        (
            "GET",
            format!("{base}/x"),
            vec![("Upgrade".into(), "websocket".into())],
            "wrong_capability",
        ),
    ] {
        let e = host
            .request(
                method,
                &url,
                &headers,
                Vec::new(),
                RequestOptions::default(),
            )
            .await
            .unwrap_err();
        println!("deny  {method} {}: {}", e.code(), e.message);
        check(e.code() == want, want)?;
    }
    check(
        hits.load(Ordering::SeqCst) == before,
        "denied requests reached the server",
    )?;

    host.shutdown().await;
    println!("ok: allowed requests answered, the redirect not followed, every denial sent nothing");
    Ok(())
}

fn show(what: &str, r: &Response) {
    let names: Vec<&str> = r.headers.iter().map(|(k, _)| k.as_str()).collect();
    println!(
        "allow {what} -> {} {} via {} ({} body bytes; headers {names:?})",
        r.version,
        r.status,
        r.remote,
        r.body.len()
    );
}

fn check(ok: bool, what: &str) -> Result<(), Error> {
    if ok {
        Ok(())
    } else {
        Err(format!("unexpected behaviour: {what}").into())
    }
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

/// An HTTP/1.1 server on 127.0.0.1 counting the requests that reach it.
async fn start_server() -> Result<(SocketAddr, Arc<AtomicUsize>), Error> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let hits = Arc::new(AtomicUsize::new(0));
    let counter = hits.clone();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let counter = counter.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(
                    move |req: hyper::Request<hyper::body::Incoming>| {
                        counter.fetch_add(1, Ordering::SeqCst);
                        async move {
                            let (parts, body) = req.into_parts();
                            let body = body
                                .collect()
                                .await
                                .map(|b| b.to_bytes())
                                .unwrap_or_default();
                            let mut resp = hyper::Response::builder()
                                .header("set-cookie", "session=kept-from-the-plugin");
                            let out: Bytes = match parts.uri.path() {
                                "/v1/moved" => {
                                    resp = resp.status(302).header("location", "http://10.0.0.1/");
                                    Bytes::new()
                                }
                                "/v1/big" => Bytes::from(vec![b'x'; 100_000]),
                                p => {
                                    let mut t = format!("{} {p}: ", parts.method).into_bytes();
                                    t.extend_from_slice(&body);
                                    Bytes::from(t)
                                }
                            };
                            Ok::<_, Infallible>(resp.body(Full::new(out)).unwrap())
                        }
                    },
                );
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(tcp), service)
                    .await;
            });
        }
    });
    Ok((addr, hits))
}
