//! Privacy v2 rooms (docs/crypto.md §17), sans I/O: who is in the room's MLS group, who
//! knocks, and what this member must do about it.
//!
//! The driver feeds it what the room log brings, in log order (the join ack's members,
//! presence, lobby bodies, MLS frames, and the acks of what it sent), and does what it
//! answers ([`Out`]): send a lobby body, a commit, a Welcome, or tell the person. It never
//! sees a socket. The rules it follows are §17.3's; in short:
//! - alone on joining: create the group and send `genesis` (the lower position wins);
//! - otherwise knock with a KeyPackage, keeping the MLS frames that arrive until the
//!   Welcome comes;
//! - the *designated member* (the first leaf, in leaf order, held by this member or by a
//!   member present and in) removes the leaves nobody present holds, and in an open room
//!   adds every knock; in a knock room a member adds the knocks its person let in;
//! - commits are applied in log order, the author's own when its ack comes back; the
//!   author of an add sends the Welcomes once its commit is applied;
//! - a member that lost the group (removed, or it missed a commit) knocks again.

use serde::{Deserialize, Serialize};
use std::collections::{BTreeSet, HashMap, VecDeque};
use streamchat_crypto::{IdentityKey, PublicKey, encoding};
use streamchat_mls::{Error as MlsError, PendingJoin, Processed, RoomGroup};
use streamchat_protocol::{MemberId, Pos};

/// MLS frames kept while knocking, to apply after the Welcome (§17.3 item 2).
pub(crate) const KEPT_FRAMES: usize = 256;
/// KeyPackages whose Welcome this member still accepts (it knocks again now and then).
const PENDING_JOINS: usize = 4;

/// The first byte of a lobby frame (§5's sealed payload) and of an MLS frame.
pub(crate) const LOBBY_FRAME: u8 = 0x01;
/// An `MLSMessage` starts with its version, `mls10` = 0x0001.
pub(crate) const MLS_FRAME: u8 = 0x00;

/// A lobby body (§17.2), sealed with the lobby key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub(crate) enum LobbyBody {
    /// This member created the room's group.
    Genesis { sent_at: u64 },
    /// This member asks to be let in: its KeyPackage (an MLSMessage, base64url).
    Knock { key_package: String, sent_at: u64 },
    /// This member joined the group from a Welcome, at `epoch`.
    #[serde(rename = "in")]
    In { epoch: u64, sent_at: u64 },
}

impl LobbyBody {
    /// A lobby body from verified JSON, or `None` for any other body type.
    pub(crate) fn parse(body: &[u8]) -> Option<Self> {
        serde_json::from_slice(body).ok()
    }
}

/// Which of this member's own lobby bodies an ack is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Sent {
    Genesis,
    Knock,
    In,
}

/// What the driver must do.
#[derive(Debug)]
pub(crate) enum Out {
    /// Seal this body with the lobby key and send it to the room; report its position
    /// with [`Lobby::sent`].
    Lobby(Sent, LobbyBody),
    /// Send this commit to the room; report with [`Lobby::commit_acked`] or
    /// [`Lobby::commit_failed`].
    Commit(Vec<u8>),
    /// Send a Welcome to one newcomer, as a direct `msg`.
    Welcome { to: MemberId, welcome: Vec<u8> },
    /// Tell the person.
    Show(Shown),
}

/// What the person is told.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Shown {
    /// This member is not in the group: it waits to be let in.
    Waiting { knock_room: bool },
    /// This member is in the group (it created it, or a Welcome let it in).
    In { epoch: u64 },
    /// Someone asks to be let in (knock rooms).
    Knock { member: MemberId },
    /// A commit was applied.
    Epoch {
        epoch: u64,
        committer: Box<PublicKey>,
        added: Vec<PublicKey>,
        removed: Vec<PublicKey>,
    },
    /// This member lost the group and knocks again.
    Lost { why: &'static str },
    /// An application message, opened: the body's JSON.
    Message { from: MemberId, plaintext: Vec<u8> },
    /// Something was dropped.
    Warning(String),
}

/// What this client knows of another member present.
#[derive(Debug)]
struct Other {
    key: PublicKey,
    seen: Seen,
}

#[derive(Debug)]
enum Seen {
    /// Holds the group (present when this client joined, sent `genesis` or `in`, or
    /// added by a commit).
    In,
    /// Its latest knock, with its KeyPackage and position.
    Knocking { key_package: Vec<u8>, pos: Pos },
    /// Joined after this client and has said nothing yet.
    Unknown,
}

/// This member's commit on its way to the log.
struct Commit {
    bytes: Vec<u8>,
    welcome: Option<Vec<u8>>,
    newcomers: Vec<MemberId>,
}

