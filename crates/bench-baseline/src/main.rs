//! `socketioxide-baseline`: the benchmark suite's bare socketioxide server
//! (bench/suite.mjs, docs/benchmarks.md). It is socketioxide, StreamChat's vendored,
//! patched copy (vendor/), used through its plain broadcast API,
//! `socket.to(room).emit(…)`, with async handlers as its documentation writes them. It
//! does what bench/node-server.mjs does on Node socket.io, event for event, and nothing
//! more: no limits, no rate buckets, no slow-receiver cut-off, no auth, no validation
//! beyond "is this a string / am I in this room". That file's header lists the events,
//! their payloads and acks; docs/protocol.md is the wire contract they follow.
//!
//! ```text
//! socketioxide-baseline [--host 127.0.0.1] [--port 0]
//! ```
//!
//! Prints `metrics on http://HOST:PORT/metrics`, then `listening on http://HOST:PORT`
//! once it accepts connections. Stops on SIGTERM or SIGINT. `GET /health` answers
//! `{"status":"ok"}`; `GET /metrics` gives three counters in StreamChat's metric names
//! (connections, messages relayed, chunks relayed), also served by a thread of its own
//! on the port printed first, so that the suite can read them while the runtime's
//! worker is saturated (node-server.mjs serves them from a worker thread for the same
//! reason).

use axum::Router;
use axum::http::header::CONTENT_TYPE;
use axum::routing::get;
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use socketioxide::extract::{AckSender, SocketRef, State, TryData};
use socketioxide::handler::ConnectHandler;
use socketioxide::socket::Sid;
use socketioxide::{ParserConfig, SocketIo};
use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{SystemTime, UNIX_EPOCH};

const MIB: usize = 1024 * 1024;
/// The largest chunk the benchmarks send; the transport's largest packet lets it through
/// with its header (node-server.mjs: `maxHttpBufferSize` 1 MiB + 64 KiB).
const MAX_CHUNK_BYTES: usize = MIB;
const LARGEST_PACKET: usize = MAX_CHUNK_BYTES + 64 * 1024;
/// Packets a socket may have queued. socketioxide needs a bound (its default is 128);
/// this is the one the suite gives StreamChat (`--send-buffer-packets 4096`). Node's
/// queue has none.
const QUEUE_PACKETS: usize = 4096;

/// Reported in the join ack only because clients expect the field (the Rust client's
/// `JoinAck` requires it); none is enforced, as in node-server.mjs.
const LIMITS: Limits = Limits {
    max_message_bytes: MAX_CHUNK_BYTES as u64,
    max_chunk_bytes: MAX_CHUNK_BYTES as u64,
    max_file_chunks: u32::MAX as u64,
    max_file_bytes: u32::MAX as u64 * MAX_CHUNK_BYTES as u64,
    max_members_per_room: 1_000_000_000,
};

#[derive(Clone, Copy, Serialize)]
struct Limits {
    max_message_bytes: u64,
    max_chunk_bytes: u64,
    max_file_chunks: u64,
    max_file_bytes: u64,
    max_members_per_room: u64,
}

// ---- requests, acks and events (node-server.mjs's header) ----

#[derive(Deserialize)]
struct JoinRequest {
    room: String,
    profile: String,
}

#[derive(Deserialize)]
struct LeaveRequest {
    room: String,
}

#[derive(Deserialize)]
struct MsgRequest {
    room: String,
    data: Bytes,
    #[serde(default)]
    to: Option<String>,
}

#[derive(Deserialize)]
struct ChunkRequest {
    room: String,
    file: String,
    seq: i64,
    data: Bytes,
}

#[derive(Serialize)]
struct JoinAck<'a> {
    ok: bool,
    member: Sid,
    at: u64,
    members: Vec<&'a Member>,
    limits: Limits,
}

#[derive(Serialize)]
struct MsgAck {
    ok: bool,
    ts: u64,
}

#[derive(Serialize)]
struct OkAck {
    ok: bool,
}

#[derive(Serialize)]
struct ErrorAck {
    ok: bool,
    error: ErrorBody,
}

#[derive(Serialize)]
struct ErrorBody {
    code: &'static str,
    message: &'static str,
}

#[derive(Serialize)]
struct Presence<'a> {
    room: &'a str,
    kind: &'static str,
    member: Sid,
    at: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    profile: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<&'static str>,
}

#[derive(Serialize)]
struct MsgEvent<'a> {
    room: &'a str,
    from: Sid,
    ts: u64,
    data: &'a Bytes,
    #[serde(skip_serializing_if = "Option::is_none")]
    to: Option<&'a str>,
}

#[derive(Serialize)]
struct ChunkEvent<'a> {
    room: &'a str,
    from: Sid,
    file: &'a str,
    seq: i64,
    data: &'a Bytes,
}

// ---- state ----

/// One member of a room, as a join ack lists it.
#[derive(Serialize)]
struct Member {
    member: Sid,
    at: u64,
    profile: String,
}

