//! What members see as the room's group moves through epochs: joins, leaves, races on
//! the ordered room log, late messages and garbage.
// Helpers unwrap too: a panic is the failure report wanted here.
#![allow(clippy::unwrap_used)]

use proptest::prelude::*;
use streamchat_crypto::{IdentityKey, PublicKey};
use streamchat_mls::{Error, Processed, RoomGroup};

const ROOM: &str = "room-under-test";

struct Member {
    name: &'static str,
    identity: IdentityKey,
    group: RoomGroup,
}

impl Member {
    fn key(&self) -> PublicKey {
        self.identity.public_key()
    }
}

fn identity(n: u8) -> IdentityKey {
    IdentityKey::from_seed(&[n; 32])
}

/// Alice founds the room.
fn founder() -> Member {
    let identity = identity(1);
    let group = RoomGroup::create(&identity, ROOM).unwrap();
    Member {
        name: "alice",
        identity,
        group,
    }
}

/// `members[by]` commits the Add of a newcomer; the commit goes through the log to every
/// member in order; the newcomer joins from the Welcome.
fn add(members: &mut Vec<Member>, by: usize, name: &'static str, seed: u8) {
    let identity = identity(seed);
    let (mut pending, key_package) = RoomGroup::key_package(&identity, ROOM).unwrap();
    let proposed = members[by].group.add(&[&key_package]).unwrap();
    let before = members[by].group.epoch();
    assert_eq!(
        before,
        members[by].group.epoch(),
        "no epoch change before the log"
    );
    deliver_commit(members, &proposed.commit, by);
    let group = pending.join(&proposed.welcome.unwrap()).unwrap();
    members.push(Member {
        name,
        identity,
        group,
    });
    assert_converged(members);
}

/// Every member applies a commit from the log; its author sees `own: true`.
fn deliver_commit(members: &mut [Member], commit: &[u8], author: usize) {
    for (i, m) in members.iter_mut().enumerate() {
        match m.group.process(commit).unwrap() {
            Processed::Epoch { own, .. } => assert_eq!(own, i == author, "{}", m.name),
            other => panic!("{} got {other:?}", m.name),
        }
    }
}

fn assert_converged(members: &[Member]) {
    let first = &members[0].group;
    for m in members {
        assert_eq!(m.group.epoch(), first.epoch(), "{} epoch", m.name);
        assert_eq!(
            m.group.authenticator(),
            first.authenticator(),
            "{} authenticator",
            m.name
        );
        assert_eq!(m.group.members(), first.members(), "{} members", m.name);
    }
    assert_fingerprints(members);
}

/// Each member's entry in the group is its session identity key, so its fingerprint is
/// the one people compared.
fn assert_fingerprints(members: &[Member]) {
    for m in members {
        for viewer in members {
            let entry = viewer
                .group
                .members()
                .into_iter()
                .find(|k| *k == m.key())
                .unwrap_or_else(|| panic!("{} does not list {}", viewer.name, m.name));
            assert_eq!(entry.fingerprint(), m.identity.public_key().fingerprint());
        }
    }
}

fn opens(member: &mut Member, sealed: &[u8], from: &Member, text: &[u8]) {
    match member.group.process(sealed).unwrap() {
        Processed::Message { sender, plaintext } => {
            assert_eq!(sender, from.key(), "{} sees the right sender", member.name);
            assert_eq!(plaintext, text);
        }
        other => panic!("{} got {other:?}", member.name),
    }
}

fn three() -> Vec<Member> {
    let mut members = vec![founder()];
    add(&mut members, 0, "bob", 2);
    add(&mut members, 1, "carol", 3);
    members
}

#[test]
fn three_members_agree_and_read_each_other() {
    let mut members = three();
    assert_eq!(members[0].group.epoch(), 2);
    assert_eq!(members[0].group.members().len(), 3);
    for from in 0..3 {
        let text = format!("hello from {}", members[from].name).into_bytes();
        let sealed = members[from].group.seal(&text).unwrap();
        for to in 0..3 {
            if to == from {
                assert_eq!(
                    members[to].group.process(&sealed).unwrap(),
                    Processed::OwnMessage
                );
                continue;
            }
            let (sender, receiver) = if from < to {
                let (a, b) = members.split_at_mut(to);
                (&a[from], &mut b[0])
            } else {
                let (a, b) = members.split_at_mut(from);
                (&b[0], &mut a[to])
            };
            opens(receiver, &sealed, sender, &text);
        }
    }
}

