//! Audit records (docs/spec.md §11) through a real loopback WebSocket peer:
//! one decision record per open (allowed or denied, with the answers it
//! checked), one finished record per connection, whichever way it ends —
//! and never a payload, header value or query value.

mod support;
use netgrant_runtime::{HostConfig, Incoming, OpenOptions, StaticResolver};
use std::sync::Arc;
use std::time::Duration;
use support::*;

/// Each record as (`record`, its code or outcome).
fn shape(records: &[serde_json::Value]) -> Vec<(&str, &str)> {
    records
        .iter()
        .map(|r| {
            let what = r.get("code").or(r.get("outcome")).and_then(|v| v.as_str());
            (r["record"].as_str().unwrap(), what.unwrap())
        })
        .collect()
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
        ..OpenOptions::default()
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
    let kinds = shape(&records);
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

/// The request host records the same way: a decision per call, a finished
/// record per allowed call with its status and byte counts, `cancelled` for
/// a call the host's shutdown ended.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_host_records_decisions_and_ends() {
    use netgrant_runtime::{RequestConfig, RequestHost, RequestOptions};
    use support::http::*;

    let server = http_server(|_| ok(format!("answer {SENTINEL}"))).await;
    let port = server.port();
    // A second peer that reads the request and never answers.
    let silent = RawServer::start(|tcp| hold(tcp, Duration::from_secs(30))).await;
    let sink = Arc::new(Collect::default());
    let t1 = req_entry(
        &format!("http://127.0.0.1:{port}/api/"),
        "methods = [\"GET\", \"POST\"]\nheaders = [\"X-Trace\"]",
    );
    let t2 = req_entry(
        &format!("http://127.0.0.1:{}/", silent.port()),
        "methods = [\"GET\"]",
    );
    let authz = policy(&format!("{t1}{t2}"), &format!("{t1}{t2}"));
    let h = Arc::new(
        RequestHost::new(
            authz,
            Arc::new(StaticResolver::new()),
            RequestConfig::default(),
        )
        .unwrap()
        .with_audit(sink.clone()),
    );
    let headers = vec![("X-Trace".to_string(), SENTINEL.to_string())];
    let url = format!("http://127.0.0.1:{port}/api/x?key={SENTINEL}");
    let r = h
        .request(
            "POST",
            &url,
            &headers,
            b"ping".to_vec(),
            RequestOptions::default(),
        )
        .await
        .unwrap();
    assert_eq!(r.status, 200);
    let e = h
        .request("DELETE", &url, &[], Vec::new(), RequestOptions::default())
        .await
        .unwrap_err();
    assert_eq!(e.code(), "method_not_allowed");

    // In flight when the host shuts down.
    let slow_url = format!("http://127.0.0.1:{}/", silent.port());
    let call = {
        let h = h.clone();
        tokio::spawn(async move {
            h.request("GET", &slow_url, &[], Vec::new(), RequestOptions::default())
                .await
        })
    };
    assert!(wait_until(Duration::from_secs(5), || silent.accepted() == 1).await);
    h.shutdown().await;
    assert_eq!(call.await.unwrap().unwrap_err().code(), "shutdown");

    let records = sink.json();
    let text = records
        .iter()
        .map(|r| r.to_string())
        .collect::<Vec<_>>()
        .join("\n");
    assert!(
        !text.contains(SENTINEL),
        "a body, header value or query value leaked:\n{text}"
    );
    let kinds = shape(&records);
    assert_eq!(
        kinds,
        [
            ("decision", "allowed"),
            ("finished", "closed"),
            ("decision", "method_not_allowed"),
            ("decision", "allowed"),
            ("finished", "cancelled"),
        ],
        "{text}"
    );
    let (d, f) = (&records[0], &records[1]);
    assert_eq!(d["capability"], "request");
    assert_eq!(d["method"], "POST");
    assert_eq!(d["header_names"], serde_json::json!(["X-Trace"]));
    assert_eq!(d["resolved"], serde_json::json!(["127.0.0.1"]));
    assert_eq!(f["id"], d["id"]);
    assert!(f["id"].as_str().unwrap().starts_with("req-"), "{f}");
    assert_eq!(f["status"], 200);
    assert_eq!(f["bytes_out"], 4);
    assert_eq!(f["bytes_in"], format!("answer {SENTINEL}").len() as u64);
    assert_eq!(records[2]["method"], "DELETE");
}
