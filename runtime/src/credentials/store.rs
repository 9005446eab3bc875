//! The host's secret store behind a trait, and the reference that names a
//! secret (never a value).

use secrecy::SecretString;
use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::str::FromStr;
use std::sync::Arc;

/// The longest [`SecretRef`], in bytes.
const MAX_REF_BYTES: usize = 128;

/// The name of a secret in the host's store (docs/spec.md §9):
/// `[a-z0-9][a-z0-9._/-]{0,127}`. It names a secret and is shown in reviews
/// and errors; it is never a value.
///
/// ```
/// use netgrant_runtime::SecretRef;
/// let r: SecretRef = "discord/bot".parse().unwrap();
/// assert_eq!(r.as_str(), "discord/bot");
/// assert!(SecretRef::new("Discord/Bot").is_err());
/// assert!(SecretRef::new("https://vault/x").is_err());
/// ```
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SecretRef(Box<str>);

/// A string that is not a valid [`SecretRef`]. Carries no part of the
/// string: a mistyped reference may be a pasted value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("invalid secret reference: expected [a-z0-9][a-z0-9._/-]{{0,127}}")]
pub struct InvalidSecretRef;

impl SecretRef {
    /// Checks the grammar.
    pub fn new(s: &str) -> Result<Self, InvalidSecretRef> {
        if is_valid_ref(s) {
            Ok(SecretRef(s.into()))
        } else {
            Err(InvalidSecretRef)
        }
    }

    /// The reference as written.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// `[a-z0-9][a-z0-9._/-]{0,127}`. The grammar already excludes `://` (no
/// `:`) and whitespace.
pub(crate) fn is_valid_ref(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= MAX_REF_BYTES
        && matches!(b[0], b'a'..=b'z' | b'0'..=b'9')
        && b[1..]
            .iter()
            .all(|c| matches!(c, b'a'..=b'z' | b'0'..=b'9' | b'.' | b'_' | b'/' | b'-'))
}

impl FromStr for SecretRef {
    type Err = InvalidSecretRef;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        SecretRef::new(s)
    }
}

impl fmt::Display for SecretRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for SecretRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretRef({:?})", &*self.0)
    }
}

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
    fn ref_grammar() {
        for ok in ["a", "0", "discord/bot", "a.b_c-d/e", &"a".repeat(128)] {
            assert!(SecretRef::new(ok).is_ok(), "{ok:?}");
        }
        for bad in [
            "",
            "A",
            "/a",
            ".a",
            "-a",
            "_a",
            "a b",
            "a\n",
            "https://x",
            "a:b",
            "é",
            &"a".repeat(129),
        ] {
            assert_eq!(SecretRef::new(bad), Err(InvalidSecretRef), "{bad:?}");
        }
    }

    #[test]
    fn invalid_ref_error_does_not_quote_the_input() {
        let sentinel = "Sentinel-Value-123";
        let e = SecretRef::new(sentinel).unwrap_err();
        assert!(!e.to_string().contains(sentinel));
        assert!(!format!("{e:?}").contains(sentinel));
    }
}
