//! Test support: real WebSocket peers on loopback and policy helpers.
#![allow(dead_code)]

use futures_util::{SinkExt, StreamExt};
use netgrant_policy::{compile, Authorizer, Grant, Manifest};
use netgrant_runtime::{HostConfig, StaticResolver, WebSocketHost};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio_tungstenite::tungstenite::Message;

/// Compiles a manifest + grant into an authorizer (panics on invalid input).
pub fn authorizer(manifest: &str, grant: &str) -> Arc<Authorizer> {
    let m = Manifest::parse("plugin.toml", manifest);
    let m = m.value.unwrap_or_else(|| panic!("{:?}", m.diagnostics));
    let g = Grant::parse("grant.toml", grant);
    let g = g.value.unwrap_or_else(|| panic!("{:?}", g.diagnostics));
    let c = compile(&m, Some(&g));
    Arc::new(Authorizer::new(
        &c.policy.unwrap_or_else(|| panic!("{:?}", c.diagnostics)),
    ))
}

/// A manifest + grant that request and grant `url` (websocket).
pub fn allow_ws(url: &str) -> Arc<Authorizer> {
    authorizer(
        &format!("[plugin]\nname = \"t\"\nversion = \"1.0.0\"\n[[host_api.websocket]]\nurl = \"{url}\"\nsubprotocols = [\"json\"]\n"),
        &format!("plugin = \"t\"\n[[host_api.websocket]]\nurl = \"{url}\"\n"),
    )
}

/// A host with a static resolver.
pub fn host(authz: Arc<Authorizer>, resolver: StaticResolver, cfg: HostConfig) -> WebSocketHost {
    WebSocketHost::new(authz, Arc::new(resolver), cfg).unwrap()
}

/// An echo server on 127.0.0.1 that counts accepted TCP connections.
pub struct EchoServer {
    pub addr: SocketAddr,
    pub accepted: Arc<AtomicUsize>,
    pub closed: Arc<AtomicUsize>,
}

impl EchoServer {
    pub async fn start() -> EchoServer {
        Self::start_on("127.0.0.1:0").await
    }

    pub async fn start_on(bind: &str) -> EchoServer {
        let listener = TcpListener::bind(bind).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let accepted = Arc::new(AtomicUsize::new(0));
        let closed = Arc::new(AtomicUsize::new(0));
        let (a, c) = (accepted.clone(), closed.clone());
        tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    return;
                };
                a.fetch_add(1, Ordering::SeqCst);
                let c = c.clone();
                tokio::spawn(async move {
                    let cb = |req: &tokio_tungstenite::tungstenite::handshake::server::Request,
                              mut resp: tokio_tungstenite::tungstenite::handshake::server::Response| {
                        if let Some(p) = req.headers().get("sec-websocket-protocol") {
                            if p.to_str().unwrap_or("").split(',').any(|x| x.trim() == "json") {
                                resp.headers_mut().insert("sec-websocket-protocol", "json".parse().unwrap());
                            }
                        }
                        Ok(resp)
                    };
                    if let Ok(mut ws) = tokio_tungstenite::accept_hdr_async(tcp, cb).await {
                        while let Some(Ok(m)) = ws.next().await {
                            match m {
                                Message::Text(_) | Message::Binary(_) => {
                                    if ws.send(m).await.is_err() {
                                        break;
                                    }
                                }
                                Message::Close(_) => break,
                                _ => {}
                            }
                        }
                    }
                    c.fetch_add(1, Ordering::SeqCst);
                });
            }
        });
        EchoServer {
            addr,
            accepted,
            closed,
        }
    }

    pub fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }
}
