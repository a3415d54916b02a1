//! The StreamChat wire contract, v1 (`docs/protocol.md`), typed in one place.
//!
//! Event names are constants, identifiers are validated newtypes, and every payload that
//! crosses the wire is a serde type here: the server, the Rust client and the tests share
//! them, so nobody builds JSON by hand. Validation happens while deserializing, so a
//! payload that parses is already well-formed (room ids, file ids, binary data).

mod error;
mod event;
mod id;

pub use error::{ErrorBody, ErrorCode};
pub use event::*;
pub use id::{Binary, FileId, IdError, MemberId, RoomId};

/// Socket.IO event names of protocol v1.
pub mod events {
    /// Client → server: join a room. Server → client: never.
    pub const JOIN: &str = "join";
    /// Client → server: come back to a room as the member one was, with a resume token.
    pub const RESUME: &str = "resume";
    /// Client → server: leave a room.
    pub const LEAVE: &str = "leave";
    /// Both directions: a sealed message.
    pub const MSG: &str = "msg";
    /// Both directions: one encrypted file chunk.
    pub const CHUNK: &str = "chunk";
    /// Server → client: someone joined or left a room you are in.
    pub const PRESENCE: &str = "presence";
    /// Server → client: server-side news (shutdown, an ack-less request refused, …).
    pub const NOTICE: &str = "notice";
}
