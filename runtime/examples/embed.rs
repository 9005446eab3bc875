//! Embedding the runtime: what a plugin host wires up, end to end on
//! loopback (docs/embedding.md walks through it).
//!
//! ```sh
//! cargo run -p netgrant-runtime --example embed
//! ```
//!
//! 1. Compile the plugin's manifest and the user's grant once, at
//!    enablement, into an [`Authorizer`] (here from inline TOML; a host
//!    would read `plugin.toml` / `grant.toml`, or load a reviewed IR with
//!    `load_policy`).
//! 2. Build one [`WebSocketHost`] and one [`RequestHost`] per plugin
//!    instance with a resolver and limits, and give both the host's own
//!    [`AuditSink`] (here: a channel the host drains and prints as JSON
//!    lines — the format `netgrant replay` reads).
//! 3. Install a `tracing` subscriber: the runtime's events (target
//!    `netgrant`) carry redacted URLs, codes and counts — never payloads.
//! 4. Hand the plugin connection handles and responses; its messages come
//!    back only as `recv` results, responses complete and bounded. Denials
//!    carry a stable code.
//! 5. Give the hosts a [`SecretStore`] for the credentials the grant binds:
//!    the plugin names one, the host injects its value and masks it in
//!    everything handed back.
//! 6. Shut the host down with the plugin instance: every connection is
//!    closed and every task ends.
//!
//! The example starts its own WebSocket echo server and HTTP server on
//! 127.0.0.1, resolves a made-up
//! name with a [`StaticResolver`] (no real DNS) and exits non-zero if
//! anything behaves otherwise.

use futures_util::{SinkExt, StreamExt};
use netgrant_policy::{compile, Authorizer, Grant, Manifest};
use netgrant_runtime::secrecy::SecretString;
use netgrant_runtime::{
    AuditRecord, AuditSink, HostConfig, Incoming, MemorySecretStore, OpenOptions, RequestConfig,
    RequestHost, RequestOptions, SecretRef, SecretStore, StaticResolver, WebSocketHost,
};
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;
use tokio::net::TcpListener;

type Error = Box<dyn std::error::Error + Send + Sync>;

/// The host's sink: records go to a channel the host drains on its own
/// schedule (a sink is called inline, so it must not block).
struct ChannelSink(Mutex<mpsc::Sender<AuditRecord>>);

