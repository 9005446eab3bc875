//! Hostile and broken inputs never panic: they come back as diagnostics.
//!
//! A table of bad-input classes (each with the code it must produce, or
//! "accepted" for inputs that look odd but are valid), then property tests
//! that feed arbitrary strings and arbitrary mutations of valid files to
//! `Manifest::parse`, `Grant::parse`, `compile` and `load_policy`.
//!
//! Every run checks the same invariants: no panic; a rejected file carries
//! at least one error; every label lies inside its own file and on char
//! boundaries; rendering every diagnostic works.

use netgrant_policy::diagnostics::render;
use netgrant_policy::{compile, load_policy, Code, Diagnostic, Grant, Manifest};
use proptest::prelude::*;
use std::panic::{catch_unwind, AssertUnwindSafe};

const MANIFEST: &str = "plugin.toml";
const GRANT: &str = "grant.toml";
const IR: &str = "ir.json";

const VALID_MANIFEST: &str = r#"[plugin]
name = "bridge"
version = "0.3.1"

[[host_api.request]]
url = "https://api.example.com/v1/"
methods = ["GET", "POST"]
headers = ["X-Audit-Log-Reason"]
reason = "Post replies"

[[host_api.websocket]]
url = "wss://*.example.com/"
subprotocols = ["json"]
reason = "Receive events"

[[host_api.websocket]]
url = "wss://events.corp.example/"
networks = ["10.0.0.0/8"]

[[host_api.websocket]]
url = "wss://*/"
reason = "User-configured relays"
"#;

const VALID_GRANT: &str = r#"plugin = "bridge"

[[host_api.request]]
url = "https://api.example.com/v1/users/"
methods = ["GET"]

[[host_api.websocket]]
url = "wss://eu.example.com/"

[[host_api.websocket]]
url = "wss://*/"
broad = true
"#;

const HEADER: &str = "[plugin]\nname = \"bridge\"\nversion = \"0.3.1\"\n";

/// What a run produced, after checking the invariants.
struct Run {
    manifest_ok: Option<bool>,
    grant_ok: Option<bool>,
    codes: Vec<Code>,
}

/// Checks one diagnostic (and its related ones) against the file it names.
fn check_diagnostic(d: &Diagnostic, files: &[(&str, &[u8])]) {
    let _ = render(d, false);
    let _ = render(d, true);
    match d.file_name() {
        None => assert!(d.labels.is_empty(), "{}: labels without a file", d.code),
        Some(name) => {
            let bytes = files
                .iter()
                .find(|(n, _)| *n == name)
                .unwrap_or_else(|| panic!("{}: unknown file {name:?}", d.code))
                .1;
            let text =
                std::str::from_utf8(bytes).expect("a diagnostic with a source comes from text");
            assert_eq!(
                d.source_text().map(str::len),
                Some(text.len()),
                "{}: source length",
                d.code
            );
            for l in &d.labels {
                assert!(
                    l.span.start <= l.span.end && l.span.end <= text.len(),
                    "{}: label {:?} outside a {}-byte file",
                    d.code,
                    l.span,
                    text.len()
                );
                assert!(
                    text.is_char_boundary(l.span.start) && text.is_char_boundary(l.span.end),
                    "{}: label {:?} splits a character",
                    d.code,
                    l.span
                );
            }
            let _ = d.line_col();
            let _ = d.end_line_col();
        }
    }
    for r in &d.related {
        check_diagnostic(r, files);
    }
}

fn check_all(diags: &[Diagnostic], files: &[(&str, &[u8])]) {
    for d in diags {
        check_diagnostic(d, files);
    }
}

