//! Privacy v2 rooms (docs/crypto.md §17) with real sessions against the real server:
//! knocking and letting in, open rooms, leaving, and the races of §17.3.

// Helpers of integration tests panic on failure: that is the report we want.
#![allow(clippy::unwrap_used)]

use std::time::Duration;
use streamchat_client::{RoomKind, Session, SessionConfig, SessionEvent};
use streamchat_crypto::RoomSecret;
use streamchat_testkit::TestServer;
use tokio::sync::mpsc;

const WAIT: Duration = Duration::from_secs(20);

type Events = mpsc::Receiver<SessionEvent>;

/// Skips events until `pick` returns something; panics after WAIT. Every event skipped
/// goes through `seen`, so a test can assert what must never show.
async fn expect<T>(
    rx: &mut Events,
    what: &str,
    mut pick: impl FnMut(&SessionEvent) -> Option<T>,
) -> T {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let event = tokio::time::timeout_at(deadline, rx.recv())
            .await
            .unwrap_or_else(|_| panic!("timed out waiting for {what}"))
            .unwrap_or_else(|| panic!("session ended while waiting for {what}"));
        if let SessionEvent::Message { text, .. } = &event {
            assert!(
                !text.contains("secret before"),
                "{what}: a message from before this member was let in was shown"
            );
        }
        // An ordinary race never shows anyone a message that could not be opened.
        if let SessionEvent::Warning { message } = &event {
            panic!("{what}: a warning was shown: {message}");
        }
        if let Some(t) = pick(&event) {
            return t;
        }
        eprintln!("(while waiting for {what}) {event:?}");
    }
}

async fn start(url: &str, secret: &RoomSecret, kind: RoomKind, name: &str) -> (Session, Events) {
    let mut config = SessionConfig::new(url, secret.clone(), name);
    config.kind = kind;
    Session::start(config).await.unwrap()
}

async fn let_in(rx: &mut Events, who: &str) -> u64 {
    expect(rx, &format!("{who} let in"), |e| match e {
        SessionEvent::LetIn { epoch } => Some(*epoch),
        _ => None,
    })
    .await
}

async fn text_from(rx: &mut Events, who: &str, text: &str) {
    expect(rx, &format!("{text:?} from {who}"), |e| match e {
        SessionEvent::Message {
            from, text: got, ..
        } if got == text => {
            assert_eq!(from.name, who);
            Some(())
        }
        _ => None,
    })
    .await;
}

#[tokio::test]
async fn a_knock_room_lets_in_only_whom_a_member_lets_in() {
    let server = TestServer::start(&[]).await;
    let secret = RoomSecret::generate().unwrap();
    let (alice, mut alice_rx) = start(&server.url, &secret, RoomKind::Knock, "Alice").await;
    assert_eq!(let_in(&mut alice_rx, "Alice").await, 0);

    let (bob, mut bob_rx) = start(&server.url, &secret, RoomKind::Knock, "Bob").await;
    expect(&mut bob_rx, "Bob waits", |e| match e {
        SessionEvent::Waiting { knock_room } => {
            assert!(*knock_room);
            Some(())
        }
        _ => None,
    })
    .await;
    // What Bob types while he waits goes out once he is in.
    bob.send_text("typed while waiting").await.unwrap();
    // Alice sees the knock with the fingerprint Bob's own session shows.
    let knocker = expect(&mut alice_rx, "Bob's knock", |e| match e {
        SessionEvent::Knock { member } => Some(member.clone()),
        _ => None,
    })
    .await;
    assert_eq!(knocker.name, "Bob");
    assert_eq!(knocker.fingerprint, bob.me().fingerprint);
    // Said before he is let in: never his to read.
    alice.send_text("secret before Bob").await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;

    alice.let_in(&knocker.member).await.unwrap();
    let (epoch, added) = expect(&mut alice_rx, "keys change", |e| match e {
        SessionEvent::KeysChanged { epoch, added, .. } => Some((*epoch, added.clone())),
        _ => None,
    })
    .await;
    assert_eq!(added, vec!["Bob".to_owned()]);
    assert_eq!(let_in(&mut bob_rx, "Bob").await, epoch);
    text_from(&mut alice_rx, "Bob", "typed while waiting").await;
    alice.send_text("welcome Bob").await.unwrap();
    text_from(&mut bob_rx, "Alice", "welcome Bob").await;
    bob.send_text("thanks").await.unwrap();
    text_from(&mut alice_rx, "Bob", "thanks").await;
}

