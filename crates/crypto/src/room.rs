//! The room secret, the invite link that carries it, and the keys derived from it.
//!
//! A room is nothing but 32 random bytes made in a client. The invite link carries
//! them in its fragment (`https://HOST/#<43 base64url chars>`), which browsers never
//! send to a server. HKDF-SHA256 (salt `"streamchat/v1"`) turns the secret into the
//! [`RoomId`] (info `"room-id"`, 16 bytes), the only room identifier the server ever
//! sees, and the [`MessageKey`] (info `"message-key"`, 32 bytes) for AES-256-GCM.
//! Knowing the room id does not help to derive the key: both are independent HKDF
//! outputs of a secret the server never holds.

use std::fmt;
use std::str::FromStr;

use hkdf::Hkdf;
use sha2::Sha256;
use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::DOMAIN;
use crate::encoding::{self, DecodeError, base64url_serde};
use crate::random::{self, RandomnessUnavailable};

/// Bytes in a room secret.
pub const ROOM_SECRET_LEN: usize = 32;
/// Characters in a link fragment: 32 bytes as base64url without padding.
pub const LINK_FRAGMENT_LEN: usize = 43;
/// Bytes in a room id.
pub const ROOM_ID_LEN: usize = 16;
/// Bytes in a message key (AES-256).
pub const MESSAGE_KEY_LEN: usize = 32;

const ROOM_ID_INFO: &[u8] = b"room-id";
/// The fragment prefix of a v2 room where newcomers knock (docs/crypto.md §17.1).
const KNOCK_PREFIX: &str = "2.";
/// The fragment prefix of a v2 room that lets anyone with the link in.
const OPEN_PREFIX: &str = "2o.";
const MESSAGE_KEY_INFO: &[u8] = b"message-key";

/// The 32-byte secret that is the room: whoever holds it can read and write.
///
/// Never printed: `Debug` shows `RoomSecret(..)` and there is no `Display`; the only
/// text form is [`RoomSecret::link_fragment`], for the invite link.
#[derive(Clone, PartialEq, Eq, Zeroize, ZeroizeOnDrop)]
pub struct RoomSecret([u8; ROOM_SECRET_LEN]);

/// Text is not an invite link or fragment that carries a room secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a StreamChat invite link: {reason}")]
pub struct BadLink {
    reason: &'static str,
}

impl RoomSecret {
    /// A new room: 32 bytes from the operating system's CSPRNG.
    pub fn generate() -> Result<Self, RandomnessUnavailable> {
        random::random_array().map(Self)
    }

    /// Wraps known bytes (tests, vectors).
    pub fn from_bytes(bytes: [u8; ROOM_SECRET_LEN]) -> Self {
        Self(bytes)
    }

    /// The secret's bytes, the HKDF input keying material.
    pub fn as_bytes(&self) -> &[u8; ROOM_SECRET_LEN] {
        &self.0
    }

    /// Reads the secret from an invite link (`https://host/path#<fragment>`), from
    /// `#<fragment>`, or from the bare 43-character fragment. Surrounding whitespace
    /// is ignored, since links are pasted.
    pub fn from_link(link: &str) -> Result<Self, BadLink> {
        match Self::from_any_link(link)? {
            (secret, RoomKind::V1) => Ok(secret),
            _ => Err(BadLink {
                reason: "this is a v2 room's link (docs/crypto.md §17)",
            }),
        }
    }

    /// Reads the secret and the kind of room from a link of any kind: the bare
    /// 43-character fragment is a v1 room, `2.` before it a v2 room where newcomers
    /// knock, `2o.` a v2 room open to anyone with the link (docs/crypto.md §17.1).
    pub fn from_any_link(link: &str) -> Result<(Self, RoomKind), BadLink> {
        let link = link.trim();
        let fragment = match link.split_once('#') {
            Some((before, after)) => {
                let is_web_url = before.starts_with("https://") || before.starts_with("http://");
                if !before.is_empty() && !is_web_url {
                    return Err(BadLink {
                        reason: "a link must start with https:// or http://",
                    });
                }
                after
            }
            None if link.contains("://") => {
                return Err(BadLink {
                    reason: "the link has no '#' fragment with the room secret",
                });
            }
            None => link,
        };
        let (kind, fragment) = if let Some(rest) = fragment.strip_prefix(OPEN_PREFIX) {
            (RoomKind::Open, rest)
        } else if let Some(rest) = fragment.strip_prefix(KNOCK_PREFIX) {
            (RoomKind::Knock, rest)
        } else {
            (RoomKind::V1, fragment)
        };
        if fragment.len() != LINK_FRAGMENT_LEN {
            return Err(BadLink {
                reason: "the room secret must be 43 base64url characters",
            });
        }
        encoding::decode_array(ROOM_SECRET_NAME, fragment)
            .map(|secret| (Self(secret), kind))
            .map_err(|_| BadLink {
                reason: "the room secret is not base64url",
            })
    }

    /// The link fragment: the secret as 43 base64url characters, no padding.
    pub fn link_fragment(&self) -> String {
        encoding::encode(&self.0)
    }

