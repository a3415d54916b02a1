//! The session's one task that reads the connection: joins, keeps the roster, opens
//! and verifies every incoming message, reassembles files, and reconnects.
//!
//! Incoming events are handled one at a time in the order the server sent them, so a
//! member's profile is always known before their messages. On a lost connection it
//! publishes [`LinkState::Connecting`] (outgoing sends wait), reconnects with backoff
//! (0.5 s doubling to 5 s), seals the profile again for the new member id, rejoins,
//! reconciles the roster and publishes the new link.

use super::incoming::{ChunkOutcome, IncomingFiles};
use super::outgoing::{Link, LinkState};
use super::replay::ReplayGuard;
use super::roster::{Roster, open_member_profile};
use super::{Control, FileInfo, Member, SessionError, SessionEvent, Shared, crypto_member, now_ms};
use crate::client::{Client, ClientError, ServerEvent};
use bytes::Bytes;
use std::sync::Arc;
use std::time::Duration;
use streamchat_crypto::{Body, OpenError, Profile, encoding, open, seal};
use streamchat_protocol::{
    ChunkEvent, ErrorCode, JoinAck, LeaveReason, Limits, MsgEvent, PresenceEvent, notice_codes,
};
use tokio::sync::{mpsc, oneshot, watch};

const RECONNECT_START: Duration = Duration::from_millis(500);
const RECONNECT_MAX: Duration = Duration::from_secs(5);
/// Refusals for rate of a join in a row before the join counts as failed.
const MAX_JOIN_RATE_RETRIES: u32 = 10;

/// A connection that has joined the room.
pub(crate) struct Joined {
    pub(crate) client: Arc<Client>,
    pub(crate) events: mpsc::Receiver<ServerEvent>,
    pub(crate) ack: JoinAck,
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

/// Connects and joins with a profile sealed for the new connection's member id.
pub(crate) async fn connect_and_join(shared: &Shared) -> Result<Joined, SessionError> {
    let (client, events) = Client::connect_with(&shared.server_url, &shared.connect).await?;
    let member = crypto_member(client.member_id());
    let profile = sealed_profile(shared, &member)?;
    let mut pause = Duration::from_millis(100);
    for _ in 0..MAX_JOIN_RATE_RETRIES {
        match client.join(&shared.room, &profile).await? {
            Ok(ack) => {
                return Ok(Joined {
                    client: Arc::new(client),
                    events,
                    ack,
                });
            }
            Err(e) if e.code == ErrorCode::RateLimited => {
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(2));
            }
            Err(e) => {
                client.close().await;
                return Err(SessionError::Refused(e));
            }
        }
    }
    client.close().await;
    Err(SessionError::Connect(ClientError::Refused(
        "rate_limited: the server kept refusing the join".to_owned(),
    )))
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
    /// Set when the UI stopped listening: events are no longer sent.
    ui_gone: bool,
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
            ui_gone: false,
        }
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

    pub(crate) async fn run(mut self, first: Joined, mut control: mpsc::Receiver<Control>) {
        let mut joined = first;
        let mut rejoin = false;
        let closed_reason = loop {
            let client = joined.client.clone();
            self.on_joined(&joined, rejoin).await;
            let end = self.serve(&mut joined.events, &client, &mut control).await;
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
                    for (from, file) in self.files.drop_all() {
                        self.emit(SessionEvent::FileFailed {
                            from,
                            file,
                            reason: "the connection was lost".to_owned(),
                        })
                        .await;
                    }
                    self.emit(SessionEvent::Disconnected {
                        reason: reason.clone(),
                    })
                    .await;
                    if !self.reconnect || self.ui_gone {
                        self.link.send_replace(LinkState::Closed);
                        break reason;
                    }
                    match self.reconnect(&mut control).await {
                        Ok(next) => {
                            joined = next;
                            rejoin = true;
                        }
                        Err(reason) => {
                            self.link.send_replace(LinkState::Closed);
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

    /// Retries connect and join with backoff until it works, the UI leaves, or the
    /// server refuses for good.
    async fn reconnect(&mut self, control: &mut mpsc::Receiver<Control>) -> Result<Joined, String> {
        let mut pause = RECONNECT_START;
        loop {
            let attempt = async {
                tokio::time::sleep(pause).await;
                connect_and_join(&self.shared).await
            };
            tokio::select! {
                result = attempt => match result {
                    Ok(joined) => return Ok(joined),
                    Err(e) if retryable(&e) => {
                        tracing::debug!(error = %e, "reconnect failed; retrying");
                        pause = (pause * 2).min(RECONNECT_MAX);
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
                    Some(Control::Typing) => {}
                },
            }
        }
    }

    async fn on_joined(&mut self, joined: &Joined, rejoin: bool) {
        let ack = &joined.ack;
        self.limits = Some(ack.limits);
        let me = self.shared.member_view(&ack.member, ack.at);
        let mut present = vec![me.clone()];
        for info in &ack.members {
            match open_member_profile(&self.shared.keys, &info.member, &info.profile, info.at) {
                Ok(member) => present.push(member),
                Err(e) => self.profile_warning(&e.to_string()).await,
            }
        }
        let outcome = self.roster.replace_all(present);
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
        if rejoin {
            for (member, returning) in outcome.arrived {
                self.emit(SessionEvent::MemberJoined { member, returning })
                    .await;
            }
        }
        self.generation += 1;
        self.link.send_replace(LinkState::Up(Link {
            client: joined.client.clone(),
            protocol_member: ack.member.clone(),
            member: crypto_member(&ack.member),
            limits: ack.limits,
            generation: self.generation,
        }));
    }

    async fn serve(
        &mut self,
        events: &mut mpsc::Receiver<ServerEvent>,
        client: &Client,
        control: &mut mpsc::Receiver<Control>,
    ) -> End {
        loop {
            tokio::select! {
                event = events.recv() => match event {
                    None | Some(ServerEvent::Disconnected) => {
                        return End::Disconnected("the connection was lost".to_owned());
                    }
                    Some(event) => self.handle(event).await,
                },
                command = control.recv() => match command {
                    None => return End::Leave(None),
                    Some(Control::Leave(done)) => return End::Leave(Some(done)),
                    Some(Control::Typing) => self.send_typing(client).await,
                },
            }
        }
    }

    async fn send_typing(&mut self, client: &Client) {
        let body = format!(r#"{{"type":"typing","sent_at":{}}}"#, now_ms());
        let member = crypto_member(client.member_id());
        if let Ok(sealed) = seal(
            &self.shared.keys,
            &member,
            &self.shared.identity,
            body.as_bytes(),
        ) {
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

    async fn handle(&mut self, event: ServerEvent) {
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
                        let returning = self.roster.insert(m.clone());
                        self.emit(SessionEvent::MemberJoined {
                            member: m,
                            returning,
                        })
                        .await;
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
            }
            // A member reconnecting within the grace is still a member: nothing to show
            // in a timeline (its leave comes if the grace runs out).
            PresenceEvent::Away { .. } | PresenceEvent::Back { .. } => {}
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
        match body {
            Body::Text(text) => {
                self.emit(SessionEvent::Message {
                    from: sender,
                    ts: msg.ts,
                    sent_at,
                    text: text.text,
                    direct: msg.to.is_some(),
                })
                .await;
            }
            Body::Typing(_) => self.emit(SessionEvent::Typing { from: sender }).await,
            Body::File(offer) => {
                let Some(limits) = self.limits else { return };
                match self.files.announce(&sender, msg.ts, &offer, &limits) {
                    Ok(file) => {
                        self.emit(SessionEvent::FileOffered {
                            from: sender,
                            ts: msg.ts,
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
