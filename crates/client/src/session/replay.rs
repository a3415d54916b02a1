//! Replay and duplicate detection. The server can replay what it relayed (docs/crypto.md §10):
//! every accepted message is remembered by its sender's key, its `sent_at` and its
//! signature, and a second copy is dropped. Memory is bounded; the oldest are forgotten
//! first. The same key as the web client's, so both sides drop the same things.

use std::collections::{HashSet, VecDeque};
use streamchat_crypto::{PublicKey, SIGNATURE_LEN};

/// Messages remembered, at most.
pub(crate) const REPLAY_CAPACITY: usize = 8192;

type ReplayKey = (PublicKey, u64, [u8; SIGNATURE_LEN]);

/// Remembers the last [`REPLAY_CAPACITY`] messages accepted.
#[derive(Debug)]
pub(crate) struct ReplayGuard {
    seen: HashSet<ReplayKey>,
    order: VecDeque<ReplayKey>,
    capacity: usize,
}

impl Default for ReplayGuard {
    fn default() -> Self {
        Self::with_capacity(REPLAY_CAPACITY)
    }
}

impl ReplayGuard {
    pub(crate) fn with_capacity(capacity: usize) -> Self {
        Self {
            seen: HashSet::new(),
            order: VecDeque::new(),
            capacity: capacity.max(1),
        }
    }

    /// Records a message; false if it was seen already (a replay or duplicate).
    pub(crate) fn accept(
        &mut self,
        sender: PublicKey,
        sent_at: u64,
        signature: [u8; SIGNATURE_LEN],
    ) -> bool {
        let key = (sender, sent_at, signature);
        if !self.seen.insert(key) {
            return false;
        }
        self.order.push_back(key);
        if self.order.len() > self.capacity
            && let Some(oldest) = self.order.pop_front()
        {
            self.seen.remove(&oldest);
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use streamchat_crypto::IdentityKey;

    #[test]
    fn duplicates_are_dropped_and_memory_is_bounded() {
        let key = IdentityKey::from_seed(&[1; 32]).public_key();
        let mut guard = ReplayGuard::with_capacity(2);
        assert!(guard.accept(key, 1, [1; 64]));
        assert!(!guard.accept(key, 1, [1; 64]));
        assert!(guard.accept(key, 1, [2; 64]));
        assert!(guard.accept(key, 2, [1; 64]));
        // The first was forgotten.
        assert!(guard.accept(key, 1, [1; 64]));
        assert_eq!(guard.order.len(), 2);
    }
}
