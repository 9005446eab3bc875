//! Name resolution behind a trait, so tests inject answers and the host never
//! resolves a name twice.

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::Arc;

/// A boxed resolution future.
pub type ResolveFuture<'a> = Pin<Box<dyn Future<Output = io::Result<Vec<IpAddr>>> + Send + 'a>>;

/// Resolves a host name (lowercase A-label, no trailing dot) to addresses.
/// Implementations must be cancellable: the host drops the future at its
/// deadline.
pub trait Resolver: Send + Sync + 'static {
    /// Every address the name resolves to (empty: it did not resolve).
    fn resolve<'a>(&'a self, host: &'a str) -> ResolveFuture<'a>;
}

/// The default resolver: `hickory-resolver` with the system configuration
/// (cancellable, unlike `getaddrinfo` on a blocking thread).
pub struct HickoryResolver {
    inner: hickory_resolver::TokioResolver,
}

impl HickoryResolver {
    /// Reads the system configuration (`/etc/resolv.conf`).
    pub fn from_system() -> io::Result<Self> {
        let builder = hickory_resolver::TokioResolver::builder_tokio()
            .map_err(|e| io::Error::other(e.to_string()))?;
        let inner = builder
            .build()
            .map_err(|e| io::Error::other(e.to_string()))?;
        Ok(HickoryResolver { inner })
    }
}

impl Resolver for HickoryResolver {
    fn resolve<'a>(&'a self, host: &'a str) -> ResolveFuture<'a> {
        Box::pin(async move {
            // A trailing dot makes the name absolute: no search-domain surprises.
            let fqdn = format!("{host}.");
            match self.inner.lookup_ip(fqdn.as_str()).await {
                Ok(l) => Ok(l.iter().collect()),
                Err(e) if e.is_no_records_found() || e.is_nx_domain() => Ok(Vec::new()),
                Err(e) => Err(io::Error::other(e.to_string())),
            }
        })
    }
}

/// Fixed answers, for tests and for `netgrant connect --resolve`. Names it
/// does not know resolve to nothing.
#[derive(Clone, Debug, Default)]
pub struct StaticResolver {
    answers: HashMap<String, Vec<IpAddr>>,
}

impl StaticResolver {
    /// An empty table.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds answers for a name (normalized: lowercase, no trailing dot).
    pub fn with(mut self, host: &str, addrs: impl IntoIterator<Item = IpAddr>) -> Self {
        let key = host.trim_end_matches('.').to_ascii_lowercase();
        self.answers.entry(key).or_default().extend(addrs);
        self
    }
}

impl Resolver for StaticResolver {
    fn resolve<'a>(&'a self, host: &'a str) -> ResolveFuture<'a> {
        let v = self.answers.get(host).cloned().unwrap_or_default();
        Box::pin(async move { Ok(v) })
    }
}

impl<R: Resolver + ?Sized> Resolver for Arc<R> {
    fn resolve<'a>(&'a self, host: &'a str) -> ResolveFuture<'a> {
        (**self).resolve(host)
    }
}
