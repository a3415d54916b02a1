//! Files on their way in: the announcement (a verified `file` body) opens a transfer,
//! its chunks are decrypted in order with the STREAM construction ([`FileOpener`]), and
//! only a complete file whose SHA-256 matches the signed announcement is handed over.
//!
//! The relay may deliver a sender's chunks slightly out of order (a sender with several
//! chunks in flight that is refused one of them retries it after the others), so up to
//! [`REORDER_WINDOW`] chunks ahead of the next expected one are held back; duplicates of
//! chunks already opened are ignored. Everything is bounded: transfers at once, bytes
//! of a file (the server's `max_file_bytes`), chunks held back.

use super::{FileInfo, Member};
use bytes::{Bytes, BytesMut};
use std::collections::{BTreeMap, HashMap};
use streamchat_crypto::{FileError, FileOffer, FileOpener};
use streamchat_protocol::{FileId, Limits, MemberId};

/// Chunks ahead of the next expected one that are held back for reordering.
pub(crate) const REORDER_WINDOW: u32 = 16;
/// Incoming transfers at once, all senders together.
pub(crate) const MAX_INCOMING_TRANSFERS: usize = 16;

/// A transfer in progress.
struct Transfer {
    from: Member,
    ts: u64,
    info: FileInfo,
    opener: FileOpener,
    held: BTreeMap<u32, Bytes>,
    data: BytesMut,
}

impl std::fmt::Debug for Transfer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Transfer")
            .field("info", &self.info)
            .field("received", &self.opener.received())
            .finish_non_exhaustive()
    }
}

/// What a chunk led to.
#[derive(Debug)]
pub(crate) enum ChunkOutcome {
    /// Taken (opened or held back); nothing to report yet.
    Pending,
    /// The file is complete and verified.
    Complete {
        from: Member,
        ts: u64,
        info: FileInfo,
        data: Bytes,
    },
    /// The transfer failed and was dropped.
    Failed {
        from: Member,
        info: FileInfo,
        reason: String,
    },
    /// No transfer has this id (never announced, or already dropped).
    Unknown,
}

/// All transfers in progress, by sender and file id.
#[derive(Debug, Default)]
pub(crate) struct IncomingFiles {
    transfers: HashMap<(MemberId, FileId), Transfer>,
}

/// Cleans a file name for display and saving: no path separators, no control characters.
pub(crate) fn clean_file_name(name: &str) -> String {
    let cleaned: String = crate::display::safe_line(name)
        .replace(['/', '\\'], "_")
        .trim()
        .chars()
        .take(255)
        .collect();
    match cleaned.as_str() {
        "" | "." | ".." => "file".to_owned(),
        _ => cleaned,
    }
}

/// The MIME type if it looks like one, else `application/octet-stream`.
pub(crate) fn clean_mime(mime: &str) -> String {
    let ok = mime.len() <= 127
        && mime.split_once('/').is_some_and(|(a, b)| {
            let part = |s: &str| {
                !s.is_empty()
                    && s.bytes()
                        .all(|c| c.is_ascii_alphanumeric() || b"!#$&^_.+-".contains(&c))
            };
            part(a) && part(b)
        });
    if ok {
        mime.to_ascii_lowercase()
    } else {
        "application/octet-stream".to_owned()
    }
}

impl FileInfo {
    pub(crate) fn from_offer(offer: &FileOffer) -> Self {
        Self {
            id: offer.id.0.clone(),
            name: clean_file_name(&offer.name),
            mime: clean_mime(&offer.mime),
            size: offer.size,
            chunks: offer.chunks,
            sha256: offer.sha256.to_base64url(),
        }
    }
}

