//! StreamChat client library: a Socket.IO v5 client speaking protocol v1, and end-to-end
//! encrypted room sessions on top of it: connect, join, resume, send texts and files.
//! No terminal or command-line code: the programs built on it live elsewhere (the
//! terminal UI and the JSON mode in the `streamchat` binary, `crates/cli`; the load
//! generator in `streamchat-loadgen`). Its configuration types are plain structs.
//!
//! Layers, bottom up:
//! - [`packet`], [`transport`] and [`Client`]: Socket.IO over WebSocket over TCP or TLS.
//!   Written for this protocol rather than taken from a general Socket.IO crate: the best
//!   kept one, `rust_socketio`, cannot send or receive a binary attachment inside an
//!   object (its issue #373), which is exactly what `msg` and `chunk` are.
//! - [`session`]: one person in one room: sealed signed profile, verified roster, sealed
//!   text and files, presence, reconnection, rate-limit backoff. Uses `streamchat-crypto`
//!   and never shows a key to the layers above.
//! - [`invite`] and [`display`]: invite links; times, alerts and untrusted text as a
//!   terminal shows them.

mod client;
pub mod display;
pub mod invite;
pub mod packet;
pub mod session;
pub mod transport;

pub use client::{
    Acked, Client, ClientError, ConnectOptions, FrameReader, Incoming, ServerEvent, decode_ack,
    websocket_url,
};
pub use invite::{Invite, InviteError, new_room_link};
pub use session::{
    FileInfo, Member, SendId, Session, SessionClosed, SessionConfig, SessionError, SessionEvent,
};
pub use streamchat_crypto::RoomKind;
