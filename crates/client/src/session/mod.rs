//! A person's end-to-end encrypted session in one room, on top of [`Client`](crate::Client): the
//! layer the terminal UI, the JSON mode and tests talk to. It never hands out a key.
//!
//! What it does, in the order a session meets it:
//! - **Join.** Connects, seals a signed `profile` body (`{"type":"profile","name","key",
//!   "sent_at"}`, docs/crypto.md §6) for the member id the server gave this connection, and joins
//!   with it as base64url.
//! - **Roster.** Opens every member's profile for *that* member id (the aad and the
//!   signature bind it) and verifies it with the key it announces (`session/roster.rs`). A member
//!   whose profile fails is not shown, and their messages are dropped with a warning.
//! - **Text.** Seals and signs outgoing text; opens incoming text and verifies it with the
//!   sender's profile key. Anything that fails to decrypt or verify becomes a
//!   [`SessionEvent::Warning`], never a message. Replays are dropped (`session/replay.rs`).
//! - **Files.** Announces a file with a sealed `file` body, then sends its STREAM-encrypted
//!   chunks (`seq` = chunk index, 256 KiB of plaintext each, larger only when a file would
//!   otherwise need more chunks than the server relays) paced by acks with a small window
//!   (`session/outgoing.rs`); receives, reorders within a small window, decrypts, checks the SHA-256
//!   and hands the whole file over in memory (`session/incoming.rs`).
//! - **Presence and reconnection.** A lost connection is retried with backoff. The new
//!   connection first *resumes* (docs/protocol.md, "Resumable sessions"): the session keeps
//!   the room's epoch, the last position it saw and its resume token, and comes back as
//!   the same member, with its roster and crypto state, receiving what it missed as if
//!   live. If the server refuses (the grace ran out, the server restarted), the new socket
//!   id is a new member id: the profile is sealed again, the room is joined with `since`,
//!   the roster is reconciled, and a [`SessionEvent::Gap`] says what could not be
//!   recovered (`session/driver.rs`). Others who reconnect are [`SessionEvent::MemberAway`] then
//!   [`SessionEvent::MemberBack`], never a leave and a join.
//! - **Exactly once.** Every outgoing message carries a client id; what was not
//!   acknowledged when the connection dropped is resent with the same id once the session
//!   is back, and the server relays it only if it had not already.
//! - **Replies, reactions, edits, deletions.** New bodies that name a message by its
//!   author's key and `sent_at` (docs/crypto.md §8); an edit or deletion counts only when
//!   signed by the message's author (`session/conversation.rs`).
//! - **Rate limits.** A `rate_limited` refusal is retried after a growing pause, in order.
//!
//! Everything the UI needs arrives as [`SessionEvent`]s on one bounded channel; what it
//! wants done goes through the [`Session`] handle.

mod conversation;
mod driver;
#[doc(hidden)]
pub mod fuzzing;
mod incoming;
mod lobby;
mod outgoing;
mod replay;
mod roster;

use crate::client::{ClientError, ConnectOptions};
use bytes::Bytes;
use serde::Serialize;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use streamchat_crypto::{
    Body, Delete, Edit, FileKey, IdentityKey, MAX_QUOTE_UTF16, PublicKey, Reaction, RoomKeys,
    RoomKind, RoomSecret, Text, encoding,
};
use streamchat_protocol::{ErrorBody, LeaveReason, Limits, MemberId};
use tokio::sync::{mpsc, oneshot, watch};

pub use conversation::{MAX_EMOJI_PER_MEMBER, MAX_KNOWN, ReactionCount, Refused};
pub use roster::MAX_NAME_CHARS;
pub use streamchat_crypto::MessageRef;

/// Capacity of the session-event channel; a UI that stops reading holds the session
/// back, and the server eventually sees a slow receiver.
const EVENT_BUFFER: usize = 1024;
/// Texts and files waiting to be sent, each.
const OUTBOX_BUFFER: usize = 256;

