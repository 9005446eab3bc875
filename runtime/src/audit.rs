//! Audit records (docs/spec.md §11): one per decision and one per finished
//! connection or request, handed to a host-provided [`AuditSink`] and
//! mirrored as `tracing` events (target `netgrant`).
//!
//! A decision record is a line `netgrant replay` reads: `capability`, `url`,
//! `method`, `header_names`, `subprotocols` and `resolved` are the request
//! as the authorizer saw it, so what production did replays against a new
//! policy before rollout, and replay reports where the new decision differs
//! from the recorded one. Records hold redacted URLs, header *names* and
//! counts — never header values, payloads or bodies.

use crate::error::{bound, HostError};
use netgrant_policy::{Capability, Decision, Request};
use serde::Serialize;
use std::io::Write;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

/// One audit record. Serialized as one JSON object with a `record` field
/// (`"decision"` or `"finished"`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "record", rename_all = "snake_case")]
#[non_exhaustive]
pub enum AuditRecord {
    /// The authorizer decided on a connection or request.
    Decision(DecisionRecord),
    /// A connection or request that was allowed (or failed before a
    /// decision, like a DNS timeout) ended.
    Finished(FinishedRecord),
}

/// What the authorizer decided, with the request it decided on.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct DecisionRecord {
    /// When, RFC 3339 UTC with milliseconds.
    pub time: String,
    /// The plugin the policy is for.
    pub plugin: String,
    /// Correlates this record with the [`FinishedRecord`] of the same
    /// connection or request (`ws-1-3`, `req-1-7`).
    pub id: String,
    /// `websocket` or `request`.
    pub capability: Capability,
    /// The URL, redacted (no userinfo, query values hidden).
    pub url: String,
    /// The HTTP method of a one-shot request.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    /// Names of the headers the plugin asked to send (never values).
    pub header_names: Vec<String>,
    /// Subprotocols offered.
    pub subprotocols: Vec<String>,
    /// Every DNS answer (or the literal / localhost addresses) checked;
    /// absent when the decision was made before resolving.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resolved: Option<Vec<String>>,
    /// `allow` or `deny`.
    pub decision: String,
    /// `allowed` or the deny code.
    pub code: String,
    /// The rule that matched, when one did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
    /// The policy's digest.
    pub digest: String,
    /// Names of the credentials the plugin asked for, sorted — injected
    /// when the decision allows (never values, never SecretRefs).
    pub credentials: Vec<String>,
}

/// How an allowed connection or request ended.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct FinishedRecord {
    /// When, RFC 3339 UTC with milliseconds.
    pub time: String,
    /// The plugin the policy is for.
    pub plugin: String,
    /// The id of the decision record.
    pub id: String,
    /// `websocket` or `request`.
    pub capability: Capability,
    /// The URL, redacted.
    pub url: String,
    /// `closed` (ended normally), or the stable error code (`timeout`,
    /// `connect_failed`, `tls_failed`, `handshake_failed`, …).
    pub outcome: String,
    /// The WebSocket close code.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub close_code: Option<u16>,
    /// The HTTP status of a one-shot request.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// Bytes received from the peer (payload bytes for WebSockets, body
    /// bytes for requests).
    pub bytes_in: u64,
    /// Bytes sent to the peer.
    pub bytes_out: u64,
    /// Messages received (WebSockets).
    pub messages_in: u64,
    /// Messages sent (WebSockets).
    pub messages_out: u64,
    /// Milliseconds from the decision to the end.
    pub duration_ms: u64,
}

/// Where a host's audit records go. Called on the task that decided or
/// closed, so it must be quick and must not block on I/O for long; a sink
/// that ships records elsewhere should queue them.
pub trait AuditSink: Send + Sync {
    /// Takes one record.
    fn record(&self, record: &AuditRecord);
}

/// Writes each record as one JSON line, flushed, to a writer: the format
/// `netgrant replay` reads. Write errors are reported once through
/// `tracing` and otherwise ignored (auditing never breaks a connection).
pub struct JsonLinesSink<W: Write + Send> {
    out: Mutex<(W, bool)>,
}

impl<W: Write + Send> JsonLinesSink<W> {
    /// A sink writing to `out`.
    pub fn new(out: W) -> Self {
        JsonLinesSink {
            out: Mutex::new((out, false)),
        }
    }

