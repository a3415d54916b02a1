//! Local fan-out: this node's sockets in each room, a mirror of the room's members on
//! other nodes, delivery in room order, and the room's log (`log.rs`): every event
//! delivered here gets the room's next position and is kept for the replay window, and a
//! member whose connection dropped stays a member, away, for the grace.
//!
//! Every delivery to a room happens under that room's lock, with the server timestamp
//! taken inside it, so all of this node's receivers see one total order per room and
//! `ts` never goes backwards. Emitting never waits: each socket has a bounded queue, and
//! a socket whose queue is full is reported back as slow (never silently skipped) so
//! the caller can cut it off after the locks are released.

use crate::cluster::{BusEvent, Fetched, LogHint, Placed, RoomEvent};
use crate::log::{Bounds, DedupKey, Kind, NewEntry, PlaceError, RoomLog};
use parking_lot::Mutex;
use serde::Serialize;
use socketioxide::SocketError;
use socketioxide::extract::SocketRef;
use socketioxide::socket::EncodedEvent;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};
use streamchat_protocol::{
    LeaveReason, LogPlace, MemberId, MemberInfo, Millis, Missed, Pos, PresenceEvent, RoomId, events,
};

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

/// How an event goes into the room's log.
#[derive(Debug)]
pub struct LogMeta {
    /// Its kind.
    pub kind: Kind,
    /// The member it comes from or is about (never replayed to that member).
    pub about: Option<MemberId>,
    /// Payload bytes, for the window's byte bound.
    pub payload_bytes: usize,
    /// Its resend key, if any: a resend already in the window is not delivered again.
    pub dedup: Option<DedupKey>,
}

impl LogMeta {
    /// A message or chunk from `from`, of `payload_bytes`.
    pub fn sent(
        kind: Kind,
        from: &MemberId,
        payload_bytes: usize,
        dedup: Option<DedupKey>,
    ) -> Self {
        Self {
            kind,
            about: Some(from.clone()),
            payload_bytes,
            dedup,
        }
    }

    /// A presence change about `member`.
    pub fn presence(member: &MemberId, payload_bytes: usize) -> Self {
        Self {
            kind: Kind::Presence,
            about: Some(member.clone()),
            payload_bytes,
            dedup: None,
        }
    }
}

/// Where the relay delivers an event: one member's connection. The server's receivers
/// are socketioxide sockets; the unit tests below use an in-memory one, so fan-out,
/// cut-off, order and resends are tested without a network.
pub trait Receiver: Clone + std::fmt::Debug + Send + Sync + 'static {
    /// An event encoded once and queued as is on every receiver.
    type Frame: Clone + std::fmt::Debug + Send + Sync + 'static;
    /// True if both are the same connection.
    fn same(&self, other: &Self) -> bool;
    /// Encodes an event (its name and its payload).
    fn encode<T: Serialize>(&self, event: &str, payload: &T) -> Result<Self::Frame, String>;
    /// Queues an encoded event on this connection.
    fn send(&self, frame: &Self::Frame) -> Sent;
    /// Payload bytes waiting in its send queue.
    fn backlog(&self) -> usize;
}

/// What queueing an event on a receiver did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sent {
    /// Queued.
    Queued,
    /// Its queue is full: it missed this event and must be cut off.
    Full,
    /// Its connection is closing; its disconnect announces it.
    Closed,
}

impl Receiver for SocketRef {
    type Frame = EncodedEvent;

    fn same(&self, other: &Self) -> bool {
        self.id == other.id
    }

    fn encode<T: Serialize>(&self, event: &str, payload: &T) -> Result<EncodedEvent, String> {
        self.encode_event(event, payload).map_err(|e| e.to_string())
    }

    fn send(&self, frame: &EncodedEvent) -> Sent {
        match self.emit_encoded(frame) {
            Ok(()) => Sent::Queued,
            Err(SocketError::InternalChannelFull) => Sent::Full,
            Err(SocketError::Closed) => Sent::Closed,
        }
    }

    fn backlog(&self) -> usize {
        self.queued_bytes()
    }
}

impl<R: Receiver> Default for Delivery<R> {
    fn default() -> Self {
        Self {
            ts: 0,
            pos: 0,
            duplicate: false,
            delivered: 0,
            slow: Vec::new(),
        }
    }
}

impl<R: Receiver> Default for Applied<R> {
    fn default() -> Self {
        Self {
            deliveries: Vec::new(),
            moved: Vec::new(),
            moved_pids: Vec::new(),
            then: Vec::new(),
        }
    }
}

/// The outcome of one delivery.
#[derive(Debug)]
pub struct Delivery<R: Receiver = SocketRef> {
    /// The server timestamp given to the event.
    pub ts: u64,
    /// The room position given to the event.
    pub pos: Pos,
    /// Set when the event was a resend of one already relayed: its first position and
    /// timestamp (nothing was delivered).
    pub duplicate: bool,
    /// Sockets that got the event queued.
    pub delivered: u64,
    /// Sockets whose queue was full: they must be cut off, as they missed this event.
    pub slow: Vec<R>,
}

/// A member connected to this node.
#[derive(Debug)]
pub struct LocalMember<R: Receiver = SocketRef> {
    /// Its member id (the Socket.IO id of the connection that joined).
    pub id: MemberId,
    /// Where to deliver; `None` while it is away (its connection dropped, within the grace).
    pub socket: Option<R>,
    /// When it joined (server ms).
    pub at: u64,
    /// Its sealed profile (base64url), kept only while it is present.
    pub profile: Arc<str>,
    /// Its resume token (base64url of 32 random bytes).
    pub token: String,
    /// Set while it is away.
    pub away: Option<Away>,
    /// The position of its own join event: a recovery with no offset replays from here.
    pub joined_pos: Pos,
    /// Its connection's recovery pid (Socket.IO connection state recovery), when that
    /// connection is in this room only.
    pub recovery: Option<Arc<str>>,
}

/// A member whose connection dropped, held for the grace.
#[derive(Debug, Clone, Copy)]
pub struct Away {
    /// When its connection dropped (server ms): the time of its leave if it does not return.
    pub since: Millis,
    /// Why it dropped: the reason of its leave if it does not return.
    pub reason: LeaveReason,
    /// Tells this absence from a later one, so a stale grace timer does nothing.
    pub generation: u64,
}

/// A fresh resume token: 32 random bytes, base64url.
pub fn new_token() -> String {
    use base64::Engine as _;
    let mut bytes = [0u8; 32];
    if getrandom::getrandom(&mut bytes).is_err() {
        // The OS random source is gone: no session can be made safe; refuse loudly.
        panic!("the operating system's random source failed");
    }
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// Compares two tokens in time that does not depend on where they differ.
fn same_token(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// A fresh room epoch: 8 random bytes, hex.
fn new_epoch() -> Arc<str> {
    let mut bytes = [0u8; 8];
    let _ = getrandom::getrandom(&mut bytes);
    Arc::from(bytes.iter().map(|b| format!("{b:02x}")).collect::<String>())
}

/// What a joiner is told, inside the room lock, before any event of the room reaches it.
#[derive(Debug)]
pub struct JoinView {
    /// Members already present.
    pub members: Vec<MemberInfo>,
    /// The room's epoch.
    pub epoch: Arc<str>,
    /// The position of the joiner's own join event.
    pub pos: Pos,
    /// With `since`: what it missed.
    pub missed: Option<Missed>,
}

/// What a resuming member is told, inside the room lock, before its replay.
#[derive(Debug)]
pub struct ResumeView {
    /// Its member id.
    pub member: MemberId,
    /// When it joined.
    pub at: Millis,
    /// Its new token.
    pub token: String,
    /// The room's epoch.
    pub epoch: Arc<str>,
    /// The room's position after the replay.
    pub pos: Pos,
    /// Events replayed after the ack.
    pub replayed: u64,
    /// What the window had already lost.
    pub missed: Option<Missed>,
}

/// Why a resume was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResumeError {
    /// No member of this room holds that token (wrong, old, another room's, expired).
    UnknownSession,
    /// The position is ahead of the room.
    FuturePosition,
    /// The connection is another member already.
    OtherMember,
}

/// What a successful resume did.
#[derive(Debug)]
pub struct Resumed<R: Receiver = SocketRef> {
    /// The `back` announcement's delivery (empty when it was not away yet).
    pub delivery: Delivery<R>,
    /// The connection that held the member before, if it was still attached.
    pub previous: Option<R>,
    /// Events replayed.
    pub replayed: u64,
}

impl<R: Receiver> LocalMember<R> {
    fn info(&self) -> MemberInfo {
        MemberInfo {
            member: self.id.clone(),
            at: self.at,
            profile: self.profile.to_string(),
        }
    }
}

/// Why a joiner was not added.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JoinRefused {
    /// The room already holds its maximum of members.
    Full,
    /// It is a member already: an earlier join of the same connection got there first
    /// (joins run concurrently; a `leave` between them released the connection's place).
    AlreadyIn,
}

