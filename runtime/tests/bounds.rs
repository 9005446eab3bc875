//! Message, inbox, connection-count and recv bounds.

mod support;
use futures_util::{SinkExt, StreamExt};
use netgrant_runtime::{GlobalLimit, HostConfig, Incoming, OpenOptions, State, StaticResolver};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use support::*;
use tokio_tungstenite::tungstenite::Message;

const LONG: Option<Duration> = Some(Duration::from_secs(10));

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outgoing_message_over_the_bound_fails_the_call_only() {
    let server = EchoServer::start().await;
    let p = server.addr.port();
    let cfg = HostConfig {
        max_message_bytes: 1024,
        ..HostConfig::default()
    };
    let (h, id) = open_local(p, cfg).await;

    let err = h.send_text(id, "x".repeat(1025)).await.unwrap_err();
    assert_eq!(err.code(), "message_too_large", "{err}");
    let err = h.send_binary(id, vec![0u8; 4096]).await.unwrap_err();
    assert_eq!(err.code(), "message_too_large", "{err}");
    // Multi-byte text is measured in bytes, not chars: 342 × 3 bytes > 1024.
    let err = h.send_text(id, "€".repeat(342)).await.unwrap_err();
    assert_eq!(err.code(), "message_too_large", "{err}");

    let st = h.status(id).unwrap();
    assert_eq!(st.state, State::Open);
    assert_eq!((st.messages_out, st.bytes_out), (0, 0), "nothing was sent");

    // Exactly at the bound is fine, and the connection still echoes.
    h.send_binary(id, vec![7u8; 1024]).await.unwrap();
    h.send_text(id, "small").await.unwrap();
    assert_eq!(
        h.recv(id, LONG).await.unwrap(),
        Incoming::Binary(vec![7u8; 1024])
    );
    assert_eq!(
        h.recv(id, LONG).await.unwrap(),
        Incoming::Text("small".into())
    );
    h.shutdown().await;
}

