//! Socket.IO handlers: admission, `join`, `leave`, `msg`, `chunk` and disconnect.
//!
//! Each handler parses its payload into the protocol's types (a failure is a
//! `bad_request`, never a dropped connection), checks membership, size and rate, then
//! hands the sealed bytes to the room registry for delivery. Nothing here looks inside
//! `data` or `profile`: they are opaque sealed bytes.

use crate::cluster::{BusEvent, LogOp, LogOutcome, Placed, RoomEvent};
use crate::connection::{Connection, ConnectionRef, Reserve};
use crate::error::RequestError;
use crate::limits::Cost;
use crate::log::{DedupKey, Kind};
use crate::relay::{
    Audience, Delivery, JoinRefused, LocalMember, LogMeta, LoggedResumeError, ResumeError,
    new_token, now_millis,
};
use crate::state::AppState;
use serde::Serialize;
use serde::de::DeserializeOwned;
use socketioxide::adapter::LocalAdapter;
use socketioxide::extract::{AckSender, SocketRef, State, TryData};
use socketioxide::handler::{ConnectHandler, FromMessageParts, MessageHandler, Value};
use socketioxide::socket::{DisconnectReason, Socket};
use socketioxide::{ParserError, SendError, SocketError, SocketIo};
use std::convert::Infallible;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use streamchat_protocol::{
    ChunkEvent, ChunkRequest, JoinAck, JoinRequest, LeaveReason, LeaveRequest, LogPlace, MemberId,
    MemberInfo, MsgAck, MsgEvent, MsgRequest, Notice, OkAck, PresenceEvent, ResumeAck,
    ResumeRequest, RoomId, events,
};
use tracing::{debug, info};

/// Registers the handlers on the default namespace.
pub fn register(io: &SocketIo) {
    io.ns("/", on_connect.with(admit));
}

/// Why a connection was refused at the door; the client sees it in `connect_error`.
#[derive(Debug, thiserror::Error)]
enum Refusal {
    #[error("unavailable: the server is shutting down")]
    ShuttingDown,
}

fn peer_ip(s: &SocketRef, state: &AppState) -> IpAddr {
    state.sessions.client_ip(s.req_parts())
}

/// What socket.io-client sends in its CONNECT packet when it tries to recover its
/// connection state: the pid of its last connection and the last offset it received.
#[derive(Debug, serde::Deserialize)]
struct RecoveryAuth {
    pid: String,
    #[serde(default)]
    offset: Option<String>,
}

/// Connect middleware: counts the address and refuses it above its limit; notes a
/// Socket.IO connection state recovery to do once connected.
async fn admit(
    s: SocketRef,
    State(state): State<AppState>,
    TryData(auth): TryData<RecoveryAuth>,
) -> Result<(), Refusal> {
    if state.is_shutting_down() {
        return Err(Refusal::ShuttingDown);
    }
    // The address was counted at the Engine.IO handshake (`sessions.rs`).
    // A recovery keeps its pid (the client checks it is the same); anything else gets a
    // fresh one. Whether the recovery succeeds is settled once connected (`on_connect`).
    // Only a member that is away can be taken back: a pid whose member still holds a
    // live connection (a half-open one the server has not noticed) gets a fresh pid, so
    // `socket.recovered` is false and the client resumes by token.
    let recovering = auth.ok().and_then(|a| {
        let room = state.rooms.recovery_room(&a.pid)?;
        state.rooms.recoverable(&room, &a.pid)?;
        let offset = a.offset.and_then(|o| o.parse::<u64>().ok());
        Some((Arc::<str>::from(a.pid), room, offset))
    });
    let pid = match &recovering {
        Some((pid, ..)) => pid.clone(),
        None => Arc::from(new_token()),
    };
    s.extensions
        .insert(socketioxide::socket::RecoveryPid(pid.to_string()));
    let conn = Connection::new(member_id(&s), pid, &state.config);
    *conn.recovering.lock() = recovering.map(|(_, room, offset)| (room, offset));
    s.extensions.insert::<ConnectionRef>(Arc::new(conn));
    state.metrics.connections.inc();
    // Handlers are registered here, before the client is told it is connected: the
    // connect handler proper runs in a task of its own, and a client that emits at once
    // could otherwise reach a socket with no handlers and never get its ack.
    s.on(events::JOIN, on_join);
    s.on(events::RESUME, on_resume);
    s.on(events::LEAVE, InOrder::new(leave));
    s.on(events::MSG, InOrder::new(msg));
    s.on(events::CHUNK, InOrder::new(chunk));
    s.on_fallback(on_unknown);
    s.on_disconnect(on_disconnect);
    Ok(())
}

async fn on_connect(s: SocketRef, State(state): State<AppState>) {
    if state.config.log_ips {
        debug!(sid = %s.id, ip = %peer_ip(&s, &state), "connected");
    } else {
        debug!(sid = %s.id, "connected");
    }
    start_recovery(&s, &state);
}

/// Starts the connection's Socket.IO recovery, if it asked for one and nobody started it
/// yet. Called once the CONNECT packet is out: by the connect handler, or by the first
/// `msg`, `chunk` or `leave` if that overtakes the handler (the connect handler runs on
/// a task of its own; a client sends as soon as it reads CONNECT), so the request finds
/// its member back rather than `not_member`.
fn start_recovery(s: &SocketRef, state: &AppState) {
    let Ok(conn) = connection(s) else {
        return;
    };
    // Held while the recovery runs: a `msg` that overtook the connect handler (or the
    // handler, if the `msg` came first) waits here until the member is back, rather than
    // finding the recovery taken but not yet done and acking `not_member` (seen once in
    // tests/node/reliability.test.mjs under load). On one node `recover` is synchronous;
    // in a cluster it hands the resume to a task and returns.
    let mut recovering = conn.recovering.lock();
    if let Some((room, offset)) = recovering.take() {
        recover(s, state, &conn, &room, offset);
    }
}

