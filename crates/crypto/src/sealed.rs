//! Sealing and opening one message: sign, then encrypt, bound to room and sender.
//!
//! The byte layout is docs/crypto.md §5's, so that independent implementations agree exactly:
//!
//! ```text
//! m      = len(member) (1 byte) || member (UTF-8)
//! aad    = "streamchat/v1"     || room_bytes || m
//! signed = "streamchat/v1/sig" || room_bytes || m || body
//! sealed = 0x01 || iv (12) || AES-256-GCM(message_key, iv, sig (64) || body, aad)
//! ```
//!
//! Opening happens in two steps because of profiles: a receiver learns a sender's
//! public key from the sender's `profile`, which is itself sealed. [`open`] checks the
//! version, length, room and member (through the aad) and yields an [`Opened`] whose
//! body is not yet trusted; [`Opened::verify`] checks the signature and yields a
//! [`Verified`] body. [`open_from`] does both when the key is known, and
//! [`open_profile`] verifies a profile with the key it announces.
//!
//! Random 96-bit ivs under one room key are safe to about 2^32 messages per room
//! (the birthday bound for GCM nonces); v1 does not rotate keys, a later version will.

use aes_gcm::aead::{Aead, Payload};
use aes_gcm::{Aes256Gcm, KeyInit, Nonce};

use crate::body::{Body, Profile};
use crate::identity::{IdentityKey, PublicKey, SIGNATURE_LEN};
use crate::member::MemberId;
use crate::random::{self, RandomnessUnavailable};
use crate::room::{RoomId, RoomKeys};

/// The version byte every v1 sealed payload starts with.
pub const VERSION: u8 = 0x01;
/// Bytes in an AES-GCM iv.
pub const IV_LEN: usize = 12;
/// Bytes in an AES-GCM tag.
pub const TAG_LEN: usize = 16;
/// The shortest possible sealed payload: version, iv, tag and signature of an empty body.
pub const MIN_SEALED_LEN: usize = 1 + IV_LEN + TAG_LEN + SIGNATURE_LEN;
/// The largest body AES-GCM can encrypt under one iv (2^36 bytes less the signature).
const MAX_PLAINTEXT_LEN: u64 = 1 << 36;

const SIG_DOMAIN: &[u8] = b"streamchat/v1/sig";

/// A 12-byte AES-GCM iv. Fresh random ivs come from [`Iv::generate`]; fixed ones only
/// belong in tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Iv([u8; IV_LEN]);

impl Iv {
    /// A fresh random iv.
    pub fn generate() -> Result<Self, RandomnessUnavailable> {
        random::random_array().map(Self)
    }

    /// A known iv, for deterministic tests and vectors. Never reuse one for two bodies.
    pub fn from_bytes(bytes: [u8; IV_LEN]) -> Self {
        Self(bytes)
    }

    /// The iv's bytes.
    pub fn as_bytes(&self) -> &[u8; IV_LEN] {
        &self.0
    }
}

/// A body could not be sealed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SealError {
    /// No fresh iv could be had.
    #[error(transparent)]
    Randomness(#[from] RandomnessUnavailable),
    /// The body exceeds what AES-GCM encrypts under one iv (64 GiB).
    #[error("a {len}-byte body is too large to seal")]
    BodyTooLarge {
        /// The body's length in bytes.
        len: usize,
    },
}

/// A sealed payload was refused. Receivers drop such a payload with a visible warning.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OpenError {
    /// The first byte is not a version this implementation reads.
    #[error("sealed payload has unsupported version {0:#04x}")]
    UnsupportedVersion(u8),
    /// Too short to hold a version, iv, tag and signature.
    #[error("sealed payload is {len} bytes, shorter than the {MIN_SEALED_LEN} any payload has")]
    Truncated {
        /// The payload's length in bytes.
        len: usize,
    },
    /// Decryption failed: the payload was altered, or sealed for another room or by
    /// another member than the one it is attributed to.
    #[error("sealed payload was tampered with, or belongs to another room or member")]
    Tampered,
    /// Decrypted, but the signature is not the sender's.
    #[error("the signature does not verify under the sender's public key")]
    BadSignature,
    /// [`open_profile`] opened something that is not a well-formed `profile` body.
    #[error("not a profile: {reason}")]
    NotAProfile {
        /// What was wrong with it.
        reason: String,
    },
}

/// The aad: `"streamchat/v1" || room_bytes || m`.
pub fn message_aad(room_id: &RoomId, member: &MemberId) -> Vec<u8> {
    let mut aad = Vec::with_capacity(crate::DOMAIN.len() + 16 + 1 + member.as_str().len());
    aad.extend_from_slice(crate::DOMAIN);
    aad.extend_from_slice(room_id.as_bytes());
    member.write_length_prefixed(&mut aad);
    aad
}

