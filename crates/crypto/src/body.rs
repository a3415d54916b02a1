//! The JSON bodies inside sealed payloads (docs/crypto.md §8).
//!
//! A body is UTF-8 JSON with a `type` and a `sent_at` (the sender's clock, Unix
//! milliseconds). Its bytes are signed exactly as sent, so these types are for reading
//! a verified body and for writing a new one; the bytes that were signed are never
//! re-serialized from them. Receivers ignore unknown fields, and an unknown `type`
//! parses as [`Body::Unknown`] so a newer client's messages can be skipped quietly.
//!
//! Replies, reactions, edits and deletions name the message they are about with a
//! [`MessageRef`]: its author's public key and the `sent_at` of its body, both signed
//! inside the referring body, so the server can neither forge nor redirect one. Limits
//! that [`Body::from_json`] checks ([`MAX_QUOTE_UTF16`], [`MAX_EMOJI_BYTES`],
//! [`MAX_TEXT_UTF16`] for edits) are the web client's too (docs/crypto.md §8).

use serde::{Deserialize, Serialize};

use crate::chunk::{FileCipher, FileKey, NoncePrefix};
use crate::file::{FileError, FileManifest, Sha256Digest};
use crate::identity::PublicKey;

/// Milliseconds since the Unix epoch, by the sender's clock.
pub type UnixMillis = u64;

/// The longest text an `edit` may carry, in UTF-16 code units (the web client's text limit).
pub const MAX_TEXT_UTF16: usize = 16_000;
/// The longest `quote` a reply may carry, in UTF-16 code units.
pub const MAX_QUOTE_UTF16: usize = 200;
/// The longest `emoji` a reaction may carry, in UTF-8 bytes.
pub const MAX_EMOJI_BYTES: usize = 32;

/// Names one message of the room: the public key that signed it and its body's
/// `sent_at`. A sender never gives two of its bodies the same `sent_at`, so the pair is
/// unique within the room; it survives the sender's reconnections (the key stays, the
/// member id may not) and a text sent again after a rejoin (same body, same `sent_at`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct MessageRef {
    /// The author's public key: only bodies signed by this key may edit or delete it.
    pub key: PublicKey,
    /// The referenced body's `sent_at`.
    pub sent_at: UnixMillis,
}

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
    /// `{"type":"reaction","to":…,"emoji":…,"add":…,"sent_at":…}`: an emoji on a message, or taking it back.
    Reaction(Reaction),
    /// `{"type":"edit","to":…,"text":…,"sent_at":…}`: the author's new text for their message.
    Edit(Edit),
    /// `{"type":"delete","to":…,"sent_at":…}`: the author took their message back.
    Delete(Delete),
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
    /// A known type whose fields break a limit of docs/crypto.md §8 is malformed too.
    pub fn from_json(bytes: &[u8]) -> Result<Self, MalformedBody> {
        let body: Body = serde_json::from_slice(bytes)?;
        body.check_limits()
            .map_err(|why| MalformedBody(serde::de::Error::custom(why)))?;
        Ok(body)
    }

    fn check_limits(&self) -> Result<(), &'static str> {
        match self {
            Body::Text(text) => match (&text.reply_to, &text.quote) {
                (_, Some(quote)) if utf16_len(quote) > MAX_QUOTE_UTF16 => {
                    Err("the quote is too long")
                }
                _ => Ok(()),
            },
            Body::Edit(edit) if utf16_len(&edit.text) > MAX_TEXT_UTF16 => {
                Err("the edited text is too long")
            }
            Body::Reaction(reaction) if !is_emoji_like(&reaction.emoji) => {
                Err("the reaction is not a short emoji")
            }
            _ => Ok(()),
        }
    }

    /// The sender's `sent_at`, for de-duplication and ordering; `None` for unknown types.
    pub fn sent_at(&self) -> Option<UnixMillis> {
        match self {
            Body::Profile(b) => Some(b.sent_at),
            Body::Text(b) => Some(b.sent_at),
            Body::File(b) => Some(b.sent_at),
            Body::Typing(b) => Some(b.sent_at),
            Body::Reaction(b) => Some(b.sent_at),
            Body::Edit(b) => Some(b.sent_at),
            Body::Delete(b) => Some(b.sent_at),
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

/// A chat message; with `reply_to`, a reply to another one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Text {
    /// The message text.
    pub text: String,
    /// The message this one answers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply_to: Option<MessageRef>,
    /// The start of the answered message as the sender saw it (at most
    /// [`MAX_QUOTE_UTF16`]), for receivers that do not have it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quote: Option<String>,
    /// When it was sent.
    pub sent_at: UnixMillis,
}

impl Text {
    /// A plain text (no reply).
    pub fn new(text: impl Into<String>, sent_at: UnixMillis) -> Self {
        Self {
            text: text.into(),
            reply_to: None,
            quote: None,
            sent_at,
        }
    }
}

/// An emoji on a message (`add: true`), or taking one's own back (`add: false`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reaction {
    /// The message reacted to.
    pub to: MessageRef,
    /// The emoji: 1 to [`MAX_EMOJI_BYTES`] bytes, no spaces or control characters.
    pub emoji: String,
    /// Whether the reaction is put on or taken back.
    pub add: bool,
    /// When it was sent.
    pub sent_at: UnixMillis,
}

