//! `wss` against a local CA: the TCP connection goes to the checked loopback
//! address while TLS server name and `Host` are the URL's normalized name.

#![allow(clippy::result_large_err)]

mod support;
use futures_util::{SinkExt, StreamExt};
use netgrant_runtime::{HostConfig, Incoming, OpenOptions, Roots, StaticResolver};
use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use support::*;
use tokio::net::TcpListener;
use tokio_tungstenite::tungstenite::handshake::server::{Request, Response};
use tokio_tungstenite::tungstenite::Message;

struct Ca {
    cert: CertificateDer<'static>,
    pem: String,
    issuer: Issuer<'static, KeyPair>,
}

fn ca() -> Ca {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "netgrant test CA");
    let key = KeyPair::generate().unwrap();
    let cert = params.self_signed(&key).unwrap();
    Ca {
        cert: cert.der().clone(),
        pem: cert.pem(),
        issuer: Issuer::new(params, key),
    }
}

fn leaf(ca: &Ca, name: &str) -> (Vec<CertificateDer<'static>>, PrivateKeyDer<'static>) {
    let params = CertificateParams::new(vec![name.to_string()]).unwrap();
    let key = KeyPair::generate().unwrap();
    let cert = params.signed_by(&key, &ca.issuer).unwrap();
    (
        vec![cert.der().clone(), ca.cert.clone()],
        PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
    )
}

fn roots(ca: &Ca) -> Roots {
    let mut store = rustls::RootCertStore::empty();
    store.add(ca.cert.clone()).unwrap();
    Roots::Custom(Arc::new(store))
}

/// A TLS echo server on 127.0.0.1 that records the SNI and `Host` it saw.
struct TlsServer {
    addr: SocketAddr,
    sni: Arc<Mutex<Vec<Option<String>>>>,
    host: Arc<Mutex<Vec<String>>>,
    accepted: Arc<std::sync::atomic::AtomicUsize>,
}

async fn tls_server(chain: Vec<CertificateDer<'static>>, key: PrivateKeyDer<'static>) -> TlsServer {
    let cfg = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(chain, key)
    .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(cfg));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let sni = Arc::new(Mutex::new(Vec::new()));
    let host = Arc::new(Mutex::new(Vec::new()));
    let accepted = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let (s2, h2, a2) = (sni.clone(), host.clone(), accepted.clone());
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            a2.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let (acceptor, sni, host) = (acceptor.clone(), s2.clone(), h2.clone());
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return;
                };
                sni.lock()
                    .unwrap()
                    .push(tls.get_ref().1.server_name().map(str::to_string));
                let cb = |req: &Request, resp: Response| {
                    let h = req
                        .headers()
                        .get("host")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("");
                    host.lock().unwrap().push(h.to_string());
                    Ok(resp)
                };
                let Ok(mut ws) = tokio_tungstenite::accept_hdr_async(tls, cb).await else {
                    return;
                };
                while let Some(Ok(m)) = ws.next().await {
                    if m.is_text() || m.is_binary() {
                        if ws.send(m).await.is_err() {
                            break;
                        }
                    } else if let Message::Close(_) = m {
                        break;
                    }
                }
            });
        }
    });
    TlsServer {
        addr,
        sni,
        host,
        accepted,
    }
}

/// `wss://echo.test:PORT/`, with 127.0.0.0/8 declared and granted (a domain
/// target does not cover loopback answers otherwise).
fn echo_test_policy(p: u16) -> Arc<netgrant_policy::Authorizer> {
    policy(
        &ws_entry(
            &format!("wss://echo.test:{p}/"),
            "networks = [\"127.0.0.0/8\"]",
        ),
        &ws_entry(
            &format!("wss://echo.test:{p}/"),
            "networks = [\"127.0.0.0/8\"]\nbroad = true",
        ),
    )
}

