//! One request, start to finish, in its caller's task:
//! authorize → resolve once → check every answer → TCP to a checked address →
//! TLS (server name = the URL's normalized host, ALPN h2/http1.1) → hyper's
//! connection-level client over that stream → a bounded, complete response.
//!
//! Nothing here resolves, redirects, reads proxy variables or decompresses.
//! A connection is opened here for the call, or taken from the host's pool
//! (`pool.rs`) when one is open to an address this call just checked.

use super::headers;
use super::pool::{Conn, Key, Life, Pool, Sender};
use super::types::Response;
use crate::audit::{Audit, Finished};
use crate::config::{after, RequestConfig};
use crate::connect::{self, connect_tcp, within};
use crate::credentials::{Injection, SecretStore};
use crate::error::{ErrorKind, HostError};
use crate::resolver::Resolver;
use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::client::conn::{http1, http2, TrySendError};
use hyper::header::{HeaderMap, HeaderName, HeaderValue, CONNECTION, CONTENT_LENGTH, HOST};
use hyper::{Method, Uri, Version};
use hyper_util::rt::TokioIo;
use netgrant_policy::{Authorized, Authorizer, Capability, Request};
use rustls::pki_types::ServerName;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::task::AbortHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// What every request task of one host shares.
#[derive(Clone)]
pub(crate) struct Shared {
    /// Where decisions and ends are recorded.
    pub audit: Audit,
    pub authorizer: Arc<Authorizer>,
    pub resolver: Arc<dyn Resolver>,
    pub config: RequestConfig,
    /// The rustls config with ALPN set (h2 first when HTTP/2 is on).
    pub tls: Arc<rustls::ClientConfig>,
    /// Idle connections for reuse (this host's only).
    pub pool: Arc<Pool>,
    /// Where credential values come from (docs/spec.md §9.4), if anywhere.
    pub secrets: Option<Arc<dyn SecretStore>>,
    /// Cancelled at shutdown: ends every call and every connection's tasks.
    pub cancel: CancellationToken,
}

/// One call: what the caller passed, borrowed for as long as the call runs
/// (it runs in the caller's task).
pub(crate) struct Call<'a> {
    /// The audit id (`req-<host>-<call>`).
    pub id: String,
    pub method: &'a str,
    pub url: &'a str,
    pub headers: &'a [(String, String)],
    pub body: Vec<u8>,
    /// The whole call's deadline (the configured one, or less).
    pub total: Duration,
    /// The response body bound (the configured one, or less).
    pub max_body: usize,
    /// Credentials the plugin asks for, by name.
    pub credentials: Vec<String>,
}

/// Runs one call within its total deadline.
pub(crate) async fn run(shared: &Shared, mut call: Call<'_>) -> Result<Response, HostError> {
    let cfg = &shared.config;
    let total = call.total;
    let started = Instant::now();
    let req = Request {
        capability: Capability::Request,
        url: call.url,
        method: Some(call.method),
        headers: call.headers,
        subprotocols: &[],
        credentials: &call.credentials,
    };
    // DNS has its own deadline, never longer than the whole call's.
    let authorized = connect::authorize_and_resolve(
        &shared.authorizer,
        shared.resolver.as_ref(),
        &req,
        cfg.dns_timeout.min(total),
        &shared.audit,
        &call.id,
    )
    .await?;
    let shown = authorized.redacted_url();
    let body = std::mem::take(&mut call.body);
    let mut end = End {
        audit: &shared.audit,
        id: &call.id,
        url: shown,
        bytes_out: body.len() as u64,
        started: started.into_std(),
        done: false,
    };
    // One clock read per call start (`started`): reading the clock is a
    // system call on some virtual machines. A configured duration too large
    // to add to it is no deadline at all, never an overflow.
    let deadline = started.checked_add(total);
    let work = async {
        // Values are fetched after the decision (which checked that the
        // rule binds every name) and before any socket.
        // (Boxed, and only when asked for: the store's lookup is a large
        // future that a call without credentials should not carry.)
        let injection = if authorized.credentials().is_empty() {
            Injection::none()
        } else {
            let remaining = deadline.map_or(total, |d| d.saturating_duration_since(Instant::now()));
            Box::pin(Injection::resolve(
                shared.secrets.as_deref(),
                authorized.credentials(),
                remaining,
                shown,
            ))
            .await?
        };
        send(shared, &authorized, &call, body, &injection, started).await
    };
    let timed = match deadline {
        Some(d) => tokio::time::timeout_at(d, work).await,
        None => Ok(work.await),
    };
    let result = match timed {
        Ok(r) => r,
        Err(_) => Err(HostError::new(
            ErrorKind::Timeout,
            format!("the request to {shown} did not complete within {total:?}"),
        )),
    };
    // At shutdown the connection's driver may end before this call sees the
    // token: its error is the shutdown, recorded as `cancelled` (by `End`'s
    // drop) like a call cancelled at an await.
    if result.is_err() && shared.cancel.is_cancelled() {
        return Err(cancelled_by_shutdown());
    }
    end.record(&result);
    result
}

