//! WebSocketHost vs raw tokio-tungstenite on the same loopback echo peer
//! (on a thread and a runtime of its own, see `echo_peer`):
//! echo round trips (1 KiB, 64 KiB), connect latency, and memory per idle
//! connection. Run: `cargo bench -p netgrant-runtime`.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use futures_util::{SinkExt, StreamExt};
use netgrant_policy::{compile, Authorizer, Grant, Manifest, Request, LOCALHOST_ADDRS};
use netgrant_runtime::{HostConfig, Incoming, OpenOptions, StaticResolver, WebSocketHost};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::{TcpListener, TcpStream};
use tokio::runtime::Runtime;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, WebSocketConfig};
use tokio_tungstenite::tungstenite::Message;

mod support;
use support::{interleave, report, rss_bytes, ROUNDS};

fn rt() -> Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

async fn echo_server() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = l.accept().await {
            tokio::spawn(async move {
                let _ = tcp.set_nodelay(true);
                if let Ok(mut ws) = tokio_tungstenite::accept_async(tcp).await {
                    while let Some(Ok(m)) = ws.next().await {
                        if m.is_text() || m.is_binary() {
                            if ws.send(m).await.is_err() {
                                break;
                            }
                        } else if m.is_close() {
                            break;
                        }
                    }
                }
            });
        }
    });
    addr
}

/// The echo peer every row talks to, on a loopback port. A real peer is
/// another process: here it runs on a thread and a runtime of its own, so
/// it is scheduled apart from the code measured, as it would be.
/// `NETGRANT_BENCH_PEER=shared` puts it on the measured runtime's two
/// workers instead (how the rows ran before decision 197): its tasks then
/// compete with the client's, and a row swings with which worker ends up
/// running what, more than with the client's own work.
fn echo_peer(rt: &Runtime) -> SocketAddr {
    if peer_shared() {
        return rt.block_on(echo_server());
    }
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::Builder::new()
        .name("echo-peer".into())
        .spawn(move || {
            let peer = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            peer.block_on(async move {
                tx.send(echo_server().await).unwrap();
                std::future::pending::<()>().await
            })
        })
        .unwrap();
    rx.recv().unwrap()
}

fn peer_shared() -> bool {
    std::env::var("NETGRANT_BENCH_PEER").as_deref() == Ok("shared")
}

/// The benchmark's one-target policy, indexed.
fn authorizer_for(port: u16) -> Authorizer {
    let url = format!("ws://localhost:{port}/");
    let m = Manifest::parse(
        "plugin.toml",
        &format!("[plugin]\nname = \"b\"\nversion = \"1.0.0\"\n[[host_api.websocket]]\nurl = \"{url}\"\n"),
    )
    .value
    .unwrap();
    let g = Grant::parse(
        "grant.toml",
        &format!("plugin = \"b\"\n[[host_api.websocket]]\nurl = \"{url}\"\n"),
    )
    .value
    .unwrap();
    Authorizer::new(&compile(&m, Some(&g)).policy.unwrap())
}

fn host_for(port: u16, max_connections: usize) -> WebSocketHost {
    let cfg = HostConfig {
        max_connections,
        ..HostConfig::default()
    };
    WebSocketHost::new(
        Arc::new(authorizer_for(port)),
        Arc::new(StaticResolver::new()),
        cfg,
    )
    .unwrap()
}

