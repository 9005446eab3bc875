//! Load: many connections through many `WebSocketHost`s to one in-process
//! echo server on loopback. Every connection sends numbered text and binary
//! messages of mixed sizes up to the message bound (at most 16 in flight) and
//! checks that each echo comes back complete and in order; then `shutdown()` of all hosts must end
//! every connection (the server sees a close frame on each) within 1 s.
//!
//! * `load_reduced` (default, CI): 8 hosts × 16 = 128 connections × 20 messages.
//! * `load_full` (ignored): 63 hosts × 16 = 1,008 connections × 100 messages.
//!   Run it with `cargo test -p netgrant-runtime --test load -- --ignored
//!   --nocapture`; results are recorded in `docs/benchmarks.md`.

#![allow(clippy::result_large_err)]

mod support;
use futures_util::{SinkExt, StreamExt};
use netgrant_runtime::{
    ConnectionId, GlobalLimit, HostConfig, Incoming, OpenOptions, StaticResolver, WebSocketHost,
};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use support::*;
use tokio::net::TcpListener;

/// The message bound of every host in this test: sizes go up to it.
const BOUND: usize = 64 * 1024;

/// Messages in flight per connection (sent, echo not yet received), as a
/// streaming client would keep them.
const WINDOW: usize = 16;

/// A recv waits at most this long (the full size loads both cores).
const RECV: Option<Duration> = Some(Duration::from_secs(60));

struct Size {
    hosts: usize,
    per_host: usize,
    messages: usize,
}

/// An echo server that counts connections ended by a close frame (clean) and
/// any other way.
struct Echo {
    port: u16,
    clean: Arc<AtomicUsize>,
    other: Arc<AtomicUsize>,
}

async fn echo() -> Echo {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    let (clean, other) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let (c, o) = (clean.clone(), other.clone());
    tokio::spawn(async move {
        while let Ok((tcp, _)) = l.accept().await {
            let (c, o) = (c.clone(), o.clone());
            tokio::spawn(async move {
                let _ = tcp.set_nodelay(true);
                let Ok(mut ws) = tokio_tungstenite::accept_async(tcp).await else {
                    o.fetch_add(1, Ordering::SeqCst);
                    return;
                };
                while let Some(Ok(m)) = ws.next().await {
                    if m.is_close() {
                        c.fetch_add(1, Ordering::SeqCst);
                        return;
                    }
                    if (m.is_text() || m.is_binary()) && ws.send(m).await.is_err() {
                        break;
                    }
                }
                o.fetch_add(1, Ordering::SeqCst);
            });
        }
    });
    Echo { port, clean, other }
}

/// A small deterministic generator (xorshift), so runs are repeatable.
fn mix(c: usize, k: usize) -> u64 {
    let mut x = (c as u64) << 32 | k as u64 | 1;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    x.wrapping_mul(0x2545_f491_4f6c_dd1d)
}

/// Connection `c`'s message `k`: text or binary, every 20th exactly at the
/// bound, the others log-uniform from 0 bytes to the bound; the content
/// depends on `(c, k)`, so a lost, reordered or corrupted echo never matches.
fn message(c: usize, k: usize) -> Incoming {
    let r = mix(c, k);
    let len = if k % 20 == 19 {
        BOUND
    } else {
        let bits = (r % 17) as u32; // 2^0 .. 2^16
        ((r >> 8) as usize % (1usize << bits)).min(BOUND)
    };
    let tag = format!("{c}:{k}:");
    let fill = b'a' + (r % 26) as u8;
    let mut body: Vec<u8> = tag.into_bytes();
    body.resize(len.max(body.len()), fill);
    body.truncate(len);
    if (r >> 40) % 2 == 0 {
        Incoming::Text(String::from_utf8(body).unwrap())
    } else {
        Incoming::Binary(body)
    }
}

fn len_of(m: &Incoming) -> usize {
    payload(m).map_or(0, |p| p.len())
}

/// `VmHWM` / `VmRSS` of this process in KiB.
fn status_kib(key: &str) -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = s.lines().find(|l| l.starts_with(key))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Raises the soft open-file limit to the hard limit if `need` exceeds it;
/// fails clearly if even the hard limit is too low.
#[cfg(unix)]
#[allow(clippy::unnecessary_cast)] // rlim_t is not u64 on every platform
fn ensure_fds(need: u64) {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit only read and write the struct passed in.
    let got = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) };
    assert_eq!(got, 0, "getrlimit(RLIMIT_NOFILE) failed");
    if (lim.rlim_cur as u64) >= need {
        return;
    }
    let raised = libc::rlimit {
        rlim_cur: lim.rlim_max,
        rlim_max: lim.rlim_max,
    };
    // SAFETY: as above.
    let set = unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) };
    assert!(
        set == 0 && (lim.rlim_max as u64) >= need,
        "this test needs about {need} open files; the limit is {} (hard {}): raise it (`ulimit -n {need}`)",
        lim.rlim_cur,
        lim.rlim_max
    );
}

#[cfg(not(unix))]
fn ensure_fds(_need: u64) {}

