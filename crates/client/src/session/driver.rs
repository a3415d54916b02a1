//! The session's one task that reads the connection: joins, keeps the roster, opens
//! and verifies every incoming message, reassembles files, and reconnects.
//!
//! Incoming events are handled one at a time in the order the server sent them, so a
//! member's profile is always known before their messages. The driver keeps the
//! session's [`Place`] in the room's log: the epoch, the last position seen (from the
//! join or resume ack, every event, and, once a connection is gone, the session's own
//! acknowledged messages), and the resume token.
//!
//! On a lost connection it publishes [`LinkState::Connecting`] (outgoing sends wait) and
//! reconnects with backoff (0.5 s doubling to 5 s). On the new connection it first sends
//! `resume`: on success the session is the same member with the same roster, files in
//! progress and crypto state; the events the server replays are handled like live ones,
//! and the new link is published so unacknowledged sends go out again. If the resume is
//! refused, it seals the profile for the new member id, joins with `since`, reconciles
//! the roster, fails the files that were arriving and reports the gap.

use super::incoming::{ChunkOutcome, IncomingFiles};
use super::lobby::{LOBBY_FRAME, LobbyBody, MLS_FRAME, Out, Sent, Shown};
use super::outgoing::{Link, LinkState, send_frame};
use super::replay::ReplayGuard;
use super::roster::{Roster, open_member_profile};
use super::{
    Control, FileInfo, Member, Refused, ReplyTo, SessionError, SessionEvent, Shared, crypto_member,
    now_ms,
};
use crate::client::{Acked, Client, ClientError, ServerEvent};
use bytes::Bytes;
use std::collections::VecDeque;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use streamchat_crypto::{Body, MessageRef, OpenError, Profile, PublicKey, encoding, open, seal};
use streamchat_protocol::{
    ChunkEvent, ErrorCode, JoinAck, LeaveReason, Limits, LogPlace, MemberId, MsgEvent, Pos,
    PresenceEvent, ResumeAck, ResumeRequest, notice_codes,
};
use tokio::sync::{mpsc, oneshot, watch};

const RECONNECT_START: Duration = Duration::from_millis(500);
const RECONNECT_MAX: Duration = Duration::from_secs(5);
/// Refusals for rate of a join or resume in a row before it counts as failed.
const MAX_JOIN_RATE_RETRIES: u32 = 10;
/// Why a file that was arriving failed when part of it cannot be recovered.
const INCOMPLETE: &str = "incomplete: part of it was sent while you were offline";
/// Why a file that was arriving failed when the session ended with the connection.
const CONNECTION_LOST: &str = "the connection was lost";

/// A connection that has joined the room (the first one).
pub(crate) struct Joined {
    pub(crate) client: Arc<Client>,
    pub(crate) events: mpsc::Receiver<ServerEvent>,
    pub(crate) ack: JoinAck,
}

/// How a connection came into the room.
pub(crate) enum Entry {
    /// Joined as a new member; `since` when it asked what it missed.
    Joined {
        ack: JoinAck,
        since: Option<LogPlace>,
    },
    /// Resumed as the member it was.
    Resumed(ResumeAck),
}

/// A connection in the room.
pub(crate) struct Connected {
    client: Arc<Client>,
    events: mpsc::Receiver<ServerEvent>,
    entry: Entry,
}

impl From<Joined> for Connected {
    fn from(joined: Joined) -> Self {
        Self {
            client: joined.client,
            events: joined.events,
            entry: Entry::Joined {
                ack: joined.ack,
                since: None,
            },
        }
    }
}

/// Where this session stands in the room's log (docs/protocol.md, "Resumable sessions").
#[derive(Debug, Clone)]
pub(crate) struct Place {
    /// The member the token resumes.
    member: MemberId,
    /// The room's epoch: positions compare only within it.
    epoch: String,
    /// The last position this session has seen (or knows it need not see).
    pos: Pos,
    /// The resume token of the last join or resume ack; empty once refused.
    token: String,
}

/// A resume's replay under way: events still to come, and the room's position after.
#[derive(Debug)]
struct CatchUp {
    left: u64,
    to: Pos,
}

/// Seals this session's profile for `member`, base64url.
fn sealed_profile(
    shared: &Shared,
    member: &streamchat_crypto::MemberId,
) -> Result<String, SessionError> {
    let body = Body::Profile(Profile {
        name: shared.name.clone(),
        key: shared.identity.public_key(),
        sent_at: now_ms(),
    });
    let body = serde_json::to_vec(&body).map_err(|e| ClientError::Payload(e.to_string()))?;
    let sealed = seal(&shared.keys, member, &shared.identity, &body)
        .map_err(|e| ClientError::Payload(format!("cannot seal the profile: {e}")))?;
    Ok(encoding::encode(&sealed))
}

/// Sends a request again after a growing pause while the server refuses it for the rate.
async fn retry_rate<T, F, Fut>(what: &str, mut request: F) -> Result<Acked<T>, ClientError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Acked<T>, ClientError>>,
{
    let mut pause = Duration::from_millis(100);
    for _ in 0..MAX_JOIN_RATE_RETRIES {
        match request().await? {
            Err(e) if e.code == ErrorCode::RateLimited => {
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(2));
            }
            other => return Ok(other),
        }
    }
    Err(ClientError::Refused(format!(
        "rate_limited: the server kept refusing the {what}"
    )))
}