/// One member's view of a v2 room's group and lobby.
pub(crate) struct Lobby {
    open: bool,
    room: String,
    me: Option<MemberId>,
    group: Option<RoomGroup>,
    /// This member created `group` and its `genesis` is not yet acknowledged.
    founding: bool,
    /// The position of this member's `genesis`, once acknowledged.
    genesis: Option<Pos>,
    /// The position of this member's latest knock, once acknowledged.
    knocked_at: Option<Pos>,
    joins: VecDeque<PendingJoin>,
    kept: VecDeque<(MemberId, Vec<u8>)>,
    others: HashMap<MemberId, Other>,
    /// Knocks this member's person let in, not yet added.
    let_in: BTreeSet<MemberId>,
    commit: Option<Commit>,
}

impl std::fmt::Debug for Lobby {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lobby")
            .field("open", &self.open)
            .field("in", &self.group.is_some())
            .field("others", &self.others.len())
            .finish_non_exhaustive()
    }
}

impl Lobby {
    pub(crate) fn new(room: &str, open: bool) -> Self {
        Self {
            open,
            room: room.to_owned(),
            me: None,
            group: None,
            founding: false,
            genesis: None,
            knocked_at: None,
            joins: VecDeque::new(),
            kept: VecDeque::new(),
            others: HashMap::new(),
            let_in: BTreeSet::new(),
            commit: None,
        }
    }

    /// Whether this member is in the group (it can seal and open).
    pub(crate) fn is_in(&self) -> bool {
        self.group.is_some()
    }

    /// Seals an application body for the room, if in.
    pub(crate) fn seal(&mut self, plaintext: &[u8]) -> Option<Vec<u8>> {
        self.group.as_mut()?.seal(plaintext).ok()
    }

    /// Joined the room as `me` (the first time, or again under a new member id after a
    /// refused resume: a group held before is thrown away, since its leaf is removed once
    /// the grace runs out), with `present` the others listed in the join ack.
    pub(crate) fn joined(
        &mut self,
        identity: &IdentityKey,
        me: MemberId,
        present: &[(MemberId, PublicKey)],
    ) -> Vec<Out> {
        self.me = Some(me);
        self.others = present
            .iter()
            .map(|(member, key)| {
                let other = Other {
                    key: *key,
                    seen: Seen::In,
                };
                (member.clone(), other)
            })
            .collect();
        self.reset();
        if present.is_empty() {
            self.found(identity)
        } else {
            self.knock(identity)
        }
    }

    /// Forgets the group and what was on its way.
    fn reset(&mut self) {
        self.group = None;
        self.founding = false;
        self.genesis = None;
        self.knocked_at = None;
        self.commit = None;
        self.let_in.clear();
        self.kept.clear();
    }

    /// Creates the group, alone, and announces it.
    fn found(&mut self, identity: &IdentityKey) -> Vec<Out> {
        match RoomGroup::create(identity, &self.room) {
            Ok(group) => {
                self.group = Some(group);
                self.founding = true;
                self.joins.clear();
                vec![
                    Out::Lobby(
                        Sent::Genesis,
                        LobbyBody::Genesis {
                            sent_at: super::now_ms(),
                        },
                    ),
                    Out::Show(Shown::In { epoch: 0 }),
                ]
            }
            Err(e) => vec![Out::Show(Shown::Warning(format!(
                "Could not create the room's keys: {e}"
            )))],
        }
    }

    /// Asks to be let in with a new KeyPackage.
    fn knock(&mut self, identity: &IdentityKey) -> Vec<Out> {
        self.group = None;
        self.founding = false;
        self.knocked_at = None;
        match RoomGroup::key_package(identity, &self.room) {
            Ok((pending, key_package)) => {
                if self.joins.len() == PENDING_JOINS {
                    self.joins.pop_front();
                }
                self.joins.push_back(pending);
                vec![
                    Out::Lobby(
                        Sent::Knock,
                        LobbyBody::Knock {
                            key_package: encoding::encode(&key_package),
                            sent_at: super::now_ms(),
                        },
                    ),
                    Out::Show(Shown::Waiting {
                        knock_room: !self.open,
                    }),
                ]
            }
            Err(e) => vec![Out::Show(Shown::Warning(format!(
                "Could not ask to be let in: {e}"
            )))],
        }
    }

    /// This member's own lobby body was acknowledged at `pos`.
    pub(crate) fn sent(&mut self, what: Sent, pos: Pos, identity: &IdentityKey) -> Vec<Out> {
        match what {
            Sent::Genesis if self.founding => {
                self.founding = false;
                self.genesis = Some(pos);
                self.duties(identity)
            }
            Sent::Knock if self.group.is_none() => {
                self.knocked_at = Some(pos);
                self.duties(identity)
            }
            _ => Vec::new(),
        }
    }

    /// A member joined the room (presence).
    pub(crate) fn member_joined(&mut self, member: MemberId, key: PublicKey) {
        self.others.insert(
            member,
            Other {
                key,
                seen: Seen::Unknown,
            },
        );
    }

