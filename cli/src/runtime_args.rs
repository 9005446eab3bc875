//! What `connect` and `request` share: the flags that wire a runtime host
//! (`--resolve`, `--ca`, `--audit`, `--credential`, `--secrets`) and the
//! one place that turns them into a resolver, TLS roots, an audit sink and a
//! secret store. Everything here is checked before any runtime starts, so a
//! bad flag or file exits 2 with nothing opened.

use crate::authorize::ResolveFlags;
use crate::input;
use crate::output::print_stderr;
use crate::Exit;
use clap::Args;
use netgrant_policy::redact::escape_terminal;
use netgrant_runtime::{
    AuditSink, FileSecretStore, HickoryResolver, JsonLinesSink, ResolveFuture, Resolver, Roots,
    SecretStore, StaticResolver,
};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The flags that wire a runtime host.
#[derive(Args, Debug)]
pub struct HostArgs {
    /// Fixed DNS answers, `HOST=IP[,IP…]` (repeatable). When given, names are
    /// resolved only from this table (an unlisted name does not resolve);
    /// otherwise the system DNS configuration is used.
    #[arg(long = "resolve", value_name = "HOST=IP[,IP…]")]
    pub resolve: Vec<String>,
    /// Trust exactly the CA certificates in this PEM file for `https`/`wss`
    /// (default: the bundled Mozilla roots; SSL_CERT_FILE is never read).
    #[arg(long, value_name = "FILE.pem")]
    pub ca: Option<PathBuf>,
    /// Append an audit record (JSON line) per decision and per finished
    /// connection or request to FILE: the format `netgrant replay` reads
    /// (docs/spec.md §11).
    #[arg(long, value_name = "FILE")]
    pub audit: Option<PathBuf>,
    /// Ask the host to inject this credential: a name the target declares
    /// and the grant binds (repeatable; docs/spec.md §9.3). Its value never
    /// reaches the output: the host shows `{{credential:NAME}}` instead.
    #[arg(long = "credential", value_name = "NAME")]
    pub credentials: Vec<String>,
    /// Where credential values come from: a TOML file of
    /// `"secret/ref" = "value"`, refused unless it is a regular file that
    /// only its owner can read or write. Nothing is read from the environment.
    #[arg(long, value_name = "FILE")]
    pub secrets: Option<PathBuf>,
}

/// The host's wiring, built from [`HostArgs`].
pub struct Wiring {
    /// Custom TLS roots (`--ca`), else the bundled ones.
    pub roots: Option<Roots>,
    /// Where decisions and ends are recorded (`--audit`).
    pub audit: Option<Arc<dyn AuditSink>>,
    /// Where credential values come from (`--secrets`).
    pub secrets: Option<Arc<dyn SecretStore>>,
}

impl HostArgs {
    /// Reads the CA, audit and secrets files. Errors are printed; the exit
    /// is 2.
    pub fn wire(&self) -> Result<Wiring, Exit> {
        let fail = |msg: String| {
            print_stderr(&msg);
            Exit::Invalid
        };
        let roots = match &self.ca {
            Some(ca) => Some(Roots::Custom(Arc::new(load_roots(ca).map_err(fail)?))),
            None => None,
        };
        let audit = match &self.audit {
            Some(path) => Some(open_audit(path).map_err(fail)?),
            None => None,
        };
        let secrets = match &self.secrets {
            Some(path) => Some(open_secrets(path).map_err(fail)?),
            None => None,
        };
        Ok(Wiring {
            roots,
            audit,
            secrets,
        })
    }
}

/// Reads a PEM file of CA certificates (at most 1 MiB).
pub(crate) fn load_roots(path: &Path) -> Result<rustls::RootCertStore, String> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::CertificateDer;
    let bytes = input::read(path, 1024 * 1024).map_err(|d| input::render_human(&[d]))?;
    let shown = path.display().to_string();
    let certs = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("error: --ca {shown:?} is not a valid PEM file: {e}\n"))?;
    let mut store = rustls::RootCertStore::empty();
    let (added, _ignored) = store.add_parsable_certificates(certs);
    if added == 0 {
        return Err(format!(
            "error: --ca {shown:?} holds no usable CA certificate (expected PEM `CERTIFICATE` blocks)\n"
        ));
    }
    Ok(store)
}

/// Opens (creating, appending to) an audit file: records of earlier runs
/// are kept, as a log is.
pub(crate) fn open_audit(path: &Path) -> Result<Arc<dyn AuditSink>, String> {
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map(|f| Arc::new(JsonLinesSink::new(f)) as Arc<dyn AuditSink>)
        .map_err(|e| {
            format!(
                "error: cannot open the audit file {}: {}\n",
                escape_terminal(&path.display().to_string()),
                e.kind()
            )
        })
}

/// Opens the secrets file (the checks are the store's: a regular file, the
/// caller's own, no group or other permission). Its errors name the file
/// and at most a key, never a value.
pub(crate) fn open_secrets(path: &Path) -> Result<Arc<dyn SecretStore>, String> {
    FileSecretStore::open(path)
        .map(|s| Arc::new(s) as Arc<dyn SecretStore>)
        .map_err(|e| format!("error[{}]: {}\n", e.code(), escape_terminal(&e.to_string())))
}

/// A resolver standing in for the system one when its configuration cannot
/// be read: every name fails to resolve (`resolution_failed`).
struct Unavailable;

impl Resolver for Unavailable {
    fn resolve<'a>(&'a self, _host: &'a str) -> ResolveFuture<'a> {
        Box::pin(async {
            Err(std::io::Error::other(
                "the system DNS configuration is unavailable",
            ))
        })
    }
}

/// The resolver the `--resolve` flags ask for: exactly their table when any
/// is given, else the system DNS configuration (or, when that cannot be
/// read, a warning and a resolver under which nothing resolves).
pub(crate) fn resolver_for(resolve: &ResolveFlags) -> Arc<dyn Resolver> {
    if resolve.is_empty() {
        match HickoryResolver::from_system() {
            Ok(r) => Arc::new(r),
            Err(e) => {
                print_stderr(&format!(
                    "warning: cannot read the system DNS configuration ({}); names will not resolve\n",
                    escape_terminal(&e.to_string())
                ));
                Arc::new(Unavailable)
            }
        }
    } else {
        let mut r = StaticResolver::new();
        for (host, ips) in resolve.iter() {
            r = r.with(host, ips.iter().copied());
        }
        Arc::new(r)
    }
}
