//! Tier 2: the real server on 127.0.0.1:0, driven by the Rust client over real sockets.

// Helpers of an integration test panic on failure: that is the report we want.
#![allow(clippy::unwrap_used)]

use bytes::Bytes;
use clap::Parser;
use std::time::Duration;
use streamchat_client::{Client, ServerEvent};
use streamchat_protocol::{ErrorCode, FileId, LeaveReason, PresenceEvent, RoomId};
use streamchat_server::ServeConfig;
use tokio::sync::{mpsc, oneshot};

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    serve: ServeConfig,
}

struct TestServer {
    url: String,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl TestServer {
    async fn start(args: &[&str]) -> Self {
        let config = Cli::try_parse_from(["streamchat"].iter().chain(args))
            .unwrap()
            .serve;
        config.validate().unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let (tx, rx) = oneshot::channel();
        let task = tokio::spawn(streamchat_server::run(listener, config, async move {
            let _ = rx.await;
        }));
        Self {
            url,
            stop: Some(tx),
            task,
        }
    }

    async fn stop(mut self) {
        let _ = self.stop.take().unwrap().send(());
        tokio::time::timeout(Duration::from_secs(5), self.task)
            .await
            .unwrap()
            .unwrap()
            .unwrap();
    }
}

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
async fn shutdown_tells_everyone() {
    let server = TestServer::start(&[]).await;
    let (a, mut a_rx) = Client::connect(&server.url).await.unwrap();
    a.join(&room(2), "eA").await.unwrap().unwrap();
    server.stop().await;
    match next(&mut a_rx).await {
        ServerEvent::Notice(n) => assert_eq!(n.code, "shutting_down"),
        other => panic!("expected notice, got {other:?}"),
    }
}