/// What a session needs to start.
#[derive(Debug, Clone)]
pub struct SessionConfig {
    /// The server's base URL, `http://host:port`.
    pub server_url: String,
    /// The room secret (from the invite link's fragment).
    pub secret: RoomSecret,
    /// The name shown to the others (cleaned and cut to [`MAX_NAME_CHARS`]).
    pub name: String,
    /// How to connect.
    pub connect: ConnectOptions,
    /// Whether to reconnect and rejoin after a lost connection. Default true.
    pub reconnect: bool,
    /// Which kind of room the link names (docs/crypto.md §17.1). Default v1.
    pub kind: RoomKind,
}

impl SessionConfig {
    /// A config with default connect options and reconnection on.
    pub fn new(server_url: impl Into<String>, secret: RoomSecret, name: impl Into<String>) -> Self {
        Self {
            server_url: server_url.into(),
            secret,
            name: name.into(),
            connect: ConnectOptions::default(),
            reconnect: true,
            kind: RoomKind::V1,
        }
    }
}

/// A member as the UI shows them: a verified name and key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Member {
    /// The member id (the Socket.IO id of the connection that joined); kept across a
    /// resume, new when the member has to join again.
    pub member: MemberId,
    /// The name from the member's verified profile (cleaned of control characters).
    pub name: String,
    /// The fingerprint of `key`: five groups of four hex digits.
    pub fingerprint: String,
    /// The member's Ed25519 public key (base64url), stable across their reconnections.
    pub key: PublicKey,
    /// When they joined (server ms).
    pub joined_at: u64,
    /// Whether this is this session's own member.
    #[serde(rename = "self")]
    pub is_self: bool,
}

/// What a `file` body says about a file, cleaned for display.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FileInfo {
    /// The transfer id (16 base64url characters).
    pub id: String,
    /// The file's name as the sender gave it, without path separators or control characters.
    pub name: String,
    /// The MIME type the sender declares.
    pub mime: String,
    /// Plaintext size in bytes.
    pub size: u64,
    /// Number of chunks.
    pub chunks: u32,
    /// SHA-256 of the plaintext, base64url.
    pub sha256: String,
}

/// The local id of something this session was asked to send.
pub type SendId = u64;

/// What a reply names: the message answered and, for receivers that do not have it, the
/// start of it as the replier saw it (untrusted: the replier wrote it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReplyTo {
    /// The message answered.
    pub to: MessageRef,
    /// Its start as the replier quoted it.
    pub quote: Option<String>,
}

/// A text of this session's own, queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Queued {
    /// Its send id (for [`SessionEvent::Sent`] and [`SessionEvent::SendFailed`]).
    pub id: SendId,
    /// How this session and the others name it (for replies, reactions, edits).
    pub message: MessageRef,
}

/// This session's reaction was put on or taken back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reacted {
    /// Its send id.
    pub id: SendId,
    /// True if it was put on, false if taken back (the same emoji again toggles).
    pub add: bool,
    /// The message's reactions now.
    pub reactions: Vec<ReactionCount>,
}

