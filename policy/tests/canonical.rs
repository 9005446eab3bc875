//! The IR is canonical (docs/spec.md §4.1): semantically equal inputs compile to
//! byte-identical JSON, and semantically different inputs do not. Also the
//! two digests: `digest` follows every change of the IR, `requested_digest`
//! only changes of the manifest's requested set.
//!
//! Every table runs completely and reports all failures at once.

use netgrant_policy::{compile, CompiledPolicy, Grant, Manifest};

/// One input pair: a manifest and a grant (TOML text).
#[derive(Clone, Copy)]
struct Input {
    manifest: &'static str,
    grant: &'static str,
}

const fn input(manifest: &'static str, grant: &'static str) -> Input {
    Input { manifest, grant }
}

fn build(label: &str, i: Input) -> Result<CompiledPolicy, String> {
    let m = Manifest::parse("plugin.toml", i.manifest);
    let manifest = m.value.ok_or_else(|| {
        format!(
            "{label}: manifest does not parse: {:?}",
            m.diagnostics
                .iter()
                .map(|d| format!("{}: {}", d.code.as_str(), d.message))
                .collect::<Vec<_>>()
        )
    })?;
    let g = Grant::parse("grant.toml", i.grant);
    let grant = g.value.ok_or_else(|| {
        format!(
            "{label}: grant does not parse: {:?}",
            g.diagnostics
                .iter()
                .map(|d| format!("{}: {}", d.code.as_str(), d.message))
                .collect::<Vec<_>>()
        )
    })?;
    let compiled = compile(&manifest, Some(&grant));
    compiled.policy.ok_or_else(|| {
        format!(
            "{label}: does not compile: {:?}",
            compiled
                .diagnostics
                .iter()
                .map(|d| format!("{}: {}", d.code.as_str(), d.message))
                .collect::<Vec<_>>()
        )
    })
}

/// A short line-level diff of two IR texts, for failure messages.
fn first_difference(a: &str, b: &str) -> String {
    for (n, (x, y)) in a.lines().zip(b.lines()).enumerate() {
        if x != y {
            return format!("line {}: {x:?} vs {y:?}", n + 1);
        }
    }
    format!(
        "one IR is a prefix of the other ({} vs {} lines)",
        a.lines().count(),
        b.lines().count()
    )
}

fn report(what: &str, failures: Vec<String>) {
    assert!(
        failures.is_empty(),
        "{} {what} failed:\n  {}",
        failures.len(),
        failures.join("\n  ")
    );
}

// ---------------------------------------------------------------------------
// Equivalent inputs
// ---------------------------------------------------------------------------

