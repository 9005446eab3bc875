//! netgrant-runtime: enforce a netgrant permission IR at run time.
//!
//! * [`WebSocketHost`] — one per plugin instance. The plugin gets opaque
//!   [`ConnectionId`]s, never a socket; incoming messages reach it only as
//!   [`WebSocketHost::recv`] results. Every connection is authorized by the
//!   policy crate's [`netgrant_policy::Authorizer`] (the same code the CLI
//!   uses), resolved once through a [`Resolver`], checked address by address,
//!   and connected to the checked address only — then bounded, timed out and
//!   cleaned up on shutdown.
//! * [`RequestGuard`] — the same checks for one-shot HTTP requests; the host's
//!   own HTTP client connects to the returned addresses.
#![deny(missing_docs)]
// Denials carry a whole `Decision` (redacted URL, message, rule): it is the
// product, not an exceptional path, and boxing it would only add noise.
#![allow(clippy::result_large_err)]

mod audit;
mod config;
mod connect;
mod error;
mod guard;
mod resolver;
mod websocket;

pub use audit::{AuditRecord, AuditSink, DecisionRecord, FinishedRecord, JsonLinesSink};
pub use config::{GlobalLimit, HostConfig, Roots};
pub use error::{ErrorKind, HostError};
pub use guard::{Guarded, RequestGuard};
pub use resolver::{HickoryResolver, ResolveFuture, Resolver, StaticResolver};
pub use websocket::{ConnectionId, ConnectionStatus, Incoming, OpenOptions, State, WebSocketHost};
