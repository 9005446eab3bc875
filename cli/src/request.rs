//! `netgrant request`: one HTTP request through the runtime's
//! [`netgrant_runtime::RequestHost`] — the `connect` of one-shot HTTP.
//!
//! The policy is built exactly as `authorize` builds it; the request goes
//! authorize → resolve once → check every answer → connect to a checked
//! address → TLS → one request, with the host's bounds and deadlines. The
//! status line and the filtered response headers go to stderr (escaped for
//! the terminal), the body to stdout byte for byte.
//!
//! Exit codes: 0 on any HTTP status; 1 when the request is denied or fails
//! (timeout, TLS, a bound, Ctrl-C); 2 for invalid input (bad flags,
//! unreadable policy, CA or `--data` file).

use crate::authorize::parse_header_and_resolve_flags;
use crate::connect::report_open_error;
use crate::input;
use crate::output::{print_stderr, usage};
use crate::runtime_args::{resolver_for, HostArgs};
use crate::Exit;
use clap::Args;
use netgrant_policy::redact::escape_terminal;
use netgrant_policy::Authorizer;
use netgrant_runtime::{RequestConfig, RequestHost, RequestOptions, Response};
use std::io::{IsTerminal, Read, Write};
use std::path::Path;
use std::sync::Arc;

/// Inputs of `request`.
#[derive(Args, Debug)]
pub struct RequestArgs {
    /// `--manifest` (and `--grant`), or `--policy`.
    #[command(flatten)]
    pub input: input::PolicyInput,
    /// The HTTP method (uppercase; the grant must allow it).
    #[arg(long, short = 'X', value_name = "METHOD", default_value = "GET")]
    pub method: String,
    /// A request header, `'Name: value'` (repeatable; the header allow-list applies).
    #[arg(long = "header", short = 'H', value_name = "K: V")]
    pub headers: Vec<String>,
    /// The request body: `@FILE` (read as bytes) or `-` (stdin). Bodies are
    /// never taken from the command line, where they would show in the
    /// process list and shell history.
    #[arg(long, value_name = "@FILE|-")]
    pub data: Option<String>,
    /// `--resolve`, `--ca`, `--audit`, `--credential`, `--secrets`.
    #[command(flatten)]
    pub host: HostArgs,
    /// The http:// or https:// URL.
    pub url: String,
}

/// Bodies over this size get a byte count on a terminal's stderr.
const COUNT_FROM: usize = 4 * 1024 * 1024;

/// Reads the `--data` body, at most `max + 1` bytes (one more than the host
/// accepts, so an oversized body is reported by the host as
/// `message_too_large`, not silently cut).
fn read_body(data: Option<&str>, max: usize) -> Result<Vec<u8>, Exit> {
    let limit = max as u64;
    match data {
        None => Ok(Vec::new()),
        Some("-") => {
            let mut buf = Vec::new();
            match std::io::stdin()
                .lock()
                .take(limit + 1)
                .read_to_end(&mut buf)
            {
                Ok(_) => Ok(buf),
                Err(e) => Err(usage(&format!("cannot read the body from stdin: {e}"))),
            }
        }
        Some(d) => match d.strip_prefix('@') {
            Some(path) if !path.is_empty() => input::read(Path::new(path), limit).map_err(|d| {
                print_stderr(&input::render_human(&[d]));
                Exit::Invalid
            }),
            _ => Err(usage(
                "--data takes @FILE (a file's bytes) or - (stdin), never the body itself",
            )),
        },
    }
}

