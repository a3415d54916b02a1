//! Tier 2 for the session layer: real sessions against the real server on
//! 127.0.0.1:0, with adversarial raw clients where the point is what gets refused.

// Helpers of integration tests panic on failure: that is the report we want.
#![allow(clippy::unwrap_used)]

mod common;

use bytes::Bytes;
use common::TestServer;
use std::time::Duration;
use streamchat_client::{
    Client, ServerEvent, Session, SessionConfig, SessionEvent, session::protocol_room_id,
};
use streamchat_crypto::{IdentityKey, MemberId as CryptoMemberId, RoomSecret, encoding, seal};
use streamchat_protocol::{LeaveReason, PresenceEvent};
use tokio::sync::mpsc;

const WAIT: Duration = Duration::from_secs(15);

/// Skips events until `pick` returns something; panics after WAIT.
async fn expect<T>(
    rx: &mut mpsc::Receiver<SessionEvent>,
    what: &str,
    mut pick: impl FnMut(&SessionEvent) -> Option<T>,
) -> T {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let event = tokio::time::timeout_at(deadline, rx.recv())
            .await
            .unwrap_or_else(|_| panic!("timed out waiting for {what}"))
            .unwrap_or_else(|| panic!("session ended while waiting for {what}"));
        if let Some(t) = pick(&event) {
            return t;
        }
        eprintln!("(while waiting for {what}) {event:?}");
    }
}

async fn start(
    url: &str,
    secret: &RoomSecret,
    name: &str,
) -> (Session, mpsc::Receiver<SessionEvent>) {
    let (session, mut rx) = Session::start(SessionConfig::new(url, secret.clone(), name))
        .await
        .unwrap();
    expect(&mut rx, "ready", |e| {
        matches!(e, SessionEvent::Ready { .. }).then_some(())
    })
    .await;
    (session, rx)
}

#[tokio::test]
async fn two_sessions_see_verified_profiles_and_exchange_text() {
    let server = TestServer::start(&[]).await;
    let secret = RoomSecret::generate().unwrap();
    let (alice, mut alice_rx) = start(&server.url, &secret, "Alice").await;
    let (bob, mut bob_rx) = Session::start(SessionConfig::new(&server.url, secret.clone(), "Bob"))
        .await
        .unwrap();
    // Bob's first event: ready, with Alice present and verified.
    let members = expect(&mut bob_rx, "ready", |e| match e {
        SessionEvent::Ready {
            members,
            me,
            rejoin,
            ..
        } => {
            assert!(!rejoin);
            assert!(me.is_self);
            assert_eq!(me.name, "Bob");
            Some(members.clone())
        }
        _ => None,
    })
    .await;
    assert_eq!(members.len(), 1);
    assert_eq!(members[0].name, "Alice");
    assert_eq!(members[0].fingerprint, alice.me().fingerprint);
    assert_eq!(members[0].key, alice.me().key);
    // Alice sees Bob join, with the fingerprint Bob has for himself.
    let bob_seen = expect(&mut alice_rx, "Bob joins", |e| match e {
        SessionEvent::MemberJoined { member, returning } => {
            assert!(!returning);
            Some(member.clone())
        }
        _ => None,
    })
    .await;
    assert_eq!(bob_seen.name, "Bob");
    assert_eq!(bob_seen.fingerprint, bob.me().fingerprint);
    assert_eq!(bob_seen.fingerprint.len(), 24);

    let id = alice.send_text("Hello Bob \u{1F44B}").await.unwrap();
    let sent_ts = expect(&mut alice_rx, "sent", |e| match e {
        SessionEvent::Sent { id: got, ts } if *got == id => Some(*ts),
        _ => None,
    })
    .await;
    let (from, ts, text) = expect(&mut bob_rx, "message", |e| match e {
        SessionEvent::Message {
            from,
            ts,
            text,
            direct,
            ..
        } => {
            assert!(!direct);
            Some((from.clone(), *ts, text.clone()))
        }
        _ => None,
    })
    .await;
    assert_eq!(text, "Hello Bob \u{1F44B}");
    assert_eq!(from.name, "Alice");
    assert_eq!(from.fingerprint, alice.me().fingerprint);
    assert_eq!(ts, sent_ts);

    bob.send_text("Hi Alice").await.unwrap();
    let text = expect(&mut alice_rx, "reply", |e| match e {
        SessionEvent::Message { text, .. } => Some(text.clone()),
        _ => None,
    })
    .await;
    assert_eq!(text, "Hi Alice");

    // Typing is shown to the other.
    bob.typing();
    let who = expect(&mut alice_rx, "typing", |e| match e {
        SessionEvent::Typing { from } => Some(from.name.clone()),
        _ => None,
    })
    .await;
    assert_eq!(who, "Bob");

    bob.leave(Duration::from_secs(5)).await;
    let reason = expect(&mut alice_rx, "Bob leaves", |e| match e {
        SessionEvent::MemberLeft { member, reason, .. } if member.name == "Bob" => Some(*reason),
        _ => None,
    })
    .await;
    assert_eq!(reason, LeaveReason::Left);
    alice.leave(Duration::from_secs(5)).await;
    server.stop().await;
}