#[derive(Debug)]
struct LocalRoom<R: Receiver> {
    members: Vec<LocalMember<R>>,
    /// Members on other nodes, kept current by their presence events.
    remote: Vec<MemberInfo>,
    /// Last timestamp handed out, so `ts` is monotonic within the room.
    last_ts: u64,
    /// Positions, the replay window and resend detection.
    log: RoomLog<R::Frame>,
    /// A socket of the room's namespace to encode events with when no member is
    /// attached (all away): encoding needs only its parser.
    encoder: Option<R>,
    /// Counts absences, so each has its own generation.
    absences: u64,
    /// With a cluster log: false until this node knows where in the log it starts (its
    /// first joiner's place); events heard before wait in `pending`.
    based: bool,
    /// With a cluster log: events heard ahead of their turn, by position.
    pending: BTreeMap<Pos, (BusEvent, Option<Then>)>,
    /// Since when `pending` has waited for a missing position.
    gap_since: Option<Instant>,
    /// With a cluster log: what waits for a position to be delivered here (an ack whose
    /// event was placed earlier, a resend's first copy).
    waiting: BTreeMap<Pos, Vec<Then>>,
    /// With a cluster log: turns true once this node hears the room's events (the node
    /// that opened the room here is subscribing; later joiners wait for it).
    hearing: Option<tokio::sync::watch::Receiver<bool>>,
}

/// A position as the decimal string socket.io-client keeps as its offset, written
/// straight into the frame (no string is allocated per event).
struct Offset(Pos);

impl Serialize for Offset {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&self.0)
    }
}

/// Sends one encoded event to a socket, noting the outcome.
fn send<R: Receiver>(delivery: &mut Delivery<R>, socket: &R, frame: &R::Frame) {
    match socket.send(frame) {
        Sent::Queued => delivery.delivered += 1,
        Sent::Full => delivery.slow.push(socket.clone()),
        // Closed: its disconnect is already under way and will announce it.
        Sent::Closed => {}
    }
}

impl<R: Receiver> LocalRoom<R> {
    fn new(bounds: Bounds) -> Self {
        Self {
            members: Vec::new(),
            remote: Vec::new(),
            last_ts: 0,
            log: RoomLog::new(new_epoch(), bounds),
            encoder: None,
            absences: 0,
            based: true,
            pending: BTreeMap::new(),
            gap_since: None,
            waiting: BTreeMap::new(),
            hearing: None,
        }
    }

    /// Positions an event, delivers it to its audience (encoded once for all), and keeps
    /// it in the window. `make` gets the timestamp and position.
    fn deliver<T: Serialize>(
        &mut self,
        event: &str,
        audience: Audience<'_>,
        meta: LogMeta,
        make: impl FnOnce(u64, Pos) -> T,
    ) -> Delivery<R> {
        if let Some(key) = &meta.dedup
            && let Some((pos, ts)) = self.log.seen(key)
        {
            return Delivery {
                ts,
                pos,
                duplicate: true,
                ..Delivery::default()
            };
        }
        let ts = now_millis().max(self.last_ts);
        self.last_ts = ts;
        let pos = self.log.next_pos();
        let payload = make(ts, pos);
        let mut delivery = Delivery {
            ts,
            pos,
            ..Delivery::default()
        };
        let Some(encoder) = self
            .members
            .iter()
            .find_map(|m| m.socket.as_ref())
            .or(self.encoder.as_ref())
        else {
            // No socket ever: nobody to deliver to or replay for; the position is used.
            self.log.skip(pos);
            return delivery;
        };
        // The position goes last, as a string: Socket.IO's connection state recovery
        // offset (socket.io-client keeps the last one and hands it back on reconnect).
        let frame = match encoder.encode(event, &(&payload, Offset(pos))) {
            Ok(e) => e,
            Err(e) => {
                tracing::error!(error = %e, "event could not be serialized");
                return delivery;
            }
        };
        let only = match audience {
            Audience::Only(to) => Some(to.clone()),
            _ => None,
        };
        for member in &self.members {
            let wanted = member.joined_pos < pos
                && match audience {
                    Audience::All => true,
                    Audience::AllExcept(sender) => &member.id != sender,
                    Audience::Only(to) => &member.id == to,
                };
            if let (true, Some(socket)) = (wanted, &member.socket) {
                send(&mut delivery, socket, &frame);
            }
        }
        self.log.push(
            NewEntry {
                kind: meta.kind,
                about: meta.about,
                only,
                frame,
                payload_bytes: meta.payload_bytes,
                dedup: meta.dedup,
                ts,
            },
            Instant::now(),
        );
        delivery
    }

    fn present(&self) -> Vec<MemberInfo> {
        let mut all: Vec<MemberInfo> = self.members.iter().map(LocalMember::<R>::info).collect();
        all.extend(self.remote.iter().cloned());
        all.sort_by_key(|m| m.at);
        all
    }
}

/// What `remove` did.
#[derive(Debug)]
pub struct Removal<R: Receiver = SocketRef> {
    /// The leave announcement's delivery.
    pub delivery: Delivery<R>,
    /// True if that was this node's last member of the room.
    pub room_closed: bool,
}

/// The rooms of this node and their local sockets.
#[derive(Debug)]
pub struct RoomRegistry<R: Receiver = SocketRef> {
    /// Room → its members. Taken briefly to find a room, and for the whole of a join or
    /// leave so that a room emptied and removed cannot lose a concurrent joiner.
    /// Lock order: `rooms`, then a room's own lock.
    rooms: Mutex<HashMap<RoomId, Arc<Mutex<LocalRoom<R>>>>>,
    /// The replay window's bounds, for every room.
    bounds: Bounds,
    /// Recovery pid → the room of the member that holds it. Lock order: after `rooms`
    /// and a room's own lock.
    recoveries: Mutex<HashMap<Arc<str>, RoomId>>,
}

impl<R: Receiver> RoomRegistry<R> {
    /// An empty registry whose rooms keep a replay window of `bounds`.
    pub fn new(bounds: Bounds) -> Self {
        Self {
            rooms: Mutex::new(HashMap::new()),
            bounds,
            recoveries: Mutex::new(HashMap::new()),
        }
    }

    /// A room of this node, by id.
    fn room(&self, room: &RoomId) -> Option<Arc<Mutex<LocalRoom<R>>>> {
        self.rooms.lock().get(room).cloned()
    }

    /// The room whose member holds recovery pid `pid`, if any.
    pub fn recovery_room(&self, pid: &str) -> Option<RoomId> {
        self.recoveries.lock().get(pid).cloned()
    }

    /// Stops `pid` from recovering anything (its connection joined a second room: a
    /// Socket.IO offset names one position, so only a one-room connection can recover).
    pub fn disable_recovery(&self, pid: &str) {
        let Some(room) = self.recoveries.lock().remove(pid) else {
            return;
        };
        if let Some(local) = self.rooms.lock().get(&room).cloned() {
            for m in &mut local.lock().members {
                if m.recovery.as_deref() == Some(pid) {
                    m.recovery = None;
                }
            }
        }
    }

    /// Bytes held in every room's replay window.
    pub fn window_bytes(&self) -> usize {
        self.bounds.total.used()
    }

    /// True if this node has a member in `room`.
    pub fn has_room(&self, room: &RoomId) -> bool {
        self.rooms.lock().contains_key(room)
    }