/// Socket.IO connection state recovery, once the CONNECT packet (with the same pid) is
/// out: the member gets what it missed after `offset`, then live traffic. Should the
/// member have gone meanwhile (its grace ran out in these milliseconds), the client is
/// told with a `notice` `resume_failed` and joins again.
fn recover(
    s: &SocketRef,
    state: &AppState,
    conn: &ConnectionRef,
    room: &RoomId,
    offset: Option<u64>,
) {
    if state.cluster.logged() {
        let Some((member, token, joined)) = state.rooms.recoverable(room, &conn.recovery_pid)
        else {
            refuse_recovery(s, state);
            return;
        };
        let req = ResumeRequest {
            room: room.clone(),
            member,
            token,
            epoch: state
                .rooms
                .hint(room)
                .epoch
                .map(|e| e.to_string())
                .unwrap_or_default(),
            pos: offset.unwrap_or(joined),
        };
        let (s, state, conn) = (s.clone(), state.clone(), conn.clone());
        tokio::spawn(async move {
            // The client does not hear of a new token here: it keeps the one it has.
            if resume_logged(&s, &state, &conn, req, true, &mut None)
                .await
                .is_err()
            {
                refuse_recovery(&s, &state);
            }
        });
        return;
    }
    let outcome = state
        .rooms
        .recover(room, &conn.recovery_pid, offset, s, |member| {
            conn.adopt_member(member) && conn.reserve_room(room, usize::MAX) != Reserve::TooMany
        });
    match outcome {
        Ok(resumed) => after_resume(state, room, resumed),
        Err(_) => refuse_recovery(s, state),
    }
}

/// A Socket.IO recovery that found no member to take back: the client is told, and
/// joins again.
fn refuse_recovery(s: &SocketRef, state: &AppState) {
    state.metrics.resumes_refused.inc();
    let notice = Notice {
        code: RequestError::UnknownSession.code().as_str().into(),
        message: RequestError::UnknownSession.to_string(),
    };
    let _ = s.emit(events::NOTICE, &notice);
}

/// What follows a member's return on a new connection: metrics, the old connection
/// let go of the room, `back` to the other nodes.
fn after_resume(state: &AppState, room: &RoomId, resumed: crate::relay::Resumed) {
    // The connection that held the member before (a half-open one the server had not
    // noticed yet) no longer holds this room.
    if let Some(previous) = &resumed.previous
        && let Some(old) = previous.extensions.get::<ConnectionRef>()
    {
        old.release_room(room);
    }
    state.metrics.resumes.inc();
    state.metrics.replayed_events.inc_by(resumed.replayed);
    count_delivery(state, &resumed.delivery, 0);
    cut_off_slow(state, resumed.delivery);
}

/// The ack of the current event, and whether the client asked for one: an ack-less
/// event's error goes out as a `notice` instead, so it is never silent.
struct Reply {
    ack: AckSender,
    wants_ack: bool,
}

impl FromMessageParts<LocalAdapter> for Reply {
    type Error = Infallible;
    fn from_message_parts(
        s: &Arc<Socket<LocalAdapter>>,
        v: &mut Value,
        ack_id: &Option<i64>,
    ) -> Result<Self, Infallible> {
        let ack = AckSender::from_message_parts(s, v, ack_id)?;
        Ok(Self {
            ack,
            wants_ack: ack_id.is_some(),
        })
    }
}

impl Reply {
    fn send<T: Serialize>(self, s: &SocketRef, state: &AppState, result: Result<T, RequestError>) {
        let answered = match result {
            Ok(ok) => self.ack.send(&ok),
            Err(e) => {
                state.metrics.reject(e.code());
                debug!(sid = %s.id, code = %e.code(), "request refused");
                if self.wants_ack {
                    self.ack.send(&e.to_ack())
                } else {
                    let notice = Notice {
                        code: e.code().as_str().into(),
                        message: e.to_string(),
                    };
                    s.emit(events::NOTICE, &notice)
                }
            }
        };
        // No answer is ever dropped silently: a client whose queue is too full for its
        // own answer (it sends faster than it reads) is cut off like a slow receiver.
        // A closed socket needs nothing: its disconnect is under way.
        if let Err(SendError::Socket(SocketError::InternalChannelFull)) = answered {
            cut_off_slow(
                state,
                Delivery {
                    slow: vec![s.clone()],
                    ..Delivery::default()
                },
            );
        }
    }
}

/// Events with no handler: answered `bad_request`, so a client never waits for an ack
/// that cannot come.
async fn on_unknown(s: SocketRef, reply: Reply, State(state): State<AppState>) {
    reply.send::<()>(
        &s,
        &state,
        Err(RequestError::Malformed("unknown event".into())),
    );
}

/// Why a member's room was not there when its event was delivered: shutdown emptied
/// it, or the member left (a race with its own `leave` or a cut-off).
fn gone(state: &AppState) -> RequestError {
    if state.is_shutting_down() {
        RequestError::ShuttingDown
    } else {
        RequestError::NotMember
    }
}

/// A handler that runs where the packet is read, before the next packet of the same
/// connection: one connection's events are handled in the order they arrived.
///
/// socketioxide spawns a task per event for `async fn` handlers, which lets a client's
/// pipelined messages overtake each other (and spend rate tokens out of order). `msg`,
/// `chunk` and `leave` never wait, so they run here instead; `join` may wait on the
/// cluster store and stays an async handler (clients wait for its ack before sending).
struct InOrder<T, R> {
    handle: RequestFn<T, R>,
}

/// A request handler that never waits: payload in, ack or refusal out; or, having taken
/// the reply (to answer once the cluster's log has placed the event), `Ok(None)`.
type RequestFn<T, R> = fn(
    &SocketRef,
    &AppState,
    Result<T, ParserError>,
    &mut Option<Reply>,
) -> Result<Option<R>, RequestError>;

impl<T, R> InOrder<T, R> {
    fn new(handle: RequestFn<T, R>) -> Self {
        Self { handle }
    }
}

impl<T, R> MessageHandler<LocalAdapter, (InOrderMarker, T, R)> for InOrder<T, R>
where
    T: DeserializeOwned + Send + Sync + 'static,
    R: Serialize + Send + Sync + 'static,
{
    fn call(&self, s: Arc<Socket<LocalAdapter>>, mut v: Value, ack_id: Option<i64>) {
        let Ok(State(state)) = State::<AppState>::from_message_parts(&s, &mut v, &ack_id) else {
            // The state is installed when the server is built; it cannot be missing.
            return;
        };
        let Ok(reply) = Reply::from_message_parts(&s, &mut v, &ack_id);
        let Ok(TryData(data)) = TryData::<T>::from_message_parts(&s, &mut v, &ack_id);
        let s = SocketRef::from(s);
        start_recovery(&s, &state);
        let mut reply = Some(reply);
        let result = (self.handle)(&s, &state, data, &mut reply);
        if let Some(reply) = reply {
            match result {
                Ok(Some(ok)) => reply.send(&s, &state, Ok(ok)),
                Ok(None) => {}
                Err(e) => reply.send::<R>(&s, &state, Err(e)),
            }
        }
    }
}

/// Marks `InOrder`'s `MessageHandler` implementation apart from socketioxide's own.
#[derive(Debug)]
enum InOrderMarker {}

