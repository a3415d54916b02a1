//! A room's log: positions, the bounded replay window, and duplicate detection.
//!
//! Every event delivered to a room gets the room's next position. The last events are
//! kept, as the frames that were sent (sealed bytes, never opened), for a short window
//! bounded in time and in bytes, so a member whose connection dropped can resume and get
//! exactly what it missed (docs/protocol.md, "Resumable sessions"). Resent messages are
//! recognised by `(member, client id)` (chunks by `(member, file, seq)`) while their first
//! copy is in the window. Sans I/O: the frame type is generic and time is passed in, so
//! the rules are unit-tested here without sockets or clocks.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use streamchat_protocol::{FileId, MemberId, Millis, Missed, Pos};

/// Bytes counted per entry beside its payload (header, ids, bookkeeping), so that a
/// flood of tiny events is bounded too.
pub const ENTRY_OVERHEAD: usize = 160;

/// How a resend is recognised.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum DedupKey {
    /// A `msg` with a client id.
    Msg(MemberId, Box<str>),
    /// A `chunk`.
    Chunk(MemberId, FileId, u32),
}

/// What kind of event an entry holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A sealed message with a client id (counted in gaps: clients give ids to what
    /// people write, and resend it).
    Msg,
    /// A sealed message without a client id (typing notices and other signals): replayed,
    /// but not counted in gaps.
    Signal,
    /// A file chunk.
    Chunk,
    /// A presence change.
    Presence,
}

/// One event of the room, as sent.
#[derive(Debug)]
pub struct Entry<F> {
    /// Its position.
    pub pos: Pos,
    /// When it was sent (for the time bound).
    pub at: Instant,
    /// Its kind.
    pub kind: Kind,
    /// The member it comes from or is about: never replayed to that member.
    pub about: Option<MemberId>,
    /// For a direct message: the only member who may see it.
    pub only: Option<MemberId>,
    /// The frame as sent.
    pub frame: F,
    /// Bytes it counts for.
    pub bytes: usize,
    /// Its duplicate key, if any.
    dedup: Option<DedupKey>,
}

/// What a new entry carries, before it has a position.
#[derive(Debug)]
pub struct NewEntry<F> {
    /// Its kind.
    pub kind: Kind,
    /// The member it comes from or is about.
    pub about: Option<MemberId>,
    /// For a direct message: its recipient.
    pub only: Option<MemberId>,
    /// The frame as sent.
    pub frame: F,
    /// Payload bytes (sealed data and profile).
    pub payload_bytes: usize,
    /// Its duplicate key, if any.
    pub dedup: Option<DedupKey>,
    /// Its server timestamp.
    pub ts: Millis,
}

/// The bounds of the window.
#[derive(Debug, Clone)]
pub struct Bounds {
    /// Events older than this are dropped.
    pub age: Duration,
    /// At most this many bytes per room; the oldest go first.
    pub bytes: usize,
    /// At most this many bytes in all the rooms' windows together: a room that adds an
    /// event while the total is over drops its own oldest first, so the rooms that send
    /// the most pay, and quiet rooms keep theirs.
    pub total: Arc<Budget>,
}

/// The bytes held by every window of a node, against one budget.
#[derive(Debug)]
pub struct Budget {
    limit: usize,
    used: AtomicUsize,
}

impl Budget {
    /// A budget of `limit` bytes.
    pub fn new(limit: usize) -> Arc<Self> {
        Arc::new(Self {
            limit,
            used: AtomicUsize::new(0),
        })
    }

    /// Bytes held now.
    pub fn used(&self) -> usize {
        self.used.load(Ordering::Relaxed)
    }

    fn over(&self) -> bool {
        self.used() > self.limit
    }
}

/// A resume's view of the log: what to replay, and what is lost for good.
#[derive(Debug)]
pub struct Replay<'a, F> {
    /// Frames to send, in order.
    pub frames: Vec<&'a F>,
    /// Messages that fell out of the window before they could be replayed.
    pub missed: Option<Missed>,
}

/// Why a place in the log cannot be replayed from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlaceError {
    /// The position is ahead of the room.
    Future,
}

/// One room's log.
#[derive(Debug)]
pub struct RoomLog<F> {
    epoch: Arc<str>,
    /// The last position handed out (0: none yet).
    last: Pos,
    /// The last position dropped from the window (0: none).
    evicted_up_to: Pos,
    entries: VecDeque<Entry<F>>,
    bytes: usize,
    dedup: HashMap<DedupKey, (Pos, Millis)>,
    bounds: Bounds,
}

impl<F> Drop for RoomLog<F> {
    fn drop(&mut self) {
        self.bounds
            .total
            .used
            .fetch_sub(self.bytes, Ordering::Relaxed);
    }
}

impl<F> RoomLog<F> {
    /// An empty log with a fresh epoch.
    pub fn new(epoch: Arc<str>, bounds: Bounds) -> Self {
        Self {
            epoch,
            last: 0,
            evicted_up_to: 0,
            entries: VecDeque::new(),
            bytes: 0,
            dedup: HashMap::new(),
            bounds,
        }
    }

