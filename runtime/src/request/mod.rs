//! The request capability: [`RequestHost`] (one per plugin instance) carries
//! one-shot HTTP for a plugin — authorize, resolve once, check every answer,
//! connect to a checked address, TLS, then hyper's connection-level client
//! over that very stream. The plugin gets a [`Response`], never a socket.

mod exchange;
mod headers;
mod host;
mod pool;
mod types;

pub use host::RequestHost;
pub use types::{RequestOptions, Response};
