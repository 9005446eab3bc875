//! The replay engine: agreement with `authorize`, bounded memory on a long
//! stream, malformed and oversized lines, `against` changes, and summaries
//! that do not depend on the cache.

use netgrant_policy::replay::{ReplayOptions, Replayer, Summary};
use netgrant_policy::{compile, Authorizer, Capability, CompiledPolicy, Grant, Manifest, Request};
use serde_json::Value;
use std::io::Read;

mod table;

fn policy(manifest: &str, grant: &str) -> CompiledPolicy {
    let m = Manifest::parse("plugin.toml", manifest).value.unwrap();
    let g = Grant::parse("grant.toml", grant).value.unwrap();
    compile(&m, Some(&g)).policy.unwrap()
}

fn bridge() -> CompiledPolicy {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/discord-bridge/");
    policy(
        &std::fs::read_to_string(format!("{root}plugin.toml")).unwrap(),
        &std::fs::read_to_string(format!("{root}grant.toml")).unwrap(),
    )
}

fn replay(
    authz: &Authorizer,
    against: Option<&Authorizer>,
    opts: ReplayOptions,
    input: &[u8],
) -> (Summary, Vec<Value>) {
    let records = opts.records;
    let mut r = Replayer::new(authz, against, opts);
    let mut out = Vec::new();
    let s = r.run(input, records.then_some(&mut out)).unwrap();
    let lines = out
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| serde_json::from_slice(l).unwrap())
        .collect();
    (s, lines)
}

fn json_opts() -> ReplayOptions {
    ReplayOptions {
        records: true,
        ..ReplayOptions::default()
    }
}

// --- agreement with authorize over the 357-case table ----------------------

#[test]
fn replay_decides_like_authorize_on_the_table() {
    let table = table::load();
    let mut checked = 0;
    for (name, src) in &table.policy {
        let p = policy(&src.manifest, &src.grant);
        let authz = Authorizer::new(&p);
        // Every case, those asking for credentials included: log lines carry
        // their names (`credentials`).
        let cases: Vec<&table::Case> = table.case.iter().filter(|c| &c.policy == name).collect();
        // Each case as a JSON line, with headers as [name, value] pairs (exact
        // bytes, no "Name: value" splitting ambiguity).
        let mut log = String::new();
        let mut expected = Vec::new();
        for c in &cases {
            let headers = c.header_pairs();
            let url = c.url();
            let line = serde_json::json!({
                "capability": c.capability,
                "url": url,
                "method": c.method,
                "headers": headers.iter().map(|(n, v)| vec![n.clone(), v.clone()]).collect::<Vec<_>>(),
                "subprotocols": c.subprotocols,
                "resolved": c.resolve,
                "credentials": c.credentials,
            });
            log.push_str(&serde_json::to_string(&line).unwrap());
            log.push('\n');
            let answers = c.answers();
            let req = Request {
                capability: Capability::parse(&c.capability).unwrap(),
                url: &url,
                method: c.method.as_deref(),
                headers: &headers,
                subprotocols: &c.subprotocols,
                credentials: &c.credentials,
            };
            expected.push(authz.authorize(&req, answers.as_deref()));
        }
        // Twice over, so the second half comes from the cache.
        let twice = format!("{log}{log}");
        let (s, records) = replay(&authz, None, json_opts(), twice.as_bytes());
        assert_eq!(s.invalid, 0, "{name}: {:?}", s.invalid_lines);
        assert_eq!(records.len(), 2 * cases.len());
        for (i, r) in records.iter().enumerate() {
            let d = &expected[i % cases.len()];
            assert_eq!(r["kind"], "decision");
            assert_eq!(r["line"], i as u64 + 1);
            assert_eq!(
                r["code"],
                d.code.as_str(),
                "{name} #{i}: {}",
                cases[i % cases.len()].url
            );
            assert_eq!(r["url"], &*d.url());
            assert_eq!(r["message"], &*d.message());
            assert_eq!(r["rule"].as_str(), d.rule());
            assert_eq!(r["addresses_checked"], d.addresses_checked);
            checked += 1;
        }
        assert!(
            s.cache.hits >= cases.len() as u64 - 1,
            "{name}: {:?}",
            s.cache
        );
    }
    assert!(checked >= 2 * 357, "{checked}");
}

// --- bounded memory on a long stream ---------------------------------------

