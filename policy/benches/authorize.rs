//! Benchmarks: authorization cost against the number of granted rules, and
//! compile cost against plain TOML parsing. Results and method: see
//! `docs/benchmarks.md`.
//!
//! * `authorize/netgrant/N`: [`Authorizer::authorize`] over a fixed mix of
//!   URLs (exact hits, wildcard hits, path misses, port misses, unknown hosts,
//!   a not-granted target), with N requested targets in the policy.
//! * `authorize/urlpattern_linear/N`: the same rules as one `URLPattern` each,
//!   and the same URLs tested against the patterns in order until one matches
//!   (the way URLPattern-scoped ACLs are usually matched). The URL is parsed
//!   and split into components once per URL, and only the protocol, hostname,
//!   port and pathname matchers run (the others are `*`), hostname first —
//!   the cheapest fair use of the crate.
//! * `authorize/urlpattern_test_api/N`: the same scan through the crate's
//!   public `UrlPattern::test` entry point, which re-extracts the components
//!   for every pattern (what straightforward code does).
//! * `authorize/url_parse/N`: `url::Url::parse` of each URL alone: the floor,
//!   since every approach parses the URL once.
//! * `compile/netgrant/N`: `Manifest::parse` + `Grant::parse` + `compile`
//!   from the TOML text, vs `compile/toml_value/N`: `toml::from_str::<toml::Value>`
//!   of the same two files; `netgrant_parse_only` and `netgrant_compile_only`
//!   time the two halves of `netgrant` separately.
//! * `load/netgrant/N`: [`load_policy`] of the IR those two files compile
//!   to (parse + re-validation by compiling again), vs `load/json_value/N`:
//!   `serde_json::from_str::<serde_json::Value>` of the same IR text, and
//!   `load/toml_value/N`: the TOML floor of `compile` above, so load reads
//!   against both.
//!
//! `cargo test --benches` runs every benchmark once (criterion's test mode);
//! the largest policies are only built for `cargo bench` so that smoke test
//! stays quick in a debug build.

use criterion::{
    criterion_group, criterion_main, BenchmarkId, Criterion, SamplingMode, Throughput,
};
use netgrant_policy::{compile, load_policy, Authorizer, CompiledPolicy, Grant, Manifest, Request};
use std::fmt::Write as _;
use std::hint::black_box;
use std::time::{Duration, Instant};
use urlpattern::{UrlPattern, UrlPatternInit};

/// Rule counts for the authorize benchmarks.
const RULES: &[usize] = &[10, 100, 1_000, 10_000];
/// Entry counts for the compile and IR load benchmarks.
const ENTRIES: &[usize] = &[10, 100, 1_000, 10_000];
/// From this size on, one iteration per sample (criterion's flat sampling):
/// a 10,000-entry compile takes long enough that linear sampling would run
/// for minutes.
const FLAT_FROM: usize = 10_000;
/// The URLPattern `test()` scan is slow; measure it on the smaller policies.
const TEST_API_MAX_RULES: usize = 1_000;

/// Whether criterion runs for real (`cargo bench` passes `--bench`) rather
/// than once per benchmark in test mode.
fn bench_mode() -> bool {
    std::env::args().any(|a| a == "--bench")
}

/// The sizes to set up: everything under `cargo bench`, the smaller ones in
/// test mode (the smoke test only checks that each benchmark runs).
fn sizes(all: &'static [usize]) -> impl Iterator<Item = usize> {
    let limit = if bench_mode() { usize::MAX } else { 1_000 };
    all.iter().copied().filter(move |&n| n <= limit)
}

/// One generated rule.
#[derive(Clone, Debug)]
struct Rule {
    /// `None` for the scheme default (443).
    port: Option<u16>,
    host: Host,
    path: &'static str,
    granted: bool,
}

#[derive(Clone, Debug)]
enum Host {
    /// An exact domain.
    Exact(String),
    /// `*.suffix`.
    Wildcard(String),
}