const EQUIVALENT: &[(&str, Input, Input)] = &[
    (
        "target spelling: scheme/host case and the default port",
        input(
            r#"
[plugin]
name = "p"
version = "1.0.0"
[[host_api.websocket]]
url = "WSS://Example.COM:443"
"#,
            r#"
plugin = "p"
[[host_api.websocket]]
url = "wss://EXAMPLE.com:443/"
"#,
        ),
        input(
            r#"
[plugin]
name = "p"
version = "1.0.0"
[[host_api.websocket]]
url = "wss://example.com/"
"#,
            r#"
plugin = "p"
[[host_api.websocket]]
url = "wss://example.com/"
"#,
        ),
    ),
    (
        "entry order in manifest and grant",
        input(
            r#"
[plugin]
name = "p"
version = "1.0.0"
[[host_api.websocket]]
url = "wss://b.example/"
[[host_api.request]]
url = "https://z.example/"
methods = ["GET"]
[[host_api.websocket]]
url = "wss://a.example/"
[[host_api.request]]
url = "https://a.example/"
methods = ["GET"]
"#,
            r#"
plugin = "p"
[[host_api.request]]
url = "https://z.example/"
[[host_api.websocket]]
url = "wss://a.example/"
"#,
        ),
        input(
            r#"
[plugin]
name = "p"
version = "1.0.0"
[[host_api.request]]
url = "https://a.example/"
methods = ["GET"]
[[host_api.request]]
url = "https://z.example/"
methods = ["GET"]
[[host_api.websocket]]
url = "wss://a.example/"
[[host_api.websocket]]
url = "wss://b.example/"
"#,
            r#"
plugin = "p"
[[host_api.websocket]]
url = "wss://a.example/"
[[host_api.request]]
url = "https://z.example/"
"#,
        ),
    ),
    (
        "key order inside tables",
        input(
            r#"
[plugin]
version = "1.0.0"
name = "p"
[[host_api.request]]
reason = "why"
headers = ["X-A"]
methods = ["GET"]
url = "https://a.example/"
"#,
            r#"
plugin = "p"
[[host_api.request]]
methods = ["GET"]
url = "https://a.example/"
"#,
        ),
        input(
            r#"
[plugin]
name = "p"
version = "1.0.0"
[[host_api.request]]
url = "https://a.example/"
methods = ["GET"]
headers = ["X-A"]
reason = "why"
"#,
            r#"
plugin = "p"
[[host_api.request]]
url = "https://a.example/"
methods = ["GET"]
"#,
        ),
    ),
    (
        "method order and duplicates",
        input(
            r#"
[plugin]
name = "p"
version = "1.0.0"
[[host_api.request]]
url = "https://a.example/"
methods = ["POST", "DELETE", "GET", "POST"]
"#,
            r#"
plugin = "p"
[[host_api.request]]
url = "https://a.example/"
methods = ["GET", "POST", "GET"]
"#,
        ),
        input(
            r#"
[plugin]
name = "p"
version = "1.0.0"
[[host_api.request]]
url = "https://a.example/"
methods = ["GET", "POST", "DELETE"]
"#,
            r#"
plugin = "p"
[[host_api.request]]
url = "https://a.example/"
methods = ["POST", "GET"]
"#,
        ),
    ),
    (
        "networks inside another or adjacent are aggregated",
        input(
            r#"
[plugin]
name = "p"
version = "1.0.0"
[[host_api.websocket]]
url = "wss://db.corp.example/"
networks = ["10.1.0.0/16", "10.1.2.3", "10.0.0.0/16", "192.168.1.0/25", "192.168.1.128/25"]
"#,
            r#"
plugin = "p"
[[host_api.websocket]]
url = "wss://db.corp.example/"
broad = true
"#,
        ),
        input(
            r#"
[plugin]
name = "p"
version = "1.0.0"
[[host_api.websocket]]
url = "wss://db.corp.example/"
networks = ["192.168.1.0/24", "10.0.0.0/15"]
"#,
            r#"
plugin = "p"
[[host_api.websocket]]
url = "wss://db.corp.example/"
broad = true
"#,
        ),
    ),
    (
        "all seven methods listed are \"*\"",
        input(
            r#"
[plugin]
name = "p"
version = "1.0.0"
[[host_api.request]]
url = "https://a.example/"
methods = ["OPTIONS", "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"]
"#,
            r#"
plugin = "p"
[[host_api.request]]
url = "https://a.example/"
methods = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
"#,
        ),
        input(
            r#"
[plugin]
name = "p"
version = "1.0.0"
[[host_api.request]]
url = "https://a.example/"
methods = "*"
"#,
            r#"
plugin = "p"
[[host_api.request]]
url = "https://a.example/"
methods = ["*"]
"#,
        ),
    ),
    (
        "methods \"*\" as a string or a one-element list",
        input(
            r#"
[plugin]
name = "p"
version = "1.0.0"
[[host_api.request]]
url = "https://a.example/"
methods = ["*"]
"#,
            r#"
plugin = "p"
[[host_api.request]]
url = "https://a.example/"
"#,
        ),
        input(
            r#"
[plugin]
name = "p"
version = "1.0.0"
[[host_api.request]]
url = "https://a.example/"
methods = "*"
"#,
            r#"
plugin = "p"
[[host_api.request]]
url = "https://a.example/"
"#,
        ),
    ),
    (
        "network host bits are zeroed",
        input(
            r#"
[plugin]
name = "p"
version = "1.0.0"
[[host_api.websocket]]
url = "wss://bus.corp.example/"
networks = ["10.1.2.3/8"]
"#,
            r#"
plugin = "p"
[[host_api.websocket]]
url = "wss://bus.corp.example/"
networks = ["10.200.0.1/8"]
broad = true
"#,
        ),
        input(
            r#"
[plugin]
name = "p"
version = "1.0.0"
[[host_api.websocket]]
url = "wss://bus.corp.example/"
networks = ["10.0.0.0/8"]
"#,
            r#"
plugin = "p"
[[host_api.websocket]]
url = "wss://bus.corp.example/"
broad = true
"#,
        ),
    ),
    (
        "network order and IPv6 network spelling",
        input(
            r#"
[plugin]
name = "p"
version = "1.0.0"
[[host_api.websocket]]
url = "wss://bus.corp.example/"
networks = ["FD12:3456:789A:0:0::/48", "10.30.0.0/16", "10.20.0.0/16"]
"#,
            r#"
plugin = "p"
[[host_api.websocket]]
url = "wss://bus.corp.example/"
"#,
        ),
        input(
            r#"
[plugin]
name = "p"
version = "1.0.0"
[[host_api.websocket]]
url = "wss://bus.corp.example/"
networks = ["10.20.0.0/16", "10.30.0.0/16", "fd12:3456:789a::/48"]
"#,
            r#"
plugin = "p"
[[host_api.websocket]]
url = "wss://bus.corp.example/"
"#,
        ),
    ),
    (
        "IPv4-mapped network is the IPv4 network",
        input(
            r#"
[plugin]
name = "p"
version = "1.0.0"
[[host_api.websocket]]
url = "wss://bus.corp.example/"
networks = ["::ffff:10.20.0.0/112"]
"#,
            r#"
plugin = "p"
[[host_api.websocket]]
url = "wss://bus.corp.example/"
"#,
        ),
        input(
            r#"
[plugin]
name = "p"
version = "1.0.0"
[[host_api.websocket]]
url = "wss://bus.corp.example/"
networks = ["10.20.0.0/16"]
"#,
            r#"
plugin = "p"
[[host_api.websocket]]
url = "wss://bus.corp.example/"
"#,
        ),
    ),
    (
        "IPv4-compatible network is the IPv4 network (docs/spec.md §2.6)",
        input(
            r#"
[plugin]
name = "p"
version = "1.0.0"
[[host_api.websocket]]
url = "wss://bus.corp.example/"
networks = ["::a14:0/112"]
"#,
            r#"
plugin = "p"
[[host_api.websocket]]
url = "wss://bus.corp.example/"
"#,
        ),
        input(
            r#"
[plugin]
name = "p"
version = "1.0.0"
[[host_api.websocket]]
url = "wss://bus.corp.example/"
networks = ["10.20.0.0/16"]
"#,
            r#"
plugin = "p"
[[host_api.websocket]]
url = "wss://bus.corp.example/"
"#,
        ),
    ),
    (
        "NAT64 and IPv4-translated networks are the IPv4 network",
        input(
            r#"
[plugin]
name = "p"
version = "1.0.0"
[[host_api.websocket]]
url = "wss://bus.corp.example/"
networks = ["64:ff9b::a14:0/112", "::ffff:0:a1e:0/112"]
"#,
            r#"
plugin = "p"
[[host_api.websocket]]
url = "wss://bus.corp.example/"
"#,
        ),
        input(
            r#"
[plugin]
name = "p"
version = "1.0.0"
[[host_api.websocket]]
url = "wss://bus.corp.example/"
networks = ["10.20.0.0/16", "10.30.0.0/16"]
"#,
            r#"
plugin = "p"
[[host_api.websocket]]
url = "wss://bus.corp.example/"
"#,
        ),
    ),
    (
        "header case, order and duplicates",
        input(
            r#"
[plugin]
name = "p"
version = "1.0.0"
[[host_api.request]]
url = "https://a.example/"
methods = ["GET"]
headers = ["X-Request-Id", "X-AUDIT-LOG-REASON", "x-request-id"]
"#,
            r#"
plugin = "p"
[[host_api.request]]
url = "https://a.example/"
headers = ["x-Audit-Log-Reason"]
"#,
        ),
        input(
            r#"
[plugin]
name = "p"
version = "1.0.0"
[[host_api.request]]
url = "https://a.example/"
methods = ["GET"]
headers = ["x-audit-log-reason", "x-request-id"]
"#,
            r#"
plugin = "p"
[[host_api.request]]
url = "https://a.example/"
headers = ["X-Audit-Log-Reason"]
"#,
        ),
    ),
    (
        "an always-allowed header declared is dropped (with a warning)",
        input(
            r#"
[plugin]
name = "p"
version = "1.0.0"
[[host_api.request]]
url = "https://a.example/"
methods = ["GET"]
headers = ["Accept", "X-A"]
"#,
            r#"
plugin = "p"
[[host_api.request]]
url = "https://a.example/"
"#,
        ),
        input(
            r#"
[plugin]
name = "p"
version = "1.0.0"
[[host_api.request]]
url = "https://a.example/"
methods = ["GET"]
headers = ["X-A"]
"#,
            r#"
plugin = "p"
[[host_api.request]]
url = "https://a.example/"
"#,
        ),
    ),
    (
        "subprotocol order and duplicates",
        input(
            r#"
[plugin]
name = "p"
version = "1.0.0"
[[host_api.websocket]]
url = "wss://a.example/"
subprotocols = ["v2.json", "etf", "v2.json"]
"#,
            r#"
plugin = "p"
[[host_api.websocket]]
url = "wss://a.example/"
"#,
        ),
        input(
            r#"
[plugin]
name = "p"
version = "1.0.0"
[[host_api.websocket]]
url = "wss://a.example/"
subprotocols = ["etf", "v2.json"]
"#,
            r#"
plugin = "p"
[[host_api.websocket]]
url = "wss://a.example/"
"#,
        ),
    ),
    (
        "IDNA U-label vs punycode A-label",
        input(
            r#"
[plugin]
name = "p"
version = "1.0.0"
[[host_api.request]]
url = "https://BÜCHER.example/api"
methods = ["GET"]
"#,
            r#"
plugin = "p"
[[host_api.request]]
url = "https://bücher.example/api"
"#,
        ),
        input(
            r#"
[plugin]
name = "p"
version = "1.0.0"
[[host_api.request]]
url = "https://xn--bcher-kva.example/api"
methods = ["GET"]
"#,
            r#"
plugin = "p"
[[host_api.request]]
url = "https://xn--bcher-kva.example/api"
"#,
        ),
    ),
    (
        "one trailing dot",
        input(
            r#"
[plugin]
name = "p"
version = "1.0.0"
[[host_api.websocket]]
url = "wss://example.com./"
[[host_api.websocket]]
url = "wss://*.example.net./"
"#,
            r#"
plugin = "p"
[[host_api.websocket]]
url = "wss://example.com./"
"#,
        ),
        input(
            r#"
[plugin]
name = "p"
version = "1.0.0"
[[host_api.websocket]]
url = "wss://example.com/"
[[host_api.websocket]]
url = "wss://*.example.net/"
"#,
            r#"
plugin = "p"
[[host_api.websocket]]
url = "wss://example.com/"
"#,
        ),
    ),
    (
        "wildcard case",
        input(
            r#"
[plugin]
name = "p"
version = "1.0.0"
[[host_api.websocket]]
url = "wss://*.Example.COM"
"#,
            r#"
plugin = "p"
[[host_api.websocket]]
url = "WSS://*.EXAMPLE.com/"
"#,
        ),
        input(
            r#"
[plugin]
name = "p"
version = "1.0.0"
[[host_api.websocket]]
url = "wss://*.example.com/"
"#,
            r#"
plugin = "p"
[[host_api.websocket]]
url = "wss://*.example.com/"
"#,
        ),
    ),
    (
        "dot segments in the path prefix",
        input(
            r#"
[plugin]
name = "p"
version = "1.0.0"
[[host_api.request]]
url = "https://a.example/a/./b/../c"
methods = ["GET"]
"#,
            r#"
plugin = "p"
[[host_api.request]]
url = "https://a.example/a/x/../c"
"#,
        ),
        input(
            r#"
[plugin]
name = "p"
version = "1.0.0"
[[host_api.request]]
url = "https://a.example/a/c"
methods = ["GET"]
"#,
            r#"
plugin = "p"
[[host_api.request]]
url = "https://a.example/a/c"
"#,
        ),
    ),
    (
        "percent-escape spelling in the path prefix",
        input(
            r#"
[plugin]
name = "p"
version = "1.0.0"
[[host_api.request]]
url = "https://a.example/%7e%41/caf%c3%a9/%3a"
methods = ["GET"]
"#,
            r#"
plugin = "p"
[[host_api.request]]
url = "https://a.example/~A/café/%3a"
"#,
        ),
        input(
            r#"
[plugin]
name = "p"
version = "1.0.0"
[[host_api.request]]
url = "https://a.example/~A/caf%C3%A9/%3A"
methods = ["GET"]
"#,
            r#"
plugin = "p"
[[host_api.request]]
url = "https://a.example/~A/caf%C3%A9/%3A"
"#,
        ),
    ),
    (
        ":80 on ws and :443 on https are the defaults",
        input(
            r#"
[plugin]
name = "p"
version = "1.0.0"
[[host_api.websocket]]
url = "ws://a.example:80/"
[[host_api.request]]
url = "https://a.example:443"
methods = ["GET"]
"#,
            r#"
plugin = "p"
[[host_api.websocket]]
url = "ws://a.example:80"
"#,
        ),
        input(
            r#"
[plugin]
name = "p"
version = "1.0.0"
[[host_api.websocket]]
url = "ws://a.example/"
[[host_api.request]]
url = "https://a.example/"
methods = ["GET"]
"#,
            r#"
plugin = "p"
[[host_api.websocket]]
url = "ws://a.example/"
"#,
        ),
    ),
    (
        "IPv6 spelling",
        input(
            r#"
[plugin]
name = "p"
version = "1.0.0"
[[host_api.websocket]]
url = "ws://[0:0:0:0:0:0:0:1]:9000/"
[[host_api.websocket]]
url = "ws://[FD12:3456:0:0::0001]/"
"#,
            r#"
plugin = "p"
[[host_api.websocket]]
url = "ws://[0::1]:9000"
"#,
        ),
        input(
            r#"
[plugin]
name = "p"
version = "1.0.0"
[[host_api.websocket]]
url = "ws://[::1]:9000/"
[[host_api.websocket]]
url = "ws://[fd12:3456::1]/"
"#,
            r#"
plugin = "p"
[[host_api.websocket]]
url = "ws://[::1]:9000/"
"#,
        ),
    ),
    (
        "IPv4-mapped and NAT64 IPv6 literals are their IPv4",
        input(
            r#"
[plugin]
name = "p"
version = "1.0.0"
[[host_api.websocket]]
url = "ws://[::ffff:127.0.0.1]:9000/"
[[host_api.websocket]]
url = "ws://[64:ff9b::a00:5]/"
"#,
            r#"
plugin = "p"
[[host_api.websocket]]
url = "ws://[::ffff:7f00:1]:9000/"
"#,
        ),
        input(
            r#"
[plugin]
name = "p"
version = "1.0.0"
[[host_api.websocket]]
url = "ws://127.0.0.1:9000/"
[[host_api.websocket]]
url = "ws://10.0.0.5/"
"#,
            r#"
plugin = "p"
[[host_api.websocket]]
url = "ws://127.0.0.1:9000/"
"#,
        ),
    ),
    (
        "numeric IPv4 forms",
        input(
            r#"
[plugin]
name = "p"
version = "1.0.0"
[[host_api.websocket]]
url = "ws://0x7f.1:9000/"
[[host_api.websocket]]
url = "ws://0177.0.0.2:9000/"
[[host_api.websocket]]
url = "ws://167772165/"
"#,
            r#"
plugin = "p"
[[host_api.websocket]]
url = "ws://2130706433:9000/"
[[host_api.websocket]]
url = "ws://127.0.0.2.:9000/"
"#,
        ),
        input(
            r#"
[plugin]
name = "p"
version = "1.0.0"
[[host_api.websocket]]
url = "ws://127.0.0.1:9000/"
[[host_api.websocket]]
url = "ws://127.0.0.2:9000/"
[[host_api.websocket]]
url = "ws://10.0.0.5/"
"#,
            r#"
plugin = "p"
[[host_api.websocket]]
url = "ws://127.0.0.1:9000/"
[[host_api.websocket]]
url = "ws://127.0.0.2:9000/"
"#,
        ),
    ),
    (
        "comments, whitespace, blank lines and the schema directive",
        input(
            "#:schema ../../schema/manifest.schema.json\n\
             # a comment\n\n\
             [plugin]   # trailing comment\n\
             name    =   \"p\"\n\
             \tversion=\"1.0.0\"\n\n\n\
             [[host_api.websocket]] # entry\n\
             url = \"wss://a.example/\"   # the target\n\
             reason = \"r\"\n",
            "#:schema ../../schema/grant.schema.json\n\
             plugin=\"p\"   # whose grant\n\n\
             [[ host_api.websocket ]]\n\
             url   = \"wss://a.example/\"\n",
        ),
        input(
            r#"
[plugin]
name = "p"
version = "1.0.0"
[[host_api.websocket]]
url = "wss://a.example/"
reason = "r"
"#,
            r#"
plugin = "p"
[[host_api.websocket]]
url = "wss://a.example/"
"#,
        ),
    ),
    (
        "TOML spellings: inline tables, dotted keys, literal and escaped strings",
        input(
            r#"
plugin = { name = 'p', version = '1.0.0' }
host_api.websocket = [
  { url = "wss://b\u00fccher.example/", reason = '''r''' },
]
"#,
            r#"
plugin = 'p'
host_api = { websocket = [{ url = "wss://b\u00fccher.example/" }] }
"#,
        ),
        input(
            r#"
[plugin]
name = "p"
version = "1.0.0"
[[host_api.websocket]]
url = "wss://b\u00fccher.example/"
reason = "r"
"#,
            r#"
plugin = "p"
[[host_api.websocket]]
url = "wss://xn--bcher-kva.example/"
"#,
        ),
    ),
    (
        "a grant repeating the requested details equals one that omits them",
        input(
            r#"
[plugin]
name = "p"
version = "1.0.0"
[[host_api.request]]
url = "https://a.example/v1/"
methods = ["GET", "POST"]
headers = ["X-A"]
networks = ["10.20.0.0/16"]
[[host_api.websocket]]
url = "wss://a.example/"
subprotocols = ["json"]
"#,
            r#"
plugin = "p"
[[host_api.request]]
url = "https://a.example/v1/"
methods = ["POST", "GET"]
headers = ["x-a"]
networks = ["10.20.0.0/16"]
[[host_api.websocket]]
url = "wss://a.example/"
subprotocols = ["json"]
"#,
        ),
        input(
            r#"
[plugin]
name = "p"
version = "1.0.0"
[[host_api.request]]
url = "https://a.example/v1/"
methods = ["GET", "POST"]
headers = ["X-A"]
networks = ["10.20.0.0/16"]
[[host_api.websocket]]
url = "wss://a.example/"
subprotocols = ["json"]
"#,
            r#"
plugin = "p"
[[host_api.request]]
url = "https://a.example/v1/"
[[host_api.websocket]]
url = "wss://a.example/"
"#,
        ),
    ),
    (
        "narrowing grant spelled differently",
        input(
            r#"
[plugin]
name = "p"
version = "1.0.0"
[[host_api.request]]
url = "https://*.example.com/"
methods = ["GET", "POST"]
"#,
            r#"
plugin = "p"
[[host_api.request]]
url = "HTTPS://Api.Example.Com:443/v1/./x/.."
methods = ["GET", "GET"]
"#,
        ),
        input(
            r#"
[plugin]
name = "p"
version = "1.0.0"
[[host_api.request]]
url = "https://*.example.com/"
methods = ["POST", "GET"]
"#,
            r#"
plugin = "p"
[[host_api.request]]
url = "https://api.example.com/v1/"
methods = ["GET"]
"#,
        ),
    ),
    (
        "ignored grant entries: order and spelling",
        input(
            r#"
[plugin]
name = "p"
version = "1.0.0"
[[host_api.websocket]]
url = "wss://a.example/"
"#,
            r#"
plugin = "p"
[[host_api.websocket]]
url = "WSS://Z.example:443"
[[host_api.websocket]]
url = "wss://b.example/"
"#,
        ),
        input(
            r#"
[plugin]
name = "p"
version = "1.0.0"
[[host_api.websocket]]
url = "wss://a.example/"
"#,
            r#"
plugin = "p"
[[host_api.websocket]]
url = "wss://b.example/"
[[host_api.websocket]]
url = "wss://z.example/"
"#,
        ),
    ),
];

