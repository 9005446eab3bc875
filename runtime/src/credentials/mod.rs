//! Credentials (docs/spec.md §9): the host's secret store, placeholder
//! substitution and header formatting on the way out, masking on the way in.
//!
//! The pieces are independent of the hosts and of the policy crate (the
//! hosts wire them in through `injection.rs`):
//!
//! * [`SecretStore`] — the host's store, looked up by [`SecretRef`];
//!   [`FileSecretStore`] is the TOML file netgrant ships, [`MemorySecretStore`]
//!   one built in code.
//! * [`substitute_placeholders`], [`format_header_value`] and
//!   [`format_message_value`] — the only places a value is written into
//!   outgoing data, into zeroizing memory.
//! * [`Masker`] and [`StreamMasker`] — every occurrence of an injected value
//!   in what goes back to the plugin becomes its placeholder.
//!
//! `mask.rs` and `inject.rs` use nothing else from this crate: the fuzz
//! crate builds them on their own (docs/decisions.md, 138).

mod file;
mod inject;
mod injection;
mod mask;
#[cfg(test)]
mod mask_tests;
mod store;

pub use file::{FileSecretStore, SecretFileError, MAX_SECRETS_FILE_BYTES};
pub use inject::{
    format_header_value, format_message_value, placeholder, substitute_placeholders,
    HeaderValueError, SubstituteError, PLACEHOLDER_PREFIX, PLACEHOLDER_SUFFIX,
};
pub(crate) use injection::Injection;
pub use mask::{MaskError, Masker, StreamMasker, MAX_MASKED_VALUE_BYTES};
pub use store::{
    MemorySecretStore, SecretError, SecretFuture, SecretRef, SecretRefError, SecretStore,
};