/// The signed bytes: `"streamchat/v1/sig" || room_bytes || m || body`.
pub fn signed_message(room_id: &RoomId, member: &MemberId, body: &[u8]) -> Vec<u8> {
    let mut signed =
        Vec::with_capacity(SIG_DOMAIN.len() + 16 + 1 + member.as_str().len() + body.len());
    signed.extend_from_slice(SIG_DOMAIN);
    signed.extend_from_slice(room_id.as_bytes());
    member.write_length_prefixed(&mut signed);
    signed.extend_from_slice(body);
    signed
}

/// Seals `body` (UTF-8 JSON, sent exactly as given) from `member`, signed by
/// `identity`, under a fresh random iv. This is the one senders use.
pub fn seal(
    room: &RoomKeys,
    member: &MemberId,
    identity: &IdentityKey,
    body: &[u8],
) -> Result<Vec<u8>, SealError> {
    seal_with_iv(room, member, identity, body, &Iv::generate()?)
}

/// [`seal`] with a given iv: deterministic, for tests and test vectors. Reusing an iv
/// under one room key for two bodies breaks AES-GCM; use [`seal`] otherwise.
pub fn seal_with_iv(
    room: &RoomKeys,
    member: &MemberId,
    identity: &IdentityKey,
    body: &[u8],
    iv: &Iv,
) -> Result<Vec<u8>, SealError> {
    if body.len() as u64 > MAX_PLAINTEXT_LEN - SIGNATURE_LEN as u64 {
        return Err(SealError::BodyTooLarge { len: body.len() });
    }
    let signature = identity.sign(&signed_message(&room.id(), member, body));
    let mut plaintext = zeroize::Zeroizing::new(Vec::with_capacity(SIGNATURE_LEN + body.len()));
    plaintext.extend_from_slice(&signature);
    plaintext.extend_from_slice(body);

    let aad = message_aad(&room.id(), member);
    let ciphertext = cipher(room)
        .encrypt(
            Nonce::from_slice(iv.as_bytes()),
            Payload {
                msg: &plaintext,
                aad: &aad,
            },
        )
        .map_err(|_| SealError::BodyTooLarge { len: body.len() })?;

    let mut sealed = Vec::with_capacity(1 + IV_LEN + ciphertext.len());
    sealed.push(VERSION);
    sealed.extend_from_slice(iv.as_bytes());
    sealed.extend_from_slice(&ciphertext);
    Ok(sealed)
}

/// Decrypts a payload attributed to `member` in this room. The result's signature is
/// not yet checked: call [`Opened::verify`] with the sender's public key.
///
/// Checks, in order: version byte, length, then AES-GCM (which covers room and member
/// through the aad).
pub fn open(room: &RoomKeys, member: &MemberId, sealed: &[u8]) -> Result<Opened, OpenError> {
    match sealed.first() {
        None => return Err(OpenError::Truncated { len: 0 }),
        Some(&version) if version != VERSION => return Err(OpenError::UnsupportedVersion(version)),
        Some(_) => {}
    }
    if sealed.len() < MIN_SEALED_LEN {
        return Err(OpenError::Truncated { len: sealed.len() });
    }
    let (iv, ciphertext) = sealed[1..].split_at(IV_LEN);
    let aad = message_aad(&room.id(), member);
    let mut plaintext = cipher(room)
        .decrypt(
            Nonce::from_slice(iv),
            Payload {
                msg: ciphertext,
                aad: &aad,
            },
        )
        .map_err(|_| OpenError::Tampered)?;

    // The length check above guarantees at least SIGNATURE_LEN bytes of plaintext.
    let body = plaintext.split_off(SIGNATURE_LEN);
    let mut signature = [0u8; SIGNATURE_LEN];
    signature.copy_from_slice(&plaintext);
    Ok(Opened {
        room_id: room.id(),
        member: member.clone(),
        signature,
        body,
    })
}

/// [`open`] and [`Opened::verify`] in one, for a sender whose key is known.
pub fn open_from(
    room: &RoomKeys,
    member: &MemberId,
    sender: &PublicKey,
    sealed: &[u8],
) -> Result<Verified, OpenError> {
    open(room, member, sealed)?.verify(sender)
}

/// Opens a `profile`, which is signed with the key it announces: decrypts, parses
/// the body as a profile and verifies the signature with the key inside it. Returns
/// the profile (whose `key` is now the member's key) and the verified body.
pub fn open_profile(
    room: &RoomKeys,
    member: &MemberId,
    sealed: &[u8],
) -> Result<(Profile, Verified), OpenError> {
    let opened = open(room, member, sealed)?;
    let profile = match Body::from_json(opened.unverified_body()) {
        Ok(Body::Profile(profile)) => profile,
        Ok(_) => {
            return Err(OpenError::NotAProfile {
                reason: "another body type".into(),
            });
        }
        Err(e) => {
            return Err(OpenError::NotAProfile {
                reason: e.to_string(),
            });
        }
    };
    let verified = opened.verify(&profile.key)?;
    Ok((profile, verified))
}

fn cipher(room: &RoomKeys) -> Aes256Gcm {
    Aes256Gcm::new(room.message_key().as_bytes().into())
}