    /// A member left the room (after the grace): its knock is forgotten, and its leaf is
    /// now held by nobody present.
    pub(crate) fn member_left(&mut self, member: &MemberId, identity: &IdentityKey) -> Vec<Out> {
        if self.others.remove(member).is_none() {
            return Vec::new();
        }
        self.let_in.remove(member);
        self.duties(identity)
    }

    /// This member's person lets `member`'s knock in (knock rooms).
    pub(crate) fn let_in(&mut self, member: &MemberId, identity: &IdentityKey) -> Vec<Out> {
        if !matches!(
            self.others.get(member),
            Some(Other {
                seen: Seen::Knocking { .. },
                ..
            })
        ) {
            return vec![Out::Show(Shown::Warning(
                "Nobody by that name is asking to be let in.".to_owned(),
            ))];
        }
        self.let_in.insert(member.clone());
        self.duties(identity)
    }

    /// A lobby body from `from`, verified with its profile key, at `pos`.
    pub(crate) fn lobby_body(
        &mut self,
        from: &MemberId,
        body: LobbyBody,
        pos: Pos,
        identity: &IdentityKey,
    ) -> Vec<Out> {
        let Some(other) = self.others.get_mut(from) else {
            return Vec::new();
        };
        match body {
            LobbyBody::Genesis { .. } => {
                other.seen = Seen::In;
                if self.group.is_some() && self.genesis.is_some_and(|mine| mine < pos) {
                    // Ours came first: they will knock.
                    return Vec::new();
                }
                if self.founding {
                    // Theirs came first (ours is not acknowledged yet, so it follows):
                    // knock to be let into theirs.
                    return self.knock(identity);
                }
                // Knocking already: the founder saw that knock (it was in the room before
                // it), so knocking again would only make a second knock that arrives after
                // the first was answered, and undo it.
                Vec::new()
            }
            LobbyBody::Knock { key_package, .. } => {
                let bytes = match encoding::decode("key package", &key_package) {
                    Ok(bytes) => bytes,
                    Err(_) => return vec![malformed_knock()],
                };
                match streamchat_mls::key_package_identity(&bytes) {
                    Ok(key) if key == other.key => {}
                    _ => return vec![malformed_knock()],
                }
                other.seen = Seen::Knocking {
                    key_package: bytes,
                    pos,
                };
                let mut outs = Vec::new();
                if self.group.is_some() && !self.open {
                    outs.push(Out::Show(Shown::Knock {
                        member: from.clone(),
                    }));
                }
                outs.extend(self.duties(identity));
                outs
            }
            LobbyBody::In { .. } => {
                other.seen = Seen::In;
                self.let_in.remove(from);
                self.duties(identity)
            }
        }
    }

    /// An MLS frame from `from` at `pos`; `direct` when it was sent to this member only.
    pub(crate) fn mls_frame(
        &mut self,
        from: &MemberId,
        bytes: Vec<u8>,
        direct: bool,
        identity: &IdentityKey,
    ) -> Vec<Out> {
        if self.group.is_none() {
            if direct && let Some(outs) = self.welcome(&bytes, identity) {
                return outs;
            }
            if self.kept.len() == KEPT_FRAMES {
                self.kept.pop_front();
            }
            self.kept.push_back((from.clone(), bytes));
            return Vec::new();
        }
        if direct && is_welcome(&bytes) {
            // A Welcome for an earlier knock, come while in: nothing to do with it.
            return Vec::new();
        }
        self.process(from, &bytes, identity)
    }

    /// Tries the Welcome with each KeyPackage this member published; on success, joins,
    /// applies the frames it kept and says `in`.
    fn welcome(&mut self, bytes: &[u8], identity: &IdentityKey) -> Option<Vec<Out>> {
        let group = self
            .joins
            .iter_mut()
            .find_map(|join| join.join(bytes).ok())?;
        self.joins.clear();
        let epoch = group.epoch();
        self.group = Some(group);
        self.knocked_at = None;
        // Everyone who was in stays in; knocks are still knocks.
        let mut outs = vec![
            Out::Lobby(
                Sent::In,
                LobbyBody::In {
                    epoch,
                    sent_at: super::now_ms(),
                },
            ),
            Out::Show(Shown::In { epoch }),
        ];
        for (from, frame) in std::mem::take(&mut self.kept) {
            if self.group.is_none() {
                break;
            }
            // Frames from epochs before the Welcome's are not ours to read: quietly.
            let processed = self.process(&from, &frame, identity);
            outs.extend(processed.into_iter().filter(|out| {
                !matches!(
                    out,
                    Out::Show(Shown::Warning(_)) | Out::Show(Shown::Lost { .. })
                )
            }));
        }
        if self.group.is_none() {
            outs.extend(self.knock(identity));
            return Some(outs);
        }
        if !self.open {
            // Knocks that came before this member was in: its person can answer them too.
            let leaves = self
                .group
                .as_ref()
                .map(RoomGroup::members)
                .unwrap_or_default();
            let mut waiting: Vec<&MemberId> = self
                .others
                .iter()
                .filter(|(_, o)| {
                    matches!(o.seen, Seen::Knocking { .. }) && !leaves.contains(&o.key)
                })
                .map(|(m, _)| m)
                .collect();
            waiting.sort();
            outs.extend(waiting.into_iter().map(|member| {
                Out::Show(Shown::Knock {
                    member: member.clone(),
                })
            }));
        }
        outs.extend(self.duties(identity));
        Some(outs)
    }

