//! The websocket capability: [`WebSocketHost`] (one per plugin instance),
//! the per-connection task that owns each socket, the handshake, and frame
//! tracking above TLS.

mod frames;
mod handshake;
mod host;
mod task;
mod types;

pub use host::WebSocketHost;
pub use types::{ConnectionId, ConnectionStatus, Incoming, OpenOptions, State};
