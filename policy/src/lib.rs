//! netgrant-policy: the permission schema, compiler and authorizer for plugin
//! network access.
//!
//! Lifecycle (parse → compile → authorize):
//!
//! ```
//! use netgrant_policy::{compile, Authorizer, Grant, Manifest, Request};
//!
//! let manifest = Manifest::parse("plugin.toml", r#"
//! [plugin]
//! name = "bridge"
//! version = "0.1.0"
//!
//! [[host_api.websocket]]
//! url = "wss://gateway.example.com/"
//! "#).value.unwrap();
//! let grant = Grant::parse("grant.toml", r#"
//! plugin = "bridge"
//! [[host_api.websocket]]
//! url = "wss://gateway.example.com/"
//! "#).value.unwrap();
//!
//! let policy = compile(&manifest, Some(&grant)).policy.unwrap();
//! let authz = Authorizer::new(&policy);
//! let ok = authz.authorize(&Request::websocket("wss://gateway.example.com/?v=10"), None);
//! assert!(ok.is_allowed());
//! let no = authz.authorize(&Request::websocket("wss://evil.example.net/"), None);
//! assert_eq!(no.code, "not_requested");
//! ```
#![deny(missing_docs)]
// Denials carry a whole `Decision` (redacted URL, message, rule): it is the
// product, not an exceptional path, and boxing it would only add noise.
#![allow(clippy::result_large_err)]

pub mod address;
pub mod approve_plan;
pub mod authorize;
pub mod capability;
pub mod compile;
pub mod decision;
pub mod diagnostics;
pub mod diff;
pub mod document;
pub mod drift;
pub mod explain;
pub mod headers;
pub mod idn;
pub mod ir;
pub mod lint;
pub mod path;
pub mod permission;
pub mod redact;
pub mod replay;
pub mod schema;
pub mod target;

pub use authorize::{Authorized, Authorizer, Destination, Prepared, Request};
pub use capability::{Capability, Scheme};
pub use compile::{compile, entry_permission, entry_requested_permission, load_policy, Compiled};
pub use decision::{Decision, DenyCode, Verdict};
pub use diagnostics::{Code, Diagnostic, Severity};
pub use document::{Grant, Manifest, Parsed};
pub use ir::Policy;
pub use target::Target;