/// Parses a manifest and a grant from bytes and, when both parse, compiles.
fn run_toml(manifest: &[u8], grant: Option<&[u8]>) -> Run {
    let mut files: Vec<(&str, &[u8])> = vec![(MANIFEST, manifest)];
    if let Some(g) = grant {
        files.push((GRANT, g));
    }
    let m = Manifest::parse_bytes(MANIFEST, manifest);
    check_all(&m.diagnostics, &files);
    assert!(
        m.value.is_some() || m.diagnostics.iter().any(|d| d.severity().is_error()),
        "manifest rejected without an error"
    );
    let mut codes: Vec<Code> = m.diagnostics.iter().map(|d| d.code).collect();
    let mut grant_ok = None;
    let g = grant.map(|bytes| {
        let g = Grant::parse_bytes(GRANT, bytes);
        check_all(&g.diagnostics, &files);
        assert!(
            g.value.is_some() || g.diagnostics.iter().any(|d| d.severity().is_error()),
            "grant rejected without an error"
        );
        codes.extend(g.diagnostics.iter().map(|d| d.code));
        grant_ok = Some(g.value.is_some());
        g.value
    });
    if let Some(mv) = &m.value {
        let c = match &g {
            None => Some(compile(mv, None)),
            Some(Some(gv)) => Some(compile(mv, Some(gv))),
            Some(None) => None,
        };
        if let Some(c) = c {
            check_all(&c.diagnostics, &files);
            codes.extend(c.diagnostics.iter().map(|d| d.code));
            if let Some(p) = &c.policy {
                // A compiled policy always reloads.
                let json = p.to_json();
                let loaded = load_policy(IR, &json);
                assert!(
                    loaded.is_ok(),
                    "compiled IR does not reload: {:?}",
                    loaded.err()
                );
            }
        }
    }
    Run {
        manifest_ok: Some(m.value.is_some()),
        grant_ok,
        codes,
    }
}

/// Parses a grant, compiled against the valid manifest.
fn run_grant(grant: &[u8]) -> Run {
    run_toml(VALID_MANIFEST.as_bytes(), Some(grant))
}

fn run_ir(text: &str) -> Run {
    let files: [(&str, &[u8]); 1] = [(IR, text.as_bytes())];
    let codes = match load_policy(IR, text) {
        Ok(p) => {
            // Whitespace may differ from the canonical spelling; the content
            // may not: what loads, reloads from its canonical form unchanged.
            let again = load_policy(IR, &p.to_json()).expect("canonical form reloads");
            assert_eq!(again, p);
            Vec::new()
        }
        Err(ds) => {
            assert!(!ds.is_empty());
            check_all(&ds, &files);
            ds.iter().map(|d| d.code).collect()
        }
    };
    Run {
        manifest_ok: None,
        grant_ok: None,
        codes,
    }
}

// ---------------------------------------------------------------------------
// Table-driven classes
// ---------------------------------------------------------------------------

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Want {
    /// Rejected with (at least) this error code.
    Error(Code),
    /// Valid: accepted without any error.
    Accepted,
}

enum Input {
    Manifest(Vec<u8>),
    Grant(Vec<u8>),
    Ir(String),
}

struct Class {
    name: &'static str,
    input: Input,
    want: Want,
}

fn m(name: &'static str, text: impl Into<Vec<u8>>, want: Want) -> Class {
    Class {
        name,
        input: Input::Manifest(text.into()),
        want,
    }
}

fn g(name: &'static str, text: impl Into<Vec<u8>>, want: Want) -> Class {
    Class {
        name,
        input: Input::Grant(text.into()),
        want,
    }
}

fn ir(name: &'static str, text: impl Into<String>, want: Want) -> Class {
    Class {
        name,
        input: Input::Ir(text.into()),
        want,
    }
}

fn ws_manifest(body: &str) -> String {
    format!("{HEADER}\n[[host_api.websocket]]\nurl = \"wss://gateway.example.com/\"\n{body}")
}

fn req_manifest(body: &str) -> String {
    format!("{HEADER}\n[[host_api.request]]\nurl = \"https://api.example.com/\"\nmethods = [\"GET\"]\n{body}")
}

fn list(n: usize, f: impl Fn(usize) -> String) -> String {
    let items: Vec<String> = (0..n).map(|i| format!("\"{}\"", f(i))).collect();
    format!("[{}]", items.join(", "))
}

fn targets(n: usize) -> String {
    let mut s = HEADER.to_string();
    for i in 0..n {
        s.push_str(&format!(
            "\n[[host_api.websocket]]\nurl = \"wss://h{i}.example.com/\"\n"
        ));
    }
    s
}

/// A valid manifest padded with a comment to exactly `len` bytes.
fn padded(len: usize) -> Vec<u8> {
    let mut s = ws_manifest("# ");
    assert!(s.len() < len);
    s.push_str(&"x".repeat(len - s.len()));
    s.into_bytes()
}

fn url_of_len(len: usize) -> String {
    let mut u = "wss://gateway.example.com/".to_string();
    while u.len() < len {
        u.push('a');
    }
    u
}

fn valid_ir() -> String {
    let mv = Manifest::parse(MANIFEST, VALID_MANIFEST).value.unwrap();
    let gv = Grant::parse(GRANT, VALID_GRANT).value.unwrap();
    compile(&mv, Some(&gv)).policy.unwrap().to_json()
}

