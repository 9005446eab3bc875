//! Real HTTP peers on loopback for the request host: a hyper server (plain
//! or TLS with HTTP/2 by ALPN) that records what it received, a local CA,
//! and policy helpers for `host_api.request`.

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper_util::rt::{TokioExecutor, TokioIo};
use netgrant_policy::Authorizer;
use netgrant_runtime::{
    HostError, RequestConfig, RequestHost, RequestOptions, Response, StaticResolver,
};
use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use tokio::net::TcpListener;

/// One request as the server saw it.
#[derive(Clone, Debug)]
pub struct Seen {
    pub method: String,
    pub target: String,
    pub version: String,
    /// `Host`, or the `:authority` of an HTTP/2 request.
    pub host: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// The TLS server name the client sent (SNI), for TLS servers.
    pub sni: Option<String>,
}

/// A hyper server on loopback answering every request with `respond`.
pub struct HttpServer {
    pub addr: SocketAddr,
    pub accepted: Arc<AtomicUsize>,
    /// Connections that ended (the client closed, or the server finished).
    pub closed: Arc<AtomicUsize>,
    pub seen: Arc<Mutex<Vec<Seen>>>,
}

impl HttpServer {
    pub fn port(&self) -> u16 {
        self.addr.port()
    }
    pub fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }
    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

type Respond = dyn Fn(&Seen) -> hyper::Response<Full<Bytes>> + Send + Sync;

/// A plain HTTP/1.1 server on `bind`.
pub async fn http_server_on<F>(bind: &str, respond: F) -> HttpServer
where
    F: Fn(&Seen) -> hyper::Response<Full<Bytes>> + Send + Sync + 'static,
{
    serve(bind, None, Arc::new(respond)).await
}

/// A plain HTTP/1.1 server on 127.0.0.1.
pub async fn http_server<F>(respond: F) -> HttpServer
where
    F: Fn(&Seen) -> hyper::Response<Full<Bytes>> + Send + Sync + 'static,
{
    http_server_on("127.0.0.1:0", respond).await
}

/// A TLS server on 127.0.0.1 offering `alpn` (e.g. h2 and http/1.1).
pub async fn https_server<F>(
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
    alpn: &[&[u8]],
    respond: F,
) -> HttpServer
where
    F: Fn(&Seen) -> hyper::Response<Full<Bytes>> + Send + Sync + 'static,
{
    let mut cfg = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(chain, key)
    .unwrap();
    cfg.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(cfg));
    serve("127.0.0.1:0", Some(acceptor), Arc::new(respond)).await
}

async fn serve(
    bind: &str,
    tls: Option<tokio_rustls::TlsAcceptor>,
    respond: Arc<Respond>,
) -> HttpServer {
    let listener = TcpListener::bind(bind).await.unwrap();
    let addr = listener.local_addr().unwrap();
    let accepted = Arc::new(AtomicUsize::new(0));
    let closed = Arc::new(AtomicUsize::new(0));
    let seen = Arc::new(Mutex::new(Vec::new()));
    let (a, c, s) = (accepted.clone(), closed.clone(), seen.clone());
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            a.fetch_add(1, Ordering::SeqCst);
            let (c, s, respond, tls) = (c.clone(), s.clone(), respond.clone(), tls.clone());
            tokio::spawn(async move {
                match tls {
                    None => serve_conn(tcp, None, false, s, respond).await,
                    Some(acceptor) => {
                        if let Ok(stream) = acceptor.accept(tcp).await {
                            let conn = stream.get_ref().1;
                            let sni = conn.server_name().map(str::to_owned);
                            let h2 = conn.alpn_protocol() == Some(b"h2".as_slice());
                            serve_conn(stream, sni, h2, s, respond).await;
                        }
                    }
                }
                c.fetch_add(1, Ordering::SeqCst);
            });
        }
    });
    HttpServer {
        addr,
        accepted,
        closed,
        seen,
    }
}