#[tokio::test]
async fn an_open_room_lets_everyone_in_and_a_leaver_is_removed() {
    let server = TestServer::start(&[]).await;
    let secret = RoomSecret::generate().unwrap();
    let (alice, mut alice_rx) = start(&server.url, &secret, RoomKind::Open, "Alice").await;
    let_in(&mut alice_rx, "Alice").await;
    let (bob, mut bob_rx) = start(&server.url, &secret, RoomKind::Open, "Bob").await;
    let bob_epoch = let_in(&mut bob_rx, "Bob").await;
    let (carol, mut carol_rx) = start(&server.url, &secret, RoomKind::Open, "Carol").await;
    let carol_epoch = let_in(&mut carol_rx, "Carol").await;
    assert!(carol_epoch > bob_epoch);
    carol.send_text("hi all").await.unwrap();
    text_from(&mut alice_rx, "Carol", "hi all").await;
    text_from(&mut bob_rx, "Carol", "hi all").await;

    carol.leave(Duration::from_secs(5)).await;
    drop(carol_rx);
    for rx in [&mut alice_rx, &mut bob_rx] {
        let removed = expect(rx, "Carol removed", |e| match e {
            SessionEvent::KeysChanged { removed, .. } if !removed.is_empty() => {
                Some(removed.clone())
            }
            _ => None,
        })
        .await;
        assert_eq!(removed.len(), 1);
    }
    alice.send_text("after Carol").await.unwrap();
    text_from(&mut bob_rx, "Alice", "after Carol").await;
    bob.send_text("yes").await.unwrap();
    text_from(&mut alice_rx, "Bob", "yes").await;
}

#[tokio::test]
async fn two_founders_at_once_end_up_in_one_group() {
    let server = TestServer::start(&[]).await;
    let secret = RoomSecret::generate().unwrap();
    let url = server.url.clone();
    let ((alice, mut alice_rx), (bob, mut bob_rx)) = tokio::join!(
        start(&url, &secret, RoomKind::Open, "Alice"),
        start(&url, &secret, RoomKind::Open, "Bob"),
    );
    // Whoever lost the race knocked and was let in (epoch 1): from then on both can
    // read each other. (What the founder said before is not the newcomer's to read.)
    for rx in [&mut alice_rx, &mut bob_rx] {
        expect(rx, "both in epoch 1", |e| match e {
            SessionEvent::LetIn { epoch } | SessionEvent::KeysChanged { epoch, .. } => {
                (*epoch == 1).then_some(())
            }
            _ => None,
        })
        .await;
    }
    alice.send_text("from alice").await.unwrap();
    bob.send_text("from bob").await.unwrap();
    text_from(&mut bob_rx, "Alice", "from alice").await;
    text_from(&mut alice_rx, "Bob", "from bob").await;
}

