//! The request guard: what a host calls before its HTTP client sends a
//! one-shot request.
//!
//! Contract: on allow, the host's HTTP client connects to exactly
//! [`Guarded::addresses`] (never re-resolving the name), uses
//! [`Guarded::host`] as TLS server name and `Host` header, and follows no
//! redirects. A redirect is a new request that must pass the guard again.
//! Proxy environment variables must be ignored by that client.

use crate::audit::{Audit, AuditSink};
use crate::config::HostConfig;
use crate::connect;
use crate::error::HostError;
use crate::resolver::Resolver;
use netgrant_policy::{Authorized, Authorizer, Capability, Request};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// An allowed one-shot request: the authorizer's [`Authorized`] —
/// [`Authorized::addresses`] to connect to, [`Authorized::server_name`] for
/// TLS and `Host`, [`Authorized::request_url`] to send.
pub type Guarded = Authorized;

/// Authorizes one-shot HTTP requests and resolves their host once.
pub struct RequestGuard {
    audit: Audit,
    next: AtomicU64,
    authorizer: Arc<Authorizer>,
    resolver: Arc<dyn Resolver>,
    config: HostConfig,
}

impl RequestGuard {
    /// A guard over a policy's authorizer.
    pub fn new(
        authorizer: Arc<Authorizer>,
        resolver: Arc<dyn Resolver>,
        config: HostConfig,
    ) -> Self {
        RequestGuard {
            audit: Audit::new(None, authorizer.plugin(), authorizer.digest()),
            next: AtomicU64::new(1),
            authorizer,
            resolver,
            config,
        }
    }

    /// Sends every decision to `sink` (docs/spec.md §11); the guard makes no
    /// finished records, as the host's own client carries the request.
    pub fn with_audit(mut self, sink: Arc<dyn AuditSink>) -> Self {
        let a = &self.authorizer;
        self.audit = Audit::new(Some(sink), a.plugin(), a.digest());
        self
    }

    /// Checks method, URL and headers (websocket and streaming attempts are
    /// `wrong_capability`), resolves once, classifies every answer.
    pub async fn check(
        &self,
        method: &str,
        url: &str,
        headers: &[(String, String)],
    ) -> Result<Guarded, HostError> {
        let req = Request {
            capability: Capability::Request,
            url,
            method: Some(method),
            headers,
            subprotocols: &[],
            credentials: &[],
        };
        connect::authorize_and_resolve(
            &self.authorizer,
            self.resolver.as_ref(),
            &req,
            self.config.dns_timeout,
            &self.audit,
            &format!("req-{}", self.next.fetch_add(1, Ordering::Relaxed)),
        )
        .await
    }
}
