//! Secrets in URLs never reach an error, a decision or a status.

mod support;
use netgrant_runtime::{HostConfig, HostError, OpenOptions, StaticResolver};
use std::time::Duration;
use support::*;
use tokio::io::AsyncWriteExt;

const SECRETS: &[&str] = &["pw", "hunter2", "secret", "s3cr3t"];

fn assert_redacted(what: &str, e: &HostError) {
    let mut texts = vec![e.to_string(), e.message.clone(), format!("{e:?}")];
    if let Some(d) = &e.decision {
        texts.push(d.url().into_owned());
        texts.push(d.message().into_owned());
        texts.push(format!("{d:?}"));
    }
    for t in &texts {
        for s in SECRETS {
            assert!(!t.contains(s), "{what}: {s:?} leaked into {t:?}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn denied_urls_are_redacted() {
    let h = host(
        allow_ws("wss://host.test/p/"),
        StaticResolver::new(),
        HostConfig::default(),
    );
    for (url, code) in [
        (
            "wss://user:pw@host.test/p?token=secret",
            "credentials_in_url",
        ),
        (
            "wss://alice:hunter2@host.test/p/x?token=secret",
            "credentials_in_url",
        ),
        ("wss://host.test/p?token=secret", "not_requested"),
        (
            "wss://host.test/p/x?token=secret&k=s3cr3t",
            "resolution_failed",
        ),
        (
            "wss://host.test/other?a=secret#frag",
            "fragment_not_allowed",
        ),
    ] {
        let err = h.open(url, OpenOptions::default()).await.unwrap_err();
        assert_eq!(err.code(), code, "{url}: {err}");
        assert_redacted(url, &err);
    }
    // A query key stays visible (it is not the secret); its value does not.
    let err = h
        .open("wss://host.test/p?token=secret", OpenOptions::default())
        .await
        .unwrap_err();
    assert!(err.message.contains("token="), "{}", err.message);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_of_allowed_urls_are_redacted() {
    let url_of = |p: u16| format!("ws://localhost:{p}/p?token=secret&k=s3cr3t");

    // Handshake refused (403).
    let server = RawServer::start(|mut tcp| async move {
        if read_request_head(&mut tcp).await.is_some() {
            let _ = tcp
                .write_all(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 6\r\n\r\nsecret")
                .await;
        }
    })
    .await;
    let p = server.port();
    let h = host(
        allow_localhost(p),
        StaticResolver::new(),
        HostConfig::default(),
    );
    let err = h
        .open(&url_of(p), OpenOptions::default())
        .await
        .unwrap_err();
    assert_eq!(err.code(), "handshake_failed", "{err}");
    assert_redacted("403", &err);

    // Handshake timeout.
    let server = RawServer::start(drain_until_eof).await;
    let p = server.port();
    let cfg = HostConfig {
        handshake_timeout: Duration::from_millis(200),
        ..HostConfig::default()
    };
    let h = host(allow_localhost(p), StaticResolver::new(), cfg);
    let err = h
        .open(&url_of(p), OpenOptions::default())
        .await
        .unwrap_err();
    assert_eq!(err.code(), "timeout", "{err}");
    assert_redacted("timeout", &err);

    // Refused TCP.
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let p = l.local_addr().unwrap().port();
    drop(l);
    let h = host(
        allow_localhost(p),
        StaticResolver::new(),
        HostConfig::default(),
    );
    let err = h
        .open(&url_of(p), OpenOptions::default())
        .await
        .unwrap_err();
    assert_eq!(err.code(), "connect_failed", "{err}");
    assert_redacted("refused", &err);

    // TLS to a plain peer.
    let server = RawServer::start(drain_until_eof).await;
    let p = server.port();
    let t = ws_entry(&format!("wss://localhost:{p}/"), "");
    let cfg = HostConfig {
        handshake_timeout: Duration::from_millis(500),
        ..HostConfig::default()
    };
    let h = host(policy(&t, &t), StaticResolver::new(), cfg);
    let err = h
        .open(
            &format!("wss://localhost:{p}/p?token=secret"),
            OpenOptions::default(),
        )
        .await
        .unwrap_err();
    assert_redacted("tls", &err);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_url_hides_query_values() {
    let server = EchoServer::start().await;
    let p = server.addr.port();
    let h = host(
        allow_localhost(p),
        StaticResolver::new(),
        HostConfig::default(),
    );
    let id = h
        .open(
            &format!("ws://localhost:{p}/chat?token=secret&k=s3cr3t"),
            OpenOptions::default(),
        )
        .await
        .unwrap();
    let st = h.status(id).unwrap();
    for t in [st.url.clone(), format!("{st:?}")] {
        for s in SECRETS {
            assert!(!t.contains(s), "{s:?} in {t}");
        }
    }
    assert!(
        st.url.starts_with(&format!("ws://localhost:{p}/chat?")),
        "{}",
        st.url
    );
    h.shutdown().await;
}