#[tokio::test]
async fn two_members_letting_one_in_at_once_agree_on_the_keys() {
    let server = TestServer::start(&[]).await;
    let secret = RoomSecret::generate().unwrap();
    let (alice, mut alice_rx) = start(&server.url, &secret, RoomKind::Knock, "Alice").await;
    let_in(&mut alice_rx, "Alice").await;
    let (bob, mut bob_rx) = start(&server.url, &secret, RoomKind::Knock, "Bob").await;
    let knocker = expect(&mut alice_rx, "Bob's knock", |e| match e {
        SessionEvent::Knock { member } => Some(member.clone()),
        _ => None,
    })
    .await;
    alice.let_in(&knocker.member).await.unwrap();
    let_in(&mut bob_rx, "Bob").await;

    let (carol, mut carol_rx) = start(&server.url, &secret, RoomKind::Knock, "Carol").await;
    let at_alice = expect(&mut alice_rx, "Carol's knock", |e| match e {
        SessionEvent::Knock { member } => Some(member.clone()),
        _ => None,
    })
    .await;
    let at_bob = expect(&mut bob_rx, "Carol's knock", |e| match e {
        SessionEvent::Knock { member } => Some(member.clone()),
        _ => None,
    })
    .await;
    // Both let her in at once: two commits race for one epoch; the first on the log wins.
    let (a, b) = tokio::join!(alice.let_in(&at_alice.member), bob.let_in(&at_bob.member));
    a.unwrap();
    b.unwrap();
    let carol_epoch = let_in(&mut carol_rx, "Carol").await;
    for rx in [&mut alice_rx, &mut bob_rx] {
        let epoch = expect(rx, "Carol added", |e| match e {
            SessionEvent::KeysChanged { epoch, added, .. } if added == &["Carol".to_owned()] => {
                Some(*epoch)
            }
            _ => None,
        })
        .await;
        assert_eq!(epoch, carol_epoch);
    }
    carol.send_text("glad to be here").await.unwrap();
    text_from(&mut alice_rx, "Carol", "glad to be here").await;
    text_from(&mut bob_rx, "Carol", "glad to be here").await;
    bob.send_text("hi Carol").await.unwrap();
    text_from(&mut carol_rx, "Bob", "hi Carol").await;
    drop(alice);
}

/// Alice founds an open room and Bob joins; both are in.
async fn open_room_of_two(url: &str, secret: &RoomSecret) -> (Session, Events, Session, Events) {
    let (alice, mut alice_rx) = start(url, secret, RoomKind::Open, "Alice").await;
    let_in(&mut alice_rx, "Alice").await;
    let (bob, mut bob_rx) = start(url, secret, RoomKind::Open, "Bob").await;
    let_in(&mut bob_rx, "Bob").await;
    expect(&mut alice_rx, "Bob added", |e| {
        matches!(e, SessionEvent::KeysChanged { .. }).then_some(())
    })
    .await;
    (alice, alice_rx, bob, bob_rx)
}

#[tokio::test]
async fn messages_in_flight_across_a_join_all_open() {
    let server = TestServer::start(&[]).await;
    let secret = RoomSecret::generate().unwrap();
    let (alice, _alice_rx, _bob, mut bob_rx) = open_room_of_two(&server.url, &secret).await;
    // Alice keeps talking while Carol comes in: some of her messages are sealed for the
    // epoch before the commit and arrive after it.
    let (_carol, mut carol_rx) = start(&server.url, &secret, RoomKind::Open, "Carol").await;
    for n in 0..30 {
        alice.send_text(format!("stream {n}")).await.unwrap();
    }
    let_in(&mut carol_rx, "Carol").await;
    for n in 0..30 {
        text_from(&mut bob_rx, "Alice", &format!("stream {n}")).await;
    }
    alice.send_text("after the join").await.unwrap();
    text_from(&mut carol_rx, "Alice", "after the join").await;
}