    /// Processes an MLS frame in the group.
    fn process(&mut self, from: &MemberId, bytes: &[u8], identity: &IdentityKey) -> Vec<Out> {
        let Some(group) = self.group.as_mut() else {
            return Vec::new();
        };
        match group.process(bytes) {
            Ok(Processed::Message { sender, plaintext }) => {
                let expected = if Some(from) == self.me.as_ref() {
                    Some(identity.public_key())
                } else {
                    self.others.get(from).map(|o| o.key)
                };
                if expected == Some(sender) {
                    vec![Out::Show(Shown::Message {
                        from: from.clone(),
                        plaintext,
                    })]
                } else {
                    vec![Out::Show(Shown::Warning(
                        "A message signed by someone other than its sender was dropped.".to_owned(),
                    ))]
                }
            }
            Ok(Processed::OwnMessage) => Vec::new(),
            Ok(change @ Processed::Epoch { .. }) => self.applied(identity, change),
            Ok(Processed::Removed { .. }) => self.lose(
                identity,
                "You were removed from the room's keys (away too long)",
            ),
            // Someone's commit lost a race for its epoch: everyone refuses it, quietly.
            Err(MlsError::Stale { .. }) => Vec::new(),
            // A later epoch does not mean a commit was missed: the epoch is in the clear,
            // anyone present can forge it, and the room log brings every commit in
            // order. A missed commit comes only with a gap the server reports
            // (`missed_commits`).
            Err(e @ MlsError::FutureEpoch { .. }) => vec![Out::Show(Shown::Warning(format!(
                "A message for keys this client does not have ({e}) was not shown."
            )))],
            Err(e) => vec![Out::Show(Shown::Warning(format!(
                "A message could not be opened ({e}) and was not shown."
            )))],
        }
    }

    /// A commit was applied (`change` is a [`Processed::Epoch`]).
    fn applied(&mut self, identity: &IdentityKey, change: Processed) -> Vec<Out> {
        let Processed::Epoch {
            epoch,
            committer,
            added,
            removed,
            own,
            discarded_own,
        } = change
        else {
            return Vec::new();
        };
        // Whoever was added is in, whether or not their `in` comes.
        for other in self.others.values_mut() {
            if added.contains(&other.key) {
                other.seen = Seen::In;
            }
        }
        let keys: Vec<(MemberId, PublicKey)> = self
            .others
            .iter()
            .map(|(m, o)| (m.clone(), o.key))
            .collect();
        self.let_in
            .retain(|m| keys.iter().any(|(k, key)| k == m && !added.contains(key)));
        let mut outs = vec![Out::Show(Shown::Epoch {
            epoch,
            committer: Box::new(committer),
            added,
            removed,
        })];
        if own {
            if let Some(commit) = self.commit.take()
                && let Some(welcome) = commit.welcome
            {
                for to in commit.newcomers {
                    outs.push(Out::Welcome {
                        to,
                        welcome: welcome.clone(),
                    });
                }
            }
        } else if discarded_own {
            self.commit = None;
        }
        outs.extend(self.duties(identity));
        outs
    }

    /// Lost the group: say so and knock again.
    fn lose(&mut self, identity: &IdentityKey, why: &'static str) -> Vec<Out> {
        self.reset();
        let mut outs = vec![Out::Show(Shown::Lost { why })];
        outs.extend(self.knock(identity));
        outs
    }

    /// The server reported a gap it could not replay (a resume whose window no longer
    /// reached back): a commit may be among what was missed, so the group is not to be
    /// trusted any more; knock again (§17.3 item 6).
    pub(crate) fn missed_commits(&mut self, identity: &IdentityKey) -> Vec<Out> {
        if self.group.is_none() {
            return Vec::new();
        }
        self.lose(identity, "You missed a key change")
    }

    /// This member's commit was acknowledged: the log reached it, so it is applied now
    /// (or refused as stale, when another commit for the epoch came first).
    pub(crate) fn commit_acked(&mut self, identity: &IdentityKey) -> Vec<Out> {
        let (Some(bytes), Some(me)) = (
            self.commit.as_ref().map(|c| c.bytes.clone()),
            self.me.clone(),
        ) else {
            return Vec::new();
        };
        let before = self.group.as_ref().map(RoomGroup::epoch);
        let mut outs = self.process(&me, &bytes, identity);
        let moved = self.group.as_ref().map(RoomGroup::epoch) != before;
        // Applying it may already have led to the next commit; only an unchanged epoch
        // with this same commit still pending means it was refused (stale): the race was
        // lost, and the winner is applied already.
        if !moved && self.commit.as_ref().is_some_and(|c| c.bytes == bytes) {
            self.commit = None;
            if let Some(group) = self.group.as_mut() {
                let _ = group.discard_pending();
            }
            outs.extend(self.duties(identity));
        }
        outs
    }

