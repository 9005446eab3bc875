//! `netgrant connect`: open one WebSocket through the runtime.
//!
//! The policy is built exactly as `authorize` builds it; the connection goes
//! through [`netgrant_runtime::WebSocketHost`] (authorize → resolve once →
//! check every answer → connect to a checked address). Each stdin line is
//! sent as a text message; every incoming message is printed as one line on
//! stdout. This is the only command that starts an async runtime, and it
//! starts it only after the inputs are validated.
//!
//! Exit codes: 0 when stdin ends, on Ctrl-C, or when the peer closes with
//! 1000/1001; 1 when the open is denied or fails, or the connection ends any
//! other way; 2 for invalid input (bad flags, unreadable policy or CA file).

use crate::authorize::parse_header_and_resolve_flags;
use crate::input;
use crate::output::{print_stderr, usage};
use crate::runtime_args::{resolver_for, HostArgs};
use crate::Exit;
use clap::Args;
use netgrant_policy::redact::escape_terminal;
use netgrant_policy::Authorizer;
use netgrant_runtime::{
    ConnectionId, ErrorKind, HostConfig, HostError, Incoming, OpenOptions, WebSocketHost,
};
use std::io::{BufRead, Read, Write};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

/// Inputs of `connect`.
#[derive(Args, Debug)]
pub struct ConnectArgs {
    /// `--manifest` (and `--grant`), or `--policy`.
    #[command(flatten)]
    pub input: input::PolicyInput,
    /// A WebSocket subprotocol to offer (repeatable; must be declared by the target).
    #[arg(long = "subprotocol", value_name = "P")]
    pub subprotocols: Vec<String>,
    /// A handshake header, `'Name: value'` (repeatable; the header allow-list applies).
    #[arg(long = "header", value_name = "K: V")]
    pub headers: Vec<String>,
    /// After stdin ends, keep printing incoming messages for up to this many
    /// seconds (replies still in flight), then close.
    #[arg(long, value_name = "SECONDS", default_value_t = 1.0)]
    pub linger: f64,
    /// `--resolve`, `--ca`, `--audit`, `--credential`, `--secrets`.
    #[command(flatten)]
    pub host: HostArgs,
    /// The ws:// or wss:// URL to open.
    pub url: String,
}

/// Runs `connect`.
pub fn run(a: &ConnectArgs) -> Exit {
    let (headers, resolve) = match parse_header_and_resolve_flags(&a.headers, &a.host.resolve) {
        Ok(x) => x,
        Err(msg) => return usage(&msg),
    };
    if !a.linger.is_finite() || a.linger < 0.0 || a.linger > 86_400.0 {
        return usage("--linger must be a number of seconds between 0 and 86400");
    }
    let linger = Duration::from_secs_f64(a.linger);
    let policy = match a.input.load_policy() {
        Ok(p) => p,
        Err(e) => return e,
    };
    let wiring = match a.host.wire() {
        Ok(w) => w,
        Err(e) => return e,
    };
    let mut config = HostConfig::default();
    if let Some(roots) = wiring.roots {
        config.roots = roots;
    }
    let resolver = resolver_for(&resolve);
    let mut host = match WebSocketHost::new(Arc::new(Authorizer::new(&policy)), resolver, config) {
        Ok(h) => h,
        Err(e) => return usage(&e.to_string()),
    };
    if let Some(sink) = wiring.audit {
        host = host.with_audit(sink);
    }
    if let Some(store) = wiring.secrets {
        host = host.with_secrets(store);
    }
    let options = OpenOptions {
        subprotocols: a.subprotocols.clone(),
        headers,
        credentials: a.host.credentials.clone(),
    };
    // The only async runtime the CLI ever starts, and only here.
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => return usage(&format!("cannot start the async runtime: {e}")),
    };
    let exit = rt.block_on(async {
        let exit = session(&host, &a.url, options, linger).await;
        host.shutdown().await;
        exit
    });
    // Nothing is left running: the host is shut down; the stdin reader is a
    // plain thread that ends with the process.
    drop(rt);
    exit
}

