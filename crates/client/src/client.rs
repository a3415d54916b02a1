//! The async client: one WebSocket, a reader task and a writer task, typed requests with
//! acknowledgements, and a bounded stream of server events.
//!
//! The event channel is bounded: a consumer that stops reading stops the reader task,
//! which stops reading the socket, so the server sees a slow receiver, as it would with
//! any real client. Acks wait on one-shot channels keyed by ack id.

use crate::packet::{self, PacketType, placeholder};
use crate::transport::{self, Target, TlsConfig, Transport};
use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use streamchat_protocol::{
    Binary, ChunkEvent, ErrorBody, FileId, JoinAck, JoinRequest, LeaveRequest, LogPlace, MemberId,
    MsgAck, MsgEvent, Notice, OkAck, PresenceEvent, ResumeAck, ResumeRequest, RoomId, events,
};
use tokio::sync::{mpsc, oneshot};
use tokio_tungstenite::tungstenite::Message;

/// Events the server sends, decoded.
#[derive(Debug, Clone, PartialEq)]
pub enum ServerEvent {
    /// Someone joined or left.
    Presence(PresenceEvent),
    /// A sealed message.
    Msg(MsgEvent),
    /// A file chunk.
    Chunk(ChunkEvent),
    /// Server news.
    Notice(Notice),
    /// An event this client does not know: name and JSON.
    Other(String, Value),
    /// The connection closed.
    Disconnected,
}

/// What went wrong below the protocol.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// WebSocket connect or I/O failed.
    #[error("websocket: {0}")]
    WebSocket(#[from] Box<tokio_tungstenite::tungstenite::Error>),
    /// The server refused the namespace connection (`connect_error`).
    #[error("connection refused: {0}")]
    Refused(String),
    /// The handshake did not follow the protocol.
    #[error("handshake failed: {0}")]
    Handshake(String),
    /// The connection is closed.
    #[error("connection closed")]
    Closed,
    /// No ack within the timeout.
    #[error("no acknowledgement within {0:?}")]
    AckTimeout(Duration),
    /// An ack or event did not have the expected shape.
    #[error("unexpected payload: {0}")]
    Payload(String),
    /// Binding or connecting the TCP socket failed.
    #[error("connect: {0}")]
    Io(std::io::Error),
    /// The connection was not set up within the connect timeout.
    #[error("no connection within {0:?}")]
    ConnectTimeout(Duration),
    /// The URL cannot be connected to this way.
    #[error("bad server URL: {0}")]
    BadUrl(String),
}

/// A request refused by the server, or its success payload.
pub type Acked<T> = Result<T, ErrorBody>;

type PendingAcks = Arc<Mutex<HashMap<u64, oneshot::Sender<Value>>>>;

/// Capacity of the server-event channel; beyond it, the reader waits (backpressure).
const EVENT_BUFFER: usize = 1024;
/// Capacity of the outgoing frame queue.
const OUTGOING_BUFFER: usize = 256;

/// One unit of the outgoing queue. A binary packet's header and attachments are one
/// unit, written together: the server pairs a header with the binary frames that follow
/// it, so a frame of another packet between them (two chunks emitted at once) would hand
/// it one chunk's bytes under another's number.
#[derive(Debug)]
enum Outgoing {
    /// One frame.
    Frame(Message),
    /// A Socket.IO packet's text frame and the binary frames of its attachments.
    Packet(String, Vec<Bytes>),
}

/// A connected client.
#[derive(Debug)]
pub struct Client {
    sid: MemberId,
    outgoing: mpsc::Sender<Outgoing>,
    pending: PendingAcks,
    next_id: AtomicU64,
    ack_timeout: Duration,
}

/// Converts `http(s)://host:port` (any path) to the Socket.IO WebSocket URL.
pub fn websocket_url(base: &str) -> String {
    let base = base.split('#').next().unwrap_or(base).trim_end_matches('/');
    let ws = if let Some(rest) = base.strip_prefix("https://") {
        format!("wss://{rest}")
    } else if let Some(rest) = base.strip_prefix("http://") {
        format!("ws://{rest}")
    } else {
        base.to_owned()
    };
    format!("{ws}/socket.io/?EIO=4&transport=websocket")
}

