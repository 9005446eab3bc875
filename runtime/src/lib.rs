//! netgrant-runtime: enforce a netgrant permission IR at run time.
//!
//! * [`WebSocketHost`] — one per plugin instance. The plugin gets opaque
//!   [`ConnectionId`]s, never a socket; incoming messages reach it only as
//!   [`WebSocketHost::recv`] results. Every connection is authorized by the
//!   policy crate's [`netgrant_policy::Authorizer`] (the same code the CLI
//!   uses), resolved once through a [`Resolver`], checked address by address,
//!   and connected to the checked address only — then bounded, timed out and
//!   cleaned up on shutdown.
//! * [`RequestHost`] — one per plugin instance, for one-shot HTTP
//!   (`host_api.request`): the same decision path, then one request over the
//!   connection it opened to a checked address, with bounded bodies and
//!   headers, deadlines, no redirects and filtered response headers; the
//!   plugin gets a [`Response`], never a socket.
//! * [`RequestGuard`] — only the checks, for a host that must keep its own
//!   HTTP client: it connects to the returned addresses itself.
//! * Credentials (docs/spec.md §9), injected by both hosts: the host's
//!   [`SecretStore`] ([`FileSecretStore`], [`MemorySecretStore`]),
//!   [`substitute_placeholders`], [`format_header_value`] and
//!   [`format_message_value`] for outgoing data, [`Masker`] and
//!   [`StreamMasker`] for what goes back to the plugin.
#![deny(missing_docs)]
// Denials carry a whole `Decision` (redacted URL, message, rule): it is the
// product, not an exceptional path, and boxing it would only add noise.
#![allow(clippy::result_large_err)]

mod audit;
mod config;
mod connect;
mod credentials;
mod error;
mod guard;
mod request;
mod resolver;
mod websocket;

pub use audit::{AuditRecord, AuditSink, DecisionRecord, FinishedRecord, JsonLinesSink};
pub use config::{GlobalLimit, HostConfig, RequestConfig, Roots};
pub use credentials::{
    format_header_value, format_message_value, placeholder, substitute_placeholders,
    FileSecretStore, HeaderValueError, MaskError, Masker, MemorySecretStore, SecretError,
    SecretFileError, SecretFuture, SecretRef, SecretRefError, SecretStore, StreamMasker,
    SubstituteError, MAX_MASKED_VALUE_BYTES, MAX_SECRETS_FILE_BYTES, PLACEHOLDER_PREFIX,
    PLACEHOLDER_SUFFIX,
};
pub use error::{ErrorKind, HostError};
pub use guard::{Guarded, RequestGuard};
pub use request::{RequestHost, RequestOptions, Response};
pub use resolver::{HickoryResolver, ResolveFuture, Resolver, StaticResolver};
/// The `secrecy` crate this one takes and returns values in
/// ([`secrecy::SecretString`]), so a host names the same version.
pub use secrecy;
pub use websocket::{ConnectionId, ConnectionStatus, Incoming, OpenOptions, State, WebSocketHost};