/// Joins on a connected client with a profile sealed for its member id (and `since`,
/// after a refused resume).
async fn join_on(
    client: &Client,
    shared: &Shared,
    since: Option<&LogPlace>,
) -> Result<JoinAck, SessionError> {
    let profile = sealed_profile(shared, &crypto_member(client.member_id()))?;
    let acked = retry_rate("join", || async {
        match since {
            Some(place) => {
                client
                    .join_since(&shared.room, &profile, place.clone())
                    .await
            }
            None => client.join(&shared.room, &profile).await,
        }
    })
    .await?;
    acked.map_err(SessionError::Refused)
}

/// Connects and joins with a profile sealed for the new connection's member id.
pub(crate) async fn connect_and_join(shared: &Shared) -> Result<Joined, SessionError> {
    let (client, events) = Client::connect_with(&shared.server_url, &shared.connect).await?;
    match join_on(&client, shared, None).await {
        Ok(ack) => Ok(Joined {
            client: Arc::new(client),
            events,
            ack,
        }),
        Err(e) => {
            client.close().await;
            Err(e)
        }
    }
}

/// One reconnection: a new connection that resumes `place` if it has a token, and
/// otherwise (or if the server refuses) joins with `since`.
async fn reconnect_once(
    shared: &Shared,
    place: &mut Option<Place>,
) -> Result<Connected, SessionError> {
    let (client, events) = Client::connect_with(&shared.server_url, &shared.connect).await?;
    if let Some(place) = place.as_mut().filter(|p| !p.token.is_empty()) {
        let request = ResumeRequest {
            room: shared.room.clone(),
            member: place.member.clone(),
            token: place.token.clone(),
            epoch: place.epoch.clone(),
            pos: place.pos,
        };
        match retry_rate("resume", || client.resume(&request)).await {
            Ok(Ok(ack)) => {
                return Ok(Connected {
                    client: Arc::new(client),
                    events,
                    entry: Entry::Resumed(ack),
                });
            }
            // Shutting down, or a dependency down: try again later, token and all.
            Ok(Err(e)) if e.code == ErrorCode::Unavailable => {
                client.close().await;
                return Err(SessionError::Refused(e));
            }
            Ok(Err(e)) => {
                tracing::debug!(code = %e.code, message = %e.message, "resume refused; joining again");
                place.token.clear();
            }
            Err(e) => {
                client.close().await;
                return Err(e.into());
            }
        }
    }
    let since = place.as_ref().map(|p| LogPlace {
        epoch: p.epoch.clone(),
        pos: p.pos,
    });
    match join_on(&client, shared, since.as_ref()).await {
        Ok(ack) => Ok(Connected {
            client: Arc::new(client),
            events,
            entry: Entry::Joined { ack, since },
        }),
        Err(e) => {
            client.close().await;
            Err(e)
        }
    }
}

/// Whether a failed (re)join is worth retrying.
fn retryable(e: &SessionError) -> bool {
    match e {
        SessionError::Connect(ClientError::Refused(_)) => true,
        SessionError::Connect(_) => true,
        SessionError::Refused(body) => {
            matches!(body.code, ErrorCode::RateLimited | ErrorCode::Unavailable)
        }
        SessionError::Randomness(_) | SessionError::BadName => false,
    }
}

/// The room position an event carries (0: none).
fn position(event: &ServerEvent) -> Pos {
    match event {
        ServerEvent::Presence(
            PresenceEvent::Join { pos, .. }
            | PresenceEvent::Leave { pos, .. }
            | PresenceEvent::Away { pos, .. }
            | PresenceEvent::Back { pos, .. },
        ) => *pos,
        ServerEvent::Msg(m) => m.pos,
        ServerEvent::Chunk(c) => c.pos,
        ServerEvent::Notice(_) | ServerEvent::Other(..) | ServerEvent::Disconnected => 0,
    }
}

pub(crate) struct Driver {
    shared: Arc<Shared>,
    events: mpsc::Sender<SessionEvent>,
    link: watch::Sender<LinkState>,
    reconnect: bool,
    roster: Roster,
    files: IncomingFiles,
    replay: ReplayGuard,
    limits: Option<Limits>,
    generation: u64,
    /// This session's member id now (it signs and seals as this member).
    member: Option<MemberId>,
    /// Where this session stands in the room's log; `None` with a server that does not
    /// number events.
    place: Option<Place>,
    /// Set while a resume's replay is arriving.
    catch_up: Option<CatchUp>,
    /// The highest position of this member's own acknowledged messages in this epoch,
    /// as the outgoing tasks record it.
    acked: Arc<AtomicU64>,
    /// Test hook: how long to wait before reconnecting after the next lost connection.
    hold: Option<Duration>,
    /// Set when the UI stopped listening: events are no longer sent.
    ui_gone: bool,
    /// The connection in the room now, its member id and limits: the link to publish
    /// (in a v2 room, only once this member is in the group).
    current: Option<(Arc<Client>, MemberId, Limits)>,
    /// The acks of the lobby bodies and commits this driver sent (v2 rooms).
    own_acks: (mpsc::Sender<OwnAck>, mpsc::Receiver<OwnAck>),
    /// Own lobby bodies and commits sent and not yet acknowledged.
    in_flight: usize,
    /// Events held while something of ours is in flight: where ours goes in the log is
    /// known only from its ack, and what came before it must be handled first.
    held: VecDeque<ServerEvent>,
}

