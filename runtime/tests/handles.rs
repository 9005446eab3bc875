//! Connection handles: opaque, host-scoped, never reused.

mod support;
use netgrant_runtime::{HostConfig, Incoming, OpenOptions, StaticResolver};
use std::collections::HashSet;
use std::time::Duration;
use support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_handle_is_valid_only_on_its_host() {
    let server = EchoServer::start().await;
    let p = server.addr.port();
    let url = format!("ws://localhost:{p}/");
    let a = host(
        allow_localhost(p),
        StaticResolver::new(),
        HostConfig::default(),
    );
    let b = host(
        allow_localhost(p),
        StaticResolver::new(),
        HostConfig::default(),
    );
    let ia = a.open(&url, OpenOptions::default()).await.unwrap();
    let ib = b.open(&url, OpenOptions::default()).await.unwrap();
    assert_ne!(ia, ib);

    // Every operation on b with a's handle is unknown_connection, and a's
    // connection is untouched by the attempts.
    assert_eq!(b.status(ia).unwrap_err().code(), "unknown_connection");
    assert_eq!(
        b.send_text(ia, "x").await.unwrap_err().code(),
        "unknown_connection"
    );
    assert_eq!(
        b.send_binary(ia, vec![1]).await.unwrap_err().code(),
        "unknown_connection"
    );
    assert_eq!(
        b.recv(ia, Some(Duration::from_millis(10)))
            .await
            .unwrap_err()
            .code(),
        "unknown_connection"
    );
    assert_eq!(b.close(ia).await.unwrap_err().code(), "unknown_connection");
    a.send_text(ia, "still mine").await.unwrap();
    assert_eq!(
        a.recv(ia, Some(OUTER)).await.unwrap(),
        Incoming::Text("still mine".into())
    );
    assert_eq!(a.status(ia).unwrap().messages_out, 1);
    assert_eq!(b.status(ib).unwrap().messages_out, 0);
    a.shutdown().await;
    b.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closed_handle_is_unknown() {
    let server = EchoServer::start().await;
    let p = server.addr.port();
    let (h, id) = open_local(p, HostConfig::default()).await;
    h.close(id).await.unwrap();
    assert_eq!(h.status(id).unwrap_err().code(), "unknown_connection");
    assert_eq!(
        h.send_text(id, "x").await.unwrap_err().code(),
        "unknown_connection"
    );
    assert_eq!(
        h.recv(id, Some(Duration::from_millis(10)))
            .await
            .unwrap_err()
            .code(),
        "unknown_connection"
    );
    assert_eq!(h.close(id).await.unwrap_err().code(), "unknown_connection");
    assert!(
        wait_until(OUTER, || server
            .closed
            .load(std::sync::atomic::Ordering::SeqCst)
            == 1)
        .await
    );

    // After shutdown every handle is unknown too, and opening is refused.
    let id = h
        .open(&format!("ws://localhost:{p}/"), OpenOptions::default())
        .await
        .unwrap();
    h.shutdown().await;
    assert_eq!(h.status(id).unwrap_err().code(), "unknown_connection");
    let err = h
        .open(&format!("ws://localhost:{p}/"), OpenOptions::default())
        .await
        .unwrap_err();
    assert_eq!(err.code(), "shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handles_are_never_reused() {
    let server = EchoServer::start().await;
    let p = server.addr.port();
    let url = format!("ws://localhost:{p}/");
    let a = host(
        allow_localhost(p),
        StaticResolver::new(),
        HostConfig::default(),
    );
    let b = host(
        allow_localhost(p),
        StaticResolver::new(),
        HostConfig::default(),
    );
    let mut seen = HashSet::new();
    let mut shown = HashSet::new();
    for i in 0..150 {
        let h = if i % 3 == 0 { &b } else { &a };
        let id = h.open(&url, OpenOptions::default()).await.unwrap();
        assert!(seen.insert(id), "handle {id} reused at open {i}");
        assert!(shown.insert(id.to_string()), "display {id} reused");
        h.close(id).await.unwrap();
    }
    // A fresh host starts its own sequence yet never collides with another host's.
    let c = host(
        allow_localhost(p),
        StaticResolver::new(),
        HostConfig::default(),
    );
    let id = c.open(&url, OpenOptions::default()).await.unwrap();
    assert!(seen.insert(id), "a new host issued an existing handle {id}");
    assert_eq!(a.status(id).unwrap_err().code(), "unknown_connection");
    c.shutdown().await;
}

/// A connection that ends on its own (here the peer closes it at once)
/// stays readable until the plugin closes it: `recv` says how it closed,
/// `status` keeps its record. The 64 that ended last are kept; older ones
/// are forgotten, so a plugin that never closes cannot grow the table.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_that_ended_stay_readable_up_to_64() {
    let server = closing_peer().await;
    let (h, url) = local_host(server.port());
    let mut ids = Vec::new();
    for _ in 0..70 {
        ids.push(h.open(&url, OpenOptions::default()).await.unwrap());
        // Each ends before the next opens, in order.
        assert!(wait_until(OUTER, || h.active_tasks() == 0).await);
    }
    // Pruning runs when a connection opens, so 64 or 65 are kept: the
    // 70th may already have ended when its own open pruned (the peer
    // closes at once), and then the 6th is forgotten too.
    let (forgotten, rest) = ids.split_at(5);
    let (either, kept) = rest.split_at(1);
    for &id in forgotten {
        assert_eq!(h.status(id).unwrap_err().code(), "unknown_connection");
    }
    for &id in kept {
        let st = h.status(id).unwrap();
        assert_eq!(st.close.as_ref().map(|c| c.0), Some(1005), "{st:?}");
    }
    let _ = h.status(either[0]);
    // The newest one reads as closed, and closing it forgets it.
    let last = *ids.last().unwrap();
    match h.recv(last, Some(Duration::from_secs(1))).await.unwrap() {
        Incoming::Closed { code, .. } => assert_eq!(code, 1005),
        other => panic!("{other:?}"),
    }
    h.close(last).await.unwrap();
    assert_eq!(h.status(last).unwrap_err().code(), "unknown_connection");
    assert_eq!(h.open_connections(), 0);
}
