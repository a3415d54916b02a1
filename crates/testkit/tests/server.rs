//! Tier 2: the real server on 127.0.0.1:0, driven by the Rust client over real sockets.

// Helpers of an integration test panic on failure: that is the report we want.
#![allow(clippy::unwrap_used)]

use bytes::Bytes;
use std::time::Duration;
use streamchat_client::{Client, ServerEvent};
use streamchat_protocol::{
    ErrorCode, FileId, JoinAck, LeaveReason, LogPlace, PresenceEvent, ResumeRequest, RoomId,
};
use streamchat_testkit::TestServer;
use tokio::sync::mpsc;

fn room(n: u8) -> RoomId {
    // 21 free characters and a canonical last one.
    RoomId::new(format!("{}A", char::from(b'a' + n).to_string().repeat(21))).unwrap()
}

async fn next(rx: &mut mpsc::Receiver<ServerEvent>) -> ServerEvent {
    tokio::time::timeout(Duration::from_secs(5), rx.recv())
        .await
        .expect("event in time")
        .expect("open")
}

#[tokio::test]
async fn two_members_exchange_messages_and_presence() {
    let server = TestServer::start(&[]).await;
    let (alice, mut alice_rx) = Client::connect(&server.url).await.unwrap();
    let (bob, mut bob_rx) = Client::connect(&server.url).await.unwrap();
    let r = room(0);

    let ack = alice.join(&r, "YWxpY2U").await.unwrap().unwrap();
    assert_eq!(&ack.member, alice.member_id());
    assert!(ack.members.is_empty());
    assert_eq!(ack.limits.max_message_bytes, 65536);

    let ack = bob.join(&r, "Ym9i").await.unwrap().unwrap();
    assert_eq!(ack.members.len(), 1);
    assert_eq!(ack.members[0].profile, "YWxpY2U");
    match next(&mut alice_rx).await {
        ServerEvent::Presence(PresenceEvent::Join {
            member, profile, ..
        }) => {
            assert_eq!(&member, bob.member_id());
            assert_eq!(profile, "Ym9i");
        }
        other => panic!("expected join, got {other:?}"),
    }

    let sealed = Bytes::from_static(b"\x01opaque sealed bytes\x00\xff");
    let sent = alice.msg(&r, sealed.clone(), None).await.unwrap().unwrap();
    match next(&mut bob_rx).await {
        ServerEvent::Msg(m) => {
            assert_eq!(m.data.0, sealed);
            assert_eq!(&m.from, alice.member_id());
            assert_eq!(m.ts, sent.ts);
        }
        other => panic!("expected msg, got {other:?}"),
    }

    let file = FileId::new("0123456789abcdef").unwrap();
    for seq in 0..20u32 {
        let data = Bytes::from(vec![seq as u8; 1000 + seq as usize]);
        bob.chunk(&r, &file, seq, data).await.unwrap().unwrap();
    }
    for seq in 0..20u32 {
        match next(&mut alice_rx).await {
            ServerEvent::Chunk(c) => {
                assert_eq!(c.seq, seq);
                assert_eq!(c.data.len(), 1000 + seq as usize);
            }
            other => panic!("expected chunk, got {other:?}"),
        }
    }

    bob.close().await;
    match next(&mut alice_rx).await {
        ServerEvent::Presence(PresenceEvent::Leave { reason, .. }) => {
            assert_eq!(reason, LeaveReason::Disconnected)
        }
        other => panic!("expected leave, got {other:?}"),
    }
    alice.close().await;
    server.stop().await;
}