    /// The room's epoch.
    pub fn epoch(&self) -> &Arc<str> {
        &self.epoch
    }

    /// The last position handed out.
    pub fn last(&self) -> Pos {
        self.last
    }

    /// The position the next event will get.
    pub fn next_pos(&self) -> Pos {
        self.last + 1
    }

    /// Bytes held in the window.
    #[cfg(test)]
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Events held in the window.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Starts the log over in `epoch` after `last` (a room a node takes up from the
    /// cluster's log: what came before is not here).
    pub fn rebase(&mut self, epoch: Arc<str>, last: Pos) {
        self.epoch = epoch;
        self.last = last;
        self.evicted_up_to = last;
        self.bounds
            .total
            .used
            .fetch_sub(self.bytes, Ordering::Relaxed);
        self.bytes = 0;
        self.entries.clear();
        self.dedup.clear();
    }

    /// Moves past positions up to `to` that will never come (the cluster's log lost
    /// them): they count as evicted.
    pub fn skip(&mut self, to: Pos) {
        if to > self.last {
            self.last = to;
            self.evicted_up_to = to;
        }
    }

    /// The first position this log can replay (everything before it is gone or was
    /// never here).
    pub fn first_known(&self) -> Pos {
        self.evicted_up_to + 1
    }

    /// The position and timestamp of a resend's first copy, if it is in the window.
    pub fn seen(&self, key: &DedupKey) -> Option<(Pos, Millis)> {
        self.dedup.get(key).copied()
    }

    /// Appends an event at the next position; returns that position. Drops what falls
    /// out of the window.
    pub fn push(&mut self, e: NewEntry<F>, now: Instant) -> Pos {
        self.last += 1;
        let pos = self.last;
        let bytes = e.payload_bytes + ENTRY_OVERHEAD;
        if let Some(key) = &e.dedup {
            self.dedup.insert(key.clone(), (pos, e.ts));
        }
        self.entries.push_back(Entry {
            pos,
            at: now,
            kind: e.kind,
            about: e.about,
            only: e.only,
            frame: e.frame,
            bytes,
            dedup: e.dedup,
        });
        self.bytes += bytes;
        self.bounds.total.used.fetch_add(bytes, Ordering::Relaxed);
        self.evict(now);
        pos
    }

    /// Drops events older than the window or beyond its byte bound.
    pub fn evict(&mut self, now: Instant) {
        while let Some(first) = self.entries.front() {
            let too_old = now.saturating_duration_since(first.at) > self.bounds.age;
            if !too_old && self.bytes <= self.bounds.bytes && !self.bounds.total.over() {
                break;
            }
            let Some(first) = self.entries.pop_front() else {
                break;
            };
            self.bytes -= first.bytes;
            self.bounds
                .total
                .used
                .fetch_sub(first.bytes, Ordering::Relaxed);
            self.evicted_up_to = first.pos;
            if let Some(key) = first.dedup
                && self.dedup.get(&key).is_some_and(|(p, _)| *p == first.pos)
            {
                self.dedup.remove(&key);
            }
        }
    }

    /// What `member` must be sent to catch up from `pos` (the last position it saw):
    /// every later event it would have received, in order (not its own, not another's
    /// direct messages), and how many messages are lost because the window no longer
    /// reaches back that far.
    pub fn replay_for(&self, member: &MemberId, pos: Pos) -> Result<Replay<'_, F>, PlaceError> {
        if pos > self.last {
            return Err(PlaceError::Future);
        }
        let frames = self
            .entries
            .iter()
            .filter(|e| e.pos > pos)
            .filter(|e| e.about.as_ref() != Some(member))
            .filter(|e| e.only.as_ref().is_none_or(|to| to == member))
            .map(|e| &e.frame)
            .collect();
        let missed = (pos < self.evicted_up_to).then_some(Missed {
            messages: 0,
            exact: false,
        });
        Ok(Replay { frames, missed })
    }