/// A reaction, edit or deletion could not be sent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ActionError {
    /// The session has ended.
    #[error(transparent)]
    Closed(#[from] SessionClosed),
    /// Not this person's message, unknown or deleted.
    #[error(transparent)]
    Refused(#[from] Refused),
    /// Not an emoji a reaction can carry (1 to 32 bytes, no spaces or control characters).
    #[error("a reaction is one emoji (no spaces, at most 32 bytes)")]
    BadEmoji,
    /// An edit with no visible text (delete the message instead).
    #[error("the new text is empty")]
    EmptyText,
}

/// Everything that happens in the session, in order.
#[derive(Debug, Clone)]
pub enum SessionEvent {
    /// Joined the room (again, when `rejoin`): this session's member and the others present.
    Ready {
        /// This session as a member.
        me: Member,
        /// The others present, verified.
        members: Vec<Member>,
        /// The server's limits.
        limits: Limits,
        /// True after a reconnection.
        rejoin: bool,
    },
    /// Someone joined.
    MemberJoined {
        /// Who, verified.
        member: Member,
        /// True when their key was seen in this session before (they reconnected).
        returning: bool,
    },
    /// Someone's connection dropped: they are reconnecting and still a member (nothing
    /// for a timeline; a member list may mark them). [`SessionEvent::MemberBack`] follows
    /// if they come back in time, else [`SessionEvent::MemberLeft`].
    MemberAway {
        /// Who.
        member: Member,
    },
    /// Someone who was away is back, having missed nothing (nothing for a timeline).
    MemberBack {
        /// Who.
        member: Member,
    },
    /// Someone left.
    MemberLeft {
        /// Who.
        member: Member,
        /// When (server ms; local time for departures noticed after a reconnection).
        at: u64,
        /// Why.
        reason: LeaveReason,
    },
    /// A verified text message from another member.
    Message {
        /// The sender.
        from: Member,
        /// How to name it in a reply, reaction, edit or deletion.
        message: MessageRef,
        /// The message it answers, if it is a reply (boxed: a key is large).
        reply_to: Option<Box<ReplyTo>>,
        /// Server time of acceptance (ms).
        ts: u64,
        /// The sender's clock (ms), as signed.
        sent_at: u64,
        /// The text, exactly as signed (not cleaned: display code must make it safe).
        text: String,
        /// Sent to this member only.
        direct: bool,
    },
    /// The author of a text changed it (verified: signed by the key that signed the
    /// text; the latest edit wins). The text may be one this session does not have (sent
    /// before it joined): then only quotes of it in replies change.
    Edited {
        /// The author.
        from: Member,
        /// The text changed.
        message: MessageRef,
        /// Its new text, exactly as signed (not cleaned).
        text: String,
    },
    /// The author of a text deleted it (and its reactions); as for edits, the text may
    /// be one this session does not have, quoted in a reply.
    Deleted {
        /// The author.
        from: Member,
        /// The text deleted.
        message: MessageRef,
    },
    /// Someone put a reaction on a known text or took theirs back.
    Reacted {
        /// Who.
        from: Member,
        /// The text.
        message: MessageRef,
        /// The emoji (checked: short, no spaces or control characters; not cleaned otherwise).
        emoji: String,
        /// Put on (true) or taken back.
        add: bool,
        /// The text's reactions now.
        reactions: Vec<ReactionCount>,
    },
    /// Another member is typing.
    Typing {
        /// Who.
        from: Member,
    },
    /// Another member announced a file; its chunks follow.
    FileOffered {
        /// The sender.
        from: Member,
        /// Server time of the announcement.
        ts: u64,
        /// The file.
        file: FileInfo,
    },
    /// A file arrived whole, decrypted, in order and matching its SHA-256. In memory only.
    FileReceived {
        /// The sender.
        from: Member,
        /// Server time of the announcement.
        ts: u64,
        /// The file.
        file: FileInfo,
        /// Its content.
        data: Bytes,
    },
    /// An incoming file was abandoned (tampered, incomplete, too large, sender left).
    FileFailed {
        /// The sender.
        from: Member,
        /// The file.
        file: FileInfo,
        /// Why, for people.
        reason: String,
    },
    /// A text of ours was accepted by the server.
    Sent {
        /// The id [`Session::send_text`] returned.
        id: SendId,
        /// Server time of acceptance (ms), the time the others see.
        ts: u64,
    },
    /// Progress of a file of ours: chunks acknowledged so far.
    FileProgress {
        /// The id [`Session::send_file`] returned.
        id: SendId,
        /// Chunks acknowledged.
        sent: u32,
        /// Chunks in all.
        chunks: u32,
    },
    /// A file of ours was sent completely.
    FileSent {
        /// The id [`Session::send_file`] returned.
        id: SendId,
        /// The file.
        file: FileInfo,
        /// Server time of the announcement (ms).
        ts: u64,
    },
    /// A text or file of ours could not be sent.
    SendFailed {
        /// Its id.
        id: SendId,
        /// Why, for people.
        reason: String,
    },
    /// Something was dropped or refused: a message that failed decryption or its
    /// signature, a profile that did not verify, a server refusal.
    /// A v2 room (docs/crypto.md §17): this person is not in the room's keys, and waits
    /// to be let in; what they send waits too. `knock_room`: someone here must let them in.
    Waiting {
        /// Whether a member must let this person in (else any member's client does).
        knock_room: bool,
    },
    /// A v2 room: this person is in the room's keys (it created them, or was let in).
    LetIn {
        /// The MLS epoch it is in.
        epoch: u64,
    },
    /// A v2 room where newcomers knock: `member` asks to be let in
    /// ([`Session::let_in`]). Compare its fingerprint before letting it in.
    Knock {
        /// Who knocks.
        member: Member,
    },
    /// A v2 room: the room's keys changed (someone was let in, or someone who left was
    /// removed); what follows is sealed for the members of `epoch` only.
    KeysChanged {
        /// The new MLS epoch.
        epoch: u64,
        /// Who made the change (a name, or a short fingerprint).
        by: String,
        /// Who was let in.
        added: Vec<String>,
        /// Who was removed.
        removed: Vec<String>,
    },
    /// A v2 room: this person lost the room's keys (removed after being away too long,
    /// or a key change was missed) and knocks again.
    KeysLost {
        /// What to tell the person.
        message: String,
    },
    Warning {
        /// For people.
        message: String,
    },
    /// Server news (`notice`), e.g. `shutting_down`.
    Notice {
        /// The notice code.
        code: String,
        /// For people.
        message: String,
    },
    /// The connection was lost; the session is reconnecting.
    Disconnected {
        /// Why, for people.
        reason: String,
    },
    /// Reconnected as the same member: nobody saw this session leave, and what was sent
    /// meanwhile follows as ordinary events (a [`SessionEvent::Gap`] first if part of it
    /// could not be kept for this session).
    Resumed {
        /// How long the connection was lost.
        offline_for: Duration,
        /// How many events the server replays.
        replayed: u64,
    },
    /// Messages sent while this session was offline could not be recovered (it could
    /// not resume, or the server no longer had all of them). Files that were arriving
    /// have failed.
    Gap {
        /// Messages lost; a lower bound when `exact` is false (0 then means "unknown").
        messages: u64,
        /// Whether `messages` is the exact count.
        exact: bool,
        /// How long the connection was lost.
        offline_for: Duration,
    },
    /// The session ended (left, or refused for good). No event follows.
    Closed {
        /// Why, for people.
        reason: String,
    },
}

/// The session could not start.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    /// Connecting failed.
    #[error(transparent)]
    Connect(#[from] ClientError),
    /// The server refused the join.
    #[error("the server refused to join the room: {} ({})", .0.message, .0.code.as_str())]
    Refused(ErrorBody),
    /// No randomness for keys.
    #[error(transparent)]
    Randomness(#[from] streamchat_crypto::RandomnessUnavailable),
    /// The name is empty after cleaning.
    #[error("the name must have at least one visible character")]
    BadName,
}

/// The session has ended; nothing more can be sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the session has ended")]
pub struct SessionClosed;

/// Control commands for the driver.
enum Control {
    Typing,
    /// Lets a knocking member in (v2 knock rooms).
    LetIn(MemberId),
    Leave(oneshot::Sender<()>),
    /// Test hook: drop the transport as a network failure would, and wait this long
    /// before reconnecting.
    DropTransport(Duration),
}

/// The handle to a running session. Dropping it leaves the room.
#[derive(Debug)]
pub struct Session {
    me: Member,
    control: mpsc::Sender<Control>,
    texts: mpsc::Sender<outgoing::OutgoingText>,
    files: mpsc::Sender<outgoing::OutgoingFile>,
    next_id: AtomicU64,
    shared: Arc<Shared>,
    link: watch::Receiver<outgoing::LinkState>,
    outbox_tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl std::fmt::Debug for Control {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Control::Typing => f.write_str("Typing"),
            Control::LetIn(member) => write!(f, "LetIn({member})"),
            Control::Leave(_) => f.write_str("Leave"),
            Control::DropTransport(hold) => write!(f, "DropTransport({hold:?})"),
        }
    }
}

impl Session {
    /// Connects, joins with a freshly sealed profile and starts the session. The first
    /// event on the returned channel is [`SessionEvent::Ready`].
    pub async fn start(
        config: SessionConfig,
    ) -> Result<(Session, mpsc::Receiver<SessionEvent>), SessionError> {
        let name = roster::clean_name(&config.name).ok_or(SessionError::BadName)?;
        let identity = IdentityKey::generate()?;
        let identity_key = identity.public_key();
        let keys = config.secret.room_keys_for(config.kind);
        // Message ids: a random prefix for this session and a counter, so they are
        // unique among this member's messages (and short).
        let prefix = encoding::encode(&FileKey::generate()?.as_bytes()[..12]);
        let room = protocol_room_id(&keys);
        let lobby = config.kind.is_v2().then(|| {
            Mutex::new(lobby::Lobby::new(
                room.as_str(),
                config.kind == RoomKind::Open,
            ))
        });
        let shared = Arc::new(Shared {
            server_url: config.server_url.clone(),
            connect: config.connect.clone(),
            room,
            lobby,
            keys,
            identity,
            name,
            msg_id_prefix: prefix,
            next_msg_id: AtomicU64::new(1),
            last_sent_at: AtomicU64::new(0),
            conversation: Mutex::new(conversation::Conversation::new(identity_key)),
        });
        let first = driver::connect_and_join(&shared).await?;
        let (events_tx, events_rx) = mpsc::channel(EVENT_BUFFER);
        let (link_tx, link_rx) = watch::channel(outgoing::LinkState::Connecting);
        let (control_tx, control_rx) = mpsc::channel(16);
        let (texts_tx, texts_rx) = mpsc::channel(OUTBOX_BUFFER);
        let (files_tx, files_rx) = mpsc::channel(OUTBOX_BUFFER);
        let me = shared.member_view(&first.ack.member, first.ack.at);
        let first = driver::Connected::from(first);
        let outbox_tasks = vec![
            tokio::spawn(outgoing::run_texts(
                shared.clone(),
                link_rx.clone(),
                texts_rx,
                events_tx.clone(),
            )),
            tokio::spawn(outgoing::run_files(
                shared.clone(),
                link_rx.clone(),
                files_rx,
                events_tx.clone(),
            )),
        ];
        tokio::spawn(
            driver::Driver::new(shared.clone(), events_tx, link_tx, config.reconnect)
                .run(first, control_rx),
        );
        let session = Session {
            me,
            control: control_tx,
            texts: texts_tx,
            files: files_tx,
            next_id: AtomicU64::new(1),
            shared,
            link: link_rx,
            outbox_tasks,
        };
        Ok((session, events_rx))
    }

    /// This session as a member when it first joined (name, key and fingerprint stay;
    /// the member id changes when the session has to join again rather than resume).
    pub fn me(&self) -> &Member {
        &self.me
    }

    /// This session's current member id, if connected.
    pub fn member_id(&self) -> Option<MemberId> {
        match &*self.link.borrow() {
            outgoing::LinkState::Up(link) => Some(link.protocol_member.clone()),
            _ => None,
        }
    }

    /// Queues a text; its outcome arrives as [`SessionEvent::Sent`] or
    /// [`SessionEvent::SendFailed`] with the returned id.
    pub async fn send_text(&self, text: impl Into<String>) -> Result<SendId, SessionClosed> {
        Ok(self.queue_text(text, None).await?.id)
    }

    /// Queues a text, a reply when `reply_to` names the message answered and its text
    /// (quoted up to 200 UTF-16 code units); returns its send id and its reference.
    pub async fn queue_text(
        &self,
        text: impl Into<String>,
        reply_to: Option<(MessageRef, &str)>,
    ) -> Result<Queued, SessionClosed> {
        let sent_at = self.shared.next_sent_at();
        let message = MessageRef {
            key: self.me.key,
            sent_at,
        };
        let body = Body::Text(Text {
            text: text.into(),
            reply_to: reply_to.map(|(to, _)| to),
            quote: reply_to.map(|(_, quote)| {
                streamchat_crypto::body::cut_utf16(quote, MAX_QUOTE_UTF16).to_owned()
            }),
            sent_at,
        });
        let id = self.queue_body(body).await?;
        self.shared.conversation().record(message);
        Ok(Queued { id, message })
    }

    /// Puts this person's reaction `emoji` on `message`, or takes it back if it is on.
    pub async fn react(&self, message: MessageRef, emoji: &str) -> Result<Reacted, ActionError> {
        if !streamchat_crypto::body::is_emoji_like(emoji) {
            return Err(ActionError::BadEmoji);
        }
        let reaction = Reaction {
            to: message,
            emoji: emoji.to_owned(),
            add: !self.shared.conversation().has_own_reaction(&message, emoji),
            sent_at: self.shared.next_sent_at(),
        };
        let reactions = self
            .shared
            .conversation()
            .react(&self.me.key, &self.me.name, &reaction)?;
        let add = reaction.add;
        let id = self.queue_body(Body::Reaction(reaction)).await?;
        Ok(Reacted { id, add, reactions })
    }

    /// Replaces the text of one of this person's messages (the others see it marked edited).
    pub async fn edit(
        &self,
        message: MessageRef,
        text: impl Into<String>,
    ) -> Result<SendId, ActionError> {
        let text = text.into();
        if text.trim().is_empty() {
            return Err(ActionError::EmptyText);
        }
        let edit = Edit {
            to: message,
            text,
            sent_at: self.shared.next_sent_at(),
        };
        {
            let mut conversation = self.shared.conversation();
            conversation.own_and_live(&message)?;
            conversation.edit(&self.me.key, &edit)?;
        }
        Ok(self.queue_body(Body::Edit(edit)).await?)
    }

    /// Deletes one of this person's messages for everyone ("message deleted").
    pub async fn delete(&self, message: MessageRef) -> Result<SendId, ActionError> {
        let delete = Delete {
            to: message,
            sent_at: self.shared.next_sent_at(),
        };
        {
            let mut conversation = self.shared.conversation();
            conversation.own_and_live(&message)?;
            conversation.delete(&self.me.key, &delete)?;
        }
        Ok(self.queue_body(Body::Delete(delete)).await?)
    }

    /// Queues a body behind the texts before it.
    async fn queue_body(&self, body: Body) -> Result<SendId, SessionClosed> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        self.texts
            .send(outgoing::OutgoingText { id, body })
            .await
            .map_err(|_| SessionClosed)?;
        Ok(id)
    }

    /// Queues a file held in memory; progress and outcome arrive as
    /// [`SessionEvent::FileProgress`], [`SessionEvent::FileSent`] or
    /// [`SessionEvent::SendFailed`].
    pub async fn send_file(
        &self,
        name: impl Into<String>,
        mime: impl Into<String>,
        data: Bytes,
    ) -> Result<SendId, SessionClosed> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        self.files
            .send(outgoing::OutgoingFile {
                id,
                name: name.into(),
                mime: mime.into(),
                data,
            })
            .await
            .map_err(|_| SessionClosed)?;
        Ok(id)
    }

    /// Lets `member`, who knocks, into a v2 room ([`SessionEvent::Knock`]): this
    /// session commits its add; [`SessionEvent::KeysChanged`] follows.
    pub async fn let_in(&self, member: &MemberId) -> Result<(), SessionClosed> {
        self.control
            .send(Control::LetIn(member.clone()))
            .await
            .map_err(|_| SessionClosed)
    }

    /// Tells the others this person is typing (sealed `typing` body); best effort.
    pub fn typing(&self) {
        // Best effort by design: a full queue means typing news is already on its way.
        let _ = self.control.try_send(Control::Typing);
    }

    /// Test hook: closes the transport without a goodbye, as a network failure looks to
    /// the server, and makes the session wait `offline_for` before it reconnects (and
    /// resumes, or joins again once the server's grace has run out).
    #[doc(hidden)]
    pub async fn simulate_network_drop(&self, offline_for: Duration) {
        let _ = self.control.send(Control::DropTransport(offline_for)).await;
    }

    /// Sends what is still queued (for at most `drain`), then leaves the room and closes
    /// the connection; resolves once the server acked the leave (or after a few seconds).
    /// Events for the queued sends still arrive while this waits, so keep reading them
    /// (or drop the receiver).
    pub async fn leave(self, drain: Duration) {
        let Session {
            control,
            texts,
            files,
            outbox_tasks,
            ..
        } = self;
        // Closing the queues lets the senders finish what is queued and stop.
        drop(texts);
        drop(files);
        let _ = tokio::time::timeout(drain, futures_util::future::join_all(outbox_tasks)).await;
        let (tx, rx) = oneshot::channel();
        if control.send(Control::Leave(tx)).await.is_ok() {
            let _ = tokio::time::timeout(Duration::from_secs(5), rx).await;
        }
    }
}

