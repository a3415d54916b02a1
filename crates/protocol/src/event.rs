//! Payloads of every event and acknowledgement of protocol v1.

use crate::{Binary, ErrorBody, ErrorCode, FileId, MemberId, RoomId};
use serde::{Deserialize, Serialize};

/// Server Unix time in milliseconds.
pub type Millis = u64;

/// A room's position: grows by one per event of the room, from 1 (docs/protocol.md,
/// "Resumable sessions"). 0 means "before any event".
pub type Pos = u64;

/// A place in a room's log: the room's epoch and a position in it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogPlace {
    /// The room's epoch (opaque; new whenever the room is created or the server restarts).
    pub epoch: String,
    /// The last position seen.
    pub pos: Pos,
}

fn is_false(b: &bool) -> bool {
    !*b
}

// ---- client → server ----

/// `join`: enter a room, handing the server an opaque sealed profile to pass on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JoinRequest {
    /// The room to join.
    pub room: RoomId,
    /// The sealed profile as base64url (no padding). Opaque to the server.
    pub profile: String,
    /// Where a client that was in the room before (and could not resume) left off: the
    /// ack then says how much it missed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<LogPlace>,
}

/// `resume`: come back to a room as the member one was, on a new connection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResumeRequest {
    /// The room.
    pub room: RoomId,
    /// The member id the client had (the token must be this member's).
    pub member: MemberId,
    /// The resume token of the last join or resume ack.
    pub token: String,
    /// The room's epoch as the client knows it.
    pub epoch: String,
    /// The last position the client has seen.
    pub pos: Pos,
}

/// `leave`: leave a room.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaveRequest {
    /// The room to leave.
    pub room: RoomId,
}

/// `msg`: a sealed message for the room, or for one member of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MsgRequest {
    /// The room it is for.
    pub room: RoomId,
    /// The sealed bytes.
    pub data: Binary,
    /// One member, for direct delivery; absent for the whole room.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<MemberId>,
    /// The client's id for this message (1–64 base64url characters), so a resend after a
    /// reconnect is recognised and not relayed twice.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
}

/// `chunk`: one encrypted chunk of a file announced by a sealed `file` message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChunkRequest {
    /// The room it is for.
    pub room: RoomId,
    /// The transfer it belongs to.
    pub file: FileId,
    /// The chunk index, from 0.
    pub seq: u32,
    /// The encrypted chunk.
    pub data: Binary,
}

// ---- acknowledgements ----

/// One member already present, as listed in a join ack.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberInfo {
    /// The member's id.
    pub member: MemberId,
    /// When it joined (server ms).
    pub at: Millis,
    /// Its sealed profile (base64url), exactly as it handed it over.
    pub profile: String,
}

/// The limits a client must respect, sent in the join ack so a UI can show them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Limits {
    /// Largest sealed `msg` data, bytes.
    pub max_message_bytes: usize,
    /// Largest `chunk` data, bytes.
    pub max_chunk_bytes: usize,
    /// Chunks per file: `seq` must be below this.
    pub max_file_chunks: u32,
    /// Largest file the room accepts, bytes (`max_file_chunks × max_chunk_bytes`).
    pub max_file_bytes: u64,
    /// Members a room may hold.
    pub max_members_per_room: usize,
}

/// Success ack of `join`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JoinAck {
    /// Always true.
    pub ok: bool,
    /// The joiner's member id (its Socket.IO id).
    pub member: MemberId,
    /// When it joined (server ms).
    pub at: Millis,
    /// Members already present, joiner excluded.
    pub members: Vec<MemberInfo>,
    /// The server's limits.
    pub limits: Limits,
    /// The room's epoch.
    #[serde(default)]
    pub epoch: String,
    /// The position of the joiner's own `join` event.
    #[serde(default)]
    pub pos: Pos,
    /// The resume token (base64url), bound to this member and room.
    #[serde(default)]
    pub token: String,
    /// How long the server holds a dropped member's place, ms.
    #[serde(default)]
    pub grace_ms: u64,
    /// How far back the server keeps a room's events for replay, ms.
    #[serde(default)]
    pub window_ms: u64,
    /// With `since`: what the joiner missed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub missed: Option<Missed>,
}

