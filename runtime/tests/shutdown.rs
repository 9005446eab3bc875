//! `shutdown()` and dropping a host end every connection and task promptly,
//! whatever the peers do.

mod support;
use netgrant_runtime::{GlobalLimit, HostConfig, OpenOptions, StaticResolver, WebSocketHost};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use support::*;
use tokio::io::AsyncWriteExt;

/// A peer that completes the handshake and then never reads or answers.
async fn deaf() -> RawServer {
    RawServer::start(|mut tcp| async move {
        if accept_raw(&mut tcp).await.is_some() {
            hold(tcp, Duration::from_secs(120)).await;
        }
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_of_100_connections_is_prompt() {
    let echo = EchoServer::start().await;
    let deaf = deaf().await;
    let cfg = HostConfig {
        // Long enough that nothing but shutdown can end a stuck send.
        write_timeout: Duration::from_secs(60),
        ..HostConfig::default()
    };
    let (ep, dp) = (echo.addr.port(), deaf.port());
    let t = format!(
        "{}{}",
        ws_entry(&format!("ws://localhost:{ep}/"), ""),
        ws_entry(&format!("ws://localhost:{dp}/"), "")
    );
    let authz = policy(&t, &t);
    let hosts: Vec<Arc<WebSocketHost>> = (0..7)
        .map(|_| Arc::new(host(authz.clone(), StaticResolver::new(), cfg.clone())))
        .collect();

    // 100 connections: 6 hosts × 14 + 16; every third one to the deaf peer.
    let mut conns = Vec::new();
    for (i, h) in hosts.iter().enumerate() {
        let n = if i == 6 { 16 } else { 14 };
        for j in 0..n {
            let deaf = j % 3 == 0;
            let url = format!("ws://localhost:{}/", if deaf { dp } else { ep });
            let id = h.open(&url, OpenOptions::default()).await.unwrap();
            conns.push((h.clone(), id, deaf));
        }
    }
    assert_eq!(conns.len(), 100);
    let n_echo = conns.iter().filter(|c| !c.2).count();

    // Senders: big messages to every deaf peer (they stall once the kernel
    // buffers fill) and a steady stream on some echo connections.
    let progress = Arc::new(AtomicUsize::new(0));
    let mut senders = Vec::new();
    for (k, (h, id, deaf)) in conns.iter().enumerate() {
        if !*deaf && k % 2 == 0 {
            continue;
        }
        let (h, id, deaf, progress) = (h.clone(), *id, *deaf, progress.clone());
        senders.push(tokio::spawn(async move {
            let mut first = true;
            loop {
                let r = if deaf {
                    h.send_binary(id, vec![0u8; 512 * 1024]).await
                } else {
                    h.send_text(id, "tick").await
                };
                if first {
                    progress.fetch_add(1, Ordering::SeqCst);
                    first = false;
                }
                if r.is_err() {
                    return;
                }
            }
        }));
    }
    let n_senders = senders.len();
    assert!(
        wait_until(OUTER, || progress.load(Ordering::SeqCst) == n_senders).await,
        "senders did not start"
    );

    let t0 = Instant::now();
    let all = futures_util::future::join_all(hosts.iter().map(|h| h.shutdown()));
    tokio::time::timeout(OUTER, all)
        .await
        .expect("shutdown must return within 10 s");
    let took = t0.elapsed();
    for (i, h) in hosts.iter().enumerate() {
        assert_eq!(h.active_tasks(), 0, "host {i}: tasks left after shutdown");
        assert_eq!(
            h.open_connections(),
            0,
            "host {i}: connections left after shutdown"
        );
    }
    // A stuck send is not allowed to hold shutdown for its write timeout.
    assert!(took < Duration::from_secs(5), "shutdown took {took:?}");

    // Every sender sees its connection gone, promptly.
    for s in senders {
        tokio::time::timeout(OUTER, s)
            .await
            .expect("a send outlived shutdown")
            .unwrap();
    }
    // Every echo peer sees its connection closed.
    assert!(
        wait_until(OUTER, || echo.closed.load(Ordering::SeqCst) == n_echo).await,
        "{} of {n_echo} echo connections closed",
        echo.closed.load(Ordering::SeqCst)
    );
    for h in &hosts {
        assert_eq!(
            h.open(&format!("ws://localhost:{ep}/"), OpenOptions::default())
                .await
                .unwrap_err()
                .code(),
            "shutdown"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_a_host_ends_its_connections() {
    let echo = EchoServer::start().await;
    let p = echo.addr.port();
    let g = GlobalLimit::new(100);
    let cfg = HostConfig {
        global_limit: Some(g.clone()),
        ..HostConfig::default()
    };
    let h = host(allow_localhost(p), StaticResolver::new(), cfg);
    for _ in 0..10 {
        h.open(&format!("ws://localhost:{p}/"), OpenOptions::default())
            .await
            .unwrap();
    }
    assert_eq!(g.in_use(), 10);
    assert_eq!(echo.closed.load(Ordering::SeqCst), 0);
    drop(h);
    assert!(
        wait_until(OUTER, || echo.closed.load(Ordering::SeqCst) == 10).await,
        "{} of 10 connections closed after drop",
        echo.closed.load(Ordering::SeqCst)
    );
    assert!(
        wait_until(OUTER, || g.in_use() == 0).await,
        "slots leaked: {}",
        g.in_use()
    );
}

/// An open whose handshake completes only after shutdown() has run must not
/// leave a connection (or task) behind.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_racing_shutdown_leaves_nothing_behind() {
    let (got_req_tx, mut got_req) = tokio::sync::mpsc::unbounded_channel::<()>();
    let release = Arc::new(tokio::sync::Notify::new());
    let r2 = release.clone();
    let server = RawServer::start(move |mut tcp| {
        let (got_req_tx, release) = (got_req_tx.clone(), r2.clone());
        async move {
            let Some(head) = read_request_head(&mut tcp).await else {
                return;
            };
            let _ = got_req_tx.send(());
            release.notified().await;
            let _ = tcp.write_all(&switching_protocols(&head)).await;
            drain_until_eof(tcp).await;
        }
    })
    .await;
    let p = server.port();
    let h = Arc::new(host(
        allow_localhost(p),
        StaticResolver::new(),
        HostConfig::default(),
    ));
    let open = open_until_request(&h, p, &mut got_req).await;
    tokio::time::timeout(OUTER, h.shutdown()).await.unwrap();
    release.notify_one();
    let r = tokio::time::timeout(OUTER, open).await.unwrap().unwrap();
    assert!(
        wait_until(OUTER, || h.active_tasks() == 0 && h.open_connections() == 0).await,
        "open returned {r:?}; after shutdown: {} tasks, {} connections",
        h.active_tasks(),
        h.open_connections()
    );
    let err = r.expect_err("an open completing after shutdown must fail");
    assert_eq!(err.code(), "shutdown", "{err}");
    assert!(
        wait_until(OUTER, || server.finished() == 1).await,
        "the peer's socket stayed open"
    );
}

/// A `recv` waiting on a connection whose task is stuck in a send (peer never
/// reads) is woken by shutdown or close with `Closed`, not left waiting for
/// its own timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pending_recv_is_woken_by_shutdown_and_close() {
    let deaf = deaf().await;
    let p = deaf.port();
    let cfg = HostConfig {
        write_timeout: Duration::from_secs(60),
        ..HostConfig::default()
    };
    let h = Arc::new(host(allow_localhost(p), StaticResolver::new(), cfg));
    let url = format!("ws://localhost:{p}/");

    for how in ["close", "shutdown"] {
        let id = h.open(&url, OpenOptions::default()).await.unwrap();
        // Fill the pipe until a send stalls inside the connection task.
        let stalled = Arc::new(AtomicUsize::new(0));
        let (h2, s2) = (h.clone(), stalled.clone());
        let sender = tokio::spawn(async move {
            loop {
                let r = tokio::time::timeout(
                    Duration::from_millis(300),
                    h2.send_binary(id, vec![0u8; 1024 * 1024]),
                )
                .await;
                match r {
                    Ok(Ok(())) => {}
                    Ok(Err(_)) => return,
                    Err(_) => {
                        // Stalled: hand over and keep the send pending.
                        s2.store(1, Ordering::SeqCst);
                        let _ = h2.send_binary(id, vec![0u8; 16]).await;
                        return;
                    }
                }
            }
        });
        assert!(
            wait_until(OUTER, || stalled.load(Ordering::SeqCst) == 1).await,
            "the peer never stalled a send"
        );
        // More sends than the command queue holds: the queue is full, so a
        // close that waited for queue room would wait for the write timeout.
        let mut queued: Vec<_> = (0..12)
            .map(|_| Box::pin(h.send_text(id, "queued")))
            .collect();
        for f in queued.iter_mut() {
            tokio::select! {
                biased;
                r = f.as_mut() => panic!("{how}: a send to a stalled peer returned: {r:?}"),
                _ = std::future::ready(()) => {}
            }
        }
        // Poll the recv once so it is registered and waiting, then end the
        // connection while it waits.
        let recv = h.recv(id, Some(Duration::from_secs(60)));
        tokio::pin!(recv);
        tokio::select! {
            biased;
            r = &mut recv => panic!("{how}: recv returned early: {r:?}"),
            _ = std::future::ready(()) => {}
        }
        let t0 = Instant::now();
        let end = async {
            if how == "close" {
                tokio::time::timeout(OUTER, h.close(id))
                    .await
                    .unwrap()
                    .unwrap();
            } else {
                tokio::time::timeout(OUTER, h.shutdown()).await.unwrap();
            }
        };
        let (got, ()) = tokio::join!(tokio::time::timeout(OUTER, &mut recv), end);
        let Ok(got) = got else {
            panic!("{how}: a pending recv was left waiting")
        };
        assert!(
            matches!(got, Ok(netgrant_runtime::Incoming::Closed { .. })),
            "{how}: {got:?}"
        );
        assert!(
            t0.elapsed() < Duration::from_secs(5),
            "{how}: {:?}",
            t0.elapsed()
        );
        let queued = tokio::time::timeout(OUTER, futures_util::future::join_all(queued))
            .await
            .unwrap_or_else(|_| panic!("{how}: queued sends outlived the connection"));
        assert!(queued.iter().all(|r| r.is_err()), "{how}: {queued:?}");
        tokio::time::timeout(OUTER, sender).await.unwrap().unwrap();
    }
    assert_eq!((h.active_tasks(), h.open_connections()), (0, 0));
}

/// Shutdown reaches each connection's task through the connection's own
/// close signal (decision 192): every peer, idle or just written to, gets a
/// 1001 close frame (not a dropped socket).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_sends_every_peer_1001() {
    let (codes_tx, mut codes) = tokio::sync::mpsc::unbounded_channel::<Option<Option<u16>>>();
    let server = RawServer::start(move |mut tcp| {
        let codes_tx = codes_tx.clone();
        async move {
            if accept_raw(&mut tcp).await.is_some() {
                let _ = codes_tx.send(read_close_code(&mut tcp).await);
            }
        }
    })
    .await;
    let (h, url) = local_host(server.port());
    let mut ids = Vec::new();
    for i in 0..4 {
        let id = h.open(&url, OpenOptions::default()).await.unwrap();
        if i % 2 == 0 {
            h.send_text(id, "queued before the shutdown").await.unwrap();
        }
        ids.push(id);
    }
    tokio::time::timeout(OUTER, h.shutdown())
        .await
        .expect("shutdown must return");
    for _ in 0..4 {
        let code = tokio::time::timeout(OUTER, codes.recv())
            .await
            .expect("every peer hears from its connection")
            .unwrap();
        assert_eq!(code, Some(Some(1001)), "the peer's close frame");
    }
    assert_eq!(h.active_tasks(), 0);
    assert_eq!(h.open_connections(), 0);
    // Shut down means forgotten: the handles are gone with the host's table.
    for id in ids {
        assert_eq!(h.status(id).unwrap_err().code(), "unknown_connection");
    }
}

/// A peer that reads the handshake request, says it got it, and never
/// answers; it ends when the client's socket closes.
async fn silent_after_request(got_req_tx: tokio::sync::mpsc::UnboundedSender<()>) -> RawServer {
    RawServer::start(move |mut tcp| {
        let got_req_tx = got_req_tx.clone();
        async move {
            if read_request_head(&mut tcp).await.is_some() {
                let _ = got_req_tx.send(());
                drain_until_eof(tcp).await;
            }
        }
    })
    .await
}

/// Opens `ws://localhost:{p}/` in a task of its own and returns once the
/// peer has read the handshake request (the open is then mid-handshake).
async fn open_until_request(
    h: &Arc<WebSocketHost>,
    p: u16,
    got_req: &mut tokio::sync::mpsc::UnboundedReceiver<()>,
) -> tokio::task::JoinHandle<Result<netgrant_runtime::ConnectionId, netgrant_runtime::HostError>> {
    let h2 = h.clone();
    let open = tokio::spawn(async move {
        h2.open(&format!("ws://localhost:{p}/"), OpenOptions::default())
            .await
    });
    tokio::time::timeout(OUTER, got_req.recv())
        .await
        .unwrap()
        .unwrap();
    open
}

/// The open's records: an allow, then its end (`sink` holds nothing else).
fn open_records(sink: &Collect) -> Vec<(String, String)> {
    sink.json()
        .iter()
        .map(|r| {
            let what = r.get("code").or(r.get("outcome")).and_then(|v| v.as_str());
            (
                r["record"].as_str().unwrap().to_string(),
                what.unwrap().to_string(),
            )
        })
        .collect()
}

/// `shutdown()` ends an open whose peer never answers the handshake at
/// once, not when the handshake times out: the open fails `shutdown`, its
/// socket is closed, and its end is recorded.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_ends_an_open_whose_peer_never_answers() {
    let (got_req_tx, mut got_req) = tokio::sync::mpsc::unbounded_channel::<()>();
    let server = silent_after_request(got_req_tx).await;
    let p = server.port();
    let sink = Arc::new(Collect::default());
    let cfg = HostConfig {
        // Far beyond OUTER: only shutdown can end this open in time.
        handshake_timeout: Duration::from_secs(120),
        ..HostConfig::default()
    };
    let h = Arc::new(host(allow_localhost(p), StaticResolver::new(), cfg).with_audit(sink.clone()));
    let open = open_until_request(&h, p, &mut got_req).await;
    let started = Instant::now();
    tokio::time::timeout(OUTER, h.shutdown()).await.unwrap();
    let r = tokio::time::timeout(OUTER, open)
        .await
        .expect("the open outlived shutdown by OUTER")
        .unwrap();
    assert_eq!(r.expect_err("no peer answered").code(), "shutdown");
    assert!(
        wait_until(OUTER, || server.finished() == 1).await,
        "the open's socket stayed open after shutdown"
    );
    assert!(started.elapsed() < OUTER);
    assert_eq!(
        open_records(&sink),
        [
            ("decision".to_string(), "allowed".to_string()),
            ("finished".to_string(), "shutdown".to_string())
        ]
    );
}

/// An open its caller gives up on (the future dropped mid-handshake)
/// closes its socket and still records the end of the allowed open, once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_open_dropped_mid_handshake_records_its_end() {
    let (got_req_tx, mut got_req) = tokio::sync::mpsc::unbounded_channel::<()>();
    let server = silent_after_request(got_req_tx).await;
    let p = server.port();
    let sink = Arc::new(Collect::default());
    let h = Arc::new(
        host(
            allow_localhost(p),
            StaticResolver::new(),
            HostConfig::default(),
        )
        .with_audit(sink.clone()),
    );
    let open = open_until_request(&h, p, &mut got_req).await;
    open.abort();
    assert!(open.await.unwrap_err().is_cancelled());
    assert!(
        wait_until(OUTER, || server.finished() == 1).await,
        "the dropped open's socket stayed open"
    );
    assert_eq!(
        open_records(&sink),
        [
            ("decision".to_string(), "allowed".to_string()),
            ("finished".to_string(), "cancelled".to_string())
        ]
    );
    // Nothing of the open is left counted in the host.
    assert_eq!((h.active_tasks(), h.open_connections()), (0, 0));
}
