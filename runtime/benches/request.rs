//! RequestHost vs plain hyper against the same loopback HTTP/1.1 server, in
//! one run (docs/benchmarks.md, "Request host"):
//!
//! * `netgrant_request_host` — `RequestHost::request`: authorize, resolve
//!   (`localhost`: no DNS), check, connect, one request, complete response.
//! * `hyper_conn_per_request` — the floor for the same work: hyper's
//!   connection-level client on a fresh `TcpStream` per request, which is
//!   what `RequestHost` does underneath (one connection per call, decision
//!   113).
//! * `hyper_util_pooled` — what a host would otherwise use: hyper-util's
//!   pooled client with keep-alive. It skips the TCP handshake on every call
//!   after the first, which `RequestHost` never does, so this row is the
//!   price of that design choice, not of the checks.
//!
//! Small GETs (13-byte body) and 1 MiB bodies, one at a time (latency) and
//! 16 in flight (throughput). Run: `cargo bench -p netgrant-runtime --bench request`.

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
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::{TcpListener, TcpStream};
use tokio::runtime::Runtime;

const SMALL: &[u8] = b"hello, world!";
const IN_FLIGHT: usize = 16;

fn rt() -> Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// `/small` answers 13 bytes, `/big` 1 MiB; keep-alive on.
async fn server() -> SocketAddr {
    let big = Bytes::from(vec![b'x'; 1 << 20]);
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = l.accept().await {
            let _ = tcp.set_nodelay(true);
            let big = big.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |req: hyper::Request<_>| {
                    let body = if req.uri().path() == "/big" {
                        big.clone()
                    } else {
                        Bytes::from_static(SMALL)
                    };
                    async move { Ok::<_, Infallible>(hyper::Response::new(Full::new(body))) }
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
fn request_host(port: u16, pool_max_idle: usize) -> RequestHost {
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
        max_in_flight: IN_FLIGHT * 2,
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
    let addr = rt.block_on(server());
    // Pooled like hyper-util (which keeps every idle connection), and with
    // reuse off: a connection per call, comparable to the floor.
    let host = request_host(addr.port(), IN_FLIGHT * 2);
    let host_unpooled = request_host(addr.port(), 0);
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
    rt.block_on(host.shutdown());
    rt.block_on(host_unpooled.shutdown());
}

criterion_group!(benches, bench_requests);
criterion_main!(benches);