/// N distinct https rules: 70% exact hosts spread over 97 parent domains with
/// three path-prefix shapes, 20% subdomain wildcards, 10% exact hosts on port
/// 8443. One rule in 16 is requested but not granted.
fn rules(n: usize) -> Vec<Rule> {
    (0..n)
        .map(|i| {
            let (host, port, path) = match i % 10 {
                0..=6 => (
                    Host::Exact(format!("s{i}.t{}.example.com", i % 97)),
                    None,
                    ["/", "/api/", "/v1"][i % 3],
                ),
                7 | 8 => (Host::Wildcard(format!("w{i}.example.net")), None, "/"),
                _ => (
                    Host::Exact(format!("s{i}.t{}.example.com", i % 97)),
                    Some(8443),
                    "/data/",
                ),
            };
            Rule {
                port,
                host,
                path,
                granted: i % 16 != 5,
            }
        })
        .collect()
}

impl Rule {
    fn target(&self) -> String {
        let host = match &self.host {
            Host::Exact(h) => h.clone(),
            Host::Wildcard(s) => format!("*.{s}"),
        };
        let port = self.port.map(|p| format!(":{p}")).unwrap_or_default();
        format!("https://{host}{port}{}", self.path)
    }

    /// The URLPattern for this rule. Mapping (documented in
    /// docs/benchmarks.md): exact host → literal hostname; `*.suffix` →
    /// `*.suffix` (`*` spans labels, and the literal `.` keeps the apex out,
    /// as netgrant does); default port → `""`, else the number; path prefix
    /// `/` → `*`, `/p/` → `/p/*`, `/p` → `/p{/*}?` (segment boundary).
    fn pattern(&self) -> UrlPattern {
        let hostname = match &self.host {
            Host::Exact(h) => h.clone(),
            Host::Wildcard(s) => format!("*.{s}"),
        };
        let pathname = match self.path {
            "/" => "*".to_string(),
            p if p.ends_with('/') => format!("{p}*"),
            p => format!("{p}{{/*}}?"),
        };
        let init = UrlPatternInit {
            protocol: Some("https".into()),
            hostname: Some(hostname),
            port: Some(self.port.map(|p| p.to_string()).unwrap_or_default()),
            pathname: Some(pathname),
            ..Default::default()
        };
        <UrlPattern>::parse(init, Default::default()).expect("valid URLPattern")
    }
}

/// Manifest and grant text for the rules.
fn texts(rules: &[Rule]) -> (String, String) {
    let mut m = String::from("[plugin]\nname = \"bench\"\nversion = \"1.0.0\"\n");
    let mut g = String::from("plugin = \"bench\"\n");
    for r in rules {
        let t = r.target();
        let _ = write!(
            m,
            "\n[[host_api.request]]\nurl = \"{t}\"\nmethods = [\"GET\", \"POST\"]\n"
        );
        if r.granted {
            let _ = write!(g, "\n[[host_api.request]]\nurl = \"{t}\"\n");
        }
    }
    (m, g)
}

fn policy(manifest: &str, grant: &str) -> CompiledPolicy {
    let m = Manifest::parse("plugin.toml", manifest)
        .value
        .expect("manifest parses");
    let g = Grant::parse("grant.toml", grant)
        .value
        .expect("grant parses");
    let c = compile(&m, Some(&g));
    c.policy
        .unwrap_or_else(|| panic!("compiles: {:?}", c.diagnostics))
}

