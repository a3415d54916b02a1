//! What benchmark senders put in a message, and how receivers read it back.
//!
//! Every payload names its sender (an index into the benchmark's senders), a sequence
//! number and the send time in µs since the benchmark's start (one process, one clock).
//! Plain payloads are those 20 bytes after a 4-byte tag, padded to the payload size.
//! Sealed payloads (`--seal`) are real v1 messages: a `text` body, padded to the payload
//! size, with an extra `bench` field (receivers ignore unknown fields), sealed and signed
//! by the sender's identity, and opened and verified by every receiver.

use streamchat_crypto::{IdentityKey, MemberId, OpenError, PublicKey, RoomKeys, open, seal};

const TAG: &[u8; 4] = b"SCB1";
/// The smallest plain payload: tag, sender, sequence number, time.
pub const MIN_PLAIN_PAYLOAD: usize = 4 + 4 + 4 + 8;

/// What a receiver reads from a payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp {
    /// The sender's index.
    pub sender: u32,
    /// The sender's sequence number.
    pub seq: u32,
    /// Send time, µs since the benchmark's start.
    pub sent_us: u64,
}

/// A plain payload of `size` bytes (at least [`MIN_PLAIN_PAYLOAD`]).
pub fn plain(stamp: Stamp, size: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(size.max(MIN_PLAIN_PAYLOAD));
    out.extend_from_slice(TAG);
    out.extend_from_slice(&stamp.sender.to_be_bytes());
    out.extend_from_slice(&stamp.seq.to_be_bytes());
    out.extend_from_slice(&stamp.sent_us.to_be_bytes());
    out.resize(size.max(MIN_PLAIN_PAYLOAD), b'.');
    out
}

/// Reads a plain payload.
pub fn read_plain(data: &[u8]) -> Option<Stamp> {
    let rest = data.strip_prefix(TAG)?;
    Some(Stamp {
        sender: u32::from_be_bytes(rest.get(0..4)?.try_into().ok()?),
        seq: u32::from_be_bytes(rest.get(4..8)?.try_into().ok()?),
        sent_us: u64::from_be_bytes(rest.get(8..16)?.try_into().ok()?),
    })
}

/// A sealed `text` message of about `size` body bytes.
pub fn sealed(
    stamp: Stamp,
    size: usize,
    sent_at_ms: u64,
    keys: &RoomKeys,
    member: &MemberId,
    identity: &IdentityKey,
) -> Option<Vec<u8>> {
    let head = format!(
        r#"{{"type":"text","sent_at":{sent_at_ms},"bench":[{},{},{}],"text":""#,
        stamp.sender, stamp.seq, stamp.sent_us
    );
    let padding = size.saturating_sub(head.len() + 2);
    let mut body = head.into_bytes();
    body.resize(body.len() + padding, b'.');
    body.extend_from_slice(br#""}"#);
    seal(keys, member, identity, &body).ok()
}

#[derive(serde::Deserialize)]
struct BenchBody {
    bench: (u32, u32, u64),
}

/// Why a sealed payload was not counted.
#[derive(Debug, PartialEq, Eq)]
pub enum SealedError {
    /// Did not decrypt or verify.
    Open(OpenError),
    /// Decrypted but not a benchmark body, or from an unknown sender.
    NotBench,
}

/// Opens, finds the sender, verifies with the sender's key, and reads the stamp.
pub fn read_sealed(
    data: &[u8],
    keys: &RoomKeys,
    from: &MemberId,
    senders: &[PublicKey],
) -> Result<Stamp, SealedError> {
    let opened = open(keys, from, data).map_err(SealedError::Open)?;
    // The index says which key must have signed it; the signature decides.
    let body: BenchBody =
        serde_json::from_slice(opened.unverified_body()).map_err(|_| SealedError::NotBench)?;
    let (sender, seq, sent_us) = body.bench;
    let key = senders.get(sender as usize).ok_or(SealedError::NotBench)?;
    opened.verify(key).map_err(SealedError::Open)?;
    Ok(Stamp {
        sender,
        seq,
        sent_us,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use streamchat_crypto::RoomSecret;

    #[test]
    fn plain_round_trip() {
        let stamp = Stamp {
            sender: 3,
            seq: 9,
            sent_us: 123_456,
        };
        let data = plain(stamp, 100);
        assert_eq!(data.len(), 100);
        assert_eq!(read_plain(&data), Some(stamp));
        assert_eq!(plain(stamp, 0).len(), MIN_PLAIN_PAYLOAD);
        assert_eq!(read_plain(b"nope"), None);
    }

    #[test]
    fn sealed_round_trip_and_forgery() {
        let keys = RoomSecret::from_bytes([1; 32]).room_keys();
        let member = MemberId::new("m1").unwrap();
        let ids = [
            IdentityKey::from_seed(&[2; 32]),
            IdentityKey::from_seed(&[3; 32]),
        ];
        let senders: Vec<PublicKey> = ids.iter().map(|i| i.public_key()).collect();
        let stamp = Stamp {
            sender: 1,
            seq: 4,
            sent_us: 77,
        };
        let data = sealed(stamp, 256, 1, &keys, &member, &ids[1]).unwrap();
        assert!(data.len() >= 256);
        assert_eq!(read_sealed(&data, &keys, &member, &senders), Ok(stamp));
        // Claims to be sender 0 but is signed by sender 1's key: refused.
        let forged = sealed(
            Stamp { sender: 0, ..stamp },
            256,
            1,
            &keys,
            &member,
            &ids[1],
        )
        .unwrap();
        assert_eq!(
            read_sealed(&forged, &keys, &member, &senders),
            Err(SealedError::Open(OpenError::BadSignature))
        );
    }
}