#[tokio::test]
async fn two_leaves_at_once() {
    let server = TestServer::start(&[]).await;
    let secret = RoomSecret::generate().unwrap();
    let (alice, mut alice_rx, bob, mut bob_rx) = open_room_of_two(&server.url, &secret).await;
    let (carol, mut carol_rx) = start(&server.url, &secret, RoomKind::Open, "Carol").await;
    let_in(&mut carol_rx, "Carol").await;
    let (dave, mut dave_rx) = start(&server.url, &secret, RoomKind::Open, "Dave").await;
    let_in(&mut dave_rx, "Dave").await;
    drop((carol_rx, dave_rx));
    tokio::join!(
        carol.leave(Duration::from_secs(5)),
        dave.leave(Duration::from_secs(5))
    );
    // Both are removed (in one commit or two), and the two who stay agree.
    for rx in [&mut alice_rx, &mut bob_rx] {
        let mut gone: Vec<String> = Vec::new();
        while gone.len() < 2 {
            let removed = expect(rx, "Carol and Dave removed", |e| match e {
                SessionEvent::KeysChanged { removed, .. } if !removed.is_empty() => {
                    Some(removed.clone())
                }
                _ => None,
            })
            .await;
            gone.extend(removed);
        }
        assert_eq!(gone.len(), 2, "{gone:?}");
    }
    alice.send_text("just us").await.unwrap();
    text_from(&mut bob_rx, "Alice", "just us").await;
    bob.send_text("yes").await.unwrap();
    text_from(&mut alice_rx, "Bob", "yes").await;
}

#[tokio::test]
async fn a_member_resuming_across_a_key_change_reads_on() {
    let server = TestServer::start(&[]).await;
    let secret = RoomSecret::generate().unwrap();
    let (alice, mut alice_rx, bob, mut bob_rx) = open_room_of_two(&server.url, &secret).await;
    // Bob's network drops for a moment (within the grace); meanwhile Carol comes in and
    // Alice talks in the new epoch.
    bob.simulate_network_drop(Duration::from_millis(1500)).await;
    expect(&mut bob_rx, "Bob offline", |e| {
        matches!(e, SessionEvent::Disconnected { .. }).then_some(())
    })
    .await;
    let (_carol, mut carol_rx) = start(&server.url, &secret, RoomKind::Open, "Carol").await;
    let_in(&mut carol_rx, "Carol").await;
    alice.send_text("while Bob was away").await.unwrap();
    text_from(&mut carol_rx, "Alice", "while Bob was away").await;
    // Bob resumes, applies the commit from the replay, and reads what was said.
    expect(&mut bob_rx, "Bob resumed", |e| {
        matches!(e, SessionEvent::Resumed { .. }).then_some(())
    })
    .await;
    text_from(&mut bob_rx, "Alice", "while Bob was away").await;
    bob.send_text("back").await.unwrap();
    text_from(&mut alice_rx, "Bob", "back").await;
    text_from(&mut carol_rx, "Bob", "back").await;
}

/// The Welcome is sent until the server takes it. Here the member who lets Bob in has
/// just used up its message budget, so the server refuses the Welcome the first time
/// (`rate_limited`); sent once and forgotten, it left Bob waiting while Alice counted him
/// in.
#[tokio::test]
async fn a_welcome_the_server_refuses_at_first_is_sent_again() {
    let server = TestServer::start(&["--messages-per-second", "1", "--message-burst", "4"]).await;
    let secret = RoomSecret::generate().unwrap();
    let (alice, mut alice_rx) = start(&server.url, &secret, RoomKind::Knock, "Alice").await;
    let_in(&mut alice_rx, "Alice").await;
    let (_bob, mut bob_rx) = start(&server.url, &secret, RoomKind::Knock, "Bob").await;
    let knocker = expect(&mut alice_rx, "Bob's knock", |e| match e {
        SessionEvent::Knock { member } => Some(member.clone()),
        _ => None,
    })
    .await;
    // A full budget of 4 (the genesis' token is back), then 3 texts: the commit takes
    // the last token and the Welcome right after it finds none.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    for n in 0..3 {
        let id = alice.send_text(format!("before Bob {n}")).await.unwrap();
        expect(&mut alice_rx, "the text acknowledged", |e| match e {
            SessionEvent::Sent { id: sent, .. } if *sent == id => Some(()),
            _ => None,
        })
        .await;
    }
    alice.let_in(&knocker.member).await.unwrap();
    let epoch = let_in(&mut bob_rx, "Bob").await;
    assert!(epoch >= 1);
    alice.send_text("welcome Bob").await.unwrap();
    text_from(&mut bob_rx, "Alice", "welcome Bob").await;
}