/// A reader that generates `n` lines on the fly (the log is never held in
/// memory): 1 in 4 distinct, the rest repeating a few hot lines, plus
/// invalid, oversized and blank lines.
struct Generated {
    i: usize,
    n: usize,
    pending: Vec<u8>,
    at: usize,
}

impl Generated {
    fn new(n: usize) -> Self {
        Generated {
            i: 0,
            n,
            pending: Vec::new(),
            at: 0,
        }
    }
    fn line(i: usize) -> String {
        match i % 1000 {
            0 => "{\"url\": \"https://discord.com/\", \"bogus\": 1}\n".into(),
            1 => format!("{}\n", "x".repeat(70_000)),
            2 => "\n".into(),
            k if k % 4 == 0 => {
                format!("{{\"capability\":\"request\",\"url\":\"https://h{i}.example/p/{i}\"}}\n")
            }
            k => format!(
                "{{\"capability\":\"websocket\",\"url\":\"wss://gateway.discord.gg/?n={}\"}}\n",
                k % 7
            ),
        }
    }
}

impl Read for Generated {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.at == self.pending.len() {
            if self.i == self.n {
                return Ok(0);
            }
            self.pending = Generated::line(self.i).into_bytes();
            self.at = 0;
            self.i += 1;
        }
        let k = buf.len().min(self.pending.len() - self.at);
        buf[..k].copy_from_slice(&self.pending[self.at..self.at + k]);
        self.at += k;
        Ok(k)
    }
}

#[test]
fn a_long_stream_stays_within_the_caps() {
    let p = bridge();
    let authz = Authorizer::new(&p);
    let opts = ReplayOptions {
        default_capability: Some(Capability::Request),
        cache_entries: 2_000,
        cache_bytes: 512 * 1024,
        top_capacity: 64,
        ..ReplayOptions::default()
    };
    let n = 200_000;
    let mut r = Replayer::new(&authz, Some(&authz), opts.clone());
    let input = std::io::BufReader::with_capacity(8192, Generated::new(n));
    let s = r.run(input, None::<&mut Vec<u8>>).unwrap();
    assert_eq!(s.lines, n as u64);
    assert_eq!(s.lines, s.decided + s.invalid + s.skipped);
    // 200 each of: bogus field, oversized, blank.
    assert_eq!(s.invalid, 400, "{:?}", s.invalid_lines);
    assert_eq!(s.skipped, 200);
    assert_eq!(s.invalid_lines.len(), opts.invalid_shown);
    assert_eq!(s.invalid_lines[0].line, 1);
    assert!(s.invalid_lines[0].message.contains("unknown field"));
    assert_eq!(s.invalid_lines[1].line, 2);
    assert!(s.invalid_lines[1]
        .message
        .contains("longer than 65536 bytes"));
    // Bounded: the cache and the top tables never exceed their caps.
    assert!(
        r.peak_cache_entries() <= opts.cache_entries,
        "{}",
        r.peak_cache_entries()
    );
    assert!(
        r.peak_cache_bytes() <= opts.cache_bytes,
        "{}",
        r.peak_cache_bytes()
    );
    let (denied_keys, changed_keys) = r.top_keys();
    assert!(denied_keys <= opts.top_capacity && changed_keys <= opts.top_capacity);
    assert!(
        s.cache.clears > 0,
        "the distinct lines must have filled the cache"
    );
    // ~50k distinct request hosts: the denied table overflowed and says so.
    assert!(s.top_denied_approximate);
    assert!(s.top_denied.iter().all(|t| t.count >= t.error));
    // The repeated websocket lines dominate the hits.
    assert!(s.cache.hits > s.cache.misses, "{:?}", s.cache);
    // Identical policies: nothing changes.
    assert_eq!(s.against.unwrap().changed, 0);
}

#[test]
fn summary_does_not_depend_on_the_cache() {
    let p = bridge();
    let authz = Authorizer::new(&p);
    let log = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../examples/discord-bridge/traffic.jsonl"
    ))
    .unwrap();
    let log = [log.clone(), log].concat();
    let (a, ra) = replay(&authz, None, json_opts(), &log);
    for cache_entries in [0, 1, 3] {
        let opts = ReplayOptions {
            cache_entries,
            ..json_opts()
        };
        let (b, rb) = replay(&authz, None, opts, &log);
        assert_eq!(
            ra, rb,
            "records differ with cache_entries = {cache_entries}"
        );
        let strip = |mut s: Summary| {
            s.cache = Default::default();
            s
        };
        assert_eq!(
            strip(a.clone()),
            strip(b),
            "cache_entries = {cache_entries}"
        );
    }
    assert_eq!(a.lines, 64);
    assert!(a.cache.hits >= 32);
}