    /// Admits a joiner atomically: checks capacity (counting members on other nodes),
    /// hands `admitted` the members already present (so the joiner's ack is queued
    /// before any event of the room reaches it), announces the joiner to the local
    /// members, then adds it.
    #[allow(clippy::too_many_arguments)]
    pub fn join<T: Serialize>(
        &self,
        room: &RoomId,
        joiner: LocalMember<R>,
        max_members: usize,
        since: Option<&LogPlace>,
        admitted: impl FnOnce(JoinView),
        make_event: impl FnOnce(u64, Pos) -> T,
    ) -> Result<Delivery<R>, JoinRefused> {
        let mut rooms = self.rooms.lock();
        let bounds = self.bounds.clone();
        let local_arc = rooms
            .entry(room.clone())
            .or_insert_with(|| Arc::new(Mutex::new(LocalRoom::new(bounds))))
            .clone();
        let mut local = local_arc.lock();
        if local.members.iter().any(|m| m.id == joiner.id) {
            return Err(JoinRefused::AlreadyIn);
        }
        if local.members.len() + local.remote.len() >= max_members {
            if local.members.is_empty() {
                drop(local);
                rooms.remove(room);
            }
            return Err(JoinRefused::Full);
        }
        local.log.evict(Instant::now());
        admitted(JoinView {
            members: local.present(),
            epoch: local.log.epoch().clone(),
            pos: local.log.next_pos(),
            missed: since.map(|p| local.log.missed_since(&p.epoch, p.pos)),
        });
        if let Some(socket) = &joiner.socket {
            local.encoder = Some(socket.clone());
        }
        let mut joiner = joiner;
        joiner.joined_pos = local.log.next_pos();
        if let Some(pid) = &joiner.recovery {
            self.recoveries.lock().insert(pid.clone(), room.clone());
        }
        let meta = LogMeta::presence(&joiner.id, joiner.profile.len());
        let delivery = local.deliver(
            events::PRESENCE,
            Audience::AllExcept(&joiner.id),
            meta,
            make_event,
        );
        local.members.push(joiner);
        Ok(delivery)
    }

    /// Takes `member` out of a locked room if `still` holds of it, and forgets its
    /// recovery pid.
    fn take_from(
        &self,
        local: &mut LocalRoom<R>,
        member: &MemberId,
        still: impl FnOnce(&LocalMember<R>) -> bool,
    ) -> Option<LocalMember<R>> {
        let index = local.members.iter().position(|m| &m.id == member)?;
        if !still(&local.members[index]) {
            return None;
        }
        let removed = local.members.remove(index);
        if let Some(pid) = &removed.recovery {
            self.recoveries.lock().remove(pid);
        }
        Some(removed)
    }

    /// Members of `room` (this node's and the others').
    pub fn members(&self, room: &RoomId) -> Vec<MemberInfo> {
        let Some(local) = self.room(room) else {
            return Vec::new();
        };
        local.lock().present()
    }

    /// Removes a local member and announces it (a `presence` event) to those who
    /// remain; drops a room with no local member left. `None` if it was not there.
    pub fn remove<T: Serialize>(
        &self,
        room: &RoomId,
        member: &MemberId,
        make_event: impl FnOnce(u64, Pos) -> T,
    ) -> Option<Removal<R>> {
        self.remove_if(room, member, |_| true, |ts, pos, _| make_event(ts, pos))
    }

    /// `remove`, when `still` holds of the member under the room's lock.
    fn remove_if<T: Serialize>(
        &self,
        room: &RoomId,
        member: &MemberId,
        still: impl FnOnce(&LocalMember<R>) -> bool,
        make_event: impl FnOnce(u64, Pos, &LocalMember<R>) -> T,
    ) -> Option<Removal<R>> {
        let mut rooms = self.rooms.lock();
        let local_arc = rooms.get(room)?.clone();
        let mut local = local_arc.lock();
        let removed = self.take_from(&mut local, member, still)?;
        let meta = LogMeta::presence(member, 0);
        let delivery = local.deliver(
            events::PRESENCE,
            Audience::AllExcept(member),
            meta,
            |ts, pos| make_event(ts, pos, &removed),
        );
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
        meta: LogMeta,
        make_event: impl FnOnce(u64, Pos) -> T,
    ) -> Option<Delivery<R>> {
        let local = self.room(room)?;
        let mut local = local.lock();
        Some(local.deliver(event, audience, meta, make_event))
    }

    /// Marks a member whose connection dropped as away: it stays a member for the grace,
    /// its events are kept for it, and the others hear `away`. Returns the delivery, the
    /// absence (its time, for the leave, and its generation, for `expire`); `None` if it
    /// is not here or already away.
    pub fn set_away(
        &self,
        room: &RoomId,
        member: &MemberId,
        socket: &R,
        reason: LeaveReason,
    ) -> Option<(Delivery<R>, Away)> {
        let local = self.room(room)?;
        let mut local = local.lock();
        local.absences += 1;
        let generation = local.absences;
        let since = now_millis();
        let m = local.members.iter_mut().find(|m| &m.id == member)?;
        // Only the connection that holds the member can leave it away (a resumed member
        // is held by its new connection; the old one's disconnect changes nothing).
        if m.away.is_some() || m.socket.as_ref().is_none_or(|s| !s.same(socket)) {
            return None;
        }
        m.socket = None;
        let away = Away {
            since,
            reason,
            generation,
        };
        m.away = Some(away);
        let event = PresenceEvent::Away {
            room: room.clone(),
            member: member.clone(),
            at: since,
            pos: 0,
        };
        let meta = LogMeta::presence(member, 0);
        let delivery = local.deliver(
            events::PRESENCE,
            Audience::AllExcept(member),
            meta,
            |_, pos| {
                let mut e = event;
                e.set_pos(pos);
                e
            },
        );
        Some((delivery, away))
    }

    /// Ends an absence whose grace ran out: removes the member and announces its leave,
    /// with the time and reason of its drop. `None` if it came back (or left) meanwhile.
    pub fn expire(&self, room: &RoomId, member: &MemberId, generation: u64) -> Option<Removal<R>> {
        let removal = self.remove_if(
            room,
            member,
            |m| m.away.is_some_and(|a| a.generation == generation),
            |_, pos, m| {
                let a = m.away.unwrap_or(Away {
                    since: now_millis(),
                    reason: LeaveReason::Disconnected,
                    generation,
                });
                PresenceEvent::Leave {
                    room: room.clone(),
                    member: member.clone(),
                    at: a.since,
                    reason: a.reason,
                    pos,
                }
            },
        )?;
        Some(removal)
    }

    /// Recovers a member on a new connection from Socket.IO's connection state recovery:
    /// the away member of `room` holding recovery `pid` gets what it missed after
    /// `offset` (its join when the client saw nothing), then live traffic, on `socket`,
    /// which keeps the same pid. Unlike `resume`, it never takes a member from a live
    /// connection.
    pub fn recover(
        &self,
        room: &RoomId,
        pid: &str,
        offset: Option<Pos>,
        socket: &R,
        adopt: impl FnOnce(&MemberId) -> bool,
    ) -> Result<Resumed<R>, ResumeError> {
        let local = self.room(room).ok_or(ResumeError::UnknownSession)?;
        let mut local = local.lock();
        let index =
            local.member_where(|m| m.recovery.as_deref() == Some(pid) && m.away.is_some())?;
        let pos = offset.unwrap_or(local.members[index].joined_pos);
        // The client hears of no new token on a recovery: it keeps the one it has.
        local.reattach(room, index, pos, socket, false, adopt, |_| {})
    }

    /// Resumes a member on a new connection: checks the token, hands `ack` the new
    /// session (queued first), replays what the member missed, then attaches the new
    /// socket so live traffic follows, all under the room's lock. The others hear `back`
    /// if they had heard `away`.
    #[allow(clippy::too_many_arguments)]
    pub fn resume(
        &self,
        room: &RoomId,
        member: &MemberId,
        token: &str,
        place: &LogPlace,
        socket: &R,
        adopt: impl FnOnce(&MemberId) -> bool,
        ack: impl FnOnce(ResumeView),
    ) -> Result<Resumed<R>, ResumeError> {
        let local = self.room(room).ok_or(ResumeError::UnknownSession)?;
        let mut local = local.lock();
        let index = local.member_where(|m| same_token(&m.token, token) && &m.id == member)?;
        if place.epoch != **local.log.epoch() {
            return Err(ResumeError::UnknownSession);
        }
        // A member resumed by token stops being recoverable by its old connection's pid.
        if let Some(pid) = local.members[index].recovery.take() {
            self.recoveries.lock().remove(&pid);
        }
        local.reattach(room, index, place.pos, socket, true, adopt, ack)
    }
}