#[test]
fn equivalent_inputs_compile_to_identical_ir() {
    assert!(EQUIVALENT.len() >= 20, "need at least 20 equivalence pairs");
    let mut failures = Vec::new();
    for (name, a, b) in EQUIVALENT {
        let (pa, pb) = match (
            build(&format!("{name} (a)"), *a),
            build(&format!("{name} (b)"), *b),
        ) {
            (Ok(pa), Ok(pb)) => (pa, pb),
            (Err(e), _) | (_, Err(e)) => {
                failures.push(e);
                continue;
            }
        };
        let (ja, jb) = (pa.to_json(), pb.to_json());
        if ja != jb {
            failures.push(format!(
                "{name}: IR differs at {}",
                first_difference(&ja, &jb)
            ));
        }
        if pa.digest != pb.digest || pa.requested_digest != pb.requested_digest {
            failures.push(format!("{name}: digests differ"));
        }
        // Compiling is deterministic, and the digest is what it says.
        let again = build(name, *a).map(|p| p.to_json());
        if again.as_deref() != Ok(ja.as_str()) {
            failures.push(format!("{name}: compiling twice gives different IR"));
        }
        if pa.digest != pa.compute_digest() {
            failures.push(format!("{name}: digest is not the recomputed digest"));
        }
    }
    report("equivalence pairs", failures);
}