async fn serve_conn<S>(
    io: S,
    sni: Option<String>,
    h2: bool,
    seen: Arc<Mutex<Vec<Seen>>>,
    respond: Arc<Respond>,
) where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let service = hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
        let (seen, respond, sni) = (seen.clone(), respond.clone(), sni.clone());
        async move {
            let (parts, body) = req.into_parts();
            let body = body
                .collect()
                .await
                .map(|b| b.to_bytes().to_vec())
                .unwrap_or_default();
            let host = parts
                .headers
                .get(hyper::header::HOST)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
                .or_else(|| parts.uri.authority().map(|a| a.to_string()))
                .unwrap_or_default();
            let s = Seen {
                method: parts.method.to_string(),
                target: parts
                    .uri
                    .path_and_query()
                    .map(|p| p.to_string())
                    .unwrap_or_default(),
                version: format!("{:?}", parts.version),
                host,
                headers: parts
                    .headers
                    .iter()
                    .map(|(k, v)| {
                        (
                            k.as_str().to_owned(),
                            String::from_utf8_lossy(v.as_bytes()).into_owned(),
                        )
                    })
                    .collect(),
                body,
                sni,
            };
            let resp = respond(&s);
            seen.lock().unwrap().push(s);
            Ok::<_, std::convert::Infallible>(resp)
        }
    });
    let io = TokioIo::new(io);
    if h2 {
        let _ = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
            .serve_connection(io, service)
            .await;
    } else {
        let _ = hyper::server::conn::http1::Builder::new()
            .serve_connection(io, service)
            .await;
    }
}

/// A `200` with `body`.
pub fn ok(body: impl Into<Bytes>) -> hyper::Response<Full<Bytes>> {
    hyper::Response::new(Full::new(body.into()))
}

/// A local CA and leaf certificates signed by it.
pub struct Ca {
    pub cert: CertificateDer<'static>,
    pub pem: String,
    issuer: Issuer<'static, KeyPair>,
}

impl Ca {
    pub fn new() -> Ca {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "netgrant request test CA");
        let key = KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        Ca {
            cert: cert.der().clone(),
            pem: cert.pem(),
            issuer: Issuer::new(params, key),
        }
    }

    /// A certificate chain and key for `name`.
    pub fn leaf(&self, name: &str) -> (Vec<CertificateDer<'static>>, PrivateKeyDer<'static>) {
        let params = CertificateParams::new(vec![name.to_string()]).unwrap();
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        (
            vec![cert.der().clone(), self.cert.clone()],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
        )
    }

    /// Roots trusting exactly this CA.
    pub fn roots(&self) -> netgrant_runtime::Roots {
        let mut store = rustls::RootCertStore::empty();
        store.add(self.cert.clone()).unwrap();
        netgrant_runtime::Roots::Custom(Arc::new(store))
    }
}

/// `[[host_api.request]]` for `url` with loopback 127.0.0.1 declared and
/// granted, methods GET/POST/HEAD and header `X-Trace`, plus `extra` lines.
pub fn allow_request(url: &str, extra: &str) -> Arc<Authorizer> {
    let t = super::req_entry(
        url,
        &format!(
            "methods = [\"GET\", \"POST\", \"HEAD\"]\nheaders = [\"X-Trace\"]\nnetworks = [\"127.0.0.1/32\"]\n{extra}"
        ),
    );
    super::policy(&t, &t)
}

/// `api.test` resolving to 127.0.0.1.
pub fn api_test() -> StaticResolver {
    StaticResolver::new().with("api.test", [super::ip("127.0.0.1")])
}

/// A request host.
pub fn request_host(
    authz: Arc<Authorizer>,
    resolver: StaticResolver,
    cfg: RequestConfig,
) -> RequestHost {
    RequestHost::new(authz, Arc::new(resolver), cfg).unwrap()
}

/// A default request host allowing `http://api.test:{port}/` (see
/// [`allow_request`]).
pub fn api_host(port: u16) -> RequestHost {
    request_host(
        allow_request(&format!("http://api.test:{port}/"), ""),
        api_test(),
        RequestConfig::default(),
    )
}

/// Runs `f` with the outer bound: a hang is a failure, not a stall.
pub async fn bounded<T>(what: &str, f: impl Future<Output = T>) -> T {
    tokio::time::timeout(super::OUTER, f)
        .await
        .unwrap_or_else(|_| panic!("{what} did not finish within {:?}", super::OUTER))
}

/// A bounded GET with no headers or body.
pub async fn get(host: &RequestHost, url: &str) -> Result<Response, HostError> {
    bounded(
        url,
        host.request("GET", url, &[], Vec::new(), RequestOptions::default()),
    )
    .await
}