/// One open + close at the floor of the host's design (decision 190): the
/// URL authorized and its addresses checked before connecting, TCP and the
/// handshake under deadlines with the host's bounds, the socket split in a
/// task of its own that selects over a close signal, a command channel and
/// its reads, and closes with 1000 when asked.
async fn design_floor_open_close(authz: &Authorizer, url: &str) {
    let req = Request::websocket(url);
    let ok = authz
        .prepare(&req)
        .unwrap()
        .authorize_addresses(&LOCALHOST_ADDRS)
        .unwrap();
    let cfg = HostConfig::default();
    let ws_config = WebSocketConfig::default()
        .max_message_size(Some(cfg.max_message_bytes))
        .max_frame_size(Some(cfg.max_frame_bytes))
        .max_write_buffer_size(cfg.max_write_buffer_bytes)
        .write_buffer_size(cfg.max_write_buffer_bytes.min(128 * 1024))
        .read_buffer_size(32 * 1024);
    let addr = ok.addresses()[0];
    let tcp = tokio::time::timeout(cfg.connect_timeout, TcpStream::connect(addr))
        .await
        .unwrap()
        .unwrap();
    tcp.set_nodelay(true).unwrap();
    let (ws, _) = tokio::time::timeout(
        cfg.handshake_timeout,
        tokio_tungstenite::client_async_with_config(ok.request_url(), tcp, Some(ws_config)),
    )
    .await
    .unwrap()
    .unwrap();
    let (commands, mut queued) = tokio::sync::mpsc::channel::<Message>(256);
    let (close, mut closed) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        let (mut sink, mut stream) = ws.split();
        loop {
            tokio::select! {
                biased;
                _ = &mut closed => {
                    let frame = CloseFrame { code: CloseCode::Normal, reason: "".into() };
                    let _ = sink.send(Message::Close(Some(frame))).await;
                    break;
                }
                m = queued.recv() => match m {
                    Some(m) => { let _ = sink.send(m).await; }
                    None => break,
                },
                m = stream.next() => if m.is_none() { break },
            }
        }
    });
    close.send(()).unwrap();
    task.await.unwrap();
    drop(commands);
}

async fn raw_connect(addr: SocketAddr) -> tokio_tungstenite::WebSocketStream<TcpStream> {
    let tcp = TcpStream::connect(addr).await.unwrap();
    tcp.set_nodelay(true).unwrap();
    let url = format!("ws://localhost:{}/", addr.port());
    tokio_tungstenite::client_async(url, tcp).await.unwrap().0
}

fn bench_echo(c: &mut Criterion) {
    let rt = rt();
    let addr = echo_peer(&rt);
    let host = host_for(addr.port(), 16);
    let url = format!("ws://localhost:{}/", addr.port());
    let id = rt
        .block_on(host.open(&url, OpenOptions::default()))
        .unwrap();
    let mut raw = rt.block_on(raw_connect(addr));
    let mut g = c.benchmark_group("echo");
    g.measurement_time(Duration::from_secs(3))
        .warm_up_time(Duration::from_millis(500))
        .sample_size(20);
    for size in [1024usize, 64 * 1024] {
        let payload = vec![7u8; size];
        g.throughput(Throughput::Bytes(size as u64));
        g.bench_with_input(BenchmarkId::new("netgrant_host", size), &size, |b, _| {
            b.iter_custom(|iters| {
                rt.block_on(async {
                    let start = Instant::now();
                    for _ in 0..iters {
                        host.send_binary(id, payload.clone()).await.unwrap();
                        match host.recv(id, Some(Duration::from_secs(5))).await.unwrap() {
                            Incoming::Binary(b) => assert_eq!(b.len(), size),
                            other => panic!("{other:?}"),
                        }
                    }
                    start.elapsed()
                })
            })
        });
        g.bench_with_input(BenchmarkId::new("raw_tungstenite", size), &size, |b, _| {
            b.iter_custom(|iters| {
                rt.block_on(async {
                    let start = Instant::now();
                    for _ in 0..iters {
                        raw.send(Message::binary(payload.clone())).await.unwrap();
                        let m = raw.next().await.unwrap().unwrap();
                        assert_eq!(m.len(), size);
                    }
                    start.elapsed()
                })
            })
        });
    }
    g.finish();

    // Throughput: a window of 64 messages in flight (the way a bridge streams).
    const WINDOW: usize = 64;
    let mut g = c.benchmark_group("echo_pipelined_64");
    g.measurement_time(Duration::from_secs(3))
        .warm_up_time(Duration::from_millis(500))
        .sample_size(20);
    for size in [1024usize, 64 * 1024] {
        let payload = vec![7u8; size];
        g.throughput(Throughput::Bytes((size * WINDOW) as u64));
        g.bench_with_input(BenchmarkId::new("netgrant_host", size), &size, |b, _| {
            b.iter_custom(|iters| {
                rt.block_on(async {
                    let start = Instant::now();
                    for _ in 0..iters {
                        let send = async {
                            for _ in 0..WINDOW {
                                host.send_binary(id, payload.clone()).await.unwrap();
                            }
                        };
                        let recv = async {
                            for _ in 0..WINDOW {
                                match host.recv(id, Some(Duration::from_secs(5))).await.unwrap() {
                                    Incoming::Binary(b) => assert_eq!(b.len(), size),
                                    other => panic!("{other:?}"),
                                }
                            }
                        };
                        tokio::join!(send, recv);
                    }
                    start.elapsed()
                })
            })
        });
        g.bench_with_input(BenchmarkId::new("raw_tungstenite", size), &size, |b, _| {
            b.iter_custom(|iters| {
                rt.block_on(async {
                    let start = Instant::now();
                    for _ in 0..iters {
                        let (mut tx, mut rx) = (&mut raw).split();
                        let send = async {
                            for _ in 0..WINDOW {
                                tx.send(Message::binary(payload.clone())).await.unwrap();
                            }
                        };
                        let recv = async {
                            for _ in 0..WINDOW {
                                let m = rx.next().await.unwrap().unwrap();
                                assert_eq!(m.len(), size);
                            }
                        };
                        tokio::join!(send, recv);
                    }
                    start.elapsed()
                })
            })
        });
    }
    g.finish();
    rt.block_on(host.shutdown());
}