    /// The writer back (after the host is done with the sink).
    pub fn into_inner(self) -> W {
        self.out.into_inner().unwrap_or_else(|e| e.into_inner()).0
    }
}

impl<W: Write + Send> AuditSink for JsonLinesSink<W> {
    fn record(&self, record: &AuditRecord) {
        let mut line = serde_json::to_vec(record).unwrap_or_default();
        line.push(b'\n');
        let mut guard = self.out.lock().unwrap_or_else(|e| e.into_inner());
        let (out, failed) = &mut *guard;
        if let Err(e) = out.write_all(&line).and_then(|()| out.flush()) {
            if !*failed {
                *failed = true;
                tracing::warn!(target: "netgrant", error = %e.kind(), "audit sink write failed; further failures are not reported");
            }
        }
    }
}

/// The audit context a host holds: its sink (if any), plugin and digest.
#[derive(Clone)]
pub(crate) struct Audit {
    sink: Option<Arc<dyn AuditSink>>,
    plugin: Arc<str>,
    digest: Arc<str>,
}

impl Audit {
    pub(crate) fn new(sink: Option<Arc<dyn AuditSink>>, plugin: &str, digest: &str) -> Self {
        Audit {
            sink,
            plugin: plugin.into(),
            digest: digest.into(),
        }
    }

    /// Records (and traces) one decision.
    pub(crate) fn decision(
        &self,
        id: &str,
        req: &Request<'_>,
        answers: Option<&[IpAddr]>,
        d: &Decision,
    ) {
        let verdict = if d.is_allowed() { "allow" } else { "deny" };
        // The plugin names these: sorted and deduplicated once for both the
        // event and the record, borrowed (copied only for a sink; with no
        // credential, nothing is allocated).
        let mut credentials: Vec<&str> = req.credentials.iter().map(String::as_str).collect();
        credentials.sort_unstable();
        credentials.dedup();
        // The record's fields (docs/spec.md §11), but for header names and
        // subprotocols: what a log line needs to say who reached what, by
        // which rule, under which policy.
        macro_rules! event {
            ($level:expr, $message:literal) => {
                tracing::event!(target: "netgrant", $level, plugin = %self.plugin, id,
                    capability = %req.capability, url = %d.url(), method = req.method,
                    decision = verdict, code = d.code.as_str(), rule = d.rule(),
                    digest = %self.digest,
                    resolved = answers.map(|a| tracing::field::display(List(a))),
                    credentials = %List(&credentials), $message)
            };
        }
        if d.is_allowed() {
            event!(tracing::Level::INFO, "allowed");
        } else {
            event!(tracing::Level::WARN, "denied");
        }
        let Some(sink) = &self.sink else { return };
        let mut header_names: Vec<String> = req.headers.iter().map(|(k, _)| k.clone()).collect();
        header_names.sort_unstable();
        header_names.dedup();
        sink.record(&AuditRecord::Decision(DecisionRecord {
            time: now(),
            plugin: self.plugin.to_string(),
            id: id.to_owned(),
            capability: req.capability,
            url: d.url().into_owned(),
            method: req.method.map(str::to_owned),
            header_names,
            subprotocols: req.subprotocols.to_vec(),
            resolved: answers.map(|a| a.iter().map(IpAddr::to_string).collect()),
            decision: verdict.to_owned(),
            code: d.code.as_str().to_owned(),
            rule: d.rule().map(str::to_owned),
            digest: self.digest.to_string(),
            credentials: credentials.into_iter().map(str::to_owned).collect(),
        }));
    }

    /// Records the end of a connection or request that failed before it
    /// carried anything (DNS timeout, connect, TLS or handshake failure).
    pub(crate) fn failed(&self, id: &str, capability: Capability, url: &str, e: &HostError) {
        self.ended_unopened(id, capability, url, e.code(), std::time::Duration::ZERO);
    }

    /// Records the end of an allowed connection or request that never
    /// carried anything (no close code, status or bytes): `outcome` says why.
    pub(crate) fn ended_unopened(
        &self,
        id: &str,
        capability: Capability,
        url: &str,
        outcome: &str,
        duration: std::time::Duration,
    ) {
        self.finished(Finished {
            id,
            capability,
            url,
            outcome,
            close_code: None,
            status: None,
            bytes_in: 0,
            bytes_out: 0,
            messages_in: 0,
            messages_out: 0,
            duration,
        });
    }