/// How to connect: everything has a default, so `ConnectOptions::default()` is the
/// plain `Client::connect`.
#[derive(Debug, Clone)]
pub struct ConnectOptions {
    /// Source address to bind the TCP socket to before connecting (the load generator
    /// spreads connections over 127.0.0.2–127.0.0.250 this way). Default: the system's
    /// choice.
    pub local_addr: Option<IpAddr>,
    /// How to check the certificates of `https://` servers. Default: the system's trust
    /// store, loaded at each connect.
    pub tls: Option<TlsConfig>,
    /// How long a request waits for its acknowledgement. Default: 10 s.
    pub ack_timeout: Duration,
    /// How long the TCP connect, WebSocket upgrade and Socket.IO handshake may take
    /// together. Default: 10 s.
    pub connect_timeout: Duration,
}

impl Default for ConnectOptions {
    fn default() -> Self {
        Self {
            local_addr: None,
            tls: None,
            ack_timeout: Duration::from_secs(10),
            connect_timeout: Duration::from_secs(10),
        }
    }
}

impl Client {
    /// Connects to a StreamChat server (`http://host:port`) and its default namespace.
    pub async fn connect(
        base_url: &str,
    ) -> Result<(Client, mpsc::Receiver<ServerEvent>), ClientError> {
        Self::connect_with(base_url, &ConnectOptions::default()).await
    }

    /// [`Client::connect`] with options.
    pub async fn connect_with(
        base_url: &str,
        options: &ConnectOptions,
    ) -> Result<(Client, mpsc::Receiver<ServerEvent>), ClientError> {
        tokio::time::timeout(options.connect_timeout, Self::handshake(base_url, options))
            .await
            .map_err(|_| ClientError::ConnectTimeout(options.connect_timeout))?
    }

    async fn open_websocket(url: &str, options: &ConnectOptions) -> Result<WebSocket, ClientError> {
        let target = Target::parse(url).map_err(ClientError::BadUrl)?;
        let stream = transport::connect(&target, options.local_addr, options.tls.as_ref())
            .await
            .map_err(ClientError::Io)?;
        let (ws, _) = tokio_tungstenite::client_async(url, stream)
            .await
            .map_err(Box::new)?;
        Ok(ws)
    }

    async fn handshake(
        base_url: &str,
        options: &ConnectOptions,
    ) -> Result<(Client, mpsc::Receiver<ServerEvent>), ClientError> {
        let ws = Self::open_websocket(&websocket_url(base_url), options).await?;
        let (mut sink, mut stream) = ws.split();
        // Engine.IO open packet, then namespace connect.
        match stream.next().await {
            Some(Ok(Message::Text(t))) if t.starts_with('0') => {}
            other => {
                return Err(ClientError::Handshake(format!(
                    "expected open packet, got {other:?}"
                )));
            }
        }
        sink.send(Message::text("40")).await.map_err(Box::new)?;
        let sid = loop {
            match stream.next().await {
                Some(Ok(Message::Text(t))) if t.starts_with("40") => {
                    let p = packet::decode(&t[1..])
                        .map_err(|e| ClientError::Handshake(e.to_string()))?;
                    let sid = p
                        .data
                        .get("sid")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_owned();
                    break MemberId::new(sid).map_err(|e| ClientError::Handshake(e.to_string()))?;
                }
                Some(Ok(Message::Text(t))) if t.starts_with("44") => {
                    let p = packet::decode(&t[1..])
                        .map_err(|e| ClientError::Handshake(e.to_string()))?;
                    let msg = p
                        .data
                        .get("message")
                        .and_then(Value::as_str)
                        .unwrap_or_default();
                    return Err(ClientError::Refused(msg.to_owned()));
                }
                Some(Ok(Message::Text(t))) if t == "2" => {
                    sink.send(Message::text("3")).await.map_err(Box::new)?;
                }
                other => {
                    return Err(ClientError::Handshake(format!(
                        "expected connect, got {other:?}"
                    )));
                }
            }
        };
        let (out_tx, mut out_rx) = mpsc::channel::<Outgoing>(OUTGOING_BUFFER);
        let (ev_tx, ev_rx) = mpsc::channel::<ServerEvent>(EVENT_BUFFER);
        let pending: PendingAcks = Arc::default();
        tokio::spawn(async move {
            while let Some(out) = out_rx.recv().await {
                let (close, sent) = match out {
                    Outgoing::Frame(frame) => {
                        (matches!(frame, Message::Close(_)), sink.send(frame).await)
                    }
                    Outgoing::Packet(text, attachments) => {
                        let mut sent = sink.feed(Message::text(text)).await;
                        for a in attachments {
                            if sent.is_ok() {
                                sent = sink.feed(Message::binary(a)).await;
                            }
                        }
                        if sent.is_ok() {
                            sent = sink.flush().await;
                        }
                        (false, sent)
                    }
                };
                if sent.is_err() || close {
                    break;
                }
            }
            let _ = sink.close().await;
        });
        tokio::spawn(read_loop(stream, out_tx.clone(), ev_tx, pending.clone()));
        let client = Client {
            sid,
            outgoing: out_tx,
            pending,
            next_id: AtomicU64::new(0),
            ack_timeout: options.ack_timeout,
        };
        Ok((client, ev_rx))
    }

