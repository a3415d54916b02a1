//! Presence beyond this node: the seam where a shared store (Redis) slots in.
//!
//! Members connected to this node live in the room registry (`room.rs`), which admits
//! joiners, lists who is present and announces arrivals and departures atomically under
//! each room's lock. A `ClusterPresence` adds the members of *other* nodes: it is told of
//! every local join and leave, and asked who else is in a room. A single node uses
//! `SingleNode`, which knows of no other node and keeps nothing.

use std::future::Future;
use std::pin::Pin;
use streamchat_protocol::{MemberId, MemberInfo, RoomId};

/// A boxed future, so the store can be used as a trait object.
pub type StoreFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// The shared store cannot be reached.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("presence store unavailable")]
pub struct PresenceUnavailable;

/// Members of rooms on other nodes.
pub trait ClusterPresence: Send + Sync + std::fmt::Debug + 'static {
    /// Members of `room` connected to other nodes, in the order they joined.
    fn remote_members(
        &self,
        room: &RoomId,
    ) -> StoreFuture<'_, Result<Vec<MemberInfo>, PresenceUnavailable>>;

    /// Records that `member` joined `room` on this node.
    fn joined(
        &self,
        room: &RoomId,
        member: &MemberInfo,
    ) -> StoreFuture<'_, Result<(), PresenceUnavailable>>;

    /// Records that `member` left `room` on this node; the room's entry goes with its
    /// last member.
    fn left(
        &self,
        room: &RoomId,
        member: &MemberId,
    ) -> StoreFuture<'_, Result<(), PresenceUnavailable>>;

    /// Name for `/health` (`"memory"`, `"redis"`, …).
    fn backend(&self) -> &'static str;
}

/// One node alone: nobody else is anywhere, and nothing is kept.
#[derive(Debug, Default, Clone, Copy)]
pub struct SingleNode;

impl ClusterPresence for SingleNode {
    fn remote_members(
        &self,
        _room: &RoomId,
    ) -> StoreFuture<'_, Result<Vec<MemberInfo>, PresenceUnavailable>> {
        Box::pin(std::future::ready(Ok(Vec::new())))
    }

    fn joined(
        &self,
        _room: &RoomId,
        _member: &MemberInfo,
    ) -> StoreFuture<'_, Result<(), PresenceUnavailable>> {
        Box::pin(std::future::ready(Ok(())))
    }

    fn left(
        &self,
        _room: &RoomId,
        _member: &MemberId,
    ) -> StoreFuture<'_, Result<(), PresenceUnavailable>> {
        Box::pin(std::future::ready(Ok(())))
    }

    fn backend(&self) -> &'static str {
        "memory"
    }
}