#[test]
fn malformed_lines_are_counted_with_line_numbers() {
    let p = bridge();
    let authz = Authorizer::new(&p);
    let mut log = Vec::new();
    log.extend_from_slice(b"https://discord.com/api/v10/a\r\n");
    log.extend_from_slice(b"{\"url\": 5}\n");
    log.extend_from_slice(b"\xff\xfe not utf-8\n");
    log.extend_from_slice(b"# a comment\n");
    log.extend_from_slice(b"{\"capability\":\"ftp\",\"url\":\"x\"}\n");
    log.extend_from_slice(b"{\"url\":\"https://discord.com/\",\"headers\":[\"no colon\"]}\n");
    log.extend_from_slice(b"{\"url\":\"https://discord.com/\",\"resolved\":[\"1.2.3\"]}\n");
    log.extend_from_slice(&vec![b'a'; 300]);
    log.extend_from_slice(b"\nhttps://discord.com/api/v10/b"); // no final newline
    let opts = ReplayOptions {
        default_capability: Some(Capability::Request),
        max_line_bytes: 200,
        ..json_opts()
    };
    let (s, records) = replay(&authz, None, opts, &log);
    assert_eq!(s.lines, 9);
    assert_eq!(s.decided, 2);
    assert_eq!(s.allowed, 2);
    assert_eq!(s.skipped, 1);
    assert_eq!(s.invalid, 6);
    let lines: Vec<u64> = s.invalid_lines.iter().map(|l| l.line).collect();
    assert_eq!(lines, vec![2, 3, 5, 6, 7, 8]);
    let msgs: Vec<&str> = s.invalid_lines.iter().map(|l| l.message.as_str()).collect();
    assert!(msgs[0].contains("invalid type"), "{msgs:?}");
    assert!(msgs[1].contains("not UTF-8"));
    assert!(msgs[2].contains("`ftp`"));
    assert!(msgs[3].contains("no colon"));
    assert!(msgs[4].contains("not an IP address"));
    assert!(msgs[5].contains("longer than 200 bytes"));
    // Records: one per non-skipped line, in order; invalid ones say so.
    let kinds: Vec<(&str, u64)> = records
        .iter()
        .map(|r| (r["kind"].as_str().unwrap(), r["line"].as_u64().unwrap()))
        .collect();
    assert_eq!(
        kinds,
        vec![
            ("decision", 1),
            ("invalid", 2),
            ("invalid", 3),
            ("invalid", 5),
            ("invalid", 6),
            ("invalid", 7),
            ("invalid", 8),
            ("decision", 9)
        ]
    );
    assert_eq!(records[1]["code"], "invalid_input");
    assert_eq!(s.codes.last().unwrap().code, "invalid_input");
}

#[test]
fn against_lists_what_changes() {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/discord-bridge/");
    let manifest = std::fs::read_to_string(format!("{root}plugin.toml")).unwrap();
    let old = bridge();
    let new = policy(
        &manifest,
        &std::fs::read_to_string(format!("{root}grant.next.toml")).unwrap(),
    );
    let (a, b) = (Authorizer::new(&old), Authorizer::new(&new));
    let log = std::fs::read(format!("{root}traffic.jsonl")).unwrap();
    let (s, records) = replay(&a, Some(&b), json_opts(), &log);
    let c = s.against.clone().unwrap();
    let transitions: Vec<(&str, &str, u64)> = c
        .transitions
        .iter()
        .map(|t| (t.from.as_str(), t.to.as_str(), t.count))
        .collect();
    assert_eq!(
        transitions,
        vec![
            ("method_not_allowed", "allowed", 4),
            ("not_granted", "allowed", 4)
        ]
    );
    assert_eq!(c.changed, 8);
    assert_eq!(c.allowed, s.allowed + 8);
    let changed: u64 = records.iter().filter(|r| r["changed"] == true).count() as u64;
    assert_eq!(changed, 8);
    for r in records.iter().filter(|r| r["changed"] == true) {
        assert_ne!(r["code"], r["against"]["code"]);
    }
    assert_eq!(c.top_changed[0].target, "https://cdn.discordapp.com");
    // Reversed, the same lines change the other way.
    let (back, _) = replay(&b, Some(&a), ReplayOptions::default(), &log);
    let t: Vec<(String, String)> = back
        .against
        .unwrap()
        .transitions
        .iter()
        .map(|t| (t.from.clone(), t.to.clone()))
        .collect();
    assert!(t.contains(&("allowed".into(), "not_granted".into())));
    assert!(t.contains(&("allowed".into(), "method_not_allowed".into())));
}

