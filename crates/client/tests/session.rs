//! Tier 2 for the session layer: real sessions against the real server on
//! 127.0.0.1:0, with adversarial raw clients where the point is what gets refused.

// Helpers of integration tests panic on failure: that is the report we want.
#![allow(clippy::unwrap_used)]

use bytes::Bytes;
use std::time::Duration;
use streamchat_client::{
    Client, ServerEvent, Session, SessionConfig, SessionEvent, session::protocol_room_id,
};
use streamchat_crypto::{IdentityKey, MemberId as CryptoMemberId, RoomSecret, encoding, seal};
use streamchat_protocol::{LeaveReason, PresenceEvent};
use streamchat_testkit::TestServer;
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

/// A session's events, kept so a test can say what never happened.
/// Alice and Bob in one room, each with a recorder, once Alice has seen Bob join.
async fn alice_and_bob(url: &str, secret: &RoomSecret) -> (Session, Recorder, Session, Recorder) {
    let (alice, alice_rx) = start(url, secret, "Alice").await;
    let (bob, bob_rx) = start(url, secret, "Bob").await;
    let (mut alice_rx, bob_rx) = (Recorder::new(alice_rx), Recorder::new(bob_rx));
    alice_rx
        .expect("Bob joins", |e| {
            matches!(e, SessionEvent::MemberJoined { .. }).then_some(())
        })
        .await;
    (alice, alice_rx, bob, bob_rx)
}

struct Recorder {
    rx: mpsc::Receiver<SessionEvent>,
    seen: Vec<SessionEvent>,
}

impl Recorder {
    fn new(rx: mpsc::Receiver<SessionEvent>) -> Self {
        Self {
            rx,
            seen: Vec::new(),
        }
    }

    async fn expect<T>(
        &mut self,
        what: &str,
        mut pick: impl FnMut(&SessionEvent) -> Option<T>,
    ) -> T {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let event = tokio::time::timeout_at(deadline, self.rx.recv())
                .await
                .unwrap_or_else(|_| panic!("timed out waiting for {what}"))
                .unwrap_or_else(|| panic!("session ended while waiting for {what}"));
            self.seen.push(event.clone());
            if let Some(t) = pick(&event) {
                return t;
            }
            eprintln!("(while waiting for {what}) {event:?}");
        }
    }

    /// The next `n` texts received, in order.
    async fn texts(&mut self, n: usize) -> Vec<String> {
        let mut texts = Vec::new();
        while texts.len() < n {
            texts.push(
                self.expect("message", |e| match e {
                    SessionEvent::Message { text, .. } => Some(text.clone()),
                    _ => None,
                })
                .await,
            );
        }
        texts
    }

    /// Takes whatever arrives for `d`.
    async fn settle(&mut self, d: Duration) {
        while let Ok(Some(event)) = tokio::time::timeout(d, self.rx.recv()).await {
            self.seen.push(event);
        }
    }

    /// Nobody left or joined, and nothing was lost, as this session saw it.
    fn assert_seamless(&self, who: &str) {
        for event in &self.seen {
            assert!(
                !matches!(
                    event,
                    SessionEvent::MemberLeft { .. }
                        | SessionEvent::MemberJoined { .. }
                        | SessionEvent::Ready { rejoin: true, .. }
                        | SessionEvent::Gap { .. }
                ),
                "{who} saw {event:?}"
            );
        }
    }
}

/// Sends a text and waits for its ack.
async fn send_acked(session: &Session, rx: &mut Recorder, text: &str) {
    let id = session.send_text(text).await.unwrap();
    rx.expect("sent", |e| match e {
        SessionEvent::Sent { id: got, .. } if *got == id => Some(()),
        SessionEvent::SendFailed { id: got, reason } if *got == id => {
            panic!("{text:?} failed: {reason}")
        }
        _ => None,
    })
    .await;
}