/// The fixed URL mix for N rules, with the code netgrant must return for each.
fn url_mix(rules: &[Rule]) -> Vec<(String, &'static str)> {
    let n = rules.len();
    let find = |from: usize, f: &dyn Fn(&Rule) -> bool| {
        (from..n)
            .chain(0..from)
            .map(|i| &rules[i])
            .find(|r| f(r))
            .expect("rule exists")
    };
    let exact = |from: usize, path: &'static str| {
        find(from, &|r: &Rule| {
            r.granted && r.port.is_none() && r.path == path && matches!(r.host, Host::Exact(_))
        })
    };
    let host = |r: &Rule| match &r.host {
        Host::Exact(h) | Host::Wildcard(h) => h.clone(),
    };
    let wildcard = |from: usize| {
        find(from, &|r: &Rule| {
            r.granted && matches!(r.host, Host::Wildcard(_))
        })
    };
    let ported = find(n / 2, &|r: &Rule| r.granted && r.port.is_some());
    let not_granted = find(n / 3, &|r: &Rule| {
        !r.granted && r.port.is_none() && matches!(r.host, Host::Exact(_))
    });
    let v1 = exact(n / 2, "/v1");
    let mut out = vec![
        // exact hits, spread through the rule list
        (
            format!("https://{}/users/42", host(exact(0, "/"))),
            "allowed",
        ),
        (
            format!("https://{}/api/items?page=2", host(exact(n / 4, "/api/"))),
            "allowed",
        ),
        (format!("https://{}/v1/orders/7", host(v1)), "allowed"),
        (
            format!("https://{}:8443/data/blob", host(ported)),
            "allowed",
        ),
        (format!("https://{}/", host(exact(n - 1, "/"))), "allowed"),
        // wildcard hits
        (
            format!("https://a.{}/socket", host(wildcard(n / 3))),
            "allowed",
        ),
        (
            format!("https://x.y.{}/deep/path", host(wildcard(n - 1))),
            "allowed",
        ),
        // misses: path, port, apex of a wildcard, unknown hosts, not granted
        (format!("https://{}/v10/orders", host(v1)), "not_requested"),
        (
            format!("https://{}:9443/", host(exact(n / 2, "/"))),
            "not_requested",
        ),
        (format!("https://{}/", host(wildcard(0))), "not_requested"),
        (
            "https://unknown.example.org/api/".to_string(),
            "not_requested",
        ),
        (
            "https://s1.t1.example.com.evil.test/".to_string(),
            "not_requested",
        ),
        (
            format!(
                "https://{}{}/x",
                host(not_granted),
                not_granted.path.trim_end_matches('/')
            ),
            "not_granted",
        ),
    ];
    // The mix is fixed per rule count; make every URL unique.
    out.dedup();
    out
}

/// The URLPattern linear scan, with the URL split into components once.
struct PatternScan {
    patterns: Vec<UrlPattern>,
}

impl PatternScan {
    fn new(rules: &[Rule]) -> Self {
        PatternScan {
            patterns: rules
                .iter()
                .filter(|r| r.granted)
                .map(Rule::pattern)
                .collect(),
        }
    }

    /// Index of the first matching pattern.
    #[inline(never)]
    fn first_match(&self, url: &str) -> Option<usize> {
        let u = url::Url::parse(url).ok()?;
        let protocol = u.scheme();
        let hostname = u.host_str().unwrap_or_default();
        let port = url::quirks::port(&u);
        let pathname = url::quirks::pathname(&u);
        self.patterns.iter().position(|p| {
            p.hostname.matcher.matches(hostname).is_some()
                && p.protocol.matcher.matches(protocol).is_some()
                && p.port.matcher.matches(port).is_some()
                && p.pathname.matcher.matches(pathname).is_some()
        })
    }

    /// Index of the first matching pattern, through the public `test` API.
    fn first_match_test_api(&self, url: &str) -> Option<usize> {
        let u = url::Url::parse(url).ok()?;
        self.patterns.iter().position(|p| {
            p.test(urlpattern::UrlPatternMatchInput::Url(u.clone()))
                .unwrap_or(false)
        })
    }
}

/// Nanoseconds per call of `f`, over `iters` calls.
fn ns_per_call(iters: usize, mut f: impl FnMut()) -> f64 {
    let t = Instant::now();
    for _ in 0..iters {
        f();
    }
    t.elapsed().as_nanos() as f64 / iters as f64
}