fn pseudo_random(len: usize, seed: u32) -> Vec<u8> {
    let mut x = seed.wrapping_mul(2_654_435_761).max(1);
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect()
}

#[tokio::test]
async fn files_arrive_whole_and_verified() {
    let server = TestServer::start(&[]).await;
    let secret = RoomSecret::generate().unwrap();
    let (alice, mut alice_rx) = start(&server.url, &secret, "Alice").await;
    let (bob, mut bob_rx) = start(&server.url, &secret, "Bob").await;

    // 600 KiB + 3 bytes: three chunks of 256 KiB plaintext, the last one short.
    for (name, data) in [
        ("photo.jpg", pseudo_random(600 * 1024 + 3, 1)),
        ("empty.txt", Vec::new()),
        ("exact.bin", pseudo_random(512 * 1024, 2)),
    ] {
        let id = alice
            .send_file(name, "image/jpeg", Bytes::from(data.clone()))
            .await
            .unwrap();
        let offered = expect(&mut bob_rx, "offer", |e| match e {
            SessionEvent::FileOffered { file, from, .. } => {
                assert_eq!(from.name, "Alice");
                Some(file.clone())
            }
            _ => None,
        })
        .await;
        assert_eq!(offered.name, name);
        assert_eq!(offered.size, data.len() as u64);
        assert_eq!(
            offered.chunks,
            (data.len() as u32).div_ceil(256 * 1024).max(1)
        );
        let received = expect(&mut bob_rx, "file", |e| match e {
            SessionEvent::FileReceived { file, data, .. } => Some((file.clone(), data.clone())),
            SessionEvent::FileFailed { reason, .. } => panic!("file failed: {reason}"),
            _ => None,
        })
        .await;
        assert_eq!(received.0, offered);
        assert_eq!(received.1.as_ref(), data.as_slice(), "{name}");
        let sent = expect(&mut alice_rx, "file sent", |e| match e {
            SessionEvent::FileSent { id: got, file, .. } if *got == id => Some(file.clone()),
            SessionEvent::SendFailed { reason, .. } => panic!("send failed: {reason}"),
            _ => None,
        })
        .await;
        assert_eq!(sent.sha256, offered.sha256);
    }
    alice.leave(Duration::from_secs(5)).await;
    bob.leave(Duration::from_secs(5)).await;
    server.stop().await;
}

#[tokio::test]
async fn rate_limited_texts_and_chunks_are_retried_until_they_pass() {
    let server = TestServer::start(&[
        "--messages-per-second",
        "2",
        "--message-burst",
        "2",
        "--max-message-bytes",
        "2048",
        "--max-chunk-bytes",
        "2048",
        "--bytes-per-second",
        "30000",
        "--byte-burst",
        "4096",
    ])
    .await;
    let secret = RoomSecret::generate().unwrap();
    let (alice, mut alice_rx) = start(&server.url, &secret, "Alice").await;
    let (bob, mut bob_rx) = start(&server.url, &secret, "Bob").await;

    for i in 0..6 {
        alice.send_text(format!("message {i}")).await.unwrap();
    }
    let mut got = Vec::new();
    while got.len() < 6 {
        got.push(
            expect(&mut bob_rx, "message", |e| match e {
                SessionEvent::Message { text, .. } => Some(text.clone()),
                _ => None,
            })
            .await,
        );
    }
    assert_eq!(
        got,
        (0..6).map(|i| format!("message {i}")).collect::<Vec<_>>()
    );

    // 40 KiB in 2032-byte chunks against a 30 KB/s byte budget with a 4 KiB burst:
    // most chunks are refused at first and resent.
    let data = pseudo_random(40 * 1024, 3);
    alice
        .send_file(
            "big.bin",
            "application/octet-stream",
            Bytes::from(data.clone()),
        )
        .await
        .unwrap();
    let received = expect(&mut bob_rx, "file", |e| match e {
        SessionEvent::FileReceived { data, .. } => Some(data.clone()),
        SessionEvent::FileFailed { reason, .. } => panic!("file failed: {reason}"),
        _ => None,
    })
    .await;
    assert_eq!(received.as_ref(), data.as_slice());
    expect(&mut alice_rx, "file sent", |e| match e {
        SessionEvent::FileSent { .. } => Some(()),
        SessionEvent::SendFailed { reason, .. } => panic!("send failed: {reason}"),
        _ => None,
    })
    .await;
    alice.leave(Duration::from_secs(5)).await;
    bob.leave(Duration::from_secs(5)).await;
    server.stop().await;
}