/// A decrypted payload whose signature has not been checked yet. Its body is
/// reachable only as [`Opened::unverified_body`], a name meant to be noticed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Opened {
    room_id: RoomId,
    member: MemberId,
    signature: [u8; SIGNATURE_LEN],
    body: Vec<u8>,
}

impl Opened {
    /// Checks the signature over the `signed` bytes of docs/crypto.md §6 with the sender's key.
    pub fn verify(self, sender: &PublicKey) -> Result<Verified, OpenError> {
        let signed = signed_message(&self.room_id, &self.member, &self.body);
        sender
            .verify(&signed, &self.signature)
            .map_err(|_| OpenError::BadSignature)?;
        Ok(Verified {
            member: self.member,
            sender: *sender,
            body: self.body,
        })
    }

    /// The 64-byte Ed25519 signature found in the payload.
    pub fn signature(&self) -> &[u8; SIGNATURE_LEN] {
        &self.signature
    }

    /// The body before its signature is checked. Read it only to find the key to
    /// verify with (as [`open_profile`] does); act on it only after [`Opened::verify`].
    pub fn unverified_body(&self) -> &[u8] {
        &self.body
    }

    /// The member the payload was opened for.
    pub fn member(&self) -> &MemberId {
        &self.member
    }
}

/// A body that decrypted for its room and member and carries its sender's signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    member: MemberId,
    sender: PublicKey,
    body: Vec<u8>,
}

impl Verified {
    /// The exact body bytes that were signed.
    pub fn body(&self) -> &[u8] {
        &self.body
    }

    /// The body bytes, owned.
    pub fn into_body(self) -> Vec<u8> {
        self.body
    }

    /// Parses the body; unknown types come back as [`Body::Unknown`].
    pub fn parse(&self) -> Result<Body, crate::body::MalformedBody> {
        Body::from_json(&self.body)
    }

    /// The sending member.
    pub fn member(&self) -> &MemberId {
        &self.member
    }

    /// The key that verified the signature.
    pub fn sender(&self) -> &PublicKey {
        &self.sender
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::room::RoomSecret;

    fn setup() -> (RoomKeys, MemberId, IdentityKey) {
        (
            RoomSecret::from_bytes([1; 32]).room_keys(),
            MemberId::new("member-1").unwrap(),
            IdentityKey::from_seed(&[2; 32]),
        )
    }

    #[test]
    fn round_trip_with_random_iv() {
        let (room, member, identity) = setup();
        let body = br#"{"type":"typing","sent_at":1}"#;
        let sealed = seal(&room, &member, &identity, body).unwrap();
        assert_eq!(sealed.len(), MIN_SEALED_LEN + body.len());
        let verified = open_from(&room, &member, &identity.public_key(), &sealed).unwrap();
        assert_eq!(verified.body(), body);
        assert_eq!(verified.member(), &member);
        assert!(matches!(verified.parse().unwrap(), Body::Typing(_)));
        // Two seals of one body differ: the iv is fresh each time.
        assert_ne!(sealed, seal(&room, &member, &identity, body).unwrap());
    }

    #[test]
    fn profile_opens_with_the_key_it_announces() {
        let (room, member, identity) = setup();
        let body = format!(
            r#"{{"type":"profile","name":"Ada","key":"{}","sent_at":5}}"#,
            identity.public_key()
        );
        let sealed = seal(&room, &member, &identity, body.as_bytes()).unwrap();
        let (profile, verified) = open_profile(&room, &member, &sealed).unwrap();
        assert_eq!(profile.key, identity.public_key());
        assert_eq!(profile.name, "Ada");
        assert_eq!(verified.body(), body.as_bytes());

        // A profile announcing someone else's key fails its own signature check.
        let other = IdentityKey::from_seed(&[3; 32]);
        let claimed = body.replace(
            &identity.public_key().to_string(),
            &other.public_key().to_string(),
        );
        let sealed = seal(&room, &member, &identity, claimed.as_bytes()).unwrap();
        assert_eq!(
            open_profile(&room, &member, &sealed),
            Err(OpenError::BadSignature)
        );

        let sealed = seal(
            &room,
            &member,
            &identity,
            br#"{"type":"typing","sent_at":1}"#,
        )
        .unwrap();
        assert!(matches!(
            open_profile(&room, &member, &sealed),
            Err(OpenError::NotAProfile { .. })
        ));
    }

    #[test]
    fn format_errors() {
        let (room, member, _) = setup();
        assert_eq!(
            open(&room, &member, &[]),
            Err(OpenError::Truncated { len: 0 })
        );
        assert_eq!(
            open(&room, &member, &[1; 92]),
            Err(OpenError::Truncated { len: 92 })
        );
        assert_eq!(
            open(&room, &member, &[2; 200]),
            Err(OpenError::UnsupportedVersion(2))
        );
        assert_eq!(open(&room, &member, &[1; 93]), Err(OpenError::Tampered));
    }
}