impl AuditSink for ChannelSink {
    fn record(&self, record: &AuditRecord) {
        let _ = self.0.lock().unwrap().send(record.clone());
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    // 3. Runtime events on stderr, target `netgrant`.
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_target(true)
        .with_ansi(false)
        .init();

    let port = echo_server().await?;
    let http_port = http_server().await?;

    // 1. The policy: requested by the plugin, approved by the user.
    let manifest = format!(
        r#"
[plugin]
name = "echo-bridge"
version = "1.0.0"

[[host_api.websocket]]
url = "ws://localhost:{port}/"
reason = "Talk to the local echo service"

[[host_api.websocket]]
url = "ws://echo.local.test:{port}/"
reason = "The same service by name"

[[host_api.request]]
url = "http://localhost:{http_port}/v1/"
methods = ["GET"]
reason = "Fetch status"
credentials = [{{ name = "api-key", header = "X-Api-Key", reason = "The status API wants a key" }}]
"#
    );
    let grant = format!(
        r#"
plugin = "echo-bridge"

[[host_api.websocket]]
url = "ws://localhost:{port}/echo/"

[[host_api.websocket]]
url = "ws://echo.local.test:{port}/"

[[host_api.request]]
url = "http://localhost:{http_port}/v1/"
credentials = {{ api-key = "status/key" }}
"#
    );
    let manifest = Manifest::parse("plugin.toml", &manifest)
        .value
        .ok_or("manifest")?;
    let grant = Grant::parse("grant.toml", &grant).value.ok_or("grant")?;
    let policy = compile(&manifest, Some(&grant)).policy.ok_or("policy")?;
    let authorizer = Arc::new(Authorizer::new(&policy));

    // 2. One host of each kind per plugin instance, with the host's sink.
    let (tx, records) = mpsc::channel();
    let sink: Arc<dyn AuditSink> = Arc::new(ChannelSink(Mutex::new(tx)));
    let resolver = Arc::new(StaticResolver::new().with("echo.local.test", ["127.0.0.1".parse()?]));
    let host = WebSocketHost::new(
        authorizer.clone(),
        resolver.clone(),
        HostConfig {
            idle_timeout: Duration::from_secs(30),
            ..HostConfig::default()
        },
    )?
    .with_audit(sink.clone());
    // 5. The host's secret store (a vault, a keyring; here in memory).
    let secrets: Arc<dyn SecretStore> = Arc::new(MemorySecretStore::new().with(
        SecretRef::parse("status/key")?,
        SecretString::from("k-2f9c-live".to_owned()),
    ));
    let http = RequestHost::new(authorizer, resolver, RequestConfig::default())?
        .with_audit(sink)
        .with_secrets(secrets);

    // 4. The plugin's calls: a handle, messages in and out, close.
    let id = host
        .open(
            &format!("ws://localhost:{port}/echo/?token=secret"),
            OpenOptions::default(),
        )
        .await?;
    host.send_text(id, "hello").await?;
    match host.recv(id, Some(Duration::from_secs(5))).await? {
        Incoming::Text(t) if t == "hello" => println!("plugin received: {t}"),
        other => return Err(format!("unexpected {other:?}").into()),
    }
    host.close(id).await?;

    // Denied: not granted (only /echo/ is), and a name that resolves to
    // loopback, which only a localhost or IP target may reach.
    for (url, want) in [
        (format!("ws://localhost:{port}/admin"), "not_granted"),
        (
            format!("ws://echo.local.test:{port}/echo/"),
            "non_public_address",
        ),
    ] {
        match host.open(&url, OpenOptions::default()).await {
            Err(e) if e.code() == want => println!("denied {want}: {url}"),
            other => return Err(format!("{url}: expected {want}, got {other:?}").into()),
        }
    }

    // One-shot HTTP: a complete, bounded response; never a socket.
    let r = http
        .request(
            "GET",
            &format!("http://localhost:{http_port}/v1/status"),
            &[],
            Vec::new(),
            RequestOptions::default(),
        )
        .await?;
    println!(
        "plugin got HTTP {} with {} body bytes",
        r.status,
        r.body.len()
    );
    if r.status != 401 {
        return Err(format!("without the key: unexpected response {r:?}").into());
    }
    // With the credential the grant binds: the server gets the key and
    // echoes it; the plugin reads only the placeholder.
    let r = http
        .request(
            "GET",
            &format!("http://localhost:{http_port}/v1/status"),
            &[],
            Vec::new(),
            RequestOptions {
                credentials: vec!["api-key".into()],
                ..RequestOptions::default()
            },
        )
        .await?;
    let body = String::from_utf8_lossy(&r.body);
    println!("plugin got HTTP {}: {body}", r.status);
    if r.status != 200 || body != "up (key {{credential:api-key}})" {
        return Err(format!("unexpected response {r:?}").into());
    }
    match http
        .request(
            "POST",
            &format!("http://localhost:{http_port}/v1/status"),
            &[],
            Vec::new(),
            RequestOptions::default(),
        )
        .await
    {
        Err(e) if e.code() == "method_not_allowed" => println!("denied method_not_allowed: POST"),
        other => return Err(format!("POST: expected method_not_allowed, got {other:?}").into()),
    }

    // 6. With the plugin instance.
    host.shutdown().await;
    http.shutdown().await;
    if host.active_tasks() != 0 {
        return Err("tasks left running after shutdown".into());
    }

    // The audit records, as JSON lines (what `netgrant replay` reads).
    let records: Vec<AuditRecord> = records.try_iter().collect();
    for r in &records {
        println!("{}", serde_json::to_string(r)?);
    }
    let text = format!("{records:?}");
    if records.len() != 9
        || text.contains("secret")
        || text.contains("hello")
        || text.contains("k-2f9c-live")
    {
        return Err(format!("unexpected audit records: {text}").into());
    }
    Ok(())
}

/// A loopback HTTP/1.1 server: `401` without an `X-Api-Key`, else `up`
/// and (carelessly) the key it got.
async fn http_server() -> Result<u16, Error> {
    use http_body_util::Full;
    use hyper::body::Bytes;
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let port = listener.local_addr()?.port();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            tokio::spawn(async move {
                let service = hyper::service::service_fn(|req: hyper::Request<_>| async move {
                    let resp = match req.headers().get("x-api-key") {
                        None => hyper::Response::builder()
                            .status(401)
                            .body(Full::new(Bytes::from_static(b"no key"))),
                        Some(k) => hyper::Response::builder().body(Full::new(Bytes::from(
                            format!("up (key {})", k.to_str().unwrap_or("?")),
                        ))),
                    };
                    Ok::<_, hyper::http::Error>(resp.expect("a valid response"))
                });
                let io = hyper_util::rt::TokioIo::new(tcp);
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(io, service)
                    .await;
            });
        }
    });
    Ok(port)
}

/// A loopback WebSocket echo server (any path).
async fn echo_server() -> Result<u16, Error> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let port = listener.local_addr()?.port();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            tokio::spawn(async move {
                let Ok(mut ws) = tokio_tungstenite::accept_async(tcp).await else {
                    return;
                };
                while let Some(Ok(m)) = ws.next().await {
                    if m.is_text() || m.is_binary() {
                        let _ = ws.send(m).await;
                    }
                }
            });
        }
    });
    Ok(port)
}