/// Who is in which room: node-server.mjs's `rooms` map and each socket's `mine` set.
#[derive(Default)]
struct Rooms {
    members: HashMap<String, HashMap<Sid, Member>>,
    joined: HashMap<Sid, Vec<String>>,
}

/// The suite's counters (StreamChat's metric names).
#[derive(Default)]
struct Counters {
    connections: AtomicI64,
    messages: AtomicU64,
    chunks: AtomicU64,
}

impl Counters {
    fn text(&self) -> String {
        format!(
            "streamchat_connections {}\nstreamchat_messages_relayed_total {}\nstreamchat_chunks_relayed_total {}\n",
            self.connections.load(Relaxed),
            self.messages.load(Relaxed),
            self.chunks.load(Relaxed)
        )
    }
}

struct Baseline {
    rooms: Mutex<Rooms>,
    counters: Arc<Counters>,
}

type Shared = Arc<Baseline>;

impl Baseline {
    fn rooms(&self) -> MutexGuard<'_, Rooms> {
        self.rooms.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

fn refuse(ack: AckSender, code: &'static str, message: &'static str) {
    let _ = ack.send(&ErrorAck {
        ok: false,
        error: ErrorBody { code, message },
    });
}

// ---- handlers ----

/// Connect middleware: counts the connection and registers its handlers. A middleware
/// runs before the client is told it is connected; the connect handler proper runs in
/// a task of its own afterwards, and a client that emits `join` at once could reach a
/// socket with no handler yet.
async fn admit(s: SocketRef, State(b): State<Shared>) -> Result<(), Infallible> {
    b.counters.connections.fetch_add(1, Relaxed);
    s.on("join", on_join);
    s.on("leave", on_leave);
    s.on("msg", on_msg);
    s.on("chunk", on_chunk);
    s.on_disconnect(on_disconnect);
    Ok(())
}

async fn on_join(
    s: SocketRef,
    State(b): State<Shared>,
    TryData(req): TryData<JoinRequest>,
    ack: AckSender,
) {
    let Some(JoinRequest { room, profile }) = req.ok().filter(|r| !r.room.is_empty()) else {
        return refuse(ack, "bad_request", "join needs {room, profile}");
    };
    let at = now_ms();
    {
        let mut guard = b.rooms();
        let rooms = &mut *guard;
        let here = rooms.members.entry(room.clone()).or_default();
        if let Some(existing) = here.get(&s.id) {
            let members = here.values().filter(|m| m.member != s.id).collect();
            let _ = ack.send(&JoinAck {
                ok: true,
                member: s.id,
                at: existing.at,
                members,
                limits: LIMITS,
            });
            return;
        }
        // The ack is queued before any event of the room can reach the joiner.
        let _ = ack.send(&JoinAck {
            ok: true,
            member: s.id,
            at,
            members: here.values().collect(),
            limits: LIMITS,
        });
        here.insert(
            s.id,
            Member {
                member: s.id,
                at,
                profile: profile.clone(),
            },
        );
        rooms.joined.entry(s.id).or_default().push(room.clone());
        s.join(room.clone());
    }
    let presence = Presence {
        room: &room,
        kind: "join",
        member: s.id,
        at,
        profile: Some(&profile),
        reason: None,
    };
    let _ = s.to(room.clone()).emit("presence", &presence).await;
}

/// Takes the socket out of the room; the others hear `presence` `leave`. False if it
/// was not in it.
async fn leave_room(s: &SocketRef, b: &Baseline, room: &str, reason: &'static str) -> bool {
    {
        let mut guard = b.rooms();
        let rooms = &mut *guard;
        let Some(here) = rooms.members.get_mut(room) else {
            return false;
        };
        if here.remove(&s.id).is_none() {
            return false;
        }
        if here.is_empty() {
            rooms.members.remove(room);
        }
        if let Some(mine) = rooms.joined.get_mut(&s.id) {
            mine.retain(|r| r != room);
        }
    }
    s.leave(room.to_owned());
    let presence = Presence {
        room,
        kind: "leave",
        member: s.id,
        at: now_ms(),
        profile: None,
        reason: Some(reason),
    };
    let _ = s.to(room.to_owned()).emit("presence", &presence).await;
    true
}

async fn on_leave(
    s: SocketRef,
    State(b): State<Shared>,
    TryData(req): TryData<LeaveRequest>,
    ack: AckSender,
) {
    let Some(LeaveRequest { room }) = req.ok().filter(|r| !r.room.is_empty()) else {
        return refuse(ack, "bad_request", "leave needs {room}");
    };
    if !leave_room(&s, &b, &room, "left").await {
        return refuse(ack, "not_member", "not in this room");
    }
    let _ = ack.send(&OkAck { ok: true });
}

async fn on_msg(
    s: SocketRef,
    io: SocketIo,
    State(b): State<Shared>,
    TryData(req): TryData<MsgRequest>,
    ack: AckSender,
) {
    let Some(MsgRequest { room, data, to }) = req.ok().filter(|r| !r.room.is_empty()) else {
        return refuse(ack, "bad_request", "msg needs {room, data}");
    };
    let direct = {
        let rooms = b.rooms();
        let Some(here) = rooms.members.get(&room).filter(|m| m.contains_key(&s.id)) else {
            return refuse(ack, "not_member", "not in this room");
        };
        match &to {
            None => None,
            Some(to) => match to.parse::<Sid>() {
                Ok(sid) if here.contains_key(&sid) => Some(sid),
                _ => return refuse(ack, "not_member", "no such member"),
            },
        }
    };
    let ts = now_ms();
    let event = MsgEvent {
        room: &room,
        from: s.id,
        ts,
        data: &data,
        to: to.as_deref(),
    };
    match direct {
        Some(sid) => {
            if let Some(receiver) = io.get_socket(sid) {
                let _ = receiver.emit("msg", &event);
            }
        }
        None => {
            let _ = s.to(room.clone()).emit("msg", &event).await;
        }
    }
    b.counters.messages.fetch_add(1, Relaxed);
    let _ = ack.send(&MsgAck { ok: true, ts });
}

async fn on_chunk(
    s: SocketRef,
    State(b): State<Shared>,
    TryData(req): TryData<ChunkRequest>,
    ack: AckSender,
) {
    let Some(ChunkRequest {
        room,
        file,
        seq,
        data,
    }) = req
        .ok()
        .filter(|r| !r.room.is_empty() && !r.file.is_empty())
    else {
        return refuse(ack, "bad_request", "chunk needs {room, file, seq, data}");
    };
    let member = b
        .rooms()
        .members
        .get(&room)
        .is_some_and(|m| m.contains_key(&s.id));
    if !member {
        return refuse(ack, "not_member", "not in this room");
    }
    let event = ChunkEvent {
        room: &room,
        from: s.id,
        file: &file,
        seq,
        data: &data,
    };
    let _ = s.to(room.clone()).emit("chunk", &event).await;
    b.counters.chunks.fetch_add(1, Relaxed);
    let _ = ack.send(&OkAck { ok: true });
}

async fn on_disconnect(s: SocketRef, State(b): State<Shared>) {
    b.counters.connections.fetch_sub(1, Relaxed);
    let mine = b.rooms().joined.remove(&s.id).unwrap_or_default();
    for room in mine {
        leave_room(&s, &b, &room, "disconnected").await;
    }
}

// ---- HTTP ----

fn metrics_router(counters: Arc<Counters>) -> Router {
    Router::new().route(
        "/metrics",
        get(move || {
            let counters = counters.clone();
            async move {
                (
                    [(CONTENT_TYPE, "text/plain; version=0.0.4")],
                    counters.text(),
                )
            }
        }),
    )
}

/// The counters on a port of their own, served by a thread with a runtime of its own.
fn serve_metrics(listener: std::net::TcpListener, counters: Arc<Counters>) {
    let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    else {
        return;
    };
    runtime.block_on(async move {
        if let Ok(listener) = tokio::net::TcpListener::from_std(listener) {
            let _ = axum::serve(listener, metrics_router(counters)).await;
        }
    });
}

fn arg(name: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    let i = args.iter().position(|a| a == name)?;
    args.get(i + 1).cloned()
}

async fn stopped() {
    use tokio::signal::unix::{SignalKind, signal};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
        }
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

// The two lines on stdout are this program's interface: the suite waits for them.
#[allow(clippy::print_stdout)]
#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let host = arg("--host").unwrap_or_else(|| "127.0.0.1".to_owned());
    let port: u16 = arg("--port").map_or(Ok(0), |p| p.parse())?;
    let counters = Arc::new(Counters::default());