#[test]
fn reading_stops_only_on_io_errors() {
    struct Failing;
    impl Read for Failing {
        fn read(&mut self, _: &mut [u8]) -> std::io::Result<usize> {
            Err(std::io::Error::other("disk on fire"))
        }
    }
    let p = bridge();
    let authz = Authorizer::new(&p);
    let mut r = Replayer::new(&authz, None, ReplayOptions::default());
    let e = r
        .run(std::io::BufReader::new(Failing), None::<&mut Vec<u8>>)
        .unwrap_err();
    assert_eq!(e.to_string(), "disk on fire");
    let s = Replayer::new(&authz, None, ReplayOptions::default())
        .run(&b""[..], None::<&mut Vec<u8>>)
        .unwrap();
    assert_eq!((s.lines, s.decided), (0, 0));
}

// --- credentials -------------------------------------------------------------

/// The discord bridge, with the API's credential declared but not bound on
/// the CDN-free grant the runtime would have used.
fn bridge_unbound() -> CompiledPolicy {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/discord-bridge/");
    policy(
        &std::fs::read_to_string(format!("{root}plugin.toml")).unwrap(),
        "plugin = \"discord-bridge\"\n[[host_api.request]]\nurl = \"https://discord.com/api/v10/\"\n",
    )
}

/// An audit record carries the credential names asked for; replay passes
/// them to the authorizer, so a recorded `credential_not_granted` replays as
/// the same deny (not as a false "allowed"), and a recorded allow that
/// injected a credential replays as an allow.
#[test]
fn audit_records_with_credentials_replay_to_the_same_decision() {
    let unbound = bridge_unbound();
    let bound = bridge();
    let (a_unbound, a_bound) = (Authorizer::new(&unbound), Authorizer::new(&bound));
    let deny = r#"{"record":"decision","time":"t","plugin":"discord-bridge","id":"1","capability":"request","url":"https://discord.com/api/v10/users/@me","method":"GET","header_names":[],"subprotocols":[],"resolved":null,"decision":"deny","code":"credential_not_granted","rule":"request:https://discord.com/api/v10/","digest":"sha256:x","credentials":["bot-token"]}"#;
    let allow = r#"{"record":"decision","time":"t","plugin":"discord-bridge","id":"2","capability":"request","url":"https://discord.com/api/v10/users/@me","method":"GET","header_names":[],"subprotocols":[],"resolved":null,"decision":"allow","code":"allowed","rule":"request:https://discord.com/api/v10/","digest":"sha256:x","credentials":["bot-token"]}"#;
    let (s, records) = replay(
        &a_unbound,
        None,
        json_opts(),
        format!("{deny}\n").as_bytes(),
    );
    assert_eq!(s.invalid, 0, "{:?}", s.invalid_lines);
    assert_eq!(records[0]["code"], "credential_not_granted");
    let recorded = s.recorded.as_ref().expect("recorded decisions");
    assert_eq!(recorded.changed, 0, "{recorded:?}");
    let (s, records) = replay(&a_bound, None, json_opts(), format!("{allow}\n").as_bytes());
    assert_eq!(s.invalid, 0, "{:?}", s.invalid_lines);
    assert_eq!(records[0]["code"], "allowed");
    assert_eq!(s.recorded.as_ref().unwrap().changed, 0);
    // Against the unbound grant, the allow that needed the credential is a
    // change: allowed before, denied credential_not_granted now.
    let (s, _) = replay(
        &a_bound,
        Some(&a_unbound),
        json_opts(),
        format!("{allow}\n").as_bytes(),
    );
    let against = s.against.as_ref().unwrap();
    assert_eq!(against.changed, 1, "{against:?}");
    assert_eq!(against.transitions[0].from, "allowed");
    assert_eq!(against.transitions[0].to, "credential_not_granted");
    // A plain request line may name credentials too.
    let line = r#"{"capability":"request","url":"https://discord.com/api/v10/x","method":"GET","credentials":["bot-token"]}"#;
    let (_, records) = replay(
        &a_unbound,
        None,
        json_opts(),
        format!("{line}\n").as_bytes(),
    );
    assert_eq!(records[0]["code"], "credential_not_granted");
    let (_, records) = replay(&a_bound, None, json_opts(), format!("{line}\n").as_bytes());
    assert_eq!(records[0]["code"], "allowed");
}

