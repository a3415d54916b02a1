//! Per-connection state: its address, its rooms, its rate buckets and why it is closing.
//!
//! Stored in the socket's extensions when it connects and dropped with it, so nothing
//! outlives the connection. Also the per-address connection counter.

use crate::limits::{Cost, RateLimiter};
use parking_lot::Mutex;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use streamchat_protocol::{MemberId, RoomId};
use tokio::time::Instant;

/// State of one Socket.IO connection.
#[derive(Debug)]
pub struct Connection {
    /// Its member id: the Socket.IO id, or the id it resumed (one for all its rooms).
    member: Mutex<MemberId>,
    /// Rooms it is in (at most `max_rooms_per_connection`). Locked briefly, never across
    /// an await.
    rooms: Mutex<Vec<RoomId>>,
    /// Its two token buckets.
    limiter: Mutex<RateLimiter>,
    /// Set when the server cuts it off for not reading: its rooms hear `timeout`.
    slow: AtomicBool,
    /// Its Socket.IO recovery pid (sent in the CONNECT packet; see `RecoveryPid`).
    pub recovery_pid: Arc<str>,
    /// A recovery asked for at connect: the room and the offset, done once connected.
    pub recovering: Mutex<Option<(RoomId, Option<u64>)>>,
}

/// Why a room could not be reserved for a connection.
#[derive(Debug, PartialEq, Eq)]
pub enum Reserve {
    /// Reserved: the join may go on (and must `release` on failure).
    Reserved,
    /// It is already in the room.
    AlreadyIn,
    /// It is in the maximum of rooms.
    TooMany,
}

impl Connection {
    /// A new connection with full buckets.
    pub fn new(member: MemberId, recovery_pid: Arc<str>, config: &crate::ServeConfig) -> Self {
        Self {
            member: Mutex::new(member),
            rooms: Mutex::new(Vec::new()),
            limiter: Mutex::new(RateLimiter::new(config, Instant::now())),
            slow: AtomicBool::new(false),
            recovery_pid,
            recovering: Mutex::new(None),
        }
    }

    /// Rooms it is in.
    pub fn room_count(&self) -> usize {
        self.rooms.lock().len()
    }

    /// Its member id.
    pub fn member(&self) -> MemberId {
        self.member.lock().clone()
    }

    /// Takes the member id of a resumed session, if it can: a connection has one member
    /// id in all its rooms, so it resumes before it is in any room as someone else.
    pub fn adopt_member(&self, resumed: &MemberId) -> bool {
        let rooms = self.rooms.lock();
        let mut member = self.member.lock();
        if &*member == resumed {
            return true;
        }
        if !rooms.is_empty() {
            return false;
        }
        *member = resumed.clone();
        true
    }

    /// Reserves a place for `room` among its rooms, atomically with the check.
    pub fn reserve_room(&self, room: &RoomId, max_rooms: usize) -> Reserve {
        let mut rooms = self.rooms.lock();
        if rooms.contains(room) {
            Reserve::AlreadyIn
        } else if rooms.len() >= max_rooms {
            Reserve::TooMany
        } else {
            rooms.push(room.clone());
            Reserve::Reserved
        }
    }

    /// Forgets `room`; false if it was not there.
    pub fn release_room(&self, room: &RoomId) -> bool {
        let mut rooms = self.rooms.lock();
        let before = rooms.len();
        rooms.retain(|r| r != room);
        rooms.len() != before
    }

    /// True if it is in `room`.
    pub fn in_room(&self, room: &RoomId) -> bool {
        self.rooms.lock().contains(room)
    }

    /// Takes every room, for disconnect.
    pub fn take_rooms(&self) -> Vec<RoomId> {
        std::mem::take(&mut *self.rooms.lock())
    }

    /// Spends from its buckets; false means `rate_limited`.
    pub fn try_spend(&self, cost: Cost) -> bool {
        self.limiter.lock().try_spend(cost, Instant::now())
    }

    /// Marks it as cut off for not reading; false if it already was.
    pub fn mark_slow(&self) -> bool {
        !self.slow.swap(true, Ordering::Relaxed)
    }

    /// True if it was cut off for not reading.
    pub fn is_slow(&self) -> bool {
        self.slow.load(Ordering::Relaxed)
    }
}

/// Shared handle to a connection's state.
pub type ConnectionRef = Arc<Connection>;
