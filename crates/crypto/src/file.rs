//! Whole files as streams of chunks: the sender's [`FileSealer`] and the receiver's
//! [`FileOpener`], on top of [`crate::chunk`].
//!
//! A file is cut into chunks of `chunk_size` plaintext bytes; the last may be shorter,
//! a file whose size is an exact multiple has no trailing empty chunk, and an empty
//! file is one final empty chunk. The sealed `file` body announces size, chunk size,
//! chunk count and SHA-256 ([`FileManifest`]), all signed by the sender. The opener
//! accepts chunks only in order, decrypts each at its index with the last flag set
//! only on the announced final chunk, checks every length, and at the end checks the
//! count and the hash. So a chunk moved, dropped, cut, replaced or appended by the
//! relay, or a file that ends early, is reported rather than handed over.

use std::fmt;

use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::chunk::FileCipher;
use crate::encoding::{self, DecodeError, base64url_serde};

/// The chunk size senders use unless they have a reason not to: 256 KiB.
pub const DEFAULT_CHUNK_SIZE: u32 = 256 * 1024;
/// The largest chunk this crate seals or opens: 16 MiB of plaintext. The server's own
/// limit (protocol.md `max_chunk_bytes`, counted with the 16-byte tag) is usually lower.
pub const MAX_CHUNK_SIZE: u32 = 16 * 1024 * 1024;
/// The most bytes [`open_file`] reserves up front, whatever the manifest claims.
const MAX_PREALLOCATION: u64 = 64 * 1024 * 1024;

/// A file's chunks could not be sealed or opened.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FileError {
    /// A chunk did not decrypt at its index with its last flag: altered, moved, or
    /// from another file.
    #[error("chunk {index} was tampered with or does not belong at this position")]
    Tampered {
        /// The index it was opened at.
        index: u32,
    },
    /// A chunk arrived with another sequence number than the next one expected.
    #[error("chunk {got} arrived where chunk {expected} was expected")]
    OutOfOrder {
        /// The next index the opener needs.
        expected: u32,
        /// The index that arrived.
        got: u32,
    },
    /// A chunk arrived after the announced final chunk.
    #[error("chunk {index} arrived after the file's final chunk")]
    ExtraChunk {
        /// Its index.
        index: u32,
    },
    /// The stream ended before the announced final chunk.
    #[error("file is incomplete: {received} of {expected} chunks")]
    Incomplete {
        /// Chunks opened.
        received: u32,
        /// Chunks announced.
        expected: u32,
    },
    /// All chunks opened, but the plaintext's SHA-256 is not the announced one.
    #[error("file content does not match its announced SHA-256")]
    HashMismatch,
    /// An authentic chunk has another length than the manifest implies.
    #[error("chunk {index} is {actual} bytes, {expected} expected")]
    WrongChunkLength {
        /// Its index.
        index: u32,
        /// Length implied by size and chunk size.
        expected: usize,
        /// Length found.
        actual: usize,
    },
    /// A chunk exceeds [`MAX_CHUNK_SIZE`] (plus the tag, when encrypted).
    #[error("chunk {index} is {len} bytes, more than the limit")]
    ChunkTooLarge {
        /// Its index.
        index: u32,
        /// Its length.
        len: usize,
    },
    /// Size, chunk size and chunk count do not agree, or the chunk size is out of range.
    #[error("file announcement is inconsistent: {reason}")]
    BadManifest {
        /// What disagrees.
        reason: &'static str,
    },
    /// The file needs more chunks than a u32 index can number.
    #[error("file needs more than 2^32 - 1 chunks")]
    FileTooLarge,
}

/// A SHA-256 digest, base64url in JSON.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Sha256Digest([u8; 32]);

impl Sha256Digest {
    /// The SHA-256 of `data`.
    pub fn of(data: &[u8]) -> Self {
        Self(Sha256::digest(data).into())
    }

    /// Wraps known bytes.
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// The digest's bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// The base64url form.
    pub fn to_base64url(&self) -> String {
        encoding::encode(&self.0)
    }

    /// Parses the base64url form.
    pub fn from_base64url(text: &str) -> Result<Self, DecodeError> {
        encoding::decode_array("sha256", text).map(Self)
    }
}

impl fmt::Debug for Sha256Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Sha256Digest({})", self.to_base64url())
    }
}

base64url_serde!(Sha256Digest);

