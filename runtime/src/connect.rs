//! The connect path shared by the WebSocket host and the request guard:
//! authorize → resolve once → classify every answer → TCP to a checked
//! address → TLS (SNI = URL host) → handshake.

use crate::config::{HostConfig, Roots};
use crate::error::{ErrorKind, HostError};
use crate::host::OpenOptions;
use crate::resolver::Resolver;
use netgrant_policy::authorize::LOCALHOST_ADDRS;
use netgrant_policy::target::UrlHost;
use netgrant_policy::{Authorizer, Decision, Destination, Request};
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::{HeaderName, HeaderValue};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::{Connector, MaybeTlsStream, WebSocketStream};

/// The stream type of an open connection.
pub(crate) type Ws = WebSocketStream<MaybeTlsStream<Tracked<TcpStream>>>;

/// Builds the rustls client config (ring provider). There is no
/// skip-verification mode.
pub(crate) fn tls_config(roots: &Roots) -> Result<Arc<rustls::ClientConfig>, HostError> {
    let store = match roots {
        Roots::Bundled => {
            let mut s = rustls::RootCertStore::empty();
            s.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
            Arc::new(s)
        }
        Roots::Custom(s) => s.clone(),
    };
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let cfg = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| HostError::new(ErrorKind::Tls, e.to_string()))?
        .with_root_certificates(store)
        .with_no_client_auth();
    Ok(Arc::new(cfg))
}

/// Runs the URL checks, resolves the host once (with a deadline) and checks
/// every answer. On allow the decision carries the addresses to connect to.
pub(crate) async fn authorize_and_resolve(
    authz: &Authorizer,
    resolver: &dyn Resolver,
    req: &Request<'_>,
    dns_timeout: Duration,
) -> Result<Decision, HostError> {
    let prepared = authz.prepare(req).map_err(HostError::denied)?;
    let answers: Vec<IpAddr> = match prepared.destination() {
        Destination::Ip(ip) => vec![*ip],
        Destination::Localhost => LOCALHOST_ADDRS.to_vec(),
        Destination::Name(name) => {
            match tokio::time::timeout(dns_timeout, resolver.resolve(name)).await {
                Err(_) => {
                    return Err(HostError::new(
                        ErrorKind::Timeout,
                        format!(
                            "resolving the host of {} took longer than {dns_timeout:?}",
                            prepared.redacted_url()
                        ),
                    ))
                }
                // A resolver error is treated as no answers: resolution_failed.
                Ok(Err(_)) => Vec::new(),
                Ok(Ok(a)) => a,
            }
        }
    };
    let decision = prepared.check_addresses(&answers);
    if decision.is_allowed() {
        Ok(decision)
    } else {
        Err(HostError::denied(decision))
    }
}

/// Records when the first byte of an incomplete message arrived, for the
/// per-message read deadline (slow-drip peers).
#[derive(Clone, Default)]
pub(crate) struct ReadTracker {
    started_nanos: Arc<AtomicU64>,
    base: Arc<std::sync::OnceLock<Instant>>,
    /// Signalled when a message starts arriving, so the connection task arms
    /// the read deadline even while its read is still pending.
    started_signal: Arc<tokio::sync::Notify>,
}

impl ReadTracker {
    fn base(&self) -> Instant {
        *self.base.get_or_init(Instant::now)
    }

