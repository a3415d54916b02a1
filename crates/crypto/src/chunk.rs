//! One file chunk at a time: the STREAM construction of docs/crypto.md §9.
//!
//! Each file has its own random 32-byte [`FileKey`] and 7-byte [`NoncePrefix`]. Chunk
//! `i` is sealed with AES-256-GCM under the file key, with the nonce
//! `prefix (7) || i (u32 big-endian) || last (1 byte: 1 on the final chunk, else 0)`
//! and the aad `"streamchat/v1/chunk"`. Because the index and the last flag are in the
//! nonce, a chunk opens only at its own position and only with its own finality, so
//! chunks cannot be reordered, dropped or cut off at the end without detection (as in
//! age and Tink). [`crate::file`](mod@crate::file) builds the streaming sealer and
//! opener on this.

use std::fmt;

use aes_gcm::aead::{Aead, Payload};
use aes_gcm::{Aes256Gcm, KeyInit, Nonce};
use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::encoding::{self, DecodeError, base64url_serde};
use crate::file::{FileError, MAX_CHUNK_SIZE};
use crate::random::{self, RandomnessUnavailable};

/// The aad of every chunk.
pub const CHUNK_AAD: &[u8] = b"streamchat/v1/chunk";
/// Bytes in a nonce prefix.
pub const NONCE_PREFIX_LEN: usize = 7;
/// Bytes in a file key.
pub const FILE_KEY_LEN: usize = 32;
/// Bytes AES-GCM adds to every chunk (the tag).
pub const CHUNK_TAG_LEN: usize = 16;

/// A file's AES-256-GCM key. Zeroized on drop; `Debug` shows `FileKey(..)`.
#[derive(Clone, PartialEq, Eq, Zeroize, ZeroizeOnDrop)]
pub struct FileKey([u8; FILE_KEY_LEN]);

impl FileKey {
    /// A fresh random key, one per file.
    pub fn generate() -> Result<Self, RandomnessUnavailable> {
        random::random_array().map(Self)
    }

    /// A known key, for tests and vectors.
    pub fn from_bytes(bytes: [u8; FILE_KEY_LEN]) -> Self {
        Self(bytes)
    }

    /// The key's bytes.
    pub fn as_bytes(&self) -> &[u8; FILE_KEY_LEN] {
        &self.0
    }

    /// The base64url form carried in the sealed `file` body.
    pub fn to_base64url(&self) -> String {
        encoding::encode(&self.0)
    }

    /// Parses the base64url form.
    pub fn from_base64url(text: &str) -> Result<Self, DecodeError> {
        encoding::decode_array("file key", text).map(Self)
    }
}

impl fmt::Debug for FileKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("FileKey(..)")
    }
}

base64url_serde!(FileKey);

/// The 7 bytes that start every chunk nonce of one file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NoncePrefix([u8; NONCE_PREFIX_LEN]);

impl NoncePrefix {
    /// A fresh random prefix, one per file.
    pub fn generate() -> Result<Self, RandomnessUnavailable> {
        random::random_array().map(Self)
    }

    /// A known prefix, for tests and vectors.
    pub fn from_bytes(bytes: [u8; NONCE_PREFIX_LEN]) -> Self {
        Self(bytes)
    }

    /// The prefix's bytes.
    pub fn as_bytes(&self) -> &[u8; NONCE_PREFIX_LEN] {
        &self.0
    }

    /// The base64url form carried in the sealed `file` body.
    pub fn to_base64url(&self) -> String {
        encoding::encode(&self.0)
    }

    /// Parses the base64url form.
    pub fn from_base64url(text: &str) -> Result<Self, DecodeError> {
        encoding::decode_array("nonce prefix", text).map(Self)
    }

    /// `prefix || index (u32 big-endian) || last flag`.
    fn nonce(&self, index: u32, last: bool) -> [u8; 12] {
        let mut nonce = [0u8; 12];
        nonce[..NONCE_PREFIX_LEN].copy_from_slice(&self.0);
        nonce[NONCE_PREFIX_LEN..11].copy_from_slice(&index.to_be_bytes());
        nonce[11] = u8::from(last);
        nonce
    }
}

base64url_serde!(NoncePrefix);

/// Encrypts and decrypts the chunks of one file. Holds the expanded AES key, which
/// `aes` zeroizes on drop.
#[derive(Clone)]
pub struct FileCipher {
    aead: Aes256Gcm,
    prefix: NoncePrefix,
}

impl FileCipher {
    /// The cipher for the file with this key and prefix.
    pub fn new(key: &FileKey, prefix: NoncePrefix) -> Self {
        Self {
            aead: Aes256Gcm::new(key.as_bytes().into()),
            prefix,
        }
    }

    /// Encrypts chunk `index`; `last` must be true exactly for the file's final chunk.
    /// Chunks over [`MAX_CHUNK_SIZE`] are refused.
    pub fn encrypt_chunk(
        &self,
        index: u32,
        last: bool,
        plaintext: &[u8],
    ) -> Result<Vec<u8>, FileError> {
        if plaintext.len() > MAX_CHUNK_SIZE as usize {
            return Err(FileError::ChunkTooLarge {
                index,
                len: plaintext.len(),
            });
        }
        let nonce = self.prefix.nonce(index, last);
        self.aead
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: plaintext,
                    aad: CHUNK_AAD,
                },
            )
            .map_err(|_| FileError::ChunkTooLarge {
                index,
                len: plaintext.len(),
            })
    }

    /// Decrypts chunk `index`, which must have been sealed at that index with the same
    /// `last` flag; anything else is [`FileError::Tampered`].
    pub fn decrypt_chunk(
        &self,
        index: u32,
        last: bool,
        ciphertext: &[u8],
    ) -> Result<Vec<u8>, FileError> {
        if ciphertext.len() > MAX_CHUNK_SIZE as usize + CHUNK_TAG_LEN {
            return Err(FileError::ChunkTooLarge {
                index,
                len: ciphertext.len(),
            });
        }
        let nonce = self.prefix.nonce(index, last);
        self.aead
            .decrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: ciphertext,
                    aad: CHUNK_AAD,
                },
            )
            .map_err(|_| FileError::Tampered { index })
    }
}

impl fmt::Debug for FileCipher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FileCipher")
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cipher() -> FileCipher {
        FileCipher::new(
            &FileKey::from_bytes([1; 32]),
            NoncePrefix::from_bytes([2; 7]),
        )
    }

    #[test]
    fn nonce_layout() {
        let nonce = NoncePrefix::from_bytes([7; 7]).nonce(0x0102_0304, true);
        assert_eq!(nonce, [7, 7, 7, 7, 7, 7, 7, 1, 2, 3, 4, 1]);
    }

    #[test]
    fn chunk_opens_only_at_its_index_and_finality() {
        let cipher = cipher();
        let sealed = cipher.encrypt_chunk(3, false, b"abc").unwrap();
        assert_eq!(sealed.len(), 3 + CHUNK_TAG_LEN);
        assert_eq!(cipher.decrypt_chunk(3, false, &sealed).unwrap(), b"abc");
        assert_eq!(
            cipher.decrypt_chunk(4, false, &sealed),
            Err(FileError::Tampered { index: 4 })
        );
        assert_eq!(
            cipher.decrypt_chunk(3, true, &sealed),
            Err(FileError::Tampered { index: 3 })
        );
    }

    #[test]
    fn keys_never_print() {
        let printed = format!("{:?} {:?}", FileKey::from_bytes([0xab; 32]), cipher());
        assert!(!printed.contains("171"), "{printed}");
        assert!(!printed.contains("q6ur"), "{printed}");
    }
}
