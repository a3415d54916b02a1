//! Why a request was refused, and the one place that maps it to a client-visible code.

use streamchat_protocol::{ErrorAck, ErrorCode};

/// A refused request. The message goes to the client; it never contains content.
#[derive(Debug, thiserror::Error)]
pub enum RequestError {
    /// The payload did not parse: wrong types, missing fields, a bad id.
    #[error("malformed request: {0}")]
    Malformed(String),
    /// The profile is not base64url.
    #[error("profile must be base64url without padding")]
    ProfileNotBase64Url,
    /// The connection is not in the room.
    #[error("not a member of this room")]
    NotMember,
    /// The `to` member is not in the room.
    #[error("the recipient is not a member of this room")]
    RecipientNotMember,
    /// A sealed message over the limit.
    #[error("message is {size} bytes; the limit is {max}")]
    MessageTooLarge {
        /// Its size.
        size: usize,
        /// The limit.
        max: usize,
    },
    /// A chunk over the limit.
    #[error("chunk is {size} bytes; the limit is {max}")]
    ChunkTooLarge {
        /// Its size.
        size: usize,
        /// The limit.
        max: usize,
    },
    /// A chunk index beyond the largest file.
    #[error("chunk seq {seq} is beyond the limit of {max} chunks per file")]
    FileTooLarge {
        /// The index.
        seq: u32,
        /// Chunks per file.
        max: u32,
    },
    /// A profile over the limit.
    #[error("profile is {size} characters; the limit is {max}")]
    ProfileTooLarge {
        /// Its size.
        size: usize,
        /// The limit.
        max: usize,
    },
    /// Over the message or byte rate.
    #[error("too many messages or bytes per second; slow down")]
    RateLimited,
    /// The room is full.
    #[error("room is full ({0} members)")]
    RoomFull(usize),
    /// The connection is in its maximum of rooms.
    #[error("this connection is already in {0} rooms, the maximum")]
    TooManyRooms(usize),
    /// Graceful shutdown has begun.
    #[error("the server is shutting down")]
    ShuttingDown,
}

impl RequestError {
    /// The client-visible code: the only mapping from failures to codes.
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::Malformed(_) | Self::ProfileNotBase64Url => ErrorCode::BadRequest,
            Self::NotMember | Self::RecipientNotMember => ErrorCode::NotMember,
            Self::MessageTooLarge { .. }
            | Self::ChunkTooLarge { .. }
            | Self::FileTooLarge { .. }
            | Self::ProfileTooLarge { .. } => ErrorCode::TooLarge,
            Self::RateLimited => ErrorCode::RateLimited,
            Self::RoomFull(_) => ErrorCode::RoomFull,
            Self::TooManyRooms(_) => ErrorCode::TooManyRooms,
            Self::ShuttingDown => ErrorCode::Unavailable,
        }
    }

    /// The failure ack.
    pub fn to_ack(&self) -> ErrorAck {
        ErrorAck::new(self.code(), self.to_string())
    }
}
