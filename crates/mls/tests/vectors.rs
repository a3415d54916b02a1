//! Checks every entry of `testdata/mls-vectors.json`: values the Rust engine and the
//! browser engine (`web/src/mls.ts`, checked by `web/test/mls-vectors.test.ts`) must
//! agree on without any randomness: the group id of a room, and the length of a sealed
//! application message (the padding rule), in a group of one member at epoch 0.
//!
//! The file was written by this engine and checked by the other. To write it again (only
//! for a deliberate protocol change):
//! `STREAMCHAT_MLS_VECTORS_WRITE=1 cargo test -p streamchat-mls --test vectors`.
#![allow(clippy::unwrap_used)]

use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use streamchat_crypto::IdentityKey;
use streamchat_crypto::encoding::{decode, encode};
use streamchat_mls::{RoomGroup, group_id};

#[derive(Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Vectors {
    version: u32,
    generator: String,
    group_ids: Vec<GroupIdVector>,
    sealed_lengths: SealedLengths,
}

#[derive(Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct GroupIdVector {
    /// The room id, as the server sees it (any UTF-8 string).
    room: String,
    /// SHA-256("streamchat mls v1 group" || room), base64url.
    group_id: String,
}

#[derive(Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct SealedLengths {
    room: String,
    /// The group has one member (its creator) and is at this epoch.
    epoch: u64,
    lengths: Vec<SealedLength>,
}

#[derive(Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct SealedLength {
    plaintext: usize,
    /// Length of the MLSMessage (PrivateMessage) bytes `seal` returns.
    sealed: usize,
}

const ROOMS: &[&str] = &[
    "AAECAwQFBgcICQoLDA0ODw",
    "omSJoNPRAws3-XOnTkTuRw",
    "room-1",
    "",
    "salle été 🎉 \u{0} end",
];
const PLAINTEXTS: &[usize] = &[
    0, 1, 31, 32, 33, 34, 62, 63, 64, 100, 1000, 16_383, 16_384, 20_000,
];

fn varint_len(n: usize) -> usize {
    match n {
        0..64 => 1,
        64..16_384 => 2,
        _ => 4,
    }
}

fn path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../testdata/mls-vectors.json")
}

fn sealed_length(room: &str, plaintext: usize) -> usize {
    let identity = IdentityKey::generate().unwrap();
    let mut group = RoomGroup::create(&identity, room).unwrap();
    assert_eq!(group.epoch(), 0);
    group.seal(&vec![0x61; plaintext]).unwrap().len()
}

fn computed() -> Vectors {
    let room = ROOMS[0];
    Vectors {
        version: 1,
        generator: "crates/mls/tests/vectors.rs (STREAMCHAT_MLS_VECTORS_WRITE=1)".into(),
        group_ids: ROOMS
            .iter()
            .map(|room| GroupIdVector {
                room: (*room).into(),
                group_id: encode(&group_id(room)),
            })
            .collect(),
        sealed_lengths: SealedLengths {
            room: room.into(),
            epoch: 0,
            lengths: PLAINTEXTS
                .iter()
                .map(|&plaintext| SealedLength {
                    plaintext,
                    sealed: sealed_length(room, plaintext),
                })
                .collect(),
        },
    }
}

#[test]
fn every_vector_holds() {
    if std::env::var_os("STREAMCHAT_MLS_VECTORS_WRITE").is_some() {
        let mut text = serde_json::to_string_pretty(&computed()).unwrap();
        text.push('\n');
        std::fs::write(path(), text).unwrap();
    }
    let text = std::fs::read_to_string(path()).unwrap();
    let vectors: Vectors = serde_json::from_str(&text).unwrap();
    assert_eq!(vectors.version, 1);
    assert!(!vectors.group_ids.is_empty() && !vectors.sealed_lengths.lengths.is_empty());
    for v in &vectors.group_ids {
        let expected = decode("group_id", &v.group_id).unwrap();
        assert_eq!(
            group_id(&v.room).to_vec(),
            expected,
            "group id of {:?}",
            v.room
        );
    }
    let lengths = &vectors.sealed_lengths;
    assert_eq!(lengths.epoch, 0);
    for v in &lengths.lengths {
        let sealed = sealed_length(&lengths.room, v.plaintext);
        assert_eq!(sealed, v.sealed, "sealed length of {} bytes", v.plaintext);
        // The padding rule: the ciphertext (content + 16-byte tag) is a multiple of 32. The
        // rest is fixed: 4 (version, wire format) + 33 (group id) + 8 (epoch) + 1 (content
        // type) + 1 (empty authenticated data) + 29 (encrypted sender data) = 76 bytes, and
        // the ciphertext's length prefix (a QUIC varint).
        let ciphertext = (sealed - 76).saturating_sub(4)..=sealed - 76;
        let ciphertext = ciphertext
            .rev()
            .find(|&n| n + varint_len(n) == sealed - 76)
            .unwrap();
        assert_eq!(
            ciphertext % 32,
            0,
            "{} bytes seal into {sealed}",
            v.plaintext
        );
    }
}