/// The outcome of a lobby body or commit this driver sent: its position, or `None`
/// when it did not reach the log.
#[derive(Debug)]
struct OwnAck {
    what: OwnSend,
    pos: Option<Pos>,
}

#[derive(Debug, Clone, Copy)]
enum OwnSend {
    Lobby(Sent),
    Commit,
}

/// How the connection loop ended.
enum End {
    Disconnected(String),
    Leave(Option<oneshot::Sender<()>>),
}

impl Driver {
    pub(crate) fn new(
        shared: Arc<Shared>,
        events: mpsc::Sender<SessionEvent>,
        link: watch::Sender<LinkState>,
        reconnect: bool,
    ) -> Self {
        Self {
            shared,
            events,
            link,
            reconnect,
            roster: Roster::default(),
            files: IncomingFiles::default(),
            replay: ReplayGuard::default(),
            limits: None,
            generation: 0,
            member: None,
            place: None,
            catch_up: None,
            acked: Arc::default(),
            hold: None,
            ui_gone: false,
            current: None,
            own_acks: mpsc::channel(16),
            in_flight: 0,
            held: VecDeque::new(),
        }
    }

    /// A driver already in the room as `member` at `pos` of `epoch`, with `limits`, as
    /// after a join ack listing nobody: for the fuzz target's harness (`super::fuzzing`),
    /// which hands it server events one at a time with [`Driver::handle`].
    pub(crate) fn in_room(
        shared: Arc<Shared>,
        events: mpsc::Sender<SessionEvent>,
        link: watch::Sender<LinkState>,
        joined: (MemberId, u64, Limits),
        place: (String, Pos),
    ) -> Self {
        let (member, at, limits) = joined;
        let mut driver = Self::new(shared, events, link, false);
        driver
            .roster
            .replace_all(vec![driver.shared.member_view(&member, at)]);
        driver.limits = Some(limits);
        driver.place = Some(Place {
            member: member.clone(),
            epoch: place.0,
            pos: place.1,
            token: String::new(),
        });
        driver.member = Some(member);
        driver
    }

    /// Hands an event to the UI. A UI that stopped listening is quitting: the session
    /// goes on (queued sends still go out) until the handle leaves or is dropped.
    async fn emit(&mut self, event: SessionEvent) {
        if !self.ui_gone && self.events.send(event).await.is_err() {
            self.ui_gone = true;
        }
    }

    async fn warn(&mut self, message: impl Into<String>) {
        self.emit(SessionEvent::Warning {
            message: message.into(),
        })
        .await;
    }

    /// Fails every file on its way in.
    async fn fail_incoming(&mut self, reason: &str) {
        for (from, file) in self.files.drop_all() {
            self.emit(SessionEvent::FileFailed {
                from,
                file,
                reason: reason.to_owned(),
            })
            .await;
        }
    }

    pub(crate) async fn run(mut self, first: Connected, mut control: mpsc::Receiver<Control>) {
        let mut connected = first;
        // When the last connection was lost.
        let mut lost: Option<Instant> = None;
        let closed_reason = loop {
            let Connected {
                client,
                mut events,
                entry,
            } = connected;
            let offline_for = lost.map(|at| at.elapsed());
            match entry {
                Entry::Joined { ack, since } => {
                    self.on_joined(&client, ack, since.is_some(), offline_for)
                        .await;
                }
                Entry::Resumed(ack) => {
                    self.on_resumed(&client, ack, offline_for.unwrap_or_default())
                        .await;
                }
            }
            let end = self.serve(&mut events, &client, &mut control).await;
            match end {
                End::Leave(done) => {
                    self.link.send_replace(LinkState::Closed);
                    // Best effort: the connection closes right after either way.
                    let _ = client.leave(&self.shared.room).await;
                    close(client).await;
                    if let Some(done) = done {
                        let _ = done.send(());
                    }
                    break "left the room".to_owned();
                }
                End::Disconnected(reason) => {
                    self.link.send_replace(LinkState::Connecting);
                    close(client).await;
                    drop(events);
                    lost = Some(Instant::now());
                    self.past_own_messages();
                    // Files on their way in wait: a resume brings the rest of them.
                    self.emit(SessionEvent::Disconnected {
                        reason: reason.clone(),
                    })
                    .await;
                    if !self.reconnect || self.ui_gone {
                        self.link.send_replace(LinkState::Closed);
                        self.fail_incoming(CONNECTION_LOST).await;
                        break reason;
                    }
                    match self.reconnect(&mut control).await {
                        Ok(next) => connected = next,
                        Err(reason) => {
                            self.link.send_replace(LinkState::Closed);
                            self.fail_incoming(CONNECTION_LOST).await;
                            break reason;
                        }
                    }
                }
            }
        };
        self.emit(SessionEvent::Closed {
            reason: closed_reason,
        })
        .await;
    }

    /// Once a connection is gone, everything it delivered has been handled, and the
    /// server sent each ack of ours after every event positioned before it: the place
    /// moves past this member's own acknowledged messages (which are never sent back to
    /// it), so a resume does not ask for them and a gap does not count them.
    fn past_own_messages(&mut self) {
        if let Some(place) = &mut self.place {
            place.pos = place.pos.max(self.acked.load(Ordering::Relaxed));
        }
    }