// ---------------------------------------------------------------------------
// Different inputs
// ---------------------------------------------------------------------------

const WS_BASE: Input = input(
    r#"
[plugin]
name = "p"
version = "1.0.0"
[[host_api.websocket]]
url = "wss://a.example/v1"
reason = "Receive events"
"#,
    r#"
plugin = "p"
[[host_api.websocket]]
url = "wss://a.example/v1"
"#,
);

const REQ_BASE: Input = input(
    r#"
[plugin]
name = "p"
version = "1.0.0"
[[host_api.request]]
url = "https://a.example/v1"
methods = ["GET"]
"#,
    r#"
plugin = "p"
[[host_api.request]]
url = "https://a.example/v1"
"#,
);

/// Whether the difference is in the manifest's requested set (so
/// `requested_digest` must change too) or only elsewhere.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Changes {
    /// The requested set changes: both digests change.
    Requested,
    /// Only the grant (or other non-requested IR content) changes:
    /// `digest` changes, `requested_digest` does not.
    GrantOnly,
    /// Manifest text outside the requested set (reason, version): `digest`
    /// changes; `requested_digest` is not asserted.
    ManifestMeta,
}

const DIFFERENT: &[(&str, Input, Input, Changes)] = &[
    (
        "path prefix /v1 vs /v1/",
        WS_BASE,
        input(
            r#"
[plugin]
name = "p"
version = "1.0.0"
[[host_api.websocket]]
url = "wss://a.example/v1/"
reason = "Receive events"
"#,
            r#"
plugin = "p"
[[host_api.websocket]]
url = "wss://a.example/v1/"
"#,
        ),
        Changes::Requested,
    ),
    (
        "path case",
        WS_BASE,
        input(
            r#"
[plugin]
name = "p"
version = "1.0.0"
[[host_api.websocket]]
url = "wss://a.example/V1"
reason = "Receive events"
"#,
            r#"
plugin = "p"
[[host_api.websocket]]
url = "wss://a.example/V1"
"#,
        ),
        Changes::Requested,
    ),
    (
        "port 443 vs 8443",
        WS_BASE,
        input(
            r#"
[plugin]
name = "p"
version = "1.0.0"
[[host_api.websocket]]
url = "wss://a.example:8443/v1"
reason = "Receive events"
"#,
            r#"
plugin = "p"
[[host_api.websocket]]
url = "wss://a.example:8443/v1"
"#,
        ),
        Changes::Requested,
    ),
    (
        "port vs any port",
        WS_BASE,
        input(
            r#"
[plugin]
name = "p"
version = "1.0.0"
[[host_api.websocket]]
url = "wss://a.example:*/v1"
reason = "Receive events"
"#,
            r#"
plugin = "p"
[[host_api.websocket]]
url = "wss://a.example:*/v1"
"#,
        ),
        Changes::Requested,
    ),
    (
        "scheme wss vs ws",
        WS_BASE,
        input(
            r#"
[plugin]
name = "p"
version = "1.0.0"
[[host_api.websocket]]
url = "ws://a.example:443/v1"
reason = "Receive events"
"#,
            r#"
plugin = "p"
[[host_api.websocket]]
url = "ws://a.example:443/v1"
"#,
        ),
        Changes::Requested,
    ),
    (
        "wildcard vs exact host",
        WS_BASE,
        input(
            r#"
[plugin]
name = "p"
version = "1.0.0"
[[host_api.websocket]]
url = "wss://*.a.example/v1"
reason = "Receive events"
"#,
            r#"
plugin = "p"
[[host_api.websocket]]
url = "wss://*.a.example/v1"
"#,
        ),
        Changes::Requested,
    ),
    (
        "loopback name vs loopback literal",
        input(
            r#"
[plugin]
name = "p"
version = "1.0.0"
[[host_api.websocket]]
url = "ws://localhost:9000/"
"#,
            r#"
plugin = "p"
[[host_api.websocket]]
url = "ws://localhost:9000/"
"#,
        ),
        input(
            r#"
[plugin]
name = "p"
version = "1.0.0"
[[host_api.websocket]]
url = "ws://127.0.0.1:9000/"
"#,
            r#"
plugin = "p"
[[host_api.websocket]]
url = "ws://127.0.0.1:9000/"
"#,
        ),
        Changes::Requested,
    ),
    (
        "IPv4 vs IPv6 loopback",
        input(
            r#"
[plugin]
name = "p"
version = "1.0.0"
[[host_api.websocket]]
url = "ws://127.0.0.1:9000/"
"#,
            r#"
plugin = "p"
"#,
        ),
        input(
            r#"
[plugin]
name = "p"
version = "1.0.0"
[[host_api.websocket]]
url = "ws://[::1]:9000/"
"#,
            r#"
plugin = "p"
"#,
        ),
        Changes::Requested,
    ),
    (
        "requested methods",
        REQ_BASE,
        input(
            r#"
[plugin]
name = "p"
version = "1.0.0"
[[host_api.request]]
url = "https://a.example/v1"
methods = ["GET", "POST"]
"#,
            r#"
plugin = "p"
[[host_api.request]]
url = "https://a.example/v1"
methods = ["GET"]
"#,
        ),
        Changes::Requested,
    ),
    (
        "granted methods (grant only)",
        input(
            r#"
[plugin]
name = "p"
version = "1.0.0"
[[host_api.request]]
url = "https://a.example/v1"
methods = ["GET", "POST"]
"#,
            r#"
plugin = "p"
[[host_api.request]]
url = "https://a.example/v1"
"#,
        ),
        input(
            r#"
[plugin]
name = "p"
version = "1.0.0"
[[host_api.request]]
url = "https://a.example/v1"
methods = ["GET", "POST"]
"#,
            r#"
plugin = "p"
[[host_api.request]]
url = "https://a.example/v1"
methods = ["GET"]
"#,
        ),
        Changes::GrantOnly,
    ),
    (
        "granted path narrowed (grant only)",
        REQ_BASE,
        input(
            r#"
[plugin]
name = "p"
version = "1.0.0"
[[host_api.request]]
url = "https://a.example/v1"
methods = ["GET"]
"#,
            r#"
plugin = "p"
[[host_api.request]]
url = "https://a.example/v1/x"
"#,
        ),
        Changes::GrantOnly,
    ),
    (
        "status granted vs not_granted (grant only)",
        REQ_BASE,
        input(
            r#"
[plugin]
name = "p"
version = "1.0.0"
[[host_api.request]]
url = "https://a.example/v1"
methods = ["GET"]
"#,
            r#"
plugin = "p"
"#,
        ),
        Changes::GrantOnly,
    ),
    (
        "a dropped grant entry is listed (grant only)",
        REQ_BASE,
        input(
            r#"
[plugin]
name = "p"
version = "1.0.0"
[[host_api.request]]
url = "https://a.example/v1"
methods = ["GET"]
"#,
            r#"
plugin = "p"
[[host_api.request]]
url = "https://a.example/v1"
[[host_api.request]]
url = "https://b.example/"
methods = ["GET"]
"#,
        ),
        Changes::GrantOnly,
    ),
    (
        "approved_digest present (grant only)",
        REQ_BASE,
        input(
            r#"
[plugin]
name = "p"
version = "1.0.0"
[[host_api.request]]
url = "https://a.example/v1"
methods = ["GET"]
"#,
            r#"
plugin = "p"
approved_digest = "sha256:0000000000000000000000000000000000000000000000000000000000000000"
[[host_api.request]]
url = "https://a.example/v1"
"#,
        ),
        Changes::GrantOnly,
    ),
    (
        "broad approved vs dropped (grant only)",
        input(
            r#"
[plugin]
name = "p"
version = "1.0.0"
[[host_api.request]]
url = "https://*"
methods = ["GET"]
"#,
            r#"
plugin = "p"
[[host_api.request]]
url = "https://*"
broad = true
"#,
        ),
        input(
            r#"
[plugin]
name = "p"
version = "1.0.0"
[[host_api.request]]
url = "https://*"
methods = ["GET"]
"#,
            r#"
plugin = "p"
[[host_api.request]]
url = "https://*"
"#,
        ),
        Changes::GrantOnly,
    ),
    (
        "declared headers",
        REQ_BASE,
        input(
            r#"
[plugin]
name = "p"
version = "1.0.0"
[[host_api.request]]
url = "https://a.example/v1"
methods = ["GET"]
headers = ["X-A"]
"#,
            r#"
plugin = "p"
[[host_api.request]]
url = "https://a.example/v1"
"#,
        ),
        Changes::Requested,
    ),
    (
        "subprotocols",
        WS_BASE,
        input(
            r#"
[plugin]
name = "p"
version = "1.0.0"
[[host_api.websocket]]
url = "wss://a.example/v1"
subprotocols = ["json"]
reason = "Receive events"
"#,
            r#"
plugin = "p"
[[host_api.websocket]]
url = "wss://a.example/v1"
"#,
        ),
        Changes::Requested,
    ),
    (
        "networks",
        input(
            r#"
[plugin]
name = "p"
version = "1.0.0"
[[host_api.websocket]]
url = "wss://bus.corp.example/"
networks = ["10.20.0.0/16"]
"#,
            r#"
plugin = "p"
[[host_api.websocket]]
url = "wss://bus.corp.example/"
"#,
        ),
        input(
            r#"
[plugin]
name = "p"
version = "1.0.0"
[[host_api.websocket]]
url = "wss://bus.corp.example/"
networks = ["10.21.0.0/16"]
"#,
            r#"
plugin = "p"
[[host_api.websocket]]
url = "wss://bus.corp.example/"
"#,
        ),
        Changes::Requested,
    ),
    (
        "reason text",
        WS_BASE,
        input(
            r#"
[plugin]
name = "p"
version = "1.0.0"
[[host_api.websocket]]
url = "wss://a.example/v1"
reason = "Receive events!"
"#,
            r#"
plugin = "p"
[[host_api.websocket]]
url = "wss://a.example/v1"
"#,
        ),
        Changes::ManifestMeta,
    ),
    (
        "plugin version",
        WS_BASE,
        input(
            r#"
[plugin]
name = "p"
version = "1.0.1"
[[host_api.websocket]]
url = "wss://a.example/v1"
reason = "Receive events"
"#,
            r#"
plugin = "p"
[[host_api.websocket]]
url = "wss://a.example/v1"
"#,
        ),
        Changes::ManifestMeta,
    ),
];

