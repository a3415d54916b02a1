//! Local fan-out: this node's sockets in each room, a mirror of the room's members on
//! other nodes, and delivery in room order.
//!
//! Every delivery to a room happens under that room's lock, with the server timestamp
//! taken inside it, so all of this node's receivers see one total order per room and
//! `ts` never goes backwards. Emitting never waits: each socket has a bounded queue, and
//! a socket whose queue is full is reported back as slow (never silently skipped) so
//! the caller can cut it off after the locks are released.

use parking_lot::Mutex;
use serde::Serialize;
use socketioxide::SocketError;
use socketioxide::extract::SocketRef;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};
use streamchat_protocol::{LeaveReason, MemberId, MemberInfo, PresenceEvent, RoomId, events};

/// Server Unix time in milliseconds.
pub fn now_millis() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Which local members of a room receive a delivery.
#[derive(Debug, Clone, Copy)]
pub enum Audience<'a> {
    /// Every local member (an event from another node).
    All,
    /// Everyone but this member (the sender is never echoed).
    AllExcept(&'a MemberId),
    /// Only this member (direct delivery).
    Only(&'a MemberId),
}

/// The outcome of one delivery.
#[derive(Debug, Default)]
pub struct Delivery {
    /// The server timestamp given to the event.
    pub ts: u64,
    /// Sockets that got the event queued.
    pub delivered: u64,
    /// Sockets whose queue was full: they must be cut off, as they missed this event.
    pub slow: Vec<SocketRef>,
}

/// A member connected to this node.
#[derive(Debug)]
pub struct LocalMember {
    /// Its member id (Socket.IO id).
    pub id: MemberId,
    /// Where to deliver.
    pub socket: SocketRef,
    /// When it joined (server ms).
    pub at: u64,
    /// Its sealed profile (base64url), kept only while it is present.
    pub profile: Arc<str>,
}

impl LocalMember {
    fn info(&self) -> MemberInfo {
        MemberInfo {
            member: self.id.clone(),
            at: self.at,
            profile: self.profile.to_string(),
        }
    }
}

/// The room already holds its maximum of members.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RoomFull;

#[derive(Debug, Default)]
struct LocalRoom {
    members: Vec<LocalMember>,
    /// Members on other nodes, kept current by their presence events.
    remote: Vec<MemberInfo>,
    /// Last timestamp handed out, so `ts` is monotonic within the room.
    last_ts: u64,
}

impl LocalRoom {
    fn deliver<T: Serialize>(
        &mut self,
        event: &str,
        audience: Audience<'_>,
        make: impl FnOnce(u64) -> T,
    ) -> Delivery {
        let ts = now_millis().max(self.last_ts);
        self.last_ts = ts;
        let payload = make(ts);
        let mut delivery = Delivery {
            ts,
            ..Delivery::default()
        };
        let mut encoded = None;
        for member in &self.members {
            let wanted = match audience {
                Audience::All => true,
                Audience::AllExcept(sender) => &member.id != sender,
                Audience::Only(to) => &member.id == to,
            };
            if !wanted {
                continue;
            }
            // Serialized once, at the first receiver, for all of them.
            let encoded = match &encoded {
                Some(e) => e,
                None => match member.socket.encode_event(event, &payload) {
                    Ok(e) => encoded.insert(e),
                    Err(e) => {
                        tracing::error!(error = %e, "event could not be serialized");
                        return delivery;
                    }
                },
            };
            match member.socket.emit_encoded(encoded) {
                Ok(()) => delivery.delivered += 1,
                Err(SocketError::InternalChannelFull) => {
                    delivery.slow.push(member.socket.clone());
                }
                // Closed: its disconnect is already under way and will announce it.
                Err(SocketError::Closed) => {}
            }
        }
        delivery
    }

    fn present(&self) -> Vec<MemberInfo> {
        let mut all: Vec<MemberInfo> = self.members.iter().map(LocalMember::info).collect();
        all.extend(self.remote.iter().cloned());
        all.sort_by_key(|m| m.at);
        all
    }
}

/// What `remove` did.
#[derive(Debug)]
pub struct Removal {
    /// The leave announcement's delivery.
    pub delivery: Delivery,
    /// True if that was this node's last member of the room.
    pub room_closed: bool,
}

/// The rooms of this node and their local sockets.
#[derive(Debug, Default)]
pub struct RoomRegistry {
    /// Room → its members. Taken briefly to find a room, and for the whole of a join or
    /// leave so that a room emptied and removed cannot lose a concurrent joiner.
    /// Lock order: `rooms`, then a room's own lock.
    rooms: Mutex<HashMap<RoomId, Arc<Mutex<LocalRoom>>>>,
}

impl RoomRegistry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// True if this node has a member in `room`.
    pub fn has_room(&self, room: &RoomId) -> bool {
        self.rooms.lock().contains_key(room)
    }

    /// Admits a joiner atomically: checks capacity (counting members on other nodes),
    /// hands `admitted` the members already present (so the joiner's ack is queued
    /// before any event of the room reaches it), announces the joiner to the local
    /// members, then adds it. `remote` seeds the mirror of other nodes' members when the
    /// room is new on this node; afterwards presence events keep the mirror current.
    pub fn join<T: Serialize>(
        &self,
        room: &RoomId,
        joiner: LocalMember,
        remote: Vec<MemberInfo>,
        max_members: usize,
        admitted: impl FnOnce(Vec<MemberInfo>),
        make_event: impl FnOnce(u64) -> T,
    ) -> Result<Delivery, RoomFull> {
        let mut rooms = self.rooms.lock();
        let local_arc = rooms.entry(room.clone()).or_default().clone();
        let mut local = local_arc.lock();
        if local.members.is_empty() {
            local.remote = remote;
        }
        if local.members.len() + local.remote.len() >= max_members {
            if local.members.is_empty() {
                drop(local);
                rooms.remove(room);
            }
            return Err(RoomFull);
        }
        admitted(local.present());
        let delivery = local.deliver(
            events::PRESENCE,
            Audience::AllExcept(&joiner.id),
            make_event,
        );
        local.members.push(joiner);
        Ok(delivery)
    }

    /// Members of `room` (this node's and the others').
    pub fn members(&self, room: &RoomId) -> Vec<MemberInfo> {
        let Some(local) = self.rooms.lock().get(room).cloned() else {
            return Vec::new();
        };
        local.lock().present()
    }

    /// Room memberships on this node.
    pub fn member_count(&self) -> usize {
        self.rooms
            .lock()
            .values()
            .map(|r| r.lock().members.len())
            .sum()
    }

    /// Removes a local member and announces it (a `presence` event) to those who
    /// remain; drops a room with no local member left. `None` if it was not there.
    pub fn remove<T: Serialize>(
        &self,
        room: &RoomId,
        member: &MemberId,
        make_event: impl FnOnce(u64) -> T,
    ) -> Option<Removal> {
        let mut rooms = self.rooms.lock();
        let local_arc = rooms.get(room)?.clone();
        let mut local = local_arc.lock();
        let before = local.members.len();
        local.members.retain(|m| &m.id != member);
        if local.members.len() == before {
            return None;
        }
        let delivery = local.deliver(events::PRESENCE, Audience::AllExcept(member), make_event);
        let room_closed = local.members.is_empty();
        if room_closed {
            drop(local);
            rooms.remove(room);
        }
        Some(Removal {
            delivery,
            room_closed,
        })
    }

    /// Delivers an event to part of a room, in room order. `None` if this node has no
    /// member in the room any more (the sender left meanwhile, or shutdown emptied it):
    /// the event went nowhere and must not be acknowledged as relayed.
    pub fn deliver<T: Serialize>(
        &self,
        room: &RoomId,
        event: &str,
        audience: Audience<'_>,
        make_event: impl FnOnce(u64) -> T,
    ) -> Option<Delivery> {
        let local = self.rooms.lock().get(room).cloned()?;
        let mut local = local.lock();
        Some(local.deliver(event, audience, make_event))
    }

    /// Applies another node's presence event to the mirror and delivers it to every
    /// local member. Nothing happens if this node has no member in the room.
    pub fn remote_presence(&self, room: &RoomId, event: &PresenceEvent) -> Delivery {
        let Some(local) = self.rooms.lock().get(room).cloned() else {
            return Delivery::default();
        };
        let mut local = local.lock();
        match event {
            PresenceEvent::Join {
                member,
                at,
                profile,
                ..
            } => {
                if local.remote.iter().any(|m| &m.member == member) {
                    return Delivery::default(); // already known (after a resync)
                }
                local.remote.push(MemberInfo {
                    member: member.clone(),
                    at: *at,
                    profile: profile.clone(),
                });
            }
            PresenceEvent::Leave { member, .. } => {
                let before = local.remote.len();
                local.remote.retain(|m| &m.member != member);
                if local.remote.len() == before {
                    return Delivery::default(); // already gone (after a resync)
                }
            }
        }
        local.deliver(events::PRESENCE, Audience::All, |_| event.clone())
    }

    /// Replaces the mirror of other nodes' members of `room` with `remote`, announcing
    /// to local members whoever left (`timeout`) or joined meanwhile.
    pub fn resync(&self, room: &RoomId, remote: Vec<MemberInfo>) -> Vec<Delivery> {
        let Some(local) = self.rooms.lock().get(room).cloned() else {
            return Vec::new();
        };
        let mut local = local.lock();
        let local_ids: Vec<MemberId> = local.members.iter().map(|m| m.id.clone()).collect();
        let remote: Vec<MemberInfo> = remote
            .into_iter()
            .filter(|m| !local_ids.contains(&m.member))
            .collect();
        let gone: Vec<MemberInfo> = local
            .remote
            .iter()
            .filter(|m| !remote.iter().any(|r| r.member == m.member))
            .cloned()
            .collect();
        let new: Vec<MemberInfo> = remote
            .iter()
            .filter(|r| !local.remote.iter().any(|m| m.member == r.member))
            .cloned()
            .collect();
        local.remote = remote;
        let mut deliveries = Vec::new();
        let at = now_millis();
        for m in gone {
            let event = PresenceEvent::Leave {
                room: room.clone(),
                member: m.member,
                at,
                reason: LeaveReason::Timeout,
            };
            deliveries.push(local.deliver(events::PRESENCE, Audience::All, |_| event));
        }
        for m in new {
            let event = PresenceEvent::Join {
                room: room.clone(),
                member: m.member,
                at: m.at,
                profile: m.profile,
            };
            deliveries.push(local.deliver(events::PRESENCE, Audience::All, |_| event));
        }
        deliveries
    }

    /// True if `member` is in `room`, on this node or another.
    pub fn contains(&self, room: &RoomId, member: &MemberId) -> bool {
        let Some(local) = self.rooms.lock().get(room).cloned() else {
            return false;
        };
        let local = local.lock();
        local.members.iter().any(|m| &m.id == member)
            || local.remote.iter().any(|m| &m.member == member)
    }

    /// Every room and its local members, for shutdown.
    pub fn snapshot(&self) -> Vec<(RoomId, Vec<MemberId>)> {
        let rooms = self.rooms.lock();
        rooms
            .iter()
            .map(|(id, r)| {
                (
                    id.clone(),
                    r.lock().members.iter().map(|m| m.id.clone()).collect(),
                )
            })
            .collect()
    }

    /// Rooms with at least one local member.
    pub fn room_count(&self) -> usize {
        self.rooms.lock().len()
    }
}