/// What the signed `file` body promises about the plaintext, checked for consistency:
/// `chunks = max(1, ceil(size / chunk_size))`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileManifest {
    size: u64,
    chunk_size: u32,
    chunks: u32,
    sha256: Sha256Digest,
}

impl FileManifest {
    /// Checks that the four values agree.
    pub fn new(
        size: u64,
        chunk_size: u32,
        chunks: u32,
        sha256: Sha256Digest,
    ) -> Result<Self, FileError> {
        if chunks != Self::chunk_count(size, chunk_size)? {
            return Err(FileError::BadManifest {
                reason: "the chunk count does not follow from size and chunk size",
            });
        }
        Ok(Self {
            size,
            chunk_size,
            chunks,
            sha256,
        })
    }

    /// How many chunks a file of `size` bytes takes: `max(1, ceil(size / chunk_size))`.
    pub fn chunk_count(size: u64, chunk_size: u32) -> Result<u32, FileError> {
        check_chunk_size(chunk_size)?;
        let count = size.div_ceil(u64::from(chunk_size)).max(1);
        u32::try_from(count).map_err(|_| FileError::FileTooLarge)
    }

    /// Plaintext size in bytes.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Plaintext bytes per chunk.
    pub fn chunk_size(&self) -> u32 {
        self.chunk_size
    }

    /// Number of chunks.
    pub fn chunks(&self) -> u32 {
        self.chunks
    }

    /// SHA-256 of the plaintext.
    pub fn sha256(&self) -> Sha256Digest {
        self.sha256
    }

    /// The plaintext length of chunk `index` (< `chunks`).
    fn chunk_len(&self, index: u32) -> usize {
        let last = self.chunks - 1;
        let len = if index < last {
            u64::from(self.chunk_size)
        } else {
            self.size - u64::from(last) * u64::from(self.chunk_size)
        };
        // Invariant: at most chunk_size, which is at most MAX_CHUNK_SIZE.
        len as usize
    }
}

fn check_chunk_size(chunk_size: u32) -> Result<(), FileError> {
    if chunk_size == 0 || chunk_size > MAX_CHUNK_SIZE {
        return Err(FileError::BadManifest {
            reason: "chunk size must be 1 byte to 16 MiB",
        });
    }
    Ok(())
}

/// One encrypted chunk and its index (the `seq` of protocol.md's `chunk` event).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncryptedChunk {
    /// The chunk index, from 0.
    pub index: u32,
    /// Ciphertext with its 16-byte tag.
    pub data: Vec<u8>,
}

/// The sender's side: takes plaintext in pieces of any size and yields encrypted
/// chunks. A full chunk is held back until more data shows it is not the last, so
/// [`FileSealer::finish`] can flag the final chunk. Holds at most one chunk of
/// plaintext (zeroized when dropped).
pub struct FileSealer {
    cipher: FileCipher,
    chunk_size: u32,
    pending: Zeroizing<Vec<u8>>,
    next_index: u32,
    size: u64,
    hasher: Sha256,
}

impl FileSealer {
    /// A sealer cutting chunks of `chunk_size` plaintext bytes.
    pub fn new(cipher: FileCipher, chunk_size: u32) -> Result<Self, FileError> {
        check_chunk_size(chunk_size)?;
        Ok(Self {
            cipher,
            chunk_size,
            pending: Zeroizing::new(Vec::new()),
            next_index: 0,
            size: 0,
            hasher: Sha256::new(),
        })
    }

    /// Adds plaintext; returns the chunks it completed (possibly none).
    pub fn push(&mut self, mut data: &[u8]) -> Result<Vec<EncryptedChunk>, FileError> {
        let chunk_size = self.chunk_size as usize;
        let mut out = Vec::new();
        self.hasher.update(data);
        self.size += data.len() as u64;
        while !data.is_empty() {
            if self.pending.len() == chunk_size {
                // More data follows, so the pending full chunk is not the last.
                out.push(self.seal_pending(false)?);
            }
            let take = (chunk_size - self.pending.len()).min(data.len());
            self.pending.extend_from_slice(&data[..take]);
            data = &data[take..];
        }
        Ok(out)
    }

    /// Seals the final chunk (empty only for an empty file) and returns it with the
    /// manifest to announce in the `file` body.
    pub fn finish(mut self) -> Result<(EncryptedChunk, FileManifest), FileError> {
        let last = self.seal_pending(true)?;
        let manifest = FileManifest {
            size: self.size,
            chunk_size: self.chunk_size,
            chunks: self.next_index,
            sha256: Sha256Digest(self.hasher.finalize().into()),
        };
        Ok((last, manifest))
    }