    fn mark(&self) {
        if self.started_nanos.load(Ordering::Relaxed) == 0 {
            let n = self.base().elapsed().as_nanos() as u64 + 1;
            if self
                .started_nanos
                .compare_exchange(0, n, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
            {
                self.started_signal.notify_one();
            }
        }
    }

    /// Resolves once a message has started arriving (after the last reset).
    pub(crate) async fn wait_started(&self) {
        self.started_signal.notified().await
    }

    /// A whole message (or control frame) arrived: no message is in progress.
    pub(crate) fn reset(&self) {
        self.started_nanos.store(0, Ordering::Relaxed);
    }

    /// When the current incomplete message started arriving.
    pub(crate) fn started(&self) -> Option<Instant> {
        match self.started_nanos.load(Ordering::Relaxed) {
            0 => None,
            n => Some(self.base() + Duration::from_nanos(n - 1)),
        }
    }
}

/// A TCP stream that tells the tracker when bytes arrive.
pub(crate) struct Tracked<S> {
    inner: S,
    tracker: ReadTracker,
}

impl<S: AsyncRead + Unpin> AsyncRead for Tracked<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let me = self.get_mut();
        let before = buf.filled().len();
        let r = Pin::new(&mut me.inner).poll_read(cx, buf);
        if matches!(r, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            me.tracker.mark();
        }
        r
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Tracked<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

/// Connects TCP to the first checked address that accepts, each attempt
/// bounded by `connect_timeout`.
pub(crate) async fn connect_tcp(
    addrs: &[SocketAddr],
    connect_timeout: Duration,
    shown: &str,
) -> Result<(TcpStream, SocketAddr), HostError> {
    let mut last = String::from("no address");
    for a in addrs {
        match tokio::time::timeout(connect_timeout, TcpStream::connect(a)).await {
            Ok(Ok(s)) => {
                let _ = s.set_nodelay(true);
                return Ok((s, *a));
            }
            Ok(Err(e)) => last = format!("{a}: {}", e.kind()),
            Err(_) => {
                return Err(HostError::new(
                    ErrorKind::Timeout,
                    format!("TCP connect to {a} for {shown} took longer than {connect_timeout:?}"),
                ))
            }
        }
    }
    Err(HostError::new(
        ErrorKind::ConnectFailed,
        format!("could not connect to any checked address of {shown} ({last})"),
    ))
}

/// The URL the handshake uses: normalized host (A-label, no trailing dot),
/// no userinfo, no fragment.
pub(crate) fn request_url(url: &url::Url, host: &UrlHost, port: u16) -> String {
    let scheme = url.scheme();
    let default = if scheme == "wss" || scheme == "https" {
        443
    } else {
        80
    };
    let mut s = format!("{scheme}://{host}");
    if port != default {
        s.push_str(&format!(":{port}"));
    }
    s.push_str(url.path());
    if let Some(q) = url.query() {
        s.push('?');
        s.push_str(q);
    }
    s
}

pub(crate) struct Connected {
    pub ws: Ws,
    pub remote: SocketAddr,
    pub subprotocol: Option<String>,
    pub tracker: ReadTracker,
}

/// TCP to the checked addresses, then TLS and the WebSocket handshake within
/// the handshake deadline.
pub(crate) async fn connect_ws(
    decision: &Decision,
    url: &str,
    options: &OpenOptions,
    cfg: &HostConfig,
    tls: Arc<rustls::ClientConfig>,
) -> Result<Connected, HostError> {
    let parsed = url::Url::parse(url).map_err(|_| {
        HostError::new(
            ErrorKind::Denied(netgrant_policy::DenyCode::InvalidUrl),
            "invalid URL",
        )
    })?;
    let host = UrlHost::from_url(&parsed).ok_or_else(|| {
        HostError::new(
            ErrorKind::Denied(netgrant_policy::DenyCode::InvalidUrl),
            "invalid host",
        )
    })?;
    let port = decision.addresses.first().map(|a| a.port()).unwrap_or(80);
    let (tcp, remote) =
        connect_tcp(&decision.addresses, cfg.connect_timeout, &decision.url).await?;
    let tracker = ReadTracker::default();
    let stream = Tracked {
        inner: tcp,
        tracker: tracker.clone(),
    };
    let target = request_url(&parsed, &host, port);
    let mut request = target.as_str().into_client_request().map_err(|e| {
        HostError::new(
            ErrorKind::Handshake,
            format!("cannot build the handshake for {}: {e}", decision.url),
        )
    })?;
    for (k, v) in &options.headers {
        let name = HeaderName::from_bytes(k.as_bytes()).map_err(|_| {
            HostError::new(
                ErrorKind::Denied(netgrant_policy::DenyCode::ForbiddenHeader),
                "invalid header name",
            )
        })?;
        let value = HeaderValue::from_str(v).map_err(|_| {
            HostError::new(
                ErrorKind::Denied(netgrant_policy::DenyCode::ForbiddenHeader),
                "invalid header value",
            )
        })?;
        request.headers_mut().append(name, value);
    }
    if !options.subprotocols.is_empty() {
        let v = HeaderValue::from_str(&options.subprotocols.join(", ")).map_err(|_| {
            HostError::new(
                ErrorKind::Denied(netgrant_policy::DenyCode::ForbiddenHeader),
                "invalid subprotocol",
            )
        })?;
        request.headers_mut().insert("sec-websocket-protocol", v);
    }
    let ws_config = WebSocketConfig::default()
        .max_message_size(Some(cfg.max_message_bytes))
        .max_frame_size(Some(cfg.max_frame_bytes))
        .max_write_buffer_size(cfg.max_write_buffer_bytes)
        .write_buffer_size(cfg.max_write_buffer_bytes.min(128 * 1024));
    let connector = if parsed.scheme() == "wss" {
        Connector::Rustls(tls)
    } else {
        Connector::Plain
    };
    let handshake = tokio_tungstenite::client_async_tls_with_config(
        request,
        stream,
        Some(ws_config),
        Some(connector),
    );
    let (ws, response) = match tokio::time::timeout(cfg.handshake_timeout, handshake).await {
        Err(_) => {
            return Err(HostError::new(
                ErrorKind::Timeout,
                format!(
                    "TLS and WebSocket handshake with {} took longer than {:?}",
                    decision.url, cfg.handshake_timeout
                ),
            ))
        }
        Ok(Err(e)) => {
            let text = e.to_string();
            let kind = if matches!(e, tokio_tungstenite::tungstenite::Error::Tls(_))
                || text.contains("certificate")
                || text.contains("tls")
            {
                ErrorKind::Tls
            } else {
                ErrorKind::Handshake
            };
            return Err(HostError::new(
                kind,
                format!("handshake with {} failed: {text}", decision.url),
            ));
        }
        Ok(Ok(x)) => x,
    };
    let subprotocol = response
        .headers()
        .get("sec-websocket-protocol")
        .and_then(|v| v.to_str().ok())
        .map(|s| s.to_string());
    if let Some(p) = &subprotocol {
        if !options.subprotocols.iter().any(|o| o == p) {
            return Err(HostError::new(
                ErrorKind::Handshake,
                "the server selected a subprotocol that was not offered",
            ));
        }
    }
    Ok(Connected {
        ws,
        remote,
        subprotocol,
        tracker,
    })
}