#[tokio::test]
async fn a_dropped_session_resumes_and_gets_what_it_missed_once_in_order() {
    let server = TestServer::start(&[]).await;
    let secret = RoomSecret::generate().unwrap();
    let (alice, mut alice_rx, bob, mut bob_rx) = alice_and_bob(&server.url, &secret).await;
    alice_rx.seen.clear();
    let bob_id = bob.member_id().unwrap();

    // Bob's network fails; he stays offline long enough for Alice to send three.
    bob.simulate_network_drop(Duration::from_millis(1500)).await;
    bob_rx
        .expect("disconnected", |e| {
            matches!(e, SessionEvent::Disconnected { .. }).then_some(())
        })
        .await;
    let away = alice_rx
        .expect("Bob away", |e| match e {
            SessionEvent::MemberAway { member } => Some(member.member.clone()),
            _ => None,
        })
        .await;
    assert_eq!(away, bob_id);
    let sent = ["while you were away 1", "2", "3"];
    for text in sent {
        send_acked(&alice, &mut alice_rx, text).await;
    }

    // He comes back as himself and gets each of them once, in order.
    let replayed = bob_rx
        .expect("resumed", |e| match e {
            SessionEvent::Resumed { replayed, .. } => Some(*replayed),
            _ => None,
        })
        .await;
    assert_eq!(replayed, 3, "Alice's three messages (not his own away)");
    assert_eq!(bob_rx.texts(3).await, sent);
    let back = alice_rx
        .expect("Bob back", |e| match e {
            SessionEvent::MemberBack { member } => Some(member.member.clone()),
            _ => None,
        })
        .await;
    assert_eq!(back, bob_id);
    assert_eq!(bob.member_id(), Some(bob_id.clone()), "the same member");

    // Both ways work under the same member id, and nothing comes twice.
    bob.send_text("back").await.unwrap();
    let from = alice_rx
        .expect("Bob's text", |e| match e {
            SessionEvent::Message { from, text, .. } => {
                assert_eq!(text, "back");
                Some(from.member.clone())
            }
            _ => None,
        })
        .await;
    assert_eq!(from, bob_id);
    send_acked(&alice, &mut alice_rx, "after").await;
    assert_eq!(bob_rx.texts(1).await, ["after"]);
    alice_rx.settle(Duration::from_millis(300)).await;
    bob_rx.settle(Duration::from_millis(300)).await;
    alice_rx.assert_seamless("Alice");
    bob_rx.assert_seamless("Bob");
    assert!(
        !bob_rx
            .seen
            .iter()
            .any(|e| matches!(e, SessionEvent::Ready { .. })),
        "a resume is not a join"
    );
    alice.leave(Duration::from_secs(5)).await;
    bob.leave(Duration::from_secs(5)).await;
    server.stop().await;
}

#[tokio::test]
async fn texts_sent_while_offline_are_delivered_once_after_resuming() {
    let server = TestServer::start(&[]).await;
    let secret = RoomSecret::generate().unwrap();
    let (alice, mut alice_rx, bob, mut bob_rx) = alice_and_bob(&server.url, &secret).await;
    alice_rx.seen.clear();

    // One text races the drop (its ack may be lost with the connection: it is resent
    // with the same id), three more are typed while offline.
    let racing = bob.send_text("in flight").await.unwrap();
    bob.simulate_network_drop(Duration::from_millis(1000)).await;
    bob_rx
        .expect("disconnected", |e| {
            matches!(e, SessionEvent::Disconnected { .. }).then_some(())
        })
        .await;
    let mut ids = vec![racing];
    for text in ["offline 1", "offline 2", "offline 3"] {
        ids.push(bob.send_text(text).await.unwrap());
    }
    bob_rx
        .expect("resumed", |e| {
            matches!(e, SessionEvent::Resumed { .. }).then_some(())
        })
        .await;
    let sent = |seen: &[SessionEvent]| {
        ids.iter().all(|id| {
            seen.iter()
                .any(|e| matches!(e, SessionEvent::Sent { id: got, .. } if got == id))
        })
    };
    while !sent(&bob_rx.seen) {
        bob_rx
            .expect("sent", |e| match e {
                SessionEvent::Sent { .. } => Some(()),
                SessionEvent::SendFailed { reason, .. } => panic!("send failed: {reason}"),
                _ => None,
            })
            .await;
    }
    assert_eq!(
        alice_rx.texts(4).await,
        ["in flight", "offline 1", "offline 2", "offline 3"]
    );
    bob.send_text("marker").await.unwrap();
    assert_eq!(alice_rx.texts(1).await, ["marker"], "nothing came twice");
    alice_rx.settle(Duration::from_millis(300)).await;
    alice_rx.assert_seamless("Alice");
    bob_rx.assert_seamless("Bob");
    alice.leave(Duration::from_secs(5)).await;
    bob.leave(Duration::from_secs(5)).await;
    server.stop().await;
}