    fn seal_pending(&mut self, last: bool) -> Result<EncryptedChunk, FileError> {
        let index = self.next_index;
        // The count after this chunk must fit a u32, so index u32::MAX is never used.
        self.next_index = index.checked_add(1).ok_or(FileError::FileTooLarge)?;
        let data = self.cipher.encrypt_chunk(index, last, &self.pending)?;
        self.pending.clear();
        Ok(EncryptedChunk { index, data })
    }
}

impl fmt::Debug for FileSealer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FileSealer")
            .field("chunk_size", &self.chunk_size)
            .field("next_index", &self.next_index)
            .field("size", &self.size)
            .finish_non_exhaustive()
    }
}

/// The receiver's side: opens chunks in order against the signed manifest. A call
/// that returns an error leaves the opener as it was.
pub struct FileOpener {
    cipher: FileCipher,
    manifest: FileManifest,
    next_index: u32,
    hasher: Sha256,
}

impl FileOpener {
    /// An opener expecting chunk 0 of the file `manifest` describes.
    pub fn new(cipher: FileCipher, manifest: FileManifest) -> Self {
        Self {
            cipher,
            manifest,
            next_index: 0,
            hasher: Sha256::new(),
        }
    }

    /// Opens the chunk with sequence number `seq`, which must be the next one.
    pub fn open_chunk(&mut self, seq: u32, ciphertext: &[u8]) -> Result<Vec<u8>, FileError> {
        if self.next_index == self.manifest.chunks {
            return Err(FileError::ExtraChunk { index: seq });
        }
        if seq != self.next_index {
            return Err(FileError::OutOfOrder {
                expected: self.next_index,
                got: seq,
            });
        }
        let last = seq == self.manifest.chunks - 1;
        let plaintext = self.cipher.decrypt_chunk(seq, last, ciphertext)?;
        let expected = self.manifest.chunk_len(seq);
        if plaintext.len() != expected {
            return Err(FileError::WrongChunkLength {
                index: seq,
                expected,
                actual: plaintext.len(),
            });
        }
        self.hasher.update(&plaintext);
        self.next_index += 1;
        Ok(plaintext)
    }

    /// Whether the final chunk has been opened.
    pub fn is_complete(&self) -> bool {
        self.next_index == self.manifest.chunks
    }

    /// Chunks opened so far.
    pub fn received(&self) -> u32 {
        self.next_index
    }

    /// Ends the stream: all chunks must have arrived and the plaintext must hash to
    /// the announced SHA-256. Only then may the reassembled file be shown or saved.
    pub fn finish(self) -> Result<Sha256Digest, FileError> {
        if !self.is_complete() {
            return Err(FileError::Incomplete {
                received: self.next_index,
                expected: self.manifest.chunks,
            });
        }
        let digest = Sha256Digest(self.hasher.finalize().into());
        if digest != self.manifest.sha256 {
            return Err(FileError::HashMismatch);
        }
        Ok(digest)
    }
}

impl fmt::Debug for FileOpener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FileOpener")
            .field("manifest", &self.manifest)
            .field("next_index", &self.next_index)
            .finish_non_exhaustive()
    }
}

/// A whole file sealed at once: its manifest and its chunks, chunk `i` at position `i`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealedFile {
    /// Size, chunking and hash, for the `file` body.
    pub manifest: FileManifest,
    /// The encrypted chunks in order.
    pub chunks: Vec<Vec<u8>>,
}

/// Seals a whole in-memory file with [`FileSealer`].
pub fn seal_file(
    cipher: FileCipher,
    chunk_size: u32,
    plaintext: &[u8],
) -> Result<SealedFile, FileError> {
    let mut sealer = FileSealer::new(cipher, chunk_size)?;
    let mut chunks: Vec<Vec<u8>> = sealer
        .push(plaintext)?
        .into_iter()
        .map(|c| c.data)
        .collect();
    let (last, manifest) = sealer.finish()?;
    chunks.push(last.data);
    Ok(SealedFile { manifest, chunks })
}

