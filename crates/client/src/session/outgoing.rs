//! What this session sends: texts one after another, files one at a time beside them.
//!
//! Both wait for a live [`Link`] (the current connection, its member id and limits),
//! seal for that link's member id, and retry what the server refused for a moment:
//! `rate_limited` after a growing pause, a lost connection once it is back. Texts go one
//! at a time, each waiting for its ack, so a retry never overtakes the next text.
//!
//! Every `msg` carries a client id (docs/protocol.md, "Message ids and duplicates"). A
//! message whose ack was lost with the connection is resent with the same id once the
//! session is back: after a resume (same member) the server relays it only if the first
//! copy never got through, and acks a resend of one it did relay `duplicate: true`,
//! which counts as sent. After a join under a new member id the server cannot tell,
//! and a copy that got through just before the drop may be shown twice.
//!
//! A file is announced with a sealed `file` body, then its chunks go out with at most
//! [`CHUNK_WINDOW`] awaiting their acks. If a chunk is refused for the rate, the window
//! drains and the refused chunks are resent one by one, in order, before the window
//! opens again; receivers hold a few chunks back to put them in order ([`super::incoming`]).
//! If the connection drops mid-file and the session resumes as the same member, the
//! chunks not yet acked are resent the same way (the server drops those it relayed
//! already); if it comes back as a new member, the file starts over under a new id.

use super::{FileInfo, SendId, SessionEvent, Shared, now_ms};
use crate::client::{Acked, Client, ClientError};
use bytes::Bytes;
use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use streamchat_crypto::{
    Body, DEFAULT_CHUNK_SIZE, FileCipher, FileId as BodyFileId, FileKey, FileManifest, FileOffer,
    NoncePrefix, Sha256Digest, encoding,
};
use streamchat_protocol::{ErrorBody, ErrorCode, FileId, Limits, MemberId};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;

/// Chunks awaiting their ack at once.
pub(crate) const CHUNK_WINDOW: usize = 4;
/// Pauses after a `rate_limited` refusal: 100 ms, doubling up to 2 s.
const RATE_BACKOFF_START: Duration = Duration::from_millis(100);
const RATE_BACKOFF_MAX: Duration = Duration::from_secs(2);
/// Refusals for rate in a row before giving up on one text or chunk.
const MAX_RATE_RETRIES: u32 = 30;
/// Lost connections one text or file survives.
const MAX_LINK_RETRIES: u32 = 3;
/// How long a send waits for a newer link while the current one is up (a refusal that
/// should have come with a lost connection). While the session is reconnecting, sends
/// wait for as long as it tries: they go out once it is back, or fail when it ends.
const STALE_LINK_WAIT: Duration = Duration::from_secs(60);

/// The connection outgoing traffic uses, as the driver publishes it.
#[derive(Debug, Clone)]
pub(crate) enum LinkState {
    /// Connecting or reconnecting.
    Connecting,
    /// Joined.
    Up(Link),
    /// The session ended.
    Closed,
}

/// A joined connection.
#[derive(Debug, Clone)]
pub(crate) struct Link {
    pub(crate) client: Arc<Client>,
    pub(crate) protocol_member: MemberId,
    pub(crate) member: streamchat_crypto::MemberId,
    pub(crate) limits: Limits,
    /// Bumped on every (re)join and resume, so a sender can wait for a *new* link.
    pub(crate) generation: u64,
    /// The highest room position of this session's own acknowledged messages, in the
    /// room's current epoch (the driver resumes from past them).
    pub(crate) acked: Arc<AtomicU64>,
}

/// A text (or reaction, edit, deletion) to send, its body fixed when it was queued so
/// that every attempt sends the same body.
#[derive(Debug)]
pub(crate) struct OutgoingText {
    pub(crate) id: SendId,
    pub(crate) body: Body,
}

/// A file to send.
#[derive(Debug)]
pub(crate) struct OutgoingFile {
    pub(crate) id: SendId,
    pub(crate) name: String,
    pub(crate) mime: String,
    pub(crate) data: Bytes,
}