/// What a call in flight returns when the host shuts down.
pub(crate) fn cancelled_by_shutdown() -> HostError {
    HostError::new(
        ErrorKind::Shutdown,
        "the host was shut down while the request was in flight",
    )
}

/// Records the end of an allowed request exactly once: when it returns, or,
/// if it is cancelled (shutdown, or the caller gave up), when it is dropped
/// (outcome `cancelled`).
struct End<'a> {
    audit: &'a Audit,
    id: &'a str,
    url: &'a str,
    bytes_out: u64,
    started: std::time::Instant,
    done: bool,
}

impl End<'_> {
    fn record(&mut self, result: &Result<Response, HostError>) {
        // Bytes are counted for completed exchanges only: after a failure
        // how much of the body left is not known.
        let (outcome, status, bytes_in, bytes_out) = match result {
            Ok(r) => (
                "closed",
                Some(r.status),
                r.body.len() as u64,
                self.bytes_out,
            ),
            Err(e) => (e.code(), None, 0, 0),
        };
        self.write(outcome, status, bytes_in, bytes_out);
    }

    fn write(&mut self, outcome: &str, status: Option<u16>, bytes_in: u64, bytes_out: u64) {
        if std::mem::replace(&mut self.done, true) {
            return;
        }
        self.audit.finished(Finished {
            id: self.id,
            capability: Capability::Request,
            url: self.url,
            outcome,
            close_code: None,
            status,
            bytes_in,
            bytes_out,
            messages_in: 0,
            messages_out: 0,
            duration: self.started.elapsed(),
        });
    }
}

impl Drop for End<'_> {
    fn drop(&mut self) {
        self.write("cancelled", None, 0, 0);
    }
}

