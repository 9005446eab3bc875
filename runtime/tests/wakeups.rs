//! Scheduler wake-ups per message. A round trip through the host must not
//! put the runtime's worker threads to sleep: counted as the voluntary
//! context switches of those threads (Linux `/proc/self/task`). It guards
//! the connection task against waking itself from inside its own poll,
//! which made the scheduler hand the task to the other worker thread on
//! every message: about 1.6 switches per round trip, and twice the time
//! (decision 180). Counts, not timings. Linux only (it reads `/proc`).
#![cfg(target_os = "linux")]

mod support;
use netgrant_runtime::{HostConfig, Incoming};
use std::sync::Arc;
use std::time::Duration;
use support::*;

const THREADS: &str = "ng-wakeups";

/// Voluntary context switches so far of this process's threads named
/// [`THREADS`] (the runtime's workers and its blocking pool).
fn switches() -> u64 {
    let mut total = 0;
    for task in std::fs::read_dir("/proc/self/task").unwrap() {
        let dir = task.unwrap().path();
        let comm = std::fs::read_to_string(dir.join("comm")).unwrap_or_default();
        if !comm.trim_end().starts_with(THREADS) {
            continue;
        }
        let status = std::fs::read_to_string(dir.join("status")).unwrap_or_default();
        total += status
            .lines()
            .find_map(|l| l.strip_prefix("voluntary_ctxt_switches:"))
            .map_or(0, |n| n.trim().parse::<u64>().unwrap());
    }
    total
}

#[test]
fn round_trips_do_not_put_the_workers_to_sleep() {
    const WARM: usize = 200;
    const N: usize = 2000;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name(THREADS)
        .enable_all()
        .build()
        .unwrap();
    let (per_round_trip, counted) = rt.block_on(async {
        let server = EchoServer::start().await;
        let (h, id) = open_local(server.addr.port(), HostConfig::default()).await;
        let h = Arc::new(h);
        // The caller runs on a worker, as a host's own tasks do.
        tokio::spawn(async move {
            let payload = vec![7u8; 1024];
            let round_trip = || async {
                h.send_binary(id, payload.clone()).await.unwrap();
                match h.recv(id, Some(Duration::from_secs(10))).await.unwrap() {
                    Incoming::Binary(b) => assert_eq!(b.len(), 1024),
                    other => panic!("{other:?}"),
                }
            };
            for _ in 0..WARM {
                round_trip().await;
            }
            let before = switches();
            for _ in 0..N {
                round_trip().await;
            }
            let after = switches();
            ((after - before) as f64 / N as f64, after)
        })
        .await
        .unwrap()
    });
    eprintln!("{per_round_trip:.3} voluntary switches per round trip");
    // The threads were found and counted (they block at least once, on start).
    assert!(counted > 0, "no {THREADS} thread found in /proc/self/task");
    assert!(
        per_round_trip < 0.25,
        "{per_round_trip:.2} voluntary context switches per round trip (the self-wake gave 1.6 in release, 3 in a debug build)"
    );
}