#[test]
fn different_inputs_compile_to_different_ir() {
    assert!(
        DIFFERENT.len() >= 10,
        "need at least 10 non-equivalence pairs"
    );
    let mut failures = Vec::new();
    for (name, a, b, changes) in DIFFERENT {
        let (pa, pb) = match (
            build(&format!("{name} (a)"), *a),
            build(&format!("{name} (b)"), *b),
        ) {
            (Ok(pa), Ok(pb)) => (pa, pb),
            (Err(e), _) | (_, Err(e)) => {
                failures.push(e);
                continue;
            }
        };
        if pa.to_json() == pb.to_json() {
            failures.push(format!("{name}: IR is identical"));
        }
        if pa.digest == pb.digest {
            failures.push(format!("{name}: digest did not change"));
        }
        match changes {
            Changes::Requested if pa.requested_digest == pb.requested_digest => failures.push(
                format!("{name}: the requested set changed but requested_digest did not"),
            ),
            Changes::GrantOnly if pa.requested_digest != pb.requested_digest => failures.push(
                format!("{name}: only the grant changed but requested_digest did too"),
            ),
            _ => {}
        }
    }
    report("non-equivalence pairs", failures);
}

#[test]
fn digests_are_sha256_and_pin_the_requested_set() {
    let p = build("base", REQ_BASE).unwrap();
    for d in [&p.digest, &p.requested_digest] {
        let hex = d.strip_prefix("sha256:").expect("sha256: prefix");
        assert_eq!(hex.len(), 64, "{d}");
        assert!(
            hex.bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()),
            "{d}"
        );
    }
    assert_ne!(p.digest, p.requested_digest);
    assert_eq!(p.digest, p.compute_digest());

    // A grant pinned to the current requested set: no drift. The digests in
    // the IR leave themselves out, so the pin does not change requested_digest.
    let pinned_grant = format!(
        "plugin = \"p\"\napproved_digest = \"{}\"\n[[host_api.request]]\nurl = \"https://a.example/v1\"\n",
        p.requested_digest
    );
    let m = Manifest::parse("plugin.toml", REQ_BASE.manifest)
        .value
        .unwrap();
    let g = Grant::parse("grant.toml", &pinned_grant).value.unwrap();
    let pinned = compile(&m, Some(&g)).policy.unwrap();
    assert_eq!(pinned.requested_digest, p.requested_digest);
    assert!(!pinned.digest_drift());
    assert_ne!(pinned.digest, p.digest, "approved_digest is part of the IR");

    // With no grant at all the requested set is the same.
    let bare = compile(&m, None).policy.unwrap();
    assert_eq!(bare.requested_digest, p.requested_digest);
    assert_ne!(bare.digest, p.digest);
}
