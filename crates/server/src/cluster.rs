//! Many nodes as one server: the seam where Redis (and Kafka) slot in.
//!
//! Members connected to this node live in the room registry (`room.rs`), which admits
//! joiners and delivers in room order under each room's lock. A `Cluster` adds the other
//! nodes: it hears of every local join and leave, carries every local room event to the
//! other nodes, and hands back theirs as `Inbound` items, which `lib.rs` feeds to the
//! same registry. Local delivery always happens first and never waits for the cluster,
//! so a room's members on one node keep chatting while a dependency is down.
//!
//! A single node uses `SingleNode`: no other node, nothing kept, nothing sent.

use serde::{Deserialize, Serialize};
use std::future::Future;
use std::pin::Pin;
use streamchat_protocol::{ChunkEvent, MemberId, MemberInfo, MsgEvent, PresenceEvent, RoomId};

/// A boxed future, so a cluster can be used as a trait object.
pub type ClusterFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// The shared store cannot be reached.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cluster store unavailable")]
pub struct Unavailable;

/// Why the cluster did not admit a joiner.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AdmitError {
    /// The room holds its maximum of members, counting every node.
    #[error("room is full")]
    Full,
    /// The shared store cannot be reached: the node admits on what it knows.
    #[error("cluster store unavailable")]
    Unavailable,
}

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

/// A room event and the node it comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BusEvent {
    /// The node that accepted it (its own events are not delivered twice).
    pub node: String,
    /// The room.
    pub room: RoomId,
    /// What happened.
    pub event: RoomEvent,
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
    /// The authoritative list of other nodes' members of a room, after the store came
    /// back: the registry announces the differences.
    Resync {
        /// The room.
        room: RoomId,
        /// Its members on other nodes.
        remote: Vec<MemberInfo>,
    },
    /// A dependency went down or came back: clients hear a `notice`.
    Dependency {
        /// `redis` or `kafka`.
        name: &'static str,
        /// Whether it is reachable now.
        up: bool,
    },
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

    /// Admits `member` to `room` atomically across nodes (at most `max_members`, every
    /// node counted) and records it; returns the members on other nodes, in the order
    /// they joined. A single node admits everyone here and counts in the registry.
    fn admit(
        &self,
        room: &RoomId,
        member: &MemberInfo,
        max_members: usize,
    ) -> ClusterFuture<'_, Result<Vec<MemberInfo>, AdmitError>>;

    /// Records a local join that was admitted without the store (it was down), so the
    /// store learns of it when it returns.
    fn joined_offline(&self, room: &RoomId, member: &MemberInfo);

    /// Records a local leave; the room's entry goes with its last member.
    fn left(&self, room: &RoomId, member: &MemberId);

    /// Carries a local room event to the other nodes (in the background; bounded).
    fn publish(&self, room: &RoomId, event: RoomEvent);

    /// Each dependency and whether it is reachable now.
    fn dependencies(&self) -> Vec<(&'static str, bool)>;

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

    fn admit(
        &self,
        _room: &RoomId,
        _member: &MemberInfo,
        _max_members: usize,
    ) -> ClusterFuture<'_, Result<Vec<MemberInfo>, AdmitError>> {
        Box::pin(std::future::ready(Ok(Vec::new())))
    }

    fn joined_offline(&self, _room: &RoomId, _member: &MemberInfo) {}

    fn left(&self, _room: &RoomId, _member: &MemberId) {}

    fn publish(&self, _room: &RoomId, _event: RoomEvent) {}

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
            };
            let bytes = bus.encode().unwrap();
            assert_eq!(BusEvent::decode(&bytes).unwrap(), bus);
        }
        assert!(BusEvent::decode(b"\xc1garbage").is_err());
    }
}
