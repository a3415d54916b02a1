//! Who is in the room, as far as their profiles prove it.
//!
//! A member's profile is a sealed `profile` body handed to the server on join. It is
//! admitted only if it decrypts for *this* room and *this* member id (the aad and the
//! signed bytes carry both, so the server cannot move a profile to another member), and
//! if its signature verifies with the key it announces. From then on, every message
//! attributed to that member id must be signed by that key.

use super::{Member, crypto_member};
use std::collections::HashMap;
use streamchat_crypto::{Body, OpenError, PublicKey, RoomKeys, encoding, open_profile};
use streamchat_protocol::MemberId;

/// The longest name shown, in characters (as the web client).
pub const MAX_NAME_CHARS: usize = 64;

/// Why a profile was not admitted.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ProfileError {
    /// Not base64url.
    #[error("it is not base64url")]
    Encoding,
    /// Decryption failed, the signature did not verify, or it is not a profile.
    #[error("{}", open_error_words(.0))]
    Open(#[from] OpenError),
    /// The name is empty once cleaned.
    #[error("its name is empty")]
    EmptyName,
}

fn open_error_words(e: &OpenError) -> &'static str {
    match e {
        OpenError::BadSignature => "it failed signature verification",
        OpenError::NotAProfile { .. } => "it is not a well-formed profile",
        OpenError::Tampered | OpenError::Truncated { .. } | OpenError::UnsupportedVersion(_) => {
            "it failed decryption"
        }
    }
}

/// Removes control and bidi-override characters and surrounding space from a name and
/// cuts it to [`MAX_NAME_CHARS`]; `None` if nothing visible is left.
pub(crate) fn clean_name(name: &str) -> Option<String> {
    let cleaned: String = crate::display::safe_line(name)
        .trim()
        .chars()
        .take(MAX_NAME_CHARS)
        .collect();
    let cleaned = cleaned.trim().to_owned();
    (!cleaned.is_empty()).then_some(cleaned)
}

/// Opens and verifies `profile` (base64url of sealed bytes) as `member`'s.
pub(crate) fn open_member_profile(
    keys: &RoomKeys,
    member: &MemberId,
    profile: &str,
    joined_at: u64,
) -> Result<Member, ProfileError> {
    let sealed = encoding::decode("profile", profile).map_err(|_| ProfileError::Encoding)?;
    let (profile, verified) = open_profile(keys, &crypto_member(member), &sealed)?;
    // open_profile has checked that the body is a profile signed by its own key.
    debug_assert!(matches!(verified.parse(), Ok(Body::Profile(_))));
    let name = clean_name(&profile.name).ok_or(ProfileError::EmptyName)?;
    Ok(Member {
        member: member.clone(),
        name,
        fingerprint: profile.key.fingerprint().to_string(),
        key: profile.key,
        joined_at,
        is_self: false,
    })
}

/// The members present, by member id, and the keys of people seen before (so that a
/// member who comes back after a reconnection reads as "rejoined").
#[derive(Debug, Default)]
pub(crate) struct Roster {
    members: HashMap<MemberId, Member>,
    departed_keys: Vec<PublicKey>,
    /// The key last seen with each name (case folded) in this session, for trust alerts.
    seen_names: HashMap<String, PublicKey>,
}

/// People remembered as departed, at most (oldest forgotten first).
const MAX_DEPARTED: usize = 256;

impl Roster {
    pub(crate) fn get(&self, member: &MemberId) -> Option<&Member> {
        self.members.get(member)
    }

    pub(crate) fn contains(&self, member: &MemberId) -> bool {
        self.members.contains_key(member)
    }

    /// Adds a member; returns whether their key was seen before (a returning person).
    pub(crate) fn insert(&mut self, member: Member) -> bool {
        let returning = match self.departed_keys.iter().position(|k| *k == member.key) {
            Some(i) => {
                self.departed_keys.remove(i);
                true
            }
            None => false,
        };
        self.members.insert(member.member.clone(), member);
        returning
    }

    /// Removes a member and remembers their key.
    pub(crate) fn remove(&mut self, member: &MemberId) -> Option<Member> {
        let gone = self.members.remove(member)?;
        self.remember(&gone);
        Some(gone)
    }

