//! Nothing but `recv` observes incoming data.
//!
//! The host's API has exactly one path for a peer's payload to reach the
//! plugin: `WebSocketHost::recv`, which pops the per-connection inbox. There
//! is no callback, subscription, log line or status field carrying payloads:
//! `ConnectionStatus` holds counts (messages, bytes, inbox size), the
//! redacted URL, the close code and an escaped, bounded reason. These tests
//! pin that down: a distinctive payload sits in the inbox while every other
//! observable (status, its Debug, errors) stays free of it, and it comes out
//! of `recv` intact, exactly once.

mod support;
use futures_util::{SinkExt, StreamExt};
use netgrant_runtime::{HostConfig, Incoming};
use std::time::Duration;
use support::*;
use tokio::io::AsyncWriteExt;
use tokio_tungstenite::tungstenite::Message;

const SENTINEL: &str = "PAYLOAD-SENTINEL-7f3a";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_recv_yields_payloads() {
    let server = ws_server(|mut ws| async move {
        let _ = ws.send(Message::text(format!("text {SENTINEL}"))).await;
        let _ = ws
            .send(Message::binary(format!("bin {SENTINEL}").into_bytes()))
            .await;
        while let Some(Ok(m)) = ws.next().await {
            if m.is_close() {
                break;
            }
        }
    })
    .await;
    let p = server.port();
    let (h, id) = open_local(p, HostConfig::default()).await;

    // Both messages are in the inbox (counted) but not yet received.
    assert!(wait_until(OUTER, || h.status(id).unwrap().messages_in == 2).await);
    let clean = |when: &str| {
        let st = h.status(id).unwrap();
        let dbg = format!("{st:?}");
        assert!(
            !dbg.contains("SENTINEL"),
            "{when}: payload visible in status: {dbg}"
        );
        assert!(
            !dbg.contains("7f3a"),
            "{when}: payload visible in status: {dbg}"
        );
        st
    };
    let st = clean("queued");
    let total = ("text ".len() + SENTINEL.len() + "bin ".len() + SENTINEL.len()) as u64;
    assert_eq!((st.bytes_in, st.inbox_bytes as u64), (total, total));

    // Our own outgoing payload is not in the status either.
    h.send_text(id, format!("out {SENTINEL}")).await.unwrap();
    clean("after send");

    assert_eq!(
        h.recv(id, Some(OUTER)).await.unwrap(),
        Incoming::Text(format!("text {SENTINEL}"))
    );
    assert_eq!(
        h.recv(id, Some(OUTER)).await.unwrap(),
        Incoming::Binary(format!("bin {SENTINEL}").into_bytes())
    );
    // Exactly once.
    assert_eq!(
        h.recv(id, Some(Duration::from_millis(100))).await.unwrap(),
        Incoming::TimedOut
    );
    let st = clean("received");
    assert_eq!(st.inbox_bytes, 0);
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn protocol_errors_do_not_echo_payloads() {
    // A fragmented text message whose valid prefix is the sentinel and whose
    // tail is invalid UTF-8: the close must not carry the prefix anywhere.
    let server = RawServer::start(|mut tcp| async move {
        if accept_raw(&mut tcp).await.is_none() {
            return;
        }
        let mut out = frame(false, TEXT, SENTINEL.as_bytes());
        out.extend(frame(true, CONT, b"\xff\xfe"));
        let _ = tcp.write_all(&out).await;
        read_close_code(&mut tcp).await;
    })
    .await;
    let p = server.port();
    let (h, id) = open_local(p, HostConfig::default()).await;
    let got = h.recv(id, Some(OUTER)).await.unwrap();
    assert!(
        matches!(got, Incoming::Closed { code: 1007, .. }),
        "{got:?}"
    );
    let dbg = format!("{:?} {got:?}", h.status(id).unwrap());
    assert!(!dbg.contains("SENTINEL"), "{dbg}");
    h.shutdown().await;
}