#[tokio::test]
async fn refusals_carry_their_codes_and_keep_the_connection() {
    let server =
        TestServer::start(&["--max-members-per-room", "1", "--max-message-bytes", "16"]).await;
    let (a, _a_rx) = Client::connect(&server.url).await.unwrap();
    let (b, _b_rx) = Client::connect(&server.url).await.unwrap();
    let r = room(1);

    let err = a
        .msg(&r, Bytes::from_static(b"x"), None)
        .await
        .unwrap()
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::NotMember);
    let err = a
        .emit_raw(
            "join",
            serde_json::json!({"room": "nope", "profile": "eA"}),
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(err["error"]["code"], "bad_request");
    a.join(&r, "eA").await.unwrap().unwrap();
    let err = a
        .msg(&r, Bytes::from(vec![0; 17]), None)
        .await
        .unwrap()
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::TooLarge);
    let err = b.join(&r, "eQ").await.unwrap().unwrap_err();
    assert_eq!(err.code, ErrorCode::RoomFull);
    // Still connected and served.
    a.msg(&r, Bytes::from_static(b"ok"), None)
        .await
        .unwrap()
        .unwrap();
    a.close().await;
    b.close().await;
    server.stop().await;
}

#[tokio::test]
async fn shutdown_tells_everyone_and_announces_no_false_leave() {
    let server = TestServer::start(&[]).await;
    let (a, mut a_rx) = Client::connect(&server.url).await.unwrap();
    let (b, _b_rx) = Client::connect(&server.url).await.unwrap();
    a.join(&room(2), "eA").await.unwrap().unwrap();
    b.join(&room(2), "eQ").await.unwrap().unwrap();
    assert!(matches!(
        next(&mut a_rx).await,
        ServerEvent::Presence(PresenceEvent::Join { .. })
    ));
    server.stop().await;
    match next(&mut a_rx).await {
        ServerEvent::Notice(n) => assert_eq!(n.code, "shutting_down"),
        other => panic!("expected notice, got {other:?}"),
    }
    // Nothing else before the connection ends: b is not leaving, the server is.
    while let Ok(Some(event)) = tokio::time::timeout(Duration::from_secs(2), a_rx.recv()).await {
        assert!(
            !matches!(event, ServerEvent::Presence(_)),
            "no presence change on shutdown, got {event:?}"
        );
    }
}

fn resume_of(member: &JoinAck, room: &RoomId, pos: u64) -> ResumeRequest {
    ResumeRequest {
        room: room.clone(),
        member: member.member.clone(),
        token: member.token.clone(),
        epoch: member.epoch.clone(),
        pos,
    }
}

/// The next event that is not a presence change about someone reconnecting.
async fn next_msg_pos(rx: &mut mpsc::Receiver<ServerEvent>) -> (u64, Bytes) {
    match next(rx).await {
        ServerEvent::Msg(m) => (m.pos, m.data.0),
        other => panic!("expected msg, got {other:?}"),
    }
}

