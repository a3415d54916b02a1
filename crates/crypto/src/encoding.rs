//! The text form of keys and ids: base64url without padding, decoded strictly.
//!
//! docs/crypto.md §1 writes every binary value that travels inside JSON or a link as
//! base64url without `=` padding. Decoding refuses padding, the standard alphabet's
//! `+` and `/`, and non-canonical trailing bits, so one value has exactly one text
//! form and two implementations cannot disagree about which strings are valid.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use zeroize::Zeroizing;

/// A key or id given as text could not be turned into bytes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// Not canonical base64url without padding.
    #[error("{what} is not base64url without padding")]
    NotBase64Url {
        /// Which value was being decoded, e.g. "public key".
        what: &'static str,
    },
    /// Valid base64url of the wrong number of bytes.
    #[error("{what} must be {expected} bytes, got {actual}")]
    WrongLength {
        /// Which value was being decoded.
        what: &'static str,
        /// The length docs/crypto.md §1 fixes for it.
        expected: usize,
        /// The length that was found.
        actual: usize,
    },
    /// 32 bytes that are not a valid Ed25519 public key (not a curve point).
    #[error("not an Ed25519 public key")]
    NotAnEd25519Key,
}

/// Encodes bytes as base64url without padding.
pub fn encode(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Decodes base64url without padding, of any length.
pub fn decode(what: &'static str, text: &str) -> Result<Vec<u8>, DecodeError> {
    URL_SAFE_NO_PAD
        .decode(text)
        .map_err(|_| DecodeError::NotBase64Url { what })
}

/// Decodes base64url without padding into exactly `N` bytes. The intermediate buffer
/// is zeroized, since this also decodes secrets.
pub(crate) fn decode_array<const N: usize>(
    what: &'static str,
    text: &str,
) -> Result<[u8; N], DecodeError> {
    let bytes = Zeroizing::new(decode(what, text)?);
    <[u8; N]>::try_from(bytes.as_slice()).map_err(|_| DecodeError::WrongLength {
        what,
        expected: N,
        actual: bytes.len(),
    })
}

/// Implements `Serialize`/`Deserialize` as a base64url string for a type that has
/// `to_base64url(&self) -> String` and `from_base64url(&str) -> Result<Self, DecodeError>`.
macro_rules! base64url_serde {
    ($type:ty) => {
        impl serde::Serialize for $type {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(&self.to_base64url())
            }
        }

        impl<'de> serde::Deserialize<'de> for $type {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let text = zeroize::Zeroizing::new(String::deserialize(deserializer)?);
                <$type>::from_base64url(&text).map_err(serde::de::Error::custom)
            }
        }
    };
}
pub(crate) use base64url_serde;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_padding_standard_alphabet_and_loose_trailing_bits() {
        assert_eq!(decode("x", "-_8").unwrap(), vec![0xfb, 0xff]);
        assert!(decode("x", "-_8=").is_err());
        assert!(decode("x", "+/8").is_err());
        // "AB" carries 12 bits, 4 of them past the one byte: they must be zero.
        assert!(decode("x", "AB").is_err());
        assert_eq!(decode("x", "AA").unwrap(), vec![0]);
    }

    #[test]
    fn decode_array_reports_the_length() {
        assert_eq!(
            decode_array::<2>("thing", "AAAA"),
            Err(DecodeError::WrongLength {
                what: "thing",
                expected: 2,
                actual: 3
            })
        );
    }
}