/// A raw member's sealed `file` announcement and its chunks (16-byte chunks).
fn raw_file(secret: &RoomSecret, member: &str, identity: &IdentityKey) -> (Vec<u8>, Vec<Vec<u8>>) {
    use streamchat_crypto::{
        Body, FileCipher, FileKey, FileOffer, NoncePrefix, Sha256Digest, seal_file,
    };
    let data = pseudo_random(40, 9);
    let key = FileKey::generate().unwrap();
    let prefix = NoncePrefix::generate().unwrap();
    let sealed = seal_file(FileCipher::new(&key, prefix), 16, &data).unwrap();
    let offer = FileOffer {
        id: streamchat_crypto::FileId("AAAAAAAAAAAAAAAA".into()),
        name: "partial.bin".into(),
        mime: "application/octet-stream".into(),
        size: data.len() as u64,
        chunk_size: 16,
        chunks: sealed.manifest.chunks(),
        sha256: Sha256Digest::of(&data),
        key,
        nonce_prefix: prefix,
        sent_at: 7,
    };
    let body = serde_json::to_vec(&Body::File(offer)).unwrap();
    let announcement = seal(
        &secret.room_keys(),
        &CryptoMemberId::new(member).unwrap(),
        identity,
        &body,
    )
    .unwrap();
    (announcement, sealed.chunks)
}

