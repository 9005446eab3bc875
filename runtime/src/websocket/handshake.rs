//! The WebSocket handshake over the shared connect path: TCP to a checked
//! address, TLS (server name = the normalized URL host), then the upgrade,
//! all within the handshake deadline.

use super::frames::{ReadTracker, Tracked, Transport, Ws};
use super::types::OpenOptions;
use crate::config::{after, HostConfig};
use crate::connect::{connect_tcp, within};
use crate::error::{ErrorKind, HostError};
use netgrant_policy::Authorized;
use netgrant_policy::UrlHost;
use rustls::pki_types::ServerName;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::{HeaderName, HeaderValue};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use zeroize::Zeroizing;

/// tungstenite's read buffer per connection (its default is 128 KiB). It is
/// zero-filled on the first read, so an idle connection keeps all of it
/// resident; a larger message still gets a buffer of its own size
/// (docs/decisions.md, 168).
const READ_BUFFER_BYTES: usize = 32 * 1024;

pub(crate) struct Connected {
    pub ws: Ws,
    pub remote: SocketAddr,
    pub subprotocol: Option<String>,
    pub tracker: ReadTracker,
}

/// TCP to the checked addresses, then TLS and the WebSocket handshake within
/// the handshake deadline.
pub(crate) async fn connect_ws(
    authorized: &Authorized,
    options: &OpenOptions,
    credentials: &[(String, Zeroizing<String>)],
    cfg: &HostConfig,
    tls: Arc<rustls::ClientConfig>,
) -> Result<Connected, HostError> {
    let shown = authorized.redacted_url();
    // The request is complete before any socket is opened. Headers and
    // subprotocols were checked by the authorizer (tokens, visible ASCII), so
    // a failure here is a bug in that check, reported as a handshake error,
    // never as a second decision.
    let unbuildable = |what: &str| {
        HostError::new(
            ErrorKind::Handshake,
            format!("cannot build the handshake for {shown}: {what}"),
        )
    };
    let mut request = authorized
        .request_url()
        .into_client_request()
        .map_err(|e| unbuildable(&e.to_string()))?;
    for (k, v) in &options.headers {
        let name =
            HeaderName::from_bytes(k.as_bytes()).map_err(|_| unbuildable("a header name"))?;
        let value = HeaderValue::from_str(v).map_err(|_| unbuildable("a header value"))?;
        request.headers_mut().append(name, value);
    }
    for (k, v) in credentials {
        let name =
            HeaderName::from_bytes(k.as_bytes()).map_err(|_| unbuildable("a credential header"))?;
        let mut value =
            HeaderValue::from_str(v).map_err(|_| unbuildable("a credential header value"))?;
        value.set_sensitive(true);
        request.headers_mut().append(name, value);
    }
    if !options.subprotocols.is_empty() {
        let v = HeaderValue::from_str(&options.subprotocols.join(", "))
            .map_err(|_| unbuildable("the subprotocol list"))?;
        request.headers_mut().insert("sec-websocket-protocol", v);
    }
    let ws_config = WebSocketConfig::default()
        .max_message_size(Some(cfg.max_message_bytes))
        .max_frame_size(Some(cfg.max_frame_bytes))
        .max_write_buffer_size(cfg.max_write_buffer_bytes)
        .write_buffer_size(cfg.max_write_buffer_bytes.min(128 * 1024))
        .read_buffer_size(READ_BUFFER_BYTES);
    // One timer for the whole path: each TCP attempt, then one deadline for
    // TLS and the WebSocket handshake together (docs/decisions.md, 185).
    let mut timer = std::pin::pin!(tokio::time::sleep(cfg.connect_timeout));
    let (tcp, remote) = connect_tcp(
        authorized.addresses(),
        cfg.connect_timeout,
        shown,
        timer.as_mut(),
    )
    .await?;
    // TLS and the handshake share one deadline from here.
    let by = after(Instant::now(), cfg.handshake_timeout);
    let too_slow = || {
        HostError::new(
            ErrorKind::Timeout,
            format!(
                "TLS and WebSocket handshake with {shown} took longer than {:?}",
                cfg.handshake_timeout
            ),
        )
    };
    let transport = if authorized.is_tls() {
        // TLS is done here rather than inside tokio-tungstenite so that the
        // frame tracker sits above it and sees WebSocket frames.
        let name = match authorized.host() {
            UrlHost::Domain(d) => ServerName::try_from(d.clone()).map_err(|_| {
                HostError::new(
                    ErrorKind::Tls,
                    format!("{shown} has no valid TLS server name"),
                )
            })?,
            UrlHost::Ip(ip) => ServerName::IpAddress((*ip).into()),
        };
        let connect = tokio_rustls::TlsConnector::from(tls).connect(name, tcp);
        match within(timer.as_mut(), by, connect).await {
            None => return Err(too_slow()),
            Some(Err(e)) => {
                return Err(HostError::new(
                    ErrorKind::Tls,
                    format!("TLS with {shown} failed: {e}"),
                ))
            }
            Some(Ok(s)) => Transport::Tls(Box::new(s)),
        }
    } else {
        Transport::Plain(tcp)
    };
    let tracker = ReadTracker::default();
    let stream = Tracked::new(transport, tracker.clone());
    let handshake = tokio_tungstenite::client_async_with_config(request, stream, Some(ws_config));
    let (ws, response) = match within(timer.as_mut(), by, handshake).await {
        None => return Err(too_slow()),
        Some(Err(e)) => {
            return Err(HostError::new(
                ErrorKind::Handshake,
                format!("handshake with {shown} failed: {e}"),
            ));
        }
        Some(Ok(x)) => x,
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
