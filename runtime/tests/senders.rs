//! The send path (the connection task writes every message, batching what
//! is queued): concurrent senders, idle traffic made of writes only, and
//! sends abandoned midway. Real loopback peers that record what arrives.

mod support;
use futures_util::{FutureExt, SinkExt, StreamExt};
use netgrant_runtime::{HostConfig, Incoming, State};
use std::sync::Arc;
use std::time::{Duration, Instant};
use support::*;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;

/// A peer that reads and reports every text message, and never writes.
async fn recording_peer() -> (RawServer, mpsc::UnboundedReceiver<(String, Instant)>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let server = ws_server(move |mut ws| {
        let tx = tx.clone();
        async move {
            while let Some(Ok(m)) = ws.next().await {
                if let Message::Text(t) = m {
                    let _ = tx.send((t.as_str().to_owned(), Instant::now()));
                }
            }
        }
    })
    .await;
    (server, rx)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_senders_each_message_once_in_each_senders_order() {
    const SENDERS: usize = 8;
    const EACH: usize = 300;
    let (server, mut rx) = recording_peer().await;
    let p = server.port();
    let (h, id) = open_local(p, HostConfig::default()).await;
    let h = Arc::new(h);
    let mut tasks = Vec::new();
    for s in 0..SENDERS {
        let h = h.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..EACH {
                h.send_text(id, format!("{s}:{i}")).await.unwrap();
                if i % 7 == 0 {
                    tokio::task::yield_now().await;
                }
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    // No further send: whatever a sender left in the buffer must still go.
    let mut next = [0usize; SENDERS];
    for _ in 0..SENDERS * EACH {
        let (m, _) = tokio::time::timeout(OUTER, rx.recv())
            .await
            .expect("every message arrives without another send")
            .unwrap();
        let (s, i) = m.split_once(':').unwrap();
        let (s, i): (usize, usize) = (s.parse().unwrap(), i.parse().unwrap());
        assert_eq!(i, next[s], "sender {s}: got {i}, expected {}", next[s]);
        next[s] += 1;
    }
    assert_eq!(next, [EACH; SENDERS]);
    assert!(
        tokio::time::timeout(Duration::from_millis(200), rx.recv())
            .await
            .is_err(),
        "a message arrived twice"
    );
    let st = h.status(id).unwrap();
    assert_eq!(st.messages_out, (SENDERS * EACH) as u64);
    assert_eq!(st.state, State::Open);
    h.close(id).await.unwrap();
    h.shutdown().await;
    assert_eq!((h.active_tasks(), h.open_connections()), (0, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_alone_keep_the_idle_timeout_away() {
    // The peer reads and never answers: only the host's writes are traffic.
    let (server, mut rx) = recording_peer().await;
    let p = server.port();
    let idle = Duration::from_millis(300);
    let (h, id) = open_local(
        p,
        HostConfig {
            idle_timeout: idle,
            ..HostConfig::default()
        },
    )
    .await;
    for i in 0..9 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        h.send_text(id, format!("{i}")).await.unwrap();
    }
    assert_eq!(h.status(id).unwrap().state, State::Open);
    for i in 0..9 {
        assert_eq!(rx.recv().await.unwrap().0, format!("{i}"));
    }
    // Then silence: closed by the idle timeout.
    let t0 = Instant::now();
    match h.recv(id, Some(OUTER)).await.unwrap() {
        Incoming::Closed { code, reason } => assert_eq!((code, reason.as_str()), (1008, "timeout")),
        other => panic!("{other:?}"),
    }
    assert!(t0.elapsed() < idle + SLACK, "{:?}", t0.elapsed());
    assert!(wait_until(OUTER, || h.active_tasks() == 0 && h.open_connections() == 0).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_send_does_not_stall_the_next() {
    // Sends abandoned at every point (waiting for budget, queued, writing)
    // leave no message unflushed and no sender blocked.
    let (server, mut rx) = recording_peer().await;
    let p = server.port();
    let (h, id) = open_local(p, HostConfig::default()).await;
    let h = Arc::new(h);
    let mut tasks = Vec::new();
    for s in 0..4 {
        let h = h.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..200 {
                let send = h.send_text(id, format!("{s}:{i}"));
                // Every third send is given no time at all.
                if i % 3 == 0 {
                    let _ = tokio::time::timeout(Duration::ZERO, send).await;
                } else {
                    send.await.unwrap();
                }
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    h.send_text(id, "last").await.unwrap();
    let mut last = [None::<usize>; 4];
    loop {
        let (m, _) = tokio::time::timeout(OUTER, rx.recv())
            .await
            .expect("the last message arrives")
            .unwrap();
        if m == "last" {
            break;
        }
        let (s, i) = m.split_once(':').unwrap();
        let (s, i): (usize, usize) = (s.parse().unwrap(), i.parse().unwrap());
        assert!(
            last[s].is_none_or(|l| l < i),
            "sender {s}: {i} after {last:?}"
        );
        last[s] = Some(i);
    }
    assert_eq!(h.status(id).unwrap().state, State::Open);
    h.shutdown().await;
}

/// A peer that writes a lot before it reads anything (a server pushing a
/// backlog on connect, say, with pings among it) while the host has a
/// large batch to write. The connection's task keeps reading while its
/// write waits for the peer, and answers pings without waiting for the
/// peer either: otherwise each side waits for the other to read, and the
/// write ends in the write timeout, blaming a peer that is only busy
/// writing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_writing_before_it_reads_does_not_stall_the_hosts_writes() {
    const PUSHED: usize = 64; // 64 × 256 KiB = 16 MiB pushed by the peer first
    const SENT: usize = 16; // 16 × 256 KiB = 4 MiB sent by the plugin
    const SIZE: usize = 256 * 1024;
    let (got_tx, mut got_rx) = mpsc::unbounded_channel();
    let server = ws_server(move |mut ws| {
        let got_tx = got_tx.clone();
        async move {
            for i in 0..PUSHED {
                // Pings among the backlog: answering one must not stop
                // the host reading either.
                if i % 4 == 0 && ws.send(Message::Ping(vec![i as u8].into())).await.is_err() {
                    return;
                }
                if ws.send(Message::binary(vec![1u8; SIZE])).await.is_err() {
                    return;
                }
            }
            let mut got = 0;
            while got < SENT {
                match ws.next().await {
                    Some(Ok(Message::Binary(b))) if b.len() == SIZE => got += 1,
                    Some(Ok(_)) => {}
                    _ => break,
                }
            }
            let _ = got_tx.send(got);
            // Open until the host closes.
            while let Some(Ok(_)) = ws.next().await {}
        }
    })
    .await;
    let cfg = HostConfig {
        write_timeout: Duration::from_secs(3),
        ..HostConfig::default()
    };
    let (h, id) = open_local(server.port(), cfg).await;
    let h = Arc::new(h);
    let sender = {
        let h = h.clone();
        tokio::spawn(async move {
            for _ in 0..SENT {
                h.send_binary(id, vec![2u8; SIZE]).await?;
            }
            Ok::<(), netgrant_runtime::HostError>(())
        })
    };
    let mut pushed = 0;
    while pushed < PUSHED {
        match h.recv(id, Some(OUTER)).await.unwrap() {
            Incoming::Binary(b) => {
                assert_eq!(b.len(), SIZE);
                pushed += 1;
            }
            other => panic!(
                "after {pushed} of the peer's messages: {other:?} ({:?})",
                h.status(id).map(|s| s.last_error)
            ),
        }
    }
    sender.await.unwrap().unwrap();
    let got = tokio::time::timeout(OUTER, got_rx.recv()).await.unwrap();
    assert_eq!(got, Some(SENT), "the peer received every message");
    assert_eq!(h.status(id).unwrap().state, State::Open);
}

/// A message dripping in while the host's write waits for a peer that never
/// reads: the read deadline still ends it, without waiting for the write
/// timeout (the write loop keeps the message deadline as well as reading).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_dripping_in_during_a_pending_write_hits_the_read_deadline() {
    use tokio::io::AsyncWriteExt;
    let server = RawServer::start(|mut tcp| async move {
        if accept_raw(&mut tcp).await.is_none() {
            return;
        }
        // Never reads: the host's writes fill the buffers and wait.
        let _ = tcp.write_all(&frame_header(true, BINARY, 1000)).await;
        for _ in 0..200 {
            tokio::time::sleep(Duration::from_millis(100)).await;
            if tcp.write_all(b"x").await.is_err() {
                return;
            }
        }
    })
    .await;
    let cfg = HostConfig {
        message_read_deadline: Duration::from_secs(1),
        write_timeout: Duration::from_secs(10),
        ..HostConfig::default()
    };
    let (h, id) = open_local(server.port(), cfg).await;
    let h = Arc::new(h);
    let started = Instant::now();
    let sender = {
        let h = h.clone();
        tokio::spawn(async move {
            for _ in 0..64 {
                if h.send_binary(id, vec![2u8; 1024 * 1024]).await.is_err() {
                    break;
                }
            }
        })
    };
    match h.recv(id, Some(OUTER)).await.unwrap() {
        Incoming::Closed { code, reason } => {
            assert_eq!((code, reason.as_str()), (1008, "timeout"));
        }
        other => panic!("{other:?}"),
    }
    let waited = started.elapsed();
    let error = h.status(id).unwrap().last_error.unwrap_or_default();
    assert!(error.contains("message read deadline"), "{error}");
    assert!(
        waited < Duration::from_secs(6),
        "closed after {waited:?}: the write timeout (10 s), not the read deadline (1 s)"
    );
    sender.await.unwrap();
}

/// A close is not queued behind the sends (it must reach a task whose write
/// waits for the peer), yet what the plugin sent before it closed reaches
/// the peer first, in order, and then a 1000 close frame. The peer reads
/// only after a pause, so the task is mid-write with sends still queued
/// when the close comes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_sent_before_a_close_arrive_before_its_close_frame() {
    const N: usize = 96;
    const SIZE: usize = 256 * 1024;
    // The task writes at most this many messages as one batch.
    const BATCH: u64 = 64;
    let (tx, mut rx) = mpsc::unbounded_channel();
    // The peer reads nothing until the plugin has closed: a fixed delay
    // here once ran out on a loaded machine before the sends were done.
    let go = Arc::new(tokio::sync::Notify::new());
    let wait = go.clone();
    let server = ws_server(move |mut ws| {
        let (tx, wait) = (tx.clone(), wait.clone());
        async move {
            wait.notified().await;
            while let Some(Ok(m)) = ws.next().await {
                match m {
                    Message::Text(t) => {
                        let head = t.as_str().split(' ').next().unwrap_or("").to_owned();
                        let _ = tx.send(Ok((head, t.len())));
                    }
                    Message::Close(f) => {
                        let _ = tx.send(Err(f.map(|f| u16::from(f.code))));
                        break;
                    }
                    _ => {}
                }
            }
        }
    })
    .await;
    let cfg = HostConfig {
        max_write_buffer_bytes: N * SIZE,
        shutdown_grace: Duration::from_secs(10),
        ..HostConfig::default()
    };
    let (h, id) = open_local(server.port(), cfg).await;
    let body = "x".repeat(SIZE - 8);
    for i in 0..N {
        h.send_text(id, format!("m{i:<6} {body}")).await.unwrap();
    }
    // What the task had written when the plugin closed.
    let written = h.status(id).unwrap().messages_out;
    // `close` asks the task on its first poll, before it waits for the
    // task (which cannot end while the peer reads nothing); only then does
    // the peer start reading.
    let close = h.close(id);
    tokio::pin!(close);
    assert!(close.as_mut().now_or_never().is_none());
    go.notify_one();
    close.await.unwrap();
    for i in 0..N {
        let got = tokio::time::timeout(OUTER, rx.recv()).await.unwrap();
        let want = (format!("m{i}"), format!("m{i:<6} {body}").len());
        assert_eq!(got, Some(Ok(want)), "message {i}");
    }
    let got = tokio::time::timeout(OUTER, rx.recv()).await.unwrap();
    assert_eq!(got, Some(Err(Some(1000))), "the close frame, last");
    // More unwritten than one batch holds: some were still in the queue,
    // not in the pending write, when the plugin closed.
    assert!(
        written + BATCH < N as u64,
        "{written} of {N} written before the close: the test did not test the queue"
    );
    assert_eq!((h.active_tasks(), h.open_connections()), (0, 0));
}