/// Why one send gave up.
#[derive(Debug, thiserror::Error)]
pub(crate) enum SendError {
    #[error("the session has ended")]
    Closed,
    #[error("not connected")]
    Offline,
    #[error("{0}")]
    Refused(String),
    #[error("sending too fast: the server kept refusing")]
    RateLimited,
    #[error("too large for this server ({size} bytes, at most {max})")]
    TooLarge { size: u64, max: u64 },
    #[error("{0}")]
    Local(String),
    /// The session came back as a new member mid-file: start the file over.
    #[error("the connection was lost")]
    Restart,
}

/// Waits for a link newer than `after` (any link when `after` is `None`). While the
/// driver is reconnecting this waits without a limit (what is typed offline waits as
/// "sending…" and goes out, in order, once the session is back); the session's end
/// fails it. Only a link that stays up without a newer one coming is given up on.
async fn wait_link(
    link: &mut watch::Receiver<LinkState>,
    after: Option<u64>,
) -> Result<Link, SendError> {
    let deadline = tokio::time::Instant::now() + STALE_LINK_WAIT;
    loop {
        let connecting = match &*link.borrow_and_update() {
            LinkState::Up(l) if after.is_none_or(|g| l.generation > g) => return Ok(l.clone()),
            LinkState::Up(_) => false,
            LinkState::Connecting => true,
            LinkState::Closed => return Err(SendError::Closed),
        };
        let changed = if connecting {
            link.changed().await
        } else {
            match tokio::time::timeout_at(deadline, link.changed()).await {
                Err(_) => return Err(SendError::Offline),
                Ok(changed) => changed,
            }
        };
        // The driver is gone: so is the session.
        if changed.is_err() {
            return Err(SendError::Closed);
        }
    }
}

/// Growing pauses for rate refusals.
#[derive(Debug)]
struct Backoff {
    next: Duration,
    tries: u32,
}

impl Backoff {
    fn new() -> Self {
        Self {
            next: RATE_BACKOFF_START,
            tries: 0,
        }
    }

    /// Sleeps; false when the retries are used up.
    async fn wait(&mut self) -> bool {
        self.tries += 1;
        if self.tries > MAX_RATE_RETRIES {
            return false;
        }
        tokio::time::sleep(self.next).await;
        self.next = (self.next * 2).min(RATE_BACKOFF_MAX);
        true
    }
}

/// What to do after one attempt of a request.
enum Attempt<T> {
    Done(T),
    /// Rate-limited: pause and try again on the same link.
    Pause,
    /// The link is gone (or the server no longer has us in the room): wait for a new one.
    Relink,
}

fn classify<T>(result: Result<Acked<T>, ClientError>) -> Result<Attempt<T>, SendError> {
    match result {
        Ok(Ok(value)) => Ok(Attempt::Done(value)),
        Ok(Err(ErrorBody {
            code: ErrorCode::RateLimited,
            ..
        })) => Ok(Attempt::Pause),
        // Between a reconnect and the rejoin, the server does not know us in the room.
        Ok(Err(ErrorBody {
            code: ErrorCode::NotMember | ErrorCode::Unavailable,
            ..
        })) => Ok(Attempt::Relink),
        Ok(Err(e)) => Err(SendError::Refused(e.message)),
        Err(ClientError::Closed | ClientError::AckTimeout(_)) => Ok(Attempt::Relink),
        Err(e) => Err(SendError::Local(e.to_string())),
    }
}

/// Seals `body` for each link's member and sends it as `msg` with one client id until
/// it is accepted (a resend the server had already relayed counts as accepted).
async fn send_body(
    shared: &Shared,
    links: &mut watch::Receiver<LinkState>,
    body: &[u8],
) -> Result<(u64, Link), SendError> {
    send_frame(shared, links, None, |link| {
        shared
            .seal_body(&link.member, body)
            .map_err(|e| SendError::Local(e.to_string()))
    })
    .await
}