/// What a client missed while it was away and could not be replayed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Missed {
    /// `msg` events of the room it did not receive.
    pub messages: u64,
    /// False: at least `messages` (the gap reaches past the window, or the room or
    /// server restarted).
    pub exact: bool,
}

/// Success ack of `resume`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResumeAck {
    /// Always true.
    pub ok: bool,
    /// The member id the client had, now its id on this connection.
    pub member: MemberId,
    /// When it first joined (server ms).
    pub at: Millis,
    /// A fresh resume token; the one presented is dead.
    pub token: String,
    /// The room's epoch.
    pub epoch: String,
    /// The room's position after the replay.
    pub pos: Pos,
    /// Events replayed after this ack.
    pub replayed: u64,
    /// What could not be replayed (the window lost part of the gap), if anything.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub missed: Option<Missed>,
    /// The server's limits.
    pub limits: Limits,
}

/// Success ack of `msg`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct MsgAck {
    /// Always true.
    pub ok: bool,
    /// When the server accepted it (server ms); receivers see the same `ts`.
    pub ts: Millis,
    /// Its position in the room.
    #[serde(default)]
    pub pos: Pos,
    /// True when this was a resend of a message already relayed (same id): not relayed again.
    #[serde(default, skip_serializing_if = "is_false")]
    pub duplicate: bool,
}

/// Success ack of `leave` and `chunk`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct OkAck {
    /// Always true.
    pub ok: bool,
}

impl OkAck {
    /// `{ok: true}`.
    pub const OK: OkAck = OkAck { ok: true };
}

/// Failure ack of any request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorAck {
    /// Always false.
    pub ok: bool,
    /// What went wrong.
    pub error: ErrorBody,
}

impl ErrorAck {
    /// A failure ack with `code` and a human message.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            ok: false,
            error: ErrorBody {
                code,
                message: message.into(),
            },
        }
    }
}

// ---- server → client ----

/// Why a member left a room.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LeaveReason {
    /// It sent `leave`.
    Left,
    /// Its connection closed.
    Disconnected,
    /// It stopped answering pings, could not keep up with its traffic, or its node died.
    Timeout,
    /// The server is shutting down.
    ServerRestart,
}

/// `presence`: someone joined or left a room you are in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum PresenceEvent {
    /// Someone joined.
    Join {
        /// The room.
        room: RoomId,
        /// Who.
        member: MemberId,
        /// When (server ms).
        at: Millis,
        /// Their sealed profile (base64url).
        profile: String,
        /// The room position.
        #[serde(default)]
        pos: Pos,
    },
    /// Someone left.
    Leave {
        /// The room.
        room: RoomId,
        /// Who.
        member: MemberId,
        /// When (server ms): when its connection dropped, for a leave after the grace.
        at: Millis,
        /// Why.
        reason: LeaveReason,
        /// The room position.
        #[serde(default)]
        pos: Pos,
    },
    /// Someone's connection dropped: it is reconnecting, and still a member for the grace.
    Away {
        /// The room.
        room: RoomId,
        /// Who.
        member: MemberId,
        /// When (server ms).
        at: Millis,
        /// The room position.
        #[serde(default)]
        pos: Pos,
    },
    /// Someone who was away resumed: nothing was missed, nobody left.
    Back {
        /// The room.
        room: RoomId,
        /// Who.
        member: MemberId,
        /// When (server ms).
        at: Millis,
        /// The room position.
        #[serde(default)]
        pos: Pos,
    },
}

impl PresenceEvent {
    /// The member the event is about.
    pub fn member(&self) -> &MemberId {
        match self {
            Self::Join { member, .. }
            | Self::Leave { member, .. }
            | Self::Away { member, .. }
            | Self::Back { member, .. } => member,
        }
    }

    /// Sets the room position.
    pub fn set_pos(&mut self, p: Pos) {
        match self {
            Self::Join { pos, .. }
            | Self::Leave { pos, .. }
            | Self::Away { pos, .. }
            | Self::Back { pos, .. } => *pos = p,
        }
    }
}