/// A raw client that joins with a profile sealed by `identity` for `sealed_for`.
async fn raw_member(
    url: &str,
    secret: &RoomSecret,
    identity: &IdentityKey,
    sealed_for: Option<&str>,
) -> (Client, mpsc::Receiver<ServerEvent>) {
    let keys = secret.room_keys();
    let (client, rx) = Client::connect(url).await.unwrap();
    let member = sealed_for.unwrap_or(client.member_id().as_str()).to_owned();
    let body = serde_json::json!({
        "type": "profile", "name": "Mallory", "key": identity.public_key(), "sent_at": 1
    });
    let sealed = seal(
        &keys,
        &CryptoMemberId::new(member).unwrap(),
        identity,
        body.to_string().as_bytes(),
    )
    .unwrap();
    client
        .join(&protocol_room_id(&keys), &encoding::encode(&sealed))
        .await
        .unwrap()
        .unwrap();
    (client, rx)
}

#[tokio::test]
async fn forged_profiles_and_signatures_are_warnings_never_text() {
    let server = TestServer::start(&[]).await;
    let secret = RoomSecret::generate().unwrap();
    let keys = secret.room_keys();
    let room = protocol_room_id(&keys);
    let (alice, mut alice_rx) = start(&server.url, &secret, "Alice").await;

    // A profile sealed for another member id (a server moving profiles around): refused.
    let mallory_key = IdentityKey::generate().unwrap();
    let (moved, _moved_rx) =
        raw_member(&server.url, &secret, &mallory_key, Some("someone-else")).await;
    let warning = expect(&mut alice_rx, "profile warning", |e| match e {
        SessionEvent::Warning { message } => Some(message.clone()),
        SessionEvent::MemberJoined { .. } => panic!("a moved profile was admitted"),
        _ => None,
    })
    .await;
    assert!(warning.contains("refused"), "{warning}");
    // Its messages are dropped too.
    let sealed = seal(
        &keys,
        &CryptoMemberId::new(moved.member_id().as_str()).unwrap(),
        &mallory_key,
        br#"{"type":"text","text":"from a stranger","sent_at":2}"#,
    )
    .unwrap();
    moved
        .msg(&room, Bytes::from(sealed), None)
        .await
        .unwrap()
        .unwrap();
    let warning = expect(&mut alice_rx, "stranger warning", |e| match e {
        SessionEvent::Warning { message } => Some(message.clone()),
        SessionEvent::Message { .. } => panic!("a stranger's message was shown"),
        _ => None,
    })
    .await;
    assert!(warning.contains("not in the room"), "{warning}");

    // A valid member whose message is signed by another key: dropped with a warning.
    let mallory = IdentityKey::generate().unwrap();
    let (valid, _valid_rx) = raw_member(&server.url, &secret, &mallory, None).await;
    expect(&mut alice_rx, "Mallory joins", |e| match e {
        SessionEvent::MemberJoined { member, .. } => {
            assert_eq!(
                member.fingerprint,
                mallory.public_key().fingerprint().to_string()
            );
            Some(())
        }
        _ => None,
    })
    .await;
    let other = IdentityKey::generate().unwrap();
    let forged = seal(
        &keys,
        &CryptoMemberId::new(valid.member_id().as_str()).unwrap(),
        &other,
        br#"{"type":"text","text":"forged","sent_at":3}"#,
    )
    .unwrap();
    valid
        .msg(&room, Bytes::from(forged), None)
        .await
        .unwrap()
        .unwrap();
    let warning = expect(&mut alice_rx, "signature warning", |e| match e {
        SessionEvent::Warning { message } => Some(message.clone()),
        SessionEvent::Message { .. } => panic!("a forged message was shown"),
        _ => None,
    })
    .await;
    assert_eq!(
        warning,
        "A message from Mallory failed signature verification and was not shown."
    );
    // Garbage: a decryption warning.
    valid
        .msg(&room, Bytes::from(vec![1u8; 200]), None)
        .await
        .unwrap()
        .unwrap();
    let warning = expect(&mut alice_rx, "decryption warning", |e| match e {
        SessionEvent::Warning { message } => Some(message.clone()),
        SessionEvent::Message { .. } => panic!("garbage was shown"),
        _ => None,
    })
    .await;
    assert!(warning.contains("failed decryption"), "{warning}");
    // A genuine message, then its replay: shown once.
    let genuine = seal(
        &keys,
        &CryptoMemberId::new(valid.member_id().as_str()).unwrap(),
        &mallory,
        br#"{"type":"text","text":"genuine","sent_at":4}"#,
    )
    .unwrap();
    for _ in 0..2 {
        valid
            .msg(&room, Bytes::from(genuine.clone()), None)
            .await
            .unwrap()
            .unwrap();
    }
    valid
        .msg(
            &room,
            Bytes::from(
                seal(
                    &keys,
                    &CryptoMemberId::new(valid.member_id().as_str()).unwrap(),
                    &mallory,
                    br#"{"type":"text","text":"after","sent_at":5}"#,
                )
                .unwrap(),
            ),
            None,
        )
        .await
        .unwrap()
        .unwrap();
    let mut texts = Vec::new();
    while texts.len() < 2 {
        texts.push(
            expect(&mut alice_rx, "texts", |e| match e {
                SessionEvent::Message { text, .. } => Some(text.clone()),
                _ => None,
            })
            .await,
        );
    }
    assert_eq!(texts, ["genuine", "after"]);
    alice.leave(Duration::from_secs(5)).await;
    moved.close().await;
    valid.close().await;
    server.stop().await;
}

