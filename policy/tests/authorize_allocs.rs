//! Allocation budget of an allowed authorization: after the URL parse, an
//! allow allocates only the checked addresses, when there are any (DNS
//! answers, an IP literal, a localhost name). The decision keeps the parsed
//! URL and shares the rule id; the redacted URL and the message are written
//! only when read. Counted with a counting allocator, so the test is exact
//! and does not depend on the machine's load.

use netgrant_policy::{compile, Authorizer, Grant, Manifest, Request};
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::net::IpAddr;

struct Counting;

thread_local! {
    /// Allocations made by this thread (tests run on several threads).
    static ALLOCS: Cell<u64> = const { Cell::new(0) };
}

// SAFETY: forwards every call to the system allocator unchanged; the
// counter is a const-initialized thread-local that never allocates.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let _ = ALLOCS.try_with(|c| c.set(c.get() + 1));
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let _ = ALLOCS.try_with(|c| c.set(c.get() + 1));
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocs(f: impl FnOnce()) -> u64 {
    let before = ALLOCS.with(|c| c.get());
    f();
    ALLOCS.with(|c| c.get()) - before
}

const MANIFEST: &str = r#"
[plugin]
name = "allocs"
version = "1.0.0"

[[host_api.request]]
url = "https://api.example.com/v1"
methods = ["GET", "POST"]

[[host_api.request]]
url = "https://*.example.com/"
methods = ["GET"]

[[host_api.request]]
url = "https://10.0.0.7:8443/data/"
methods = ["GET"]

[[host_api.websocket]]
url = "wss://stream.example.net/"

[[host_api.websocket]]
url = "ws://localhost:9000/"
"#;

const GRANT: &str = r#"
plugin = "allocs"

[[host_api.request]]
url = "https://api.example.com/v1"

[[host_api.request]]
url = "https://*.example.com/"

[[host_api.request]]
url = "https://10.0.0.7:8443/data/"

[[host_api.websocket]]
url = "wss://stream.example.net/"

[[host_api.websocket]]
url = "ws://localhost:9000/"
"#;

/// (request, DNS answers, allocations an allow may make in total, parse
/// included). The budgets are what the code does now; `url::Url::parse`
/// alone is measured beside each and printed.
#[test]
fn allows_allocate_only_what_the_decision_owns() {
    let m = Manifest::parse("plugin.toml", MANIFEST).value.unwrap();
    let g = Grant::parse("grant.toml", GRANT).value.unwrap();
    let policy = compile(&m, Some(&g)).policy.unwrap();
    let authz = Authorizer::new(&policy);
    let public: &[IpAddr] = &["93.184.215.14".parse().unwrap()];
    // Budget = parse (+ addresses). Was parse + 3 (+ 1) while the decision
    // owned its redacted URL, rule id and message.
    let cases: &[(Request<'_>, Option<&[IpAddr]>, u64)] = &[
        // Two rules match (exact host and the wildcard): both inline.
        (
            Request::http("GET", "https://api.example.com/v1/users/42"),
            None,
            0,
        ),
        (
            Request::http("GET", "https://api.example.com/v1/items?page=2"),
            None,
            0,
        ),
        (
            Request::http("GET", "https://a.b.example.com/x"),
            Some(public),
            1,
        ),
        (
            Request::http("GET", "https://10.0.0.7:8443/data/blob"),
            None,
            1,
        ),
        (Request::websocket("wss://stream.example.net/feed"), None, 0),
        (Request::websocket("ws://localhost:9000/"), None, 1),
    ];
    let mut over = Vec::new();
    for (req, answers, budget) in cases {
        let d = authz.authorize(req, *answers);
        assert!(d.is_allowed(), "{}: {}", req.url, d.message());
        let parse = allocs(|| {
            std::hint::black_box(url::Url::parse(req.url).unwrap());
        });
        // (The debug-only check of the redacted URL against `redact::redact`
        // runs when the URL is read, not here.)
        let n = allocs(|| {
            std::hint::black_box(authz.authorize(req, *answers));
        });
        eprintln!(
            "{}: {n} allocations ({parse} in Url::parse; budget {})",
            req.url,
            parse + budget
        );
        if n > parse + budget {
            over.push(format!(
                "{}: {n} allocations, budget {} ({parse} for the parse)",
                req.url,
                parse + budget
            ));
        }
    }
    assert!(over.is_empty(), "{over:#?}");
}