    /// This connection's member id (its Socket.IO id).
    pub fn member_id(&self) -> &MemberId {
        &self.sid
    }

    /// Emits an event with a JSON payload and binary attachments (referenced from the
    /// payload by `placeholder(n)`), and waits for its ack's first argument.
    pub async fn emit_raw(
        &self,
        event: &str,
        payload: Value,
        attachments: Vec<Bytes>,
    ) -> Result<Value, ClientError> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        self.pending
            .lock()
            .map_err(|_| ClientError::Closed)?
            .insert(id, tx);
        self.send_frames(event, &payload, attachments, Some(id))
            .await?;
        match tokio::time::timeout(self.ack_timeout, rx).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(_)) => Err(ClientError::Closed),
            Err(_) => {
                if let Ok(mut p) = self.pending.lock() {
                    p.remove(&id);
                }
                Err(ClientError::AckTimeout(self.ack_timeout))
            }
        }
    }

    /// Emits an event without asking for an ack.
    pub async fn emit_no_ack(
        &self,
        event: &str,
        payload: Value,
        attachments: Vec<Bytes>,
    ) -> Result<(), ClientError> {
        self.send_frames(event, &payload, attachments, None).await
    }

    async fn send_frames(
        &self,
        event: &str,
        payload: &Value,
        attachments: Vec<Bytes>,
        id: Option<u64>,
    ) -> Result<(), ClientError> {
        let text = packet::encode_event(event, payload, attachments.len(), id);
        self.outgoing
            .send(Outgoing::Packet(text, attachments))
            .await
            .map_err(|_| ClientError::Closed)
    }

    async fn request<T: DeserializeOwned>(
        &self,
        event: &str,
        payload: Value,
        attachments: Vec<Bytes>,
    ) -> Result<Acked<T>, ClientError> {
        let ack = self.emit_raw(event, payload, attachments).await?;
        decode_ack(ack)
    }

    /// `join`: enters `room` with a sealed profile (base64url).
    pub async fn join(&self, room: &RoomId, profile: &str) -> Result<Acked<JoinAck>, ClientError> {
        let req = JoinRequest {
            room: room.clone(),
            profile: profile.to_owned(),
            since: None,
        };
        self.request(events::JOIN, to_json(&req)?, Vec::new()).await
    }

    /// `leave`.
    pub async fn leave(&self, room: &RoomId) -> Result<Acked<OkAck>, ClientError> {
        self.request(
            events::LEAVE,
            to_json(&LeaveRequest { room: room.clone() })?,
            Vec::new(),
        )
        .await
    }

    /// `msg`: sealed bytes to the room, or to one member of it.
    pub async fn msg(
        &self,
        room: &RoomId,
        data: Bytes,
        to: Option<&MemberId>,
    ) -> Result<Acked<MsgAck>, ClientError> {
        self.msg_with_id(room, data, to, None).await
    }

    /// `msg` with the client's id for it, so that a resend after a reconnect is delivered
    /// once (the server acks the resend `duplicate: true`).
    pub async fn msg_with_id(
        &self,
        room: &RoomId,
        data: Bytes,
        to: Option<&MemberId>,
        id: Option<&str>,
    ) -> Result<Acked<MsgAck>, ClientError> {
        let mut payload = serde_json::json!({ "room": room, "data": placeholder(0) });
        if let Some(to) = to {
            payload["to"] = Value::String(to.to_string());
        }
        if let Some(id) = id {
            payload["id"] = Value::String(id.to_owned());
        }
        self.request(events::MSG, payload, vec![data]).await
    }

    /// `resume`: comes back to a room as the member this client was, on this (new)
    /// connection; the missed events follow the ack on the event stream.
    pub async fn resume(&self, req: &ResumeRequest) -> Result<Acked<ResumeAck>, ClientError> {
        self.request(events::RESUME, to_json(req)?, Vec::new())
            .await
    }

    /// `join` with the place in the log where this client left off, after a failed
    /// resume: the ack says how many messages were missed.
    pub async fn join_since(
        &self,
        room: &RoomId,
        profile: &str,
        since: LogPlace,
    ) -> Result<Acked<JoinAck>, ClientError> {
        let req = JoinRequest {
            room: room.clone(),
            profile: profile.to_owned(),
            since: Some(since),
        };
        self.request(events::JOIN, to_json(&req)?, Vec::new()).await
    }

    /// `chunk`: one encrypted file chunk.
    pub async fn chunk(
        &self,
        room: &RoomId,
        file: &FileId,
        seq: u32,
        data: Bytes,
    ) -> Result<Acked<OkAck>, ClientError> {
        let payload =
            serde_json::json!({ "room": room, "file": file, "seq": seq, "data": placeholder(0) });
        self.request(events::CHUNK, payload, vec![data]).await
    }

    /// Closes the transport without a Socket.IO goodbye, as a network drop looks to the
    /// server (it holds the member's place for the grace).
    pub async fn drop_transport(&self) {
        let _ = self
            .outgoing
            .send(Outgoing::Frame(Message::Close(None)))
            .await;
    }

    /// Closes the connection (the server sees a client disconnect).
    pub async fn close(self) {
        self.disconnect().await;
    }

    /// Closes the connection through a shared handle; later requests fail with
    /// [`ClientError::Closed`].
    pub async fn disconnect(&self) {
        // Either frame failing means the connection is already gone, which is the goal.
        let _ = self
            .outgoing
            .send(Outgoing::Frame(Message::text("41")))
            .await;
        let _ = self
            .outgoing
            .send(Outgoing::Frame(Message::Close(None)))
            .await;
    }
}