    /// Retries connect and resume (or join) with backoff until it works, the UI
    /// leaves, or the server refuses for good.
    async fn reconnect(
        &mut self,
        control: &mut mpsc::Receiver<Control>,
    ) -> Result<Connected, String> {
        let mut pause = RECONNECT_START;
        let mut wait = self.hold.take().unwrap_or_default().max(pause);
        loop {
            let shared = &self.shared;
            let place = &mut self.place;
            let attempt = async {
                tokio::time::sleep(wait).await;
                reconnect_once(shared, place).await
            };
            tokio::select! {
                result = attempt => match result {
                    Ok(connected) => return Ok(connected),
                    Err(e) if retryable(&e) => {
                        tracing::debug!(error = %e, "reconnect failed; retrying");
                        pause = (pause * 2).min(RECONNECT_MAX);
                        wait = pause;
                    }
                    Err(e) => return Err(e.to_string()),
                },
                command = control.recv() => match command {
                    None | Some(Control::Leave(_)) => {
                        if let Some(Control::Leave(done)) = command {
                            let _ = done.send(());
                        }
                        return Err("left the room".to_owned());
                    }
                    Some(Control::Typing | Control::DropTransport(_) | Control::LetIn(_)) => {}
                },
            }
        }
    }

    /// Publishes a new link for the outgoing tasks; in a v2 room only while this member
    /// is in the group (what is sent before waits, as it does while reconnecting).
    fn publish_link(&mut self, client: &Arc<Client>, member: &MemberId, limits: Limits) {
        self.current = Some((client.clone(), member.clone(), limits));
        if self.shared.lobby().is_some_and(|lobby| !lobby.is_in()) {
            self.link.send_replace(LinkState::Connecting);
            return;
        }
        self.generation += 1;
        self.link.send_replace(LinkState::Up(Link {
            client: client.clone(),
            protocol_member: member.clone(),
            member: crypto_member(member),
            limits,
            generation: self.generation,
            acked: self.acked.clone(),
        }));
    }

    /// Back as the same member: the roster, the files in progress and the keys stay;
    /// the replay follows on the event stream.
    async fn on_resumed(&mut self, client: &Arc<Client>, ack: ResumeAck, offline_for: Duration) {
        self.limits = Some(ack.limits);
        self.member = Some(ack.member.clone());
        if let Some(place) = &mut self.place {
            place.member = ack.member.clone();
            place.epoch = ack.epoch.clone();
            place.token = ack.token.clone();
            if ack.replayed == 0 {
                place.pos = place.pos.max(ack.pos);
            }
        }
        self.catch_up = (ack.replayed > 0).then_some(CatchUp {
            left: ack.replayed,
            to: ack.pos,
        });
        self.emit(SessionEvent::Resumed {
            offline_for,
            replayed: ack.replayed,
        })
        .await;
        if let Some(missed) = ack.missed {
            let identity = &self.shared.identity;
            let outs = self
                .shared
                .lobby()
                .map(|mut lobby| lobby.missed_commits(identity));
            if let Some(outs) = outs {
                self.current = Some((client.clone(), ack.member.clone(), ack.limits));
                self.run_outs(outs, None).await;
            }
            self.fail_incoming(INCOMPLETE).await;
            self.emit(SessionEvent::Gap {
                messages: missed.messages,
                exact: missed.exact,
                offline_for,
            })
            .await;
        }
        self.publish_link(client, &ack.member, ack.limits);
    }

    /// Joined as a new member (the first time, or after a refused resume when
    /// `offline_for` is set).
    async fn on_joined(
        &mut self,
        client: &Arc<Client>,
        ack: JoinAck,
        asked_since: bool,
        offline_for: Option<Duration>,
    ) {
        let rejoin = offline_for.is_some();
        if rejoin {
            // Chunks sent to the old member id are not coming.
            self.fail_incoming(INCOMPLETE).await;
        }
        self.limits = Some(ack.limits);
        self.member = Some(ack.member.clone());
        self.place = (!ack.epoch.is_empty()).then(|| Place {
            member: ack.member.clone(),
            epoch: ack.epoch.clone(),
            pos: ack.pos,
            token: ack.token.clone(),
        });
        self.catch_up = None;
        // A new member id: its own messages have positions of their own.
        self.acked = Arc::default();
        let me = self.shared.member_view(&ack.member, ack.at);
        let own_key = self.shared.identity.public_key();
        let mut present = vec![me.clone()];
        for info in &ack.members {
            match open_member_profile(&self.shared.keys, &info.member, &info.profile, info.at) {
                // This session's old member, still held for its grace: not someone else.
                Ok(member) if member.key == own_key => {}
                Ok(member) => present.push(member),
                Err(e) => self.profile_warning(&e.to_string()).await,
            }
        }
        let outcome = self.roster.replace_all(present.clone());
        // Trust alerts for those here when this session joined (the first time) or who
        // arrived while it was away; each said once.
        let mut alerts: Vec<String> = Vec::new();
        let newcomers: Vec<Member> = if rejoin {
            outcome.arrived.iter().map(|(m, _)| m.clone()).collect()
        } else {
            // Oneself first, so that someone here with one's own name is news once.
            present
        };
        let mut names_told: Vec<String> = Vec::new();
        for member in &newcomers {
            let said = self.roster.trust_alerts(member, rejoin);
            let folded = member.name.to_lowercase();
            // Two (or more) people here with one name: said once per name.
            if member.is_self || names_told.contains(&folded) {
                continue;
            }
            if said.iter().any(|a| a.starts_with("Now ")) {
                names_told.push(folded);
            }
            alerts.extend(said);
        }
        if rejoin {
            let away = now_ms();
            for gone in outcome.departed {
                self.emit(SessionEvent::MemberLeft {
                    member: gone,
                    at: away,
                    reason: LeaveReason::Disconnected,
                })
                .await;
            }
        }
        let members: Vec<Member> = self
            .roster
            .members()
            .into_iter()
            .filter(|m| !m.is_self)
            .collect();
        self.emit(SessionEvent::Ready {
            me,
            members,
            limits: ack.limits,
            rejoin,
        })
        .await;
        if let Some(offline_for) = offline_for.filter(|_| asked_since) {
            let missed = ack.missed.unwrap_or(streamchat_protocol::Missed {
                messages: 0,
                exact: false,
            });
            self.emit(SessionEvent::Gap {
                messages: missed.messages,
                exact: missed.exact,
                offline_for,
            })
            .await;
        }
        if rejoin {
            for (member, returning) in outcome.arrived {
                self.emit(SessionEvent::MemberJoined { member, returning })
                    .await;
            }
        }
        for alert in alerts {
            self.warn(alert).await;
        }
        self.current = Some((client.clone(), ack.member.clone(), ack.limits));
        let others: Vec<(MemberId, PublicKey)> = self
            .roster
            .members()
            .into_iter()
            .filter(|m| !m.is_self)
            .map(|m| (m.member, m.key))
            .collect();
        let outs = self
            .shared
            .lobby()
            .map(|mut lobby| lobby.joined(&self.shared.identity, ack.member.clone(), &others));
        self.publish_link(client, &ack.member, ack.limits);
        if let Some(outs) = outs {
            self.run_outs(outs, None).await;
        }
    }