/// `NETGRANT_BENCH_TABLE=1`: the three approaches measured in alternation,
/// URL by URL, in 7 rounds, keeping each one's best round per URL, so a load
/// spike on a shared machine cannot favour one of them (criterion measures
/// one benchmark after another). Prints the mean over the URL mix.
fn interleaved_table(n: usize, authz: &Authorizer, scan: &PatternScan, urls: &[&str]) {
    let scan_iters = (200_000 / n).clamp(10, 2_000);
    let mut best = vec![[f64::INFINITY; 3]; urls.len()];
    for _ in 0..7 {
        for (u, best) in urls.iter().zip(&mut best) {
            let req = Request::http("GET", u);
            let times = [
                ns_per_call(2_000, || {
                    black_box(authz.authorize(black_box(&req), None));
                }),
                ns_per_call(scan_iters, || {
                    black_box(scan.first_match(black_box(u)));
                }),
                ns_per_call(2_000, || {
                    black_box(url::Url::parse(black_box(u)).ok());
                }),
            ];
            for (b, t) in best.iter_mut().zip(times) {
                *b = b.min(t);
            }
        }
    }
    if std::env::var_os("NETGRANT_BENCH_PER_URL").is_some() {
        for (u, b) in urls.iter().zip(&best) {
            eprintln!("  {:.2} {:>5.0} {:>5.0} {u}", b[0] / b[2], b[0], b[2]);
        }
    }
    let mean = |k: usize| best.iter().map(|b| b[k]).sum::<f64>() / urls.len() as f64;
    let (ng, up, pa) = (mean(0), mean(1), mean(2));
    eprintln!(
        "interleaved n={n}: netgrant {ng:.0} ns/URL, urlpattern_linear {up:.0} ns/URL, \
         url_parse {pa:.0} ns/URL; urlpattern_linear/netgrant {:.1}x, netgrant/url_parse {:.2}x",
        up / ng,
        ng / pa
    );
}

fn authorize(c: &mut Criterion) {
    let mut group = c.benchmark_group("authorize");
    group
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3))
        .sample_size(30);
    for n in sizes(RULES) {
        let rules = rules(n);
        let (m, g) = texts(&rules);
        let policy = policy(&m, &g);
        let authz = Authorizer::new(&policy);
        let scan = PatternScan::new(&rules);
        let mix = url_mix(&rules);
        // Both matchers must agree with the expected outcome before timing.
        for (url, want) in &mix {
            let d = authz.authorize(&Request::http("GET", url), None);
            assert_eq!(d.code, *want, "{url}: {}", d.message());
            assert_eq!(
                scan.first_match(url).is_some(),
                *want == "allowed",
                "urlpattern scan disagrees on {url}"
            );
        }
        let urls: Vec<&str> = mix.iter().map(|(u, _)| u.as_str()).collect();
        if std::env::var_os("NETGRANT_BENCH_TABLE").is_some() {
            interleaved_table(n, &authz, &scan, &urls);
        }
        group.throughput(Throughput::Elements(urls.len() as u64));
        group.bench_with_input(BenchmarkId::new("netgrant", n), &urls, |b, urls| {
            b.iter(|| {
                for u in urls {
                    black_box(authz.authorize(&Request::http("GET", black_box(u)), None));
                }
            })
        });
        group.bench_with_input(
            BenchmarkId::new("urlpattern_linear", n),
            &urls,
            |b, urls| {
                b.iter(|| {
                    for u in urls {
                        black_box(scan.first_match(black_box(u)));
                    }
                })
            },
        );
        if n <= TEST_API_MAX_RULES {
            group.bench_with_input(
                BenchmarkId::new("urlpattern_test_api", n),
                &urls,
                |b, urls| {
                    b.iter(|| {
                        for u in urls {
                            black_box(scan.first_match_test_api(black_box(u)));
                        }
                    })
                },
            );
        }
        group.bench_with_input(BenchmarkId::new("url_parse", n), &urls, |b, urls| {
            b.iter(|| {
                for u in urls {
                    black_box(url::Url::parse(black_box(u)).ok());
                }
            })
        });
    }
    group.finish();
}

/// `NETGRANT_BENCH_TABLE=1`: compile (both parses and `compile`) and the
/// `toml::Value` floor in alternation, 15 rounds of about 100 ms each, the
/// order swapped every round; prints the median of the per-round ratios and
/// their range (criterion's one-after-the-other runs moved this ratio by
/// ±30% on the shared machine).
fn interleaved_compile_table(n: usize, m: &str, g: &str) {
    const ROUNDS: usize = 15;
    let ours = || {
        black_box(policy(black_box(m), black_box(g)));
    };
    let floor = || {
        let a: toml::Value = toml::from_str(black_box(m)).expect("toml");
        let b: toml::Value = toml::from_str(black_box(g)).expect("toml");
        black_box((a, b));
    };
    // Size a round to ~100 ms of the slower side.
    let one = ns_per_call(3, ours).max(ns_per_call(3, floor));
    let iters = ((100e6 / one) as usize).clamp(1, 100_000);
    let mut ratios: Vec<f64> = (0..ROUNDS)
        .map(|r| {
            if r % 2 == 0 {
                let o = ns_per_call(iters, ours);
                o / ns_per_call(iters, floor)
            } else {
                let f = ns_per_call(iters, floor);
                ns_per_call(iters, ours) / f
            }
        })
        .collect();
    ratios.sort_by(f64::total_cmp);
    eprintln!(
        "interleaved compile n={n}: netgrant ÷ toml_value {:.2}x (range {:.2}–{:.2}x, {ROUNDS} rounds of {iters})",
        ratios[ROUNDS / 2],
        ratios[0],
        ratios[ROUNDS - 1]
    );
}