#[tokio::test]
async fn a_dropped_member_resumes_with_every_missed_event_once_in_order() {
    let server = TestServer::start(&[]).await;
    let r = room(3);
    let (alice, mut alice_rx) = Client::connect(&server.url).await.unwrap();
    let (bob, mut bob_rx) = Client::connect(&server.url).await.unwrap();
    let a_ack = alice.join(&r, "YWxpY2U").await.unwrap().unwrap();
    let b_ack = bob.join(&r, "Ym9i").await.unwrap().unwrap();
    assert_eq!((a_ack.pos, b_ack.pos), (1, 2), "each join is a position");
    assert_eq!(a_ack.epoch, b_ack.epoch);
    assert_eq!(b_ack.token.len(), 43, "32 random bytes, base64url");
    assert_eq!(b_ack.grace_ms, 20_000);
    match next(&mut alice_rx).await {
        ServerEvent::Presence(PresenceEvent::Join { pos, .. }) => assert_eq!(pos, 2),
        other => panic!("expected join, got {other:?}"),
    }
    let sent = alice
        .msg_with_id(&r, Bytes::from_static(b"before"), None, Some("m0"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(sent.pos, 3);
    assert_eq!(next_msg_pos(&mut bob_rx).await.0, 3);

    // Bob's network drops: Alice sees him reconnecting, not gone.
    bob.drop_transport().await;
    match next(&mut alice_rx).await {
        ServerEvent::Presence(PresenceEvent::Away { member, pos, .. }) => {
            assert_eq!(&member, bob.member_id());
            assert_eq!(pos, 4);
        }
        other => panic!("expected away, got {other:?}"),
    }
    for (i, text) in ["one", "two", "three"].iter().enumerate() {
        let ack = alice
            .msg_with_id(&r, Bytes::from(*text), None, Some(&format!("m{}", i + 1)))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(ack.pos, 5 + i as u64);
    }
    let file = FileId::new("0123456789abcdef").unwrap();
    alice
        .chunk(&r, &file, 0, Bytes::from(vec![7; 4096]))
        .await
        .unwrap()
        .unwrap();

    // Bob comes back on a new connection, as himself.
    let (bob2, mut bob2_rx) = Client::connect(&server.url).await.unwrap();
    let ack = bob2
        .resume(&resume_of(&b_ack, &r, 3))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&ack.member, bob.member_id(), "same member id");
    assert_eq!(
        ack.replayed, 4,
        "three messages and a chunk (not his own away)"
    );
    assert_eq!(ack.pos, 8);
    assert!(ack.missed.is_none());
    assert_ne!(ack.token, b_ack.token, "the token rotates");
    let mut got = Vec::new();
    for _ in 0..3 {
        got.push(next_msg_pos(&mut bob2_rx).await);
    }
    assert_eq!(
        got,
        vec![
            (5, Bytes::from("one")),
            (6, Bytes::from("two")),
            (7, Bytes::from("three"))
        ]
    );
    match next(&mut bob2_rx).await {
        ServerEvent::Chunk(c) => assert_eq!((c.pos, c.data.len()), (8, 4096)),
        other => panic!("expected chunk, got {other:?}"),
    }
    // Alice hears he is back: no leave, no join.
    match next(&mut alice_rx).await {
        ServerEvent::Presence(PresenceEvent::Back { member, pos, .. }) => {
            assert_eq!(&member, bob.member_id());
            assert_eq!(pos, 9);
        }
        other => panic!("expected back, got {other:?}"),
    }
    // Live traffic follows the replay, both ways, under the same member id.
    alice
        .msg(&r, Bytes::from_static(b"live"), None)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(next_msg_pos(&mut bob2_rx).await, (10, Bytes::from("live")));
    bob2.msg(&r, Bytes::from_static(b"hi again"), None)
        .await
        .unwrap()
        .unwrap();
    match next(&mut alice_rx).await {
        ServerEvent::Msg(m) => {
            assert_eq!(&m.from, bob.member_id());
            assert_eq!(m.pos, 11);
        }
        other => panic!("expected msg, got {other:?}"),
    }

    // Refused: the old token, another member's token, another room, a future position.
    let (mallory, _m_rx) = Client::connect(&server.url).await.unwrap();
    let err = mallory
        .resume(&resume_of(&b_ack, &r, 3))
        .await
        .unwrap()
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::ResumeFailed, "old token: {err:?}");
    let mut stolen = resume_of(&a_ack, &r, 3);
    stolen.member = bob.member_id().clone();
    let err = mallory.resume(&stolen).await.unwrap().unwrap_err();
    assert_eq!(err.code, ErrorCode::ResumeFailed, "another member's token");
    let mut current = resume_of(&b_ack, &r, 3);
    current.token = ack.token.clone();
    let mut other_room = current.clone();
    other_room.room = room(4);
    let err = mallory.resume(&other_room).await.unwrap().unwrap_err();
    assert_eq!(err.code, ErrorCode::ResumeFailed, "another room");
    let mut future = current.clone();
    future.pos = 1_000;
    let err = mallory.resume(&future).await.unwrap().unwrap_err();
    assert_eq!(err.code, ErrorCode::BadRequest, "future position");
    assert!(err.message.contains("ahead"), "{}", err.message);
    // Nobody else was affected: the room goes on, in order.
    alice
        .msg(&r, Bytes::from_static(b"still here"), None)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        next_msg_pos(&mut bob2_rx).await,
        (12, Bytes::from("still here"))
    );
    server.stop().await;
}