fn connection(s: &SocketRef) -> Result<ConnectionRef, RequestError> {
    // Every admitted socket has one (see `admit`); only a shutdown race can miss it.
    s.extensions
        .get::<ConnectionRef>()
        .ok_or(RequestError::ShuttingDown)
}

fn member_id(s: &SocketRef) -> MemberId {
    // A Socket.IO id is 16 base64 characters, inside MemberId's 1..=64 bytes.
    MemberId::new(s.id.to_string()).unwrap_or_else(|_| unreachable!("sid is 16 characters"))
}

fn parsed<T>(data: Result<T, ParserError>) -> Result<T, RequestError> {
    data.map_err(|e| RequestError::Malformed(e.to_string()))
}

fn is_base64url(s: &str) -> bool {
    s.bytes()
        .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_')
}

/// Cuts off receivers whose queue was full; their rooms hear `leave` with `timeout`.
///
/// A full queue cannot carry the disconnect packet, and socketioxide offers no other way
/// to close a socket from the server, so the cut-off happens in two steps: at once, the
/// receiver leaves every room (its rooms hear `leave`/`timeout` and it gets nothing
/// more, so it costs no more memory than its full queue); then the disconnect is retried
/// until a slot frees up or the transport closes (the heartbeat closes a connection that
/// never reads within `ping_interval + ping_timeout`).
pub(crate) fn cut_off_slow(state: &AppState, delivery: Delivery) {
    // Departures can find more slow receivers: work through them all.
    let mut slow = delivery.slow;
    while let Some(socket) = slow.pop() {
        if state.is_shutting_down() {
            continue;
        }
        let Some(conn) = socket.extensions.get::<ConnectionRef>() else {
            continue;
        };
        if !conn.mark_slow() {
            continue; // already being cut off
        }
        state.metrics.slow_receiver_disconnects.inc();
        info!(sid = %socket.id, "receiver too slow: cutting it off");
        let member = conn.member();
        for room in conn.take_rooms() {
            if state.cluster.logged() {
                // Its leave goes through the log; deliveries there cut off their own.
                depart_logged(state, &room, &member, LeaveReason::Timeout);
            } else if let Some(more) =
                depart_collecting(state, &room, &member, LeaveReason::Timeout)
            {
                slow.extend(more);
            }
        }
        // Its queue is full: nothing more can be queued for it, not even a DISCONNECT
        // packet. Its connection is closed under it, which also frees the kernel's
        // buffers held for it.
        socket.cut_off();
    }
}

pub(crate) fn count_delivery(state: &AppState, delivery: &Delivery, bytes: usize) {
    state.metrics.deliveries.inc_by(delivery.delivered);
    state
        .metrics
        .bytes_relayed
        .inc_by(delivery.delivered * bytes as u64);
}

async fn on_join(
    s: SocketRef,
    TryData(data): TryData<JoinRequest>,
    reply: Reply,
    State(state): State<AppState>,
) {
    // The ack is sent from inside the room lock on success, so that it reaches the
    // joiner before any event of the room; on failure it is sent here.
    let mut reply = Some(reply);
    let result = join(&s, &state, data, &mut reply).await;
    if let (Some(reply), Err(e)) = (reply, result) {
        reply.send::<()>(&s, &state, Err(e));
    }
}

async fn join(
    s: &SocketRef,
    state: &AppState,
    data: Result<JoinRequest, ParserError>,
    reply: &mut Option<Reply>,
) -> Result<(), RequestError> {
    let req = parsed(data)?;
    if state.is_shutting_down() {
        return Err(RequestError::ShuttingDown);
    }
    let max = state.config.max_profile_bytes;
    if req.profile.len() > max {
        return Err(RequestError::ProfileTooLarge {
            size: req.profile.len(),
            max,
        });
    }
    if req.profile.is_empty() || !is_base64url(&req.profile) {
        return Err(RequestError::ProfileNotBase64Url);
    }
    let conn = connection(s)?;
    let member = conn.member();
    match conn.reserve_room(&req.room, state.config.max_rooms_per_connection) {
        Reserve::Reserved => {}
        Reserve::TooMany => {
            return Err(RequestError::TooManyRooms(
                state.config.max_rooms_per_connection,
            ));
        }
        Reserve::AlreadyIn => {
            already_in(s, state, &req.room, member, reply);
            return Ok(());
        }
    }
    if state.cluster.logged() {
        return join_logged(s, state, &conn, req, reply).await;
    }
    let room = req.room;
    let max_members = state.config.max_members_per_room;
    let at = now_millis();
    let info = MemberInfo {
        member: member.clone(),
        at,
        profile: req.profile,
    };
    let profile: Arc<str> = Arc::from(info.profile.as_str());
    let token = new_token();
    let joiner = new_joiner(s, state, &conn, &member, at, profile.clone(), &token);
    let joined = state.rooms.join(
        &room,
        joiner,
        max_members,
        req.since.as_ref(),
        |view| send_join_ack(s, state, reply, &member, at, token, view),
        |_, pos| PresenceEvent::Join {
            room: room.clone(),
            member: member.clone(),
            at,
            profile: info.profile.clone(),
            pos,
        },
    );
    let delivery = match joined {
        Ok(delivery) => delivery,
        Err(JoinRefused::AlreadyIn) => {
            already_in(s, state, &room, member, reply);
            return Ok(());
        }
        Err(JoinRefused::Full) => {
            conn.release_room(&room);
            return Err(RequestError::RoomFull(max_members));
        }
    };
    state.metrics.members.inc();
    state.metrics.rooms.set(state.rooms.room_count() as i64);
    count_delivery(state, &delivery, 0);
    cut_off_slow(state, delivery);
    if !conn.in_room(&room) {
        // A `leave` of this connection ran while the join was on its way (joins run
        // concurrently; leaves in order): it found nobody to remove, so the member
        // leaves now, after its join, and everyone sees both in order.
        depart(state, &room, &member, LeaveReason::Left);
    }
    Ok(())
}

/// A joiner on this connection, not yet placed.
fn new_joiner(
    s: &SocketRef,
    state: &AppState,
    conn: &ConnectionRef,
    member: &MemberId,
    at: u64,
    profile: Arc<str>,
    token: &str,
) -> LocalMember {
    LocalMember {
        id: member.clone(),
        socket: Some(s.clone()),
        at,
        profile,
        token: token.to_owned(),
        away: None,
        joined_pos: 0,
        // A Socket.IO offset names one position: only a one-room connection recovers.
        recovery: if conn.room_count() == 1 {
            Some(conn.recovery_pid.clone())
        } else {
            state.rooms.disable_recovery(&conn.recovery_pid);
            None
        },
    }
}