/// Sends the call on a pooled connection to a checked address if there is
/// one, else on a new one (connect, TLS, handshake), and reads the whole
/// response. A pooled connection the server closed before taking the
/// request is given up and the request goes on a new connection; a request
/// that may have been sent is never sent again.
async fn send(
    shared: &Shared,
    a: &Authorized,
    call: &Call<'_>,
    body: Vec<u8>,
    injection: &Injection,
    started: Instant,
) -> Result<Response, HostError> {
    let cfg = &shared.config;
    let shown = a.redacted_url();
    // The request is built before any socket is opened. Method, URL and
    // headers were checked by the authorizer (known uppercase methods,
    // tokens, visible ASCII), so a failure here is a bug in that check,
    // reported as an error, never as a second decision.
    let unbuildable = |what: &str| {
        HostError::new(
            ErrorKind::Http,
            format!("cannot build the request for {shown}: {what}"),
        )
    };
    let uri: Uri = a
        .request_url()
        .parse()
        .map_err(|_| unbuildable("the URL"))?;
    let method =
        Method::from_bytes(call.method.as_bytes()).map_err(|_| unbuildable("the method"))?;
    let mut header_map = HeaderMap::new();
    for (k, v) in call.headers {
        let name =
            HeaderName::from_bytes(k.as_bytes()).map_err(|_| unbuildable("a header name"))?;
        let value = HeaderValue::from_str(v).map_err(|_| unbuildable("a header value"))?;
        header_map.append(name, value);
    }
    for (k, v) in &injection.headers {
        let name =
            HeaderName::from_bytes(k.as_bytes()).map_err(|_| unbuildable("a credential header"))?;
        let mut value =
            HeaderValue::from_str(v).map_err(|_| unbuildable("a credential header value"))?;
        // Never indexed by HPACK, never shown by hyper's Debug.
        value.set_sensitive(true);
        header_map.append(name, value);
    }
    let outgoing = Outgoing {
        method,
        uri,
        headers: header_map,
        body: Bytes::from(body),
    };
    let limits = Limits {
        max_body: call.max_body,
        // A HEAD answer's `Content-Length` describes the body a GET would
        // get; no body follows it.
        bodiless_request: outgoing.method == Method::HEAD,
        shown,
        cfg,
    };
    let key = Key {
        tls: a.is_tls(),
        server_name: a.server_name(),
    };
    // The call's start stands in for "now" when idle times are checked:
    // one clock read less, and a connection is never older than it looks by
    // more than this call's own age.
    if let Some(conn) = shared.pool.checkout(&key, a.addresses(), started) {
        tracing::debug!(target: "netgrant", id = %call.id, remote = %conn.remote, "request reuses a pooled connection");
        match round_trip(conn, outgoing.clone(), &limits).await {
            Ok((response, conn, reusable)) => {
                if reusable {
                    shared.pool.checkin(conn);
                }
                return Ok(mask(response, injection));
            }
            // Not sent: the server had closed the connection. A new one.
            Err(Attempt::NotSent(_)) => {}
            Err(Attempt::Failed(e)) => return Err(e),
        }
    }
    // Boxed: connecting (TCP, TLS, the HTTP handshake) is most of the
    // call's future size, and pays for itself only on a new connection; the
    // call's future is smaller and cheaper to move without it.
    let conn = Box::pin(open(shared, a, &limits, key)).await?;
    if let Some(shared_conn) = conn.share() {
        // HTTP/2: other calls may use it while this one does.
        shared.pool.checkin(shared_conn);
    }
    match round_trip(conn, outgoing, &limits).await {
        Ok((response, conn, reusable)) => {
            if reusable {
                shared.pool.checkin(conn);
            }
            Ok(mask(response, injection))
        }
        Err(Attempt::NotSent(e) | Attempt::Failed(e)) => Err(e),
    }
}

/// Every injected value in the response (header values and body) becomes
/// its placeholder: the plugin never reads a value, also not when the
/// server echoes it (docs/spec.md §9.3).
fn mask(mut r: Response, injection: &Injection) -> Response {
    if injection.is_empty() {
        return r;
    }
    let m = &injection.masker;
    for (_, v) in &mut r.headers {
        if let std::borrow::Cow::Owned(masked) = m.mask_bytes(v) {
            *v = masked;
        }
    }
    if let std::borrow::Cow::Owned(masked) = m.mask_bytes(&r.body) {
        r.body = masked;
    }
    r
}

/// Connects to a checked address, does TLS, and the HTTP handshake.
async fn open(
    shared: &Shared,
    a: &Authorized,
    l: &Limits<'_>,
    key: Key,
) -> Result<Conn, HostError> {
    let cfg = l.cfg;
    let shown = l.shown;
    // One timer for TCP and TLS, as for a WebSocket (docs/decisions.md,
    // 185, 189).
    let mut timer = std::pin::pin!(tokio::time::sleep(cfg.connect_timeout));
    let (tcp, remote) =
        connect_tcp(a.addresses(), cfg.connect_timeout, shown, timer.as_mut()).await?;
    if !a.is_tls() {
        return handshake(tcp, false, l, key, remote, &shared.cancel).await;
    }
    let name = ServerName::try_from(a.server_name()).map_err(|_| {
        HostError::new(
            ErrorKind::Tls,
            format!("{shown} has no valid TLS server name"),
        )
    })?;
    let connect = tokio_rustls::TlsConnector::from(shared.tls.clone()).connect(name, tcp);
    let by = after(Instant::now(), cfg.tls_timeout);
    let tls = match within(timer.as_mut(), by, connect).await {
        None => {
            return Err(HostError::new(
                ErrorKind::Timeout,
                format!(
                    "TLS handshake with {shown} took longer than {:?}",
                    cfg.tls_timeout
                ),
            ))
        }
        Some(Err(e)) => {
            return Err(HostError::new(
                ErrorKind::Tls,
                format!("TLS with {shown} failed: {e}"),
            ))
        }
        Some(Ok(s)) => s,
    };
    let h2 = tls.get_ref().1.alpn_protocol() == Some(b"h2".as_slice());
    handshake(tls, h2, l, key, remote, &shared.cancel).await
}