impl<R: Receiver> LocalRoom<R> {
    /// The index of the local member `which` picks: the one a recovery or resume returns.
    fn member_where(&self, which: impl Fn(&LocalMember<R>) -> bool) -> Result<usize, ResumeError> {
        self.members
            .iter()
            .position(which)
            .ok_or(ResumeError::UnknownSession)
    }

    /// Sends a returning member's replay to its new socket, which becomes the room's
    /// encoder.
    fn replay_to(&mut self, socket: &R, frames: &[R::Frame]) -> Delivery<R> {
        let mut replayed = Delivery::<R>::default();
        for frame in frames {
            send(&mut replayed, socket, frame);
        }
        self.encoder = Some(socket.clone());
        replayed
    }

    /// Puts member `index` back on `socket`: a new token, `ack` (queued first), the
    /// replay of what it missed after `pos`, then `back` to the others if they had heard
    /// `away`. All under the room's lock, so live traffic follows the replay.
    #[allow(clippy::too_many_arguments)]
    fn reattach(
        &mut self,
        room: &RoomId,
        index: usize,
        pos: Pos,
        socket: &R,
        rotate: bool,
        adopt: impl FnOnce(&MemberId) -> bool,
        ack: impl FnOnce(ResumeView),
    ) -> Result<Resumed<R>, ResumeError> {
        let local = self;
        local.log.evict(Instant::now());
        let member_id = local.members[index].id.clone();
        let replay = local
            .log
            .replay_for(&member_id, pos)
            .map_err(|PlaceError::Future| ResumeError::FuturePosition)?;
        let frames: Vec<R::Frame> = replay.frames.into_iter().cloned().collect();
        let missed = replay.missed;
        if !adopt(&member_id) {
            return Err(ResumeError::OtherMember);
        }
        let member = &mut local.members[index];
        if rotate {
            member.token = new_token();
        }
        let token = member.token.clone();
        let previous = member.socket.replace(socket.clone());
        let was_away = member.away.take();
        let at = member.at;
        let pos = local.log.last();
        let epoch = local.log.epoch().clone();
        ack(ResumeView {
            member: member_id.clone(),
            at,
            token,
            epoch,
            pos,
            replayed: frames.len() as u64,
            missed,
        });
        let replayed = local.replay_to(socket, &frames);
        let mut delivery = Delivery::<R>::default();
        if was_away.is_some() {
            let event = PresenceEvent::Back {
                room: room.clone(),
                member: member_id.clone(),
                at: now_millis(),
                pos: 0,
            };
            delivery = local.deliver(
                events::PRESENCE,
                Audience::AllExcept(&member_id),
                LogMeta::presence(&member_id, 0),
                |_, pos| {
                    let mut e = event;
                    e.set_pos(pos);
                    e
                },
            );
        }
        delivery.slow.extend(replayed.slow);
        Ok(Resumed {
            delivery,
            previous: previous.filter(|p| !p.same(socket)),
            replayed: frames.len() as u64,
        })
    }
}

impl<R: Receiver> RoomRegistry<R> {
    /// True if `member` is in `room`, on this node or another.
    pub fn contains(&self, room: &RoomId, member: &MemberId) -> bool {
        let Some(local) = self.room(room) else {
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

    /// The room's last position (0 if it is not here).
    pub fn last_pos(&self, room: &RoomId) -> Pos {
        let Some(local) = self.room(room) else {
            return 0;
        };
        local.lock().log.last()
    }

    /// This node's members of `room`, but `except`, whose send queue holds more than
    /// `limit` bytes: the receivers a file's sender waits for.
    pub fn behind(&self, room: &RoomId, except: &MemberId, limit: usize) -> Vec<R> {
        let Some(local) = self.room(room) else {
            return Vec::new();
        };
        let local = local.lock();
        local
            .members
            .iter()
            .filter(|m| &m.id != except)
            .filter_map(|m| m.socket.as_ref())
            .filter(|s| s.backlog() > limit)
            .cloned()
            .collect()
    }

    /// Rooms with at least one local member.
    pub fn room_count(&self) -> usize {
        self.rooms.lock().len()
    }
}

/// What runs once an event is delivered here (a sender's ack: it then follows every
/// earlier event of the room on the sender's connection).
pub struct Then(pub Box<dyn FnOnce() + Send>);

impl std::fmt::Debug for Then {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Then")
    }
}

/// What applying events from the cluster's log did here.
#[derive(Debug)]
pub struct Applied<R: Receiver = SocketRef> {
    /// Each delivery and the sealed bytes it carried.
    pub deliveries: Vec<(Delivery<R>, usize)>,
    /// Connections that held a member another node took over (it resumed there): they
    /// no longer hold that room.
    pub moved: Vec<R>,
    /// The recovery pids of those members.
    moved_pids: Vec<Arc<str>>,
    /// What waited for its event to be delivered: run once the room's lock is released.
    pub then: Vec<Then>,
}

/// See `RoomRegistry::open_logged`.
#[derive(Debug)]
pub enum Opening {
    /// New here: subscribe, then send `true`.
    New(tokio::sync::watch::Sender<bool>),
    /// Here already: wait for `true` (`None`: nothing to wait for).
    Known(Option<tokio::sync::watch::Receiver<bool>>),
}

/// A resume on this node needs the cluster log's events `after < pos < before` first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NeedFetch {
    /// The last position the member saw.
    pub after: Pos,
    /// The first position this node can replay itself.
    pub before: Pos,
}

/// Why a resume through the cluster's log did not attach the member.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoggedResumeError {
    /// Read these events from the log, then try again.
    Fetch(NeedFetch),
    /// See `ResumeError`.
    Refused(ResumeError),
}

impl<R: Receiver> LocalRoom<R> {
    /// Delivers, in position order, every pending event whose turn has come.
    fn drain(&mut self, local_node: &str, applied: &mut Applied<R>) {
        while let Some(entry) = self.pending.first_entry() {
            let pos = *entry.key();
            if pos <= self.log.last() {
                // Delivered already (read back from the log): what waited for it goes on.
                applied.then.extend(entry.remove().1);
                continue;
            }
            if pos != self.log.last() + 1 {
                break;
            }
            let (bus, then) = entry.remove();
            self.deliver_placed(bus, local_node, applied);
            applied.then.extend(then);
        }
        while let Some(entry) = self.waiting.first_entry() {
            if *entry.key() > self.log.last() {
                break;
            }
            applied.then.extend(entry.remove());
        }
        self.gap_since = if self.pending.is_empty() {
            None
        } else {
            Some(self.gap_since.unwrap_or_else(Instant::now))
        };
    }

    /// Delivers one event at its turn: presence first updates who is where.
    fn deliver_placed(&mut self, bus: BusEvent, local_node: &str, applied: &mut Applied<R>) {
        match bus.event {
            RoomEvent::Presence(p) => {
                let member = p.member().clone();
                let here = self.members.iter().position(|m| m.id == member);
                match (&p, here) {
                    // Another node took this member over (it resumed there): it goes
                    // from here silently; its old connection no longer holds the room.
                    (PresenceEvent::Join { .. } | PresenceEvent::Back { .. }, Some(i))
                        if bus.node != local_node =>
                    {
                        let gone = self.members.remove(i);
                        if let Some(socket) = gone.socket {
                            applied.moved.push(socket);
                        }
                        if let Some(pid) = gone.recovery {
                            applied.moved_pids.push(pid);
                        }
                        if !self.remote.iter().any(|m| m.member == member) {
                            self.remote.push(MemberInfo {
                                member: member.clone(),
                                at: gone.at,
                                profile: gone.profile.to_string(),
                            });
                        }
                    }
                    (PresenceEvent::Join { at, profile, .. }, None)
                        if !self.remote.iter().any(|m| m.member == member) =>
                    {
                        self.remote.push(MemberInfo {
                            member: member.clone(),
                            at: *at,
                            profile: profile.clone(),
                        });
                    }
                    (PresenceEvent::Leave { .. }, None) => {
                        self.remote.retain(|m| m.member != member);
                    }
                    _ => {}
                }
                let bytes = match &p {
                    PresenceEvent::Join { profile, .. } => profile.len(),
                    _ => 0,
                };
                let meta = LogMeta::presence(&member, bytes);
                let delivery = self.deliver(
                    events::PRESENCE,
                    Audience::AllExcept(&member),
                    meta,
                    |_, _| p,
                );
                applied.deliveries.push((delivery, 0));
            }
            RoomEvent::Msg(m) => {
                let size = m.data.len();
                let kind = if bus.counted { Kind::Msg } else { Kind::Signal };
                let meta = LogMeta::sent(kind, &m.from, size, None);
                let (from, to) = (m.from.clone(), m.to.clone());
                let audience = to
                    .as_ref()
                    .map_or(Audience::AllExcept(&from), Audience::Only);
                let delivery = self.deliver(events::MSG, audience, meta, |_, _| m);
                applied.deliveries.push((delivery, size));
            }
            RoomEvent::Chunk(c) => {
                let size = c.data.len();
                let from = c.from.clone();
                let meta = LogMeta::sent(Kind::Chunk, &from, size, None);
                let delivery =
                    self.deliver(events::CHUNK, Audience::AllExcept(&from), meta, |_, _| c);
                applied.deliveries.push((delivery, size));
            }
        }
    }

