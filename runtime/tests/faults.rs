//! Misbehaving peers, scripted at the TCP level. Every configured bound is
//! asserted from below (never early: measured from before `open`) and from
//! above with generous slack for a loaded machine.

mod support;
use netgrant_runtime::{HostConfig, Incoming, OpenOptions, State, StaticResolver, WebSocketHost};
use std::time::{Duration, Instant};
use support::*;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

const LONG: Option<Duration> = Some(Duration::from_secs(10));

fn h_for(server: &RawServer, cfg: HostConfig) -> (WebSocketHost, String) {
    let p = server.port();
    (
        host(allow_localhost(p), StaticResolver::new(), cfg),
        format!("ws://localhost:{p}/"),
    )
}

async fn closed(h: &WebSocketHost, id: netgrant_runtime::ConnectionId) -> (u16, String) {
    match h.recv(id, LONG).await.unwrap() {
        Incoming::Closed { code, reason } => (code, reason),
        other => panic!("expected Closed, got {other:?}"),
    }
}

fn assert_within(what: &str, took: Duration, bound: Duration) {
    assert!(
        took >= bound,
        "{what}: closed after {took:?}, before its bound {bound:?}"
    );
    assert!(
        took < bound + SLACK,
        "{what}: closed after {took:?}, bound {bound:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_peer_times_out_the_handshake() {
    // Accepts TCP, reads the request, never answers.
    let server = RawServer::start(drain_until_eof).await;
    let bound = Duration::from_millis(300);
    let (h, url) = h_for(
        &server,
        HostConfig {
            handshake_timeout: bound,
            ..HostConfig::default()
        },
    );
    let t0 = Instant::now();
    let err = tokio::time::timeout(OUTER, h.open(&url, OpenOptions::default()))
        .await
        .unwrap()
        .unwrap_err();
    assert_within("handshake", t0.elapsed(), bound);
    assert_eq!(err.code(), "timeout", "{err}");
    assert_eq!(server.accepted(), 1);
    assert_eq!((h.open_connections(), h.active_tasks()), (0, 0));
    // The abandoned socket is closed: the peer sees EOF.
    assert!(
        wait_until(OUTER, || server.finished() == 1).await,
        "socket leaked"
    );

    // Same through TLS: the ClientHello goes unanswered.
    let p = server.port();
    let t = ws_entry(&format!("wss://localhost:{p}/"), "");
    let h = host(
        policy(&t, &t),
        StaticResolver::new(),
        HostConfig {
            handshake_timeout: bound,
            ..HostConfig::default()
        },
    );
    let t0 = Instant::now();
    let err = tokio::time::timeout(
        OUTER,
        h.open(&format!("wss://localhost:{p}/"), OpenOptions::default()),
    )
    .await
    .unwrap()
    .unwrap_err();
    assert_within("TLS handshake", t0.elapsed(), bound);
    assert_eq!(err.code(), "timeout", "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_port_is_connect_failed() {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let p = l.local_addr().unwrap().port();
    drop(l);
    let h = host(
        allow_localhost(p),
        StaticResolver::new(),
        HostConfig::default(),
    );
    let err = h
        .open(&format!("ws://localhost:{p}/"), OpenOptions::default())
        .await
        .unwrap_err();
    assert_eq!(err.code(), "connect_failed", "{err}");
    assert_eq!(h.open_connections(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_drip_hits_the_message_read_deadline() {
    // After the handshake: the header of a 1000-byte message, then one byte
    // every 100 ms (100 s in all; the idle timeout is far away).
    let server = RawServer::start(|mut tcp| async move {
        if accept_raw(&mut tcp).await.is_none() {
            return;
        }
        if tcp
            .write_all(&frame_header(true, BINARY, 1000))
            .await
            .is_err()
        {
            return;
        }
        for _ in 0..1000 {
            tokio::time::sleep(Duration::from_millis(100)).await;
            if tcp.write_all(b"x").await.is_err() {
                return;
            }
        }
    })
    .await;
    let bound = Duration::from_millis(300);
    let cfg = HostConfig {
        message_read_deadline: bound,
        idle_timeout: Duration::from_secs(60),
        ..HostConfig::default()
    };
    let (h, url) = h_for(&server, cfg);
    let t0 = Instant::now();
    let id = h.open(&url, OpenOptions::default()).await.unwrap();
    let (code, reason) = closed(&h, id).await;
    assert_within("read deadline", t0.elapsed(), bound);
    assert_eq!(reason, "timeout", "code {code}");
    let e = h.status(id).unwrap().last_error.unwrap();
    assert!(
        e.starts_with("timeout") && e.contains("read deadline"),
        "{e}"
    );
    assert!(
        wait_until(OUTER, || server.finished() == 1).await,
        "the dripping socket stays open"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_peer_is_closed_and_traffic_keeps_it_open() {
    let bound = Duration::from_millis(300);
    let cfg = HostConfig {
        idle_timeout: bound,
        ..HostConfig::default()
    };

    // Traffic every 100 ms for 900 ms keeps an idle timeout of 300 ms away.
    let echo = EchoServer::start().await;
    let p = echo.addr.port();
    let h = host(allow_localhost(p), StaticResolver::new(), cfg.clone());
    let id = h
        .open(&format!("ws://localhost:{p}/"), OpenOptions::default())
        .await
        .unwrap();
    for i in 0..9 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        h.send_text(id, format!("{i}")).await.unwrap();
        assert_eq!(
            h.recv(id, LONG).await.unwrap(),
            Incoming::Text(format!("{i}"))
        );
    }
    assert_eq!(h.status(id).unwrap().state, State::Open);

    // Then silence: the last traffic was the echo just received, after t0.
    let t0 = Instant::now();
    h.send_text(id, "last").await.unwrap();
    assert_eq!(
        h.recv(id, LONG).await.unwrap(),
        Incoming::Text("last".into())
    );
    let (_, reason) = closed(&h, id).await;
    assert_within("idle", t0.elapsed(), bound);
    assert_eq!(reason, "timeout");
    let e = h.status(id).unwrap().last_error.unwrap();
    assert!(e.starts_with("timeout") && e.contains("idle"), "{e}");
    assert!(wait_until(OUTER, || h.active_tasks() == 0 && h.open_connections() == 0).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_lifetime_closes_a_busy_connection() {
    let echo = EchoServer::start().await;
    let p = echo.addr.port();
    let bound = Duration::from_millis(600);
    let cfg = HostConfig {
        max_lifetime: Some(bound),
        ..HostConfig::default()
    };
    let h = host(allow_localhost(p), StaticResolver::new(), cfg);
    let t0 = Instant::now();
    let id = h
        .open(&format!("ws://localhost:{p}/"), OpenOptions::default())
        .await
        .unwrap();
    let closed_at = loop {
        if h.send_text(id, "ping").await.is_err() {
            break t0.elapsed();
        }
        match h.recv(id, LONG).await.unwrap() {
            Incoming::Text(_) => {}
            Incoming::Closed { reason, .. } => {
                assert_eq!(reason, "timeout");
                break t0.elapsed();
            }
            other => panic!("{other:?}"),
        }
        assert!(
            t0.elapsed() < bound + SLACK,
            "still open after {:?}",
            t0.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_within("lifetime", closed_at, bound);
    let st = h.status(id).unwrap();
    assert_eq!(st.state, State::Closed);
    assert!(
        st.last_error.as_deref().unwrap().contains("lifetime"),
        "{:?}",
        st.last_error
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peer_that_never_reads_bounds_the_sender() {
    // Handshake, then never read again (socket held open).
    let server = RawServer::start(|mut tcp| async move {
        if accept_raw(&mut tcp).await.is_some() {
            hold(tcp, Duration::from_secs(60)).await;
        }
    })
    .await;
    let bound = Duration::from_millis(500);
    let cfg = HostConfig {
        write_timeout: bound,
        max_write_buffer_bytes: 2 * 1024 * 1024,
        ..HostConfig::default()
    };
    let (h, url) = h_for(&server, cfg);
    let id = h.open(&url, OpenOptions::default()).await.unwrap();
    let chunk = vec![0u8; 1024 * 1024];
    let mut ok = 0usize;
    let err = loop {
        let t0 = Instant::now();
        let r = tokio::time::timeout(OUTER, h.send_binary(id, chunk.clone()))
            .await
            .expect("send must be bounded");
        assert!(
            t0.elapsed() < bound + SLACK,
            "one send took {:?}",
            t0.elapsed()
        );
        match r {
            Ok(()) => ok += 1,
            Err(e) => break e,
        }
        // Kernel buffers (a few MiB here) plus the host's write buffer: far
        // below this unless the host buffers without bound.
        assert!(ok < 48, "{ok} MiB accepted by a peer that never reads");
    };
    assert!(matches!(err.code(), "timeout" | "closed"), "{err}");
    let st = h.status(id).unwrap();
    assert_eq!(st.state, State::Closed);
    assert!(
        st.last_error
            .as_deref()
            .unwrap_or("")
            .starts_with("timeout"),
        "{:?}",
        st.last_error
    );
    assert_eq!(h.send_text(id, "x").await.unwrap_err().code(), "closed");
    assert!(wait_until(OUTER, || h.active_tasks() == 0 && h.open_connections() == 0).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_utf8_text_closes_with_1007() {
    let (tx, rx) = tokio::sync::oneshot::channel();
    let tx = std::sync::Mutex::new(Some(tx));
    let server = RawServer::start(move |mut tcp| {
        let tx = tx.lock().unwrap().take();
        async move {
            if accept_raw(&mut tcp).await.is_none() {
                return;
            }
            let _ = tcp.write_all(&frame(true, TEXT, b"ab\xff\xfe")).await;
            let code = read_close_code(&mut tcp).await;
            if let Some(tx) = tx {
                let _ = tx.send(code);
            }
        }
    })
    .await;
    let (h, url) = h_for(&server, HostConfig::default());
    let id = h.open(&url, OpenOptions::default()).await.unwrap();
    let (code, _) = closed(&h, id).await;
    assert_eq!(code, 1007);
    assert!(h.status(id).unwrap().last_error.is_some());
    // The peer is told why.
    let got = tokio::time::timeout(OUTER, rx).await.unwrap().unwrap();
    assert_eq!(got, Some(Some(1007)));
}

async fn cut_mid_message(reset: bool) -> (u16, String, Option<String>) {
    let server = RawServer::start(move |mut tcp: TcpStream| async move {
        if accept_raw(&mut tcp).await.is_none() {
            return;
        }
        let mut out = frame_header(true, BINARY, 1000);
        out.extend_from_slice(&[1u8; 10]);
        let _ = tcp.write_all(&out).await;
        let _ = tcp.flush().await;
        tokio::time::sleep(Duration::from_millis(50)).await;
        if reset {
            // SO_LINGER 0: close() sends RST.
            tcp.set_zero_linger().unwrap();
        }
        drop(tcp);
    })
    .await;
    let (h, url) = h_for(&server, HostConfig::default());
    let id = h.open(&url, OpenOptions::default()).await.unwrap();
    let (code, reason) = closed(&h, id).await;
    (code, reason, h.status(id).unwrap().last_error)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peer_vanishing_mid_message_is_1006() {
    let (code, reason, err) = cut_mid_message(true).await;
    assert_eq!(code, 1006, "RST: {reason} / {err:?}");
    // A FIN without a close frame is just as abnormal (RFC 6455 §7.1.5).
    let (code, reason, err) = cut_mid_message(false).await;
    assert_eq!(code, 1006, "FIN: {reason} / {err:?}");

    // And between messages.
    let server = RawServer::start(|mut tcp| async move {
        if accept_raw(&mut tcp).await.is_some() {
            let _ = tcp.write_all(&frame(true, TEXT, b"last words")).await;
        }
    })
    .await;
    let (h, url) = h_for(&server, HostConfig::default());
    let id = h.open(&url, OpenOptions::default()).await.unwrap();
    assert_eq!(
        h.recv(id, LONG).await.unwrap(),
        Incoming::Text("last words".into())
    );
    let (code, _) = closed(&h, id).await;
    assert_eq!(code, 1006);
}

fn assert_clean(what: &str, s: &str) {
    assert!(
        !s.chars().any(|c| c.is_control()),
        "{what}: raw control characters in {s:?}"
    );
    assert!(!s.contains('\u{202e}'), "{what}: raw bidi control in {s:?}");
    assert!(
        s.chars().count() <= 512,
        "{what}: {} chars",
        s.chars().count()
    );
}

async fn peer_closes_with(payload: Vec<u8>) -> (u16, String, Option<String>) {
    let server = RawServer::start(move |mut tcp| {
        let payload = payload.clone();
        async move {
            if accept_raw(&mut tcp).await.is_none() {
                return;
            }
            let _ = tcp.write_all(&frame(true, CLOSE, &payload)).await;
            read_close_code(&mut tcp).await;
        }
    })
    .await;
    let (h, url) = h_for(&server, HostConfig::default());
    let id = h.open(&url, OpenOptions::default()).await.unwrap();
    let (code, reason) = closed(&h, id).await;
    let st = h.status(id).unwrap();
    assert_eq!(st.close.as_ref().map(|c| c.0), Some(code));
    (code, reason, st.last_error)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peer_close_reason_is_escaped_and_bounded() {
    // The largest legal close reason (123 bytes), full of terminal escapes.
    let mut evil = b"\x1b[2J\x1b]0;pwned\x07\r\nFAKE PROMPT$ \xe2\x80\xae".to_vec();
    while evil.len() < 123 {
        evil.push(0x1b);
    }
    let (code, reason, err) = peer_closes_with(close_payload(4321, &evil)).await;
    assert_eq!(code, 4321, "an application close code is passed through");
    assert_clean("reason", &reason);
    assert!(
        reason.contains("\\u{1b}") && reason.contains("FAKE PROMPT"),
        "{reason}"
    );
    if let Some(e) = err {
        assert_clean("last_error", &e);
    }

    // A 200-byte reason does not fit a control frame: a protocol error, and
    // none of the peer's text survives unescaped.
    let long: Vec<u8> = b"\x1b[31m".iter().copied().cycle().take(200).collect();
    let (code, reason, err) = peer_closes_with(close_payload(4000, &long)).await;
    assert_eq!(code, 1002, "{reason}");
    assert_clean("reason", &reason);
    assert_clean("last_error", err.as_deref().unwrap_or(""));

    // A code that may not appear on the wire (1006) is a protocol violation.
    let (code, reason, _) = peer_closes_with(close_payload(1006, b"x")).await;
    assert_eq!(code, 1002, "{reason}");
}