/// `msg` as delivered: a member's sealed message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MsgEvent {
    /// The room.
    pub room: RoomId,
    /// The sender.
    pub from: MemberId,
    /// When the server accepted it (server ms).
    pub ts: Millis,
    /// The sealed bytes.
    pub data: Binary,
    /// Set on direct delivery: the recipient.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<MemberId>,
    /// The room position.
    #[serde(default)]
    pub pos: Pos,
}

/// `chunk` as delivered: a file chunk from a member.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChunkEvent {
    /// The room.
    pub room: RoomId,
    /// The sender.
    pub from: MemberId,
    /// The transfer.
    pub file: FileId,
    /// The chunk index.
    pub seq: u32,
    /// The encrypted chunk.
    pub data: Binary,
    /// The room position.
    #[serde(default)]
    pub pos: Pos,
}

/// Codes of `notice` that are not request errors.
pub mod notice_codes {
    /// Graceful shutdown has begun; the connection closes within seconds.
    pub const SHUTTING_DOWN: &str = "shutting_down";
}

/// `notice`: server-side news.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Notice {
    /// `shutting_down`, or an error code for a refused ack-less request.
    pub code: String,
    /// For people.
    pub message: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn room() -> RoomId {
        RoomId::new("AAAAAAAAAAAAAAAAAAAAAA").unwrap()
    }

    #[test]
    fn presence_round_trips_with_kind_tag() {
        let join = PresenceEvent::Join {
            room: room(),
            member: MemberId::new("sid1").unwrap(),
            at: 5,
            profile: "cHJvZmlsZQ".into(),
            pos: 3,
        };
        let v = serde_json::to_value(&join).unwrap();
        assert_eq!(
            v,
            json!({"kind":"join","room":"AAAAAAAAAAAAAAAAAAAAAA","member":"sid1","at":5,"profile":"cHJvZmlsZQ","pos":3})
        );
        assert_eq!(serde_json::from_value::<PresenceEvent>(v).unwrap(), join);
        let leave = PresenceEvent::Leave {
            room: room(),
            member: MemberId::new("sid1").unwrap(),
            at: 6,
            reason: LeaveReason::ServerRestart,
            pos: 4,
        };
        let v = serde_json::to_value(&leave).unwrap();
        assert_eq!(v["reason"], "server_restart");
        assert_eq!(serde_json::from_value::<PresenceEvent>(v).unwrap(), leave);
        // Away and back carry no profile and no reason; a v1 event without `pos` reads as 0.
        let away: PresenceEvent = serde_json::from_value(
            json!({"kind":"away","room":"AAAAAAAAAAAAAAAAAAAAAA","member":"sid1","at":7}),
        )
        .unwrap();
        assert_eq!(away.member().as_str(), "sid1");
        assert!(matches!(away, PresenceEvent::Away { pos: 0, .. }));
    }

    #[test]
    fn requests_refuse_bad_shapes() {
        let ok = json!({"room":"AAAAAAAAAAAAAAAAAAAAAA","profile":"x"});
        assert!(serde_json::from_value::<JoinRequest>(ok).is_ok());
        for bad in [
            json!({"room":"short","profile":"x"}),
            json!({"room":"AAAAAAAAAAAAAAAAAAAAAA"}),
            json!({"room":7,"profile":"x"}),
        ] {
            assert!(serde_json::from_value::<JoinRequest>(bad).is_err());
        }
        assert!(
            serde_json::from_value::<ChunkRequest>(
                json!({"room":"AAAAAAAAAAAAAAAAAAAAAA","file":"0123456789abcdef","seq":-1,"data":"x"})
            )
            .is_err()
        );
    }

    #[test]
    fn error_ack_shape() {
        let v = serde_json::to_value(ErrorAck::new(ErrorCode::RoomFull, "room is full")).unwrap();
        assert_eq!(
            v,
            json!({"ok":false,"error":{"code":"room_full","message":"room is full"}})
        );
    }

    #[test]
    fn direct_msg_carries_to_only_when_set() {
        let m = MsgEvent {
            room: room(),
            from: MemberId::new("a").unwrap(),
            ts: 1,
            data: Binary::default(),
            to: None,
            pos: 1,
        };
        assert!(serde_json::to_value(&m).unwrap().get("to").is_none());
    }
}
