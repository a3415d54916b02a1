//! Many nodes as one server: the seam where Redis (and Kafka) slot in.
//!
//! Members connected to this node live in the room registry (`relay.rs`), which delivers
//! in room order under each room's lock. A single node (`SingleNode`) positions its
//! rooms' events itself. A cluster (`RedisCluster`) keeps one log per room for every node
//! (`log`): each room event, with the membership change it carries, gets its position
//! there; the node that placed it applies it at once, the others hear it on the bus
//! (`Inbound`), and every node applies the log in position order (docs/reliability.md).

use serde::{Deserialize, Serialize};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use streamchat_protocol::{
    ChunkEvent, MemberId, MemberInfo, Millis, MsgEvent, Pos, PresenceEvent, RoomId,
};

/// A boxed future, so a cluster can be used as a trait object.
pub type ClusterFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// The shared store cannot be reached.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cluster store unavailable")]
pub struct Unavailable;

/// One room event as it travels between nodes. The server never looks inside `data`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "t", content = "e", rename_all = "snake_case")]
pub enum RoomEvent {
    /// A member joined or left.
    Presence(PresenceEvent),
    /// A sealed message (with `to` for direct delivery).
    Msg(MsgEvent),
    /// A file chunk.
    Chunk(ChunkEvent),
}

impl RoomEvent {
    /// Sets the position (and, for a message, the timestamp) the log gave it.
    pub fn place(&mut self, pos: Pos, ts: Millis) {
        match self {
            Self::Presence(p) => p.set_pos(pos),
            Self::Msg(m) => {
                m.pos = pos;
                m.ts = ts;
            }
            Self::Chunk(c) => c.pos = pos,
        }
    }

    /// Its position.
    pub fn pos(&self) -> Pos {
        match self {
            Self::Presence(
                PresenceEvent::Join { pos, .. }
                | PresenceEvent::Leave { pos, .. }
                | PresenceEvent::Away { pos, .. }
                | PresenceEvent::Back { pos, .. },
            ) => *pos,
            Self::Msg(m) => m.pos,
            Self::Chunk(c) => c.pos,
        }
    }
}

/// A room event and the node it comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BusEvent {
    /// The node that accepted it (its own events are not delivered twice).
    pub node: String,
    /// The room.
    pub room: RoomId,
    /// What happened.
    pub event: RoomEvent,
    /// With a cluster log: the room's epoch its position belongs to.
    #[serde(default)]
    pub epoch: String,
    /// A message with a client id (counted in gaps; see `log::Kind::Msg`).
    #[serde(default)]
    pub counted: bool,
}

/// Where an event landed in a room's cluster-wide log.
#[derive(Debug, Clone)]
pub struct Placed {
    /// The room's epoch.
    pub epoch: Arc<str>,
    /// The event's position.
    pub pos: Pos,
    /// Its timestamp (monotonic within the room).
    pub ts: Millis,
    /// A resend already in the log: `pos` and `ts` are the first copy's; nothing was added.
    pub duplicate: bool,
}

/// What to put in a room's cluster-wide log, with what it changes in the shared store.
#[derive(Debug, Clone)]
pub enum LogOp {
    /// A message, a chunk or `back`/`away` of a member: `dedup` names a resend.
    Event {
        /// The event (position and time filled in by the log).
        event: RoomEvent,
        /// The resend key, if any.
        dedup: Option<String>,
    },
    /// A joiner: admitted if the room has room, with its join event and resume token.
    Admit {
        /// The joiner.
        member: MemberInfo,
        /// The room's maximum.
        max: usize,
        /// Its resume token.
        token: String,
        /// Its join event.
        event: RoomEvent,
    },
    /// A member whose connection dropped: away, if `node` still holds it.
    Away {
        /// The member.
        member: MemberId,
        /// The node that must hold it.
        node: String,
        /// Its away event.
        event: RoomEvent,
    },
    /// A member leaves: only if it is still held by `node` and, with `if_away_since`,
    /// still away since then (a grace that ran out).
    Remove {
        /// The member.
        member: MemberId,
        /// The node that must hold it.
        node: String,
        /// The absence that must still be going on.
        if_away_since: Option<Millis>,
        /// Its leave event.
        event: RoomEvent,
    },
    /// A member resumes on this node with its token: the token is rotated to `new_token`
    /// and the member moves here; its `back` event goes in the log.
    Resume {
        /// The member.
        member: MemberId,
        /// The token presented.
        token: String,
        /// The token that replaces it.
        new_token: String,
        /// Its back event.
        event: RoomEvent,
    },
}

