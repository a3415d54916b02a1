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
    /// No session of this room holds the token.
    #[error(
        "unknown or expired session (an old or copied token, a token of another room, a grace that ran out, or a restarted server): join again"
    )]
    UnknownSession,
    /// The resume names a position the room has not reached.
    #[error("position {pos} is ahead of the room (at {last})")]
    FuturePosition {
        /// The position given.
        pos: u64,
        /// The room's last position.
        last: u64,
    },
    /// A resume on a connection already in rooms as another member.
    #[error("this connection is already in rooms as another member: resume before joining")]
    ResumeAfterJoin,
    /// The cluster store that positions room events cannot be reached.
    #[error("the cluster store is unreachable: nothing was sent; try again in a moment")]
    StoreUnavailable,
    /// A message id that is not 1-64 base64url characters.
    #[error("message id must be 1 to 64 characters of A-Z, a-z, 0-9, - and _")]
    BadMessageId,
}

impl RequestError {
    /// The client-visible code: the only mapping from failures to codes.
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::Malformed(_)
            | Self::ProfileNotBase64Url
            | Self::FuturePosition { .. }
            | Self::ResumeAfterJoin
            | Self::BadMessageId => ErrorCode::BadRequest,
            Self::UnknownSession => ErrorCode::ResumeFailed,
            Self::NotMember | Self::RecipientNotMember => ErrorCode::NotMember,
            Self::MessageTooLarge { .. }
            | Self::ChunkTooLarge { .. }
            | Self::FileTooLarge { .. }
            | Self::ProfileTooLarge { .. } => ErrorCode::TooLarge,
            Self::RateLimited => ErrorCode::RateLimited,
            Self::RoomFull(_) => ErrorCode::RoomFull,
            Self::TooManyRooms(_) => ErrorCode::TooManyRooms,
            Self::ShuttingDown | Self::StoreUnavailable => ErrorCode::Unavailable,
        }
    }

    /// The failure ack.
    pub fn to_ack(&self) -> ErrorAck {
        ErrorAck::new(self.code(), self.to_string())
    }
}