#[test]
fn newcomer_cannot_open_what_came_before() {
    let mut members = vec![founder()];
    add(&mut members, 0, "bob", 2);
    let before = members[0].group.seal(b"before carol").unwrap();
    add(&mut members, 0, "carol", 3);
    let carol = &mut members[2];
    let err = carol.group.process(&before).unwrap_err();
    assert!(matches!(err, Error::Undecryptable(_)), "{err:?}");
    // Bob, who was there, still reads it.
    let (a, b) = members.split_at_mut(1);
    opens(&mut b[0], &before, &a[0], b"before carol");
}

#[test]
fn removed_member_cannot_open_the_new_epoch() {
    let mut members = three();
    let carol_key = members[2].key();
    let proposed = members[0].group.remove(&[carol_key]).unwrap();
    assert!(proposed.welcome.is_none());
    for (i, m) in members.iter_mut().enumerate() {
        let got = m.group.process(&proposed.commit).unwrap();
        match (i, got) {
            (2, Processed::Removed { committer, .. }) => {
                assert_eq!(committer, identity(1).public_key());
            }
            (0 | 1, Processed::Epoch { removed, own, .. }) => {
                assert_eq!(removed, vec![carol_key]);
                assert_eq!(own, i == 0);
            }
            (_, other) => panic!("{} got {other:?}", m.name),
        }
    }
    let mut carol = members.pop().unwrap();
    assert!(!carol.group.is_member());
    assert!(matches!(
        carol.group.seal(b"still here?"),
        Err(Error::NotAMember)
    ));
    assert_converged(&members);
    assert!(!members[0].group.members().contains(&carol_key));

    let sealed = members[1].group.seal(b"after carol").unwrap();
    let err = carol.group.process(&sealed).unwrap_err();
    assert!(matches!(err, Error::NotAMember), "{err:?}");
    let (a, b) = members.split_at_mut(1);
    opens(&mut a[0], &sealed, &b[0], b"after carol");
}

#[test]
fn removed_member_who_ignores_the_removal_still_cannot_open() {
    let mut members = three();
    let carol_key = members[2].key();
    let proposed = members[1].group.remove(&[carol_key]).unwrap();
    let mut carol = members.pop().unwrap();
    deliver_commit(&mut members, &proposed.commit, 1);
    // Carol's client never applies the commit that removed her: she holds only the old
    // epoch's keys, and the new epoch's message does not open with them.
    let sealed = members[0].group.seal(b"after carol").unwrap();
    let err = carol.group.process(&sealed).unwrap_err();
    assert!(matches!(err, Error::FutureEpoch { .. }), "{err:?}");
    // She is left behind on the old epoch, with an authenticator no member shares.
    assert_eq!(carol.group.epoch() + 1, members[0].group.epoch());
    assert_ne!(
        carol.group.authenticator(),
        members[0].group.authenticator()
    );
}

#[test]
fn concurrent_commits_first_on_the_log_wins() {
    let mut members = three();
    let epoch = members[0].group.epoch();
    // Bob adds dave while carol, on the same epoch, updates her leaf.
    let dave_id = identity(4);
    let (mut dave_pending, dave_kp) = RoomGroup::key_package(&dave_id, ROOM).unwrap();
    let bobs = members[1].group.add(&[&dave_kp]).unwrap();
    let carols = members[2].group.update().unwrap();
    assert!(members[2].group.has_pending());

    // The log orders bob's commit first: everyone applies it.
    for (i, m) in members.iter_mut().enumerate() {
        match m.group.process(&bobs.commit).unwrap() {
            Processed::Epoch {
                epoch: e,
                own,
                added,
                discarded_own,
                ..
            } => {
                assert_eq!(e, epoch + 1);
                assert_eq!(own, i == 1);
                assert_eq!(added, vec![dave_id.public_key()]);
                assert_eq!(discarded_own, i == 2, "{}", m.name);
            }
            other => panic!("{} got {other:?}", m.name),
        }
    }
    assert!(!members[2].group.has_pending());
    let dave = dave_pending.join(&bobs.welcome.unwrap()).unwrap();
    members.push(Member {
        name: "dave",
        identity: dave_id,
        group: dave,
    });
    assert_converged(&members);

    // Carol's commit comes next on the log: stale for everyone, carol included; dave
    // joined after it and refuses it the same way.
    for m in members.iter_mut() {
        let err = m.group.process(&carols.commit).unwrap_err();
        assert!(
            matches!(err, Error::Stale { epoch: e, current } if e == epoch && current == epoch + 1),
            "{}: {err:?}",
            m.name
        );
    }
    assert_converged(&members);

    // Carol commits again on the new epoch; it goes through.
    let retry = members[2].group.update().unwrap();
    deliver_commit(&mut members, &retry.commit, 2);
    assert_eq!(members[0].group.epoch(), epoch + 2);
    assert_converged(&members);
    let sealed = members[2].group.seal(b"carol, updated").unwrap();
    let (a, b) = members.split_at_mut(3);
    opens(&mut b[0], &sealed, &a[2], b"carol, updated");
}

