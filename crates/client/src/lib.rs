//! StreamChat client library: a Socket.IO v5 client over WebSocket speaking protocol v1.
//!
//! Written for this protocol rather than taken from a general Socket.IO crate: the best
//! kept one, `rust_socketio`, cannot send or receive a binary attachment inside an
//! object (its issue #373), which is exactly what `msg` and `chunk` are. The transport
//! is a small, tested codec (`packet`) and one connection type (`Client`).

mod client;
pub mod packet;

pub use client::{Acked, Client, ClientError, ServerEvent, websocket_url};
