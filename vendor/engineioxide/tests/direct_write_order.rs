//! StreamChat patch: the order of packets under concurrent senders (`src/direct.rs`).
//!
//! A sender writes its packet to the websocket itself when nothing waits in the session's
//! queue, and queues it otherwise; the writer task drains the queue. Whichever path each
//! packet takes, the client must receive every packet exactly once, and the packets of each
//! sender in the order they were sent.

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use bytes::Bytes;
use engineioxide::{
    ProtocolVersion, Str,
    config::EngineIoConfig,
    handler::EngineIoHandler,
    service::EngineIoService,
    socket::{DisconnectReason, Socket},
};
use futures_util::StreamExt;
use tokio::{io::DuplexStream, sync::mpsc, sync::mpsc::error::TrySendError};
use tokio_tungstenite::{
    WebSocketStream,
    tungstenite::{Message, handshake::client::generate_key, protocol::Role},
};

const SENDERS: usize = 8;
const PER_SENDER: usize = 400;
const TIMEOUT: Duration = Duration::from_secs(60);

#[derive(Debug)]
struct Handler(mpsc::UnboundedSender<Arc<Socket<()>>>);

impl EngineIoHandler for Handler {
    type Data = ();
    fn on_connect(self: Arc<Self>, socket: Arc<Socket<()>>) {
        self.0.send(socket).ok();
    }
    fn on_disconnect(&self, _: Arc<Socket<()>>, _: DisconnectReason) {}
    fn on_message(self: &Arc<Self>, _: Str, _: Arc<Socket<()>>) {}
    fn on_binary(self: &Arc<Self>, _: Bytes, _: Arc<Socket<()>>) {}
}

/// A websocket session over an in-memory pipe that buffers `pipe` bytes each way: once a
/// client that does not read lets the pipe and tungstenite's write buffer fill up, the
/// server's writes block.
async fn connect(pipe: usize) -> (Arc<Socket<()>>, WebSocketStream<DuplexStream>) {
    let (socket_tx, mut socket_rx) = mpsc::unbounded_channel();
    let config = EngineIoConfig::builder()
        .ping_interval(Duration::from_secs(60))
        .ping_timeout(Duration::from_secs(60))
        .build();
    let svc = EngineIoService::with_config(Arc::new(Handler(socket_tx)), config);
    let (server, client) = tokio::io::duplex(pipe);
    let parts = http::Request::builder()
        .method("GET")
        .header("Host", "127.0.0.1")
        .header("Connection", "Upgrade")
        .header("Upgrade", "websocket")
        .header("Sec-WebSocket-Version", "13")
        .header("Sec-WebSocket-Key", generate_key())
        .uri("ws://127.0.0.1/engine.io/?EIO=4&transport=websocket")
        .body(())
        .unwrap()
        .into_parts()
        .0;
    tokio::spawn(svc.ws_init(server, ProtocolVersion::V4, None, parts));
    let mut client = WebSocketStream::from_raw_socket(client, Role::Client, None).await;
    let open = client.next().await.unwrap().unwrap();
    assert!(open.to_text().unwrap().starts_with('0'), "{open:?}");
    // The heartbeat's first ping goes out at once; a ping that finds the queue full closes
    // the session, so the senders start after it (the next one is a minute away).
    let ping = client.next().await.unwrap().unwrap();
    assert_eq!(ping, Message::text("2"));
    let socket = socket_rx.recv().await.unwrap();
    (socket, client)
}

/// How a packet is sent: through a permit ([`Socket::reserve`]), written directly when
/// nothing is queued, or with [`Socket::emit`], always queued.
/// `Err(true)`: the session is closed; `Err(false)`: the queue is full.
fn try_send(socket: &Socket<()>, msg: &str, binary: bool, queue: bool) -> Result<(), bool> {
    fn closed<T>(e: TrySendError<T>) -> bool {
        matches!(e, TrySendError::Closed(_))
    }
    match (queue, binary) {
        (true, false) => socket.emit(msg.to_owned()).map_err(closed),
        (true, true) => socket
            .emit_binary(Bytes::from(msg.to_owned()))
            .map_err(closed),
        (false, _) => {
            let permit = socket.reserve().map_err(closed)?;
            if binary {
                permit.emit_binary(Bytes::from(msg.to_owned()));
            } else {
                permit.emit(msg.to_owned().into());
            }
            Ok(())
        }
    }
}