    async fn serve(
        &mut self,
        events: &mut mpsc::Receiver<ServerEvent>,
        client: &Client,
        control: &mut mpsc::Receiver<Control>,
    ) -> End {
        loop {
            if self.in_flight == 0
                && let Some(event) = self.held.pop_front()
            {
                if matches!(event, ServerEvent::Disconnected) {
                    return End::Disconnected("the connection was lost".to_owned());
                }
                self.handle(event).await;
                continue;
            }
            tokio::select! {
                event = events.recv() => match event {
                    Some(event) if self.in_flight > 0 => self.held.push_back(event),
                    None | Some(ServerEvent::Disconnected) => {
                        return End::Disconnected("the connection was lost".to_owned());
                    }
                    Some(event) => self.handle(event).await,
                },
                Some(ack) = self.own_acks.1.recv() => self.on_own_ack(ack, events).await,
                command = control.recv() => match command {
                    None => return End::Leave(None),
                    Some(Control::Leave(done)) => return End::Leave(Some(done)),
                    Some(Control::Typing) => self.send_typing(client).await,
                    Some(Control::LetIn(member)) => {
                        let outs = self
                            .shared
                            .lobby()
                            .map(|mut lobby| lobby.let_in(&member, &self.shared.identity));
                        if let Some(outs) = outs {
                            self.run_outs(outs, None).await;
                        }
                    }
                    Some(Control::DropTransport(hold)) => {
                        self.hold = Some(hold);
                        // The events stream ends once the transport is closed.
                        client.drop_transport().await;
                    }
                },
            }
        }
    }