fn to_json<T: Serialize>(t: &T) -> Result<Value, ClientError> {
    serde_json::to_value(t).map_err(|e| ClientError::Payload(e.to_string()))
}

type WebSocket = tokio_tungstenite::WebSocketStream<Transport>;
type WsStream = futures_util::stream::SplitStream<WebSocket>;

async fn read_loop(
    mut stream: WsStream,
    out: mpsc::Sender<Outgoing>,
    events_tx: mpsc::Sender<ServerEvent>,
    pending: PendingAcks,
) {
    let mut reader = FrameReader::default();
    while let Some(frame) = stream.next().await {
        let incoming = match frame {
            Ok(Message::Text(t)) => reader.text(&t),
            Ok(Message::Binary(b)) => reader.binary(b),
            Ok(Message::Close(_)) | Err(_) => break,
            Ok(_) => Incoming::Nothing,
        };
        match incoming {
            Incoming::Nothing => {}
            Incoming::Ping => {
                let _ = out.send(Outgoing::Frame(Message::text("3"))).await;
            }
            Incoming::Close => break,
            Incoming::Ack(id, first) => {
                let waiter = id.and_then(|id| pending.lock().ok().and_then(|mut m| m.remove(&id)));
                if let Some(tx) = waiter {
                    let _ = tx.send(first);
                }
            }
            Incoming::Event(event) => {
                if events_tx.send(event).await.is_err() {
                    break;
                }
            }
        }
    }
    let _ = events_tx.send(ServerEvent::Disconnected).await;
}