/// Emits `PER_SENDER` packets `sender:seq:pad`, seq from 0 (binary packets for `binary`),
/// every third one with [`Socket::emit`] (queued) and the others through a permit (direct
/// when nothing is queued), each packet again until it is taken, so the sender's order
/// stays; sets `full` when the queue was full.
async fn send_all(
    socket: Arc<Socket<()>>,
    sender: usize,
    binary: bool,
    pad: Arc<str>,
    full: Arc<AtomicBool>,
) {
    for seq in 0..PER_SENDER {
        let msg = format!("{sender}:{seq}:{pad}");
        loop {
            match try_send(&socket, &msg, binary, seq % 3 == 0) {
                Ok(()) => break,
                Err(false) => {
                    full.store(true, Ordering::Release);
                    tokio::task::yield_now().await;
                }
                Err(true) => panic!("sender {sender}: the session closed"),
            }
        }
        if seq % 8 == 0 {
            tokio::task::yield_now().await;
        }
    }
}

fn spawn_senders(
    socket: &Arc<Socket<()>>,
    pad: usize,
    full: &Arc<AtomicBool>,
) -> tokio::task::JoinSet<()> {
    let pad: Arc<str> = "x".repeat(pad).into();
    let mut senders = tokio::task::JoinSet::new();
    for sender in 0..SENDERS {
        // Sender 0 sends binary packets: they take the same paths.
        senders.spawn(send_all(
            socket.clone(),
            sender,
            sender == 0,
            pad.clone(),
            full.clone(),
        ));
    }
    senders
}

/// The sender and sequence number of a data packet (`None`: a ping).
fn parse(msg: &Message) -> Option<(usize, usize)> {
    let text = match msg {
        Message::Text(t) => t.as_str().strip_prefix('4')?.to_owned(),
        Message::Binary(b) => String::from_utf8(b.to_vec()).unwrap(),
        other => panic!("unexpected message {other:?}"),
    };
    let mut parts = text.splitn(3, ':');
    let sender = parts.next()?.parse().ok()?;
    let seq = parts.next()?.parse().ok()?;
    Some((sender, seq))
}

/// Reads until every packet of every sender arrived, checking that each sender's packets
/// come once each and in order; then checks that nothing else arrives.
async fn receive_all(client: &mut WebSocketStream<DuplexStream>) {
    let mut next = [0usize; SENDERS];
    let mut left = SENDERS * PER_SENDER;
    while left > 0 {
        let msg = client
            .next()
            .await
            .expect("the connection closed early")
            .expect("websocket error");
        let Some((sender, seq)) = parse(&msg) else {
            continue;
        };
        assert_eq!(
            seq, next[sender],
            "sender {sender}: packet {seq} arrived when {} was due (lost, repeated or reordered)",
            next[sender]
        );
        next[sender] += 1;
        left -= 1;
    }
    let extra = tokio::time::timeout(Duration::from_millis(100), async {
        while let Some(Ok(msg)) = client.next().await {
            if let Some(packet) = parse(&msg) {
                return Some(packet);
            }
        }
        None
    })
    .await;
    assert!(
        matches!(extra, Err(_) | Ok(None)),
        "a packet arrived after all of them: {extra:?}"
    );
}

/// The client reads all along: most packets are written directly, some queued while
/// another sender or the writer holds the websocket.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_senders_reading_client() {
    let (socket, mut client) = connect(64 * 1024).await;
    let full = Arc::new(AtomicBool::new(false));
    let mut senders = spawn_senders(&socket, 16, &full);
    tokio::time::timeout(TIMEOUT, receive_all(&mut client))
        .await
        .expect("timed out");
    while let Some(res) = senders.join_next().await {
        res.unwrap();
    }
}

/// The client reads nothing until the queue is full: the websocket blocks, the direct
/// path has to fall back to the queue while it is not empty, and the writer task drains it
/// while the senders go on.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_senders_blocked_client() {
    let (socket, mut client) = connect(1024).await;
    let full = Arc::new(AtomicBool::new(false));
    let mut senders = spawn_senders(&socket, 1024, &full);
    tokio::time::timeout(TIMEOUT, async {
        while !full.load(Ordering::Acquire) {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    })
    .await
    .expect("the queue never filled up: the client's pipe did not block the server");
    tokio::time::timeout(TIMEOUT, receive_all(&mut client))
        .await
        .expect("timed out");
    while let Some(res) = senders.join_next().await {
        res.unwrap();
    }
}