#[tokio::test]
async fn after_the_grace_one_leave_and_a_counted_gap() {
    let server = TestServer::start(&["--resume-grace-secs", "1"]).await;
    let r = room(5);
    let (alice, mut alice_rx) = Client::connect(&server.url).await.unwrap();
    let (bob, _bob_rx) = Client::connect(&server.url).await.unwrap();
    alice.join(&r, "YWxpY2U").await.unwrap().unwrap();
    let b_ack = bob.join(&r, "Ym9i").await.unwrap().unwrap();
    let _join = next(&mut alice_rx).await;
    bob.drop_transport().await;
    let away_at = match next(&mut alice_rx).await {
        ServerEvent::Presence(PresenceEvent::Away { at, .. }) => at,
        other => panic!("expected away, got {other:?}"),
    };
    // Two messages people wrote (with client ids: counted in a gap) and a signal (a
    // typing notice has no id: replayed, but not counted).
    for text in ["one", "two"] {
        alice
            .msg_with_id(&r, Bytes::from(text), None, Some(text))
            .await
            .unwrap()
            .unwrap();
    }
    alice
        .msg(&r, Bytes::from_static(b"typing"), None)
        .await
        .unwrap()
        .unwrap();
    match next(&mut alice_rx).await {
        ServerEvent::Presence(PresenceEvent::Leave { reason, at, .. }) => {
            assert_eq!(reason, LeaveReason::Disconnected);
            assert!(
                at.abs_diff(away_at) < 1000,
                "the leave says when he dropped"
            );
        }
        other => panic!("expected one leave, got {other:?}"),
    }
    let (bob2, _bob2_rx) = Client::connect(&server.url).await.unwrap();
    let err = bob2
        .resume(&resume_of(&b_ack, &r, b_ack.pos))
        .await
        .unwrap()
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::ResumeFailed);
    let since = LogPlace {
        epoch: b_ack.epoch.clone(),
        pos: b_ack.pos,
    };
    let ack = bob2.join_since(&r, "Ym9i", since).await.unwrap().unwrap();
    let missed = ack.missed.expect("a join with since says what was missed");
    assert_eq!((missed.messages, missed.exact), (2, true));
    assert_ne!(&ack.member, bob.member_id(), "a new member");
    server.stop().await;
}

#[tokio::test]
async fn a_resent_message_is_relayed_once() {
    let server = TestServer::start(&[]).await;
    let r = room(6);
    let (alice, _alice_rx) = Client::connect(&server.url).await.unwrap();
    let (bob, mut bob_rx) = Client::connect(&server.url).await.unwrap();
    alice.join(&r, "YWxpY2U").await.unwrap().unwrap();
    bob.join(&r, "Ym9i").await.unwrap().unwrap();
    let first = alice
        .msg_with_id(&r, Bytes::from_static(b"once"), None, Some("same-id"))
        .await
        .unwrap()
        .unwrap();
    assert!(!first.duplicate);
    let again = alice
        .msg_with_id(&r, Bytes::from_static(b"once"), None, Some("same-id"))
        .await
        .unwrap()
        .unwrap();
    assert!(again.duplicate);
    assert_eq!((again.pos, again.ts), (first.pos, first.ts));
    let err = alice
        .msg_with_id(&r, Bytes::from_static(b"x"), None, Some("not an id!"))
        .await
        .unwrap()
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::BadRequest);
    alice
        .msg(&r, Bytes::from_static(b"next"), None)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(next_msg_pos(&mut bob_rx).await.1, Bytes::from("once"));
    assert_eq!(
        next_msg_pos(&mut bob_rx).await.1,
        Bytes::from("next"),
        "the resend was not relayed"
    );
    server.stop().await;
}