    /// Takes up the cluster's log at `placed` (this node's first member of the room):
    /// what came before is not this node's to deliver.
    fn base_at(&mut self, placed: &Placed, remote: Vec<MemberInfo>) {
        if self.based && **self.log.epoch() == *placed.epoch {
            return;
        }
        self.log
            .rebase(placed.epoch.clone(), placed.pos.saturating_sub(1));
        self.based = true;
        self.remote = remote;
        let last = self.log.last();
        self.pending.retain(|pos, _| *pos > last);
    }
}

/// Encodes an event read back from the cluster's log for `socket`, as it was delivered.
fn encode_logged<R: Receiver>(socket: &R, bus: &BusEvent) -> Option<R::Frame> {
    let pos = bus.event.pos();
    let encoded = match &bus.event {
        RoomEvent::Presence(p) => socket.encode(events::PRESENCE, &(p, Offset(pos))),
        RoomEvent::Msg(m) => socket.encode(events::MSG, &(m, Offset(pos))),
        RoomEvent::Chunk(c) => socket.encode(events::CHUNK, &(c, Offset(pos))),
    };
    encoded.ok()
}

/// Whether `member` would have received this logged event.
fn is_for(bus: &BusEvent, member: &MemberId) -> bool {
    match &bus.event {
        RoomEvent::Presence(p) => p.member() != member,
        RoomEvent::Msg(m) => &m.from != member && m.to.as_ref().is_none_or(|to| to == member),
        RoomEvent::Chunk(c) => &c.from != member,
    }
}

impl<R: Receiver> RoomRegistry<R> {
    /// With a cluster log: makes sure this node has `room`, waiting for its first place in
    /// the log. `Opening::New`: it was not here, and the caller subscribes to its events,
    /// then says so; `Opening::Known`: wait until this node hears them.
    pub fn open_logged(&self, room: &RoomId) -> Opening {
        let mut rooms = self.rooms.lock();
        if let Some(local) = rooms.get(room) {
            return Opening::Known(local.lock().hearing.clone());
        }
        let mut local = LocalRoom::new(self.bounds.clone());
        local.based = false;
        let (tx, rx) = tokio::sync::watch::channel(false);
        local.hearing = Some(rx);
        rooms.insert(room.clone(), Arc::new(Mutex::new(local)));
        Opening::New(tx)
    }

    /// Forgets `room` if it has no member here; true if it did (unsubscribe).
    pub fn close_if_empty(&self, room: &RoomId) -> bool {
        let mut rooms = self.rooms.lock();
        let empty = rooms.get(room).is_some_and(|r| r.lock().members.is_empty());
        if empty {
            rooms.remove(room);
        }
        empty
    }

    /// What this node knows of the room's place in the cluster's log.
    pub fn hint(&self, room: &RoomId) -> LogHint {
        match self.room(room) {
            Some(local) => {
                let local = local.lock();
                if local.based {
                    LogHint {
                        epoch: Some(local.log.epoch().clone()),
                        pos: local.log.last(),
                    }
                } else {
                    LogHint::default()
                }
            }
            None => LogHint::default(),
        }
    }

    /// Applies an event placed in the cluster's log: delivered once, in position order,
    /// to this node's members (an event ahead of its turn waits for the ones before).
    pub fn apply(&self, bus: BusEvent, local_node: &str) -> Applied<R> {
        self.apply_then(bus, local_node, None)
    }

    /// `apply`, and `then` once the event is delivered here (at once if it was already,
    /// or the room is not here).
    pub fn apply_then(&self, bus: BusEvent, local_node: &str, then: Option<Then>) -> Applied<R> {
        let mut applied = Applied::<R>::default();
        let Some(local) = self.room(&bus.room) else {
            applied.then.extend(then);
            return applied;
        };
        let mut local = local.lock();
        let pos = bus.event.pos();
        if local.based && (**local.log.epoch() != *bus.epoch || pos <= local.log.last()) {
            // Delivered already, or another incarnation of the room.
            applied.then.extend(then);
            return applied;
        }
        // An echo of an event still waiting keeps the first copy and what waits for it.
        if let Some((_, waiting)) = local.pending.get_mut(&pos) {
            if waiting.is_none() {
                *waiting = then;
            } else {
                applied.then.extend(then);
            }
        } else {
            local.pending.insert(pos, (bus, then));
        }
        if local.based {
            local.drain(local_node, &mut applied);
        }
        self.forget_moved(&applied);
        applied
    }

    /// Runs `then` once position `pos` of `room` has been delivered here (at once if it
    /// was, or the room is not here or not yet placed): an answer that names `pos` then
    /// follows every earlier event on the connection.
    pub fn when_delivered(&self, room: &RoomId, pos: Pos, then: Then) -> Applied<R> {
        let mut applied = Applied::<R>::default();
        let Some(local) = self.room(room) else {
            applied.then.push(then);
            return applied;
        };
        let mut local = local.lock();
        if !local.based || pos <= local.log.last() {
            applied.then.push(then);
        } else {
            local.waiting.entry(pos).or_default().push(then);
        }
        applied
    }

    fn forget_moved(&self, applied: &Applied<R>) {
        if !applied.moved_pids.is_empty() {
            let mut recoveries = self.recoveries.lock();
            for pid in &applied.moved_pids {
                recoveries.remove(pid);
            }
        }
    }

    /// Every room held here (a snapshot: each room's lock is taken after).
    fn held(&self) -> Vec<(RoomId, Arc<Mutex<LocalRoom<R>>>)> {
        self.rooms
            .lock()
            .iter()
            .map(|(id, r)| (id.clone(), r.clone()))
            .collect()
    }

    /// Every room that follows the cluster's log here, with the last position delivered.
    pub fn tails(&self) -> Vec<(RoomId, Pos)> {
        self.held()
            .into_iter()
            .filter_map(|(id, r)| {
                let local = r.lock();
                local.based.then(|| (id, local.log.last()))
            })
            .collect()
    }

    /// Rooms whose next event has been missing for longer than `wait`: the events to
    /// read from the log (`after < pos < before`).
    pub fn gaps(&self, wait: std::time::Duration) -> Vec<(RoomId, Pos, Pos)> {
        let now = Instant::now();
        self.held()
            .into_iter()
            .filter_map(|(id, r)| {
                let local = r.lock();
                let since = local.gap_since?;
                let first = *local.pending.keys().next()?;
                (local.based && now.duration_since(since) >= wait)
                    .then(|| (id, local.log.last(), first))
            })
            .collect()
    }

    /// Fills a gap with the events read back from the log; positions the log no longer
    /// has before `before` are skipped (counted by the caller), and what waited follows.
    pub fn fill(
        &self,
        room: &RoomId,
        fetched: Fetched,
        before: Pos,
        local_node: &str,
    ) -> (Applied<R>, u64) {
        let mut applied = Applied::<R>::default();
        let Some(local) = self.room(room) else {
            return (applied, 0);
        };
        let mut local = local.lock();
        let mut skipped = 0;
        for bus in fetched.events {
            let pos = bus.event.pos();
            if pos <= local.log.last() {
                continue;
            }
            if pos != local.log.last() + 1 {
                skipped += pos - local.log.last() - 1;
                local.log.skip(pos - 1);
            }
            local.deliver_placed(bus, local_node, &mut applied);
        }
        if local.log.last() + 1 < before {
            skipped += before - local.log.last() - 1;
            local.log.skip(before - 1);
        }
        local.drain(local_node, &mut applied);
        drop(local);
        self.forget_moved(&applied);
        (applied, skipped)
    }