#[tokio::test]
async fn a_restarted_server_is_rejoined_with_a_new_member_id() {
    let server = TestServer::start(&[]).await;
    let addr = server.addr.to_string();
    let secret = RoomSecret::generate().unwrap();
    let (alice, mut alice_rx) = start(&server.url, &secret, "Alice").await;
    let (bob, mut bob_rx) = start(&server.url, &secret, "Bob").await;
    let first_id = bob.member_id().unwrap();
    expect(&mut alice_rx, "Bob joins", |e| {
        matches!(e, SessionEvent::MemberJoined { .. }).then_some(())
    })
    .await;

    server.stop().await;
    expect(&mut bob_rx, "disconnected", |e| {
        matches!(e, SessionEvent::Disconnected { .. }).then_some(())
    })
    .await;
    let server = TestServer::start_on(&addr, &[]).await;
    expect(&mut bob_rx, "rejoined", |e| match e {
        SessionEvent::Ready { rejoin, .. } => {
            assert!(rejoin);
            Some(())
        }
        _ => None,
    })
    .await;
    expect(&mut alice_rx, "rejoined", |e| {
        matches!(e, SessionEvent::Ready { rejoin: true, .. }).then_some(())
    })
    .await;
    let second_id = bob.member_id().unwrap();
    assert_ne!(first_id, second_id, "a new connection is a new member");

    // Whoever rejoined second sees the other as present; both can talk again.
    bob.send_text("back again").await.unwrap();
    let text = expect(&mut alice_rx, "message after restart", |e| match e {
        SessionEvent::Message { text, from, .. } => {
            assert_eq!(from.member, second_id);
            Some(text.clone())
        }
        _ => None,
    })
    .await;
    assert_eq!(text, "back again");
    alice.leave(Duration::from_secs(5)).await;
    bob.leave(Duration::from_secs(5)).await;
    server.stop().await;
}

#[tokio::test]
async fn a_full_room_is_refused_at_start() {
    let server = TestServer::start(&["--max-members-per-room", "1"]).await;
    let secret = RoomSecret::generate().unwrap();
    let (alice, _alice_rx) = start(&server.url, &secret, "Alice").await;
    let err = Session::start(SessionConfig::new(&server.url, secret.clone(), "Bob"))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("room_full"), "{err}");
    alice.leave(Duration::from_secs(5)).await;
    server.stop().await;
}

#[tokio::test]
async fn the_presence_the_server_sends_matches_what_sessions_say() {
    // A raw observer checks that a session's profile on the wire opens for its member id.
    let server = TestServer::start(&[]).await;
    let secret = RoomSecret::generate().unwrap();
    let keys = secret.room_keys();
    let observer_key = IdentityKey::generate().unwrap();
    let (observer, mut observer_rx) = raw_member(&server.url, &secret, &observer_key, None).await;
    let (alice, _alice_rx) = start(&server.url, &secret, "Alice").await;
    let event = tokio::time::timeout(WAIT, observer_rx.recv())
        .await
        .unwrap()
        .unwrap();
    let ServerEvent::Presence(PresenceEvent::Join {
        member, profile, ..
    }) = event
    else {
        panic!("expected a join, got {event:?}");
    };
    let sealed = encoding::decode("profile", &profile).unwrap();
    let (opened, _) = streamchat_crypto::open_profile(
        &keys,
        &CryptoMemberId::new(member.as_str()).unwrap(),
        &sealed,
    )
    .unwrap();
    assert_eq!(opened.name, "Alice");
    assert_eq!(opened.key, alice.me().key);
    alice.leave(Duration::from_secs(5)).await;
    observer.close().await;
    server.stop().await;
}