/// One line of stdin, as the reader thread saw it.
enum Line {
    /// A line to send (without its line ending).
    Text(String),
    /// A line that is not sent, and why.
    Skipped(String),
}

/// Reads stdin lines on a plain thread (a blocking read must never hold up
/// the runtime's shutdown). Each line is at most `max` bytes; longer lines and
/// lines that are not UTF-8 are reported, not sent. The channel closes at EOF.
fn spawn_stdin_reader(max: usize) -> mpsc::Receiver<Line> {
    let (tx, rx) = mpsc::channel(16);
    std::thread::spawn(move || {
        let stdin = std::io::stdin();
        let mut reader = stdin.lock();
        let mut n = 0u64;
        loop {
            n += 1;
            let mut buf = Vec::new();
            // Read at most max + 2 bytes (the message plus "\r\n").
            match (&mut reader)
                .take(max as u64 + 2)
                .read_until(b'\n', &mut buf)
            {
                Ok(0) => return,
                Ok(_) => {}
                Err(e) => {
                    let _ = tx.blocking_send(Line::Skipped(format!("cannot read stdin: {e}")));
                    return;
                }
            }
            let complete = buf.last() == Some(&b'\n');
            if complete {
                buf.pop();
                if buf.last() == Some(&b'\r') {
                    buf.pop();
                }
            } else if buf.len() > max {
                // Too long: skip the rest of the line without storing it.
                let mut rest = 0usize;
                loop {
                    let chunk = match reader.fill_buf() {
                        Ok(c) => c,
                        Err(_) => return,
                    };
                    if chunk.is_empty() {
                        break;
                    }
                    if let Some(i) = chunk.iter().position(|&b| b == b'\n') {
                        reader.consume(i + 1);
                        break;
                    }
                    let l = chunk.len();
                    rest += l;
                    reader.consume(l);
                }
                let msg = format!(
                    "message_too_large: stdin line {n} ({} bytes or more) exceeds the {max}-byte bound; not sent",
                    buf.len() + rest
                );
                if tx.blocking_send(Line::Skipped(msg)).is_err() {
                    return;
                }
                continue;
            }
            let line = match String::from_utf8(buf) {
                Ok(s) => Line::Text(s),
                Err(_) => Line::Skipped(format!(
                    "stdin line {n} is not valid UTF-8; a text message must be, so it was not sent"
                )),
            };
            if tx.blocking_send(line).is_err() {
                return;
            }
        }
    });
    rx
}

/// How many payload bytes a binary summary shows.
const BINARY_PREVIEW: usize = 48;

/// Standard base64 (RFC 4648, with padding).
fn base64(data: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(data)
}

/// One line of stdout for an incoming message (without the newline).
fn render(m: &Incoming) -> Option<String> {
    match m {
        Incoming::Text(t) => Some(escape_terminal(t)),
        Incoming::Binary(b) => {
            let shown = &b[..b.len().min(BINARY_PREVIEW)];
            let more = if b.len() > shown.len() { "…" } else { "" };
            Some(format!(
                "<binary {} bytes> {}{more}",
                b.len(),
                base64(shown)
            ))
        }
        Incoming::TimedOut | Incoming::Closed { .. } => None,
    }
}

/// Writes one line to stdout. `false` when stdout is gone (a closed pipe).
fn write_line(s: &str) -> bool {
    let mut out = std::io::stdout().lock();
    out.write_all(s.as_bytes())
        .and_then(|_| out.write_all(b"\n"))
        .and_then(|_| out.flush())
        .is_ok()
}

/// Prints `WORD CODE — message` on stderr; exit 1.
fn report(word: &str, e: &HostError) -> Exit {
    // The message is redacted and bounded by the runtime; escaping is idempotent.
    print_stderr(&format!(
        "{word} {} — {}\n",
        e.code(),
        escape_terminal(&e.message)
    ));
    Exit::Deny
}

/// A failed open: `deny CODE — …` for a policy denial, else `error CODE — …`.
pub(crate) fn report_open_error(e: &HostError) -> Exit {
    if matches!(e.kind, ErrorKind::Denied(_)) {
        report("deny", e)
    } else {
        report("error", e)
    }
}

