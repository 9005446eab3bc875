//! The connect path both capabilities share: authorize → resolve once →
//! classify every answer → TCP to a checked address. TLS configuration lives
//! here too; the WebSocket handshake is in [`crate::websocket`].

use crate::audit::Audit;
use crate::config::{after, Roots};
use crate::error::{ErrorKind, HostError};
use crate::resolver::Resolver;
use netgrant_policy::LOCALHOST_ADDRS;
use netgrant_policy::{Authorized, Authorizer, Destination, Request};
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;
use tokio::net::TcpStream;
use tokio::time::{Instant, Sleep};

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
/// every answer. The [`Authorized`] carries everything the connect path
/// needs; nothing after this parses the URL or decides again. Every
/// decision goes to `audit` (docs/spec.md §11) under the connection or
/// request `id`, with the answers it checked.
pub(crate) async fn authorize_and_resolve(
    authz: &Authorizer,
    resolver: &dyn Resolver,
    req: &Request<'_>,
    dns_timeout: Duration,
    audit: &Audit,
    id: &str,
) -> Result<Authorized, HostError> {
    let prepared = match authz.prepare(req) {
        Ok(p) => p,
        Err(d) => {
            audit.decision(id, req, None, &d);
            return Err(HostError::denied(d));
        }
    };
    // Known addresses are checked where they are: only DNS answers are a list.
    let one: [IpAddr; 1];
    let resolved: Vec<IpAddr>;
    let answers: &[IpAddr] = match prepared.destination() {
        Destination::Ip(ip) => {
            one = [*ip];
            &one
        }
        Destination::Localhost => &LOCALHOST_ADDRS,
        Destination::Name(name) => {
            resolved = match tokio::time::timeout(dns_timeout, resolver.resolve(name)).await {
                Err(_) => {
                    let e = HostError::new(
                        ErrorKind::Timeout,
                        format!(
                            "resolving the host of {} took longer than {dns_timeout:?}",
                            prepared.redacted_url()
                        ),
                    );
                    // No decision was made: the end is recorded all the same.
                    audit.failed(id, req.capability, prepared.redacted_url(), &e);
                    return Err(e);
                }
                // A resolver error is treated as no answers: resolution_failed.
                Ok(Err(_)) => Vec::new(),
                Ok(Ok(a)) => a,
            };
            &resolved
        }
    };
    match prepared.authorize_addresses(answers) {
        Ok(ok) => {
            audit.decision(id, req, Some(answers), ok.decision());
            Ok(ok)
        }
        Err(d) => {
            audit.decision(id, req, Some(answers), &d);
            Err(HostError::denied(d))
        }
    }
}

/// Connects TCP to the first checked address that accepts, each attempt
/// bounded by `connect_timeout` on `timer`, which the caller goes on using
/// for its next phase ([`within`]).
pub(crate) async fn connect_tcp(
    addrs: &[SocketAddr],
    connect_timeout: Duration,
    shown: &str,
    mut timer: Pin<&mut Sleep>,
) -> Result<(TcpStream, SocketAddr), HostError> {
    let mut last = String::from("no address");
    for a in addrs {
        let at = after(Instant::now(), connect_timeout);
        match within(timer.as_mut(), at, TcpStream::connect(a)).await {
            Some(Ok(s)) => {
                let _ = s.set_nodelay(true);
                return Ok((s, *a));
            }
            Some(Err(e)) => last = format!("{a}: {}", e.kind()),
            None => {
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

/// `fut`, or `None` if `timer` fires first at `at`: `tokio::time::timeout`
/// over a timer the caller keeps. The connect path runs its phases (TCP,
/// TLS, the handshake) on one timer, each with its own deadline: a timer is
/// registered once per connect, and moving it later is done in place. Each
/// registration that is the runtime's earliest wakes the thread parked in
/// the driver, and used to happen once per phase (docs/decisions.md, 185).
/// The timer is moved to `at` only once `fut` is pending, as `timeout`
/// registers its timer: a TCP connect's syscall goes out before the parked
/// thread is woken to learn the deadline, not after (with a server in the
/// same runtime, one wake-up then serves both; decision 189).
pub(crate) async fn within<F: Future>(
    timer: Pin<&mut Sleep>,
    at: Instant,
    fut: F,
) -> Option<F::Output> {
    let mut timer = timer;
    let mut fut = std::pin::pin!(fut);
    let mut armed = false;
    std::future::poll_fn(|cx| {
        if let Poll::Ready(v) = fut.as_mut().poll(cx) {
            return Poll::Ready(Some(v));
        }
        if !armed {
            timer.as_mut().reset(at);
            armed = true;
        }
        // Outside the cooperative budget, as `timeout` polls its timer: a
        // peer keeping `fut` busy must not hide the deadline.
        let mut timer = tokio::task::unconstrained(timer.as_mut());
        Pin::new(&mut timer).poll(cx).map(|()| None)
    })
    .await
}