/// The request to send, checked and built (cheap to clone: the body is
/// shared).
#[derive(Clone)]
struct Outgoing {
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
}

impl Outgoing {
    /// HTTP/1.1: origin-form target and `Host` from the authorized URL.
    /// HTTP/2: absolute URI (`:scheme`, `:authority`), no `Host`.
    fn into_request(self, h2: bool) -> Result<hyper::Request<Full<Bytes>>, HostError> {
        let Outgoing {
            method,
            uri,
            mut headers,
            body,
        } = self;
        // Built in place (no builder): the plugin's checked headers become
        // the request's map as they are, `Host` added (the authorizer never
        // lets a plugin set it).
        let mut req = hyper::Request::new(Full::new(body));
        *req.method_mut() = method;
        if h2 {
            *req.version_mut() = Version::HTTP_2;
            *req.uri_mut() = uri;
        } else {
            *req.version_mut() = Version::HTTP_11;
            if let Some(host) = uri.authority() {
                let host = HeaderValue::from_str(host.as_str()).map_err(|e| {
                    HostError::new(ErrorKind::Http, format!("cannot build the request: {e}"))
                })?;
                headers.insert(HOST, host);
            }
            // The origin-form target shares the parsed path's buffer.
            *req.uri_mut() = match uri.path_and_query() {
                Some(p) => Uri::from(p.clone()),
                None => Uri::from_static("/"),
            };
        }
        *req.headers_mut() = headers;
        Ok(req)
    }
}

struct Limits<'a> {
    max_body: usize,
    /// The request was HEAD: the response has no body whatever it declares.
    bodiless_request: bool,
    shown: &'a str,
    cfg: &'a RequestConfig,
}

/// The most response header fields any configuration allows.
pub(crate) const MAX_HEADERS_CAP: usize = 10_000;

/// hyper's HTTP/1.1 read buffer default; raised only for larger head bounds.
const HYPER_DEFAULT_BUF: usize = 8192 + 4096 * 100;

/// The HTTP handshake on `io`. The connection is driven on its own task, so
/// reading the socket and consuming the body overlap (driving both from
/// one task put every body chunk behind a trip through the run queue: 2.5×
/// slower with 16 large responses in flight, docs/benchmarks.md). That task
/// (and HTTP/2's helper tasks) are aborted when the last holder of the
/// connection — a call or the pool — lets go, so the socket never outlives
/// them, and they end when `cancel` is cancelled (shutdown), whoever holds
/// the connection.
async fn handshake<S>(
    io: S,
    h2: bool,
    l: &Limits<'_>,
    key: Key,
    remote: SocketAddr,
    cancel: &CancellationToken,
) -> Result<Conn, HostError>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let io = TokioIo::new(io);
    let cfg = l.cfg;
    if h2 {
        let scope = Scope {
            tasks: Arc::default(),
            cancel: cancel.clone(),
        };
        let guard = ScopeGuard(scope.clone());
        let (sender, conn) = http2::Builder::new(scope)
            .max_header_list_size(u32::try_from(cfg.max_response_header_bytes).unwrap_or(u32::MAX))
            .handshake::<_, Full<Bytes>>(io)
            .await
            .map_err(|e| http_error(&e, l))?;
        Ok(Conn {
            sender: Sender::H2(sender),
            key,
            remote,
            life: Life::spawn(conn, Some(guard), cancel),
        })
    } else {
        let mut b = http1::Builder::new();
        // hyper allocates this many header slots for every response, so the
        // count is clamped (docs: `RequestConfig::max_response_headers`).
        b.max_headers(cfg.max_response_headers.min(MAX_HEADERS_CAP))
            .max_header_size(cfg.max_response_header_bytes);
        if cfg.max_response_header_bytes > HYPER_DEFAULT_BUF {
            b.max_buf_size(cfg.max_response_header_bytes);
        }
        let (sender, conn) = b
            .handshake::<_, Full<Bytes>>(io)
            .await
            .map_err(|e| http_error(&e, l))?;
        Ok(Conn {
            sender: Sender::H1(sender),
            key,
            remote,
            life: Life::spawn(conn, None, cancel),
        })
    }
}