    /// This member's commit did not reach the log: drop it and try again.
    pub(crate) fn commit_failed(&mut self, identity: &IdentityKey) -> Vec<Out> {
        if self.commit.take().is_some()
            && let Some(group) = self.group.as_mut()
        {
            let _ = group.discard_pending();
        }
        self.duties(identity)
    }

    /// What this member must do now (§17.3 items 3, 4 and 7).
    fn duties(&mut self, identity: &IdentityKey) -> Vec<Out> {
        let own_key = identity.public_key();
        let Some(group) = self.group.as_mut() else {
            return self.when_nobody_is_in(identity);
        };
        if self.commit.is_some() || self.founding {
            return Vec::new();
        }
        let held = |key: &PublicKey| {
            *key == own_key
                || self
                    .others
                    .values()
                    .any(|o| o.key == *key && matches!(o.seen, Seen::In))
        };
        let leaves = group.members();
        let designated = leaves.iter().find(|key| held(key)) == Some(&own_key);
        if designated {
            let stale: Vec<PublicKey> = leaves.iter().filter(|k| !held(k)).copied().collect();
            if !stale.is_empty() {
                return match group.remove(&stale) {
                    Ok(proposed) => self.commit_out(proposed, Vec::new()),
                    Err(e) => vec![Out::Show(Shown::Warning(format!(
                        "Could not change the room's keys: {e}"
                    )))],
                };
            }
        }
        let mut newcomers = Vec::new();
        let mut key_packages = Vec::new();
        for (member, other) in &self.others {
            if let Seen::Knocking { key_package, .. } = &other.seen
                && !leaves.contains(&other.key)
                && ((self.open && designated) || self.let_in.contains(member))
            {
                newcomers.push(member.clone());
                key_packages.push(key_package.as_slice());
            }
        }
        if key_packages.is_empty() {
            return Vec::new();
        }
        match group.add(&key_packages) {
            Ok(proposed) => self.commit_out(proposed, newcomers),
            Err(e) => {
                // A KeyPackage that cannot be added: forget those knocks (they may knock again).
                for member in &newcomers {
                    if let Some(other) = self.others.get_mut(member) {
                        other.seen = Seen::Unknown;
                    }
                    self.let_in.remove(member);
                }
                vec![Out::Show(Shown::Warning(format!(
                    "Could not let someone in: {e}"
                )))]
            }
        }
    }

    fn commit_out(
        &mut self,
        proposed: streamchat_mls::Proposed,
        newcomers: Vec<MemberId>,
    ) -> Vec<Out> {
        let bytes = proposed.commit;
        self.commit = Some(Commit {
            bytes: bytes.clone(),
            welcome: proposed.welcome,
            newcomers,
        });
        vec![Out::Commit(bytes)]
    }

    /// §17.3 item 7: knocking, and nobody present holds the group: the knocker whose
    /// latest knock has the lowest position founds a new one.
    fn when_nobody_is_in(&mut self, identity: &IdentityKey) -> Vec<Out> {
        let Some(mine) = self.knocked_at else {
            return Vec::new();
        };
        if self.others.values().any(|o| matches!(o.seen, Seen::In)) {
            return Vec::new();
        }
        let first = self.others.values().all(|o| match o.seen {
            Seen::Knocking { pos, .. } => pos > mine,
            _ => true,
        });
        if first {
            self.found(identity)
        } else {
            Vec::new()
        }
    }
}

/// Whether an MLS frame is a Welcome: its wire format (0x0003) follows the version, so
/// its third and fourth bytes are 0x00 0x03.
fn is_welcome(bytes: &[u8]) -> bool {
    bytes.get(2..4) == Some(&[0x00, 0x03])
}