    fn remember(&mut self, gone: &Member) {
        if gone.is_self {
            return;
        }
        self.departed_keys.push(gone.key);
        if self.departed_keys.len() > MAX_DEPARTED {
            self.departed_keys.remove(0);
        }
    }

    /// Replaces everyone (after a rejoin); returns those who are gone, by key.
    pub(crate) fn replace_all(&mut self, present: Vec<Member>) -> ReplaceOutcome {
        let previous: Vec<Member> = self.members.drain().map(|(_, m)| m).collect();
        let mut outcome = ReplaceOutcome::default();
        for member in present {
            let known_before = previous.iter().any(|p| !p.is_self && p.key == member.key);
            let returning = self.insert(member.clone());
            if !known_before && !member.is_self {
                outcome.arrived.push((member, returning));
            }
        }
        for gone in previous {
            if gone.is_self {
                continue;
            }
            if !self.members.values().any(|m| m.key == gone.key) {
                self.remember(&gone);
                outcome.departed.push(gone);
            }
        }
        outcome
    }

    /// What people should know before trusting `member` (who just arrived, or was here when
    /// this session joined): their name was seen in this room with another key, or someone
    /// else present has the same name. Remembers the name with this key. Names compare
    /// case-insensitively; this session's own name counts. With `history` false (those
    /// present when this session first joined) only a shared name is news.
    pub(crate) fn trust_alerts(&mut self, member: &Member, history: bool) -> Vec<String> {
        let folded = member.name.to_lowercase();
        let mut alerts = Vec::new();
        // The key last seen with the name, if its holder is gone: while they are still
        // here, the shared name below says it.
        if let Some(previous) = self.seen_names.get(&folded).filter(|_| history)
            && *previous != member.key
            && !self.members.values().any(|m| m.key == *previous)
        {
            alerts.push(format!(
                "{} is here with a different key than the {} seen earlier in this room (fingerprint {} before, {} now): it may be the same person in a new session, or someone else using the name. Compare fingerprints (/who) before trusting them.",
                member.name,
                member.name,
                previous.fingerprint(),
                member.fingerprint
            ));
        }
        if let Some(other) = self.members.values().find(|m| {
            m.key != member.key && m.member != member.member && m.name.to_lowercase() == folded
        }) {
            let whom = if other.is_self {
                "you and someone else".to_owned()
            } else {
                "two people".to_owned()
            };
            alerts.push(format!(
                "Now {whom} here are called {}: compare fingerprints (/who) to tell them apart ({} and {}).",
                member.name, other.fingerprint, member.fingerprint
            ));
        }
        if self.seen_names.len() >= MAX_DEPARTED && !self.seen_names.contains_key(&folded) {
            // Bounded: forget an arbitrary name rather than grow without end.
            if let Some(any) = self.seen_names.keys().next().cloned() {
                self.seen_names.remove(&any);
            }
        }
        self.seen_names.insert(folded, member.key);
        alerts
    }

    /// Everyone, oneself first, then by join time.
    pub(crate) fn members(&self) -> Vec<Member> {
        let mut all: Vec<Member> = self.members.values().cloned().collect();
        all.sort_by(|a, b| {
            b.is_self
                .cmp(&a.is_self)
                .then(a.joined_at.cmp(&b.joined_at))
                .then(a.member.cmp(&b.member))
        });
        all
    }
}

/// Who arrived and who left while this session was away.
#[derive(Debug, Default)]
pub(crate) struct ReplaceOutcome {
    /// New members, with whether they were seen before.
    pub(crate) arrived: Vec<(Member, bool)>,
    /// Members no longer present.
    pub(crate) departed: Vec<Member>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use streamchat_crypto::{IdentityKey, RoomSecret, seal};

    fn profile_for(keys: &RoomKeys, member: &str, identity: &IdentityKey, name: &str) -> String {
        let body = serde_json::json!({
            "type": "profile", "name": name, "key": identity.public_key(), "sent_at": 1
        });
        let sealed = seal(
            keys,
            &streamchat_crypto::MemberId::new(member).unwrap(),
            identity,
            body.to_string().as_bytes(),
        )
        .unwrap();
        encoding::encode(&sealed)
    }