fn warn(msg: &str) {
    print_stderr(&format!("warning: {}\n", escape_terminal(msg)));
}

/// Closes our side cleanly: a close frame (1000), bounded by the host's grace.
async fn close_local(host: &WebSocketHost, id: ConnectionId) -> Exit {
    let _ = host.close(id).await;
    Exit::Ok
}

async fn session(host: &WebSocketHost, url: &str, options: OpenOptions, linger: Duration) -> Exit {
    let mut ctrl_c = std::pin::pin!(tokio::signal::ctrl_c());
    // Ctrl-C while the open is in progress (DNS, connect, handshake) ends it too.
    let id = tokio::select! {
        biased;
        _ = &mut ctrl_c => return Exit::Ok,
        r = host.open(url, options) => match r {
            Ok(id) => id,
            Err(e) => return report_open_error(&e),
        },
    };
    if let Ok(st) = host.status(id) {
        let proto = st
            .subprotocol
            .as_deref()
            .map(|p| format!(", subprotocol {}", escape_terminal(p)))
            .unwrap_or_default();
        print_stderr(&format!("connected {} via {}{proto}\n", st.url, st.remote));
    }
    let mut lines = spawn_stdin_reader(host.config().max_message_bytes);
    let mut stdin_open = true;
    let mut linger_until: Option<tokio::time::Instant> = None;
    loop {
        let linger_at = linger_until.unwrap_or_else(tokio::time::Instant::now);
        tokio::select! {
            biased;
            _ = &mut ctrl_c => return close_local(host, id).await,
            m = host.recv(id, Some(Duration::from_secs(60))) => match m {
                Ok(Incoming::TimedOut) => {}
                Ok(Incoming::Closed { code, reason }) => {
                    let reason = escape_terminal(&reason);
                    let sep = if reason.is_empty() { "" } else { " " };
                    print_stderr(&format!("closed {code}{sep}{reason}\n"));
                    return if matches!(code, 1000 | 1001) { Exit::Ok } else { Exit::Deny };
                }
                Ok(m) => {
                    if let Some(s) = render(&m) {
                        if !write_line(&s) {
                            // Nobody reads our output any more: finish quietly.
                            return close_local(host, id).await;
                        }
                    }
                }
                Err(e) => return report("error", &e),
            },
            line = lines.recv(), if stdin_open => match line {
                Some(Line::Text(s)) => match host.send_text(id, s).await {
                    Ok(()) => {}
                    // The connection is closed: the next recv says how.
                    Err(e) if e.kind == ErrorKind::Closed => {}
                    // Too large, a placeholder not bound to the connection,
                    // a timeout: this line was not sent; say so and go on.
                    Err(e) => warn(&format!("{}: {}", e.code(), e.message)),
                },
                Some(Line::Skipped(why)) => warn(&why),
                None => {
                    stdin_open = false;
                    if linger.is_zero() {
                        return close_local(host, id).await;
                    }
                    linger_until = Some(tokio::time::Instant::now() + linger);
                }
            },
            _ = tokio::time::sleep_until(linger_at), if linger_until.is_some() => {
                return close_local(host, id).await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_rfc4648_vectors() {
        let v = [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ];
        for (i, o) in v {
            assert_eq!(base64(i.as_bytes()), o);
        }
        assert_eq!(base64(&[0xff, 0xfe, 0xfd]), "//79");
    }

    #[test]
    fn render_escapes_text_and_summarizes_binary() {
        assert_eq!(
            render(&Incoming::Text("a\nb\u{1b}[31m".into())).unwrap(),
            "a\\u{a}b\\u{1b}[31m"
        );
        assert_eq!(
            render(&Incoming::Binary(vec![1, 2, 3])).unwrap(),
            "<binary 3 bytes> AQID"
        );
        let big = render(&Incoming::Binary(vec![0; 100])).unwrap();
        assert!(big.starts_with("<binary 100 bytes> AAAA"), "{big}");
        assert!(big.ends_with('…'), "{big}");
        assert_eq!(big.len(), "<binary 100 bytes> ".len() + 64 + '…'.len_utf8());
    }
}
