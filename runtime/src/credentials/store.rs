//! The host's secret store behind a trait, and the reference that names a
//! secret (never a value).

use secrecy::SecretString;
use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

/// The name of a secret in the host's store: the policy's type, so a
/// reference is checked by one grammar (`netgrant_policy::SecretRef`).
///
/// ```
/// use netgrant_runtime::SecretRef;
/// let r = SecretRef::parse("discord/bot").unwrap();
/// assert_eq!(r.as_str(), "discord/bot");
/// assert!(SecretRef::parse("Discord/Bot").is_err());
/// assert!(SecretRef::parse("https://vault/x").is_err());
/// ```
pub use netgrant_policy::{SecretRef, SecretRefError};

/// Why a store gave no value. Neither variant carries a value or a store's
/// own message (which might quote one): the host logs its store's details
/// itself.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SecretError {
    /// The store has no secret under this reference.
    #[error("secret `{0}` not found")]
    NotFound(SecretRef),
    /// The store could not answer (unreachable vault, locked keyring, …).
    #[error("secret store failed to provide `{0}`")]
    Unavailable(SecretRef),
}

impl SecretError {
    /// A stable code: `secret_not_found`, `secret_store_failed`.
    pub fn code(&self) -> &'static str {
        match self {
            SecretError::NotFound(_) => "secret_not_found",
            SecretError::Unavailable(_) => "secret_store_failed",
        }
    }
}

/// A boxed lookup future.
pub type SecretFuture<'a> =
    Pin<Box<dyn Future<Output = Result<SecretString, SecretError>> + Send + 'a>>;

/// The host's secret store (vault, keyring, its own configuration).
///
/// Implementations must be cancellable, as [`crate::Resolver`]s are: the host
/// drops the future at its deadline. A value is returned as a
/// [`SecretString`], zeroized on drop and redacted in `Debug`; the host asks
/// for it at the last moment and drops it when the request or connection
/// ends.
pub trait SecretStore: Send + Sync + 'static {
    /// The value stored under `secret`.
    fn get<'a>(&'a self, secret: &'a SecretRef) -> SecretFuture<'a>;
}

impl<S: SecretStore + ?Sized> SecretStore for Arc<S> {
    fn get<'a>(&'a self, secret: &'a SecretRef) -> SecretFuture<'a> {
        (**self).get(secret)
    }
}

/// Secrets held in memory, for tests and for hosts that load secrets their
/// own way. `Debug` lists the references, never a value.
///
/// ```
/// use netgrant_runtime::{MemorySecretStore, SecretRef, SecretStore};
/// use secrecy::{ExposeSecret, SecretString};
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let r: SecretRef = "discord/bot".parse().unwrap();
/// let store = MemorySecretStore::new().with(r.clone(), SecretString::from("t0ken"));
/// assert_eq!(store.get(&r).await.unwrap().expose_secret(), "t0ken");
/// assert!(!format!("{store:?}").contains("t0ken"));
/// # });
/// ```
#[derive(Default)]
pub struct MemorySecretStore {
    secrets: HashMap<SecretRef, SecretString>,
}

impl MemorySecretStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds (or replaces) a secret.
    pub fn with(mut self, secret: SecretRef, value: SecretString) -> Self {
        self.secrets.insert(secret, value);
        self
    }

    /// Whether a secret is stored under this reference.
    pub fn contains(&self, secret: &SecretRef) -> bool {
        self.secrets.contains_key(secret)
    }

    /// Every stored reference, sorted.
    pub fn refs(&self) -> Vec<&SecretRef> {
        let mut v: Vec<_> = self.secrets.keys().collect();
        v.sort();
        v
    }

    pub(crate) fn lookup(&self, secret: &SecretRef) -> Result<SecretString, SecretError> {
        self.secrets
            .get(secret)
            .cloned()
            .ok_or_else(|| SecretError::NotFound(secret.clone()))
    }
}

impl fmt::Debug for MemorySecretStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemorySecretStore")
            .field("refs", &self.refs())
            .finish()
    }
}

impl SecretStore for MemorySecretStore {
    fn get<'a>(&'a self, secret: &'a SecretRef) -> SecretFuture<'a> {
        let v = self.lookup(secret);
        Box::pin(async move { v })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalid_ref_error_does_not_quote_the_input() {
        let sentinel = "Sentinel-Value-123";
        let e = SecretRef::parse(sentinel).unwrap_err();
        assert!(!e.to_string().contains(sentinel));
        assert!(!format!("{e:?}").contains(sentinel));
    }
}