/// What one WebSocket frame from the server comes to, once decoded.
#[derive(Debug, Clone, PartialEq)]
pub enum Incoming {
    /// Nothing yet: an attachment is awaited, or the frame was ignored or malformed.
    Nothing,
    /// An Engine.IO ping, to be answered with a pong.
    Ping,
    /// The server closes the session (Engine.IO close or Socket.IO disconnect).
    Close,
    /// An acknowledgement: its id and its first argument.
    Ack(Option<u64>, Value),
    /// An event.
    Event(ServerEvent),
}

/// The server's frames decoded, sans I/O: Engine.IO packets in text frames, Socket.IO
/// packets in Engine.IO messages, and binary attachments in the binary frames that follow
/// their packet. The connection's reader feeds it every frame in order; so does the fuzz
/// target `client_events`, since the server is not trusted.
#[derive(Debug, Default)]
pub struct FrameReader {
    /// A binary packet waiting for its attachments.
    partial: Option<(packet::Packet, Vec<Bytes>)>,
}

impl FrameReader {
    /// A text frame.
    pub fn text(&mut self, t: &str) -> Incoming {
        match t.as_bytes().first() {
            Some(b'2') => Incoming::Ping,
            Some(b'1') => Incoming::Close,
            Some(b'4') => match packet::decode(&t[1..]) {
                Ok(p) if p.attachments > 0 => {
                    self.partial = Some((p, Vec::new()));
                    Incoming::Nothing
                }
                Ok(p) => Self::complete(p, Vec::new()),
                Err(e) => {
                    tracing::warn!(error = %e, "dropping malformed packet");
                    Incoming::Nothing
                }
            },
            _ => Incoming::Nothing,
        }
    }

    /// A binary frame.
    pub fn binary(&mut self, b: Bytes) -> Incoming {
        match self.partial.take() {
            Some((p, mut bins)) => {
                bins.push(b);
                if bins.len() == p.attachments {
                    Self::complete(p, bins)
                } else {
                    self.partial = Some((p, bins));
                    Incoming::Nothing
                }
            }
            None => Incoming::Nothing,
        }
    }

    /// A packet with all its attachments.
    fn complete(mut p: packet::Packet, bins: Vec<Bytes>) -> Incoming {
        let filled = packet::fill_placeholders(&mut p.data, &mut |n| {
            // A marker string stands for the bytes until the typed decode takes them.
            bins.get(n as usize)
                .map(|_| Value::String(format!("\u{0}bin:{n}")))
        });
        if filled.is_err() {
            return Incoming::Nothing;
        }
        match p.kind {
            PacketType::Ack | PacketType::BinaryAck => {
                let first = match p.data {
                    Value::Array(mut items) if !items.is_empty() => items.swap_remove(0),
                    other => other,
                };
                Incoming::Ack(p.id, first)
            }
            PacketType::Event | PacketType::BinaryEvent => {
                Incoming::Event(decode_event(p.data, &bins))
            }
            PacketType::Disconnect => Incoming::Close,
            _ => Incoming::Nothing,
        }
    }
}

/// An acknowledgement's first argument as `T` when it says `ok: true`, else as the
/// error it carries.
pub fn decode_ack<T: DeserializeOwned>(ack: Value) -> Result<Acked<T>, ClientError> {
    if ack.get("ok") == Some(&Value::Bool(true)) {
        serde_json::from_value(ack)
            .map(Ok)
            .map_err(|e| ClientError::Payload(e.to_string()))
    } else {
        let error = ack.get("error").cloned().unwrap_or(Value::Null);
        serde_json::from_value(error)
            .map(Err)
            .map_err(|e| ClientError::Payload(e.to_string()))
    }
}

/// Takes the binary field `key` (filled as a marker string) out of `obj`.
fn take_binary(obj: &mut Value, key: &str, bins: &[Bytes]) -> Option<Binary> {
    let marker = obj.as_object_mut()?.remove(key)?;
    let n: usize = marker.as_str()?.strip_prefix("\u{0}bin:")?.parse().ok()?;
    bins.get(n).cloned().map(Binary)
}

#[derive(serde::Deserialize)]
struct MsgHeader {
    room: RoomId,
    from: MemberId,
    ts: u64,
    #[serde(default)]
    to: Option<MemberId>,
    #[serde(default)]
    pos: u64,
}

#[derive(serde::Deserialize)]
struct ChunkHeader {
    room: RoomId,
    from: MemberId,
    file: FileId,
    seq: u32,
    #[serde(default)]
    pos: u64,
}

