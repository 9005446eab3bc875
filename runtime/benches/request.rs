//! RequestHost vs plain hyper against the same loopback HTTP/1.1 server, in
//! one run (docs/benchmarks.md, "Request host"):
//!
//! * `netgrant_request_host` — `RequestHost::request` as shipped: authorize,
//!   resolve (`localhost`: no DNS), check, then a pooled connection to a
//!   checked address (or a new one), one request, complete response.
//! * `netgrant_request_host_unpooled` — the same with `pool_max_idle = 0`:
//!   a new connection per call.
//! * `hyper_conn_per_request` — the floor for the unpooled host: hyper's
//!   connection-level client on a fresh `TcpStream` per request.
//! * `hyper_util_pooled` — what a host would otherwise use: hyper-util's
//!   pooled keep-alive client (the yardstick: ≥ 0.9× its throughput,
//!   ≤ 1.2× its latency).
//!
//! Small GETs (13-byte body) and 1 MiB bodies, one at a time (latency) and
//! 16 in flight (throughput), small GETs one at a time from a runtime task
//! (`request_small_in_task`), and the memory of requests in flight (RSS
//! delta with 500 requests waiting on the server, printed). Run:
//! `cargo bench -p netgrant-runtime --bench request`; with
//! `NETGRANT_BENCH_TABLE=1` it also prints the host ÷ hyper-util ratios
//! measured in alternation, round by round (`bench_interleaved`).

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use futures_util::future::join_all;
use http_body_util::{BodyExt, Empty, Full};
use hyper::body::Bytes;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use netgrant_policy::{compile, Authorizer, Grant, Manifest};
use netgrant_runtime::{RequestConfig, RequestHost, RequestOptions, StaticResolver};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::{TcpListener, TcpStream};
use tokio::runtime::Runtime;

mod support;
use support::{interleave, report, rss_bytes, ROUNDS};

const SMALL: &[u8] = b"hello, world!";
const IN_FLIGHT: usize = 16;

/// Requests waiting on `/hold` so far.
static HELD: AtomicUsize = AtomicUsize::new(0);

fn rt() -> Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// `/small` answers 13 bytes, `/big` 1 MiB, `/hold` 13 bytes once `release`
/// is sent; keep-alive on.
async fn server(release: tokio::sync::watch::Receiver<bool>) -> SocketAddr {
    let big = Bytes::from(vec![b'x'; 1 << 20]);
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = l.accept().await {
            let _ = tcp.set_nodelay(true);
            let big = big.clone();
            let release = release.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |req: hyper::Request<_>| {
                    let path = req.uri().path().to_owned();
                    let body = if path == "/big" {
                        big.clone()
                    } else {
                        Bytes::from_static(SMALL)
                    };
                    let mut release = release.clone();
                    async move {
                        if path == "/hold" {
                            HELD.fetch_add(1, Ordering::SeqCst);
                            let _ = release.wait_for(|r| *r).await;
                        }
                        Ok::<_, Infallible>(hyper::Response::new(Full::new(body)))
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(tcp), service)
                    .await;
            });
        }
    });
    addr
}

/// A request host; `pool_max_idle` 0 turns connection reuse off.
fn request_host(port: u16, pool_max_idle: usize, max_in_flight: usize) -> RequestHost {
    let url = format!("http://localhost:{port}/");
    let entry = format!("[[host_api.request]]\nurl = \"{url}\"\nmethods = [\"GET\"]\n");
    let m = Manifest::parse(
        "plugin.toml",
        &format!("[plugin]\nname = \"b\"\nversion = \"1.0.0\"\n{entry}"),
    )
    .value
    .unwrap();
    let g = Grant::parse("grant.toml", &format!("plugin = \"b\"\n{entry}"))
        .value
        .unwrap();
    let policy = compile(&m, Some(&g)).policy.unwrap();
    let cfg = RequestConfig {
        max_in_flight,
        pool_max_idle,
        ..RequestConfig::default()
    };
    RequestHost::new(
        Arc::new(Authorizer::new(&policy)),
        Arc::new(StaticResolver::new()),
        cfg,
    )
    .unwrap()
}

async fn via_host(h: &RequestHost, url: &str) -> usize {
    let r = h
        .request("GET", url, &[], Vec::new(), RequestOptions::default())
        .await
        .unwrap();
    assert_eq!(r.status, 200);
    r.body.len()
}