/// How one attempt on a connection failed.
enum Attempt {
    /// The request never left: the connection was closed before it took
    /// it. Safe to send on another connection.
    NotSent(HostError),
    /// It may have been sent, or the response failed: never sent again.
    Failed(HostError),
}

/// Sends `out` on `conn` and reads the whole response. Returns the
/// connection with whether it may be reused.
async fn round_trip(
    mut conn: Conn,
    out: Outgoing,
    l: &Limits<'_>,
) -> Result<(Response, Conn, bool), Attempt> {
    let h2 = matches!(conn.sender, Sender::H2(_));
    let req = out.into_request(h2).map_err(Attempt::Failed)?;
    let resp = match &mut conn.sender {
        Sender::H1(s) => {
            s.ready()
                .await
                .map_err(|e| Attempt::NotSent(http_error(&e, l)))?;
            first_byte(s.try_send_request(req), l).await?
        }
        Sender::H2(s) => {
            s.ready()
                .await
                .map_err(|e| Attempt::NotSent(http_error(&e, l)))?;
            first_byte(s.try_send_request(req), l).await?
        }
    };
    let (response, keep_alive) = read(resp, l, conn.remote).await.map_err(Attempt::Failed)?;
    Ok((response, conn, keep_alive))
}

/// Waits for the response head within the first-byte deadline.
async fn first_byte<F>(send: F, l: &Limits<'_>) -> Result<hyper::Response<Incoming>, Attempt>
where
    F: Future<
        Output = Result<hyper::Response<Incoming>, TrySendError<hyper::Request<Full<Bytes>>>>,
    >,
{
    let wait = l.cfg.first_byte_timeout;
    match tokio::time::timeout(wait, send).await {
        Err(_) => Err(Attempt::Failed(HostError::new(
            ErrorKind::Timeout,
            format!("no response from {} within {wait:?}", l.shown),
        ))),
        Ok(Err(mut e)) => {
            let not_sent = e.take_message().is_some();
            let err = http_error(e.error(), l);
            Err(if not_sent {
                Attempt::NotSent(err)
            } else {
                Attempt::Failed(err)
            })
        }
        Ok(Ok(r)) => Ok(r),
    }
}

/// Checks the head against the bounds and reads the whole body, failing at
/// the first byte over the bound. Also says whether the connection may be
/// kept: not after `Connection: close` or an HTTP/1.0 answer.
async fn read(
    resp: hyper::Response<Incoming>,
    l: &Limits<'_>,
    remote: SocketAddr,
) -> Result<(Response, bool), HostError> {
    let (parts, mut body) = resp.into_parts();
    let cfg = l.cfg;
    let count = parts.headers.len();
    let size: usize = parts
        .headers
        .iter()
        .map(|(k, v)| k.as_str().len() + v.len())
        .sum();
    let max_count = cfg.max_response_headers.min(MAX_HEADERS_CAP);
    if count > max_count || size > cfg.max_response_header_bytes {
        return Err(too_large_head(l));
    }
    let too_large_body = |what: String| {
        HostError::new(
            ErrorKind::MessageTooLarge,
            format!(
                "the response body from {} {what}, over the {}-byte bound; nothing was returned",
                l.shown, l.max_body
            ),
        )
    };
    let declared = parts
        .headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    // 204 and 304 carry no body either (RFC 9110 §6.4.1); the read below
    // still counts whatever arrives.
    let bodiless = l.bodiless_request || matches!(parts.status.as_u16(), 204 | 304);
    if let (Some(n), false) = (declared, bodiless) {
        if n > l.max_body as u64 {
            return Err(too_large_body(format!("declares {n} bytes")));
        }
    }
    // The chunks are kept as they arrive and copied once, at the end, into
    // a body of exactly their size: no reservation on a peer's claim, and no
    // regrowing (which cost 2.5× with 16 large bodies in flight,
    // docs/benchmarks.md).
    // The first chunk is kept apart: most bodies are one chunk, handed over
    // without a copy when its buffer is unique, and without a list.
    let mut first: Option<Bytes> = None;
    let mut more: Vec<Bytes> = Vec::new();
    let mut len = 0usize;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| http_error(&e, l))?;
        if let Ok(chunk) = frame.into_data() {
            if chunk.len() > l.max_body - len {
                return Err(too_large_body("exceeds it".to_owned()));
            }
            len += chunk.len();
            if first.is_none() {
                first = Some(chunk);
            } else {
                more.push(chunk);
            }
        }
    }
    let data = match first {
        None => Vec::new(),
        Some(one) if more.is_empty() => Vec::from(one),
        Some(one) => {
            let mut data = Vec::with_capacity(len);
            data.extend_from_slice(&one);
            for c in &more {
                data.extend_from_slice(c);
            }
            data
        }
    };
    let version = match parts.version {
        Version::HTTP_2 => "HTTP/2",
        Version::HTTP_10 => "HTTP/1.0",
        Version::HTTP_11 => "HTTP/1.1",
        _ => "HTTP",
    };
    let close = parts.headers.get_all(CONNECTION).iter().any(|v| {
        v.to_str()
            .is_ok_and(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case("close")))
    });
    let keep_alive = !close && matches!(parts.version, Version::HTTP_11 | Version::HTTP_2);
    Ok((
        Response {
            status: parts.status.as_u16(),
            headers: headers::filter(&parts.headers),
            body: data,
            version,
            remote,
        },
        keep_alive,
    ))
}