fn resolver() -> StaticResolver {
    StaticResolver::new().with("echo.test", [ip("127.0.0.1")])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wss_with_a_custom_root_uses_the_url_name_over_the_checked_address() {
    let ca = ca();
    let (chain, key) = leaf(&ca, "echo.test");
    let server = tls_server(chain, key).await;
    let p = server.addr.port();
    let cfg = HostConfig {
        roots: roots(&ca),
        ..HostConfig::default()
    };
    let h = host(echo_test_policy(p), resolver(), cfg);

    // Uppercase and a trailing dot: TLS name and Host are still `echo.test`.
    for url in [
        format!("wss://echo.test:{p}/"),
        format!("wss://ECHO.Test.:{p}/"),
    ] {
        let id = h
            .open(&url, OpenOptions::default())
            .await
            .unwrap_or_else(|e| panic!("{url}: {e}"));
        h.send_text(id, "over tls").await.unwrap();
        assert_eq!(
            h.recv(id, Some(OUTER)).await.unwrap(),
            Incoming::Text("over tls".into())
        );
        let st = h.status(id).unwrap();
        assert_eq!(
            st.remote,
            SocketAddr::from(([127, 0, 0, 1], p)),
            "TCP went to the checked address"
        );
        h.close(id).await.unwrap();
    }
    assert_eq!(
        *server.sni.lock().unwrap(),
        vec![Some("echo.test".to_string()); 2]
    );
    assert_eq!(
        *server.host.lock().unwrap(),
        vec![format!("echo.test:{p}"); 2]
    );
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bundled_roots_do_not_trust_a_local_ca() {
    let ca = ca();
    let (chain, key) = leaf(&ca, "echo.test");
    let server = tls_server(chain, key).await;
    let p = server.addr.port();
    // Ambient configuration is never read, even when it names the CA.
    let dir = std::env::temp_dir().join(format!("netgrant-tls-{}-{p}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let pem = dir.join("ca.pem");
    std::fs::write(&pem, &ca.pem).unwrap();
    std::env::set_var("SSL_CERT_FILE", &pem);
    std::env::set_var("SSL_CERT_DIR", &dir);
    let h = host(echo_test_policy(p), resolver(), HostConfig::default());
    let err = h
        .open(&format!("wss://echo.test:{p}/"), OpenOptions::default())
        .await
        .unwrap_err();
    assert_eq!(err.code(), "tls_failed", "{err}");
    assert_eq!(
        server.accepted.load(std::sync::atomic::Ordering::SeqCst),
        1,
        "the attempt reached the peer"
    );
    assert!(
        server.host.lock().unwrap().is_empty(),
        "no handshake request crossed an untrusted TLS session"
    );
    assert_eq!((h.open_connections(), h.active_tasks()), (0, 0));
    std::env::remove_var("SSL_CERT_FILE");
    std::env::remove_var("SSL_CERT_DIR");
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_certificate_for_another_name_fails() {
    let ca = ca();
    let (chain, key) = leaf(&ca, "other.test");
    let server = tls_server(chain, key).await;
    let p = server.addr.port();
    let cfg = HostConfig {
        roots: roots(&ca),
        ..HostConfig::default()
    };
    let h = host(echo_test_policy(p), resolver(), cfg);
    let err = h
        .open(&format!("wss://echo.test:{p}/"), OpenOptions::default())
        .await
        .unwrap_err();
    assert_eq!(err.code(), "tls_failed", "{err}");
    assert!(server.host.lock().unwrap().is_empty());

    // Plain ws to a TLS port is not TLS at all: a handshake failure (or a
    // timeout), never a connection.
    let t = ws_entry(
        &format!("ws://echo.test:{p}/"),
        "networks = [\"127.0.0.0/8\"]",
    );
    let a = policy(&t, &format!("{t}broad = true\n"));
    let h = host(
        a,
        resolver(),
        HostConfig {
            handshake_timeout: Duration::from_secs(2),
            ..HostConfig::default()
        },
    );
    let err = h
        .open(&format!("ws://echo.test:{p}/"), OpenOptions::default())
        .await
        .unwrap_err();
    assert!(
        matches!(err.code(), "handshake_failed" | "timeout"),
        "{err}"
    );
}
