//! Client-visible error codes: the only failure vocabulary a client ever sees.

use serde::{Deserialize, Serialize};

/// The error codes of protocol v1. Every refused request is answered with one of these.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// The payload is malformed: wrong types, missing fields, a bad room id.
    BadRequest,
    /// The connection is not a member of the room (or the `to` member is not).
    NotMember,
    /// A message, chunk, profile or file is over its configured limit.
    TooLarge,
    /// The connection exceeded its message or byte rate, or its address its connections.
    RateLimited,
    /// The room already has its configured maximum of members.
    RoomFull,
    /// The connection is already in its configured maximum of rooms.
    TooManyRooms,
    /// The server cannot serve the request now (shutting down, a dependency down).
    Unavailable,
    /// A `resume` named no session the server holds: a wrong, old or copied token, a
    /// token of another room, a grace that ran out, or a restarted server.
    ResumeFailed,
}

impl ErrorCode {
    /// Every code, for metrics labels and exhaustive tests.
    pub const ALL: [ErrorCode; 8] = [
        Self::BadRequest,
        Self::NotMember,
        Self::TooLarge,
        Self::RateLimited,
        Self::RoomFull,
        Self::TooManyRooms,
        Self::Unavailable,
        Self::ResumeFailed,
    ];

    /// The wire spelling, e.g. `"bad_request"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::BadRequest => "bad_request",
            Self::NotMember => "not_member",
            Self::TooLarge => "too_large",
            Self::RateLimited => "rate_limited",
            Self::RoomFull => "room_full",
            Self::TooManyRooms => "too_many_rooms",
            Self::Unavailable => "unavailable",
            Self::ResumeFailed => "resume_failed",
        }
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `{code, message}`: the body of a failed ack and of a `notice`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// What went wrong, machine-readable.
    pub code: ErrorCode,
    /// What went wrong, for people. Never contains message content.
    pub message: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_serialize_as_their_wire_names() {
        for code in ErrorCode::ALL {
            let json = serde_json::to_string(&code).unwrap();
            assert_eq!(json, format!("\"{}\"", code.as_str()));
            assert_eq!(serde_json::from_str::<ErrorCode>(&json).unwrap(), code);
        }
    }
}
