//! Opening sealed payloads as a receiver does: `open`, `Opened::verify`, `open_from`,
//! `open_profile`, then parsing the body.
//!
//! Input: one byte choosing a context (room secret, sender member id and sender
//! identity, all from testdata/crypto-vectors.json), then the sealed bytes.
//!
//! Nothing may panic. What is accepted must be authentic:
//! - a payload `open` accepts for one (room, member) opens for no other context with a
//!   different room or member (the aad binds both);
//! - a payload `open_from` accepts under the context's public key is byte for byte what
//!   `seal_with_iv` makes from its body and iv with that identity (Ed25519 signatures
//!   are deterministic), so nothing else (no altered byte, no other signature) passes;
//! - `open_profile` accepts only a profile body whose announced key verified it.
//!
//! The same bytes are also given to the receiver's parsers of untrusted text: the body
//! parser (`Body::from_json`, which a malicious room member reaches with any body it
//! signs), `RoomSecret::from_link` and `PublicKey::from_base64url`, whose accepted
//! inputs must be the one canonical text form of their value.

#![no_main]

#[path = "../common/reached.rs"]
mod reached;
use reached::reached;

use libfuzzer_sys::fuzz_target;
use std::str::FromStr;
use std::sync::LazyLock;
use streamchat_crypto::{
    Body, IV_LEN, IdentityKey, Iv, MIN_SEALED_LEN, MemberId, PublicKey, RoomKeys, RoomSecret,
    encoding, open, open_from, open_profile, seal_with_iv,
};

struct Context {
    room: RoomKeys,
    member: MemberId,
    identity: IdentityKey,
}

/// (room secret, member id, identity seed) of the vectors' sealed payloads.
const CONTEXTS: [(&str, &str, &str); 8] = [
    ("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8", "Xa9_kLm2-QrS4tUv6wYz", "M97vzWeVHVp9kfsvdV60CHVbqKfJchuEL-hJY4lq7wg"),
    ("__________________________________________8", "b0Bs0cketId_-123456A", "P26cQWWzyFH74rVcIufPiJsvmU5PWFmm5o767UL-mL0"),
    ("ouV33e9s6FQx-XrdPMlkHr52qiLPKGAi-UuDONoSOZ8", "b0Bs0cketId_-123456A", "P26cQWWzyFH74rVcIufPiJsvmU5PWFmm5o767UL-mL0"),
    ("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8", "b0Bs0cketId_-123456A", "P26cQWWzyFH74rVcIufPiJsvmU5PWFmm5o767UL-mL0"),
    ("-_8AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA-_8", "mmmmmmmmmmmmmmmmmmmm-_0123456789012345678901234567890123456789zz", "M97vzWeVHVp9kfsvdV60CHVbqKfJchuEL-hJY4lq7wg"),
    ("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8", "mé-ü-👋🏽", "P26cQWWzyFH74rVcIufPiJsvmU5PWFmm5o767UL-mL0"),
    ("ouV33e9s6FQx-XrdPMlkHr52qiLPKGAi-UuDONoSOZ8", "Xa9_kLm2-QrS4tUv6wYz", "M97vzWeVHVp9kfsvdV60CHVbqKfJchuEL-hJY4lq7wg"),
    ("__________________________________________8", "Xa9_kLm2-QrS4tUv6wYz", "M97vzWeVHVp9kfsvdV60CHVbqKfJchuEL-hJY4lq7wg"),
];

static CONTEXT: LazyLock<Vec<Context>> = LazyLock::new(|| {
    CONTEXTS
        .iter()
        .map(|(secret, member, seed)| {
            let seed: [u8; 32] = encoding::decode("seed", seed)
                .expect("vector seed")
                .try_into()
                .expect("32-byte seed");
            Context {
                room: RoomSecret::from_str(secret).expect("vector secret").room_keys(),
                member: MemberId::new(*member).expect("vector member"),
                identity: IdentityKey::from_seed(&seed),
            }
        })
        .collect()
});

fuzz_target!(|input: &[u8]| {
    let Some((&choice, sealed)) = input.split_first() else {
        return;
    };
    let contexts = &*CONTEXT;
    let ctx = &contexts[usize::from(choice) % contexts.len()];
    let key = ctx.identity.public_key();

    let opened = open(&ctx.room, &ctx.member, sealed);
    let verified = open_from(&ctx.room, &ctx.member, &key, sealed);
    match &opened {
        Ok(o) => {
            reached!("opened");
            assert_eq!(o.member(), &ctx.member);
            assert_eq!(o.unverified_body().len(), sealed.len() - MIN_SEALED_LEN);
            // Two steps and one agree.
            assert_eq!(o.clone().verify(&key).ok(), verified.clone().ok());
            // Bound to its room and member: no other context opens it.
            for other in contexts {
                if other.room.id() != ctx.room.id() || other.member != ctx.member {
                    assert!(open(&other.room, &other.member, sealed).is_err());
                }
            }
        }
        Err(_) => assert!(verified.is_err()),
    }
    if let Ok(v) = &verified {
        reached!("verified");
        let iv: [u8; IV_LEN] = sealed[1..1 + IV_LEN].try_into().expect("length checked by open");
        let resealed = seal_with_iv(&ctx.room, &ctx.member, &ctx.identity, v.body(), &Iv::from_bytes(iv))
            .expect("a body that opened can be sealed");
        assert_eq!(resealed, sealed, "accepted bytes differ from the sender's own sealing");
        parse_body(v.body());
    }
    if let Ok((profile, v)) = open_profile(&ctx.room, &ctx.member, sealed) {
        reached!("profile");
        assert_eq!(&profile.key, v.sender());
        assert!(matches!(Body::from_json(v.body()), Ok(Body::Profile(p)) if p == profile));
    }

    // The receiver's other parsers of untrusted text.
    parse_body(sealed);
    if let Ok(text) = std::str::from_utf8(sealed) {
        if let Ok(secret) = RoomSecret::from_link(text) {
            reached!("link");
            let trimmed = text.trim();
            let fragment = trimmed.split_once('#').map_or(trimmed, |(_, f)| f);
            assert_eq!(secret.link_fragment(), fragment, "one secret, one text form");
            let again = RoomSecret::from_link(&secret.invite_link("https://chat.example/x"))
                .expect("an invite link reads back");
            assert_eq!(again.as_bytes(), secret.as_bytes());
        }
        if let Ok(key) = PublicKey::from_base64url(text) {
            reached!("public key");
            assert_eq!(key.to_base64url(), text, "one key, one text form");
        }
    }
});

fn parse_body(bytes: &[u8]) {
    let Ok(body) = Body::from_json(bytes) else {
        return;
    };
    reached!("body");
    let _ = body.sent_at();
    if let Body::File(offer) = body {
        // A signed but hostile file offer: any sizes, any counts.
        let _ = offer.manifest();
        let _ = offer.cipher();
    }
}