fn too_large_head(l: &Limits<'_>) -> HostError {
    HostError::new(
        ErrorKind::MessageTooLarge,
        format!(
            "the response head from {} exceeds {} headers or {} bytes",
            l.shown,
            l.cfg.max_response_headers.min(MAX_HEADERS_CAP),
            l.cfg.max_response_header_bytes
        ),
    )
}

/// A hyper error as a host error: an oversized head is `message_too_large`,
/// everything else `http_failed` with hyper's description and its cause
/// (an I/O error kind, never payload).
fn http_error(e: &hyper::Error, l: &Limits<'_>) -> HostError {
    // `hyper::Error::is_parse_too_large` exists only with hyper's `server`
    // feature; its description is stable, and tests/request_host.rs pins it.
    if e.is_parse() && e.to_string() == "message head is too large" {
        return too_large_head(l);
    }
    if e.is_incomplete_message() {
        return HostError::new(
            ErrorKind::Http,
            format!(
                "the connection to {} ended before the response was complete",
                l.shown
            ),
        );
    }
    let cause = std::error::Error::source(e)
        .map(|s| format!(" ({s})"))
        .unwrap_or_default();
    HostError::new(
        ErrorKind::Http,
        format!("the HTTP exchange with {} failed: {e}{cause}", l.shown),
    )
}

/// The executor HTTP/2 spawns its helper tasks on: tokio, with every task
/// aborted when the connection is let go (see [`ScopeGuard`]) or ended at
/// shutdown, so nothing outlives it.
#[derive(Clone)]
struct Scope {
    tasks: Arc<Mutex<Vec<AbortHandle>>>,
    cancel: CancellationToken,
}

impl<F> hyper::rt::Executor<F> for Scope
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    fn execute(&self, fut: F) {
        let cancel = self.cancel.clone();
        let handle =
            tokio::spawn(async move { cancel.run_until_cancelled_owned(fut).await }).abort_handle();
        let mut tasks = self.tasks.lock().unwrap_or_else(|p| p.into_inner());
        tasks.retain(|t| !t.is_finished());
        tasks.push(handle);
    }
}

/// Aborts every task of its [`Scope`] when dropped.
pub(crate) struct ScopeGuard(Scope);

impl Drop for ScopeGuard {
    fn drop(&mut self) {
        let tasks = self.0.tasks.lock().unwrap_or_else(|p| p.into_inner());
        for t in tasks.iter() {
            t.abort();
        }
    }
}