/// Sends the frame `frame` makes for each link (`None`: wait for the next link) as `msg`,
/// to `to` alone when given, with one client id until it is accepted: across lost
/// connections and resumes, and through rate refusals (a resend the server had already
/// relayed counts as accepted).
pub(crate) async fn send_frame(
    shared: &Shared,
    links: &mut watch::Receiver<LinkState>,
    to: Option<&MemberId>,
    frame: impl Fn(&Link) -> Result<Option<Vec<u8>>, SendError>,
) -> Result<(u64, Link), SendError> {
    let id = shared.new_msg_id();
    let mut link = wait_link(links, None).await?;
    let mut backoff = Backoff::new();
    let mut relinks = 0;
    loop {
        // A v2 room's member out of the group (the link is about to go): wait for the next.
        let Some(sealed) = frame(&link)? else {
            link = wait_link(links, Some(link.generation)).await?;
            continue;
        };
        if sealed.len() > link.limits.max_message_bytes {
            return Err(SendError::TooLarge {
                size: sealed.len() as u64,
                max: link.limits.max_message_bytes as u64,
            });
        }
        let result = link
            .client
            .msg_with_id(&shared.room, Bytes::from(sealed), to, Some(&id))
            .await;
        match classify(result)? {
            Attempt::Done(ack) => {
                link.acked.fetch_max(ack.pos, Ordering::Relaxed);
                return Ok((ack.ts, link));
            }
            Attempt::Pause => {
                if !backoff.wait().await {
                    return Err(SendError::RateLimited);
                }
            }
            Attempt::Relink => {
                relinks += 1;
                if relinks > MAX_LINK_RETRIES {
                    return Err(SendError::Offline);
                }
                link = wait_link(links, Some(link.generation)).await?;
            }
        }
    }
}

/// Sends texts one after another, in the order they were queued.
pub(crate) async fn run_texts(
    shared: Arc<Shared>,
    mut links: watch::Receiver<LinkState>,
    mut texts: mpsc::Receiver<OutgoingText>,
    events: mpsc::Sender<SessionEvent>,
) {
    while let Some(text) = texts.recv().await {
        let result = match serde_json::to_vec(&text.body) {
            Err(e) => Err(SendError::Local(e.to_string())),
            Ok(body) => send_body(&shared, &mut links, &body).await,
        };
        let closed = matches!(result, Err(SendError::Closed));
        let event = match result {
            Ok((ts, _)) => SessionEvent::Sent { id: text.id, ts },
            Err(e) => SessionEvent::SendFailed {
                id: text.id,
                reason: e.to_string(),
            },
        };
        // A UI that stopped listening (it is quitting) still wants the queue sent.
        let _ = events.send(event).await;
        if closed {
            break;
        }
    }
}

/// Sends files one at a time.
pub(crate) async fn run_files(
    shared: Arc<Shared>,
    mut links: watch::Receiver<LinkState>,
    mut files: mpsc::Receiver<OutgoingFile>,
    events: mpsc::Sender<SessionEvent>,
) {
    while let Some(file) = files.recv().await {
        let id = file.id;
        let event = match send_file(&shared, &mut links, &file, &events).await {
            Ok((info, ts)) => SessionEvent::FileSent { id, file: info, ts },
            Err(e) => SessionEvent::SendFailed {
                id,
                reason: e.to_string(),
            },
        };
        // A UI that stopped listening (it is quitting) still wants the queue sent.
        let _ = events.send(event).await;
    }
}

/// A random transfer id: 12 bytes as 16 base64url characters.
fn new_file_id() -> Result<FileId, SendError> {
    let key = FileKey::generate().map_err(|e| SendError::Local(e.to_string()))?;
    let id = encoding::encode(&key.as_bytes()[..12]);
    FileId::new(id).map_err(|e| SendError::Local(e.to_string()))
}

/// The plaintext chunk size for a file of `size` bytes on this server: 256 KiB, less if
/// the server's chunk limit is lower, more if the file would otherwise need more chunks
/// than the server relays (up to the chunk limit).
fn chunk_size_for(limits: &Limits, size: u64) -> u32 {
    let largest = limits
        .max_chunk_bytes
        .saturating_sub(streamchat_crypto::CHUNK_TAG_LEN)
        .clamp(1, streamchat_crypto::MAX_CHUNK_SIZE as usize) as u64;
    let needed = size.div_ceil(u64::from(limits.max_file_chunks.max(1)));
    u64::from(DEFAULT_CHUNK_SIZE).max(needed).min(largest) as u32
}

async fn send_file(
    shared: &Shared,
    links: &mut watch::Receiver<LinkState>,
    file: &OutgoingFile,
    events: &mpsc::Sender<SessionEvent>,
) -> Result<(FileInfo, u64), SendError> {
    let mut attempts = 0;
    loop {
        attempts += 1;
        let link = wait_link(links, None).await?;
        match send_file_once(shared, links, &link, file, events).await {
            // Back as a new member mid-file: receivers dropped the partial file; start over.
            Err(SendError::Restart) if attempts <= MAX_LINK_RETRIES => {}
            Err(SendError::Restart) => return Err(SendError::Offline),
            // The connection kept dropping: wait for the next one and start over.
            Err(SendError::Offline) if attempts <= MAX_LINK_RETRIES => {
                wait_link(links, Some(link.generation)).await?;
            }
            other => return other,
        }
    }
}

