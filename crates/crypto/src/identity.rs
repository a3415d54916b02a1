//! A member's per-session Ed25519 identity, its public key and its fingerprint.
//!
//! Each client makes a fresh key pair when it joins and forgets it when it leaves;
//! there are no accounts. The public key travels base64url-encoded in the member's
//! `profile` body. The [`Fingerprint`], the first 10 bytes of SHA-256 of the raw
//! public key written as five groups of four hex digits, is what people compare out of
//! band to know that the key belongs to the person they think it does.

use std::fmt;
use std::str::FromStr;

use ed25519_dalek::{Signer, SigningKey, VerifyingKey};
use sha2::{Digest, Sha256};

use crate::encoding::{self, DecodeError, base64url_serde};
use crate::random::{self, RandomnessUnavailable};

/// Bytes in an Ed25519 signature.
pub const SIGNATURE_LEN: usize = 64;
/// Bytes in an Ed25519 public key and in a private seed.
pub const KEY_LEN: usize = 32;
/// Bytes of SHA-256(public key) shown as the fingerprint.
pub const FINGERPRINT_LEN: usize = 10;

/// A member's private signing key for this session. Zeroized on drop (by
/// `ed25519-dalek`); `Debug` shows only the public key.
#[derive(Clone)]
pub struct IdentityKey(SigningKey);

impl IdentityKey {
    /// A new identity from the operating system's CSPRNG.
    pub fn generate() -> Result<Self, RandomnessUnavailable> {
        let seed = zeroize::Zeroizing::new(random::random_array::<KEY_LEN>()?);
        Ok(Self::from_seed(&seed))
    }

    /// The identity with this 32-byte private seed (RFC 8032), for tests and vectors.
    pub fn from_seed(seed: &[u8; KEY_LEN]) -> Self {
        Self(SigningKey::from_bytes(seed))
    }

    /// The 32-byte private seed, for the MLS engine (`streamchat-mls`), whose MLS
    /// signature key must be this same Ed25519 key so that the fingerprint stays the
    /// same in every epoch. Wiped when the returned value is dropped.
    pub fn seed_bytes(&self) -> zeroize::Zeroizing<[u8; KEY_LEN]> {
        zeroize::Zeroizing::new(self.0.to_bytes())
    }

    /// The public half, announced in the profile.
    pub fn public_key(&self) -> PublicKey {
        PublicKey(self.0.verifying_key())
    }

    /// Signs `message`. Only the sealing code signs, and only the `signed` bytes of
    /// docs/crypto.md §6, so that a signature can never be lifted into another context.
    pub(crate) fn sign(&self, message: &[u8]) -> [u8; SIGNATURE_LEN] {
        self.0.sign(message).to_bytes()
    }
}

impl fmt::Debug for IdentityKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("IdentityKey")
            .field(&self.public_key())
            .finish()
    }
}

/// A member's Ed25519 public key.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct PublicKey(VerifyingKey);

/// A signature did not verify under the given public key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the signature does not verify under the sender's public key")]
pub(crate) struct SignatureMismatch;

impl PublicKey {
    /// Parses the 32 raw bytes; refuses bytes that are not a curve point.
    pub fn from_bytes(bytes: &[u8; KEY_LEN]) -> Result<Self, DecodeError> {
        VerifyingKey::from_bytes(bytes)
            .map(Self)
            .map_err(|_| DecodeError::NotAnEd25519Key)
    }

    /// The 32 raw bytes.
    pub fn to_bytes(&self) -> [u8; KEY_LEN] {
        self.0.to_bytes()
    }

    /// The base64url form used in `profile` bodies.
    pub fn to_base64url(&self) -> String {
        encoding::encode(self.0.as_bytes())
    }

    /// Parses the base64url form.
    pub fn from_base64url(text: &str) -> Result<Self, DecodeError> {
        Self::from_bytes(&encoding::decode_array("public key", text)?)
    }

    /// The fingerprint people compare.
    pub fn fingerprint(&self) -> Fingerprint {
        let digest = Sha256::digest(self.0.as_bytes());
        let mut out = [0u8; FINGERPRINT_LEN];
        out.copy_from_slice(&digest[..FINGERPRINT_LEN]);
        Fingerprint(out)
    }

    /// Checks an Ed25519 signature with the strict rules of `ed25519-dalek`
    /// (`verify_strict`: no small-order keys, canonical encodings), which honest
    /// signers, WebCrypto's included, always satisfy.
    pub(crate) fn verify(
        &self,
        message: &[u8],
        signature: &[u8; SIGNATURE_LEN],
    ) -> Result<(), SignatureMismatch> {
        let signature = ed25519_dalek::Signature::from_bytes(signature);
        self.0
            .verify_strict(message, &signature)
            .map_err(|_| SignatureMismatch)
    }
}

impl fmt::Display for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_base64url())
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({self})")
    }
}

impl FromStr for PublicKey {
    type Err = DecodeError;
    fn from_str(text: &str) -> Result<Self, DecodeError> {
        Self::from_base64url(text)
    }
}

base64url_serde!(PublicKey);

/// The first 10 bytes of SHA-256 of a public key. `Display` writes them as five
/// groups of four lowercase hex digits separated by single spaces: `d752 dbbc 61ca dc6e bdc1`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Fingerprint([u8; FINGERPRINT_LEN]);

impl Fingerprint {
    /// The 10 bytes, for other renderings (words, emoji).
    pub fn as_bytes(&self) -> &[u8; FINGERPRINT_LEN] {
        &self.0
    }
}

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (group, pair) in self.0.chunks(2).enumerate() {
            if group > 0 {
                f.write_str(" ")?;
            }
            for byte in pair {
                write!(f, "{byte:02x}")?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc8032_zero_seed_public_key() {
        let key = IdentityKey::from_seed(&[0; 32]).public_key();
        assert_eq!(
            key.to_base64url(),
            "O2onvM62pC1io6jQKm8Nc2UyFXcd4kOmOsBIoYtZ2ik"
        );
        assert_eq!(key.fingerprint().to_string(), "139e 3940 e64b 5491 7220");
    }

    #[test]
    fn generated_keys_sign_and_verify() {
        let identity = IdentityKey::generate().unwrap();
        let signature = identity.sign(b"hello");
        identity.public_key().verify(b"hello", &signature).unwrap();
        assert!(identity.public_key().verify(b"hellO", &signature).is_err());
        assert!(!format!("{identity:?}").is_empty());
    }

    #[test]
    fn public_key_text_and_serde_round_trip() {
        let key = IdentityKey::from_seed(&[7; 32]).public_key();
        assert_eq!(key.to_string().parse::<PublicKey>().unwrap(), key);
        let json = serde_json::to_string(&key).unwrap();
        assert_eq!(serde_json::from_str::<PublicKey>(&json).unwrap(), key);
        assert!("AAAA".parse::<PublicKey>().is_err());
    }
}
