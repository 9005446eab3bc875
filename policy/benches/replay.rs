//! Benchmarks: `replay` throughput (lines per second) against the number of
//! rules in the policy. Results and method: `docs/benchmarks.md` (## replay).
//!
//! * `replay/repeated/N`: a generated log of 100,000 JSON lines in which 90%
//!   repeat an earlier line (recorded traffic repeats: the same few
//!   endpoints, polled), so most lines are answered by the decision cache.
//! * `replay/distinct/N`: 20,000 JSON lines, all different (every line is a
//!   cache miss: JSON parse, two authorizations' worth of work, a cache
//!   insert) — the worst case.
//!
//! N = 10, 100, 1,000, 10,000 https request targets (the same shapes as the
//! authorize benchmark). URLs hit exact hosts, wildcards, wrong paths and
//! ports, unknown hosts and not-granted targets; one in five is a `POST`.
//!
//! `cargo test --benches` runs every benchmark once on smaller inputs
//! (criterion's test mode) without the 10,000-rule policy.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use netgrant_policy::replay::{ReplayOptions, Replayer};
use netgrant_policy::{compile, Authorizer, CompiledPolicy, Grant, Manifest};
use std::fmt::Write as _;
use std::hint::black_box;

const RULES: &[usize] = &[10, 100, 1_000, 10_000];

fn bench_mode() -> bool {
    std::env::args().any(|a| a == "--bench")
}

/// (repeated-log lines, distinct-log lines).
fn log_sizes() -> (usize, usize) {
    if bench_mode() {
        (100_000, 20_000)
    } else {
        (5_000, 1_000)
    }
}

/// The i-th generated target (70% exact hosts with three prefix shapes, 20%
/// wildcards, 10% port 8443), and whether it is granted (15 in 16).
fn target(i: usize) -> (String, bool) {
    let t = match i % 10 {
        0..=6 => format!(
            "https://s{i}.t{}.example.com{}",
            i % 97,
            ["/", "/api/", "/v1"][i % 3]
        ),
        7 | 8 => format!("https://*.w{i}.example.net/"),
        _ => format!("https://s{i}.t{}.example.com:8443/data/", i % 97),
    };
    (t, i % 16 != 5)
}

fn policy(n: usize) -> CompiledPolicy {
    let mut m = String::from("[plugin]\nname = \"bench\"\nversion = \"1.0.0\"\n");
    let mut g = String::from("plugin = \"bench\"\n");
    for i in 0..n {
        let (t, granted) = target(i);
        let _ = write!(
            m,
            "\n[[host_api.request]]\nurl = \"{t}\"\nmethods = [\"GET\", \"POST\"]\n"
        );
        if granted {
            let _ = write!(
                g,
                "\n[[host_api.request]]\nurl = \"{t}\"\nmethods = [\"GET\"]\n"
            );
        }
    }
    let m = Manifest::parse("plugin.toml", &m).value.expect("manifest");
    let g = Grant::parse("grant.toml", &g).value.expect("grant");
    compile(&m, Some(&g)).policy.expect("compiles")
}

/// A deterministic generator (splitmix64).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

/// The k-th distinct log line for a policy of n rules.
fn line(k: usize, n: usize, rng: &mut Rng) -> String {
    let i = (rng.next() as usize) % n;
    let host = match i % 10 {
        0..=6 => format!("s{i}.t{}.example.com", i % 97),
        7 | 8 => format!("a{k}.w{i}.example.net"),
        _ => format!("s{i}.t{}.example.com:8443", i % 97),
    };
    let path = match k % 7 {
        0 => format!("/api/items/{k}?page=2"),
        1 => format!("/v1/users/{k}"),
        2 => format!("/v10/x/{k}"),
        3 => format!("/data/{k}.json"),
        4 => format!("/{k}"),
        5 => format!("/api/{k}/comments"),
        _ => format!("/v1?since={k}"),
    };
    let host = if k % 23 == 0 {
        format!("unknown{k}.example.org")
    } else {
        host
    };
    let method = if k % 5 == 0 { "POST" } else { "GET" };
    format!(
        "{{\"capability\":\"request\",\"url\":\"https://{host}{path}\",\"method\":\"{method}\",\"headers\":[\"Accept: application/json\"]}}\n"
    )
}

/// `lines` lines, of which `1 / every` are new and the rest repeat an
/// earlier line; `every = 1` makes every line distinct.
fn log(n: usize, lines: usize, every: usize) -> Vec<u8> {
    let mut rng = Rng(n as u64);
    let mut pool: Vec<String> = Vec::new();
    let mut out = String::new();
    for i in 0..lines {
        if i % every == 0 || pool.is_empty() {
            let l = line(pool.len(), n, &mut rng);
            out.push_str(&l);
            pool.push(l);
        } else {
            let j = (rng.next() as usize) % pool.len();
            out.push_str(&pool[j]);
        }
    }
    out.into_bytes()
}

fn replay_once(authz: &Authorizer, log: &[u8]) -> netgrant_policy::replay::Summary {
    let mut r = Replayer::new(authz, None, ReplayOptions::default());
    r.run(log, None::<&mut Vec<u8>>).expect("in-memory replay")
}

fn replay(c: &mut Criterion) {
    let mut group = c.benchmark_group("replay");
    group.sample_size(10);
    let (repeated_lines, distinct_lines) = log_sizes();
    let limit = if bench_mode() { usize::MAX } else { 1_000 };
    for &n in RULES.iter().filter(|&&n| n <= limit) {
        let p = policy(n);
        let authz = Authorizer::new(&p);
        for (name, lines, every) in [
            ("repeated", repeated_lines, 10),
            ("distinct", distinct_lines, 1),
        ] {
            let log = log(n, lines, every);
            // Check the workload before timing it: every line decided, a mix
            // of allows and denials, and the cache doing what it should.
            let s = replay_once(&authz, &log);
            assert_eq!(s.decided, lines as u64, "{name}/{n}: {s:?}");
            assert_eq!(s.invalid, 0);
            assert!(s.allowed > 0 && s.denied > 0, "{name}/{n}: {s:?}");
            if every > 1 {
                assert!(
                    s.cache.hits * 10 >= lines as u64 * 8,
                    "{name}/{n}: {:?}",
                    s.cache
                );
            }
            group.throughput(Throughput::Elements(lines as u64));
            group.bench_with_input(BenchmarkId::new(name, n), &log, |b, log| {
                b.iter(|| black_box(replay_once(&authz, black_box(log))))
            });
        }
    }
    group.finish();
}

criterion_group!(benches, replay);
criterion_main!(benches);
