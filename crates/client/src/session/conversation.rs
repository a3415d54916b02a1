//! Replies, reactions, edits and deletions (docs/crypto.md §8): which messages this
//! session knows, who may change them, and the reactions on each.
//!
//! A message is named by a [`MessageRef`], its author's public key and its body's
//! `sent_at`, both inside the signed body that refers to it, so the server can neither
//! forge a reference nor point one at another message. The rules every receiver applies:
//! - an `edit` or `delete` counts only when it is signed by the key in its reference, the
//!   key that signed the message; anyone else's is refused (the UI warns) and changes
//!   nothing;
//! - it must name a text this session knows (sent or received since it joined, among the
//!   last [`MAX_KNOWN`]); one about an unknown message (sent before this session joined)
//!   is ignored;
//! - of several edits the one with the latest `sent_at` wins, whatever order they arrive
//!   in; a deleted message stays deleted;
//! - reactions count one per member per emoji: a member's latest `reaction` body for an
//!   emoji (by `sent_at`) says whether it is on; a member has at most
//!   [`MAX_EMOJI_PER_MEMBER`] different emoji on one message.

use serde::Serialize;
use std::collections::{HashMap, VecDeque};
use streamchat_crypto::{Delete, Edit, MessageRef, PublicKey, Reaction};

/// Messages remembered for references, at most (the oldest are forgotten first).
pub const MAX_KNOWN: usize = 4096;
/// Different emoji one member may have on one message.
pub const MAX_EMOJI_PER_MEMBER: usize = 8;

/// The reactions on a message with one emoji.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReactionCount {
    /// The emoji.
    pub emoji: String,
    /// How many people put it on.
    pub count: usize,
    /// Their names, in the order they reacted.
    pub names: Vec<String>,
    /// Whether this session's person is one of them.
    pub mine: bool,
}

/// Why a reply, reaction, edit or deletion changed nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    /// The message is not known here (sent before this session joined, or forgotten).
    #[error("that message is not known here")]
    Unknown,
    /// An edit or deletion signed by someone other than the message's author.
    #[error("only its author can change a message")]
    NotAuthor,
    /// The message was deleted.
    #[error("that message was deleted")]
    Deleted,
    /// An edit or reaction older than one already applied.
    #[error("a newer change was already applied")]
    Stale,
    /// The member already has [`MAX_EMOJI_PER_MEMBER`] emoji on the message.
    #[error("too many different reactions on one message")]
    TooMany,
}

#[derive(Debug)]
struct Reactor {
    key: PublicKey,
    name: String,
    emoji: String,
    on: bool,
    sent_at: u64,
}

#[derive(Debug, Default)]
struct Known {
    /// `sent_at` of the edit shown, if any.
    edited_at: Option<u64>,
    deleted: bool,
    /// In the order of each member's first reaction with each emoji.
    reactors: Vec<Reactor>,
}

/// The messages this session knows and their reactions.
#[derive(Debug)]
pub(crate) struct Conversation {
    own_key: PublicKey,
    messages: HashMap<MessageRef, Known>,
    order: VecDeque<MessageRef>,
}

impl Conversation {
    pub(crate) fn new(own_key: PublicKey) -> Self {
        Self {
            own_key,
            messages: HashMap::new(),
            order: VecDeque::new(),
        }
    }

    /// Remembers a text (received, or this session's own). A text sent again after a
    /// rejoin has the same reference and changes nothing.
    pub(crate) fn record(&mut self, message: MessageRef) {
        if self.messages.contains_key(&message) {
            return;
        }
        self.messages.insert(message, Known::default());
        self.order.push_back(message);
        if self.order.len() > MAX_KNOWN
            && let Some(oldest) = self.order.pop_front()
        {
            self.messages.remove(&oldest);
        }
    }

    fn live(&mut self, message: &MessageRef) -> Result<&mut Known, Refused> {
        let known = self.messages.get_mut(message).ok_or(Refused::Unknown)?;
        if known.deleted {
            return Err(Refused::Deleted);
        }
        Ok(known)
    }

    /// Whether `message` is a known, not deleted text of this session's own.
    pub(crate) fn own_and_live(&self, message: &MessageRef) -> Result<(), Refused> {
        if message.key != self.own_key {
            return Err(Refused::NotAuthor);
        }
        match self.messages.get(message) {
            None => Err(Refused::Unknown),
            Some(known) if known.deleted => Err(Refused::Deleted),
            Some(_) => Ok(()),
        }
    }

    /// Applies an edit signed by `signer`.
    pub(crate) fn edit(&mut self, signer: &PublicKey, edit: &Edit) -> Result<(), Refused> {
        if *signer != edit.to.key {
            return Err(Refused::NotAuthor);
        }
        let known = self.live(&edit.to)?;
        if known.edited_at.is_some_and(|at| at >= edit.sent_at) {
            return Err(Refused::Stale);
        }
        known.edited_at = Some(edit.sent_at);
        Ok(())
    }