    let metrics_listener = std::net::TcpListener::bind((host.as_str(), 0))?;
    metrics_listener.set_nonblocking(true)?;
    let metrics_addr = metrics_listener.local_addr()?;
    let for_thread = counters.clone();
    std::thread::Builder::new()
        .name("metrics".to_owned())
        .spawn(move || serve_metrics(metrics_listener, for_thread))?;

    let baseline: Shared = Arc::new(Baseline {
        rooms: Mutex::default(),
        counters: counters.clone(),
    });
    let (layer, io) = SocketIo::builder()
        .max_buffer_size(QUEUE_PACKETS)
        .max_payload(LARGEST_PACKET as u64)
        .ws_max_message_size(LARGEST_PACKET)
        .ws_max_frame_size(LARGEST_PACKET)
        .with_parser(ParserConfig::common().max_incoming_binary_buf_size(LARGEST_PACKET))
        .with_state(baseline)
        .build_layer();
    io.ns("/", (async |_: SocketRef| {}).with(admit));

    let app = metrics_router(counters)
        .route(
            "/health",
            get(async || ([(CONTENT_TYPE, "application/json")], r#"{"status":"ok"}"#)),
        )
        .layer(layer);
    let listener = tokio::net::TcpListener::bind((host.as_str(), port)).await?;
    let addr = listener.local_addr()?;
    println!("metrics on http://{metrics_addr}/metrics");
    println!("listening on http://{addr}");
    tokio::select! {
        served = axum::serve(listener, app) => served?,
        () = stopped() => {}
    }
    Ok(())
}
