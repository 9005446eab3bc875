//! Audit records (docs/spec.md §11) through a real loopback WebSocket peer:
//! one decision record per open (allowed or denied, with the answers it
//! checked), one finished record per connection, whichever way it ends —
//! and never a payload, header value or query value.

mod support;
use netgrant_runtime::{AuditRecord, AuditSink, HostConfig, Incoming, OpenOptions, StaticResolver};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use support::*;

/// The host's side of auditing: it keeps what it is given.
#[derive(Default)]
struct Collect(Mutex<Vec<AuditRecord>>);

impl AuditSink for Collect {
    fn record(&self, record: &AuditRecord) {
        self.0.lock().unwrap().push(record.clone());
    }
}

impl Collect {
    fn json(&self) -> Vec<serde_json::Value> {
        let records = self.0.lock().unwrap();
        records
            .iter()
            .map(|r| serde_json::to_value(r).unwrap())
            .collect()
    }
}

const SENTINEL: &str = "PAYLOAD-SENTINEL-91c2";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_decision_and_every_end_is_recorded() {
    let server = EchoServer::start().await;
    let port = server.addr.port();
    let sink = Arc::new(Collect::default());
    let authz = policy(
        &format!(
            "{}{}",
            ws_entry(
                &format!("ws://localhost:{port}/"),
                "headers = [\"x-trace\"]"
            ),
            ws_entry(&format!("ws://named.test:{port}/"), "")
        ),
        &format!(
            "{}{}",
            ws_entry(&format!("ws://localhost:{port}/echo/"), ""),
            ws_entry(&format!("ws://named.test:{port}/"), "")
        ),
    );
    let h = host(
        authz,
        StaticResolver::new().with("named.test", [ip("93.184.215.14"), ip("10.1.2.3")]),
        HostConfig::default(),
    )
    .with_audit(sink.clone());

    // Allowed: a decision, then a finished record when the plugin closes.
    let options = OpenOptions {
        subprotocols: vec![],
        headers: vec![("X-Trace".into(), SENTINEL.into())],
    };
    let url = format!("ws://localhost:{port}/echo/?token={SENTINEL}");
    let id = h.open(&url, options).await.unwrap();
    h.send_text(id, format!("hello {SENTINEL}")).await.unwrap();
    let got = h.recv(id, Some(Duration::from_secs(5))).await.unwrap();
    assert_eq!(got, Incoming::Text(format!("hello {SENTINEL}")));
    h.close(id).await.unwrap();

    // Denied on the URL, and denied on an answer: decisions, no finished.
    let e = h
        .open(
            &format!("ws://localhost:{port}/admin"),
            OpenOptions::default(),
        )
        .await;
    assert_eq!(e.unwrap_err().code(), "not_granted");
    let e = h
        .open(&format!("ws://named.test:{port}/"), OpenOptions::default())
        .await;
    assert_eq!(e.unwrap_err().code(), "non_public_address");

    // Allowed, then ended by shutdown: its finished record says so.
    let id2 = h
        .open(
            &format!("ws://localhost:{port}/echo/2"),
            OpenOptions::default(),
        )
        .await
        .unwrap();
    h.shutdown().await;
    assert_eq!(server.accepted(), 2, "denied opens never reach the peer");

    let records = sink.json();
    let text = records
        .iter()
        .map(|r| r.to_string())
        .collect::<Vec<_>>()
        .join("\n");
    assert!(
        !text.contains(SENTINEL),
        "a payload, header value or query value leaked:\n{text}"
    );
    let kinds: Vec<(&str, &str)> = records
        .iter()
        .map(|r| {
            let what = r
                .get("code")
                .or(r.get("outcome"))
                .and_then(|v| v.as_str())
                .unwrap();
            (r["record"].as_str().unwrap(), what)
        })
        .collect();
    assert_eq!(
        kinds,
        [
            ("decision", "allowed"),
            ("finished", "closed"),
            ("decision", "not_granted"),
            ("decision", "non_public_address"),
            ("decision", "allowed"),
            ("finished", "shutdown"),
        ],
        "{text}"
    );
    let (first, end) = (&records[0], &records[1]);
    assert_eq!(first["id"], id.to_string());
    assert_eq!(end["id"], id.to_string());
    assert_eq!(records[5]["id"], id2.to_string());
    assert_eq!(first["header_names"], serde_json::json!(["X-Trace"]));
    assert_eq!(first["resolved"], serde_json::json!(["127.0.0.1", "::1"]));
    assert_eq!(first["plugin"], "t");
    assert!(first["digest"].as_str().unwrap().starts_with("sha256:"));
    assert_eq!(end["close_code"], 1000);
    assert_eq!(
        (&end["messages_out"], &end["messages_in"], &end["bytes_in"]),
        (
            &serde_json::json!(1),
            &serde_json::json!(1),
            &serde_json::json!(27)
        )
    );
    assert_eq!(
        records[3]["resolved"],
        serde_json::json!(["93.184.215.14", "10.1.2.3"])
    );
    assert_eq!(records[5]["close_code"], 1001);
}
