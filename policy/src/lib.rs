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
//!
//! # Features
//!
//! The core — parsing ([`Manifest`], [`Grant`], [`Target`]), the compiler
//! ([`compile`], with [`drift`], which the compiler uses for its
//! digest-drift warning), the IR ([`ir`], [`load_policy`]), the authorizer
//! ([`Authorizer`], [`Decision`]) and [`diagnostics`] — is always built.
//! That is all `netgrant-runtime` takes: it depends on this crate with no
//! features.
//!
//! | Feature  | Default | Adds |
//! |----------|---------|------|
//! | `fancy`  | yes | miette's graphical diagnostic handler (`miette/fancy`) |
//! | `schema` | yes | the `schema` module (JSON Schemas for `plugin.toml`, `grant.toml` and the IR) and `JsonSchema` impls on the IR types (and the diff and drift types); pulls in `schemars` |
//! | `review` | yes | the review engines: `diff`, `explain`, `lint`, `replay`, `idn` and `approve_plan`; pulls in `unicode-security` (and `idna` directly) |
//!
//! Every combination builds: `--no-default-features`, `schema` alone,
//! `review` alone and both (CI checks each, `.ci/run`). With `schema` and
//! `review` together, the diff types also implement `JsonSchema`.
#![deny(missing_docs)]
// Denials carry a whole `Decision` (redacted URL, message, rule): it is the
// product, not an exceptional path, and boxing it would only add noise.
#![allow(clippy::result_large_err)]
#![cfg_attr(docsrs, feature(doc_cfg))]

// The folders show the layers (grammar → document → compile → authorize,
// and the review engines on top), each file mounted with `#[path]`. The
// core modules are private: the root re-exports their public API, so a
// module can move or split without breaking users. Public modules are the
// wire form (`ir`), the address-range table (`address`), the reporting
// helpers (`diagnostics`, `redact`) and the
// optional engines (`schema`, the review modules). See
// docs/architecture.md.
#[path = "grammar/address.rs"]
pub mod address;
#[cfg(feature = "review")]
#[cfg_attr(docsrs, doc(cfg(feature = "review")))]
#[path = "review/approve_plan.rs"]
pub mod approve_plan;
#[path = "authorize/authorize.rs"]
mod authorize;
#[path = "compile/canonical_json.rs"]
mod canonical_json;
#[path = "grammar/capability.rs"]
mod capability;
#[path = "compile/compile.rs"]
mod compile;
#[path = "compile/compiled.rs"]
mod compiled;
#[path = "grammar/credential.rs"]
mod credential;
#[path = "authorize/decision.rs"]
mod decision;
pub mod diagnostics;
#[cfg(feature = "review")]
#[cfg_attr(docsrs, doc(cfg(feature = "review")))]
#[path = "review/diff.rs"]
pub mod diff;
#[path = "document/walker.rs"]
mod document;
#[path = "compile/drift.rs"]
mod drift;
#[cfg(feature = "review")]
#[cfg_attr(docsrs, doc(cfg(feature = "review")))]
#[path = "review/explain/mod.rs"]
pub mod explain;
#[path = "grammar/headers.rs"]
mod headers;
#[cfg(feature = "review")]
#[cfg_attr(docsrs, doc(cfg(feature = "review")))]
#[path = "review/idn.rs"]
pub mod idn;
#[path = "compile/ir.rs"]
pub mod ir;
#[cfg(feature = "review")]
#[cfg_attr(docsrs, doc(cfg(feature = "review")))]
#[path = "review/lint.rs"]
pub mod lint;
#[path = "grammar/path.rs"]
mod path;
#[path = "grammar/permission.rs"]
mod permission;
#[path = "authorize/redact.rs"]
pub mod redact;
#[cfg(feature = "review")]
#[cfg_attr(docsrs, doc(cfg(feature = "review")))]
#[path = "review/replay.rs"]
pub mod replay;
#[cfg(feature = "schema")]
#[cfg_attr(docsrs, doc(cfg(feature = "schema")))]
#[path = "document/schema.rs"]
pub mod schema;
#[path = "grammar/target.rs"]
mod target;
mod words;

// Parse: documents and the target grammar.
pub use capability::{Capability, Scheme};
pub use credential::{
    BoundCredential, Credential, CredentialPlacement, CredentialUse, EntryCredential, FormatError,
    SecretRef, SecretRefError, MAX_CREDENTIALS_PER_TARGET,
};
pub use document::{Grant, Manifest, Parsed, MAX_FILE_BYTES, MAX_TARGETS};
pub use path::{PathReadingError, PathReadings, Reading};
pub use permission::{broad_reason, broad_reason_ir, Flags, Method, Methods, Permission};
pub use target::{
    HostKind, HostPattern, PortPattern, Target, TargetError, TargetErrorKind, UrlHost,
    MAX_URL_BYTES,
};
// Build: the compiler, the IR loader and drift between IR and grant.
pub use compile::{compile, load_policy, Compiled};
pub use compiled::{CompiledPolicy, IgnoredGrant, PolicyEntry};
pub use drift::{drift, Drift, FollowsManifest, InheritedField};
pub use ir::Policy;
// Match: the authorizer and its decisions.
pub use authorize::{Authorized, Authorizer, Destination, Prepared, Request, LOCALHOST_ADDRS};
pub use decision::{Decision, DecisionCode, DenyCode, RuleId, Verdict};
pub use diagnostics::{Code, Diagnostic, Severity};
