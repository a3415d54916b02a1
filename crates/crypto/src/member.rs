//! The sender's member id, as it is bound into every sealed payload.
//!
//! The member id is the id the server gave the sending connection (its Socket.IO
//! socket id). docs/crypto.md §4 writes it into the aad and the signed bytes as one length
//! byte followed by its UTF-8 bytes, so it must be 1 to 64 bytes; this type makes an
//! id outside that range impossible to seal with or to open for.

use std::fmt;

/// The most bytes a member id may have (docs/crypto.md §4).
pub const MAX_MEMBER_ID_LEN: usize = 64;

/// A connection's member id, 1 to [`MAX_MEMBER_ID_LEN`] bytes of UTF-8.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MemberId(Box<str>);

/// A string cannot be a member id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MemberIdError {
    /// The id has no bytes.
    #[error("member id is empty")]
    MemberEmpty,
    /// The id has more than 64 bytes of UTF-8.
    #[error("member id is {len} bytes, more than the {MAX_MEMBER_ID_LEN} docs/crypto.md §4 allows")]
    MemberTooLong {
        /// Its length in bytes.
        len: usize,
    },
}

impl MemberId {
    /// Checks the length and wraps the id.
    pub fn new(id: impl Into<String>) -> Result<Self, MemberIdError> {
        let id: String = id.into();
        match id.len() {
            0 => Err(MemberIdError::MemberEmpty),
            len if len > MAX_MEMBER_ID_LEN => Err(MemberIdError::MemberTooLong { len }),
            _ => Ok(Self(id.into_boxed_str())),
        }
    }

    /// The id as the server sent it.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Appends `m = len (1 byte) || UTF-8 bytes`, the form docs/crypto.md §4 binds.
    pub(crate) fn write_length_prefixed(&self, out: &mut Vec<u8>) {
        // Invariant: `new` keeps the length within 1..=64, so it fits in a byte.
        out.push(self.0.len() as u8);
        out.extend_from_slice(self.0.as_bytes());
    }
}

impl fmt::Display for MemberId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::str::FromStr for MemberId {
    type Err = MemberIdError;
    fn from_str(id: &str) -> Result<Self, MemberIdError> {
        Self::new(id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn length_is_counted_in_utf8_bytes() {
        assert!(MemberId::new("x".repeat(64)).is_ok());
        assert_eq!(
            MemberId::new("x".repeat(65)),
            Err(MemberIdError::MemberTooLong { len: 65 })
        );
        // 22 three-byte characters: 22 characters but 66 bytes.
        assert_eq!(
            MemberId::new("€".repeat(22)),
            Err(MemberIdError::MemberTooLong { len: 66 })
        );
        assert_eq!(MemberId::new(""), Err(MemberIdError::MemberEmpty));
    }

    #[test]
    fn length_prefix() {
        let mut out = Vec::new();
        MemberId::new("ab").unwrap().write_length_prefixed(&mut out);
        assert_eq!(out, b"\x02ab");
    }
}