impl IncomingFiles {
    /// Opens a transfer for a verified announcement, or says why not.
    pub(crate) fn announce(
        &mut self,
        from: &Member,
        ts: u64,
        offer: &FileOffer,
        limits: &Limits,
    ) -> Result<FileInfo, String> {
        let info = FileInfo::from_offer(offer);
        let file = FileId::new(offer.id.0.as_str())
            .map_err(|_| "its id is not 16 base64url characters".to_owned())?;
        let manifest = offer.manifest().map_err(|e| e.to_string())?;
        if offer.size > limits.max_file_bytes {
            return Err(format!(
                "it is larger than this server's limit of {}",
                crate::display::byte_size(limits.max_file_bytes)
            ));
        }
        if offer.chunks > limits.max_file_chunks {
            return Err("it has more chunks than this server relays".to_owned());
        }
        if self.transfers.len() >= MAX_INCOMING_TRANSFERS {
            return Err("too many files are arriving at once".to_owned());
        }
        let key = (from.member.clone(), file);
        if self.transfers.contains_key(&key) {
            return Err("a file with this id is already arriving".to_owned());
        }
        // Reserve no more than a sane amount up front: the size is the sender's claim.
        let capacity = offer.size.min(64 * 1024 * 1024) as usize;
        self.transfers.insert(
            key,
            Transfer {
                from: from.clone(),
                ts,
                info: info.clone(),
                opener: FileOpener::new(offer.cipher(), manifest),
                held: BTreeMap::new(),
                data: BytesMut::with_capacity(capacity),
            },
        );
        Ok(info)
    }

    /// Takes one chunk from `from`.
    pub(crate) fn chunk(
        &mut self,
        from: &MemberId,
        file: &FileId,
        seq: u32,
        data: Bytes,
    ) -> ChunkOutcome {
        let key = (from.clone(), file.clone());
        let Some(transfer) = self.transfers.get_mut(&key) else {
            return ChunkOutcome::Unknown;
        };
        match transfer.take(seq, data) {
            Ok(false) => ChunkOutcome::Pending,
            Ok(true) => match self.transfers.remove(&key) {
                Some(done) => done.finish(),
                None => ChunkOutcome::Unknown,
            },
            Err(e) => match self.transfers.remove(&key) {
                Some(t) => ChunkOutcome::Failed {
                    from: t.from,
                    info: t.info,
                    reason: e.to_string(),
                },
                None => ChunkOutcome::Unknown,
            },
        }
    }

    /// Drops every transfer from `member` (they left); returns them for reporting.
    pub(crate) fn drop_from(&mut self, member: &MemberId) -> Vec<(Member, FileInfo)> {
        let keys: Vec<_> = self
            .transfers
            .keys()
            .filter(|(m, _)| m == member)
            .cloned()
            .collect();
        keys.into_iter()
            .filter_map(|k| self.transfers.remove(&k))
            .map(|t| (t.from, t.info))
            .collect()
    }

    /// Drops everything (the connection was lost: chunks in flight are gone).
    pub(crate) fn drop_all(&mut self) -> Vec<(Member, FileInfo)> {
        self.transfers
            .drain()
            .map(|(_, t)| (t.from, t.info))
            .collect()
    }
}

impl Transfer {
    /// Takes a chunk; true once the last chunk has been opened.
    fn take(&mut self, seq: u32, data: Bytes) -> Result<bool, FileError> {
        let next = self.opener.received();
        if seq < next || self.held.contains_key(&seq) {
            return Ok(false); // A duplicate of something already taken.
        }
        if seq >= next.saturating_add(REORDER_WINDOW) || seq >= self.info.chunks {
            return Err(FileError::OutOfOrder {
                expected: next,
                got: seq,
            });
        }
        self.held.insert(seq, data);
        while let Some(data) = self.held.remove(&self.opener.received()) {
            let seq = self.opener.received();
            let plaintext = self.opener.open_chunk(seq, &data)?;
            self.data.extend_from_slice(&plaintext);
        }
        Ok(self.opener.is_complete())
    }