    #[test]
    fn a_profile_is_bound_to_its_member_id_and_key() {
        let keys = RoomSecret::from_bytes([7; 32]).room_keys();
        let alice = IdentityKey::from_seed(&[1; 32]);
        let text = profile_for(&keys, "sid-a", &alice, " Al\u{1b}ice \n");
        let a = MemberId::new("sid-a").unwrap();
        let member = open_member_profile(&keys, &a, &text, 5).unwrap();
        assert_eq!(member.name, "Alice");
        assert_eq!(member.key, alice.public_key());
        assert_eq!(
            member.fingerprint,
            alice.public_key().fingerprint().to_string()
        );
        // The server hands Alice's profile out as someone else's: refused.
        let b = MemberId::new("sid-b").unwrap();
        assert!(matches!(
            open_member_profile(&keys, &b, &text, 5),
            Err(ProfileError::Open(OpenError::Tampered))
        ));
        // Another room's key: refused.
        let other = RoomSecret::from_bytes([8; 32]).room_keys();
        assert!(open_member_profile(&other, &a, &text, 5).is_err());
        assert!(matches!(
            open_member_profile(&keys, &a, "not base64!", 5),
            Err(ProfileError::Encoding)
        ));
        let blank = profile_for(&keys, "sid-a", &alice, " \u{7} ");
        assert!(matches!(
            open_member_profile(&keys, &a, &blank, 5),
            Err(ProfileError::EmptyName)
        ));
    }

    fn person(name: &str, id: &str, seed: u8, is_self: bool) -> Member {
        let key = IdentityKey::from_seed(&[seed; 32]).public_key();
        Member {
            member: MemberId::new(id).unwrap(),
            name: name.into(),
            fingerprint: key.fingerprint().to_string(),
            key,
            joined_at: 0,
            is_self,
        }
    }

    #[test]
    fn trust_alerts_for_a_name_with_a_new_key_and_for_two_people_with_one_name() {
        let mut roster = Roster::default();
        let me = person("Alice", "a", 1, true);
        roster.insert(me.clone());
        assert!(roster.trust_alerts(&me, true).is_empty());
        let bob = person("Bob", "b", 2, false);
        roster.insert(bob.clone());
        assert!(roster.trust_alerts(&bob, true).is_empty());
        // Bob reconnects with the same key under a new member id: nothing to say.
        roster.remove(&bob.member);
        let bob_again = person("Bob", "b2", 2, false);
        roster.insert(bob_again.clone());
        assert!(roster.trust_alerts(&bob_again, true).is_empty());
        // Another "bob" (any case) while Bob is here: two Bobs.
        let other = person("bob", "c", 3, false);
        roster.insert(other.clone());
        let alerts = roster.trust_alerts(&other, true);
        assert_eq!(alerts.len(), 1, "{alerts:?}");
        assert!(
            alerts[0].starts_with("Now two people here are called bob"),
            "{}",
            alerts[0]
        );
        // Both leave, and a Bob comes back with yet another key.
        roster.remove(&other.member);
        roster.remove(&bob_again.member);
        let third = person("Bob", "e", 5, false);
        roster.insert(third.clone());
        let alerts = roster.trust_alerts(&third, true);
        assert_eq!(alerts.len(), 1, "{alerts:?}");
        assert!(alerts[0].contains("with a different key"), "{}", alerts[0]);
        assert!(alerts[0].contains(&other.fingerprint) && alerts[0].contains(&third.fingerprint));
        // Someone takes this session's own name.
        let fake = person("ALICE", "d", 4, false);
        roster.insert(fake.clone());
        let alerts = roster.trust_alerts(&fake, true);
        assert!(
            alerts
                .iter()
                .any(|a| a.starts_with("Now you and someone else here are called ALICE")),
            "{alerts:?}"
        );
    }

    #[test]
    fn names_are_cleaned_and_bounded() {
        assert_eq!(clean_name("  Bob\u{202e} "), Some("Bob".to_owned()));
        assert_eq!(clean_name("x".repeat(100).as_str()).unwrap().len(), 64);
        assert_eq!(clean_name("\u{1b}\u{7}"), None);
    }
}