    /// With a cluster log: adds an admitted joiner at its place. `members` are the
    /// room's members after the join (every node's), `join` its placed event. The ack
    /// (`admitted`) is queued before anything of the room reaches the joiner.
    #[allow(clippy::too_many_arguments)]
    pub fn join_logged(
        &self,
        room: &RoomId,
        joiner: LocalMember<R>,
        placed: &Placed,
        members: &[(MemberInfo, String)],
        local_node: &str,
        since: Option<&LogPlace>,
        admitted: impl FnOnce(JoinView),
        join: BusEvent,
    ) -> Result<Applied<R>, JoinRefused> {
        let local_arc = {
            let mut rooms = self.rooms.lock();
            let bounds = self.bounds.clone();
            rooms
                .entry(room.clone())
                .or_insert_with(|| {
                    let mut r = LocalRoom::new(bounds);
                    r.based = false;
                    Arc::new(Mutex::new(r))
                })
                .clone()
        };
        let mut local = local_arc.lock();
        if local.members.iter().any(|m| m.id == joiner.id) {
            return Err(JoinRefused::AlreadyIn);
        }
        let others = |keep: &dyn Fn(&str) -> bool| -> Vec<MemberInfo> {
            members
                .iter()
                .filter(|(m, node)| m.member != joiner.id && keep(node))
                .map(|(m, _)| m.clone())
                .collect()
        };
        local.base_at(placed, others(&|node| node != local_node));
        local.remote.retain(|m| m.member != joiner.id);
        local.log.evict(Instant::now());
        let missed = since.map(|p| local.log.missed_since(&p.epoch, p.pos));
        admitted(JoinView {
            members: others(&|_| true),
            epoch: placed.epoch.clone(),
            pos: placed.pos,
            missed,
        });
        let mut joiner = joiner;
        let last = local.log.last();
        if placed.pos <= last
            && let (Ok(replay), Some(socket)) =
                (local.log.replay_for(&joiner.id, placed.pos), &joiner.socket)
        {
            let frames: Vec<R::Frame> = replay.frames.into_iter().cloned().collect();
            let mut d = Delivery::<R>::default();
            for f in &frames {
                send(&mut d, socket, f);
            }
        }
        joiner.joined_pos = placed.pos.max(last);
        if let Some(socket) = &joiner.socket {
            local.encoder = Some(socket.clone());
        }
        if let Some(pid) = &joiner.recovery {
            self.recoveries.lock().insert(pid.clone(), room.clone());
        }
        local.members.push(joiner);
        local.pending.insert(placed.pos, (join, None));
        let mut applied = Applied::<R>::default();
        local.drain(local_node, &mut applied);
        Ok(applied)
    }

    /// With a cluster log: a member resumed through the log (`placed` is its `back`):
    /// replays what it missed after `from` (from `fetched` for what this node never had),
    /// then attaches `socket`. The ack (`ack`) goes first.
    #[allow(clippy::too_many_arguments)]
    pub fn resume_logged(
        &self,
        room: &RoomId,
        info: &MemberInfo,
        token: String,
        placed: &Placed,
        members: &[(MemberInfo, String)],
        from: Pos,
        fetched: Option<(&Fetched, Pos)>,
        socket: &R,
        local_node: &str,
        adopt: impl FnOnce(&MemberId) -> bool,
        ack: impl FnOnce(ResumeView),
        back: BusEvent,
    ) -> Result<(Applied<R>, Option<R>, u64), LoggedResumeError> {
        let local_arc = self
            .room(room)
            .ok_or(LoggedResumeError::Refused(ResumeError::UnknownSession))?;
        let mut local = local_arc.lock();
        if from >= placed.pos {
            return Err(LoggedResumeError::Refused(ResumeError::FuturePosition));
        }
        local.log.evict(Instant::now());
        // The room is taken up here only once the member can be attached in the same
        // step: a room taken up with nobody to encode for would drop what it applies
        // meanwhile (while its replay is read back from the log).
        let taken_up = local.based && **local.log.epoch() == *placed.epoch;
        let first_known = if taken_up {
            local.log.first_known()
        } else {
            placed.pos
        };
        let mut frames: Vec<R::Frame> = Vec::new();
        let mut missed = None;
        if from + 1 < first_known {
            let Some((f, _)) = fetched.filter(|(_, before)| *before >= first_known) else {
                return Err(LoggedResumeError::Fetch(NeedFetch {
                    after: from,
                    before: first_known,
                }));
            };
            if f.evicted > from {
                missed = Some(Missed {
                    messages: 0,
                    exact: false,
                });
            }
            frames.extend(
                f.events
                    .iter()
                    .filter(|e| e.event.pos() > from && e.event.pos() < first_known)
                    .filter(|e| is_for(e, &info.member))
                    .filter_map(|e| encode_logged(socket, e)),
            );
        }
        if !taken_up {
            let remote: Vec<MemberInfo> = members
                .iter()
                .filter(|(m, node)| m.member != info.member && node != local_node)
                .map(|(m, _)| m.clone())
                .collect();
            local.base_at(placed, remote);
        }
        if let Ok(replay) = local
            .log
            .replay_for(&info.member, from.max(first_known.saturating_sub(1)))
        {
            frames.extend(replay.frames.into_iter().cloned());
        }
        if !adopt(&info.member) {
            return Err(LoggedResumeError::Refused(ResumeError::OtherMember));
        }
        // The member may be here already (it resumes on the node it was on).
        let previous = match local.members.iter().position(|m| m.id == info.member) {
            Some(i) => local.members.remove(i).socket,
            None => None,
        };
        local.remote.retain(|m| m.member != info.member);
        let last = local.log.last();
        ack(ResumeView {
            member: info.member.clone(),
            at: info.at,
            token: token.clone(),
            epoch: placed.epoch.clone(),
            pos: last.max(from),
            replayed: frames.len() as u64,
            missed,
        });
        let replayed = local.replay_to(socket, &frames);
        local.members.push(LocalMember {
            id: info.member.clone(),
            socket: Some(socket.clone()),
            at: info.at,
            profile: Arc::from(info.profile.as_str()),
            token,
            away: None,
            joined_pos: last.max(from),
            recovery: None,
        });
        local.pending.insert(placed.pos, (back, None));
        let mut applied = Applied::<R>::default();
        local.drain(local_node, &mut applied);
        let mut slow = Delivery::<R>::default();
        slow.slow = replayed.slow;
        applied.deliveries.push((slow, 0));
        Ok((
            applied,
            previous.filter(|p| !p.same(socket)),
            frames.len() as u64,
        ))
    }

    /// With a cluster log: takes a member out of the room here without announcing it
    /// (its leave goes through the log). `still` must hold of it. True if the room has
    /// no member here any more.
    pub fn take(
        &self,
        room: &RoomId,
        member: &MemberId,
        still: impl FnOnce(&LocalMember<R>) -> bool,
    ) -> Option<(LocalMember<R>, bool)> {
        let local = self.room(room)?;
        let mut local = local.lock();
        let removed = self.take_from(&mut local, member, still)?;
        Some((removed, local.members.is_empty()))
    }

    /// With a cluster log: marks a member away here without announcing it (its `away`
    /// goes through the log). `None` if it is not held by `socket`.
    pub fn mark_away(
        &self,
        room: &RoomId,
        member: &MemberId,
        socket: &R,
        reason: LeaveReason,
    ) -> Option<Away> {
        let local = self.room(room)?;
        let mut local = local.lock();
        local.absences += 1;
        let generation = local.absences;
        let m = local.members.iter_mut().find(|m| &m.id == member)?;
        if m.away.is_some() || m.socket.as_ref().is_none_or(|s| !s.same(socket)) {
            return None;
        }
        m.socket = None;
        let away = Away {
            since: now_millis(),
            reason,
            generation,
        };
        m.away = Some(away);
        Some(away)
    }

    /// A member's session here: the room's epoch, its last position, the member's token.
    pub fn session(&self, room: &RoomId, member: &MemberId) -> Option<(Arc<str>, Pos, String)> {
        let local = self.room(room)?;
        let local = local.lock();
        let m = local.members.iter().find(|m| &m.id == member)?;
        Some((local.log.epoch().clone(), local.log.last(), m.token.clone()))
    }