    /// The invite link for a client served at `base_url`, e.g.
    /// `https://chat.example` → `https://chat.example/#<fragment>`. A fragment already
    /// on `base_url` is replaced; a path on it is kept.
    pub fn invite_link(&self, base_url: &str) -> String {
        self.invite_link_for(base_url, RoomKind::V1)
    }

    /// The invite link of the room of `kind` with this secret (§17.1's prefixes).
    pub fn invite_link_for(&self, base_url: &str, kind: RoomKind) -> String {
        let base = base_url.split_once('#').map_or(base_url, |(base, _)| base);
        // A bare origin gets the root path, so the fragment follows "/" as in docs/crypto.md §2.
        let has_path = match base.split_once("://") {
            Some((_, rest)) => rest.contains('/'),
            None => base.ends_with('/'),
        };
        let slash = if has_path { "" } else { "/" };
        format!("{base}{slash}#{}{}", kind.prefix(), self.link_fragment())
    }

    /// Derives the room's id and message key.
    pub fn room_keys(&self) -> RoomKeys {
        RoomKeys::from_secret(self)
    }

    /// Derives the id and key of the room of `kind` with this secret: for a v2 room the
    /// key is the lobby key (docs/crypto.md §17.1).
    pub fn room_keys_for(&self, kind: RoomKind) -> RoomKeys {
        RoomKeys {
            id: RoomId(self.derive(kind.salt(), ROOM_ID_INFO)),
            message_key: MessageKey(self.derive(kind.salt(), MESSAGE_KEY_INFO)),
        }
    }

    fn derive<const N: usize>(&self, salt: &[u8], info: &[u8]) -> [u8; N] {
        let hkdf = Hkdf::<Sha256>::new(Some(salt), &self.0);
        let mut okm = [0u8; N];
        // Invariant: HKDF-SHA256 fails only past 255 × 32 bytes; N is 16 or 32.
        hkdf.expand(info, &mut okm)
            .expect("HKDF-SHA256 output of at most 32 bytes is always valid");
        okm
    }
}

const ROOM_SECRET_NAME: &str = "room secret";

/// Which protocol a room speaks, as its link says (docs/crypto.md §17.1). The same
/// secret gives three unrelated rooms: the kind is in the derivation's salt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum RoomKind {
    /// One key from the link for the room's whole life (§2–§11).
    #[default]
    V1,
    /// MLS epochs; a newcomer knocks and a member lets it in.
    Knock,
    /// MLS epochs; anyone with the link is let in.
    Open,
}

impl RoomKind {
    /// The HKDF salt of the room id and (lobby) key.
    pub fn salt(self) -> &'static [u8] {
        match self {
            RoomKind::V1 => DOMAIN,
            RoomKind::Knock => b"streamchat/v2",
            RoomKind::Open => b"streamchat/v2/open",
        }
    }

    /// What comes before the secret in the link's fragment.
    pub fn prefix(self) -> &'static str {
        match self {
            RoomKind::V1 => "",
            RoomKind::Knock => KNOCK_PREFIX,
            RoomKind::Open => OPEN_PREFIX,
        }
    }

    /// Whether the room uses MLS (v2).
    pub fn is_v2(self) -> bool {
        self != RoomKind::V1
    }
}

impl fmt::Debug for RoomSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RoomSecret(..)")
    }
}

impl FromStr for RoomSecret {
    type Err = BadLink;

    /// Same as [`RoomSecret::from_link`].
    fn from_str(link: &str) -> Result<Self, BadLink> {
        Self::from_link(link)
    }
}

/// A room's public identifier: 16 bytes derived from the secret, shown as 22
/// base64url characters. The server routes by it; it reveals nothing of the key.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RoomId([u8; ROOM_ID_LEN]);

impl RoomId {
    /// Wraps known bytes.
    pub fn from_bytes(bytes: [u8; ROOM_ID_LEN]) -> Self {
        Self(bytes)
    }

    /// The 16 bytes written into every aad and signature (`room_bytes`).
    pub fn as_bytes(&self) -> &[u8; ROOM_ID_LEN] {
        &self.0
    }

    /// The 22-character base64url form the server sees.
    pub fn to_base64url(&self) -> String {
        encoding::encode(&self.0)
    }

    /// Parses the 22-character base64url form.
    pub fn from_base64url(text: &str) -> Result<Self, DecodeError> {
        encoding::decode_array("room id", text).map(Self)
    }
}

impl fmt::Display for RoomId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_base64url())
    }
}

impl fmt::Debug for RoomId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RoomId({self})")
    }
}

impl FromStr for RoomId {
    type Err = DecodeError;
    fn from_str(text: &str) -> Result<Self, DecodeError> {
        Self::from_base64url(text)
    }
}

base64url_serde!(RoomId);

/// The room's AES-256-GCM key for sealed payloads. Zeroized on drop, never printed.
#[derive(Clone, PartialEq, Eq, Zeroize, ZeroizeOnDrop)]
pub struct MessageKey([u8; MESSAGE_KEY_LEN]);