    /// How many room messages a client that last saw `pos` of `epoch` missed, for a
    /// join after a failed resume. Direct messages are not counted (a new member id
    /// cannot be matched to the old one's).
    pub fn missed_since(&self, epoch: &str, pos: Pos) -> Missed {
        let in_window = |from: Pos| {
            self.entries
                .iter()
                .filter(|e| e.pos > from && e.kind == Kind::Msg && e.only.is_none())
                .count() as u64
        };
        if epoch != &*self.epoch || pos > self.last {
            // Another incarnation of the room: nothing can be said of what happened
            // between, but the messages held now were all missed.
            return Missed {
                messages: in_window(0),
                exact: false,
            };
        }
        Missed {
            messages: in_window(pos),
            exact: pos >= self.evicted_up_to,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(s: &str) -> MemberId {
        MemberId::new(s).unwrap()
    }

    fn log(age_secs: u64, bytes: usize) -> RoomLog<&'static str> {
        RoomLog::new(
            Arc::from("e1"),
            Bounds {
                age: Duration::from_secs(age_secs),
                bytes,
                total: Budget::new(usize::MAX),
            },
        )
    }

    fn msg(from: &str, frame: &'static str, id: Option<&str>) -> NewEntry<&'static str> {
        NewEntry {
            kind: Kind::Msg,
            about: Some(m(from)),
            only: None,
            frame,
            payload_bytes: 10,
            dedup: id.map(|i| DedupKey::Msg(m(from), i.into())),
            ts: 1,
        }
    }

    #[test]
    fn positions_grow_by_one_from_one() {
        let mut l = log(60, 1 << 20);
        let t = Instant::now();
        assert_eq!(l.next_pos(), 1);
        assert_eq!(l.push(msg("a", "1", None), t), 1);
        assert_eq!(l.push(msg("b", "2", None), t), 2);
        assert_eq!(l.last(), 2);
    }

    #[test]
    fn replay_is_in_order_without_own_or_others_direct_events() {
        let mut l = log(60, 1 << 20);
        let t = Instant::now();
        l.push(msg("a", "a1", None), t);
        l.push(msg("b", "b1", None), t);
        let mut dm = msg("a", "dm-to-c", None);
        dm.only = Some(m("c"));
        l.push(dm, t);
        let mut dm = msg("a", "dm-to-b", None);
        dm.only = Some(m("b"));
        l.push(dm, t);
        l.push(msg("c", "c1", None), t);
        let r = l.replay_for(&m("b"), 0).unwrap();
        assert_eq!(r.frames, vec![&"a1", &"dm-to-b", &"c1"]);
        assert!(r.missed.is_none());
        let r = l.replay_for(&m("b"), 4).unwrap();
        assert_eq!(r.frames, vec![&"c1"]);
        assert_eq!(l.replay_for(&m("b"), 6).unwrap_err(), PlaceError::Future);
        assert!(l.replay_for(&m("b"), 5).unwrap().frames.is_empty());
    }

    #[test]
    fn window_is_bounded_in_time_and_bytes_and_says_what_was_lost() {
        let mut l = log(10, 3 * (10 + ENTRY_OVERHEAD));
        let t = Instant::now();
        for (i, f) in ["1", "2", "3", "4"].into_iter().enumerate() {
            l.push(msg("a", f, None), t + Duration::from_secs(i as u64));
        }
        // Byte bound: three entries fit, the first went.
        assert_eq!(l.len(), 3);
        assert_eq!(l.bytes(), 3 * (10 + ENTRY_OVERHEAD));
        let r = l.replay_for(&m("b"), 0).unwrap();
        assert_eq!(r.frames, vec![&"2", &"3", &"4"]);
        assert_eq!(r.missed.map(|x| x.exact), Some(false));
        assert!(l.replay_for(&m("b"), 1).unwrap().missed.is_none());
        // Time bound: 12 s after the second event, it and the third are too old.
        l.evict(t + Duration::from_secs(12) + Duration::from_millis(1));
        assert_eq!(l.len(), 1);
        let missed = l.missed_since("e1", 1);
        assert_eq!((missed.messages, missed.exact), (1, false));
        let missed = l.missed_since("e1", 3);
        assert_eq!((missed.messages, missed.exact), (1, true));
        let missed = l.missed_since("another-epoch", 3);
        assert_eq!((missed.messages, missed.exact), (1, false));
    }

    #[test]
    fn the_node_budget_makes_the_room_that_adds_pay() {
        let total = Budget::new(3 * (10 + ENTRY_OVERHEAD));
        let bounds = Bounds {
            age: Duration::from_secs(60),
            bytes: 1 << 20,
            total: total.clone(),
        };
        let mut quiet = RoomLog::new(Arc::from("q"), bounds.clone());
        let mut loud = RoomLog::new(Arc::from("l"), bounds);
        let t = Instant::now();
        quiet.push(msg("a", "q1", None), t);
        for _ in 0..10 {
            loud.push(msg("b", "l", None), t);
        }
        assert_eq!(quiet.len(), 1, "the quiet room keeps its event");
        assert_eq!(loud.len(), 2, "the loud room holds what the budget leaves");
        assert_eq!(total.used(), 3 * (10 + ENTRY_OVERHEAD));
        drop(loud);
        assert_eq!(
            total.used(),
            10 + ENTRY_OVERHEAD,
            "a closed room gives its bytes back"
        );
    }

    #[test]
    fn resends_are_recognised_while_their_first_copy_is_held() {
        let mut l = log(10, 1 << 20);
        let t = Instant::now();
        let key = DedupKey::Msg(m("a"), "id-1".into());
        assert!(l.seen(&key).is_none());
        l.push(msg("a", "x", Some("id-1")), t);
        assert_eq!(l.seen(&key), Some((1, 1)));
        // Another member's message with the same id is another message.
        assert!(l.seen(&DedupKey::Msg(m("b"), "id-1".into())).is_none());
        l.evict(t + Duration::from_secs(11));
        assert!(l.seen(&key).is_none(), "forgotten with the window");
        assert_eq!(l.len(), 0);
        assert_eq!(l.bytes(), 0);
    }
}