    async fn send_typing(&mut self, client: &Client) {
        let body = format!(r#"{{"type":"typing","sent_at":{}}}"#, now_ms());
        // After a resume the connection's own id is not the member's.
        let Some(member) = self.member.as_ref().map(crypto_member) else {
            return;
        };
        // Not in a v2 room's group yet: nobody could read it, so nothing goes.
        if let Ok(Some(sealed)) = self.shared.seal_body(&member, body.as_bytes()) {
            // Typing news is best effort: a refusal or loss only hides a hint.
            let _ = client
                .emit_no_ack(
                    streamchat_protocol::events::MSG,
                    serde_json::json!({"room": self.shared.room, "data": crate::packet::placeholder(0)}),
                    vec![Bytes::from(sealed)],
                )
                .await;
        }
    }

    /// Records that the event at `pos` was seen; false if it had been already.
    fn see(&mut self, pos: Pos) -> bool {
        let Some(place) = &mut self.place else {
            return true;
        };
        let fresh = pos > place.pos;
        place.pos = place.pos.max(pos);
        if let Some(catch_up) = &mut self.catch_up {
            catch_up.left = catch_up.left.saturating_sub(1);
            if catch_up.left == 0 || pos >= catch_up.to {
                // Whatever else lies up to `to` is not this member's to see.
                place.pos = place.pos.max(catch_up.to);
                self.catch_up = None;
            }
        }
        fresh
    }

    /// Handles one event from the server, in the order the server sent them.
    pub(crate) async fn handle(&mut self, event: ServerEvent) {
        let pos = position(&event);
        if pos != 0 && !self.see(pos) {
            // The server replays only what came after the place given; never show twice.
            tracing::debug!(pos, "dropping an event seen already");
            return;
        }
        match event {
            ServerEvent::Presence(p) => self.on_presence(p).await,
            ServerEvent::Msg(m) => self.on_msg(m).await,
            ServerEvent::Chunk(c) => self.on_chunk(c).await,
            ServerEvent::Notice(n) => {
                let message = if n.code == notice_codes::SHUTTING_DOWN {
                    "The server is shutting down.".to_owned()
                } else if n.code == ErrorCode::RateLimited.as_str() {
                    "Slow down: the server is limiting how fast you send.".to_owned()
                } else {
                    n.message.clone()
                };
                self.emit(SessionEvent::Notice {
                    code: n.code,
                    message,
                })
                .await;
            }
            ServerEvent::Other(..) | ServerEvent::Disconnected => {}
        }
    }

    async fn profile_warning(&mut self, why: &str) {
        self.warn(format!(
            "Someone joined with a profile that was refused ({why}); they are not shown and their messages will be dropped."
        ))
        .await;
    }

    async fn on_presence(&mut self, presence: PresenceEvent) {
        match presence {
            PresenceEvent::Join {
                member,
                at,
                profile,
                ..
            } => {
                if self.roster.contains(&member) {
                    return;
                }
                match open_member_profile(&self.shared.keys, &member, &profile, at) {
                    Ok(m) => {
                        if let Some(mut lobby) = self.shared.lobby() {
                            lobby.member_joined(m.member.clone(), m.key);
                        }
                        let returning = self.roster.insert(m.clone());
                        let alerts = self.roster.trust_alerts(&m, true);
                        self.emit(SessionEvent::MemberJoined {
                            member: m,
                            returning,
                        })
                        .await;
                        for alert in alerts {
                            self.warn(alert).await;
                        }
                    }
                    Err(e) => self.profile_warning(&e.to_string()).await,
                }
            }
            PresenceEvent::Leave {
                member, at, reason, ..
            } => {
                let Some(gone) = self.roster.remove(&member) else {
                    return;
                };
                if gone.is_self {
                    return;
                }
                let outs = self
                    .shared
                    .lobby()
                    .map(|mut lobby| lobby.member_left(&member, &self.shared.identity));
                for (from, file) in self.files.drop_from(&member) {
                    self.emit(SessionEvent::FileFailed {
                        from,
                        file,
                        reason: "the sender left before it was complete".to_owned(),
                    })
                    .await;
                }
                self.emit(SessionEvent::MemberLeft {
                    member: gone,
                    at,
                    reason,
                })
                .await;
                if let Some(outs) = outs {
                    self.run_outs(outs, None).await;
                }
            }
            // A member reconnecting within the grace is still a member: nothing to show
            // in a timeline (its leave comes if the grace runs out), only a mark.
            PresenceEvent::Away { member, .. } => {
                if let Some(member) = self.roster.get(&member).filter(|m| !m.is_self) {
                    let member = member.clone();
                    self.emit(SessionEvent::MemberAway { member }).await;
                }
            }
            PresenceEvent::Back { member, .. } => {
                if let Some(member) = self.roster.get(&member).filter(|m| !m.is_self) {
                    let member = member.clone();
                    self.emit(SessionEvent::MemberBack { member }).await;
                }
            }
        }
    }

    async fn on_msg(&mut self, msg: MsgEvent) {
        let Some(sender) = self.roster.get(&msg.from).cloned() else {
            self.warn("A message from someone who is not in the room was dropped.")
                .await;
            return;
        };
        if sender.is_self {
            return;
        }
        if self.shared.lobby().is_some() {
            return self.on_v2_frame(sender, msg).await;
        }
        let verified =
            open(&self.shared.keys, &crypto_member(&msg.from), &msg.data.0).and_then(|opened| {
                let signature = *opened.signature();
                opened.verify(&sender.key).map(|v| (v, signature))
            });
        let (verified, signature) = match verified {
            Ok(v) => v,
            Err(e) => {
                let what = if matches!(e, OpenError::BadSignature) {
                    "signature verification"
                } else {
                    "decryption"
                };
                self.warn(format!(
                    "A message from {} failed {what} and was not shown.",
                    sender.name
                ))
                .await;
                return;
            }
        };
        let body = match verified.parse() {
            Ok(Body::Profile(_)) | Err(_) => {
                self.warn(format!(
                    "A malformed message from {} was not shown.",
                    sender.name
                ))
                .await;
                return;
            }
            Ok(body) => body,
        };
        let Some(sent_at) = body.sent_at() else {
            return; // An unknown type: ignored, as docs/crypto.md §8 asks.
        };
        if !self.replay.accept(sender.key, sent_at, signature) {
            return;
        }
        self.on_body(sender, body, sent_at, msg.ts, msg.to.is_some())
            .await;
    }

    /// A frame of a v2 room (docs/crypto.md §17.2): a lobby body, or an MLS message.
    async fn on_v2_frame(&mut self, sender: Member, msg: MsgEvent) {
        let data = &msg.data.0;
        let outs = match data.first() {
            Some(&MLS_FRAME) => {
                let frame = data.to_vec();
                self.shared.lobby().map(|mut lobby| {
                    lobby.mls_frame(&msg.from, frame, msg.to.is_some(), &self.shared.identity)
                })
            }
            Some(&LOBBY_FRAME) => {
                let verified = open(&self.shared.keys, &crypto_member(&msg.from), data)
                    .and_then(|opened| opened.verify(&sender.key));
                let Some(body) = verified.ok().and_then(|v| LobbyBody::parse(v.body())) else {
                    self.warn(format!(
                        "A malformed message from {} was not shown.",
                        sender.name
                    ))
                    .await;
                    return;
                };
                self.shared.lobby().map(|mut lobby| {
                    lobby.lobby_body(&msg.from, body, msg.pos, &self.shared.identity)
                })
            }
            _ => None,
        };
        match outs {
            Some(outs) => self.run_outs(outs, Some((msg.ts, msg.to.is_some()))).await,
            None => {
                self.warn(format!(
                    "A malformed message from {} was not shown.",
                    sender.name
                ))
                .await;
            }
        }
    }

    /// Does what the lobby answered (v2 rooms); `context` is the `ts` and directness of
    /// the message that led to it.
    async fn run_outs(&mut self, outs: Vec<Out>, context: Option<(u64, bool)>) {
        for out in outs {
            match out {
                Out::Lobby(what, body) => self.send_lobby(what, &body),
                Out::Commit(bytes) => self.send_own(OwnSend::Commit, bytes, None),
                Out::Welcome { to, welcome } => {
                    // Sent until the server takes it, across a lost connection and its
                    // resume, like a text: a lost Welcome would leave the newcomer
                    // waiting while everyone else counts it in. A second copy after a
                    // lost ack is relayed once (one client id) and ignored if it came.
                    let (shared, mut links) = (self.shared.clone(), self.link.subscribe());
                    tokio::spawn(async move {
                        let frame = |_: &Link| Ok(Some(welcome.clone()));
                        let _ = send_frame(&shared, &mut links, Some(&to), frame).await;
                    });
                }
                Out::Show(shown) => self.show(shown, context).await,
            }
        }
    }

    /// Seals a lobby body with the lobby key for this member and sends it.
    fn send_lobby(&mut self, what: Sent, body: &LobbyBody) {
        let Some(member) = self.member.as_ref().map(crypto_member) else {
            return;
        };
        let Ok(json) = serde_json::to_vec(body) else {
            return;
        };
        if let Ok(sealed) = seal(&self.shared.keys, &member, &self.shared.identity, &json) {
            self.send_own(OwnSend::Lobby(what), sealed, None);
        }
    }

    /// Sends a frame to the room; its ack comes back through `own_acks`.
    fn send_own(&mut self, what: OwnSend, frame: Vec<u8>, to: Option<MemberId>) {
        let Some((client, _, _)) = &self.current else {
            return;
        };
        let (client, room, acks) = (
            client.clone(),
            self.shared.room.clone(),
            self.own_acks.0.clone(),
        );
        self.in_flight += 1;
        tokio::spawn(async move {
            let pos = match client.msg(&room, Bytes::from(frame), to.as_ref()).await {
                Ok(Ok(ack)) => Some(ack.pos),
                _ => None,
            };
            let _ = acks.send(OwnAck { what, pos }).await;
        });
    }

    /// An own frame's ack. The server sends it after every event positioned before it,
    /// so those have all been read (held, or still in `events`): they are handled first,
    /// then the frame takes its place, and what follows it stays held while anything
    /// else of ours is in flight.
    async fn on_own_ack(&mut self, ack: OwnAck, events: &mut mpsc::Receiver<ServerEvent>) {
        self.in_flight = self.in_flight.saturating_sub(1);
        if let Some(pos) = ack.pos {
            while let Ok(event) = events.try_recv() {
                self.held.push_back(event);
            }
            while self.held.front().is_some_and(|event| {
                !matches!(event, ServerEvent::Disconnected) && position(event) < pos
            }) {
                if let Some(event) = self.held.pop_front() {
                    self.handle(event).await;
                }
            }
            self.acked.fetch_max(pos, Ordering::Relaxed);
        }
        let identity = &self.shared.identity;
        let outs = self
            .shared
            .lobby()
            .map(|mut lobby| match (ack.what, ack.pos) {
                (OwnSend::Commit, Some(_)) => lobby.commit_acked(identity),
                (OwnSend::Commit, None) => lobby.commit_failed(identity),
                (OwnSend::Lobby(what), Some(pos)) => lobby.sent(what, pos, identity),
                (OwnSend::Lobby(_), None) => Vec::new(),
            });
        if let Some(outs) = outs {
            self.run_outs(outs, None).await;
        }
    }

    /// The name people know a key by: a present member's, else its short fingerprint.
    fn name_of(&self, key: &PublicKey) -> String {
        self.roster
            .members()
            .into_iter()
            .find(|m| m.key == *key)
            .map(|m| m.name)
            .unwrap_or_else(|| {
                let fingerprint = key.fingerprint().to_string();
                format!("someone ({})", &fingerprint[..9])
            })
    }

    /// Tells the person what the lobby said, and keeps the link in step with it.
    async fn show(&mut self, shown: Shown, context: Option<(u64, bool)>) {
        match shown {
            Shown::Waiting { knock_room } => {
                self.link.send_replace(LinkState::Connecting);
                self.emit(SessionEvent::Waiting { knock_room }).await;
            }
            Shown::In { epoch } => {
                if let Some((client, member, limits)) = self.current.clone() {
                    self.publish_link(&client, &member, limits);
                }
                self.emit(SessionEvent::LetIn { epoch }).await;
            }
            Shown::Knock { member } => {
                if let Some(member) = self.roster.get(&member).cloned() {
                    self.emit(SessionEvent::Knock { member }).await;
                }
            }
            Shown::Epoch {
                epoch,
                committer,
                added,
                removed,
            } => {
                let by = self.name_of(&committer);
                let added = added.iter().map(|k| self.name_of(k)).collect();
                let removed = removed.iter().map(|k| self.name_of(k)).collect();
                self.emit(SessionEvent::KeysChanged {
                    epoch,
                    by,
                    added,
                    removed,
                })
                .await;
            }
            Shown::Lost { why } => {
                self.link.send_replace(LinkState::Connecting);
                self.emit(SessionEvent::KeysLost {
                    message: format!("{why}: asking to be let in again."),
                })
                .await;
            }
            Shown::Message { from, plaintext } => {
                let Some(sender) = self.roster.get(&from).cloned() else {
                    return;
                };
                let (ts, direct) = context.unwrap_or((now_ms(), false));
                match Body::from_json(&plaintext) {
                    Ok(Body::Profile(_)) | Err(_) => {
                        self.warn(format!(
                            "A malformed message from {} was not shown.",
                            sender.name
                        ))
                        .await;
                    }
                    Ok(body) => {
                        if let Some(sent_at) = body.sent_at() {
                            self.on_body(sender, body, sent_at, ts, direct).await;
                        }
                    }
                }
            }
            Shown::Warning(message) => self.warn(message).await,
        }
    }

    /// A verified body from `sender`, delivered at `ts`.
    async fn on_body(&mut self, sender: Member, body: Body, sent_at: u64, ts: u64, direct: bool) {
        match body {
            Body::Text(text) => {
                let message = MessageRef {
                    key: sender.key,
                    sent_at,
                };
                self.shared.conversation().record(message);
                self.emit(SessionEvent::Message {
                    from: sender,
                    message,
                    reply_to: text.reply_to.map(|to| {
                        Box::new(ReplyTo {
                            to,
                            quote: text.quote,
                        })
                    }),
                    ts,
                    sent_at,
                    text: text.text,
                    direct,
                })
                .await;
            }
            Body::Edit(edit) => {
                let applied = self.shared.conversation().edit(&sender.key, &edit);
                match applied {
                    // Unknown here but signed by its author: quotes of it in replies change.
                    Ok(()) | Err(Refused::Unknown) => {
                        self.emit(SessionEvent::Edited {
                            from: sender,
                            message: edit.to,
                            text: edit.text,
                        })
                        .await;
                    }
                    Err(refused) => self.refused(&sender, "edit", refused).await,
                }
            }
            Body::Delete(delete) => {
                let applied = self.shared.conversation().delete(&sender.key, &delete);
                match applied {
                    Ok(()) | Err(Refused::Unknown) => {
                        self.emit(SessionEvent::Deleted {
                            from: sender,
                            message: delete.to,
                        })
                        .await;
                    }
                    Err(refused) => self.refused(&sender, "delete", refused).await,
                }
            }
            Body::Reaction(reaction) => {
                let applied =
                    self.shared
                        .conversation()
                        .react(&sender.key, &sender.name, &reaction);
                if let Ok(reactions) = applied {
                    self.emit(SessionEvent::Reacted {
                        from: sender,
                        message: reaction.to,
                        emoji: reaction.emoji,
                        add: reaction.add,
                        reactions,
                    })
                    .await;
                }
            }
            Body::Typing(_) => self.emit(SessionEvent::Typing { from: sender }).await,
            Body::File(offer) => {
                let Some(limits) = self.limits else { return };
                match self.files.announce(&sender, ts, &offer, &limits) {
                    Ok(file) => {
                        self.emit(SessionEvent::FileOffered {
                            from: sender,
                            ts,
                            file,
                        })
                        .await;
                    }
                    Err(reason) => {
                        self.emit(SessionEvent::FileFailed {
                            from: sender,
                            file: FileInfo::from_offer(&offer),
                            reason,
                        })
                        .await;
                    }
                }
            }
            Body::Profile(_) | Body::Unknown => {}
        }
    }

    /// An edit or deletion that changed nothing: someone else's is worth a warning (a
    /// member tried to change another's words); the rest (a message sent before this
    /// session joined, an older edit arriving late) is ignored.
    async fn refused(&mut self, sender: &Member, what: &str, refused: Refused) {
        if refused == Refused::NotAuthor {
            self.warn(format!(
                "{} tried to {what} someone else's message; it was ignored.",
                sender.name
            ))
            .await;
        }
    }

    async fn on_chunk(&mut self, chunk: ChunkEvent) {
        match self
            .files
            .chunk(&chunk.from, &chunk.file, chunk.seq, chunk.data.0)
        {
            ChunkOutcome::Pending | ChunkOutcome::Unknown => {}
            ChunkOutcome::Complete {
                from,
                ts,
                info,
                data,
            } => {
                self.emit(SessionEvent::FileReceived {
                    from,
                    ts,
                    file: info,
                    data,
                })
                .await;
            }
            ChunkOutcome::Failed { from, info, reason } => {
                self.emit(SessionEvent::FileFailed {
                    from,
                    file: info,
                    reason,
                })
                .await;
            }
        }
    }
}

/// Closes the connection if this was the last handle to it (sends still in flight
/// keep theirs and see it fail).
async fn close(client: Arc<Client>) {
    match Arc::try_unwrap(client) {
        Ok(client) => client.close().await,
        Err(shared) => shared.disconnect().await,
    }
}
