//! Checks every entry of `testdata/crypto-vectors.json`, written by
//! `scripts/gen-crypto-vectors.py` with Python's `cryptography`, an implementation
//! independent of this crate. The web client checks the same file, so the two
//! implementations cannot drift apart. Regenerate with
//! `python3 scripts/gen-crypto-vectors.py`.

use serde::Deserialize;
use streamchat_crypto::encoding::{self, decode};
use streamchat_crypto::{
    Body, FileCipher, FileKey, FileManifest, IdentityKey, Iv, MemberId, NoncePrefix, OpenError,
    PublicKey, RoomKind, RoomSecret, Sha256Digest, message_aad, open, open_file, open_from,
    open_profile, seal_file, seal_with_iv, signed_message,
};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Vectors {
    version: u32,
    generator: String,
    rooms: Vec<RoomVector>,
    identities: Vec<IdentityVector>,
    sealed: Vec<SealedVector>,
    invalid: Vec<InvalidVector>,
    files: Vec<FileVector>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RoomVector {
    secret: String,
    link_fragment: String,
    room_id: String,
    message_key: String,
    v2: V2Vectors,
}

/// The v2 rooms of the same secret (docs/crypto.md §17.1).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct V2Vectors {
    knock: V2Room,
    open: V2Room,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct V2Room {
    link_fragment: String,
    room_id: String,
    lobby_key: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct IdentityVector {
    seed: String,
    public_key: String,
    fingerprint: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SealedVector {
    name: String,
    secret: String,
    member: String,
    seed: String,
    iv: String,
    body: String,
    aad: String,
    signed: String,
    signature: String,
    sealed: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct InvalidVector {
    name: String,
    secret: String,
    member: String,
    public_key: String,
    sealed: String,
    error: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileVector {
    name: String,
    file_key: String,
    nonce_prefix: String,
    chunk_size: u32,
    plaintext: String,
    sha256: String,
    chunks: Vec<String>,
}

fn vectors() -> Vectors {
    // The crate's directory when the test runs (cargo sets it, and runs tests there), not
    // when it was compiled: a cached test binary may come from another checkout.
    let dir = std::env::var("CARGO_MANIFEST_DIR").unwrap_or_else(|_| ".".into());
    let path = std::path::Path::new(&dir).join("../../testdata/crypto-vectors.json");
    let text = std::fs::read_to_string(path).expect("testdata/crypto-vectors.json is readable");
    serde_json::from_str(&text).expect("crypto-vectors.json has the documented shape")
}

fn bytes(text: &str) -> Vec<u8> {
    decode("vector field", text).expect("vector fields are base64url")
}

fn array<const N: usize>(text: &str) -> [u8; N] {
    bytes(text)
        .try_into()
        .expect("vector field has the expected length")
}

fn secret(text: &str) -> RoomSecret {
    RoomSecret::from_bytes(array(text))
}

#[test]
fn file_header_and_coverage() {
    let v = vectors();
    assert_eq!(v.version, 1);
    assert_eq!(v.generator, "scripts/gen-crypto-vectors.py");
    assert!(v.rooms.len() >= 3);
    assert!(v.identities.len() >= 2);
    assert!(v.sealed.len() >= 6);
    assert!(v.files.len() >= 4);
    for error in ["decrypt", "signature", "format"] {
        assert!(
            v.invalid.iter().any(|i| i.error == error),
            "no {error} vector"
        );
    }
}

#[test]
fn v2_rooms() {
    for room in vectors().rooms {
        let secret = secret(&room.secret);
        for (kind, v2) in [
            (RoomKind::Knock, &room.v2.knock),
            (RoomKind::Open, &room.v2.open),
        ] {
            assert_eq!(
                RoomSecret::from_any_link(&v2.link_fragment).unwrap(),
                (secret.clone(), kind)
            );
            assert_eq!(
                secret.invite_link_for("https://chat.example", kind),
                format!("https://chat.example/#{}", v2.link_fragment)
            );
            let keys = secret.room_keys_for(kind);
            assert_eq!(keys.id().to_string(), v2.room_id);
            assert_eq!(
                encoding::encode(keys.message_key().as_bytes()),
                v2.lobby_key
            );
        }
    }
}

#[test]
fn rooms() {
    for room in vectors().rooms {
        let secret = secret(&room.secret);
        assert_eq!(room.link_fragment.len(), 43);
        assert_eq!(RoomSecret::from_link(&room.link_fragment).unwrap(), secret);
        assert_eq!(secret.link_fragment(), room.link_fragment);
        let link = secret.invite_link("https://chat.example");
        assert_eq!(
            link,
            format!("https://chat.example/#{}", room.link_fragment)
        );
        assert_eq!(RoomSecret::from_link(&link).unwrap(), secret);

        let keys = secret.room_keys();
        assert_eq!(keys.id().to_string(), room.room_id);
        assert_eq!(room.room_id.len(), 22);
        assert_eq!(room.room_id.parse(), Ok(keys.id()));
        assert_eq!(
            keys.message_key().as_bytes(),
            &array::<32>(&room.message_key)
        );
    }
}

#[test]
fn identities() {
    for identity in vectors().identities {
        let public_key = IdentityKey::from_seed(&array(&identity.seed)).public_key();
        assert_eq!(public_key.to_string(), identity.public_key);
        assert_eq!(public_key.fingerprint().to_string(), identity.fingerprint);
        assert_eq!(identity.public_key.parse(), Ok(public_key));
    }
}

#[test]
fn sealed() {
    for v in vectors().sealed {
        let name = &v.name;
        let room = secret(&v.secret).room_keys();
        let member = MemberId::new(v.member.as_str()).unwrap();
        let identity = IdentityKey::from_seed(&array(&v.seed));
        let body = v.body.as_bytes();

        assert_eq!(
            message_aad(&room.id(), &member),
            bytes(&v.aad),
            "{name}: aad"
        );
        assert_eq!(
            signed_message(&room.id(), &member, body),
            bytes(&v.signed),
            "{name}: signed"
        );
        let sealed = seal_with_iv(
            &room,
            &member,
            &identity,
            body,
            &Iv::from_bytes(array(&v.iv)),
        );
        assert_eq!(sealed.unwrap(), bytes(&v.sealed), "{name}: sealed");

        let opened = open(&room, &member, &bytes(&v.sealed)).unwrap();
        assert_eq!(
            opened.signature(),
            &array::<64>(&v.signature),
            "{name}: signature"
        );
        assert_eq!(opened.unverified_body(), body, "{name}: body");
        let verified = opened.verify(&identity.public_key()).unwrap();
        assert_eq!(verified.body(), body, "{name}: verified body");

        // Every v1 body parses; the profile also opens with the key it announces.
        match verified.parse().unwrap() {
            Body::Profile(profile) => {
                assert_eq!(profile.key, identity.public_key(), "{name}");
                let (opened_profile, _) = open_profile(&room, &member, &bytes(&v.sealed)).unwrap();
                assert_eq!(opened_profile, profile, "{name}");
            }
            Body::File(offer) => {
                offer.manifest().unwrap();
            }
            Body::Text(_)
            | Body::Typing(_)
            | Body::Reaction(_)
            | Body::Edit(_)
            | Body::Delete(_) => {}
            Body::Unknown => assert!(name.contains("unknown type"), "{name}"),
        }
    }
}

#[test]
fn invalid() {
    for v in vectors().invalid {
        let room = secret(&v.secret).room_keys();
        let member = MemberId::new(v.member.as_str()).unwrap();
        let public_key = PublicKey::from_base64url(&v.public_key).unwrap();
        let error = open_from(&room, &member, &public_key, &bytes(&v.sealed))
            .expect_err(&format!("{}: opened", v.name));
        let class = match error {
            OpenError::Tampered => "decrypt",
            OpenError::BadSignature => "signature",
            OpenError::UnsupportedVersion(_) | OpenError::Truncated { .. } => "format",
            OpenError::NotAProfile { .. } => "not a profile",
        };
        assert_eq!(class, v.error, "{}: {error}", v.name);
    }
}

#[test]
fn files() {
    for v in vectors().files {
        let name = &v.name;
        let key = FileKey::from_bytes(array(&v.file_key));
        let prefix = NoncePrefix::from_bytes(array(&v.nonce_prefix));
        let cipher = FileCipher::new(&key, prefix);
        let plaintext = bytes(&v.plaintext);
        let chunks: Vec<Vec<u8>> = v.chunks.iter().map(|c| bytes(c)).collect();
        let sha256 = Sha256Digest::from_bytes(array(&v.sha256));
        assert_eq!(Sha256Digest::of(&plaintext), sha256, "{name}: sha256");

        // Chunk by chunk, with the bare cipher.
        let count = chunks.len();
        let pieces: Vec<&[u8]> = if plaintext.is_empty() {
            vec![&[]]
        } else {
            plaintext.chunks(v.chunk_size as usize).collect()
        };
        assert_eq!(pieces.len(), count, "{name}: chunk count");
        for (index, (piece, chunk)) in pieces.iter().zip(&chunks).enumerate() {
            let last = index + 1 == count;
            let index = u32::try_from(index).unwrap();
            assert_eq!(
                cipher.encrypt_chunk(index, last, piece).unwrap(),
                *chunk,
                "{name} #{index}"
            );
            assert_eq!(
                cipher.decrypt_chunk(index, last, chunk).unwrap(),
                *piece,
                "{name} #{index}"
            );
        }

        // As a stream.
        let sealed = seal_file(cipher.clone(), v.chunk_size, &plaintext).unwrap();
        assert_eq!(sealed.chunks, chunks, "{name}: sealed stream");
        let manifest = FileManifest::new(
            plaintext.len() as u64,
            v.chunk_size,
            u32::try_from(count).unwrap(),
            sha256,
        )
        .unwrap();
        assert_eq!(sealed.manifest, manifest, "{name}: manifest");
        let numbered = chunks
            .iter()
            .enumerate()
            .map(|(i, c)| (u32::try_from(i).unwrap(), c));
        assert_eq!(
            open_file(cipher, manifest, numbered).unwrap(),
            plaintext,
            "{name}: opened"
        );
    }
}

#[test]
fn the_file_body_describes_the_first_file_vector() {
    let v = vectors();
    let file = &v.files[0];
    let body = v.sealed.iter().find(|s| s.name == "file").unwrap();
    let Body::File(offer) = Body::from_json(body.body.as_bytes()).unwrap() else {
        panic!("the file vector's body is not a file body");
    };
    assert_eq!(offer.key.to_base64url(), file.file_key);
    assert_eq!(offer.nonce_prefix.to_base64url(), file.nonce_prefix);
    assert_eq!(offer.sha256.to_base64url(), file.sha256);
    assert_eq!(offer.chunk_size, file.chunk_size);
    let numbered = file
        .chunks
        .iter()
        .enumerate()
        .map(|(i, c)| (u32::try_from(i).unwrap(), bytes(c)));
    let opened = open_file(offer.cipher(), offer.manifest().unwrap(), numbered).unwrap();
    assert_eq!(opened, bytes(&file.plaintext));
}

/// The reply, reaction, edit and delete vectors name Alice's text vector by her key and
/// its `sent_at` (docs/crypto.md §8); the forged edit is signed by someone else.
#[test]
fn message_references_name_the_text_vector() {
    let v = vectors();
    let target = v
        .sealed
        .iter()
        .find(|s| s.name == "text with non-ASCII and emoji")
        .unwrap();
    let Body::Text(text) = Body::from_json(target.body.as_bytes()).unwrap() else {
        panic!("not a text");
    };
    let author = IdentityKey::from_seed(&array(&target.seed)).public_key();
    let body = |name: &str| {
        let vector = v.sealed.iter().find(|s| s.name.starts_with(name)).unwrap();
        let signer = IdentityKey::from_seed(&array(&vector.seed)).public_key();
        (Body::from_json(vector.body.as_bytes()).unwrap(), signer)
    };
    let Body::Text(reply) = body("reply").0 else {
        panic!("the reply is not a text");
    };
    let to = reply.reply_to.unwrap();
    assert_eq!((to.key, to.sent_at), (author, text.sent_at));
    assert!(text.text.starts_with(reply.quote.as_deref().unwrap()));
    let Body::Reaction(on) = body("reaction").0 else {
        panic!()
    };
    assert_eq!(
        (on.to.key, on.to.sent_at, on.add),
        (author, text.sent_at, true)
    );
    let Body::Reaction(off) = body("reaction taken back").0 else {
        panic!()
    };
    assert_eq!((off.emoji, off.add), (on.emoji, false));
    let (Body::Edit(edit), signer) = body("edit by the author") else {
        panic!()
    };
    assert_eq!((edit.to.key, edit.to.sent_at), (author, text.sent_at));
    assert_eq!(signer, edit.to.key, "the author signed the edit");
    let (Body::Delete(delete), signer) = body("delete by the author") else {
        panic!()
    };
    assert_eq!(signer, delete.to.key, "the author signed the deletion");
    let (Body::Edit(forged), signer) = body("edit of another member's message") else {
        panic!()
    };
    assert_eq!(forged.to.key, author);
    assert_ne!(
        signer, forged.to.key,
        "signed by someone else: receivers ignore it"
    );
}