async fn send_file_once(
    shared: &Shared,
    links: &mut watch::Receiver<LinkState>,
    link: &Link,
    file: &OutgoingFile,
    events: &mpsc::Sender<SessionEvent>,
) -> Result<(FileInfo, u64), SendError> {
    let limits = link.limits;
    let size = file.data.len() as u64;
    if size > limits.max_file_bytes {
        return Err(SendError::TooLarge {
            size,
            max: limits.max_file_bytes,
        });
    }
    let chunk_size = chunk_size_for(&limits, size);
    let chunks =
        FileManifest::chunk_count(size, chunk_size).map_err(|e| SendError::Local(e.to_string()))?;
    if chunks > limits.max_file_chunks {
        return Err(SendError::TooLarge {
            size,
            max: u64::from(limits.max_file_chunks) * u64::from(chunk_size),
        });
    }
    let file_id = new_file_id()?;
    let key = FileKey::generate().map_err(|e| SendError::Local(e.to_string()))?;
    let nonce_prefix = NoncePrefix::generate().map_err(|e| SendError::Local(e.to_string()))?;
    let cipher = FileCipher::new(&key, nonce_prefix);
    let offer = FileOffer {
        id: BodyFileId(file_id.to_string()),
        name: file.name.clone(),
        mime: file.mime.clone(),
        size,
        chunk_size,
        chunks,
        sha256: Sha256Digest::of(&file.data),
        key,
        nonce_prefix,
        sent_at: now_ms(),
    };
    let info = FileInfo::from_offer(&offer);
    let body =
        serde_json::to_vec(&Body::File(offer)).map_err(|e| SendError::Local(e.to_string()))?;
    // The announcement may have gone out on a newer connection than `link`: the chunks
    // follow it there.
    let (ts, announced_on) = send_body(shared, links, &body).await?;
    let sender = ChunkSender {
        link: announced_on,
        room: shared.room.clone(),
        file: file_id,
        cipher,
        data: file.data.clone(),
        chunk_size,
        chunks,
    };
    sender.run(file.id, events, links).await?;
    Ok((info, ts))
}

/// Sends one file's chunks as one member (over a new connection after a resume).
struct ChunkSender {
    link: Link,
    room: streamchat_protocol::RoomId,
    file: FileId,
    cipher: FileCipher,
    data: Bytes,
    chunk_size: u32,
    chunks: u32,
}

impl ChunkSender {
    fn encrypt(&self, index: u32) -> Result<Bytes, SendError> {
        let start = (u64::from(index) * u64::from(self.chunk_size)) as usize;
        let end = (start + self.chunk_size as usize).min(self.data.len());
        let plaintext = self.data.get(start..end).unwrap_or_default();
        let last = index + 1 == self.chunks;
        self.cipher
            .encrypt_chunk(index, last, plaintext)
            .map(Bytes::from)
            .map_err(|e| SendError::Local(e.to_string()))
    }

    fn spawn(
        &self,
        set: &mut JoinSet<(u32, Result<Attempt<()>, SendError>)>,
        outstanding: &mut BTreeSet<u32>,
        index: u32,
    ) {
        outstanding.insert(index);
        let client = self.link.client.clone();
        let room = self.room.clone();
        let file = self.file.clone();
        let data = self.encrypt(index);
        set.spawn(async move {
            let data = match data {
                Ok(d) => d,
                Err(e) => return (index, Err(e)),
            };
            let result = client.chunk(&room, &file, index, data).await;
            (index, classify(result.map(|r| r.map(|_| ()))))
        });
    }