/// A peer that sends whatever the script says right after the handshake.
async fn sender(msgs: Vec<Message>) -> RawServer {
    let msgs = Arc::new(msgs);
    ws_server(move |mut ws| {
        let msgs = msgs.clone();
        async move {
            for m in msgs.iter() {
                if ws.send(m.clone()).await.is_err() {
                    return;
                }
            }
            while let Some(Ok(_)) = ws.next().await {}
        }
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn incoming_message_over_the_bound_closes_with_1009() {
    let cfg = HostConfig {
        max_message_bytes: 16 * 1024,
        ..HostConfig::default()
    };
    // One frame over the bound, after a message that fits (which is still delivered).
    let server = sender(vec![
        Message::text("fits"),
        Message::binary(vec![1u8; 16 * 1024 + 1]),
    ])
    .await;
    let p = server.port();
    let (h, id) = open_local(p, cfg.clone()).await;
    assert_eq!(
        h.recv(id, LONG).await.unwrap(),
        Incoming::Text("fits".into())
    );
    match h.recv(id, LONG).await.unwrap() {
        Incoming::Closed { code, reason } => {
            assert_eq!(code, 1009);
            assert_eq!(reason, "message_too_large");
        }
        other => panic!("expected Closed, got {other:?}"),
    }
    let st = h.status(id).unwrap();
    assert_eq!(st.state, State::Closed);
    let e = st.last_error.unwrap();
    assert!(e.starts_with("message_too_large"), "{e}");
    assert_eq!(st.messages_in, 1);
    let err = h.send_text(id, "after").await.unwrap_err();
    assert_eq!(err.code(), "closed");
    h.shutdown().await;

    // Fragments that each fit but add up to more than the bound.
    let server = RawServer::start(|mut tcp| async move {
        use tokio::io::AsyncWriteExt;
        if accept_raw(&mut tcp).await.is_none() {
            return;
        }
        let chunk = vec![b'a'; 8 * 1024];
        let mut out = frame(false, TEXT, &chunk);
        out.extend(frame(false, CONT, &chunk));
        out.extend(frame(true, CONT, &chunk));
        let _ = tcp.write_all(&out).await;
        read_close_code(&mut tcp).await;
    })
    .await;
    let p = server.port();
    let (h, id) = open_local(p, cfg).await;
    assert!(
        matches!(
            h.recv(id, LONG).await.unwrap(),
            Incoming::Closed { code: 1009, .. }
        ),
        "fragmented oversize message"
    );
    assert!(h
        .status(id)
        .unwrap()
        .last_error
        .unwrap()
        .starts_with("message_too_large"));
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seventeenth_open_hits_the_connection_limit() {
    let server = EchoServer::start().await;
    let p = server.addr.port();
    let url = format!("ws://localhost:{p}/");
    let h = host(
        allow_localhost(p),
        StaticResolver::new(),
        HostConfig::default(),
    );
    assert_eq!(h.config().max_connections, 16, "the documented default");

    // Failed opens (denied, refused) must not leak slots.
    for _ in 0..20 {
        assert_eq!(
            h.open(&format!("ws://localhost:{p}/?#f"), OpenOptions::default())
                .await
                .unwrap_err()
                .code(),
            "fragment_not_allowed"
        );
    }
    let mut ids = Vec::new();
    for i in 0..16 {
        ids.push(
            h.open(&url, OpenOptions::default())
                .await
                .unwrap_or_else(|e| panic!("open {i}: {e}")),
        );
    }
    assert_eq!(h.open_connections(), 16);
    let err = h.open(&url, OpenOptions::default()).await.unwrap_err();
    assert_eq!(err.code(), "connection_limit", "{err}");
    assert_eq!(server.accepted(), 16, "the 17th open never dialed");

    h.close(ids.pop().unwrap()).await.unwrap();
    assert_eq!(
        h.open_connections(),
        15,
        "close() releases the slot before it returns"
    );
    ids.push(h.open(&url, OpenOptions::default()).await.unwrap());
    assert_eq!(
        h.open(&url, OpenOptions::default())
            .await
            .unwrap_err()
            .code(),
        "connection_limit"
    );

    h.shutdown().await;
    assert_eq!(h.open_connections(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_closed_connection_releases_its_slot() {
    // The peer closes right after the handshake; the plugin never calls close().
    let server = closing_peer().await;
    let p = server.port();
    let cfg = HostConfig {
        max_connections: 2,
        ..HostConfig::default()
    };
    let h = host(allow_localhost(p), StaticResolver::new(), cfg);
    let url = format!("ws://localhost:{p}/");
    for _ in 0..6 {
        let id = h.open(&url, OpenOptions::default()).await.unwrap();
        assert!(matches!(
            h.recv(id, LONG).await.unwrap(),
            Incoming::Closed {
                code: 1005 | 1000,
                ..
            }
        ));
        assert!(
            wait_until(OUTER, || h.open_connections() == 0).await,
            "slot not released"
        );
    }
    assert!(wait_until(OUTER, || h.active_tasks() == 0).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn global_limit_caps_two_hosts() {
    let server = EchoServer::start().await;
    let p = server.addr.port();
    let url = format!("ws://localhost:{p}/");
    let g = GlobalLimit::new(3);
    let cfg = HostConfig {
        global_limit: Some(g.clone()),
        ..HostConfig::default()
    };
    let a = host(allow_localhost(p), StaticResolver::new(), cfg.clone());
    let b = host(allow_localhost(p), StaticResolver::new(), cfg);

    let a1 = a.open(&url, OpenOptions::default()).await.unwrap();
    let _a2 = a.open(&url, OpenOptions::default()).await.unwrap();
    let _b1 = b.open(&url, OpenOptions::default()).await.unwrap();
    assert_eq!(g.in_use(), 3);
    for (name, h) in [("a", &a), ("b", &b)] {
        let err = h.open(&url, OpenOptions::default()).await.unwrap_err();
        assert_eq!(err.code(), "connection_limit", "{name}: {err}");
    }
    assert_eq!(server.accepted(), 3);
    assert_eq!(
        a.open_connections() + b.open_connections(),
        3,
        "a refused open holds no per-host slot"
    );

    a.close(a1).await.unwrap();
    assert_eq!(g.in_use(), 2);
    let b2 = b.open(&url, OpenOptions::default()).await.unwrap();
    b.send_text(b2, "hi").await.unwrap();
    assert_eq!(b.recv(b2, LONG).await.unwrap(), Incoming::Text("hi".into()));

    a.shutdown().await;
    b.shutdown().await;
    assert_eq!(g.in_use(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recv_timeout_leaves_the_connection_open() {
    let server = EchoServer::start().await;
    let p = server.addr.port();
    let bound = Duration::from_millis(300);
    let cfg = HostConfig {
        recv_timeout: bound,
        ..HostConfig::default()
    };
    let (h, id) = open_local(p, cfg).await;

    for timeout in [Some(bound), None] {
        let t0 = Instant::now();
        let got = tokio::time::timeout(OUTER, h.recv(id, timeout))
            .await
            .unwrap()
            .unwrap();
        let took = t0.elapsed();
        assert_eq!(got, Incoming::TimedOut);
        assert!(
            took >= bound && took < bound + SLACK,
            "{timeout:?}: {took:?}"
        );
        assert_eq!(h.status(id).unwrap().state, State::Open);
    }
    h.send_text(id, "still here").await.unwrap();
    assert_eq!(
        h.recv(id, LONG).await.unwrap(),
        Incoming::Text("still here".into())
    );

    // A recv dropped mid-wait (cancelled) loses no message.
    let _ = tokio::time::timeout(Duration::from_millis(50), h.recv(id, LONG)).await;
    h.send_text(id, "after cancel").await.unwrap();
    assert_eq!(
        h.recv(id, LONG).await.unwrap(),
        Incoming::Text("after cancel".into())
    );
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inbox_is_bounded_in_bytes_and_loses_nothing() {
    // 4096 × 8 KiB = 32 MiB: far more than the kernel buffers on both sides,
    // so the flood can only finish if the host reads it.
    const N: usize = 4096;
    const SIZE: usize = 8 * 1024;
    let sent = Arc::new(AtomicUsize::new(0));
    let s2 = sent.clone();
    let server = ws_server(move |mut ws| {
        let sent = s2.clone();
        async move {
            for i in 0..N {
                let mut m = vec![(i % 251) as u8; SIZE];
                m[..8].copy_from_slice(&(i as u64).to_be_bytes());
                if ws.send(Message::binary(m)).await.is_err() {
                    return;
                }
                sent.fetch_add(1, Ordering::SeqCst);
            }
            let _ = ws.close(None).await;
            while let Some(Ok(_)) = ws.next().await {}
        }
    })
    .await;
    let p = server.port();
    let inbox = 64 * 1024;
    let cfg = HostConfig {
        inbox_bytes: inbox,
        max_message_bytes: 16 * 1024,
        ..HostConfig::default()
    };
    let (h, id) = open_local(p, cfg).await;

    // The plugin does not recv: the inbox fills up to its bound and stays there.
    assert!(
        wait_until(OUTER, || h.status(id).unwrap().inbox_bytes
            >= inbox - 16 * 1024)
        .await,
        "the inbox never filled"
    );
    let mut max_seen = 0;
    let t0 = Instant::now();
    while t0.elapsed() < Duration::from_millis(500) {
        let st = h.status(id).unwrap();
        max_seen = max_seen.max(st.inbox_bytes);
        assert!(
            st.inbox_bytes <= inbox,
            "inbox holds {} > {inbox} bytes",
            st.inbox_bytes
        );
        assert_eq!(
            st.inbox_bytes as u64, st.bytes_in,
            "nothing was handed out yet"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert!(max_seen >= inbox - 16 * 1024, "max inbox seen {max_seen}");
    let stuck = sent.load(Ordering::SeqCst);
    assert!(
        stuck < N,
        "backpressure must reach the peer (it sent all {N})"
    );
    assert_eq!(h.status(id).unwrap().state, State::Open);

    // Drain: every message, in order, then the peer's close.
    for i in 0..N {
        match h.recv(id, LONG).await.unwrap() {
            Incoming::Binary(b) => {
                assert_eq!(b.len(), SIZE);
                let seq = u64::from_be_bytes(b[..8].try_into().unwrap()) as usize;
                assert_eq!(seq, i, "lost or reordered");
                assert!(
                    b[8..].iter().all(|&x| x == (i % 251) as u8),
                    "message {i} corrupted"
                );
            }
            other => panic!("message {i}: {other:?}"),
        }
        if i % 256 == 0 {
            assert!(h.status(id).unwrap().inbox_bytes <= inbox);
        }
    }
    assert!(matches!(
        h.recv(id, LONG).await.unwrap(),
        Incoming::Closed {
            code: 1000 | 1005,
            ..
        }
    ));
    let st = h.status(id).unwrap();
    assert_eq!(
        (st.messages_in, st.bytes_in, st.inbox_bytes),
        (N as u64, (N * SIZE) as u64, 0)
    );
    h.shutdown().await;
}

/// `Duration::MAX` means "no practical limit" for every deadline, and must
/// not overflow a deadline's arithmetic: the connection opens, carries,
/// closes, and a second one is ended by shutdown.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn huge_configured_deadlines_do_not_overflow() {
    let server = EchoServer::start().await;
    let cfg = HostConfig {
        dns_timeout: Duration::MAX,
        connect_timeout: Duration::MAX,
        handshake_timeout: Duration::MAX,
        recv_timeout: Duration::MAX,
        idle_timeout: Duration::MAX,
        message_read_deadline: Duration::MAX,
        write_timeout: Duration::MAX,
        max_lifetime: Some(Duration::MAX),
        shutdown_grace: Duration::MAX,
        ..HostConfig::default()
    };
    let (h, id) = open_local(server.addr.port(), cfg).await;
    h.send_text(id, "far").await.unwrap();
    let got = tokio::time::timeout(OUTER, h.recv(id, None)).await.unwrap();
    assert_eq!(got.unwrap(), Incoming::Text("far".into()));
    // Large enough to arrive over several reads: the read deadline is armed.
    h.send_binary(id, vec![7u8; 200 * 1024]).await.unwrap();
    let got = tokio::time::timeout(OUTER, h.recv(id, None)).await.unwrap();
    assert_eq!(payload(&got.unwrap()).map(|p| p.len()), Some(200 * 1024));
    tokio::time::timeout(OUTER, h.close(id))
        .await
        .unwrap()
        .unwrap();
    let url = format!("ws://localhost:{}/", server.addr.port());
    let id = h.open(&url, OpenOptions::default()).await.unwrap();
    h.send_text(id, "again").await.unwrap();
    tokio::time::timeout(OUTER, h.shutdown()).await.unwrap();
    assert_eq!((h.open_connections(), h.active_tasks()), (0, 0));
}
