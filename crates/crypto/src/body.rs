//! The JSON bodies inside sealed payloads (docs/crypto.md §8).
//!
//! A body is UTF-8 JSON with a `type` and a `sent_at` (the sender's clock, Unix
//! milliseconds). Its bytes are signed exactly as sent, so these types are for reading
//! a verified body and for writing a new one; the bytes that were signed are never
//! re-serialized from them. Receivers ignore unknown fields, and an unknown `type`
//! parses as [`Body::Unknown`] so a newer client's messages can be skipped quietly.

use serde::{Deserialize, Serialize};

use crate::chunk::{FileCipher, FileKey, NoncePrefix};
use crate::file::{FileError, FileManifest, Sha256Digest};
use crate::identity::PublicKey;

/// Milliseconds since the Unix epoch, by the sender's clock.
pub type UnixMillis = u64;

/// One decoded body. Serializes with its `type` tag, e.g. `{"type":"text",...}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Body {
    /// `{"type":"profile","name":…,"key":…,"sent_at":…}`: who a member is.
    Profile(Profile),
    /// `{"type":"text","text":…,"sent_at":…}`: a chat message.
    Text(Text),
    /// `{"type":"file",…}`: announces a file whose chunks follow.
    File(FileOffer),
    /// `{"type":"typing","sent_at":…}`: the sender is typing.
    Typing(Typing),
    /// A `type` this version does not know; receivers ignore it. Serializes as
    /// `{"type":"unknown"}`, which no sender should send.
    #[serde(other)]
    Unknown,
}

/// A body could not be parsed: not JSON, no `type`, or a known type with missing or
/// ill-typed fields. Receivers drop such a message with a visible warning.
#[derive(Debug, thiserror::Error)]
#[error("malformed message body: {0}")]
pub struct MalformedBody(#[from] serde_json::Error);

impl Body {
    /// Parses body bytes as received (after [`crate::Opened::verify`]).
    pub fn from_json(bytes: &[u8]) -> Result<Self, MalformedBody> {
        Ok(serde_json::from_slice(bytes)?)
    }

    /// The sender's `sent_at`, for de-duplication and ordering; `None` for unknown types.
    pub fn sent_at(&self) -> Option<UnixMillis> {
        match self {
            Body::Profile(b) => Some(b.sent_at),
            Body::Text(b) => Some(b.sent_at),
            Body::File(b) => Some(b.sent_at),
            Body::Typing(b) => Some(b.sent_at),
            Body::Unknown => None,
        }
    }
}

/// Who a member is: a display name and the Ed25519 key that signs its messages.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Profile {
    /// The display name, invisible to the server.
    pub name: String,
    /// The member's public key; the profile itself is signed with it.
    pub key: PublicKey,
    /// When it was sent.
    pub sent_at: UnixMillis,
}

/// A chat message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Text {
    /// The message text.
    pub text: String,
    /// When it was sent.
    pub sent_at: UnixMillis,
}

/// A typing indicator.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Typing {
    /// When it was sent.
    pub sent_at: UnixMillis,
}

/// The id a sender gives a file; chunks on the wire carry it (protocol.md: 16
/// base64url characters). Opaque here: the crypto never depends on its form.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct FileId(pub String);

/// Announces a file: what it is, how it is cut, and the key to its chunks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileOffer {
    /// The transfer's id, repeated on every chunk.
    pub id: FileId,
    /// The file's name as the sender had it.
    pub name: String,
    /// Its MIME type, as the sender declares it.
    pub mime: String,
    /// Plaintext size in bytes.
    pub size: u64,
    /// Plaintext bytes per chunk (the last chunk may be shorter).
    pub chunk_size: u32,
    /// Number of chunks; 1 for an empty file.
    pub chunks: u32,
    /// SHA-256 of the whole plaintext.
    pub sha256: Sha256Digest,
    /// The file's AES-256-GCM key.
    pub key: FileKey,
    /// The 7-byte STREAM nonce prefix.
    pub nonce_prefix: NoncePrefix,
    /// When it was sent.
    pub sent_at: UnixMillis,
}

impl FileOffer {
    /// The size, chunking and hash the receiver will check, if they agree.
    pub fn manifest(&self) -> Result<FileManifest, FileError> {
        FileManifest::new(self.size, self.chunk_size, self.chunks, self.sha256)
    }

    /// The cipher for this file's chunks.
    pub fn cipher(&self) -> FileCipher {
        FileCipher::new(&self.key, self.nonce_prefix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_types_and_fields_are_ignored() {
        let body = Body::from_json(br#"{"type":"reaction","emoji":"x","sent_at":1}"#).unwrap();
        assert_eq!(body, Body::Unknown);
        let body =
            Body::from_json(br#"{"sent_at":7,"text":"hi","type":"text","future":[1]}"#).unwrap();
        assert_eq!(
            body,
            Body::Text(Text {
                text: "hi".into(),
                sent_at: 7
            })
        );
        assert_eq!(body.sent_at(), Some(7));
    }

    #[test]
    fn malformed_bodies_are_errors() {
        for bad in [
            &br#"{"type":"text","sent_at":1}"#[..],
            br#"{"text":"no type","sent_at":1}"#,
            br#"{"type":"profile","name":"x","key":"AAAA","sent_at":1}"#,
            b"not json",
        ] {
            assert!(
                Body::from_json(bad).is_err(),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn bodies_round_trip() {
        let bodies = [
            Body::Text(Text {
                text: "Grüße 👋🏽".into(),
                sent_at: 1,
            }),
            Body::Typing(Typing { sent_at: 2 }),
            Body::Profile(Profile {
                name: "Ada".into(),
                key: crate::IdentityKey::from_seed(&[1; 32]).public_key(),
                sent_at: 3,
            }),
            Body::File(FileOffer {
                id: FileId("AAAAAAAAAAAAAAAA".into()),
                name: "a.png".into(),
                mime: "image/png".into(),
                size: 10,
                chunk_size: 4,
                chunks: 3,
                sha256: Sha256Digest::of(b"0123456789"),
                key: FileKey::from_bytes([9; 32]),
                nonce_prefix: NoncePrefix::from_bytes([8; 7]),
                sent_at: 4,
            }),
        ];
        for body in bodies {
            let json = serde_json::to_vec(&body).unwrap();
            assert_eq!(Body::from_json(&json).unwrap(), body);
        }
        let json = serde_json::to_string(&Body::Typing(Typing { sent_at: 2 })).unwrap();
        assert_eq!(json, r#"{"type":"typing","sent_at":2}"#);
    }
}