fn bench_connect(c: &mut Criterion) {
    let rt = rt();
    let addr = echo_peer(&rt);
    let host = host_for(addr.port(), 16);
    let url = format!("ws://localhost:{}/", addr.port());
    let mut g = c.benchmark_group("connect");
    g.measurement_time(Duration::from_secs(3))
        .warm_up_time(Duration::from_millis(500))
        .sample_size(20);
    g.bench_function("netgrant_host_open_close", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let start = Instant::now();
                for _ in 0..iters {
                    let id = host.open(&url, OpenOptions::default()).await.unwrap();
                    host.close(id).await.unwrap();
                }
                start.elapsed()
            })
        })
    });
    g.bench_function("raw_tungstenite_connect_close", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let start = Instant::now();
                for _ in 0..iters {
                    let mut ws = raw_connect(addr).await;
                    ws.close(None).await.unwrap();
                }
                start.elapsed()
            })
        })
    });
    g.finish();
    rt.block_on(host.shutdown());
}

/// Memory per idle connection, both ways (printed; recorded in docs/benchmarks.md).
fn bench_idle_memory(_c: &mut Criterion) {
    // In `cargo test --benches` smoke mode, keep it tiny.
    let n: usize = if std::env::args().any(|a| a == "--bench") {
        500
    } else {
        10
    };
    let rt = rt();
    let addr = echo_peer(&rt);
    let url = format!("ws://localhost:{}/", addr.port());
    let host = host_for(addr.port(), n);
    // Both sets stay alive until the end, so freed memory is never reused by
    // the other set and skews its delta. Raw first, then the host.
    // A real client keeps a reader on every connection (to see messages and
    // answer pings), so each raw connection gets one, like the host's task.
    let before_raw = rss_bytes();
    let raws: Vec<_> = rt.block_on(async {
        let mut v = Vec::new();
        for _ in 0..n {
            let mut ws = raw_connect(addr).await;
            v.push(tokio::spawn(async move {
                while let Some(Ok(_)) = ws.next().await {}
            }));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
        v
    });
    let after_raw = rss_bytes();
    let ids: Vec<_> = rt.block_on(async {
        let mut v = Vec::new();
        for _ in 0..n {
            v.push(host.open(&url, OpenOptions::default()).await.unwrap());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
        v
    });
    let after_host = rss_bytes();
    println!(
        "idle memory per connection (client + in-process server, {n} connections): netgrant host {} B, raw tungstenite {} B",
        after_host.saturating_sub(after_raw) / n,
        after_raw.saturating_sub(before_raw) / n
    );
    rt.block_on(host.shutdown());
    drop(ids);
    for r in raws {
        r.abort();
    }
}

/// The floor for a socket owned by a task: raw tokio-tungstenite on a task
/// of its own that writes what a channel brings and forwards what it reads
/// to another channel — the hand-off the host's design has on both sides
/// (decision 169), with none of its checks, bounds or deadlines.
struct TaskedRaw {
    out: tokio::sync::mpsc::UnboundedSender<Vec<u8>>,
    inbox: tokio::sync::mpsc::UnboundedReceiver<Vec<u8>>,
}

impl TaskedRaw {
    async fn connect(addr: SocketAddr) -> TaskedRaw {
        let ws = raw_connect(addr).await;
        let (out, mut to_send) = tokio::sync::mpsc::unbounded_channel::<Vec<u8>>();
        let (to_inbox, inbox) = tokio::sync::mpsc::unbounded_channel();
        tokio::spawn(async move {
            let (mut tx, mut rx) = ws.split();
            loop {
                tokio::select! {
                    m = to_send.recv() => match m {
                        Some(m) => tx.send(Message::binary(m)).await.unwrap(),
                        None => break,
                    },
                    m = rx.next() => match m {
                        Some(Ok(m)) => {
                            let _ = to_inbox.send(m.into_data().to_vec());
                        }
                        _ => break,
                    },
                }
            }
        });
        TaskedRaw { out, inbox }
    }
}

/// Where the measured calls run. A host calls the runtime from its own
/// tasks, on the runtime's workers; `block_on` runs them on the calling
/// thread instead, outside the worker pool, so that every hand-off to a
/// connection's task is a wake-up across threads.
#[derive(Clone, Copy, PartialEq)]
enum Caller {
    /// In a task spawned on the runtime (how a host calls it).
    Worker,
    /// In `Runtime::block_on` on the benchmark's own thread.
    Outside,
}

impl Caller {
    fn name(self) -> &'static str {
        match self {
            Caller::Worker => "callers on a runtime worker",
            Caller::Outside => "callers outside the runtime (block_on)",
        }
    }

    /// Runs `f` where this caller runs and returns the time it reports.
    fn run<F>(self, rt: &Runtime, f: F) -> Duration
    where
        F: std::future::Future<Output = Duration> + Send + 'static,
    {
        match self {
            Caller::Worker => rt.block_on(rt.spawn(f)).unwrap(),
            Caller::Outside => rt.block_on(f),
        }
    }
}

type RawWs = Arc<tokio::sync::Mutex<tokio_tungstenite::WebSocketStream<TcpStream>>>;

/// One binary message of `size` bytes from the host.
async fn recv_binary(host: &WebSocketHost, id: netgrant_runtime::ConnectionId, size: usize) {
    match host.recv(id, Some(Duration::from_secs(5))).await.unwrap() {
        Incoming::Binary(b) => assert_eq!(b.len(), size),
        other => panic!("{other:?}"),
    }
}

/// `NETGRANT_BENCH_TABLE=1`: every host row against raw tokio-tungstenite
/// in alternation, round by round (`support::interleave`: 15 rounds of
/// about 100 ms, the order swapped each round), so that a load swing on the
/// shared machine lands on both sides of a ratio. Prints host time ÷ raw
/// time for the same work, median and range, once with the callers on a
/// runtime worker and once from outside the runtime ([`Caller`]); both
/// sides of a ratio always run the same way. Recorded in
/// docs/benchmarks.md.
fn bench_interleaved(_c: &mut Criterion) {
    if std::env::var_os("NETGRANT_BENCH_TABLE").is_none() {
        return;
    }
    pin_heap_trim();
    for caller in [Caller::Worker, Caller::Outside] {
        interleaved_table(caller);
    }
}

/// Stops glibc from giving the top of the heap back to the kernel for the
/// rest of the process (a trim threshold of 2 GiB, 64 MiB of padding), on
/// both sides of every ratio. Whether a free lands in a chunk that glibc
/// then trims depends on what else sits above it in the heap, so the 64 KiB
/// rows swung by 2× with unrelated code changes (the host's inbox frees
/// up to 64 messages at once; raw frees each as it goes): they measured
/// the heap's layout, not the code (docs/decisions.md, 186). Elsewhere
/// than glibc, nothing.
fn pin_heap_trim() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets allocator parameters; called before the
    // table's runtimes start, from the benchmark's one thread.
    unsafe {
        libc::mallopt(libc::M_TRIM_THRESHOLD, i32::MAX);
        libc::mallopt(libc::M_TOP_PAD, 64 << 20);
        println!("glibc heap trimming pinned (trim threshold 2 GiB, top pad 64 MiB)");
    }
}

