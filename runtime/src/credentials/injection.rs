//! One connection's or request's credentials, resolved: what the host puts
//! in headers, what it substitutes in text messages, and the masker for
//! everything it hands back. Built after the decision, before any socket.

use super::inject::{
    format_header_value, format_message_value, placeholder, substitute_placeholders,
};
use super::mask::Masker;
use super::store::SecretStore;
use crate::error::{ErrorKind, HostError};
use netgrant_policy::{BoundCredential, CredentialPlacement};
use secrecy::{ExposeSecret, SecretString};
use std::fmt;
use std::time::Duration;
use zeroize::Zeroizing;

/// The resolved credentials of one connection or request. Its `Debug`
/// shows names only.
pub(crate) struct Injection {
    /// Header credentials: lowercase header name and the formatted value.
    pub headers: Vec<(String, Zeroizing<String>)>,
    /// `message = true` credentials: name and value.
    messages: Vec<(String, SecretString)>,
    /// Masks every injected value in what goes back to the plugin.
    pub masker: Masker,
    /// The names injected, sorted (audit records, status).
    pub names: Vec<String>,
}

impl fmt::Debug for Injection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Injection")
            .field("names", &self.names)
            .finish_non_exhaustive()
    }
}

impl Injection {
    /// Nothing injected, nothing masked.
    pub(crate) fn none() -> Self {
        Injection {
            headers: Vec::new(),
            messages: Vec::new(),
            masker: Masker::empty(),
            names: Vec::new(),
        }
    }

    /// Whether anything is injected.
    pub(crate) fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    /// Looks up every bound credential in `store` (within `timeout` in all)
    /// and prepares it. `shown` is the redacted URL, for messages. Errors
    /// name a credential or a SecretRef, never a value.
    pub(crate) async fn resolve(
        store: Option<&dyn SecretStore>,
        bound: &[BoundCredential],
        timeout: Duration,
        shown: &str,
    ) -> Result<Self, HostError> {
        if bound.is_empty() {
            return Ok(Injection::none());
        }
        let Some(store) = store else {
            return Err(HostError::new(
                ErrorKind::Credential("secret_store_failed"),
                format!(
                    "{shown} needs credential `{}`, and this host has no secret store",
                    bound[0].name
                ),
            ));
        };
        let fetch = async {
            let mut values = Vec::with_capacity(bound.len());
            for b in bound {
                let v = store.get(&b.secret_ref).await.map_err(|e| {
                    HostError::new(
                        ErrorKind::Credential(e.code()),
                        format!("credential `{}` for {shown}: {e}", b.name),
                    )
                })?;
                values.push(v);
            }
            Ok::<_, HostError>(values)
        };
        let values = match tokio::time::timeout(timeout, fetch).await {
            Ok(v) => v?,
            Err(_) => {
                return Err(HostError::new(
                    ErrorKind::Timeout,
                    format!("the secret store did not answer within {timeout:?} for {shown}"),
                ))
            }
        };
        let mut inj = Injection::none();
        let mut pairs = Vec::with_capacity(bound.len());
        for (b, value) in bound.iter().zip(values) {
            match &b.placement {
                CredentialPlacement::Header(h) => {
                    let v = format_header_value(&b.format, &value).map_err(|e| {
                        HostError::new(
                            ErrorKind::Credential(e.code()),
                            format!("credential `{}`: {e}", b.name),
                        )
                    })?;
                    inj.headers.push((h.clone(), v));
                }
                CredentialPlacement::Message => {}
            }
            pairs.push((
                Zeroizing::new(value.expose_secret().to_owned()),
                placeholder(&b.name),
            ));
            if b.placement == CredentialPlacement::Message {
                // The declaration's `format` applies in a message as in a
                // header: what goes out is what review showed.
                let v = format_message_value(&b.format, &value).map_err(|e| {
                    HostError::new(
                        ErrorKind::Credential(e.code()),
                        format!("credential `{}`: {e}", b.name),
                    )
                })?;
                inj.messages.push((b.name.clone(), v));
            }
            inj.names.push(b.name.clone());
        }
        inj.masker =
            Masker::new(pairs.iter().map(|(v, p)| (v.as_str(), p.as_str()))).map_err(|e| {
                HostError::new(
                    ErrorKind::Credential("secret_store_failed"),
                    format!("a credential for {shown} cannot be masked: {e}"),
                )
            })?;
        Ok(inj)
    }

    /// An outgoing text message with its placeholders replaced by this
    /// connection's `message = true` values. Text without a placeholder is
    /// returned as it is.
    pub(crate) fn substitute(&self, text: String) -> Result<Zeroizing<String>, HostError> {
        if !text.contains(super::inject::PLACEHOLDER_PREFIX) {
            return Ok(Zeroizing::new(text));
        }
        let bound: Vec<(&str, &SecretString)> =
            self.messages.iter().map(|(n, v)| (n.as_str(), v)).collect();
        substitute_placeholders(&text, &bound)
            .map_err(|e| HostError::new(ErrorKind::Credential(e.code()), e.to_string()))
    }
}