#[tokio::test]
async fn past_the_grace_the_session_joins_again_and_reports_the_gap() {
    let server = TestServer::start(&["--resume-grace-secs", "1"]).await;
    let secret = RoomSecret::generate().unwrap();
    let room = protocol_room_id(&secret.room_keys());
    let (alice, mut alice_rx, bob, mut bob_rx) = alice_and_bob(&server.url, &secret).await;
    let first_id = bob.member_id().unwrap();

    // Mallory starts a file for Bob and sends only its first chunk before he drops.
    let mallory_key = IdentityKey::generate().unwrap();
    let (mallory, _mallory_rx) = raw_member(&server.url, &secret, &mallory_key, None).await;
    let (announcement, chunks) = raw_file(&secret, mallory.member_id().as_str(), &mallory_key);
    mallory
        .msg(&room, Bytes::from(announcement), None)
        .await
        .unwrap()
        .unwrap();
    let file = streamchat_protocol::FileId::new("AAAAAAAAAAAAAAAA").unwrap();
    mallory
        .chunk(&room, &file, 0, Bytes::from(chunks[0].clone()))
        .await
        .unwrap()
        .unwrap();
    bob_rx
        .expect("the offer", |e| {
            matches!(e, SessionEvent::FileOffered { .. }).then_some(())
        })
        .await;

    // Bob is offline for 3 s, past the 1 s grace; Alice sends three texts meanwhile.
    bob.simulate_network_drop(Duration::from_secs(3)).await;
    alice_rx
        .expect("Bob away", |e| {
            matches!(e, SessionEvent::MemberAway { .. }).then_some(())
        })
        .await;
    for text in ["lost 1", "lost 2", "lost 3"] {
        send_acked(&alice, &mut alice_rx, text).await;
    }
    bob_rx
        .expect("disconnected", |e| {
            matches!(e, SessionEvent::Disconnected { .. }).then_some(())
        })
        .await;
    let queued = bob.send_text("typed while offline").await.unwrap();
    // The grace runs out: Alice sees him leave, as before resumable sessions.
    let reason = alice_rx
        .expect("Bob leaves", |e| match e {
            SessionEvent::MemberLeft { member, reason, .. } if member.name == "Bob" => {
                Some(*reason)
            }
            _ => None,
        })
        .await;
    assert_eq!(reason, LeaveReason::Disconnected);

    // Bob could not resume: he joins again and is told what he missed.
    let failed = bob_rx
        .expect("the partial file fails", |e| match e {
            SessionEvent::FileFailed { reason, .. } => Some(reason.clone()),
            SessionEvent::FileReceived { .. } => panic!("a partial file was received"),
            _ => None,
        })
        .await;
    assert!(failed.starts_with("incomplete"), "{failed}");
    bob_rx
        .expect("rejoined", |e| {
            matches!(e, SessionEvent::Ready { rejoin: true, .. }).then_some(())
        })
        .await;
    let (messages, exact, offline_for) = bob_rx
        .expect("the gap", |e| match e {
            SessionEvent::Gap {
                messages,
                exact,
                offline_for,
            } => Some((*messages, *exact, *offline_for)),
            SessionEvent::Resumed { .. } => panic!("resumed past the grace"),
            _ => None,
        })
        .await;
    assert_eq!((messages, exact), (3, true));
    assert!(offline_for >= Duration::from_secs(3), "{offline_for:?}");
    assert_eq!(
        streamchat_client::display::gap_text(messages, exact, offline_for)
            .split(": ")
            .nth(1),
        Some("3 messages could not be recovered.")
    );
    let second_id = bob.member_id().unwrap();
    assert_ne!(first_id, second_id, "a new member");
    let returning = alice_rx
        .expect("Bob rejoins", |e| match e {
            SessionEvent::MemberJoined { member, returning } if member.name == "Bob" => {
                Some(*returning)
            }
            _ => None,
        })
        .await;
    assert!(returning);

    // What he typed while offline goes out once, from his new member id.
    bob_rx
        .expect("sent", |e| match e {
            SessionEvent::Sent { id, .. } if *id == queued => Some(()),
            SessionEvent::SendFailed { reason, .. } => panic!("send failed: {reason}"),
            _ => None,
        })
        .await;
    let from = alice_rx
        .expect("the queued text", |e| match e {
            SessionEvent::Message { from, text, .. } => {
                assert_eq!(text, "typed while offline");
                Some(from.member.clone())
            }
            _ => None,
        })
        .await;
    assert_eq!(from, second_id);
    bob.send_text("marker").await.unwrap();
    assert_eq!(alice_rx.texts(1).await, ["marker"], "nothing came twice");
    alice.leave(Duration::from_secs(5)).await;
    bob.leave(Duration::from_secs(5)).await;
    mallory.close().await;
    server.stop().await;
}

#[tokio::test]
async fn a_text_too_large_for_the_server_fails_at_once_and_the_next_goes_out() {
    let server = TestServer::start(&["--max-message-bytes", "2048"]).await;
    let secret = RoomSecret::generate().unwrap();
    let (alice, mut alice_rx, bob, mut bob_rx) = alice_and_bob(&server.url, &secret).await;
    let big = alice.send_text("x".repeat(5000)).await.unwrap();
    let small = alice.send_text("small enough").await.unwrap();
    let started = tokio::time::Instant::now();
    let reason = alice_rx
        .expect("the refusal", |e| match e {
            SessionEvent::SendFailed { id, reason } if *id == big => Some(reason.clone()),
            SessionEvent::Sent { id, .. } if *id == big => panic!("a text over the limit was sent"),
            _ => None,
        })
        .await;
    assert!(
        reason.starts_with("too large for this server (") && reason.ends_with("at most 2048)"),
        "{reason}"
    );
    assert!(started.elapsed() < Duration::from_secs(1), "not retried");
    alice_rx
        .expect("the next text sent", |e| match e {
            SessionEvent::Sent { id, .. } if *id == small => Some(()),
            SessionEvent::SendFailed { id, reason } if *id == small => panic!("{reason}"),
            _ => None,
        })
        .await;
    assert_eq!(bob_rx.texts(1).await, ["small enough"]);
    alice.leave(Duration::from_secs(5)).await;
    bob.leave(Duration::from_secs(5)).await;
    server.stop().await;
}