    /// Applies a deletion signed by `signer`; the reactions go with the text.
    pub(crate) fn delete(&mut self, signer: &PublicKey, delete: &Delete) -> Result<(), Refused> {
        if *signer != delete.to.key {
            return Err(Refused::NotAuthor);
        }
        let known = self.live(&delete.to)?;
        known.deleted = true;
        known.reactors.clear();
        Ok(())
    }

    /// Applies a reaction by `signer` (named `name`); returns the message's reactions.
    pub(crate) fn react(
        &mut self,
        signer: &PublicKey,
        name: &str,
        reaction: &Reaction,
    ) -> Result<Vec<ReactionCount>, Refused> {
        let known = self.live(&reaction.to)?;
        let existing = known
            .reactors
            .iter_mut()
            .find(|r| r.key == *signer && r.emoji == reaction.emoji);
        match existing {
            Some(r) if r.sent_at >= reaction.sent_at => return Err(Refused::Stale),
            Some(r) => {
                r.on = reaction.add;
                r.sent_at = reaction.sent_at;
                r.name = name.to_owned();
            }
            None => {
                let theirs: Vec<usize> = (0..known.reactors.len())
                    .filter(|&i| known.reactors[i].key == *signer)
                    .collect();
                if theirs.len() >= MAX_EMOJI_PER_MEMBER {
                    // Room for a new emoji only in place of one taken back.
                    let off = theirs.into_iter().find(|&i| !known.reactors[i].on);
                    match off {
                        Some(i) if reaction.add => {
                            known.reactors.remove(i);
                        }
                        _ => return Err(Refused::TooMany),
                    }
                }
                known.reactors.push(Reactor {
                    key: *signer,
                    name: name.to_owned(),
                    emoji: reaction.emoji.clone(),
                    on: reaction.add,
                    sent_at: reaction.sent_at,
                });
            }
        }
        Ok(self.reactions(&reaction.to))
    }

    /// Whether this session's person has `emoji` on `message`.
    pub(crate) fn has_own_reaction(&self, message: &MessageRef, emoji: &str) -> bool {
        self.messages.get(message).is_some_and(|known| {
            known
                .reactors
                .iter()
                .any(|r| r.key == self.own_key && r.emoji == emoji && r.on)
        })
    }