/// What the log made of an operation.
#[derive(Debug, Clone)]
pub enum LogOutcome {
    /// Done, at this place.
    Placed(Placed),
    /// Admitted, at this place, with the room's members after the join (every node's,
    /// each with the node that holds it), in join order.
    Admitted(Placed, Vec<(MemberInfo, String)>),
    /// Resumed, at this place: the member (when it joined, its profile), and the room's
    /// members (every node's, each with its node).
    Resumed(Placed, MemberInfo, Vec<(MemberInfo, String)>),
    /// The room is full (admission).
    Full,
    /// No such member or session (wrong token, already gone, or taken by another node):
    /// nothing was changed.
    Refused,
}

/// The answer to a log operation, handed to its continuation.
pub type LogResult = Result<LogOutcome, Unavailable>;

/// What runs once an operation is in the log (on the cluster's task, in log order for
/// this node's operations).
pub type LogDone = Box<dyn FnOnce(LogResult) + Send>;

/// What this node knows of a room's log, so a store that lost it can carry on from there.
#[derive(Debug, Clone, Default)]
pub struct LogHint {
    /// The room's epoch here, if it has one.
    pub epoch: Option<Arc<str>>,
    /// The last position applied here.
    pub pos: Pos,
}

/// Events read back from a room's log.
#[derive(Debug, Clone, Default)]
pub struct Fetched {
    /// The events, in order, with their positions and times set.
    pub events: Vec<BusEvent>,
    /// The room's epoch.
    pub epoch: String,
    /// The last position dropped from the log (0: none): events at or before it are gone.
    pub evicted: Pos,
}

impl BusEvent {
    /// Compact binary encoding (MessagePack with field names), for the bus.
    pub fn encode(&self) -> Result<Vec<u8>, rmp_serde::encode::Error> {
        rmp_serde::to_vec_named(self)
    }

    /// Decodes what `encode` made.
    pub fn decode(bytes: &[u8]) -> Result<Self, rmp_serde::decode::Error> {
        rmp_serde::from_slice(bytes)
    }
}

/// What a cluster hands back to this node.
#[derive(Debug, Clone)]
pub enum Inbound {
    /// Another node's room event, to deliver to local members.
    Event(BusEvent),
    /// A dependency went down or came back: clients hear a `notice`.
    Dependency {
        /// `redis` or `kafka`.
        name: &'static str,
        /// Whether it is reachable now.
        up: bool,
    },
}

/// Where the buses hand other nodes' events in: this node's inbound queue, and a mark
/// set when an event may have been missed (the queue was full, a bus listener lagged or
/// reconnected, the store came back). A missed event in the middle of a room shows as a
/// gap when the next one comes; one missed at a room's end has nothing after it to show
/// it, so a marked inbox makes the node read the tail of every room it holds.
#[derive(Debug, Clone)]
pub struct Inbox {
    tx: tokio::sync::mpsc::Sender<Inbound>,
    missed: Arc<std::sync::atomic::AtomicBool>,
}

impl Inbox {
    /// An inbox of `capacity` items and the queue it fills.
    pub fn new(capacity: usize) -> (Self, tokio::sync::mpsc::Receiver<Inbound>) {
        let (tx, rx) = tokio::sync::mpsc::channel(capacity);
        let missed = Arc::new(std::sync::atomic::AtomicBool::new(false));
        (Self { tx, missed }, rx)
    }

    /// Hands `item` in if the queue has room; an event that does not fit marks the inbox.
    pub fn try_send(&self, item: Inbound) {
        if let Err(e) = self.tx.try_send(item)
            && matches!(e.into_inner(), Inbound::Event(_))
        {
            self.mark_missed();
        }
    }

    /// Events may have been missed: the rooms' tails are to be read back.
    pub fn mark_missed(&self) {
        self.missed.store(true, std::sync::atomic::Ordering::SeqCst);
    }