#[test]
fn message_from_a_recent_past_epoch_still_opens() {
    let mut members = three();
    let late = members[1].group.seal(b"sealed in epoch 2").unwrap();
    let older = members[2].group.seal(b"also epoch 2").unwrap();
    // Four commits pass before the messages arrive (max_past_epochs = 4).
    for _ in 0..4 {
        let p = members[0].group.update().unwrap();
        deliver_commit(&mut members, &p.commit, 0);
    }
    assert_eq!(members[0].group.epoch(), 6);
    {
        let (a, b) = members.split_at_mut(1);
        opens(&mut a[0], &late, &b[0], b"sealed in epoch 2");
    }
    // One more commit and epoch 2 is too old.
    let p = members[0].group.update().unwrap();
    deliver_commit(&mut members, &p.commit, 0);
    let err = members[0].group.process(&older).unwrap_err();
    assert!(matches!(err, Error::Undecryptable(_)), "{err:?}");
}

#[test]
fn a_message_from_the_previous_epoch_opens_after_the_commit() {
    let mut members = three();
    let sealed = members[2].group.seal(b"just before the commit").unwrap();
    let p = members[1].group.update().unwrap();
    deliver_commit(&mut members, &p.commit, 1);
    let (a, b) = members.split_at_mut(2);
    opens(&mut a[0], &sealed, &b[0], b"just before the commit");
}

#[test]
fn messages_for_other_groups_or_future_epochs_are_refused() {
    let mut members = three();
    let mut other = RoomGroup::create(&identity(9), "another room").unwrap();
    let sealed = other.seal(b"wrong room").unwrap();
    let err = members[0].group.process(&sealed).unwrap_err();
    assert!(matches!(err, Error::WrongGroup), "{err:?}");

    // A Welcome for another room.
    let newcomer = identity(8);
    let (mut pending, kp) = RoomGroup::key_package(&newcomer, ROOM).unwrap();
    let proposed = other.add(&[&kp]).unwrap();
    other.process(&proposed.commit).unwrap();
    let err = pending.join(&proposed.welcome.unwrap()).unwrap_err();
    assert!(matches!(err, Error::WrongGroup), "{err:?}");
    // That Welcome did not use up the KeyPackage: the right room's Welcome still works.
    let proposed = members[0].group.add(&[&kp]).unwrap();
    deliver_commit(&mut members, &proposed.commit, 0);
    let joined = pending.join(&proposed.welcome.unwrap()).unwrap();
    assert_eq!(joined.authenticator(), members[0].group.authenticator());
    assert!(matches!(pending.join(b""), Err(Error::AlreadyJoined)));

    // A message from an epoch this member has not reached: alice is ahead of bob.
    let p = members[0].group.update().unwrap();
    members[0].group.process(&p.commit).unwrap();
    let ahead = members[0].group.seal(b"from epoch 4").unwrap();
    let err = members[1].group.process(&ahead).unwrap_err();
    assert!(
        matches!(
            err,
            Error::FutureEpoch {
                epoch: 4,
                current: 3
            }
        ),
        "{err:?}"
    );
}

#[test]
fn a_second_commit_waits_for_the_first() {
    let mut members = three();
    let p = members[0].group.update().unwrap();
    assert!(matches!(
        members[0].group.update(),
        Err(Error::CommitPending)
    ));
    // Sealing still works in the current epoch while the commit is pending.
    let sealed = members[0].group.seal(b"while pending").unwrap();
    {
        let (a, b) = members.split_at_mut(1);
        opens(&mut b[0], &sealed, &a[0], b"while pending");
    }
    deliver_commit(&mut members, &p.commit, 0);
    assert_converged(&members);
}

/// Signs as openmls asks, with any Ed25519 key: lets a test forge KeyPackages whose
/// credential does not match their signature key.
struct TestSigner(ed25519_dalek::SigningKey);

impl openmls_traits::signatures::Signer for TestSigner {
    fn sign(&self, payload: &[u8]) -> Result<Vec<u8>, openmls_traits::signatures::SignerError> {
        use ed25519_dalek::Signer as _;
        Ok(self.0.sign(payload).to_bytes().to_vec())
    }
    fn signature_scheme(&self) -> openmls::prelude::SignatureScheme {
        openmls::prelude::SignatureScheme::ED25519
    }
}

