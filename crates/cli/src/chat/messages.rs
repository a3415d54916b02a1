//! The texts of the conversation by number, as both front-ends show them (`#3`), so that
//! `/reply 3 …`, `/react 3 👍`, `/edit 3 …` and `/delete 3` can name one. Bounded: the
//! oldest are forgotten first.

use std::collections::VecDeque;
use streamchat_client::session::MessageRef;

/// Texts kept by number, at most.
pub const MAX_NUMBERED: usize = 4096;

/// One numbered text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Numbered {
    /// Its number (from 1).
    pub number: usize,
    /// How the session names it.
    pub message: MessageRef,
    /// Its author's name.
    pub author: String,
    /// Its text now (after edits; empty once deleted).
    pub text: String,
    /// Whether it is this person's own.
    pub own: bool,
    /// Whether its author deleted it.
    pub deleted: bool,
}

/// The numbered texts.
#[derive(Debug, Default)]
pub struct Messages {
    kept: VecDeque<Numbered>,
    last: usize,
}

impl Messages {
    /// Numbers a new text; returns its number.
    pub fn add(&mut self, message: MessageRef, author: &str, text: &str, own: bool) -> usize {
        self.last += 1;
        self.kept.push_back(Numbered {
            number: self.last,
            message,
            author: author.to_owned(),
            text: text.to_owned(),
            own,
            deleted: false,
        });
        if self.kept.len() > MAX_NUMBERED {
            self.kept.pop_front();
        }
        self.last
    }

    /// Text number `number`, if still kept.
    pub fn get(&self, number: usize) -> Option<&Numbered> {
        self.kept.iter().find(|m| m.number == number)
    }

    /// The text `message` names, if kept.
    pub fn find_mut(&mut self, message: &MessageRef) -> Option<&mut Numbered> {
        self.kept.iter_mut().rev().find(|m| m.message == *message)
    }

    /// The text `message` names, if kept.
    pub fn find(&self, message: &MessageRef) -> Option<&Numbered> {
        self.kept.iter().rev().find(|m| m.message == *message)
    }

    /// Text `number` for a reply or reaction (it must exist and not be deleted), or why not.
    pub fn target(&self, number: usize) -> Result<&Numbered, String> {
        match self.get(number) {
            None => Err(format!("there is no message number {number}")),
            Some(m) if m.deleted => Err(format!("message {number} was deleted")),
            Some(m) => Ok(m),
        }
    }

    /// Own text `number` for an edit or deletion, or why not.
    pub fn own_target(&self, number: usize) -> Result<&Numbered, String> {
        let m = self.target(number)?;
        if m.own {
            Ok(m)
        } else {
            Err(format!(
                "message {number} is {}'s: you can edit or delete only your own messages",
                m.author
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use streamchat_crypto::IdentityKey;

    #[test]
    fn numbers_name_texts_and_only_own_ones_can_change() {
        let key = IdentityKey::from_seed(&[1; 32]).public_key();
        let mut messages = Messages::default();
        let a = MessageRef { key, sent_at: 1 };
        let b = MessageRef { key, sent_at: 2 };
        assert_eq!(messages.add(a, "Bob", "hi", false), 1);
        assert_eq!(messages.add(b, "Me", "yo", true), 2);
        assert_eq!(messages.target(1).unwrap().text, "hi");
        assert!(messages.own_target(1).unwrap_err().contains("Bob's"));
        assert!(messages.own_target(2).is_ok());
        messages.find_mut(&b).unwrap().deleted = true;
        assert!(messages.own_target(2).unwrap_err().contains("deleted"));
        assert!(messages.target(3).is_err());
    }
}