    /// The reactions on `message`, per emoji in the order each was first put on.
    pub(crate) fn reactions(&self, message: &MessageRef) -> Vec<ReactionCount> {
        let mut out: Vec<ReactionCount> = Vec::new();
        let Some(known) = self.messages.get(message) else {
            return out;
        };
        for r in known.reactors.iter().filter(|r| r.on) {
            let mine = r.key == self.own_key;
            match out.iter_mut().find(|c| c.emoji == r.emoji) {
                Some(count) => {
                    count.count += 1;
                    count.names.push(r.name.clone());
                    count.mine |= mine;
                }
                None => out.push(ReactionCount {
                    emoji: r.emoji.clone(),
                    count: 1,
                    names: vec![r.name.clone()],
                    mine,
                }),
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use streamchat_crypto::IdentityKey;

    fn key(seed: u8) -> PublicKey {
        IdentityKey::from_seed(&[seed; 32]).public_key()
    }

    fn msg(author: u8, sent_at: u64) -> MessageRef {
        MessageRef {
            key: key(author),
            sent_at,
        }
    }

    fn edit(to: MessageRef, sent_at: u64) -> Edit {
        Edit {
            to,
            text: format!("v{sent_at}"),
            sent_at,
        }
    }

    fn react(to: MessageRef, emoji: &str, add: bool, sent_at: u64) -> Reaction {
        Reaction {
            to,
            emoji: emoji.into(),
            add,
            sent_at,
        }
    }

    #[test]
    fn only_the_author_edits_or_deletes_and_only_known_messages() {
        let mut c = Conversation::new(key(1));
        let bobs = msg(2, 100);
        c.record(bobs);
        // Mallory (3) signs an edit naming Bob's message: refused.
        assert_eq!(c.edit(&key(3), &edit(bobs, 101)), Err(Refused::NotAuthor));
        assert_eq!(
            c.delete(
                &key(3),
                &Delete {
                    to: bobs,
                    sent_at: 102
                }
            ),
            Err(Refused::NotAuthor)
        );
        // Mallory names her own key with Bob's sent_at: no such message of hers.
        assert_eq!(
            c.edit(&key(3), &edit(msg(3, 100), 103)),
            Err(Refused::Unknown)
        );
        // Bob's own edit of a message sent before this session joined: unknown.
        assert_eq!(
            c.edit(&key(2), &edit(msg(2, 50), 104)),
            Err(Refused::Unknown)
        );
        assert_eq!(c.edit(&key(2), &edit(bobs, 105)), Ok(()));
    }

    #[test]
    fn the_latest_edit_wins_and_a_deletion_is_final() {
        let mut c = Conversation::new(key(1));
        let m = msg(2, 100);
        c.record(m);
        assert_eq!(c.edit(&key(2), &edit(m, 300)), Ok(()));
        // An older edit arriving late (or a copy) does not undo the newer one.
        assert_eq!(c.edit(&key(2), &edit(m, 200)), Err(Refused::Stale));
        assert_eq!(c.edit(&key(2), &edit(m, 300)), Err(Refused::Stale));
        assert_eq!(c.edit(&key(2), &edit(m, 400)), Ok(()));
        c.react(&key(3), "Carol", &react(m, "👍", true, 1)).unwrap();
        let gone = Delete {
            to: m,
            sent_at: 500,
        };
        assert_eq!(c.delete(&key(2), &gone), Ok(()));
        assert!(c.reactions(&m).is_empty(), "reactions go with the text");
        assert_eq!(c.edit(&key(2), &edit(m, 600)), Err(Refused::Deleted));
        assert_eq!(c.delete(&key(2), &gone), Err(Refused::Deleted));
        assert_eq!(
            c.react(&key(3), "Carol", &react(m, "👍", true, 2)),
            Err(Refused::Deleted)
        );
        assert_eq!(c.own_and_live(&m), Err(Refused::NotAuthor));
    }

    #[test]
    fn reactions_count_one_per_member_per_emoji() {
        let mut c = Conversation::new(key(1));
        let m = msg(2, 100);
        c.record(m);
        c.react(&key(3), "Carol", &react(m, "👍", true, 10))
            .unwrap();
        // A copy, and an older "off" arriving late, change nothing.
        assert_eq!(
            c.react(&key(3), "Carol", &react(m, "👍", true, 10)),
            Err(Refused::Stale)
        );
        assert_eq!(
            c.react(&key(3), "Carol", &react(m, "👍", false, 5)),
            Err(Refused::Stale)
        );
        c.react(&key(1), "Alice", &react(m, "👍", true, 11))
            .unwrap();
        let counts = c.react(&key(2), "Bob", &react(m, "🎉", true, 12)).unwrap();
        assert_eq!(
            counts,
            vec![
                ReactionCount {
                    emoji: "👍".into(),
                    count: 2,
                    names: vec!["Carol".into(), "Alice".into()],
                    mine: true,
                },
                ReactionCount {
                    emoji: "🎉".into(),
                    count: 1,
                    names: vec!["Bob".into()],
                    mine: false,
                },
            ]
        );
        assert!(c.has_own_reaction(&m, "👍"));
        let counts = c
            .react(&key(1), "Alice", &react(m, "👍", false, 13))
            .unwrap();
        assert_eq!(counts[0].count, 1);
        assert!(!counts[0].mine);
        assert!(!c.has_own_reaction(&m, "👍"));
        assert_eq!(
            c.react(&key(3), "Carol", &react(msg(2, 1), "👍", true, 14)),
            Err(Refused::Unknown)
        );
    }

    #[test]
    fn a_member_has_a_bounded_number_of_emoji_on_a_message() {
        let mut c = Conversation::new(key(1));
        let m = msg(2, 100);
        c.record(m);
        for i in 0..MAX_EMOJI_PER_MEMBER as u64 {
            c.react(&key(3), "Carol", &react(m, &format!("e{i}"), true, i + 1))
                .unwrap();
        }
        assert_eq!(
            c.react(&key(3), "Carol", &react(m, "new", true, 100)),
            Err(Refused::TooMany)
        );
        // Taking one back makes room.
        c.react(&key(3), "Carol", &react(m, "e0", false, 101))
            .unwrap();
        let counts = c
            .react(&key(3), "Carol", &react(m, "new", true, 102))
            .unwrap();
        assert_eq!(counts.len(), MAX_EMOJI_PER_MEMBER);
        // Someone else is not limited by Carol's.
        assert!(c.react(&key(4), "Dan", &react(m, "e1", true, 1)).is_ok());
    }

    #[test]
    fn known_messages_are_bounded() {
        let mut c = Conversation::new(key(1));
        for i in 0..=MAX_KNOWN as u64 {
            c.record(msg(1, i));
        }
        assert_eq!(c.own_and_live(&msg(1, 0)), Err(Refused::Unknown));
        assert_eq!(c.own_and_live(&msg(1, MAX_KNOWN as u64)), Ok(()));
        assert_eq!(c.messages.len(), MAX_KNOWN);
    }
}