fn malformed_knock() -> Out {
    Out::Show(Shown::Warning(
        "Someone knocked with a key package that is not theirs; it was ignored.".to_owned(),
    ))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn id(name: &str) -> MemberId {
        MemberId::new(name).unwrap()
    }

    /// The lobby bodies among `outs`.
    fn bodies(outs: &[Out]) -> Vec<LobbyBody> {
        outs.iter()
            .filter_map(|o| match o {
                Out::Lobby(_, body) => Some(body.clone()),
                _ => None,
            })
            .collect()
    }

    fn commit(outs: &[Out]) -> Vec<u8> {
        outs.iter()
            .find_map(|o| match o {
                Out::Commit(bytes) => Some(bytes.clone()),
                _ => None,
            })
            .expect("a commit")
    }

    #[test]
    fn two_founders_at_once_the_first_genesis_on_the_log_wins() {
        let (a_key, b_key) = (
            IdentityKey::generate().unwrap(),
            IdentityKey::generate().unwrap(),
        );
        let (a_id, b_id) = (id("aaaa"), id("bbbb"));
        let mut a = Lobby::new("room", true);
        let mut b = Lobby::new("room", true);
        // Both saw an empty room: both found a group and announce it.
        let outs = a.joined(&a_key, a_id.clone(), &[]);
        assert!(matches!(bodies(&outs)[..], [LobbyBody::Genesis { .. }]));
        let outs = b.joined(&b_key, b_id.clone(), &[]);
        assert!(matches!(bodies(&outs)[..], [LobbyBody::Genesis { .. }]));
        a.member_joined(b_id.clone(), b_key.public_key());
        b.member_joined(a_id.clone(), a_key.public_key());
        // The log: A's genesis at 3, B's at 4. A's ack comes first at A.
        assert!(a.sent(Sent::Genesis, 3, &a_key).is_empty());
        let genesis = LobbyBody::Genesis { sent_at: 1 };
        assert!(a.lobby_body(&b_id, genesis.clone(), 4, &a_key).is_empty());
        assert!(a.is_in());
        // B reads A's genesis before its own ack: it lost, and knocks.
        let outs = b.lobby_body(&a_id, genesis, 3, &b_key);
        let [LobbyBody::Knock { key_package, .. }] = &bodies(&outs)[..] else {
            panic!("B knocks: {outs:?}");
        };
        assert!(!b.is_in());
        assert!(b.sent(Sent::Genesis, 4, &b_key).is_empty());
        // A, the designated member of an open room, adds B's knock at 5.
        let knock = LobbyBody::Knock {
            key_package: key_package.clone(),
            sent_at: 2,
        };
        let outs = a.lobby_body(&b_id, knock, 5, &a_key);
        let commit_bytes = commit(&outs);
        // B keeps the commit (not its to read); A applies its own at its ack.
        assert!(b.mls_frame(&a_id, commit_bytes, false, &b_key).is_empty());
        let outs = a.commit_acked(&a_key);
        let welcome = outs
            .iter()
            .find_map(|o| match o {
                Out::Welcome { to, welcome } if *to == b_id => Some(welcome.clone()),
                _ => None,
            })
            .expect("a Welcome for B");
        let outs = b.mls_frame(&a_id, welcome, true, &b_key);
        assert!(matches!(
            bodies(&outs)[..],
            [LobbyBody::In { epoch: 1, .. }]
        ));
        assert!(b.is_in());
        // One group: what A seals, B opens as A's.
        let sealed = a.seal(b"{}").unwrap();
        let outs = b.mls_frame(&a_id, sealed, false, &b_key);
        assert!(
            matches!(&outs[..], [Out::Show(Shown::Message { from, .. })] if *from == a_id),
            "{outs:?}"
        );
    }

    #[test]
    fn a_forged_later_epoch_is_refused_and_the_group_kept() {
        let (a_key, m_key) = (
            IdentityKey::generate().unwrap(),
            IdentityKey::generate().unwrap(),
        );
        let mut a = Lobby::new("room", true);
        a.joined(&a_key, id("aaaa"), &[]);
        a.sent(Sent::Genesis, 1, &a_key);
        a.member_joined(id("mmmm"), m_key.public_key());
        // Someone present who was never let in raises the clear epoch of a real frame.
        let mut forged = a.seal(b"{}").unwrap();
        let epoch_end = 4 + 1 + 32 + 8;
        forged[epoch_end - 1] += 5;
        let outs = a.mls_frame(&id("mmmm"), forged, false, &a_key);
        assert!(
            matches!(&outs[..], [Out::Show(Shown::Warning(_))]),
            "{outs:?}"
        );
        assert!(a.is_in());
        // A gap the server reports is what makes a member knock again.
        let outs = a.missed_commits(&a_key);
        assert!(!a.is_in());
        assert!(
            matches!(bodies(&outs)[..], [LobbyBody::Knock { .. }]),
            "{outs:?}"
        );
    }

    #[test]
    fn a_knock_with_someone_elses_key_package_is_refused() {
        let (a_key, b_key, c_key) = (
            IdentityKey::generate().unwrap(),
            IdentityKey::generate().unwrap(),
            IdentityKey::generate().unwrap(),
        );
        let mut a = Lobby::new("room", true);
        a.joined(&a_key, id("aaaa"), &[]);
        a.sent(Sent::Genesis, 1, &a_key);
        a.member_joined(id("bbbb"), b_key.public_key());
        // B knocks with C's KeyPackage: its profile key is not the package's.
        let (_, key_package) = RoomGroup::key_package(&c_key, "room").unwrap();
        let knock = LobbyBody::Knock {
            key_package: encoding::encode(&key_package),
            sent_at: 1,
        };
        let outs = a.lobby_body(&id("bbbb"), knock, 2, &a_key);
        assert!(
            matches!(&outs[..], [Out::Show(Shown::Warning(_))]),
            "{outs:?}"
        );
    }

    /// A room where A (the lobby under test, the designated member of an open room) let B
    /// in; Mallory is present. What B and Mallory can send: B's real application
    /// messages, the commit and Welcome that let B in, Mallory's and B's KeyPackages.
    struct Hostile {
        a_key: IdentityKey,
        a: Lobby,
        /// B's sealed messages and their plaintexts.
        sealed: Vec<(Vec<u8>, Vec<u8>)>,
        /// Frames to send: B's messages, then the commit, the Welcome.
        frames: Vec<Vec<u8>>,
        /// KeyPackages (base64url): Mallory's, B's.
        key_packages: Vec<String>,
        /// B, Mallory, A itself, someone never present.
        members: [(MemberId, PublicKey); 4],
    }

    fn hostile(open: bool) -> Hostile {
        let keys: Vec<IdentityKey> = (0..4).map(|_| IdentityKey::generate().unwrap()).collect();
        let members = [
            (id("bbbb"), keys[1].public_key()),
            (id("mmmm"), keys[2].public_key()),
            (id("aaaa"), keys[0].public_key()),
            (id("gggg"), keys[3].public_key()),
        ];
        let mut a = Lobby::new("room", open);
        a.joined(&keys[0], id("aaaa"), &[]);
        a.sent(Sent::Genesis, 1, &keys[0]);
        a.member_joined(id("bbbb"), keys[1].public_key());
        let mut b = Lobby::new("room", open);
        let outs = b.joined(&keys[1], id("bbbb"), &[(id("aaaa"), keys[0].public_key())]);
        let [LobbyBody::Knock { key_package, .. }] = &bodies(&outs)[..] else {
            panic!("B knocks: {outs:?}");
        };
        let b_key_package = key_package.clone();
        b.sent(Sent::Knock, 2, &keys[1]);
        let knock = LobbyBody::Knock {
            key_package: b_key_package.clone(),
            sent_at: 1,
        };
        let mut outs = a.lobby_body(&id("bbbb"), knock, 2, &keys[0]);
        if !open {
            outs = a.let_in(&id("bbbb"), &keys[0]);
        }
        let commit_bytes = commit(&outs);
        b.mls_frame(&id("aaaa"), commit_bytes.clone(), false, &keys[1]);
        let welcome = a
            .commit_acked(&keys[0])
            .into_iter()
            .find_map(|o| match o {
                Out::Welcome { welcome, .. } => Some(welcome),
                _ => None,
            })
            .expect("a Welcome");
        b.mls_frame(&id("aaaa"), welcome.clone(), true, &keys[1]);
        assert!(a.is_in() && b.is_in());
        a.member_joined(id("mmmm"), keys[2].public_key());
        let (_, m_key_package) = RoomGroup::key_package(&keys[2], "room").unwrap();
        let sealed: Vec<(Vec<u8>, Vec<u8>)> = (0..3u8)
            .map(|n| {
                let plaintext = format!("{{\"n\":{n}}}").into_bytes();
                (b.seal(&plaintext).unwrap(), plaintext)
            })
            .collect();
        let mut frames: Vec<Vec<u8>> = sealed.iter().map(|(s, _)| s.clone()).collect();
        frames.extend([commit_bytes, welcome]);
        let [a_key, ..] = <[IdentityKey; 4]>::try_from(keys).ok().unwrap();
        Hostile {
            a_key,
            a,
            sealed,
            frames,
            key_packages: vec![encoding::encode(&m_key_package), b_key_package],
            members,
        }
    }

    /// One thing a room can do to A: mostly frames from anyone present (edited or not, at
    /// any position), and presence, acks and gaps in any order.
    #[derive(Debug, Clone)]
    enum Op {
        Mls {
            from: usize,
            frame: usize,
            edit: Option<(usize, u8)>,
            cut: Option<usize>,
            direct: bool,
        },
        Garbage {
            from: usize,
            bytes: Vec<u8>,
        },
        Genesis {
            from: usize,
            pos: Pos,
        },
        Knock {
            from: usize,
            key_package: usize,
            edit: Option<(usize, u8)>,
            pos: Pos,
        },
        In {
            from: usize,
            epoch: u64,
            pos: Pos,
        },
        Joined(usize),
        Left(usize),
        LetIn(usize),
        CommitAcked,
        CommitFailed,
        MissedCommits,
        Sent(u8, Pos),
    }

    fn op() -> impl proptest::strategy::Strategy<Value = Op> {
        use proptest::prelude::*;
        let edit = proptest::option::of((0usize..600, 1u8..=255));
        prop_oneof![
            4 => (0usize..4, 0usize..5, edit.clone(), proptest::option::of(0usize..600), any::<bool>())
                .prop_map(|(from, frame, edit, cut, direct)| Op::Mls { from, frame, edit, cut, direct }),
            1 => (0usize..4, proptest::collection::vec(any::<u8>(), 0..64))
                .prop_map(|(from, mut bytes)| {
                    if let Some(first) = bytes.first_mut() {
                        *first = MLS_FRAME;
                    }
                    Op::Garbage { from, bytes }
                }),
            1 => (0usize..4, 0u64..40).prop_map(|(from, pos)| Op::Genesis { from, pos }),
            2 => (0usize..4, 0usize..3, edit, 0u64..40)
                .prop_map(|(from, key_package, edit, pos)| Op::Knock { from, key_package, edit, pos }),
            1 => (0usize..4, 0u64..6, 0u64..40).prop_map(|(from, epoch, pos)| Op::In { from, epoch, pos }),
            1 => (0usize..4).prop_map(Op::Joined),
            1 => (0usize..4).prop_map(Op::Left),
            1 => (0usize..4).prop_map(Op::LetIn),
            1 => Just(Op::CommitAcked),
            1 => Just(Op::CommitFailed),
            1 => Just(Op::MissedCommits),
            1 => (0u8..3, 0u64..40).prop_map(|(what, pos)| Op::Sent(what, pos)),
        ]
    }

    fn edited(mut bytes: Vec<u8>, edit: Option<(usize, u8)>, cut: Option<usize>) -> Vec<u8> {
        if let Some((at, xor)) = edit
            && !bytes.is_empty()
        {
            let at = at % bytes.len();
            bytes[at] ^= xor;
        }
        if let Some(len) = cut {
            bytes.truncate(len);
        }
        bytes
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig {
            cases: 128,
            failure_persistence: None,
            ..proptest::prelude::ProptestConfig::default()
        })]

        /// Whatever the members present send, in whatever order, A never panics, shows a
        /// message only if it is byte for byte one B sealed and it is attributed to B,
        /// and keeps its buffers within their bounds.
        #[test]
        fn hostile_frames_and_orders_never_panic_forge_or_grow(
            open in proptest::prelude::any::<bool>(),
            ops in proptest::collection::vec(op(), 1..40),
        ) {
            let mut h = hostile(open);
            for op in ops {
                let key = &h.a_key;
                let member = |i: usize| h.members[i % 4].0.clone();
                let (outs, fed) = match op {
                    Op::Mls { from, frame, edit, cut, direct } => {
                        let bytes = edited(h.frames[frame].clone(), edit, cut);
                        let outs = h.a.mls_frame(&member(from), bytes.clone(), direct, key);
                        (outs, Some((from, bytes)))
                    }
                    Op::Garbage { from, bytes } => (h.a.mls_frame(&member(from), bytes, false, key), None),
                    Op::Genesis { from, pos } => {
                        (h.a.lobby_body(&member(from), LobbyBody::Genesis { sent_at: 1 }, pos, key), None)
                    }
                    Op::Knock { from, key_package, edit, pos } => {
                        let key_package = match h.key_packages.get(key_package) {
                            Some(kp) => {
                                let bytes = encoding::decode("key package", kp).unwrap();
                                encoding::encode(&edited(bytes, edit, None))
                            }
                            None => "not base64!".to_owned(),
                        };
                        let knock = LobbyBody::Knock { key_package, sent_at: 1 };
                        (h.a.lobby_body(&member(from), knock, pos, key), None)
                    }
                    Op::In { from, epoch, pos } => {
                        (h.a.lobby_body(&member(from), LobbyBody::In { epoch, sent_at: 1 }, pos, key), None)
                    }
                    Op::Joined(i) => {
                        h.a.member_joined(member(i), h.members[i % 4].1);
                        (Vec::new(), None)
                    }
                    Op::Left(i) => (h.a.member_left(&member(i), key), None),
                    Op::LetIn(i) => (h.a.let_in(&member(i), key), None),
                    Op::CommitAcked => (h.a.commit_acked(key), None),
                    Op::CommitFailed => (h.a.commit_failed(key), None),
                    Op::MissedCommits => (h.a.missed_commits(key), None),
                    Op::Sent(what, pos) => {
                        let what = [Sent::Genesis, Sent::Knock, Sent::In][usize::from(what) % 3];
                        (h.a.sent(what, pos, key), None)
                    }
                };
                for out in &outs {
                    if let Out::Show(Shown::Message { from, plaintext }) = out {
                        let Some((sender, bytes)) = &fed else {
                            panic!("a message shown for something that was not a frame: {outs:?}");
                        };
                        proptest::prop_assert_eq!(*sender, 0, "shown as {}'s", from);
                        proptest::prop_assert_eq!(from, &id("bbbb"));
                        proptest::prop_assert!(
                            h.sealed.iter().any(|(s, p)| s == bytes && p == plaintext),
                            "a message shown that B did not seal"
                        );
                    }
                }
                proptest::prop_assert!(h.a.kept.len() <= KEPT_FRAMES);
                proptest::prop_assert!(h.a.joins.len() <= PENDING_JOINS);
                proptest::prop_assert!(h.a.others.len() <= 4);
                proptest::prop_assert!(h.a.let_in.iter().all(|m| h.a.others.contains_key(m)));
            }
        }
    }
}