    /// Records (and traces) the end of a connection or request.
    pub(crate) fn finished(&self, f: Finished<'_>) {
        let duration_ms = u64::try_from(f.duration.as_millis()).unwrap_or(u64::MAX);
        tracing::info!(target: "netgrant", plugin = %self.plugin, id = f.id, capability = %f.capability,
            url = %f.url, outcome = f.outcome, close_code = f.close_code, status = f.status,
            bytes_in = f.bytes_in, bytes_out = f.bytes_out, messages_in = f.messages_in,
            messages_out = f.messages_out, duration_ms, "finished");
        let Some(sink) = &self.sink else { return };
        sink.record(&AuditRecord::Finished(FinishedRecord {
            time: now(),
            plugin: self.plugin.to_string(),
            id: f.id.to_owned(),
            capability: f.capability,
            url: f.url.to_owned(),
            outcome: f.outcome.to_owned(),
            close_code: f.close_code,
            status: f.status,
            bytes_in: f.bytes_in,
            bytes_out: f.bytes_out,
            messages_in: f.messages_in,
            messages_out: f.messages_out,
            duration_ms,
        }));
    }
}

/// The end of a connection or request, as [`Audit::finished`] records it.
pub(crate) struct Finished<'a> {
    pub(crate) id: &'a str,
    pub(crate) capability: Capability,
    pub(crate) url: &'a str,
    pub(crate) outcome: &'a str,
    pub(crate) close_code: Option<u16>,
    pub(crate) status: Option<u16>,
    pub(crate) bytes_in: u64,
    pub(crate) bytes_out: u64,
    pub(crate) messages_in: u64,
    pub(crate) messages_out: u64,
    pub(crate) duration: std::time::Duration,
}

/// A list in a `tracing` field: its items, comma-separated, each escaped
/// and bounded. A subscriber writes a field as it is given, and a
/// credential name is the plugin's text: unescaped, a newline in it would
/// forge a log line.
struct List<'a, T>(&'a [T]);

impl<T: std::fmt::Display> std::fmt::Display for List<'_, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, item) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            f.write_str(&bound(&item.to_string()))?;
        }
        Ok(())
    }
}