impl MessageKey {
    /// The raw key bytes (for comparing with test vectors; keep them in memory only).
    pub fn as_bytes(&self) -> &[u8; MESSAGE_KEY_LEN] {
        &self.0
    }
}

impl fmt::Debug for MessageKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MessageKey(..)")
    }
}

/// What a client keeps per room after reading the link: the id it joins by and the
/// key it seals with. The secret itself is needed only to make invite links.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoomKeys {
    id: RoomId,
    message_key: MessageKey,
}

impl RoomKeys {
    /// Derives both values from the secret with HKDF-SHA256 (docs/crypto.md §3).
    pub fn from_secret(secret: &RoomSecret) -> Self {
        secret.room_keys_for(RoomKind::V1)
    }

    /// The room id.
    pub fn id(&self) -> RoomId {
        self.id
    }

    /// The message key.
    pub fn message_key(&self) -> &MessageKey {
        &self.message_key
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret() -> RoomSecret {
        RoomSecret::from_bytes(std::array::from_fn(|i| i as u8))
    }

    const FRAGMENT: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8";

    #[test]
    fn link_round_trip_and_forms_accepted() {
        let secret = secret();
        assert_eq!(secret.link_fragment(), FRAGMENT);
        for link in [
            format!("https://chat.example/#{FRAGMENT}"),
            format!("http://localhost:3000/room/#{FRAGMENT}"),
            format!("  #{FRAGMENT}\n"),
            FRAGMENT.to_owned(),
        ] {
            assert_eq!(RoomSecret::from_link(&link).unwrap(), secret, "{link}");
        }
    }

    #[test]
    fn bad_links_are_refused() {
        for link in [
            "",
            "https://chat.example/",
            "https://chat.example/#",
            &format!("ftp://chat.example/#{FRAGMENT}"),
            &format!("https://chat.example/#{FRAGMENT}A"),
            &FRAGMENT[1..],
            &FRAGMENT.replace('A', "+"),
            // 43 characters whose last one carries non-zero unused bits.
            "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh9",
        ] {
            assert!(RoomSecret::from_link(link).is_err(), "{link:?}");
        }
    }

    #[test]
    fn invite_links() {
        let secret = secret();
        let expected = format!("https://chat.example/#{FRAGMENT}");
        assert_eq!(secret.invite_link("https://chat.example"), expected);
        assert_eq!(secret.invite_link("https://chat.example/"), expected);
        assert_eq!(secret.invite_link("https://chat.example/#old"), expected);
        assert_eq!(
            secret.invite_link("https://chat.example/app/"),
            format!("https://chat.example/app/#{FRAGMENT}")
        );
        for base in ["https://chat.example", "http://127.0.0.1:8080/x"] {
            let link = secret.invite_link(base);
            assert_eq!(RoomSecret::from_link(&link).unwrap(), secret);
        }
    }

    #[test]
    fn v2_links_and_keys() {
        let secret = secret();
        let v1 = secret.room_keys();
        let knock = secret.room_keys_for(RoomKind::Knock);
        let open = secret.room_keys_for(RoomKind::Open);
        assert_eq!(v1, secret.room_keys_for(RoomKind::V1));
        // Three unrelated rooms: ids and keys all differ.
        for (a, b) in [(&v1, &knock), (&v1, &open), (&knock, &open)] {
            assert_ne!(a.id(), b.id());
            assert_ne!(a.message_key(), b.message_key());
        }
        for kind in [RoomKind::V1, RoomKind::Knock, RoomKind::Open] {
            let link = secret.invite_link_for("https://chat.example", kind);
            assert_eq!(
                RoomSecret::from_any_link(&link).unwrap(),
                (secret.clone(), kind)
            );
        }
        assert_eq!(
            secret.invite_link_for("https://chat.example", RoomKind::Knock),
            format!("https://chat.example/#2.{FRAGMENT}")
        );
        assert_eq!(
            RoomSecret::from_any_link(&format!("#2o.{FRAGMENT}"))
                .unwrap()
                .1,
            RoomKind::Open
        );
        // A v1-only reader refuses a v2 link rather than joining another room.
        assert!(RoomSecret::from_link(&format!("https://chat.example/#2.{FRAGMENT}")).is_err());
        for bad in [
            format!("#3.{FRAGMENT}"),
            format!("#2.{}", &FRAGMENT[1..]),
            "#2.".to_owned(),
        ] {
            assert!(RoomSecret::from_any_link(&bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn secrets_never_print() {
        let secret = secret();
        let keys = secret.room_keys();
        let printed = format!("{secret:?} {keys:?}");
        assert!(!printed.contains(FRAGMENT), "{printed}");
        assert!(printed.contains(&keys.id().to_string()));
    }

    #[test]
    fn room_id_text_round_trip() {
        let id = secret().room_keys().id();
        assert_eq!(id.to_string().len(), 22);
        assert_eq!(id.to_string().parse::<RoomId>().unwrap(), id);
        let json = serde_json::to_string(&id).unwrap();
        assert_eq!(serde_json::from_str::<RoomId>(&json).unwrap(), id);
    }
}
