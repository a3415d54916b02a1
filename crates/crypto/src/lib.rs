//! StreamChat end-to-end encryption v1, exactly as `docs/crypto.md` lays it out, and
//! nothing else: no sockets, no async runtime, no clock. Callers hand in bytes and ids
//! and get bytes back, so the terminal client, tests and any future backend share one
//! implementation that the test vectors in `testdata/crypto-vectors.json` pin down.
//!
//! The pieces, in the order a session meets them:
//! - [`room`]: the room secret carried in the invite link's fragment, and the
//!   [`RoomId`] and [`MessageKey`] derived from it with HKDF-SHA256.
//! - [`member`]: the sender's [`MemberId`], bound into every sealed payload.
//! - [`identity`]: the per-session Ed25519 [`IdentityKey`], its [`PublicKey`] and the
//!   [`Fingerprint`] people compare out of band.
//! - [`sealed`]: [`seal`] and [`open`]: sign-then-encrypt of one message body.
//! - [`body`]: the JSON bodies inside sealed payloads ([`Body`]).
//! - [`chunk`] and [`file`](mod@file): the STREAM construction for file contents, one
//!   chunk at a time ([`FileCipher`]) or as a stream with reorder, drop, truncation and
//!   hash checks ([`FileSealer`], [`FileOpener`]).
//!
//! Every secret type zeroizes its bytes on drop and prints as `..` in `Debug`.
//! Randomness comes from the operating system; every function that needs it returns
//! [`RandomnessUnavailable`] instead of panicking when it is missing.
//!
//! ```
//! use streamchat_crypto::{Body, IdentityKey, MemberId, RoomSecret, open_from, seal};
//!
//! // The creator makes a room and shares the link; a joiner reads the link.
//! let link = RoomSecret::generate()?.invite_link("https://chat.example");
//! let room = RoomSecret::from_link(&link)?.room_keys();
//! // Each member has a session identity and the member id the server gave it.
//! let me = IdentityKey::generate()?;
//! let member = MemberId::new("Xa9_kLm2-QrS4tUv6wYz")?;
//!
//! let sealed = seal(&room, &member, &me, br#"{"type":"text","text":"hi","sent_at":1}"#)?;
//! let verified = open_from(&room, &member, &me.public_key(), &sealed)?;
//! assert!(matches!(verified.parse()?, Body::Text(text) if text.text == "hi"));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod body;
pub mod chunk;
pub mod encoding;
pub mod file;
pub mod identity;
pub mod member;
pub mod random;
pub mod room;
pub mod sealed;

pub use body::{
    Body, Delete, Edit, FileId, FileOffer, MAX_EMOJI_BYTES, MAX_QUOTE_UTF16, MAX_TEXT_UTF16,
    MalformedBody, MessageRef, Profile, Reaction, Text, Typing, UnixMillis,
};
pub use chunk::{CHUNK_AAD, CHUNK_TAG_LEN, FileCipher, FileKey, NONCE_PREFIX_LEN, NoncePrefix};
pub use encoding::DecodeError;
pub use file::{
    DEFAULT_CHUNK_SIZE, EncryptedChunk, FileError, FileManifest, FileOpener, FileSealer,
    MAX_CHUNK_SIZE, SealedFile, Sha256Digest, open_file, seal_file,
};
pub use identity::{Fingerprint, IdentityKey, PublicKey, SIGNATURE_LEN};
pub use member::{MAX_MEMBER_ID_LEN, MemberId, MemberIdError};
pub use random::RandomnessUnavailable;
pub use room::{BadLink, MessageKey, RoomId, RoomKeys, RoomKind, RoomSecret};
pub use sealed::{
    IV_LEN, Iv, MIN_SEALED_LEN, OpenError, Opened, SealError, VERSION, Verified, message_aad, open,
    open_from, open_profile, seal, seal_with_iv, signed_message,
};

/// Domain separation for everything in v1: the HKDF salt and the start of every aad.
pub const DOMAIN: &[u8] = b"streamchat/v1";
