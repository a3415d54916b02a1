//! Opening file chunks as a receiver does: `FileCipher::decrypt_chunk`, the streaming
//! `FileOpener` (`open_chunk`, `finish`) and `open_file`, on arbitrary chunk sequences
//! (any `seq`, any bytes, any count, any order) relayed by a hostile server or sender.
//!
//! Input:
//! - byte 0 chooses a file of testdata/crypto-vectors.json (its key, nonce prefix and
//!   manifest);
//! - byte 1, bit 0 set: a manifest from the next 8 bytes instead (size u32 LE, chunk
//!   size u16 LE, chunk count u16 LE; the vector's SHA-256), checked by
//!   `FileManifest::new` like a hostile `file` body;
//! - then chunk records until the input ends: `seq` u32 LE, length u16 LE, bytes.
//!
//! Nothing may panic. What is accepted must be authentic:
//! - a chunk `decrypt_chunk` accepts re-encrypts to the same bytes at that index and
//!   finality;
//! - a refused `open_chunk` leaves the opener where it was (the documented contract);
//! - a file `finish` accepts is exactly `seal_file` of the reassembled plaintext: the
//!   same chunks, in the same order, with the same manifest, so no chunk was moved,
//!   dropped, cut, replaced or appended; `open_file` over the same records agrees.

#![no_main]

#[path = "../common/reached.rs"]
mod reached;
use reached::reached;

use libfuzzer_sys::fuzz_target;
use std::sync::LazyLock;
use streamchat_crypto::{
    FileCipher, FileKey, FileManifest, FileOpener, NoncePrefix, Sha256Digest, open_file,
    seal_file,
};

/// (file key, nonce prefix, chunk size, plaintext size, SHA-256) of the vectors' files.
const FILES: [(&str, &str, u32, u64, &str); 5] = [
    ("lMRbO1eOSvkbjl37PH06HE0R296kOodKseHVrl6dCVo", "ldKP_FFYzg", 16, 40, "kekjLXfl2rQJYfTs_E51QNRL0NCFJ6KNG2Jfeu_09JI"),
    ("8xdtQI5aIQsaLkYoxBFF5jwIcD1kmtPvmA35cHoLH88", "0UU7O8nhbQ", 16, 32, "G0cBF38cJHonYb3gkzPiIv10OzJ3hK__xIGb38EDQzM"),
    ("8rP0VLhaNS0L2yP0C3j2eZTAYQx9hcvIdElfVM7O38w", "zKhFGpbNWA", 64, 12, "sz9DBLmmvYFwTlXEc6QTOkki8DTBxInLBUKMwRQLBCw"),
    ("MSBEC9qi8bHv4qs5eXLbZA-gpxE35_9rF7T6I-kHe7k", "5iv8xN7oSw", 16, 0, "47DEQpj8HBSa-_TImW-5JCeuQeRkm5NMpJWZG3hSuFU"),
    ("M--0l9bJpY0B4xQri75bPyXb9U7xa1tRHa9JMzggnKc", "MmE7KVi2JQ", 1024, 4500, "Jf_KvQBUXQr82mVaLOSV4lbPxurRSTfC0kmGmRtsJU4"),
];

struct File {
    key: FileKey,
    prefix: NoncePrefix,
    manifest: FileManifest,
}

static VECTORS: LazyLock<Vec<File>> = LazyLock::new(|| {
    FILES
        .iter()
        .map(|&(key, prefix, chunk_size, size, sha256)| {
            let sha256 = Sha256Digest::from_base64url(sha256).expect("vector sha256");
            let chunks = FileManifest::chunk_count(size, chunk_size).expect("vector sizes");
            File {
                key: FileKey::from_base64url(key).expect("vector key"),
                prefix: NoncePrefix::from_base64url(prefix).expect("vector prefix"),
                manifest: FileManifest::new(size, chunk_size, chunks, sha256).expect("vector manifest"),
            }
        })
        .collect()
});

/// Reads little-endian numbers and byte runs off the front of the input.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let n = n.min(self.0.len());
        if n == 0 {
            return None;
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Some(head)
    }

    fn le<const N: usize>(&mut self) -> Option<[u8; N]> {
        let bytes = self.0.get(..N)?;
        self.0 = &self.0[N..];
        bytes.try_into().ok()
    }
}

fuzz_target!(|input: &[u8]| {
    let mut r = Reader(input);
    let Some([choice, flags]) = r.le::<2>() else {
        return;
    };
    let vectors = &*VECTORS;
    let file = &vectors[usize::from(choice) % vectors.len()];
    let cipher = || FileCipher::new(&file.key, file.prefix);

    let manifest = if flags & 1 == 1 {
        let Some(size) = r.le::<4>().map(u32::from_le_bytes) else { return };
        let Some(chunk_size) = r.le::<2>().map(u16::from_le_bytes) else { return };
        let Some(chunks) = r.le::<2>().map(u16::from_le_bytes) else { return };
        match FileManifest::new(
            u64::from(size),
            u32::from(chunk_size),
            u32::from(chunks),
            file.manifest.sha256(),
        ) {
            Ok(m) => m,
            Err(_) => return,
        }
    } else {
        file.manifest
    };

    let mut records: Vec<(u32, &[u8])> = Vec::new();
    while let Some(seq) = r.le::<4>().map(u32::from_le_bytes) {
        let len = r.le::<2>().map_or(0, u16::from_le_bytes);
        let data = r.take(usize::from(len)).unwrap_or_default();
        records.push((seq, data));
    }

    let mut opener = FileOpener::new(cipher(), manifest);
    let mut plaintext = Vec::new();
    let mut accepted: Vec<&[u8]> = Vec::new();
    let mut all_accepted = true;
    for &(seq, data) in &records {
        for last in [false, true] {
            if let Ok(p) = cipher().decrypt_chunk(seq, last, data) {
                let again = cipher().encrypt_chunk(seq, last, &p).expect("re-encrypt");
                assert_eq!(again, data, "an accepted chunk is the one sealed at its place");
            }
        }
        let before = opener.received();
        match opener.open_chunk(seq, data) {
            Ok(p) => {
                reached!("chunk opened");
                assert_eq!(opener.received(), before + 1);
                assert_eq!(seq, before, "chunks open only in order");
                plaintext.extend_from_slice(&p);
                accepted.push(data);
            }
            Err(_) => {
                assert_eq!(opener.received(), before, "a refused chunk changes nothing");
                all_accepted = false;
            }
        }
    }
    let complete = opener.is_complete();
    if opener.finish().is_ok() {
        reached!("file finished");
        assert!(complete);
        let resealed = seal_file(cipher(), manifest.chunk_size(), &plaintext).expect("reseal");
        assert_eq!(resealed.manifest, manifest);
        assert_eq!(resealed.chunks, accepted, "the file is exactly what its sender sealed");
        if all_accepted {
            assert_eq!(open_file(cipher(), manifest, records.iter().copied()).ok(), Some(plaintext));
        }
    } else if all_accepted {
        assert!(open_file(cipher(), manifest, records.iter().copied()).is_err());
    }
});