/// Runs `request`.
pub fn run(a: &RequestArgs) -> Exit {
    let (headers, resolve) = match parse_header_and_resolve_flags(&a.headers, &a.host.resolve) {
        Ok(x) => x,
        Err(msg) => return usage(&msg),
    };
    let policy = match a.input.load_policy() {
        Ok(p) => p,
        Err(e) => return e,
    };
    let wiring = match a.host.wire() {
        Ok(w) => w,
        Err(e) => return e,
    };
    let mut config = RequestConfig::default();
    if let Some(roots) = wiring.roots {
        config.roots = roots;
    }
    let body = match read_body(a.data.as_deref(), config.max_request_body_bytes) {
        Ok(b) => b,
        Err(e) => return e,
    };
    let resolver = resolver_for(&resolve);
    let mut host = match RequestHost::new(Arc::new(Authorizer::new(&policy)), resolver, config) {
        Ok(h) => h,
        Err(e) => return usage(&e.to_string()),
    };
    if let Some(sink) = wiring.audit {
        host = host.with_audit(sink);
    }
    if let Some(store) = wiring.secrets {
        host = host.with_secrets(store);
    }
    let options = RequestOptions {
        credentials: a.host.credentials.clone(),
        ..RequestOptions::default()
    };
    // The only other place the CLI starts an async runtime (see `connect`).
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => return usage(&format!("cannot start the async runtime: {e}")),
    };
    let result = rt.block_on(async {
        let call = host.request(&a.method, &a.url, &headers, body, options);
        let r = tokio::select! {
            biased;
            _ = tokio::signal::ctrl_c() => None,
            r = call => Some(r),
        };
        host.shutdown().await;
        r
    });
    drop(rt);
    match result {
        None => {
            print_stderr("error interrupted — the request was cancelled\n");
            Exit::Deny
        }
        Some(Err(e)) => report_open_error(&e),
        Some(Ok(resp)) => print_response(&resp),
    }
}

/// A body as terminal text: UTF-8, line by line with every control
/// character but the line breaks and tabs escaped; `None` for binary (not
/// UTF-8, or holding NUL).
fn terminal_text(body: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(body).ok()?;
    if text.contains('\0') {
        return None;
    }
    let lines: Vec<String> = text
        .split('\n')
        .map(|line| {
            let (line, cr) = match line.strip_suffix('\r') {
                Some(l) => (l, "\r"),
                None => (line, ""),
            };
            let parts: Vec<String> = line.split('\t').map(escape_terminal).collect();
            format!("{}{cr}", parts.join("\t"))
        })
        .collect();
    Some(lines.join("\n"))
}

/// Status line and headers to stderr (escaped), the body to stdout as bytes.
fn print_response(r: &Response) -> Exit {
    let mut head = format!("{} {}", r.version, r.status);
    if let Some(reason) = r.reason() {
        head.push(' ');
        head.push_str(reason);
    }
    head.push('\n');
    for (k, v) in &r.headers {
        head.push_str(&format!(
            "{k}: {}\n",
            escape_terminal(&String::from_utf8_lossy(v))
        ));
    }
    print_stderr(&head);
    let mut out = std::io::stdout().lock();
    // Pipes and files get the bytes as they are. A terminal gets text with
    // control characters escaped (a body must not drive the terminal), and
    // no binary at all.
    let body: std::borrow::Cow<'_, [u8]> = if out.is_terminal() {
        match terminal_text(&r.body) {
            Some(text) => text.into_bytes().into(),
            None => {
                print_stderr(&format!(
                    "(a binary body of {} bytes is not shown on a terminal; redirect stdout to a file)\n",
                    r.body.len()
                ));
                Vec::new().into()
            }
        }
    } else {
        r.body.as_slice().into()
    };
    match out.write_all(&body).and_then(|_| out.flush()) {
        Ok(()) => {}
        // Nobody reads the body any more: the request itself succeeded.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {}
        Err(e) => {
            print_stderr(&format!("error io_error — cannot write the body: {e}\n"));
            return Exit::Deny;
        }
    }
    if r.body.len() > COUNT_FROM && std::io::stderr().is_terminal() {
        print_stderr(&format!("{} bytes\n", r.body.len()));
    }
    Exit::Ok
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terminal_text_escapes_controls_and_refuses_binary() {
        assert_eq!(
            terminal_text(b"a\tb\r\nline \x1b[31mred\x1b[0m\n").unwrap(),
            "a\tb\r\nline \\u{1b}[31mred\\u{1b}[0m\n"
        );
        assert_eq!(
            terminal_text("caf\u{e9} \u{202e}x".as_bytes()).unwrap(),
            "caf\u{e9} \\u{202e}x"
        );
        assert!(terminal_text(b"\xff\xfe").is_none());
        assert!(terminal_text(b"nul\0inside").is_none());
        assert_eq!(terminal_text(b"").unwrap(), "");
    }
}