    /// Whether events may have been missed since the last call.
    pub fn take_missed(&self) -> bool {
        self.missed.swap(false, std::sync::atomic::Ordering::SeqCst)
    }
}

/// The other nodes, behind a small trait so that none, Redis and Kafka slot in.
pub trait Cluster: Send + Sync + std::fmt::Debug + 'static {
    /// Name for `/health` (`"memory"`, `"redis"`, `"redis+kafka"`).
    fn backend(&self) -> &'static str;

    /// This node's id on the bus.
    fn node_id(&self) -> &str;

    /// This node has its first local member of `room`: start hearing the room's events.
    /// Resolves once subscribed, so no event is missed after `admit`.
    fn room_opened(&self, room: &RoomId) -> ClusterFuture<'_, Result<(), Unavailable>>;

    /// This node has no local member of `room` any more.
    fn room_closed(&self, room: &RoomId);

    /// Each dependency and whether it is reachable now.
    fn dependencies(&self) -> Vec<(&'static str, bool)>;

    /// True if rooms are positioned by a cluster-wide log (`log`, `fetch`); false on a
    /// single node, whose rooms position their own events.
    fn logged(&self) -> bool {
        false
    }

    /// Puts an operation in the room's cluster-wide log, in the order of the calls, and
    /// hands the outcome to `done`.
    fn log(&self, room: &RoomId, op: LogOp, hint: LogHint, done: LogDone) {
        let _ = (room, op, hint);
        done(Err(Unavailable));
    }

    /// Reads the room's logged events with `after < pos < before`.
    fn fetch(
        &self,
        room: &RoomId,
        after: Pos,
        before: Pos,
    ) -> ClusterFuture<'_, Result<Fetched, Unavailable>> {
        let _ = (room, after, before);
        Box::pin(std::future::ready(Err(Unavailable)))
    }

    /// Takes this node's members out of the shared store before exit.
    fn shutdown(&self) -> ClusterFuture<'_, ()>;
}

/// One node alone: nobody else is anywhere, and nothing is kept or sent.
#[derive(Debug, Default, Clone, Copy)]
pub struct SingleNode;

impl Cluster for SingleNode {
    fn backend(&self) -> &'static str {
        "memory"
    }

    fn node_id(&self) -> &str {
        "local"
    }

    fn room_opened(&self, _room: &RoomId) -> ClusterFuture<'_, Result<(), Unavailable>> {
        Box::pin(std::future::ready(Ok(())))
    }

    fn room_closed(&self, _room: &RoomId) {}

    fn dependencies(&self) -> Vec<(&'static str, bool)> {
        Vec::new()
    }

    fn shutdown(&self) -> ClusterFuture<'_, ()> {
        Box::pin(std::future::ready(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use streamchat_protocol::{Binary, FileId, LeaveReason};

    #[test]
    fn bus_events_round_trip_with_binary_intact() {
        let room = RoomId::new("AAAAAAAAAAAAAAAAAAAAAA").unwrap();
        let member = MemberId::new("sid").unwrap();
        for event in [
            RoomEvent::Msg(MsgEvent {
                room: room.clone(),
                from: member.clone(),
                ts: 7,
                data: Binary::from(vec![0, 1, 255]),
                to: Some(member.clone()),
                pos: 9,
            }),
            RoomEvent::Chunk(ChunkEvent {
                room: room.clone(),
                from: member.clone(),
                file: FileId::new("0123456789abcdef").unwrap(),
                seq: 3,
                data: Binary::from(vec![9; 1000]),
                pos: 10,
            }),
            RoomEvent::Presence(PresenceEvent::Leave {
                room: room.clone(),
                member: member.clone(),
                at: 1,
                reason: LeaveReason::Timeout,
                pos: 11,
            }),
            RoomEvent::Presence(PresenceEvent::Join {
                room: room.clone(),
                member: member.clone(),
                at: 1,
                profile: "cA".into(),
                pos: 12,
            }),
        ] {
            let bus = BusEvent {
                node: "n1".into(),
                room: room.clone(),
                event,
                epoch: "e".into(),
                counted: true,
            };
            let bytes = bus.encode().unwrap();
            assert_eq!(BusEvent::decode(&bytes).unwrap(), bus);
        }
        assert!(BusEvent::decode(b"\xc1garbage").is_err());
    }
}