fn decode_event(data: Value, bins: &[Bytes]) -> ServerEvent {
    let Value::Array(mut items) = data else {
        return ServerEvent::Other(String::new(), data);
    };
    if items.is_empty() {
        return ServerEvent::Other(String::new(), Value::Null);
    }
    let name = items.remove(0).as_str().unwrap_or_default().to_owned();
    let mut payload = items.into_iter().next().unwrap_or(Value::Null);
    let decoded = match name.as_str() {
        events::PRESENCE => serde_json::from_value(payload.clone())
            .ok()
            .map(ServerEvent::Presence),
        events::NOTICE => serde_json::from_value(payload.clone())
            .ok()
            .map(ServerEvent::Notice),
        events::MSG => take_binary(&mut payload, "data", bins).and_then(|data| {
            let h: MsgHeader = serde_json::from_value(payload.clone()).ok()?;
            Some(ServerEvent::Msg(MsgEvent {
                room: h.room,
                from: h.from,
                ts: h.ts,
                data,
                to: h.to,
                pos: h.pos,
            }))
        }),
        events::CHUNK => take_binary(&mut payload, "data", bins).and_then(|data| {
            let h: ChunkHeader = serde_json::from_value(payload.clone()).ok()?;
            Some(ServerEvent::Chunk(ChunkEvent {
                room: h.room,
                from: h.from,
                file: h.file,
                seq: h.seq,
                data,
                pos: h.pos,
            }))
        }),
        _ => None,
    };
    decoded.unwrap_or(ServerEvent::Other(name, payload))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Many tasks emitting binary packets on one connection at once (a file's chunk
    /// window does): each packet's attachment must follow its own header, with no other
    /// packet's frame between them, or the server pairs a header with another chunk's bytes.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_binary_packets_keep_their_attachments_together() {
        const PACKETS: usize = 600;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let server = tokio::spawn(async move {
            let (tcp, _) = listener.accept().await.unwrap();
            let mut ws = tokio_tungstenite::accept_async(tcp).await.unwrap();
            ws.send(Message::text(r#"0{"sid":"e","pingInterval":25000}"#))
                .await
                .unwrap();
            assert_eq!(ws.next().await.unwrap().unwrap(), Message::text("40"));
            ws.send(Message::text(r#"40{"sid":"AAAAAAAAAAAAAAAAAAAA"}"#))
                .await
                .unwrap();
            let mut frames = Vec::new();
            while frames.len() < 2 * PACKETS {
                // Slow enough that the client's queue fills and its senders wait.
                tokio::time::sleep(Duration::from_micros(20)).await;
                frames.push(ws.next().await.unwrap().unwrap());
            }
            frames
        });
        let (client, _events) = Client::connect(&url).await.unwrap();
        let client = Arc::new(client);
        let mut tasks = tokio::task::JoinSet::new();
        for i in 0..PACKETS {
            let client = client.clone();
            tasks.spawn(async move {
                let payload = serde_json::json!({ "i": i, "data": packet::placeholder(0) });
                let bytes = Bytes::from(i.to_string().into_bytes());
                client
                    .emit_no_ack("chunk", payload, vec![bytes])
                    .await
                    .unwrap();
            });
        }
        while tasks.join_next().await.is_some() {}
        let frames = server.await.unwrap();
        for pair in frames.chunks(2) {
            let Message::Text(header) = &pair[0] else {
                panic!("a binary frame where a packet header belongs: {pair:?}");
            };
            let p = packet::decode(&header[1..]).unwrap();
            let i = p.data[1]["i"].as_u64().unwrap();
            assert_eq!(
                pair[1],
                Message::binary(Bytes::from(i.to_string().into_bytes())),
                "packet {i}'s header is not followed by its attachment"
            );
        }
    }

    #[test]
    fn websocket_urls() {
        assert_eq!(
            websocket_url("http://127.0.0.1:8000/"),
            "ws://127.0.0.1:8000/socket.io/?EIO=4&transport=websocket"
        );
        assert_eq!(
            websocket_url("https://chat.example/#secret"),
            "wss://chat.example/socket.io/?EIO=4&transport=websocket"
        );
    }
}
