//! Allow and deny through a real loopback WebSocket peer.

mod support;
use netgrant_runtime::{HostConfig, Incoming, OpenOptions, StaticResolver};
use std::time::Duration;
use support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn allowed_target_echoes_and_counts() {
    let server = EchoServer::start().await;
    let port = server.addr.port();
    let url = format!("ws://echo.test:{port}/");
    let h = host(
        allow_ws(&url),
        StaticResolver::new().with("echo.test", ["127.0.0.1".parse().unwrap()]),
        HostConfig::default(),
    );
    // echo.test resolves to loopback, which a domain target does not cover...
    let err = h.open(&url, OpenOptions::default()).await.unwrap_err();
    assert_eq!(err.code(), "non_public_address");
    assert_eq!(
        server.accepted(),
        0,
        "a denied open must not touch the peer"
    );

    // ...while a localhost target is dialed as loopback without DNS.
    let url = format!("ws://localhost:{port}/chat?token=s3cret");
    let h = host(
        allow_ws(&format!("ws://localhost:{port}/")),
        StaticResolver::new(),
        HostConfig::default(),
    );
    let id = h
        .open(
            &url,
            OpenOptions {
                subprotocols: vec!["json".into()],
                ..OpenOptions::default()
            },
        )
        .await
        .unwrap();
    h.send_text(id, "hello").await.unwrap();
    h.send_binary(id, vec![1u8, 2, 3]).await.unwrap();
    assert_eq!(
        h.recv(id, Some(Duration::from_secs(5))).await.unwrap(),
        Incoming::Text("hello".into())
    );
    assert_eq!(
        h.recv(id, Some(Duration::from_secs(5))).await.unwrap(),
        Incoming::Binary(vec![1, 2, 3])
    );
    assert_eq!(
        h.recv(id, Some(Duration::from_millis(100))).await.unwrap(),
        Incoming::TimedOut
    );
    let st = h.status(id).unwrap();
    assert_eq!(
        (st.messages_in, st.messages_out, st.bytes_in, st.bytes_out),
        (2, 2, 8, 8)
    );
    assert_eq!(st.subprotocol.as_deref(), Some("json"));
    assert!(!st.url.contains("s3cret"), "{}", st.url);
    assert_eq!(st.remote.ip().to_string(), "127.0.0.1");
    h.close(id).await.unwrap();
    assert_eq!(h.status(id).unwrap_err().code(), "unknown_connection");
    h.shutdown().await;
    assert_eq!(h.active_tasks(), 0);
    assert_eq!(h.open_connections(), 0);
}

/// A host's task that awaits `open` carries that future in its own state
/// for as long as the task lives. Connecting (TCP, TLS, the handshake) is
/// ~18 KB of it and is boxed, so the caller keeps only the rest.
#[test]
fn an_open_future_stays_small() {
    let h = host(
        allow_ws("ws://localhost:1/"),
        StaticResolver::new(),
        HostConfig::default(),
    );
    let open = h.open("ws://localhost:1/", OpenOptions::default());
    let size = std::mem::size_of_val(&open);
    assert!(size < 4096, "an open future is {size} bytes");
}