fn interleaved_table(caller: Caller) {
    const WINDOW: usize = 64;
    let rt = rt();
    let addr = echo_peer(&rt);
    let host = Arc::new(host_for(addr.port(), 16));
    let url = format!("ws://localhost:{}/", addr.port());
    let id = rt
        .block_on(host.open(&url, OpenOptions::default()))
        .unwrap();
    let raw: RawWs = Arc::new(tokio::sync::Mutex::new(rt.block_on(raw_connect(addr))));
    let tasked = Arc::new(tokio::sync::Mutex::new(
        rt.block_on(TaskedRaw::connect(addr)),
    ));
    println!(
        "interleaved, {}, the peer {}: host time ÷ other time per round ({ROUNDS} rounds)",
        caller.name(),
        match peer_shared() {
            true => "on the same workers",
            false => "on its own thread",
        }
    );
    for size in [1024usize, 64 * 1024] {
        let payload = vec![7u8; size];
        let ours = |n: u32| {
            let (host, payload) = (host.clone(), payload.clone());
            caller.run(&rt, async move {
                let start = Instant::now();
                for _ in 0..n {
                    host.send_binary(id, payload.clone()).await.unwrap();
                    recv_binary(&host, id, size).await;
                }
                start.elapsed()
            })
        };
        let raw_side = |n: u32| {
            let (raw, payload) = (raw.clone(), payload.clone());
            caller.run(&rt, async move {
                let mut raw = raw.lock().await;
                let start = Instant::now();
                for _ in 0..n {
                    raw.send(Message::binary(payload.clone())).await.unwrap();
                    assert_eq!(raw.next().await.unwrap().unwrap().len(), size);
                }
                start.elapsed()
            })
        };
        report(
            &format!("echo {size} B, one at a time"),
            interleave(ours, raw_side),
        );
        let floor = |n: u32| {
            let (tasked, payload) = (tasked.clone(), payload.clone());
            caller.run(&rt, async move {
                let mut tasked = tasked.lock().await;
                let start = Instant::now();
                for _ in 0..n {
                    tasked.out.send(payload.clone()).unwrap();
                    assert_eq!(tasked.inbox.recv().await.unwrap().len(), size);
                }
                start.elapsed()
            })
        };
        report(
            &format!("echo {size} B, one at a time, against a task-owned raw socket"),
            interleave(ours, floor),
        );
    }
    for size in [1024usize, 64 * 1024] {
        let payload = vec![7u8; size];
        let ours = |n: u32| {
            let (host, payload) = (host.clone(), payload.clone());
            caller.run(&rt, async move {
                let start = Instant::now();
                for _ in 0..n {
                    let send = async {
                        for _ in 0..WINDOW {
                            host.send_binary(id, payload.clone()).await.unwrap();
                        }
                    };
                    let recv = async {
                        for _ in 0..WINDOW {
                            recv_binary(&host, id, size).await;
                        }
                    };
                    tokio::join!(send, recv);
                }
                start.elapsed()
            })
        };
        let raw_side = |n: u32| {
            let (raw, payload) = (raw.clone(), payload.clone());
            caller.run(&rt, async move {
                let mut raw = raw.lock().await;
                let start = Instant::now();
                for _ in 0..n {
                    let (mut tx, mut rx) = (&mut *raw).split();
                    let send = async {
                        for _ in 0..WINDOW {
                            tx.send(Message::binary(payload.clone())).await.unwrap();
                        }
                    };
                    let recv = async {
                        for _ in 0..WINDOW {
                            assert_eq!(rx.next().await.unwrap().unwrap().len(), size);
                        }
                    };
                    tokio::join!(send, recv);
                }
                start.elapsed()
            })
        };
        report(
            &format!("echo {size} B, {WINDOW} in flight (time; throughput is its inverse)"),
            interleave(ours, raw_side),
        );
        let floor = |n: u32| {
            let (tasked, payload) = (tasked.clone(), payload.clone());
            caller.run(&rt, async move {
                let mut tasked = tasked.lock().await;
                let start = Instant::now();
                for _ in 0..n {
                    for _ in 0..WINDOW {
                        tasked.out.send(payload.clone()).unwrap();
                    }
                    for _ in 0..WINDOW {
                        assert_eq!(tasked.inbox.recv().await.unwrap().len(), size);
                    }
                }
                start.elapsed()
            })
        };
        report(
            &format!("echo {size} B, {WINDOW} in flight, against a task-owned raw socket"),
            interleave(ours, floor),
        );
    }
    let ours = |n: u32| {
        let (host, url) = (host.clone(), url.clone());
        caller.run(&rt, async move {
            let start = Instant::now();
            for _ in 0..n {
                let c = host.open(&url, OpenOptions::default()).await.unwrap();
                host.close(c).await.unwrap();
            }
            start.elapsed()
        })
    };
    let raw_side = |n: u32| {
        caller.run(&rt, async move {
            let start = Instant::now();
            for _ in 0..n {
                let mut ws = raw_connect(addr).await;
                ws.close(None).await.unwrap();
            }
            start.elapsed()
        })
    };
    report("open + close", interleave(ours, raw_side));
    // Against the floor of a task-owned socket: connect and hand the socket
    // to a task, then ask it to close and wait for it to end (what the
    // host's `close` does).
    let floor = |n: u32| {
        caller.run(&rt, async move {
            let start = Instant::now();
            for _ in 0..n {
                let mut ws = raw_connect(addr).await;
                let (close, closed) = tokio::sync::oneshot::channel::<()>();
                let task = tokio::spawn(async move {
                    let _ = closed.await;
                    ws.close(None).await.unwrap();
                });
                close.send(()).unwrap();
                task.await.unwrap();
            }
            start.elapsed()
        })
    };
    report(
        "open + close, against a task-owned raw socket",
        interleave(ours, floor),
    );
    // The floor of the design (decision 190): what any host that decides
    // before it connects and keeps the socket in a task must do, with none
    // of this host's bookkeeping (connection table, status, audit records,
    // write budget, deadlines).
    let authz = Arc::new(authorizer_for(addr.port()));
    let design = |n: u32| {
        let (authz, url) = (authz.clone(), url.clone());
        caller.run(&rt, async move {
            let start = Instant::now();
            for _ in 0..n {
                design_floor_open_close(&authz, &url).await;
            }
            start.elapsed()
        })
    };
    report(
        "open + close, the design's floor against raw",
        interleave(design, raw_side),
    );
    report(
        "open + close, against the design's floor",
        interleave(ours, design),
    );
    rt.block_on(host.shutdown());
}

criterion_group!(
    benches,
    bench_echo,
    bench_connect,
    bench_idle_memory,
    bench_interleaved
);
criterion_main!(benches);