/// The `resume` ack, queued from inside the room lock, before the replay.
fn send_resume_ack(
    s: &SocketRef,
    state: &AppState,
    reply: &mut Option<Reply>,
    view: crate::relay::ResumeView,
) {
    if view.missed.is_some() {
        state.metrics.gaps.inc();
    }
    if let Some(reply) = reply.take() {
        let ack = ResumeAck {
            ok: true,
            member: view.member,
            at: view.at,
            token: view.token,
            epoch: view.epoch.to_string(),
            pos: view.pos,
            replayed: view.replayed,
            missed: view.missed,
            limits: state.limits,
        };
        reply.send(s, state, Ok(ack));
    }
}

/// The `join` ack of an admitted joiner, queued from inside the room lock, before any
/// event of the room reaches it.
fn send_join_ack(
    s: &SocketRef,
    state: &AppState,
    reply: &mut Option<Reply>,
    member: &MemberId,
    at: u64,
    token: String,
    view: crate::relay::JoinView,
) {
    if view.missed.is_some_and(|m| m.messages > 0 || !m.exact) {
        state.metrics.gaps.inc();
    }
    if let Some(reply) = reply.take() {
        let ack = JoinAck {
            ok: true,
            member: member.clone(),
            at,
            members: view.members,
            limits: state.limits,
            epoch: view.epoch.to_string(),
            pos: view.pos,
            token,
            grace_ms: state.config.resume_grace_secs * 1000,
            window_ms: state.config.resume_window_secs * 1000,
            missed: view.missed,
        };
        reply.send(s, state, Ok(ack));
    }
}

async fn on_resume(
    s: SocketRef,
    TryData(data): TryData<ResumeRequest>,
    reply: Reply,
    State(state): State<AppState>,
) {
    // Like a join's, the ack is sent inside the room lock, before the replay.
    let mut reply = Some(reply);
    let result = if state.cluster.logged() {
        match (parsed(data), connection(&s)) {
            (Ok(req), Ok(conn)) if !state.is_shutting_down() => {
                resume_logged(&s, &state, &conn, req, false, &mut reply).await
            }
            (Err(e), _) | (_, Err(e)) => Err(e),
            _ => Err(RequestError::ShuttingDown),
        }
    } else {
        resume(&s, &state, data, &mut reply)
    };
    if let Err(RequestError::UnknownSession) = &result {
        state.metrics.resumes_refused.inc();
    }
    if let (Some(reply), Err(e)) = (reply, result) {
        reply.send::<()>(&s, &state, Err(e));
    }
}

/// Resumes a member's session in one room on this connection (docs/protocol.md,
/// "Resumable sessions").
fn resume(
    s: &SocketRef,
    state: &AppState,
    data: Result<ResumeRequest, ParserError>,
    reply: &mut Option<Reply>,
) -> Result<(), RequestError> {
    let req = parsed(data)?;
    if state.is_shutting_down() {
        return Err(RequestError::ShuttingDown);
    }
    let conn = connection(s)?;
    let place = LogPlace {
        epoch: req.epoch,
        pos: req.pos,
    };
    let outcome = state.rooms.resume(
        &req.room,
        &req.member,
        &req.token,
        &place,
        s,
        // The connection takes the member id, and the room, before the ack goes out.
        |member| {
            conn.adopt_member(member)
                && conn.reserve_room(&req.room, usize::MAX) != Reserve::TooMany
        },
        |view| send_resume_ack(s, state, reply, view),
    );
    let resumed = match outcome {
        Ok(r) => r,
        Err(ResumeError::UnknownSession) => return Err(RequestError::UnknownSession),
        Err(ResumeError::OtherMember) => return Err(RequestError::ResumeAfterJoin),
        Err(ResumeError::FuturePosition) => {
            return Err(RequestError::FuturePosition {
                pos: place.pos,
                last: state.rooms.last_pos(&req.room),
            });
        }
    };
    after_resume(state, &req.room, resumed);
    Ok(())
}

/// The answer to a join of a room the connection is already in: the same as the first
/// time, and nobody is told again.
fn already_in(
    s: &SocketRef,
    state: &AppState,
    room: &RoomId,
    member: MemberId,
    reply: &mut Option<Reply>,
) {
    let all = state.rooms.members(room);
    let at = all.iter().find(|m| m.member == member).map_or(0, |m| m.at);
    let members = all.into_iter().filter(|m| m.member != member).collect();
    // The session it has: the same connection asked, so it may hear its token again.
    let (epoch, pos, token) = state
        .rooms
        .session(room, &member)
        .map_or((String::new(), 0, String::new()), |(e, p, t)| {
            (e.to_string(), p, t)
        });
    let ack = JoinAck {
        ok: true,
        member,
        at,
        members,
        limits: state.limits,
        epoch,
        pos,
        token,
        grace_ms: state.config.resume_grace_secs * 1000,
        window_ms: state.config.resume_window_secs * 1000,
        missed: None,
    };
    if let Some(reply) = reply.take() {
        reply.send(s, state, Ok(ack));
    }
}

/// Takes a member out of a room and tells the others why. False if it was not there.
/// The cluster store hears of it in the background, so this never waits.
pub(crate) fn depart(
    state: &AppState,
    room: &RoomId,
    member: &MemberId,
    reason: LeaveReason,
) -> bool {
    if state.cluster.logged() {
        return depart_logged(state, room, member, reason);
    }
    match depart_collecting(state, room, member, reason) {
        Some(slow) => {
            cut_off_slow(
                state,
                Delivery {
                    slow,
                    ..Delivery::default()
                },
            );
            true
        }
        None => false,
    }
}

/// `depart`, returning the receivers found too slow instead of cutting them off.
fn depart_collecting(
    state: &AppState,
    room: &RoomId,
    member: &MemberId,
    reason: LeaveReason,
) -> Option<Vec<SocketRef>> {
    let at = now_millis();
    let removed = state
        .rooms
        .remove(room, member, |_, pos| PresenceEvent::Leave {
            room: room.clone(),
            member: member.clone(),
            at,
            reason,
            pos,
        });
    let removal = removed?;
    Some(announce_departure(state, removal))
}

/// What follows a member's removal from a room: metrics; the receivers found too slow.
fn announce_departure(state: &AppState, removal: crate::relay::Removal) -> Vec<SocketRef> {
    state.metrics.members.dec();
    state.metrics.rooms.set(state.rooms.room_count() as i64);
    count_delivery(state, &removal.delivery, 0);
    removal.delivery.slow
}