/// Opens and reassembles a whole file from `(seq, ciphertext)` pairs with
/// [`FileOpener`], checking order, count and hash.
pub fn open_file<I, C>(
    cipher: FileCipher,
    manifest: FileManifest,
    chunks: I,
) -> Result<Vec<u8>, FileError>
where
    I: IntoIterator<Item = (u32, C)>,
    C: AsRef<[u8]>,
{
    let mut opener = FileOpener::new(cipher, manifest);
    // The manifest is the sender's claim: reserve no more than a sane amount up front.
    let mut out = Vec::with_capacity(manifest.size.min(MAX_PREALLOCATION) as usize);
    for (seq, ciphertext) in chunks {
        out.extend_from_slice(&opener.open_chunk(seq, ciphertext.as_ref())?);
    }
    opener.finish()?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chunk::{FileKey, NoncePrefix};

    fn cipher() -> FileCipher {
        FileCipher::new(
            &FileKey::from_bytes([5; 32]),
            NoncePrefix::from_bytes([6; 7]),
        )
    }

    #[test]
    fn chunk_counts() {
        assert_eq!(FileManifest::chunk_count(0, 16), Ok(1));
        assert_eq!(FileManifest::chunk_count(16, 16), Ok(1));
        assert_eq!(FileManifest::chunk_count(17, 16), Ok(2));
        assert_eq!(FileManifest::chunk_count(40, 16), Ok(3));
        assert_eq!(
            FileManifest::chunk_count(u64::MAX, 1),
            Err(FileError::FileTooLarge)
        );
        assert!(FileManifest::chunk_count(1, 0).is_err());
        assert!(FileManifest::chunk_count(1, MAX_CHUNK_SIZE + 1).is_err());
        let digest = Sha256Digest::of(b"");
        assert!(FileManifest::new(40, 16, 2, digest).is_err());
    }

    #[test]
    fn sealer_output_does_not_depend_on_how_input_is_split() {
        let data: Vec<u8> = (0..100u8).collect();
        let whole = seal_file(cipher(), 16, &data).unwrap();
        let mut sealer = FileSealer::new(cipher(), 16).unwrap();
        let mut chunks = Vec::new();
        for piece in data.chunks(7) {
            chunks.extend(sealer.push(piece).unwrap().into_iter().map(|c| c.data));
        }
        let (last, manifest) = sealer.finish().unwrap();
        chunks.push(last.data);
        assert_eq!(chunks, whole.chunks);
        assert_eq!(manifest, whole.manifest);
        assert_eq!(manifest.chunks(), 7);
    }

    #[test]
    fn opener_reports_each_failure() {
        let data = [9u8; 40];
        let sealed = seal_file(cipher(), 16, &data).unwrap();
        let pairs = |order: &[u32]| -> Vec<(u32, Vec<u8>)> {
            order
                .iter()
                .map(|&i| (i, sealed.chunks[i as usize].clone()))
                .collect()
        };
        let open = |chunks| open_file(cipher(), sealed.manifest, chunks);

        assert_eq!(open(pairs(&[0, 1, 2])).unwrap(), data);
        assert_eq!(
            open(pairs(&[0, 2, 1])),
            Err(FileError::OutOfOrder {
                expected: 1,
                got: 2
            })
        );
        assert_eq!(
            open(pairs(&[0, 1])),
            Err(FileError::Incomplete {
                received: 2,
                expected: 3
            })
        );
        assert_eq!(
            open(pairs(&[0, 1, 2, 2])),
            Err(FileError::ExtraChunk { index: 2 })
        );
        // The relay relabels chunk 2 as chunk 1: it does not open there.
        let relabelled = vec![(0, sealed.chunks[0].clone()), (1, sealed.chunks[2].clone())];
        assert_eq!(open(relabelled), Err(FileError::Tampered { index: 1 }));

        // A manifest claiming another hash: everything opens, the hash does not match.
        let lying = FileManifest {
            sha256: Sha256Digest::of(b"other"),
            ..sealed.manifest
        };
        assert_eq!(
            open_file(cipher(), lying, pairs(&[0, 1, 2])),
            Err(FileError::HashMismatch)
        );
    }

    #[test]
    fn truncating_at_a_chunk_boundary_is_caught_by_the_last_flag() {
        // The sender cut the file after two of three chunks and the manifest says two:
        // chunk 1 was sealed as "not last", so it does not open as the final chunk.
        let sealed = seal_file(cipher(), 16, &[1u8; 40]).unwrap();
        let manifest = FileManifest::new(32, 16, 2, Sha256Digest::of(&[1u8; 32])).unwrap();
        let chunks = vec![(0, sealed.chunks[0].clone()), (1, sealed.chunks[1].clone())];
        assert_eq!(
            open_file(cipher(), manifest, chunks),
            Err(FileError::Tampered { index: 1 })
        );
    }
}