    fn finish(self) -> ChunkOutcome {
        match self.opener.finish() {
            Ok(_) => ChunkOutcome::Complete {
                from: self.from,
                ts: self.ts,
                info: self.info,
                data: self.data.freeze(),
            },
            Err(e) => ChunkOutcome::Failed {
                from: self.from,
                info: self.info,
                reason: e.to_string(),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use streamchat_crypto::{
        FileCipher, FileKey, FileManifest, IdentityKey, NoncePrefix, Sha256Digest, seal_file,
    };

    fn limits() -> Limits {
        Limits {
            max_message_bytes: 65536,
            max_chunk_bytes: 1 << 20,
            max_file_chunks: 1024,
            max_file_bytes: 1 << 28,
            max_members_per_room: 1000,
        }
    }

    fn member() -> Member {
        let key = IdentityKey::from_seed(&[3; 32]).public_key();
        Member {
            member: MemberId::new("sid").unwrap(),
            name: "Bob".into(),
            fingerprint: key.fingerprint().to_string(),
            key,
            joined_at: 0,
            is_self: false,
        }
    }

    fn offer(data: &[u8], chunk_size: u32) -> (FileOffer, Vec<Vec<u8>>) {
        let key = FileKey::from_bytes([4; 32]);
        let prefix = NoncePrefix::from_bytes([5; 7]);
        let sealed = seal_file(FileCipher::new(&key, prefix), chunk_size, data).unwrap();
        let offer = FileOffer {
            id: streamchat_crypto::FileId("AAAAAAAAAAAAAAAA".into()),
            name: "../a\u{1b}.txt".into(),
            mime: "Text/Plain".into(),
            size: data.len() as u64,
            chunk_size,
            chunks: sealed.manifest.chunks(),
            sha256: Sha256Digest::of(data),
            key,
            nonce_prefix: prefix,
            sent_at: 1,
        };
        (offer, sealed.chunks)
    }

    #[test]
    fn reorders_within_the_window_and_ignores_duplicates() {
        let data: Vec<u8> = (0..100u8).collect();
        let (offer, chunks) = offer(&data, 16);
        let mut files = IncomingFiles::default();
        let from = member();
        let info = files.announce(&from, 9, &offer, &limits()).unwrap();
        assert_eq!(info.name, ".._a.txt");
        assert_eq!(info.mime, "text/plain");
        let file = FileId::new("AAAAAAAAAAAAAAAA").unwrap();
        let order = [1usize, 0, 0, 3, 2, 4, 6, 5];
        let mut outcome = ChunkOutcome::Unknown;
        for i in order {
            outcome = files.chunk(&from.member, &file, i as u32, chunks[i].clone().into());
            if i != 5 {
                assert!(matches!(outcome, ChunkOutcome::Pending), "{i}");
            }
        }
        match outcome {
            ChunkOutcome::Complete { data: got, ts, .. } => {
                assert_eq!(got.as_ref(), data.as_slice());
                assert_eq!(ts, 9);
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            files.chunk(&from.member, &file, 0, Bytes::new()),
            ChunkOutcome::Unknown
        ));
    }

    #[test]
    fn tampering_and_lies_fail_the_transfer() {
        let data = vec![7u8; 40];
        let (mut offer, chunks) = offer(&data, 16);
        let from = member();
        let file = FileId::new("AAAAAAAAAAAAAAAA").unwrap();
        // A lying hash: every chunk opens, the file does not match.
        offer.sha256 = Sha256Digest::of(b"other");
        let mut files = IncomingFiles::default();
        files.announce(&from, 1, &offer, &limits()).unwrap();
        files.chunk(&from.member, &file, 0, chunks[0].clone().into());
        files.chunk(&from.member, &file, 1, chunks[1].clone().into());
        assert!(matches!(
            files.chunk(&from.member, &file, 2, chunks[2].clone().into()),
            ChunkOutcome::Failed { .. }
        ));
        // A flipped bit.
        let (offer, chunks) = self::offer(&data, 16);
        files.announce(&from, 1, &offer, &limits()).unwrap();
        let mut bad = chunks[0].clone();
        bad[3] ^= 1;
        assert!(matches!(
            files.chunk(&from.member, &file, 0, bad.into()),
            ChunkOutcome::Failed { .. }
        ));
        // Too large for the server's limit.
        let small = Limits {
            max_file_bytes: 10,
            ..limits()
        };
        assert!(files.announce(&from, 1, &offer, &small).is_err());
        // Inconsistent manifest.
        let mut wrong = offer.clone();
        wrong.chunks = 9;
        assert!(files.announce(&from, 1, &wrong, &limits()).is_err());
        assert!(FileManifest::chunk_count(40, 16).is_ok());
    }
}