fn now() -> String {
    humantime::format_rfc3339_millis(SystemTime::now()).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use netgrant_policy::DenyCode;

    #[test]
    fn decision_records_are_json_lines_without_values() {
        let sink = Arc::new(JsonLinesSink::new(Vec::new()));
        let audit = Audit::new(Some(sink.clone()), "p", "sha256:x");
        let headers = vec![
            ("X-Token".to_string(), "SECRET-VALUE".to_string()),
            ("Accept".to_string(), "a".to_string()),
        ];
        let req = Request {
            capability: Capability::Request,
            url: "https://user:pw@api.example.com/v1/x?key=SECRET-Q",
            method: Some("GET"),
            headers: &headers,
            subprotocols: &[],
            credentials: &[],
        };
        let url = netgrant_policy::redact::redact_url(req.url);
        let d = Decision::deny(DenyCode::NotRequested, url, None, "m".into());
        let answers = ["10.0.0.1".parse().unwrap()];
        audit.decision("req-1-1", &req, Some(&answers), &d);
        audit.decision("req-1-2", &req, None, &d);
        let text = String::from_utf8(sink.out.lock().unwrap().0.clone()).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2, "{text}");
        for secret in ["SECRET", "user", "pw"] {
            assert!(!text.contains(secret), "{secret} leaked: {text}");
        }
        let v: serde_json::Value = serde_json::from_str(lines[0]).unwrap();
        assert_eq!(v["record"], "decision");
        assert_eq!(v["header_names"], serde_json::json!(["Accept", "X-Token"]));
        assert_eq!(v["resolved"], serde_json::json!(["10.0.0.1"]));
        assert_eq!(v["code"], "not_requested");
        assert_eq!(v["decision"], "deny");
        assert_eq!(v["method"], "GET");
        assert!(v["time"].as_str().unwrap().ends_with('Z'));
        let v: serde_json::Value = serde_json::from_str(lines[1]).unwrap();
        assert!(v.get("resolved").is_none(), "decided before resolving");
    }

    /// The `tracing` events carry what the records carry (docs/spec.md
    /// §11) — method, decision, code, rule, digest, checked addresses,
    /// credential names, message counts, duration — and no value.
    #[test]
    fn tracing_events_carry_the_record_fields() {
        #[derive(Clone, Default)]
        struct Buf(Arc<Mutex<Vec<u8>>>);
        impl Write for Buf {
            fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
                self.0.lock().unwrap().extend_from_slice(b);
                Ok(b.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Buf {
            type Writer = Buf;
            fn make_writer(&'a self) -> Buf {
                self.clone()
            }
        }
        let buf = Buf::default();
        let sub = tracing_subscriber::fmt()
            .with_ansi(false)
            .with_writer(buf.clone())
            .finish();
        let audit = Audit::new(None, "p", "sha256:x");
        let headers = vec![("X-Token".to_string(), "SECRET-VALUE".to_string())];
        // The plugin names credentials: one tries to forge a log line.
        let credentials = vec![
            "other".to_string(),
            "bot-token".to_string(),
            "x\n2026-01-01T00:00:00Z  INFO netgrant: allowed\u{1b}[31m".to_string(),
            "other".to_string(),
        ];
        let req = Request {
            capability: Capability::Request,
            url: "https://user:pw@api.example.com/v1/x?key=SECRET-Q",
            method: Some("POST"),
            headers: &headers,
            subprotocols: &[],
            credentials: &credentials,
        };
        let url = netgrant_policy::redact::redact_url(req.url);
        let d = Decision::deny(DenyCode::NotRequested, url, None, "m".into());
        let answers: [IpAddr; 2] = ["10.0.0.1".parse().unwrap(), "::1".parse().unwrap()];
        let events = || {
            audit.decision("req-1-1", &req, Some(&answers), &d);
            audit.finished(Finished {
                id: "ws-1-2",
                capability: Capability::Websocket,
                url: "wss://example.com/",
                outcome: "closed",
                close_code: Some(1000),
                status: None,
                bytes_in: 5,
                bytes_out: 7,
                messages_in: 3,
                messages_out: 4,
                duration: std::time::Duration::from_millis(1500),
            });
        };
        // Once with no subscriber first, so both callsites are registered
        // before the capturing one exists (installing it re-reads their
        // interest): a callsite first registered by another test's thread
        // while it was being installed could keep "no one listens".
        events();
        tracing::subscriber::with_default(sub, events);
        let text = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        // One line per event: the hostile name forged none.
        assert_eq!(lines.len(), 2, "{text}");
        assert!(!text.contains('\u{1b}'), "{text}");
        for field in [
            "denied",
            "plugin=p",
            "id=\"req-1-1\"",
            "capability=request",
            "method=\"POST\"",
            "decision=\"deny\"",
            "code=\"not_requested\"",
            "digest=sha256:x",
            "resolved=10.0.0.1,::1",
            "credentials=bot-token,other,x\\u{a}2026",
        ] {
            assert!(lines[0].contains(field), "{field} missing: {}", lines[0]);
        }
        for field in [
            "finished",
            "outcome=\"closed\"",
            "close_code=1000",
            "bytes_in=5",
            "bytes_out=7",
            "messages_in=3",
            "messages_out=4",
            "duration_ms=1500",
        ] {
            assert!(lines[1].contains(field), "{field} missing: {}", lines[1]);
        }
        for secret in ["SECRET", "user", "pw@"] {
            assert!(!text.contains(secret), "{secret} leaked: {text}");
        }
    }

    #[test]
    fn a_failing_writer_never_panics() {
        struct Broken;
        impl Write for Broken {
            fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
                Err(std::io::ErrorKind::BrokenPipe.into())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let sink = JsonLinesSink::new(Broken);
        let audit = Audit::new(Some(Arc::new(sink)), "p", "d");
        for _ in 0..3 {
            audit.finished(Finished {
                id: "ws-1-1",
                capability: Capability::Websocket,
                url: "wss://h/",
                outcome: "closed",
                close_code: Some(1000),
                status: None,
                bytes_in: 1,
                bytes_out: 2,
                messages_in: 1,
                messages_out: 1,
                duration: std::time::Duration::from_millis(5),
            });
        }
    }
}