fn classes() -> Vec<Class> {
    use Want::*;
    let garbage: Vec<u8> = (0..4096u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let control_garbage: String = (0..2048u32)
        .map(|i| char::from_u32(i % 0x20).unwrap())
        .collect();
    let deep = 100_000;
    vec![
        m("empty file", "", Error(Code::MissingKey)),
        g("empty grant", "", Error(Code::MissingKey)),
        m("only whitespace and comments", "\n\n   \t\n# nothing\n", Error(Code::MissingKey)),
        m("BOM then a valid manifest", format!("\u{feff}{VALID_MANIFEST}"), Accepted),
        g("BOM then a valid grant", format!("\u{feff}{VALID_GRANT}"), Accepted),
        m("CRLF line endings", VALID_MANIFEST.replace('\n', "\r\n"), Accepted),
        g("CRLF line endings in a grant", VALID_GRANT.replace('\n', "\r\n"), Accepted),
        m("bare CR line endings", VALID_MANIFEST.replace('\n', "\r"), Error(Code::TomlSyntax)),
        m("binary garbage", garbage.clone(), Error(Code::NotUtf8)),
        g("binary garbage grant", garbage, Error(Code::NotUtf8)),
        m("control-character garbage", control_garbage, Error(Code::TomlSyntax)),
        m("invalid UTF-8", b"[plugin]\nname = \"caf\xe9\"\nversion = \"0.1.0\"\n".to_vec(), Error(Code::NotUtf8)),
        m("truncated UTF-8 sequence at the end", [HEADER.as_bytes(), b"# \xe2\x80"].concat(), Error(Code::NotUtf8)),
        g("invalid UTF-8 grant", b"plugin = \"\xff\xfe\"\n".to_vec(), Error(Code::NotUtf8)),
        m("exactly 1 MiB", padded(1024 * 1024), Accepted),
        m("1 MiB + 1 byte", padded(1024 * 1024 + 1), Error(Code::FileTooLarge)),
        g("grant of 1 MiB + 1 byte", format!("plugin = \"bridge\"\n# {}", "x".repeat(1024 * 1024)), Error(Code::FileTooLarge)),
        m("10,000 targets", targets(10_000), Accepted),
        m("10,001 targets", targets(10_001), Error(Code::TooMany)),
        m("URL of 2,048 bytes", format!("{HEADER}\n[[host_api.websocket]]\nurl = \"{}\"\n", url_of_len(2048)), Accepted),
        m("URL of 2,049 bytes", format!("{HEADER}\n[[host_api.websocket]]\nurl = \"{}\"\n", url_of_len(2049)), Error(Code::TargetTooLong)),
        m("32 headers", req_manifest(&format!("headers = {}\n", list(32, |i| format!("X-H{i}")))), Accepted),
        m("33 headers", req_manifest(&format!("headers = {}\n", list(33, |i| format!("X-H{i}")))), Error(Code::TooMany)),
        m("16 subprotocols", ws_manifest(&format!("subprotocols = {}\n", list(16, |i| format!("p{i}")))), Accepted),
        m("17 subprotocols", ws_manifest(&format!("subprotocols = {}\n", list(17, |i| format!("p{i}")))), Error(Code::TooMany)),
        m("33 networks", ws_manifest(&format!("networks = {}\n", list(33, |i| format!("10.{i}.0.0/16")))), Error(Code::TooMany)),
        m("deeply nested arrays", ws_manifest(&format!("headers = {}{}\n", "[".repeat(deep), "]".repeat(deep))), Error(Code::TomlSyntax)),
        m("nested arrays within the parser's limit", ws_manifest(&format!("headers = {}{}\n", "[".repeat(20), "]".repeat(20))), Error(Code::WrongType)),
        m("deeply nested inline tables", ws_manifest(&format!("x = {}1{}\n", "{a=".repeat(deep), "}".repeat(deep))), Error(Code::TomlSyntax)),
        m("deeply nested table header", format!("{HEADER}[{}]\n", vec!["a"; deep].join(".")), Error(Code::TomlSyntax)),
        m("deeply nested dotted key", format!("{HEADER}{} = 1\n", vec!["a"; deep].join(".")), Error(Code::TomlSyntax)),
        m("huge integer version", "[plugin]\nname = \"bridge\"\nversion = 999999999999999999999999999999\n", Error(Code::WrongType)),
        m("huge integer in methods", req_manifest("").replace("[\"GET\"]", "[18446744073709551616]"), Error(Code::WrongType)),
        m("huge float url", format!("{HEADER}\n[[host_api.websocket]]\nurl = 1e999\n"), Error(Code::WrongType)),
        m("integer overflowing i64 as a header", req_manifest("headers = [-9223372036854775809]\n"), Error(Code::WrongType)),
        m("offset datetime where a url is expected", format!("{HEADER}\n[[host_api.websocket]]\nurl = 1979-05-27T07:32:00Z\n"), Error(Code::WrongType)),
        m("local date as the version", "[plugin]\nname = \"bridge\"\nversion = 1979-05-27\n", Error(Code::WrongType)),
        m("local time as a reason", ws_manifest("reason = 07:32:00\n"), Error(Code::WrongType)),
        g("datetime as the grant's plugin", "plugin = 1979-05-27T00:32:00.999999-07:00\n", Error(Code::WrongType)),
        m("[host_api.websocket] as a single table", format!("{HEADER}\n[host_api.websocket]\nurl = \"wss://gateway.example.com/\"\n"), Error(Code::WrongType)),
        g("[host_api.request] as a single table in a grant", "plugin = \"bridge\"\n[host_api.request]\nurl = \"https://api.example.com/v1/\"\n", Error(Code::WrongType)),
        m("host_api as an array", format!("host_api = [1, 2]\n{HEADER}"), Error(Code::WrongType)),
        m("reason with a raw bidi control", ws_manifest("reason = \"Invoice \u{202E}fdp.exe\"\n"), Error(Code::Reason)),
        m("reason with an escaped bidi isolate", ws_manifest("reason = \"a\\u2066b\\u2069\"\n"), Error(Code::Reason)),
        m("reason with an escaped NUL", ws_manifest("reason = \"a\\u0000b\"\n"), Error(Code::Reason)),
        m("reason with a raw NUL byte", ws_manifest("reason = \"a\0b\"\n"), Error(Code::TomlSyntax)),
        m("reason with an escaped ANSI sequence", ws_manifest("reason = \"\\u001b[31mred\\u001b[0m\"\n"), Error(Code::Reason)),
        m("reason with a raw ESC byte", ws_manifest("reason = \"\u{1b}[2J\"\n"), Error(Code::TomlSyntax)),
        m("ANSI escape in a comment", ws_manifest("# \u{1b}[2J\u{1b}]8;;x\u{7}\n"), Error(Code::TomlSyntax)),
        m("reason with a C1 control (NEL)", ws_manifest("reason = \"a\u{85}b\"\n"), Error(Code::Reason)),
        m("reason of 201 astral characters", ws_manifest(&format!("reason = \"{}\"\n", "😀".repeat(201))), Error(Code::Reason)),
        m("reason in a multi-line string with CRLF", ws_manifest("reason = \"\"\"\r\nline one\r\nline two\"\"\"\n"), Error(Code::Reason)),
        m("url with a raw bidi control", format!("{HEADER}\n[[host_api.websocket]]\nurl = \"wss://gate\u{202E}way.example.com/\"\n"), Error(Code::TargetSyntax)),
        m("url with an escaped NUL", format!("{HEADER}\n[[host_api.websocket]]\nurl = \"wss://x.example.com/\\u0000\"\n"), Error(Code::TargetSyntax)),
        m("url with escapes (span falls back to the value)", format!("{HEADER}\n[[host_api.websocket]]\nurl = \"wss://a\\u002a.example.com/\"\n"), Error(Code::Wildcard)),
        m("url as a multi-line string", format!("{HEADER}\n[[host_api.websocket]]\nurl = \"\"\"\nwss://a*.example.com/\"\"\"\n"), Error(Code::Wildcard)),
        m("astral characters in the host", format!("{HEADER}\n[[host_api.websocket]]\nurl = \"wss://😀.example.com:99999/\"\n"), Error(Code::Port)),
        m("lone surrogate escape", ws_manifest("reason = \"\\uD800\"\n"), Error(Code::TomlSyntax)),
        m("quoted key with an ANSI escape", format!("{HEADER}\"\\u001b[2J\" = 1\n"), Error(Code::UnknownKey)),
        m("duplicate table", format!("{HEADER}[plugin]\nname = \"x\"\n"), Error(Code::TomlSyntax)),
        m("array of tables redefined as a table", format!("{HEADER}[[host_api.request]]\nurl = \"https://x/\"\nmethods = [\"GET\"]\n[host_api]\nrequest = 1\n"), Error(Code::TomlSyntax)),
        m("unterminated everything", "[plugin\nname = \"x\nversion = '''\n[[host_api.request", Error(Code::TomlSyntax)),
        m("a thousand dots in the host", format!("{HEADER}\n[[host_api.websocket]]\nurl = \"wss://{}x/\"\n", ".".repeat(1000)), Error(Code::Host)),
        ir("empty IR", "", Error(Code::IrSyntax)),
        ir("IR of garbage", "\u{0}\u{1b}[2J{{{", Error(Code::IrSyntax)),
        ir("deeply nested IR", format!("{}{}", "[".repeat(deep), "]".repeat(deep)), Error(Code::IrSyntax)),
        ir("IR with a huge version", valid_ir().replacen("\"version\": 1,", "\"version\": 99999999999999999999999,", 1), Error(Code::IrSyntax)),
        ir("IR with a bidi reason", valid_ir().replacen("\"Post replies\"", "\"Post \\u202e replies\"", 1), Error(Code::IrTampered)),
        ir("IR with an unknown field", valid_ir().replacen("{", "{\"extra\": 1,", 1), Error(Code::IrSyntax)),
        ir("valid IR", valid_ir(), Accepted),
    ]
}

#[test]
fn bad_input_classes_return_diagnostics() {
    let mut failures = Vec::new();
    for c in classes() {
        let result = catch_unwind(AssertUnwindSafe(|| match &c.input {
            Input::Manifest(b) => run_toml(b, None),
            Input::Grant(b) => run_grant(b),
            Input::Ir(t) => run_ir(t),
        }));
        let run = match result {
            Ok(r) => r,
            Err(e) => {
                let msg = e
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_default();
                failures.push(format!("{}: panicked: {msg}", c.name));
                continue;
            }
        };
        let errors: Vec<Code> = run
            .codes
            .iter()
            .copied()
            .filter(|c| c.severity().is_error())
            .collect();
        match c.want {
            Want::Accepted => {
                let rejected = run.manifest_ok == Some(false) || run.grant_ok == Some(false);
                if rejected || !errors.is_empty() {
                    failures.push(format!(
                        "{}: expected it to be accepted, got {errors:?}",
                        c.name
                    ));
                }
            }
            Want::Error(code) => {
                if !errors.contains(&code) {
                    failures.push(format!("{}: expected {code}, got {:?}", c.name, run.codes));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

// ---------------------------------------------------------------------------
// Property tests
// ---------------------------------------------------------------------------

/// Fragments that matter to the TOML and target grammars.
const TOKENS: &[&str] = &[
    "[",
    "]",
    "[[",
    "]]",
    "{",
    "}",
    "=",
    ",",
    ".",
    "\"",
    "'",
    "\"\"\"",
    "'''",
    "\\",
    "\\u",
    "\\U0001F600",
    "\n",
    "\r\n",
    "\r",
    "\t",
    " ",
    "#",
    "plugin",
    "name",
    "version",
    "host_api",
    "request",
    "websocket",
    "url",
    "methods",
    "headers",
    "subprotocols",
    "networks",
    "reason",
    "broad",
    "approved_digest",
    "true",
    "1",
    "-1",
    "1e999",
    "1979-05-27T07:32:00Z",
    "nan",
    "inf",
    "wss://",
    "https://",
    "ws://",
    "http://",
    "ftp://",
    "*",
    "*.",
    ":",
    ":*",
    ":0",
    ":65536",
    "@",
    "?",
    "#",
    "/",
    "%2F",
    "%2e",
    "%00",
    "%c0%ae",
    ";",
    "localhost",
    "127.0.0.1",
    "[::1]",
    "169.254.169.254",
    "10.0.0.0/8",
    "::ffff:",
    "xn--",
    "example.com",
    "..",
    "GET",
    "CONNECT",
    "Authorization",
    "Sec-WebSocket-Key",
    "\u{202E}",
    "\u{2066}",
    "\u{200B}",
    "\u{FEFF}",
    "\u{1b}[31m",
    "\u{0}",
    "\u{85}",
    "é",
    "😀",
    "\u{10FFFF}",
];

fn token_soup() -> impl Strategy<Value = String> {
    prop::collection::vec(prop::sample::select(TOKENS), 0..64).prop_map(|v| v.concat())
}

#[derive(Clone, Debug)]
enum Mutation {
    Insert(usize, String),
    Delete(usize, usize),
    DuplicateLine(usize),
    SwapLines(usize, usize),
    Truncate(usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (
            any::<usize>(),
            prop::sample::select(TOKENS).prop_map(str::to_string)
        )
            .prop_map(|(i, s)| Mutation::Insert(i, s)),
        (any::<usize>(), ".{0,4}").prop_map(|(i, s)| Mutation::Insert(i, s)),
        (any::<usize>(), 0usize..16).prop_map(|(i, n)| Mutation::Delete(i, n)),
        any::<usize>().prop_map(Mutation::DuplicateLine),
        (any::<usize>(), any::<usize>()).prop_map(|(a, b)| Mutation::SwapLines(a, b)),
        any::<usize>().prop_map(Mutation::Truncate),
    ]
}

fn floor_boundary(s: &str, i: usize) -> usize {
    let mut i = i.min(s.len());
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

fn apply(text: &str, muts: &[Mutation]) -> String {
    let mut s = text.to_string();
    for m in muts {
        match m {
            Mutation::Insert(i, t) => {
                let at = floor_boundary(&s, i % (s.len() + 1));
                s.insert_str(at, t);
            }
            Mutation::Delete(i, n) => {
                let a = floor_boundary(&s, i % (s.len() + 1));
                let b = floor_boundary(&s, a + n);
                s.replace_range(a..b, "");
            }
            Mutation::DuplicateLine(i) => {
                let mut lines: Vec<&str> = s.split_inclusive('\n').collect();
                if !lines.is_empty() {
                    let k = i % lines.len();
                    lines.insert(k, lines[k]);
                }
                s = lines.concat();
            }
            Mutation::SwapLines(a, b) => {
                let mut lines: Vec<&str> = s.split_inclusive('\n').collect();
                if !lines.is_empty() {
                    let (a, b) = (a % lines.len(), b % lines.len());
                    lines.swap(a, b);
                }
                s = lines.concat();
            }
            Mutation::Truncate(i) => {
                let at = floor_boundary(&s, i % (s.len() + 1));
                s.truncate(at);
            }
        }
    }
    s
}

proptest! {
    // 512 cases by default; `PROPTEST_CASES=100000` for a longer hunt.
    #![proptest_config(ProptestConfig {
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|s| s.parse().ok()).unwrap_or(512),
        ..ProptestConfig::default()
    })]

    #[test]
    fn arbitrary_strings_never_panic(s in ".{0,200}") {
        run_toml(s.as_bytes(), None);
        run_grant(s.as_bytes());
        run_toml(VALID_MANIFEST.as_bytes(), Some(s.as_bytes()));
        run_ir(&s);
    }

    #[test]
    fn arbitrary_bytes_never_panic(b in prop::collection::vec(any::<u8>(), 0..256)) {
        run_toml(&b, None);
        run_grant(&b);
    }

    #[test]
    fn token_soup_never_panics(s in token_soup()) {
        run_toml(s.as_bytes(), None);
        run_grant(s.as_bytes());
        let prefixed = format!("{HEADER}\n[[host_api.websocket]]\n{s}");
        run_toml(prefixed.as_bytes(), None);
        run_ir(&s);
    }

    #[test]
    fn mutated_manifests_never_panic(muts in prop::collection::vec(mutation(), 1..6)) {
        let m = apply(VALID_MANIFEST, &muts);
        run_toml(m.as_bytes(), Some(VALID_GRANT.as_bytes()));
    }

    #[test]
    fn mutated_grants_never_panic(muts in prop::collection::vec(mutation(), 1..6)) {
        let g = apply(VALID_GRANT, &muts);
        run_grant(g.as_bytes());
    }

    #[test]
    fn mutated_irs_never_panic(muts in prop::collection::vec(mutation(), 1..4)) {
        let text = apply(&valid_ir(), &muts);
        run_ir(&text);
    }
}

#[test]
fn the_valid_inputs_are_valid() {
    // The property tests mutate these; make sure they start out valid.
    let run = run_toml(VALID_MANIFEST.as_bytes(), Some(VALID_GRANT.as_bytes()));
    assert_eq!(run.manifest_ok, Some(true));
    assert_eq!(run.grant_ok, Some(true));
    assert!(
        run.codes.iter().all(|c| !c.severity().is_error()),
        "{:?}",
        run.codes
    );
}