    /// The away member holding recovery `pid` in `room`, with its token (a Socket.IO
    /// recovery through the cluster log resumes it by token).
    pub fn recoverable(&self, room: &RoomId, pid: &str) -> Option<(MemberId, String, Pos)> {
        let local = self.room(room)?;
        let local = local.lock();
        local
            .members
            .iter()
            .find(|m| m.recovery.as_deref() == Some(pid) && m.away.is_some())
            .map(|m| (m.id.clone(), m.token.clone(), m.joined_pos))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::Budget;
    use streamchat_protocol::{Binary, MsgEvent};

    fn registry() -> RoomRegistry<Fake> {
        RoomRegistry::new(Bounds {
            age: std::time::Duration::from_secs(120),
            bytes: 1 << 20,
            total: Budget::new(1 << 24),
        })
    }

    /// An in-memory receiver: what it was sent, as `(event, pos, payload)`, up to
    /// `room` events (then `Full`), or `Closed`.
    #[derive(Debug, Clone)]
    struct Fake {
        id: u32,
        inbox: Arc<Mutex<Vec<(String, Pos, serde_json::Value)>>>,
        room: usize,
        closed: bool,
        /// Bytes of the frames it got and has not "read" (see `read_all`).
        unread: Arc<std::sync::atomic::AtomicUsize>,
    }

    impl Fake {
        fn new(id: u32) -> Self {
            Self::with_room(id, usize::MAX)
        }

        fn with_room(id: u32, room: usize) -> Self {
            Self {
                id,
                inbox: Arc::default(),
                room,
                closed: false,
                unread: Arc::default(),
            }
        }

        /// Its client reads everything queued for it.
        fn read_all(&self) {
            self.unread.store(0, std::sync::atomic::Ordering::Relaxed);
        }

        fn got(&self) -> Vec<(String, Pos, serde_json::Value)> {
            self.inbox.lock().clone()
        }

        /// The `n` of every `msg` received, in order.
        fn msgs(&self) -> Vec<u64> {
            self.got()
                .iter()
                .filter(|(e, _, _)| e == events::MSG)
                .filter_map(|(_, _, p)| p["n"].as_u64())
                .collect()
        }
    }

    impl Receiver for Fake {
        type Frame = Arc<str>;

        fn same(&self, other: &Self) -> bool {
            self.id == other.id
        }

        fn encode<T: Serialize>(&self, event: &str, payload: &T) -> Result<Arc<str>, String> {
            serde_json::to_string(&(event, payload))
                .map(Arc::from)
                .map_err(|e| e.to_string())
        }

        fn send(&self, frame: &Arc<str>) -> Sent {
            if self.closed {
                return Sent::Closed;
            }
            let mut inbox = self.inbox.lock();
            if inbox.len() >= self.room {
                return Sent::Full;
            }
            let v: serde_json::Value = serde_json::from_str(frame).unwrap_or_default();
            let pos = v[1][1].as_str().and_then(|p| p.parse().ok()).unwrap_or(0);
            inbox.push((v[0].as_str().unwrap_or("").to_owned(), pos, v[1][0].clone()));
            self.unread
                .fetch_add(frame.len(), std::sync::atomic::Ordering::Relaxed);
            Sent::Queued
        }

        fn backlog(&self) -> usize {
            self.unread.load(std::sync::atomic::Ordering::Relaxed)
        }
    }

    fn id(name: &str) -> MemberId {
        MemberId::new(name).unwrap()
    }

    /// `who` joins the room on receiver `on`; returns its join view and token.
    fn join(r: &RoomRegistry<Fake>, who: &str, on: &Fake) -> (JoinView, String) {
        let token = new_token();
        let joiner = LocalMember {
            id: id(who),
            socket: Some(on.clone()),
            at: now_millis(),
            profile: Arc::from("cHJvZmlsZQ"),
            token: token.clone(),
            away: None,
            joined_pos: 0,
            recovery: None,
        };
        let mut view = None;
        r.join(
            &room(),
            joiner,
            100,
            None,
            |v| view = Some(v),
            |_, pos| serde_json::json!({"kind": "join", "member": who, "pos": pos}),
        )
        .unwrap();
        (view.unwrap(), token)
    }

    /// `from` sends message `n` to the room (or to `to`), optionally with a client id.
    fn send(
        r: &RoomRegistry<Fake>,
        from: &str,
        n: u64,
        to: Option<&str>,
        client_id: Option<&str>,
    ) -> Delivery<Fake> {
        let from = id(from);
        let to = to.map(id);
        let audience = to
            .as_ref()
            .map_or(Audience::AllExcept(&from), Audience::Only);
        let dedup = client_id.map(|c| DedupKey::Msg(from.clone(), c.into()));
        let meta = LogMeta::sent(Kind::Msg, &from, 8, dedup);
        r.deliver(
            &room(),
            events::MSG,
            audience,
            meta,
            |_, pos| serde_json::json!({"n": n, "pos": pos}),
        )
        .unwrap()
    }

    /// Members a, b and c join, in that order, each on its own receiver.
    fn three(r: &RoomRegistry<Fake>) -> (Fake, Fake, Fake) {
        let (a, b, c) = (Fake::new(1), Fake::new(2), Fake::new(3));
        join(r, "a", &a);
        join(r, "b", &b);
        join(r, "c", &c);
        (a, b, c)
    }

    #[test]
    fn fan_out_reaches_every_member_but_the_sender_once_in_room_order() {
        let r = registry();
        let (a, b, c) = three(&r);
        for n in 0..5 {
            let d = send(&r, "a", n, None, None);
            assert_eq!(d.delivered, 2, "b and c");
            assert!(d.slow.is_empty());
        }
        assert_eq!(
            a.msgs(),
            Vec::<u64>::new(),
            "the sender gets its own message only as its ack"
        );
        assert_eq!(b.msgs(), vec![0, 1, 2, 3, 4]);
        assert_eq!(c.msgs(), vec![0, 1, 2, 3, 4]);
        for x in [&a, &b, &c] {
            let positions: Vec<Pos> = x.got().iter().map(|(_, p, _)| *p).collect();
            assert!(
                positions.windows(2).all(|w| w[0] < w[1]),
                "room order: {positions:?}"
            );
        }
        // Joins are announced to those already there, never to the joiner.
        let joins = |x: &Fake| {
            x.got()
                .iter()
                .filter(|(e, _, _)| e == events::PRESENCE)
                .count()
        };
        assert_eq!((joins(&a), joins(&b), joins(&c)), (2, 1, 0));
    }

    #[test]
    fn a_direct_message_reaches_only_its_recipient() {
        let r = registry();
        let (_, b, c) = three(&r);
        assert_eq!(send(&r, "a", 7, Some("c"), None).delivered, 1);
        assert_eq!((b.msgs(), c.msgs()), (vec![], vec![7]));
    }

    #[test]
    fn a_full_receiver_is_reported_to_be_cut_off_and_the_others_still_get_everything() {
        let r = registry();
        let (a, c) = (Fake::new(1), Fake::new(3));
        let b = Fake::with_room(2, 3);
        join(&r, "a", &a);
        join(&r, "b", &b);
        join(&r, "c", &c);
        let mut slow_at = None;
        for n in 0..6 {
            let d = send(&r, "a", n, None, None);
            if d.slow.iter().any(|s| s.same(&b)) && slow_at.is_none() {
                slow_at = Some(n);
            }
        }
        // b held its join of c plus 2 messages: the third is the one it missed.
        assert_eq!(
            slow_at,
            Some(2),
            "b reported slow at the first event it missed"
        );
        assert_eq!(b.msgs(), vec![0, 1]);
        assert_eq!(
            c.msgs(),
            vec![0, 1, 2, 3, 4, 5],
            "nobody else slows down or loses anything"
        );
    }

    #[test]
    fn a_closing_receiver_is_neither_counted_nor_cut_off() {
        let r = registry();
        let a = Fake::new(1);
        let b = Fake {
            closed: true,
            ..Fake::new(2)
        };
        join(&r, "a", &a);
        join(&r, "b", &b);
        let d = send(&r, "a", 1, None, None);
        assert_eq!((d.delivered, d.slow.len()), (0, 0));
    }

    #[test]
    fn behind_lists_the_receivers_whose_backlog_passes_the_limit_never_the_sender() {
        let r = registry();
        let (a, b, c) = three(&r);
        for n in 0..5 {
            send(&r, "a", n, None, None);
        }
        send(&r, "b", 9, None, None);
        c.read_all();
        let behind = r.behind(&room(), &id("a"), 10);
        assert_eq!(
            behind.len(),
            1,
            "b, who read nothing; not c, who read all; never a"
        );
        assert!(behind[0].same(&b));
        assert!(a.backlog() > 10, "a's own backlog does not hold a's files");
        b.read_all();
        assert!(r.behind(&room(), &id("a"), 10).is_empty());
        assert!(r.behind(&room(), &id("a"), usize::MAX).is_empty());
    }

    #[test]
    fn a_resend_is_recognised_and_not_delivered_again() {
        let r = registry();
        let (a, b) = (Fake::new(1), Fake::new(2));
        join(&r, "a", &a);
        join(&r, "b", &b);
        let first = send(&r, "a", 1, None, Some("c1"));
        let again = send(&r, "a", 1, None, Some("c1"));
        assert!(!first.duplicate && again.duplicate);
        assert_eq!(
            (again.pos, again.ts),
            (first.pos, first.ts),
            "the first copy's place"
        );
        assert_eq!(again.delivered, 0);
        // Another sender may use the same client id.
        assert!(!send(&r, "b", 2, None, Some("c1")).duplicate);
        assert_eq!(b.msgs(), vec![1]);
    }

    #[test]
    fn a_member_that_resumes_gets_what_it_missed_then_live_traffic_in_order() {
        let r = registry();
        let (a, b) = (Fake::new(1), Fake::new(2));
        join(&r, "a", &a);
        let (view, token) = join(&r, "b", &b);
        send(&r, "a", 0, None, None);
        let seen = b.got().last().map(|(_, p, _)| *p).unwrap();
        let (_, away) = r
            .set_away(&room(), &id("b"), &b, LeaveReason::Disconnected)
            .unwrap();
        assert_eq!(away.reason, LeaveReason::Disconnected);
        for n in 1..4 {
            send(&r, "a", n, None, None);
        }
        let b2 = Fake::new(22);
        let place = LogPlace {
            epoch: view.epoch.to_string(),
            pos: seen,
        };
        let mut acked = None;
        let resumed = r
            .resume(
                &room(),
                &id("b"),
                &token,
                &place,
                &b2,
                |_| true,
                |v| acked = Some(v),
            )
            .unwrap();
        assert_eq!(resumed.replayed, 3);
        assert_ne!(acked.unwrap().token, token, "the token rotates");
        send(&r, "a", 4, None, None);
        assert_eq!(
            b2.msgs(),
            vec![1, 2, 3, 4],
            "the replay, then live, nothing twice"
        );
        let kinds: Vec<_> = a
            .got()
            .iter()
            .filter_map(|(_, _, p)| p["kind"].as_str().map(str::to_owned))
            .collect();
        assert!(
            kinds.iter().any(|k| k == "away") && kinds.iter().any(|k| k == "back"),
            "{kinds:?}"
        );
        // The old token is spent.
        assert!(
            r.resume(
                &room(),
                &id("b"),
                &token,
                &place,
                &Fake::new(23),
                |_| true,
                |_| {}
            )
            .is_err()
        );
    }

    fn room() -> RoomId {
        RoomId::new("AAAAAAAAAAAAAAAAAAAAAA").unwrap()
    }

    fn msg(pos: Pos, epoch: &str) -> BusEvent {
        BusEvent {
            node: "other".into(),
            room: room(),
            event: RoomEvent::Msg(MsgEvent {
                room: room(),
                from: MemberId::new("someone").unwrap(),
                ts: pos,
                data: Binary::from(vec![pos as u8]),
                to: None,
                pos,
            }),
            epoch: epoch.into(),
            counted: true,
        }
    }

    /// A room this node takes up at `base` (as its first joiner's place would).
    fn based(r: &RoomRegistry<Fake>, base: Pos) {
        let _ = r.open_logged(&room());
        let local = r.room(&room()).unwrap();
        let placed = Placed {
            epoch: Arc::from("e1"),
            pos: base + 1,
            ts: 0,
            duplicate: false,
        };
        local.lock().base_at(&placed, Vec::new());
    }

    fn last(r: &RoomRegistry<Fake>) -> Pos {
        r.room(&room()).unwrap().lock().log.last()
    }

    #[test]
    fn events_apply_in_position_order_each_once() {
        let r = registry();
        based(&r, 10);
        r.apply(msg(12, "e1"), "me");
        assert_eq!(last(&r), 10, "12 waits for 11");
        r.apply(msg(11, "e1"), "me");
        assert_eq!(last(&r), 12, "11 then 12");
        r.apply(msg(12, "e1"), "me");
        r.apply(msg(9, "e1"), "me");
        assert_eq!(last(&r), 12, "an echo or an older event changes nothing");
        assert!(r.gaps(std::time::Duration::ZERO).is_empty());
    }

    #[test]
    fn another_incarnation_of_the_room_is_ignored() {
        let r = registry();
        based(&r, 0);
        r.apply(msg(1, "other-epoch"), "me");
        assert_eq!(last(&r), 0);
    }

    #[test]
    fn events_heard_before_the_first_place_wait_and_older_ones_are_dropped() {
        let r = registry();
        let _ = r.open_logged(&room());
        r.apply(msg(4, "e1"), "me");
        r.apply(msg(6, "e1"), "me");
        let local = r.room(&room()).unwrap();
        let placed = Placed {
            epoch: Arc::from("e1"),
            pos: 5,
            ts: 0,
            duplicate: false,
        };
        local.lock().base_at(&placed, Vec::new());
        assert_eq!(
            local.lock().pending.len(),
            1,
            "4 came before this node's place"
        );
    }

    #[test]
    fn a_lasting_gap_is_reported_and_filled_or_skipped() {
        let r = registry();
        based(&r, 0);
        r.apply(msg(1, "e1"), "me");
        r.apply(msg(4, "e1"), "me");
        assert_eq!(
            r.gaps(std::time::Duration::ZERO),
            vec![(room(), 1, 4)],
            "2 and 3 are missing"
        );
        // The log still has 3 but no longer 2: 2 is skipped, 3 and 4 delivered.
        let fetched = Fetched {
            events: vec![msg(3, "e1")],
            epoch: "e1".into(),
            evicted: 2,
        };
        let (_, skipped) = r.fill(&room(), fetched, 4, "me");
        assert_eq!(skipped, 1);
        assert_eq!(last(&r), 4);
        assert!(r.gaps(std::time::Duration::ZERO).is_empty());
    }

    #[test]
    fn what_waits_for_an_event_runs_once_it_is_delivered() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        let r = registry();
        based(&r, 0);
        let ran = Arc::new(AtomicUsize::new(0));
        let then = |ran: &Arc<AtomicUsize>| {
            let ran = ran.clone();
            Some(Then(Box::new(move || {
                ran.fetch_add(1, Ordering::SeqCst);
            })))
        };
        let applied = r.apply_then(msg(2, "e1"), "me", then(&ran));
        assert!(
            applied.then.is_empty(),
            "2 waits for 1, and so does its ack"
        );
        let applied = r.apply(msg(1, "e1"), "me");
        assert_eq!(applied.then.len(), 1, "delivered: the ack goes");
        for t in applied.then {
            (t.0)();
        }
        assert_eq!(ran.load(Ordering::SeqCst), 1);
        let applied = r.apply_then(msg(2, "e1"), "me", then(&ran));
        assert_eq!(applied.then.len(), 1, "already delivered: at once");
        // A resend's answer names its first copy's position: it waits for it the same way.
        let waiting = r.when_delivered(&room(), 4, then(&ran).unwrap());
        assert!(waiting.then.is_empty(), "4 is not delivered here yet");
        assert!(r.apply(msg(3, "e1"), "me").then.is_empty());
        assert_eq!(
            r.apply(msg(4, "e1"), "me").then.len(),
            1,
            "4 delivered: the answer goes"
        );
        assert_eq!(
            r.when_delivered(&room(), 4, then(&ran).unwrap()).then.len(),
            1
        );
    }
}