/// A member's connection dropped: within the grace it stays a member, away, and the
/// others hear `away`; when the grace runs out without a resume, it leaves with the time
/// and reason of its drop. With no grace configured it leaves at once.
fn go_away(state: &AppState, s: &SocketRef, room: &RoomId, member: &MemberId, reason: LeaveReason) {
    let grace = state.config.resume_grace_secs;
    if grace == 0 {
        depart(state, room, member, reason);
        return;
    }
    if state.cluster.logged() {
        go_away_logged(state, s, room, member, reason);
        return;
    }
    let Some((delivery, away)) = state.rooms.set_away(room, member, s, reason) else {
        return; // resumed elsewhere already, or not here
    };
    count_delivery(state, &delivery, 0);
    let generation = away.generation;
    cut_off_slow(state, delivery);
    let state = state.clone();
    let room = room.clone();
    let member = member.clone();
    tokio::spawn(async move {
        tokio::time::sleep(std::time::Duration::from_secs(grace)).await;
        if let Some(removal) = state.rooms.expire(&room, &member, generation) {
            let slow = announce_departure(&state, removal);
            cut_off_slow(
                &state,
                Delivery {
                    slow,
                    ..Delivery::default()
                },
            );
        }
    });
}

fn leave(
    s: &SocketRef,
    state: &AppState,
    data: Result<LeaveRequest, ParserError>,
    _reply: &mut Option<Reply>,
) -> Result<Option<OkAck>, RequestError> {
    let req = parsed(data)?;
    let conn = connection(s)?;
    if !conn.release_room(&req.room) {
        return Err(RequestError::NotMember);
    }
    depart(state, &req.room, &conn.member(), LeaveReason::Left);
    Ok(Some(OkAck::OK))
}

/// The sender's connection, if it may send to `room` now: the server is not shutting
/// down and the connection is a member.
fn sender_in(
    s: &SocketRef,
    state: &AppState,
    room: &RoomId,
) -> Result<ConnectionRef, RequestError> {
    if state.is_shutting_down() {
        return Err(RequestError::ShuttingDown);
    }
    let conn = connection(s)?;
    if conn.in_room(room) {
        Ok(conn)
    } else {
        Err(RequestError::NotMember)
    }
}

fn msg(
    s: &SocketRef,
    state: &AppState,
    data: Result<MsgRequest, ParserError>,
    reply: &mut Option<Reply>,
) -> Result<Option<MsgAck>, RequestError> {
    let req = parsed(data)?;
    let conn = sender_in(s, state, &req.room)?;
    let size = req.data.len();
    let max = state.config.max_message_bytes;
    if size > max {
        return Err(RequestError::MessageTooLarge { size, max });
    }
    if !conn.try_spend(Cost {
        messages: 1,
        bytes: size as u64,
    }) {
        return Err(RequestError::RateLimited);
    }
    let from = conn.member();
    let dedup = match req.id.as_deref() {
        None => None,
        Some(id) if !id.is_empty() && id.len() <= 64 && is_base64url(id) => {
            Some(DedupKey::Msg(from.clone(), id.into()))
        }
        Some(_) => return Err(RequestError::BadMessageId),
    };
    if let Some(to) = &req.to
        && (to == &from || !state.rooms.contains(&req.room, to))
    {
        return Err(RequestError::RecipientNotMember);
    }
    if state.cluster.logged()
        && let Some(reply) = reply.take()
    {
        let event = RoomEvent::Msg(MsgEvent {
            room: req.room.clone(),
            from: from.clone(),
            ts: 0,
            data: req.data,
            to: req.to,
            pos: 0,
        });
        // Without a client id there is nothing to recognise a resend by.
        let key = req.id.as_ref().map(|id| format!("m:{from}:{id}"));
        log_sent(s, state, &req.room, event, key, reply, |st, s, reply, p| {
            let ack = MsgAck {
                ok: true,
                ts: p.ts,
                pos: p.pos,
                duplicate: p.duplicate,
            };
            reply.send(&s, st, Ok(ack));
        });
        return Ok(None);
    }
    let audience = match &req.to {
        Some(to) => Audience::Only(to),
        None => Audience::AllExcept(&from),
    };
    let kind = if dedup.is_some() {
        Kind::Msg
    } else {
        Kind::Signal
    };
    let meta = LogMeta::sent(kind, &from, size, dedup);
    let delivered = state
        .rooms
        .deliver(&req.room, events::MSG, audience, meta, |ts, pos| MsgEvent {
            room: req.room.clone(),
            from: from.clone(),
            ts,
            data: req.data.clone(),
            to: req.to.clone(),
            pos,
        });
    let Some(delivery) = delivered else {
        return Err(gone(state));
    };
    let (ts, pos, duplicate) = (delivery.ts, delivery.pos, delivery.duplicate);
    if duplicate {
        state.metrics.duplicates_dropped.inc();
    } else {
        state.metrics.messages_relayed.inc();
    }
    count_delivery(state, &delivery, size);
    cut_off_slow(state, delivery);
    Ok(Some(MsgAck {
        ok: true,
        ts,
        pos,
        duplicate,
    }))
}

fn chunk(
    s: &SocketRef,
    state: &AppState,
    data: Result<ChunkRequest, ParserError>,
    reply: &mut Option<Reply>,
) -> Result<Option<OkAck>, RequestError> {
    let req = parsed(data)?;
    let conn = sender_in(s, state, &req.room)?;
    let size = req.data.len();
    let max = state.config.max_chunk_bytes;
    if size > max {
        return Err(RequestError::ChunkTooLarge { size, max });
    }
    let max_chunks = state.config.max_file_chunks;
    if req.seq >= max_chunks {
        return Err(RequestError::FileTooLarge {
            seq: req.seq,
            max: max_chunks,
        });
    }
    // A file is paced by bytes, not by chunk count.
    if !conn.try_spend(Cost {
        messages: 0,
        bytes: size as u64,
    }) {
        return Err(RequestError::RateLimited);
    }
    let from = conn.member();
    let mut event = ChunkEvent {
        room: req.room,
        from: from.clone(),
        file: req.file,
        seq: req.seq,
        data: req.data,
        pos: 0,
    };
    if state.cluster.logged()
        && let Some(reply) = reply.take()
    {
        let key = Some(format!("c:{from}:{}:{}", event.file, event.seq));
        let room = event.room.clone();
        let ack = {
            let room = room.clone();
            move |st: &AppState, s: SocketRef, reply: Reply, _: &Placed| {
                ack_when_caught_up(st, s, reply, &room, &from);
            }
        };
        log_sent(s, state, &room, RoomEvent::Chunk(event), key, reply, ack);
        return Ok(None);
    }
    let dedup = DedupKey::Chunk(from.clone(), event.file.clone(), event.seq);
    let meta = LogMeta::sent(Kind::Chunk, &from, size, Some(dedup));
    let room = event.room.clone();
    let positioned = &mut event;
    let delivered = state.rooms.deliver(
        &room,
        events::CHUNK,
        Audience::AllExcept(&from),
        meta,
        move |_, pos| {
            positioned.pos = pos;
            let event: &ChunkEvent = positioned;
            event
        },
    );
    let Some(delivery) = delivered else {
        return Err(gone(state));
    };
    if delivery.duplicate {
        state.metrics.duplicates_dropped.inc();
        return Ok(Some(OkAck::OK));
    }
    state.metrics.chunks_relayed.inc();
    count_delivery(state, &delivery, size);
    cut_off_slow(state, delivery);
    let Some(reply) = reply.take() else {
        return Ok(Some(OkAck::OK));
    };
    ack_when_caught_up(state, s.clone(), reply, &room, &from);
    Ok(None)
}