/// The author's new text for one of their messages.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Edit {
    /// The message edited; receivers apply it only if `to.key` signed this body.
    pub to: MessageRef,
    /// The new text, whole.
    pub text: String,
    /// When it was sent; of several edits, the latest `sent_at` wins.
    pub sent_at: UnixMillis,
}

/// The author took one of their messages back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Delete {
    /// The message deleted; receivers apply it only if `to.key` signed this body.
    pub to: MessageRef,
    /// When it was sent.
    pub sent_at: UnixMillis,
}

/// Length in UTF-16 code units, as the web client counts a string's length.
pub fn utf16_len(text: &str) -> usize {
    text.chars().map(char::len_utf16).sum()
}

/// The longest start of `text` of at most `max` UTF-16 code units, cut between
/// characters (never inside a surrogate pair): how a sender cuts a reply's quote.
pub fn cut_utf16(text: &str, max: usize) -> &str {
    let mut units = 0;
    for (at, c) in text.char_indices() {
        units += c.len_utf16();
        if units > max {
            return &text[..at];
        }
    }
    text
}

/// Whether `emoji` may be a reaction: 1 to [`MAX_EMOJI_BYTES`] bytes of UTF-8, with no
/// character of Unicode's White_Space property, no control character (Cc), no U+FEFF
/// and no bidi control (U+200E, U+200F, U+202A–U+202E, U+2066–U+2069).
pub fn is_emoji_like(emoji: &str) -> bool {
    !emoji.is_empty()
        && emoji.len() <= MAX_EMOJI_BYTES
        && !emoji.chars().any(|c| {
            c.is_whitespace()
                || c.is_control()
                || matches!(
                    c,
                    '\u{feff}' | '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}'
                )
        })
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
        let body = Body::from_json(br#"{"type":"poll","emoji":"x","sent_at":1}"#).unwrap();
        assert_eq!(body, Body::Unknown);
        let body =
            Body::from_json(br#"{"sent_at":7,"text":"hi","type":"text","future":[1]}"#).unwrap();
        assert_eq!(body, Body::Text(Text::new("hi", 7)));
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
            Body::Text(Text::new("Grüße 👋🏽", 1)),
            Body::Text(Text {
                text: "yes".into(),
                reply_to: Some(reference(5)),
                quote: Some("are you there?".into()),
                sent_at: 6,
            }),
            Body::Reaction(Reaction {
                to: reference(5),
                emoji: "👍🏽".into(),
                add: true,
                sent_at: 7,
            }),
            Body::Edit(Edit {
                to: reference(5),
                text: "fixed".into(),
                sent_at: 8,
            }),
            Body::Delete(Delete {
                to: reference(5),
                sent_at: 9,
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

    fn reference(sent_at: UnixMillis) -> MessageRef {
        MessageRef {
            key: crate::IdentityKey::from_seed(&[1; 32]).public_key(),
            sent_at,
        }
    }

    #[test]
    fn new_bodies_are_written_in_the_documented_field_order() {
        let key = reference(5).key.to_base64url();
        let to = format!(r#"{{"key":"{key}","sent_at":5}}"#);
        let cases = [
            (
                Body::Text(Text::new("plain", 1)),
                r#"{"type":"text","text":"plain","sent_at":1}"#.to_owned(),
            ),
            (
                Body::Text(Text {
                    text: "yes".into(),
                    reply_to: Some(reference(5)),
                    quote: Some("q".into()),
                    sent_at: 6,
                }),
                format!(
                    r#"{{"type":"text","text":"yes","reply_to":{to},"quote":"q","sent_at":6}}"#
                ),
            ),
            (
                Body::Reaction(Reaction {
                    to: reference(5),
                    emoji: "👍".into(),
                    add: false,
                    sent_at: 7,
                }),
                format!(r#"{{"type":"reaction","to":{to},"emoji":"👍","add":false,"sent_at":7}}"#),
            ),
            (
                Body::Edit(Edit {
                    to: reference(5),
                    text: "new".into(),
                    sent_at: 8,
                }),
                format!(r#"{{"type":"edit","to":{to},"text":"new","sent_at":8}}"#),
            ),
            (
                Body::Delete(Delete {
                    to: reference(5),
                    sent_at: 9,
                }),
                format!(r#"{{"type":"delete","to":{to},"sent_at":9}}"#),
            ),
        ];
        for (body, json) in cases {
            assert_eq!(serde_json::to_string(&body).unwrap(), json);
        }
    }

    #[test]
    fn limits_of_the_new_bodies() {
        let key = reference(5).key.to_base64url();
        let to = format!(r#"{{"key":"{key}","sent_at":5}}"#);
        let body = |json: String| Body::from_json(json.as_bytes());
        // Quotes: 200 UTF-16 code units (an emoji counts two).
        let quote = "😀".repeat(100);
        assert!(
            body(format!(
                r#"{{"type":"text","text":"a","reply_to":{to},"quote":"{quote}","sent_at":1}}"#
            ))
            .is_ok()
        );
        let quote = format!("{quote}x");
        assert!(
            body(format!(
                r#"{{"type":"text","text":"a","reply_to":{to},"quote":"{quote}","sent_at":1}}"#
            ))
            .is_err()
        );
        // Edits: 16,000 UTF-16 code units.
        let text = "x".repeat(MAX_TEXT_UTF16);
        assert!(
            body(format!(
                r#"{{"type":"edit","to":{to},"text":"{text}","sent_at":1}}"#
            ))
            .is_ok()
        );
        assert!(
            body(format!(
                r#"{{"type":"edit","to":{to},"text":"{text}y","sent_at":1}}"#
            ))
            .is_err()
        );
        // Emoji: up to 32 bytes, no spaces, controls or bidi overrides; ZWJ sequences are fine.
        for good in ["👍", "👨‍👩‍👧‍👦", "🏴󠁧󠁢󠁳󠁣󠁴󠁿", "1️⃣", "ok"]
        {
            assert!(is_emoji_like(good), "{good}");
            assert!(
                body(format!(
                    r#"{{"type":"reaction","to":{to},"emoji":"{good}","add":true,"sent_at":1}}"#
                ))
                .is_ok()
            );
        }
        for bad in [
            "",
            " ",
            "a b",
            r"\u0007",
            r"\u202e",
            r"\ufeff",
            r"\u00a0",
            &"x".repeat(33),
        ] {
            assert!(
                body(format!(
                    r#"{{"type":"reaction","to":{to},"emoji":"{bad}","add":true,"sent_at":1}}"#
                ))
                .is_err(),
                "{bad}"
            );
        }
        // Missing or ill-typed fields.
        for bad in [
            format!(r#"{{"type":"reaction","to":{to},"emoji":"👍","sent_at":1}}"#),
            format!(r#"{{"type":"reaction","to":{to},"emoji":"👍","add":1,"sent_at":1}}"#),
            r#"{"type":"delete","to":{"key":"AAAA","sent_at":1},"sent_at":1}"#.to_owned(),
            format!(r#"{{"type":"delete","to":{{"key":"{key}"}},"sent_at":1}}"#),
            format!(r#"{{"type":"edit","to":{to},"sent_at":1}}"#),
            r#"{"type":"edit","text":"x","sent_at":1}"#.to_owned(),
            r#"{"type":"text","text":"x","reply_to":5,"sent_at":1}"#.to_owned(),
        ] {
            assert!(body(bad.clone()).is_err(), "{bad}");
        }
    }

    #[test]
    fn quotes_are_cut_between_characters() {
        assert_eq!(cut_utf16("abc", 2), "ab");
        assert_eq!(cut_utf16("a😀b", 2), "a");
        assert_eq!(cut_utf16("a😀b", 3), "a😀");
        assert_eq!(cut_utf16("short", 200), "short");
        assert_eq!(utf16_len("a😀"), 3);
    }
}