/// A fresh connection per request with hyper's connection-level client.
async fn via_conn(addr: SocketAddr, path: &str) -> usize {
    let tcp = TcpStream::connect(addr).await.unwrap();
    tcp.set_nodelay(true).unwrap();
    let (mut send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
        .await
        .unwrap();
    tokio::spawn(conn);
    let req = hyper::Request::get(path)
        .header("host", format!("localhost:{}", addr.port()))
        .body(Empty::<Bytes>::new())
        .unwrap();
    let resp = send.send_request(req).await.unwrap();
    assert_eq!(resp.status(), 200);
    resp.into_body().collect().await.unwrap().to_bytes().len()
}

type Pooled = Client<hyper_util::client::legacy::connect::HttpConnector, Empty<Bytes>>;

async fn via_pool(client: &Pooled, url: &str) -> usize {
    let resp = client.get(url.parse().unwrap()).await.unwrap();
    assert_eq!(resp.status(), 200);
    resp.into_body().collect().await.unwrap().to_bytes().len()
}

fn bench_requests(c: &mut Criterion) {
    let rt = rt();
    let (_release, held) = tokio::sync::watch::channel(false);
    let addr = rt.block_on(server(held));
    // Pooled like hyper-util (which keeps every idle connection), and with
    // reuse off: a connection per call, comparable to the floor.
    let host = request_host(addr.port(), IN_FLIGHT * 2, IN_FLIGHT * 2);
    let host_unpooled = request_host(addr.port(), 0, IN_FLIGHT * 2);
    let pooled: Pooled = Client::builder(TokioExecutor::new()).build_http();
    for (name, path, size) in [("small", "/small", SMALL.len()), ("1MiB", "/big", 1 << 20)] {
        let url = format!("http://localhost:{}{path}", addr.port());
        let mut g = c.benchmark_group(format!("request_{name}"));
        g.measurement_time(Duration::from_secs(3))
            .warm_up_time(Duration::from_millis(500))
            .sample_size(20);
        for in_flight in [1usize, IN_FLIGHT] {
            g.throughput(Throughput::Elements(in_flight as u64));
            let id = |who: &str| BenchmarkId::new(who, in_flight);
            g.bench_function(id("netgrant_request_host"), |b| {
                b.iter_custom(|iters| {
                    rt.block_on(async {
                        let start = Instant::now();
                        for _ in 0..iters {
                            let all = join_all((0..in_flight).map(|_| via_host(&host, &url))).await;
                            assert!(all.iter().all(|n| *n == size));
                        }
                        start.elapsed()
                    })
                })
            });
            g.bench_function(id("netgrant_request_host_unpooled"), |b| {
                b.iter_custom(|iters| {
                    rt.block_on(async {
                        let start = Instant::now();
                        for _ in 0..iters {
                            let all =
                                join_all((0..in_flight).map(|_| via_host(&host_unpooled, &url)))
                                    .await;
                            assert!(all.iter().all(|n| *n == size));
                        }
                        start.elapsed()
                    })
                })
            });
            g.bench_function(id("hyper_conn_per_request"), |b| {
                b.iter_custom(|iters| {
                    rt.block_on(async {
                        let start = Instant::now();
                        for _ in 0..iters {
                            let all = join_all((0..in_flight).map(|_| via_conn(addr, path))).await;
                            assert!(all.iter().all(|n| *n == size));
                        }
                        start.elapsed()
                    })
                })
            });
            g.bench_function(id("hyper_util_pooled"), |b| {
                b.iter_custom(|iters| {
                    rt.block_on(async {
                        let start = Instant::now();
                        for _ in 0..iters {
                            let all =
                                join_all((0..in_flight).map(|_| via_pool(&pooled, &url))).await;
                            assert!(all.iter().all(|n| *n == size));
                        }
                        start.elapsed()
                    })
                })
            });
        }
        g.finish();
    }
    // The same small GETs issued from a task on the runtime — where a host's
    // plugin calls come from — instead of from `block_on`'s own thread,
    // which adds a hop between threads to every call of both clients.
    // Shared handles: a call clones two reference counts, the same for both.
    let url: Arc<str> = format!("http://localhost:{}/small", addr.port()).into();
    let host = Arc::new(host);
    let pooled = Arc::new(pooled);
    let mut g = c.benchmark_group("request_small_in_task");
    g.measurement_time(Duration::from_secs(3))
        .warm_up_time(Duration::from_millis(500))
        .sample_size(20)
        .throughput(Throughput::Elements(1));
    // One driver for both clients: `iters` calls in sequence, in a task.
    fn in_task<F, Fut>(rt: &Runtime, iters: u64, call: F) -> Duration
    where
        F: Fn() -> Fut + Send + 'static,
        Fut: std::future::Future<Output = usize> + Send,
    {
        // `rt.spawn`: the task starts on a worker, and the caller is not yet
        // inside the runtime (`tokio::spawn` would have no runtime here).
        rt.block_on(rt.spawn(async move {
            let start = Instant::now();
            for _ in 0..iters {
                assert_eq!(call().await, SMALL.len());
            }
            start.elapsed()
        }))
        .unwrap()
    }
    g.bench_function("netgrant_request_host", |b| {
        b.iter_custom(|iters| {
            let (host, url) = (host.clone(), url.clone());
            in_task(&rt, iters, move || {
                let (host, url) = (host.clone(), url.clone());
                async move { via_host(&host, &url).await }
            })
        })
    });
    g.bench_function("hyper_util_pooled", |b| {
        b.iter_custom(|iters| {
            let (pooled, url) = (pooled.clone(), url.clone());
            in_task(&rt, iters, move || {
                let (pooled, url) = (pooled.clone(), url.clone());
                async move { via_pool(&pooled, &url).await }
            })
        })
    });
    g.finish();
    rt.block_on(host.shutdown());
    rt.block_on(host_unpooled.shutdown());
}

/// Memory per request in flight (client and in-process server, RSS delta),
/// hyper-util's pooled client first, then the host: each set stays in flight
/// until both are measured, so neither reuses what the other freed.
/// Printed; recorded in docs/benchmarks.md.
fn bench_in_flight_memory(_c: &mut Criterion) {
    let n: usize = if std::env::args().any(|a| a == "--bench") {
        500
    } else {
        10
    };
    let rt = rt();
    let (release, held) = tokio::sync::watch::channel(false);
    let addr = rt.block_on(server(held));
    let url = format!("http://localhost:{}/hold", addr.port());
    let host = Arc::new(request_host(addr.port(), n, n));
    let pooled: Pooled = Client::builder(TokioExecutor::new()).build_http();
    // Until every request of the set is waiting on the server.
    let waiting = |want: usize| {
        let start = Instant::now();
        while HELD.load(Ordering::SeqCst) < want {
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "requests did not arrive"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let before = rss_bytes();
    let theirs: Vec<_> = (0..n)
        .map(|_| {
            let (pooled, url) = (pooled.clone(), url.clone());
            rt.spawn(async move { via_pool(&pooled, &url).await })
        })
        .collect();
    waiting(n);
    let after_theirs = rss_bytes();
    let ours: Vec<_> = (0..n)
        .map(|_| {
            let (host, url) = (host.clone(), url.clone());
            rt.spawn(async move { via_host(&host, &url).await })
        })
        .collect();
    waiting(2 * n);
    let after_ours = rss_bytes();
    release.send_replace(true);
    rt.block_on(async {
        for t in theirs.into_iter().chain(ours) {
            assert_eq!(t.await.unwrap(), SMALL.len());
        }
    });
    println!(
        "memory per request in flight (client + in-process server, {n} requests): netgrant host {} B, hyper-util pooled {} B",
        after_ours.saturating_sub(after_theirs) / n,
        after_theirs.saturating_sub(before) / n
    );
    rt.block_on(host.shutdown());
}

/// `NETGRANT_BENCH_TABLE=1`: the host and hyper-util's pooled client in
/// alternation, round by round (15 rounds of about 100 ms each, the order
/// swapped every round), so that a load spike on the shared machine lands
/// on both sides of a ratio rather than on one benchmark. Prints, per row,
/// the median and range of the per-round ratios (host time ÷ hyper-util
/// time for the same work). Recorded in docs/benchmarks.md.
fn bench_interleaved(_c: &mut Criterion) {
    if std::env::var_os("NETGRANT_BENCH_TABLE").is_none() {
        return;
    }
    let rt = rt();
    let (_release, held) = tokio::sync::watch::channel(false);
    let addr = rt.block_on(server(held));
    let host = request_host(addr.port(), IN_FLIGHT * 2, IN_FLIGHT * 2);
    let pooled: Pooled = Client::builder(TokioExecutor::new()).build_http();
    println!("interleaved: host time ÷ hyper-util pooled time per round ({ROUNDS} rounds)");
    for (name, path, size) in [("small", "/small", SMALL.len()), ("1MiB", "/big", 1 << 20)] {
        let url = format!("http://localhost:{}{path}", addr.port());
        for in_flight in [1usize, IN_FLIGHT] {
            // `batches` rounds of `in_flight` calls through one client.
            let time = |ours: bool, batches: u32| {
                rt.block_on(async {
                    let start = Instant::now();
                    for _ in 0..batches {
                        let sizes = if ours {
                            join_all((0..in_flight).map(|_| via_host(&host, &url))).await
                        } else {
                            join_all((0..in_flight).map(|_| via_pool(&pooled, &url))).await
                        };
                        assert!(sizes.iter().all(|n| *n == size));
                    }
                    start.elapsed()
                })
            };
            report(
                &format!("request_{name} ×{in_flight}"),
                interleave(|n| time(true, n), |n| time(false, n)),
            );
        }
    }
    rt.block_on(host.shutdown());
}

criterion_group!(
    benches,
    bench_requests,
    bench_in_flight_memory,
    bench_interleaved
);
criterion_main!(benches);