/// The longest a chunk's ack waits for the room's receivers to catch up: under the
/// clients' ack timeouts (10 s), so a held ack never looks lost.
const CATCH_UP_MAX: Duration = Duration::from_secs(3);
/// How often the receivers a file's sender waits on are looked at.
const CATCH_UP_POLL: Duration = Duration::from_millis(5);

/// Acknowledges a chunk (answers `reply` on `s`) once every receiver of the room on this node has
/// at most a quarter of its byte bound (`--max-queued-bytes-per-connection`) queued: at
/// once when none is behind. A sender paces its file by these acks, so its window of
/// chunks in flight bounds every receiver's backlog, and a fast sender slows to the pace
/// of the slowest receiver instead of filling its queue until it is cut off
/// (docs/reliability.md, "Files follow the slowest receiver"). After `CATCH_UP_MAX` the
/// ack goes anyway; a receiver whose backlog did not shrink at all meanwhile is cut off
/// as too slow first (its leave says `timeout`).
fn ack_when_caught_up(
    state: &AppState,
    s: SocketRef,
    reply: Reply,
    room: &RoomId,
    from: &MemberId,
) {
    let limit = state.config.max_queued_bytes_per_connection / 4;
    let behind = state.rooms.behind(room, from, limit);
    if behind.is_empty() {
        return reply.send(&s, state, Ok(OkAck::OK));
    }
    state.metrics.chunk_acks_held.inc();
    let state = state.clone();
    tokio::spawn(async move {
        let stalled = caught_up(behind, limit).await;
        if !stalled.is_empty() {
            cut_off_slow(
                &state,
                Delivery {
                    slow: stalled,
                    ..Delivery::default()
                },
            );
        }
        reply.send(&s, &state, Ok(OkAck::OK));
    });
}

/// Waits until each of `behind` has at most `limit` bytes queued or is gone, for at most
/// `CATCH_UP_MAX`; returns those still behind whose backlog never shrank.
async fn caught_up(behind: Vec<SocketRef>, limit: usize) -> Vec<SocketRef> {
    let deadline = Instant::now() + CATCH_UP_MAX;
    // Each receiver, with its backlog when the wait began and whether it has shrunk.
    let mut waiting: Vec<_> = behind
        .into_iter()
        .map(|s| {
            let q = s.queued_bytes();
            (s, q, false)
        })
        .collect();
    loop {
        waiting.retain_mut(|(s, first, shrank)| {
            let q = s.queued_bytes();
            *shrank |= q < *first;
            s.connected() && q > limit
        });
        if waiting.is_empty() {
            return Vec::new();
        }
        if Instant::now() >= deadline {
            return waiting
                .into_iter()
                .filter(|(_, _, shrank)| !shrank)
                .map(|(s, _, _)| s)
                .collect();
        }
        tokio::time::sleep(CATCH_UP_POLL).await;
    }
}

async fn on_disconnect(s: SocketRef, reason: DisconnectReason, State(state): State<AppState>) {
    state.metrics.connections.dec();
    let Some(conn) = s.extensions.get::<ConnectionRef>() else {
        return;
    };
    debug!(sid = %s.id, %reason, "disconnected");
    if state.is_shutting_down() {
        // Members are not leaving, the server is: nobody is told anything, and the
        // clients resume or join again on the next server (docs/protocol.md).
        return;
    }
    let leave_reason = if conn.is_slow() || reason == DisconnectReason::HeartbeatTimeout {
        LeaveReason::Timeout
    } else {
        LeaveReason::Disconnected
    };
    let member = conn.member();
    for room in conn.take_rooms() {
        if reason == DisconnectReason::ClientNSDisconnect {
            // The client said goodbye: it is leaving, not dropping.
            depart(&state, &room, &member, leave_reason);
        } else {
            go_away(&state, &s, &room, &member, leave_reason);
        }
    }
}

// ---------------------------------------------------------------------------------------
// With a cluster log (Redis): every room event goes through the room's cluster-wide log
// (`Cluster::log`), which positions it for every node at once; this node then applies it
// like any other node (`RoomRegistry::apply`), in position order. docs/reliability.md.
// ---------------------------------------------------------------------------------------

/// Applies what the log placed, here: deliveries counted, slow receivers cut off,
/// connections whose member another node took over let go of the room.
pub(crate) fn after_apply(state: &AppState, room: &RoomId, applied: crate::relay::Applied) {
    for then in applied.then {
        (then.0)();
    }
    for old in &applied.moved {
        if let Some(conn) = old.extensions.get::<ConnectionRef>() {
            conn.release_room(room);
        }
    }
    for (delivery, bytes) in applied.deliveries {
        count_delivery(state, &delivery, bytes);
        cut_off_slow(state, delivery);
    }
}

/// The placed bus event of `event` at `placed`, from this node.
fn placed_event(
    state: &AppState,
    room: &RoomId,
    mut event: RoomEvent,
    placed: &Placed,
) -> BusEvent {
    event.place(placed.pos, placed.ts);
    BusEvent {
        node: state.cluster.node_id().to_owned(),
        room: room.clone(),
        event,
        epoch: placed.epoch.to_string(),
        counted: false,
    }
}

