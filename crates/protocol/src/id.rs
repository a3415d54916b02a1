//! Identifiers and binary data, validated while deserializing.
//!
//! A `RoomId` is the only room identifier the server ever sees: 22 base64url characters
//! standing for 16 bytes derived in clients from the room secret. A `FileId` is 16
//! base64url characters chosen by the sender. A `MemberId` is a connection's Socket.IO id.
//! `Binary` accepts only a binary attachment, never a string or an array of numbers.
//! Ids are reference counted: the relay clones them into every event it delivers.

use bytes::Bytes;
use serde::{Deserialize, Deserializer, Serialize, Serializer, de};
use std::fmt;
use std::sync::Arc;

/// Why an identifier was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    /// The identifier has the wrong number of characters.
    #[error("{kind} must be {expected} base64url characters, got {actual}")]
    WrongLength {
        /// Which identifier.
        kind: &'static str,
        /// Characters required.
        expected: usize,
        /// Characters given.
        actual: usize,
    },
    /// The identifier has a character outside `A-Z a-z 0-9 - _`.
    #[error("{kind} must be base64url (A-Z, a-z, 0-9, '-', '_')")]
    NotBase64Url {
        /// Which identifier.
        kind: &'static str,
    },
    /// The last character encodes bits beyond the 16 bytes (not canonical base64url).
    #[error("{kind} is not canonical base64url")]
    NotCanonical {
        /// Which identifier.
        kind: &'static str,
    },
    /// A member id is empty or longer than 64 bytes (the limit of docs/crypto.md §4).
    #[error("member id must be 1 to 64 bytes")]
    BadMember,
}

fn base64url_value(c: u8) -> Option<u8> {
    match c {
        b'A'..=b'Z' => Some(c - b'A'),
        b'a'..=b'z' => Some(c - b'a' + 26),
        b'0'..=b'9' => Some(c - b'0' + 52),
        b'-' => Some(62),
        b'_' => Some(63),
        _ => None,
    }
}

fn check_base64url(
    kind: &'static str,
    s: &str,
    len: usize,
    unused_low_bits: u8,
) -> Result<(), IdError> {
    if s.len() != len {
        return Err(IdError::WrongLength {
            kind,
            expected: len,
            actual: s.chars().count(),
        });
    }
    let mut last = 0;
    for c in s.bytes() {
        last = base64url_value(c).ok_or(IdError::NotBase64Url { kind })?;
    }
    if last & ((1 << unused_low_bits) - 1) != 0 {
        return Err(IdError::NotCanonical { kind });
    }
    Ok(())
}

macro_rules! string_id {
    ($(#[$doc:meta])* $name:ident, $validate:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(Arc<str>);

        impl $name {
            /// Validates and wraps `s`.
            pub fn new(s: impl Into<String>) -> Result<Self, IdError> {
                let s: String = s.into();
                let validate: fn(&str) -> Result<(), IdError> = $validate;
                validate(&s)?;
                Ok(Self(Arc::from(s)))
            }

            /// The identifier as sent on the wire.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl std::str::FromStr for $name {
            type Err = IdError;
            fn from_str(s: &str) -> Result<Self, IdError> {
                Self::new(s)
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(&self.0)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let s = String::deserialize(deserializer)?;
                Self::new(s).map_err(de::Error::custom)
            }
        }
    };
}

string_id!(
    /// A room's id: 22 base64url characters (16 bytes), derived from the room secret.
    RoomId,
    |s| check_base64url("room id", s, 22, 4)
);
string_id!(
    /// A file transfer's id: 16 base64url characters (12 bytes), chosen by the sender.
    FileId,
    |s| check_base64url("file id", s, 16, 0)
);
string_id!(
    /// A member's id: the connection's Socket.IO id (1 to 64 bytes, docs/crypto.md §4).
    MemberId,
    |s| if s.is_empty() || s.len() > 64 { Err(IdError::BadMember) } else { Ok(()) }
);

/// Opaque bytes carried as a Socket.IO binary attachment.
///
/// Deserializing accepts only bytes: a base64 string or a JSON array of numbers is
/// refused, so a client cannot make the server relay data in a shape the protocol
/// forbids. Cloning is cheap (reference counted), which the fan-out relies on.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Binary(pub Bytes);

impl fmt::Debug for Binary {
    // Never print content: only its length.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Binary({} bytes)", self.0.len())
    }
}

impl Binary {
    /// Number of bytes.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True when there are no bytes.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl From<Bytes> for Binary {
    fn from(b: Bytes) -> Self {
        Self(b)
    }
}

impl From<Vec<u8>> for Binary {
    fn from(b: Vec<u8>) -> Self {
        Self(Bytes::from(b))
    }
}

impl Serialize for Binary {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_bytes(&self.0)
    }
}

impl<'de> Deserialize<'de> for Binary {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct BinaryVisitor;
        impl de::Visitor<'_> for BinaryVisitor {
            type Value = Binary;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a binary attachment")
            }
            fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<Binary, E> {
                Ok(Binary(Bytes::copy_from_slice(v)))
            }
            fn visit_byte_buf<E: de::Error>(self, v: Vec<u8>) -> Result<Binary, E> {
                Ok(Binary(Bytes::from(v)))
            }
        }
        deserializer.deserialize_byte_buf(BinaryVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn room_ids_are_22_canonical_base64url_chars() {
        assert!(RoomId::new("AAAAAAAAAAAAAAAAAAAAAA").is_ok());
        assert!(RoomId::new("abcdefghijklmnopqrs-_w").is_ok());
        for (bad, why) in [
            ("", "empty"),
            ("AAAAAAAAAAAAAAAAAAAAA", "21 chars"),
            ("AAAAAAAAAAAAAAAAAAAAAAA", "23 chars"),
            ("AAAAAAAAAAAAAAAAAAAAA=", "padding"),
            ("AAAAAAAAAAAAAAAAAAAA+/", "standard alphabet"),
            ("AAAAAAAAAAAAAAAAAAAAAB", "non-canonical last char"),
            ("ÄAAAAAAAAAAAAAAAAAAAA", "non-ascii"),
        ] {
            assert!(RoomId::new(bad).is_err(), "{why} must be refused");
        }
    }

    #[test]
    fn file_ids_are_16_base64url_chars() {
        assert!(FileId::new("0123456789abcdef").is_ok());
        assert!(FileId::new("0123456789abcde").is_err());
        assert!(FileId::new("0123456789abcde!").is_err());
    }

    #[test]
    fn member_ids_are_at_most_64_bytes() {
        assert!(MemberId::new("x".repeat(64)).is_ok());
        assert!(MemberId::new("x".repeat(65)).is_err());
        assert!(MemberId::new("").is_err());
    }

    #[test]
    fn binary_refuses_number_arrays() {
        // Strings are refused by socketioxide's parser, which reads bytes only from binary
        // placeholders; serde_json alone hands strings to `visit_bytes`, so that case is
        // covered by the black-box tests (tests/node) instead.
        assert!(serde_json::from_str::<Binary>("[1,2,3]").is_err());
    }

    #[test]
    fn binary_debug_never_shows_content() {
        assert_eq!(
            format!("{:?}", Binary::from(b"secret".to_vec())),
            "Binary(6 bytes)"
        );
    }
}