/// What every part of a session shares: where, which room, which keys, who.
pub(crate) struct Shared {
    server_url: String,
    connect: ConnectOptions,
    room: streamchat_protocol::RoomId,
    /// A v2 room's group and lobby (docs/crypto.md §17); `None` in a v1 room.
    lobby: Option<Mutex<lobby::Lobby>>,
    keys: RoomKeys,
    identity: IdentityKey,
    name: String,
    msg_id_prefix: String,
    next_msg_id: AtomicU64,
    /// The last `sent_at` given to a body of this session: each gets a later one, so a
    /// [`MessageRef`] names one message.
    last_sent_at: AtomicU64,
    conversation: Mutex<conversation::Conversation>,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("room", &self.room)
            .finish_non_exhaustive()
    }
}

impl Shared {
    /// A fresh client id for an outgoing `msg`: 16 random base64url characters, `-`, a
    /// counter (at most 37 characters of `[A-Za-z0-9_-]`).
    fn new_msg_id(&self) -> String {
        let n = self.next_msg_id.fetch_add(1, Ordering::Relaxed);
        format!("{}-{n}", self.msg_id_prefix)
    }

    /// Now, or one more than the last `sent_at` given, whichever is later.
    fn next_sent_at(&self) -> u64 {
        let now = now_ms();
        let previous = self
            .last_sent_at
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |last| {
                Some(now.max(last + 1))
            })
            .unwrap_or(0);
        now.max(previous + 1)
    }

    /// Seals an application body (§8) from `member`: under MLS in a v2 room (`Ok(None)`
    /// while this member is not in the group), else as v1's sealed payload (§5).
    fn seal_body(
        &self,
        member: &streamchat_crypto::MemberId,
        body: &[u8],
    ) -> Result<Option<Vec<u8>>, streamchat_crypto::SealError> {
        match self.lobby() {
            Some(mut lobby) => Ok(lobby.seal(body)),
            None => streamchat_crypto::seal(&self.keys, member, &self.identity, body).map(Some),
        }
    }

    /// A v2 room's lobby (held briefly, never across an await); `None` in a v1 room.
    fn lobby(&self) -> Option<MutexGuard<'_, lobby::Lobby>> {
        self.lobby
            .as_ref()
            .map(|l| l.lock().unwrap_or_else(PoisonError::into_inner))
    }

    /// The conversation's state (held briefly, never across an await).
    fn conversation(&self) -> MutexGuard<'_, conversation::Conversation> {
        self.conversation
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn member_view(&self, member: &MemberId, at: u64) -> Member {
        let key = self.identity.public_key();
        Member {
            member: member.clone(),
            name: self.name.clone(),
            fingerprint: key.fingerprint().to_string(),
            key,
            joined_at: at,
            is_self: true,
        }
    }
}

/// The protocol's room id for these keys (the same 22 characters both crates validate).
pub fn protocol_room_id(keys: &RoomKeys) -> streamchat_protocol::RoomId {
    // Invariant: a 16-byte id is always 22 canonical base64url characters.
    streamchat_protocol::RoomId::new(keys.id().to_base64url())
        .expect("a derived room id is valid base64url of 16 bytes")
}

/// The crypto crate's member id for a protocol member id. Both allow 1–64 bytes.
pub(crate) fn crypto_member(member: &MemberId) -> streamchat_crypto::MemberId {
    // Invariant: the protocol validated the length on the way in.
    streamchat_crypto::MemberId::new(member.as_str())
        .expect("protocol member ids are 1 to 64 bytes, as docs/crypto.md §4 requires")
}

/// Now, Unix ms, by this machine's clock.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}