/// Sends all of connection `c`'s messages while receiving and checking the
/// echoes; returns the payload bytes echoed.
async fn exchange(h: Arc<WebSocketHost>, id: ConnectionId, c: usize, n: usize) -> usize {
    let window = tokio::sync::Semaphore::new(WINDOW);
    let sender = async {
        for k in 0..n {
            window.acquire().await.unwrap().forget();
            let r = match message(c, k) {
                Incoming::Text(t) => h.send_text(id, t).await,
                Incoming::Binary(b) => h.send_binary(id, b).await,
                _ => unreachable!(),
            };
            r.unwrap_or_else(|e| panic!("connection {c}: send {k}: {e}"));
        }
    };
    let receiver = async {
        let mut bytes = 0;
        for k in 0..n {
            let got = h.recv(id, RECV).await.unwrap();
            let want = message(c, k);
            if got != want {
                panic!(
                    "connection {c}: message {k}: got {} bytes ({:?}), want {} bytes: lost, reordered or corrupted",
                    len_of(&got),
                    std::mem::discriminant(&got),
                    len_of(&want)
                );
            }
            bytes += len_of(&want);
            window.add_permits(1);
        }
        bytes
    };
    let ((), bytes) = tokio::join!(sender, receiver);
    let st = h.status(id).unwrap();
    assert_eq!(
        (st.messages_out, st.messages_in, st.bytes_in, st.inbox_bytes),
        (n as u64, n as u64, bytes as u64, 0),
        "connection {c}: nothing more arrived than was sent"
    );
    bytes
}

async fn run(size: Size) {
    let Size {
        hosts,
        per_host,
        messages,
    } = size;
    let n = hosts * per_host;
    // Both ends of every connection live in this process.
    ensure_fds(2 * n as u64 + 256);
    let rss_before = status_kib("VmRSS:").unwrap_or(0);

    let server = echo().await;
    let p = server.port;
    let global = GlobalLimit::new(n);
    let cfg = HostConfig {
        max_message_bytes: BOUND,
        max_connections: per_host,
        global_limit: Some(global.clone()),
        ..HostConfig::default()
    };
    let authz = allow_localhost(p);
    let hs: Vec<Arc<WebSocketHost>> = (0..hosts)
        .map(|_| Arc::new(host(authz.clone(), StaticResolver::new(), cfg.clone())))
        .collect();
    let url = format!("ws://localhost:{p}/");

    // Open every connection, 64 handshakes at a time.
    let t_open = Instant::now();
    let conns: Vec<(Arc<WebSocketHost>, ConnectionId, usize)> =
        futures_util::stream::iter((0..n).map(|c| (hs[c / per_host].clone(), c)))
            .map(|(h, c)| {
                let url = url.clone();
                async move {
                    let id = h
                        .open(&url, OpenOptions::default())
                        .await
                        .unwrap_or_else(|e| panic!("open {c}: {e}"));
                    (h, id, c)
                }
            })
            .buffer_unordered(64)
            .collect()
            .await;
    let open_time = t_open.elapsed();
    let rss_open = status_kib("VmRSS:").unwrap_or(0);
    assert_eq!(global.in_use(), n);
    for h in &hs {
        assert_eq!(h.open_connections(), per_host);
    }

    // Every connection exchanges its messages concurrently.
    let t_run = Instant::now();
    let tasks: Vec<_> = conns
        .iter()
        .map(|(h, id, c)| tokio::spawn(exchange(h.clone(), *id, *c, messages)))
        .collect();
    let mut bytes = 0usize;
    for t in tasks {
        bytes += t.await.unwrap();
    }
    let run_time = t_run.elapsed();
    for (h, id, c) in &conns {
        assert_eq!(
            h.status(*id).unwrap().state,
            netgrant_runtime::State::Open,
            "connection {c}"
        );
    }
    assert_eq!(server.clean.load(Ordering::SeqCst), 0);
    assert_eq!(server.other.load(Ordering::SeqCst), 0);

    // Shut every host down at once.
    let t_shut = Instant::now();
    futures_util::future::join_all(hs.iter().map(|h| h.shutdown())).await;
    let shutdown_time = t_shut.elapsed();
    for (i, h) in hs.iter().enumerate() {
        assert_eq!(
            (h.open_connections(), h.active_tasks()),
            (0, 0),
            "host {i} after shutdown"
        );
    }
    assert_eq!(global.in_use(), 0);
    assert!(
        wait_until(Duration::from_secs(30), || server
            .clean
            .load(Ordering::SeqCst)
            + server.other.load(Ordering::SeqCst)
            == n)
        .await,
        "{} of {n} connections ended at the server",
        server.clean.load(Ordering::SeqCst) + server.other.load(Ordering::SeqCst)
    );
    let clean = server.clean.load(Ordering::SeqCst);
    let peak = status_kib("VmHWM:").unwrap_or(0);

    println!(
        "load: {hosts} hosts x {per_host} = {n} connections x {messages} messages = {} messages each way, \
         {:.1} MiB payload each way; open {:.2?}, exchange {:.2?} ({:.0} msg/s, {:.1} MiB/s each way), \
         shutdown {:.2?}, clean closes {clean}/{n}, RSS before {} MiB, after open {} MiB, peak (VmHWM) {} MiB \
         (host and echo server in one process)",
        n * messages,
        bytes as f64 / 1048576.0,
        open_time,
        run_time,
        (n * messages) as f64 / run_time.as_secs_f64(),
        bytes as f64 / 1048576.0 / run_time.as_secs_f64(),
        shutdown_time,
        rss_before / 1024,
        rss_open / 1024,
        peak / 1024,
    );
    // A connection task that has not sent its close frame when the grace
    // period ends is aborted (its socket still closes). If shutdown returned
    // before that, no task was aborted and every peer got a close frame.
    if shutdown_time < cfg.shutdown_grace {
        assert_eq!(clean, n, "every connection got a close frame from shutdown");
    }
    assert!(
        shutdown_time < Duration::from_secs(1),
        "shutdown of {hosts} hosts took {shutdown_time:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn load_reduced() {
    run(Size {
        hosts: 8,
        per_host: 16,
        messages: 20,
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "full size (1,008 connections, ~1 minute): run with --ignored"]
async fn load_full() {
    run(Size {
        hosts: 63,
        per_host: 16,
        messages: 100,
    })
    .await;
}