/// A KeyPackage, validly self-signed by the key `signing_seed`, whose BasicCredential
/// names `identity`.
fn forged_key_package(identity: Vec<u8>, signing_seed: u8) -> Vec<u8> {
    use openmls::prelude::*;
    use tls_codec::Serialize as _;
    let provider = openmls_rust_crypto::OpenMlsRustCrypto::default();
    let signer = TestSigner(ed25519_dalek::SigningKey::from_bytes(&[signing_seed; 32]));
    let credential = CredentialWithKey {
        credential: BasicCredential::new(identity).into(),
        signature_key: signer.0.verifying_key().to_bytes().to_vec().into(),
    };
    let bundle = KeyPackage::builder()
        .build(streamchat_mls::CIPHERSUITE, &provider, &signer, credential)
        .unwrap();
    MlsMessageOut::from(bundle.key_package().clone())
        .tls_serialize_detached()
        .unwrap()
}

#[test]
fn key_package_whose_credential_is_not_its_key_is_refused() {
    let mut alice = founder();
    // Mallory signs with her own key but names alice's key, hoping to show alice's
    // fingerprint; or names something that is not a key at all.
    for kp in [
        forged_key_package(identity(1).public_key().to_bytes().to_vec(), 66),
        forged_key_package(b"mallory".to_vec(), 66),
    ] {
        let err = alice.group.add(&[&kp]).unwrap_err();
        assert!(matches!(err, Error::BadCredential(_)), "{err:?}");
        assert!(!alice.group.has_pending());
    }
    // The honest form (credential = own signature key) goes through.
    let honest = forged_key_package(identity(66).public_key().to_bytes().to_vec(), 66);
    let proposed = alice.group.add(&[&honest]).unwrap();
    match alice.group.process(&proposed.commit).unwrap() {
        Processed::Epoch { added, .. } => assert_eq!(added, vec![identity(66).public_key()]),
        other => panic!("{other:?}"),
    }
}

#[test]
fn bad_add_and_remove_arguments_are_errors() {
    let mut alice = founder();
    let err = alice.group.add(&[b"not a key package"]).unwrap_err();
    assert!(matches!(err, Error::Malformed(_)), "{err:?}");
    let err = alice.group.add(&[]).unwrap_err();
    assert!(matches!(err, Error::Refused(_)), "{err:?}");
    let err = alice.group.remove(&[identity(7).public_key()]).unwrap_err();
    assert!(matches!(err, Error::UnknownMember(_)), "{err:?}");
    let err = alice.group.remove(&[alice.key()]).unwrap_err();
    assert!(matches!(err, Error::Refused(_)), "{err:?}");
    assert!(!alice.group.has_pending());
}

#[test]
fn garbage_is_an_error_not_a_panic() {
    let mut members = three();
    let sealed = members[0].group.seal(b"a real message").unwrap();
    let p = members[1].group.update().unwrap();
    let (_pending, kp) = RoomGroup::key_package(&identity(5), ROOM).unwrap();
    let (mut pending, _) = RoomGroup::key_package(&identity(6), ROOM).unwrap();
    let bob = &mut members[1].group;
    for input in [
        &[][..],
        &[0u8][..],
        &[0xff; 64][..],
        &sealed[..sealed.len() / 2],
        &sealed[..sealed.len() - 1],
        &kp[..],
    ] {
        assert!(bob.process(input).is_err());
        assert!(pending.join(input).is_err());
    }
    // A bit flipped in the ciphertext.
    let mut flipped = sealed.clone();
    let last = flipped.len() - 1;
    flipped[last] ^= 1;
    assert!(members[2].group.process(&flipped).is_err());
    // After all that, the real message and commit still go through.
    let (a, b) = members.split_at_mut(1);
    opens(&mut b[1], &sealed, &a[0], b"a real message");
    deliver_commit(&mut members, &p.commit, 1);
    assert_converged(&members);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let mut alice = RoomGroup::create(&identity(1), ROOM).unwrap();
        let (mut pending, _) = RoomGroup::key_package(&identity(2), ROOM).unwrap();
        prop_assert!(alice.process(&bytes).is_err());
        prop_assert!(pending.join(&bytes).is_err());
        prop_assert!(alice.add(&[&bytes]).is_err());
    }

    #[test]
    fn mutated_messages_never_panic(index in any::<prop::sample::Index>(), bit in 0u8..8) {
        let mut alice = RoomGroup::create(&identity(1), ROOM).unwrap();
        let (mut pending, kp) = RoomGroup::key_package(&identity(2), ROOM).unwrap();
        let proposed = alice.add(&[&kp]).unwrap();
        alice.process(&proposed.commit).unwrap();
        let mut welcome = proposed.welcome.unwrap();
        let i = index.index(welcome.len());
        welcome[i] ^= 1 << bit;
        // A flipped bit may land in a field that changes nothing; either way no panic.
        let _ = pending.join(&welcome);
        let mut sealed = alice.seal(b"x").unwrap();
        let i = index.index(sealed.len());
        sealed[i] ^= 1 << bit;
        let mut bob = RoomGroup::create(&identity(3), ROOM).unwrap();
        let _ = bob.process(&sealed);
    }
}