    async fn run(
        mut self,
        id: SendId,
        events: &mpsc::Sender<SessionEvent>,
        links: &mut watch::Receiver<LinkState>,
    ) -> Result<(), SendError> {
        let mut in_flight = JoinSet::new();
        let mut next = 0u32;
        // Sent, not yet acked.
        let mut outstanding: BTreeSet<u32> = BTreeSet::new();
        // To resend one by one, in order, before the window opens again.
        let mut refused: BTreeSet<u32> = BTreeSet::new();
        let mut relinks = 0;
        let mut acked = 0u32;
        let mut backoff = Backoff::new();
        let mut last_progress = 0u32;
        let mut pause = false;
        while acked < self.chunks {
            if refused.is_empty() {
                while in_flight.len() < CHUNK_WINDOW && next < self.chunks {
                    self.spawn(&mut in_flight, &mut outstanding, next);
                    next += 1;
                }
            } else if in_flight.is_empty() {
                // Drained: pause after a refusal, then resend refused chunks one by one.
                if pause {
                    if !backoff.wait().await {
                        return Err(SendError::RateLimited);
                    }
                    pause = false;
                }
                if let Some(first) = refused.pop_first() {
                    self.spawn(&mut in_flight, &mut outstanding, first);
                }
            }
            let Some(joined) = in_flight.join_next().await else {
                continue;
            };
            let (index, outcome) =
                joined.map_err(|e| SendError::Local(format!("chunk task failed: {e}")))?;
            outstanding.remove(&index);
            match outcome? {
                Attempt::Done(()) => {
                    acked += 1;
                    if refused.is_empty() {
                        backoff = Backoff::new();
                    }
                    // Progress at most every 1/32 of the file, and at the end.
                    if acked == self.chunks || acked - last_progress >= (self.chunks / 32).max(1) {
                        last_progress = acked;
                        let _ = events
                            .send(SessionEvent::FileProgress {
                                id,
                                sent: acked,
                                chunks: self.chunks,
                            })
                            .await;
                    }
                }
                Attempt::Pause => {
                    refused.insert(index);
                    pause = true;
                }
                Attempt::Relink => {
                    // Whatever was in flight may or may not have been relayed: resend it
                    // all (the server drops chunks it already relayed for this member).
                    in_flight.abort_all();
                    in_flight = JoinSet::new();
                    refused.insert(index);
                    refused.append(&mut outstanding);
                    relinks += 1;
                    if relinks > MAX_LINK_RETRIES {
                        return Err(SendError::Offline);
                    }
                    let link = wait_link(links, Some(self.link.generation)).await?;
                    if link.member != self.link.member {
                        return Err(SendError::Restart);
                    }
                    self.link = link;
                    pause = false;
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunk_size_follows_the_server_limit() {
        let limits = Limits {
            max_message_bytes: 65536,
            max_chunk_bytes: 1 << 20,
            max_file_chunks: 1024,
            max_file_bytes: 1 << 28,
            max_members_per_room: 1000,
        };
        assert_eq!(chunk_size_for(&limits, 10), 256 * 1024);
        assert_eq!(chunk_size_for(&limits, 1 << 28), 256 * 1024);
        let small = Limits {
            max_chunk_bytes: 1000,
            ..limits
        };
        assert_eq!(chunk_size_for(&small, 10), 984);
        // 256 chunks of at most 1 MiB: a 200 MiB file needs 800 KiB chunks.
        let few = Limits {
            max_file_chunks: 256,
            ..limits
        };
        assert_eq!(chunk_size_for(&few, 200 << 20), 800 * 1024);
        assert_eq!(chunk_size_for(&few, 1 << 30), (1 << 20) - 16);
    }

    #[tokio::test(start_paused = true)]
    async fn sends_wait_for_as_long_as_the_session_reconnects() {
        let (tx, mut rx) = watch::channel(LinkState::Connecting);
        let waiting = tokio::spawn(async move { wait_link(&mut rx, None).await });
        // Far past the limit for a link that stays up: still waiting.
        tokio::time::sleep(STALE_LINK_WAIT * 10).await;
        assert!(!waiting.is_finished());
        tx.send_replace(LinkState::Connecting);
        tokio::time::sleep(STALE_LINK_WAIT * 2).await;
        assert!(!waiting.is_finished());
        // The session ends: the send fails as closed, not as offline.
        tx.send_replace(LinkState::Closed);
        assert!(matches!(waiting.await.unwrap(), Err(SendError::Closed)));
    }

    #[test]
    fn file_ids_are_16_base64url_characters() {
        let id = new_file_id().unwrap();
        assert_eq!(id.as_str().len(), 16);
    }
}