/// Puts a member's message or chunk in the log; once placed, it is applied here and
/// `answer` replies. The reply waits for the log.
fn log_sent(
    s: &SocketRef,
    state: &AppState,
    room: &RoomId,
    event: RoomEvent,
    dedup: Option<String>,
    reply: Reply,
    answer: impl FnOnce(&AppState, SocketRef, Reply, &Placed) + Send + 'static,
) {
    let (s, st, r) = (s.clone(), state.clone(), room.clone());
    let kept = event.clone();
    let counted = dedup.as_deref().is_some_and(|d| d.starts_with("m:"));
    let hint = state.rooms.hint(room);
    let op = LogOp::Event { event, dedup };
    state.cluster.log(
        room,
        op,
        hint,
        Box::new(move |result| match result {
            Ok(LogOutcome::Placed(placed)) => {
                // The ack waits for its position's turn here (the event's own, or a
                // resend's first copy's), so it follows every earlier event of the room on
                // the sender's connection.
                let (s2, st2, p2) = (s.clone(), st.clone(), placed.clone());
                let then = crate::relay::Then(Box::new(move || answer(&st2, s2, reply, &p2)));
                let applied = if placed.duplicate {
                    st.metrics.duplicates_dropped.inc();
                    st.rooms.when_delivered(&r, placed.pos, then)
                } else {
                    match &kept {
                        RoomEvent::Msg(_) => st.metrics.messages_relayed.inc(),
                        _ => st.metrics.chunks_relayed.inc(),
                    };
                    let mut bus = placed_event(&st, &r, kept, &placed);
                    bus.counted = counted;
                    st.rooms.apply_then(bus, st.cluster.node_id(), Some(then))
                };
                after_apply(&st, &r, applied);
            }
            Ok(_) => reply.send::<()>(&s, &st, Err(RequestError::NotMember)),
            Err(_) => reply.send::<()>(&s, &st, Err(RequestError::StoreUnavailable)),
        }),
    );
}

/// A member leaves through the log: gone from here at once, its leave placed and
/// applied; the room is let go of when nobody is left here.
fn depart_logged(state: &AppState, room: &RoomId, member: &MemberId, reason: LeaveReason) -> bool {
    let Some((_, emptied)) = state.rooms.take(room, member, |_| true) else {
        return false;
    };
    state.metrics.members.dec();
    if emptied {
        close_logged(state, room);
    }
    let event = RoomEvent::Presence(PresenceEvent::Leave {
        room: room.clone(),
        member: member.clone(),
        at: now_millis(),
        reason,
        pos: 0,
    });
    let op = LogOp::Remove {
        member: member.clone(),
        node: state.cluster.node_id().to_owned(),
        if_away_since: None,
        event: event.clone(),
    };
    log_presence(state, room, op, event, |_| {});
    true
}

/// Lets go of a room this node has no member of any more.
fn close_logged(state: &AppState, room: &RoomId) {
    if state.rooms.close_if_empty(room) {
        state.cluster.room_closed(room);
    }
    state.metrics.rooms.set(state.rooms.room_count() as i64);
}

/// Puts a presence change in the log and applies it here once placed; `then` hears
/// the outcome.
fn log_presence(
    state: &AppState,
    room: &RoomId,
    op: LogOp,
    event: RoomEvent,
    then: impl FnOnce(Option<&Placed>) + Send + 'static,
) {
    let (st, r) = (state.clone(), room.clone());
    state.cluster.log(
        room,
        op,
        state.rooms.hint(room),
        Box::new(move |result| match result {
            Ok(LogOutcome::Placed(placed)) => {
                let bus = placed_event(&st, &r, event, &placed);
                let applied = st.rooms.apply(bus, st.cluster.node_id());
                after_apply(&st, &r, applied);
                then(Some(&placed));
            }
            _ => then(None),
        }),
    );
}

/// A member's connection dropped, with a cluster log: away (placed in the log), then,
/// unless it resumes (here or on another node), its leave when the grace runs out.
fn go_away_logged(
    state: &AppState,
    s: &SocketRef,
    room: &RoomId,
    member: &MemberId,
    reason: LeaveReason,
) {
    let Some(away) = state.rooms.mark_away(room, member, s, reason) else {
        return;
    };
    let event = RoomEvent::Presence(PresenceEvent::Away {
        room: room.clone(),
        member: member.clone(),
        at: away.since,
        pos: 0,
    });
    let op = LogOp::Away {
        member: member.clone(),
        node: state.cluster.node_id().to_owned(),
        event: event.clone(),
    };
    let (st, r, m) = (state.clone(), room.clone(), member.clone());
    log_presence(state, room, op, event, move |placed| {
        let Some(placed) = placed else {
            // Not a member in the store any more: nothing to wait for.
            if let Some((_, emptied)) = st.rooms.take(&r, &m, |x| x.away.is_some()) {
                st.metrics.members.dec();
                if emptied {
                    close_logged(&st, &r);
                }
            }
            return;
        };
        let since = placed.ts;
        let grace = std::time::Duration::from_secs(st.config.resume_grace_secs);
        tokio::spawn(async move {
            tokio::time::sleep(grace).await;
            let still = |x: &LocalMember| x.away.is_some_and(|a| a.generation == away.generation);
            let Some((_, emptied)) = st.rooms.take(&r, &m, still) else {
                return; // it came back (or left) meanwhile
            };
            st.metrics.members.dec();
            if emptied {
                close_logged(&st, &r);
            }
            let event = RoomEvent::Presence(PresenceEvent::Leave {
                room: r.clone(),
                member: m.clone(),
                at: away.since,
                reason: away.reason,
                pos: 0,
            });
            let op = LogOp::Remove {
                member: m,
                node: st.cluster.node_id().to_owned(),
                if_away_since: Some(since),
                event: event.clone(),
            };
            log_presence(&st, &r, op, event, |_| {});
        });
    });
}

/// Awaits one log operation.
async fn log_now(state: &AppState, room: &RoomId, op: LogOp) -> Result<LogOutcome, RequestError> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    state.cluster.log(
        room,
        op,
        state.rooms.hint(room),
        Box::new(move |r| {
            let _ = tx.send(r);
        }),
    );
    match rx.await {
        Ok(Ok(outcome)) => Ok(outcome),
        _ => Err(RequestError::StoreUnavailable),
    }
}

/// Makes sure this node hears the room's events before it takes a place in its log.
async fn open_logged(state: &AppState, room: &RoomId) {
    match state.rooms.open_logged(room) {
        crate::relay::Opening::New(heard) => {
            if state.cluster.room_opened(room).await.is_err() {
                debug!("cluster unavailable: the room's events may arrive late");
            }
            let _ = heard.send(true);
        }
        // Another join here is subscribing: wait for it (bounded), so nothing placed in
        // between goes unheard.
        crate::relay::Opening::Known(Some(mut hearing)) => {
            let heard = hearing.wait_for(|h| *h);
            let _ = tokio::time::timeout(std::time::Duration::from_secs(5), heard).await;
        }
        crate::relay::Opening::Known(None) => {}
    }
}