fn compile_vs_toml(c: &mut Criterion) {
    let mut group = c.benchmark_group("compile");
    group
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3))
        .sample_size(20);
    for n in sizes(ENTRIES) {
        let (m, g) = texts(&rules(n));
        if std::env::var_os("NETGRANT_BENCH_TABLE").is_some() {
            interleaved_compile_table(n, &m, &g);
        }
        group.sampling_mode(if n >= FLAT_FROM {
            SamplingMode::Flat
        } else {
            SamplingMode::Auto
        });
        group.throughput(Throughput::Bytes((m.len() + g.len()) as u64));
        group.bench_with_input(BenchmarkId::new("netgrant", n), &(&m, &g), |b, (m, g)| {
            b.iter(|| black_box(policy(black_box(m), black_box(g))))
        });
        // The two halves of `netgrant`, for the breakdown in the docs.
        group.bench_with_input(
            BenchmarkId::new("netgrant_parse_only", n),
            &(&m, &g),
            |b, (m, g)| {
                b.iter(|| {
                    let manifest = Manifest::parse("plugin.toml", black_box(m)).value;
                    let grant = Grant::parse("grant.toml", black_box(g)).value;
                    black_box((manifest, grant))
                })
            },
        );
        let manifest = Manifest::parse("plugin.toml", &m).value.expect("parses");
        let grant = Grant::parse("grant.toml", &g).value.expect("parses");
        group.bench_with_input(
            BenchmarkId::new("netgrant_compile_only", n),
            &(&manifest, &grant),
            |b, (manifest, grant)| b.iter(|| black_box(compile(black_box(manifest), Some(grant)))),
        );
        group.bench_with_input(BenchmarkId::new("toml_value", n), &(&m, &g), |b, (m, g)| {
            b.iter(|| {
                let a: toml::Value = toml::from_str(black_box(m)).expect("toml");
                let b: toml::Value = toml::from_str(black_box(g)).expect("toml");
                black_box((a, b))
            })
        });
    }
    group.finish();
}

fn load_vs_parse(c: &mut Criterion) {
    let mut group = c.benchmark_group("load");
    group
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3))
        .sample_size(20);
    for n in sizes(ENTRIES) {
        let (m, g) = texts(&rules(n));
        let ir = policy(&m, &g).to_json();
        group.sampling_mode(if n >= FLAT_FROM {
            SamplingMode::Flat
        } else {
            SamplingMode::Auto
        });
        group.throughput(Throughput::Bytes(ir.len() as u64));
        group.bench_with_input(BenchmarkId::new("netgrant", n), &ir, |b, ir| {
            b.iter(|| black_box(load_policy("policy.json", black_box(ir)).expect("loads")))
        });
        group.bench_with_input(BenchmarkId::new("json_value", n), &ir, |b, ir| {
            b.iter(|| {
                let v: serde_json::Value = serde_json::from_str(black_box(ir)).expect("json");
                black_box(v)
            })
        });
        group.bench_with_input(BenchmarkId::new("toml_value", n), &(&m, &g), |b, (m, g)| {
            b.iter(|| {
                let a: toml::Value = toml::from_str(black_box(m)).expect("toml");
                let b: toml::Value = toml::from_str(black_box(g)).expect("toml");
                black_box((a, b))
            })
        });
    }
    group.finish();
}

criterion_group!(benches, authorize, compile_vs_toml, load_vs_parse);
criterion_main!(benches);