/// Without the field, nothing is asked for: an allow that needed credentials
/// replays as an allow (the decision without them, which is what the line
/// says); a recorded `credential_not_granted` without the names cannot be
/// replayed faithfully and is an invalid line, never a false change.
#[test]
fn records_without_credentials() {
    let unbound = bridge_unbound();
    let a = Authorizer::new(&unbound);
    let allow = r#"{"record":"decision","capability":"request","url":"https://discord.com/api/v10/x","method":"GET","decision":"allow","code":"allowed"}"#;
    let (s, records) = replay(&a, None, json_opts(), format!("{allow}\n").as_bytes());
    assert_eq!(s.invalid, 0, "{:?}", s.invalid_lines);
    assert_eq!(records[0]["code"], "allowed");
    assert_eq!(s.recorded.as_ref().unwrap().changed, 0);
    let deny = r#"{"record":"decision","capability":"request","url":"https://discord.com/api/v10/x","method":"GET","decision":"deny","code":"credential_not_granted"}"#;
    let (s, _) = replay(&a, None, json_opts(), format!("{deny}\n").as_bytes());
    assert_eq!(s.invalid, 1);
    assert!(
        s.invalid_lines[0].message.contains("needs `credentials`"),
        "{:?}",
        s.invalid_lines
    );
}

// --- userinfo ----------------------------------------------------------------

/// A recorded `credentials_in_url` holds the URL without its userinfo
/// (redacted); replay puts a placeholder back, so the line replays as the
/// same deny against any policy, and an allowed line with the same URL is
/// untouched (decision 198). The replayed decision shows no placeholder.
#[test]
fn a_recorded_credentials_in_url_replays_as_itself() {
    let bound = bridge();
    let a = Authorizer::new(&bound);
    let deny = r#"{"record":"decision","capability":"request","url":"https://discord.com/api/v10/users/@me","method":"GET","decision":"deny","code":"credentials_in_url","credentials":[]}"#;
    let allow = r#"{"record":"decision","capability":"request","url":"https://discord.com/api/v10/users/@me","method":"GET","decision":"allow","code":"allowed","credentials":[]}"#;
    let (s, records) = replay(
        &a,
        None,
        json_opts(),
        format!("{deny}\n{allow}\n").as_bytes(),
    );
    assert_eq!(s.invalid, 0, "{:?}", s.invalid_lines);
    assert_eq!(records[0]["code"], "credentials_in_url");
    assert_eq!(records[1]["code"], "allowed");
    assert_eq!(s.recorded.as_ref().unwrap().changed, 0);
    let text = records
        .iter()
        .map(|r| r.to_string())
        .collect::<Vec<_>>()
        .join("\n");
    assert!(!text.contains("redacted"), "{text}");
    // The placeholder comes from the recorded code only: a plain request
    // line with the same URL is what it says, an allow.
    let line =
        r#"{"capability":"request","url":"https://discord.com/api/v10/users/@me","method":"GET"}"#;
    let (_, records) = replay(&a, None, json_opts(), format!("{line}\n").as_bytes());
    assert_eq!(records[0]["code"], "allowed");
    // `://` later in a hand-written record is not its authority: the
    // placeholder goes where the URL's userinfo goes, or nowhere.
    let odd = r#"{"record":"decision","capability":"request","url":"https:discord.com/api/v10/x?next=https://evil.example/","method":"GET","decision":"deny","code":"credentials_in_url","credentials":[]}"#;
    let (s, records) = replay(&a, None, json_opts(), format!("{odd}\n").as_bytes());
    assert_eq!(s.invalid, 0, "{:?}", s.invalid_lines);
    assert_eq!(records[0]["code"], "credentials_in_url");
    let plain = r#"{"record":"decision","capability":"request","url":"not a url://x","method":"GET","decision":"deny","code":"credentials_in_url","credentials":[]}"#;
    let (s, records) = replay(&a, None, json_opts(), format!("{plain}\n").as_bytes());
    assert_eq!(records[0]["code"], "invalid_url");
    assert_eq!(
        s.recorded.as_ref().unwrap().changed,
        1,
        "a difference shows"
    );
}