/// `join` with a cluster log: admitted and placed in one step, then added here.
async fn join_logged(
    s: &SocketRef,
    state: &AppState,
    conn: &ConnectionRef,
    req: JoinRequest,
    reply: &mut Option<Reply>,
) -> Result<(), RequestError> {
    let room = req.room;
    let member = conn.member();
    let max_members = state.config.max_members_per_room;
    open_logged(state, &room).await;
    let at = now_millis();
    let info = MemberInfo {
        member: member.clone(),
        at,
        profile: req.profile,
    };
    let token = new_token();
    let event = RoomEvent::Presence(PresenceEvent::Join {
        room: room.clone(),
        member: member.clone(),
        at,
        profile: info.profile.clone(),
        pos: 0,
    });
    let op = LogOp::Admit {
        member: info.clone(),
        max: max_members,
        token: token.clone(),
        event: event.clone(),
    };
    let refuse = |state: &AppState, e: RequestError| {
        conn.release_room(&room);
        close_logged(state, &room);
        e
    };
    let (placed, members) = match log_now(state, &room, op).await {
        Ok(LogOutcome::Admitted(placed, members)) => (placed, members),
        Ok(LogOutcome::Full) => return Err(refuse(state, RequestError::RoomFull(max_members))),
        Ok(_) => return Err(refuse(state, RequestError::StoreUnavailable)),
        Err(e) => return Err(refuse(state, e)),
    };
    let profile = Arc::from(info.profile.as_str());
    let joiner = new_joiner(s, state, conn, &member, at, profile, &token);
    let bus = placed_event(state, &room, event, &placed);
    let joined = state.rooms.join_logged(
        &room,
        joiner,
        &placed,
        &members,
        state.cluster.node_id(),
        req.since.as_ref(),
        |view| send_join_ack(s, state, reply, &member, at, token, view),
        bus,
    );
    match joined {
        Ok(applied) => after_apply(state, &room, applied),
        Err(_) => {
            already_in(s, state, &room, member, reply);
            return Ok(());
        }
    }
    state.metrics.members.inc();
    state.metrics.rooms.set(state.rooms.room_count() as i64);
    if !conn.in_room(&room) {
        depart(state, &room, &member, LeaveReason::Left);
    }
    Ok(())
}

/// `resume` with a cluster log: the token is checked and rotated by the log (so it works
/// on any node), the member moves here, gets what it missed (read back from the log
/// for what this node never had), then live traffic.
async fn resume_logged(
    s: &SocketRef,
    state: &AppState,
    conn: &ConnectionRef,
    req: ResumeRequest,
    keep_token: bool,
    reply: &mut Option<Reply>,
) -> Result<(), RequestError> {
    let room = req.room;
    open_logged(state, &room).await;
    let new = if keep_token {
        req.token.clone()
    } else {
        new_token()
    };
    let event = RoomEvent::Presence(PresenceEvent::Back {
        room: room.clone(),
        member: req.member.clone(),
        at: now_millis(),
        pos: 0,
    });
    let op = LogOp::Resume {
        member: req.member.clone(),
        token: req.token,
        new_token: new.clone(),
        event: event.clone(),
    };
    let (placed, info, members) = match log_now(state, &room, op).await {
        Ok(LogOutcome::Resumed(placed, info, members)) => (placed, info, members),
        Ok(_) => {
            close_logged(state, &room);
            return Err(RequestError::UnknownSession);
        }
        Err(e) => {
            close_logged(state, &room);
            return Err(e);
        }
    };
    let from = if req.epoch == *placed.epoch {
        req.pos
    } else {
        0
    };
    let mut fetched: Option<(crate::cluster::Fetched, u64)> = None;
    for _ in 0..5 {
        let bus = placed_event(state, &room, event.clone(), &placed);
        let outcome = state.rooms.resume_logged(
            &room,
            &info,
            new.clone(),
            &placed,
            &members,
            from,
            fetched.as_ref().map(|(f, before)| (f, *before)),
            s,
            state.cluster.node_id(),
            |member| {
                conn.adopt_member(member)
                    && conn.reserve_room(&room, usize::MAX) != Reserve::TooMany
            },
            |mut view| {
                // Another incarnation of the room: nothing can be said of what was missed.
                if req.epoch != *placed.epoch {
                    view.missed = Some(streamchat_protocol::Missed {
                        messages: 0,
                        exact: false,
                    });
                }
                send_resume_ack(s, state, reply, view);
            },
            bus,
        );
        match outcome {
            Ok((applied, previous, replayed)) => {
                if let Some(old) = previous
                    .as_ref()
                    .and_then(|p| p.extensions.get::<ConnectionRef>())
                {
                    old.release_room(&room);
                }
                state.metrics.resumes.inc();
                state.metrics.replayed_events.inc_by(replayed);
                after_apply(state, &room, applied);
                return Ok(());
            }
            Err(LoggedResumeError::Fetch(need)) => {
                let read = state
                    .cluster
                    .fetch(&room, need.after, need.before)
                    .await
                    .map_err(|_| RequestError::StoreUnavailable)?;
                fetched = Some((read, need.before));
            }
            Err(LoggedResumeError::Refused(ResumeError::OtherMember)) => {
                return Err(RequestError::ResumeAfterJoin);
            }
            Err(LoggedResumeError::Refused(_)) => return Err(RequestError::UnknownSession),
        }
    }
    Err(RequestError::StoreUnavailable)
}

/// Graceful shutdown with a cluster log: every member here is placed away in the log
/// (the others see it reconnecting, not gone); waits for the log, at most 2 s.
pub(crate) async fn away_all(state: &AppState) {
    let mut waits = Vec::new();
    for (room, members) in state.rooms.snapshot() {
        for member in members {
            let event = RoomEvent::Presence(PresenceEvent::Away {
                room: room.clone(),
                member: member.clone(),
                at: now_millis(),
                pos: 0,
            });
            let (tx, rx) = tokio::sync::oneshot::channel();
            state.cluster.log(
                &room,
                LogOp::Away {
                    member,
                    node: state.cluster.node_id().to_owned(),
                    event,
                },
                state.rooms.hint(&room),
                Box::new(move |_| {
                    let _ = tx.send(());
                }),
            );
            waits.push(rx);
        }
    }
    let all = async {
        for rx in waits {
            let _ = rx.await;
        }
    };
    let _ = tokio::time::timeout(std::time::Duration::from_secs(2), all).await;
}
